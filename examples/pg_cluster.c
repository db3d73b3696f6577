/*
 * pg_cluster.c - three scheduler processes share one PostgreSQL database;
 * every due run is executed by exactly one of them.
 *
 *   pg_cluster [CONNINFO]     (default: $APSCHED_PG_URL)
 *
 * CONNINFO is libpq's: "postgresql://user@host/dbname" or "host=... dbname=...".
 * No server at hand? tools/pg_tmp_server.sh starts a private one:
 *   tools/pg_tmp_server.sh build/pg_cluster
 *
 * The first process adds three jobs to the schema "cluster_example" (with
 * fixed ids and replace_existing, as a deployment would at every start):
 * a report every second (at most once, the default), an invoice every second
 * that must not be lost (at least once: a run whose process dies is run again
 * by another), and a cron job every other second. Then it starts three worker
 * processes, each a scheduler with its own thread pool on the same schema,
 * for a few seconds. Each run prints which worker executed it and appends a
 * line to a shared file; at the end the first process counts the lines:
 * every (job, scheduled time) must appear exactly once.
 *
 * Meanwhile `apsched schedulers --store 'CONNINFO?schema=cluster_example'`
 * shows the three workers with their heartbeats, and psql shows the claimed
 * runs: select job_id, owner, attempt from cluster_example.runs.
 * Links with libapsched-pg (apsched::pg, pkg-config apsched-pg).
 */
