/* The job API: add (ids, pending, duplicates, replace_existing), remove,
 * pause/resume, modify (all-or-nothing), reschedule, get/print, and every
 * bad argument refused without changing anything. */
#include "support.h"

#include "scheduler_internal.h"

#include <malloc.h>

static int noop_job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

static apsched_scheduler *stopped_scheduler(fake_clock *fc, recorder *r) {
  apsched_config cfg = {.clock = &fc->clock, .timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  if (r) assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, r, NULL), APSCHED_OK);
  return s;
}

static void test_generated_ids(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  char a[33], b[33];
  apsched_job_options o = {.func = noop_job, .paused = true};
  assert_int_equal(apsched_add_job(s, &o, a, sizeof a), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &o, b, sizeof b), APSCHED_OK);
  assert_int_equal(strlen(a), 32);
  assert_string_not_equal(a, b);
  for (int i = 0; i < 32; i++) assert_non_null(strchr("0123456789abcdef", a[i]));
  assert_int_equal(a[12], '7'); /* UUID version 7: time first */
  assert_non_null(strchr("89ab", a[16])); /* RFC 4122 variant */
  /* Digits 13-15 are the fraction of the millisecond: b, made after a,
   * sorts after it in its first 16 digits too. */
  assert_true(memcmp(a, b, 16) <= 0);
  /* Ids made later sort later (the first 12 digits are the time in ms), so
   * persistent stores insert them near the end of their index. */
  struct timespec two_ms = {0, 2000000};
  nanosleep(&two_ms, NULL);
  char c[33];
  assert_int_equal(apsched_add_job(s, &o, c, sizeof c), APSCHED_OK);
  assert_true(memcmp(a, c, 12) < 0);
  uint64_t ms = 0;
  for (int i = 0; i < 12; i++) ms = ms * 16 + (uint64_t)(strchr("0123456789abcdef", c[i]) - "0123456789abcdef");
  int64_t now_ms = apsched_now() / 1000;
  assert_true((int64_t)ms <= now_ms && (int64_t)ms > now_ms - 60000);
  char small[10];
  assert_int_equal(apsched_add_job(s, &o, small, sizeof small), APSCHED_EINVAL);
  size_t n;
  apsched_job *jobs;
  assert_int_equal(apsched_get_jobs(s, NULL, &jobs, &n), APSCHED_OK);
  assert_int_equal(n, 3); /* the refused add changed nothing */
  apsched_jobs_free(jobs, n);
  apsched_free(s);
}

/* Ids are checked eight bytes at a time: a control character is refused
 * wherever it sits (in a full word or in the tail), and every byte from
 * 0x20 up except 0x7f is allowed (UTF-8 included). */
static void test_ids_with_control_characters_refused(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  const unsigned char bad[] = {0x01, 0x09, 0x0a, 0x1f, 0x7f};
  char id[48];
  for (size_t len = 1; len < sizeof id; len += 5) {
    for (size_t pos = 0; pos < len; pos++) {
      for (size_t k = 0; k < sizeof bad; k++) {
        memset(id, 'x', len);
        id[len] = '\0';
        id[pos] = (char)bad[k];
        apsched_job_options o = {.id = id, .func = noop_job, .paused = true};
        assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_EINVAL);
      }
    }
  }
  const unsigned char good[] = {0x20, 0x7e, 0x80, 0xc3, 0xff};
  int added = 0;
  for (size_t k = 0; k < sizeof good; k++) {
    for (size_t pos = 0; pos < 20; pos += 9) {
      snprintf(id, sizeof id, "id-%zu-%zu-padding-padding", k, pos);
      id[pos] = (char)good[k];
      apsched_job_options o = {.id = id, .func = noop_job, .paused = true};
      assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
      added++;
    }
  }
  size_t n;
  apsched_job *jobs;
  assert_int_equal(apsched_get_jobs(s, NULL, &jobs, &n), APSCHED_OK);
  assert_int_equal(n, (size_t)added);
  apsched_jobs_free(jobs, n);
  apsched_free(s);
}

