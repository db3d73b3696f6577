/* The job API: add (one or a batch), remove, pause, resume, modify,
 * reschedule, and jobs added before start (pending). Every call is all or
 * nothing: the new state is prepared on a copy, stored, and only then
 * announced; a call that fails changes nothing and emits nothing. */
#include "scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */

/* Sets the record's first run time from its trigger. */
static void schedule_first(apsched_job_record *rec, apsched_time_t now) {
  rec->trigger_time = apsched_trigger_next(rec->trigger, APSCHED_TIME_NONE, now);
  rec->next_run_time = apsched__with_jitter(rec->trigger, rec->trigger_time);
}

/* True if one of the 8 bytes of w is a control character (below 0x20, or
 * 0x7f); bytes from 0x80 up (UTF-8) are not. Eight at a time: an id is
 * checked on every add. */
static bool has_control_byte(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  uint64_t below_0x20 = (w - 0x20 * ones) & ~w & highs;
  uint64_t del = w ^ (0x7f * ones);
  return (below_0x20 | ((del - ones) & ~del & highs)) != 0;
}

static bool valid_id(const char *id) {
  size_t n = strnlen(id, APSCHED_ID_MAX + 1);
  if (n == 0 || n > APSCHED_ID_MAX) return false;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, id + i, 8);
    if (has_control_byte(w)) return false;
  }
  for (; i < n; i++)
    if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f) return false;
  return true;
}

static bool valid_alias(const char *alias) { return valid_id(alias) && strlen(alias) < 128; }

static bool valid_flag(apsched_flag f) { return f == APSCHED_DEFAULT || f == APSCHED_YES || f == APSCHED_NO; }

static bool valid_grace(int64_t g) {
  return g == APSCHED_GRACE_UNLIMITED || (g >= 0 && g <= APSCHED_DURATION_MAX);
}

static bool valid_duration(int64_t d) { return d >= 0 && d <= APSCHED_DURATION_MAX; }

static int check_id(const char *id) {
  if (!valid_id(id))
    return apsched__error(APSCHED_EINVAL,
                          "id: '%.64s' must be 1..%d bytes without control characters", id,
                          APSCHED_ID_MAX);
  return APSCHED_OK;
}

/* The schedule policies add_job and modify_job share (zero: unchanged /
 * default; APSCHED_POLICY_NONE removes a window or a pause limit). */
static int check_policies(apsched_overlap overlap, int64_t catchup_window, int pause_after) {
  if ((int)overlap < APSCHED_OVERLAP_DEFAULT || (int)overlap > APSCHED_OVERLAP_ALLOW_ALL)
    return apsched__error(APSCHED_EINVAL,
                          "overlap: %d is not an apsched_overlap (APSCHED_OVERLAP_SKIP 1 .. "
                          "APSCHED_OVERLAP_ALLOW_ALL 6)",
                          (int)overlap);
  if (catchup_window != APSCHED_POLICY_NONE &&
      (catchup_window < 0 || catchup_window > APSCHED_DURATION_MAX))
    return apsched__error(APSCHED_EINVAL, "catchup_window: %lld us is outside 0..%lld",
                          (long long)catchup_window, (long long)APSCHED_DURATION_MAX);
  if (pause_after != APSCHED_POLICY_NONE && (pause_after < 0 || pause_after > APSCHED_PAUSE_AFTER_LIMIT))
    return apsched__error(APSCHED_EINVAL, "pause_after_failures: %d is outside 0..%d", pause_after,
                          APSCHED_PAUSE_AFTER_LIMIT);
  return APSCHED_OK;
}

/* Policies a shared store without the version 5 calls cannot keep: a run
 * there cannot wait for, or stop, a run another scheduler started (the
 * store counts the instances; README "Schedule policies"). */
static int check_store_policies(const store_entry *se, const apsched_job_record *rec) {
  if (!se->run_starting || se->runs_wait || !apsched__overlap_waits(rec->overlap))
    return APSCHED_OK;
  return apsched__error(APSCHED_EINVAL,
                        "overlap: %s is not available for job '%.64s' in job store '%s', which "
                        "several schedulers share (its runs are counted in the database, so a run "
                        "cannot wait for or stop another scheduler's): use skip or allow_all",
                        apsched__overlap_name(rec->overlap), rec->id, se->alias);
}

/* The settings add_job and modify_job share (zero: unchanged / default). */
static int check_settings(const char *name, int max_instances, int64_t grace, int64_t max_runtime,
                          apsched_flag coalesce, const char *executor) {
  if (name && !*name) return apsched__error(APSCHED_EINVAL, "name: empty");
  if (max_instances < 0 || max_instances > APSCHED_MAX_INSTANCES_LIMIT)
    return apsched__error(APSCHED_EINVAL, "max_instances: %d is outside 1..%d", max_instances,
                          APSCHED_MAX_INSTANCES_LIMIT);
  if (!valid_grace(grace))
    return apsched__error(APSCHED_EINVAL,
                          "misfire_grace_time: %lld us is not 0..%lld or APSCHED_GRACE_UNLIMITED",
                          (long long)grace, (long long)APSCHED_DURATION_MAX);
  if (max_runtime != APSCHED_NO_MAX_RUNTIME && !valid_duration(max_runtime))
    return apsched__error(APSCHED_EINVAL, "max_runtime: %lld us is outside 0..%lld",
                          (long long)max_runtime, (long long)APSCHED_DURATION_MAX);
  if (!valid_flag(coalesce))
    return apsched__error(APSCHED_EINVAL, "coalesce: %d is not an apsched_flag", (int)coalesce);
  if (executor && !valid_alias(executor))
    return apsched__error(APSCHED_EINVAL, "executor: '%.64s' is not a valid alias", executor);
  return APSCHED_OK;
}

/* Microseconds (validated) -> whole milliseconds, rounded up. */
static uint32_t to_ms(int64_t usec) {
  return usec ? (uint32_t)((usec + APSCHED_MSEC - 1) / APSCHED_MSEC) : 0; /* 0: most often */
}

static uint32_t grace_to_ms(int64_t usec) {
  return usec == APSCHED_GRACE_UNLIMITED ? UINT32_MAX : to_ms(usec);
}

