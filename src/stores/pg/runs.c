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
 * distinct tokens are its instances in progress (started or about to).
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

typedef enum runs_query {
  R_OPEN,
  R_CLOSE,
  R_HISTORY_ADD,
  R_HISTORY_PRUNE,
  R_ORPHANS,
  R_START,
  R_COUNT
} runs_query;

/* "@" is the quoted schema. $11 / $4: the token sequence (a regclass text,
 * never spliced into the SQL). */
static const char *const runs_sql[R_COUNT] = {
    /* One statement: the instances in progress are counted, the claim's
     * token drawn and its rows written, or none when the job is busy. */
    [R_OPEN] =
        "WITH tok AS (SELECT nextval($11::regclass) AS v),"
        " held AS (SELECT count(DISTINCT token) AS instances,"
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
     * (from 1) of the rows it deleted. A run it did not delete was lost. */
    [R_CLOSE] = "DELETE FROM @.runs r USING unnest($1::text[], $2::bigint[], $3::bigint[])"
                " WITH ORDINALITY AS c(job_id, scheduled_time, token, i)"
                " WHERE r.job_id = c.job_id AND r.scheduled_time = c.scheduled_time"
                " AND r.owner = $4 AND r.token = c.token RETURNING c.i",
    [R_HISTORY_ADD] = "INSERT INTO @.run_history (job_id, scheduled_time, attempt, started_at, "
                      "finished_at, outcome, retval, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    [R_HISTORY_PRUNE] = "DELETE FROM @.run_history WHERE finished_at < $1",
    /* $1 this scheduler, $2 limit, $3 token sequence, $4 schema, $5
     * whether ended runs go into the history (lost ones end here). */
    [R_ORPHANS] =
        "WITH live AS (" PG_LIVE_SCHEDULERS("$4") "),"
        " cand AS (SELECT r.job_id, r.scheduled_time, r.owner FROM @.runs r"
        "   WHERE r.owner <> $1 AND NOT EXISTS (SELECT 1 FROM live WHERE live.id = r.owner)"
        "   ORDER BY r.scheduled_time, r.job_id LIMIT $2 FOR UPDATE OF r SKIP LOCKED),"
        " lost AS (DELETE FROM @.runs r USING cand c"
        "   WHERE r.job_id = c.job_id AND r.scheduled_time = c.scheduled_time"
        "   AND r.delivery = 'at_most_once' AND r.started_at IS NOT NULL"
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
    [R_START] = "UPDATE @.runs SET started_at = now() WHERE job_id = $1 AND scheduled_time = $2 "
                "AND owner = $3 AND token = $4 AND started_at IS NULL",
};

int apsched__pg_runs_init(pg_store *ps) {
  ps->runs_sql = calloc(R_COUNT, sizeof *ps->runs_sql);
  if (!ps->runs_sql) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  for (int q = 0; q < R_COUNT; q++)
    if (!(ps->runs_sql[q] = apsched__pstore_expand(runs_sql[q], ps->link.quoted)))
      return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  return APSCHED_OK;
}