static void test_pending_jobs_and_duplicates(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = stopped_scheduler(&fc, &r);
  apsched_trigger *t = every(10 * APSCHED_SEC, 0);
  apsched_job_options o = {.id = "a", .func = noop_job, .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  /* A duplicate among pending jobs is refused at add time. */
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_EEXIST);
  o.replace_existing = true;
  o.name = "replaced";
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "a", NULL, &j), APSCHED_OK);
  assert_true(j->pending);
  assert_string_equal(j->name, "replaced");
  assert_string_equal(j->jobstore, "default");
  apsched_job_free(j);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ADDED), 0); /* not until start */
  /* The first run time is computed at start, from the interval's start. */
  fake_advance(&fc, 100 * APSCHED_SEC);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "default"), APSCHED_OK);
  assert_int_equal(apsched_start_hosted(s, true), APSCHED_OK);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ADDED), 1);
  assert_int_equal(apsched_get_job(s, "a", NULL, &j), APSCHED_OK);
  assert_false(j->pending);
  /* start_date was bound at add time (T0 + 10 s); the first run is the
   * first slot of that grid at or after the start (T0 + 100 s). */
  assert_int_equal(j->next_run_time, T0 + 100 * APSCHED_SEC);
  apsched_job_free(j);
  o.replace_existing = false;
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_EEXIST);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_pending_and_paused_listing(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = stopped_scheduler(&fc, NULL);
  apsched_job_options a = {.id = "a", .func = noop_job};
  apsched_job_options b = {.id = "b", .func = noop_job, .paused = true};
  assert_int_equal(apsched_add_job(s, &a, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &b, NULL, 0), APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "a", NULL, &j), APSCHED_OK);
  assert_true(j->pending);
  assert_false(j->paused);
  apsched_job_free(j);
  assert_int_equal(apsched_get_job(s, "b", NULL, &j), APSCHED_OK);
  assert_true(j->paused);
  apsched_job_free(j);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_int_equal(apsched_print_jobs(s, NULL, f), APSCHED_OK);
  fclose(f);
  assert_non_null(strstr(text, "Pending jobs:\n    a (trigger: date[run_date='2026-01-01T00:00:00Z'], pending)\n"));
  assert_non_null(strstr(text, "    b (trigger: date[run_date='2026-01-01T00:00:00Z'], paused)\n"));
  free(text);
  apsched_free(s);
}

