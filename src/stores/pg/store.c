/* The PostgreSQL job store: the vtable of apsched_plugin.h over the table
 * <schema>.jobs (run records: runs.c; schedulers' liveness: liveness.c;
 * the database's clock: clock.c; wake-ups: notify.c).
 *
 * One connection, used by one call at a time (the scheduler serializes a
 * store's calls). Every call reads the table afresh, so a job paused,
 * changed or removed by another program (psql, `apsched jobs`) is seen by
 * the next call; nothing about the jobs is cached between calls but the ids
 * of rows that cannot be decoded, re-checked whenever they matter.
 *
 * Writes: each mutating call is one transaction. A claimed batch is one
 * transaction too: claim_due begins it and locks the due rows (FOR UPDATE
 * SKIP LOCKED), release stages each job's new next run time, commit makes
 * the batch durable at once. A failed statement aborts a PostgreSQL
 * transaction, so a release that fails undoes the whole batch (every job of
 * it is due again and none of their runs starts), where SQLite undoes that
 * job alone: both are what the contract allows. Inside an open batch (only
 * the conformance kit writes there), the other writes nest as savepoints.
 *
 * Several schedulers may share a schema: claims lock the due rows (FOR
 * UPDATE SKIP LOCKED), so each due job goes to one of them, and each
 * claimed run is a fenced row of <schema>.runs (runs.c). Due-ness uses
 * claim_due's `now`, which the scheduler takes from the store's clock (the
 * database's). */
#include "pg_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- queries */

typedef enum query {
  Q_INSERT,
  Q_UPSERT,
  Q_LOOKUP,
  Q_UPDATE,
  Q_DELETE,
  Q_DELETE_ALL,
  Q_NEXT,
  Q_DUE,
  Q_RELEASE,
  Q_ALL,
  Q_COUNT
} query;

#define VALUES "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
#define SET_COLUMNS                                                                          \
  "name = $2, func = $3, \"trigger\" = $4, executor = $5, arg = $6, misfire_grace_ms = $7, " \
  "\"coalesce\" = $8, max_instances = $9, max_runtime_ms = $10, next_run_time = $11, "       \
  "trigger_time = $12, delivery = $13, policies = $14, failures = $15"

/* "@" is the quoted schema (apsched__pstore_expand). Ties in next_run_time
 * go by id, so the order is the same on every call. */
static const char *const query_sql[Q_COUNT] = {
    [Q_INSERT] = "INSERT INTO @.jobs (" STORE_JOB_COLUMNS ") VALUES " VALUES,
    /* One statement: the job is never missing. */
    [Q_UPSERT] = "INSERT INTO @.jobs (" STORE_JOB_COLUMNS ") VALUES " VALUES
                 " ON CONFLICT (id) DO UPDATE SET " SET_COLUMNS,
    [Q_LOOKUP] = "SELECT " STORE_JOB_COLUMNS " FROM @.jobs WHERE id = $1",
    [Q_UPDATE] = "UPDATE @.jobs SET " SET_COLUMNS " WHERE id = $1",
    /* A removed job's waiting runs go with it (its running ones end). */
    [Q_DELETE] = "WITH w AS (DELETE FROM @.runs WHERE job_id = $1 AND waiting)"
                 " DELETE FROM @.jobs WHERE id = $1",
    [Q_DELETE_ALL] = "WITH w AS (DELETE FROM @.runs WHERE waiting) DELETE FROM @.jobs",
    [Q_NEXT] = "SELECT id, next_run_time FROM @.jobs WHERE next_run_time IS NOT NULL "
               "ORDER BY next_run_time, id LIMIT $1",
    [Q_DUE] = "SELECT " STORE_JOB_COLUMNS " FROM @.jobs WHERE next_run_time <= $1 AND NOT paused "
              "ORDER BY next_run_time, id LIMIT $2 FOR UPDATE SKIP LOCKED",
    /* Every release of a claimed batch in one statement: $1 ids, $2 next
     * run times, $3 trigger times, $4 whether the job is finished. */
    [Q_RELEASE] = "WITH v AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[],"
                  " $4::boolean[]) AS v(id, next_run_time, trigger_time, finished)),"
                  " gone AS (DELETE FROM @.jobs j USING v WHERE j.id = v.id AND v.finished)"
                  " UPDATE @.jobs j SET next_run_time = v.next_run_time,"
                  " trigger_time = v.trigger_time FROM v WHERE j.id = v.id AND NOT v.finished",
    [Q_ALL] = "SELECT " STORE_JOB_COLUMNS " FROM @.jobs ORDER BY id",
};

/* ----------------------------------------------------------------- store */

static pg_store *as_pg(apsched_jobstore *st) { return (pg_store *)st; }

static int flush_releases(pg_store *ps);
static void releases_clear(pg_store *ps);

/* Writes what the open batch staged: its runs (runs.c), then its releases. */
static int flush_staged(pg_store *ps) {
  int rc = apsched__pg_runs_flush(ps);
  return rc == APSCHED_OK ? flush_releases(ps) : rc;
}

/* Runs query q; on failure inside the batch, notes that the batch is lost.
 * The batch's releases are written first: q reads what they change. */
static PGresult *run(pg_store *ps, query q, int n, const char *const *values, const int *lengths,
                     const int *formats, const char *what, int *rc) {
  if (q != Q_RELEASE && (*rc = flush_staged(ps)) != APSCHED_OK) return NULL;
  PGresult *res = apsched__pg_exec(&ps->link, ps->sql[q], n, values, lengths, formats, true, what, rc);
  if (!res && ps->batch) ps->batch_failed = true;
  return res;
}

