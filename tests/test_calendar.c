/* The calendar-interval trigger: APScheduler's own "calendarinterval" test
 * vectors (transcribed from /work/shared/vectors), month ends, DST days in
 * Berlin and New York (once a day, no day skipped or doubled), zone-rule
 * changes, the pure next() contract over long skips, canonical text round
 * trips and parse errors. */
#include "support.h"

#include <time.h>

#include "apsched_plugin.h"

static apsched_time_t at(const char *text, const char *zone) {
  apsched_tz *tz = NULL;
  if (zone) assert_int_equal(apsched_tz_get(zone, &tz, NULL, 0), APSCHED_OK);
  apsched_time_t t;
  char err[200] = "";
  int rc = apsched_time_parse(text, tz, &t, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("parse '%s': %s", text, err);
  apsched_tz_free(tz);
  return t;
}

/* Compares an instant with RFC 3339 text in zone, offset included, so a
 * fold's first and second occurrence are told apart in the message too. */
static void expect_at(apsched_time_t got, const char *expected, const char *zone) {
  char text[64] = "NONE";
  apsched_tz *tz = NULL;
  assert_int_equal(apsched_tz_get(zone, &tz, NULL, 0), APSCHED_OK);
  if (got != APSCHED_TIME_NONE) apsched_time_format(got, tz, text, sizeof text);
  apsched_tz_free(tz);
  if (!expected) {
    if (got != APSCHED_TIME_NONE) fail_msg("expected no fire time, got %s", text);
    return;
  }
  if (strcmp(text, expected) != 0) fail_msg("expected %s, got %s", expected, text);
}

static apsched_trigger *parse(const char *text) {
  apsched_trigger *t = NULL;
  char err[300] = "";
  if (apsched_trigger_parse(text, &t, err, sizeof err) != APSCHED_OK)
    fail_msg("parse '%s': %s", text, err);
  return t;
}

static apsched_trigger *calendar(const apsched_calendar_options *o) {
  apsched_trigger *t = NULL;
  char err[300] = "";
  if (apsched_trigger_calendar(o, &t, err, sizeof err) != APSCHED_OK) fail_msg("calendar: %s", err);
  return t;
}

/* 3.x:tests/triggers/test_calendarinterval.py and its 4.x twin. The 4.x API
 * is stateful (the first next() returns start_date's run); ours is
 * next(prev, now), so a sequence is next(NONE, start) then next(prev, prev).
 * The 3.x cases pass the real current time as now and ignore it; we pass
 * start_date, since our now is honoured (a run before now is not returned). */
static void test_vectors(void **state) {
  (void)state;
  const char *berlin = "Europe/Berlin";
  apsched_trigger *t = NULL;
  char err[300];

  /* test_bad_interval */
  apsched_calendar_options none = {.timezone = berlin};
  assert_int_equal(apsched_trigger_calendar(&none, &t, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "interval must be at least 1 day long"));
  assert_null(t);

  /* test_bad_start_end_dates */
  apsched_calendar_options bad = {.days = 1, .start_date = at("2016-03-04", berlin),
                                  .end_date = at("2016-03-03", berlin), .timezone = berlin};
  assert_int_equal(apsched_trigger_calendar(&bad, &t, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "end_date cannot be earlier than start_date"));
  assert_null(t);

  /* test_end_date: one run on the single day, then none */
  t = parse("calendar[days=1, start_date='2020-12-31', end_date='2020-12-31', "
            "timezone='Europe/Berlin']");
  apsched_time_t start = at("2020-12-31", berlin);
  apsched_time_t n = apsched_trigger_next(t, APSCHED_TIME_NONE, start);
  expect_at(n, "2020-12-31T00:00:00+01:00", berlin);
  expect_at(apsched_trigger_next(t, n, n), NULL, berlin);
  apsched_trigger_free(t);

  /* test_missing_time: 02:30 does not exist on 2016-03-27 in Berlin.
   * Deliberate difference: APScheduler skips that day and first fires
   * 2016-03-28 02:30; we run a fixed time inside a gap at the end of the gap
   * (DESIGN.md section 3: no day is skipped), then go on as usual. */
  t = parse("calendar[days=1, hour=2, minute=30, start_date='2016-03-27', "
            "timezone='Europe/Berlin']");
  start = at("2016-03-27", berlin);
  n = apsched_trigger_next(t, APSCHED_TIME_NONE, start);
  expect_at(n, "2016-03-27T03:00:00+02:00", berlin);
  expect_at(apsched_trigger_next(t, n, n), "2016-03-28T02:30:00+02:00", berlin);
  apsched_trigger_free(t);

  /* test_repeated_time: 02:30 happens twice on 2016-10-30; the first
   * occurrence (CEST, +02:00) is used, compared as text with its offset. */
  t = parse("calendar[days=2, hour=2, minute=30, start_date='2016-10-30', "
            "timezone='Europe/Berlin']");
  start = at("2016-10-30", berlin);
  n = apsched_trigger_next(t, APSCHED_TIME_NONE, start);
  expect_at(n, "2016-10-30T02:30:00+02:00", berlin);
  expect_at(apsched_trigger_next(t, n, n), "2016-11-01T02:30:00+01:00", berlin);
  apsched_trigger_free(t);

  /* test_nonexistent_days: April 31 does not exist, so April is skipped */
  t = parse("calendar[months=1, start_date='2016-03-31', timezone='Europe/Berlin']");
  start = at("2016-03-31", berlin);
  n = apsched_trigger_next(t, APSCHED_TIME_NONE, start);
  expect_at(n, "2016-03-31T00:00:00+02:00", berlin);
  expect_at(apsched_trigger_next(t, n, n), "2016-05-31T00:00:00+02:00", berlin);
  apsched_trigger_free(t);

  /* test_utc_timezone */
  t = parse("calendar[days=1, hour=1, start_date='2016-03-31', timezone='UTC']");
  start = at("2016-03-31", "UTC");
  n = apsched_trigger_next(t, APSCHED_TIME_NONE, start);
  expect_at(n, "2016-03-31T01:00:00Z", "UTC");
  expect_at(apsched_trigger_next(t, n, n), "2016-04-01T01:00:00Z", "UTC");
  apsched_trigger_free(t);
}

/* Runs from next(NONE, from) on, compared with the expected texts. */
static void expect_sequence(const apsched_trigger *t, apsched_time_t from, const char *zone,
                            const char *const *expected, size_t count) {
  apsched_time_t prev = APSCHED_TIME_NONE;
  for (size_t i = 0; i < count; i++) {
    prev = apsched_trigger_next(t, prev, from);
    expect_at(prev, expected[i], zone);
    if (prev == APSCHED_TIME_NONE) return;
  }
}

static void test_month_ends(void **state) {
  (void)state;
  /* Jan 31 + 1 month: months without a 31st are skipped (APScheduler 4). */
  apsched_calendar_options o = {.months = 1, .start_date = at("2026-01-31", "UTC"),
                                .timezone = "UTC"};
  apsched_trigger *t = calendar(&o);
  static const char *const jan31[] = {
      "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z",
      "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z",
      "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z", "2027-03-31T00:00:00Z"};
  expect_sequence(t, o.start_date, "UTC", jan31, 9);
  apsched_trigger_free(t);

  /* The 30th: only February is skipped; every 3 months from Nov 30. */
  o = (apsched_calendar_options){.months = 3, .hour = 12, .start_date = at("2026-11-30", "UTC"),
                                 .timezone = "UTC"};
  t = calendar(&o);
  static const char *const nov30[] = {"2026-11-30T12:00:00Z", "2027-05-30T12:00:00Z",
                                      "2027-08-30T12:00:00Z", "2027-11-30T12:00:00Z"};
  expect_sequence(t, o.start_date, "UTC", nov30, 4);
  apsched_trigger_free(t);

  /* Feb 29 + 1 year: leap years only, and 2100 is not one. */
  o = (apsched_calendar_options){.years = 1, .start_date = at("2096-02-29", "UTC"),
                                 .timezone = "UTC"};
  t = calendar(&o);
  static const char *const feb29[] = {"2096-02-29T00:00:00Z", "2104-02-29T00:00:00Z",
                                      "2108-02-29T00:00:00Z"};
  expect_sequence(t, o.start_date, "UTC", feb29, 3);
  apsched_trigger_free(t);

  /* Months and days mixed: step k is (start + k months, skipped if missing)
   * + k days, counted from the start (APScheduler 4 would add each step to
   * the previous run's date instead; see calendar.c). */
  o = (apsched_calendar_options){.months = 1, .days = 1, .start_date = at("2026-01-30", "UTC"),
                                 .timezone = "UTC"};
  t = calendar(&o);
  static const char *const mixed[] = {"2026-01-30T00:00:00Z", "2026-04-01T00:00:00Z",
                                      "2026-05-03T00:00:00Z", "2026-06-03T00:00:00Z"};
  expect_sequence(t, o.start_date, "UTC", mixed, 4);
  apsched_trigger_free(t);

  /* Weeks: every other Monday at 09:15:30, across a year end. */
  o = (apsched_calendar_options){.weeks = 2, .hour = 9, .minute = 15, .second = 30,
                                 .start_date = at("2026-12-21T10:00:00", "Europe/Berlin"),
                                 .timezone = "Europe/Berlin"};
  t = calendar(&o);
  /* 09:15:30 on the start date is before start_date: the first run is the next step. */
  static const char *const weeks[] = {"2027-01-04T09:15:30+01:00", "2027-01-18T09:15:30+01:00"};
  expect_sequence(t, o.start_date, "Europe/Berlin", weeks, 2);
  apsched_trigger_free(t);
}

/* Daily hh:mm over `days` local dates from first_day: exactly one run per
 * date, at hh:mm, or at gap_run (the end of the gap), or at fold_run (the
 * fold's first occurrence, not followed by the second). NULL: none. */
static void check_daily(const char *zone, int hour, int minute, const char *first_day, int days,
                        const char *gap_run, const char *fold_run) {
  apsched_calendar_options o = {.days = 1, .hour = hour, .minute = minute,
                                .start_date = at(first_day, zone), .timezone = zone};
  apsched_trigger *t = calendar(&o);
  apsched_tz *tz;
  assert_int_equal(apsched_tz_get(zone, &tz, NULL, 0), APSCHED_OK);
  apsched_civil first;
  assert_int_equal(apsched_tz_to_local(tz, o.start_date, &first), APSCHED_OK);
  int64_t day0 = (int64_t)(at(first_day, "UTC") / APSCHED_DAY);
  bool saw_gap = false, saw_fold = false;
  apsched_time_t prev = APSCHED_TIME_NONE;
  for (int i = 0; i < days; i++) {
    apsched_time_t n = apsched_trigger_next(t, prev, o.start_date);
    assert_true(n != APSCHED_TIME_NONE && (prev == APSCHED_TIME_NONE || n > prev));
    char text[64];
    apsched_time_format(n, tz, text, sizeof text);
    apsched_civil c;
    assert_int_equal(apsched_tz_to_local(tz, n, &c), APSCHED_OK);
    /* The i-th run is on the i-th local date: none skipped, none doubled. */
    int64_t day = (n + c.utc_offset * APSCHED_SEC) / APSCHED_DAY;
    if (day != day0 + i) fail_msg("%s: run %d is %s, expected on day %d", zone, i, text, i);
    if (gap_run && strcmp(text, gap_run) == 0) {
      saw_gap = true;
    } else if (fold_run && strcmp(text, fold_run) == 0) {
      saw_fold = true;
      /* The first occurrence: the same wall time an hour later is not a run. */
      assert_true(apsched_trigger_next(t, n, n) > n + APSCHED_DAY - 2 * APSCHED_HOUR);
    } else if (c.hour != hour || c.minute != minute) {
      fail_msg("%s: run %d is %s, expected %02d:%02d", zone, i, text, hour, minute);
    }
    prev = n;
  }
  if (gap_run && !saw_gap) fail_msg("%s: no run at %s", zone, gap_run);
  if (fold_run && !saw_fold) fail_msg("%s: no run at %s", zone, fold_run);
  apsched_tz_free(tz);
  apsched_trigger_free(t);
}

static void test_dst(void **state) {
  (void)state;
  /* Berlin 2026: 02:00 -> 03:00 on Mar 29, 03:00 -> 02:00 on Oct 25. */
  check_daily("Europe/Berlin", 2, 30, "2026-03-20", 230, "2026-03-29T03:00:00+02:00",
              "2026-10-25T02:30:00+02:00");
  /* New York 2026: 02:00 -> 03:00 on Mar 8, 02:00 -> 01:00 on Nov 1: 01:30
   * is in the fold, 02:30 in the gap. */
  check_daily("America/New_York", 1, 30, "2026-03-01", 250, NULL, "2026-11-01T01:30:00-04:00");
  check_daily("America/New_York", 2, 30, "2026-03-01", 250, "2026-03-08T03:00:00-04:00", NULL);

  /* In the second pass of the fold (01:15 EST), the day's run (01:30 EDT)
   * is over: the next is the following day, not 01:30 EST. */
  apsched_calendar_options o = {.days = 1, .hour = 1, .minute = 30,
                                .start_date = at("2026-01-01", "America/New_York"),
                                .timezone = "America/New_York"};
  apsched_trigger *t = calendar(&o);
  expect_at(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-11-01T01:15:00-05:00", NULL)),
            "2026-11-02T01:30:00-05:00", "America/New_York");
  /* Just after the gap, a 02:30 run is still due (at the gap's end it was). */
  apsched_trigger_free(t);
  o.hour = 2;
  t = calendar(&o);
  expect_at(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-03-08T01:59:59-05:00", NULL)),
            "2026-03-08T03:00:00-04:00", "America/New_York");
  expect_at(apsched_trigger_next(t, at("2026-03-08T03:00:00-04:00", NULL), 0),
            "2026-03-09T02:30:00-04:00", "America/New_York");
  apsched_trigger_free(t);

  /* A gap at midnight (Sao Paulo 2018-11-04, 00:00 -> 01:00): that day runs at 01:00. */
  o = (apsched_calendar_options){.days = 1, .start_date = at("2018-11-01", "America/Sao_Paulo"),
                                 .timezone = "America/Sao_Paulo"};
  t = calendar(&o);
  static const char *const sp[] = {"2018-11-01T00:00:00-03:00", "2018-11-02T00:00:00-03:00",
                                   "2018-11-03T00:00:00-03:00", "2018-11-04T01:00:00-02:00",
                                   "2018-11-05T00:00:00-02:00"};
  expect_sequence(t, o.start_date, "America/Sao_Paulo", sp, 5);
  apsched_trigger_free(t);

  /* A zone-rule change, not DST: Apia skipped 2011-12-30 (a 24-hour gap), so
   * a daily 12:00 runs on the 29th and the 31st only. */
  o = (apsched_calendar_options){.days = 1, .hour = 12, .start_date = at("2011-12-28", "Pacific/Apia"),
                                 .timezone = "Pacific/Apia"};
  t = calendar(&o);
  static const char *const apia[] = {"2011-12-28T12:00:00-10:00", "2011-12-29T12:00:00-10:00",
                                     "2011-12-31T12:00:00+14:00", "2012-01-01T12:00:00+14:00"};
  expect_sequence(t, o.start_date, "Pacific/Apia", apia, 4);
  apsched_trigger_free(t);

  /* Monthly at 02:30 on the 29th: March 2026 in Berlin is the gap day. */
  o = (apsched_calendar_options){.months = 1, .hour = 2, .minute = 30,
                                 .start_date = at("2026-01-29", "Europe/Berlin"),
                                 .timezone = "Europe/Berlin"};
  t = calendar(&o);
  static const char *const monthly[] = {"2026-01-29T02:30:00+01:00", "2026-03-29T03:00:00+02:00",
                                        "2026-04-29T02:30:00+02:00"};
  expect_sequence(t, o.start_date, "Europe/Berlin", monthly, 3);
  apsched_trigger_free(t);
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* next() is a pure function of prev: the scheduler may skip any downtime. */
static void test_long_skip(void **state) {
  (void)state;
  const char *berlin = "Europe/Berlin";
  apsched_calendar_options o = {.days = 1, .hour = 9, .start_date = at("2026-01-01", berlin),
                                .timezone = berlin};
  apsched_trigger *daily = calendar(&o);
  o.days = 0;
  o.months = 1;
  o.start_date = at("2026-01-31", berlin);
  apsched_trigger *monthly = calendar(&o);
  o.months = 0;
  o.weeks = 3;
  apsched_trigger *weekly = calendar(&o);

  /* 50 years later, at a time that is not a run */
  apsched_time_t prev = at("2076-06-15T13:13:13", berlin);
  expect_at(apsched_trigger_next(daily, prev, 0), "2076-06-16T09:00:00+02:00", berlin);
  expect_at(apsched_trigger_next(monthly, prev, 0), "2076-07-31T09:00:00+02:00", berlin);
  /* 2026-01-31 + k * 21 days: step 876 is 2076-06-13, step 877 is 2076-07-04. */
  expect_at(apsched_trigger_next(weekly, prev, 0), "2076-07-04T09:00:00+02:00", berlin);
  /* ... and at the next run exactly */
  prev = at("2076-07-31T09:00:00+02:00", NULL);
  expect_at(apsched_trigger_next(monthly, prev, 0), "2076-08-31T09:00:00+02:00", berlin);
  expect_at(apsched_trigger_next(monthly, prev - 1, 0), "2076-07-31T09:00:00+02:00", berlin);
  /* Past the last supported year, and at the end of the time range: finished. */
  expect_at(apsched_trigger_next(daily, at("9999-12-31T10:00:00", berlin), 0), NULL, berlin);
  expect_at(apsched_trigger_next(daily, at("9999-12-30T10:00:00", berlin), 0),
            "9999-12-31T09:00:00+01:00", berlin);
  expect_at(apsched_trigger_next(daily, INT64_MAX - 5, 0), NULL, berlin);
  expect_at(apsched_trigger_next(daily, INT64_MAX, 0), NULL, berlin);
  /* Before the start: the first run. */
  expect_at(apsched_trigger_next(daily, at("1990-01-01", "UTC"), 0), "2026-01-01T09:00:00+01:00",
            berlin);

  /* Quick: arithmetic, not a walk from the start. Walking 8,000 years one
   * step at a time would take seconds per call; 3,000 calls must not. */
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < 1000; i++) {
    apsched_time_t far = at("9000-03-01", "UTC") + (int64_t)i * 7919 * APSCHED_SEC;
    assert_true(apsched_trigger_next(daily, far, 0) > far);
    assert_true(apsched_trigger_next(monthly, far, 0) > far);
    assert_true(apsched_trigger_next(weekly, far, 0) > far);
  }
  assert_true(seconds_since(&t0) < 5.0);
  apsched_trigger_free(daily);
  apsched_trigger_free(monthly);
  apsched_trigger_free(weekly);
}

/* Property: for any prev, next(prev) is the first run of the sequence
 * (walked run by run) that is strictly after prev. */
static void test_pure_next(void **state) {
  (void)state;
  static const struct {
    apsched_calendar_options o;
    const char *start;
  } cases[] = {
      {{.days = 1, .hour = 2, .minute = 30, .timezone = "Europe/Berlin"}, "2025-01-01"},
      {{.months = 1, .days = 3, .hour = 23, .minute = 59, .timezone = "America/New_York"}, "2025-01-31"},
      {{.years = 1, .hour = 12, .timezone = "Australia/Lord_Howe"}, "2024-02-29"},
      {{.weeks = 1, .days = 2, .hour = 1, .minute = 45, .timezone = "America/New_York"}, "2025-01-05"},
      {{.months = 5, .hour = 2, .minute = 15, .timezone = "Australia/Lord_Howe"}, "2025-01-31"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    apsched_calendar_options o = cases[c].o;
    o.start_date = at(cases[c].start, o.timezone);
    apsched_trigger *t = calendar(&o);
    apsched_time_t runs[200];
    apsched_time_t prev = APSCHED_TIME_NONE;
    for (int i = 0; i < 200; i++) {
      runs[i] = prev = apsched_trigger_next(t, prev, o.start_date);
      assert_true(prev != APSCHED_TIME_NONE && (i == 0 || prev > runs[i - 1]));
    }
    uint64_t seed = 12345 + c;
    for (int i = 0; i < 2000; i++) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      apsched_time_t span = runs[199] - runs[0];
      apsched_time_t p = runs[0] - APSCHED_DAY + (apsched_time_t)((seed >> 11) % (uint64_t)span);
      if (i % 4 == 0) p = runs[(seed >> 20) % 199]; /* exactly on a run */
      int j = 0;
      while (runs[j] <= p) j++;
      assert_int_equal(apsched_trigger_next(t, p, 0), runs[j]);
      /* prev NONE: the first run at or after now */
      int k = 0;
      while (k < 199 && runs[k] < p) k++;
      if (p >= o.start_date) assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, p), runs[k]);
    }
    apsched_trigger_free(t);
  }
}

