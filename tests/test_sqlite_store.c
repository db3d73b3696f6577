/* The SQLite job store (libapsched-sqlite): the conformance kit on real
 * files, the readable schema, restarts, refusals, rows it cannot decode,
 * the one-scheduler lock, and failures of the database. Every file lives in
 * a fresh temporary directory, removed at the end. */
#include "store_conformance.h"
#include "persistent_store.h"
#include "apsched_sqlite.h"
#include "stores/sqlite/sqlite_internal.h"

#include <ftw.h>
#include <sys/fsuid.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];
static atomic_int file_seq;

/* A new file name in the temporary directory. */
static void new_path(char *buf, size_t len, const char *stem) {
  snprintf(buf, len, "%s/%s-%d.db", tmpdir, stem, atomic_fetch_add(&file_seq, 1));
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void remove_tmpdir(void) { nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

static apsched_jobstore *open_store(const char *path, apsched_sqlite_durability durability) {
  apsched_sqlite_options o = {.path = path, .durability = durability};
  apsched_jobstore *st = NULL;
  char err[256] = "";
  apsched__error(APSCHED_OK, "untouched");
  int rc = apsched_sqlite_store_create(&o, &st, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("sqlite store on %s: %s (%s)", path, apsched_strerror(rc), err);
  /* A call that succeeds leaves apsched_last_error() alone. */
  assert_string_equal(apsched_last_error(), "untouched");
  return st;
}

/* ------------------------------------------------------ conformance kit */

static apsched_jobstore *make_store(void *ud) {
  char path[300];
  new_path(path, sizeof path, "kit");
  return open_store(path, *(apsched_sqlite_durability *)ud);
}

static char *store_location(void *ud, apsched_jobstore *st) {
  (void)ud;
  return strdup(sqlite3_db_filename(apsched__sqlite_store_db(st), "main"));
}

static apsched_jobstore *store_at(void *ud, const char *where) {
  return open_store(where, *(apsched_sqlite_durability *)ud);
}


/* ------------------------------------------------------------- helpers */

/* A hosted scheduler on a fake clock with the SQLite store at path as "db". */
static apsched_scheduler *sched_with_store(fake_clock *fc, recorder *r, const char *path) {
  return sched_with(fc, r, open_store(path, APSCHED_SQLITE_FULL));
}

/* A plain connection to the file, as the sqlite3 shell would open it. */
static sqlite3 *raw_open(const char *path) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  return db;
}

static void raw_exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) fail_msg("%s: %s", sql, err);
}

/* Every column of one row as "col=value|...", values written as SQL
 * literals (so a text '5' and an integer 5 differ). */
static char *raw_row(sqlite3 *db, const char *table, const char *id) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" WHERE id = ?", table);
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
  sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
  char *out = NULL;
  if (sqlite3_step(q) == SQLITE_ROW) {
    out = calloc(1, 4096);
    size_t len = 0;
    for (int c = 0; c < sqlite3_column_count(q); c++) {
      int type = sqlite3_column_type(q, c); /* before column_text converts it */
      len += (size_t)snprintf(out + len, 4096 - len, "%s=", sqlite3_column_name(q, c));
      if (type == SQLITE_BLOB) {
        const unsigned char *b = sqlite3_column_blob(q, c);
        len += (size_t)snprintf(out + len, 4096 - len, "x'");
        for (int k = 0; k < sqlite3_column_bytes(q, c); k++)
          len += (size_t)snprintf(out + len, 4096 - len, "%02x", b[k]);
        len += (size_t)snprintf(out + len, 4096 - len, "'|");
      } else if (type == SQLITE_NULL) {
        len += (size_t)snprintf(out + len, 4096 - len, "NULL|");
      } else {
        const char *quote = type == SQLITE_TEXT ? "'" : "";
        len += (size_t)snprintf(out + len, 4096 - len, "%s%s%s|", quote,
                                (const char *)sqlite3_column_text(q, c), quote);
      }
    }
  }
  sqlite3_finalize(q);
  return out;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* ------------------------------------------------------------- schema */

