/* Process pool benchmark, one JSON object per line:
 *
 *   dispatch   runs per second when N trivial jobs are due at once, through
 *              a process pool and a thread pool with the same worker count
 *              (from the apsched_process call that submits them to the last
 *              outcome event);
 *   roundtrip  microseconds from submitting one trivial run to its outcome
 *              event, one run at a time (mean, p50, p99), for both pools;
 *              the process pool's overhead per run is the difference.
 *
 *   bench_process_pool [--quick] [--jobs=N] [--workers=N] [--roundtrips=N]
 *
 * --quick is a smoke run for CI (2,000 jobs, 200 round trips). The scheduler
 * runs hosted (apsched_start_hosted): no loop thread competes with the
 * measured work, and the submitting apsched_process call is timed directly.
 * The process pool is created first, while the process is single-threaded. */
#include <apsched.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static _Noreturn void die(const char *what, int rc) {
  fprintf(stderr, "bench_process_pool: %s failed: %s (%d)\n", what, apsched_strerror(rc), rc);
  exit(1);
}

#define CHECK(call)                 \
  do {                              \
    int rc_ = (call);               \
    if (rc_ != APSCHED_OK) die(#call, rc_); \
  } while (0)

static int trivial(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

/* Outcome events counted by a listener. */
typedef struct outcomes {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  long done, failed;
} outcomes;

static void on_outcome(const apsched_event *ev, void *ud) {
  outcomes *o = ud;
  pthread_mutex_lock(&o->lock);
  o->done++;
  if (ev->code != APSCHED_EVENT_JOB_EXECUTED) o->failed++;
  pthread_cond_broadcast(&o->changed);
  pthread_mutex_unlock(&o->lock);
}

static void await_outcomes(outcomes *o, long n) {
  pthread_mutex_lock(&o->lock);
  while (o->done < n) pthread_cond_wait(&o->changed, &o->lock);
  pthread_mutex_unlock(&o->lock);
}

static long seq; /* unique job ids */

static void add_due_job(apsched_scheduler *s, const char *executor) {
  char id[32];
  snprintf(id, sizeof id, "j%ld", seq++);
  apsched_job_options o = {.id = id, .func = trivial, .executor = executor,
                           .misfire_grace_time = APSCHED_GRACE_UNLIMITED};
  CHECK(apsched_add_job(s, &o, NULL, 0));
}

/* Hands everything due now to the executors (apsched_process claims a
 * bounded batch per call and asks to be called again at once). */
static void process(apsched_scheduler *s) {
  int64_t wait = 0;
  do CHECK(apsched_process(s, &wait));
  while (wait == 0);
}

static void bench_dispatch(apsched_scheduler *s, outcomes *o, const char *executor, int workers,
                           long jobs, bool print) {
  for (long i = 0; i < jobs; i++) add_due_job(s, executor);
  long base = o->done;
  double t0 = now_us();
  process(s);
  await_outcomes(o, base + jobs);
  double t1 = now_us();
  if (!print) return;
  printf("{\"bench\":\"dispatch\",\"executor\":\"%s\",\"workers\":%d,\"jobs\":%ld,"
         "\"runs_per_sec\":%.0f,\"failed\":%ld}\n",
         executor, workers, jobs, (double)jobs / ((t1 - t0) / 1e6), o->failed);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void bench_roundtrip(apsched_scheduler *s, outcomes *o, const char *executor, long runs) {
  double *lat = malloc((size_t)runs * sizeof *lat);
  if (!lat) die("malloc", APSCHED_ENOMEM);
  double sum = 0;
  for (long i = 0; i < runs; i++) {
    add_due_job(s, executor);
    long base = o->done;
    double t0 = now_us();
    process(s);
    await_outcomes(o, base + 1);
    lat[i] = now_us() - t0;
    sum += lat[i];
  }
  qsort(lat, (size_t)runs, sizeof *lat, cmp_double);
  printf("{\"bench\":\"roundtrip\",\"executor\":\"%s\",\"runs\":%ld,\"mean_us\":%.1f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"failed\":%ld}\n",
         executor, runs, sum / (double)runs, lat[runs / 2], lat[(runs * 99) / 100], o->failed);
  free(lat);
}

static long arg_long(const char *arg, const char *name, long fallback) {
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0) return fallback;
  char *end;
  long v = strtol(arg + n, &end, 10);
  if (*end || v <= 0) {
    fprintf(stderr, "bench_process_pool: %s needs a positive number, got '%s'\n", name, arg + n);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  long jobs = 20000, roundtrips = 2000, workers = 4;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      jobs = 2000;
      roundtrips = 200;
      continue;
    }
    long j = arg_long(argv[i], "--jobs=", -1), w = arg_long(argv[i], "--workers=", -1),
         r = arg_long(argv[i], "--roundtrips=", -1);
    if (j > 0) jobs = j;
    else if (w > 0) workers = w;
    else if (r > 0) roundtrips = r;
    else {
      fprintf(stderr,
              "usage: bench_process_pool [--quick] [--jobs=N] [--workers=N] [--roundtrips=N]\n");
      return 2;
    }
  }

  apsched_process_pool_options po = {.max_workers = (int)workers};
  apsched_executor *pp, *tp;
  char err[256];
  int rc = apsched_process_pool_create(&po, &pp, err, sizeof err);
  if (rc != APSCHED_OK) {
    fprintf(stderr, "bench_process_pool: %s\n", err);
    return 1;
  }
  apsched_thread_pool_options to = {.max_workers = (int)workers};
  CHECK(apsched_thread_pool_create(&to, &tp));

  outcomes o = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  CHECK(apsched_add_executor(s, pp, "processpool"));
  CHECK(apsched_add_executor(s, tp, "threadpool"));
  CHECK(apsched_add_listener(s, on_outcome,
                             APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_ERROR |
                                 APSCHED_EVENT_JOB_MISSED,
                             &o, NULL));
  CHECK(apsched_start_hosted(s, false));

  /* Warm up: workers forked, threads started, allocator primed. */
  bench_dispatch(s, &o, "processpool", (int)workers, workers * 20, false);
  bench_dispatch(s, &o, "threadpool", (int)workers, workers * 20, false);

  bench_dispatch(s, &o, "processpool", (int)workers, jobs, true);
  bench_dispatch(s, &o, "threadpool", (int)workers, jobs, true);
  bench_roundtrip(s, &o, "processpool", roundtrips);
  bench_roundtrip(s, &o, "threadpool", roundtrips);

  CHECK(apsched_shutdown(s, true));
  apsched_free(s);
  return o.failed ? 1 : 0;
}
