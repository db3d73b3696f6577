/* The and/or combinations: APScheduler's own "and"/"or" test vectors
 * (transcribed from /work/shared/vectors), bounded searches that never agree,
 * jitter, bind, equality, canonical text round trips and parse errors. */
#include "support.h"

#include <time.h>

#include "apsched_plugin.h"

static apsched_time_t at(const char *text) {
  apsched_time_t t;
  char err[200] = "";
  if (apsched_time_parse(text, NULL, &t, err, sizeof err) != APSCHED_OK)
    fail_msg("parse '%s': %s", text, err);
  return t;
}

static void expect_at(apsched_time_t got, const char *expected) {
  char text[64] = "NONE";
  if (got != APSCHED_TIME_NONE) apsched_time_format(got, NULL, text, sizeof text);
  if (!expected) {
    if (got != APSCHED_TIME_NONE) fail_msg("expected no fire time, got %s", text);
    return;
  }
  if (got != at(expected)) fail_msg("expected %s, got %s", expected, text);
}

static apsched_trigger *parse(const char *text) {
  apsched_trigger *t = NULL;
  char err[600] = "";
  if (apsched_trigger_parse(text, &t, err, sizeof err) != APSCHED_OK)
    fail_msg("parse '%s': %s", text, err);
  return t;
}

/* The 4.x API is stateful (the first next() starts at the start time,
 * inclusive); ours is next(prev, now): next(NONE, from), then next(prev, prev). */
static void expect_sequence(const apsched_trigger *t, const char *from,
                            const char *const *expected, size_t count) {
  apsched_time_t prev = APSCHED_TIME_NONE, now = at(from);
  for (size_t i = 0; i < count; i++) {
    prev = apsched_trigger_next(t, prev, now);
    expect_at(prev, expected[i]);
    if (prev == APSCHED_TIME_NONE) return;
    now = prev;
  }
}

/* The two cron triggers of 3.x:tests/triggers/test_combining.py */
#define CRON_A                                                                               \
  "cron[month='5-8', day='6-15', end_date='2017-08-10T00:00:00+02:00', timezone='Europe/Berlin']"
#define CRON_B                                                                               \
  "cron[month='6-9', day='*/3', end_date='2017-09-07T00:00:00+02:00', timezone='Europe/Berlin']"

static void test_vectors_3x(void **state) {
  (void)state;
  apsched_trigger *and = parse("and[" CRON_A ", " CRON_B "]");
  apsched_trigger *or = parse("or[" CRON_A ", " CRON_B "]");
  /* TestAndTrigger::test_next_fire_time[firstmatch], [end] */
  expect_at(apsched_trigger_next(and, APSCHED_TIME_NONE, at("2017-08-06T00:00:00+02:00")),
            "2017-08-07T00:00:00+02:00");
  expect_at(apsched_trigger_next(and, APSCHED_TIME_NONE, at("2017-08-10T01:00:00+02:00")), NULL);
  /* TestOrTrigger::test_next_fire_time[earliest], [end] */
  expect_at(apsched_trigger_next(or, APSCHED_TIME_NONE, at("2017-08-06T00:00:00+02:00")),
            "2017-08-06T00:00:00+02:00");
  expect_at(apsched_trigger_next(or, APSCHED_TIME_NONE, at("2017-09-07T01:00:00+02:00")), NULL);
  apsched_trigger_free(and);
  apsched_trigger_free(or);

  /* test_jitter (both): APScheduler adds the jitter inside the trigger and
   * checks a +-5 s window. Ours returns the exact time (the scheduler adds a
   * random [0, jitter]), which must lie in the window, and carries jitter=5. */
  and = parse("and[" CRON_A ", " CRON_B ", jitter=5]");
  or = parse("or[" CRON_A ", " CRON_B ", jitter=5]");
  assert_int_equal(and->jitter, 5 * APSCHED_SEC);
  assert_int_equal(or->jitter, 5 * APSCHED_SEC);
  apsched_time_t n = apsched_trigger_next(and, APSCHED_TIME_NONE, at("2017-08-06T00:00:00+02:00"));
  assert_true(n >= at("2017-08-06T23:59:55+02:00") && n <= at("2017-08-07T00:00:05+02:00"));
  n = apsched_trigger_next(or, APSCHED_TIME_NONE, at("2017-08-06T00:00:00+02:00"));
  assert_true(n >= at("2017-08-05T23:59:55+02:00") && n <= at("2017-08-06T00:00:05+02:00"));
  apsched_trigger_free(and);
  apsched_trigger_free(or);
}

