/* Run records: every run a scheduler claims is a field "T:ID" of its hash
 * {P}:runs:OWNER, with an entry in its job's open runs ({P}:open), from the
 * commit that recorded it (the same script that stored its job's next run
 * time) until it ended, so who runs what is on the server, not in any one
 * process. Each claim has a token; the store keeps the tokens it holds
 * (../common/claims.c) and names owner and token in every later write of
 * the run (start, end): a write that finds another owner or token means the
 * claim was lost (a survivor took the run over while this scheduler was
 * stalled) and is reported, never retried.
 *
 * Runs of a dead scheduler (its liveness key gone) are taken over by
 * claim_orphans' script: at-least-once runs as attempt + 1, at-most-once
 * runs that never started as the same attempt; at-most-once runs that had
 * started are lost with their scheduler: deleted, ended in the run history
 * as failed (with a history retention, in the same script) and reported.
 *
 * A commit whose reply was lost may have been applied: its runs are "in
 * doubt", and so are runs taken over in a batch whose commit failed. The
 * next claim_orphans offers each again if it is still this scheduler's
 * claim and has not started, so none is left open for ever. */
#include "redis_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int oom(void) { return apsched__pstore_error(APSCHED_ENOMEM, "redis store: out of memory"); }

const char *apsched__redis_delivery_text(const apsched_job_record *rec) {
  return rec->flags & APSCHED_JOB_AT_LEAST_ONCE ? "at_least_once" : "at_most_once";
}

/* Reports a problem with a job to the scheduler that opened the store. */
static void report(redis_store *rs, const char *job_id, const char *why) {
  if (rs->b.sched && rs->b.alias) apsched_store_report(rs->b.sched, rs->b.alias, job_id, why);
}

/* Prepends (job_id, t, attempt, token) to *list; false when memory is short. */
static bool note(store_claim **list, const char *job_id, int64_t t, unsigned attempt, int64_t token) {
  store_claim *c = apsched__pstore_claim_new(job_id, t, attempt, token);
  if (!c) return false;
  c->next = *list;
  *list = c;
  return true;
}

void apsched__redis_unstage(redis_store *rs) {
  for (size_t i = 0; i < rs->nstaged; i++) {
    free(rs->staged[i].expected);
    free(rs->staged[i].taken);
    free(rs->staged[i].times);
  }
  rs->nstaged = 0;
  /* Runs taken over in a batch that is given up stay this scheduler's. */
  pthread_mutex_lock(&rs->mu);
  while (rs->pending) {
    store_claim *c = rs->pending;
    rs->pending = c->next;
    c->next = rs->doubt;
    rs->doubt = c;
  }
  pthread_mutex_unlock(&rs->mu);
}

/* ------------------------------------------------------------- runs_open */

unsigned apsched__redis_instance_limit(const apsched_job_record *rec) {
  if (rec->overlap == APSCHED_OVERLAP_ALLOW_ALL) return INT32_MAX;
  return rec->max_instances ? rec->max_instances : 1;
}

redis_staged *apsched__redis_staged_of(redis_store *rs, const apsched_job_record *rec) {
  size_t i = rec->store_seq;
  if (i >= 1 && i <= rs->nstaged && rs->staged[i - 1].rec == rec) return &rs->staged[i - 1];
  /* Moved by a commit's compaction (it left an unreleased entry behind). */
  for (i = 0; i < rs->nstaged; i++)
    if (rs->staged[i].rec == rec) return &rs->staged[i];
  return NULL;
}

int apsched__redis_runs_open(redis_store *rs, const apsched_job_record *rec,
                             const apsched_time_t *times, size_t n, bool *track) {
  redis_staged *s = apsched__redis_staged_of(rs, rec);
  if (!rs->batch || rs->batch_failed || !s || s->released)
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "redis prefix '%s': runs_open outside a claimed batch (or the "
                                 "batch failed after an earlier error)",
                                 rs->prefix);
  if (n == 0) return APSCHED_OK;
  /* The job is claimed: until the commit no other scheduler adds runs of it. */
  unsigned max = apsched__redis_instance_limit(rec);
  if (s->instances >= (long)max)
    return apsched__pstore_error(APSCHED_EBUSY,
                                 "redis prefix '%s': job '%.64s': %ld of its at most %u instances "
                                 "are in progress across schedulers",
                                 rs->prefix, rec->id, s->instances, max);
  for (size_t i = 0; s->taken && i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, ",%" PRId64 ",", times[i]);
    if (strstr(s->taken, key))
      return apsched__pstore_error(APSCHED_EBUSY,
                                   "redis prefix '%s': job '%.64s': a run at one of these times "
                                   "is already recorded",
                                   rs->prefix, rec->id);
  }
  free(s->times);
  if (!(s->times = malloc(n * sizeof *times))) return oom();
  memcpy(s->times, times, n * sizeof *times);
  s->ntimes = n;
  *track = true;
  return APSCHED_OK;
}