static void test_end_date_and_bind(void **state) {
  (void)state;
  const char *berlin = "Europe/Berlin";
  /* The last run is at or before end_date. */
  apsched_calendar_options o = {.days = 1, .hour = 9, .start_date = at("2026-05-01", berlin),
                                .end_date = at("2026-05-03T09:00:00", berlin), .timezone = berlin};
  apsched_trigger *t = calendar(&o);
  static const char *const seq[] = {"2026-05-01T09:00:00+02:00", "2026-05-02T09:00:00+02:00",
                                    "2026-05-03T09:00:00+02:00", NULL};
  expect_sequence(t, o.start_date, berlin, seq, 4);
  apsched_trigger_free(t);
  o.end_date = at("2026-05-03T08:59:59", berlin);
  t = calendar(&o);
  expect_sequence(t, o.start_date, berlin, (const char *const[]){seq[0], seq[1], NULL}, 3);
  apsched_trigger_free(t);

  /* Unbound: day 0 is the day the job is added. bind() fixes that moment. */
  o = (apsched_calendar_options){.days = 1, .hour = 9, .timezone = berlin};
  t = calendar(&o);
  apsched_time_t added = at("2026-05-10T10:00:00", berlin);
  expect_at(apsched_trigger_next(t, APSCHED_TIME_NONE, added), "2026-05-11T09:00:00+02:00", berlin);
  char text[256];
  apsched_trigger_describe(t, text, sizeof text);
  assert_string_equal(text, "calendar[days=1, hour=9, timezone='Europe/Berlin']");
  t->vtable->bind(t, added);
  apsched_trigger_describe(t, text, sizeof text);
  assert_string_equal(
      text, "calendar[days=1, hour=9, start_date='2026-05-10T10:00:00+02:00', timezone='Europe/Berlin']");
  /* Bound: a later now no longer moves day 0 (months would show it). */
  expect_at(apsched_trigger_next(t, APSCHED_TIME_NONE, added + 3 * APSCHED_DAY),
            "2026-05-14T09:00:00+02:00", berlin);
  t->vtable->bind(t, added + APSCHED_WEEK); /* bound once: unchanged */
  char again[256];
  apsched_trigger_describe(t, again, sizeof again);
  assert_string_equal(text, again);
  apsched_trigger_free(t);
  o = (apsched_calendar_options){.months = 2, .hour = 11, .timezone = berlin};
  t = calendar(&o);
  t->vtable->bind(t, added);
  expect_at(apsched_trigger_next(t, APSCHED_TIME_NONE, added), "2026-05-10T11:00:00+02:00", berlin);
  expect_at(apsched_trigger_next(t, APSCHED_TIME_NONE, added + APSCHED_DAY),
            "2026-07-10T11:00:00+02:00", berlin);
  apsched_trigger_free(t);
}

