/* Scheduler benchmark through the public API, one JSON object per line:
 *
 *   ops       ns per apsched_add_job (interval trigger, generated id),
 *             apsched_reschedule_job and apsched_remove_job (random order),
 *             and heap bytes per job, on the memory store at 10^3..10^6 jobs;
 *   dispatch  runs per second when 10^5 jobs are due at once, through the
 *             inline executor and a 10-worker thread pool;
 *   lateness  actual start minus scheduled time (p50, p99, p99.9) of 10^4
 *             date jobs spread over 3 s, with 10^5 more jobs stored.
 *
 *   bench_scheduler [--quick] [--only=ops,dispatch,lateness] [--sizes=1e3,1e6]
 *                   [--dispatch-jobs=N] [--lateness-jobs=N] [--stored=N]
 *                   [--spread-ms=N] [--timerslack-ns=N]
 *                   [--executor=inline|threadpool] [--trigger=interval|date]
 *
 * --quick is a smoke run for CI (10^3..10^4 jobs, 10^4 dispatched, 10^3
 * lateness jobs over 1 s). --timerslack-ns sets the calling thread's timer
 * slack before schedulers start (their threads inherit it), to see how much
 * of the lateness is the kernel's default 50 us slack. --executor and
 * --trigger narrow dispatch and lateness to one variant (for profiling).
 *
 * The ops and dispatch benches run hosted (apsched_start_hosted): no loop
 * thread competes with the measured calls, and apsched_process is timed
 * directly. The lateness bench starts the scheduler normally. */
#include <apsched.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define IMPL "libapsched"
#define ID_LEN 33
/* Triggers are created before the timed loops and cycled through, so job
 * times vary (the heap does real work) without timing trigger creation. */
#define TRIGGER_POOL 64

/* ------------------------------------------------------------- helpers */

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static _Noreturn void die(const char *what, int rc) {
  fprintf(stderr, "bench_scheduler: %s failed: %s (%d)\n", what, apsched_strerror(rc), rc);
  exit(1);
}

static _Noreturn void fail(const char *msg) {
  fprintf(stderr, "bench_scheduler: %s\n", msg);
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) fail("out of memory");
  return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t bound) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (rng_state * 0x2545f4914f6cdd1dull) % bound;
}

static void shuffle(size_t *a, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)rnd(i);
    size_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

/* Bytes malloc has handed out: small blocks (uordblks) and blocks it mmaps
 * (hblkhd: a big store's heap and bucket arrays). */
typedef struct heap_use {
  size_t heap, mmapped;
} heap_use;

static heap_use heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return (heap_use){mi.uordblks, mi.hblkhd};
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static int64_t percentile(const int64_t *sorted, size_t n, double p) {
  size_t rank = (size_t)(p * (double)n + 0.999999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

static apsched_trigger *interval_trigger(const apsched_interval_options *o) {
  apsched_trigger *t;
  char err[256] = "";
  int rc = apsched_trigger_interval(o, &t, err, sizeof err);
  if (rc != APSCHED_OK) {
    fprintf(stderr, "bench_scheduler: interval trigger: %s\n", err);
    exit(1);
  }
  return t;
}

static apsched_trigger *date_trigger(apsched_time_t when) {
  apsched_trigger *t;
  int rc = apsched_trigger_date(&(apsched_date_options){.run_date = when}, &t);
  if (rc != APSCHED_OK) die("apsched_trigger_date", rc);
  return t;
}

/* A scheduler on the real clock in UTC with a memory store and the given
 * executor as "default", started hosted: nothing runs unless we call
 * apsched_process. */
static apsched_scheduler *hosted_scheduler(apsched_executor *ex) {
  apsched_scheduler *s;
  int rc = apsched_create(&(apsched_config){.timezone = "UTC"}, &s);
  if (rc != APSCHED_OK) die("apsched_create", rc);
  apsched_jobstore *st;
  if ((rc = apsched_memory_store_create(&st)) != APSCHED_OK) die("apsched_memory_store_create", rc);
  if ((rc = apsched_add_jobstore(s, st, "default")) != APSCHED_OK) die("apsched_add_jobstore", rc);
  if ((rc = apsched_add_executor(s, ex, "default")) != APSCHED_OK) die("apsched_add_executor", rc);
  if ((rc = apsched_start_hosted(s, false)) != APSCHED_OK) die("apsched_start_hosted", rc);
  return s;
}

static apsched_executor *inline_executor(void) {
  apsched_executor *ex;
  int rc = apsched_inline_executor_create(&ex);
  if (rc != APSCHED_OK) die("apsched_inline_executor_create", rc);
  return ex;
}

static apsched_executor *thread_pool(void) {
  apsched_executor *ex;
  int rc = apsched_thread_pool_create(NULL, &ex); /* the default: 10 workers */
  if (rc != APSCHED_OK) die("apsched_thread_pool_create", rc);
  return ex;
}

/* --------------------------------------- run counting, awaited by condition */

static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  atomic_long runs;
  atomic_long missed;
  long target;
  _Atomic double done_at; /* now_ns() when the target was reached */
} tally = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void tally_reset(long target) {
  pthread_mutex_lock(&tally.lock);
  atomic_store(&tally.runs, 0);
  atomic_store(&tally.missed, 0);
  atomic_store(&tally.done_at, 0.0);
  tally.target = target;
  pthread_mutex_unlock(&tally.lock);
}

/* Counts one finished run (or miss); the one reaching the target wakes the waiter. */
static void tally_one(atomic_long *which) {
  long done = atomic_fetch_add(which, 1) + 1;
  long total = done + atomic_load(which == &tally.runs ? &tally.missed : &tally.runs);
  if (total >= tally.target) {
    pthread_mutex_lock(&tally.lock);
    if (atomic_load(&tally.done_at) == 0.0) atomic_store(&tally.done_at, now_ns());
    pthread_cond_broadcast(&tally.cond);
    pthread_mutex_unlock(&tally.lock);
  }
}

/* Waits until runs + misses reach the target; false after timeout_s seconds. */
static bool tally_wait(double timeout_s) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += (time_t)timeout_s + 1;
  pthread_mutex_lock(&tally.lock);
  bool ok = true;
  while (atomic_load(&tally.runs) + atomic_load(&tally.missed) < tally.target) {
    if (pthread_cond_timedwait(&tally.cond, &tally.lock, &deadline) == ETIMEDOUT) {
      ok = false;
      break;
    }
  }
  pthread_mutex_unlock(&tally.lock);
  return ok;
}

static int nop_job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

static int count_job(apsched_run_ctx *run) {
  (void)run;
  tally_one(&tally.runs);
  return 0;
}

static void on_missed(const apsched_event *ev, void *ud) {
  (void)ud;
  for (uint64_t i = 0; i < ev->missed_count; i++) tally_one(&tally.missed);
}

/* ------------------------------------------------------------------ ops */

typedef struct ops_result {
  double add_ns, reschedule_ns, remove_ns;
  heap_use bytes; /* delta after all adds */
} ops_result;

/* One round: add n jobs to a fresh started scheduler, reschedule each once
 * and remove each once, both in random order. */
