/* The conformance kit's schedule-policy tests (included by
 * store_conformance.h): every overlap policy, through a scheduler on a fake
 * clock with the kit's store, with a job that is finished, running, or has
 * a run waiting when its next run is due. A store several schedulers share
 * keeps such runs waiting in the store (contract version 5: runs_wait,
 * claim_waiting, runs_add); one without those calls refuses the policies
 * whose runs would wait for another scheduler's, and runs on demand. */
#ifndef APSCHED_TEST_KIT_POLICIES_H
#define APSCHED_TEST_KIT_POLICIES_H

/* A job that holds its run until the test lets one go (or, unless told to
 * ignore it, until the run is cancelled), recording each start. */
typedef struct kit_gate {
  pthread_mutex_t m;
  pthread_cond_t c;
  int started, finished, released, cancelled;
  bool ignore_cancel;
  apsched_time_t times[32]; /* scheduled time of each start, in start order */
} kit_gate;

static kit_gate gate = {.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};

#define KIT_GATE_NAME "store_kit.gate"

static int kit_gate_job(apsched_run_ctx *run) {
  pthread_mutex_lock(&gate.m);
  if (gate.started < 32) gate.times[gate.started] = apsched_run_scheduled_time(run);
  gate.started++;
  pthread_cond_broadcast(&gate.c);
  struct timespec deadline = realtime_in(20 * APSCHED_SEC);
  bool cancelled = false;
  while (gate.released == 0 && !(cancelled = apsched_run_cancelled(run) && !gate.ignore_cancel)) {
    /* The cancellation flag is not a condition variable: look every 5 ms. */
    struct timespec ts = realtime_in(5 * APSCHED_MSEC);
    pthread_cond_timedwait(&gate.c, &gate.m, &ts);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec > deadline.tv_sec) break;
  }
  if (cancelled) gate.cancelled++;
  else if (gate.released > 0) gate.released--;
  gate.finished++;
  pthread_cond_broadcast(&gate.c);
  pthread_mutex_unlock(&gate.m);
  return 0;
}

/* Waits (20 s at most) until *field >= n. */
static bool kit_gate_wait(int *field, int n) {
  struct timespec deadline = realtime_in(20 * APSCHED_SEC);
  pthread_mutex_lock(&gate.m);
  while (*field < n && pthread_cond_timedwait(&gate.c, &gate.m, &deadline) == 0) {
  }
  bool ok = *field >= n;
  pthread_mutex_unlock(&gate.m);
  return ok;
}

static void kit_gate_release(int n) {
  pthread_mutex_lock(&gate.m);
  gate.released += n;
  pthread_cond_broadcast(&gate.c);
  pthread_mutex_unlock(&gate.m);
}

static int kit_gate_get(int *field) {
  pthread_mutex_lock(&gate.m);
  int v = *field;
  pthread_mutex_unlock(&gate.m);
  return v;
}

typedef struct kit_policy {
  fake_clock fc;
  recorder rec;
  log_recorder log;
  apsched_scheduler *s;
  bool shared;  /* the store is shared by schedulers (run_starting) */
  bool refuses; /* ... and has no version 5 calls: it refuses waiting runs */
} kit_policy;

/* A running hosted scheduler on a fake clock with a thread pool and the
 * kit's store as "kit". */
