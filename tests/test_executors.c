/* Executors: the thread pool's worker limit, how it wakes idle workers for
 * a burst, a worker that leaves a run's ending to the dispatch pass holding
 * the lock (and the slot it hands to a waiting run), queued runs on
 * shutdown without wait, restart after shutdown (refused while a waiting
 * shutdown waits),
 * max_runtime (also when a run's start is recorded late, and per scheduled
 * time), the inline executor's thread, runs refused after a shutdown from
 * another thread, what failing executor calls say in apsched_last_error(),
 * and the scheduler's allocator. */
#include "support.h"
#include "wrapped_store.h"

#include "apsched_plugin.h"

#include <sched.h>
#include <unistd.h>

typedef struct concurrency {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int running, max_running, started;
  bool open;
  pthread_t threads[64];
} concurrency;

static int tracked_job(apsched_run_ctx *run) {
  concurrency *c = apsched_run_arg(run);
  pthread_mutex_lock(&c->lock);
  c->threads[c->started++ % 64] = pthread_self();
  if (++c->running > c->max_running) c->max_running = c->running;
  pthread_cond_broadcast(&c->cond);
  while (!c->open) pthread_cond_wait(&c->cond, &c->lock);
  c->running--;
  pthread_mutex_unlock(&c->lock);
  return 0;
}

static void wait_started(concurrency *c, int n) {
  pthread_mutex_lock(&c->lock);
  while (c->started < n) pthread_cond_wait(&c->cond, &c->lock);
  pthread_mutex_unlock(&c->lock);
}

/* wait_started with a deadline: false if fewer than n started by then. */
static bool started_within(concurrency *c, int n, int ms) {
  struct timespec until = realtime_in((int64_t)ms * APSCHED_MSEC);
  pthread_mutex_lock(&c->lock);
  while (c->started < n && pthread_cond_timedwait(&c->cond, &c->lock, &until) == 0) {
  }
  bool ok = c->started >= n;
  pthread_mutex_unlock(&c->lock);
  return ok;
}

static void open_all(concurrency *c) {
  pthread_mutex_lock(&c->lock);
  c->open = true;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->lock);
}

/* A thread pool of max_workers (0: the default, 10) added to s as alias;
 * returned for the tests that call it directly. */
static apsched_executor *add_pool(apsched_scheduler *s, const char *alias, int max_workers) {
  apsched_executor *pool;
  apsched_thread_pool_options po = {.max_workers = max_workers};
  assert_int_equal(apsched_thread_pool_create(&po, &pool), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, pool, alias), APSCHED_OK);
  return pool;
}

static void test_pool_respects_max_workers(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  add_pool(s, "pool", 3);
  concurrency c = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  for (int i = 0; i < 8; i++) {
    char id[16];
    snprintf(id, sizeof id, "job%d", i);
    apsched_job_options o = {.id = id, .func = tracked_job, .arg = &c, .executor = "pool",
                             .misfire_grace_time = APSCHED_GRACE_UNLIMITED};
    assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  }
  process(s); /* returns at once: submitting never waits for a worker */
  wait_started(&c, 3);
  pthread_mutex_lock(&c.lock);
  assert_int_equal(c.started, 3); /* the other five wait in the queue */
  pthread_mutex_unlock(&c.lock);
  open_all(&c);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 8));
  assert_int_equal(c.max_running, 3);
  apsched_free(s);
  recorder_destroy(&r);
}

static void add_tracked_jobs(apsched_scheduler *s, concurrency *c, const char *prefix, int n) {
  for (int i = 0; i < n; i++) {
    char id[32];
    snprintf(id, sizeof id, "%s%d", prefix, i);
    apsched_job_options o = {.id = id, .func = tracked_job, .arg = c, .executor = "pool",
                             .misfire_grace_time = APSCHED_GRACE_UNLIMITED};
    assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  }
}

/* Runs queued at once while every worker of the pool is idle all start
 * together: the pool wakes one worker, and each woken worker wakes the next
 * before it runs its own (runs that block here), so none of them waits
 * behind a busy worker while another sleeps. */
