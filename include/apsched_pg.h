/*
 * libapsched-pg: a job store in a PostgreSQL database. Jobs survive restarts,
 * one readable row per job in the schema's tables (`psql -c 'select * from
 * apsched.jobs'`, `\d+ apsched.jobs` explains every column).
 *
 * Several schedulers may share one schema: each due run is claimed by one of
 * them (a row of <schema>.runs, fenced by owner and token), a dead
 * scheduler's runs are taken over by a survivor, max_instances is counted
 * in the database, and NOTIFY wakes the others after a change (see the
 * README for what needs the scheduler's contract version 4). Outside tools (psql, `apsched jobs --store
 * postgresql://...`) may change the jobs at any time; the scheduler sees
 * their changes at its next pass.
 *
 * The store keeps what a later process can use: a job needs a function
 * registered by name (apsched_register_func, func_name) and at most a byte
 * argument (arg_bytes); a job with a pointer argument or an unnamed function
 * is refused when it is added (APSCHED_EINVAL). A row it cannot decode is
 * never changed or deleted: it is reported, listed as broken and only
 * removable.
 *
 * Link with apsched::pg (CMake) or `pkg-config --libs apsched-pg`.
 */
#ifndef APSCHED_PG_H
#define APSCHED_PG_H

#include "apsched_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct apsched_pg_options {
  /* libpq connection string: a URL ("postgresql://user@host/db") or
   * key=value pairs ("host=/run/postgresql dbname=app"); "" uses libpq's
   * defaults and PG* environment variables. Required (not NULL). */
  const char *conninfo;
  /* The PostgreSQL schema holding the tables; NULL: "apsched". Created if
   * missing (unless existing_only). At most 63 bytes, no control characters. */
  const char *schema;
  /* The lease, in milliseconds (0: 5000; 100 to 86400000): a scheduler
   * heartbeats every lease / 3, and one whose heartbeat is older than
   * 2 x its lease is dead (one whose connection is gone is dead at once).
   * Schedulers sharing a schema may use different leases: each is judged
   * by its own (the schedulers table keeps it). */
  int lease_ms;
  /* A name for this scheduler in the schedulers table; NULL: none. */
  const char *scheduler_name;
  /* Refuse a database without the schema's tables instead of creating them
   * (tools that should not turn a typo into a new, empty store). */
  bool existing_only;
  /* Run history: every ended run (job id, scheduled time, attempt, start,
   * end, outcome, error) becomes a row of <schema>.run_history, deleted once
   * older than this many microseconds (counted back from the latest run
   * ended). 0: no history; APSCHED_PG_HISTORY_FOREVER: keep all. */
  int64_t history_retention;
} apsched_pg_options;

/* Connects and brings the schema to this library's version, creating it
 * (schema and tables, in one transaction) on first use. Fails with
 * APSCHED_EINVAL for bad options (naming the bad one), a schema whose
 * version is newer than this library's, or one that was not made by
 * libapsched-pg; APSCHED_EBACKEND when the server cannot be reached or
 * refuses (with libpq's message). errbuf (optional) and apsched_last_error()
 * say why; nothing in the database changes on failure. The store is
 * APSCHED_STORE_BLOCKING and reconnects by itself after a lost connection
 * (the call that found it lost fails with APSCHED_EBACKEND; the scheduler
 * retries). Add it with apsched_add_jobstore (which then owns it). */
APSCHED_API int apsched_pg_store_create(const apsched_pg_options *opts, apsched_jobstore **out,
                                        char *errbuf, size_t errlen);

/* One scheduler registered in a schema, as apsched_pg_schedulers reports
 * it. The strings live until visit returns. */
typedef struct apsched_pg_scheduler {
  const char *id;   /* 16 hex digits: the owner column of <schema>.runs */
  const char *name; /* its scheduler_name, or NULL */
  const char *host;
  int pid;
  apsched_time_t started_at;   /* the database's clock */
  apsched_time_t heartbeat_at; /* its last heartbeat */
  int lease_ms;
  /* Holds its advisory lock and heartbeated within 2 x lease_ms. A dead
   * scheduler's row stays (shown as dead) until 10 x lease_ms after its last
   * heartbeat and until no run of it is left to take over. */
  bool alive;
  unsigned long claimed; /* runs it claimed that have not started */
  unsigned long running; /* runs it started that have not ended */
} apsched_pg_scheduler;

/* Calls visit for every scheduler registered in the schema opts names (the
 * live ones first, then by start), from a connection of its own: any
 * process may call it at any time (`apsched schedulers` does). visit
 * returns 0 to go on, anything else to stop. Options as for
 * apsched_pg_store_create, with existing_only implied; a schema of an older
 * version is brought to this one first. APSCHED_EINVAL / APSCHED_EBACKEND as
 * there; errbuf (optional) and apsched_last_error() say why. */
APSCHED_API int apsched_pg_schedulers(const apsched_pg_options *opts,
                                      int (*visit)(const apsched_pg_scheduler *sch, void *ud),
                                      void *ud, char *errbuf, size_t errlen);

/* The schema version this library writes (and the newest it opens). */
#define APSCHED_PG_SCHEMA_VERSION 6
/* history_retention: keep every ended run. */
#define APSCHED_PG_HISTORY_FOREVER INT64_MAX

#ifdef __cplusplus
}
#endif
#endif /* APSCHED_PG_H */
