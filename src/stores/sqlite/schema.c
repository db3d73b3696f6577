/* The file's schema: created on first open, versioned, migrated forward.
 *
 * "@" in the SQL below stands for the table prefix ("apsched_" by default;
 * apsched__pstore_expand).
 * The CREATE statements are kept verbatim by SQLite, comments included, so
 * `sqlite3 jobs.db .schema` documents the columns. Version k of the schema
 * becomes k + 1 by running steps[k]; all the steps a file needs run in one
 * transaction with the new version number, so a file is always at exactly
 * one version. A file at a version newer than this library's is refused
 * before anything is written to it. */
#include "sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Version 0 (an empty file) to 1. */
static const char schema_v1[] =
    "CREATE TABLE \"@schema\" (\n"
    "  version INTEGER NOT NULL  -- the layout of the tables below (APSCHED_SQLITE_SCHEMA_VERSION)\n"
    ");\n"
    "CREATE TABLE \"@jobs\" (\n"
    "  id TEXT NOT NULL PRIMARY KEY,\n"
    "  name TEXT,                    -- NULL: the default name (the function's name)\n"
    "  func TEXT NOT NULL,           -- the name the function is registered under\n"
    "  \"trigger\" TEXT NOT NULL,      -- canonical text, e.g. interval[seconds=10, start_date='...']\n"
    "  executor TEXT NOT NULL,       -- executor alias\n"
    "  arg BLOB,                     -- the job's byte argument; NULL: none\n"
    "  misfire_grace_ms INTEGER,     -- NULL: unlimited\n"
    "  coalesce INTEGER NOT NULL,    -- 1: missed runs are run once\n"
    "  max_instances INTEGER NOT NULL,\n"
    "  max_runtime_ms INTEGER NOT NULL, -- 0: no limit\n"
    "  next_run_time INTEGER,        -- microseconds since 1970-01-01 UTC; NULL: paused\n"
    "  trigger_time INTEGER,         -- next_run_time before jitter\n"
    "  paused INTEGER GENERATED ALWAYS AS (next_run_time IS NULL) VIRTUAL,\n"
    "  next_run_at TEXT GENERATED ALWAYS AS (\n"
    "    strftime('%Y-%m-%dT%H:%M:%S', next_run_time / 1000000, 'unixepoch') ||\n"
    "    CASE WHEN next_run_time % 1000000 = 0 THEN 'Z'\n"
    "         ELSE printf('.%06dZ', next_run_time % 1000000) END\n"
    "  ) VIRTUAL                     -- next_run_time in RFC 3339, UTC\n"
    ");\n"
    "CREATE INDEX \"@jobs_next_run_time\" ON \"@jobs\" (next_run_time);\n";

/* Version 1 to 2: the delivery choice, run records, run history. */
static const char schema_v2[] =
    "ALTER TABLE \"@jobs\" ADD COLUMN delivery TEXT NOT NULL DEFAULT 'at_most_once'\n"
    "  CHECK (delivery IN ('at_most_once', 'at_least_once'));\n"
    "CREATE TABLE \"@runs\" (       -- runs of at-least-once jobs that have not ended\n"
    "  job_id TEXT NOT NULL,\n"
    "  scheduled_time INTEGER NOT NULL, -- microseconds since 1970-01-01 UTC\n"
    "  attempt INTEGER NOT NULL,     -- 1; 2 once run again after a crash, ...\n"
    "  owner TEXT NOT NULL,          -- the open of the file that runs it; another: it was\n"
    "                                -- left unfinished and is run again\n"
    "  claimed_at INTEGER NOT NULL,  -- when it was claimed (microseconds)\n"
    "  name TEXT,                    -- the job as it was claimed:\n"
    "  func TEXT NOT NULL,\n"
    "  executor TEXT NOT NULL,\n"
    "  arg BLOB,\n"
    "  max_instances INTEGER NOT NULL,\n"
    "  max_runtime_ms INTEGER NOT NULL,\n"
    "  PRIMARY KEY (job_id, scheduled_time)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE \"@run_history\" ( -- ended runs, kept for the store's history_retention\n"
    "  job_id TEXT NOT NULL,\n"
    "  scheduled_time INTEGER NOT NULL,\n"
    "  attempt INTEGER NOT NULL,\n"
    "  started_at INTEGER,           -- NULL: never started (missed, skipped)\n"
    "  finished_at INTEGER NOT NULL,\n"
    "  outcome TEXT NOT NULL CHECK (outcome IN ('executed', 'failed', 'missed', 'skipped')),\n"
    "  retval INTEGER,               -- what the job returned\n"
    "  error TEXT                    -- its error message\n"
    ");\n"
    "CREATE INDEX \"@run_history_finished_at\" ON \"@run_history\" (finished_at);\n"
    "CREATE INDEX \"@run_history_job\" ON \"@run_history\" (job_id, scheduled_time);\n";

/* Version 2 to 3: schedule policies and the count of consecutive failures. */
static const char schema_v3[] =
    "ALTER TABLE \"@jobs\" ADD COLUMN policies TEXT;  -- non-default schedule policies, e.g.\n"
    "  -- overlap=buffer_one, catchup_window=3600s, pause_after_failures=3; NULL: defaults\n"
    "ALTER TABLE \"@jobs\" ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;\n"
    "  -- consecutive failed runs; pause_after_failures of them pause the job\n";

