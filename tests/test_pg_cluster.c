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

#include "support.h"
#include "internal.h"
#include "apsched_pg.h"
#include "stores/pg/pg_internal.h"
#include "pg_server.h"
#include "pg_cluster_support.h"

#define RECORD_FN "cluster.record"

/* ------------------------------------------------------ the job (children) */

/* Sleeps as long as its byte argument says (milliseconds, as text), then
 * appends "job scheduled attempt pid start end" in one write. */
static int record_job(apsched_run_ctx *run) {
  size_t len = 0;
  const char *arg = apsched_run_arg_bytes(run, &len);
  char ms[16] = "0";
  if (len > 0 && len < sizeof ms) memcpy(ms, arg, len), ms[len] = '\0';
  apsched_time_t start = apsched_now();
  if (atoi(ms) > 0) sleep_ms(atoi(ms));
  return record_line(run, start, apsched_now());
}

/* argv: --scheduler CONNINFO SCHEMA RUNS_FILE RUN_MS MAX_WAIT_MS READY_FD
 * A scheduler on the schema for RUN_MS; "R" on READY_FD once started. */
static int scheduler_child(char **argv) {
  g_runs_fd = open(argv[4], O_WRONLY | O_APPEND | O_CREAT, 0644);
  int run_ms = atoi(argv[5]), ready = atoi(argv[7]);
  if (g_runs_fd < 0 || apsched_register_func(RECORD_FN, record_job) != APSCHED_OK) return 2;
  apsched_config cfg = {.timezone = "UTC", .max_wait = atoll(argv[6]) * APSCHED_MSEC};
  apsched_scheduler *s;
  if (apsched_create(&cfg, &s) != APSCHED_OK) return 2;
  apsched_jobstore *st = store_at(argv[2], argv[3], 0);
  if (!st || apsched_add_jobstore(s, st, "db") != APSCHED_OK) return 2;
  if (apsched_start(s, false) != APSCHED_OK) return 2;
  if (write(ready, "R", 1) != 1) return 2;
  sleep_ms(run_ms);
  apsched_shutdown(s, true);
  apsched_free(s);
  return 0;
}

/* argv: --claimer CONNINFO SCHEMA LEASE_MS READY_FD GO_FD START_IDS
 * Claims every due job through the store's calls, records its runs, pauses
 * the jobs, commits, starts the runs of the jobs named in START_IDS
 * (comma-separated), writes "R", then waits for a byte on GO_FD (it may be
 * killed or stopped meanwhile). Then tries to start and close every run
 * and writes "start=RC,... closed=RC" to READY_FD. */
static int claimer_child(char **argv) {
  apsched_jobstore *st = store_at(argv[2], argv[3], atoi(argv[4]));
  int ready = atoi(argv[5]), go = atoi(argv[6]);
  if (!st) return 2;
  const apsched_jobstore_vtable *vt = st->vtable;
  apsched_job_record *due[8];
  int n = vt->claim_due(st, apsched_now(), due, 8);
  if (n <= 0) return 3;
  char ids[8][64];
  apsched_time_t times[8];
  for (int i = 0; i < n; i++) {
    bool track = false;
    snprintf(ids[i], sizeof ids[i], "%s", due[i]->id);
    times[i] = due[i]->next_run_time;
    if (vt->runs_open(st, due[i], &times[i], 1, &track) != APSCHED_OK || !track) return 4;
    if (vt->release(st, due[i], APSCHED_TIME_NONE, APSCHED_TIME_NONE, false) != APSCHED_OK) return 5;
  }
  if (vt->commit(st) != APSCHED_OK) return 6;
  for (int i = 0; i < n; i++) {
    char key[66];
    snprintf(key, sizeof key, ",%s,", ids[i]);
    char list[512];
    snprintf(list, sizeof list, ",%s,", argv[7]);
    if (strstr(list, key) && vt->run_starting(st, ids[i], times[i], 1) != APSCHED_OK) return 7;
  }
  if (write(ready, "R", 1) != 1) return 8;
  char b;
  if (read(go, &b, 1) != 1) return 9;
  char out[256];
  size_t len = (size_t)snprintf(out, sizeof out, "start=");
  apsched_run_result results[8];
  for (int i = 0; i < n; i++) {
    len += (size_t)snprintf(out + len, sizeof out - len, "%s%d", i ? "," : "",
                            vt->run_starting(st, ids[i], times[i], 1));
    results[i] = (apsched_run_result){.job_id = ids[i], .scheduled_time = times[i], .attempt = 1,
                                      .outcome = APSCHED_RUN_EXECUTED, .started_at = apsched_now(),
                                      .finished_at = apsched_now()};
  }
  len += (size_t)snprintf(out + len, sizeof out - len, " closed=%d", vt->runs_closed(st, results, (size_t)n));
  if (write(ready, out, len) != (ssize_t)len) return 10;
  vt->destroy(st);
  return 0;
}

