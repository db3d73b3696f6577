/* The conformance kit's tests of runs that wait in a store several
 * schedulers share (contract version 5; included by store_conformance.h):
 * two schedulers, each with its own store on the same data (the kit's
 * locate / open_at), on the real clock.
 *  - a run that waits for the other scheduler's run starts once that run
 *    ends, at once (woken, not found by a heartbeat), and outlives the
 *    scheduler that made it wait;
 *  - cancel_other asks the other scheduler's run to stop: it hears it at
 *    once (well under a heartbeat), not when its run ends;
 *  - removing the job drops its waiting runs.
 * Stores that are not shared, or refuse these policies, skip them (the
 * single-scheduler behaviour is kit_policies.h's). */
#ifndef APSCHED_TEST_KIT_SHARED_WAITS_H
#define APSCHED_TEST_KIT_SHARED_WAITS_H

/* One scheduler on a store of the kit's data, with a thread pool. */
typedef struct kit_node {
  apsched_scheduler *s;
  recorder rec;
  log_recorder log;
} kit_node;

static void kit_node_start(kit_node *n, apsched_jobstore *st) {
  recorder_init(&n->rec);
  memset(&n->log, 0, sizeof n->log);
  pthread_mutex_init(&n->log.lock, NULL);
  apsched_config cfg = {.timezone = "UTC", .log = record_log, .log_user_data = &n->log,
                        .log_level = APSCHED_LOG_INFO};
  assert_int_equal(apsched_create(&cfg, &n->s), APSCHED_OK);
  apsched_executor *ex;
  apsched_thread_pool_options po = {.max_workers = 4};
  assert_int_equal(apsched_thread_pool_create(&po, &ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(n->s, ex, "default"), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(n->s, st, "kit"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(n->s, record_event, APSCHED_EVENT_EVERYTHING, &n->rec, NULL),
                   APSCHED_OK);
  assert_int_equal(apsched_start(n->s, false), APSCHED_OK);
}

static void kit_node_stop(kit_node *n) {
  if (!n->s) return;
  assert_int_equal(apsched_shutdown(n->s, true), APSCHED_OK);
  apsched_free(n->s);
  n->s = NULL;
  recorder_destroy(&n->rec);
  pthread_mutex_destroy(&n->log.lock);
}

/* Whether the kit's store keeps waiting runs for several schedulers. */
static bool kit_shares_waits(void **state) {
  const store_kit *kit = *state;
  if (!kit->locate || !kit->open_at) return false;
  apsched_jobstore *st = kit_store(state);
  bool shares = st->vtable->run_starting && st->vtable->runs_wait && st->vtable->claim_waiting &&
                st->vtable->runs_add;
  apsched_jobstore_free(st);
  return shares;
}

/* Schedulers a and b on one store's data; job id (paused: only runs asked
 * for run; one instance across both) added through a with overlap, and a
 * run of it running in a (run now). */
static void kit_one_running(void **state, const char *id, apsched_overlap overlap, kit_node *a,
                            kit_node *b) {
  const store_kit *kit = *state;
  pthread_mutex_lock(&gate.m);
  gate.started = gate.finished = gate.released = gate.cancelled = 0;
  gate.ignore_cancel = false;
  pthread_mutex_unlock(&gate.m);
  assert_int_equal(apsched_register_func(KIT_GATE_NAME, kit_gate_job), APSCHED_OK);
  apsched_jobstore *first = kit_store(state);
  char *where = kit->locate(kit->ud, first);
  apsched_jobstore *second = kit->open_at(kit->ud, where);
  free(where);
  kit_node_start(a, first);
  kit_node_start(b, second);
  apsched_trigger *t;
  apsched_interval_options io = {.hours = 1};
  assert_int_equal(apsched_trigger_interval(&io, &t, NULL, 0), APSCHED_OK);
  apsched_job_options o = {.id = id, .func_name = KIT_GATE_NAME, .trigger = t, .jobstore = "kit",
                           .paused = true, .overlap = overlap, .max_instances = 1};
  assert_int_equal(apsched_add_job(a->s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  assert_int_equal(apsched_run_job_now(a->s, id, NULL), APSCHED_OK);
  assert_true(kit_gate_wait(&gate.started, 1));
}

static struct timespec kit_mono(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

static int64_t kit_ms_since(struct timespec t0) {
  struct timespec t1 = kit_mono();
  return (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
}

/* No further start within a moment (a run that must not start has nothing
 * to wait for: this is the one place the kit sleeps). */
static void kit_settle_briefly(void) {
  struct timespec settle = {0, 200 * 1000 * 1000};
  nanosleep(&settle, NULL);
}

/* B's run now waits for A's run (buffer_one); B shuts down; A's run ends
 * and A starts the run B left waiting, once. */
static void kit_shared_wait_outlives_its_scheduler(void **state) {
  if (!kit_shares_waits(state)) skip();
  kit_node a, b;
  kit_one_running(state, "w", APSCHED_OVERLAP_BUFFER_ONE, &a, &b);
  assert_int_equal(apsched_run_job_now(b.s, "w", NULL), APSCHED_OK);
  assert_true(recorder_wait(&b.rec, APSCHED_EVENT_JOB_BUFFERED, 1));
  assert_true(log_contains(&b.log, "waits for a running one to end (overlap policy buffer_one, 1 waiting)"));
  kit_node_stop(&b);
  assert_int_equal(kit_gate_get(&gate.started), 1);
  kit_gate_release(1);
  assert_true(kit_gate_wait(&gate.started, 2));
  assert_true(log_contains(&a.log, "(its run waited for a running one)"));
  kit_gate_release(1);
  assert_true(recorder_wait(&a.rec, APSCHED_EVENT_JOB_EXECUTED, 2));
  kit_settle_briefly();
  assert_int_equal(kit_gate_get(&gate.started), 2);
  kit_node_stop(&a);
}

/* A slot freed in one scheduler wakes the others at once: three times in
 * a row, B's run now waits for the running run (in A, then in whichever
 * took the last one) and starts within 500 ms of its end. Without the wake
 * (NOTIFY / PUBLISH) only a heartbeat (every 1.7 s) would find it: three
 * quick starts in a row would be luck. */
static void kit_shared_wait_handoff_is_prompt(void **state) {
  if (!kit_shares_waits(state)) skip();
  kit_node a, b;
  kit_one_running(state, "h", APSCHED_OVERLAP_BUFFER_ONE, &a, &b);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(apsched_run_job_now(b.s, "h", NULL), APSCHED_OK);
    assert_true(recorder_wait(&b.rec, APSCHED_EVENT_JOB_BUFFERED, (size_t)i + 1));
    struct timespec t0 = kit_mono();
    kit_gate_release(1);
    assert_true(kit_gate_wait(&gate.started, i + 2));
    int64_t took_ms = kit_ms_since(t0);
    if (took_ms > 500) fail_msg("handoff %d: the waiting run started %lld ms after the slot freed", i, (long long)took_ms);
  }
  kit_gate_release(1);
  assert_true(kit_gate_wait(&gate.finished, 4));
  kit_node_stop(&b);
  kit_node_stop(&a);
}

/* cancel_other: B's run now asks A's running run to stop; A hears it at
 * once, the run ends cancelled in A, and the waiting run starts. */
static void kit_shared_cancel_reaches_the_other(void **state) {
  if (!kit_shares_waits(state)) skip();
  kit_node a, b;
  kit_one_running(state, "c", APSCHED_OVERLAP_CANCEL_OTHER, &a, &b);
  struct timespec t0 = kit_mono();
  assert_int_equal(apsched_run_job_now(b.s, "c", NULL), APSCHED_OK);
  assert_true(recorder_wait(&a.rec, APSCHED_EVENT_JOB_ERROR, 1));
  int64_t took_ms = kit_ms_since(t0);
  int e = recorder_find(&a.rec, APSCHED_EVENT_JOB_ERROR, 0);
  assert_non_null(strstr(a.rec.ev[e].error, "cancelled: a newer run of the job is due"));
  assert_true(log_contains(&b.log, "asking the scheduler that runs it to stop its run"));
  assert_true(log_contains(&a.log, "asking to stop its run scheduled at"));
  assert_int_equal(kit_gate_get(&gate.cancelled), 1);
  /* Notified, not found at a heartbeat (lease / 3 = 1.7 s by default). */
  if (took_ms > 1000) fail_msg("the other scheduler stopped its run %lld ms after the request", (long long)took_ms);
  /* The waiting run starts (in either scheduler), once. */
  assert_true(kit_gate_wait(&gate.started, 2));
  kit_gate_release(1);
  kit_settle_briefly();
  assert_int_equal(kit_gate_get(&gate.started), 2);
  kit_node_stop(&b);
  kit_node_stop(&a);
}

/* Removing a job drops its waiting runs (its running one ends): a job
 * added again under its id does not run them. */
static void kit_shared_remove_drops_waiting(void **state) {
  if (!kit_shares_waits(state)) skip();
  kit_node a, b;
  kit_one_running(state, "r", APSCHED_OVERLAP_BUFFER_ALL, &a, &b);
  assert_int_equal(apsched_run_job_now(b.s, "r", NULL), APSCHED_OK);
  assert_int_equal(apsched_run_job_now(b.s, "r", NULL), APSCHED_OK);
  assert_true(recorder_wait(&b.rec, APSCHED_EVENT_JOB_BUFFERED, 2));
  assert_true(log_contains(&b.log, "(overlap policy buffer_all, 2 waiting)"));
  assert_int_equal(apsched_remove_job(b.s, "r", NULL), APSCHED_OK);
  /* Added again under its id: the old job's waiting runs are not its. */
  apsched_trigger *t;
  apsched_interval_options io = {.hours = 1};
  assert_int_equal(apsched_trigger_interval(&io, &t, NULL, 0), APSCHED_OK);
  apsched_job_options o = {.id = "r", .func_name = KIT_GATE_NAME, .trigger = t, .jobstore = "kit",
                           .paused = true, .overlap = APSCHED_OVERLAP_BUFFER_ALL};
  assert_int_equal(apsched_add_job(b.s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  kit_gate_release(1);
  assert_true(recorder_wait(&a.rec, APSCHED_EVENT_JOB_EXECUTED, 1));
  kit_settle_briefly();
  assert_int_equal(kit_gate_get(&gate.started), 1);
  kit_node_stop(&b);
  kit_node_stop(&a);
}

#define KIT_SHARED_WAIT_TESTS(kit)                                                    \
  cmocka_unit_test_prestate(kit_shared_wait_outlives_its_scheduler, (void *)(kit)),    \
      cmocka_unit_test_prestate(kit_shared_wait_handoff_is_prompt, (void *)(kit)),     \
      cmocka_unit_test_prestate(kit_shared_cancel_reaches_the_other, (void *)(kit)),   \
      cmocka_unit_test_prestate(kit_shared_remove_drops_waiting, (void *)(kit))

#endif
