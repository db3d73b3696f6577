/* Host listeners (apsched_add_host_listener): in hosted mode they run only
 * inside apsched_process, on its caller's thread, whatever thread raised
 * the event (a thread pool's worker, another thread adding a job or
 * shutting down); the descriptor wakes the host for them; nothing queued is
 * lost (apsched_process after a shutdown, apsched_free); removal and later
 * listeners; in the thread mode they are ordinary listeners. */
#include "support.h"

#include <poll.h>

/* Events a host listener saw, with the thread it ran on. */
typedef struct host_log {
  recorder r;
  pthread_t threads[256];
  size_t n;
} host_log;

static void host_record(const apsched_event *ev, void *ud) {
  host_log *h = ud;
  pthread_mutex_lock(&h->r.lock);
  if (h->n < 256) h->threads[h->n++] = pthread_self();
  pthread_mutex_unlock(&h->r.lock);
  record_event(ev, &h->r);
}

/* True if every call of the host listener ran on thread t. */
static bool all_on(host_log *h, pthread_t t) {
  pthread_mutex_lock(&h->r.lock);
  bool ok = true;
  for (size_t i = 0; i < h->n; i++) ok = ok && pthread_equal(h->threads[i], t);
  pthread_mutex_unlock(&h->r.lock);
  return ok;
}

/* Polls the descriptor up to ms; true if readable. */
static bool readable(apsched_scheduler *s, int ms) {
  struct pollfd p = {.fd = apsched_fd(s), .events = POLLIN};
  return poll(&p, 1, ms) == 1;
}

/* Calls apsched_process whenever the descriptor is readable until the host
 * listener saw n events with code (20 s at most). */
static bool process_until(apsched_scheduler *s, host_log *h, int code, size_t n) {
  for (int i = 0; i < 2000; i++) {
    if (recorder_count(&h->r, code) >= n) return true;
    if (readable(s, 10)) {
      int64_t wait;
      if (apsched_process(s, &wait) != APSCHED_OK) break;
    }
  }
  return recorder_count(&h->r, code) >= n;
}

static apsched_scheduler *hosted_with_pool(fake_clock *fc, recorder *direct, host_log *h) {
  apsched_scheduler *s = hosted_scheduler(fc, direct, NULL);
  apsched_executor *pool;
  assert_int_equal(apsched_thread_pool_create(NULL, &pool), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, pool, "pool"), APSCHED_OK);
  recorder_init(&h->r);
  h->n = 0;
  assert_int_equal(apsched_add_host_listener(s, host_record, APSCHED_EVENT_EVERYTHING, h, NULL),
                   APSCHED_OK);
  return s;
}

/* Each test's scheduler: hosted on a fake clock, an inline "default"
 * executor and a thread pool "pool", a host listener recording into h, and
 * one pass done. */
static struct {
  fake_clock fc;
  host_log h;
  apsched_scheduler *s;
} f;

static int setup(void **state) {
  (void)state;
  fake_clock_init(&f.fc, T0);
  f.s = hosted_with_pool(&f.fc, NULL, &f.h);
  process(f.s);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  apsched_free(f.s); /* NULL if the test freed it */
  recorder_destroy(&f.h.r);
  return 0;
}

/* Several workers run the ordinary listener at once: the thread it last
 * ran on is kept under a lock. */
static pthread_mutex_t direct_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t direct_thread;
static atomic_bool direct_seen;

static void note_direct_thread(const apsched_event *ev, void *ud) {
  (void)ud;
  if (ev->code == APSCHED_EVENT_JOB_EXECUTED) {
    pthread_mutex_lock(&direct_lock);
    direct_thread = pthread_self();
    pthread_mutex_unlock(&direct_lock);
    atomic_store(&direct_seen, true);
  }
}

