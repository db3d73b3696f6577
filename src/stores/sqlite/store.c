/* The SQLite job store: the vtable of apsched_plugin.h over the jobs table
 * (run records and history: runs.c; statements and transactions: conn.c).
 *
 * One connection, used by one call at a time (the scheduler serializes a
 * store's calls). Every call reads the file afresh, so a job paused, changed
 * or removed by another program (the sqlite3 shell, an external store) is
 * seen by the next call; nothing about the jobs is cached between calls but
 * the ids of rows that cannot be decoded, and those are re-checked whenever
 * they matter.
 *
 * Writes: each mutating call is one transaction. A claimed batch is one
 * transaction too (claim_orphans or claim_due begins it), release stages
 * each job's new next run time (one statement, undone on its own if it
 * fails) and runs_open its run records, commit makes the whole batch durable
 * with one fsync.
 * Inside an open batch (only the conformance kit calls a store there), the
 * other writes nest as savepoints. */
#include "sqlite_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- store */

typedef struct sqlite_store {
  apsched_jobstore base;
  sqlite_conn c; /* the connection, its statements */
  sqlite_runs runs;
  bool external;
  int lock_fd;
  store_base b; /* scheduler, broken rows, the claimed batch's records */
  /* The claimed batch: claim_due began its transaction, commit ends it. */
  bool batch;
  apsched_job_record *found; /* the last lookup's record */
} sqlite_store;

static sqlite_store *as_sqlite(apsched_jobstore *st) { return (sqlite_store *)st; }

static int fail(sqlite_store *ss, const char *what) {
  return apsched__sqlite_fail(ss->c.db, ss->c.path, what);
}

static sqlite3_stmt *stmt(sqlite_store *ss, sqlite_query q, int *rc) {
  return apsched__sqlite_stmt(&ss->c, q, rc);
}

static int exec_q(sqlite_store *ss, sqlite_query q, const char *what) {
  return apsched__sqlite_exec(&ss->c, q, what);
}

static bool in_transaction(sqlite_store *ss) { return apsched__sqlite_in_transaction(&ss->c); }

static int write_begin(sqlite_store *ss, bool *nested) {
  return apsched__sqlite_write_begin(&ss->c, nested);
}

static int write_end(sqlite_store *ss, bool nested, int rc) {
  return apsched__sqlite_write_end(&ss->c, nested, rc);
}

/* Decodes the current row of st, noting it if broken. */
static int decode(sqlite_store *ss, sqlite3_stmt *st, apsched_job_record **out) {
  return apsched__sqlite_decode(st, &ss->b, out);
}

/* ---------------------------------------------------------------- vtable */

/* Reports every row that does not decode, once per open: the scheduler
 * announces each as JOB_ERROR. */
static int sq_open(apsched_jobstore *st, apsched_scheduler *s, const char *alias) {
  sqlite_store *ss = as_sqlite(st);
  apsched__pstore_base_open(&ss->b, s, alias);
  int rc = APSCHED_OK;
  sqlite3_stmt *q = stmt(ss, Q_ALL, &rc);
  if (!q) return rc;
  int src;
  while ((src = sqlite3_step(q)) == SQLITE_ROW) {
    apsched_job_record *rec;
    if ((rc = decode(ss, q, &rec)) != APSCHED_OK) break;
    apsched_job_record_free(rec);
  }
  if (rc == APSCHED_OK && src != SQLITE_DONE && src != SQLITE_ROW) rc = fail(ss, "reading the jobs");
  sqlite3_reset(q);
  return rc;
}

static void sq_close(apsched_jobstore *st) {
  apsched__pstore_base_close(&as_sqlite(st)->b);
}

static void sq_destroy(apsched_jobstore *st) {
  sqlite_store *ss = as_sqlite(st);
  if (!ss) return;
  /* An open batch was never committed: none of its runs started. */
  if (ss->c.db && in_transaction(ss)) sqlite3_exec(ss->c.db, "ROLLBACK", NULL, NULL, NULL);
  apsched__pstore_base_free(&ss->b);
  apsched_job_record_free(ss->found);
  apsched__sqlite_conn_close(&ss->c);
  /* Only after the database is closed (and checkpointed) may another
   * scheduler take the file. */
  apsched__sqlite_unlock(ss->lock_fd);
  free(ss);
}

