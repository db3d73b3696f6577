/* `apsched jobs --store postgresql://...`, run as a separate process against
 * the PostgreSQL server this program starts (pg_server.h): list, show,
 * pause, resume, remove on a schema a scheduler filled, ?schema=, the
 * postgres:// spelling, export -> import into a new schema, a broken row,
 * and the errors (no such schema, a bad parameter, no server). */
#include "cli_store_support.h"
#include "pg_server.h"

#include "apsched_pg.h"

static char url[512];

/* URL of the test server with ?schema=NAME added (scheme replaced when given). */
static const char *schema_url(const char *schema, const char *scheme) {
  static char bufs[4][600];
  static int next;
  char *b = bufs[next++ % 4];
  const char *rest = strstr(url, "://");
  snprintf(b, 600, "%s%s&schema=%s", scheme ? scheme : "postgresql", rest, schema);
  return b;
}

/* The seeded jobs in schema. */
static void seed_schema(const char *schema) {
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema};
  apsched_jobstore *st;
  char err[256] = "";
  if (apsched_pg_store_create(&o, &st, err, sizeof err) != APSCHED_OK) fail_msg("%s", err);
  seed_store(st);
}

static void test_list_show_pause_resume_remove(void **state) {
  (void)state;
  seed_schema("cli");
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", schema_url("cli", NULL), "list");
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", schema_url("cli", "postgres"), "list");
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", schema_url("c%6ci", "PostgreSQL"), "list"); /* 'l' */
  EXPECT_OUT(SHOW_ALPHA, "jobs", "--store", schema_url("cli", NULL), "show", "alpha");
  EXPECT_OUT("", "jobs", "--store", schema_url("cli", NULL), "pause", "alpha");
  EXPECT_OUT("", "jobs", "--store", schema_url("cli", NULL), "resume", "gamma");
  EXPECT_OUT("gamma\ttest.count\t" ONCE "\t2030-01-01T00:00:00Z\n"
             "alpha\tAlpha job\t" HOURLY "\tpaused\n",
             "jobs", "--store", schema_url("cli", NULL), "list");
  EXPECT_OUT("", "jobs", "--store", schema_url("cli", NULL), "remove", "alpha");
  EXPECT_OUT("gamma\ttest.count\t" ONCE "\t2030-01-01T00:00:00Z\n", "jobs", "--store",
             schema_url("cli", NULL), "list");
  EXPECT_ERROR("jobs remove: no job 'alpha' in ", "jobs", "--store", schema_url("cli", NULL),
               "remove", "alpha");
  /* The default schema is "apsched": empty here, and list does not create it. */
  EXPECT_ERROR("postgresql schema 'apsched' holds no libapsched-pg tables", "jobs", "--store", url,
               "list");
}

static void test_broken_row(void **state) {
  (void)state;
  seed_schema("cli_broken");
  PGconn *c = pg_server_connect();
  PGresult *res = PQexec(c, "UPDATE cli_broken.jobs SET \"trigger\" = 'bogus[x=1]' WHERE id = 'gamma'");
  assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
  PQclear(res);
  PQfinish(c);
#define WHY "trigger 'bogus[x=1]': unknown trigger kind 'bogus'"
  EXPECT_OUT("alpha\tAlpha job\t" HOURLY "\t2026-01-01T00:00:00Z\n"
             "gamma\ttest.count\tbogus[x=1]\tbroken: " WHY "\n",
             "jobs", "--store", schema_url("cli_broken", NULL), "list");
  EXPECT_ERROR("cannot be decoded (" WHY "): only remove works on it", "jobs", "--store",
               schema_url("cli_broken", NULL), "resume", "gamma");
  EXPECT_OUT("", "jobs", "--store", schema_url("cli_broken", NULL), "remove", "gamma");
  EXPECT_OUT("alpha\tAlpha job\t" HOURLY "\t2026-01-01T00:00:00Z\n", "jobs", "--store",
             schema_url("cli_broken", NULL), "list");
#undef WHY
}

