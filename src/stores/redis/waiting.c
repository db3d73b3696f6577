/* Runs that wait (contract version 5), as the PostgreSQL store keeps them:
 * a run due (or asked for: run now, backfill) while its job has
 * max_instances runs in progress across the schedulers waits on the
 * server, under its overlap policy, for a free slot; any scheduler starts
 * it then, and it outlives the scheduler that made it wait. A waiting run
 * is a hash {P}:wait:ID:TOKEN (its times, the job as it was) in the job's
 * sorted set {P}:waiting:ID; {P}:waitjobs lists the jobs with some.
 *
 * The scripts (scripts.c: S_WAIT, S_ADD, S_TAKE) decide atomically. A job
 * whose claim key is held is in some scheduler's batch, whose commit may
 * record runs of it: S_TAKE leaves it for later, S_ADD answers "claimed"
 * and is tried again. Whoever ends a run of a job with waiting runs wakes
 * every scheduler (S_CLOSE's PUBLISH); a batch that made a run wait wakes
 * them after its commit, when its claims are gone. Only after such a
 * message (or a heartbeat) does claim_waiting look at all.
 *
 * cancel_other and terminate_other mark the oldest running run of the job
 * (stop_request) and, when another scheduler runs it, add its key to that
 * scheduler's {P}:stops:OWNER and PUBLISH "stop": that scheduler reads
 * them (S_STOPS) on its heartbeat thread at once, or at its next beat. */
#include "redis_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int oom(void) { return apsched__pstore_error(APSCHED_ENOMEM, "redis store: out of memory"); }

/* The arguments of an S_WAIT or S_ADD call being built: the head values
 * first, then the run (call_run), with the texts of the numbers. */
typedef struct run_call {
  const char **argv;
  size_t *lens, k;
  char max_instances[16], max_runtime[16], grace[16], keep[24], limit[16], count[24];
  char (*times)[24];
} run_call;

static void call_push(run_call *c, const char *v, size_t len) {
  c->argv[c->k] = v;
  c->lens[c->k++] = len;
}

/* Room for the head (8 values at most), the run's job (8 values), its
 * count and its n times, and the texts both scripts take (limit, grace,
 * keep, max_instances). false when memory is short. */
static bool call_begin(run_call *c, const redis_store *rs, const apsched_job_record *rec,
                       bool on_demand, size_t n) {
  *c = (run_call){0};
  size_t cap = 8 + 8 + 1 + n;
  c->argv = malloc(cap * sizeof *c->argv);
  c->lens = malloc(cap * sizeof *c->lens);
  c->times = malloc(n * sizeof *c->times);
  if (!c->argv || !c->lens || !c->times) return false;
  snprintf(c->limit, sizeof c->limit, "%d", APSCHED_BUFFER_ALL_LIMIT);
  /* "": unlimited, as on demand. */
  if (on_demand || rec->misfire_grace_ms == UINT32_MAX) c->grace[0] = '\0';
  else snprintf(c->grace, sizeof c->grace, "%" PRIu32, rec->misfire_grace_ms);
  apsched__redis_history_keep(rs, c->keep, sizeof c->keep);
  snprintf(c->max_instances, sizeof c->max_instances, "%u", apsched__redis_instance_limit(rec));
  snprintf(c->max_runtime, sizeof c->max_runtime, "%" PRIu32, rec->max_runtime_ms);
  snprintf(c->count, sizeof c->count, "%zu", n);
  return true;
}

