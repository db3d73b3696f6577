/*
 * error_listener.c - a failing job next to a healthy one.
 *
 * A job reports failure by returning non-zero, optionally with a message set
 * by apsched_run_set_error(). The scheduler turns that into a JOB_ERROR event
 * (and an ERROR log line) and keeps going: the failing job stays scheduled,
 * and the healthy one is not affected. An event listener prints outcomes and
 * a log callback prints the library's own log lines.
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

/* Outcomes counted by the listener, which may run on several threads. */
typedef struct outcomes {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int executed, errors;
} outcomes;

static int healthy(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

static int flaky(apsched_run_ctx *run) {
  apsched_run_set_error(run, "could not connect to %s", "db.example.com:5432");
  return 2; /* any non-zero value is an error; it ends up in event.retval */
}

static void on_outcome(const apsched_event *ev, void *user_data) {
  outcomes *o = user_data;
  if (ev->code == APSCHED_EVENT_JOB_ERROR)
    printf("listener: job %s FAILED (code %d): %s\n", ev->job_id, ev->retval,
           ev->error ? ev->error : "(no message)");
  else
    printf("listener: job %s executed fine\n", ev->job_id);
  pthread_mutex_lock(&o->lock);
  if (ev->code == APSCHED_EVENT_JOB_ERROR) o->errors++;
  else o->executed++;
  pthread_cond_broadcast(&o->changed);
  pthread_mutex_unlock(&o->lock);
}

static void on_log(apsched_log_level level, const char *message, void *user_data) {
  (void)user_data;
  const char *name = level >= APSCHED_LOG_ERROR     ? "ERROR"
                     : level >= APSCHED_LOG_WARNING ? "WARNING"
                     : level >= APSCHED_LOG_INFO    ? "INFO"
                                                    : "DEBUG";
  printf("log %-7s %s\n", name, message);
}

static void add_every_second(apsched_scheduler *s, const char *id, apsched_job_fn fn) {
  apsched_interval_options every = {.seconds = 1};
  apsched_trigger *t;
  CHECK(apsched_trigger_interval(&every, &t, NULL, 0));
  apsched_job_options job = {.id = id, .func = fn, .trigger = t};
  CHECK(apsched_add_job(s, &job, NULL, 0));
  apsched_trigger_free(t);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  outcomes seen = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  apsched_config cfg = {.timezone = "UTC", .log = on_log, .log_level = APSCHED_LOG_INFO};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  CHECK(apsched_add_listener(s, on_outcome, APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_ERROR,
                             &seen, NULL));
  add_every_second(s, "healthy", healthy);
  add_every_second(s, "flaky", flaky);
  CHECK(apsched_start(s, false));

  /* Wait for three good runs and three failures (at most 20 s). */
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&seen.lock);
  int rc = 0;
  while ((seen.executed < 3 || seen.errors < 3) && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&seen.changed, &seen.lock, &deadline);
  pthread_mutex_unlock(&seen.lock);

  CHECK(apsched_shutdown(s, true));
  apsched_free(s); /* after this, no listener call is running */
  printf("healthy runs: %d, failed runs: %d\n", seen.executed, seen.errors);
  bool ok = seen.executed >= 3 && seen.errors >= 3;
  return ok ? 0 : 1;
}
