/* The chaos test of schedulers sharing one PostgreSQL schema (issue 9):
 * three scheduler processes (this binary again, --chaos) run 64 jobs due
 * every second for WINDOW_S seconds (interval jobs and second-level cron
 * jobs, half of each at least once: about 2,900 due runs), while the parent
 *  - SIGKILLs a random scheduler at random moments (at least MIN_KILLS
 *    times) and restarts it at once (a restarting scheduler retries its
 *    store until the database answers);
 *  - SIGSTOPs one scheduler that holds runs for longer than 2 x its lease
 *    (until the others took every run of it over), then continues it;
 *  - restarts PostgreSQL once in the middle (down for PG_DOWN_MS, a
 *    scheduler killed meanwhile, so one starts while the server is down).
 * Every job appends a line per run it starts to a file opened O_APPEND
 * (pg_cluster_support.h): the truth outside the store. When the window is
 * over the schedulers settle (every job finished, no run record left), are
 * stopped, and the lines and <schema>.run_history must show:
 *  - no scheduled time of an at-most-once job started twice; one of an
 *    at-least-once job started again only as a higher attempt, and only
 *    after its earlier starter was killed or stopped;
 *  - no scheduled time of an at-least-once job lost;
 *  - every scheduled time of an at-most-once job that did not start is in
 *    run_history as failed, missed or skipped (reported, not silently lost);
 *  - exactly one run_history row per scheduled time (a fenced scheduler's
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
 * APSCHED_CHAOS_SEED to replay a run's random choices. */
#include "support.h"
#include "internal.h"
#include "apsched_pg.h"
#include "pg_server.h"
#include "pg_cluster_support.h"

#include <stdarg.h>
#include <sys/prctl.h>

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
  PG_DOWN_MS = 1500,
  MAX_INSTANCES = 64,
  SETTLE_MS = 120000,   /* at most, after the window, for the last runs */
  STORE_RETRY_MS = 120000, /* a child gives up making its store after this */
};

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

/* argv: --chaos CONNINFO SCHEMA RUNS_FILE EVENTS_FILE LEASE_MS
 * A scheduler on the schema until its stdin ends (the parent closes it).
 * Makes its store again and again while the database is down. */
