/* The cron trigger: APScheduler 3.x's CronTrigger, with exact DST rules.
 *
 * next() finds the first local civil time at or after a bound that matches
 * every field (field-by-field carry arithmetic over bit masks, see
 * apsched__cron_next_local), then maps it to an instant in the trigger's zone
 * following DESIGN.md section 3:
 *   - fixed-time jobs (neither hour nor minute holds '*'): a local time in a
 *     spring-forward gap fires once, at the first instant after the gap; in a
 *     fall-back fold only the first occurrence fires;
 *   - wildcard jobs (hour or minute holds '*'): every real instant whose local
 *     time matches fires, so "*" "/15" keeps its cadence through both changes;
 *   - gaps longer than 3 hours are zone-rule changes (Apia skipping
 *     2011-12-30): local times inside them are not caught up.
 *
 * Deliberate differences from APScheduler 3.9.1 (README material):
 *  1. DST. 3.9.1 (pytz) fires a fixed-time job inside a gap at a local time
 *     that does not exist (02:00 EST on the spring day), fires a repeated
 *     fixed time at its second occurrence, and wildcard jobs lose runs in the
 *     repeated hour ("*" "/15" in Berlin: 96 runs on the 25-hour day, with a
 *     75-minute hole, instead of 100). We follow the rules above.
 *  2. next(prev, now) is the first fire time strictly after prev; now is only
 *     used when there is no prev. 3.9.1 starts from min(now, prev + 1 us), so
 *     a now earlier than prev can yield a time before prev.
 *  3. start_date always bounds the result (3.9.1 ignores it once a previous
 *     fire time exists).
 *  4. jitter is stored, not applied here: the scheduler adds it (3.9.1 adds it
 *     inside get_next_fire_time and clamps to end_date).
 *  5. Crontab strings use crontab numbering: day_of_week 0 and 7 are Sunday,
 *     ranges may wrap ("fri-mon", hours "22-2"), 6 fields mean seconds first,
 *     and @yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly exist.
 *     3.9.1's from_crontab passes weekday numbers through with 0 = Monday,
 *     rejects 7, wrap-around ranges and 6 fields. Like APScheduler (and unlike
 *     Vixie cron), a restricted day and day_of_week must both match (AND).
 *  6. Stricter syntax: 3.9.1 ignores text after a name, a weekday position
 *     or "last" ("lastx" = "last", "3rd fri x" = "3rd fri", "mon-4" = "mon",
 *     "mon-fri/2" = "mon-fri"). We reject unknown text and read a step on a
 *     named range ("mon-fri/2" = mon, wed, fri) and mixed names and numbers
 *     ("mon-4" = mon-fri) as written.
 *  7. Messages: "hour: '0-24': 24 is above the maximum 23" instead of
 *     "Error validating expression '0-24': the last value (24) is higher than
 *     the maximum value (23)"; "0-0/1"-style steps that 3.9.1 lets through
 *     because of a falsy zero are rejected like any step larger than its range.
 *  8. Limits: a field's canonical text is at most 200 characters and the year
 *     field at most 48 expressions (so every trigger's text parses back).
 *  9. The canonical text lists all eight fields (not only non-default ones) and
 *     converts crontab numbering to the field API's, so it parses back to an
 *     equal trigger.
 * 10. An end_date before start_date is an error, as for the interval and
 *     calendar triggers (3.9.1 accepts it, and the trigger never fires).
 * Same as 3.9.1: fields and defaults, day_of_week 0 = Monday in the field API,
 * ISO weeks, local years 1970..9999 (no fire time outside them), whole-second
 * fire times, end_date inclusive, no fields at all = every second.
 */
#include "builtin.h"
#include "cron_internal.h"
#include "../time/tz_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct cron_trigger {
  apsched_trigger base;
  apsched_tz *tz;
  bool fixed;                /* the zone is a fixed offset: no tz calls in next() */
  int32_t offset;            /* its offset, seconds east of UTC */
  apsched_time_t start_date; /* 0: none */
  apsched_time_t end_date;   /* 0: none */
  const apsched__cron_shape *shape; /* the parsed fields and their texts, shared */
} cron_trigger;

static const apsched_trigger_vtable cron_vtable;