/* The columns hold readable values: sqlite3 explains the jobs by itself. */
static void test_schema_is_readable(void **state) {
  (void)state;
  char path[300];
  new_path(path, sizeof path, "schema");
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = sched_with_store(&fc, NULL, path);
  add_sample_jobs(s, APSCHED_AT_LEAST_ONCE);

  sqlite3 *db = raw_open(path);
  char *row = raw_row(db, "apsched_jobs", "report");
  assert_non_null(row);
  assert_string_equal(row,
                      "id='report'|name='Daily report'|func='" TICK "'|"
                      "trigger='interval[seconds=10, start_date='2026-01-01T00:00:00Z']'|"
                      "executor='default'|arg=x'010278797a'|misfire_grace_ms=2500|coalesce=0|"
                      "max_instances=3|max_runtime_ms=30000|next_run_time=1767225610000250|"
                      "trigger_time=1767225610000250|paused=0|"
                      "next_run_at='2026-01-01T00:00:10.000250Z'|delivery='at_most_once'|"
                      "policies='catchup_window=3600s, pause_after_failures=3'|failures=0|");
  free(row);
  row = raw_row(db, "apsched_jobs", "nightly");
  assert_string_equal(row,
                      "id='nightly'|name=NULL|func='" TICK "'|"
                      "trigger='cron[year='*', month='*', day='*', week='*', day_of_week='*', "
                      "hour='3', minute='30', second='0', timezone='Europe/Berlin']'|"
                      "executor='default'|arg=NULL|misfire_grace_ms=NULL|coalesce=1|"
                      "max_instances=1|max_runtime_ms=0|next_run_time=NULL|trigger_time=NULL|"
                      "paused=1|next_run_at=NULL|delivery='at_least_once'|policies=NULL|failures=0|");
  free(row);
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM apsched_schema", -1, &q, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(q, 0), APSCHED_SQLITE_SCHEMA_VERSION);
  assert_int_equal(sqlite3_step(q), SQLITE_DONE);
  sqlite3_finalize(q);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
  sqlite3_finalize(q);
  sqlite3_close(db);

  /* And the same values come back through the API. */
  apsched_job *j = get(s, "report");
  assert_string_equal(j->name, "Daily report");
  assert_string_equal(j->func_name, TICK);
  assert_int_equal(j->max_instances, 3);
  assert_int_equal(j->catchup_window, APSCHED_HOUR);
  assert_int_equal(j->pause_after_failures, 3);
  assert_string_equal(j->policies, "catchup_window=3600s, pause_after_failures=3");
  assert_int_equal(j->misfire_grace_time, 2500 * APSCHED_MSEC);
  assert_int_equal(j->max_runtime, 30 * APSCHED_SEC);
  assert_false(j->coalesce);
  assert_int_equal(j->delivery, APSCHED_AT_MOST_ONCE);
  assert_null(j->broken);
  apsched_job_free(j);
  j = get(s, "nightly");
  assert_true(j->paused);
  assert_int_equal(j->misfire_grace_time, APSCHED_GRACE_UNLIMITED);
  assert_int_equal(j->delivery, APSCHED_AT_LEAST_ONCE);
  apsched_job_free(j);
  apsched_free(s);
}

/* A file written by a newer library is refused, and not changed at all. */
static void test_newer_schema_is_refused_untouched(void **state) {
  (void)state;
  char path[300];
  new_path(path, sizeof path, "newer");
  sqlite3 *db = raw_open(path);
  char sql[300], expect[100];
  snprintf(sql, sizeof sql,
           "CREATE TABLE apsched_schema (version INTEGER NOT NULL);"
           "INSERT INTO apsched_schema VALUES (%d);"
           "CREATE TABLE apsched_jobs (id TEXT PRIMARY KEY, future BLOB);"
           "INSERT INTO apsched_jobs VALUES ('j', x'00ff');",
           APSCHED_SQLITE_SCHEMA_VERSION + 1);
  raw_exec(db, sql);
  sqlite3_close(db);
  size_t len_before, len_after;
  char *before = read_file(path, &len_before);
  apsched_sqlite_options o = {.path = path};
  apsched_jobstore *st = (apsched_jobstore *)1;
  char err[256];
  assert_int_equal(apsched_sqlite_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_null(st);
  snprintf(expect, sizeof expect, "has schema version %d, newer than the %d this library knows",
           APSCHED_SQLITE_SCHEMA_VERSION + 1, APSCHED_SQLITE_SCHEMA_VERSION);
  assert_non_null(strstr(err, expect));
  assert_non_null(strstr(err, path));
  char *after = read_file(path, &len_after);
  assert_int_equal(len_before, len_after);
  assert_memory_equal(before, after, len_before);
  free(before);
  free(after);
  /* Another program's table under our name is not taken over either. */
  new_path(path, sizeof path, "foreign");
  db = raw_open(path);
  raw_exec(db, "CREATE TABLE apsched_jobs (id TEXT PRIMARY KEY);");
  sqlite3_close(db);
  assert_int_equal(apsched_sqlite_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "has a table 'apsched_jobs' but no 'apsched_schema' table"));
  /* ... though another prefix shares the file with it. */
  o.table_prefix = "sched2_";
  assert_int_equal(apsched_sqlite_store_create(&o, &st, err, sizeof err), APSCHED_OK);
  apsched_jobstore_free(st);
  db = raw_open(path);
  raw_exec(db, "SELECT id, paused FROM sched2_jobs; SELECT version FROM sched2_schema");
  sqlite3_close(db);
}