static void test_bad_arguments_change_nothing(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  apsched_job_options ok = {.id = "ok", .func = noop_job, .paused = true};
  assert_int_equal(apsched_add_job(s, &ok, NULL, 0), APSCHED_OK);
  char long_id[APSCHED_ID_MAX + 2];
  memset(long_id, 'x', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  apsched_job_options bad[] = {
      {.id = "nofunc"},
      {.id = "", .func = noop_job},
      {.id = long_id, .func = noop_job},
      {.id = "ctl\n", .func = noop_job},
      {.id = "neg", .func = noop_job, .max_instances = -1},
      {.id = "big", .func = noop_job, .max_instances = APSCHED_MAX_INSTANCES_LIMIT + 1},
      {.id = "grace", .func = noop_job, .misfire_grace_time = -5},
      {.id = "coal", .func = noop_job, .coalesce = (apsched_flag)7},
      {.id = "bytes", .func = noop_job, .arg_len = 4},
      {.id = "unreg", .func_name = "no_such_function"},
      {.id = "both", .func = noop_job, .next_run_time = T0, .paused = true},
      {.id = "emptyname", .func = noop_job, .name = ""},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(apsched_add_job(s, &bad[i], NULL, 0), APSCHED_EINVAL);
  /* Each failure says what was wrong. */
  assert_int_equal(apsched_add_job(s, &bad[4], NULL, 0), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(), "max_instances: -1 is outside 1..65535");
  assert_int_equal(apsched_add_job(s, &bad[9], NULL, 0), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(), "func_name: no function is registered as 'no_such_function'");
  assert_int_equal(apsched_add_job(s, &bad[0], NULL, 0), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(), "func: no function given (func or func_name)");
  assert_int_equal(apsched_add_job(s, &ok, NULL, 0), APSCHED_EEXIST);
  assert_string_equal(apsched_last_error(), "id: 'ok' is already used by a job in 'default'");
  apsched_job_options nostore = {.id = "ns", .func = noop_job, .jobstore = "nope"};
  assert_int_equal(apsched_add_job(s, &nostore, NULL, 0), APSCHED_ENOENT);
  assert_string_equal(apsched_last_error(), "jobstore: no job store 'nope'");
  /* A trigger that never fires cannot be added to a running scheduler. */
  apsched_interval_options io = {.seconds = 1, .start_date = T0 - 10 * APSCHED_SEC,
                                 .end_date = T0 - 5 * APSCHED_SEC};
  apsched_trigger *done;
  assert_int_equal(apsched_trigger_interval(&io, &done, NULL, 0), APSCHED_OK);
  apsched_job_options never = {.id = "never", .func = noop_job, .trigger = done};
  assert_int_equal(apsched_add_job(s, &never, NULL, 0), APSCHED_EINVAL);
  apsched_trigger_free(done);
  size_t n;
  apsched_job *jobs;
  assert_int_equal(apsched_get_jobs(s, NULL, &jobs, &n), APSCHED_OK);
  assert_int_equal(n, 1);
  apsched_jobs_free(jobs, n);
  assert_int_equal(apsched_remove_job(s, "missing", NULL), APSCHED_ENOENT);
  assert_int_equal(apsched_pause_job(s, "missing", NULL), APSCHED_ENOENT);
  assert_int_equal(apsched_resume_job(s, "missing", NULL), APSCHED_ENOENT);
  assert_int_equal(apsched_remove_job(s, "ok", "otherstore"), APSCHED_ENOENT);
  assert_string_equal(apsched_last_error(), "no job 'ok' in job store 'otherstore'");
  assert_int_equal(apsched_remove_job(s, NULL, NULL), APSCHED_EINVAL);
  apsched_free(s);
}

static void test_pause_resume_remove(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  counter c = {0};
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options o = {.id = "p", .func = count_job, .arg = &c, .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_pause_job(s, "p", NULL), APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "p", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, APSCHED_TIME_NONE);
  apsched_job_free(j);
  fake_advance(&fc, 25 * APSCHED_SEC);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 0);
  /* Resuming computes the next run time from now: T0+30 s. */
  assert_int_equal(apsched_resume_job(s, "p", NULL), APSCHED_OK);
  assert_int_equal(apsched_get_job(s, "p", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + 30 * APSCHED_SEC);
  apsched_job_free(j);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MODIFIED), 2);
  assert_int_equal(apsched_remove_job(s, "p", "default"), APSCHED_OK);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_REMOVED), 1);
  assert_int_equal(apsched_remove_job(s, "p", NULL), APSCHED_ENOENT);
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

static void free_int(void *p) { free(p); }

static void test_modify_all_or_nothing(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  apsched_job_options o = {.id = "m", .name = "before", .func = noop_job, .max_instances = 3,
                           .paused = true};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  /* One bad field: nothing changes, not even the valid ones. */
  apsched_job_changes bad = {.name = "after", .max_instances = 5, .misfire_grace_time = -1};
  assert_int_equal(apsched_modify_job(s, "m", NULL, &bad), APSCHED_EINVAL);
  apsched_job_changes bad2 = {.name = "after", .func_name = "not_registered"};
  assert_int_equal(apsched_modify_job(s, "m", NULL, &bad2), APSCHED_EINVAL);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "m", NULL, &j), APSCHED_OK);
  assert_string_equal(j->name, "before");
  assert_int_equal(j->max_instances, 3);
  apsched_job_free(j);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MODIFIED), 0);
  int *payload = malloc(sizeof *payload);
  *payload = 42;
  /* A running scheduler refuses an executor that does not exist (ENOENT), as add_job does. */
  apsched_job_changes unknown = {.executor = "other"};
  assert_int_equal(apsched_modify_job(s, "m", NULL, &unknown), APSCHED_ENOENT);
  assert_non_null(strstr(apsched_last_error(), "no executor 'other'"));
  apsched_executor *other;
  assert_int_equal(apsched_inline_executor_create(&other), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, other, "other"), APSCHED_OK);
  apsched_job_changes good = {.name = "after", .max_instances = 5, .coalesce = APSCHED_NO,
                              .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .executor = "other",
                              .set_arg = true, .arg = payload, .arg_free = free_int,
                              .next_run_time = T0 + APSCHED_HOUR};
  assert_int_equal(apsched_modify_job(s, "m", NULL, &good), APSCHED_OK);
  assert_int_equal(apsched_get_job(s, "m", NULL, &j), APSCHED_OK);
  assert_string_equal(j->name, "after");
  assert_int_equal(j->max_instances, 5);
  assert_false(j->coalesce);
  assert_int_equal(j->misfire_grace_time, APSCHED_GRACE_UNLIMITED);
  assert_string_equal(j->executor, "other");
  assert_int_equal(j->next_run_time, T0 + APSCHED_HOUR);
  apsched_job_free(j);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_MODIFIED), 1);
  assert_int_equal(apsched_modify_job(s, "nope", NULL, &good), APSCHED_ENOENT);
  apsched_free(s); /* frees payload through arg_free (checked by ASan) */
  recorder_destroy(&r);
}

