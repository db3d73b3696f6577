/* The scheduler's private state and the layers that share it. From the
 * bottom up (each file uses only what is beneath it):
 *
 *   sched_base.c     allocation, interned aliases, clock, wake-ups, lookups
 *   block_cache.c    recycled blocks for the per-run allocations
 *   events.c         listeners, event dispatch, logging, notices
 *   store_access.c   calling job stores (pinning, blocking stores outside the
 *                    scheduler's mutex, failure events and retry backoff)
 *   run_records.c    ended runs queued for their store's runs_closed
 *   run.c            runs and max_instances accounting
 *   dispatch.c       one pass over a store's due jobs
 *   jobs.c           the job API (add, modify, pause, remove, pending jobs)
 *   job_snapshots.c  get_job, get_jobs, print_jobs
 *   scheduler.c      lifecycle, loops, components
 */
#ifndef APSCHED_SCHEDULER_INTERNAL_H
#define APSCHED_SCHEDULER_INTERNAL_H

#include "internal.h"
#include "util/strmap.h"

#include <pthread.h>

/* How the loop is driven. */
typedef enum loop_mode { MODE_NONE, MODE_THREAD, MODE_BLOCKING, MODE_HOSTED } loop_mode;

/* A thread that sleeps until its stores' next run time (or a wake-up). The
 * scheduler has one for its non-blocking stores (the main loop, which may be
 * the host's) and one per blocking store. Fields under the scheduler lock. */
typedef struct loop_waker {
  pthread_cond_t cond;          /* CLOCK_MONOTONIC */
  bool wakeup_pending;
  apsched_time_t planned_wake;  /* when the loop means to wake next */
} loop_waker;

/* What ended runs of a job with pause_after_failures change about its
 * count of consecutive failures (failure_counts.c). One allocation. */
typedef struct failure_report {
  struct failure_report *next;
  bool reset;      /* a run succeeded: count afresh from here */
  bool ready;      /* its run's outcome events went out: it may be applied */
  uint32_t failed; /* failed runs after that */
  char *error;     /* the last failure's message (in this allocation), or NULL */
  char id[];
} failure_report;

typedef struct store_entry {
  apsched_scheduler *sched;
  const char *alias; /* interned */
  apsched_jobstore *store;
  bool blocking;     /* APSCHED_STORE_BLOCKING: called without the scheduler lock */
  bool removed;      /* unlinked; freed when the last pin goes */
  int pins;          /* callers using the entry without the scheduler lock */
  pthread_mutex_t call_lock; /* blocking stores: serializes their calls */
  /* Failure tracking (scheduler lock): a failing store is retried with a
   * capped backoff, and its failure and recovery are events. */
  bool failing;
  int64_t backoff;          /* microseconds until the next retry */
  apsched_time_t retry_at;  /* wall time; NONE: no retry pending */
  /* Run records (vtable version 3; NULL for older stores). */
  int (*runs_open)(apsched_jobstore *, const apsched_job_record *, const apsched_time_t *, size_t,
                   bool *);
  int (*runs_closed)(apsched_jobstore *, const apsched_run_result *, size_t);
  int (*claim_orphans)(apsched_jobstore *, apsched_orphan_run *, size_t);
  /* Version 4 (NULL for older stores). */
  apsched_time_t (*clock)(apsched_jobstore *, apsched_time_t);
  int (*run_starting)(apsched_jobstore *, const char *, apsched_time_t, unsigned);
  /* Version 5 (NULL for older stores): runs that wait in a shared store. */
  int (*runs_wait)(apsched_jobstore *, const apsched_job_record *, const apsched_time_t *, size_t,
                   apsched_runs_waiting *);
  int (*claim_waiting)(apsched_jobstore *, apsched_waited_run *, size_t);
  int (*runs_add)(apsched_jobstore *, const apsched_job_record *, const apsched_time_t *, size_t,
                  bool *, apsched_runs_waiting *);
  /* Version 6 (NULL for older stores): ended runs written in the claimed batch. */
  int (*runs_closed_in_batch)(apsched_jobstore *, const apsched_run_result *, size_t);
  /* Ended runs not yet handed to runs_closed (scheduler lock); the strings
   * of each result are owned. */
  apsched_run_result *closed;
  size_t closed_count, closed_cap;
  /* Ended runs of jobs with pause_after_failures, to count (scheduler lock). */
  failure_report *failure_reports;
  /* Blocking stores: the store's own loop thread. */
  loop_waker waker;
  pthread_t thread;
  bool thread_joinable, thread_stop;
  struct store_entry *next;
} store_entry;

