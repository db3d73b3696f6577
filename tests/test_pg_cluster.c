/* Several schedulers on one PostgreSQL schema (issue 9), each a process of
 * its own (this binary again, exec'd with a --child mode), against a real
 * server (pg_server.h):
 *  - three schedulers run every due run exactly once (a record of each run
 *    in an O_APPEND file, outside the store);
 *  - max_instances = 1 holds across the processes (no two runs overlap);
 *  - a job added by one process wakes another at once (NOTIFY), though it
 *    polls only every 30 s;
 *  - a scheduler killed with SIGKILL: its claimed runs are taken over by a
 *    survivor within 2 s (its advisory lock went with its connection): an
 *    at-least-once run as attempt 2, an at-most-once run that never started
 *    as attempt 1, an at-most-once run that had started is reported lost;
 *  - a scheduler stopped (SIGSTOP) past 2 x its lease: a survivor takes its
 *    runs over, and once it continues it can neither start nor close them
 *    (fencing by owner and token).
 * Each test is bounded in time; the whole program takes well under a minute. */

#include "cluster_support.h"
#include "apsched_pg.h"
#include "stores/pg/pg_internal.h"
#include "pg_server.h"

static apsched_jobstore *store_at(const char *conninfo, const char *schema, int lease_ms) {
  apsched_pg_options o = {.conninfo = conninfo, .schema = schema, .lease_ms = lease_ms};
  apsched_jobstore *st = NULL;
  char err[256];
  if (apsched_pg_store_create(&o, &st, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "child: pg store: %s\n", err);
    return NULL;
  }
  return st;
}

/* --------------------------------------------------------- the parent */

static long count_rows(PGconn *c, const char *sql) {
  PGresult *res = PQexec(c, sql);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
  long v = atol(PQgetvalue(res, 0, 0));
  PQclear(res);
  return v;
}

/* SIGKILL: the survivor (a running scheduler) takes the runs over within
 * 2 s, though the lease is 5 s. */
static void test_failover_after_sigkill(void **state) {
  (void)state;
  char schema[32], runs[128];
  new_schema(schema, sizeof schema, "killed");
  runs_path(runs, sizeof runs, schema);
  g_runs_fd = open(runs, O_WRONLY | O_APPEND | O_CREAT, 0644);
  apsched_jobstore *st = store_at(pg_server_conninfo(), schema, 0);
  assert_non_null(st);
  apsched_time_t due = apsched_now() - APSCHED_SEC;
  apsched_job_record *recs[3] = {job("alo", due, APSCHED_HOUR, true, 1, true, "0"),
                                 job("amo-waiting", due, APSCHED_HOUR, false, 1, true, "0"),
                                 job("amo-started", due, APSCHED_HOUR, false, 1, true, "0")};
  add_jobs(st, recs, 3);
  int ready, go;
  pid_t pid = start_claimer(schema, 5000, "alo,amo-started", &ready, &go);

  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &r, NULL), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "db"), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  sleep_ms(1200); /* the claimer is alive: nothing is taken over */
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_RECOVERED), 0);

  int64_t t0 = mono_ms();
  kill(pid, SIGKILL);
  assert_int_equal(wait_exit(pid), 128 + SIGKILL);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_RECOVERED, 2));
  int64_t took = mono_ms() - t0;
  if (took > 2000) fail_msg("the runs were taken over %" PRId64 " ms after the kill", took);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 2));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 1));
  for (int i = 0; i < 2; i++) {
    int e = recorder_find(&r, APSCHED_EVENT_JOB_RECOVERED, i);
    if (strcmp(r.ev[e].job_id, "alo") == 0) assert_int_equal(r.ev[e].attempt, 2);
    else if (strcmp(r.ev[e].job_id, "amo-waiting") == 0) assert_int_equal(r.ev[e].attempt, 1);
    else fail_msg("recovered %s", r.ev[e].job_id);
  }
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_string_equal(r.ev[e].job_id, "amo-started");
  assert_non_null(strstr(r.ev[e].error, "was lost with scheduler"));
  assert_non_null(strstr(r.ev[e].error, "(at most once)"));
  /* The survivor closes what it ran: no run record is left. */
  PGconn *c = pg_server_connect();
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".runs", schema);
  for (int64_t t = mono_ms(); count_rows(c, sql) != 0 && mono_ms() - t < 5000;) sleep_ms(10);
  assert_int_equal(count_rows(c, sql), 0);
  PQfinish(c);
  apsched_free(s);
  recorder_destroy(&r);
  close(ready);
  close(go);
  close(g_runs_fd);
  g_runs_fd = -1;
  unlink(runs);
}

/* SIGSTOP past 2 x lease: the advisory lock is still held, the stale
 * heartbeat gives the runs to the survivor; continued, the stalled
 * scheduler can neither start nor close them. */
