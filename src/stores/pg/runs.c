/* Run records: every run a scheduler claims is a row of <schema>.runs from
 * the claim (same transaction as the job's new next run time) until it
 * ended, so who runs what is in the database, not in any one process.
 *
 * Each claim takes a token from <schema>.run_tokens. The store keeps the
 * tokens it was handed (claims, by job id and scheduled time) and names
 * owner and token in every later write of the run (start, end): a write
 * that changes no row means the claim was lost (a survivor took the run
 * over while this scheduler was stalled), and is reported, never retried.
 *
 * Runs of a dead scheduler (liveness.c) are taken over inside the claiming
 * transaction, FOR UPDATE SKIP LOCKED so two survivors never take the same
 * row: at-least-once runs as attempt + 1, at-most-once runs that never
 * started as the same attempt; at-most-once runs that had started are lost
 * with their scheduler: deleted, ended in the run history as failed (in
 * the same statement) and reported.
 *
 * max_instances holds across schedulers: the runs rows of a job with
 * distinct tokens are its instances in progress (started or about to);
 * rows that wait for a slot (waiting.c) are not.
 *
 * With a history retention, every ended run also becomes a row of
 * <schema>.run_history, written by the scheduler that ends it in the
 * transaction that deletes its fenced run row (so each run's end is there
 * once); rows older than the retention go as new ones come. */
#include "pg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum runs_query {
  R_OPEN,
  R_CLOSE,
  R_CLOSE_TOKEN,
  R_HISTORY_ADD,
  R_HISTORY_PRUNE,
  R_ORPHANS,
  R_START,
  R_UNSTART,
  R_PREPARE,
  R_INSERT,
  R_COUNT
} runs_query;

/* "@" is the quoted schema. $11 / $4: the token sequence (a regclass text,
 * never spliced into the SQL). */