/* ---------------------------------------------------------------- commit */

enum { JOB_ARGS = 5, META_ARGS = 1 };

/* The text of each number the commit sends, for as long as the call.
 * opts is the job's run count, then what is seldom there: 'r' (remove
 * the job), 'f' (its hash holds next_run_time or trigger_time), 't' and
 * the trigger time when it is not the next run time (jitter). */
typedef struct commit_texts {
  char token[24], next[24], opts[64];
  char *tail; /* the job's part of its runs' JSON */
  char (*times)[24];
} commit_texts;

int apsched__redis_commit(redis_store *rs) {
  size_t njobs = 0, nargs = 3;
  for (size_t i = 0; i < rs->nstaged; i++) {
    if (!rs->staged[i].released) continue;
    njobs++;
    nargs += JOB_ARGS + (rs->staged[i].ntimes ? META_ARGS + rs->staged[i].ntimes : 0);
  }
  int rc = APSCHED_OK;
  if (njobs > 0) {
    const char **argv = malloc(nargs * sizeof *argv);
    size_t *lens = malloc(nargs * sizeof *lens);
    commit_texts *tx = calloc(njobs, sizeof *tx);
    char count[24], lease[16];
    bool ok = argv && lens && tx;
    size_t k = 0, j = 0;
#define ARG(text, len) (argv[k] = (text), lens[k++] = (len))
#define STR(text) ARG(text, strlen(text))
    if (ok) {
      snprintf(count, sizeof count, "%zu", njobs);
      snprintf(lease, sizeof lease, "%d", rs->lease_ms);
      STR(rs->id);
      STR(count);
      STR(lease);
    }
    for (size_t i = 0; ok && i < rs->nstaged; i++) {
      redis_staged *s = &rs->staged[i];
      if (!s->released) continue;
      commit_texts *t = &tx[j++];
      const apsched_job_record *rec = s->rec;
      if (s->next == APSCHED_TIME_NONE) t->next[0] = '\0';
      else apsched__pstore_i64(t->next, s->next);
      apsched__pstore_i64(t->token, s->token);
      char *o = t->opts + apsched__pstore_i64(t->opts, (int64_t)s->ntimes);
      if (s->remove) *o++ = 'r';
      if (s->time_fields) *o++ = 'f';
      if (s->trigger != s->next) {
        *o++ = 't';
        if (s->trigger != APSCHED_TIME_NONE) o += apsched__pstore_i64(o, s->trigger);
      }
      *o = '\0';
      STR(rec->id);
      STR(t->token);
      STR(s->expected);
      STR(t->next);
      ARG(t->opts, (size_t)(o - t->opts));
      if (s->ntimes == 0) continue;
      size_t tail_len = 0;
      if (!(t->times = malloc(s->ntimes * sizeof *t->times)) ||
          !(t->tail = apsched__redis_run_json_tail(rec, &tail_len))) {
        ok = false;
        break;
      }
      ARG(t->tail, tail_len);
      for (size_t x = 0; x < s->ntimes; x++)
        ARG(t->times[x], apsched__pstore_i64(t->times[x], s->times[x]));
    }
#undef STR
#undef ARG
    /* The script records the runs' starts ahead (and renews this
     * scheduler's liveness): they may start without a write of their own
     * until the window, counted from before the send, ends. */
    int64_t until = apsched__pstore_mono_us() + rs->starts.window;
    bool wake = false;
    if (!ok) {
      rc = oom();
    } else {
      redisReply *r = apsched__redis_script(&rs->link, S_COMMIT, rs->root, (int)k, argv, lens,
                                            "committing the claimed jobs", &rc);
      apsched__redis_reply_free(r);
    }
    /* Applied (rc OK), or perhaps applied (the reply was lost with the
     * connection): either way this scheduler holds the runs' claims, in
     * doubt when unknown. A refusal by the script wrote nothing. */
    bool unknown = rc != APSCHED_OK && ok && !rs->link.c;
    pthread_mutex_lock(&rs->mu);
    for (size_t i = 0; i < rs->nstaged && (rc == APSCHED_OK || unknown); i++) {
      redis_staged *s = &rs->staged[i];
      for (size_t x = 0; s->released && x < s->ntimes; x++) {
        if (unknown) {
          note(&rs->doubt, s->rec->id, s->times[x], 1, s->token);
          continue;
        }
        store_claim *c = apsched__pstore_claim_new(s->rec->id, s->times[x], 1, s->token);
        if (!c) continue; /* (its start is refused: reported, not run twice) */
        c->prestart_until = until;
        apsched__pstore_claims_put(&rs->claims, c);
        if (apsched__pstore_starts_ahead_locked(&rs->starts, until)) wake = true;
      }
    }
    pthread_mutex_unlock(&rs->mu);
    if (wake) apsched__pstore_starts_wake(&rs->starts);
    for (size_t i = 0; tx && i < njobs; i++) {
      free(tx[i].times);
      free(tx[i].tail);
    }
    free(tx);
    free(argv);
    free(lens);
    /* What was sent leaves the batch. */
    size_t kept = 0;
    for (size_t i = 0; i < rs->nstaged; i++) {
      redis_staged *s = &rs->staged[i];
      if (s->released) {
        free(s->expected);
        free(s->taken);
        free(s->times);
      } else {
        rs->staged[kept++] = *s;
      }
    }
    rs->nstaged = kept;
  }
  /* Runs taken over in this batch: this scheduler's now, or in doubt. */
  pthread_mutex_lock(&rs->mu);
  while (rs->pending) {
    store_claim *c = rs->pending;
    rs->pending = c->next;
    c->next = NULL;
    if (rc == APSCHED_OK) {
      apsched__pstore_claims_put(&rs->claims, c);
    } else {
      c->next = rs->doubt;
      rs->doubt = c;
    }
  }
  pthread_mutex_unlock(&rs->mu);
  return rc;
}

