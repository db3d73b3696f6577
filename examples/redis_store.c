/*
 * redis_store.c - the configuration APScheduler users write most, in C:
 * a Redis job store "redis" next to a SQLite job store "default", a thread
 * pool "default" and a process pool "processpool".
 *
 *   redis_store [URL]      (default: $APSCHED_REDIS_URL)
 *
 * URL is redis://[[user]:password@]host[:port][/db] or unix:///path/redis.sock.
 * No server at hand? tools/redis_tmp_server.sh starts a private one:
 *   tools/redis_tmp_server.sh build/redis_store
 *
 * In APScheduler (Python) this is
 *   jobstores = {"redis": RedisJobStore(...), "default": SQLAlchemyJobStore(url="sqlite:///jobs.sqlite")}
 *   executors = {"default": ThreadPoolExecutor(20), "processpool": ProcessPoolExecutor(5)}
 *
 * The jobs: in Redis (keys under the prefix "redis_store_example"), "tick"
 * every second on the thread pool and "once", a date job one second after
 * the start; in SQLite (a file in a temporary directory), "crunch" on the
 * process pool at every even second (cron) and "nightly" at 03:00 UTC. Each
 * run prints the pid it runs in (the process pool's runs are in worker
 * processes, the others in the scheduler's) and, in the scheduler's process,
 * its store and executor. Once each job has run (about 4 seconds), the
 * scheduler shuts down and a second scheduler opens the same Redis prefix and
 * SQLite file, as the program's next start would, and lists the jobs it
 * finds there with their executors: "once" is gone (a date job ends after its
 * run), the others are kept with their next run times.
 * Then it removes them, deletes the file and exits.
 *
 * Meanwhile `redis-cli HGETALL '{redis_store_example}:job:tick'` explains a
 * job, and `apsched jobs --store 'URL?prefix=redis_store_example'` lists them.
 * Functions are registered by name: the stores keep the name, and the next
 * process (or a process pool worker) finds the function by it. The process
 * pool is created first, while the process has a single thread (its fork
 * server is a copy of the process at that moment).
 * Links with libapsched-redis and libapsched-sqlite (apsched::redis and
 * apsched::sqlite; pkg-config apsched-redis apsched-sqlite).
 */
#include <apsched.h>
#include <apsched_redis.h>
#include <apsched_sqlite.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static const char prefix[] = "redis_store_example";
enum { WAIT_LIMIT_SECONDS = 20 };

/* ---- the jobs (crunch runs in a process pool worker) */

/* A process pool worker's run context has no store or executor aliases
 * (they stay in the scheduler's process): there the pid says where it runs. */
static void print_run(apsched_run_ctx *run, const char *what) {
  char when[64], where[96];
  apsched_time_format(apsched_run_scheduled_time(run), NULL, when, sizeof when);
  const char *store = apsched_run_jobstore(run), *executor = apsched_run_executor(run);
  if (store && executor) snprintf(where, sizeof where, "store %s, executor %s", store, executor);
  else snprintf(where, sizeof where, "in a process pool worker");
  printf("  %-7s pid %-7d %-33s %s (scheduled %s)\n", apsched_run_job_id(run), (int)getpid(),
         where, what, when);
}

static int tick(apsched_run_ctx *run) {
  print_run(run, "tick");
  return 0;
}

static int once(apsched_run_ctx *run) {
  print_run(run, "ran once");
  return 0;
}

/* CPU-bound: counts the primes below the limit in its byte argument. */
static int crunch(apsched_run_ctx *run) {
  size_t len;
  const uint32_t *limit = apsched_run_arg_bytes(run, &len);
  if (len != sizeof *limit) {
    apsched_run_set_error(run, "expected a 4-byte limit, got %zu bytes", len);
    return 1;
  }
  uint32_t count = 0;
  for (uint32_t n = 2; n < *limit; n++) {
    bool prime = true;
    for (uint32_t d = 2; d * d <= n && prime; d++) prime = n % d != 0;
    count += prime;
  }
  char what[64];
  snprintf(what, sizeof what, "%u primes below %u", count, *limit);
  print_run(run, what);
  return 0;
}

