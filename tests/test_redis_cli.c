/* `apsched jobs --store unix://...` and `apsched schedulers`, run as a
 * separate process against the Redis server this program starts
 * (redis_server.h): list, show, pause, resume, remove under a prefix a
 * scheduler filled, ?prefix=, export -> import under a new prefix, the
 * live schedulers, and the errors (no such prefix, a bad parameter, no
 * server). */
#include "cli_run.h"
#include "redis_server.h"

#include "apsched.h"
#include "apsched_redis.h"

/* The test server's URL with &prefix=NAME (or ?prefix=NAME) added. */
static const char *prefix_url(const char *prefix) {
  static char bufs[4][600];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, 600, "%s?prefix=%s", redis_server_url(), prefix);
  return b;
}

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

/* Two jobs under prefix, added by a (paused) scheduler at 2026-01-01:
 * alpha every hour with every option set, gamma a paused date. */
static void seed_prefix(const char *prefix) {
  assert_int_equal(apsched_register_func("test.count", count_job), APSCHED_OK);
  static const apsched_clock clock = {fixed_now, fixed_mono, NULL};
  apsched_config cfg = {.timezone = "UTC", .clock = &clock};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_redis_options o = {.url = redis_server_url(), .prefix = prefix};
  apsched_jobstore *st;
  char err[256] = "";
  if (apsched_redis_store_create(&o, &st, err, sizeof err) != APSCHED_OK) fail_msg("%s", err);
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
       .coalesce = APSCHED_NO},
      {.id = "gamma", .func_name = "test.count", .trigger = once, .paused = true},
  };
  assert_int_equal(apsched_add_jobs(s, jobs, 2, NULL), APSCHED_OK);
  apsched_trigger_free(hourly);
  apsched_trigger_free(once);
  apsched_free(s);
}

#define LIST_SEEDED                                       \
  "alpha\tAlpha job\t" HOURLY "\t2026-01-01T00:00:00Z\n" \
  "gamma\ttest.count\t" ONCE "\tpaused\n"

static void test_list_show_pause_resume_remove(void **state) {
  (void)state;
  seed_prefix("cli");
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", prefix_url("cli"), "list");
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", prefix_url("c%6ci"), "list"); /* 'l' */
  EXPECT_OUT("id: alpha\n"
             "name: Alpha job\n"
             "func: test.count\n"
             "trigger: " HOURLY "\n"
             "executor: pool\n"
             "args_base64: aGkA/w== (4 bytes)\n"
             "misfire_grace_time: unlimited\n"
             "coalesce: false\n"
             "delivery: at_most_once\n"
             "max_instances: 3\n"
             "max_runtime: 2.5 s\n"
             "next_run_time: 2026-01-01T00:00:00Z\n"
             "paused: false\n",
             "jobs", "--store", prefix_url("cli"), "show", "alpha");
  EXPECT_OUT("", "jobs", "--store", prefix_url("cli"), "pause", "alpha");
  EXPECT_OUT("", "jobs", "--store", prefix_url("cli"), "resume", "gamma");
  EXPECT_OUT("gamma\ttest.count\t" ONCE "\t2030-01-01T00:00:00Z\n"
             "alpha\tAlpha job\t" HOURLY "\tpaused\n",
             "jobs", "--store", prefix_url("cli"), "list");
  EXPECT_OUT("", "jobs", "--store", prefix_url("cli"), "remove", "alpha");
  EXPECT_ERROR("jobs remove: no job 'alpha' in ", "jobs", "--store", prefix_url("cli"), "remove",
               "alpha");
  /* The default prefix is "apsched": empty here, and list does not create it. */
  EXPECT_ERROR("redis prefix 'apsched' holds no libapsched-redis data", "jobs", "--store",
               redis_server_url(), "list");
}

#ifdef APSCHED_CLI_HAVE_JANSSON
static void test_export_import(void **state) {
  (void)state;
  seed_prefix("cli_from");
  char path[] = "/tmp/apsched-redis-cli-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  char *exported = ok_output(NULL, ARGS("jobs", "--store", prefix_url("cli_from"), "export"));
  assert_int_equal(write(fd, exported, strlen(exported)), (ssize_t)strlen(exported));
  close(fd);
  EXPECT_OUT("", "jobs", "--store", prefix_url("cli_to"), "import", path); /* creates it */
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", prefix_url("cli_to"), "list");
  char *again = ok_output(NULL, ARGS("jobs", "--store", prefix_url("cli_to"), "export"));
  assert_string_equal(exported, again);
  free(exported);
  free(again);
  unlink(path);
}
#endif