/* Resolves func / func_name into an interned entry; NULL if invalid. */
static int resolve_func(apsched_job_fn fn, const char *name, const apsched_func **out) {
  if (fn && name) {
    const apsched_func *f = apsched__func_by_name(name, false);
    if (!f || apsched__func_fn(f) != fn)
      return apsched__error(APSCHED_EINVAL, "func_name: '%s' is not registered for that func", name);
    *out = f;
    return APSCHED_OK;
  }
  if (fn) {
    *out = apsched__func_by_ptr(fn);
    return *out ? APSCHED_OK : APSCHED_ENOMEM;
  }
  if (!name) return apsched__error(APSCHED_EINVAL, "func: no function given (func or func_name)");
  const apsched_func *f = apsched__func_by_name(name, false);
  if (!f || !apsched__func_fn(f))
    return apsched__error(APSCHED_EINVAL, "func_name: no function is registered as '%s'", name);
  *out = f;
  return APSCHED_OK;
}

/* What an add or a change copies for trigger t: t itself once its vtable
 * checks out, or (t NULL) a date trigger for now, made in *made (the
 * caller frees it once copied, or keeps it as the copy). */
static int trigger_to_copy(const apsched_trigger *t, apsched_trigger **made,
                           const apsched_trigger **src) {
  *made = NULL;
  *src = t;
  if (t && !apsched__trigger_vtable_ok(t))
    return apsched__error(APSCHED_EINVAL, "trigger: unknown vtable version or missing entries");
  if (t) return APSCHED_OK;
  int rc = apsched_trigger_date(NULL, made);
  *src = *made;
  return rc;
}

/* Resolves a scheduler-owned copy's "now" defaults. */
static void bind_copy(apsched_trigger *copy, apsched_time_t now) {
  if (copy->vtable->bind) copy->vtable->bind(copy, now);
}

/* A scheduler-owned copy of a trigger, bound to now. */
static int copy_trigger(const apsched_trigger *t, apsched_time_t now, apsched_trigger **out) {
  apsched_trigger *made;
  const apsched_trigger *src;
  int rc = trigger_to_copy(t, &made, &src);
  if (rc != APSCHED_OK) return rc;
  if (made) *out = made;
  else if ((rc = apsched_trigger_clone(src, out)) != APSCHED_OK) return rc;
  bind_copy(*out, now);
  return APSCHED_OK;
}

static int check_delivery(apsched_delivery d) {
  if (d == APSCHED_DELIVERY_DEFAULT || d == APSCHED_AT_MOST_ONCE || d == APSCHED_AT_LEAST_ONCE)
    return APSCHED_OK;
  return apsched__error(APSCHED_EINVAL,
                        "delivery: %d is not APSCHED_AT_MOST_ONCE (1) or APSCHED_AT_LEAST_ONCE (2)",
                        (int)d);
}

/* Builds a record from add options. Everything that can fail without the
 * lock happens here; aliases are interned later, under the lock. */
static int build_record(apsched_scheduler *s, const apsched_job_options *o, apsched_time_t now,
                        apsched_job_record **out) {
  char generated[33];
  const char *id = o->id;
  if (!id) {
    apsched__uuid_hex(generated);
    id = generated;
  }
  int rc = o->id ? check_id(id) : APSCHED_OK; /* a generated id is valid */
  if (rc == APSCHED_OK)
    rc = check_settings(o->name, o->max_instances, o->misfire_grace_time, o->max_runtime,
                        o->coalesce, o->executor);
  if (rc == APSCHED_OK && o->max_runtime < 0)
    rc = apsched__error(APSCHED_EINVAL, "max_runtime: %lld us is negative", (long long)o->max_runtime);
  if (rc != APSCHED_OK) return rc;
  if (o->arg_len && !o->arg_bytes)
    return apsched__error(APSCHED_EINVAL, "arg_bytes: NULL with arg_len %zu", o->arg_len);
  if (o->jobstore && !valid_alias(o->jobstore))
    return apsched__error(APSCHED_EINVAL, "jobstore: '%.64s' is not a valid alias", o->jobstore);
  if (o->next_run_time && o->paused)
    return apsched__error(APSCHED_EINVAL, "next_run_time and paused: give one or the other");
  rc = check_delivery(o->delivery);
  if (rc == APSCHED_OK) rc = check_policies(o->overlap, o->catchup_window, o->pause_after_failures);
  if (rc == APSCHED_OK && (o->failures < 0 || o->failures > APSCHED_PAUSE_AFTER_LIMIT))
    rc = apsched__error(APSCHED_EINVAL, "failures: %d is outside 0..%d", o->failures,
                        APSCHED_PAUSE_AFTER_LIMIT);
  if (rc == APSCHED_OK && (o->catchup_window < 0 || o->pause_after_failures < 0))
    rc = apsched__error(APSCHED_EINVAL, "%s: APSCHED_POLICY_NONE is for modify_job; 0 is none",
                        o->catchup_window < 0 ? "catchup_window" : "pause_after_failures");
  if (rc != APSCHED_OK) return rc;
  const apsched_func *func;
  rc = resolve_func(o->func, o->func_name, &func);
  if (rc != APSCHED_OK) return rc;
  /* The record gets its own copy of the trigger (in its own allocation
   * for the flat kinds), bound to now. */
  apsched_trigger *made;
  const apsched_trigger *src;
  if ((rc = trigger_to_copy(o->trigger, &made, &src)) != APSCHED_OK) return rc;
  apsched_job_record *rec;
  rc = apsched__record_with_trigger(id, src, &rec);
  apsched_trigger_free(made);
  if (rc != APSCHED_OK) return rc;
  bind_copy(rec->trigger, now);
  rec->func = func;
  rc = APSCHED_ENOMEM;
  if (o->name && !(rec->name = apsched__strdup(o->name))) goto fail;
  bool oom;
  if (o->arg || o->arg_free || o->arg_len) {
    rec->args = apsched__args_new(o->arg, o->arg_free, o->arg_bytes, o->arg_len, &oom);
    if (oom) goto fail;
  }
  rec->max_instances = (uint16_t)(o->max_instances ? o->max_instances : s->default_max_instances);
  rec->misfire_grace_ms = grace_to_ms(o->misfire_grace_time ? o->misfire_grace_time : s->default_grace);
  rec->max_runtime_ms = to_ms(o->max_runtime);
  rec->overlap = (uint8_t)o->overlap;
  rec->catchup_window_ms = to_ms(o->catchup_window);
  rec->pause_after_failures = (uint16_t)o->pause_after_failures;
  rec->failures = (uint16_t)o->failures;
  bool coalesce = o->coalesce == APSCHED_DEFAULT ? s->default_coalesce : o->coalesce == APSCHED_YES;
  rec->flags = (uint16_t)((coalesce ? APSCHED_JOB_COALESCE : 0) |
                          (o->id ? 0 : APSCHED_JOB_GENERATED_ID) |
                          (o->delivery == APSCHED_AT_LEAST_ONCE ? APSCHED_JOB_AT_LEAST_ONCE : 0));
  *out = rec;
  return APSCHED_OK;
fail:
  /* The argument destructor belongs to the caller until the add succeeds. */
  apsched__args_disown(rec->args);
  apsched_job_record_free(rec);
  return rc;
}

