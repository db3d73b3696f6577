/* Memory job store benchmark: time per add, lookup, reschedule, claim+release
 * and remove, and the heap memory each job costs, for 10^3..10^6 jobs.
 *
 *   bench_store [N ...]      (default: 1000 10000 100000 1000000)
 *
 * Prints one JSON object per N. Jobs get 32-hex-character ids and a clone of
 * one interval trigger, as the scheduler makes them. Times are per operation
 * in nanoseconds; "add_ns" is the store's add alone (a batch of one record),
 * "record_ns" the building of the record (allocation, id copy, trigger clone)
 * that precedes it. Likewise "reschedule_ns" is the store's part of a
 * reschedule (lookup, then update swapping in the new record and freeing the
 * old one); the new records are built outside the timed sections. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apsched_plugin.h"
#include "../src/internal.h"

typedef char job_id[33];

/* Reschedules build their new records in chunks of this many, untimed. */
#define CHUNK 1024

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t bound) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (rng * 0x2545f4914f6cdd1dull) % bound;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Everything malloc has handed out, including large blocks it mmaps (the
 * heap and bucket arrays of a big store). */
static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

static void shuffle(size_t *a, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)rnd(i);
    size_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

static apsched_time_t random_time(void) {
  /* A day's spread from a fixed start, at microsecond resolution. */
  return 1767225600LL * APSCHED_SEC + (apsched_time_t)rnd((uint64_t)APSCHED_DAY);
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_store: %s failed: %s (%d)\n", what, apsched_strerror(rc), rc);
  exit(1);
}

typedef struct totals {
  double record, add, lookup, reschedule, claim, remove;
  double bytes;
} totals;

/* A fresh record for id with a clone of proto, due at a random time. */
static apsched_job_record *new_record(const char *id, const apsched_trigger *proto) {
  apsched_job_record *rec = apsched__record_new(id);
  if (!rec) die("apsched__record_new", APSCHED_ENOMEM);
  int rc = apsched_trigger_clone(proto, &rec->trigger);
  if (rc) die("apsched_trigger_clone", rc);
  rec->next_run_time = rec->trigger_time = random_time();
  return rec;
}

/* One round: build n jobs, add them, then exercise and remove them. */
static void round_trip(size_t n, const apsched_trigger *proto, const job_id *ids,
                       apsched_job_record **recs, size_t *order, totals *tot) {
  size_t before = heap_in_use();
  apsched_jobstore *st = NULL;
  int rc = apsched_memory_store_create(&st);
  if (rc) die("apsched_memory_store_create", rc);
  const apsched_jobstore_vtable *vt = st->vtable;

  double t0 = now_ns();
  for (size_t i = 0; i < n; i++) recs[i] = new_record(ids[i], proto);
  double t1 = now_ns();
  for (size_t i = 0; i < n; i++) {
    rc = vt->add(st, &recs[i], 1, NULL, NULL);
    if (rc) die("add", rc);
  }
  double t2 = now_ns();
  tot->bytes += (double)(heap_in_use() - before) / (double)n;
  tot->record += (t1 - t0) / (double)n;
  tot->add += (t2 - t1) / (double)n;

  shuffle(order, n);
  size_t found = 0;
  t0 = now_ns();
  for (size_t i = 0; i < n; i++) {
    const apsched_job_record *rec = NULL;
    found += vt->lookup(st, ids[order[i]], &rec) == APSCHED_OK && rec != NULL;
  }
  t1 = now_ns();
  if (found != n) die("lookup", APSCHED_ENOENT);
  tot->lookup += (t1 - t0) / (double)n;

  /* What reschedule_job costs the store: find the job, swap in the new
   * record (the store frees the old one). Building the new records (the
   * scheduler copies the old one) is not timed: it is done a chunk at a time
   * into recs, whose pointers are no longer needed once the adds are done. */
  double resched = 0;
  for (size_t base = 0; base < n; base += CHUNK) {
    size_t m = n - base < CHUNK ? n - base : CHUNK;
    for (size_t i = 0; i < m; i++) recs[i] = new_record(ids[order[base + i]], proto);
    t0 = now_ns();
    for (size_t i = 0; i < m; i++) {
      const apsched_job_record *old = NULL;
      rc = vt->lookup(st, ids[order[base + i]], &old);
      if (rc) die("lookup", rc);
      rc = vt->update(st, recs[i]);
      if (rc) die("update", rc);
    }
    t1 = now_ns();
    resched += t1 - t0;
  }
  tot->reschedule += resched / (double)n;

  /* The loop's steady state: claim the earliest job, advance it, put it back. */
  t0 = now_ns();
  for (size_t i = 0; i < n; i++) {
    apsched_job_record *rec = NULL;
    if (vt->claim_due(st, INT64_MAX, &rec, 1) != 1) die("claim_due", APSCHED_EBACKEND);
    rc = vt->release(st, rec, rec->next_run_time + APSCHED_DAY, rec->trigger_time + APSCHED_DAY,
                     false);
    if (rc) die("release", rc);
  }
  t1 = now_ns();
  tot->claim += (t1 - t0) / (double)n;

  shuffle(order, n);
  t0 = now_ns();
  for (size_t i = 0; i < n; i++) {
    rc = vt->remove(st, ids[order[i]]);
    if (rc) die("remove", rc);
  }
  t1 = now_ns();
  tot->remove += (t1 - t0) / (double)n;

  vt->destroy(st);
}

