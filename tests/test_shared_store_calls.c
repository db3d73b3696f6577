/* The store calls of contract version 4, for stores shared by several
 * schedulers, as the core uses them: the store's clock decides what is due,
 * how late a run is and when to wake up; a fenced start (run_starting) that
 * the store refuses keeps the run from starting; runs_open's APSCHED_EBUSY
 * (max_instances across schedulers) skips the runs but advances the job;
 * without the version 5 calls the policies whose runs wait are refused.
 * The store is the memory store with these calls added. */
#include "support.h"
#include "wrapped_store.h"

/* What the test store does and saw. */
static struct {
  int64_t offset;       /* its clock minus the scheduler's */
  char lost[32];        /* run_starting refuses this job's runs */
  char busy[32];        /* runs_open answers EBUSY for this job */
  char down[32];        /* run_starting cannot reach the database for these ("a,b") */
  char closed[256];     /* "id@seconds-after-T0;" per run handed to runs_closed */
  atomic_int starts;    /* run_starting calls */
} shared;

static pthread_mutex_t closed_lock = PTHREAD_MUTEX_INITIALIZER;

static apsched_time_t sh_clock(apsched_jobstore *st, apsched_time_t host_now) {
  (void)st;
  return host_now + shared.offset;
}

static int sh_runs_open(apsched_jobstore *st, const apsched_job_record *rec,
                        const apsched_time_t *times, size_t n, bool *track) {
  (void)st;
  (void)times;
  (void)n;
  *track = true;
  if (strcmp(rec->id, shared.busy) == 0) return APSCHED_EBUSY;
  return APSCHED_OK;
}

static int sh_runs_closed(apsched_jobstore *st, const apsched_run_result *r, size_t n) {
  (void)st;
  pthread_mutex_lock(&closed_lock);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(shared.closed);
    snprintf(shared.closed + len, sizeof shared.closed - len, "%s@%lld;", r[i].job_id,
             (long long)((r[i].scheduled_time - T0) / APSCHED_SEC));
  }
  pthread_mutex_unlock(&closed_lock);
  return APSCHED_OK;
}

static int sh_run_starting(apsched_jobstore *st, const char *job_id, apsched_time_t t,
                           unsigned attempt) {
  (void)st;
  (void)t;
  assert_int_equal(attempt, 1);
  atomic_fetch_add(&shared.starts, 1);
  if (strcmp(job_id, shared.lost) == 0)
    return apsched_plugin_error(APSCHED_ESTATE, "run owned by scheduler 'other' since its lease lapsed");
  char key[40];
  snprintf(key, sizeof key, "%s,", job_id);
  if (strstr(shared.down, key))
    return apsched_plugin_error(APSCHED_EBACKEND, "server closed the connection unexpectedly");
  return APSCHED_OK;
}

static atomic_int job_runs;

static int shared_job(apsched_run_ctx *run) {
  (void)run;
  atomic_fetch_add(&job_runs, 1);
  return 0;
}

/* A hosted scheduler (max_wait 60 s) with the test store as "shared". */
static apsched_scheduler *open_sched(fake_clock *fc, recorder *r) {
  memset(shared.closed, 0, sizeof shared.closed);
  atomic_store(&shared.starts, 0);
  atomic_store(&job_runs, 0);
  apsched_config cfg = {.clock = &fc->clock, .timezone = "UTC", .max_wait = 60 * APSCHED_SEC};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "default"), APSCHED_OK);
  wrapped_store *w = wrapped_memory_store(0);
  w->vt.version = APSCHED_JOBSTORE_VTABLE_VERSION;
  w->vt.runs_open = sh_runs_open;
  w->vt.runs_closed = sh_runs_closed;
  w->vt.clock = sh_clock;
  w->vt.run_starting = sh_run_starting;
  assert_int_equal(apsched_add_jobstore(s, &w->base, "shared"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, r, NULL),
                   APSCHED_OK);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  return s;
}

