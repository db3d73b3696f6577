/* The scheduler: creation, lifecycle (start / run / hosted / shutdown /
 * pause), the loops that wake on the earliest next run time (the main one
 * for stores that do no I/O, one thread per blocking store), and adding and
 * removing stores and executors. */
#include "scheduler_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* A wall-clock move this much beyond the monotonic clock is a step. */
#define CLOCK_STEP_THRESHOLD (1 * APSCHED_SEC)

/* ---------------------------------------------------------------- create */

static void *default_malloc(size_t n, void *ud) {
  (void)ud;
  return malloc(n);
}
static void *default_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return realloc(p, n);
}
static void default_free(void *p, void *ud) {
  (void)ud;
  free(p);
}

int apsched_create(const apsched_config *cfg, apsched_scheduler **out) {
  static const apsched_config defaults = {0};
  if (!out) return apsched__error(APSCHED_EINVAL, "create: out is NULL");
  if (!cfg) cfg = &defaults;
  if (cfg->max_instances < 0 || cfg->max_instances > APSCHED_MAX_INSTANCES_LIMIT ||
      cfg->misfire_grace_time < 0 ||
      (cfg->misfire_grace_time > APSCHED_DURATION_MAX &&
       cfg->misfire_grace_time != APSCHED_GRACE_UNLIMITED) ||
      cfg->max_wait < 0 || cfg->store_retry_interval < 0 ||
      (cfg->coalesce != APSCHED_DEFAULT && cfg->coalesce != APSCHED_YES &&
       cfg->coalesce != APSCHED_NO) ||
      (cfg->clock && !cfg->clock->wall) ||
      (cfg->allocator && (!cfg->allocator->malloc || !cfg->allocator->free)))
    return apsched__error(APSCHED_EINVAL,
                          "config: max_instances 0..%d, misfire_grace_time, max_wait and "
                          "store_retry_interval >= 0, "
                          "coalesce an apsched_flag, clock->wall and allocator functions set",
                          APSCHED_MAX_INSTANCES_LIMIT);
  apsched_tz *tz;
  char why[200] = "";
  int rc = apsched_tz_get(cfg->timezone ? cfg->timezone : "local", &tz, why, sizeof why);
  if (rc != APSCHED_OK) return apsched__error(rc, "timezone: %s", why);
  apsched_allocator alloc = {default_malloc, default_realloc, default_free, NULL};
  if (cfg->allocator) alloc = *cfg->allocator;
  apsched_scheduler *s = alloc.malloc(sizeof *s, alloc.user_data);
  if (!s) {
    apsched_tz_free(tz);
    return apsched__error(APSCHED_ENOMEM, "create: out of memory");
  }
  memset(s, 0, sizeof *s);
  s->alloc = alloc;
  s->tz = tz;
  if (cfg->clock) s->clock = *cfg->clock;
  s->log = cfg->log;
  s->log_user_data = cfg->log_user_data;
  s->log_level = cfg->log_level ? cfg->log_level : APSCHED_LOG_WARNING;
  s->max_wait = cfg->max_wait ? cfg->max_wait : APSCHED_SEC;
  s->store_retry_max = cfg->store_retry_interval ? cfg->store_retry_interval : 10 * APSCHED_SEC;
  s->default_max_instances = cfg->max_instances ? cfg->max_instances : 1;
  s->default_grace = cfg->misfire_grace_time ? cfg->misfire_grace_time : APSCHED_SEC;
  s->default_coalesce = cfg->coalesce != APSCHED_NO;
  s->state = APSCHED_STATE_STOPPED;
  s->event_fd = -1;
  atomic_init(&s->listener_mask, 0);
  atomic_init(&s->spare_notices, NULL);
  atomic_init(&s->ending_takers, 0);
  atomic_init(&s->left_endings, NULL);
  atomic_init(&s->ending_leavers, 0);
  /* A batch of claimed runs at a time, as many instance counts. */
  s->run_blocks = (block_cache){.size = APSCHED_RUN_BLOCK_SIZE, .limit = 1024};
  s->instance_blocks = (block_cache){.size = APSCHED_INSTANCE_BLOCK_SIZE, .limit = 1024};

  int err = pthread_mutex_init(&s->lock, NULL);
  if (!err && (err = pthread_mutex_init(&s->aux_lock, NULL)) != 0) pthread_mutex_destroy(&s->lock);
  if (!err && (err = apsched__waker_init(&s->waker)) != 0) {
    pthread_mutex_destroy(&s->aux_lock);
    pthread_mutex_destroy(&s->lock);
  }
  if (!err && (err = pthread_cond_init(&s->changed, NULL)) != 0) {
    apsched__waker_destroy(&s->waker);
    pthread_mutex_destroy(&s->aux_lock);
    pthread_mutex_destroy(&s->lock);
  }
  if (err) {
    apsched_tz_free(tz);
    alloc.free(s, alloc.user_data);
    return apsched__error(APSCHED_ESYS, "create: cannot initialize the scheduler's lock");
  }
  *out = s;
  return APSCHED_OK;
}

const apsched_tz *apsched_timezone(apsched_scheduler *s) { return s ? s->tz : NULL; }

apsched_state apsched_get_state(apsched_scheduler *s) {
  if (!s) return APSCHED_STATE_STOPPED;
  apsched__lock(s);
  apsched_state st = s->state;
  apsched__unlock(s);
  return st;
}

int apsched_wakeup(apsched_scheduler *s) {
  if (!s) return apsched__error(APSCHED_EINVAL, "wakeup: scheduler is NULL");
  apsched__lock(s);
  int rc = s->state == APSCHED_STATE_STOPPED
               ? apsched__error(APSCHED_ESTATE, "wakeup: the scheduler is not running")
               : APSCHED_OK;
  if (rc == APSCHED_OK) apsched__wake_all(s);
  apsched__unlock(s);
  return rc;
}

