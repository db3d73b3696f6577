/* The in-memory job store: heap order with FIFO ties, the paused and claimed
 * states, the id hash, out-of-memory handling, and a randomized comparison
 * against a simple reference model. */
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
  rec->next_run_time = t;
  rec->trigger_time = t;
  return rec;
}

static apsched_job_record *add(apsched_jobstore *st, const char *id, apsched_time_t t) {
  apsched_job_record *rec = make(id, t);
  assert_int_equal(st->vtable->add(st, rec), APSCHED_OK);
  assert_consistent(st);
  return rec;
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
    assert_int_equal(st->vtable->release(st, rec, true), APSCHED_OK);
    assert_consistent(st);
  }
  assert_int_equal(st->vtable->next_run_time(st), NONE);
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

/* ------------------------------------------------------------------ basics */

static void test_create_rejects_null(void **state) {
  (void)state;
  assert_int_equal(apsched_memory_store_create(NULL), APSCHED_EINVAL);
  apsched_jobstore *st = new_store();
  assert_string_equal(st->vtable->kind, "memory");
  assert_int_equal(st->vtable->version, APSCHED_JOBSTORE_VTABLE_VERSION);
  assert_int_equal(st->vtable->open(st, NULL, "default"), APSCHED_OK);
  assert_int_equal(st->vtable->next_run_time(st), NONE);
  assert_null(st->vtable->lookup(st, "nothing"));
  assert_int_equal(stored_count(st), 0);
  assert_int_equal(st->vtable->foreach(st, NULL, NULL), APSCHED_EINVAL);
  st->vtable->close(st);
  free_store(st);
}

static void test_add_lookup_duplicate(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  apsched_job_record *a = add(st, "a", 100);
  apsched_job_record *b = add(st, "b", NONE);
  assert_ptr_equal(st->vtable->lookup(st, "a"), a);
  assert_ptr_equal(st->vtable->lookup(st, "b"), b);
  assert_null(st->vtable->lookup(st, "c"));
  assert_null(st->vtable->lookup(st, NULL));

  /* A duplicate is refused and stays the caller's (ASan flags a double free
   * or a leak if ownership went wrong). */
  apsched_job_record *dup = make("a", 5);
  assert_int_equal(st->vtable->add(st, dup), APSCHED_EEXIST);
  assert_ptr_equal(st->vtable->lookup(st, "a"), a);
  assert_int_equal(st->vtable->next_run_time(st), 100);
  apsched_job_record_free(dup);

  assert_int_equal(st->vtable->add(st, NULL), APSCHED_EINVAL);
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
  assert_int_equal(st->vtable->next_run_time(st), NONE);
  apsched_job_record *out[4];
  assert_int_equal(st->vtable->claim_due(st, INT64_MAX, out, 4), 0);
  assert_ptr_equal(st->vtable->lookup(st, "paused"), p);

  add(st, "other", 200);
  /* Resume: back into the heap. */
  p->next_run_time = 100;
  assert_int_equal(st->vtable->update(st, p), APSCHED_OK);
  assert_consistent(st);
  assert_int_equal(st->vtable->next_run_time(st), 100);

  /* Pause again from inside the heap (it is the top). */
  p->next_run_time = NONE;
  assert_int_equal(st->vtable->update(st, p), APSCHED_OK);
  assert_consistent(st);
  assert_int_equal(st->vtable->next_run_time(st), 200);
  static const char *const only_other[] = {"other"};
  expect_claims(st, INT64_MAX, 4, only_other, 1);
  assert_ptr_equal(st->vtable->lookup(st, "paused"), p);
  /* Updating a paused job that stays paused changes nothing. */
  assert_int_equal(st->vtable->update(st, p), APSCHED_OK);
  assert_int_equal(st->vtable->next_run_time(st), NONE);
  free_store(st);
}

