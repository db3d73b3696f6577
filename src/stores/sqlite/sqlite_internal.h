/* Shared declarations of the SQLite job store (libapsched-sqlite). The
 * library sees the core only through apsched.h and apsched_plugin.h: it is a
 * store plugin like any other, linked against libapsched. */
#ifndef APSCHED_SQLITE_INTERNAL_H
#define APSCHED_SQLITE_INTERNAL_H

#include "apsched_sqlite.h"
#include "../common/store_common.h"

#include <sqlite3.h>

#define SQLITE_HIDDEN __attribute__((visibility("hidden")))

/* The longest table prefix: table names stay short enough to type. */
#define SQLITE_PREFIX_MAX 64

/* --------------------------------------------------------------- conn.c */

/* Every statement the store runs (conn.c has their SQL). */
typedef enum sqlite_query {
  Q_INSERT,
  Q_UPSERT,
  Q_LOOKUP,
  Q_UPDATE,
  Q_DELETE,
  Q_DELETE_ALL,
  Q_NEXT,
  Q_DUE,
  Q_ADVANCE,
  Q_ALL,
  Q_RUN_OPEN,
  Q_RUN_CLOSE,
  Q_ORPHANS,
  Q_ORPHAN_TAKE,
  Q_HISTORY_ADD,
  Q_HISTORY_PRUNE,
  Q_BEGIN,
  Q_COMMIT,
  Q_ROLLBACK,
  Q_SAVEPOINT,
  Q_RELEASE_SAVEPOINT,
  Q_ROLLBACK_SAVEPOINT,
  Q_COUNT
} sqlite_query;

/* One connection to the file and its prepared statements. */
typedef struct sqlite_conn {
  sqlite3 *db;
  char *path;   /* owned */
  char *prefix; /* owned: the table prefix */
  sqlite3_stmt *stmt[Q_COUNT];
} sqlite_conn;

/* The cached statement for q, prepared on first use; NULL with *rc set. */
SQLITE_HIDDEN sqlite3_stmt *apsched__sqlite_stmt(sqlite_conn *c, sqlite_query q, int *rc);
/* Steps st (parameters bound by the caller) to its end or first row, then
 * resets it. */
SQLITE_HIDDEN int apsched__sqlite_step(sqlite_conn *c, sqlite3_stmt *st, const char *what);
/* Runs q, which has no parameters. */
SQLITE_HIDDEN int apsched__sqlite_exec(sqlite_conn *c, sqlite_query q, const char *what);
SQLITE_HIDDEN bool apsched__sqlite_in_transaction(const sqlite_conn *c);
/* Begins a write: a transaction of its own, or a savepoint inside an open
 * batch (*nested). */
SQLITE_HIDDEN int apsched__sqlite_write_begin(sqlite_conn *c, bool *nested);
/* Ends a write begun by write_begin: commits it if rc is APSCHED_OK, else
 * undoes it. Returns rc, or the commit's error. */
SQLITE_HIDDEN int apsched__sqlite_write_end(sqlite_conn *c, bool nested, int rc);
/* Finalizes the statements, closes the database, frees path and prefix. */
SQLITE_HIDDEN void apsched__sqlite_conn_close(sqlite_conn *c);

/* ------------------------------------------------------------- errors.c */

/* Says why a SQLite call on the database at path failed ("'jobs.db':
 * <what>: <SQLite's message>") with apsched__pstore_error; returns the
 * matching code (APSCHED_ENOMEM, else APSCHED_EBACKEND). Call it before
 * anything else uses db, which would replace SQLite's message. */
SQLITE_HIDDEN int apsched__sqlite_fail(sqlite3 *db, const char *path, const char *what);

/* ------------------------------------------------------------- schema.c */

/* The schema version of the file (0: no tables of ours yet). Reads only. */
SQLITE_HIDDEN int apsched__sqlite_schema_version(sqlite3 *db, const char *prefix, const char *path,
                                                 int *version);

/* Creates the tables of an empty file, or migrates an older schema to
 * APSCHED_SQLITE_SCHEMA_VERSION, in one transaction; refuses (APSCHED_EINVAL,
 * nothing changed) a newer schema. */
SQLITE_HIDDEN int apsched__sqlite_schema_ensure(sqlite3 *db, const char *prefix, const char *path);

/* -------------------------------------------------------------- codec.c */

/* Binds the record to parameters 1..COL_COUNT of st (the job columns in
 * order). trigger_text is the record's canonical trigger text. The bound
 * values point into rec: step st before rec changes. */
SQLITE_HIDDEN int apsched__sqlite_bind(sqlite3_stmt *st, const apsched_job_record *rec,
                                       const char *trigger_text);

/* Decodes the current row of st (the job columns in order) into a new
 * record with apsched__pstore_decode_row (a broken row is reported once). */
SQLITE_HIDDEN int apsched__sqlite_decode(sqlite3_stmt *st, store_base *b, apsched_job_record **out);

/* --------------------------------------------------------------- runs.c */

/* Run records and run history: what at-least-once delivery and the
 * history table need (see runs.c). */
typedef struct sqlite_runs {
  char owner[40];           /* this open of the file: the owner of its run records */
  int64_t history_retention; /* microseconds; 0: no history; INT64_MAX: keep all */
  bool orphans_left;        /* records of earlier opens may be waiting */
} sqlite_runs;

/* Starts run bookkeeping for a new open: a fresh owner id. */
SQLITE_HIDDEN void apsched__sqlite_runs_init(sqlite_runs *r, int64_t history_retention);
/* Records the runs about to start for rec (inside the claimed batch);
 * *track: the store wants them back in runs_closed. */
SQLITE_HIDDEN int apsched__sqlite_runs_open(sqlite_runs *r, sqlite_conn *c,
                                            const apsched_job_record *rec,
                                            const apsched_time_t *times, size_t n, bool *track);
/* Closes ended runs and writes their history (inside a write transaction). */
SQLITE_HIDDEN int apsched__sqlite_runs_closed(sqlite_runs *r, sqlite_conn *c,
                                              const apsched_run_result *results, size_t n);
/* Takes over up to max run records of earlier opens (inside the claimed
 * batch): their attempt goes up by one, their owner becomes this open.
 * Returns the number, or an error. */
SQLITE_HIDDEN int apsched__sqlite_runs_orphans(sqlite_runs *r, sqlite_conn *c,
                                               store_intern_fn intern, void *ctx,
                                               apsched_orphan_run *out, size_t max);

/* --------------------------------------------------------------- lock.c */

/* Takes the one-scheduler lock of the database at path (the sidecar file
 * "<path>-lock", flock'ed for the store's life, holding our pid). Returns
 * the descriptor, or a negative APSCHED_E* code with apsched_plugin_error
 * set: APSCHED_ESTATE when another scheduler holds it. */
SQLITE_HIDDEN int apsched__sqlite_lock(const char *path);
SQLITE_HIDDEN void apsched__sqlite_unlock(int fd);

/* -------------------------------------------------------------- store.c */

/* Test hook: the store's connection (to inject failures, e.g. a commit
 * hook that vetoes the next commit). Not exported from the shared library. */
SQLITE_HIDDEN sqlite3 *apsched__sqlite_store_db(apsched_jobstore *st);

#endif