/* Frees records that were never handed to a store; their argument
 * destructors still belong to the caller. */
static void discard_new_records(apsched_job_record **recs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!recs[i]) continue;
    apsched__args_disown(recs[i]->args);
    apsched_job_record_free(recs[i]);
  }
}

/* TERMINATE_OTHER needs an executor that can end a run. */
static int check_can_terminate(const executor_entry *ex, const apsched_job_record *rec) {
  const apsched_executor_vtable *vt = ex->executor->vtable;
  if (rec->overlap != APSCHED_OVERLAP_TERMINATE_OTHER || (vt->version >= 2 && vt->terminate))
    return APSCHED_OK;
  return apsched__error(APSCHED_EINVAL,
                        "overlap: terminate_other needs an executor that can terminate a run (a "
                        "process pool); executor '%s' (%s) of job '%.64s' cannot: use cancel_other",
                        rec->executor, vt->kind ? vt->kind : "?", rec->id);
}

/* Whether the job's executor can run it: one named by the call must exist
 * on a running scheduler (the header's promise, as APScheduler's add_job
 * looks its executor up), and an existing one may refuse the job
 * (check_job). Lock held. */
static int check_executor(apsched_scheduler *s, const apsched_job_record *rec, bool named) {
  executor_entry *ex = apsched__find_executor(s, rec->executor);
  if (!ex) {
    if (!named || s->state == APSCHED_STATE_STOPPED) return APSCHED_OK;
    return apsched__error(APSCHED_ENOENT, "executor: no executor '%.64s' (job '%.64s')",
                          rec->executor, rec->id);
  }
  int rc = check_can_terminate(ex, rec);
  if (rc != APSCHED_OK || !ex->executor->vtable->check_job) return rc;
  char why[200] = "";
  rc = ex->executor->vtable->check_job(ex->executor, rec, why, sizeof why);
  if (rc == APSCHED_OK) return APSCHED_OK;
  return apsched__error(rc < 0 ? rc : APSCHED_EINVAL, "executor '%s': %s", rec->executor,
                        why[0] ? why : "refuses the job");
}

/* Calls the store's add inside a section; names the offending job, and
 * sets *failed_out (if given) to its index when the store names one. */
static int store_add(store_entry *se, apsched_job_record **recs, size_t n, const bool *replace,
                     size_t *failed_out) {
  size_t failed = n;
  int rc = se->store->vtable->add(se->store, recs, n, replace, &failed);
  if (rc != APSCHED_OK && failed < n && failed_out) *failed_out = failed;
  if (rc == APSCHED_EEXIST && failed < n) {
    apsched__take_plugin_error();
    return apsched__error(rc, "id: '%.64s' is already used by a job in '%s'", recs[failed]->id,
                          se->alias);
  }
  if (rc != APSCHED_OK && failed < n) {
    const char *why = apsched__take_plugin_error();
    return apsched__error(rc, "job store '%s' refused job '%.64s': %s", se->alias,
                          recs[failed]->id, why[0] ? why : apsched_strerror(rc));
  }
  if (rc != APSCHED_OK) return apsched__store_error(se, "add", rc);
  return APSCHED_OK;
}

/* The earliest next run time among recs. */
static apsched_time_t earliest(apsched_job_record *const *recs, size_t n) {
  apsched_time_t t = APSCHED_TIME_NONE;
  for (size_t i = 0; i < n; i++)
    if (recs[i]->next_run_time != APSCHED_TIME_NONE &&
        (t == APSCHED_TIME_NONE || recs[i]->next_run_time < t))
      t = recs[i]->next_run_time;
  return t;
}

/* A job added again with replace_existing and the same trigger keeps the
 * stored schedule (a program that adds its jobs at every start does not
 * reset them). One that does not keep it is scheduled from the clock read
 * here, inside the store's section: a time read before the section was free
 * may be one the loop claimed and ran meanwhile (it would run twice). */
static int keep_schedules(apsched_scheduler *s, store_entry *se, apsched_job_record **recs,
                          size_t n, const bool *keep) {
  apsched_time_t now = APSCHED_TIME_NONE;
  for (size_t i = 0; keep && i < n; i++) {
    if (!keep[i]) continue;
    const apsched_job_record *old;
    int rc = se->store->vtable->lookup(se->store, recs[i]->id, &old);
    if (rc != APSCHED_OK && rc != APSCHED_ENOENT) return apsched__store_error(se, "lookup", rc);
    if (rc == APSCHED_OK && !(old->flags & APSCHED_JOB_BROKEN) &&
        old->next_run_time != APSCHED_TIME_NONE &&
        apsched_trigger_equal(old->trigger, recs[i]->trigger)) {
      recs[i]->next_run_time = old->next_run_time;
      recs[i]->trigger_time = old->trigger_time;
      continue;
    }
    if (now == APSCHED_TIME_NONE) now = apsched__wall(s);
    schedule_first(recs[i], now);
    if (recs[i]->next_run_time == APSCHED_TIME_NONE)
      return apsched__error(APSCHED_EINVAL, "trigger: job '%.64s' never fires from now on",
                            recs[i]->id);
  }
  return APSCHED_OK;
}

/* Adds records to a store as one batch and announces them. Lock held (a
 * blocking store is called without it). On success the store owns them.
 * keep (may be NULL): which records may keep a stored schedule. */
static int add_to_store(apsched_scheduler *s, store_entry *se, apsched_job_record **recs,
                        size_t n, const bool *replace, const bool *keep, notice_list *nl,
                        size_t *failed) {
  const char *alias = se->alias;
  /* Names and ids for the events, read before the store owns the records. */
  size_t mark = nl->count;
  for (size_t i = 0; i < n; i++) {
    apsched__job_event(s, nl, APSCHED_EVENT_JOB_ADDED, recs[i]->id, alias);
    apsched__log_later(s, nl, APSCHED_LOG_INFO, "Added job \"%s\" to job store \"%s\"",
                       apsched__record_name(recs[i]), alias);
  }
  int rc = APSCHED_OK;
  for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
    rc = check_store_policies(se, recs[i]);
    if (rc != APSCHED_OK && failed) *failed = i;
  }
  if (rc != APSCHED_OK) {
    apsched__notices_truncate(s, nl, mark);
    return rc;
  }
  apsched__store_enter(s, se);
  rc = keep_schedules(s, se, recs, n, keep);
  apsched_time_t first = earliest(recs, n);
  if (rc == APSCHED_OK) rc = store_add(se, recs, n, replace, failed);
  if (rc == APSCHED_OK) {
    apsched__section_lock(s, se);
    apsched__wake_if_earlier(s, se, first);
    apsched__section_unlock(s, se);
  }
  apsched__store_leave(s, se);
  if (rc != APSCHED_OK) apsched__notices_truncate(s, nl, mark);
  return rc;
}

