/* The workload behind bench/instr_counts.sh: one operation repeated `count`
 * times on a scheduler that already holds `base` jobs, inside a function of
 * its own (measure_add, measure_remove, measure_dispatch, measure_cron_next)
 * so that `valgrind --tool=callgrind --toggle-collect=<that function>`
 * counts the instructions of the measured operations and nothing else
 * (set-up, trigger creation and teardown are outside it).
 *
 *   bench_instr add|remove|dispatch|cron_next [--base=N] [--count=N]
 *
 * Defaults: base 20,000 and count 20,000 (the store grows from 20 k to 40 k
 * jobs while adds are counted). Run natively it prints the ns per operation
 * too, which is only a sanity check: instruction counts are the figure.
 *   add       apsched_add_job of an interval job (intervals from a minute
 *             to a day, so first runs land all over the heap);
 *   remove    apsched_remove_job, random order, of `count` of base+count jobs;
 *   dispatch  one run through the inline executor: `count` interval jobs
 *             due over the last 10 s in random order, next to `base` jobs
 *             not due, drained by apsched_process (hosted);
 *   cron_next apsched_trigger_next of "0 * /5 9-17 * * mon-fri" in
 *             Europe/Berlin, each call from the previous result. */
#include <apsched.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_LEN 33
#define TRIGGER_POOL 64

static _Noreturn void die(const char *what, int rc) {
  fprintf(stderr, "bench_instr: %s failed: %s (%d)\n", what, apsched_strerror(rc), rc);
  exit(1);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t bound) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (rng_state * 0x2545f4914f6cdd1dull) % bound;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static apsched_trigger *interval_trigger(int64_t seconds, apsched_time_t start) {
  apsched_trigger *t;
  char err[256] = "";
  int rc = apsched_trigger_interval(
      &(apsched_interval_options){.seconds = seconds, .start_date = start}, &t, err, sizeof err);
  if (rc != APSCHED_OK) {
    fprintf(stderr, "bench_instr: interval trigger: %s\n", err);
    exit(1);
  }
  return t;
}

static long g_runs;
static int count_job(apsched_run_ctx *run) {
  (void)run;
  g_runs++; /* the inline executor: the loop's own thread */
  return 0;
}

static apsched_scheduler *hosted_scheduler(void) {
  apsched_scheduler *s;
  int rc = apsched_create(&(apsched_config){.timezone = "UTC"}, &s);
  if (rc != APSCHED_OK) die("apsched_create", rc);
  apsched_jobstore *st;
  apsched_executor *ex;
  if ((rc = apsched_memory_store_create(&st)) != APSCHED_OK) die("apsched_memory_store_create", rc);
  if ((rc = apsched_add_jobstore(s, st, "default")) != APSCHED_OK) die("apsched_add_jobstore", rc);
  if ((rc = apsched_inline_executor_create(&ex)) != APSCHED_OK) die("apsched_inline_executor", rc);
  if ((rc = apsched_add_executor(s, ex, "default")) != APSCHED_OK) die("apsched_add_executor", rc);
  if ((rc = apsched_start_hosted(s, false)) != APSCHED_OK) die("apsched_start_hosted", rc);
  return s;
}

/* Adds n interval jobs (a minute to a day) from the trigger pool, ids kept. */
static void add_jobs(apsched_scheduler *s, apsched_trigger *const *pool, char (*ids)[ID_LEN],
                     size_t n) {
  for (size_t i = 0; i < n; i++) {
    apsched_job_options o = {.func = count_job, .trigger = pool[i % TRIGGER_POOL]};
    int rc = apsched_add_job(s, &o, ids ? ids[i] : NULL, ids ? ID_LEN : 0);
    if (rc != APSCHED_OK) die("apsched_add_job", rc);
  }
}

/* The measured functions: not inlined, so callgrind sees them by name. */
static __attribute__((noinline)) void measure_add(apsched_scheduler *s, apsched_trigger *const *pool,
                                           size_t n) {
  add_jobs(s, pool, NULL, n);
}

static __attribute__((noinline)) void measure_remove(apsched_scheduler *s, char (*ids)[ID_LEN],
                                              const size_t *order, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int rc = apsched_remove_job(s, ids[order[i]], NULL);
    if (rc != APSCHED_OK) die("apsched_remove_job", rc);
  }
}

