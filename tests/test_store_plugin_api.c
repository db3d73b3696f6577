/* What the core offers store plugins (apsched_plugin.h): their failure
 * messages reach apsched_last_error, aliases and function names are
 * interned for records read back, reports of undecodable jobs are
 * announced, and a broken job (an unparsed trigger) is kept, listed and
 * refused for every change but removal. Plus a rule every store gets from
 * the core: a job re-added with replace_existing and the same trigger keeps
 * its schedule. */
#include "support.h"
#include "wrapped_store.h"
#include "internal.h"

static void test_plugin_error_reaches_last_error(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  wrapped_store *w = wrapped_memory_store(0);
  assert_int_equal(apsched_add_jobstore(s, &w->base, "w"), APSCHED_OK);
  apsched_job_options o = {.id = "x", .func = count_job, .jobstore = "w", .paused = true};
  wrapped_fail_at(w, 1, false);
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_EBACKEND);
  assert_non_null(strstr(apsched_last_error(), "job store 'w'"));
  assert_non_null(strstr(apsched_last_error(), "injected failure of call 1"));
  wrapped_fail_at(w, 0, false);
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  wrapped_fail_at(w, 1, false);
  assert_int_equal(apsched_pause_job(s, "x", "w"), APSCHED_EBACKEND);
  assert_non_null(strstr(apsched_last_error(), "lookup failed"));
  assert_non_null(strstr(apsched_last_error(), "injected failure"));
  wrapped_fail_at(w, 0, false);
  apsched_free(s);
}

static void test_interning_for_stores(void **state) {
  (void)state;
  apsched_scheduler *s;
  assert_int_equal(apsched_create(NULL, &s), APSCHED_OK);
  char buf[16] = "pool";
  const char *a = apsched_intern_alias(s, buf);
  strcpy(buf, "xxxx");
  assert_string_equal(a, "pool");
  assert_ptr_equal(apsched_intern_alias(s, "pool"), a);
  assert_null(apsched_intern_alias(s, NULL));
  const apsched_func *f = apsched_func_by_name("plugin-api-not-yet");
  assert_non_null(f);
  assert_null(apsched_func_get(f));
  assert_ptr_equal(apsched_func_by_name("plugin-api-not-yet"), f);
  assert_int_equal(apsched_register_func("plugin-api-not-yet", count_job), APSCHED_OK);
  assert_ptr_equal(apsched_func_get(f), count_job);
  assert_null(apsched_func_by_name(""));
  apsched_free(s);
}

static void test_args_has_pointer(void **state) {
  (void)state;
  bool oom;
  int x;
  apsched_job_args *bytes = apsched__args_new(NULL, NULL, "ab", 2, &oom);
  apsched_job_args *ptr = apsched__args_new(&x, NULL, NULL, 0, &oom);
  apsched_job_args *both = apsched__args_new(&x, NULL, "ab", 2, &oom);
  assert_false(apsched_job_args_has_pointer(NULL));
  assert_false(apsched_job_args_has_pointer(bytes));
  assert_true(apsched_job_args_has_pointer(ptr));
  assert_true(apsched_job_args_has_pointer(both));
  apsched__args_unref(bytes);
  apsched__args_unref(ptr);
  apsched__args_unref(both);
}