static void test_bad_options(void **state) {
  (void)state;
  apsched_jobstore *st;
  char err[256];
  assert_int_equal(apsched_sqlite_store_create(NULL, &st, err, sizeof err), APSCHED_EINVAL);
  apsched_sqlite_options o = {0};
  assert_int_equal(apsched_sqlite_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "sqlite store: path is NULL");
  char path[300];
  new_path(path, sizeof path, "options");
  o = (apsched_sqlite_options){.path = path, .table_prefix = "bad-prefix;"};
  assert_int_equal(apsched_sqlite_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "table_prefix 'bad-prefix;' must be"));
  o = (apsched_sqlite_options){.path = path, .durability = 7};
  assert_int_equal(apsched_sqlite_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "durability 7"));
  o = (apsched_sqlite_options){.path = path, .busy_timeout_ms = -1};
  assert_int_equal(apsched_sqlite_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "busy_timeout_ms -1"));
  assert_int_equal(access(path, F_OK), -1); /* nothing was created */
}

/* ------------------------------------------------------------ restart */

static apsched_jobstore *open_full(const char *path) { return open_store(path, APSCHED_SQLITE_FULL); }

static void test_restart_continues_the_schedule(void **state) {
  (void)state;
  char path[300];
  new_path(path, sizeof path, "restart");
  persistent_restart_test(open_full, path);
}

/* ------------------------------------------------------------ history */

static int failing_job(apsched_run_ctx *run) {
  apsched_run_set_error(run, "boom at %lld", (long long)(apsched_run_scheduled_time(run) - T0));
  return 3;
}

/* "job|scheduled|attempt|started|finished|outcome|retval|error;" per row,
 * times in seconds after T0, oldest first. */
static char *history_of(const char *path) {
  sqlite3 *db = raw_open(path);
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT job_id, scheduled_time, attempt, started_at, "
                                      "finished_at, outcome, retval, error FROM apsched_run_history "
                                      "ORDER BY scheduled_time, job_id",
                                      -1, &q, NULL),
                   SQLITE_OK);
  char *out = calloc(1, 4096);
  size_t len = 0;
  while (sqlite3_step(q) == SQLITE_ROW)
    len += (size_t)snprintf(out + len, 4096 - len, "%s|%lld|%d|%lld|%lld|%s|%d|%s;",
                            (const char *)sqlite3_column_text(q, 0),
                            (long long)((sqlite3_column_int64(q, 1) - T0) / APSCHED_SEC),
                            sqlite3_column_int(q, 2),
                            (long long)((sqlite3_column_int64(q, 3) - T0) / APSCHED_SEC),
                            (long long)((sqlite3_column_int64(q, 4) - T0) / APSCHED_SEC),
                            (const char *)sqlite3_column_text(q, 5), sqlite3_column_int(q, 6),
                            sqlite3_column_type(q, 7) == SQLITE_NULL
                                ? "NULL"
                                : (const char *)sqlite3_column_text(q, 7));
  sqlite3_finalize(q);
  sqlite3_close(db);
  return out;
}

/* A scheduler on the file with a run history of the given retention. */
static apsched_scheduler *sched_with_history(fake_clock *fc, recorder *r, const char *path,
                                             int64_t retention) {
  apsched_scheduler *s = hosted_scheduler(fc, r, NULL);
  apsched_sqlite_options o = {.path = path, .history_retention = retention};
  apsched_jobstore *st;
  assert_int_equal(apsched_sqlite_store_create(&o, &st, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "db"), APSCHED_OK);
  return s;
}

/* Every ended run is a row of apsched_run_history (what happened, when,
 * with the job's error), pruned by the retention; no history by default. */
static void test_run_history(void **state) {
  (void)state;
  char path[300];
  new_path(path, sizeof path, "history");
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  assert_int_equal(apsched_register_func("sqlite_test.fail", failing_job), APSCHED_OK);
  apsched_trigger *every10 = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options jobs[2] = {
      {.id = "ok", .func_name = TICK, .trigger = every10, .jobstore = "db",
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED},
      {.id = "bad", .func_name = "sqlite_test.fail", .trigger = every10, .jobstore = "db",
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .delivery = APSCHED_AT_LEAST_ONCE}};
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = sched_with_history(&fc, &r, path, APSCHED_SQLITE_HISTORY_FOREVER);
  assert_int_equal(apsched_add_jobs(s, jobs, 2, NULL), APSCHED_OK);
  for (int round = 1; round <= 3; round++) {
    fake_advance(&fc, 10 * APSCHED_SEC);
    pass(s);
    assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, (size_t)round));
    assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, (size_t)round));
  }
  apsched_free(s); /* hands over the runs that ended last */
  recorder_destroy(&r);
  char *h = history_of(path);
  assert_string_equal(h, "bad|10|1|10|10|failed|3|boom at 10000000;ok|10|1|10|10|executed|0|NULL;"
                         "bad|20|1|20|20|failed|3|boom at 20000000;ok|20|1|20|20|executed|0|NULL;"
                         "bad|30|1|30|30|failed|3|boom at 30000000;ok|30|1|30|30|executed|0|NULL;");
  free(h);

  /* Keep 25 s: the next run ended at 60 s, so the runs that ended before
   * 35 s go. The failed at-least-once runs are closed too: none is open. */
  fake_clock_init(&fc, T0 + 60 * APSCHED_SEC);
  recorder_init(&r);
  s = sched_with_history(&fc, &r, path, 25 * APSCHED_SEC);
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 1));
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_RECOVERED), 0);
  apsched_free(s);
  recorder_destroy(&r);
  h = history_of(path);
  assert_string_equal(h, "bad|60|1|60|60|failed|3|boom at 60000000;ok|60|1|60|60|executed|0|NULL;");
  free(h);

  /* No retention, no history. */
  sqlite3 *db = raw_open(path);
  raw_exec(db, "DELETE FROM apsched_run_history");
  sqlite3_close(db);
  fake_clock_init(&fc, T0 + 70 * APSCHED_SEC);
  recorder_init(&r);
  s = sched_with_store(&fc, &r, path);
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 1));
  apsched_free(s);
  recorder_destroy(&r);
  h = history_of(path);
  assert_string_equal(h, "");
  free(h);
  apsched_trigger_free(every10);
}