static void bench(size_t n, const apsched_trigger *proto) {
  job_id *ids = malloc(n * sizeof *ids);
  apsched_job_record **recs = malloc(n * sizeof *recs);
  size_t *order = malloc(n * sizeof *order);
  if (!ids || !recs || !order) die("malloc", APSCHED_ENOMEM);
  for (size_t i = 0; i < n; i++) {
    apsched__uuid_hex(ids[i]);
    order[i] = i;
  }
  /* Small stores finish in microseconds: repeat them to average out noise. */
  size_t rounds = n >= 100000 ? 1 : 100000 / n;
  totals tot = {0};
  for (size_t r = 0; r < rounds; r++) round_trip(n, proto, ids, recs, order, &tot);
  double k = (double)rounds;
  /* Under a sanitizer's allocator mallinfo2 sees nothing: say so with null. */
  char bytes[32] = "null";
  if (tot.bytes > 0) snprintf(bytes, sizeof bytes, "%.1f", tot.bytes / k);
  printf("{\"bench\":\"memory_store\",\"jobs\":%zu,\"rounds\":%zu,\"record_ns\":%.1f,"
         "\"add_ns\":%.1f,\"lookup_ns\":%.1f,\"reschedule_ns\":%.1f,\"claim_release_ns\":%.1f,"
         "\"remove_ns\":%.1f,\"bytes_per_job\":%s}\n",
         n, rounds, tot.record / k, tot.add / k, tot.lookup / k, tot.reschedule / k,
         tot.claim / k, tot.remove / k, bytes);
  fflush(stdout);
  free(ids);
  free(recs);
  free(order);
}

int main(int argc, char **argv) {
  static const size_t defaults[] = {1000, 10000, 100000, 1000000};
  apsched_trigger *proto = NULL;
  char err[256] = "";
  int rc = apsched_trigger_interval(&(apsched_interval_options){.seconds = 1}, &proto, err,
                                    sizeof err);
  if (rc) {
    fprintf(stderr, "bench_store: interval trigger: %s\n", err);
    return 1;
  }
  if (argc > 1) {
    for (int i = 1; i < argc; i++) {
      char *end = NULL;
      double v = strtod(argv[i], &end); /* accepts 1e6 */
      if (!end || *end || v < 1 || v > 1e9) {
        fprintf(stderr, "usage: bench_store [jobs ...]   (e.g. 1000 1e6)\n");
        apsched_trigger_free(proto);
        return 2;
      }
      bench((size_t)v, proto);
    }
  } else {
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) bench(defaults[i], proto);
  }
  apsched_trigger_free(proto);
  return 0;
}
