/* Cron expression parsing: field expressions -> matchers, field defaults,
 * crontab numbering and wrap-around, canonical text, validation messages,
 * the impossibility check and the bounded local-time search. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "triggers/cron_internal.h"

/* Eight field values (year .. second); missing ones are NULL (not given). */
#define FIELDS(...) ((const char *[APSCHED__CRON_NFIELDS]){__VA_ARGS__})

/* The canonical texts written by the last parse. */
static apsched__cron_text tx;

/* Parses one field (the others not given) into *sp; returns the code. */
static int one_field(apsched__cron_parsed *sp, int field, const char *text, char *err, size_t len) {
  const char *values[APSCHED__CRON_NFIELDS] = {NULL};
  values[field] = text;
  if (err && len) err[0] = '\0';
  return apsched__cron_parse_fields(sp, &tx, values, err, len);
}

static uint64_t bits(const int *v, int n) {
  uint64_t m = 0;
  for (int i = 0; i < n; i++) m |= 1ull << v[i];
  return m;
}

static void expect_error(int field, const char *text, const char *message) {
  apsched__cron_parsed sp;
  char err[256];
  int rc = one_field(&sp, field, text, err, sizeof err);
  if (rc != APSCHED_EINVAL || strcmp(err, message) != 0)
    fail_msg("%s='%s': rc %d, message \"%s\", wanted \"%s\"", apsched__cron_field_names[field],
             text, rc, err, message);
}

static void test_masks(void **state) {
  (void)state;
  apsched__cron_parsed sp;
  assert_int_equal(one_field(&sp, APSCHED__CRON_MINUTE, "*/15", NULL, 0), APSCHED_OK);
  assert_true(sp.spec.minute == bits((int[]){0, 15, 30, 45}, 4));
  assert_true(sp.spec.hour == 0xffffff); /* coarser than minute: '*' */
  assert_true(sp.spec.second == 1);      /* finer: the minimum */
  assert_true(sp.spec.wildcard);

  assert_int_equal(one_field(&sp, APSCHED__CRON_HOUR, "2-9/3, 22", NULL, 0), APSCHED_OK);
  assert_true(sp.spec.hour == bits((int[]){2, 5, 8, 22}, 4));
  assert_true(sp.spec.minute == 1 && sp.spec.second == 1);
  assert_false(sp.spec.wildcard);
  assert_string_equal(tx.field[APSCHED__CRON_HOUR], "2-9/3,22");

  /* "a/s" runs from a to the field's maximum. */
  assert_int_equal(one_field(&sp, APSCHED__CRON_SECOND, "50/4", NULL, 0), APSCHED_OK);
  assert_true(sp.spec.second == bits((int[]){50, 54, 58}, 3));
  assert_string_equal(tx.field[APSCHED__CRON_SECOND], "50/4");

  /* Steps count from the field minimum: days 1, 11, 21, 31; weekdays from Monday. */
  assert_int_equal(one_field(&sp, APSCHED__CRON_DAY, "*/10", NULL, 0), APSCHED_OK);
  assert_true(sp.spec.day == (uint32_t)bits((int[]){1, 11, 21, 31}, 4));
  assert_int_equal(one_field(&sp, APSCHED__CRON_DOW, "*/2", NULL, 0), APSCHED_OK);
  assert_int_equal(sp.spec.dow, 0x55); /* mon wed fri sun */

  /* Names, case-insensitive; the text keeps names, lowercased. */
  assert_int_equal(one_field(&sp, APSCHED__CRON_MONTH, "JAN-Mar,Oct", NULL, 0), APSCHED_OK);
  assert_int_equal(sp.spec.month, (1 << 1) | (1 << 2) | (1 << 3) | (1 << 10));
  assert_string_equal(tx.field[APSCHED__CRON_MONTH], "jan-mar,oct");
  assert_int_equal(one_field(&sp, APSCHED__CRON_DOW, "Tue-SAT", NULL, 0), APSCHED_OK);
  assert_int_equal(sp.spec.dow, 0x3e);
  assert_string_equal(tx.field[APSCHED__CRON_DOW], "tue-sat");
  /* Extension: a step on a named range. */
  assert_int_equal(one_field(&sp, APSCHED__CRON_DOW, "mon-fri/2", NULL, 0), APSCHED_OK);
  assert_int_equal(sp.spec.dow, 0x15);

  /* Day specials. */
  assert_int_equal(one_field(&sp, APSCHED__CRON_DAY, "last, 3RD  Fri,last sun,1", NULL, 0),
                   APSCHED_OK);
  assert_true(sp.spec.last_day);
  assert_int_equal(sp.spec.nth[2], 1 << 4);
  assert_int_equal(sp.spec.last_wd, 1 << 6);
  assert_true(sp.spec.day == 2);
  assert_string_equal(tx.field[APSCHED__CRON_DAY], "last,3rd fri,last sun,1");

  /* Leading zeros and degenerate ranges normalise. */
  assert_int_equal(one_field(&sp, APSCHED__CRON_MINUTE, "05,7-7", NULL, 0), APSCHED_OK);
  assert_string_equal(tx.field[APSCHED__CRON_MINUTE], "5,7");

  /* Years are ranges, not masks. */
  assert_int_equal(one_field(&sp, APSCHED__CRON_YEAR, "2009/2,2030-2032", NULL, 0), APSCHED_OK);
  assert_int_equal(apsched__cron_next_year(&sp.spec, 2010), 2011);
  assert_int_equal(apsched__cron_next_year(&sp.spec, 2029), 2029);
  assert_int_equal(apsched__cron_next_year(&sp.spec, 2030), 2030);
  assert_int_equal(apsched__cron_next_year(&sp.spec, 9998), 9999);
  assert_int_equal(apsched__cron_next_year(&sp.spec, 10000), -1);
}

