/* The store's connection: every SQL statement it runs, prepared once and
 * cached, and its write transactions.
 *
 * Writes: each mutating call is one transaction (BEGIN IMMEDIATE: the write
 * lock is taken up front, so another writer makes us wait busy_timeout,
 * never fail halfway). Inside an open claimed batch (claim_due's
 * transaction) a write nests as a savepoint. */
#include "sqlite_internal.h"

#include <stdlib.h>

#define VALUES "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"

/* "@" is the table prefix (apsched__pstore_expand). */
static const char *const query_sql[Q_COUNT] = {
    [Q_INSERT] = "INSERT INTO \"@jobs\" (" STORE_JOB_COLUMNS ") VALUES " VALUES,
    /* REPLACE deletes the old row and inserts the new one in one statement:
     * the job is never missing, and it queues behind jobs due at the same
     * time, as a job added anew does. */
    [Q_UPSERT] = "INSERT OR REPLACE INTO \"@jobs\" (" STORE_JOB_COLUMNS ") VALUES " VALUES,
    [Q_LOOKUP] = "SELECT " STORE_JOB_COLUMNS " FROM \"@jobs\" WHERE id = ?1",
    [Q_UPDATE] = "UPDATE \"@jobs\" SET name = ?2, func = ?3, \"trigger\" = ?4, executor = ?5, "
                 "arg = ?6, misfire_grace_ms = ?7, coalesce = ?8, max_instances = ?9, "
                 "max_runtime_ms = ?10, next_run_time = ?11, trigger_time = ?12, "
                 "delivery = ?13, policies = ?14, failures = ?15 WHERE id = ?1",
    [Q_DELETE] = "DELETE FROM \"@jobs\" WHERE id = ?1",
    [Q_DELETE_ALL] = "DELETE FROM \"@jobs\"",
    [Q_NEXT] = "SELECT id, next_run_time FROM \"@jobs\" WHERE next_run_time IS NOT NULL "
               "ORDER BY next_run_time, rowid",
    [Q_DUE] = "SELECT " STORE_JOB_COLUMNS " FROM \"@jobs\" WHERE next_run_time <= ?1 "
              "ORDER BY next_run_time, rowid",
    [Q_ADVANCE] = "UPDATE \"@jobs\" SET next_run_time = ?2, trigger_time = ?3 WHERE id = ?1",
    [Q_ALL] = "SELECT " STORE_JOB_COLUMNS " FROM \"@jobs\"",
    /* A run record: the job as it was claimed, so the run can be done
     * again even if the job changed or went meanwhile. REPLACE: a job
     * moved back to a time it already ran at starts that run afresh. */
    [Q_RUN_OPEN] = "INSERT OR REPLACE INTO \"@runs\" (job_id, scheduled_time, attempt, owner, "
                   "claimed_at, name, func, executor, arg, max_instances, max_runtime_ms) "
                   "VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [Q_RUN_CLOSE] = "DELETE FROM \"@runs\" WHERE job_id = ?1 AND scheduled_time = ?2 AND owner = ?3",
    [Q_ORPHANS] = "SELECT job_id, scheduled_time, attempt, name, func, executor, arg, "
                  "max_instances, max_runtime_ms FROM \"@runs\" WHERE owner <> ?1 "
                  "ORDER BY scheduled_time LIMIT ?2",
    [Q_ORPHAN_TAKE] = "UPDATE \"@runs\" SET owner = ?3, attempt = attempt + 1, claimed_at = ?4 "
                      "WHERE job_id = ?1 AND scheduled_time = ?2",
    [Q_HISTORY_ADD] = "INSERT INTO \"@run_history\" (job_id, scheduled_time, attempt, started_at, "
                      "finished_at, outcome, retval, error) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [Q_HISTORY_PRUNE] = "DELETE FROM \"@run_history\" WHERE finished_at < ?1",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT apsched_write",
    [Q_RELEASE_SAVEPOINT] = "RELEASE apsched_write",
    [Q_ROLLBACK_SAVEPOINT] = "ROLLBACK TO apsched_write",
};

sqlite3_stmt *apsched__sqlite_stmt(sqlite_conn *c, sqlite_query q, int *rc) {
  if (c->stmt[q]) return c->stmt[q];
  char *sql = apsched__pstore_expand(query_sql[q], c->prefix);
  if (!sql) {
    *rc = apsched__pstore_error(APSCHED_ENOMEM, "'%s': out of memory", c->path);
    return NULL;
  }
  int src = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[q], NULL);
  free(sql);
  if (src != SQLITE_OK) {
    *rc = apsched__sqlite_fail(c->db, c->path, "preparing a statement");
    c->stmt[q] = NULL;
    return NULL;
  }
  return c->stmt[q];
}

int apsched__sqlite_step(sqlite_conn *c, sqlite3_stmt *st, const char *what) {
  int src = sqlite3_step(st);
  int rc = src == SQLITE_DONE || src == SQLITE_ROW ? APSCHED_OK
                                                   : apsched__sqlite_fail(c->db, c->path, what);
  sqlite3_reset(st);
  return rc;
}

int apsched__sqlite_exec(sqlite_conn *c, sqlite_query q, const char *what) {
  int rc = APSCHED_OK;
  sqlite3_stmt *st = apsched__sqlite_stmt(c, q, &rc);
  return st ? apsched__sqlite_step(c, st, what) : rc;
}

bool apsched__sqlite_in_transaction(const sqlite_conn *c) { return !sqlite3_get_autocommit(c->db); }

int apsched__sqlite_write_begin(sqlite_conn *c, bool *nested) {
  *nested = apsched__sqlite_in_transaction(c);
  return apsched__sqlite_exec(c, *nested ? Q_SAVEPOINT : Q_BEGIN, "starting a write transaction");
}

int apsched__sqlite_write_end(sqlite_conn *c, bool nested, int rc) {
  if (rc == APSCHED_OK) {
    rc = apsched__sqlite_exec(c, nested ? Q_RELEASE_SAVEPOINT : Q_COMMIT, "committing");
    if (rc == APSCHED_OK) return rc;
  }
  /* SQLite may have rolled the transaction back already (a full disk, an
   * I/O error); then there is nothing left to undo. */
  if (!apsched__sqlite_in_transaction(c)) return rc;
  if (nested) {
    apsched__sqlite_exec(c, Q_ROLLBACK_SAVEPOINT, "undoing a write");
    apsched__sqlite_exec(c, Q_RELEASE_SAVEPOINT, "undoing a write");
  } else {
    apsched__sqlite_exec(c, Q_ROLLBACK, "undoing a write");
  }
  return rc;
}

void apsched__sqlite_conn_close(sqlite_conn *c) {
  for (int i = 0; i < Q_COUNT; i++) sqlite3_finalize(c->stmt[i]);
  sqlite3_close(c->db);
  free(c->path);
  free(c->prefix);
  *c = (sqlite_conn){0};
}
