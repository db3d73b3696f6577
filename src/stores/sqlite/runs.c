/* Run records and run history.
 *
 * A run of an at-least-once job is a row of the runs table from the claim
 * that starts it (same transaction as the job's new next run time) until it
 * has ended. The row holds what the run needs (function, executor,
 * argument...), so it can be run again even if its job was changed or
 * removed meanwhile. Each open of the file is an owner with a fresh id; rows
 * of another owner were left by a process that stopped before its runs
 * ended (one scheduler per file: that process is gone), and the next claimed
 * batch takes them over as attempt + 1.
 *
 * With a history retention, every ended run (of any job) also becomes a row
 * of the run_history table; rows older than the retention are deleted as
 * new ones arrive. */
#include "sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

void apsched__sqlite_runs_init(sqlite_runs *r, int64_t history_retention) {
  unsigned char b[12];
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
    /* No entropy source: the time and pid still tell opens apart. */
    apsched_time_t now = apsched_now();
    pid_t pid = getpid();
    memcpy(b, &now, 8);
    memcpy(b + 8, &pid, 4);
  }
  for (size_t i = 0; i < sizeof b; i++) snprintf(r->owner + 2 * i, 3, "%02x", b[i]);
  r->history_retention = history_retention;
  r->orphans_left = true;
}

static const char *const outcome_text[] = {
    [APSCHED_RUN_EXECUTED] = "executed",
    [APSCHED_RUN_FAILED] = "failed",
    [APSCHED_RUN_MISSED] = "missed",
    [APSCHED_RUN_SKIPPED] = "skipped",
};

int apsched__sqlite_runs_open(sqlite_runs *r, sqlite_conn *c, const apsched_job_record *rec,
                              const apsched_time_t *times, size_t n, bool *track) {
  bool at_least_once = rec->flags & APSCHED_JOB_AT_LEAST_ONCE;
  *track = at_least_once || r->history_retention > 0;
  if (!at_least_once) return APSCHED_OK;
  int rc = APSCHED_OK;
  sqlite3_stmt *q = apsched__sqlite_stmt(c, Q_RUN_OPEN, &rc);
  if (!q) return rc;
  /* A savepoint: the records of one job go in whole or not at all. */
  bool nested;
  if ((rc = apsched__sqlite_write_begin(c, &nested)) != APSCHED_OK) return rc;
  size_t len = 0;
  const void *arg = apsched_job_args_bytes(rec->args, &len);
  apsched_time_t now = apsched_now();
  for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
    int src = sqlite3_bind_text(q, 1, rec->id, -1, SQLITE_STATIC);
    if (src == SQLITE_OK) src = sqlite3_bind_int64(q, 2, times[i]);
    if (src == SQLITE_OK) src = sqlite3_bind_text(q, 3, r->owner, -1, SQLITE_STATIC);
    if (src == SQLITE_OK) src = sqlite3_bind_int64(q, 4, now);
    if (src == SQLITE_OK)
      src = rec->name ? sqlite3_bind_text(q, 5, rec->name, -1, SQLITE_STATIC) : sqlite3_bind_null(q, 5);
    if (src == SQLITE_OK) src = sqlite3_bind_text(q, 6, rec->func->name, -1, SQLITE_STATIC);
    if (src == SQLITE_OK) src = sqlite3_bind_text(q, 7, rec->executor, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
      src = len ? sqlite3_bind_blob64(q, 8, arg, len, SQLITE_STATIC) : sqlite3_bind_null(q, 8);
    if (src == SQLITE_OK) src = sqlite3_bind_int(q, 9, rec->max_instances);
    if (src == SQLITE_OK) src = sqlite3_bind_int64(q, 10, rec->max_runtime_ms);
    char what[128];
    snprintf(what, sizeof what, "recording a run of job '%.64s'", rec->id);
    rc = src == SQLITE_OK ? apsched__sqlite_step(c, q, what) : apsched__sqlite_fail(c->db, c->path, what);
  }
  return apsched__sqlite_write_end(c, nested, rc);
}