static const char *const runs_sql[R_COUNT] = {
    /* One statement: the instances in progress are counted, the claim's
     * token drawn and its rows written, or none when the job is busy. */
    [R_OPEN] =
        "WITH tok AS (SELECT nextval($11::regclass) AS v),"
        " held AS (SELECT count(DISTINCT token) FILTER (WHERE NOT waiting) AS instances,"
        "   count(*) FILTER (WHERE scheduled_time = ANY ($3::bigint[])) AS taken"
        "   FROM @.runs WHERE job_id = $1::text),"
        " ins AS (INSERT INTO @.runs (job_id, scheduled_time, owner, token, attempt, name, func,"
        "   executor, arg, max_instances, max_runtime_ms, delivery)"
        "   SELECT $1::text, t, $2::text, tok.v, 1, $4::text, $5::text, $6::text, $7::bytea,"
        "   $8::integer, $9::bigint, $10::text"
        "   FROM tok, held, unnest($3::bigint[]) AS t"
        "   WHERE held.instances < $8::integer AND held.taken = 0 RETURNING 1)"
        " SELECT (SELECT v FROM tok), (SELECT instances FROM held), (SELECT taken FROM held),"
        " (SELECT count(*) FROM ins)",
    /* Every run of one runs_closed call in one statement ($1..$3: arrays
     * of job id, scheduled time and token; $4 this scheduler): the indices
     * (from 1) of the rows it deleted. A run it did not delete was lost.
     * A slot freed for a job with runs waiting (waiting.c) wakes every
     * scheduler ($5 the channel; delivered at COMMIT). */
    [R_CLOSE] = "WITH gone AS (DELETE FROM @.runs r"
                "   USING unnest($1::text[], $2::bigint[], $3::bigint[])"
                "   WITH ORDINALITY AS c(job_id, scheduled_time, token, i)"
                "   WHERE r.job_id = c.job_id AND r.scheduled_time = c.scheduled_time"
                "   AND r.owner = $4 AND r.token = c.token RETURNING c.i, r.job_id),"
                " wake AS (SELECT pg_notify($5, '') FROM (SELECT 1 FROM @.runs w"
                "   WHERE w.waiting AND w.job_id IN (SELECT job_id FROM gone) LIMIT 1) x)"
                /* wake's count is read (a join the planner could drop
                 * would skip its NOTIFY). */
                " SELECT gone.i, (SELECT count(*) FROM wake) FROM gone",
    /* Every run of one claim ($2 its token, $1 this scheduler) when all of
     * them end in one runs_closed call: one range of runs_owner_token
     * instead of a look-up per run, and a statement planned once (R_CLOSE
     * joins an array to runs: planned at every call). The rows it deleted
     * are returned; one it did not was lost. $3 as R_CLOSE's $5. */
    [R_CLOSE_TOKEN] = "WITH gone AS (DELETE FROM @.runs r WHERE r.owner = $1 AND r.token = $2"
                      "   RETURNING r.job_id, r.scheduled_time),"
                      " wake AS (SELECT pg_notify($3, '') FROM (SELECT 1 FROM @.runs w"
                      "   WHERE w.waiting AND w.job_id IN (SELECT job_id FROM gone) LIMIT 1) x)"
                      " SELECT gone.job_id, gone.scheduled_time, (SELECT count(*) FROM wake) FROM gone",
    [R_HISTORY_ADD] = "INSERT INTO @.run_history (job_id, scheduled_time, attempt, started_at, "
                      "finished_at, outcome, retval, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    [R_HISTORY_PRUNE] = "DELETE FROM @.run_history WHERE finished_at < $1",
    /* $1 this scheduler, $2 limit, $3 token sequence, $4 schema, $5
     * whether ended runs go into the history (lost ones end here), $6
     * whether to look at every run. Without $6 the runs are looked at
     * only when a dead scheduler's row names runs (a one-time filter: one
     * look at the few rows of schedulers, not a scan of runs per batch);
     * a run whose owner has no row at all (deleted by hand: a stopping
     * scheduler with runs keeps its row, see liveness.c) waits for a look
     * with $6, which the store makes once a second. */
    [R_ORPHANS] =
        "WITH live AS (" PG_LIVE_SCHEDULERS("$4") "),"
        " cand AS (SELECT r.job_id, r.scheduled_time, r.owner FROM @.runs r"
        "   WHERE r.owner <> $1 AND NOT r.waiting"
        "   AND NOT EXISTS (SELECT 1 FROM live WHERE live.id = r.owner)"
        "   AND ($6::boolean OR EXISTS (SELECT 1 FROM @.schedulers s WHERE s.id <> $1"
        "     AND NOT " PG_SCHEDULER_ALIVE("s", "$4")
        /* a scalar subquery with LIMIT: probed for the dead rows only,
         * never turned into a scan of runs */
        "     AND (SELECT true FROM @.runs o WHERE o.owner = s.id AND NOT o.waiting LIMIT 1)))"
        /* A row another scheduler took over after this statement's
         * snapshot is locked in its new version and checked again against
         * `live` as of the snapshot, which may not know that scheduler yet
         * (it registered meanwhile): the token read in the snapshot no
         * longer matches, so the row is left to its new owner. */
        "   AND r.token = (SELECT t.token FROM @.runs t"
        "     WHERE t.job_id = r.job_id AND t.scheduled_time = r.scheduled_time)"
        "   ORDER BY r.scheduled_time, r.job_id LIMIT $2 FOR UPDATE OF r SKIP LOCKED),"
        " lost AS (DELETE FROM @.runs r USING cand c"
        "   WHERE r.job_id = c.job_id AND r.scheduled_time = c.scheduled_time"
        "   AND r.delivery = 'at_most_once' AND r.started_at IS NOT NULL"
        /* a one-time filter: its plan may scan runs for cand's rows */
        "   AND EXISTS (SELECT 1 FROM cand)"
        "   RETURNING r.job_id, r.scheduled_time, r.attempt, c.owner, r.started_at),"
        " lost_history AS (INSERT INTO @.run_history (job_id, scheduled_time, attempt, started_at,"
        "   finished_at, outcome, error)"
        "   SELECT job_id, scheduled_time, attempt,"
        "   (extract(epoch FROM started_at) * 1000000)::bigint,"
        "   (extract(epoch FROM now()) * 1000000)::bigint, 'failed',"
        "   'lost with scheduler ' || owner || ' (at most once): it started there and did not end'"
        "   FROM lost WHERE $5::boolean),"
        " taken AS (UPDATE @.runs r SET owner = $1, token = nextval($3::regclass),"
        "   attempt = r.attempt + CASE WHEN r.delivery = 'at_least_once' THEN 1 ELSE 0 END,"
        "   claimed_at = now(), started_at = NULL FROM cand c"
        "   WHERE r.job_id = c.job_id AND r.scheduled_time = c.scheduled_time"
        "   AND NOT (r.delivery = 'at_most_once' AND r.started_at IS NOT NULL)"
        "   RETURNING r.job_id, r.scheduled_time, r.attempt, c.owner, r.token, r.name, r.func,"
        "   r.executor, r.arg, r.max_instances, r.max_runtime_ms, r.delivery)"
        " SELECT job_id, scheduled_time, attempt, owner, token, name, func, executor, arg,"
        " max_instances, max_runtime_ms, delivery FROM taken"
        " UNION ALL SELECT job_id, scheduled_time, attempt, owner, NULL, NULL, NULL, NULL, NULL,"
        " NULL, NULL, NULL FROM lost ORDER BY 2, 1",
    /* A start group (run_starting): the runs ($1..$3 as R_CLOSE's) that
     * are still this scheduler's are marked started, and its heartbeat is
     * renewed in the same transaction, so none of them can be taken over
     * for 2 x lease from now whatever its heartbeat thread does. */
    [R_START] = "WITH beat AS (UPDATE @.schedulers SET heartbeat_at = now() WHERE id = $4)"
                " UPDATE @.runs r SET started_at = now()"
                " FROM unnest($1::text[], $2::bigint[], $3::bigint[])"
                " WITH ORDINALITY AS c(job_id, scheduled_time, token, i)"
                " WHERE r.job_id = c.job_id AND r.scheduled_time = c.scheduled_time"
                " AND r.owner = $4 AND r.token = c.token RETURNING c.i",
    /* For the jobs just claimed ($1 their ids, locked by the claim, so no
     * other scheduler adds runs of theirs meanwhile): the claim's token
     * (a row without a job id) and the instances in progress of those that
     * have any, in a snapshot taken after the locks. One token serves the
     * whole claim: every write of a run names its job and time too, and
     * instances are counted per job. */
    [R_PREPARE] = "SELECT NULL, nextval($2::regclass) UNION ALL"
                  /* A join, not job_id = ANY ($1): that one's generic plan
                   * compared every row of runs with every id. */
                  " SELECT c.id, count(DISTINCT r.token) FROM unnest($1::text[]) AS c(id)"
                  " JOIN @.runs r ON r.job_id = c.id AND NOT r.waiting GROUP BY c.id",
    /* The batch's staged runs, one row per (job, time); $1 this scheduler.
     * The job's columns come from its row, which the claim locked and no
     * statement of the batch changed before this one (run() writes the
     * staged runs first), so they are the job as claimed; only the
     * instance limit is the store's (overlap policies change it).
     * A time already recorded is not recorded again (returned rows tell).
     * Their starts are recorded ahead (common/start_groups.c). The
     * heartbeat is not renewed here: that would lock the scheduler's row
     * for the whole batch and hold up its heartbeat thread. */
    [R_INSERT] = "INSERT INTO @.runs (job_id, scheduled_time, owner, token, attempt, name, func,"
                 " executor, arg, max_instances, max_runtime_ms, delivery, started_at)"
                 " SELECT j.id, v.t, $1, v.token, 1, j.name, j.func, j.executor, j.arg,"
                 " v.max_instances, j.max_runtime_ms, j.delivery, now()"
                 " FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::integer[])"
                 " AS v(job_id, t, token, max_instances) JOIN @.jobs j ON j.id = v.job_id"
                 " ON CONFLICT (job_id, scheduled_time) DO NOTHING RETURNING job_id, scheduled_time",
    /* Starts recorded ahead that went unused: not started after all. */
    [R_UNSTART] = "UPDATE @.runs r SET started_at = NULL"
                  " FROM unnest($1::text[], $2::bigint[], $3::bigint[])"
                  " WITH ORDINALITY AS c(job_id, scheduled_time, token, i)"
                  " WHERE r.job_id = c.job_id AND r.scheduled_time = c.scheduled_time"
                  " AND r.owner = $4 AND r.token = c.token RETURNING c.i",
};