typedef struct executor_entry {
  const char *alias; /* interned */
  apsched_executor *executor;
  bool started;
  int submitting; /* runs being handed over right now (scheduler lock) */
  struct executor_entry *stop_next; /* shutdown's list of executors to stop */
  struct executor_entry *next;
} executor_entry;

/* A job added while the scheduler is stopped. */
typedef struct pending_job {
  apsched_job_record *rec;
  const char *jobstore; /* interned */
  bool replace_existing;
  bool explicit_next;   /* next_run_time was given by the caller */
  bool paused;          /* added or set paused: no first run time at start */
  struct pending_job *prev, *next;
} pending_job;

typedef struct listener {
  int id;
  apsched_listener_fn fn;
  int mask;
  void *user_data;
  int active;    /* calls in progress */
  struct listener_call *calls; /* the same calls, with their threads (events.c) */
  bool removed;
  bool host;     /* hosted mode: called only inside apsched_process (events.c) */
  bool waiter;   /* remove_listener is waiting to free it */
  pthread_t waiter_thread; /* the thread waiting, when waiter is set */
  struct listener *next;
} listener;

/* Block sizes of the recycled per-run allocations: a run context with
 * one time and a short id and name, an instance count with a short id.
 * Larger ones come from the allocator. */
#define APSCHED_RUN_BLOCK_SIZE 384
#define APSCHED_INSTANCE_BLOCK_SIZE 96

/* Freed blocks of one size kept for reuse (block_cache.c). */
typedef struct block_cache {
  void *head;     /* free blocks, linked through their first word */
  unsigned count; /* blocks on the list */
  unsigned limit; /* kept at most; more go back to the allocator */
  size_t size;    /* of every block */
} block_cache;

/* Running instances of one job, and its runs waiting for one of them to
 * end (overlap policies); exists while either is non-empty. */
typedef struct instance_count {
  uint32_t count;
  uint32_t nwaiting;
  uint64_t hash;            /* apsched__strhash(id), its key in s->instances */
  bool cached;              /* a block of s->instance_blocks */
  apsched_run_ctx *running; /* runs of CANCEL/TERMINATE_OTHER jobs only, oldest first */
  apsched_run_ctx *waiting; /* oldest first */
  char id[];
} instance_count;

typedef struct interned {
  struct interned *next;
  char text[];
} interned;

/* Something to do after the scheduler lock is released, in order: dispatch
 * an event and/or log a message, and/or hand a run to an executor. */
typedef struct notice {
  apsched_event ev;
  char *owned;                 /* strings/arrays the event points into */
  char *log_msg;               /* NULL: nothing to log */
  apsched_log_level log_level;
  apsched_run_ctx *run;        /* submit this run after the event (SUBMITTED) */
  executor_entry *exec;
} notice;

/* A notice array grown past a list's inline items. */
typedef struct notice_block {
  size_t cap;
  notice items[];
} notice_block;

typedef struct notice_list {
  notice *items;
  size_t count, cap;
  notice_block *block; /* NULL: items are inline_items */
  notice inline_items[8];
} notice_list;

/* An event raised outside apsched_process, waiting for the host listeners
 * (a copy: the strings and run times it points to follow it in memory). */
typedef struct queued_event {
  struct queued_event *next;
  apsched_event ev;
  int last_listener; /* listeners added later (higher ids) do not get it */
  apsched_time_t run_times[]; /* ev.scheduled_run_times, then the strings */
} queued_event;

/* Something a store reported about one of its jobs (a row it cannot
 * decode), waiting for the loop to announce it. */
typedef struct store_report {
  struct store_report *next;
  const char *jobstore; /* interned */
  char *why;            /* after the id, in the same allocation */
  char job_id[];
} store_report;

