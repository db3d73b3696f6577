/* The fork server and the worker loop (see fork_server.h). Everything after
 * the fork in this file runs in a single-threaded child process: it may use
 * malloc and stdio (the parent had no other thread that could have held
 * their locks), and it leaves only through _exit, so the application's
 * atexit handlers and stdio buffers are never run or flushed twice. */
#include "fork_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* How often the server checks that its parent is still the scheduler's
 * process, for when end of file on the control socket cannot come (the
 * application forked a child that inherited the socket). */
#define PARENT_CHECK_MS 1000
/* Poll interval for workers without a pidfd (old kernels). */
#define NO_PIDFD_POLL_MS 20

/* ------------------------------------------------------------ utilities */

static int pidfd_open_compat(pid_t pid) {
#ifdef SYS_pidfd_open
  int fd = (int)syscall(SYS_pidfd_open, pid, 0); /* always close-on-exec */
  return fd >= 0 ? fd : -1;
#else
  (void)pid;
  return -1;
#endif
}

/* Closes every descriptor >= from. */
static void close_from(int from) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)from, ~0u, 0u) == 0) return;
#endif
  /* Collect first: closing while iterating would close the directory's own
   * descriptor under it. */
  int fds[256];
  for (;;) {
    size_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
      for (int fd = from; fd < 65536; fd++) close(fd);
      return;
    }
    int dfd = dirfd(d);
    struct dirent *e;
    bool more = false;
    while ((e = readdir(d))) {
      int fd = atoi(e->d_name);
      if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd < from || fd == dfd) continue;
      if (n == sizeof fds / sizeof fds[0]) {
        more = true;
        break;
      }
      fds[n++] = fd;
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) close(fds[i]);
    if (!more) return;
  }
}

/* Moves fd to exactly `to` (close-on-exec), closing the original. */
static int move_fd(int fd, int to) {
  if (fd == to) return fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 ? to : -1;
  if (dup3(fd, to, O_CLOEXEC) < 0) return -1;
  close(fd);
  return to;
}

static void default_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &sa, NULL); /* glibc-reserved numbers fail harmlessly */
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

static void set_signal(int sig, void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

/* ------------------------------------------- executable address ranges
 * Read once by the server: a function pointer outside them would belong to
 * a library loaded after the pool was created, and calling it would crash. */

typedef struct exec_range {
  uintptr_t lo, hi;
} exec_range;

static exec_range *exec_ranges;
static size_t exec_range_count;

static void load_exec_ranges(void) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return;
  char line[512];
  size_t cap = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[2] != 'x') continue;
    if (exec_range_count == cap) {
      size_t ncap = cap ? cap * 2 : 64;
      exec_range *r = realloc(exec_ranges, ncap * sizeof *r);
      if (!r) break;
      exec_ranges = r;
      cap = ncap;
    }
    exec_ranges[exec_range_count++] = (exec_range){lo, hi};
  }
  fclose(f);
}

static bool is_executable(uint64_t addr) {
  if (!exec_ranges) return true; /* no /proc: cannot tell */
  for (size_t i = 0; i < exec_range_count; i++)
    if (addr >= exec_ranges[i].lo && addr < exec_ranges[i].hi) return true;
  return false;
}

/* --------------------------------------------------------------- worker */

#define WORKER_FD 3

static _Noreturn void worker_exit(int code) { _exit(code); }

static void run_task(const apsched__wire_task *task, apsched__wire_buf *out) {
  char msg[256];
  if (!is_executable(task->fn)) {
    snprintf(msg, sizeof msg,
             "job function %#llx is not in the fork server's memory image (was its library "
             "loaded after the process pool was created?)",
             (unsigned long long)task->fn);
    apsched__wire_put_result(out, -1, msg);
    return;
  }
  apsched_run_ctx *ctx =
      apsched__run_local(&(apsched_run_local_info){.id = task->id,
                                                   .name = task->name,
                                                   .jobstore = task->jobstore,
                                                   .executor = task->executor,
                                                   .t = task->t,
                                                   .attempt = task->attempt,
                                                   .bytes = task->arg,
                                                   .len = task->arg_len});
  if (!ctx) {
    apsched__wire_put_result(out, -1, "out of memory in the worker process");
    return;
  }
  apsched_job_fn fn;
  uintptr_t addr = (uintptr_t)task->fn;
  memcpy(&fn, &addr, sizeof fn);
  int rc = fn(ctx);
  /* Output the job wrote through stdio reaches the terminal or file now,
   * not whenever (if ever) the worker's buffers would be flushed. */
  fflush(stdout);
  fflush(stderr);
  apsched__wire_put_result(out, rc, rc != 0 ? apsched__run_local_error(ctx) : NULL);
  apsched__run_local_free(ctx);
}

