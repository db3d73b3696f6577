/*
 * Crash safety of the SQLite job store (issue 8).
 *
 * The parent starts a child scheduler process (this binary again, exec'd with
 * --crash-child) on one SQLite file, kills it with SIGKILL at a random moment
 * while it adds, replaces, changes, pauses, resumes and removes jobs and runs
 * them (thread pool and inline executor, real clock, 10-50 ms intervals and
 * date jobs due within 60 ms), restarts it, and repeats: at least 100 kills of
 * a running scheduler, plus kills during start-up. A last round ends cleanly.
 *
 * Evidence that survives SIGKILL (write(2) on an O_APPEND file: the page
 * cache outlives the process, so no fsync is needed against a process kill;
 * APSCHED_CRASH_FSYNC=1 adds one per record):
 *  - ops.log: "B" before every API call, "E" with its return code after it.
 *    A completed call fixes the job set it implies; the one call in flight at
 *    a kill may or may not have taken effect, but wholly: the store must then
 *    hold exactly the state before it or exactly the state after it.
 *  - runs.log: each run appends (job id, scheduled time, attempt) when it
 *    starts, and a "D" record when it is done. At most once (the default
 *    delivery) means the store advanced the job before the run started, so
 *    the same (id, time) twice is a run done twice. The date jobs "a..." are
 *    at least once: a run a kill interrupted (or that was claimed and not yet
 *    started) is run again by the next child as attempt 2 or later; every
 *    one of them must be done in the end, and no attempt 1 may happen twice.
 *
 * After every kill the parent copies the file (as the crash left it; the next
 * child recovers the original itself) and checks the copy: PRAGMA
 * integrity_check says "ok"; the jobs a scheduler reads from it are exactly
 * those the completed calls imply (ids, names, triggers, executors, paused),
 * with the call in flight either wholly done or not done; a date job that ran
 * is gone; a date job is never gone before it was due (unless removed); no
 * job comes back. At the end: no at-most-once (id, scheduled time) twice,
 * every at-least-once date job done, no run record left open, no run of a
 * job while it was paused or removed, the file's integrity, and its jobs.
 *
 * Also: a restarted child must get the one-scheduler lock the killed one held
 * (else it exits 3), a second scheduler is refused while a child runs, and an
 * outside reader (external mode) can read the file while the child runs.
 *
 * APSCHED_CRASH_SEED=n repeats a seed (printed at the start), APSCHED_CRASH_KILLS=n
 * changes the number of kills of a running child (default 110, at least 100),
 * APSCHED_CRASH_GO_ON=1 goes on after a round that found a violation (to see
 * every kind of violation a defective store shows).
 */
#include "support.h"

#include "apsched_plugin.h"
#include "apsched_sqlite.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL 10               /* interval jobs p00..p09: every call on them has one expected outcome */
#define DEFAULT_KILLS 110     /* kills of a running child */
#define MAX_KILL_DELAY_US 50000
#define EARLY_KILL_MAX_US 15000
#define FINAL_OPS_MS 400      /* the last, clean round */
#define MAX_DATE_DELAY_US 60000
#define MAX_REPORTS 40

/* ------------------------------------------------------------- shared bits */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rng_next(rng *r) { /* xorshift64* */
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ULL;
}

static uint64_t rng_below(rng *r, uint64_t n) { return rng_next(r) % n; }

static void rng_seed(rng *r, uint64_t seed) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL; /* splitmix64 step */
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  r->s = (z ^ (z >> 31)) | 1;
}

static void sleep_us(int64_t us) {
  if (us <= 0) return;
  struct timespec d = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
  while (nanosleep(&d, &d) != 0 && errno == EINTR) {
  }
}

static apsched_trigger *make_interval(int ms, apsched_time_t base) {
  apsched_interval_options o = {.microseconds = ms * APSCHED_MSEC, .start_date = base};
  apsched_trigger *t = NULL;
  if (apsched_trigger_interval(&o, &t, NULL, 0) != APSCHED_OK) abort();
  return t;
}

static apsched_trigger *make_date(apsched_time_t when) {
  apsched_date_options o = {.run_date = when};
  apsched_trigger *t = NULL;
  if (apsched_trigger_date(&o, &t) != APSCHED_OK) abort();
  return t;
}

static void trigger_text(apsched_trigger *t, char *buf, size_t len) {
  if (apsched_trigger_describe(t, buf, len) < 0) abort();
  apsched_trigger_free(t);
}

/* ------------------------------------------------------------------- child */

static int g_round;
static int g_ops_fd = -1, g_runs_fd = -1;
static bool g_fsync;

static void APSCHED_PRINTF(2, 3) jwrite(int fd, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n <= 0 || (size_t)n >= sizeof line) abort();
  /* One write per record: records never interleave, and a kill cannot tear one. */
  if (write(fd, line, (size_t)n) != n) abort();
  if (g_fsync && fdatasync(fd) != 0) abort();
}

/* Every job: record the run before doing anything else, then stay a moment
 * so that kills also land inside runs. */
static int crash_job(apsched_run_ctx *run) {
  apsched_time_t t = apsched_run_scheduled_time(run);
  const char *id = apsched_run_job_id(run);
  jwrite(g_runs_fd, "R %d %s %" PRId64 " %" PRId64 " %u\n", g_round, id, t, apsched_now(),
         apsched_run_attempt(run));
  sleep_us((int64_t)((uint64_t)t % 2000));
  if (id[0] == 'a') jwrite(g_runs_fd, "D %d %s %" PRId64 " %u\n", g_round, id, t, apsched_run_attempt(run));
  return 0;
}

/* Store failures and job errors are not expected at all: the parent fails on them. */
static void child_listener(const apsched_event *ev, void *ud) {
  (void)ud;
  jwrite(g_ops_fd, "F %d %s job=%s retval=%d error=%s\n", g_round, apsched_event_name(ev->code),
         ev->job_id ? ev->job_id : "-", ev->retval, ev->error ? ev->error : "-");
}

static void child_log(apsched_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (level >= APSCHED_LOG_ERROR) {
    char clean[600];
    snprintf(clean, sizeof clean, "%s", msg);
    for (char *p = clean; *p; p++)
      if (*p == '\n') *p = ' ';
    jwrite(g_ops_fd, "L %d %s\n", g_round, clean);
  }
}

static void child_end(int round, int n, int rc) {
  if (rc == APSCHED_OK || rc == APSCHED_ENOENT || rc == APSCHED_EEXIST)
    jwrite(g_ops_fd, "E %d %d %" PRId64 " %d\n", round, n, apsched_now(), rc);
  else
    jwrite(g_ops_fd, "E %d %d %" PRId64 " %d %s\n", round, n, apsched_now(), rc,
           apsched_last_error());
}

static const char *pick_exec(rng *r) { return rng_below(r, 4) == 0 ? "inline" : "default"; }

