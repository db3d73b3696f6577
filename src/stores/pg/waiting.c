/* Runs that wait (contract version 5): under the overlap policies
 * buffer_one, buffer_all, cancel_other and terminate_other, a run due while
 * its job has max_instances runs in progress across the schedulers waits
 * for a free slot; so does a run asked for through the API (run now,
 * backfill). It waits as rows of <schema>.runs with waiting = true: owner
 * empty, the rows of one run sharing a token, the job as it was (as a
 * claimed run's rows hold it). Any scheduler starts it when a slot frees,
 * and it outlives the scheduler that made it wait.
 *
 * Every write of a job's runs holds the job's row lock (the claim's FOR
 * UPDATE, runs_add's, claim_waiting's SKIP LOCKED), so counting its
 * instances and adding or taking its waiting runs never race. A run that
 * begins to wait, and a scheduler that ends a run of a job with waiting
 * runs (runs.c's R_CLOSE), wake every scheduler (NOTIFY at COMMIT); the
 * first to lock the job takes them. Only after a notification (or a
 * heartbeat) does claim_waiting look at all.
 *
 * cancel_other and terminate_other also mark the oldest running run of the
 * job (stop_request); its scheduler reads the mark on its heartbeat
 * connection when notified ("stop") or at its next heartbeat, and stops
 * the run there (apsched_store_stop_run). */
#include "pg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum wait_query {
  W_COUNT,
  W_DROP,
  W_ADD,
  W_STOP,
  W_LOCK_JOB,
  W_ANY,
  W_JOBS,
  W_TAKE,
  W_NQUERIES
} wait_query;

