/* Runs: one submission of a job to an executor, covering one or more
 * scheduled times. A run carries copies of everything it needs, so the job
 * may be modified or removed while it executes. */
#include "scheduler_internal.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OUT_SKIPPED only reaches the store (runs_closed), never an event. */
enum outcome { OUT_EXECUTED, OUT_ERROR, OUT_MISSED, OUT_SKIPPED };

typedef struct run_result {
  int kind;
  int retval;
  char *error;
  bool ended;                 /* started and finished, or missed: its store hears of it */
  apsched_time_t started_at;  /* tracked runs only; NONE: never started */
  apsched_time_t finished_at;
} run_result;

struct apsched_run_ctx {
  apsched_scheduler *s;
  const apsched_func *func;
  apsched_job_args *args;
  const char *jobstore; /* interned */
  const char *executor; /* interned */
  instance_count *inst; /* NULL until reserved */
  unsigned max_instances;
  int64_t grace;
  int64_t max_runtime;  /* microseconds; 0: none */
  bool tracked;         /* the store wants the outcomes (runs_closed) */
  bool fenced;          /* ... and confirms each start (run_starting) */
  bool at_least_once;   /* its job's delivery: a refused run stays open */
  int64_t clock_offset; /* the store's clock minus the scheduler's (version 4 stores) */
  unsigned attempt;     /* 1, or more for a recovered run */
  atomic_bool cancelled; /* set by the executor when max_runtime is exceeded */
  _Atomic(const char *) stop_reason; /* a newer run asked this one to stop (static text) */
  uint8_t overlap;      /* the job's apsched_overlap */
  uint16_t pause_after; /* the job's pause_after_failures (0: its runs are not counted) */
  bool listed;          /* in its instance_count's running list */
  bool cached;          /* a block of s->run_blocks */
  struct apsched_run_ctx *inst_next; /* running or waiting list of its instance_count */
  struct apsched_run_ctx *left_next; /* in s->left_endings, or handed over by a pass */
  struct executor_entry *handed_to;  /* (handed over by a pass: its executor) */
  _Atomic int64_t started; /* monotonic start of the current execution, INT64_MAX: none */
  size_t id_len;        /* strlen(id) */
  size_t count;         /* scheduled times */
  size_t current;
  char *error;          /* set by the job for the current time */
  apsched_time_t *times;
  run_result *results;
  char *name;
  char id[];
};

static void instance_free(apsched_scheduler *s, instance_count *ic) {
  if (ic->cached) apsched__block_give(s, &s->instance_blocks, ic);
  else apsched__dealloc(s, ic);
}

/* A new instance_count for job id (which has none; id_len its strlen, h its
 * apsched__strhash), count 0; NULL when memory is short. Lock held. */
static instance_count *instance_new(apsched_scheduler *s, const char *id, size_t id_len,
                                    uint64_t h) {
  size_t n = id_len + 1;
  bool cached = sizeof(instance_count) + n <= s->instance_blocks.size;
  instance_count *ic = cached ? apsched__block_take(s, &s->instance_blocks)
                              : apsched__alloc(s, sizeof *ic + n);
  if (!ic) return NULL;
  memset(ic, 0, sizeof *ic);
  ic->hash = h;
  ic->cached = cached;
  memcpy(ic->id, id, n);
  if (apsched__strmap_put_h(&s->instances, ic->id, h, ic) != 0) {
    instance_free(s, ic);
    return NULL;
  }
  return ic;
}

static void instance_drop_if_idle(apsched_scheduler *s, instance_count *ic) {
  if (ic->count == 0 && !ic->waiting) {
    apsched__strmap_remove_h(&s->instances, ic->id, ic->hash);
    instance_free(s, ic);
  }
}

/* Policies that stop a running run need to find it: only their runs are
 * listed, so runs of other jobs pay nothing. */
static bool stops_others(const apsched_run_ctx *r) {
  return r->overlap == APSCHED_OVERLAP_CANCEL_OTHER || r->overlap == APSCHED_OVERLAP_TERMINATE_OTHER;
}

/* r takes a slot of ic. Lock held. */
static void instance_take(instance_count *ic, apsched_run_ctx *r) {
  ic->count++;
  r->inst = ic;
  if (stops_others(r)) {
    apsched_run_ctx **p = &ic->running;
    while (*p) p = &(*p)->inst_next; /* oldest first */
    r->inst_next = NULL;
    *p = r;
    r->listed = true;
  }
}

static void waiting_append(instance_count *ic, apsched_run_ctx *r) {
  apsched_run_ctx **p = &ic->waiting;
  while (*p) p = &(*p)->inst_next;
  r->inst_next = NULL;
  *p = r;
  ic->nwaiting++;
}