static void test_update_moves_earlier_and_later(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  apsched_job_record *recs[40];
  char id[16];
  for (int i = 0; i < 40; i++) {
    snprintf(id, sizeof id, "j%02d", i);
    recs[i] = add(st, id, 1000 + 10 * i);
  }
  recs[39]->next_run_time = 5; /* a leaf becomes the earliest */
  assert_int_equal(st->vtable->update(st, recs[39]), APSCHED_OK);
  assert_consistent(st);
  assert_int_equal(st->vtable->next_run_time(st), 5);

  recs[39]->next_run_time = 100000; /* the root becomes the latest */
  assert_int_equal(st->vtable->update(st, recs[39]), APSCHED_OK);
  assert_consistent(st);
  assert_int_equal(st->vtable->next_run_time(st), 1000);

  recs[0]->next_run_time = 1015; /* between j01 and j02 */
  assert_int_equal(st->vtable->update(st, recs[0]), APSCHED_OK);
  recs[5]->next_run_time = 1010; /* ties with j01, updated later: after it */
  assert_int_equal(st->vtable->update(st, recs[5]), APSCHED_OK);
  assert_consistent(st);
  static const char *const first[] = {"j01", "j05", "j00", "j02"};
  expect_claims(st, 1020, 10, first, 4);
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
  apsched_job_record *victim = NULL;
  for (int i = 0; i < 100 && !victim; i++) {
    snprintf(id, sizeof id, "r%03d", i);
    apsched_job_record *rec = st->vtable->lookup(st, id);
    if (rec->store_pos >= 5 && rec->store_pos < 40) victim = rec;
  }
  assert_non_null(victim);
  apsched_time_t gone = victim->next_run_time;
  char victim_id[16];
  snprintf(victim_id, sizeof victim_id, "%s", victim->id);
  assert_int_equal(st->vtable->remove(st, victim_id), APSCHED_OK);
  assert_consistent(st);
  assert_null(st->vtable->lookup(st, victim_id));
  assert_int_equal(st->vtable->remove(st, victim_id), APSCHED_ENOENT);
  assert_int_equal(st->vtable->remove(st, NULL), APSCHED_EINVAL);

  apsched_time_t expect = 0;
  for (int i = 0; i < 99; i++, expect++) {
    if (expect == gone) expect++;
    apsched_job_record *rec = NULL;
    assert_int_equal(st->vtable->claim_due(st, INT64_MAX, &rec, 1), 1);
    assert_int_equal(rec->next_run_time, expect);
    assert_int_equal(st->vtable->release(st, rec, true), APSCHED_OK);
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
  assert_int_equal(st->vtable->next_run_time(st), 10);
  assert_int_equal(st->vtable->claim_due(st, 9, NULL, 0), 0);
  expect_claims(st, 9, 10, NULL, 0);

  static const char *const upto25[] = {"e10", "e20"};
  expect_claims(st, 25, 10, upto25, 2); /* 'now' bounds the batch */
  assert_int_equal(st->vtable->next_run_time(st), 30);

  static const char *const two[] = {"e30", "e40"};
  expect_claims(st, 1000, 2, two, 2); /* 'max' bounds the batch */
  assert_int_equal(st->vtable->next_run_time(st), 50);

  static const char *const at50[] = {"e50"};
  expect_claims(st, 50, 10, at50, 1); /* due exactly at now */
  assert_int_equal(st->vtable->next_run_time(st), NONE);
  expect_claims(st, INT64_MAX, 10, NULL, 0);
  /* Claimed records are still stored (and freed by destroy). */
  assert_int_equal(stored_count(st), 5);
  assert_non_null(st->vtable->lookup(st, "e30"));
  free_store(st);
}

static void test_update_and_remove_of_claimed_records(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  add(st, "x", 10);
  add(st, "y", 20);
  apsched_job_record *x = NULL;
  assert_int_equal(st->vtable->claim_due(st, 10, &x, 1), 1);
  assert_string_equal(x->id, "x");
  assert_ptr_equal(st->vtable->lookup(st, "x"), x);

  /* Modified while claimed: stays out of the queue until released. */
  x->next_run_time = 1;
  assert_int_equal(st->vtable->update(st, x), APSCHED_OK);
  assert_consistent(st);
  assert_int_equal(st->vtable->next_run_time(st), 20);
  static const char *const just_y[] = {"y"};
  expect_claims(st, 15, 4, NULL, 0);

  assert_int_equal(st->vtable->release(st, x, false), APSCHED_OK);
  assert_consistent(st);
  assert_int_equal(st->vtable->next_run_time(st), 1);

  /* Removed while claimed: gone at once, and never released. */
  assert_int_equal(st->vtable->claim_due(st, 1, &x, 1), 1);
  assert_int_equal(st->vtable->remove(st, "x"), APSCHED_OK);
  assert_consistent(st);
  assert_null(st->vtable->lookup(st, "x"));
  assert_int_equal(stored_count(st), 1);
  expect_claims(st, INT64_MAX, 4, just_y, 1);
  free_store(st);
}

static void test_release(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  apsched_job_record *a = add(st, "a", 10);
  add(st, "b", 20);
  add(st, "c", 30);

  /* Releasing a record that is not claimed is refused. */
  assert_int_equal(st->vtable->release(st, a, false), APSCHED_EINVAL);
  assert_int_equal(st->vtable->release(st, NULL, false), APSCHED_EINVAL);

  apsched_job_record *rec = NULL;
  assert_int_equal(st->vtable->claim_due(st, 10, &rec, 1), 1);
  assert_ptr_equal(rec, a);
  a->next_run_time = 25; /* advanced by the scheduler: now between b and c */
  assert_int_equal(st->vtable->release(st, a, false), APSCHED_OK);
  assert_consistent(st);
  assert_int_equal(st->vtable->release(st, a, false), APSCHED_EINVAL); /* not claimed twice */
  static const char *const bac[] = {"b", "a", "c"};
  apsched_job_record *out[3];
  assert_int_equal(st->vtable->claim_due(st, 100, out, 3), 3);
  for (int i = 0; i < 3; i++) assert_string_equal(out[i]->id, bac[i]);

  /* A finished trigger: released with NONE, the job stays, paused. */
  out[0]->next_run_time = NONE;
  assert_int_equal(st->vtable->release(st, out[0], false), APSCHED_OK);
  /* remove_job: the job is deleted. */
  assert_int_equal(st->vtable->release(st, out[1], true), APSCHED_OK);
  out[2]->next_run_time = 40;
  assert_int_equal(st->vtable->release(st, out[2], false), APSCHED_OK);
  assert_consistent(st);
  assert_non_null(st->vtable->lookup(st, "b"));
  assert_null(st->vtable->lookup(st, "a"));
  assert_int_equal(st->vtable->next_run_time(st), 40);
  assert_int_equal(stored_count(st), 2);
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
  assert_int_equal(st->vtable->next_run_time(st), NONE);
  assert_null(st->vtable->lookup(st, "job1"));
  assert_null(st->vtable->lookup(st, "job3"));
  /* Usable again, and ids are free again. */
  add(st, "job1", 7);
  assert_int_equal(st->vtable->next_run_time(st), 7);
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
  assert_int_equal(st->vtable->next_run_time(st), NONE);
  add(st, "late", 300);
  assert_int_equal(st->vtable->next_run_time(st), 300);
  add(st, "negative", -5); /* before the epoch is a valid time */
  assert_int_equal(st->vtable->next_run_time(st), -5);
  add(st, "paused", NONE);
  assert_int_equal(st->vtable->next_run_time(st), -5);
  assert_int_equal(st->vtable->remove(st, "negative"), APSCHED_OK);
  assert_int_equal(st->vtable->next_run_time(st), 300);
  assert_int_equal(st->vtable->remove(st, "late"), APSCHED_OK);
  assert_int_equal(st->vtable->next_run_time(st), NONE);
  free_store(st);
}

/* The 32-bit sequence wraps: ties must still come out FIFO. */
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
  apsched_job_record *w00 = st->vtable->lookup(st, "w00");
  assert_int_equal(st->vtable->update(st, w00), APSCHED_OK);
  assert_consistent(st);
  add(st, "w12", 3);
  static const char *const order[] = {"w02", "w04", "w06", "w08", "w10", "w00", "w12",
                                      "w01", "w03", "w05", "w07", "w09", "w11"};
  drain_in_order(st, order, 13);
  free_store(st);
}