static _Noreturn void worker_main(int sock, pid_t server) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != server) worker_exit(1); /* the server died before prctl */
  /* The server ignores terminal signals; a job gets ordinary dispositions. */
  set_signal(SIGINT, SIG_DFL);
  set_signal(SIGQUIT, SIG_DFL);
  set_signal(SIGHUP, SIG_DFL);
  set_signal(SIGPIPE, SIG_DFL);
  if (move_fd(sock, WORKER_FD) < 0) worker_exit(2);
  close_from(WORKER_FD + 1); /* the server's control socket and pidfds */
  apsched__wire_buf out = {0};
  for (;;) {
    uint32_t n;
    int r = apsched__read_full(WORKER_FD, &n, sizeof n);
    if (r == 0) worker_exit(0); /* the pool closed our socket: retire */
    if (r < 0 || n < 1 || n > APSCHED__WIRE_MAX_TASK) worker_exit(2);
    unsigned char *frame = malloc(n);
    if (!frame) worker_exit(2);
    apsched__wire_task task;
    if (apsched__read_full(WORKER_FD, frame, n) != 1 || frame[0] != APSCHED__FRAME_TASK ||
        !apsched__wire_get_task(frame + 1, n - 1, &task))
      worker_exit(2);
    run_task(&task, &out);
    free(frame);
    if (out.len == 0) worker_exit(70); /* out of memory even for the result */
    if (apsched__write_full(WORKER_FD, out.data + out.off, out.len - out.off) != 0) worker_exit(0);
    out.off = out.len = 0;
  }
}

/* --------------------------------------------------------------- server */

typedef struct srv_worker {
  pid_t pid;
  int slot;
  int pidfd;      /* -1: poll with WNOHANG */
  int64_t kill_at; /* monotonic µs of the SIGKILL after a SIGTERM, 0: none */
} srv_worker;

typedef struct server {
  int ctl;
  bool ctl_open;
  pid_t parent, self;
  int64_t grace;
  bool quitting;
  srv_worker *w;
  size_t n, cap;
} server;

static void srv_signal(server *sv, srv_worker *w, int sig) {
  /* The worker leads its process group: the signal reaches what the job
   * started too. While unreaped, its pid (and group) cannot be reused. */
  if (kill(-w->pid, sig) != 0) kill(w->pid, sig);
  if (sig == SIGTERM) {
    kill(-w->pid, SIGCONT); /* a stopped job could not act on SIGTERM */
    if (w->kill_at == 0) w->kill_at = apsched__mono_now() + sv->grace;
  } else if (sig == SIGKILL) {
    w->kill_at = 0;
  }
}

static void srv_parent_gone(server *sv) {
  if (sv->ctl_open) close(sv->ctl);
  sv->ctl_open = false;
  if (!sv->quitting) {
    sv->quitting = true;
    for (size_t i = 0; i < sv->n; i++) srv_signal(sv, &sv->w[i], SIGTERM);
  }
}

static void srv_send(server *sv, const apsched__ctl_msg *m, int pass_fd) {
  if (sv->ctl_open && apsched__ctl_send(sv->ctl, m, pass_fd, 0) != 0) srv_parent_gone(sv);
}

static void srv_spawn(server *sv, int slot) {
  apsched__ctl_msg m = {.type = APSCHED__CTL_SPAWN_FAILED, .slot = slot};
  if (sv->quitting) {
    m.value = ESHUTDOWN;
    srv_send(sv, &m, -1);
    return;
  }
  if (sv->n == sv->cap) {
    size_t cap = sv->cap ? sv->cap * 2 : 8;
    srv_worker *w = realloc(sv->w, cap * sizeof *w);
    if (!w) {
      m.value = ENOMEM;
      srv_send(sv, &m, -1);
      return;
    }
    sv->w = w;
    sv->cap = cap;
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    m.value = errno;
    srv_send(sv, &m, -1);
    return;
  }
  pid_t pid = fork();
  if (pid < 0) {
    m.value = errno;
    close(pair[0]);
    close(pair[1]);
    srv_send(sv, &m, -1);
    return;
  }
  if (pid == 0) {
    close(pair[0]);
    worker_main(pair[1], sv->self);
  }
  close(pair[1]);
  setpgid(pid, pid); /* also here, so a signal sent at once finds the group */
  sv->w[sv->n++] = (srv_worker){.pid = pid, .slot = slot, .pidfd = pidfd_open_compat(pid)};
  m = (apsched__ctl_msg){.type = APSCHED__CTL_SPAWNED, .slot = slot, .pid = pid};
  srv_send(sv, &m, pair[0]);
  close(pair[0]);
}

