/* The scheduler: creation, lifecycle (start / run / hosted / shutdown /
 * pause), job stores and executors, and the loop that wakes on the earliest
 * next run time, claims due jobs and hands their runs to executors. */
#include "scheduler_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* Due jobs claimed from one store per pass; more are taken on the next pass. */
#define CLAIM_BATCH 256
/* A wall-clock move this much beyond the monotonic clock is a step. */
#define CLOCK_STEP_THRESHOLD (1 * APSCHED_SEC)

/* ------------------------------------------------------------ allocation */

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

void *apsched__alloc(apsched_scheduler *s, size_t n) { return s->alloc.malloc(n, s->alloc.user_data); }

void apsched__dealloc(apsched_scheduler *s, void *p) {
  if (p) s->alloc.free(p, s->alloc.user_data);
}

char *apsched__sdup(apsched_scheduler *s, const char *text) {
  if (!text) return NULL;
  size_t n = strlen(text) + 1;
  char *d = apsched__alloc(s, n);
  if (d) memcpy(d, text, n);
  return d;
}

const char *apsched__intern(apsched_scheduler *s, const char *text) {
  for (interned *i = s->aliases; i; i = i->next)
    if (strcmp(i->text, text) == 0) return i->text;
  size_t n = strlen(text) + 1;
  interned *i = apsched__alloc(s, sizeof *i + n);
  if (!i) return NULL;
  memcpy(i->text, text, n);
  i->next = s->aliases;
  s->aliases = i;
  return i->text;
}

/* ---------------------------------------------------------------- create */

