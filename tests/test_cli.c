/* The `apsched` command-line tool, run as a separate process: exact fire
 * times (DST days included), every trigger kind, -n, the defaults (--from
 * now, --tz local), the canonical text, every error path (exit status 2 and
 * a message on stderr), --help, and a failed write (exit status 1). */
#include "cli_run.h"

#include "apsched.h"

/* Runs the tool with args; TZ replaced by tz_env and stdout into
 * stdout_path when given. */
static void run_full(cli_result *r, const char *tz_env, const char *stdout_path,
                     const char *const args[]) {
  cli_io io = {.tz_env = tz_env, .stdout_path = stdout_path};
  cli_run(r, &io, args);
}

#define RUN(r, ...) run_full((r), NULL, NULL, ARGS(__VA_ARGS__))

/* Runs the tool and checks: exit 0, nothing on stderr, exactly this stdout. */
static void expect_output(const char *const args[], const char *expected) {
  cli_result r;
  run_full(&r, NULL, NULL, args);
  if (r.status != 0 || strcmp(r.out.data, expected) != 0 || r.err.len != 0) {
    fprintf(stderr, "args:");
    for (int i = 0; args[i]; i++) fprintf(stderr, " '%s'", args[i]);
    fprintf(stderr, "\nstatus %d\n--- stdout:\n%s--- expected:\n%s--- stderr:\n%s\n", r.status,
            r.out.data, expected, r.err.data);
  }
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out.data, expected);
  assert_string_equal(r.err.data, "");
  result_free(&r);
}
#define EXPECT(expected, ...) expect_output(ARGS(__VA_ARGS__), expected)

/* Runs the tool and checks: exit 2, nothing on stdout, and stderr is exactly
 * one line "apsched: " + message. */
static void expect_error(const char *const args[], const char *message) {
  cli_result r;
  run_full(&r, NULL, NULL, args);
  char want[1024];
  snprintf(want, sizeof want, "apsched: %s\n", message);
  if (r.status != 2 || strcmp(r.err.data, want) != 0 || r.out.len != 0) {
    fprintf(stderr, "args:");
    for (int i = 0; args[i]; i++) fprintf(stderr, " '%s'", args[i]);
    fprintf(stderr, "\nstatus %d\n--- stderr:\n%s--- expected:\n%s--- stdout:\n%s\n", r.status,
            r.err.data, want, r.out.data);
  }
  assert_int_equal(r.status, 2);
  assert_string_equal(r.err.data, want);
  assert_string_equal(r.out.data, "");
  result_free(&r);
}
#define EXPECT_ERROR(message, ...) expect_error(ARGS(__VA_ARGS__), message)

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* ------------------------------------------------------------------ cron */

/* The example: 02:00 does not exist in Berlin on 2026-03-29; the
 * daily 02:00 job runs once that day, at the end of the gap. */
static void test_berlin_spring_forward(void **state) {
  (void)state;
  EXPECT("2026-03-28T02:00:00+01:00\n"
         "2026-03-29T03:00:00+02:00\n"
         "2026-03-30T02:00:00+02:00\n",
         "next", "--tz", "Europe/Berlin", "--from", "2026-03-28T00:00:00+01:00", "-n", "3", "cron",
         "0 2 * * *");
}

/* New York: 02:30 on the spring day -> 03:00 EDT; 01:30 on the fall day runs
 * once, at the first (EDT) occurrence. */
static void test_new_york_both_dst_days(void **state) {
  (void)state;
  EXPECT("2026-03-07T02:30:00-05:00\n"
         "2026-03-08T03:00:00-04:00\n"
         "2026-03-09T02:30:00-04:00\n",
         "next", "--tz", "America/New_York", "--from", "2026-03-07", "-n", "3", "cron",
         "30 2 * * *");
  EXPECT("2026-10-31T01:30:00-04:00\n"
         "2026-11-01T01:30:00-04:00\n"
         "2026-11-02T01:30:00-05:00\n",
         "next", "--tz", "America/New_York", "--from", "2026-10-31", "-n", "3", "cron",
         "minute=30", "hour=1");
}

/* A wildcard job keeps its cadence through the repeated hour in Berlin. */
static void test_wildcard_through_fall_back(void **state) {
  (void)state;
  EXPECT("2026-10-25T01:30:00+02:00\n"
         "2026-10-25T02:00:00+02:00\n"
         "2026-10-25T02:30:00+02:00\n"
         "2026-10-25T02:00:00+01:00\n"
         "2026-10-25T02:30:00+01:00\n"
         "2026-10-25T03:00:00+01:00\n",
         "next", "--tz", "Europe/Berlin", "--from", "2026-10-25T01:30:00+02:00", "-n", "6", "cron",
         "*/30 * * * *");
}

