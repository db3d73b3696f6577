/* The scheduler's private state, shared by scheduler.c (lifecycle, loop),
 * jobs.c (job API), events.c (listeners, notices) and run.c (executions). */
#ifndef APSCHED_SCHEDULER_INTERNAL_H
#define APSCHED_SCHEDULER_INTERNAL_H

#include "internal.h"
#include "util/strmap.h"

#include <pthread.h>

/* How the loop is driven. */
typedef enum loop_mode { MODE_NONE, MODE_THREAD, MODE_BLOCKING, MODE_HOSTED } loop_mode;

typedef struct store_entry {
  const char *alias; /* interned */
  apsched_jobstore *store;
  struct store_entry *next;
} store_entry;

typedef struct executor_entry {
  const char *alias; /* interned */
  apsched_executor *executor;
  bool started;
  int submitting; /* runs being handed over right now (scheduler lock) */
  struct executor_entry *next;
} executor_entry;

/* A job added while the scheduler is stopped. */
typedef struct pending_job {
  apsched_job_record *rec;
  const char *jobstore; /* interned */
  bool replace_existing;
  bool explicit_next;   /* next_run_time was given by the caller */
  struct pending_job *prev, *next;
} pending_job;

typedef struct listener {
  int id;
  apsched_listener_fn fn;
  int mask;
  void *user_data;
  int active;    /* calls in progress */
  bool removed;
  bool waiter;   /* remove_listener is waiting to free it */
  struct listener *next;
} listener;

/* Running instances of one job (exists while count > 0). */
typedef struct instance_count {
  uint32_t count;
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
  apsched_run_ctx *run;            /* submit this run (SUBMITTED is ev) */
  executor_entry *exec;
} notice;

typedef struct notice_list {
  notice *items;
  size_t count, cap;
  notice inline_items[8];
} notice_list;

struct apsched_scheduler {
  pthread_mutex_t lock;
  pthread_cond_t wake;    /* the loop sleeps here (CLOCK_MONOTONIC) */
  pthread_cond_t changed; /* listener calls ended, submits ended, loop stopped */

  apsched_allocator alloc;
  apsched_clock clock;
  apsched_log_fn log;
  void *log_user_data;
  apsched_log_level log_level;
  int64_t max_wait;
  int default_max_instances;
  int64_t default_grace;
  bool default_coalesce;
  apsched_tz *tz;

  apsched_state state;
  loop_mode mode;
  bool loop_running;        /* the loop thread/caller is inside the loop */
  bool thread_joinable;
  pthread_t thread;
  bool wakeup_pending;
  apsched_time_t planned_wake; /* when the loop means to wake next */
  int event_fd;             /* hosted mode: a timerfd, else -1 */
  int64_t last_wall, last_mono; /* for clock-step detection */
  bool clock_seen;

  store_entry *stores;
  executor_entry *executors;
  executor_entry *retired_executors; /* removed but still referenced: freed last */
  pending_job *pending_head, *pending_tail;
  apsched_strmap pending_index; /* id -> pending_job */
  apsched_strmap instances;     /* id -> instance_count */
  listener *listeners;
  atomic_int listener_mask;     /* union of live listeners' masks */
  int next_listener_id;
  int listener_calls;           /* listener calls in progress */
  interned *aliases;
  int running_runs;             /* runs handed to executors and not finished */
};

/* ---- the scheduler lock: user destructors that would run while it is held
 * (a removed job's arg_free) are deferred until it is released. */
static inline void apsched__lock(apsched_scheduler *s) {
  pthread_mutex_lock(&s->lock);
  apsched__args_defer_begin();
}
static inline void apsched__unlock(apsched_scheduler *s) {
  pthread_mutex_unlock(&s->lock);
  apsched__args_defer_end();
}

/* ---- allocation through the configured allocator */
APSCHED_INTERNAL void *apsched__alloc(apsched_scheduler *s, size_t n);
APSCHED_INTERNAL void apsched__dealloc(apsched_scheduler *s, void *p);
APSCHED_INTERNAL char *apsched__sdup(apsched_scheduler *s, const char *text);

/* ---- clock */
APSCHED_INTERNAL apsched_time_t apsched__wall(apsched_scheduler *s);

/* ---- interned alias strings (lock held) */
APSCHED_INTERNAL const char *apsched__intern(apsched_scheduler *s, const char *text);

/* ---- notices (events + logs) */
APSCHED_INTERNAL void apsched__notices_init(notice_list *l);
/* Appends a notice; returns NULL on allocation failure (the event is lost,
 * which is logged to stderr never; callers treat it as best effort). */
