/* The calendar-interval trigger (APScheduler 4's CalendarIntervalTrigger):
 * runs every years/months/weeks/days calendar steps, always at the same
 * wall-clock time hour:minute:second in the trigger's zone.
 *
 * The schedule. Day 0 is start_date's local date. Step k (k = 0, 1, ...)
 * falls on
 *     (day 0 + k * (12 * years + months) months, same day of the month)
 *     + k * (7 * weeks + days) days,
 * and step k is skipped when that month lacks the day: Jan 31 with months=1
 * runs Jan 31, Mar 31, May 31, ...; Feb 29 with years=1 only in leap years.
 * The first run is the first such instant at or after start_date.
 * For steps of only years/months, or only weeks/days, this is exactly
 * APScheduler 4. APScheduler 4 adds each step to the previous run's date, so
 * when months and days are mixed its day of the month drifts differently at
 * month ends (Jan 30 + "1 month 1 day": it goes Mar 31, Jun 1; we go Apr 1,
 * May 3). Counting from day 0 keeps next() a pure function of prev, computed
 * arithmetically (a binary search over k) however far prev is from the start.
 *
 * DST, as for a fixed-time cron job (DESIGN.md section 3): a wall time in a
 * spring-forward gap runs once, at the first instant after the gap
 * (APScheduler 4 skips that day instead); a repeated wall time runs at its
 * first occurrence (as APScheduler 4). A gap longer than 3 hours is a
 * zone-rule change (Apia skipping 2011-12-30): a run inside it is dropped.
 *
 * Also unlike APScheduler 4: start_date and end_date are instants, not dates
 * (a date-only text means its local midnight), and the last run is at or
 * before end_date. No run falls on a local date after 9999-12-31.
 */
#include "extra_kinds.h"
#include "../time/tz_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct calendar_trigger {
  apsched_trigger base;
  apsched_tz *tz;
  int years, months, weeks, days;
  int hour, minute, second;
  apsched_time_t start_date; /* 0 until bound: "when the job is added" */
  apsched_time_t end_date;   /* 0: none */
  int64_t month_step;        /* 12 * years + months */
  int64_t day_step;          /* 7 * weeks + days */
} calendar_trigger;

static const apsched_trigger_vtable calendar_vtable;

/* Gaps longer than this are zone-rule changes, not DST: not caught up (as in cron.c). */
#define MAX_CATCH_UP_GAP (3 * 3600)
/* Validity of step k repeats with a period dividing 4800 (400 Gregorian
 * years of months), and step 0 exists, so a valid step is never further. */
#define MAX_SKIPPED_STEPS 4800
/* Candidate dates tried per call: the day before lb's, lb's, and a few past
 * rule-change gaps. */
