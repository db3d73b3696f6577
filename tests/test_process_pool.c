/* The process pool executor through a real scheduler: outcomes of crashing,
 * aborting, exiting and hanging jobs (the pool keeps serving), max_runtime
 * with SIGTERM and SIGKILL, worker recycling, argument and result transport
 * (with the result size cap), refusal of pointer-only jobs, process and
 * descriptor hygiene over 10,000 runs, a host that reaps children itself,
 * shutdown with and without waiting, restart (also beside a thread pool that
 * ran a max_runtime job), error messages, and the death of the fork server
 * or of the whole scheduler process.
 *
 * The fork server is forked when a pool is created, from a single-threaded
 * process: every test creates its pools before anything starts a thread
 * (cmocka runs the tests one after another on the main thread). Job
 * functions run in worker processes, so they report through return values
 * and messages, never through cmocka. */
#include "support.h"


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Shared with the workers (mapped before any pool exists, so every fork
 * server and worker inherits it): jobs say what they are doing. */
typedef struct shared_state {
  atomic_int ignoring_sigterm; /* pid of a worker whose job ignores SIGTERM now */
  atomic_int spinning;         /* pid of a worker running job_spin */
  atomic_int sleepers;         /* job_sleep_ms calls started */
  atomic_int grandchild;       /* pid of a process a job forked */
} shared_state;
static shared_state *shared;

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * APSCHED_SEC + ts.tv_nsec / 1000;
}

/* Waits (20 s) until *flag is at least min; returns it. */
static int await_flag(atomic_int *flag, int min) {
  for (int i = 0; i < 20000; i++) {
    int v = atomic_load(flag);
    if (v >= min) return v;
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return 0;
}

/* ------------------------------------------------------------ helpers */

/* Live and zombie children of pid, from /proc. */
static void children_of(pid_t parent, int *live, int *zombies) {
  *live = *zombies = 0;
  DIR *d = opendir("/proc");
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "re");
    if (!f) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *paren = strrchr(buf, ')');
    char state;
    int ppid;
    if (!paren || sscanf(paren + 1, " %c %d", &state, &ppid) != 2 || ppid != parent) continue;
    if (state == 'Z') (*zombies)++;
    else (*live)++;
  }
  closedir(d);
}

static int count_children(pid_t parent) {
  int live, zombies;
  children_of(parent, &live, &zombies);
  return live + zombies;
}

/* The first child of parent found in /proc, or 0. */
static pid_t find_child(pid_t parent) {
  pid_t found = 0;
  DIR *d = opendir("/proc");
  assert_non_null(d);
  struct dirent *e;
  while (!found && (e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "re");
    if (!f) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *paren = strrchr(buf, ')');
    char state;
    int ppid;
    if (paren && sscanf(paren + 1, " %c %d", &state, &ppid) == 2 && ppid == parent && state != 'Z')
      found = (pid_t)atoi(e->d_name);
  }
  closedir(d);
  return found;
}

/* Descriptors open now, as a bitmap of numbers below 1024. */
static void open_fds(bool set[1024]) {
  memset(set, 0, 1024);
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] != '.' && fd != dirfd(d) && fd < 1024) set[fd] = true;
  }
  closedir(d);
}

/* True if process pid has a descriptor open on the same file as fd. */
static bool holds_file_of(pid_t pid, int fd) {
  char mine[300], path[300], target[300];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, mine, sizeof mine - 1);
  assert_true(n > 0);
  mine[n] = 0;
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  assert_non_null(d);
  bool found = false;
  struct dirent *e;
  while (!found && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/%d/fd/%s", (int)pid, e->d_name);
    n = readlink(path, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    found = strcmp(target, mine) == 0;
  }
  closedir(d);
  return found;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

/* Waits up to timeout_ms for process pid (not necessarily our child) to
 * exit; true if it did. */
static bool await_exit(pid_t pid, int timeout_ms) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return errno == ESRCH;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r;
  do r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  close(fd);
  return r == 1;
}

/* The pool (created first, while this process is single-threaded) under
 * alias "pp" in a threaded scheduler that records every event into r. */
static apsched_scheduler *pool_scheduler(const apsched_process_pool_options *po, recorder *r,
                                         const apsched_config *base) {
  apsched_executor *ex;
  char err[256] = "";
  int rc = apsched_process_pool_create(po, &ex, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("apsched_process_pool_create: %s", err);
  apsched_config cfg = base ? *base : (apsched_config){0};
  cfg.timezone = "UTC";
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "pp"), APSCHED_OK);
  if (r) assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, r, NULL), APSCHED_OK);
  return s;
}

static void add(apsched_scheduler *s, apsched_job_options o) {
  if (!o.executor) o.executor = "pp";
  char err[64];
  int rc = apsched_add_job(s, &o, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("add_job %s: %s", o.id, apsched_strerror(rc));
}

/* The k-th event with code for job id (index into r->ev), or -1. */
static int find_job_event(recorder *r, int code, const char *id, size_t k) {
  pthread_mutex_lock(&r->lock);
  int found = -1;
  for (size_t i = 0; i < r->n && found < 0; i++)
    if ((r->ev[i].code & code) && strcmp(r->ev[i].job_id, id) == 0 && k-- == 0) found = (int)i;
  pthread_mutex_unlock(&r->lock);
  return found;
}

static size_t count_job_events(recorder *r, int code, const char *id) {
  size_t n = 0;
  while (find_job_event(r, code, id, n) >= 0) n++;
  return n;
}

/* Waits until job id has n events with code (20 s). */
static bool await_job(recorder *r, int code, const char *id, size_t n) {
  for (size_t seen = 0;;) {
    seen = count_job_events(r, code, id);
    if (seen >= n) return true;
    /* Any new event may be the one: wait for the total to grow. */
    pthread_mutex_lock(&r->lock);
    size_t total = r->n;
    pthread_mutex_unlock(&r->lock);
    if (!recorder_wait(r, APSCHED_EVENT_EVERYTHING, total + 1)) return count_job_events(r, code, id) >= n;
  }
}

static void assert_error(recorder *r, const char *id, const char *message) {
  assert_true(await_job(r, APSCHED_EVENT_JOB_ERROR, id, 1));
  int i = find_job_event(r, APSCHED_EVENT_JOB_ERROR, id, 0);
  if (strcmp(r->ev[i].error, message) != 0)
    fail_msg("job %s: error \"%s\", expected \"%s\"", id, r->ev[i].error, message);
}

/* ------------------------------------------- jobs (run in the workers) */

static int job_ok(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

static void spin_forever(void) {
  volatile unsigned long n = 0;
  for (;;) n++;
}

/* A real fault (not a null store, which UBSan would catch first). */
static int job_segv(apsched_run_ctx *run) {
  (void)run;
  void *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return 99;
  *(volatile char *)page = 1;
  return 0;
}

static int job_abort(apsched_run_ctx *run) {
  (void)run;
  abort();
}

static int job_exit3(apsched_run_ctx *run) {
  (void)run;
  _exit(3);
}

static int job_spin(apsched_run_ctx *run) {
  (void)run;
  atomic_store(&shared->spinning, (int)getpid());
  spin_forever();
  return 0;
}

static int job_spin_ignoring_sigterm(apsched_run_ctx *run) {
  (void)run;
  signal(SIGTERM, SIG_IGN);
  atomic_store(&shared->ignoring_sigterm, (int)getpid());
  spin_forever();
  return 0;
}

static int job_fail(apsched_run_ctx *run) {
  apsched_run_set_error(run, "failed in %s", apsched_run_job_id(run));
  return 42;
}

/* Checks everything a job can see in a worker (also its store and executor
 * aliases); the byte argument holds the expected scheduled time (8 bytes)
 * and a text. */
static int job_inspect(apsched_run_ctx *run) {
  size_t len;
  const unsigned char *b = apsched_run_arg_bytes(run, &len);
  apsched_time_t expect;
  if (!b || len != 8 + 7) {
    apsched_run_set_error(run, "argument of %zu bytes", len);
    return 1;
  }
  memcpy(&expect, b, 8);
  if (memcmp(b + 8, "payload", 7) != 0) apsched_run_set_error(run, "wrong argument text");
  else if (apsched_run_scheduled_time(run) != expect) apsched_run_set_error(run, "wrong time");
  else if (strcmp(apsched_run_job_id(run), "inspect") != 0) apsched_run_set_error(run, "wrong id");
  else if (strcmp(apsched_run_job_name(run), "Inspector") != 0) apsched_run_set_error(run, "wrong name");
  else if (apsched_run_arg(run) != NULL) apsched_run_set_error(run, "a pointer argument");
  else if (apsched_run_scheduler(run) != NULL) apsched_run_set_error(run, "a scheduler");
  else if (!apsched_run_jobstore(run) || strcmp(apsched_run_jobstore(run), "default") != 0)
    apsched_run_set_error(run, "job store %s", apsched_run_jobstore(run) ? apsched_run_jobstore(run) : "NULL");
  else if (!apsched_run_executor(run) || strcmp(apsched_run_executor(run), "pp") != 0)
    apsched_run_set_error(run, "executor %s", apsched_run_executor(run) ? apsched_run_executor(run) : "NULL");
  else {
    /* Beyond stdio, a worker holds only its close-on-exec task socket: none
     * of the application's descriptors (the test opened a pipe for this). */
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    int extra = 0, leaky = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
      int fd = atoi(e->d_name);
      if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d)) continue;
      extra++;
      if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC)) leaky = fd;
    }
    closedir(d);
    if (extra == 1 && leaky < 0) return 0;
    apsched_run_set_error(run, "%d descriptors beyond stdio, %d without close-on-exec", extra, leaky);
  }
  return 1;
}

static int job_report_pid(apsched_run_ctx *run) {
  apsched_run_set_error(run, "pid=%d", (int)getpid());
  return 1;
}

static int job_report_time(apsched_run_ctx *run) {
  apsched_time_t t = apsched_run_scheduled_time(run);
  if (t == T0 + 3 * APSCHED_SEC) job_segv(run); /* the third of the batch dies */
  apsched_run_set_error(run, "t=%lld", (long long)t);
  return 1;
}

