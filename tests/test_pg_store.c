/* The PostgreSQL job store (libapsched-pg) against a real server started
 * for this program (pg_server.h): the conformance kit (each store in a
 * fresh schema), the readable schema, restarts, a newer schema refused
 * untouched, bad options, refusals at add, rows it cannot decode, and lost
 * connections (a terminated backend, a stopped server) failing cleanly and
 * recovering. */
#include "store_conformance.h"
#include "persistent_store.h"
#include "apsched_pg.h"
#include "stores/pg/pg_internal.h"
#include "pg_server.h"

static atomic_int schema_seq;

/* A new schema name. */
/* rc must be APSCHED_OK; else the failure names the call and the error. */
#define assert_ok(call)                                                                  \
  do {                                                                                   \
    int rc_ = (call);                                                                    \
    if (rc_ != APSCHED_OK) fail_msg("%s: %s: %s", #call, apsched_strerror(rc_), apsched_last_error()); \
  } while (0)

static void new_schema(char *buf, size_t len, const char *stem) {
  snprintf(buf, len, "%s_%d", stem, atomic_fetch_add(&schema_seq, 1));
}

static apsched_jobstore *open_store(const char *schema) {
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema};
  apsched_jobstore *st = NULL;
  char err[256] = "";
  apsched__error(APSCHED_OK, "untouched");
  int rc = apsched_pg_store_create(&o, &st, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("pg store in schema %s: %s (%s)", schema, apsched_strerror(rc), err);
  /* A call that succeeds leaves apsched_last_error() alone. */
  assert_string_equal(apsched_last_error(), "untouched");
  return st;
}

static apsched_jobstore *make_store(void *ud) {
  (void)ud;
  char schema[64];
  new_schema(schema, sizeof schema, "kit");
  return open_store(schema);
}

/* The kit's run-record tests: a store's data is its schema. */
static char *locate_store(void *ud, apsched_jobstore *st) {
  (void)ud;
  return strdup(apsched__pg_store_schema(st));
}

static apsched_jobstore *open_store_at(void *ud, const char *schema) {
  (void)ud;
  return open_store(schema);
}

/* The kit's stale schedulers: a heartbeat as old as a stall past the lease
 * (and a lease of 1 ms: dead again right after a beat, and also right after
 * a server restart). A row already pruned stays gone. */
static void stall_store(void *ud, apsched_jobstore *st) {
  (void)ud;
  char sql[256];
  snprintf(sql, sizeof sql,
           "UPDATE \"%s\".schedulers SET heartbeat_at = now() - interval '1 hour', lease_ms = 1 "
           "WHERE id = $1",
           apsched__pg_store_schema(st));
  const char *params[1] = {apsched__pg_store_id(st)};
  PGconn *c = pg_server_connect();
  PGresult *res = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(res);
  PQfinish(c);
}

/* ------------------------------------------------------------- helpers */

/* A hosted scheduler on a fake clock with the store in schema as "db". */
static apsched_scheduler *sched_with_store(fake_clock *fc, recorder *r, const char *schema) {
  return sched_with(fc, r, open_store(schema));
}

/* Runs sql (parameters as text) on c; the result, which must not be an error. */
static PGresult *raw_query(PGconn *c, const char *sql, int n, const char *const *params) {
  PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
  return res;
}

/* Runs one or more statements without parameters (as psql -c would). */
static void raw_exec(PGconn *c, const char *sql) {
  PGresult *res = PQexec(c, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(res);
}

/* Every column of one row as "col=value|..." (psql's text forms, NULL as NULL). */
static char *raw_row(PGconn *c, const char *schema, const char *id) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT * FROM \"%s\".jobs WHERE id = $1", schema);
  const char *params[1] = {id};
  PGresult *res = raw_query(c, sql, 1, params);
  char *out = NULL;
  if (PQntuples(res) == 1) {
    out = calloc(1, 4096);
    size_t len = 0;
    for (int col = 0; col < PQnfields(res); col++)
      len += (size_t)snprintf(out + len, 4096 - len, "%s=%s|", PQfname(res, col),
                              PQgetisnull(res, 0, col) ? "NULL" : PQgetvalue(res, 0, col));
  }
  PQclear(res);
  return out;
}

/* One value of a query, as text ("" for no row, "NULL" for NULL); freed by the caller. */
static char *raw_value(PGconn *c, const char *sql) {
  PGresult *res = raw_query(c, sql, 0, NULL);
  char *v = strdup(PQntuples(res) == 0 ? "" : PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0));
  PQclear(res);
  return v;
}

static void assert_value(PGconn *c, const char *sql, const char *want) {
  char *v = raw_value(c, sql);
  if (strcmp(v, want) != 0) fail_msg("%s: got '%s', want '%s'", sql, v, want);
  free(v);
}

/* ------------------------------------------------------------- schema */

static void test_schema_is_readable(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "readable");
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = sched_with_store(&fc, NULL, schema);
  add_sample_jobs(s, APSCHED_DELIVERY_DEFAULT);

  PGconn *c = pg_server_connect();
  raw_exec(c, "SET TIME ZONE 'UTC'");
  char *row = raw_row(c, schema, "report");
  assert_non_null(row);
  assert_string_equal(row,
                      "id=report|name=Daily report|func=" TICK "|"
                      "trigger=interval[seconds=10, start_date='2026-01-01T00:00:00Z']|"
                      "executor=default|arg=\\x010278797a|misfire_grace_ms=2500|coalesce=f|"
                      "max_instances=3|max_runtime_ms=30000|next_run_time=1767225610000250|"
                      "trigger_time=1767225610000250|delivery=at_most_once|paused=f|"
                      "next_run_at=2026-01-01 00:00:10.00025+00|"
                      "policies=catchup_window=3600s, pause_after_failures=3|failures=0|");
  free(row);
  row = raw_row(c, schema, "nightly");
  assert_string_equal(row,
                      "id=nightly|name=NULL|func=" TICK "|"
                      "trigger=cron[year='*', month='*', day='*', week='*', day_of_week='*', "
                      "hour='3', minute='30', second='0', timezone='Europe/Berlin']|"
                      "executor=default|arg=NULL|misfire_grace_ms=NULL|coalesce=t|"
                      "max_instances=1|max_runtime_ms=0|next_run_time=NULL|trigger_time=NULL|"
                      "delivery=at_most_once|paused=t|next_run_at=NULL|policies=NULL|failures=0|");
  free(row);
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT version FROM \"%s\".schema_version", schema);
  assert_value(c, sql, "6");
  /* runs and schedulers, with their keys. */
  snprintf(sql, sizeof sql,
           "SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index i"
           " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
           " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
           " WHERE i.indrelid = '\"%s\".runs'::regclass AND i.indisprimary",
           schema);
  assert_value(c, sql, "job_id,scheduled_time");
  /* The scheduler registered itself. */
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".schedulers", schema);
  assert_value(c, sql, "1");
  /* psql's \d+ explains the columns. */
  snprintf(sql, sizeof sql, "SELECT col_description('\"%s\".jobs'::regclass, 11)", schema);
  assert_value(c, sql, "Microseconds since 1970-01-01 UTC; NULL: paused");
  PQfinish(c);

  apsched_job *j = get(s, "report");
  assert_string_equal(j->name, "Daily report");
  assert_int_equal(j->max_instances, 3);
  assert_int_equal(j->catchup_window, APSCHED_HOUR);
  assert_int_equal(j->pause_after_failures, 3);
  assert_string_equal(j->policies, "catchup_window=3600s, pause_after_failures=3");
  assert_int_equal(j->misfire_grace_time, 2500 * APSCHED_MSEC);
  assert_false(j->coalesce);
  assert_null(j->broken);
  apsched_job_free(j);
  j = get(s, "nightly");
  assert_true(j->paused);
  assert_int_equal(j->misfire_grace_time, APSCHED_GRACE_UNLIMITED);
  apsched_job_free(j);
  apsched_free(s);
}

/* Everything in a schema (its tables' definitions and rows), as text. */
static char *schema_dump(PGconn *c, const char *schema) {
  const char *params[1] = {schema};
  PGresult *res = raw_query(
      c,
      "SELECT coalesce(string_agg(table_name || '.' || column_name || ':' || data_type, ',' "
      "ORDER BY table_name, ordinal_position), '') FROM information_schema.columns "
      "WHERE table_schema = $1",
      1, params);
  size_t cap = 8192, len = 0;
  char *out = calloc(1, cap);
  len += (size_t)snprintf(out + len, cap - len, "%s\n", PQgetvalue(res, 0, 0));
  PQclear(res);
  const char *tables[] = {"schema_version", "jobs"};
  for (int t = 0; t < 2; t++) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(string_agg(x::text, ';' ORDER BY x::text), '') FROM \"%s\".%s x",
             schema, tables[t]);
    PGresult *r = PQexec(c, sql);
    len += (size_t)snprintf(out + len, cap - len, "%s: %s\n", tables[t],
                            PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "(none)");
    PQclear(r);
  }
  return out;
}