static void test_reschedule(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  apsched_trigger *t1 = every(APSCHED_HOUR, 0), *t2 = every(APSCHED_MINUTE, 0);
  apsched_job_options o = {.id = "r", .func = noop_job, .trigger = t1};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_reschedule_job(s, "r", NULL, t2), APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "r", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + APSCHED_MINUTE);
  assert_non_null(strstr(j->trigger, "interval[minutes=1"));
  apsched_job_free(j);
  assert_int_equal(apsched_reschedule_job(s, "zz", NULL, t2), APSCHED_ENOENT);
  apsched_trigger_free(t1);
  apsched_trigger_free(t2);
  apsched_free(s);
}

/* Whether rec's trigger lies inside rec's own malloc chunk. */
static bool trigger_in_record(const apsched_job_record *rec) {
  uintptr_t start = (uintptr_t)rec, t = (uintptr_t)rec->trigger;
  return t > start && t < start + malloc_usable_size((void *)rec);
}

static const apsched_job_record *stored(apsched_jobstore *st, const char *id) {
  const apsched_job_record *rec;
  assert_int_equal(st->vtable->lookup(st, id, &rec), APSCHED_OK);
  return rec;
}

/* An interval or date job keeps its trigger in its record's allocation (one
 * malloc chunk per job: bench_scheduler --only=memory); other kinds and
 * triggers replaced later are allocated on their own. Every way a record's
 * trigger is copied, replaced or freed keeps it owned once (ASan's build
 * reports a bad or double free otherwise), and the jobs still fire by it. */
static void test_flat_triggers_live_in_their_records(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  apsched_jobstore *st;
  assert_int_equal(apsched_memory_store_create(&st), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "mem"), APSCHED_OK);
  apsched_trigger *hourly = every(APSCHED_HOUR, 0), *minutely = every(APSCHED_MINUTE, 0), *at, *cron;
  assert_int_equal(apsched_trigger_date(&(apsched_date_options){.run_date = T0 + APSCHED_HOUR}, &at),
                   APSCHED_OK);
  char err[128];
  assert_int_equal(apsched_trigger_crontab("*/5 * * * *", "UTC", &cron, err, sizeof err), APSCHED_OK);
  const char *ids[] = {"interval", "date", "cron"};
  apsched_trigger *triggers[] = {hourly, at, cron};
  for (int i = 0; i < 3; i++) {
    apsched_job_options o = {.id = ids[i], .func = noop_job, .trigger = triggers[i], .jobstore = "mem"};
    assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  }
  assert_true(trigger_in_record(stored(st, "interval")));
  assert_true(trigger_in_record(stored(st, "date")));
  assert_false(trigger_in_record(stored(st, "cron")));
  /* A copy (as stores make with apsched_job_record_copy) has its own. */
  apsched_job_record *copy = apsched_job_record_copy(stored(st, "interval"));
  assert_non_null(copy);
  assert_true(trigger_in_record(copy));
  assert_true(copy->trigger->vtable->equal(copy->trigger, stored(st, "interval")->trigger));
  apsched_job_record_free(copy);
  /* Replaced by a cron trigger, then by an interval again. */
  assert_int_equal(apsched_reschedule_job(s, "interval", "mem", cron), APSCHED_OK);
  assert_false(trigger_in_record(stored(st, "interval")));
  assert_int_equal(apsched_reschedule_job(s, "interval", "mem", minutely), APSCHED_OK);
  apsched_job_changes c = {.trigger = hourly};
  assert_int_equal(apsched_modify_job(s, "date", "mem", &c), APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "interval", "mem", &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + APSCHED_MINUTE);
  apsched_job_free(j);
  assert_int_equal(apsched_get_job(s, "date", "mem", &j), APSCHED_OK);
  assert_non_null(strstr(j->trigger, "interval[hours=1"));
  apsched_job_free(j);
  /* A change that keeps the trigger copies it along, still inline. */
  c = (apsched_job_changes){.max_instances = 3};
  assert_int_equal(apsched_modify_job(s, "cron", "mem", &c), APSCHED_OK);
  assert_int_equal(apsched_reschedule_job(s, "cron", "mem", hourly), APSCHED_OK);
  assert_int_equal(apsched_modify_job(s, "cron", "mem", &(apsched_job_changes){.max_instances = 2}),
                   APSCHED_OK);
  assert_true(trigger_in_record(stored(st, "cron")));
  assert_int_equal(apsched_remove_job(s, "date", "mem"), APSCHED_OK);
  apsched_trigger_free(hourly);
  apsched_trigger_free(minutely);
  apsched_trigger_free(at);
  apsched_trigger_free(cron);
  apsched_free(s);
}