static ops_result ops_round(size_t n, apsched_trigger *const *adds,
                            apsched_trigger *const *reschedules, char (*ids)[ID_LEN],
                            size_t *order) {
  apsched_scheduler *s = hosted_scheduler(inline_executor());
  ops_result r;
  heap_use before = heap_in_use();
  double t0 = now_ns();
  for (size_t i = 0; i < n; i++) {
    apsched_job_options o = {.func = nop_job, .trigger = adds[i % TRIGGER_POOL]};
    int rc = apsched_add_job(s, &o, ids[i], ID_LEN);
    if (rc != APSCHED_OK) die("apsched_add_job", rc);
  }
  double t1 = now_ns();
  heap_use after = heap_in_use();
  r.add_ns = (t1 - t0) / (double)n;
  r.bytes.heap = after.heap - before.heap;
  r.bytes.mmapped = after.mmapped - before.mmapped;

  shuffle(order, n);
  t0 = now_ns();
  for (size_t i = 0; i < n; i++) {
    int rc = apsched_reschedule_job(s, ids[order[i]], NULL, reschedules[i % TRIGGER_POOL]);
    if (rc != APSCHED_OK) die("apsched_reschedule_job", rc);
  }
  t1 = now_ns();
  r.reschedule_ns = (t1 - t0) / (double)n;

  shuffle(order, n);
  t0 = now_ns();
  for (size_t i = 0; i < n; i++) {
    int rc = apsched_remove_job(s, ids[order[i]], NULL);
    if (rc != APSCHED_OK) die("apsched_remove_job", rc);
  }
  t1 = now_ns();
  r.remove_ns = (t1 - t0) / (double)n;

  size_t left = 1;
  apsched_job *jobs = NULL;
  int rc = apsched_get_jobs(s, NULL, &jobs, &left);
  if (rc != APSCHED_OK) die("apsched_get_jobs", rc);
  apsched_jobs_free(jobs, left);
  if (left != 0) fail("jobs left in the store after removing every job");
  apsched_free(s);
  return r;
}

static void bench_ops(size_t n) {
  apsched_trigger *adds[TRIGGER_POOL], *reschedules[TRIGGER_POOL];
  for (int i = 0; i < TRIGGER_POOL; i++) {
    /* Intervals from a minute to a day: first runs land all over the heap. */
    adds[i] = interval_trigger(&(apsched_interval_options){.seconds = 60 + (int64_t)rnd(86400)});
    reschedules[i] =
        interval_trigger(&(apsched_interval_options){.seconds = 60 + (int64_t)rnd(86400)});
  }
  char(*ids)[ID_LEN] = xmalloc(n * sizeof *ids);
  size_t *order = xmalloc(n * sizeof *order);
  for (size_t i = 0; i < n; i++) order[i] = i;
  /* Small sizes finish in microseconds: repeat and take the median. */
  size_t rounds = n >= 100000 ? 1 : 100000 / n;
  if (rounds > 50) rounds = 50;
  double *add = xmalloc(rounds * sizeof *add), *res = xmalloc(rounds * sizeof *res),
         *rem = xmalloc(rounds * sizeof *rem);
  /* Memory from the last round: allocator caches are warm by then. */
  heap_use last = {0};
  for (size_t k = 0; k < rounds; k++) {
    ops_result r = ops_round(n, adds, reschedules, ids, order);
    add[k] = r.add_ns;
    res[k] = r.reschedule_ns;
    rem[k] = r.remove_ns;
    last = r.bytes;
  }
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"add\",\"jobs\":%zu,\"rounds\":%zu,\"ns_per_op\":%.1f}\n",
         n, rounds, median(add, rounds));
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"reschedule\",\"jobs\":%zu,\"rounds\":%zu,"
         "\"ns_per_op\":%.1f}\n",
         n, rounds, median(res, rounds));
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"remove\",\"jobs\":%zu,\"rounds\":%zu,\"ns_per_op\":%.1f}\n",
         n, rounds, median(rem, rounds));
  /* Under a sanitizer's allocator mallinfo2 sees nothing: say so with null. */
  double b = (double)(last.heap + last.mmapped) / (double)n;
  if (b > 0)
    printf("{\"impl\":\"" IMPL "\",\"bench\":\"bytes_per_job\",\"jobs\":%zu,\"bytes_per_job\":%.1f,"
           "\"malloc_heap_per_job\":%.1f,\"mmap_per_job\":%.1f}\n",
           n, b, (double)last.heap / (double)n, (double)last.mmapped / (double)n);
  else
    printf("{\"impl\":\"" IMPL "\",\"bench\":\"bytes_per_job\",\"jobs\":%zu,\"bytes_per_job\":null}\n",
           n);
  fflush(stdout);
  free(add);
  free(res);
  free(rem);
  free(ids);
  free(order);
  for (int i = 0; i < TRIGGER_POOL; i++) {
    apsched_trigger_free(adds[i]);
    apsched_trigger_free(reschedules[i]);
  }
}

