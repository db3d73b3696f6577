/* What the tests of several scheduler processes on one PostgreSQL schema
 * share (test_pg_cluster.c, test_pg_chaos.c; header-only, after support.h,
 * internal.h, apsched_pg.h and pg_server.h):
 *  - children: spawn() runs this binary again (/proc/self/exe) with a mode,
 *    the test server's conninfo and more arguments; wait_exit, read_within;
 *  - the side effect outside the store that proves what ran: jobs append one
 *    line per run to a file opened O_APPEND (g_runs_fd) with record_line,
 *    "job scheduled attempt pid start end" in one write(), so lines of
 *    processes killed at any moment never interleave; read_runs parses them;
 *  - store_at, cluster_job (a job record for the store's add), add_jobs,
 *    new_schema, runs_path, count_rows. */
#ifndef APSCHED_TEST_PG_CLUSTER_SUPPORT_H
#define APSCHED_TEST_PG_CLUSTER_SUPPORT_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static inline int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* ------------------------------------------------------ the jobs' record */

/* The runs file of this process (children open it O_APPEND). */
static int g_runs_fd = -1;

/* Appends "job scheduled attempt pid start end" for run in one write;
 * nonzero if it could not. */
static inline int record_line(apsched_run_ctx *run, apsched_time_t start, apsched_time_t end) {
  char line[200];
  int n = snprintf(line, sizeof line, "%s %" PRId64 " %u %d %" PRId64 " %" PRId64 "\n",
                   apsched_run_job_id(run), apsched_run_scheduled_time(run), apsched_run_attempt(run),
                   (int)getpid(), start, end);
  return g_runs_fd >= 0 && write(g_runs_fd, line, (size_t)n) == n ? 0 : 1;
}

/* One line of a runs file. */
typedef struct run_line {
  char job[32];
  int64_t scheduled, start, end;
  unsigned attempt;
  int pid;
} run_line;

/* The lines of path (malloc'd array, *out; a missing file: none). */
static inline size_t read_runs(const char *path, run_line **out) {
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

/* qsort order: by job, then scheduled time, then attempt. */
static inline int by_job_time(const void *a, const void *b) {
  const run_line *x = a, *y = b;
  int c = strcmp(x->job, y->job);
  if (c) return c;
  if (x->scheduled != y->scheduled) return (x->scheduled > y->scheduled) - (x->scheduled < y->scheduled);
  return (x->attempt > y->attempt) - (x->attempt < y->attempt);
}

/* A fresh runs file name for schema (removed if left over). */
static inline void runs_path(char *buf, size_t len, const char *schema) {
  snprintf(buf, len, "/tmp/apsched-cluster-%d-%s.runs", (int)getpid(), schema);
  unlink(buf);
}

/* -------------------------------------------------------------- stores */

/* A store on schema; NULL (with the reason on stderr) if it cannot be made. */
static inline apsched_jobstore *store_at(const char *conninfo, const char *schema, int lease_ms) {
  apsched_pg_options o = {.conninfo = conninfo, .schema = schema, .lease_ms = lease_ms};
  apsched_jobstore *st = NULL;
  char err[256];
  if (apsched_pg_store_create(&o, &st, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "pid %d: pg store: %s\n", (int)getpid(), err);
    return NULL;
  }
  return st;
}

static atomic_int schema_seq;

static inline void new_schema(char *buf, size_t len, const char *stem) {
  snprintf(buf, len, "%s_%d", stem, atomic_fetch_add(&schema_seq, 1));
}

/* A job record of function func (registered by name) on trigger (taken),
 * first due at first, with the byte argument arg (text), an unlimited
 * misfire grace time. */
static inline apsched_job_record *cluster_job(const char *id, const char *func, apsched_trigger *trigger,
                                              apsched_time_t first, bool alo, uint16_t max_instances,
                                              bool coalesce, const char *arg) {
  apsched_job_record *r = apsched__record_new(id);
  r->trigger = trigger;
  r->func = apsched_func_by_name(func);
  r->executor = "default";
  bool oom;
  r->args = apsched__args_new(NULL, NULL, arg, strlen(arg), &oom);
  r->misfire_grace_ms = UINT32_MAX;
  r->max_instances = max_instances;
  r->flags = (uint16_t)((alo ? APSCHED_JOB_AT_LEAST_ONCE : 0) | (coalesce ? APSCHED_JOB_COALESCE : 0));
  r->next_run_time = r->trigger_time = first;
  return r;
}

static inline void add_jobs(apsched_jobstore *st, apsched_job_record **recs, size_t n) {
  assert_int_equal(st->vtable->add(st, recs, n, NULL, NULL), APSCHED_OK);
}

/* The single number sql returns, failing the test on an error. */
static inline long count_rows(PGconn *c, const char *sql) {
  PGresult *res = PQexec(c, sql);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
  long v = atol(PQgetvalue(res, 0, 0));
  PQclear(res);
  return v;
}

/* ------------------------------------------------------------ children */

/* Starts this binary with mode, the server's conninfo, then args (a
 * NULL-terminated list); stdin_fd >= 0 becomes its stdin. */
static inline pid_t spawn_with_stdin(const char *mode, const char *const *args, int stdin_fd) {
  char *argv[16];
  int k = 0;
  argv[k++] = (char *)"apsched-test-child";
  argv[k++] = (char *)mode;
  argv[k++] = (char *)pg_server_conninfo();
  for (int i = 0; args[i] && k < 15; i++) argv[k++] = (char *)args[i];
  argv[k] = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    if (stdin_fd >= 0 && dup2(stdin_fd, 0) < 0) _exit(126);
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  assert_true(pid > 0);
  return pid;
}

static inline pid_t spawn(const char *mode, const char *const *args) {
  return spawn_with_stdin(mode, args, -1);
}

/* Reads what is there on fd within ms (at least one byte); "" if nothing. */
static inline void read_within(int fd, char *buf, size_t len, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  buf[0] = '\0';
  if (poll(&p, 1, ms) <= 0) return;
  ssize_t n = read(fd, buf, len - 1);
  buf[n > 0 ? n : 0] = '\0';
}

/* The child's exit code, or 128 + the signal that ended it. */
static inline int wait_exit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif
