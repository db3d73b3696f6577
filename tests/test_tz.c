/* Time zones: hand cases for the zones that break schedulers, gap and fold
 * answers with their transitions, fixed offsets, POSIX strings, "local",
 * the footer rule far into the future, name validation, hostile TZif files
 * (truncated, corrupt, huge counts) through TZDIR, and concurrent use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "time/tz_internal.h"

#define S APSCHED_SEC

static apsched_tz *zone(const char *name) {
  apsched_tz *tz = NULL;
  char err[256];
  if (apsched_tz_get(name, &tz, err, sizeof err) != APSCHED_OK) fail_msg("%s: %s", name, err);
  return tz;
}

static apsched_time_t at(const char *rfc3339) {
  apsched_time_t t;
  char err[256];
  if (apsched_time_parse(rfc3339, NULL, &t, err, sizeof err) != APSCHED_OK) fail_msg("%s", err);
  return t;
}

/* to_local(utc) gives local "YYYY-MM-DD HH:MM:SS" with this offset, flag and abbreviation. */
static void expect_local(const apsched_tz *tz, const char *utc, const char *local, int offset,
                         int isdst, const char *abbr) {
  apsched_civil c;
  char got[64];
  assert_int_equal(apsched_tz_to_local(tz, at(utc), &c), APSCHED_OK);
  snprintf(got, sizeof got, "%04d-%02d-%02d %02d:%02d:%02d", c.year, c.month, c.day, c.hour,
           c.minute, c.second);
  if (strcmp(got, local) != 0 || c.utc_offset != offset || c.is_dst != isdst ||
      strcmp(c.abbr, abbr) != 0)
    fail_msg("%s at %s: got %s %d %d %s, want %s %d %d %s", apsched_tz_name(tz), utc, got,
             c.utc_offset, c.is_dst, c.abbr, local, offset, isdst, abbr);
}

static apsched_civil civil(int y, int mo, int d, int h, int mi, int s) {
  return (apsched_civil){.year = y, .month = mo, .day = d, .hour = h, .minute = mi, .second = s};
}

/* from_local with each disambiguation: kind, the three answers and the transition. */
static void expect_from(const apsched_tz *tz, apsched_civil lt, apsched_local_kind kind,
                        const char *earlier, const char *later, const char *gap_end,
                        const char *transition) {
  const char *want[3] = {earlier, later, gap_end};
  for (int how = APSCHED_EARLIER; how <= APSCHED_GAP_END; how++) {
    apsched_local_result r;
    assert_int_equal(apsched_tz_from_local(tz, &lt, (apsched_disambiguate)how, &r), APSCHED_OK);
    char got[64], tr[64] = "none";
    apsched_time_format(r.utc, NULL, got, sizeof got);
    if (r.transition != APSCHED_TIME_NONE) apsched_time_format(r.transition, NULL, tr, sizeof tr);
    if (r.kind != kind || strcmp(got, want[how]) != 0 || strcmp(tr, transition) != 0)
      fail_msg("%s %04d-%02d-%02d %02d:%02d how %d: got kind %d %s (transition %s), want %d %s (%s)",
               apsched_tz_name(tz), lt.year, lt.month, lt.day, lt.hour, lt.minute, how, r.kind,
               got, tr, kind, want[how], transition);
  }
}

/* ------------------------------------------------------------ basic zones */

static void test_utc_and_fixed_offsets(void **state) {
  (void)state;
  apsched_tz *u = apsched_tz_utc(), *z;
  assert_string_equal(apsched_tz_name(u), "UTC");
  assert_string_equal(apsched_tz_name(NULL), "UTC");
  assert_ptr_equal(apsched_tz_ref(u), u);
  apsched_tz_free(u);
  apsched_tz_free(u);
  apsched_tz_free(NULL);
  assert_null(apsched_tz_ref(NULL));
  const char *utc_names[] = {"UTC", "utc", "Z"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(apsched_tz_get(utc_names[i], &z, NULL, 0), APSCHED_OK);
    assert_ptr_equal(z, u);
  }
  expect_local(u, "2026-03-29T01:00:00Z", "2026-03-29 01:00:00", 0, 0, "UTC");
  expect_local(NULL, "1969-12-31T23:59:59Z", "1969-12-31 23:59:59", 0, 0, "UTC");

  struct {
    const char *in, *name, *abbr;
    int offset;
  } fixed[] = {{"+05:45", "+05:45", "+0545", 20700},   {"UTC-03:00", "-03:00", "-03", -10800},
               {"UTC+5", "+05:00", "+05", 18000},      {"-0330", "-03:30", "-0330", -12600},
               {"+00:00", "+00:00", "+00", 0},         {"utc-9", "-09:00", "-09", -32400},
               {"+05:30:15", "+05:30:15", "+053015", 19815}};
  for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
    z = zone(fixed[i].in);
    assert_string_equal(apsched_tz_name(z), fixed[i].name);
    apsched_civil c;
    apsched_tz_to_local(z, 0, &c);
    assert_int_equal(c.utc_offset, fixed[i].offset);
    assert_string_equal(c.abbr, fixed[i].abbr);
    assert_int_equal(c.is_dst, 0);
    apsched_civil lt = civil(2026, 3, 29, 2, 30, 0);
    apsched_local_result r;
    assert_int_equal(apsched_tz_from_local(z, &lt, APSCHED_EARLIER, &r), APSCHED_OK);
    assert_int_equal(r.kind, APSCHED_LOCAL_UNIQUE);
    assert_int_equal(r.transition, APSCHED_TIME_NONE);
    assert_int_equal(r.utc, at("2026-03-29T02:30:00Z") - fixed[i].offset * S);
    /* Cached: the same name gives the same object. */
    apsched_tz *again = zone(fixed[i].in);
    assert_ptr_equal(again, z);
    apsched_tz_free(again);
    apsched_tz_free(z);
  }
  const char *bad[] = {"+24:00", "+5:3", "UTC+", "+05:60", "-1:00:99", "+123"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char err[256] = "";
    z = (apsched_tz *)0x1;
    assert_int_equal(apsched_tz_get(bad[i], &z, err, sizeof err), APSCHED_EINVAL);
    assert_ptr_equal(z, (apsched_tz *)0x1);
    assert_non_null(strstr(err, bad[i]));
    assert_non_null(strstr(err, "offset"));
  }
}