/* ------------------------------------------------------------- dispatch */

/* Adds n jobs that are due at `due`: interval jobs (every hour from due,
 * so each runs once here and is queued again) or date jobs (run once and
 * are removed). Unlimited grace: a slow executor is measured, not skipped. */
static void add_due_jobs(apsched_scheduler *s, size_t n, apsched_time_t due, bool date) {
  apsched_trigger *t = date ? date_trigger(due)
                            : interval_trigger(&(apsched_interval_options){.hours = 1, .start_date = due});
  for (size_t i = 0; i < n; i++) {
    apsched_job_options o = {.func = count_job,
                             .trigger = t,
                             .next_run_time = date ? 0 : due,
                             .misfire_grace_time = APSCHED_GRACE_UNLIMITED};
    int rc = apsched_add_job(s, &o, NULL, 0);
    if (rc != APSCHED_OK) die("apsched_add_job", rc);
  }
  apsched_trigger_free(t);
}

/* Runs everything due now through the executor: processes until nothing is
 * due at once any more, then awaits the last run. Returns ns elapsed. */
static double drain(apsched_scheduler *s, long n) {
  tally_reset(n);
  double t0 = now_ns();
  int64_t wait = 0;
  do {
    int rc = apsched_process(s, &wait);
    if (rc != APSCHED_OK) die("apsched_process", rc);
  } while (wait == 0);
  if (!tally_wait(120)) {
    fprintf(stderr, "bench_scheduler: dispatch: only %ld of %ld runs after 120 s\n",
            atomic_load(&tally.runs), n);
    exit(1);
  }
  if (atomic_load(&tally.runs) != n) fail("dispatch: wrong number of runs");
  return atomic_load(&tally.done_at) - t0;
}

static void bench_dispatch(size_t n, bool pool, bool date) {
  apsched_scheduler *s = hosted_scheduler(pool ? thread_pool() : inline_executor());
  /* Warm-up: worker threads, allocator free lists, code paths. */
  size_t warm = n < 1000 ? n : 1000;
  add_due_jobs(s, warm, apsched_now(), date);
  drain(s, (long)warm);
  add_due_jobs(s, n, apsched_now(), date);
  double ns = drain(s, (long)n);
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"dispatch\",\"executor\":\"%s\",\"trigger\":\"%s\","
         "\"jobs\":%zu,\"runs_per_sec\":%.0f,\"ns_per_run\":%.1f}\n",
         pool ? "threadpool" : "inline", date ? "date" : "interval", n, (double)n / ns * 1e9,
         ns / (double)n);
  fflush(stdout);
  apsched_free(s);
}

/* ------------------------------------------------------------- lateness */

static struct {
  int64_t *ns; /* preallocated: one slot per job */
  size_t cap;
  atomic_size_t next;
} late;

static int lateness_job(apsched_run_ctx *run) {
  int64_t now = wall_ns();
  int64_t d = now - apsched_run_scheduled_time(run) * 1000;
  size_t i = atomic_fetch_add(&late.next, 1);
  if (i < late.cap) late.ns[i] = d;
  tally_one(&tally.runs);
  return 0;
}

