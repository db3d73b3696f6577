/* A store whose calls block (APSCHED_STORE_BLOCKING) never stalls the
 * scheduler: while one of its calls hangs, API calls on other stores,
 * get_state, listeners and the other stores' jobs go on. The store here
 * blocks every call on a gate the test holds closed: a database that takes
 * forever, which is stronger than one that takes 200 ms. */
#include "support.h"
#include "wrapped_store.h"

typedef struct adder {
  apsched_scheduler *s;
  int rc;
} adder;

static void *add_to_slow(void *arg) {
  adder *a = arg;
  apsched_job_options o = {.id = "slow-job", .func = count_job, .jobstore = "slow",
                           .paused = true};
  a->rc = apsched_add_job(a->s, &o, NULL, 0);
  return NULL;
}

static void test_slow_store_does_not_stall_the_scheduler(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  wrapped_store *slow = wrapped_memory_store(APSCHED_STORE_BLOCKING);
  assert_int_equal(apsched_add_jobstore(s, &slow->base, "slow"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &r, NULL), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);

  /* From now on every call of the slow store hangs: its own loop thread is
   * stuck in it, and so is an add_job on another thread. */
  wrapped_gate(slow, true);
  adder a = {.s = s, .rc = 1};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, add_to_slow, &a), 0);
  wrapped_wait_blocked(slow);

  /* Everything that does not need the slow store carries on. */
  assert_int_equal(apsched_get_state(s), APSCHED_STATE_RUNNING);
  counter c = {0};
  apsched_job_options o = {.id = "fast", .func = count_job, .arg = &c}; /* default store, now */
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1)); /* run and listener delivered */
  assert_int_equal(atomic_load(&c.runs), 1);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "fast", "default", &j), APSCHED_ENOENT); /* a date job: gone */
  apsched_job_options o2 = {.id = "later", .func = count_job, .arg = &c,
                            .next_run_time = apsched_now() + APSCHED_HOUR};
  assert_int_equal(apsched_add_job(s, &o2, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_get_job(s, "later", "default", &j), APSCHED_OK);
  apsched_job_free(j);
  assert_int_equal(apsched_pause(s), APSCHED_OK);
  assert_int_equal(apsched_resume(s), APSCHED_OK);
  assert_int_equal(a.rc, 1); /* the slow add is still waiting */

  /* Once the store answers, the waiting call completes. */
  wrapped_gate(slow, false);
  pthread_join(t, NULL);
  assert_int_equal(a.rc, APSCHED_OK);
  assert_int_equal(apsched_get_job(s, "slow-job", "slow", &j), APSCHED_OK);
  assert_true(j->paused);
  apsched_job_free(j);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  recorder_destroy(&r);
}

/* A blocking store's jobs run from its own thread, on time, and a store
 * removed while its thread waits is freed cleanly. */
static void test_blocking_store_runs_its_jobs(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s;
  assert_int_equal(apsched_create(NULL, &s), APSCHED_OK);
  wrapped_store *w = wrapped_memory_store(APSCHED_STORE_BLOCKING);
  assert_int_equal(apsched_add_jobstore(s, &w->base, "blocking"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &r, NULL), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  counter c = {0};
  apsched_trigger *t = every(20 * APSCHED_MSEC, 0);
  apsched_job_options o = {.id = "tick", .func = count_job, .arg = &c, .trigger = t,
                           .jobstore = "blocking"};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 3));
  int e = recorder_find(&r, APSCHED_EVENT_JOB_EXECUTED, 0);
  assert_string_equal(r.ev[e].jobstore, "blocking");
  assert_int_equal(apsched_remove_jobstore(s, "blocking"), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_REMOVED, 1));
  apsched_trigger_free(t);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  recorder_destroy(&r);
}

static void *shutdown_and_wait(void *arg) {
  apsched_shutdown(arg, true);
  return NULL;
}

/* A waiting shutdown used to stop the executors while a store's loop was in
 * the middle of a batch: the batch's next run times were stored, and its
 * runs were then refused by a stopped executor (lost, reported as errors). */
static void test_waiting_shutdown_lets_a_batch_in_flight_run(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s;
  assert_int_equal(apsched_create(NULL, &s), APSCHED_OK);
  wrapped_store *w = wrapped_memory_store(APSCHED_STORE_BLOCKING);
  assert_int_equal(apsched_add_jobstore(s, &w->base, "db"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &r, NULL), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  wrapped_gate_release(w, true);
  counter c = {0};
  apsched_job_options o = {.id = "due", .func = count_job, .arg = &c, .jobstore = "db"};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  wrapped_wait_release_blocked(w); /* the store's loop claimed the job */
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, shutdown_and_wait, s), 0);
  while (apsched_get_state(s) != APSCHED_STATE_STOPPED) sched_yield();
  wrapped_gate_release(w, false);
  pthread_join(t, NULL);
  assert_int_equal(atomic_load(&c.runs), 1);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ERROR), 0);
  apsched_free(s);
  recorder_destroy(&r);
}

