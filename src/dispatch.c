/* One pass over a store's due jobs. For each claimed job: work out its run
 * times (misfire, coalesce, bounded catch-up) and its next run time, store
 * that (release) with the records of its runs (runs_open), and only once the
 * store has it, hand the runs over. Runs a crashed scheduler left unfinished
 * (claim_orphans) are run again first. A store that fails keeps the job due;
 * nothing runs twice. */
#include "scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

/* Due jobs claimed from one store per pass; more are taken on the next pass. */
#define CLAIM_BATCH 256
/* Longest catch-up walked run by run; beyond it the trigger skips ahead. */
#define CATCHUP_STEPS 256
/* Most run times handed to an executor in one run (no coalescing, long grace). */
#define RUN_BATCH_MAX 256
/* Orphaned runs taken over per pass. */
#define ORPHAN_BATCH 64
/* Runs that waited in a shared store taken per pass, at most. */
#define WAITED_BATCH 64

/* What one due job does now. */
typedef struct run_plan {
  apsched_time_t times[RUN_BATCH_MAX]; /* to run */
  size_t n;
  uint64_t missed;                     /* past their grace time */
  bool missed_exact;
  apsched_time_t first_missed;
  bool window;                         /* the catch-up window, not the grace time, missed them */
  apsched_time_t next, next_base;      /* the next run time, with and without jitter */
  bool finished;                       /* the trigger has no next time: remove the job */
  apsched_time_t stuck_at;             /* NONE, or where the trigger stopped advancing */
} run_plan;

/* A run waiting for its instance slot and executor. */
typedef struct queued_run {
  apsched_run_ctx *run;
  const char *executor;   /* interned */
  apsched_reserve busy;   /* OK, or why the store says it cannot start (max_instances
                           * reached across schedulers): FULL or FULL_BUFFER */
  bool waited;            /* it waited in the store and starts now */
  apsched_runs_waiting wait; /* waiting > 0: the store keeps it waiting (and did the rest) */
} queued_run;

/* The trigger's next time after prev; *stuck when it does not advance (a
 * broken custom trigger would otherwise spin the loop forever). */
static apsched_time_t next_after(const apsched_trigger *t, apsched_time_t prev, apsched_time_t now,
                                 bool *stuck) {
  apsched_time_t next = apsched_trigger_next(t, prev, now);
  if (next != APSCHED_TIME_NONE && next <= prev) *stuck = true;
  return next;
}

/* The last fire time <= limit, given that from (<= limit) is one: galloping
 * backwards from limit keeps the number of trigger calls logarithmic in the
 * distance, whatever the trigger's period. */
static apsched_time_t last_fire_until(const apsched_trigger *t, apsched_time_t from,
                                      apsched_time_t limit) {
  for (int64_t w = 1; w > 0 && limit - w > from; w *= 2) {
    apsched_time_t c = apsched_trigger_next(t, limit - w, limit);
    if (c != APSCHED_TIME_NONE && c <= limit && c > from) {
      from = c;
      break;
    }
  }
  for (int steps = 0; steps < CATCHUP_STEPS; steps++) {
    apsched_time_t c = apsched_trigger_next(t, from, limit);
    if (c == APSCHED_TIME_NONE || c > limit || c <= from) break;
    from = c;
  }
  return from;
}

