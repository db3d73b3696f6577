/*
 * replace_existing.c - adding a job whose id is already taken.
 *
 * A second apsched_add_job() with the same id fails with APSCHED_EEXIST and
 * changes nothing. With replace_existing = true it replaces the old job
 * (function, trigger, everything) instead - the usual way to (re)register
 * a job with a fixed id at program start without checking first.
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
static int old_runs, new_runs;

static int old_report(apsched_run_ctx *run) {
  (void)run;
  printf("old_report ran (it should not: it was replaced)\n");
  pthread_mutex_lock(&lock);
  old_runs++;
  pthread_mutex_unlock(&lock);
  return 0;
}

static int new_report(apsched_run_ctx *run) {
  printf("new_report ran as job \"%s\"\n", apsched_run_job_id(run));
  pthread_mutex_lock(&lock);
  new_runs++;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
  return 0;
}

static void show(apsched_scheduler *s, const char *when) {
  apsched_job *j;
  CHECK(apsched_get_job(s, "report", NULL, &j));
  char next[64] = "(paused)"; /* a paused job has no next run time */
  if (j->next_run_time != APSCHED_TIME_NONE)
    apsched_time_format(j->next_run_time, apsched_timezone(s), next, sizeof next);
  printf("%-6s job \"%s\" name=%s trigger=%s next run at %s\n", when, j->id, j->name, j->trigger,
         next);
  apsched_job_free(j);
}

static apsched_trigger *every(int64_t usec) {
  apsched_interval_options o = {.microseconds = usec};
  apsched_trigger *t;
  CHECK(apsched_trigger_interval(&o, &t, NULL, 0));
  return t;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  CHECK(apsched_start(s, false));

  apsched_trigger *hourly = every(APSCHED_HOUR), *every_second = every(APSCHED_SEC);
  apsched_job_options first = {.id = "report", .name = "hourly report", .func = old_report,
                               .trigger = hourly};
  CHECK(apsched_add_job(s, &first, NULL, 0));
  show(s, "before");

  /* Same id again: refused, and the existing job is untouched. */
  apsched_job_options second = {.id = "report", .name = "fast report", .func = new_report,
                                .trigger = every_second};
  int rc = apsched_add_job(s, &second, NULL, 0);
  printf("add_job with the same id: %s (%d)\n", apsched_strerror(rc), rc);
  if (rc != APSCHED_EEXIST) {
    fprintf(stderr, "expected APSCHED_EEXIST\n");
    return 1;
  }
  show(s, "still");

  second.replace_existing = true;
  CHECK(apsched_add_job(s, &second, NULL, 0));
  show(s, "after");
  apsched_trigger_free(hourly);
  apsched_trigger_free(every_second);

  /* The replacement runs within a second (wait at most 20 s). */
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&lock);
  rc = 0;
  while (new_runs < 1 && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&changed, &lock, &deadline);
  pthread_mutex_unlock(&lock);

  CHECK(apsched_shutdown(s, true));
  apsched_free(s);
  printf("new_report ran %d time(s), old_report %d time(s)\n", new_runs, old_runs);
  return new_runs >= 1 && old_runs == 0 ? 0 : 1;
}