static void kit_policy_open(void **state, kit_policy *k) {
  pthread_mutex_lock(&gate.m);
  gate.started = gate.finished = gate.released = gate.cancelled = 0;
  gate.ignore_cancel = false;
  pthread_mutex_unlock(&gate.m);
  assert_int_equal(apsched_register_func(KIT_GATE_NAME, kit_gate_job), APSCHED_OK);
  fake_clock_init(&k->fc, T0);
  recorder_init(&k->rec);
  memset(&k->log, 0, sizeof k->log);
  pthread_mutex_init(&k->log.lock, NULL);
  apsched_config cfg = {.clock = &k->fc.clock, .timezone = "UTC", .log = record_log,
                        .log_user_data = &k->log, .log_level = APSCHED_LOG_INFO};
  assert_int_equal(apsched_create(&cfg, &k->s), APSCHED_OK);
  apsched_executor *ex;
  apsched_thread_pool_options po = {.max_workers = 4};
  assert_int_equal(apsched_thread_pool_create(&po, &ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(k->s, ex, "default"), APSCHED_OK);
  apsched_jobstore *st = kit_store(state);
  k->shared = st->vtable->version >= 4 && st->vtable->run_starting;
  k->refuses = k->shared && !(st->vtable->version >= 5 && st->vtable->runs_wait);
  assert_int_equal(apsched_add_jobstore(k->s, st, "kit"), APSCHED_OK);
  assert_int_equal(apsched_add_listener(k->s, record_event, APSCHED_EVENT_EVERYTHING, &k->rec, NULL),
                   APSCHED_OK);
  assert_int_equal(apsched_start_hosted(k->s, false), APSCHED_OK);
}

static void kit_policy_close(kit_policy *k) {
  kit_gate_release(100);
  assert_int_equal(apsched_shutdown(k->s, true), APSCHED_OK);
  apsched_free(k->s);
  recorder_destroy(&k->rec);
  pthread_mutex_destroy(&k->log.lock);
}

/* Job "p": every 10 s from T0 + 10 s, one instance at most. */
static int kit_policy_add(kit_policy *k, apsched_overlap overlap) {
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options o = {.id = "p", .func_name = KIT_GATE_NAME, .trigger = t, .jobstore = "kit",
                           .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .overlap = overlap};
  int rc = apsched_add_job(k->s, &o, NULL, 0);
  apsched_trigger_free(t);
  return rc;
}

/* The next time of "p" comes (a blocking store's own thread takes it). */
static void kit_policy_due(kit_policy *k) {
  fake_advance(&k->fc, 10 * APSCHED_SEC);
  int64_t wait;
  assert_int_equal(apsched_process(k->s, &wait), APSCHED_OK);
  assert_int_equal(apsched_wakeup(k->s), APSCHED_OK);
}

#define AT(sec) (T0 + (sec) * APSCHED_SEC)

/* The phase every policy shares: a run that finished before the next is
 * due leaves nothing for the policy to decide. Ends with the run of +20 s
 * running. */
static void kit_policy_finished(kit_policy *k) {
  kit_policy_due(k);
  assert_true(kit_gate_wait(&gate.started, 1));
  kit_gate_release(1);
  /* Its slot is free once the outcome is announced. */
  assert_true(recorder_wait(&k->rec, APSCHED_EVENT_JOB_EXECUTED, 1));
  kit_policy_due(k);
  assert_true(kit_gate_wait(&gate.started, 2));
  assert_int_equal(gate.times[0], AT(10));
  assert_int_equal(gate.times[1], AT(20));
  assert_int_equal(recorder_count(&k->rec, APSCHED_EVENT_JOB_MAX_INSTANCES | APSCHED_EVENT_JOB_BUFFERED), 0);
}

/* An event with code and first run time t was recorded. */
static bool kit_event_at(kit_policy *k, int code, apsched_time_t t) {
  for (size_t i = 0;; i++) {
    int at = recorder_find(&k->rec, code, i);
    if (at < 0) return false;
    if (k->rec.ev[at].run_time == t) return true;
  }
}

/* Passes until the loop settled: runs that could start have. */
static void kit_policy_settle(kit_policy *k, int code, size_t n) {
  assert_true(recorder_wait(&k->rec, code, n));
  (void)k;
}

static void kit_overlap_skip(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  assert_int_equal(kit_policy_add(&k, APSCHED_OVERLAP_SKIP), APSCHED_OK);
  kit_policy_finished(&k);
  /* Running: the due run is dropped. */
  kit_policy_due(&k);
  kit_policy_settle(&k, APSCHED_EVENT_JOB_MAX_INSTANCES, 1);
  assert_true(kit_event_at(&k, APSCHED_EVENT_JOB_MAX_INSTANCES, AT(30)));
  assert_true(log_contains(&k.log, "maximum number of running instances reached (1)"));
  /* Dropped twice: nothing waits. */
  kit_policy_due(&k);
  kit_policy_settle(&k, APSCHED_EVENT_JOB_MAX_INSTANCES, 2);
  kit_gate_release(1);
  assert_true(kit_gate_wait(&gate.finished, 2));
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_EXECUTED, 2));
  assert_int_equal(kit_gate_get(&gate.started), 2);
  assert_int_equal(recorder_count(&k.rec, APSCHED_EVENT_JOB_BUFFERED), 0);
  kit_policy_close(&k);
}