/* ----------------------------------------------------------- runs_closed */

static const char *const outcome_text[] = {
    [APSCHED_RUN_EXECUTED] = "executed",
    [APSCHED_RUN_FAILED] = "failed",
    [APSCHED_RUN_MISSED] = "missed",
    [APSCHED_RUN_SKIPPED] = "skipped",
};

enum { CLOSE_ARGS = 9 };

void apsched__redis_history_keep(const redis_store *rs, char *buf, size_t len) {
  int64_t r = rs->history_retention;
  if (r == APSCHED_REDIS_HISTORY_FOREVER) snprintf(buf, len, "-1");
  else snprintf(buf, len, "%" PRId64, r == 0 ? 0 : r / 1000 > 0 ? r / 1000 : 1);
}

typedef struct close_texts {
  char t[24], token[24], attempt[16], started[24], finished[24], retval[16];
} close_texts;

int apsched__redis_runs_closed(redis_store *rs, const apsched_run_result *results, size_t n) {
  close_texts *tx = calloc(n, sizeof *tx);
  int64_t *tokens = calloc(n, sizeof *tokens);
  const char **argv = malloc((3 + CLOSE_ARGS * n) * sizeof *argv);
  if (!tx || !tokens || !argv) {
    free(tx);
    free(tokens);
    free(argv);
    return oom();
  }
  pthread_mutex_lock(&rs->mu);
  for (size_t i = 0; i < n; i++)
    tokens[i] = apsched__pstore_claims_token(&rs->claims, results[i].job_id,
                                             results[i].scheduled_time, results[i].attempt);
  pthread_mutex_unlock(&rs->mu);
  char keep[24], count[24];
  apsched__redis_history_keep(rs, keep, sizeof keep);
  snprintf(count, sizeof count, "%zu", n);
  size_t k = 0;
  argv[k++] = rs->id;
  argv[k++] = keep;
  argv[k++] = count;
  for (size_t i = 0; i < n; i++) {
    const apsched_run_result *res = &results[i];
    close_texts *t = &tx[i];
    unsigned outcome = (unsigned)res->outcome <= APSCHED_RUN_SKIPPED ? res->outcome : APSCHED_RUN_FAILED;
    /* Without a history the script needs only the run's name and token. */
    int nvals = strcmp(keep, "0") == 0 ? 3 : CLOSE_ARGS;
    apsched__pstore_i64(t->t, res->scheduled_time);
    apsched__pstore_i64(t->token, tokens[i]);
    if (nvals > 3) {
      snprintf(t->attempt, sizeof t->attempt, "%u", res->attempt);
      if (res->started_at == APSCHED_TIME_NONE) t->started[0] = '\0';
      else apsched__pstore_i64(t->started, res->started_at);
      apsched__pstore_i64(t->finished, res->finished_at);
      snprintf(t->retval, sizeof t->retval, "%d", res->retval);
    }
    const char *vals[CLOSE_ARGS] = {res->job_id, t->t,        t->token,         t->attempt,
                                    t->started,  t->finished, outcome_text[outcome], t->retval,
                                    res->error ? res->error : ""};
    for (int v = 0; v < nvals; v++) argv[k++] = vals[v];
  }
  int rc;
  redisReply *reply = apsched__redis_script(&rs->link, S_CLOSE, rs->root, (int)k, argv, NULL,
                                            "closing run records", &rc);
  if (reply && (reply->type != REDIS_REPLY_ARRAY || reply->elements != n))
    rc = apsched__redis_fail(&rs->link, "closing run records", "unexpected reply");
  if (rc == APSCHED_OK) {
    for (size_t i = 0; i < n; i++) {
      if (tokens[i] == 0) continue;
      pthread_mutex_lock(&rs->mu);
      apsched__pstore_claims_drop(&rs->claims, results[i].job_id, results[i].scheduled_time, tokens[i]);
      pthread_mutex_unlock(&rs->mu);
      if (reply->element[i]->integer >= 0) continue;
      char when[48], why[256];
      apsched_time_format(results[i].scheduled_time, NULL, when, sizeof when);
      snprintf(why, sizeof why,
               "the claim of the run scheduled at %s was lost (another scheduler took it over "
               "while this one was stalled): its end is not recorded",
               when);
      report(rs, results[i].job_id, why);
    }
  }
  apsched__redis_reply_free(reply);
  free(tx);
  free(tokens);
  free(argv);
  return rc;
}

