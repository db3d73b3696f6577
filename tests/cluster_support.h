/* What the tests of schedulers sharing a store (test_pg_cluster.c,
 * test_redis_cluster.c) share: the job every scheduler process runs (it
 * appends a line per run to a file outside the store, the side effect the
 * tests count), starting this binary again as a child in a --mode, and
 * reading the runs back. Each program sets cluster_target (its server's
 * conninfo or URL), which spawn passes to every child first. */
#ifndef APSCHED_TEST_CLUSTER_SUPPORT_H
#define APSCHED_TEST_CLUSTER_SUPPORT_H

#include "support.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The server the children connect to (set by main). */
static const char *cluster_target;

#define RECORD_FN "cluster.record"

/* ------------------------------------------------------ the job (children) */

static int g_runs_fd = -1;

/* Sleeps as long as its byte argument says (milliseconds, as text), then
 * appends "job scheduled attempt pid start end" in one write. */
static int record_job(apsched_run_ctx *run) {
  size_t len = 0;
  const char *arg = apsched_run_arg_bytes(run, &len);
  char ms[16] = "0";
  if (len > 0 && len < sizeof ms) memcpy(ms, arg, len), ms[len] = '\0';
  apsched_time_t start = apsched_now();
  if (atoi(ms) > 0) sleep_ms(atoi(ms));
  apsched_time_t end = apsched_now();
  char line[200];
  int n = snprintf(line, sizeof line, "%s %" PRId64 " %u %d %" PRId64 " %" PRId64 "\n",
                   apsched_run_job_id(run), apsched_run_scheduled_time(run), apsched_run_attempt(run),
                   (int)getpid(), start, end);
  if (g_runs_fd >= 0 && write(g_runs_fd, line, (size_t)n) != n) return 1;
  return 0;
}


/* Starts this binary with args (a NULL-terminated list after the mode and
 * cluster_target). */
static pid_t spawn(const char *mode, const char *const *args) {
  char *argv[16];
  int k = 0;
  argv[k++] = (char *)"cluster-child";
  argv[k++] = (char *)mode;
  argv[k++] = (char *)cluster_target;
  for (int i = 0; args[i] && k < 15; i++) argv[k++] = (char *)args[i];
  argv[k] = NULL;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    /* Killed with the test program, even stopped (SIGSTOP'ed by a test
     * that then failed): a child left behind keeps ctest waiting on the
     * output it inherited until the test's timeout. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  assert_true(pid > 0);
  return pid;
}

/* Reads what is there on fd within ms (at least one byte); "" if nothing. */
static void read_within(int fd, char *buf, size_t len, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  buf[0] = '\0';
  if (poll(&p, 1, ms) <= 0) return;
  ssize_t n = read(fd, buf, len - 1);
  buf[n > 0 ? n : 0] = '\0';
}

static int wait_exit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}


/* A job record of RECORD_FN: every `every` us from start; arg: the run's
 * length in ms. */
static apsched_job_record *job(const char *id, apsched_time_t start, int64_t every_us, bool alo,
                               uint16_t max_instances, bool coalesce, const char *run_ms) {
  apsched_job_record *r = apsched__record_new(id);
  r->trigger = every(every_us, start);
  r->func = apsched_func_by_name(RECORD_FN);
  r->executor = "default";
  bool oom;
  r->args = apsched__args_new(NULL, NULL, run_ms, strlen(run_ms), &oom);
  r->misfire_grace_ms = UINT32_MAX;
  r->max_instances = max_instances;
  r->flags = (uint16_t)((alo ? APSCHED_JOB_AT_LEAST_ONCE : 0) | (coalesce ? APSCHED_JOB_COALESCE : 0));
  r->next_run_time = r->trigger_time = start;
  return r;
}

static void add_jobs(apsched_jobstore *st, apsched_job_record **recs, size_t n) {
  assert_int_equal(st->vtable->add(st, recs, n, NULL, NULL), APSCHED_OK);
}

/* One line of a runs file. */
typedef struct run_line {
  char job[32];
  int64_t scheduled, start, end;
  unsigned attempt;
  int pid;
} run_line;

