/* SQLite job store benchmark (libapsched-sqlite), one JSON object per line,
 * each for durability FULL and NORMAL:
 *
 *   sqlite_add             adds/s, one apsched_add_job per call (interval
 *                          job, function registered by name, a 16-byte
 *                          argument, generated id) into a fresh file, for
 *                          --seconds per repetition;
 *   sqlite_add_batch       jobs/s through apsched_add_jobs, 10^5 jobs in
 *                          batches of 1000, into a fresh file;
 *   sqlite_bytes_per_job   file bytes per job of that file at 10^5 jobs
 *                          (database + WAL after a checkpoint);
 *   sqlite_dispatch        runs/s when 10^5 jobs are due at once (added in
 *                          batches with next_run_time in the past), through
 *                          the inline executor, from resume until the last
 *                          run;
 *   sqlite_dispatch_alo    the same with at-least-once jobs (a run record
 *                          per run, opened with the claim, closed after);
 *   sqlite_dispatch_history  the same (at most once) with a run history kept
 *                          (a history row per run);
 *   sqlite_raw_insert      the same machine and settings without libapsched:
 *   sqlite_raw_insert_batch  plain INSERTs of rows like sqlite_add's into a
 *                          table like the store's (same columns and index),
 *                          one per commit, and 1000 per commit, so the
 *                          figures above can be read as ratios.
 *
 *   bench_sqlite [--quick] [--only=add,batch,dispatch,raw]
 *                [--durability=full|normal] [--jobs=N] [--seconds=S]
 *                [--reps=N] [--dir=DIR]
 *
 * Throughputs are the median of --reps repetitions (default 3), each on a
 * fresh file, with min and max next to it ("per_sec", "per_sec_min",
 * "per_sec_max"); every line carries the load average when it was printed.
 * Files go to a temporary directory under --dir (default $TMPDIR or /tmp),
 * removed at exit. --quick is the smoke run of tools/test.sh: a few hundred
 * jobs, one repetition.
 *
 * The scheduler is started hosted and nobody calls apsched_process: the
 * SQLite store is a blocking store whose own thread claims and runs its
 * due jobs (the inline executor runs them there); the dispatch bench waits
 * for a condition variable signalled by the job that completes the count. */
#include <apsched.h>
#include <apsched_sqlite.h>
#include <sqlite3.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IMPL "libapsched"
#define TRIGGER_POOL 64
#define BATCH 1000
#define MAX_REPS 25
#define ARG_LEN 16
#define FUNC_NOP "bench_sqlite.nop"
#define FUNC_COUNT "bench_sqlite.count"

static const unsigned char job_arg[ARG_LEN] = "bench-arg-16byte";

/* ------------------------------------------------------------- helpers */

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static _Noreturn void fail(const char *fmt, const char *detail) {
  fprintf(stderr, "bench_sqlite: ");
  fprintf(stderr, fmt, detail);
  fputc('\n', stderr);
  exit(1);
}

static _Noreturn void die(const char *what, int rc) {
  fprintf(stderr, "bench_sqlite: %s failed: %s (%d): %s\n", what, apsched_strerror(rc), rc,
          apsched_last_error());
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) fail("%s", "out of memory");
  return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t bound) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (rng_state * 0x2545f4914f6cdd1dull) % bound;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct stats {
  double min, median, max;
} stats;

static stats summarize(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return (stats){v[0], med, v[n - 1]};
}

/* The 1, 5 and 15 minute load averages, as JSON text. */
static const char *loadavg(void) {
  static char text[64];
  double l[3] = {-1, -1, -1};
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3) l[0] = l[1] = l[2] = -1;
    fclose(f);
  }
  snprintf(text, sizeof text, "[%.2f,%.2f,%.2f]", l[0], l[1], l[2]);
  return text;
}

static const char *durability_name(apsched_sqlite_durability d) {
  return d == APSCHED_SQLITE_FULL ? "FULL" : "NORMAL";
}

