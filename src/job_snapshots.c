/* Job snapshots: get_job, get_jobs and print_jobs. */
#include "scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

void apsched_job_free(apsched_job *job) {
  if (!job) return;
  apsched_jobs_free(job, 1);
}

static void job_fields_free(apsched_job *j) {
  free(j->id);
  free(j->name);
  free(j->func_name);
  free(j->trigger);
  free(j->executor);
  free(j->jobstore);
  free(j->broken);
  free(j->arg_bytes);
  free(j->policies);
}

void apsched_jobs_free(apsched_job *jobs, size_t count) {
  if (!jobs) return;
  for (size_t i = 0; i < count; i++) job_fields_free(&jobs[i]);
  free(jobs);
}

static char *describe_trigger(const apsched_trigger *t) {
  int n = apsched_trigger_describe(t, NULL, 0);
  if (n < 0) return NULL;
  char *text = malloc((size_t)n + 1);
  if (text) apsched_trigger_describe(t, text, (size_t)n + 1);
  return text;
}

/* pending: NULL, or the pending job r belongs to. */
static int snapshot(const apsched_job_record *r, const char *jobstore, const pending_job *pending,
                    apsched_job *j) {
  memset(j, 0, sizeof *j);
  j->id = apsched__strdup(r->id);
  j->name = apsched__strdup(apsched__record_name(r));
  j->func_name = r->func->name ? apsched__strdup(r->func->name) : NULL;
  j->trigger = describe_trigger(r->trigger);
  j->executor = apsched__strdup(r->executor);
  j->jobstore = apsched__strdup(jobstore);
  j->max_instances = r->max_instances;
  j->misfire_grace_time = apsched__grace_usec(r->misfire_grace_ms);
  j->max_runtime = apsched__max_runtime_usec(r);
  j->coalesce = (r->flags & APSCHED_JOB_COALESCE) != 0;
  j->delivery = r->flags & APSCHED_JOB_AT_LEAST_ONCE ? APSCHED_AT_LEAST_ONCE : APSCHED_AT_MOST_ONCE;
  j->overlap = r->overlap ? (apsched_overlap)r->overlap : APSCHED_OVERLAP_SKIP;
  j->catchup_window = (int64_t)r->catchup_window_ms * APSCHED_MSEC;
  j->pause_after_failures = r->pause_after_failures;
  j->failures = r->failures;
  int plen = apsched_job_policies_describe(r, NULL, 0);
  if (plen > 0 && (j->policies = malloc((size_t)plen + 1)))
    apsched_job_policies_describe(r, j->policies, (size_t)plen + 1);
  j->pending = pending != NULL;
  j->next_run_time = r->next_run_time;
  j->paused = pending ? pending->paused : r->next_run_time == APSCHED_TIME_NONE;
  if (j->paused) j->next_run_time = APSCHED_TIME_NONE;
  const char *why = (r->flags & APSCHED_JOB_BROKEN) ? apsched_trigger_unparsed_why(r->trigger) : NULL;
  if (r->flags & APSCHED_JOB_BROKEN) j->broken = apsched__strdup(why ? why : "cannot be decoded");
  size_t arg_len;
  const void *bytes = apsched_job_args_bytes(r->args, &arg_len);
  if (bytes && (j->arg_bytes = malloc(arg_len))) {
    memcpy(j->arg_bytes, bytes, arg_len);
    j->arg_len = arg_len;
  }
  if ((bytes && !j->arg_bytes) || !j->id || !j->name || (r->func->name && !j->func_name) || !j->trigger || !j->executor ||
      !j->jobstore || ((r->flags & APSCHED_JOB_BROKEN) && !j->broken) || (plen > 0 && !j->policies)) {
    job_fields_free(j);
    return APSCHED_ENOMEM;
  }
  return APSCHED_OK;
}

int apsched_get_job(apsched_scheduler *s, const char *id, const char *jobstore, apsched_job **out) {
  if (!s || !id || !out)
    return apsched__error(APSCHED_EINVAL, "get_job: %s is NULL", !s ? "scheduler" : !id ? "id" : "out");
  apsched_job *j = malloc(sizeof *j);
  if (!j) return APSCHED_ENOMEM;
  apsched__lock(s);
  found_job f;
  int rc = apsched__find_job(s, id, jobstore, &f);
  if (rc == APSCHED_OK) {
    rc = snapshot(f.rec, f.alias, f.pending, j);
    apsched__found_leave(s, &f);
  }
  apsched__unlock(s);
  if (rc != APSCHED_OK) {
    free(j);
    return rc;
  }
  *out = j;
  return APSCHED_OK;
}

typedef struct collect_ctx {
  apsched_job *jobs;
  size_t count, cap;
  const char *jobstore;
  int rc;
} collect_ctx;

static int collect_one(const apsched_job_record *r, const char *jobstore,
                       const pending_job *pending, collect_ctx *c) {
  if (c->count == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    apsched_job *jobs = realloc(c->jobs, cap * sizeof *jobs);
    if (!jobs) return c->rc = APSCHED_ENOMEM;
    c->jobs = jobs;
    c->cap = cap;
  }
  int rc = snapshot(r, jobstore, pending, &c->jobs[c->count]);
  if (rc != APSCHED_OK) return c->rc = rc;
  c->count++;
  return 0;
}