/* "@" is the quoted schema. */
static const char *const wait_sql[W_NQUERIES] = {
    /* Runs of job $1 waiting (the rows of one run share a token). */
    [W_COUNT] = "SELECT count(DISTINCT token) FROM @.runs WHERE job_id = $1 AND waiting",
    /* The waiting runs of job $1 give way to a newer one: gone, and
     * skipped in the run history when $2 ($3 says why). */
    [W_DROP] = "WITH gone AS (DELETE FROM @.runs WHERE job_id = $1::text AND waiting"
               "   RETURNING scheduled_time, attempt),"
               " h AS (INSERT INTO @.run_history (job_id, scheduled_time, attempt, finished_at,"
               "   outcome, error)"
               "   SELECT $1::text, scheduled_time, attempt,"
               "   (extract(epoch FROM now()) * 1000000)::bigint, 'skipped', $3::text"
               "   FROM gone WHERE $2::boolean)"
               " SELECT min(scheduled_time) FROM gone",
    /* A run of job $1 at times $2 waits (its job's columns as R_OPEN's;
     * $10 the token sequence, $11 its misfire grace, $12 on demand, $13
     * its overlap policy): how
     * many rows were written, and how many runs waited before. */
    [W_ADD] = "WITH before AS (SELECT count(DISTINCT token) AS n FROM @.runs"
              "   WHERE job_id = $1::text AND waiting),"
              " tok AS (SELECT nextval($10::regclass) AS v),"
              " ins AS (INSERT INTO @.runs (job_id, scheduled_time, owner, token, attempt, name,"
              "   func, executor, arg, max_instances, max_runtime_ms, delivery, waiting, on_demand,"
              "   misfire_grace_ms, overlap)"
              "   SELECT $1::text, t, '', tok.v, 1, $3::text, $4::text, $5::text, $6::bytea,"
              "   $7::integer, $8::bigint, $9::text, true, $12::boolean, $11::bigint, $13::text"
              "   FROM tok, unnest($2::bigint[]) AS t"
              "   ON CONFLICT (job_id, scheduled_time) DO NOTHING RETURNING 1)"
              " SELECT (SELECT count(*) FROM ins), (SELECT n FROM before)",
    /* The oldest running run of job $1 not asked yet is asked to stop ($3:
     * cancel or terminate); it was read already when it is this
     * scheduler's ($2). Its first time, and whether it is ours. */
    [W_STOP] = "WITH pick AS (SELECT token FROM @.runs WHERE job_id = $1::text AND NOT waiting"
               "   AND stop_request IS NULL ORDER BY scheduled_time LIMIT 1),"
               " asked AS (UPDATE @.runs r SET stop_request = $3::text,"
               "   stop_told = (r.owner = $2::text) FROM pick"
               "   WHERE r.job_id = $1::text AND r.token = pick.token"
               "   RETURNING r.scheduled_time, r.owner)"
               " SELECT min(scheduled_time), coalesce(bool_or(owner = $2::text), false) FROM asked",
    [W_LOCK_JOB] = "SELECT 1 FROM @.jobs WHERE id = $1 FOR UPDATE",
    [W_ANY] = "SELECT EXISTS (SELECT 1 FROM @.runs WHERE waiting)",
    /* Jobs with waiting runs, locked ($1 at most); those another
     * scheduler holds are left to it. */
    [W_JOBS] = "SELECT j.id FROM @.jobs j"
               " WHERE j.id IN (SELECT job_id FROM @.runs WHERE waiting)"
               " ORDER BY j.id LIMIT $1 FOR UPDATE OF j SKIP LOCKED",
    /* For the jobs just locked ($1; read in a snapshot taken after the
     * locks): as many of their waiting runs as each has free slots, oldest
     * first ($4 runs at most), become this scheduler's ($2) under a fresh
     * token each ($3 the sequence). Columns as R_ORPHANS', then the misfire
     * grace, on_demand and the overlap policy. */
    [W_TAKE] =
        "WITH busy AS (SELECT job_id, count(DISTINCT token) AS n FROM @.runs"
        "   WHERE job_id = ANY ($1::text[]) AND NOT waiting GROUP BY job_id),"
        " grp AS (SELECT job_id, token, min(scheduled_time) AS first, min(max_instances) AS lim"
        "   FROM @.runs WHERE job_id = ANY ($1::text[]) AND waiting GROUP BY job_id, token),"
        " ranked AS (SELECT g.job_id, g.token, g.first, g.lim - coalesce(b.n, 0) AS free,"
        "   row_number() OVER (PARTITION BY g.job_id ORDER BY g.first, g.token) AS k"
        "   FROM grp g LEFT JOIN busy b ON b.job_id = g.job_id),"
        " pick AS (SELECT job_id, token FROM ranked WHERE k <= free ORDER BY first, job_id"
        "   LIMIT $4),"
        " fresh AS (SELECT job_id, token, nextval($3::regclass) AS v FROM pick),"
        " taken AS (UPDATE @.runs r SET waiting = false, owner = $2::text, token = f.v,"
        "   claimed_at = now() FROM fresh f"
        "   WHERE r.job_id = f.job_id AND r.token = f.token AND r.waiting"
        "   RETURNING r.job_id, r.scheduled_time, r.attempt, r.token, r.name, r.func, r.executor,"
        "   r.arg, r.max_instances, r.max_runtime_ms, r.delivery, r.misfire_grace_ms, r.on_demand,"
        "   r.overlap)"
        " SELECT job_id, scheduled_time, attempt, ''::text, token, name, func, executor, arg,"
        " max_instances, max_runtime_ms, delivery, misfire_grace_ms, on_demand, overlap FROM taken"
        " ORDER BY token, scheduled_time",
};

/* The stop requests of this scheduler's ($1) runs not read yet, read now. */
static const char stops_sql[] =
    "UPDATE @.runs SET stop_told = true"
    " WHERE owner = $1 AND stop_request IS NOT NULL AND NOT stop_told"
    " RETURNING job_id, scheduled_time, stop_request";

int apsched__pg_waiting_init(pg_store *ps) {
  ps->wait_sql = calloc(W_NQUERIES, sizeof *ps->wait_sql);
  if (!ps->wait_sql) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  for (int q = 0; q < W_NQUERIES; q++)
    if (!(ps->wait_sql[q] = apsched__pstore_expand(wait_sql[q], ps->link.quoted)))
      return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  if (!(ps->stops_sql = apsched__pstore_expand(stops_sql, ps->link.quoted)))
    return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  return APSCHED_OK;
}

void apsched__pg_waiting_free(pg_store *ps) {
  if (ps->wait_sql)
    for (int q = 0; q < W_NQUERIES; q++) free(ps->wait_sql[q]);
  free(ps->wait_sql);
  free(ps->stops_sql);
  ps->wait_sql = NULL;
  ps->stops_sql = NULL;
}

/* The policy's name ("skip" for one whose runs do not wait). */
static const char *overlap_text(const apsched_job_record *rec) {
  const char *text = apsched__pstore_wait_policy(rec);
  return text ? text : "skip";
}

