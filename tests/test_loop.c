/* The scheduler loop's semantics on a fake clock (DESIGN.md §3): due runs,
 * misfire, coalesce, max_instances, bounded catch-up, event order, finished
 * triggers, jitter, clock steps, pause. Hosted mode + an inline executor make
 * every pass synchronous and deterministic. */
#include "support.h"

#include "apsched_plugin.h"

#include <poll.h>

static apsched_job_options job(const char *id, counter *c, const apsched_trigger *t) {
  return (apsched_job_options){.id = id, .func = count_job, .arg = c, .trigger = t};
}

static void test_interval_runs_on_time(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  counter c = {0};
  apsched_trigger *t = every(3 * APSCHED_SEC, T0 + 3 * APSCHED_SEC);
  apsched_job_options o = job("tick", &c, t);
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  int64_t wait;
  assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  assert_int_equal(atomic_load(&c.runs), 0);
  assert_int_equal(wait, 1 * APSCHED_SEC); /* capped by max_wait */
  fake_advance(&fc, 3 * APSCHED_SEC - 1);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 0);
  fake_advance(&fc, 1);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1);
  assert_int_equal(atomic_load(&c.last_time), T0 + 3 * APSCHED_SEC);
  for (int i = 0; i < 5; i++) {
    fake_advance(&fc, 3 * APSCHED_SEC);
    process(s);
  }
  assert_int_equal(atomic_load(&c.runs), 6);
  assert_int_equal(atomic_load(&c.last_time), T0 + 18 * APSCHED_SEC);
  /* SUBMITTED always precedes the run's EXECUTED. */
  for (size_t k = 0; k < 6; k++)
    assert_true(recorder_find(&r, APSCHED_EVENT_JOB_SUBMITTED, k) <
                recorder_find(&r, APSCHED_EVENT_JOB_EXECUTED, k));
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_missed_past_grace(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  log_recorder logs = {.lock = PTHREAD_MUTEX_INITIALIZER};
  apsched_config cfg = {.log = record_log, .log_user_data = &logs};
  apsched_scheduler *s = hosted_scheduler(&fc, &r, &cfg);
  counter c = {0};
  apsched_date_options d = {.run_date = T0 + APSCHED_SEC};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_date(&d, &t), APSCHED_OK);
  apsched_job_options o = job("late", &c, t);
  o.name = "late job";
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  /* 1.25 s after the run time with the default 1 s grace: missed. */
  fake_advance(&fc, 2 * APSCHED_SEC + 250 * APSCHED_MSEC);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 0);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MISSED), 1);
  int i = recorder_find(&r, APSCHED_EVENT_JOB_MISSED, 0);
  assert_int_equal(r.ev[i].run_time, T0 + APSCHED_SEC);
  assert_string_equal(r.ev[i].job_id, "late");
  assert_true(log_contains(&logs, "Run time of job \"late job\" was missed by 0:00:01.250000"));
  /* The date trigger is finished: the job is gone. */
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_REMOVED), 1);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "late", NULL, &j), APSCHED_ENOENT);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_within_grace_runs(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  counter c = {0};
  apsched_date_options d = {.run_date = T0 + APSCHED_SEC};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_date(&d, &t), APSCHED_OK);
  apsched_job_options o = job("ok", &c, t);
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  fake_advance(&fc, 2 * APSCHED_SEC); /* exactly 1 s late: still within grace */
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MISSED), 0);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_coalesce_runs_once(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  counter c = {0};
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = job("sec", &c, t);
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  fake_advance(&fc, 10 * APSCHED_SEC);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1);
  assert_int_equal(atomic_load(&c.last_time), T0 + 10 * APSCHED_SEC);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MISSED), 0);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "sec", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + 11 * APSCHED_SEC);
  apsched_job_free(j);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_no_coalesce_misses_and_runs(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  counter c = {0};
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = job("sec", &c, t);
  o.coalesce = APSCHED_NO;
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  fake_advance(&fc, 10 * APSCHED_SEC);
  process(s);
  /* T0+1..T0+8 are more than 1 s late: one MISSED event for all 8; T0+9 and
   * T0+10 run, in one submission. */
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MISSED), 1);
  int m = recorder_find(&r, APSCHED_EVENT_JOB_MISSED, 0);
  assert_int_equal(r.ev[m].missed_count, 8);
  assert_true(r.ev[m].missed_exact);
  assert_int_equal(r.ev[m].run_time, T0 + APSCHED_SEC);
  assert_int_equal(atomic_load(&c.runs), 2);
  int sub = recorder_find(&r, APSCHED_EVENT_JOB_SUBMITTED, 0);
  assert_int_equal(r.ev[sub].run_time_count, 2);
  assert_int_equal(r.ev[sub].run_time, T0 + 9 * APSCHED_SEC);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_EXECUTED), 2);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