/* The field example; the March one falls on the spring-forward day. */
static void test_last_sunday_fields(void **state) {
  (void)state;
  EXPECT("2026-01-25T17:25:00+01:00\n"
         "2026-02-22T17:25:00+01:00\n"
         "2026-03-29T17:25:00+02:00\n"
         "2026-04-26T17:25:00+02:00\n",
         "next", "--tz", "Europe/Berlin", "--from", "2026-01-01", "-n", "4", "cron",
         "day=last sun", "hour=17", "minute=25");
}

static void test_third_friday_in_some_months(void **state) {
  (void)state;
  EXPECT("2026-06-19T00:00:00Z\n"
         "2026-06-19T01:00:00Z\n"
         "2026-06-19T02:00:00Z\n"
         "2026-06-19T03:00:00Z\n"
         "2026-07-17T00:00:00Z\n"
         "2026-07-17T01:00:00Z\n",
         "next", "--tz", "UTC", "--from", "2026-01-01", "-n", "6", "cron", "month=6-8,11-12",
         "day=3rd fri", "hour=0-3");
  /* After August's 3rd Friday (the 21st) comes November's (the 20th). */
  EXPECT("2026-11-20T00:00:00Z\n2026-11-20T01:00:00Z\n", "next", "--tz", "UTC", "--from",
         "2026-08-21T03:00:00.000001Z", "-n", "2", "cron", "month=6-8,11-12", "day=3rd fri",
         "hour=0-3");
}

/* Crontab lines in named zones: weekdays, Sunday as 0 and 7, seconds, @daily. */
static void test_crontab_in_named_zone(void **state) {
  (void)state;
  EXPECT("2026-01-02T09:00:00+05:30\n"
         "2026-01-05T09:00:00+05:30\n"
         "2026-01-06T09:00:00+05:30\n",
         "next", "--tz", "Asia/Kolkata", "--from", "2026-01-02", "-n", "3", "cron",
         "0 9 * * mon-fri");
  const char *sundays = "2026-01-04T12:00:00+05:30\n2026-01-11T12:00:00+05:30\n";
  EXPECT(sundays, "next", "--tz", "Asia/Kolkata", "--from", "2026-01-01", "-n", "2", "cron",
         "0 12 * * 0");
  EXPECT(sundays, "next", "--tz", "Asia/Kolkata", "--from", "2026-01-01", "-n", "2", "cron",
         "0 12 * * 7");
  EXPECT("2026-07-01T12:00:04+02:00\n"
         "2026-07-01T12:00:06+02:00\n"
         "2026-07-01T12:00:08+02:00\n",
         "next", "--tz", "Europe/Berlin", "--from", "2026-07-01T12:00:03", "-n", "3", "cron",
         "*/2 * * * * *");
  EXPECT("2026-07-02T00:00:00-07:00\n2026-07-03T00:00:00-07:00\n", "next", "--tz",
         "America/Los_Angeles", "--from", "2026-07-01T00:00:01", "-n", "2", "cron", "@daily");
}

/* "At or after --from": a fire time equal to --from is listed. */
static void test_from_is_inclusive(void **state) {
  (void)state;
  EXPECT("2026-05-01T10:10:00+02:00\n", "next", "--tz", "Europe/Paris", "--from",
         "2026-05-01T10:10:00", "-n", "1", "cron", "minute=10", "hour=10");
  EXPECT("2026-05-02T10:10:00+02:00\n", "next", "--tz", "Europe/Paris", "--from",
         "2026-05-01T10:10:00.000001", "-n", "1", "cron", "minute=10", "hour=10");
}

/* -------------------------------------------------------- other triggers */

static void test_interval(void **state) {
  (void)state;
  /* Without start_date the list starts at --from itself. */
  EXPECT("2026-01-01T00:00:00Z\n2026-01-01T00:15:00Z\n2026-01-01T00:30:00Z\n", "next", "--tz",
         "UTC", "--from", "2026-01-01T00:00:00Z", "-n", "3", "interval", "minutes=15");
  /* Fractional seconds, printed only when not zero; the fields add up. */
  EXPECT("2026-01-01T00:00:00.25Z\n2026-01-01T00:00:00.75Z\n2026-01-01T00:00:01.25Z\n", "next",
         "--tz", "UTC", "--from", "2026-01-01T00:00:00.25Z", "-n", "3", "interval", "seconds=0.5");
  EXPECT("2026-01-01T00:00:01.25Z\n2026-01-01T00:00:03.5Z\n2026-01-01T00:00:05.75Z\n", "next",
         "--tz", "UTC", "--from", "2026-01-01T00:00:00Z", "-n", "3", "interval", "seconds=2.25",
         "start_date=2025-12-31T23:59:59Z");
  EXPECT("2026-01-01T00:00:00Z\n2026-01-01T01:02:00.5Z\n", "next", "--tz", "UTC", "--from",
         "2026-01-01", "-n", "2", "interval", "hours=1", "minutes=1.5", "seconds=30",
         "microseconds=500000");
  EXPECT("2026-01-01T00:00:00Z\n2026-01-15T12:00:00Z\n", "next", "--tz", "UTC", "--from",
         "2026-01-01", "-n", "2", "interval", "weeks=1", "days=7.5");
  /* Elapsed time: the hour that does not exist is not counted. */
  EXPECT("2026-03-29T01:00:00+01:00\n2026-03-29T03:00:00+02:00\n2026-03-29T04:00:00+02:00\n",
         "next", "--tz", "Europe/Berlin", "--from", "2026-03-29T01:00:00", "-n", "3", "interval",
         "hours=1");
  /* end_date ends the list early; that is not an error. */
  EXPECT("2026-01-01T00:00:00Z\n2026-01-01T00:15:00Z\n2026-01-01T00:30:00Z\n", "next", "--tz",
         "UTC", "--from", "2026-01-01", "-n", "5", "interval", "minutes=15",
         "end_date=2026-01-01T00:40:00Z");
  /* The longest interval there is: its second run is the last representable time. */
  EXPECT("1970-01-01T00:00:00Z\n+294247-01-10T04:00:54.775807Z\n", "next", "--tz", "UTC",
         "--from", "1970-01-01T00:00:00Z", "-n", "3", "interval",
         "microseconds=9223372036854775807");
  /* The epoch as a start is a real start, not "none". */
  EXPECT("1970-01-01T00:00:00Z\n1970-01-01T01:00:00Z\n", "next", "--tz", "UTC", "--from",
         "1970-01-01T00:00:00Z", "-n", "2", "interval", "hours=1");
}

