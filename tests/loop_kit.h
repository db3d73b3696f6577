/* The event-loop adapter kit: the same tests for every adapter in
 * include/apsched/adapters/, each run on the real loop library. A test
 * program gives the loop's operations and calls loop_kit_run():
 *
 *   - jobs due in the loop run on time, on the loop's thread, and the
 *     scheduler stopping from a job lets the loop return by itself;
 *   - the loop's own timer carries apsched_process's wait (fake clock);
 *   - a job added from a job, and one added from another thread, wake the
 *     loop (max_wait is a minute: nothing polls);
 *   - detaching leaves the loop empty, and the scheduler keeps running
 *     (attach again works), also when a job detaches inside the adapter's
 *     own callback;
 *   - a shutdown from a pool's thread leaves the loop empty; host listeners
 *     get every event on the loop's thread, ordinary ones where raised;
 *   - attach refuses a scheduler that is not running hosted, naming why.
 *
 * Every test is bounded by alarm(): a loop that never returns kills the
 * program (and fails the test) instead of hanging CI. */
#ifndef APSCHED_TEST_LOOP_KIT_H
#define APSCHED_TEST_LOOP_KIT_H

#include "support.h"

#include <unistd.h>

typedef struct loop_ops {
  const char *name;
  void *(*loop_new)(void);
  /* Frees the loop, asserting that nothing is left in it. */
  void (*loop_free)(void *loop);
  int (*attach)(void *loop, apsched_scheduler *s, void **adapter);
  void (*detach)(void *adapter);
  /* Runs the loop until it has nothing left (the adapter stopped watching
   * and the test added nothing of its own). */
  void (*run)(void *loop, void *adapter);
  /* One iteration that does not block. */
  void (*run_once)(void *loop);
  /* Milliseconds until the adapter's timer fires; -1 if it is not armed. */
  int64_t (*timer_due_ms)(void *adapter);
  /* True if the adapter has nothing left in the loop (it may still be
   * attached, its watchers stopped). */
  bool (*loop_empty)(void *loop, void *adapter);
} loop_ops;

static const loop_ops *kit_loop;
static pthread_t kit_loop_thread;

#define KIT_TIMEOUT_S 60 /* generous: sanitizers on a loaded 2-core machine */

/* A scheduler for the loop: hosted, an inline "default" executor, a
 * thread pool "pool", max_wait a minute (so only the descriptor and the
 * timer wake the loop in time). */
static apsched_scheduler *kit_scheduler(const apsched_clock *clock) {
  apsched_config cfg = {.timezone = "UTC", .clock = clock, .max_wait = 60 * APSCHED_SEC};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "default"), APSCHED_OK);
  assert_int_equal(apsched_thread_pool_create(NULL, &ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "pool"), APSCHED_OK);
  return s;
}

static void kit_add(apsched_scheduler *s, const char *id, apsched_job_fn fn, void *arg,
                    apsched_time_t at, const char *executor) {
  apsched_date_options d = {.run_date = at};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_date(&d, &t), APSCHED_OK);
  apsched_job_options o = {.id = id, .func = fn, .arg = arg, .trigger = t, .executor = executor};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
}

/* What the jobs of a test saw. */
typedef struct kit_runs {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int runs;
  int off_loop;         /* runs not on the loop's thread */
  int64_t max_late;     /* microseconds after the scheduled time, worst run */
  int64_t min_late;
  char order[16];       /* first letters of the job ids, in run order */
} kit_runs;

static kit_runs kr;

static void kit_runs_reset(void) {
  pthread_mutex_lock(&kr.lock);
  kr.runs = kr.off_loop = 0;
  kr.max_late = INT64_MIN;
  kr.min_late = INT64_MAX;
  memset(kr.order, 0, sizeof kr.order);
  pthread_mutex_unlock(&kr.lock);
}

static void kit_note(apsched_run_ctx *run) {
  int64_t late = apsched_now() - apsched_run_scheduled_time(run);
  pthread_mutex_lock(&kr.lock);
  if (kr.runs < (int)sizeof kr.order - 1) kr.order[kr.runs] = apsched_run_job_id(run)[0];
  kr.runs++;
  if (!pthread_equal(pthread_self(), kit_loop_thread)) kr.off_loop++;
  if (late > kr.max_late) kr.max_late = late;
  if (late < kr.min_late) kr.min_late = late;
  pthread_cond_broadcast(&kr.cond);
  pthread_mutex_unlock(&kr.lock);
}

