/* The job store conformance kit: every store must pass it. Give it a
 * factory of fresh, empty stores; store_kit_run() checks the whole contract
 * of apsched_plugin.h through the vtable (batch add, upsert, lookup, update,
 * remove, ordering, claims and release, paused jobs, ids), then through a
 * scheduler with faults injected into the store: every mutating API call
 * fails cleanly at every store call it makes (nothing changes, nothing is
 * announced), and the loop survives a failing store (events, backoff, no run
 * lost, none doubled); and the schedule policies (kit_policies.h).
 *
 *   static apsched_jobstore *make(void *ud) { ... }
 *   store_kit kit = {"sqlite", make, NULL};
 *   return store_kit_run(&kit);
 */
#ifndef APSCHED_TEST_STORE_CONFORMANCE_H
#define APSCHED_TEST_STORE_CONFORMANCE_H

#include "support.h"
#include "wrapped_store.h"
#include "internal.h"

typedef struct store_kit {
  const char *name;
  apsched_jobstore *(*create)(void *ud); /* a fresh, empty store */
  void *ud;
  /* Stores that keep run records (vtable runs_open ...) and outlive their
   * process give both, for the at-least-once tests: where st keeps its data
   * (malloc'd: a path, a schema), and a new store on that data, as the next
   * process would open it. NULL: those tests are skipped (memory). */
  char *(*locate)(void *ud, apsched_jobstore *st);
  apsched_jobstore *(*open_at)(void *ud, const char *where);
  /* Shared stores (many schedulers on one database) give this too: makes
   * the scheduler of st look dead to the others now, while st lives on (a
   * stall past its lease). Its own heartbeat may revive it at any time.
   * NULL: the tests of stale schedulers are skipped. */
  void (*stall)(void *ud, apsched_jobstore *st);
} store_kit;

/* ------------------------------------------------------------- records */

/* The run counter of the kit scheduler in use. Runs are counted through the
 * job's byte argument "count", not a pointer argument, which a persistent
 * store cannot keep. */
static _Atomic(atomic_int *) kit_counter;

static int kit_job(apsched_run_ctx *run) {
  size_t len = 0;
  const void *bytes = apsched_run_arg_bytes(run, &len);
  atomic_int *runs = atomic_load(&kit_counter);
  if (runs && len == 5 && memcmp(bytes, "count", 5) == 0) atomic_fetch_add(runs, 1);
  return 0;
}

/* Registered by name, as a persistent store needs to keep the kit's jobs. */
#define KIT_JOB_NAME "store_kit.job"

/* A record as the scheduler builds it: an interval trigger, a name, a byte
 * argument, non-default settings. next NONE: paused. */
static inline apsched_job_record *kit_record(const char *id, apsched_time_t next) {
  apsched_job_record *r = apsched__record_new(id);
  assert_non_null(r);
  r->trigger = every(10 * APSCHED_SEC, T0);
  r->func = apsched__func_by_ptr(kit_job);
  r->name = apsched__strdup("kit job");
  r->executor = "default";
  bool oom;
  r->args = apsched__args_new(NULL, NULL, "bytes\0x", 7, &oom);
  r->misfire_grace_ms = 2500;
  r->max_runtime_ms = 750;
  r->max_instances = 3;
  r->flags = APSCHED_JOB_COALESCE;
  r->next_run_time = next;
  r->trigger_time = next;
  return r;
}

static inline apsched_jobstore *kit_store(void **state) {
  const store_kit *kit = *state;
  apsched_jobstore *st = kit->create(kit->ud);
  assert_non_null(st);
  assert_int_equal(st->vtable->version, APSCHED_JOBSTORE_VTABLE_VERSION);
  return st;
}

static inline int kit_add1(apsched_jobstore *st, apsched_job_record *rec, bool replace) {
  return st->vtable->add(st, &rec, 1, &replace, NULL);
}

static inline const apsched_job_record *kit_lookup(apsched_jobstore *st, const char *id) {
  const apsched_job_record *r = NULL;
  int rc = st->vtable->lookup(st, id, &r);
  if (rc == APSCHED_ENOENT) return NULL;
  assert_int_equal(rc, APSCHED_OK);
  assert_non_null(r);
  return r;
}

static inline apsched_time_t kit_next(apsched_jobstore *st) {
  apsched_time_t t = 0;
  assert_int_equal(st->vtable->next_run_time(st, &t), APSCHED_OK);
  return t;
}

/* Every field a store must keep. */
static inline void kit_assert_same(const apsched_job_record *a, const apsched_job_record *b) {
  assert_string_equal(a->id, b->id);
  assert_int_equal(a->next_run_time, b->next_run_time);
  assert_int_equal(a->trigger_time, b->trigger_time);
  assert_true(apsched_trigger_equal(a->trigger, b->trigger));
  assert_ptr_equal(a->func, b->func);
  assert_string_equal(a->name ? a->name : "", b->name ? b->name : "");
  assert_string_equal(a->executor, b->executor);
  size_t la, lb;
  const void *ba = apsched_job_args_bytes(a->args, &la), *bb = apsched_job_args_bytes(b->args, &lb);
  assert_int_equal(la, lb);
  if (la) assert_memory_equal(ba, bb, la);
  assert_int_equal(a->misfire_grace_ms, b->misfire_grace_ms);
  assert_int_equal(a->max_runtime_ms, b->max_runtime_ms);
  assert_int_equal(a->max_instances, b->max_instances);
  assert_int_equal(a->flags & APSCHED_JOB_COALESCE, b->flags & APSCHED_JOB_COALESCE);
}

/* ------------------------------------------------- the contract, directly */

