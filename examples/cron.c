/*
 * cron.c - the cron schedules people set up every day (APScheduler's CronTrigger).
 *
 * Five schedules, each built the way you would write it, shown as its
 * canonical text and its next three fire times, then added to one scheduler:
 *
 *   daily at 10:10                    hour=10, minute=10
 *   every hour 10-12 at :10           hour="10-12", minute=10
 *   3rd Friday of summer and Nov/Dec  month="6-8,11-12", day="3rd fri", hour="0-3"
 *   last Sunday of the month, 17:25   day="last sun", hour=17, minute=25
 *   a crontab line in a named zone    a 6-field line (seconds first) firing every
 *                                     2 seconds, in Europe/Berlin
 *
 * The first four use the system's local zone, as a job without a timezone
 * does; they are shown, not waited for. The every-2-seconds one really runs:
 * main() waits (on a condition variable) for three runs, then shuts down.
 *
 * The Python original of the first one:
 *     scheduler.add_job(job, 'cron', hour=10, minute=10)
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

enum { RUNS_WANTED = 3, TIMEOUT_SECONDS = 9, SHOWN_FIRE_TIMES = 3 };

/* One schedule: either cron fields or a crontab line, in a zone. */
typedef struct use_case {
  const char *id;
  const char *what;
  apsched_cron_options fields; /* used when crontab is NULL */
  const char *crontab;
  const char *timezone; /* NULL: the local zone */
} use_case;

static const use_case use_cases[] = {
    {"daily", "daily at 10:10", {.hour = "10", .minute = "10"}, NULL, NULL},
    {"office_hours", "every hour 10-12 at :10", {.hour = "10-12", .minute = "10"}, NULL, NULL},
    {"third_friday",
     "3rd Friday of Jun-Aug and Nov-Dec, every hour 00-03",
     {.month = "6-8,11-12", .day = "3rd fri", .hour = "0-3"},
     NULL,
     NULL},
    {"last_sunday",
     "last Sunday of every month at 17:25",
     {.day = "last sun", .hour = "17", .minute = "25"},
     NULL,
     NULL},
    {"berlin_tick", "crontab '*/2 * * * * *' in Europe/Berlin", {0}, "*/2 * * * * *",
     "Europe/Berlin"},
};
enum { USE_CASES = sizeof use_cases / sizeof use_cases[0] };

/* Counts runs of the every-2-seconds job; a pool thread writes, main() waits. */
typedef struct run_counter {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int runs;
  const apsched_tz *tz;
} run_counter;

static int cron_job(apsched_run_ctx *run) {
  run_counter *c = apsched_run_arg(run);
  /* The ticking job's zone, else the scheduler's (local, like those jobs). */
  const apsched_tz *tz = c ? c->tz : apsched_timezone(apsched_run_scheduler(run));
  char when[64];
  if (apsched_time_format(apsched_run_scheduled_time(run), tz, when, sizeof when) < 0) {
    apsched_run_set_error(run, "cannot format the run time");
    return 1;
  }
  printf("  ran %s (scheduled for %s)\n", apsched_run_job_id(run), when);
  if (c) {
    pthread_mutex_lock(&c->lock);
    c->runs++;
    pthread_cond_signal(&c->changed);
    pthread_mutex_unlock(&c->lock);
  }
  return 0;
}

/* Builds a use case's trigger; prints the library's message on bad input. */
static apsched_trigger *build_trigger(const use_case *u) {
  apsched_trigger *t = NULL;
  char err[256];
  int rc;
  if (u->crontab) {
    rc = apsched_trigger_crontab(u->crontab, u->timezone, &t, err, sizeof err);
  } else {
    apsched_cron_options opt = u->fields;
    opt.timezone = u->timezone;
    rc = apsched_trigger_cron(&opt, &t, err, sizeof err);
  }
  if (rc != APSCHED_OK) {
    fprintf(stderr, "%s: %s\n", u->id, err);
    exit(1);
  }
  return t;
}

/* Prints the canonical text and the next few fire times, in the trigger's zone. */
static void show(const use_case *u, const apsched_trigger *t, apsched_time_t now) {
  char text[512];
  apsched_trigger_describe(t, text, sizeof text);
  printf("%s\n  %s\n", u->what, text);

  apsched_tz *tz;
  char err[256];
  if (apsched_tz_get(u->timezone ? u->timezone : "local", &tz, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "%s: %s\n", u->id, err);
    exit(1);
  }
  apsched_time_t prev = APSCHED_TIME_NONE;
  for (int i = 0; i < SHOWN_FIRE_TIMES; i++) {
    apsched_time_t next = apsched_trigger_next(t, prev, now);
    if (next == APSCHED_TIME_NONE) break;
    char when[64];
    apsched_time_format(next, tz, when, sizeof when);
    printf("  next: %s\n", when);
    prev = next;
  }
  apsched_tz_free(tz);
}

/* Waits for `want` runs or the timeout (on the monotonic clock, so a wall
 * clock step cannot cut it short); returns the runs seen. */
static int wait_for_runs(run_counter *c, int want) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += TIMEOUT_SECONDS;
  pthread_mutex_lock(&c->lock);
  int rc = 0;
  while (c->runs < want && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&c->changed, &c->lock, &deadline);
  int seen = c->runs;
  pthread_mutex_unlock(&c->lock);
  return seen;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into a pipe */

  apsched_tz *berlin;
  char err[256];
  if (apsched_tz_get("Europe/Berlin", &berlin, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  run_counter counter = {.runs = 0, .tz = berlin};
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_mutex_init(&counter.lock, NULL);
  pthread_cond_init(&counter.changed, &attr);
  pthread_condattr_destroy(&attr);

  apsched_scheduler *s;
  CHECK(apsched_create(NULL, &s));
  apsched_time_t now = apsched_now();
  for (int i = 0; i < USE_CASES; i++) {
    const use_case *u = &use_cases[i];
    apsched_trigger *t = build_trigger(u);
    show(u, t, now);
    bool ticking = u->crontab != NULL;
    apsched_job_options job = {.id = u->id, .func = cron_job, .trigger = t,
                               .arg = ticking ? &counter : NULL};
    CHECK(apsched_add_job(s, &job, NULL, 0));
    apsched_trigger_free(t); /* the scheduler keeps its own copy */
  }

  CHECK(apsched_start(s, false));
  printf("\nScheduler started; waiting for %d runs of berlin_tick\n", RUNS_WANTED);
  int runs = wait_for_runs(&counter, RUNS_WANTED);
  if (runs < RUNS_WANTED) fprintf(stderr, "only %d runs within %d s\n", runs, TIMEOUT_SECONDS);

  printf("\nThe jobs and their next run times:\n");
  CHECK(apsched_print_jobs(s, NULL, stdout));
  CHECK(apsched_shutdown(s, true)); /* true: let a running job finish */
  apsched_free(s);
  printf("Scheduler shut down\n");

  pthread_cond_destroy(&counter.changed);
  pthread_mutex_destroy(&counter.lock);
  apsched_tz_free(berlin);
  return runs >= RUNS_WANTED ? 0 : 1;
}