static int command(pg_store *ps, const char *sql, const char *what) {
  int rc = apsched__pg_command(&ps->link, sql, what);
  if (rc != APSCHED_OK && ps->batch) ps->batch_failed = true;
  return rc;
}

/* Before a call outside a batch: a working connection (reconnecting after a
 * loss), with no transaction left open. */
static int ready(pg_store *ps) {
  if (ps->batch) return APSCHED_OK;
  int rc = apsched__pg_ready(&ps->link);
  if (rc == APSCHED_OK && apsched__pg_in_transaction(&ps->link))
    rc = apsched__pg_command(&ps->link, "ROLLBACK", "ending a transaction left open");
  return rc;
}

/* Begins a write: a transaction of its own, or a savepoint inside an open
 * batch (*nested). */
static int write_begin(pg_store *ps, bool *nested) {
  *nested = ps->batch;
  if (ps->batch && ps->batch_failed)
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "postgresql schema '%s': the claimed batch was rolled back after "
                                 "an earlier error",
                                 ps->link.schema);
  int rc = ready(ps);
  if (rc == APSCHED_OK) rc = flush_staged(ps);
  if (rc != APSCHED_OK) return rc;
  return apsched__pg_command(&ps->link, *nested ? "SAVEPOINT apsched_write" : "BEGIN",
                             "starting a write transaction");
}

/* Ends a write begun by write_begin: commits it if rc is APSCHED_OK, else
 * undoes it. Returns rc, or the commit's error. */
static int write_end(pg_store *ps, bool nested, int rc, bool jobs_changed) {
  /* Other schedulers may have to look (their wait ends at COMMIT; the open
   * batch's commit sends it for a nested write). */
  if (rc == APSCHED_OK && jobs_changed && nested) ps->batch_notify = true;
  else if (rc == APSCHED_OK && jobs_changed) rc = apsched__pg_notify(ps);
  if (rc == APSCHED_OK) {
    rc = apsched__pg_command(&ps->link, nested ? "RELEASE SAVEPOINT apsched_write" : "COMMIT",
                             "committing");
    if (rc == APSCHED_OK) return rc;
  }
  if (!apsched__pg_in_transaction(&ps->link)) return rc; /* the connection is gone: so is the write */
  if (nested) {
    if (apsched__pg_command(&ps->link, "ROLLBACK TO SAVEPOINT apsched_write", "undoing a write") != APSCHED_OK)
      ps->batch_failed = true;
  } else {
    apsched__pg_command(&ps->link, "ROLLBACK", "undoing a write");
  }
  return rc;
}

/* Decodes row of res, noting it if broken. */
static int decode(pg_store *ps, const PGresult *res, int row, apsched_job_record **out) {
  return apsched__pg_decode(res, row, &ps->b, out);
}

/* Calls fn for every row, decoded (fn NULL: only decodes, which reports
 * the broken ones). */
static int scan_all(pg_store *ps, int (*fn)(const apsched_job_record *rec, void *ud), void *ud,
                    const char *what) {
  int rc = ready(ps);
  if (rc != APSCHED_OK) return rc;
  PGresult *res = run(ps, Q_ALL, 0, NULL, NULL, NULL, what, &rc);
  if (!res) return rc;
  for (int row = 0; row < PQntuples(res) && rc == APSCHED_OK; row++) {
    apsched_job_record *rec;
    if ((rc = decode(ps, res, row, &rec)) != APSCHED_OK) break;
    if (fn) rc = fn(rec, ud);
    apsched_job_record_free(rec);
  }
  PQclear(res);
  return rc;
}

/* ---------------------------------------------------------------- vtable */

/* Reports every row that does not decode, once per open: the scheduler
 * announces each as JOB_ERROR. */
static int pg_open(apsched_jobstore *st, apsched_scheduler *s, const char *alias) {
  pg_store *ps = as_pg(st);
  apsched__pstore_base_open(&ps->b, s, alias);
  int rc = scan_all(ps, NULL, NULL, "reading the jobs");
  if (rc == APSCHED_OK) rc = apsched__pg_register(ps);
  if (rc != APSCHED_OK) return rc;
  pthread_mutex_lock(&ps->mu);
  ps->sched = s;
  pthread_mutex_unlock(&ps->mu);
  return APSCHED_OK;
}

static void pg_close(apsched_jobstore *st) {
  pg_store *ps = as_pg(st);
  pthread_mutex_lock(&ps->mu);
  ps->sched = NULL;
  pthread_mutex_unlock(&ps->mu);
  /* Runs whose start was recorded ahead and that will not start here go
   * back to being claimed only: the next scheduler runs them. */
  apsched__pstore_starts_take_back_all(&ps->starts);
  apsched__pg_deregister(ps);
  apsched__pstore_base_close(&ps->b);
}

static void pg_destroy(apsched_jobstore *st) {
  pg_store *ps = as_pg(st);
  if (!ps) return;
  /* An open batch was never committed: none of its runs started. Closing
   * the connection rolls it back. */
  if (ps->start.conninfo) apsched__pstore_starts_take_back_all(&ps->starts);
  apsched__pg_deregister(ps);
  apsched__pg_disconnect(&ps->link);
  apsched__pg_disconnect(&ps->start);
  apsched__pg_runs_free(ps);
  apsched__pg_waiting_free(ps);
  releases_clear(ps);
  free(ps->releases);
  pthread_mutex_destroy(&ps->mu);
  pthread_mutex_destroy(&ps->start_mu);
  apsched__pstore_base_free(&ps->b);
  apsched_job_record_free(ps->found);
  if (ps->sql)
    for (int i = 0; i < Q_COUNT; i++) free(ps->sql[i]);
  free(ps->sql);
  free(ps->token_seq);
  PQfreemem(ps->link.quoted);
  free(ps->link.conninfo);
  free(ps->link.schema);
  free(ps->scheduler_name);
  free(ps);
}