/* A file of schema version 1 (the first release) is migrated to the
 * current one in one step and its jobs keep running. */
static void test_migration_from_version_1(void **state) {
  (void)state;
  reset_runs();
  char path[300];
  new_path(path, sizeof path, "v1");
  sqlite3 *db = raw_open(path);
  /* Version 1's tables, as that release created them. */
  raw_exec(db,
           "CREATE TABLE \"apsched_schema\" (version INTEGER NOT NULL);"
           "INSERT INTO apsched_schema VALUES (1);"
           "CREATE TABLE \"apsched_jobs\" (id TEXT NOT NULL PRIMARY KEY, name TEXT, "
           "func TEXT NOT NULL, \"trigger\" TEXT NOT NULL, executor TEXT NOT NULL, arg BLOB, "
           "misfire_grace_ms INTEGER, coalesce INTEGER NOT NULL, max_instances INTEGER NOT NULL, "
           "max_runtime_ms INTEGER NOT NULL, next_run_time INTEGER, trigger_time INTEGER, "
           "paused INTEGER GENERATED ALWAYS AS (next_run_time IS NULL) VIRTUAL);"
           "CREATE INDEX \"apsched_jobs_next_run_time\" ON \"apsched_jobs\" (next_run_time);"
           "INSERT INTO apsched_jobs (id, func, \"trigger\", executor, coalesce, max_instances, "
           "max_runtime_ms, next_run_time, trigger_time) VALUES ('old', '" TICK "', "
           "'interval[seconds=10, start_date=''2026-01-01T00:00:00Z'']', 'default', 1, 1, 0, "
           "1767225610000000, 1767225610000000);");
  sqlite3_close(db);
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  fake_clock fc;
  fake_clock_init(&fc, T0 + 10 * APSCHED_SEC);
  recorder r;
  recorder_init(&r);
  /* Paused: the store's thread must not run it before it is looked at. */
  apsched_scheduler *s = paused_sched_with(&fc, &r, open_store(path, APSCHED_SQLITE_FULL));
  apsched_job *j = get(s, "old");
  assert_null(j->broken);
  assert_int_equal(j->delivery, APSCHED_AT_MOST_ONCE);
  assert_int_equal(j->next_run_time, T0 + 10 * APSCHED_SEC);
  apsched_job_free(j);
  assert_int_equal(apsched_resume(s), APSCHED_OK);
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(runs_of("old"), 1);
  apsched_free(s);
  recorder_destroy(&r);
  db = raw_open(path);
  raw_exec(db, "SELECT job_id, owner FROM apsched_runs; SELECT outcome FROM apsched_run_history");
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM apsched_schema", -1, &q, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(q, 0), APSCHED_SQLITE_SCHEMA_VERSION);
  sqlite3_finalize(q);
  char *row = raw_row(db, "apsched_jobs", "old");
  assert_non_null(strstr(row, "next_run_time=1767225620000000|"));
  assert_non_null(strstr(row, "delivery='at_most_once'|"));
  free(row);
  sqlite3_close(db);
}

/* ------------------------------------------------------------ refusals */

static void test_unstorable_jobs_are_refused(void **state) {
  (void)state;
  char path[300];
  new_path(path, sizeof path, "refusals");
  persistent_refusals_test(open_store(path, APSCHED_SQLITE_FULL), "SQLite");
}

/* ------------------------------------------------------ undecodable rows */