static void kit_add_lookup(void **state) {
  apsched_jobstore *st = kit_store(state);
  assert_null(kit_lookup(st, "a"));
  assert_int_equal(kit_next(st), APSCHED_TIME_NONE);
  apsched_job_record *recs[3] = {kit_record("a", T0 + 3), kit_record("b", T0 + 1),
                                 kit_record("c", APSCHED_TIME_NONE)};
  apsched_job_record *want[3];
  for (int i = 0; i < 3; i++) want[i] = apsched_job_record_copy(recs[i]);
  size_t failed = 99;
  assert_int_equal(st->vtable->add(st, recs, 3, NULL, &failed), APSCHED_OK);
  for (int i = 0; i < 3; i++) {
    const apsched_job_record *got = kit_lookup(st, want[i]->id);
    assert_non_null(got);
    kit_assert_same(got, want[i]);
    apsched_job_record_free(want[i]);
  }
  assert_int_equal(kit_next(st), T0 + 1);
  assert_int_equal(st->vtable->remove(st, "nope"), APSCHED_ENOENT);
  st->vtable->destroy(st);
}

static void kit_batch_all_or_nothing(void **state) {
  apsched_jobstore *st = kit_store(state);
  assert_int_equal(kit_add1(st, kit_record("a", T0), false), APSCHED_OK);
  /* A stored id in the middle of a batch fails all of it, naming it. */
  apsched_job_record *b1[3] = {kit_record("b", T0), kit_record("a", T0 + 9), kit_record("c", T0)};
  size_t failed = 99;
  assert_int_equal(st->vtable->add(st, b1, 3, NULL, &failed), APSCHED_EEXIST);
  assert_int_equal(failed, 1);
  assert_null(kit_lookup(st, "b"));
  assert_null(kit_lookup(st, "c"));
  assert_int_equal(kit_lookup(st, "a")->next_run_time, T0);
  for (int i = 0; i < 3; i++) apsched_job_record_free(b1[i]); /* still the caller's */
  /* An id repeated within the batch fails too, unless the repeat replaces. */
  apsched_job_record *b2[2] = {kit_record("d", T0), kit_record("d", T0 + 1)};
  assert_int_equal(st->vtable->add(st, b2, 2, NULL, &failed), APSCHED_EEXIST);
  assert_int_equal(failed, 1);
  assert_null(kit_lookup(st, "d"));
  bool rep[2] = {false, true};
  assert_int_equal(st->vtable->add(st, b2, 2, rep, &failed), APSCHED_OK);
  assert_int_equal(kit_lookup(st, "d")->next_run_time, T0 + 1);
  st->vtable->destroy(st);
}

static void kit_upsert(void **state) {
  apsched_jobstore *st = kit_store(state);
  assert_int_equal(kit_add1(st, kit_record("a", T0 + 5), false), APSCHED_OK);
  assert_int_equal(kit_add1(st, kit_record("b", T0 + 6), false), APSCHED_OK);
  apsched_job_record *dup = kit_record("a", T0 + 1);
  assert_int_equal(kit_add1(st, dup, false), APSCHED_EEXIST);
  apsched_job_record_free(dup);
  /* An upsert replaces in one step: the queue follows the new time. */
  apsched_job_record *up = kit_record("a", T0 + 9);
  free(up->name);
  up->name = apsched__strdup("replaced");
  assert_int_equal(kit_add1(st, up, true), APSCHED_OK);
  assert_string_equal(kit_lookup(st, "a")->name, "replaced");
  assert_int_equal(kit_next(st), T0 + 6);
  /* Upserting a paused job over a queued one takes it out of the queue. */
  assert_int_equal(kit_add1(st, kit_record("b", APSCHED_TIME_NONE), true), APSCHED_OK);
  assert_int_equal(kit_next(st), T0 + 9);
  /* An upsert of an id the store does not hold is an add. */
  assert_int_equal(kit_add1(st, kit_record("z", T0 + 2), true), APSCHED_OK);
  assert_int_equal(kit_next(st), T0 + 2);
  st->vtable->destroy(st);
}

static void kit_update_remove(void **state) {
  apsched_jobstore *st = kit_store(state);
  assert_int_equal(kit_add1(st, kit_record("a", T0 + 5), false), APSCHED_OK);
  assert_int_equal(kit_add1(st, kit_record("b", T0 + 7), false), APSCHED_OK);
  apsched_job_record *c = apsched_job_record_copy(kit_lookup(st, "a"));
  c->next_run_time = c->trigger_time = T0 + 9;
  c->max_instances = 7;
  assert_int_equal(st->vtable->update(st, c), APSCHED_OK); /* the store owns c now */
  assert_int_equal(kit_lookup(st, "a")->max_instances, 7);
  assert_int_equal(kit_next(st), T0 + 7);
  /* Pausing through update takes the job out of the queue. */
  c = apsched_job_record_copy(kit_lookup(st, "b"));
  c->next_run_time = c->trigger_time = APSCHED_TIME_NONE;
  assert_int_equal(st->vtable->update(st, c), APSCHED_OK);
  assert_int_equal(kit_next(st), T0 + 9);
  /* An absent id: ENOENT, and the caller keeps the record. */
  apsched_job_record *ghost = kit_record("ghost", T0);
  assert_int_equal(st->vtable->update(st, ghost), APSCHED_ENOENT);
  assert_null(kit_lookup(st, "ghost"));
  apsched_job_record_free(ghost);
  assert_int_equal(st->vtable->remove(st, "a"), APSCHED_OK);
  assert_int_equal(st->vtable->remove(st, "a"), APSCHED_ENOENT);
  assert_null(kit_lookup(st, "a"));
  assert_int_equal(kit_next(st), APSCHED_TIME_NONE);
  assert_int_equal(st->vtable->remove_all(st), APSCHED_OK);
  assert_null(kit_lookup(st, "b"));
  assert_int_equal(kit_add1(st, kit_record("b", T0), false), APSCHED_OK); /* usable after */
  st->vtable->destroy(st);
}