static void test_defaults(void **state) {
  (void)state;
  apsched__cron_parsed sp;
  /* APScheduler: coarser than the finest given field '*', finer the minimum. */
  const char *v1[APSCHED__CRON_NFIELDS] = {"2009", "2", NULL, NULL, NULL, "0", NULL, NULL};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v1, NULL, 0), APSCHED_OK);
  static const char *const want1[] = {"2009", "2", "*", "*", "*", "0", "0", "0"};
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++) assert_string_equal(tx.field[f], want1[f]);

  const char *v2[APSCHED__CRON_NFIELDS] = {"2009,2008", NULL};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v2, NULL, 0), APSCHED_OK);
  static const char *const want2[] = {"2009,2008", "1", "1", "*", "*", "0", "0", "0"};
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++) assert_string_equal(tx.field[f], want2[f]);

  /* Nothing given: every second. */
  const char *v3[APSCHED__CRON_NFIELDS] = {NULL};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v3, NULL, 0), APSCHED_OK);
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++) assert_string_equal(tx.field[f], "*");
  assert_true(sp.spec.second == 0x0fffffffffffffffull && sp.spec.day_any && sp.spec.year_any && sp.spec.wildcard);

  /* Only week given: day stays '*', day_of_week too, time at midnight. */
  const char *v4[APSCHED__CRON_NFIELDS] = {NULL, NULL, NULL, "8"};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v4, NULL, 0), APSCHED_OK);
  static const char *const want4[] = {"*", "*", "*", "8", "*", "0", "0", "0"};
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++) assert_string_equal(tx.field[f], want4[f]);
  assert_false(sp.spec.week_any);
  assert_false(sp.spec.day_any);
}