static void plan_runs(const apsched_job_record *rec, apsched_time_t now, run_plan *p) {
  const apsched_trigger *t = rec->trigger;
  const bool coalesce = rec->flags & APSCHED_JOB_COALESCE;
  const int64_t grace = apsched__grace_usec(rec->misfire_grace_ms);
  /* Runs that start before `late` are past their grace time already. */
  apsched_time_t late;
  if (grace == APSCHED_GRACE_UNLIMITED || __builtin_sub_overflow(now, grace, &late))
    late = INT64_MIN;
  /* The catch-up window bounds what is planned after downtime or a clock
   * jump; the grace time still judges each run when it starts. */
  apsched_time_t window_start;
  p->window = false;
  if (rec->catchup_window_ms &&
      !__builtin_sub_overflow(now, (int64_t)rec->catchup_window_ms * APSCHED_MSEC, &window_start) &&
      window_start > late) {
    late = window_start;
    p->window = true;
  }
  p->n = 0;
  p->missed = 0;
  p->missed_exact = true;
  p->first_missed = APSCHED_TIME_NONE;
  p->stuck_at = APSCHED_TIME_NONE;
  apsched_time_t latest = APSCHED_TIME_NONE;
  apsched_time_t at = rec->next_run_time;
  apsched_time_t base = rec->trigger_time == APSCHED_TIME_NONE ? at : rec->trigger_time;
  bool stuck = false;
  int steps = 0;

  while (at != APSCHED_TIME_NONE && at <= now) {
    if (coalesce) {
      latest = at;
    } else if (at < late) {
      if (p->missed++ == 0) p->first_missed = at;
    } else {
      p->times[p->n++] = at;
    }
    apsched_time_t prev = base;
    if (!coalesce && p->n == RUN_BATCH_MAX) {
      base = next_after(t, base, now, &stuck);
      at = apsched__with_jitter(t, base);
      break; /* the rest are handled on the next pass */
    }
    if (++steps == CATCHUP_STEPS) {
      /* A long downtime: jump instead of walking every missed run. */
      steps = 0;
      if (coalesce) {
        apsched_time_t last = last_fire_until(t, base, now);
        if (last > base) {
          base = last;
          at = apsched__with_jitter(t, base);
          if (at > now) at = base;
          continue; /* recorded as the latest at the top of the loop */
        }
      } else if (at < late) {
        /* Skip to the first run that may still be inside the grace window;
         * the runs jumped over are counted as "at least". */
        apsched_time_t from;
        if (__builtin_sub_overflow(late, t->jitter + 1, &from)) from = INT64_MIN;
        if (from > base) {
          base = next_after(t, from, now, &stuck);
          at = apsched__with_jitter(t, base);
          p->missed_exact = false;
          if (stuck) break;
          continue;
        }
      }
    }
    base = next_after(t, base, now, &stuck);
    if (stuck) {
      base = prev;
      break;
    }
    at = apsched__with_jitter(t, base);
  }
  if (coalesce && latest != APSCHED_TIME_NONE) {
    if (latest < late) {
      p->missed = 1;
      p->first_missed = latest;
    } else {
      p->times[p->n++] = latest;
    }
  }
  if (stuck) {
    /* Pause the job rather than spin on it. */
    p->stuck_at = base;
    p->next = p->next_base = APSCHED_TIME_NONE;
    p->finished = false;
    return;
  }
  p->finished = at == APSCHED_TIME_NONE;
  p->next = at;
  p->next_base = base;
}

/* A JOB_ERROR event that is not a run's outcome (the run was not started),
 * with its message, and an error log line. */
static void job_error(apsched_scheduler *s, notice_list *nl, const apsched_job_record *rec,
                      const char *id, const char *jobstore, apsched_time_t when, const char *why) {
  notice *e = apsched__notice_add(
      s, nl, apsched__wants(s, APSCHED_EVENT_JOB_ERROR) ? APSCHED_EVENT_JOB_ERROR : 0);
  if (!e) return;
  if (e->ev.code) {
    /* One owned buffer: the id, then the message. */
    size_t idlen = strlen(id) + 1, whylen = strlen(why) + 1;
    char *buf = apsched__alloc(s, idlen + whylen);
    if (buf) {
      memcpy(buf, id, idlen);
      memcpy(buf + idlen, why, whylen);
      e->owned = buf;
      e->ev.job_id = buf;
      e->ev.error = buf + idlen;
    }
    e->ev.jobstore = jobstore;
    e->ev.scheduled_run_time = when;
    e->ev.retval = -1;
  }
  apsched__notice_log(s, e, APSCHED_LOG_ERROR, "Job \"%s\": %s", rec ? apsched__record_name(rec) : id,
                      why);
}

