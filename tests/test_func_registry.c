/* The function registry: a job restored with only a function name waits
 * (its runs skipped) until apsched_register_func resolves the name, which may
 * happen while the scheduler loop is reading the entry (run under TSan). */
#include "support.h"

#include "apsched_plugin.h"
#include "internal.h"

static atomic_int late_runs;

static int late_fn(apsched_run_ctx *run) {
  (void)run;
  atomic_fetch_add(&late_runs, 1);
  return 0;
}

static int other_fn(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

/* A job as a persistent store would restore it: its function known by name
 * only (the entry exists, unresolved), due every 10 ms from now. */
static apsched_jobstore *store_with_restored_job(const char *id, const char *func_name) {
  apsched_jobstore *st;
  assert_int_equal(apsched_memory_store_create(&st), APSCHED_OK);
  apsched_job_record *rec = apsched__record_new(id);
  assert_non_null(rec);
  rec->func = apsched__func_by_name(func_name, true);
  assert_non_null(rec->func);
  assert_null(rec->func->fn); /* no other thread yet */
  apsched_time_t now = apsched_now();
  apsched_interval_options io = {.microseconds = 10 * APSCHED_MSEC, .start_date = now};
  assert_int_equal(apsched_trigger_interval(&io, &rec->trigger, NULL, 0), APSCHED_OK);
  rec->next_run_time = rec->trigger_time = now;
  rec->executor = "default";
  rec->max_instances = 1;
  rec->misfire_grace_ms = UINT32_MAX;
  rec->flags = APSCHED_JOB_COALESCE;
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  return st;
}

/* Issue 7, defect 8: apsched_register_func stored the function into an
 * entry the loop was reading under another lock (a data race under TSan). */
static void test_register_resolves_restored_job_while_loop_reads(void **state) {
  (void)state;
  atomic_store(&late_runs, 0);
  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_JOB_ERROR |
                                                             APSCHED_EVENT_JOB_EXECUTED,
                                        &r, NULL),
                   APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, store_with_restored_job("restored", "late_fn"), "default"),
                   APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  /* The loop has looked at the unresolved entry (and skipped the runs)... */
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 3));
  int k = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_non_null(strstr(r.ev[k].error, "\"late_fn\" is not registered"));
  assert_int_equal(atomic_load(&late_runs), 0);
  /* ...and keeps reading it while this thread resolves it. */
  assert_int_equal(apsched_register_func("late_fn", late_fn), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  assert_true(atomic_load(&late_runs) >= 1);
  int e = recorder_find(&r, APSCHED_EVENT_JOB_EXECUTED, 0);
  assert_string_equal(r.ev[e].job_id, "restored");
  apsched_free(s);
  recorder_destroy(&r);
  /* Resolved for good: the same function again is fine, another is not. */
  assert_int_equal(apsched_register_func("late_fn", late_fn), APSCHED_OK);
  assert_int_equal(apsched_register_func("late_fn", other_fn), APSCHED_EEXIST);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_register_resolves_restored_job_while_loop_reads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