/* A schema written by a newer library is refused, and not changed at all;
 * so is another program's table under our name, and (existing_only) a
 * schema that is not there. */
static void test_newer_schema_is_refused_untouched(void **state) {
  (void)state;
  PGconn *c = pg_server_connect();
  raw_exec(c, "CREATE SCHEMA newer; CREATE TABLE newer.schema_version (version integer NOT NULL);"
              "INSERT INTO newer.schema_version VALUES (7);"
              "CREATE TABLE newer.jobs (id text PRIMARY KEY, future bytea);"
              "INSERT INTO newer.jobs VALUES ('j', '\\x00ff')");
  char *before = schema_dump(c, "newer");
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = "newer"};
  apsched_jobstore *st = (apsched_jobstore *)1;
  char err[256];
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_null(st);
  assert_string_equal(err, "postgresql schema 'newer' has schema version 7, newer than the 6 this "
                           "library knows: use a newer libapsched-pg (nothing was changed)");
  char *after = schema_dump(c, "newer");
  assert_string_equal(before, after);
  free(before);
  free(after);

  raw_exec(c, "CREATE SCHEMA foreign_app; CREATE TABLE foreign_app.jobs (id text PRIMARY KEY)");
  before = schema_dump(c, "foreign_app");
  o.schema = "foreign_app";
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "has a table 'jobs' but no 'schema_version': it was not made by "
                              "libapsched-pg"));
  after = schema_dump(c, "foreign_app");
  assert_string_equal(before, after);
  free(before);
  free(after);

  o = (apsched_pg_options){.conninfo = pg_server_conninfo(), .schema = "not_there",
                           .existing_only = true};
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "postgresql schema 'not_there' holds no libapsched-pg tables");
  assert_value(c, "SELECT count(*) FROM pg_namespace WHERE nspname = 'not_there'", "0");
  /* A name that needs quoting works (the name is never part of SQL unquoted). */
  o = (apsched_pg_options){.conninfo = pg_server_conninfo(), .schema = "Odd \"name\"; --"};
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_OK);
  apsched_jobstore_free(st);
  assert_value(c, "SELECT version FROM \"Odd \"\"name\"\"; --\".schema_version", "6");
  PQfinish(c);
}

static void test_bad_options(void **state) {
  (void)state;
  apsched_jobstore *st;
  char err[256];
  assert_int_equal(apsched_pg_store_create(NULL, &st, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "postgresql store: options are NULL");
  apsched_pg_options o = {0};
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "conninfo is NULL"));
  o.conninfo = "host=/tmp bogus";
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "postgresql store: conninfo: missing \"=\" after \"bogus\""));
  o.conninfo = "postgresql://u@h/db?frobnicate=1";
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "frobnicate"));
  o = (apsched_pg_options){.conninfo = pg_server_conninfo(), .schema = ""};
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "schema '' must be 1 to 63 bytes"));
  o.schema = "a_schema_name_that_is_longer_than_what_postgresql_allows_for_names";
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "must be 1 to 63 bytes"));
  o.schema = "pg_jobs";
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "postgresql store: schema 'pg_jobs': names beginning with pg_ are "
                           "reserved by PostgreSQL");
  o = (apsched_pg_options){.conninfo = pg_server_conninfo(), .lease_ms = -1};
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "lease_ms -1"));
  /* No server there: libpq's message. */
  o = (apsched_pg_options){.conninfo = "host=/nonexistent-dir port=5432 connect_timeout=5"};
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EBACKEND);
  assert_non_null(strstr(err, "postgresql schema 'apsched': cannot connect: "));
  assert_non_null(strstr(err, "/nonexistent-dir/.s.PGSQL.5432"));
  assert_null(strchr(err, '\n'));
}

/* ------------------------------------------------------------ restart */

static void test_restart_continues_the_schedule(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "restart");
  persistent_restart_test(open_store, schema);
}

/* ------------------------------------------------------------ refusals */

static void test_unstorable_jobs_are_refused(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "refusals");
  persistent_refusals_test(open_store(schema), "PostgreSQL");
}

/* Text PostgreSQL cannot keep (not UTF-8 in a UTF-8 database): that job's
 * fault, in the server's words, and nothing of the batch is stored. */
static void test_text_the_database_cannot_keep(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "latin1");
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = sched_with_store(&fc, NULL, schema);
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_job_options latin1[2] = {{.id = "fine", .func_name = TICK, .jobstore = "db", .paused = true},
                                   {.id = "cafe", .name = "caf\xe9", .func_name = TICK, .jobstore = "db"}};
  size_t failed = 99;
  assert_int_equal(apsched_add_jobs(s, latin1, 2, &failed), APSCHED_EINVAL);
  assert_int_equal(failed, 1);
  assert_non_null(strstr(apsched_last_error(), "writing job 'cafe': invalid byte sequence for "
                                               "encoding \"UTF8\""));
  apsched_job *jobs;
  size_t n;
  assert_int_equal(apsched_get_jobs(s, "db", &jobs, &n), APSCHED_OK);
  assert_int_equal(n, 0);
  apsched_jobs_free(jobs, n);
  apsched_free(s);
}

/* ------------------------------------------------------ undecodable rows */

static void test_undecodable_rows_are_kept_and_reported(void **state) {
  (void)state;
  reset_runs();
  char schema[64], sql[2048];
  new_schema(schema, sizeof schema, "broken");
  apsched_jobstore_free(open_store(schema)); /* creates the tables */
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  PGconn *c = pg_server_connect();
  /* A trigger kind this program does not know, an hour out of range (both
   * due long ago), a column changed by hand to another type, and a good job. */
  snprintf(sql, sizeof sql,
           "INSERT INTO \"%s\".jobs (id, func, \"trigger\", executor, \"coalesce\", max_instances, "
           "max_runtime_ms, next_run_time) VALUES "
           "('lunar', '%s', 'lunar[phase=full]', 'default', true, 1, 0, %lld), "
           "('bad-hour', '%s', 'cron[hour=''25'']', 'default', true, 1, 0, %lld), "
           "('good', '%s', 'interval[seconds=10, start_date=''2026-01-01T00:00:00Z'']', "
           "'default', true, 1, 0, %lld)",
           schema, TICK, (long long)(T0 - APSCHED_HOUR), TICK, (long long)(T0 - APSCHED_HOUR),
           TICK, (long long)(T0 + 10 * APSCHED_SEC));
  raw_exec(c, sql);
  char *lunar_before = raw_row(c, schema, "lunar");
  char *hour_before = raw_row(c, schema, "bad-hour");

  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = sched_with_store(&fc, &r, schema);
  for (int i = 0; i < 3; i++) {
    fake_advance(&fc, 10 * APSCHED_SEC);
    pass(s);
    assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, (size_t)i + 1));
  }
  pass(s);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ERROR), 2);
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0), f = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 1);
  if (strcmp(r.ev[e].job_id, "lunar") != 0) {
    int t = e;
    e = f;
    f = t;
  }
  assert_string_equal(r.ev[e].job_id, "lunar");
  assert_string_equal(r.ev[e].jobstore, "db");
  assert_non_null(strstr(r.ev[e].error, "unknown trigger kind 'lunar'"));
  assert_string_equal(r.ev[f].job_id, "bad-hour");
  assert_non_null(strstr(r.ev[f].error, "25 is above the maximum 23"));
  assert_int_equal(runs_of("lunar"), 0);
  assert_int_equal(runs_of("bad-hour"), 0);
  assert_int_equal(runs_of("good"), 3);
  apsched_job *j = get(s, "lunar");
  assert_non_null(j->broken);
  assert_string_equal(j->trigger, "lunar[phase=full]");
  assert_true(j->paused);
  apsched_job_free(j);
  assert_int_equal(apsched_resume_job(s, "lunar", NULL), APSCHED_EINVAL);
  char *lunar_after = raw_row(c, schema, "lunar");
  char *hour_after = raw_row(c, schema, "bad-hour");
  assert_string_equal(lunar_before, lunar_after);
  assert_string_equal(hour_before, hour_after);
  assert_int_equal(apsched_remove_job(s, "lunar", NULL), APSCHED_OK);
  assert_null(raw_row(c, schema, "lunar"));
  /* A row fixed by hand is a job again, without a restart. */
  snprintf(sql, sizeof sql, "UPDATE \"%s\".jobs SET \"trigger\" = 'cron[hour=''23'']' WHERE id = 'bad-hour'",
           schema);
  raw_exec(c, sql);
  j = get(s, "bad-hour");
  assert_null(j->broken);
  apsched_job_free(j);
  /* ...and runs, being due: awaited, so that it is not still due (and
   * reported as broken first) when the column below changes. */
  pass(s);
  assert_true(wait_for_job(&r, APSCHED_EVENT_JOB_EXECUTED, "bad-hour"));
  assert_int_equal(runs_of("bad-hour"), 1);
  /* A column whose type was changed by hand: its rows are broken, not misread. */
  snprintf(sql, sizeof sql,
           "ALTER TABLE \"%s\".jobs ALTER COLUMN max_runtime_ms TYPE numeric", schema);
  raw_exec(c, sql);
  /* The claim statement was prepared (conn.c) before the change and no
   * longer fits the table: PostgreSQL refuses it (SQLSTATE 0A000) inside
   * the claim's transaction. That batch fails; its retry prepares the
   * statement again, finds "good" undecodable and reports it, instead of
   * failing the same way at every retry. */
  size_t errors = recorder_count(&r, APSCHED_EVENT_JOB_ERROR);
  fake_advance(&fc, 10 * APSCHED_SEC);
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_FAILED, 1));
  fake_advance(&fc, 15 * APSCHED_SEC); /* past the retry backoff */
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_RECOVERED, 1));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, errors + 1));
  e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, (int)errors);
  assert_string_equal(r.ev[e].job_id, "good");
  assert_non_null(strstr(r.ev[e].error, "holds a numeric"));
  j = get(s, "good");
  assert_non_null(j->broken);
  assert_non_null(strstr(j->broken, "column max_runtime_ms holds a numeric, not an integer"));
  apsched_job_free(j);
  apsched_free(s);
  recorder_destroy(&r);
  PQfinish(c);
  free(lunar_before);
  free(lunar_after);
  free(hour_before);
  free(hour_after);
}