/* The events of a stored plan: missed runs, a stuck trigger, a finished job. */
static void plan_notices(apsched_scheduler *s, notice_list *nl, const apsched_job_record *rec,
                         const char *jobstore, const run_plan *p, apsched_time_t now) {
  if (p->missed) {
    notice *m = apsched__notice_add(
        s, nl, apsched__wants(s, APSCHED_EVENT_JOB_MISSED) ? APSCHED_EVENT_JOB_MISSED : 0);
    if (m) {
      apsched__notice_own(s, m, m->ev.code ? rec->id : NULL, jobstore);
      m->ev.scheduled_run_time = p->first_missed;
      m->ev.missed_count = p->missed;
      m->ev.missed_count_exact = p->missed_exact;
      if (apsched__log_enabled(s, APSCHED_LOG_WARNING)) {
        char d[64];
        int64_t by;
        if (__builtin_sub_overflow(now, p->first_missed, &by)) by = INT64_MAX;
        apsched__format_duration(by, d, sizeof d);
        const char *why = p->window ? ", older than its catch-up window" : "";
        if (p->missed == 1)
          apsched__notice_log(s, m, APSCHED_LOG_WARNING, "Run time of job \"%s\" was missed by %s%s",
                              apsched__record_name(rec), d, why);
        else
          apsched__notice_log(s, m, APSCHED_LOG_WARNING,
                              "Run time of job \"%s\" was missed by %s (%s%llu run times missed%s)",
                              apsched__record_name(rec), d, p->missed_exact ? "" : "at least ",
                              (unsigned long long)p->missed, why);
      }
    }
  }
  if (p->stuck_at != APSCHED_TIME_NONE) {
    char why[200], when[48];
    apsched_time_format(p->stuck_at, NULL, when, sizeof when);
    snprintf(why, sizeof why,
             "trigger %s returned a next fire time that is not after %s: the job is paused",
             apsched_trigger_kind(rec->trigger), when);
    job_error(s, nl, rec, rec->id, jobstore, p->stuck_at, why);
  }
  if (p->finished) {
    /* The trigger is finished: the job goes, as in APScheduler. */
    apsched__job_event(s, nl, APSCHED_EVENT_JOB_REMOVED, rec->id, jobstore);
    apsched__log_later(s, nl, APSCHED_LOG_INFO, "Removed job %s", rec->id);
  }
}

/* A notice (code if some listener wants it, else one for the log only)
 * naming the run's job and times, copied: the run may be gone when it is
 * delivered. Lock held. */
static notice *run_notice(apsched_scheduler *s, notice_list *nl, int code, const char *jobstore,
                          apsched_run_ctx *run) {
  notice *e = apsched__notice_if_wanted(s, nl, code);
  if (!e) e = apsched__notice_add(s, nl, 0);
  if (e && e->ev.code) {
    const char *id = apsched_run_job_id(run);
    const apsched_time_t *times = apsched__run_times(run);
    size_t n = apsched_run_count(run);
    /* The id, then the run times, in one owned buffer. */
    size_t idlen = strlen(id) + 1, off = (idlen + 7) & ~(size_t)7;
    char *buf = apsched__alloc(s, off + n * sizeof(apsched_time_t));
    if (buf) {
      memcpy(buf, id, idlen);
      memcpy(buf + off, times, n * sizeof(apsched_time_t));
      e->owned = buf;
      e->ev.job_id = buf;
      e->ev.jobstore = jobstore;
      e->ev.scheduled_run_times = (apsched_time_t *)(void *)(buf + off);
      e->ev.run_time_count = n;
    }
  }
  return e;
}

/* A MAX_INSTANCES event for a run that does not start, and why (log).
 * Lock held. */
static void skipped_notice(apsched_scheduler *s, notice_list *nl, const char *jobstore,
                           apsched_run_ctx *run, apsched_reserve why) {
  notice *e = run_notice(s, nl, APSCHED_EVENT_JOB_MAX_INSTANCES, jobstore, run);
  const char *name = apsched_run_job_name(run);
  switch (why) {
  case APSCHED_RESERVE_FULL:
    apsched__notice_log(s, e, APSCHED_LOG_WARNING,
                        "Execution of job \"%s\" skipped: maximum number of running instances "
                        "reached (%u)",
                        name, apsched__run_max_instances(run));
    break;
  case APSCHED_RESERVE_FULL_BUFFER:
    apsched__notice_log(s, e, APSCHED_LOG_WARNING,
                        "Execution of job \"%s\" skipped: %d runs wait already (overlap policy "
                        "buffer_all)",
                        name, APSCHED_BUFFER_ALL_LIMIT);
    break;
  case APSCHED_RESERVE_WAITS: /* a waiting run replaced by a newer one */
    apsched__notice_log(s, e, APSCHED_LOG_WARNING,
                        "Execution of job \"%s\" skipped: a newer due run waits in its place "
                        "(overlap policy %s)",
                        name, apsched__overlap_name(apsched__run_overlap(run)));
    break;
  default:
    apsched__notice_log(s, e, APSCHED_LOG_ERROR, "Execution of job \"%s\" skipped: out of memory",
                        name);
  }
}