struct apsched_scheduler {
  pthread_mutex_t lock;
  /* A leaf lock (taken last, held briefly) for what stores may reach while
   * the scheduler lock is held by someone else: interned aliases, reports. */
  pthread_mutex_t aux_lock;
  store_report *reports, **reports_tail;
  pthread_cond_t changed; /* listener calls ended, submits ended, loops stopped, pins dropped */

  apsched_allocator alloc;
  apsched_clock clock;
  apsched_log_fn log;
  void *log_user_data;
  apsched_log_level log_level;
  int64_t max_wait;
  int64_t store_retry_max; /* cap of a failing store's retry backoff */
  int default_max_instances;
  int64_t default_grace;
  bool default_coalesce;
  apsched_tz *tz;

  apsched_state state;
  bool starting, stopping;  /* a start or shutdown is between its steps */
  loop_mode mode;
  bool loop_running;        /* the loop thread/caller is inside the loop */
  bool loop_stop;           /* tells the main loop to return */
  bool thread_joinable;
  pthread_t thread;
  loop_waker waker;         /* the main loop's */
  int event_fd;             /* hosted mode: a timerfd, else -1 */
  int64_t last_wall, last_mono; /* for clock-step detection */
  bool clock_seen;

  store_entry *stores;
  store_entry *removed_stores; /* unlinked, still pinned */
  unsigned stores_gen;         /* changes whenever the store list does */
  executor_entry *executors;
  executor_entry *retired_executors; /* removed but still referenced: freed last */
  pending_job *pending_head, *pending_tail;
  apsched_strmap pending_index; /* id -> pending_job */
  apsched_strmap instances;     /* id -> instance_count */
  block_cache instance_blocks;  /* instance counts with short ids (scheduler lock) */
  block_cache run_blocks;       /* run contexts of common sizes (aux_lock: runs are made
                                   and freed with or without the scheduler lock) */
  _Atomic(struct notice_block *) spare_notices; /* a grown notice array, kept for the
                                                   next list that grows (events.c) */
  listener *listeners;
  atomic_int listener_mask;     /* union of live listeners' masks */
  queued_event *queued, **queued_tail; /* for host listeners, oldest first */
  int next_listener_id;
  int listener_calls;           /* listener calls in progress */
  interned *aliases;
  int running_runs;             /* runs handed to executors and not finished */
  /* Quiet endings the main loop's pass applies (run.c, "Endings left to
   * the main loop's pass"): passes in progress, the runs left, and the
   * workers still touching s after leaving one (apsched_free waits). */
  atomic_int ending_takers;
  _Atomic(apsched_run_ctx *) left_endings;
  atomic_int ending_leavers;
};

/* ------------------------------------------------------------ sched_base.c */

/* The scheduler lock: user destructors that would run while it is held (a
 * removed job's arg_free) are deferred until it is released. */
static inline void apsched__lock(apsched_scheduler *s) {
  pthread_mutex_lock(&s->lock);
  apsched__args_defer_begin();
}
static inline void apsched__unlock(apsched_scheduler *s) {
  pthread_mutex_unlock(&s->lock);
  apsched__args_defer_end();
}

/* Allocation through the configured allocator. */
APSCHED_INTERNAL void *apsched__alloc(apsched_scheduler *s, size_t n);
APSCHED_INTERNAL void apsched__dealloc(apsched_scheduler *s, void *p);
APSCHED_INTERNAL char *apsched__sdup(apsched_scheduler *s, const char *text);
/* Interned alias strings, valid for the scheduler's life (any lock state). */
APSCHED_INTERNAL const char *apsched__intern(apsched_scheduler *s, const char *text);
APSCHED_INTERNAL apsched_time_t apsched__wall(apsched_scheduler *s);

APSCHED_INTERNAL int apsched__waker_init(loop_waker *w);
APSCHED_INTERNAL void apsched__waker_destroy(loop_waker *w);
/* Wakes one loop now. Lock held. */
APSCHED_INTERNAL void apsched__wake(apsched_scheduler *s, loop_waker *w);
/* The waker of the loop that serves se (a blocking store's own loop, else
 * the main one; se NULL: the main one). */