/* Gaps longer than this are zone-rule changes, not DST: not caught up. */
#define MAX_CATCH_UP_GAP (3 * 3600)
/* Each round of the DST loop moves past one gap or fold; no zone has this many. */
#define MAX_ROUNDS 100000

/* ---------------------------------------------------------- civil time */

static bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m) {
  static const int8_t len[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 ? 28 + is_leap(y) : len[m];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Local civil time <-> "local seconds" (seconds since 1970-01-01 00:00 on the wall). */
static int64_t local_seconds(const apsched__cron_civil *c) {
  return days_from_civil(c->year, c->month, c->day) * 86400 + c->hour * 3600 + c->minute * 60 +
         c->second;
}

static void civil_from_seconds(int64_t s, apsched__cron_civil *c) {
  int64_t days = floor_div(s, 86400);
  int sod = (int)(s - days * 86400);
  civil_from_days(days, &c->year, &c->month, &c->day);
  c->hour = sod / 3600;
  c->minute = sod / 60 % 60;
  c->second = sod % 60;
}

/* ----------------------------------------------------- the local search */

static int day_of_year(int y, int m, int d) {
  static const int16_t before[13] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  return before[m] + d + (m > 2 && is_leap(y));
}

/* ISO week of the day with ordinal doy (1-based) and weekday wd (0 = Monday). */
static int iso_week(int y, int doy, int wd) {
  int thursday = doy - wd + 3; /* the ordinal of that week's Thursday */
  if (thursday < 1) {
    thursday += 365 + is_leap(y - 1);
  } else if (thursday > 365 + is_leap(y)) {
    return 1;
  }
  return (thursday - 1) / 7 + 1;
}

/* Days of the month in an allowed ISO week (one test per calendar week). */
static uint32_t week_days(const apsched__cron_spec *sp, int y, int mo, int md, int wd1) {
  uint64_t mask = 0;
  int doy1 = day_of_year(y, mo, 1);
  for (int d = 1, wd = wd1; d <= md; wd = 0) {
    int end = d + 6 - wd;
    if (end > md) end = md;
    if (sp->week >> iso_week(y, doy1 + d - 1, wd) & 1)
      mask |= ((1ull << (end + 1)) - 1) & ~((1ull << d) - 1);
    d = end + 1;
  }
  return (uint32_t)mask;
}

static uint32_t day_mask(const apsched__cron_spec *sp, int y, int mo, int md) {
  if (sp->day_any) return (uint32_t)(((1ull << (md + 1)) - 1) & ~1ull);
  int wd1 = (int)((days_from_civil(y, mo, 1) + 3) % 7); /* 1970-01-01 was a Thursday */
  uint32_t m = apsched__cron_month_shape(sp, md, wd1);
  if (m && !sp->week_any) m &= week_days(sp, y, mo, md, wd1);
  return m;
}

/* First time of day >= h:mi:s that matches; false if none is left today. */
static inline bool time_of_day(const apsched__cron_spec *sp, int *h, int *mi, int *s) {
  int H = *h, M = *mi, S = *s;
  while (H <= 23) {
    uint32_t hours = sp->hour >> H;
    if (!hours) return false;
    int nh = H + __builtin_ctz(hours);
    if (nh != H) {
      H = nh;
      M = S = 0;
    }
    while (M <= 59) {
      uint64_t minutes = sp->minute >> M;
      if (!minutes) break;
      int nm = M + __builtin_ctzll(minutes);
      if (nm != M) {
        M = nm;
        S = 0;
      }
      uint64_t seconds = S <= 59 ? sp->second >> S : 0;
      if (seconds) {
        *h = H;
        *mi = M;
        *s = S + __builtin_ctzll(seconds);
        return true;
      }
      M++;
      S = 0;
    }
    H++;
    M = S = 0;
  }
  return false;
}

bool apsched__cron_next_local(const apsched__cron_spec *sp, apsched__cron_civil *c) {
  int y = c->year, mo = c->month, d = c->day, h = c->hour, mi = c->minute, s = c->second;
  if (y < APSCHED__CRON_YEAR_MIN) {
    y = APSCHED__CRON_YEAR_MIN;
    mo = d = 1;
    h = mi = s = 0;
  }
  /* Whether a year has any matching day depends only on y mod 400 (the
   * Gregorian cycle is a whole number of weeks): remember residues that had
   * none, so a hopeless search ends after at most 400 years of day tests. */
  uint64_t barren[7] = {0};
  int n_barren = 0;
  for (;;) {
    int ny = apsched__cron_next_year(sp, y);
    if (ny < 0) return false;
    if (ny != y) {
      y = ny;
      mo = d = 1;
      h = mi = s = 0;
    }
    bool whole_year = mo == 1 && d == 1 && h == 0 && mi == 0 && s == 0;
    int r = y % 400;
    if (!(whole_year && (barren[r >> 6] >> (r & 63) & 1))) {
      while (mo <= 12) {
        uint32_t months = (uint32_t)sp->month >> mo;
        if (!months) break;
        int nmo = mo + __builtin_ctz(months);
        if (nmo != mo) {
          mo = nmo;
          d = 1;
          h = mi = s = 0;
        }
        int md = days_in_month(y, mo);
        uint32_t days = day_mask(sp, y, mo, md);
        while (d <= 31) {
          uint32_t left = days >> d;
          if (!left) break;
          int nd = d + __builtin_ctz(left);
          if (nd != d) {
            d = nd;
            h = mi = s = 0;
          }
          if (time_of_day(sp, &h, &mi, &s)) {
            c->year = y;
            c->month = mo;
            c->day = d;
            c->hour = h;
            c->minute = mi;
            c->second = s;
            return true;
          }
          d++;
          h = mi = s = 0;
        }
        mo++;
        d = 1;
        h = mi = s = 0;
      }
      if (whole_year) {
        barren[r >> 6] |= 1ull << (r & 63);
        if (++n_barren == 400) return false;
      }
    }
    if (y >= APSCHED__CRON_YEAR_MAX) return false;
    y++;
    mo = d = 1;
    h = mi = s = 0;
  }
}

/* ------------------------------------------------------------ the zone */

static bool to_local(const cron_trigger *ct, int64_t t, apsched__cron_civil *c, int *offset) {
  apsched_civil lc;
  if (apsched__tz_to_local(ct->tz, t * APSCHED_SEC, &lc) != APSCHED_OK) return false;
  c->year = lc.year;
  c->month = lc.month;
  c->day = lc.day;
  c->hour = lc.hour;
  c->minute = lc.minute;
  c->second = lc.second;
  if (offset) *offset = lc.utc_offset;
  return true;
}

/* Local civil time -> UTC; times in whole seconds. */
typedef struct resolved {
  apsched_local_kind kind;
  int64_t utc;
  int64_t transition;
} resolved;

static bool from_local(const cron_trigger *ct, const apsched__cron_civil *c,
                       apsched_disambiguate how, resolved *out) {
  apsched_civil lc = {.year = c->year,
                      .month = c->month,
                      .day = c->day,
                      .hour = c->hour,
                      .minute = c->minute,
                      .second = c->second};
  apsched_local_result r;
  if (apsched__tz_from_local(ct->tz, &lc, how, &r) != APSCHED_OK) return false;
  out->kind = r.kind;
  out->utc = floor_div(r.utc, APSCHED_SEC);
  out->transition = floor_div(r.transition, APSCHED_SEC);
  return true;
}

static int offset_at(const cron_trigger *ct, int64_t t, bool *ok) {
  apsched__cron_civil c;
  int off = 0;
  if (!to_local(ct, t, &c, &off)) *ok = false;
  return off;
}

#define NO_TIME INT64_MIN

/* Fixed-time jobs: the first fire time >= lb (seconds). */
static int64_t next_fixed(const cron_trigger *ct, int64_t lb) {
  apsched__cron_civil c;
  /* Start from the local time just before lb, so that a gap ending exactly
   * at lb still maps its local times to lb. */
  if (!to_local(ct, lb - 1, &c, NULL)) return NO_TIME;
  civil_from_seconds(local_seconds(&c) + 1, &c);
  for (int round = 0; round < MAX_ROUNDS; round++) {
    if (!apsched__cron_next_local(&ct->shape->spec, &c)) return NO_TIME;
    resolved r;
    if (!from_local(ct, &c, APSCHED_GAP_END, &r)) return NO_TIME;
    int64_t ls = local_seconds(&c);
    if (r.kind == APSCHED_LOCAL_REPEATED) {
      if (r.utc >= lb) return r.utc; /* the first occurrence */
      /* lb is inside the second pass of the fold: this local time already
       * fired in the first pass. Go on after the fold. */
      ls = r.transition + (ls - r.utc);
    } else if (r.kind == APSCHED_LOCAL_SKIPPED) {
      bool ok = true;
      int after = offset_at(ct, r.transition, &ok);
      int before = offset_at(ct, r.transition - 1, &ok);
      if (!ok) return NO_TIME;
      if (after - before <= MAX_CATCH_UP_GAP && r.transition >= lb) return r.transition;
      ls = r.transition + after; /* the local end of the gap */
    } else {
      if (r.utc >= lb) return r.utc;
      ls++; /* cannot happen with a consistent zone; keeps the loop moving */
    }
    civil_from_seconds(ls, &c);
  }
  return NO_TIME;
}

/* Wildcard jobs: the first real instant >= lb whose local time matches. */
static int64_t next_wildcard(const cron_trigger *ct, int64_t lb) {
  apsched__cron_civil L, c;
  if (!to_local(ct, lb, &L, NULL)) return NO_TIME;
  c = L;
  bool found = apsched__cron_next_local(&ct->shape->spec, &c);
  int64_t lsL = local_seconds(&L);
  if (found && local_seconds(&c) == lsL) return lb; /* lb itself matches */

  resolved r;
  if (!from_local(ct, &L, APSCHED_EARLIER, &r)) return NO_TIME;
  if (r.kind == APSCHED_LOCAL_REPEATED) {
    /* lb is inside a fold: local times run [fold_start, fold_end) twice,
     * first with offset o1, then (from the transition on) with o2. */
    bool ok = true;
    int64_t o1 = lsL - r.utc;
    int64_t o2 = offset_at(ct, r.transition, &ok);
    if (!ok) return NO_TIME;
    int64_t fold_start = r.transition + o2, fold_end = r.transition + o1;
    bool first_pass = lb < r.transition;
    if (found && local_seconds(&c) < fold_end) return local_seconds(&c) - (first_pass ? o1 : o2);
    if (first_pass) {
      /* Nothing left in the first pass: the whole second pass follows. */
      civil_from_seconds(fold_start, &c);
      if (apsched__cron_next_local(&ct->shape->spec, &c) && local_seconds(&c) < fold_end)
        return local_seconds(&c) - o2;
    }
    civil_from_seconds(fold_end, &c);
    found = apsched__cron_next_local(&ct->shape->spec, &c);
  }
  for (int round = 0; round < MAX_ROUNDS; round++) {
    if (!found) return NO_TIME;
    if (!from_local(ct, &c, APSCHED_EARLIER, &r)) return NO_TIME;
    if (r.kind != APSCHED_LOCAL_SKIPPED) return r.utc; /* unique, or the first occurrence */
    /* Not a real time: go on from the local end of the gap. */
    if (!to_local(ct, r.transition, &c, NULL)) return NO_TIME;
    found = apsched__cron_next_local(&ct->shape->spec, &c);
  }
  return NO_TIME;
}

/* Fixed offsets (UTC, "+05:45"): local time is a shift, no DST. */
static int64_t next_fixed_offset(const cron_trigger *ct, int64_t lb) {
  apsched__cron_civil c;
  civil_from_seconds(lb + ct->offset, &c);
  if (!apsched__cron_next_local(&ct->shape->spec, &c)) return NO_TIME;
  return local_seconds(&c) - ct->offset;
}

/* The search covers local years 1970..9999; a day of slack either side
 * covers every UTC offset. */
static const int64_t search_min = -2 * 86400LL;      /* 1969-12-30 */
static const int64_t search_max = 2932898LL * 86400; /* 10000-01-02 */

static apsched_time_t cron_next(const apsched_trigger *t, apsched_time_t prev, apsched_time_t now) {
  const cron_trigger *ct = (const cron_trigger *)t;
  if (ct->shape->spec.never) return APSCHED_TIME_NONE;
  apsched_time_t lb;
  if (prev != APSCHED_TIME_NONE) {
    if (prev == INT64_MAX) return APSCHED_TIME_NONE;
    lb = prev + 1;
  } else {
    lb = now;
  }
  if (ct->start_date && lb < ct->start_date) lb = ct->start_date;
  if (ct->end_date && lb > ct->end_date) return APSCHED_TIME_NONE;
  if (lb > search_max * APSCHED_SEC) return APSCHED_TIME_NONE;
  /* Fire times are whole seconds: round the bound up to one. */
  int64_t lb_s = search_min;
  if (lb > search_min * APSCHED_SEC) {
    lb_s = floor_div(lb, APSCHED_SEC);
    if (lb_s * APSCHED_SEC < lb) lb_s++;
  }

  int64_t next;
  if (ct->fixed)
    next = next_fixed_offset(ct, lb_s);
  else if (ct->shape->spec.wildcard)
    next = next_wildcard(ct, lb_s);
  else
    next = next_fixed(ct, lb_s);
  if (next == NO_TIME) return APSCHED_TIME_NONE;
  apsched_time_t result = next * APSCHED_SEC;
  if (ct->end_date && result > ct->end_date) return APSCHED_TIME_NONE;
  return result;
}

/* ------------------------------------------------------------ the text */

/* Appends "key='value'", with ", " before every parameter but the first. */
static void append_quoted(char *buf, size_t len, size_t *pos, bool *first, const char *key,
                          const char *value) {
  apsched__append_quoted(buf, len, pos, *first ? "" : ", ", key, value);
  *first = false;
}

static int cron_describe(const apsched_trigger *t, char *buf, size_t len) {
  const cron_trigger *ct = (const cron_trigger *)t;
  size_t pos = 0;
  bool first = true;
  apsched__append(buf, len, &pos, "cron[");
  const char *field = ct->shape->text;
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++, field += strlen(field) + 1)
    append_quoted(buf, len, &pos, &first, apsched__cron_field_names[f], field);
  append_quoted(buf, len, &pos, &first, "timezone", apsched_tz_name(ct->tz));
  const apsched_time_t dates[2] = {ct->start_date, ct->end_date};
  static const char *const date_keys[2] = {"start_date", "end_date"};
  for (int i = 0; i < 2; i++) {
    if (!dates[i]) continue;
    char text[64];
    if (apsched_time_format(dates[i], NULL, text, sizeof text) < 0) return APSCHED_ERANGE;
    append_quoted(buf, len, &pos, &first, date_keys[i], text);
  }
  if (ct->base.jitter) {
    apsched__append_jitter(buf, len, &pos, ", ", ct->base.jitter);
  }
  apsched__append(buf, len, &pos, "]");
  if (buf && len > 0 && pos >= len) buf[len - 1] = '\0';
  return (int)pos;
}

/* ------------------------------------------------------------ lifecycle */

static void cron_destroy(apsched_trigger *t) {
  cron_trigger *ct = (cron_trigger *)t;
  apsched_tz_free(ct->tz);
  apsched__cron_shape_release(ct->shape);
  free(ct);
}

static int cron_clone(const apsched_trigger *t, apsched_trigger **out) {
  const cron_trigger *src = (const cron_trigger *)t;
  cron_trigger *ct = malloc(sizeof *ct);
  if (!ct) return APSCHED_ENOMEM;
  memcpy(ct, src, sizeof *ct);
  apsched__cron_shape_ref(ct->shape);
  apsched_tz_ref(ct->tz);
  *out = &ct->base;
  return APSCHED_OK;
}

static bool cron_equal(const apsched_trigger *a, const apsched_trigger *b) {
  const cron_trigger *x = (const cron_trigger *)a, *y = (const cron_trigger *)b;
  return x->base.jitter == y->base.jitter && x->start_date == y->start_date &&
         x->end_date == y->end_date &&
         (x->tz == y->tz || strcmp(apsched_tz_name(x->tz), apsched_tz_name(y->tz)) == 0) &&
         (x->shape == y->shape || apsched__cron_spec_equal(&x->shape->spec, &y->shape->spec));
}

static const apsched_trigger_vtable cron_vtable = {
    .version = APSCHED_TRIGGER_VTABLE_VERSION,
    .kind = "cron",
    .next = cron_next,
    .describe = cron_describe,
    .clone = cron_clone,
    .equal = cron_equal,
    .bind = NULL,
    .destroy = cron_destroy,
};

/* Zones whose name says "fixed offset": "UTC", "GMT", "Etc/...", "+05:45",
 * "UTC-03:00". The offset itself is asked from the zone. */
static bool fixed_offset_name(const char *name) {
  if (strcmp(name, "UTC") == 0 || strcmp(name, "GMT") == 0 || strcmp(name, "Z") == 0 ||
      strncmp(name, "Etc/", 4) == 0)
    return true;
  if (strncmp(name, "UTC", 3) == 0 || strncmp(name, "GMT", 3) == 0) name += 3;
  if (*name != '+' && *name != '-') return false;
  for (name++; *name; name++)
    if (!((*name >= '0' && *name <= '9') || *name == ':')) return false;
  return true;
}

static void detect_fixed_offset(cron_trigger *ct) {
  ct->fixed = false;
  if (!fixed_offset_name(apsched_tz_name(ct->tz))) return;
  /* Trust the name only if the zone agrees at a few far-apart instants. */
  static const int64_t probes[] = {0, 946684800, 1782864000, 4102444800};
  int first = 0;
  for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
    apsched_civil lc;
    if (apsched__tz_to_local(ct->tz, probes[i] * APSCHED_SEC, &lc) != APSCHED_OK || lc.is_dst)
      return;
    if (i == 0) first = lc.utc_offset;
    if (lc.utc_offset != first) return;
  }
  ct->offset = first;
  ct->fixed = true;
}