/* A running run o that a newer run under overlap asked to stop: told (and
 * terminated by executors that can, under terminate_other). Lock held. */
static void stop_running(apsched_scheduler *s, notice_list *nl, apsched_run_ctx *o, int overlap,
                         const char *name) {
  executor_entry *oex = apsched__find_executor(s, apsched__run_executor_alias(o));
  bool terminate = overlap == APSCHED_OVERLAP_TERMINATE_OTHER && oex &&
                   oex->executor->vtable->version >= 2 && oex->executor->vtable->terminate;
  if (terminate) oex->executor->vtable->terminate(oex->executor, o);
  if (apsched__log_enabled(s, APSCHED_LOG_WARNING)) {
    char when[48];
    apsched_time_format(apsched_run_scheduled_time(o), NULL, when, sizeof when);
    apsched__log_later(s, nl, APSCHED_LOG_WARNING,
                       "Job \"%s\": %s its run scheduled at %s (overlap policy %s)", name,
                       terminate ? "terminating" : "asking to stop", when,
                       apsched__overlap_name(overlap));
  }
}

static void buffered_notice(apsched_scheduler *s, notice_list *nl, const char *jobstore,
                            apsched_run_ctx *run, unsigned waiting) {
  notice *e = run_notice(s, nl, APSCHED_EVENT_JOB_BUFFERED, jobstore, run);
  apsched__notice_log(s, e, APSCHED_LOG_INFO,
                      "Run of job \"%s\" waits for a running one to end (overlap policy %s, %u "
                      "waiting)",
                      apsched_run_job_name(run), apsched__overlap_name(apsched__run_overlap(run)),
                      waiting);
}

/* The run waits for a running run of its job to end (JOB_BUFFERED); a run
 * it replaces is skipped, a running run it stops is told (and terminated
 * by executors that can). Lock held. */
static void run_waits(apsched_scheduler *s, notice_list *nl, const char *jobstore,
                      apsched_run_ctx *run, const apsched_overlap_effects *fx) {
  if (fx->dropped) {
    skipped_notice(s, nl, jobstore, fx->dropped, APSCHED_RESERVE_WAITS);
    apsched__run_skip(fx->dropped);
  }
  if (fx->stopped)
    stop_running(s, nl, fx->stopped, apsched__run_overlap(run), apsched_run_job_name(run));
  buffered_notice(s, nl, jobstore, run, fx->waiting);
}

/* The run waits in its shared store (runs_wait, runs_add), which did the
 * rest of the policy: a waiting run it replaced is reported skipped; a
 * running run of this scheduler it asked to stop is stopped here, one of
 * another scheduler is stopped there (apsched_store_stop_run). The run
 * itself is the store's now: freed here. Lock held. */
static void run_waits_in_store(apsched_scheduler *s, notice_list *nl, const char *jobstore,
                               apsched_run_ctx *run, const apsched_runs_waiting *w) {
  const char *name = apsched_run_job_name(run), *id = apsched_run_job_id(run);
  int overlap = apsched__run_overlap(run);
  if (w->replaced != APSCHED_TIME_NONE) {
    notice *e = apsched__notice_if_wanted(s, nl, APSCHED_EVENT_JOB_MAX_INSTANCES);
    if (!e) e = apsched__notice_add(s, nl, 0);
    if (e && e->ev.code) {
      apsched__notice_own(s, e, id, jobstore);
      e->ev.scheduled_run_time = w->replaced;
    }
    apsched__notice_log(s, e, APSCHED_LOG_WARNING,
                        "Execution of job \"%s\" skipped: a newer due run waits in its place "
                        "(overlap policy %s)",
                        name, apsched__overlap_name(overlap));
  }
  if (w->stop_time != APSCHED_TIME_NONE) {
    apsched_run_ctx *o =
        w->stop_here ? apsched__run_ask_stop(s, jobstore, id, w->stop_time, overlap) : NULL;
    if (o) {
      stop_running(s, nl, o, overlap, name);
    } else if (!w->stop_here && apsched__log_enabled(s, APSCHED_LOG_WARNING)) {
      char when[48];
      apsched_time_format(w->stop_time, NULL, when, sizeof when);
      apsched__log_later(s, nl, APSCHED_LOG_WARNING,
                         "Job \"%s\": asking the scheduler that runs it to stop its run scheduled "
                         "at %s (overlap policy %s)",
                         name, when, apsched__overlap_name(overlap));
    }
  }
  buffered_notice(s, nl, jobstore, run, w->waiting);
  apsched__run_abandon(run);
}

