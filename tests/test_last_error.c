/* apsched_last_error() after failing calls of the trigger, time and zone
 * API: every failure leaves a fresh message naming the bad input, also when
 * the caller passes no errbuf; successful calls leave the message alone,
 * even when they tried another reading of their input on the way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "apsched.h"
#include "apsched_plugin.h"

/* Leaves an unrelated message behind, so that each check below sees a
 * message written by the call it makes, not one left over. */
static void make_stale(void) {
  apsched_time_t t;
  assert_int_equal(apsched_time_parse("stale", NULL, &t, NULL, 0), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(),
                      "'stale': expected a 4-digit year (like 2021-10-25) at 'stale'");
}

#define EXPECT_LAST_ERROR(call, rc, message)                                                   \
  do {                                                                                         \
    make_stale();                                                                              \
    assert_int_equal((call), (rc));                                                            \
    assert_string_equal(apsched_last_error(), (message));                                      \
  } while (0)

/* The text parsers, with errbuf NULL: the message is only in last_error. */
static void test_parsers_without_errbuf(void **state) {
  (void)state;
  apsched_trigger *t = NULL;
  apsched_time_t when = 0;
  apsched_tz *tz = NULL;
  EXPECT_LAST_ERROR(apsched_trigger_crontab("61 * * * *", "UTC", &t, NULL, 0), APSCHED_EINVAL,
                    "minute: '61': 61 is above the maximum 59");
  EXPECT_LAST_ERROR(apsched_trigger_crontab("1 2 3", "UTC", &t, NULL, 0), APSCHED_EINVAL,
                    "crontab '1 2 3': expected 5 fields (minute hour day month day_of_week) or "
                    "6 (second first), got 3");
  EXPECT_LAST_ERROR(apsched_trigger_parse("cron[hour='25', timezone='UTC']", &t, NULL, 0),
                    APSCHED_EINVAL, "hour: '25': 25 is above the maximum 23");
  EXPECT_LAST_ERROR(apsched_trigger_parse("weekly[day=1]", &t, NULL, 0), APSCHED_EINVAL,
                    "'weekly[day=1]': unknown trigger kind 'weekly'");
  EXPECT_LAST_ERROR(apsched_trigger_parse("interval[minutes=x]", &t, NULL, 0), APSCHED_EINVAL,
                    "minutes: 'x' is not a whole number in 0..9223372036854775807");
  EXPECT_LAST_ERROR(apsched_time_parse("2026-13-01", NULL, &when, NULL, 0), APSCHED_EINVAL,
                    "'2026-13-01': month 13 is out of range 1..12");
  EXPECT_LAST_ERROR(apsched_tz_get("Mars/Olympus_Mons", &tz, NULL, 0), APSCHED_ENOENT,
                    "unknown time zone 'Mars/Olympus_Mons'");
  EXPECT_LAST_ERROR(apsched_tz_get("../etc/passwd", &tz, NULL, 0), APSCHED_EINVAL,
                    "time zone name '../etc/passwd': a component may not start with '.'");
  assert_null(t);
  assert_null(tz);
  assert_int_equal(when, 0);
}

/* With an errbuf, last_error holds the same message. */
static void test_parsers_with_errbuf(void **state) {
  (void)state;
  apsched_trigger *t = NULL;
  char err[256];
  make_stale();
  assert_int_equal(apsched_trigger_parse("calendar[days=1, hour=24]", &t, err, sizeof err),
                   APSCHED_EINVAL);
  assert_string_equal(err, "hour: '24' is not a whole number in 0..23");
  assert_string_equal(apsched_last_error(), err);
  /* A short errbuf truncates only its own copy. */
  char tiny[8];
  make_stale();
  assert_int_equal(apsched_trigger_crontab("61 * * * *", "UTC", &t, tiny, sizeof tiny),
                   APSCHED_EINVAL);
  assert_string_equal(tiny, "minute:");
  assert_string_equal(apsched_last_error(), "minute: '61': 61 is above the maximum 59");
}

/* A custom kind's parser that fails without a word still leaves a message;
 * one that writes a message has it in last_error too. */
static int silent_parse(const char *params, apsched_trigger **out, char *errbuf, size_t errlen) {
  (void)params, (void)out, (void)errbuf, (void)errlen;
  return APSCHED_EINVAL;
}

static int talking_parse(const char *params, apsched_trigger **out, char *errbuf, size_t errlen) {
  (void)out;
  if (errbuf && errlen) snprintf(errbuf, errlen, "%s", params);
  return APSCHED_ERANGE;
}

