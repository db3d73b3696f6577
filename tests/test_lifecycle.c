/* Start and shutdown under pressure: concurrent starts, a start during a
 * shutdown, failed starts that must change nothing, shutdown without
 * memory, pending jobs whose store is missing, a trigger that does not
 * advance, extreme run times, and the error messages of failing calls. */
#include "support.h"
#include "wrapped_store.h"
#include "scheduler_internal.h" /* sizeof(notice) */

/* ---- a job that blocks until the test lets it go */

typedef struct gate {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool entered, open;
} gate;

static gate job_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static int gated_job(apsched_run_ctx *run) {
  (void)run;
  pthread_mutex_lock(&job_gate.lock);
  job_gate.entered = true;
  pthread_cond_broadcast(&job_gate.cond);
  while (!job_gate.open) pthread_cond_wait(&job_gate.cond, &job_gate.lock);
  pthread_mutex_unlock(&job_gate.lock);
  return 0;
}

static void gate_reset(void) {
  pthread_mutex_lock(&job_gate.lock);
  job_gate.entered = job_gate.open = false;
  pthread_mutex_unlock(&job_gate.lock);
}

static void gate_wait_entered(void) {
  pthread_mutex_lock(&job_gate.lock);
  while (!job_gate.entered) pthread_cond_wait(&job_gate.cond, &job_gate.lock);
  pthread_mutex_unlock(&job_gate.lock);
}

static void gate_open(void) {
  pthread_mutex_lock(&job_gate.lock);
  job_gate.open = true;
  pthread_cond_broadcast(&job_gate.cond);
  pthread_mutex_unlock(&job_gate.lock);
}

static void *shutdown_waiting(void *arg) {
  apsched_shutdown(arg, true);
  return NULL;
}

/* Defect 5: a start while shutdown(wait) is stopping the executors used to
 * restart them and a new loop thread, and the shutdown then hung. */
static void test_start_during_shutdown_is_refused(void **state) {
  (void)state;
  gate_reset();
  apsched_scheduler *s;
  assert_int_equal(apsched_create(NULL, &s), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  apsched_job_options o = {.id = "busy", .func = gated_job};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  gate_wait_entered();
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, shutdown_waiting, s), 0);
  while (apsched_get_state(s) != APSCHED_STATE_STOPPED) sched_yield();
  /* The shutdown is waiting for the job: a start now must not interfere. */
  assert_int_equal(apsched_start(s, false), APSCHED_ESTATE);
  assert_non_null(strstr(apsched_last_error(), "shutdown is in progress"));
  gate_open();
  pthread_join(t, NULL);
  /* Once it is over, the scheduler starts again. */
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
}

typedef struct starter {
  apsched_scheduler *s;
  int rc;
} starter;

static void *start_thread(void *arg) {
  starter *st = arg;
  st->rc = apsched_start(st->s, false);
  return NULL;
}

typedef struct replacer {
  apsched_scheduler *s;
  int rc;
} replacer;

static void *replace_pending(void *arg) {
  replacer *r = arg;
  apsched_job_options o = {.id = "p", .name = "replaced", .func = count_job, .jobstore = "db",
                           .paused = true, .replace_existing = true};
  r->rc = apsched_add_job(r->s, &o, NULL, 0);
  return NULL;
}

/* Defect 6: two concurrent starts could both succeed (the lock was dropped
 * in the middle of a start). Here the first start is held inside a blocking
 * store's call while it commits a pending job; the second must be refused. */
static void test_concurrent_starts(void **state) {
  (void)state;
  apsched_scheduler *s;
  assert_int_equal(apsched_create(NULL, &s), APSCHED_OK);
  wrapped_store *w = wrapped_memory_store(APSCHED_STORE_BLOCKING);
  assert_int_equal(apsched_add_jobstore(s, &w->base, "db"), APSCHED_OK);
  apsched_job_options o = {.id = "p", .func = count_job, .jobstore = "db", .paused = true};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  wrapped_gate(w, true);
  starter first = {s, 1};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, start_thread, &first), 0);
  wrapped_wait_blocked(w);
  assert_int_equal(apsched_start(s, false), APSCHED_ESTATE);
  assert_non_null(strstr(apsched_last_error(), "start is in progress"));
  /* A job call meanwhile waits for the start instead of touching the
   * pending job the start is moving (it used to free it under the start). */
  replacer rep = {.s = s, .rc = 1};
  pthread_t t2;
  assert_int_equal(pthread_create(&t2, NULL, replace_pending, &rep), 0);
  wrapped_gate(w, false);
  pthread_join(t, NULL);
  pthread_join(t2, NULL);
  assert_int_equal(first.rc, APSCHED_OK);
  assert_int_equal(rep.rc, APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "p", "db", &j), APSCHED_OK);
  assert_false(j->pending);
  assert_string_equal(j->name, "replaced");
  apsched_job_free(j);
  assert_int_equal(apsched_start(s, false), APSCHED_ESTATE);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
}