/* A custom trigger wrapping an interval trigger and counting next() calls:
 * proves catch-up work is bounded without timing anything. */
typedef struct counting_trigger {
  apsched_trigger base;
  apsched_trigger *inner;
  atomic_long *calls;
} counting_trigger;

static const apsched_trigger_vtable counting_vtable;

static apsched_time_t counting_next(const apsched_trigger *t, apsched_time_t prev, apsched_time_t now) {
  const counting_trigger *ct = (const counting_trigger *)t;
  atomic_fetch_add(ct->calls, 1);
  return apsched_trigger_next(ct->inner, prev, now);
}
static int counting_describe(const apsched_trigger *t, char *buf, size_t len) {
  return apsched_trigger_describe(((const counting_trigger *)t)->inner, buf, len);
}
static int counting_new(apsched_trigger *inner, atomic_long *calls, apsched_trigger **out) {
  counting_trigger *ct = calloc(1, sizeof *ct);
  ct->base.vtable = &counting_vtable;
  ct->calls = calls;
  assert_int_equal(apsched_trigger_clone(inner, &ct->inner), APSCHED_OK);
  *out = &ct->base;
  return APSCHED_OK;
}
static int counting_clone(const apsched_trigger *t, apsched_trigger **out) {
  const counting_trigger *ct = (const counting_trigger *)t;
  return counting_new(ct->inner, ct->calls, out);
}
static bool counting_equal(const apsched_trigger *a, const apsched_trigger *b) {
  return apsched_trigger_equal(((const counting_trigger *)a)->inner, ((const counting_trigger *)b)->inner);
}
static void counting_destroy(apsched_trigger *t) {
  apsched_trigger_free(((counting_trigger *)t)->inner);
  free(t);
}
static const apsched_trigger_vtable counting_vtable = {
    .version = APSCHED_TRIGGER_VTABLE_VERSION, .kind = "counting", .next = counting_next,
    .describe = counting_describe, .clone = counting_clone, .equal = counting_equal,
    .destroy = counting_destroy};

static void ten_years_downtime(bool coalesce) {
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  counter c = {0};
  atomic_long calls = 0;
  apsched_trigger *inner = every(APSCHED_SEC, T0 + APSCHED_SEC), *t;
  counting_new(inner, &calls, &t);
  apsched_job_options o = job("persec", &c, t);
  o.coalesce = coalesce ? APSCHED_YES : APSCHED_NO;
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  int64_t ten_years = 3652LL * APSCHED_DAY;
  fake_advance(&fc, ten_years);
  atomic_store(&calls, 0);
  process(s);
  /* 315 million missed runs, handled with a few hundred trigger calls. */
  assert_true(atomic_load(&calls) < 2000);
  if (coalesce) {
    assert_int_equal(atomic_load(&c.runs), 1);
    assert_int_equal(atomic_load(&c.last_time), T0 + ten_years);
    assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MISSED), 0);
  } else {
    int m = recorder_find(&r, APSCHED_EVENT_JOB_MISSED, 0);
    assert_true(m >= 0);
    assert_false(r.ev[m].missed_exact);
    assert_true(r.ev[m].missed_count >= 256);
    assert_int_equal(r.ev[m].run_time, T0 + APSCHED_SEC);
    /* The two runs inside the 1 s grace window still run. */
    assert_int_equal(atomic_load(&c.runs), 2);
    assert_int_equal(atomic_load(&c.last_time), T0 + ten_years);
  }
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "persec", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + ten_years + APSCHED_SEC);
  apsched_job_free(j);
  apsched_trigger_free(inner);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_downtime_coalesce_bounded(void **state) {
  (void)state;
  ten_years_downtime(true);
}

