/* Lifecycle and concurrency on the real clock: start / run / shutdown /
 * pause in every state, default components, stores and executors added and
 * removed at run time, and jobs and listeners calling back into the
 * scheduler (including shutdown) without deadlock. */
#include "support.h"

#include <poll.h>
#include <unistd.h>

static int noop_job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

static apsched_scheduler *threaded(recorder *r) {
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  if (r) assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, r, NULL), APSCHED_OK);
  return s;
}

static void test_states(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = threaded(&r);
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_STOPPED);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_ESTATE);
  assert_int_equal(apsched_pause(s), APSCHED_ESTATE);
  assert_int_equal(apsched_resume(s), APSCHED_ESTATE);
  assert_int_equal(apsched_wakeup(s), APSCHED_ESTATE);
  int64_t w;
  assert_int_equal(apsched_process(s, &w), APSCHED_ESTATE);
  assert_int_equal(apsched_fd(s), -1);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_RUNNING);
  assert_int_equal(apsched_start(s, false), APSCHED_ESTATE);
  assert_int_equal(apsched_run(s, false), APSCHED_ESTATE);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_ESTATE);
  assert_int_equal(apsched_process(s, &w), APSCHED_ESTATE); /* not hosted */
  assert_int_equal(apsched_resume(s), APSCHED_ESTATE);
  assert_int_equal(apsched_wakeup(s), APSCHED_OK);
  /* Defaults: a memory store and a thread pool, both "default". */
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOBSTORE_ADDED), 1);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_EXECUTOR_ADDED), 1);
  assert_string_equal(r.ev[recorder_find(&r, APSCHED_EVENT_JOBSTORE_ADDED, 0)].alias, "default");
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_STOPPED);
  /* Restartable, also paused. */
  assert_int_equal(apsched_start(s, true), APSCHED_OK);
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_PAUSED);
  assert_int_equal(apsched_resume(s), APSCHED_OK);
  assert_int_equal(apsched_shutdown(s, false), APSCHED_OK);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_SCHEDULER_STARTED), 2);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_SCHEDULER_SHUTDOWN), 2);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOBSTORE_ADDED), 1); /* kept across restarts */
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_version_and_errors(void **state) {
  (void)state;
  assert_string_equal(apsched_version(), APSCHED_VERSION_STRING);
  assert_int_equal(apsched_version_number(), APSCHED_VERSION_NUMBER);
  assert_string_equal(apsched_strerror(APSCHED_ENOENT), "no such job, store, executor or listener");
  assert_string_equal(apsched_strerror(-999), "unknown error");
  /* APScheduler 3.9.1's values (python3 -c 'import apscheduler.events'). */
  const int codes[] = {APSCHED_EVENT_SCHEDULER_STARTED, APSCHED_EVENT_SCHEDULER_SHUTDOWN,
      APSCHED_EVENT_SCHEDULER_PAUSED, APSCHED_EVENT_SCHEDULER_RESUMED, APSCHED_EVENT_EXECUTOR_ADDED,
      APSCHED_EVENT_EXECUTOR_REMOVED, APSCHED_EVENT_JOBSTORE_ADDED, APSCHED_EVENT_JOBSTORE_REMOVED,
      APSCHED_EVENT_ALL_JOBS_REMOVED, APSCHED_EVENT_JOB_ADDED, APSCHED_EVENT_JOB_REMOVED,
      APSCHED_EVENT_JOB_MODIFIED, APSCHED_EVENT_JOB_EXECUTED, APSCHED_EVENT_JOB_ERROR,
      APSCHED_EVENT_JOB_MISSED, APSCHED_EVENT_JOB_SUBMITTED, APSCHED_EVENT_JOB_MAX_INSTANCES};
  const int python[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
  for (int i = 0; i < 17; i++) assert_int_equal(codes[i], python[i]);
  assert_int_equal(APSCHED_EVENT_ALL, 131071);
  apsched_config bad = {.max_instances = -1};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&bad, &s), APSCHED_EINVAL);
  apsched_config badtz = {.timezone = "Not/AZone"};
  assert_int_not_equal(apsched_create(&badtz, &s), APSCHED_OK);
  apsched_free(NULL);
  apsched_trigger_free(NULL);
  apsched_job_free(NULL);
}

static void test_jobs_run_in_thread_pool(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = threaded(&r);
  counter c = {0};
  apsched_trigger *t = every(20 * APSCHED_MSEC, 0);
  apsched_job_options o = {.id = "fast", .func = count_job, .arg = &c, .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 5));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  int runs = atomic_load(&c.runs);
  assert_true(runs >= 5);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