static void test_errors(void **state) {
  (void)state;
  expect_error(APSCHED__CRON_HOUR, "0-24", "hour: '0-24': 24 is above the maximum 23");
  expect_error(APSCHED__CRON_HOUR, "24", "hour: '24': 24 is above the maximum 23");
  expect_error(APSCHED__CRON_DAY, "0-3", "day: '0-3': 0 is below the minimum 1");
  expect_error(APSCHED__CRON_YEAR, "1969", "year: '1969': 1969 is below the minimum 1970");
  expect_error(APSCHED__CRON_DAY, "*/31",
               "day: '*/31': the step 31 is larger than the range of the expression (30)");
  expect_error(APSCHED__CRON_DAY, "4-6/3",
               "day: '4-6/3': the step 3 is larger than the range of the expression (2)");
  expect_error(APSCHED__CRON_HOUR, "*/0", "hour: '*/0': the step must be at least 1");
  expect_error(APSCHED__CRON_YEAR, "2009/0", "year: '2009/0': the step must be at least 1");
  expect_error(APSCHED__CRON_DAY, "5-3",
               "day: '5-3': the range start 5 is above its end 3 (wrap-around ranges are for "
               "crontab strings only)");
  expect_error(APSCHED__CRON_MONTH, "fab",
               "month: 'fab': invalid month name 'fab' (allowed: jan feb mar apr may jun jul aug "
               "sep oct nov dec)");
  expect_error(APSCHED__CRON_MONTH, "jan-fab",
               "month: 'jan-fab': invalid month name 'fab' (allowed: jan feb mar apr may jun jul "
               "aug sep oct nov dec)");
  expect_error(APSCHED__CRON_DOW, "mon-web",
               "day_of_week: 'mon-web': invalid weekday name 'web' (allowed: mon tue wed thu fri "
               "sat sun)");
  expect_error(APSCHED__CRON_DAY, "1st moh",
               "day: '1st moh': invalid weekday name 'moh' (allowed: mon tue wed thu fri sat sun)");
  expect_error(APSCHED__CRON_DAY, "6th fri",
               "day: '6th fri': invalid weekday position '6th' (allowed: 1st 2nd 3rd 4th 5th "
               "last)");
  expect_error(APSCHED__CRON_YEAR, "2009-fault",
               "year: '2009-fault': unrecognized expression (allowed: *, */step, a, a-b, "
               "a-b/step, a/step)");
  expect_error(APSCHED__CRON_HOUR, "1,,2",
               "hour: '': empty expression (allowed: *, */step, a, a-b, a-b/step, a/step)");
  expect_error(APSCHED__CRON_HOUR, "",
               "hour: '': empty expression (allowed: *, */step, a, a-b, a-b/step, a/step)");
  expect_error(APSCHED__CRON_MINUTE, "*/5x",
               "minute: '*/5x': unrecognized expression (allowed: *, */step, a, a-b, a-b/step, "
               "a/step)");
  expect_error(APSCHED__CRON_MINUTE, "lastx",
               "minute: 'lastx': unrecognized expression (allowed: *, */step, a, a-b, a-b/step, "
               "a/step)");
  /* "last" belongs to the day field only. */
  expect_error(APSCHED__CRON_HOUR, "last",
               "hour: 'last': unrecognized expression (allowed: *, */step, a, a-b, a-b/step, "
               "a/step)");
  /* Huge numbers still give a range message, not an overflow. */
  expect_error(APSCHED__CRON_SECOND, "99999999999999999999",
               "second: '99999999999999999999': 1000000 is above the maximum 59");

  /* The canonical text of a field is bounded (so the trigger's text parses back). */
  char big[600] = "";
  for (int y = 1970; y < 2070; y++) sprintf(big + strlen(big), "%s%d", y > 1970 ? "," : "", y);
  apsched__cron_parsed sp;
  char err[256];
  assert_int_equal(one_field(&sp, APSCHED__CRON_YEAR, big, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "too many year expressions"));
  char minutes[400] = "";
  for (int m = 0; m < 60; m++) sprintf(minutes + strlen(minutes), "%s %d ", m ? "," : "", m);
  assert_int_equal(one_field(&sp, APSCHED__CRON_MINUTE, minutes, err, sizeof err), APSCHED_OK);
  assert_true(sp.spec.minute == 0x0fffffffffffffffull);
  char many[700] = "";
  for (int i = 0; i < 60; i++) strcat(many, i ? ",*/59" : "*/59");
  assert_int_equal(one_field(&sp, APSCHED__CRON_MINUTE, many, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "too long"));
}

/* Crontab numbering and wrap-around, converted to the field API in the text. */
static void expect_crontab(const char *line, const char *const want[APSCHED__CRON_NFIELDS]) {
  apsched__cron_parsed sp;
  char err[256] = "";
  int rc = apsched__cron_parse_crontab(&sp, &tx, line, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("'%s': %s", line, err);
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++)
    if (strcmp(tx.field[f], want[f]) != 0)
      fail_msg("'%s': %s is '%s', wanted '%s'", line, apsched__cron_field_names[f], tx.field[f],
               want[f]);
  /* The converted text, read by the field parser, gives the same schedule. */
  apsched__cron_parsed back;
  apsched__cron_text written = tx, again;
  const char *values[APSCHED__CRON_NFIELDS];
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++) values[f] = written.field[f];
  assert_int_equal(apsched__cron_parse_fields(&back, &again, values, err, sizeof err), APSCHED_OK);
  assert_true(apsched__cron_spec_equal(&sp.spec, &back.spec));
}

