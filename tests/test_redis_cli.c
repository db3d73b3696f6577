/* `apsched jobs --store unix://...` and `apsched schedulers`, run as a
 * separate process against the Redis server this program starts
 * (redis_server.h): list, show, pause, resume, remove under a prefix a
 * scheduler filled, ?prefix=, export -> import under a new prefix, the
 * live schedulers, and the errors (no such prefix, a bad parameter, no
 * server). */
#include "cli_store_support.h"
#include "redis_server.h"

#include "apsched_redis.h"

/* The test server's URL with &prefix=NAME (or ?prefix=NAME) added. */
static const char *prefix_url(const char *prefix) {
  static char bufs[4][600];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, 600, "%s?prefix=%s", redis_server_url(), prefix);
  return b;
}

/* The seeded jobs under prefix. */
static void seed_prefix(const char *prefix) {
  apsched_redis_options o = {.url = redis_server_url(), .prefix = prefix};
  apsched_jobstore *st;
  char err[256] = "";
  if (apsched_redis_store_create(&o, &st, err, sizeof err) != APSCHED_OK) fail_msg("%s", err);
  seed_store(st);
}

static void test_list_show_pause_resume_remove(void **state) {
  (void)state;
  seed_prefix("cli");
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", prefix_url("cli"), "list");
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", prefix_url("c%6ci"), "list"); /* 'l' */
  EXPECT_OUT(SHOW_ALPHA, "jobs", "--store", prefix_url("cli"), "show", "alpha");
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
  /* The schedule policies and the failure count travel with the job. */
  if (!strstr(exported, ALPHA_POLICIES_JSON)) fprintf(stderr, "export:\n%s", exported);
  assert_non_null(strstr(exported, ALPHA_POLICIES_JSON));
  EXPECT_OUT(SHOW_ALPHA, "jobs", "--store", prefix_url("cli_to"), "show", "alpha");
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
  /* That start recorded the start of "two" ahead (a start group); unused,
   * it is taken back within 250 ms: then "two" is claimed, not running. */
  char *out = ok_output(NULL, ARGS("schedulers", "--tz", "UTC", "--store", prefix_url("shared")));
  for (int i = 0; i < 300 && !strstr(out, "\t3\t1\t1\n"); i++) {
    free(out);
    struct timespec ms = {0, 10000000};
    nanosleep(&ms, NULL);
    out = ok_output(NULL, ARGS("schedulers", "--tz", "UTC", "--store", prefix_url("shared")));
  }
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
