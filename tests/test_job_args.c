/* Job arguments: the pointer argument and its destructor outlive byte-only
 * changes, and the destructor runs exactly once, after the job and every run
 * that may use the pointer are gone. */
#include "support.h"

#include "apsched_plugin.h"

/* ---- a pointer argument whose destructor is observed */

#define PAYLOAD_MAGIC 0x5eed5eedu

typedef struct payload {
  unsigned magic;
  int id;
} payload;

/* What the job and the destructor saw; one test at a time uses it. */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool inside;      /* the gated run has started */
  bool release;     /* the test lets the gated run go on */
  bool run_done;    /* the gated run finished using the pointer */
  unsigned seen;    /* magic the gated run read after the release */
  int frees;        /* destructor calls */
  bool freed_after_run; /* run_done was already set at the (first) free */
  int runs;         /* runs of the plain job */
  payload *last_arg;
  char last_bytes[16];
} g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void reset(void) {
  pthread_mutex_lock(&g.lock);
  g.inside = g.release = g.run_done = g.freed_after_run = false;
  g.seen = 0;
  g.frees = g.runs = 0;
  g.last_arg = NULL;
  g.last_bytes[0] = '\0';
  pthread_mutex_unlock(&g.lock);
}

static void payload_free(void *p) {
  pthread_mutex_lock(&g.lock);
  if (g.frees++ == 0) g.freed_after_run = g.run_done;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.lock);
  free(p);
}

static payload *payload_new(int id) {
  payload *p = malloc(sizeof *p);
  assert_non_null(p);
  p->magic = PAYLOAD_MAGIC;
  p->id = id;
  return p;
}

/* Blocks until released, then reads its pointer argument. */
static int gated_job(apsched_run_ctx *run) {
  payload *p = apsched_run_arg(run);
  pthread_mutex_lock(&g.lock);
  g.inside = true;
  pthread_cond_broadcast(&g.cond);
  while (!g.release) pthread_cond_wait(&g.cond, &g.lock);
  pthread_mutex_unlock(&g.lock);
  unsigned magic = p->magic; /* the use that must not come after the free */
  pthread_mutex_lock(&g.lock);
  g.seen = magic;
  g.run_done = true;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.lock);
  return 0;
}

/* Wait (up to 20 s) until *flag is set / until g.frees reaches n. */
static bool wait_flag(bool *flag) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&g.lock);
  int rc = 0;
  while (!*flag && rc == 0) rc = pthread_cond_timedwait(&g.cond, &g.lock, &deadline);
  bool ok = *flag;
  pthread_mutex_unlock(&g.lock);
  return ok;
}

static bool wait_frees(int n) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&g.lock);
  int rc = 0;
  while (g.frees < n && rc == 0) rc = pthread_cond_timedwait(&g.cond, &g.lock, &deadline);
  bool ok = g.frees >= n;
  pthread_mutex_unlock(&g.lock);
  return ok;
}

static int frees(void) {
  pthread_mutex_lock(&g.lock);
  int n = g.frees;
  pthread_mutex_unlock(&g.lock);
  return n;
}

static apsched_scheduler *pool_scheduler(void) {
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_executor *pool;
  apsched_thread_pool_options po = {.max_workers = 2};
  assert_int_equal(apsched_thread_pool_create(&po, &pool), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, pool, "default"), APSCHED_OK);
  return s;
}

/* Issue 7, defect 1: a byte-only change used to move the destructor to the
 * new block, so removing the job freed the pointer under a run still using
 * it (heap-use-after-free under ASan). */
static void test_byte_change_keeps_pointer_for_running_run(void **state) {
  (void)state;
  reset();
  apsched_scheduler *s = pool_scheduler();
  apsched_trigger *t = every(3600 * APSCHED_SEC, apsched_now());
  apsched_job_options o = {.id = "j", .func = gated_job, .trigger = t, .arg = payload_new(1),
                           .arg_free = payload_free, .arg_bytes = "old", .arg_len = 4,
                           .next_run_time = apsched_now()};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(wait_flag(&g.inside));

  apsched_job_changes ch = {.set_arg_bytes = true, .arg_bytes = "new", .arg_len = 4};
  assert_int_equal(apsched_modify_job(s, "j", NULL, &ch), APSCHED_OK);
  assert_int_equal(apsched_remove_job(s, "j", NULL), APSCHED_OK);
  assert_int_equal(frees(), 0); /* the run still holds the pointer */

  pthread_mutex_lock(&g.lock);
  g.release = true;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.lock);
  assert_true(wait_frees(1));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  pthread_mutex_lock(&g.lock);
  assert_int_equal(g.seen, PAYLOAD_MAGIC);
  assert_true(g.freed_after_run);
  assert_int_equal(g.frees, 1);
  pthread_mutex_unlock(&g.lock);
  apsched_trigger_free(t);
}

/* Records what a run sees. */
static int looking_job(apsched_run_ctx *run) {
  size_t len;
  const char *bytes = apsched_run_arg_bytes(run, &len);
  pthread_mutex_lock(&g.lock);
  g.runs++;
  g.last_arg = apsched_run_arg(run);
  snprintf(g.last_bytes, sizeof g.last_bytes, "%.*s", (int)len, bytes ? bytes : "");
  pthread_mutex_unlock(&g.lock);
  return 0;
}