static int nightly(apsched_run_ctx *run) {
  print_run(run, "nightly work");
  return 0;
}

/* ---- the scheduler's side */

/* Runs seen by the listener (called on scheduler and pool threads). */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int ticks, onces, crunches, errors;
} seen = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};

static void on_run(const apsched_event *ev, void *user_data) {
  (void)user_data;
  pthread_mutex_lock(&seen.lock);
  if (ev->code == APSCHED_EVENT_JOB_ERROR) {
    fprintf(stderr, "job %s in %s FAILED: %s\n", ev->job_id, ev->jobstore,
            ev->error ? ev->error : "(no message)");
    seen.errors++;
  } else if (strcmp(ev->job_id, "tick") == 0) {
    seen.ticks++;
  } else if (strcmp(ev->job_id, "once") == 0) {
    seen.onces++;
  } else if (strcmp(ev->job_id, "crunch") == 0) {
    seen.crunches++;
  }
  pthread_cond_broadcast(&seen.changed);
  pthread_mutex_unlock(&seen.lock);
}

/* Until every job has run (tick 3 times, crunch twice), or the limit. */
static bool wait_for_runs(void) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += WAIT_LIMIT_SECONDS;
  pthread_mutex_lock(&seen.lock);
  int rc = 0;
  while ((seen.ticks < 3 || seen.onces < 1 || seen.crunches < 2) && seen.errors == 0 &&
         rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&seen.changed, &seen.lock, &deadline);
  bool all = seen.ticks >= 3 && seen.onces >= 1 && seen.crunches >= 2 && seen.errors == 0;
  printf("seen: tick %d, once %d, crunch %d run(s), %d error(s)\n", seen.ticks, seen.onces,
         seen.crunches, seen.errors);
  pthread_mutex_unlock(&seen.lock);
  return all;
}

static void add_stores(apsched_scheduler *s, const char *url, const char *path) {
  char err[512];
  apsched_jobstore *st;
  apsched_sqlite_options so = {.path = path};
  if (apsched_sqlite_store_create(&so, &st, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "cannot open %s: %s\n", path, err);
    exit(1);
  }
  CHECK(apsched_add_jobstore(s, st, "default"));
  apsched_redis_options ro = {.url = url, .prefix = prefix};
  if (apsched_redis_store_create(&ro, &st, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "cannot open the Redis store at %s: %s\n", url, err);
    exit(1);
  }
  CHECK(apsched_add_jobstore(s, st, "redis"));
}

static void add(apsched_scheduler *s, const char *id, const char *func_name, apsched_trigger *t,
                const char *jobstore, const char *executor, const void *arg, size_t arg_len) {
  apsched_job_options o = {.id = id, .func_name = func_name, .trigger = t, .jobstore = jobstore,
                           .executor = executor, .arg_bytes = arg, .arg_len = arg_len,
                           .replace_existing = true};
  CHECK(apsched_add_job(s, &o, NULL, 0));
  apsched_trigger_free(t);
}

static void add_jobs(apsched_scheduler *s) {
  apsched_trigger *t;
  apsched_interval_options every_second = {.seconds = 1};
  CHECK(apsched_trigger_interval(&every_second, &t, NULL, 0));
  add(s, "tick", "example.tick", t, "redis", "default", NULL, 0);

  apsched_date_options in_a_second = {.run_date = apsched_now() + APSCHED_SEC};
  CHECK(apsched_trigger_date(&in_a_second, &t));
  add(s, "once", "example.once", t, "redis", "default", NULL, 0);

  static const uint32_t limit = 300000;
  apsched_cron_options even_seconds = {.second = "*/2", .timezone = "UTC"};
  CHECK(apsched_trigger_cron(&even_seconds, &t, NULL, 0));
  add(s, "crunch", "example.crunch", t, "default", "processpool", &limit, sizeof limit);

  apsched_cron_options at_three = {.hour = "3", .minute = "0", .second = "0", .timezone = "UTC"};
  CHECK(apsched_trigger_cron(&at_three, &t, NULL, 0));
  add(s, "nightly", "example.nightly", t, "default", "processpool", NULL, 0);
}