static int sq_add(apsched_jobstore *st, apsched_job_record *const *recs, size_t n,
                  const bool *replace, size_t *failed) {
  sqlite_store *ss = as_sqlite(st);
  size_t dummy;
  if (!failed) failed = &dummy;
  *failed = n;
  if (n == 0) return APSCHED_OK;
  char **texts;
  int rc = apsched__pstore_add_prepare(recs, n, "SQLite", &texts, failed);
  if (rc != APSCHED_OK) return rc;
  bool nested = false;
  rc = write_begin(ss, &nested);
  if (rc == APSCHED_OK) {
    for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
      sqlite3_stmt *q = stmt(ss, replace && replace[i] ? Q_UPSERT : Q_INSERT, &rc);
      if (!q) break;
      int src = apsched__sqlite_bind(q, recs[i], texts[i]);
      if (src == SQLITE_OK) src = sqlite3_step(q);
      if (src == SQLITE_CONSTRAINT_PRIMARYKEY) {
        rc = apsched__pstore_error(APSCHED_EEXIST, "job '%.64s': the id is taken", recs[i]->id);
        *failed = i;
      } else if (src != SQLITE_DONE) {
        char what[128];
        snprintf(what, sizeof what, "writing job '%.64s'", recs[i]->id);
        rc = fail(ss, what);
      }
      sqlite3_reset(q);
    }
    rc = write_end(ss, nested, rc);
  }
  apsched__pstore_free_texts(texts, n);
  if (rc != APSCHED_OK) return rc;
  /* Stored: the rows are the jobs now, the records are not kept. */
  for (size_t i = 0; i < n; i++) apsched_job_record_free(recs[i]);
  return APSCHED_OK;
}

static int sq_lookup(apsched_jobstore *st, const char *id, const apsched_job_record **out) {
  sqlite_store *ss = as_sqlite(st);
  if (!id || !out) return apsched__pstore_error(APSCHED_EINVAL, "lookup: %s is NULL", !id ? "id" : "out");
  *out = NULL;
  int rc = APSCHED_OK;
  sqlite3_stmt *q = stmt(ss, Q_LOOKUP, &rc);
  if (!q) return rc;
  /* id may point into the previous lookup's record: freed only below. */
  apsched_job_record *rec = NULL;
  int src = sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_step(q);
  if (src == SQLITE_ROW) rc = decode(ss, q, &rec);
  else if (src == SQLITE_DONE) rc = APSCHED_ENOENT;
  else rc = fail(ss, "looking a job up");
  sqlite3_reset(q);
  if (rc != APSCHED_OK) return rc;
  apsched_job_record_free(ss->found);
  ss->found = rec;
  *out = rec;
  return APSCHED_OK;
}

static int sq_update(apsched_jobstore *st, apsched_job_record *rec) {
  sqlite_store *ss = as_sqlite(st);
  if (!rec) return apsched__pstore_error(APSCHED_EINVAL, "update: no record");
  int rc = apsched__pstore_storable(rec, "SQLite");
  if (rc != APSCHED_OK) return rc;
  char *text = apsched__pstore_trigger_text(rec);
  if (!text) return APSCHED_EINVAL;
  bool nested;
  rc = write_begin(ss, &nested);
  if (rc == APSCHED_OK) {
    sqlite3_stmt *q = stmt(ss, Q_UPDATE, &rc);
    if (q) {
      int src = apsched__sqlite_bind(q, rec, text);
      if (src == SQLITE_OK) src = sqlite3_step(q);
      if (src != SQLITE_DONE) {
        char what[128];
        snprintf(what, sizeof what, "updating job '%.64s'", rec->id);
        rc = fail(ss, what);
      } else if (sqlite3_changes(ss->c.db) == 0) {
        rc = apsched__pstore_error(APSCHED_ENOENT, "no job '%.64s'", rec->id);
      }
      sqlite3_reset(q);
    }
    rc = write_end(ss, nested, rc);
  }
  free(text);
  if (rc == APSCHED_OK) apsched_job_record_free(rec);
  return rc;
}