static void test_pool_wakes_idle_workers_for_a_burst(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  add_pool(s, "pool", 4);
  /* Four workers started, then idle. */
  concurrency first = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  add_tracked_jobs(s, &first, "first", 4);
  process(s);
  assert_true(started_within(&first, 4, 10000));
  open_all(&first);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 4));
  concurrency burst = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  add_tracked_jobs(s, &burst, "burst", 4);
  process(s);
  bool all = started_within(&burst, 4, 10000);
  open_all(&burst);
  assert_true(all);
  assert_int_equal(burst.max_running, 4);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 8));
  apsched_free(s);
  recorder_destroy(&r);
}

/* The jobs of the two tests below, on a one-worker pool and a gated store:
 * "first" (its first time) ends only once a dispatch pass waits at the
 * closed gate, holding the scheduler lock; "second" notes that it started. */
typedef struct gated_pair {
  wrapped_store *w;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int first_runs;
  bool second_started;
} gated_pair;

static int first_job(apsched_run_ctx *run) {
  gated_pair *h = apsched_run_arg(run);
  pthread_mutex_lock(&h->lock);
  bool first = h->first_runs == 0;
  pthread_mutex_unlock(&h->lock);
  if (first) {
    pthread_mutex_lock(&h->w->lock);
    while (!(h->w->gate_closed && h->w->waiting > 0)) pthread_cond_wait(&h->w->cond, &h->w->lock);
    pthread_mutex_unlock(&h->w->lock);
  }
  pthread_mutex_lock(&h->lock);
  h->first_runs++;
  pthread_cond_broadcast(&h->cond);
  pthread_mutex_unlock(&h->lock);
  return 0;
}

static int second_job(apsched_run_ctx *run) {
  gated_pair *h = apsched_run_arg(run);
  pthread_mutex_lock(&h->lock);
  h->second_started = true;
  pthread_cond_broadcast(&h->cond);
  pthread_mutex_unlock(&h->lock);
  return 0;
}

/* Waits (10 s at most) for second's start, or for first's first_runs-th run. */
static bool gated_wait(gated_pair *h, bool second, int first_runs) {
  struct timespec until = realtime_in(10 * APSCHED_SEC);
  pthread_mutex_lock(&h->lock);
  while (!(second ? h->second_started : h->first_runs >= first_runs) &&
         pthread_cond_timedwait(&h->cond, &h->lock, &until) == 0) {
  }
  bool ok = second ? h->second_started : h->first_runs >= first_runs;
  pthread_mutex_unlock(&h->lock);
  return ok;
}

/* A hosted scheduler with a one-worker pool "pool" and a memory store
 * "gated" behind a gate (not blocking: called under the scheduler lock),
 * and h ready for the jobs on them. */
static apsched_scheduler *gated_scheduler(fake_clock *fc, gated_pair *h) {
  apsched_scheduler *s = hosted_scheduler(fc, NULL, NULL);
  add_pool(s, "pool", 1);
  *h = (gated_pair){.w = wrapped_memory_store(0), .lock = PTHREAD_MUTEX_INITIALIZER,
                    .cond = PTHREAD_COND_INITIALIZER};
  assert_int_equal(apsched_add_jobstore(s, &h->w->base, "gated"), APSCHED_OK);
  return s;
}

/* Adds first (completed here: first_job, h, the pool, the gated store)
 * and second_id (second_job, once, now) on them. */
static void add_gated_jobs(apsched_scheduler *s, gated_pair *h, apsched_job_options first,
                           const char *second_id) {
  first.func = first_job;
  first.arg = h;
  first.executor = "pool";
  first.jobstore = "gated";
  apsched_job_options second = {.id = second_id, .func = second_job, .arg = h,
                                .executor = "pool", .jobstore = "gated"};
  assert_int_equal(apsched_add_job(s, &first, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &second, NULL, 0), APSCHED_OK);
}

static void *process_thread(void *arg) {
  int64_t wait;
  return (void *)(intptr_t)apsched_process(arg, &wait);
}

