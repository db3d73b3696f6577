/* The in-memory job store against the version-2 store contract: heap order
 * with FIFO ties, the paused and claimed states, the id hash, batch adds
 * (all or nothing, upserts), updates that swap in a new record, releases
 * that write the new times, out-of-memory handling, and a randomized
 * comparison against a simple reference model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "stores/memory_internal.h"

#define NONE APSCHED_TIME_NONE

/* ---------------------------------------------------------------- helpers */

/* Every record gets a clone of this trigger, as the scheduler's records do,
 * so apsched_job_record_copy can copy it. */
static apsched_trigger *proto;

static int setup_proto(void **state) {
  (void)state;
  apsched_interval_options o = {.seconds = 1};
  return apsched_trigger_interval(&o, &proto, NULL, 0) == APSCHED_OK ? 0 : -1;
}

static int teardown_proto(void **state) {
  (void)state;
  apsched_trigger_free(proto);
  proto = NULL;
  return 0;
}

static apsched_jobstore *new_store(void) {
  apsched_jobstore *st = NULL;
  assert_int_equal(apsched_memory_store_create(&st), APSCHED_OK);
  assert_non_null(st);
  return st;
}

static void assert_consistent(apsched_jobstore *st) {
  const char *why = NULL;
  int rc = apsched__memory_store_check(st, &why);
  if (rc != 0) fail_msg("memory store inconsistent: %s", why);
}

static void free_store(apsched_jobstore *st) {
  assert_consistent(st);
  st->vtable->destroy(st);
}

static apsched_job_record *make(const char *id, apsched_time_t t) {
  apsched_job_record *rec = apsched__record_new(id);
  assert_non_null(rec);
  assert_int_equal(apsched_trigger_clone(proto, &rec->trigger), APSCHED_OK);
  rec->next_run_time = t;
  rec->trigger_time = t;
  return rec;
}

/* A batch of one. On error the caller still owns rec. */
static int add_one(apsched_jobstore *st, apsched_job_record *rec) {
  size_t failed = 99;
  int rc = st->vtable->add(st, &rec, 1, NULL, &failed);
  if (rc == APSCHED_EEXIST) assert_int_equal(failed, 0);
  else if (rc != APSCHED_OK) assert_int_equal(failed, 1); /* nobody to blame */
  return rc;
}

/* Adds a new job; the record now belongs to the store (the memory store
 * keeps it at this address until it is updated or removed). */
static apsched_job_record *add(apsched_jobstore *st, const char *id, apsched_time_t t) {
  apsched_job_record *rec = make(id, t);
  assert_int_equal(add_one(st, rec), APSCHED_OK);
  assert_consistent(st);
  return rec;
}

/* The stored record (borrowed, read-only), or NULL when the store has none. */
static const apsched_job_record *find(apsched_jobstore *st, const char *id) {
  static apsched_job_record poison;
  const apsched_job_record *rec = &poison;
  int rc = st->vtable->lookup(st, id, &rec);
  if (rc == APSCHED_ENOENT) {
    assert_null(rec); /* the memory store clears *out */
    return NULL;
  }
  assert_int_equal(rc, APSCHED_OK);
  assert_non_null(rec);
  assert_ptr_not_equal(rec, &poison);
  assert_string_equal(rec->id, id);
  return rec;
}

static apsched_time_t next_time(apsched_jobstore *st) {
  apsched_time_t t = 12345;
  assert_int_equal(st->vtable->next_run_time(st, &t), APSCHED_OK);
  return t;
}

/* A new record copied from the stored one, as the scheduler makes them. */
static apsched_job_record *copy_of(apsched_jobstore *st, const char *id) {
  const apsched_job_record *old = find(st, id);
  assert_non_null(old);
  apsched_job_record *c = apsched_job_record_copy(old);
  assert_non_null(c);
  assert_ptr_not_equal(c, old);
  assert_null(c->store_link);
  assert_int_equal(c->store_pos, 0);
  assert_int_equal(c->store_seq, 0);
  return c;
}

/* update with a copy that runs at t (NONE: paused); the copy replaces the
 * stored record, which the store frees. Returns the new stored record. */
static const apsched_job_record *reschedule(apsched_jobstore *st, const char *id,
                                            apsched_time_t t) {
  apsched_job_record *c = copy_of(st, id);
  c->next_run_time = t;
  c->trigger_time = t;
  assert_int_equal(st->vtable->update(st, c), APSCHED_OK);
  assert_consistent(st);
  assert_ptr_equal(find(st, id), c);
  return c;
}

/* Claims everything due by now and checks the ids come out in this order. */
static void expect_claims(apsched_jobstore *st, apsched_time_t now, size_t max,
                          const char *const *ids, size_t n) {
  apsched_job_record *out[64];
  assert_true(max <= 64);
  int got = st->vtable->claim_due(st, now, out, max);
  assert_consistent(st);
  assert_int_equal(got, (int)n);
  for (size_t i = 0; i < n; i++) assert_string_equal(out[i]->id, ids[i]);
}

/* Claims and releases with remove_job, so the claimed jobs are gone. */
static void drain_in_order(apsched_jobstore *st, const char *const *ids, size_t n) {
  for (size_t i = 0; i < n; i++) {
    apsched_job_record *rec = NULL;
    assert_int_equal(st->vtable->claim_due(st, INT64_MAX, &rec, 1), 1);
    assert_string_equal(rec->id, ids[i]);
    assert_int_equal(st->vtable->release(st, rec, NONE, NONE, true), APSCHED_OK);
    assert_consistent(st);
  }
  assert_int_equal(next_time(st), NONE);
}

static int count_cb(const apsched_job_record *rec, void *ud) {
  (void)rec;
  (*(int *)ud)++;
  return 0;
}

static int stored_count(apsched_jobstore *st) {
  int n = 0;
  assert_int_equal(st->vtable->foreach(st, count_cb, &n), APSCHED_OK);
  return n;
}

static void free_records(apsched_job_record **recs, size_t n) {
  for (size_t i = 0; i < n; i++) apsched_job_record_free(recs[i]);
}

/* ------------------------------------------------------------------ basics */

static void test_create_rejects_null(void **state) {
  (void)state;
  assert_int_equal(apsched_memory_store_create(NULL), APSCHED_EINVAL);
  apsched_jobstore *st = new_store();
  assert_string_equal(st->vtable->kind, "memory");
  assert_int_equal(st->vtable->version, APSCHED_JOBSTORE_VTABLE_VERSION);
  assert_int_equal(st->vtable->flags & APSCHED_STORE_BLOCKING, 0); /* no I/O */
  assert_int_equal(st->vtable->open(st, NULL, "default"), APSCHED_OK);
  assert_int_equal(next_time(st), NONE);
  assert_null(find(st, "nothing"));
  assert_int_equal(stored_count(st), 0);
  assert_int_equal(st->vtable->foreach(st, NULL, NULL), APSCHED_EINVAL);
  /* An empty batch is a successful no-op. */
  size_t failed = 99;
  assert_int_equal(st->vtable->add(st, NULL, 0, NULL, &failed), APSCHED_OK);
  assert_int_equal(stored_count(st), 0);
  st->vtable->close(st);
  free_store(st);
}