/* ---------------------------------------------------------- pending jobs */

void apsched__wait_start(apsched_scheduler *s) {
  while (s->starting) pthread_cond_wait(&s->changed, &s->lock);
}

static void pending_unlink(apsched_scheduler *s, pending_job *p) {
  apsched__strmap_remove(&s->pending_index, p->rec->id);
  if (p->prev) p->prev->next = p->next;
  else s->pending_head = p->next;
  if (p->next) p->next->prev = p->prev;
  else s->pending_tail = p->prev;
}

static void pending_free(apsched_scheduler *s, pending_job *p) {
  pending_unlink(s, p);
  apsched_job_record_free(p->rec);
  apsched__dealloc(s, p);
}

static pending_job *pending_find(apsched_scheduler *s, const char *id, const char *jobstore) {
  pending_job *p = apsched__strmap_get(&s->pending_index, id);
  if (p && jobstore && strcmp(p->jobstore, jobstore) != 0) return NULL;
  return p;
}

void apsched__free_pending(apsched_scheduler *s) {
  while (s->pending_head) pending_free(s, s->pending_head);
  apsched__strmap_free(&s->pending_index);
}

int apsched__check_pending(apsched_scheduler *s) {
  for (pending_job *p = s->pending_head; p; p = p->next) {
    if (!apsched__find_store(s, p->jobstore))
      return apsched__error(APSCHED_ENOENT,
                            "start: pending job '%.64s' names job store '%.64s', which does not exist",
                            p->rec->id, p->jobstore);
    if (!apsched__find_executor(s, p->rec->executor))
      return apsched__error(APSCHED_ENOENT,
                            "start: pending job '%.64s' names executor '%.64s', which does not exist",
                            p->rec->id, p->rec->executor);
    int rc = check_can_terminate(apsched__find_executor(s, p->rec->executor), p->rec);
    if (rc == APSCHED_OK) rc = check_store_policies(apsched__find_store(s, p->jobstore), p->rec);
    if (rc != APSCHED_OK) return rc;
  }
  return APSCHED_OK;
}

/* Commits the pending jobs of the first pending job's store as one batch. */
static int commit_one_store(apsched_scheduler *s, apsched_time_t now, notice_list *nl) {
  const char *alias = s->pending_head->jobstore;
  store_entry *se = apsched__find_store(s, alias);
  if (!se) return apsched__error(APSCHED_ENOENT, "start: no job store '%.64s'", alias);
  size_t n = 0;
  for (pending_job *p = s->pending_head; p; p = p->next) n += p->jobstore == alias;
  apsched_job_record **recs = apsched__alloc(s, n * sizeof *recs);
  bool *replace = apsched__alloc(s, 2 * n * sizeof *replace), *keep = replace + n;
  pending_job **nodes = apsched__alloc(s, n * sizeof *nodes);
  int rc = APSCHED_ENOMEM;
  if (!recs || !replace || !nodes) goto out;
  size_t k = 0;
  for (pending_job *p = s->pending_head; p; p = p->next) {
    if (p->jobstore != alias) continue;
    /* The store gets a copy with its first run time, as APScheduler computes
     * a pending job's first run time at start; the pending job stays as it
     * is until the store has the copy. */
    apsched_job_record *rec = apsched_job_record_copy(p->rec);
    if (!rec) break;
    if (p->paused) rec->next_run_time = rec->trigger_time = APSCHED_TIME_NONE;
    else if (!p->explicit_next) schedule_first(rec, now);
    nodes[k] = p;
    replace[k] = p->replace_existing;
    keep[k] = p->replace_existing && !p->paused && !p->explicit_next;
    recs[k++] = rec;
  }
  if (k < n) {
    for (size_t i = 0; i < k; i++) apsched_job_record_free(recs[i]);
    goto out;
  }
  rc = add_to_store(s, se, recs, n, replace, keep, nl, NULL);
  if (rc != APSCHED_OK) {
    for (size_t i = 0; i < n; i++) apsched_job_record_free(recs[i]); /* the pending jobs stay */
    goto out;
  }
  /* The store owns the copies now; the pending originals go. Their
   * arguments live on in the copies, so no destructor runs. */
  for (size_t i = 0; i < n; i++) pending_free(s, nodes[i]);
out:
  apsched__dealloc(s, recs);
  apsched__dealloc(s, replace);
  apsched__dealloc(s, nodes);
  return rc;
}

int apsched__commit_pending(apsched_scheduler *s, notice_list *nl) {
  apsched_time_t now = apsched__wall(s);
  while (s->pending_head) {
    int rc = commit_one_store(s, now, nl);
    if (rc != APSCHED_OK) return rc;
  }
  return APSCHED_OK;
}

