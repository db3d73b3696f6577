/* Time as text: RFC 3339 / ISO 8601 / APScheduler date strings in and out,
 * durations formatted like Python's timedelta, and the wall clock. */
#include "tz_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

apsched_time_t apsched_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (apsched_time_t)ts.tv_sec * APSCHED_SEC + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------ parse */

typedef struct scan {
  const char *text; /* whole input, for messages */
  const char *p;
  const char *end;
  char *errbuf;
  size_t errlen;
} scan;

static int shown_len(const scan *s) {
  size_t n = (size_t)(s->end - s->text);
  return n > 64 ? 64 : (int)n;
}

static int expected(scan *s, const char *what) {
  if (s->p >= s->end)
    return apsched__fail(APSCHED_EINVAL, s->errbuf, s->errlen, "'%.*s': expected %s at the end",
                         shown_len(s), s->text, what);
  return apsched__fail(APSCHED_EINVAL, s->errbuf, s->errlen, "'%.*s': expected %s at '%.*s'",
                       shown_len(s), s->text, what, (int)(s->end - s->p > 16 ? 16 : s->end - s->p),
                       s->p);
}

static int out_of_range(scan *s, const char *field, int v, int lo, int hi) {
  return apsched__fail(APSCHED_EINVAL, s->errbuf, s->errlen, "'%.*s': %s %d is out of range %d..%d",
                       shown_len(s), s->text, field, v, lo, hi);
}

/* Reads min..max digits; returns how many were read. */
static int num(scan *s, int min, int max, int *v) {
  int n = 0, val = 0;
  while (n < max && s->p < s->end && *s->p >= '0' && *s->p <= '9') {
    val = val * 10 + (*s->p++ - '0');
    n++;
  }
  *v = val;
  return n >= min ? n : 0;
}

static bool take(scan *s, char ch) {
  if (s->p < s->end && *s->p == ch) {
    s->p++;
    return true;
  }
  return false;
}

static const char *const month_names[12] = {"January", "February", "March",     "April",
                                             "May",     "June",     "July",      "August",
                                             "September", "October", "November", "December"};

int apsched_time_parse(const char *text, const apsched_tz *tz, apsched_time_t *out, char *errbuf,
                       size_t errlen) {
  if (!text) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "time_parse: text is NULL");
  if (!out) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "time_parse: out is NULL");
  scan s = {text, text, text + strlen(text), errbuf, errlen};
  while (s.p < s.end && *s.p == ' ') s.p++;
  while (s.end > s.p && s.end[-1] == ' ') s.end--;
  if (s.p == s.end) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "empty time text");

  apsched_civil c = {0};
  int v, rc;
  if (num(&s, 4, 4, &c.year) != 4) return expected(&s, "a 4-digit year (like 2021-10-25)");
  if (!take(&s, '-')) return expected(&s, "'-' after the year");
  if (!num(&s, 1, 2, &c.month)) return expected(&s, "the month");
  if (!take(&s, '-')) return expected(&s, "'-' after the month");
  if (!num(&s, 1, 2, &c.day)) return expected(&s, "the day");
  if (c.month < 1 || c.month > 12) return out_of_range(&s, "month", c.month, 1, 12);
  int dim = apsched__days_in_month(c.year, c.month);
  if (c.day < 1 || c.day > dim)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "'%.*s': day %d is out of range 1..%d for %s %d", shown_len(&s), text,
                         c.day, dim, month_names[c.month - 1], c.year);

  bool has_offset = false;
  int32_t offset = 0;
  if (s.p < s.end) {
    if (!(take(&s, 'T') || take(&s, 't') || take(&s, ' ')))
      return expected(&s, "'T' or ' ' and a time after the date");
    if (!num(&s, 1, 2, &c.hour)) return expected(&s, "the hour");
    if (!take(&s, ':')) return expected(&s, "':' after the hour");
    if (!num(&s, 2, 2, &c.minute)) return expected(&s, "2-digit minutes");
    if (take(&s, ':')) {
      if (!num(&s, 2, 2, &c.second)) return expected(&s, "2-digit seconds");
      if (take(&s, '.') || take(&s, ',')) {
        int n = num(&s, 1, 6, &v);
        if (!n) return expected(&s, "digits after the decimal point");
        if (s.p < s.end && *s.p >= '0' && *s.p <= '9')
          return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                               "'%.*s': fractional seconds have more than 6 digits (microseconds "
                               "are the resolution)",
                               shown_len(&s), text);
        for (; n < 6; n++) v *= 10;
        c.microsecond = v;
      }
    }
    if (c.hour > 23) return out_of_range(&s, "hour", c.hour, 0, 23);
    if (c.minute > 59) return out_of_range(&s, "minute", c.minute, 0, 59);
    if (c.second > 59) return out_of_range(&s, "second", c.second, 0, 59);
    if (take(&s, 'Z') || take(&s, 'z')) {
      has_offset = true;
    } else if (s.p < s.end && (*s.p == '+' || *s.p == '-')) {
      int sign = *s.p++ == '-' ? -1 : 1, oh, om = 0, os = 0;
      if (!num(&s, 2, 2, &oh)) return expected(&s, "a 2-digit offset hour (like +02:00)");
      if (take(&s, ':')) {
        if (!num(&s, 2, 2, &om)) return expected(&s, "2-digit offset minutes");
        /* Seconds, as written for local mean time ("+00:53:28"). */
        if (take(&s, ':') && !num(&s, 2, 2, &os)) return expected(&s, "2-digit offset seconds");
      } else if (s.p < s.end) {
        if (!num(&s, 2, 2, &om)) return expected(&s, "2-digit offset minutes");
      }
      if (oh > 23) return out_of_range(&s, "offset hour", oh, 0, 23);
      if (om > 59) return out_of_range(&s, "offset minute", om, 0, 59);
      if (os > 59) return out_of_range(&s, "offset second", os, 0, 59);
      has_offset = true;
      offset = sign * (oh * 3600 + om * 60 + os);
    }
    if (s.p < s.end) return expected(&s, "the end of the time (or a 'Z' / +HH:MM offset)");
  }

  if (has_offset) {
    int64_t sec = apsched__days_from_civil(c.year, c.month, c.day) * APSCHED__SEC_PER_DAY +
                  c.hour * 3600 + c.minute * 60 + c.second - offset;
    *out = sec * APSCHED_SEC + c.microsecond;
    return APSCHED_OK;
  }
  /* Local time in tz: a skipped time becomes the end of the gap, a repeated
   * one its first occurrence. */
  apsched_local_result r;
  rc = apsched__tz_from_local(tz, &c, APSCHED_GAP_END, &r);
  if (rc != APSCHED_OK)
    return apsched__fail(rc, errbuf, errlen, "'%.*s': cannot convert to UTC in zone %s",
                         shown_len(&s), text, apsched_tz_name(tz));
  *out = r.utc;
  return APSCHED_OK;
}