#ifdef APSCHED_CLI_HAVE_JANSSON
static void test_export_import(void **state) {
  (void)state;
  seed_schema("cli_from");
  char path[] = "/tmp/apsched-pg-cli-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  char *exported = ok_output(NULL, ARGS("jobs", "--store", schema_url("cli_from", NULL), "export"));
  assert_int_equal(write(fd, exported, strlen(exported)), (ssize_t)strlen(exported));
  close(fd);
  /* import creates the schema. */
  EXPECT_OUT("", "jobs", "--store", schema_url("cli_to", NULL), "import", path);
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", schema_url("cli_to", NULL), "list");
  char *again = ok_output(NULL, ARGS("jobs", "--store", schema_url("cli_to", NULL), "export"));
  assert_string_equal(exported, again);
  /* The schedule policies and the failure count travel with the job. */
  if (!strstr(exported, ALPHA_POLICIES_JSON)) fprintf(stderr, "export:\n%s", exported);
  assert_non_null(strstr(exported, ALPHA_POLICIES_JSON));
  EXPECT_OUT(SHOW_ALPHA, "jobs", "--store", schema_url("cli_to", NULL), "show", "alpha");
  free(exported);
  free(again);
  unlink(path);
}
#endif

static void test_url_errors(void **state) {
  (void)state;
  EXPECT_ERROR(": schema: a bad %XX escape", "jobs", "--store", schema_url("a%zz", NULL), "list");
  EXPECT_ERROR(": schema: no name (schema=NAME)", "jobs", "--store",
               "postgresql:///db?host=/tmp&schema", "list");
  EXPECT_ERROR("postgresql:///db?frobnicate=1: postgresql store: conninfo: invalid URI query "
               "parameter: \"frobnicate\"",
               "jobs", "--store", "postgresql:///db?frobnicate=1", "list");
  EXPECT_ERROR("jobs list: postgresql:///db?host=/nonexistent-dir: postgresql schema 'apsched': "
               "cannot connect: connection to server on socket \"/nonexistent-dir/.s.PGSQL.5432\" "
               "failed: No such file or directory",
               "jobs", "--store", "postgresql:///db?host=/nonexistent-dir", "list");
  char *help = ok_output(NULL, ARGS("jobs", "--help"));
  assert_non_null(strstr(help, "?schema=NAME"));
  free(help);
}

/* A scheduler (a store registered on the schema) in a child process that
 * ends without closing it, as a crash would: its row stays, dead. */
static void crashed_scheduler(const char *schema) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema,
                            .scheduler_name = "beta", .lease_ms = 100};
    apsched_jobstore *st;
    apsched_orphan_run orphans[1];
    if (apsched_pg_store_create(&o, &st, NULL, 0) != APSCHED_OK) _exit(2);
    if (st->vtable->claim_orphans(st, orphans, 1) != 0) _exit(3); /* registers */
    if (st->vtable->commit(st) != APSCHED_OK) _exit(4);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int lines_of(const char *text) {
  int n = 0;
  for (const char *p = text; *p; p++) n += *p == '\n';
  return n;
}

/* The fields of the line of `apsched schedulers` naming name, after id,
 * name, host and pid: "alive\t...". NULL if no line names it. */
static const char *fields_after_pid(const char *out, const char *name) {
  char key[64];
  snprintf(key, sizeof key, "\t%s\t", name);
  const char *p = strstr(out, key);
  for (int tabs = 0; p && tabs < 3; tabs++) p = strchr(p + 1, '\t');
  return p ? p + 1 : NULL;
}

/* apsched schedulers: a live scheduler with its lease and its runs (one
 * claimed, one started), a crashed one shown dead, then pruned once it is
 * 10 leases dead; and what is not a shared store. */
