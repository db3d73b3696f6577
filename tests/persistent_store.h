/* Tests every persistent store runs (the SQLite and PostgreSQL stores'
 * test programs include it): a job function that counts runs per job id,
 * waiting for events about a job, and the tests of restarts and of jobs a
 * persistent store refuses. Each program opens its own stores. */
#ifndef APSCHED_TEST_PERSISTENT_STORE_H
#define APSCHED_TEST_PERSISTENT_STORE_H

#include "support.h"

/* ------------------------------------------------------------- helpers */

/* Runs per job id, counted by the registered function below. */
static pthread_mutex_t runs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  char id[64];
  int runs;
  apsched_time_t last;
} run_log[16];

static inline int tick_job(apsched_run_ctx *run) {
  pthread_mutex_lock(&runs_lock);
  const char *id = apsched_run_job_id(run);
  int i = 0;
  while (i < 15 && run_log[i].id[0] && strcmp(run_log[i].id, id) != 0) i++;
  snprintf(run_log[i].id, sizeof run_log[i].id, "%s", id);
  run_log[i].runs++;
  run_log[i].last = apsched_run_scheduled_time(run);
  pthread_mutex_unlock(&runs_lock);
  return 0;
}

static inline int runs_of(const char *id) {
  pthread_mutex_lock(&runs_lock);
  int n = 0;
  for (int i = 0; i < 16; i++)
    if (strcmp(run_log[i].id, id) == 0) n = run_log[i].runs;
  pthread_mutex_unlock(&runs_lock);
  return n;
}

static inline void reset_runs(void) {
  pthread_mutex_lock(&runs_lock);
  memset(run_log, 0, sizeof run_log);
  pthread_mutex_unlock(&runs_lock);
}

#define TICK "store_test.tick"

/* A hosted scheduler on a fake clock with st as "db". */
static inline apsched_scheduler *sched_with(fake_clock *fc, recorder *r, apsched_jobstore *st) {
  apsched_scheduler *s = hosted_scheduler(fc, r, NULL);
  assert_int_equal(apsched_add_jobstore(s, st, "db"), APSCHED_OK);
  return s;
}

/* The same, started paused: the store's thread claims nothing until
 * apsched_resume, so a test can look at the jobs as they were stored. */
static inline apsched_scheduler *paused_sched_with(fake_clock *fc, recorder *r, apsched_jobstore *st) {
  apsched_config cfg = {.clock = &fc->clock, .timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "default"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, r, NULL), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "db"), APSCHED_OK);
  assert_int_equal(apsched_start_hosted(s, true), APSCHED_OK);
  return s;
}

/* Waits (up to 20 s) until an event with code names job id. */
static inline bool wait_for_job(recorder *r, int code, const char *id) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&r->lock);
  bool found = false;
  while (!found) {
    for (size_t i = 0; i < r->n && !found; i++)
      found = (r->ev[i].code & code) && strcmp(r->ev[i].job_id, id) == 0;
    if (!found && pthread_cond_timedwait(&r->cond, &r->lock, &deadline) != 0) break;
  }
  pthread_mutex_unlock(&r->lock);
  return found;
}

/* One pass of the loop; the store's own thread claims its jobs. */
static inline void pass(apsched_scheduler *s) {
  int64_t wait;
  assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  assert_int_equal(apsched_wakeup(s), APSCHED_OK);
}

static inline apsched_job *get(apsched_scheduler *s, const char *id) {
  apsched_job *j = NULL;
  int rc = apsched_get_job(s, id, NULL, &j);
  if (rc != APSCHED_OK) fail_msg("get_job %s: %s", id, apsched_last_error());
  return j;
}

static inline apsched_time_t next_of(apsched_scheduler *s, const char *id) {
  apsched_job *j = get(s, id);
  apsched_time_t t = j->next_run_time;
  apsched_job_free(j);
  return t;
}

/* Two jobs with every setting a row holds, added to "db": "report" (an
 * interval, a name, a byte argument, limits that are not the defaults, next
 * run T0 + 10 s + 250 us) and "nightly" (cron in Europe/Berlin, paused,
 * unlimited grace, the given delivery). */
static inline void add_sample_jobs(apsched_scheduler *s, apsched_delivery nightly_delivery) {
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_trigger *every10 = every(10 * APSCHED_SEC, T0);
  apsched_trigger *cron;
  apsched_cron_options co = {.hour = "3", .minute = "30", .timezone = "Europe/Berlin"};
  assert_int_equal(apsched_trigger_cron(&co, &cron, NULL, 0), APSCHED_OK);
  apsched_job_options jobs[2] = {
      {.id = "report", .name = "Daily report", .func_name = TICK, .trigger = every10,
       .jobstore = "db", .arg_bytes = "\x01\x02xyz", .arg_len = 5, .max_instances = 3,
       .misfire_grace_time = 2500 * APSCHED_MSEC, .max_runtime = 30 * APSCHED_SEC,
       .coalesce = APSCHED_NO, .next_run_time = T0 + 10 * APSCHED_SEC + 250,
       .catchup_window = APSCHED_HOUR, .pause_after_failures = 3},
      {.id = "nightly", .func = tick_job, .trigger = cron, .jobstore = "db", .paused = true,
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .delivery = nightly_delivery}};
  assert_int_equal(apsched_add_jobs(s, jobs, 2, NULL), APSCHED_OK);
  apsched_trigger_free(every10);
  apsched_trigger_free(cron);
}

/* ------------------------------------------------------------ restart */

