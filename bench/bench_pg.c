/* PostgreSQL job store benchmark (libapsched-pg), one JSON object per line.
 * It starts a private PostgreSQL 15 server of its own (tests/pg_server.h:
 * initdb in a temporary directory, a unix socket there only) with
 * PostgreSQL's durability defaults: fsync, synchronous_commit and
 * full_page_writes on. Every scheduler is a process of its own (this
 * program again, exec'd with --child), a hosted scheduler with the
 * inline executor on one schema of that server; the job counts its run in
 * shared memory and does nothing else.
 *
 *   pg_server            the server's settings (version, fsync, ...);
 *   pg_dispatch          runs/s with 1, 2 and 3 scheduler processes when
 *                        --jobs (10^5) jobs are due at once (hourly interval
 *                        jobs, due a second ago, at most once), from the
 *                        moment the paused schedulers are resumed until the
 *                        last run started; each job must run exactly once;
 *   pg_raw_claim         the same jobs claimed by the same number of plain
 *                        libpq processes with nothing of libapsched, the
 *                        claim as STORES.md defines its probe ("lock due
 *                        rows, insert run rows, advance"): the store's claim
 *                        statement (SELECT ... FOR UPDATE SKIP LOCKED, LIMIT
 *                        256, the store's claimed batch), then one statement
 *                        advancing the batch's next run times and inserting
 *                        a run row for each (job id, scheduled time, owner,
 *                        token, and the job's name, function, executor,
 *                        argument and limits, as the store records), one
 *                        transaction per batch, in a loop; both statements
 *                        prepared, as the store's are;
 *   pg_store_vs_raw      pg_dispatch / pg_raw_claim at each process count;
 *   pg_batch_accounting  what one claimed batch costs the server, with 1 and
 *                        with the most processes: commits (pg_stat_database
 *                        xact_commit, read-only transactions included), WAL
 *                        flushes (pg_stat_wal wal_sync), statements
 *                        (pg_stat_statements, BEGIN / COMMIT included) and
 *                        the statements by text, each per claimed batch
 *                        (claimed rows / 256, rounded up: exact for one
 *                        process, whose every claim but the last is full);
 *   pg_failover          a scheduler claims 16 due jobs and blocks in the
 *                        first run; another one runs (idle, default
 *                        max_wait of 1 s: nothing wakes it when a
 *                        scheduler dies, its next pass finds the dead
 *                        one's runs); the first is killed (SIGKILL) at a
 *                        random moment of the survivor's wait:
 *                        ms from the kill until the survivor starts the
 *                        first of the 15 runs the dead one had claimed but
 *                        not started, and until it started all of them;
 *   pg_wait_handoff,     runs that wait in the schema (overlap policies):
 *   pg_cancel_reach      bench_waits.h, --samples each;
 *   pg_wakeup            process A (this one, a paused scheduler on the
 *                        schema) adds a job due now, process B (an idle
 *                        scheduler, default max_wait) runs it: us from the
 *                        call of apsched_add_job until the job starts,
 *                        p50 / p99 / max over --samples adds.
 *
 *   bench_pg [--quick] [--only=dispatch,raw,accounting,failover,wakeup,waits]
 *            [--jobs=N] [--reps=N] [--procs=1,2,3] [--samples=N]
 *            [-- COMMAND [ARG...]]
 *
 * Throughputs are the median of --reps repetitions (default 3) with min and
 * max, each on a fresh schema; every line carries the load average when it
 * was printed. Before each measured phase the jobs table is ANALYZEd and a
 * CHECKPOINT is taken (as autovacuum and the checkpointer would have done
 * by then in a long-running database). pg_stat_statements is loaded but
 * only tracks during the accounting runs. --quick is the smoke run of
 * tools/test.sh: 2,000 jobs, one repetition, fewer samples.
 *
 * After its own lines, COMMAND (bench/run.sh: apscheduler_pg_bench.py) runs
 * against the same server, with its URL in APSCHED_PG_URL and its libpq
 * key=value string in APSCHED_PG_CONNINFO; its output follows on stdout and
 * its exit status is bench_pg's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* before the first system header: memfd_create, pipe2, pg_server.h */
#endif
#define BENCH_NAME "bench_pg"
#include "bench_util.h"
#include "bench_waits.h"
#include "bench_wakeup.h"
#include "../tests/pg_server.h"
#include "../src/stores/common/store_common.h" /* STORE_JOB_COLUMNS: the store's claim */

#include <apsched.h>
#include <apsched_pg.h>

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#define IMPL "libapsched"
#define FUNC "bench_pg.job"
#define CLAIM_BATCH 256 /* the scheduler's claimed batch (src/dispatch.c) */
#define MAX_REPS 25
#define MAX_PROCS 8
#define MARK_MAX 4096 /* jobs whose start time is kept (failover, wake-up) */
#define FAILOVER_JOBS 16