static void test_get_jobs_order_and_print(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  apsched_jobstore *st;
  assert_int_equal(apsched_memory_store_create(&st), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "second"), APSCHED_OK);
  apsched_trigger *late = every(APSCHED_HOUR, 0), *soon = every(APSCHED_MINUTE, 0);
  apsched_job_options a = {.id = "late", .func = noop_job, .trigger = late};
  apsched_job_options b = {.id = "soon", .func = noop_job, .trigger = soon, .jobstore = "second"};
  apsched_job_options c = {.id = "paused", .func = noop_job, .trigger = soon, .paused = true};
  assert_int_equal(apsched_add_job(s, &a, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &b, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &c, NULL, 0), APSCHED_OK);
  apsched_job *jobs;
  size_t n;
  assert_int_equal(apsched_get_jobs(s, NULL, &jobs, &n), APSCHED_OK);
  assert_int_equal(n, 3);
  assert_string_equal(jobs[0].id, "soon");
  assert_string_equal(jobs[1].id, "late");
  assert_string_equal(jobs[2].id, "paused");
  apsched_jobs_free(jobs, n);
  assert_int_equal(apsched_get_jobs(s, "second", &jobs, &n), APSCHED_OK);
  assert_int_equal(n, 1);
  apsched_jobs_free(jobs, n);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_int_equal(apsched_print_jobs(s, NULL, f), APSCHED_OK);
  fclose(f);
  assert_non_null(strstr(text, "Jobstore default:\n"));
  assert_non_null(strstr(text, "Jobstore second:\n"));
  assert_non_null(strstr(text, "    soon (trigger: interval[minutes=1, start_date='2026-01-01T00:01:00Z'], next run at: 2026-01-01T00:01:00Z)"));
  assert_non_null(strstr(text, "    paused (trigger: interval[minutes=1"));
  assert_non_null(strstr(text, "paused)\n"));
  free(text);
  assert_int_equal(apsched_remove_all_jobs(s, "second"), APSCHED_OK);
  assert_int_equal(apsched_get_jobs(s, NULL, &jobs, &n), APSCHED_OK);
  assert_int_equal(n, 2);
  apsched_jobs_free(jobs, n);
  assert_int_equal(apsched_remove_all_jobs(s, NULL), APSCHED_OK);
  assert_int_equal(apsched_get_jobs(s, NULL, &jobs, &n), APSCHED_OK);
  assert_int_equal(n, 0);
  apsched_jobs_free(jobs, n);
  assert_int_equal(apsched_remove_all_jobs(s, "nope"), APSCHED_ENOENT);
  apsched_trigger_free(late);
  apsched_trigger_free(soon);
  apsched_free(s);
}

static int named_job(apsched_run_ctx *run) {
  counter *c = apsched_run_arg(run);
  atomic_fetch_add(&c->runs, 1);
  return 0;
}