static const char *const stop_texts[] = {
    [APSCHED_OVERLAP_CANCEL_OTHER] =
        "cancelled: a newer run of the job is due (overlap policy cancel_other)",
    [APSCHED_OVERLAP_TERMINATE_OTHER] =
        "terminated: a newer run of the job is due (overlap policy terminate_other)"};

apsched_reserve apsched__run_reserve(apsched_run_ctx *r, const char *executor,
                                     apsched_overlap_effects *fx) {
  apsched_scheduler *s = r->s;
  memset(fx, 0, sizeof *fx);
  r->executor = executor;
  unsigned max = r->overlap == APSCHED_OVERLAP_ALLOW_ALL ? UINT32_MAX : r->max_instances;
  uint64_t h = apsched__strhash_len(r->id, r->id_len);
  instance_count *ic = apsched__strmap_get_h(&s->instances, r->id, h);
  if ((!ic || ic->count < max) && max > 0) {
    if (!ic && !(ic = instance_new(s, r->id, r->id_len, h))) return APSCHED_RESERVE_OOM;
    instance_take(ic, r);
    return APSCHED_RESERVE_OK;
  }
  switch (r->overlap) {
  case APSCHED_OVERLAP_BUFFER_ALL:
    if (ic && ic->nwaiting >= APSCHED_BUFFER_ALL_LIMIT) return APSCHED_RESERVE_FULL_BUFFER;
    break;
  case APSCHED_OVERLAP_BUFFER_ONE:
  case APSCHED_OVERLAP_CANCEL_OTHER:
  case APSCHED_OVERLAP_TERMINATE_OTHER:
    break;
  default:
    return APSCHED_RESERVE_FULL;
  }
  if (!ic && !(ic = instance_new(s, r->id, r->id_len, h))) return APSCHED_RESERVE_OOM;
  if (r->overlap != APSCHED_OVERLAP_BUFFER_ALL && ic->waiting) {
    /* One waits at most: the newer due run replaces it. */
    fx->dropped = ic->waiting;
    ic->waiting = NULL;
    ic->nwaiting = 0;
  }
  if (stops_others(r)) {
    /* The oldest running run that was not asked yet. */
    for (apsched_run_ctx *o = ic->running; o; o = o->inst_next) {
      const char *expected = NULL;
      if (atomic_compare_exchange_strong(&o->stop_reason, &expected, stop_texts[r->overlap])) {
        atomic_store(&o->cancelled, true);
        fx->stopped = o;
        break;
      }
    }
  }
  waiting_append(ic, r);
  fx->waiting = ic->nwaiting;
  return APSCHED_RESERVE_WAITS;
}

apsched_run_ctx *apsched__run_ask_stop(apsched_scheduler *s, const char *jobstore, const char *id,
                                       apsched_time_t t, int overlap) {
  if (overlap != APSCHED_OVERLAP_CANCEL_OTHER && overlap != APSCHED_OVERLAP_TERMINATE_OTHER)
    return NULL;
  instance_count *ic = apsched__strmap_get(&s->instances, id);
  for (apsched_run_ctx *o = ic ? ic->running : NULL; o; o = o->inst_next) {
    if (!o->jobstore || strcmp(o->jobstore, jobstore) != 0) continue;
    bool covers = false;
    for (size_t i = 0; i < o->count && !covers; i++) covers = o->times[i] == t;
    const char *expected = NULL;
    if (covers && atomic_compare_exchange_strong(&o->stop_reason, &expected, stop_texts[overlap])) {
      atomic_store(&o->cancelled, true);
      return o;
    }
  }
  return NULL;
}

/* Gives r's slot up. Returns the waiting run that takes it over (its
 * executor still to be found), or NULL. While the scheduler is stopped,
 * waiting runs are dropped instead (their records, if any, stay open).
 * Lock held. */
static apsched_run_ctx *instance_release(apsched_scheduler *s, apsched_run_ctx *r,
                                         unsigned *dropped) {
  instance_count *ic = r->inst;
  r->inst = NULL;
  if (r->listed) {
    apsched_run_ctx **p = &ic->running;
    while (*p && *p != r) p = &(*p)->inst_next;
    if (*p) *p = r->inst_next;
    r->listed = false;
  }
  ic->count--;
  if (ic->waiting && (s->state == APSCHED_STATE_STOPPED || s->stopping)) {
    while (ic->waiting) {
      apsched_run_ctx *w = ic->waiting;
      ic->waiting = w->inst_next;
      apsched__run_abandon(w);
      ++*dropped;
    }
    ic->nwaiting = 0;
  }
  apsched_run_ctx *next = ic->waiting;
  if (next) {
    ic->waiting = next->inst_next;
    ic->nwaiting--;
    instance_take(ic, next);
  }
  instance_drop_if_idle(s, ic);
  return next;
}
unsigned apsched__run_max_instances(const apsched_run_ctx *r) { return r->max_instances; }
int apsched__run_overlap(const apsched_run_ctx *r) { return r->overlap; }
const char *apsched__run_executor_alias(const apsched_run_ctx *r) { return r->executor; }
const char *apsched_run_stop_reason(const apsched_run_ctx *r) {
  return atomic_load(&((apsched_run_ctx *)r)->stop_reason);
}