/* ------------------------------------------------------------- helpers */

static void check(int rc, const char *what) {
  if (rc != APSCHED_OK)
    fail("%s failed: %s (%d): %s", what, apsched_strerror(rc), rc, apsched_last_error());
}

/* ------------------------------------------- shared by the processes */

/* One mapping of a memfd, shared by this process and its children. */
typedef struct shared {
  atomic_long runs, dups, target;
  atomic_llong done_ns;              /* now_ns() when runs reached target */
  atomic_int blocked;                /* the failover victim is inside its first run */
  atomic_llong start_ns[MARK_MAX];   /* the first start of job i */
  atomic_int start_pid[MARK_MAX];    /* ... in which process */
  atomic_uchar seen[];               /* runs of job i (up to the job count) */
} shared;

static shared *sh;
static size_t sh_jobs; /* entries of seen */
static int sh_fd = -1;

static void shared_map(int fd, size_t jobs) {
  size_t size = sizeof(shared) + jobs;
  if (fd < 0) {
    fd = memfd_create("bench_pg", 0); /* inherited by the children */
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) fail("memfd: %s", strerror(errno));
  }
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) fail("mmap: %s", strerror(errno));
  sh = p;
  sh_jobs = jobs;
  sh_fd = fd;
}

static void shared_reset(long target) {
  atomic_store(&sh->runs, 0);
  atomic_store(&sh->dups, 0);
  atomic_store(&sh->target, target);
  atomic_store(&sh->done_ns, 0);
  atomic_store(&sh->blocked, 0);
  for (size_t i = 0; i < MARK_MAX; i++) {
    atomic_store(&sh->start_ns[i], 0);
    atomic_store(&sh->start_pid[i], 0);
  }
  memset((void *)sh->seen, 0, sh_jobs);
}

/* Counts one start of job idx (n starts at once for the raw probe). */
static void count_runs(long n) {
  long total = atomic_fetch_add(&sh->runs, n) + n;
  long target = atomic_load(&sh->target);
  if (total >= target && total - n < target) atomic_store(&sh->done_ns, now_ns());
}

/* ---------------------------------------------------------- the job */

static bool g_block_first; /* the failover victim: its first run never ends */

/* The argument: the job's index, 4 bytes little-endian. */
static void put_index(unsigned char b[4], uint32_t i) {
  for (int k = 0; k < 4; k++) b[k] = (unsigned char)(i >> (8 * k));
}

static int bench_job(apsched_run_ctx *run) {
  int64_t t = now_ns();
  size_t len = 0;
  const unsigned char *a = apsched_run_arg_bytes(run, &len);
  if (!a || len != 4) {
    apsched_run_set_error(run, "the index argument did not come back from the store");
    return 1;
  }
  uint32_t idx = (uint32_t)a[0] | (uint32_t)a[1] << 8 | (uint32_t)a[2] << 16 | (uint32_t)a[3] << 24;
  if (idx < MARK_MAX) {
    long long zero = 0;
    if (atomic_compare_exchange_strong(&sh->start_ns[idx], &zero, t))
      atomic_store(&sh->start_pid[idx], (int)getpid());
  }
  if (idx < sh_jobs && atomic_fetch_add(&sh->seen[idx], 1) != 0) atomic_fetch_add(&sh->dups, 1);
  count_runs(1);
  if (g_block_first && !atomic_exchange(&sh->blocked, 1))
    for (;;) pause(); /* until SIGKILL: the runs claimed with this one stay unstarted */
  return 0;
}

/* ------------------------------------------------------- the store */

static apsched_jobstore *store_on(const char *schema, const char *name) {
  apsched_pg_options o = {.conninfo = pg_server_conninfo(), .schema = schema,
                          .scheduler_name = name};
  apsched_jobstore *st;
  char err[512] = "";
  if (apsched_pg_store_create(&o, &st, err, sizeof err) != APSCHED_OK)
    fail("apsched_pg_store_create (schema %s): %s", schema, err);
  return st;
}

/* A store on the schema (ud), for bench_waits. */
static apsched_jobstore *store_for_waits(void *ud) { return store_on(ud, "bench_pg-waits"); }

/* A hosted scheduler with the inline executor on the schema, paused: a
 * blocking store's own thread claims and runs its due jobs once resumed. */
static apsched_scheduler *scheduler_on(const char *schema, const char *name) {
  apsched_scheduler *s;
  check(apsched_create(&(apsched_config){.timezone = "UTC"}, &s), "apsched_create");
  check(apsched_add_jobstore(s, store_on(schema, name), "default"), "apsched_add_jobstore");
  apsched_executor *ex;
  check(apsched_inline_executor_create(&ex), "apsched_inline_executor_create");
  check(apsched_add_executor(s, ex, "default"), "apsched_add_executor");
  check(apsched_start_hosted(s, true), "apsched_start_hosted");
  return s;
}