static void test_add_lookup_duplicate(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  apsched_job_record *a = add(st, "a", 100);
  apsched_job_record *b = add(st, "b", NONE);
  assert_ptr_equal(find(st, "a"), a);
  assert_ptr_equal(find(st, "b"), b);
  assert_null(find(st, "c"));
  const apsched_job_record *out = NULL;
  assert_int_equal(st->vtable->lookup(st, NULL, &out), APSCHED_EINVAL);
  assert_int_equal(st->vtable->lookup(st, "a", NULL), APSCHED_EINVAL);

  /* A duplicate is refused and stays the caller's (ASan flags a double free
   * or a leak if ownership went wrong). */
  apsched_job_record *dup = make("a", 5);
  assert_int_equal(add_one(st, dup), APSCHED_EEXIST);
  assert_ptr_equal(find(st, "a"), a);
  assert_int_equal(next_time(st), 100);
  apsched_job_record_free(dup);

  size_t failed = 99;
  assert_int_equal(st->vtable->add(st, NULL, 1, NULL, &failed), APSCHED_EINVAL);
  assert_int_equal(failed, 1);
  assert_int_equal(stored_count(st), 2);
  free_store(st);
}

static void test_ties_come_out_fifo(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  /* Interleave two instants so ties are separated by other insertions. */
  add(st, "t50-1", 50);
  add(st, "t10-1", 10);
  add(st, "t50-2", 50);
  add(st, "t10-2", 10);
  add(st, "t10-3", 10);
  add(st, "t50-3", 50);
  add(st, "t10-4", 10);
  add(st, "t30", 30);
  static const char *const order[] = {"t10-1", "t10-2", "t10-3", "t10-4",
                                      "t30",   "t50-1", "t50-2", "t50-3"};
  drain_in_order(st, order, 8);
  free_store(st);
}

static void test_paused_jobs_stay_out_of_the_heap(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  apsched_job_record *p = add(st, "paused", NONE);
  assert_int_equal(next_time(st), NONE);
  apsched_job_record *out[4];
  assert_int_equal(st->vtable->claim_due(st, INT64_MAX, out, 4), 0);
  assert_ptr_equal(find(st, "paused"), p);

  add(st, "other", 200);
  /* Resume: back into the heap. */
  reschedule(st, "paused", 100);
  assert_int_equal(next_time(st), 100);

  /* Pause again from inside the heap (it is the top). */
  const apsched_job_record *p2 = reschedule(st, "paused", NONE);
  assert_int_equal(next_time(st), 200);
  static const char *const only_other[] = {"other"};
  expect_claims(st, INT64_MAX, 4, only_other, 1);
  assert_ptr_equal(find(st, "paused"), p2);
  /* Updating a paused job that stays paused changes nothing but the record. */
  const apsched_job_record *p3 = reschedule(st, "paused", NONE);
  assert_ptr_not_equal(p3, p2);
  assert_int_equal(next_time(st), NONE);
  assert_int_equal(stored_count(st), 2);
  free_store(st);
}

static void test_update_moves_earlier_and_later(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  char id[16];
  for (int i = 0; i < 40; i++) {
    snprintf(id, sizeof id, "j%02d", i);
    add(st, id, 1000 + 10 * i);
  }
  reschedule(st, "j39", 5); /* a leaf becomes the earliest */
  assert_int_equal(next_time(st), 5);

  reschedule(st, "j39", 100000); /* the root becomes the latest */
  assert_int_equal(next_time(st), 1000);

  reschedule(st, "j00", 1015); /* between j01 and j02 */
  reschedule(st, "j05", 1010); /* ties with j01, updated later: after it */
  static const char *const first[] = {"j01", "j05", "j00", "j02"};
  expect_claims(st, 1020, 10, first, 4);
  free_store(st);
}

static void test_update_swaps_in_the_new_record(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  add(st, "a", 10);
  add(st, "b", 20);
  add(st, "c", NONE);

  /* The copy carries every field; the store keeps exactly what it is given. */
  apsched_job_record *c = copy_of(st, "b");
  c->next_run_time = 5;
  c->trigger_time = 4;
  c->max_instances = 7;
  assert_int_equal(st->vtable->update(st, c), APSCHED_OK);
  assert_consistent(st);
  const apsched_job_record *b = find(st, "b");
  assert_ptr_equal(b, c);
  assert_int_equal(b->next_run_time, 5);
  assert_int_equal(b->trigger_time, 4);
  assert_int_equal(b->max_instances, 7);
  assert_int_equal(next_time(st), 5);
  assert_int_equal(stored_count(st), 3);

  /* An absent id: ENOENT, nothing changes, the caller keeps the record and
   * can still use it (ASan catches a free by the store). */
  apsched_job_record *z = make("z", 1);
  assert_int_equal(st->vtable->update(st, z), APSCHED_ENOENT);
  assert_consistent(st);
  assert_null(find(st, "z"));
  assert_int_equal(next_time(st), 5);
  assert_int_equal(stored_count(st), 3);
  assert_int_equal(z->next_run_time, 1);
  assert_int_equal(add_one(st, z), APSCHED_OK);
  assert_ptr_equal(find(st, "z"), z);
  assert_int_equal(next_time(st), 1);

  /* A copy outliving its job: the job was removed meanwhile. */
  apsched_job_record *late = copy_of(st, "a");
  assert_int_equal(st->vtable->remove(st, "a"), APSCHED_OK);
  late->next_run_time = 0;
  assert_int_equal(st->vtable->update(st, late), APSCHED_ENOENT);
  assert_consistent(st);
  assert_null(find(st, "a"));
  assert_int_equal(next_time(st), 1);
  apsched_job_record_free(late);

  assert_int_equal(st->vtable->update(st, NULL), APSCHED_EINVAL);
  assert_int_equal(stored_count(st), 3);
  free_store(st);
}

static void test_remove_from_middle(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  char id[16];
  for (int i = 0; i < 100; i++) {
    snprintf(id, sizeof id, "r%03d", i);
    add(st, id, (i * 37) % 100); /* a permutation of 0..99 */
  }
  /* Pick a record in the middle of the heap array, neither root nor leaf. */
  const apsched_job_record *victim = NULL;
  for (int i = 0; i < 100 && !victim; i++) {
    snprintf(id, sizeof id, "r%03d", i);
    const apsched_job_record *rec = find(st, id);
    assert_non_null(rec);
    if (rec->store_pos >= 5 && rec->store_pos < 40) victim = rec;
  }
  assert_non_null(victim);
  apsched_time_t gone = victim->next_run_time;
  char victim_id[16];
  snprintf(victim_id, sizeof victim_id, "%s", victim->id);
  assert_int_equal(st->vtable->remove(st, victim_id), APSCHED_OK);
  assert_consistent(st);
  assert_null(find(st, victim_id));
  assert_int_equal(st->vtable->remove(st, victim_id), APSCHED_ENOENT);
  assert_int_equal(st->vtable->remove(st, NULL), APSCHED_EINVAL);

  apsched_time_t expect = 0;
  for (int i = 0; i < 99; i++, expect++) {
    if (expect == gone) expect++;
    apsched_job_record *rec = NULL;
    assert_int_equal(st->vtable->claim_due(st, INT64_MAX, &rec, 1), 1);
    assert_int_equal(rec->next_run_time, expect);
    assert_int_equal(st->vtable->release(st, rec, NONE, NONE, true), APSCHED_OK);
  }
  assert_int_equal(stored_count(st), 0);
  free_store(st);
}