static size_t read_runs(const char *path, run_line **out) {
  FILE *f = fopen(path, "r");
  size_t n = 0, cap = 256;
  run_line *v = malloc(cap * sizeof *v);
  run_line l;
  while (f && fscanf(f, "%31s %" SCNd64 " %u %d %" SCNd64 " %" SCNd64, l.job, &l.scheduled,
                     &l.attempt, &l.pid, &l.start, &l.end) == 6) {
    if (n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
    v[n++] = l;
  }
  if (f) fclose(f);
  *out = v;
  return n;
}

static int by_job_time(const void *a, const void *b) {
  const run_line *x = a, *y = b;
  int c = strcmp(x->job, y->job);
  return c ? c : (x->scheduled > y->scheduled) - (x->scheduled < y->scheduled);
}

static void runs_path(char *buf, size_t len, const char *schema) {
  snprintf(buf, len, "/tmp/apsched-cluster-%d-%s.runs", (int)getpid(), schema);
  unlink(buf);
}

/* Starts k schedulers for run_ms; waits until all run. */
static void start_schedulers(pid_t *pids, int k, const char *schema, const char *runs, int run_ms,
                             int max_wait_ms) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  char a_run[16], a_wait[16], a_fd[16];
  snprintf(a_run, sizeof a_run, "%d", run_ms);
  snprintf(a_wait, sizeof a_wait, "%d", max_wait_ms);
  snprintf(a_fd, sizeof a_fd, "%d", fds[1]);
  const char *args[] = {schema, runs, a_run, a_wait, a_fd, NULL};
  for (int i = 0; i < k; i++) pids[i] = spawn("--scheduler", args);
  close(fds[1]);
  for (int got = 0; got < k;) {
    char buf[8];
    read_within(fds[0], buf, sizeof buf, 20000);
    if (!buf[0]) fail_msg("only %d of %d schedulers started", got, k);
    got += (int)strlen(buf);
  }
  close(fds[0]);
}


/* Each program defines how a child opens the store: on the server target
 * names, the store where names (a schema, a prefix), with lease_ms (0:
 * the default). NULL (after saying why on stderr) if it cannot. */
static apsched_jobstore *store_at(const char *target, const char *where, int lease_ms);

/* ---------------------------------------------------------- the children */

/* argv: --scheduler TARGET WHERE RUNS_FILE RUN_MS MAX_WAIT_MS READY_FD
 * A scheduler on the schema for RUN_MS; "R" on READY_FD once started. */
static int scheduler_child(char **argv) {
  g_runs_fd = open(argv[4], O_WRONLY | O_APPEND | O_CREAT, 0644);
  int run_ms = atoi(argv[5]), ready = atoi(argv[7]);
  if (g_runs_fd < 0 || apsched_register_func(RECORD_FN, record_job) != APSCHED_OK) return 2;
  apsched_config cfg = {.timezone = "UTC", .max_wait = atoll(argv[6]) * APSCHED_MSEC};
  apsched_scheduler *s;
  if (apsched_create(&cfg, &s) != APSCHED_OK) return 2;
  apsched_jobstore *st = store_at(argv[2], argv[3], 0);
  if (!st || apsched_add_jobstore(s, st, "db") != APSCHED_OK) return 2;
  if (apsched_start(s, false) != APSCHED_OK) return 2;
  if (write(ready, "R", 1) != 1) return 2;
  sleep_ms(run_ms);
  apsched_shutdown(s, true);
  apsched_free(s);
  return 0;
}

/* argv: --claimer TARGET WHERE LEASE_MS READY_FD GO_FD START_IDS
 * Claims every due job through the store's calls, records its runs, pauses
 * the jobs, commits, starts the runs of the jobs named in START_IDS
 * (comma-separated), writes "R", then waits for a byte on GO_FD (it may be
 * killed or stopped meanwhile). Then tries to start and close every run
 * and writes "start=RC,... closed=RC" to READY_FD. */