static void test_calendar(void **state) {
  (void)state;
  /* Jan 31 + 1 month: February has no 31st, so it is skipped. */
  EXPECT("2026-01-31T09:00:00Z\n2026-03-31T09:00:00Z\n2026-05-31T09:00:00Z\n", "next", "--tz",
         "UTC", "--from", "2026-01-31", "-n", "3", "calendar", "months=1", "hour=9");
  /* 02:30 daily across Berlin's spring-forward night. */
  EXPECT("2026-03-28T02:30:00+01:00\n2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n",
         "next", "--tz", "Europe/Berlin", "--from", "2026-03-28", "-n", "3", "calendar", "days=1",
         "hour=2", "minute=30");
  /* Day 0 is start_date's local date, whatever --from is. */
  EXPECT("2026-01-07T08:00:00-05:00\n2026-01-21T08:00:00-05:00\n", "next", "--tz",
         "America/New_York", "--from", "2026-01-06", "-n", "2", "calendar", "weeks=2", "hour=8",
         "start_date=2025-12-24");
}

static void test_date(void **state) {
  (void)state;
  /* A local time in --tz; extra -n asks for more than there are. */
  EXPECT("2026-05-01T09:00:00+09:00\n", "next", "--tz", "Asia/Tokyo", "--from", "2026-01-01",
         "-n", "3", "date", "2026-05-01T09:00");
  /* With an offset, printed in --tz. */
  EXPECT("2026-05-01T09:00:00+02:00\n", "next", "--tz", "Europe/Berlin", "--from", "2026-01-01",
         "date", "2026-05-01T07:00:00Z");
  EXPECT("2026-05-01T07:00:00Z\n", "next", "--tz", "UTC", "--from", "2026-01-01", "date",
         "run_date=2026-05-01T09:00:00+02:00");
  /* Before --from: nothing to list, and still success. */
  EXPECT("", "next", "--tz", "UTC", "--from", "2026-01-01", "date", "2025-12-31");
  /* The epoch itself. */
  EXPECT("1970-01-01T00:00:00Z\n", "next", "--tz", "UTC", "--from", "1969-12-31", "date",
         "1970-01-01T00:00:00Z");
  EXPECT("", "next", "--tz", "UTC", "--from", "1970-01-02", "date", "1970-01-01T00:00:00Z");
}

/* A canonical text, also a combination the FIELD=VALUE forms cannot say. */
static void test_trigger_text(void **state) {
  (void)state;
  EXPECT("2026-01-01T00:30:00Z\n2026-01-01T01:00:00Z\n2026-01-02T01:00:00Z\n", "next", "--tz",
         "UTC", "--from", "2026-01-01T00:00:00Z", "-n", "3",
         "or[cron[hour='1', timezone='UTC'], date[run_date='2026-01-01T00:30:00Z']]");
}

/* -------------------------------------------------------------- options */