static void bench_lateness(size_t m, size_t stored, int64_t spread_ms, bool pool,
                           long timerslack) {
  apsched_scheduler *s;
  int rc = apsched_create(&(apsched_config){.timezone = "UTC"}, &s);
  if (rc != APSCHED_OK) die("apsched_create", rc);
  if (!pool && (rc = apsched_add_executor(s, inline_executor(), "default")) != APSCHED_OK)
    die("apsched_add_executor", rc);
  /* Without a "default" executor, start adds the 10-worker thread pool. */
  if ((rc = apsched_add_listener(s, on_missed, APSCHED_EVENT_JOB_MISSED, NULL, NULL)) != APSCHED_OK)
    die("apsched_add_listener", rc);
  late.ns = xmalloc(m * sizeof *late.ns);
  late.cap = m;
  atomic_store(&late.next, 0);
  tally_reset((long)m);

  /* Started paused while the jobs go in, so adding does not compete with
   * the loop; the first job is due 0.5 s after the adds end. */
  if ((rc = apsched_start(s, true)) != APSCHED_OK) die("apsched_start", rc);
  apsched_trigger *far = interval_trigger(&(apsched_interval_options){.weeks = 1});
  for (size_t i = 0; i < stored; i++) {
    apsched_job_options o = {.func = nop_job, .trigger = far};
    if ((rc = apsched_add_job(s, &o, NULL, 0)) != APSCHED_OK) die("apsched_add_job", rc);
  }
  apsched_trigger_free(far);
  apsched_time_t base = apsched_now() + 500 * APSCHED_MSEC;
  for (size_t i = 0; i < m; i++) {
    apsched_trigger *t = date_trigger(base + (apsched_time_t)rnd((uint64_t)spread_ms * 1000));
    apsched_job_options o = {.func = lateness_job, .trigger = t};
    if ((rc = apsched_add_job(s, &o, NULL, 0)) != APSCHED_OK) die("apsched_add_job", rc);
    apsched_trigger_free(t);
  }
  double first_due_ms = (double)(base - apsched_now()) / 1e3;
  if ((rc = apsched_resume(s)) != APSCHED_OK) die("apsched_resume", rc);
  if (!tally_wait((double)spread_ms / 1000 + 60)) {
    fprintf(stderr, "bench_scheduler: lateness: only %ld runs and %ld misses of %zu\n",
            atomic_load(&tally.runs), atomic_load(&tally.missed), m);
    exit(1);
  }
  if ((rc = apsched_shutdown(s, true)) != APSCHED_OK) die("apsched_shutdown", rc);
  apsched_free(s);

  size_t n = atomic_load(&late.next);
  if (n > m) n = m;
  qsort(late.ns, n, sizeof *late.ns, cmp_i64);
  char extra[64] = "";
  if (timerslack >= 0) snprintf(extra, sizeof extra, ",\"timerslack_ns\":%ld", timerslack);
  if (n == 0) fail("lateness: no job ran");
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"lateness\",\"executor\":\"%s\",\"jobs\":%zu,"
         "\"stored\":%zu,\"spread_ms\":%lld,\"ran\":%zu,\"missed\":%ld,\"p50_us\":%.1f,"
         "\"p99_us\":%.1f,\"p999_us\":%.1f,\"min_us\":%.1f,\"max_us\":%.1f,"
         "\"first_due_after_ms\":%.1f%s}\n",
         pool ? "threadpool" : "inline", m, stored, (long long)spread_ms, n,
         atomic_load(&tally.missed), (double)percentile(late.ns, n, 0.5) / 1e3,
         (double)percentile(late.ns, n, 0.99) / 1e3, (double)percentile(late.ns, n, 0.999) / 1e3,
         (double)late.ns[0] / 1e3, (double)late.ns[n - 1] / 1e3, first_due_ms, extra);
  fflush(stdout);
  free(late.ns);
  late.ns = NULL;
}

/* ----------------------------------------------------------------- main */

static bool parse_count(const char *text, size_t *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end); /* accepts 1e6 */
  if (errno || end == text || (*end && *end != ',') || v < 1 || v > 1e9) return false;
  *out = (size_t)v;
  return true;
}