/* Deletes one row (q binds the id) or all (Q_DELETE_ALL) in one write. */
static int delete_rows(sqlite_store *ss, const char *id) {
  bool nested;
  int rc = write_begin(ss, &nested);
  if (rc != APSCHED_OK) return rc;
  sqlite3_stmt *q = stmt(ss, id ? Q_DELETE : Q_DELETE_ALL, &rc);
  if (q) {
    int src = id ? sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC) : SQLITE_OK;
    if (src == SQLITE_OK) src = sqlite3_step(q);
    if (src != SQLITE_DONE) rc = fail(ss, id ? "removing a job" : "removing all jobs");
    else if (id && sqlite3_changes(ss->c.db) == 0)
      rc = apsched__pstore_error(APSCHED_ENOENT, "no job '%.64s'", id);
    sqlite3_reset(q);
  }
  return write_end(ss, nested, rc);
}

static int sq_remove(apsched_jobstore *st, const char *id) {
  sqlite_store *ss = as_sqlite(st);
  if (!id) return apsched__pstore_error(APSCHED_EINVAL, "remove: id is NULL");
  int rc = delete_rows(ss, id);
  if (rc == APSCHED_OK) apsched__pstore_removed(&ss->b, id);
  return rc;
}

static int sq_remove_all(apsched_jobstore *st) {
  sqlite_store *ss = as_sqlite(st);
  int rc = delete_rows(ss, NULL);
  if (rc == APSCHED_OK) apsched__pstore_removed(&ss->b, NULL);
  return rc;
}

/* Whether the row with this id still does not decode (rows once found
 * broken may have been fixed by hand). */
static int still_broken(sqlite_store *ss, const char *id, bool *broken) {
  const apsched_job_record *rec;
  int rc = sq_lookup(&ss->base, id, &rec);
  *broken = rc == APSCHED_ENOENT || (rc == APSCHED_OK && (rec->flags & APSCHED_JOB_BROKEN));
  return rc == APSCHED_ENOENT ? APSCHED_OK : rc;
}

static int sq_next_run_time(apsched_jobstore *st, apsched_time_t *out) {
  sqlite_store *ss = as_sqlite(st);
  *out = APSCHED_TIME_NONE;
  int rc = APSCHED_OK;
  sqlite3_stmt *q = stmt(ss, Q_NEXT, &rc);
  if (!q) return rc;
  int src;
  while ((src = sqlite3_step(q)) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(q, 0);
    if (!id || apsched__pstore_is_held(&ss->b, id)) continue;
    if (apsched__pstore_known_broken(&ss->b, id)) {
      bool broken;
      if ((rc = still_broken(ss, id, &broken)) != APSCHED_OK) break;
      if (broken) continue;
    }
    *out = sqlite3_column_int64(q, 1);
    break;
  }
  if (rc == APSCHED_OK && src != SQLITE_ROW && src != SQLITE_DONE)
    rc = fail(ss, "reading the next run time");
  sqlite3_reset(q);
  if (rc != APSCHED_OK) *out = APSCHED_TIME_NONE;
  return rc;
}

static int refuse_external(sqlite_store *ss) {
  return apsched__pstore_error(APSCHED_ESTATE,
                               "'%s' was opened as an outside tool (external = true), which "
                               "cannot run jobs: give the scheduler a store opened without it",
                               ss->c.path);
}

/* Opens the claimed batch's transaction unless it is open (*began). */
static int batch_begin(sqlite_store *ss, bool *began) {
  *began = false;
  if (ss->batch) return APSCHED_OK;
  apsched__pstore_drop_claims(&ss->b, 0); /* the previous batch's, committed */
  int rc = exec_q(ss, Q_BEGIN, "starting to claim due jobs");
  if (rc != APSCHED_OK) return rc;
  ss->batch = *began = true;
  return APSCHED_OK;
}