static void test_undecodable_rows_are_kept_and_reported(void **state) {
  (void)state;
  reset_runs();
  char path[300];
  new_path(path, sizeof path, "broken");
  apsched_jobstore_free(open_store(path, APSCHED_SQLITE_FULL)); /* creates the tables */
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  sqlite3 *db = raw_open(path);
  /* Written by a newer program (a trigger kind this one does not know) and
   * by hand (an hour out of range), both due long ago; and a good job. */
  char sql[1024];
  snprintf(sql, sizeof sql,
           "INSERT INTO apsched_jobs (id, func, \"trigger\", executor, coalesce, max_instances, "
           "max_runtime_ms, next_run_time) VALUES "
           "('lunar', '%s', 'lunar[phase=full]', 'default', 1, 1, 0, %lld), "
           "('bad-hour', '%s', 'cron[hour=''25'']', 'default', 1, 1, 0, %lld), "
           "('good', '%s', 'interval[seconds=10, start_date=''2026-01-01T00:00:00Z'']', "
           "'default', 1, 1, 0, %lld)",
           TICK, (long long)(T0 - APSCHED_HOUR), TICK, (long long)(T0 - APSCHED_HOUR), TICK,
           (long long)(T0 + 10 * APSCHED_SEC));
  raw_exec(db, sql);
  char *lunar_before = raw_row(db, "apsched_jobs", "lunar");
  char *hour_before = raw_row(db, "apsched_jobs", "bad-hour");

  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = sched_with_store(&fc, &r, path);
  for (int i = 0; i < 3; i++) {
    fake_advance(&fc, 10 * APSCHED_SEC);
    pass(s);
    assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, (size_t)i + 1));
  }
  apsched_job *jobs;
  size_t n;
  assert_int_equal(apsched_get_jobs(s, "db", &jobs, &n), APSCHED_OK);
  assert_int_equal(n, 3);
  apsched_jobs_free(jobs, n);
  pass(s);
  /* Reported once each, with the reason; never run; the good job runs. */
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
  /* Listed as broken, with the stored text as its trigger. */
  apsched_job *j = get(s, "lunar");
  assert_non_null(j->broken);
  assert_non_null(strstr(j->broken, "unknown trigger kind 'lunar'"));
  assert_string_equal(j->trigger, "lunar[phase=full]");
  assert_true(j->paused);
  apsched_job_free(j);
  assert_int_equal(apsched_resume_job(s, "lunar", NULL), APSCHED_EINVAL);
  /* The rows are exactly as they were. */
  char *lunar_after = raw_row(db, "apsched_jobs", "lunar");
  char *hour_after = raw_row(db, "apsched_jobs", "bad-hour");
  assert_string_equal(lunar_before, lunar_after);
  assert_string_equal(hour_before, hour_after);
  /* Removable, and then gone from the file. */
  assert_int_equal(apsched_remove_job(s, "lunar", NULL), APSCHED_OK);
  assert_null(raw_row(db, "apsched_jobs", "lunar"));
  /* A row fixed by hand is a job again, without a restart. */
  raw_exec(db, "UPDATE apsched_jobs SET \"trigger\" = 'cron[hour=''23'']' WHERE id = 'bad-hour'");
  j = get(s, "bad-hour");
  assert_null(j->broken);
  apsched_job_free(j);
  apsched_free(s);
  recorder_destroy(&r);
  sqlite3_close(db);
  free(lunar_before);
  free(lunar_after);
  free(hour_before);
  free(hour_after);
}

/* ---------------------------------------------------- one scheduler per file */

static void test_second_scheduler_is_refused(void **state) {
  (void)state;
  char path[300];
  new_path(path, sizeof path, "lock");
  apsched_jobstore *first = open_store(path, APSCHED_SQLITE_FULL);
  apsched_sqlite_options o = {.path = path};
  apsched_jobstore *second = (apsched_jobstore *)1;
  char err[256], want[400];
  assert_int_equal(apsched_sqlite_store_create(&o, &second, err, sizeof err), APSCHED_ESTATE);
  assert_null(second);
  snprintf(want, sizeof want, "'%s' is used by another scheduler (pid %ld, this process)", path,
           (long)getpid());
  assert_string_equal(err, want);
  /* Under another name of the same file, too. */
  char link[320];
  snprintf(link, sizeof link, "%s.link", path);
  assert_int_equal(symlink(path, link), 0);
  o.path = link;
  assert_int_equal(apsched_sqlite_store_create(&o, &second, err, sizeof err), APSCHED_ESTATE);
  assert_non_null(strstr(err, "is used by another scheduler"));
  o.path = path;
  /* An outside tool may open it meanwhile, but cannot run its jobs. */
  o.external = true;
  apsched_jobstore *tool;
  assert_int_equal(apsched_sqlite_store_create(&o, &tool, err, sizeof err), APSCHED_OK);
  apsched_job_record *out[4];
  assert_int_equal(tool->vtable->claim_due(tool, T0, out, 4), APSCHED_ESTATE);
  apsched_jobstore_free(tool);
  /* Once the first is gone, the file is free. */
  apsched_jobstore_free(first);
  o.external = false;
  assert_int_equal(apsched_sqlite_store_create(&o, &second, err, sizeof err), APSCHED_OK);
  apsched_jobstore_free(second);
}

/* A record as an outside tool builds it. */
static apsched_job_record *tool_record(const char *id, apsched_time_t next) {
  apsched_job_record *r = apsched__record_new(id);
  r->trigger = every(APSCHED_HOUR, T0);
  r->func = apsched_func_by_name(TICK);
  r->executor = "default";
  r->misfire_grace_ms = UINT32_MAX;
  r->max_instances = 1;
  r->flags = APSCHED_JOB_COALESCE;
  r->next_run_time = r->trigger_time = next;
  return r;
}

