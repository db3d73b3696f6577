/*
 * process_pool.c - CPU-bound and misbehaving jobs in worker processes.
 *
 * A process pool runs each job in a worker process forked from the pool's
 * fork server. Here it runs three jobs next to each other:
 *   - "primes", CPU-bound: counts the primes below a limit passed as the
 *     job's byte argument (a process pool job has a byte argument or none:
 *     a pointer would mean nothing in another process);
 *   - "crasher", which writes to read-only memory: its worker dies of
 *     SIGSEGV, the failure is reported as a JOB_ERROR event naming the
 *     signal, and the pool replaces the worker;
 *   - "runaway", an endless loop with max_runtime 0.5 s: the pool terminates
 *     it and reports "timed out after 0:00:00.500000".
 * The scheduler carries on throughout; the program exits by itself once
 * each job has been seen a few times (about 3 seconds).
 *
 * The pool is created first, before the scheduler (or anything else) starts
 * a thread: its fork server is a copy of the process at that moment, and a
 * copy of a multi-threaded process could inherit a lock some other thread
 * was holding.
 */
#include <apsched.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(call)                                                      \
  do {                                                                   \
    int rc_ = (call);                                                    \
    if (rc_ != APSCHED_OK) {                                             \
      fprintf(stderr, "%s failed: %s\n", #call, apsched_strerror(rc_)); \
      exit(1);                                                           \
    }                                                                    \
  } while (0)

/* Outcomes seen by the listener (which runs on the pool's I/O thread). */
typedef struct outcomes {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int primes_done, crashes, timeouts;
} outcomes;

/* ---- jobs: these run in worker processes */

static int primes(apsched_run_ctx *run) {
  size_t len;
  const uint32_t *limit = apsched_run_arg_bytes(run, &len);
  if (len != sizeof *limit) {
    apsched_run_set_error(run, "expected a 4-byte limit, got %zu bytes", len);
    return 1;
  }
  uint32_t count = 0;
  for (uint32_t n = 2; n < *limit; n++) {
    bool prime = true;
    for (uint32_t d = 2; d * d <= n && prime; d++) prime = n % d != 0;
    count += prime;
  }
  printf("  [worker %d] %u primes below %u\n", (int)getpid(), count, *limit);
  return 0;
}

static int crasher(apsched_run_ctx *run) {
  (void)run;
  char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return 1;
  printf("  [worker %d] about to write to read-only memory\n", (int)getpid());
  fflush(stdout);
  page[0] = 1; /* SIGSEGV: the worker dies, the scheduler does not */
  return 0;
}

static int runaway(apsched_run_ctx *run) {
  (void)run;
  volatile unsigned long spins = 0;
  for (;;) spins++; /* never returns: max_runtime ends it */
  return 0;
}

/* ---- the scheduler's side */

static void on_outcome(const apsched_event *ev, void *user_data) {
  outcomes *o = user_data;
  if (ev->code == APSCHED_EVENT_JOB_ERROR)
    printf("listener: %s FAILED: %s\n", ev->job_id, ev->error ? ev->error : "(no message)");
  else
    printf("listener: %s executed\n", ev->job_id);
  pthread_mutex_lock(&o->lock);
  if (strcmp(ev->job_id, "primes") == 0 && ev->code == APSCHED_EVENT_JOB_EXECUTED) o->primes_done++;
  if (strcmp(ev->job_id, "crasher") == 0 && ev->code == APSCHED_EVENT_JOB_ERROR) o->crashes++;
  if (strcmp(ev->job_id, "runaway") == 0 && ev->code == APSCHED_EVENT_JOB_ERROR) o->timeouts++;
  pthread_cond_broadcast(&o->changed);
  pthread_mutex_unlock(&o->lock);
}

static void add_every(apsched_scheduler *s, const char *id, apsched_job_fn fn, int64_t interval,
                      const void *arg, size_t arg_len, int64_t max_runtime) {
  apsched_interval_options every = {.microseconds = interval};
  apsched_trigger *t;
  CHECK(apsched_trigger_interval(&every, &t, NULL, 0));
  apsched_job_options job = {.id = id, .func = fn, .trigger = t, .executor = "processpool",
                             .arg_bytes = arg, .arg_len = arg_len, .max_runtime = max_runtime};
  CHECK(apsched_add_job(s, &job, NULL, 0));
  apsched_trigger_free(t);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* First, while the process is single-threaded. */
  apsched_process_pool_options pool_opt = {.max_workers = 3, .kill_grace = 200 * APSCHED_MSEC};
  apsched_executor *pool;
  char err[256];
  if (apsched_process_pool_create(&pool_opt, &pool, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "process pool: %s\n", err);
    return 1;
  }

  outcomes seen = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  CHECK(apsched_add_executor(s, pool, "processpool")); /* the scheduler owns it now */
  CHECK(apsched_add_listener(s, on_outcome, APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_ERROR,
                             &seen, NULL));

  uint32_t limit = 1000000;
  add_every(s, "primes", primes, 700 * APSCHED_MSEC, &limit, sizeof limit, 0);
  add_every(s, "crasher", crasher, APSCHED_SEC, NULL, 0, 0);
  add_every(s, "runaway", runaway, 1200 * APSCHED_MSEC, NULL, 0, 500 * APSCHED_MSEC);
  CHECK(apsched_start(s, false));

  pthread_mutex_lock(&seen.lock);
  while (seen.primes_done < 3 || seen.crashes < 2 || seen.timeouts < 1)
    pthread_cond_wait(&seen.changed, &seen.lock);
  pthread_mutex_unlock(&seen.lock);

  /* Lets a run in progress finish, then stops the workers and the server. */
  CHECK(apsched_shutdown(s, true));
  apsched_free(s);
  printf("done: %d prime counts, %d crashes and %d time-outs reported\n", seen.primes_done,
         seen.crashes, seen.timeouts);
  return 0;
}
