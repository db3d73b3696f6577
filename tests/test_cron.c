/* The cron trigger: DST rules (DESIGN.md section 3) in the zones that break
 * other schedulers, bounded searches, prev/now/start/end semantics, the
 * canonical text round trip, and property tests of random expressions in
 * DST zones against a brute-force oracle that looks at every second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apsched.h"

/* ---- helpers */

static apsched_time_t at(const char *text) {
  apsched_time_t t;
  char err[200];
  if (apsched_time_parse(text, NULL, &t, err, sizeof err) != APSCHED_OK)
    fail_msg("bad time '%s': %s", text, err);
  return t;
}

/* A trigger from canonical text ("cron[...]") or a crontab line in zone. */
static apsched_trigger *mk(const char *text, const char *zone) {
  apsched_trigger *t = NULL;
  char err[256] = "";
  int rc = strchr(text, '[') ? apsched_trigger_parse(text, &t, err, sizeof err)
                             : apsched_trigger_crontab(text, zone, &t, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("'%s': %s", text, err);
  return t;
}

static const char *fmt(apsched_time_t t, const char *zone, char *buf, size_t len) {
  if (t == APSCHED_TIME_NONE) return "NONE";
  apsched_tz *tz;
  assert_int_equal(apsched_tz_get(zone, &tz, NULL, 0), APSCHED_OK);
  apsched_time_format(t, tz, buf, len);
  apsched_tz_free(tz);
  return buf;
}

/* The fire times from `from` on (at or after it), as text in zone, one per
 * line; compared with the expected list. */
static void expect_seq(apsched_trigger *t, const char *zone, const char *from, int n,
                       const char *const *want) {
  apsched_time_t prev = APSCHED_TIME_NONE, now = at(from);
  for (int i = 0; i < n; i++) {
    apsched_time_t next = apsched_trigger_next(t, prev, now);
    char buf[64];
    const char *got = fmt(next, zone, buf, sizeof buf);
    if (strcmp(got, want[i]) != 0) {
      char desc[512];
      apsched_trigger_describe(t, desc, sizeof desc);
      fail_msg("%s from %s, #%d: got %s, wanted %s", desc, from, i, got, want[i]);
    }
    if (next == APSCHED_TIME_NONE) return;
    prev = next;
  }
}

#define SEQ(t, zone, from, ...)                                              \
  do {                                                                       \
    static const char *const want_[] = {__VA_ARGS__};                        \
    expect_seq(t, zone, from, (int)(sizeof want_ / sizeof want_[0]), want_); \
  } while (0)

/* Fire times in [from, to). */
static int count_between(apsched_trigger *t, apsched_time_t from, apsched_time_t to) {
  int n = 0;
  for (apsched_time_t x = apsched_trigger_next(t, APSCHED_TIME_NONE, from);
       x != APSCHED_TIME_NONE && x < to; x = apsched_trigger_next(t, x, 0)) {
    n++;
    if (n > 100000) fail_msg("runaway");
  }
  return n;
}

static double elapsed_ms(const struct timespec *a) {
  struct timespec b;
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/* ---- DST hand cases (DESIGN.md section 3) */

static void test_daily_0230_both_dst_days(void **state) {
  (void)state;
  apsched_trigger *t = mk("30 2 * * *", "America/New_York");
  /* Spring: 02:30 does not exist, the job runs at the first instant after the gap. */
  SEQ(t, "America/New_York", "2026-03-07T00:00:00-05:00", "2026-03-07T02:30:00-05:00",
      "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00");
  /* Fall: the fold is 01:00-02:00, 02:30 is unique. */
  SEQ(t, "America/New_York", "2026-10-31T00:00:00-04:00", "2026-10-31T02:30:00-04:00",
      "2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00");
  apsched_trigger_free(t);

  t = mk("30 2 * * *", "Europe/Berlin");
  SEQ(t, "Europe/Berlin", "2026-03-28T12:00:00+01:00", "2026-03-29T03:00:00+02:00",
      "2026-03-30T02:30:00+02:00");
  /* Fall: 02:30 happens twice; only the first occurrence fires. */
  SEQ(t, "Europe/Berlin", "2026-10-24T12:00:00+02:00", "2026-10-25T02:30:00+02:00",
      "2026-10-26T02:30:00+01:00");
  apsched_trigger_free(t);

  /* Lord Howe moves by 30 minutes: 02:00 -> 02:30 in October, 02:00 -> 01:30 in April. */
  t = mk("30 2 * * *", "Australia/Lord_Howe");
  SEQ(t, "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", "2026-10-04T02:30:00+11:00",
      "2026-10-05T02:30:00+11:00");
  SEQ(t, "Australia/Lord_Howe", "2026-04-04T12:00:00+11:00", "2026-04-05T02:30:00+10:30",
      "2026-04-06T02:30:00+10:30");
  apsched_trigger_free(t);
  t = mk("15 2 * * *", "Australia/Lord_Howe");
  SEQ(t, "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", "2026-10-04T02:30:00+11:00",
      "2026-10-05T02:15:00+11:00");
  apsched_trigger_free(t);
  t = mk("45 1 * * *", "Australia/Lord_Howe");
  SEQ(t, "Australia/Lord_Howe", "2026-04-04T12:00:00+11:00", "2026-04-05T01:45:00+11:00",
      "2026-04-06T01:45:00+10:30");
  apsched_trigger_free(t);
}

static void test_every_15_minutes_keeps_cadence(void **state) {
  (void)state;
  apsched_trigger *t = mk("*/15 * * * *", "Europe/Berlin");
  /* Local days: 23 hours in spring, 25 in fall. */
  assert_int_equal(
      count_between(t, at("2026-03-29T00:00:00+01:00"), at("2026-03-30T00:00:00+02:00")), 92);
  assert_int_equal(
      count_between(t, at("2026-10-25T00:00:00+02:00"), at("2026-10-26T00:00:00+01:00")), 100);
  /* No hole and no pile-up across the fold: always exactly 15 minutes apart. */
  apsched_time_t prev = apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-10-25T00:00:00+02:00"));
  for (int i = 0; i < 99; i++) {
    apsched_time_t next = apsched_trigger_next(t, prev, 0);
    assert_int_equal(next - prev, 15 * APSCHED_MINUTE);
    prev = next;
  }
  SEQ(t, "Europe/Berlin", "2026-03-29T01:50:00+01:00", "2026-03-29T03:00:00+02:00",
      "2026-03-29T03:15:00+02:00");
  SEQ(t, "Europe/Berlin", "2026-10-25T02:50:00+02:00", "2026-10-25T02:00:00+01:00",
      "2026-10-25T02:15:00+01:00");
  apsched_trigger_free(t);

  t = mk("*/15 * * * *", "America/New_York");
  assert_int_equal(
      count_between(t, at("2026-03-08T00:00:00-05:00"), at("2026-03-09T00:00:00-04:00")), 92);
  assert_int_equal(
      count_between(t, at("2026-11-01T00:00:00-04:00"), at("2026-11-02T00:00:00-05:00")), 100);
  apsched_trigger_free(t);
}

static void test_two_hours_in_gap_run_once(void **state) {
  (void)state;
  apsched_trigger *t = mk("0 2,3 * * *", "America/New_York");
  assert_int_equal(
      count_between(t, at("2026-03-08T00:00:00-05:00"), at("2026-03-09T00:00:00-04:00")), 1);
  SEQ(t, "America/New_York", "2026-03-08T00:00:00-05:00", "2026-03-08T03:00:00-04:00",
      "2026-03-09T02:00:00-04:00", "2026-03-09T03:00:00-04:00");
  /* Fall: 02:00 and 03:00 are both unique. */
  assert_int_equal(
      count_between(t, at("2026-11-01T00:00:00-04:00"), at("2026-11-02T00:00:00-05:00")), 2);
  apsched_trigger_free(t);
  /* Both halves of a gap hour map to its end: once. */
  t = mk("0,30 2 * * *", "Europe/Berlin");
  SEQ(t, "Europe/Berlin", "2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00",
      "2026-03-30T02:00:00+02:00");
  /* Fold: the first pass only. */
  SEQ(t, "Europe/Berlin", "2026-10-25T00:00:00+02:00", "2026-10-25T02:00:00+02:00",
      "2026-10-25T02:30:00+02:00", "2026-10-26T02:00:00+01:00");
  apsched_trigger_free(t);
  /* Hours spanning the fold: 01:00 EDT, 02:00 EST, 03:00 EST (not 01:00 EST). */
  t = mk("0 1-3 * * *", "America/New_York");
  SEQ(t, "America/New_York", "2026-11-01T00:00:00-04:00", "2026-11-01T01:00:00-04:00",
      "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00", "2026-11-02T01:00:00-05:00");
  apsched_trigger_free(t);
}

static void test_midnight_gaps(void **state) {
  (void)state;
  /* Santiago skips 00:00-01:00 on 2026-09-06; Sao Paulo did on 2018-11-04. */
  apsched_trigger *t = mk("0 0 * * *", "America/Santiago");
  SEQ(t, "America/Santiago", "2026-09-05T12:00:00-04:00", "2026-09-06T01:00:00-03:00",
      "2026-09-07T00:00:00-03:00");
  /* A job that ran at the gap's end runs again the next day (pure next(prev)). */
  assert_int_equal(apsched_trigger_next(t, at("2026-09-06T01:00:00-03:00"), 0),
                   at("2026-09-07T00:00:00-03:00"));
  /* Asked exactly at the gap's end, the gap's time is still due. */
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-09-06T01:00:00-03:00")),
                   at("2026-09-06T01:00:00-03:00"));
  apsched_trigger_free(t);
  t = mk("cron[hour='0', minute='0', timezone='America/Sao_Paulo']", NULL);
  SEQ(t, "America/Sao_Paulo", "2018-11-03T12:00:00-03:00", "2018-11-04T01:00:00-02:00",
      "2018-11-05T00:00:00-02:00");
  apsched_trigger_free(t);
  /* Weekly on the gap's weekday: that week still gets its run. */
  t = mk("0 0 * * sun", "America/Sao_Paulo");
  SEQ(t, "America/Sao_Paulo", "2018-10-30T00:00:00-03:00", "2018-11-04T01:00:00-02:00",
      "2018-11-11T00:00:00-02:00");
  apsched_trigger_free(t);
}

static void test_apia_rule_change(void **state) {
  (void)state;
  /* 2011-12-30 never existed in Apia (a 24-hour gap): not caught up. */
  apsched_trigger *t = mk("0 12 * * *", "Pacific/Apia");
  SEQ(t, "Pacific/Apia", "2011-12-29T00:00:00-10:00", "2011-12-29T12:00:00-10:00",
      "2011-12-31T12:00:00+14:00", "2012-01-01T12:00:00+14:00");
  apsched_trigger_free(t);
  t = mk("*/30 * * * *", "Pacific/Apia");
  SEQ(t, "Pacific/Apia", "2011-12-29T23:00:00-10:00", "2011-12-29T23:00:00-10:00",
      "2011-12-29T23:30:00-10:00", "2011-12-31T00:00:00+14:00");
  apsched_trigger_free(t);
}

static void test_fold_second_pass(void **state) {
  (void)state;
  /* A fixed-time job whose time already fired in the fold's first pass. */
  apsched_trigger *t = mk("30 1 * * *", "America/New_York");
  assert_int_equal(apsched_trigger_next(t, at("2026-11-01T01:30:00-04:00"), 0),
                   at("2026-11-02T01:30:00-05:00"));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-11-01T01:10:00-05:00")),
                   at("2026-11-02T01:30:00-05:00"));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-11-01T00:30:00-04:00")),
                   at("2026-11-01T01:30:00-04:00"));
  apsched_trigger_free(t);
  /* A wildcard job inside the fold: first pass, then the whole second pass. */
  t = mk("10,50 * * * *", "America/New_York");
  SEQ(t, "America/New_York", "2026-11-01T01:20:00-04:00", "2026-11-01T01:50:00-04:00",
      "2026-11-01T01:10:00-05:00", "2026-11-01T01:50:00-05:00", "2026-11-01T02:10:00-05:00");
  SEQ(t, "America/New_York", "2026-11-01T01:20:00-05:00", "2026-11-01T01:50:00-05:00",
      "2026-11-01T02:10:00-05:00");
  apsched_trigger_free(t);
  /* Only inside the fold hour, far from the next match: both passes fire. */
  t = mk("cron[month='11', day='1', hour='1', minute='*/20', timezone='America/New_York']", NULL);
  SEQ(t, "America/New_York", "2026-11-01T01:30:00-04:00", "2026-11-01T01:40:00-04:00",
      "2026-11-01T01:00:00-05:00", "2026-11-01T01:20:00-05:00", "2026-11-01T01:40:00-05:00",
      "2027-11-01T01:00:00-04:00");
  apsched_trigger_free(t);
}