/* A shared store without the version 5 calls refuses a policy whose run
 * would wait for another scheduler's, naming it, and keeps nothing. */
static bool kit_policy_refused_if_shared(kit_policy *k, apsched_overlap overlap, const char *name) {
  if (!k->refuses) return false;
  assert_int_equal(kit_policy_add(k, overlap), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), name));
  assert_non_null(strstr(apsched_last_error(), "several schedulers share"));
  apsched_job *j;
  assert_int_equal(apsched_get_job(k->s, "p", NULL, &j), APSCHED_ENOENT);
  assert_int_equal(recorder_count(&k->rec, APSCHED_EVENT_JOB_ADDED), 0);
  return true;
}

static void kit_overlap_buffer_one(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  if (kit_policy_refused_if_shared(&k, APSCHED_OVERLAP_BUFFER_ONE, "buffer_one")) {
    kit_policy_close(&k);
    return;
  }
  assert_int_equal(kit_policy_add(&k, APSCHED_OVERLAP_BUFFER_ONE), APSCHED_OK);
  kit_policy_finished(&k);
  /* Running: the due run waits. */
  kit_policy_due(&k);
  kit_policy_settle(&k, APSCHED_EVENT_JOB_BUFFERED, 1);
  assert_true(kit_event_at(&k, APSCHED_EVENT_JOB_BUFFERED, AT(30)));
  assert_true(log_contains(&k.log, "waits for a running one to end (overlap policy buffer_one, 1 waiting)"));
  /* Queued: a newer one takes the waiting one's place. */
  kit_policy_due(&k);
  kit_policy_settle(&k, APSCHED_EVENT_JOB_BUFFERED, 2);
  assert_true(kit_event_at(&k, APSCHED_EVENT_JOB_MAX_INSTANCES, AT(30)));
  assert_true(log_contains(&k.log, "a newer due run waits in its place (overlap policy buffer_one)"));
  assert_int_equal(kit_gate_get(&gate.started), 2);
  /* The slot frees: the latest waiting run starts, once. */
  kit_gate_release(1);
  assert_true(kit_gate_wait(&gate.started, 3));
  assert_int_equal(gate.times[2], AT(40));
  assert_true(log_contains(&k.log, "(its run waited for a running one)"));
  kit_gate_release(1);
  assert_true(kit_gate_wait(&gate.finished, 3));
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_EXECUTED, 3));
  assert_int_equal(kit_gate_get(&gate.started), 3);
  kit_policy_close(&k);
}

static void kit_overlap_buffer_all(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  if (kit_policy_refused_if_shared(&k, APSCHED_OVERLAP_BUFFER_ALL, "buffer_all")) {
    kit_policy_close(&k);
    return;
  }
  assert_int_equal(kit_policy_add(&k, APSCHED_OVERLAP_BUFFER_ALL), APSCHED_OK);
  kit_policy_finished(&k);
  kit_policy_due(&k);
  kit_policy_settle(&k, APSCHED_EVENT_JOB_BUFFERED, 1);
  /* Queued: both wait, in order. */
  kit_policy_due(&k);
  kit_policy_settle(&k, APSCHED_EVENT_JOB_BUFFERED, 2);
  assert_true(log_contains(&k.log, "(overlap policy buffer_all, 2 waiting)"));
  assert_int_equal(recorder_count(&k.rec, APSCHED_EVENT_JOB_MAX_INSTANCES), 0);
  kit_gate_release(1);
  assert_true(kit_gate_wait(&gate.started, 3));
  assert_int_equal(gate.times[2], AT(30));
  kit_gate_release(1);
  assert_true(kit_gate_wait(&gate.started, 4));
  assert_int_equal(gate.times[3], AT(40));
  kit_gate_release(1);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_EXECUTED, 4));
  assert_int_equal(kit_gate_get(&gate.started), 4);
  kit_policy_close(&k);
}

/* The bound of BUFFER_ALL: beyond APSCHED_BUFFER_ALL_LIMIT waiting runs,
 * a due run is dropped with the reason. */
