/* The interval trigger: fires at start_date + k * interval for k = 0, 1, ...
 * Counting from start_date (not from the previous run) means no drift, and
 * it is elapsed time: a DST change does not move the runs. */
#include "builtin.h"

#include <stdlib.h>
#include <string.h>

typedef struct interval_trigger {
  apsched_trigger base;
  int64_t interval;          /* microseconds, > 0 */
  apsched_time_t start_date; /* 0 until bound: "added + interval" */
  apsched_time_t end_date;   /* 0: none */
} interval_trigger;

static const apsched_trigger_vtable interval_vtable;

/* floor((to - from) / interval) for from <= to. The distance
 * is taken in unsigned arithmetic: it may exceed INT64_MAX (from near the
 * minimum, to near the maximum), which signed subtraction would overflow. */
static uint64_t steps_between(apsched_time_t from, apsched_time_t to, int64_t interval) {
  return ((uint64_t)to - (uint64_t)from) / (uint64_t)interval;
}

/* start + k * interval, or NONE past INT64_MAX. Unsigned too: the offset
 * may exceed INT64_MAX when start is negative. */
static apsched_time_t nth(const interval_trigger *it, apsched_time_t start, uint64_t k) {
  uint64_t off;
  if (__builtin_mul_overflow(k, (uint64_t)it->interval, &off) ||
      off > (uint64_t)INT64_MAX - (uint64_t)start)
    return APSCHED_TIME_NONE;
  /* At least start, which is not NONE: the sum is in range. */
  return (apsched_time_t)((uint64_t)start + off);
}

static apsched_time_t interval_next(const apsched_trigger *t, apsched_time_t prev,
                                    apsched_time_t now) {
  const interval_trigger *it = (const interval_trigger *)t;
  apsched_time_t start = it->start_date;
  if (start == 0) {
    /* Unbound (asked directly, not through a scheduler): as if created now. */
    if (__builtin_add_overflow(now, it->interval, &start)) return APSCHED_TIME_NONE;
  }
  apsched_time_t next;
  if (prev == APSCHED_TIME_NONE) {
    /* The first slot at or after now. */
    if (now <= start) {
      next = start;
    } else {
      /* now > start, so now - 1 >= start: the ceiling of (now - start) / interval. */
      next = nth(it, start, steps_between(start, now - 1, it->interval) + 1);
    }
  } else if (prev < start) {
    next = start;
  } else {
    /* The first slot strictly after prev, whatever prev is (skip-ahead). */
    next = nth(it, start, steps_between(start, prev, it->interval) + 1);
  }
  if (next == APSCHED_TIME_NONE || (it->end_date && next > it->end_date)) return APSCHED_TIME_NONE;
  return next;
}

static int interval_describe(const apsched_trigger *t, char *buf, size_t len) {
  const interval_trigger *it = (const interval_trigger *)t;
  static const struct {
    const char *name;
    int64_t unit;
  } units[] = {{"weeks", APSCHED_WEEK},     {"days", APSCHED_DAY},       {"hours", APSCHED_HOUR},
               {"minutes", APSCHED_MINUTE}, {"seconds", APSCHED_SEC},   {"microseconds", 1}};
  size_t pos = 0;
  apsched__append(buf, len, &pos, "interval[");
  int64_t rest = it->interval;
  const char *sep = "";
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (rest / units[i].unit == 0) continue;
    apsched__append(buf, len, &pos, "%s%s=%lld", sep, units[i].name,
                    (long long)(rest / units[i].unit));
    rest %= units[i].unit;
    sep = ", ";
  }
  if (it->start_date) apsched__append_time(buf, len, &pos, ", ", "start_date", it->start_date);
  if (it->end_date) apsched__append_time(buf, len, &pos, ", ", "end_date", it->end_date);
  if (it->base.jitter) apsched__append_jitter(buf, len, &pos, ", ", it->base.jitter);
  apsched__append(buf, len, &pos, "]");
  if (buf && len > 0 && pos >= len) buf[len - 1] = '\0';
  return (int)pos;
}

static int interval_new(int64_t interval, apsched_time_t start, apsched_time_t end,
                        int64_t jitter, apsched_trigger **out, char *errbuf, size_t errlen) {
  if (interval <= 0)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "interval: the interval must be longer than zero");
  if (jitter < 0)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "interval: jitter %lld is negative",
                         (long long)jitter);
  /* NONE is "no time" elsewhere; here it would pass for a date in the far
   * past that cannot be written as text. */
  if (start == APSCHED_TIME_NONE || end == APSCHED_TIME_NONE)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "interval: %s is APSCHED_TIME_NONE (use 0 for \"none\")",
                         start == APSCHED_TIME_NONE ? "start_date" : "end_date");
  if (end && start && end < start)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "interval: end_date is before start_date");
  interval_trigger *it = malloc(sizeof *it);
  if (!it) return apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "interval: out of memory");
  it->base.vtable = &interval_vtable;
  it->base.jitter = jitter;
  it->interval = interval;
  it->start_date = start;
  it->end_date = end;
  *out = &it->base;
  return APSCHED_OK;
}