APSCHED_INTERNAL notice *apsched__notice_add(apsched_scheduler *s, notice_list *l, int code);
/* Attaches a formatted log message (only if the level is enabled). */
APSCHED_INTERNAL void apsched__notice_log(apsched_scheduler *s, notice *n, apsched_log_level lvl,
                                          const char *fmt, ...) APSCHED_PRINTF(4, 5);
/* A log message to emit after the lock is released (nothing if the level is off). */
APSCHED_INTERNAL void apsched__log_later(apsched_scheduler *s, notice_list *l, apsched_log_level lvl,
                                         const char *fmt, ...) APSCHED_PRINTF(4, 5);
/* Copies strings into the notice so it outlives the records it names. */
APSCHED_INTERNAL void apsched__notice_own(apsched_scheduler *s, notice *n, const char *job_id,
                                          const char *jobstore_or_alias);
/* True if some listener wants code (cheap, lock-free). */
APSCHED_INTERNAL bool apsched__wants(apsched_scheduler *s, int code);
/* Dispatches and frees every notice, submitting runs; lock NOT held. */
APSCHED_INTERNAL void apsched__notices_flush(apsched_scheduler *s, notice_list *l);
/* Dispatches one event to listeners right away; lock NOT held. */
APSCHED_INTERNAL void apsched__dispatch(apsched_scheduler *s, const apsched_event *ev);
/* Emits a log message right away; lock NOT held. */
APSCHED_INTERNAL void apsched__log(apsched_scheduler *s, apsched_log_level lvl, const char *fmt,
                                   ...) APSCHED_PRINTF(3, 4);
APSCHED_INTERNAL bool apsched__log_enabled(apsched_scheduler *s, apsched_log_level lvl);

/* ---- thread context: which scheduler's user code runs on this thread */
APSCHED_INTERNAL bool apsched__in_user_code(apsched_scheduler *s);
APSCHED_INTERNAL apsched_scheduler *apsched__enter_user_code(apsched_scheduler *s);
APSCHED_INTERNAL void apsched__leave_user_code(apsched_scheduler *saved);

/* ---- runs */
/* A run of rec's job at the given times (copied); instance already reserved. */
APSCHED_INTERNAL apsched_run_ctx *apsched__run_new(apsched_scheduler *s, const apsched_job_record *rec,
                                               const char *jobstore, const char *executor,
                                               instance_count *inst,
                                               const apsched_time_t *times, size_t n);
/* Reserves an instance slot; NULL if max_instances is reached (*full set)
 * or memory is short. Lock held. */
APSCHED_INTERNAL instance_count *apsched__instance_reserve(apsched_scheduler *s, const char *id,
                                                           unsigned max, bool *full);
/* Reports every time of a run that could not be submitted as ERROR (with the
 * message set on the run), releases its slot and frees it. */
APSCHED_INTERNAL void apsched__run_fail(apsched_run_ctx *run);
/* Frees a run that was never handed out (lock may be held; no events). */
APSCHED_INTERNAL void apsched__run_abandon(apsched_run_ctx *run);
/* The run's scheduled times (count given at creation). */
APSCHED_INTERNAL const apsched_time_t *apsched__run_times(const apsched_run_ctx *run);
APSCHED_INTERNAL void apsched__instance_release(apsched_scheduler *s, instance_count *inst);

/* ---- jobs (jobs.c) */
/* Moves pending jobs into their stores (at start). Lock held. */
APSCHED_INTERNAL void apsched__commit_pending(apsched_scheduler *s, notice_list *nl);
APSCHED_INTERNAL void apsched__free_pending(apsched_scheduler *s);
/* Handles one claimed due job: runs, misses, next run time, release. Lock held. */
APSCHED_INTERNAL void apsched__process_claimed(apsched_scheduler *s, store_entry *se,
                                               apsched_job_record *rec, apsched_time_t now,
                                               notice_list *nl);
APSCHED_INTERNAL store_entry *apsched__find_store(apsched_scheduler *s, const char *alias);
APSCHED_INTERNAL executor_entry *apsched__find_executor(apsched_scheduler *s, const char *alias);
/* Wakes the loop if t is earlier than its planned wake. Lock held. */
APSCHED_INTERNAL void apsched__wake_if_earlier(apsched_scheduler *s, apsched_time_t t);
APSCHED_INTERNAL void apsched__wake_locked(apsched_scheduler *s);

#endif