/* ------------------------------------------------------ lost connections */

static apsched_job_record *plain_record(const char *id, apsched_time_t next) {
  apsched_job_record *r = apsched__record_new(id);
  r->trigger = every(10 * APSCHED_SEC, T0);
  r->func = apsched_func_by_name(TICK);
  r->executor = "default";
  r->misfire_grace_ms = UINT32_MAX;
  r->max_instances = 1;
  r->flags = APSCHED_JOB_COALESCE;
  r->next_run_time = r->trigger_time = next;
  return r;
}

/* Ends the store's server process from another connection, as an
 * administrator (or a failover) would. */
static void terminate_backend(apsched_jobstore *st) {
  char pid[16];
  snprintf(pid, sizeof pid, "%d", PQbackendPID(apsched__pg_store_conn(st)));
  PGconn *c = pg_server_connect();
  const char *params[1] = {pid};
  PGresult *res = raw_query(c, "SELECT pg_terminate_backend($1::integer, 10000)", 1, params);
  assert_string_equal(PQgetvalue(res, 0, 0), "t");
  PQclear(res);
  PQfinish(c);
}

/* The call that finds its connection gone fails cleanly; the next one
 * reconnects. A batch whose connection was lost is undone as a whole. */
static void test_terminated_backend(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "terminated");
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_jobstore *st = open_store(schema);
  apsched_job_record *recs[2] = {plain_record("a", T0), plain_record("b", T0 + 1)};
  assert_int_equal(st->vtable->add(st, recs, 2, NULL, NULL), APSCHED_OK);

  terminate_backend(st);
  const apsched_job_record *found;
  assert_int_equal(st->vtable->lookup(st, "a", &found), APSCHED_EBACKEND);
  const char *err = apsched__pstore_last_error();
  if (!strstr(err, "looking a job up: terminating connection due to administrator command") &&
      !strstr(err, "looking a job up: server closed the connection unexpectedly"))
    fail_msg("unexpected message: %s", err);
  assert_int_equal(st->vtable->lookup(st, "a", &found), APSCHED_OK);
  assert_int_equal(found->next_run_time, T0);

  /* Lost in the middle of a claimed batch: the commit (which writes the
   * batch's releases, all in one statement) fails, nothing of the batch is
   * stored, and both jobs are due again. */
  apsched_job_record *out[4];
  assert_int_equal(st->vtable->claim_due(st, T0 + 5, out, 4), 2);
  assert_int_equal(st->vtable->release(st, out[0], T0 + 100, T0 + 100, false), APSCHED_OK);
  terminate_backend(st);
  assert_int_equal(st->vtable->release(st, out[1], T0 + 200, T0 + 200, false), APSCHED_OK);
  assert_int_equal(st->vtable->commit(st), APSCHED_EBACKEND);
  err = apsched__pstore_last_error();
  if (!strstr(err, "the next run times of 2 claimed jobs"))
    fail_msg("unexpected message: %s", err);
  assert_int_equal(st->vtable->claim_due(st, T0 + 5, out, 4), 2);
  assert_string_equal(out[0]->id, "a");
  assert_int_equal(out[0]->next_run_time, T0);
  assert_int_equal(st->vtable->release(st, out[0], T0 + 100, T0 + 100, false), APSCHED_OK);
  assert_int_equal(st->vtable->release(st, out[1], T0 + 200, T0 + 200, false), APSCHED_OK);
  assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  assert_int_equal(st->vtable->lookup(st, "b", &found), APSCHED_OK);
  assert_int_equal(found->next_run_time, T0 + 200);
  apsched_jobstore_free(st);
}

/* A scheduler that stalls inside a claimed batch (SIGSTOP, a long pause)
 * loses its session after lease_ms idle in the transaction: the rows it
 * locked go to the others, and its late commit fails instead of landing. */
static void test_stalled_batch_lets_go(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "stalled");
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema, .lease_ms = 300};
  apsched_jobstore *a, *b;
  assert_int_equal(apsched_pg_store_create(&o, &a, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_pg_store_create(&o, &b, NULL, 0), APSCHED_OK);
  apsched_job_record *rec = plain_record("j", T0);
  assert_int_equal(a->vtable->add(a, &rec, 1, NULL, NULL), APSCHED_OK);
  apsched_job_record *out[1];
  assert_int_equal(a->vtable->claim_due(a, T0, out, 1), 1);
  /* a stalls here: b skips the locked row until the server ends a's
   * session (bounded: 100 x 50 ms, far past the 300 ms lease). */
  int got = 0;
  for (int i = 0; i < 100 && got == 0; i++) {
    got = b->vtable->claim_due(b, T0, out, 1);
    assert_true(got >= 0);
    if (got == 0) {
      if (b->vtable->commit) assert_int_equal(b->vtable->commit(b), APSCHED_OK);
      struct timespec ms50 = {0, 50000000};
      nanosleep(&ms50, NULL);
    }
  }
  assert_int_equal(got, 1);
  assert_string_equal(out[0]->id, "j");
  assert_int_equal(b->vtable->release(b, out[0], T0 + 100, T0 + 100, false), APSCHED_OK);
  assert_int_equal(b->vtable->commit(b), APSCHED_OK);
  /* a wakes up: its batch is gone, nothing of it lands. */
  assert_int_equal(a->vtable->commit(a), APSCHED_EBACKEND);
  const apsched_job_record *found;
  assert_int_equal(a->vtable->lookup(a, "j", &found), APSCHED_OK);
  assert_int_equal(found->next_run_time, T0 + 100);
  apsched_jobstore_free(a);
  apsched_jobstore_free(b);
}

/* Through a scheduler: the store's connection is terminated between
 * passes; the memory store's jobs go on, the store's job runs once its
 * thread is connected again, each due time at most once. Whether the
 * thread finds the connection gone (JOBSTORE_FAILED naming the schema, then
 * JOBSTORE_RECOVERED) or reconnects before its next statement depends on
 * timing; a failure is never left without its recovery. (test_server_restart
 * covers the failure reports deterministically.) */