#define DATE_1 "date[run_date='2020-05-16T14:17:30.254212+02:00']"
#define DATE_2 "date[run_date='2020-05-16T14:17:31.254212+02:00']"

static void test_vectors_4x(void **state) {
  (void)state;
  /* TestAndTrigger::test_two_datetriggers[1] and [0]: 4.x takes fire times
   * within `threshold` seconds as agreeing ([1] fires once). We follow
   * APScheduler 3: only equal times agree, so both give no fire time. */
  apsched_trigger *t = parse("and[" DATE_1 ", " DATE_2 "]");
  expect_sequence(t, "2020-05-16T14:00:00+02:00", (const char *const[]){NULL}, 1);
  apsched_trigger_free(t);

  /* test_max_iterations: never within 1 s; 4.x raises MaxIterationsReached
   * after 10,000 rounds, we report "no next time" after as many. */
  t = parse("and[interval[seconds=4, start_date='2020-05-16T14:17:30.254212+02:00'], "
            "interval[seconds=4, start_date='2020-05-16T14:17:32.254212+02:00']]");
  expect_at(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2020-05-16T14:00:00+02:00")), NULL);
  apsched_trigger_free(t);

  /* test_overlapping_triggers[0..4] */
  t = parse("and[interval[hours=6, start_date='2024-05-01T00:00:00Z'], "
            "interval[hours=12, start_date='2024-05-01T00:00:00Z']]");
  expect_sequence(t, "2024-05-01T00:00:00Z",
                  (const char *const[]){"2024-05-01T00:00:00Z", "2024-05-01T12:00:00Z",
                                        "2024-05-02T00:00:00Z"},
                  3);
  apsched_trigger_free(t);
  t = parse("and[interval[days=1, start_date='2024-05-01T00:00:00Z'], "
            "interval[weeks=1, start_date='2024-05-01T00:00:00Z']]");
  expect_sequence(t, "2024-05-01T00:00:00Z",
                  (const char *const[]){"2024-05-01T00:00:00Z", "2024-05-08T00:00:00Z",
                                        "2024-05-15T00:00:00Z"},
                  3);
  apsched_trigger_free(t);
  t = parse("and[cron[day_of_week='mon-fri', hour='*', timezone='UTC', "
            "start_date='2024-05-03T00:00:00Z'], "
            "interval[hours=12, start_date='2024-05-03T00:00:00Z']]");
  expect_sequence(t, "2024-05-03T00:00:00Z",
                  (const char *const[]){"2024-05-03T00:00:00Z", "2024-05-03T12:00:00Z",
                                        "2024-05-06T00:00:00Z"},
                  3);
  apsched_trigger_free(t);
  t = parse("and[cron[day_of_week='mon-fri', timezone='UTC', start_date='2024-05-13T00:00:00Z'], "
            "interval[days=4, start_date='2024-05-13T00:00:00Z']]");
  expect_sequence(t, "2024-05-13T00:00:00Z",
                  (const char *const[]){"2024-05-13T00:00:00Z", "2024-05-17T00:00:00Z",
                                        "2024-05-21T00:00:00Z", "2024-05-29T00:00:00Z"},
                  4);
  apsched_trigger_free(t);
  t = parse("and[calendar[months=1, start_date='2024-01-01', timezone='UTC'], "
            "cron[day_of_week='mon-fri', timezone='UTC', start_date='2024-01-01T00:00:00Z']]");
  expect_sequence(t, "2024-01-01T00:00:00Z",
                  (const char *const[]){"2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z",
                                        "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z",
                                        "2024-05-01T00:00:00Z", "2024-07-01T00:00:00Z",
                                        "2024-08-01T00:00:00Z", "2024-10-01T00:00:00Z",
                                        "2024-11-01T00:00:00Z"},
                  9);
  apsched_trigger_free(t);

  /* TestOrTrigger::test_two_datetriggers */
  t = parse("or[" DATE_1 ", date[run_date='2020-05-18T15:01:53.940564+02:00']]");
  expect_sequence(t, "2020-05-16T14:00:00+02:00",
                  (const char *const[]){"2020-05-16T14:17:30.254212+02:00",
                                        "2020-05-18T15:01:53.940564+02:00", NULL},
                  3);
  apsched_trigger_free(t);
  /* TestOrTrigger::test_two_interval_triggers: a time both share fires once */
  t = parse("or[interval[seconds=4, start_date='2020-05-16T14:17:30.254212+02:00', "
            "end_date='2020-05-16T14:17:46.254212+02:00'], "
            "interval[seconds=6, start_date='2020-05-16T14:17:30.254212+02:00', "
            "end_date='2020-05-16T14:17:48.254212+02:00']]");
  expect_sequence(t, "2020-05-16T14:17:30.254212+02:00",
                  (const char *const[]){"2020-05-16T14:17:30.254212+02:00",
                                        "2020-05-16T14:17:34.254212+02:00",
                                        "2020-05-16T14:17:36.254212+02:00",
                                        "2020-05-16T14:17:38.254212+02:00",
                                        "2020-05-16T14:17:42.254212+02:00",
                                        "2020-05-16T14:17:46.254212+02:00",
                                        "2020-05-16T14:17:48.254212+02:00", NULL},
                  8);
  apsched_trigger_free(t);
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static apsched_trigger *interval_from(int64_t usec, apsched_time_t start) {
  apsched_interval_options o = {.microseconds = usec, .start_date = start};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_interval(&o, &t, NULL, 0), APSCHED_OK);
  return t;
}

static apsched_trigger *date_at(apsched_time_t when) {
  apsched_date_options o = {.run_date = when};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_date(&o, &t), APSCHED_OK);
  return t;
}