static void kit_claim_release(void **state) {
  apsched_jobstore *st = kit_store(state);
  apsched_job_record *recs[4] = {kit_record("late", T0 + 30), kit_record("first", T0 + 10),
                                 kit_record("mid", T0 + 20), kit_record("paused", APSCHED_TIME_NONE)};
  assert_int_equal(st->vtable->add(st, recs, 4, NULL, NULL), APSCHED_OK);
  apsched_job_record *out[8];
  assert_int_equal(st->vtable->claim_due(st, T0 + 9, out, 8), 0);
  assert_int_equal(st->vtable->claim_due(st, T0 + 15, out, 8), 1);
  assert_string_equal(out[0]->id, "first");
  /* A claimed job is neither due nor claimable again until released. */
  assert_int_equal(kit_next(st), T0 + 20);
  apsched_job_record *more[8];
  assert_int_equal(st->vtable->claim_due(st, T0 + 15, more, 8), 0);
  assert_int_equal(st->vtable->release(st, out[0], T0 + 40, T0 + 40, false), APSCHED_OK);
  assert_int_equal(kit_lookup(st, "first")->next_run_time, T0 + 40);
  /* Earliest first, at most max. */
  assert_int_equal(st->vtable->claim_due(st, T0 + 100, out, 2), 2);
  assert_string_equal(out[0]->id, "mid");
  assert_string_equal(out[1]->id, "late");
  assert_int_equal(st->vtable->release(st, out[0], APSCHED_TIME_NONE, APSCHED_TIME_NONE, true), APSCHED_OK);
  assert_null(kit_lookup(st, "mid"));
  /* Released with no next time: paused, kept, never claimed. */
  assert_int_equal(st->vtable->release(st, out[1], APSCHED_TIME_NONE, APSCHED_TIME_NONE, false), APSCHED_OK);
  assert_non_null(kit_lookup(st, "late"));
  assert_int_equal(st->vtable->claim_due(st, T0 + 100, out, 8), 1);
  assert_string_equal(out[0]->id, "first");
  assert_int_equal(st->vtable->release(st, out[0], T0 + 50, T0 + 50, false), APSCHED_OK);
  assert_int_equal(kit_next(st), T0 + 50);
  st->vtable->destroy(st);
}

typedef struct kit_seen {
  int count, stop_at;
  bool paused_seen;
} kit_seen;

static int kit_visit(const apsched_job_record *rec, void *ud) {
  kit_seen *k = ud;
  k->count++;
  if (rec->next_run_time == APSCHED_TIME_NONE) k->paused_seen = true;
  return k->count == k->stop_at ? 7 : 0;
}

static void kit_foreach_and_ids(void **state) {
  apsched_jobstore *st = kit_store(state);
  char longid[APSCHED_ID_MAX + 1];
  memset(longid, 'x', APSCHED_ID_MAX);
  longid[APSCHED_ID_MAX] = '\0';
  const char *ids[] = {longid, "caf\xc3\xa9 \xe2\x9c\x93", "it's \"quoted\" ; -- drop", "a/b:c"};
  for (int i = 0; i < 4; i++)
    assert_int_equal(kit_add1(st, kit_record(ids[i], i == 3 ? APSCHED_TIME_NONE : T0 + i), false), APSCHED_OK);
  for (int i = 0; i < 4; i++) assert_non_null(kit_lookup(st, ids[i]));
  kit_seen all = {0};
  assert_int_equal(st->vtable->foreach(st, kit_visit, &all), APSCHED_OK);
  assert_int_equal(all.count, 4);
  assert_true(all.paused_seen);
  kit_seen some = {.stop_at = 2};
  assert_int_equal(st->vtable->foreach(st, kit_visit, &some), 7);
  assert_int_equal(some.count, 2);
  st->vtable->destroy(st);
}

/* ------------------------------------------- through a scheduler, faults */

typedef struct kit_sched {
  fake_clock fc;
  recorder rec;
  apsched_scheduler *s;
  wrapped_store *w;
  atomic_int runs;
} kit_sched;

/* A hosted scheduler (paused unless running) with the kit's store, wrapped
 * for fault injection, as "kit", holding jobs a (due every 10 s), b
 * (paused) and c (a date in an hour). */
static inline void kit_sched_open(void **state, kit_sched *k, bool running) {
  fake_clock_init(&k->fc, T0);
  recorder_init(&k->rec);
  atomic_init(&k->runs, 0);
  atomic_store(&kit_counter, &k->runs);
  apsched_config cfg = {.clock = &k->fc.clock, .timezone = "UTC"};
  assert_int_equal(apsched_create(&cfg, &k->s), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(k->s, ex, "default"), APSCHED_OK);
  apsched_jobstore *inner = kit_store(state);
  k->w = wrapped_store_new(inner, inner->vtable->flags);
  assert_int_equal(apsched_add_jobstore(k->s, &k->w->base, "kit"), APSCHED_OK);
  assert_int_equal(apsched_start_hosted(k->s, !running), APSCHED_OK);
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_date_options d = {.run_date = T0 + APSCHED_HOUR};
  apsched_trigger *date;
  assert_int_equal(apsched_trigger_date(&d, &date), APSCHED_OK);
  apsched_job_options jobs[3] = {
      {.id = "a", .func = kit_job, .arg_bytes = "count", .arg_len = 5, .trigger = t,
       .jobstore = "kit", .misfire_grace_time = APSCHED_GRACE_UNLIMITED},
      {.id = "b", .func = kit_job, .trigger = t, .jobstore = "kit", .paused = true},
      {.id = "c", .func = kit_job, .trigger = date, .jobstore = "kit", .arg_bytes = "xyz", .arg_len = 3}};
  assert_int_equal(apsched_add_jobs(k->s, jobs, 3, NULL), APSCHED_OK);
  apsched_trigger_free(t);
  apsched_trigger_free(date);
  assert_int_equal(apsched_add_listener(k->s, record_event, APSCHED_EVENT_EVERYTHING, &k->rec, NULL),
                   APSCHED_OK);
}