/* Writes one record (INSERT or upsert) inside an open write. */
static int write_record(pg_store *ps, const apsched_job_record *rec, const char *text, bool upsert,
                        size_t i, size_t *failed) {
  pg_params p;
  apsched__pg_params(&p, rec, text);
  char what[128];
  snprintf(what, sizeof what, "writing job '%.64s'", rec->id);
  int rc = APSCHED_OK;
  PGresult *res = PQexecParams(ps->link.conn, ps->sql[upsert ? Q_UPSERT : Q_INSERT], COL_COUNT, NULL,
                               p.values, p.lengths, p.formats, 1);
  if (PQresultStatus(res) == PGRES_COMMAND_OK) {
    PQclear(res);
    return APSCHED_OK;
  }
  const char *state = apsched__pg_sqlstate(res);
  if (strcmp(state, "23505") == 0) { /* unique_violation */
    rc = apsched__pstore_error(APSCHED_EEXIST, "job '%.64s': the id is taken", rec->id);
    *failed = i;
  } else if (strncmp(state, "22", 2) == 0) {
    /* A data exception (text that is not valid in the database's encoding,
     * a number out of range): this record's fault. */
    apsched__pg_fail(&ps->link, res, what);
    rc = APSCHED_EINVAL;
    *failed = i;
  } else {
    rc = apsched__pg_fail(&ps->link, res, what);
  }
  PQclear(res);
  return rc;
}

static int pg_add(apsched_jobstore *st, apsched_job_record *const *recs, size_t n,
                  const bool *replace, size_t *failed) {
  pg_store *ps = as_pg(st);
  size_t dummy;
  if (!failed) failed = &dummy;
  *failed = n;
  if (n == 0) return APSCHED_OK;
  char **texts;
  int rc = apsched__pstore_add_prepare(recs, n, "PostgreSQL", &texts, failed);
  if (rc != APSCHED_OK) return rc;
  bool nested = false;
  rc = write_begin(ps, &nested);
  if (rc == APSCHED_OK) {
    for (size_t i = 0; i < n && rc == APSCHED_OK; i++)
      rc = write_record(ps, recs[i], texts[i], replace && replace[i], i, failed);
    rc = write_end(ps, nested, rc, true);
  }
  apsched__pstore_free_texts(texts, n);
  if (rc != APSCHED_OK) return rc;
  /* Stored: the rows are the jobs now, the records are not kept. */
  for (size_t i = 0; i < n; i++) apsched_job_record_free(recs[i]);
  return APSCHED_OK;
}

static int pg_lookup(apsched_jobstore *st, const char *id, const apsched_job_record **out) {
  pg_store *ps = as_pg(st);
  if (!id || !out)
    return apsched__pstore_error(APSCHED_EINVAL, "lookup: %s is NULL", !id ? "id" : "out");
  *out = NULL;
  int rc = ready(ps);
  if (rc != APSCHED_OK) return rc;
  /* id may point into the previous lookup's record: freed only below. */
  const char *params[1] = {id};
  PGresult *res = run(ps, Q_LOOKUP, 1, params, NULL, NULL, "looking a job up", &rc);
  if (!res) return rc;
  apsched_job_record *rec = NULL;
  rc = PQntuples(res) == 0 ? APSCHED_ENOENT : decode(ps, res, 0, &rec);
  PQclear(res);
  if (rc != APSCHED_OK) return rc;
  apsched_job_record_free(ps->found);
  ps->found = rec;
  *out = rec;
  return APSCHED_OK;
}

/* Whether a statement changed no row (PQcmdTuples "0"). */
static bool no_rows(PGresult *res) { return strcmp(PQcmdTuples(res), "0") == 0; }

static int pg_update(apsched_jobstore *st, apsched_job_record *rec) {
  pg_store *ps = as_pg(st);
  if (!rec) return apsched__pstore_error(APSCHED_EINVAL, "update: no record");
  int rc = apsched__pstore_storable(rec, "PostgreSQL");
  if (rc != APSCHED_OK) return rc;
  char *text = apsched__pstore_trigger_text(rec);
  if (!text) return APSCHED_EINVAL;
  bool nested;
  rc = write_begin(ps, &nested);
  if (rc == APSCHED_OK) {
    pg_params p;
    apsched__pg_params(&p, rec, text);
    char what[128];
    snprintf(what, sizeof what, "updating job '%.64s'", rec->id);
    PGresult *res = apsched__pg_exec(&ps->link, ps->sql[Q_UPDATE], COL_COUNT, p.values, p.lengths,
                                     p.formats, true, what, &rc);
    if (res && no_rows(res)) rc = apsched__pstore_error(APSCHED_ENOENT, "no job '%.64s'", rec->id);
    PQclear(res);
    rc = write_end(ps, nested, rc, true);
  }
  free(text);
  if (rc == APSCHED_OK) apsched_job_record_free(rec);
  return rc;
}