/* One throughput line: median, min and max over the repetitions. */
static void emit_rate(const char *impl, const char *bench, apsched_sqlite_durability d,
                      const char *unit, size_t jobs, double *rates, size_t reps,
                      const char *extra) {
  stats st = summarize(rates, reps);
  printf("{\"impl\":\"%s\",\"bench\":\"%s\",\"durability\":\"%s\",\"jobs\":%zu,\"reps\":%zu,"
         "\"unit\":\"%s\",\"per_sec\":%.0f,\"per_sec_min\":%.0f,\"per_sec_max\":%.0f%s,"
         "\"loadavg\":%s}\n",
         impl, bench, durability_name(d), jobs, reps, unit, st.median, st.min, st.max,
         extra ? extra : "", loadavg());
  fflush(stdout);
}

/* ------------------------------------------------------- files on disk */

static char work_dir[PATH_MAX];
static char db_path[PATH_MAX + 32];

static void remove_db(void) {
  static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", "-lock"};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    char p[sizeof db_path + 16];
    snprintf(p, sizeof p, "%s%s", db_path, suffixes[i]);
    if (unlink(p) != 0 && errno != ENOENT) fail("cannot remove %s", p);
  }
}

static void cleanup(void) {
  if (!work_dir[0]) return;
  remove_db();
  rmdir(work_dir);
}

static void make_work_dir(const char *parent) {
  if (!parent) parent = getenv("TMPDIR");
  if (!parent || !*parent) parent = "/tmp";
  if (snprintf(work_dir, sizeof work_dir, "%s/bench_sqlite.XXXXXX", parent) >= (int)sizeof work_dir)
    fail("directory name too long: %s", parent);
  if (!mkdtemp(work_dir)) fail("cannot create a directory in %s", parent);
  snprintf(db_path, sizeof db_path, "%s/jobs.db", work_dir);
  atexit(cleanup);
}

static long long file_size(const char *suffix) {
  char p[sizeof db_path + 16];
  snprintf(p, sizeof p, "%s%s", db_path, suffix);
  struct stat sb;
  return stat(p, &sb) == 0 ? (long long)sb.st_size : 0;
}

/* ---------------------------------------------- run counting, by condition */

static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  atomic_long runs;
  atomic_long target;
  _Atomic double done_at; /* now_ns() when the target was reached */
} tally = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void tally_reset(long target) {
  pthread_mutex_lock(&tally.lock);
  atomic_store(&tally.runs, 0);
  atomic_store(&tally.done_at, 0.0);
  atomic_store(&tally.target, target);
  pthread_mutex_unlock(&tally.lock);
}

/* False after timeout_s seconds without reaching the target. */
static bool tally_wait(double timeout_s) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += (time_t)timeout_s + 1;
  pthread_mutex_lock(&tally.lock);
  bool ok = true;
  while (atomic_load(&tally.runs) < atomic_load(&tally.target))
    if (pthread_cond_timedwait(&tally.cond, &tally.lock, &deadline) == ETIMEDOUT) {
      ok = atomic_load(&tally.runs) >= atomic_load(&tally.target);
      break;
    }
  pthread_mutex_unlock(&tally.lock);
  return ok;
}

static int nop_job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

static int count_job(apsched_run_ctx *run) {
  size_t len = 0;
  if (!apsched_run_arg_bytes(run, &len) || len != ARG_LEN) {
    apsched_run_set_error(run, "the byte argument did not come back from the store");
    return 1; /* not counted: the wait times out and says so */
  }
  if (atomic_fetch_add(&tally.runs, 1) + 1 == atomic_load(&tally.target)) {
    pthread_mutex_lock(&tally.lock);
    atomic_store(&tally.done_at, now_ns());
    pthread_cond_broadcast(&tally.cond);
    pthread_mutex_unlock(&tally.lock);
  }
  return 0;
}

/* ------------------------------------------------------------ scheduler */

static apsched_trigger *interval_trigger(const apsched_interval_options *o) {
  apsched_trigger *t;
  char err[256] = "";
  if (apsched_trigger_interval(o, &t, err, sizeof err) != APSCHED_OK)
    fail("interval trigger: %s", err);
  return t;
}

/* A scheduler on a fresh database file with the inline executor, started
 * hosted (paused or not). */
