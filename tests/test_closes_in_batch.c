/* Contract version 6: a store with runs_closed_in_batch gets the runs that
 * ended as the first call of the next claimed batch (before claim_due), and
 * the scheduler commits that batch even when it claims nothing. When the
 * commit fails, the closes were not recorded: the scheduler passes them
 * again, and each is recorded exactly once. The store is the memory store
 * with run records, the in-batch call and a commit of its own. */
#include "support.h"
#include "wrapped_store.h"

static struct {
  pthread_mutex_t lock;
  char trace[512];     /* "closes;" "claim;" "commit;" in call order (from the 2nd pass on) */
  char pending[256];   /* closes written in the open batch */
  char committed[256]; /* "id@seconds-after-T0;" per recorded close */
  atomic_bool fail_commit_with_closes; /* the next commit holding closes fails (once) */
  atomic_bool tracing;
} st = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void trace(const char *what) {
  if (!atomic_load(&st.tracing)) return;
  size_t len = strlen(st.trace);
  snprintf(st.trace + len, sizeof st.trace - len, "%s;", what);
}

static void append_results(char *to, size_t size, const apsched_run_result *r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(to);
    snprintf(to + len, size - len, "%s@%lld;", r[i].job_id,
             (long long)((r[i].scheduled_time - T0) / APSCHED_SEC));
  }
}

static int cb_runs_open(apsched_jobstore *s, const apsched_job_record *rec,
                        const apsched_time_t *times, size_t n, bool *track) {
  (void)s;
  (void)rec;
  (void)times;
  (void)n;
  *track = true;
  return APSCHED_OK;
}

static int cb_runs_closed(apsched_jobstore *s, const apsched_run_result *r, size_t n) {
  (void)s;
  pthread_mutex_lock(&st.lock);
  append_results(st.committed, sizeof st.committed, r, n);
  pthread_mutex_unlock(&st.lock);
  return APSCHED_OK;
}

static int cb_runs_closed_in_batch(apsched_jobstore *s, const apsched_run_result *r, size_t n) {
  (void)s;
  pthread_mutex_lock(&st.lock);
  trace("closes");
  append_results(st.pending, sizeof st.pending, r, n);
  pthread_mutex_unlock(&st.lock);
  return APSCHED_OK;
}

static int cb_claim_due(apsched_jobstore *s, apsched_time_t now, apsched_job_record **out,
                        size_t max) {
  pthread_mutex_lock(&st.lock);
  trace("claim");
  pthread_mutex_unlock(&st.lock);
  return ws_claim_due(s, now, out, max);
}

static int cb_commit(apsched_jobstore *s) {
  (void)s;
  pthread_mutex_lock(&st.lock);
  trace("commit");
  bool fail = st.pending[0] && atomic_exchange(&st.fail_commit_with_closes, false);
  size_t len = strlen(st.committed);
  if (!fail) snprintf(st.committed + len, sizeof st.committed - len, "%s", st.pending);
  st.pending[0] = '\0';
  pthread_mutex_unlock(&st.lock);
  return fail ? apsched_plugin_error(APSCHED_EBACKEND, "injected failure of commit") : APSCHED_OK;
}

/* Occurrences of needle in haystack. */
static int count_of(const char *haystack, const char *needle) {
  int n = 0;
  for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

static void test_closes_share_the_batch_and_survive_a_failed_commit(void **state) {
  (void)state;
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s =
      hosted_scheduler(&fc, &r, &(apsched_config){.max_wait = 60 * APSCHED_SEC});
  wrapped_store *w = wrapped_memory_store(0);
  w->vt.version = APSCHED_JOBSTORE_VTABLE_VERSION;
  w->vt.runs_open = cb_runs_open;
  w->vt.runs_closed = cb_runs_closed;
  w->vt.runs_closed_in_batch = cb_runs_closed_in_batch;
  w->vt.claim_due = cb_claim_due;
  w->vt.commit = cb_commit;
  assert_int_equal(apsched_add_jobstore(s, &w->base, "rec"), APSCHED_OK);
  counter runs = {0};
  apsched_trigger *t = every(10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC);
  apsched_job_options o = {.id = "job", .func = count_job, .arg = &runs, .trigger = t,
                           .jobstore = "rec"};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);

  atomic_store(&st.fail_commit_with_closes, true);
  fake_advance(&fc, 10 * APSCHED_SEC);
  assert_int_equal(apsched_process(s, NULL), APSCHED_OK);
  assert_int_equal(atomic_load(&runs.runs), 1);
  atomic_store(&st.tracing, true);
  /* The next passes hand the close over in the batch; its first commit
   * fails, a later one records it. */
  for (int i = 0; i < 8 && !strstr(st.committed, "job@10;"); i++) {
    fake_advance(&fc, APSCHED_SEC); /* past the retry backoff, short of the next run */
    assert_int_equal(apsched_process(s, NULL), APSCHED_OK);
  }
  pthread_mutex_lock(&st.lock);
  char trace_copy[512], committed[256];
  snprintf(trace_copy, sizeof trace_copy, "%s", st.trace);
  snprintf(committed, sizeof committed, "%s", st.committed);
  pthread_mutex_unlock(&st.lock);
  assert_int_equal(atomic_load(&st.fail_commit_with_closes), false); /* the failure happened */
  assert_int_equal(count_of(committed, "job@10;"), 1);
  /* Each pass: the closes first, then the claim, then one commit. */
  assert_true(strncmp(trace_copy, "closes;claim;commit;closes;claim;commit;", 40) == 0);
  int f = recorder_find(&r, APSCHED_EVENT_JOBSTORE_FAILED, 0);
  assert_true(f >= 0);
  assert_non_null(strstr(r.ev[f].error, "injected failure of commit"));
  assert_true(recorder_count(&r, APSCHED_EVENT_JOBSTORE_RECOVERED) >= 1);
  apsched_free(s);
  assert_int_equal(count_of(st.committed, "job@10;"), 1); /* not passed again at shutdown */
  recorder_destroy(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_closes_share_the_batch_and_survive_a_failed_commit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
