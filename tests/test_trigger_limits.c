/* Triggers and times at the ends of apsched_time_t: extreme but accepted
 * input gives exact answers, "no time" or a clear error, and never signed
 * overflow. Meant to run under -fsanitize=undefined with
 * -fno-sanitize-recover (build-a-asan), where any overflow aborts. */
#include "support.h"

#include "apsched_plugin.h"

#define TMIN (INT64_MIN + 1) /* the earliest time; INT64_MIN is APSCHED_TIME_NONE */
#define TMAX INT64_MAX

static apsched_trigger *interval_ok(const apsched_interval_options *o) {
  apsched_trigger *t = NULL;
  char err[256] = "";
  if (apsched_trigger_interval(o, &t, err, sizeof err) != APSCHED_OK) fail_msg("interval: %s", err);
  return t;
}

static void interval_fails(const apsched_interval_options *o, const char *message) {
  apsched_trigger *t = NULL;
  char err[256] = "";
  assert_int_equal(apsched_trigger_interval(o, &t, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, message);
  assert_string_equal(apsched_last_error(), message);
  assert_null(t);
}

/* Text out and back in: the same trigger. */
static void round_trip(const apsched_trigger *t) {
  char text[512];
  int n = apsched_trigger_describe(t, text, sizeof text);
  assert_true(n > 0 && (size_t)n < sizeof text);
  apsched_trigger *back = NULL;
  char err[256] = "";
  if (apsched_trigger_parse(text, &back, err, sizeof err) != APSCHED_OK)
    fail_msg("'%s': %s", text, err);
  assert_true(apsched_trigger_equal(t, back));
  apsched_trigger_free(back);
}

static void test_interval_longest(void **state) {
  (void)state;
  apsched_interval_options o = {.microseconds = INT64_MAX};
  apsched_trigger *t = interval_ok(&o);
  /* Unbound: as if created at now, so the first run is now + interval. */
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, 0), TMAX);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, 1), APSCHED_TIME_NONE);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMAX), APSCHED_TIME_NONE);
  /* From the earliest now: runs at 0 and at INT64_MAX. */
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMIN), 0);
  assert_int_equal(apsched_trigger_next(t, 0, TMIN), TMAX);
  assert_int_equal(apsched_trigger_next(t, TMAX - 1, TMIN), TMAX);
  assert_int_equal(apsched_trigger_next(t, TMAX, TMIN), APSCHED_TIME_NONE);
  round_trip(t);
  /* Bound at a time whose first run would be past the end of time: it
   * stays unbound and never fires, rather than wrapping around to the past. */
  t->vtable->bind(t, T0);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), APSCHED_TIME_NONE);
  assert_int_equal(apsched_trigger_next(t, T0, T0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);

  /* Bound where it just fits. */
  assert_int_equal(apsched_trigger_interval(&o, &t, NULL, 0), APSCHED_OK);
  t->vtable->bind(t, 0);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), TMAX);
  assert_int_equal(apsched_trigger_next(t, TMAX, T0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);

  /* The sum of the unit fields must fit too. */
  apsched_interval_options weeks = {.weeks = INT64_MAX / APSCHED_WEEK + 1};
  char msg[128];
  snprintf(msg, sizeof msg, "interval: weeks=%lld is too large", (long long)weeks.weeks);
  interval_fails(&weeks, msg);
  apsched_interval_options sum = {.days = INT64_MAX / APSCHED_DAY,
                                  .hours = INT64_MAX / APSCHED_HOUR / 2};
  snprintf(msg, sizeof msg, "interval: hours=%lld is too large", (long long)sum.hours);
  interval_fails(&sum, msg);
  apsched_interval_options us = {.seconds = 1, .microseconds = INT64_MAX};
  snprintf(msg, sizeof msg, "interval: microseconds=%lld is too large", (long long)INT64_MAX);
  interval_fails(&us, msg);
}