static int collect_cb(const apsched_job_record *r, void *ud) {
  collect_ctx *c = ud;
  return collect_one(r, c->jobstore, NULL, c);
}

static int by_next_run_time(const void *a, const void *b) {
  const apsched_job *x = a, *y = b;
  /* Paused jobs (no next run time) last, as APScheduler sorts them. */
  bool xn = x->next_run_time == APSCHED_TIME_NONE, yn = y->next_run_time == APSCHED_TIME_NONE;
  if (xn != yn) return xn ? 1 : -1;
  if (x->next_run_time != y->next_run_time) return x->next_run_time < y->next_run_time ? -1 : 1;
  return strcmp(x->id, y->id);
}

int apsched_get_jobs(apsched_scheduler *s, const char *jobstore, apsched_job **out,
                     size_t *count) {
  if (!s || !out || !count)
    return apsched__error(APSCHED_EINVAL, "get_jobs: %s is NULL", !s ? "scheduler" : !out ? "out" : "count");
  collect_ctx c = {0};
  apsched__lock(s);
  apsched__wait_start(s);
  c.rc = apsched__check_store_alias(s, jobstore);
  for (pending_job *p = s->pending_head; p && c.rc == APSCHED_OK; p = p->next)
    if (!jobstore || strcmp(p->jobstore, jobstore) == 0) collect_one(p->rec, p->jobstore, p, &c);
  /* A blocking store is read without the lock; if the list of stores
   * changes meanwhile, start over. */
  size_t base = c.count;
restart:;
  unsigned gen = s->stores_gen;
  for (store_entry *e = s->stores; e && c.rc == APSCHED_OK; e = e->next) {
    if (jobstore && strcmp(e->alias, jobstore) != 0) continue;
    c.jobstore = e->alias;
    apsched__store_enter(s, e);
    int rc = e->store->vtable->foreach(e->store, collect_cb, &c);
    if (rc != APSCHED_OK && c.rc == APSCHED_OK) c.rc = apsched__store_error(e, "foreach", rc);
    apsched__store_leave(s, e);
    if (c.rc == APSCHED_OK && s->stores_gen != gen) {
      while (c.count > base) job_fields_free(&c.jobs[--c.count]);
      goto restart;
    }
  }
  apsched__unlock(s);
  if (c.rc != APSCHED_OK) {
    apsched_jobs_free(c.jobs, c.count);
    return c.rc;
  }
  if (c.count > 1) qsort(c.jobs, c.count, sizeof *c.jobs, by_next_run_time);
  *out = c.jobs;
  *count = c.count;
  return APSCHED_OK;
}

int apsched_print_jobs(apsched_scheduler *s, const char *jobstore, FILE *out) {
  if (!s || !out) return apsched__error(APSCHED_EINVAL, "print_jobs: %s is NULL", !s ? "scheduler" : "out");
  apsched_job *jobs;
  size_t n;
  int rc = apsched_get_jobs(s, jobstore, &jobs, &n);
  if (rc != APSCHED_OK) return rc;
  /* Group by store in the order stores were added, pending first. */
  apsched__lock(s);
  size_t nstores = 0;
  for (store_entry *e = s->stores; e; e = e->next) nstores++;
  const char **aliases = malloc((nstores + 1) * sizeof *aliases);
  size_t k = 0;
  if (aliases)
    for (store_entry *e = s->stores; e; e = e->next)
      if (!jobstore || strcmp(e->alias, jobstore) == 0) aliases[k++] = e->alias;
  apsched__unlock(s);
  if (!aliases) {
    apsched_jobs_free(jobs, n);
    return APSCHED_ENOMEM;
  }
  const apsched_tz *tz = s->tz;
  bool any_pending = false;
  for (size_t i = 0; i < n; i++) any_pending |= jobs[i].pending;
  for (size_t g = 0; g <= k; g++) {
    bool pending_group = g == k;
    if (pending_group && !any_pending) break;
    if (pending_group) fprintf(out, "Pending jobs:\n");
    else fprintf(out, "Jobstore %s:\n", aliases[g]);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
      apsched_job *j = &jobs[i];
      if (j->pending != pending_group || (!pending_group && strcmp(j->jobstore, aliases[g]) != 0))
        continue;
      /* As APScheduler: "paused", "pending" (before start) or the next run. */
      char when[80] = "paused";
      if (!j->paused && j->next_run_time != APSCHED_TIME_NONE) {
        char t[48];
        apsched_time_format(j->next_run_time, tz, t, sizeof t);
        snprintf(when, sizeof when, "next run at: %s", t);
      } else if (!j->paused) {
        snprintf(when, sizeof when, "pending");
      }
      /* Non-default schedule policies follow the trigger ("overlap=buffer_one"). */
      fprintf(out, "    %s (trigger: %s, %s%s%s)\n", j->name, j->trigger, j->policies ? j->policies : "",
              j->policies ? ", " : "", when);
      shown++;
    }
    if (!shown) fprintf(out, "    No scheduled jobs\n");
  }
  free(aliases);
  apsched_jobs_free(jobs, n);
  return ferror(out) ? APSCHED_ESYS : APSCHED_OK;
}

/* ------------------------------------------------- one due job, in the loop */

