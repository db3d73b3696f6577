/* Scheduler benchmark through the public API, one JSON object per line. Every
 * figure is measured `--reps` times (default 5, --quick 2), each repetition
 * on a fresh scheduler, and printed as its median with _min and _max next to
 * it, plus "loadavg" (/proc/loadavg when the figure was finished: other work
 * on the machine shows up in the timings, so read them as ratios):
 *
 *   ops       ns per apsched_add_job (interval trigger, generated id),
 *             apsched_reschedule_job and apsched_remove_job (random order),
 *             and heap bytes per job, on the memory store at 10^3..10^6 jobs;
 *   dispatch  runs per second of 10^5 jobs through the inline executor or a
 *             10-worker thread pool, in the scenarios of `scenarios` below:
 *             all due at the same moment ("at_once") or due over 10 s in
 *             random insertion order ("spread_10s"; the 10 s end when the
 *             drain starts, so every job is already due and the figure is
 *             dispatch, not waiting); interval, date or mixed jobs (a third
 *             each interval, cron and date); "hosted" (apsched_process called
 *             until nothing is due) or "thread" (jobs added while paused,
 *             apsched_resume, the loop thread of apsched_start dispatches);
 *             with or without a listener on every event (APSCHED_EVENT_ALL)
 *             that counts them. The clock stops when the last job has run
 *             (with the listener: when it has seen the last run's EXECUTED
 *             event), awaited by condition variable;
 *   memory    heap bytes per job at 10^5 jobs for three job shapes: an
 *             interval job, a cron job (CRON_EXPR below, each job from a
 *             trigger of its own, as users add them) and a named interval
 *             job with a 16-byte argument;
 *   lateness  actual start minus scheduled time (p50, p99, p99.9) of 10^4
 *             date jobs spread over 3 s, with 10^5 more jobs stored.
 *
 *   bench_scheduler [--quick] [--reps=N] [--only=ops,dispatch,memory,lateness]
 *                   [--sizes=1e3,1e6] [--dispatch-jobs=N] [--memory-jobs=N]
 *                   [--lateness-jobs=N] [--stored=N] [--spread-ms=N]
 *                   [--timerslack-ns=N] [--executor=inline|threadpool]
 *                   [--trigger=interval|date|mixed] [--due=at_once|spread]
 *                   [--mode=hosted|thread]
 *
 * --quick is a smoke run for CI (10^3..10^4 jobs, 5,000 dispatched, 10^4 per
 * memory shape, 10^3 lateness jobs over 100 ms, 2 repetitions).
 * --timerslack-ns sets the calling thread's timer slack before schedulers
 * start (their threads inherit it), to see how much of the lateness is the
 * kernel's default 50 us slack. --executor, --trigger, --due and --mode
 * narrow dispatch (and --executor lateness) to some scenarios, for profiling.
 *
 * The ops and memory benches run hosted (apsched_start_hosted): no loop
 * thread competes with the measured calls. The lateness bench starts the
 * scheduler normally. bench/apscheduler_bench.py runs the same scenarios on
 * APScheduler 3.9.1; bench/run.sh prints both side by side. */
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
/* The cron job of the dispatch and memory scenarios: every 5 minutes during
 * working hours on weekdays, a typical business schedule. */
#define CRON_EXPR "0 */5 9-17 * * mon-fri"
/* Due times of the spread scenario: within this many microseconds before the
 * drain starts. */
#define SPREAD_US 10000000
/* Jobs run before each timed dispatch: worker threads, allocator free lists
 * and code paths warm. */
#define WARM_JOBS 1000

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
 * executor as "default", not started. */
static apsched_scheduler *new_scheduler(apsched_executor *ex) {
  apsched_scheduler *s;
  int rc = apsched_create(&(apsched_config){.timezone = "UTC"}, &s);
  if (rc != APSCHED_OK) die("apsched_create", rc);
  apsched_jobstore *st;
  if ((rc = apsched_memory_store_create(&st)) != APSCHED_OK) die("apsched_memory_store_create", rc);
  if ((rc = apsched_add_jobstore(s, st, "default")) != APSCHED_OK) die("apsched_add_jobstore", rc);
  if ((rc = apsched_add_executor(s, ex, "default")) != APSCHED_OK) die("apsched_add_executor", rc);
  return s;
}