/* Deletes one row (id) or all (id NULL) in one write. */
static int delete_rows(pg_store *ps, const char *id) {
  bool nested;
  int rc = write_begin(ps, &nested);
  if (rc != APSCHED_OK) return rc;
  const char *params[1] = {id};
  PGresult *res = apsched__pg_exec(&ps->link, ps->sql[id ? Q_DELETE : Q_DELETE_ALL], id ? 1 : 0,
                                   params, NULL, NULL, true,
                                   id ? "removing a job" : "removing all jobs", &rc);
  if (res && id && no_rows(res)) rc = apsched__pstore_error(APSCHED_ENOENT, "no job '%.64s'", id);
  PQclear(res);
  return write_end(ps, nested, rc, true);
}

static int pg_remove(apsched_jobstore *st, const char *id) {
  pg_store *ps = as_pg(st);
  if (!id) return apsched__pstore_error(APSCHED_EINVAL, "remove: id is NULL");
  int rc = delete_rows(ps, id);
  if (rc == APSCHED_OK) apsched__pstore_removed(&ps->b, id);
  return rc;
}

static int pg_remove_all(apsched_jobstore *st) {
  pg_store *ps = as_pg(st);
  int rc = delete_rows(ps, NULL);
  if (rc == APSCHED_OK) apsched__pstore_removed(&ps->b, NULL);
  return rc;
}

/* Whether the row with this id still does not decode (rows once found
 * broken may have been fixed by hand). */
static int still_broken(pg_store *ps, const char *id, bool *broken) {
  const apsched_job_record *rec;
  int rc = pg_lookup(&ps->base, id, &rec);
  *broken = rc == APSCHED_ENOENT || (rc == APSCHED_OK && (rec->flags & APSCHED_JOB_BROKEN));
  return rc == APSCHED_ENOENT ? APSCHED_OK : rc;
}

/* How many rows to ask for so that max of them are neither held by the
 * batch nor known to be broken (those are skipped). */
static void row_limit(const pg_store *ps, size_t max, char *buf, size_t len) {
  snprintf(buf, len, "%zu", max + ps->b.held + ps->b.broken.n);
}

static int pg_next_run_time(apsched_jobstore *st, apsched_time_t *out) {
  pg_store *ps = as_pg(st);
  *out = APSCHED_TIME_NONE;
  int rc = ready(ps);
  if (rc != APSCHED_OK) return rc;
  char limit[32];
  row_limit(ps, 1, limit, sizeof limit);
  const char *params[1] = {limit};
  PGresult *res = run(ps, Q_NEXT, 1, params, NULL, NULL, "reading the next run time", &rc);
  if (!res) return rc;
  for (int row = 0; row < PQntuples(res); row++) {
    const char *id = PQgetvalue(res, row, 0);
    if (apsched__pstore_is_held(&ps->b, id)) continue;
    if (apsched__pstore_known_broken(&ps->b, id)) {
      bool broken;
      if ((rc = still_broken(ps, id, &broken)) != APSCHED_OK) break;
      if (broken) continue;
    }
    *out = apsched__pg_int8(res, row, 1);
    break;
  }
  PQclear(res);
  if (rc != APSCHED_OK) *out = APSCHED_TIME_NONE;
  return rc;
}

static void releases_clear(pg_store *ps) {
  for (size_t i = 0; i < ps->nreleases; i++) free(ps->releases[i].job_id);
  ps->nreleases = 0;
}

/* Writes the open batch's releases, all in one statement (a claimed batch
 * of n jobs costs one statement, not n). A failure spoils the batch: its
 * jobs are due again. */
/* A time as an element of an array literal at p (NULL for none); returns
 * the end. */
static char *array_int(char *p, int64_t t) {
  if (t != APSCHED_TIME_NONE) return p + apsched__pstore_i64(p, t);
  memcpy(p, "NULL", 4);
  return p + 4;
}

static int flush_releases(pg_store *ps) {
  size_t n = ps->nreleases;
  if (n == 0) return APSCHED_OK;
  size_t ids_len = 3;
  for (size_t i = 0; i < n; i++) ids_len += 2 * strlen(ps->releases[i].job_id) + 3;
  char *ids = malloc(ids_len), *nexts = malloc(n * 22 + 3), *trigs = malloc(n * 22 + 3),
       *finished = malloc(n * 2 + 3);
  int rc = APSCHED_OK;
  if (ids && nexts && trigs && finished) {
    char *pi = ids, *pn = nexts, *pt = trigs, *pf = finished;
    *pi++ = *pn++ = *pt++ = *pf++ = '{';
    for (size_t i = 0; i < n; i++) {
      const pg_staged_release *r = &ps->releases[i];
      if (i) *pi++ = *pn++ = *pt++ = *pf++ = ',';
      pi = apsched__pg_array_text(pi, r->job_id);
      pn = array_int(pn, r->next_run_time);
      pt = array_int(pt, r->trigger_time);
      *pf++ = r->remove ? 't' : 'f';
    }
    strcpy(pi, "}");
    strcpy(pn, "}");
    strcpy(pt, "}");
    strcpy(pf, "}");
    releases_clear(ps); /* written or undone with the batch, either way gone from here */
    const char *params[4] = {ids, nexts, trigs, finished};
    char what[96];
    snprintf(what, sizeof what, "storing the next run times of %zu claimed jobs", n);
    PQclear(run(ps, Q_RELEASE, 4, params, NULL, NULL, what, &rc));
  } else {
    releases_clear(ps);
    ps->batch_failed = true;
    rc = apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  }
  free(ids);
  free(nexts);
  free(trigs);
  free(finished);
  return rc;
}

/* The ended runs written in the batch: their claims are forgotten once it
 * committed; otherwise the scheduler passes them again. */