static void test_crontab(void **state) {
  (void)state;
  expect_crontab("0-14 * 14-28 jul fri", FIELDS("*", "jul", "14-28", "*", "fri", "*", "0-14", "0"));
  expect_crontab(" 0-14   * 14-28   jul       fri ",
                 FIELDS("*", "jul", "14-28", "*", "fri", "*", "0-14", "0"));
  expect_crontab("* * * * 1-5", FIELDS("*", "*", "*", "*", "mon-fri", "*", "*", "0"));
  expect_crontab("* * * * 0-3", FIELDS("*", "*", "*", "*", "mon-wed,sun", "*", "*", "0"));
  expect_crontab("* * * * 6-1", FIELDS("*", "*", "*", "*", "mon,sat-sun", "*", "*", "0"));
  expect_crontab("* * * * 6-7", FIELDS("*", "*", "*", "*", "sat-sun", "*", "*", "0"));
  expect_crontab("* * * * 7", FIELDS("*", "*", "*", "*", "sun", "*", "*", "0"));
  expect_crontab("* * * * 0,7", FIELDS("*", "*", "*", "*", "sun", "*", "*", "0"));
  expect_crontab("* * * * fri-mon", FIELDS("*", "*", "*", "*", "mon,fri-sun", "*", "*", "0"));
  expect_crontab("* * * * */2", FIELDS("*", "*", "*", "*", "tue,thu,sat-sun", "*", "*", "0"));
  expect_crontab("* * * * SUN", FIELDS("*", "*", "*", "*", "sun", "*", "*", "0"));
  expect_crontab("0 22-2 * * *", FIELDS("*", "*", "*", "*", "*", "22-23,0-2", "0", "0"));
  expect_crontab("0 23-2 * * *", FIELDS("*", "*", "*", "*", "*", "23,0-2", "0", "0"));
  expect_crontab("0 22-0 * * *", FIELDS("*", "*", "*", "*", "*", "22-23,0", "0", "0"));
  expect_crontab("0 22-4/2 * * *", FIELDS("*", "*", "*", "*", "*", "0,2,4,22", "0", "0"));
  expect_crontab("0 0 30-2 nov-feb *",
                 FIELDS("*", "nov-dec,jan-feb", "30-31,1-2", "*", "*", "0", "0", "0"));
  expect_crontab("*/10 0 9 * * *", FIELDS("*", "*", "*", "*", "*", "9", "0", "*/10"));
  expect_crontab("@yearly", FIELDS("*", "1", "1", "*", "*", "0", "0", "0"));
  expect_crontab("@annually", FIELDS("*", "1", "1", "*", "*", "0", "0", "0"));
  expect_crontab("@monthly", FIELDS("*", "*", "1", "*", "*", "0", "0", "0"));
  expect_crontab("@weekly", FIELDS("*", "*", "*", "*", "sun", "0", "0", "0"));
  expect_crontab("@DAILY", FIELDS("*", "*", "*", "*", "*", "0", "0", "0"));
  expect_crontab("@midnight", FIELDS("*", "*", "*", "*", "*", "0", "0", "0"));
  expect_crontab("@hourly", FIELDS("*", "*", "*", "*", "*", "*", "0", "0"));
  expect_crontab("0 0 last * *", FIELDS("*", "*", "last", "*", "*", "0", "0", "0"));

  apsched__cron_parsed sp;
  char err[256];
  assert_int_equal(apsched__cron_parse_crontab(&sp, &tx, "*", err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err,
                      "crontab '*': expected 5 fields (minute hour day month day_of_week) "
                      "or 6 (second first), got 1");
  assert_int_equal(apsched__cron_parse_crontab(&sp, &tx, "* * * * * * * * * * *", err, sizeof err),
                   APSCHED_EINVAL);
  assert_non_null(strstr(err, "got 8 or more"));
  assert_int_equal(apsched__cron_parse_crontab(&sp, &tx, "@reboot", err, sizeof err),
                   APSCHED_EINVAL);
  assert_non_null(strstr(err, "unknown shorthand"));
  assert_int_equal(apsched__cron_parse_crontab(&sp, &tx, "@daily extra", err, sizeof err),
                   APSCHED_EINVAL);
  assert_int_equal(apsched__cron_parse_crontab(&sp, &tx, "0 0 * * 8", err, sizeof err),
                   APSCHED_EINVAL);
  assert_string_equal(err, "day_of_week: '8': 8 is above the maximum 7");
  assert_int_equal(apsched__cron_parse_crontab(&sp, &tx, "0 0 * * */8", err, sizeof err),
                   APSCHED_EINVAL);
  assert_int_equal(apsched__cron_parse_crontab(&sp, &tx, "60 * * * *", err, sizeof err),
                   APSCHED_EINVAL);
  assert_string_equal(err, "minute: '60': 60 is above the maximum 59");
  assert_int_equal(apsched__cron_parse_crontab(&sp, &tx, "0 22-2/5 * * *", err, sizeof err),
                   APSCHED_EINVAL);
  assert_non_null(strstr(err, "the step 5 is larger than the range of the expression (4)"));
}

static void test_spec_equal(void **state) {
  (void)state;
  apsched__cron_parsed a, b;
  assert_int_equal(one_field(&a, APSCHED__CRON_YEAR, "2009,2010,2011", NULL, 0), APSCHED_OK);
  assert_int_equal(one_field(&b, APSCHED__CRON_YEAR, "2009-2011", NULL, 0), APSCHED_OK);
  assert_true(apsched__cron_spec_equal(&a.spec, &b.spec));
  assert_int_equal(one_field(&b, APSCHED__CRON_YEAR, "2009-2012", NULL, 0), APSCHED_OK);
  assert_false(apsched__cron_spec_equal(&a.spec, &b.spec));
  assert_int_equal(one_field(&a, APSCHED__CRON_YEAR, "*/1", NULL, 0), APSCHED_OK);
  assert_int_equal(one_field(&b, APSCHED__CRON_YEAR, "1970-9999", NULL, 0), APSCHED_OK);
  assert_true(apsched__cron_spec_equal(&a.spec, &b.spec));

  /* Same values, different DST mode: not the same schedule. */
  const char *h1[APSCHED__CRON_NFIELDS] = {NULL, NULL, NULL, NULL, NULL, "*", "0"};
  const char *h2[APSCHED__CRON_NFIELDS] = {NULL, NULL, NULL, NULL, NULL, "0-23", "0"};
  assert_int_equal(apsched__cron_parse_fields(&a, &tx, h1, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched__cron_parse_fields(&b, &tx, h2, NULL, 0), APSCHED_OK);
  assert_true(a.spec.hour == b.spec.hour);
  assert_false(apsched__cron_spec_equal(&a.spec, &b.spec));

  /* Names and numbers for the same values are equal. */
  assert_int_equal(one_field(&a, APSCHED__CRON_DOW, "mon-fri", NULL, 0), APSCHED_OK);
  assert_int_equal(one_field(&b, APSCHED__CRON_DOW, "0-4", NULL, 0), APSCHED_OK);
  assert_true(apsched__cron_spec_equal(&a.spec, &b.spec));
}

/* ---- impossibility check, against a brute-force calendar */

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* ISO week by counting from the Monday of week 1 (independent of cron.c). */
static int iso_week_slow(int y, int m, int d) {
  static const int before[] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  /* Day number since 1970-01-01 (a Thursday), then the Thursday rule. */
  long days = 0;
  for (int yy = 1970; yy < y; yy++) days += leap(yy) ? 366 : 365;
  days += before[m] + (m > 2 && leap(y)) + d - 1;
  int wd = (int)((days + 3) % 7); /* 0 = Monday */
  long thursday = days - wd + 3;
  /* The ISO year is the calendar year of that Thursday. */
  long start = 0;
  int iy = 1970;
  while (start + (leap(iy) ? 366 : 365) <= thursday) start += leap(iy++) ? 366 : 365;
  return (int)((thursday - start) / 7 + 1);
}

static void test_never(void **state) {
  (void)state;
  apsched__cron_parsed sp;
  const char *v[APSCHED__CRON_NFIELDS] = {NULL, "2", "30"};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v, NULL, 0), APSCHED_OK);
  assert_true(sp.spec.never);
  const char *v2[APSCHED__CRON_NFIELDS] = {NULL, "4,6,9,11", "31"};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v2, NULL, 0), APSCHED_OK);
  assert_true(sp.spec.never);
  const char *v3[APSCHED__CRON_NFIELDS] = {NULL, "4,5", "31"};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v3, NULL, 0), APSCHED_OK);
  assert_false(sp.spec.never);
  const char *v4[APSCHED__CRON_NFIELDS] = {NULL, "2", "29"};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v4, NULL, 0), APSCHED_OK);
  assert_false(sp.spec.never);
  const char *v5[APSCHED__CRON_NFIELDS] = {NULL, "2", "5th mon,30"};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v5, NULL, 0), APSCHED_OK);
  assert_false(sp.spec.never); /* a leap February starting on a Monday has five */

  /* Month x ISO week: possible exactly when some real date has both. */
  bool seen[13][54] = {{false}};
  for (int y = 2000; y < 2400; y++)
    for (int m = 1; m <= 12; m++) {
      static const int len[] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
      /* Every run of 7 days holds a sample; the last day is added below. */
      int n = len[m] + (m == 2 && leap(y));
      for (int d = 1; d <= n; d += 3) seen[m][iso_week_slow(y, m, d)] = true;
      seen[m][iso_week_slow(y, m, n)] = true;
    }
  for (int m = 1; m <= 12; m++)
    for (int w = 1; w <= 53; w++) {
      char ms[4], ws[4];
      snprintf(ms, sizeof ms, "%d", m);
      snprintf(ws, sizeof ws, "%d", w);
      const char *vw[APSCHED__CRON_NFIELDS] = {NULL, ms, NULL, ws};
      assert_int_equal(apsched__cron_parse_fields(&sp, &tx, vw, NULL, 0), APSCHED_OK);
      if (sp.spec.never == seen[m][w]) fail_msg("month %d week %d: never=%d", m, w, sp.spec.never);
    }
}