/* Ids of any bytes and lengths up to APSCHED_ID_MAX hash and compare
 * correctly; sequential ids spread over the buckets. */
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
  add(st, "", 1);  /* the empty id is still an id */
  add(st, "\xff\xfe", 2);
  assert_non_null(st->vtable->lookup(st, ""));
  assert_non_null(st->vtable->lookup(st, "\xff\xfe"));
  apsched_job_record *dup = make("", 3);
  assert_int_equal(st->vtable->add(st, dup), APSCHED_EEXIST);
  apsched_job_record_free(dup);
  memset(id, 'x', APSCHED_ID_MAX);
  id[APSCHED_ID_MAX - 1] = 'Q';
  apsched_job_record *q = st->vtable->lookup(st, id);
  assert_non_null(q);
  assert_int_equal(q->next_run_time, 'Q' - 'A');
  id[APSCHED_ID_MAX - 1] = 'x'; /* all 'x': never added */
  assert_null(st->vtable->lookup(st, id));
  id[APSCHED_ID_MAX - 2] = '\0'; /* a prefix of stored ids */
  assert_null(st->vtable->lookup(st, id));

  for (int i = 0; i < 20000; i++) {
    snprintf(id, sizeof id, "job-%d", i);
    apsched_job_record *rec = make(id, i);
    assert_int_equal(st->vtable->add(st, rec), APSCHED_OK);
  }
  assert_consistent(st);
  size_t buckets = 0;
  size_t longest = apsched__memory_store_max_chain(st, &buckets);
  assert_true(buckets >= 20000 + 26 + APSCHED_ID_MAX + 2);
  assert_true(longest <= 12);
  for (int i = 0; i < 20000; i++) {
    snprintf(id, sizeof id, "job-%d", i);
    apsched_job_record *rec = st->vtable->lookup(st, id);
    assert_non_null(rec);
    assert_string_equal(rec->id, id);
  }
  /* Removing most of them gives the memory back and keeps lookups working. */
  for (int i = 0; i < 19990; i++) {
    snprintf(id, sizeof id, "job-%d", i);
    assert_int_equal(st->vtable->remove(st, id), APSCHED_OK);
  }
  assert_consistent(st);
  apsched__memory_store_max_chain(st, &buckets);
  assert_true(buckets < 4096);
  assert_non_null(st->vtable->lookup(st, "job-19995"));
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
    int rc = st->vtable->add(st, rec);
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
  assert_null(st->vtable->lookup(st, id));
  assert_int_equal(st->vtable->next_run_time(st), 100 - (added - 1));

  /* A failed bucket growth only lengthens chains: the add succeeds. */
  allocations_left = 1; /* the heap array grows, the bucket array cannot */
  size_t buckets_before = 0, buckets_after = 0;
  apsched__memory_store_max_chain(st, &buckets_before);
  add(st, id, 1);
  apsched__memory_store_max_chain(st, &buckets_after);
  assert_int_equal(buckets_after, buckets_before);
  assert_non_null(st->vtable->lookup(st, id));

  /* Claimed jobs can always be released back without allocating. */
  apsched_job_record *claimed[64];
  int n = st->vtable->claim_due(st, INT64_MAX, claimed, 64);
  assert_int_equal(n, added + 1);
  for (int i = 0; i < n; i++) assert_int_equal(st->vtable->release(st, claimed[i], false), 0);
  assert_consistent(st);

  apsched__memory_store_set_realloc(st, NULL);
  add(st, "after", 0);
  apsched__memory_store_max_chain(st, &buckets_after);
  assert_true(buckets_after > buckets_before);
  free_store(st);
}