static inline void kit_sched_close(kit_sched *k) {
  wrapped_fail_at(k->w, 0, false);
  apsched_free(k->s);
  atomic_store(&kit_counter, NULL);
  recorder_destroy(&k->rec);
}

/* Everything the API shows of the store's jobs, as one string. */
static inline char *kit_dump(kit_sched *k) {
  wrapped_fail_at(k->w, 0, false);
  apsched_job *jobs;
  size_t n;
  assert_int_equal(apsched_get_jobs(k->s, "kit", &jobs, &n), APSCHED_OK);
  size_t cap = 256 + n * 1024, len = 0;
  char *out = malloc(cap);
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    apsched_job *j = &jobs[i];
    len += (size_t)snprintf(out + len, cap - len, "%s|%s|%s|%s|%s|%lld|%d|%d|%lld|%lld|%d\n", j->id,
                            j->name, j->func_name ? j->func_name : "-", j->trigger, j->executor,
                            (long long)j->next_run_time, j->paused, j->max_instances,
                            (long long)j->misfire_grace_time, (long long)j->max_runtime, j->coalesce);
  }
  apsched_jobs_free(jobs, n);
  return out;
}

typedef int (*kit_op)(apsched_scheduler *s);

static int kit_op_add(apsched_scheduler *s) {
  apsched_job_options o = {.id = "new", .func = kit_job, .jobstore = "kit"};
  return apsched_add_job(s, &o, NULL, 0);
}
static int kit_op_replace(apsched_scheduler *s) {
  apsched_trigger *t = every(APSCHED_MINUTE, T0 + APSCHED_MINUTE);
  apsched_job_options o = {.id = "a", .name = "replaced", .func = kit_job, .jobstore = "kit",
                           .trigger = t, .replace_existing = true};
  int rc = apsched_add_job(s, &o, NULL, 0);
  apsched_trigger_free(t);
  return rc;
}
static int kit_op_batch(apsched_scheduler *s) {
  apsched_job_options o[3] = {{.id = "m1", .func = kit_job, .jobstore = "kit"},
                              {.id = "m2", .func = kit_job, .jobstore = "kit"},
                              {.id = "c", .func = kit_job, .jobstore = "kit", .replace_existing = true}};
  return apsched_add_jobs(s, o, 3, NULL);
}
static int kit_op_modify(apsched_scheduler *s) {
  apsched_job_changes c = {.name = "modified", .max_instances = 9, .set_arg_bytes = true,
                           .arg_bytes = "new", .arg_len = 3};
  return apsched_modify_job(s, "a", "kit", &c);
}
static int kit_op_pause(apsched_scheduler *s) { return apsched_pause_job(s, "a", NULL); }
static int kit_op_resume(apsched_scheduler *s) { return apsched_resume_job(s, "b", "kit"); }
static int kit_op_reschedule(apsched_scheduler *s) {
  apsched_trigger *t = every(APSCHED_HOUR, T0 + 2 * APSCHED_HOUR);
  int rc = apsched_reschedule_job(s, "c", "kit", t);
  apsched_trigger_free(t);
  return rc;
}
static int kit_op_remove(apsched_scheduler *s) { return apsched_remove_job(s, "c", NULL); }
static int kit_op_remove_all(apsched_scheduler *s) { return apsched_remove_all_jobs(s, "kit"); }
static int kit_op_get(apsched_scheduler *s) {
  apsched_job *j;
  int rc = apsched_get_job(s, "a", NULL, &j);
  if (rc == APSCHED_OK) apsched_job_free(j);
  return rc;
}

/* Fails the N-th store call of op for every N until op no longer reaches
 * the fault: each failure changes nothing and announces nothing. */
static inline void kit_fail_every_call(void **state, kit_op op, const char *name) {
  int succeeded_after = 0;
  for (long n = 1; n < 64 && !succeeded_after; n++) {
    kit_sched k;
    kit_sched_open(state, &k, false);
    char *before = kit_dump(&k);
    size_t events = k.rec.n;
    wrapped_fail_at(k.w, n, false);
    int rc = op(k.s);
    long calls = wrapped_calls(k.w);
    char *after = kit_dump(&k);
    if (rc != APSCHED_OK) {
      if (strcmp(before, after) != 0 || k.rec.n != events)
        fail_msg("%s: failing store call %ld (rc %d, %s) changed the jobs or emitted an event:\n"
                 "before:\n%safter:\n%s",
                 name, n, rc, apsched_last_error(), before, after);
      assert_true(strstr(apsched_last_error(), "kit") != NULL); /* names the store */
    } else if (calls < n) {
      succeeded_after = (int)n;
    }
    free(before);
    free(after);
    kit_sched_close(&k);
  }
  assert_true(succeeded_after > 1); /* the op did reach the store */
}

static void kit_failure_atomicity(void **state) {
  kit_fail_every_call(state, kit_op_add, "add_job");
  kit_fail_every_call(state, kit_op_replace, "add_job(replace_existing)");
  kit_fail_every_call(state, kit_op_batch, "add_jobs");
  kit_fail_every_call(state, kit_op_modify, "modify_job");
  kit_fail_every_call(state, kit_op_pause, "pause_job");
  kit_fail_every_call(state, kit_op_resume, "resume_job");
  kit_fail_every_call(state, kit_op_reschedule, "reschedule_job");
  kit_fail_every_call(state, kit_op_remove, "remove_job");
  kit_fail_every_call(state, kit_op_remove_all, "remove_all_jobs");
  kit_fail_every_call(state, kit_op_get, "get_job");
}