static int kit_note_job(apsched_run_ctx *run) {
  kit_note(run);
  return 0;
}

static int kit_stop_job(apsched_run_ctx *run) {
  kit_note(run);
  return apsched_shutdown(apsched_run_scheduler(run), false);
}

/* ---- on time */

static int kit_tick_job(apsched_run_ctx *run) {
  kit_note(run);
  pthread_mutex_lock(&kr.lock);
  bool last = kr.runs == 5;
  pthread_mutex_unlock(&kr.lock);
  return last ? apsched_shutdown(apsched_run_scheduler(run), false) : 0;
}

static void kit_jobs_run_on_time(void **state) {
  (void)state;
  alarm(KIT_TIMEOUT_S);
  kit_runs_reset();
  void *loop = kit_loop->loop_new();
  apsched_scheduler *s = kit_scheduler(NULL);
  apsched_interval_options every = {.microseconds = 150 * APSCHED_MSEC,
                                    .start_date = apsched_now() + 200 * APSCHED_MSEC};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_interval(&every, &t, NULL, 0), APSCHED_OK);
  apsched_job_options o = {.id = "tick", .func = kit_tick_job, .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  void *a;
  assert_int_equal(kit_loop->attach(loop, s, &a), APSCHED_OK);
  /* Returns by itself: the last run shuts the scheduler down. */
  kit_loop->run(loop, a);
  assert_int_equal(kr.runs, 5);
  assert_int_equal(kr.off_loop, 0);
  /* Never early; late by the loop's wake-up only (max_wait is a minute). */
  assert_true(kr.min_late >= 0);
  assert_true(kr.max_late < 250 * APSCHED_MSEC);
  assert_true(kit_loop->loop_empty(loop, a));
  kit_loop->detach(a);
  kit_loop->loop_free(loop);
  apsched_free(s);
  alarm(0);
}

/* ---- the loop's timer carries the wait */

static void kit_timer_follows_wait(void **state) {
  (void)state;
  alarm(KIT_TIMEOUT_S);
  kit_runs_reset();
  fake_clock fc;
  fake_clock_init(&fc, T0);
  void *loop = kit_loop->loop_new();
  apsched_scheduler *s = kit_scheduler(&fc.clock);
  kit_add(s, "a", kit_note_job, NULL, T0 + 2500 * APSCHED_MSEC, NULL);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  void *a;
  assert_int_equal(kit_loop->attach(loop, s, &a), APSCHED_OK);
  kit_loop->run_once(loop); /* the first pass */
  /* 2.5 s (not max_wait, not at once), less what a loaded machine took
   * since; plus the loop's clock granularity (libevent reads a coarse
   * monotonic clock, a few milliseconds). */
  int64_t due = kit_loop->timer_due_ms(a);
  if (due < 2000 || due > 2520) fail_msg("the timer is due in %lld ms, not 2000..2520", (long long)due);
  assert_int_equal(kr.runs, 0);
  fake_advance(&fc, 2500 * APSCHED_MSEC);
  assert_int_equal(apsched_wakeup(s), APSCHED_OK); /* the descriptor, not the timer */
  for (int i = 0; i < 1000 && kr.runs == 0; i++) kit_loop->run_once(loop);
  assert_int_equal(kr.runs, 1);
  /* Nothing scheduled: no timer, only the descriptor. */
  kit_loop->run_once(loop);
  assert_int_equal(kit_loop->timer_due_ms(a), -1);
  assert_false(kit_loop->loop_empty(loop, a));
  kit_loop->detach(a);
  kit_loop->run_once(loop); /* libuv closes handles in an iteration */
  kit_loop->loop_free(loop);
  apsched_free(s);
  alarm(0);
}

/* ---- wake-ups from a job and from another thread */

static apsched_scheduler *kit_waking;

static int kit_adding_job(apsched_run_ctx *run) {
  kit_note(run);
  kit_add(apsched_run_scheduler(run), "b", kit_note_job, NULL,
          apsched_now() + 100 * APSCHED_MSEC, NULL);
  return 0;
}

static void *kit_thread_adder(void *arg) {
  (void)arg;
  /* After "b" ran, the loop has nothing scheduled: only this wakes it. */
  pthread_mutex_lock(&kr.lock);
  while (kr.runs < 2) pthread_cond_wait(&kr.cond, &kr.lock);
  pthread_mutex_unlock(&kr.lock);
  kit_add(kit_waking, "c", kit_stop_job, NULL, apsched_now(), NULL);
  return NULL;
}

