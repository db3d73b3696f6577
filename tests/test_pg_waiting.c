/* Runs that wait in a PostgreSQL schema shared by two schedulers (contract
 * version 5; the single-scheduler behaviour of every policy is the
 * conformance kit's, run by test_pg_store):
 *  - a run that waits for another scheduler's run starts once that run
 *    ends, and it outlives the scheduler that made it wait;
 *  - cancel_other asks a run of the other scheduler to stop: it hears it
 *    within milliseconds (NOTIFY "stop"), not at its next heartbeat;
 *  - removing the job drops its waiting runs.
 * Two schedulers in this process, each with its own store (connections,
 * scheduler id, heartbeat thread) on one schema of a private server. */
#include "support.h"
#include "apsched_pg.h"
#include "pg_server.h"

#include <inttypes.h>

#define GATE_FN "pg_waiting.gate"

/* The job: runs until released, or until asked to stop. */
static struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int started, released;
  apsched_time_t times[16];
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, {0}};

static int gate_job(apsched_run_ctx *run) {
  pthread_mutex_lock(&gate.m);
  int me = gate.started++;
  if (me < 16) gate.times[me] = apsched_run_scheduled_time(run);
  pthread_cond_broadcast(&gate.c);
  while (gate.released <= me && !apsched_run_cancelled(run)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 2 * 1000 * 1000; /* cancellation is a flag: looked at every 2 ms */
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&gate.c, &gate.m, &ts);
  }
  pthread_mutex_unlock(&gate.m);
  return 0;
}

static void gate_reset(void) {
  pthread_mutex_lock(&gate.m);
  gate.started = gate.released = 0;
  pthread_mutex_unlock(&gate.m);
}

static void gate_release(void) {
  pthread_mutex_lock(&gate.m);
  gate.released++;
  pthread_cond_broadcast(&gate.c);
  pthread_mutex_unlock(&gate.m);
}

static int gate_started(void) {
  pthread_mutex_lock(&gate.m);
  int n = gate.started;
  pthread_mutex_unlock(&gate.m);
  return n;
}

static bool gate_wait_started(int n) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&gate.m);
  while (gate.started < n && pthread_cond_timedwait(&gate.c, &gate.m, &deadline) == 0) {
  }
  bool ok = gate.started >= n;
  pthread_mutex_unlock(&gate.m);
  return ok;
}

/* One scheduler with a store on schema and a thread pool. */
typedef struct node {
  apsched_scheduler *s;
  recorder rec;
  log_recorder log;
} node;

static void node_start(node *n, const char *schema) {
  recorder_init(&n->rec);
  memset(&n->log, 0, sizeof n->log);
  pthread_mutex_init(&n->log.lock, NULL);
  apsched_config cfg = {.timezone = "UTC", .log = record_log, .log_user_data = &n->log,
                        .log_level = APSCHED_LOG_INFO};
  assert_int_equal(apsched_create(&cfg, &n->s), APSCHED_OK);
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema};
  apsched_jobstore *st;
  char err[256];
  if (apsched_pg_store_create(&o, &st, err, sizeof err) != APSCHED_OK) fail_msg("pg store: %s", err);
  assert_int_equal(apsched_add_jobstore(n->s, st, "default"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(n->s, record_event, APSCHED_EVENT_EVERYTHING, &n->rec, NULL),
                   APSCHED_OK);
  assert_int_equal(apsched_start(n->s, false), APSCHED_OK);
}

static void node_stop(node *n) {
  if (!n->s) return;
  assert_int_equal(apsched_shutdown(n->s, true), APSCHED_OK);
  apsched_free(n->s);
  n->s = NULL;
  recorder_destroy(&n->rec);
  pthread_mutex_destroy(&n->log.lock);
}