static void test_claim_due_respects_now_max_and_order(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  add(st, "e50", 50);
  add(st, "e10", 10);
  add(st, "e40", 40);
  add(st, "e20", 20);
  add(st, "e30", 30);
  assert_int_equal(next_time(st), 10);
  assert_int_equal(st->vtable->claim_due(st, 9, NULL, 0), 0);
  expect_claims(st, 9, 10, NULL, 0);

  static const char *const upto25[] = {"e10", "e20"};
  expect_claims(st, 25, 10, upto25, 2); /* 'now' bounds the batch */
  assert_int_equal(next_time(st), 30);

  static const char *const two[] = {"e30", "e40"};
  expect_claims(st, 1000, 2, two, 2); /* 'max' bounds the batch */
  assert_int_equal(next_time(st), 50);

  static const char *const at50[] = {"e50"};
  expect_claims(st, 50, 10, at50, 1); /* due exactly at now */
  assert_int_equal(next_time(st), NONE);
  expect_claims(st, INT64_MAX, 10, NULL, 0);
  /* Claimed records are still stored (and freed by destroy). */
  assert_int_equal(stored_count(st), 5);
  assert_non_null(find(st, "e30"));
  free_store(st);
}

/* Version 2: the scheduler makes no other call on the store between a claim
 * and its release, so a claimed job is never updated or upserted (the store
 * would free the record the claimer holds). What the memory store still
 * allows while a job is claimed: looking at it, refusing a plain add of its
 * id, removing it (then it is never released), and the claim keeps the job
 * out of the queue until release stores its new times. */
static void test_claimed_records_until_release(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  add(st, "x", 10);
  add(st, "y", 20);
  apsched_job_record *x = NULL;
  assert_int_equal(st->vtable->claim_due(st, 10, &x, 1), 1);
  assert_string_equal(x->id, "x");
  assert_ptr_equal(find(st, "x"), x);

  /* Claimed: out of the queue, and its id still taken. */
  assert_int_equal(next_time(st), 20);
  expect_claims(st, 15, 4, NULL, 0);
  apsched_job_record *dup = make("x", 1);
  assert_int_equal(add_one(st, dup), APSCHED_EEXIST);
  apsched_job_record_free(dup);
  assert_consistent(st);
  assert_ptr_equal(find(st, "x"), x);
  assert_int_equal(x->next_run_time, 10); /* the claim does not touch the times */

  /* release writes the new times itself and requeues the same record. */
  assert_int_equal(st->vtable->release(st, x, 1, 0, false), APSCHED_OK);
  assert_consistent(st);
  assert_ptr_equal(find(st, "x"), x);
  assert_int_equal(x->next_run_time, 1);
  assert_int_equal(x->trigger_time, 0);
  assert_int_equal(next_time(st), 1);

  /* Removed while claimed: gone at once, and never released. */
  assert_int_equal(st->vtable->claim_due(st, 1, &x, 1), 1);
  assert_int_equal(st->vtable->remove(st, "x"), APSCHED_OK);
  assert_consistent(st);
  assert_null(find(st, "x"));
  assert_int_equal(stored_count(st), 1);
  static const char *const just_y[] = {"y"};
  expect_claims(st, INT64_MAX, 4, just_y, 1);
  free_store(st);
}

static void test_release(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  apsched_job_record *a = add(st, "a", 10);
  add(st, "b", 20);
  add(st, "c", 30);

  /* Releasing a record that is not claimed is refused, and writes nothing. */
  assert_int_equal(st->vtable->release(st, a, 99, 98, false), APSCHED_EINVAL);
  assert_int_equal(st->vtable->release(st, a, 99, 98, true), APSCHED_EINVAL);
  assert_int_equal(st->vtable->release(st, NULL, 99, 98, false), APSCHED_EINVAL);
  assert_consistent(st);
  assert_ptr_equal(find(st, "a"), a);
  assert_int_equal(a->next_run_time, 10);
  assert_int_equal(a->trigger_time, 10);
  assert_int_equal(next_time(st), 10);

  apsched_job_record *rec = NULL;
  assert_int_equal(st->vtable->claim_due(st, 10, &rec, 1), 1);
  assert_ptr_equal(rec, a);
  /* Advanced by the scheduler: now between b and c; jitter puts the run 1
   * after the trigger's own time. */
  assert_int_equal(st->vtable->release(st, rec, 25, 24, false), APSCHED_OK);
  assert_consistent(st);
  assert_ptr_equal(find(st, "a"), a);
  assert_int_equal(find(st, "a")->next_run_time, 25);
  assert_int_equal(find(st, "a")->trigger_time, 24);
  /* Not released twice, and the failed call writes nothing. */
  assert_int_equal(st->vtable->release(st, a, 1, 1, false), APSCHED_EINVAL);
  assert_int_equal(find(st, "a")->next_run_time, 25);
  assert_int_equal(next_time(st), 20);
  static const char *const bac[] = {"b", "a", "c"};
  apsched_job_record *out[3];
  assert_int_equal(st->vtable->claim_due(st, 100, out, 3), 3);
  for (int i = 0; i < 3; i++) assert_string_equal(out[i]->id, bac[i]);

  /* A finished trigger: released with NONE, the job stays, paused. */
  assert_int_equal(st->vtable->release(st, out[0], NONE, NONE, false), APSCHED_OK);
  /* remove_job: the job is deleted whatever the times say. */
  assert_int_equal(st->vtable->release(st, out[1], 77, 77, true), APSCHED_OK);
  assert_int_equal(st->vtable->release(st, out[2], 40, 35, false), APSCHED_OK);
  assert_consistent(st);
  const apsched_job_record *b = find(st, "b");
  assert_non_null(b);
  assert_int_equal(b->next_run_time, NONE);
  assert_int_equal(b->trigger_time, NONE);
  assert_null(find(st, "a"));
  assert_int_equal(find(st, "c")->trigger_time, 35);
  assert_int_equal(next_time(st), 40);
  assert_int_equal(stored_count(st), 2);
  static const char *const only_c[] = {"c"};
  expect_claims(st, INT64_MAX, 4, only_c, 1); /* b stays paused */
  free_store(st);
}