static int job_sleep_ms(apsched_run_ctx *run) {
  size_t len;
  const int32_t *ms = apsched_run_arg_bytes(run, &len);
  atomic_fetch_add(&shared->sleepers, 1);
  struct timespec ts = {*ms / 1000, (long)(*ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return 0;
}

static int job_big_error(apsched_run_ctx *run) {
  char *text = malloc(100 * 1024 + 1);
  memset(text, 'x', 100 * 1024);
  text[100 * 1024] = 0;
  apsched_run_set_error(run, "%s", text);
  free(text);
  return 1;
}

/* Writes a frame header announcing 1 GiB on the worker's task socket
 * (descriptor 3 in a worker), as a broken or hostile job could. */
static int job_bad_frame(apsched_run_ctx *run) {
  (void)run;
  uint32_t huge = 1u << 30;
  if (write(3, &huge, sizeof huge) != (ssize_t)sizeof huge) return 7;
  spin_forever();
  return 0;
}

/* Starts a process that ignores SIGTERM, then hangs. */
static int job_fork_and_spin(apsched_run_ctx *run) {
  (void)run;
  pid_t child = fork();
  if (child == 0) {
    signal(SIGTERM, SIG_IGN);
    atomic_store(&shared->grandchild, (int)getpid());
    spin_forever();
  }
  spin_forever();
  return 0;
}

static int job_print_pid_and_spin(apsched_run_ctx *run) {
  (void)run;
  dprintf(1, "%d\n", (int)getpid());
  spin_forever();
  return 0;
}

/* -------------------------------------------------------------- tests */

/* Overlap policy terminate_other: a run due while the previous one still
 * runs has its worker terminated (as max_runtime does), then starts. */
static void test_terminate_other_ends_the_running_worker(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_process_pool_options po = {.max_workers = 2, .kill_grace = 100 * APSCHED_MSEC};
  apsched_scheduler *s = pool_scheduler(&po, &r, NULL);
  apsched_trigger *t = every(300 * APSCHED_MSEC, 0);
  add(s, (apsched_job_options){.id = "t", .func = job_spin, .trigger = t,
                               .misfire_grace_time = APSCHED_GRACE_UNLIMITED,
                               .overlap = APSCHED_OVERLAP_TERMINATE_OTHER});
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_error(&r, "t", "terminated: a newer run of the job is due (overlap policy terminate_other)");
  assert_true(await_job(&r, APSCHED_EVENT_JOB_BUFFERED, "t", 1));
  /* The waiting run started in the freed slot, and is terminated in turn. */
  assert_true(await_job(&r, APSCHED_EVENT_JOB_ERROR, "t", 2));
  assert_true(count_job_events(&r, APSCHED_EVENT_JOB_SUBMITTED, "t") >= 2);
  /* A run always spins: ending it is the shutdown's job. */
  assert_int_equal(apsched_shutdown(s, false), APSCHED_OK);
  apsched_free(s);
  apsched_trigger_free(t);
  recorder_destroy(&r);
}

static void test_crashes_are_reported_and_pool_keeps_serving(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_process_pool_options po = {.max_workers = 3, .kill_grace = 100 * APSCHED_MSEC};
  apsched_scheduler *s = pool_scheduler(&po, &r, NULL);
  apsched_trigger *often = every(50 * APSCHED_MSEC, 0);
  add(s, (apsched_job_options){.id = "healthy", .func = job_ok, .trigger = often});
  add(s, (apsched_job_options){.id = "segv", .func = job_segv});
  add(s, (apsched_job_options){.id = "abort", .func = job_abort});
  add(s, (apsched_job_options){.id = "exit3", .func = job_exit3});
  add(s, (apsched_job_options){.id = "fail", .func = job_fail});
  apsched_trigger *slow = every(400 * APSCHED_MSEC, 0);
  add(s, (apsched_job_options){.id = "hang", .func = job_spin, .trigger = slow,
                               .max_runtime = 200 * APSCHED_MSEC,
                               .misfire_grace_time = APSCHED_GRACE_UNLIMITED});
  /* Long enough for the job to ignore SIGTERM before it comes, even on a
   * loaded machine. */
  add(s, (apsched_job_options){.id = "stubborn", .func = job_spin_ignoring_sigterm,
                               .max_runtime = APSCHED_SEC});
  assert_int_equal(apsched_start(s, false), APSCHED_OK);

  assert_error(&r, "segv", "worker killed by signal 11 (SIGSEGV)");
  assert_error(&r, "abort", "worker killed by signal 6 (SIGABRT)");
  assert_error(&r, "exit3", "worker exited with status 3");
  assert_error(&r, "fail", "failed in fail");
  assert_int_equal(r.ev[find_job_event(&r, APSCHED_EVENT_JOB_ERROR, "fail", 0)].retval, 42);
  assert_error(&r, "hang", "timed out after 0:00:00.200000");
  assert_error(&r, "stubborn",
               "timed out after 0:00:01: worker killed by signal 9 (SIGKILL) after "
               "ignoring SIGTERM");
  /* The hung job's max_instances slot was freed: it ran, and timed out, again. */
  assert_true(await_job(&r, APSCHED_EVENT_JOB_ERROR, "hang", 2));
  /* The pool kept running the healthy job through all of it, and still does. */
  size_t before = count_job_events(&r, APSCHED_EVENT_JOB_EXECUTED, "healthy");
  assert_true(before >= 1);
  assert_true(await_job(&r, APSCHED_EVENT_JOB_EXECUTED, "healthy", before + 3));
  assert_int_equal(count_job_events(&r, APSCHED_EVENT_JOB_ERROR, "healthy"), 0);
  /* A new job after the crashes runs too. */
  add(s, (apsched_job_options){.id = "late", .func = job_ok});
  assert_true(await_job(&r, APSCHED_EVENT_JOB_EXECUTED, "late", 1));

  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  apsched_trigger_free(often);
  apsched_trigger_free(slow);
  assert_int_equal(count_children(getpid()), 0);
  recorder_destroy(&r);
}

static void test_job_sees_its_argument_time_id_and_name(void **state) {
  (void)state;
  int app_pipe[2]; /* an application descriptor without close-on-exec */
  assert_int_equal(pipe(app_pipe), 0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = pool_scheduler(NULL, &r, NULL);
  apsched_time_t when = apsched_now() + 50 * APSCHED_MSEC;
  unsigned char arg[15];
  memcpy(arg, &when, 8);
  memcpy(arg + 8, "payload", 7);
  apsched_date_options d = {.run_date = when};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_date(&d, &t), APSCHED_OK);
  add(s, (apsched_job_options){.id = "inspect", .name = "Inspector", .func = job_inspect,
                               .trigger = t, .arg_bytes = arg, .arg_len = sizeof arg});
  /* Busy while "inspect" runs, so that its worker is forked while the
   * server holds this one's pidfd (which the new worker must not keep). */
  int32_t ms = 300;
  add(s, (apsched_job_options){.id = "sleeper", .func = job_sleep_ms, .arg_bytes = &ms,
                               .arg_len = 4});
  /* Both a pointer and bytes: runs, with only the bytes. */
  int local = 0;
  add(s, (apsched_job_options){.id = "both", .func = job_ok, .arg = &local, .arg_bytes = "b",
                               .arg_len = 1});
  /* Only a pointer: refused when added, with a message naming the problem. */
  apsched_job_options ptr_only = {.id = "pointer", .func = job_ok, .arg = &local, .executor = "pp"};
  assert_int_equal(apsched_add_job(s, &ptr_only, NULL, 0), APSCHED_EINVAL);
  assert_non_null(strstr(apsched_last_error(), "executor 'pp': job \"pointer\" has only a pointer "
                                                "argument, which cannot reach a worker process"));
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(await_job(&r, APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_ERROR, "inspect", 1));
  int i = find_job_event(&r, APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_ERROR, "inspect", 0);
  if (r.ev[i].code != APSCHED_EVENT_JOB_EXECUTED) fail_msg("inspect: %s", r.ev[i].error);
  assert_int_equal(r.ev[i].run_time, when);
  /* The server (which has served workers, so it is past its start-up) does
   * not keep the application's descriptors open either: a pipe's reader
   * would never see end of file. */
  pid_t server = find_child(getpid());
  assert_true(server > 0);
  assert_false(holds_file_of(server, app_pipe[0]));
  assert_false(holds_file_of(server, app_pipe[1]));
  assert_true(await_job(&r, APSCHED_EVENT_JOB_EXECUTED, "both", 1));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  apsched_trigger_free(t);
  close(app_pipe[0]);
  close(app_pipe[1]);
  recorder_destroy(&r);
}

/* A pointer-only job added (pending) before its process pool existed cannot
 * be refused at add time: it is refused when submitted, and never runs. */
static void test_pending_pointer_job_refused_at_submit(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &r, NULL), APSCHED_OK);
  int local = 0;
  add(s, (apsched_job_options){.id = "late_pointer", .func = job_ok, .arg = &local});
  apsched_executor *ex;
  char err[256] = "";
  if (apsched_process_pool_create(NULL, &ex, err, sizeof err) != APSCHED_OK) fail_msg("%s", err);
  assert_int_equal(apsched_add_executor(s, ex, "pp"), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(await_job(&r, APSCHED_EVENT_JOB_ERROR, "late_pointer", 1));
  int i = find_job_event(&r, APSCHED_EVENT_JOB_ERROR, "late_pointer", 0);
  /* (the recorder keeps the first 127 bytes of the message) */
  assert_non_null(strstr(r.ev[i].error, "job \"late_pointer\" has only a pointer argument, "
                                        "which cannot reach a worker process"));
  assert_int_equal(count_job_events(&r, APSCHED_EVENT_JOB_EXECUTED, "late_pointer"), 0);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_max_tasks_per_child_recycles_workers(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_process_pool_options po = {.max_workers = 1, .max_tasks_per_child = 2};
  apsched_scheduler *s = pool_scheduler(&po, &r, NULL);
  char ids[6][8];
  for (int i = 0; i < 6; i++) {
    snprintf(ids[i], sizeof ids[i], "p%d", i);
    add(s, (apsched_job_options){.id = ids[i], .func = job_report_pid,
                                 .misfire_grace_time = APSCHED_GRACE_UNLIMITED});
  }
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 6));
  /* One worker at a time, two runs each: pids a a b b c c in event order. */
  int pids[6];
  for (int k = 0; k < 6; k++) {
    int i = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, (size_t)k);
    assert_int_equal(sscanf(r.ev[i].error, "pid=%d", &pids[k]), 1);
  }
  for (int k = 0; k < 6; k += 2) {
    assert_int_equal(pids[k], pids[k + 1]);
    if (k > 0) assert_int_not_equal(pids[k], pids[k - 1]);
  }
  assert_int_not_equal(pids[0], pids[4]);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  recorder_destroy(&r);
}