int apsched__pg_runs_init(pg_store *ps) {
  ps->runs_sql = calloc(R_COUNT, sizeof *ps->runs_sql);
  if (!ps->runs_sql) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  for (int q = 0; q < R_COUNT; q++)
    if (!(ps->runs_sql[q] = apsched__pstore_expand(runs_sql[q], ps->link.quoted)))
      return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  return APSCHED_OK;
}

int apsched__pg_pending_add(pg_store *ps, const char *job_id, int64_t t, unsigned attempt,
                            int64_t token) {
  store_claim *c = apsched__pstore_claim_new(job_id, t, attempt, token);
  if (!c) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  c->next = ps->pending;
  ps->pending = c;
  return APSCHED_OK;
}

/* Notes a report for when the batch commits (short of memory: dropped,
 * the run is gone all the same). */
static void report_later(pg_store *ps, const char *job_id, const char *why) {
  pg_report *r = calloc(1, sizeof *r);
  if (r && (r->job_id = strdup(job_id)) && (r->why = strdup(why))) {
    r->next = ps->reports;
    ps->reports = r;
    return;
  }
  if (r) free(r->job_id);
  free(r);
}

static void reports_flush(pg_store *ps, bool deliver) {
  /* Reversed: the oldest first. */
  pg_report *rev = NULL;
  while (ps->reports) {
    pg_report *r = ps->reports;
    ps->reports = r->next;
    r->next = rev;
    rev = r;
  }
  while (rev) {
    pg_report *r = rev;
    rev = r->next;
    if (deliver && ps->b.sched && ps->b.alias) apsched_store_report(ps->b.sched, ps->b.alias, r->job_id, r->why);
    free(r->job_id);
    free(r->why);
    free(r);
  }
}

static void opens_clear(pg_store *ps) {
  for (size_t i = 0; i < ps->nopens; i++) free(ps->opens[i].times);
  ps->nopens = 0;
  ps->nopen_info = 0;
}

void apsched__pg_batch_done(pg_store *ps, bool committed) {
  opens_clear(ps);
  bool wake = false;
  pthread_mutex_lock(&ps->mu);
  while (ps->pending) {
    store_claim *c = ps->pending;
    ps->pending = c->next;
    c->next = NULL;
    if (!committed) {
      free(c);
      continue;
    }
    if (c->prestart_until != 0 && apsched__pstore_starts_ahead_locked(&ps->starts, c->prestart_until))
      wake = true;
    apsched__pstore_claims_put(&ps->claims, c);
  }
  pthread_mutex_unlock(&ps->mu);
  if (wake) apsched__pstore_starts_wake(&ps->starts);
  reports_flush(ps, committed);
}

void apsched__pg_runs_free(pg_store *ps) {
  apsched__pg_batch_done(ps, false);
  free(ps->opens);
  free(ps->open_info);
  ps->opens = NULL;
  ps->open_info = NULL;
  ps->opens_cap = ps->open_info_cap = 0;
  apsched__pstore_claims_free(&ps->claims);
  if (ps->runs_sql)
    for (int q = 0; q < R_COUNT; q++) free(ps->runs_sql[q]);
  free(ps->runs_sql);
  ps->runs_sql = NULL;
}

/* ------------------------------------------------------- array parameters */

char *apsched__pg_bigint_array(const int64_t *v, size_t n) {
  char *buf = malloc(n * 22 + 3), *p = buf;
  if (!buf) return NULL;
  *p++ = '{';
  for (size_t i = 0; i < n; i++) {
    if (i) *p++ = ',';
    p += apsched__pstore_i64(p, v[i]);
  }
  *p++ = '}';
  *p = '\0';
  return buf;
}

char *apsched__pg_text_array(const char *const *v, size_t n) {
  size_t len = 3;
  for (size_t i = 0; i < n; i++) len += (v[i] ? 2 * strlen(v[i]) + 3 : 4) + 1;
  char *buf = malloc(len), *p = buf;
  if (!buf) return NULL;
  *p++ = '{';
  for (size_t i = 0; i < n; i++) {
    if (i) *p++ = ',';
    if (v[i]) {
      p = apsched__pg_array_text(p, v[i]);
    } else {
      memcpy(p, "NULL", 4);
      p += 4;
    }
  }
  strcpy(p, "}");
  return buf;
}