/* One random API call, journaled before and after. */
static void child_op(apsched_scheduler *s, rng *r, int round, int n, apsched_time_t base) {
  apsched_time_t tb = apsched_now();
  unsigned k = (unsigned)rng_below(r, 1000);
  char id[16], name[48];
  snprintf(id, sizeof id, "p%02d", (int)rng_below(r, POOL));
  snprintf(name, sizeof name, "n%d_%d", round, n);
  const char *exec = pick_exec(r);
  int ms = 10 + (int)rng_below(r, 41);
  int rc;
  if (k < 270) { /* add, with or without replace_existing */
    bool replace = k >= 110, paused = rng_below(r, 5) == 0;
    jwrite(g_ops_fd, "B %d %d %" PRId64 " add %s %d %d %s %d %s\n", round, n, tb, id, replace,
           paused, exec, ms, name);
    apsched_trigger *t = make_interval(ms, base);
    apsched_job_options o = {.id = id, .name = name, .func_name = "crash_job", .trigger = t,
                             .executor = exec, .misfire_grace_time = APSCHED_GRACE_UNLIMITED,
                             .paused = paused, .replace_existing = replace};
    rc = apsched_add_job(s, &o, NULL, 0);
    apsched_trigger_free(t);
  } else if (k < 350) { /* a batch of 2..4 distinct ids, all or nothing */
    size_t cnt = 2 + (size_t)rng_below(r, 3);
    int idx[4];
    int first = (int)rng_below(r, POOL);
    for (size_t i = 0; i < cnt; i++) idx[i] = (first + (int)i * 3) % POOL;
    apsched_job_options o[4];
    apsched_trigger *t[4];
    char names[4][48], ids[4][16], line[900];
    int pos = snprintf(line, sizeof line, "B %d %d %" PRId64 " batch %zu", round, n, tb, cnt);
    for (size_t i = 0; i < cnt; i++) {
      bool replace = rng_below(r, 3) != 0, paused = rng_below(r, 5) == 0;
      const char *ex = pick_exec(r);
      int m = 10 + (int)rng_below(r, 41);
      snprintf(ids[i], sizeof ids[i], "p%02d", idx[i]);
      snprintf(names[i], sizeof names[i], "n%d_%d_%zu", round, n, i);
      t[i] = make_interval(m, base);
      o[i] = (apsched_job_options){.id = ids[i], .name = names[i], .func_name = "crash_job",
                                   .trigger = t[i], .executor = ex,
                                   .misfire_grace_time = APSCHED_GRACE_UNLIMITED,
                                   .paused = paused, .replace_existing = replace};
      pos += snprintf(line + pos, sizeof line - (size_t)pos, " %s:%d:%d:%s:%d:%s", ids[i], replace,
                      paused, ex, m, names[i]);
    }
    jwrite(g_ops_fd, "%s\n", line);
    rc = apsched_add_jobs(s, o, cnt, NULL);
    for (size_t i = 0; i < cnt; i++) apsched_trigger_free(t[i]);
  } else if (k < 470) { /* modify: always the name, sometimes the trigger, the executor */
    bool set_trigger = rng_below(r, 2) == 0, set_exec = rng_below(r, 3) == 0;
    jwrite(g_ops_fd, "B %d %d %" PRId64 " modify %s %s %d %s\n", round, n, tb, id, name,
           set_trigger ? ms : 0, set_exec ? exec : "-");
    apsched_trigger *t = set_trigger ? make_interval(ms, base) : NULL;
    apsched_job_changes c = {.name = name, .trigger = t, .executor = set_exec ? exec : NULL};
    rc = apsched_modify_job(s, id, NULL, &c);
    apsched_trigger_free(t);
  } else if (k < 550) {
    jwrite(g_ops_fd, "B %d %d %" PRId64 " pause %s\n", round, n, tb, id);
    rc = apsched_pause_job(s, id, NULL);
  } else if (k < 630) {
    jwrite(g_ops_fd, "B %d %d %" PRId64 " resume %s\n", round, n, tb, id);
    rc = apsched_resume_job(s, id, NULL);
  } else if (k < 680) {
    jwrite(g_ops_fd, "B %d %d %" PRId64 " resched %s %d\n", round, n, tb, id, ms);
    apsched_trigger *t = make_interval(ms, base);
    rc = apsched_reschedule_job(s, id, NULL, t);
    apsched_trigger_free(t);
  } else if (k < 760) {
    jwrite(g_ops_fd, "B %d %d %" PRId64 " remove %s\n", round, n, tb, id);
    rc = apsched_remove_job(s, id, NULL);
  } else if (k < 997) { /* a date job with an id of its own, due within 60 ms; "a": at least once */
    bool alo = k >= 900;
    char did[32];
    snprintf(did, sizeof did, "%c%d_%d", alo ? 'a' : 'd', round, n);
    apsched_time_t when = tb + (apsched_time_t)rng_below(r, MAX_DATE_DELAY_US);
    jwrite(g_ops_fd, "B %d %d %" PRId64 " date %s %" PRId64 " %s\n", round, n, tb, did, when, exec);
    apsched_trigger *t = make_date(when);
    apsched_job_options o = {.id = did, .func_name = "crash_job", .trigger = t, .executor = exec,
                             .misfire_grace_time = APSCHED_GRACE_UNLIMITED,
                             .delivery = alo ? APSCHED_AT_LEAST_ONCE : APSCHED_AT_MOST_ONCE};
    rc = apsched_add_job(s, &o, NULL, 0);
    apsched_trigger_free(t);
  } else {
    jwrite(g_ops_fd, "B %d %d %" PRId64 " rmall\n", round, n, tb);
    rc = apsched_remove_all_jobs(s, "default");
  }
  child_end(round, n, rc);
}

static bool has_date_jobs(apsched_scheduler *s) {
  apsched_job *jobs;
  size_t count;
  if (apsched_get_jobs(s, "default", &jobs, &count) != APSCHED_OK) return true;
  bool any = false;
  for (size_t i = 0; i < count; i++) any |= jobs[i].id[0] == 'd' || jobs[i].id[0] == 'a';
  apsched_jobs_free(jobs, count);
  return any;
}

/* Run records still open in the file (read as an outside reader would). */
static long open_runs(const char *path) {
  sqlite3 *db;
  long n = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM apsched_runs", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
      n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
  }
  sqlite3_close(db);
  return n;
}