/* Appends the job's 8 values, the count and the times. */
static void call_run(run_call *c, const apsched_job_record *rec, const apsched_time_t *times,
                     size_t n) {
  size_t arglen = 0;
  const void *arg = apsched_job_args_bytes(rec->args, &arglen);
  const char *values[8] = {rec->name ? "1" : "0", rec->name ? rec->name : "", rec->func->name,
                           rec->executor, NULL, c->max_instances, c->max_runtime,
                           apsched__redis_delivery_text(rec)};
  for (int i = 0; i < 8; i++) {
    if (i == 4) call_push(c, arglen ? arg : "", arglen); /* the bytes, as they are */
    else call_push(c, values[i], strlen(values[i]));
  }
  call_push(c, c->count, strlen(c->count));
  for (size_t i = 0; i < n; i++) {
    snprintf(c->times[i], sizeof c->times[i], "%" PRId64, times[i]);
    call_push(c, c->times[i], strlen(c->times[i]));
  }
}

static void call_end(run_call *c) {
  free(c->argv);
  free(c->lens);
  free(c->times);
}

/* What a wait_run reply ({'ok', waiting, replaced, stop time, stop here}
 * at element at) says, into out; APSCHED_EBUSY for {'full'} / {'taken'}. */
static int waited(redis_store *rs, const apsched_job_record *rec, const redisReply *r,
                  apsched_runs_waiting *out) {
  const char *what = r->element[0]->str;
  if (strcmp(what, "full") == 0)
    return apsched__pstore_error(APSCHED_EBUSY,
                                 "redis prefix '%s': job '%.64s': %d runs wait already (overlap "
                                 "policy buffer_all)",
                                 rs->prefix, rec->id, APSCHED_BUFFER_ALL_LIMIT);
  if (strcmp(what, "taken") == 0)
    return apsched__pstore_error(APSCHED_EBUSY,
                                 "redis prefix '%s': job '%.64s': a run at one of these times is "
                                 "already recorded",
                                 rs->prefix, rec->id);
  if (strcmp(what, "ok") != 0 || r->elements != 5)
    return apsched__redis_fail(&rs->link, "keeping a run waiting", "unexpected reply");
  out->waiting = (unsigned)r->element[1]->integer;
  if (r->element[2]->len) out->replaced = strtoll(r->element[2]->str, NULL, 10);
  if (r->element[3]->len) out->stop_time = strtoll(r->element[3]->str, NULL, 10);
  out->stop_here = r->element[4]->integer == 1;
  return APSCHED_OK;
}

int apsched__redis_runs_wait(redis_store *rs, const apsched_job_record *rec,
                             const apsched_time_t *times, size_t n, apsched_runs_waiting *out) {
  *out = (apsched_runs_waiting){.replaced = APSCHED_TIME_NONE, .stop_time = APSCHED_TIME_NONE};
  const char *policy = apsched__pstore_wait_policy(rec);
  if (!policy)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "runs_wait: the runs of job '%.64s' do not wait (its overlap "
                                 "policy is neither buffer_one, buffer_all, cancel_other nor "
                                 "terminate_other)",
                                 rec->id);
  run_call c;
  bool ok = call_begin(&c, rs, rec, false, n);
  if (ok) {
    const char *head[7] = {rs->id, rec->id, policy, "0", c.limit, c.grace, c.keep};
    for (int i = 0; i < 7; i++) call_push(&c, head[i], strlen(head[i]));
    call_run(&c, rec, times, n);
  }
  int rc = ok ? APSCHED_OK : oom();
  redisReply *r = NULL;
  if (ok) r = apsched__redis_script(&rs->link, S_WAIT, rs->root, (int)c.k, c.argv, c.lens,
                                    "keeping a run waiting", &rc);
  if (r && (r->type != REDIS_REPLY_ARRAY || r->elements < 1))
    rc = apsched__redis_fail(&rs->link, "keeping a run waiting", "unexpected reply");
  else if (r)
    rc = waited(rs, rec, r, out);
  apsched__redis_reply_free(r);
  call_end(&c);
  if (rc == APSCHED_OK) {
    rs->batch_waits = true;
    atomic_store(&rs->look_for_waiting, true);
  }
  return rc;
}

/* S_ADD's answer "claimed": a batch holds the job for a few milliseconds. */
enum { ADD_TRIES = 200, ADD_PAUSE_US = 2000 };