static void kit_overlap_buffer_all_bound(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  if (k.refuses) {
    kit_policy_close(&k);
    return;
  }
  assert_int_equal(kit_policy_add(&k, APSCHED_OVERLAP_BUFFER_ALL), APSCHED_OK);
  kit_policy_due(&k);
  assert_true(kit_gate_wait(&gate.started, 1));
  /* One pass per due time (a pass coalesces what is due). */
  for (int i = 0; i < APSCHED_BUFFER_ALL_LIMIT; i++) {
    kit_policy_due(&k);
    kit_policy_settle(&k, APSCHED_EVENT_JOB_BUFFERED, (size_t)i + 1);
  }
  kit_policy_due(&k);
  kit_policy_settle(&k, APSCHED_EVENT_JOB_MAX_INSTANCES, 1);
  assert_int_equal(recorder_count(&k.rec, APSCHED_EVENT_JOB_BUFFERED), APSCHED_BUFFER_ALL_LIMIT);
  assert_true(kit_event_at(&k, APSCHED_EVENT_JOB_MAX_INSTANCES, AT(20 + 10 * APSCHED_BUFFER_ALL_LIMIT)));
  assert_true(log_contains(&k.log, "100 runs wait already (overlap policy buffer_all)"));
  kit_policy_close(&k);
}

static void kit_overlap_cancel_other(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  if (kit_policy_refused_if_shared(&k, APSCHED_OVERLAP_CANCEL_OTHER, "cancel_other")) {
    kit_policy_close(&k);
    return;
  }
  assert_int_equal(kit_policy_add(&k, APSCHED_OVERLAP_CANCEL_OTHER), APSCHED_OK);
  kit_policy_finished(&k);
  /* Running: the running run is asked to stop, and the due one starts once
   * it has. */
  kit_policy_due(&k);
  assert_true(kit_gate_wait(&gate.started, 3));
  assert_int_equal(gate.times[2], AT(30));
  assert_int_equal(kit_gate_get(&gate.cancelled), 1);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_ERROR, 1));
  int e = recorder_find(&k.rec, APSCHED_EVENT_JOB_ERROR, 0);
  assert_int_equal(k.rec.ev[e].run_time, AT(20));
  assert_non_null(strstr(k.rec.ev[e].error, "cancelled: a newer run of the job is due"));
  assert_true(log_contains(&k.log, "asking to stop its run scheduled at 2026-01-01T00:00:20Z"));
  /* Queued: the running one ignores the request; a newer due run takes the
   * waiting one's place. */
  pthread_mutex_lock(&gate.m);
  gate.ignore_cancel = true;
  pthread_mutex_unlock(&gate.m);
  kit_policy_due(&k); /* +40: asks +30 to stop, waits */
  kit_policy_settle(&k, APSCHED_EVENT_JOB_BUFFERED, 2);
  kit_policy_due(&k); /* +50: replaces +40 */
  kit_policy_settle(&k, APSCHED_EVENT_JOB_BUFFERED, 3);
  assert_true(kit_event_at(&k, APSCHED_EVENT_JOB_MAX_INSTANCES, AT(40)));
  assert_int_equal(kit_gate_get(&gate.started), 3);
  kit_gate_release(1);
  assert_true(kit_gate_wait(&gate.started, 4));
  assert_int_equal(gate.times[3], AT(50));
  /* The run that ignored the request still ends as cancelled. */
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_ERROR, 2));
  kit_policy_close(&k);
}

/* Only an executor that can end a run takes TERMINATE_OTHER: the kit's
 * thread pool cannot, and says so at add time. */
static void kit_overlap_terminate_refused(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  assert_int_equal(kit_policy_add(&k, APSCHED_OVERLAP_TERMINATE_OTHER), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "terminate_other needs an executor that can terminate"));
  assert_non_null(strstr(apsched_last_error(), "'default' (threadpool)"));
  apsched_job *j;
  assert_int_equal(apsched_get_job(k.s, "p", NULL, &j), APSCHED_ENOENT);
  kit_policy_close(&k);
}

