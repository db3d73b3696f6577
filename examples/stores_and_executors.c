/*
 * stores_and_executors.c - configuring the scheduler, as in APScheduler's
 * "Configuring the scheduler" docs: two job stores, two executors and job
 * defaults, then jobs placed in each store and executor.
 *
 *   jobstores:    "default" and "other", both in memory
 *   executors:    "default" = thread pool of 20 workers, "inline" = runs jobs
 *                 in the scheduler's own thread (keep such jobs short)
 *   job defaults: coalesce = no, max_instances = 3; time zone UTC
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

enum { RUNS_WANTED = 9 }; /* in 4 s: fast 4, slow 2, mixed 2, now 1 */

static pthread_mutex_t runs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t runs_changed = PTHREAD_COND_INITIALIZER;
static int total_runs;

/* Every job runs this; its argument says where the job was placed. */
static int report(apsched_run_ctx *run) {
  char when[64];
  apsched_time_format(apsched_run_scheduled_time(run), NULL, when, sizeof when);
  printf("%-6s ran  %s  scheduled=%s\n", apsched_run_job_id(run),
         (const char *)apsched_run_arg(run), when);
  pthread_mutex_lock(&runs_lock);
  total_runs++;
  pthread_cond_broadcast(&runs_changed);
  pthread_mutex_unlock(&runs_lock);
  return 0;
}

/* Adds one job running report() every `ms` milliseconds (0: once, now). */
static void add(apsched_scheduler *s, const char *id, int64_t ms, const char *store,
                const char *executor) {
  apsched_trigger *t = NULL;
  if (ms > 0) {
    apsched_interval_options every = {.microseconds = ms * APSCHED_MSEC};
    CHECK(apsched_trigger_interval(&every, &t, NULL, 0));
  }
  /* A heap-allocated argument: the scheduler calls arg_free once the job is
   * gone and no run uses it any more. NULL store / executor: "default". */
  char *where = malloc(64);
  if (!where) CHECK(APSCHED_ENOMEM);
  snprintf(where, 64, "store=%-7s executor=%-7s", store ? store : "default",
           executor ? executor : "default");
  apsched_job_options o = {.id = id, .func = report, .trigger = t, .jobstore = store,
                           .executor = executor, .arg = where, .arg_free = free};
  CHECK(apsched_add_job(s, &o, NULL, 0));
  apsched_trigger_free(t);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  apsched_config cfg = {.timezone = "UTC", .coalesce = APSCHED_NO, .max_instances = 3};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));

  /* The scheduler owns each store and executor once added (also on error). */
  apsched_jobstore *store;
  CHECK(apsched_memory_store_create(&store));
  CHECK(apsched_add_jobstore(s, store, "default"));
  CHECK(apsched_memory_store_create(&store));
  CHECK(apsched_add_jobstore(s, store, "other"));
  apsched_executor *ex;
  CHECK(apsched_thread_pool_create(&(apsched_thread_pool_options){.max_workers = 20}, &ex));
  CHECK(apsched_add_executor(s, ex, "default"));
  CHECK(apsched_inline_executor_create(&ex));
  CHECK(apsched_add_executor(s, ex, "inline"));

  add(s, "fast", 1000, NULL, NULL);
  add(s, "slow", 1500, "other", "inline");
  add(s, "mixed", 2000, "other", NULL);
  add(s, "now", 0, NULL, "inline"); /* no trigger: once, right at start */

  printf("Before start (jobs are pending until the scheduler starts):\n");
  CHECK(apsched_print_jobs(s, NULL, stdout));
  CHECK(apsched_start(s, false));
  printf("After start:\n");
  CHECK(apsched_print_jobs(s, NULL, stdout));

  /* The job defaults came from the config. */
  apsched_job *j;
  CHECK(apsched_get_job(s, "fast", NULL, &j));
  printf("job defaults applied: coalesce=%s max_instances=%d misfire_grace_time=%lld us\n",
         j->coalesce ? "yes" : "no", j->max_instances, (long long)j->misfire_grace_time);
  apsched_job_free(j);

  /* Let them run for about 4 s (at most 20 s on a very slow machine). */
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&runs_lock);
  int rc = 0;
  while (total_runs < RUNS_WANTED && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&runs_changed, &runs_lock, &deadline);
  pthread_mutex_unlock(&runs_lock);

  CHECK(apsched_shutdown(s, true));
  int runs = total_runs; /* no job runs after shutdown(wait=true) */
  printf("%d runs in total. Jobs left:\n", runs);
  CHECK(apsched_print_jobs(s, NULL, stdout));
  apsched_free(s);
  return runs >= RUNS_WANTED ? 0 : 1;
}