/* ---- bounds and semantics */

static void test_impossible_is_fast(void **state) {
  (void)state;
  struct timespec a;
  apsched_trigger *t = mk("cron[month='2', day='30', timezone='Europe/Berlin']", NULL);
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < 1000; i++)
    assert_true(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-01-01T00:00:00Z")) ==
                APSCHED_TIME_NONE);
  /* 1000 calls; each is a few nanoseconds, so even a slow CI has room. */
  assert_true(elapsed_ms(&a) < 100);
  apsched_trigger_free(t);

  t = mk("cron[year='2001', end_date='2001-12-31T00:00:00Z', timezone='UTC']", NULL);
  clock_gettime(CLOCK_MONOTONIC, &a);
  assert_true(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-01-01T00:00:00Z")) ==
              APSCHED_TIME_NONE);
  assert_true(elapsed_ms(&a) < 10);
  apsched_trigger_free(t);

  /* Impossible through ISO weeks only: the search still ends (400 barren years). */
  t = mk("cron[day='15', week='1', timezone='Europe/Berlin']", NULL);
  clock_gettime(CLOCK_MONOTONIC, &a);
  assert_true(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-01-01T00:00:00Z")) ==
              APSCHED_TIME_NONE);
  assert_true(elapsed_ms(&a) < 500);
  apsched_trigger_free(t);

  /* A wildcard job whose every match lies in a spring-forward gap (the last
   * Sunday of March, 02:xx in Berlin): the search passes one gap per year up
   * to the year cap and ends. */
  t = mk("cron[month='3', day='last sun', hour='2', minute='*/10', timezone='Europe/Berlin']",
         NULL);
  clock_gettime(CLOCK_MONOTONIC, &a);
  assert_true(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-01-01T00:00:00Z")) ==
              APSCHED_TIME_NONE);
  assert_true(elapsed_ms(&a) < 500);
  apsched_trigger_free(t);
  /* The same as a fixed-time job fires once a year at the gap's end. */
  t = mk("cron[month='3', day='last sun', hour='2', minute='10', timezone='Europe/Berlin']", NULL);
  SEQ(t, "Europe/Berlin", "2026-01-01T00:00:00Z", "2026-03-29T03:00:00+02:00",
      "2027-03-28T03:00:00+02:00");
  apsched_trigger_free(t);

  /* Past the year cap: nothing. */
  t = mk("* * * * *", "UTC");
  assert_true(apsched_trigger_next(t, APSCHED_TIME_NONE, at("9999-12-31T23:59:00Z")) ==
              at("9999-12-31T23:59:00Z"));
  assert_true(apsched_trigger_next(t, at("9999-12-31T23:59:00Z"), 0) == APSCHED_TIME_NONE);
  assert_true(apsched_trigger_next(t, INT64_MAX, 0) == APSCHED_TIME_NONE);
  assert_true(apsched_trigger_next(t, APSCHED_TIME_NONE, INT64_MAX) == APSCHED_TIME_NONE);
  /* Before 1970 (APScheduler's minimum year): the first fire is in 1970. */
  assert_true(apsched_trigger_next(t, APSCHED_TIME_NONE, INT64_MIN + 1) == 0);
  assert_true(apsched_trigger_next(t, APSCHED_TIME_NONE, APSCHED_TIME_NONE) == 0);
  apsched_trigger_free(t);
  /* In a zone east of UTC, local 1970 starts before the epoch. */
  t = mk("0 0 1 1 *", "+05:00");
  assert_true(apsched_trigger_next(t, APSCHED_TIME_NONE, at("1960-01-01T00:00:00Z")) ==
              -5 * APSCHED_HOUR);
  apsched_trigger_free(t);
}