static void kit_overlap_allow_all(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  assert_int_equal(kit_policy_add(&k, APSCHED_OVERLAP_ALLOW_ALL), APSCHED_OK);
  kit_policy_finished(&k);
  kit_policy_due(&k);
  assert_true(kit_gate_wait(&gate.started, 3));
  kit_policy_due(&k);
  assert_true(kit_gate_wait(&gate.started, 4));
  assert_int_equal(gate.times[3], AT(40));
  assert_int_equal(recorder_count(&k.rec, APSCHED_EVENT_JOB_MAX_INSTANCES | APSCHED_EVENT_JOB_BUFFERED), 0);
  kit_policy_close(&k);
}

/* Policies survive the store (its own text form), show in print_jobs, and
 * a bad value is refused naming it, changing nothing. */
static void kit_policies_kept(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  apsched_overlap o = k.refuses ? APSCHED_OVERLAP_ALLOW_ALL : APSCHED_OVERLAP_BUFFER_ONE;
  const char *text = k.refuses ? "overlap=allow_all" : "overlap=buffer_one";
  assert_int_equal(kit_policy_add(&k, o), APSCHED_OK);
  apsched_job_changes c = {.catchup_window = APSCHED_HOUR, .pause_after_failures = 3};
  assert_int_equal(apsched_modify_job(k.s, "p", "kit", &c), APSCHED_OK);
  apsched_job *j;
  assert_int_equal(apsched_get_job(k.s, "p", "kit", &j), APSCHED_OK);
  assert_int_equal(j->overlap, o);
  assert_int_equal(j->catchup_window, APSCHED_HOUR);
  assert_int_equal(j->pause_after_failures, 3);
  char want[128];
  snprintf(want, sizeof want, "%s, catchup_window=3600s, pause_after_failures=3", text);
  assert_string_equal(j->policies, want);
  apsched_job_free(j);
  char buf[1024] = "";
  FILE *f = fmemopen(buf, sizeof buf, "w");
  assert_int_equal(apsched_print_jobs(k.s, "kit", f), APSCHED_OK);
  fclose(f);
  assert_non_null(strstr(buf, want));
  /* Bad values: refused, naming them; the job is unchanged. */
  apsched_job_changes bad[] = {{.overlap = (apsched_overlap)7}, {.catchup_window = -5},
                               {.pause_after_failures = 70000}};
  const char *names[] = {"overlap: 7 is not an apsched_overlap", "catchup_window: -5 us",
                         "pause_after_failures: 70000 is outside"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(apsched_modify_job(k.s, "p", "kit", &bad[i]), APSCHED_EINVAL);
    assert_non_null(strstr(apsched_last_error(), names[i]));
  }
  assert_int_equal(apsched_get_job(k.s, "p", "kit", &j), APSCHED_OK);
  assert_string_equal(j->policies, want);
  apsched_job_free(j);
  /* Removing the window and the limit. */
  apsched_job_changes none = {.catchup_window = APSCHED_POLICY_NONE,
                              .pause_after_failures = APSCHED_POLICY_NONE};
  assert_int_equal(apsched_modify_job(k.s, "p", "kit", &none), APSCHED_OK);
  assert_int_equal(apsched_get_job(k.s, "p", "kit", &j), APSCHED_OK);
  assert_string_equal(j->policies, text);
  apsched_job_free(j);
  kit_policy_close(&k);
}

/* Run now: once, at once, the schedule kept, under the overlap policy
 * (finished, running, queued); refused by a shared store without the
 * version 5 calls. */