/* A paused job (only runs asked for run): one instance across schedulers. */
static void add_paused(node *n, const char *id, apsched_overlap overlap) {
  apsched_trigger *t;
  apsched_interval_options io = {.hours = 1};
  assert_int_equal(apsched_trigger_interval(&io, &t, NULL, 0), APSCHED_OK);
  apsched_job_options o = {.id = id, .func_name = GATE_FN, .trigger = t, .paused = true,
                           .overlap = overlap, .max_instances = 1};
  assert_int_equal(apsched_add_job(n->s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
}

static int schema_seq;

/* Schedulers a and b on a new schema (stem_N, into schema); job id of a's
 * with overlap, running in a (run now). */
static void one_running(const char *stem, char *schema, size_t len, const char *id,
                        apsched_overlap overlap, node *a, node *b) {
  snprintf(schema, len, "%s_%d", stem, schema_seq++);
  gate_reset();
  node_start(a, schema);
  node_start(b, schema);
  add_paused(a, id, overlap);
  assert_int_equal(apsched_run_job_now(a->s, id, NULL), APSCHED_OK);
  assert_true(gate_wait_started(1));
}

static long count_rows(PGconn *c, const char *sql) {
  PGresult *res = PQexec(c, sql);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
  long v = atol(PQgetvalue(res, 0, 0));
  PQclear(res);
  return v;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* B's run now waits for A's run (buffer_one); B goes away; A's run ends
 * and A starts the run B left waiting, once. */
static void test_waiting_run_outlives_its_scheduler(void **state) {
  (void)state;
  char schema[32], sql[160];
  node a, b;
  one_running("outlive", schema, sizeof schema, "w", APSCHED_OVERLAP_BUFFER_ONE, &a, &b);
  assert_int_equal(apsched_run_job_now(b.s, "w", NULL), APSCHED_OK);
  assert_true(recorder_wait(&b.rec, APSCHED_EVENT_JOB_BUFFERED, 1));
  assert_true(log_contains(&b.log, "waits for a running one to end (overlap policy buffer_one, 1 waiting)"));
  PGconn *c = pg_server_connect();
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".runs WHERE waiting", schema);
  assert_int_equal(count_rows(c, sql), 1);
  node_stop(&b);
  assert_int_equal(count_rows(c, sql), 1); /* the store's, not B's */
  assert_int_equal(gate_started(), 1);
  gate_release();
  assert_true(gate_wait_started(2));
  assert_true(log_contains(&a.log, "(its run waited for a running one)"));
  gate_release();
  assert_true(recorder_wait(&a.rec, APSCHED_EVENT_JOB_EXECUTED, 2));
  assert_int_equal(gate_started(), 2);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".runs", schema);
  for (int64_t t = mono_ms(); count_rows(c, sql) != 0 && mono_ms() - t < 5000;) {
    struct timespec ms = {0, 5000000};
    nanosleep(&ms, NULL);
  }
  assert_int_equal(count_rows(c, sql), 0);
  PQfinish(c);
  node_stop(&a);
}

/* cancel_other: B's run now asks A's running run to stop; A hears it at
 * once (not at its next heartbeat, lease / 3 = 1.7 s away), the run ends
 * cancelled in A, and the waiting run starts. */
static void test_cancel_other_reaches_the_other_scheduler(void **state) {
  (void)state;
  char schema[32];
  node a, b;
  one_running("cancel", schema, sizeof schema, "c", APSCHED_OVERLAP_CANCEL_OTHER, &a, &b);
  int64_t t0 = mono_ms();
  assert_int_equal(apsched_run_job_now(b.s, "c", NULL), APSCHED_OK);
  assert_true(recorder_wait(&a.rec, APSCHED_EVENT_JOB_ERROR, 1));
  int64_t took = mono_ms() - t0;
  int e = recorder_find(&a.rec, APSCHED_EVENT_JOB_ERROR, 0);
  assert_non_null(strstr(a.rec.ev[e].error, "cancelled: a newer run of the job is due"));
  assert_true(log_contains(&b.log, "asking the scheduler that runs it to stop its run"));
  assert_true(log_contains(&a.log, "asking to stop its run scheduled at"));
  if (took > 1000) fail_msg("the other scheduler stopped its run %" PRId64 " ms after the request", took);
  /* The waiting run starts (in either scheduler), once. */
  assert_true(gate_wait_started(2));
  gate_release();
  gate_release();
  struct timespec settle = {0, 200 * 1000 * 1000};
  nanosleep(&settle, NULL);
  assert_int_equal(gate_started(), 2);
  node_stop(&b);
  node_stop(&a);
}

/* Removing a job drops its waiting runs (its running one ends). */
static void test_remove_drops_waiting_runs(void **state) {
  (void)state;
  char schema[32], sql[160];
  node a, b;
  one_running("remove", schema, sizeof schema, "r", APSCHED_OVERLAP_BUFFER_ALL, &a, &b);
  assert_int_equal(apsched_run_job_now(b.s, "r", NULL), APSCHED_OK);
  assert_int_equal(apsched_run_job_now(b.s, "r", NULL), APSCHED_OK);
  assert_true(recorder_wait(&b.rec, APSCHED_EVENT_JOB_BUFFERED, 2));
  assert_true(log_contains(&b.log, "(overlap policy buffer_all, 2 waiting)"));
  PGconn *c = pg_server_connect();
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".runs WHERE waiting", schema);
  assert_int_equal(count_rows(c, sql), 2);
  assert_int_equal(apsched_remove_job(b.s, "r", NULL), APSCHED_OK);
  assert_int_equal(count_rows(c, sql), 0);
  gate_release();
  assert_true(recorder_wait(&a.rec, APSCHED_EVENT_JOB_EXECUTED, 1));
  struct timespec settle = {0, 200 * 1000 * 1000};
  nanosleep(&settle, NULL);
  assert_int_equal(gate_started(), 1);
  PQfinish(c);
  node_stop(&b);
  node_stop(&a);
}

int main(void) {
  if (pg_server_start() != 0) return pg_server_unavailable();
  if (apsched_register_func(GATE_FN, gate_job) != APSCHED_OK) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_waiting_run_outlives_its_scheduler),
      cmocka_unit_test(test_cancel_other_reaches_the_other_scheduler),
      cmocka_unit_test(test_remove_drops_waiting_runs),
  };
  return cmocka_run_group_tests_name("postgresql waiting runs", tests, NULL, NULL);
}