static void kit_adds_wake_the_loop(void **state) {
  (void)state;
  alarm(KIT_TIMEOUT_S);
  kit_runs_reset();
  void *loop = kit_loop->loop_new();
  apsched_scheduler *s = kit_scheduler(NULL);
  kit_waking = s;
  kit_add(s, "a", kit_adding_job, NULL, apsched_now(), NULL);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  void *a;
  assert_int_equal(kit_loop->attach(loop, s, &a), APSCHED_OK);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, kit_thread_adder, NULL), 0);
  apsched_time_t start = apsched_now();
  kit_loop->run(loop, a);
  pthread_join(t, NULL);
  assert_string_equal(kr.order, "abc");
  assert_int_equal(kr.off_loop, 0);
  /* Far below max_wait (a minute): woken, not polled. */
  assert_true(apsched_now() - start < 20 * APSCHED_SEC);
  assert_true(kit_loop->loop_empty(loop, a));
  kit_loop->detach(a);
  kit_loop->loop_free(loop);
  apsched_free(s);
  alarm(0);
}

/* ---- detach */

static void kit_detach_leaves_loop_empty(void **state) {
  (void)state;
  alarm(KIT_TIMEOUT_S);
  kit_runs_reset();
  void *loop = kit_loop->loop_new();
  apsched_scheduler *s = kit_scheduler(NULL);
  kit_add(s, "later", kit_note_job, NULL, apsched_now() + 3600 * APSCHED_SEC, NULL);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  void *a;
  assert_int_equal(kit_loop->attach(loop, s, &a), APSCHED_OK);
  kit_loop->run_once(loop);
  assert_true(kit_loop->timer_due_ms(a) >= 0);
  kit_loop->detach(a);
  kit_loop->run_once(loop); /* libuv closes handles in an iteration */
  kit_loop->loop_free(loop);
  /* Still running, hosted: a second loop takes it over and runs a job. */
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_RUNNING);
  loop = kit_loop->loop_new();
  assert_int_equal(kit_loop->attach(loop, s, &a), APSCHED_OK);
  kit_add(s, "stop", kit_stop_job, NULL, apsched_now(), NULL);
  kit_loop->run(loop, a);
  assert_string_equal(kr.order, "s");
  kit_loop->detach(a);
  kit_loop->loop_free(loop);
  apsched_free(s);
  alarm(0);
}

/* ---- detach from a job, inside the adapter's own callback */

static void *kit_detaching;

static int kit_detach_job(apsched_run_ctx *run) {
  kit_note(run);
  kit_loop->detach(kit_detaching);
  return 0;
}

static void kit_detach_from_a_job(void **state) {
  (void)state;
  alarm(KIT_TIMEOUT_S);
  kit_runs_reset();
  void *loop = kit_loop->loop_new();
  apsched_scheduler *s = kit_scheduler(NULL);
  kit_add(s, "detach", kit_detach_job, NULL, apsched_now(), NULL);
  kit_add(s, "later", kit_note_job, NULL, apsched_now() + 3600 * APSCHED_SEC, NULL);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  assert_int_equal(kit_loop->attach(loop, s, &kit_detaching), APSCHED_OK);
  for (int i = 0; i < 1000 && kr.runs == 0; i++) kit_loop->run_once(loop);
  assert_int_equal(kr.runs, 1);
  kit_loop->run_once(loop); /* libuv closes handles in an iteration */
  /* The adapter is gone (ASan sees any use of it after the callback), the
   * loop has nothing of it, the scheduler still runs. */
  kit_loop->loop_free(loop);
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_RUNNING);
  apsched_free(s);
  alarm(0);
}

/* ---- pools and host listeners */

typedef struct kit_events {
  pthread_mutex_t lock;
  int host, host_off_loop, executed_host, shutdown_host;
  int direct_executed_off_loop;
} kit_events;

static kit_events ke;

static void kit_host_listener(const apsched_event *ev, void *ud) {
  (void)ud;
  pthread_mutex_lock(&ke.lock);
  ke.host++;
  if (!pthread_equal(pthread_self(), kit_loop_thread)) ke.host_off_loop++;
  if (ev->code == APSCHED_EVENT_JOB_EXECUTED) ke.executed_host++;
  if (ev->code == APSCHED_EVENT_SCHEDULER_SHUTDOWN) ke.shutdown_host++;
  pthread_mutex_unlock(&ke.lock);
}