/* Ends a batch this call began that claimed nothing, or failed. */
static void batch_abandon(sqlite_store *ss) {
  if (in_transaction(ss)) exec_q(ss, Q_ROLLBACK, "ending a claim");
  ss->batch = false;
}

static int sq_claim_orphans(apsched_jobstore *st, apsched_orphan_run *out, size_t max) {
  sqlite_store *ss = as_sqlite(st);
  if (ss->external) return refuse_external(ss);
  if (!ss->runs.orphans_left || max == 0) return 0;
  if (!out) return apsched__pstore_error(APSCHED_EINVAL, "claim_orphans: out is NULL");
  if (max > INT_MAX) max = INT_MAX;
  bool began;
  int rc = batch_begin(ss, &began);
  if (rc != APSCHED_OK) return rc;
  int n = apsched__sqlite_runs_orphans(&ss->runs, &ss->c, apsched__pstore_intern, &ss->b, out, max);
  if (began && n <= 0) batch_abandon(ss);
  return n;
}

static int sq_runs_open(apsched_jobstore *st, const apsched_job_record *rec,
                        const apsched_time_t *times, size_t n, bool *track) {
  sqlite_store *ss = as_sqlite(st);
  *track = false;
  if (!ss->batch || !in_transaction(ss))
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "'%s': runs_open outside a claimed batch (or the batch was "
                                 "rolled back after an earlier error)",
                                 ss->c.path);
  return apsched__sqlite_runs_open(&ss->runs, &ss->c, rec, times, n, track);
}

static int sq_runs_closed(apsched_jobstore *st, const apsched_run_result *results, size_t n) {
  sqlite_store *ss = as_sqlite(st);
  if (n == 0) return APSCHED_OK;
  bool nested;
  int rc = write_begin(ss, &nested);
  if (rc != APSCHED_OK) return rc;
  rc = apsched__sqlite_runs_closed(&ss->runs, &ss->c, results, n);
  return write_end(ss, nested, rc);
}

/* runs_closed as the first call of a claimed batch: written in its
 * transaction, so ending runs and claiming the next batch cost one commit
 * (one fsync with synchronous=FULL) instead of two. */
static int sq_runs_closed_in_batch(apsched_jobstore *st, const apsched_run_result *results,
                                   size_t n) {
  sqlite_store *ss = as_sqlite(st);
  if (n == 0) return APSCHED_OK;
  if (!results) return apsched__pstore_error(APSCHED_EINVAL, "runs_closed_in_batch: results is NULL");
  if (ss->batch)
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "'%s': runs_closed_in_batch inside a batch (it begins one)",
                                 ss->c.path);
  bool began;
  int rc = batch_begin(ss, &began);
  if (rc != APSCHED_OK) return rc;
  rc = apsched__sqlite_runs_closed(&ss->runs, &ss->c, results, n);
  if (rc != APSCHED_OK) batch_abandon(ss);
  return rc;
}

