/* The Redis job store: the vtable of apsched_plugin.h over one hash per job
 * and the sorted sets {P}:jobs and {P}:next (run records and the commit:
 * runs.c; liveness, wake-ups and the server's clock: liveness.c; the Lua
 * scripts: scripts.c).
 *
 * One connection, used by one call at a time. Every call reads the server
 * afresh, so a job changed by another program is seen by the next call.
 * Each mutating call is one script, atomic on the server. A claimed batch
 * is two: claim_due's script claims the due jobs (a field per job in
 * {P}:claims, expiring after the lease, that the other schedulers' claims
 * skip), and
 * the commit's script records the runs of every job of the batch and
 * stores their next run times, fenced by the claim; runs start only after
 * it succeeded. A scheduler that dies or stalls between the two lets its
 * claims run out: the jobs are due again for the others, and its late
 * commit writes nothing. */
#include "redis_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static redis_store *as_redis(apsched_jobstore *st) { return (redis_store *)st; }

static int oom(void) { return apsched__pstore_error(APSCHED_ENOMEM, "redis store: out of memory"); }

char *apsched__redis_key(const redis_store *rs, const char *kind, const char *id) {
  /* (memcpy, not snprintf: a claimed batch makes a key per job) */
  size_t r = strlen(rs->root), k = strlen(kind), i = strlen(id);
  char *key = malloc(r + k + i + 3);
  if (!key) return NULL;
  memcpy(key, rs->root, r);
  key[r] = ':';
  memcpy(key + r + 1, kind, k);
  key[r + 1 + k] = ':';
  memcpy(key + r + 2 + k, id, i + 1);
  return key;
}

/* Inside an open batch another call (only the conformance kit makes one)
 * first sends what the batch released so far. */
static void settle(redis_store *rs) {
  if (!rs->batch || rs->batch_failed) return;
  bool any = false;
  for (size_t i = 0; i < rs->nstaged && !any; i++) any = rs->staged[i].released;
  if (any && apsched__redis_commit(rs) != APSCHED_OK) rs->batch_failed = true;
}

static redisReply *script(redis_store *rs, redis_script s, int argc, const char **argv,
                          const size_t *lens, const char *what, int *rc) {
  settle(rs);
  return apsched__redis_script(&rs->link, s, rs->root, argc, argv, lens, what, rc);
}

static int scan(redis_store *rs, int (*fn)(const apsched_job_record *rec, void *ud), void *ud);

/* Decodes a job hash and its score, noting it if broken. */
static int decode(redis_store *rs, const char *id, const redisReply *hash, const redisReply *score,
                  apsched_job_record **out) {
  return apsched__redis_decode(id, hash, score, &rs->b, out);
}

/* HGETALL of job id (NULL with *rc on failure), and its score in
 * {P}:next in *score (a nil reply: paused). */
static redisReply *job_hash(redis_store *rs, const char *id, redisReply **score, int *rc) {
  char *key = apsched__redis_key(rs, "job", id);
  *score = NULL;
  if (!key) {
    *rc = oom();
    return NULL;
  }
  settle(rs);
  char next[REDIS_PREFIX_MAX + 16];
  snprintf(next, sizeof next, "%s:next", rs->root);
  const char *zscore[3] = {"ZSCORE", next, id};
  *score = apsched__redis_command(&rs->link, 3, zscore, NULL, "reading a job's next run time", rc);
  redisReply *r = NULL;
  if (*score) {
    const char *argv[2] = {"HGETALL", key};
    r = apsched__redis_command(&rs->link, 2, argv, NULL, "reading a job", rc);
    if (!r && strstr(apsched__pstore_last_error(), "WRONGTYPE")) {
      /* A key of another type under the job's name: a broken job. */
      r = apsched__redis_reply_error();
      *rc = r ? APSCHED_OK : oom();
    }
    if (!r) {
      apsched__redis_reply_free(*score);
      *score = NULL;
    }
  }
  free(key);
  return r;
}


/* ---------------------------------------------------------------- vtable */

static int redis_open(apsched_jobstore *st, apsched_scheduler *s, const char *alias) {
  redis_store *rs = as_redis(st);
  apsched__pstore_base_open(&rs->b, s, alias);
  /* Reports every job that does not decode, once per open. */
  int rc = scan(rs, NULL, NULL);
  if (rc == APSCHED_OK) rc = apsched__redis_register(rs);
  if (rc != APSCHED_OK) return rc;
  pthread_mutex_lock(&rs->mu);
  rs->sched = s;
  pthread_mutex_unlock(&rs->mu);
  return APSCHED_OK;
}

static void redis_close(apsched_jobstore *st) {
  redis_store *rs = as_redis(st);
  pthread_mutex_lock(&rs->mu);
  rs->sched = NULL;
  pthread_mutex_unlock(&rs->mu);
  /* Runs whose start was recorded ahead and that will not start here go
   * back to being claimed only: the next scheduler runs them. */
  apsched__pstore_starts_take_back_all(&rs->starts);
  apsched__redis_deregister(rs);
  apsched__pstore_base_close(&rs->b);
}

static void free_claim_list(store_claim *c) {
  while (c) {
    store_claim *next = c->next;
    free(c);
    c = next;
  }
}

