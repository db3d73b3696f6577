/* What the tests of `apsched jobs` on a server's store (test_pg_cli.c,
 * test_redis_cli.c) share: running the tool and checking its output, the
 * stand-in job function, a fixed clock, and the two seeded jobs. */
#ifndef APSCHED_TEST_CLI_STORE_SUPPORT_H
#define APSCHED_TEST_CLI_STORE_SUPPORT_H

#include "cli_run.h"

#include "apsched.h"

static void show_failure(const char *const args[], const cli_result *r) {
  fprintf(stderr, "args:");
  for (int i = 0; args[i]; i++) fprintf(stderr, " '%s'", args[i]);
  fprintf(stderr, "\nstatus %d\n--- stdout:\n%s--- stderr:\n%s\n", r->status, r->out.data,
          r->err.data);
}

static char *ok_output(const char *stdin_path, const char *const args[]) {
  cli_result r;
  cli_io io = {.tz_env = "TZ=UTC", .stdin_path = stdin_path};
  cli_run(&r, &io, args);
  if (r.status != 0 || r.err.len != 0) show_failure(args, &r);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err.data, "");
  free(r.err.data);
  return r.out.data;
}

static void expect_out(const char *expected, const char *const args[]) {
  char *out = ok_output(NULL, args);
  if (strcmp(out, expected) != 0) fprintf(stderr, "--- expected:\n%s--- got:\n%s", expected, out);
  assert_string_equal(out, expected);
  free(out);
}
#define EXPECT_OUT(expected, ...) expect_out(expected, ARGS(__VA_ARGS__))

/* Exit status 2, nothing on stdout, one line on stderr containing want. */
static void expect_error(const char *want, const char *const args[]) {
  cli_result r;
  cli_io io = {.tz_env = "TZ=UTC"};
  cli_run(&r, &io, args);
  bool good = r.status == 2 && r.out.len == 0 && strstr(r.err.data, want) &&
              strchr(r.err.data, '\n') == r.err.data + r.err.len - 1;
  if (!good) {
    show_failure(args, &r);
    fprintf(stderr, "--- expected a line containing:\n%s\n", want);
  }
  assert_true(good);
  result_free(&r);
}
#define EXPECT_ERROR(want, ...) expect_error(want, ARGS(__VA_ARGS__))

static int count_job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

static apsched_time_t fixed_now(void *ud) {
  (void)ud;
  return 1767225600LL * APSCHED_SEC; /* 2026-01-01T00:00:00Z */
}

static int64_t fixed_mono(void *ud) {
  (void)ud;
  return 1000 * APSCHED_SEC;
}

static apsched_trigger *parse_trigger(const char *text) {
  apsched_trigger *t;
  char err[256] = "";
  if (apsched_trigger_parse(text, &t, err, sizeof err) != APSCHED_OK) fail_msg("%s: %s", text, err);
  return t;
}

#define HOURLY "interval[hours=1, start_date='2026-01-01T00:00:00Z']"
#define ONCE "date[run_date='2030-01-01T00:00:00Z']"

#define LIST_SEEDED                                       \
  "alpha\tAlpha job\t" HOURLY "\t2026-01-01T00:00:00Z\n" \
  "gamma\ttest.count\t" ONCE "\tpaused\n"

/* The seeded alpha's schedule policies (ones every store can keep) and, as
 * `apsched jobs export` writes them, with its two failed runs so far. */
#define ALPHA_POLICIES "overlap=allow_all, catchup_window=3600s, pause_after_failures=3"
#define ALPHA_POLICIES_JSON                       \
  "      \"policies\": \"" ALPHA_POLICIES "\",\n" \
  "      \"failures\": 2,\n"

/* The fields `apsched jobs show alpha` prints for the seeded job. */
#define SHOW_ALPHA                         \
  "id: alpha\n"                            \
  "name: Alpha job\n"                      \
  "func: test.count\n"                     \
  "trigger: " HOURLY "\n"                  \
  "executor: pool\n"                       \
  "args_base64: aGkA/w== (4 bytes)\n"      \
  "misfire_grace_time: unlimited\n"        \
  "coalesce: false\n"                      \
  "delivery: at_most_once\n"               \
  "max_instances: 3\n"                     \
  "max_runtime: 2.5 s\n"                   \
  "policies: " ALPHA_POLICIES "\n"         \
  "failures: 2 in a row (paused at 3)\n"   \
  "next_run_time: 2026-01-01T00:00:00Z\n"  \
  "paused: false\n"

/* Adds the two seeded jobs to st (which s then owns) through a paused
 * scheduler at 2026-01-01: alpha every hour with every option and policy set
 * (two failed runs counted), gamma a paused date. */
static void seed_store(apsched_jobstore *st) {
  assert_int_equal(apsched_register_func("test.count", count_job), APSCHED_OK);
  static const apsched_clock clock = {fixed_now, fixed_mono, NULL};
  apsched_config cfg = {.timezone = "UTC", .clock = &clock};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "default"), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "pool"), APSCHED_OK);
  assert_int_equal(apsched_start_hosted(s, true), APSCHED_OK);
  apsched_trigger *hourly = parse_trigger(HOURLY), *once = parse_trigger(ONCE);
  const char bytes[] = {'h', 'i', '\0', '\xff'};
  apsched_job_options jobs[2] = {
      {.id = "alpha", .name = "Alpha job", .func_name = "test.count", .trigger = hourly,
       .executor = "pool", .arg_bytes = bytes, .arg_len = sizeof bytes, .max_instances = 3,
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .max_runtime = 2500 * APSCHED_MSEC,
       .coalesce = APSCHED_NO, .overlap = APSCHED_OVERLAP_ALLOW_ALL,
       .catchup_window = 3600 * APSCHED_SEC, .pause_after_failures = 3, .failures = 2},
      {.id = "gamma", .func_name = "test.count", .trigger = once, .paused = true},
  };
  assert_int_equal(apsched_add_jobs(s, jobs, 2, NULL), APSCHED_OK);
  apsched_trigger_free(hourly);
  apsched_trigger_free(once);
  apsched_free(s);
}

#endif