/* Makes recs pending, all or nothing (the scheduler is stopped). Lock held. */
static int add_pending(apsched_scheduler *s, apsched_job_record **recs, size_t n,
                       const apsched_job_options *opts, const char *alias, notice_list *nl) {
  store_entry *se = apsched__find_store(s, alias);
  /* Duplicates are refused now, not at start: among pending jobs, in the
   * batch, and in the store if it exists already. */
  apsched_strmap seen = {0};
  int rc = APSCHED_OK;
  for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
    if (opts[i].replace_existing) continue;
    const char *id = recs[i]->id;
    if (apsched__strmap_get(&s->pending_index, id) || apsched__strmap_get(&seen, id))
      rc = apsched__error(APSCHED_EEXIST, "id: '%.64s' is already used by a pending job", id);
    else if (n > 1 && apsched__strmap_put(&seen, id, recs[i]) != 0)
      rc = APSCHED_ENOMEM;
  }
  apsched__strmap_free(&seen);
  if (rc == APSCHED_OK && se) {
    const char *store_alias = se->alias;
    apsched__store_enter(s, se);
    for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
      if (opts[i].replace_existing) continue;
      const apsched_job_record *old;
      int lr = se->store->vtable->lookup(se->store, recs[i]->id, &old);
      if (lr == APSCHED_OK)
        rc = apsched__error(APSCHED_EEXIST, "id: '%.64s' is already used by a job in '%s'",
                            recs[i]->id, store_alias);
      else if (lr != APSCHED_ENOENT)
        rc = apsched__store_error(se, "lookup", lr);
    }
    apsched__store_leave(s, se);
  }
  if (rc != APSCHED_OK) return rc;
  /* Allocate every node first so linking cannot fail halfway. */
  pending_job **nodes = apsched__alloc(s, (n ? n : 1) * sizeof *nodes);
  if (!nodes) return APSCHED_ENOMEM;
  size_t k;
  for (k = 0; k < n; k++) {
    nodes[k] = apsched__alloc(s, sizeof **nodes);
    if (!nodes[k]) break;
  }
  /* The index must have room for every new id before anything changes:
   * put each one (re-keying an existing slot never allocates). */
  for (size_t i = 0; k == n && i < n; i++) {
    if (apsched__strmap_get(&s->pending_index, recs[i]->id)) continue;
    if (apsched__strmap_put(&s->pending_index, recs[i]->id, nodes[i]) != 0) {
      for (size_t j = 0; j < i; j++)
        if (apsched__strmap_get(&s->pending_index, recs[j]->id) == nodes[j])
          apsched__strmap_remove(&s->pending_index, recs[j]->id);
      k = 0;
      break;
    }
  }
  if (k < n) {
    for (size_t i = 0; i < k; i++) apsched__dealloc(s, nodes[i]);
    apsched__dealloc(s, nodes);
    return APSCHED_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    const apsched_job_options *o = &opts[i];
    pending_job *old = apsched__strmap_get(&s->pending_index, recs[i]->id);
    if (old && old != nodes[i]) pending_free(s, old); /* replace_existing */
    pending_job *p = nodes[i];
    *p = (pending_job){.rec = recs[i], .jobstore = alias, .replace_existing = o->replace_existing,
                       .explicit_next = o->next_run_time != 0, .paused = o->paused,
                       .prev = s->pending_tail};
    if (o->next_run_time) recs[i]->next_run_time = recs[i]->trigger_time = o->next_run_time;
    apsched__strmap_put(&s->pending_index, recs[i]->id, p); /* present: no allocation */
    if (s->pending_tail) s->pending_tail->next = p;
    else s->pending_head = p;
    s->pending_tail = p;
    apsched__log_later(s, nl, APSCHED_LOG_INFO,
                       "Adding job tentatively -- it will be properly scheduled when the "
                       "scheduler starts");
  }
  apsched__dealloc(s, nodes);
  return APSCHED_OK;
}

/* ------------------------------------------------------------- add_job */

/* Adds n jobs, all or nothing; *failed (if given) is the index of the job
 * that made the call fail. */
static int add_jobs(apsched_scheduler *s, const apsched_job_options *opts, size_t n, size_t *failed,
                    char *id_out, size_t id_len) {
  apsched_time_t now = apsched__wall(s);
  apsched_job_record *one = NULL, **recs = n == 1 ? &one : calloc(n, sizeof *recs);
  bool flags_one[2], *replace = n == 1 ? flags_one : calloc(2 * n, sizeof *replace);
  int rc = APSCHED_OK;
  if (!recs || !replace) {
    rc = APSCHED_ENOMEM;
    goto out_free;
  }
  const char *store_name = opts[0].jobstore ? opts[0].jobstore : "default";
  for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
    const char *st = opts[i].jobstore ? opts[i].jobstore : "default";
    if (i > 0 && strcmp(st, store_name) != 0) {
      rc = apsched__error(APSCHED_EINVAL,
                          "jobs[%zu].jobstore: '%.64s' differs from '%.64s' (a batch goes to one store)",
                          i, st, store_name);
    } else {
      rc = build_record(s, &opts[i], now, &recs[i]);
    }
    replace[i] = opts[i].replace_existing;
    /* keep[i]: a re-added job whose trigger did not change keeps its schedule. */
    replace[n + i] = opts[i].replace_existing && !opts[i].paused && !opts[i].next_run_time;
    if (rc != APSCHED_OK && failed) *failed = i;
  }
  if (rc == APSCHED_OK && id_out && id_len <= strlen(recs[0]->id))
    rc = apsched__error(APSCHED_EINVAL, "id_out: %zu bytes cannot hold the id", id_len);
  if (rc != APSCHED_OK) goto out_free;

  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  apsched__wait_start(s);
  /* Aliases of existing stores and executors are interned already. */
  store_entry *found = apsched__find_store(s, store_name);
  const char *alias = found ? found->alias : apsched__intern(s, store_name);
  if (!alias) rc = APSCHED_ENOMEM;
  for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
    const char *name = opts[i].executor ? opts[i].executor : "default";
    executor_entry *ex = apsched__find_executor(s, name);
    recs[i]->executor = ex ? ex->alias : apsched__intern(s, name);
    if (!recs[i]->executor) rc = APSCHED_ENOMEM;
    if (rc == APSCHED_OK) rc = check_executor(s, recs[i], true);
    if (rc != APSCHED_OK && failed) *failed = i;
  }
  if (rc == APSCHED_OK && s->state == APSCHED_STATE_STOPPED) {
    rc = add_pending(s, recs, n, opts, alias, &nl);
  } else if (rc == APSCHED_OK) {
    store_entry *se = found ? found : apsched__find_store(s, alias);
    if (!se) rc = apsched__error(APSCHED_ENOENT, "jobstore: no job store '%.64s'", alias);
    for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
      const apsched_job_options *o = &opts[i];
      if (o->next_run_time) {
        recs[i]->next_run_time = recs[i]->trigger_time = o->next_run_time;
      } else if (!o->paused) {
        schedule_first(recs[i], now);
        if (recs[i]->next_run_time == APSCHED_TIME_NONE) {
          rc = apsched__error(APSCHED_EINVAL, "trigger: job '%.64s' never fires from now on",
                              recs[i]->id);
          if (failed) *failed = i;
        }
      }
    }
    if (rc == APSCHED_OK) rc = add_to_store(s, se, recs, n, replace, replace + n, &nl, failed);
  }
  if (rc == APSCHED_OK) {
    if (id_out) memcpy(id_out, recs[0]->id, strlen(recs[0]->id) + 1);
    memset(recs, 0, n * sizeof *recs); /* owned by the store or the pending list now */
  }
  apsched__unlock(s);
  if (rc != APSCHED_OK) apsched__notices_drop(s, &nl);
  else if (nl.count > 0) apsched__notices_flush(s, &nl); /* none without listeners or logging */
out_free:
  if (recs) discard_new_records(recs, n);
  if (n != 1) {
    free(recs);
    free(replace);
  }
  return rc;
}