static void batch_closes_done(pg_store *ps, bool committed) {
  if (!ps->batch_closed) return;
  apsched__pg_runs_closed_done(ps, ps->batch_closed, ps->nbatch_closed, committed);
  ps->batch_closed = NULL;
  ps->nbatch_closed = 0;
}

/* Ends the batch's transaction without writing anything. */
static void end_batch(pg_store *ps) {
  batch_closes_done(ps, false);
  ps->batch_closes_only = false;
  releases_clear(ps);
  if (apsched__pg_in_transaction(&ps->link))
    apsched__pg_command(&ps->link, "ROLLBACK", "ending the claimed batch");
  ps->batch = ps->batch_failed = ps->batch_notify = false;
  apsched__pg_batch_done(ps, false);
}

/* Begins the claimed batch's transaction unless it is open (*began: this
 * call began it). A scheduler registers before it claims anything, so its
 * runs always have a live owner. */
static int batch_begin(pg_store *ps, bool *began, const char *what) {
  *began = false;
  if (ps->batch) return APSCHED_OK;
  apsched__pstore_drop_claims(&ps->b, 0); /* the previous batch's, committed */
  int rc = apsched__pg_register(ps);
  if (rc == APSCHED_OK) rc = ready(ps);
  ps->batch_began = apsched__pstore_mono_us();
  if (rc == APSCHED_OK) rc = command(ps, "BEGIN", what);
  if (rc != APSCHED_OK) return rc;
  ps->batch = *began = true;
  ps->batch_failed = ps->batch_notify = false;
  return APSCHED_OK;
}

/* Commits the open batch (with its notification); APSCHED_EBACKEND if it
 * was rolled back. Ends the batch either way. */
static int batch_commit(pg_store *ps, const char *what) {
  int rc;
  /* COMMIT of an aborted transaction "succeeds" as a ROLLBACK: check first. */
  if (ps->batch_failed || PQtransactionStatus(ps->link.conn) != PQTRANS_INTRANS) {
    rc = apsched__pstore_error(APSCHED_EBACKEND,
                               "postgresql schema '%s': the claimed batch was rolled back after "
                               "an earlier error; its jobs are due again",
                               ps->link.schema);
  } else {
    rc = flush_staged(ps);
    if (rc == APSCHED_OK && ps->batch_notify) rc = apsched__pg_notify(ps);
    if (rc == APSCHED_OK) rc = apsched__pg_command(&ps->link, "COMMIT", what);
  }
  if (rc == APSCHED_OK) {
    ps->batch = ps->batch_failed = ps->batch_notify = ps->batch_closes_only = false;
    batch_closes_done(ps, true);
    apsched__pg_batch_done(ps, true);
  } else {
    end_batch(ps); /* after a failed COMMIT: its ROLLBACK, if still open */
  }
  return rc;
}

static int pg_claim_orphans(apsched_jobstore *st, apsched_orphan_run *out, size_t max) {
  pg_store *ps = as_pg(st);
  if (max == 0) return 0;
  if (!out) return apsched__pstore_error(APSCHED_EINVAL, "claim_orphans: out is NULL");
  if (max > INT_MAX) max = INT_MAX;
  bool began;
  int rc = batch_begin(ps, &began, "starting to take over runs");
  if (rc != APSCHED_OK) return rc;
  int n = apsched__pg_runs_orphans(ps, out, max);
  if (n < 0) {
    if (began) end_batch(ps);
    return n;
  }
  if (n > 0) ps->batch_closes_only = false;
  if (began && n == 0) {
    /* Only lost runs (deleted, to report) or nothing: no commit follows. */
    if (ps->reports) {
      rc = batch_commit(ps, "committing the lost runs of dead schedulers");
      if (rc != APSCHED_OK) return rc;
    } else {
      end_batch(ps);
    }
  }
  return n;
}

static int pg_runs_open(apsched_jobstore *st, const apsched_job_record *rec,
                        const apsched_time_t *times, size_t n, bool *track) {
  pg_store *ps = as_pg(st);
  *track = false;
  if (!rec || (n > 0 && !times))
    return apsched__pstore_error(APSCHED_EINVAL, "runs_open: %s is NULL", !rec ? "rec" : "times");
  if (!ps->batch || ps->batch_failed || !apsched__pg_in_transaction(&ps->link))
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "postgresql schema '%s': runs_open outside a claimed batch (or "
                                 "the batch was rolled back after an earlier error)",
                                 ps->link.schema);
  return apsched__pg_runs_open(ps, rec, times, n, track);
}

static int pg_runs_closed(apsched_jobstore *st, const apsched_run_result *results, size_t n) {
  pg_store *ps = as_pg(st);
  if (n == 0) return APSCHED_OK;
  if (!results) return apsched__pstore_error(APSCHED_EINVAL, "runs_closed: results is NULL");
  bool nested;
  int rc = write_begin(ps, &nested);
  if (rc != APSCHED_OK) return rc;
  rc = apsched__pg_runs_closed(ps, results, n);
  rc = write_end(ps, nested, rc, false);
  apsched__pg_runs_closed_done(ps, results, n, rc == APSCHED_OK);
  return rc;
}

/* runs_closed as the first call of a claimed batch: the closes share the
 * batch's commit with the claims (one commit per pass instead of two). */