static void kit_run_now(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  apsched_overlap o = k.refuses ? APSCHED_OVERLAP_SKIP : APSCHED_OVERLAP_BUFFER_ONE;
  assert_int_equal(kit_policy_add(&k, o), APSCHED_OK);
  if (k.refuses) {
    assert_int_equal(apsched_run_job_now(k.s, "p", NULL), APSCHED_EINVAL);
    assert_non_null(strstr(apsched_last_error(), "several schedulers share"));
    kit_policy_close(&k);
    return;
  }
  assert_int_equal(apsched_run_job_now(k.s, "nope", NULL), APSCHED_ENOENT);
  assert_non_null(strstr(apsched_last_error(), "no job 'nope'"));
  assert_int_equal(apsched_run_job_now(k.s, "p", "kit"), APSCHED_OK);
  assert_true(kit_gate_wait(&gate.started, 1));
  assert_int_equal(gate.times[0], T0);
  assert_true(log_contains(&k.log, "now (its schedule is kept)"));
  apsched_job *j;
  assert_int_equal(apsched_get_job(k.s, "p", "kit", &j), APSCHED_OK);
  assert_int_equal(j->next_run_time, AT(10));
  apsched_job_free(j);
  /* Running: it waits; queued: a newer one takes its place. */
  fake_advance(&k.fc, APSCHED_SEC);
  assert_int_equal(apsched_run_job_now(k.s, "p", NULL), APSCHED_OK);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_BUFFERED, 1));
  fake_advance(&k.fc, APSCHED_SEC);
  assert_int_equal(apsched_run_job_now(k.s, "p", NULL), APSCHED_OK);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_MAX_INSTANCES, 1));
  assert_true(kit_event_at(&k, APSCHED_EVENT_JOB_MAX_INSTANCES, T0 + APSCHED_SEC));
  kit_gate_release(1);
  assert_true(kit_gate_wait(&gate.started, 2));
  assert_int_equal(gate.times[1], T0 + 2 * APSCHED_SEC);
  kit_gate_release(1);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_EXECUTED, 2));
  kit_policy_close(&k);
  /* A stopped scheduler runs nothing. */
  apsched_scheduler *s;
  assert_int_equal(apsched_create(NULL, &s), APSCHED_OK);
  assert_int_equal(apsched_run_job_now(s, "p", NULL), APSCHED_ESTATE);
  assert_non_null(strstr(apsched_last_error(), "run_job_now: the scheduler is not running"));
  apsched_free(s);
}

/* Backfill: the trigger's times in the range, oldest first, as one run
 * whatever their lateness; bounded; the overlap policy applies. */
static void kit_backfill(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options o = {.id = "p", .func_name = KIT_GATE_NAME, .trigger = t, .jobstore = "kit",
                           .paused = true};
  assert_int_equal(apsched_add_job(k.s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  fake_advance(&k.fc, APSCHED_DAY);
  if (k.refuses) {
    assert_int_equal(apsched_backfill_job(k.s, "p", NULL, AT(10), AT(40)), APSCHED_EINVAL);
    assert_non_null(strstr(apsched_last_error(), "several schedulers share"));
    kit_policy_close(&k);
    return;
  }
  /* Bad ranges change nothing. */
  assert_int_equal(apsched_backfill_job(k.s, "p", NULL, AT(40), AT(10)), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "must be a time not after to"));
  assert_int_equal(apsched_backfill_job(k.s, "p", NULL, AT(11), AT(19)), APSCHED_ENOENT);
  assert_non_null(strstr(apsched_last_error(), "no occurrence in 2026-01-01T00:00:11Z"));
  assert_int_equal(apsched_backfill_job(k.s, "p", NULL, T0, AT(10 * (APSCHED_BACKFILL_LIMIT + 1))),
                   APSCHED_ERANGE);
  assert_non_null(strstr(apsched_last_error(), "more than 1000 occurrences"));
  assert_int_equal(recorder_count(&k.rec, APSCHED_EVENT_JOB_SUBMITTED), 0);
  /* Four times, in order, in one run. */
  assert_int_equal(apsched_backfill_job(k.s, "p", "kit", AT(10), AT(40)), APSCHED_OK);
  assert_true(kit_gate_wait(&gate.started, 1));
  assert_true(log_contains(&k.log, "\": 4 run time(s)"));
  /* Running: a second backfill is skipped (SKIP). */
  assert_int_equal(apsched_backfill_job(k.s, "p", NULL, AT(50), AT(50)), APSCHED_OK);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_MAX_INSTANCES, 1));
  kit_gate_release(4);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_EXECUTED, 4));
  for (int i = 0; i < 4; i++) assert_int_equal(gate.times[i], AT(10 * (i + 1)));
  assert_int_equal(kit_gate_get(&gate.started), 4);
  apsched_job *j;
  assert_int_equal(apsched_get_job(k.s, "p", "kit", &j), APSCHED_OK);
  assert_true(j->paused);
  apsched_job_free(j);
  kit_policy_close(&k);
}

