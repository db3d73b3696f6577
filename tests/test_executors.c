/* Executors: the thread pool's worker limit, queued runs on shutdown without
 * wait, restart after shutdown, the inline executor's thread, and the
 * scheduler's allocator. */
#include "support.h"

#include "apsched_plugin.h"

typedef struct concurrency {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int running, max_running, started;
  bool open;
  pthread_t threads[64];
} concurrency;

static int tracked_job(apsched_run_ctx *run) {
  concurrency *c = apsched_run_arg(run);
  pthread_mutex_lock(&c->lock);
  c->threads[c->started++ % 64] = pthread_self();
  if (++c->running > c->max_running) c->max_running = c->running;
  pthread_cond_broadcast(&c->cond);
  while (!c->open) pthread_cond_wait(&c->cond, &c->lock);
  c->running--;
  pthread_mutex_unlock(&c->lock);
  return 0;
}

static void wait_started(concurrency *c, int n) {
  pthread_mutex_lock(&c->lock);
  while (c->started < n) pthread_cond_wait(&c->cond, &c->lock);
  pthread_mutex_unlock(&c->lock);
}

static void open_all(concurrency *c) {
  pthread_mutex_lock(&c->lock);
  c->open = true;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->lock);
}

static void test_pool_respects_max_workers(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  apsched_executor *pool;
  apsched_thread_pool_options po = {.max_workers = 3};
  assert_int_equal(apsched_thread_pool_create(&po, &pool), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, pool, "pool"), APSCHED_OK);
  concurrency c = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  for (int i = 0; i < 8; i++) {
    char id[16];
    snprintf(id, sizeof id, "job%d", i);
    apsched_job_options o = {.id = id, .func = tracked_job, .arg = &c, .executor = "pool",
                             .misfire_grace_time = APSCHED_GRACE_UNLIMITED};
    assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  }
  process(s); /* returns at once: submitting never waits for a worker */
  wait_started(&c, 3);
  pthread_mutex_lock(&c.lock);
  assert_int_equal(c.started, 3); /* the other five wait in the queue */
  pthread_mutex_unlock(&c.lock);
  open_all(&c);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 8));
  assert_int_equal(c.max_running, 3);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_shutdown_nowait_reports_queued_runs(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  apsched_executor *pool;
  apsched_thread_pool_options po = {.max_workers = 1};
  assert_int_equal(apsched_thread_pool_create(&po, &pool), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, pool, "one"), APSCHED_OK);
  concurrency c = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  for (int i = 0; i < 3; i++) {
    char id[16];
    snprintf(id, sizeof id, "q%d", i);
    apsched_job_options o = {.id = id, .func = tracked_job, .arg = &c, .executor = "one"};
    assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  }
  process(s);
  wait_started(&c, 1);
  assert_int_equal(apsched_shutdown(s, false), APSCHED_OK);
  /* The two queued runs never start; each is reported, none vanishes. */
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 2));
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_string_equal(r.ev[e].error, "the executor shut down before the run started");
  open_all(&c);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(c.started, 1);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_pool_restarts(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_JOB_EXECUTED, &r, NULL), APSCHED_OK);
  counter k = {0};
  for (int round = 1; round <= 3; round++) {
    assert_int_equal(apsched_start(s, false), APSCHED_OK);
    apsched_job_options o = {.func = count_job, .arg = &k};
    assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
    assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, (size_t)round));
    assert_int_equal(apsched_shutdown(s, round % 2 == 0), APSCHED_OK);
  }
  assert_int_equal(atomic_load(&k.runs), 3);
  apsched_free(s);
  recorder_destroy(&r);
}

static pthread_t loop_thread_id;

static void note_thread(const apsched_event *ev, void *ud) {
  (void)ev;
  (void)ud;
  loop_thread_id = pthread_self();
}

static void test_inline_runs_in_scheduler_thread(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  concurrency c = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .open = true};
  assert_int_equal(apsched_add_listener(s, note_thread, APSCHED_EVENT_JOB_SUBMITTED, NULL, NULL), APSCHED_OK);
  apsched_job_options o = {.func = tracked_job, .arg = &c};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  process(s);
  assert_int_equal(c.started, 1);
  assert_true(pthread_equal(c.threads[0], pthread_self())); /* ran inside apsched_process */
  assert_true(pthread_equal(loop_thread_id, pthread_self()));
  apsched_free(s);
}

/* ---- max_runtime in a thread pool: reported, and the job sees the flag */

static int cooperative_job(apsched_run_ctx *run) {
  atomic_int *saw = apsched_run_arg(run);
  /* Spins until cancelled (bounded by a generous real-time limit). */
  int64_t give_up = apsched_now() + 20 * APSCHED_SEC;
  while (!apsched_run_cancelled(run) && apsched_now() < give_up) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  atomic_store(saw, apsched_run_cancelled(run) ? 1 : -1);
  return 0;
}

static int quick_job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