void apsched_store_stop_run(apsched_scheduler *s, const char *jobstore, const char *job_id,
                            apsched_time_t scheduled_time, bool terminate) {
  if (!s || !jobstore || !job_id) return;
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  int overlap = terminate ? APSCHED_OVERLAP_TERMINATE_OTHER : APSCHED_OVERLAP_CANCEL_OTHER;
  apsched_run_ctx *o = apsched__run_ask_stop(s, jobstore, job_id, scheduled_time, overlap);
  if (o) stop_running(s, &nl, o, overlap, apsched_run_job_name(o));
  apsched__unlock(s);
  apsched__dispatch_flush(s, &nl);
}

/* Reserves an instance slot and queues the run's SUBMITTED notice, or
 * applies the job's overlap policy, or reports why it cannot start. Lock
 * held. */
static void queue_run(apsched_scheduler *s, notice_list *nl, const char *jobstore, queued_run *q) {
  apsched_run_ctx *run = q->run;
  if (q->wait.waiting > 0) {
    run_waits_in_store(s, nl, jobstore, run, &q->wait);
    return;
  }
  const char *id = apsched_run_job_id(run);
  const apsched_time_t *times = apsched__run_times(run);
  size_t n = apsched_run_count(run);
  executor_entry *ex = apsched__find_executor(s, q->executor);
  if (!ex || !apsched_func_get(apsched_run_func(run))) {
    char why[300];
    if (!ex)
      snprintf(why, sizeof why, "executor \"%s\" does not exist: the run is skipped and the job kept",
               q->executor);
    else
      snprintf(why, sizeof why, "function \"%s\" is not registered: the run is skipped and the job kept",
               apsched_run_func(run)->name ? apsched_run_func(run)->name : "?");
    job_error(s, nl, NULL, id, jobstore, times[0], why);
    apsched__run_refuse(run, why);
    return;
  }
  /* Room for the SUBMITTED notice before a slot is reserved: once it is,
   * nothing here may fail (ending the run would take the lock held here). */
  if (!apsched__notice_room(s, nl)) {
    apsched__run_abandon(run); /* as when the slot itself cannot be had: the record stays open */
    return;
  }
  apsched_overlap_effects fx = {0};
  apsched_reserve res = q->busy != APSCHED_RESERVE_OK ? q->busy
                                                      : apsched__run_reserve(run, ex->alias, &fx);
  if (res == APSCHED_RESERVE_WAITS) {
    run_waits(s, nl, jobstore, run, &fx);
    return;
  }
  if (res != APSCHED_RESERVE_OK) {
    skipped_notice(s, nl, jobstore, run, res);
    /* max_instances is the job's policy: a tracked run ends as skipped.
     * Short of memory, its record stays open. */
    if (res != APSCHED_RESERVE_OOM) apsched__run_skip(run);
    else apsched__run_abandon(run);
    return;
  }
  notice *e = apsched__notice_add(
      s, nl, apsched__wants(s, APSCHED_EVENT_JOB_SUBMITTED) ? APSCHED_EVENT_JOB_SUBMITTED : 0);
  e->run = run; /* cannot fail: room was made above */
  e->exec = ex;
  ex->submitting++;
  s->running_runs++;
  e->ev.job_id = id;
  e->ev.jobstore = jobstore;
  e->ev.scheduled_run_times = times;
  e->ev.run_time_count = n;
  apsched__notice_log(s, e, APSCHED_LOG_INFO, "Submitted job \"%s\" to executor \"%s\"%s",
                      apsched_run_job_name(run), ex->alias,
                      q->waited ? " (its run waited for a running one)" : "");
}

/* A run of an orphan (lock may be dropped: only local data and the notice
 * list), announced as JOB_RECOVERED. NULL when memory is short (its record
 * stays open). */