/* One allocation: the struct and id, then the times and results arrays,
 * then the name. s NULL: plain malloc (a run rebuilt in a worker process). */
static apsched_run_ctx *run_alloc(apsched_scheduler *s, const char *id, const char *name,
                                  const apsched_time_t *times, size_t n) {
  size_t id_len = strlen(id) + 1, name_len = strlen(name) + 1;
  size_t times_off = (sizeof(apsched_run_ctx) + id_len + 7) & ~(size_t)7;
  size_t results_off = times_off + n * sizeof(apsched_time_t);
  size_t name_off = results_off + n * sizeof(run_result);
  size_t size = name_off + name_len;
  bool cached = s && size <= s->run_blocks.size;
  apsched_run_ctx *r;
  if (cached) {
    pthread_mutex_lock(&s->aux_lock);
    r = apsched__block_take(s, &s->run_blocks);
    pthread_mutex_unlock(&s->aux_lock);
  } else {
    r = s ? apsched__alloc(s, size) : malloc(size);
  }
  if (!r) return NULL;
  memset(r, 0, sizeof *r);
  r->s = s;
  r->cached = cached;
  atomic_init(&r->cancelled, false);
  atomic_init(&r->stop_reason, NULL);
  atomic_init(&r->started, INT64_MAX);
  r->count = n;
  r->id_len = id_len - 1;
  r->attempt = 1;
  memcpy(r->id, id, id_len);
  r->times = (apsched_time_t *)((char *)r + times_off);
  memcpy(r->times, times, n * sizeof *times);
  r->results = (run_result *)((char *)r + results_off);
  memset(r->results, 0, n * sizeof *r->results);
  r->name = (char *)r + name_off;
  memcpy(r->name, name, name_len);
  return r;
}

/* Frees what run_alloc made for a scheduler. */
static void run_free(apsched_run_ctx *r) {
  apsched_scheduler *s = r->s;
  if (!r->cached) {
    apsched__dealloc(s, r);
    return;
  }
  pthread_mutex_lock(&s->aux_lock);
  apsched__block_give(s, &s->run_blocks, r);
  pthread_mutex_unlock(&s->aux_lock);
}

apsched_run_ctx *apsched__run_new(apsched_scheduler *s, const apsched_job_record *rec,
                                  const char *jobstore, const apsched_time_t *times, size_t n) {
  apsched_run_ctx *r = run_alloc(s, rec->id, apsched__record_name(rec), times, n);
  if (!r) return NULL;
  r->func = rec->func;
  r->args = apsched__args_ref(rec->args);
  r->jobstore = jobstore;
  r->max_instances = rec->max_instances;
  r->grace = apsched__grace_usec(rec->misfire_grace_ms);
  r->max_runtime = apsched__max_runtime_usec(rec);
  r->at_least_once = (rec->flags & APSCHED_JOB_AT_LEAST_ONCE) != 0;
  r->overlap = rec->overlap;
  r->pause_after = rec->pause_after_failures;
  return r;
}

apsched_run_ctx *apsched__run_local(const apsched_run_local_info *info) {
  bool oom = false;
  apsched_job_args *args =
      info->len ? apsched__args_new(NULL, NULL, info->bytes, info->len, &oom) : NULL;
  if (oom) return NULL;
  apsched_time_t t = info->t;
  apsched_run_ctx *r = run_alloc(NULL, info->id, info->name ? info->name : info->id, &t, 1);
  if (!r) {
    apsched__args_unref(args);
    return NULL;
  }
  r->args = args;
  r->attempt = info->attempt;
  /* Empty: the parent had none to send (never for a scheduled run). */
  r->jobstore = info->jobstore && *info->jobstore ? info->jobstore : NULL;
  r->executor = info->executor && *info->executor ? info->executor : NULL;
  r->grace = APSCHED_GRACE_UNLIMITED;
  return r;
}

const char *apsched__run_local_error(apsched_run_ctx *r) { return r->error; }

void apsched__run_local_free(apsched_run_ctx *r) {
  if (!r) return;
  free(r->error);
  apsched__args_unref(r->args);
  free(r);
}

static const int outcome_codes[] = {APSCHED_EVENT_JOB_EXECUTED, APSCHED_EVENT_JOB_ERROR,
                                    APSCHED_EVENT_JOB_MISSED};