static void redis_destroy(apsched_jobstore *st) {
  redis_store *rs = as_redis(st);
  if (!rs) return;
  /* An open batch was never committed: its claims run out. */
  if (rs->starts.store) apsched__pstore_starts_take_back_all(&rs->starts);
  apsched__redis_deregister(rs);
  apsched__redis_unstage(rs);
  free(rs->staged);
  apsched__redis_disconnect(&rs->link);
  apsched__redis_disconnect(&rs->start);
  pthread_mutex_destroy(&rs->mu);
  pthread_mutex_destroy(&rs->start_mu);
  apsched__pstore_claims_free(&rs->claims);
  free_claim_list(rs->pending);
  free_claim_list(rs->doubt);
  apsched__pstore_base_free(&rs->b);
  apsched_job_record_free(rs->found);
  apsched__redis_addr_free(&rs->addr);
  free(rs->prefix);
  free(rs->scheduler_name);
  free(rs);
}

/* One job's arguments of the put script: id, mode, next, nf, pairs. */
typedef struct put_args {
  const char *argv[4 + 2 * COL_COUNT];
  size_t lens[4 + 2 * COL_COUNT];
  int argc;
  char nf[16], next[24], ints[COL_COUNT][24];
  store_policies policies; /* COL_POLICIES points into it */
} put_args;

static void put_job(put_args *p, const apsched_job_record *rec, const char *text, const char *mode) {
  store_value v[COL_COUNT];
  apsched__pstore_encode(rec, text, &p->policies, v);
  int k = 4, nf = 0;
  for (int col = 1; col < COL_COUNT; col++) {
    const char *val = NULL;
    size_t len = 0;
    switch (v[col].kind) {
    case STORE_INT:
      len = (size_t)snprintf(p->ints[col], sizeof p->ints[col], "%" PRId64, v[col].i);
      val = p->ints[col];
      break;
    case STORE_TEXT: val = v[col].text, len = strlen(val); break;
    case STORE_BYTES: val = v[col].bytes, len = v[col].len; break;
    default: continue; /* NULL: no field */
    }
    if ((col == COL_NEXT_RUN_TIME || col == COL_TRIGGER_TIME) &&
        !apsched__redis_time_kept(col, v[col].i, rec->next_run_time))
      continue; /* the score says it */
    p->argv[k] = apsched__redis_field(col);
    p->lens[k++] = strlen(apsched__redis_field(col));
    p->argv[k] = val;
    p->lens[k++] = len;
    nf++;
  }
  snprintf(p->nf, sizeof p->nf, "%d", nf);
  if (rec->next_run_time == APSCHED_TIME_NONE) p->next[0] = '\0';
  else snprintf(p->next, sizeof p->next, "%" PRId64, rec->next_run_time);
  const char *head[4] = {rec->id, mode, p->next, p->nf};
  for (int i = 0; i < 4; i++) p->argv[i] = head[i], p->lens[i] = strlen(head[i]);
  p->argc = k;
}

/* Writes n records in one put script (all or nothing). */
static int put(redis_store *rs, apsched_job_record *const *recs, char **texts, size_t n,
               const bool *replace, bool update, size_t *failed) {
  put_args *p = calloc(n, sizeof *p);
  size_t total = 1;
  for (size_t i = 0; p && i < n; i++) {
    put_job(&p[i], recs[i], texts[i], update ? "update" : replace && replace[i] ? "upsert" : "add");
    total += (size_t)p[i].argc;
  }
  const char **argv = p ? malloc(total * sizeof *argv) : NULL;
  size_t *lens = argv ? malloc(total * sizeof *lens) : NULL;
  char count[24];
  int rc = APSCHED_OK;
  if (!lens) {
    rc = oom();
  } else if (total > INT_MAX) {
    rc = apsched__pstore_error(APSCHED_EINVAL, "redis store: too many jobs in one call");
  } else {
    snprintf(count, sizeof count, "%zu", n);
    argv[0] = count;
    lens[0] = strlen(count);
    size_t k = 1;
    for (size_t i = 0; i < n; i++)
      for (int j = 0; j < p[i].argc; j++) argv[k] = p[i].argv[j], lens[k++] = p[i].lens[j];
    redisReply *r = script(rs, S_PUT, (int)total, argv, lens, update ? "updating a job" : "adding jobs", &rc);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER) {
      size_t at = (size_t)r->element[1]->integer;
      const char *id = at < n ? recs[at]->id : "?";
      if (strcmp(r->element[0]->str, "exists") == 0)
        rc = apsched__pstore_error(APSCHED_EEXIST, "job '%.64s': the id is taken", id);
      else rc = apsched__pstore_error(APSCHED_ENOENT, "no job '%.64s'", id);
      if (failed) *failed = at;
    }
    apsched__redis_reply_free(r);
  }
  free(lens);
  free(argv);
  free(p);
  return rc;
}

static int redis_add(apsched_jobstore *st, apsched_job_record *const *recs, size_t n,
                     const bool *replace, size_t *failed) {
  redis_store *rs = as_redis(st);
  size_t dummy;
  if (!failed) failed = &dummy;
  *failed = n;
  if (n == 0) return APSCHED_OK;
  char **texts;
  int rc = apsched__pstore_add_prepare(recs, n, "Redis", &texts, failed);
  if (rc != APSCHED_OK) return rc;
  rc = put(rs, recs, texts, n, replace, false, failed);
  apsched__pstore_free_texts(texts, n);
  if (rc != APSCHED_OK) return rc;
  for (size_t i = 0; i < n; i++) apsched_job_record_free(recs[i]);
  return APSCHED_OK;
}