/* --------------------------------------------------------- the parent */

/* A job record of RECORD_FN: every `every` us from start; arg: the run's
 * length in ms. */
static apsched_job_record *job(const char *id, apsched_time_t start, int64_t every_us, bool alo,
                               uint16_t max_instances, bool coalesce, const char *run_ms) {
  return cluster_job(id, RECORD_FN, every(every_us, start), start, alo, max_instances, coalesce,
                     run_ms);
}

/* Starts k schedulers for run_ms; waits until all run. */
static void start_schedulers(pid_t *pids, int k, const char *schema, const char *runs, int run_ms,
                             int max_wait_ms) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  char a_run[16], a_wait[16], a_fd[16];
  snprintf(a_run, sizeof a_run, "%d", run_ms);
  snprintf(a_wait, sizeof a_wait, "%d", max_wait_ms);
  snprintf(a_fd, sizeof a_fd, "%d", fds[1]);
  const char *args[] = {schema, runs, a_run, a_wait, a_fd, NULL};
  for (int i = 0; i < k; i++) pids[i] = spawn("--scheduler", args);
  close(fds[1]);
  for (int got = 0; got < k;) {
    char buf[8];
    read_within(fds[0], buf, sizeof buf, 20000);
    if (!buf[0]) fail_msg("only %d of %d schedulers started", got, k);
    got += (int)strlen(buf);
  }
  close(fds[0]);
}

/* Every due run of 24 jobs (every 250 ms, half of them at least once),
 * exactly once, with three schedulers sharing them. */
static void test_every_due_run_exactly_once(void **state) {
  (void)state;
  char schema[32], runs[128];
  new_schema(schema, sizeof schema, "once");
  runs_path(runs, sizeof runs, schema);
  apsched_jobstore *st = store_at(pg_server_conninfo(), schema, 0);
  assert_non_null(st);
  pid_t pids[3];
  start_schedulers(pids, 3, schema, runs, 3000, 1000);
  apsched_time_t start = apsched_now() + 300 * APSCHED_MSEC;
  apsched_job_record *recs[24];
  for (int i = 0; i < 24; i++) {
    char id[16];
    snprintf(id, sizeof id, "j%02d", i);
    recs[i] = job(id, start + i * 10 * APSCHED_MSEC, 250 * APSCHED_MSEC, i % 2, 1, false, "0");
  }
  add_jobs(st, recs, 24);
  for (int i = 0; i < 3; i++) assert_int_equal(wait_exit(pids[i]), 0);

  run_line *v;
  size_t n = read_runs(runs, &v);
  qsort(v, n, sizeof *v, by_job_time);
  int per_job[24] = {0}, pids_seen = 0, first_pid = n ? v[0].pid : 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i].pid != first_pid) pids_seen = 1;
    int j = atoi(v[i].job + 1);
    per_job[j]++;
    if (i > 0 && strcmp(v[i].job, v[i - 1].job) == 0) {
      if (v[i].scheduled == v[i - 1].scheduled)
        fail_msg("%s at %" PRId64 " ran twice (pids %d and %d)", v[i].job, v[i].scheduled,
                 v[i].pid, v[i - 1].pid);
      if (v[i].scheduled != v[i - 1].scheduled + 250 * APSCHED_MSEC)
        fail_msg("%s: no run between %" PRId64 " and %" PRId64, v[i].job, v[i - 1].scheduled,
                 v[i].scheduled);
    } else {
      assert_int_equal(v[i].scheduled, start + j * 10 * APSCHED_MSEC); /* from its first */
    }
    assert_int_equal(v[i].attempt, 1);
  }
  for (int j = 0; j < 24; j++)
    if (per_job[j] < 6) fail_msg("job j%02d ran %d times in about 2.5 s", j, per_job[j]);
  assert_true(pids_seen); /* shared, not one process doing all */
  free(v);
  unlink(runs);
  st->vtable->destroy(st);
}