static void test_count(void **state) {
  (void)state;
  cli_result r;
  RUN(&r, "next", "--tz", "UTC", "--from", "2026-01-01", "cron", "minute=*/5");
  assert_int_equal(r.status, 0);
  assert_int_equal(count_lines(r.out.data), 5); /* the default */
  assert_string_equal(r.out.data,
                      "2026-01-01T00:00:00Z\n2026-01-01T00:05:00Z\n2026-01-01T00:10:00Z\n"
                      "2026-01-01T00:15:00Z\n2026-01-01T00:20:00Z\n");
  result_free(&r);
  RUN(&r, "next", "--tz", "UTC", "--from", "2026-01-01", "-n", "1000", "cron", "minute=*/5");
  assert_int_equal(r.status, 0);
  assert_int_equal(count_lines(r.out.data), 1000);
  assert_non_null(strstr(r.out.data, "\n2026-01-04T11:15:00Z\n")); /* the 1000th */
  result_free(&r);
  const char *one = "2026-01-01T00:00:00Z\n";
  EXPECT(one, "next", "--tz", "UTC", "--from", "2026-01-01", "-n", "1", "cron", "minute=*/5");
  EXPECT(one, "next", "--tz", "UTC", "--from", "2026-01-01", "-n1", "cron", "minute=*/5");
  EXPECT(one, "next", "--tz", "UTC", "--from", "2026-01-01", "--count=1", "cron", "minute=*/5");
  EXPECT(one, "next", "--tz", "UTC", "--from", "2026-01-01", "--count", "1", "cron",
         "minute=*/5");
  /* Fewer fire times than asked for, or none at all: success. */
  EXPECT("2026-12-31T23:00:00Z\n", "next", "--tz", "UTC", "--from", "2026-01-01", "-n", "5",
         "cron", "year=2026", "month=12", "day=31", "hour=23");
  EXPECT("", "next", "--tz", "UTC", "--from", "2026-01-01", "cron", "month=2", "day=30");
}

static void test_option_forms(void **state) {
  (void)state;
  const char *want = "2026-03-29T03:00:00+02:00\n";
  EXPECT(want, "next", "--tz=Europe/Berlin", "--from=2026-03-29", "-n", "1", "cron", "hour=2");
  EXPECT(want, "next", "-n", "1", "--from", "2026-03-29", "--tz", "Europe/Berlin", "--", "cron",
         "hour=2");
  /* --from is read in --tz whichever comes first. */
  EXPECT(want, "next", "--from", "2026-03-29", "--tz", "Europe/Berlin", "-n", "1", "cron",
         "hour=2");
  /* Fixed offsets and POSIX TZ strings as zones. */
  EXPECT("2026-01-01T02:00:00+05:45\n", "next", "--tz", "+05:45", "--from", "2026-01-01", "-n",
         "1", "cron", "hour=2");
  EXPECT("2026-07-01T02:00:00-04:00\n", "next", "--tz", "EST5EDT,M3.2.0,M11.1.0", "--from",
         "2026-07-01", "-n", "1", "cron", "hour=2");
}

/* Options anywhere after the command, as GNU getopt permutes them: before,
 * after or between the words of TRIGGER; "--" ends them. */
static void test_options_anywhere(void **state) {
  (void)state;
  /* The example: options after a crontab line. */
  EXPECT("2026-01-01T00:00:00Z\n2026-01-01T00:15:00Z\n2026-01-01T00:30:00Z\n", "next",
         "cron", "*/15 * * * *", "-n", "3", "--tz", "UTC", "--from", "2026-01-01");
  /* Between FIELD=VALUE words, in every spelling. */
  EXPECT("2026-01-01T01:00:00Z\n2026-01-01T01:15:00Z\n", "next", "cron", "minute=*/15",
         "--tz=UTC", "hour=1", "--from=2026-01-01", "-n2");
  EXPECT("2026-01-01T01:00:00Z\n", "next", "--tz", "UTC", "cron", "--count", "1", "hour=1",
         "--from", "2026-01-01");
  /* --from is still read in --tz when --tz comes last. */
  EXPECT("2026-03-29T03:00:00+02:00\n", "next", "cron", "hour=2", "--from", "2026-03-29", "-n",
         "1", "--tz", "Europe/Berlin");
  /* Every trigger kind, and describe. */
  EXPECT("2026-01-01T00:00:00Z\n2026-01-01T00:15:00Z\n", "next", "interval", "minutes=15",
         "--tz", "UTC", "--from", "2026-01-01", "-n", "2");
  EXPECT("2026-01-31T09:00:00Z\n2026-03-31T09:00:00Z\n", "next", "calendar", "months=1",
         "--tz", "UTC", "hour=9", "--from", "2026-01-31", "-n", "2");
  EXPECT("2026-05-01T09:00:00+09:00\n", "next", "date", "2026-05-01T09:00", "--tz",
         "Asia/Tokyo", "--from", "2026-01-01");
  EXPECT("2026-01-01T01:00:00Z\n", "next", "cron[hour='1', timezone='UTC']", "--from",
         "2026-01-01", "-n", "1", "--tz", "UTC");
  EXPECT("interval[minutes=15, start_date='2026-01-01T00:00:00Z']\n", "describe", "interval",
         "minutes=15", "--from", "2026-01-01", "--tz", "UTC");
  EXPECT("cron[year='*', month='*', day='*', week='*', day_of_week='*', hour='2', minute='0', "
         "second='0', timezone='Asia/Tokyo']\n",
         "describe", "cron", "0 2 * * *", "--tz", "Asia/Tokyo");
  /* After "--" every word is TRIGGER's, even one that looks like an option. */
  EXPECT("2026-01-01T01:00:00Z\n", "next", "cron", "--tz", "UTC", "-n", "1", "--from",
         "2026-01-01", "--", "hour=1");
  EXPECT_ERROR("cron: '--from' is not FIELD=VALUE (a crontab line is one argument: cron "
               "'0 2 * * *')",
               "next", "--tz", "UTC", "--", "cron", "hour=1", "--from", "2026-01-01");
  EXPECT_ERROR("date: '-n': expected a 4-digit year (like 2021-10-25) at '-n'", "next", "--tz",
               "UTC", "--", "date", "-n");
  /* Errors in options after TRIGGER are the same as before it. */
  EXPECT_ERROR("--tz needs a value", "next", "cron", "hour=1", "--tz");
  EXPECT_ERROR("-n needs a value", "next", "cron", "hour=1", "-n");
  EXPECT_ERROR("unknown option -x", "next", "cron", "hour=1", "-x");
  EXPECT_ERROR("unknown option --hour=1", "next", "cron", "--hour=1");
  EXPECT_ERROR("-n: 'x' is not a positive count", "next", "cron", "hour=1", "-n", "x");
  EXPECT_ERROR("describe: -n is an option of 'apsched next'", "describe", "cron", "hour=1", "-n",
               "3");
  EXPECT_ERROR("--tz: unknown time zone 'Mars/Olympus_Mons'", "next", "cron", "hour=1", "--tz",
               "Mars/Olympus_Mons");
  EXPECT_ERROR("missing TRIGGER (cron, interval, calendar or date)", "next", "--tz", "UTC", "-n",
               "2");
  /* A lone "-" is a word, not an option. */
  EXPECT_ERROR("unknown trigger '-' (cron, interval, calendar, date, or a trigger text such as "
               "\"cron[hour='2']\")",
               "next", "-");
}