int apsched_add_job(apsched_scheduler *s, const apsched_job_options *o, char *id_out,
                    size_t id_len) {
  if (!s || !o) return apsched__error(APSCHED_EINVAL, "add_job: %s is NULL", !s ? "scheduler" : "options");
  return add_jobs(s, o, 1, NULL, id_out, id_len);
}

int apsched_add_jobs(apsched_scheduler *s, const apsched_job_options *jobs, size_t n,
                     size_t *failed_index) {
  if (failed_index) *failed_index = n;
  if (!s || (!jobs && n > 0))
    return apsched__error(APSCHED_EINVAL, "add_jobs: %s is NULL", !s ? "scheduler" : "jobs");
  if (n == 0) return APSCHED_OK;
  return add_jobs(s, jobs, n, failed_index, NULL, 0);
}

/* ---------------------------------------------- lookup across the stores */

static int find_job(apsched_scheduler *s, const char *id, const char *jobstore, found_job *f) {
  memset(f, 0, sizeof *f);
  apsched__wait_start(s);
  pending_job *p = pending_find(s, id, jobstore);
  if (p) {
    f->rec = p->rec;
    f->pending = p;
    f->alias = p->jobstore;
    return APSCHED_OK;
  }
restart:;
  unsigned gen = s->stores_gen;
  for (store_entry *e = s->stores; e; e = e->next) {
    if (jobstore && strcmp(e->alias, jobstore) != 0) continue;
    apsched__store_enter(s, e);
    const apsched_job_record *rec = NULL;
    int rc = e->store->vtable->lookup(e->store, id, &rec);
    if (rc == APSCHED_OK) {
      f->rec = rec;
      f->store = e;
      f->alias = e->alias;
      return APSCHED_OK;
    }
    if (rc != APSCHED_ENOENT) rc = apsched__store_error(e, "lookup", rc);
    apsched__store_leave(s, e);
    if (rc != APSCHED_ENOENT) return rc;
    /* A blocking store was called without the lock: if the list changed
     * meanwhile, e may be gone; look again from the start. */
    if (s->stores_gen != gen) goto restart;
  }
  return apsched__error(APSCHED_ENOENT, "no job '%.64s'%s%.64s%s", id,
                        jobstore ? " in job store '" : "", jobstore ? jobstore : "",
                        jobstore ? "'" : "");
}

static void found_leave(apsched_scheduler *s, found_job *f) {
  if (f->store) apsched__store_leave(s, f->store);
  f->store = NULL;
}

/* Stores a changed copy of the found job: replaces the pending record, or
 * updates the store (which then owns copy). On error the caller still owns
 * copy. Inside the found job's section. */
static int store_copy(apsched_scheduler *s, found_job *f, apsched_job_record *copy) {
  if (f->pending) {
    apsched_job_record *old = f->pending->rec;
    f->pending->rec = copy;
    apsched__strmap_put(&s->pending_index, copy->id, f->pending); /* re-keys: no allocation */
    apsched_job_record_free(old);
    return APSCHED_OK;
  }
  apsched_time_t next = copy->next_run_time;
  int rc = f->store->store->vtable->update(f->store->store, copy);
  if (rc != APSCHED_OK) return apsched__store_error(f->store, "update", rc);
  apsched__section_lock(s, f->store);
  apsched__wake_if_earlier(s, f->store, next);
  apsched__section_unlock(s, f->store);
  return APSCHED_OK;
}

static int remove_found(apsched_scheduler *s, found_job *f, notice_list *nl) {
  const char *id = f->rec->id;
  apsched__job_event(s, nl, APSCHED_EVENT_JOB_REMOVED, id, f->alias);
  apsched__log_later(s, nl, APSCHED_LOG_INFO, "Removed job %s", id);
  if (f->pending) {
    pending_free(s, f->pending);
    return APSCHED_OK;
  }
  int rc = f->store->store->vtable->remove(f->store->store, id);
  return rc == APSCHED_OK ? rc : apsched__store_error(f->store, "remove", rc);
}

int apsched_remove_job(apsched_scheduler *s, const char *id, const char *jobstore) {
  if (!s || !id) return apsched__error(APSCHED_EINVAL, "remove_job: %s is NULL", !s ? "scheduler" : "id");
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  found_job f;
  int rc = find_job(s, id, jobstore, &f);
  if (rc == APSCHED_OK) {
    rc = remove_found(s, &f, &nl);
    found_leave(s, &f);
  }
  apsched__unlock(s);
  if (rc == APSCHED_OK) apsched__notices_flush(s, &nl);
  else apsched__notices_drop(s, &nl);
  return rc;
}

/* Whether a store alias may be named in a query: it exists, or the
 * scheduler is stopped and the store may still come (the default store, or
 * one a pending job names). Lock held. */
int apsched__check_store_alias(apsched_scheduler *s, const char *jobstore) {
  if (!jobstore || apsched__find_store(s, jobstore)) return APSCHED_OK;
  if (s->state == APSCHED_STATE_STOPPED) {
    if (strcmp(jobstore, "default") == 0) return APSCHED_OK;
    for (pending_job *p = s->pending_head; p; p = p->next)
      if (strcmp(p->jobstore, jobstore) == 0) return APSCHED_OK;
  }
  return apsched__error(APSCHED_ENOENT, "jobstore: no job store '%.64s'", jobstore);
}

int apsched_remove_all_jobs(apsched_scheduler *s, const char *jobstore) {
  if (!s) return apsched__error(APSCHED_EINVAL, "remove_all_jobs: scheduler is NULL");
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  apsched__wait_start(s);
  int rc = apsched__check_store_alias(s, jobstore);
  bool any = false;
restart:;
  unsigned gen = s->stores_gen;
  for (store_entry *e = s->stores; e && rc == APSCHED_OK; e = e->next) {
    if (jobstore && strcmp(e->alias, jobstore) != 0) continue;
    apsched__store_enter(s, e);
    int r = e->store->vtable->remove_all(e->store);
    if (r != APSCHED_OK) rc = apsched__store_error(e, "remove_all", r);
    apsched__store_leave(s, e);
    /* Stores are cleared one by one: each one cleared is announced, even if
     * a later one fails. Clearing twice is harmless, so a change of the
     * store list meanwhile just starts over. */
    any |= r == APSCHED_OK;
    if (rc == APSCHED_OK && s->stores_gen != gen) goto restart;
  }
  if (rc == APSCHED_OK) {
    for (pending_job *p = s->pending_head, *next; p; p = next) {
      next = p->next;
      if (!jobstore || strcmp(p->jobstore, jobstore) == 0) pending_free(s, p);
    }
    any = true;
  }
  if (any) {
    notice *n = apsched__notice_if_wanted(s, &nl, APSCHED_EVENT_ALL_JOBS_REMOVED);
    if (n) n->ev.alias = jobstore ? apsched__intern(s, jobstore) : NULL;
  }
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  return rc;
}