static void add_delivered(apsched_scheduler *s, const char *id, apsched_time_t next, int64_t grace,
                          int delivery) {
  apsched_trigger *t = every(10 * APSCHED_SEC, next);
  apsched_job_options o = {.id = id, .func = shared_job, .trigger = t, .jobstore = "shared",
                           .next_run_time = next, .misfire_grace_time = grace,
                           .delivery = delivery};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
}

static void add(apsched_scheduler *s, const char *id, apsched_time_t next, int64_t grace) {
  add_delivered(s, id, next, grace, APSCHED_AT_MOST_ONCE);
}

/* The store's clock is an hour ahead of ours: a job due by it runs now, is
 * not late by it, and the loop sleeps until its next time by that clock. */
static void test_store_clock_decides(void **state) {
  (void)state;
  shared.offset = APSCHED_HOUR;
  shared.lost[0] = shared.busy[0] = '\0';
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = open_sched(&fc, &r);
  add(s, "ahead", T0 + APSCHED_HOUR, APSCHED_SEC); /* 1 s of grace only */
  int64_t wait = 0;
  assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  assert_int_equal(atomic_load(&job_runs), 1);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MISSED), 0);
  assert_int_equal(wait, 10 * APSCHED_SEC); /* next at T0 + 1 h + 10 s by the store's clock */
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "ahead", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + APSCHED_HOUR + 10 * APSCHED_SEC);
  apsched_job_free(j);
  /* Our clock reaches it 10 s later: it runs again, once. */
  fake_advance(&fc, 10 * APSCHED_SEC);
  assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  assert_int_equal(atomic_load(&job_runs), 2);
  apsched_free(s);
  assert_string_equal(shared.closed, "ahead@3600;ahead@3610;");
  recorder_destroy(&r);
}

/* A start the store refuses does not happen, is an error event naming why,
 * and is not handed back; the other job's run goes on as usual. */
static void test_refused_start_does_not_run(void **state) {
  (void)state;
  shared.offset = 0;
  snprintf(shared.lost, sizeof shared.lost, "lost");
  shared.busy[0] = '\0';
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = open_sched(&fc, &r);
  add(s, "lost", T0, APSCHED_GRACE_UNLIMITED);
  add(s, "kept", T0, APSCHED_GRACE_UNLIMITED);
  assert_int_equal(apsched_process(s, NULL), APSCHED_OK);
  assert_int_equal(atomic_load(&shared.starts), 2);
  assert_int_equal(atomic_load(&job_runs), 1);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_EXECUTED), 1);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ERROR), 1);
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_string_equal(r.ev[e].job_id, "lost");
  assert_string_equal(r.ev[e].error,
                      "the claim of this run was lost: run owned by scheduler 'other' since its "
                      "lease lapsed");
  apsched_free(s);
  assert_string_equal(shared.closed, "kept@0;");
  recorder_destroy(&r);
}

/* A start that cannot be recorded (the store is unreachable, not a lost
 * claim): an at-most-once run does not start and is closed as failed (the
 * store closes it only if the claim is still its own); an at-least-once run
 * starts anyway, and is closed when it ends. */
static void test_unrecorded_start_by_delivery(void **state) {
  (void)state;
  shared.offset = 0;
  shared.lost[0] = shared.busy[0] = '\0';
  snprintf(shared.down, sizeof shared.down, "amo,alo,");
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = open_sched(&fc, &r);
  add_delivered(s, "amo", T0, APSCHED_GRACE_UNLIMITED, APSCHED_AT_MOST_ONCE);
  add_delivered(s, "alo", T0, APSCHED_GRACE_UNLIMITED, APSCHED_AT_LEAST_ONCE);
  assert_int_equal(apsched_process(s, NULL), APSCHED_OK);
  assert_int_equal(atomic_load(&shared.starts), 2);
  assert_int_equal(atomic_load(&job_runs), 1);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_EXECUTED), 1);
  assert_string_equal(r.ev[recorder_find(&r, APSCHED_EVENT_JOB_EXECUTED, 0)].job_id, "alo");
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ERROR), 1);
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_string_equal(r.ev[e].job_id, "amo");
  assert_string_equal(r.ev[e].error, "the start of this run could not be recorded: server closed "
                                     "the connection unexpectedly");
  apsched_free(s);
  /* Both handed back: the failed one and the one that ran. */
  assert_non_null(strstr(shared.closed, "amo@0;"));
  assert_non_null(strstr(shared.closed, "alo@0;"));
  shared.down[0] = '\0';
  recorder_destroy(&r);
}