/* Runs a pass on a thread of its own, held at the closed gate with the
 * scheduler lock, until "second" starts (10 s at most); *held: the pass
 * still waited then. Then lets the pass finish. Whether second started. */
static bool second_starts_while_a_pass_waits(apsched_scheduler *s, gated_pair *h, bool *held) {
  wrapped_gate(h->w, true);
  pthread_t pass;
  assert_int_equal(pthread_create(&pass, NULL, process_thread, s), 0);
  bool started = gated_wait(h, true, 0);
  pthread_mutex_lock(&h->w->lock);
  *held = h->w->waiting > 0;
  pthread_mutex_unlock(&h->w->lock);
  wrapped_gate(h->w, false);
  void *rc;
  pthread_join(pass, &rc);
  assert_int_equal((intptr_t)rc, APSCHED_OK);
  return started;
}

/* A run that ends quietly (no listener, nothing for its store) while a
 * dispatch pass holds the scheduler lock is left to that pass: its worker
 * goes on to the next queued run at once instead of sleeping on the lock,
 * and the pass frees the ended run's instance slot before it lets the lock
 * go (the job's next time runs, not skipped as max_instances reached). */
static void test_pool_worker_leaves_a_quiet_ending_to_the_pass(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  gated_pair h;
  apsched_scheduler *s = gated_scheduler(&fc, &h);
  apsched_trigger *t = every(APSCHED_SEC, T0);
  add_gated_jobs(s, &h, (apsched_job_options){.id = "x", .trigger = t}, "y");
  process(s); /* x then y handed to the one worker: x runs, y is queued */
  /* The pass waits in the store with the lock; x ends meanwhile. */
  bool pass_still_waiting;
  bool y_ran = second_starts_while_a_pass_waits(s, &h, &pass_still_waiting);
  assert_true(y_ran);
  assert_true(pass_still_waiting);
  fake_advance(&fc, APSCHED_SEC);
  process(s);
  assert_true(gated_wait(&h, false, 2));
  apsched_free(s);
  apsched_trigger_free(t);
}

/* A run left to the pass whose job has a run waiting for its slot
 * (buffer_one): the pass hands the slot over and the waiting run is
 * submitted once the pass lets the lock go. The one worker starting "c"
 * (queued behind b's first run) while the pass is held shows that b's
 * ending was left to the pass. */
static void test_pool_ending_left_to_the_pass_hands_its_slot_over(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  gated_pair h;
  apsched_scheduler *s = gated_scheduler(&fc, &h);
  apsched_trigger *t = every(APSCHED_SEC, T0);
  add_gated_jobs(s, &h,
                 (apsched_job_options){.id = "b", .trigger = t,
                                       .overlap = APSCHED_OVERLAP_BUFFER_ONE,
                                       .misfire_grace_time = APSCHED_GRACE_UNLIMITED},
                 "c");
  process(s); /* b's first run runs, c is queued behind it */
  fake_advance(&fc, APSCHED_SEC);
  process(s); /* b's second time waits for the slot */
  bool pass_still_waiting;
  bool c_ran = second_starts_while_a_pass_waits(s, &h, &pass_still_waiting);
  assert_true(c_ran);
  assert_true(gated_wait(&h, false, 2));
  apsched_free(s);
  apsched_trigger_free(t);
}

static void test_shutdown_nowait_reports_queued_runs(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  add_pool(s, "one", 1);
  concurrency c = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  for (int i = 0; i < 3; i++) {
    char id[16];
    snprintf(id, sizeof id, "q%d", i);
    apsched_job_options o = {.id = id, .func = tracked_job, .arg = &c, .executor = "one"};
    assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  }
  process(s);
  wait_started(&c, 1);
  assert_int_equal(apsched_shutdown(s, false), APSCHED_OK);
  /* The two queued runs never start; each is reported, none vanishes. */
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 2));
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_string_equal(r.ev[e].error, "the executor shut down before the run started");
  open_all(&c);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(c.started, 1);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_pool_restarts(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_JOB_EXECUTED, &r, NULL), APSCHED_OK);
  counter k = {0};
  for (int round = 1; round <= 3; round++) {
    assert_int_equal(apsched_start(s, false), APSCHED_OK);
    apsched_job_options o = {.func = count_job, .arg = &k};
    assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
    assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, (size_t)round));
    assert_int_equal(apsched_shutdown(s, round % 2 == 0), APSCHED_OK);
  }
  assert_int_equal(atomic_load(&k.runs), 3);
  apsched_free(s);
  recorder_destroy(&r);
}