static int bind_time_or_null(sqlite3_stmt *q, int col, apsched_time_t t) {
  return t == APSCHED_TIME_NONE ? sqlite3_bind_null(q, col) : sqlite3_bind_int64(q, col, t);
}

/* One ended run into the history table. */
static int add_history(sqlite_conn *c, sqlite3_stmt *q, const apsched_run_result *res) {
  unsigned outcome = (unsigned)res->outcome <= APSCHED_RUN_SKIPPED ? res->outcome : APSCHED_RUN_FAILED;
  int src = sqlite3_bind_text(q, 1, res->job_id, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(q, 2, res->scheduled_time);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(q, 3, res->attempt);
  if (src == SQLITE_OK) src = bind_time_or_null(q, 4, res->started_at);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(q, 5, res->finished_at);
  if (src == SQLITE_OK) src = sqlite3_bind_text(q, 6, outcome_text[outcome], -1, SQLITE_STATIC);
  if (src == SQLITE_OK)
    src = res->started_at == APSCHED_TIME_NONE ? sqlite3_bind_null(q, 7) : sqlite3_bind_int(q, 7, res->retval);
  if (src == SQLITE_OK)
    src = res->error ? sqlite3_bind_text(q, 8, res->error, -1, SQLITE_STATIC) : sqlite3_bind_null(q, 8);
  return src == SQLITE_OK ? apsched__sqlite_step(c, q, "writing the run history")
                          : apsched__sqlite_fail(c->db, c->path, "writing the run history");
}

int apsched__sqlite_runs_closed(sqlite_runs *r, sqlite_conn *c, const apsched_run_result *results,
                                size_t n) {
  int rc = APSCHED_OK;
  sqlite3_stmt *close = apsched__sqlite_stmt(c, Q_RUN_CLOSE, &rc);
  sqlite3_stmt *history = r->history_retention > 0 && close
                              ? apsched__sqlite_stmt(c, Q_HISTORY_ADD, &rc)
                              : NULL;
  if (!close || (r->history_retention > 0 && !history)) return rc;
  apsched_time_t latest = APSCHED_TIME_NONE;
  for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
    const apsched_run_result *res = &results[i];
    int src = sqlite3_bind_text(close, 1, res->job_id, -1, SQLITE_STATIC);
    if (src == SQLITE_OK) src = sqlite3_bind_int64(close, 2, res->scheduled_time);
    if (src == SQLITE_OK) src = sqlite3_bind_text(close, 3, r->owner, -1, SQLITE_STATIC);
    rc = src == SQLITE_OK ? apsched__sqlite_step(c, close, "closing a run record")
                          : apsched__sqlite_fail(c->db, c->path, "closing a run record");
    if (rc == APSCHED_OK && history) rc = add_history(c, history, res);
    if (latest == APSCHED_TIME_NONE || res->finished_at > latest) latest = res->finished_at;
  }
  if (rc == APSCHED_OK && history && r->history_retention != INT64_MAX && n > 0) {
    /* Older than the retention, counted back from the newest run ended. */
    sqlite3_stmt *prune = apsched__sqlite_stmt(c, Q_HISTORY_PRUNE, &rc);
    if (prune && sqlite3_bind_int64(prune, 1, latest - r->history_retention) == SQLITE_OK)
      rc = apsched__sqlite_step(c, prune, "pruning the run history");
    else if (prune)
      rc = apsched__sqlite_fail(c->db, c->path, "pruning the run history");
  }
  return rc;
}

/* A record to run an orphaned run with, from the current row of q (the
 * columns of Q_ORPHANS). Values that are damaged make a run that is
 * skipped (an unknown function) rather than an error. */
