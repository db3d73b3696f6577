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