/* Drives the loop: for a blocking store its own thread runs the pass. */
static inline void kit_pass(kit_sched *k) {
  int64_t wait;
  assert_int_equal(apsched_process(k->s, &wait), APSCHED_OK);
  assert_int_equal(apsched_wakeup(k->s), APSCHED_OK);
}

static void kit_loop_survives_failing_store(void **state) {
  kit_sched k;
  kit_sched_open(state, &k, true);
  /* Every call fails from now on: the due job does not run, the store's
   * failure is reported once however many passes fail. */
  wrapped_fail_at(k.w, 1, true);
  fake_advance(&k.fc, 10 * APSCHED_SEC);
  kit_pass(&k);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOBSTORE_FAILED, 1));
  int f = recorder_find(&k.rec, APSCHED_EVENT_JOBSTORE_FAILED, 0);
  assert_string_equal(k.rec.ev[f].alias, "kit");
  assert_int_equal(k.rec.ev[f].retval, APSCHED_EBACKEND);
  /* The store's own message; not necessarily call 1's: two failing calls
   * may race to report the outage (seen under TSan with a blocking store). */
  assert_non_null(strstr(k.rec.ev[f].error, "injected failure of call "));
  /* It is retried (after the backoff, which follows the scheduler's clock). */
  for (int i = 0; i < 2000 && wrapped_calls(k.w) < 3; i++) {
    fake_advance(&k.fc, APSCHED_SEC);
    kit_pass(&k);
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL); /* a blocking store retries on its own thread */
  }
  assert_true(wrapped_calls(k.w) >= 3);
  assert_int_equal(atomic_load(&k.runs), 0);
  assert_int_equal(recorder_count(&k.rec, APSCHED_EVENT_JOBSTORE_FAILED), 1);
  /* It recovers: reported, and the job runs once (coalesced), not twice. */
  wrapped_fail_at(k.w, 0, false);
  fake_advance(&k.fc, 20 * APSCHED_SEC);
  kit_pass(&k);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOBSTORE_RECOVERED, 1));
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(atomic_load(&k.runs), 1);
  kit_sched_close(&k);
}

static void kit_failed_release_runs_nothing(void **state) {
  kit_sched k;
  kit_sched_open(state, &k, true);
  fake_advance(&k.fc, 10 * APSCHED_SEC);
  /* The release fails (the store's batch is still committed): the run must
   * not start, since its advanced next run time is not stored, and a record
   * runs_open made of it must not hold up the retry (max_instances 1). */
  atomic_store(&k.w->fail_release, true);
  kit_pass(&k);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOBSTORE_FAILED, 1));
  assert_non_null(strstr(k.rec.ev[recorder_find(&k.rec, APSCHED_EVENT_JOBSTORE_FAILED, 0)].error,
                         "injected failure of release"));
  assert_int_equal(atomic_load(&k.runs), 0);
  assert_int_equal(recorder_count(&k.rec, APSCHED_EVENT_JOB_SUBMITTED), 0);
  /* The job is still due: the retry runs it exactly once. */
  fake_advance(&k.fc, APSCHED_SEC);
  kit_pass(&k);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOBSTORE_RECOVERED, 1));
  for (int i = 0; i < 3; i++) kit_pass(&k);
  assert_int_equal(atomic_load(&k.runs), 1);
  apsched_job *j;
  assert_int_equal(apsched_get_job(k.s, "a", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + 20 * APSCHED_SEC);
  apsched_job_free(j);
  kit_sched_close(&k);
}

/* ------------------------------------------------ run records (v3) */

static inline bool kit_has_runs(void **state) {
  const store_kit *kit = *state;
  return kit->locate && kit->open_at;
}

/* Destroys st without ending its runs (its process died) and opens its
 * data again. */
static inline apsched_jobstore *kit_reopen(void **state, apsched_jobstore *st) {
  const store_kit *kit = *state;
  char *where = kit->locate(kit->ud, st);
  st->vtable->destroy(st);
  apsched_jobstore *again = kit->open_at(kit->ud, where);
  assert_non_null(again);
  free(where);
  return again;
}

/* Takes over the orphans of st (up to 8) in one committed batch. */
static inline int kit_orphans(apsched_jobstore *st, apsched_orphan_run *out) {
  int n = st->vtable->claim_orphans(st, out, 8);
  assert_true(n >= 0);
  if (n > 0 && st->vtable->commit) assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  return n;
}

static inline void kit_free_orphans(apsched_orphan_run *o, int n) {
  for (int i = 0; i < n; i++) apsched_job_record_free(o[i].rec);
}

/* The vtable contract: runs of an at-least-once job opened in a batch stay
 * open until runs_closed; the next process takes them over as attempt 2,
 * with what it needs to run them; at-most-once runs leave nothing behind. */