static apsched_scheduler *sqlite_scheduler(apsched_sqlite_durability d, bool paused,
                                           int64_t history_retention) {
  remove_db();
  apsched_scheduler *s;
  int rc = apsched_create(&(apsched_config){.timezone = "UTC"}, &s);
  if (rc != APSCHED_OK) die("apsched_create", rc);
  apsched_jobstore *st;
  char err[512] = "";
  rc = apsched_sqlite_store_create(&(apsched_sqlite_options){.path = db_path, .durability = d,
                                                             .history_retention = history_retention},
                                   &st, err, sizeof err);
  if (rc != APSCHED_OK) fail("apsched_sqlite_store_create: %s", err);
  if ((rc = apsched_add_jobstore(s, st, "default")) != APSCHED_OK) die("apsched_add_jobstore", rc);
  apsched_executor *ex;
  if ((rc = apsched_inline_executor_create(&ex)) != APSCHED_OK)
    die("apsched_inline_executor_create", rc);
  if ((rc = apsched_add_executor(s, ex, "default")) != APSCHED_OK) die("apsched_add_executor", rc);
  if ((rc = apsched_start_hosted(s, paused)) != APSCHED_OK) die("apsched_start_hosted", rc);
  return s;
}

/* Intervals from a minute to a day: nothing comes due during the add benches. */
static apsched_trigger *pool[TRIGGER_POOL];
static int64_t pool_seconds[TRIGGER_POOL];

static apsched_job_options add_options(size_t i) {
  return (apsched_job_options){.func_name = FUNC_NOP,
                               .trigger = pool[i % TRIGGER_POOL],
                               .arg_bytes = job_arg,
                               .arg_len = ARG_LEN};
}

/* One repetition of sqlite_add: adds one per call until max_jobs are in or
 * seconds have passed. Returns adds/s; *added is the count. */
static double add_rep(apsched_sqlite_durability d, size_t max_jobs, double seconds, size_t *added) {
  apsched_scheduler *s = sqlite_scheduler(d, false, 0);
  size_t i = 0;
  double limit = seconds * 1e9, t0 = now_ns(), t1 = t0;
  while (i < max_jobs && t1 - t0 < limit) {
    apsched_job_options o = add_options(i);
    int rc = apsched_add_job(s, &o, NULL, 0);
    if (rc != APSCHED_OK) die("apsched_add_job", rc);
    i++;
    t1 = now_ns();
  }
  apsched_free(s);
  *added = i;
  return (double)i / (t1 - t0) * 1e9;
}

/* Adds n jobs in batches of BATCH; returns the ns it took. */
static double add_batches(apsched_scheduler *s, size_t n, apsched_job_options *opts,
                          apsched_job_options (*make)(size_t)) {
  double t0 = now_ns();
  for (size_t done = 0; done < n;) {
    size_t k = n - done < BATCH ? n - done : BATCH;
    for (size_t j = 0; j < k; j++) opts[j] = make(done + j);
    size_t failed = 0;
    int rc = apsched_add_jobs(s, opts, k, &failed);
    if (rc != APSCHED_OK) die("apsched_add_jobs", rc);
    done += k;
  }
  return now_ns() - t0;
}

/* Bytes on disk of the (closed) database: checkpointed, then db + WAL. */
static void emit_bytes(apsched_sqlite_durability d, size_t n) {
  sqlite3 *db;
  if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    fail("sqlite3_open_v2: %s", sqlite3_errmsg(db));
  char *err = NULL;
  if (sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, &err) != SQLITE_OK)
    fail("wal_checkpoint: %s", err);
  long long pages = 0, page_size = 0, freelist = 0;
  struct {
    const char *sql;
    long long *out;
  } q[] = {{"PRAGMA page_count", &pages},
           {"PRAGMA page_size", &page_size},
           {"PRAGMA freelist_count", &freelist}};
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, q[i].sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
      fail("%s", sqlite3_errmsg(db));
    *q[i].out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  long long db_bytes = file_size(""), wal_bytes = file_size("-wal");
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"sqlite_bytes_per_job\",\"durability\":\"%s\","
         "\"jobs\":%zu,\"bytes_per_job\":%.1f,\"db_bytes\":%lld,\"wal_bytes\":%lld,"
         "\"page_size\":%lld,\"page_count\":%lld,\"freelist_count\":%lld,\"loadavg\":%s}\n",
         durability_name(d), n, (double)(db_bytes + wal_bytes) / (double)n, db_bytes, wal_bytes,
         page_size, pages, freelist, loadavg());
  fflush(stdout);
}

