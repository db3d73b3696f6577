/* apsched_remove_listener from jobs and listeners: it waits for the
 * listener's calls on other threads (never for the calling thread's own),
 * and reports instead of hanging when two threads would wait for each other. */
#include "support.h"

static int noop_job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

/* Shared by the listeners, jobs and the test thread; one test at a time. */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  apsched_scheduler *s;
  int id, id2;       /* listener ids */
  bool inside;       /* the blocking call (event "x") started */
  bool release;      /* the test lets it finish */
  bool call_done;    /* the blocking call finished */
  bool calling;      /* the remover is about to call remove_listener */
  bool returned;     /* remove_listener returned */
  bool done_at_return; /* call_done, seen when remove_listener returned */
  int rc, rc2;
  int calls;         /* other calls of the listener */
  int *user_data;
  pthread_barrier_t both_inside;
  int finished;      /* listeners done with their removal (mutual test) */
} g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void reset(apsched_scheduler *s) {
  pthread_mutex_lock(&g.lock);
  g.s = s;
  g.id = g.id2 = 0;
  g.inside = g.release = g.call_done = g.calling = g.returned = g.done_at_return = false;
  g.rc = g.rc2 = 1;
  g.calls = g.finished = 0;
  g.user_data = NULL;
  pthread_mutex_unlock(&g.lock);
}

static void set_flag(bool *flag) {
  pthread_mutex_lock(&g.lock);
  *flag = true;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.lock);
}

/* Waits until *flag is set, at most ms milliseconds of real time. */
static bool wait_flag(bool *flag, long ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += ms / 1000;
  deadline.tv_nsec += (ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&g.lock);
  int rc = 0;
  while (!*flag && rc == 0) rc = pthread_cond_timedwait(&g.cond, &g.lock, &deadline);
  bool ok = *flag;
  pthread_mutex_unlock(&g.lock);
  return ok;
}

static bool is_job(const apsched_event *ev, const char *id) {
  return ev->job_id && strcmp(ev->job_id, id) == 0;
}

/* Event "x": blocks until released, then uses its user data. */
static void block_on_x(const apsched_event *ev, int *user_data) {
  set_flag(&g.inside);
  pthread_mutex_lock(&g.lock);
  while (!g.release) pthread_cond_wait(&g.cond, &g.lock);
  pthread_mutex_unlock(&g.lock);
  (*user_data)++; /* a use-after-free if the remover freed it already */
  (void)ev;
  set_flag(&g.call_done);
}

/* Removes listener id on this thread, noting whether the blocking call had
 * finished by the time remove_listener returned. */
static void remove_and_note(int id) {
  set_flag(&g.calling);
  int rc = apsched_remove_listener(g.s, id);
  pthread_mutex_lock(&g.lock);
  g.rc = rc;
  g.done_at_return = g.call_done;
  g.returned = true;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.lock);
}

/* "x": block; "y": remove itself; anything else: count the call. */
static void listener_fn(const apsched_event *ev, void *ud) {
  if (is_job(ev, "x")) {
    block_on_x(ev, ud);
  } else if (is_job(ev, "y")) {
    remove_and_note(g.id);
  } else {
    pthread_mutex_lock(&g.lock);
    g.calls++;
    pthread_mutex_unlock(&g.lock);
  }
}

/* Jobs: adding a job dispatches its JOB_ADDED event on the job's thread. */
static void add_paused(apsched_scheduler *s, const char *id) {
  apsched_job_options o = {.id = id, .func = noop_job, .paused = true};
  (void)apsched_add_job(s, &o, NULL, 0);
}
static int adds_x(apsched_run_ctx *run) {
  add_paused(apsched_run_scheduler(run), "x");
  return 0;
}
static int adds_y(apsched_run_ctx *run) {
  add_paused(apsched_run_scheduler(run), "y");
  return 0;
}
static int adds_x1(apsched_run_ctx *run) {
  add_paused(apsched_run_scheduler(run), "x1");
  return 0;
}
static int adds_x2(apsched_run_ctx *run) {
  add_paused(apsched_run_scheduler(run), "x2");
  return 0;
}
static int removes_listener(apsched_run_ctx *run) {
  (void)run;
  int id;
  pthread_mutex_lock(&g.lock);
  id = g.id;
  pthread_mutex_unlock(&g.lock);
  remove_and_note(id);
  /* The header's promise: the listener no longer runs anywhere else. */
  free(g.user_data);
  return 0;
}

static void run_now(apsched_scheduler *s, const char *id, apsched_job_fn fn) {
  apsched_job_options o = {.id = id, .func = fn};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
}

/* A started scheduler on the real clock whose default executor is a pool of
 * two threads (two jobs run at once). */
static apsched_scheduler *two_thread_scheduler(void) {
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_executor *pool;
  apsched_thread_pool_options po = {.max_workers = 2};
  assert_int_equal(apsched_thread_pool_create(&po, &pool), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, pool, "default"), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  return s;
}

/* remove_listener must not return while the call on the other thread is in
 * progress. Proving that something does not happen takes a bounded wait. */
static void assert_remove_waits_for_call(void) {
  assert_true(wait_flag(&g.calling, 20000));
  assert_false(wait_flag(&g.returned, 200));
  set_flag(&g.release);
  assert_true(wait_flag(&g.returned, 20000));
  pthread_mutex_lock(&g.lock);
  assert_int_equal(g.rc, APSCHED_OK);
  assert_true(g.done_at_return);
  pthread_mutex_unlock(&g.lock);
}

/* Issue 7, defect 2: from a job (user code), remove_listener skipped the
 * wait for a call on another thread; freeing user_data after it returned
 * was a use-after-free. */