static inline loop_waker *apsched__store_waker(apsched_scheduler *s, store_entry *se) {
  return se && se->blocking ? &se->waker : &s->waker;
}
/* Wakes every loop (state changes, apsched_wakeup). Lock held. */
APSCHED_INTERNAL void apsched__wake_all(apsched_scheduler *s);
/* Wakes the loop that serves se if t is earlier than its planned wake. Lock held. */
APSCHED_INTERNAL void apsched__wake_if_earlier(apsched_scheduler *s, store_entry *se,
                                               apsched_time_t t);
/* Sleeps on w (lock held) until it is woken, *stop is set, or delay_us
 * (>= 0) passes. */
APSCHED_INTERNAL void apsched__waker_sleep(apsched_scheduler *s, loop_waker *w, int64_t delay_us,
                                           const bool *stop);

/* Live (not removed) entries by alias; NULL if none. Lock held. */
APSCHED_INTERNAL store_entry *apsched__find_store(apsched_scheduler *s, const char *alias);
APSCHED_INTERNAL executor_entry *apsched__find_executor(apsched_scheduler *s, const char *alias);

/* ---------------------------------------------------------- block_cache.c */

/* A block of c->size bytes, recycled or new; NULL when memory is short. */
APSCHED_INTERNAL void *apsched__block_take(apsched_scheduler *s, block_cache *c);
/* Keeps a block of c->size bytes for reuse, or frees it when c is full. */
APSCHED_INTERNAL void apsched__block_give(apsched_scheduler *s, block_cache *c, void *p);
APSCHED_INTERNAL void apsched__block_cache_free(apsched_scheduler *s, block_cache *c);

/* ---------------------------------------------------------------- events.c */

/* Announces (JOB_ERROR + log) what stores reported; lock NOT held. */
APSCHED_INTERNAL void apsched__deliver_reports(apsched_scheduler *s);
/* Frees undelivered reports (apsched_free). */
APSCHED_INTERNAL void apsched__drop_reports(apsched_scheduler *s);

APSCHED_INTERNAL void apsched__notices_init(notice_list *l);
/* Appends a notice; NULL on allocation failure (the event is lost: callers
 * treat events as best effort). */
APSCHED_INTERNAL notice *apsched__notice_add(apsched_scheduler *s, notice_list *l, int code);
/* Makes room for one more notice: after it, the next apsched__notice_add
 * cannot fail. False when memory is short. */
APSCHED_INTERNAL bool apsched__notice_room(apsched_scheduler *s, notice_list *l);
/* Appends a notice for code only if some listener wants it. */
APSCHED_INTERNAL notice *apsched__notice_if_wanted(apsched_scheduler *s, notice_list *l, int code);
/* Attaches a formatted log message (only if the level is enabled). */
APSCHED_INTERNAL void apsched__notice_log(apsched_scheduler *s, notice *n, apsched_log_level lvl,
                                          const char *fmt, ...) APSCHED_PRINTF(4, 5);
/* A log message to emit after the lock is released (nothing if the level is off). */
APSCHED_INTERNAL void apsched__log_later(apsched_scheduler *s, notice_list *l, apsched_log_level lvl,
                                         const char *fmt, ...) APSCHED_PRINTF(4, 5);
/* Checked inline: an add or a run usually has neither a listener nor a log
 * level that wants it. */
#define apsched__log_later(s, l, lvl, ...) \
  (apsched__log_enabled((s), (lvl)) ? apsched__log_later((s), (l), (lvl), __VA_ARGS__) : (void)0)
/* Copies strings into the notice so it outlives the records it names. */
APSCHED_INTERNAL void apsched__notice_own(apsched_scheduler *s, notice *n, const char *job_id,
                                          const char *jobstore_or_alias);
/* A job event (ADDED, REMOVED, MODIFIED) if some listener wants it. */
APSCHED_INTERNAL void apsched__job_event(apsched_scheduler *s, notice_list *nl, int code,
                                         const char *id, const char *jobstore);
#define apsched__job_event(s, nl, code, id, jobstore) \
  (apsched__wants((s), (code)) ? apsched__job_event((s), (nl), (code), (id), (jobstore)) : (void)0)
