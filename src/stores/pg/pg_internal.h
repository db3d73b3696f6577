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
#include <pthread.h>
#include <stdatomic.h>

#define PG_HIDDEN __attribute__((visibility("hidden")))

/* PostgreSQL's limit on identifiers (NAMEDATALEN - 1). */
#define PG_SCHEMA_MAX 63

/* One connection to the database, and what the store's messages call it. */
typedef struct pg_link {
  PGconn *conn;   /* NULL until the first connect */
  char *conninfo;
  char *schema;   /* as given, for messages and catalog lookups */
  char *quoted;   /* the schema as a quoted identifier, for the SQL text */
  /* > 0: the server ends this connection's session when it sits this long
   * inside a transaction (idle_in_transaction_session_timeout), so a
   * scheduler stalled mid-batch (SIGSTOP, a long pause) does not keep the
   * rows it locked from the others. Set again after every reconnect. */
  int idle_in_transaction_ms;
  /* The statements with parameters prepared on this session (conn.c), so
   * each is parsed and planned once per session instead of per call;
   * forgotten when the session is (a reconnect starts a new one). */
  struct pg_prepared *prepared;
  size_t nprepared;
  unsigned long prepared_names; /* names given on this link: never reused on it */
} pg_link;

/* -------------------------------------------------------------- errors.c */

/* Says why a call on link failed ("postgresql schema 'apsched': <what>:
 * <the server's or libpq's message>") with apsched__pstore_error; res is
 * the failed result, or NULL for a failure without one (connecting).
 * Returns APSCHED_EBACKEND. */
PG_HIDDEN int apsched__pg_fail(const pg_link *l, const PGresult *res, const char *what);
/* The SQLSTATE of a failed result ("23505"), or "" when there is none. */
PG_HIDDEN const char *apsched__pg_sqlstate(const PGresult *res);

/* --------------------------------------------------------------- store.c */

/* APSCHED_OK, or APSCHED_EINVAL naming the bad option. */
PG_HIDDEN int apsched__pg_check_options(const apsched_pg_options *o);

/* ---------------------------------------------------------------- conn.c */

/* Makes sure link has a working connection: connects the first time, and
 * again (PQreset) after the connection was lost, so the call after a
 * failure recovers. APSCHED_EBACKEND with libpq's message if it cannot. */
PG_HIDDEN int apsched__pg_ready(pg_link *l);
PG_HIDDEN void apsched__pg_disconnect(pg_link *l);

/* Runs sql (text parameters values[0..n), NULL meaning SQL NULL; formats
 * and lengths may be NULL: all text) and returns its result, rows in binary
 * when binary. On failure returns NULL, with the error set (what names the
 * step) in *rc. A statement with parameters is prepared on the session the
 * first time (by its text) and executed as such from then on: parsed and
 * planned once per session, not per call (PostgreSQL replans it for its
 * parameters when a generic plan would cost more). */
PG_HIDDEN PGresult *apsched__pg_exec(pg_link *l, const char *sql, int n, const char *const *values,
                                     const int *lengths, const int *formats, bool binary,
                                     const char *what, int *rc);
/* apsched__pg_exec planned for its parameters at every call, never
 * prepared: for statements joining a parameter array to the runs table,
 * whose generic plan (made for an array of unknown size) scans the whole
 * table, dead rows included: 4.4 ms instead of 1.0 for a claimed batch's
 * closes in bench_pg. Text parameters, text rows. */
PG_HIDDEN PGresult *apsched__pg_exec_custom(pg_link *l, const char *sql, int n,
                                            const char *const *values, const char *what, int *rc);
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
  store_policies policies;
} pg_params;

PG_HIDDEN void apsched__pg_params(pg_params *p, const apsched_job_record *rec,
                                  const char *trigger_text);

/* Decodes row of res (binary rows; the job columns from column 0) into a new
 * record with apsched__pstore_decode_row (a broken row is reported once). */
PG_HIDDEN int apsched__pg_decode(const PGresult *res, int row, store_base *b,
                                 apsched_job_record **out);

/* A bigint column of a binary row (0 for NULL). */
PG_HIDDEN int64_t apsched__pg_int8(const PGresult *res, int row, int col);
/* An integer column (smallint, integer or bigint) of a binary row; 0 for NULL. */
PG_HIDDEN int64_t apsched__pg_int(const PGresult *res, int row, int col);
/* Appends v (any text) to an array literal at p as a quoted element;
 * returns the end. Room: 2 * strlen(v) + 2 bytes. */
