/* UTC <-> local civil time. Both directions are a binary search, over the
 * zone's transition table (which includes the footer rule through
 * APSCHED__TZ_EXPAND_LAST_YEAR) or, later, over the rule's 400-year cycle
 * table after shifting by whole cycles. Nothing here allocates or locks: the
 * cron trigger calls these in its inner loop. */
#include "tz_internal.h"

#include <string.h>

/* First index i with a[i] > x (n when none). */
static inline uint32_t upper_bound(const int64_t *a, uint32_t n, int64_t x) {
  uint32_t lo = 0;
  while (n > 0) {
    uint32_t half = n >> 1;
    if (a[lo + half] <= x) {
      lo += half + 1;
      n -= half + 1;
    } else {
      n = half;
    }
  }
  return lo;
}

/* Whole cycles to subtract from t to land in [cyc_base, cyc_base + cycle). */
static inline int64_t cycle_shift(const apsched_tz *tz, int64_t t) {
  return apsched__floor_div(t - tz->cyc_base, APSCHED__TZ_CYCLE_SECS) * APSCHED__TZ_CYCLE_SECS;
}

const apsched__tz_type *apsched__tz_type_at(const apsched_tz *tz, int64_t t) {
  uint32_t i;
  if (t >= tz->rule_hi) {
    t -= cycle_shift(tz, t);
    i = upper_bound(tz->cyc_at, tz->ncyc, t);
    return &tz->types[i ? tz->cyc_ti[i - 1] : tz->cyc_type0];
  }
  i = upper_bound(tz->at, tz->ntrans, t);
  return &tz->types[i ? tz->ti[i - 1] : tz->type_before];
}

int apsched__tz_to_local(const apsched_tz *tz, apsched_time_t t, apsched_civil *out) {
  if (!out || t == APSCHED_TIME_NONE) return APSCHED_EINVAL;
  if (!tz) tz = apsched_tz_utc();
  int64_t sec = apsched__floor_div(t, APSCHED_SEC);
  const apsched__tz_type *ty = apsched__tz_type_at(tz, sec);
  int64_t local = sec + ty->utoff;
  int64_t days = apsched__floor_div(local, APSCHED__SEC_PER_DAY);
  int sod = (int)(local - days * APSCHED__SEC_PER_DAY);
  int64_t y;
  apsched__civil_from_days(days, &y, &out->month, &out->day);
  out->year = (int)y;
  out->hour = sod / 3600;
  out->minute = sod / 60 % 60;
  out->second = sod % 60;
  int64_t us = t % APSCHED_SEC; /* not t - sec * SEC: that overflows near INT64_MIN */
  out->microsecond = (int)(us < 0 ? us + APSCHED_SEC : us);
  out->utc_offset = ty->utoff;
  out->is_dst = ty->isdst;
  memcpy(out->abbr, ty->abbr, sizeof out->abbr);
  return APSCHED_OK;
}

/* Local second L -> UTC seconds. Candidates lie in [L - omax, L - omin]; the
 * scan walks the intervals between transitions in that window, collecting the
 * instants whose offset maps them to L (none: a gap; two: a fold). */
static void solve(const apsched_tz *tz, int64_t L, apsched_disambiguate how, int64_t *utc,
                  apsched_local_kind *kind, int64_t *transition) {
  int64_t lo = L - tz->omax, hi = L - tz->omin, shift = 0;
  const int64_t *at;
  const uint16_t *ti;
  uint32_t n, i;
  uint16_t t0;
  if (lo < tz->rule_hi) {
    at = tz->at;
    ti = tz->ti;
    n = tz->ntrans;
    i = upper_bound(at, n, lo);
    t0 = i ? ti[i - 1] : tz->type_before;
  } else {
    /* The cycle table extends a margin past one cycle, so the whole window
     * fits once lo is shifted into the first cycle. (A window starting
     * before rule_hi uses the table, which overlaps the rule past it.) */
    shift = cycle_shift(tz, lo);
    L -= shift, lo -= shift, hi -= shift;
    at = tz->cyc_at;
    ti = tz->cyc_ti;
    n = tz->ncyc;
    i = upper_bound(at, n, lo);
    t0 = i ? ti[i - 1] : tz->cyc_type0;
  }
  int32_t off = tz->types[t0].utoff;
  int64_t start = INT64_MIN, first = 0, last = 0, repeat_at = 0, gap_at = 0;
  int32_t gap_before = 0, gap_after = 0;
  int nsol = 0;
  bool gap = false;
  for (; i < n && at[i] <= hi; i++) {
    int64_t T = at[i], c = L - off;
    int32_t noff = tz->types[ti[i]].utoff;
    if (c >= start && c < T) {
      if (nsol++ == 0) first = c;
      else if (nsol == 2) repeat_at = start;
      last = c;
    } else if (!gap && c >= T && L - noff < T) {
      gap = true;
      gap_at = T;
      gap_before = off;
      gap_after = noff;
    }
    start = T;
    off = noff;
  }
  int64_t c = L - off;
  if (c >= start) {
    if (nsol++ == 0) first = c;
    else if (nsol == 2) repeat_at = start;
    last = c;
  }
  if (nsol == 1 || (nsol == 0 && !gap)) {
    *utc = (nsol ? first : c) + shift;
    *kind = APSCHED_LOCAL_UNIQUE;
    *transition = APSCHED_TIME_NONE;
  } else if (nsol >= 2) {
    *utc = (how == APSCHED_LATER ? last : first) + shift;
    *kind = APSCHED_LOCAL_REPEATED;
    *transition = repeat_at + shift;
  } else {
    *utc = (how == APSCHED_EARLIER ? L - gap_before : how == APSCHED_LATER ? L - gap_after : gap_at) +
           shift;
    *kind = APSCHED_LOCAL_SKIPPED;
    *transition = gap_at + shift;
  }
}