/* The same, started hosted: nothing runs unless we call apsched_process. */
static apsched_scheduler *hosted_scheduler(apsched_executor *ex) {
  apsched_scheduler *s = new_scheduler(ex);
  int rc = apsched_start_hosted(s, false);
  if (rc != APSCHED_OK) die("apsched_start_hosted", rc);
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

/* ------------------------------------------------- spread and machine load */

/* A figure over its repetitions. */
typedef struct min_med_max {
  double min, med, max;
} min_med_max;

static min_med_max spread_of(double *v, size_t n) {
  double m = median(v, n); /* sorts v */
  return (min_med_max){v[0], m, v[n - 1]};
}

/* Prints ,"name":med,"name_min":min,"name_max":max with `decimals` decimals. */
static void print_spread(const char *name, min_med_max s, int decimals) {
  printf(",\"%s\":%.*f,\"%s_min\":%.*f,\"%s_max\":%.*f", name, decimals, s.med, name, decimals,
         s.min, name, decimals, s.max);
}

/* Ends a JSON line with the 1-, 5- and 15-minute load averages: the figures
 * move with whatever else the machine runs. */
static void end_line(void) {
  double l[3];
  FILE *f = fopen("/proc/loadavg", "r");
  bool ok = f && fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) == 3;
  if (f) fclose(f);
  if (ok)
    printf(",\"loadavg\":[%.2f,%.2f,%.2f]}\n", l[0], l[1], l[2]);
  else
    printf(",\"loadavg\":null}\n");
  fflush(stdout);
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

static void bench_ops(size_t n, size_t reps) {
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
  /* Small sizes finish in microseconds: more rounds than repetitions. */
  size_t rounds = n >= 100000 ? 1 : 100000 / n;
  if (rounds > 50) rounds = 50;
  if (rounds < reps) rounds = reps;
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
  const char *names[] = {"add", "reschedule", "remove"};
  double *values[] = {add, res, rem};
  for (int i = 0; i < 3; i++) {
    printf("{\"impl\":\"" IMPL "\",\"bench\":\"%s\",\"jobs\":%zu,\"rounds\":%zu", names[i], n,
           rounds);
    print_spread("ns_per_op", spread_of(values[i], rounds), 1);
    end_line();
  }
  /* Under a sanitizer's allocator mallinfo2 sees nothing: say so with null. */
  double b = (double)(last.heap + last.mmapped) / (double)n;
  if (b > 0)
    printf("{\"impl\":\"" IMPL "\",\"bench\":\"bytes_per_job\",\"jobs\":%zu,\"bytes_per_job\":%.1f,"
           "\"malloc_heap_per_job\":%.1f,\"mmap_per_job\":%.1f",
           n, b, (double)last.heap / (double)n, (double)last.mmapped / (double)n);
  else
    printf("{\"impl\":\"" IMPL "\",\"bench\":\"bytes_per_job\",\"jobs\":%zu,\"bytes_per_job\":null",
           n);
  end_line();
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

typedef enum job_kind { JOBS_INTERVAL, JOBS_DATE, JOBS_MIXED } job_kind;
static const char *const job_kind_names[] = {"interval", "date", "mixed"};

typedef struct scenario {
  bool pool;     /* the 10-worker thread pool, else the inline executor */
  job_kind jobs;
  bool spread;   /* due over the 10 s before the drain, in random order */
  bool thread;   /* apsched_start's loop thread, else hosted apsched_process */
  bool listener; /* a listener on every event, counting them */
} scenario;

/* In the order printed; apscheduler_bench.py runs the same list. */
static const scenario scenarios[] = {
    /* Identical jobs due at one moment, added in due order: the heap
     * behaves like a sorted array (the figure benchmarks usually show). */
    {false, JOBS_INTERVAL, false, false, false},
    {true, JOBS_INTERVAL, false, false, false},
    {false, JOBS_DATE, false, false, false},
    {true, JOBS_DATE, false, false, false},
    /* The same interval jobs due over 10 s, in random order. */
    {false, JOBS_INTERVAL, true, false, false},
    {true, JOBS_INTERVAL, true, false, false},
    /* What an application's scheduler holds: interval, cron and date jobs,
     * spread; hosted and background-thread loops, with and without a
     * listener. */
    {false, JOBS_MIXED, true, false, false},
    {true, JOBS_MIXED, true, false, false},
    {false, JOBS_MIXED, true, false, true},
    {true, JOBS_MIXED, true, false, true},
    {false, JOBS_MIXED, true, true, false},
    {true, JOBS_MIXED, true, true, false},
    {false, JOBS_MIXED, true, true, true},
    {true, JOBS_MIXED, true, true, true},
};

static atomic_long events_seen;

/* The trivial listener of the listener scenarios: counts events, and runs
 * by their EXECUTED event (the jobs count nothing then), so the clock stops
 * when the listener has seen the last run, not before its events. */
static void count_event(const apsched_event *ev, void *ud) {
  (void)ud;
  atomic_fetch_add_explicit(&events_seen, 1, memory_order_relaxed);
  if (ev->code == APSCHED_EVENT_JOB_EXECUTED) tally_one(&tally.runs);
}

static apsched_trigger *cron_trigger(void) {
  apsched_trigger *t;
  char err[256] = "";
  int rc = apsched_trigger_crontab(CRON_EXPR, "UTC", &t, err, sizeof err);
  if (rc != APSCHED_OK) {
    fprintf(stderr, "bench_scheduler: cron trigger: %s\n", err);
    exit(1);
  }
  return t;
}

/* Adds n jobs, due now or (spread) at random moments of the last 10 s.
 * Interval jobs run every hour from their due time, cron jobs by CRON_EXPR
 * after it (next_run_time = due): each runs once here and is queued again;
 * date jobs run once and are removed. Mixed: interval, cron, date for
 * i % 3 = 0, 1, 2. Unlimited grace: a slow executor is measured, not
 * skipped. Triggers are copied by apsched_add_job. */
static void add_due_jobs(apsched_scheduler *s, size_t n, job_kind kind, bool spread,
                         const apsched_trigger *cron, apsched_job_fn func) {
  apsched_time_t now = apsched_now();
  for (size_t i = 0; i < n; i++) {
    apsched_time_t due = spread ? now - 1 - (apsched_time_t)rnd(SPREAD_US) : now;
    int shape = kind == JOBS_MIXED ? (int)(i % 3) : kind == JOBS_DATE ? 2 : 0;
    apsched_trigger *own = NULL;
    if (shape == 0)
      own = interval_trigger(&(apsched_interval_options){.hours = 1, .start_date = due});
    else if (shape == 2)
      own = date_trigger(due);
    apsched_job_options o = {.func = func,
                             .trigger = own ? own : cron,
                             .next_run_time = shape == 2 ? 0 : due,
                             .misfire_grace_time = APSCHED_GRACE_UNLIMITED};
    int rc = apsched_add_job(s, &o, NULL, 0);
    if (rc != APSCHED_OK) die("apsched_add_job", rc);
    apsched_trigger_free(own);
  }
}

/* Runs everything due: hosted, apsched_process until nothing is due at once
 * any more; thread mode, apsched_resume lets the loop thread do it (and
 * apsched_pause stops it again afterwards). Awaits the last run; returns ns
 * from the start until it ended, and the events the listener saw then. */
static double drain(apsched_scheduler *s, long n, bool thread, long *events) {
  tally_reset(n);
  atomic_store(&events_seen, 0);
  double t0 = now_ns();
  int rc;
  if (thread) {
    if ((rc = apsched_resume(s)) != APSCHED_OK) die("apsched_resume", rc);
  } else {
    int64_t wait = 0;
    do {
      if ((rc = apsched_process(s, &wait)) != APSCHED_OK) die("apsched_process", rc);
    } while (wait == 0);
  }
  if (!tally_wait(120)) {
    fprintf(stderr, "bench_scheduler: dispatch: only %ld of %ld runs after 120 s\n",
            atomic_load(&tally.runs), n);
    exit(1);
  }
  *events = atomic_load(&events_seen);
  if (atomic_load(&tally.runs) != n) fail("dispatch: wrong number of runs");
  if (thread && (rc = apsched_pause(s)) != APSCHED_OK) die("apsched_pause", rc);
  return atomic_load(&tally.done_at) - t0;
}

static void bench_dispatch(size_t n, size_t reps, const scenario *sc) {
  apsched_trigger *cron = cron_trigger();
  double *rate = xmalloc(reps * sizeof *rate), *ns = xmalloc(reps * sizeof *ns),
         *evs = xmalloc(reps * sizeof *evs);
  for (size_t r = 0; r < reps; r++) {
    apsched_scheduler *s = new_scheduler(sc->pool ? thread_pool() : inline_executor());
    int rc;
    if (sc->listener &&
        (rc = apsched_add_listener(s, count_event, APSCHED_EVENT_ALL, NULL, NULL)) != APSCHED_OK)
      die("apsched_add_listener", rc);
    /* Thread mode starts paused: the jobs go in before the loop sees them. */
    rc = sc->thread ? apsched_start(s, true) : apsched_start_hosted(s, false);
    if (rc != APSCHED_OK) die(sc->thread ? "apsched_start" : "apsched_start_hosted", rc);
    long events;
    size_t warm = n < WARM_JOBS ? n : WARM_JOBS;
    apsched_job_fn func = sc->listener ? nop_job : count_job; /* see count_event */
    add_due_jobs(s, warm, sc->jobs, sc->spread, cron, func);
    drain(s, (long)warm, sc->thread, &events);
    add_due_jobs(s, n, sc->jobs, sc->spread, cron, func);
    ns[r] = drain(s, (long)n, sc->thread, &events) / (double)n;
    rate[r] = 1e9 / ns[r];
    evs[r] = (double)events / (double)n;
    apsched_free(s);
  }
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"dispatch\",\"executor\":\"%s\",\"trigger\":\"%s\","
         "\"due\":\"%s\",\"mode\":\"%s\",\"listener\":%s,\"jobs\":%zu,\"reps\":%zu",
         sc->pool ? "threadpool" : "inline", job_kind_names[sc->jobs],
         sc->spread ? "spread_10s" : "at_once", sc->thread ? "thread" : "hosted",
         sc->listener ? "true" : "false", n, reps);
  print_spread("runs_per_sec", spread_of(rate, reps), 0);
  print_spread("ns_per_run", spread_of(ns, reps), 1);
  if (sc->listener) printf(",\"events_per_run\":%.2f", median(evs, reps));
  end_line();
  free(rate);
  free(ns);
  free(evs);
  apsched_trigger_free(cron);
}

/* --------------------------------------------------------------- memory */

typedef enum job_shape { SHAPE_INTERVAL, SHAPE_CRON, SHAPE_NAMED_ARG } job_shape;
static const char *const job_shape_names[] = {"interval", "cron", "named_arg"};

/* Heap bytes per job after adding n jobs of one shape to a fresh scheduler,
 * each from a trigger of its own (created, added, freed: the job keeps its
 * copy) and with a generated 32-character id; 0 under a sanitizer's
 * allocator, which mallinfo2 does not see. */
static double memory_round(size_t n, job_shape shape) {
  apsched_scheduler *s = hosted_scheduler(inline_executor());
  heap_use before = heap_in_use();
  for (size_t i = 0; i < n; i++) {
    apsched_trigger *t =
        shape == SHAPE_CRON
            ? cron_trigger()
            : interval_trigger(&(apsched_interval_options){.seconds = 60 + (int64_t)rnd(86400)});
    apsched_job_options o = {.func = nop_job, .trigger = t};
    char name[32];
    unsigned char arg[16];
    if (shape == SHAPE_NAMED_ARG) {
      snprintf(name, sizeof name, "report-%07zu", i);
      for (size_t k = 0; k < sizeof arg; k++) arg[k] = (unsigned char)(i >> (k % 8 * 8));
      o.name = name;
      o.arg_bytes = arg;
      o.arg_len = sizeof arg;
    }
    int rc = apsched_add_job(s, &o, NULL, 0);
    if (rc != APSCHED_OK) die("apsched_add_job", rc);
    apsched_trigger_free(t);
  }
  heap_use after = heap_in_use();
  apsched_free(s);
  return (double)(after.heap + after.mmapped - before.heap - before.mmapped) / (double)n;
}

static void bench_memory(size_t n, size_t reps, job_shape shape) {
  double *b = xmalloc(reps * sizeof *b);
  for (size_t r = 0; r < reps; r++) b[r] = memory_round(n, shape);
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"memory\",\"job\":\"%s\",\"jobs\":%zu,\"reps\":%zu",
         job_shape_names[shape], n, reps);
  min_med_max sp = spread_of(b, reps);
  if (sp.min > 0)
    print_spread("bytes_per_job", sp, 1);
  else
    printf(",\"bytes_per_job\":null");
  end_line();
  free(b);
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

typedef struct lateness_result {
  double p50, p99, p999, min, max; /* microseconds */
  size_t ran;
  long missed;
  double first_due_ms;
} lateness_result;

/* One repetition: m date jobs due over spread_ms, starting lead_ms after
 * the adds end, next to `stored` jobs not due. */
static lateness_result lateness_round(size_t m, size_t stored, int64_t spread_ms, int64_t lead_ms,
                                      bool pool) {
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
   * the loop. */
  if ((rc = apsched_start(s, true)) != APSCHED_OK) die("apsched_start", rc);
  apsched_trigger *far = interval_trigger(&(apsched_interval_options){.weeks = 1});
  for (size_t i = 0; i < stored; i++) {
    apsched_job_options o = {.func = nop_job, .trigger = far};
    if ((rc = apsched_add_job(s, &o, NULL, 0)) != APSCHED_OK) die("apsched_add_job", rc);
  }
  apsched_trigger_free(far);
  apsched_time_t base = apsched_now() + lead_ms * APSCHED_MSEC;
  for (size_t i = 0; i < m; i++) {
    apsched_trigger *t = date_trigger(base + (apsched_time_t)rnd((uint64_t)spread_ms * 1000));
    apsched_job_options o = {.func = lateness_job, .trigger = t};
    if ((rc = apsched_add_job(s, &o, NULL, 0)) != APSCHED_OK) die("apsched_add_job", rc);
    apsched_trigger_free(t);
  }
  lateness_result r = {.first_due_ms = (double)(base - apsched_now()) / 1e3};
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
  if (n == 0) fail("lateness: no job ran");
  qsort(late.ns, n, sizeof *late.ns, cmp_i64);
  r.p50 = (double)percentile(late.ns, n, 0.5) / 1e3;
  r.p99 = (double)percentile(late.ns, n, 0.99) / 1e3;
  r.p999 = (double)percentile(late.ns, n, 0.999) / 1e3;
  r.min = (double)late.ns[0] / 1e3;
  r.max = (double)late.ns[n - 1] / 1e3;
  r.ran = n;
  r.missed = atomic_load(&tally.missed);
  free(late.ns);
  late.ns = NULL;
  return r;
}

static void bench_lateness(size_t m, size_t stored, int64_t spread_ms, int64_t lead_ms,
                           size_t reps, bool pool, long timerslack) {
  double *p50 = xmalloc(reps * sizeof(double)), *p99 = xmalloc(reps * sizeof(double)),
         *p999 = xmalloc(reps * sizeof(double));
  lateness_result all = {0};
  for (size_t k = 0; k < reps; k++) {
    lateness_result r = lateness_round(m, stored, spread_ms, lead_ms, pool);
    p50[k] = r.p50;
    p99[k] = r.p99;
    p999[k] = r.p999;
    if (k == 0 || r.min < all.min) all.min = r.min;
    if (k == 0 || r.max > all.max) all.max = r.max;
    all.ran += r.ran;
    all.missed += r.missed;
    all.first_due_ms = r.first_due_ms;
  }
  /* ran and missed: totals over the repetitions; min_us and max_us: over all runs. */
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"lateness\",\"executor\":\"%s\",\"jobs\":%zu,"
         "\"stored\":%zu,\"spread_ms\":%lld,\"reps\":%zu,\"ran\":%zu,\"missed\":%ld",
         pool ? "threadpool" : "inline", m, stored, (long long)spread_ms, reps, all.ran,
         all.missed);
  print_spread("p50_us", spread_of(p50, reps), 1);
  print_spread("p99_us", spread_of(p99, reps), 1);
  print_spread("p999_us", spread_of(p999, reps), 1);
  printf(",\"min_us\":%.1f,\"max_us\":%.1f,\"first_due_after_ms\":%.1f", all.min, all.max,
         all.first_due_ms);
  if (timerslack >= 0) printf(",\"timerslack_ns\":%ld", timerslack);
  end_line();
  free(p50);
  free(p99);
  free(p999);
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
          "usage: bench_scheduler [--quick] [--reps=N] [--only=ops,dispatch,memory,lateness]\n"
          "                       [--sizes=1e3,1e4,...] [--dispatch-jobs=N] [--memory-jobs=N]\n"
          "                       [--lateness-jobs=N] [--stored=N] [--spread-ms=N]\n"
          "                       [--timerslack-ns=N] [--executor=inline|threadpool]\n"
          "                       [--trigger=interval|date|mixed] [--due=at_once|spread]\n"
          "                       [--mode=hosted|thread]\n");
  exit(2);
}