static int redis_lookup(apsched_jobstore *st, const char *id, const apsched_job_record **out) {
  redis_store *rs = as_redis(st);
  if (!id || !out)
    return apsched__pstore_error(APSCHED_EINVAL, "lookup: %s is NULL", !id ? "id" : "out");
  *out = NULL;
  int rc;
  redisReply *score;
  redisReply *r = job_hash(rs, id, &score, &rc);
  if (!r) return rc;
  apsched_job_record *rec = NULL;
  rc = r->type == REDIS_REPLY_ARRAY && r->elements == 0 ? APSCHED_ENOENT : decode(rs, id, r, score, &rec);
  apsched__redis_reply_free(r);
  apsched__redis_reply_free(score);
  if (rc != APSCHED_OK) return rc;
  apsched_job_record_free(rs->found); /* id may point into it: freed only now */
  rs->found = rec;
  *out = rec;
  return APSCHED_OK;
}

static int redis_update(apsched_jobstore *st, apsched_job_record *rec) {
  redis_store *rs = as_redis(st);
  if (!rec) return apsched__pstore_error(APSCHED_EINVAL, "update: no record");
  int rc = apsched__pstore_storable(rec, "Redis");
  if (rc != APSCHED_OK) return rc;
  char *text = apsched__pstore_trigger_text(rec);
  if (!text) return APSCHED_EINVAL;
  rc = put(rs, &rec, &text, 1, NULL, true, NULL);
  free(text);
  if (rc == APSCHED_OK) apsched_job_record_free(rec);
  return rc;
}

static int redis_remove(apsched_jobstore *st, const char *id) {
  redis_store *rs = as_redis(st);
  if (!id) return apsched__pstore_error(APSCHED_EINVAL, "remove: id is NULL");
  int rc;
  redisReply *r = script(rs, S_REMOVE, 1, &id, NULL, "removing a job", &rc);
  if (!r) return rc;
  if (r->type != REDIS_REPLY_INTEGER || r->integer == 0)
    rc = apsched__pstore_error(APSCHED_ENOENT, "no job '%.64s'", id);
  apsched__redis_reply_free(r);
  if (rc == APSCHED_OK) apsched__pstore_removed(&rs->b, id);
  return rc;
}

static int redis_remove_all(apsched_jobstore *st) {
  redis_store *rs = as_redis(st);
  int rc;
  apsched__redis_reply_free(script(rs, S_REMOVE, 0, NULL, NULL, "removing all jobs", &rc));
  if (rc == APSCHED_OK) apsched__pstore_removed(&rs->b, NULL);
  return rc;
}

/* The ids a pass skips: held by the open batch, or known broken. */
static const char **skip_ids(redis_store *rs, const char **head, int nhead, int *argc) {
  size_t n = (size_t)nhead + rs->b.nclaimed + rs->b.broken.n;
  const char **argv = malloc((n ? n : 1) * sizeof *argv);
  if (!argv) return NULL;
  int k = 0;
  for (int i = 0; i < nhead; i++) argv[k++] = head[i];
  for (size_t i = 0; i < rs->b.nclaimed; i++)
    if (apsched__pstore_is_held(&rs->b, rs->b.claimed[i]->id)) argv[k++] = rs->b.claimed[i]->id;
  for (size_t i = 0; i < rs->b.broken.n; i++) argv[k++] = rs->b.broken.items[i];
  *argc = k;
  return argv;
}

static int redis_next_run_time(apsched_jobstore *st, apsched_time_t *out) {
  redis_store *rs = as_redis(st);
  *out = APSCHED_TIME_NONE;
  int argc, rc;
  const char **argv = skip_ids(rs, NULL, 0, &argc);
  if (!argv) return oom();
  redisReply *r = script(rs, S_NEXT, argc, argv, NULL, "reading the next run time", &rc);
  free(argv);
  if (!r) return rc;
  if (r->type == REDIS_REPLY_STRING) *out = strtoll(r->str, NULL, 10);
  apsched__redis_reply_free(r);
  return APSCHED_OK;
}

/* Begins the claimed batch unless it is open. A scheduler registers before
 * it claims anything, so its runs always have a live owner. */
static int batch_begin(redis_store *rs, bool *began) {
  *began = false;
  if (rs->batch) return APSCHED_OK;
  apsched__pstore_drop_claims(&rs->b, 0); /* the previous batch's */
  apsched__redis_unstage(rs);
  int rc = apsched__redis_register(rs);
  if (rc != APSCHED_OK) return rc;
  rs->batch = *began = true;
  rs->batch_failed = rs->batch_waits = false;
  return APSCHED_OK;
}

static void batch_end(redis_store *rs) {
  apsched__redis_unstage(rs);
  rs->batch = rs->batch_failed = false;
}

static int redis_claim_orphans(apsched_jobstore *st, apsched_orphan_run *out, size_t max) {
  redis_store *rs = as_redis(st);
  if (max == 0) return 0;
  if (!out) return apsched__pstore_error(APSCHED_EINVAL, "claim_orphans: out is NULL");
  bool began;
  int rc = batch_begin(rs, &began);
  if (rc != APSCHED_OK) return rc;
  int n = apsched__redis_orphans(rs, out, max);
  if (began && n <= 0) batch_end(rs);
  return n;
}