/* Defects 12 and 13: a pending job whose store does not exist makes start
 * fail with ENOENT naming both, and the failed start changes nothing: the
 * job stays pending, no default store or executor appears, nothing is
 * announced. */
static void test_failed_start_changes_nothing(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s;
  assert_int_equal(apsched_create(NULL, &s), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &r, NULL), APSCHED_OK);
  counter c = {0};
  apsched_job_options o = {.id = "orphan", .func = count_job, .arg = &c, .jobstore = "nowhere"};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_ENOENT);
  assert_non_null(strstr(apsched_last_error(), "'orphan'"));
  assert_non_null(strstr(apsched_last_error(), "'nowhere'"));
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_STOPPED);
  assert_int_equal(r.n, 0);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "orphan", NULL, &j), APSCHED_OK);
  assert_true(j->pending);
  apsched_job_free(j);
  /* No default store was left behind: adding one under that alias works. */
  apsched_jobstore *st;
  assert_int_equal(apsched_memory_store_create(&st), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "default"), APSCHED_OK);
  assert_int_equal(apsched_remove_executor(s, "default"), APSCHED_ENOENT);
  /* With its store there, the same start succeeds and keeps the job. */
  assert_int_equal(apsched_memory_store_create(&st), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "nowhere"), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(atomic_load(&c.runs), 1);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  recorder_destroy(&r);
}

/* ---- an executor that counts starts and shutdowns and can refuse to start */

typedef struct counting_executor {
  apsched_executor base;
  int starts, shutdowns;
  bool refuse;
} counting_executor;

static int ce_start(apsched_executor *ex, apsched_scheduler *s, const char *alias) {
  (void)s;
  (void)alias;
  counting_executor *c = (counting_executor *)ex;
  if (c->refuse) return APSCHED_EBACKEND;
  c->starts++;
  return APSCHED_OK;
}
static int ce_submit(apsched_executor *ex, apsched_run_ctx *run) {
  (void)ex;
  apsched_run_execute(run);
  return APSCHED_OK;
}
static void ce_shutdown(apsched_executor *ex, bool wait) {
  (void)wait;
  ((counting_executor *)ex)->shutdowns++;
}
static void ce_destroy(apsched_executor *ex) { (void)ex; }
static const apsched_executor_vtable ce_vtable = {
    .version = APSCHED_EXECUTOR_VTABLE_VERSION, .kind = "counting", .start = ce_start,
    .submit = ce_submit, .shutdown = ce_shutdown, .destroy = ce_destroy};

/* Defect 13: executors a failed start had started are stopped again. */
static void test_failed_start_stops_what_it_started(void **state) {
  (void)state;
  counting_executor good = {.base = {&ce_vtable}}, bad = {.base = {&ce_vtable}, .refuse = true};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(NULL, &s), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, &good.base, "default"), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, &bad.base, "bad"), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_EBACKEND);
  assert_int_equal(good.starts, 1);
  assert_int_equal(good.shutdowns, 1);
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_STOPPED);
  bad.refuse = false;
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_int_equal(good.starts, 2);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  assert_int_equal(good.shutdowns, 2);
  assert_int_equal(bad.shutdowns, 1);
  apsched_free(s);
}

/* ---- an allocator that can be told to fail */

static atomic_bool alloc_fails;
static void *failing_malloc(size_t n, void *ud) {
  (void)ud;
  return atomic_load(&alloc_fails) ? NULL : malloc(n);
}
static void *failing_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return atomic_load(&alloc_fails) ? NULL : realloc(p, n);
}
static void failing_free(void *p, void *ud) {
  (void)ud;
  free(p);
}

/* Defect 14: shutdown used to allocate its list of executors and, when that
 * failed, reported success with the executors never shut down. */