static int claimer_child(char **argv) {
  apsched_jobstore *st = store_at(argv[2], argv[3], atoi(argv[4]));
  int ready = atoi(argv[5]), go = atoi(argv[6]);
  if (!st) return 2;
  const apsched_jobstore_vtable *vt = st->vtable;
  apsched_job_record *due[8];
  int n = vt->claim_due(st, apsched_now(), due, 8);
  if (n <= 0) return 3;
  char ids[8][64];
  apsched_time_t times[8];
  for (int i = 0; i < n; i++) {
    bool track = false;
    snprintf(ids[i], sizeof ids[i], "%s", due[i]->id);
    times[i] = due[i]->next_run_time;
    if (vt->runs_open(st, due[i], &times[i], 1, &track) != APSCHED_OK || !track) return 4;
    if (vt->release(st, due[i], APSCHED_TIME_NONE, APSCHED_TIME_NONE, false) != APSCHED_OK) return 5;
  }
  if (vt->commit(st) != APSCHED_OK) return 6;
  for (int i = 0; i < n; i++) {
    char key[66];
    snprintf(key, sizeof key, ",%s,", ids[i]);
    char list[512];
    snprintf(list, sizeof list, ",%s,", argv[7]);
    if (strstr(list, key) && vt->run_starting(st, ids[i], times[i], 1) != APSCHED_OK) return 7;
  }
  if (write(ready, "R", 1) != 1) return 8;
  char b;
  if (read(go, &b, 1) != 1) return 9;
  char out[256];
  size_t len = (size_t)snprintf(out, sizeof out, "start=");
  apsched_run_result results[8];
  for (int i = 0; i < n; i++) {
    len += (size_t)snprintf(out + len, sizeof out - len, "%s%d", i ? "," : "",
                            vt->run_starting(st, ids[i], times[i], 1));
    results[i] = (apsched_run_result){.job_id = ids[i], .scheduled_time = times[i], .attempt = 1,
                                      .outcome = APSCHED_RUN_EXECUTED, .started_at = apsched_now(),
                                      .finished_at = apsched_now()};
  }
  len += (size_t)snprintf(out + len, sizeof out - len, " closed=%d", vt->runs_closed(st, results, (size_t)n));
  if (write(ready, out, len) != (ssize_t)len) return 10;
  vt->destroy(st);
  return 0;
}

/* ------------------------------------------------------------ the parent */

static atomic_int schema_seq;

static void new_schema(char *buf, size_t len, const char *stem) {
  snprintf(buf, len, "%s_%d", stem, atomic_fetch_add(&schema_seq, 1));
}

/* Starts a claimer child on the schema's due jobs; returns once it has
 * claimed them (its pipe ends in *ready, *go). */
static pid_t start_claimer(const char *schema, int lease_ms, const char *start_ids, int *ready,
                           int *go) {
  int r[2], g[2];
  assert_int_equal(pipe(r), 0);
  assert_int_equal(pipe(g), 0);
  char a_lease[16], a_r[16], a_g[16];
  snprintf(a_lease, sizeof a_lease, "%d", lease_ms);
  snprintf(a_r, sizeof a_r, "%d", r[1]);
  snprintf(a_g, sizeof a_g, "%d", g[0]);
  const char *args[] = {schema, a_lease, a_r, a_g, start_ids, NULL};
  /* The test's ends close at every exec: a child (this claimer, or one
   * spawned later) holding the write end of "go" would keep a claimer
   * waiting for it after the test program is gone. */
  fcntl(r[0], F_SETFD, FD_CLOEXEC);
  fcntl(g[1], F_SETFD, FD_CLOEXEC);
  pid_t pid = spawn("--claimer", args);
  close(r[1]);
  close(g[0]);
  char buf[8];
  read_within(r[0], buf, sizeof buf, 20000);
  if (strcmp(buf, "R") != 0) fail_msg("the claimer did not claim (exit %d)", wait_exit(pid));
  *ready = r[0];
  *go = g[1];
  return pid;
}

/* ------------------------------------------------- tests every shared store passes */

/* Every due run of 24 jobs (every 250 ms, half of them at least once),
 * exactly once, with three schedulers sharing them. */