static apsched_run_ctx *recover_run(apsched_scheduler *s, notice_list *nl, store_entry *se,
                                    const apsched_orphan_run *o) {
  const char *jobstore = se->alias;
  const apsched_job_record *rec = o->rec;
  apsched_run_ctx *run = apsched__run_new(s, rec, jobstore, &o->scheduled_time, 1);
  if (!run) {
    job_error(s, nl, rec, rec->id, jobstore, o->scheduled_time,
              "out of memory: an unfinished run is not run again now");
    return NULL;
  }
  apsched__run_recovered(run, o->attempt);
  apsched__run_track(run, se->run_starting != NULL);
  notice *e = apsched__notice_if_wanted(s, nl, APSCHED_EVENT_JOB_RECOVERED);
  if (!e) e = apsched__notice_add(s, nl, 0);
  if (e && e->ev.code) {
    apsched__notice_own(s, e, rec->id, jobstore);
    e->ev.scheduled_run_time = o->scheduled_time;
    e->ev.attempt = o->attempt;
  }
  if (apsched__log_enabled(s, APSCHED_LOG_WARNING)) {
    char when[48];
    apsched_time_format(o->scheduled_time, NULL, when, sizeof when);
    apsched__notice_log(s, e, APSCHED_LOG_WARNING,
                        "Run of job \"%s\" scheduled at %s did not finish before its scheduler "
                        "stopped: running it again (attempt %u)",
                        apsched__record_name(rec), when, o->attempt);
  }
  return run;
}

/* A claimed batch's records are touched here for the first time in a
 * while (with many jobs, a cache miss each): the record a few iterations
 * ahead is fetched while this one is planned. */
#define PREFETCH_AHEAD 4

static void prefetch_record(const apsched_job_record *rec) {
  __builtin_prefetch(rec);
  __builtin_prefetch((const char *)rec + 64);
  __builtin_prefetch((const char *)rec + 128);
}