static void test_downtime_no_coalesce_bounded(void **state) {
  (void)state;
  ten_years_downtime(false);
}

static int where_job(apsched_run_ctx *run) {
  char *out = apsched_run_arg(run);
  snprintf(out, 64, "%s/%s/%s", apsched_run_job_name(run), apsched_run_jobstore(run), apsched_run_executor(run));
  return 0;
}

static void test_run_context(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  char where[64] = "";
  apsched_job_options o = {.id = "w", .name = "where", .func = where_job, .arg = where};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  process(s);
  assert_string_equal(where, "where/default/default");
  assert_string_equal(apsched_event_name(APSCHED_EVENT_JOB_MAX_INSTANCES), "EVENT_JOB_MAX_INSTANCES");
  assert_string_equal(apsched_event_name(APSCHED_EVENT_CLOCK_STEP), "EVENT_CLOCK_STEP");
  assert_string_equal(apsched_event_name(3), "EVENT_UNKNOWN");
  apsched_free(s);
}

static void test_missing_executor_keeps_job(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  log_recorder logs = {.lock = PTHREAD_MUTEX_INITIALIZER};
  apsched_config cfg = {.log = record_log, .log_user_data = &logs};
  apsched_scheduler *s = hosted_scheduler(&fc, &r, &cfg);
  counter c = {0};
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = job("orphan", &c, t);
  o.executor = "gone";
  /* A running scheduler refuses an executor that does not exist... */
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_ENOENT);
  assert_non_null(strstr(apsched_last_error(), "no executor 'gone'"));
  /* ...but one may be removed while its jobs stay. */
  apsched_executor *gone;
  assert_int_equal(apsched_inline_executor_create(&gone), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, gone, "gone"), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_remove_executor(s, "gone"), APSCHED_OK);
  fake_advance(&fc, APSCHED_SEC);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 0);
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_true(e >= 0);
  assert_string_equal(r.ev[e].job_id, "orphan");
  assert_string_equal(r.ev[e].error, "executor \"gone\" does not exist: the run is skipped and the job kept");
  assert_true(log_contains(&logs, "Job \"orphan\": executor \"gone\" does not exist"));
  /* Kept, with its next run time advanced; it runs once the executor exists. */
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "orphan", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + 2 * APSCHED_SEC);
  apsched_job_free(j);
  assert_int_equal(apsched_inline_executor_create(&gone), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, gone, "gone"), APSCHED_OK);
  fake_advance(&fc, APSCHED_SEC);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static int failing_job(apsched_run_ctx *run) {
  apsched_run_set_error(run, "disk %s is full", "/var");
  return 3;
}

static void test_job_error_event(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  log_recorder logs = {.lock = PTHREAD_MUTEX_INITIALIZER};
  apsched_config cfg = {.log = record_log, .log_user_data = &logs};
  apsched_scheduler *s = hosted_scheduler(&fc, &r, &cfg);
  apsched_job_options o = {.id = "bad", .func = failing_job};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  process(s);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ERROR), 1);
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_int_equal(r.ev[e].retval, 3);
  assert_string_equal(r.ev[e].error, "disk /var is full");
  assert_true(log_contains(&logs, "Job \"bad\" failed with code 3: disk /var is full"));
  apsched_free(s);
  recorder_destroy(&r);
}

/* A job that blocks until the test opens the gate. */
typedef struct gate {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool open;
  int entered;
} gate;

static int gated_job(apsched_run_ctx *run) {
  gate *g = apsched_run_arg(run);
  pthread_mutex_lock(&g->lock);
  g->entered++;
  pthread_cond_broadcast(&g->cond);
  while (!g->open) pthread_cond_wait(&g->cond, &g->lock);
  pthread_mutex_unlock(&g->lock);
  return 0;
}