/* ----------------------------------------------------------------- format */

static char *put2(char *p, int v) {
  p[0] = (char)('0' + v / 10);
  p[1] = (char)('0' + v % 10);
  return p + 2;
}

/* Digits are written by hand: this runs for every printed job and fire time.
 * Fractional seconds have trailing zeros trimmed (".25", ".000001") and are
 * left out when zero, so whole-second times print as plain RFC 3339. */
int apsched_time_format(apsched_time_t t, const apsched_tz *tz, char *buf, size_t len) {
  apsched_civil c;
  char tmp[64], *p = tmp;
  if (buf && len) buf[0] = '\0';
  if (!tz) tz = apsched_tz_utc();
  /* Every other instant has a text (years beyond 9999 in ISO 8601's
   * expanded form). */
  if (t == APSCHED_TIME_NONE)
    return apsched__error(APSCHED_EINVAL, "time_format: t is APSCHED_TIME_NONE, not a time");
  int rc = apsched__tz_to_local(tz, t, &c);
  if (rc != APSCHED_OK) return apsched__error(rc, "time_format: %lld has no local time in %s",
                                              (long long)t, apsched_tz_name(tz));
  if (c.year >= 0 && c.year <= 9999) {
    p = put2(put2(p, c.year / 100), c.year % 100);
  } else {
    p += snprintf(p, 16, "%+05d", c.year); /* ISO 8601 expanded year */
  }
  *p++ = '-';
  p = put2(p, c.month);
  *p++ = '-';
  p = put2(p, c.day);
  *p++ = 'T';
  p = put2(p, c.hour);
  *p++ = ':';
  p = put2(p, c.minute);
  *p++ = ':';
  p = put2(p, c.second);
  if (c.microsecond) {
    int us = c.microsecond, digits = 6;
    while (us % 10 == 0) us /= 10, digits--;
    *p++ = '.';
    for (int i = digits - 1; i >= 0; i--, us /= 10) p[i] = (char)('0' + us % 10);
    p += digits;
  }
  if (tz == apsched_tz_utc()) {
    *p++ = 'Z';
  } else {
    int a = c.utc_offset < 0 ? -c.utc_offset : c.utc_offset;
    *p++ = c.utc_offset < 0 ? '-' : '+';
    p = put2(p, a / 3600);
    *p++ = ':';
    p = put2(p, a / 60 % 60);
    if (a % 60) { /* local mean time, written as Python does */
      *p++ = ':';
      p = put2(p, a % 60);
    }
  }
  size_t n = (size_t)(p - tmp);
  if (buf && len) {
    size_t k = n < len ? n : len - 1;
    memcpy(buf, tmp, k);
    buf[k] = '\0';
  }
  return (int)n;
}

/* --------------------------------------------------------------- duration */

void apsched__format_duration(int64_t usec, char *buf, size_t len) {
  /* Python's timedelta: days carry the sign, the rest is 0 <= x < 1 day. */
  int64_t day = APSCHED_DAY, q = usec / day, r = usec % day;
  if (r < 0) {
    r += day;
    q -= 1;
  }
  size_t pos = 0;
  if (buf && len) buf[0] = '\0';
  if (q != 0)
    apsched__append(buf, len, &pos, "%lld day%s, ", (long long)q, (q == 1 || q == -1) ? "" : "s");
  int64_t secs = r / APSCHED_SEC;
  int us = (int)(r % APSCHED_SEC);
  apsched__append(buf, len, &pos, "%d:%02d:%02d", (int)(secs / 3600), (int)(secs / 60 % 60),
                  (int)(secs % 60));
  if (us) apsched__append(buf, len, &pos, ".%06d", us);
}