static void test_scheduler_survives_a_terminated_backend(void **state) {
  (void)state;
  reset_runs();
  char schema[64];
  new_schema(schema, sizeof schema, "sched_terminated");
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  apsched_jobstore *st = open_store(schema);
  assert_int_equal(apsched_add_jobstore(s, st, "db"), APSCHED_OK);
  apsched_trigger *every10 = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options jobs[2] = {
      {.id = "in-db", .func_name = TICK, .trigger = every10, .jobstore = "db",
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED},
      {.id = "in-memory", .func_name = TICK, .trigger = every10}};
  assert_int_equal(apsched_add_jobs(s, &jobs[0], 1, NULL), APSCHED_OK);
  assert_int_equal(apsched_add_jobs(s, &jobs[1], 1, NULL), APSCHED_OK);
  /* Stopped between passes: the store's thread is idle (nothing due yet). */
  terminate_backend(st);
  fake_advance(&fc, 10 * APSCHED_SEC);
  pass(s);
  assert_true(wait_for_job(&r, APSCHED_EVENT_JOB_EXECUTED, "in-memory"));
  /* Until the store's thread has tried (failed, or reconnected and run the
   * job), passes wake it: the retry backoff then runs from this clock. */
  for (int i = 0; i < 300 && recorder_find(&r, APSCHED_EVENT_JOBSTORE_FAILED, 0) < 0 &&
                  runs_of("in-db") == 0;
       i++) {
    struct timespec ms100 = {0, 100000000};
    nanosleep(&ms100, NULL);
    pass(s);
  }
  fake_advance(&fc, 15 * APSCHED_SEC); /* past any retry backoff */
  pass(s);
  assert_true(wait_for_job(&r, APSCHED_EVENT_JOB_EXECUTED, "in-db"));
  /* If the thread was connected again before the clock moved on, it ran
   * T0 + 10 s alone and T0 + 20 s comes with a later pass; otherwise both
   * were due at once and coalesced into one run. Either way the job ends
   * up next at T0 + 30 s. */
  for (int i = 0; i < 500 && next_of(s, "in-db") != T0 + 30 * APSCHED_SEC; i++) {
    struct timespec ms10 = {0, 10000000};
    nanosleep(&ms10, NULL);
    pass(s);
  }
  assert_int_equal(next_of(s, "in-db"), T0 + 30 * APSCHED_SEC);
  int runs = runs_of("in-db");
  if (runs != 1 && runs != 2) fail_msg("in-db ran %d times for two due times", runs);
  int e = recorder_find(&r, APSCHED_EVENT_JOBSTORE_FAILED, 0);
  if (e >= 0) {
    assert_string_equal(r.ev[e].alias, "db");
    assert_non_null(strstr(r.ev[e].error, "postgresql schema"));
    assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_RECOVERED, 1));
  }
  apsched_trigger_free(every10);
  apsched_free(s);
  recorder_destroy(&r);
}

/* The server stopped and started again: every call fails meanwhile, with
 * libpq's message, and the store works again afterwards, jobs intact. */
static void test_server_restart(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "restarted");
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_jobstore *st = open_store(schema);
  apsched_job_record *rec = plain_record("kept", T0);
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  pg_server_stop();
  apsched_time_t next;
  assert_int_equal(st->vtable->next_run_time(st, &next), APSCHED_EBACKEND);
  assert_int_equal(next, APSCHED_TIME_NONE);
  rec = plain_record("new", T0);
  size_t failed = 99;
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, &failed), APSCHED_EBACKEND);
  assert_int_equal(failed, 1); /* not the record's fault */
  assert_non_null(strstr(apsched__pstore_last_error(), "cannot reconnect: "));
  assert_null(strchr(apsched__pstore_last_error(), '\n'));
  apsched_job_record *out[2];
  assert_int_equal(st->vtable->claim_due(st, T0, out, 2), APSCHED_EBACKEND);
  if (pg_server_start() != 0) fail_msg("restarting the server: %s", pg_srv.why);
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(st->vtable->next_run_time(st, &next), APSCHED_OK);
  assert_int_equal(next, T0);
  const apsched_job_record *found;
  assert_int_equal(st->vtable->lookup(st, "kept", &found), APSCHED_OK);
  apsched_jobstore_free(st);
}


/* ------------------------------------------------------------ run records */

static long rows_of(PGconn *c, const char *schema, const char *table, const char *where) {
  char sql[1024];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%.63s\".%.63s WHERE %.800s", schema, table,
           where);
  char *v = raw_value(c, sql);
  long n = atol(v);
  free(v);
  return n;
}

/* Claims rec's job at `at` and opens one run at its next run time; the
 * rc of runs_open. The batch is committed with the job advanced by 10 s. */
static int claim_and_open(apsched_jobstore *st, apsched_time_t at) {
  apsched_job_record *due[1];
  assert_int_equal(st->vtable->claim_due(st, at, due, 1), 1);
  apsched_time_t t = due[0]->next_run_time;
  bool track = false;
  int rc = st->vtable->runs_open(st, due[0], &t, 1, &track);
  assert_int_equal(track, rc == APSCHED_OK);
  assert_int_equal(st->vtable->release(st, due[0], t + 10 * APSCHED_SEC, t + 10 * APSCHED_SEC, false),
                   APSCHED_OK);
  assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  return rc;
}

/* Every claimed run is a row (at most once too), owned by this scheduler
 * with a token; max_instances counts the rows of the job in the database:
 * over it, runs_open refuses (APSCHED_EBUSY) without spoiling the batch. */
static void test_run_rows_and_max_instances(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "instances");
  apsched_jobstore *st = open_store(schema);
  apsched_job_record *rec = plain_record("one", T0);
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(st, T0), APSCHED_OK);
  PGconn *c = pg_server_connect();
  char where[256];
  snprintf(where, sizeof where, "job_id = 'one' AND owner = '%s' AND token > 0 AND attempt = 1 "
           "AND delivery = 'at_most_once'", apsched__pg_store_id(st));
  assert_int_equal(rows_of(c, schema, "runs", where), 1);
  /* The claim recorded its start ahead (a start group); unused, the
   * heartbeat thread takes it back once the window (250 ms) ends. */
  for (int i = 0; i < 500 && rows_of(c, schema, "runs", "started_at IS NULL") == 0; i++) {
    struct timespec ms = {0, 10000000};
    nanosleep(&ms, NULL);
  }
  assert_int_equal(rows_of(c, schema, "runs", "started_at IS NULL"), 1);
  /* Due again while that run is in progress: busy, nothing written, and
   * the batch commits the job's new time all the same. */
  assert_int_equal(claim_and_open(st, T0 + 10 * APSCHED_SEC), APSCHED_EBUSY);
  assert_non_null(strstr(apsched__pstore_last_error(), "job 'one': 1 of its at most 1 instances are "
                                                       "in progress across schedulers"));
  assert_int_equal(rows_of(c, schema, "runs", "true"), 1);
  const apsched_job_record *found;
  assert_int_equal(st->vtable->lookup(st, "one", &found), APSCHED_OK);
  assert_int_equal(found->next_run_time, T0 + 20 * APSCHED_SEC);
  /* Started (once only), ended: the next claim may run it. */
  assert_int_equal(st->vtable->run_starting(st, "one", T0, 1), APSCHED_OK);
  assert_int_equal(rows_of(c, schema, "runs", "started_at IS NOT NULL"), 1);
  assert_int_equal(st->vtable->run_starting(st, "one", T0, 1), APSCHED_ESTATE);
  assert_int_equal(st->vtable->run_starting(st, "one", T0 + 1, 1), APSCHED_ESTATE);
  assert_non_null(strstr(apsched__pstore_last_error(), "holds no claim of attempt 1 of the run"));
  apsched_run_result done = {.job_id = "one", .scheduled_time = T0, .attempt = 1,
                             .outcome = APSCHED_RUN_EXECUTED, .started_at = T0, .finished_at = T0 + 5};
  assert_int_equal(st->vtable->runs_closed(st, &done, 1), APSCHED_OK);
  assert_int_equal(rows_of(c, schema, "runs", "true"), 0);
  assert_int_equal(claim_and_open(st, T0 + 20 * APSCHED_SEC), APSCHED_OK);
  /* max_instances 2: a second claim runs alongside. */
  rec = plain_record("two", T0);
  rec->max_instances = 2;
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(st, T0), APSCHED_OK);
  assert_int_equal(claim_and_open(st, T0 + 10 * APSCHED_SEC), APSCHED_OK);
  assert_int_equal(claim_and_open(st, T0 + 20 * APSCHED_SEC), APSCHED_EBUSY);
  assert_int_equal(rows_of(c, schema, "runs", "job_id = 'two'"), 2);
  assert_int_equal(rows_of(c, schema, "run_history", "true"), 0); /* no history by default */
  PQfinish(c);
  apsched_jobstore_free(st);
}

/* Claims the due job at `at`, opens its runs at times (one claim) and
 * commits it due again at next. */
static void open_runs(apsched_jobstore *st, apsched_time_t at, const apsched_time_t *times, size_t n,
                      apsched_time_t next) {
  apsched_job_record *due[1];
  assert_int_equal(st->vtable->claim_due(st, at, due, 1), 1);
  bool track = false;
  assert_int_equal(st->vtable->runs_open(st, due[0], times, n, &track), APSCHED_OK);
  assert_true(track);
  assert_int_equal(st->vtable->release(st, due[0], next, next, false), APSCHED_OK);
  assert_int_equal(st->vtable->commit(st), APSCHED_OK);
}