static void test_from_local_rejects_bad_fields(void **state) {
  (void)state;
  apsched_tz *tz = zone("Europe/Berlin");
  apsched_local_result r;
  apsched_civil bad[] = {civil(2026, 13, 1, 0, 0, 0), civil(2026, 4, 31, 0, 0, 0),
                         civil(2026, 2, 29, 0, 0, 0), civil(2026, 1, 1, 24, 0, 0),
                         civil(2026, 1, 1, 0, 60, 0), civil(2026, 1, 1, 0, 0, 60),
                         civil(2026, 1, 0, 0, 0, 0),  civil(2026, 1, 1, -1, 0, 0)};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(apsched_tz_from_local(tz, &bad[i], APSCHED_EARLIER, &r), APSCHED_EINVAL);
  apsched_civil c = civil(2026, 1, 1, 0, 0, 0);
  c.microsecond = 1000000;
  assert_int_equal(apsched_tz_from_local(tz, &c, APSCHED_EARLIER, &r), APSCHED_EINVAL);
  c.microsecond = 0;
  assert_int_equal(apsched_tz_from_local(tz, &c, (apsched_disambiguate)7, &r), APSCHED_EINVAL);
  assert_int_equal(apsched_tz_from_local(tz, NULL, APSCHED_EARLIER, &r), APSCHED_EINVAL);
  assert_int_equal(apsched_tz_from_local(tz, &c, APSCHED_EARLIER, NULL), APSCHED_EINVAL);
  c.year = 300001;
  assert_int_equal(apsched_tz_from_local(tz, &c, APSCHED_EARLIER, &r), APSCHED_ERANGE);
  c.year = 294248; /* past what apsched_time_t holds */
  assert_int_equal(apsched_tz_from_local(tz, &c, APSCHED_EARLIER, &r), APSCHED_ERANGE);
  apsched_civil out;
  assert_int_equal(apsched_tz_to_local(tz, APSCHED_TIME_NONE, &out), APSCHED_EINVAL);
  assert_int_equal(apsched_tz_to_local(tz, 0, NULL), APSCHED_EINVAL);
  /* The extremes of apsched_time_t convert. */
  assert_int_equal(apsched_tz_to_local(tz, INT64_MAX, &out), APSCHED_OK);
  assert_int_equal(out.year, 294247);
  assert_int_equal(apsched_tz_to_local(tz, INT64_MIN + 1, &out), APSCHED_OK);
  assert_int_equal(out.year, -290308);
  apsched_tz_free(tz);
}

/* -------------------------------------------------------------- hand cases */

static void test_berlin_gap_and_fold(void **state) {
  (void)state;
  apsched_tz *tz = zone("Europe/Berlin");
  assert_string_equal(apsched_tz_name(tz), "Europe/Berlin");
  expect_local(tz, "2026-03-29T00:59:59Z", "2026-03-29 01:59:59", 3600, 0, "CET");
  expect_local(tz, "2026-03-29T01:00:00Z", "2026-03-29 03:00:00", 7200, 1, "CEST");
  expect_from(tz, civil(2026, 3, 29, 2, 30, 0), APSCHED_LOCAL_SKIPPED, "2026-03-29T01:30:00Z",
              "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z");
  expect_from(tz, civil(2026, 10, 25, 2, 30, 0), APSCHED_LOCAL_REPEATED, "2026-10-25T00:30:00Z",
              "2026-10-25T01:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z");
  expect_from(tz, civil(2026, 10, 25, 3, 0, 0), APSCHED_LOCAL_UNIQUE, "2026-10-25T02:00:00Z",
              "2026-10-25T02:00:00Z", "2026-10-25T02:00:00Z", "none");
  expect_from(tz, civil(2026, 3, 29, 3, 0, 0), APSCHED_LOCAL_UNIQUE, "2026-03-29T01:00:00Z",
              "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z", "none");
  expect_from(tz, civil(2026, 3, 29, 1, 59, 59), APSCHED_LOCAL_UNIQUE, "2026-03-29T00:59:59Z",
              "2026-03-29T00:59:59Z", "2026-03-29T00:59:59Z", "none");
  /* The microseconds of a skipped time move with EARLIER/LATER but not GAP_END. */
  apsched_civil c = civil(2026, 3, 29, 2, 30, 0);
  c.microsecond = 250000;
  apsched_local_result r;
  apsched_tz_from_local(tz, &c, APSCHED_EARLIER, &r);
  assert_int_equal(r.utc, at("2026-03-29T01:30:00.25Z"));
  apsched_tz_from_local(tz, &c, APSCHED_GAP_END, &r);
  assert_int_equal(r.utc, at("2026-03-29T01:00:00Z"));
  apsched_tz_free(tz);
}

static void test_lord_howe_half_hour_dst(void **state) {
  (void)state;
  apsched_tz *tz = zone("Australia/Lord_Howe");
  expect_local(tz, "2026-07-01T00:00:00Z", "2026-07-01 10:30:00", 37800, 0, "+1030");
  expect_local(tz, "2026-01-01T00:00:00Z", "2026-01-01 11:00:00", 39600, 1, "+11");
  /* 2026-10-04 02:00 +10:30 -> 02:30 +11. */
  expect_local(tz, "2026-10-03T15:29:59Z", "2026-10-04 01:59:59", 37800, 0, "+1030");
  expect_local(tz, "2026-10-03T15:30:00Z", "2026-10-04 02:30:00", 39600, 1, "+11");
  expect_from(tz, civil(2026, 10, 4, 2, 15, 0), APSCHED_LOCAL_SKIPPED, "2026-10-03T15:45:00Z",
              "2026-10-03T15:15:00Z", "2026-10-03T15:30:00Z", "2026-10-03T15:30:00Z");
  /* 2026-04-05 02:00 +11 -> 01:30 +10:30: 01:30..02:00 happens twice. */
  expect_from(tz, civil(2026, 4, 5, 1, 45, 0), APSCHED_LOCAL_REPEATED, "2026-04-04T14:45:00Z",
              "2026-04-04T15:15:00Z", "2026-04-04T14:45:00Z", "2026-04-04T15:00:00Z");
  expect_from(tz, civil(2026, 4, 5, 1, 29, 59), APSCHED_LOCAL_UNIQUE, "2026-04-04T14:29:59Z",
              "2026-04-04T14:29:59Z", "2026-04-04T14:29:59Z", "none");
  /* Past the table: year 2350 from the footer rule. */
  expect_from(tz, civil(2350, 10, 1, 2, 15, 0), APSCHED_LOCAL_SKIPPED, "2350-09-30T15:45:00Z",
              "2350-09-30T15:15:00Z", "2350-09-30T15:30:00Z", "2350-09-30T15:30:00Z");
  apsched_tz_free(tz);
}