/* A job that fails while kit_flaky_fails is set. */
static atomic_bool kit_flaky_fails;
#define KIT_FLAKY_NAME "store_kit.flaky"

static int kit_flaky_job(apsched_run_ctx *run) {
  if (!atomic_load(&kit_flaky_fails)) return 0;
  apsched_run_set_error(run, "flaky failed at %lld", (long long)apsched_run_scheduled_time(run));
  return 1;
}

/* Polls (passes, 20 s at most) until job id's count of failures is n and
 * its paused state is paused. */
static bool kit_wait_failures(kit_policy *k, const char *id, int n, bool paused) {
  for (int i = 0; i < 4000; i++) {
    int64_t wait;
    assert_int_equal(apsched_process(k->s, &wait), APSCHED_OK);
    assert_int_equal(apsched_wakeup(k->s), APSCHED_OK);
    apsched_job *j;
    assert_int_equal(apsched_get_job(k->s, id, "kit", &j), APSCHED_OK);
    bool done = j->failures == n && j->paused == paused;
    apsched_job_free(j);
    if (done) return true;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  for (size_t i = 0; i < k->log.n; i++) fprintf(stderr, "log: %s\n", k->log.lines[i]);
  return false;
}

/* Pause on failure: consecutive failures are counted in the job (its
 * store keeps them), a success resets them, the limit pauses the job with
 * an event and a log line, and resuming counts afresh. */
static void kit_pause_on_failure(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  assert_int_equal(apsched_register_func(KIT_FLAKY_NAME, kit_flaky_job), APSCHED_OK);
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options o = {.id = "f", .func_name = KIT_FLAKY_NAME, .trigger = t, .jobstore = "kit",
                           .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .pause_after_failures = 3};
  assert_int_equal(apsched_add_job(k.s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  atomic_store(&kit_flaky_fails, true);
  for (int i = 1; i <= 2; i++) {
    kit_policy_due(&k);
    assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_ERROR, (size_t)i));
    assert_true(kit_wait_failures(&k, "f", i, false));
  }
  /* A success resets the count. */
  atomic_store(&kit_flaky_fails, false);
  kit_policy_due(&k);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_EXECUTED, 1));
  assert_true(kit_wait_failures(&k, "f", 0, false));
  /* Three in a row pause it. */
  atomic_store(&kit_flaky_fails, true);
  for (int i = 1; i <= 3; i++) {
    kit_policy_due(&k);
    assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_ERROR, 2 + (size_t)i));
  }
  assert_true(kit_wait_failures(&k, "f", 3, true));
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_PAUSED, 1));
  int e = recorder_find(&k.rec, APSCHED_EVENT_JOB_PAUSED, 0);
  assert_string_equal(k.rec.ev[e].job_id, "f");
  assert_string_equal(k.rec.ev[e].jobstore, "kit");
  assert_int_equal(k.rec.ev[e].retval, 3);
  char want[64];
  snprintf(want, sizeof want, "flaky failed at %lld", (long long)AT(60));
  assert_string_equal(k.rec.ev[e].error, want);
  assert_true(log_contains(&k.log, "paused after 3 consecutive failed runs (pause_after_failures)"));
  /* Paused: nothing runs. */
  kit_policy_due(&k);
  assert_true(kit_wait_failures(&k, "f", 3, true));
  assert_int_equal(recorder_count(&k.rec, APSCHED_EVENT_JOB_ERROR), 5);
  /* Resumed: counted afresh (its next time is now, +70 s). */
  assert_int_equal(apsched_resume_job(k.s, "f", NULL), APSCHED_OK);
  assert_true(kit_wait_failures(&k, "f", 1, false));
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_ERROR, 6));
  assert_int_equal(recorder_count(&k.rec, APSCHED_EVENT_JOB_PAUSED), 1);
  atomic_store(&kit_flaky_fails, false);
  kit_policy_close(&k);
}

/* A job added with failed runs already counted (apsched_job_options.failures,
 * as `apsched jobs import` restores them) keeps counting from there: one
 * more failure reaches its pause_after_failures. Out of range: refused. */