/* Every run leaves a dead row in runs; a scheduler that closed 1,000 of
 * them vacuums the table after its next heartbeat (autovacuum's minute is
 * too long under load). Counted by the server: vacuum_count, not
 * autovacuum_count. */
/* Claims every job of st due at `at`, opens its run and moves the job an
 * hour on; done[i] (its id in ids[i]) is the run's end, for runs_closed. */
static size_t run_all_due(apsched_jobstore *st, apsched_time_t at, apsched_run_result *done,
                          char (*ids)[32]) {
  enum { BATCH = 250 };
  apsched_job_record *due[BATCH];
  size_t ndone = 0;
  int n;
  while ((n = st->vtable->claim_due(st, at, due, BATCH)) > 0) {
    for (int i = 0; i < n; i++) {
      apsched_time_t t = due[i]->next_run_time;
      bool track = false;
      assert_ok(st->vtable->runs_open(st, due[i], &t, 1, &track));
      snprintf(ids[ndone], sizeof ids[ndone], "%s", due[i]->id);
      done[ndone] = (apsched_run_result){.job_id = ids[ndone], .scheduled_time = t, .attempt = 1,
                                         .outcome = APSCHED_RUN_EXECUTED, .started_at = t,
                                         .finished_at = t + 1};
      ndone++;
      assert_ok(st->vtable->release(st, due[i], t + APSCHED_HOUR, t + APSCHED_HOUR, false));
    }
    assert_ok(st->vtable->commit(st));
  }
  return ndone;
}

/* The last heartbeat of the schema's one scheduler, as text. */
static char *last_beat(PGconn *c, const char *schema) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT heartbeat_at::text FROM \"%s\".schedulers", schema);
  return raw_value(c, sql);
}

/* Waits until the heartbeat changed twice (every lease / 3: 1.7 s): what
 * the heartbeat thread does after a beat (its vacuum) is then done for a
 * beat that came after this call. */
static void await_two_beats(PGconn *c, const char *schema) {
  char *seen = last_beat(c, schema);
  int changes = 0;
  for (int i = 0; i < 400 && changes < 2; i++) {
    struct timespec ms = {0, 25000000};
    nanosleep(&ms, NULL);
    char *now = last_beat(c, schema);
    if (strcmp(now, seen) != 0) {
      changes++;
      free(seen);
      seen = now;
    } else {
      free(now);
    }
  }
  free(seen);
  assert_int_equal(changes, 2);
}

static long vacuum_count(PGconn *c, const char *schema) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = '%s' AND relname = 'runs'",
           schema);
  char *v = raw_value(c, sql);
  long n = atol(v);
  free(v);
  return n;
}

/* A scheduler that closed 1,000 runs vacuums the runs table after its next
 * heartbeat (every lease / 3: 1.7 s). While another session holds the
 * table it skips quietly: the server's warning is not printed on stderr. */
static void test_churned_runs_table_is_vacuumed(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "churn");
  apsched_jobstore *st = open_store(schema);
  enum { JOBS = 1000, BATCH = 250 };
  apsched_job_record *recs[BATCH];
  char id[32];
  for (int b = 0; b < JOBS / BATCH; b++) {
    for (int i = 0; i < BATCH; i++) {
      snprintf(id, sizeof id, "churn-%04d", b * BATCH + i);
      recs[i] = plain_record(id, T0);
    }
    assert_int_equal(st->vtable->add(st, recs, BATCH, NULL, NULL), APSCHED_OK);
  }
  apsched_run_result *done = calloc(JOBS, sizeof *done);
  char (*ids)[32] = calloc(JOBS, sizeof *ids);
  PGconn *c = pg_server_connect();
  assert_int_equal(vacuum_count(c, schema), 0);

  /* Skipped: another session holds the lock a vacuum needs. */
  assert_int_equal(run_all_due(st, T0, done, ids), JOBS);
  PGconn *holder = pg_server_connect();
  char sql[256];
  snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE \"%s\".runs IN SHARE UPDATE EXCLUSIVE MODE", schema);
  PQclear(PQexec(holder, sql));
  char err_path[] = "/tmp/apsched-pg-stderr-XXXXXX";
  int err_fd = mkstemp(err_path);
  assert_true(err_fd >= 0);
  unlink(err_path);
  fflush(stderr);
  int saved_stderr = dup(STDERR_FILENO);
  dup2(err_fd, STDERR_FILENO);
  assert_ok(st->vtable->runs_closed(st, done, JOBS));
  await_two_beats(c, schema);
  fflush(stderr);
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  assert_int_equal(lseek(err_fd, 0, SEEK_END), 0); /* nothing on stderr */
  close(err_fd);
  PQclear(PQexec(holder, "COMMIT"));
  PQfinish(holder);
  assert_int_equal(vacuum_count(c, schema), 0);

  /* Done: the next 1,000 closes, with nobody in the way. */
  assert_int_equal(run_all_due(st, T0 + APSCHED_HOUR, done, ids), JOBS);
  assert_ok(st->vtable->runs_closed(st, done, JOBS));
  assert_int_equal(rows_of(c, schema, "runs", "true"), 0);
  /* The statistics reach other sessions within a second or so. */
  long vacuums = 0;
  for (int i = 0; i < 200 && vacuums == 0; i++) {
    struct timespec ms = {0, 50000000};
    nanosleep(&ms, NULL);
    vacuums = vacuum_count(c, schema);
  }
  assert_true(vacuums >= 1);
  PQfinish(c);
  free(done);
  free(ids);
  apsched_jobstore_free(st);
}

/* A claimed batch's releases and a runs_closed call are one statement
 * each, with the ids in array literals: ids with quotes, backslashes,
 * commas, braces and "NULL" come through: every job advanced (or removed
 * when finished) and every run record closed, also when one of them was
 * already gone. */
static void test_batch_writes_of_odd_ids(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "odd_ids");
  apsched_jobstore *st = open_store(schema);
  static const char *const ids[] = {"we\"ird", "back\\slash", "com,ma {x}", "NULL", "plain"};
  enum { N = sizeof ids / sizeof ids[0] };
  for (int i = 0; i < N; i++) {
    apsched_job_record *rec = plain_record(ids[i], T0 + i);
    assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  }
  apsched_job_record *due[N];
  assert_int_equal(st->vtable->claim_due(st, T0 + 10, due, N), N);
  apsched_run_result done[N];
  for (int i = 0; i < N; i++) {
    apsched_time_t t = due[i]->next_run_time;
    bool track = false;
    assert_int_equal(st->vtable->runs_open(st, due[i], &t, 1, &track), APSCHED_OK);
    assert_true(track);
    bool finished = strcmp(due[i]->id, "NULL") == 0;
    done[i] = (apsched_run_result){.job_id = ids[t - T0], .scheduled_time = t, .attempt = 1,
                                   .outcome = APSCHED_RUN_EXECUTED, .started_at = t,
                                   .finished_at = t + 1};
    assert_int_equal(st->vtable->release(st, due[i], finished ? APSCHED_TIME_NONE : t + APSCHED_SEC,
                                         finished ? APSCHED_TIME_NONE : t + APSCHED_SEC, finished),
                     APSCHED_OK);
  }
  assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  for (int i = 0; i < N; i++) {
    const apsched_job_record *found;
    int rc = st->vtable->lookup(st, ids[i], &found);
    if (strcmp(ids[i], "NULL") == 0) {
      assert_int_equal(rc, APSCHED_ENOENT);
      continue;
    }
    assert_int_equal(rc, APSCHED_OK);
    assert_int_equal(found->next_run_time, T0 + i + APSCHED_SEC);
  }
  PGconn *c = pg_server_connect();
  assert_int_equal(rows_of(c, schema, "runs", "true"), N);
  /* One record gone behind the store's back: its close finds nothing. */
  char sql[256];
  snprintf(sql, sizeof sql, "DELETE FROM \"%s\".runs WHERE job_id = 'plain'", schema);
  PQclear(raw_query(c, sql, 0, NULL));
  assert_int_equal(st->vtable->runs_closed(st, done, N), APSCHED_OK);
  assert_int_equal(rows_of(c, schema, "runs", "true"), 0);
  PQfinish(c);
  apsched_jobstore_free(st);
}

/* history_retention: ended runs become rows of run_history, pruned by
 * age counted back from the latest; negative retention is refused. */