static int chaos_child(char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  g_runs_fd = open(argv[4], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  g_events_fd = open(argv[5], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (g_runs_fd < 0 || g_events_fd < 0 || apsched_register_func(CHAOS_FN, chaos_job) != APSCHED_OK)
    return 2;
  apsched_pg_options o = {.conninfo = argv[2], .schema = argv[3], .lease_ms = atoi(argv[6]),
                          .history_retention = APSCHED_PG_HISTORY_FOREVER};
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
    int rc = apsched_pg_store_create(&o, &st, err, sizeof err);
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
  char b;
  while (read(0, &b, 1) > 0 || errno == EINTR) {
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
  char schema[32], runs[128], events[160], lease[16];
  child kids[SCHEDULERS];
  pid_t killed[1024];
  size_t nkilled;
  unsigned restarts_unexpected;
  char unexpected[256];
  PGconn *db;
} chaos;

static void child_start(chaos *c, int i) {
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  const char *args[] = {c->schema, c->runs, c->events, c->lease, NULL};
  c->kids[i].pid = spawn_with_stdin("--chaos", args, p[0]);
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

/* Rows of sql on the test's own connection, connecting again once if the
 * server restarted since its last use. */
static PGresult *query(chaos *c, const char *sql) {
  for (int tries = 0;; tries++) {
    PGresult *res = PQexec(c->db, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) return res;
    if (tries == 1) fail_msg("%s: %s", sql, PQerrorMessage(c->db));
    PQclear(res);
    PQreset(c->db);
  }
}

static long count_of(chaos *c, const char *sql) {
  PGresult *res = query(c, sql);
  long v = atol(PQgetvalue(res, 0, 0));
  PQclear(res);
  return v;
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
  apsched_jobstore *st = store_at(pg_server_conninfo(), c->schema, LEASE_MS);
  assert_non_null(st);
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

/* This scheduler's id in the schema ("" if it has no row yet). */
static void scheduler_id(chaos *c, pid_t pid, char *id, size_t len) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT id FROM \"%s\".schedulers WHERE pid = %d ORDER BY started_at DESC LIMIT 1",
           c->schema, (int)pid);
  PGresult *res = query(c, sql);
  id[0] = '\0';
  if (PQntuples(res) == 1)
    snprintf(id, len, "%s", PQgetvalue(res, 0, 0));
  PQclear(res);
}

static long owned_runs(chaos *c, const char *id) {
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".runs WHERE owner = '%s'", c->schema, id);
  return count_of(c, sql);
}

/* A run_history row. */
typedef struct hist_row {
  char job[32];
  int64_t scheduled;
  unsigned attempt;
  char outcome[16];
} hist_row;

static int hist_order(const void *a, const void *b) {
  const hist_row *x = a, *y = b;
  int k = strcmp(x->job, y->job);
  return k ? k : (x->scheduled > y->scheduled) - (x->scheduled < y->scheduled);
}

static size_t read_history(chaos *c, hist_row **out) {
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT job_id, scheduled_time, attempt, outcome FROM \"%s\".run_history",
           c->schema);
  PGresult *res = query(c, sql);
  size_t n = (size_t)PQntuples(res);
  hist_row *v = calloc(n ? n : 1, sizeof *v);
  for (size_t i = 0; i < n; i++) {
    snprintf(v[i].job, sizeof v[i].job, "%s", PQgetvalue(res, (int)i, 0));
    v[i].scheduled = atoll(PQgetvalue(res, (int)i, 1));
    v[i].attempt = (unsigned)atoi(PQgetvalue(res, (int)i, 2));
    snprintf(v[i].outcome, sizeof v[i].outcome, "%s", PQgetvalue(res, (int)i, 3));
  }
  PQclear(res);
  qsort(v, n, sizeof *v, hist_order);
  *out = v;
  return n;
}

/* Lines of the events file from pid that contain needle. */
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

static void test_chaos(void **state) {
  (void)state;
  int64_t began = mono_ms();
  const char *seed = getenv("APSCHED_CHAOS_SEED");
  g_rand = seed && *seed ? strtoull(seed, NULL, 10) : (uint64_t)apsched_now() | 1;
  printf("chaos: seed %" PRIu64 " (APSCHED_CHAOS_SEED), lease %d ms\n", g_rand, LEASE_MS);
  chaos *c = calloc(1, sizeof *c);
  new_schema(c->schema, sizeof c->schema, "chaos");
  runs_path(c->runs, sizeof c->runs, c->schema);
  snprintf(c->events, sizeof c->events, "%s.events", c->runs);
  unlink(c->events);
  snprintf(c->lease, sizeof c->lease, "%d", LEASE_MS);
  c->db = pg_server_connect();

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
  bool stall_done = false, restart_done = false, pg_down = false;
  int64_t pg_up_at = 0, pg_down_at = 0;

  for (;;) {
    int64_t now = mono_ms();
    reap_unexpected(c, stalled);
    /* The stall: a scheduler that holds runs, stopped until all are taken over. */
    if (!stall_done && stalled < 0 && now >= stop_at && !pg_down) {
      int i = (int)rnd(SCHEDULERS);
      scheduler_id(c, c->kids[i].pid, stalled_id, sizeof stalled_id);
      if (stalled_id[0] && kill(c->kids[i].pid, SIGSTOP) == 0) {
        stalled = i;
        stalled_pid = c->kids[i].pid;
        stalled_at = now;
        taken_from_stalled = -1;
        stop_tries++;
      }
    } else if (stalled >= 0 && now - stalled_at >= 100) {
      long owned = owned_runs(c, stalled_id);
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
    if (!restart_done && !pg_down && stall_done && now >= restart_at) {
      pg_server_stop();
      pg_down = true;
      pg_down_at = now;
      pg_up_at = now + PG_DOWN_MS;
      int i = (int)rnd(SCHEDULERS);
      child_kill(c, i);
      kills++;
    } else if (pg_down && now >= pg_up_at) {
      if (pg_server_start() != 0) fail_msg("restarting the server: %s", pg_srv.why);
      pg_down = false;
      restart_done = true;
      printf("chaos: the server was down for %" PRId64 " ms\n", mono_ms() - pg_down_at);
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
    sleep_ms(5);
  }
  int64_t chaos_ms = mono_ms() - t0_ms;

  /* Settle: every job finished (removed at its end date), no run record left. */
  char sql_jobs[128], sql_runs[128];
  snprintf(sql_jobs, sizeof sql_jobs, "SELECT count(*) FROM \"%s\".jobs", c->schema);
  snprintf(sql_runs, sizeof sql_runs, "SELECT count(*) FROM \"%s\".runs", c->schema);
  int64_t settle_from = mono_ms();
  long jobs_left = -1, runs_left = -1;
  while (mono_ms() - settle_from < SETTLE_MS) {
    reap_unexpected(c, -1);
    jobs_left = count_of(c, sql_jobs);
    runs_left = count_of(c, sql_runs);
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
  size_t nhist = read_history(c, &hist);
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
      /* Skip lines and rows of other jobs or times: reported below as unmatched. */
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
        problem(&p, "%s at %" PRId64 ": %zu run_history rows (one expected), %zu starts", d->id, t, nh, nl);
        continue;
      }
      if (!d->alo) {
        if (nl > 1)
          problem(&p, "%s at %" PRId64 " (at most once) started %zu times (pids %d, %d)", d->id, t, nl, lines[l0].pid, lines[l0 + 1].pid);
        if (nl >= 1 && lines[l0].attempt != 1)
          problem(&p, "%s at %" PRId64 " (at most once) started as attempt %u", d->id, t, lines[l0].attempt);
        if (h->attempt != 1) problem(&p, "%s at %" PRId64 ": run_history attempt %u", d->id, t, h->attempt);
        bool executed = strcmp(h->outcome, "executed") == 0;
        if (executed && nl == 0)
          problem(&p, "%s at %" PRId64 ": run_history says executed, but it never started", d->id, t);
        if (nl == 0) amo_unstarted++;
        if (!executed && nl == 1) amo_lost_after_start++;
        continue;
      }
      if (nl == 0) {
        problem(&p, "%s at %" PRId64 " (at least once) never started (run_history: %s, attempt %u)", d->id, t, h->outcome, h->attempt);
        continue;
      }
      if (strcmp(h->outcome, "executed") != 0)
        problem(&p, "%s at %" PRId64 " (at least once): run_history outcome %s", d->id, t, h->outcome);
      if (h->attempt != lines[li - 1].attempt)
        problem(&p, "%s at %" PRId64 ": run_history attempt %u, last start attempt %u", d->id, t, h->attempt, lines[li - 1].attempt);
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
  if (hist_matched != nhist) problem(&p, "%zu run_history rows at times that were not due", nhist - hist_matched);
  if (taken_from_stalled <= 0) problem(&p, "the stopped scheduler held no run when it was stopped");
  unsigned create_retries = events_from(c->events, 0, "STORE-RETRY");
  if (create_retries == 0) problem(&p, "no scheduler had to retry making its store (the server was down)");
  unsigned fenced_starts = events_from(c->events, stalled_pid, "the claim of this run was lost");
  unsigned fenced_ends = events_from(c->events, stalled_pid, "its end is not recorded");
  printf("chaos: %zu due runs of %d jobs in %" PRId64 " ms; %zu starts; %u SIGKILLs; one scheduler "
         "stopped for %" PRId64 " ms holding %ld runs (then refused %u starts, %u ends); %u store "
         "retries; at most once: %u not started (in run_history), %u lost after starting; at least "
         "once: %u repeated; settled in %" PRId64 " ms; %" PRId64 " ms in all\n",
         occurrences, JOBS, chaos_ms, nlines, kills, stalled_for, taken_from_stalled, fenced_starts,
         fenced_ends, create_retries, amo_unstarted, amo_lost_after_start, alo_repeats, settle_ms,
         mono_ms() - began);
  if (p.n) fail_msg("%u problem(s) (runs file %s, events %s):\n%s", p.n, c->runs, c->events, p.text);
  assert_true(kills >= 100);
  assert_true(occurrences >= 2000);
  unlink(c->runs);
  unlink(c->events);
  free(lines);
  free(hist);
  for (int i = 0; i < JOBS; i++) free(due[i].times);
  PQfinish(c->db);
  free(c);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 7 && strcmp(argv[1], "--chaos") == 0) return chaos_child(argv);
  if (pg_server_start() != 0) return pg_server_unavailable();
  if (apsched_register_func(CHAOS_FN, chaos_job) != APSCHED_OK) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chaos),
  };
  return cmocka_run_group_tests_name("postgresql chaos", tests, NULL, NULL);
}
