/* A job store that wraps another one to misbehave on purpose: it fails the
 * N-th call (fault injection), or declares itself blocking and blocks every
 * call on a gate a test opens (a slow or dead database). Header-only, for
 * the conformance kit and the scheduler's tests. */
#ifndef APSCHED_TEST_WRAPPED_STORE_H
#define APSCHED_TEST_WRAPPED_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "apsched_plugin.h"

typedef struct wrapped_store {
  apsched_jobstore base;
  apsched_jobstore_vtable vt; /* the inner vtable's kind, plus the flags asked for */
  apsched_jobstore *inner;
  /* Fault injection: call number fail_at (1-based, counted from the last
   * wrapped_fail_at) fails with fail_rc without reaching the inner store;
   * fail_every makes every call from then on fail. */
  atomic_long calls;
  atomic_long fail_at;
  atomic_bool fail_every;
  int fail_rc;
  /* Blocking: while gate_closed, every call waits (counted in waiting). */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool gate_closed;
  int waiting;
  /* The same for release calls only (a loop caught in the middle of a batch). */
  bool release_gate_closed;
  int release_waiting;
  atomic_long total_calls;
  /* The next release fails (once): the inner store keeps the job's times
   * and commits its batch as it stands. */
  atomic_bool fail_release;
  /* runs_closed fails while set (and counts its calls). */
  atomic_bool fail_closed;
  atomic_long closed_calls; /* runs_closed and runs_closed_in_batch */
  atomic_long closed_in_batch_calls;
} wrapped_store;

static inline wrapped_store *as_wrapped(apsched_jobstore *st) { return (wrapped_store *)st; }

/* Counts the call, waits at the gate, and says whether it must fail. */
static inline bool wrapped_enter(wrapped_store *w) {
  atomic_fetch_add(&w->total_calls, 1);
  pthread_mutex_lock(&w->lock);
  w->waiting++;
  pthread_cond_broadcast(&w->cond);
  while (w->gate_closed) pthread_cond_wait(&w->cond, &w->lock);
  w->waiting--;
  pthread_mutex_unlock(&w->lock);
  long n = atomic_fetch_add(&w->calls, 1) + 1;
  long at = atomic_load(&w->fail_at);
  bool fail = atomic_load(&w->fail_every) ? n >= at && at > 0 : n == at;
  if (fail) apsched_plugin_error(w->fail_rc, "injected failure of call %ld", n);
  return fail;
}

static inline int ws_add(apsched_jobstore *st, apsched_job_record *const *recs, size_t n,
                         const bool *replace, size_t *failed) {
  wrapped_store *w = as_wrapped(st);
  if (wrapped_enter(w)) {
    if (failed) *failed = n;
    return w->fail_rc;
  }
  return w->inner->vtable->add(w->inner, recs, n, replace, failed);
}
static inline int ws_lookup(apsched_jobstore *st, const char *id, const apsched_job_record **out) {
  wrapped_store *w = as_wrapped(st);
  if (wrapped_enter(w)) return w->fail_rc;
  return w->inner->vtable->lookup(w->inner, id, out);
}
static inline int ws_update(apsched_jobstore *st, apsched_job_record *rec) {
  wrapped_store *w = as_wrapped(st);
  if (wrapped_enter(w)) return w->fail_rc;
  return w->inner->vtable->update(w->inner, rec);
}
static inline int ws_remove(apsched_jobstore *st, const char *id) {
  wrapped_store *w = as_wrapped(st);
  if (wrapped_enter(w)) return w->fail_rc;
  return w->inner->vtable->remove(w->inner, id);
}
static inline int ws_remove_all(apsched_jobstore *st) {
  wrapped_store *w = as_wrapped(st);
  if (wrapped_enter(w)) return w->fail_rc;
  return w->inner->vtable->remove_all(w->inner);
}
static inline int ws_next_run_time(apsched_jobstore *st, apsched_time_t *out) {
  wrapped_store *w = as_wrapped(st);
  if (wrapped_enter(w)) return w->fail_rc;
  return w->inner->vtable->next_run_time(w->inner, out);
}
static inline int ws_claim_due(apsched_jobstore *st, apsched_time_t now, apsched_job_record **out,
                               size_t max) {
  wrapped_store *w = as_wrapped(st);
  if (wrapped_enter(w)) return w->fail_rc;
  return w->inner->vtable->claim_due(w->inner, now, out, max);
}
static inline int ws_release(apsched_jobstore *st, apsched_job_record *rec, apsched_time_t next,
                             apsched_time_t trigger_time, bool remove_job) {
  wrapped_store *w = as_wrapped(st);
  pthread_mutex_lock(&w->lock);
  w->release_waiting++;
  pthread_cond_broadcast(&w->cond);
  while (w->release_gate_closed) pthread_cond_wait(&w->cond, &w->lock);
  w->release_waiting--;
  pthread_mutex_unlock(&w->lock);
  bool fail_this = atomic_exchange(&w->fail_release, false);
  if (fail_this) apsched_plugin_error(w->fail_rc, "injected failure of release");
  if (fail_this || wrapped_enter(w)) {
    /* A failed release undoes the claim: the job keeps its times, due again. */
    w->inner->vtable->release(w->inner, rec, rec->next_run_time, rec->trigger_time, false);
    return w->fail_rc;
  }
  return w->inner->vtable->release(w->inner, rec, next, trigger_time, remove_job);
}
/* Passed through, never failed: a wrapper cannot undo what the inner store
 * staged in its batch (it counts as a call, though). */