static int redis_runs_open(apsched_jobstore *st, const apsched_job_record *rec,
                           const apsched_time_t *times, size_t n, bool *track) {
  redis_store *rs = as_redis(st);
  *track = false;
  if (!rec || (n > 0 && !times))
    return apsched__pstore_error(APSCHED_EINVAL, "runs_open: %s is NULL", !rec ? "rec" : "times");
  return apsched__redis_runs_open(rs, rec, times, n, track);
}

static int redis_runs_wait(apsched_jobstore *st, const apsched_job_record *rec,
                           const apsched_time_t *times, size_t n, apsched_runs_waiting *out) {
  redis_store *rs = as_redis(st);
  int rc = apsched__pstore_check_wait_args("runs_wait", rec, times, n, out);
  if (rc != APSCHED_OK) return rc;
  if (!rs->batch || rs->batch_failed)
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "redis prefix '%s': runs_wait outside a claimed batch (or the "
                                 "batch failed after an earlier error)",
                                 rs->prefix);
  return apsched__redis_runs_wait(rs, rec, times, n, out);
}

static int redis_runs_add(apsched_jobstore *st, const apsched_job_record *rec,
                          const apsched_time_t *times, size_t n, bool *track,
                          apsched_runs_waiting *out) {
  redis_store *rs = as_redis(st);
  int rc = apsched__pstore_check_wait_args("runs_add", rec, times, n, out);
  if (rc == APSCHED_OK && !track) rc = apsched__pstore_error(APSCHED_EINVAL, "runs_add: track is NULL");
  /* Registered first, as a claim is: its runs always have a live owner. */
  if (rc == APSCHED_OK) rc = apsched__redis_register(rs);
  if (rc != APSCHED_OK) return rc;
  settle(rs);
  return apsched__redis_runs_add(rs, rec, times, n, track, out);
}

static int redis_claim_waiting(apsched_jobstore *st, apsched_waited_run *out, size_t max) {
  redis_store *rs = as_redis(st);
  if (max == 0) return 0;
  if (!out) return apsched__pstore_error(APSCHED_EINVAL, "claim_waiting: out is NULL");
  /* Runs begin to wait, and slots free for them, with a PUBLISH: only
   * then (or at a heartbeat, in case one was lost) is there anything to
   * look for. */
  if (!atomic_exchange(&rs->look_for_waiting, false)) return 0;
  bool began;
  int rc = batch_begin(rs, &began);
  if (rc != APSCHED_OK) {
    atomic_store(&rs->look_for_waiting, true);
    return rc;
  }
  int n = apsched__redis_waiting_take(rs, out, max);
  if (n < 0 || (size_t)n == max) atomic_store(&rs->look_for_waiting, true); /* again next pass */
  if (began && n <= 0) batch_end(rs);
  return n;
}

static int redis_runs_closed(apsched_jobstore *st, const apsched_run_result *results, size_t n) {
  if (n == 0) return APSCHED_OK;
  if (!results) return apsched__pstore_error(APSCHED_EINVAL, "runs_closed: results is NULL");
  settle(as_redis(st));
  return apsched__redis_runs_closed(as_redis(st), results, n);
}

static int redis_run_starting(apsched_jobstore *st, const char *job_id, apsched_time_t t,
                              unsigned attempt) {
  if (!job_id) return apsched__pstore_error(APSCHED_EINVAL, "run_starting: job_id is NULL");
  return apsched__pstore_run_starting(&as_redis(st)->starts, job_id, t, attempt);
}

/* The distinct tokens of a job's open runs (its instances in progress) and
 * their times as ",T1,T2,". */
static int open_runs(const redisReply *runs, long *instances, char **taken) {
  *instances = 0;
  *taken = NULL;
  if (runs->type != REDIS_REPLY_ARRAY || runs->elements == 0) return APSCHED_OK;
  size_t len = 2;
  for (size_t i = 0; i < runs->elements; i += 2) len += runs->element[i]->len + 1;
  char *t = malloc(len);
  if (!t) return oom();
  size_t k = 0;
  t[k++] = ',';
  for (size_t i = 0; i + 1 < runs->elements; i += 2) {
    memcpy(t + k, runs->element[i]->str, runs->element[i]->len);
    k += runs->element[i]->len;
    t[k++] = ',';
    bool seen = false;
    for (size_t j = 1; j < i && !seen; j += 2)
      seen = strcmp(runs->element[j]->str, runs->element[i + 1]->str) == 0;
    if (!seen) (*instances)++;
  }
  t[k] = '\0';
  *taken = t;
  return APSCHED_OK;
}