static void test_run_history(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "history");
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema,
                          .history_retention = 10 * APSCHED_SEC};
  apsched_jobstore *st;
  char err[256];
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_OK);
  apsched_job_record *rec = plain_record("h", T0);
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  apsched_time_t times[3] = {T0, T0 + 5 * APSCHED_SEC, T0 + 9 * APSCHED_SEC};
  open_runs(st, T0 + 9 * APSCHED_SEC, times, 3, T0 + 20 * APSCHED_SEC);
  apsched_run_result r[3] = {
      {.job_id = "h", .scheduled_time = times[0], .attempt = 1, .outcome = APSCHED_RUN_EXECUTED,
       .started_at = T0 + 1, .finished_at = T0 + 2},
      {.job_id = "h", .scheduled_time = times[1], .attempt = 1,
       .outcome = APSCHED_RUN_FAILED, .started_at = T0 + 5 * APSCHED_SEC,
       .finished_at = T0 + 6 * APSCHED_SEC, .retval = 3, .error = "it broke"},
      {.job_id = "h", .scheduled_time = times[2], .attempt = 1,
       .outcome = APSCHED_RUN_MISSED, .started_at = APSCHED_TIME_NONE,
       .finished_at = T0 + 9 * APSCHED_SEC}};
  assert_int_equal(st->vtable->runs_closed(st, r, 3), APSCHED_OK);
  PGconn *c = pg_server_connect();
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT string_agg(concat_ws(' ', attempt, outcome, coalesce(retval::text, '-'), "
           "coalesce(error, '-'), coalesce(started_at::text, '-')), '; ' ORDER BY scheduled_time) "
           "FROM \"%s\".run_history", schema);
  char want[256];
  snprintf(want, sizeof want, "1 executed 0 - %lld; 1 failed 3 it broke %lld; 1 missed - - -",
           (long long)(T0 + 1), (long long)(T0 + 5 * APSCHED_SEC));
  assert_value(c, sql, want);
  /* 20 s later: the first three are older than 10 s. */
  apsched_time_t later = T0 + 20 * APSCHED_SEC;
  open_runs(st, later, &later, 1, T0 + 30 * APSCHED_SEC);
  r[0].scheduled_time = later;
  r[0].finished_at = later;
  assert_int_equal(st->vtable->runs_closed(st, r, 1), APSCHED_OK);
  assert_int_equal(rows_of(c, schema, "run_history", "true"), 1);
  apsched_jobstore_free(st);
  o.history_retention = -1;
  assert_int_equal(apsched_pg_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "history_retention -1 us is negative"));
  PQfinish(c);
}

/* The history is fenced like the run rows: the end of a run whose claim
 * was taken over meanwhile (its row has another token now), or of a run
 * that was never recorded, writes no row (its end belongs to the run's
 * owner, or to the claim that records it later). */
static void test_history_is_fenced(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "fencedhistory");
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema,
                          .history_retention = APSCHED_PG_HISTORY_FOREVER};
  apsched_jobstore *st;
  assert_int_equal(apsched_pg_store_create(&o, &st, NULL, 0), APSCHED_OK);
  apsched_job_record *rec = plain_record("f", T0);
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(st, T0), APSCHED_OK);
  assert_int_equal(st->vtable->run_starting(st, "f", T0, 1), APSCHED_OK);
  PGconn *c = pg_server_connect();
  char sql[256];
  /* What a survivor's take-over does to the row. */
  snprintf(sql, sizeof sql, "UPDATE \"%s\".runs SET token = token + 1000, owner = 'survivor'", schema);
  PQclear(raw_query(c, sql, 0, NULL));
  apsched_run_result r[2] = {
      {.job_id = "f", .scheduled_time = T0, .attempt = 1, .outcome = APSCHED_RUN_EXECUTED,
       .started_at = T0 + 1, .finished_at = T0 + 2},
      {.job_id = "f", .scheduled_time = T0 + 10 * APSCHED_SEC, .attempt = 1,
       .outcome = APSCHED_RUN_SKIPPED, .started_at = APSCHED_TIME_NONE, .finished_at = T0 + 3}};
  assert_int_equal(st->vtable->runs_closed(st, r, 2), APSCHED_OK);
  assert_int_equal(rows_of(c, schema, "run_history", "true"), 0);
  assert_int_equal(rows_of(c, schema, "runs", "owner = 'survivor'"), 1);
  PQfinish(c);
  apsched_jobstore_free(st);
}

/* An at-most-once run that had started under a scheduler that is gone is
 * lost: the survivor deletes its row and ends it in the run history as
 * failed in the same statement (a report alone goes with a survivor that
 * dies before delivering it; the history keeps every ended run). */
static void test_lost_run_in_history(void **state) {
  (void)state;
  char schema[64], sql[512];
  new_schema(schema, sizeof schema, "losthistory");
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema,
                          .history_retention = APSCHED_PG_HISTORY_FOREVER};
  apsched_jobstore *a, *b;
  assert_int_equal(apsched_pg_store_create(&o, &a, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_pg_store_create(&o, &b, NULL, 0), APSCHED_OK);
  apsched_job_record *rec = plain_record("l", T0);
  assert_int_equal(a->vtable->add(a, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(a, T0), APSCHED_OK);
  assert_int_equal(a->vtable->run_starting(a, "l", T0, 1), APSCHED_OK);
  apsched_jobstore_free(a); /* gone while the run executed */
  apsched_orphan_run orphans[2];
  assert_int_equal(b->vtable->claim_orphans(b, orphans, 2), 0); /* lost, not run again */
  PGconn *c = pg_server_connect();
  assert_int_equal(rows_of(c, schema, "runs", "true"), 0);
  snprintf(sql, sizeof sql,
           "SELECT string_agg(concat_ws(' ', scheduled_time = %lld, attempt, outcome, "
           "started_at IS NOT NULL, finished_at IS NOT NULL, retval IS NULL, "
           "error LIKE 'lost with scheduler %% (at most once)%%'), '; ') FROM \"%s\".run_history",
           (long long)T0, schema);
  assert_value(c, sql, "t 1 failed t t t t");
  PQfinish(c);
  apsched_jobstore_free(b);
}

/* A server restart ends every session, so every scheduler's advisory lock
 * is gone until its heartbeat thread connects again (up to a second
 * later): a scheduler is not dead for that. Its runs stay its own while it
 * has had no chance to beat since the restart (2 x its lease from the
 * server's start), and once it beats again it is judged as before. */
static void test_restart_keeps_schedulers_alive(void **state) {
  (void)state;
  char schema[64], sql[256];
  new_schema(schema, sizeof schema, "restartlive");
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema, .lease_ms = 3000};
  apsched_jobstore *a, *b;
  assert_int_equal(apsched_pg_store_create(&o, &a, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_pg_store_create(&o, &b, NULL, 0), APSCHED_OK);
  apsched_job_record *rec = plain_record("busy", T0);
  rec->flags |= APSCHED_JOB_AT_LEAST_ONCE;
  assert_int_equal(a->vtable->add(a, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(a, T0), APSCHED_OK);
  assert_int_equal(a->vtable->run_starting(a, "busy", T0, 1), APSCHED_OK);
  apsched_orphan_run orphans[2];
  assert_int_equal(b->vtable->claim_orphans(b, orphans, 2), 0); /* b registers; a is alive */
  pg_server_stop();
  if (pg_server_start() != 0) fail_msg("restarting the server: %s", pg_srv.why);
  /* b's first call finds its connection lost, the next reconnects. */
  int n = b->vtable->claim_orphans(b, orphans, 2);
  if (n < 0) n = b->vtable->claim_orphans(b, orphans, 2);
  if (n > 0) b->vtable->commit(b);
  assert_int_equal(n, 0);
  /* a beats again (its lock back), and is still alive by the usual rule. */
  PGconn *c = pg_server_connect();
  snprintf(sql, sizeof sql,
           "SELECT heartbeat_at > pg_postmaster_start_time() FROM \"%s\".schedulers WHERE id = '%s'",
           schema, apsched__pg_store_id(a));
  char *beat = raw_value(c, sql);
  for (int i = 0; i < 1000 && strcmp(beat, "t") != 0; i++) {
    free(beat);
    struct timespec ms = {0, 10000000};
    nanosleep(&ms, NULL);
    beat = raw_value(c, sql);
  }
  assert_string_equal(beat, "t");
  free(beat);
  assert_int_equal(b->vtable->claim_orphans(b, orphans, 2), 0);
  apsched_run_result done = {.job_id = "busy", .scheduled_time = T0, .attempt = 1,
                             .outcome = APSCHED_RUN_EXECUTED, .started_at = T0, .finished_at = T0 + 1};
  int rc = a->vtable->runs_closed(a, &done, 1);
  if (rc != APSCHED_OK) rc = a->vtable->runs_closed(a, &done, 1); /* after reconnecting */
  assert_int_equal(rc, APSCHED_OK);
  assert_int_equal(rows_of(c, schema, "runs", "true"), 0); /* it was still a's to close */
  PQfinish(c);
  apsched_jobstore_free(a);
  apsched_jobstore_free(b);
}

/* A schema of version 1 (no run records) is migrated to the current
 * version in one transaction, jobs kept. */
static void test_migration_from_version_1(void **state) {
  (void)state;
  char schema[64], sql[2048];
  new_schema(schema, sizeof schema, "migrate");
  apsched_jobstore *st = open_store(schema);
  apsched_job_record *rec = plain_record("kept", T0);
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  apsched_jobstore_free(st);
  PGconn *c = pg_server_connect();
  /* Back to version 1's tables. */
  snprintf(sql, sizeof sql,
           "DROP TABLE \"%1$s\".run_history; DROP TABLE \"%1$s\".runs; DROP SEQUENCE \"%1$s\".run_tokens;"
           "CREATE TABLE \"%1$s\".runs (job_id text NOT NULL, scheduled_time bigint NOT NULL, owner text,"
           " token bigint, attempt integer NOT NULL DEFAULT 1, claimed_at timestamptz, started_at timestamptz,"
           " finished_at timestamptz, outcome text, error text, PRIMARY KEY (job_id, scheduled_time));"
           "ALTER TABLE \"%1$s\".schedulers DROP COLUMN lease_ms;"
           "ALTER TABLE \"%1$s\".jobs DROP COLUMN policies, DROP COLUMN failures;"
           "DROP INDEX \"%1$s\".jobs_due;"
           "CREATE INDEX jobs_next_run_time ON \"%1$s\".jobs (next_run_time);"
           "UPDATE \"%1$s\".schema_version SET version = 1",
           schema);
  raw_exec(c, sql);
  st = open_store(schema);
  snprintf(sql, sizeof sql, "SELECT version FROM \"%s\".schema_version", schema);
  assert_value(c, sql, "6");
  /* Version 6: a scheduler's runs are indexed by claim. */
  snprintf(sql, sizeof sql,
           "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes"
           " WHERE schemaname = '%s' AND tablename = 'runs'", schema);
  assert_value(c, sql, "runs_owner_token,runs_pkey,runs_stop,runs_waiting");
  /* Version 4: the claim's order is the jobs' index. */
  snprintf(sql, sizeof sql,
           "SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes"
           " WHERE schemaname = '%s' AND tablename = 'jobs'", schema);
  char want[256];
  snprintf(want, sizeof want,
           "CREATE INDEX jobs_due ON %s.jobs USING btree (next_run_time, id); "
           "CREATE UNIQUE INDEX jobs_pkey ON %s.jobs USING btree (id)", schema, schema);
  assert_value(c, sql, want);
  const apsched_job_record *found;
  assert_int_equal(st->vtable->lookup(st, "kept", &found), APSCHED_OK);
  assert_int_equal(found->next_run_time, T0);
  assert_int_equal(claim_and_open(st, T0), APSCHED_OK);
  assert_int_equal(rows_of(c, schema, "runs", "true"), 1);
  apsched_jobstore_free(st);
  PQfinish(c);
}

/* A scheduler's row and lock: written at open (name, host, pid), the lock
 * visible in pg_locks, both gone at close. */
static void test_scheduler_registration(void **state) {
  (void)state;
  char schema[64], sql[512];
  new_schema(schema, sizeof schema, "registered");
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema,
                          .scheduler_name = "worker 7"};
  apsched_jobstore *st;
  assert_int_equal(apsched_pg_store_create(&o, &st, NULL, 0), APSCHED_OK);
  PGconn *c = pg_server_connect();
  assert_int_equal(rows_of(c, schema, "schedulers", "true"), 0); /* not before a scheduler opens it */
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = sched_with(&fc, NULL, st);
  char id[40];
  snprintf(id, sizeof id, "%s", apsched__pg_store_id(st));
  snprintf(sql, sizeof sql, "id = '%s' AND name = 'worker 7' AND pid = %d AND host <> '' AND "
           "heartbeat_at > now() - interval '10 seconds'", id, (int)getpid());
  assert_int_equal(rows_of(c, schema, "schedulers", sql), 1);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
           "AND classid = hashtext('libapsched-pg ' || '%s')::oid AND objid = hashtext('%s')::oid",
           schema, id);
  assert_value(c, sql, "1");
  apsched_free(s);
  /* The server ends the session (and drops its lock) just after the close. */
  char *held = raw_value(c, sql);
  for (int i = 0; i < 500 && strcmp(held, "0") != 0; i++) {
    free(held);
    struct timespec ms = {0, 10000000};
    nanosleep(&ms, NULL);
    held = raw_value(c, sql);
  }
  assert_string_equal(held, "0");
  free(held);
  snprintf(sql, sizeof sql, "id = '%s'", id);
  assert_int_equal(rows_of(c, schema, "schedulers", sql), 0);
  PQfinish(c);
}