/* True if some listener wants code (cheap, lock-free). */
static inline bool apsched__wants(apsched_scheduler *s, int code) {
  return (atomic_load_explicit(&s->listener_mask, memory_order_relaxed) & code) != 0;
}
/* Logs and dispatches one notice and frees what it owns (not its run); lock NOT held. */
APSCHED_INTERNAL void apsched__notice_deliver(apsched_scheduler *s, notice *n);
/* Frees the list's own storage after its notices were delivered or dropped. */
APSCHED_INTERNAL void apsched__notices_reset(apsched_scheduler *s, notice_list *l);
/* Drops the notices after the first count, unseen (a failed step announces nothing). */
APSCHED_INTERNAL void apsched__notices_truncate(apsched_scheduler *s, notice_list *l, size_t count);
/* Drops every notice unseen (a failed call announces nothing). */
APSCHED_INTERNAL void apsched__notices_drop(apsched_scheduler *s, notice_list *l);
/* Delivers every notice of a list without runs; lock NOT held. */
APSCHED_INTERNAL void apsched__notices_flush(apsched_scheduler *s, notice_list *l);
/* Dispatches one event to listeners right away; lock NOT held. */
APSCHED_INTERNAL void apsched__dispatch(apsched_scheduler *s, const apsched_event *ev);
/* Emits a log message right away; lock NOT held. */
APSCHED_INTERNAL void apsched__log(apsched_scheduler *s, apsched_log_level lvl, const char *fmt,
                                   ...) APSCHED_PRINTF(3, 4);
static inline bool apsched__log_enabled(apsched_scheduler *s, apsched_log_level lvl) {
  return s->log && lvl >= s->log_level;
}
/* The level is checked before the call: every run logs twice at INFO, which
 * is usually off. */
#define apsched__log(s, lvl, ...) \
  (apsched__log_enabled((s), (lvl)) ? apsched__log((s), (lvl), __VA_ARGS__) : (void)0)

/* Which scheduler's user code runs on this thread. */
APSCHED_INTERNAL bool apsched__in_user_code(apsched_scheduler *s);
APSCHED_INTERNAL apsched_scheduler *apsched__enter_user_code(apsched_scheduler *s);
APSCHED_INTERNAL void apsched__leave_user_code(apsched_scheduler *saved);
/* Which scheduler's apsched_process runs on this thread: its events reach
 * host listeners at once (after the queued ones). */
APSCHED_INTERNAL apsched_scheduler *apsched__enter_host(apsched_scheduler *s);
APSCHED_INTERNAL void apsched__leave_host(apsched_scheduler *saved);
/* True if events wait for host listeners. Lock held. */
APSCHED_INTERNAL bool apsched__events_queued(apsched_scheduler *s);
/* Delivers the queued events to host listeners, oldest first; lock NOT held. */
APSCHED_INTERNAL void apsched__deliver_queued(apsched_scheduler *s);

/* ---------------------------------------------------------- store_access.c
 * A "store section" is a series of calls on one store. For a non-blocking
 * store the scheduler lock stays held throughout; for a blocking store the
 * entry is pinned, the scheduler lock dropped and the store's call lock
 * taken. Inside a section, code touches only the store and local data, or
 * takes the scheduler lock with apsched__section_lock/unlock (lock order:
 * a store's call lock, then the scheduler lock). */
APSCHED_INTERNAL void apsched__store_enter(apsched_scheduler *s, store_entry *se);
APSCHED_INTERNAL void apsched__store_leave(apsched_scheduler *s, store_entry *se);
APSCHED_INTERNAL void apsched__section_lock(apsched_scheduler *s, store_entry *se);
APSCHED_INTERNAL void apsched__section_unlock(apsched_scheduler *s, store_entry *se);
/* Pins an entry so it outlives the scheduler lock being dropped; unpin
 * frees a removed one when its last pin goes (a blocking store is closed
 * with the lock dropped for a moment). Lock held. */