static void test_dublin_negative_dst(void **state) {
  (void)state;
  /* Irish Standard Time is the summer time; winter GMT is the "DST" (isdst=1). */
  apsched_tz *tz = zone("Europe/Dublin");
  expect_local(tz, "2026-01-15T12:00:00Z", "2026-01-15 12:00:00", 0, 1, "GMT");
  expect_local(tz, "2026-07-15T12:00:00Z", "2026-07-15 13:00:00", 3600, 0, "IST");
  expect_local(tz, "2301-01-15T12:00:00Z", "2301-01-15 12:00:00", 0, 1, "GMT");
  expect_local(tz, "2301-07-15T12:00:00Z", "2301-07-15 13:00:00", 3600, 0, "IST");
  expect_from(tz, civil(2026, 3, 29, 1, 30, 0), APSCHED_LOCAL_SKIPPED, "2026-03-29T01:30:00Z",
              "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z");
  expect_from(tz, civil(2026, 10, 25, 1, 30, 0), APSCHED_LOCAL_REPEATED, "2026-10-25T00:30:00Z",
              "2026-10-25T01:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z");
  apsched_tz_free(tz);
}

static void test_sao_paulo_midnight_gap_and_abolished_dst(void **state) {
  (void)state;
  apsched_tz *tz = zone("America/Sao_Paulo");
  /* 2018-11-04 00:00 -03 -> 01:00 -02: midnight never happened. */
  expect_from(tz, civil(2018, 11, 4, 0, 0, 0), APSCHED_LOCAL_SKIPPED, "2018-11-04T03:00:00Z",
              "2018-11-04T02:00:00Z", "2018-11-04T03:00:00Z", "2018-11-04T03:00:00Z");
  expect_local(tz, "2018-11-04T03:00:00Z", "2018-11-04 01:00:00", -7200, 1, "-02");
  /* DST abolished in 2019: the first Sunday of November 2019 is ordinary. */
  expect_from(tz, civil(2019, 11, 3, 0, 30, 0), APSCHED_LOCAL_UNIQUE, "2019-11-03T03:30:00Z",
              "2019-11-03T03:30:00Z", "2019-11-03T03:30:00Z", "none");
  expect_local(tz, "2030-01-15T12:00:00Z", "2030-01-15 09:00:00", -10800, 0, "-03");
  expect_local(tz, "2400-01-15T12:00:00Z", "2400-01-15 09:00:00", -10800, 0, "-03");
  apsched_tz_free(tz);
}

static void test_apia_skipped_day(void **state) {
  (void)state;
  apsched_tz *tz = zone("Pacific/Apia");
  expect_local(tz, "2011-12-30T09:59:59Z", "2011-12-29 23:59:59", -36000, 1, "-10");
  expect_local(tz, "2011-12-30T10:00:00Z", "2011-12-31 00:00:00", 50400, 1, "+14");
  /* All of 2011-12-30 is one gap; its end is 2011-12-31 00:00 +14. */
  for (int h = 0; h < 24; h += 6)
    expect_from(tz, civil(2011, 12, 30, h, 0, 0), APSCHED_LOCAL_SKIPPED,
                h == 0 ? "2011-12-30T10:00:00Z" : h == 6 ? "2011-12-30T16:00:00Z"
                                                : h == 12 ? "2011-12-30T22:00:00Z"
                                                          : "2011-12-31T04:00:00Z",
                h == 0 ? "2011-12-29T10:00:00Z" : h == 6 ? "2011-12-29T16:00:00Z"
                                                : h == 12 ? "2011-12-29T22:00:00Z"
                                                          : "2011-12-30T04:00:00Z",
                "2011-12-30T10:00:00Z", "2011-12-30T10:00:00Z");
  char buf[64];
  apsched_time_t t;
  assert_int_equal(apsched_time_parse("2011-12-30 12:00", tz, &t, NULL, 0), APSCHED_OK);
  apsched_time_format(t, tz, buf, sizeof buf);
  assert_string_equal(buf, "2011-12-31T00:00:00+14:00");
  apsched_tz_free(tz);
}

static void test_kathmandu_chatham_troll(void **state) {
  (void)state;
  apsched_tz *k = zone("Asia/Kathmandu");
  expect_local(k, "2026-06-01T00:00:00Z", "2026-06-01 05:45:00", 20700, 0, "+0545");
  expect_local(k, "1985-06-01T00:00:00Z", "1985-06-01 05:30:00", 19800, 0, "+0530");
  expect_from(k, civil(1986, 1, 1, 0, 10, 0), APSCHED_LOCAL_SKIPPED, "1985-12-31T18:40:00Z",
              "1985-12-31T18:25:00Z", "1985-12-31T18:30:00Z", "1985-12-31T18:30:00Z");
  apsched_tz_free(k);

  apsched_tz *c = zone("Pacific/Chatham");
  expect_local(c, "2026-07-01T00:00:00Z", "2026-07-01 12:45:00", 45900, 0, "+1245");
  expect_local(c, "2026-01-01T00:00:00Z", "2026-01-01 13:45:00", 49500, 1, "+1345");
  /* Last Sunday of September 02:45 -> 03:45. */
  expect_from(c, civil(2026, 9, 27, 3, 0, 0), APSCHED_LOCAL_SKIPPED, "2026-09-26T14:15:00Z",
              "2026-09-26T13:15:00Z", "2026-09-26T14:00:00Z", "2026-09-26T14:00:00Z");
  expect_local(c, "2500-01-01T00:00:00Z", "2500-01-01 13:45:00", 49500, 1, "+1345");
  apsched_tz_free(c);

  /* Troll: +00 in winter, +02 in summer (a two-hour DST). */
  apsched_tz *t = zone("Antarctica/Troll");
  expect_local(t, "2026-03-29T00:59:59Z", "2026-03-29 00:59:59", 0, 0, "+00");
  expect_local(t, "2026-03-29T01:00:00Z", "2026-03-29 03:00:00", 7200, 1, "+02");
  expect_from(t, civil(2026, 3, 29, 2, 0, 0), APSCHED_LOCAL_SKIPPED, "2026-03-29T02:00:00Z",
              "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z");
  expect_from(t, civil(2026, 10, 25, 2, 0, 0), APSCHED_LOCAL_REPEATED, "2026-10-25T00:00:00Z",
              "2026-10-25T02:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z");
  expect_local(t, "2450-07-01T00:00:00Z", "2450-07-01 02:00:00", 7200, 1, "+02");
  apsched_tz_free(t);
}