static void test_registered_function_by_name(void **state) {
  (void)state;
  assert_int_equal(apsched_register_func("test.named_job", named_job), APSCHED_OK);
  assert_int_equal(apsched_register_func("test.named_job", named_job), APSCHED_OK);
  assert_int_equal(apsched_register_func("test.named_job", noop_job), APSCHED_EEXIST);
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  counter c = {0};
  apsched_job_options o = {.id = "n", .func_name = "test.named_job", .arg = &c};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "n", NULL, &j), APSCHED_OK);
  assert_string_equal(j->func_name, "test.named_job");
  assert_string_equal(j->name, "test.named_job"); /* default name */
  apsched_job_free(j);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1);
  apsched_free(s);
}

static int bytes_job(apsched_run_ctx *run) {
  size_t len;
  const char *b = apsched_run_arg_bytes(run, &len);
  counter *c = apsched_run_arg(run);
  if (len == 5 && memcmp(b, "hello", 5) == 0) atomic_fetch_add(&c->runs, 1);
  return 0;
}

static void test_byte_arguments_are_copied(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  counter c = {0};
  char buf[6] = "hello";
  apsched_job_options o = {.id = "b", .func = bytes_job, .arg = &c, .arg_bytes = buf, .arg_len = 5};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  memcpy(buf, "xxxxx", 5);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1);
  apsched_free(s);
}

/* A batch the store refuses (an id it holds) reports which job failed, and
 * adds none of them. */
static void test_batch_failed_index_from_store(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  apsched_job_options held = {.id = "held", .func = noop_job};
  assert_int_equal(apsched_add_job(s, &held, NULL, 0), APSCHED_OK);
  apsched_job_options batch[3] = {{.id = "new1", .func = noop_job},
                                   {.id = "new2", .func = noop_job},
                                   {.id = "held", .func = noop_job}};
  size_t failed = 99;
  assert_int_equal(apsched_add_jobs(s, batch, 3, &failed), APSCHED_EEXIST);
  assert_int_equal(failed, 2);
  assert_non_null(strstr(apsched_last_error(), "'held'"));
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "new1", NULL, &j), APSCHED_ENOENT);
  apsched_free(s);
}

/* Snapshots carry a copy of the byte argument (what an export needs), for
 * pending and stored jobs; a job without one shows NULL. */
static void test_snapshots_show_byte_arguments(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = stopped_scheduler(&fc, NULL);
  counter c = {0};
  const char bytes[4] = {'a', '\0', 'b', '\xff'};
  apsched_job_options with = {.id = "with", .func = noop_job, .arg = &c, .arg_bytes = bytes,
                              .arg_len = sizeof bytes};
  apsched_job_options without = {.id = "without", .func = noop_job, .arg = &c};
  assert_int_equal(apsched_add_job(s, &with, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &without, NULL, 0), APSCHED_OK);
  for (int round = 0; round < 2; round++) { /* pending, then stored */
    apsched_job *j;
    assert_int_equal(apsched_get_job(s, "with", NULL, &j), APSCHED_OK);
    assert_int_equal(j->pending, round == 0);
    assert_int_equal(j->arg_len, sizeof bytes);
    assert_memory_equal(j->arg_bytes, bytes, sizeof bytes);
    apsched_job_free(j);
    apsched_job *all;
    size_t n;
    assert_int_equal(apsched_get_jobs(s, NULL, &all, &n), APSCHED_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
      bool has = strcmp(all[i].id, "with") == 0;
      assert_int_equal(all[i].arg_len, has ? sizeof bytes : 0);
      if (has) assert_memory_equal(all[i].arg_bytes, bytes, sizeof bytes);
      else assert_null(all[i].arg_bytes);
    }
    apsched_jobs_free(all, n);
    if (round == 0) assert_int_equal(apsched_start_hosted(s, true), APSCHED_OK);
  }
  apsched_free(s);
}

/* Argument destructors are user code: they must never run under the
 * scheduler's lock (they may call back into the scheduler). */
static apsched_scheduler *destructor_sched;
static int destructor_calls, destructor_locked;