/* Hosted mode's descriptor is a timerfd armed for the next due time, so it
 * becomes readable exactly when work is due. delay_us 0: readable now;
 * < 0: disarmed. Lock held. */
static void arm_host_timer(apsched_scheduler *s, int64_t delay_us) {
  if (s->event_fd < 0) return;
  struct itimerspec it = {{0, 0}, {0, 0}};
  int flags = 0;
  if (delay_us == 0) {
    flags = TFD_TIMER_ABSTIME; /* an absolute time long past: expires now */
    it.it_value.tv_nsec = 1;
  } else if (delay_us > 0) {
    it.it_value.tv_sec = (time_t)(delay_us / APSCHED_SEC);
    it.it_value.tv_nsec = (long)(delay_us % APSCHED_SEC) * 1000;
  }
  timerfd_settime(s->event_fd, flags, &it, NULL);
}

/* ------------------------------------------------------------------ loops */

/* Reports a wall-clock step: the wall clock moved differently from the
 * monotonic clock since the last look. Lock held. */
static void check_clock(apsched_scheduler *s, apsched_time_t wall, notice_list *nl) {
  if (!s->clock.monotonic && s->clock.wall) return; /* a fake clock without a monotonic twin */
  int64_t mono = s->clock.monotonic ? s->clock.monotonic(s->clock.user_data) : apsched__mono_now();
  if (s->clock_seen) {
    int64_t step;
    if (__builtin_sub_overflow(wall, s->last_wall, &step) || __builtin_sub_overflow(step, mono - s->last_mono, &step))
      step = INT64_MAX;
    if (step > CLOCK_STEP_THRESHOLD || step < -CLOCK_STEP_THRESHOLD) {
      notice *n = apsched__notice_add(
          s, nl, apsched__wants(s, APSCHED_EVENT_CLOCK_STEP) ? APSCHED_EVENT_CLOCK_STEP : 0);
      if (n) {
        n->ev.clock_step = step;
        char d[64];
        apsched__format_duration(step < 0 ? -step : step, d, sizeof d);
        apsched__notice_log(s, n, APSCHED_LOG_WARNING,
                            "The system clock stepped %s by %s; next run times are kept as they "
                            "are (no run fires twice)",
                            step < 0 ? "backwards" : "forwards", d);
      }
    }
  }
  s->clock_seen = true;
  s->last_wall = wall;
  s->last_mono = mono;
}

static apsched_time_t earlier(apsched_time_t a, apsched_time_t b) {
  if (a == APSCHED_TIME_NONE) return b;
  if (b == APSCHED_TIME_NONE) return a;
  return a < b ? a : b;
}

/* One pass of the main loop over the non-blocking stores (blocking ones
 * have threads of their own). Returns the wall time of the next due job
 * (NONE: nothing scheduled; <= now: call again at once). Lock not held. */
static apsched_time_t process_once(apsched_scheduler *s) {
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  apsched__endings_promise(s);
  apsched_time_t now = apsched__wall(s);
  check_clock(s, now, &nl);
  apsched_time_t next = APSCHED_TIME_NONE;
  if (s->state == APSCHED_STATE_RUNNING) {
    for (store_entry *se = s->stores; se; se = se->next)
      if (!se->blocking) next = earlier(next, apsched__dispatch_store(s, se, now, &nl));
    s->waker.planned_wake = next;
  }
  apsched_run_ctx *handed = apsched__endings_settle(s, &nl);
  apsched__unlock(s);
  apsched__dispatch_flush(s, &nl);
  apsched__endings_submit(s, handed);
  apsched__deliver_reports(s);
  return next;
}

/* How long to sleep until next, capped so clock steps are seen. */
static int64_t wait_for(apsched_scheduler *s, apsched_time_t next) {
  if (next == APSCHED_TIME_NONE) return s->max_wait;
  int64_t d;
  if (__builtin_sub_overflow(next, apsched__wall(s), &d)) d = next < 0 ? 0 : s->max_wait;
  if (d < 0) return 0;
  return d < s->max_wait ? d : s->max_wait;
}

static void run_loop(apsched_scheduler *s) {
  apsched__lock(s);
  s->loop_running = true;
  while (!s->loop_stop) {
    s->waker.wakeup_pending = false;
    apsched__unlock(s);
    apsched_time_t next = process_once(s);
    apsched__lock(s);
    if (s->loop_stop) break;
    if (s->waker.wakeup_pending) continue;
    int64_t d = wait_for(s, s->state == APSCHED_STATE_PAUSED ? APSCHED_TIME_NONE : next);
    if (d > 0) apsched__waker_sleep(s, &s->waker, d, &s->loop_stop);
  }
  s->loop_running = false;
  pthread_cond_broadcast(&s->changed);
  apsched__unlock(s);
}

/* Linux delays timer wake-ups by up to 50 µs by default ("timer slack") to
 * batch them; a scheduler wants to wake on time. */
static unsigned long tighten_timer_slack(void) {
  int old = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  return old > 0 ? (unsigned long)old : 0;
}

static void restore_timer_slack(unsigned long old) {
  if (old) prctl(PR_SET_TIMERSLACK, old, 0, 0, 0);
}

static void *loop_thread(void *arg) {
  tighten_timer_slack();
  run_loop(arg);
  return NULL;
}

/* A blocking store's own loop: its calls never hold up the main loop or
 * other stores. It holds a pin on its entry while it lives. */