static _Noreturn void usage(void) {
  fprintf(stderr,
          "usage: bench_scheduler [--quick] [--only=ops,dispatch,lateness] [--sizes=1e3,1e4,...]\n"
          "                       [--dispatch-jobs=N] [--lateness-jobs=N] [--stored=N]\n"
          "                       [--spread-ms=N] [--timerslack-ns=N]\n"
          "                       [--executor=inline|threadpool] [--trigger=interval|date]\n");
  exit(2);
}

int main(int argc, char **argv) {
  size_t sizes[16] = {1000, 10000, 100000, 1000000};
  size_t nsizes = 4;
  size_t dispatch_jobs = 100000, lateness_jobs = 10000, stored = 100000, spread_ms = 3000;
  bool run_ops = true, run_dispatch = true, run_lateness = true;
  long timerslack = -1;
  bool use_inline = true, use_pool = true, use_interval = true, use_date = true;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    size_t v;
    if (strcmp(a, "--quick") == 0) {
      sizes[0] = 1000;
      sizes[1] = 10000;
      nsizes = 2;
      dispatch_jobs = 10000;
      lateness_jobs = 1000;
      stored = 10000;
      spread_ms = 1000;
    } else if (strncmp(a, "--only=", 7) == 0) {
      const char *list = a + 7;
      run_ops = strstr(list, "ops") != NULL;
      run_dispatch = strstr(list, "dispatch") != NULL;
      run_lateness = strstr(list, "lateness") != NULL;
      if (!run_ops && !run_dispatch && !run_lateness) usage();
    } else if (strncmp(a, "--sizes=", 8) == 0) {
      nsizes = 0;
      for (const char *p = a + 8; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (nsizes == sizeof sizes / sizeof sizes[0] || !parse_count(p, &sizes[nsizes])) usage();
        nsizes++;
      }
    } else if (strncmp(a, "--dispatch-jobs=", 16) == 0 && parse_count(a + 16, &v)) {
      dispatch_jobs = v;
    } else if (strncmp(a, "--lateness-jobs=", 16) == 0 && parse_count(a + 16, &v)) {
      lateness_jobs = v;
    } else if (strncmp(a, "--stored=", 9) == 0 && parse_count(a + 9, &v)) {
      stored = v;
    } else if (strncmp(a, "--spread-ms=", 12) == 0 && parse_count(a + 12, &v)) {
      spread_ms = v;
    } else if (strncmp(a, "--timerslack-ns=", 16) == 0 && parse_count(a + 16, &v)) {
      timerslack = (long)v;
    } else if (strcmp(a, "--executor=inline") == 0 || strcmp(a, "--executor=threadpool") == 0) {
      use_inline = a[11] == 'i';
      use_pool = !use_inline;
    } else if (strcmp(a, "--trigger=interval") == 0 || strcmp(a, "--trigger=date") == 0) {
      use_interval = a[10] == 'i';
      use_date = !use_interval;
    } else {
      usage();
    }
  }
  if (timerslack >= 0 && prctl(PR_SET_TIMERSLACK, (unsigned long)timerslack, 0, 0, 0) != 0)
    fail("prctl(PR_SET_TIMERSLACK) failed");

  if (run_ops)
    for (size_t i = 0; i < nsizes; i++) bench_ops(sizes[i]);
  if (run_dispatch) {
    for (int date = 0; date < 2; date++) {
      if (!(date ? use_date : use_interval)) continue;
      if (use_inline) bench_dispatch(dispatch_jobs, false, date);
      if (use_pool) bench_dispatch(dispatch_jobs, true, date);
    }
  }
  if (run_lateness) {
    if (use_pool) bench_lateness(lateness_jobs, stored, (int64_t)spread_ms, true, timerslack);
    if (use_inline) bench_lateness(lateness_jobs, stored, (int64_t)spread_ms, false, timerslack);
  }
  return 0;
}