/* EBUSY from runs_open: the runs are skipped as MAX_INSTANCES, the job
 * still moves on to its next time, nothing is handed back. */
static void test_busy_across_schedulers_skips(void **state) {
  (void)state;
  shared.offset = 0;
  shared.lost[0] = '\0';
  snprintf(shared.busy, sizeof shared.busy, "busy");
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = open_sched(&fc, &r);
  add(s, "busy", T0, APSCHED_GRACE_UNLIMITED);
  assert_int_equal(apsched_process(s, NULL), APSCHED_OK);
  assert_int_equal(atomic_load(&job_runs), 0);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MAX_INSTANCES), 1);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_SUBMITTED), 0);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "busy", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + 10 * APSCHED_SEC);
  apsched_job_free(j);
  apsched_free(s);
  assert_string_equal(shared.closed, "");
  recorder_destroy(&r);
}

/* A shared store without the version 5 calls (runs_wait, claim_waiting,
 * runs_add) cannot keep a run waiting for another scheduler's: it refuses
 * the policies whose runs wait, at add and modify time, and runs on
 * demand, naming the job; nothing changes. */
static void test_waiting_refused_without_v5_calls(void **state) {
  (void)state;
  shared.offset = 0;
  shared.lost[0] = shared.busy[0] = '\0';
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = open_sched(&fc, &r);
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = {.id = "w", .func = shared_job, .trigger = t, .jobstore = "shared",
                           .overlap = APSCHED_OVERLAP_BUFFER_ONE};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "buffer_one"));
  assert_non_null(strstr(apsched_last_error(), "several schedulers share"));
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "w", NULL, &j), APSCHED_ENOENT);
  o.overlap = APSCHED_OVERLAP_SKIP;
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  apsched_job_changes c = {.overlap = APSCHED_OVERLAP_CANCEL_OTHER};
  assert_int_equal(apsched_modify_job(s, "w", NULL, &c), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "cancel_other"));
  assert_int_equal(apsched_get_job(s, "w", NULL, &j), APSCHED_OK);
  assert_int_equal(j->overlap, APSCHED_OVERLAP_SKIP);
  apsched_job_free(j);
  assert_int_equal(apsched_run_job_now(s, "w", NULL), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "several schedulers share"));
  assert_int_equal(apsched_backfill_job(s, "w", NULL, T0, T0 + APSCHED_MINUTE), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "several schedulers share"));
  assert_int_equal(atomic_load(&job_runs), 0);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_SUBMITTED), 0);
  apsched_free(s);
  recorder_destroy(&r);
}

/* A store of a version newer than this library's is refused. */
static void test_unknown_version_refused(void **state) {
  (void)state;
  apsched_scheduler *s;
  assert_int_equal(apsched_create(NULL, &s), APSCHED_OK);
  wrapped_store *w = wrapped_memory_store(0);
  w->vt.version = APSCHED_JOBSTORE_VTABLE_VERSION + 1;
  assert_int_equal(apsched_add_jobstore(s, &w->base, "future"), APSCHED_EINVAL);
  char want[64];
  snprintf(want, sizeof want, "this library knows version %d", APSCHED_JOBSTORE_VTABLE_VERSION);
  assert_non_null(strstr(apsched_last_error(), want));
  apsched_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_store_clock_decides),
      cmocka_unit_test(test_refused_start_does_not_run),
      cmocka_unit_test(test_unrecorded_start_by_delivery),
      cmocka_unit_test(test_busy_across_schedulers_skips),
      cmocka_unit_test(test_waiting_refused_without_v5_calls),
      cmocka_unit_test(test_unknown_version_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