/* ------------------------------------------- pause / resume / modify */

/* What a change does to a copy of the job (pending says whether the job
 * is still pending); non-OK refuses the change. Runs inside the job's
 * section: it may take the lock only through apsched__section_lock. */
typedef int (*change_fn)(apsched_scheduler *s, found_job *f, apsched_job_record *copy, void *ctx);

/* Finds the job, applies change to a copy, and stores it: all or nothing,
 * announced as JOB_MODIFIED (or JOB_REMOVED if *remove was set). */
static int change_job(apsched_scheduler *s, const char *id, const char *jobstore, change_fn change,
                      void *ctx, bool *remove, bool new_trigger) {
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  found_job f;
  int rc = find_job(s, id, jobstore, &f);
  if (rc == APSCHED_OK && (f.rec->flags & APSCHED_JOB_BROKEN)) {
    const char *why = apsched_trigger_unparsed_why(f.rec->trigger);
    rc = apsched__error(APSCHED_EINVAL,
                        "job '%.64s' in '%s' cannot be decoded (%s): it is kept as stored; only "
                        "remove_job works on it",
                        id, f.alias, why ? why : "?");
    found_leave(s, &f);
  } else if (rc == APSCHED_OK) {
    /* A change that brings its own trigger needs no clone of the old one. */
    apsched_job_record *copy = apsched__record_copy(f.rec, !new_trigger);
    rc = copy ? change(s, &f, copy, ctx) : APSCHED_ENOMEM;
    if (rc == APSCHED_OK && remove && *remove) {
      rc = remove_found(s, &f, &nl);
      apsched_job_record_free(copy);
    } else if (rc == APSCHED_OK) {
      apsched__job_event(s, &nl, APSCHED_EVENT_JOB_MODIFIED, id, f.alias);
      rc = store_copy(s, &f, copy);
      if (rc != APSCHED_OK) apsched_job_record_free(copy);
    } else {
      apsched_job_record_free(copy);
    }
    found_leave(s, &f);
  }
  apsched__unlock(s);
  if (rc == APSCHED_OK) apsched__notices_flush(s, &nl);
  else apsched__notices_drop(s, &nl);
  return rc;
}

static int pause_change(apsched_scheduler *s, found_job *f, apsched_job_record *copy, void *ctx) {
  (void)s;
  (void)ctx;
  if (f->pending) {
    f->pending->explicit_next = false;
    f->pending->paused = true;
  }
  copy->next_run_time = copy->trigger_time = APSCHED_TIME_NONE;
  return APSCHED_OK;
}

int apsched_pause_job(apsched_scheduler *s, const char *id, const char *jobstore) {
  if (!s || !id) return apsched__error(APSCHED_EINVAL, "pause_job: %s is NULL", !s ? "scheduler" : "id");
  return change_job(s, id, jobstore, pause_change, NULL, NULL, false);
}

typedef struct resume_ctx {
  bool remove;
} resume_ctx;

/* Resume and reschedule compute the next run time from the clock read inside
 * the store's section: a time read before it was free may be one the loop
 * claimed and ran meanwhile, which would then run twice. */
static int resume_change(apsched_scheduler *s, found_job *f, apsched_job_record *copy, void *ctx) {
  resume_ctx *r = ctx;
  if (f->pending) {
    /* Still pending: its first run time is computed at start. */
    f->pending->paused = false;
    copy->failures = 0;
    return APSCHED_OK;
  }
  schedule_first(copy, apsched__wall(s));
  copy->failures = 0; /* pause_after_failures counts afresh */
  r->remove = copy->next_run_time == APSCHED_TIME_NONE; /* nothing left to run: like APScheduler */
  return APSCHED_OK;
}

int apsched_resume_job(apsched_scheduler *s, const char *id, const char *jobstore) {
  if (!s || !id) return apsched__error(APSCHED_EINVAL, "resume_job: %s is NULL", !s ? "scheduler" : "id");
  resume_ctx r = {.remove = false};
  return change_job(s, id, jobstore, resume_change, &r, &r.remove, false);
}

/* A validated set of changes, ready to apply without failing. */
typedef struct prepared_change {
  const apsched_func *func;
  char *name;
  apsched_trigger *trigger;
  apsched_job_args *args;
  bool set_args;
  bool new_arg; /* args carry the caller's new pointer, not the job's */
} prepared_change;

static void prepared_free(prepared_change *p) {
  free(p->name);
  apsched_trigger_free(p->trigger);
  if (p->new_arg) apsched__args_disown(p->args); /* still the caller's on failure */
  apsched__args_unref(p->args);
}

static int prepare_change(const apsched_job_changes *c, apsched_time_t now, prepared_change *p) {
  memset(p, 0, sizeof *p);
  int rc = check_settings(c->name, c->max_instances, c->misfire_grace_time, c->max_runtime,
                          c->coalesce, c->executor);
  if (rc != APSCHED_OK) return rc;
  if (c->set_arg_bytes && c->arg_len && !c->arg_bytes)
    return apsched__error(APSCHED_EINVAL, "arg_bytes: NULL with arg_len %zu", c->arg_len);
  rc = check_delivery(c->delivery);
  if (rc == APSCHED_OK) rc = check_policies(c->overlap, c->catchup_window, c->pause_after_failures);
  if (rc != APSCHED_OK) return rc;
  if ((!c->set_arg && (c->arg || c->arg_free)) || (!c->set_arg_bytes && (c->arg_bytes || c->arg_len)))
    return apsched__error(APSCHED_EINVAL, "arg/arg_bytes given without set_arg/set_arg_bytes");
  if (c->func || c->func_name) {
    rc = resolve_func(c->func, c->func_name, &p->func);
    if (rc != APSCHED_OK) return rc;
  }
  if (c->trigger) {
    rc = copy_trigger(c->trigger, now, &p->trigger);
    if (rc != APSCHED_OK) return rc;
  }
  if (c->name && !(p->name = apsched__strdup(c->name))) goto oom;
  return APSCHED_OK;
oom:
  prepared_free(p);
  return APSCHED_ENOMEM;
}