static void kit_runs_at_least_once(void **state) {
  if (!kit_has_runs(state)) skip();
  apsched_jobstore *st = kit_store(state);
  assert_non_null(st->vtable->runs_open);
  apsched_job_record *alo = kit_record("alo", T0), *amo = kit_record("amo", T0);
  alo->flags |= APSCHED_JOB_AT_LEAST_ONCE;
  apsched_job_record *recs[2] = {alo, amo};
  assert_int_equal(st->vtable->add(st, recs, 2, NULL, NULL), APSCHED_OK);
  apsched_orphan_run orphans[8];
  assert_int_equal(kit_orphans(st, orphans), 0);
  apsched_job_record *due[4];
  assert_int_equal(st->vtable->claim_due(st, T0, due, 4), 2);
  for (int i = 0; i < 2; i++) {
    /* Two times at once: a job that does not coalesce catching up. */
    apsched_time_t times[2] = {T0 - 10 * APSCHED_SEC, T0};
    bool track = false;
    assert_int_equal(st->vtable->runs_open(st, due[i], times, 2, &track), APSCHED_OK);
    if (due[i]->flags & APSCHED_JOB_AT_LEAST_ONCE) assert_true(track);
    assert_int_equal(st->vtable->release(st, due[i], T0 + 10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC, false),
                     APSCHED_OK);
  }
  if (st->vtable->commit) assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  /* A store that records the start of runs (version 4) keeps at-most-once
   * runs until they end too: these started, so they are lost with the
   * process and not run again. */
  if (st->vtable->version >= 4 && st->vtable->run_starting)
    for (int i = 0; i < 2; i++) {
      const char *id = i ? "amo" : "alo";
      assert_int_equal(st->vtable->run_starting(st, id, T0 - 10 * APSCHED_SEC, 1), APSCHED_OK);
      assert_int_equal(st->vtable->run_starting(st, id, T0, 1), APSCHED_OK);
    }
  /* This open's own runs are not orphans. */
  assert_int_equal(kit_orphans(st, orphans), 0);

  st = kit_reopen(state, st);
  int n = kit_orphans(st, orphans);
  assert_int_equal(n, 2);
  for (int i = 0; i < n; i++) {
    const apsched_job_record *r = orphans[i].rec;
    assert_string_equal(r->id, "alo");
    assert_int_equal(orphans[i].attempt, 2);
    assert_string_equal(r->func->name, KIT_JOB_NAME);
    assert_string_equal(r->name, "kit job");
    assert_string_equal(r->executor, "default");
    assert_int_equal(r->max_runtime_ms, 750);
    assert_int_equal(r->max_instances, 3);
    size_t len = 0;
    const void *bytes = apsched_job_args_bytes(r->args, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(bytes, "bytes\0x", 7);
  }
  /* Earliest first. */
  assert_int_equal(orphans[0].scheduled_time, T0 - 10 * APSCHED_SEC);
  assert_int_equal(orphans[1].scheduled_time, T0);
  kit_free_orphans(orphans, n);
  /* Taken over: not handed out twice by the same open. */
  assert_int_equal(kit_orphans(st, orphans), 0);
  /* One ends; the other is left unfinished again: attempt 3 next time. */
  apsched_run_result done = {.job_id = "alo", .scheduled_time = T0 - 10 * APSCHED_SEC,
                             .attempt = 2, .outcome = APSCHED_RUN_EXECUTED,
                             .started_at = T0 + 1, .finished_at = T0 + 2};
  assert_int_equal(st->vtable->runs_closed(st, &done, 1), APSCHED_OK);
  st = kit_reopen(state, st);
  n = kit_orphans(st, orphans);
  assert_int_equal(n, 1);
  assert_int_equal(orphans[0].scheduled_time, T0);
  assert_int_equal(orphans[0].attempt, 3);
  kit_free_orphans(orphans, n);
  done.scheduled_time = T0;
  done.attempt = 3;
  assert_int_equal(st->vtable->runs_closed(st, &done, 1), APSCHED_OK);
  /* Closing what is not open (twice, or never opened) is no error. */
  assert_int_equal(st->vtable->runs_closed(st, &done, 1), APSCHED_OK);
  st = kit_reopen(state, st);
  assert_int_equal(kit_orphans(st, orphans), 0);
  /* The jobs themselves were advanced as released. */
  assert_int_equal(kit_lookup(st, "alo")->next_run_time, T0 + 10 * APSCHED_SEC);
  st->vtable->destroy(st);
}

/* Stalls victim until taker takes its one open run over (its heartbeat
 * may revive it between the stall and the take-over: then again). */
static inline void kit_take_over(const store_kit *kit, apsched_jobstore *victim,
                                 apsched_jobstore *taker, apsched_orphan_run *o) {
  for (int tries = 0; tries < 20; tries++) {
    kit->stall(kit->ud, victim);
    int n = kit_orphans(taker, o);
    if (n == 0) continue;
    assert_int_equal(n, 1);
    return;
  }
  fail_msg("a stalled scheduler's run was not taken over in 20 tries");
}

/* A scheduler taken for dead while it lived on (stalled past its lease)
 * can take the same run over again later, from the one that took it: it
 * then holds two attempts of one run. Each attempt's writes are fenced
 * with its own claim: the stale attempt can neither start again nor end
 * the run that the new attempt owns. */
static void kit_stale_attempt_is_fenced(void **state) {
  const store_kit *kit = *state;
  if (!kit->stall || !kit_has_runs(state)) skip();
  apsched_jobstore *a = kit_store(state);
  char *where = kit->locate(kit->ud, a);
  apsched_jobstore *b = kit->open_at(kit->ud, where);
  apsched_job_record *alo = kit_record("alo", T0);
  alo->flags |= APSCHED_JOB_AT_LEAST_ONCE;
  assert_int_equal(kit_add1(a, alo, false), APSCHED_OK);
  apsched_orphan_run o[8];
  assert_int_equal(kit_orphans(a, o), 0); /* registers */
  assert_int_equal(kit_orphans(b, o), 0);
  apsched_job_record *due[1];
  assert_int_equal(a->vtable->claim_due(a, T0, due, 1), 1);
  apsched_time_t t = T0;
  bool track = false;
  assert_int_equal(a->vtable->runs_open(a, due[0], &t, 1, &track), APSCHED_OK);
  assert_int_equal(a->vtable->release(a, due[0], T0 + 10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC, false),
                   APSCHED_OK);
  if (a->vtable->commit) assert_int_equal(a->vtable->commit(a), APSCHED_OK);
  assert_int_equal(a->vtable->run_starting(a, "alo", T0, 1), APSCHED_OK);
  /* a stalls while attempt 1 runs: b runs attempt 2; b stalls: a takes
   * attempt 3 (attempt 1 still running there). */
  kit_take_over(kit, a, b, o);
  assert_int_equal(o[0].attempt, 2);
  kit_free_orphans(o, 1);
  assert_int_equal(b->vtable->run_starting(b, "alo", T0, 2), APSCHED_OK);
  kit_take_over(kit, b, a, o);
  assert_int_equal(o[0].attempt, 3);
  kit_free_orphans(o, 1);
  /* Attempt 1 ends: not recorded (its claim is lost), the run stays open
   * for attempt 3, which starts once. */
  apsched_run_result end = {.job_id = "alo", .scheduled_time = T0, .attempt = 1,
                            .outcome = APSCHED_RUN_EXECUTED, .started_at = T0 + 1,
                            .finished_at = T0 + 2};
  assert_int_equal(a->vtable->runs_closed(a, &end, 1), APSCHED_OK);
  assert_int_equal(a->vtable->run_starting(a, "alo", T0, 1), APSCHED_ESTATE);
  assert_int_equal(a->vtable->run_starting(a, "alo", T0, 3), APSCHED_OK);
  assert_int_equal(a->vtable->run_starting(a, "alo", T0, 3), APSCHED_ESTATE);
  /* Attempt 2 (b, stalled) ends: not recorded either. */
  end.attempt = 2;
  assert_int_equal(b->vtable->runs_closed(b, &end, 1), APSCHED_OK);
  /* Attempt 3 ends the run: nothing is left to take over. */
  end.attempt = 3;
  assert_int_equal(a->vtable->runs_closed(a, &end, 1), APSCHED_OK);
  kit->stall(kit->ud, a);
  assert_int_equal(kit_orphans(b, o), 0);
  b->vtable->destroy(b);
  a->vtable->destroy(a);
  free(where);
}

/* A batch that is not committed leaves no run records behind. */
static void kit_runs_undone_with_batch(void **state) {
  if (!kit_has_runs(state)) skip();
  apsched_jobstore *st = kit_store(state);
  if (!st->vtable->commit) {
    st->vtable->destroy(st);
    skip();
  }
  apsched_job_record *alo = kit_record("alo", T0);
  alo->flags |= APSCHED_JOB_AT_LEAST_ONCE;
  assert_int_equal(kit_add1(st, alo, false), APSCHED_OK);
  apsched_job_record *due[1];
  assert_int_equal(st->vtable->claim_due(st, T0, due, 1), 1);
  bool track;
  apsched_time_t t = T0;
  assert_int_equal(st->vtable->runs_open(st, due[0], &t, 1, &track), APSCHED_OK);
  assert_int_equal(st->vtable->release(st, due[0], T0 + 10, T0 + 10, false), APSCHED_OK);
  /* The process dies before the commit: the job is due again, no record. */
  st = kit_reopen(state, st);
  apsched_orphan_run orphans[8];
  assert_int_equal(kit_orphans(st, orphans), 0);
  assert_int_equal(kit_lookup(st, "alo")->next_run_time, T0);
  st->vtable->destroy(st);
}

static atomic_int kit_late_runs;
static _Atomic unsigned kit_late_attempt;

static int kit_late_job(apsched_run_ctx *run) {
  atomic_fetch_add(&kit_late_runs, 1);
  atomic_store(&kit_late_attempt, apsched_run_attempt(run));
  return 0;
}

/* Through schedulers: a run of an at-least-once job that could not start
 * (its executor was removed) stays open; the next scheduler on the store
 * runs it as attempt 2, announces JOB_RECOVERED, and closes it. The same
 * run of an at-most-once job failed (JOB_ERROR) and is closed: no store
 * keeps it for a later scheduler (nor counts it toward max_instances). */
static void kit_runs_recovered_by_next_scheduler(void **state) {
  if (!kit_has_runs(state)) skip();
  const store_kit *kit = *state;
  assert_int_equal(apsched_register_func("store_kit.late", kit_late_job), APSCHED_OK);
  atomic_store(&kit_late_runs, 0);
  atomic_store(&kit_late_attempt, 0);
  apsched_jobstore *st = kit_store(state);
  char *where = kit->locate(kit->ud, st);
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder rec;
  recorder_init(&rec);
  apsched_config cfg = {.clock = &fc.clock, .timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "late_ex"), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "kit"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &rec, NULL),
                   APSCHED_OK);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options o = {.id = "late", .func_name = "store_kit.late", .trigger = t,
                           .executor = "late_ex", .jobstore = "kit",
                           .delivery = APSCHED_AT_LEAST_ONCE, .arg_bytes = "late", .arg_len = 4};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  o.id = "amo";
  o.delivery = APSCHED_AT_MOST_ONCE;
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  /* Due, claimed and recorded, but its executor is gone: not started. */
  assert_int_equal(apsched_remove_executor(s, "late_ex"), APSCHED_OK);
  int64_t wait;
  fake_advance(&fc, 10 * APSCHED_SEC);
  assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  assert_true(recorder_wait(&rec, APSCHED_EVENT_JOB_ERROR, 2));
  assert_int_equal(atomic_load(&kit_late_runs), 0);
  apsched_free(s);
  recorder_destroy(&rec);

  /* The next scheduler, with the executor: the run is done, once. */
  recorder_init(&rec);
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "late_ex"), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, kit->open_at(kit->ud, where), "kit"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &rec, NULL),
                   APSCHED_OK);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  fake_advance(&fc, APSCHED_SEC);
  for (int i = 0; i < 3; i++) assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  assert_true(recorder_wait(&rec, APSCHED_EVENT_JOB_RECOVERED, 1));
  assert_true(recorder_wait(&rec, APSCHED_EVENT_JOB_EXECUTED, 1));
  int r = recorder_find(&rec, APSCHED_EVENT_JOB_RECOVERED, 0);
  assert_string_equal(rec.ev[r].job_id, "late");
  assert_string_equal(rec.ev[r].jobstore, "kit");
  assert_int_equal(rec.ev[r].run_time, T0 + 10 * APSCHED_SEC);
  assert_int_equal(rec.ev[r].attempt, 2);
  int x = recorder_find(&rec, APSCHED_EVENT_JOB_EXECUTED, 0);
  assert_int_equal(rec.ev[x].attempt, 2);
  assert_int_equal(atomic_load(&kit_late_runs), 1);
  assert_int_equal(atomic_load(&kit_late_attempt), 2);
  /* The job's own schedule went on: next at T0 + 20 s, not re-run. */
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "late", NULL, &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, T0 + 20 * APSCHED_SEC);
  assert_int_equal(j->delivery, APSCHED_AT_LEAST_ONCE);
  apsched_job_free(j);
  apsched_free(s);
  /* The at-most-once run was not taken over. */
  assert_int_equal(recorder_count(&rec, APSCHED_EVENT_JOB_RECOVERED), 1);
  assert_int_equal(atomic_load(&kit_late_runs), 1);
  recorder_destroy(&rec);

  /* Closed when it ended: a third process finds nothing to recover. */
  st = kit->open_at(kit->ud, where);
  apsched_orphan_run orphans[8];
  assert_int_equal(kit_orphans(st, orphans), 0);
  st->vtable->destroy(st);
  free(where);
}