/* -------------------------------------------------------- randomized model */

enum { M_GONE, M_QUEUED, M_PAUSED, M_CLAIMED };

typedef struct model_job {
  int state;
  apsched_time_t t;
  uint64_t seq;
  apsched_job_record *rec;
} model_job;

#define POOL 1500

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
    m->claimed[m->nclaimed++] = due[k];
  }
}

static void test_randomized_against_model(void **state) {
  (void)state;
  apsched_jobstore *st = new_store();
  model *m = calloc(1, sizeof *m);
  assert_non_null(m);
  /* Start near the sequence wrap so renumbering happens mid-run. */
  apsched__memory_store_set_seq(st, UINT32_MAX - 3000);
  char id[64];

  for (int op = 0; op < 20000; op++) {
    int i = (int)rnd(POOL);
    model_job *j = &m->jobs[i];
    pool_id(i, id, sizeof id);
    uint64_t dice = rnd(1000);

    if (dice < 300) { /* add (a duplicate when the id is taken) */
      apsched_job_record *rec = make(id, random_time());
      int rc = st->vtable->add(st, rec);
      if (j->state != M_GONE) {
        assert_int_equal(rc, APSCHED_EEXIST);
        apsched_job_record_free(rec);
      } else {
        assert_int_equal(rc, APSCHED_OK);
        j->rec = rec;
        j->t = rec->next_run_time;
        model_queue(m, j);
      }
    } else if (dice < 500) { /* update: reschedule, pause or resume */
      apsched_job_record *rec = st->vtable->lookup(st, id);
      assert_ptr_equal(rec, j->state == M_GONE ? NULL : j->rec);
      if (rec) {
        rec->next_run_time = j->t = random_time();
        assert_int_equal(st->vtable->update(st, rec), APSCHED_OK);
        if (j->state != M_CLAIMED) model_queue(m, j);
      }
    } else if (dice < 600) { /* remove */
      int rc = st->vtable->remove(st, id);
      assert_int_equal(rc, j->state == M_GONE ? APSCHED_ENOENT : APSCHED_OK);
      if (j->state == M_CLAIMED) model_forget_claim(m, i);
      j->state = M_GONE;
      j->rec = NULL;
    } else if (dice < 750) { /* claim */
      model_claim(m, st);
    } else if (dice < 950) { /* release a claimed job */
      if (m->nclaimed > 0) {
        int k = (int)rnd((uint64_t)m->nclaimed);
        int ci = m->claimed[k];
        model_job *cj = &m->jobs[ci];
        bool remove_job = rnd(4) == 0;
        cj->rec->next_run_time = cj->t = random_time();
        assert_int_equal(st->vtable->release(st, cj->rec, remove_job), APSCHED_OK);
        model_forget_claim(m, ci);
        if (remove_job) {
          cj->state = M_GONE;
          cj->rec = NULL;
        } else {
          model_queue(m, cj);
        }
      }
    } else if (dice < 999) { /* lookup */
      apsched_job_record *rec = st->vtable->lookup(st, id);
      assert_ptr_equal(rec, j->state == M_GONE ? NULL : j->rec);
    } else { /* remove_all */
      assert_int_equal(st->vtable->remove_all(st), APSCHED_OK);
      memset(m->jobs, 0, sizeof m->jobs);
      m->nclaimed = 0;
    }

    assert_consistent(st);
    assert_int_equal(st->vtable->next_run_time(st), model_next(m));
  }

  int live = 0;
  for (int i = 0; i < POOL; i++) live += m->jobs[i].state != M_GONE;
  assert_int_equal(stored_count(st), live);
  /* Drain: every queued job comes out in (time, FIFO) order. */
  while (m->nclaimed > 0) {
    model_job *cj = &m->jobs[m->claimed[0]];
    cj->t = cj->rec->next_run_time = 1000;
    assert_int_equal(st->vtable->release(st, cj->rec, false), APSCHED_OK);
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
      cmocka_unit_test(test_remove_from_middle),
      cmocka_unit_test(test_claim_due_respects_now_max_and_order),
      cmocka_unit_test(test_update_and_remove_of_claimed_records),
      cmocka_unit_test(test_release),
      cmocka_unit_test(test_remove_all),
      cmocka_unit_test(test_foreach_visits_everything),
      cmocka_unit_test(test_next_run_time),
      cmocka_unit_test(test_sequence_wrap_keeps_fifo),
      cmocka_unit_test(test_ids_of_any_shape),
      cmocka_unit_test(test_out_of_memory),
      cmocka_unit_test(test_randomized_against_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