static void test_interval_extreme_dates(void **state) {
  (void)state;
  /* APSCHED_TIME_NONE is not a date. */
  apsched_interval_options none_start = {.seconds = 1, .start_date = APSCHED_TIME_NONE};
  interval_fails(&none_start, "interval: start_date is APSCHED_TIME_NONE (use 0 for \"none\")");
  apsched_interval_options none_end = {.seconds = 1, .end_date = APSCHED_TIME_NONE};
  interval_fails(&none_end, "interval: end_date is APSCHED_TIME_NONE (use 0 for \"none\")");

  /* From the earliest time to the latest, one microsecond apart: 2^64 - 2
   * steps, more than an int64_t counts. */
  apsched_interval_options all = {.microseconds = 1, .start_date = TMIN, .end_date = TMAX};
  apsched_trigger *t = interval_ok(&all);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMIN), TMIN);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, 0), 0);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMAX), TMAX);
  assert_int_equal(apsched_trigger_next(t, TMIN, 0), TMIN + 1);
  assert_int_equal(apsched_trigger_next(t, TMAX - 1, 0), TMAX);
  assert_int_equal(apsched_trigger_next(t, TMAX, 0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);

  /* A long interval from the earliest time: the steps reach past INT64_MAX. */
  apsched_interval_options big = {.microseconds = INT64_MAX / 3, .start_date = TMIN};
  t = interval_ok(&big);
  /* INT64_MAX = 3 * step + 1, so run 3 is at -1 and run 6 at INT64_MAX - 2. */
  int64_t step = INT64_MAX / 3;
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, -1), -1);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, 0), -1 + step);
  assert_int_equal(apsched_trigger_next(t, -1 + step, TMIN), -1 + 2 * step);
  assert_int_equal(apsched_trigger_next(t, -1 + 2 * step, 0), TMAX - 2);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMAX - 3), TMAX - 2);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMAX - 1), APSCHED_TIME_NONE);
  assert_int_equal(apsched_trigger_next(t, TMAX - 2, 0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);

  /* An end at the earliest time: only a start there could fire. */
  apsched_interval_options early_end = {.hours = 1, .start_date = TMIN, .end_date = TMIN};
  t = interval_ok(&early_end);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), APSCHED_TIME_NONE);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMIN), TMIN);
  apsched_trigger_free(t);
  apsched_interval_options end_only = {.hours = 1, .end_date = TMIN};
  t = interval_ok(&end_only);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);

  /* Its text names years outside 0000..9999, which the text cannot read
   * back: a clear error, not a wrong trigger. */
  t = interval_ok(&all);
  char text[256], err[256];
  assert_true(apsched_trigger_describe(t, text, sizeof text) > 0);
  apsched_trigger *back = NULL;
  assert_int_equal(apsched_trigger_parse(text, &back, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(
      strstr(err, "start_date: '-290308-12-21T19:59:05.224193Z': expected a 4-digit year"));
  assert_null(back);
  apsched_trigger_free(t);
}

/* The first and last instants whose RFC 3339 text has a 4-digit year. */
#define YEAR_0 (-62167219200LL * APSCHED_SEC)         /* 0000-01-01T00:00:00Z */
#define YEAR_9999_END (253402300800LL * APSCHED_SEC - 1) /* 9999-12-31T23:59:59.999999Z */

static void test_date_extremes(void **state) {
  (void)state;
  const apsched_time_t dates[] = {YEAR_0, YEAR_9999_END, -1, 1};
  for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
    apsched_date_options o = {.run_date = dates[i]};
    apsched_trigger *t = NULL;
    assert_int_equal(apsched_trigger_date(&o, &t), APSCHED_OK);
    assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMIN), dates[i]);
    assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMAX), dates[i]);
    assert_int_equal(apsched_trigger_next(t, dates[i], TMAX), APSCHED_TIME_NONE);
    assert_int_equal(apsched_trigger_next(t, TMAX, TMAX), APSCHED_TIME_NONE);
    round_trip(t);
    /* and[] asks "at or after latest" as "strictly after latest - 1". */
    const apsched_trigger *both[2] = {t, t};
    apsched_trigger *a = NULL;
    assert_int_equal(apsched_trigger_and(both, 2, &a, NULL, 0), APSCHED_OK);
    assert_int_equal(apsched_trigger_next(a, APSCHED_TIME_NONE, 0), dates[i]);
    apsched_trigger_free(a);
    apsched_trigger_free(t);
  }
  /* Beyond them the text would not read back, and a scheduler would have
   * to report a run missed by more than an int64_t holds: refused. */
  const struct {
    apsched_time_t at;
    const char *message;
  } bad[] = {
      {TMAX, "date: run_date +294247-01-10T04:00:54.775807Z is outside the years 0000..9999 (UTC)"},
      {TMIN, "date: run_date -290308-12-21T19:59:05.224193Z is outside the years 0000..9999 (UTC)"},
      {YEAR_9999_END + 1, "date: run_date +10000-01-01T00:00:00Z is outside the years 0000..9999 "
                          "(UTC)"},
      {YEAR_0 - 1,
       "date: run_date -0001-12-31T23:59:59.999999Z is outside the years 0000..9999 (UTC)"},
      /* NONE is "no time", not a run date. */
      {APSCHED_TIME_NONE, "date: run_date is APSCHED_TIME_NONE (use 0 for \"when the job is "
                          "added\")"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    apsched_date_options o = {.run_date = bad[i].at};
    apsched_trigger *t = NULL;
    assert_int_equal(apsched_trigger_date(&o, &t), APSCHED_EINVAL);
    assert_string_equal(apsched_last_error(), bad[i].message);
    assert_null(t);
  }
  /* The text form too: a 4-digit year with an offset can still leave the range. */
  apsched_trigger *t = NULL;
  char err[256];
  assert_int_equal(apsched_trigger_parse("date[run_date='0000-01-01T00:00:00+01:00']", &t, err,
                                         sizeof err),
                   APSCHED_EINVAL);
  assert_string_equal(err, "date: run_date -0001-12-31T23:00:00Z is outside the years 0000..9999 "
                           "(UTC)");
  assert_null(t);
}