static void test_every_due_run_exactly_once(void **state) {
  (void)state;
  char schema[32], runs[128];
  new_schema(schema, sizeof schema, "once");
  runs_path(runs, sizeof runs, schema);
  apsched_jobstore *st = store_at(cluster_target, schema, 0);
  assert_non_null(st);
  pid_t pids[3];
  start_schedulers(pids, 3, schema, runs, 4000, 1000);
  apsched_time_t start = apsched_now() + 300 * APSCHED_MSEC;
  apsched_job_record *recs[24];
  for (int i = 0; i < 24; i++) {
    char id[16];
    snprintf(id, sizeof id, "j%02d", i);
    /* max_instances 3: a run's record is closed at its scheduler's next
     * pass, which may come after the next time is due elsewhere (with 1,
     * that time would be skipped, as max_instances says). */
    recs[i] = job(id, start + i * 10 * APSCHED_MSEC, 250 * APSCHED_MSEC, i % 2, 3, false, "0");
  }
  add_jobs(st, recs, 24);
  /* The jobs end 2 s in, well before any scheduler stops (a run claimed by
   * one that is shutting down is not started: at most once, that would
   * look like a lost run). */
  int64_t left = (start + 2 * APSCHED_SEC - apsched_now()) / APSCHED_MSEC;
  if (left > 0) sleep_ms((int)left);
  assert_int_equal(st->vtable->remove_all(st), APSCHED_OK);
  for (int i = 0; i < 3; i++) assert_int_equal(wait_exit(pids[i]), 0);

  run_line *v;
  size_t n = read_runs(runs, &v);
  qsort(v, n, sizeof *v, by_job_time);
  int per_job[24] = {0}, pids_seen = 0, first_pid = n ? v[0].pid : 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i].pid != first_pid) pids_seen = 1;
    int j = atoi(v[i].job + 1);
    per_job[j]++;
    if (i > 0 && strcmp(v[i].job, v[i - 1].job) == 0) {
      if (v[i].scheduled == v[i - 1].scheduled)
        fail_msg("%s at %" PRId64 " ran twice (pids %d and %d)", v[i].job, v[i].scheduled,
                 v[i].pid, v[i - 1].pid);
      if (v[i].scheduled != v[i - 1].scheduled + 250 * APSCHED_MSEC)
        fail_msg("%s: no run between %" PRId64 " and %" PRId64, v[i].job, v[i - 1].scheduled,
                 v[i].scheduled);
    } else {
      assert_int_equal(v[i].scheduled, start + j * 10 * APSCHED_MSEC); /* from its first */
    }
    assert_int_equal(v[i].attempt, 1);
  }
  for (int j = 0; j < 24; j++)
    if (per_job[j] < 6) fail_msg("job j%02d ran %d times in about 2 s", j, per_job[j]);
  assert_true(pids_seen); /* shared, not one process doing all */
  free(v);
  unlink(runs);
  st->vtable->destroy(st);
}

/* max_instances = 1 across the processes: runs of 150 ms every 50 ms never
 * overlap, whichever scheduler runs them. */
static void test_max_instances_across_schedulers(void **state) {
  (void)state;
  char schema[32], runs[128];
  new_schema(schema, sizeof schema, "instances");
  runs_path(runs, sizeof runs, schema);
  apsched_jobstore *st = store_at(cluster_target, schema, 0);
  assert_non_null(st);
  pid_t pids[3];
  start_schedulers(pids, 3, schema, runs, 2500, 100);
  apsched_job_record *rec = job("single", apsched_now(), 50 * APSCHED_MSEC, false, 1, true, "150");
  add_jobs(st, &rec, 1);
  for (int i = 0; i < 3; i++) assert_int_equal(wait_exit(pids[i]), 0);
  run_line *v;
  size_t n = read_runs(runs, &v);
  assert_true(n >= 3);
  for (size_t i = 0; i < n; i++)
    for (size_t k = i + 1; k < n; k++)
      if (v[i].start < v[k].end && v[k].start < v[i].end)
        fail_msg("runs overlap: pid %d %" PRId64 "..%" PRId64 " and pid %d %" PRId64 "..%" PRId64,
                 v[i].pid, v[i].start, v[i].end, v[k].pid, v[k].start, v[k].end);
  free(v);
  unlink(runs);
  st->vtable->destroy(st);
}

/* A job added here starts in a scheduler that polls only every 30 s: the
 * NOTIFY of the add woke it. */
static void test_wakeup_across_processes(void **state) {
  (void)state;
  char schema[32], runs[128];
  new_schema(schema, sizeof schema, "wakeup");
  runs_path(runs, sizeof runs, schema);
  apsched_jobstore *st = store_at(cluster_target, schema, 0);
  assert_non_null(st);
  pid_t pid;
  start_schedulers(&pid, 1, schema, runs, 4000, 30000);
  sleep_ms(300); /* its loop is asleep by now (nothing is due) */
  int64_t t0 = mono_ms();
  apsched_job_record *rec = job("now", apsched_now(), 3600 * APSCHED_SEC, false, 1, true, "0");
  add_jobs(st, &rec, 1);
  run_line *v = NULL;
  size_t n = 0;
  while (n == 0 && mono_ms() - t0 < 3000) {
    free(v);
    n = read_runs(runs, &v);
    if (n == 0) sleep_ms(5);
  }
  int64_t took = mono_ms() - t0;
  assert_int_equal(n, 1);
  if (took > 1500) fail_msg("the job started %" PRId64 " ms after it was added", took);
  free(v);
  kill(pid, SIGKILL);
  wait_exit(pid);
  unlink(runs);
  st->vtable->destroy(st);
}

#endif