/* Byte changes, repeated, keep the same pointer for later runs; the
 * destructor runs once, at removal. */
static void test_byte_changes_share_one_destructor(void **state) {
  (void)state;
  reset();
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  payload *p = payload_new(2);
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = {.id = "j", .func = looking_job, .trigger = t, .arg = p,
                           .arg_free = payload_free, .arg_bytes = "a", .arg_len = 1};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_job_changes b = {.set_arg_bytes = true, .arg_bytes = "bb", .arg_len = 2};
  apsched_job_changes c = {.set_arg_bytes = true, .arg_bytes = "ccc", .arg_len = 3};
  apsched_job_changes none = {.set_arg_bytes = true};
  assert_int_equal(apsched_modify_job(s, "j", NULL, &b), APSCHED_OK);
  fake_advance(&fc, APSCHED_SEC);
  process(s);
  pthread_mutex_lock(&g.lock);
  assert_int_equal(g.runs, 1);
  assert_ptr_equal(g.last_arg, p);
  assert_string_equal(g.last_bytes, "bb");
  pthread_mutex_unlock(&g.lock);
  assert_int_equal(apsched_modify_job(s, "j", NULL, &c), APSCHED_OK);
  assert_int_equal(apsched_modify_job(s, "j", NULL, &none), APSCHED_OK);
  fake_advance(&fc, APSCHED_SEC);
  process(s);
  pthread_mutex_lock(&g.lock);
  assert_int_equal(g.runs, 2);
  assert_ptr_equal(g.last_arg, p);
  assert_string_equal(g.last_bytes, "");
  pthread_mutex_unlock(&g.lock);
  assert_int_equal(frees(), 0);
  assert_int_equal(apsched_remove_job(s, "j", NULL), APSCHED_OK);
  assert_int_equal(frees(), 1);
  apsched_free(s);
  assert_int_equal(frees(), 1);
  apsched_trigger_free(t);
}

/* An executor that refuses every job (check_job), to make changes fail after
 * their arguments were built. */
static int refuse_start(apsched_executor *ex, apsched_scheduler *s, const char *alias) {
  (void)ex, (void)s, (void)alias;
  return APSCHED_OK;
}
static int refuse_submit(apsched_executor *ex, apsched_run_ctx *run) {
  (void)ex;
  apsched_run_discard(run);
  return APSCHED_OK;
}
static void refuse_shutdown(apsched_executor *ex, bool wait) { (void)ex, (void)wait; }
static bool refuse_owns_thread(apsched_executor *ex) {
  (void)ex;
  return false;
}
static void refuse_destroy(apsched_executor *ex) { (void)ex; }
static int refuse_check_job(apsched_executor *ex, const apsched_job_record *rec, char *why,
                            size_t len) {
  (void)ex, (void)rec;
  snprintf(why, len, "refuses everything");
  return APSCHED_EINVAL;
}
static const apsched_executor_vtable refuse_vtable = {
    APSCHED_EXECUTOR_VTABLE_VERSION, "refuser", refuse_start, refuse_submit, refuse_shutdown,
    refuse_owns_thread, refuse_destroy, refuse_check_job};
static apsched_executor refuser = {&refuse_vtable};

/* Replacing the pointer frees the old one (once no run uses it) and the new
 * one at removal; a replacement that fails leaves the new pointer the
 * caller's and the job's pointer in place. */
static void test_pointer_replacement(void **state) {
  (void)state;
  reset();
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = hosted_scheduler(&fc, NULL, NULL);
  assert_int_equal(apsched_add_executor(s, &refuser, "refuser"), APSCHED_OK);
  payload *p = payload_new(3), *q = payload_new(4), *r = payload_new(5);
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  apsched_job_options o = {.id = "j", .func = looking_job, .trigger = t, .arg = p,
                           .arg_free = payload_free};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  /* Fails after the arguments were built: the executor refuses the job. */
  apsched_job_changes bad = {.set_arg = true, .arg = r, .arg_free = payload_free,
                             .executor = "refuser"};
  assert_int_equal(apsched_modify_job(s, "j", NULL, &bad), APSCHED_EINVAL);
  apsched_job_changes bad_bytes = {.set_arg_bytes = true, .arg_bytes = "x", .arg_len = 1,
                                   .executor = "refuser"};
  assert_int_equal(apsched_modify_job(s, "j", NULL, &bad_bytes), APSCHED_EINVAL);
  assert_int_equal(frees(), 0);
  apsched_job_changes swap = {.set_arg = true, .arg = q, .arg_free = payload_free};
  assert_int_equal(apsched_modify_job(s, "j", NULL, &swap), APSCHED_OK);
  assert_int_equal(frees(), 1); /* p: no run held it */
  fake_advance(&fc, APSCHED_SEC);
  process(s);
  pthread_mutex_lock(&g.lock);
  assert_ptr_equal(g.last_arg, q);
  pthread_mutex_unlock(&g.lock);
  assert_int_equal(apsched_remove_job(s, "j", NULL), APSCHED_OK);
  assert_int_equal(frees(), 2);
  apsched_free(s);
  assert_int_equal(frees(), 2);
  free(r); /* still the caller's */
  apsched_trigger_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_byte_change_keeps_pointer_for_running_run),
      cmocka_unit_test(test_byte_changes_share_one_destructor),
      cmocka_unit_test(test_pointer_replacement),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