static void test_store_report_is_announced(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  log_recorder logs = {.lock = PTHREAD_MUTEX_INITIALIZER};
  apsched_config cfg = {.log = record_log, .log_user_data = &logs};
  apsched_scheduler *s = hosted_scheduler(&fc, &r, &cfg);
  apsched_store_report(s, "default", "row-7", "unknown trigger kind 'lunar'");
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ERROR), 0); /* delivered by the loop */
  process(s);
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_true(e >= 0);
  assert_string_equal(r.ev[e].job_id, "row-7");
  assert_string_equal(r.ev[e].jobstore, "default");
  assert_string_equal(r.ev[e].error, "unknown trigger kind 'lunar'");
  assert_true(log_contains(&logs, "Job \"row-7\" in job store \"default\": unknown trigger kind 'lunar'"));
  apsched_store_report(s, "default", "row-8", "undelivered: freed with the scheduler");
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_broken_job_is_kept_and_only_removable(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  apsched_jobstore *st;
  assert_int_equal(apsched_memory_store_create(&st), APSCHED_OK);
  /* What a persistent store builds for a row it cannot decode. */
  apsched_job_record *rec = apsched__record_new("broken");
  assert_int_equal(apsched_trigger_unparsed("lunar[phase=full]", "unknown trigger kind 'lunar'",
                                            &rec->trigger), APSCHED_OK);
  rec->func = apsched_func_by_name("plugin-api-broken");
  rec->executor = "default";
  rec->max_instances = 1;
  rec->flags = APSCHED_JOB_BROKEN;
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "db"), APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "broken", NULL, &j), APSCHED_OK);
  assert_string_equal(j->broken, "unknown trigger kind 'lunar'");
  assert_string_equal(j->trigger, "lunar[phase=full]");
  assert_true(j->paused);
  apsched_job_free(j);
  assert_int_equal(apsched_resume_job(s, "broken", NULL), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "cannot be decoded (unknown trigger kind 'lunar')"));
  assert_int_equal(apsched_pause_job(s, "broken", NULL), APSCHED_EINVAL);
  apsched_job_changes c = {.name = "x"};
  assert_int_equal(apsched_modify_job(s, "broken", NULL, &c), APSCHED_EINVAL);
  apsched_trigger *t = every(APSCHED_SEC, T0);
  assert_int_equal(apsched_reschedule_job(s, "broken", NULL, t), APSCHED_EINVAL);
  fake_advance(&fc, APSCHED_HOUR);
  process(s); /* never fires */
  assert_int_equal(apsched_get_job(s, "broken", NULL, &j), APSCHED_OK);
  apsched_job_free(j);
  assert_int_equal(apsched_remove_job(s, "broken", NULL), APSCHED_OK);
  apsched_trigger_free(t);
  apsched_free(s);
}

static void test_unparsed_trigger(void **state) {
  (void)state;
  apsched_trigger *t, *c;
  assert_int_equal(apsched_trigger_unparsed("cron[hour='25']", "hour: 25 is above 23", &t), APSCHED_OK);
  assert_string_equal(apsched_trigger_kind(t), "unparsed");
  char text[64];
  apsched_trigger_describe(t, text, sizeof text);
  assert_string_equal(text, "cron[hour='25']");
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), APSCHED_TIME_NONE);
  assert_int_equal(apsched_trigger_clone(t, &c), APSCHED_OK);
  assert_true(apsched_trigger_equal(t, c));
  assert_string_equal(apsched_trigger_unparsed_why(c), "hour: 25 is above 23");
  apsched_trigger *other = every(APSCHED_SEC, T0);
  assert_null(apsched_trigger_unparsed_why(other));
  assert_int_equal(apsched_trigger_unparsed(NULL, "x", &t), APSCHED_EINVAL);
  apsched_trigger_free(other);
  apsched_trigger_free(c);
  apsched_trigger_free(t);
}

/* The seeds' pattern: jobs added with replace_existing at every start. An
 * unchanged trigger keeps the stored schedule; a changed one starts anew. */
static void test_replace_existing_keeps_an_unchanged_schedule(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  counter c = {0};
  apsched_trigger *hourly = every(APSCHED_HOUR, T0 + APSCHED_HOUR);
  apsched_job_options o = {.id = "report", .func = count_job, .arg = &c, .trigger = hourly,
                           .replace_existing = true};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  fake_advance(&fc, APSCHED_HOUR);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "report", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + 2 * APSCHED_HOUR);
  apsched_job_free(j);
  /* Re-added unchanged: the next run stays where it was. */
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_get_job(s, "report", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + 2 * APSCHED_HOUR);
  apsched_job_free(j);
  /* Re-added with another trigger: recomputed from it. */
  apsched_trigger *daily = every(APSCHED_DAY, T0 + APSCHED_DAY);
  o.trigger = daily;
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_get_job(s, "report", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + APSCHED_DAY);
  apsched_job_free(j);
  /* An explicit next_run_time always wins. */
  o.next_run_time = T0 + 3 * APSCHED_HOUR;
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_get_job(s, "report", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + 3 * APSCHED_HOUR);
  apsched_job_free(j);
  apsched_trigger_free(hourly);
  apsched_trigger_free(daily);
  apsched_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plugin_error_reaches_last_error),
      cmocka_unit_test(test_interning_for_stores),
      cmocka_unit_test(test_args_has_pointer),
      cmocka_unit_test(test_store_report_is_announced),
      cmocka_unit_test(test_broken_job_is_kept_and_only_removable),
      cmocka_unit_test(test_unparsed_trigger),
      cmocka_unit_test(test_replace_existing_keeps_an_unchanged_schedule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