static inline int ws_commit(apsched_jobstore *st) {
  wrapped_store *w = as_wrapped(st);
  atomic_fetch_add(&w->total_calls, 1);
  atomic_fetch_add(&w->calls, 1);
  return w->inner->vtable->commit(w->inner);
}
/* Run records: runs_closed (and runs_closed_in_batch) may fail (the scheduler keeps the results and
 * retries); runs_open and claim_orphans are passed through and not counted
 * (the numbering of a pass stays claim, release, next run time). */
static inline int ws_runs_open(apsched_jobstore *st, const apsched_job_record *rec,
                               const apsched_time_t *times, size_t n, bool *track) {
  wrapped_store *w = as_wrapped(st);
  return w->inner->vtable->runs_open(w->inner, rec, times, n, track);
}
static inline int ws_runs_closed(apsched_jobstore *st, const apsched_run_result *r, size_t n) {
  wrapped_store *w = as_wrapped(st);
  atomic_fetch_add(&w->closed_calls, 1);
  if (atomic_load(&w->fail_closed))
    return apsched_plugin_error(w->fail_rc, "injected failure of runs_closed");
  if (wrapped_enter(w)) return w->fail_rc;
  return w->inner->vtable->runs_closed(w->inner, r, n);
}
static inline int ws_runs_closed_in_batch(apsched_jobstore *st, const apsched_run_result *r,
                                          size_t n) {
  wrapped_store *w = as_wrapped(st);
  atomic_fetch_add(&w->closed_calls, 1);
  atomic_fetch_add(&w->closed_in_batch_calls, 1);
  if (atomic_load(&w->fail_closed))
    return apsched_plugin_error(w->fail_rc, "injected failure of runs_closed (in the batch)");
  return w->inner->vtable->runs_closed_in_batch(w->inner, r, n);
}
static inline int ws_claim_orphans(apsched_jobstore *st, apsched_orphan_run *out, size_t max) {
  wrapped_store *w = as_wrapped(st);
  return w->inner->vtable->claim_orphans(w->inner, out, max);
}
static inline int ws_foreach(apsched_jobstore *st, int (*fn)(const apsched_job_record *, void *),
                             void *ud) {
  wrapped_store *w = as_wrapped(st);
  if (wrapped_enter(w)) return w->fail_rc;
  return w->inner->vtable->foreach(w->inner, fn, ud);
}
static inline void ws_destroy(apsched_jobstore *st) {
  wrapped_store *w = as_wrapped(st);
  w->inner->vtable->destroy(w->inner);
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->cond);
  free(w);
}

/* Wraps inner (taken over). flags: APSCHED_STORE_BLOCKING or 0. */
static inline wrapped_store *wrapped_store_new(apsched_jobstore *inner, unsigned flags) {
  wrapped_store *w = calloc(1, sizeof *w);
  w->inner = inner;
  w->vt = (apsched_jobstore_vtable){
      .version = APSCHED_JOBSTORE_VTABLE_VERSION, .kind = inner->vtable->kind, .flags = flags,
      .destroy = ws_destroy, .add = ws_add, .lookup = ws_lookup, .update = ws_update,
      .remove = ws_remove, .remove_all = ws_remove_all, .next_run_time = ws_next_run_time,
      .claim_due = ws_claim_due, .release = ws_release, .foreach = ws_foreach,
      .commit = inner->vtable->commit ? ws_commit : NULL,
      .runs_open = inner->vtable->runs_open ? ws_runs_open : NULL,
      .runs_closed = inner->vtable->runs_closed ? ws_runs_closed : NULL,
      .runs_closed_in_batch = inner->vtable->version >= 6 && inner->vtable->runs_closed_in_batch
                                  ? ws_runs_closed_in_batch
                                  : NULL,
      .claim_orphans = inner->vtable->claim_orphans ? ws_claim_orphans : NULL};
  w->base.vtable = &w->vt;
  w->fail_rc = APSCHED_EBACKEND;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cond, NULL);
  return w;
}

static inline wrapped_store *wrapped_memory_store(unsigned flags) {
  apsched_jobstore *inner;
  if (apsched_memory_store_create(&inner) != APSCHED_OK) return NULL;
  return wrapped_store_new(inner, flags);
}

/* The n-th call from now fails (0: none); every: and all calls after it. */
static inline void wrapped_fail_at(wrapped_store *w, long n, bool every) {
  atomic_store(&w->calls, 0);
  atomic_store(&w->fail_every, every);
  atomic_store(&w->fail_at, n);
}

static inline long wrapped_calls(wrapped_store *w) { return atomic_load(&w->calls); }

static inline void wrapped_gate(wrapped_store *w, bool closed) {
  pthread_mutex_lock(&w->lock);
  w->gate_closed = closed;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

static inline void wrapped_gate_release(wrapped_store *w, bool closed) {
  pthread_mutex_lock(&w->lock);
  w->release_gate_closed = closed;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

/* Waits until a release is blocked at the closed release gate. */
static inline void wrapped_wait_release_blocked(wrapped_store *w) {
  pthread_mutex_lock(&w->lock);
  while (w->release_waiting == 0) pthread_cond_wait(&w->cond, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

/* Waits until some call is blocked at the closed gate. */
static inline void wrapped_wait_blocked(wrapped_store *w) {
  pthread_mutex_lock(&w->lock);
  while (w->waiting == 0) pthread_cond_wait(&w->cond, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

#endif