static void test_prev_now_start_end(void **state) {
  (void)state;
  apsched_trigger *t =
      mk("cron[hour='8', timezone='UTC', start_date='2026-03-01T00:00:00Z', "
         "end_date='2026-03-05T08:00:00Z']",
         NULL);
  /* now: at or after; prev: strictly after, whatever now says. */
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-03-02T08:00:00Z")),
                   at("2026-03-02T08:00:00Z"));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-03-02T08:00:00.000001Z")),
                   at("2026-03-03T08:00:00Z"));
  assert_int_equal(apsched_trigger_next(t, at("2026-03-02T08:00:00Z"), at("2026-03-01T00:00:00Z")),
                   at("2026-03-03T08:00:00Z"));
  assert_int_equal(apsched_trigger_next(t, at("2026-03-02T08:00:00Z"), at("2026-03-04T00:00:00Z")),
                   at("2026-03-03T08:00:00Z"));
  /* start_date bounds the result, also with a prev. */
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2020-01-01T00:00:00Z")),
                   at("2026-03-01T08:00:00Z"));
  assert_int_equal(apsched_trigger_next(t, at("2020-01-01T00:00:00Z"), 0),
                   at("2026-03-01T08:00:00Z"));
  /* end_date is inclusive. */
  assert_int_equal(apsched_trigger_next(t, at("2026-03-04T08:00:00Z"), 0),
                   at("2026-03-05T08:00:00Z"));
  assert_true(apsched_trigger_next(t, at("2026-03-05T08:00:00Z"), 0) == APSCHED_TIME_NONE);
  assert_true(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-04-01T00:00:00Z")) ==
              APSCHED_TIME_NONE);
  apsched_trigger_free(t);

  /* Sub-second bounds round up to the next whole second. */
  t = mk("* * * * * *", "Europe/Berlin");
  assert_int_equal(apsched_trigger_next(t, at("2026-06-01T00:00:00.5Z"), 0),
                   at("2026-06-01T00:00:01Z"));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-06-01T00:00:00.000001Z")),
                   at("2026-06-01T00:00:01Z"));
  apsched_trigger_free(t);

  /* Dates without an offset are wall time in the trigger's zone. */
  t = mk("cron[hour='*', timezone='Europe/Berlin', start_date='2026-07-01 10:30:00']", NULL);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, 0), at("2026-07-01T09:00:00+00:00"));
  apsched_trigger_free(t);
  /* ... and one inside a gap means the gap's end. */
  t = mk("cron[minute='*/10', timezone='Europe/Berlin', start_date='2026-03-29 02:30:00']", NULL);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, 0), at("2026-03-29T03:00:00+02:00"));
  apsched_trigger_free(t);
}