/* A catch-up batch (no coalescing) runs time after time in the pool, each
 * with its own outcome; a crash in the middle costs only that time. */
static void test_batch_of_times_survives_a_crash(void **state) {
  (void)state;
  apsched_executor *ex;
  assert_int_equal(apsched_process_pool_create(&(apsched_process_pool_options){.max_workers = 1},
                                               &ex, NULL, 0), APSCHED_OK);
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = hosted_scheduler(&fc, &r, NULL);
  assert_int_equal(apsched_add_executor(s, ex, "pp"), APSCHED_OK);
  apsched_trigger *t = every(APSCHED_SEC, T0 + APSCHED_SEC);
  add(s, (apsched_job_options){.id = "batch", .func = job_report_time, .trigger = t,
                               .coalesce = APSCHED_NO,
                               .misfire_grace_time = APSCHED_GRACE_UNLIMITED});
  process(s);
  fake_advance(&fc, 5 * APSCHED_SEC);
  process(s);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_SUBMITTED), 1);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 5));
  for (int k = 0; k < 5; k++) {
    int i = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, (size_t)k);
    apsched_time_t t_k = T0 + (k + 1) * APSCHED_SEC;
    assert_int_equal(r.ev[i].run_time, t_k);
    char expect[64];
    if (k == 2) snprintf(expect, sizeof expect, "worker killed by signal 11 (SIGSEGV)");
    else snprintf(expect, sizeof expect, "t=%lld", (long long)t_k);
    assert_string_equal(r.ev[i].error, expect);
  }
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  apsched_trigger_free(t);
  recorder_destroy(&r);
}