static void test_remove_all(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  char id[16];
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof id, "job%d", i);
    add(st, id, i % 3 == 0 ? NONE : i);
  }
  apsched_job_record *claimed[8];
  assert_int_equal(st->vtable->claim_due(st, INT64_MAX, claimed, 8), 8);
  assert_int_equal(st->vtable->remove_all(st), APSCHED_OK);
  assert_consistent(st);
  assert_int_equal(stored_count(st), 0);
  assert_int_equal(next_time(st), NONE);
  assert_null(find(st, "job1"));
  assert_null(find(st, "job3"));
  /* Usable again, and ids are free again. */
  add(st, "job1", 7);
  assert_int_equal(next_time(st), 7);
  assert_int_equal(st->vtable->remove_all(st), APSCHED_OK);
  assert_int_equal(st->vtable->remove_all(st), APSCHED_OK);
  free_store(st);
}

typedef struct visit_state {
  unsigned char seen[2000];
  int visits;
  int stop_after;
} visit_state;

static int visit(const apsched_job_record *rec, void *ud) {
  visit_state *vs = ud;
  int i = atoi(rec->id + 1);
  vs->seen[i]++;
  vs->visits++;
  return vs->visits == vs->stop_after ? 42 : 0;
}

static void test_foreach_visits_everything(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  char id[16];
  for (int i = 0; i < 2000; i++) {
    snprintf(id, sizeof id, "v%d", i);
    add(st, id, i % 5 == 0 ? NONE : 1000 - i);
  }
  apsched_job_record *claimed[16];
  assert_int_equal(st->vtable->claim_due(st, INT64_MAX, claimed, 16), 16);

  visit_state *vs = calloc(1, sizeof *vs);
  assert_non_null(vs);
  assert_int_equal(st->vtable->foreach(st, visit, vs), APSCHED_OK);
  assert_int_equal(vs->visits, 2000);
  for (int i = 0; i < 2000; i++) assert_int_equal(vs->seen[i], 1);

  /* A non-zero return stops the walk and is passed back. */
  memset(vs, 0, sizeof *vs);
  vs->stop_after = 7;
  assert_int_equal(st->vtable->foreach(st, visit, vs), 42);
  assert_int_equal(vs->visits, 7);
  free(vs);
  free_store(st);
}

static void test_next_run_time(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  assert_int_equal(next_time(st), NONE);
  add(st, "late", 300);
  assert_int_equal(next_time(st), 300);
  add(st, "negative", -5); /* before the epoch is a valid time */
  assert_int_equal(next_time(st), -5);
  add(st, "paused", NONE);
  assert_int_equal(next_time(st), -5);
  assert_int_equal(st->vtable->remove(st, "negative"), APSCHED_OK);
  assert_int_equal(next_time(st), 300);
  assert_int_equal(st->vtable->remove(st, "late"), APSCHED_OK);
  assert_int_equal(next_time(st), NONE);
  free_store(st);
}

/* The 32-bit sequence wraps: ties must still come out FIFO, whether the wrap
 * happens in a single add, an update, a batch add or a release. */
static void test_sequence_wrap_keeps_fifo(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  apsched__memory_store_set_seq(st, UINT32_MAX - 4);
  char id[16];
  for (int i = 0; i < 12; i++) {
    snprintf(id, sizeof id, "w%02d", i);
    add(st, id, i % 2 ? 7 : 3);
  }
  /* An update straddling the wrap re-queues behind the others. */
  apsched__memory_store_set_seq(st, UINT32_MAX);
  reschedule(st, "w00", 3);
  add(st, "w12", 3);
  static const char *const order[] = {"w02", "w04", "w06", "w08", "w10", "w00", "w12",
                                      "w01", "w03", "w05", "w07", "w09", "w11"};
  drain_in_order(st, order, 13);
  free_store(st);

  /* The wrap in the middle of a batch, then in a release. */
  st = new_store();
  add(st, "r", 5);
  apsched__memory_store_set_seq(st, UINT32_MAX - 2);
  apsched_job_record *batch[6];
  for (int i = 0; i < 6; i++) {
    snprintf(id, sizeof id, "b%d", i);
    batch[i] = make(id, i % 2 ? 9 : 5);
  }
  assert_int_equal(st->vtable->add(st, batch, 6, NULL, NULL), APSCHED_OK);
  assert_consistent(st);
  apsched__memory_store_set_seq(st, UINT32_MAX);
  apsched_job_record *r = NULL;
  assert_int_equal(st->vtable->claim_due(st, INT64_MAX, &r, 1), 1);
  assert_string_equal(r->id, "r");
  assert_int_equal(st->vtable->release(st, r, 9, 9, false), APSCHED_OK);
  assert_consistent(st);
  static const char *const order2[] = {"b0", "b2", "b4", "b1", "b3", "b5", "r"};
  drain_in_order(st, order2, 7);
  free_store(st);
}

/* Ids of any bytes and lengths up to APSCHED_ID_MAX hash and compare
 * correctly; sequential ids spread over the buckets (no flooded chain). */
static void test_ids_of_any_shape(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  char id[APSCHED_ID_MAX + 1];
  /* Long ids differing only in the last byte, and in each 8-byte word. */
  memset(id, 'x', APSCHED_ID_MAX);
  id[APSCHED_ID_MAX] = '\0';
  for (int i = 0; i < 26; i++) {
    id[APSCHED_ID_MAX - 1] = (char)('A' + i);
    add(st, id, i);
  }
  memset(id, 'x', APSCHED_ID_MAX);
  for (int i = 0; i < APSCHED_ID_MAX; i++) {
    id[i] = '\x01';
    if (i > 0) id[i - 1] = 'x';
    add(st, id, NONE);
  }
  add(st, "", 1); /* the empty id is still an id */
  add(st, "\xff\xfe", 2);
  assert_non_null(find(st, ""));
  assert_non_null(find(st, "\xff\xfe"));
  apsched_job_record *dup = make("", 3);
  assert_int_equal(add_one(st, dup), APSCHED_EEXIST);
  apsched_job_record_free(dup);
  memset(id, 'x', APSCHED_ID_MAX);
  id[APSCHED_ID_MAX - 1] = 'Q';
  const apsched_job_record *q = find(st, id);
  assert_non_null(q);
  assert_int_equal(q->next_run_time, 'Q' - 'A');
  id[APSCHED_ID_MAX - 1] = 'x'; /* all 'x': never added */
  assert_null(find(st, id));
  id[APSCHED_ID_MAX - 2] = '\0'; /* a prefix of stored ids */
  assert_null(find(st, id));

  /* 20000 sequential ids: half one by one, half in one batch (which sizes
   * the bucket array for the whole batch at once). */
  enum { MANY = 20000 };
  for (int i = 0; i < MANY / 2; i++) {
    snprintf(id, sizeof id, "job-%d", i);
    assert_int_equal(add_one(st, make(id, i)), APSCHED_OK);
  }
  apsched_job_record **batch = malloc(MANY / 2 * sizeof *batch);
  assert_non_null(batch);
  for (int i = MANY / 2; i < MANY; i++) {
    snprintf(id, sizeof id, "job-%d", i);
    batch[i - MANY / 2] = make(id, i);
  }
  size_t failed = 0;
  assert_int_equal(st->vtable->add(st, batch, MANY / 2, NULL, &failed), APSCHED_OK);
  free(batch);
  assert_consistent(st);
  size_t buckets = 0;
  size_t longest = apsched__memory_store_max_chain(st, &buckets);
  assert_true(2 * buckets >= MANY + 26 + APSCHED_ID_MAX + 2); /* chains of 2 on average at most */
  assert_true(longest <= 12);
  for (int i = 0; i < MANY; i++) {
    snprintf(id, sizeof id, "job-%d", i);
    const apsched_job_record *rec = find(st, id);
    assert_non_null(rec);
    assert_int_equal(rec->next_run_time, i);
  }
  /* Removing most of them gives the memory back and keeps lookups working. */
  for (int i = 0; i < MANY - 10; i++) {
    snprintf(id, sizeof id, "job-%d", i);
    assert_int_equal(st->vtable->remove(st, id), APSCHED_OK);
  }
  assert_consistent(st);
  apsched__memory_store_max_chain(st, &buckets);
  assert_true(buckets < 4096);
  assert_non_null(find(st, "job-19995"));
  assert_null(find(st, "job-5"));
  free_store(st);
}