/* True if some listener wants one of the run's outcomes. */
static bool outcomes_wanted(apsched_run_ctx *r) {
  for (size_t i = 0; i < r->count; i++)
    if (apsched__wants(r->s, outcome_codes[r->results[i].kind])) return true;
  return false;
}

/* Queues the ended times of a tracked run for its store. Lock held. */
static void report_ended(apsched_run_ctx *r) {
  apsched_run_result one = {0}, *out = r->count == 1 ? &one : calloc(r->count, sizeof *out);
  if (!out) {
    apsched__log(r->s, APSCHED_LOG_ERROR,
                 "Out of memory: the end of job \"%s\"'s run is not recorded in its store (its "
                 "record stays open)",
                 r->name);
    return;
  }
  static const apsched_run_outcome outcomes[] = {APSCHED_RUN_EXECUTED, APSCHED_RUN_FAILED,
                                                 APSCHED_RUN_MISSED, APSCHED_RUN_SKIPPED};
  size_t n = 0;
  for (size_t i = 0; i < r->count; i++) {
    const run_result *res = &r->results[i];
    if (!res->ended) continue;
    out[n++] = (apsched_run_result){.job_id = r->id,
                                    .scheduled_time = r->times[i],
                                    .attempt = r->attempt,
                                    .outcome = outcomes[res->kind],
                                    .started_at = res->started_at,
                                    .finished_at = res->finished_at,
                                    .retval = res->retval,
                                    .error = res->error};
  }
  apsched__runs_ended(r->s, r->jobstore, out, n);
  if (out != &one) free(out);
}

/* A waiting run took over a slot: find its executor and count it as
 * handed over (its SUBMITTED and the submission follow without the lock).
 * NULL if the executor is gone: the run is refused and its slot given on,
 * which may hand over the next waiting run (*next, set only then). Lock
 * held. */
static executor_entry *hand_over(apsched_scheduler *s, apsched_run_ctx *w, unsigned *dropped,
                                 apsched_run_ctx **next) {
  executor_entry *ex = apsched__find_executor(s, w->executor);
  if (ex && ex->started) {
    ex->submitting++;
    s->running_runs++;
    return ex;
  }
  *next = instance_release(s, w, dropped);
  apsched__run_refuse(w, "its executor was removed while the run waited");
  return NULL;
}

/* Delivers SUBMITTED for a waiting run now handed over, and submits it.
 * Lock NOT held. */
static void submit_waiting(apsched_scheduler *s, apsched_run_ctx *w, executor_entry *ex) {
  if (apsched__wants(s, APSCHED_EVENT_JOB_SUBMITTED)) {
    apsched_event ev = {.code = APSCHED_EVENT_JOB_SUBMITTED,
                        .job_id = w->id,
                        .jobstore = w->jobstore,
                        .scheduled_run_times = w->times,
                        .run_time_count = w->count};
    apsched__dispatch(s, &ev);
  }
  apsched__log(s, APSCHED_LOG_INFO,
               "Submitted job \"%s\" to executor \"%s\" (its run waited for a running one)",
               w->name, ex->alias);
  int rc = ex->executor->vtable->submit(ex->executor, w);
  if (rc != APSCHED_OK) {
    apsched__log(s, APSCHED_LOG_ERROR, "Error submitting job \"%s\" to executor \"%s\": %s",
                 w->name, ex->alias, apsched_strerror(rc));
    apsched_run_set_error(w, "executor \"%s\" refused the run: %s", ex->alias, apsched_strerror(rc));
    apsched__run_fail(w, true);
  }
  apsched__lock(s);
  ex->submitting--;
  pthread_cond_broadcast(&s->changed);
  apsched__unlock(s);
}

/* Releases the slot of a run that ends (lock held): a run waiting for it
 * is handed over (*ex its executor), *w NULL if none. */
static void release_slot(apsched_scheduler *s, apsched_run_ctx *r, apsched_run_ctx **w,
                         executor_entry **ex, unsigned *dropped) {
  *ex = NULL;
  *w = instance_release(s, r, dropped);
  while (*w && !(*ex = hand_over(s, *w, dropped, w))) {
  }
}

/* (Logged at once here, later by a pass: end_left_run.) */
#define DROPPED_FORMAT "%u waiting run(s) of job \"%s\" dropped: the scheduler shut down"

static void report_dropped(apsched_scheduler *s, const char *name, unsigned dropped) {
  if (dropped) apsched__log(s, APSCHED_LOG_WARNING, DROPPED_FORMAT, dropped, name);
}

/* Counts the run's outcomes for pause_after_failures: a success resets
 * the count, a failure adds one; a missed time, or one stopped by a newer
 * run (overlap policy), counts neither way. Lock held. */