/* ---- the local search */

static apsched__cron_civil civ(int y, int mo, int d, int h, int mi, int s) {
  return (apsched__cron_civil){y, mo, d, h, mi, s};
}

static void expect_next(const char *const v[APSCHED__CRON_NFIELDS], apsched__cron_civil from,
                        apsched__cron_civil want) {
  apsched__cron_parsed sp;
  char err[256];
  if (apsched__cron_parse_fields(&sp, &tx, v, err, sizeof err) != APSCHED_OK) fail_msg("%s", err);
  apsched__cron_civil c = from;
  if (!apsched__cron_next_local(&sp.spec, &c))
    fail_msg("no match, wanted %d-%02d-%02d", want.year, want.month, want.day);
  if (memcmp(&c, &want, sizeof c) != 0)
    fail_msg("got %d-%02d-%02d %02d:%02d:%02d, wanted %d-%02d-%02d %02d:%02d:%02d", c.year, c.month,
             c.day, c.hour, c.minute, c.second, want.year, want.month, want.day, want.hour,
             want.minute, want.second);
}

static void test_next_local(void **state) {
  (void)state;
  /* Carries through every level. */
  expect_next(FIELDS(NULL, NULL, NULL, NULL, NULL, NULL, "*/5", "0"), civ(2026, 12, 31, 23, 55, 1),
              civ(2027, 1, 1, 0, 0, 0));
  expect_next(FIELDS(NULL, NULL, "last"), civ(2012, 2, 1, 0, 0, 0), civ(2012, 2, 29, 0, 0, 0));
  expect_next(FIELDS(NULL, NULL, "last"), civ(2100, 2, 1, 0, 0, 1), civ(2100, 2, 28, 0, 0, 0));
  expect_next(FIELDS(NULL, NULL, "30"), civ(2016, 2, 1, 0, 0, 0), civ(2016, 3, 30, 0, 0, 0));
  expect_next(FIELDS(NULL, NULL, "2nd wed"), civ(2008, 2, 1, 0, 0, 0), civ(2008, 2, 13, 0, 0, 0));
  expect_next(FIELDS(NULL, NULL, "last fri"), civ(2008, 2, 1, 0, 0, 0), civ(2008, 2, 29, 0, 0, 0));
  expect_next(FIELDS(NULL, NULL, "5th mon"), civ(2026, 1, 1, 0, 0, 0), civ(2026, 3, 30, 0, 0, 0));
  expect_next(FIELDS("2009", "2", NULL, "8"), civ(2009, 1, 1, 0, 0, 0), civ(2009, 2, 16, 0, 0, 0));
  /* ISO week 53 of 2020 runs into January 2021; week 1 of 2025 starts in 2024. */
  expect_next(FIELDS(NULL, NULL, NULL, "53"), civ(2021, 1, 2, 0, 0, 1), civ(2021, 1, 3, 0, 0, 0));
  expect_next(FIELDS(NULL, NULL, NULL, "53"), civ(2021, 1, 3, 12, 0, 0),
              civ(2026, 12, 28, 0, 0, 0));
  expect_next(FIELDS(NULL, NULL, NULL, "1"), civ(2024, 12, 1, 0, 0, 0), civ(2024, 12, 30, 0, 0, 0));
  expect_next(FIELDS(NULL, NULL, "6-10", NULL, "2-4"), civ(2009, 1, 1, 0, 0, 0),
              civ(2009, 1, 7, 0, 0, 0));
  expect_next(FIELDS("2009/2", "1/3", "5-13"), civ(2009, 10, 14, 0, 0, 0),
              civ(2011, 1, 5, 0, 0, 0));
  /* Years before 1970 start at 1970. */
  expect_next(FIELDS(NULL), civ(1900, 5, 5, 5, 5, 5), civ(1970, 1, 1, 0, 0, 0));
  /* The last second the search covers. */
  expect_next(FIELDS(NULL), civ(9999, 12, 31, 23, 59, 59), civ(9999, 12, 31, 23, 59, 59));

  apsched__cron_parsed sp;
  const char *v[APSCHED__CRON_NFIELDS] = {"2009", "1", "6-10", NULL, "0,6"};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v, NULL, 0), APSCHED_OK);
  apsched__cron_civil c = civ(2009, 1, 1, 0, 0, 0);
  assert_false(apsched__cron_next_local(&sp.spec, &c));
  const char *all[APSCHED__CRON_NFIELDS] = {NULL};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, all, NULL, 0), APSCHED_OK);
  c = civ(10000, 1, 1, 0, 0, 0);
  assert_false(apsched__cron_next_local(&sp.spec, &c));
}

