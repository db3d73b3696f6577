/*
 * max_instances.c - a job slower than its interval.
 *
 * The job takes 1.5 s and is due every 0.5 s. With max_instances = 2 at most
 * two runs overlap; a run that would be the third is skipped, reported as a
 * JOB_MAX_INSTANCES event and a WARNING log line.
 */
#include <apsched.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(call)                                                      \
  do {                                                                   \
    int rc_ = (call);                                                    \
    if (rc_ != APSCHED_OK) {                                             \
      fprintf(stderr, "%s failed: %s\n", #call, apsched_strerror(rc_)); \
      exit(1);                                                           \
    }                                                                    \
  } while (0)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int running, most_running, skipped;

static int slow(apsched_run_ctx *run) {
  (void)run;
  pthread_mutex_lock(&lock);
  if (++running > most_running) most_running = running;
  printf("slow job started (%d running)\n", running);
  pthread_mutex_unlock(&lock);
  struct timespec work = {1, 500 * 1000 * 1000}; /* pretend to work for 1.5 s */
  nanosleep(&work, NULL);
  pthread_mutex_lock(&lock);
  running--;
  pthread_mutex_unlock(&lock);
  return 0;
}

static void on_max_instances(const apsched_event *ev, void *user_data) {
  (void)user_data;
  char when[64] = "?";
  if (ev->run_time_count > 0) /* the batch of run times that did not start */
    apsched_time_format(ev->scheduled_run_times[0], NULL, when, sizeof when);
  printf("event JOB_MAX_INSTANCES: job %s, run at %s skipped\n", ev->job_id, when);
  pthread_mutex_lock(&lock);
  skipped++;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
}

static void on_log(apsched_log_level level, const char *message, void *user_data) {
  (void)user_data;
  printf("log %s: %s\n", level >= APSCHED_LOG_ERROR ? "ERROR" : "WARNING", message);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  apsched_config cfg = {.timezone = "UTC", .log = on_log, .log_level = APSCHED_LOG_WARNING};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  CHECK(apsched_add_listener(s, on_max_instances, APSCHED_EVENT_JOB_MAX_INSTANCES, NULL, NULL));

  apsched_interval_options every = {.microseconds = 500 * APSCHED_MSEC};
  apsched_trigger *t;
  CHECK(apsched_trigger_interval(&every, &t, NULL, 0));
  apsched_job_options job = {.id = "slow", .func = slow, .trigger = t, .max_instances = 2};
  CHECK(apsched_add_job(s, &job, NULL, 0));
  apsched_trigger_free(t);
  CHECK(apsched_start(s, false));

  /* Wait for three skipped runs (at most 20 s), then stop; shutdown waits
   * for the runs still in progress. */
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&lock);
  int rc = 0;
  while (skipped < 3 && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&changed, &lock, &deadline);
  pthread_mutex_unlock(&lock);
  CHECK(apsched_shutdown(s, true));
  apsched_free(s);

  printf("at most %d runs at once; %d runs skipped\n", most_running, skipped);
  return most_running == 2 && skipped >= 3 ? 0 : 1;
}
