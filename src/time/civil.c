/* Proleptic Gregorian calendar arithmetic on day numbers (days since
 * 1970-01-01). Works in 400-year eras so that negative years and years far
 * from the epoch need no special cases; valid for |year| < 2^50. */
#include "tz_internal.h"

bool apsched__is_leap(int64_t y) {
  return (y % 4 == 0) && (y % 100 != 0 || y % 400 == 0);
}

int apsched__days_in_month(int64_t y, int m) {
  static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12) return 0;
  return dim[m - 1] + (m == 2 && apsched__is_leap(y));
}

int apsched__weekday(int64_t days) {
  /* 1970-01-01 was a Thursday (4). */
  int64_t w = (days + 4) % 7;
  return (int)(w < 0 ? w + 7 : w);
}

/* Years are counted from March so that the leap day is the last day of a
 * year; each 400-year era then has exactly 146097 days. */
int64_t apsched__days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = apsched__floor_div(y, 400);
  int64_t yoe = y - era * 400;                                  /* 0..399 */
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
  return era * 146097 + doe - 719468;
}

void apsched__civil_from_days(int64_t days, int64_t *y, int *m, int *d) {
  int64_t z = days + 719468;
  int64_t era = apsched__floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153; /* 0 = March */
  int dd = (int)(doy - (153 * mp + 2) / 5 + 1);
  int mm = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (mm <= 2);
  *m = mm;
  *d = dd;
}