/* argv: --crash-child DIR ROUND SEED BASE READY_FD MODE(kill|final) */
static int child_main(int argc, char **argv) {
  if (argc != 8) return 2;
  const char *dir = argv[2];
  g_round = atoi(argv[3]);
  uint64_t seed = strtoull(argv[4], NULL, 10);
  apsched_time_t base = strtoll(argv[5], NULL, 10);
  int ready_fd = atoi(argv[6]);
  bool final = strcmp(argv[7], "final") == 0;
  const char *fs = getenv("APSCHED_CRASH_FSYNC");
  g_fsync = fs && *fs == '1';
  char path[600];
  snprintf(path, sizeof path, "%s/ops.log", dir);
  g_ops_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  snprintf(path, sizeof path, "%s/runs.log", dir);
  g_runs_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (g_ops_fd < 0 || g_runs_fd < 0) return 2;
  rng r;
  rng_seed(&r, seed ^ ((uint64_t)g_round * 0x2545F4914F6CDD1DULL));

  if (apsched_register_func("crash_job", crash_job) != APSCHED_OK) return 5;
  apsched_config cfg = {.timezone = "UTC", .max_wait = 200 * APSCHED_MSEC, .log = child_log,
                        .log_level = APSCHED_LOG_ERROR};
  apsched_scheduler *s;
  if (apsched_create(&cfg, &s) != APSCHED_OK) return 5;
  snprintf(path, sizeof path, "%s/jobs.db", dir);
  apsched_sqlite_options so = {.path = path, .durability = APSCHED_SQLITE_FULL};
  apsched_jobstore *st;
  char err[512] = "";
  int rc = apsched_sqlite_store_create(&so, &st, err, sizeof err);
  if (rc != APSCHED_OK) {
    /* ESTATE: the killed scheduler's lock still blocks its successor. */
    fprintf(stderr, "crash child %d: opening the store: %s (%s)\n", g_round,
            apsched_strerror(rc), err);
    return rc == APSCHED_ESTATE ? 3 : 4;
  }
  apsched_executor *pool, *in;
  apsched_thread_pool_options po = {.max_workers = 4};
  if (apsched_add_jobstore(s, st, "default") != APSCHED_OK ||
      apsched_thread_pool_create(&po, &pool) != APSCHED_OK ||
      apsched_add_executor(s, pool, "default") != APSCHED_OK ||
      apsched_inline_executor_create(&in) != APSCHED_OK ||
      apsched_add_executor(s, in, "inline") != APSCHED_OK ||
      apsched_add_listener(s, child_listener,
                           APSCHED_EVENT_JOBSTORE_FAILED | APSCHED_EVENT_JOB_ERROR, NULL,
                           NULL) != APSCHED_OK) {
    fprintf(stderr, "crash child %d: setup: %s\n", g_round, apsched_last_error());
    return 5;
  }
  if ((rc = apsched_start(s, false)) != APSCHED_OK) {
    fprintf(stderr, "crash child %d: start: %s\n", g_round, apsched_last_error());
    return 5;
  }
  if (write(ready_fd, "R", 1) != 1) return 5;
  close(ready_fd);

  apsched_time_t start = apsched_now();
  for (int n = 1;; n++) {
    apsched_time_t now = apsched_now();
    if (final && now - start > FINAL_OPS_MS * APSCHED_MSEC) break;
    if (now - start > 60 * APSCHED_SEC) return 7; /* the parent is gone */
    child_op(s, &r, g_round, n, base);
    sleep_us((int64_t)rng_below(&r, 2000));
  }
  /* The clean end: the interval jobs paused (journaled calls like the others),
   * every date job run, then a shutdown that waits for the runs. Nothing is
   * due while it stops: a blocking store's thread may still be inside a
   * claimed batch when the executors stop (reported as a defect of the core). */
  for (int i = 0; i < POOL; i++) {
    char id[16];
    snprintf(id, sizeof id, "p%02d", i);
    jwrite(g_ops_fd, "B %d %d %" PRId64 " pause %s\n", g_round, 100000 + i, apsched_now(), id);
    child_end(g_round, 100000 + i, apsched_pause_job(s, id, NULL));
  }
  apsched_time_t deadline = apsched_now() + 20 * APSCHED_SEC;
  while (has_date_jobs(s) || open_runs(path) != 0) {
    if (apsched_now() > deadline) {
      fprintf(stderr, "crash child %d: date jobs or taken-over runs never ran\n", g_round);
      return 8;
    }
    sleep_us(10000);
  }
  if (apsched_shutdown(s, true) != APSCHED_OK) return 9;
  apsched_free(s);
  close(g_ops_fd);
  close(g_runs_fd);
  return 0;
}

/* ------------------------------------------------------------------ parent */

typedef struct pjob {
  bool exists, paused;
  int ms;
  char name[48];
  char exec[16];
} pjob;

typedef struct entry {
  int idx, replace, paused, ms;
  char exec[16], name[48];
} entry;

typedef struct op {
  int round, n;
  apsched_time_t tb, te;
  char kind[12];
  entry e[4]; /* add: e[0]; batch: e[0..k); modify: idx, name, ms (0: same), exec ("-": same) */
  size_t k;
  char did_kind;        /* date: 'd' (at most once) or 'a' (at least once) */
  int did_round, did_n; /* date: its id */
  apsched_time_t run_date;
  bool done;
  int rc;
  char msg[300];
} op;

enum { D_ADDED, D_PRESENT, D_GONE, D_DROPPED };

typedef struct djob {
  int round, n;
  apsched_time_t run_date;
  int state;
  bool uncertain; /* its add was in flight at a kill */
  bool removable; /* a remove_all_jobs may have removed it */
  int runs;
} djob;

typedef struct run_rec {
  char id[32];
  apsched_time_t t;
  int round;
  unsigned attempt;
} run_rec;

/* An at-least-once date job ("a<round>_<n>"). */
typedef struct ajob {
  int round, n;
  apsched_time_t run_date;
  bool uncertain; /* its add was in flight at a kill */
  bool removable; /* a remove_all_jobs may have removed it before it was claimed */
  int starts, dones;
} ajob;

typedef struct quiet {
  int idx;
  apsched_time_t from, to; /* the job was paused or absent (no run may be scheduled inside) */
} quiet;

typedef struct world {
  char dir[256], db[300], copy[300];
  uint64_t seed;
  apsched_time_t base;
  pjob pool[POOL];
  quiet *q;
  size_t nq, capq;
  long open_q[POOL]; /* index of the open quiet interval, -1 */
  djob *d;
  size_t nd, capd;
  ajob *a;
  size_t na, capa;
  run_rec *runs;
  size_t nruns, capruns;
  off_t ops_off, runs_off;
  int violations;
  /* numbers for the report */
  int kills, early_kills, rounds, ops_done, inflight_pre, inflight_post, inflight_same;
  int date_lost_at_kill, lock_checks, reader_checks, log_lines, torn, recovered;
  int64_t checks_us;
  char itext[51][160]; /* the canonical text of the interval trigger of each ms */
} world;

static void APSCHED_PRINTF(2, 3) violation(world *w, const char *fmt, ...) {
  if (w->violations++ < MAX_REPORTS) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "VIOLATION: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
  }
}

static void *grow(void *p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return p;
  size_t c = *cap ? *cap * 2 : 256;
  while (c < need) c *= 2;
  void *np = realloc(p, c * size);
  if (!np) abort();
  *cap = c;
  return np;
}