PG_HIDDEN char *apsched__pg_array_text(char *p, const char *v);

/* -------------------------------------------------------------- schema.c */

/* Brings the schema of link to APSCHED_PG_SCHEMA_VERSION: creates it (schema
 * and tables) or migrates an older one, in one transaction; refuses
 * (APSCHED_EINVAL, nothing changed) a newer schema, one not made by this
 * library, and (existing_only) a missing one. */
PG_HIDDEN int apsched__pg_schema_ensure(pg_link *l, bool existing_only);

/* ---------------------------------------------------------------- store */

/* A report to hand to the scheduler once the batch that found it commits. */
typedef struct pg_report {
  struct pg_report *next;
  char *job_id, *why;
} pg_report;

/* A release of the open batch, written with the others in one statement
 * (store.c) before the batch reads the jobs again or commits. */
typedef struct pg_staged_release {
  char *job_id;
  int64_t next_run_time, trigger_time; /* APSCHED_TIME_NONE: NULL */
  bool remove;                         /* the job is finished: its row goes */
} pg_staged_release;

/* What runs_open needs to know of a job claimed in the open batch, read
 * right after the claim (runs.c): its instances in progress across
 * schedulers and the claim's token for its runs. rec->store_seq is the index
 * + 1 of a claimed record's. */
typedef struct pg_open_info {
  int64_t instances, token;
  bool used; /* runs_open staged this token's runs */
} pg_open_info;

/* Runs recorded by runs_open in the open batch, written in one statement
 * before the batch reads again or commits (runs.c). */
typedef struct pg_staged_open {
  const apsched_job_record *rec; /* held by the batch until it ends */
  apsched_time_t *times;
  size_t n;
  int64_t token;
  unsigned max_instances;
} pg_staged_open;

typedef struct pg_store {
  apsched_jobstore base;
  pg_link link;       /* the store's calls (one at a time) */
  char **sql;         /* the statements with the schema filled in (store.c) */
  char **runs_sql;    /* runs.c's */
  char **wait_sql;    /* waiting.c's (on link) */
  char *stops_sql;    /* waiting.c's stop requests (on hb) */
  store_base b;       /* scheduler, broken rows, the claimed batch's records */
  /* The claimed batch: claim_due or claim_orphans began its transaction,
   * commit ends it. failed: a statement of it failed, so the server has
   * aborted it. notify: it changed jobs other schedulers may wait for. */
  bool batch, batch_failed, batch_notify;
  int64_t batch_began; /* monotonic us, before its BEGIN */
  /* runs_closed_in_batch's results, until the batch ends (the caller keeps
   * them alive until commit returns); closes_only: nothing else was taken
   * in the batch yet, so claim_waiting may still skip its look. */
  const apsched_run_result *batch_closed;
  size_t nbatch_closed;
  bool batch_closes_only;
  /* Set by every notification, heartbeat and run made to wait here:
   * claim_waiting has something to look for. */
  atomic_bool look_for_waiting;
  _Atomic int64_t last_beat; /* monotonic us, before the last heartbeat that succeeded */
  int64_t orphans_swept;      /* monotonic us of the last takeover that looked at every run */
  apsched_job_record *found; /* the last lookup's record */
  pg_staged_release *releases;      /* the open batch's, not written yet */
  size_t nreleases, releases_cap;
  pg_open_info *open_info;          /* of the open batch's claimed jobs */
  size_t nopen_info, open_info_cap;
  pg_staged_open *opens;            /* the open batch's runs, not written yet */
  size_t nopens, opens_cap;
  int lease_ms;
  char *scheduler_name;
  int64_t history_retention; /* microseconds; 0: no history; INT64_MAX: all */
  char id[40];               /* this scheduler's id in <schema>.schedulers */
  char *token_seq;           /* the token sequence, quoted, as a regclass text */
  char channel[48];          /* the NOTIFY channel of the schema */

  /* mu guards what executor threads and the heartbeat thread share with
   * the store's calls: claims, sched, and the start connection. */
  pthread_mutex_t mu;
  store_claims claims;       /* committed claims (tokens) */
  store_claim *pending;         /* claims of the open batch, kept once it commits */
  pg_report *reports;        /* reports of the open batch (or runs_closed's) */
  int64_t *closing;          /* runs_closed's tokens, until its write ends */
  /* Runs this store closed since it last vacuumed the runs table (see
   * liveness.c), and whether it may (-1: not asked yet; heartbeat thread). */
  atomic_long closed_since_vacuum;
  int may_vacuum;
  pthread_mutex_t start_mu;  /* guards start */
  pg_link start;             /* run_starting's connection (and start groups' release) */
  store_starts starts;       /* start groups, written on start (start_mu) */
  char where[160];           /* "postgresql schema 'x'", for the start groups' errors */
  apsched_scheduler *sched;  /* woken by notifications; NULL when closed */

  /* Liveness (liveness.c): the heartbeat thread and its connection. */
  pg_link hb;
  pthread_t hb_thread;
  bool registered;           /* row written, lock held, thread running */
  int wake[2];               /* a pipe that ends the heartbeat thread's wait */
  atomic_bool stopping;

  store_clock clock;         /* the database's clock, sampled by the heartbeat thread */
} pg_store;