/* --tz defaults to the local zone (TZ), --from to now. */
static void test_defaults(void **state) {
  (void)state;
  cli_result r;
  run_full(&r, "TZ=Asia/Tokyo", NULL,
           ARGS("next", "--from", "2026-01-01T00:00:00", "-n", "1", "cron", "hour=9"));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out.data, "2026-01-01T09:00:00+09:00\n");
  result_free(&r);

  apsched_time_t before = apsched_now();
  RUN(&r, "next", "--tz", "UTC", "-n", "2", "interval", "seconds=1");
  apsched_time_t after = apsched_now();
  assert_int_equal(r.status, 0);
  assert_int_equal(count_lines(r.out.data), 2);
  char *nl = strchr(r.out.data, '\n');
  *nl = '\0';
  nl[1 + strcspn(nl + 1, "\n")] = '\0';
  apsched_time_t first, second;
  assert_int_equal(apsched_time_parse(r.out.data, NULL, &first, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_time_parse(nl + 1, NULL, &second, NULL, 0), APSCHED_OK);
  assert_true(first >= before && first <= after);
  assert_int_equal(second - first, APSCHED_SEC);
  result_free(&r);

  /* "now" as a TIME is the same thing. */
  before = apsched_now();
  RUN(&r, "next", "--tz", "UTC", "--from", "now", "-n", "1", "date", "now");
  after = apsched_now();
  assert_int_equal(r.status, 0);
  assert_int_equal(count_lines(r.out.data), 1);
  r.out.data[strcspn(r.out.data, "\n")] = '\0';
  assert_int_equal(apsched_time_parse(r.out.data, NULL, &first, NULL, 0), APSCHED_OK);
  assert_true(first >= before && first <= after);
  result_free(&r);
}

static void test_describe(void **state) {
  (void)state;
  EXPECT("cron[year='*', month='*', day='*', week='*', day_of_week='mon-fri', hour='9', "
         "minute='0', second='0', timezone='America/New_York']\n",
         "describe", "--tz", "America/New_York", "cron", "0 9 * * 1-5");
  EXPECT("interval[minutes=15]\n", "describe", "interval", "minutes=15");
  EXPECT("interval[minutes=15, start_date='2026-01-01T00:00:00Z']\n", "describe", "--tz", "UTC",
         "--from", "2026-01-01", "interval", "minutes=15");
  EXPECT("date[run_date='2026-05-01T00:00:00Z']\n", "describe", "--tz", "Asia/Tokyo", "date",
         "2026-05-01T09:00");

  /* The text goes back in and gives the same fire times. */
  cli_result r;
  RUN(&r, "describe", "--tz", "Europe/Berlin", "cron", "day=last sun", "hour=17", "minute=25");
  assert_int_equal(r.status, 0);
  r.out.data[strcspn(r.out.data, "\n")] = '\0';
  EXPECT("2026-01-25T17:25:00+01:00\n2026-02-22T17:25:00+01:00\n", "next", "--tz",
         "Europe/Berlin", "--from", "2026-01-01", "-n", "2", r.out.data);
  result_free(&r);
}