static void test_santiago_and_nuuk_odd_rule_times(void **state) {
  (void)state;
  /* Santiago: <-04>4<-03>,M9.1.6/24,M4.1.6/24 -- changes at 24:00 on Saturdays. */
  apsched_tz *s = zone("America/Santiago");
  expect_from(s, civil(2026, 9, 6, 0, 30, 0), APSCHED_LOCAL_SKIPPED, "2026-09-06T04:30:00Z",
              "2026-09-06T03:30:00Z", "2026-09-06T04:00:00Z", "2026-09-06T04:00:00Z");
  expect_from(s, civil(2026, 4, 4, 23, 30, 0), APSCHED_LOCAL_REPEATED, "2026-04-05T02:30:00Z",
              "2026-04-05T03:30:00Z", "2026-04-05T02:30:00Z", "2026-04-05T03:00:00Z");
  /* 2300-09-01 is the first Saturday; the gap is Sunday 00:00..01:00. */
  expect_from(s, civil(2300, 9, 2, 0, 30, 0), APSCHED_LOCAL_SKIPPED, "2300-09-02T04:30:00Z",
              "2300-09-02T03:30:00Z", "2300-09-02T04:00:00Z", "2300-09-02T04:00:00Z");
  apsched_tz_free(s);

  /* Nuuk: <-02>2<-01>,M3.5.0/-1,M10.5.0/0 -- DST starts at -1:00 on Sunday (Saturday 23:00). */
  apsched_tz *n = zone("America/Nuuk");
  expect_from(n, civil(2026, 3, 28, 23, 30, 0), APSCHED_LOCAL_SKIPPED, "2026-03-29T01:30:00Z",
              "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z");
  expect_from(n, civil(2026, 10, 24, 23, 30, 0), APSCHED_LOCAL_REPEATED, "2026-10-25T00:30:00Z",
              "2026-10-25T01:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z");
  expect_local(n, "2026-03-29T01:00:00Z", "2026-03-29 00:00:00", -3600, 1, "-01");
  apsched_tz_free(n);
}

/* Last Sunday of a month, 01:00 UTC: the EU change instant, computed independently. */
static apsched_time_t eu_change(int year, int month) {
  int64_t last = apsched__days_from_civil(year, month, 31);
  last -= apsched__weekday(last);
  return (last * 86400 + 3600) * S;
}

static void test_footer_years_2038_to_2500_and_beyond(void **state) {
  (void)state;
  apsched_tz *tz = zone("Europe/Berlin");
  for (int y = 2030; y <= 2500; y++) {
    apsched_time_t spring = eu_change(y, 3), fall = eu_change(y, 10);
    apsched_civil c;
    apsched_tz_to_local(tz, spring - 1, &c);
    assert_true(c.utc_offset == 3600 && !c.is_dst && strcmp(c.abbr, "CET") == 0);
    apsched_tz_to_local(tz, spring, &c);
    assert_true(c.utc_offset == 7200 && c.is_dst && strcmp(c.abbr, "CEST") == 0);
    assert_int_equal(c.hour, 3);
    apsched_tz_to_local(tz, fall - 1, &c);
    assert_true(c.utc_offset == 7200 && c.is_dst);
    apsched_tz_to_local(tz, fall, &c);
    assert_true(c.utc_offset == 3600 && !c.is_dst);
    apsched_local_result r;
    apsched_civil gap = civil(y, 3, 1, 2, 30, 0);
    gap.day = (int)(spring / S / 86400 - apsched__days_from_civil(y, 3, 1)) + 1;
    assert_int_equal(apsched_tz_from_local(tz, &gap, APSCHED_GAP_END, &r), APSCHED_OK);
    assert_int_equal(r.kind, APSCHED_LOCAL_SKIPPED);
    assert_int_equal(r.utc, spring);
    assert_int_equal(r.transition, spring);
  }
  /* Far out: the 400-year cycle table must agree with evaluating the rule directly. */
  const char *names[] = {"Europe/Berlin", "America/Santiago", "America/Nuuk", "Europe/Dublin",
                         "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Jerusalem",
                         "EST5EDT,M3.2.0,M11.1.0", "XXX3EDT4,0/0,J365/23"};
  srand(11);
  for (size_t z = 0; z < sizeof names / sizeof *names; z++) {
    apsched_tz *t = zone(names[z]);
    assert_true(t->has_rule);
    for (int i = 0; i < 100000; i++) {
      /* years 2101 .. ~290000 and, for rule-only zones, before 1970 too */
      double u = (double)rand() / RAND_MAX;
      int64_t sec = 4133980800LL + (int64_t)(u * 9.0e12);
      if (t->ntrans == 0 && (i & 1)) sec = -sec;
      const apsched__tz_type *ty = apsched__tz_type_at(t, sec);
      bool dst = apsched__posix_tz_is_dst(&t->rule, sec);
      if (ty->isdst != t->types[dst ? t->rule_dst : t->rule_std].isdst ||
          ty->utoff != t->types[dst ? t->rule_dst : t->rule_std].utoff)
        fail_msg("%s at %lld: table says %d, rule says %d", names[z], (long long)sec, ty->isdst,
                 dst);
    }
    apsched_tz_free(t);
  }
  apsched_tz_free(tz);
}

/* Every local minute of a stretch maps back consistently: unique times round-trip,
 * repeated ones give two instants around the transition, skipped ones lie in a gap. */
static void check_from_local_consistency(const char *name, int y0, int y1) {
  apsched_tz *tz = zone(name);
  apsched_civil lt = civil(y0, 1, 1, 0, 0, 0);
  apsched_local_result first;
  apsched_tz_from_local(tz, &lt, APSCHED_EARLIER, &first);
  int64_t days = (apsched__days_from_civil(y1, 1, 1) - apsched__days_from_civil(y0, 1, 1));
  int64_t base = apsched__days_from_civil(y0, 1, 1);
  for (int64_t m = 0; m < days * 1440; m += 7) {
    int64_t yy;
    apsched__civil_from_days(base + m / 1440, &yy, &lt.month, &lt.day);
    lt.year = (int)yy;
    lt.hour = (int)(m % 1440 / 60);
    lt.minute = (int)(m % 60);
    apsched_local_result e, l, g;
    apsched_tz_from_local(tz, &lt, APSCHED_EARLIER, &e);
    apsched_tz_from_local(tz, &lt, APSCHED_LATER, &l);
    apsched_tz_from_local(tz, &lt, APSCHED_GAP_END, &g);
    apsched_civil back;
    if (e.kind != APSCHED_LOCAL_SKIPPED) {
      apsched_tz_to_local(tz, e.utc, &back);
      assert_true(back.hour == lt.hour && back.minute == lt.minute && back.day == lt.day);
      apsched_tz_to_local(tz, l.utc, &back);
      assert_true(back.hour == lt.hour && back.minute == lt.minute && back.day == lt.day);
      assert_int_equal(g.utc, e.utc);
    }
    if (e.kind == APSCHED_LOCAL_UNIQUE) assert_int_equal(e.utc, l.utc);
    if (e.kind == APSCHED_LOCAL_REPEATED) {
      assert_true(e.utc < e.transition && e.transition <= l.utc);
    }
    if (e.kind == APSCHED_LOCAL_SKIPPED) {
      /* The wall clock jumps over lt at the transition. */
      apsched_civil before, after;
      apsched_tz_to_local(tz, e.transition - S, &before);
      apsched_tz_to_local(tz, e.transition, &after);
      assert_int_equal(g.utc, e.transition);
      assert_true(after.utc_offset > before.utc_offset);
      assert_true(l.utc < e.transition && e.utc >= e.transition);
    }
  }
  apsched_tz_free(tz);
}

