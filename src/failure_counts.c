/* Pause on failure: the count of a job's consecutive failed runs lives in
 * the job itself (apsched_job_record.failures), so a persistent store keeps
 * it across restarts. Runs of jobs with pause_after_failures end on executor
 * threads; what they change (reset and/or more failures) is queued on their
 * store's entry and applied by the loop that serves the store, with the
 * store's own lookup and update, before it claims due jobs: a blocking store
 * is never called from a worker. Jobs without the policy queue nothing. */
#include "scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

failure_report *apsched__failures_report(apsched_scheduler *s, const char *jobstore,
                                         const char *job_id, bool reset, uint32_t failed,
                                         const char *error, bool ready) {
  store_entry *se = apsched__find_store(s, jobstore);
  if (!se) return NULL; /* the store and its jobs are gone */
  size_t idlen = strlen(job_id) + 1, errlen = error ? strlen(error) + 1 : 0;
  failure_report *r = malloc(sizeof *r + idlen + errlen);
  if (!r) {
    apsched__log(s, APSCHED_LOG_ERROR,
                 "Out of memory: a run of job \"%s\" is not counted for its pause_after_failures",
                 job_id);
    return NULL;
  }
  r->next = NULL;
  r->ready = ready;
  r->reset = reset;
  r->failed = failed;
  memcpy(r->id, job_id, idlen);
  r->error = error ? memcpy(r->id + idlen, error, errlen) : NULL;
  failure_report **tail = &se->failure_reports;
  while (*tail) tail = &(*tail)->next;
  *tail = r;
  if (ready) apsched__wake(s, apsched__store_waker(s, se));
  return r;
}

void apsched__failures_ready(apsched_scheduler *s, const char *jobstore,
                             const failure_report *report) {
  store_entry *se = apsched__find_store(s, jobstore);
  if (!se) return;
  for (failure_report *r = se->failure_reports; r; r = r->next) {
    if (r != report) continue;
    r->ready = true;
    apsched__wake(s, apsched__store_waker(s, se));
    return;
  }
}

/* JOB_PAUSED (retval: the count, error: the last failure's) and a warning. */
static void paused_notice(apsched_scheduler *s, notice_list *nl, const apsched_job_record *rec,
                          const char *jobstore, const failure_report *r, unsigned count) {
  notice *e = apsched__notice_if_wanted(s, nl, APSCHED_EVENT_JOB_PAUSED);
  if (!e) e = apsched__notice_add(s, nl, 0);
  if (!e) return;
  if (e->ev.code) {
    size_t idlen = strlen(rec->id) + 1, errlen = r->error ? strlen(r->error) + 1 : 0;
    char *buf = apsched__alloc(s, idlen + errlen);
    if (buf) {
      memcpy(buf, rec->id, idlen);
      if (r->error) memcpy(buf + idlen, r->error, errlen);
      e->owned = buf;
      e->ev.job_id = buf;
      e->ev.error = r->error ? buf + idlen : NULL;
    }
    e->ev.jobstore = jobstore;
    e->ev.retval = (int)count;
  }
  apsched__notice_log(s, e, APSCHED_LOG_WARNING,
                      "Job \"%s\" paused after %u consecutive failed runs (pause_after_failures); "
                      "resume_job resumes it%s%s",
                      apsched__record_name(rec), count, r->error ? ". Last error: " : "",
                      r->error ? r->error : "");
}

/* Applies one report to its job (inside the store's section). */
static int apply_one(apsched_scheduler *s, store_entry *se, const failure_report *r,
                     notice_list *nl) {
  const apsched_jobstore_vtable *vt = se->store->vtable;
  const apsched_job_record *rec;
  int rc = vt->lookup(se->store, r->id, &rec);
  if (rc == APSCHED_ENOENT) return APSCHED_OK; /* removed meanwhile */
  if (rc != APSCHED_OK) return rc;
  if (!rec->pause_after_failures || (rec->flags & APSCHED_JOB_BROKEN)) return APSCHED_OK;
  uint32_t count = (r->reset ? 0 : rec->failures) + r->failed;
  if (count > UINT16_MAX) count = UINT16_MAX;
  bool pause = count >= rec->pause_after_failures && rec->next_run_time != APSCHED_TIME_NONE;
  if (count == rec->failures && !pause) return APSCHED_OK; /* a success with nothing to reset */
  apsched_job_record *copy = apsched__record_copy(rec, true);
  if (!copy) return APSCHED_ENOMEM;
  copy->failures = (uint16_t)count;
  if (pause) copy->next_run_time = copy->trigger_time = APSCHED_TIME_NONE;
  size_t mark = nl->count;
  if (pause) paused_notice(s, nl, copy, se->alias, r, count);
  rc = vt->update(se->store, copy);
  if (rc != APSCHED_OK) {
    apsched__notices_truncate(s, nl, mark);
    apsched_job_record_free(copy);
  }
  return rc;
}

int apsched__failures_apply(apsched_scheduler *s, store_entry *se, notice_list *nl) {
  /* The ready ones at the front are taken out for the section: runs that
   * end meanwhile queue behind, and one not ready yet keeps its place. */
  failure_report *list = se->failure_reports, **cut = &list;
  while (*cut && (*cut)->ready) cut = &(*cut)->next;
  if (cut == &list) return APSCHED_OK;
  se->failure_reports = *cut;
  *cut = NULL;
  apsched__store_enter(s, se);
  int rc = APSCHED_OK;
  while (list && rc == APSCHED_OK) {
    rc = apply_one(s, se, list, nl);
    if (rc != APSCHED_OK) break;
    failure_report *done = list;
    list = list->next;
    free(done);
  }
  apsched__store_leave(s, se);
  if (list) {
    /* Kept, in front of what ended meanwhile, for the next pass. */
    failure_report **tail = &list;
    while (*tail) tail = &(*tail)->next;
    *tail = se->failure_reports;
    se->failure_reports = list;
  }
  return rc;
}