/* A new trigger without its schedule; cron_finish gives it one. */
static int cron_alloc(const char *timezone, cron_trigger **out, char *errbuf, size_t errlen) {
  cron_trigger *ct = calloc(1, sizeof *ct);
  if (!ct) return apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "out of memory");
  char msg[200] = "";
  int rc = apsched_tz_get(timezone ? timezone : "local", &ct->tz, msg, sizeof msg);
  if (rc != APSCHED_OK) {
    free(ct);
    return apsched__fail(rc, errbuf, errlen, "timezone: %s", msg);
  }
  ct->base.vtable = &cron_vtable;
  *out = ct;
  return APSCHED_OK;
}

static int cron_finish(cron_trigger *ct, const apsched__cron_parsed *parsed,
                       const apsched__cron_text *tx, apsched_time_t start,
                       apsched_time_t end, int64_t jitter, apsched_trigger **out, char *errbuf,
                       size_t errlen) {
  if (jitter < 0)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "jitter: %lld is negative",
                         (long long)jitter);
  if (start == APSCHED_TIME_NONE || end == APSCHED_TIME_NONE)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "start_date/end_date: use 0 for \"none\", not APSCHED_TIME_NONE");
  /* Both dates must have a canonical text, so that describe cannot fail. */
  const apsched_time_t dates[2] = {start, end};
  for (int i = 0; i < 2; i++) {
    char text[64];
    if (dates[i] && apsched_time_format(dates[i], NULL, text, sizeof text) < 0)
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "%s: %lld is out of range",
                           i ? "end_date" : "start_date", (long long)dates[i]);
  }
  /* As the interval and calendar triggers: such a trigger could never fire.
   * The dates are shown in the trigger's zone, where they were likely given. */
  if (start && end && end < start) {
    char s_text[64], e_text[64];
    apsched_time_format(start, ct->tz, s_text, sizeof s_text);
    apsched_time_format(end, ct->tz, e_text, sizeof e_text);
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "end_date: %s is before start_date %s",
                         e_text, s_text);
  }
  if (apsched__cron_shape_get(parsed, tx, &ct->shape) != APSCHED_OK)
    return apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "out of memory");
  ct->start_date = start;
  ct->end_date = end;
  ct->base.jitter = jitter;
  detect_fixed_offset(ct);
  *out = &ct->base;
  return APSCHED_OK;
}