static void test_from_local_consistency(void **state) {
  (void)state;
  check_from_local_consistency("Europe/Berlin", 2025, 2027);
  check_from_local_consistency("Australia/Lord_Howe", 2025, 2027);
  check_from_local_consistency("America/Santiago", 2025, 2027);
  check_from_local_consistency("Pacific/Apia", 2011, 2012);
  check_from_local_consistency("America/New_York", 2399, 2401);
  check_from_local_consistency("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 1890, 1891);
}

/* ------------------------------------------------------------ POSIX strings */

static void test_posix_strings(void **state) {
  (void)state;
  apsched_tz *tz = zone("EST5EDT,M3.2.0,M11.1.0");
  assert_string_equal(apsched_tz_name(tz), "EST5EDT,M3.2.0,M11.1.0");
  expect_local(tz, "2026-01-15T12:00:00Z", "2026-01-15 07:00:00", -18000, 0, "EST");
  expect_local(tz, "2026-07-15T12:00:00Z", "2026-07-15 08:00:00", -14400, 1, "EDT");
  expect_from(tz, civil(2026, 3, 8, 2, 30, 0), APSCHED_LOCAL_SKIPPED, "2026-03-08T07:30:00Z",
              "2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:00:00Z");
  expect_from(tz, civil(2026, 11, 1, 1, 30, 0), APSCHED_LOCAL_REPEATED, "2026-11-01T05:30:00Z",
              "2026-11-01T06:30:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z");
  /* The rule holds for all time, long before 1970 too. */
  expect_local(tz, "1500-07-15T12:00:00Z", "1500-07-15 08:00:00", -14400, 1, "EDT");
  apsched_tz_free(tz);

  tz = zone("<+0330>-3:30");
  expect_local(tz, "2026-07-15T12:00:00Z", "2026-07-15 15:30:00", 12600, 0, "+0330");
  apsched_tz_free(tz);

  /* No rule given: the US rules. */
  tz = zone("AAA3BBB");
  expect_local(tz, "2026-03-08T04:59:59Z", "2026-03-08 01:59:59", -10800, 0, "AAA");
  expect_local(tz, "2026-03-08T05:00:00Z", "2026-03-08 03:00:00", -7200, 1, "BBB");
  apsched_tz_free(tz);

  /* Same rule as Europe/Berlin's footer: same answers (2040..2300). */
  apsched_tz *p = zone("CET-1CEST,M3.5.0,M10.5.0/3"), *b = zone("Europe/Berlin");
  for (int64_t t = 2208988800LL; t < 10413792000LL; t += 86400 * 3 + 3599) {
    apsched_civil x, y;
    apsched_tz_to_local(p, t * S, &x);
    apsched_tz_to_local(b, t * S, &y);
    assert_true(x.utc_offset == y.utc_offset && x.is_dst == y.is_dst && !strcmp(x.abbr, y.abbr));
  }
  apsched_tz_free(p);
  apsched_tz_free(b);

  /* v3: DST all year (Jan 1 00:00 to Dec 31 24:00 + 1 h). */
  tz = zone("XXX3EDT4,0/0,J365/25");
  for (int y = 1990; y < 2600; y += 7) {
    char when[32];
    snprintf(when, sizeof when, "%04d-01-01T03:30:00Z", y);
    apsched_civil c;
    apsched_tz_to_local(tz, at(when), &c);
    assert_true(c.utc_offset == -14400 && c.is_dst && strcmp(c.abbr, "EDT") == 0);
  }
  expect_from(tz, civil(2031, 1, 1, 0, 0, 0), APSCHED_LOCAL_UNIQUE, "2031-01-01T04:00:00Z",
              "2031-01-01T04:00:00Z", "2031-01-01T04:00:00Z", "none");
  apsched_tz_free(tz);
  /* v3: rule times beyond 24 h (Gaza: M3.4.4/50 = Saturday 02:00). */
  tz = zone("EET-2EEST,M3.4.4/50,M10.4.4/50");
  expect_local(tz, "2031-03-29T00:00:00Z", "2031-03-29 03:00:00", 10800, 1, "EEST");
  expect_local(tz, "2031-03-28T23:59:59Z", "2031-03-29 01:59:59", 7200, 0, "EET");
  apsched_tz_free(tz);

  struct {
    const char *in, *msg;
  } bad[] = {{"EST5EDT,M3.2.0", "DST end rule"},
             {"EST5EDT,M13.1.0,M11.1.0", "month 1..12"},
             {"EST5EDT,M3.6.0,M11.1.0", "week 1..5"},
             {"EST5EDT,M3.2.7,M11.1.0", "weekday 0..6"},
             {"EST5EDT,J0,M11.1.0", "day 1..365"},
             {"EST5EDT,366,M11.1.0", "day 0..365"},
             {"EST5EDT,M3.2.0/168,M11.1.0", "above the maximum 167"},
             {"EST25", "above the maximum 24"},
             {"<+03", "closing '>'"},
             {"<+0 3>-3", "only letters, digits"},
             {"<AB>5", "3 to 15 characters"},
             {"EST5EDT,M3.2.0,M11.1.0junk", "unexpected text"},
             {"ABCDEFGHIJKLMNOPQ5", "3 to 15 characters"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char err[256] = "";
    apsched_tz *z = NULL;
    int rc = apsched_tz_get(bad[i].in, &z, err, sizeof err);
    if (rc != APSCHED_EINVAL || !strstr(err, bad[i].msg))
      fail_msg("'%s': rc %d, message '%s' (want '%s')", bad[i].in, rc, err, bad[i].msg);
    assert_null(z);
  }
}

/* ------------------------------------------------------------------- local */

static void expect_local_name(const char *tz_env, const char *want) {
  if (tz_env) setenv("TZ", tz_env, 1);
  else unsetenv("TZ");
  apsched_tz *z = zone("local");
  if (strcmp(apsched_tz_name(z), want) != 0)
    fail_msg("TZ=%s: local is '%s', want '%s'", tz_env ? tz_env : "(unset)", apsched_tz_name(z),
             want);
  apsched_tz_free(z);
}

static void test_local(void **state) {
  (void)state;
  const char *saved = getenv("TZ");
  char *copy = saved ? strdup(saved) : NULL;
  expect_local_name(":Europe/Berlin", "Europe/Berlin");
  expect_local_name("Asia/Tokyo", "Asia/Tokyo");
  expect_local_name("EST5EDT,M3.2.0,M11.1.0", "EST5EDT,M3.2.0,M11.1.0");
  expect_local_name("/usr/share/zoneinfo/Europe/Paris", "Europe/Paris");
  expect_local_name("", "UTC");
  expect_local_name("UTC", "UTC");
  setenv("TZ", ":Asia/Tokyo", 1);
  apsched_tz *z = zone("local");
  expect_local(z, "2026-01-01T00:00:00Z", "2026-01-01 09:00:00", 32400, 0, "JST");
  apsched_tz_free(z);
  char err[256] = "";
  setenv("TZ", "Bogus/Zone", 1);
  assert_int_equal(apsched_tz_get("local", &z, err, sizeof err), APSCHED_ENOENT);
  assert_non_null(strstr(err, "TZ environment variable"));
  assert_non_null(strstr(err, "Bogus/Zone"));

  /* Unset: /etc/localtime, named by its link target. */
  char target[512] = "";
  ssize_t n = readlink("/etc/localtime", target, sizeof target - 1);
  const char *want = NULL;
  if (n > 0) {
    target[n] = '\0';
    const char *hit = strstr(target, "/zoneinfo/");
    if (hit) want = hit + strlen("/zoneinfo/");
  }
  unsetenv("TZ");
  z = zone("local");
  if (want) assert_string_equal(apsched_tz_name(z), want);
  else if (access("/etc/localtime", F_OK) != 0) assert_ptr_equal(z, apsched_tz_utc());
  apsched_tz_free(z);
  if (copy) setenv("TZ", copy, 1);
  free(copy);
}

/* ------------------------------------------------------------ hostile input */

static void test_names_are_validated(void **state) {
  (void)state;
  char longname[400];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  struct {
    const char *name, *msg;
  } bad[] = {{"../etc/passwd", "'.'"},        {"Europe/../../etc/passwd", "'.'"},
             {"/etc/passwd", "relative"},     {"Europe//Berlin", "empty path component"},
             {"Europe/Berlin/", "empty path component"}, {"Europe/./Berlin", "'.'"},
             {"Europe/Ber lin", "not allowed"}, {"Europe\\Berlin", "not allowed"},
             {"", "empty"},                   {longname, "longer than"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char err[512] = "";
    apsched_tz *z = NULL;
    int rc = apsched_tz_get(bad[i].name, &z, err, sizeof err);
    if (rc != APSCHED_EINVAL || !strstr(err, bad[i].msg))
      fail_msg("'%.40s': rc %d, message '%s' (want '%s')", bad[i].name, rc, err, bad[i].msg);
  }
  char err[256] = "";
  apsched_tz *z = NULL;
  assert_int_equal(apsched_tz_get("Europe/Berln", &z, err, sizeof err), APSCHED_ENOENT);
  assert_string_equal(err, "unknown time zone 'Europe/Berln'");
  assert_int_equal(apsched_tz_get("Europe", &z, err, sizeof err), APSCHED_ENOENT); /* a directory */
  assert_int_equal(apsched_tz_get(NULL, &z, err, sizeof err), APSCHED_EINVAL);
  assert_int_equal(apsched_tz_get("UTC", NULL, err, sizeof err), APSCHED_EINVAL);
  /* Non-TZif files in the zone directory. */
  if (access("/usr/share/zoneinfo/zone.tab", F_OK) == 0) {
    assert_int_equal(apsched_tz_get("zone.tab", &z, err, sizeof err), APSCHED_EINVAL);
    assert_non_null(strstr(err, "not a TZif file"));
  }
  /* Leap-second zones are refused with a reason. */
  if (access("/usr/share/zoneinfo/right/UTC", F_OK) == 0) {
    assert_int_equal(apsched_tz_get("right/UTC", &z, err, sizeof err), APSCHED_EINVAL);
    assert_non_null(strstr(err, "leap-second"));
  }
  assert_null(z);
}

/* A TZif image builder for hand-made files. */
typedef struct tzif_spec {
  char version; /* 0, '2', '3' */
  int ntimes;
  const int64_t *times;
  const uint8_t *idx;
  int ntypes;
  const int32_t *utoff;
  const uint8_t *isdst;
  const uint8_t *abbr_idx;
  const char *chars;
  int nchars;
  const char *footer; /* NULL: none */
} tzif_spec;

static size_t put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
  return 4;
}

static size_t put_header(unsigned char *p, char version, uint32_t leap, uint32_t times,
                         uint32_t types, uint32_t chars) {
  memset(p, 0, 44);
  memcpy(p, "TZif", 4);
  p[4] = (unsigned char)version;
  put32(p + 28, leap);
  put32(p + 32, times);
  put32(p + 36, types);
  put32(p + 40, chars);
  return 44;
}

static size_t build_tzif(const tzif_spec *s, unsigned char *out) {
  size_t n = 0;
  unsigned tsize = s->version ? 8 : 4;
  if (s->version) n += put_header(out, s->version, 0, 0, 0, 0); /* empty v1 block */
  n += put_header(out + n, s->version, 0, (uint32_t)s->ntimes, (uint32_t)s->ntypes,
                  (uint32_t)s->nchars);
  for (int i = 0; i < s->ntimes; i++) {
    if (tsize == 8) {
      n += put32(out + n, (uint32_t)((uint64_t)s->times[i] >> 32));
      n += put32(out + n, (uint32_t)s->times[i]);
    } else {
      n += put32(out + n, (uint32_t)s->times[i]);
    }
  }
  for (int i = 0; i < s->ntimes; i++) out[n++] = s->idx[i];
  for (int i = 0; i < s->ntypes; i++) {
    n += put32(out + n, (uint32_t)s->utoff[i]);
    out[n++] = s->isdst[i];
    out[n++] = s->abbr_idx[i];
  }
  memcpy(out + n, s->chars, (size_t)s->nchars);
  n += (size_t)s->nchars;
  if (s->footer) n += (size_t)sprintf((char *)out + n, "\n%s\n", s->footer);
  return n;
}

static int parse_image(const unsigned char *data, size_t len, char *err, size_t errlen) {
  apsched_tz *tz = NULL;
  int rc = apsched__tzif_parse(data, len, "Test/Zone", &tz, err, errlen);
  if (rc == APSCHED_OK) {
    /* Whatever was accepted must convert without trouble. */
    apsched_civil c;
    for (int64_t t = -4000000000LL; t < 8000000000LL; t += 123456789)
      assert_int_equal(apsched_tz_to_local(tz, t * S, &c), APSCHED_OK);
    apsched_local_result r;
    apsched_civil lt = civil(2030, 6, 1, 12, 0, 0);
    assert_int_equal(apsched_tz_from_local(tz, &lt, APSCHED_GAP_END, &r), APSCHED_OK);
    apsched_tz_free(tz);
  }
  return rc;
}

static void expect_rejected(const tzif_spec *s, const char *msg) {
  unsigned char buf[4096];
  char err[256] = "";
  size_t n = build_tzif(s, buf);
  int rc = parse_image(buf, n, err, sizeof err);
  if (rc != APSCHED_EINVAL || !strstr(err, msg) || !strstr(err, "Test/Zone"))
    fail_msg("rc %d, message '%s' (want '%s')", rc, err, msg);
}

static void test_hand_made_tzif(void **state) {
  (void)state;
  const int64_t times[] = {-100000, 1000000000, 2000000000};
  const uint8_t idx[] = {1, 2, 1};
  const int32_t utoff[] = {1000, 3600, 7200};
  const uint8_t isdst[] = {0, 0, 1};
  const uint8_t ai[] = {0, 4, 8};
  const char chars[] = "LMT\0AAA\0BBB";
  tzif_spec ok = {'2', 3, times, idx, 3, utoff, isdst, ai, chars, 12, "AAA-1"};
  unsigned char buf[4096];
  size_t n = build_tzif(&ok, buf);
  apsched_tz *tz = NULL;
  char err[256] = "";
  assert_int_equal(apsched__tzif_parse(buf, n, "Test/Zone", &tz, err, sizeof err), APSCHED_OK);
  apsched_civil c;
  apsched_tz_to_local(tz, -100001 * S, &c);
  assert_true(c.utc_offset == 1000 && strcmp(c.abbr, "LMT") == 0); /* type 0 before the first */
  apsched_tz_to_local(tz, 1500000000 * S, &c);
  assert_true(c.utc_offset == 7200 && c.is_dst && strcmp(c.abbr, "BBB") == 0);
  apsched_tz_to_local(tz, 3000000000 * S, &c);
  assert_true(c.utc_offset == 3600 && !c.is_dst && strcmp(c.abbr, "AAA") == 0);
  apsched_tz_free(tz);

  /* Version 1 only: 32-bit times, no footer. */
  tzif_spec v1 = ok;
  v1.version = 0;
  v1.footer = NULL;
  n = build_tzif(&v1, buf);
  assert_int_equal(apsched__tzif_parse(buf, n, "Test/Zone", &tz, err, sizeof err), APSCHED_OK);
  apsched_tz_to_local(tz, 1500000000 * S, &c);
  assert_true(c.utc_offset == 7200 && strcmp(c.abbr, "BBB") == 0);
  apsched_tz_free(tz);

  /* Every prefix of a real file is rejected or (at the footer boundary) accepted; never a crash. */
  FILE *f = fopen("/usr/share/zoneinfo/America/New_York", "rb");
  assert_non_null(f);
  unsigned char real[8192];
  size_t len = fread(real, 1, sizeof real, f);
  fclose(f);
  int accepted = 0;
  for (size_t k = 0; k < len; k++) {
    int rc = parse_image(real, k, err, sizeof err);
    assert_true(rc == APSCHED_OK || rc == APSCHED_EINVAL);
    if (rc == APSCHED_OK) accepted++;
  }
  assert_true(accepted <= 1);
  assert_int_equal(parse_image(real, len, err, sizeof err), APSCHED_OK);
  /* Random corruption: rejected or accepted, never a crash (ASan checks the rest). */
  srand(5);
  for (int i = 0; i < 3000; i++) {
    unsigned char copy[8192];
    memcpy(copy, real, len);
    for (int k = 0; k < 1 + i % 4; k++) copy[(size_t)rand() % len] ^= (unsigned char)(1 + rand() % 255);
    int rc = parse_image(copy, len, err, sizeof err);
    assert_true(rc == APSCHED_OK || rc == APSCHED_EINVAL);
  }

  /* Specific corruptions, each with its message. */
  tzif_spec s = ok;
  const int64_t unsorted[] = {5, 5, 6};
  s.times = unsorted;
  expect_rejected(&s, "is not after the previous");
  s = ok;
  const uint8_t badidx[] = {1, 3, 1};
  s.idx = badidx;
  expect_rejected(&s, "uses type 3 of 3");
  s = ok;
  const int32_t badoff[] = {INT32_MIN, 3600, 7200};
  s.utoff = badoff;
  expect_rejected(&s, "UTC offset");
  s = ok;
  const uint8_t baddst[] = {0, 2, 1};
  s.isdst = baddst;
  expect_rejected(&s, "DST flag 2");
  s = ok;
  const uint8_t badai[] = {0, 4, 12};
  s.abbr_idx = badai;
  expect_rejected(&s, "abbreviation index 12");
  s = ok;
  s.chars = "LMT\0AAA\0BBBB";
  s.nchars = 12; /* last abbreviation runs off the end */
  expect_rejected(&s, "not terminated");
  s = ok;
  s.footer = "AAA-1BBB,M13.1.0,M1.1.0";
  expect_rejected(&s, "bad footer rule");
  s = ok;
  s.ntypes = 0;
  expect_rejected(&s, "0 local time types");
  s = ok;
  s.version = '1';
  expect_rejected(&s, "version byte");

  /* Huge counts in the header are refused before any allocation. */
  unsigned char hdr[200];
  memset(hdr, 0, sizeof hdr);
  put_header(hdr, '2', 0, 0, 0, 0);
  put_header(hdr + 44, '2', 0, 0xFFFFFFFFu, 1, 4);
  assert_int_equal(parse_image(hdr, sizeof hdr, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "truncated"));
  put_header(hdr, '2', 0, 0x7FFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu); /* v1 block claims 40 GB */
  assert_int_equal(parse_image(hdr, sizeof hdr, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "truncated"));
  put_header(hdr, '2', 0, 0, 0, 0);
  put_header(hdr + 44, '2', 3, 0, 1, 4);
  assert_int_equal(parse_image(hdr, sizeof hdr, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "leap-second"));
  assert_int_equal(parse_image(NULL, 0, err, sizeof err), APSCHED_EINVAL);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (len) assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void test_hostile_files_via_tzdir(void **state) {
  (void)state;
  char dir[] = "/tmp/apsched_tz_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char sub[PATH_MAX];
  snprintf(sub, sizeof sub, "%s/Hostile", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  snprintf(sub, sizeof sub, "%s/Europe", dir);
  assert_int_equal(mkdir(sub, 0700), 0);

  FILE *f = fopen("/usr/share/zoneinfo/Asia/Tokyo", "rb");
  assert_non_null(f);
  unsigned char tokyo[8192];
  size_t len = fread(tokyo, 1, sizeof tokyo, f);
  fclose(f);
  write_file(dir, "Hostile/Empty", "", 0);
  write_file(dir, "Hostile/Text", "this is not a zone file at all, just some text\n", 48);
  write_file(dir, "Hostile/Truncated", tokyo, len / 2);
  unsigned char huge[100];
  memset(huge, 0, sizeof huge);
  put_header(huge, '2', 0, 0, 0, 0);
  put_header(huge + 44, '2', 0, 0x10000000u, 1, 4);
  write_file(dir, "Hostile/HugeCounts", huge, sizeof huge);
  write_file(dir, "Europe/Berlin", tokyo, len); /* TZDIR wins over the system directory */
  char fifo[PATH_MAX];
  snprintf(fifo, sizeof fifo, "%s/Hostile/Fifo", dir);
  assert_int_equal(mkfifo(fifo, 0600), 0); /* opening must not block */

  setenv("TZDIR", dir, 1);
  struct {
    const char *name;
    int rc;
    const char *msg;
  } cases[] = {{"Hostile/Empty", APSCHED_EINVAL, "truncated TZif file (0 bytes"},
               {"Hostile/Text", APSCHED_EINVAL, "not a TZif file"},
               {"Hostile/Truncated", APSCHED_EINVAL, "truncated"},
               {"Hostile/HugeCounts", APSCHED_EINVAL, "truncated"},
               {"Hostile/Missing", APSCHED_ENOENT, "unknown time zone 'Hostile/Missing'"},
               {"Hostile/Fifo", APSCHED_ENOENT, "unknown time zone 'Hostile/Fifo'"},
               {"Hostile", APSCHED_ENOENT, "unknown time zone 'Hostile'"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char err[256] = "";
    apsched_tz *z = NULL;
    int rc = apsched_tz_get(cases[i].name, &z, err, sizeof err);
    if (rc != cases[i].rc || !strstr(err, cases[i].msg) || !strstr(err, cases[i].name))
      fail_msg("%s: rc %d, message '%s' (want '%s')", cases[i].name, rc, err, cases[i].msg);
    assert_null(z);
  }
  apsched_tz *b = zone("Europe/Berlin");
  apsched_civil c;
  apsched_tz_to_local(b, 0, &c);
  assert_string_equal(c.abbr, "JST");
  apsched_tz_free(b);
  /* Zones not in TZDIR still come from the system directory. */
  apsched_tz *ny = zone("America/New_York");
  apsched_tz_free(ny);
  unsetenv("TZDIR");
  b = zone("Europe/Berlin");
  apsched_tz_to_local(b, 0, &c);
  assert_string_equal(c.abbr, "CET");
  apsched_tz_free(b);

  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* -------------------------------------------------------------- threading */

static const char *const thread_zones[] = {"Europe/Berlin", "America/New_York", "Asia/Tokyo",
                                           "+03:00", "EST5EDT,M3.2.0,M11.1.0",
                                           "Australia/Lord_Howe", "UTC", "Europe/Dublin"};
#define NZ (sizeof thread_zones / sizeof *thread_zones)

static void *thread_body(void *arg) {
  apsched_tz **seen = arg;
  for (int round = 0; round < 200; round++) {
    for (size_t i = 0; i < NZ; i++) {
      apsched_tz *z = NULL;
      if (apsched_tz_get(thread_zones[i], &z, NULL, 0) != APSCHED_OK) return (void *)1;
      if (round == 0) seen[i] = apsched_tz_ref(z);
      apsched_civil c;
      apsched_local_result r;
      apsched_time_t t = (1700000000LL + round * 86400LL * 3) * S;
      apsched_tz_to_local(z, t, &c);
      apsched_tz_from_local(z, &c, APSCHED_EARLIER, &r);
      if (c.second != 20 || (r.utc != t && r.kind == APSCHED_LOCAL_UNIQUE)) return (void *)1;
      apsched_tz_free(z);
    }
  }
  return NULL;
}

static void test_threads_share_zones(void **state) {
  (void)state;
  enum { T = 6 };
  pthread_t th[T];
  apsched_tz *seen[T][NZ];
  for (int i = 0; i < T; i++)
    assert_int_equal(pthread_create(&th[i], NULL, thread_body, seen[i]), 0);
  for (int i = 0; i < T; i++) {
    void *ret;
    pthread_join(th[i], &ret);
    assert_null(ret);
  }
  /* One cached object per name, whichever thread loaded it. */
  for (size_t z = 0; z < NZ; z++)
    for (int i = 0; i < T; i++) {
      assert_ptr_equal(seen[i][z], seen[0][z]);
      apsched_tz_free(seen[i][z]);
    }
}

static void test_uncached_zone_is_freed(void **state) {
  (void)state;
  /* Zones built outside the cache (the fuzz targets' path) die with their last reference. */
  apsched_tz *tz = NULL;
  const char *s = "CET-1CEST,M3.5.0,M10.5.0/3";
  assert_int_equal(apsched__tz_from_posix(s, strlen(s), s, &tz, NULL, 0), APSCHED_OK);
  apsched_tz_ref(tz);
  apsched_tz_free(tz);
  apsched_civil c;
  apsched_tz_to_local(tz, 0, &c);
  assert_string_equal(c.abbr, "CET");
  apsched_tz_free(tz); /* LeakSanitizer would report it if this did not free */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_utc_and_fixed_offsets),
      cmocka_unit_test(test_from_local_rejects_bad_fields),
      cmocka_unit_test(test_berlin_gap_and_fold),
      cmocka_unit_test(test_lord_howe_half_hour_dst),
      cmocka_unit_test(test_dublin_negative_dst),
      cmocka_unit_test(test_sao_paulo_midnight_gap_and_abolished_dst),
      cmocka_unit_test(test_apia_skipped_day),
      cmocka_unit_test(test_kathmandu_chatham_troll),
      cmocka_unit_test(test_santiago_and_nuuk_odd_rule_times),
      cmocka_unit_test(test_footer_years_2038_to_2500_and_beyond),
      cmocka_unit_test(test_from_local_consistency),
      cmocka_unit_test(test_posix_strings),
      cmocka_unit_test(test_local),
      cmocka_unit_test(test_names_are_validated),
      cmocka_unit_test(test_hand_made_tzif),
      cmocka_unit_test(test_hostile_files_via_tzdir),
      cmocka_unit_test(test_threads_share_zones),
      cmocka_unit_test(test_uncached_zone_is_freed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