static int pool_index(const char *id) {
  if (id[0] != 'p' || strlen(id) != 3) return -1;
  int i = atoi(id + 1);
  return i >= 0 && i < POOL ? i : -1;
}

static djob *find_date(world *w, int round, int n) {
  size_t lo = 0, hi = w->nd;
  while (lo < hi) { /* added in (round, n) order */
    size_t mid = (lo + hi) / 2;
    djob *d = &w->d[mid];
    if (d->round == round && d->n == n) return d;
    if (d->round < round || (d->round == round && d->n < n))
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static ajob *alo_of_id(world *w, const char *id) {
  int round, n, used = 0;
  if (sscanf(id, "a%d_%d%n", &round, &n, &used) != 2 || id[used]) return NULL;
  for (size_t i = 0; i < w->na; i++)
    if (w->a[i].round == round && w->a[i].n == n) return &w->a[i];
  return NULL;
}

static djob *date_of_id(world *w, const char *id) {
  int round, n, used = 0;
  if (sscanf(id, "d%d_%d%n", &round, &n, &used) != 2 || id[used]) return NULL;
  return find_date(w, round, n);
}

/* ---- files */

static void copy_file(const char *from, const char *to) {
  unlink(to);
  int in = open(from, O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    assert_int_equal(errno, ENOENT);
    return;
  }
  int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(out >= 0);
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0) assert_int_equal(write(out, buf, (size_t)n), n);
  assert_int_equal(n, 0);
  close(in);
  close(out);
}

/* The file as the crash left it, under another name (the SQLite files that
 * carry state: the database, its WAL, a rollback journal; the -shm index is
 * rebuilt by the first connection). */
static void snapshot_db(world *w) {
  static const char *const suffix[] = {"", "-wal", "-journal"};
  char from[400], to[400];
  snprintf(to, sizeof to, "%s-shm", w->copy);
  unlink(to);
  for (size_t i = 0; i < 3; i++) {
    snprintf(from, sizeof from, "%s%s", w->db, suffix[i]);
    snprintf(to, sizeof to, "%s%s", w->copy, suffix[i]);
    copy_file(from, to);
  }
}

/* Reads what was appended to a journal since *off; a record cut short is cut
 * off the file (none is expected: each is one write). Returns malloc'd text. */
static char *read_new(world *w, const char *name, off_t *off) {
  char path[400];
  snprintf(path, sizeof path, "%s/%s", w->dir, name);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    assert_int_equal(errno, ENOENT);
    return calloc(1, 1);
  }
  struct stat sb;
  assert_int_equal(fstat(fd, &sb), 0);
  size_t len = (size_t)(sb.st_size - *off);
  char *text = malloc(len + 1);
  assert_non_null(text);
  assert_int_equal(pread(fd, text, len, *off), (ssize_t)len);
  text[len] = 0;
  size_t keep = len;
  while (keep > 0 && text[keep - 1] != '\n') keep--;
  if (keep != len) {
    w->torn++;
    fprintf(stderr, "note: %s: a torn last record (%zu bytes) removed\n", name, len - keep);
    assert_int_equal(ftruncate(fd, *off + (off_t)keep), 0);
    text[keep] = 0;
  }
  *off += (off_t)keep;
  close(fd);
  return text;
}

/* ---- SQLite and store checks */