static void test_shutdown_without_memory(void **state) {
  (void)state;
  apsched_allocator a = {failing_malloc, failing_realloc, failing_free, NULL};
  apsched_config cfg = {.allocator = &a};
  counting_executor ex = {.base = {&ce_vtable}};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, &ex.base, "default"), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  atomic_store(&alloc_fails, true);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  atomic_store(&alloc_fails, false);
  assert_int_equal(ex.shutdowns, 1);
  apsched_free(s);
}

/* An allocator that refuses allocations of exactly one size. */
static atomic_size_t refused_size;
static void *size_failing_malloc(size_t n, void *ud) {
  (void)ud;
  return n == atomic_load(&refused_size) ? NULL : malloc(n);
}
static void *size_failing_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return n == atomic_load(&refused_size) ? NULL : realloc(p, n);
}

/* A pass used to deadlock when the notice list of its SUBMITTED events
 * could not grow: the run was failed with the scheduler's lock held, and
 * ending a run takes that lock. Now room is made before the instance slot
 * is reserved, and a run that gets none is given up like one without a
 * slot (its time is lost, nothing else). */
static void test_submit_without_memory_for_its_notice(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_allocator a = {size_failing_malloc, size_failing_realloc, failing_free, NULL};
  apsched_config cfg = {.allocator = &a};
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, &cfg);
  counter c = {0};
  apsched_trigger *t = every(APSCHED_SEC, T0);
  enum { JOBS = 20 };
  for (int i = 0; i < JOBS; i++) {
    char id[8];
    snprintf(id, sizeof id, "j%02d", i);
    apsched_job_options o = {.id = id, .func = count_job, .trigger = t, .arg = &c,
                             .misfire_grace_time = APSCHED_GRACE_UNLIMITED};
    assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  }
  /* The list holds 8 notices inline; the 9th needs an array of 16. */
  atomic_store(&refused_size, sizeof(notice_block) + 16 * sizeof(notice));
  assert_int_equal(apsched_process(s, NULL), APSCHED_OK);
  atomic_store(&refused_size, 0);
  int first = atomic_load(&c.runs);
  assert_true(first >= 1 && first < JOBS);
  /* The scheduler goes on: every job runs its next time. */
  fake_advance(&fc, APSCHED_SEC);
  assert_int_equal(apsched_process(s, NULL), APSCHED_OK);
  assert_int_equal(atomic_load(&c.runs), first + JOBS);
  apsched_trigger_free(t);
  apsched_free(s);
}

/* ---- a trigger that does not advance */

static apsched_time_t stuck_next(const apsched_trigger *t, apsched_time_t prev, apsched_time_t now) {
  (void)t;
  (void)prev;
  (void)now;
  return T0 + APSCHED_SEC; /* always the same time */
}
static int stuck_describe(const apsched_trigger *t, char *buf, size_t len) {
  (void)t;
  return snprintf(buf, len, "stuck[]");
}
static void stuck_destroy(apsched_trigger *t) { free(t); }
static int stuck_clone(const apsched_trigger *t, apsched_trigger **out);
static bool stuck_equal(const apsched_trigger *a, const apsched_trigger *b) {
  (void)a;
  (void)b;
  return true;
}
static const apsched_trigger_vtable stuck_vtable = {
    .version = APSCHED_TRIGGER_VTABLE_VERSION, .kind = "stuck", .next = stuck_next,
    .describe = stuck_describe, .clone = stuck_clone, .equal = stuck_equal, .destroy = stuck_destroy};
static int stuck_clone(const apsched_trigger *t, apsched_trigger **out) {
  (void)t;
  apsched_trigger *c = calloc(1, sizeof *c);
  c->vtable = &stuck_vtable;
  *out = c;
  return APSCHED_OK;
}

/* Defect 7: the loop spun forever, holding the lock, on a trigger whose
 * next time did not advance. Now the job is paused and an error reported. */