/* ---- re-entrancy: a listener that drives the scheduler */

typedef struct driver {
  apsched_scheduler *s;
  int listener_id;
  atomic_int calls;
  int rc[8]; /* return codes, checked on the main thread (cmocka asserts are not thread-safe) */
  atomic_bool done;
} driver;

static void driving_listener(const apsched_event *ev, void *ud) {
  driver *d = ud;
  if (ev->code != APSCHED_EVENT_JOB_EXECUTED || strcmp(ev->job_id, "first") != 0) return;
  if (atomic_fetch_add(&d->calls, 1) > 0) return;
  apsched_job_options o = {.id = "second", .func = noop_job, .paused = true};
  d->rc[0] = apsched_add_job(d->s, &o, NULL, 0);
  apsched_job_changes ch = {.name = "renamed"};
  d->rc[1] = apsched_modify_job(d->s, "second", NULL, &ch);
  d->rc[2] = apsched_pause_job(d->s, "second", NULL);
  d->rc[3] = apsched_resume_job(d->s, "second", NULL);
  apsched_job *jobs;
  size_t count;
  d->rc[4] = apsched_get_jobs(d->s, NULL, &jobs, &count);
  if (d->rc[4] == APSCHED_OK) apsched_jobs_free(jobs, count);
  d->rc[5] = apsched_remove_listener(d->s, d->listener_id); /* itself */
  d->rc[6] = apsched_shutdown(d->s, true);
  d->rc[7] = apsched_shutdown(d->s, false);
  atomic_store(&d->done, true);
}

static void test_listener_reenters(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = threaded(&r);
  driver d = {.s = s};
  assert_int_equal(apsched_add_listener(s, driving_listener, APSCHED_EVENT_JOB_EXECUTED, &d, &d.listener_id), APSCHED_OK);
  apsched_job_options o = {.id = "first", .func = noop_job};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_SCHEDULER_SHUTDOWN, 1));
  apsched_free(s); /* waits for the listener call to end */
  assert_true(atomic_load(&d.done));
  for (int i = 0; i < 6; i++) assert_int_equal(d.rc[i], APSCHED_OK);
  assert_int_equal(d.rc[6], APSCHED_EDEADLK);
  assert_int_equal(d.rc[7], APSCHED_OK);
  assert_int_equal(atomic_load(&d.calls), 1);
  recorder_destroy(&r);
}

/* ---- a job that manages other jobs, removes itself, and stops everything */

typedef struct job_driver {
  atomic_int stage;
} job_driver;

static int managing_job(apsched_run_ctx *run) {
  apsched_scheduler *s = apsched_run_scheduler(run);
  job_driver *d = apsched_run_arg(run);
  apsched_job_options o = {.id = "child", .func = noop_job, .paused = true};
  if (apsched_add_job(s, &o, NULL, 0) != APSCHED_OK) return 1;
  if (apsched_remove_job(s, "child", NULL) != APSCHED_OK) return 2;
  /* Stores, executors, listeners and scheduler state, from inside a job. */
  apsched_jobstore *st;
  apsched_executor *ex;
  if (apsched_memory_store_create(&st) != APSCHED_OK || apsched_add_jobstore(s, st, "tmp") != APSCHED_OK ||
      apsched_remove_jobstore(s, "tmp") != APSCHED_OK)
    return 6;
  if (apsched_inline_executor_create(&ex) != APSCHED_OK || apsched_add_executor(s, ex, "tmpx") != APSCHED_OK ||
      apsched_remove_executor(s, "tmpx") != APSCHED_OK)
    return 7;
  if (apsched_pause(s) != APSCHED_OK || apsched_resume(s) != APSCHED_OK || apsched_wakeup(s) != APSCHED_OK)
    return 8;
  FILE *devnull = fopen("/dev/null", "w");
  int prc = apsched_print_jobs(s, NULL, devnull);
  fclose(devnull);
  if (prc != APSCHED_OK) return 9;
  if (apsched_remove_job(s, apsched_run_job_id(run), NULL) != APSCHED_OK) return 3;
  if (apsched_shutdown(s, true) != APSCHED_EDEADLK) return 4;
  if (apsched_shutdown(s, false) != APSCHED_OK) return 5;
  atomic_store(&d->stage, 1);
  return 0;
}

