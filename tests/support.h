/* Shared test helpers: a fake clock, an event recorder that tests can wait
 * on, and a log recorder. Header-only so each test stays one executable. */
#ifndef APSCHED_TEST_SUPPORT_H
#define APSCHED_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <time.h>

#include "apsched.h"

/* ---- fake clock: wall and monotonic move together unless a test steps
 * the wall clock alone. */
typedef struct fake_clock {
  _Atomic int64_t wall;
  _Atomic int64_t mono;
  apsched_clock clock;
} fake_clock;

static inline apsched_time_t fake_wall(void *ud) { return atomic_load(&((fake_clock *)ud)->wall); }
static inline int64_t fake_mono(void *ud) { return atomic_load(&((fake_clock *)ud)->mono); }

static inline void fake_clock_init(fake_clock *c, apsched_time_t start) {
  atomic_store(&c->wall, start);
  atomic_store(&c->mono, 1000 * APSCHED_SEC);
  c->clock = (apsched_clock){fake_wall, fake_mono, c};
}

static inline void fake_advance(fake_clock *c, int64_t by) {
  atomic_fetch_add(&c->wall, by);
  atomic_fetch_add(&c->mono, by);
}

static inline void fake_step_wall(fake_clock *c, int64_t by) { atomic_fetch_add(&c->wall, by); }

/* 2026-01-01T00:00:00Z */
#define T0 (1767225600LL * APSCHED_SEC)

/* ---- event recorder */
typedef struct rec_event {
  int code;
  char job_id[64];
  char alias[64];
  char jobstore[64];
  apsched_time_t run_time;
  size_t run_time_count;
  uint64_t missed_count;
  bool missed_exact;
  int retval;
  unsigned attempt;
  char error[128];
} rec_event;

typedef struct recorder {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  rec_event ev[4096];
  size_t n;
} recorder;

static inline void recorder_init(recorder *r) {
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->cond, NULL);
  r->n = 0;
}

static inline void recorder_destroy(recorder *r) {
  pthread_mutex_destroy(&r->lock);
  pthread_cond_destroy(&r->cond);
}

static inline void record_event(const apsched_event *ev, void *ud) {
  recorder *r = ud;
  pthread_mutex_lock(&r->lock);
  if (r->n < sizeof r->ev / sizeof r->ev[0]) {
    rec_event *e = &r->ev[r->n++];
    memset(e, 0, sizeof *e);
    e->code = ev->code;
    if (ev->job_id) snprintf(e->job_id, sizeof e->job_id, "%s", ev->job_id);
    if (ev->alias) snprintf(e->alias, sizeof e->alias, "%s", ev->alias);
    if (ev->jobstore) snprintf(e->jobstore, sizeof e->jobstore, "%s", ev->jobstore);
    e->run_time = ev->scheduled_run_time;
    if (ev->scheduled_run_times && ev->run_time_count) e->run_time = ev->scheduled_run_times[0];
    e->run_time_count = ev->run_time_count;
    e->missed_count = ev->missed_count;
    e->missed_exact = ev->missed_count_exact;
    e->retval = ev->retval;
    e->attempt = ev->attempt;
    if (ev->error) snprintf(e->error, sizeof e->error, "%s", ev->error);
  }
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->lock);
}

static inline size_t recorder_count(recorder *r, int code) {
  pthread_mutex_lock(&r->lock);
  size_t c = 0;
  for (size_t i = 0; i < r->n; i++) c += (r->ev[i].code & code) != 0;
  pthread_mutex_unlock(&r->lock);
  return c;
}

/* Index of the k-th (0-based) event with this code, or -1. */
static inline int recorder_find(recorder *r, int code, size_t k) {
  pthread_mutex_lock(&r->lock);
  int found = -1;
  for (size_t i = 0; i < r->n && found < 0; i++)
    if ((r->ev[i].code & code) && k-- == 0) found = (int)i;
  pthread_mutex_unlock(&r->lock);
  return found;
}

/* Waits until at least n events with code were recorded (up to 20 s of real
 * time, generous for loaded CI machines). Returns true if they arrived. */
static inline bool recorder_wait(recorder *r, int code, size_t n) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&r->lock);
  for (;;) {
    size_t c = 0;
    for (size_t i = 0; i < r->n; i++) c += (r->ev[i].code & code) != 0;
    if (c >= n) break;
    if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) != 0) {
      pthread_mutex_unlock(&r->lock);
      return false;
    }
  }
  pthread_mutex_unlock(&r->lock);
  return true;
}

/* ---- log recorder */
typedef struct log_recorder {
  pthread_mutex_t lock;
  char lines[256][256];
  size_t n;
} log_recorder;

static inline void record_log(apsched_log_level lvl, const char *msg, void *ud) {
  (void)lvl;
  log_recorder *l = ud;
  pthread_mutex_lock(&l->lock);
  if (l->n < 256) snprintf(l->lines[l->n++], 256, "%s", msg);
  pthread_mutex_unlock(&l->lock);
}

static inline bool log_contains(log_recorder *l, const char *needle) {
  pthread_mutex_lock(&l->lock);
  bool found = false;
  for (size_t i = 0; i < l->n && !found; i++) found = strstr(l->lines[i], needle) != NULL;
  pthread_mutex_unlock(&l->lock);
  return found;
}

/* ---- a job that counts its runs */
typedef struct counter {
  atomic_int runs;
  _Atomic int64_t last_time;
} counter;

static inline int count_job(apsched_run_ctx *run) {
  counter *c = apsched_run_arg(run);
  atomic_store(&c->last_time, apsched_run_scheduled_time(run));
  atomic_fetch_add(&c->runs, 1);
  return 0;
}

/* A hosted scheduler on a fake clock with an inline "default" executor:
 * apsched_process runs due jobs synchronously, so tests are deterministic. */
static inline apsched_scheduler *hosted_scheduler(fake_clock *fc, recorder *r,
                                                  const apsched_config *base) {
  apsched_config cfg = base ? *base : (apsched_config){0};
  cfg.clock = &fc->clock;
  cfg.timezone = "UTC";
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "default"), APSCHED_OK);
  if (r) assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, r, NULL), APSCHED_OK);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  return s;
}

static inline apsched_trigger *every(int64_t usec, apsched_time_t start) {
  apsched_interval_options o = {.microseconds = usec, .start_date = start};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_interval(&o, &t, NULL, 0), APSCHED_OK);
  return t;
}

static inline void process(apsched_scheduler *s) {
  int64_t wait;
  assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
}

/* CLOCK_REALTIME usec from now: a deadline for pthread_cond_timedwait. */
static inline struct timespec realtime_in(int64_t usec) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t ns = ts.tv_nsec + usec % 1000000 * 1000;
  ts.tv_sec += (time_t)(usec / 1000000) + (time_t)(ns / 1000000000);
  ts.tv_nsec = ns % 1000000000;
  return ts;
}

/* Monotonic milliseconds, and a sleep of ms that resumes after signals
 * (for tests that wait on other processes). */
static inline int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

#endif