static void *store_thread(void *arg) {
  store_entry *se = arg;
  apsched_scheduler *s = se->sched;
  tighten_timer_slack();
  apsched__lock(s);
  while (!se->thread_stop) {
    se->waker.wakeup_pending = false;
    notice_list nl;
    apsched__notices_init(&nl);
    apsched_time_t next = APSCHED_TIME_NONE;
    if (s->state == APSCHED_STATE_RUNNING) {
      next = apsched__dispatch_store(s, se, apsched__wall(s), &nl);
      se->waker.planned_wake = next;
    }
    apsched__unlock(s);
    apsched__dispatch_flush(s, &nl);
    apsched__deliver_reports(s);
    apsched__lock(s);
    if (se->thread_stop) break;
    if (se->waker.wakeup_pending) continue;
    int64_t d = wait_for(s, s->state == APSCHED_STATE_RUNNING ? next : APSCHED_TIME_NONE);
    if (d > 0) apsched__waker_sleep(s, &se->waker, d, &se->thread_stop);
  }
  apsched__store_unpin(s, se);
  apsched__unlock(s);
  return NULL;
}

static int start_store_thread(store_entry *se) {
  if (!se->blocking || se->thread_joinable) return APSCHED_OK;
  se->thread_stop = false;
  apsched__store_pin(se); /* the thread's own */
  if (pthread_create(&se->thread, NULL, store_thread, se) != 0) {
    se->pins--;
    return apsched__error(APSCHED_ESYS, "start: cannot create the thread of job store '%s'",
                          se->alias);
  }
  se->thread_joinable = true;
  return APSCHED_OK;
}

/* Tells a store's thread to stop and, unless it is the calling thread (a
 * listener it runs), waits for it. Lock held (dropped while joining). */
static void stop_store_thread(apsched_scheduler *s, store_entry *se, bool join) {
  if (!se->thread_joinable) return;
  se->thread_stop = true;
  apsched__wake(s, &se->waker);
  if (!join) return;
  pthread_t t = se->thread;
  se->thread_joinable = false;
  if (pthread_equal(t, pthread_self())) {
    pthread_detach(t);
    return;
  }
  apsched__store_pin(se);
  apsched__unlock(s);
  pthread_join(t, NULL);
  apsched__lock(s);
  apsched__store_unpin(s, se);
}

/* Joins every store thread that was told to stop. Lock held. */
static void join_store_threads(apsched_scheduler *s) {
restart:;
  unsigned gen = s->stores_gen;
  for (store_entry *se = s->stores; se; se = se->next) {
    if (!se->thread_joinable || !se->thread_stop) continue;
    stop_store_thread(s, se, true);
    if (s->stores_gen != gen) goto restart;
  }
}

/* ----------------------------------------------------------- lifecycle */

static void emit(apsched_scheduler *s, int code, const char *alias) {
  apsched_event ev = {.code = code, .alias = alias, .scheduled_run_time = APSCHED_TIME_NONE};
  apsched__dispatch(s, &ev);
}

/* Waits for a loop thread that was told to stop (if any). Lock held. */
static void join_old_thread(apsched_scheduler *s) {
  if (!s->thread_joinable) return;
  pthread_t t = s->thread;
  s->thread_joinable = false;
  apsched__unlock(s);
  pthread_join(t, NULL);
  apsched__lock(s);
}

static store_entry *new_store_entry(apsched_scheduler *s, apsched_jobstore *st) {
  store_entry *e = apsched__alloc(s, sizeof *e);
  if (!e) return NULL;
  *e = (store_entry){.sched = s, .store = st, .retry_at = APSCHED_TIME_NONE,
                     .blocking = (st->vtable->flags & APSCHED_STORE_BLOCKING) != 0};
  if (st->vtable->version >= 3) {
    e->runs_open = st->vtable->runs_open;
    e->runs_closed = st->vtable->runs_closed;
    e->claim_orphans = st->vtable->claim_orphans;
  }
  if (st->vtable->version >= 4) {
    e->clock = st->vtable->clock;
    e->run_starting = st->vtable->run_starting;
  }
  if (st->vtable->version >= 5 && e->run_starting && st->vtable->runs_wait &&
      st->vtable->claim_waiting && st->vtable->runs_add) {
    e->runs_wait = st->vtable->runs_wait;
    e->claim_waiting = st->vtable->claim_waiting;
    e->runs_add = st->vtable->runs_add;
  }
  if (st->vtable->version >= 6 && e->runs_closed && st->vtable->commit)
    e->runs_closed_in_batch = st->vtable->runs_closed_in_batch;
  if (e->blocking) {
    if (pthread_mutex_init(&e->call_lock, NULL) != 0) {
      apsched__dealloc(s, e);
      return NULL;
    }
    if (apsched__waker_init(&e->waker) != APSCHED_OK) {
      pthread_mutex_destroy(&e->call_lock);
      apsched__dealloc(s, e);
      return NULL;
    }
  }
  return e;
}

/* Hands a store the runs that ended since its loop's last pass (shutdown,
 * removal, free: no loop will). Lock held (dropped around the store call). */
static void flush_ended_runs(apsched_scheduler *s, store_entry *se) {
  if (se->failure_reports) {
    notice_list nl;
    apsched__notices_init(&nl);
    int rc = apsched__failures_apply(s, se, &nl);
    if (rc != APSCHED_OK) apsched__failures_drop(se);
    apsched__unlock(s);
    if (rc != APSCHED_OK)
      apsched__log(s, APSCHED_LOG_ERROR,
                   "Error counting failed runs in job store \"%s\": %s (the counts of "
                   "pause_after_failures miss them)",
                   se->alias, apsched_strerror(rc));
    apsched__notices_flush(s, &nl);
    apsched__lock(s);
  }
  size_t n = se->closed_count;
  if (n == 0) return;
  int rc = apsched__runs_flush(s, se);
  if (rc != APSCHED_OK) {
    const char *why = apsched__take_plugin_error();
    apsched__log(s, APSCHED_LOG_ERROR,
                 "Error recording %zu ended run(s) in job store \"%s\": %s%s%s (their records "
                 "stay open)",
                 n, se->alias, apsched_strerror(rc), why[0] ? ": " : "", why);
    apsched__runs_drop(se);
  }
}