static void test_pool_outcomes_reach_the_host_thread(void **state) {
  (void)state;
  apsched_scheduler *s = f.s;
  host_log *h = &f.h;
  atomic_store(&direct_seen, false);
  assert_int_equal(apsched_add_listener(s, note_direct_thread, APSCHED_EVENT_JOB_EXECUTED, NULL,
                                        NULL),
                   APSCHED_OK);
  counter c = {0};
  for (int i = 0; i < 5; i++) {
    char id[16];
    snprintf(id, sizeof id, "job%d", i);
    apsched_job_options o = {.id = id, .func = count_job, .arg = &c, .executor = "pool"};
    assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  }
  assert_true(process_until(s, h, APSCHED_EVENT_JOB_EXECUTED, 5));
  assert_int_equal(atomic_load(&c.runs), 5);
  /* The ordinary listener ran on a worker; the host listener only here. */
  assert_true(atomic_load(&direct_seen));
  pthread_mutex_lock(&direct_lock);
  bool direct_on_host = pthread_equal(direct_thread, pthread_self());
  pthread_mutex_unlock(&direct_lock);
  assert_false(direct_on_host);
  assert_true(all_on(h, pthread_self()));
  /* In order: each run's SUBMITTED before its EXECUTED. */
  for (size_t k = 0; k < 5; k++) {
    int sub = recorder_find(&h->r, APSCHED_EVENT_JOB_SUBMITTED, k);
    assert_true(sub >= 0);
    const char *id = h->r.ev[sub].job_id;
    for (size_t e = 0; e < 5; e++) {
      int ex = recorder_find(&h->r, APSCHED_EVENT_JOB_EXECUTED, e);
      if (strcmp(h->r.ev[ex].job_id, id) == 0) assert_true(sub < ex);
    }
  }
}

static void test_events_inside_process_are_delivered_at_once(void **state) {
  (void)state;
  apsched_scheduler *s = f.s;
  host_log *h = &f.h;
  counter c = {0};
  apsched_job_options o = {.id = "inline", .func = count_job, .arg = &c};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK); /* queued: JOB_ADDED */
  process(s);
  assert_int_equal(atomic_load(&c.runs), 1);
  int added = recorder_find(&h->r, APSCHED_EVENT_JOB_ADDED, 0);
  int submitted = recorder_find(&h->r, APSCHED_EVENT_JOB_SUBMITTED, 0);
  int executed = recorder_find(&h->r, APSCHED_EVENT_JOB_EXECUTED, 0);
  assert_true(added >= 0 && added < submitted && submitted < executed);
  /* Delivered in that pass: the descriptor does not ask for another. */
  assert_false(readable(s, 0));
}

typedef struct adder {
  apsched_scheduler *s;
  int rc;
} adder;

static void *add_from_thread(void *arg) {
  adder *a = arg;
  apsched_date_options d = {.run_date = T0 + 3600 * APSCHED_SEC};
  apsched_trigger *t;
  a->rc = apsched_trigger_date(&d, &t);
  apsched_job_options o = {.id = "later", .func = count_job, .trigger = t};
  if (a->rc == APSCHED_OK) a->rc = apsched_add_job(a->s, &o, NULL, 0);
  apsched_trigger_free(t);
  return NULL;
}

static void test_events_of_other_threads_wait_for_process(void **state) {
  (void)state;
  apsched_scheduler *s = f.s;
  host_log *h = &f.h;
  assert_false(readable(s, 0));
  size_t before = h->r.n;
  adder a = {.s = s, .rc = 1};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, add_from_thread, &a), 0);
  pthread_join(t, NULL);
  assert_int_equal(a.rc, APSCHED_OK);
  /* Queued, not delivered on the adding thread; the descriptor says so. */
  assert_int_equal(h->r.n, before);
  assert_true(readable(s, 0));
  process(s);
  assert_int_equal(recorder_count(&h->r, APSCHED_EVENT_JOB_ADDED), 1);
  assert_true(all_on(h, pthread_self()));
}

static void *shutdown_thread(void *arg) {
  apsched_shutdown(arg, true);
  return NULL;
}

