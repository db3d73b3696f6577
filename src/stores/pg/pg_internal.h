/* Shared declarations of the PostgreSQL job store (libapsched-pg). The
 * library sees the core only through apsched.h and apsched_plugin.h: it is a
 * store plugin like any other, linked against libapsched. What it shares
 * with the SQLite store (the record codec, broken rows, claimed batches) is
 * in ../common. */
#ifndef APSCHED_PG_INTERNAL_H
#define APSCHED_PG_INTERNAL_H

#include "apsched_pg.h"
#include "../common/store_common.h"

#include <libpq-fe.h>

#define PG_HIDDEN __attribute__((visibility("hidden")))

/* PostgreSQL's limit on identifiers (NAMEDATALEN - 1). */
#define PG_SCHEMA_MAX 63

/* One connection to the database, and what the store's messages call it. */
typedef struct pg_link {
  PGconn *conn;   /* NULL until the first connect */
  char *conninfo;
  char *schema;   /* as given, for messages and catalog lookups */
  char *quoted;   /* the schema as a quoted identifier, for the SQL text */
} pg_link;

/* -------------------------------------------------------------- errors.c */

/* Says why a call on link failed ("postgresql schema 'apsched': <what>:
 * <the server's or libpq's message>") with apsched__pstore_error; res is
 * the failed result, or NULL for a failure without one (connecting).
 * Returns APSCHED_EBACKEND. */
PG_HIDDEN int apsched__pg_fail(const pg_link *l, const PGresult *res, const char *what);
/* The SQLSTATE of a failed result ("23505"), or "" when there is none. */
PG_HIDDEN const char *apsched__pg_sqlstate(const PGresult *res);

/* ---------------------------------------------------------------- conn.c */

/* Makes sure link has a working connection: connects the first time, and
 * again (PQreset) after the connection was lost, so the call after a
 * failure recovers. APSCHED_EBACKEND with libpq's message if it cannot. */
PG_HIDDEN int apsched__pg_ready(pg_link *l);
PG_HIDDEN void apsched__pg_disconnect(pg_link *l);

/* Runs sql (text parameters values[0..n), NULL meaning SQL NULL; formats
 * and lengths may be NULL: all text) and returns its result, rows in binary
 * when binary. On failure returns NULL, with the error set (what names the
 * step) in *rc. */
PG_HIDDEN PGresult *apsched__pg_exec(pg_link *l, const char *sql, int n, const char *const *values,
                                     const int *lengths, const int *formats, bool binary,
                                     const char *what, int *rc);
/* A statement without parameters or rows ("BEGIN"); APSCHED_OK or the error. */
PG_HIDDEN int apsched__pg_command(pg_link *l, const char *sql, const char *what);
/* Whether a transaction is open on the connection (also a failed one). */
PG_HIDDEN bool apsched__pg_in_transaction(const pg_link *l);

/* --------------------------------------------------------------- codec.c */

/* The 12 job columns of a record as statement parameters $1..$12 (see
 * STORE_JOB_COLUMNS): text, but the argument in binary. They point into rec,
 * trigger_text and the struct itself. */
typedef struct pg_params {
  const char *values[COL_COUNT];
  int lengths[COL_COUNT];
  int formats[COL_COUNT];
  char ints[COL_COUNT][24];
} pg_params;

PG_HIDDEN void apsched__pg_params(pg_params *p, const apsched_job_record *rec,
                                  const char *trigger_text);

/* Decodes row of res (binary rows; the job columns from column 0) into a new
 * record with apsched__pstore_decode_row (a broken row is reported once). */
PG_HIDDEN int apsched__pg_decode(const PGresult *res, int row, store_base *b,
                                 apsched_job_record **out);

/* A bigint column of a binary row (0 for NULL). */
PG_HIDDEN int64_t apsched__pg_int8(const PGresult *res, int row, int col);

/* -------------------------------------------------------------- schema.c */

/* Brings the schema of link to APSCHED_PG_SCHEMA_VERSION: creates it (schema
 * and tables) or migrates an older one, in one transaction; refuses
 * (APSCHED_EINVAL, nothing changed) a newer schema, one not made by this
 * library, and (existing_only) a missing one. */
PG_HIDDEN int apsched__pg_schema_ensure(pg_link *l, bool existing_only);

/* --------------------------------------------------------------- store.c */

/* Test hook: the store's connection (to find its backend and terminate it).
 * Not exported from the shared library. */
PG_HIDDEN PGconn *apsched__pg_store_conn(apsched_jobstore *st);

#endif