/* Stages a claimed record for runs_open and release. */
static int stage(redis_store *rs, apsched_job_record *rec, long long token,
                 const redisReply *hash, const redisReply *runs, const redisReply *score) {
  if (rs->nstaged == rs->staged_cap) {
    size_t cap = rs->staged_cap ? rs->staged_cap * 2 : 64;
    redis_staged *s = realloc(rs->staged, cap * sizeof *s);
    if (!s) return oom();
    rs->staged = s;
    rs->staged_cap = cap;
  }
  /* The next run time as the claim found it: the score's text, which the
   * commit compares with the score then (or a time the hash keeps). */
  const char *expected = score->type == REDIS_REPLY_STRING ? score->str : "";
  bool time_fields = false;
  for (size_t i = 0; hash->type == REDIS_REPLY_ARRAY && i + 1 < hash->elements; i += 2) {
    if (strcmp(hash->element[i]->str, "next_run_time") == 0) expected = hash->element[i + 1]->str;
    if (strcmp(hash->element[i]->str, "next_run_time") == 0 || strcmp(hash->element[i]->str, "trigger_time") == 0)
      time_fields = true;
  }
  redis_staged s = {.rec = rec, .token = token, .expected = strdup(expected), .time_fields = time_fields};
  if (!s.expected || open_runs(runs, &s.instances, &s.taken) != APSCHED_OK) {
    free(s.expected);
    return oom();
  }
  rs->staged[rs->nstaged++] = s;
  rec->store_seq = (uint32_t)rs->nstaged;
  return APSCHED_OK;
}

/* The hashes of the njobs jobs the claim script's reply r names (id, open
 * runs, score each after the token), read with one pipelined HGETALL per
 * job, outside the script: passed through Lua, a job's 20 strings cost
 * the server's one thread twice as much. The jobs are claimed: no other
 * scheduler runs them meanwhile; an update since the claim is read as if
 * it had come first, a removal as an empty hash. A key of another type
 * comes back as its error reply, a broken job. */
static int read_claimed(redis_store *rs, const redisReply *r, size_t njobs, redisReply **hashes) {
  char **keys = calloc(njobs, sizeof *keys);
  const char *(*cmds)[2] = calloc(njobs, sizeof *cmds);
  const char *const **argvs = calloc(njobs, sizeof *argvs);
  int rc = keys && cmds && argvs ? APSCHED_OK : oom();
  for (size_t j = 0; rc == APSCHED_OK && j < njobs; j++) {
    if (!(keys[j] = apsched__redis_key(rs, "job", r->element[1 + 3 * j]->str))) rc = oom();
    cmds[j][0] = "HGETALL";
    cmds[j][1] = keys[j];
    argvs[j] = cmds[j];
  }
  /* (A failed pipeline leaves nothing in hashes to free.) */
  if (rc == APSCHED_OK &&
      (rc = apsched__redis_pipeline(&rs->link, njobs, 2, argvs, hashes, "reading the claimed jobs")) ==
          APSCHED_OK) {
    for (size_t j = 0; rc == APSCHED_OK && j < njobs; j++)
      if (hashes[j]->type == REDIS_REPLY_ERROR && !strstr(hashes[j]->str, "WRONGTYPE"))
        rc = apsched__redis_fail(&rs->link, "reading the claimed jobs", hashes[j]->str);
    for (size_t j = 0; rc != APSCHED_OK && j < njobs; j++) apsched__redis_reply_free(hashes[j]);
  }
  if (rc != APSCHED_OK) memset(hashes, 0, njobs * sizeof *hashes);
  for (size_t j = 0; keys && j < njobs; j++) free(keys[j]);
  free(keys);
  free(cmds);
  free(argvs);
  return rc;
}

static int redis_claim_due(apsched_jobstore *st, apsched_time_t now, apsched_job_record **out,
                           size_t max) {
  redis_store *rs = as_redis(st);
  if (max == 0) return 0;
  if (!out) return apsched__pstore_error(APSCHED_EINVAL, "claim_due: out is NULL");
  if (max > INT_MAX) max = INT_MAX;
  bool began;
  int rc = batch_begin(rs, &began);
  if (rc != APSCHED_OK) return rc;
  char at[24], limit[24], lease[24];
  snprintf(at, sizeof at, "%" PRId64, now);
  snprintf(limit, sizeof limit, "%zu", max);
  snprintf(lease, sizeof lease, "%d", rs->lease_ms);
  const char *head[4] = {at, limit, rs->id, lease};
  int argc;
  const char **argv = skip_ids(rs, head, 4, &argc);
  if (!argv) rc = oom();
  redisReply *r = argv ? script(rs, S_CLAIM, argc, argv, NULL, "claiming due jobs", &rc) : NULL;
  free(argv);
  size_t first = rs->b.nclaimed, n = 0, first_staged = rs->nstaged;
  if (r && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || (r->elements - 1) % 3 != 0))
    rc = apsched__redis_fail(&rs->link, "claiming due jobs", "unexpected reply");
  long long token = r && rc == APSCHED_OK ? r->element[0]->integer : 0;
  size_t njobs = r && rc == APSCHED_OK ? (r->elements - 1) / 3 : 0;
  redisReply **hashes = njobs ? calloc(njobs, sizeof *hashes) : NULL;
  if (njobs && !hashes) rc = oom();
  if (rc == APSCHED_OK && njobs) rc = read_claimed(rs, r, njobs, hashes);
  for (size_t j = 0; rc == APSCHED_OK && j < njobs && n < max; j++) {
    size_t i = 1 + 3 * j;
    const char *id = r->element[i]->str;
    const redisReply *hash = hashes[j];
    if (hash->type == REDIS_REPLY_ARRAY && hash->elements == 0) continue; /* removed since: its claim runs out */
    apsched_job_record *rec;
    if ((rc = decode(rs, id, hash, r->element[i + 2], &rec)) != APSCHED_OK) break;
    if (rec->flags & APSCHED_JOB_BROKEN) {
      apsched_job_record_free(rec); /* kept as it is, never run; its claim runs out */
      continue;
    }
    if ((rc = apsched__pstore_hold(&rs->b, rec)) != APSCHED_OK) {
      apsched_job_record_free(rec);
      break;
    }
    if ((rc = stage(rs, rec, token, hash, r->element[i + 1], r->element[i + 2])) != APSCHED_OK) break;
    out[n++] = rec;
  }
  for (size_t j = 0; hashes && j < njobs; j++) apsched__redis_reply_free(hashes[j]);
  free(hashes);
  apsched__redis_reply_free(r);
  if (rc != APSCHED_OK) {
    /* Nothing of this call stays claimed here (on the server the claims run out). */
    while (rs->nstaged > first_staged) {
      redis_staged *s = &rs->staged[--rs->nstaged];
      free(s->expected);
      free(s->taken);
      free(s->times);
    }
    apsched__pstore_drop_claims(&rs->b, first);
    if (began) batch_end(rs);
    return rc;
  }
  if (began && n == 0) batch_end(rs);
  return (int)n;
}

