/* What the multi-process store benchmarks share (header-only), besides
 * bench_util.h (timing, min/median/max, the load average): a run counter in
 * shared memory that
 * this process and its children (this program exec'd again) update, and
 * the children's start/stop protocol (a ready pipe, one "go" pipe each).
 *
 * Define BENCH_NAME ("bench_redis") before including it; needs _GNU_SOURCE
 * (memfd_create, pipe2). */
#ifndef APSCHED_BENCH_PROCS_H
#define APSCHED_BENCH_PROCS_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_REPS 25
#define BENCH_MAX_PROCS 8

#include "bench_util.h"

/* ------------------------------------------- shared by the processes */

/* One mapping of a memfd, shared by this process and its children. */
typedef struct shared {
  atomic_long runs, dups, target;
  atomic_llong done_ns; /* now_ns() when runs reached target */
  atomic_uchar seen[];  /* runs of job i (up to the job count) */
} shared;

static shared *sh;
static size_t sh_jobs; /* entries of seen */
static int sh_fd = -1;

/* Maps fd (-1: a new memfd, inherited by the children) for jobs jobs. */
static inline void shared_map(int fd, size_t jobs) {
  size_t size = sizeof(shared) + jobs;
  if (fd < 0) {
    fd = memfd_create(BENCH_NAME, 0);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) fail("memfd: %s", strerror(errno));
  }
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) fail("mmap: %s", strerror(errno));
  sh = p;
  sh_jobs = jobs;
  sh_fd = fd;
}

static inline void shared_reset(long target) {
  atomic_store(&sh->runs, 0);
  atomic_store(&sh->dups, 0);
  atomic_store(&sh->target, target);
  atomic_store(&sh->done_ns, 0);
  memset((void *)sh->seen, 0, sh_jobs);
}

/* Counts one start of job idx; the one reaching the target notes the time. */
static inline void count_run(uint32_t idx) {
  if (idx < sh_jobs && atomic_fetch_add(&sh->seen[idx], 1) != 0) atomic_fetch_add(&sh->dups, 1);
  long total = atomic_fetch_add(&sh->runs, 1) + 1;
  if (total == atomic_load(&sh->target)) atomic_store(&sh->done_ns, now_ns());
}

/* Waits until the shared run count reaches its target; false after
 * timeout_s. */
static inline bool await_runs(double timeout_s) {
  int64_t limit = now_ns() + (int64_t)(timeout_s * 1e9);
  while (atomic_load(&sh->runs) < atomic_load(&sh->target)) {
    if (now_ns() > limit) return false;
    sleep_us(1000);
  }
  return true;
}

/* The job's argument: its index, 4 bytes little-endian. */
static inline void put_index(unsigned char b[4], uint32_t i) {
  for (int k = 0; k < 4; k++) b[k] = (unsigned char)(i >> (8 * k));
}

static inline uint32_t get_index(const unsigned char b[4]) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* ------------------------------------------------------- child processes */

typedef struct child {
  pid_t pid;
  int go; /* write end: one byte resumes it, closing it ends it */
} child;

static int ready_pipe[2] = {-1, -1};

/* Starts this program again with argv (argv[0] aside, which names it);
 * the children find the memfd, their ready and go descriptors in the
 * arguments the caller made with child_fds. */
typedef struct child_fds {
  char shm[16], ready[16], go[16];
} child_fds;

static inline child spawn_child(char **argv, child_fds *fds) {
  if (ready_pipe[0] < 0 && pipe2(ready_pipe, O_CLOEXEC) != 0) fail("pipe: %s", strerror(errno));
  int go[2];
  if (pipe2(go, O_CLOEXEC) != 0) fail("pipe: %s", strerror(errno));
  snprintf(fds->shm, sizeof fds->shm, "%d", sh_fd);
  snprintf(fds->ready, sizeof fds->ready, "%d", ready_pipe[1]);
  snprintf(fds->go, sizeof fds->go, "%d", go[0]);
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

static inline int wait_exit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Waits for n children to say they are ready (60 s at most). */
static inline void await_ready(size_t n) {
  for (size_t got = 0; got < n;) {
    struct pollfd p = {.fd = ready_pipe[0], .events = POLLIN};
    if (poll(&p, 1, 60000) <= 0) fail("%zu of %zu child processes did not get ready", n - got, n);
    char buf[BENCH_MAX_PROCS];
    ssize_t r = read(ready_pipe[0], buf, n - got < sizeof buf ? n - got : sizeof buf);
    if (r > 0) got += (size_t)r;
  }
}

static inline void go(const child *c) {
  if (write(c->go, "G", 1) != 1) fail("cannot resume child %d", (int)c->pid);
}

/* Ends the child (EOF on its pipe) and waits for it. */
static inline void finish(child *c) {
  close(c->go);
  int rc = wait_exit(c->pid);
  if (rc != 0) fail("child %d exited with %d", (int)c->pid, rc);
}

/* In a child: says it is ready, waits for "go"; false if the parent left. */
static inline bool child_ready_go(int ready, int go_fd) {
  char b;
  return write(ready, "R", 1) == 1 && read(go_fd, &b, 1) == 1;
}

/* In a child: waits until the parent closes the go pipe. */
static inline void child_await_end(int go_fd) {
  char b;
  while (read(go_fd, &b, 1) > 0) {
  }
}

#endif