/* Runs statement q on the store's connection (binary rows). */
static PGresult *exec(pg_store *ps, wait_query q, int n, const char *const *values,
                      const int *lengths, const int *formats, const char *what, int *rc) {
  return apsched__pg_exec(&ps->link, ps->wait_sql[q], n, values, lengths, formats, true, what, rc);
}

/* The waiting runs of rec's job give way to the new one (all policies but
 * buffer_all): out->replaced is the first time of the one replaced. */
static int drop_waiting(pg_store *ps, const apsched_job_record *rec, apsched_runs_waiting *out) {
  char why[96];
  snprintf(why, sizeof why, "a newer due run waits in its place (overlap policy %s)",
           overlap_text(rec));
  const char *values[3] = {rec->id, ps->history_retention > 0 ? "true" : "false", why};
  int rc = APSCHED_OK;
  PGresult *res = exec(ps, W_DROP, 3, values, NULL, NULL, "replacing a waiting run", &rc);
  if (!res) return rc;
  if (!PQgetisnull(res, 0, 0)) out->replaced = apsched__pg_int8(res, 0, 0);
  PQclear(res);
  return APSCHED_OK;
}

/* cancel_other, terminate_other: the oldest running run not asked yet is
 * asked to stop; another scheduler's hears it at COMMIT ("stop"). */
static int ask_stop(pg_store *ps, const apsched_job_record *rec, apsched_runs_waiting *out) {
  const char *values[3] = {rec->id, ps->id,
                           rec->overlap == APSCHED_OVERLAP_TERMINATE_OTHER ? "terminate" : "cancel"};
  int rc = APSCHED_OK;
  PGresult *res = exec(ps, W_STOP, 3, values, NULL, NULL, "asking a running run to stop", &rc);
  if (!res) return rc;
  bool asked = !PQgetisnull(res, 0, 0);
  if (asked) {
    out->stop_time = apsched__pg_int8(res, 0, 0);
    out->stop_here = PQgetvalue(res, 0, 1)[0] != 0;
  }
  PQclear(res);
  if (asked && !out->stop_here) {
    const char *notify[1] = {ps->channel};
    PQclear(apsched__pg_exec(&ps->link, "SELECT pg_notify($1, 'stop')", 1, notify, NULL, NULL,
                             false, "telling a scheduler to stop a run", &rc));
  }
  return rc;
}

/* The run (times) waits: rows written, the policy applied. APSCHED_EBUSY
 * (nothing written) at buffer_all's limit, or when a run of the job at
 * one of these times is recorded already. */
static int wait_now(pg_store *ps, const apsched_job_record *rec, const apsched_time_t *times,
                    size_t n, bool on_demand, apsched_runs_waiting *out) {
  *out = (apsched_runs_waiting){.replaced = APSCHED_TIME_NONE, .stop_time = APSCHED_TIME_NONE};
  int rc = APSCHED_OK;
  if (rec->overlap == APSCHED_OVERLAP_BUFFER_ALL) {
    const char *values[1] = {rec->id};
    PGresult *res = exec(ps, W_COUNT, 1, values, NULL, NULL, "counting the waiting runs", &rc);
    if (!res) return rc;
    int64_t waiting = apsched__pg_int8(res, 0, 0);
    PQclear(res);
    if (waiting >= APSCHED_BUFFER_ALL_LIMIT)
      return apsched__pstore_error(APSCHED_EBUSY,
                                   "postgresql schema '%s': job '%.64s': %d runs wait already "
                                   "(overlap policy buffer_all)",
                                   ps->link.schema, rec->id, APSCHED_BUFFER_ALL_LIMIT);
  } else if ((rc = drop_waiting(ps, rec, out)) != APSCHED_OK) {
    return rc;
  }
  char *array = apsched__pg_bigint_array(times, n);
  if (!array) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  size_t arglen = 0;
  const void *arg = apsched_job_args_bytes(rec->args, &arglen);
  char max_instances[16], max_runtime[24], grace[24];
  snprintf(max_instances, sizeof max_instances, "%u", apsched__pg_instances_limit(rec));
  snprintf(max_runtime, sizeof max_runtime, "%" PRIu32, rec->max_runtime_ms);
  snprintf(grace, sizeof grace, "%" PRIu32, rec->misfire_grace_ms);
  bool unlimited = on_demand || rec->misfire_grace_ms == UINT32_MAX;
  const char *values[13] = {rec->id, array, rec->name, rec->func->name, rec->executor,
                            arglen ? arg : NULL, max_instances, max_runtime,
                            apsched__pg_delivery_text(rec), ps->token_seq,
                            unlimited ? NULL : grace, on_demand ? "true" : "false",
                            overlap_text(rec)};
  int lengths[13] = {0, 0, 0, 0, 0, (int)arglen, 0, 0, 0, 0, 0, 0, 0};
  int formats[13] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  char what[128];
  snprintf(what, sizeof what, "keeping a run of job '%.64s' waiting", rec->id);
  PGresult *res = exec(ps, W_ADD, 13, values, lengths, formats, what, &rc);
  free(array);
  if (!res) return rc;
  int64_t written = apsched__pg_int8(res, 0, 0), before = apsched__pg_int8(res, 0, 1);
  PQclear(res);
  if (written == 0)
    return apsched__pstore_error(APSCHED_EBUSY,
                                 "postgresql schema '%s': job '%.64s': a run at one of these "
                                 "times is already recorded",
                                 ps->link.schema, rec->id);
  out->waiting = (unsigned)(before + 1);
  if (rec->overlap == APSCHED_OVERLAP_CANCEL_OTHER || rec->overlap == APSCHED_OVERLAP_TERMINATE_OTHER)
    rc = ask_stop(ps, rec, out);
  return rc;
}