static void integrity_check(world *w, const char *path, const char *when) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
  if (rc != SQLITE_OK) {
    violation(w, "%s: sqlite3_open %s: %s", when, path, db ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    return;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st = NULL;
  rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
  if (rc != SQLITE_OK) {
    violation(w, "%s: integrity_check: %s", when, sqlite3_errmsg(db));
  } else {
    int rows = 0;
    char first[300] = "";
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (rows++ == 0) snprintf(first, sizeof first, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    if (rc != SQLITE_DONE)
      violation(w, "%s: integrity_check: %s", when, sqlite3_errmsg(db));
    else if (rows != 1 || strcmp(first, "ok") != 0)
      violation(w, "%s: integrity_check says '%s' (%d rows)", when, first, rows);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* The jobs a (never started) scheduler reads from the file. */
static int read_jobs(const char *path, bool external, apsched_job **jobs, size_t *count,
                     char *err, size_t errlen) {
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  if (apsched_create(&cfg, &s) != APSCHED_OK) abort();
  apsched_sqlite_options o = {.path = path, .external = external};
  apsched_jobstore *st;
  int rc = apsched_sqlite_store_create(&o, &st, err, errlen);
  if (rc == APSCHED_OK) {
    rc = apsched_add_jobstore(s, st, "default");
    if (rc == APSCHED_OK) rc = apsched_get_jobs(s, "default", jobs, count);
    if (rc != APSCHED_OK) snprintf(err, errlen, "%s", apsched_last_error());
  }
  apsched_free(s);
  return rc;
}

/* ---- the model of the pool */

static void pool_set(pjob *p, const entry *e) {
  p->exists = true;
  p->paused = e->paused != 0;
  p->ms = e->ms;
  snprintf(p->name, sizeof p->name, "%s", e->name);
  snprintf(p->exec, sizeof p->exec, "%s", e->exec);
}

/* Applies a call to a pool state; returns the return code it must have had. */
static int apply(pjob pool[POOL], const op *o) {
  const char *k = o->kind;
  pjob *p = &pool[o->e[0].idx];
  if (strcmp(k, "add") == 0) {
    if (p->exists && !o->e[0].replace) return APSCHED_EEXIST;
    pool_set(p, &o->e[0]);
  } else if (strcmp(k, "batch") == 0) {
    for (size_t i = 0; i < o->k; i++)
      if (pool[o->e[i].idx].exists && !o->e[i].replace) return APSCHED_EEXIST;
    for (size_t i = 0; i < o->k; i++) pool_set(&pool[o->e[i].idx], &o->e[i]);
  } else if (strcmp(k, "rmall") == 0) {
    for (int i = 0; i < POOL; i++) pool[i].exists = false;
  } else if (strcmp(k, "date") == 0) {
    /* not a pool job */
  } else if (!p->exists) {
    return APSCHED_ENOENT;
  } else if (strcmp(k, "modify") == 0) {
    snprintf(p->name, sizeof p->name, "%s", o->e[0].name);
    if (o->e[0].ms) p->ms = o->e[0].ms;
    if (strcmp(o->e[0].exec, "-") != 0) snprintf(p->exec, sizeof p->exec, "%s", o->e[0].exec);
  } else if (strcmp(k, "pause") == 0) {
    p->paused = true;
  } else if (strcmp(k, "resume") == 0) {
    p->paused = false;
  } else if (strcmp(k, "resched") == 0) {
    p->ms = o->e[0].ms;
    p->paused = false;
  } else if (strcmp(k, "remove") == 0) {
    p->exists = false;
  } else {
    fail_msg("unknown op %s", k);
  }
  return APSCHED_OK;
}

/* Whether the call may start runs of pool job i (ends a quiet interval). */
static bool may_unpause(const op *o, int i) {
  const char *k = o->kind;
  if (strcmp(k, "batch") == 0) {
    for (size_t j = 0; j < o->k; j++)
      if (o->e[j].idx == i) return true;
    return false;
  }
  return o->e[0].idx == i && (strcmp(k, "add") == 0 || strcmp(k, "resume") == 0 ||
                              strcmp(k, "resched") == 0);
}

static bool is_pool_op(const op *o) { return strcmp(o->kind, "date") != 0; }

/* Quiet intervals: from the end of the call that paused or removed a job to
 * the start of the next call that may resume it. */
static void quiet_before(world *w, const op *o) {
  for (int i = 0; i < POOL; i++) {
    if (w->open_q[i] >= 0 && may_unpause(o, i)) {
      w->q[w->open_q[i]].to = o->tb;
      w->open_q[i] = -1;
    }
  }
}

static void quiet_after(world *w, apsched_time_t from) {
  for (int i = 0; i < POOL; i++) {
    if (w->open_q[i] < 0 && (!w->pool[i].exists || w->pool[i].paused)) {
      w->q = grow(w->q, &w->capq, w->nq + 1, sizeof *w->q);
      w->q[w->nq] = (quiet){.idx = i, .from = from, .to = INT64_MAX};
      w->open_q[i] = (long)w->nq++;
    }
  }
}

static void pool_describe(const pjob *p, char *buf, size_t len) {
  if (!p->exists)
    snprintf(buf, len, "absent");
  else
    snprintf(buf, len, "name=%s every %d ms on %s%s", p->name, p->ms, p->exec,
             p->paused ? " paused" : "");
}

static bool pool_equal(const pjob a[POOL], const pjob b[POOL]) {
  for (int i = 0; i < POOL; i++) {
    if (a[i].exists != b[i].exists) return false;
    if (!a[i].exists) continue;
    if (a[i].paused != b[i].paused || a[i].ms != b[i].ms || strcmp(a[i].name, b[i].name) != 0 ||
        strcmp(a[i].exec, b[i].exec) != 0)
      return false;
  }
  return true;
}

/* ---- parsing the journals */

static bool parse_entry(const char *tok, entry *e) {
  char id[16];
  int used = 0;
  if (sscanf(tok, "%15[^:]:%d:%d:%15[^:]:%d:%47s%n", id, &e->replace, &e->paused, e->exec, &e->ms,
             e->name, &used) != 6)
    return false;
  e->idx = pool_index(id);
  return e->idx >= 0;
}

static void parse_begin(world *w, const char *line, op *o) {
  memset(o, 0, sizeof *o);
  char id[32], rest[900];
  int used = 0;
  if (sscanf(line, "B %d %d %" SCNd64 " %11s %n", &o->round, &o->n, &o->tb, o->kind, &used) != 4)
    fail_msg("bad journal line: %s", line);
  const char *a = line + used;
  const char *k = o->kind;
  int got;
  entry *e = &o->e[0];
  if (strcmp(k, "add") == 0) {
    got = sscanf(a, "%31s %d %d %15s %d %47s", id, &e->replace, &e->paused, e->exec, &e->ms,
                 e->name);
    if (got != 6) fail_msg("bad add: %s", line);
  } else if (strcmp(k, "batch") == 0) {
    if (sscanf(a, "%zu %n", &o->k, &used) != 1 || o->k < 2 || o->k > 4) fail_msg("bad batch: %s", line);
    a += used;
    for (size_t i = 0; i < o->k; i++) {
      if (sscanf(a, "%899s %n", rest, &used) != 1 || !parse_entry(rest, &o->e[i]))
        fail_msg("bad batch entry: %s", line);
      a += used;
    }
    return;
  } else if (strcmp(k, "modify") == 0) {
    if (sscanf(a, "%31s %47s %d %15s", id, e->name, &e->ms, e->exec) != 4) fail_msg("bad modify: %s", line);
  } else if (strcmp(k, "resched") == 0) {
    if (sscanf(a, "%31s %d", id, &e->ms) != 2) fail_msg("bad resched: %s", line);
  } else if (strcmp(k, "date") == 0) {
    if (sscanf(a, "%c%d_%d %" SCNd64 " %15s", &o->did_kind, &o->did_round, &o->did_n, &o->run_date,
               e->exec) != 5 ||
        (o->did_kind != 'd' && o->did_kind != 'a'))
      fail_msg("bad date: %s", line);
    return;
  } else if (strcmp(k, "rmall") == 0) {
    return;
  } else {
    if (sscanf(a, "%31s", id) != 1) fail_msg("bad op: %s", line);
  }
  e->idx = pool_index(id);
  if (e->idx < 0) fail_msg("bad id: %s", line);
  (void)w;
}

/* Lines of one round's ops journal into calls (the last may be in flight). */
static op *parse_ops(world *w, char *text, int round, size_t *nops) {
  op *ops = NULL;
  size_t n = 0, cap = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == 'B') {
      if (n > 0 && !ops[n - 1].done) fail_msg("round %d: call %d never ended", round, ops[n - 1].n);
      ops = grow(ops, &cap, n + 1, sizeof *ops);
      parse_begin(w, line, &ops[n]);
      if (ops[n].round != round) fail_msg("round %d: a line of round %d: %s", round, ops[n].round, line);
      n++;
    } else if (line[0] == 'E') {
      int r, k, used = 0;
      apsched_time_t te;
      int rc;
      if (sscanf(line, "E %d %d %" SCNd64 " %d %n", &r, &k, &te, &rc, &used) < 4)
        fail_msg("bad journal line: %s", line);
      if (n == 0 || ops[n - 1].n != k || ops[n - 1].done) fail_msg("unmatched end: %s", line);
      ops[n - 1].done = true;
      ops[n - 1].te = te;
      ops[n - 1].rc = rc;
      if (used) snprintf(ops[n - 1].msg, sizeof ops[n - 1].msg, "%s", line + used);
    } else if (line[0] == 'F') {
      violation(w, "the child reported: %s", line);
    } else if (line[0] == 'L') {
      w->log_lines++;
      violation(w, "the child logged an error: %s", line);
    } else {
      fail_msg("bad journal line: %s", line);
    }
  }
  *nops = n;
  return ops;
}

static void parse_runs(world *w, char *text) {
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    run_rec r = {0};
    apsched_time_t started;
    if (line[0] == 'D') { /* an at-least-once run done */
      if (sscanf(line, "D %d %31s %" SCNd64 " %u", &r.round, r.id, &r.t, &r.attempt) != 4)
        fail_msg("bad run line: %s", line);
      ajob *a = alo_of_id(w, r.id);
      if (!a) violation(w, "round %d: a run of at-least-once job %s that was never added", r.round, r.id);
      else a->dones++;
      continue;
    }
    if (sscanf(line, "R %d %31s %" SCNd64 " %" SCNd64 " %u", &r.round, r.id, &r.t, &started,
               &r.attempt) != 5)
      fail_msg("bad run line: %s", line);
    w->runs = grow(w->runs, &w->capruns, w->nruns + 1, sizeof *w->runs);
    w->runs[w->nruns++] = r;
    if (r.id[0] == 'a') {
      ajob *a = alo_of_id(w, r.id);
      if (!a) {
        violation(w, "round %d: a run of at-least-once job %s that was never added", r.round, r.id);
      } else {
        a->starts++;
        if (r.t != a->run_date)
          violation(w, "job %s ran for %" PRId64 ", its run date is %" PRId64, r.id, r.t, a->run_date);
      }
      if (r.attempt >= 2) w->recovered++;
    } else if (r.attempt != 1) {
      violation(w, "round %d: at-most-once job %s ran as attempt %u", r.round, r.id, r.attempt);
    }
    if (r.id[0] == 'd') {
      djob *d = date_of_id(w, r.id);
      if (!d) {
        violation(w, "round %d: a run of date job %s that was never added", r.round, r.id);
      } else {
        d->runs++;
        if (r.t != d->run_date)
          violation(w, "date job %s ran for %" PRId64 ", its run date is %" PRId64, r.id, r.t,
                    d->run_date);
      }
    } else if (r.id[0] != 'a' && pool_index(r.id) < 0) {
      violation(w, "round %d: a run of unknown job %s", r.round, r.id);
    }
  }
}

/* ---- one round's evidence against the file */

static void observed_pool(world *w, const apsched_job *jobs, size_t count, pjob obs[POOL],
                          int round) {
  memset(obs, 0, sizeof(pjob) * POOL);
  for (size_t i = 0; i < count; i++) {
    const apsched_job *j = &jobs[i];
    if (j->broken) violation(w, "round %d: job %s is broken: %s", round, j->id, j->broken);
    if (!j->func_name || strcmp(j->func_name, "crash_job") != 0)
      violation(w, "round %d: job %s has function %s", round, j->id, j->func_name ? j->func_name : "NULL");
    int idx = pool_index(j->id);
    if (idx < 0) continue;
    pjob *p = &obs[idx];
    if (p->exists) {
      violation(w, "round %d: job %s is listed twice", round, j->id);
      continue;
    }
    p->exists = true;
    p->paused = j->paused;
    snprintf(p->name, sizeof p->name, "%s", j->name);
    snprintf(p->exec, sizeof p->exec, "%s", j->executor);
    /* the interval: find the ms whose canonical text matches */
    p->ms = -1;
    for (int ms = 10; ms <= 50; ms++)
      if (strcmp(w->itext[ms], j->trigger) == 0) p->ms = ms;
    if (p->ms < 0) violation(w, "round %d: job %s has trigger %s", round, j->id, j->trigger);
    if (!p->paused && j->next_run_time == APSCHED_TIME_NONE)
      violation(w, "round %d: job %s is neither paused nor scheduled", round, j->id);
  }
}

static void check_round(world *w, int round, apsched_time_t kill_time, bool clean) {
  /* 1. the journals: the calls (date jobs first known), then the runs */
  char *text = read_new(w, "ops.log", &w->ops_off);
  size_t nops;
  op *ops = parse_ops(w, text, round, &nops);
  free(text);
  for (size_t i = 0; i < nops; i++) {
    op *o = &ops[i];
    if (strcmp(o->kind, "date") != 0) continue;
    if (o->did_kind == 'a') {
      w->a = grow(w->a, &w->capa, w->na + 1, sizeof *w->a);
      w->a[w->na++] = (ajob){.round = o->did_round, .n = o->did_n, .run_date = o->run_date,
                             .uncertain = !o->done || o->rc != APSCHED_OK};
      continue;
    }
    w->d = grow(w->d, &w->capd, w->nd + 1, sizeof *w->d);
    w->d[w->nd++] = (djob){.round = o->did_round, .n = o->did_n, .run_date = o->run_date,
                           .state = D_ADDED, .uncertain = !o->done || o->rc != APSCHED_OK};
  }
  text = read_new(w, "runs.log", &w->runs_off);
  parse_runs(w, text);
  free(text);

  /* 2. the file as the kill left it */
  int64_t t0 = apsched_now();
  const char *path = w->db;
  char when[64];
  snprintf(when, sizeof when, "after round %d", round);
  if (access(w->db, F_OK) != 0) { /* killed before it created the file */
    if (nops > 0) violation(w, "%s: calls were made but there is no file", when);
    free(ops);
    return;
  }
  if (!clean) {
    snapshot_db(w);
    path = w->copy;
  }
  integrity_check(w, path, when);
  apsched_job *jobs = NULL;
  size_t count = 0;
  char err[512] = "";
  int rc = read_jobs(path, false, &jobs, &count, err, sizeof err);
  w->checks_us += apsched_now() - t0;
  if (rc != APSCHED_OK) {
    violation(w, "%s: reading the jobs: %s (%s)", when, apsched_strerror(rc), err);
    free(ops);
    return;
  }
  pjob obs[POOL];
  observed_pool(w, jobs, count, obs, round);

  /* 3. the calls: completed ones have one outcome; the last may be in flight */
  for (size_t i = 0; i < nops; i++) {
    op *o = &ops[i];
    if (strcmp(o->kind, "rmall") == 0) { /* every date job added before it */
      for (size_t j = 0; j < w->nd; j++)
        if (w->d[j].round < round || w->d[j].n < o->n) w->d[j].removable = true;
      for (size_t j = 0; j < w->na; j++)
        if (w->a[j].round < round || w->a[j].n < o->n) w->a[j].removable = true;
    }
    if (!is_pool_op(o)) {
      if (o->done && o->rc != APSCHED_OK)
        violation(w, "round %d call %d (%s): %s %s", round, o->n, o->kind, apsched_strerror(o->rc), o->msg);
      if (o->done) w->ops_done++;
      continue;
    }
    quiet_before(w, o);
    if (o->done) {
      w->ops_done++;
      int expect = apply(w->pool, o);
      if (o->rc != expect)
        violation(w, "round %d call %d (%s p%02d): returned %s, the job set implies %s %s", round, o->n,
                  o->kind, o->e[0].idx, apsched_strerror(o->rc), apsched_strerror(expect), o->msg);
      quiet_after(w, o->te);
    } else {
      pjob post[POOL];
      memcpy(post, w->pool, sizeof post);
      apply(post, o);
      bool is_post = pool_equal(obs, post), is_pre = pool_equal(obs, w->pool);
      if (is_post && is_pre)
        w->inflight_same++;
      else if (is_post)
        w->inflight_post++;
      else if (is_pre)
        w->inflight_pre++;
      else
        violation(w, "round %d: the call in flight (%d, %s) is half done (see below)", round, o->n,
                  o->kind);
      if (is_post) memcpy(w->pool, post, sizeof post);
      quiet_after(w, kill_time);
    }
  }

  /* 4. the pool as stored */
  for (int i = 0; i < POOL; i++) {
    char want[160], got[160];
    pool_describe(&w->pool[i], want, sizeof want);
    pool_describe(&obs[i], got, sizeof got);
    if (strcmp(want, got) != 0) {
      violation(w, "round %d: job p%02d is %s in the file; the completed calls imply %s", round, i,
                got, want);
      w->pool[i] = obs[i]; /* go on from what is there */
    }
  }

  /* 5. date jobs */
  bool *seen = calloc(w->nd + 1, 1);
  assert_non_null(seen);
  for (size_t i = 0; i < count; i++) {
    if (jobs[i].id[0] != 'd') {
      if (pool_index(jobs[i].id) < 0 && !alo_of_id(w, jobs[i].id))
        violation(w, "round %d: unknown job %s in the file", round, jobs[i].id);
      continue;
    }
    djob *d = date_of_id(w, jobs[i].id);
    if (!d) {
      violation(w, "round %d: date job %s in the file was never added", round, jobs[i].id);
      continue;
    }
    size_t di = (size_t)(d - w->d);
    if (seen[di]) violation(w, "round %d: job %s is listed twice", round, jobs[i].id);
    seen[di] = true;
    char want[200];
    trigger_text(make_date(d->run_date), want, sizeof want);
    if (strcmp(want, jobs[i].trigger) != 0)
      violation(w, "round %d: date job %s has trigger %s, not %s", round, jobs[i].id, jobs[i].trigger, want);
  }
  for (size_t i = 0; i < w->nd; i++) {
    djob *d = &w->d[i];
    if (d->state == D_DROPPED) continue;
    if (seen[i]) {
      if (d->state == D_GONE) violation(w, "round %d: date job d%d_%d came back", round, d->round, d->n);
      if (d->runs > 0)
        violation(w, "round %d: date job d%d_%d ran but is still stored (not advanced before its run)",
                  round, d->round, d->n);
      d->state = D_PRESENT;
      d->uncertain = false;
      continue;
    }
    if (d->state == D_GONE) continue;
    if (d->runs == 0 && d->uncertain) { /* its add was in flight and did not happen */
      d->state = D_DROPPED;
      continue;
    }
    d->state = D_GONE;
    if (d->runs > 0 || d->removable) continue;
    if (clean)
      violation(w, "round %d: date job d%d_%d is gone and never ran", round, d->round, d->n);
    else if (d->run_date >= kill_time)
      violation(w, "round %d: date job d%d_%d is gone before it was due (%" PRId64 " us early)",
                round, d->round, d->n, d->run_date - kill_time);
    else
      w->date_lost_at_kill++; /* claimed, then killed before its run: at most once */
  }
  if (clean) {
    for (size_t i = 0; i < w->nd; i++)
      if (w->d[i].state == D_PRESENT)
        violation(w, "at the end: date job d%d_%d never ran", w->d[i].round, w->d[i].n);
    /* At least once: every run of an at-least-once job is done, whatever
     * the kills did, unless it was removed before it was claimed (or its add
     * was in flight and did not happen). */
    for (size_t i = 0; i < w->na; i++) {
      ajob *a = &w->a[i];
      if (a->dones == 0 && a->starts > 0)
        violation(w, "at the end: the run of a%d_%d started %d time(s) and was never done", a->round,
                  a->n, a->starts);
      else if (a->dones == 0 && !a->removable && !a->uncertain)
        violation(w, "at the end: at-least-once job a%d_%d never ran (lost)", a->round, a->n);
    }
    long open = open_runs(path);
    if (open != 0) violation(w, "at the end: %ld run records are still open", open);
  }
  free(seen);
  apsched_jobs_free(jobs, count);
  free(ops);
}

/* ---- the child processes */

static pid_t spawn(world *w, int round, const char *mode, int *ready) {
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  char a_round[16], a_seed[32], a_base[32], a_fd[16];
  snprintf(a_round, sizeof a_round, "%d", round);
  snprintf(a_seed, sizeof a_seed, "%" PRIu64, w->seed);
  snprintf(a_base, sizeof a_base, "%" PRId64, w->base);
  snprintf(a_fd, sizeof a_fd, "%d", p[1]);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (fcntl(p[1], F_SETFD, 0) != 0) _exit(126);
    execl("/proc/self/exe", "test_sqlite_crash", "--crash-child", w->dir, a_round, a_seed, a_base,
          a_fd, mode, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  *ready = p[0];
  return pid;
}

/* Waits for the child's "running" byte; false if it ended first. */
static bool wait_ready(int fd, int round) {
  struct pollfd pf = {.fd = fd, .events = POLLIN};
  int n;
  while ((n = poll(&pf, 1, 30000)) < 0 && errno == EINTR) {
  }
  if (n == 0) fail_msg("round %d: the child did not start within 30 s", round);
  char c;
  return read(fd, &c, 1) == 1;
}

static void describe_status(int status, char *buf, size_t len) {
  if (WIFEXITED(status))
    snprintf(buf, len, "exited with %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
  else
    snprintf(buf, len, "status %d", status);
}

static void kill_child(world *w, pid_t pid, int round, bool early) {
  int status;
  assert_int_equal(kill(pid, SIGKILL), 0);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
    char how[64];
    describe_status(status, how, sizeof how);
    violation(w, "round %d: the child %s before it was killed", round, how);
  }
  if (early)
    w->early_kills++;
  else
    w->kills++;
}

/* While a child runs: a second scheduler is refused, a reader can read. */
static void probe_running(world *w, int round) {
  char err[512] = "";
  if (round % 8 == 0) {
    apsched_sqlite_options o = {.path = w->db};
    apsched_jobstore *st = NULL;
    int rc = apsched_sqlite_store_create(&o, &st, err, sizeof err);
    if (rc != APSCHED_ESTATE)
      violation(w, "round %d: a second scheduler opened the file of a running one: %s (%s)", round,
                apsched_strerror(rc), err);
    if (rc == APSCHED_OK) apsched_jobstore_free(st);
    w->lock_checks++;
  } else if (round % 8 == 4) {
    apsched_job *jobs;
    size_t count;
    int rc = read_jobs(w->db, true, &jobs, &count, err, sizeof err);
    if (rc != APSCHED_OK)
      violation(w, "round %d: an outside reader failed while the scheduler ran: %s (%s)", round,
                apsched_strerror(rc), err);
    else
      apsched_jobs_free(jobs, count);
    w->reader_checks++;
  }
}

static void cleanup_dir(world *w) {
  DIR *dir = opendir(w->dir);
  assert_non_null(dir);
  struct dirent *de;
  char path[600];
  while ((de = readdir(dir)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", w->dir, de->d_name);
    unlink(path);
  }
  closedir(dir);
  assert_int_equal(rmdir(w->dir), 0);
}

static int by_id_time(const void *a, const void *b) {
  const run_rec *x = a, *y = b;
  int c = strcmp(x->id, y->id);
  if (c) return c;
  return x->t < y->t ? -1 : x->t > y->t;
}

static void test_sigkill_at_random_moments(void **state) {
  (void)state;
  world *w = calloc(1, sizeof *w);
  assert_non_null(w);
  const char *env = getenv("APSCHED_CRASH_SEED");
  w->seed = env ? strtoull(env, NULL, 10) : ((uint64_t)apsched_now() ^ ((uint64_t)getpid() << 32));
  env = getenv("APSCHED_CRASH_KILLS");
  int target = env ? atoi(env) : DEFAULT_KILLS;
  if (target < 1) target = DEFAULT_KILLS;
  env = getenv("APSCHED_CRASH_GO_ON");
  bool go_on = env && *env == '1';
  printf("test_sqlite_crash: seed %" PRIu64 " (APSCHED_CRASH_SEED=%" PRIu64 " repeats it), %d kills\n",
         w->seed, w->seed, target);
  fflush(stdout);
  rng r;
  rng_seed(&r, w->seed);
  snprintf(w->dir, sizeof w->dir, "/tmp/apsched-crash-XXXXXX");
  assert_non_null(mkdtemp(w->dir));
  snprintf(w->db, sizeof w->db, "%s/jobs.db", w->dir);
  snprintf(w->copy, sizeof w->copy, "%s/check.db", w->dir);
  w->base = apsched_now() / APSCHED_SEC * APSCHED_SEC;
  for (int ms = 10; ms <= 50; ms++) trigger_text(make_interval(ms, w->base), w->itext[ms], sizeof w->itext[ms]);
  for (int i = 0; i < POOL; i++) w->open_q[i] = -1;
  quiet_after(w, INT64_MIN); /* nothing exists yet */
  apsched_time_t started = apsched_now();

  int round = 0;
  while (w->kills < target) {
    round++;
    bool early = rng_below(&r, 8) == 0;
    int ready;
    pid_t pid = spawn(w, round, "kill", &ready);
    apsched_time_t kill_time;
    if (early) { /* during start-up: exec, opening and recovering the file, starting */
      sleep_us((int64_t)rng_below(&r, EARLY_KILL_MAX_US));
    } else {
      if (!wait_ready(ready, round)) {
        int status;
        char how[64];
        assert_int_equal(waitpid(pid, &status, 0), pid);
        describe_status(status, how, sizeof how);
        fail_msg("round %d: the child %s before it ran (exit 3: the killed scheduler's lock "
                 "still held the file); kept in %s",
                 round, how, w->dir);
      }
      int64_t delay = (int64_t)rng_below(&r, MAX_KILL_DELAY_US + 1);
      apsched_time_t t0 = apsched_now();
      probe_running(w, round);
      sleep_us(delay - (apsched_now() - t0));
    }
    kill_time = apsched_now();
    kill_child(w, pid, round, early);
    close(ready);
    check_round(w, round, kill_time, false);
    if (w->violations && !go_on) break;
  }

  if (!w->violations || go_on) { /* a last round that ends cleanly */
    round++;
    int ready, status;
    pid_t pid = spawn(w, round, "final", &ready);
    assert_true(wait_ready(ready, round));
    close(ready);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      char how[64];
      describe_status(status, how, sizeof how);
      violation(w, "the last round's child %s", how);
    }
    check_round(w, round, INT64_MAX, true);
  }
  w->rounds = round;

  /* No at-most-once run twice: (job id, scheduled time) is unique over all
   * rounds. An at-least-once run is done again only after a kill: never
   * twice in one round, and never a second attempt 1. */
  qsort(w->runs, w->nruns, sizeof *w->runs, by_id_time);
  size_t pool_runs = 0, date_runs = 0, alo_runs = 0;
  for (size_t i = 0; i < w->nruns; i++) {
    run_rec *rr = &w->runs[i], *prev = i > 0 ? &w->runs[i - 1] : NULL;
    if (rr->id[0] == 'p')
      pool_runs++;
    else if (rr->id[0] == 'a')
      alo_runs++;
    else
      date_runs++;
    if (!prev || by_id_time(prev, rr) != 0) continue;
    if (rr->id[0] != 'a')
      violation(w, "job %s ran twice for %" PRId64 " (in rounds %d and %d)", rr->id, rr->t,
                prev->round, rr->round);
    else if (prev->round == rr->round || (prev->attempt == 1 && rr->attempt == 1))
      violation(w, "at-least-once job %s ran twice for %" PRId64 " without a kill between (rounds "
                "%d and %d, attempts %u and %u)",
                rr->id, rr->t, prev->round, rr->round, prev->attempt, rr->attempt);
  }
  /* No run scheduled while its job was paused or removed. */
  for (size_t i = 0; i < w->nruns; i++) {
    int idx = pool_index(w->runs[i].id);
    if (idx < 0) continue;
    for (size_t j = 0; j < w->nq; j++)
      if (w->q[j].idx == idx && w->runs[i].t > w->q[j].from && w->runs[i].t < w->q[j].to)
        violation(w, "job %s ran for %" PRId64 " (round %d) while paused or removed (%" PRId64
                  "..%" PRId64 ")",
                  w->runs[i].id, w->runs[i].t, w->runs[i].round, w->q[j].from, w->q[j].to);
  }

  double secs = (double)(apsched_now() - started) / 1e6;
  printf("test_sqlite_crash: seed %" PRIu64 ": %d rounds in %.1f s, %d kills of a running "
         "scheduler + %d during start-up; %d calls completed; calls in flight at a kill: %d not "
         "done, %d done, %d either; %zu runs (%zu interval, %zu date, %zu at-least-once date "
         "of %zu jobs, %d of them runs again after a kill); %d date runs lost at a kill "
         "(at most once); %d lock probes, %d reader probes; checks took %.1f s; %d violations\n",
         w->seed, w->rounds, secs, w->kills, w->early_kills, w->ops_done, w->inflight_pre,
         w->inflight_post, w->inflight_same, w->nruns, pool_runs, date_runs, alo_runs, w->na,
         w->recovered, w->date_lost_at_kill,
         w->lock_checks, w->reader_checks, (double)w->checks_us / 1e6, w->violations);
  fflush(stdout);
  if (w->violations) fail_msg("%d violations (seed %" PRIu64 "); files kept in %s", w->violations, w->seed, w->dir);
  assert_true(w->kills >= 100 || target < 100);
  assert_true(pool_runs > 0 && date_runs > 0 && alo_runs > 0);
  cleanup_dir(w);
  free(w->q);
  free(w->d);
  free(w->a);
  free(w->runs);
  free(w);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--crash-child") == 0) return child_main(argc, argv);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sigkill_at_random_moments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