/* A run named in a statement's arrays. */
typedef struct run_key {
  const char *job_id;
  int64_t t, token;
} run_key;

/* The array literals ("{...}") of n keys' job ids, times and tokens, for
 * unnest($1::text[], $2::bigint[], $3::bigint[]). malloc'd; APSCHED_ENOMEM
 * when memory is short. */
static int run_arrays(const run_key *keys, size_t n, char **ids, char **times, char **tokens) {
  const char **id = malloc((n ? n : 1) * sizeof *id);
  int64_t *t = malloc((n ? n : 1) * sizeof *t), *tok = malloc((n ? n : 1) * sizeof *tok);
  bool room = id && t && tok;
  for (size_t i = 0; room && i < n; i++) {
    id[i] = keys[i].job_id;
    t[i] = keys[i].t;
    tok[i] = keys[i].token;
  }
  *ids = room ? apsched__pg_text_array(id, n) : NULL;
  *times = room ? apsched__pg_bigint_array(t, n) : NULL;
  *tokens = room ? apsched__pg_bigint_array(tok, n) : NULL;
  free(id);
  free(t);
  free(tok);
  if (*ids && *times && *tokens) return APSCHED_OK;
  free(*ids);
  free(*times);
  free(*tokens);
  *ids = *times = *tokens = NULL;
  return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
}

/* Runs a statement over keys ($1..$3 their arrays, $4 this scheduler, $5
 * extra unless NULL) that returns the ordinality (from 1) of each key it
 * matched; calls hit(i, ud) for each (i from 0). */
static int keyed_statement(pg_store *ps, pg_link *l, const char *sql, const run_key *keys, size_t n,
                           const char *extra, const char *what, void (*hit)(size_t i, void *ud),
                           void *ud) {
  char *ids, *times, *toks;
  int rc = run_arrays(keys, n, &ids, &times, &toks);
  if (rc != APSCHED_OK) return rc;
  const char *values[5] = {ids, times, toks, ps->id, extra};
  PGresult *res = apsched__pg_exec_custom(l, sql, extra ? 5 : 4, values, what, &rc);
  for (int row = 0; res && row < PQntuples(res); row++) {
    long long i = atoll(PQgetvalue(res, row, 0));
    if (i >= 1 && (size_t)i <= n && hit) hit((size_t)i - 1, ud);
  }
  PQclear(res);
  free(ids);
  free(times);
  free(toks);
  return rc;
}

/* ------------------------------------------------------------- runs_open */

const char *apsched__pg_delivery_text(const apsched_job_record *rec) {
  return rec->flags & APSCHED_JOB_AT_LEAST_ONCE ? "at_least_once" : "at_most_once";
}

unsigned apsched__pg_instances_limit(const apsched_job_record *rec) {
  return rec->overlap == APSCHED_OVERLAP_ALLOW_ALL ? INT32_MAX
         : rec->max_instances                       ? rec->max_instances
                                                    : 1;
}

static int busy(pg_store *ps, const apsched_job_record *rec, int64_t instances, unsigned max) {
  return apsched__pstore_error(APSCHED_EBUSY,
                               "postgresql schema '%s': job '%.64s': %" PRId64 " of its at most "
                               "%u instances are in progress across schedulers",
                               ps->link.schema, rec->id, instances, max);
}

/* runs_open in a statement of its own (a job runs_open was already called
 * for in this batch, or a record that was not claimed in it). */
static int open_now(pg_store *ps, const apsched_job_record *rec, const apsched_time_t *times,
                    size_t n, bool *track) {
  /* Its count must see the runs staged so far. */
  int flushed = apsched__pg_runs_flush(ps);
  if (flushed != APSCHED_OK) return flushed;
  char *array = apsched__pg_bigint_array(times, n);
  if (!array) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  size_t arglen = 0;
  const void *arg = apsched_job_args_bytes(rec->args, &arglen);
  char max_instances[16], max_runtime[24];
  unsigned max = apsched__pg_instances_limit(rec);
  snprintf(max_instances, sizeof max_instances, "%u", max);
  snprintf(max_runtime, sizeof max_runtime, "%" PRIu32, rec->max_runtime_ms);
  const char *values[11] = {rec->id, ps->id, array, rec->name, rec->func->name, rec->executor,
                            arglen ? arg : NULL, max_instances, max_runtime, apsched__pg_delivery_text(rec),
                            ps->token_seq};
  int lengths[11] = {0, 0, 0, 0, 0, 0, (int)arglen, 0, 0, 0, 0};
  int formats[11] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
  char what[128];
  snprintf(what, sizeof what, "recording the runs of job '%.64s'", rec->id);
  int rc = APSCHED_OK;
  PGresult *res = apsched__pg_exec(&ps->link, ps->runs_sql[R_OPEN], 11, values, lengths, formats,
                                   true, what, &rc);
  free(array);
  if (!res) {
    ps->batch_failed = true;
    return rc;
  }
  int64_t token = apsched__pg_int8(res, 0, 0), instances = apsched__pg_int8(res, 0, 1);
  int64_t taken = apsched__pg_int8(res, 0, 2), inserted = apsched__pg_int8(res, 0, 3);
  PQclear(res);
  if (inserted == 0) {
    /* Nothing was written: the batch goes on, the job is advanced without
     * these runs. */
    if (taken > 0)
      return apsched__pstore_error(APSCHED_EBUSY,
                                   "postgresql schema '%s': job '%.64s': a run at one of these "
                                   "times is already recorded",
                                   ps->link.schema, rec->id);
    return busy(ps, rec, instances, max);
  }
  for (size_t i = 0; i < n; i++)
    if ((rc = apsched__pg_pending_add(ps, rec->id, times[i], 1, token)) != APSCHED_OK) {
      /* Short of memory: the rows go with the batch (they could not be closed). */
      ps->batch_failed = true;
      return rc;
    }
  *track = true;
  return APSCHED_OK;
}