static pthread_t loop_thread_id;

static void note_thread(const apsched_event *ev, void *ud) {
  (void)ev;
  (void)ud;
  loop_thread_id = pthread_self();
}

static void test_inline_runs_in_scheduler_thread(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  concurrency c = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .open = true};
  assert_int_equal(apsched_add_listener(s, note_thread, APSCHED_EVENT_JOB_SUBMITTED, NULL, NULL), APSCHED_OK);
  apsched_job_options o = {.func = tracked_job, .arg = &c};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  process(s);
  assert_int_equal(c.started, 1);
  assert_true(pthread_equal(c.threads[0], pthread_self())); /* ran inside apsched_process */
  assert_true(pthread_equal(loop_thread_id, pthread_self()));
  apsched_free(s);
}

/* ---- the inline executor shut down from another thread while the loop submits
 *
 * The job running inline (submitted by the loop) lets another thread shut the
 * scheduler down and waits until it has. The hand-off uses relaxed atomics on
 * purpose: they order nothing, so ThreadSanitizer sees the loop's read of the
 * executor's state and the shutdown's write as concurrent, as they are in a
 * real program where the two threads do not talk. */

typedef struct remote_shutdown {
  apsched_scheduler *s;
  atomic_int go, done;
  int rc;
} remote_shutdown;

static void *shutdown_when_told(void *arg) {
  remote_shutdown *rs = arg;
  while (!atomic_load_explicit(&rs->go, memory_order_relaxed)) sched_yield();
  rs->rc = apsched_shutdown(rs->s, false);
  atomic_store_explicit(&rs->done, 1, memory_order_relaxed);
  return NULL;
}

static int shutdown_elsewhere_job(apsched_run_ctx *run) {
  remote_shutdown *rs = apsched_run_arg(run);
  atomic_store_explicit(&rs->go, 1, memory_order_relaxed);
  while (!atomic_load_explicit(&rs->done, memory_order_relaxed)) sched_yield();
  return 0;
}

/* What apsched_last_error() said on the loop's thread when each refused run
 * was reported (right after the executor refused it). */
typedef struct refusals {
  char job_id[4][16];
  char why[4][160];
  int n;
} refusals;

static void note_refusal(const apsched_event *ev, void *ud) {
  refusals *rf = ud;
  if (rf->n == 4) return;
  snprintf(rf->job_id[rf->n], sizeof rf->job_id[0], "%s", ev->job_id);
  snprintf(rf->why[rf->n], sizeof rf->why[0], "%s", apsched_last_error());
  rf->n++;
}

static void test_shutdown_from_another_thread_while_loop_submits(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  add_pool(s, "pool", 0);
  refusals rf = {0};
  assert_int_equal(apsched_add_listener(s, note_refusal, APSCHED_EVENT_JOB_ERROR, &rf, NULL), APSCHED_OK);
  remote_shutdown rs = {.s = s};
  counter k = {0};
  /* All due in the same pass, submitted in this order: "first" runs inline
   * and has the scheduler shut down; the other two are handed over after. */
  apsched_job_options first = {.id = "first", .func = shutdown_elsewhere_job, .arg = &rs};
  apsched_job_options second = {.id = "second", .func = count_job, .arg = &k};
  apsched_job_options third = {.id = "third", .func = count_job, .arg = &k, .executor = "pool"};
  assert_int_equal(apsched_add_job(s, &first, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &second, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &third, NULL, 0), APSCHED_OK);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, shutdown_when_told, &rs), 0);
  process(s);
  pthread_join(th, NULL);
  assert_int_equal(rs.rc, APSCHED_OK);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_EXECUTED), 1);
  /* The runs handed over after the shutdown are refused, reported, and the
   * executors said why. */
  assert_int_equal(atomic_load(&k.runs), 0);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ERROR), 2);
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_string_equal(r.ev[e].job_id, "second");
  assert_string_equal(r.ev[e].error, "executor \"default\" refused the run: wrong scheduler state");
  assert_int_equal(rf.n, 2);
  assert_string_equal(rf.job_id[0], "second");
  assert_string_equal(rf.why[0], "inline executor 'default': shut down, not accepting runs");
  assert_string_equal(rf.job_id[1], "third");
  assert_string_equal(rf.why[1], "thread pool 'pool': shut down, not accepting runs");
  apsched_free(s);
  recorder_destroy(&r);
}