static void test_url_errors(void **state) {
  (void)state;
  EXPECT_ERROR(": prefix: a bad %XX escape", "jobs", "--store", prefix_url("a%zz"), "list");
  EXPECT_ERROR(": prefix: no name (prefix=NAME)", "jobs", "--store", "unix:///tmp/x.sock?prefix",
               "list");
  EXPECT_ERROR("redis://h/0?db=2: unknown parameter 'db=2' (redis URLs take prefix)", "jobs",
               "--store", "redis://h/0?db=2", "list");
  EXPECT_ERROR("jobs list: unix:///nonexistent-dir/r.sock: redis prefix 'apsched': cannot connect "
               "to /nonexistent-dir/r.sock: No such file or directory",
               "jobs", "--store", "unix:///nonexistent-dir/r.sock", "list");
  char *help = ok_output(NULL, ARGS("jobs", "--help"));
  assert_non_null(strstr(help, "?prefix=NAME"));
  free(help);
}

/* apsched schedulers: a live scheduler with its lease and its runs (one
 * claimed, one started). */
static void test_schedulers(void **state) {
  (void)state;
  assert_int_equal(apsched_register_func("test.count", count_job), APSCHED_OK);
  apsched_redis_options o = {.url = redis_server_url(), .prefix = "shared",
                             .scheduler_name = "alpha", .lease_ms = 3000};
  apsched_jobstore *st;
  assert_int_equal(apsched_redis_store_create(&o, &st, NULL, 0), APSCHED_OK);
  apsched_job_record *recs[2];
  for (int i = 0; i < 2; i++) {
    recs[i] = apsched_job_record_new(i ? "two" : "one");
    apsched_trigger_parse(HOURLY, &recs[i]->trigger, NULL, 0);
    recs[i]->func = apsched_func_by_name("test.count");
    recs[i]->executor = "default";
    recs[i]->max_instances = 1;
    recs[i]->next_run_time = recs[i]->trigger_time = fixed_now(NULL);
  }
  assert_int_equal(st->vtable->add(st, recs, 2, NULL, NULL), APSCHED_OK);
  apsched_job_record *due[2];
  assert_int_equal(st->vtable->claim_due(st, fixed_now(NULL), due, 2), 2);
  for (int i = 0; i < 2; i++) {
    apsched_time_t t = due[i]->next_run_time;
    bool track;
    assert_int_equal(st->vtable->runs_open(st, due[i], &t, 1, &track), APSCHED_OK);
    assert_int_equal(st->vtable->release(st, due[i], APSCHED_TIME_NONE, APSCHED_TIME_NONE, false),
                     APSCHED_OK);
  }
  assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  assert_int_equal(st->vtable->run_starting(st, "one", fixed_now(NULL), 1), APSCHED_OK);
  char *out = ok_output(NULL, ARGS("schedulers", "--tz", "UTC", "--store", prefix_url("shared")));
  char want[64];
  snprintf(want, sizeof want, "\talpha\t");
  if (!strstr(out, want)) fail_msg("unexpected output:\n%s", out);
  snprintf(want, sizeof want, "\t%d\talive\t", (int)getpid());
  assert_non_null(strstr(out, want));
  assert_non_null(strstr(out, "\t3\t1\t1\n")); /* lease 3 s, 1 claimed, 1 running */
  assert_non_null(strstr(out, "Z\t"));             /* times in --tz UTC */
  free(out);
  apsched_jobstore_free(st);
  EXPECT_ERROR("redis prefix 'nothing_here' holds no libapsched-redis data", "schedulers",
               "--store", prefix_url("nothing_here"));
}

int main(void) {
  if (redis_server_start("none") != 0) return redis_server_unavailable();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_list_show_pause_resume_remove),
#ifdef APSCHED_CLI_HAVE_JANSSON
      cmocka_unit_test(test_export_import),
#endif
      cmocka_unit_test(test_url_errors),
      cmocka_unit_test(test_schedulers),
  };
  return cmocka_run_group_tests_name("apsched jobs on Redis", tests, NULL, NULL);
}