/* Notes a claim of the open batch. */
static int pending_add(pg_store *ps, const char *job_id, int64_t t, unsigned attempt, int64_t token) {
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

void apsched__pg_batch_done(pg_store *ps, bool committed) {
  pthread_mutex_lock(&ps->mu);
  while (ps->pending) {
    store_claim *c = ps->pending;
    ps->pending = c->next;
    c->next = NULL;
    if (committed) apsched__pstore_claims_put(&ps->claims, c);
    else free(c);
  }
  pthread_mutex_unlock(&ps->mu);
  reports_flush(ps, committed);
}

void apsched__pg_runs_free(pg_store *ps) {
  apsched__pg_batch_done(ps, false);
  apsched__pstore_claims_free(&ps->claims);
  if (ps->runs_sql)
    for (int q = 0; q < R_COUNT; q++) free(ps->runs_sql[q]);
  free(ps->runs_sql);
  ps->runs_sql = NULL;
}

/* ------------------------------------------------------------- runs_open */

static const char *delivery_text(const apsched_job_record *rec) {
  return rec->flags & APSCHED_JOB_AT_LEAST_ONCE ? "at_least_once" : "at_most_once";
}

/* "{t1,t2,...}": a bigint[] parameter. malloc'd. */
static char *times_array(const apsched_time_t *times, size_t n) {
  char *buf = malloc(n * 22 + 3), *p = buf;
  if (!buf) return NULL;
  *p++ = '{';
  for (size_t i = 0; i < n; i++) p += sprintf(p, "%s%" PRId64, i ? "," : "", times[i]);
  *p++ = '}';
  *p = '\0';
  return buf;
}

int apsched__pg_runs_open(pg_store *ps, const apsched_job_record *rec, const apsched_time_t *times,
                          size_t n, bool *track) {
  *track = false;
  if (n == 0) return APSCHED_OK;
  char *array = times_array(times, n);
  if (!array) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  size_t arglen = 0;
  const void *arg = apsched_job_args_bytes(rec->args, &arglen);
  char max_instances[16], max_runtime[24];
  /* allow_all: no limit (the column is an integer; 65535 is max_instances' own). */
  unsigned max = rec->overlap == APSCHED_OVERLAP_ALLOW_ALL ? INT32_MAX
                 : rec->max_instances                       ? rec->max_instances
                                                            : 1;
  snprintf(max_instances, sizeof max_instances, "%u", max);
  snprintf(max_runtime, sizeof max_runtime, "%" PRIu32, rec->max_runtime_ms);
  const char *values[11] = {rec->id, ps->id, array, rec->name, rec->func->name, rec->executor,
                            arglen ? arg : NULL, max_instances, max_runtime, delivery_text(rec),
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
    return apsched__pstore_error(APSCHED_EBUSY,
                                 "postgresql schema '%s': job '%.64s': %" PRId64 " of its at most "
                                 "%u instances are in progress across schedulers",
                                 ps->link.schema, rec->id, instances, max);
  }
  for (size_t i = 0; i < n; i++)
    if ((rc = pending_add(ps, rec->id, times[i], 1, token)) != APSCHED_OK) {
      /* Short of memory: the rows go with the batch (they could not be closed). */
      ps->batch_failed = true;
      return rc;
    }
  *track = true;
  return APSCHED_OK;
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

/* Deletes the run records of results[i] that hold a token (one statement),
 * marking each CLOSED, or LOST when its row is gone or no longer ours. */
static int close_records(pg_store *ps, const apsched_run_result *results, const int64_t *tokens,
                         size_t n, close_result *found) {
  size_t ids_len = 3, k = 0;
  for (size_t i = 0; i < n; i++)
    if (tokens[i] != 0) ids_len += 2 * strlen(results[i].job_id) + 3, k++;
  if (k == 0) return APSCHED_OK;
  char *ids = malloc(ids_len), *times = malloc(k * 22 + 3), *toks = malloc(k * 22 + 3);
  if (!ids || !times || !toks) {
    free(ids);
    free(times);
    free(toks);
    return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  }
  /* The statement's ordinality i (from 1) names the k-th run with a token. */
  size_t *index = malloc(k * sizeof *index);
  char *pi = ids, *pt = times, *pk = toks;
  *pi++ = *pt++ = *pk++ = '{';
  for (size_t i = 0, j = 0; index && i < n; i++) {
    if (tokens[i] == 0) continue;
    const char *sep = j ? "," : "";
    if (j) *pi++ = ',';
    pi = apsched__pg_array_text(pi, results[i].job_id);
    pt += sprintf(pt, "%s%" PRId64, sep, results[i].scheduled_time);
    pk += sprintf(pk, "%s%" PRId64, sep, tokens[i]);
    found[i] = LOST;
    index[j++] = i;
  }
  strcpy(pi, "}");
  strcpy(pt, "}");
  strcpy(pk, "}");
  int rc = APSCHED_OK;
  if (!index) {
    rc = apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  } else {
    const char *values[4] = {ids, times, toks, ps->id};
    PGresult *res = apsched__pg_exec(&ps->link, ps->runs_sql[R_CLOSE], 4, values, NULL, NULL,
                                     false, "closing run records", &rc);
    for (int row = 0; res && row < PQntuples(res); row++) {
      long long i = atoll(PQgetvalue(res, row, 0));
      if (i >= 1 && (size_t)i <= k) found[index[i - 1]] = CLOSED;
    }
    PQclear(res);
  }
  free(index);
  free(ids);
  free(times);
  free(toks);
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

/* A record to run a taken-over run with, from row of res (R_ORPHANS'
 * columns). Damaged values make a run that is skipped (an unknown
 * function) rather than an error. NULL when memory is short. */
static apsched_job_record *orphan_record(pg_store *ps, const PGresult *res, int row) {
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

int apsched__pg_runs_orphans(pg_store *ps, apsched_orphan_run *out, size_t max) {
  char limit[24];
  snprintf(limit, sizeof limit, "%zu", max);
  const char *values[5] = {ps->id, limit, ps->token_seq, ps->link.schema,
                           ps->history_retention > 0 ? "true" : "false"};
  int rc = APSCHED_OK;
  PGresult *res = apsched__pg_exec(&ps->link, ps->runs_sql[R_ORPHANS], 5, values, NULL, NULL, true,
                                   "taking over the runs of dead schedulers", &rc);
  if (!res) {
    ps->batch_failed = true;
    return rc;
  }
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
    apsched_job_record *rec = orphan_record(ps, res, row);
    if (!rec ||
        (rc = pending_add(ps, job_id, t, run_attempt, apsched__pg_int8(res, row, 4))) != APSCHED_OK) {
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

int apsched__pg_run_starting(pg_store *ps, const char *job_id, apsched_time_t t,
                             unsigned attempt) {
  pthread_mutex_lock(&ps->mu);
  int64_t token = apsched__pstore_claims_token(&ps->claims, job_id, t, attempt);
  pthread_mutex_unlock(&ps->mu);
  if (token == 0)
    return apsched__pstore_error(APSCHED_ESTATE,
                                 "postgresql schema '%s': job '%.64s': this scheduler holds no "
                                 "claim of attempt %u of the run scheduled at %" PRId64,
                                 ps->link.schema, job_id, attempt, t);
  /* Its own connection: executor threads call this while the store's
   * connection is busy with the loop's calls. */
  pthread_mutex_lock(&ps->start_mu);
  int rc = apsched__pg_ready(&ps->start);
  if (rc == APSCHED_OK) {
    char when[24], tok[24];
    snprintf(when, sizeof when, "%" PRId64, t);
    snprintf(tok, sizeof tok, "%" PRId64, token);
    const char *values[4] = {job_id, when, ps->id, tok};
    PGresult *res = apsched__pg_exec(&ps->start, ps->runs_sql[R_START], 4, values, NULL, NULL,
                                     false, "recording the start of a run", &rc);
    if (res && strcmp(PQcmdTuples(res), "0") == 0) {
      char at[48];
      apsched_time_format(t, NULL, at, sizeof at);
      rc = apsched__pstore_error(APSCHED_ESTATE,
                                 "postgresql schema '%s': job '%.64s': the claim of this run "
                                 "(scheduled at %s) was lost: another scheduler took it over",
                                 ps->link.schema, job_id, at);
    }
    PQclear(res);
  }
  pthread_mutex_unlock(&ps->start_mu);
  return rc;
}