/* A --name=value option from a fixed set: the index of value, or usage. */
static int choice(const char *value, const char *const *names, int count) {
  for (int i = 0; i < count; i++)
    if (strcmp(value, names[i]) == 0) return i;
  usage();
}

int main(int argc, char **argv) {
  size_t sizes[16] = {1000, 10000, 100000, 1000000};
  size_t nsizes = 4;
  size_t dispatch_jobs = 100000, memory_jobs = 100000, lateness_jobs = 10000, stored = 100000,
         spread_ms = 3000, reps = 5;
  int64_t lead_ms = 500;
  bool run_ops = true, run_dispatch = true, run_memory = true, run_lateness = true;
  long timerslack = -1;
  int executor = -1, trigger = -1, due = -1, mode = -1; /* -1: every one */
  static const char *const executors[] = {"inline", "threadpool"};
  static const char *const dues[] = {"at_once", "spread"};
  static const char *const modes[] = {"hosted", "thread"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    size_t v;
    if (strcmp(a, "--quick") == 0) {
      sizes[0] = 1000;
      sizes[1] = 10000;
      nsizes = 2;
      dispatch_jobs = 5000;
      memory_jobs = 10000;
      lateness_jobs = 1000;
      stored = 10000;
      spread_ms = 100;
      lead_ms = 50;
      reps = 2;
    } else if (strncmp(a, "--only=", 7) == 0) {
      const char *list = a + 7;
      run_ops = strstr(list, "ops") != NULL;
      run_dispatch = strstr(list, "dispatch") != NULL;
      run_memory = strstr(list, "memory") != NULL;
      run_lateness = strstr(list, "lateness") != NULL;
      if (!run_ops && !run_dispatch && !run_memory && !run_lateness) usage();
    } else if (strncmp(a, "--sizes=", 8) == 0) {
      nsizes = 0;
      for (const char *p = a + 8; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (nsizes == sizeof sizes / sizeof sizes[0] || !parse_count(p, &sizes[nsizes])) usage();
        nsizes++;
      }
    } else if (strncmp(a, "--reps=", 7) == 0 && parse_count(a + 7, &v)) {
      reps = v;
    } else if (strncmp(a, "--dispatch-jobs=", 16) == 0 && parse_count(a + 16, &v)) {
      dispatch_jobs = v;
    } else if (strncmp(a, "--memory-jobs=", 14) == 0 && parse_count(a + 14, &v)) {
      memory_jobs = v;
    } else if (strncmp(a, "--lateness-jobs=", 16) == 0 && parse_count(a + 16, &v)) {
      lateness_jobs = v;
    } else if (strncmp(a, "--stored=", 9) == 0 && parse_count(a + 9, &v)) {
      stored = v;
    } else if (strncmp(a, "--spread-ms=", 12) == 0 && parse_count(a + 12, &v)) {
      spread_ms = v;
    } else if (strncmp(a, "--timerslack-ns=", 16) == 0 && parse_count(a + 16, &v)) {
      timerslack = (long)v;
    } else if (strncmp(a, "--executor=", 11) == 0) {
      executor = choice(a + 11, executors, 2);
    } else if (strncmp(a, "--trigger=", 10) == 0) {
      trigger = choice(a + 10, job_kind_names, 3);
    } else if (strncmp(a, "--due=", 6) == 0) {
      due = choice(a + 6, dues, 2);
    } else if (strncmp(a, "--mode=", 7) == 0) {
      mode = choice(a + 7, modes, 2);
    } else {
      usage();
    }
  }
  if (timerslack >= 0 && prctl(PR_SET_TIMERSLACK, (unsigned long)timerslack, 0, 0, 0) != 0)
    fail("prctl(PR_SET_TIMERSLACK) failed");

  if (run_ops)
    for (size_t i = 0; i < nsizes; i++) bench_ops(sizes[i], reps);
  if (run_dispatch)
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
      const scenario *sc = &scenarios[i];
      if ((executor < 0 || executor == sc->pool) && (trigger < 0 || trigger == (int)sc->jobs) &&
          (due < 0 || due == sc->spread) && (mode < 0 || mode == sc->thread))
        bench_dispatch(dispatch_jobs, reps, sc);
    }
  if (run_memory)
    for (int shape = SHAPE_INTERVAL; shape <= SHAPE_NAMED_ARG; shape++)
      bench_memory(memory_jobs, reps, (job_shape)shape);
  if (run_lateness) {
    if (executor != 0)
      bench_lateness(lateness_jobs, stored, (int64_t)spread_ms, lead_ms, reps, true, timerslack);
    if (executor != 1)
      bench_lateness(lateness_jobs, stored, (int64_t)spread_ms, lead_ms, reps, false, timerslack);
  }
  return 0;
}