#define MAX_CANDIDATES 64
#define LAST_YEAR 9999

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m) {
  static const int8_t len[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 ? 28 + is_leap(y) : len[m];
}

/* Day 0 of the schedule, and the last step that stays within LAST_YEAR. */
typedef struct anchor {
  int64_t month_index; /* year * 12 + month - 1 */
  int day;             /* day of the month */
  int64_t k_max;
} anchor;

/* The date of step k as a day number (days since 1970-01-01), counting a
 * day the month lacks as if the month had it (Apr 31 = May 1): that makes
 * the result strictly increasing in k. *exists tells whether it is real. */
static int64_t step_day(const calendar_trigger *ct, const anchor *a, int64_t k, bool *exists) {
  int64_t mi = a->month_index + k * ct->month_step;
  int64_t y = floor_div(mi, 12);
  int m = (int)(mi - y * 12) + 1;
  if (exists) *exists = a->day <= days_in_month(y, m);
  return apsched__days_from_civil(y, m, 1) + a->day - 1 + k * ct->day_step;
}

static bool make_anchor(const calendar_trigger *ct, apsched_time_t start, anchor *a) {
  apsched_civil c;
  if (apsched__tz_to_local(ct->tz, start, &c) != APSCHED_OK || c.year > LAST_YEAR) return false;
  a->month_index = (int64_t)c.year * 12 + c.month - 1;
  a->day = c.day;
  /* Bounds that keep every product below in range: a step past them is
   * already after LAST_YEAR. */
  int64_t k_max = INT64_MAX;
  if (ct->month_step > 0)
    k_max = ((int64_t)(LAST_YEAR + 1) * 12 - a->month_index) / ct->month_step + 1;
  if (ct->day_step > 0) {
    int64_t day0 = apsched__days_from_civil(c.year, c.month, c.day);
    int64_t by_days =
        (apsched__days_from_civil(LAST_YEAR + 1, 1, 1) - day0) / ct->day_step + 1;
    if (by_days < k_max) k_max = by_days;
  }
  a->k_max = k_max;
  return true;
}

/* The smallest k >= 0 whose step date is on or after day number target. */
static int64_t first_step_from(const calendar_trigger *ct, const anchor *a, int64_t target) {
  int64_t lo = 0, hi = a->k_max;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (step_day(ct, a, mid, NULL) >= target)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

static int utc_offset_at(const apsched_tz *tz, apsched_time_t t, bool *ok) {
  apsched_civil c = {0};
  if (apsched__tz_to_local(tz, t, &c) != APSCHED_OK) *ok = false;
  return c.utc_offset;
}

typedef enum run_kind { RUN_AT, RUN_DROPPED, RUN_PAST_END } run_kind;

/* The instant of the wall time on a local date (a day number): a gap gives
 * its end, a fold its first occurrence; dropped inside a zone-rule change;
 * past the end after LAST_YEAR or if the zone cannot answer. */
static run_kind wall_time_on(const calendar_trigger *ct, int64_t day, apsched_time_t *at) {
  apsched_civil lt = {.hour = ct->hour, .minute = ct->minute, .second = ct->second};
  int64_t y;
  apsched__civil_from_days(day, &y, &lt.month, &lt.day);
  if (y > LAST_YEAR) return RUN_PAST_END;
  lt.year = (int)y;
  apsched_local_result r;
  if (apsched__tz_from_local(ct->tz, &lt, APSCHED_GAP_END, &r) != APSCHED_OK) return RUN_PAST_END;
  if (r.kind == APSCHED_LOCAL_SKIPPED) {
    bool ok = true;
    int jump = utc_offset_at(ct->tz, r.transition, &ok) -
               utc_offset_at(ct->tz, r.transition - APSCHED_SEC, &ok);
    if (!ok) return RUN_PAST_END;
    if (jump > MAX_CATCH_UP_GAP) return RUN_DROPPED;
  }
  *at = r.utc;
  return RUN_AT;
}

static apsched_time_t calendar_next(const apsched_trigger *t, apsched_time_t prev,
                                    apsched_time_t now) {
  const calendar_trigger *ct = (const calendar_trigger *)t;
  apsched_time_t lb;
  if (prev != APSCHED_TIME_NONE) {
    if (prev == INT64_MAX) return APSCHED_TIME_NONE;
    lb = prev + 1;
  } else {
    lb = now;
  }
  /* Unbound (asked directly, not through a scheduler): as if added now. */
  apsched_time_t start = ct->start_date ? ct->start_date : now;
  if (lb < start) lb = start;
  if (ct->end_date && lb > ct->end_date) return APSCHED_TIME_NONE;

  anchor a;
  apsched_civil lc;
  if (!make_anchor(ct, start, &a) || apsched__tz_to_local(ct->tz, lb, &lc) != APSCHED_OK ||
      lc.year > LAST_YEAR)
    return APSCHED_TIME_NONE;
  /* A run in a gap that ends after midnight lands on the next local date, so
   * the run that answers may belong to the day before lb's. */
  int64_t target = apsched__days_from_civil(lc.year, lc.month, lc.day) - 1;
  int64_t k = first_step_from(ct, &a, target);
  for (int tried = 0; tried < MAX_CANDIDATES; tried++, k++) {
    /* Steps onto a day the month lacks are not runs. */
    bool exists = false;
    int64_t day = 0;
    for (int skipped = 0; skipped < MAX_SKIPPED_STEPS && k < a.k_max; skipped++, k++) {
      day = step_day(ct, &a, k, &exists);
      if (exists) break;
    }
    if (!exists) return APSCHED_TIME_NONE;
    apsched_time_t fire = 0;
    run_kind kind = wall_time_on(ct, day, &fire);
    if (kind == RUN_PAST_END) return APSCHED_TIME_NONE;
    if (kind == RUN_DROPPED || fire < lb) continue;
    if (ct->end_date && fire > ct->end_date) return APSCHED_TIME_NONE;
    return fire;
  }
  return APSCHED_TIME_NONE;
}

/* ------------------------------------------------------------ the text */

static int calendar_describe(const apsched_trigger *t, char *buf, size_t len) {
  const calendar_trigger *ct = (const calendar_trigger *)t;
  const struct {
    const char *key;
    int value;
  } ints[] = {{"years", ct->years}, {"months", ct->months}, {"weeks", ct->weeks},
              {"days", ct->days},   {"hour", ct->hour},     {"minute", ct->minute},
              {"second", ct->second}};
  size_t pos = 0;
  const char *sep = "";
  apsched__append(buf, len, &pos, "calendar[");
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    if (!ints[i].value) continue;
    apsched__append(buf, len, &pos, "%s%s=%d", sep, ints[i].key, ints[i].value);
    sep = ", ";
  }
  /* Dates in the trigger's zone (with their offset, so still exact): the
   * local date is what the schedule counts from. */
  const apsched_time_t dates[2] = {ct->start_date, ct->end_date};
  static const char *const keys[2] = {"start_date", "end_date"};
  for (int i = 0; i < 2; i++) {
    char text[64];
    if (!dates[i]) continue;
    if (apsched_time_format(dates[i], ct->tz, text, sizeof text) < 0) return APSCHED_ERANGE;
    apsched__append_quoted(buf, len, &pos, sep, keys[i], text);
  }
  apsched__append_quoted(buf, len, &pos, sep, "timezone", apsched_tz_name(ct->tz));
  if (ct->base.jitter) apsched__append_jitter(buf, len, &pos, ", ", ct->base.jitter);
  apsched__append(buf, len, &pos, "]");
  if (buf && len > 0 && pos >= len) buf[len - 1] = '\0';
  return (int)pos;
}

/* ------------------------------------------------------------ lifecycle */

static void calendar_destroy(apsched_trigger *t) {
  calendar_trigger *ct = (calendar_trigger *)t;
  apsched_tz_free(ct->tz);
  free(ct);
}

static int calendar_clone(const apsched_trigger *t, apsched_trigger **out) {
  calendar_trigger *ct = malloc(sizeof *ct);
  if (!ct) return APSCHED_ENOMEM;
  memcpy(ct, t, sizeof *ct);
  apsched_tz_ref(ct->tz);
  *out = &ct->base;
  return APSCHED_OK;
}

static bool calendar_equal(const apsched_trigger *a, const apsched_trigger *b) {
  const calendar_trigger *x = (const calendar_trigger *)a, *y = (const calendar_trigger *)b;
  return x->years == y->years && x->months == y->months && x->weeks == y->weeks &&
         x->days == y->days && x->hour == y->hour && x->minute == y->minute &&
         x->second == y->second && x->start_date == y->start_date &&
         x->end_date == y->end_date && x->base.jitter == y->base.jitter &&
         (x->tz == y->tz || strcmp(apsched_tz_name(x->tz), apsched_tz_name(y->tz)) == 0);
}

static void calendar_bind(apsched_trigger *t, apsched_time_t now) {
  calendar_trigger *ct = (calendar_trigger *)t;
  /* A start of exactly 0 would read as "unbound"; 1 us later is the same day. */
  if (ct->start_date == 0) ct->start_date = now ? now : 1;
}

static const apsched_trigger_vtable calendar_vtable = {
    .version = APSCHED_TRIGGER_VTABLE_VERSION,
    .kind = "calendar",
    .next = calendar_next,
    .describe = calendar_describe,
    .clone = calendar_clone,
    .equal = calendar_equal,
    .bind = calendar_bind,
    .destroy = calendar_destroy,
};

/* A date must print as text that parses back to it (4-digit local years). */
static int check_date(const char *key, apsched_time_t t, const apsched_tz *tz, char *errbuf,
                      size_t errlen) {
  char text[64];
  apsched_time_t back = 0;
  if (t == APSCHED_TIME_NONE)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "calendar: %s: use 0 for \"none\", not APSCHED_TIME_NONE", key);
  if (apsched_time_format(t, tz, text, sizeof text) < 0 ||
      apsched_time_parse(text, NULL, &back, NULL, 0) != APSCHED_OK || back != t)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "calendar: %s: %lld is outside the years 0000..9999", key, (long long)t);
  return APSCHED_OK;
}