static int redis_release(apsched_jobstore *st, apsched_job_record *rec, apsched_time_t next_run_time,
                         apsched_time_t trigger_time, bool remove_job) {
  redis_store *rs = as_redis(st);
  char where[160];
  snprintf(where, sizeof where, "redis prefix '%s'", rs->prefix);
  int rc = apsched__pstore_unhold(&rs->b, rec, where);
  if (rc != APSCHED_OK) return rc;
  if (rs->batch_failed)
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "redis prefix '%s': the claimed batch failed after an earlier "
                                 "error; job '%.64s' is due again once its claim runs out",
                                 rs->prefix, rec->id);
  redis_staged *s = apsched__redis_staged_of(rs, rec);
  if (!s) return apsched__pstore_error(APSCHED_EINVAL, "release: job '%.64s' was not staged", rec->id);
  s->next = next_run_time;
  s->trigger = trigger_time;
  s->remove = remove_job;
  s->released = true;
  return APSCHED_OK;
}

static int redis_commit(apsched_jobstore *st) {
  redis_store *rs = as_redis(st);
  if (!rs->batch) return APSCHED_OK;
  int rc = rs->batch_failed ? apsched__pstore_error(APSCHED_EBACKEND,
                                                    "redis prefix '%s': the claimed batch failed "
                                                    "after an earlier error; its jobs are due "
                                                    "again once their claims run out",
                                                    rs->prefix)
                            : apsched__redis_commit(rs);
  if (rc == APSCHED_OK && rs->batch_waits) {
    /* Its runs that wait may start now that its claims are gone. */
    char channel[REDIS_PREFIX_MAX + 16];
    snprintf(channel, sizeof channel, "%s:wakeup", rs->root);
    const char *argv[3] = {"PUBLISH", channel, ""};
    int ignored;
    apsched__redis_reply_free(apsched__redis_command(&rs->link, 3, argv, NULL, "waking the schedulers", &ignored));
  }
  batch_end(rs);
  apsched__pstore_drop_claims(&rs->b, 0);
  return rc;
}

/* Jobs read per round trip when listing them all. */
#define SCAN_CHUNK 512

/* Calls fn for every job (fn NULL: only decodes, which reports the broken
 * ones). The hashes are read SCAN_CHUNK at a time, pipelined: at 10^5 jobs,
 * a round trip per job made opening the store take seconds. */
static int scan(redis_store *rs, int (*fn)(const apsched_job_record *rec, void *ud), void *ud) {
  char key[REDIS_PREFIX_MAX + 16];
  snprintf(key, sizeof key, "%s:jobs", rs->root);
  const char *argv[4] = {"ZRANGE", key, "0", "-1"};
  int rc;
  settle(rs);
  redisReply *ids = apsched__redis_command(&rs->link, 4, argv, NULL, "listing the jobs", &rc);
  if (!ids) return rc;
  size_t total = ids->type == REDIS_REPLY_ARRAY ? ids->elements : 0;
  char *keys[SCAN_CHUNK];
  const char *cmds[SCAN_CHUNK][3];
  const char *const *argvs[SCAN_CHUNK];
  redisReply *hashes[SCAN_CHUNK], *scores[SCAN_CHUNK];
  char next[REDIS_PREFIX_MAX + 16];
  snprintf(next, sizeof next, "%s:next", rs->root);
  for (size_t at = 0; rc == APSCHED_OK && at < total; at += SCAN_CHUNK) {
    size_t n = total - at < SCAN_CHUNK ? total - at : SCAN_CHUNK, made = 0;
    for (; made < n; made++) {
      if (!(keys[made] = apsched__redis_key(rs, "job", ids->element[at + made]->str))) break;
      cmds[made][0] = "HGETALL";
      cmds[made][1] = keys[made];
      argvs[made] = cmds[made];
    }
    if (made < n) rc = oom();
    else rc = apsched__redis_pipeline(&rs->link, n, 2, argvs, hashes, "reading the jobs");
    for (size_t i = 0; i < made; i++) free(keys[i]);
    if (rc != APSCHED_OK) break;
    for (size_t i = 0; i < n; i++) {
      cmds[i][0] = "ZSCORE";
      cmds[i][1] = next;
      cmds[i][2] = ids->element[at + i]->str;
    }
    rc = apsched__redis_pipeline(&rs->link, n, 3, argvs, scores, "reading the next run times");
    if (rc != APSCHED_OK) {
      for (size_t i = 0; i < n; i++) apsched__redis_reply_free(hashes[i]);
      break;
    }
    size_t i = 0;
    for (; i < n && rc == APSCHED_OK; i++) {
      const char *id = ids->element[at + i]->str;
      redisReply *h = hashes[i];
      if (h->type == REDIS_REPLY_ERROR && !strstr(h->str, "WRONGTYPE")) {
        rc = apsched__redis_fail(&rs->link, "reading a job", h->str);
      } else if (h->type != REDIS_REPLY_ARRAY || h->elements > 0) {
        /* (An empty hash: the job was removed meanwhile. A key of another
         * type under its name decodes as a broken job.) */
        apsched_job_record *rec = NULL;
        rc = decode(rs, id, h, scores[i], &rec);
        if (rc == APSCHED_OK && fn) rc = fn(rec, ud);
        apsched_job_record_free(rec);
      }
      apsched__redis_reply_free(h);
      apsched__redis_reply_free(scores[i]);
    }
    for (; i < n; i++) {
      apsched__redis_reply_free(hashes[i]);
      apsched__redis_reply_free(scores[i]);
    }
  }
  apsched__redis_reply_free(ids);
  return rc;
}

