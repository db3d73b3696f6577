/* POSIX TZ strings ("CET-1CEST,M3.5.0,M10.5.0/3"): parsing, with the TZif v3
 * extensions (rule times -167..167 hours, DST all year), and evaluation.
 *
 * Semantics: DST periods start at start(Y) and last until the first end
 * instant at or after that start. Periods that touch or overlap merge, so a
 * rule whose DST ends exactly when next year's begins ("0/0,J365/25") is DST
 * all year, and southern-hemisphere rules (end before start in the calendar
 * year) need no special case. Both the point query and the list of changes
 * derive from that one definition, so they always agree. */
#include "tz_internal.h"

#include <string.h>

typedef struct cursor {
  const char *s;
  size_t n, i;
  char *errbuf;
  size_t errlen;
} cursor;

static int peek(const cursor *c) { return c->i < c->n ? (unsigned char)c->s[c->i] : -1; }

static int bad(cursor *c, const char *what) {
  int shown = c->n > 64 ? 64 : (int)c->n;
  if (c->i < c->n)
    return apsched__fail(APSCHED_EINVAL, c->errbuf, c->errlen,
                         "POSIX TZ string '%.*s%s': %s at offset %zu ('%c')", shown, c->s,
                         c->n > 64 ? "..." : "", what, c->i, c->s[c->i]);
  return apsched__fail(APSCHED_EINVAL, c->errbuf, c->errlen,
                       "POSIX TZ string '%.*s%s': %s at the end", shown, c->s,
                       c->n > 64 ? "..." : "", what);
}

