/*
 * sqlite_store.c - jobs that survive a restart, in a SQLite file.
 *
 *   sqlite_store [FILE]      (default: ./jobs.sqlite)
 *
 * The usual pattern for persistent jobs: at every start the program adds its
 * jobs with fixed ids and replace_existing = true. A job whose trigger is
 * unchanged keeps the schedule stored in the file, so running the program
 * again continues where the last run stopped: the runs missed while it was
 * not running are coalesced into one. Functions are registered by name: the
 * file stores the name, and the next process finds the function by it.
 *
 * Run it twice; the second run prints the next run times the first one
 * stored. Look at the file meanwhile with
 *   sqlite3 jobs.sqlite 'select id, func, trigger, next_run_at from apsched_jobs'
 * Links with libapsched-sqlite (apsched::sqlite, pkg-config apsched-sqlite).
 */
#include <apsched.h>
#include <apsched_sqlite.h>

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(call)                                                                  \
  do {                                                                               \
    int rc_ = (call);                                                                \
    if (rc_ != APSCHED_OK) {                                                         \
      fprintf(stderr, "%s failed: %s: %s\n", #call, apsched_strerror(rc_),           \
              apsched_last_error());                                                 \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

enum { RUN_SECONDS = 3 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int heartbeats;

static void print_run(apsched_run_ctx *run, const char *what) {
  char when[64];
  apsched_time_format(apsched_run_scheduled_time(run), NULL, when, sizeof when);
  printf("  %-9s %s (scheduled for %s)\n", apsched_run_job_id(run), what, when);
}

static int heartbeat(apsched_run_ctx *run) {
  print_run(run, "beats");
  pthread_mutex_lock(&lock);
  heartbeats++;
  pthread_mutex_unlock(&lock);
  return 0;
}

/* The byte argument travels with the job through the file. */
static int greet(apsched_run_ctx *run) {
  size_t len;
  const char *who = apsched_run_arg_bytes(run, &len);
  char what[80];
  snprintf(what, sizeof what, "says hello to %.*s", (int)len, who);
  print_run(run, what);
  return 0;
}

static void show_jobs(apsched_scheduler *s, const char *path, bool at_start) {
  apsched_job *jobs;
  size_t n;
  CHECK(apsched_get_jobs(s, "default", &jobs, &n));
  if (!at_start) printf("%s keeps %zu job(s) for the next run\n", path, n);
  else if (n == 0) printf("%s: no jobs stored yet\n", path);
  else printf("%s: continuing %zu stored job(s)\n", path, n);
  for (size_t i = 0; i < n; i++) {
    char next[64] = "(paused)";
    if (jobs[i].next_run_time != APSCHED_TIME_NONE)
      apsched_time_format(jobs[i].next_run_time, NULL, next, sizeof next);
    printf("  %-9s next run %s  %s%s%s\n", jobs[i].id, next, jobs[i].trigger,
           jobs[i].broken ? "  BROKEN: " : "", jobs[i].broken ? jobs[i].broken : "");
  }
  apsched_jobs_free(jobs, n);
}

static apsched_trigger *every(int64_t seconds) {
  /* A fixed start date: the same trigger at every start, so re-adding the
   * job keeps its stored schedule (without it, "now" would be the start). */
  apsched_interval_options o = {.microseconds = seconds * APSCHED_SEC,
                                .start_date = 1767225600LL * APSCHED_SEC}; /* 2026-01-01 */
  apsched_trigger *t;
  CHECK(apsched_trigger_interval(&o, &t, NULL, 0));
  return t;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *path = argc > 1 ? argv[1] : "jobs.sqlite";
  CHECK(apsched_register_func("example.heartbeat", heartbeat));
  CHECK(apsched_register_func("example.greet", greet));

  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  apsched_sqlite_options so = {.path = path}; /* synchronous=FULL: survives power loss */
  apsched_jobstore *store;
  char err[256];
  if (apsched_sqlite_store_create(&so, &store, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "cannot open %s: %s\n", path, err);
    return 1;
  }
  CHECK(apsched_add_jobstore(s, store, "default"));
  show_jobs(s, path, true);

  apsched_trigger *each_second = every(1), *each_two = every(2);
  apsched_job_options jobs[2] = {
      {.id = "heartbeat", .func_name = "example.heartbeat", .trigger = each_second,
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .replace_existing = true},
      {.id = "greeter", .func_name = "example.greet", .trigger = each_two,
       .arg_bytes = "world", .arg_len = 5, .replace_existing = true}};
  CHECK(apsched_add_jobs(s, jobs, 2, NULL));
  apsched_trigger_free(each_second);
  apsched_trigger_free(each_two);

  printf("running for %d seconds\n", RUN_SECONDS);
  CHECK(apsched_start(s, false));
  struct timespec pause = {RUN_SECONDS, 0};
  while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
  }
  CHECK(apsched_shutdown(s, true));
  show_jobs(s, path, false);
  apsched_free(s);

  pthread_mutex_lock(&lock);
  int beats = heartbeats;
  pthread_mutex_unlock(&lock);
  printf("heartbeat ran %d time(s); run me again to continue\n", beats);
  return beats > 0 ? 0 : 1;
}