static int pg_runs_closed_in_batch(apsched_jobstore *st, const apsched_run_result *results,
                                   size_t n) {
  pg_store *ps = as_pg(st);
  if (n == 0) return APSCHED_OK;
  if (!results) return apsched__pstore_error(APSCHED_EINVAL, "runs_closed_in_batch: results is NULL");
  if (ps->batch)
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "postgresql schema '%s': runs_closed_in_batch inside a batch "
                                 "(it begins one)",
                                 ps->link.schema);
  bool began;
  int rc = batch_begin(ps, &began, "starting to record ended runs");
  if (rc != APSCHED_OK) return rc;
  rc = apsched__pg_runs_closed(ps, results, n);
  if (rc != APSCHED_OK) {
    apsched__pg_runs_closed_done(ps, results, n, false);
    end_batch(ps);
    return rc;
  }
  ps->batch_closed = results;
  ps->nbatch_closed = n;
  ps->batch_closes_only = true;
  return APSCHED_OK;
}

static int pg_run_starting(apsched_jobstore *st, const char *job_id, apsched_time_t scheduled_time,
                           unsigned attempt) {
  if (!job_id) return apsched__pstore_error(APSCHED_EINVAL, "run_starting: job_id is NULL");
  return apsched__pstore_run_starting(&as_pg(st)->starts, job_id, scheduled_time, attempt);
}

static int pg_runs_wait(apsched_jobstore *st, const apsched_job_record *rec,
                        const apsched_time_t *times, size_t n, apsched_runs_waiting *out) {
  pg_store *ps = as_pg(st);
  int rc = apsched__pstore_check_wait_args("runs_wait", rec, times, n, out);
  if (rc != APSCHED_OK) return rc;
  if (!ps->batch || ps->batch_failed || !apsched__pg_in_transaction(&ps->link))
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "postgresql schema '%s': runs_wait outside a claimed batch (or "
                                 "the batch was rolled back after an earlier error)",
                                 ps->link.schema);
  return apsched__pg_runs_wait(ps, rec, times, n, out);
}

static int pg_runs_add(apsched_jobstore *st, const apsched_job_record *rec,
                       const apsched_time_t *times, size_t n, bool *track,
                       apsched_runs_waiting *out) {
  pg_store *ps = as_pg(st);
  int rc = apsched__pstore_check_wait_args("runs_add", rec, times, n, out);
  if (rc == APSCHED_OK && !track) rc = apsched__pstore_error(APSCHED_EINVAL, "runs_add: track is NULL");
  if (rc != APSCHED_OK) return rc;
  /* Registered first, as a claim is: its runs always have a live owner. */
  rc = apsched__pg_register(ps);
  bool nested = false;
  if (rc == APSCHED_OK) rc = write_begin(ps, &nested);
  if (rc != APSCHED_OK) return rc;
  rc = apsched__pg_runs_add(ps, rec, times, n, track, out);
  bool waits = rc == APSCHED_OK && out->waiting > 0;
  /* EBUSY wrote nothing: commit all the same (the lock goes). A run that
   * waits wakes every scheduler: its slot may free before this commits. */
  int end = write_end(ps, nested, rc == APSCHED_EBUSY ? APSCHED_OK : rc, waits);
  if ((rc == APSCHED_OK || rc == APSCHED_EBUSY) && end != APSCHED_OK) rc = end;
  if (!nested) apsched__pg_batch_done(ps, rc == APSCHED_OK);
  if (rc != APSCHED_OK) *track = false;
  return rc;
}

static int pg_claim_waiting(apsched_jobstore *st, apsched_waited_run *out, size_t max) {
  pg_store *ps = as_pg(st);
  if (max == 0) return 0;
  if (!out) return apsched__pstore_error(APSCHED_EINVAL, "claim_waiting: out is NULL");
  if (max > INT_MAX) max = INT_MAX;
  if (!ps->batch || ps->batch_closes_only) {
    /* Runs begin to wait, and slots free for them, with a NOTIFY: only
     * then (or at a heartbeat, in case one was lost) is there anything to
     * look for. Then one read, without a transaction of its own. */
    if (!atomic_exchange(&ps->look_for_waiting, false)) return 0;
    bool any = false;
    int rc = ready(ps);
    if (rc == APSCHED_OK) rc = apsched__pg_any_waiting(ps, &any);
    if (rc != APSCHED_OK) atomic_store(&ps->look_for_waiting, true); /* look again next pass */
    if (rc != APSCHED_OK || !any) return rc;
  }
  bool began;
  int rc = batch_begin(ps, &began, "starting to take waiting runs");
  if (rc != APSCHED_OK) {
    atomic_store(&ps->look_for_waiting, true);
    return rc;
  }
  int n = apsched__pg_waiting_take(ps, out, max);
  if (n < 0 || (size_t)n == max) atomic_store(&ps->look_for_waiting, true); /* again next pass */
  if (began && n <= 0) end_batch(ps);
  return n;
}