static void kit_failures_restored(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  assert_int_equal(apsched_register_func(KIT_FLAKY_NAME, kit_flaky_job), APSCHED_OK);
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options o = {.id = "f", .func_name = KIT_FLAKY_NAME, .trigger = t, .jobstore = "kit",
                           .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .pause_after_failures = 3,
                           .failures = 70000};
  assert_int_equal(apsched_add_job(k.s, &o, NULL, 0), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "failures: 70000 is outside 0..65535"));
  o.failures = 2;
  assert_int_equal(apsched_add_job(k.s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  assert_true(kit_wait_failures(&k, "f", 2, false));
  atomic_store(&kit_flaky_fails, true);
  kit_policy_due(&k);
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_ERROR, 1));
  assert_true(kit_wait_failures(&k, "f", 3, true));
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_PAUSED, 1));
  atomic_store(&kit_flaky_fails, false);
  kit_policy_close(&k);
}

/* The catch-up window: after a jump of three hours, only the occurrences
 * of the last 25 minutes run (grace unlimited, no coalescing); the rest
 * are reported missed, once, with their count. */
static void kit_catchup_window(void **state) {
  kit_policy k;
  kit_policy_open(state, &k);
  assert_int_equal(apsched_register_func(KIT_FLAKY_NAME, kit_flaky_job), APSCHED_OK);
  atomic_store(&kit_flaky_fails, false);
  apsched_trigger *t = every(10 * APSCHED_MINUTE, T0 + 10 * APSCHED_MINUTE);
  apsched_job_options o = {.id = "w", .func_name = KIT_FLAKY_NAME, .trigger = t, .jobstore = "kit",
                           .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .coalesce = APSCHED_NO,
                           .catchup_window = 25 * APSCHED_MINUTE};
  assert_int_equal(apsched_add_job(k.s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  fake_advance(&k.fc, 3 * APSCHED_HOUR);
  int64_t wait;
  assert_int_equal(apsched_process(k.s, &wait), APSCHED_OK);
  assert_int_equal(apsched_wakeup(k.s), APSCHED_OK);
  /* 18 occurrences: 10 min .. 3 h; 2:40 .. 3:00 run (a shared store's
   * clock may be a little ahead: no occurrence sits on the window's edge). */
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_EXECUTED, 3));
  assert_true(recorder_wait(&k.rec, APSCHED_EVENT_JOB_MISSED, 1));
  int e = recorder_find(&k.rec, APSCHED_EVENT_JOB_MISSED, 0);
  assert_int_equal(k.rec.ev[e].missed_count, 15);
  assert_int_equal(k.rec.ev[e].run_time, T0 + 10 * APSCHED_MINUTE);
  assert_true(log_contains(&k.log, "(15 run times missed, older than its catch-up window)"));
  e = recorder_find(&k.rec, APSCHED_EVENT_JOB_EXECUTED, 0);
  assert_int_equal(k.rec.ev[e].run_time, T0 + 160 * APSCHED_MINUTE);
  assert_int_equal(recorder_count(&k.rec, APSCHED_EVENT_JOB_EXECUTED), 3);
  kit_policy_close(&k);
}

#define KIT_POLICY_TESTS(kit)                                              \
  cmocka_unit_test_prestate(kit_overlap_skip, (void *)(kit)),              \
      cmocka_unit_test_prestate(kit_overlap_buffer_one, (void *)(kit)),    \
      cmocka_unit_test_prestate(kit_overlap_buffer_all, (void *)(kit)),    \
      cmocka_unit_test_prestate(kit_overlap_buffer_all_bound, (void *)(kit)), \
      cmocka_unit_test_prestate(kit_overlap_cancel_other, (void *)(kit)),  \
      cmocka_unit_test_prestate(kit_overlap_terminate_refused, (void *)(kit)), \
      cmocka_unit_test_prestate(kit_overlap_allow_all, (void *)(kit)),     \
      cmocka_unit_test_prestate(kit_policies_kept, (void *)(kit)),         \
      cmocka_unit_test_prestate(kit_run_now, (void *)(kit)),               \
      cmocka_unit_test_prestate(kit_backfill, (void *)(kit)),              \
      cmocka_unit_test_prestate(kit_pause_on_failure, (void *)(kit)),      \
      cmocka_unit_test_prestate(kit_failures_restored, (void *)(kit)),     \
      cmocka_unit_test_prestate(kit_catchup_window, (void *)(kit))

#endif