static void job_reenters(bool inline_executor) {
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = threaded(&r);
  if (inline_executor) {
    apsched_executor *ex;
    assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
    assert_int_equal(apsched_add_executor(s, ex, "default"), APSCHED_OK);
  }
  job_driver d = {0};
  apsched_trigger *t = every(10 * APSCHED_MSEC, 0);
  apsched_job_options o = {.id = "manager", .func = managing_job, .arg = &d, .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_ERROR, 1));
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ERROR), 0);
  assert_int_equal(atomic_load(&d.stage), 1);
  assert_true(recorder_wait(&r, APSCHED_EVENT_SCHEDULER_SHUTDOWN, 1));
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "manager", NULL, &j), APSCHED_ENOENT);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_job_reenters_thread_pool(void **state) {
  (void)state;
  job_reenters(false);
}

static void test_job_reenters_inline(void **state) {
  (void)state;
  job_reenters(true);
}

/* ---- blocking run() stopped from another thread */

static void *stop_later(void *arg) {
  recorder *r = ((void **)arg)[1];
  apsched_scheduler *s = ((void **)arg)[0];
  recorder_wait(r, APSCHED_EVENT_JOB_EXECUTED, 3);
  apsched_shutdown(s, false);
  return NULL;
}

static void test_blocking_run(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = threaded(&r);
  apsched_trigger *t = every(10 * APSCHED_MSEC, 0);
  apsched_job_options o = {.id = "b", .func = noop_job, .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  void *args[2] = {s, &r};
  pthread_t th;
  pthread_create(&th, NULL, stop_later, args);
  assert_int_equal(apsched_run(s, false), APSCHED_OK); /* returns after the shutdown */
  pthread_join(th, NULL);
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_STOPPED);
  assert_true(recorder_count(&r, APSCHED_EVENT_JOB_EXECUTED) >= 3);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

/* ---- shutdown with and without waiting for a running job */

typedef struct slow {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool open, started, finished;
} slow;

static int slow_job(apsched_run_ctx *run) {
  slow *sl = apsched_run_arg(run);
  pthread_mutex_lock(&sl->lock);
  sl->started = true;
  pthread_cond_broadcast(&sl->cond);
  while (!sl->open) pthread_cond_wait(&sl->cond, &sl->lock);
  sl->finished = true;
  pthread_mutex_unlock(&sl->lock);
  return 0;
}

static void *open_after_delay(void *arg) {
  slow *sl = arg;
  /* Gives the main thread time to block inside shutdown(wait=true); the
   * assertion is that shutdown did not return before the job finished. */
  struct timespec ts = {0, 200 * 1000 * 1000};
  nanosleep(&ts, NULL);
  pthread_mutex_lock(&sl->lock);
  sl->open = true;
  pthread_cond_broadcast(&sl->cond);
  pthread_mutex_unlock(&sl->lock);
  return NULL;
}

static void shutdown_with_running_job(bool wait) {
  apsched_scheduler *s = threaded(NULL);
  slow sl = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false};
  apsched_job_options o = {.id = "slow", .func = slow_job, .arg = &sl};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  pthread_mutex_lock(&sl.lock);
  while (!sl.started) pthread_cond_wait(&sl.cond, &sl.lock);
  pthread_mutex_unlock(&sl.lock);
  pthread_t th;
  if (wait) pthread_create(&th, NULL, open_after_delay, &sl);
  assert_int_equal(apsched_shutdown(s, wait), APSCHED_OK);
  pthread_mutex_lock(&sl.lock);
  bool finished = sl.finished;
  if (!wait) {
    sl.open = true; /* shutdown returned while the job was still blocked */
    pthread_cond_broadcast(&sl.cond);
  }
  pthread_mutex_unlock(&sl.lock);
  assert_true(finished == wait);
  if (wait) pthread_join(th, NULL);
  apsched_free(s); /* waits for the job; ASan/LSan check nothing leaks */
}

static void test_shutdown_wait(void **state) {
  (void)state;
  shutdown_with_running_job(true);
}

static void test_shutdown_nowait(void **state) {
  (void)state;
  shutdown_with_running_job(false);
}

/* ---- stores and executors at run time */