static void test_field_api(void **state) {
  (void)state;
  apsched_trigger *t;
  char err[256];
  apsched_cron_options o = {.month = "6-8,11-12",
                            .day = "3rd fri",
                            .hour = "0-3",
                            .timezone = "Europe/Berlin",
                            .jitter = 2500 * APSCHED_MSEC};
  assert_int_equal(apsched_trigger_cron(&o, &t, err, sizeof err), APSCHED_OK);
  assert_string_equal(apsched_trigger_kind(t), "cron");
  char text[512];
  int n = apsched_trigger_describe(t, text, sizeof text);
  assert_string_equal(text,
                      "cron[year='*', month='6-8,11-12', day='3rd fri', week='*', "
                      "day_of_week='*', hour='0-3', minute='0', second='0', "
                      "timezone='Europe/Berlin', jitter=2.5]");
  assert_int_equal(n, (int)strlen(text));
  /* Jitter is not applied by next(). */
  SEQ(t, "Europe/Berlin", "2026-01-01T00:00:00Z", "2026-06-19T00:00:00+02:00",
      "2026-06-19T01:00:00+02:00", "2026-06-19T02:00:00+02:00", "2026-06-19T03:00:00+02:00",
      "2026-07-17T00:00:00+02:00");
  apsched_trigger_free(t);

  apsched_cron_options last_sun = {
      .day = "last sun", .hour = "17", .minute = "25", .timezone = "UTC"};
  assert_int_equal(apsched_trigger_cron(&last_sun, &t, err, sizeof err), APSCHED_OK);
  SEQ(t, "UTC", "2026-01-01T00:00:00Z", "2026-01-25T17:25:00Z", "2026-02-22T17:25:00Z",
      "2026-03-29T17:25:00Z");
  apsched_trigger_free(t);

  apsched_cron_options bad = {.hour = "0-24", .timezone = "UTC"};
  t = (apsched_trigger *)&bad; /* must stay untouched on error */
  assert_int_equal(apsched_trigger_cron(&bad, &t, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "hour: '0-24': 24 is above the maximum 23");
  assert_ptr_equal(t, (apsched_trigger *)&bad);

  apsched_cron_options bad_tz = {.hour = "1", .timezone = "Mars/Olympus_Mons"};
  assert_true(apsched_trigger_cron(&bad_tz, &t, err, sizeof err) < 0);
  assert_non_null(strstr(err, "timezone"));
  apsched_cron_options neg = {.hour = "1", .timezone = "UTC", .jitter = -1};
  assert_int_equal(apsched_trigger_cron(&neg, &t, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "jitter"));
  apsched_cron_options backwards = {
      .hour = "1", .timezone = "UTC", .start_date = 2 * APSCHED_DAY, .end_date = APSCHED_DAY};
  /* Refused like the interval and calendar triggers do (APScheduler accepts
   * it, and the trigger never fires); the message names both dates. */
  assert_int_equal(apsched_trigger_cron(&backwards, &t, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err,
                      "end_date: 1970-01-02T00:00:00Z is before start_date 1970-01-03T00:00:00Z");
  assert_ptr_equal(t, (apsched_trigger *)&bad);
  /* The same through the canonical text, dates shown in the trigger's zone. */
  assert_int_equal(apsched_trigger_parse("cron[hour='1', timezone='Europe/Berlin', "
                                         "start_date='2026-07-02', end_date='2026-07-01T23:59:59']",
                                         &t, err, sizeof err),
                   APSCHED_EINVAL);
  assert_string_equal(err, "end_date: 2026-07-01T23:59:59+02:00 is before start_date "
                           "2026-07-02T00:00:00+02:00");
  assert_ptr_equal(t, (apsched_trigger *)&bad);
  /* Equal dates are one possible fire time, not an error. */
  apsched_cron_options same = {
      .hour = "0", .timezone = "UTC", .start_date = APSCHED_DAY, .end_date = APSCHED_DAY};
  assert_int_equal(apsched_trigger_cron(&same, &t, err, sizeof err), APSCHED_OK);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, 0), APSCHED_DAY);
  assert_int_equal(apsched_trigger_next(t, APSCHED_DAY, 0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  assert_int_equal(apsched_trigger_cron(NULL, &t, err, sizeof err), APSCHED_EINVAL);
  assert_int_equal(apsched_trigger_crontab(NULL, "UTC", &t, err, sizeof err), APSCHED_EINVAL);
  assert_int_equal(apsched_trigger_crontab("61 * * * *", "UTC", &t, err, sizeof err),
                   APSCHED_EINVAL);
  assert_string_equal(err, "minute: '61': 61 is above the maximum 59");

  /* NULL timezone is the local zone. */
  apsched_cron_options local = {.hour = "1"};
  assert_int_equal(apsched_trigger_cron(&local, &t, err, sizeof err), APSCHED_OK);
  apsched_tz *lz;
  assert_int_equal(apsched_tz_get("local", &lz, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_trigger_describe(t, text, sizeof text) > 0, 1);
  char want_tz[300];
  snprintf(want_tz, sizeof want_tz, "timezone='%s'", apsched_tz_name(lz));
  assert_non_null(strstr(text, want_tz));
  apsched_tz_free(lz);
  apsched_trigger_free(t);
}

static void test_text_errors(void **state) {
  (void)state;
  static const struct {
    const char *text;
    const char *message;
  } cases[] = {
      {"cron[hour=25]", "hour: '25': 25 is above the maximum 23"},
      {"cron[second='0', third='1']",
       "cron: unknown parameter 'third' (allowed: year, month, day, week, day_of_week, hour, "
       "minute, second, timezone, start_date, end_date, jitter)"},
      {"cron[jitter=abc]", "jitter: 'abc' is not a number of seconds (up to 6 decimals)"},
      {"cron[start_date='yesterday']", "start_date: "},
      {"cron[hour='1', hour='2']", "parameter 'hour' given twice"},
      {"cron[timezone='../etc/passwd']", "timezone: "},
      {"cron[day='1st moh']", "day: '1st moh': invalid weekday name 'moh'"},
      {"cron[hour=1", "a trigger is written as kind[param=value, ...]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    apsched_trigger *t = NULL;
    char err[512] = "";
    int rc = apsched_trigger_parse(cases[i].text, &t, err, sizeof err);
    if (rc == APSCHED_OK || t != NULL || !strstr(err, cases[i].message))
      fail_msg("'%s': rc %d, message \"%s\"", cases[i].text, rc, err);
  }
}

/* parse -> describe -> parse gives an equal trigger, and the same text. */
static void test_round_trip(void **state) {
  (void)state;
  static const char *const texts[] = {
      "cron[]",
      "cron[minute='*/5', timezone='UTC']",
      "cron[day_of_week='MON-Fri', hour=9, timezone='America/New_York']",
      "cron[day='last', timezone='Europe/Berlin']",
      "cron[month='6-8,11-12', day='3rd fri', hour='0-3', timezone='Europe/Berlin', "
      "start_date='2026-01-01T00:00:00Z', end_date='2030-01-01T00:00:00.5Z', jitter=0.000001]",
      "cron[year='2009/2,2030-2040/5', month='jan,mar-may', week='1-10/3', second='*/7', "
      "timezone='+05:45']",
      "cron[day='last sun,5th mon,1-3', hour='1,*/6', timezone='Australia/Lord_Howe', jitter=3]",
      "cron[day_of_week='mon-fri/2', hour='22-23', minute='5/10', timezone='UTC-03:00']",
  };
  static const char *const crontabs[] = {"* * * * *",      "0 22-2 * * fri-mon",   "@weekly",
                                         "*/10 0 9 * * *", "0 0 30-2 nov-feb */2", "5 4 * * 0,7"};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0] + sizeof crontabs / sizeof crontabs[0];
       i++) {
    apsched_trigger *a = i < sizeof texts / sizeof texts[0]
                             ? mk(texts[i], NULL)
                             : mk(crontabs[i - sizeof texts / sizeof texts[0]], "Europe/Berlin");
    char t1[1024], t2[1024];
    int n = apsched_trigger_describe(a, t1, sizeof t1);
    assert_true(n > 0 && (size_t)n < sizeof t1);
    apsched_trigger *b = mk(t1, NULL);
    apsched_trigger_describe(b, t2, sizeof t2);
    if (!apsched_trigger_equal(a, b) || strcmp(t1, t2) != 0) fail_msg("%s\n%s", t1, t2);
    /* And they agree on fire times. */
    apsched_time_t x = at("2026-03-28T00:00:00Z"), y = x;
    for (int k = 0; k < 50; k++) {
      x = apsched_trigger_next(a, k ? x : APSCHED_TIME_NONE, x);
      y = apsched_trigger_next(b, k ? y : APSCHED_TIME_NONE, y);
      assert_true(x == y);
      if (x == APSCHED_TIME_NONE) break;
    }
    apsched_trigger *c;
    assert_int_equal(apsched_trigger_clone(a, &c), APSCHED_OK);
    apsched_trigger_free(a);
    assert_true(apsched_trigger_equal(b, c));
    apsched_trigger_free(b);
    apsched_trigger_free(c);
  }
}

static void test_equal_and_describe_buffer(void **state) {
  (void)state;
  apsched_trigger *a = mk("0 9 * * 1-5", "UTC");
  apsched_trigger *b = mk("cron[day_of_week='mon-fri', hour='9', timezone='UTC']", NULL);
  apsched_trigger *c = mk("0 9 * * 1-5", "Europe/Berlin");
  apsched_trigger *d = mk("cron[day_of_week='0-4', hour='9', jitter=1, timezone='UTC']", NULL);
  apsched_trigger *e = mk("cron[hour='9', timezone='UTC']", NULL);
  apsched_trigger *f =
      mk("cron[day_of_week='0-4', hour='9', timezone='UTC', "
         "start_date='2026-01-01T00:00:00Z']",
         NULL);
  assert_true(apsched_trigger_equal(a, b));
  assert_false(apsched_trigger_equal(a, c));
  assert_false(apsched_trigger_equal(a, d));
  assert_false(apsched_trigger_equal(a, e));
  assert_false(apsched_trigger_equal(a, f));

  char full[512], small[20];
  int n = apsched_trigger_describe(a, full, sizeof full);
  memset(small, 'x', sizeof small);
  assert_int_equal(apsched_trigger_describe(a, small, sizeof small), n);
  assert_int_equal(small[sizeof small - 1], '\0');
  assert_memory_equal(small, full, sizeof small - 1);
  assert_int_equal(apsched_trigger_describe(a, NULL, 0), n);
  for (apsched_trigger **p = (apsched_trigger *[]){a, b, c, d, e, f, NULL}; *p; p++)
    apsched_trigger_free(*p);
}

/* next() is a pure function of its arguments: safe from many threads at once. */
typedef struct thread_arg {
  apsched_trigger *t;
  const apsched_time_t *want;
  int n;
  int bad;
} thread_arg;

static void *walk(void *p) {
  thread_arg *a = p;
  apsched_time_t prev = APSCHED_TIME_NONE;
  for (int i = 0; i < a->n; i++) {
    prev = apsched_trigger_next(a->t, prev, at("2026-10-24T00:00:00Z"));
    if (prev != a->want[i]) a->bad++;
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  apsched_trigger *t = mk("*/7 * * * *", "Europe/Berlin");
  apsched_time_t want[500];
  apsched_time_t prev = APSCHED_TIME_NONE;
  for (int i = 0; i < 500; i++)
    want[i] = prev = apsched_trigger_next(t, prev, at("2026-10-24T00:00:00Z"));
  pthread_t th[4];
  thread_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (thread_arg){t, want, 500, 0};
    assert_int_equal(pthread_create(&th[i], NULL, walk, &args[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].bad, 0);
  }
  apsched_trigger_free(t);
}

/* ---- property tests: random expressions in DST zones vs a brute-force oracle
 *
 * The oracle re-implements the semantics from scratch: each field's values
 * as a plain table built from the expression's meaning, weekday by Sakamoto's
 * method, ISO weeks by the (ordinal - weekday + 10) / 7 rule. It then looks at
 * every second of a window around a transition:
 *   wildcard job: emit t when local(t) matches;
 *   fixed job:    emit t when local(t) matches and local(t) is later than any
 *                 local time seen before (so a fold's second pass is skipped);
 *                 where the local clock jumps forward by at most 3 hours,
 *                 emit the jump's instant if a skipped local time matches.
 */

typedef struct day_rule {
  int kind; /* 0 range, 1 last day, 2 n-th weekday, 3 last weekday */
  int a, b, step;
} day_rule;

typedef struct oracle {
  bool month[13], week[54], dow[7], hour[24], minute[60], second[60];
  day_rule day[3];
  int nday;
  bool wildcard;
  char text[512];
} oracle;

static bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
static int month_len(int y, int m) {
  static const int len[] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return len[m] + (m == 2 && is_leap(y));
}
/* 0 = Monday. */
static int weekday(int y, int m, int d) {
  static const int t[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
  if (m < 3) y--;
  int sunday0 = (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
  return (sunday0 + 6) % 7;
}
static int ordinal(int y, int m, int d) {
  int n = d;
  for (int i = 1; i < m; i++) n += month_len(y, i);
  return n;
}
static int weeks_in_year(int y) {
  int jan1 = weekday(y, 1, 1);
  return (jan1 == 3 || (jan1 == 2 && is_leap(y))) ? 53 : 52;
}
static int iso_week(int y, int m, int d) {
  int w = (ordinal(y, m, d) - (weekday(y, m, d) + 1) + 10) / 7;
  if (w < 1) return weeks_in_year(y - 1);
  if (w > weeks_in_year(y)) return 1;
  return w;
}

static bool day_matches(const oracle *o, int y, int m, int d) {
  if (!o->month[m] || !o->week[iso_week(y, m, d)] || !o->dow[weekday(y, m, d)]) return false;
  int len = month_len(y, m), wd = weekday(y, m, d);
  for (int i = 0; i < o->nday; i++) {
    const day_rule *r = &o->day[i];
    if (r->kind == 0 && d >= r->a && d <= r->b && (d - r->a) % r->step == 0) return true;
    if (r->kind == 1 && d == len) return true;
    if (r->kind == 2 && wd == r->a && (d - 1) / 7 + 1 == r->b) return true;
    if (r->kind == 3 && wd == r->a && d + 7 > len) return true;
  }
  return false;
}

static unsigned rnd(unsigned *seed, unsigned n) { return (unsigned)rand_r(seed) % n; }

/* A random expression for a 0-based field of n values; fills table[]. */
static void gen_simple(unsigned *seed, int lo, int n, bool *table, char *out, size_t len,
                       bool allow_star) {
  for (int i = 0; i < n; i++) table[lo + i] = false;
  int form = (int)rnd(seed, allow_star ? 6 : 4);
  int a = lo + (int)rnd(seed, (unsigned)n), b = a + (int)rnd(seed, (unsigned)(lo + n - a));
  switch (form) {
    case 0:
      snprintf(out, len, "%d", a);
      table[a] = true;
      break;
    case 1:
      snprintf(out, len, "%d-%d", a, b);
      for (int v = a; v <= b; v++) table[v] = true;
      break;
    case 2: {
      int c = lo + (int)rnd(seed, (unsigned)n);
      snprintf(out, len, "%d,%d", a, c);
      table[a] = table[c] = true;
      break;
    }
    case 3: {
      int s = b > a ? 1 + (int)rnd(seed, (unsigned)(b - a)) : 1;
      if (b > a) {
        snprintf(out, len, "%d-%d/%d", a, b, s);
      } else {
        snprintf(out, len, "%d", a);
        s = 1;
      }
      for (int v = a; v <= b; v += s) table[v] = true;
      break;
    }
    case 4:
      snprintf(out, len, "*");
      for (int v = lo; v < lo + n; v++) table[v] = true;
      break;
    default: {
      int s = 1 + (int)rnd(seed, (unsigned)(n / 2));
      snprintf(out, len, "*/%d", s);
      for (int v = lo; v < lo + n; v += s) table[v] = true;
    }
  }
}

/* A random trigger text in zone for the days around local date y-m-d. */
static void gen_oracle(unsigned *seed, const char *zone, int y, int m, int d, oracle *o) {
  memset(o, 0, sizeof *o);
  char hour[64], minute[64], second[64], day[64] = "*", dow[32] = "*", week[16] = "*",
                                         month[16] = "*";
  gen_simple(seed, 0, 24, o->hour, hour, sizeof hour, true);
  gen_simple(seed, 0, 60, o->minute, minute, sizeof minute, true);
  if (rnd(seed, 3) == 0) {
    gen_simple(seed, 0, 60, o->second, second, sizeof second, true);
  } else {
    strcpy(second, "0");
    o->second[0] = true;
  }
  o->wildcard = hour[0] == '*' || minute[0] == '*';
  for (int i = 1; i <= 12; i++) o->month[i] = true;
  for (int i = 1; i <= 53; i++) o->week[i] = true;
  for (int i = 0; i < 7; i++) o->dow[i] = true;
  o->nday = 1;
  o->day[0] = (day_rule){0, 1, 31, 1};
  switch (rnd(seed, 8)) {
    case 0: { /* the window's own day, as a range */
      snprintf(day, sizeof day, "%d-%d", d, d + 1 > 28 ? d : d + 1);
      o->day[0] = (day_rule){0, d, d + 1 > 28 ? d : d + 1, 1};
      break;
    }
    case 1: { /* its weekday's position */
      int wd = weekday(y, m, d), n = (d - 1) / 7 + 1;
      static const char *const names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
      static const char *const pos[] = {"1st", "2nd", "3rd", "4th", "5th"};
      bool last = d + 7 > month_len(y, m) && rnd(seed, 2);
      snprintf(day, sizeof day, "%s %s", last ? "last" : pos[n - 1], names[wd]);
      o->day[0] = last ? (day_rule){3, wd, 0, 0} : (day_rule){2, wd, n, 0};
      break;
    }
    case 2: {
      snprintf(day, sizeof day, "last,%d", d);
      o->day[0] = (day_rule){1, 0, 0, 0};
      o->day[1] = (day_rule){0, d, d, 1};
      o->nday = 2;
      break;
    }
    case 3: {
      int wd = weekday(y, m, d);
      static const char *const names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
      snprintf(dow, sizeof dow, "%s-sun", names[wd]);
      for (int i = 0; i < 7; i++) o->dow[i] = i >= wd;
      break;
    }
    case 4: {
      int w = iso_week(y, m, d);
      snprintf(week, sizeof week, "%d", w);
      for (int i = 1; i <= 53; i++) o->week[i] = i == w;
      break;
    }
    case 5: {
      snprintf(month, sizeof month, "%d", m);
      for (int i = 1; i <= 12; i++) o->month[i] = i == m;
      break;
    }
    default: break;
  }
  snprintf(o->text, sizeof o->text,
           "cron[year='*', month='%s', day='%s', week='%s', day_of_week='%s', hour='%s', "
           "minute='%s', second='%s', timezone='%s']",
           month, day, week, dow, hour, minute, second, zone);
}

static void civil_of(int64_t local, int *y, int *m, int *d, int *h, int *mi, int *s) {
  /* Walk from 1970 by days; callers look at a few days only, so cache the date. */
  static int64_t cached_day = INT64_MIN;
  static int cy, cm, cd;
  int64_t day = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
  if (day != cached_day) {
    int64_t rest = day;
    int yy = 1970, mm = 1;
    while (rest >= (is_leap(yy) ? 366 : 365)) rest -= is_leap(yy++) ? 366 : 365;
    while (rest >= month_len(yy, mm)) rest -= month_len(yy, mm++);
    cy = yy;
    cm = mm;
    cd = (int)rest + 1;
    cached_day = day;
  }
  int sod = (int)(local - day * 86400);
  *y = cy;
  *m = cm;
  *d = cd;
  *h = sod / 3600;
  *mi = sod / 60 % 60;
  *s = sod % 60;
}

static bool local_matches(const oracle *o, int64_t local) {
  int64_t day = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
  int sod = (int)(local - day * 86400);
  if (!o->hour[sod / 3600] || !o->minute[sod / 60 % 60] || !o->second[sod % 60]) return false;
  int y, m, d, h, mi, s;
  civil_of(local, &y, &m, &d, &h, &mi, &s);
  return day_matches(o, y, m, d);
}

/* Local seconds of every second in [w0, w0 + n). */
static int64_t *local_table(const char *zone, int64_t w0, int n) {
  apsched_tz *tz;
  assert_int_equal(apsched_tz_get(zone, &tz, NULL, 0), APSCHED_OK);
  int64_t *loc = malloc(sizeof *loc * (size_t)n);
  assert_non_null(loc);
  for (int i = 0; i < n; i++) {
    apsched_civil c;
    assert_int_equal(apsched_tz_to_local(tz, (w0 + i) * APSCHED_SEC, &c), APSCHED_OK);
    loc[i] = w0 + i + c.utc_offset;
  }
  apsched_tz_free(tz);
  return loc;
}

/* Instants (seconds) the oracle fires at in [w0 + 1, w0 + n). */
static int oracle_run(const oracle *o, int64_t w0, const int64_t *loc, int n, int64_t *out,
                      int cap) {
  int k = 0;
  int64_t seen = loc[0];
  for (int i = 1; i < n; i++) {
    int64_t l = loc[i];
    bool emit = false;
    if (o->wildcard) {
      emit = local_matches(o, l);
    } else {
      if (l > loc[i - 1] + 1 && l - loc[i - 1] - 1 <= 3 * 3600) {
        /* The clock jumped forward: skipped local times map to this instant. */
        for (int64_t g = loc[i - 1] + 1; g < l && !emit; g++) emit = local_matches(o, g);
      }
      if (l > seen && local_matches(o, l)) emit = true;
    }
    if (l > seen) seen = l;
    if (emit) {
      if (k == cap) fail_msg("oracle overflow");
      out[k++] = w0 + i;
    }
  }
  return k;
}

/* Transitions of zone in [from, to), to the second. */
static int find_transitions(const char *zone, int64_t from, int64_t to, int64_t *out, int cap) {
  apsched_tz *tz;
  assert_int_equal(apsched_tz_get(zone, &tz, NULL, 0), APSCHED_OK);
  int n = 0;
  apsched_civil c;
  apsched_tz_to_local(tz, from * APSCHED_SEC, &c);
  int off = c.utc_offset;
  for (int64_t t = from + 1800; t < to && n < cap; t += 1800) {
    apsched_tz_to_local(tz, t * APSCHED_SEC, &c);
    if (c.utc_offset == off) continue;
    int64_t lo = t - 1800, hi = t; /* offset(lo) == off, offset(hi) differs */
    while (hi - lo > 1) {
      int64_t mid = lo + (hi - lo) / 2;
      apsched_tz_to_local(tz, mid * APSCHED_SEC, &c);
      if (c.utc_offset == off)
        lo = mid;
      else
        hi = mid;
    }
    out[n++] = hi;
    apsched_tz_to_local(tz, t * APSCHED_SEC, &c);
    off = c.utc_offset;
  }
  apsched_tz_free(tz);
  return n;
}

static void check_window(const char *zone, int64_t transition, unsigned *seed, int exprs) {
  const int n = 2 * 30 * 3600; /* 30 hours each side */
  int64_t w0 = transition - n / 2;
  int64_t *loc = local_table(zone, w0, n);
  int64_t *want = malloc(sizeof *want * (size_t)n);
  assert_non_null(want);
  int y, m, d, h, mi, s;
  civil_of(loc[n / 2], &y, &m, &d, &h, &mi, &s);
  for (int e = 0; e < exprs; e++) {
    oracle o;
    gen_oracle(seed, zone, y, m, d, &o);
    int k = oracle_run(&o, w0, loc, n, want, n);
    apsched_trigger *t = mk(o.text, NULL);
    /* The trigger's sequence over the window. */
    apsched_time_t x = apsched_trigger_next(t, w0 * APSCHED_SEC, 0);
    int i = 0;
    for (; x != APSCHED_TIME_NONE && x < (w0 + n) * APSCHED_SEC; i++) {
      if (i >= k || x != want[i] * APSCHED_SEC) {
        char b1[64], b2[64];
        fail_msg("%s (%s): #%d got %s, oracle %s (transition %lld)", o.text,
                 o.wildcard ? "wildcard" : "fixed", i, fmt(x, zone, b1, sizeof b1),
                 i < k ? fmt(want[i] * APSCHED_SEC, zone, b2, sizeof b2) : "nothing",
                 (long long)transition);
      }
      apsched_time_t nx = apsched_trigger_next(t, x, 0);
      assert_true(nx == APSCHED_TIME_NONE || nx > x); /* strictly increasing */
      x = nx;
    }
    if (i != k) {
      char b2[64];
      fail_msg("%s: %d fire times, oracle %d (next oracle %s)", o.text, i, k,
               fmt(want[i] * APSCHED_SEC, zone, b2, sizeof b2));
    }
    /* Pure in prev: any prev gives the first oracle time after it. */
    for (int r = 0; r < 20 && k > 0; r++) {
      int64_t p = w0 + (int64_t)rnd(seed, (unsigned)(want[k - 1] - w0));
      int j = 0;
      while (want[j] <= p) j++;
      assert_true(apsched_trigger_next(t, p * APSCHED_SEC + (int64_t)rnd(seed, 1000000), 0) ==
                  want[j] * APSCHED_SEC);
    }
    apsched_trigger_free(t);
  }
  free(want);
  free(loc);
}

static void test_property_dst_windows(void **state) {
  (void)state;
  static const struct {
    const char *zone;
    int from_year, to_year;
  } zones[] = {
      {"Europe/Berlin", 2024, 2027},       {"America/New_York", 2025, 2027},
      {"Australia/Lord_Howe", 2025, 2027}, {"America/Santiago", 2025, 2027},
      {"America/Sao_Paulo", 2017, 2020},   {"Pacific/Apia", 2011, 2012},
      {"Europe/Dublin", 2025, 2027},       {"Pacific/Chatham", 2025, 2027},
      {"Antarctica/Troll", 2025, 2027},    {"America/Nuuk", 2023, 2025},
  };
  unsigned seed = 20260329;
  const char *env = getenv("CRON_PROPERTY_EXPRS");
  int exprs = env ? atoi(env) : 6;
  for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
    int64_t tr[16];
    int64_t from = (zones[z].from_year - 1970) * 31556952LL;
    int64_t to = (zones[z].to_year - 1970) * 31556952LL;
    int n = find_transitions(zones[z].zone, from, to, tr, 16);
    assert_true(n > 0);
    for (int i = 0; i < n && i < 4; i++) check_window(zones[z].zone, tr[i], &seed, exprs);
  }
}

/* A daily fixed-time job runs exactly once every local day, all year, in
 * every DST zone (except a day swallowed whole by a rule change). */
static void test_no_day_skipped_or_doubled(void **state) {
  (void)state;
  static const char *const zones[] = {"Europe/Berlin",    "America/New_York", "Australia/Lord_Howe",
                                      "America/Santiago", "Europe/Dublin",    "Pacific/Chatham",
                                      "America/Havana",   "Asia/Gaza"};
  static const int times[][2] = {{0, 0},  {0, 30}, {1, 0},   {1, 30}, {2, 0},
                                 {2, 30}, {3, 0},  {23, 59}, {12, 0}};
  for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
    apsched_tz *tz;
    assert_int_equal(apsched_tz_get(zones[z], &tz, NULL, 0), APSCHED_OK);
    for (size_t k = 0; k < sizeof times / sizeof times[0]; k++) {
      char text[200];
      snprintf(text, sizeof text, "cron[hour='%d', minute='%d', timezone='%s']", times[k][0],
               times[k][1], zones[z]);
      apsched_trigger *t = mk(text, NULL);
      /* Local days 2026-01-02 .. 2026-12-31. */
      apsched_local_result from, to;
      apsched_civil c0 = {.year = 2026, .month = 1, .day = 2};
      apsched_civil c1 = {.year = 2027, .month = 1, .day = 1};
      assert_int_equal(apsched_tz_from_local(tz, &c0, APSCHED_GAP_END, &from), APSCHED_OK);
      assert_int_equal(apsched_tz_from_local(tz, &c1, APSCHED_GAP_END, &to), APSCHED_OK);
      int last_day = -1, count = 0;
      apsched_time_t x = apsched_trigger_next(t, APSCHED_TIME_NONE, from.utc);
      for (; x < to.utc; x = apsched_trigger_next(t, x, 0)) {
        apsched_civil c;
        apsched_tz_to_local(tz, x, &c);
        int day = c.month * 100 + c.day;
        if (day <= last_day) fail_msg("%s: a second run on %d", text, day);
        last_day = day;
        count++;
      }
      if (count != 364) fail_msg("%s: %d runs from Jan 2 to Dec 31", text, count);
      apsched_trigger_free(t);
    }
    apsched_tz_free(tz);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_daily_0230_both_dst_days),
      cmocka_unit_test(test_every_15_minutes_keeps_cadence),
      cmocka_unit_test(test_two_hours_in_gap_run_once),
      cmocka_unit_test(test_midnight_gaps),
      cmocka_unit_test(test_apia_rule_change),
      cmocka_unit_test(test_fold_second_pass),
      cmocka_unit_test(test_impossible_is_fast),
      cmocka_unit_test(test_prev_now_start_end),
      cmocka_unit_test(test_field_api),
      cmocka_unit_test(test_text_errors),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_equal_and_describe_buffer),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_property_dst_windows),
      cmocka_unit_test(test_no_day_skipped_or_doubled),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