int apsched__pg_runs_wait(pg_store *ps, const apsched_job_record *rec, const apsched_time_t *times,
                          size_t n, apsched_runs_waiting *out) {
  if (!apsched__pstore_wait_policy(rec))
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "runs_wait: the runs of job '%.64s' do not wait (its overlap "
                                 "policy is neither buffer_one, buffer_all, cancel_other nor "
                                 "terminate_other)",
                                 rec->id);
  int rc = wait_now(ps, rec, times, n, false, out);
  if (rc == APSCHED_OK) {
    atomic_store(&ps->look_for_waiting, true);
    /* Its slot may have freed before this batch commits: every scheduler
     * looks again then (this one too). */
    ps->batch_notify = true;
  } else if (rc != APSCHED_EBUSY) {
    ps->batch_failed = true;
  }
  return rc;
}

int apsched__pg_runs_add(pg_store *ps, const apsched_job_record *rec, const apsched_time_t *times,
                         size_t n, bool *track, apsched_runs_waiting *out) {
  *out = (apsched_runs_waiting){.replaced = APSCHED_TIME_NONE, .stop_time = APSCHED_TIME_NONE};
  *track = false;
  /* The job's lock: its instances are counted and its runs written
   * without another scheduler claiming or starting one meanwhile. */
  const char *values[1] = {rec->id};
  int rc = APSCHED_OK;
  PGresult *res = exec(ps, W_LOCK_JOB, 1, values, NULL, NULL, "locking the job", &rc);
  if (!res) return rc;
  bool found = PQntuples(res) == 1;
  PQclear(res);
  if (!found) return apsched__pstore_error(APSCHED_ENOENT, "no job '%.64s'", rec->id);
  rc = apsched__pg_runs_open(ps, rec, times, n, track);
  if (rc != APSCHED_EBUSY || !apsched__pstore_wait_policy(rec)) return rc;
  rc = wait_now(ps, rec, times, n, true, out);
  if (rc == APSCHED_OK) atomic_store(&ps->look_for_waiting, true);
  return rc;
}

int apsched__pg_any_waiting(pg_store *ps, bool *any) {
  int rc = APSCHED_OK;
  PGresult *res = exec(ps, W_ANY, 0, NULL, NULL, NULL, "looking for waiting runs", &rc);
  if (!res) return rc;
  *any = PQgetvalue(res, 0, 0)[0] != 0;
  PQclear(res);
  return APSCHED_OK;
}