#include <apsched.h>
#include <apsched_pg.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call)                                                                  \
  do {                                                                               \
    int rc_ = (call);                                                                \
    if (rc_ != APSCHED_OK) {                                                         \
      fprintf(stderr, "%s failed: %s: %s\n", #call, apsched_strerror(rc_),           \
              apsched_last_error());                                                 \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

enum { WORKERS = 3, RUN_SECONDS = 4, MAX_LINES = 4096 };

static const char schema[] = "cluster_example";
static char worker_name[32];
static int runs_fd = -1; /* the shared record of runs (O_APPEND: whole lines) */

/* Every job: say who runs what, and note it in the shared file. */
static int work(apsched_run_ctx *run) {
  char when[64], line[160];
  apsched_time_format(apsched_run_scheduled_time(run), NULL, when, sizeof when);
  printf("  %s ran %-8s scheduled %s (attempt %u)\n", worker_name, apsched_run_job_id(run), when,
         apsched_run_attempt(run));
  int n = snprintf(line, sizeof line, "%s %lld %s\n", apsched_run_job_id(run),
                   (long long)apsched_run_scheduled_time(run), worker_name);
  return write(runs_fd, line, (size_t)n) == n ? 0 : 1;
}

static apsched_jobstore *open_store(const char *conninfo, const char *name) {
  apsched_pg_options o = {.conninfo = conninfo, .schema = schema, .scheduler_name = name};
  apsched_jobstore *st;
  char err[512];
  if (apsched_pg_store_create(&o, &st, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "cannot open the PostgreSQL store: %s\n", err);
    exit(1);
  }
  return st;
}

/* The deployment step: the jobs, starting at the next whole second. */
static void add_jobs(const char *conninfo) {
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  CHECK(apsched_add_jobstore(s, open_store(conninfo, "deployer"), "default"));
  CHECK(apsched_start_hosted(s, true)); /* paused: this process runs nothing */
  apsched_time_t start = (apsched_now() / APSCHED_SEC + 1) * APSCHED_SEC;
  apsched_interval_options every_second = {.microseconds = APSCHED_SEC, .start_date = start};
  apsched_cron_options every_other = {.second = "*/2", .timezone = "UTC"};
  apsched_trigger *report, *invoice, *cleanup;
  CHECK(apsched_trigger_interval(&every_second, &report, NULL, 0));
  CHECK(apsched_trigger_interval(&every_second, &invoice, NULL, 0));
  CHECK(apsched_trigger_cron(&every_other, &cleanup, NULL, 0));
  apsched_job_options jobs[3] = {
      {.id = "report", .func_name = "example.work", .trigger = report, .replace_existing = true},
      {.id = "invoice", .func_name = "example.work", .trigger = invoice,
       .delivery = APSCHED_AT_LEAST_ONCE, .replace_existing = true},
      {.id = "cleanup", .func_name = "example.work", .trigger = cleanup, .replace_existing = true}};
  CHECK(apsched_add_jobs(s, jobs, 3, NULL));
  apsched_trigger_free(report);
  apsched_trigger_free(invoice);
  apsched_trigger_free(cleanup);
  apsched_free(s);
}

/* One worker: a scheduler on the shared schema for RUN_SECONDS. */
static int worker(const char *conninfo, int k) {
  snprintf(worker_name, sizeof worker_name, "worker-%d", k);
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  CHECK(apsched_add_jobstore(s, open_store(conninfo, worker_name), "default"));
  apsched_thread_pool_options tp = {.max_workers = 4};
  apsched_executor *pool;
  CHECK(apsched_thread_pool_create(&tp, &pool));
  CHECK(apsched_add_executor(s, pool, "default"));
  CHECK(apsched_start(s, false));
  struct timespec left = {RUN_SECONDS, 0};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
  CHECK(apsched_shutdown(s, true));
  apsched_free(s);
  return 0;
}

static void remove_jobs(const char *conninfo) {
  apsched_scheduler *s;
  CHECK(apsched_create(NULL, &s));
  CHECK(apsched_add_jobstore(s, open_store(conninfo, "deployer"), "default"));
  CHECK(apsched_start_hosted(s, true));
  CHECK(apsched_remove_all_jobs(s, "default"));
  apsched_free(s);
}

static int by_text(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Counts the shared file's lines: each (job, time) once. */
static int tally(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    return 1;
  }
  static char *runs[MAX_LINES];
  int per_worker[WORKERS + 1] = {0}, n = 0, twice = 0;
  char line[160];
  while (n < MAX_LINES && fgets(line, sizeof line, f)) {
    char *w = strrchr(line, ' ');
    int k = w ? atoi(w + 1 + strlen("worker-")) : 0;
    if (k >= 1 && k <= WORKERS) per_worker[k]++;
    if (w) *w = '\0'; /* keep "job time" */
    runs[n++] = strdup(line);
  }
  fclose(f);
  qsort(runs, (size_t)n, sizeof *runs, by_text);
  for (int i = 1; i < n; i++)
    if (strcmp(runs[i], runs[i - 1]) == 0) {
      printf("  TWICE: %s\n", runs[i]);
      twice++;
    }
  for (int i = 0; i < n; i++) free(runs[i]);
  printf("%d runs, %s (worker-1: %d, worker-2: %d, worker-3: %d)\n", n,
         twice ? "SOME EXECUTED TWICE" : "each executed exactly once", per_worker[1],
         per_worker[2], per_worker[3]);
  return twice == 0 && n > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *conninfo = argc > 1 ? argv[1] : getenv("APSCHED_PG_URL");
  if (!conninfo) {
    fprintf(stderr, "usage: %s CONNINFO   (or set APSCHED_PG_URL; tools/pg_tmp_server.sh "
                    "starts a private server)\n", argv[0]);
    return 2;
  }
  CHECK(apsched_register_func("example.work", work));
  char path[] = "/tmp/pg_cluster_runs_XXXXXX";
  runs_fd = mkstemp(path);
  if (runs_fd < 0) {
    perror("mkstemp");
    return 1;
  }
  close(runs_fd);
  runs_fd = open(path, O_WRONLY | O_APPEND);

  add_jobs(conninfo);
  printf("3 jobs in schema %s; %d workers for %d seconds\n", schema, WORKERS, RUN_SECONDS);
  pid_t pids[WORKERS];
  for (int k = 0; k < WORKERS; k++) {
    pids[k] = fork();
    if (pids[k] < 0) {
      perror("fork");
      return 1;
    }
    if (pids[k] == 0) _exit(worker(conninfo, k + 1));
  }
  int failed = 0;
  for (int k = 0; k < WORKERS; k++) {
    int status;
    if (waitpid(pids[k], &status, 0) != pids[k] || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      failed++;
  }
  close(runs_fd);
  int rc = failed ? 1 : tally(path);
  unlink(path);
  remove_jobs(conninfo);
  return rc;
}