static void measure_error(const apsched_event *ev, void *ud) {
  if (ev->code == APSCHED_EVENT_JOB_ERROR && ev->error && strcmp(ev->job_id, "big") == 0)
    atomic_store((atomic_size_t *)ud, strlen(ev->error));
}

/* Results are length-prefixed with a cap: a long message is cut to fit, a
 * worker announcing more than the cap is killed, not believed. */
static void test_result_size_is_capped(void **state) {
  (void)state;
  atomic_size_t len;
  atomic_init(&len, 0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = pool_scheduler(NULL, &r, NULL);
  assert_int_equal(apsched_add_listener(s, measure_error, APSCHED_EVENT_JOB_ERROR, &len, NULL), APSCHED_OK);
  add(s, (apsched_job_options){.id = "big", .func = job_big_error});
  add(s, (apsched_job_options){.id = "liar", .func = job_bad_frame});
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(await_job(&r, APSCHED_EVENT_JOB_ERROR, "big", 1));
  assert_error(&r, "liar", "worker announced a result of 1073741824 bytes (the limit is 65536)");
  int i = find_job_event(&r, APSCHED_EVENT_JOB_ERROR, "big", 0);
  assert_int_equal(strspn(r.ev[i].error, "x"), strlen(r.ev[i].error)); /* the start of it */
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK); /* listeners are done */
  /* The 64 KiB frame holds the type, retval, length and terminator too. */
  assert_int_equal(atomic_load(&len), 65536 - 10);
  apsched_free(s);
  recorder_destroy(&r);
}

#if defined(__x86_64__)
/* A function that did not exist when the server was forked (as if from a
 * library loaded later): refused in the worker instead of crashing it. */
static void test_function_missing_from_server_image(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = pool_scheduler(NULL, &r, NULL);
  unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED) skip();
  static const unsigned char ret0[] = {0x31, 0xc0, 0xc3}; /* xor eax,eax; ret */
  memcpy(code, ret0, sizeof ret0);
  apsched_job_fn fn;
  memcpy(&fn, &code, sizeof fn);
  add(s, (apsched_job_options){.id = "jit", .func = fn});
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(await_job(&r, APSCHED_EVENT_JOB_ERROR, "jit", 1));
  int i = find_job_event(&r, APSCHED_EVENT_JOB_ERROR, "jit", 0);
  assert_non_null(strstr(r.ev[i].error, "is not in the fork server's memory image"));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  munmap(code, 4096);
  recorder_destroy(&r);
}
#endif

/* A timeout ends the job's whole process group, including what it forked,
 * even a process that ignores SIGTERM. */
static void test_timeout_ends_what_the_job_started(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_process_pool_options po = {.kill_grace = 100 * APSCHED_MSEC};
  apsched_scheduler *s = pool_scheduler(&po, &r, NULL);
  atomic_store(&shared->grandchild, 0);
  add(s, (apsched_job_options){.id = "forker", .func = job_fork_and_spin,
                               .max_runtime = APSCHED_SEC});
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  pid_t grandchild = await_flag(&shared->grandchild, 1);
  assert_true(grandchild > 0);
  assert_error(&r, "forker", "timed out after 0:00:01");
  assert_true(await_exit(grandchild, 10000));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  recorder_destroy(&r);
}

/* ---- hygiene over many runs */

typedef struct tally {
  atomic_int executed, other;
  pthread_mutex_t lock;
  pthread_cond_t cond;
} tally;

static void count_outcome(const apsched_event *ev, void *ud) {
  tally *t = ud;
  if (ev->code == APSCHED_EVENT_JOB_EXECUTED) atomic_fetch_add(&t->executed, 1);
  else atomic_fetch_add(&t->other, 1);
  pthread_mutex_lock(&t->lock);
  pthread_cond_broadcast(&t->cond);
  pthread_mutex_unlock(&t->lock);
}

static bool tally_wait(tally *t, int n) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 120;
  pthread_mutex_lock(&t->lock);
  while (atomic_load(&t->executed) + atomic_load(&t->other) < n)
    if (pthread_cond_timedwait(&t->cond, &t->lock, &deadline) != 0) break;
  pthread_mutex_unlock(&t->lock);
  return atomic_load(&t->executed) + atomic_load(&t->other) >= n;
}