static void show_jobs(apsched_scheduler *s, const char *jobstore, const char *where) {
  apsched_job *jobs;
  size_t n;
  CHECK(apsched_get_jobs(s, jobstore, &jobs, &n));
  printf("store %s (%s): %zu job(s)\n", jobstore, where, n);
  for (size_t i = 0; i < n; i++) {
    char next[64] = "(paused)";
    if (jobs[i].next_run_time != APSCHED_TIME_NONE)
      apsched_time_format(jobs[i].next_run_time, NULL, next, sizeof next);
    printf("  %-7s executor %-11s next run %s  %s%s%s\n", jobs[i].id, jobs[i].executor, next,
           jobs[i].trigger, jobs[i].broken ? "  BROKEN: " : "",
           jobs[i].broken ? jobs[i].broken : "");
  }
  apsched_jobs_free(jobs, n);
}

/* The temporary directory and what SQLite put in it (the file, its lock). */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[512];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *url = argc > 1 ? argv[1] : getenv("APSCHED_REDIS_URL");
  if (!url) {
    fprintf(stderr, "usage: %s URL   (or set APSCHED_REDIS_URL; tools/redis_tmp_server.sh "
                    "starts a private server)\n", argv[0]);
    return 2;
  }
  CHECK(apsched_register_func("example.tick", tick));
  CHECK(apsched_register_func("example.once", once));
  CHECK(apsched_register_func("example.crunch", crunch));
  CHECK(apsched_register_func("example.nightly", nightly));

  /* First, while the process is single-threaded. */
  apsched_process_pool_options pp = {.max_workers = 2};
  apsched_executor *processpool;
  char err[256];
  if (apsched_process_pool_create(&pp, &processpool, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "process pool: %s\n", err);
    return 1;
  }

  char dir[] = "/tmp/redis_store_example_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  char path[sizeof dir + 16];
  snprintf(path, sizeof path, "%s/jobs.sqlite", dir);

  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  add_stores(s, url, path);
  apsched_thread_pool_options tp = {.max_workers = 4};
  apsched_executor *threadpool;
  CHECK(apsched_thread_pool_create(&tp, &threadpool));
  CHECK(apsched_add_executor(s, threadpool, "default"));
  CHECK(apsched_add_executor(s, processpool, "processpool"));
  CHECK(apsched_add_listener(s, on_run, APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_ERROR, NULL,
                             NULL));
  add_jobs(s);

  printf("scheduler pid %d; stores: redis (%s, prefix %s), default (%s)\n", (int)getpid(), url,
         prefix, path);
  CHECK(apsched_start(s, false));
  bool all_ran = wait_for_runs();
  CHECK(apsched_shutdown(s, true)); /* lets the runs in progress end */
  apsched_free(s);

  /* The next start of the program: the jobs are where they were left. */
  CHECK(apsched_create(&cfg, &s));
  add_stores(s, url, path);
  CHECK(apsched_start_hosted(s, true)); /* paused: this one only looks */
  show_jobs(s, "redis", "reopened");
  show_jobs(s, "default", "reopened");
  CHECK(apsched_remove_all_jobs(s, "redis"));
  CHECK(apsched_remove_all_jobs(s, "default"));
  apsched_free(s);
  remove_dir(dir);
  printf("%s\n", all_ran ? "done: every job ran where it was configured to"
                         : "FAILED: not every job ran in time");
  return all_ran ? 0 : 1;
}