/* n jobs due a second ago (hourly interval, at most once, any lateness),
 * indices 0..n-1, in batches of 1000 (one transaction each). */
static void add_due_jobs(const char *schema, size_t n) {
  apsched_scheduler *s = scheduler_on(schema, "bench_pg-adder");
  apsched_time_t due = apsched_now() - APSCHED_SEC;
  apsched_trigger *t;
  char err[256] = "";
  if (apsched_trigger_interval(&(apsched_interval_options){.hours = 1, .start_date = due}, &t, err,
                               sizeof err) != APSCHED_OK)
    fail("interval trigger: %s", err);
  enum { ADD_BATCH = 1000 };
  static apsched_job_options opts[ADD_BATCH];
  static unsigned char args[ADD_BATCH][4];
  for (size_t done = 0; done < n;) {
    size_t k = n - done < ADD_BATCH ? n - done : ADD_BATCH;
    for (size_t j = 0; j < k; j++) {
      put_index(args[j], (uint32_t)(done + j));
      opts[j] = (apsched_job_options){.func_name = FUNC, .trigger = t, .next_run_time = due,
                                      .misfire_grace_time = APSCHED_GRACE_UNLIMITED,
                                      .arg_bytes = args[j], .arg_len = 4};
    }
    check(apsched_add_jobs(s, opts, k, NULL), "apsched_add_jobs");
    done += k;
  }
  apsched_trigger_free(t);
  apsched_free(s);
}

/* ------------------------------------------- the server, through libpq */

static PGconn *admin;

static PGresult *sql_ok(const char *sql) {
  PGresult *res = PQexec(admin, sql);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail("%s: %s", sql, PQerrorMessage(admin));
  return res;
}