/* ---- a start while a waiting shutdown is still waiting
 *
 * apsched_shutdown(s, true) in one thread waits for the pool's runs; another
 * thread starts the scheduler again meanwhile. The pool refuses that start
 * (as the process pool does) instead of serving again, which would leave the
 * waiting shutdown waiting for workers that never exit. */

static void *shutdown_and_wait(void *arg) {
  remote_shutdown *rs = arg;
  rs->rc = apsched_shutdown(rs->s, true);
  return NULL;
}

static int note_tid_job(apsched_run_ctx *run) {
  atomic_store((atomic_int *)apsched_run_arg(run), (int)gettid());
  return 0;
}

/* Waits (20 s) until thread tid of this process has exited. */
static bool await_thread_exit(int tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d", tid);
  for (int i = 0; i < 20000; i++) {
    if (access(path, F_OK) != 0) return true;
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return false;
}

static void test_start_refused_while_shutdown_waits(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  apsched_executor *pool = add_pool(s, "pool", 2);
  concurrency c = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  atomic_int tid = 0;
  apsched_job_options gated = {.id = "gated", .func = tracked_job, .arg = &c, .executor = "pool"};
  apsched_job_options quick = {.id = "quick", .func = note_tid_job, .arg = &tid, .executor = "pool"};
  assert_int_equal(apsched_add_job(s, &gated, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &quick, NULL, 0), APSCHED_OK);
  process(s);
  wait_started(&c, 1);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1)); /* "quick"; its worker idles */
  remote_shutdown rs = {.s = s};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, shutdown_and_wait, &rs), 0);
  /* The idle worker exits only once the pool is stopping: the shutdown is
   * then waiting for "gated". */
  assert_true(await_thread_exit(atomic_load(&tid)));
  /* The scheduler refuses a start during its shutdown; the pool refuses too,
   * for a caller that starts it directly. */
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_ESTATE);
  assert_non_null(strstr(apsched_last_error(), "shutdown is in progress"));
  assert_int_equal(pool->vtable->start(pool, s, "pool"), APSCHED_ESTATE);
  assert_string_equal(apsched_last_error(),
                      "thread pool 'pool': a shutdown is still waiting for its runs to finish");
  open_all(&c);
  pthread_join(th, NULL);
  assert_int_equal(rs.rc, APSCHED_OK);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_EXECUTED), 2);
  /* Once it has returned, the pool starts and serves again. */
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  quick.id = "again";
  assert_int_equal(apsched_add_job(s, &quick, NULL, 0), APSCHED_OK);
  process(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 3));
  apsched_free(s);
  recorder_destroy(&r);
}

/* ---- failing executor calls say why in apsched_last_error() */

static void test_create_errors_set_last_error(void **state) {
  (void)state;
  apsched_executor *ex = NULL;
  assert_int_equal(apsched_thread_pool_create(NULL, NULL), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(), "thread pool: out is NULL");
  apsched_thread_pool_options po = {.max_workers = -1};
  assert_int_equal(apsched_thread_pool_create(&po, &ex), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(),
                      "max_workers: -1 is negative (allowed: 1 or more, or 0 for 10)");
  assert_null(ex);
  assert_int_equal(apsched_inline_executor_create(NULL), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(), "inline executor: out is NULL");
  /* Also without an errbuf: the reason is not lost. */
  apsched_process_pool_options pp = {.max_tasks_per_child = -3};
  assert_int_equal(apsched_process_pool_create(&pp, &ex, NULL, 0), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(), "max_tasks_per_child: -3 is negative (allowed: 1 or "
                                            "more, or 0 for no limit)");
  assert_null(ex);
}