static int sq_claim_due(apsched_jobstore *st, apsched_time_t now, apsched_job_record **out,
                        size_t max) {
  sqlite_store *ss = as_sqlite(st);
  if (ss->external) return refuse_external(ss);
  if (max == 0) return 0;
  if (!out) return apsched__pstore_error(APSCHED_EINVAL, "claim_due: out is NULL");
  if (max > INT_MAX) max = INT_MAX;
  bool began = false;
  int rc = batch_begin(ss, &began);
  if (rc != APSCHED_OK) return rc;
  size_t first = ss->b.nclaimed, n = 0;
  sqlite3_stmt *q = stmt(ss, Q_DUE, &rc);
  if (q) {
    int src = sqlite3_bind_int64(q, 1, now);
    while (n < max && src == SQLITE_OK && (src = sqlite3_step(q)) == SQLITE_ROW) {
      src = SQLITE_OK;
      const char *id = (const char *)sqlite3_column_text(q, COL_ID);
      if (!id || apsched__pstore_is_held(&ss->b, id)) continue;
      apsched_job_record *rec;
      if ((rc = decode(ss, q, &rec)) != APSCHED_OK) break;
      if (rec->flags & APSCHED_JOB_BROKEN) {
        apsched_job_record_free(rec); /* kept in the file, never run */
        continue;
      }
      if ((rc = apsched__pstore_hold(&ss->b, rec)) != APSCHED_OK) {
        apsched_job_record_free(rec);
        break;
      }
      out[n++] = rec;
    }
    if (rc == APSCHED_OK && src != SQLITE_OK && src != SQLITE_DONE && src != SQLITE_ROW)
      rc = fail(ss, "claiming due jobs");
    sqlite3_reset(q);
  }
  if (rc != APSCHED_OK) {
    /* Nothing of this call stays claimed. */
    apsched__pstore_drop_claims(&ss->b, first);
    if (began) batch_abandon(ss);
    return rc;
  }
  if (began && n == 0) batch_abandon(ss); /* nothing was written */
  return (int)n;
}

static int sq_release(apsched_jobstore *st, apsched_job_record *rec, apsched_time_t next_run_time,
                      apsched_time_t trigger_time, bool remove_job) {
  sqlite_store *ss = as_sqlite(st);
  char where[300];
  snprintf(where, sizeof where, "'%s'", ss->c.path);
  int rc = apsched__pstore_unhold(&ss->b, rec, where);
  if (rc != APSCHED_OK) return rc;
  /* SQLite rolls a transaction back by itself after some errors (a full
   * disk, an I/O error): then the batch is gone, and writing now would
   * commit this job alone. */
  if (ss->batch && !in_transaction(ss))
    return apsched__pstore_error(APSCHED_EBACKEND,
                                "'%s': the claimed batch was rolled back after an earlier error; "
                                "job '%.64s' is due again",
                                ss->c.path, rec->id);
  sqlite3_stmt *q = stmt(ss, remove_job ? Q_DELETE : Q_ADVANCE, &rc);
  if (!q) return rc;
  int src = sqlite3_bind_text(q, 1, rec->id, -1, SQLITE_STATIC);
  if (!remove_job) {
    if (src == SQLITE_OK)
      src = next_run_time == APSCHED_TIME_NONE ? sqlite3_bind_null(q, 2) : sqlite3_bind_int64(q, 2, next_run_time);
    if (src == SQLITE_OK)
      src = trigger_time == APSCHED_TIME_NONE ? sqlite3_bind_null(q, 3) : sqlite3_bind_int64(q, 3, trigger_time);
  }
  /* One statement: if it fails, SQLite undoes it alone, and the job keeps
   * its previous next run time. */
  if (src == SQLITE_OK) src = sqlite3_step(q);
  if (src != SQLITE_DONE) {
    char what[128];
    snprintf(what, sizeof what, "%s job '%.64s'", remove_job ? "removing finished" : "storing the next run time of", rec->id);
    rc = fail(ss, what);
  }
  sqlite3_reset(q);
  return rc;
}

static int sq_commit(apsched_jobstore *st) {
  sqlite_store *ss = as_sqlite(st);
  if (!ss->batch) return APSCHED_OK;
  ss->batch = false;
  int rc;
  if (!in_transaction(ss)) {
    rc = apsched__pstore_error(APSCHED_EBACKEND,
                              "'%s': the claimed batch was rolled back after an earlier error; "
                              "its jobs are due again",
                              ss->c.path);
  } else {
    rc = exec_q(ss, Q_COMMIT, "committing the claimed jobs");
    if (rc != APSCHED_OK && in_transaction(ss)) exec_q(ss, Q_ROLLBACK, "undoing the claimed jobs");
  }
  apsched__pstore_drop_claims(&ss->b, 0);
  return rc;
}