static void test_custom_kind_failures(void **state) {
  (void)state;
  apsched_trigger *t = NULL;
  assert_int_equal(apsched_register_trigger_kind("silent", silent_parse), APSCHED_OK);
  assert_int_equal(apsched_register_trigger_kind("talking", talking_parse), APSCHED_OK);
  EXPECT_LAST_ERROR(apsched_trigger_parse("silent[x=1]", &t, NULL, 0), APSCHED_EINVAL,
                    "'silent[x=1]': the silent parser failed: invalid argument");
  EXPECT_LAST_ERROR(apsched_trigger_parse("talking[x is wrong]", &t, NULL, 0), APSCHED_ERANGE,
                    "x is wrong");
  EXPECT_LAST_ERROR(apsched_register_trigger_kind("silent", silent_parse), APSCHED_EEXIST,
                    "register_trigger_kind: 'silent' is already registered");
  EXPECT_LAST_ERROR(apsched_register_trigger_kind("cron", silent_parse), APSCHED_EEXIST,
                    "register_trigger_kind: 'cron' is already registered");
  EXPECT_LAST_ERROR(apsched_register_trigger_kind("Bad-Kind", silent_parse), APSCHED_EINVAL,
                    "register_trigger_kind: 'Bad-Kind': only a-z, 0-9 and '_' are allowed");
  EXPECT_LAST_ERROR(apsched_register_trigger_kind("", silent_parse), APSCHED_EINVAL,
                    "register_trigger_kind: '': a kind has 1..31 characters");
  EXPECT_LAST_ERROR(apsched_register_trigger_kind("fine", NULL), APSCHED_EINVAL,
                    "register_trigger_kind: 'fine': parse is NULL");
  EXPECT_LAST_ERROR(apsched_register_trigger_kind(NULL, silent_parse), APSCHED_EINVAL,
                    "register_trigger_kind: kind is NULL");
  assert_null(t);
}

/* Bad arguments to the trigger calls name the argument. */
static void test_trigger_arguments(void **state) {
  (void)state;
  apsched_trigger *t = NULL;
  apsched_date_options d = {.run_date = 1};
  EXPECT_LAST_ERROR(apsched_trigger_date(&d, NULL), APSCHED_EINVAL, "trigger_date: out is NULL");
  EXPECT_LAST_ERROR(apsched_trigger_interval(NULL, &t, NULL, 0), APSCHED_EINVAL,
                    "trigger_interval: opt is NULL");
  apsched_interval_options iv = {.minutes = 1};
  EXPECT_LAST_ERROR(apsched_trigger_interval(&iv, NULL, NULL, 0), APSCHED_EINVAL,
                    "trigger_interval: out is NULL");
  EXPECT_LAST_ERROR(apsched_trigger_cron(NULL, &t, NULL, 0), APSCHED_EINVAL,
                    "trigger_cron: opt is NULL");
  EXPECT_LAST_ERROR(apsched_trigger_crontab(NULL, "UTC", &t, NULL, 0), APSCHED_EINVAL,
                    "trigger_crontab: expr is NULL");
  EXPECT_LAST_ERROR(apsched_trigger_calendar(NULL, &t, NULL, 0), APSCHED_EINVAL,
                    "trigger_calendar: opt is NULL");
  EXPECT_LAST_ERROR(apsched_trigger_and(NULL, 2, &t, NULL, 0), APSCHED_EINVAL,
                    "trigger_and: triggers is NULL (n=2)");
  EXPECT_LAST_ERROR(apsched_trigger_parse(NULL, &t, NULL, 0), APSCHED_EINVAL,
                    "trigger_parse: text is NULL");
  EXPECT_LAST_ERROR(apsched_trigger_clone(NULL, &t), APSCHED_EINVAL, "trigger_clone: t is NULL");
  EXPECT_LAST_ERROR(apsched_trigger_describe(NULL, NULL, 0), APSCHED_EINVAL,
                    "trigger_describe: t is NULL");
  EXPECT_LAST_ERROR(apsched_trigger_set_jitter(NULL, 1), APSCHED_EINVAL,
                    "trigger_set_jitter: t is NULL");
  assert_null(t);

  assert_int_equal(apsched_trigger_date(&d, &t), APSCHED_OK);
  EXPECT_LAST_ERROR(apsched_trigger_set_jitter(t, -5), APSCHED_EINVAL,
                    "trigger_set_jitter: jitter -5 is negative");
  EXPECT_LAST_ERROR(apsched_trigger_clone(t, NULL), APSCHED_EINVAL,
                    "trigger_clone: out is NULL");
  make_stale();
  assert_int_equal(apsched_trigger_next(NULL, APSCHED_TIME_NONE, 0), APSCHED_TIME_NONE);
  assert_string_equal(apsched_last_error(), "trigger_next: t is NULL");
  apsched_trigger_free(t);
}