static int interval_clone(const apsched_trigger *t, apsched_trigger **out) {
  /* The original was checked when it was made: a plain copy (every add
   * clones its trigger). */
  interval_trigger *copy = malloc(sizeof *copy);
  if (!copy) return APSCHED_ENOMEM;
  *copy = *(const interval_trigger *)t;
  *out = &copy->base;
  return APSCHED_OK;
}

static bool interval_equal(const apsched_trigger *a, const apsched_trigger *b) {
  const interval_trigger *x = (const interval_trigger *)a, *y = (const interval_trigger *)b;
  return x->interval == y->interval && x->start_date == y->start_date &&
         x->end_date == y->end_date;
}

static void interval_bind(apsched_trigger *t, apsched_time_t now) {
  interval_trigger *it = (interval_trigger *)t;
  apsched_time_t start;
  /* Past the end of time the trigger stays unbound, and next() finds nothing
   * (the builtin stores a wrapped sum even when it reports overflow). */
  if (it->start_date == 0 && !__builtin_add_overflow(now, it->interval, &start)) {
    /* A start of exactly 0 would read as "unbound"; one microsecond later is
     * indistinguishable in practice. */
    it->start_date = start ? start : 1;
  }
}

static void interval_destroy(apsched_trigger *t) { free(t); }

static const apsched_trigger_vtable interval_vtable = {
    .version = APSCHED_TRIGGER_VTABLE_VERSION,
    .kind = "interval",
    .next = interval_next,
    .describe = interval_describe,
    .clone = interval_clone,
    .equal = interval_equal,
    .bind = interval_bind,
    .destroy = interval_destroy,
};

size_t apsched__interval_flat_size(const apsched_trigger *t) {
  return t->vtable == &interval_vtable ? sizeof(interval_trigger) : 0;
}

/* Sums the unit fields, refusing negative parts and overflow. */
static int sum_interval(const apsched_interval_options *o, int64_t *out, char *errbuf,
                        size_t errlen) {
  const int64_t parts[] = {o->weeks, o->days, o->hours, o->minutes, o->seconds, o->microseconds};
  const int64_t units[] = {APSCHED_WEEK, APSCHED_DAY, APSCHED_HOUR, APSCHED_MINUTE, APSCHED_SEC, 1};
  static const char *names[] = {"weeks", "days", "hours", "minutes", "seconds", "microseconds"};
  int64_t total = 0;
  for (int i = 0; i < 6; i++) {
    int64_t v;
    if (parts[i] < 0)
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "interval: %s=%lld is negative",
                           names[i], (long long)parts[i]);
    if (__builtin_mul_overflow(parts[i], units[i], &v) || __builtin_add_overflow(total, v, &total))
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "interval: %s=%lld is too large",
                           names[i], (long long)parts[i]);
  }
  *out = total;
  return APSCHED_OK;
}

int apsched_trigger_interval(const apsched_interval_options *opt, apsched_trigger **out,
                             char *errbuf, size_t errlen) {
  if (!opt) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_interval: opt is NULL");
  if (!out) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_interval: out is NULL");
  int64_t total = 0;
  int rc = sum_interval(opt, &total, errbuf, errlen);
  if (rc != APSCHED_OK) return rc;
  return interval_new(total, opt->start_date, opt->end_date, opt->jitter, out, errbuf, errlen);
}

int apsched__interval_parse_params(const char *params, apsched_trigger **out, char *errbuf,
                                   size_t errlen) {
  apsched__param p[12];
  int n = apsched__split_trigger_text(params, NULL, 0, p, 12, errbuf, errlen);
  if (n < 0) return n;
  apsched_interval_options o = {0};
  int64_t *fields[] = {&o.weeks, &o.days, &o.hours, &o.minutes, &o.seconds, &o.microseconds};
  static const char *names[] = {"weeks", "days", "hours", "minutes", "seconds", "microseconds"};
  for (int i = 0; i < n; i++) {
    int rc = APSCHED_EINVAL;
    bool known = false;
    for (int f = 0; f < 6 && !known; f++) {
      if (strcmp(p[i].key, names[f]) != 0) continue;
      known = true;
      rc = apsched__param_int(&p[i], 0, INT64_MAX, fields[f], errbuf, errlen);
    }
    if (!known) {
      if (strcmp(p[i].key, "start_date") == 0) {
        rc = apsched__param_time(&p[i], &o.start_date, errbuf, errlen);
      } else if (strcmp(p[i].key, "end_date") == 0) {
        rc = apsched__param_time(&p[i], &o.end_date, errbuf, errlen);
      } else if (strcmp(p[i].key, "jitter") == 0) {
        rc = apsched__param_seconds(&p[i], &o.jitter, errbuf, errlen);
      } else {
        return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                             "interval: unknown parameter '%s' (allowed: weeks, days, hours, "
                             "minutes, seconds, microseconds, start_date, end_date, jitter)",
                             p[i].key);
      }
    }
    if (rc != APSCHED_OK) return rc;
  }
  return apsched_trigger_interval(&o, out, errbuf, errlen);
}
