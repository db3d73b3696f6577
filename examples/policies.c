/*
 * policies.c - schedule policies: overlap, pause on failure, backfill.
 *
 * 1. A slow "report" job (0.7 s of work, due every 0.3 s) with the overlap
 *    policy BUFFER_ONE: a run due while the previous one still runs waits
 *    (JOB_BUFFERED) and starts as soon as it ends; a newer due run takes the
 *    waiting one's place, so runs go back to back and none piles up.
 * 2. A "flaky" job that always fails, with pause_after_failures = 3: after
 *    three failed runs in a row the job is paused (JOB_PAUSED).
 * 3. A backfill over a past hour of a job due every 15 minutes: four runs
 *    of missed reports, oldest first, whatever their lateness.
 *
 * Exits by itself once all of that was seen (a few seconds).
 */
#include <apsched.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(call)                                                                   \
  do {                                                                                \
    int rc_ = (call);                                                                 \
    if (rc_ != APSCHED_OK) {                                                          \
      fprintf(stderr, "%s failed: %s (%s)\n", #call, apsched_strerror(rc_), apsched_last_error()); \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int buffered, reports_done, paused, backfilled;

static int report(apsched_run_ctx *run) {
  char when[64];
  apsched_time_format(apsched_run_scheduled_time(run), NULL, when, sizeof when);
  printf("report for %s: working...\n", when);
  struct timespec work = {0, 700 * 1000 * 1000};
  nanosleep(&work, NULL);
  return 0;
}

static int flaky(apsched_run_ctx *run) {
  apsched_run_set_error(run, "the upstream service is down");
  return 1;
}

static int missed_report(apsched_run_ctx *run) {
  char when[64];
  apsched_time_format(apsched_run_scheduled_time(run), NULL, when, sizeof when);
  printf("backfilled report for %s\n", when);
  pthread_mutex_lock(&lock);
  backfilled++;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
  return 0;
}

static void on_event(const apsched_event *ev, void *user_data) {
  (void)user_data;
  pthread_mutex_lock(&lock);
  switch (ev->code) {
  case APSCHED_EVENT_JOB_BUFFERED:
    printf("event JOB_BUFFERED: a run of %s waits for the running one\n", ev->job_id);
    buffered++;
    break;
  case APSCHED_EVENT_JOB_EXECUTED:
    if (ev->job_id[0] == 'r') reports_done++;
    break;
  case APSCHED_EVENT_JOB_ERROR:
    printf("event JOB_ERROR: %s failed: %s\n", ev->job_id, ev->error ? ev->error : "?");
    break;
  case APSCHED_EVENT_JOB_PAUSED:
    printf("event JOB_PAUSED: %s paused after %d failed runs in a row (last: %s)\n", ev->job_id,
           ev->retval, ev->error ? ev->error : "?");
    paused++;
    break;
  }
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
}

/* Waits (10 s at most) until *count reaches n. */
static void wait_for(int *count, int n, const char *what) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 10;
  pthread_mutex_lock(&lock);
  while (*count < n)
    if (pthread_cond_timedwait(&changed, &lock, &deadline) != 0) {
      fprintf(stderr, "timed out waiting for %s\n", what);
      exit(1);
    }
  pthread_mutex_unlock(&lock);
}

int main(void) {
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  CHECK(apsched_add_listener(s, on_event, APSCHED_EVENT_EVERYTHING, NULL, NULL));
  CHECK(apsched_start(s, false));

  /* 1. The slow report, buffered. */
  apsched_interval_options every300ms = {.microseconds = 300 * APSCHED_MSEC};
  apsched_trigger *t;
  CHECK(apsched_trigger_interval(&every300ms, &t, NULL, 0));
  apsched_job_options slow = {.id = "report", .func = report, .trigger = t,
                              .overlap = APSCHED_OVERLAP_BUFFER_ONE};
  CHECK(apsched_add_job(s, &slow, NULL, 0));
  apsched_trigger_free(t);
  wait_for(&reports_done, 3, "three reports");
  wait_for(&buffered, 1, "a buffered run");
  CHECK(apsched_pause_job(s, "report", NULL));

  /* 2. The flaky job, paused after three failures. */
  apsched_interval_options every100ms = {.microseconds = 100 * APSCHED_MSEC};
  CHECK(apsched_trigger_interval(&every100ms, &t, NULL, 0));
  apsched_job_options f = {.id = "flaky", .func = flaky, .trigger = t, .pause_after_failures = 3};
  CHECK(apsched_add_job(s, &f, NULL, 0));
  apsched_trigger_free(t);
  wait_for(&paused, 1, "the flaky job to be paused");
  apsched_print_jobs(s, NULL, stdout);

  /* 3. Backfill: 2026-01-01 09:00 .. 10:00, every 15 minutes. */
  apsched_time_t nine;
  CHECK(apsched_time_parse("2026-01-01T09:00:00Z", NULL, &nine, NULL, 0));
  apsched_interval_options quarter = {.minutes = 15, .start_date = nine};
  CHECK(apsched_trigger_interval(&quarter, &t, NULL, 0));
  apsched_job_options daily = {.id = "daily", .func = missed_report, .trigger = t, .paused = true};
  CHECK(apsched_add_job(s, &daily, NULL, 0));
  apsched_trigger_free(t);
  CHECK(apsched_backfill_job(s, "daily", NULL, nine, nine + APSCHED_HOUR - 1));
  wait_for(&backfilled, 4, "four backfilled reports");

  CHECK(apsched_shutdown(s, true));
  apsched_free(s);
  printf("done: reports ran back to back, the flaky job was paused, 4 runs backfilled\n");
  return 0;
}