static apsched_trigger *combine(bool and, apsched_trigger *a, apsched_trigger *b) {
  const apsched_trigger *both[2] = {a, b};
  apsched_trigger *t = NULL;
  char err[200] = "";
  int rc = and ? apsched_trigger_and(both, 2, &t, err, sizeof err)
               : apsched_trigger_or(both, 2, &t, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("combine: %s", err);
  /* The combination holds copies. */
  apsched_trigger_free(a);
  apsched_trigger_free(b);
  return t;
}

static void test_and_bounded(void **state) {
  (void)state;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  /* Two dates at different times never agree: the earlier one finishes. */
  apsched_trigger *t = combine(true, date_at(T0), date_at(T0 + APSCHED_SEC));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  /* The same date agrees, once. */
  t = combine(true, date_at(T0), date_at(T0));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0 - APSCHED_DAY), T0);
  assert_int_equal(apsched_trigger_next(t, T0, T0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  /* Every 2 h on the hour and every 3 h at half past never meet, and
   * neither ever finishes: the bounded search gives up. */
  t = combine(true, interval_from(2 * APSCHED_HOUR, T0),
              interval_from(3 * APSCHED_HOUR, T0 + 30 * APSCHED_MINUTE));
  for (int i = 0; i < 20; i++)
    assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0 + i * APSCHED_HOUR),
                     APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  /* Two cron triggers that never meet (odd vs even minutes) also give up. */
  t = parse("and[cron[minute='1-59/2', timezone='UTC'], cron[minute='*/2', timezone='UTC']]");
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  /* 20 hopeless interval searches and a cron one are quick (generous bound
   * for sanitizer builds; an unbounded search would never return). */
  assert_true(seconds_since(&t0) < 10.0);

  /* 2 h and 3 h from the same start meet every 6 h, also after a long skip. */
  t = combine(true, interval_from(2 * APSCHED_HOUR, T0), interval_from(3 * APSCHED_HOUR, T0));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), T0);
  assert_int_equal(apsched_trigger_next(t, T0, T0), T0 + 6 * APSCHED_HOUR);
  assert_int_equal(apsched_trigger_next(t, T0 + 7 * APSCHED_HOUR, T0), T0 + 12 * APSCHED_HOUR);
  apsched_time_t far = T0 + 3650 * APSCHED_DAY + 1;
  assert_int_equal(apsched_trigger_next(t, far, T0), T0 + 3650 * APSCHED_DAY + 6 * APSCHED_HOUR);
  apsched_trigger_free(t);
  /* A child that has finished ends the search at once. */
  t = combine(true, date_at(T0), interval_from(APSCHED_HOUR, T0 + APSCHED_HOUR));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  /* A date that coincides with an interval slot: once. */
  t = combine(true, interval_from(APSCHED_HOUR, T0), date_at(T0 + 5 * APSCHED_HOUR));
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), T0 + 5 * APSCHED_HOUR);
  assert_int_equal(apsched_trigger_next(t, T0 + 5 * APSCHED_HOUR, T0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
}

static void test_or(void **state) {
  (void)state;
  /* OR of dates: each fires once, in order, then the combination is finished. */
  const apsched_trigger *dates[3];
  apsched_trigger *owned[3] = {date_at(T0 + 2 * APSCHED_HOUR), date_at(T0),
                               date_at(T0 + APSCHED_HOUR)};
  for (int i = 0; i < 3; i++) dates[i] = owned[i];
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_or(dates, 3, &t, NULL, 0), APSCHED_OK);
  for (int i = 0; i < 3; i++) apsched_trigger_free(owned[i]);
  apsched_time_t prev = APSCHED_TIME_NONE;
  for (int i = 0; i < 3; i++) {
    prev = apsched_trigger_next(t, prev, T0 - APSCHED_DAY);
    assert_int_equal(prev, T0 + i * APSCHED_HOUR);
  }
  assert_int_equal(apsched_trigger_next(t, prev, prev), APSCHED_TIME_NONE);
  /* Skipping ahead: strictly after any prev. */
  assert_int_equal(apsched_trigger_next(t, T0 + 1, 0), T0 + APSCHED_HOUR);
  apsched_trigger_free(t);

  /* OR of an interval with a calendar: the union, a shared time once. */
  apsched_calendar_options co = {.days = 1, .hour = 12, .start_date = T0, .timezone = "UTC"};
  apsched_trigger *cal;
  assert_int_equal(apsched_trigger_calendar(&co, &cal, NULL, 0), APSCHED_OK);
  t = combine(false, interval_from(8 * APSCHED_HOUR, T0), cal);
  static const int64_t hours[] = {0, 8, 12, 16, 24, 32, 36};
  prev = APSCHED_TIME_NONE;
  for (size_t i = 0; i < sizeof hours / sizeof hours[0]; i++) {
    prev = apsched_trigger_next(t, prev, T0);
    assert_int_equal(prev, T0 + hours[i] * APSCHED_HOUR);
  }
  apsched_trigger_free(t);
}