static void test_stuck_trigger_pauses_the_job(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  log_recorder logs = {.lock = PTHREAD_MUTEX_INITIALIZER};
  apsched_config cfg = {.log = record_log, .log_user_data = &logs};
  apsched_scheduler *s = hosted_scheduler(&fc, &r, &cfg);
  apsched_trigger stuck = {.vtable = &stuck_vtable};
  counter c = {0};
  apsched_job_options o = {.id = "stuck", .func = count_job, .arg = &c, .trigger = &stuck};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  fake_advance(&fc, APSCHED_SEC);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1); /* the due run itself is fine */
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_true(e >= 0);
  assert_string_equal(r.ev[e].job_id, "stuck");
  assert_non_null(strstr(r.ev[e].error, "the job is paused"));
  assert_true(log_contains(&logs, "trigger stuck returned a next fire time that is not after"));
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "stuck", NULL, &j), APSCHED_OK);
  assert_true(j->paused);
  apsched_job_free(j);
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_RUNNING); /* responsive */
  apsched_free(s);
  recorder_destroy(&r);
}

/* Defect 15 (core part): run times at the edges of the time range used to
 * overflow in the misfire arithmetic (UB, caught by UBSan). */
static void test_extreme_run_times(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  counter c = {0};
  apsched_job_options o = {.id = "ancient", .func = count_job, .arg = &c,
                           .coalesce = APSCHED_NO, .next_run_time = INT64_MIN + 1};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  process(s);
  assert_true(recorder_count(&r, APSCHED_EVENT_JOB_MISSED) >= 1);
  apsched_free(s);
  recorder_destroy(&r);
}

/* Defect 16 (core part): every failing call says why in apsched_last_error. */
static void test_failing_calls_set_last_error(void **state) {
  (void)state;
  apsched_scheduler *s;
  assert_int_equal(apsched_create(NULL, &s), APSCHED_OK);
  assert_int_equal(apsched_pause_job(s, "nope", NULL), APSCHED_ENOENT);
  assert_non_null(strstr(apsched_last_error(), "no job 'nope'"));
  assert_int_equal(apsched_shutdown(s, false), APSCHED_ESTATE);
  assert_non_null(strstr(apsched_last_error(), "not running"));
  assert_int_equal(apsched_remove_jobstore(s, "nope"), APSCHED_ENOENT);
  assert_non_null(strstr(apsched_last_error(), "no job store 'nope'"));
  assert_int_equal(apsched_remove_executor(s, "nope"), APSCHED_ENOENT);
  assert_non_null(strstr(apsched_last_error(), "no executor 'nope'"));
  assert_int_equal(apsched_wakeup(s), APSCHED_ESTATE);
  assert_non_null(strstr(apsched_last_error(), "wakeup: the scheduler is not running"));
  assert_int_equal(apsched_process(s, NULL), APSCHED_ESTATE);
  assert_non_null(strstr(apsched_last_error(), "hosted mode"));
  assert_int_equal(apsched_get_jobs(s, NULL, NULL, NULL), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "get_jobs: out is NULL"));
  assert_int_equal(apsched_add_job(NULL, NULL, NULL, 0), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "add_job: scheduler is NULL"));
  assert_int_equal(apsched_remove_listener(s, 42), APSCHED_ENOENT);
  assert_non_null(strstr(apsched_last_error(), "no listener 42"));
  assert_int_equal(apsched_add_listener(s, record_event, 0, NULL, NULL), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "mask 0x0 is empty"));
  assert_int_equal(apsched_register_func("", count_job), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "name is empty"));
  assert_int_equal(apsched_memory_store_create(NULL), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "memory_store_create: out is NULL"));
  /* Queries about a store that does not exist: ENOENT, as for a job. */
  apsched_job *jobs;
  size_t n;
  assert_int_equal(apsched_start(s, true), APSCHED_OK);
  assert_int_equal(apsched_get_jobs(s, "nope", &jobs, &n), APSCHED_ENOENT);
  assert_non_null(strstr(apsched_last_error(), "no job store 'nope'"));
  assert_int_equal(apsched_print_jobs(s, "nope", stdout), APSCHED_ENOENT);
  assert_int_equal(apsched_remove_all_jobs(s, "nope"), APSCHED_ENOENT);
  apsched_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_start_during_shutdown_is_refused),
      cmocka_unit_test(test_concurrent_starts),
      cmocka_unit_test(test_failed_start_changes_nothing),
      cmocka_unit_test(test_failed_start_stops_what_it_started),
      cmocka_unit_test(test_shutdown_without_memory),
      cmocka_unit_test(test_submit_without_memory_for_its_notice),
      cmocka_unit_test(test_stuck_trigger_pauses_the_job),
      cmocka_unit_test(test_extreme_run_times),
      cmocka_unit_test(test_failing_calls_set_last_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