static int redis_foreach(apsched_jobstore *st, int (*fn)(const apsched_job_record *rec, void *ud),
                         void *ud) {
  if (!fn) return apsched__pstore_error(APSCHED_EINVAL, "foreach: fn is NULL");
  return scan(as_redis(st), fn, ud);
}

static const apsched_jobstore_vtable redis_vtable = {
    .version = APSCHED_JOBSTORE_VTABLE_VERSION,
    .kind = "redis",
    .flags = APSCHED_STORE_BLOCKING,
    .open = redis_open,
    .close = redis_close,
    .destroy = redis_destroy,
    .add = redis_add,
    .lookup = redis_lookup,
    .update = redis_update,
    .remove = redis_remove,
    .remove_all = redis_remove_all,
    .next_run_time = redis_next_run_time,
    .claim_due = redis_claim_due,
    .release = redis_release,
    .commit = redis_commit,
    .foreach = redis_foreach,
    .runs_open = redis_runs_open,
    .runs_closed = redis_runs_closed,
    .claim_orphans = redis_claim_orphans,
    .clock = apsched__redis_clock,
    .run_starting = redis_run_starting,
    .runs_wait = redis_runs_wait,
    .claim_waiting = redis_claim_waiting,
    .runs_add = redis_runs_add,
};

/* ---------------------------------------------------------------- create */

enum { LEASE_MIN_MS = 100, LEASE_MAX_MS = 24 * 3600 * 1000 };

static int check_options(const apsched_redis_options *o, redis_addr *addr) {
  if (!o) return apsched__pstore_error(APSCHED_EINVAL, "redis store: options are NULL");
  if (!o->url) return apsched__pstore_error(APSCHED_EINVAL, "redis store: url is NULL");
  if (o->prefix) {
    size_t len = strlen(o->prefix);
    bool bad = false;
    for (const char *p = o->prefix; *p; p++)
      bad |= (unsigned char)*p < 0x20 || *p == 0x7f || *p == '{' || *p == '}';
    if (len == 0 || len > REDIS_PREFIX_MAX || bad)
      return apsched__pstore_error(APSCHED_EINVAL,
                                   "redis store: prefix '%.120s' must be 1 to %d bytes without "
                                   "'{', '}' or control characters",
                                   o->prefix, REDIS_PREFIX_MAX);
  }
  if (o->lease_ms < 0 || (o->lease_ms > 0 && o->lease_ms < LEASE_MIN_MS) || o->lease_ms > LEASE_MAX_MS)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "redis store: lease_ms %d is outside %d..%d (0: 5000 ms)",
                                 o->lease_ms, LEASE_MIN_MS, LEASE_MAX_MS);
  if (o->history_retention < 0)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "redis store: history_retention %lld us is negative (0: no "
                                 "history; APSCHED_REDIS_HISTORY_FOREVER: keep all)",
                                 (long long)o->history_retention);
  return apsched__redis_parse_url(o->url, addr);
}

/* What a link of a store (or of a registry listing) needs. */
static void link_init(redis_link *l, const redis_addr *a, const char *prefix, int lease_ms) {
  *l = (redis_link){.addr = a, .prefix = prefix};
  l->timeout_ms = lease_ms < 1000 ? 1000 : lease_ms;
}