/* Builds the new argument block: changed parts from c, others from old. */
static int prepare_args(const apsched_job_changes *c, const apsched_job_args *old,
                        prepared_change *p) {
  if (!c->set_arg && !c->set_arg_bytes) return APSCHED_OK;
  const void *bytes = c->set_arg_bytes ? c->arg_bytes : (old ? old->bytes : NULL);
  size_t len = c->set_arg_bytes ? c->arg_len : (old ? old->len : 0);
  bool oom;
  /* An unchanged pointer is shared with the old block, destructor and all. */
  p->args = c->set_arg ? apsched__args_new(c->arg, c->arg_free, bytes, len, &oom)
                       : apsched__args_with_bytes(old, bytes, len, &oom);
  p->set_args = true;
  p->new_arg = c->set_arg;
  return oom ? APSCHED_ENOMEM : APSCHED_OK;
}

typedef struct modify_ctx {
  const apsched_job_changes *c;
  prepared_change *p;
  const char *executor; /* interned, or NULL */
} modify_ctx;

static int modify_change(apsched_scheduler *s, found_job *f, apsched_job_record *copy, void *ctx) {
  modify_ctx *m = ctx;
  const apsched_job_changes *c = m->c;
  prepared_change *p = m->p;
  int rc = prepare_args(c, copy->args, p);
  if (rc != APSCHED_OK) return rc;
  if (p->func) copy->func = p->func;
  if (p->name) {
    free(copy->name);
    copy->name = p->name;
    p->name = NULL;
  }
  if (p->trigger) {
    apsched__record_set_trigger(copy, p->trigger);
    p->trigger = NULL;
  }
  if (p->set_args) {
    /* p keeps its reference: if the change fails, the caller's new pointer
     * must go back to the caller, not to the copy's destructor. */
    apsched__args_unref(copy->args); /* the copy's reference; the stored job keeps its own */
    copy->args = apsched__args_ref(p->args);
  }
  if (m->executor) copy->executor = m->executor;
  if (c->max_instances) copy->max_instances = (uint16_t)c->max_instances;
  if (c->misfire_grace_time) copy->misfire_grace_ms = grace_to_ms(c->misfire_grace_time);
  if (c->max_runtime) copy->max_runtime_ms = c->max_runtime < 0 ? 0 : to_ms(c->max_runtime);
  if (c->coalesce != APSCHED_DEFAULT) {
    if (c->coalesce == APSCHED_YES) copy->flags |= APSCHED_JOB_COALESCE;
    else copy->flags &= (uint16_t)~APSCHED_JOB_COALESCE;
  }
  if (c->delivery == APSCHED_AT_LEAST_ONCE) copy->flags |= APSCHED_JOB_AT_LEAST_ONCE;
  else if (c->delivery == APSCHED_AT_MOST_ONCE) copy->flags &= (uint16_t)~APSCHED_JOB_AT_LEAST_ONCE;
  if (c->next_run_time) copy->next_run_time = copy->trigger_time = c->next_run_time;
  if (c->overlap) copy->overlap = (uint8_t)c->overlap;
  if (c->catchup_window) copy->catchup_window_ms = c->catchup_window < 0 ? 0 : to_ms(c->catchup_window);
  if (c->pause_after_failures)
    copy->pause_after_failures = (uint16_t)(c->pause_after_failures < 0 ? 0 : c->pause_after_failures);
  /* The changed job must still suit its (maybe new) executor and its store. */
  if (f->store) apsched__section_lock(s, f->store);
  if (m->executor || p->set_args || p->func || c->overlap)
    rc = check_executor(s, copy, m->executor != NULL);
  if (rc == APSCHED_OK && f->store && c->overlap) rc = check_store_policies(f->store, copy);
  if (f->store) apsched__section_unlock(s, f->store);
  if (rc == APSCHED_OK && f->pending && c->next_run_time) {
    f->pending->explicit_next = true;
    f->pending->paused = false;
  }
  return rc;
}

int apsched_modify_job(apsched_scheduler *s, const char *id, const char *jobstore,
                       const apsched_job_changes *c) {
  if (!s || !id || !c)
    return apsched__error(APSCHED_EINVAL, "modify_job: %s is NULL",
                          !s ? "scheduler" : !id ? "id" : "changes");
  apsched_time_t now = apsched__wall(s);
  prepared_change p;
  int rc = prepare_change(c, now, &p);
  if (rc != APSCHED_OK) return rc;
  modify_ctx m = {.c = c, .p = &p};
  if (c->executor) {
    apsched__lock(s);
    m.executor = apsched__intern(s, c->executor);
    apsched__unlock(s);
    if (!m.executor) rc = APSCHED_ENOMEM;
  }
  if (rc == APSCHED_OK) rc = change_job(s, id, jobstore, modify_change, &m, NULL, p.trigger != NULL);
  if (rc == APSCHED_OK) p.new_arg = false; /* the job owns the new pointer now */
  prepared_free(&p);
  return rc;
}

typedef struct reschedule_ctx {
  apsched_trigger *trigger;
  apsched_time_t now;
} reschedule_ctx;

static int reschedule_change(apsched_scheduler *s, found_job *f, apsched_job_record *copy,
                             void *ctx) {
  reschedule_ctx *r = ctx;
  apsched__record_set_trigger(copy, r->trigger);
  r->trigger = NULL;
  if (f->pending) {
    f->pending->explicit_next = false; /* computed from the new trigger at start */
    f->pending->paused = false;
  } else {
    /* As APScheduler: a trigger with no fire time leaves the job paused. */
    schedule_first(copy, apsched__wall(s));
  }
  return APSCHED_OK;
}

int apsched_reschedule_job(apsched_scheduler *s, const char *id, const char *jobstore,
                           const apsched_trigger *trigger) {
  if (!s || !id || !trigger)
    return apsched__error(APSCHED_EINVAL, "reschedule_job: %s is NULL",
                          !s ? "scheduler" : !id ? "id" : "trigger");
  if (!apsched__trigger_vtable_ok(trigger))
    return apsched__error(APSCHED_EINVAL, "trigger: unknown vtable version or missing entries");
  reschedule_ctx r = {.now = apsched__wall(s)};
  int rc = copy_trigger(trigger, r.now, &r.trigger);
  if (rc != APSCHED_OK) return rc;
  rc = change_job(s, id, jobstore, reschedule_change, &r, NULL, true);
  apsched_trigger_free(r.trigger);
  return rc;
}

/* ------------------------------------------------- for job_snapshots.c */

int apsched__find_job(apsched_scheduler *s, const char *id, const char *jobstore, found_job *f) {
  return find_job(s, id, jobstore, f);
}

void apsched__found_leave(apsched_scheduler *s, found_job *f) { found_leave(s, f); }