/* flush_ended_runs for every store. Lock held. */
static void flush_all_ended_runs(apsched_scheduler *s) {
restart:;
  unsigned gen = s->stores_gen;
  for (store_entry *se = s->stores; se; se = se->next) {
    flush_ended_runs(s, se);
    if (s->stores_gen != gen) goto restart;
  }
}

static void link_store(apsched_scheduler *s, store_entry *e) {
  store_entry **tail = &s->stores;
  while (*tail) tail = &(*tail)->next;
  *tail = e;
  s->stores_gen++;
}

static void unlink_store(apsched_scheduler *s, store_entry *e) {
  store_entry **pp = &s->stores;
  while (*pp != e) pp = &(*pp)->next;
  *pp = e->next;
  s->stores_gen++;
}

static void link_executor(apsched_scheduler *s, executor_entry *e) {
  executor_entry **tail = &s->executors;
  while (*tail) tail = &(*tail)->next;
  *tail = e;
}

static void unlink_executor(apsched_scheduler *s, executor_entry *e) {
  executor_entry **pp = &s->executors;
  while (*pp != e) pp = &(*pp)->next;
  *pp = e->next;
}

static int start_executor(apsched_scheduler *s, executor_entry *e) {
  if (e->started) return APSCHED_OK;
  int rc = e->executor->vtable->start(e->executor, s, e->alias);
  if (rc == APSCHED_OK) e->started = true;
  return rc;
}

/* What a start did so far, to undo it if a later step fails. */
typedef struct start_undo {
  store_entry *default_store;
  executor_entry *default_executor;
  executor_entry *started; /* chained through stop_next */
} start_undo;

/* Creates the default store and executor when missing (announced only
 * once the start succeeds). Lock held. */
static int add_defaults(apsched_scheduler *s, start_undo *u) {
  const char *name = apsched__intern(s, "default");
  if (!name) return APSCHED_ENOMEM;
  if (!apsched__find_store(s, name)) {
    apsched_jobstore *st;
    int rc = apsched_memory_store_create(&st);
    if (rc != APSCHED_OK) return rc;
    store_entry *e = new_store_entry(s, st);
    if (!e) {
      st->vtable->destroy(st);
      return APSCHED_ENOMEM;
    }
    e->alias = name;
    link_store(s, e);
    u->default_store = e;
  }
  if (!apsched__find_executor(s, name)) {
    apsched_executor *ex;
    int rc = apsched_thread_pool_create(NULL, &ex);
    if (rc != APSCHED_OK) return rc;
    executor_entry *e = apsched__alloc(s, sizeof *e);
    if (!e) {
      ex->vtable->destroy(ex);
      return APSCHED_ENOMEM;
    }
    *e = (executor_entry){.alias = name, .executor = ex};
    link_executor(s, e);
    u->default_executor = e;
  }
  return APSCHED_OK;
}

/* Undoes a failed start. Lock held (dropped while executors stop). */
static void undo_start(apsched_scheduler *s, start_undo *u) {
  for (store_entry *se = s->stores; se; se = se->next) stop_store_thread(s, se, false);
  join_store_threads(s);
  executor_entry *stop = u->started;
  for (executor_entry *e = stop; e; e = e->stop_next) {
    e->started = false;
    e->submitting++; /* keeps remove_executor from freeing it meanwhile */
  }
  apsched__unlock(s);
  for (executor_entry *e = stop; e; e = e->stop_next) e->executor->vtable->shutdown(e->executor, true);
  apsched__lock(s);
  for (executor_entry *e = stop; e; e = e->stop_next) e->submitting--;
  pthread_cond_broadcast(&s->changed);
  if (u->default_executor) {
    executor_entry *e = u->default_executor;
    unlink_executor(s, e);
    apsched__unlock(s);
    e->executor->vtable->destroy(e->executor);
    apsched__lock(s);
    apsched__dealloc(s, e);
  }
  if (u->default_store) {
    store_entry *e = u->default_store;
    unlink_store(s, e);
    e->store->vtable->destroy(e->store); /* a memory store: nothing that blocks */
    apsched__store_entry_free(s, e);
  }
}

/* Common start: checks state, adds defaults, starts executors and store
 * threads, commits pending jobs, switches state; a step that fails undoes
 * the ones before it. Lock held on entry and exit. */
static int start_common(apsched_scheduler *s, bool paused, loop_mode mode, notice_list *nl,
                        start_undo *u) {
  if (s->starting || s->stopping)
    return apsched__error(APSCHED_ESTATE, "start: a %s is in progress on another thread",
                          s->starting ? "start" : "shutdown");
  if (s->state != APSCHED_STATE_STOPPED)
    return apsched__error(APSCHED_ESTATE, "start: the scheduler is already running");
  if (apsched__in_user_code(s))
    return apsched__error(APSCHED_ESTATE, "start: called from the scheduler's own job or listener");
  /* Threads of the previous run go first (a listener of theirs may still
   * call into the scheduler); joining drops the lock, so look again. */
  join_old_thread(s);
  join_store_threads(s);
  if (s->starting || s->stopping || s->state != APSCHED_STATE_STOPPED)
    return apsched__error(APSCHED_ESTATE, "start: a %s is in progress on another thread",
                          s->stopping ? "shutdown" : "start");
  /* From here other starts are refused, and job calls wait for the outcome
   * (the pending jobs are being moved, maybe with the lock dropped). */
  s->starting = true;
  int rc = APSCHED_OK;
  if (s->loop_running) rc = apsched__error(APSCHED_ESTATE, "start: the previous loop has not returned yet");
  if (rc == APSCHED_OK) rc = add_defaults(s, u);
  if (rc == APSCHED_OK) rc = apsched__check_pending(s);
  for (executor_entry *e = s->executors; e && rc == APSCHED_OK; e = e->next) {
    if (e->started) continue;
    rc = start_executor(s, e);
    if (rc == APSCHED_OK) {
      e->stop_next = u->started;
      u->started = e;
    } else {
      /* The executor may have said why (apsched_last_error); keep that message. */
      apsched__log_later(s, nl, APSCHED_LOG_ERROR, "Executor \"%s\" failed to start: %s (%s)",
                         e->alias, apsched_strerror(rc), apsched_last_error());
    }
  }
  for (store_entry *se = s->stores; se && rc == APSCHED_OK; se = se->next)
    rc = start_store_thread(se);
  if (rc == APSCHED_OK) rc = apsched__commit_pending(s, nl);
  if (rc != APSCHED_OK) {
    undo_start(s, u);
    s->starting = false;
    pthread_cond_broadcast(&s->changed);
    return rc;
  }
  s->state = paused ? APSCHED_STATE_PAUSED : APSCHED_STATE_RUNNING;
  s->mode = mode;
  s->loop_stop = false;
  s->waker.wakeup_pending = false;
  s->clock_seen = false;
  s->waker.planned_wake = APSCHED_TIME_NONE;
  apsched__wake_all(s); /* store threads begin their first pass */
  s->starting = false;
  pthread_cond_broadcast(&s->changed);
  apsched__log_later(s, nl, APSCHED_LOG_INFO, "Scheduler started");
  return APSCHED_OK;
}