static void sql_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sql_run(const char *fmt, ...) {
  char sql[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  PQclear(sql_ok(sql));
}

static char *sql_text(const char *sql, char *buf, size_t len) {
  PGresult *res = sql_ok(sql);
  snprintf(buf, len, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
  PQclear(res);
  return buf;
}

/* Makes the jobs table's statistics and the data files current before a
 * measured phase. */
static void settle(const char *schema) {
  sql_run("ANALYZE \"%s\".jobs", schema);
  sql_run("CHECKPOINT");
}

static void drop_schema(const char *schema) { sql_run("DROP SCHEMA \"%s\" CASCADE", schema); }

static void pgss_track(const char *level) {
  sql_run("ALTER SYSTEM SET pg_stat_statements.track = '%s'", level);
  sql_run("SELECT pg_reload_conf()");
  sleep_us(200000); /* the postmaster rereads its configuration: new sessions get it */
}

static int schema_seq;

static void new_schema(char *buf, size_t len, const char *stem) {
  snprintf(buf, len, "bench_%s_%d", stem, schema_seq++);
}

/* ------------------------------------------------------- child processes */

typedef struct child {
  pid_t pid;
  int go; /* write end: one byte resumes it, closing it ends it */
} child;

static int ready_pipe[2] = {-1, -1};
static size_t g_jobs;

/* Starts this program as --child ROLE (sched, victim or raw) on schema. */
static child spawn(const char *role, const char *schema) {
  if (ready_pipe[0] < 0 && pipe2(ready_pipe, O_CLOEXEC) != 0) fail("pipe: %s", strerror(errno));
  int go[2];
  if (pipe2(go, O_CLOEXEC) != 0) fail("pipe: %s", strerror(errno));
  char a_fd[16], a_jobs[24], a_ready[16], a_go[16];
  snprintf(a_fd, sizeof a_fd, "%d", sh_fd);
  snprintf(a_jobs, sizeof a_jobs, "%zu", g_jobs);
  snprintf(a_ready, sizeof a_ready, "%d", ready_pipe[1]);
  snprintf(a_go, sizeof a_go, "%d", go[0]);
  char *argv[] = {(char *)"bench_pg", (char *)"--child", (char *)role,
                  (char *)pg_server_conninfo(), (char *)schema, a_fd, a_jobs, a_ready, a_go, NULL};
  pid_t pid = fork();
  if (pid < 0) fail("fork: %s", strerror(errno));
  if (pid == 0) {
    /* Only its own pipe ends (and the memfd) go across exec. */
    fcntl(ready_pipe[1], F_SETFD, 0);
    fcntl(go[0], F_SETFD, 0);
    fcntl(sh_fd, F_SETFD, 0);
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  close(go[0]);
  return (child){pid, go[1]};
}

static int wait_exit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Waits for n children to say they are ready (60 s at most). */
static void await_ready(size_t n) {
  for (size_t got = 0; got < n;) {
    struct pollfd p = {.fd = ready_pipe[0], .events = POLLIN};
    if (poll(&p, 1, 60000) <= 0) fail("%zu of %zu child processes did not get ready", n - got, n);
    char buf[MAX_PROCS];
    ssize_t r = read(ready_pipe[0], buf, n - got < sizeof buf ? n - got : sizeof buf);
    if (r > 0) got += (size_t)r;
  }
}

static void go(const child *c) {
  if (write(c->go, "G", 1) != 1) fail("cannot resume child %d", (int)c->pid);
}

/* Ends the child (EOF on its pipe) and waits for it. */
static void finish(child *c) {
  close(c->go);
  int rc = wait_exit(c->pid);
  if (rc != 0) fail("child %d exited with %d", (int)c->pid, rc);
}

/* Waits until the shared run count reaches its target; false after
 * timeout_s. */
static bool await_runs(double timeout_s) {
  int64_t limit = now_ns() + (int64_t)(timeout_s * 1e9);
  while (atomic_load(&sh->runs) < atomic_load(&sh->target)) {
    if (now_ns() > limit) return false;
    sleep_us(1000);
  }
  return true;
}

/* The store's claim statement (Q_DUE of src/stores/pg/store.c, for the
 * schema), and one statement advancing what it claimed by an hour and
 * recording a run of each at the time it was due ($2 the owner, $3 the
 * claim's token). */
static void raw_sql(const char *schema, char *claim, size_t claim_len, char *advance,
                    size_t advance_len) {
  snprintf(claim, claim_len,
           "SELECT " STORE_JOB_COLUMNS " FROM \"%s\".jobs WHERE next_run_time <= $1 AND NOT paused "
           "ORDER BY next_run_time, id LIMIT $2 FOR UPDATE SKIP LOCKED",
           schema);
  snprintf(advance, advance_len,
           "WITH adv AS (UPDATE \"%s\".jobs SET next_run_time = next_run_time + 3600000000,"
           " trigger_time = trigger_time + 3600000000 WHERE id = ANY ($1::text[])"
           " RETURNING id, next_run_time - 3600000000 AS t, name, func, executor, arg,"
           " max_instances, max_runtime_ms, delivery)"
           " INSERT INTO \"%s\".runs (job_id, scheduled_time, owner, token, attempt, name, func,"
           " executor, arg, max_instances, max_runtime_ms, delivery, started_at)"
           " SELECT id, t, $2, $3::bigint, 1, name, func, executor, arg, max_instances,"
           " max_runtime_ms, delivery, now() FROM adv",
           schema, schema);
}

static void raw_prepare(PGconn *c, const char *name, const char *sql, int n) {
  PGresult *res = PQprepare(c, name, sql, n, NULL);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) fail("raw probe: %s: %s", sql, PQerrorMessage(c));
  PQclear(res);
}

static void raw_exec(PGconn *c, const char *sql) {
  PGresult *res = PQexec(c, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) fail("raw probe: %s: %s", sql, PQerrorMessage(c));
  PQclear(res);
}

/* The raw probe's loop: claim, advance, commit, until a claim finds nothing. */
static int raw_child(const char *schema, int ready, int go_fd) {
  PGconn *c = PQconnectdb(pg_server_conninfo());
  if (PQstatus(c) != CONNECTION_OK) fail("raw probe: %s", PQerrorMessage(c));
  char claim[512], advance[1024], owner[32], token[24];
  raw_sql(schema, claim, sizeof claim, advance, sizeof advance);
  raw_prepare(c, "claim", claim, 2);
  raw_prepare(c, "advance", advance, 3);
  snprintf(owner, sizeof owner, "raw-%d", (int)getpid());
  int64_t claims = 0;
  char *ids = malloc(CLAIM_BATCH * 80 + 3);
  if (!ids) fail("out of memory");
  char b;
  if (write(ready, "R", 1) != 1 || read(go_fd, &b, 1) != 1) return 2;
  for (;;) {
    raw_exec(c, "BEGIN");
    char at[32], limit[16];
    snprintf(at, sizeof at, "%" PRId64, apsched_now());
    snprintf(limit, sizeof limit, "%d", CLAIM_BATCH);
    const char *params[2] = {at, limit};
    PGresult *res = PQexecPrepared(c, "claim", 2, params, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) fail("raw probe: claim: %s", PQerrorMessage(c));
    int n = PQntuples(res);
    if (n == 0) {
      PQclear(res);
      raw_exec(c, "ROLLBACK");
      break;
    }
    size_t k = 0;
    ids[k++] = '{';
    for (int row = 0; row < n; row++)
      k += (size_t)sprintf(ids + k, "%s\"%.64s\"", row ? "," : "", PQgetvalue(res, row, COL_ID));
    ids[k++] = '}';
    ids[k] = '\0';
    PQclear(res);
    /* A token per claim, unique across the probe's processes. */
    snprintf(token, sizeof token, "%" PRId64, (int64_t)getpid() * 1000000 + ++claims);
    const char *p3[3] = {ids, owner, token};
    res = PQexecPrepared(c, "advance", 3, p3, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) fail("raw probe: advance: %s", PQerrorMessage(c));
    PQclear(res);
    raw_exec(c, "COMMIT");
    count_runs(n);
  }
  free(ids);
  PQfinish(c);
  while (read(go_fd, &b, 1) > 0) {
  }
  return 0;
}

/* --child ROLE CONNINFO SCHEMA SHM_FD JOBS READY_FD GO_FD */
static int child_main(char **argv) {
  const char *role = argv[2], *schema = argv[4];
  shared_map(atoi(argv[5]), (size_t)atoll(argv[6]));
  int ready = atoi(argv[7]), go_fd = atoi(argv[8]);
  /* pg_server_conninfo() for this process: the server is the parent's. */
  snprintf(pg_srv.conninfo, sizeof pg_srv.conninfo, "%s", argv[3]);
  if (strcmp(role, "raw") == 0) return raw_child(schema, ready, go_fd);
  g_block_first = strcmp(role, "victim") == 0;
  check(apsched_register_func(FUNC, bench_job), "apsched_register_func");
  apsched_scheduler *s = scheduler_on(schema, role);
  char b;
  if (write(ready, "R", 1) != 1 || read(go_fd, &b, 1) != 1) return 2;
  check(apsched_resume(s), "apsched_resume");
  while (read(go_fd, &b, 1) > 0) {
  }
  apsched_free(s);
  return 0;
}

/* --------------------------------------------------------- dispatch */

typedef struct counters {
  double commits, rollbacks, wal_syncs, statements, claims, claimed;
} counters;

static double num(const PGresult *res, int col) {
  return PQgetisnull(res, 0, col) ? 0 : atof(PQgetvalue(res, 0, col));
}

static counters read_counters(void) {
  PGresult *res = sql_ok(
      "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),"
      " (SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()),"
      " (SELECT wal_sync FROM pg_stat_wal)");
  counters c = {.commits = num(res, 0), .rollbacks = num(res, 1), .wal_syncs = num(res, 2)};
  PQclear(res);
  /* Statements of this program's own connection (these queries) left out. */
  res = sql_ok("SELECT sum(calls), sum(calls) FILTER (WHERE query LIKE '%FOR UPDATE SKIP LOCKED%'"
               " AND query LIKE '%next_run_time <=%'), sum(rows) FILTER (WHERE query LIKE"
               " '%FOR UPDATE SKIP LOCKED%' AND query LIKE '%next_run_time <=%')"
               " FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%'"
               " AND query NOT LIKE 'ANALYZE%' AND query NOT LIKE 'CHECKPOINT%'");
  c.statements = num(res, 0);
  c.claims = num(res, 1);
  c.claimed = num(res, 2);
  PQclear(res);
  return c;
}

/* The statements of the accounting run by calls, as a JSON array. */
static void statements_json(double batches, char *out, size_t len) {
  PGresult *res = sql_ok("SELECT calls, mean_exec_time * 1000, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
                         " FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%'"
                         " AND query NOT LIKE 'ANALYZE%' AND query NOT LIKE 'CHECKPOINT%'"
                         " ORDER BY calls DESC LIMIT 20");
  size_t k = (size_t)snprintf(out, len, "[");
  for (int row = 0; row < PQntuples(res) && k + 300 < len; row++) {
    char text[256];
    json_text(text, sizeof text, PQgetvalue(res, row, 2));
    k += (size_t)snprintf(out + k, len - k, "%s{\"per_batch\":%.2f,\"calls\":%s,\"mean_us\":%.0f,\"sql\":\"%s\"}",
                          row ? "," : "", atof(PQgetvalue(res, row, 0)) / batches,
                          PQgetvalue(res, row, 0), atof(PQgetvalue(res, row, 1)), text);
  }
  snprintf(out + k, len - k, "]");
  PQclear(res);
}

typedef enum { KIND_STORE, KIND_RAW } run_kind;

/* One repetition: n due jobs in a fresh schema, procs processes claim and
 * run them. Returns runs/s; with accounting, prints pg_batch_accounting. */
static double dispatch_rep(run_kind kind, size_t procs, size_t n, bool accounting) {
  char schema[48];
  new_schema(schema, sizeof schema, kind == KIND_RAW ? "raw" : "store");
  add_due_jobs(schema, n);
  settle(schema);
  shared_reset((long)n);
  child kids[MAX_PROCS];
  for (size_t i = 0; i < procs; i++) kids[i] = spawn(kind == KIND_RAW ? "raw" : "sched", schema);
  await_ready(procs);
  counters before = {0};
  if (accounting) {
    sql_run("SELECT pg_stat_statements_reset()");
    before = read_counters();
  }
  int64_t t0 = now_ns();
  for (size_t i = 0; i < procs; i++) go(&kids[i]);
  if (!await_runs(900))
    fail("%s, %zu processes: only %ld of %zu runs after 900 s", schema, procs,
         atomic_load(&sh->runs), n);
  double rate = (double)n / (double)(atomic_load(&sh->done_ns) - t0) * 1e9;
  for (size_t i = 0; i < procs; i++) finish(&kids[i]); /* their statistics are flushed as they exit */
  if (atomic_load(&sh->dups) != 0 || atomic_load(&sh->runs) != (long)n)
    fail("%s: %ld runs (%ld of them repeated) for %zu due jobs", schema, atomic_load(&sh->runs),
         atomic_load(&sh->dups), n);
  if (accounting) {
    counters after = read_counters();
    double claimed = after.claimed - before.claimed;
    double batches = claimed > 0 ? (double)(((long)claimed + CLAIM_BATCH - 1) / CLAIM_BATCH) : 1;
    static char list[8192];
    statements_json(batches, list, sizeof list);
    printf("{\"impl\":\"%s\",\"bench\":\"pg_batch_accounting\",\"procs\":%zu,\"jobs\":%zu,"
           "\"batch\":%d,\"batches\":%.0f,\"claim_calls\":%.0f,\"claimed_rows\":%.0f,"
           "\"commits_per_batch\":%.2f,\"rollbacks_per_batch\":%.2f,"
           "\"wal_syncs_per_batch\":%.2f,\"statements_per_batch\":%.1f,\"runs_per_sec\":%.0f,"
           "\"source\":\"pg_stat_database.xact_commit, pg_stat_wal.wal_sync, "
           "pg_stat_statements\",\"statements\":%s,\"loadavg\":%s}\n",
           kind == KIND_RAW ? "postgresql" : IMPL, procs, n, CLAIM_BATCH, batches,
           after.claims - before.claims, claimed,
           (after.commits - before.commits) / batches,
           (after.rollbacks - before.rollbacks) / batches,
           (after.wal_syncs - before.wal_syncs) / batches,
           (after.statements - before.statements) / batches, rate, list, loadavg());
    fflush(stdout);
  }
  drop_schema(schema);
  return rate;
}

static void emit_rate(const char *impl, const char *bench, size_t procs, size_t n, double *rates,
                      size_t reps, stats *out) {
  stats st = summarize(rates, reps);
  printf("{\"impl\":\"%s\",\"bench\":\"%s\",\"procs\":%zu,\"jobs\":%zu,\"reps\":%zu,"
         "\"unit\":\"runs\",\"batch\":%d,\"per_sec\":%.0f,\"per_sec_min\":%.0f,"
         "\"per_sec_max\":%.0f,\"executor\":\"inline\",\"loadavg\":%s}\n",
         impl, bench, procs, n, reps, CLAIM_BATCH, st.median, st.min, st.max, loadavg());
  fflush(stdout);
  if (out) *out = st;
}

/* ------------------------------------------------------------- failover */

/* Repetitions of: victim claims FAILOVER_JOBS and blocks in the first run,
 * a survivor waits, the victim is killed. */
static void bench_failover(size_t reps) {
  double first[MAX_REPS], all[MAX_REPS];
  uint64_t rng = 0x2545f4914f6cdd1dull;
  for (size_t r = 0; r < reps; r++) {
    char schema[48];
    new_schema(schema, sizeof schema, "failover");
    add_due_jobs(schema, FAILOVER_JOBS);
    settle(schema);
    shared_reset(LONG_MAX);
    child victim = spawn("victim", schema);
    await_ready(1);
    go(&victim);
    for (int64_t limit = now_ns() + 30000000000; !atomic_load(&sh->blocked);) {
      if (now_ns() > limit) fail("%s", "failover: the victim did not start its first run");
      sleep_us(1000);
    }
    /* The victim's first start recorded the others' ahead (a start group,
     * src/stores/pg/runs.c); its heartbeat thread takes them back within
     * the window (250 ms): only then are they claimed and not started. */
    char q[256], v[32];
    snprintf(q, sizeof q, "SELECT count(*) FROM \"%s\".runs WHERE started_at IS NULL", schema);
    for (int64_t limit = now_ns() + 10000000000; atoi(sql_text(q, v, sizeof v)) != FAILOVER_JOBS - 1;) {
      if (now_ns() > limit) fail("%s", "failover: the victim's runs recorded ahead were not taken back");
      sleep_us(1000);
    }
    child survivor = spawn("sched", schema);
    await_ready(1);
    go(&survivor);
    /* Its first pass found nothing due: it sleeps up to max_wait (1 s)
     * between passes. The kill comes at a random point of that period. */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    sleep_us(300000 + (int64_t)(rng % 1000000));
    if (atomic_load(&sh->runs) != 1) fail("%s", "failover: the survivor ran a job before the kill");
    int64_t t_kill = now_ns();
    kill(victim.pid, SIGKILL);
    wait_exit(victim.pid);
    close(victim.go);
    int64_t limit = now_ns() + 30000000000;
    while (atomic_load(&sh->runs) < FAILOVER_JOBS) {
      if (now_ns() > limit)
        fail("failover: %ld of %d runs after 30 s", atomic_load(&sh->runs), FAILOVER_JOBS);
      sleep_us(200);
    }
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < FAILOVER_JOBS; i++)
      if (atomic_load(&sh->start_pid[i]) == (int)survivor.pid) {
        int64_t t = atomic_load(&sh->start_ns[i]);
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
      }
    first[r] = (double)(lo - t_kill) / 1e6;
    all[r] = (double)(hi - t_kill) / 1e6;
    finish(&survivor);
    drop_schema(schema);
  }
  stats f = summarize(first, reps), a = summarize(all, reps);
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"pg_failover\",\"reps\":%zu,\"claimed_unstarted\":%d,"
         "\"lease_ms\":5000,\"max_wait_ms\":1000,\"first_ms\":%.1f,\"first_ms_min\":%.1f,"
         "\"first_ms_max\":%.1f,\"all_ms\":%.1f,\"all_ms_min\":%.1f,\"all_ms_max\":%.1f,"
         "\"loadavg\":%s}\n",
         reps, FAILOVER_JOBS - 1, f.median, f.min, f.max, a.median, a.min, a.max, loadavg());
  fflush(stdout);
}