/* ---- max_runtime in a thread pool: reported, and the job sees the flag */

static int cooperative_job(apsched_run_ctx *run) {
  atomic_int *saw = apsched_run_arg(run);
  /* Spins until cancelled (bounded by a generous real-time limit). */
  int64_t give_up = apsched_now() + 20 * APSCHED_SEC;
  while (!apsched_run_cancelled(run) && apsched_now() < give_up) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  atomic_store(saw, apsched_run_cancelled(run) ? 1 : -1);
  return 0;
}

static int quick_job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

static void test_thread_pool_max_runtime(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  log_recorder logs = {.lock = PTHREAD_MUTEX_INITIALIZER};
  apsched_config cfg = {.timezone = "UTC", .log = record_log, .log_user_data = &logs};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_JOB_ERROR | APSCHED_EVENT_JOB_EXECUTED, &r, NULL), APSCHED_OK);
  atomic_int saw = 0;
  apsched_job_options slow = {.id = "slow", .name = "slow", .func = cooperative_job, .arg = &saw,
                              .max_runtime = 100 * APSCHED_MSEC};
  apsched_job_options fast = {.id = "fast", .func = quick_job, .max_runtime = 10 * APSCHED_SEC};
  assert_int_equal(apsched_add_job(s, &slow, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_add_job(s, &fast, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 1));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(atomic_load(&saw), 1); /* the job observed its cancellation */
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_string_equal(r.ev[e].job_id, "slow");
  assert_string_equal(r.ev[e].error, "timed out after 0:00:00.100000");
  assert_string_equal(r.ev[recorder_find(&r, APSCHED_EVENT_JOB_EXECUTED, 0)].job_id, "fast");
  assert_true(log_contains(&logs, "Job \"slow\" is running longer than its max_runtime (0:00:00.100000): cancelled"));
  apsched_job *j;
  assert_int_equal(apsched_add_job(s, &(apsched_job_options){.id = "bad", .func = quick_job, .max_runtime = -1}, NULL, 0), APSCHED_EINVAL);
  assert_int_equal(apsched_get_job(s, "bad", NULL, &j), APSCHED_ENOENT);
  apsched_free(s);
  recorder_destroy(&r);
}

/* ---- max_runtime when the run's start is recorded after the watchdog looked
 *
 * A worker hands its run to the watchdog before the run records its start
 * (apsched_run_begin reads the wall clock first). A wall clock that is slow
 * on the pool's worker threads holds that window open: the watchdog scans,
 * finds no deadline yet, and must still come back for it. The window cannot
 * be observed from outside the pool, hence a fixed hold rather than a
 * condition. */

typedef struct slow_start_clock {
  fake_clock fc; /* first: fake_mono and fake_wall take the same pointer */
  apsched_executor *pool;
} slow_start_clock;

static apsched_time_t slow_start_wall(void *ud) {
  slow_start_clock *c = ud;
  if (c->pool->vtable->owns_thread(c->pool)) {
    struct timespec hold = {0, 50 * 1000 * 1000};
    nanosleep(&hold, NULL);
  }
  return fake_wall(&c->fc);
}

typedef struct cancel_watch {
  atomic_int saw[4]; /* per scheduled time: 1 cancelled, -1 gave up */
  apsched_time_t first;
} cancel_watch;

/* Waits for its cancellation, but gives up after 3 s so that a watchdog
 * that never comes fails the test instead of hanging it. */
static int await_cancel_job(apsched_run_ctx *run) {
  cancel_watch *w = apsched_run_arg(run);
  size_t k = (size_t)((apsched_run_scheduled_time(run) - w->first) / APSCHED_SEC);
  int64_t give_up = apsched_now() + 3 * APSCHED_SEC;
  while (!apsched_run_cancelled(run) && apsched_now() < give_up) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (k < 4) atomic_store(&w->saw[k], apsched_run_cancelled(run) ? 1 : -1);
  return 0;
}

