/* Time text: apsched_time_parse / apsched_time_format, Python-style durations
 * (apsched__format_duration) and apsched_now. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "time/tz_internal.h"

#define S APSCHED_SEC

static apsched_tz *zone(const char *name) {
  apsched_tz *tz = NULL;
  char err[256];
  if (apsched_tz_get(name, &tz, err, sizeof err) != APSCHED_OK) fail_msg("%s: %s", name, err);
  return tz;
}

static apsched_time_t parse_ok(const char *text, const apsched_tz *tz) {
  apsched_time_t t = 0;
  char err[256] = "";
  int rc = apsched_time_parse(text, tz, &t, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("'%s': rc %d: %s", text, rc, err);
  return t;
}

/* Parsing fails, leaves the output alone and the message mentions `want`. */
static void parse_bad(const char *text, const char *want) {
  apsched_time_t t = 12345;
  char err[256] = "";
  assert_int_equal(apsched_time_parse(text, NULL, &t, err, sizeof err), APSCHED_EINVAL);
  assert_int_equal(t, 12345);
  if (!strstr(err, want)) fail_msg("'%s': message '%s' lacks '%s'", text, err, want);
}

static void test_parse_formats(void **state) {
  (void)state;
  const int64_t d = 1635120000; /* 2021-10-25T00:00:00Z */
  assert_int_equal(parse_ok("2021-10-25", NULL), d * S);
  assert_int_equal(parse_ok("2021-10-25 07:48:05", NULL), (d + 7 * 3600 + 48 * 60 + 5) * S);
  assert_int_equal(parse_ok("2021-10-25T07:48:05", NULL), (d + 28085) * S);
  assert_int_equal(parse_ok("2021-10-25t07:48:05z", NULL), (d + 28085) * S);
  assert_int_equal(parse_ok("2021-10-25T07:48:05Z", NULL), (d + 28085) * S);
  assert_int_equal(parse_ok("2021-10-25T07:48:05.25+02:00", NULL), (d + 28085 - 7200) * S + 250000);
  assert_int_equal(parse_ok("2021-10-25T07:48:05.123456Z", NULL), (d + 28085) * S + 123456);
  assert_int_equal(parse_ok("2021-10-25T07:48:05.000001Z", NULL), (d + 28085) * S + 1);
  assert_int_equal(parse_ok("2021-10-25T07:48:05,5Z", NULL), (d + 28085) * S + 500000);
  assert_int_equal(parse_ok("2021-10-25 07:48:05-03:30", NULL), (d + 28085 + 12600) * S);
  assert_int_equal(parse_ok("2021-10-25 07:48:05+0530", NULL), (d + 28085 - 19800) * S);
  assert_int_equal(parse_ok("2021-10-25 07:48:05+05", NULL), (d + 28085 - 18000) * S);
  assert_int_equal(parse_ok("2021-10-25 07:48:05+00:53:28", NULL), (d + 28085 - 3208) * S);
  assert_int_equal(parse_ok("2021-10-25 07:48", NULL), (d + 28080) * S);
  assert_int_equal(parse_ok("2021-10-5 7:08:09", NULL), (d - 20 * 86400 + 7 * 3600 + 489) * S);
  assert_int_equal(parse_ok("  2021-10-25  ", NULL), d * S);
  assert_int_equal(parse_ok("1969-12-31T23:59:59.5Z", NULL), -S / 2);
  assert_int_equal(parse_ok("2024-02-29", NULL), 1709164800 * S);
}