int apsched__pg_runs_prepare(pg_store *ps, apsched_job_record **recs, size_t n) {
  if (n == 0) return APSCHED_OK;
  if (ps->nopen_info + n > ps->open_info_cap) {
    size_t cap = ps->open_info_cap ? ps->open_info_cap : 256;
    while (cap < ps->nopen_info + n) cap *= 2;
    pg_open_info *grown = realloc(ps->open_info, cap * sizeof *grown);
    if (!grown) return APSCHED_OK; /* runs_open makes its own statements */
    ps->open_info = grown;
    ps->open_info_cap = cap;
  }
  const char **id = malloc(n * sizeof *id);
  for (size_t i = 0; id && i < n; i++) id[i] = recs[i]->id;
  char *ids = id ? apsched__pg_text_array(id, n) : NULL;
  free(id);
  if (!ids) return APSCHED_OK; /* short of memory: runs_open makes its own statements */
  int rc = APSCHED_OK;
  const char *values[2] = {ids, ps->token_seq};
  PGresult *res = apsched__pg_exec(&ps->link, ps->runs_sql[R_PREPARE], 2, values, NULL, NULL, true,
                                   "reading the claimed jobs' instances", &rc);
  free(ids);
  if (!res) {
    ps->batch_failed = true;
    return rc;
  }
  int64_t token = 0;
  for (int row = 0; row < PQntuples(res); row++)
    if (PQgetisnull(res, row, 0)) token = apsched__pg_int8(res, row, 1);
  if (token == 0) {
    PQclear(res);
    return APSCHED_OK; /* cannot be: runs_open makes its own statements */
  }
  size_t first = ps->nopen_info;
  for (size_t i = 0; i < n; i++) {
    ps->open_info[ps->nopen_info++] = (pg_open_info){0, token, false};
    recs[i]->store_seq = (uint32_t)ps->nopen_info;
  }
  /* Rows only for the jobs with instances in progress: few, usually none. */
  for (int row = 0; row < PQntuples(res); row++) {
    if (PQgetisnull(res, row, 0)) continue;
    const char *job_id = PQgetvalue(res, row, 0);
    for (size_t i = 0; i < n; i++)
      if (strcmp(recs[i]->id, job_id) == 0) ps->open_info[first + i].instances = apsched__pg_int8(res, row, 1);
  }
  PQclear(res);
  return APSCHED_OK;
}

/* Until when the starts R_INSERT records ahead hold: a window from the
 * batch's BEGIN, and no longer than a lease after the last heartbeat that
 * was sent and answered (others take the runs over 2 x lease after it;
 * the other lease is the margin). Never 0: the rows are marked started
 * either way, and an ended window is what the heartbeat thread takes back. */
static int64_t claim_window_end(pg_store *ps) {
  int64_t until = ps->batch_began + ps->starts.window;
  int64_t fresh = atomic_load(&ps->last_beat) + (int64_t)ps->lease_ms * 1000;
  if (fresh < until) until = fresh;
  return until > 0 ? until : 1;
}

int apsched__pg_runs_open(pg_store *ps, const apsched_job_record *rec, const apsched_time_t *times,
                          size_t n, bool *track) {
  *track = false;
  if (n == 0) return APSCHED_OK;
  pg_open_info *info = rec->store_seq >= 1 && rec->store_seq <= ps->nopen_info
                           ? &ps->open_info[rec->store_seq - 1]
                           : NULL;
  if (!info || info->used) return open_now(ps, rec, times, n, track);
  /* The job's rows are locked by this batch's claim: the count read then
   * holds (runs of other schedulers can only end meanwhile). */
  unsigned max = apsched__pg_instances_limit(rec);
  if (info->instances >= (int64_t)max) return busy(ps, rec, info->instances, max);
  if (ps->nopens == ps->opens_cap) {
    size_t cap = ps->opens_cap ? 2 * ps->opens_cap : 64;
    pg_staged_open *grown = realloc(ps->opens, cap * sizeof *grown);
    if (!grown) return open_now(ps, rec, times, n, track);
    ps->opens = grown;
    ps->opens_cap = cap;
  }
  apsched_time_t *copy = malloc(n * sizeof *copy);
  if (!copy) return open_now(ps, rec, times, n, track);
  memcpy(copy, times, n * sizeof *copy);
  for (size_t i = 0; i < n; i++) {
    int rc = apsched__pg_pending_add(ps, rec->id, times[i], 1, info->token);
    if (rc != APSCHED_OK) {
      free(copy);
      ps->batch_failed = true; /* claims noted so far would outlive their rows */
      return rc;
    }
    ps->pending->prestart_until = claim_window_end(ps);
  }
  ps->opens[ps->nopens++] = (pg_staged_open){rec, copy, n, info->token, max};
  info->used = true;
  info->instances++;
  *track = true;
  return APSCHED_OK;
}

/* A run staged but not written (its time was recorded already): its claim
 * goes, so it is never started here. mu held. */
static void pending_forget(pg_store *ps, const char *job_id, int64_t t, int64_t token) {
  for (store_claim **p = &ps->pending; *p; p = &(*p)->next)
    if ((*p)->scheduled_time == t && (*p)->token == token && strcmp((*p)->job_id, job_id) == 0) {
      store_claim *c = *p;
      *p = c->next;
      free(c);
      return;
    }
}

