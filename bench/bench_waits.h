/* Runs that wait in a store several schedulers share (overlap policies on
 * PostgreSQL and Redis), measured with two schedulers of this process,
 * A and B, each with its own store on the same data (its own connections,
 * scheduler id and heartbeat): the path between them is the server's
 * (NOTIFY / PUBLISH, locks, scripts), as between two hosts. One JSON line
 * each, p50 / p99 / max over the samples:
 *
 *   <name>_wait_handoff  job w (buffer_one, one instance): a run of it runs
 *                        in A, B's run now of it waits in the store; A's run
 *                        returns: us until the waiting run starts (in A or
 *                        B, whichever takes it);
 *   <name>_cancel_reach  job c (cancel_other): a run of it runs in A; B's run
 *                        now asks it to stop: us from B's call until A's run
 *                        sees apsched_run_cancelled().
 *
 * Header-only, for bench_pg and bench_redis: define BENCH_NAME and include
 * bench_util.h first; make(ud) opens a store on the benchmark's data. */
#ifndef APSCHED_BENCH_WAITS_H
#define APSCHED_BENCH_WAITS_H

#include <apsched.h>
#include <stdatomic.h>

#define WAITS_FN "bench.waits"

/* What the job and the listener saw. */
static struct {
  atomic_int started, finished, released, buffered;
  _Atomic int64_t start_ns, end_ns, cancel_ns;
} waits;

static int waits_job(apsched_run_ctx *run) {
  int me = atomic_fetch_add(&waits.started, 1);
  atomic_store(&waits.start_ns, now_ns());
  bool cancelled = false;
  while (atomic_load(&waits.released) <= me && !(cancelled = apsched_run_cancelled(run)))
    sleep_us(20);
  if (cancelled) atomic_store(&waits.cancel_ns, now_ns());
  atomic_store(&waits.end_ns, now_ns());
  atomic_fetch_add(&waits.finished, 1);
  return 0;
}

static void waits_listener(const apsched_event *ev, void *ud) {
  (void)ud;
  if (ev->code == APSCHED_EVENT_JOB_BUFFERED) atomic_fetch_add(&waits.buffered, 1);
}

/* Polls until *v >= n (10 s at most). */
static void waits_until(atomic_int *v, int n, const char *what) {
  int64_t limit = now_ns() + 10000000000;
  while (atomic_load(v) < n) {
    if (now_ns() > limit) fail("waits: %s did not happen within 10 s", what);
    sleep_us(20);
  }
}

static apsched_scheduler *waits_scheduler(apsched_jobstore *st) {
  apsched_scheduler *s;
  if (apsched_create(&(apsched_config){.timezone = "UTC"}, &s) != APSCHED_OK)
    fail("waits: apsched_create: %s", apsched_last_error());
  apsched_executor *ex;
  if (apsched_thread_pool_create(&(apsched_thread_pool_options){.max_workers = 4}, &ex) != APSCHED_OK ||
      apsched_add_executor(s, ex, "default") != APSCHED_OK ||
      apsched_add_jobstore(s, st, "default") != APSCHED_OK ||
      apsched_add_listener(s, waits_listener, APSCHED_EVENT_JOB_BUFFERED, NULL, NULL) != APSCHED_OK ||
      apsched_start(s, false) != APSCHED_OK)
    fail("waits: a scheduler: %s", apsched_last_error());
  return s;
}

static void waits_add(apsched_scheduler *s, const char *id, apsched_overlap overlap) {
  apsched_trigger *t;
  if (apsched_trigger_interval(&(apsched_interval_options){.hours = 1}, &t, NULL, 0) != APSCHED_OK)
    fail("waits: trigger: %s", apsched_last_error());
  apsched_job_options o = {.id = id, .func_name = WAITS_FN, .trigger = t, .paused = true,
                           .overlap = overlap, .max_instances = 1};
  if (apsched_add_job(s, &o, NULL, 0) != APSCHED_OK) fail("waits: add: %s", apsched_last_error());
  apsched_trigger_free(t);
}

static void waits_run_now(apsched_scheduler *s, const char *id) {
  if (apsched_run_job_now(s, id, NULL) != APSCHED_OK)
    fail("waits: run now: %s", apsched_last_error());
}

static void waits_emit(const char *name, const char *bench, double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  size_t p99 = (size_t)((double)(n - 1) * 0.99 + 0.5);
  printf("{\"impl\":\"libapsched\",\"bench\":\"%s_%s\",\"samples\":%zu,\"unit\":\"us\","
         "\"p50_us\":%.0f,\"p99_us\":%.0f,\"max_us\":%.0f,\"min_us\":%.0f,\"loadavg\":%s}\n",
         name, bench, n, v[n / 2], v[p99], v[n - 1], v[0], loadavg());
  fflush(stdout);
}

static void bench_waits(const char *name, apsched_jobstore *(*make)(void *ud), void *ud,
                        size_t samples) {
  if (apsched_register_func(WAITS_FN, waits_job) != APSCHED_OK) fail("waits: register");
  apsched_scheduler *a = waits_scheduler(make(ud)), *b = waits_scheduler(make(ud));
  waits_add(a, "w", APSCHED_OVERLAP_BUFFER_ONE);
  waits_add(a, "c", APSCHED_OVERLAP_CANCEL_OTHER);
  double *handoff = malloc(samples * sizeof *handoff), *reach = malloc(samples * sizeof *reach);
  if (!handoff || !reach) fail("out of memory");
  for (size_t i = 0; i < samples; i++) {
    int base = atomic_load(&waits.started), buffered = atomic_load(&waits.buffered);
    waits_run_now(a, "w");
    waits_until(&waits.started, base + 1, "the first run's start");
    waits_run_now(b, "w");
    waits_until(&waits.buffered, buffered + 1, "the second run's wait");
    atomic_fetch_add(&waits.released, 1);
    waits_until(&waits.started, base + 2, "the waiting run's start");
    handoff[i] = (double)(atomic_load(&waits.start_ns) - atomic_load(&waits.end_ns)) / 1e3;
    atomic_fetch_add(&waits.released, 1);
    waits_until(&waits.finished, base + 2, "the waiting run's end");

    base = atomic_load(&waits.started);
    atomic_store(&waits.cancel_ns, 0);
    waits_run_now(a, "c");
    waits_until(&waits.started, base + 1, "the run's start");
    int64_t t0 = now_ns();
    waits_run_now(b, "c");
    waits_until(&waits.finished, base + 1, "the cancelled run's end");
    reach[i] = (double)(atomic_load(&waits.cancel_ns) - t0) / 1e3;
    atomic_fetch_add(&waits.released, 1); /* the cancelled run's turn, unused */
    /* It returned: the run that waited for it starts. */
    waits_until(&waits.started, base + 2, "the run after the cancelled one");
    atomic_fetch_add(&waits.released, 1);
    waits_until(&waits.finished, base + 2, "the run after the cancelled one's end");
  }
  waits_emit(name, "wait_handoff", handoff, samples);
  waits_emit(name, "cancel_reach", reach, samples);
  free(handoff);
  free(reach);
  apsched_shutdown(b, true);
  apsched_shutdown(a, true);
  apsched_free(b);
  apsched_free(a);
}

#endif
