/* The chaos test of schedulers sharing one PostgreSQL schema (issue 9):
 * tests/chaos_support.h runs it (three scheduler processes, 64 jobs due
 * every second for 45 s, at least 110 SIGKILLs, one scheduler stopped past
 * 2 x its lease, PostgreSQL restarted once; exactly once checked against a
 * file the jobs append to, outside the store). This file says how to reach
 * the schema: its schedulers, runs and jobs rows, and <schema>.run_history,
 * which the store keeps for ever here (APSCHED_PG_HISTORY_FOREVER). */
#include "support.h"
#include "internal.h"
#include "apsched_pg.h"
#include "pg_server.h"
#include "chaos_support.h"

/* The test's own connection (checks of the schema between the chaos). */
static PGconn *g_db;

static int pg_store_create(const char *conninfo, const char *schema, int lease_ms, bool history,
                           apsched_jobstore **out, char *errbuf, size_t errlen) {
  apsched_pg_options o = {.conninfo = conninfo, .schema = schema, .lease_ms = lease_ms,
                          .history_retention = history ? APSCHED_PG_HISTORY_FOREVER : 0};
  return apsched_pg_store_create(&o, out, errbuf, errlen);
}

/* Rows of sql on the test's own connection, connecting again once if the
 * server restarted since its last use. */
static PGresult *query(const char *sql) {
  if (!g_db) g_db = pg_server_connect();
  for (int tries = 0;; tries++) {
    PGresult *res = PQexec(g_db, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) return res;
    if (tries == 1) fail_msg("%s: %s", sql, PQerrorMessage(g_db));
    PQclear(res);
    PQreset(g_db);
  }
}

static long count_of(const char *sql) {
  PGresult *res = query(sql);
  long v = atol(PQgetvalue(res, 0, 0));
  PQclear(res);
  return v;
}

static void pg_scheduler_id(const char *schema, pid_t pid, char *id, size_t len) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT id FROM \"%s\".schedulers WHERE pid = %d ORDER BY started_at DESC LIMIT 1",
           schema, (int)pid);
  PGresult *res = query(sql);
  id[0] = '\0';
  if (PQntuples(res) == 1) snprintf(id, len, "%s", PQgetvalue(res, 0, 0));
  PQclear(res);
}

static long pg_owned_runs(const char *schema, const char *id) {
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".runs WHERE owner = '%s'", schema, id);
  return count_of(sql);
}

static long pg_jobs_left(const char *schema) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".jobs", schema);
  return count_of(sql);
}

static long pg_runs_left(const char *schema) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".runs", schema);
  return count_of(sql);
}

static size_t pg_read_history(const char *schema, hist_row **out) {
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT job_id, scheduled_time, attempt, outcome FROM \"%s\".run_history",
           schema);
  PGresult *res = query(sql);
  size_t n = (size_t)PQntuples(res);
  hist_row *v = calloc(n ? n : 1, sizeof *v);
  for (size_t i = 0; i < n; i++) {
    snprintf(v[i].job, sizeof v[i].job, "%s", PQgetvalue(res, (int)i, 0));
    v[i].scheduled = atoll(PQgetvalue(res, (int)i, 1));
    v[i].attempt = (unsigned)atoi(PQgetvalue(res, (int)i, 2));
    snprintf(v[i].outcome, sizeof v[i].outcome, "%s", PQgetvalue(res, (int)i, 3));
  }
  PQclear(res);
  *out = v;
  return n;
}

/* A fast shutdown (SIGINT): the clients are cut off. */
static void pg_stop(void) { pg_server_stop(); }

static int pg_start(char *why, size_t len) {
  int rc = pg_server_start();
  if (rc != 0) snprintf(why, len, "%s", pg_srv.why);
  return rc;
}

static chaos_backend backend = {
    .history = "run_history",
    .store_create = pg_store_create,
    .scheduler_id = pg_scheduler_id,
    .owned_runs = pg_owned_runs,
    .jobs_left = pg_jobs_left,
    .runs_left = pg_runs_left,
    .read_history = pg_read_history,
    .server_stop = pg_stop,
    .server_start = pg_start,
};

static void test_chaos(void **state) {
  (void)state;
  chaos_run(&backend, "chaos");
  PQfinish(g_db);
  g_db = NULL;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 7 && strcmp(argv[1], "--chaos") == 0) return chaos_child(&backend, argv);
  if (pg_server_start() != 0) return pg_server_unavailable();
  backend.target = pg_server_conninfo();
  if (apsched_register_func(CHAOS_FN, chaos_job) != APSCHED_OK) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chaos),
  };
  return cmocka_run_group_tests_name("postgresql chaos", tests, NULL, NULL);
}