/* After a successful start: the defaults it added, then STARTED. */
static void announce_start(apsched_scheduler *s, const start_undo *u) {
  if (u->default_store) {
    apsched__log(s, APSCHED_LOG_INFO, "Added job store \"%s\"", u->default_store->alias);
    emit(s, APSCHED_EVENT_JOBSTORE_ADDED, "default");
  }
  if (u->default_executor) {
    apsched__log(s, APSCHED_LOG_INFO, "Added executor \"%s\"", "default");
    emit(s, APSCHED_EVENT_EXECUTOR_ADDED, "default");
  }
  emit(s, APSCHED_EVENT_SCHEDULER_STARTED, NULL);
}

int apsched_start(apsched_scheduler *s, bool paused) {
  if (!s) return apsched__error(APSCHED_EINVAL, "start: scheduler is NULL");
  notice_list nl;
  apsched__notices_init(&nl);
  start_undo u = {0};
  apsched__lock(s);
  int rc = start_common(s, paused, MODE_THREAD, &nl, &u);
  if (rc == APSCHED_OK) {
    if (pthread_create(&s->thread, NULL, loop_thread, s) != 0) {
      s->state = APSCHED_STATE_STOPPED;
      undo_start(s, &u);
      rc = apsched__error(APSCHED_ESYS, "start: cannot create the loop thread");
    } else {
      s->thread_joinable = true;
    }
  }
  apsched__unlock(s);
  if (rc == APSCHED_OK) {
    apsched__notices_flush(s, &nl);
    announce_start(s, &u);
  } else {
    apsched__notices_flush(s, &nl); /* only log lines saying why */
  }
  return rc;
}

int apsched_run(apsched_scheduler *s, bool paused) {
  if (!s) return apsched__error(APSCHED_EINVAL, "run: scheduler is NULL");
  notice_list nl;
  apsched__notices_init(&nl);
  start_undo u = {0};
  apsched__lock(s);
  int rc = start_common(s, paused, MODE_BLOCKING, &nl, &u);
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  if (rc != APSCHED_OK) return rc;
  announce_start(s, &u);
  unsigned long slack = tighten_timer_slack(); /* the caller's thread: put it back after */
  run_loop(s);
  restore_timer_slack(slack);
  return APSCHED_OK;
}

int apsched_start_hosted(apsched_scheduler *s, bool paused) {
  if (!s) return apsched__error(APSCHED_EINVAL, "start_hosted: scheduler is NULL");
  notice_list nl;
  apsched__notices_init(&nl);
  start_undo u = {0};
  apsched__lock(s);
  int rc = APSCHED_OK;
  bool new_fd = false;
  if (s->event_fd < 0 && !s->starting && !s->stopping && s->state == APSCHED_STATE_STOPPED) {
    s->event_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->event_fd < 0) rc = apsched__error(APSCHED_ESYS, "start_hosted: timerfd_create failed");
    new_fd = rc == APSCHED_OK;
  }
  if (rc == APSCHED_OK) rc = start_common(s, paused, MODE_HOSTED, &nl, &u);
  if (rc != APSCHED_OK && new_fd) {
    close(s->event_fd);
    s->event_fd = -1;
  }
  /* Readable at once: the host's first call schedules everything. */
  if (rc == APSCHED_OK) apsched__wake(s, &s->waker);
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  if (rc == APSCHED_OK) announce_start(s, &u);
  return rc;
}

int apsched_fd(apsched_scheduler *s) {
  if (!s) return -1;
  apsched__lock(s);
  int fd = s->mode == MODE_HOSTED ? s->event_fd : -1;
  apsched__unlock(s);
  return fd;
}

int apsched_process(apsched_scheduler *s, int64_t *wait_us) {
  if (!s) return apsched__error(APSCHED_EINVAL, "process: scheduler is NULL");
  apsched__lock(s);
  int rc = APSCHED_OK;
  /* Once stopped, it still hands host listeners what is queued for them
   * (SCHEDULER_SHUTDOWN, outcomes of runs that ended on other threads). */
  bool deliver_only = false;
  if (s->mode != MODE_HOSTED || s->state == APSCHED_STATE_STOPPED) {
    if (s->mode == MODE_HOSTED && apsched__events_queued(s)) deliver_only = true;
    else rc = apsched__error(APSCHED_ESTATE, "process: the scheduler is not running in hosted mode");
  }
  if (rc == APSCHED_OK && !deliver_only) {
    uint64_t drained;
    if (read(s->event_fd, &drained, sizeof drained) < 0 && errno != EAGAIN) {
    }
    s->waker.wakeup_pending = false;
  }
  apsched__unlock(s);
  if (rc != APSCHED_OK) return rc;
  apsched_scheduler *saved = apsched__enter_host(s);
  apsched__deliver_queued(s);
  if (deliver_only) {
    apsched__leave_host(saved);
    if (wait_us) *wait_us = -1;
    return APSCHED_OK;
  }
  apsched_time_t next = process_once(s);
  apsched__leave_host(saved);
  apsched__lock(s);
  int64_t d;
  if (s->state != APSCHED_STATE_RUNNING || next == APSCHED_TIME_NONE) d = -1;
  else d = wait_for(s, next);
  /* A change during this call (wakeup_pending) keeps the descriptor readable. */
  arm_host_timer(s, s->waker.wakeup_pending || s->state == APSCHED_STATE_STOPPED ? 0 : d);
  apsched__unlock(s);
  if (wait_us) *wait_us = d;
  return APSCHED_OK;
}