/* ------------------------------------------------------------- batch adds */

static void test_batch_add_all_or_nothing(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  apsched_job_record *a = add(st, "a", 10);
  apsched_job_record *b = add(st, "b", NONE);

  /* A duplicate of a stored job in the middle: nothing is added, and the
   * caller keeps every record. */
  apsched_job_record *recs[4] = {make("x", 5), make("a", 1), make("y", 7)};
  size_t failed = 99;
  assert_int_equal(st->vtable->add(st, recs, 3, NULL, &failed), APSCHED_EEXIST);
  assert_int_equal(failed, 1);
  assert_consistent(st);
  assert_null(find(st, "x"));
  assert_null(find(st, "y"));
  assert_ptr_equal(find(st, "a"), a);
  assert_int_equal(a->next_run_time, 10);
  assert_int_equal(next_time(st), 10);
  assert_int_equal(stored_count(st), 2);
  /* Explicit replace flags, all false, mean the same. */
  const bool no[3] = {false, false, false};
  failed = 99;
  assert_int_equal(st->vtable->add(st, recs, 3, no, &failed), APSCHED_EEXIST);
  assert_int_equal(failed, 1);
  /* The same with the paused job as the duplicate, at the end, no *failed. */
  apsched_job_record_free(recs[1]);
  recs[1] = make("z", 3);
  recs[3] = make("b", 2);
  assert_int_equal(st->vtable->add(st, recs, 4, NULL, NULL), APSCHED_EEXIST);
  failed = 99;
  assert_int_equal(st->vtable->add(st, recs, 4, NULL, &failed), APSCHED_EEXIST);
  assert_int_equal(failed, 3);
  assert_ptr_equal(find(st, "b"), b);
  assert_int_equal(b->next_run_time, NONE);
  assert_null(find(st, "z"));
  assert_int_equal(next_time(st), 10);
  apsched_job_record_free(recs[3]);

  /* An id repeated within the batch (without replace): the repeat is to
   * blame, and nothing is added. */
  apsched_job_record *rep[4] = {make("p", 1), make("q", 2), make("p", 3), make("r", 4)};
  failed = 99;
  assert_int_equal(st->vtable->add(st, rep, 4, NULL, &failed), APSCHED_EEXIST);
  assert_int_equal(failed, 2);
  assert_consistent(st);
  assert_null(find(st, "p"));
  assert_null(find(st, "q"));
  assert_null(find(st, "r"));
  assert_int_equal(stored_count(st), 2);
  free_records(rep, 4);

  /* A clean batch: everything is added, in order among equal times. */
  apsched_job_record_free(recs[0]);
  apsched_job_record_free(recs[1]);
  apsched_job_record_free(recs[2]);
  recs[0] = make("x", 3);
  recs[1] = make("y", 3);
  recs[2] = make("z", 3);
  failed = 99;
  assert_int_equal(st->vtable->add(st, recs, 3, NULL, &failed), APSCHED_OK);
  assert_consistent(st);
  for (int i = 0; i < 3; i++) assert_ptr_equal(find(st, recs[i]->id), recs[i]);
  assert_int_equal(stored_count(st), 5);
  assert_int_equal(next_time(st), 3);
  static const char *const xyz[] = {"x", "y", "z"};
  expect_claims(st, 3, 8, xyz, 3);
  free_store(st);
}

static void test_batch_upsert(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  add(st, "q", 50);
  add(st, "p", NONE);
  add(st, "other", 40);

  /* Replace a queued job (now earlier) and a paused one (now queued), and
   * add a new one, in one call. */
  apsched_job_record *recs[3] = {make("q", 30), make("new", 20), make("p", 10)};
  const bool rp[3] = {true, false, true};
  size_t failed = 99;
  assert_int_equal(st->vtable->add(st, recs, 3, rp, &failed), APSCHED_OK);
  assert_consistent(st);
  for (int i = 0; i < 3; i++) assert_ptr_equal(find(st, recs[i]->id), recs[i]);
  assert_int_equal(stored_count(st), 4);
  assert_int_equal(next_time(st), 10);

  /* An upsert that fails because of another record leaves the old job in
   * place, untouched (it is never missing). */
  apsched_job_record *bad[2] = {make("q", 1), make("other", 2)};
  const bool rp2[2] = {true, false};
  failed = 99;
  assert_int_equal(st->vtable->add(st, bad, 2, rp2, &failed), APSCHED_EEXIST);
  assert_int_equal(failed, 1);
  assert_consistent(st);
  assert_ptr_equal(find(st, "q"), recs[0]);
  assert_int_equal(find(st, "q")->next_run_time, 30);
  assert_int_equal(next_time(st), 10);
  free_records(bad, 2);

  /* Replace a queued job by a paused one: it leaves the queue. */
  apsched_job_record *pause = make("q", NONE);
  const bool yes = true;
  assert_int_equal(st->vtable->add(st, &pause, 1, &yes, NULL), APSCHED_OK);
  assert_consistent(st);
  assert_ptr_equal(find(st, "q"), pause);
  /* An upsert of an absent id is a plain add. */
  apsched_job_record *fresh = make("fresh", 15);
  assert_int_equal(st->vtable->add(st, &fresh, 1, &yes, NULL), APSCHED_OK);
  assert_ptr_equal(find(st, "fresh"), fresh);
  assert_int_equal(stored_count(st), 5);

  /* Upserts within the batch: the last one wins, the store frees the ones
   * it supersedes (ASan: no leak, no double free), one job per id. */
  apsched_job_record *chain[4] = {make("d", 1), make("d", 2), make("e", 8), make("d", 3)};
  const bool rp3[4] = {true, true, false, true};
  assert_int_equal(st->vtable->add(st, chain, 4, rp3, NULL), APSCHED_OK);
  assert_consistent(st);
  assert_ptr_equal(find(st, "d"), chain[3]);
  assert_int_equal(find(st, "d")->next_run_time, 3);
  assert_ptr_equal(find(st, "e"), chain[2]);
  assert_int_equal(stored_count(st), 7);
  /* ... also over a stored job (the first occurrence replaces it, the
   * second the first). */
  apsched_job_record *twice[2] = {make("e", 6), make("e", 5)};
  const bool rp4[2] = {true, true};
  assert_int_equal(st->vtable->add(st, twice, 2, rp4, NULL), APSCHED_OK);
  assert_consistent(st);
  assert_ptr_equal(find(st, "e"), twice[1]);
  assert_int_equal(stored_count(st), 7);

  /* A repeat needs its own replace flag: the earlier occurrence's is not
   * enough. */
  apsched_job_record *norep[2] = {make("f", 1), make("f", 2)};
  const bool rp5[2] = {true, false};
  failed = 99;
  assert_int_equal(st->vtable->add(st, norep, 2, rp5, &failed), APSCHED_EEXIST);
  assert_int_equal(failed, 1);
  assert_null(find(st, "f"));
  free_records(norep, 2);

  static const char *const order[] = {"d", "e", "p", "fresh", "new", "other"};
  drain_in_order(st, order, 6); /* q stays, paused */
  assert_int_equal(stored_count(st), 1);
  free_store(st);
}