/* Impossible only because of the week numbering: the impossibility check
 * cannot see it, the search must still end quickly (400 barren years). */
static void test_bounded_search(void **state) {
  (void)state;
  apsched__cron_parsed sp;
  const char *v[APSCHED__CRON_NFIELDS] = {NULL, NULL, "15", "1"};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v, NULL, 0), APSCHED_OK);
  assert_false(sp.spec.never);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  apsched__cron_civil c = civ(2026, 1, 1, 0, 0, 0);
  assert_false(apsched__cron_next_local(&sp.spec, &c));
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
  /* About 5000 month tests; milliseconds even under sanitizers. */
  assert_true(ms < 500);

  /* A sparse year list still reaches its far member. */
  const char *v2[APSCHED__CRON_NFIELDS] = {"2026,9998", "2", "29"};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v2, NULL, 0), APSCHED_OK);
  c = civ(2026, 1, 1, 0, 0, 0);
  assert_false(apsched__cron_next_local(&sp.spec, &c)); /* neither is a leap year */
  const char *v3[APSCHED__CRON_NFIELDS] = {"2026,9996", "2", "29"};
  assert_int_equal(apsched__cron_parse_fields(&sp, &tx, v3, NULL, 0), APSCHED_OK);
  c = civ(2026, 1, 1, 0, 0, 0);
  assert_true(apsched__cron_next_local(&sp.spec, &c));
  assert_int_equal(c.year, 9996);
}