static void test_help(void **state) {
  (void)state;
  static const char *const sections[] = {"\nSYNOPSIS\n", "\nDESCRIPTION\n", "\nTRIGGERS\n",
                                         "\nTIME\n",     "\nEXAMPLES\n",    "\nEXIT STATUS\n"};
  const char *const *forms[] = {ARGS("--help"),
                                ARGS("help"),
                                ARGS("-h"),
                                ARGS("next", "--help"),
                                ARGS("next", "--tz", "UTC", "-h"),
                                ARGS("describe", "--help"),
                                ARGS("next", "cron", "hour=1", "--help"),
                                ARGS("describe", "interval", "minutes=1", "-h")};
  char *first = NULL;
  for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
    cli_result r;
    run_full(&r, NULL, NULL, forms[f]);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err.data, "");
    /* NAME first, then the other sections in this order, each a line of its own */
    assert_true(strncmp(r.out.data, "NAME\n", 5) == 0);
    const char *at = r.out.data;
    for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
      const char *hit = strstr(at, sections[s]);
      assert_non_null(hit);
      at = hit + 1;
    }
    assert_non_null(strstr(r.out.data, "apsched next [--tz ZONE] [--from TIME] [-n COUNT] TRIGGER"));
    assert_non_null(strstr(r.out.data, "starts the interval at --from"));
    assert_non_null(strstr(r.out.data, "Options may come before, after or between the words of "
                                       "TRIGGER, and --\n    ends them"));
    if (!first)
      first = strdup(r.out.data);
    else
      assert_string_equal(r.out.data, first);
    result_free(&r);
  }
  free(first);

  cli_result r;
  RUN(&r, "--version");
  assert_int_equal(r.status, 0);
  char want[64];
  snprintf(want, sizeof want, "apsched %s\n", apsched_version());
  assert_string_equal(r.out.data, want);
  result_free(&r);
}

/* The help's examples print what the help says they print. */
static void test_help_examples_are_true(void **state) {
  (void)state;
  cli_result r;
  RUN(&r, "--help");
  assert_non_null(strstr(r.out.data, "        2026-03-28T02:00:00+01:00\n"
                                     "        2026-03-29T03:00:00+02:00\n"
                                     "        2026-03-30T02:00:00+02:00\n"));
  assert_non_null(strstr(r.out.data, "        2026-01-25T17:25:00Z\n"
                                     "        2026-02-22T17:25:00Z\n"));
  assert_non_null(strstr(r.out.data, "        2026-01-01T00:00:00Z\n"
                                     "        2026-01-01T00:01:30Z\n"));
  assert_non_null(strstr(r.out.data, "        2026-01-31T09:00:00Z\n"
                                     "        2026-03-31T09:00:00Z\n"));
  result_free(&r);
  EXPECT("2026-01-25T17:25:00Z\n2026-02-22T17:25:00Z\n", "next", "--tz", "UTC", "--from",
         "2026-01-01", "-n", "2", "cron", "day=last sun", "hour=17", "minute=25");
  EXPECT("2026-01-01T00:00:00Z\n2026-01-01T00:01:30Z\n", "next", "--tz", "UTC", "--from",
         "2026-01-01", "-n", "2", "interval", "minutes=1.5");
  EXPECT("2026-01-31T09:00:00Z\n2026-03-31T09:00:00Z\n", "next", "--tz", "UTC", "--from",
         "2026-01-31", "-n", "2", "calendar", "months=1", "hour=9");
}

/* --------------------------------------------------------------- errors */

static void test_usage_errors(void **state) {
  (void)state;
  cli_result r;
  /* No arguments at all: the usage on stderr. */
  run_full(&r, NULL, NULL, (const char *const[]){NULL});
  assert_int_equal(r.status, 2);
  assert_string_equal(r.out.data, "");
  assert_non_null(strstr(r.err.data, "usage: apsched next"));
  result_free(&r);

  EXPECT_ERROR("unknown option --foo", "next", "--foo");
  EXPECT_ERROR("unknown option --foo", "--foo");
  EXPECT_ERROR("unknown option -x", "next", "-x", "cron", "hour=1");
  EXPECT_ERROR("unknown command 'nxt' (next, describe, jobs, schedulers or help)", "nxt");
  EXPECT_ERROR("--tz goes after the command: apsched next --tz ...", "--tz", "UTC", "next");
  EXPECT_ERROR("missing TRIGGER (cron, interval, calendar or date)", "next");
  EXPECT_ERROR("missing TRIGGER (cron, interval, calendar or date)", "next", "--tz", "UTC", "--");
  EXPECT_ERROR("--tz needs a value", "next", "--tz");
  EXPECT_ERROR("--from needs a value", "next", "--from");
  EXPECT_ERROR("-n needs a value", "next", "-n");
  EXPECT_ERROR("-n: 'x' is not a positive count", "next", "-n", "x", "cron", "hour=1");
  EXPECT_ERROR("-n: '0' is not a positive count", "next", "-n", "0", "cron", "hour=1");
  EXPECT_ERROR("-n: '-3' is not a positive count", "next", "-n", "-3", "cron", "hour=1");
  EXPECT_ERROR("-n: '5x' is not a positive count", "next", "-n5x", "cron", "hour=1");
  EXPECT_ERROR("-n: '' is not a positive count", "next", "--count=", "cron", "hour=1");
  EXPECT_ERROR("-n: '1000001' is above the maximum 1000000", "next", "-n", "1000001", "cron",
               "hour=1");
  EXPECT_ERROR("-n: '99999999999999999999' is above the maximum 1000000", "next", "-n",
               "99999999999999999999", "cron", "hour=1");
  EXPECT_ERROR("describe: -n is an option of 'apsched next'", "describe", "-n", "3", "cron",
               "hour=1");
}