static int pg_claim_due(apsched_jobstore *st, apsched_time_t now, apsched_job_record **out,
                        size_t max) {
  pg_store *ps = as_pg(st);
  if (max == 0) return 0;
  if (!out) return apsched__pstore_error(APSCHED_EINVAL, "claim_due: out is NULL");
  if (max > INT_MAX) max = INT_MAX;
  bool began;
  int rc = batch_begin(ps, &began, "starting to claim due jobs");
  if (rc != APSCHED_OK) return rc;
  size_t first = ps->b.nclaimed, n = 0;
  char at[32], limit[32];
  snprintf(at, sizeof at, "%lld", (long long)now);
  row_limit(ps, max, limit, sizeof limit);
  const char *params[2] = {at, limit};
  PGresult *res = run(ps, Q_DUE, 2, params, NULL, NULL, "claiming due jobs", &rc);
  for (int row = 0; res && row < PQntuples(res) && n < max; row++) {
    const char *id = PQgetvalue(res, row, COL_ID);
    if (apsched__pstore_is_held(&ps->b, id)) continue;
    apsched_job_record *rec;
    if ((rc = decode(ps, res, row, &rec)) != APSCHED_OK) break;
    if (rec->flags & APSCHED_JOB_BROKEN) {
      apsched_job_record_free(rec); /* kept in the table, never run */
      continue;
    }
    if ((rc = apsched__pstore_hold(&ps->b, rec)) != APSCHED_OK) {
      apsched_job_record_free(rec);
      break;
    }
    out[n++] = rec;
  }
  PQclear(res);
  /* What runs_open will need of them, in one statement for all. */
  if (rc == APSCHED_OK) rc = apsched__pg_runs_prepare(ps, out, n);
  if (rc != APSCHED_OK) {
    /* Nothing of this call stays claimed. */
    apsched__pstore_drop_claims(&ps->b, first);
    if (began) end_batch(ps);
    return rc;
  }
  if (began && n == 0) end_batch(ps); /* nothing was written */
  return (int)n;
}

static int pg_release(apsched_jobstore *st, apsched_job_record *rec, apsched_time_t next_run_time,
                      apsched_time_t trigger_time, bool remove_job) {
  pg_store *ps = as_pg(st);
  char where[128];
  snprintf(where, sizeof where, "postgresql schema '%s'", ps->link.schema);
  int rc = apsched__pstore_unhold(&ps->b, rec, where);
  if (rc != APSCHED_OK) return rc;
  if (ps->batch_failed || !apsched__pg_in_transaction(&ps->link))
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "postgresql schema '%s': the claimed batch was rolled back after "
                                 "an earlier error; job '%.64s' is due again",
                                 ps->link.schema, rec->id);
  /* Earlier than it was: another scheduler may sleep past it. */
  if (!remove_job && next_run_time != APSCHED_TIME_NONE &&
      (rec->next_run_time == APSCHED_TIME_NONE || next_run_time < rec->next_run_time))
    ps->batch_notify = true;
  /* Kept for flush_releases: the batch's releases are one statement. */
  if (ps->nreleases == ps->releases_cap) {
    size_t cap = ps->releases_cap ? 2 * ps->releases_cap : 64;
    pg_staged_release *grown = realloc(ps->releases, cap * sizeof *grown);
    if (!grown) {
      ps->batch_failed = true;
      return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
    }
    ps->releases = grown;
    ps->releases_cap = cap;
  }
  char *id = strdup(rec->id);
  if (!id) {
    ps->batch_failed = true;
    return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  }
  ps->releases[ps->nreleases++] = (pg_staged_release){id, next_run_time, trigger_time, remove_job};
  return APSCHED_OK;
}

static int pg_commit(apsched_jobstore *st) {
  pg_store *ps = as_pg(st);
  if (!ps->batch) return APSCHED_OK;
  int rc = batch_commit(ps, "committing the claimed jobs");
  apsched__pstore_drop_claims(&ps->b, 0);
  return rc;
}

static int pg_foreach(apsched_jobstore *st, int (*fn)(const apsched_job_record *rec, void *ud),
                      void *ud) {
  if (!fn) return apsched__pstore_error(APSCHED_EINVAL, "foreach: fn is NULL");
  return scan_all(as_pg(st), fn, ud, "listing the jobs");
}

static const apsched_jobstore_vtable pg_vtable = {
    .version = APSCHED_JOBSTORE_VTABLE_VERSION,
    .kind = "postgresql",
    .flags = APSCHED_STORE_BLOCKING,
    .open = pg_open,
    .close = pg_close,
    .destroy = pg_destroy,
    .add = pg_add,
    .lookup = pg_lookup,
    .update = pg_update,
    .remove = pg_remove,
    .remove_all = pg_remove_all,
    .next_run_time = pg_next_run_time,
    .claim_due = pg_claim_due,
    .release = pg_release,
    .commit = pg_commit,
    .foreach = pg_foreach,
    .runs_open = pg_runs_open,
    .runs_closed = pg_runs_closed,
    .runs_closed_in_batch = pg_runs_closed_in_batch,
    .claim_orphans = pg_claim_orphans,
    .clock = apsched__pg_clock,
    .run_starting = pg_run_starting,
    .runs_wait = pg_runs_wait,
    .claim_waiting = pg_claim_waiting,
    .runs_add = pg_runs_add,
};

/* ---------------------------------------------------------------- create */

/* A heartbeat every lease / 3: shorter leases would only load the database. */
enum { LEASE_MIN_MS = 100, LEASE_MAX_MS = 24 * 3600 * 1000 };

