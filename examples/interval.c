/*
 * interval.c - the quick-start example: APScheduler's classic "tick".
 *
 * A job runs every 3 seconds on the scheduler's thread pool and prints the
 * time. apsched_start() runs the scheduler loop in a background thread, so
 * the main thread stays free; here it waits until the job has ticked three
 * times (about 9 s), then shuts down, waiting for a tick still running.
 *
 * The Python original:
 *     scheduler = BackgroundScheduler()
 *     scheduler.add_job(tick, 'interval', seconds=3)
 *     scheduler.start()
 */
#include <apsched.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Prints which call failed and why, and leaves with status 1. */
#define CHECK(call)                                                      \
  do {                                                                   \
    int rc_ = (call);                                                    \
    if (rc_ != APSCHED_OK) {                                             \
      fprintf(stderr, "%s failed: %s\n", #call, apsched_strerror(rc_)); \
      exit(1);                                                           \
    }                                                                    \
  } while (0)

enum { TICKS_WANTED = 3, TIMEOUT_SECONDS = 30 };

/* Shared by the job (a pool thread) and main(), so it needs a lock. */
typedef struct tick_counter {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int ticks;
} tick_counter;

static int tick(apsched_run_ctx *run) {
  /* Print in the scheduler's zone (the system's local zone by default). */
  const apsched_tz *tz = apsched_timezone(apsched_run_scheduler(run));
  char now[64];
  if (apsched_time_format(apsched_now(), tz, now, sizeof now) < 0) {
    apsched_run_set_error(run, "cannot format the current time");
    return 1; /* reported as a JOB_ERROR event */
  }
  printf("Tick! The time is: %s\n", now);

  tick_counter *c = apsched_run_arg(run);
  pthread_mutex_lock(&c->lock);
  c->ticks++;
  pthread_cond_signal(&c->changed);
  pthread_mutex_unlock(&c->lock);
  return 0;
}

/* Waits for `want` ticks or the timeout; returns the ticks seen so far. */
static int wait_for_ticks(tick_counter *c, int want) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += TIMEOUT_SECONDS;
  pthread_mutex_lock(&c->lock);
  int rc = 0;
  while (c->ticks < want && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&c->changed, &c->lock, &deadline);
  int seen = c->ticks;
  pthread_mutex_unlock(&c->lock);
  return seen;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into a pipe */
  tick_counter counter = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

  /* NULL config: local time zone, default store and 10-worker thread pool. */
  apsched_scheduler *s;
  CHECK(apsched_create(NULL, &s));

  apsched_interval_options every_3s = {.seconds = 3};
  apsched_trigger *trigger;
  char err[256];
  if (apsched_trigger_interval(&every_3s, &trigger, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "bad interval: %s\n", err);
    return 1;
  }
  apsched_job_options job = {.id = "tick", .func = tick, .arg = &counter, .trigger = trigger};
  CHECK(apsched_add_job(s, &job, NULL, 0));
  apsched_trigger_free(trigger); /* the scheduler keeps its own copy */

  CHECK(apsched_start(s, false));
  printf("Scheduler started (version %s); waiting for %d ticks, one every 3 s\n",
         apsched_version(), TICKS_WANTED);

  /* The main thread could do anything here; it just waits for the ticks. */
  int ticks = wait_for_ticks(&counter, TICKS_WANTED);
  if (ticks < TICKS_WANTED) fprintf(stderr, "only %d ticks within %d s\n", ticks, TIMEOUT_SECONDS);

  CHECK(apsched_shutdown(s, true)); /* true: let a running tick finish */
  printf("Scheduler shut down after %d ticks\n", ticks);
  apsched_free(s);
  return ticks >= TICKS_WANTED ? 0 : 1;
}