/* A clock that is stale on the test's thread until that thread reaches the
 * store: as if the call had read the time, then waited for the store while
 * the loop claimed and ran the job (a blocking store holds its section for a
 * whole claimed batch, fsync included). */
static _Thread_local bool tl_reached_store;

typedef struct stale_clock {
  fake_clock fc;
  pthread_t victim;
  atomic_bool armed;
  _Atomic apsched_time_t stale;
  apsched_clock clock;
} stale_clock;

static apsched_time_t stale_wall(void *ud) {
  stale_clock *c = ud;
  if (atomic_load(&c->armed) && pthread_equal(pthread_self(), c->victim) && !tl_reached_store)
    return atomic_load(&c->stale);
  return atomic_load(&c->fc.wall);
}

static int64_t stale_mono(void *ud) { return atomic_load(&((stale_clock *)ud)->fc.mono); }

static int lookup_marking(apsched_jobstore *st, const char *id, const apsched_job_record **out) {
  tl_reached_store = true;
  return ws_lookup(st, id, out);
}

static void arm_stale(stale_clock *c, apsched_time_t stale) {
  tl_reached_store = false;
  atomic_store(&c->stale, stale);
  atomic_store(&c->armed, true);
}

static apsched_time_t next_of(apsched_scheduler *s, const char *id) {
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, id, NULL, &j), APSCHED_OK);
  apsched_time_t t = j->next_run_time;
  apsched_job_free(j);
  return t;
}

/* resume_job, reschedule_job and a replace_existing add compute the next run
 * time from the clock read inside the store's section: the time read before
 * it may be one the loop claimed and ran meanwhile, which then ran twice. */
static void test_next_run_time_is_computed_inside_the_store_section(void **state) {
  (void)state;
  const apsched_time_t T = T0 + 10 * APSCHED_SEC, stale = T - APSCHED_MSEC;
  stale_clock c;
  fake_clock_init(&c.fc, T0);
  c.victim = pthread_self();
  atomic_store(&c.armed, false);
  atomic_store(&c.stale, 0);
  c.clock = (apsched_clock){stale_wall, stale_mono, &c};
  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.timezone = "UTC", .clock = &c.clock};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  wrapped_store *w = wrapped_memory_store(APSCHED_STORE_BLOCKING);
  w->vt.lookup = lookup_marking;
  assert_int_equal(apsched_add_jobstore(s, &w->base, "default"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &r, NULL), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  counter cnt = {0};
  apsched_trigger *t10 = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options o = {.id = "j", .func = count_job, .arg = &cnt, .trigger = t10};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(next_of(s, "j"), T);

  /* The loop runs the job for T and moves it to T + 10 s. */
  fake_advance(&c.fc, 10 * APSCHED_SEC + 1);
  assert_int_equal(apsched_wakeup(s), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(apsched_pause(s), APSCHED_OK); /* what the calls store stays put */
  assert_int_equal(next_of(s, "j"), T + 10 * APSCHED_SEC);

  /* Each call read the clock just before T; T has run by the time it stores. */
  arm_stale(&c, stale);
  assert_int_equal(apsched_resume_job(s, "j", NULL), APSCHED_OK);
  assert_int_equal(next_of(s, "j"), T + 10 * APSCHED_SEC);

  apsched_trigger *t5 = every(5 * APSCHED_SEC, T0);
  arm_stale(&c, stale);
  assert_int_equal(apsched_reschedule_job(s, "j", NULL, t5), APSCHED_OK);
  assert_int_equal(next_of(s, "j"), T + 5 * APSCHED_SEC);

  apsched_trigger *t2 = every(2 * APSCHED_SEC, T0);
  o.trigger = t2;
  o.replace_existing = true;
  arm_stale(&c, stale);
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(next_of(s, "j"), T + 2 * APSCHED_SEC);
  atomic_store(&c.armed, false);

  assert_int_equal(atomic_load(&cnt.runs), 1);
  apsched_trigger_free(t10);
  apsched_trigger_free(t5);
  apsched_trigger_free(t2);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  recorder_destroy(&r);
}


int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_waiting_shutdown_lets_a_batch_in_flight_run),
      cmocka_unit_test(test_slow_store_does_not_stall_the_scheduler),
      cmocka_unit_test(test_blocking_store_runs_its_jobs),
      cmocka_unit_test(test_next_run_time_is_computed_inside_the_store_section),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
