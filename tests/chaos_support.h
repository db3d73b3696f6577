/* The bounded chaos test of schedulers sharing one store, for every shared
 * store (test_pg_chaos.c, test_redis_chaos.c; header-only, after support.h
 * and internal.h). Each program describes its store in a chaos_backend and
 * calls chaos_run (the parent) or chaos_child (main's --chaos mode).
 *
 * Three scheduler processes (this binary again, --chaos) run 64 jobs due
 * every second for WINDOW_S seconds (interval jobs and second-level cron
 * jobs, half of each at least once: about 2,900 due runs), while the parent
 *  - SIGKILLs a random scheduler at random moments (at least MIN_KILLS
 *    times) and restarts it at once (a restarting scheduler retries its
 *    store until the server answers);
 *  - SIGSTOPs one scheduler that holds runs for longer than 2 x its lease
 *    (until the others took every run of it over), then continues it;
 *  - restarts the server once in the middle (down for SERVER_DOWN_MS, a
 *    scheduler killed meanwhile, so one starts while the server is down).
 * Every job appends a line per run it starts to a file opened O_APPEND
 * (record_line): the truth outside the store. When the window is over the
 * schedulers settle (every job finished, no run record left), are stopped,
 * and the lines and the store's run history must show:
 *  - no scheduled time of an at-most-once job started twice; one of an
 *    at-least-once job started again only as a higher attempt, and only
 *    after its earlier starter was killed or stopped;
 *  - no scheduled time of an at-least-once job lost;
 *  - every scheduled time of an at-most-once job that did not start is in
 *    the history as failed, missed or skipped (reported, not silently lost);
 *  - exactly one history entry per scheduled time (a fenced scheduler's
 *    late end of a run it lost, or an end recorded twice, would add one),
 *    executed iff an at-most-once run started, at the attempt that ran last
 *    for an at-least-once one; no run record left; no job left.
 *
 * What is due, exactly: coalesce is off and the misfire grace time
 * unlimited, so every trigger time from the first to the end date is due
 * and runs however late (after an outage, in a survivor), never merged
 * into one run or dropped as missed; max_instances is far above what can
 * overlap, so no run is skipped for instances. The lease is short (1 s, 2 s
 * under sanitizers) so the stalled scheduler is taken over within seconds.
 * Counts and deadlines only: the window is long enough for MIN_KILLS at the
 * kill rate, and every wait has a generous deadline. Set
 * APSCHED_CHAOS_SEED to replay a run's random choices.
 *
 * Also here, for tests of several scheduler processes: spawn_with_stdin
 * runs this binary again (/proc/self/exe) with a mode, the server's
 * target and more arguments; wait_exit; record_line / read_runs (one
 * "job scheduled attempt pid start end" line per run in one write(), so
 * lines of processes killed at any moment never interleave); cluster_job
 * (a job record for the store's add), add_jobs, new_schema, runs_path. */
#ifndef APSCHED_TEST_CHAOS_SUPPORT_H
#define APSCHED_TEST_CHAOS_SUPPORT_H

#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

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

static atomic_int schema_seq;

/* A fresh schema (or prefix) name: stem_N. */
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

/* ------------------------------------------------------------ children */

/* Starts this binary with mode, target (the server's conninfo or URL),
 * then args (a NULL-terminated list); stdin_fd >= 0 becomes its stdin. */