/* ------------------------------------------ repeated ids with mixed flags */

/* [g, g, g(replace)]: the second g repeats the first without a replace flag,
 * so the contract says EEXIST with *failed == 1 (a check that compared each
 * occurrence with the last one of its id only accepted the batch). */
static void test_repeat_without_replace_before_an_upsert(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  apsched_job_record *recs[3] = {make("g", 1), make("g", 2), make("g", 3)};
  const bool rp[3] = {false, false, true};
  size_t failed = 99;
  int rc = st->vtable->add(st, recs, 3, rp, &failed);
  if (rc == APSCHED_OK) {
    st->vtable->destroy(st); /* the store took the records */
    fail_msg("batch [g, g, g(replace)] was accepted; expected APSCHED_EEXIST at index 1");
  }
  assert_int_equal(rc, APSCHED_EEXIST);
  assert_int_equal(failed, 1);
  free_records(recs, 3);
  assert_int_equal(stored_count(st), 0);
  free_store(st);
}

/* The store holds h; [h, h(replace)]: the first h has an id the store holds
 * and no replace flag, so the contract says EEXIST with *failed == 0 (a
 * check of the stored id for the last occurrence only replaced h). */
static void test_stored_id_without_replace_before_its_upsert(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  apsched_job_record *h = add(st, "h", 100);
  apsched_job_record *recs[2] = {make("h", 1), make("h", 2)};
  const bool rp[2] = {false, true};
  size_t failed = 99;
  int rc = st->vtable->add(st, recs, 2, rp, &failed);
  if (rc == APSCHED_OK) {
    st->vtable->destroy(st);
    fail_msg("batch [h, h(replace)] over a stored h was accepted; expected APSCHED_EEXIST at "
             "index 0");
  }
  assert_int_equal(rc, APSCHED_EEXIST);
  assert_int_equal(failed, 0);
  free_records(recs, 2);
  assert_ptr_equal(find(st, "h"), h);
  assert_int_equal(h->next_run_time, 100);
  free_store(st);
}

/* ----------------------------------------------------------- out of memory */

static int allocations_left;

static void *failing_realloc(void *ptr, size_t size) {
  if (allocations_left == 0) return NULL;
  allocations_left--;
  return realloc(ptr, size);
}

static void test_out_of_memory(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  char id[16];
  int added = 0;
  apsched__memory_store_set_realloc(st, failing_realloc);
  allocations_left = 0;
  /* The initial arrays hold some jobs; the first one that needs a larger
   * heap array fails cleanly. */
  for (;;) {
    snprintf(id, sizeof id, "m%d", added);
    apsched_job_record *rec = make(id, 100 - added);
    int rc = add_one(st, rec);
    if (rc == APSCHED_ENOMEM) {
      apsched_job_record_free(rec); /* still ours */
      break;
    }
    assert_int_equal(rc, APSCHED_OK);
    added++;
    assert_true(added < 1000);
  }
  assert_true(added >= 1);
  assert_consistent(st);
  assert_int_equal(stored_count(st), added);
  assert_null(find(st, id));
  assert_int_equal(next_time(st), 100 - (added - 1));

  /* A failed bucket growth only lengthens chains: the add succeeds. The
   * heap array has grown first; the buckets grow at two records each. */
  allocations_left = 1; /* the heap array grows */
  add(st, id, 1);
  size_t buckets_before = 0, buckets_after = 0;
  apsched__memory_store_max_chain(st, &buckets_before);
  int stored = added + 1;
  char more[16];
  for (; (size_t)stored < 2 * buckets_before; stored++) {
    snprintf(more, sizeof more, "f%d", stored);
    add(st, more, 50);
  }
  allocations_left = 1; /* the heap array grows again, the bucket array cannot */
  add(st, "over", 60);
  stored++;
  apsched__memory_store_max_chain(st, &buckets_after);
  assert_int_equal(buckets_after, buckets_before);
  assert_int_equal(stored_count(st), stored);
  assert_non_null(find(st, id));
  assert_non_null(find(st, "over"));
  assert_consistent(st);

  /* Claimed jobs can always be released back without allocating. */
  apsched_job_record *claimed[64];
  int n = st->vtable->claim_due(st, INT64_MAX, claimed, 64);
  assert_int_equal(n, stored);
  for (int i = 0; i < n; i++)
    assert_int_equal(st->vtable->release(st, claimed[i], claimed[i]->next_run_time + 1000,
                                         claimed[i]->trigger_time + 1000, false),
                     APSCHED_OK);
  assert_consistent(st);
  assert_int_equal(next_time(st), 1001);
  /* And updates never allocate either. */
  reschedule(st, id, 2);
  assert_int_equal(next_time(st), 2);

  apsched__memory_store_set_realloc(st, NULL);
  add(st, "after", 0);
  apsched__memory_store_max_chain(st, &buckets_after);
  assert_true(buckets_after > buckets_before);
  free_store(st);
}

/* A batch whose heap growth fails is refused as a whole: no record is added,
 * no upserted job is replaced, and the caller keeps every record. */