static void test_jitter_bind_equal(void **state) {
  (void)state;
  /* The children's jitter is ignored: the combination's is 0 unless given. */
  apsched_interval_options io = {.hours = 1, .start_date = T0, .jitter = 30 * APSCHED_SEC};
  apsched_trigger *jittery;
  assert_int_equal(apsched_trigger_interval(&io, &jittery, NULL, 0), APSCHED_OK);
  apsched_trigger *t = combine(false, jittery, date_at(T0 + 90 * APSCHED_MINUTE));
  assert_int_equal(t->jitter, 0);
  assert_int_equal(apsched_trigger_next(t, T0, T0), T0 + APSCHED_HOUR);
  apsched_trigger_free(t);

  /* bind() reaches the children: unbound date and interval get "now". */
  t = parse("and[date[], interval[hours=1]]");
  char text[512];
  apsched_trigger_describe(t, text, sizeof text);
  assert_string_equal(text, "and[date[], interval[hours=1]]");
  t->vtable->bind(t, T0);
  apsched_trigger_describe(t, text, sizeof text);
  assert_string_equal(text, "and[date[run_date='2026-01-01T00:00:00Z'], "
                            "interval[hours=1, start_date='2026-01-01T01:00:00Z']]");
  /* date at T0 and the interval starting at T0 + 1 h never agree */
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), APSCHED_TIME_NONE);
  apsched_trigger_free(t);
  t = parse("or[date[], interval[hours=1]]");
  t->vtable->bind(t, T0);
  assert_int_equal(apsched_trigger_next(t, APSCHED_TIME_NONE, T0), T0);
  assert_int_equal(apsched_trigger_next(t, T0, T0), T0 + APSCHED_HOUR);
  apsched_trigger_free(t);

  /* Equality: the same children in the same order, the same kind and jitter. */
  apsched_trigger *a = parse("and[date[run_date='2026-01-01T00:00:00Z'], interval[hours=1]]");
  apsched_trigger *b = parse("and[date[run_date='2026-01-01T01:00:00+01:00'], interval[minutes=60]]");
  apsched_trigger *c = parse("and[interval[hours=1], date[run_date='2026-01-01T00:00:00Z']]");
  apsched_trigger *d = parse("or[date[run_date='2026-01-01T00:00:00Z'], interval[hours=1]]");
  apsched_trigger *e = parse("and[date[run_date='2026-01-01T00:00:00Z'], interval[hours=1], jitter=1]");
  apsched_trigger *f = parse("and[date[run_date='2026-01-01T00:00:00Z'], interval[hours=2]]");
  apsched_trigger *g = parse("and[date[run_date='2026-01-01T00:00:00Z']]");
  assert_true(apsched_trigger_equal(a, b));
  assert_false(apsched_trigger_equal(a, c));
  assert_false(apsched_trigger_equal(a, d));
  assert_false(apsched_trigger_equal(a, e));
  assert_false(apsched_trigger_equal(a, f));
  assert_false(apsched_trigger_equal(a, g));
  assert_false(apsched_trigger_equal(g, a));
  apsched_trigger *copy;
  assert_int_equal(apsched_trigger_clone(e, &copy), APSCHED_OK);
  assert_true(apsched_trigger_equal(e, copy));
  assert_string_equal(apsched_trigger_kind(copy), "and");
  assert_string_equal(apsched_trigger_kind(d), "or");
  apsched_trigger *all[] = {a, b, c, d, e, f, g, copy};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) apsched_trigger_free(all[i]);
}