static void test_zone_and_time_errors(void **state) {
  (void)state;
  EXPECT_ERROR("--tz: unknown time zone 'Mars/Olympus_Mons'", "next", "--tz", "Mars/Olympus_Mons",
               "cron", "hour=1");
  EXPECT_ERROR("--tz: time zone name '../etc/passwd': a component may not start with '.'", "next",
               "--tz", "../etc/passwd", "cron", "hour=1");
  EXPECT_ERROR("--from: '2026-13-01': month 13 is out of range 1..12", "next", "--from",
               "2026-13-01", "cron", "hour=1");
  EXPECT_ERROR("--from: 'tomorrow': expected a 4-digit year (like 2021-10-25) at 'tomorrow'",
               "next", "--from", "tomorrow", "cron", "hour=1");
  EXPECT_ERROR("date: '2026-02-30': day 30 is out of range 1..28 for February 2026", "next",
               "date", "2026-02-30");
  EXPECT_ERROR("date: run_date -0001-12-31T23:00:00Z is outside the years 0000..9999 (UTC)",
               "next", "date", "0000-01-01T00:00:00+01:00");
  EXPECT_ERROR("cron: start_date: 'soon': expected a 4-digit year (like 2021-10-25) at 'soon'",
               "next", "cron", "hour=1", "start_date=soon");
  EXPECT_ERROR("interval: end_date: empty time text", "next", "interval", "minutes=1",
               "end_date=");
}