static failure_report *count_failures(apsched_run_ctx *r, bool ready) {
  bool reset = false;
  uint32_t failed = 0;
  const char *last = NULL, *stop = atomic_load(&r->stop_reason);
  for (size_t i = 0; i < r->count; i++) {
    const run_result *res = &r->results[i];
    if (res->kind == OUT_EXECUTED) {
      reset = true;
      failed = 0;
    } else if (res->kind == OUT_ERROR && !(stop && res->error && strncmp(res->error, stop, strlen(stop)) == 0)) {
      failed++;
      last = res->error;
    }
  }
  if (!reset && !failed) return NULL;
  return apsched__failures_report(r->s, r->jobstore, r->id, reset, failed, last, ready);
}

/* ---- Endings left to the main loop's pass
 * The main loop's pass holds the scheduler lock for a whole claimed batch.
 * A thread pool worker whose run ended quietly meanwhile (no event wanted,
 * nothing to tell the store, no failure to count) leaves the run in
 * s->left_endings and goes on to its next run, instead of sleeping on the
 * lock and being woken at its release (most of the pool's futex calls with
 * spread due times). The pass applies them before it lets the lock go: a
 * slot is freed no later than it would have been by waiting for the lock.
 * Leaving is ordered (seq_cst) against the end of the pass's promise:
 * either the worker sees no promise left and applies the endings itself,
 * or the pass, ending its promise after the worker looked, finds the run. */

void apsched__endings_promise(apsched_scheduler *s) { atomic_fetch_add(&s->ending_takers, 1); }

/* The last step of finish for a run left to the pass. Lock held. A run
 * that waited for the freed slot is added to *handed (its executor in
 * handed_to) for apsched__endings_submit. */
static void end_left_run(apsched_scheduler *s, apsched_run_ctx *r, notice_list *nl,
                         apsched_run_ctx **handed) {
  apsched_run_ctx *waiting;
  executor_entry *ex;
  unsigned dropped = 0;
  release_slot(s, r, &waiting, &ex, &dropped);
  if (dropped)
    apsched__log_later(s, nl, APSCHED_LOG_WARNING, DROPPED_FORMAT, dropped, r->name);
  run_free(r);
  if (waiting) {
    waiting->handed_to = ex;
    waiting->left_next = *handed;
    *handed = waiting;
  }
  if (--s->running_runs == 0) pthread_cond_broadcast(&s->changed);
}

static apsched_run_ctx *end_left_runs(apsched_scheduler *s, notice_list *nl) {
  apsched_run_ctx *r = atomic_exchange(&s->left_endings, NULL), *handed = NULL;
  while (r) {
    apsched_run_ctx *next = r->left_next;
    end_left_run(s, r, nl, &handed);
    r = next;
  }
  return handed;
}

apsched_run_ctx *apsched__endings_settle(apsched_scheduler *s, notice_list *nl) {
  atomic_fetch_sub(&s->ending_takers, 1);
  return end_left_runs(s, nl);
}

void apsched__endings_submit(apsched_scheduler *s, apsched_run_ctx *handed) {
  while (handed) {
    apsched_run_ctx *next = handed->left_next;
    submit_waiting(s, handed, handed->handed_to);
    handed = next;
  }
}

void apsched__endings_wait_leavers(apsched_scheduler *s) {
  while (atomic_load(&s->ending_leavers) > 0) {
    apsched__unlock(s);
    sched_yield();
    apsched__lock(s);
  }
}

/* Leaves r's end to the main loop's pass; false when no pass is on (the
 * caller ends it itself). */
static bool leave_ending(apsched_run_ctx *r) {
  apsched_scheduler *s = r->s;
  if (atomic_load(&s->ending_takers) == 0) return false;
  atomic_fetch_add(&s->ending_leavers, 1);
  apsched_run_ctx *head = atomic_load(&s->left_endings);
  do {
    r->left_next = head;
  } while (!atomic_compare_exchange_weak(&s->left_endings, &head, r));
  /* From here r may be ended and freed by a pass: not touched again. */
  if (atomic_load(&s->ending_takers) == 0) {
    /* The promises ended before the pass could have seen r: end what was
     * left, here. */
    notice_list nl;
    apsched__notices_init(&nl);
    apsched__lock(s);
    apsched_run_ctx *handed = end_left_runs(s, &nl);
    apsched__unlock(s);
    apsched__dispatch_flush(s, &nl);
    apsched__endings_submit(s, handed);
  }
  atomic_fetch_sub(&s->ending_leavers, 1); /* last touch of s */
  return true;
}

/* Releases the instance slot, then delivers the outcome events in order
 * (APScheduler also frees the slot before dispatching), then frees. A run
 * that waited for the slot is handed over before this run's count goes. */