int apsched__pg_check_options(const apsched_pg_options *o) {
  if (!o) return apsched__pstore_error(APSCHED_EINVAL, "postgresql store: options are NULL");
  if (!o->conninfo)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "postgresql store: conninfo is NULL (\"\" means libpq's defaults)");
  char *why = NULL;
  PQconninfoOption *parsed = PQconninfoParse(o->conninfo, &why);
  if (!parsed) {
    /* libpq's message names the bad part; the string itself may hold a password. */
    char msg[256];
    snprintf(msg, sizeof msg, "%s", why ? why : "out of memory");
    PQfreemem(why);
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) msg[--len] = '\0';
    return apsched__pstore_error(APSCHED_EINVAL, "postgresql store: conninfo: %s", msg);
  }
  PQconninfoFree(parsed);
  if (o->schema) {
    size_t len = strlen(o->schema);
    bool control = false;
    for (const char *p = o->schema; *p; p++) control |= (unsigned char)*p < 0x20 || *p == 0x7f;
    if (len == 0 || len > PG_SCHEMA_MAX || control)
      return apsched__pstore_error(APSCHED_EINVAL,
                                   "postgresql store: schema '%.80s' must be 1 to %d bytes "
                                   "without control characters",
                                   o->schema, PG_SCHEMA_MAX);
    /* The server would refuse it only when creating the schema. */
    if (strncmp(o->schema, "pg_", 3) == 0)
      return apsched__pstore_error(APSCHED_EINVAL,
                                   "postgresql store: schema '%s': names beginning with pg_ are "
                                   "reserved by PostgreSQL",
                                   o->schema);
  }
  if (o->history_retention < 0)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "postgresql store: history_retention %lld us is negative (0: no "
                                 "history; APSCHED_PG_HISTORY_FOREVER: keep all)",
                                 (long long)o->history_retention);
  if (o->lease_ms < 0 || (o->lease_ms > 0 && o->lease_ms < LEASE_MIN_MS) || o->lease_ms > LEASE_MAX_MS)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "postgresql store: lease_ms %d is outside %d..%d (0: 5000 ms)",
                                 o->lease_ms, LEASE_MIN_MS, LEASE_MAX_MS);
  return APSCHED_OK;
}

/* Connects, quotes the schema, fills in the statements and brings the
 * schema to our version. */
static int open_database(pg_store *ps, bool existing_only) {
  int rc = apsched__pg_ready(&ps->link);
  if (rc != APSCHED_OK) return rc;
  ps->link.quoted = PQescapeIdentifier(ps->link.conn, ps->link.schema, strlen(ps->link.schema));
  if (!ps->link.quoted) return apsched__pg_fail(&ps->link, NULL, "quoting the schema name");
  ps->sql = calloc(Q_COUNT, sizeof *ps->sql);
  ps->token_seq = apsched__pstore_expand("@.run_tokens", ps->link.quoted);
  if (!ps->sql || !ps->token_seq)
    return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  for (int q = 0; q < Q_COUNT; q++)
    if (!(ps->sql[q] = apsched__pstore_expand(query_sql[q], ps->link.quoted)))
      return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  if ((rc = apsched__pg_runs_init(ps)) != APSCHED_OK) return rc;
  if ((rc = apsched__pg_waiting_init(ps)) != APSCHED_OK) return rc;
  /* run_starting's connection: the same server, connected on first use. */
  ps->start = (pg_link){.conninfo = ps->link.conninfo, .schema = ps->link.schema,
                        .quoted = ps->link.quoted};
  if ((rc = apsched__pg_schema_ensure(&ps->link, existing_only)) != APSCHED_OK) return rc;
  return apsched__pg_channel(ps);
}

int apsched_pg_store_create(const apsched_pg_options *opts, apsched_jobstore **out, char *errbuf,
                            size_t errlen) {
  int rc = out ? apsched__pg_check_options(opts)
               : apsched__pstore_error(APSCHED_EINVAL, "postgresql store: out is NULL");
  if (out) *out = NULL;
  pg_store *ps = NULL;
  if (rc == APSCHED_OK) {
    ps = calloc(1, sizeof *ps);
    if (ps) {
      ps->base.vtable = &pg_vtable;
      pthread_mutex_init(&ps->mu, NULL);
      pthread_mutex_init(&ps->start_mu, NULL);
      ps->lease_ms = opts->lease_ms ? opts->lease_ms : 5000;
      ps->link.idle_in_transaction_ms = ps->lease_ms;
      atomic_init(&ps->look_for_waiting, true);
      atomic_init(&ps->closed_since_vacuum, 0);
      ps->may_vacuum = -1;
      ps->history_retention = opts->history_retention;
      ps->link.conninfo = strdup(opts->conninfo);
      ps->link.schema = strdup(opts->schema ? opts->schema : "apsched");
      if (opts->scheduler_name) ps->scheduler_name = strdup(opts->scheduler_name);
      snprintf(ps->where, sizeof ps->where, "postgresql schema '%.120s'",
               opts->schema ? opts->schema : "apsched");
      /* A start recorded ahead holds for a quarter lease, 250 ms at most:
       * far inside the 2 x lease others wait, and a short loss window. */
      int64_t window = (int64_t)ps->lease_ms * 1000 / 4;
      ps->starts = (store_starts){.mu = &ps->mu, .write_mu = &ps->start_mu, .claims = &ps->claims,
                                  .window = window < 250000 ? window : 250000, .wake_fd = -1,
                                  .where = ps->where, .write = apsched__pg_group_write, .store = ps};
    }
    if (!ps || !ps->link.conninfo || !ps->link.schema ||
        (opts->scheduler_name && !ps->scheduler_name))
      rc = apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  }
  if (rc == APSCHED_OK) rc = open_database(ps, opts->existing_only);
  if (rc != APSCHED_OK) {
    if (ps) pg_destroy(&ps->base);
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s", apsched__pstore_last_error());
    return rc;
  }
  *out = &ps->base;
  return APSCHED_OK;
}

PGconn *apsched__pg_store_conn(apsched_jobstore *st) { return as_pg(st)->link.conn; }
const char *apsched__pg_store_schema(apsched_jobstore *st) { return as_pg(st)->link.schema; }
const char *apsched__pg_store_id(apsched_jobstore *st) { return as_pg(st)->id; }