static void bench_add(apsched_sqlite_durability d, size_t max_jobs, double seconds, size_t reps) {
  double rates[MAX_REPS];
  size_t total = 0;
  for (size_t r = 0; r < reps; r++) {
    size_t added = 0;
    rates[r] = add_rep(d, max_jobs, seconds, &added);
    total += added;
  }
  char extra[64];
  snprintf(extra, sizeof extra, ",\"seconds\":%.2f", seconds);
  emit_rate(IMPL, "sqlite_add", d, "adds", total / reps, rates, reps, extra);
}

/* sqlite_add_batch, then sqlite_bytes_per_job of the last repetition's file. */
static void bench_add_batch(apsched_sqlite_durability d, size_t n, size_t reps) {
  double rates[MAX_REPS];
  apsched_job_options *opts = xmalloc(BATCH * sizeof *opts);
  for (size_t r = 0; r < reps; r++) {
    apsched_scheduler *s = sqlite_scheduler(d, false, 0);
    rates[r] = (double)n / add_batches(s, n, opts, add_options) * 1e9;
    apsched_free(s);
  }
  free(opts);
  char extra[32];
  snprintf(extra, sizeof extra, ",\"batch\":%d", BATCH);
  emit_rate(IMPL, "sqlite_add_batch", d, "jobs", n, rates, reps, extra);
  emit_bytes(d, n);
}

/* Due jobs: an hourly interval started a second ago, run however late. */
static apsched_trigger *due_trigger;
static apsched_time_t due_time;
static apsched_delivery due_delivery;

static apsched_job_options due_options(size_t i) {
  (void)i;
  return (apsched_job_options){.func_name = FUNC_COUNT,
                               .trigger = due_trigger,
                               .next_run_time = due_time,
                               .misfire_grace_time = APSCHED_GRACE_UNLIMITED,
                               .arg_bytes = job_arg,
                               .arg_len = ARG_LEN,
                               .delivery = due_delivery};
}

/* The dispatch variants: plain, at-least-once jobs, with a run history. */
typedef enum dispatch_kind { DISPATCH_PLAIN, DISPATCH_ALO, DISPATCH_HISTORY } dispatch_kind;

static void bench_dispatch(apsched_sqlite_durability d, size_t n, size_t reps, dispatch_kind kind) {
  static const char *const names[] = {"sqlite_dispatch", "sqlite_dispatch_alo",
                                      "sqlite_dispatch_history"};
  due_delivery = kind == DISPATCH_ALO ? APSCHED_AT_LEAST_ONCE : APSCHED_AT_MOST_ONCE;
  double rates[MAX_REPS];
  apsched_job_options *opts = xmalloc(BATCH * sizeof *opts);
  for (size_t r = 0; r < reps; r++) {
    /* Paused while the jobs go in: the store's thread claims nothing yet. */
    apsched_scheduler *s =
        sqlite_scheduler(d, true, kind == DISPATCH_HISTORY ? APSCHED_SQLITE_HISTORY_FOREVER : 0);
    due_time = apsched_now() - APSCHED_SEC;
    due_trigger = interval_trigger(&(apsched_interval_options){.hours = 1, .start_date = due_time});
    add_batches(s, n, opts, due_options);
    apsched_trigger_free(due_trigger);
    tally_reset((long)n);
    double t0 = now_ns();
    int rc = apsched_resume(s);
    if (rc != APSCHED_OK) die("apsched_resume", rc);
    if (!tally_wait(600)) {
      fprintf(stderr, "bench_sqlite: dispatch: only %ld of %zu runs after 600 s\n",
              atomic_load(&tally.runs), n);
      exit(1);
    }
    rates[r] = (double)n / (atomic_load(&tally.done_at) - t0) * 1e9;
    apsched_free(s);
    if (atomic_load(&tally.runs) != (long)n) fail("%s", "dispatch: a job ran twice");
  }
  free(opts);
  emit_rate(IMPL, names[kind], d, "runs", n, rates, reps, ",\"executor\":\"inline\"");
}

/* ------------------------------------------------------ raw SQLite probe */

/* The job table of libapsched-sqlite's schema (without its generated
 * columns), and rows like the ones sqlite_add writes: the raw probe does the
 * same inserts with nothing in between. */