static apsched_scheduler *slow_start_scheduler(slow_start_clock *c, recorder *r) {
  apsched_thread_pool_options po = {.max_workers = 1};
  assert_int_equal(apsched_thread_pool_create(&po, &c->pool), APSCHED_OK);
  fake_clock_init(&c->fc, T0);
  c->fc.clock.wall = slow_start_wall;
  apsched_scheduler *s = hosted_scheduler(&c->fc, r, NULL);
  assert_int_equal(apsched_add_executor(s, c->pool, "pool"), APSCHED_OK);
  return s;
}

static void test_max_runtime_enforced_when_start_recorded_late(void **state) {
  (void)state;
  slow_start_clock c;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = slow_start_scheduler(&c, &r);
  cancel_watch w = {.first = T0};
  apsched_job_options o = {.id = "late", .func = await_cancel_job, .arg = &w, .executor = "pool",
                           .max_runtime = 100 * APSCHED_MSEC};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  process(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR | APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_int_equal(atomic_load(&w.saw[0]), 1);
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_true(e >= 0);
  assert_string_equal(r.ev[e].job_id, "late");
  assert_string_equal(r.ev[e].error, "timed out after 0:00:00.100000");
  apsched_free(s);
  recorder_destroy(&r);
}

/* A run covering several scheduled times: each time has its own start, and
 * the previous time's cancellation must not hide the next one's deadline. */
static void test_max_runtime_enforced_for_each_time_of_a_run(void **state) {
  (void)state;
  slow_start_clock c;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = slow_start_scheduler(&c, &r);
  cancel_watch w = {.first = T0 + APSCHED_SEC};
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = {.id = "batch", .func = await_cancel_job, .arg = &w, .trigger = t,
                           .executor = "pool", .coalesce = APSCHED_NO,
                           .misfire_grace_time = APSCHED_GRACE_UNLIMITED,
                           .max_runtime = 100 * APSCHED_MSEC};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  process(s);
  fake_advance(&c.fc, 3 * APSCHED_SEC); /* three times due: one run */
  process(s);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_SUBMITTED), 1);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR | APSCHED_EVENT_JOB_EXECUTED, 3));
  for (size_t k = 0; k < 3; k++) {
    assert_int_equal(atomic_load(&w.saw[k]), 1);
    int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, k);
    assert_true(e >= 0);
    assert_int_equal(r.ev[e].run_time, T0 + (apsched_time_t)(k + 1) * APSCHED_SEC);
    assert_string_equal(r.ev[e].error, "timed out after 0:00:00.100000");
  }
  apsched_free(s);
  apsched_trigger_free(t);
  recorder_destroy(&r);
}

/* ---- a custom executor that only takes jobs with a byte argument */

typedef struct bytes_only {
  apsched_executor base;
} bytes_only;

static int bo_start(apsched_executor *ex, apsched_scheduler *s, const char *alias) {
  (void)ex, (void)s, (void)alias;
  return APSCHED_OK;
}
static int bo_submit(apsched_executor *ex, apsched_run_ctx *run) {
  (void)ex;
  apsched_run_execute(run);
  return APSCHED_OK;
}
static void bo_shutdown(apsched_executor *ex, bool wait) { (void)ex, (void)wait; }
static void bo_destroy(apsched_executor *ex) { free(ex); }
static int bo_check(apsched_executor *ex, const apsched_job_record *rec, char *why, size_t len) {
  (void)ex;
  size_t n;
  if (apsched_job_args_bytes(rec->args, &n)) return APSCHED_OK;
  snprintf(why, len, "job '%s' has no byte argument", rec->id);
  return APSCHED_EINVAL;
}
static const apsched_executor_vtable bytes_only_vtable = {
    .version = APSCHED_EXECUTOR_VTABLE_VERSION, .kind = "bytes_only", .start = bo_start,
    .submit = bo_submit, .shutdown = bo_shutdown, .destroy = bo_destroy, .check_job = bo_check};