/* A tool (external = true) changes jobs while a scheduler runs on the
 * file: the scheduler sees each change at its next pass. */
static void test_outside_changes_are_seen(void **state) {
  (void)state;
  reset_runs();
  char path[300];
  new_path(path, sizeof path, "outside");
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.timezone = "UTC", .max_wait = 200 * APSCHED_MSEC};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "default"), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, open_store(path, APSCHED_SQLITE_NORMAL), "db"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &r, NULL), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  apsched_trigger *fast = every(20 * APSCHED_MSEC, 0);
  apsched_job_options o = {.id = "tick", .func_name = TICK, .trigger = fast, .jobstore = "db"};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 2));

  apsched_sqlite_options to = {.path = path, .external = true};
  apsched_jobstore *tool;
  assert_int_equal(apsched_sqlite_store_create(&to, &tool, NULL, 0), APSCHED_OK);
  /* The tool pauses "tick", then adds a marker due now. */
  const apsched_job_record *found;
  assert_int_equal(tool->vtable->lookup(tool, "tick", &found), APSCHED_OK);
  apsched_job_record *paused = apsched_job_record_copy(found);
  paused->next_run_time = paused->trigger_time = APSCHED_TIME_NONE;
  assert_int_equal(tool->vtable->update(tool, paused), APSCHED_OK);
  apsched_job_record *marker = tool_record("marker1", apsched_now());
  assert_int_equal(tool->vtable->add(tool, &marker, 1, NULL, NULL), APSCHED_OK);
  assert_true(wait_for_job(&r, APSCHED_EVENT_JOB_EXECUTED, "marker1"));
  int ticks = runs_of("tick");
  /* Whatever pass ran the marker saw the pause: another marker, added once
   * the scheduler has nothing due (it sleeps up to max_wait), runs, and
   * "tick" stays where it was. */
  int64_t t0 = apsched_now();
  marker = tool_record("marker2", apsched_now());
  assert_int_equal(tool->vtable->add(tool, &marker, 1, NULL, NULL), APSCHED_OK);
  assert_true(wait_for_job(&r, APSCHED_EVENT_JOB_EXECUTED, "marker2"));
  assert_true(apsched_now() - t0 < 3 * APSCHED_SEC); /* within max_wait, with CI slack */
  assert_int_equal(runs_of("tick"), ticks);
  apsched_job *j = get(s, "tick");
  assert_true(j->paused);
  apsched_job_free(j);
  apsched_jobstore_free(tool);
  apsched_trigger_free(fast);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  recorder_destroy(&r);
}

/* ------------------------------------------------------------- failures */

static void test_corrupt_file_is_refused(void **state) {
  (void)state;
  char path[300];
  new_path(path, sizeof path, "corrupt");
  FILE *f = fopen(path, "wb");
  for (int i = 0; i < 4096; i++) fputc("garbage!"[i % 8], f);
  fclose(f);
  apsched_sqlite_options o = {.path = path};
  apsched_jobstore *st;
  char err[256];
  assert_int_equal(apsched_sqlite_store_create(&o, &st, err, sizeof err), APSCHED_EBACKEND);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "file is not a database"));
  size_t len;
  char *bytes = read_file(path, &len);
  assert_int_equal(len, 4096);
  assert_memory_equal(bytes, "garbage!", 8);
  free(bytes);
}

/* A file this process may only read is refused at create (a scheduler must
 * write); an outside tool may still read it, and its writes fail with
 * SQLite's "attempt to write a readonly database". Root may write any file
 * (CI runs as root), so as root this thread takes the filesystem identity
 * of nobody (setfsuid, which also drops root's file capabilities) while it
 * opens the file. */
