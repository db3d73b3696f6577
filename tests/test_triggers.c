/* Date and interval triggers: APScheduler's own test vectors (transcribed
 * from /work/shared/vectors), our pure next() contract, canonical text round
 * trips, parse errors, and custom trigger kinds. */
#include "support.h"

#include "apsched_plugin.h"

static apsched_time_t at(const char *text, const char *zone) {
  apsched_tz *tz = NULL;
  if (zone) assert_int_equal(apsched_tz_get(zone, &tz, NULL, 0), APSCHED_OK);
  apsched_time_t t;
  char err[200] = "";
  int rc = apsched_time_parse(text, tz, &t, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("parse '%s': %s", text, err);
  apsched_tz_free(tz);
  return t;
}

static apsched_trigger *interval(int64_t usec, apsched_time_t start, apsched_time_t end) {
  apsched_interval_options o = {.microseconds = usec, .start_date = start, .end_date = end};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_interval(&o, &t, NULL, 0), APSCHED_OK);
  return t;
}

/* 3.x:tests/triggers/test_interval.py */
static void test_interval_vectors(void **state) {
  (void)state;
  const char *berlin = "Europe/Berlin";
  apsched_time_t start = at("2009-08-04 00:00:02", berlin);
  apsched_trigger *t = interval(APSCHED_SEC, start, 0);
  /* test_before, test_within, test_different_tz */
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2009-08-04T00:00:00+02:00", NULL)), at("2009-08-04T00:00:02+02:00", NULL));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2009-08-04T00:00:02.001000+02:00", NULL)), at("2009-08-04T00:00:03+02:00", NULL));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2009-08-03T22:00:02.001000-01:00", NULL)), at("2009-08-04T01:00:03+02:00", NULL));
  apsched_trigger_free(t);
  /* test_end_date[within], [past_end] */
  t = interval(5 * APSCHED_MINUTE, at("2014-05-26 00:00:00", berlin), at("2014-05-26 00:07:00", berlin));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2014-05-26T00:02:00+02:00", NULL)), at("2014-05-26T00:05:00+02:00", NULL));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2014-05-26T00:06:00+02:00", NULL)), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  /* test_dst_change[spring], [autumn]: elapsed time, not wall-clock time */
  t = interval(APSCHED_HOUR, at("2013-03-01 00:00:00", "US/Eastern"), 0);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2013-03-10T01:05:00-05:00", NULL)), at("2013-03-10T03:00:00-04:00", NULL));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2013-11-03T01:05:00-04:00", NULL)), at("2013-11-03T01:00:00-05:00", NULL));
  apsched_trigger_free(t);
  /* test_jitter_dst_change: next() is exact; the scheduler adds the jitter,
   * so the exact time must lie in the vector's +-5 s window. */
  apsched_interval_options jo = {.hours = 1, .jitter = 5 * APSCHED_SEC,
                                 .start_date = at("2013-03-10T01:35:00-05:00", NULL)};
  assert_int_equal(apsched_trigger_interval(&jo, &t, NULL, 0), APSCHED_OK);
  apsched_time_t n = apsched_trigger_next(t, APSCHED_TIME_NONE, at("2013-03-10T01:35:01-05:00", NULL));
  assert_true(n >= at("2013-03-10T03:34:55-04:00", NULL) && n <= at("2013-03-10T03:35:05-04:00", NULL));
  apsched_trigger_free(t);
  /* 4.x test_end_time: first fire at start itself, then every 1 h 6 s until end */
  apsched_interval_options eo = {.hours = 1, .seconds = 6,
                                 .start_date = at("2020-05-16T19:32:44.649521+02:00", NULL),
                                 .end_date = at("2020-05-16T22:33:01+02:00", NULL)};
  assert_int_equal(apsched_trigger_interval(&eo, &t, NULL, 0), APSCHED_OK);
  apsched_time_t seq = apsched_trigger_next(t, APSCHED_TIME_NONE, eo.start_date);
  assert_int_equal(seq, at("2020-05-16T19:32:44.649521+02:00", NULL));
  seq = apsched_trigger_next(t, seq, seq);
  assert_int_equal(seq, at("2020-05-16T20:32:50.649521+02:00", NULL));
  seq = apsched_trigger_next(t, seq, seq);
  assert_int_equal(seq, at("2020-05-16T21:32:56.649521+02:00", NULL));
  assert_int_equal(apsched_trigger_next(t, seq, seq), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
}