static void finish(apsched_run_ctx *r) {
  apsched_scheduler *s = r->s;
  if (r->tracked) {
    apsched__lock(s);
    report_ended(r);
    apsched__unlock(s);
  }
  apsched_run_ctx *waiting = NULL;
  executor_entry *waiting_ex = NULL;
  unsigned dropped = 0;
  bool dispatch = outcomes_wanted(r);
  failure_report *counted = NULL;
  if (dispatch) {
    apsched__lock(s);
    /* Counted before the slot goes, so the job's next run cannot report
     * first; applied once the events below went out, so a JOB_PAUSED it
     * leads to comes after them. */
    if (r->pause_after) counted = count_failures(r, false);
    release_slot(s, r, &waiting, &waiting_ex, &dropped);
    apsched__unlock(s);
    for (size_t i = 0; i < r->count; i++) {
      run_result *res = &r->results[i];
      apsched_event ev = {.code = outcome_codes[res->kind],
                          .job_id = r->id,
                          .jobstore = r->jobstore,
                          .scheduled_run_time = r->times[i],
                          .missed_count = res->kind == OUT_MISSED ? 1 : 0,
                          .missed_count_exact = true,
                          .retval = res->retval,
                          .error = res->error,
                          .attempt = r->attempt};
      apsched__dispatch(s, &ev);
    }
    if (counted) {
      apsched__lock(s);
      apsched__failures_ready(s, r->jobstore, counted);
      apsched__unlock(s);
    }
  } else if (r->pause_after) {
    /* No events: counted before the slot goes below. */
    apsched__lock(s);
    count_failures(r, true);
    apsched__unlock(s);
  }
  if (dropped) report_dropped(s, r->name, dropped);
  for (size_t i = 0; i < r->count; i++) free(r->results[i].error);
  apsched__args_unref(r->args);
  if (!r->tracked && !dispatch && !r->pause_after && leave_ending(r)) return;
  unsigned late_dropped = 0;
  char name[64] = "";
  apsched__lock(s);
  if (!dispatch) release_slot(s, r, &waiting, &waiting_ex, &late_dropped);
  if (late_dropped) snprintf(name, sizeof name, "%s", r->name);
  run_free(r);
  if (waiting || late_dropped) {
    /* A waiting run is counted in running_runs already: s stays alive. */
    apsched__unlock(s);
    report_dropped(s, name, late_dropped);
    if (waiting) submit_waiting(s, waiting, waiting_ex);
    apsched__lock(s);
  }
  /* Last touch of s: apsched_free waits for running_runs to reach zero. */
  if (--s->running_runs == 0) pthread_cond_broadcast(&s->changed);
  apsched__unlock(s);
}

/* A shared store confirms that this scheduler still owns the run (its
 * run_starting). APSCHED_ESTATE, the claim was lost: the time is reported
 * as an error, not started and not handed back to the store (the run is
 * another scheduler's now). Any other failure (the store is unreachable):
 * ownership is unknown, so an at-most-once run does not start and ends as
 * FAILED (its store closes it only if the claim is still ours), while an
 * at-least-once run starts anyway (a repeat is allowed, a loss is not). */
static bool confirm_start(apsched_run_ctx *r, run_result *res) {
  char why[300];
  int rc = apsched__store_run_starting(r->s, r->jobstore, r->id, r->times[r->current], r->attempt,
                                       why, sizeof why);
  if (rc == APSCHED_OK) return true;
  const char *reason = why[0] ? why : apsched_strerror(rc);
  bool lost = rc == APSCHED_ESTATE;
  if (!lost && r->at_least_once) {
    apsched__log(r->s, APSCHED_LOG_WARNING,
                 "Job \"%s\" started although its start could not be recorded (at least once): %s",
                 r->name, reason);
    return true;
  }
  res->kind = OUT_ERROR;
  res->retval = -1;
  if (!lost) {
    res->ended = true;
    res->finished_at = apsched__wall(r->s);
  }
  if (asprintf(&res->error, "%s: %s",
               lost ? "the claim of this run was lost" : "the start of this run could not be recorded",
               reason) < 0)
    res->error = NULL;
  apsched__log(r->s, APSCHED_LOG_ERROR, "Job \"%s\" not started: %s", r->name,
               res->error ? res->error : reason);
  return false;
}