/* --------------------------------------------------------- claim_orphans */

apsched_job_record *apsched__redis_run_record(redis_store *rs, redisReply **v) {
  apsched_job_record *rec = apsched_job_record_new(v[0]->str);
  if (!rec) return NULL;
  bool has_name = strcmp(v[4]->str, "1") == 0;
  rec->func = apsched_func_by_name(v[6]->str[0] ? v[6]->str : "(no function)");
  rec->executor = apsched__pstore_intern(&rs->b, v[7]->str[0] ? v[7]->str : "default");
  if (has_name) rec->name = strdup(v[5]->str);
  if (v[8]->len > 0) rec->args = apsched_job_args_new(v[8]->str, v[8]->len);
  long long mi = strtoll(v[9]->str, NULL, 10), mr = strtoll(v[10]->str, NULL, 10);
  rec->max_instances = (uint16_t)(mi >= 1 && mi <= UINT16_MAX ? mi : 1);
  rec->max_runtime_ms = (uint32_t)(mr >= 0 && mr <= UINT32_MAX ? mr : 0);
  rec->misfire_grace_ms = UINT32_MAX;
  rec->flags = strcmp(v[11]->str, "at_least_once") == 0 ? APSCHED_JOB_AT_LEAST_ONCE : 0;
  rec->next_run_time = rec->trigger_time = APSCHED_TIME_NONE;
  if (!rec->func || !rec->executor || (has_name && !rec->name) || (v[8]->len > 0 && !rec->args)) {
    apsched_job_record_free(rec);
    return NULL;
  }
  return rec;
}

static int by_time(const void *a, const void *b) {
  const apsched_orphan_run *x = a, *y = b;
  if (x->scheduled_time != y->scheduled_time) return x->scheduled_time < y->scheduled_time ? -1 : 1;
  return strcmp(x->rec->id, y->rec->id);
}

enum { TAKEN_VALUES = 12, LOST_VALUES = 3 };