static int sq_foreach(apsched_jobstore *st, int (*fn)(const apsched_job_record *rec, void *ud),
                      void *ud) {
  sqlite_store *ss = as_sqlite(st);
  if (!fn) return apsched__pstore_error(APSCHED_EINVAL, "foreach: fn is NULL");
  int rc = APSCHED_OK;
  sqlite3_stmt *q = stmt(ss, Q_ALL, &rc);
  if (!q) return rc;
  int src;
  while ((src = sqlite3_step(q)) == SQLITE_ROW) {
    apsched_job_record *rec;
    if ((rc = decode(ss, q, &rec)) != APSCHED_OK) break;
    rc = fn(rec, ud);
    apsched_job_record_free(rec);
    if (rc != 0) break;
  }
  if (rc == APSCHED_OK && src != SQLITE_ROW && src != SQLITE_DONE) rc = fail(ss, "listing the jobs");
  sqlite3_reset(q);
  return rc;
}

static const apsched_jobstore_vtable sqlite_vtable = {
    .version = APSCHED_JOBSTORE_VTABLE_VERSION,
    .kind = "sqlite",
    .flags = APSCHED_STORE_BLOCKING,
    .open = sq_open,
    .close = sq_close,
    .destroy = sq_destroy,
    .add = sq_add,
    .lookup = sq_lookup,
    .update = sq_update,
    .remove = sq_remove,
    .remove_all = sq_remove_all,
    .next_run_time = sq_next_run_time,
    .claim_due = sq_claim_due,
    .release = sq_release,
    .commit = sq_commit,
    .foreach = sq_foreach,
    .runs_open = sq_runs_open,
    .runs_closed = sq_runs_closed,
    .runs_closed_in_batch = sq_runs_closed_in_batch,
    .claim_orphans = sq_claim_orphans,
};

/* ---------------------------------------------------------------- create */

static bool valid_prefix(const char *prefix) {
  if (strlen(prefix) > SQLITE_PREFIX_MAX) return false;
  for (const char *p = prefix; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

static int check_options(const apsched_sqlite_options *o) {
  if (!o) return apsched__pstore_error(APSCHED_EINVAL, "sqlite store: options are NULL");
  if (!o->path || !*o->path)
    return apsched__pstore_error(APSCHED_EINVAL, "sqlite store: path is %s",
                                 o->path ? "empty" : "NULL");
  if (o->table_prefix && !valid_prefix(o->table_prefix))
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "sqlite store: table_prefix '%.80s' must be at most %d letters, "
                                 "digits and '_'",
                                 o->table_prefix, SQLITE_PREFIX_MAX);
  if (o->durability != APSCHED_SQLITE_FULL && o->durability != APSCHED_SQLITE_NORMAL)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "sqlite store: durability %d is neither APSCHED_SQLITE_FULL (0) "
                                 "nor APSCHED_SQLITE_NORMAL (1)",
                                 (int)o->durability);
  if (o->history_retention < 0)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "sqlite store: history_retention %lld us is negative (0: no "
                                 "history; APSCHED_SQLITE_HISTORY_FOREVER: keep all)",
                                 (long long)o->history_retention);
  if (o->busy_timeout_ms < 0)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "sqlite store: busy_timeout_ms %d is negative (0: 5000 ms)",
                                 o->busy_timeout_ms);
  return APSCHED_OK;
}

/* Runs a PRAGMA; its first result column, if any, into result. */
static int pragma(sqlite_store *ss, const char *sql, char *result, size_t len, const char *what) {
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(ss->c.db, sql, -1, &q, NULL) != SQLITE_OK) return fail(ss, what);
  int src = sqlite3_step(q);
  if (result && len) {
    const char *text = src == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
    snprintf(result, len, "%s", text ? text : "");
  }
  int rc = src == SQLITE_ROW || src == SQLITE_DONE ? APSCHED_OK : fail(ss, what);
  sqlite3_finalize(q);
  return rc;
}

/* Opens the connection and brings the file to our schema. Nothing is
 * written before the schema version is known to be one we can read. */