static int validate(const apsched_calendar_options *o, const apsched_tz *tz, char *errbuf,
                    size_t errlen) {
  const struct {
    const char *key;
    int value, max;
  } ints[] = {{"years", o->years, INT32_MAX}, {"months", o->months, INT32_MAX},
              {"weeks", o->weeks, INT32_MAX}, {"days", o->days, INT32_MAX},
              {"hour", o->hour, 23},          {"minute", o->minute, 59},
              {"second", o->second, 59}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (ints[i].value < 0 || ints[i].value > ints[i].max)
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "calendar: %s=%d is not in 0..%d",
                           ints[i].key, ints[i].value, ints[i].max);
  if (!o->years && !o->months && !o->weeks && !o->days)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "calendar: the interval must be at least 1 day long (set years, months, "
                         "weeks or days)");
  if (o->jitter < 0)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "calendar: jitter=%lld is negative",
                         (long long)o->jitter);
  int rc;
  if (o->start_date && (rc = check_date("start_date", o->start_date, tz, errbuf, errlen)))
    return rc;
  if (o->end_date && (rc = check_date("end_date", o->end_date, tz, errbuf, errlen))) return rc;
  if (o->start_date && o->end_date && o->end_date < o->start_date)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "calendar: end_date cannot be earlier than start_date");
  return APSCHED_OK;
}