static void test_interval_errors(void **state) {
  (void)state;
  apsched_trigger *t = NULL;
  char err[200];
  /* 4.x test_bad_interval */
  apsched_interval_options zero = {0};
  assert_int_equal(apsched_trigger_interval(&zero, &t, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "interval: the interval must be longer than zero");
  /* 4.x test_bad_end_time */
  apsched_interval_options bad_end = {.seconds = 1, .start_date = at("2020-05-16T00:00:00+02:00", NULL),
                                      .end_date = at("2020-05-15T00:00:00+02:00", NULL)};
  assert_int_equal(apsched_trigger_interval(&bad_end, &t, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "interval: end_date is before start_date");
  apsched_interval_options neg = {.hours = -1};
  assert_int_equal(apsched_trigger_interval(&neg, &t, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "interval: hours=-1 is negative");
  apsched_interval_options huge = {.weeks = INT64_MAX / 2};
  assert_int_equal(apsched_trigger_interval(&huge, &t, err, sizeof err), APSCHED_EINVAL);
  assert_null(t);
}

/* The next() contract the scheduler relies on: strictly after prev, any prev. */
static void test_interval_skip_ahead(void **state) {
  (void)state;
  apsched_trigger *t = interval(7 * APSCHED_SEC, T0, 0);
  assert_int_equal(apsched_trigger_next(t, T0 - 1, 0), T0);
  assert_int_equal(apsched_trigger_next(t, T0, 0), T0 + 7 * APSCHED_SEC);
  assert_int_equal(apsched_trigger_next(t, T0 + 6 * APSCHED_SEC, 0), T0 + 7 * APSCHED_SEC);
  int64_t far = 3650LL * APSCHED_DAY + 3;
  apsched_time_t n = apsched_trigger_next(t, T0 + far, 0);
  assert_true(n > T0 + far && n <= T0 + far + 7 * APSCHED_SEC && (n - T0) % (7 * APSCHED_SEC) == 0);
  /* Far beyond the representable range: finished, not wrapped around. */
  assert_int_equal(apsched_trigger_next(t, INT64_MAX - 3, 0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
}

/* 3.x:tests/triggers/test_date.py */
static void test_date_vectors(void **state) {
  (void)state;
  apsched_date_options o = {.run_date = at("2009-07-06 00:00:00", "Europe/Berlin")};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_date(&o, &t), APSCHED_OK);
  apsched_time_t expected = at("2009-07-06T00:00:00+02:00", NULL);
  /* earlier, exact, later (a past run date is still returned: the scheduler reports it missed) */
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2008-05-04T00:00:00+02:00", NULL)), expected);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2009-07-06T00:00:00+02:00", NULL)), expected);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2009-09-02T00:00:00+02:00", NULL)), expected);
  /* previously fired */
  assert_int_equal(apsched_trigger_next(t, expected, at("2009-09-02T00:00:00+02:00", NULL)), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  /* as text: "2009-7-6" in the zone */
  assert_int_equal(at("2009-7-6", "Europe/Berlin"), expected);
  /* alternate timezone: APScheduler returns None for any previous fire time.
   * Deliberate difference: our next() is "the first fire time strictly after
   * prev" (a pure function the scheduler can call with any prev), so a prev
   * before the run date still yields the run date; the scheduler only ever
   * passes the actual previous fire time, so the job still runs once. */
  o.run_date = at("2009-07-05 22:00:00", "UTC-01:00");
  assert_int_equal(apsched_trigger_date(&o, &t), APSCHED_OK);
  apsched_time_t prev = at("2009-07-06T00:00:00+02:00", NULL);
  assert_int_equal(apsched_trigger_next(t, prev, prev), o.run_date);
  assert_int_equal(apsched_trigger_next(t, o.run_date, prev), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  /* current_time: no run date means "now" (bound when the job is added) */
  assert_int_equal(apsched_trigger_date(NULL, &t), APSCHED_OK);
  apsched_time_t frozen = at("2011-04-03T18:40:00+02:00", NULL);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, frozen), frozen);
  apsched_trigger_free(t);
  /* dst_change: 2013-10-03 02:00 EDT is not on a transition day */
  assert_int_equal(at("2013-10-03 02:00:00", "US/Eastern"), at("2013-10-03T02:00:00-04:00", NULL));
}

static void roundtrip(const apsched_trigger *t, const char *expected_text) {
  char text[512];
  int n = apsched_trigger_describe(t, text, sizeof text);
  assert_true(n > 0 && (size_t)n < sizeof text);
  assert_int_equal(apsched_trigger_describe(t, NULL, 0), n); /* sizing call agrees */
  if (expected_text) assert_string_equal(text, expected_text);
  apsched_trigger *back;
  char err[200] = "";
  if (apsched_trigger_parse(text, &back, err, sizeof err) != APSCHED_OK) fail_msg("%s: %s", text, err);
  assert_true(apsched_trigger_equal(t, back));
  char again[512];
  apsched_trigger_describe(back, again, sizeof again);
  assert_string_equal(text, again);
  apsched_trigger_free(back);
}

static void test_canonical_text(void **state) {
  (void)state;
  apsched_trigger *t = interval(90 * APSCHED_SEC + 5, T0, T0 + APSCHED_DAY);
  roundtrip(t, "interval[minutes=1, seconds=30, microseconds=5, start_date='2026-01-01T00:00:00Z', end_date='2026-01-02T00:00:00Z']");
  apsched_trigger_free(t);
  apsched_interval_options jo = {.weeks = 2, .days = 1, .jitter = 2500 * APSCHED_MSEC};
  assert_int_equal(apsched_trigger_interval(&jo, &t, NULL, 0), APSCHED_OK);
  roundtrip(t, "interval[weeks=2, days=1, jitter=2.5]");
  apsched_trigger_free(t);
  apsched_date_options d = {.run_date = T0 + 250 * APSCHED_MSEC};
  assert_int_equal(apsched_trigger_date(&d, &t), APSCHED_OK);
  roundtrip(t, "date[run_date='2026-01-01T00:00:00.25Z']");
  apsched_trigger_free(t);
  assert_int_equal(apsched_trigger_date(NULL, &t), APSCHED_OK);
  roundtrip(t, "date[]");
  apsched_trigger_free(t);
  /* Equality is about the schedule. */
  apsched_trigger *a = interval(APSCHED_SEC, T0, 0), *b = interval(APSCHED_SEC, T0 + 1, 0);
  assert_false(apsched_trigger_equal(a, b));
  assert_string_equal(apsched_trigger_kind(a), "interval");
  apsched_trigger *c;
  assert_int_equal(apsched_trigger_clone(a, &c), APSCHED_OK);
  assert_true(apsched_trigger_equal(a, c));
  apsched_trigger_free(a);
  apsched_trigger_free(b);
  apsched_trigger_free(c);
}

static void test_parse_errors(void **state) {
  (void)state;
  apsched_trigger *t = NULL;
  char err[256];
  struct {
    const char *text, *message;
  } cases[] = {
      {"interval", "'interval': a trigger is written as kind[param=value, ...]"},
      {"nope[seconds=1]", "'nope[seconds=1]': unknown trigger kind 'nope'"},
      {"interval[seconds=x]", "seconds: 'x' is not a whole number in 0..9223372036854775807"},
      {"interval[hours=1, hours=2]", "'hours=1, hours=2': parameter 'hours' given twice"},
      {"interval[color=red]", "interval: unknown parameter 'color' (allowed: weeks, days, hours, minutes, seconds, microseconds, start_date, end_date, jitter)"},
      {"interval[seconds=1, jitter=1.1234567]", "jitter: '1.1234567' is not a number of seconds (up to 6 decimals)"},
      {"interval[seconds=1, start_date='yesterday']", NULL},
      {"interval[seconds='1]", "'seconds='1': unterminated quote"},
      {"date[when=now]", "date: unknown parameter 'when' (allowed: run_date)"},
      {"interval[]", "interval: the interval must be longer than zero"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    err[0] = '\0';
    assert_int_equal(apsched_trigger_parse(cases[i].text, &t, err, sizeof err), APSCHED_EINVAL);
    assert_null(t);
    if (cases[i].message) assert_string_equal(err, cases[i].message);
    else assert_non_null(strstr(err, "start_date: "));
  }
}

/* A custom kind: fires every N-th second of the minute ("nth[n=15]"). */
typedef struct nth_trigger {
  apsched_trigger base;
  int n;
} nth_trigger;
static const apsched_trigger_vtable nth_vtable;
static int nth_make(int n, apsched_trigger **out) {
  nth_trigger *t = calloc(1, sizeof *t);
  t->base.vtable = &nth_vtable;
  t->n = n;
  *out = &t->base;
  return APSCHED_OK;
}
static apsched_time_t nth_next(const apsched_trigger *t, apsched_time_t prev, apsched_time_t now) {
  int64_t step = ((const nth_trigger *)t)->n * APSCHED_SEC;
  apsched_time_t from = prev == APSCHED_TIME_NONE ? now - 1 : prev;
  return (from / step + 1) * step;
}
static int nth_describe(const apsched_trigger *t, char *buf, size_t len) {
  return snprintf(buf, len, "nth[n=%d]", ((const nth_trigger *)t)->n);
}
static int nth_clone(const apsched_trigger *t, apsched_trigger **out) {
  return nth_make(((const nth_trigger *)t)->n, out);
}
static bool nth_equal(const apsched_trigger *a, const apsched_trigger *b) {
  return ((const nth_trigger *)a)->n == ((const nth_trigger *)b)->n;
}
static void nth_destroy(apsched_trigger *t) { free(t); }
static const apsched_trigger_vtable nth_vtable = {
    .version = APSCHED_TRIGGER_VTABLE_VERSION, .kind = "nth", .next = nth_next,
    .describe = nth_describe, .clone = nth_clone, .equal = nth_equal, .destroy = nth_destroy};
static int nth_parse(const char *params, apsched_trigger **out, char *err, size_t errlen) {
  int n;
  if (sscanf(params, "n=%d", &n) != 1 || n <= 0) {
    snprintf(err, errlen, "nth: bad '%s'", params);
    return APSCHED_EINVAL;
  }
  return nth_make(n, out);
}

static void test_custom_kind(void **state) {
  (void)state;
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_parse("nth[n=15]", &t, NULL, 0), APSCHED_EINVAL);
  assert_int_equal(apsched_register_trigger_kind("nth", nth_parse), APSCHED_OK);
  assert_int_equal(apsched_register_trigger_kind("nth", nth_parse), APSCHED_EEXIST);
  assert_int_equal(apsched_register_trigger_kind("interval", nth_parse), APSCHED_EEXIST);
  assert_int_equal(apsched_register_trigger_kind("Bad Kind", nth_parse), APSCHED_EINVAL);
  assert_int_equal(apsched_trigger_parse("nth[n=15]", &t, NULL, 0), APSCHED_OK);
  roundtrip(t, "nth[n=15]");
  /* The scheduler runs it like any built-in trigger. */
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  counter c = {0};
  apsched_job_options o = {.id = "n", .func = count_job, .arg = &c, .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  for (int i = 0; i < 4; i++) {
    fake_advance(&fc, 15 * APSCHED_SEC);
    process(s);
  }
  assert_int_equal(atomic_load(&c.runs), 4);
  assert_int_equal(atomic_load(&c.last_time), T0 + 60 * APSCHED_SEC);
  /* A vtable of an unknown version is refused. */
  static const apsched_trigger_vtable future = {.version = 99, .kind = "nth", .next = nth_next,
      .describe = nth_describe, .clone = nth_clone, .equal = nth_equal, .destroy = nth_destroy};
  nth_trigger bad = {.base = {.vtable = &future}, .n = 1};
  apsched_job_options ob = {.id = "bad", .func = count_job, .trigger = &bad.base};
  assert_int_equal(apsched_add_job(s, &ob, NULL, 0), APSCHED_EINVAL);
  apsched_free(s);
  apsched_trigger_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interval_vectors),
      cmocka_unit_test(test_interval_errors),
      cmocka_unit_test(test_interval_skip_ahead),
      cmocka_unit_test(test_date_vectors),
      cmocka_unit_test(test_canonical_text),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_custom_kind),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