static void test_ten_thousand_runs_leave_no_zombies_or_descriptors(void **state) {
  (void)state;
  enum { RUNS = 10000 };
  int fds_before = count_fds();
  bool before[1024], during[1024];
  open_fds(before);
  tally t = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  apsched_process_pool_options po = {.max_workers = 4, .max_tasks_per_child = 500};
  apsched_scheduler *s = pool_scheduler(&po, NULL, NULL);
  assert_int_equal(apsched_add_listener(s, count_outcome,
                                        APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_ERROR |
                                            APSCHED_EVENT_JOB_MISSED,
                                        &t, NULL), APSCHED_OK);
  for (int i = 0; i < RUNS; i++) {
    char id[16];
    snprintf(id, sizeof id, "j%d", i);
    add(s, (apsched_job_options){.id = id, .func = job_ok,
                                 .misfire_grace_time = APSCHED_GRACE_UNLIMITED});
  }
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  /* Every descriptor the pool opened (eventfd, control socket, pidfd,
   * worker sockets) is close-on-exec. */
  assert_true(tally_wait(&t, 100));
  open_fds(during);
  int new_fds = 0;
  for (int fd = 0; fd < 1024; fd++) {
    if (!during[fd] || before[fd]) continue;
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) continue; /* closed meanwhile (a recycled worker's socket) */
    new_fds++;
    if (!(flags & FD_CLOEXEC)) fail_msg("descriptor %d is not close-on-exec", fd);
  }
  assert_true(new_fds >= 3);
  assert_true(tally_wait(&t, RUNS));
  assert_int_equal(atomic_load(&t.executed), RUNS);
  assert_int_equal(atomic_load(&t.other), 0);
  /* Recycled workers were reaped by the server as they went: at most the
   * live ones (and one just ending) are its children now. */
  pid_t server = find_child(getpid());
  assert_true(server > 0);
  int live, zombies;
  children_of(server, &live, &zombies);
  assert_true(live + zombies <= 5);
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  children_of(getpid(), &live, &zombies);
  assert_int_equal(zombies, 0);
  assert_int_equal(live, 0);
  assert_int_equal(count_fds(), fds_before);
  pthread_mutex_destroy(&t.lock);
  pthread_cond_destroy(&t.cond);
}

/* ---- a host that reaps children itself */

static atomic_int host_reaped;
static atomic_bool host_stop;

static void host_sigchld(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) atomic_fetch_add(&host_reaped, 1);
  errno = saved;
}

static void *host_reaper(void *arg) {
  (void)arg;
  while (!atomic_load(&host_stop)) {
    if (waitpid(-1, NULL, WNOHANG) > 0) atomic_fetch_add(&host_reaped, 1);
    struct timespec ts = {0, 200 * 1000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static void test_host_with_sigchld_handler_and_reaper_thread(void **state) {
  (void)state;
  /* Installed before the pool exists, so its fork server inherits it:
   * the server must not let it steal its workers' statuses. No SA_RESTART:
   * the pool's own calls see EINTR. */
  struct sigaction sa = {.sa_handler = host_sigchld}, old;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGCHLD, &sa, &old), 0);
  atomic_store(&host_reaped, 0);
  atomic_store(&host_stop, false);
  recorder r;
  recorder_init(&r);
  apsched_process_pool_options po = {.max_workers = 2, .kill_grace = 100 * APSCHED_MSEC};
  apsched_scheduler *s = pool_scheduler(&po, &r, NULL);
  pthread_t reaper;
  assert_int_equal(pthread_create(&reaper, NULL, host_reaper, NULL), 0);
  apsched_trigger *often = every(30 * APSCHED_MSEC, 0);
  add(s, (apsched_job_options){.id = "healthy", .func = job_ok, .trigger = often});
  add(s, (apsched_job_options){.id = "segv", .func = job_segv});
  add(s, (apsched_job_options){.id = "exit3", .func = job_exit3});
  add(s, (apsched_job_options){.id = "hang", .func = job_spin, .max_runtime = 100 * APSCHED_MSEC});
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  /* The host's own child is still the host's to reap. */
  pid_t mine = fork();
  if (mine == 0) _exit(0);
  assert_true(mine > 0);
  assert_error(&r, "segv", "worker killed by signal 11 (SIGSEGV)");
  assert_error(&r, "exit3", "worker exited with status 3");
  assert_error(&r, "hang", "timed out after 0:00:00.100000");
  assert_true(await_job(&r, APSCHED_EVENT_JOB_EXECUTED, "healthy", 5));
  assert_int_equal(count_job_events(&r, APSCHED_EVENT_JOB_ERROR, "healthy"), 0);
  /* The server's exit may well be reaped by the host: shutdown still ends. */
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  atomic_store(&host_stop, true);
  pthread_join(reaper, NULL);
  assert_true(atomic_load(&host_reaped) >= 1); /* at least its own child */
  assert_int_equal(count_children(getpid()), 0);
  sigaction(SIGCHLD, &old, NULL);
  apsched_trigger_free(often);
  recorder_destroy(&r);
}

/* ---- shutdown */

static void test_shutdown_wait_lets_running_jobs_finish(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_process_pool_options po = {.max_workers = 2};
  apsched_scheduler *s = pool_scheduler(&po, &r, NULL);
  int32_t ms = 300;
  add(s, (apsched_job_options){.id = "a", .func = job_sleep_ms, .arg_bytes = &ms, .arg_len = 4});
  add(s, (apsched_job_options){.id = "b", .func = job_sleep_ms, .arg_bytes = &ms, .arg_len = 4});
  add(s, (apsched_job_options){.id = "c", .func = job_sleep_ms, .arg_bytes = &ms, .arg_len = 4,
                               .misfire_grace_time = APSCHED_GRACE_UNLIMITED}); /* queued */
  atomic_store(&shared->sleepers, 0);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  /* SUBMITTED is emitted before the run is handed to the executor; a date
   * job is removed after that. */
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_REMOVED, 3));
  assert_int_equal(await_flag(&shared->sleepers, 2), 2); /* a and b run, c is queued */
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  /* Everything accepted has run, and the server and workers are gone. */
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_EXECUTED), 3);
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_ERROR), 0);
  assert_int_equal(count_children(getpid()), 0);
  apsched_free(s);
  recorder_destroy(&r);
}