/* Bad arguments to the time and zone calls. */
static void test_time_arguments(void **state) {
  (void)state;
  apsched_civil c = {0};
  apsched_local_result r;
  char buf[64];
  EXPECT_LAST_ERROR(apsched_time_format(APSCHED_TIME_NONE, NULL, buf, sizeof buf),
                    APSCHED_EINVAL, "time_format: t is APSCHED_TIME_NONE, not a time");
  EXPECT_LAST_ERROR(apsched_time_parse(NULL, NULL, &r.utc, NULL, 0), APSCHED_EINVAL,
                    "time_parse: text is NULL");
  EXPECT_LAST_ERROR(apsched_tz_to_local(NULL, 0, NULL), APSCHED_EINVAL,
                    "tz_to_local: out is NULL");
  EXPECT_LAST_ERROR(apsched_tz_to_local(NULL, APSCHED_TIME_NONE, &c), APSCHED_EINVAL,
                    "tz_to_local: t is APSCHED_TIME_NONE, not a time");
  apsched_civil feb30 = {.year = 2026, .month = 2, .day = 30};
  EXPECT_LAST_ERROR(apsched_tz_from_local(NULL, &feb30, APSCHED_GAP_END, &r), APSCHED_EINVAL,
                    "tz_from_local: day 30 is out of range 1..28");
  apsched_civil month13 = {.year = 2026, .month = 13, .day = 1};
  EXPECT_LAST_ERROR(apsched_tz_from_local(NULL, &month13, APSCHED_GAP_END, &r), APSCHED_EINVAL,
                    "tz_from_local: month 13 is out of range 1..12");
  apsched_civil far = {.year = 400000, .month = 1, .day = 1};
  EXPECT_LAST_ERROR(apsched_tz_from_local(NULL, &far, APSCHED_GAP_END, &r), APSCHED_ERANGE,
                    "tz_from_local: year 400000 is out of range -300000..300000");
  apsched_civil edge = {.year = 294247, .month = 1, .day = 11};
  EXPECT_LAST_ERROR(apsched_tz_from_local(NULL, &edge, APSCHED_GAP_END, &r), APSCHED_ERANGE,
                    "tz_from_local: 294247-01-11T00:00:00 in UTC is beyond the range of "
                    "apsched_time_t");
  apsched_civil ok = {.year = 2026, .month = 1, .day = 1};
  EXPECT_LAST_ERROR(apsched_tz_from_local(NULL, &ok, (apsched_disambiguate)7, &r),
                    APSCHED_EINVAL, "tz_from_local: how=7 is not an apsched_disambiguate");
  EXPECT_LAST_ERROR(apsched_tz_from_local(NULL, NULL, APSCHED_GAP_END, &r), APSCHED_EINVAL,
                    "tz_from_local: local is NULL");
  EXPECT_LAST_ERROR(apsched_tz_get(NULL, NULL, NULL, 0), APSCHED_EINVAL, "tz_get: out is NULL");
}

/* Successful calls leave the message alone, also those that first try their
 * input one way and then succeed another way. */
static void test_success_leaves_it(void **state) {
  (void)state;
  apsched_tz *tz = NULL;
  char buf[64];
  make_stale();
  const char *before = "'stale': expected a 4-digit year (like 2021-10-25) at 'stale'";
  /* Not a valid file name (the ','), so read as a POSIX TZ string. */
  assert_int_equal(apsched_tz_get("EST5EDT,M3.2.0,M11.1.0", &tz, NULL, 0), APSCHED_OK);
  apsched_tz_free(tz);
  assert_int_equal(apsched_tz_get("<+0330>-3:30", &tz, NULL, 0), APSCHED_OK);
  apsched_tz_free(tz);
  assert_true(apsched_time_format(0, NULL, buf, sizeof buf) > 0);
  /* A trigger that finds no time answers "none", which is no failure (this
   * unbound calendar asks the zone for the local date of "now" = NONE). */
  apsched_trigger *t = NULL;
  apsched_calendar_options cal = {.years = 1, .timezone = "Europe/Berlin"};
  assert_int_equal(apsched_trigger_calendar(&cal, &t, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, APSCHED_TIME_NONE),
                   APSCHED_TIME_NONE);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, INT64_MAX), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  assert_string_equal(apsched_last_error(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parsers_without_errbuf),
      cmocka_unit_test(test_parsers_with_errbuf),
      cmocka_unit_test(test_custom_kind_failures),
      cmocka_unit_test(test_trigger_arguments),
      cmocka_unit_test(test_time_arguments),
      cmocka_unit_test(test_success_leaves_it),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
