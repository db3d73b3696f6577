/*
 * date.c - a one-off job (APScheduler's DateTrigger).
 *
 * The job runs once, two seconds from now. Its trigger then has no further
 * fire time, so the scheduler removes the job by itself (a JOB_REMOVED
 * event) and apsched_get_jobs() comes back empty.
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

/* Which events the listener has seen, for main() to wait on. */
typedef struct seen_events {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int codes;
} seen_events;

static const char *event_name(int code) {
  switch (code) {
    case APSCHED_EVENT_JOB_ADDED: return "JOB_ADDED";
    case APSCHED_EVENT_JOB_SUBMITTED: return "JOB_SUBMITTED";
    case APSCHED_EVENT_JOB_EXECUTED: return "JOB_EXECUTED";
    case APSCHED_EVENT_JOB_REMOVED: return "JOB_REMOVED";
    default: return "other event";
  }
}

static const char *format_now(char *buf, size_t len) {
  if (apsched_time_format(apsched_now(), NULL, buf, len) < 0) snprintf(buf, len, "?");
  return buf;
}

static int say_hello(apsched_run_ctx *run) {
  char when[64], now[64];
  apsched_time_format(apsched_run_scheduled_time(run), NULL, when, sizeof when);
  printf("  job \"%s\" runs: scheduled for %s, now %s\n", apsched_run_job_name(run), when,
         format_now(now, sizeof now));
  return 0;
}

static void on_event(const apsched_event *ev, void *user_data) {
  seen_events *seen = user_data;
  char now[64];
  printf("%s  %-13s job %s\n", format_now(now, sizeof now), event_name(ev->code), ev->job_id);
  pthread_mutex_lock(&seen->lock);
  seen->codes |= ev->code;
  pthread_cond_broadcast(&seen->changed);
  pthread_mutex_unlock(&seen->lock);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  seen_events seen = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  CHECK(apsched_add_listener(s, on_event,
                             APSCHED_EVENT_JOB_ADDED | APSCHED_EVENT_JOB_SUBMITTED |
                                 APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_REMOVED,
                             &seen, NULL));
  CHECK(apsched_start(s, false));

  apsched_date_options in_2s = {.run_date = apsched_now() + 2 * APSCHED_SEC};
  apsched_trigger *trigger;
  CHECK(apsched_trigger_date(&in_2s, &trigger));
  apsched_job_options job = {.id = "once", .name = "one-off", .func = say_hello,
                             .trigger = trigger};
  CHECK(apsched_add_job(s, &job, NULL, 0));
  apsched_trigger_free(trigger);
  CHECK(apsched_print_jobs(s, NULL, stdout));

  /* Wait (at most 20 s) until the job ran and the scheduler removed it. */
  const int wanted = APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_REMOVED;
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&seen.lock);
  int rc = 0;
  while ((seen.codes & wanted) != wanted && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&seen.changed, &seen.lock, &deadline);
  int codes = seen.codes;
  pthread_mutex_unlock(&seen.lock);

  apsched_job *jobs;
  size_t count;
  CHECK(apsched_get_jobs(s, NULL, &jobs, &count));
  printf("after the run: %zu job(s) left\n", count);
  apsched_jobs_free(jobs, count);
  CHECK(apsched_print_jobs(s, NULL, stdout));

  CHECK(apsched_shutdown(s, true));
  apsched_free(s);
  if ((codes & wanted) != wanted || count != 0) {
    fprintf(stderr, "the job did not run once and go away as expected\n");
    return 1;
  }
  return 0;
}