static void test_executor_check_job(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  bytes_only *bo = calloc(1, sizeof *bo);
  bo->base.vtable = &bytes_only_vtable;
  assert_int_equal(apsched_add_executor(s, &bo->base, "bytes"), APSCHED_OK);
  int x = 0;
  apsched_job_options ptr_only = {.id = "p", .func = quick_job, .arg = &x, .executor = "bytes"};
  assert_int_equal(apsched_add_job(s, &ptr_only, NULL, 0), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(), "executor 'bytes': job 'p' has no byte argument");
  apsched_job_options with_bytes = {.id = "b", .func = quick_job, .arg_bytes = "x", .arg_len = 1,
                                    .executor = "bytes", .paused = true};
  assert_int_equal(apsched_add_job(s, &with_bytes, NULL, 0), APSCHED_OK);
  /* Modifying it into something the executor refuses changes nothing. */
  apsched_job_changes drop = {.set_arg_bytes = true};
  assert_int_equal(apsched_modify_job(s, "b", NULL, &drop), APSCHED_EINVAL);
  apsched_job_options plain = {.id = "q", .func = quick_job, .paused = true};
  assert_int_equal(apsched_add_job(s, &plain, NULL, 0), APSCHED_OK);
  apsched_job_changes move = {.executor = "bytes"};
  assert_int_equal(apsched_modify_job(s, "q", NULL, &move), APSCHED_EINVAL);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "q", NULL, &j), APSCHED_OK);
  assert_string_equal(j->executor, "default");
  apsched_job_free(j);
  apsched_free(s);
}

/* ---- the configured allocator serves the scheduler's own allocations */

typedef struct counting_alloc {
  atomic_long live, total;
} counting_alloc;

static void *ca_malloc(size_t n, void *ud) {
  counting_alloc *a = ud;
  atomic_fetch_add(&a->live, 1);
  atomic_fetch_add(&a->total, 1);
  return malloc(n);
}
static void *ca_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return realloc(p, n);
}
static void ca_free(void *p, void *ud) {
  counting_alloc *a = ud;
  if (p) atomic_fetch_sub(&a->live, 1);
  free(p);
}

static void test_allocator_used_and_balanced(void **state) {
  (void)state;
  counting_alloc a = {0};
  apsched_allocator alloc = {ca_malloc, ca_realloc, ca_free, &a};
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.allocator = &alloc};
  apsched_scheduler *s = hosted_scheduler(&fc, &r, &cfg);
  counter k = {0};
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = {.id = "a", .func = count_job, .arg = &k, .trigger = t};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  long before_runs = atomic_load(&a.total);
  for (int i = 0; i < 10; i++) {
    fake_advance(&fc, APSCHED_SEC);
    process(s);
  }
  assert_int_equal(atomic_load(&k.runs), 10);
  /* Runs and events went through it (run contexts are recycled, so not
   * one allocation per run); apsched_free gives everything back below. */
  assert_true(atomic_load(&a.total) > before_runs);
  apsched_free(s);
  assert_int_equal(atomic_load(&a.live), 0);
  apsched_trigger_free(t);
  recorder_destroy(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_respects_max_workers),
      cmocka_unit_test(test_pool_wakes_idle_workers_for_a_burst),
      cmocka_unit_test(test_pool_worker_leaves_a_quiet_ending_to_the_pass),
      cmocka_unit_test(test_pool_ending_left_to_the_pass_hands_its_slot_over),
      cmocka_unit_test(test_shutdown_nowait_reports_queued_runs),
      cmocka_unit_test(test_pool_restarts),
      cmocka_unit_test(test_inline_runs_in_scheduler_thread),
      cmocka_unit_test(test_shutdown_from_another_thread_while_loop_submits),
      cmocka_unit_test(test_create_errors_set_last_error),
      cmocka_unit_test(test_start_refused_while_shutdown_waits),
      cmocka_unit_test(test_allocator_used_and_balanced),
      cmocka_unit_test(test_thread_pool_max_runtime),
      cmocka_unit_test(test_executor_check_job),
      cmocka_unit_test(test_max_runtime_enforced_when_start_recorded_late),
      cmocka_unit_test(test_max_runtime_enforced_for_each_time_of_a_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