static void test_remove_from_job_waits_for_call_on_other_thread(void **state) {
  (void)state;
  apsched_scheduler *s = two_thread_scheduler();
  reset(s);
  int *ud = calloc(1, sizeof *ud);
  assert_non_null(ud);
  g.user_data = ud;
  assert_int_equal(apsched_add_listener(s, listener_fn, APSCHED_EVENT_JOB_ADDED, ud, &g.id),
                   APSCHED_OK);
  run_now(s, "a", adds_x); /* the listener blocks on x on the pool thread running a */
  assert_true(wait_flag(&g.inside, 20000));
  run_now(s, "b", removes_listener); /* on the other pool thread */
  assert_remove_waits_for_call();
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
}

/* A listener removing itself while it also runs on another thread waits for
 * that call, but not for its own; it is not called again. */
static void test_self_removal_waits_for_other_threads_only(void **state) {
  (void)state;
  apsched_scheduler *s = two_thread_scheduler();
  reset(s);
  static int ud;
  assert_int_equal(apsched_add_listener(s, listener_fn, APSCHED_EVENT_JOB_ADDED, &ud, &g.id),
                   APSCHED_OK);
  run_now(s, "a", adds_x);
  assert_true(wait_flag(&g.inside, 20000));
  run_now(s, "b", adds_y); /* the listener removes itself on b's thread */
  assert_remove_waits_for_call();
  pthread_mutex_lock(&g.lock);
  int calls = g.calls; /* "b" was added while the listener was still there */
  pthread_mutex_unlock(&g.lock);
  add_paused(s, "z");
  pthread_mutex_lock(&g.lock);
  assert_int_equal(g.calls, calls);
  pthread_mutex_unlock(&g.lock);
  assert_int_equal(apsched_remove_listener(s, g.id), APSCHED_ENOENT);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
}

/* ---- removal from a dispatch nested in the listener's own call */

static void nesting_listener(const apsched_event *ev, void *ud) {
  apsched_scheduler *s = ud;
  pthread_mutex_lock(&g.lock);
  g.calls++;
  pthread_mutex_unlock(&g.lock);
  if (is_job(ev, "n1")) {
    add_paused(s, "n2"); /* JOB_ADDED for n2 reaches this listener, nested */
  } else if (is_job(ev, "n2")) {
    int rc = apsched_remove_listener(s, g.id); /* two calls on this thread */
    pthread_mutex_lock(&g.lock);
    g.rc = rc;
    pthread_mutex_unlock(&g.lock);
  }
}

static void test_removal_from_nested_call_does_not_wait(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  reset(s);
  assert_int_equal(apsched_add_listener(s, nesting_listener, APSCHED_EVENT_JOB_ADDED, s, &g.id),
                   APSCHED_OK);
  add_paused(s, "n1");
  assert_int_equal(g.rc, APSCHED_OK);
  assert_int_equal(g.calls, 2);
  add_paused(s, "n3");
  assert_int_equal(g.calls, 2);
  assert_int_equal(apsched_remove_listener(s, g.id), APSCHED_ENOENT);
  apsched_free(s);
}

/* ---- two listeners, on two threads, removing each other */

/* ud: "x1" for the first listener, "x2" for the second; each acts on its
 * own event only (both are called for both). */
static void mutual_listener(const apsched_event *ev, void *ud) {
  if (!is_job(ev, ud)) return;
  bool first = strcmp(ud, "x1") == 0;
  pthread_barrier_wait(&g.both_inside);
  int other;
  pthread_mutex_lock(&g.lock);
  other = first ? g.id2 : g.id;
  pthread_mutex_unlock(&g.lock);
  int rc = apsched_remove_listener(g.s, other);
  pthread_mutex_lock(&g.lock);
  if (first) g.rc = rc;
  else g.rc2 = rc;
  if (++g.finished == 2) g.returned = true;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.lock);
}

/* The second to ask would wait for a thread that waits for it: it gets
 * APSCHED_EDEADLK (nothing changed) and the first removal completes. */
static void test_mutual_removal_reports_deadlock(void **state) {
  (void)state;
  apsched_scheduler *s = two_thread_scheduler();
  reset(s);
  pthread_barrier_init(&g.both_inside, NULL, 2);
  assert_int_equal(apsched_add_listener(s, mutual_listener, APSCHED_EVENT_JOB_ADDED, "x1", &g.id),
                   APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, mutual_listener, APSCHED_EVENT_JOB_ADDED, "x2", &g.id2),
                   APSCHED_OK);
  run_now(s, "a1", adds_x1);
  run_now(s, "a2", adds_x2);
  assert_true(wait_flag(&g.returned, 20000));
  pthread_mutex_lock(&g.lock);
  int rc = g.rc, rc2 = g.rc2;
  pthread_mutex_unlock(&g.lock);
  assert_true((rc == APSCHED_OK && rc2 == APSCHED_EDEADLK) ||
              (rc == APSCHED_EDEADLK && rc2 == APSCHED_OK));
  /* The refused removal changed nothing: that listener is still there. */
  int survivor = rc == APSCHED_OK ? g.id : g.id2, removed = rc == APSCHED_OK ? g.id2 : g.id;
  assert_int_equal(apsched_remove_listener(s, removed), APSCHED_ENOENT);
  assert_int_equal(apsched_remove_listener(s, survivor), APSCHED_OK);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  pthread_barrier_destroy(&g.both_inside);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_remove_from_job_waits_for_call_on_other_thread),
      cmocka_unit_test(test_self_removal_waits_for_other_threads_only),
      cmocka_unit_test(test_removal_from_nested_call_does_not_wait),
      cmocka_unit_test(test_mutual_removal_reports_deadlock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