APSCHED_INTERNAL void apsched__store_pin(store_entry *se);
/* Frees the strings of a queued ended run (see run_records.c). */
APSCHED_INTERNAL void apsched__run_result_free(apsched_run_result *r);
/* Frees the ended runs queued on se (their records stay open). */
APSCHED_INTERNAL void apsched__runs_drop(store_entry *se);
/* Frees the failure reports queued on se (see failure_counts.c). */
APSCHED_INTERNAL void apsched__failures_drop(store_entry *se);
/* Frees an entry and what is queued on it (not its store). */
APSCHED_INTERNAL void apsched__store_entry_free(apsched_scheduler *s, store_entry *se);
APSCHED_INTERNAL void apsched__store_unpin(apsched_scheduler *s, store_entry *se);
/* Notes the outcome of a store call made by the loop: a failure (other
 * than a refusal of bad input) starts or continues the retry backoff and
 * reports JOBSTORE_FAILED once; a success after failures reports
 * JOBSTORE_RECOVERED. Lock held. */
APSCHED_INTERNAL void apsched__store_outcome(apsched_scheduler *s, store_entry *se, int rc,
                                             const char *what, notice_list *nl);
/* True if a failing store's retry time has not come yet. Lock held. */
APSCHED_INTERNAL bool apsched__store_backing_off(store_entry *se, apsched_time_t now);
/* run_starting of the store aliased jobstore (version 4), called without
 * any lock (the entry is pinned meanwhile): APSCHED_OK if the store has no
 * such call or is gone; else its answer, why it refused in why. Lock NOT held. */
APSCHED_INTERNAL int apsched__store_run_starting(apsched_scheduler *s, const char *jobstore,
                                                 const char *job_id, apsched_time_t scheduled_time,
                                                 unsigned attempt, char *why, size_t whylen);
/* A store call's error for apsched_last_error (naming the store and call). */
APSCHED_INTERNAL int apsched__store_error(store_entry *se, const char *call, int rc);

/* ----------------------------------------------------------- run_records.c */

/* Queues ended runs (copied) for runs_closed of the store aliased jobstore
 * and wakes the loop that serves it. A store that is gone, or memory that
 * is short, drops them (logged): their records stay open. Lock held. */
APSCHED_INTERNAL void apsched__runs_ended(apsched_scheduler *s, const char *jobstore,
                                          const apsched_run_result *results, size_t n);
/* Hands se's queued ended runs to its runs_closed in one call (a store
 * section of its own). On error they stay queued for the next try. Lock
 * held on entry and exit. */
APSCHED_INTERNAL int apsched__runs_flush(apsched_scheduler *s, store_entry *se);
/* Takes se's queued ended runs out of the entry (*batch, malloc'd with
 * room for *cap; NULL when none are queued); returns how many. Lock held. */
APSCHED_INTERNAL size_t apsched__runs_take(store_entry *se, apsched_run_result **batch, size_t *cap);
/* Ends what apsched__runs_take took: freed once recorded, else queued again
 * in front of the runs that ended meanwhile. Lock held. */
APSCHED_INTERNAL void apsched__runs_settle(apsched_scheduler *s, store_entry *se,
                                           apsched_run_result *batch, size_t n, size_t cap,
                                           bool recorded);

/* --------------------------------------------------------- failure_counts.c */

/* Queues what a run of a job with pause_after_failures changes about its
 * count (reset: it succeeded once; failed: failures after that) for the
 * loop that serves the store. Queued before the run's instance slot is
 * released, so a job's reports are in the order of its runs; applied only
 * once ready (after the run's outcome events, so a JOB_PAUSED it leads to
 * comes after them): ready now wakes the loop, else apsched__failures_ready
 * does. Returns the report (NULL: nothing queued). Lock held. */
APSCHED_INTERNAL failure_report *apsched__failures_report(apsched_scheduler *s,
                                                          const char *jobstore, const char *job_id,
                                                          bool reset, uint32_t failed,
                                                          const char *error, bool ready);
/* Marks a report of apsched__failures_report ready and wakes the loop (if
 * it is still queued: its store may have been removed meanwhile). Lock held. */
APSCHED_INTERNAL void apsched__failures_ready(apsched_scheduler *s, const char *jobstore,
                                              const failure_report *report);
/* Applies se's queued reports that are ready, in order, to their jobs:
 * counts stored, a job that reached its limit paused (JOB_PAUSED). On
 * error the rest stay queued.
 * Lock held on entry and exit (dropped around a blocking store). */
APSCHED_INTERNAL int apsched__failures_apply(apsched_scheduler *s, store_entry *se,
                                             notice_list *nl);