/* Every field's match set against a direct evaluation of random expressions. */
static void test_random_fields(void **state) {
  (void)state;
  unsigned seed = 12345;
  static const int lo[] = {1970, 1, 1, 1, 0, 0, 0, 0}, hi[] = {9999, 12, 31, 53, 6, 23, 59, 59};
  for (int iter = 0; iter < 3000; iter++) {
    int f = 1 + (int)(rand_r(&seed) % 7);
    if (f == APSCHED__CRON_WEEK) f = APSCHED__CRON_MINUTE;
    int span = hi[f] - lo[f];
    int a = lo[f] + (int)(rand_r(&seed) % (unsigned)(span + 1));
    int b = a + (int)(rand_r(&seed) % (unsigned)(hi[f] - a + 1));
    int step = 1 + (int)(rand_r(&seed) % (unsigned)(b - a + 1));
    char text[64];
    int form = (int)(rand_r(&seed) % 4);
    if (form == 0)
      snprintf(text, sizeof text, "*/%d", 1 + (int)(rand_r(&seed) % (unsigned)span));
    else if (form == 1)
      snprintf(text, sizeof text, "%d-%d", a, b);
    else if (form == 2 && b > a)
      snprintf(text, sizeof text, "%d-%d/%d", a, b, step > b - a ? b - a : step);
    else
      snprintf(text, sizeof text, "%d/%d", a, 1 + (int)(rand_r(&seed) % (unsigned)(hi[f] - a + 1)));
    apsched__cron_parsed sp;
    char err[256];
    int rc = one_field(&sp, f, text, err, sizeof err);
    /* Work out the expected set the slow way. */
    int first = lo[f], last = hi[f], st = 1;
    if (text[0] == '*') {
      st = atoi(text + 2);
    } else if (sscanf(text, "%d-%d/%d", &first, &last, &st) == 3) {
    } else if (sscanf(text, "%d-%d", &first, &last) == 2) {
      st = 1;
    } else if (sscanf(text, "%d/%d", &first, &st) == 2) {
      last = hi[f];
    }
    if (strchr(text, '/') && st > last - first) {
      assert_int_equal(rc, APSCHED_EINVAL);
      assert_non_null(strstr(err, "is larger than the range of the expression"));
      continue;
    }
    if (rc != APSCHED_OK) fail_msg("'%s' for %s: %s", text, apsched__cron_field_names[f], err);
    uint64_t want = 0;
    for (int v = first; v <= last; v += st) want |= 1ull << v;
    uint64_t got = f == APSCHED__CRON_MONTH    ? sp.spec.month
                   : f == APSCHED__CRON_DAY    ? sp.spec.day
                   : f == APSCHED__CRON_DOW    ? sp.spec.dow
                   : f == APSCHED__CRON_HOUR   ? sp.spec.hour
                   : f == APSCHED__CRON_MINUTE ? sp.spec.minute
                                               : sp.spec.second;
    if (got != want)
      fail_msg("'%s' for %s: mask %llx, wanted %llx", text, apsched__cron_field_names[f],
               (unsigned long long)got, (unsigned long long)want);
  }
}