int apsched__redis_orphans(redis_store *rs, apsched_orphan_run *out, size_t max) {
  /* The runs in doubt, up to max, leave the list while the script runs. */
  pthread_mutex_lock(&rs->mu);
  store_claim *doubt = NULL, **tail = &rs->doubt;
  size_t nd = 0;
  while (*tail && nd < max) {
    store_claim *c = *tail;
    *tail = c->next;
    c->next = doubt;
    doubt = c;
    nd++;
  }
  pthread_mutex_unlock(&rs->mu);
  const char **argv = malloc((4 + 3 * nd) * sizeof *argv);
  char (*num)[24] = malloc((3 + 2 * nd) * sizeof *num);
  int rc = argv && num ? APSCHED_OK : oom();
  redisReply *r = NULL;
  if (rc == APSCHED_OK) {
    size_t k = 0, m = 0;
    argv[k++] = rs->id;
    snprintf(num[m], sizeof num[m], "%zu", max);
    argv[k++] = num[m++];
    apsched__redis_history_keep(rs, num[m], sizeof num[m]); /* lost runs end in the history */
    argv[k++] = num[m++];
    snprintf(num[m], sizeof num[m], "%zu", nd);
    argv[k++] = num[m++];
    for (store_claim *c = doubt; c; c = c->next) {
      argv[k++] = c->job_id;
      snprintf(num[m], sizeof num[m], "%" PRId64, c->scheduled_time);
      argv[k++] = num[m++];
      snprintf(num[m], sizeof num[m], "%" PRId64, c->token);
      argv[k++] = num[m++];
    }
    r = apsched__redis_script(&rs->link, S_ORPHANS, rs->root, (int)k, argv, NULL,
                              "taking over the runs of dead schedulers", &rc);
  }
  free(argv);
  free(num);
  if (r && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->elements % TAKEN_VALUES || r->element[1]->elements % LOST_VALUES))
    rc = apsched__redis_fail(&rs->link, "taking over the runs of dead schedulers", "unexpected reply");
  if (rc != APSCHED_OK) {
    /* Still in doubt: offered again next time. */
    pthread_mutex_lock(&rs->mu);
    while (doubt) {
      store_claim *c = doubt;
      doubt = c->next;
      c->next = rs->doubt;
      rs->doubt = c;
    }
    pthread_mutex_unlock(&rs->mu);
    apsched__redis_reply_free(r);
    return rc;
  }
  while (doubt) { /* settled: offered below, or no longer this scheduler's */
    store_claim *c = doubt;
    doubt = c->next;
    free(c);
  }
  size_t n = 0;
  const redisReply *taken = r->element[0], *lost = r->element[1];
  for (size_t i = 0; i < taken->elements; i += TAKEN_VALUES) {
    redisReply **v = taken->element + i;
    int64_t t = strtoll(v[1]->str, NULL, 10), token = strtoll(v[3]->str, NULL, 10);
    long attempt = strtol(v[2]->str, NULL, 10);
    unsigned run_attempt = attempt >= 1 && attempt < UINT32_MAX ? (unsigned)attempt : 1;
    apsched_job_record *rec = apsched__redis_run_record(rs, v);
    if (!rec || !note(&rs->pending, v[0]->str, t, run_attempt, token)) {
      /* Short of memory: it stays this scheduler's, in doubt. */
      pthread_mutex_lock(&rs->mu);
      note(&rs->doubt, v[0]->str, t, run_attempt, token);
      pthread_mutex_unlock(&rs->mu);
      apsched_job_record_free(rec);
      continue;
    }
    out[n++] = (apsched_orphan_run){.rec = rec, .scheduled_time = t, .attempt = run_attempt};
  }
  for (size_t i = 0; i < lost->elements; i += LOST_VALUES) {
    redisReply **v = lost->element + i;
    char when[48], why[320];
    apsched_time_format(strtoll(v[1]->str, NULL, 10), NULL, when, sizeof when);
    snprintf(why, sizeof why,
             "run of job %.64s scheduled at %s was lost with scheduler %.40s (at most once)",
             v[0]->str, when, v[2]->str);
    report(rs, v[0]->str, why);
  }
  apsched__redis_reply_free(r);
  qsort(out, n, sizeof *out, by_time);
  return (int)n;
}

/* ---------------------------------------------------------- run_starting */

int apsched__redis_group_write(void *store, const store_start_group *g, bool start,
                               void (*hit)(size_t i, void *ud), void *ud) {
  redis_store *rs = store;
  const char *argv[3 + 3 * STORE_START_GROUP];
  char lease[16], count[24], num[2 * STORE_START_GROUP][24];
  snprintf(lease, sizeof lease, "%d", rs->lease_ms);
  snprintf(count, sizeof count, "%zu", g->n);
  size_t k = 0;
  argv[k++] = rs->id;
  argv[k++] = lease;
  argv[k++] = count;
  for (size_t i = 0; i < g->n; i++) {
    apsched__pstore_i64(num[2 * i], g->t[i]);
    apsched__pstore_i64(num[2 * i + 1], g->token[i]);
    argv[k++] = g->job_id[i];
    argv[k++] = num[2 * i];
    argv[k++] = num[2 * i + 1];
  }
  int rc;
  const char *what = start ? "recording the start of a run" : "taking back starts recorded ahead";
  redisReply *r = apsched__redis_script(&rs->start, start ? S_START : S_UNSTART, rs->root, (int)k,
                                        argv, NULL, what, &rc);
  if (r && r->type != REDIS_REPLY_ARRAY) rc = apsched__redis_fail(&rs->start, what, "unexpected reply");
  for (size_t e = 0; rc == APSCHED_OK && hit && e < r->elements; e++) {
    long long i = r->element[e]->integer;
    if (i >= 1 && (size_t)i <= g->n) hit((size_t)i - 1, ud);
  }
  apsched__redis_reply_free(r);
  return rc;
}