/* True if the calling thread is a worker of one of s's executors. Lock held. */
static bool on_executor_thread(apsched_scheduler *s) {
  for (executor_entry *e = s->executors; e; e = e->next)
    if (e->executor->vtable->owns_thread && e->executor->vtable->owns_thread(e->executor))
      return true;
  return false;
}

/* True if the calling thread is one of s's loops (a listener or inline job). Lock held. */
static bool on_loop_thread(apsched_scheduler *s) {
  if (s->thread_joinable && pthread_equal(s->thread, pthread_self())) return true;
  for (store_entry *se = s->stores; se; se = se->next)
    if (se->thread_joinable && pthread_equal(se->thread, pthread_self())) return true;
  return false;
}

int apsched_shutdown(apsched_scheduler *s, bool wait) {
  if (!s) return apsched__error(APSCHED_EINVAL, "shutdown: scheduler is NULL");
  apsched__lock(s);
  if (s->state == APSCHED_STATE_STOPPED || s->stopping) {
    apsched__unlock(s);
    return apsched__error(APSCHED_ESTATE, "shutdown: the scheduler is not running");
  }
  bool self = apsched__in_user_code(s) || on_executor_thread(s) || on_loop_thread(s);
  if (wait && self) {
    apsched__unlock(s);
    return apsched__error(APSCHED_EDEADLK,
                          "shutdown: wait=true from the scheduler's own job or listener would "
                          "wait for itself; use wait=false");
  }
  /* Until this call returns, a start on another thread is refused: it would
   * restart the executors and loops this call is stopping. */
  s->stopping = true;
  s->state = APSCHED_STATE_STOPPED;
  s->loop_stop = true;
  s->waker.planned_wake = APSCHED_TIME_NONE;
  for (store_entry *se = s->stores; se; se = se->next) stop_store_thread(s, se, false);
  apsched__wake_all(s);
  if (wait) {
    /* The loops first: one in the middle of a batch has stored its runs'
     * next run times and must still hand them to running executors. */
    join_old_thread(s);
    while (s->loop_running) pthread_cond_wait(&s->changed, &s->lock);
    join_store_threads(s);
  }
  /* Executors stop outside the lock: a waiting shutdown lets jobs finish,
   * and those jobs may call back into the scheduler. The list is chained
   * through the entries themselves, so this cannot fail for lack of memory. */
  executor_entry *stop = NULL;
  for (executor_entry *e = s->executors; e; e = e->next) {
    if (!e->started) continue;
    e->started = false;
    e->submitting++; /* keeps remove_executor from freeing it meanwhile */
    e->stop_next = stop;
    stop = e;
  }
  apsched__unlock(s);
  for (executor_entry *e = stop; e; e = e->stop_next) e->executor->vtable->shutdown(e->executor, wait);
  apsched__lock(s);
  for (executor_entry *e = stop; e; e = e->stop_next) e->submitting--;
  pthread_cond_broadcast(&s->changed);
  /* The loops are gone: what ended goes to the stores now. */
  flush_all_ended_runs(s);
  s->stopping = false;
  apsched__unlock(s);
  apsched__log(s, APSCHED_LOG_INFO, "Scheduler has been shut down");
  emit(s, APSCHED_EVENT_SCHEDULER_SHUTDOWN, NULL);
  return APSCHED_OK;
}

static int set_paused(apsched_scheduler *s, bool pause) {
  if (!s) return apsched__error(APSCHED_EINVAL, "%s: scheduler is NULL", pause ? "pause" : "resume");
  apsched__lock(s);
  apsched_state from = pause ? APSCHED_STATE_RUNNING : APSCHED_STATE_PAUSED;
  int rc = s->state == from ? APSCHED_OK
                            : apsched__error(APSCHED_ESTATE, "%s: the scheduler is not %s",
                                             pause ? "pause" : "resume", pause ? "running" : "paused");
  if (rc == APSCHED_OK) {
    s->state = pause ? APSCHED_STATE_PAUSED : APSCHED_STATE_RUNNING;
    apsched__wake_all(s);
  }
  apsched__unlock(s);
  if (rc == APSCHED_OK) {
    apsched__log(s, APSCHED_LOG_INFO, pause ? "Paused scheduler job processing"
                                            : "Resumed scheduler job processing");
    emit(s, pause ? APSCHED_EVENT_SCHEDULER_PAUSED : APSCHED_EVENT_SCHEDULER_RESUMED, NULL);
  }
  return rc;
}

int apsched_pause(apsched_scheduler *s) { return set_paused(s, true); }
int apsched_resume(apsched_scheduler *s) { return set_paused(s, false); }

/* --------------------------------------------------- stores and executors */

void apsched_jobstore_free(apsched_jobstore *st) {
  if (st) st->vtable->destroy(st);
}

void apsched_executor_free(apsched_executor *ex) {
  if (ex) ex->vtable->destroy(ex);
}