static void kit_direct_listener(const apsched_event *ev, void *ud) {
  (void)ud;
  pthread_mutex_lock(&ke.lock);
  if (ev->code == APSCHED_EVENT_JOB_EXECUTED && !pthread_equal(pthread_self(), kit_loop_thread))
    ke.direct_executed_off_loop++;
  pthread_mutex_unlock(&ke.lock);
}

static int kit_pool_job(apsched_run_ctx *run) {
  kit_note(run);
  pthread_mutex_lock(&kr.lock);
  bool last = kr.runs == 3;
  pthread_mutex_unlock(&kr.lock);
  /* From a pool's thread: only without waiting. */
  return last ? apsched_shutdown(apsched_run_scheduler(run), false) : 0;
}

static void kit_pool_shutdown_leaves_loop_empty(void **state) {
  (void)state;
  alarm(KIT_TIMEOUT_S);
  kit_runs_reset();
  pthread_mutex_lock(&ke.lock);
  ke.host = ke.host_off_loop = ke.executed_host = ke.shutdown_host = 0;
  ke.direct_executed_off_loop = 0;
  pthread_mutex_unlock(&ke.lock);
  void *loop = kit_loop->loop_new();
  apsched_scheduler *s = kit_scheduler(NULL);
  assert_int_equal(apsched_add_host_listener(s, kit_host_listener, APSCHED_EVENT_EVERYTHING, NULL,
                                             NULL),
                   APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, kit_direct_listener, APSCHED_EVENT_JOB_EXECUTED, NULL,
                                        NULL),
                   APSCHED_OK);
  apsched_time_t now = apsched_now();
  kit_add(s, "p1", kit_pool_job, NULL, now, "pool");
  kit_add(s, "p2", kit_pool_job, NULL, now + 50 * APSCHED_MSEC, "pool");
  kit_add(s, "p3", kit_pool_job, NULL, now + 100 * APSCHED_MSEC, "pool");
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  void *a;
  assert_int_equal(kit_loop->attach(loop, s, &a), APSCHED_OK);
  kit_loop->run(loop, a);
  assert_int_equal(kr.runs, 3);
  assert_int_equal(kr.off_loop, 3); /* pool jobs: the pool's threads */
  assert_true(kit_loop->loop_empty(loop, a));
  kit_loop->detach(a);
  kit_loop->loop_free(loop);
  /* What the loop did not take (the last run's outcome may end after the
   * loop stopped) apsched_free delivers, here: on the loop's thread too. */
  apsched_free(s);
  pthread_mutex_lock(&ke.lock);
  assert_int_equal(ke.executed_host, 3);
  assert_int_equal(ke.shutdown_host, 1);
  assert_int_equal(ke.host_off_loop, 0);
  assert_int_equal(ke.direct_executed_off_loop, 3);
  pthread_mutex_unlock(&ke.lock);
  alarm(0);
}

/* ---- refusals */

static void kit_attach_refuses(void **state) {
  (void)state;
  void *loop = kit_loop->loop_new();
  apsched_scheduler *s = kit_scheduler(NULL);
  void *a = NULL;
  assert_int_equal(kit_loop->attach(loop, s, &a), APSCHED_ESTATE);
  assert_non_null(strstr(apsched_last_error(), "not running in hosted mode"));
  assert_int_equal(kit_loop->attach(loop, NULL, &a), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "scheduler is NULL"));
  assert_int_equal(apsched_start(s, false), APSCHED_OK); /* a thread of its own */
  assert_int_equal(kit_loop->attach(loop, s, &a), APSCHED_ESTATE);
  assert_null(a);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  kit_loop->loop_free(loop);
  apsched_free(s);
}

static int loop_kit_run(const loop_ops *ops) {
  kit_loop = ops;
  kit_loop_thread = pthread_self();
  pthread_mutex_init(&kr.lock, NULL);
  pthread_cond_init(&kr.cond, NULL);
  pthread_mutex_init(&ke.lock, NULL);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(kit_jobs_run_on_time),
      cmocka_unit_test(kit_timer_follows_wait),
      cmocka_unit_test(kit_adds_wake_the_loop),
      cmocka_unit_test(kit_detach_leaves_loop_empty),
      cmocka_unit_test(kit_detach_from_a_job),
      cmocka_unit_test(kit_pool_shutdown_leaves_loop_empty),
      cmocka_unit_test(kit_attach_refuses),
  };
  return cmocka_run_group_tests_name(ops->name, tests, NULL, NULL);
}

#endif