/* Ended runs that the store fails to take are kept and handed over again
 * when it works: the run is neither lost (left open) nor done twice. */
static void kit_runs_closed_retried(void **state) {
  if (!kit_has_runs(state)) skip();
  const store_kit *kit = *state;
  apsched_jobstore *inner = kit_store(state);
  char *where = kit->locate(kit->ud, inner);
  wrapped_store *w = wrapped_store_new(inner, inner->vtable->flags);
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder rec;
  recorder_init(&rec);
  atomic_int runs;
  atomic_init(&runs, 0);
  atomic_store(&kit_counter, &runs);
  apsched_config cfg = {.clock = &fc.clock, .timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "default"), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, &w->base, "kit"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &rec, NULL),
                   APSCHED_OK);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options o = {.id = "alo", .func = kit_job, .arg_bytes = "count", .arg_len = 5,
                           .trigger = t, .jobstore = "kit", .delivery = APSCHED_AT_LEAST_ONCE};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  atomic_store(&w->fail_closed, true);
  fake_advance(&fc, 10 * APSCHED_SEC);
  assert_int_equal(apsched_process(s, NULL), APSCHED_OK);
  assert_int_equal(apsched_wakeup(s), APSCHED_OK);
  assert_true(recorder_wait(&rec, APSCHED_EVENT_JOB_EXECUTED, 1));
  /* The loop hands the ended run over, fails, reports it once. */
  assert_true(recorder_wait(&rec, APSCHED_EVENT_JOBSTORE_FAILED, 1));
  int f = recorder_find(&rec, APSCHED_EVENT_JOBSTORE_FAILED, 0);
  assert_non_null(strstr(rec.ev[f].error, "injected failure of runs_closed"));
  /* A store that writes ended runs in its claimed batch got them there. */
  if (inner->vtable->version >= 6 && inner->vtable->runs_closed_in_batch)
    assert_true(atomic_load(&w->closed_in_batch_calls) > 0);
  atomic_store(&w->fail_closed, false);
  long before = atomic_load(&w->closed_calls);
  for (int i = 0; i < 2000 && atomic_load(&w->closed_calls) == before; i++) {
    fake_advance(&fc, APSCHED_SEC / 4); /* past the backoff, short of the next run */
    assert_int_equal(apsched_process(s, NULL), APSCHED_OK);
  assert_int_equal(apsched_wakeup(s), APSCHED_OK);
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL); /* a blocking store retries on its own thread */
  }
  assert_true(recorder_wait(&rec, APSCHED_EVENT_JOBSTORE_RECOVERED, 1));
  apsched_free(s);
  recorder_destroy(&rec);
  atomic_store(&kit_counter, NULL);
  assert_int_equal(atomic_load(&runs), 1);
  /* Closed after all: nothing for the next process to run again. */
  apsched_jobstore *st = kit->open_at(kit->ud, where);
  apsched_orphan_run orphans[8];
  assert_int_equal(kit_orphans(st, orphans), 0);
  st->vtable->destroy(st);
  free(where);
}