static void test_shutdown_nowait_returns_at_once_and_ends_workers(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_process_pool_options po = {.max_workers = 1, .kill_grace = APSCHED_SEC};
  apsched_scheduler *s = pool_scheduler(&po, &r, NULL);
  add(s, (apsched_job_options){.id = "stubborn", .func = job_spin_ignoring_sigterm});
  add(s, (apsched_job_options){.id = "queued", .func = job_ok,
                               .misfire_grace_time = APSCHED_GRACE_UNLIMITED});
  atomic_store(&shared->ignoring_sigterm, 0);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  pid_t worker = await_flag(&shared->ignoring_sigterm, 1); /* "stubborn" runs */
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_REMOVED, 2)); /* both handed over */
  assert_true(worker > 0);
  pid_t server = find_child(getpid());
  assert_true(server > 0);
  int64_t t0 = mono_us();
  assert_int_equal(apsched_shutdown(s, false), APSCHED_OK);
  assert_true(mono_us() - t0 < 500 * APSCHED_MSEC); /* not waiting out the 1 s grace */
  assert_error(&r, "queued", "the executor shut down before the run started");
  assert_error(&r, "stubborn",
               "the executor shut down while the job was running (worker killed by signal 9 "
               "(SIGKILL))");
  assert_true(await_exit(worker, 10000));
  assert_true(await_exit(server, 10000));
  apsched_free(s);
  assert_int_equal(count_children(getpid()), 0);
  recorder_destroy(&r);
}

static void test_restart_forks_a_new_server(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = pool_scheduler(NULL, &r, NULL);
  add(s, (apsched_job_options){.id = "first", .func = job_ok});
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(await_job(&r, APSCHED_EVENT_JOB_EXECUTED, "first", 1));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  assert_int_equal(count_children(getpid()), 0);
  /* Every thread has been joined: the process is single-threaded again. */
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  add(s, (apsched_job_options){.id = "second", .func = job_ok});
  assert_true(await_job(&r, APSCHED_EVENT_JOB_EXECUTED, "second", 1));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  assert_int_equal(count_children(getpid()), 0);
  recorder_destroy(&r);
}

/* A thread pool beside the process pool ran a job with a max_runtime, so it
 * started its watchdog thread. A waiting shutdown joins that thread too:
 * otherwise the process is not single-threaded again and the process pool
 * cannot fork its new server on restart. */
static void test_restart_after_thread_pool_watchdog(void **state) {
  (void)state;
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = pool_scheduler(NULL, &r, NULL);
  /* "default" is the thread pool the scheduler adds when it starts. */
  add(s, (apsched_job_options){.id = "limited", .func = job_ok, .executor = "default",
                               .max_runtime = 10 * APSCHED_SEC});
  add(s, (apsched_job_options){.id = "first", .func = job_ok});
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  assert_true(await_job(&r, APSCHED_EVENT_JOB_EXECUTED, "limited", 1));
  assert_true(await_job(&r, APSCHED_EVENT_JOB_EXECUTED, "first", 1));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  if (apsched_start(s, false) != APSCHED_OK) fail_msg("restart: %s", apsched_last_error());
  add(s, (apsched_job_options){.id = "second", .func = job_ok});
  assert_true(await_job(&r, APSCHED_EVENT_JOB_EXECUTED, "second", 1));
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  assert_int_equal(count_children(getpid()), 0);
  recorder_destroy(&r);
}

/* ---- the server or the whole scheduler process dies */

static void test_server_killed_fails_runs_and_workers_exit(void **state) {
  (void)state;
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* orphaned workers come to us */
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = pool_scheduler(NULL, &r, NULL);
  add(s, (apsched_job_options){.id = "spin", .func = job_spin});
  atomic_store(&shared->spinning, 0);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  pid_t worker = await_flag(&shared->spinning, 1);
  assert_true(worker > 0);
  pid_t server = find_child(getpid());
  assert_true(server > 0);
  assert_int_equal(kill(server, SIGKILL), 0);
  assert_error(&r, "spin", "the process pool's fork server exited");
  /* The worker dies with its server (PR_SET_PDEATHSIG) and is ours to reap. */
  assert_true(await_exit(worker, 20000));
  int status;
  assert_int_equal(waitpid(worker, &status, 0), worker);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  /* The pool says why it cannot run anything now. */
  add(s, (apsched_job_options){.id = "after", .func = job_ok});
  assert_error(&r, "after", "process pool unavailable: its fork server killed by signal 9 (SIGKILL)");
  assert_int_equal(apsched_shutdown(s, true), APSCHED_OK);
  apsched_free(s);
  assert_int_equal(count_children(getpid()), 0);
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
  recorder_destroy(&r);
}

/* The scheduler process of this test (exec'd afresh): a pool running a job
 * that prints its worker's pid, until it is killed. */
static int orphan_child_main(void) {
  apsched_executor *ex;
  char err[256];
  if (apsched_process_pool_create(NULL, &ex, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "child: %s\n", err);
    return 1;
  }
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  if (apsched_create(&cfg, &s) != APSCHED_OK || apsched_add_executor(s, ex, "pp") != APSCHED_OK)
    return 1;
  apsched_job_options o = {.id = "spin", .func = job_print_pid_and_spin, .executor = "pp"};
  if (apsched_add_job(s, &o, NULL, 0) != APSCHED_OK || apsched_start(s, false) != APSCHED_OK)
    return 1;
  for (;;) pause();
}