static void test_round_trip(void **state) {
  (void)state;
  static const char *const texts[] = {
      "and[" CRON_A ", " CRON_B "]",
      "or[" DATE_1 ", interval[seconds=4, start_date='2020-05-16T12:17:30.254212Z'], jitter=2.5]",
      "and[or[date[run_date='2026-01-01T00:00:00Z'], calendar[months=1, hour=9, "
      "start_date='2026-01-31T00:00:00+01:00', timezone='Europe/Berlin']], "
      "cron[year='*', month='*', day='*', week='*', day_of_week='mon-fri', hour='9', "
      "minute='0', second='0', timezone='Europe/Berlin'], jitter=0.5]",
      "or[and[or[date[]]]]",
      "and[interval[hours=1, jitter=3]]",
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    apsched_trigger *t = parse(texts[i]);
    char out[2048];
    int n = apsched_trigger_describe(t, out, sizeof out);
    assert_true(n > 0 && (size_t)n < sizeof out);
    apsched_trigger *u = parse(out);
    if (!apsched_trigger_equal(t, u)) fail_msg("'%s' -> '%s' is not equal", texts[i], out);
    char again[2048];
    assert_int_equal(apsched_trigger_describe(u, again, sizeof again), n);
    assert_string_equal(out, again);
    /* snprintf semantics, also when a child's text is cut short */
    for (size_t cut = 0; cut < (size_t)n; cut += 7) {
      char small[2048];
      memset(small, 'x', sizeof small);
      assert_int_equal(apsched_trigger_describe(t, small, cut), n);
      if (cut) {
        assert_int_equal(strlen(small), cut - 1);
        assert_memory_equal(small, out, cut - 1);
      }
      assert_int_equal(small[cut], 'x');
    }
    apsched_trigger_free(t);
    apsched_trigger_free(u);
  }
  /* The canonical form of spaced-out text. */
  apsched_trigger *t = parse("or[ date[run_date='2026-01-01T00:00:00Z'] ,interval[hours=1] , jitter = 5 ]");
  char out[256];
  apsched_trigger_describe(t, out, sizeof out);
  assert_string_equal(out, "or[date[run_date='2026-01-01T00:00:00Z'], interval[hours=1], jitter=5]");
  apsched_trigger_free(t);
  /* Quotes with brackets and commas inside a child stay inside it. */
  t = parse("and[cron[day='1,15', timezone='UTC'], cron[day='last', timezone='UTC']]");
  expect_at(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-02-02T00:00:00Z")), NULL);
  apsched_trigger_free(t);
  t = parse("or[cron[day='1,15', hour='0', timezone='UTC'], cron[day='last', hour='0', timezone='UTC']]");
  expect_at(apsched_trigger_next(t, APSCHED_TIME_NONE, at("2026-02-02T00:00:00Z")), "2026-02-15T00:00:00Z");
  expect_at(apsched_trigger_next(t, at("2026-02-15T00:00:00Z"), 0), "2026-02-28T00:00:00Z");
  apsched_trigger_free(t);
}

static void expect_error(const char *text, const char *needle) {
  apsched_trigger *t = NULL;
  char err[600] = "";
  int rc = apsched_trigger_parse(text, &t, err, sizeof err);
  if (rc == APSCHED_OK) fail_msg("'%s' parsed", text);
  assert_null(t);
  if (!strstr(err, needle)) fail_msg("'%s': message '%s' lacks '%s'", text, err, needle);
}

static void test_errors(void **state) {
  (void)state;
  expect_error("and[]", "and: at least one trigger is needed");
  expect_error("or[jitter=1]", "or: at least one trigger is needed");
  expect_error("and[date[], ]", "and: expected a trigger");
  expect_error("and[, date[]]", "and: expected a trigger");
  expect_error("and[cron[hour='25', timezone='UTC']]", "and: trigger 1: hour: '25'");
  expect_error("or[date[], interval[hours=x]]", "or: trigger 2: hours: 'x'");
  expect_error("or[date[], calendar[days=1, hour=24]]", "or: trigger 2: hour: '24'");
  expect_error("and[date[], nonsense[a=1]]", "unknown trigger kind 'nonsense'");
  expect_error("and[date[], period=5]", "and: unknown parameter 'period'");
  expect_error("and[date[], jitter=1, jitter=2]", "'jitter' given twice");
  expect_error("and[date[], jitter=-1]", "jitter: '-1'");
  expect_error("and[date[], jitter=abc]", "jitter: 'abc'");
  expect_error("and[date[]]]", "unbalanced ']'");
  expect_error("and[date[run_date='2026-01-01]]", "unterminated quote");
  expect_error("and[date[", "kind[param=value");
  expect_error("and[date[] date[]]", "and: trigger 1");

  /* Nesting is bounded (each level recurses). */
  char deep[512] = "";
  for (int i = 0; i < 40; i++) strcat(deep, "or[");
  strcat(deep, "date[]");
  for (int i = 0; i < 40; i++) strcat(deep, "]");
  expect_error(deep, "nested more than 32 deep");

  /* At most 64 triggers. */
  char many[2048] = "or[";
  for (int i = 0; i < 65; i++) strcat(many, i ? ", date[]" : "date[]");
  strcat(many, "]");
  expect_error(many, "or: more than 64 triggers");

  /* The C API */
  apsched_trigger *t = NULL, *d = date_at(T0);
  char err[200];
  assert_int_equal(apsched_trigger_and(NULL, 2, &t, err, sizeof err), APSCHED_EINVAL);
  const apsched_trigger *one[1] = {d};
  assert_int_equal(apsched_trigger_and(one, 0, &t, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "and: 0 triggers given (allowed: 1..64)");
  const apsched_trigger *holes[2] = {d, NULL};
  assert_int_equal(apsched_trigger_or(holes, 2, &t, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "or: trigger 2 is missing or has an unknown vtable version");
  /* A custom trigger with a vtable from the future is refused. */
  static const apsched_trigger_vtable future = {.version = APSCHED_TRIGGER_VTABLE_VERSION + 1,
                                                .kind = "future"};
  apsched_trigger alien = {.vtable = &future};
  const apsched_trigger *mixed[2] = {d, &alien};
  assert_int_equal(apsched_trigger_and(mixed, 2, &t, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "trigger 2"));
  assert_int_equal(apsched_trigger_or(one, 1, NULL, err, sizeof err), APSCHED_EINVAL);
  assert_null(t);
  apsched_trigger_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors_3x),        cmocka_unit_test(test_vectors_4x),
      cmocka_unit_test(test_and_bounded),       cmocka_unit_test(test_or),
      cmocka_unit_test(test_jitter_bind_equal), cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