static void test_read_only_file(void **state) {
  (void)state;
  char dir[300], path[320];
  snprintf(dir, sizeof dir, "%s/readonly-%d", tmpdir, atomic_fetch_add(&file_seq, 1));
  assert_int_equal(mkdir(dir, 0777), 0);
  assert_int_equal(chmod(dir, 0777), 0); /* whatever the umask: nobody creates -shm here */
  assert_int_equal(chmod(tmpdir, 0711), 0); /* and may pass through the parent */
  snprintf(path, sizeof path, "%s/jobs.db", dir);
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_jobstore *st = open_store(path, APSCHED_SQLITE_FULL);
  apsched_job_record *rec = tool_record("kept", T0);
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  apsched_jobstore_free(st);
  assert_int_equal(chmod(path, 0444), 0);
  /* Everything as nobody first, checked after: a failed check must not
   * leave this thread without its identity. */
  bool root = geteuid() == 0;
  if (root) setfsuid(65534);
  bool dropped = !root || setfsuid((uid_t)-1) == 65534;
  apsched_sqlite_options o = {.path = path};
  char err[256] = "", tool_err[256] = "", add_err[256] = "";
  int create_rc = apsched_sqlite_store_create(&o, &st, err, sizeof err);
  o.external = true;
  apsched_jobstore *tool = NULL;
  int tool_rc = apsched_sqlite_store_create(&o, &tool, tool_err, sizeof tool_err);
  int lookup_rc = -100, add_rc = -100, remove_rc = -100;
  apsched_time_t found_next = 0;
  size_t failed = 99;
  if (tool) {
    const apsched_job_record *found;
    lookup_rc = tool->vtable->lookup(tool, "kept", &found);
    if (lookup_rc == APSCHED_OK) found_next = found->next_run_time;
    rec = tool_record("new", T0);
    add_rc = tool->vtable->add(tool, &rec, 1, NULL, &failed);
    snprintf(add_err, sizeof add_err, "%s", apsched__take_plugin_error());
    if (add_rc != APSCHED_OK) apsched_job_record_free(rec);
    remove_rc = tool->vtable->remove(tool, "kept");
    apsched_jobstore_free(tool);
  }
  if (root) setfsuid(0);
  chmod(tmpdir, 0700);
  assert_true(dropped);
  assert_int_equal(create_rc, APSCHED_EBACKEND);
  if (!strstr(err, "is read-only")) fail_msg("create: %s", err);
  if (tool_rc != APSCHED_OK) fail_msg("external create: %s", tool_err);
  assert_int_equal(lookup_rc, APSCHED_OK);
  assert_int_equal(found_next, T0);
  assert_int_equal(add_rc, APSCHED_EBACKEND);
  assert_int_equal(failed, 1); /* not the record's fault */
  if (!strstr(add_err, "attempt to write a readonly database")) fail_msg("add: %s", add_err);
  assert_int_equal(remove_rc, APSCHED_EBACKEND);
  assert_int_equal(chmod(path, 0644), 0);
}

/* Another connection holds the write lock: writes fail after busy_timeout
 * with SQLite's "database is locked", reads go on, other stores' jobs run,
 * and the store works again once the lock is gone. */
static void test_locked_database(void **state) {
  (void)state;
  reset_runs();
  char path[300];
  new_path(path, sizeof path, "locked");
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  apsched_sqlite_options o = {.path = path, .busy_timeout_ms = 50};
  apsched_jobstore *st;
  assert_int_equal(apsched_sqlite_store_create(&o, &st, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "db"), APSCHED_OK);
  apsched_trigger *every10 = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options jobs[2] = {
      {.id = "on-disk", .func_name = TICK, .trigger = every10, .jobstore = "db",
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED},
      {.id = "in-memory", .func_name = TICK, .trigger = every10}};
  assert_int_equal(apsched_add_job(s, &jobs[0], NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &jobs[1], NULL, 0), APSCHED_OK);

  sqlite3 *db = raw_open(path);
  raw_exec(db, "BEGIN EXCLUSIVE");
  apsched_job_options more = {.id = "more", .func_name = TICK, .jobstore = "db"};
  assert_int_equal(apsched_add_job(s, &more, NULL, 0), APSCHED_EBACKEND);
  assert_non_null(strstr(apsched_last_error(), "job store 'db'"));
  assert_non_null(strstr(apsched_last_error(), "database is locked"));
  assert_int_equal(next_of(s, "on-disk"), T0 + 10 * APSCHED_SEC); /* reads still work */
  fake_advance(&fc, 10 * APSCHED_SEC);
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_FAILED, 1));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(runs_of("in-memory"), 1);
  assert_int_equal(runs_of("on-disk"), 0);
  int e = recorder_find(&r, APSCHED_EVENT_JOBSTORE_FAILED, 0);
  assert_string_equal(r.ev[e].alias, "db");
  assert_non_null(strstr(r.ev[e].error, "database is locked"));

  raw_exec(db, "ROLLBACK");
  fake_advance(&fc, 15 * APSCHED_SEC); /* past any retry backoff (10 s at most) */
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_RECOVERED, 1));
  assert_true(wait_for_job(&r, APSCHED_EVENT_JOB_EXECUTED, "on-disk"));
  assert_int_equal(runs_of("on-disk"), 1); /* the two due runs coalesced */
  assert_int_equal(apsched_add_job(s, &more, NULL, 0), APSCHED_OK);
  sqlite3_close(db);
  apsched_trigger_free(every10);
  apsched_free(s);
  recorder_destroy(&r);
}

/* ----------------------------------------------------- claimed batches */

static int veto_commit(void *ud) {
  atomic_int *vetoes = ud;
  atomic_fetch_add(vetoes, 1);
  return 1; /* turns the COMMIT into a ROLLBACK */
}

/* A batch is one transaction: a release that fails undoes only its job
 * (the others run, it is due again), a commit that fails undoes the whole
 * batch (nothing runs, all are due again); either way each run happens once
 * when the store works again. */