/* ------------------------------------------------------------------- run.c */

/* A run of rec's job at the given times (copied); no instance slot yet. */
APSCHED_INTERNAL apsched_run_ctx *apsched__run_new(apsched_scheduler *s, const apsched_job_record *rec,
                                                   const char *jobstore, const apsched_time_t *times,
                                                   size_t n);
/* What apsched__run_reserve decided. */
typedef enum apsched_reserve {
  APSCHED_RESERVE_OK,          /* it has a slot: submit it */
  APSCHED_RESERVE_FULL,        /* max_instances running: skip it (SKIP) */
  APSCHED_RESERVE_FULL_BUFFER, /* BUFFER_ALL's waiting runs are at their limit: skip it */
  APSCHED_RESERVE_WAITS,       /* it waits for a slot; the scheduler owns it now */
  APSCHED_RESERVE_OOM
} apsched_reserve;

/* What the overlap policy did besides (RESERVE_WAITS). */
typedef struct apsched_overlap_effects {
  apsched_run_ctx *dropped; /* a run that waited and is replaced: skip it */
  apsched_run_ctx *stopped; /* a running run asked to stop (valid while the lock is held) */
  uint32_t waiting;         /* runs of the job waiting now */
} apsched_overlap_effects;

/* Asks the running run of job id in jobstore that covers time t to stop,
 * as a newer run under overlap (cancel_other / terminate_other) asks: it
 * is returned (the caller terminates it if it must), or NULL when no such
 * run runs here or it was asked already. Lock held. */
APSCHED_INTERNAL apsched_run_ctx *apsched__run_ask_stop(apsched_scheduler *s, const char *jobstore,
                                                        const char *id, apsched_time_t t,
                                                        int overlap);
/* Reserves an instance slot for the run's job, or applies its overlap
 * policy when max_instances runs are running. Lock held. */
APSCHED_INTERNAL apsched_reserve apsched__run_reserve(apsched_run_ctx *run, const char *executor,
                                                      apsched_overlap_effects *fx);
/* The run's overlap policy (apsched_overlap). */
APSCHED_INTERNAL int apsched__run_overlap(const apsched_run_ctx *run);
/* The alias of the executor the run was reserved for (interned). */
APSCHED_INTERNAL const char *apsched__run_executor_alias(const apsched_run_ctx *run);
/* Reports every time of a run that could not be submitted as ERROR (with the
 * message set on the run), releases its slot and frees it. refused (its
 * executor refused it): the tracked times of an at-most-once run end as
 * FAILED in its store, so the store does not keep them open, counting toward
 * max_instances, while this scheduler lives. Otherwise (and for at-least-once
 * runs) its records stay open for whoever uses the store next (discarded at
 * shutdown, short of memory). */
APSCHED_INTERNAL void apsched__run_fail(apsched_run_ctx *run, bool refused);
/* The store tracks this run: its ended times go to runs_closed; fenced:
 * each start is confirmed with the store's run_starting first. */
APSCHED_INTERNAL void apsched__run_track(apsched_run_ctx *run, bool fenced);
/* The run's lateness is judged by its store's clock, offset from ours. */
APSCHED_INTERNAL void apsched__run_clock_offset(apsched_run_ctx *run, int64_t offset);
/* A run a crashed scheduler left unfinished, run again as this attempt
 * whatever its lateness. */
APSCHED_INTERNAL void apsched__run_recovered(apsched_run_ctx *run, unsigned attempt);
/* A run asked for by the API (run now, backfill): it runs whatever its
 * lateness. */
APSCHED_INTERNAL void apsched__run_on_demand(apsched_run_ctx *run);
/* Frees a run that a policy skips (max_instances): a tracked run's times
 * end as SKIPPED. No events, no slot. Lock held. */
APSCHED_INTERNAL void apsched__run_skip(apsched_run_ctx *run);
/* Frees a run that cannot start here (no executor of its name, its function
 * not registered; the error was reported): as a refused apsched__run_fail,
 * an at-most-once run's tracked times end as FAILED with why, an
 * at-least-once run's stay open. No events, no slot. Lock held. */
APSCHED_INTERNAL void apsched__run_refuse(apsched_run_ctx *run, const char *why);
/* Frees a run that was never handed out (no events, no slot; a tracked
 * run's records stay open). */