static void test_stalled_scheduler_is_fenced(void **state) {
  (void)state;
  enum { LEASE = 300 };
  char schema[32];
  new_schema(schema, sizeof schema, "stalled");
  apsched_jobstore *st = store_at(pg_server_conninfo(), schema, LEASE);
  assert_non_null(st);
  const apsched_jobstore_vtable *vt = st->vtable;
  apsched_time_t due = apsched_now() - APSCHED_SEC;
  apsched_job_record *recs[2] = {job("alo", due, APSCHED_HOUR, true, 1, true, "0"),
                                 job("amo", due, APSCHED_HOUR, false, 1, true, "0")};
  add_jobs(st, recs, 2);
  int ready, go;
  pid_t pid = start_claimer(schema, LEASE, "", &ready, &go);
  apsched_orphan_run o[4];
  assert_int_equal(vt->claim_orphans(st, o, 4), 0); /* alive */
  /* Its claim recorded both starts ahead (a start group): a stall within
   * that window (LEASE / 4) would lose the at-most-once run. Stopped once
   * its heartbeat thread took them back, it holds two runs not started. */
  PGconn *c = pg_server_connect();
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".runs WHERE started_at IS NULL", schema);
  for (int64_t t = mono_ms(); count_rows(c, sql) != 2 && mono_ms() - t < 5000;) sleep_ms(5);
  assert_int_equal(count_rows(c, sql), 2);
  /* Stopped right after a heartbeat: the survivor must wait 2 x lease. */
  char beat[200];
  snprintf(beat, sizeof beat,
           "SELECT (extract(epoch FROM heartbeat_at) * 1000000)::bigint FROM \"%s\".schedulers "
           "WHERE pid = %d", schema, (int)pid);
  long last = count_rows(c, beat);
  for (int64_t t = mono_ms(); count_rows(c, beat) == last && mono_ms() - t < 5000;) sleep_ms(1);
  int64_t t0 = mono_ms();
  kill(pid, SIGSTOP);
  int n = 0;
  while (n == 0 && mono_ms() - t0 < 10000) {
    n = vt->claim_orphans(st, o, 4);
    assert_true(n >= 0);
    if (n == 0) sleep_ms(20);
  }
  int64_t took = mono_ms() - t0;
  int committed = n > 0 ? vt->commit(st) : APSCHED_EBACKEND;
  kill(pid, SIGCONT); /* before any assertion: a failed test must not leave it stopped */
  assert_int_equal(n, 2);
  assert_int_equal(committed, APSCHED_OK);
  /* Its last heartbeat preceded the stop by a poll (1 ms) and a query. */
  if (took < 2 * LEASE - LEASE / 3 - 50)
    fail_msg("taken over after %" PRId64 " ms, before 2 x lease", took);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(o[i].attempt, strcmp(o[i].rec->id, "alo") == 0 ? 2 : 1);
    apsched_job_record_free(o[i].rec);
  }
  /* It continues: both writes find the claims gone. */
  assert_int_equal(write(go, "g", 1), 1);
  char out[256];
  read_within(ready, out, sizeof out, 20000);
  assert_int_equal(wait_exit(pid), 0);
  char want[64];
  snprintf(want, sizeof want, "start=%d,%d closed=0", APSCHED_ESTATE, APSCHED_ESTATE);
  assert_string_equal(out, want);
  /* The rows are the survivor's still, and its writes land. */
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".runs WHERE owner = '%s'", schema,
           apsched__pg_store_id(st));
  assert_int_equal(count_rows(c, sql), 2);
  apsched_run_result res[2];
  for (int i = 0; i < 2; i++) {
    const char *id = i ? "amo" : "alo";
    assert_int_equal(vt->run_starting(st, id, due, i ? 1 : 2), APSCHED_OK);
    res[i] = (apsched_run_result){.job_id = id, .scheduled_time = due, .attempt = i ? 1 : 2,
                                  .outcome = APSCHED_RUN_EXECUTED, .started_at = apsched_now(),
                                  .finished_at = apsched_now()};
  }
  assert_int_equal(vt->runs_closed(st, res, 2), APSCHED_OK);
  assert_int_equal(count_rows(c, sql), 0);
  PQfinish(c);
  close(ready);
  close(go);
  vt->destroy(st);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 8 && strcmp(argv[1], "--scheduler") == 0) return scheduler_child(argv);
  if (argc >= 8 && strcmp(argv[1], "--claimer") == 0) return claimer_child(argv);
  if (pg_server_start() != 0) return pg_server_unavailable();
  cluster_target = pg_server_conninfo();
  if (apsched_register_func(RECORD_FN, record_job) != APSCHED_OK) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_due_run_exactly_once),
      cmocka_unit_test(test_max_instances_across_schedulers),
      cmocka_unit_test(test_wakeup_across_processes),
      cmocka_unit_test(test_failover_after_sigkill),
      cmocka_unit_test(test_stalled_scheduler_is_fenced),
  };
  return cmocka_run_group_tests_name("postgresql cluster", tests, NULL, NULL);
}