/* The earliest run date, in a scheduler: reported as missed, by the whole
 * distance (the scheduler subtracts it from now). */
static void test_earliest_date_missed(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  log_recorder logs = {.lock = PTHREAD_MUTEX_INITIALIZER};
  apsched_config cfg = {.log = record_log, .log_user_data = &logs};
  apsched_scheduler *s = hosted_scheduler(&fc, &r, &cfg);
  counter c = {0};
  apsched_date_options d = {.run_date = YEAR_0};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_date(&d, &t), APSCHED_OK);
  apsched_job_options o = {.id = "old", .name = "old job", .func = count_job, .arg = &c,
                           .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  process(s);
  assert_int_equal(atomic_load(&c.runs), 0);
  int i = recorder_find(&r, APSCHED_EVENT_JOB_MISSED, 0);
  assert_true(i >= 0);
  assert_int_equal(r.ev[i].run_time, YEAR_0);
  /* 719528 days from 0000-01-01 to 1970-01-01, 20454 more to 2026-01-01 */
  assert_true(
      log_contains(&logs, "Run time of job \"old job\" was missed by 739982 days, 0:00:00"));
  apsched_trigger_free(t);
  apsched_free(s);
  recorder_destroy(&r);
}

/* prev at the end of time: every kind answers "none" (or its exact time). */
static void test_next_after_the_end(void **state) {
  (void)state;
  const char *texts[] = {
      "interval[seconds=7, start_date='2026-01-01T00:00:00Z']",
      "interval[microseconds=1, start_date='0000-01-01T00:00:00Z']",
      "cron[hour='*', timezone='Europe/Berlin']",
      "cron[second='*', timezone='UTC', start_date='0000-01-01T00:00:00Z']",
      "calendar[days=1, timezone='America/New_York', start_date='2026-01-01T00:00:00Z']",
      "date[run_date='9999-12-31T23:59:59.999999Z']",
      "or[interval[seconds=1, start_date='2026-01-01T00:00:00Z'], date[run_date='2026-01-01']]",
      "and[interval[seconds=1, start_date='2026-01-01T00:00:00Z'], cron[timezone='UTC']]",
  };
  const apsched_time_t prevs[] = {TMAX, TMAX - 1, TMAX - APSCHED_SEC, TMIN, TMIN + 1};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    apsched_trigger *t = NULL;
    char err[256] = "";
    if (apsched_trigger_parse(texts[i], &t, err, sizeof err) != APSCHED_OK)
      fail_msg("'%s': %s", texts[i], err);
    for (size_t p = 0; p < sizeof prevs / sizeof prevs[0]; p++) {
      apsched_time_t n = apsched_trigger_next(t, prevs[p], T0);
      assert_true(n == APSCHED_TIME_NONE || n > prevs[p]);
      if (prevs[p] == TMAX) assert_int_equal(n, APSCHED_TIME_NONE);
    }
    const apsched_time_t nows[] = {TMIN, TMAX, -1};
    for (size_t k = 0; k < sizeof nows / sizeof nows[0]; k++)
      (void)apsched_trigger_next(t, APSCHED_TIME_NONE, nows[k]);
    apsched_trigger_free(t);
  }
}