static int open_database(sqlite_store *ss, const apsched_sqlite_options *o) {
  int src = sqlite3_open_v2(ss->c.path, &ss->c.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (src != SQLITE_OK) return fail(ss, "cannot open the database");
  sqlite3_extended_result_codes(ss->c.db, 1);
  sqlite3_busy_timeout(ss->c.db, o->busy_timeout_ms ? o->busy_timeout_ms : 5000);
  if (!ss->external && sqlite3_db_readonly(ss->c.db, "main") == 1)
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "'%s' is read-only: a scheduler must be able to write its jobs "
                                 "(an outside tool may read it with external = true)",
                                 ss->c.path);
  int version;
  int rc = apsched__sqlite_schema_version(ss->c.db, ss->c.prefix, ss->c.path, &version);
  if (rc != APSCHED_OK) return rc;
  if (version > APSCHED_SQLITE_SCHEMA_VERSION) return apsched__sqlite_schema_ensure(ss->c.db, ss->c.prefix, ss->c.path);
  char mode[16];
  rc = pragma(ss, "PRAGMA journal_mode = WAL", mode, sizeof mode, "switching to WAL mode");
  if (rc == APSCHED_OK && strcmp(mode, "wal") != 0)
    rc = apsched__pstore_error(APSCHED_EBACKEND, "'%s': cannot switch to WAL mode (journal mode "
                                                 "stays '%s')", ss->c.path, mode);
  if (rc == APSCHED_OK)
    rc = pragma(ss,
                o->durability == APSCHED_SQLITE_NORMAL ? "PRAGMA synchronous = NORMAL"
                                                       : "PRAGMA synchronous = FULL",
                NULL, 0, "setting the durability");
  /* Only the scheduler's connection checkpoints the WAL: a tool writing at
   * the same time never races it there (SQLite's WAL-reset bug, 3.7.0 to
   * 3.51.2, needs two connections checkpointing or resetting at once). The
   * tool's last close still checkpoints when no scheduler has the file. */
  if (rc == APSCHED_OK && ss->external)
    rc = pragma(ss, "PRAGMA wal_autocheckpoint = 0", NULL, 0, "configuring checkpoints");
  if (rc == APSCHED_OK) rc = apsched__sqlite_schema_ensure(ss->c.db, ss->c.prefix, ss->c.path);
  return rc;
}

int apsched_sqlite_store_create(const apsched_sqlite_options *opts, apsched_jobstore **out,
                                char *errbuf, size_t errlen) {
  int rc = out ? check_options(opts)
               : apsched__pstore_error(APSCHED_EINVAL, "sqlite store: out is NULL");
  if (out) *out = NULL;
  sqlite_store *ss = NULL;
  if (rc == APSCHED_OK) {
    ss = calloc(1, sizeof *ss);
    if (ss) {
      ss->base.vtable = &sqlite_vtable;
      ss->lock_fd = -1;
      ss->external = opts->external;
      apsched__sqlite_runs_init(&ss->runs, opts->history_retention);
      ss->c.path = strdup(opts->path);
      ss->c.prefix = strdup(opts->table_prefix ? opts->table_prefix : "apsched_");
    }
    if (!ss || !ss->c.path || !ss->c.prefix)
      rc = apsched__pstore_error(APSCHED_ENOMEM, "sqlite store: out of memory");
  }
  if (rc == APSCHED_OK && !ss->external) {
    int fd = apsched__sqlite_lock(ss->c.path);
    if (fd < 0) rc = fd;
    else ss->lock_fd = fd;
  }
  if (rc == APSCHED_OK) rc = open_database(ss, opts);
  if (rc != APSCHED_OK) {
    if (ss) sq_destroy(&ss->base);
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s", apsched__pstore_last_error());
    return rc;
  }
  *out = &ss->base;
  return APSCHED_OK;
}

sqlite3 *apsched__sqlite_store_db(apsched_jobstore *st) { return as_sqlite(st)->c.db; }