/* Jobs outlive their scheduler: the next one continues the schedule, with
 * coalesce and misfire applied to the downtime, and the seeds' pattern
 * (re-adding with replace_existing and an unchanged trigger) keeps it. */
static inline void persistent_restart_test(apsched_jobstore *(*open_where)(const char *where),
                                           const char *where) {
  reset_runs();
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_trigger *every10 = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options jobs[3] = {
      {.id = "coalesced", .func_name = TICK, .trigger = every10, .jobstore = "db",
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .replace_existing = true},
      {.id = "strict", .func_name = TICK, .trigger = every10, .jobstore = "db",
       .coalesce = APSCHED_NO, .misfire_grace_time = APSCHED_SEC, .replace_existing = true},
      {.id = "changing", .func_name = TICK, .trigger = every10, .jobstore = "db",
       .replace_existing = true}};

  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = sched_with(&fc, &r, open_where(where));
  assert_int_equal(apsched_add_jobs(s, jobs, 3, NULL), APSCHED_OK);
  fake_advance(&fc, 10 * APSCHED_SEC);
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 3));
  assert_int_equal(next_of(s, "coalesced"), T0 + 20 * APSCHED_SEC);
  apsched_free(s);
  recorder_destroy(&r);
  assert_int_equal(runs_of("coalesced"), 1);

  /* 45 s later, a new process would start the same way. */
  fake_clock_init(&fc, T0 + 65 * APSCHED_SEC);
  recorder_init(&r);
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK); /* again: harmless */
  s = paused_sched_with(&fc, &r, open_where(where));
  assert_int_equal(next_of(s, "coalesced"), T0 + 20 * APSCHED_SEC); /* as stored */
  assert_int_equal(next_of(s, "strict"), T0 + 20 * APSCHED_SEC);
  apsched_trigger *every30 = every(30 * APSCHED_SEC, T0);
  jobs[2].trigger = every30;
  assert_int_equal(apsched_add_jobs(s, jobs, 3, NULL), APSCHED_OK);
  assert_int_equal(next_of(s, "coalesced"), T0 + 20 * APSCHED_SEC); /* unchanged trigger: kept */
  assert_int_equal(next_of(s, "strict"), T0 + 20 * APSCHED_SEC);
  assert_int_equal(next_of(s, "changing"), T0 + 90 * APSCHED_SEC); /* new trigger: recomputed */
  assert_int_equal(apsched_resume(s), APSCHED_OK);
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_MISSED, 1));
  /* coalesced: the five missed runs (20..60 s) become one; strict: all of
   * them are past its 1 s grace time, reported missed, none run. */
  assert_int_equal(runs_of("coalesced"), 2);
  assert_int_equal(runs_of("strict"), 1);
  int m = recorder_find(&r, APSCHED_EVENT_JOB_MISSED, 0);
  assert_string_equal(r.ev[m].job_id, "strict");
  assert_int_equal(r.ev[m].missed_count, 5);
  assert_int_equal(next_of(s, "coalesced"), T0 + 70 * APSCHED_SEC);
  assert_int_equal(next_of(s, "strict"), T0 + 70 * APSCHED_SEC);
  apsched_free(s);
  recorder_destroy(&r);
  apsched_trigger_free(every10);
  apsched_trigger_free(every30);
}

/* ------------------------------------------------------------ refusals */

static inline int unnamed_job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

/* Jobs a store in a database cannot keep are refused at add time, naming
 * the job and the store's kind ("SQLite"), and nothing is stored. */
static inline void persistent_refusals_test(apsched_jobstore *st, const char *kind) {
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = sched_with(&fc, NULL, st);
  char want[160];
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  int x = 0;
  apsched_job_options o = {.id = "ptr", .func_name = TICK, .jobstore = "db", .arg = &x};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_EINVAL);
  snprintf(want, sizeof want,
           "job 'ptr' has only a pointer argument, which a %s store cannot keep: give it arg_bytes",
           kind);
  assert_non_null(strstr(apsched_last_error(), want));
  o = (apsched_job_options){.id = "both", .func_name = TICK, .jobstore = "db", .arg = &x,
                            .arg_bytes = "b", .arg_len = 1};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "pointer argument besides its bytes"));
  o = (apsched_job_options){.id = "unnamed", .func = unnamed_job, .jobstore = "db"};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_EINVAL);
  snprintf(want, sizeof want,
           "job 'unnamed': its function has no registered name, so a %s store could not call it",
           kind);
  assert_non_null(strstr(apsched_last_error(), want));
  assert_non_null(strstr(apsched_last_error(), "apsched_register_func"));
  /* In a batch, the offender is named and nothing is stored. */
  apsched_job_options batch[2] = {{.id = "fine", .func_name = TICK, .jobstore = "db", .paused = true},
                                  {.id = "unnamed", .func = unnamed_job, .jobstore = "db"}};
  assert_int_equal(apsched_add_jobs(s, batch, 2, NULL), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "'unnamed'"));
  apsched_job *jobs;
  size_t n;
  assert_int_equal(apsched_get_jobs(s, "db", &jobs, &n), APSCHED_OK);
  assert_int_equal(n, 0);
  apsched_jobs_free(jobs, n);
  /* A stored job cannot be given a pointer later either. */
  assert_int_equal(apsched_add_job(s, &batch[0], NULL, 0), APSCHED_OK);
  apsched_job_changes c = {.set_arg = true, .arg = &x};
  assert_int_equal(apsched_modify_job(s, "fine", "db", &c), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "pointer argument"));
  apsched_free(s);
}

#endif