static void test_scheduler_process_killed_server_and_workers_exit(void **state) {
  (void)state;
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* the orphaned server comes to us */
  int out[2];
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    dup2(out[1], 1);
    execl("/proc/self/exe", "test_process_pool", "--orphan-child", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  FILE *f = fdopen(out[0], "r");
  assert_non_null(f);
  int worker = 0;
  assert_int_equal(fscanf(f, "%d", &worker), 1); /* the job is running */
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", worker);
  FILE *st = fopen(path, "re");
  assert_non_null(st);
  size_t n = fread(buf, 1, sizeof buf - 1, st);
  fclose(st);
  buf[n] = 0;
  int server = 0;
  char state_c;
  assert_int_equal(sscanf(strrchr(buf, ')') + 1, " %c %d", &state_c, &server), 2);
  int status;
  assert_int_equal(kill(child, SIGKILL), 0);
  assert_int_equal(waitpid(child, &status, 0), child);
  /* The server notices, ends its worker, reaps it and exits. */
  assert_true(await_exit(server, 20000));
  assert_int_equal(waitpid(server, &status, 0), server);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(kill(worker, 0), -1);
  assert_int_equal(errno, ESRCH);
  /* Nobody holds the job's stdout any more. */
  int c;
  while ((c = fgetc(f)) != EOF) {
  }
  fclose(f);
  assert_int_equal(count_children(getpid()), 0);
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

/* ---- creation */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static void *wait_at_gate(void *arg) {
  (void)arg;
  pthread_mutex_lock(&gate_lock);
  while (!gate_open) pthread_cond_wait(&gate_cond, &gate_lock);
  pthread_mutex_unlock(&gate_lock);
  return NULL;
}

static void test_create_validates_and_refuses_threaded_process(void **state) {
  (void)state;
  apsched_executor *ex = NULL;
  char err[300];
  int fds = count_fds();
  assert_int_equal(apsched_process_pool_create(&(apsched_process_pool_options){.max_workers = -1},
                                               &ex, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(err, "max_workers: -1 is out of range (allowed: 1..1024, or 0 for 5)");
  assert_string_equal(apsched_last_error(), err);
  assert_int_equal(apsched_process_pool_create(
                       &(apsched_process_pool_options){.max_tasks_per_child = -2}, &ex, err,
                       sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "max_tasks_per_child: -2 is negative"));
  assert_int_equal(apsched_process_pool_create(&(apsched_process_pool_options){.kill_grace = -1},
                                               &ex, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "kill_grace: -1 microseconds is out of range"));
  assert_int_equal(apsched_process_pool_create(NULL, NULL, err, sizeof err), APSCHED_EINVAL);
  assert_string_equal(apsched_last_error(), "process pool: out is NULL");
  assert_null(ex);
  /* Created and freed without ever running: its server is gone too. */
  assert_int_equal(apsched_process_pool_create(NULL, &ex, err, sizeof err), APSCHED_OK);
  assert_int_equal(count_children(getpid()), 1);
  apsched_executor_free(ex);
  assert_int_equal(count_children(getpid()), 0);
  assert_int_equal(count_fds(), fds);

  gate_open = false;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wait_at_gate, NULL), 0);
  ex = NULL;
  assert_int_equal(apsched_process_pool_create(NULL, &ex, err, sizeof err), APSCHED_ESTATE);
  assert_null(ex);
  assert_string_equal(err, "process pool: the process already runs 1 other thread; create "
                           "process pools before starting threads (its fork server must be "
                           "forked from a single-threaded process), or set allow_threads");
  assert_string_equal(apsched_last_error(), err);
  assert_int_equal(count_children(getpid()), 0);
  assert_int_equal(apsched_process_pool_create(
                       &(apsched_process_pool_options){.allow_threads = true}, &ex, err,
                       sizeof err), APSCHED_OK);
  apsched_executor_free(ex);
  pthread_mutex_lock(&gate_lock);
  gate_open = true;
  pthread_cond_broadcast(&gate_cond);
  pthread_mutex_unlock(&gate_lock);
  pthread_join(th, NULL);
  assert_int_equal(count_children(getpid()), 0);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--orphan-child") == 0) return orphan_child_main();
  shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_validates_and_refuses_threaded_process),
      cmocka_unit_test(test_crashes_are_reported_and_pool_keeps_serving),
      cmocka_unit_test(test_terminate_other_ends_the_running_worker),
      cmocka_unit_test(test_job_sees_its_argument_time_id_and_name),
      cmocka_unit_test(test_pending_pointer_job_refused_at_submit),
      cmocka_unit_test(test_max_tasks_per_child_recycles_workers),
      cmocka_unit_test(test_batch_of_times_survives_a_crash),
      cmocka_unit_test(test_result_size_is_capped),
#if defined(__x86_64__)
      cmocka_unit_test(test_function_missing_from_server_image),
#endif
      cmocka_unit_test(test_timeout_ends_what_the_job_started),
      cmocka_unit_test(test_ten_thousand_runs_leave_no_zombies_or_descriptors),
      cmocka_unit_test(test_host_with_sigchld_handler_and_reaper_thread),
      cmocka_unit_test(test_shutdown_wait_lets_running_jobs_finish),
      cmocka_unit_test(test_shutdown_nowait_returns_at_once_and_ends_workers),
      cmocka_unit_test(test_restart_forks_a_new_server),
      cmocka_unit_test(test_restart_after_thread_pool_watchdog),
      cmocka_unit_test(test_server_killed_fails_runs_and_workers_exit),
      cmocka_unit_test(test_scheduler_process_killed_server_and_workers_exit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