apsched_time_t apsched__dispatch_store(apsched_scheduler *s, store_entry *se, apsched_time_t now,
                                       notice_list *nl) {
  if (apsched__store_backing_off(se, now)) return se->retry_at;
  /* A shared store's clock decides what is due (and how late); the time to
   * wake up is turned back into ours at the end. */
  int64_t offset = 0;
  if (se->clock) {
    apsched_time_t store_now = se->clock(se->store, now);
    if (__builtin_sub_overflow(store_now, now, &offset)) offset = 0;
    else now = store_now;
  }
  const char *alias = se->alias;
  const apsched_jobstore_vtable *vt = se->store->vtable;
  apsched_job_record *due[CLAIM_BATCH];
  apsched_orphan_run orphans[ORPHAN_BATCH];
  apsched_waited_run waited[WAITED_BATCH];
  queued_run queued[CLAIM_BATCH + ORPHAN_BATCH + WAITED_BATCH];
  size_t nqueued = 0;
  /* Runs recorded by runs_open whose release failed: not started, their
   * records closed after the section (the store may commit the batch). */
  apsched_run_ctx *unreleased[CLAIM_BATCH];
  size_t nunreleased = 0;
  run_plan plan;
  int failed = APSCHED_OK;
  const char *failed_what = NULL;
  apsched_time_t next = APSCHED_TIME_NONE;

  /* The runs that ended since the last pass go back to the store first:
   * in the claimed batch when the store can take them there (one commit
   * for both), else in a call of their own. */
  bool closes_in_batch = se->runs_closed_in_batch != NULL;
  if (se->closed_count > 0 && !closes_in_batch) {
    int rc = apsched__runs_flush(s, se);
    if (rc != APSCHED_OK) {
      apsched__store_outcome(s, se, rc, "recording ended runs in", nl);
      return se->retry_at;
    }
  }
  /* And the failures they count (pause_after_failures), before the jobs
   * they pause could be claimed. */
  if (se->failure_reports) {
    int rc = apsched__failures_apply(s, se, nl);
    if (rc != APSCHED_OK) {
      apsched__store_outcome(s, se, rc, "counting the failures of jobs in", nl);
      return se->retry_at;
    }
  }

  apsched_run_result *closing = NULL;
  size_t closing_cap = 0, nclosing = closes_in_batch ? apsched__runs_take(se, &closing, &closing_cap) : 0;
  bool closes_written = false;

  /* Inside the section only the store and local data are touched; a
   * blocking store's section runs without the scheduler lock. */
  apsched__store_enter(s, se);
  size_t batch_mark = nl->count;
  if (nclosing > 0) {
    int rc = se->runs_closed_in_batch(se->store, closing, nclosing);
    closes_written = rc == APSCHED_OK;
    if (!closes_written) {
      failed = rc;
      failed_what = "recording ended runs in";
    }
  }
  int norphans = failed == APSCHED_OK && se->claim_orphans
                     ? se->claim_orphans(se->store, orphans, ORPHAN_BATCH)
                     : 0;
  if (norphans < 0) {
    failed = norphans;
    failed_what = "taking over unfinished runs from";
    norphans = 0;
  }
  for (int i = 0; i < norphans; i++) {
    apsched_run_ctx *run = recover_run(s, nl, se, &orphans[i]);
    if (run && offset) apsched__run_clock_offset(run, offset);
    if (run) queued[nqueued++] = (queued_run){.run = run, .executor = orphans[i].rec->executor};
    apsched_job_record_free(orphans[i].rec);
  }
  int nwaited = failed == APSCHED_OK && se->claim_waiting
                    ? se->claim_waiting(se->store, waited, WAITED_BATCH)
                    : 0;
  if (nwaited < 0) {
    failed = nwaited;
    failed_what = "starting the runs that wait in";
    nwaited = 0;
  }
  for (int i = 0; i < nwaited; i++) {
    apsched_waited_run *w = &waited[i];
    apsched_run_ctx *run = apsched__run_new(s, w->rec, alias, w->times, w->n);
    if (!run) {
      /* Its record stays open: it runs again if this scheduler dies. */
      job_error(s, nl, w->rec, w->rec->id, alias, w->times[0],
                "out of memory: a run that waited is not started");
    } else {
      if (w->on_demand) apsched__run_on_demand(run);
      apsched__run_track(run, true);
      if (offset) apsched__run_clock_offset(run, offset);
      queued[nqueued++] = (queued_run){.run = run, .executor = w->rec->executor, .waited = true};
    }
    apsched_job_record_free(w->rec);
    free(w->times);
  }
  int n = failed == APSCHED_OK ? vt->claim_due(se->store, now, due, CLAIM_BATCH) : 0;
  if (n < 0) {
    failed = n;
    failed_what = "claiming due jobs from";
    n = 0;
  }
  for (int i = 0; i < n; i++) {
    apsched_job_record *rec = due[i];
    if (i + PREFETCH_AHEAD < n) prefetch_record(due[i + PREFETCH_AHEAD]);
    plan_runs(rec, now, &plan);
    /* Built before release, which may free a finished job's record. */
    apsched_run_ctx *run = plan.n ? apsched__run_new(s, rec, alias, plan.times, plan.n) : NULL;
    const char *executor = rec->executor;
    size_t mark = nl->count;
    plan_notices(s, nl, rec, alias, &plan, now);
    if (plan.n && !run)
      job_error(s, nl, rec, rec->id, alias, plan.times[0], "out of memory: the run is skipped");
    if (run && offset) apsched__run_clock_offset(run, offset);
    queued_run q = {.run = run, .executor = executor};
    if (run && se->runs_open) {
      bool track = false;
      int rc = se->runs_open(se->store, rec, plan.times, plan.n, &track);
      bool busy = rc == APSCHED_EBUSY;
      if (busy && se->runs_wait && apsched__overlap_waits(rec->overlap)) {
        /* Full across the schedulers: the run waits in the store. */
        q.wait = (apsched_runs_waiting){.replaced = APSCHED_TIME_NONE,
                                        .stop_time = APSCHED_TIME_NONE};
        rc = se->runs_wait(se->store, rec, plan.times, plan.n, &q.wait);
        if (rc == APSCHED_EBUSY) q.busy = APSCHED_RESERVE_FULL_BUFFER;
        busy = rc == APSCHED_OK || rc == APSCHED_EBUSY;
      } else if (busy) {
        q.busy = APSCHED_RESERVE_FULL;
      }
      if (rc != APSCHED_OK && !busy) {
        /* Unrecorded runs must not start: the job keeps its times and is
         * due again. */
        apsched__notices_truncate(s, nl, mark);
        apsched__run_abandon(run);
        vt->release(se->store, rec, rec->next_run_time, rec->trigger_time, false);
        failed = rc;
        failed_what = "recording the runs of claimed jobs in";
        continue;
      }
      if (track && rc == APSCHED_OK && q.wait.waiting == 0)
        apsched__run_track(run, se->run_starting != NULL);
    }
    int rc = vt->release(se->store, rec, plan.next, plan.next_base, plan.finished);
    if (rc != APSCHED_OK) {
      /* The claim is undone: the job stays due, nothing runs or is announced. */
      apsched__notices_truncate(s, nl, mark);
      if (run) unreleased[nunreleased++] = run;
      failed = rc;
      failed_what = "storing the next run time in";
      continue;
    }
    if (run) queued[nqueued++] = q;
  }
  if ((n > 0 || norphans > 0 || nwaited > 0 || closes_written) && vt->commit) {
    int rc = vt->commit(se->store);
    if (rc != APSCHED_OK) {
      /* The whole batch is undone: nothing of it runs or is announced, and
       * the ended runs written in it are passed again. */
      apsched__notices_truncate(s, nl, batch_mark);
      while (nqueued > 0) apsched__run_abandon(queued[--nqueued].run);
      closes_written = false;
      failed = rc;
      failed_what = "committing the claimed jobs of";
    }
  }
  if (failed == APSCHED_OK) {
    if (n == CLAIM_BATCH) {
      next = now;
    } else {
      int rc = vt->next_run_time(se->store, &next);
      if (rc != APSCHED_OK) {
        failed = rc;
        failed_what = "reading the next run time of";
        next = APSCHED_TIME_NONE;
      }
    }
  }
  apsched__store_leave(s, se);
  apsched__runs_settle(s, se, closing, nclosing, closing_cap, closes_written);

  /* A store that commits the batch although a release failed (the failure
   * did not spoil its transaction) keeps their run records: closed as
   * skipped, so the retry of the same time finds them gone. */
  for (size_t i = 0; i < nunreleased; i++) apsched__run_skip(unreleased[i]);
  for (size_t i = 0; i < nqueued; i++) queue_run(s, nl, alias, &queued[i]);
  apsched__store_outcome(s, se, failed, failed_what, nl);
  if (failed != APSCHED_OK) return se->retry_at;
  if (next != APSCHED_TIME_NONE && __builtin_sub_overflow(next, offset, &next)) next = INT64_MAX;
  return next;
}