static void test_process_delivers_after_shutdown(void **state) {
  (void)state;
  apsched_scheduler *s = f.s;
  host_log *h = &f.h;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, shutdown_thread, s), 0);
  pthread_join(t, NULL);
  assert_int_equal(recorder_count(&h->r, APSCHED_EVENT_SCHEDULER_SHUTDOWN), 0);
  assert_true(readable(s, 0));
  int64_t wait = 0;
  assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  assert_int_equal(wait, -1);
  assert_int_equal(recorder_count(&h->r, APSCHED_EVENT_SCHEDULER_SHUTDOWN), 1);
  assert_true(all_on(h, pthread_self()));
  /* Nothing left: the usual answer of a stopped scheduler. */
  assert_int_equal(apsched_process(s, &wait), APSCHED_ESTATE);
}

static void test_free_delivers_what_is_left(void **state) {
  (void)state;
  apsched_scheduler *s = f.s;
  host_log *h = &f.h;
  adder a = {.s = s, .rc = 1};
  add_from_thread(&a); /* on this thread, but outside apsched_process: queued */
  assert_int_equal(a.rc, APSCHED_OK);
  assert_int_equal(recorder_count(&h->r, APSCHED_EVENT_JOB_ADDED), 0);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  f.s = NULL;
  assert_int_equal(recorder_count(&h->r, APSCHED_EVENT_JOB_ADDED), 1);
  assert_int_equal(recorder_count(&h->r, APSCHED_EVENT_SCHEDULER_SHUTDOWN), 1);
}

static void test_removed_and_later_listeners(void **state) {
  (void)state;
  apsched_scheduler *s = f.s;
  host_log *h = &f.h;
  host_log gone;
  recorder_init(&gone.r);
  gone.n = 0;
  int id;
  assert_int_equal(apsched_add_host_listener(s, host_record, APSCHED_EVENT_JOB_ADDED, &gone, &id),
                   APSCHED_OK);
  adder a = {.s = s, .rc = 1};
  add_from_thread(&a);
  assert_int_equal(a.rc, APSCHED_OK);
  assert_int_equal(apsched_remove_listener(s, id), APSCHED_OK);
  host_log later;
  recorder_init(&later.r);
  later.n = 0;
  assert_int_equal(apsched_add_host_listener(s, host_record, APSCHED_EVENT_JOB_ADDED, &later, NULL),
                   APSCHED_OK);
  process(s);
  assert_int_equal(recorder_count(&h->r, APSCHED_EVENT_JOB_ADDED), 1);
  assert_int_equal(gone.r.n, 0);  /* removed before delivery */
  assert_int_equal(later.r.n, 0); /* added after the event */
  assert_int_equal(apsched_add_host_listener(s, host_record, 0, &later, NULL), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "add_host_listener: mask 0x0 is empty"));
  recorder_destroy(&gone.r);
  recorder_destroy(&later.r);
}

static void test_ordinary_listener_outside_hosted_mode(void **state) {
  (void)state;
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  host_log h;
  recorder_init(&h.r);
  h.n = 0;
  assert_int_equal(apsched_add_host_listener(s, host_record, APSCHED_EVENT_EVERYTHING, &h, NULL),
                   APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  counter c = {0};
  apsched_job_options o = {.id = "now", .func = count_job, .arg = &c};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  /* No apsched_process in this mode: delivered where raised. */
  assert_true(recorder_wait(&h.r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  assert_int_equal(recorder_count(&h.r, APSCHED_EVENT_SCHEDULER_SHUTDOWN), 1);
  apsched_free(s);
  recorder_destroy(&h.r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pool_outcomes_reach_the_host_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events_inside_process_are_delivered_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events_of_other_threads_wait_for_process, setup, teardown),
      cmocka_unit_test_setup_teardown(test_process_delivers_after_shutdown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_delivers_what_is_left, setup, teardown),
      cmocka_unit_test_setup_teardown(test_removed_and_later_listeners, setup, teardown),
      cmocka_unit_test(test_ordinary_listener_outside_hosted_mode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