static void test_batch_add_realloc_failure(void **state) {
  (void)state;
  enum { N = 40 };
  apsched_jobstore *st = new_store();
  apsched_job_record *keep = add(st, "keep", 50);
  apsched_job_record *paused = add(st, "paused", NONE);
  add(st, "other", 60);
  size_t buckets_before = 0, buckets_after = 0;
  apsched__memory_store_max_chain(st, &buckets_before);

  apsched_job_record *recs[N];
  bool rp[N];
  char id[16];
  for (int attempt = 0; attempt < 2; attempt++) {
    recs[0] = make("keep", 1);
    rp[0] = true;
    for (int i = 1; i < N - 1; i++) {
      snprintf(id, sizeof id, "n%02d", i);
      recs[i] = make(id, 10 + i);
      rp[i] = i % 7 == 0; /* upserts of absent ids: plain adds */
    }
    recs[N - 1] = make("paused", 2);
    rp[N - 1] = true;

    apsched__memory_store_set_realloc(st, failing_realloc);
    allocations_left = attempt; /* 0: the heap cannot grow; 1: the buckets cannot */
    size_t failed = 99;
    int rc = st->vtable->add(st, recs, N, rp, &failed);
    assert_consistent(st);
    if (attempt == 0) {
      assert_int_equal(rc, APSCHED_ENOMEM);
      assert_int_equal(failed, N); /* no record is to blame */
      assert_int_equal(stored_count(st), 3);
      assert_ptr_equal(find(st, "keep"), keep);
      assert_int_equal(keep->next_run_time, 50);
      assert_ptr_equal(find(st, "paused"), paused);
      assert_int_equal(paused->next_run_time, NONE);
      assert_null(find(st, "n01"));
      assert_null(find(st, "n07"));
      assert_int_equal(next_time(st), 50);
      free_records(recs, N); /* still ours */
      continue;
    }
    assert_int_equal(rc, APSCHED_OK);
    apsched__memory_store_max_chain(st, &buckets_after);
    assert_int_equal(buckets_after, buckets_before); /* longer chains only */
    assert_int_equal(stored_count(st), N + 1);
    for (int i = 0; i < N; i++) assert_ptr_equal(find(st, recs[i]->id), recs[i]);
    assert_int_equal(next_time(st), 1);
  }

  /* Removing while allocation still fails: the arrays cannot shrink, the
   * removals succeed anyway. */
  allocations_left = 0;
  for (int i = 1; i < N - 1; i++) {
    snprintf(id, sizeof id, "n%02d", i);
    assert_int_equal(st->vtable->remove(st, id), APSCHED_OK);
    assert_consistent(st);
  }
  assert_int_equal(stored_count(st), 3);
  assert_int_equal(next_time(st), 1);
  apsched__memory_store_set_realloc(st, NULL);
  free_store(st);
}

/* -------------------------------------------------------- randomized model */

enum { M_GONE, M_QUEUED, M_PAUSED, M_CLAIMED };

typedef struct model_job {
  int state;
  apsched_time_t t;  /* next_run_time */
  apsched_time_t tt; /* trigger_time */
  uint64_t seq;
  const apsched_job_record *rec; /* what lookup must return */
  apsched_job_record *claimed;   /* what claim_due returned (M_CLAIMED) */
} model_job;

#define POOL 1500
#define MAX_BATCH 5

typedef struct model {
  model_job jobs[POOL];
  uint64_t next_seq;
  int claimed[POOL];
  int nclaimed;
} model;

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint64_t rnd(uint64_t bound) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (rng_state * 0x2545f4914f6cdd1dull) % bound;
}

static apsched_time_t random_time(void) {
  return rnd(8) == 0 ? NONE : (apsched_time_t)rnd(60) - 5; /* many ties */
}

static void pool_id(int i, char *buf, size_t len) {
  /* Mixed lengths, some past one 8-byte word. */
  snprintf(buf, len, i % 3 ? "id-%d" : "a-longer-identifier-%d", i);
}

/* A random pool index, preferring one the store holds (most of the pool is
 * empty at any time: without this, few updates or upserts would hit a job). */
static int pick(const model *m) {
  int i = (int)rnd(POOL);
  for (int tries = 0; tries < 64 && m->jobs[i].state == M_GONE; tries++) i = (int)rnd(POOL);
  return i;
}

static void model_queue(model *m, model_job *j) {
  if (j->t == NONE) {
    j->state = M_PAUSED;
  } else {
    j->state = M_QUEUED;
    j->seq = m->next_seq++;
  }
}

static apsched_time_t model_next(const model *m) {
  apsched_time_t best = NONE;
  for (int i = 0; i < POOL; i++)
    if (m->jobs[i].state == M_QUEUED && (best == NONE || m->jobs[i].t < best)) best = m->jobs[i].t;
  return best;
}

static void model_forget_claim(model *m, int i) {
  for (int k = 0; k < m->nclaimed; k++) {
    if (m->claimed[k] == i) {
      m->claimed[k] = m->claimed[--m->nclaimed];
      return;
    }
  }
}

static const model *sort_model;