static void test_parse_local_time_in_zone(void **state) {
  (void)state;
  apsched_tz *berlin = zone("Europe/Berlin");
  /* Ordinary summer time. */
  assert_int_equal(parse_ok("2026-07-01 12:00:00", berlin), parse_ok("2026-07-01T10:00:00Z", NULL));
  /* Skipped (02:00-03:00 on 2026-03-29): the first instant after the gap. */
  assert_int_equal(parse_ok("2026-03-29 02:30:00", berlin), parse_ok("2026-03-29T01:00:00Z", NULL));
  assert_int_equal(parse_ok("2026-03-29 02:30:00.5", berlin), parse_ok("2026-03-29T01:00:00Z", NULL));
  /* Repeated (02:00-03:00 on 2026-10-25): the first occurrence (CEST). */
  assert_int_equal(parse_ok("2026-10-25 02:30:00", berlin), parse_ok("2026-10-25T00:30:00Z", NULL));
  /* An explicit offset wins over the zone. */
  assert_int_equal(parse_ok("2026-07-01 12:00:00Z", berlin), parse_ok("2026-07-01T12:00:00Z", NULL));
  apsched_tz *kathmandu = zone("Asia/Kathmandu");
  assert_int_equal(parse_ok("2026-01-01", kathmandu), parse_ok("2025-12-31T18:15:00Z", NULL));
  apsched_tz_free(kathmandu);
  apsched_tz_free(berlin);
}

static void test_parse_errors(void **state) {
  (void)state;
  parse_bad("2021-13-01", "'2021-13-01': month 13 is out of range 1..12");
  parse_bad("2021-00-01", "month 0 is out of range 1..12");
  parse_bad("2021-02-29", "day 29 is out of range 1..28 for February 2021");
  parse_bad("2021-04-31", "day 31 is out of range 1..30 for April 2021");
  parse_bad("2021-10-25 24:00:00", "hour 24 is out of range 0..23");
  parse_bad("2021-10-25 23:60:00", "minute 60 is out of range 0..59");
  parse_bad("2021-10-25 23:59:60", "second 60 is out of range 0..59");
  parse_bad("2021-10-25 23:59:59.1234567", "more than 6 digits");
  parse_bad("2021-10-25 23:59:59+24:00", "offset hour 24 is out of range 0..23");
  parse_bad("2021-10-25 23:59:59+02:60", "offset minute 60 is out of range 0..59");
  parse_bad("2021/10/25", "expected '-' after the year");
  parse_bad("21-10-25", "4-digit year");
  parse_bad("2021-10-25T", "the hour");
  parse_bad("2021-10-25 7", "':' after the hour");
  parse_bad("2021-10-25 07:4", "2-digit minutes");
  parse_bad("2021-10-25 07:48:05.", "digits after the decimal point");
  parse_bad("2021-10-25 07:48:05 junk", "expected the end");
  parse_bad("2021-10-25x", "'T' or ' '");
  parse_bad("", "empty");
  parse_bad("   ", "empty");
  apsched_time_t t;
  assert_int_equal(apsched_time_parse(NULL, NULL, &t, NULL, 0), APSCHED_EINVAL);
  assert_int_equal(apsched_time_parse("2021-10-25", NULL, NULL, NULL, 0), APSCHED_EINVAL);
  /* A tiny message buffer is still terminated. */
  char small[8];
  assert_int_equal(apsched_time_parse("2021-13-01", NULL, &t, small, sizeof small), APSCHED_EINVAL);
  assert_int_equal(strlen(small), 7);
}

static void expect_format(apsched_time_t t, const apsched_tz *tz, const char *want) {
  char buf[64];
  int n = apsched_time_format(t, tz, buf, sizeof buf);
  assert_string_equal(buf, want);
  assert_int_equal(n, (int)strlen(want));
}