int apsched_redis_store_create(const apsched_redis_options *opts, apsched_jobstore **out,
                               char *errbuf, size_t errlen) {
  if (out) *out = NULL;
  redis_addr addr;
  int rc = out ? check_options(opts, &addr)
               : apsched__pstore_error(APSCHED_EINVAL, "redis store: out is NULL");
  redis_store *rs = NULL;
  if (rc == APSCHED_OK) {
    rs = calloc(1, sizeof *rs);
    if (!rs) apsched__redis_addr_free(&addr);
  }
  if (rc == APSCHED_OK && rs) {
    rs->base.vtable = &redis_vtable;
    rs->addr = addr;
    pthread_mutex_init(&rs->mu, NULL);
    pthread_mutex_init(&rs->start_mu, NULL);
    rs->lease_ms = opts->lease_ms ? opts->lease_ms : 5000;
    rs->history_retention = opts->history_retention;
    atomic_init(&rs->look_for_waiting, true);
    rs->prefix = strdup(opts->prefix ? opts->prefix : "apsched");
    if (opts->scheduler_name) rs->scheduler_name = strdup(opts->scheduler_name);
    if (rs->prefix) snprintf(rs->root, sizeof rs->root, "{%s}", rs->prefix);
    link_init(&rs->link, &rs->addr, rs->prefix, rs->lease_ms);
    link_init(&rs->start, &rs->addr, rs->prefix, rs->lease_ms);
    link_init(&rs->hb, &rs->addr, rs->prefix, rs->lease_ms);
    link_init(&rs->sub, &rs->addr, rs->prefix, rs->lease_ms);
    snprintf(rs->where, sizeof rs->where, "redis prefix '%.120s'", rs->prefix ? rs->prefix : "");
    /* A start recorded ahead holds for a quarter lease, 250 ms at most:
     * far inside the 2 x lease others wait, and a short loss window. */
    int64_t window = (int64_t)rs->lease_ms * 1000 / 4;
    rs->starts = (store_starts){.mu = &rs->mu, .write_mu = &rs->start_mu, .claims = &rs->claims,
                                .window = window < 250000 ? window : 250000, .wake_fd = -1,
                                .where = rs->where, .write = apsched__redis_group_write, .store = rs};
  }
  if (rc == APSCHED_OK && (!rs || !rs->prefix || (opts->scheduler_name && !rs->scheduler_name)))
    rc = oom();
  if (rc == APSCHED_OK) rc = apsched__redis_check_layout(&rs->link, rs->root, opts->existing_only);
  if (rc != APSCHED_OK) {
    if (rs) redis_destroy(&rs->base);
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s", apsched__pstore_last_error());
    return rc;
  }
  *out = &rs->base;
  return APSCHED_OK;
}

/* ------------------------------------------------------------- registry */

static int list(redis_link *l, const char *root,
                int (*visit)(const apsched_redis_scheduler *, void *), void *ud) {
  int rc = apsched__redis_check_layout(l, root, true);
  if (rc != APSCHED_OK) return rc;
  redisReply *r = apsched__redis_script(l, S_LIST, root, 0, NULL, NULL, "listing the schedulers", &rc);
  if (!r) return rc;
  size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements / 10 : 0;
  apsched_redis_scheduler *v = calloc(n ? n : 1, sizeof *v);
  if (!v) {
    apsched__redis_reply_free(r);
    return oom();
  }
  for (size_t i = 0; i < n; i++) {
    redisReply **e = r->element + 10 * i;
    v[i] = (apsched_redis_scheduler){
        .id = e[0]->str, .name = e[1]->type == REDIS_REPLY_STRING ? e[1]->str : NULL,
        .host = e[2]->str, .pid = atoi(e[3]->str), .started_at = strtoll(e[4]->str, NULL, 10),
        .heartbeat_at = strtoll(e[5]->str, NULL, 10), .lease_ms = atoi(e[6]->str),
        .alive = e[7]->integer != 0, .claimed = (unsigned long)e[8]->integer,
        .running = (unsigned long)e[9]->integer};
  }
  /* Live ones first, then by start, then by id. */
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0; j--) {
      apsched_redis_scheduler *a = &v[j - 1], *b = &v[j];
      bool after = a->alive != b->alive ? b->alive
                   : a->started_at != b->started_at ? a->started_at > b->started_at
                                                    : strcmp(a->id, b->id) > 0;
      if (!after) break;
      apsched_redis_scheduler t = *a;
      *a = *b;
      *b = t;
    }
  for (size_t i = 0; i < n; i++)
    if (visit(&v[i], ud) != 0) break;
  free(v);
  apsched__redis_reply_free(r);
  return APSCHED_OK;
}

int apsched_redis_schedulers(const apsched_redis_options *opts,
                             int (*visit)(const apsched_redis_scheduler *sch, void *ud), void *ud,
                             char *errbuf, size_t errlen) {
  redis_addr addr;
  int rc = check_options(opts, &addr);
  if (rc == APSCHED_OK && !visit) {
    apsched__redis_addr_free(&addr);
    rc = apsched__pstore_error(APSCHED_EINVAL, "redis store: visit is NULL");
  }
  if (rc == APSCHED_OK) {
    const char *prefix = opts->prefix ? opts->prefix : "apsched";
    char root[REDIS_PREFIX_MAX + 3];
    snprintf(root, sizeof root, "{%s}", prefix);
    redis_link l;
    link_init(&l, &addr, prefix, opts->lease_ms);
    rc = list(&l, root, visit, ud);
    apsched__redis_disconnect(&l);
    apsched__redis_addr_free(&addr);
  }
  if (rc != APSCHED_OK && errbuf && errlen)
    snprintf(errbuf, errlen, "%s", apsched__pstore_last_error());
  return rc;
}

const char *apsched__redis_store_id(apsched_jobstore *st) { return as_redis(st)->id; }
const char *apsched__redis_store_prefix(apsched_jobstore *st) { return as_redis(st)->prefix; }