/* Cron and calendar dates at the ends. */
static void test_cron_calendar_dates(void **state) {
  (void)state;
  apsched_trigger *t = NULL;
  char err[256];
  /* Cron fires only in local years 1970..9999, whatever its dates. */
  apsched_cron_options wide = {
      .minute = "0", .timezone = "Asia/Kolkata", .start_date = TMIN, .end_date = TMAX};
  assert_int_equal(apsched_trigger_cron(&wide, &t, err, sizeof err), APSCHED_OK);
  /* 1970-01-01T00:00:00+05:30 */
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMIN), -19800LL * APSCHED_SEC);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMAX), APSCHED_TIME_NONE);
  assert_int_equal(apsched_trigger_next(t, TMAX - 1, 0), APSCHED_TIME_NONE);
  char text[512];
  assert_true(apsched_trigger_describe(t, text, sizeof text) > 0);
  assert_non_null(strstr(text, "start_date='-290308-12-21T19:59:05.224193Z', "
                               "end_date='+294247-01-10T04:00:54.775807Z'"));
  apsched_trigger_free(t);
  apsched_cron_options none = {.minute = "0", .timezone = "UTC", .end_date = APSCHED_TIME_NONE};
  assert_int_equal(apsched_trigger_cron(&none, &t, NULL, 0), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(),
                      "start_date/end_date: use 0 for \"none\", not APSCHED_TIME_NONE");

  /* Calendar dates must have a text in years 0000..9999. */
  const apsched_time_t bad[] = {TMIN, TMAX, APSCHED_TIME_NONE};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    apsched_calendar_options c = {.days = 1, .timezone = "UTC", .end_date = bad[i]};
    assert_int_equal(apsched_trigger_calendar(&c, &t, err, sizeof err), APSCHED_EINVAL);
    assert_string_equal(apsched_last_error(), err);
    assert_non_null(strstr(err, "calendar: end_date: "));
  }
  /* Unbound, asked at the ends of time: no run, no overflow. */
  apsched_calendar_options c = {.years = INT32_MAX, .months = INT32_MAX, .weeks = INT32_MAX,
                                .days = INT32_MAX, .timezone = "Pacific/Apia"};
  assert_int_equal(apsched_trigger_calendar(&c, &t, err, sizeof err), APSCHED_OK);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMIN), APSCHED_TIME_NONE);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, TMAX), APSCHED_TIME_NONE);
  assert_int_equal(apsched_trigger_next(t, TMAX, TMAX), APSCHED_TIME_NONE);
  (void)apsched_trigger_next(t, APSCHED_TIME_NONE, T0);
  apsched_trigger_free(t);
}