static int by_key(const void *pa, const void *pb) {
  const model_job *a = &sort_model->jobs[*(const int *)pa];
  const model_job *b = &sort_model->jobs[*(const int *)pb];
  if (a->t != b->t) return a->t < b->t ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void model_claim(model *m, apsched_jobstore *st) {
  apsched_time_t now = rnd(10) == 0 ? INT64_MAX : (apsched_time_t)rnd(70) - 10;
  size_t max = (size_t)rnd(12);
  int due[POOL], ndue = 0;
  for (int i = 0; i < POOL; i++)
    if (m->jobs[i].state == M_QUEUED && m->jobs[i].t <= now) due[ndue++] = i;
  sort_model = m;
  qsort(due, (size_t)ndue, sizeof due[0], by_key);
  if ((size_t)ndue > max) ndue = (int)max;

  apsched_job_record *out[12];
  int got = st->vtable->claim_due(st, now, out, max);
  assert_int_equal(got, ndue);
  for (int k = 0; k < got; k++) {
    model_job *j = &m->jobs[due[k]];
    assert_ptr_equal(out[k], j->rec);
    j->state = M_CLAIMED;
    j->claimed = out[k];
    m->claimed[m->nclaimed++] = due[k];
  }
}

/* A batch of up to MAX_BATCH records: random pool ids (some repeated within
 * the batch, some already stored or claimed), some upserts. The contract
 * decides the outcome: a record offends if its id repeats an earlier one in
 * the batch, or is stored, and it has no replace flag. Every occurrence of
 * an id gets the same flag (mixed flags hit the known bugs above), and a
 * claimed job is never upserted (version 2 forbids it). */
static void model_batch_add(model *m, apsched_jobstore *st) {
  size_t n = 1 + (size_t)rnd(MAX_BATCH);
  int idx[MAX_BATCH];
  apsched_job_record *recs[MAX_BATCH];
  bool replace[MAX_BATCH], offends[MAX_BATCH], last[MAX_BATCH];
  bool any_replace = false, any_offends = false;
  char id[64];
  for (size_t k = 0; k < n; k++) {
    if (k > 0 && rnd(4) == 0) idx[k] = idx[rnd(k)];
    else idx[k] = rnd(3) == 0 ? pick(m) : (int)rnd(POOL);
    size_t first = k;
    for (size_t e = 0; e < k && first == k; e++)
      if (idx[e] == idx[k]) first = e;
    const model_job *j = &m->jobs[idx[k]];
    replace[k] = first < k ? replace[first] : j->state != M_CLAIMED && rnd(2) == 0;
    offends[k] = !replace[k] && (first < k || j->state != M_GONE);
    any_replace |= replace[k];
    any_offends |= offends[k];
    pool_id(idx[k], id, sizeof id);
    recs[k] = make(id, random_time());
    if (rnd(4) == 0 && recs[k]->next_run_time != NONE) recs[k]->trigger_time -= 1;
  }
  for (size_t k = 0; k < n; k++) {
    last[k] = true;
    for (size_t e = k + 1; e < n; e++) last[k] &= idx[e] != idx[k];
  }
  size_t failed = 99;
  size_t *failed_out = rnd(8) ? &failed : NULL;
  const bool *rp = any_replace || rnd(2) ? replace : NULL;
  int rc = st->vtable->add(st, recs, n, rp, failed_out);
  if (any_offends) {
    assert_int_equal(rc, APSCHED_EEXIST);
    if (failed_out) {
      assert_true(failed < n);
      assert_true(offends[failed]);
    }
    free_records(recs, n); /* still ours */
    return;
  }
  assert_int_equal(rc, APSCHED_OK);
  for (size_t k = 0; k < n; k++) {
    if (!last[k]) continue; /* superseded in the batch: freed by the store */
    model_job *j = &m->jobs[idx[k]];
    j->rec = recs[k];
    j->t = recs[k]->next_run_time;
    j->tt = recs[k]->trigger_time;
    model_queue(m, j);
  }
}

static void model_check_lookup(apsched_jobstore *st, const model_job *j, const char *id) {
  const apsched_job_record *rec = find(st, id);
  if (j->state == M_GONE) {
    assert_null(rec);
    return;
  }
  assert_ptr_equal(rec, j->rec);
  assert_int_equal(rec->next_run_time, j->t);
  assert_int_equal(rec->trigger_time, j->tt);
}

static void test_randomized_against_model(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  model *m = calloc(1, sizeof *m);
  assert_non_null(m);
  /* Start near the sequence wrap so renumbering happens mid-run. */
  apsched__memory_store_set_seq(st, UINT32_MAX - 3000);
  char id[64];

  for (int op = 0; op < 40000; op++) {
    uint64_t dice = rnd(1000);
    int i = rnd(4) == 0 ? (int)rnd(POOL) : pick(m);
    model_job *j = &m->jobs[i];
    pool_id(i, id, sizeof id);

    if (dice < 250) { /* batch add (duplicates, repeats, upserts) */
      model_batch_add(m, st);
    } else if (dice < 450) { /* update: reschedule, pause or resume */
      if (j->state == M_GONE) {
        apsched_job_record *rec = make(id, random_time());
        assert_int_equal(st->vtable->update(st, rec), APSCHED_ENOENT);
        apsched_job_record_free(rec); /* still ours */
      } else if (j->state != M_CLAIMED) { /* never between claim and release */
        model_check_lookup(st, j, id);
        apsched_job_record *c = copy_of(st, id);
        if (rnd(10) != 0) c->next_run_time = c->trigger_time = random_time();
        assert_int_equal(st->vtable->update(st, c), APSCHED_OK);
        j->rec = c;
        j->t = c->next_run_time;
        j->tt = c->trigger_time;
        model_queue(m, j);
        model_check_lookup(st, j, id);
      }
    } else if (dice < 550) { /* remove (a claimed job too: the memory store allows it) */
      int rc = st->vtable->remove(st, id);
      assert_int_equal(rc, j->state == M_GONE ? APSCHED_ENOENT : APSCHED_OK);
      if (j->state == M_CLAIMED) model_forget_claim(m, i);
      j->state = M_GONE;
      j->rec = NULL;
    } else if (dice < 700) { /* claim */
      model_claim(m, st);
    } else if (dice < 900) { /* release a claimed job with new times */
      if (m->nclaimed > 0) {
        int k = (int)rnd((uint64_t)m->nclaimed);
        int ci = m->claimed[k];
        model_job *cj = &m->jobs[ci];
        bool remove_job = rnd(4) == 0;
        apsched_time_t t = random_time();
        apsched_time_t tt = t == NONE || rnd(2) ? t : t - (apsched_time_t)rnd(3);
        assert_int_equal(st->vtable->release(st, cj->claimed, t, tt, remove_job), APSCHED_OK);
        model_forget_claim(m, ci);
        cj->claimed = NULL;
        if (remove_job) {
          cj->state = M_GONE;
          cj->rec = NULL;
        } else {
          cj->t = t;
          cj->tt = tt;
          model_queue(m, cj);
        }
        pool_id(ci, id, sizeof id);
        model_check_lookup(st, cj, id);
      }
    } else if (dice < 999) { /* lookup */
      model_check_lookup(st, j, id);
    } else { /* remove_all */
      assert_int_equal(st->vtable->remove_all(st), APSCHED_OK);
      memset(m->jobs, 0, sizeof m->jobs);
      m->nclaimed = 0;
    }

    assert_consistent(st);
    assert_int_equal(next_time(st), model_next(m));
  }

  int live = 0;
  for (int i = 0; i < POOL; i++) live += m->jobs[i].state != M_GONE;
  assert_int_equal(stored_count(st), live);
  /* Drain: every queued job comes out in (time, FIFO) order. */
  while (m->nclaimed > 0) {
    model_job *cj = &m->jobs[m->claimed[0]];
    assert_int_equal(st->vtable->release(st, cj->claimed, 1000, 1000, false), APSCHED_OK);
    cj->t = cj->tt = 1000;
    model_forget_claim(m, m->claimed[0]);
    model_queue(m, cj);
  }
  while (model_next(m) != NONE) model_claim(m, st);
  free(m);
  free_store(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_rejects_null),
      cmocka_unit_test(test_add_lookup_duplicate),
      cmocka_unit_test(test_ties_come_out_fifo),
      cmocka_unit_test(test_paused_jobs_stay_out_of_the_heap),
      cmocka_unit_test(test_update_moves_earlier_and_later),
      cmocka_unit_test(test_update_swaps_in_the_new_record),
      cmocka_unit_test(test_remove_from_middle),
      cmocka_unit_test(test_claim_due_respects_now_max_and_order),
      cmocka_unit_test(test_claimed_records_until_release),
      cmocka_unit_test(test_release),
      cmocka_unit_test(test_remove_all),
      cmocka_unit_test(test_foreach_visits_everything),
      cmocka_unit_test(test_next_run_time),
      cmocka_unit_test(test_sequence_wrap_keeps_fifo),
      cmocka_unit_test(test_ids_of_any_shape),
      cmocka_unit_test(test_batch_add_all_or_nothing),
      cmocka_unit_test(test_batch_upsert),
      cmocka_unit_test(test_repeat_without_replace_before_an_upsert),
      cmocka_unit_test(test_stored_id_without_replace_before_its_upsert),
      cmocka_unit_test(test_out_of_memory),
      cmocka_unit_test(test_batch_add_realloc_failure),
      cmocka_unit_test(test_randomized_against_model),
  };
  return cmocka_run_group_tests(tests, setup_proto, teardown_proto);
}