static const char raw_schema[] =
    "CREATE TABLE jobs (id TEXT NOT NULL PRIMARY KEY, name TEXT, func TEXT NOT NULL, "
    "\"trigger\" TEXT NOT NULL, executor TEXT NOT NULL, arg BLOB, misfire_grace_ms INTEGER, "
    "coalesce INTEGER NOT NULL, max_instances INTEGER NOT NULL, "
    "max_runtime_ms INTEGER NOT NULL, next_run_time INTEGER, trigger_time INTEGER);"
    "CREATE INDEX jobs_next_run_time ON jobs (next_run_time)";
static char raw_trigger_text[TRIGGER_POOL][160];

static void raw_exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) fail("raw probe: %s", err);
}

static sqlite3 *raw_open(apsched_sqlite_durability d, sqlite3_stmt **insert) {
  remove_db();
  sqlite3 *db;
  if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
    fail("raw probe: %s", sqlite3_errmsg(db));
  raw_exec(db, "PRAGMA journal_mode=WAL");
  raw_exec(db, d == APSCHED_SQLITE_FULL ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  raw_exec(db, raw_schema);
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO jobs (id, name, func, \"trigger\", executor, arg, "
                         "misfire_grace_ms, coalesce, max_instances, max_runtime_ms, "
                         "next_run_time, trigger_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         -1, insert, NULL) != SQLITE_OK)
    fail("raw probe: %s", sqlite3_errmsg(db));
  return db;
}

static void raw_insert(sqlite3 *db, sqlite3_stmt *st, size_t i) {
  static const char hex[] = "0123456789abcdef";
  char id[33];
  for (int k = 0; k < 32; k++) id[k] = hex[rnd(16)];
  id[32] = 0;
  const char *trigger = raw_trigger_text[i % TRIGGER_POOL];
  apsched_time_t next = apsched_now() + pool_seconds[i % TRIGGER_POOL] * APSCHED_SEC;
  sqlite3_bind_text(st, 1, id, 32, SQLITE_STATIC);
  sqlite3_bind_null(st, 2);
  sqlite3_bind_text(st, 3, FUNC_NOP, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, trigger, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, "default", -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 6, job_arg, ARG_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, 1000);
  sqlite3_bind_int(st, 8, 1);
  sqlite3_bind_int(st, 9, 1);
  sqlite3_bind_int(st, 10, 0);
  sqlite3_bind_int64(st, 11, (sqlite3_int64)next);
  sqlite3_bind_int64(st, 12, (sqlite3_int64)next);
  if (sqlite3_step(st) != SQLITE_DONE) fail("raw probe: %s", sqlite3_errmsg(db));
  sqlite3_reset(st);
}

static void bench_raw(apsched_sqlite_durability d, size_t max_single, double seconds, size_t n,
                      size_t reps) {
  double rates[MAX_REPS];
  size_t total = 0;
  for (size_t r = 0; r < reps; r++) {
    sqlite3_stmt *st;
    sqlite3 *db = raw_open(d, &st);
    size_t i = 0;
    double limit = seconds * 1e9, t0 = now_ns(), t1 = t0;
    while (i < max_single && t1 - t0 < limit) {
      raw_insert(db, st, i); /* autocommit: one transaction each */
      i++;
      t1 = now_ns();
    }
    rates[r] = (double)i / (t1 - t0) * 1e9;
    total += i;
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  char extra[96];
  snprintf(extra, sizeof extra, ",\"seconds\":%.2f,\"sqlite_version\":\"%s\"", seconds,
           sqlite3_libversion());
  emit_rate("sqlite", "sqlite_raw_insert", d, "inserts", total / reps, rates, reps, extra);

  for (size_t r = 0; r < reps; r++) {
    sqlite3_stmt *st;
    sqlite3 *db = raw_open(d, &st);
    double t0 = now_ns();
    for (size_t done = 0; done < n;) {
      raw_exec(db, "BEGIN");
      size_t k = n - done < BATCH ? n - done : BATCH;
      for (size_t j = 0; j < k; j++) raw_insert(db, st, done + j);
      raw_exec(db, "COMMIT");
      done += k;
    }
    rates[r] = (double)n / (now_ns() - t0) * 1e9;
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  snprintf(extra, sizeof extra, ",\"batch\":%d,\"sqlite_version\":\"%s\"", BATCH,
           sqlite3_libversion());
  emit_rate("sqlite", "sqlite_raw_insert_batch", d, "inserts", n, rates, reps, extra);
}

/* ----------------------------------------------------------------- main */

static bool parse_count(const char *text, size_t *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end); /* accepts 1e5 */
  if (errno || end == text || *end || v < 1 || v > 1e9) return false;
  *out = (size_t)v;
  return true;
}

static _Noreturn void usage(void) {
  fprintf(stderr,
          "usage: bench_sqlite [--quick] [--only=add,batch,dispatch,raw]\n"
          "                    [--durability=full|normal] [--jobs=N] [--seconds=S]\n"
          "                    [--reps=N] [--dir=DIR]\n");
  exit(2);
}

int main(int argc, char **argv) {
  size_t jobs = 100000, reps = 3, max_single = SIZE_MAX;
  double seconds = 1.5;
  bool run_add = true, run_batch = true, run_dispatch = true, run_raw = true;
  bool full = true, normal = true;
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    size_t v;
    if (strcmp(a, "--quick") == 0) {
      jobs = 500;
      max_single = 200;
      reps = 1;
    } else if (strncmp(a, "--only=", 7) == 0) {
      const char *list = a + 7;
      run_add = strstr(list, "add") != NULL;
      run_batch = strstr(list, "batch") != NULL;
      run_dispatch = strstr(list, "dispatch") != NULL;
      run_raw = strstr(list, "raw") != NULL;
      if (!run_add && !run_batch && !run_dispatch && !run_raw) usage();
    } else if (strcmp(a, "--durability=full") == 0 || strcmp(a, "--durability=normal") == 0) {
      full = a[13] == 'f';
      normal = !full;
    } else if (strncmp(a, "--jobs=", 7) == 0 && parse_count(a + 7, &v)) {
      jobs = v;
    } else if (strncmp(a, "--reps=", 7) == 0 && parse_count(a + 7, &v) && v <= MAX_REPS) {
      reps = v;
    } else if (strncmp(a, "--seconds=", 10) == 0) {
      char *end = NULL;
      seconds = strtod(a + 10, &end);
      if (end == a + 10 || *end || !(seconds > 0 && seconds <= 600)) usage();
    } else if (strncmp(a, "--dir=", 6) == 0 && a[6]) {
      dir = a + 6;
    } else {
      usage();
    }
  }
  make_work_dir(dir);
  int rc = apsched_register_func(FUNC_NOP, nop_job);
  if (rc == APSCHED_OK) rc = apsched_register_func(FUNC_COUNT, count_job);
  if (rc != APSCHED_OK) die("apsched_register_func", rc);
  for (int i = 0; i < TRIGGER_POOL; i++) {
    pool_seconds[i] = 60 + (int64_t)rnd(86400);
    pool[i] = interval_trigger(&(apsched_interval_options){.seconds = pool_seconds[i]});
    /* The text a store keeps: of the copy a job gets, bound at add time. */
    apsched_trigger *bound;
    if ((rc = apsched_trigger_clone(pool[i], &bound)) != APSCHED_OK) die("apsched_trigger_clone", rc);
    if (bound->vtable->bind) bound->vtable->bind(bound, apsched_now());
    apsched_trigger_describe(bound, raw_trigger_text[i], sizeof raw_trigger_text[i]);
    apsched_trigger_free(bound);
  }

  for (int k = 0; k < 2; k++) {
    apsched_sqlite_durability d = k == 0 ? APSCHED_SQLITE_FULL : APSCHED_SQLITE_NORMAL;
    if (!(k == 0 ? full : normal)) continue;
    if (run_raw) bench_raw(d, max_single, seconds, jobs, reps);
    if (run_add) bench_add(d, max_single, seconds, reps);
    if (run_batch) bench_add_batch(d, jobs, reps);
    if (run_dispatch) {
      bench_dispatch(d, jobs, reps, DISPATCH_PLAIN);
      bench_dispatch(d, jobs, reps, DISPATCH_ALO);
      bench_dispatch(d, jobs, reps, DISPATCH_HISTORY);
    }
  }
  for (int i = 0; i < TRIGGER_POOL; i++) apsched_trigger_free(pool[i]);
  return 0;
}