static void test_components_at_runtime(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = threaded(&r);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  apsched_jobstore *st;
  assert_int_equal(apsched_memory_store_create(&st), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "extra"), APSCHED_OK);
  assert_int_equal(apsched_memory_store_create(&st), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "extra"), APSCHED_EEXIST); /* st freed */
  assert_int_equal(apsched_memory_store_create(&st), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, ""), APSCHED_EINVAL);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "inline"), APSCHED_OK);
  counter c = {0};
  apsched_job_options o = {.id = "x", .func = count_job, .arg = &c, .jobstore = "extra",
                           .executor = "inline"};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  int i = recorder_find(&r, APSCHED_EVENT_JOB_EXECUTED, 0);
  assert_string_equal(r.ev[i].jobstore, "extra");
  apsched_job_options o2 = {.id = "y", .func = noop_job, .jobstore = "extra", .paused = true};
  assert_int_equal(apsched_add_job(s, &o2, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_remove_jobstore(s, "extra"), APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "y", NULL, &j), APSCHED_ENOENT);
  assert_int_equal(apsched_remove_jobstore(s, "extra"), APSCHED_ENOENT);
  assert_int_equal(apsched_remove_executor(s, "inline"), APSCHED_OK);
  assert_int_equal(apsched_remove_executor(s, "inline"), APSCHED_ENOENT);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOBSTORE_REMOVED), 1);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_EXECUTOR_REMOVED), 1);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  recorder_destroy(&r);
}

/* ---- remove_listener waits for a call in progress on another thread */

typedef struct blocking_listener {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool inside, release, done;
} blocking_listener;

static void block_in_listener(const apsched_event *ev, void *ud) {
  (void)ev;
  blocking_listener *b = ud;
  pthread_mutex_lock(&b->lock);
  b->inside = true;
  pthread_cond_broadcast(&b->cond);
  while (!b->release) pthread_cond_wait(&b->cond, &b->lock);
  b->done = true;
  pthread_mutex_unlock(&b->lock);
}

static void *release_later(void *arg) {
  blocking_listener *b = arg;
  struct timespec ts = {0, 100 * 1000 * 1000};
  nanosleep(&ts, NULL);
  pthread_mutex_lock(&b->lock);
  b->release = true;
  pthread_cond_broadcast(&b->cond);
  pthread_mutex_unlock(&b->lock);
  return NULL;
}

static void test_remove_listener_waits(void **state) {
  (void)state;
  apsched_scheduler *s = threaded(NULL);
  blocking_listener b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false};
  int id;
  assert_int_equal(apsched_add_listener(s, block_in_listener, APSCHED_EVENT_JOB_EXECUTED, &b, &id), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, block_in_listener, 0, &b, NULL), APSCHED_EINVAL);
  apsched_job_options o = {.id = "l", .func = noop_job};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  pthread_mutex_lock(&b.lock);
  while (!b.inside) pthread_cond_wait(&b.cond, &b.lock);
  pthread_mutex_unlock(&b.lock);
  pthread_t th;
  pthread_create(&th, NULL, release_later, &b);
  assert_int_equal(apsched_remove_listener(s, id), APSCHED_OK);
  pthread_mutex_lock(&b.lock);
  assert_true(b.done); /* the call had finished before remove returned */
  pthread_mutex_unlock(&b.lock);
  pthread_join(th, NULL);
  apsched_free(s);
}

/* Hosted mode on the real clock: the descriptor alone wakes the host when a
 * job is due (no timeout needed), without busy looping. */
static void test_host_descriptor_wakes_when_due(void **state) {
  (void)state;
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "default"), APSCHED_OK);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  counter c = {0};
  apsched_date_options d = {.run_date = apsched_now() + 150 * APSCHED_MSEC};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_date(&d, &t), APSCHED_OK);
  apsched_job_options o = {.id = "soon", .func = count_job, .arg = &c, .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  struct pollfd p = {.fd = apsched_fd(s), .events = POLLIN};
  int wakeups = 0;
  while (atomic_load(&c.runs) == 0 && wakeups < 20) {
    assert_int_equal(poll(&p, 1, 10000), 1); /* never the 10 s safety timeout */
    wakeups++;
    int64_t wait;
    assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  }
  assert_int_equal(atomic_load(&c.runs), 1);
  assert_true(apsched_now() >= d.run_date);
  assert_true(wakeups <= 3); /* readable once for the add, then when due */
  assert_int_equal(apsched_shutdown(s, false), APSCHED_OK);
  assert_int_equal(poll(&p, 1, 10000), 1); /* the shutdown wakes the host too */
  apsched_trigger_free(t);
  apsched_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_states),
      cmocka_unit_test(test_version_and_errors),
      cmocka_unit_test(test_jobs_run_in_thread_pool),
      cmocka_unit_test(test_listener_reenters),
      cmocka_unit_test(test_job_reenters_thread_pool),
      cmocka_unit_test(test_job_reenters_inline),
      cmocka_unit_test(test_blocking_run),
      cmocka_unit_test(test_shutdown_wait),
      cmocka_unit_test(test_shutdown_nowait),
      cmocka_unit_test(test_components_at_runtime),
      cmocka_unit_test(test_remove_listener_waits),
      cmocka_unit_test(test_host_descriptor_wakes_when_due),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