static void test_format(void **state) {
  (void)state;
  apsched_tz *berlin = zone("Europe/Berlin"), *fixed = zone("+05:45"), *lon = zone("Europe/London");
  apsched_time_t t = parse_ok("2026-03-29T01:00:00Z", NULL);
  expect_format(t, NULL, "2026-03-29T01:00:00Z");
  expect_format(t, apsched_tz_utc(), "2026-03-29T01:00:00Z");
  expect_format(t, berlin, "2026-03-29T03:00:00+02:00");
  expect_format(t - S, berlin, "2026-03-29T01:59:59+01:00");
  expect_format(t + 250000, berlin, "2026-03-29T03:00:00.25+02:00");
  expect_format(t + 1, berlin, "2026-03-29T03:00:00.000001+02:00");
  expect_format(t + 123456, fixed, "2026-03-29T06:45:00.123456+05:45");
  /* A zone at offset zero that is not UTC itself writes +00:00. */
  expect_format(parse_ok("2026-01-10T12:00:00Z", NULL), lon, "2026-01-10T12:00:00+00:00");
  /* Local mean time has seconds in its offset (Berlin LMT +00:53:28). */
  expect_format(parse_ok("1890-01-01T00:00:00Z", NULL), berlin, "1890-01-01T00:53:28+00:53:28");
  expect_format(-1, NULL, "1969-12-31T23:59:59.999999Z");
  expect_format(parse_ok("0000-01-01", NULL), NULL, "0000-01-01T00:00:00Z");
  expect_format(parse_ok("9999-12-31T23:59:59Z", NULL) + S, NULL, "+10000-01-01T00:00:00Z");
  expect_format(parse_ok("0000-01-01", NULL) - S, NULL, "-0001-12-31T23:59:59Z");
  /* snprintf semantics. */
  assert_int_equal(apsched_time_format(t, berlin, NULL, 0), 25);
  char small[11];
  memset(small, 'x', sizeof small);
  assert_int_equal(apsched_time_format(t, berlin, small, sizeof small), 25);
  assert_string_equal(small, "2026-03-29");
  assert_int_equal(apsched_time_format(APSCHED_TIME_NONE, NULL, small, sizeof small),
                   APSCHED_EINVAL);
  assert_string_equal(small, "");
  apsched_tz_free(berlin);
  apsched_tz_free(fixed);
  apsched_tz_free(lon);
}

static void test_format_parse_round_trip(void **state) {
  (void)state;
  const char *names[] = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                         "Asia/Kathmandu", "-03:30", "Europe/Dublin"};
  srand(7);
  for (size_t z = 0; z < sizeof names / sizeof *names; z++) {
    apsched_tz *tz = zone(names[z]);
    for (int i = 0; i < 20000; i++) {
      /* 1900..2400, with random microseconds on half of them */
      int64_t sec = -2208988800LL + (int64_t)((double)rand() / RAND_MAX * 15778800000.0);
      apsched_time_t t = sec * S + (i & 1 ? rand() % 1000000 : 0);
      char buf[64];
      apsched_time_format(t, tz, buf, sizeof buf);
      apsched_time_t back = parse_ok(buf, tz);
      if (back != t) fail_msg("%s: %lld -> %s -> %lld", names[z], (long long)t, buf, (long long)back);
    }
    apsched_tz_free(tz);
  }
}

static void expect_duration(int64_t usec, const char *want) {
  char buf[64];
  apsched__format_duration(usec, buf, sizeof buf);
  assert_string_equal(buf, want);
}

static void test_format_duration(void **state) {
  (void)state;
  /* Reference strings are Python's str(timedelta(...)). */
  expect_duration(0, "0:00:00");
  expect_duration(3 * S, "0:00:03");
  expect_duration(250000, "0:00:00.250000");
  expect_duration(1, "0:00:00.000001");
  expect_duration(26 * APSCHED_HOUR, "1 day, 2:00:00");
  expect_duration(2 * APSCHED_DAY, "2 days, 0:00:00");
  expect_duration(-S, "-1 day, 23:59:59");
  expect_duration(-1, "-1 day, 23:59:59.999999");
  expect_duration(-25 * APSCHED_HOUR, "-2 days, 23:00:00");
  expect_duration(10 * APSCHED_HOUR + 5 * APSCHED_MINUTE + 7 * S + 5, "10:05:07.000005");
  expect_duration(INT64_MAX, "106751991 days, 4:00:54.775807");
  expect_duration(INT64_MIN, "-106751992 days, 19:59:05.224192");
  char small[5];
  apsched__format_duration(3 * S, small, sizeof small);
  assert_string_equal(small, "0:00");
  apsched__format_duration(3 * S, NULL, 0); /* must not crash */
}

static void test_now(void **state) {
  (void)state;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  apsched_time_t now = apsched_now();
  int64_t ref = (int64_t)ts.tv_sec * S + ts.tv_nsec / 1000;
  assert_true(now >= ref && now - ref < 5 * S);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_formats),
      cmocka_unit_test(test_parse_local_time_in_zone),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_format_parse_round_trip),
      cmocka_unit_test(test_format_duration),
      cmocka_unit_test(test_now),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