static const char *const steps[APSCHED_SQLITE_SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3};

/* Runs one query that returns one row of integers into vals[0..n). */
static int query_ints(sqlite3 *db, const char *path, const char *sql_template, const char *prefix,
                      sqlite3_int64 *vals, int n, const char *what) {
  char *sql = apsched__pstore_expand(sql_template, prefix);
  if (!sql) return apsched__pstore_error(APSCHED_ENOMEM, "'%s': out of memory", path);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  free(sql);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    int code = apsched__sqlite_fail(db, path, what);
    sqlite3_finalize(st);
    return code;
  }
  for (int i = 0; i < n; i++) vals[i] = sqlite3_column_int64(st, i);
  sqlite3_finalize(st);
  return APSCHED_OK;
}

int apsched__sqlite_schema_version(sqlite3 *db, const char *prefix, const char *path,
                                   int *version) {
  sqlite3_int64 has[2] = {0, 0};
  int rc = query_ints(db, path,
                      "SELECT count(*) FILTER (WHERE name = '@schema'),"
                      " count(*) FILTER (WHERE name = '@jobs')"
                      " FROM sqlite_master WHERE type = 'table'",
                      prefix, has, 2, "reading the schema");
  if (rc != APSCHED_OK) return rc;
  if (has[0] == 0) {
    if (has[1] != 0)
      return apsched__pstore_error(APSCHED_EINVAL,
                                  "'%s' has a table '%sjobs' but no '%sschema' table: it was not "
                                  "made by libapsched-sqlite (use another table_prefix)",
                                  path, prefix, prefix);
    *version = 0;
    return APSCHED_OK;
  }
  sqlite3_int64 v[2] = {0, 0};
  rc = query_ints(db, path, "SELECT max(version), count(*) FROM \"@schema\"", prefix, v, 2,
                  "reading the schema version");
  if (rc != APSCHED_OK) return rc;
  if (v[1] != 1 || v[0] < 1 || v[0] > 1000000)
    return apsched__pstore_error(APSCHED_EINVAL,
                                "'%s': table '%sschema' must hold exactly one version number "
                                "(it holds %lld rows)",
                                path, prefix, (long long)v[1]);
  *version = (int)v[0];
  return APSCHED_OK;
}

static int newer_than_ours(const char *path, int version) {
  return apsched__pstore_error(APSCHED_EINVAL,
                              "'%s' has schema version %d, newer than the %d this library knows: "
                              "use a newer libapsched-sqlite (the file was not changed)",
                              path, version, APSCHED_SQLITE_SCHEMA_VERSION);
}

static int exec(sqlite3 *db, const char *path, const char *sql, const char *what) {
  return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? APSCHED_OK
                                                               : apsched__sqlite_fail(db, path, what);
}

int apsched__sqlite_schema_ensure(sqlite3 *db, const char *prefix, const char *path) {
  int version;
  /* A first look without a write lock: a newer file is refused untouched. */
  int rc = apsched__sqlite_schema_version(db, prefix, path, &version);
  if (rc != APSCHED_OK) return rc;
  if (version > APSCHED_SQLITE_SCHEMA_VERSION) return newer_than_ours(path, version);
  if (version == APSCHED_SQLITE_SCHEMA_VERSION) return APSCHED_OK;

  rc = exec(db, path, "BEGIN IMMEDIATE", "starting the schema transaction");
  if (rc != APSCHED_OK) return rc;
  /* Again under the write lock: another program may have been first. */
  rc = apsched__sqlite_schema_version(db, prefix, path, &version);
  if (rc == APSCHED_OK && version > APSCHED_SQLITE_SCHEMA_VERSION) rc = newer_than_ours(path, version);
  for (int v = version; rc == APSCHED_OK && v < APSCHED_SQLITE_SCHEMA_VERSION; v++) {
    char *sql = apsched__pstore_expand(steps[v], prefix);
    char what[64];
    snprintf(what, sizeof what, "%s schema version %d", v == 0 ? "creating" : "migrating to", v + 1);
    rc = sql ? exec(db, path, sql, what) : apsched__pstore_error(APSCHED_ENOMEM, "'%s': out of memory", path);
    free(sql);
  }
  if (rc == APSCHED_OK && version < APSCHED_SQLITE_SCHEMA_VERSION) {
    char set[160];
    snprintf(set, sizeof set, "DELETE FROM \"@schema\"; INSERT INTO \"@schema\" (version) VALUES (%d)",
             APSCHED_SQLITE_SCHEMA_VERSION);
    char *sql = apsched__pstore_expand(set, prefix);
    rc = sql ? exec(db, path, sql, "writing the schema version")
             : apsched__pstore_error(APSCHED_ENOMEM, "'%s': out of memory", path);
    free(sql);
  }
  if (rc == APSCHED_OK) rc = exec(db, path, "COMMIT", "committing the schema");
  if (rc != APSCHED_OK && !sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}
