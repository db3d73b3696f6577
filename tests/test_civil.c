/* Civil date arithmetic: day numbers <-> proleptic Gregorian dates, checked
 * against a naive day-by-day calendar walk over 2,000 years each way and by
 * round trips over +-10^12 days. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "time/tz_internal.h"

static void test_known_dates(void **state) {
  (void)state;
  assert_int_equal(apsched__days_from_civil(1970, 1, 1), 0);
  assert_int_equal(apsched__days_from_civil(1969, 12, 31), -1);
  assert_int_equal(apsched__days_from_civil(2000, 3, 1), 11017);
  assert_int_equal(apsched__days_from_civil(2038, 1, 19), 24855);
  assert_int_equal(apsched__days_from_civil(1, 1, 1), -719162);
  assert_int_equal(apsched__days_from_civil(0, 3, 1), -719468);
  assert_int_equal(apsched__days_from_civil(-1, 12, 31), -719529);
  int64_t y;
  int m, d;
  apsched__civil_from_days(-719529, &y, &m, &d);
  assert_true(y == -1 && m == 12 && d == 31);
  apsched__civil_from_days(-719528, &y, &m, &d); /* year 0 is a leap year */
  assert_true(y == 0 && m == 1 && d == 1);
  apsched__civil_from_days(apsched__days_from_civil(0, 2, 29), &y, &m, &d);
  assert_true(y == 0 && m == 2 && d == 29);
}

static void test_leap_rules(void **state) {
  (void)state;
  assert_true(apsched__is_leap(2000));
  assert_true(apsched__is_leap(2024));
  assert_true(apsched__is_leap(0));
  assert_true(apsched__is_leap(-4));
  assert_true(apsched__is_leap(-400));
  assert_false(apsched__is_leap(1900));
  assert_false(apsched__is_leap(2100));
  assert_false(apsched__is_leap(2023));
  assert_false(apsched__is_leap(-100));
  assert_false(apsched__is_leap(-1));
  assert_int_equal(apsched__days_in_month(2024, 2), 29);
  assert_int_equal(apsched__days_in_month(2100, 2), 28);
  assert_int_equal(apsched__days_in_month(2000, 2), 29);
  assert_int_equal(apsched__days_in_month(2023, 4), 30);
  assert_int_equal(apsched__days_in_month(2023, 12), 31);
  assert_int_equal(apsched__days_in_month(2023, 13), 0);
  /* Feb 29 exists exactly in leap years. */
  assert_int_equal(apsched__days_from_civil(2100, 3, 1) - apsched__days_from_civil(2100, 2, 28), 1);
  assert_int_equal(apsched__days_from_civil(2000, 3, 1) - apsched__days_from_civil(2000, 2, 28), 2);
}

static void test_weekday_and_floor_div(void **state) {
  (void)state;
  assert_int_equal(apsched__weekday(0), 4);                                      /* Thursday */
  assert_int_equal(apsched__weekday(apsched__days_from_civil(2000, 1, 1)), 6);   /* Saturday */
  assert_int_equal(apsched__weekday(apsched__days_from_civil(2026, 3, 29)), 0);  /* Sunday */
  assert_int_equal(apsched__weekday(apsched__days_from_civil(1969, 12, 28)), 0); /* Sunday */
  assert_int_equal(apsched__weekday(-1000000), (int)(((-1000000 + 4) % 7 + 7) % 7));
  assert_int_equal(apsched__floor_div(7, 2), 3);
  assert_int_equal(apsched__floor_div(-7, 2), -4);
  assert_int_equal(apsched__floor_div(-8, 2), -4);
  assert_int_equal(apsched__floor_div(INT64_MIN, 86400), INT64_MIN / 86400 - 1);
  assert_int_equal(apsched__floor_div(-1, 1000000), -1);
}

/* Walks the calendar one day at a time with nothing but month lengths. */
static void walk(int64_t y, int m, int d, int64_t days, int step, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    assert_int_equal(apsched__days_from_civil(y, m, d), days);
    int64_t yy;
    int mm, dd;
    apsched__civil_from_days(days, &yy, &mm, &dd);
    if (yy != y || mm != m || dd != d)
      fail_msg("day %lld: got %lld-%d-%d, expected %lld-%d-%d", (long long)days, (long long)yy, mm,
               dd, (long long)y, m, d);
    int len = m == 2 ? ((y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28)
                     : (m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31;
    if (step > 0) {
      if (++d > len) d = 1, m = m == 12 ? (y++, 1) : m + 1;
    } else if (--d < 1) {
      m = m == 1 ? (y--, 12) : m - 1;
      d = m == 2 ? ((y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28)
                 : (m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31;
    }
    days += step;
  }
}

static void test_walk_against_naive_calendar(void **state) {
  (void)state;
  walk(1970, 1, 1, 0, 1, 2000LL * 366);    /* to about 3970 */
  walk(1970, 1, 1, 0, -1, 4000LL * 366);   /* to about -2030, through year 0 */
}

static void test_round_trip_huge_range(void **state) {
  (void)state;
  /* +-10^12 days is about +-2.7 billion years. */
  for (int64_t days = -1000000000000LL; days <= 1000000000000LL; days += 99999989LL) {
    int64_t y;
    int m, d;
    apsched__civil_from_days(days, &y, &m, &d);
    assert_true(m >= 1 && m <= 12 && d >= 1 && d <= apsched__days_in_month(y, m));
    assert_int_equal(apsched__days_from_civil(y, m, d), days);
  }
  /* Year starts are exactly 365 or 366 days apart, negative years included. */
  for (int64_t y = -1000000; y < 1000000; y += 997) {
    int64_t len = apsched__days_from_civil(y + 1, 1, 1) - apsched__days_from_civil(y, 1, 1);
    assert_int_equal(len, apsched__is_leap(y) ? 366 : 365);
  }
  /* A 400-year era is 146097 days everywhere. */
  for (int64_t y = -100000000; y < 100000000; y += 999983)
    assert_int_equal(apsched__days_from_civil(y + 400, 3, 1) - apsched__days_from_civil(y, 3, 1),
                     146097);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_dates),
      cmocka_unit_test(test_leap_rules),
      cmocka_unit_test(test_weekday_and_floor_div),
      cmocka_unit_test(test_walk_against_naive_calendar),
      cmocka_unit_test(test_round_trip_huge_range),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
