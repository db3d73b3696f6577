/* Runs of a job asked for through the API rather than by its trigger: run
 * now (APScheduler 4's run_job) and backfill of a past range. Both leave the
 * schedule as it is, run whatever their lateness, and go through the same
 * overlap policy as a scheduled run. A store that several schedulers share
 * records them (runs_add: they count toward max_instances across the
 * schedulers and may wait there); elsewhere they are this scheduler's own
 * (README "Schedule policies"). */
#include "scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

/* The trigger's times in [from, to], oldest first, into a malloc'd array;
 * more than APSCHED_BACKFILL_LIMIT is APSCHED_ERANGE saying how many (at
 * least) the range holds. */
static int occurrences(const apsched_job_record *rec, apsched_time_t from, apsched_time_t to,
                       apsched_time_t **out, size_t *n) {
  apsched_time_t *times = malloc(APSCHED_BACKFILL_LIMIT * sizeof *times);
  if (!times) return APSCHED_ENOMEM;
  size_t k = 0;
  apsched_time_t t = apsched_trigger_next(rec->trigger, from == INT64_MIN + 1 ? from : from - 1, from);
  while (t != APSCHED_TIME_NONE && t <= to) {
    if (k == APSCHED_BACKFILL_LIMIT) {
      free(times);
      return apsched__error(APSCHED_ERANGE,
                            "backfill: job '%.64s' has more than %d occurrences in the range: "
                            "backfill a shorter one",
                            rec->id, APSCHED_BACKFILL_LIMIT);
    }
    times[k++] = t;
    apsched_time_t next = apsched_trigger_next(rec->trigger, t, t);
    if (next != APSCHED_TIME_NONE && next <= t) break; /* a trigger that does not advance */
    t = next;
  }
  if (k == 0) {
    free(times);
    char a[48], b[48];
    apsched_time_format(from, NULL, a, sizeof a);
    apsched_time_format(to, NULL, b, sizeof b);
    return apsched__error(APSCHED_ENOENT, "backfill: job '%.64s' has no occurrence in %s .. %s",
                          rec->id, a, b);
  }
  *out = times;
  *n = k;
  return APSCHED_OK;
}

/* Whether a run can be made for the found job here. */
static int check_runnable(const char *call, const found_job *f) {
  if (f->rec->flags & APSCHED_JOB_BROKEN)
    return apsched__error(APSCHED_EINVAL, "%s: job '%.64s' in '%s' cannot be decoded", call,
                          f->rec->id, f->alias);
  if (f->store && f->store->run_starting && !f->store->runs_add)
    return apsched__error(APSCHED_EINVAL,
                          "%s: job '%.64s' is in job store '%s', which several schedulers share: "
                          "a run that no store records would not count toward its max_instances "
                          "across them",
                          call, f->rec->id, f->alias);
  return APSCHED_OK;
}

/* One run of job id at the given times (all of [from, to] for a backfill,
 * now otherwise), queued under its overlap policy. */
static int run_on_demand(apsched_scheduler *s, const char *id, const char *jobstore, bool backfill,
                         apsched_time_t from, apsched_time_t to) {
  const char *call = backfill ? "backfill_job" : "run_job_now";
  if (!s || !id) return apsched__error(APSCHED_EINVAL, "%s: %s is NULL", call, !s ? "scheduler" : "id");
  if (backfill && (from == APSCHED_TIME_NONE || to == APSCHED_TIME_NONE || from > to))
    return apsched__error(APSCHED_EINVAL, "backfill_job: from (%lld) must be a time not after to (%lld)",
                          (long long)from, (long long)to);
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  int rc = APSCHED_OK;
  if (s->state == APSCHED_STATE_STOPPED || s->stopping)
    rc = apsched__error(APSCHED_ESTATE, "%s: the scheduler is not running", call);
  found_job f = {0};
  if (rc == APSCHED_OK) rc = apsched__find_job(s, id, jobstore, &f);
  apsched_run_ctx *run = NULL;
  const char *executor = NULL, *alias = NULL;
  size_t n = 0;
  int store_rc = APSCHED_OK;
  apsched_runs_waiting wait = {.replaced = APSCHED_TIME_NONE, .stop_time = APSCHED_TIME_NONE};
  if (rc == APSCHED_OK) {
    rc = check_runnable(call, &f);
    apsched_time_t now = apsched__wall(s), *times = &now;
    if (rc == APSCHED_OK && backfill) rc = occurrences(f.rec, from, to, &times, &n);
    else n = 1;
    if (rc == APSCHED_OK) {
      run = apsched__run_new(s, f.rec, f.alias, times, n);
      if (!run) rc = APSCHED_ENOMEM;
    }
    if (run && f.store && f.store->runs_add) {
      /* Inside the store's section: the store records the run, or keeps
       * it waiting, or says the job is full across the schedulers. */
      bool track = false;
      store_rc = f.store->runs_add(f.store->store, f.rec, times, n, &track, &wait);
      if (store_rc == APSCHED_OK && track && !wait.waiting) apsched__run_track(run, true);
      if (store_rc != APSCHED_OK && store_rc != APSCHED_EBUSY) {
        rc = apsched__store_error(f.store, backfill ? "recording a backfill" : "recording a run now",
                                  store_rc);
        apsched__run_abandon(run);
        run = NULL;
      }
    }
    if (times != &now) free(times);
    executor = f.rec->executor;
    alias = f.alias;
    apsched__found_leave(s, &f);
  }
  if (run) {
    apsched__run_on_demand(run);
    if (backfill)
      apsched__log_later(s, &nl, APSCHED_LOG_INFO, "Backfilling job \"%s\": %zu run time(s)",
                         apsched_run_job_name(run), n);
    else
      apsched__log_later(s, &nl, APSCHED_LOG_INFO, "Running job \"%s\" now (its schedule is kept)",
                         apsched_run_job_name(run));
    apsched__dispatch_run(s, &nl, alias, run, executor, store_rc, &wait);
  }
  apsched__unlock(s);
  apsched__dispatch_flush(s, &nl);
  return rc;
}

int apsched_run_job_now(apsched_scheduler *s, const char *id, const char *jobstore) {
  return run_on_demand(s, id, jobstore, false, 0, 0);
}

int apsched_backfill_job(apsched_scheduler *s, const char *id, const char *jobstore,
                         apsched_time_t from, apsched_time_t to) {
  return run_on_demand(s, id, jobstore, true, from, to);
}