static void test_schedulers(void **state) {
  (void)state;
  const char *schema = "shared";
  crashed_scheduler(schema);
  assert_int_equal(apsched_register_func("test.count", count_job), APSCHED_OK);
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema,
                          .scheduler_name = "alpha", .lease_ms = 3000};
  apsched_jobstore *st;
  assert_int_equal(apsched_pg_store_create(&o, &st, NULL, 0), APSCHED_OK);
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
  PGconn *c = pg_server_connect();
  for (int i = 0; i < 500; i++) {
    PGresult *res = PQexec(c, "SELECT count(*) FROM shared.runs WHERE started_at IS NULL");
    bool back = PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "1") == 0;
    PQclear(res);
    if (back) break;
    struct timespec ms = {0, 10000000};
    nanosleep(&ms, NULL);
  }
  PQfinish(c);

  char *out = ok_output(NULL, ARGS("schedulers", "--tz", "UTC", "--store", schema_url(schema, NULL)));
  /* The crashed one's server session may outlive it by a moment. */
  for (int i = 0; i < 200 && strstr(out, "\tbeta\t") && !strstr(out, "\tdead\t"); i++) {
    free(out);
    struct timespec ms = {0, 10000000};
    nanosleep(&ms, NULL);
    out = ok_output(NULL, ARGS("schedulers", "--tz", "UTC", "--store", schema_url(schema, NULL)));
  }
  const char *alpha = fields_after_pid(out, "alpha"), *beta = fields_after_pid(out, "beta");
  if (!alpha || !beta) fail_msg("unexpected output:\n%s", out);
  assert_int_equal(lines_of(out), 2);
  assert_true(alpha < beta); /* live ones first */
  assert_true(strncmp(alpha, "alive\t", 6) == 0);
  assert_true(strncmp(beta, "dead\t", 5) == 0);
  char pid_field[32];
  snprintf(pid_field, sizeof pid_field, "\t%d\talive\t", (int)getpid());
  assert_non_null(strstr(out, pid_field));
  /* heartbeat, start, lease 3 s, 1 claimed, 1 running */
  const char *tail = strchr(strchr(strchr(alpha, '\t') + 1, '\t') + 1, '\t');
  if (strncmp(tail, "\t3\t1\t1\n", 7) != 0) fail_msg("alpha's lease and runs:\n%s", out);
  tail = strchr(strchr(strchr(beta, '\t') + 1, '\t') + 1, '\t');
  if (strncmp(tail, "\t0.1\t0\t0\n", 9) != 0) fail_msg("beta's lease and runs:\n%s", out);
  assert_non_null(strstr(alpha, "Z\t")); /* times in --tz UTC */
  free(out);

  /* beta: 10 x 100 ms after its last heartbeat, alpha's heartbeat (every
   * second) removes its row. */
  out = ok_output(NULL, ARGS("schedulers", "--store", schema_url(schema, NULL)));
  for (int i = 0; i < 100 && lines_of(out) != 1; i++) {
    free(out);
    struct timespec ms = {0, 50000000};
    nanosleep(&ms, NULL);
    out = ok_output(NULL, ARGS("schedulers", "--store", schema_url(schema, NULL)));
  }
  assert_int_equal(lines_of(out), 1);
  assert_non_null(strstr(out, "\talpha\t"));
  free(out);
  apsched_jobstore_free(st);

  EXPECT_ERROR("schedulers: --store: sqlite:///jobs.db: a sqlite store serves one scheduler at a "
               "time; schedulers lists the schedulers sharing a postgresql:// or redis:// store",
               "schedulers", "--store", "sqlite:///jobs.db");
  EXPECT_ERROR("schedulers: --store URL is needed", "schedulers");
  EXPECT_ERROR("schedulers: unexpected argument 'list'", "schedulers", "--store",
               schema_url(schema, NULL), "list");
  EXPECT_ERROR("postgresql schema 'nothing_here' holds no libapsched-pg tables", "schedulers",
               "--store", schema_url("nothing_here", NULL));
}

int main(void) {
  if (pg_server_start() != 0) return pg_server_unavailable();
  snprintf(url, sizeof url, "%s", pg_server_url());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_list_show_pause_resume_remove),
      cmocka_unit_test(test_broken_row),
#ifdef APSCHED_CLI_HAVE_JANSSON
      cmocka_unit_test(test_export_import),
#endif
      cmocka_unit_test(test_url_errors),
      cmocka_unit_test(test_schedulers),
  };
  return cmocka_run_group_tests_name("apsched jobs on PostgreSQL", tests, NULL, NULL);
}