int apsched__redis_runs_add(redis_store *rs, const apsched_job_record *rec,
                            const apsched_time_t *times, size_t n, bool *track,
                            apsched_runs_waiting *out) {
  *out = (apsched_runs_waiting){.replaced = APSCHED_TIME_NONE, .stop_time = APSCHED_TIME_NONE};
  *track = false;
  const char *policy = apsched__pstore_wait_policy(rec);
  run_call c;
  bool ok = call_begin(&c, rs, rec, true, n);
  if (ok) {
    const char *head[8] = {rs->id, rec->id, policy ? "1" : "0", policy ? policy : "skip",
                           c.limit, c.grace, c.keep, c.max_instances};
    for (int i = 0; i < 8; i++) call_push(&c, head[i], strlen(head[i]));
    call_run(&c, rec, times, n);
  }
  int rc = ok ? APSCHED_OK : oom();
  redisReply *r = NULL;
  for (int i = 0; ok && i < ADD_TRIES; i++) {
    r = apsched__redis_script(&rs->link, S_ADD, rs->root, (int)c.k, c.argv, c.lens,
                              "recording a run on demand", &rc);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        strcmp(r->element[0]->str, "claimed") != 0)
      break;
    apsched__redis_reply_free(r);
    r = NULL;
    struct timespec pause = {0, ADD_PAUSE_US * 1000};
    nanosleep(&pause, NULL);
  }
  if (ok && rc == APSCHED_OK && !r)
    rc = apsched__pstore_error(APSCHED_EBACKEND,
                               "redis prefix '%s': job '%.64s' stayed claimed by a scheduler's "
                               "batch for %d ms: try again",
                               rs->prefix, rec->id, ADD_TRIES * ADD_PAUSE_US / 1000);
  if (r && (r->type != REDIS_REPLY_ARRAY || r->elements < 1)) {
    rc = apsched__redis_fail(&rs->link, "recording a run on demand", "unexpected reply");
  } else if (r) {
    const char *what = r->element[0]->str;
    if (strcmp(what, "missing") == 0) {
      rc = apsched__pstore_error(APSCHED_ENOENT, "no job '%.64s'", rec->id);
    } else if (strcmp(what, "busy") == 0) {
      rc = apsched__pstore_error(APSCHED_EBUSY,
                                 "redis prefix '%s': job '%.64s': %s of its at most %s instances "
                                 "are in progress across schedulers",
                                 rs->prefix, rec->id, r->element[1]->str, c.max_instances);
    } else if (strcmp(what, "open") == 0 && r->elements == 2) {
      /* Recorded: this scheduler's claim at once (no batch commits it). */
      int64_t token = strtoll(r->element[1]->str, NULL, 10);
      pthread_mutex_lock(&rs->mu);
      for (size_t i = 0; i < n; i++) {
        store_claim *claim = apsched__pstore_claim_new(rec->id, times[i], 1, token);
        if (claim) apsched__pstore_claims_put(&rs->claims, claim);
        /* (Short of memory, its start is refused: reported, not run twice.) */
      }
      pthread_mutex_unlock(&rs->mu);
      *track = true;
    } else {
      rc = waited(rs, rec, r, out);
      if (rc == APSCHED_OK) atomic_store(&rs->look_for_waiting, true);
    }
  }
  apsched__redis_reply_free(r);
  call_end(&c);
  return rc;
}

enum { TAKE_HEAD = 14 };