static void checking_free(void *p) {
  (void)p;
  destructor_calls++;
  if (pthread_mutex_trylock(&destructor_sched->lock) == 0) pthread_mutex_unlock(&destructor_sched->lock);
  else {
    destructor_locked++;
    return; /* calling in would deadlock */
  }
  apsched_job *jobs;
  size_t n;
  if (apsched_get_jobs(destructor_sched, NULL, &jobs, &n) == APSCHED_OK) apsched_jobs_free(jobs, n);
}

/* The delivery choice: kept, shown, changed by modify, bad values refused
 * without a change. */
static void test_delivery_option(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  apsched_job_options o = {.id = "j", .func = noop_job, .paused = true, .delivery = 7};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "delivery: 7 is not"));
  o.delivery = APSCHED_DELIVERY_DEFAULT;
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "j", NULL, &j), APSCHED_OK);
  assert_int_equal(j->delivery, APSCHED_AT_MOST_ONCE);
  apsched_job_free(j);
  apsched_job_changes c = {.delivery = APSCHED_AT_LEAST_ONCE};
  assert_int_equal(apsched_modify_job(s, "j", NULL, &c), APSCHED_OK);
  assert_int_equal(apsched_get_job(s, "j", NULL, &j), APSCHED_OK);
  assert_int_equal(j->delivery, APSCHED_AT_LEAST_ONCE);
  apsched_job_free(j);
  c.delivery = -1;
  c.name = "renamed";
  assert_int_equal(apsched_modify_job(s, "j", NULL, &c), APSCHED_EINVAL);
  assert_int_equal(apsched_get_job(s, "j", NULL, &j), APSCHED_OK);
  assert_int_equal(j->delivery, APSCHED_AT_LEAST_ONCE);
  assert_string_not_equal(j->name, "renamed");
  apsched_job_free(j);
  c = (apsched_job_changes){.delivery = APSCHED_AT_MOST_ONCE};
  assert_int_equal(apsched_modify_job(s, "j", NULL, &c), APSCHED_OK);
  assert_int_equal(apsched_get_job(s, "j", NULL, &j), APSCHED_OK);
  assert_int_equal(j->delivery, APSCHED_AT_MOST_ONCE);
  apsched_job_free(j);
  apsched_free(s);
}

static void test_arg_destructor_outside_lock(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  destructor_sched = s;
  destructor_calls = destructor_locked = 0;
  int dummy;
  apsched_job_options a = {.id = "a", .func = noop_job, .arg = &dummy, .arg_free = checking_free, .paused = true};
  apsched_job_options b = {.id = "b", .func = noop_job, .arg = &dummy, .arg_free = checking_free, .paused = true};
  apsched_job_options c = {.id = "c", .func = noop_job, .arg = &dummy, .arg_free = checking_free};
  assert_int_equal(apsched_add_job(s, &a, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &b, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &c, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_remove_job(s, "a", NULL), APSCHED_OK);   /* store remove */
  assert_int_equal(destructor_calls, 1);
  process(s);                                                       /* finished trigger: release + remove */
  assert_int_equal(destructor_calls, 2);
  assert_int_equal(apsched_remove_all_jobs(s, NULL), APSCHED_OK);   /* remove_all */
  assert_int_equal(destructor_calls, 3);
  assert_int_equal(destructor_locked, 0);
  apsched_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_generated_ids),
      cmocka_unit_test(test_ids_with_control_characters_refused),
      cmocka_unit_test(test_delivery_option),
      cmocka_unit_test(test_pending_jobs_and_duplicates),
      cmocka_unit_test(test_pending_and_paused_listing),
      cmocka_unit_test(test_bad_arguments_change_nothing),
      cmocka_unit_test(test_pause_resume_remove),
      cmocka_unit_test(test_modify_all_or_nothing),
      cmocka_unit_test(test_reschedule),
      cmocka_unit_test(test_flat_triggers_live_in_their_records),
      cmocka_unit_test(test_get_jobs_order_and_print),
      cmocka_unit_test(test_registered_function_by_name),
      cmocka_unit_test(test_byte_arguments_are_copied),
      cmocka_unit_test(test_snapshots_show_byte_arguments),
      cmocka_unit_test(test_batch_failed_index_from_store),
      cmocka_unit_test(test_arg_destructor_outside_lock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