int apsched_trigger_cron(const apsched_cron_options *opt, apsched_trigger **out, char *errbuf,
                         size_t errlen) {
  if (!opt) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_cron: opt is NULL");
  if (!out) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_cron: out is NULL");
  const char *const values[APSCHED__CRON_NFIELDS] = {opt->year,   opt->month,       opt->day,
                                                     opt->week,   opt->day_of_week, opt->hour,
                                                     opt->minute, opt->second};
  cron_trigger *ct = NULL;
  int rc = cron_alloc(opt->timezone, &ct, errbuf, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched__cron_parsed parsed;
  apsched__cron_text tx;
  rc = apsched__cron_parse_fields(&parsed, &tx, values, errbuf, errlen);
  if (rc == APSCHED_OK)
    rc = cron_finish(ct, &parsed, &tx, opt->start_date, opt->end_date, opt->jitter, out, errbuf,
                     errlen);
  if (rc != APSCHED_OK) cron_destroy(&ct->base);
  return rc;
}

int apsched_trigger_crontab(const char *expr, const char *timezone, apsched_trigger **out,
                            char *errbuf, size_t errlen) {
  if (!expr) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_crontab: expr is NULL");
  if (!out) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_crontab: out is NULL");
  cron_trigger *ct = NULL;
  int rc = cron_alloc(timezone, &ct, errbuf, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched__cron_parsed parsed;
  apsched__cron_text tx;
  rc = apsched__cron_parse_crontab(&parsed, &tx, expr, errbuf, errlen);
  if (rc == APSCHED_OK) rc = cron_finish(ct, &parsed, &tx, 0, 0, 0, out, errbuf, errlen);
  if (rc != APSCHED_OK) cron_destroy(&ct->base);
  return rc;
}

int apsched__cron_parse_params(const char *params, apsched_trigger **out, char *errbuf,
                               size_t errlen) {
  apsched__param p[16];
  int n = apsched__split_trigger_text(params, NULL, 0, p, 16, errbuf, errlen);
  if (n < 0) return n;
  const char *values[APSCHED__CRON_NFIELDS] = {NULL};
  const char *timezone = NULL;
  const apsched__param *dates[2] = {NULL, NULL};
  int64_t jitter = 0;
  for (int i = 0; i < n; i++) {
    bool known = false;
    for (int f = 0; f < APSCHED__CRON_NFIELDS && !known; f++) {
      if (strcmp(p[i].key, apsched__cron_field_names[f]) != 0) continue;
      values[f] = p[i].value;
      known = true;
    }
    if (known) continue;
    if (strcmp(p[i].key, "timezone") == 0) {
      timezone = p[i].value;
    } else if (strcmp(p[i].key, "start_date") == 0) {
      dates[0] = &p[i];
    } else if (strcmp(p[i].key, "end_date") == 0) {
      dates[1] = &p[i];
    } else if (strcmp(p[i].key, "jitter") == 0) {
      int rc = apsched__param_seconds(&p[i], &jitter, errbuf, errlen);
      if (rc != APSCHED_OK) return rc;
    } else {
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                           "cron: unknown parameter '%s' (allowed: year, month, day, week, "
                           "day_of_week, hour, minute, second, timezone, start_date, end_date, "
                           "jitter)",
                           p[i].key);
    }
  }
  cron_trigger *ct = NULL;
  int rc = cron_alloc(timezone, &ct, errbuf, errlen);
  if (rc != APSCHED_OK) return rc;
  /* Dates without an offset are wall time in the trigger's zone, as in APScheduler. */
  apsched_time_t when[2] = {0, 0};
  for (int i = 0; i < 2 && rc == APSCHED_OK; i++) {
    if (!dates[i]) continue;
    char msg[200] = "";
    rc = apsched_time_parse(dates[i]->value, ct->tz, &when[i], msg, sizeof msg);
    if (rc != APSCHED_OK) rc = apsched__fail(rc, errbuf, errlen, "%s: %s", dates[i]->key, msg);
  }
  apsched__cron_parsed parsed;
  apsched__cron_text tx;
  if (rc == APSCHED_OK) rc = apsched__cron_parse_fields(&parsed, &tx, values, errbuf, errlen);
  if (rc == APSCHED_OK)
    rc = cron_finish(ct, &parsed, &tx, when[0], when[1], jitter, out, errbuf, errlen);
  if (rc != APSCHED_OK) cron_destroy(&ct->base);
  return rc;
}