/* Schedulers with different leases share a schema: each is judged by its
 * own. B (lease 100 ms) does not take over the runs of A (lease 3 s)
 * whose heartbeat, every second, is older than B's 2 x 100 ms. */
static void test_each_scheduler_judged_by_its_own_lease(void **state) {
  (void)state;
  char schema[64], sql[256];
  new_schema(schema, sizeof schema, "leases");
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema, .lease_ms = 3000};
  apsched_jobstore *a, *b;
  assert_int_equal(apsched_pg_store_create(&o, &a, NULL, 0), APSCHED_OK);
  o.lease_ms = 100;
  assert_int_equal(apsched_pg_store_create(&o, &b, NULL, 0), APSCHED_OK);
  apsched_job_record *rec = plain_record("slow", T0);
  assert_int_equal(a->vtable->add(a, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(a, T0), APSCHED_OK); /* a registers, holds the run */
  PGconn *c = pg_server_connect();
  snprintf(sql, sizeof sql,
           "SELECT now() - heartbeat_at > interval '300 milliseconds' FROM \"%s\".schedulers "
           "WHERE id = '%s'", schema, apsched__pg_store_id(a));
  char *old = raw_value(c, sql);
  for (int i = 0; i < 300 && strcmp(old, "t") != 0; i++) {
    free(old);
    struct timespec ms = {0, 10000000};
    nanosleep(&ms, NULL);
    old = raw_value(c, sql);
  }
  assert_string_equal(old, "t");
  free(old);
  apsched_orphan_run orphans[2];
  assert_int_equal(b->vtable->claim_orphans(b, orphans, 2), 0);
  assert_int_equal(b->vtable->commit(b), APSCHED_OK);
  /* a goes (its row with it): now its run is b's. */
  apsched_jobstore_free(a);
  int n = b->vtable->claim_orphans(b, orphans, 2);
  assert_int_equal(b->vtable->commit(b), APSCHED_OK);
  assert_int_equal(n, 1);
  assert_string_equal(orphans[0].rec->id, "slow");
  apsched_job_record_free(orphans[0].rec);
  apsched_jobstore_free(b);
  PQfinish(c);
}

/* The runs of one claim share its token, and a call that ends all of them
 * closes them by it (one range of runs_owner_token): still fenced, so a
 * run of the claim that a survivor took over meanwhile stays the
 * survivor's, its end is not in the history, and the others close. */
static void test_whole_claim_closed_but_the_run_taken_over(void **state) {
  (void)state;
  char schema[64], sql[256];
  new_schema(schema, sizeof schema, "wholeclaim");
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema,
                          .history_retention = APSCHED_PG_HISTORY_FOREVER};
  apsched_jobstore *st;
  assert_int_equal(apsched_pg_store_create(&o, &st, NULL, 0), APSCHED_OK);
  apsched_job_record *recs[3] = {plain_record("w1", T0), plain_record("w2", T0), plain_record("w3", T0)};
  assert_int_equal(st->vtable->add(st, recs, 3, NULL, NULL), APSCHED_OK);
  apsched_job_record *due[3];
  assert_int_equal(st->vtable->claim_due(st, T0, due, 3), 3);
  char ids[3][8]; /* the records are the batch's: gone at its commit */
  for (int i = 0; i < 3; i++) {
    snprintf(ids[i], sizeof ids[i], "%s", due[i]->id);
    apsched_time_t t = T0;
    bool track = false;
    assert_int_equal(st->vtable->runs_open(st, due[i], &t, 1, &track), APSCHED_OK);
    assert_int_equal(st->vtable->release(st, due[i], T0 + APSCHED_HOUR, T0 + APSCHED_HOUR, false),
                     APSCHED_OK);
  }
  assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  PGconn *c = pg_server_connect();
  assert_int_equal(rows_of(c, schema, "runs", "true"), 3);
  snprintf(sql, sizeof sql, "SELECT count(DISTINCT token) FROM \"%s\".runs", schema);
  assert_value(c, sql, "1");
  /* What a survivor's take-over does to w2's row. */
  snprintf(sql, sizeof sql,
           "UPDATE \"%s\".runs SET token = token + 1000, owner = 'survivor' WHERE job_id = 'w2'",
           schema);
  PQclear(raw_query(c, sql, 0, NULL));
  apsched_run_result r[3];
  for (int i = 0; i < 3; i++)
    r[i] = (apsched_run_result){.job_id = ids[i], .scheduled_time = T0, .attempt = 1,
                                .outcome = APSCHED_RUN_EXECUTED, .started_at = T0 + 1,
                                .finished_at = T0 + 2};
  assert_int_equal(st->vtable->runs_closed(st, r, 3), APSCHED_OK);
  assert_int_equal(rows_of(c, schema, "runs", "true"), 1);
  assert_int_equal(rows_of(c, schema, "runs", "job_id = 'w2' AND owner = 'survivor'"), 1);
  snprintf(sql, sizeof sql,
           "SELECT string_agg(job_id, ',' ORDER BY job_id) FROM \"%s\".run_history", schema);
  assert_value(c, sql, "w1,w3");
  PQfinish(c);
  apsched_jobstore_free(st);
}