bool apsched_run_begin(apsched_run_ctx *r, size_t i) {
  apsched_scheduler *s = r->s;
  run_result *res = &r->results[i];
  r->current = i;
  r->error = NULL;
  res->error = NULL;
  res->retval = 0;
  res->started_at = APSCHED_TIME_NONE;
  /* The misfire check happens when the run would start, so time spent
   * queued in the executor counts. */
  /* Saturating: extreme run times must not overflow (UB). */
  apsched_time_t late, now = apsched__wall(s);
  if (__builtin_add_overflow(now, r->clock_offset, &now)) now = INT64_MAX;
  if (__builtin_sub_overflow(now, r->times[i], &late))
    late = r->times[i] < 0 ? INT64_MAX : INT64_MIN;
  if (r->grace != APSCHED_GRACE_UNLIMITED && late > r->grace) {
    res->kind = OUT_MISSED;
    res->ended = true;
    if (r->tracked) res->finished_at = apsched__wall(s);
    if (apsched__log_enabled(s, APSCHED_LOG_WARNING)) {
      char d[64];
      apsched__format_duration(late, d, sizeof d);
      apsched__log(s, APSCHED_LOG_WARNING, "Run time of job \"%s\" was missed by %s", r->name, d);
    }
    return false;
  }
  const char *stop = atomic_load(&r->stop_reason);
  if (stop) {
    /* A newer run asked this one to stop: its remaining times do not start. */
    res->kind = OUT_ERROR;
    res->retval = -1;
    res->ended = true;
    res->error = apsched__strdup(stop);
    if (r->tracked) res->finished_at = apsched__wall(s);
    apsched__log(s, APSCHED_LOG_WARNING, "Job \"%s\" not started: %s", r->name, stop);
    return false;
  }
  if (r->fenced && !confirm_start(r, res)) return false;
  /* A stop asked for meanwhile keeps it cancelled (the asker sets the
   * reason first, then the flag). */
  atomic_store(&r->cancelled, false);
  if (atomic_load(&r->stop_reason)) atomic_store(&r->cancelled, true);
  if (r->tracked) res->started_at = apsched__wall(s);
  /* Only a max_runtime needs the start time: no extra clock read otherwise. */
  if (r->max_runtime > 0) atomic_store(&r->started, apsched__mono_now());
  apsched__log(s, APSCHED_LOG_INFO, "Running job \"%s\"", r->name);
  return true;
}

/* Takes ownership of error (malloc'd or NULL). */
static void record(apsched_run_ctx *r, size_t i, int retval, char *error) {
  apsched_scheduler *s = r->s;
  run_result *res = &r->results[i];
  if (atomic_load(&r->cancelled)) {
    /* Over max_runtime, or stopped by a newer run: an error whatever the
     * job returned. */
    const char *stop = atomic_load(&r->stop_reason);
    char d[112];
    if (stop) snprintf(d, sizeof d, "%s", stop);
    else {
      memcpy(d, "timed out after ", 16);
      apsched__format_duration(r->max_runtime, d + 16, sizeof d - 16);
    }
    char *msg = NULL;
    if (asprintf(&msg, "%s%s%s", d, error ? ": " : "", error ? error : "") < 0) msg = NULL;
    free(error);
    error = msg;
    if (retval == 0) retval = -1;
  }
  res->retval = retval;
  res->ended = true;
  if (r->tracked) res->finished_at = apsched__wall(s);
  if (retval == 0) {
    res->kind = OUT_EXECUTED;
    free(error);
    apsched__log(s, APSCHED_LOG_INFO, "Job \"%s\" executed successfully", r->name);
  } else {
    res->kind = OUT_ERROR;
    res->error = error;
    apsched__log(s, APSCHED_LOG_ERROR, "Job \"%s\" failed with code %d%s%s", r->name, retval,
                 error ? ": " : "", error ? error : "");
  }
}

void apsched_run_record(apsched_run_ctx *r, size_t i, int retval, const char *error) {
  record(r, i, retval, apsched__strdup(error));
}

void apsched_run_complete(apsched_run_ctx *r) { finish(r); }

void apsched__run_execute_times(apsched_run_ctx *r) {
  apsched_scheduler *s = r->s;
  for (size_t i = 0; i < r->count; i++) {
    if (!apsched_run_begin(r, i)) continue;
    apsched_scheduler *saved = apsched__enter_user_code(s);
    int rc = apsched_func_get(r->func)(r);
    apsched__leave_user_code(saved);
    if (r->max_runtime > 0) atomic_store(&r->started, INT64_MAX); /* none in progress */
    char *error = r->error;
    r->error = NULL;
    record(r, i, rc, error);
  }
}

void apsched_run_execute(apsched_run_ctx *r) {
  apsched__run_execute_times(r);
  finish(r);
}

int64_t apsched__run_deadline(const apsched_run_ctx *r) {
  int64_t started = atomic_load(&((apsched_run_ctx *)r)->started);
  if (r->max_runtime <= 0 || started == INT64_MAX) return INT64_MAX;
  return started + r->max_runtime;
}

