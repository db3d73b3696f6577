/*
 * libapsched-sqlite: a job store in a SQLite file. Jobs survive restarts and
 * crashes, one readable row per job (`sqlite3 jobs.db 'select * from
 * apsched_jobs'`). One scheduler per file (any process); readers and tools
 * (the sqlite3 shell, `apsched jobs`, a store opened with external = true)
 * may open it at any time, and the scheduler sees their changes at its next
 * pass.
 *
 * The store keeps what a later process can use: a job needs a function
 * registered by name (apsched_register_func, func_name) and at most a byte
 * argument (arg_bytes); a job with a pointer argument or an unnamed function
 * is refused when it is added (APSCHED_EINVAL). A row it cannot decode is
 * never changed or deleted: it is reported, listed as broken and only
 * removable.
 *
 * Link with apsched::sqlite (CMake) or `pkg-config --libs apsched-sqlite`.
 */
#ifndef APSCHED_SQLITE_H
#define APSCHED_SQLITE_H

#include "apsched_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum apsched_sqlite_durability {
  /* synchronous=FULL: a call that returned APSCHED_OK survives power loss. */
  APSCHED_SQLITE_FULL = 0,
  /* synchronous=NORMAL: survives a process crash; the last commits may be
   * lost on power loss (an OS crash). Several times faster per commit. */
  APSCHED_SQLITE_NORMAL = 1
} apsched_sqlite_durability;

typedef struct apsched_sqlite_options {
  const char *path;                       /* the database file; created if missing */
  const char *table_prefix;               /* NULL: "apsched_" (tables apsched_jobs, ...):
                                             letters, digits and '_' only */
  apsched_sqlite_durability durability;   /* default FULL */
  int busy_timeout_ms;                    /* waiting for another connection's lock;
                                             0: 5000 */
  /* Open as an outside tool (the apsched CLI, an admin program): no
   * one-scheduler lock is taken, so this works while a scheduler runs on the
   * file; such a store must not be given to a scheduler that runs jobs
   * (claim_due refuses). Changes it makes are seen by the running scheduler
   * within its max_wait. */
  bool external;
  /* Run history: every ended run (job id, scheduled time, attempt, start,
   * end, outcome, error) becomes a row of <prefix>run_history, deleted once
   * it is older than this many microseconds (counted back from the newest
   * run ended). 0: no history; APSCHED_SQLITE_HISTORY_FOREVER: keep all. */
  int64_t history_retention;
} apsched_sqlite_options;

#define APSCHED_SQLITE_HISTORY_FOREVER INT64_MAX

/* Opens (creating it if needed) the job store in opts->path, and holds the
 * file's one-scheduler lock (the sidecar "<path>-lock") until the store is
 * freed. Fails with APSCHED_ESTATE when another scheduler (another process,
 * or another store in this one) uses the file, APSCHED_EINVAL for bad
 * options or a file whose schema is newer than this library's,
 * APSCHED_EBACKEND for a file SQLite cannot open or read, or a read-only one
 * (with SQLite's message); errbuf (optional) and apsched_last_error() say
 * why. Nothing in the file changes on failure. The store is APSCHED_STORE_BLOCKING; add it with
 * apsched_add_jobstore like any store (which then owns it). */
APSCHED_API int apsched_sqlite_store_create(const apsched_sqlite_options *opts,
                                            apsched_jobstore **out, char *errbuf, size_t errlen);

/* The schema version this library writes (and the newest it opens). */
#define APSCHED_SQLITE_SCHEMA_VERSION 3

#ifdef __cplusplus
}
#endif
#endif /* APSCHED_SQLITE_H */