static apsched_job_record *orphan_record(sqlite3_stmt *q, store_intern_fn intern, void *ctx) {
  const char *id = (const char *)sqlite3_column_text(q, 0);
  apsched_job_record *rec = apsched_job_record_new(id ? id : "");
  if (!rec) return NULL;
  const char *name = (const char *)sqlite3_column_text(q, 3);
  const char *func = (const char *)sqlite3_column_text(q, 4);
  const char *executor = (const char *)sqlite3_column_text(q, 5);
  rec->func = apsched_func_by_name(func && *func ? func : "(no function)");
  rec->executor = intern(ctx, executor && *executor ? executor : "default");
  if (name) rec->name = strdup(name);
  size_t len = (size_t)sqlite3_column_bytes(q, 6);
  if (len > 0) rec->args = apsched_job_args_new(sqlite3_column_blob(q, 6), len);
  sqlite3_int64 max_instances = sqlite3_column_int64(q, 7);
  rec->max_instances = (uint16_t)(max_instances >= 1 && max_instances <= UINT16_MAX ? max_instances : 1);
  sqlite3_int64 max_runtime = sqlite3_column_int64(q, 8);
  rec->max_runtime_ms = (uint32_t)(max_runtime >= 0 && max_runtime <= UINT32_MAX ? max_runtime : 0);
  rec->misfire_grace_ms = UINT32_MAX;
  rec->flags = APSCHED_JOB_AT_LEAST_ONCE;
  rec->next_run_time = rec->trigger_time = APSCHED_TIME_NONE;
  if (!rec->func || !rec->executor || (name && !rec->name) || (len > 0 && !rec->args)) {
    apsched_job_record_free(rec);
    return NULL;
  }
  return rec;
}

int apsched__sqlite_runs_orphans(sqlite_runs *r, sqlite_conn *c, store_intern_fn intern,
                                 void *ctx, apsched_orphan_run *out, size_t max) {
  if (!r->orphans_left || max == 0) return 0;
  int rc = APSCHED_OK;
  sqlite3_stmt *q = apsched__sqlite_stmt(c, Q_ORPHANS, &rc);
  sqlite3_stmt *take = q ? apsched__sqlite_stmt(c, Q_ORPHAN_TAKE, &rc) : NULL;
  if (!take) return rc;
  size_t n = 0;
  int src = sqlite3_bind_text(q, 1, r->owner, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(q, 2, (sqlite3_int64)max);
  while (src == SQLITE_OK && n < max && (src = sqlite3_step(q)) == SQLITE_ROW) {
    src = SQLITE_OK;
    apsched_job_record *rec = orphan_record(q, intern, ctx);
    if (!rec) {
      rc = apsched__pstore_error(APSCHED_ENOMEM, "'%s': out of memory reading a run record", c->path);
      break;
    }
    sqlite3_int64 attempt = sqlite3_column_int64(q, 2);
    out[n++] = (apsched_orphan_run){.rec = rec,
                                    .scheduled_time = sqlite3_column_int64(q, 1),
                                    .attempt = attempt >= 1 && attempt < UINT32_MAX ? (unsigned)attempt + 1 : 2};
  }
  if (rc == APSCHED_OK && src != SQLITE_OK && src != SQLITE_DONE && src != SQLITE_ROW)
    rc = apsched__sqlite_fail(c->db, c->path, "reading unfinished runs");
  sqlite3_reset(q);
  /* Taken over once the reading is done (the query filters on the owner). */
  apsched_time_t now = apsched_now();
  for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
    src = sqlite3_bind_text(take, 1, out[i].rec->id, -1, SQLITE_STATIC);
    if (src == SQLITE_OK) src = sqlite3_bind_int64(take, 2, out[i].scheduled_time);
    if (src == SQLITE_OK) src = sqlite3_bind_text(take, 3, r->owner, -1, SQLITE_STATIC);
    if (src == SQLITE_OK) src = sqlite3_bind_int64(take, 4, now);
    rc = src == SQLITE_OK ? apsched__sqlite_step(c, take, "taking over an unfinished run")
                          : apsched__sqlite_fail(c->db, c->path, "taking over an unfinished run");
  }
  if (rc != APSCHED_OK) {
    while (n > 0) apsched_job_record_free(out[--n].rec);
    return rc;
  }
  if (n == 0) r->orphans_left = false;
  return (int)n;
}