APSCHED_INTERNAL void apsched__run_abandon(apsched_run_ctx *run);
/* The main loop's pass promises (lock held, at its start) to apply the
 * quiet endings workers leave while it holds the lock, and settles them
 * (lock held, before it lets the lock go; log lines go into nl). Runs that
 * waited for a slot freed there are returned, for apsched__endings_submit
 * once the lock is released. */
APSCHED_INTERNAL void apsched__endings_promise(apsched_scheduler *s);
APSCHED_INTERNAL apsched_run_ctx *apsched__endings_settle(apsched_scheduler *s, notice_list *nl);
APSCHED_INTERNAL void apsched__endings_submit(apsched_scheduler *s, apsched_run_ctx *handed);
/* The workers that left an ending are gone from s (apsched_free). Lock held. */
APSCHED_INTERNAL void apsched__endings_wait_leavers(apsched_scheduler *s);
APSCHED_INTERNAL const apsched_time_t *apsched__run_times(const apsched_run_ctx *run);
APSCHED_INTERNAL unsigned apsched__run_max_instances(const apsched_run_ctx *run);

/* -------------------------------------------------------------- dispatch.c */

/* Claims the due jobs of one store, stores their advanced next run times and
 * queues their runs (as notices; apsched__dispatch_flush submits them).
 * Lock held on entry and exit (dropped around a blocking store's calls).
 * Returns the store's next run time (NONE: none or unknown), or now when a
 * full batch was claimed and more may be due. */
APSCHED_INTERNAL apsched_time_t apsched__dispatch_store(apsched_scheduler *s, store_entry *se,
                                                       apsched_time_t now, notice_list *nl);
/* Queues a run made outside the loop (run now, backfill) as the loop
 * queues its own: its overlap policy applies. store_rc and wait: what a
 * shared store's runs_add answered (APSCHED_OK and nothing waiting for
 * other stores): EBUSY skips it, wait->waiting > 0 says it waits in the
 * store. Lock held. */
APSCHED_INTERNAL void apsched__dispatch_run(apsched_scheduler *s, notice_list *nl,
                                           const char *jobstore, apsched_run_ctx *run,
                                           const char *executor, int store_rc,
                                           const apsched_runs_waiting *wait);
/* Delivers the notices and submits their runs; lock NOT held. */
APSCHED_INTERNAL void apsched__dispatch_flush(apsched_scheduler *s, notice_list *nl);

/* ------------------------------------------------------------------ jobs.c */

/* Waits while another thread is starting the scheduler (its pending jobs
 * are on their way into their stores). Lock held. */
APSCHED_INTERNAL void apsched__wait_start(apsched_scheduler *s);

/* A job found by id: pending, or in a store whose section is entered (the
 * caller must call apsched__found_leave). */
typedef struct found_job {
  const apsched_job_record *rec; /* borrowed, read-only */
  store_entry *store;            /* NULL for a pending job */
  const char *alias;             /* its store's alias (interned) */
  pending_job *pending;
} found_job;

/* Lock held (dropped inside a blocking store's section). ENOENT naming the id. */
APSCHED_INTERNAL int apsched__find_job(apsched_scheduler *s, const char *id, const char *jobstore,
                                       found_job *f);
APSCHED_INTERNAL void apsched__found_leave(apsched_scheduler *s, found_job *f);
/* OK if a query may name this store (see jobs.c); ENOENT otherwise. Lock held. */
APSCHED_INTERNAL int apsched__check_store_alias(apsched_scheduler *s, const char *jobstore);

/* Checks that every pending job can be committed (its store and executor
 * exist); ENOENT naming the first that cannot. Lock held. */
APSCHED_INTERNAL int apsched__check_pending(apsched_scheduler *s);
/* Moves pending jobs into their stores, one batch per store (at start).
 * Jobs of a store that refuses its batch stay pending; returns the first
 * error. Lock held (dropped around blocking stores). */
APSCHED_INTERNAL int apsched__commit_pending(apsched_scheduler *s, notice_list *nl);
APSCHED_INTERNAL void apsched__free_pending(apsched_scheduler *s);

#endif