static void gate_wait_entered(gate *g, int n) {
  pthread_mutex_lock(&g->lock);
  while (g->entered < n) pthread_cond_wait(&g->cond, &g->lock);
  pthread_mutex_unlock(&g->lock);
}

static void gate_open(gate *g) {
  pthread_mutex_lock(&g->lock);
  g->open = true;
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->lock);
}

static void test_max_instances(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  log_recorder logs = {.lock = PTHREAD_MUTEX_INITIALIZER};
  apsched_config cfg = {.log = record_log, .log_user_data = &logs};
  apsched_scheduler *s = hosted_scheduler(&fc, &r, &cfg);
  apsched_executor *pool;
  apsched_thread_pool_options po = {.max_workers = 4};
  assert_int_equal(apsched_thread_pool_create(&po, &pool), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, pool, "pool"), APSCHED_OK);
  gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = {.id = "slow", .name = "slow", .func = gated_job, .arg = &g,
                           .trigger = t, .executor = "pool", .max_instances = 2};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  fake_advance(&fc, APSCHED_SEC);
  process(s);
  fake_advance(&fc, APSCHED_SEC);
  process(s);
  gate_wait_entered(&g, 2);
  fake_advance(&fc, APSCHED_SEC);
  process(s); /* a third instance would exceed max_instances = 2 */
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MAX_INSTANCES), 1);
  int m = recorder_find(&r, APSCHED_EVENT_JOB_MAX_INSTANCES, 0);
  assert_int_equal(r.ev[m].run_time, T0 + 3 * APSCHED_SEC);
  assert_true(log_contains(&logs, "Execution of job \"slow\" skipped: maximum number of running "
                                  "instances reached (2)"));
  gate_open(&g);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 2));
  /* Slots are free again once both finished. */
  fake_advance(&fc, APSCHED_SEC);
  process(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 3));
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MAX_INSTANCES), 1);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_misfire_checked_at_start(void **state) {
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
  gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
  counter c = {0};
  apsched_job_options a = {.id = "blocker", .func = gated_job, .arg = &g, .executor = "one"};
  apsched_job_options b = {.id = "queued", .func = count_job, .arg = &c, .executor = "one"};
  assert_int_equal(apsched_add_job(s, &a, NULL, 0), APSCHED_OK);
  process(s);
  gate_wait_entered(&g, 1);
  assert_int_equal(apsched_add_job(s, &b, NULL, 0), APSCHED_OK);
  process(s); /* submitted on time, but the only worker is busy */
  fake_advance(&fc, 5 * APSCHED_SEC);
  gate_open(&g);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_MISSED, 1));
  assert_int_equal(atomic_load(&c.runs), 0);
  int sub = -1;
  for (size_t k = 0; k < 2; k++) {
    int i = recorder_find(&r, APSCHED_EVENT_JOB_SUBMITTED, k);
    if (strcmp(r.ev[i].job_id, "queued") == 0) sub = i;
  }
  assert_true(sub >= 0 && sub < recorder_find(&r, APSCHED_EVENT_JOB_MISSED, 0));
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_paused_scheduler_holds_jobs(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  counter c = {0};
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = job("p", &c, t);
  o.misfire_grace_time = APSCHED_GRACE_UNLIMITED;
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_pause(s), APSCHED_OK);
  assert_int_equal(apsched_pause(s), APSCHED_ESTATE);
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_PAUSED);
  fake_advance(&fc, 5 * APSCHED_SEC);
  int64_t wait;
  assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  assert_int_equal(wait, -1);
  assert_int_equal(atomic_load(&c.runs), 0);
  assert_int_equal(apsched_resume(s), APSCHED_OK);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1); /* coalesced */
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_SCHEDULER_PAUSED), 1);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_SCHEDULER_RESUMED), 1);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_jitter_stays_on_grid(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  counter c = {0};
  apsched_interval_options io = {.seconds = 10, .start_date = T0 + 10 * APSCHED_SEC,
                                 .jitter = 2 * APSCHED_SEC};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_interval(&io, &t, NULL, 0), APSCHED_OK);
  apsched_job_options o = job("j", &c, t);
  o.misfire_grace_time = 5 * APSCHED_SEC; /* runs are processed up to 2 s after the grid */
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  bool saw_nonzero = false;
  for (int k = 1; k <= 200; k++) {
    fake_advance(&fc, 10 * APSCHED_SEC);
    /* Process at the grid point and after the jitter window. */
    process(s);
    fake_advance(&fc, 2 * APSCHED_SEC);
    process(s);
    fake_advance(&fc, -2 * APSCHED_SEC);
    assert_int_equal(atomic_load(&c.runs), k);
    int64_t off = atomic_load(&c.last_time) - (T0 + k * 10 * APSCHED_SEC);
    assert_true(off >= 0 && off <= 2 * APSCHED_SEC); /* no drift: always near k*10 s */
    saw_nonzero |= off != 0;
  }
  assert_true(saw_nonzero);
  apsched_trigger_free(t);
  apsched_free(s);
}