/* Jitter as text: up to INT64_MAX microseconds, and a clear error beyond. */
static void test_jitter_limits(void **state) {
  (void)state;
  const char *kinds[] = {
      "interval[seconds=1, jitter=%s]",
      "cron[timezone='UTC', jitter=%s]",
      "calendar[days=1, timezone='UTC', jitter=%s]",
      "or[date[run_date='2026-01-01T00:00:00Z'], jitter=%s]",
  };
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    char text[256], err[256];
    apsched_trigger *t = NULL;
    snprintf(text, sizeof text, kinds[k], "9223372036854.775807");
    if (apsched_trigger_parse(text, &t, err, sizeof err) != APSCHED_OK)
      fail_msg("'%s': %s", text, err);
    assert_int_equal(t->jitter, INT64_MAX);
    round_trip(t);
    apsched_trigger_free(t);
    t = NULL;
    const char *too_large[] = {"9223372036859", "9223372036854.775808", "9223372036855",
                               "99999999999999999999999999"};
    for (size_t i = 0; i < sizeof too_large / sizeof too_large[0]; i++) {
      snprintf(text, sizeof text, kinds[k], too_large[i]);
      assert_int_equal(apsched_trigger_parse(text, &t, err, sizeof err), APSCHED_EINVAL);
      char want[128];
      snprintf(want, sizeof want,
               "jitter: '%s' is too large (at most 9223372036854.775807 seconds)", too_large[i]);
      if (!strstr(err, want)) fail_msg("'%s': '%s' lacks '%s'", text, err, want);
      assert_null(t);
    }
    snprintf(text, sizeof text, kinds[k], "99999999999999999999x");
    assert_int_equal(apsched_trigger_parse(text, &t, err, sizeof err), APSCHED_EINVAL);
    assert_non_null(strstr(err, "is not a number of seconds"));
  }

  /* Set directly: any non-negative value, and its text reads back. */
  apsched_trigger *t = NULL;
  assert_int_equal(apsched_trigger_crontab("0 9 * * *", "UTC", &t, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_trigger_set_jitter(t, INT64_MAX), APSCHED_OK);
  round_trip(t);
  char text[512];
  assert_true(apsched_trigger_describe(t, text, sizeof text) > 0);
  assert_non_null(strstr(text, "jitter=9223372036854.775807]"));
  assert_int_equal(apsched_trigger_set_jitter(t, INT64_MIN), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(),
                      "trigger_set_jitter: jitter -9223372036854775808 is negative");
  apsched_trigger_free(t);
}

/* Formatting and parsing at the ends of time, in zones with rules. */
static void test_time_text_extremes(void **state) {
  (void)state;
  const char *zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Pacific/Apia",
                         "EST5EDT,M3.2.0,M11.1.0", "-23:59:59", "local"};
  const apsched_time_t times[] = {TMIN, TMIN + 1, TMAX, TMAX - 1, -1, 0};
  for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
    apsched_tz *tz = NULL;
    assert_int_equal(apsched_tz_get(zones[z], &tz, NULL, 0), APSCHED_OK);
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
      char text[64];
      int n = apsched_time_format(times[i], tz, text, sizeof text);
      assert_true(n > 0 && (size_t)n < sizeof text);
      apsched_civil c;
      assert_int_equal(apsched_tz_to_local(tz, times[i], &c), APSCHED_OK);
      apsched_local_result r;
      int rc = apsched_tz_from_local(tz, &c, APSCHED_EARLIER, &r);
      assert_true(rc == APSCHED_OK || rc == APSCHED_ERANGE);
    }
    /* Local years: the range of apsched_time_t is -290308-12-21 ..
     * +294247-01-10; years just inside, just outside, and far outside. */
    const int years[] = {-290307, 294246, -290309, 294248, -300000, 300000, -300001, 300001};
    for (size_t y = 0; y < sizeof years / sizeof years[0]; y++) {
      int want = y < 2 ? APSCHED_OK : APSCHED_ERANGE;
      apsched_civil c = {.year = years[y], .month = 12, .day = 31, .hour = 23, .minute = 59,
                         .second = 59, .microsecond = 999999};
      apsched_local_result r;
      assert_int_equal(apsched_tz_from_local(tz, &c, APSCHED_LATER, &r), want);
      c.month = 1, c.day = 1, c.hour = 0, c.minute = 0, c.second = 0, c.microsecond = 0;
      assert_int_equal(apsched_tz_from_local(tz, &c, APSCHED_GAP_END, &r), want);
    }
    /* The extreme texts the parser reads, without and with offsets. */
    const char *texts[] = {"0000-01-01T00:00:00", "9999-12-31T23:59:59.999999",
                           "0000-01-01T00:00:00+23:59:59", "9999-12-31T23:59:59.999999-23:59:59"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
      apsched_time_t t;
      char err[256] = "";
      if (apsched_time_parse(texts[i], tz, &t, err, sizeof err) != APSCHED_OK)
        fail_msg("%s in %s: %s", texts[i], zones[z], err);
    }
    apsched_tz_free(tz);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interval_longest),
      cmocka_unit_test(test_interval_extreme_dates),
      cmocka_unit_test(test_date_extremes),
      cmocka_unit_test(test_earliest_date_missed),
      cmocka_unit_test(test_next_after_the_end),
      cmocka_unit_test(test_cron_calendar_dates),
      cmocka_unit_test(test_jitter_limits),
      cmocka_unit_test(test_time_text_extremes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