static void test_failures_inside_a_claimed_batch(void **state) {
  (void)state;
  reset_runs();
  char path[300];
  new_path(path, sizeof path, "batch");
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  apsched_jobstore *st = open_store(path, APSCHED_SQLITE_FULL);
  sqlite3 *conn = apsched__sqlite_store_db(st);
  assert_int_equal(apsched_add_jobstore(s, st, "db"), APSCHED_OK);
  apsched_trigger *every10 = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options jobs[3] = {
      {.id = "a", .func_name = TICK, .trigger = every10, .jobstore = "db",
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED},
      {.id = "b", .func_name = TICK, .trigger = every10, .jobstore = "db",
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED},
      {.id = "c", .func_name = TICK, .trigger = every10, .jobstore = "db",
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED}};
  assert_int_equal(apsched_add_jobs(s, jobs, 3, NULL), APSCHED_OK);

  /* Storing b's next run time fails (a trigger in the file refuses it). */
  sqlite3 *db = raw_open(path);
  raw_exec(db, "CREATE TRIGGER refuse_b BEFORE UPDATE OF next_run_time ON apsched_jobs "
               "WHEN OLD.id = 'b' BEGIN SELECT RAISE(ABORT, 'b cannot be written'); END");
  fake_advance(&fc, 10 * APSCHED_SEC);
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_FAILED, 1));
  int e = recorder_find(&r, APSCHED_EVENT_JOBSTORE_FAILED, 0);
  assert_non_null(strstr(r.ev[e].error, "storing the next run time of job 'b': b cannot be written"));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 2));
  assert_int_equal(runs_of("a"), 1);
  assert_int_equal(runs_of("b"), 0);
  assert_int_equal(runs_of("c"), 1);
  assert_int_equal(next_of(s, "a"), T0 + 20 * APSCHED_SEC);
  assert_int_equal(next_of(s, "b"), T0 + 10 * APSCHED_SEC); /* still due */
  raw_exec(db, "DROP TRIGGER refuse_b");
  fake_advance(&fc, APSCHED_SEC); /* past the first retry (100 ms) */
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_RECOVERED, 1));
  assert_true(wait_for_job(&r, APSCHED_EVENT_JOB_EXECUTED, "b"));
  assert_int_equal(runs_of("b"), 1);
  assert_int_equal(next_of(s, "b"), T0 + 20 * APSCHED_SEC);

  /* The commit of the next batch fails: none of a, b, c runs. */
  atomic_int vetoes = 0;
  sqlite3_commit_hook(conn, veto_commit, &vetoes);
  fake_advance(&fc, 9 * APSCHED_SEC);
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_FAILED, 2));
  e = recorder_find(&r, APSCHED_EVENT_JOBSTORE_FAILED, 1);
  assert_non_null(strstr(r.ev[e].error, "committing the claimed jobs"));
  assert_true(atomic_load(&vetoes) >= 1);
  assert_int_equal(runs_of("a") + runs_of("b") + runs_of("c"), 3);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_SUBMITTED), 3);
  assert_int_equal(next_of(s, "a"), T0 + 20 * APSCHED_SEC);
  sqlite3_commit_hook(conn, NULL, NULL);
  fake_advance(&fc, 15 * APSCHED_SEC); /* past any backoff */
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_RECOVERED, 2));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 6));
  assert_int_equal(runs_of("a"), 2); /* 20 s and 30 s coalesced into one */
  assert_int_equal(runs_of("b"), 2);
  assert_int_equal(runs_of("c"), 2);
  assert_int_equal(next_of(s, "a"), T0 + 40 * APSCHED_SEC);
  sqlite3_close(db);
  apsched_trigger_free(every10);
  apsched_free(s);
  recorder_destroy(&r);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "%s/apsched-sqlite-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  apsched_sqlite_durability full = APSCHED_SQLITE_FULL, normal = APSCHED_SQLITE_NORMAL;
  store_kit kit_full = {"sqlite store (synchronous=FULL)", make_store, &full, store_location,
                       store_at};
  store_kit kit_normal = {"sqlite store (synchronous=NORMAL)", make_store, &normal, store_location,
                         store_at};
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schema_is_readable),
      cmocka_unit_test(test_newer_schema_is_refused_untouched),
      cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_restart_continues_the_schedule),
      cmocka_unit_test(test_run_history),
      cmocka_unit_test(test_migration_from_version_1),
      cmocka_unit_test(test_unstorable_jobs_are_refused),
      cmocka_unit_test(test_undecodable_rows_are_kept_and_reported),
      cmocka_unit_test(test_second_scheduler_is_refused),
      cmocka_unit_test(test_outside_changes_are_seen),
      cmocka_unit_test(test_corrupt_file_is_refused),
      cmocka_unit_test(test_read_only_file),
      cmocka_unit_test(test_locked_database),
      cmocka_unit_test(test_failures_inside_a_claimed_batch),
  };
  int failed = cmocka_run_group_tests_name("sqlite store", tests, NULL, NULL);
  failed += store_kit_run(&kit_full);
  failed += store_kit_run(&kit_normal);
  remove_tmpdir();
  return failed;
}