int apsched__pg_runs_flush(pg_store *ps) {
  if (ps->nopens == 0) return APSCHED_OK;
  size_t total = 0;
  for (size_t i = 0; i < ps->nopens; i++) total += ps->opens[i].n;
  /* Four columns: job id, time, token, instance limit. */
  const char **ids = calloc(total, sizeof *ids);
  int64_t *times = calloc(total, sizeof *times), *tokens = calloc(total, sizeof *tokens);
  int64_t *limits = calloc(total, sizeof *limits);
  char *arrays[4] = {0};
  int rc = ids && times && tokens && limits
               ? APSCHED_OK
               : apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  for (size_t i = 0, r = 0; rc == APSCHED_OK && i < ps->nopens; i++) {
    const pg_staged_open *o = &ps->opens[i];
    for (size_t k = 0; k < o->n; k++, r++) {
      ids[r] = o->rec->id;
      times[r] = o->times[k];
      tokens[r] = o->token;
      limits[r] = o->max_instances;
    }
  }
  if (rc == APSCHED_OK) {
    arrays[0] = apsched__pg_text_array(ids, total);
    arrays[1] = apsched__pg_bigint_array(times, total);
    arrays[2] = apsched__pg_bigint_array(tokens, total);
    arrays[3] = apsched__pg_bigint_array(limits, total);
    for (int c = 0; c < 4; c++)
      if (!arrays[c]) rc = apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  }
  PGresult *res = NULL;
  if (rc == APSCHED_OK) {
    const char *values[5] = {ps->id, arrays[0], arrays[1], arrays[2], arrays[3]};
    res = apsched__pg_exec(&ps->link, ps->runs_sql[R_INSERT], 5, values, NULL, NULL, true,
                           "recording the claimed runs", &rc);
  }
  if (res && (size_t)PQntuples(res) != total) {
    /* Some times were recorded already (a run of theirs is in progress):
     * those runs are not this batch's. */
    pthread_mutex_lock(&ps->mu);
    for (size_t i = 0; i < ps->nopens; i++) {
      const pg_staged_open *o = &ps->opens[i];
      for (size_t k = 0; k < o->n; k++) {
        bool written = false;
        for (int row = 0; !written && row < PQntuples(res); row++)
          written = apsched__pg_int8(res, row, 1) == o->times[k] && strcmp(PQgetvalue(res, row, 0), o->rec->id) == 0;
        if (!written) pending_forget(ps, o->rec->id, o->times[k], o->token);
      }
    }
    pthread_mutex_unlock(&ps->mu);
  }
  PQclear(res);
  for (int c = 0; c < 4; c++) free(arrays[c]);
  free(ids);
  free(times);
  free(tokens);
  free(limits);
  if (rc != APSCHED_OK) ps->batch_failed = true;
  for (size_t i = 0; i < ps->nopens; i++) free(ps->opens[i].times);
  ps->nopens = 0;
  return rc;
}

/* ----------------------------------------------------------- runs_closed */

static const char *const outcome_text[] = {
    [APSCHED_RUN_EXECUTED] = "executed",
    [APSCHED_RUN_FAILED] = "failed",
    [APSCHED_RUN_MISSED] = "missed",
    [APSCHED_RUN_SKIPPED] = "skipped",
};

static int add_history(pg_store *ps, const apsched_run_result *r) {
  unsigned outcome = (unsigned)r->outcome <= APSCHED_RUN_SKIPPED ? r->outcome : APSCHED_RUN_FAILED;
  char t[24], attempt[16], started[24], finished[24], retval[16];
  snprintf(t, sizeof t, "%" PRId64, r->scheduled_time);
  snprintf(attempt, sizeof attempt, "%u", r->attempt);
  snprintf(started, sizeof started, "%" PRId64, r->started_at);
  snprintf(finished, sizeof finished, "%" PRId64, r->finished_at);
  snprintf(retval, sizeof retval, "%d", r->retval);
  bool never = r->started_at == APSCHED_TIME_NONE;
  const char *values[8] = {r->job_id, t, attempt, never ? NULL : started, finished,
                           outcome_text[outcome], never ? NULL : retval, r->error};
  int rc = APSCHED_OK;
  PQclear(apsched__pg_exec(&ps->link, ps->runs_sql[R_HISTORY_ADD], 8, values, NULL, NULL, false,
                           "writing the run history", &rc));
  return rc;
}

/* What closing one run found. */
typedef enum { CLOSED, NOT_OURS, LOST } close_result;

typedef struct close_hits {
  const size_t *index; /* key i is results[index[i]] */
  close_result *found;
} close_hits;

static void closed_hit(size_t i, void *ud) {
  close_hits *h = ud;
  h->found[h->index[i]] = CLOSED;
}

typedef struct token_count {
  int64_t token;
  size_t n;
} token_count;

static void count_token(store_claim *c, void *ud) {
  token_count *tc = ud;
  if (c->token == tc->token) tc->n++;
}

/* Closes by its token every claim of which this call ends all the runs
 * (keys[i] with index[i] >= 0), marking them CLOSED and their index -1;
 * the others stay for the statement by key. */