static void test_trigger_errors(void **state) {
  (void)state;
  /* cron */
  EXPECT_ERROR("cron: hour: '0-24': 24 is above the maximum 23", "next", "--tz", "Europe/Berlin",
               "cron", "hour=0-24");
  EXPECT_ERROR("cron: give a crontab line (cron '0 2 * * *') or FIELD=VALUE arguments "
               "(cron hour=2)",
               "next", "cron");
  EXPECT_ERROR("cron: '0' is not FIELD=VALUE (a crontab line is one argument: cron '0 2 * * *')",
               "next", "cron", "0", "2", "*", "*", "*");
  EXPECT_ERROR("cron: 'hour' is not FIELD=VALUE (a crontab line is one argument: cron "
               "'0 2 * * *')",
               "next", "cron", "hour");
  EXPECT_ERROR("cron: '=2' is not FIELD=VALUE (a crontab line is one argument: cron '0 2 * * *')",
               "next", "cron", "=2");
  EXPECT_ERROR("cron: end_date: 2026-01-01T00:00:00+01:00 is before start_date "
               "2026-01-02T00:00:00+01:00",
               "next", "--tz", "Europe/Berlin", "cron", "hour=1", "start_date=2026-01-02",
               "end_date=2026-01-01");
  EXPECT_ERROR("cron: unknown field 'hours' (fields: year, month, day, week, day_of_week, hour, "
               "minute, second, start_date, end_date)",
               "next", "cron", "hours=2");
  EXPECT_ERROR("cron: hour is given twice", "next", "cron", "hour=2", "hour=3");
  EXPECT_ERROR("cron: timezone: the trigger's zone is set with --tz ZONE", "next", "cron",
               "timezone=UTC");
  EXPECT_ERROR("cron: crontab '1 2 3': expected 5 fields (minute hour day month day_of_week) or "
               "6 (second first), got 3",
               "next", "cron", "1 2 3");
  EXPECT_ERROR("cron: crontab '@fortnightly': unknown shorthand (allowed: @yearly @annually "
               "@monthly @weekly @daily @midnight @hourly)",
               "next", "cron", "@fortnightly");
  /* interval */
  EXPECT_ERROR("interval: give its length with weeks, days, hours, minutes or seconds "
               "(interval minutes=15)",
               "next", "interval");
  EXPECT_ERROR("interval: give its length with weeks, days, hours, minutes or seconds "
               "(interval minutes=15)",
               "next", "interval", "start_date=2026-01-01");
  EXPECT_ERROR("interval: minutes: 'x' is not a number (like 15 or 2.5)", "next", "interval",
               "minutes=x");
  EXPECT_ERROR("interval: minutes: '.' is not a number (like 15 or 2.5)", "next", "interval",
               "minutes=.");
  EXPECT_ERROR("interval: minutes: '' is not a number (like 15 or 2.5)", "next", "interval",
               "minutes=");
  EXPECT_ERROR("interval: minutes: '-1' is negative", "next", "interval", "minutes=-1");
  EXPECT_ERROR("interval: seconds: '1.1234567' has more than 6 decimals", "next", "interval",
               "seconds=1.1234567");
  EXPECT_ERROR("interval: microseconds: '1.5' is not a whole number of microseconds", "next",
               "interval", "microseconds=1.5");
  EXPECT_ERROR("interval: weeks: '99999999999999' is too large", "next", "interval",
               "weeks=99999999999999");
  EXPECT_ERROR("interval: microseconds: '9223372036854775808' is too large", "next", "interval",
               "microseconds=9223372036854775808");
  EXPECT_ERROR("interval: the interval is too long", "next", "interval", "weeks=15000000",
               "days=15000000");
  EXPECT_ERROR("interval: the interval must be longer than zero", "next", "interval",
               "seconds=0");
  EXPECT_ERROR("interval: unknown field 'hour' (fields: weeks, days, hours, minutes, seconds, "
               "microseconds, start_date, end_date)",
               "next", "interval", "hour=1");
  EXPECT_ERROR("interval: 'minutes' is not FIELD=VALUE", "next", "interval", "minutes");
  EXPECT_ERROR("interval: end_date is before start_date", "next", "interval", "minutes=1",
               "start_date=2026-01-02T00:00:00Z", "end_date=2026-01-01T00:00:00Z");
  /* calendar */
  EXPECT_ERROR("calendar: the interval must be at least 1 day long (set years, months, weeks or "
               "days)",
               "next", "calendar");
  EXPECT_ERROR("calendar: days: 'x' is not a whole number", "next", "calendar", "days=x");
  EXPECT_ERROR("calendar: days: '1.5' is not a whole number", "next", "calendar", "days=1.5");
  EXPECT_ERROR("calendar: days: '-1' is negative", "next", "calendar", "days=-1");
  EXPECT_ERROR("calendar: days: '3000000000' is above the maximum 2147483647", "next", "calendar",
               "days=3000000000");
  EXPECT_ERROR("calendar: hour=24 is not in 0..23", "next", "calendar", "days=1", "hour=24");
  EXPECT_ERROR("calendar: timezone: the trigger's zone is set with --tz ZONE", "next", "calendar",
               "days=1", "timezone=UTC");
  /* date, kinds, trigger texts */
  EXPECT_ERROR("date: give exactly one TIME (date 2026-05-01T09:00:00+02:00)", "next", "date");
  EXPECT_ERROR("date: give exactly one TIME (date 2026-05-01T09:00:00+02:00); quote a TIME that "
               "has blanks",
               "next", "date", "2026-05-01", "09:00");
  EXPECT_ERROR("unknown trigger 'weekly' (cron, interval, calendar, date, or a trigger text such "
               "as \"cron[hour='2']\")",
               "next", "weekly");
  EXPECT_ERROR("trigger text: 'cron[hour=': a trigger is written as kind[param=value, ...]",
               "next", "cron[hour=");
  EXPECT_ERROR("a trigger text takes no further arguments ('hour=2')", "next", "cron[]", "hour=2");
}

/* A write that fails (a full device) is status 1, with a message. */
static void test_write_failure(void **state) {
  (void)state;
  if (access("/dev/full", W_OK) != 0) skip();
  cli_result r;
  run_full(&r, NULL, "/dev/full",
           ARGS("next", "--tz", "UTC", "--from", "2026-01-01", "-n", "3", "cron", "hour=1"));
  assert_int_equal(r.status, 1);
  assert_string_equal(r.err.data, "apsched: cannot write the output\n");
  result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_berlin_spring_forward),
      cmocka_unit_test(test_new_york_both_dst_days),
      cmocka_unit_test(test_wildcard_through_fall_back),
      cmocka_unit_test(test_last_sunday_fields),
      cmocka_unit_test(test_third_friday_in_some_months),
      cmocka_unit_test(test_crontab_in_named_zone),
      cmocka_unit_test(test_from_is_inclusive),
      cmocka_unit_test(test_interval),
      cmocka_unit_test(test_calendar),
      cmocka_unit_test(test_date),
      cmocka_unit_test(test_trigger_text),
      cmocka_unit_test(test_count),
      cmocka_unit_test(test_option_forms),
      cmocka_unit_test(test_options_anywhere),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_describe),
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_help_examples_are_true),
      cmocka_unit_test(test_usage_errors),
      cmocka_unit_test(test_zone_and_time_errors),
      cmocka_unit_test(test_trigger_errors),
      cmocka_unit_test(test_write_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