/* Takes over the zone reference (also on error). */
static int calendar_new(const apsched_calendar_options *o, apsched_tz *tz, apsched_trigger **out,
                        char *errbuf, size_t errlen) {
  int rc = validate(o, tz, errbuf, errlen);
  calendar_trigger *ct = rc == APSCHED_OK ? malloc(sizeof *ct) : NULL;
  if (!ct) {
    apsched_tz_free(tz);
    return rc != APSCHED_OK ? rc : apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "out of memory");
  }
  ct->base.vtable = &calendar_vtable;
  ct->base.jitter = o->jitter;
  ct->tz = tz;
  ct->years = o->years;
  ct->months = o->months;
  ct->weeks = o->weeks;
  ct->days = o->days;
  ct->hour = o->hour;
  ct->minute = o->minute;
  ct->second = o->second;
  ct->start_date = o->start_date;
  ct->end_date = o->end_date;
  ct->month_step = (int64_t)o->years * 12 + o->months;
  ct->day_step = (int64_t)o->weeks * 7 + o->days;
  *out = &ct->base;
  return APSCHED_OK;
}

static int get_zone(const char *name, apsched_tz **tz, char *errbuf, size_t errlen) {
  char msg[200] = "";
  int rc = apsched_tz_get(name ? name : "local", tz, msg, sizeof msg);
  if (rc != APSCHED_OK) return apsched__fail(rc, errbuf, errlen, "timezone: %s", msg);
  return APSCHED_OK;
}

int apsched_trigger_calendar(const apsched_calendar_options *opt, apsched_trigger **out,
                             char *errbuf, size_t errlen) {
  if (!opt) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_calendar: opt is NULL");
  if (!out) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_calendar: out is NULL");
  apsched_tz *tz;
  int rc = get_zone(opt->timezone, &tz, errbuf, errlen);
  if (rc != APSCHED_OK) return rc;
  return calendar_new(opt, tz, out, errbuf, errlen);
}

int apsched__calendar_parse_params(const char *params, apsched_trigger **out, char *errbuf,
                                   size_t errlen) {
  apsched__param p[12];
  int n = apsched__split_trigger_text(params, NULL, 0, p, 12, errbuf, errlen);
  if (n < 0) return n;
  apsched_calendar_options o = {0};
  int *ints[] = {&o.years, &o.months, &o.weeks, &o.days, &o.hour, &o.minute, &o.second};
  static const char *const int_keys[] = {"years", "months", "weeks", "days",
                                         "hour",  "minute", "second"};
  static const int int_max[] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, 23, 59, 59};
  const apsched__param *dates[2] = {NULL, NULL};
  for (int i = 0; i < n; i++) {
    int rc = APSCHED_OK;
    bool known = false;
    for (size_t f = 0; f < sizeof ints / sizeof ints[0] && !known; f++) {
      if (strcmp(p[i].key, int_keys[f]) != 0) continue;
      int64_t v = 0;
      known = true;
      rc = apsched__param_int(&p[i], 0, int_max[f], &v, errbuf, errlen);
      *ints[f] = (int)v;
    }
    if (known) {
      if (rc != APSCHED_OK) return rc;
      continue;
    }
    if (strcmp(p[i].key, "start_date") == 0) {
      dates[0] = &p[i];
    } else if (strcmp(p[i].key, "end_date") == 0) {
      dates[1] = &p[i];
    } else if (strcmp(p[i].key, "timezone") == 0) {
      o.timezone = p[i].value;
    } else if (strcmp(p[i].key, "jitter") == 0) {
      rc = apsched__param_seconds(&p[i], &o.jitter, errbuf, errlen);
    } else {
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                           "calendar: unknown parameter '%s' (allowed: years, months, weeks, "
                           "days, hour, minute, second, start_date, end_date, timezone, jitter)",
                           p[i].key);
    }
    if (rc != APSCHED_OK) return rc;
  }
  apsched_tz *tz;
  int rc = get_zone(o.timezone, &tz, errbuf, errlen);
  if (rc != APSCHED_OK) return rc;
  /* Dates without an offset are wall time in the trigger's zone. */
  apsched_time_t *when[2] = {&o.start_date, &o.end_date};
  for (int i = 0; i < 2; i++) {
    char msg[200] = "";
    if (!dates[i]) continue;
    rc = apsched_time_parse(dates[i]->value, tz, when[i], msg, sizeof msg);
    if (rc != APSCHED_OK) {
      apsched_tz_free(tz);
      return apsched__fail(rc, errbuf, errlen, "%s: %s", dates[i]->key, msg);
    }
  }
  return calendar_new(&o, tz, out, errbuf, errlen);
}