/* Seconds representable as apsched_time_t (one second of margin each side,
 * so that INT64_MIN stays reserved for APSCHED_TIME_NONE). */
#define SEC_MIN (INT64_MIN / APSCHED_SEC + 1)
#define SEC_MAX (INT64_MAX / APSCHED_SEC - 1)
/* +-292,000 years is all that apsched_time_t holds. */
#define LOCAL_YEAR_MAX 300000

int apsched__tz_from_local(const apsched_tz *tz, const apsched_civil *lt, apsched_disambiguate how,
                           apsched_local_result *out) {
  if (!lt || !out) return APSCHED_EINVAL;
  if (!tz) tz = apsched_tz_utc();
  if (lt->month < 1 || lt->month > 12 || lt->day < 1 ||
      lt->day > apsched__days_in_month(lt->year, lt->month) || lt->hour < 0 || lt->hour > 23 ||
      lt->minute < 0 || lt->minute > 59 || lt->second < 0 || lt->second > 59 ||
      lt->microsecond < 0 || lt->microsecond > 999999 || how < APSCHED_EARLIER ||
      how > APSCHED_GAP_END)
    return APSCHED_EINVAL;
  if (lt->year < -LOCAL_YEAR_MAX || lt->year > LOCAL_YEAR_MAX) return APSCHED_ERANGE;
  int64_t L = apsched__days_from_civil(lt->year, lt->month, lt->day) * APSCHED__SEC_PER_DAY +
              lt->hour * 3600 + lt->minute * 60 + lt->second;
  int64_t utc, transition;
  apsched_local_kind kind;
  if (tz->ntrans == 0 && tz->rule_hi == INT64_MAX) {
    utc = L - tz->types[tz->type_before].utoff;
    kind = APSCHED_LOCAL_UNIQUE;
    transition = APSCHED_TIME_NONE;
  } else {
    solve(tz, L, how, &utc, &kind, &transition);
  }
  if (utc < SEC_MIN || utc > SEC_MAX) return APSCHED_ERANGE;
  /* GAP_END is the transition instant itself, not shifted by the fraction. */
  bool at_gap_end = kind == APSCHED_LOCAL_SKIPPED && how == APSCHED_GAP_END;
  out->utc = utc * APSCHED_SEC + (at_gap_end ? 0 : lt->microsecond);
  out->kind = kind;
  out->transition = (transition == APSCHED_TIME_NONE || transition < SEC_MIN ||
                     transition > SEC_MAX)
                        ? APSCHED_TIME_NONE
                        : transition * APSCHED_SEC;
  return APSCHED_OK;
}

/* ------------------------------------------------ the public calls: messages */

int apsched_tz_to_local(const apsched_tz *tz, apsched_time_t t, apsched_civil *out) {
  if (!out) return apsched__error(APSCHED_EINVAL, "tz_to_local: out is NULL");
  if (t == APSCHED_TIME_NONE)
    return apsched__error(APSCHED_EINVAL, "tz_to_local: t is APSCHED_TIME_NONE, not a time");
  return apsched__tz_to_local(tz, t, out);
}

/* The first field of lt outside its range (its value and range in *value,
 * *min..*max), or NULL. */
static const char *bad_field(const apsched_civil *lt, int *value, int *min, int *max) {
  const struct {
    const char *name;
    int value, min, max;
  } f[] = {{"month", lt->month, 1, 12},
           {"day", lt->day, 1, apsched__days_in_month(lt->year, lt->month)},
           {"hour", lt->hour, 0, 23},
           {"minute", lt->minute, 0, 59},
           {"second", lt->second, 0, 59},
           {"microsecond", lt->microsecond, 0, 999999},
           {"year", lt->year, -LOCAL_YEAR_MAX, LOCAL_YEAR_MAX}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    if (f[i].value < f[i].min || f[i].value > f[i].max) {
      *value = f[i].value;
      *min = f[i].min;
      *max = f[i].max;
      return f[i].name;
    }
  }
  return NULL;
}

int apsched_tz_from_local(const apsched_tz *tz, const apsched_civil *lt, apsched_disambiguate how,
                          apsched_local_result *out) {
  if (!lt) return apsched__error(APSCHED_EINVAL, "tz_from_local: local is NULL");
  if (!out) return apsched__error(APSCHED_EINVAL, "tz_from_local: out is NULL");
  if (how < APSCHED_EARLIER || how > APSCHED_GAP_END)
    return apsched__error(APSCHED_EINVAL, "tz_from_local: how=%d is not an apsched_disambiguate",
                          (int)how);
  int v, lo, hi;
  const char *field = bad_field(lt, &v, &lo, &hi);
  if (field)
    return apsched__error(strcmp(field, "year") == 0 ? APSCHED_ERANGE : APSCHED_EINVAL,
                          "tz_from_local: %s %d is out of range %d..%d", field, v, lo, hi);
  int rc = apsched__tz_from_local(tz, lt, how, out);
  if (rc != APSCHED_OK)
    return apsched__error(rc, "tz_from_local: %04d-%02d-%02dT%02d:%02d:%02d in %s is beyond the "
                              "range of apsched_time_t",
                          lt->year, lt->month, lt->day, lt->hour, lt->minute, lt->second,
                          apsched_tz_name(tz));
  return APSCHED_OK;
}