/* ---- shared schedules (cron_shapes.c) */

/* Triggers with the same fields share one parsed schedule, whatever the
 * zone, dates or way they were made; copies share it too; the last release
 * empties the table; and the shared schedule still answers for each. */
static void test_shared_schedules(void **state) {
  (void)state;
  size_t before = apsched__cron_shape_count();
  char err[256] = "";
  apsched_trigger *a, *b, *c, *d, *copy;
  assert_int_equal(apsched_trigger_crontab("0 */5 9-17 * * mon-fri", "Europe/Berlin", &a, err,
                                           sizeof err),
                   APSCHED_OK);
  assert_int_equal(apsched_trigger_crontab("0 */5 9-17 * * MON-FRI", "UTC", &b, err, sizeof err),
                   APSCHED_OK);
  assert_int_equal(apsched_trigger_cron(&(apsched_cron_options){.day_of_week = "mon-fri",
                                                                .hour = "9-17",
                                                                .minute = "*/5",
                                                                .timezone = "UTC",
                                                                .start_date = 1},
                                        &c, err, sizeof err),
                   APSCHED_OK);
  assert_int_equal(apsched__cron_shape_count(), before + 1);
  assert_int_equal(apsched_trigger_clone(a, &copy), APSCHED_OK);
  assert_int_equal(apsched_trigger_crontab("0 */5 9-17 * * sat", "UTC", &d, err, sizeof err),
                   APSCHED_OK);
  assert_int_equal(apsched__cron_shape_count(), before + 2);
  /* Same schedule, its own zone: b and c fire at the same instants, a an
   * hour or two apart; the copy exactly as a. */
  apsched_time_t from = 1780000000LL * APSCHED_SEC; /* 2026-05-28, a Thursday */
  assert_true(apsched_trigger_next(b, APSCHED_TIME_NONE, from) ==
              apsched_trigger_next(c, APSCHED_TIME_NONE, from));
  assert_true(apsched_trigger_next(a, APSCHED_TIME_NONE, from) !=
              apsched_trigger_next(b, APSCHED_TIME_NONE, from));
  assert_true(apsched_trigger_next(copy, APSCHED_TIME_NONE, from) ==
              apsched_trigger_next(a, APSCHED_TIME_NONE, from));
  assert_true(apsched_trigger_equal(copy, a));
  assert_false(apsched_trigger_equal(a, b)); /* the zones differ */
  char text[512];
  assert_true(apsched_trigger_describe(b, text, sizeof text) > 0);
  assert_non_null(strstr(text, "day_of_week='mon-fri', hour='9-17', minute='*/5', second='0'"));
  apsched_trigger_free(a);
  apsched_trigger_free(b);
  apsched_trigger_free(c);
  assert_int_equal(apsched__cron_shape_count(), before + 2); /* the copy holds it */
  apsched_trigger_free(copy);
  assert_int_equal(apsched__cron_shape_count(), before + 1);
  apsched_trigger_free(d);
  assert_int_equal(apsched__cron_shape_count(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_masks),         cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_errors),        cmocka_unit_test(test_crontab),
      cmocka_unit_test(test_spec_equal),    cmocka_unit_test(test_never),
      cmocka_unit_test(test_next_local),    cmocka_unit_test(test_bounded_search),
      cmocka_unit_test(test_random_fields), cmocka_unit_test(test_shared_schedules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