static bool store_vtable_ok(const apsched_jobstore *st) {
  const apsched_jobstore_vtable *v = st->vtable;
  /* Versions 2 and 3 lack the calls at the end: never read there. */
  return v && v->version >= 2 && v->version <= APSCHED_JOBSTORE_VTABLE_VERSION && v->add && v->lookup && v->update &&
         v->remove && v->remove_all && v->next_run_time && v->claim_due && v->release &&
         v->foreach && v->destroy;
}

static bool executor_vtable_ok(const apsched_executor *ex) {
  const apsched_executor_vtable *v = ex->vtable;
  return v && (v->version == 1 || v->version == APSCHED_EXECUTOR_VTABLE_VERSION) && v->start &&
         v->submit && v->shutdown && v->destroy;
}

static bool valid_component_alias(const char *alias) {
  if (!alias || !*alias || strlen(alias) >= 128) return false;
  for (const unsigned char *p = (const unsigned char *)alias; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return false;
  return true;
}

/* Why a component cannot be added, for apsched_last_error. */
static int bad_component(const char *what, apsched_scheduler *s, const char *alias, int version) {
  if (!s) return apsched__error(APSCHED_EINVAL, "%s: scheduler is NULL", what);
  if (!valid_component_alias(alias))
    return apsched__error(APSCHED_EINVAL,
                          "%s: alias '%.64s' must be 1..127 bytes without control characters",
                          what, alias ? alias : "(null)");
  return apsched__error(APSCHED_EINVAL,
                        "%s: unknown vtable version or missing entries (this library knows version %d)",
                        what, version);
}

int apsched_add_jobstore(apsched_scheduler *s, apsched_jobstore *st, const char *alias) {
  if (!st) return apsched__error(APSCHED_EINVAL, "add_jobstore: store is NULL");
  if (!s || !valid_component_alias(alias) || !store_vtable_ok(st)) {
    int rc = bad_component("add_jobstore", s, alias, APSCHED_JOBSTORE_VTABLE_VERSION);
    if (st->vtable && st->vtable->destroy) st->vtable->destroy(st);
    return rc;
  }
  store_entry *e = new_store_entry(s, st);
  apsched__lock(s);
  int rc = APSCHED_OK;
  const char *name = e ? apsched__intern(s, alias) : NULL;
  if (!e || !name) rc = APSCHED_ENOMEM;
  else if (apsched__find_store(s, alias))
    rc = apsched__error(APSCHED_EEXIST, "add_jobstore: alias '%.64s' is taken", alias);
  if (rc == APSCHED_OK && st->vtable->open) {
    /* A blocking store may connect here: without the lock. */
    if (e->blocking) apsched__unlock(s);
    int orc = st->vtable->open(st, s, name);
    if (e->blocking) apsched__lock(s);
    if (orc != APSCHED_OK) {
      const char *why = apsched__take_plugin_error();
      rc = apsched__error(orc < 0 ? orc : APSCHED_EBACKEND, "add_jobstore: store '%s' failed to open: %s",
                          alias, why[0] ? why : apsched_strerror(orc < 0 ? orc : APSCHED_EBACKEND));
    }
    else if (apsched__find_store(s, alias))
      rc = apsched__error(APSCHED_EEXIST, "add_jobstore: alias '%.64s' is taken", alias);
  }
  if (rc == APSCHED_OK) {
    e->alias = name;
    if (s->state != APSCHED_STATE_STOPPED) rc = start_store_thread(e);
  }
  if (rc == APSCHED_OK) {
    link_store(s, e);
    /* Its jobs may be due already. */
    apsched_time_t t;
    if (e->blocking) apsched__wake(s, &e->waker);
    else if (st->vtable->next_run_time(st, &t) == APSCHED_OK) apsched__wake_if_earlier(s, e, t);
  }
  apsched__unlock(s);
  if (rc != APSCHED_OK) {
    if (e) apsched__store_entry_free(s, e);
    if (st->vtable->close && rc != APSCHED_ENOMEM && rc != APSCHED_EEXIST) st->vtable->close(st);
    st->vtable->destroy(st);
    return rc;
  }
  apsched__log(s, APSCHED_LOG_INFO, "Added job store \"%s\"", name);
  emit(s, APSCHED_EVENT_JOBSTORE_ADDED, name);
  return APSCHED_OK;
}

int apsched_remove_jobstore(apsched_scheduler *s, const char *alias) {
  if (!s || !alias)
    return apsched__error(APSCHED_EINVAL, "remove_jobstore: %s is NULL", !s ? "scheduler" : "alias");
  apsched__lock(s);
  store_entry *e = apsched__find_store(s, alias);
  if (!e) {
    apsched__unlock(s);
    return apsched__error(APSCHED_ENOENT, "remove_jobstore: no job store '%.64s'", alias);
  }
  const char *name = e->alias;
  unlink_store(s, e);
  e->removed = true;
  e->next = s->removed_stores;
  s->removed_stores = e;
  /* Calls in progress (pins) finish first; the last one frees it. */
  apsched__store_pin(e);
  stop_store_thread(s, e, true);
  flush_ended_runs(s, e);
  apsched__store_unpin(s, e);
  apsched__unlock(s);
  apsched__log(s, APSCHED_LOG_INFO, "Removed job store \"%s\"", name);
  emit(s, APSCHED_EVENT_JOBSTORE_REMOVED, name);
  return APSCHED_OK;
}

int apsched_add_executor(apsched_scheduler *s, apsched_executor *ex, const char *alias) {
  if (!ex) return apsched__error(APSCHED_EINVAL, "add_executor: executor is NULL");
  if (!s || !valid_component_alias(alias) || !executor_vtable_ok(ex)) {
    int rc = bad_component("add_executor", s, alias, APSCHED_EXECUTOR_VTABLE_VERSION);
    if (ex->vtable && ex->vtable->destroy) ex->vtable->destroy(ex);
    return rc;
  }
  executor_entry *e = apsched__alloc(s, sizeof *e);
  apsched__lock(s);
  int rc = APSCHED_OK;
  const char *name = e ? apsched__intern(s, alias) : NULL;
  if (!e || !name) rc = APSCHED_ENOMEM;
  else if (apsched__find_executor(s, alias))
    rc = apsched__error(APSCHED_EEXIST, "add_executor: alias '%.64s' is taken", alias);
  if (rc == APSCHED_OK) {
    *e = (executor_entry){.alias = name, .executor = ex};
    if (s->state != APSCHED_STATE_STOPPED) rc = start_executor(s, e);
  }
  if (rc == APSCHED_OK) link_executor(s, e);
  apsched__unlock(s);
  if (rc != APSCHED_OK) {
    apsched__dealloc(s, e);
    ex->vtable->destroy(ex);
    return rc;
  }
  apsched__log(s, APSCHED_LOG_INFO, "Added executor \"%s\"", name);
  emit(s, APSCHED_EVENT_EXECUTOR_ADDED, name);
  return APSCHED_OK;
}

int apsched_remove_executor(apsched_scheduler *s, const char *alias) {
  if (!s || !alias)
    return apsched__error(APSCHED_EINVAL, "remove_executor: %s is NULL", !s ? "scheduler" : "alias");
  apsched__lock(s);
  executor_entry *e = apsched__find_executor(s, alias);
  if (!e) {
    apsched__unlock(s);
    return apsched__error(APSCHED_ENOENT, "remove_executor: no executor '%.64s'", alias);
  }
  unlink_executor(s, e);
  apsched_executor *ex = e->executor;
  bool own = (ex->vtable->owns_thread && ex->vtable->owns_thread(ex)) || apsched__in_user_code(s);
  bool was_started = e->started;
  e->started = false;
  apsched__unlock(s);
  /* Let its runs finish unless we are one of them (that would wait forever). */
  if (was_started) ex->vtable->shutdown(ex, !own);
  apsched__lock(s);
  /* A run may be in the middle of being handed to it, or we run on one of
   * its threads: then it is destroyed when the scheduler is freed. */
  bool retire = own || e->submitting > 0;
  if (retire) {
    e->next = s->retired_executors;
    s->retired_executors = e;
  }
  apsched__unlock(s);
  const char *name = e->alias;
  if (!retire) {
    ex->vtable->destroy(ex);
    apsched__dealloc(s, e);
  }
  apsched__log(s, APSCHED_LOG_INFO, "Removed executor \"%s\"", name);
  emit(s, APSCHED_EVENT_EXECUTOR_REMOVED, name);
  return APSCHED_OK;
}

/* ------------------------------------------------------------------ free */

static void destroy_executors(apsched_scheduler *s, executor_entry *e) {
  while (e) {
    executor_entry *next = e->next;
    e->executor->vtable->shutdown(e->executor, false);
    e->executor->vtable->destroy(e->executor); /* joins its threads */
    apsched__dealloc(s, e);
    e = next;
  }
}

void apsched_free(apsched_scheduler *s) {
  if (!s) return;
  /* Freeing from inside its own job or listener cannot work: refuse quietly. */
  if (apsched__in_user_code(s)) return;
  if (apsched_get_state(s) != APSCHED_STATE_STOPPED) apsched_shutdown(s, false);
  apsched__lock(s);
  while (s->starting || s->stopping) pthread_cond_wait(&s->changed, &s->lock);
  join_old_thread(s);
  for (store_entry *se = s->stores; se; se = se->next) stop_store_thread(s, se, false);
  join_store_threads(s);
  while (s->loop_running || s->listener_calls > 0) pthread_cond_wait(&s->changed, &s->lock);
  executor_entry *executors = s->executors, *retired = s->retired_executors;
  s->executors = s->retired_executors = NULL;
  apsched__unlock(s);
  destroy_executors(s, executors);
  destroy_executors(s, retired);
  apsched__lock(s);
  /* Runs of custom executors may still be finishing: they use s. Removed
   * stores go when their last pin does. */
  while (s->running_runs > 0 || s->listener_calls > 0 || s->removed_stores)
    pthread_cond_wait(&s->changed, &s->lock);
  apsched__endings_wait_leavers(s);
  /* Events still queued for host listeners (runs that ended after the host
   * stopped calling apsched_process) are delivered here: none is lost. */
  if (apsched__events_queued(s)) {
    apsched__unlock(s);
    apsched__deliver_queued(s);
    apsched__lock(s);
    while (s->listener_calls > 0 || s->removed_stores) pthread_cond_wait(&s->changed, &s->lock);
  }
  flush_all_ended_runs(s);
  apsched__unlock(s);
  for (store_entry *e = s->stores, *next; e; e = next) {
    next = e->next;
    if (e->store->vtable->close) e->store->vtable->close(e->store);
    e->store->vtable->destroy(e->store);
    apsched__store_entry_free(s, e);
  }
  apsched__free_pending(s);
  for (listener *l = s->listeners, *next; l; l = next) {
    next = l->next;
    apsched__dealloc(s, l);
  }
  for (interned *i = s->aliases, *next; i; i = next) {
    next = i->next;
    apsched__dealloc(s, i);
  }
  apsched__strmap_free(&s->instances);
  apsched__block_cache_free(s, &s->instance_blocks);
  apsched__block_cache_free(s, &s->run_blocks);
  apsched__dealloc(s, atomic_load(&s->spare_notices));
  if (s->event_fd >= 0) close(s->event_fd);
  apsched_tz_free(s->tz);
  apsched__drop_reports(s);
  apsched__waker_destroy(&s->waker);
  pthread_cond_destroy(&s->changed);
  pthread_mutex_destroy(&s->aux_lock);
  pthread_mutex_destroy(&s->lock);
  s->alloc.free(s, s->alloc.user_data);
}