/* Groups the rows of W_TAKE (ordered by token) into runs in out. */
static int take_rows(pg_store *ps, const PGresult *res, apsched_waited_run *out, size_t max,
                     size_t *nout) {
  size_t n = 0;
  int64_t token = 0;
  for (int row = 0; row < PQntuples(res); row++) {
    int64_t t = apsched__pg_int8(res, row, 1), tok = apsched__pg_int8(res, row, 4);
    if (n == 0 || tok != token) {
      if (n == max) break; /* never: W_TAKE returns max runs at most */
      apsched_job_record *rec = apsched__pg_run_record(ps, res, row);
      int rows = 1;
      while (row + rows < PQntuples(res) && apsched__pg_int8(res, row + rows, 4) == tok) rows++;
      apsched_time_t *times = malloc((size_t)rows * sizeof *times);
      if (!rec || !times) {
        apsched_job_record_free(rec);
        free(times);
        *nout = n;
        return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
      }
      if (!PQgetisnull(res, row, 12)) {
        int64_t grace = apsched__pg_int8(res, row, 12);
        rec->misfire_grace_ms = (uint32_t)(grace >= 0 && grace < UINT32_MAX ? grace : UINT32_MAX);
      }
      rec->overlap = (uint8_t)apsched__pstore_wait_overlap(PQgetvalue(res, row, 14));
      out[n++] = (apsched_waited_run){.rec = rec, .times = times, .n = 0,
                                      .on_demand = PQgetvalue(res, row, 13)[0] != 0};
      token = tok;
    }
    apsched_waited_run *w = &out[n - 1];
    w->times[w->n++] = t;
    int64_t attempt = apsched__pg_int(res, row, 2);
    int rc = apsched__pg_pending_add(ps, w->rec->id, t, attempt >= 1 ? (unsigned)attempt : 1, tok);
    if (rc != APSCHED_OK) {
      *nout = n;
      return rc;
    }
  }
  *nout = n;
  return APSCHED_OK;
}

int apsched__pg_waiting_take(pg_store *ps, apsched_waited_run *out, size_t max) {
  char limit[24];
  snprintf(limit, sizeof limit, "%zu", max);
  const char *values[4] = {limit};
  int rc = APSCHED_OK;
  PGresult *res = exec(ps, W_JOBS, 1, values, NULL, NULL, "locking jobs with waiting runs", &rc);
  if (!res) {
    ps->batch_failed = true;
    return rc;
  }
  int njobs = PQntuples(res);
  const char **ids = malloc((njobs ? (size_t)njobs : 1) * sizeof *ids);
  for (int i = 0; ids && i < njobs; i++) ids[i] = PQgetvalue(res, i, 0);
  char *array = ids ? apsched__pg_text_array(ids, (size_t)njobs) : NULL;
  free(ids);
  PQclear(res);
  if (!array) {
    ps->batch_failed = true;
    return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  }
  if (njobs == 0) {
    free(array);
    return 0;
  }
  values[0] = array;
  values[1] = ps->id;
  values[2] = ps->token_seq;
  values[3] = limit;
  res = exec(ps, W_TAKE, 4, values, NULL, NULL, "starting waiting runs", &rc);
  free(array);
  if (!res) {
    ps->batch_failed = true;
    return rc;
  }
  size_t n = 0;
  rc = take_rows(ps, res, out, max, &n);
  PQclear(res);
  if (rc != APSCHED_OK) {
    ps->batch_failed = true;
    while (n > 0) {
      n--;
      apsched_job_record_free(out[n].rec);
      free(out[n].times);
    }
    return rc;
  }
  return (int)n;
}

int apsched__pg_stops_read(pg_store *ps) {
  const char *values[1] = {ps->id};
  int rc = APSCHED_OK;
  PGresult *res = apsched__pg_exec(&ps->hb, ps->stops_sql, 1, values, NULL, NULL, false,
                                   "reading requests to stop runs", &rc);
  if (!res) return rc;
  pthread_mutex_lock(&ps->mu);
  apsched_scheduler *s = ps->sched;
  pthread_mutex_unlock(&ps->mu);
  /* Not under mu (as the heartbeat thread's wake-up): close() joins this
   * thread, and the scheduler lives until close returns. */
  for (int row = 0; s && ps->b.alias && row < PQntuples(res); row++)
    apsched_store_stop_run(s, ps->b.alias, PQgetvalue(res, row, 0),
                           strtoll(PQgetvalue(res, row, 1), NULL, 10),
                           strcmp(PQgetvalue(res, row, 2), "terminate") == 0);
  PQclear(res);
  return APSCHED_OK;
}