static inline pid_t spawn_with_stdin(const char *mode, const char *target, const char *const *args,
                                     int stdin_fd) {
  char *argv[16];
  int k = 0;
  argv[k++] = (char *)"apsched-test-child";
  argv[k++] = (char *)mode;
  argv[k++] = (char *)target;
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

/* The child's exit code, or 128 + the signal that ended it. */
static inline int wait_exit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ============================================================ the chaos */

#define CHAOS_FN "chaos.record"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CHAOS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CHAOS_SANITIZED 1
#endif
#endif
#ifndef CHAOS_SANITIZED
#define CHAOS_SANITIZED 0
#endif

enum {
  SCHEDULERS = 3,
  INTERVAL_JOBS = 32, /* every 1 s, their starts spread over the second */
  CRON_JOBS = 32,     /* second="*": all at the whole second */
  JOBS = INTERVAL_JOBS + CRON_JOBS,
  WINDOW_S = 45,      /* due from T0 to T0 + WINDOW_S */
  MIN_KILLS = 110,
  KILL_GAP_MIN_MS = 100, KILL_GAP_MAX_MS = 500,
  LEASE_MS = CHAOS_SANITIZED ? 2000 : 1000,
  SERVER_DOWN_MS = 1500,
  MAX_INSTANCES = 64,
  SETTLE_MS = 120000,   /* at most, after the window, for the last runs */
  STORE_RETRY_MS = 120000, /* a child gives up making its store after this */
};

/* One entry of the store's run history. */
typedef struct hist_row {
  char job[32];
  int64_t scheduled;
  unsigned attempt;
  char outcome[16];
} hist_row;

/* What the chaos needs of a store and its server. where is the schema or
 * prefix the schedulers share. The parent's calls run while the server is
 * up and fail the test on an error. */
typedef struct chaos_backend {
  const char *history;    /* the history's name in messages ("run_history") */
  const char *target;     /* the server's conninfo or URL, for the children */
  /* A store on where with lease_ms, keeping its whole run history if
   * history; APSCHED_OK or an error with errbuf saying why. */
  int (*store_create)(const char *target, const char *where, int lease_ms, bool history,
                      apsched_jobstore **out, char *errbuf, size_t errlen);
  /* The id of the newest scheduler of process pid in the store ("" if it
   * has not registered yet), and how many run records it owns. */
  void (*scheduler_id)(const char *where, pid_t pid, char *id, size_t len);
  long (*owned_runs)(const char *where, const char *id);
  long (*jobs_left)(const char *where);
  long (*runs_left)(const char *where);
  /* The whole run history (malloc'd array in *out). */
  size_t (*read_history)(const char *where, hist_row **out);
  /* Stops the server (as its chaos says: a fast shutdown, a crash);
   * starts it again on the same data (nonzero: failed, why says why). */
  void (*server_stop)(void);
  int (*server_start)(char *why, size_t len);
} chaos_backend;

/* ------------------------------------------------------------- children */

static int g_events_fd = -1;

/* Appends "pid text" as one line to the events file (newlines flattened). */
static void note(const char *fmt, ...) {
  char line[600];
  int n = snprintf(line, sizeof line, "%d ", (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m < sizeof line - (size_t)n - 1 ? (size_t)m : sizeof line - (size_t)n - 2);
  for (size_t i = 0; i < len; i++)
    if (line[i] == '\n') line[i] = ' ';
  line[len++] = '\n';
  if (g_events_fd >= 0 && write(g_events_fd, line, len) < 0) return;
}

/* Records its start first (a run killed at any later moment has started),
 * then works for as many ms as its argument says. */
static int chaos_job(apsched_run_ctx *run) {
  apsched_time_t start = apsched_now();
  if (record_line(run, start, start) != 0) return 1;
  size_t len = 0;
  const char *arg = apsched_run_arg_bytes(run, &len);
  char ms[16] = "0";
  if (len > 0 && len < sizeof ms) memcpy(ms, arg, len), ms[len] = '\0';
  sleep_ms(atoi(ms));
  return 0;
}

static void chaos_listener(const apsched_event *ev, void *ud) {
  (void)ud;
  note("%s %s %" PRId64 " %u %s", apsched_event_name(ev->code),
       ev->job_id ? ev->job_id : ev->alias ? ev->alias : "-", ev->scheduled_run_time, ev->attempt,
       ev->error ? ev->error : "");
}

/* argv: --chaos TARGET WHERE RUNS_FILE EVENTS_FILE LEASE_MS
 * A scheduler on the store until its stdin ends (the parent closes it).
 * Makes its store again and again while the server is down. */
static int chaos_child(const chaos_backend *b, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  g_runs_fd = open(argv[4], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  g_events_fd = open(argv[5], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (g_runs_fd < 0 || g_events_fd < 0 || apsched_register_func(CHAOS_FN, chaos_job) != APSCHED_OK)
    return 2;
  apsched_config cfg = {.timezone = "UTC", .max_wait = 200 * APSCHED_MSEC,
                        .store_retry_interval = 500 * APSCHED_MSEC};
  const int events = APSCHED_EVENT_JOB_ERROR | APSCHED_EVENT_JOB_MISSED |
                     APSCHED_EVENT_JOB_RECOVERED | APSCHED_EVENT_JOB_MAX_INSTANCES |
                     APSCHED_EVENT_JOBSTORE_FAILED | APSCHED_EVENT_JOBSTORE_RECOVERED;
  apsched_scheduler *s = NULL;
  int64_t give_up = mono_ms() + STORE_RETRY_MS;
  for (unsigned tries = 1;; tries++) {
    apsched_jobstore *st = NULL;
    char err[256] = "";
    int rc = b->store_create(argv[2], argv[3], atoi(argv[6]), true, &st, err, sizeof err);
    if (rc == APSCHED_OK) {
      if (apsched_create(&cfg, &s) != APSCHED_OK ||
          apsched_add_listener(s, chaos_listener, events, NULL, NULL) != APSCHED_OK)
        return 2;
      rc = apsched_add_jobstore(s, st, "db"); /* takes the store, also when it fails */
      if (rc == APSCHED_OK) rc = apsched_start(s, false);
      if (rc != APSCHED_OK) {
        snprintf(err, sizeof err, "%s", apsched_last_error());
        apsched_free(s);
        s = NULL;
      }
    }
    if (rc == APSCHED_OK) {
      note("STARTED after %u tries", tries);
      break;
    }
    note("STORE-RETRY %u: %s", tries, err);
    if (mono_ms() > give_up) {
      fprintf(stderr, "chaos child %d: no store after %u tries: %s\n", (int)getpid(), tries, err);
      return 3;
    }
    sleep_ms(50);
  }
  char byte;
  while (read(0, &byte, 1) > 0 || errno == EINTR) {
  }
  apsched_shutdown(s, true);
  apsched_free(s);
  return 0;
}

/* ---------------------------------------------------------------- parent */

static uint64_t g_rand;

static unsigned rnd(unsigned n) {
  g_rand ^= g_rand << 13;
  g_rand ^= g_rand >> 7;
  g_rand ^= g_rand << 17;
  return (unsigned)(g_rand % n);
}

/* A scheduler child and the write end of its stdin (closing it stops it). */
typedef struct child {
  pid_t pid;
  int ctl;
} child;

typedef struct chaos {
  const chaos_backend *b;
  char where[32], runs[128], events[160], lease[16];
  child kids[SCHEDULERS];
  pid_t killed[1024];
  size_t nkilled;
  unsigned restarts_unexpected;
  char unexpected[256];
} chaos;

static void child_start(chaos *c, int i) {
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  const char *args[] = {c->where, c->runs, c->events, c->lease, NULL};
  c->kids[i].pid = spawn_with_stdin("--chaos", c->b->target, args, p[0]);
  close(p[0]);
  c->kids[i].ctl = p[1];
}

static void child_kill(chaos *c, int i) {
  kill(c->kids[i].pid, SIGKILL);
  assert_int_equal(wait_exit(c->kids[i].pid), 128 + SIGKILL);
  if (c->nkilled < sizeof c->killed / sizeof *c->killed) c->killed[c->nkilled++] = c->kids[i].pid;
  close(c->kids[i].ctl);
  child_start(c, i);
}

/* A child that ended by itself is a failure (noted) and is started again. */
static void reap_unexpected(chaos *c, int skip) {
  for (int i = 0; i < SCHEDULERS; i++) {
    int status;
    if (i == skip || waitpid(c->kids[i].pid, &status, WNOHANG) != c->kids[i].pid) continue;
    if (c->restarts_unexpected++ == 0)
      snprintf(c->unexpected, sizeof c->unexpected, "scheduler pid %d ended by itself (status %d)",
               (int)c->kids[i].pid, status);
    close(c->kids[i].ctl);
    child_start(c, i);
  }
}

static bool was_killed(const chaos *c, int pid) {
  for (size_t i = 0; i < c->nkilled; i++)
    if (c->killed[i] == pid) return true;
  return false;
}

/* One job's due times (its trigger walked from first to its end date). */
typedef struct due_job {
  char id[32];
  bool alo;
  apsched_time_t *times;
  size_t n;
} due_job;

static void due_times(due_job *d, const apsched_trigger *t, apsched_time_t first) {
  size_t cap = 64;
  d->times = malloc(cap * sizeof *d->times);
  d->n = 0;
  for (apsched_time_t at = first; at != APSCHED_TIME_NONE; at = apsched_trigger_next(t, at, at)) {
    if (d->n == cap) d->times = realloc(d->times, (cap *= 2) * sizeof *d->times);
    d->times[d->n++] = at;
  }
}

/* Adds the jobs (due from t0 to end) and fills in what each must run. */
static void add_chaos_jobs(chaos *c, apsched_time_t t0, apsched_time_t end, due_job *due) {
  apsched_jobstore *st = NULL;
  char err[256];
  if (c->b->store_create(c->b->target, c->where, LEASE_MS, false, &st, err, sizeof err) != APSCHED_OK)
    fail_msg("the test's own store: %s", err);
  apsched_job_record *recs[JOBS];
  for (int i = 0; i < JOBS; i++) {
    bool cron = i >= INTERVAL_JOBS, alo = i % 2;
    apsched_trigger *t;
    apsched_time_t first;
    if (cron) {
      apsched_cron_options o = {.second = "*", .start_date = t0, .end_date = end, .timezone = "UTC"};
      assert_int_equal(apsched_trigger_cron(&o, &t, NULL, 0), APSCHED_OK);
      first = apsched_trigger_next(t, APSCHED_TIME_NONE, t0);
    } else {
      first = t0 + i * (APSCHED_SEC / INTERVAL_JOBS);
      apsched_interval_options o = {.seconds = 1, .start_date = first, .end_date = end};
      assert_int_equal(apsched_trigger_interval(&o, &t, NULL, 0), APSCHED_OK);
    }
    snprintf(due[i].id, sizeof due[i].id, "%s-%s-%02d", cron ? "cron" : "every", alo ? "alo" : "amo", i);
    due[i].alo = alo;
    due_times(&due[i], t, first);
    char work_ms[16];
    snprintf(work_ms, sizeof work_ms, "%d", 10 + (i * 37) % 140);
    recs[i] = cluster_job(due[i].id, CHAOS_FN, t, first, alo, MAX_INSTANCES, false, work_ms);
  }
  add_jobs(st, recs, JOBS);
  st->vtable->destroy(st);
}

static int hist_order(const void *a, const void *b) {
  const hist_row *x = a, *y = b;
  int k = strcmp(x->job, y->job);
  return k ? k : (x->scheduled > y->scheduled) - (x->scheduled < y->scheduled);
}

/* Lines of the events file from pid (0: any) that contain needle. */
static unsigned events_from(const char *path, int pid, const char *needle) {
  FILE *f = fopen(path, "r");
  char line[700];
  unsigned n = 0;
  while (f && fgets(line, sizeof line, f))
    if ((pid == 0 || atoi(line) == pid) && strstr(line, needle)) n++;
  if (f) fclose(f);
  return n;
}

/* Problems found, kept for one message. */
typedef struct problems {
  unsigned n;
  char text[8192];
  size_t len;
} problems;

static void problem(problems *p, const char *fmt, ...) {
  if (p->n++ >= 24) return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(p->text + p->len, sizeof p->text - p->len, fmt, ap);
  va_end(ap);
  if (m > 0) p->len += (size_t)m < sizeof p->text - p->len ? (size_t)m : sizeof p->text - p->len - 1;
  if (p->len + 1 < sizeof p->text) p->text[p->len++] = '\n', p->text[p->len] = '\0';
}

/* The whole test: the chaos, the settling, the checks, one summary line
 * ("chaos: ..."). stem names the schema or prefix. */
static void chaos_run(const chaos_backend *b, const char *stem) {
  int64_t began = mono_ms();
  const char *seed = getenv("APSCHED_CHAOS_SEED");
  g_rand = seed && *seed ? strtoull(seed, NULL, 10) : (uint64_t)apsched_now() | 1;
  printf("chaos: seed %" PRIu64 " (APSCHED_CHAOS_SEED), lease %d ms\n", g_rand, LEASE_MS);
  chaos *c = calloc(1, sizeof *c);
  c->b = b;
  new_schema(c->where, sizeof c->where, stem);
  runs_path(c->runs, sizeof c->runs, c->where);
  snprintf(c->events, sizeof c->events, "%s.events", c->runs);
  unlink(c->events);
  snprintf(c->lease, sizeof c->lease, "%d", LEASE_MS);

  /* Due from a few seconds ahead (the schedulers start meanwhile). */
  apsched_time_t t0 = (apsched_now() / APSCHED_SEC + 4) * APSCHED_SEC;
  apsched_time_t end = t0 + WINDOW_S * APSCHED_SEC;
  due_job due[JOBS];
  add_chaos_jobs(c, t0, end, due);
  size_t occurrences = 0;
  for (int i = 0; i < JOBS; i++) occurrences += due[i].n;
  for (int i = 0; i < SCHEDULERS; i++) child_start(c, i);

  int64_t t0_ms = mono_ms() + (t0 - apsched_now()) / APSCHED_MSEC;
  int64_t end_ms = t0_ms + WINDOW_S * 1000;
  int64_t stop_at = t0_ms + WINDOW_S * 1000 / 4, restart_at = t0_ms + WINDOW_S * 1000 * 3 / 5;
  int64_t next_kill = t0_ms + KILL_GAP_MIN_MS + rnd(KILL_GAP_MAX_MS - KILL_GAP_MIN_MS);
  unsigned kills = 0, stop_tries = 0;
  int stalled = -1, stalled_pid = 0;
  char stalled_id[40] = "";
  int64_t stalled_at = 0, stalled_for = 0;
  long taken_from_stalled = 0;
  bool stall_done = false, restart_done = false, down = false;
  int64_t up_at = 0, down_at = 0, down_for = 0;

  for (;;) {
    int64_t now = mono_ms();
    reap_unexpected(c, stalled);
    /* The stall: a scheduler that holds runs, stopped until all are taken over. */
    if (!stall_done && stalled < 0 && now >= stop_at && !down) {
      int i = (int)rnd(SCHEDULERS);
      b->scheduler_id(c->where, c->kids[i].pid, stalled_id, sizeof stalled_id);
      if (stalled_id[0] && kill(c->kids[i].pid, SIGSTOP) == 0) {
        stalled = i;
        stalled_pid = c->kids[i].pid;
        stalled_at = now;
        taken_from_stalled = -1;
        stop_tries++;
      }
    } else if (stalled >= 0 && now - stalled_at >= 100) {
      long owned = b->owned_runs(c->where, stalled_id);
      if (taken_from_stalled < 0 && owned == 0) {
        /* It held no run: continue it and try again later. */
        kill(stalled_pid, SIGCONT);
        stalled = -1;
        stop_at = now + 200 + rnd(300);
        if (stop_tries > 100) fail_msg("no scheduler held runs in 100 tries");
      } else {
        if (taken_from_stalled < 0) taken_from_stalled = owned;
        if (owned > taken_from_stalled) taken_from_stalled = owned;
        if (owned == 0 && now - stalled_at >= 2 * LEASE_MS) {
          kill(stalled_pid, SIGCONT);
          stalled_for = now - stalled_at;
          stalled = -1;
          stall_done = true;
        } else if (now - stalled_at > 60000) {
          kill(stalled_pid, SIGCONT);
          fail_msg("the runs of the stopped scheduler %s were not taken over in 60 s (%ld left)",
                   stalled_id, owned);
        }
      }
    }
    /* The server restart, with a scheduler restarting while it is down. */
    if (!restart_done && !down && stall_done && now >= restart_at) {
      b->server_stop();
      down = true;
      down_at = now;
      up_at = now + SERVER_DOWN_MS;
      int i = (int)rnd(SCHEDULERS);
      child_kill(c, i);
      kills++;
    } else if (down && now >= up_at) {
      char why[512] = "";
      if (b->server_start(why, sizeof why) != 0) fail_msg("restarting the server: %s", why);
      down = false;
      restart_done = true;
      down_for = mono_ms() - down_at;
    }
    if (now >= next_kill) {
      int i = (int)rnd(SCHEDULERS);
      if (i == stalled) i = (i + 1) % SCHEDULERS;
      child_kill(c, i);
      kills++;
      next_kill = now + KILL_GAP_MIN_MS + rnd(KILL_GAP_MAX_MS - KILL_GAP_MIN_MS);
    }
    if (now >= end_ms && kills >= MIN_KILLS && stall_done && restart_done) break;
    if (now > end_ms + 60000) fail_msg("the chaos did not finish: %u kills, stall %d, restart %d", kills, stall_done, restart_done);
    sleep_ms(5); /* the pace of the chaos (kills every 100..500 ms), not a wait for a condition */
  }
  int64_t chaos_ms = mono_ms() - t0_ms;

  /* Settle: every job finished (removed at its end date), no run record left. */
  int64_t settle_from = mono_ms();
  long jobs_left = -1, runs_left = -1;
  while (mono_ms() - settle_from < SETTLE_MS) {
    reap_unexpected(c, -1);
    jobs_left = b->jobs_left(c->where);
    runs_left = b->runs_left(c->where);
    if (jobs_left == 0 && runs_left == 0) break;
    sleep_ms(50);
  }
  int64_t settle_ms = mono_ms() - settle_from;
  /* Stop them (their stdin ends): each must exit cleanly. */
  for (int i = 0; i < SCHEDULERS; i++) close(c->kids[i].ctl);
  for (int i = 0; i < SCHEDULERS; i++) {
    int status = 0;
    int64_t from = mono_ms();
    while (waitpid(c->kids[i].pid, &status, WNOHANG) == 0 && mono_ms() - from < 30000) sleep_ms(10);
    if (mono_ms() - from >= 30000) {
      kill(c->kids[i].pid, SIGKILL);
      wait_exit(c->kids[i].pid);
      fail_msg("scheduler pid %d did not shut down within 30 s", (int)c->kids[i].pid);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail_msg("scheduler pid %d ended with status %d at shutdown", (int)c->kids[i].pid, status);
  }

  /* The truth: the lines the jobs wrote, and what the store recorded. */
  run_line *lines;
  size_t nlines = read_runs(c->runs, &lines);
  qsort(lines, nlines, sizeof *lines, by_job_time);
  hist_row *hist;
  size_t nhist = b->read_history(c->where, &hist);
  qsort(hist, nhist, sizeof *hist, hist_order);
  const char *hn = b->history;
  problems p = {0};
  if (c->restarts_unexpected) problem(&p, "%u scheduler(s) ended by themselves; first: %s", c->restarts_unexpected, c->unexpected);
  if (jobs_left != 0 || runs_left != 0)
    problem(&p, "after %d s of settling: %ld jobs and %ld run records left", SETTLE_MS / 1000, jobs_left, runs_left);
  size_t li = 0, hi = 0, lines_matched = 0, hist_matched = 0;
  unsigned amo_unstarted = 0, amo_lost_after_start = 0, alo_repeats = 0;
  /* Jobs in id order, as lines and history are sorted. */
  int order[JOBS];
  for (int i = 0; i < JOBS; i++) order[i] = i;
  for (int i = 0; i < JOBS; i++)
    for (int k = i + 1; k < JOBS; k++)
      if (strcmp(due[order[k]].id, due[order[i]].id) < 0) {
        int t = order[i];
        order[i] = order[k];
        order[k] = t;
      }
  for (int oi = 0; oi < JOBS; oi++) {
    const due_job *d = &due[order[oi]];
    for (size_t ti = 0; ti < d->n; ti++) {
      apsched_time_t t = d->times[ti];
      /* Skip lines and entries of other jobs or times: reported below as unmatched. */
      while (li < nlines && (strcmp(lines[li].job, d->id) < 0 || (strcmp(lines[li].job, d->id) == 0 && lines[li].scheduled < t))) li++;
      while (hi < nhist && (strcmp(hist[hi].job, d->id) < 0 || (strcmp(hist[hi].job, d->id) == 0 && hist[hi].scheduled < t))) hi++;
      size_t l0 = li, h0 = hi;
      while (li < nlines && strcmp(lines[li].job, d->id) == 0 && lines[li].scheduled == t) li++;
      while (hi < nhist && strcmp(hist[hi].job, d->id) == 0 && hist[hi].scheduled == t) hi++;
      size_t nl = li - l0, nh = hi - h0;
      lines_matched += nl;
      hist_matched += nh;
      const hist_row *h = nh ? &hist[h0] : NULL;
      if (nh != 1) {
        problem(&p, "%s at %" PRId64 ": %zu %s entries (one expected: %s attempt %u, %s attempt %u), %zu starts",
                d->id, t, nh, hn, nh ? h[0].outcome : "-", nh ? h[0].attempt : 0,
                nh > 1 ? h[1].outcome : "-", nh > 1 ? h[1].attempt : 0, nl);
        continue;
      }
      if (!d->alo) {
        if (nl > 1)
          problem(&p, "%s at %" PRId64 " (at most once) started %zu times (pids %d, %d)", d->id, t, nl, lines[l0].pid, lines[l0 + 1].pid);
        if (nl >= 1 && lines[l0].attempt != 1)
          problem(&p, "%s at %" PRId64 " (at most once) started as attempt %u", d->id, t, lines[l0].attempt);
        if (h->attempt != 1) problem(&p, "%s at %" PRId64 ": %s attempt %u", d->id, t, hn, h->attempt);
        bool executed = strcmp(h->outcome, "executed") == 0;
        if (executed && nl == 0)
          problem(&p, "%s at %" PRId64 ": %s says executed, but it never started", d->id, t, hn);
        if (nl == 0) amo_unstarted++;
        if (!executed && nl == 1) amo_lost_after_start++;
        continue;
      }
      if (nl == 0) {
        problem(&p, "%s at %" PRId64 " (at least once) never started (%s: %s, attempt %u)", d->id, t, hn, h->outcome, h->attempt);
        continue;
      }
      if (strcmp(h->outcome, "executed") != 0)
        problem(&p, "%s at %" PRId64 " (at least once): %s outcome %s", d->id, t, hn, h->outcome);
      if (h->attempt != lines[li - 1].attempt)
        problem(&p, "%s at %" PRId64 ": %s attempt %u, last start attempt %u", d->id, t, hn, h->attempt, lines[li - 1].attempt);
      for (size_t k = l0; k + 1 < li; k++) {
        alo_repeats++;
        if (lines[k].attempt == lines[k + 1].attempt)
          problem(&p, "%s at %" PRId64 " started twice as attempt %u (pids %d, %d)", d->id, t, lines[k].attempt, lines[k].pid, lines[k + 1].pid);
        else if (!was_killed(c, lines[k].pid) && lines[k].pid != stalled_pid)
          problem(&p, "%s at %" PRId64 " ran again as attempt %u (pid %d) though attempt %u's pid %d was neither killed nor stopped", d->id, t, lines[k + 1].attempt, lines[k + 1].pid, lines[k].attempt, lines[k].pid);
      }
    }
  }
  if (lines_matched != nlines) problem(&p, "%zu starts at times that were not due", nlines - lines_matched);
  if (hist_matched != nhist) problem(&p, "%zu %s entries at times that were not due", nhist - hist_matched, hn);
  if (taken_from_stalled <= 0) problem(&p, "the stopped scheduler held no run when it was stopped");
  unsigned create_retries = events_from(c->events, 0, "STORE-RETRY");
  if (create_retries == 0) problem(&p, "no scheduler had to retry making its store (the server was down)");
  unsigned fenced_starts = events_from(c->events, stalled_pid, "the claim of this run was lost");
  unsigned fenced_ends = events_from(c->events, stalled_pid, "its end is not recorded");
  printf("chaos: %zu due runs of %d jobs in %" PRId64 " ms; %zu starts; %u SIGKILLs; one scheduler "
         "stopped for %" PRId64 " ms holding %ld runs (then refused %u starts, %u ends); the server "
         "down for %" PRId64 " ms; %u store retries; at most once: %u not started (in %s), %u lost "
         "after starting; at least once: %u repeated; settled in %" PRId64 " ms; %" PRId64 " ms in all\n",
         occurrences, JOBS, chaos_ms, nlines, kills, stalled_for, taken_from_stalled, fenced_starts,
         fenced_ends, down_for, create_retries, amo_unstarted, hn, amo_lost_after_start, alo_repeats,
         settle_ms, mono_ms() - began);
  if (p.n) fail_msg("%u problem(s) (runs file %s, events %s):\n%s", p.n, c->runs, c->events, p.text);
  assert_true(kills >= 100);
  assert_true(occurrences >= 2000);
  unlink(c->runs);
  unlink(c->events);
  free(lines);
  free(hist);
  for (int i = 0; i < JOBS; i++) free(due[i].times);
  free(c);
}

#endif