static void test_clock_steps(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  counter c = {0};
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options o = job("ten", &c, t);
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  process(s);
  fake_advance(&fc, 10 * APSCHED_SEC);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1);
  /* The wall clock jumps back a minute: reported, and nothing runs twice. */
  fake_step_wall(&fc, -60 * APSCHED_SEC);
  process(s);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_CLOCK_STEP), 1);
  for (int i = 0; i < 6; i++) {
    fake_advance(&fc, 10 * APSCHED_SEC);
    process(s);
  }
  assert_int_equal(atomic_load(&c.runs), 1); /* wall is back at T0+10 s */
  fake_advance(&fc, 10 * APSCHED_SEC);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 2);
  assert_int_equal(atomic_load(&c.last_time), T0 + 20 * APSCHED_SEC);
  /* Forward steps are reported too. */
  fake_step_wall(&fc, APSCHED_HOUR);
  process(s);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_CLOCK_STEP), 2);
  int i = recorder_find(&r, APSCHED_EVENT_CLOCK_STEP, 1);
  (void)i;
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_fd_readable_on_change(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  int fd = apsched_fd(s);
  assert_true(fd >= 0);
  process(s);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 0), 0); /* nothing changed */
  counter c = {0};
  apsched_trigger *t = every(APSCHED_SEC, T0 + 5 * APSCHED_SEC);
  apsched_job_options o = job("x", &c, t);
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(poll(&p, 1, 0), 1); /* the next wake time moved earlier */
  int64_t wait;
  assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  assert_int_equal(poll(&p, 1, 0), 0);
  assert_int_equal(wait, APSCHED_SEC); /* 5 s away, capped at max_wait */
  fake_advance(&fc, 4500 * APSCHED_MSEC);
  assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  assert_int_equal(wait, 500 * APSCHED_MSEC);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  assert_int_equal(apsched_process(s, &wait), APSCHED_ESTATE);
  apsched_trigger_free(t);
  apsched_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interval_runs_on_time),
      cmocka_unit_test(test_missed_past_grace),
      cmocka_unit_test(test_within_grace_runs),
      cmocka_unit_test(test_coalesce_runs_once),
      cmocka_unit_test(test_no_coalesce_misses_and_runs),
      cmocka_unit_test(test_downtime_coalesce_bounded),
      cmocka_unit_test(test_downtime_no_coalesce_bounded),
      cmocka_unit_test(test_job_error_event),
      cmocka_unit_test(test_run_context),
      cmocka_unit_test(test_missing_executor_keeps_job),
      cmocka_unit_test(test_max_instances),
      cmocka_unit_test(test_misfire_checked_at_start),
      cmocka_unit_test(test_paused_scheduler_holds_jobs),
      cmocka_unit_test(test_jitter_stays_on_grid),
      cmocka_unit_test(test_clock_steps),
      cmocka_unit_test(test_fd_readable_on_change),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