/* -------------------------------------------------------------- wake-up */

static int64_t pg_started_ns(size_t i) { return atomic_load(&sh->start_ns[i]); }

static void bench_wakeup(size_t samples) {
  char schema[48];
  new_schema(schema, sizeof schema, "wakeup");
  apsched_scheduler *a = scheduler_on(schema, "bench_pg-A"); /* makes the schema */
  shared_reset(LONG_MAX);
  child b = spawn("sched", schema);
  await_ready(1);
  go(&b);
  sleep_us(300000);
  bench_wakeup_samples("pg", a, FUNC, samples, NULL, pg_started_ns);
  finish(&b);
  apsched_free(a);
  drop_schema(schema);
}

/* ----------------------------------------------------------------- main */

static void emit_server(void) {
  char version[64], fsync[8], sync_commit[8], fpw[8], method[24], buffers[16];
  printf("{\"impl\":\"postgresql\",\"bench\":\"pg_server\",\"version\":\"%s\",\"fsync\":\"%s\","
         "\"synchronous_commit\":\"%s\",\"full_page_writes\":\"%s\",\"wal_sync_method\":\"%s\","
         "\"shared_buffers\":\"%s\",\"socket\":\"unix\",\"loadavg\":%s}\n",
         sql_text("SHOW server_version", version, sizeof version),
         sql_text("SHOW fsync", fsync, sizeof fsync),
         sql_text("SHOW synchronous_commit", sync_commit, sizeof sync_commit),
         sql_text("SHOW full_page_writes", fpw, sizeof fpw),
         sql_text("SHOW wal_sync_method", method, sizeof method),
         sql_text("SHOW shared_buffers", buffers, sizeof buffers), loadavg());
  fflush(stdout);
}