static void srv_message(server *sv, const apsched__ctl_msg *m) {
  switch (m->type) {
  case APSCHED__CTL_SPAWN:
    srv_spawn(sv, m->slot);
    break;
  case APSCHED__CTL_TERMINATE:
    for (size_t i = 0; i < sv->n; i++)
      if (sv->w[i].pid == m->pid && sv->w[i].slot == m->slot)
        srv_signal(sv, &sv->w[i], m->value == SIGKILL ? SIGKILL : SIGTERM);
    break;
  case APSCHED__CTL_QUIT:
    if (!sv->quitting) {
      sv->quitting = true;
      for (size_t i = 0; i < sv->n; i++) srv_signal(sv, &sv->w[i], SIGTERM);
    }
    break;
  default:
    break;
  }
}

/* Reaps worker i if it has ended; true if it was removed. */
static bool srv_try_reap(server *sv, size_t i) {
  srv_worker *w = &sv->w[i];
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int status = 0;
  /* Look without reaping first: while the zombie exists its process group
   * cannot vanish, so sweeping the group cannot hit a reused id. */
  if (waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno == EINTR) return false;
    status = 0x7f00; /* cannot happen: nobody else waits for our children */
  } else {
    if (si.si_pid == 0) return false;
    kill(-w->pid, SIGKILL); /* whatever the job left running in its group */
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  apsched__ctl_msg m = {
      .type = APSCHED__CTL_EXITED, .slot = w->slot, .pid = w->pid, .value = status};
  if (w->pidfd >= 0) close(w->pidfd);
  sv->w[i] = sv->w[--sv->n];
  srv_send(sv, &m, -1);
  return true;
}

static _Noreturn void server_main(int ctl, pid_t parent, int64_t grace) {
  default_signals();
  /* The application's terminal signals (Ctrl-C) must not take the pool down
   * under a host that handles them; the server follows its parent instead. */
  set_signal(SIGINT, SIG_IGN);
  set_signal(SIGQUIT, SIG_IGN);
  set_signal(SIGHUP, SIG_IGN);
  set_signal(SIGPIPE, SIG_IGN);
  /* Unwritten stdio output belongs to the parent, which still writes it. */
  __fpurge(stdin);
  __fpurge(stdout);
  __fpurge(stderr);
  server sv = {.parent = parent, .self = getpid(), .grace = grace, .ctl_open = true};
  sv.ctl = move_fd(ctl, 3);
  if (sv.ctl < 0) _exit(2);
  close_from(4); /* the application's descriptors are not ours to hold open */
  if (getppid() != parent) _exit(0);
  load_exec_ranges();
  struct pollfd *pfd = NULL;
  size_t pfd_cap = 0;
  int64_t next_parent_check = apsched__mono_now() + PARENT_CHECK_MS * APSCHED_MSEC;
  for (;;) {
    if (sv.quitting && sv.n == 0) break;
    if (pfd_cap < sv.n + 1) {
      struct pollfd *p = realloc(pfd, (sv.n + 1) * sizeof *p);
      if (p) {
        pfd = p;
        pfd_cap = sv.n + 1;
      }
    }
    size_t np = 0;
    bool need_wnohang = pfd_cap < sv.n + 1;
    if (pfd && sv.ctl_open) pfd[np++] = (struct pollfd){.fd = sv.ctl, .events = POLLIN};
    size_t first_worker = np;
    for (size_t i = 0; i < sv.n && pfd; i++) {
      if (sv.w[i].pidfd < 0) need_wnohang = true;
      pfd[np++] = (struct pollfd){.fd = sv.w[i].pidfd, .events = POLLIN};
    }
    int64_t now = apsched__mono_now();
    int64_t wake = next_parent_check;
    for (size_t i = 0; i < sv.n; i++)
      if (sv.w[i].kill_at && sv.w[i].kill_at < wake) wake = sv.w[i].kill_at;
    int64_t ms = wake > now ? (wake - now + 999) / 1000 : 0;
    if (need_wnohang && ms > NO_PIDFD_POLL_MS) ms = NO_PIDFD_POLL_MS;
    int ready = poll(pfd, np, (int)ms);
    if (ready < 0 && errno != EINTR) {
      ready = 0;
      need_wnohang = true; /* check everything the slow way */
    }
    if (sv.ctl_open && np > 0 && first_worker == 1 && pfd[0].revents) {
      for (;;) {
        apsched__ctl_msg m;
        int got_fd;
        int r = apsched__ctl_recv(sv.ctl, &m, &got_fd, MSG_DONTWAIT);
        if (got_fd >= 0) close(got_fd);
        if (r == 1) {
          srv_message(&sv, &m);
          if (!sv.ctl_open) break;
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r < 0 && errno == EPROTO) continue;
        srv_parent_gone(&sv); /* end of file: the scheduler's process is gone */
        break;
      }
    }
    /* Reap what ended. Indexes into pfd are stale once a worker is
     * removed, so check by pid in the worker list. */
    for (size_t i = 0; i < sv.n;) {
      bool check = need_wnohang || sv.w[i].pidfd < 0;
      for (size_t k = first_worker; k < np && !check; k++)
        check = pfd[k].fd == sv.w[i].pidfd && pfd[k].revents;
      if (!(check && srv_try_reap(&sv, i))) i++;
    }
    now = apsched__mono_now();
    for (size_t i = 0; i < sv.n; i++)
      if (sv.w[i].kill_at && sv.w[i].kill_at <= now) srv_signal(&sv, &sv.w[i], SIGKILL);
    if (now >= next_parent_check) {
      if (sv.ctl_open && getppid() != sv.parent) srv_parent_gone(&sv);
      next_parent_check = now + PARENT_CHECK_MS * APSCHED_MSEC;
    }
  }
  _exit(0);
}