int apsched_create(const apsched_config *cfg, apsched_scheduler **out) {
  static const apsched_config defaults = {0};
  if (!out) return APSCHED_EINVAL;
  if (!cfg) cfg = &defaults;
  if (cfg->max_instances < 0 || cfg->max_instances > APSCHED_MAX_INSTANCES_LIMIT ||
      cfg->misfire_grace_time < 0 ||
      (cfg->misfire_grace_time > APSCHED_DURATION_MAX &&
       cfg->misfire_grace_time != APSCHED_GRACE_UNLIMITED) ||
      cfg->max_wait < 0 ||
      (cfg->coalesce != APSCHED_DEFAULT && cfg->coalesce != APSCHED_YES &&
       cfg->coalesce != APSCHED_NO) ||
      (cfg->clock && !cfg->clock->wall) ||
      (cfg->allocator && (!cfg->allocator->malloc || !cfg->allocator->free)))
    return apsched__error(APSCHED_EINVAL,
                          "config: max_instances 0..%d, misfire_grace_time and max_wait >= 0, "
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
    return APSCHED_ENOMEM;
  }
  memset(s, 0, sizeof *s);
  s->alloc = alloc;
  s->tz = tz;
  if (cfg->clock) s->clock = *cfg->clock;
  s->log = cfg->log;
  s->log_user_data = cfg->log_user_data;
  s->log_level = cfg->log_level ? cfg->log_level : APSCHED_LOG_WARNING;
  s->max_wait = cfg->max_wait ? cfg->max_wait : APSCHED_SEC;
  s->default_max_instances = cfg->max_instances ? cfg->max_instances : 1;
  s->default_grace = cfg->misfire_grace_time ? cfg->misfire_grace_time : APSCHED_SEC;
  s->default_coalesce = cfg->coalesce != APSCHED_NO;
  s->state = APSCHED_STATE_STOPPED;
  s->planned_wake = APSCHED_TIME_NONE;
  s->event_fd = -1;
  atomic_init(&s->listener_mask, 0);

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int err = pthread_mutex_init(&s->lock, NULL);
  if (!err && (err = pthread_cond_init(&s->wake, &ca)) != 0) pthread_mutex_destroy(&s->lock);
  if (!err && (err = pthread_cond_init(&s->changed, NULL)) != 0) {
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
  }
  pthread_condattr_destroy(&ca);
  if (err) {
    apsched_tz_free(tz);
    alloc.free(s, alloc.user_data);
    return APSCHED_ESYS;
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

/* ------------------------------------------------------------------ wake */

/* Hosted mode's descriptor is a timerfd: armed for the next due time, so it
 * becomes readable exactly when work is due, or armed in the past (readable
 * at once) when something changed. delay_us < 0 disarms it. Lock held. */
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

void apsched__wake_locked(apsched_scheduler *s) {
  s->wakeup_pending = true;
  pthread_cond_signal(&s->wake);
  arm_host_timer(s, 0);
}

void apsched__wake_if_earlier(apsched_scheduler *s, apsched_time_t t) {
  if (s->state != APSCHED_STATE_RUNNING || t == APSCHED_TIME_NONE) return;
  if (s->planned_wake != APSCHED_TIME_NONE && t >= s->planned_wake) return;
  s->planned_wake = t;
  apsched__wake_locked(s);
}

int apsched_wakeup(apsched_scheduler *s) {
  if (!s) return APSCHED_EINVAL;
  apsched__lock(s);
  int rc = s->state == APSCHED_STATE_STOPPED ? APSCHED_ESTATE : APSCHED_OK;
  if (rc == APSCHED_OK) apsched__wake_locked(s);
  apsched__unlock(s);
  return rc;
}

/* ------------------------------------------------------------------ loop */

/* Reports a wall-clock step: the wall clock moved differently from the
 * monotonic clock since the last look. Lock held. */
static void check_clock(apsched_scheduler *s, apsched_time_t wall, notice_list *nl) {
  if (!s->clock.monotonic && s->clock.wall) return; /* a fake clock without a monotonic twin */
  int64_t mono = s->clock.monotonic ? s->clock.monotonic(s->clock.user_data) : apsched__mono_now();
  if (s->clock_seen) {
    int64_t step = (wall - s->last_wall) - (mono - s->last_mono);
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

/* One pass: claim due jobs from every store and hand their runs over.
 * Returns the wall time of the next due job (NONE: nothing scheduled;
 * <= now: call again at once). Lock not held. */
static apsched_time_t process_once(apsched_scheduler *s) {
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  apsched_time_t now = apsched__wall(s);
  check_clock(s, now, &nl);
  apsched_time_t next = APSCHED_TIME_NONE;
  if (s->state == APSCHED_STATE_RUNNING) {
    apsched_job_record *due[CLAIM_BATCH];
    bool more = false;
    for (store_entry *se = s->stores; se; se = se->next) {
      int n = se->store->vtable->claim_due(se->store, now, due, CLAIM_BATCH);
      if (n < 0) {
        apsched__log_later(s, &nl, APSCHED_LOG_WARNING,
                            "Error getting due jobs from job store \"%s\": %s", se->alias,
                            apsched_strerror(n));
        continue;
      }
      for (int i = 0; i < n; i++) apsched__process_claimed(s, se, due[i], now, &nl);
      if (n == CLAIM_BATCH) more = true;
    }
    if (more) {
      next = now;
    } else {
      for (store_entry *se = s->stores; se; se = se->next) {
        apsched_time_t t = se->store->vtable->next_run_time(se->store);
        if (t != APSCHED_TIME_NONE && (next == APSCHED_TIME_NONE || t < next)) next = t;
      }
    }
    s->planned_wake = next;
  }
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  return next;
}

/* How long to sleep until next, capped so clock steps are seen. */
static int64_t wait_for(apsched_scheduler *s, apsched_time_t next) {
  if (next == APSCHED_TIME_NONE) return s->max_wait;
  int64_t d = next - apsched__wall(s);
  if (d < 0) return 0;
  return d < s->max_wait ? d : s->max_wait;
}

static void run_loop(apsched_scheduler *s) {
  apsched__lock(s);
  s->loop_running = true;
  while (s->state != APSCHED_STATE_STOPPED) {
    s->wakeup_pending = false;
    apsched__unlock(s);
    apsched_time_t next = process_once(s);
    apsched__lock(s);
    if (s->state == APSCHED_STATE_STOPPED) break;
    if (s->wakeup_pending) continue;
    int64_t d = wait_for(s, s->state == APSCHED_STATE_PAUSED ? APSCHED_TIME_NONE : next);
    if (d <= 0) continue;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + (d % APSCHED_SEC) * 1000;
    ts.tv_sec += (time_t)(d / APSCHED_SEC + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    while (!s->wakeup_pending && s->state != APSCHED_STATE_STOPPED) {
      if (pthread_cond_timedwait(&s->wake, &s->lock, &ts) == ETIMEDOUT) break;
    }
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

static int add_default_components(apsched_scheduler *s) {
  if (!apsched__find_store(s, "default")) {
    apsched_jobstore *st;
    int rc = apsched_memory_store_create(&st);
    if (rc != APSCHED_OK) return rc;
    apsched__unlock(s);
    rc = apsched_add_jobstore(s, st, "default");
    apsched__lock(s);
    if (rc != APSCHED_OK && rc != APSCHED_EEXIST) return rc;
  }
  if (!apsched__find_executor(s, "default")) {
    apsched_executor *ex;
    int rc = apsched_thread_pool_create(NULL, &ex);
    if (rc != APSCHED_OK) return rc;
    apsched__unlock(s);
    rc = apsched_add_executor(s, ex, "default");
    apsched__lock(s);
    if (rc != APSCHED_OK && rc != APSCHED_EEXIST) return rc;
  }
  return APSCHED_OK;
}

static int start_executor(apsched_scheduler *s, executor_entry *e) {
  if (e->started) return APSCHED_OK;
  int rc = e->executor->vtable->start(e->executor, s, e->alias);
  if (rc == APSCHED_OK) e->started = true;
  return rc;
}

/* Common start: checks state, adds defaults, starts executors, commits
 * pending jobs, switches state. Lock held on entry and exit. */
static int start_common(apsched_scheduler *s, bool paused, loop_mode mode, notice_list *nl) {
  if (s->state != APSCHED_STATE_STOPPED)
    return apsched__error(APSCHED_ESTATE, "start: the scheduler is already running");
  if (apsched__in_user_code(s))
    return apsched__error(APSCHED_ESTATE, "start: called from the scheduler's own job or listener");
  join_old_thread(s);
  if (s->state != APSCHED_STATE_STOPPED || s->loop_running) return APSCHED_ESTATE;
  int rc = add_default_components(s);
  if (rc != APSCHED_OK) return rc;
  for (executor_entry *e = s->executors; e; e = e->next) {
    rc = start_executor(s, e);
    if (rc != APSCHED_OK) {
      /* The executor may have said why (apsched_last_error); keep that message. */
      apsched__log_later(s, nl, APSCHED_LOG_ERROR, "Executor \"%s\" failed to start: %s (%s)",
                         e->alias, apsched_strerror(rc), apsched_last_error());
      return rc;
    }
  }
  apsched__commit_pending(s, nl);
  s->state = paused ? APSCHED_STATE_PAUSED : APSCHED_STATE_RUNNING;
  s->mode = mode;
  s->wakeup_pending = false;
  s->clock_seen = false;
  s->planned_wake = APSCHED_TIME_NONE;
  apsched__log_later(s, nl, APSCHED_LOG_INFO, "Scheduler started");
  return APSCHED_OK;
}

int apsched_start(apsched_scheduler *s, bool paused) {
  if (!s) return APSCHED_EINVAL;
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  int rc = start_common(s, paused, MODE_THREAD, &nl);
  if (rc == APSCHED_OK) {
    if (pthread_create(&s->thread, NULL, loop_thread, s) != 0) {
      s->state = APSCHED_STATE_STOPPED;
      rc = APSCHED_ESYS;
    } else {
      s->thread_joinable = true;
    }
  }
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  if (rc == APSCHED_OK) emit(s, APSCHED_EVENT_SCHEDULER_STARTED, NULL);
  return rc;
}

int apsched_run(apsched_scheduler *s, bool paused) {
  if (!s) return APSCHED_EINVAL;
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  int rc = start_common(s, paused, MODE_BLOCKING, &nl);
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  if (rc != APSCHED_OK) return rc;
  emit(s, APSCHED_EVENT_SCHEDULER_STARTED, NULL);
  unsigned long slack = tighten_timer_slack(); /* the caller's thread: put it back after */
  run_loop(s);
  restore_timer_slack(slack);
  return APSCHED_OK;
}

int apsched_start_hosted(apsched_scheduler *s, bool paused) {
  if (!s) return APSCHED_EINVAL;
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  int rc = APSCHED_OK;
  if (s->event_fd < 0) {
    s->event_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->event_fd < 0) rc = apsched__error(APSCHED_ESYS, "start_hosted: timerfd_create failed");
  }
  if (rc == APSCHED_OK) rc = start_common(s, paused, MODE_HOSTED, &nl);
  /* Readable at once: the host's first call schedules everything. */
  if (rc == APSCHED_OK) apsched__wake_locked(s);
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  if (rc == APSCHED_OK) emit(s, APSCHED_EVENT_SCHEDULER_STARTED, NULL);
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
  if (!s) return APSCHED_EINVAL;
  apsched__lock(s);
  int rc = (s->mode != MODE_HOSTED || s->state == APSCHED_STATE_STOPPED) ? APSCHED_ESTATE : APSCHED_OK;
  if (rc == APSCHED_OK) {
    uint64_t drained;
    if (read(s->event_fd, &drained, sizeof drained) < 0 && errno != EAGAIN) {
    }
    s->wakeup_pending = false;
  }
  apsched__unlock(s);
  if (rc != APSCHED_OK) return rc;
  apsched_time_t next = process_once(s);
  apsched__lock(s);
  int64_t d;
  if (s->state == APSCHED_STATE_STOPPED) rc = APSCHED_ESTATE;
  if (s->state != APSCHED_STATE_RUNNING || next == APSCHED_TIME_NONE) d = -1;
  else d = wait_for(s, next);
  /* A change during this call (wakeup_pending) keeps the descriptor readable. */
  arm_host_timer(s, s->wakeup_pending || s->state == APSCHED_STATE_STOPPED ? 0 : d);
  apsched__unlock(s);
  if (wait_us) *wait_us = d;
  return rc == APSCHED_ESTATE ? APSCHED_OK : rc;
}

/* True if the calling thread is a worker of one of s's executors. Lock held. */
static bool on_executor_thread(apsched_scheduler *s) {
  for (executor_entry *e = s->executors; e; e = e->next)
    if (e->executor->vtable->owns_thread && e->executor->vtable->owns_thread(e->executor))
      return true;
  return false;
}

int apsched_shutdown(apsched_scheduler *s, bool wait) {
  if (!s) return APSCHED_EINVAL;
  apsched__lock(s);
  if (s->state == APSCHED_STATE_STOPPED) {
    apsched__unlock(s);
    return apsched__error(APSCHED_ESTATE, "shutdown: the scheduler is not running");
  }
  bool self = apsched__in_user_code(s) || on_executor_thread(s) ||
              (s->thread_joinable && pthread_equal(s->thread, pthread_self()));
  if (wait && self) {
    apsched__unlock(s);
    return apsched__error(APSCHED_EDEADLK,
                          "shutdown: wait=true from the scheduler's own job or listener would "
                          "wait for itself; use wait=false");
  }
  s->state = APSCHED_STATE_STOPPED;
  s->planned_wake = APSCHED_TIME_NONE;
  apsched__wake_locked(s);
  /* Stop executors outside the lock: a waiting shutdown lets jobs finish,
   * and those jobs may call back into the scheduler. */
  size_t n = 0;
  for (executor_entry *e = s->executors; e; e = e->next) n += e->started;
  executor_entry **stop = n ? apsched__alloc(s, n * sizeof *stop) : NULL;
  size_t k = 0;
  for (executor_entry *e = s->executors; e; e = e->next) {
    if (!e->started) continue;
    e->started = false;
    if (stop) stop[k++] = e;
    e->submitting++; /* keeps remove_executor from freeing it meanwhile */
  }
  apsched__unlock(s);
  for (size_t i = 0; i < k; i++) stop[i]->executor->vtable->shutdown(stop[i]->executor, wait);
  apsched__lock(s);
  for (size_t i = 0; i < k; i++) stop[i]->submitting--;
  pthread_cond_broadcast(&s->changed);
  if (wait) {
    join_old_thread(s);
    while (s->loop_running) pthread_cond_wait(&s->changed, &s->lock);
  }
  apsched__unlock(s);
  apsched__dealloc(s, stop);
  apsched__log(s, APSCHED_LOG_INFO, "Scheduler has been shut down");
  emit(s, APSCHED_EVENT_SCHEDULER_SHUTDOWN, NULL);
  return APSCHED_OK;
}

static int set_paused(apsched_scheduler *s, bool pause) {
  if (!s) return APSCHED_EINVAL;
  apsched__lock(s);
  apsched_state from = pause ? APSCHED_STATE_RUNNING : APSCHED_STATE_PAUSED;
  int rc = s->state == from ? APSCHED_OK : APSCHED_ESTATE;
  if (rc == APSCHED_OK) {
    s->state = pause ? APSCHED_STATE_PAUSED : APSCHED_STATE_RUNNING;
    apsched__wake_locked(s);
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
  return v && v->version == APSCHED_JOBSTORE_VTABLE_VERSION && v->add && v->lookup && v->update &&
         v->remove && v->remove_all && v->next_run_time && v->claim_due && v->release &&
         v->foreach && v->destroy;
}

static bool executor_vtable_ok(const apsched_executor *ex) {
  const apsched_executor_vtable *v = ex->vtable;
  return v && v->version == APSCHED_EXECUTOR_VTABLE_VERSION && v->start && v->submit &&
         v->shutdown && v->destroy;
}

static bool valid_component_alias(const char *alias) {
  if (!alias || !*alias || strlen(alias) >= 128) return false;
  for (const unsigned char *p = (const unsigned char *)alias; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return false;
  return true;
}

int apsched_add_jobstore(apsched_scheduler *s, apsched_jobstore *st, const char *alias) {
  if (!st) return APSCHED_EINVAL;
  if (!s || !valid_component_alias(alias) || !store_vtable_ok(st)) {
    if (st->vtable && st->vtable->destroy) st->vtable->destroy(st);
    return apsched__error(APSCHED_EINVAL, "jobstore: %s",
                          !s ? "no scheduler" : !valid_component_alias(alias) ? "bad alias"
                                                                              : "bad vtable");
  }
  store_entry *e = apsched__alloc(s, sizeof *e);
  apsched__lock(s);
  int rc = APSCHED_OK;
  const char *name = e ? apsched__intern(s, alias) : NULL;
  if (!e || !name) rc = APSCHED_ENOMEM;
  else if (apsched__find_store(s, alias))
    rc = apsched__error(APSCHED_EEXIST, "jobstore: alias '%.64s' is taken", alias);
  else if (st->vtable->open && st->vtable->open(st, s, name) != APSCHED_OK) rc = APSCHED_EBACKEND;
  if (rc == APSCHED_OK) {
    e->alias = name;
    e->store = st;
    e->next = NULL;
    store_entry **tail = &s->stores;
    while (*tail) tail = &(*tail)->next;
    *tail = e;
    /* Its jobs may be due already. */
    apsched__wake_if_earlier(s, st->vtable->next_run_time(st));
  }
  apsched__unlock(s);
  if (rc != APSCHED_OK) {
    apsched__dealloc(s, e);
    st->vtable->destroy(st);
    return rc;
  }
  apsched__log(s, APSCHED_LOG_INFO, "Added job store \"%s\"", name);
  emit(s, APSCHED_EVENT_JOBSTORE_ADDED, name);
  return APSCHED_OK;
}

int apsched_remove_jobstore(apsched_scheduler *s, const char *alias) {
  if (!s || !alias) return APSCHED_EINVAL;
  apsched__lock(s);
  store_entry **pp = &s->stores;
  while (*pp && strcmp((*pp)->alias, alias) != 0) pp = &(*pp)->next;
  store_entry *e = *pp;
  if (e) {
    *pp = e->next;
    /* Stores are only used under the lock, so closing it here is safe. */
    if (e->store->vtable->close) e->store->vtable->close(e->store);
    e->store->vtable->destroy(e->store);
  }
  apsched__unlock(s);
  if (!e) return APSCHED_ENOENT;
  const char *name = e->alias;
  apsched__dealloc(s, e);
  apsched__log(s, APSCHED_LOG_INFO, "Removed job store \"%s\"", name);
  emit(s, APSCHED_EVENT_JOBSTORE_REMOVED, name);
  return APSCHED_OK;
}

int apsched_add_executor(apsched_scheduler *s, apsched_executor *ex, const char *alias) {
  if (!ex) return APSCHED_EINVAL;
  if (!s || !valid_component_alias(alias) || !executor_vtable_ok(ex)) {
    if (ex->vtable && ex->vtable->destroy) ex->vtable->destroy(ex);
    return apsched__error(APSCHED_EINVAL, "executor: %s",
                          !s ? "no scheduler" : !valid_component_alias(alias) ? "bad alias"
                                                                              : "bad vtable");
  }
  executor_entry *e = apsched__alloc(s, sizeof *e);
  apsched__lock(s);
  int rc = APSCHED_OK;
  const char *name = e ? apsched__intern(s, alias) : NULL;
  if (!e || !name) rc = APSCHED_ENOMEM;
  else if (apsched__find_executor(s, alias))
    rc = apsched__error(APSCHED_EEXIST, "executor: alias '%.64s' is taken", alias);
  if (rc == APSCHED_OK) {
    *e = (executor_entry){.alias = name, .executor = ex};
    if (s->state != APSCHED_STATE_STOPPED) rc = start_executor(s, e);
  }
  if (rc == APSCHED_OK) {
    executor_entry **tail = &s->executors;
    while (*tail) tail = &(*tail)->next;
    *tail = e;
  }
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
  if (!s || !alias) return APSCHED_EINVAL;
  apsched__lock(s);
  executor_entry **pp = &s->executors;
  while (*pp && strcmp((*pp)->alias, alias) != 0) pp = &(*pp)->next;
  executor_entry *e = *pp;
  if (!e) {
    apsched__unlock(s);
    return APSCHED_ENOENT;
  }
  *pp = e->next;
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
  join_old_thread(s);
  while (s->loop_running || s->listener_calls > 0) pthread_cond_wait(&s->changed, &s->lock);
  executor_entry *executors = s->executors, *retired = s->retired_executors;
  s->executors = s->retired_executors = NULL;
  apsched__unlock(s);
  destroy_executors(s, executors);
  destroy_executors(s, retired);
  apsched__lock(s);
  /* Runs of custom executors may still be finishing: they use s. */
  while (s->running_runs > 0 || s->listener_calls > 0) pthread_cond_wait(&s->changed, &s->lock);
  apsched__unlock(s);
  for (store_entry *e = s->stores, *next; e; e = next) {
    next = e->next;
    if (e->store->vtable->close) e->store->vtable->close(e->store);
    e->store->vtable->destroy(e->store);
    apsched__dealloc(s, e);
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
  if (s->event_fd >= 0) close(s->event_fd);
  apsched_tz_free(s->tz);
  pthread_cond_destroy(&s->wake);
  pthread_cond_destroy(&s->changed);
  pthread_mutex_destroy(&s->lock);
  s->alloc.free(s, s->alloc.user_data);
}