static int close_whole_claims(pg_store *ps, run_key *keys, size_t k, size_t *index,
                              close_result *found, bool *keyed) {
  int rc = APSCHED_OK;
  for (size_t i = 0; i < k && rc == APSCHED_OK; i++) {
    if (!keyed[i]) continue;
    int64_t token = keys[i].token;
    size_t here = 0;
    bool first = true;
    for (size_t j = 0; j < k; j++)
      if (keyed[j] && keys[j].token == token) {
        here++;
        first = first && j >= i;
      }
    if (!first) continue;
    token_count tc = {token, 0};
    pthread_mutex_lock(&ps->mu);
    apsched__pstore_claims_each(&ps->claims, count_token, &tc);
    pthread_mutex_unlock(&ps->mu);
    if (tc.n != here) continue; /* some of its runs go on: closed by key */
    char number[24];
    snprintf(number, sizeof number, "%" PRId64, token);
    const char *values[3] = {ps->id, number, ps->channel};
    PGresult *res = apsched__pg_exec(&ps->link, ps->runs_sql[R_CLOSE_TOKEN], 3, values, NULL, NULL,
                                     true, "closing run records", &rc);
    if (!res) break;
    int rows = PQntuples(res);
    for (size_t j = 0; j < k; j++) {
      if (!keyed[j] || keys[j].token != token) continue;
      keyed[j] = false;
      if ((size_t)rows == here) {
        found[index[j]] = CLOSED;
        continue;
      }
      /* Some were lost (taken over): which ones, row by row. */
      for (int row = 0; row < rows; row++)
        if (apsched__pg_int8(res, row, 1) == keys[j].t && strcmp(PQgetvalue(res, row, 0), keys[j].job_id) == 0)
          found[index[j]] = CLOSED;
    }
    PQclear(res);
  }
  return rc;
}

/* Deletes the run records of results[i] that hold a token (by claim where
 * a claim ends whole, by key otherwise), marking each CLOSED, or LOST when
 * its row is gone or no longer ours. */
static int close_records(pg_store *ps, const apsched_run_result *results, const int64_t *tokens,
                         size_t n, close_result *found) {
  run_key *keys = malloc((n ? n : 1) * sizeof *keys);
  size_t *index = malloc((n ? n : 1) * sizeof *index);
  if (!keys || !index) {
    free(keys);
    free(index);
    return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (tokens[i] == 0) continue;
    keys[k] = (run_key){results[i].job_id, results[i].scheduled_time, tokens[i]};
    index[k++] = i;
    found[i] = LOST;
  }
  bool *keyed = calloc(k ? k : 1, sizeof *keyed);
  if (!keyed) {
    free(keys);
    free(index);
    return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  }
  for (size_t i = 0; i < k; i++) keyed[i] = true;
  int rc = close_whole_claims(ps, keys, k, index, found, keyed);
  /* The rest by key, in one statement. */
  size_t left = 0;
  for (size_t i = 0; i < k; i++)
    if (keyed[i]) {
      keys[left] = keys[i];
      index[left++] = index[i];
    }
  close_hits h = {index, found};
  if (rc == APSCHED_OK && left > 0)
    rc = keyed_statement(ps, &ps->link, ps->runs_sql[R_CLOSE], keys, left, ps->channel,
                         "closing run records", closed_hit, &h);
  free(keyed);
  free(keys);
  free(index);
  return rc;
}

int apsched__pg_runs_closed(pg_store *ps, const apsched_run_result *results, size_t n) {
  close_result *found = calloc(n ? n : 1, sizeof *found);
  int64_t *tokens = calloc(n ? n : 1, sizeof *tokens);
  if (!found || !tokens) {
    free(found);
    free(tokens);
    return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  }
  pthread_mutex_lock(&ps->mu);
  for (size_t i = 0; i < n; i++)
    tokens[i] = apsched__pstore_claims_token(&ps->claims, results[i].job_id,
                                             results[i].scheduled_time, results[i].attempt);
  pthread_mutex_unlock(&ps->mu);
  for (size_t i = 0; i < n; i++) found[i] = NOT_OURS;
  int rc = close_records(ps, results, tokens, n, found);
  apsched_time_t latest = APSCHED_TIME_NONE;
  for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
    const apsched_run_result *r = &results[i];
    /* Fenced like the close: only the run this store still holds goes into
     * the history (a run taken over is ended by its new owner, a run never
     * recorded is claimed and ended again later). */
    if (found[i] == CLOSED && ps->history_retention > 0) rc = add_history(ps, r);
    if (latest == APSCHED_TIME_NONE || r->finished_at > latest) latest = r->finished_at;
  }
  if (rc == APSCHED_OK && ps->history_retention > 0 && ps->history_retention != INT64_MAX && n > 0) {
    /* Older than the retention, counted back from the newest run ended. */
    char before[24];
    snprintf(before, sizeof before, "%" PRId64, latest - ps->history_retention);
    const char *values[1] = {before};
    PQclear(apsched__pg_exec(&ps->link, ps->runs_sql[R_HISTORY_PRUNE], 1, values, NULL, NULL, false,
                             "pruning the run history", &rc));
  }
  if (rc == APSCHED_OK) {
    for (size_t i = 0; i < n; i++) {
      if (found[i] != LOST) continue;
      char when[48], why[256];
      apsched_time_format(results[i].scheduled_time, NULL, when, sizeof when);
      snprintf(why, sizeof why,
               "the claim of the run scheduled at %s was lost (another scheduler took it over "
               "while this one was stalled): its end is not recorded",
               when);
      report_later(ps, results[i].job_id, why);
    }
  }
  free(found);
  /* The tokens are forgotten by the caller once the transaction commits. */
  ps->closing = tokens;
  return rc;
}

void apsched__pg_runs_closed_done(pg_store *ps, const apsched_run_result *results, size_t n,
                                  bool committed) {
  int64_t *tokens = ps->closing;
  ps->closing = NULL;
  if (committed) atomic_fetch_add(&ps->closed_since_vacuum, (long)n);
  if (committed && tokens) {
    pthread_mutex_lock(&ps->mu);
    for (size_t i = 0; i < n; i++)
      if (tokens[i]) apsched__pstore_claims_drop(&ps->claims, results[i].job_id, results[i].scheduled_time, tokens[i]);
    pthread_mutex_unlock(&ps->mu);
  }
  free(tokens);
  reports_flush(ps, committed);
}