void apsched__dispatch_run(apsched_scheduler *s, notice_list *nl, const char *jobstore,
                           apsched_run_ctx *run, const char *executor, int store_rc,
                           const apsched_runs_waiting *wait) {
  queued_run q = {.run = run, .executor = executor, .wait = *wait};
  /* Refused by the store: buffer_all's limit, or max_instances reached. */
  if (store_rc == APSCHED_EBUSY)
    q.busy = apsched__run_overlap(run) == APSCHED_OVERLAP_BUFFER_ALL ? APSCHED_RESERVE_FULL_BUFFER
                                                                     : APSCHED_RESERVE_FULL;
  queue_run(s, nl, jobstore, &q);
}

/* n runs were handed to e: it may go (remove_executor frees an executor
 * only when no run is being handed to it). Counted once per executor and
 * pass rather than per run: one lock instead of one per run. */
static void handed_over(apsched_scheduler *s, executor_entry *e, int n) {
  if (!e) return;
  apsched__lock(s);
  e->submitting -= n;
  apsched__unlock(s);
}

void apsched__dispatch_flush(apsched_scheduler *s, notice_list *nl) {
  executor_entry *held = NULL; /* runs handed to it, not yet counted as done */
  int nheld = 0;
  for (size_t i = 0; i < nl->count; i++) {
    notice *n = &nl->items[i];
    apsched__notice_deliver(s, n);
    if (!n->run) continue;
    executor_entry *e = n->exec;
    int rc = e->executor->vtable->submit(e->executor, n->run);
    if (rc != APSCHED_OK) {
      apsched__log(s, APSCHED_LOG_ERROR, "Error submitting job \"%s\" to executor \"%s\": %s",
                   apsched_run_job_name(n->run), e->alias, apsched_strerror(rc));
      apsched_run_set_error(n->run, "executor \"%s\" refused the run: %s", e->alias,
                            apsched_strerror(rc));
      apsched__run_fail(n->run, true);
    }
    if (e != held) {
      handed_over(s, held, nheld);
      held = e;
      nheld = 0;
    }
    nheld++;
  }
  handed_over(s, held, nheld);
  apsched__notices_reset(s, nl);
}