static void test_round_trip(void **state) {
  (void)state;
  static const char *const texts[] = {
      "calendar[months=1, hour=9, minute=30, start_date='2026-01-01T00:00:00+01:00', "
      "timezone='Europe/Berlin']",
      "calendar[years=2, months=3, weeks=4, days=5, hour=23, minute=59, second=58, "
      "start_date='2026-01-01T00:00:00.5Z', end_date='2030-01-01T00:00:00Z', timezone='UTC', "
      "jitter=2.5]",
      "calendar[days=1, timezone='America/New_York']",
      "calendar[weeks=1, start_date='2026-03-08T03:00:00-04:00', timezone='America/New_York', "
      "jitter=0.000001]",
      "calendar[days=7, start_date='1890-01-01T00:00:00+00:53:28', timezone='Europe/Berlin']",
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    apsched_trigger *t = parse(texts[i]), *u;
    char out[512];
    int n = apsched_trigger_describe(t, out, sizeof out);
    assert_int_equal(n, (int)strlen(texts[i]));
    assert_string_equal(out, texts[i]);
    u = parse(out);
    assert_true(apsched_trigger_equal(t, u));
    apsched_trigger_free(u);
    assert_int_equal(apsched_trigger_clone(t, &u), APSCHED_OK);
    assert_true(apsched_trigger_equal(t, u));
    apsched_trigger_free(u);
    /* snprintf semantics: a short buffer gets a truncated, terminated text. */
    char small[10];
    assert_int_equal(apsched_trigger_describe(t, small, sizeof small), n);
    assert_int_equal(strlen(small), sizeof small - 1);
    apsched_trigger_free(t);
  }
  /* Dates without an offset are local to the trigger's zone; the text keeps
   * the offset, and a different zone or parameter is a different trigger. */
  apsched_trigger *a = parse("calendar[months=1, start_date='2026-07-01 08:00', timezone='Europe/Berlin']");
  apsched_trigger *b = parse("calendar[months=1, start_date='2026-07-01T06:00:00Z', timezone='Europe/Berlin']");
  apsched_trigger *c = parse("calendar[months=1, start_date='2026-07-01T06:00:00Z', timezone='Europe/Paris']");
  apsched_trigger *d = parse("calendar[months=1, hour=1, start_date='2026-07-01T06:00:00Z', timezone='Europe/Berlin']");
  assert_true(apsched_trigger_equal(a, b));
  assert_false(apsched_trigger_equal(a, c));
  assert_false(apsched_trigger_equal(a, d));
  char out[256];
  apsched_trigger_describe(b, out, sizeof out);
  assert_string_equal(out, "calendar[months=1, start_date='2026-07-01T08:00:00+02:00', timezone='Europe/Berlin']");
  assert_string_equal(apsched_trigger_kind(a), "calendar");
  apsched_trigger_free(a);
  apsched_trigger_free(b);
  apsched_trigger_free(c);
  apsched_trigger_free(d);
}