static void test_thread_pool_max_runtime(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  log_recorder logs = {.lock = PTHREAD_MUTEX_INITIALIZER};
  apsched_config cfg = {.timezone = "UTC", .log = record_log, .log_user_data = &logs};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_JOB_ERROR | APSCHED_EVENT_JOB_EXECUTED, &r, NULL), APSCHED_OK);
  atomic_int saw = 0;
  apsched_job_options slow = {.id = "slow", .name = "slow", .func = cooperative_job, .arg = &saw,
                              .max_runtime = 100 * APSCHED_MSEC};
  apsched_job_options fast = {.id = "fast", .func = quick_job, .max_runtime = 10 * APSCHED_SEC};
  assert_int_equal(apsched_add_job(s, &slow, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &fast, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 1));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(atomic_load(&saw), 1); /* the job observed its cancellation */
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_string_equal(r.ev[e].job_id, "slow");
  assert_string_equal(r.ev[e].error, "timed out after 0:00:00.100000");
  assert_string_equal(r.ev[recorder_find(&r, APSCHED_EVENT_JOB_EXECUTED, 0)].job_id, "fast");
  assert_true(log_contains(&logs, "Job \"slow\" is running longer than its max_runtime (0:00:00.100000): cancelled"));
  apsched_job *j;
  assert_int_equal(apsched_add_job(s, &(apsched_job_options){.id = "bad", .func = quick_job, .max_runtime = -1}, NULL, 0), APSCHED_EINVAL);
  assert_int_equal(apsched_get_job(s, "bad", NULL, &j), APSCHED_ENOENT);
  apsched_free(s);
  recorder_destroy(&r);
}

/* ---- a custom executor that only takes jobs with a byte argument */

typedef struct bytes_only {
  apsched_executor base;
} bytes_only;

static int bo_start(apsched_executor *ex, apsched_scheduler *s, const char *alias) {
  (void)ex, (void)s, (void)alias;
  return APSCHED_OK;
}
static int bo_submit(apsched_executor *ex, apsched_run_ctx *run) {
  (void)ex;
  apsched_run_execute(run);
  return APSCHED_OK;
}
static void bo_shutdown(apsched_executor *ex, bool wait) { (void)ex, (void)wait; }
static void bo_destroy(apsched_executor *ex) { free(ex); }
static int bo_check(apsched_executor *ex, const apsched_job_record *rec, char *why, size_t len) {
  (void)ex;
  size_t n;
  if (apsched_job_args_bytes(rec->args, &n)) return APSCHED_OK;
  snprintf(why, len, "job '%s' has no byte argument", rec->id);
  return APSCHED_EINVAL;
}
static const apsched_executor_vtable bytes_only_vtable = {
    .version = APSCHED_EXECUTOR_VTABLE_VERSION, .kind = "bytes_only", .start = bo_start,
    .submit = bo_submit, .shutdown = bo_shutdown, .destroy = bo_destroy, .check_job = bo_check};

static void test_executor_check_job(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  bytes_only *bo = calloc(1, sizeof *bo);
  bo->base.vtable = &bytes_only_vtable;
  assert_int_equal(apsched_add_executor(s, &bo->base, "bytes"), APSCHED_OK);
  int x = 0;
  apsched_job_options ptr_only = {.id = "p", .func = quick_job, .arg = &x, .executor = "bytes"};
  assert_int_equal(apsched_add_job(s, &ptr_only, NULL, 0), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(), "executor 'bytes': job 'p' has no byte argument");
  apsched_job_options with_bytes = {.id = "b", .func = quick_job, .arg_bytes = "x", .arg_len = 1,
                                    .executor = "bytes", .paused = true};
  assert_int_equal(apsched_add_job(s, &with_bytes, NULL, 0), APSCHED_OK);
  /* Modifying it into something the executor refuses changes nothing. */
  apsched_job_changes drop = {.set_arg_bytes = true};
  assert_int_equal(apsched_modify_job(s, "b", NULL, &drop), APSCHED_EINVAL);
  apsched_job_options plain = {.id = "q", .func = quick_job, .paused = true};
  assert_int_equal(apsched_add_job(s, &plain, NULL, 0), APSCHED_OK);
  apsched_job_changes move = {.executor = "bytes"};
  assert_int_equal(apsched_modify_job(s, "q", NULL, &move), APSCHED_EINVAL);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "q", NULL, &j), APSCHED_OK);
  assert_string_equal(j->executor, "default");
  apsched_job_free(j);
  apsched_free(s);
}

/* ---- the configured allocator serves the scheduler's own allocations */

typedef struct counting_alloc {
  atomic_long live, total;
} counting_alloc;

static void *ca_malloc(size_t n, void *ud) {
  counting_alloc *a = ud;
  atomic_fetch_add(&a->live, 1);
  atomic_fetch_add(&a->total, 1);
  return malloc(n);
}
static void *ca_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return realloc(p, n);
}
static void ca_free(void *p, void *ud) {
  counting_alloc *a = ud;
  if (p) atomic_fetch_sub(&a->live, 1);
  free(p);
}

static void test_allocator_used_and_balanced(void **state) {
  (void)state;
  counting_alloc a = {0};
  apsched_allocator alloc = {ca_malloc, ca_realloc, ca_free, &a};
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.allocator = &alloc};
  apsched_scheduler *s = hosted_scheduler(&fc, &r, &cfg);
  counter k = {0};
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = {.id = "a", .func = count_job, .arg = &k, .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  for (int i = 0; i < 10; i++) {
    fake_advance(&fc, APSCHED_SEC);
    process(s);
  }
  assert_int_equal(atomic_load(&k.runs), 10);
  assert_true(atomic_load(&a.total) > 10); /* runs and events went through it */
  apsched_free(s);
  assert_int_equal(atomic_load(&a.live), 0);
  apsched_trigger_free(t);
  recorder_destroy(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_respects_max_workers),
      cmocka_unit_test(test_shutdown_nowait_reports_queued_runs),
      cmocka_unit_test(test_pool_restarts),
      cmocka_unit_test(test_inline_runs_in_scheduler_thread),
      cmocka_unit_test(test_allocator_used_and_balanced),
      cmocka_unit_test(test_thread_pool_max_runtime),
      cmocka_unit_test(test_executor_check_job),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