static __attribute__((noinline)) void measure_dispatch(apsched_scheduler *s) {
  int64_t wait = 0;
  do {
    int rc = apsched_process(s, &wait);
    if (rc != APSCHED_OK) die("apsched_process", rc);
  } while (wait == 0);
}

static __attribute__((noinline)) apsched_time_t measure_cron_next(const apsched_trigger *t, size_t n,
                                                           apsched_time_t from) {
  apsched_time_t prev = from;
  for (size_t i = 0; i < n; i++) prev = apsched_trigger_next(t, prev, from);
  return prev;
}

int main(int argc, char **argv) {
  size_t base = 20000, count = 20000;
  const char *op = NULL;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--base=", 7) == 0)
      base = strtoul(argv[i] + 7, NULL, 10);
    else if (strncmp(argv[i], "--count=", 8) == 0)
      count = strtoul(argv[i] + 8, NULL, 10);
    else if (!op)
      op = argv[i];
    else
      op = "";
  }
  if (!op || count == 0 ||
      (strcmp(op, "add") && strcmp(op, "remove") && strcmp(op, "dispatch") &&
       strcmp(op, "cron_next"))) {
    fprintf(stderr, "usage: bench_instr add|remove|dispatch|cron_next [--base=N] [--count=N]\n");
    return 2;
  }

  apsched_trigger *pool[TRIGGER_POOL];
  for (int i = 0; i < TRIGGER_POOL; i++)
    pool[i] = interval_trigger(60 + (int64_t)rnd(86400), 0);
  apsched_scheduler *s = hosted_scheduler();
  double t0 = 0, t1 = 0;

  if (strcmp(op, "add") == 0) {
    add_jobs(s, pool, NULL, base);
    t0 = now_ns();
    measure_add(s, pool, count);
    t1 = now_ns();
  } else if (strcmp(op, "remove") == 0) {
    size_t n = base + count;
    char(*ids)[ID_LEN] = malloc(n * sizeof *ids);
    size_t *order = malloc(n * sizeof *order);
    if (!ids || !order) die("malloc", APSCHED_ENOMEM);
    add_jobs(s, pool, ids, n);
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
      size_t j = (size_t)rnd(i), t = order[i - 1];
      order[i - 1] = order[j];
      order[j] = t;
    }
    t0 = now_ns();
    measure_remove(s, ids, order, count);
    t1 = now_ns();
    free(ids);
    free(order);
  } else if (strcmp(op, "dispatch") == 0) {
    add_jobs(s, pool, NULL, base); /* not due for a minute at least */
    apsched_time_t now = apsched_now();
    for (size_t i = 0; i < count; i++) {
      /* Every hour from a moment in the last 10 s: due once, then queued. */
      apsched_time_t due = now - (apsched_time_t)rnd(10000000);
      apsched_trigger *t = interval_trigger(3600, due);
      apsched_job_options o = {.func = count_job,
                               .trigger = t,
                               .next_run_time = due,
                               .misfire_grace_time = APSCHED_GRACE_UNLIMITED};
      int rc = apsched_add_job(s, &o, NULL, 0);
      if (rc != APSCHED_OK) die("apsched_add_job", rc);
      apsched_trigger_free(t);
    }
    t0 = now_ns();
    measure_dispatch(s);
    t1 = now_ns();
    if (g_runs != (long)count) {
      fprintf(stderr, "bench_instr: dispatch ran %ld of %zu runs\n", g_runs, count);
      return 1;
    }
  } else {
    apsched_trigger *cron;
    char err[256] = "";
    int rc = apsched_trigger_crontab("0 */5 9-17 * * mon-fri", "Europe/Berlin", &cron, err,
                                     sizeof err);
    if (rc != APSCHED_OK) {
      fprintf(stderr, "bench_instr: cron trigger: %s\n", err);
      return 1;
    }
    t0 = now_ns();
    apsched_time_t last = measure_cron_next(cron, count, apsched_now());
    t1 = now_ns();
    if (last == APSCHED_TIME_NONE) {
      fprintf(stderr, "bench_instr: cron_next ran out of fire times\n");
      return 1;
    }
    apsched_trigger_free(cron);
  }
  printf("{\"bench\":\"instr_workload\",\"op\":\"%s\",\"base\":%zu,\"count\":%zu,"
         "\"ns_per_op\":%.1f}\n",
         op, base, count, (t1 - t0) / (double)count);
  apsched_free(s);
  for (int i = 0; i < TRIGGER_POOL; i++) apsched_trigger_free(pool[i]);
  return 0;
}