static bool parse_count(const char *text, size_t *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end); /* accepts 1e5 */
  if (errno || end == text || *end || v < 1 || v > 1e7) return false;
  *out = (size_t)v;
  return true;
}

static _Noreturn void usage(void) {
  fprintf(stderr, "usage: bench_pg [--quick] [--only=dispatch,raw,accounting,failover,wakeup,waits]\n"
                  "                [--jobs=N] [--reps=N] [--procs=1,2,3] [--samples=N]\n"
                  "                [-- COMMAND [ARG...]]\n");
  exit(2);
}

/* Runs COMMAND against the server; its exit status. */
static int run_command(char **cmd) {
  setenv("APSCHED_PG_URL", pg_server_url(), 1);
  setenv("APSCHED_PG_CONNINFO", pg_server_conninfo(), 1);
  pid_t pid = fork();
  if (pid < 0) fail("fork: %s", strerror(errno));
  if (pid == 0) {
    execvp(cmd[0], cmd);
    fprintf(stderr, "bench_pg: cannot run %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
  }
  return wait_exit(pid);
}

int main(int argc, char **argv) {
  if (argc == 9 && strcmp(argv[1], "--child") == 0) return child_main(argv);
  size_t jobs = 100000, reps = 3, samples = 500, failover_reps = 5, nprocs = 3;
  size_t procs[MAX_PROCS] = {1, 2, 3};
  bool run_dispatch = true, run_raw = true, run_accounting = true, run_failover = true,
       run_wakeup = true, run_waits = true;
  char **command = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    size_t v;
    if (strcmp(a, "--") == 0) {
      if (i + 1 >= argc) usage();
      command = argv + i + 1;
      break;
    } else if (strcmp(a, "--quick") == 0) {
      jobs = 2000;
      reps = 1;
      samples = 50;
      failover_reps = 2;
    } else if (strncmp(a, "--only=", 7) == 0) {
      const char *list = a + 7;
      run_dispatch = strstr(list, "dispatch") != NULL;
      run_raw = strstr(list, "raw") != NULL;
      run_accounting = strstr(list, "accounting") != NULL;
      run_failover = strstr(list, "failover") != NULL;
      run_wakeup = strstr(list, "wakeup") != NULL;
      run_waits = strstr(list, "waits") != NULL;
      if (!run_dispatch && !run_raw && !run_accounting && !run_failover && !run_wakeup && !run_waits)
        usage();
    } else if (strncmp(a, "--jobs=", 7) == 0 && parse_count(a + 7, &v)) {
      jobs = v;
    } else if (strncmp(a, "--reps=", 7) == 0 && parse_count(a + 7, &v) && v <= MAX_REPS) {
      reps = failover_reps = v;
    } else if (strncmp(a, "--samples=", 10) == 0 && parse_count(a + 10, &v) && v <= MARK_MAX) {
      samples = v;
    } else if (strncmp(a, "--procs=", 8) == 0) {
      nprocs = 0;
      for (char *p = (char *)a + 8, *end; *p; p = *end == ',' ? end + 1 : end) {
        long k = strtol(p, &end, 10);
        if (end == p || k < 1 || k > MAX_PROCS || nprocs == MAX_PROCS || (*end && *end != ','))
          usage();
        procs[nprocs++] = (size_t)k;
      }
      if (nprocs == 0) usage();
    } else {
      usage();
    }
  }

  pg_server_durable("pg_stat_statements");
  if (pg_server_start() != 0) fail("cannot start a PostgreSQL server: %s", pg_srv.why);
  admin = pg_server_connect();
  fcntl(PQsocket(admin), F_SETFD, FD_CLOEXEC);
  PQclear(sql_ok("SET client_min_messages = warning"));
  sql_run("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  pgss_track("none");
  g_jobs = jobs > FAILOVER_JOBS ? jobs : FAILOVER_JOBS;
  shared_map(-1, g_jobs);
  check(apsched_register_func(FUNC, bench_job), "apsched_register_func");
  emit_server();

  stats store[MAX_PROCS] = {{0}}, raw[MAX_PROCS] = {{0}};
  for (size_t p = 0; p < nprocs; p++) {
    double rates[MAX_REPS];
    if (run_dispatch) {
      for (size_t r = 0; r < reps; r++) rates[r] = dispatch_rep(KIND_STORE, procs[p], jobs, false);
      emit_rate(IMPL, "pg_dispatch", procs[p], jobs, rates, reps, &store[p]);
    }
    if (run_raw) {
      for (size_t r = 0; r < reps; r++) rates[r] = dispatch_rep(KIND_RAW, procs[p], jobs, false);
      emit_rate("postgresql", "pg_raw_claim", procs[p], jobs, rates, reps, &raw[p]);
    }
    if (run_dispatch && run_raw) {
      printf("{\"impl\":\"" IMPL "\",\"bench\":\"pg_store_vs_raw\",\"procs\":%zu,\"jobs\":%zu,"
             "\"batch\":%d,\"ratio\":%.3f,\"loadavg\":%s}\n",
             procs[p], jobs, CLAIM_BATCH, store[p].median / raw[p].median, loadavg());
      fflush(stdout);
    }
  }
  if (run_accounting) {
    pgss_track("top");
    size_t most = 1;
    for (size_t p = 0; p < nprocs; p++) most = procs[p] > most ? procs[p] : most;
    /* The raw probe's too: its statements' times next to the store's. */
    for (run_kind kind = KIND_STORE; kind <= KIND_RAW; kind++) {
      dispatch_rep(kind, 1, jobs, true);
      if (most > 1) dispatch_rep(kind, most, jobs, true);
    }
    pgss_track("none");
  }
  if (run_failover) bench_failover(failover_reps);
  if (run_wakeup) bench_wakeup(samples);
  if (run_waits) {
    char schema[48];
    new_schema(schema, sizeof schema, "waits");
    bench_waits("pg", store_for_waits, schema, samples);
    drop_schema(schema);
  }
  PQfinish(admin);
  return command ? run_command(command) : 0;
}