/* ------------------------------------------------ scheduler process side */

/* Live threads in /proc/self/task (zombie threads not counted). */
static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue; /* it just went away */
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0) continue;
    buf[len] = 0;
    const char *paren = strrchr(buf, ')'); /* the name may contain anything */
    char state = paren && paren[1] == ' ' ? paren[2] : 'R';
    if (state != 'Z' && state != 'X' && state != 'x') n++;
  }
  closedir(d);
  return n;
}

int apsched__other_threads(void) {
  const int allowed = 1 + UNDER_TSAN;
  int n = count_threads();
  for (int i = 0; i < 50 && n > allowed; i++) {
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    n = count_threads();
  }
  if (n < 0) return -1;
  n -= allowed;
  return n > 0 ? n : 0;
}

int apsched__fork_server_start(apsched__fork_server *fs, int64_t kill_grace, bool allow_threads,
                               char *errbuf, size_t errlen) {
  *fs = (apsched__fork_server){.pid = 0, .ctl = -1, .pidfd = -1};
  if (!allow_threads) {
    int others = apsched__other_threads();
    if (others > 0)
      return apsched__fail(APSCHED_ESTATE, errbuf, errlen,
                           "process pool: the process already runs %d other thread%s; create "
                           "process pools before starting threads (its fork server must be "
                           "forked from a single-threaded process), or set allow_threads",
                           others, others == 1 ? "" : "s");
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    return apsched__fail(APSCHED_ESYS, errbuf, errlen,
                         "process pool: socketpair for the fork server failed: %s",
                         strerror(errno));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(pair[0]);
    close(pair[1]);
    return apsched__fail(APSCHED_ESYS, errbuf, errlen,
                         "process pool: forking the fork server failed: %s", strerror(err));
  }
  if (pid == 0) {
    close(pair[0]);
    server_main(pair[1], parent, kill_grace);
  }
  close(pair[1]);
  fs->pid = pid;
  fs->ctl = pair[0];
  fs->pidfd = pidfd_open_compat(pid);
  return APSCHED_OK;
}

bool apsched__fork_server_reap(apsched__fork_server *fs, int *status) {
  bool reaped = false;
  *status = 0;
  if (fs->pid <= 0) return false;
  bool done = false;
  if (fs->pidfd >= 0) {
    /* By pidfd: even if someone else reaped the server and its pid was
     * reused, this can only ever wait for our own server. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    while ((r = waitid((idtype_t)P_PIDFD, (id_t)fs->pidfd, &si, WEXITED)) != 0 && errno == EINTR) {
    }
    if (r == 0) {
      reaped = done = true;
      if (si.si_code == CLD_EXITED) *status = (si.si_status & 0xff) << 8;
      else *status = (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
    } else if (errno == ECHILD) {
      done = true;
    }
    close(fs->pidfd);
    fs->pidfd = -1;
  }
  if (!done) {
    int r;
    while ((r = (int)waitpid(fs->pid, status, 0)) < 0 && errno == EINTR) {
    }
    reaped = r == fs->pid;
  }
  fs->pid = 0;
  return reaped;
}