/* --------------------------------------------------------- claim_orphans */

apsched_job_record *apsched__pg_run_record(pg_store *ps, const PGresult *res, int row) {
  apsched_job_record *rec = apsched_job_record_new(PQgetvalue(res, row, 0));
  if (!rec) return NULL;
  bool has_name = !PQgetisnull(res, row, 5);
  const char *func = PQgetvalue(res, row, 6), *executor = PQgetvalue(res, row, 7);
  rec->func = apsched_func_by_name(*func ? func : "(no function)");
  rec->executor = apsched__pstore_intern(&ps->b, *executor ? executor : "default");
  if (has_name) rec->name = strdup(PQgetvalue(res, row, 5));
  size_t len = PQgetisnull(res, row, 8) ? 0 : (size_t)PQgetlength(res, row, 8);
  if (len > 0) rec->args = apsched_job_args_new(PQgetvalue(res, row, 8), len);
  int64_t max_instances = apsched__pg_int(res, row, 9), max_runtime = apsched__pg_int(res, row, 10);
  rec->max_instances = (uint16_t)(max_instances >= 1 && max_instances <= UINT16_MAX ? max_instances : 1);
  rec->max_runtime_ms = (uint32_t)(max_runtime >= 0 && max_runtime <= UINT32_MAX ? max_runtime : 0);
  rec->misfire_grace_ms = UINT32_MAX;
  rec->flags = strcmp(PQgetvalue(res, row, 11), "at_least_once") == 0 ? APSCHED_JOB_AT_LEAST_ONCE : 0;
  rec->next_run_time = rec->trigger_time = APSCHED_TIME_NONE;
  if (!rec->func || !rec->executor || (has_name && !rec->name) || (len > 0 && !rec->args)) {
    apsched_job_record_free(rec);
    return NULL;
  }
  return rec;
}

/* How often the takeover looks at every run, not only at those of dead
 * schedulers' rows (R_ORPHANS). */
#define ORPHANS_FULL_LOOK_US 1000000

int apsched__pg_runs_orphans(pg_store *ps, apsched_orphan_run *out, size_t max) {
  char limit[24];
  snprintf(limit, sizeof limit, "%zu", max);
  int64_t now = apsched__pstore_mono_us();
  bool full = ps->orphans_swept == 0 || now - ps->orphans_swept >= ORPHANS_FULL_LOOK_US;
  const char *values[6] = {ps->id, limit, ps->token_seq, ps->link.schema,
                           ps->history_retention > 0 ? "true" : "false", full ? "true" : "false"};
  int rc = APSCHED_OK;
  PGresult *res = apsched__pg_exec(&ps->link, ps->runs_sql[R_ORPHANS], 6, values, NULL, NULL, true,
                                   "taking over the runs of dead schedulers", &rc);
  if (!res) {
    ps->batch_failed = true;
    return rc;
  }
  if (full) ps->orphans_swept = now;
  size_t n = 0;
  for (int row = 0; row < PQntuples(res) && rc == APSCHED_OK; row++) {
    const char *job_id = PQgetvalue(res, row, 0);
    int64_t t = apsched__pg_int8(res, row, 1), attempt = apsched__pg_int(res, row, 2);
    if (PQgetisnull(res, row, 4)) {
      char when[48], why[320];
      apsched_time_format(t, NULL, when, sizeof when);
      snprintf(why, sizeof why,
               "run of job %.64s scheduled at %s was lost with scheduler %.40s (at most once)",
               job_id, when, PQgetvalue(res, row, 3));
      report_later(ps, job_id, why);
      continue;
    }
    unsigned run_attempt = attempt >= 1 && attempt < UINT32_MAX ? (unsigned)attempt : 1;
    apsched_job_record *rec = apsched__pg_run_record(ps, res, row);
    if (!rec ||
        (rc = apsched__pg_pending_add(ps, job_id, t, run_attempt, apsched__pg_int8(res, row, 4))) != APSCHED_OK) {
      apsched_job_record_free(rec);
      rc = apsched__pstore_error(APSCHED_ENOMEM, "postgresql schema '%s': out of memory taking "
                                                 "over a run", ps->link.schema);
      break;
    }
    out[n++] = (apsched_orphan_run){.rec = rec, .scheduled_time = t, .attempt = run_attempt};
  }
  PQclear(res);
  if (rc != APSCHED_OK) {
    ps->batch_failed = true;
    while (n > 0) apsched_job_record_free(out[--n].rec);
    return rc;
  }
  return (int)n;
}

/* ---------------------------------------------------------- run_starting */

/* The store's write of a start group (common/start_groups.c), on the start
 * connection (start_mu, the group's write lock, is held). */
int apsched__pg_group_write(void *store, const store_start_group *g, bool start,
                            void (*hit)(size_t i, void *ud), void *ud) {
  pg_store *ps = store;
  int rc = apsched__pg_ready(&ps->start);
  if (rc != APSCHED_OK) return rc;
  run_key keys[STORE_START_GROUP];
  for (size_t i = 0; i < g->n; i++) keys[i] = (run_key){g->job_id[i], g->t[i], g->token[i]};
  return keyed_statement(ps, &ps->start, ps->runs_sql[start ? R_START : R_UNSTART], keys, g->n, NULL,
                         start ? "recording the start of a run" : "taking back starts recorded ahead",
                         hit, ud);
}