static void expect_error(const char *text, const char *needle) {
  apsched_trigger *t = NULL;
  char err[300] = "";
  int rc = apsched_trigger_parse(text, &t, err, sizeof err);
  if (rc == APSCHED_OK) fail_msg("'%s' parsed", text);
  assert_null(t);
  if (!strstr(err, needle)) fail_msg("'%s': message '%s' lacks '%s'", text, err, needle);
}

static void test_errors(void **state) {
  (void)state;
  expect_error("calendar[days=1, hour=24]", "hour: '24' is not a whole number in 0..23");
  expect_error("calendar[days=1, minute=60]", "minute");
  expect_error("calendar[days=1, second=-1]", "second");
  expect_error("calendar[months=-1]", "months: '-1'");
  expect_error("calendar[years=x]", "years: 'x'");
  expect_error("calendar[weeks=99999999999]", "weeks");
  expect_error("calendar[hour=9]", "interval must be at least 1 day long");
  expect_error("calendar[days=1, fortnights=2]", "unknown parameter 'fortnights'");
  expect_error("calendar[days=1, timezone='Nowhere/Atlantis']", "timezone: ");
  expect_error("calendar[days=1, start_date='yesterday']", "start_date: ");
  expect_error("calendar[days=1, end_date='2026-02-30']", "end_date: ");
  expect_error("calendar[days=1, start_date='2026-02-02', end_date='2026-02-01']",
               "end_date cannot be earlier than start_date");
  expect_error("calendar[days=1, jitter=-1]", "jitter: '-1'");
  expect_error("calendar[days=1, days=2]", "given twice");

  apsched_trigger *t = NULL;
  char err[300];
  apsched_calendar_options o = {.days = 1, .hour = 24};
  assert_int_equal(apsched_trigger_calendar(&o, &t, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "calendar: hour=24 is not in 0..23");
  o = (apsched_calendar_options){.days = -2};
  assert_int_equal(apsched_trigger_calendar(&o, &t, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "calendar: days=-2 is not in 0..2147483647");
  o = (apsched_calendar_options){.days = 1, .jitter = -1};
  assert_int_equal(apsched_trigger_calendar(&o, &t, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "jitter"));
  o = (apsched_calendar_options){.days = 1, .start_date = APSCHED_TIME_NONE};
  assert_int_equal(apsched_trigger_calendar(&o, &t, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "start_date"));
  o = (apsched_calendar_options){.days = 1, .end_date = INT64_MAX};
  assert_int_equal(apsched_trigger_calendar(&o, &t, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "end_date"));
  o = (apsched_calendar_options){.days = 1, .timezone = "../etc/passwd"};
  assert_int_equal(apsched_trigger_calendar(&o, &t, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "timezone"));
  assert_int_equal(apsched_trigger_calendar(NULL, &t, err, sizeof err), APSCHED_EINVAL);
  assert_null(t);
  /* NULL timezone is "local" */
  o = (apsched_calendar_options){.days = 1};
  assert_int_equal(apsched_trigger_calendar(&o, &t, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors),    cmocka_unit_test(test_month_ends),
      cmocka_unit_test(test_dst),        cmocka_unit_test(test_long_skip),
      cmocka_unit_test(test_pure_next),  cmocka_unit_test(test_end_date_and_bind),
      cmocka_unit_test(test_round_trip), cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