/* A batch that opens runs of a job at two times, one of which is recorded
 * already (a survivor holds it): the other is written and stays claimed,
 * the recorded one is not this scheduler's. */
static void test_a_time_recorded_already_is_left_out(void **state) {
  (void)state;
  char schema[64], sql[512];
  new_schema(schema, sizeof schema, "recorded");
  apsched_jobstore *st = open_store(schema);
  apsched_job_record *rec = plain_record("dup", T0);
  rec->max_instances = 3;
  rec->flags = 0; /* missed times run one by one */
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  PGconn *c = pg_server_connect();
  snprintf(sql, sizeof sql,
           "INSERT INTO \"%s\".runs (job_id, scheduled_time, owner, token, attempt, func, executor,"
           " max_instances, max_runtime_ms, delivery) VALUES ('dup', %lld, 'survivor', 999999, 2,"
           " '" TICK "', 'default', 3, 0, 'at_most_once')",
           schema, (long long)T0);
  raw_exec(c, sql);
  apsched_job_record *due[1];
  assert_int_equal(st->vtable->claim_due(st, T0, due, 1), 1);
  apsched_time_t times[2] = {T0 - 10 * APSCHED_SEC, T0};
  bool track = false;
  assert_int_equal(st->vtable->runs_open(st, due[0], times, 2, &track), APSCHED_OK);
  assert_int_equal(st->vtable->release(st, due[0], T0 + APSCHED_HOUR, T0 + APSCHED_HOUR, false),
                   APSCHED_OK);
  assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  assert_int_equal(rows_of(c, schema, "runs", "owner = 'survivor'"), 1);
  assert_int_equal(rows_of(c, schema, "runs", "owner <> 'survivor'"), 1);
  /* Its starts were recorded ahead: the written one is this scheduler's. */
  assert_int_equal(st->vtable->run_starting(st, "dup", T0 - 10 * APSCHED_SEC, 1), APSCHED_OK);
  assert_int_equal(st->vtable->run_starting(st, "dup", T0, 1), APSCHED_ESTATE);
  PQfinish(c);
  apsched_jobstore_free(st);
}

/* A scheduler that stops while it holds runs keeps its row, dead (lease
 * 0), so the others take its runs over at their next look; runs whose
 * owner has no row at all (deleted by hand) are found by the look at
 * every run the store makes once a second (between those, a takeover only
 * reads the rows of dead schedulers). */
static void test_runs_without_a_scheduler_row_are_taken_over(void **state) {
  (void)state;
  char schema[64], sql[256], id[128];
  new_schema(schema, sizeof schema, "rowless");
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema};
  apsched_jobstore *a, *b;
  assert_int_equal(apsched_pg_store_create(&o, &a, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_pg_store_create(&o, &b, NULL, 0), APSCHED_OK);
  apsched_job_record *rec = plain_record("ghostly", T0);
  rec->flags |= APSCHED_JOB_AT_LEAST_ONCE;
  assert_int_equal(a->vtable->add(a, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(a, T0), APSCHED_OK);
  apsched_orphan_run orphans[2];
  assert_int_equal(b->vtable->claim_orphans(b, orphans, 2), 0); /* a is alive */
  snprintf(id, sizeof id, "%s", apsched__pg_store_id(a));
  apsched_jobstore_free(a);
  PGconn *c = pg_server_connect();
  snprintf(sql, sizeof sql, "SELECT lease_ms FROM \"%s\".schedulers WHERE id = '%s'", schema, id);
  char *lease = raw_value(c, sql);
  assert_string_equal(lease, "0");
  free(lease);
  snprintf(sql, sizeof sql, "DELETE FROM \"%s\".schedulers WHERE id = '%s'", schema, id);
  raw_exec(c, sql);
  int64_t t0 = mono_ms();
  int n = 0;
  while (n == 0 && mono_ms() - t0 < 5000) {
    n = b->vtable->claim_orphans(b, orphans, 2);
    assert_true(n >= 0);
    if (n == 0) sleep_ms(20);
  }
  int64_t took = mono_ms() - t0;
  assert_int_equal(n, 1);
  assert_int_equal(b->vtable->commit(b), APSCHED_OK);
  assert_string_equal(orphans[0].rec->id, "ghostly");
  assert_int_equal(orphans[0].attempt, 2);
  assert_true(took < 3000); /* once a second, with room for a slow machine */
  apsched_job_record_free(orphans[0].rec);
  apsched_jobstore_free(b);
  PQfinish(c);
}

/* The database's clock: host time plus the offset of the fastest of the
 * recent round trips; before any, the host's time. */
static void test_clock_estimate(void **state) {
  (void)state;
  char schema[64];
  new_schema(schema, sizeof schema, "clock");
  apsched_jobstore *st = open_store(schema);
  pg_store *ps = (pg_store *)st;
  assert_int_equal(st->vtable->clock(st, T0), T0);
  apsched__pg_clock_sample(ps, 1000, 1000 + 500 + 7000, 2000);  /* rtt 1000, offset 7000 */
  assert_int_equal(st->vtable->clock(st, T0), T0 + 7000);
  apsched__pg_clock_sample(ps, 5000, 5000 + 50 + 3000, 5100);   /* rtt 100, offset 3000 */
  assert_int_equal(st->vtable->clock(st, T0), T0 + 3000);
  apsched__pg_clock_sample(ps, 9000, 9000 + 2500 - 900, 14000); /* slower: ignored */
  assert_int_equal(st->vtable->clock(st, T0), T0 + 3000);
  /* After a scheduler registered, a real sample: this host is the server's. */
  apsched_jobstore_free(st);
  st = open_store(schema);
  apsched_orphan_run o[1];
  assert_int_equal(st->vtable->claim_orphans(st, o, 1), 0); /* registers */
  apsched_time_t now = apsched_now(), db = st->vtable->clock(st, now);
  assert_true(db - now < 50 * APSCHED_MSEC && now - db < 50 * APSCHED_MSEC);
  apsched_jobstore_free(st);
}

int main(void) {
  if (pg_server_start() != 0) return pg_server_unavailable();
  store_kit kit = {"postgresql store", make_store, NULL, locate_store, open_store_at, stall_store};
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schema_is_readable),
      cmocka_unit_test(test_newer_schema_is_refused_untouched),
      cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_restart_continues_the_schedule),
      cmocka_unit_test(test_unstorable_jobs_are_refused),
      cmocka_unit_test(test_text_the_database_cannot_keep),
      cmocka_unit_test(test_undecodable_rows_are_kept_and_reported),
      cmocka_unit_test(test_terminated_backend),
      cmocka_unit_test(test_scheduler_survives_a_terminated_backend),
      cmocka_unit_test(test_stalled_batch_lets_go),
      cmocka_unit_test(test_server_restart),
      cmocka_unit_test(test_run_rows_and_max_instances),
      cmocka_unit_test(test_batch_writes_of_odd_ids),
      cmocka_unit_test(test_churned_runs_table_is_vacuumed),
      cmocka_unit_test(test_run_history),
      cmocka_unit_test(test_history_is_fenced),
      cmocka_unit_test(test_lost_run_in_history),
      cmocka_unit_test(test_restart_keeps_schedulers_alive),
      cmocka_unit_test(test_migration_from_version_1),
      cmocka_unit_test(test_scheduler_registration),
      cmocka_unit_test(test_clock_estimate),
      cmocka_unit_test(test_each_scheduler_judged_by_its_own_lease),
      cmocka_unit_test(test_runs_without_a_scheduler_row_are_taken_over),
      cmocka_unit_test(test_whole_claim_closed_but_the_run_taken_over),
      cmocka_unit_test(test_a_time_recorded_already_is_left_out),
  };
  int failed = cmocka_run_group_tests_name("postgresql store", tests, NULL, NULL);
  failed += store_kit_run(&kit);
  return failed;
}