void apsched_run_cancel(apsched_run_ctx *r) {
  if (atomic_exchange(&r->cancelled, true)) return;
  char d[64];
  apsched__format_duration(r->max_runtime, d, sizeof d);
  apsched__log(r->s, APSCHED_LOG_WARNING,
               "Job \"%s\" is running longer than its max_runtime (%s): cancelled", r->name, d);
}

bool apsched_run_cancelled(const apsched_run_ctx *r) {
  return atomic_load(&((apsched_run_ctx *)r)->cancelled);
}

size_t apsched_run_count(const apsched_run_ctx *r) { return r->count; }
apsched_time_t apsched_run_time_at(const apsched_run_ctx *r, size_t i) { return r->times[i]; }
const apsched_func *apsched_run_func(const apsched_run_ctx *r) { return r->func; }
int64_t apsched_run_max_runtime(const apsched_run_ctx *r) { return r->max_runtime; }

void apsched__run_fail(apsched_run_ctx *r, bool refused) {
  /* An at-least-once run is not lost because this scheduler could not
   * start it: its record stays open for the next one. */
  bool close = refused && !r->at_least_once;
  apsched_time_t now = close && r->tracked ? apsched__wall(r->s) : APSCHED_TIME_NONE;
  for (size_t i = 0; i < r->count; i++) {
    r->results[i].kind = OUT_ERROR;
    r->results[i].retval = -1;
    r->results[i].error = i == 0 ? r->error : apsched__strdup(r->error);
    if (close) {
      r->results[i].ended = true;
      r->results[i].started_at = APSCHED_TIME_NONE;
      r->results[i].finished_at = now;
    }
  }
  r->error = NULL;
  finish(r);
}

void apsched_run_discard(apsched_run_ctx *r) {
  apsched_run_set_error(r, "the executor shut down before the run started");
  /* Its record stays open: the scheduler is going away, and whoever uses
   * the store next runs it. */
  apsched__run_fail(r, false);
}

void apsched__run_track(apsched_run_ctx *r, bool fenced) {
  r->tracked = true;
  r->fenced = fenced;
}

void apsched__run_clock_offset(apsched_run_ctx *r, int64_t offset) { r->clock_offset = offset; }

void apsched__run_on_demand(apsched_run_ctx *r) { r->grace = APSCHED_GRACE_UNLIMITED; }

void apsched__run_recovered(apsched_run_ctx *r, unsigned attempt) {
  r->attempt = attempt;
  /* It was due, and started in time, before the crash. */
  r->grace = APSCHED_GRACE_UNLIMITED;
}

/* Ends every time of a tracked run that never started as kind (error: a
 * copy for each), then frees the run. Lock held. */
static void close_unstarted(apsched_run_ctx *r, int kind, const char *error) {
  if (r->tracked) {
    apsched_time_t now = apsched__wall(r->s);
    for (size_t i = 0; i < r->count; i++)
      r->results[i] = (run_result){.kind = kind, .retval = kind == OUT_ERROR ? -1 : 0,
                                   .error = error ? apsched__strdup(error) : NULL, .ended = true,
                                   .started_at = APSCHED_TIME_NONE, .finished_at = now};
    report_ended(r);
    for (size_t i = 0; i < r->count; i++) free(r->results[i].error);
  }
  apsched__run_abandon(r);
}

void apsched__run_skip(apsched_run_ctx *r) { close_unstarted(r, OUT_SKIPPED, NULL); }

void apsched__run_refuse(apsched_run_ctx *r, const char *why) {
  if (r->at_least_once) apsched__run_abandon(r);
  else close_unstarted(r, OUT_ERROR, why);
}

void apsched__run_abandon(apsched_run_ctx *r) {
  apsched__args_unref(r->args);
  run_free(r);
}

const apsched_time_t *apsched__run_times(const apsched_run_ctx *r) { return r->times; }

const char *apsched_run_job_id(const apsched_run_ctx *r) { return r->id; }
const char *apsched_run_job_name(const apsched_run_ctx *r) { return r->name; }
apsched_time_t apsched_run_scheduled_time(const apsched_run_ctx *r) { return r->times[r->current]; }
unsigned apsched_run_attempt(const apsched_run_ctx *r) { return r->attempt; }
void *apsched_run_arg(const apsched_run_ctx *r) { return r->args ? r->args->ptr : NULL; }
const void *apsched_run_arg_bytes(const apsched_run_ctx *r, size_t *len) {
  return apsched_job_args_bytes(r->args, len);
}
const char *apsched_run_jobstore(const apsched_run_ctx *r) { return r->jobstore; }
const char *apsched_run_executor(const apsched_run_ctx *r) { return r->executor; }
apsched_scheduler *apsched_run_scheduler(const apsched_run_ctx *r) { return r->s; }

void apsched_run_set_error(apsched_run_ctx *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  free(r->error);
  r->error = msg;
}