/* max_instances = 1 across the processes: runs of 150 ms every 50 ms never
 * overlap, whichever scheduler runs them. */
static void test_max_instances_across_schedulers(void **state) {
  (void)state;
  char schema[32], runs[128];
  new_schema(schema, sizeof schema, "instances");
  runs_path(runs, sizeof runs, schema);
  apsched_jobstore *st = store_at(pg_server_conninfo(), schema, 0);
  assert_non_null(st);
  pid_t pids[3];
  start_schedulers(pids, 3, schema, runs, 2500, 100);
  apsched_job_record *rec = job("single", apsched_now(), 50 * APSCHED_MSEC, false, 1, true, "150");
  add_jobs(st, &rec, 1);
  for (int i = 0; i < 3; i++) assert_int_equal(wait_exit(pids[i]), 0);
  run_line *v;
  size_t n = read_runs(runs, &v);
  assert_true(n >= 3);
  for (size_t i = 0; i < n; i++)
    for (size_t k = i + 1; k < n; k++)
      if (v[i].start < v[k].end && v[k].start < v[i].end)
        fail_msg("runs overlap: pid %d %" PRId64 "..%" PRId64 " and pid %d %" PRId64 "..%" PRId64,
                 v[i].pid, v[i].start, v[i].end, v[k].pid, v[k].start, v[k].end);
  free(v);
  unlink(runs);
  st->vtable->destroy(st);
}

/* A job added here starts in a scheduler that polls only every 30 s: the
 * NOTIFY of the add woke it. */
static void test_wakeup_across_processes(void **state) {
  (void)state;
  char schema[32], runs[128];
  new_schema(schema, sizeof schema, "wakeup");
  runs_path(runs, sizeof runs, schema);
  apsched_jobstore *st = store_at(pg_server_conninfo(), schema, 0);
  assert_non_null(st);
  pid_t pid;
  start_schedulers(&pid, 1, schema, runs, 4000, 30000);
  sleep_ms(300); /* its loop is asleep by now (nothing is due) */
  int64_t t0 = mono_ms();
  apsched_job_record *rec = job("now", apsched_now(), 3600 * APSCHED_SEC, false, 1, true, "0");
  add_jobs(st, &rec, 1);
  run_line *v = NULL;
  size_t n = 0;
  while (n == 0 && mono_ms() - t0 < 3000) {
    free(v);
    n = read_runs(runs, &v);
    if (n == 0) sleep_ms(5);
  }
  int64_t took = mono_ms() - t0;
  assert_int_equal(n, 1);
  if (took > 1500) fail_msg("the job started %" PRId64 " ms after it was added", took);
  free(v);
  kill(pid, SIGKILL);
  wait_exit(pid);
  unlink(runs);
  st->vtable->destroy(st);
}

/* Starts a claimer child on the schema's due jobs; returns once it has
 * claimed them (its pipe ends in *ready, *go). */
static pid_t start_claimer(const char *schema, int lease_ms, const char *start_ids, int *ready,
                           int *go) {
  int r[2], g[2];
  assert_int_equal(pipe(r), 0);
  assert_int_equal(pipe(g), 0);
  char a_lease[16], a_r[16], a_g[16];
  snprintf(a_lease, sizeof a_lease, "%d", lease_ms);
  snprintf(a_r, sizeof a_r, "%d", r[1]);
  snprintf(a_g, sizeof a_g, "%d", g[0]);
  const char *args[] = {schema, a_lease, a_r, a_g, start_ids, NULL};
  pid_t pid = spawn("--claimer", args);
  close(r[1]);
  close(g[0]);
  char buf[8];
  read_within(r[0], buf, sizeof buf, 20000);
  if (strcmp(buf, "R") != 0) fail_msg("the claimer did not claim (exit %d)", wait_exit(pid));
  *ready = r[0];
  *go = g[1];
  return pid;
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
  /* Its last heartbeat may precede the stop by up to lease / 3. */
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
  PGconn *c = pg_server_connect();
  char sql[200];
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