#include "kit_policies.h"
#include "kit_shared_waits.h"

static inline int store_kit_run(const store_kit *kit) {
  if (apsched_register_func(KIT_JOB_NAME, kit_job) != APSCHED_OK) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate(kit_add_lookup, (void *)kit),
      cmocka_unit_test_prestate(kit_batch_all_or_nothing, (void *)kit),
      cmocka_unit_test_prestate(kit_upsert, (void *)kit),
      cmocka_unit_test_prestate(kit_update_remove, (void *)kit),
      cmocka_unit_test_prestate(kit_claim_release, (void *)kit),
      cmocka_unit_test_prestate(kit_foreach_and_ids, (void *)kit),
      cmocka_unit_test_prestate(kit_failure_atomicity, (void *)kit),
      cmocka_unit_test_prestate(kit_loop_survives_failing_store, (void *)kit),
      cmocka_unit_test_prestate(kit_failed_release_runs_nothing, (void *)kit),
      cmocka_unit_test_prestate(kit_runs_at_least_once, (void *)kit),
      cmocka_unit_test_prestate(kit_runs_undone_with_batch, (void *)kit),
      cmocka_unit_test_prestate(kit_runs_recovered_by_next_scheduler, (void *)kit),
      cmocka_unit_test_prestate(kit_runs_closed_retried, (void *)kit),
      cmocka_unit_test_prestate(kit_stale_attempt_is_fenced, (void *)kit),
      KIT_POLICY_TESTS(kit),
      KIT_SHARED_WAIT_TESTS(kit),
  };
  return _cmocka_run_group_tests(kit->name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}

#endif