/* Test hooks: the store's connection (to find its backend and terminate
 * it), its schema and its scheduler id. Not exported from the shared
 * library. */
PG_HIDDEN PGconn *apsched__pg_store_conn(apsched_jobstore *st);
PG_HIDDEN const char *apsched__pg_store_schema(apsched_jobstore *st);
PG_HIDDEN const char *apsched__pg_store_id(apsched_jobstore *st);

/* ---------------------------------------------------------------- runs.c */

/* Fills in runs.c's statements; APSCHED_ENOMEM if it cannot. */
PG_HIDDEN int apsched__pg_runs_init(pg_store *ps);
PG_HIDDEN void apsched__pg_runs_free(pg_store *ps);
/* The vtable's calls (runs_open inside a claimed batch; claim_orphans
 * inside one it began). */
PG_HIDDEN int apsched__pg_runs_open(pg_store *ps, const apsched_job_record *rec,
                                    const apsched_time_t *times, size_t n, bool *track);
PG_HIDDEN int apsched__pg_runs_closed(pg_store *ps, const apsched_run_result *results, size_t n);
/* Reads what runs_open needs of the n jobs just claimed (one statement);
 * a failure fails the batch. */
PG_HIDDEN int apsched__pg_runs_prepare(pg_store *ps, apsched_job_record **recs, size_t n);
/* Writes the runs staged by runs_open (one statement); a failure fails the
 * batch. */
PG_HIDDEN int apsched__pg_runs_flush(pg_store *ps);
/* After runs_closed's write ended (committed or undone). */
PG_HIDDEN void apsched__pg_runs_closed_done(pg_store *ps, const apsched_run_result *results,
                                            size_t n, bool committed);
PG_HIDDEN int apsched__pg_runs_orphans(pg_store *ps, apsched_orphan_run *out, size_t max);
/* Writes a start group (store_group_write; start_mu held). */
PG_HIDDEN int apsched__pg_group_write(void *store, const store_start_group *g, bool start,
                                      void (*hit)(size_t i, void *ud), void *ud);
/* The batch committed (keep its claims, hand over its reports) or was
 * undone (forget them). */
PG_HIDDEN void apsched__pg_batch_done(pg_store *ps, bool committed);
/* Notes a claim of the open write (kept once it commits: batch_done). */
PG_HIDDEN int apsched__pg_pending_add(pg_store *ps, const char *job_id, int64_t t,
                                      unsigned attempt, int64_t token);
/* Array parameters: "{t1,t2,...}" (bigint[]) and "{a,b,...}" (text[]; a
 * NULL text is a NULL element). malloc'd; NULL when memory is short. */
PG_HIDDEN char *apsched__pg_bigint_array(const int64_t *v, size_t n);
PG_HIDDEN char *apsched__pg_text_array(const char *const *v, size_t n);
/* The runs table's delivery text of a record. */
PG_HIDDEN const char *apsched__pg_delivery_text(const apsched_job_record *rec);
/* max_instances as the runs table keeps it: allow_all is no limit (the
 * column is an integer; 65535 is max_instances' own). */
PG_HIDDEN unsigned apsched__pg_instances_limit(const apsched_job_record *rec);
/* A record to run a run row with (columns: job_id, scheduled_time,
 * attempt, previous owner, token, name, func, executor, arg,
 * max_instances, max_runtime_ms, delivery, as R_ORPHANS returns them).
 * Damaged values make a run that is skipped (an unknown function) rather
 * than an error. NULL when memory is short. */