int apsched__redis_waiting_take(redis_store *rs, apsched_waited_run *out, size_t max) {
  char limit[24];
  snprintf(limit, sizeof limit, "%zu", max);
  const char *argv[2] = {rs->id, limit};
  int rc;
  redisReply *r = apsched__redis_script(&rs->link, S_TAKE, rs->root, 2, argv, NULL,
                                        "starting waiting runs", &rc);
  if (!r) return rc;
  if (r->type != REDIS_REPLY_ARRAY) {
    apsched__redis_reply_free(r);
    return apsched__redis_fail(&rs->link, "starting waiting runs", "unexpected reply");
  }
  size_t n = 0;
  for (size_t i = 0; i + TAKE_HEAD <= r->elements && n < max;) {
    redisReply **v = r->element + i;
    size_t ntimes = (size_t)strtoull(v[13]->str, NULL, 10);
    if (ntimes == 0 || i + TAKE_HEAD + ntimes > r->elements) break;
    int64_t token = strtoll(v[1]->str, NULL, 10);
    /* apsched__redis_run_record's 12 values: id, time, attempt, token, then
     * the job's 8 (v[2..9]). */
    redisReply *first_time = r->element[i + TAKE_HEAD];
    redisReply one = {.type = REDIS_REPLY_STRING, .str = (char *)"1", .len = 1};
    redisReply *vals[12] = {v[0], first_time, &one, v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                            v[8], v[9]};
    apsched_job_record *rec = apsched__redis_run_record(rs, vals);
    apsched_time_t *times = malloc(ntimes * sizeof *times);
    bool noted = rec && times;
    for (size_t t = 0; noted && t < ntimes; t++) {
      times[t] = strtoll(r->element[i + TAKE_HEAD + t]->str, NULL, 10);
      store_claim *c = apsched__pstore_claim_new(rec->id, times[t], 1, token);
      if (c) {
        c->next = rs->pending;
        rs->pending = c;
      }
      noted = c != NULL;
    }
    if (!noted) {
      /* Short of memory: recorded as this scheduler's, never started;
       * claim_orphans offers it again once it is in doubt. */
      pthread_mutex_lock(&rs->mu);
      for (size_t t = 0; t < ntimes; t++) {
        store_claim *c = apsched__pstore_claim_new(v[0]->str,
                                                   strtoll(r->element[i + TAKE_HEAD + t]->str, NULL, 10),
                                                   1, token);
        if (c) {
          c->next = rs->doubt;
          rs->doubt = c;
        }
      }
      pthread_mutex_unlock(&rs->mu);
      apsched_job_record_free(rec);
      free(times);
    } else {
      if (v[10]->len) {
        long long grace = strtoll(v[10]->str, NULL, 10);
        rec->misfire_grace_ms = (uint32_t)(grace >= 0 && grace < UINT32_MAX ? grace : UINT32_MAX);
      }
      rec->overlap = (uint8_t)apsched__pstore_wait_overlap(v[12]->str);
      out[n++] = (apsched_waited_run){.rec = rec, .times = times, .n = ntimes,
                                      .on_demand = strcmp(v[11]->str, "1") == 0};
    }
    i += TAKE_HEAD + ntimes;
  }
  apsched__redis_reply_free(r);
  return (int)n;
}

int apsched__redis_stops_read(redis_store *rs) {
  const char *argv[1] = {rs->id};
  int rc;
  redisReply *r = apsched__redis_script(&rs->hb, S_STOPS, rs->root, 1, argv, NULL,
                                        "reading requests to stop runs", &rc);
  if (!r) return rc;
  pthread_mutex_lock(&rs->mu);
  apsched_scheduler *s = rs->sched;
  pthread_mutex_unlock(&rs->mu);
  /* Not under mu: close() joins this thread, and the scheduler lives until
   * close returns. */
  for (size_t i = 0; s && rs->b.alias && r->type == REDIS_REPLY_ARRAY && i + 3 <= r->elements; i += 3)
    apsched_store_stop_run(s, rs->b.alias, r->element[i]->str,
                           strtoll(r->element[i + 1]->str, NULL, 10),
                           strcmp(r->element[i + 2]->str, "terminate") == 0);
  apsched__redis_reply_free(r);
  return APSCHED_OK;
}