static bool is_alpha(int ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'); }
static bool is_digit(int ch) { return ch >= '0' && ch <= '9'; }

/* "EST" or "<+0330>"; 3..15 characters. */
static int parse_abbr(cursor *c, char out[16], const char *which) {
  size_t start, len;
  char msg[96];
  if (peek(c) == '<') {
    c->i++;
    start = c->i;
    while (c->i < c->n && c->s[c->i] != '>') {
      int ch = peek(c);
      if (!is_alpha(ch) && !is_digit(ch) && ch != '+' && ch != '-') {
        snprintf(msg, sizeof msg, "%s abbreviation in <...> may hold only letters, digits, '+' and '-'",
                 which);
        return bad(c, msg);
      }
      c->i++;
    }
    if (c->i >= c->n) {
      snprintf(msg, sizeof msg, "%s abbreviation is missing its closing '>'", which);
      return bad(c, msg);
    }
    len = c->i - start;
    c->i++;
  } else {
    start = c->i;
    while (is_alpha(peek(c))) c->i++;
    len = c->i - start;
  }
  if (len < 3 || len > 15) {
    snprintf(msg, sizeof msg, "%s abbreviation must have 3 to 15 characters (has %zu)", which, len);
    return bad(c, msg);
  }
  memcpy(out, c->s + start, len);
  out[len] = '\0';
  return APSCHED_OK;
}

static int parse_num(cursor *c, int maxdigits, int *out) {
  int v = 0, k = 0;
  while (k < maxdigits && is_digit(peek(c))) {
    v = v * 10 + (c->s[c->i] - '0');
    c->i++;
    k++;
  }
  *out = v;
  return k;
}

/* [+-]hh[:mm[:ss]] with hh <= maxh; returns signed seconds. */
static int parse_hms(cursor *c, int maxh, const char *what, int32_t *out) {
  int sign = 1, h, m = 0, s = 0;
  char msg[96];
  if (peek(c) == '+' || peek(c) == '-') {
    sign = peek(c) == '-' ? -1 : 1;
    c->i++;
  }
  if (!parse_num(c, 3, &h)) {
    snprintf(msg, sizeof msg, "expected %s hours", what);
    return bad(c, msg);
  }
  if (h > maxh) {
    snprintf(msg, sizeof msg, "%s hours %d are above the maximum %d", what, h, maxh);
    return bad(c, msg);
  }
  if (peek(c) == ':') {
    c->i++;
    if (!parse_num(c, 2, &m) || m > 59) {
      snprintf(msg, sizeof msg, "expected %s minutes 00..59", what);
      return bad(c, msg);
    }
    if (peek(c) == ':') {
      c->i++;
      if (!parse_num(c, 2, &s) || s > 59) {
        snprintf(msg, sizeof msg, "expected %s seconds 00..59", what);
        return bad(c, msg);
      }
    }
  }
  *out = sign * (h * 3600 + m * 60 + s);
  return APSCHED_OK;
}

static int parse_rule_date(cursor *c, apsched__tz_rule_date *d, const char *which) {
  char msg[96];
  int v;
  if (peek(c) == 'J') {
    c->i++;
    if (!parse_num(c, 3, &v) || v < 1 || v > 365) {
      snprintf(msg, sizeof msg, "%s date Jn needs a day 1..365", which);
      return bad(c, msg);
    }
    d->kind = APSCHED__RULE_JULIAN1;
    d->day = v;
  } else if (is_digit(peek(c))) {
    if (!parse_num(c, 3, &v) || v > 365) {
      snprintf(msg, sizeof msg, "%s date n needs a day 0..365", which);
      return bad(c, msg);
    }
    d->kind = APSCHED__RULE_ZERO;
    d->day = v;
  } else if (peek(c) == 'M') {
    c->i++;
    d->kind = APSCHED__RULE_MWD;
    if (!parse_num(c, 2, &d->month) || d->month < 1 || d->month > 12) {
      snprintf(msg, sizeof msg, "%s date Mm.w.d needs a month 1..12", which);
      return bad(c, msg);
    }
    if (peek(c) != '.') return bad(c, "expected '.' after the month");
    c->i++;
    if (!parse_num(c, 1, &d->week) || d->week < 1 || d->week > 5) {
      snprintf(msg, sizeof msg, "%s date Mm.w.d needs a week 1..5", which);
      return bad(c, msg);
    }
    if (peek(c) != '.') return bad(c, "expected '.' after the week");
    c->i++;
    if (!parse_num(c, 1, &d->wday) || d->wday > 6) {
      snprintf(msg, sizeof msg, "%s date Mm.w.d needs a weekday 0..6", which);
      return bad(c, msg);
    }
  } else {
    snprintf(msg, sizeof msg, "expected the %s date (Jn, n or Mm.w.d)", which);
    return bad(c, msg);
  }
  d->secs = 2 * 3600;
  if (peek(c) == '/') {
    c->i++;
    /* v3 extension: -167..167 hours, so a change can be a week away. */
    return parse_hms(c, 167, "rule time", &d->secs);
  }
  return APSCHED_OK;
}

int apsched__posix_tz_parse(const char *s, size_t len, apsched__posix_tz *out, char *errbuf,
                            size_t errlen) {
  cursor c = {s, len, 0, errbuf, errlen};
  apsched__posix_tz r;
  int32_t off;
  int rc;
  memset(&r, 0, sizeof r);
  if (len == 0) return bad(&c, "empty string");
  if ((rc = parse_abbr(&c, r.std.abbr, "standard time")) != 0) return rc;
  if (c.i >= c.n) return bad(&c, "expected the UTC offset after the standard time abbreviation");
  /* POSIX offsets are positive west of Greenwich; utoff is east. */
  if ((rc = parse_hms(&c, 24, "offset", &off)) != 0) return rc;
  r.std.utoff = -off;
  r.std.isdst = 0;
  if (c.i < c.n) {
    if ((rc = parse_abbr(&c, r.dst.abbr, "daylight time")) != 0) return rc;
    r.has_dst = true;
    r.dst.isdst = 1;
    r.dst.utoff = r.std.utoff + 3600;
    if (c.i < c.n && peek(&c) != ',') {
      if ((rc = parse_hms(&c, 24, "daylight offset", &off)) != 0) return rc;
      r.dst.utoff = -off;
    }
    if (c.i < c.n) {
      if (peek(&c) != ',') return bad(&c, "expected ',' and the DST start rule");
      c.i++;
      if ((rc = parse_rule_date(&c, &r.start, "start")) != 0) return rc;
      if (peek(&c) != ',') return bad(&c, "expected ',' and the DST end rule");
      c.i++;
      if ((rc = parse_rule_date(&c, &r.end, "end")) != 0) return rc;
      if (c.i < c.n) return bad(&c, "unexpected text after the end rule");
    } else {
      /* No rule: the US rules, as the C library assumes. */
      r.start = (apsched__tz_rule_date){APSCHED__RULE_MWD, 0, 3, 2, 0, 7200};
      r.end = (apsched__tz_rule_date){APSCHED__RULE_MWD, 0, 11, 1, 0, 7200};
    }
  }
  *out = r;
  return APSCHED_OK;
}

static int64_t rule_day(const apsched__tz_rule_date *d, int64_t year) {
  if (d->kind == APSCHED__RULE_JULIAN1)
    return apsched__days_from_civil(year, 1, 1) + d->day - 1 +
           (d->day >= 60 && apsched__is_leap(year));
  if (d->kind == APSCHED__RULE_ZERO) return apsched__days_from_civil(year, 1, 1) + d->day;
  int64_t first = apsched__days_from_civil(year, d->month, 1);
  int64_t day = first + (d->wday - apsched__weekday(first) + 7) % 7 + 7 * (d->week - 1);
  if (day >= first + apsched__days_in_month(year, d->month)) day -= 7; /* week 5 = last */
  return day;
}

int64_t apsched__posix_tz_start(const apsched__posix_tz *r, int64_t year) {
  return rule_day(&r->start, year) * APSCHED__SEC_PER_DAY + r->start.secs - r->std.utoff;
}

int64_t apsched__posix_tz_end(const apsched__posix_tz *r, int64_t year) {
  return rule_day(&r->end, year) * APSCHED__SEC_PER_DAY + r->end.secs - r->dst.utoff;
}

/* Each start or end lies within its calendar year +- 9 days (rule times up to
 * 167 hours, offsets up to 26 hours), which bounds the years searched below. */
static int64_t period_end(const apsched__posix_tz *r, int64_t start_year, int64_t s) {
  int64_t e = 0;
  for (int64_t y = start_year - 1; y <= start_year + 2; y++) {
    e = apsched__posix_tz_end(r, y);
    if (e >= s) break;
  }
  return e;
}

static int64_t year_of(int64_t t) {
  int64_t y;
  int m, d;
  apsched__civil_from_days(apsched__floor_div(t, APSCHED__SEC_PER_DAY), &y, &m, &d);
  return y;
}

bool apsched__posix_tz_is_dst(const apsched__posix_tz *r, int64_t t) {
  if (!r->has_dst) return false;
  int64_t y = year_of(t), s = 0, ys;
  for (ys = y + 1; ys >= y - 2; ys--) {
    s = apsched__posix_tz_start(r, ys);
    if (s <= t) break;
  }
  if (s > t) return false;
  return t < period_end(r, ys, s);
}

size_t apsched__posix_tz_changes(const apsched__posix_tz *r, int64_t y0, int64_t y1, int64_t *at,
                                 bool *to_dst) {
  size_t n = 0;
  bool have = false;
  int64_t a = 0, b = 0;
  if (!r->has_dst) return 0;
  for (int64_t y = y0; y <= y1; y++) {
    int64_t s = apsched__posix_tz_start(r, y), e = period_end(r, y, s);
    if (e <= s) continue; /* empty period */
    if (have && s <= b) {
      if (e > b) b = e;
      continue;
    }
    if (have) {
      at[n] = a, to_dst[n++] = true;
      at[n] = b, to_dst[n++] = false;
    }
    a = s, b = e, have = true;
  }
  if (have) {
    at[n] = a, to_dst[n++] = true;
    at[n] = b, to_dst[n++] = false;
  }
  return n;
}