PG_HIDDEN apsched_job_record *apsched__pg_run_record(pg_store *ps, const PGresult *res, int row);
/* ------------------------------------------------------------- waiting.c */
/* Fills in waiting.c's statements; APSCHED_ENOMEM if it cannot. */
PG_HIDDEN int apsched__pg_waiting_init(pg_store *ps);
PG_HIDDEN void apsched__pg_waiting_free(pg_store *ps);
/* runs_wait, inside the claimed batch (its job row is locked by the claim). */
PG_HIDDEN int apsched__pg_runs_wait(pg_store *ps, const apsched_job_record *rec,
                                    const apsched_time_t *times, size_t n,
                                    apsched_runs_waiting *out);
/* runs_add's statements, inside a write of its own (store.c). */
PG_HIDDEN int apsched__pg_runs_add(pg_store *ps, const apsched_job_record *rec,
                                   const apsched_time_t *times, size_t n, bool *track,
                                   apsched_runs_waiting *out);
/* Whether any run waits (one cheap read, outside a transaction). */
PG_HIDDEN int apsched__pg_any_waiting(pg_store *ps, bool *any);
/* claim_waiting's statements, inside the claimed batch. */
PG_HIDDEN int apsched__pg_waiting_take(pg_store *ps, apsched_waited_run *out, size_t max);
/* The heartbeat thread (on hb): reads the stop requests of this
 * scheduler's runs not read yet, and stops those runs here. */
PG_HIDDEN int apsched__pg_stops_read(pg_store *ps);

/* ------------------------------------------------------------ liveness.c */

/* Registers this scheduler (row, advisory lock, heartbeat thread) unless
 * it is; APSCHED_EBACKEND if the database cannot be reached. */
PG_HIDDEN int apsched__pg_register(pg_store *ps);
/* Stops the heartbeat thread, deletes the row and drops the lock. */
PG_HIDDEN void apsched__pg_deregister(pg_store *ps);
/* The SQL that finds the live schedulers ($2: dead after ms, $5: schema),
 * for the orphan query. */
#define PG_LIVE_SCHEDULERS(SCHEMA_PARAM)                                                      \
  "SELECT s.id FROM @.schedulers s WHERE " PG_SCHEDULER_ALIVE("s", SCHEMA_PARAM)

/* Whether the scheduler of row ALIAS of <schema>.schedulers is alive: its
 * heartbeat younger than 2 x its own lease, and its advisory lock held.
 * A server restart ends every session and with it every lock, so one that
 * has not beaten since the server started cannot be judged by its lock:
 * it is alive until 2 x its lease after the start (its heartbeat thread
 * takes the lock again at its next beat, within lease / 3 or 1 s).
 * SCHEMA_PARAM: the parameter holding the schema name ("$4"). */
#define PG_SCHEDULER_ALIVE(ALIAS, SCHEMA_PARAM)                                                \
  "((" ALIAS ".heartbeat_at > now() - make_interval(secs => " ALIAS ".lease_ms / 500.0)"         \
  " AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks l"                                         \
  " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"                          \
  " AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())" \
  " AND l.classid = hashtext('libapsched-pg ' || " SCHEMA_PARAM ")::oid"                      \
  " AND l.objid = hashtext(" ALIAS ".id)::oid))"                                               \
  " OR (" ALIAS ".heartbeat_at < pg_catalog.pg_postmaster_start_time()"                        \
  " AND pg_catalog.pg_postmaster_start_time() > now() - make_interval(secs => " ALIAS            \
  ".lease_ms / 500.0)))"

/* --------------------------------------------------------------- clock.c */

/* Notes one round trip: the host's time before and after, the database's
 * in between. */
PG_HIDDEN void apsched__pg_clock_sample(pg_store *ps, int64_t before, int64_t db, int64_t after);
PG_HIDDEN apsched_time_t apsched__pg_clock(apsched_jobstore *st, apsched_time_t host_now);

/* -------------------------------------------------------------- notify.c */

/* Inside a write about to commit: tells the other schedulers to look
 * (delivered at COMMIT). */
PG_HIDDEN int apsched__pg_notify(pg_store *ps);
/* The schema's channel into ps->channel (at create). */
PG_HIDDEN int apsched__pg_channel(pg_store *ps);
/* LISTENs on hb's connection. */
PG_HIDDEN int apsched__pg_listen(pg_store *ps, pg_link *l);
/* Drains hb's notifications: what they said (0: none arrived). */
enum { PG_HEARD_CHANGE = 1, PG_HEARD_STOP = 2 };
PG_HIDDEN unsigned apsched__pg_notified(pg_link *l);

#endif
