/* The process pool executor: runs jobs in worker processes.
 *
 * Shape: pool creation forks the fork server (fork_server.c) while the
 * process is still single-threaded. start() creates one I/O thread in the
 * scheduler's process; it owns every worker slot and all process traffic:
 * it asks the server for workers, receives each worker's socket from it,
 * sends tasks to workers directly, collects results, enforces max_runtime,
 * and turns the server's reports of ended workers into outcomes. submit()
 * only queues the run under the pool's short lock and pokes an eventfd, so
 * it never blocks.
 *
 * A run may carry several scheduled times (catch-up without coalescing):
 * they run one after another, each with its own misfire check. If the
 * worker dies, the time it was running gets the ERROR and the rest go back
 * to the front of the queue.
 *
 * Outcomes: a result frame -> apsched_run_record as returned; a worker that
 * ended while running -> ERROR naming the signal or exit status; over
 * max_runtime -> apsched_run_cancel, SIGTERM to the worker's process group,
 * SIGKILL after kill_grace (sent by the server), ERROR "timed out after ...",
 * and the run completes (freeing its max_instances slot) once the worker
 * is really gone. */
#include "fork_server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_WORKERS 5
#define MAX_WORKERS 1024
#define DEFAULT_GRACE (2 * APSCHED_SEC)
/* After a failed fork, wait this long before asking for a worker again. */
#define SPAWN_RETRY (200 * APSCHED_MSEC)
/* Unconsumed bytes buffered from one worker: one result frame at most. */
#define MAX_PENDING_IN (APSCHED__WIRE_MAX_RESULT + 64)

typedef enum wstate {
  W_FREE,     /* no process */
  W_SPAWNING, /* asked the server for one */
  W_IDLE,     /* waiting for a task */
  W_BUSY,     /* running run->times[index] */
  W_DYING     /* ended or being ended; the server's EXITED report is pending */
} wstate;

/* Why the pool itself ended a worker (decides the outcome's message). */
typedef enum end_reason { END_NONE, END_TIMEOUT, END_SHUTDOWN, END_PROTOCOL } end_reason;

typedef struct pworker {
  wstate state;
  pid_t pid;
  int fd;   /* the task socket, -1 once closed */
  bool eof; /* the worker's end is closed: stop polling */
  apsched__wire_buf in, out;
  apsched_run_ctx *run; /* the run whose time `index` executes (BUSY; DYING until the outcome) */
  size_t index;
  int64_t deadline;     /* monotonic µs at which that time overruns; INT64_MAX: none */
  end_reason why;
  char why_text[160];   /* END_PROTOCOL: what the worker did wrong */
  unsigned tasks;       /* times run, for max_tasks_per_child */
} pworker;

typedef struct qrun {
  apsched_run_ctx *run;
  size_t next; /* the first time not run yet (> 0 after a worker died mid-run) */
} qrun;

enum { QUIT_NONE, QUIT_DRAIN, QUIT_NOW };

typedef struct process_pool {
  apsched_executor base;
  int max_workers;
  unsigned max_tasks;
  int64_t grace;
  bool allow_threads;
  int wake; /* eventfd: submit and shutdown poke the I/O thread */

  pthread_mutex_t lock;
  pthread_cond_t changed; /* io_running became false */
  /* ---- under lock */
  qrun *queue; /* ring buffer */
  size_t head, count, cap;
  bool accepting;
  int quit;
  bool io_running;  /* the I/O thread exists and has not finished */
  bool io_joinable;
  pthread_t io;
  bool unavailable; /* the server exited unexpectedly: runs are refused */
  char unavailable_msg[200];
  apsched__fork_server server; /* written by the I/O thread only while io_running */

  /* ---- the I/O thread's own (reset by start while it is not running) */
  pworker *w;
  struct pollfd *pfd;
  apsched__ctl_msg *ctl_out; /* records the socket could not take yet */
  size_t ctl_out_n, ctl_out_cap;
  bool quit_sent, server_gone;
  int64_t spawn_retry_at;
} process_pool;

/* The pool whose I/O thread this is (for owns_thread). */
static _Thread_local process_pool *io_pool;

/* ------------------------------------------------------------ the queue */

static int queue_grow(process_pool *p) {
  size_t cap = p->cap ? p->cap * 2 : 64;
  qrun *q = malloc(cap * sizeof *q);
  if (!q) return APSCHED_ENOMEM;
  for (size_t i = 0; i < p->count; i++) q[i] = p->queue[(p->head + i) % p->cap];
  free(p->queue);
  p->queue = q;
  p->head = 0;
  p->cap = cap;
  return APSCHED_OK;
}

/* Lock held. */
static int queue_push(process_pool *p, qrun r, bool front) {
  if (p->count == p->cap && queue_grow(p) != APSCHED_OK) return APSCHED_ENOMEM;
  if (front) {
    p->head = (p->head + p->cap - 1) % p->cap;
    p->queue[p->head] = r;
  } else {
    p->queue[(p->head + p->count) % p->cap] = r;
  }
  p->count++;
  return APSCHED_OK;
}

/* Lock held. Takes every queued run into a malloc'd array (NULL if none). */
static qrun *queue_take_all(process_pool *p, size_t *n) {
  *n = 0;
  if (p->count == 0) return NULL;
  qrun *all = malloc(p->count * sizeof *all);
  if (!all) return NULL; /* they stay queued; the I/O thread drains them */
  for (; p->count > 0; p->count--, p->head = (p->head + 1) % p->cap) all[(*n)++] = p->queue[p->head];
  return all;
}

static void poke(process_pool *p) {
  uint64_t one = 1;
  /* EAGAIN means the counter is saturated: it is readable anyway. */
  while (write(p->wake, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

/* ----------------------------------------------------------- outcomes */

/* Gives times [from, count) the error and completes the run. */
static void finish_rest(apsched_run_ctx *run, size_t from, const char *error) {
  for (size_t i = from; i < apsched_run_count(run); i++) apsched_run_record(run, i, -1, error);
  apsched_run_complete(run);
}

/* A run that will not (or no longer) run in this pool: what is left of it
 * is reported with message, or as discarded before it started. */
static void drop_run(qrun r, const char *message) {
  if (r.next == 0 && !message) apsched_run_discard(r.run);
  else finish_rest(r.run, r.next, message ? message : "the executor shut down before the run started");
}

/* Why this pool cannot run a job at all, or NULL: one set of rules for both
 * the add-time check (a record) and the submit-time check (a run). alias,
 * when known, names the pool in the message. */
static const char *unsuitable(const apsched_func *f, bool pointer_only, size_t arg_len,
                              const char *id, const char *alias, char *buf, size_t len) {
  if (!f || !apsched__func_fn(f)) {
    snprintf(buf, len, "job function \"%s\" is not registered in this process",
             f && f->name ? f->name : "?");
    return buf;
  }
  if (pointer_only) {
    snprintf(buf, len,
             "job \"%s\" has only a pointer argument, which cannot reach a worker process: "
             "give it a byte argument (arg_bytes)%s%s%s",
             id, alias ? " to run it in process pool \"" : "", alias ? alias : "", alias ? "\"" : "");
    return buf;
  }
  if (arg_len > APSCHED__WIRE_MAX_ARG) {
    snprintf(buf, len, "job \"%s\": its argument of %zu bytes is larger than the process pool's "
             "limit of %u bytes", id, arg_len, APSCHED__WIRE_MAX_ARG);
    return buf;
  }
  return NULL;
}

static const char *refusal(apsched_run_ctx *run, char *buf, size_t len) {
  size_t arg_len = 0;
  const void *bytes = apsched_run_arg_bytes(run, &arg_len);
  return unsuitable(apsched_run_func(run), !bytes && apsched_run_arg(run), arg_len,
                    apsched_run_job_id(run), apsched_run_executor(run), buf, len);
}

/* The add/modify-time check: a job the pool can never run is refused up front. */
static int pp_check_job(apsched_executor *ex, const apsched_job_record *rec, char *why,
                        size_t len) {
  (void)ex;
  const apsched_job_args *a = rec->args;
  bool pointer_only = a && a->ptr && a->len == 0;
  return unsuitable(rec->func, pointer_only, a ? a->len : 0, rec->id, NULL, why, len)
             ? APSCHED_EINVAL
             : APSCHED_OK;
}

/* ------------------------------------------------------- the I/O thread */

static int64_t now_us(void) { return apsched__mono_now(); }

static void ctl_send(process_pool *p, int type, int slot, pid_t pid, int value) {
  apsched__ctl_msg m = {.type = type, .slot = slot, .pid = pid, .value = value};
  if (p->server_gone) return;
  if (p->ctl_out_n == 0 && apsched__ctl_send(p->server.ctl, &m, -1, MSG_DONTWAIT) == 0) return;
  if (p->ctl_out_n == 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    return; /* the server is gone: end of file on the socket says so next */
  /* Sized at creation for every record that can be outstanding (a SPAWN
   * and two TERMINATEs per slot, a QUIT): growing is only a fallback. */
  if (p->ctl_out_n == p->ctl_out_cap) {
    size_t cap = p->ctl_out_cap * 2;
    apsched__ctl_msg *q = realloc(p->ctl_out, cap * sizeof *q);
    if (!q) return;
    p->ctl_out = q;
    p->ctl_out_cap = cap;
  }
  p->ctl_out[p->ctl_out_n++] = m;
}

static void ctl_flush(process_pool *p) {
  size_t done = 0;
  while (done < p->ctl_out_n &&
         apsched__ctl_send(p->server.ctl, &p->ctl_out[done], -1, MSG_DONTWAIT) == 0)
    done++;
  memmove(p->ctl_out, p->ctl_out + done, (p->ctl_out_n - done) * sizeof *p->ctl_out);
  p->ctl_out_n -= done;
}

static void close_worker_fd(pworker *w) {
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  w->eof = true;
  apsched__wire_buf_free(&w->in);
  apsched__wire_buf_free(&w->out);
}

/* Ends the worker by the pool's decision; its EXITED report finishes it. */
static void end_worker(process_pool *p, pworker *w, end_reason why, int sig) {
  if (w->why == END_NONE) w->why = why;
  w->state = W_DYING;
  ctl_send(p, APSCHED__CTL_TERMINATE, (int)(w - p->w), w->pid, sig);
}

/* The worker broke the protocol (w->why_text says how): kill it. */
static void protocol_error(process_pool *p, pworker *w) {
  close_worker_fd(w);
  end_worker(p, w, END_PROTOCOL, SIGKILL);
}

/* Sends time i.. of run to idle worker w: the first time that passes its
 * misfire check. Completes the run if none is left. */
static void start_run(pworker *w, apsched_run_ctx *run, size_t i) {
  const apsched_func *f = apsched_run_func(run);
  for (; i < apsched_run_count(run); i++) {
    if (!apsched_run_begin(run, i)) continue; /* reported missed */
    size_t arg_len = 0;
    const void *arg = apsched_run_arg_bytes(run, &arg_len);
    uintptr_t fn_addr;
    memcpy(&fn_addr, &(apsched_job_fn){apsched__func_fn(f)}, sizeof fn_addr);
    const char *store = apsched_run_jobstore(run), *executor = apsched_run_executor(run);
    apsched__wire_task task = {.fn = (uint64_t)fn_addr,
                               .t = apsched_run_time_at(run, i),
                               .attempt = apsched_run_attempt(run),
                               .id = apsched_run_job_id(run),
                               .name = apsched_run_job_name(run),
                               .jobstore = store ? store : "",
                               .executor = executor ? executor : "",
                               .arg = arg,
                               .arg_len = arg_len};
    if (apsched__wire_put_task(&w->out, &task) != APSCHED_OK) {
      apsched_run_record(run, i, -1, "out of memory sending the job to a worker process");
      continue;
    }
    w->state = W_BUSY;
    w->run = run;
    w->index = i;
    w->deadline = apsched__run_deadline(run);
    if (apsched__wire_flush(w->fd, &w->out) != 0) {
      /* It died while idle: its EXITED report gives the outcome. */
      w->eof = true;
      w->state = W_DYING;
    }
    return;
  }
  apsched_run_complete(run);
}

/* What is left of run after time `done` (which has its outcome): continue
 * on w if it can take more, else requeue it or give up on it. */
static void continue_run(process_pool *p, pworker *w, apsched_run_ctx *run, size_t next) {
  bool more = next < apsched_run_count(run);
  pthread_mutex_lock(&p->lock);
  bool now = p->quit == QUIT_NOW;
  bool requeued = more && !now && w->state != W_IDLE &&
                  queue_push(p, (qrun){run, next}, true) == APSCHED_OK;
  pthread_mutex_unlock(&p->lock);
  if (requeued) return;
  if (more && !now && w->state == W_IDLE) {
    start_run(w, run, next);
    return;
  }
  if (more) finish_rest(run, next, now ? "the executor shut down before the run started"
                                       : "out of memory requeueing the run");
  else apsched_run_complete(run);
}

static void on_result(process_pool *p, pworker *w, unsigned char *body, size_t len) {
  int32_t rc;
  const char *error;
  if (!w->run || !apsched__wire_get_result(body, len, &rc, &error)) {
    snprintf(w->why_text, sizeof w->why_text,
             w->run ? "worker sent a malformed result (%zu bytes)"
                    : "worker sent a result (%zu bytes) while it had no job",
             len);
    protocol_error(p, w);
    return;
  }
  apsched_run_ctx *run = w->run;
  size_t next = w->index + 1;
  w->run = NULL;
  w->deadline = INT64_MAX;
  w->tasks++;
  apsched_run_record(run, w->index, rc, error);
  if (w->state == W_BUSY) {
    w->state = W_IDLE;
    if (p->max_tasks && w->tasks >= p->max_tasks) {
      /* Recycle: end of file tells it to exit; the server reports it. */
      close_worker_fd(w);
      w->state = W_DYING;
    }
  }
  continue_run(p, w, run, next);
}

/* Reads what worker w sent and handles complete frames. */
static void read_worker(process_pool *p, pworker *w) {
  if (w->fd < 0 || w->eof) return;
  int r = apsched__wire_fill(w->fd, &w->in, MAX_PENDING_IN);
  for (;;) {
    int type;
    unsigned char *body;
    size_t len, announced;
    int got = apsched__wire_take_frame(&w->in, APSCHED__WIRE_MAX_RESULT, &type, &body, &len,
                                       &announced);
    if (got == 0) break;
    if (got < 0) {
      snprintf(w->why_text, sizeof w->why_text,
               "worker announced a result of %zu bytes (the limit is %u)", announced,
               APSCHED__WIRE_MAX_RESULT);
      protocol_error(p, w);
      return;
    }
    if (type != APSCHED__FRAME_RESULT) {
      snprintf(w->why_text, sizeof w->why_text, "worker sent a frame of unknown type %d", type);
      protocol_error(p, w);
      return;
    }
    on_result(p, w, body, len);
    if (w->fd < 0) return;
  }
  if (r <= 0) {
    /* Gone (or unreadable): the server's EXITED report tells how. */
    w->eof = true;
    if (w->state == W_IDLE || w->state == W_BUSY) w->state = W_DYING;
  }
}

/* The server reaped worker w with this wait status: last words, outcome. */
static void worker_exited(process_pool *p, pworker *w, int status, bool known) {
  /* A result written just before it ended is still buffered; DYING makes
   * sure nothing new is started on it meanwhile. */
  if (w->state != W_DYING) w->state = W_DYING;
  read_worker(p, w);
  apsched_run_ctx *run = w->run;
  size_t index = w->index;
  end_reason why = w->why;
  char how[96], msg[320], why_text[sizeof w->why_text];
  memcpy(why_text, w->why_text, sizeof why_text);
  if (known) apsched__describe_status("worker", status, how, sizeof how);
  else snprintf(how, sizeof how, "the process pool's fork server exited");
  close_worker_fd(w);
  *w = (pworker){.state = W_FREE, .fd = -1, .deadline = INT64_MAX};
  if (!run) return;
  const char *error = msg;
  switch (why) {
  case END_TIMEOUT: /* run is cancelled: recorded as "timed out after ...[: error]" */
    if (known && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) error = NULL;
    else if (known && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      snprintf(msg, sizeof msg, "%s after ignoring SIGTERM", how);
    else snprintf(msg, sizeof msg, "%s", how);
    break;
  case END_SHUTDOWN:
    snprintf(msg, sizeof msg, "the executor shut down while the job was running (%s)", how);
    break;
  case END_PROTOCOL:
    snprintf(msg, sizeof msg, "%s", why_text[0] ? why_text : how);
    break;
  case END_NONE:
    snprintf(msg, sizeof msg, "%s", how);
    break;
  }
  apsched_run_record(run, index, -1, error);
  continue_run(p, w, run, index + 1);
}

static void on_spawned(process_pool *p, const apsched__ctl_msg *m, int fd) {
  pworker *w = &p->w[m->slot];
  if (w->state != W_SPAWNING) { /* cannot happen; do not leak it */
    if (fd >= 0) close(fd);
    return;
  }
  w->pid = m->pid;
  w->tasks = 0;
  w->why = END_NONE;
  w->deadline = INT64_MAX;
  w->fd = fd;
  w->eof = fd < 0;
  if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) close_worker_fd(w);
  /* Without its socket (lost in transit) the worker sees end of file and exits. */
  w->state = w->fd >= 0 && !p->quit_sent ? W_IDLE : W_DYING;
  if (p->quit_sent) close_worker_fd(w);
}

/* Fails every queued run with message (no worker can be had); NULL: as
 * discarded at shutdown. */
static void fail_queue(process_pool *p, const char *message) {
  pthread_mutex_lock(&p->lock);
  size_t n;
  qrun *all = queue_take_all(p, &n);
  pthread_mutex_unlock(&p->lock);
  for (size_t i = 0; i < n; i++) drop_run(all[i], message);
  free(all);
}

static void on_spawn_failed(process_pool *p, const apsched__ctl_msg *m) {
  p->w[m->slot] = (pworker){.state = W_FREE, .fd = -1, .deadline = INT64_MAX};
  p->spawn_retry_at = now_us() + SPAWN_RETRY;
  for (int i = 0; i < p->max_workers; i++)
    if (p->w[i].state != W_FREE) return; /* the others will serve the queue */
  char msg[200];
  snprintf(msg, sizeof msg, "cannot start a worker process: %s", strerror(m->value));
  fail_queue(p, msg);
}

/* The server is gone: no more reports will come. */
static void on_server_gone(process_pool *p) {
  p->server_gone = true;
  int status = 0;
  bool known = apsched__fork_server_reap(&p->server, &status);
  for (int i = 0; i < p->max_workers; i++) {
    pworker *w = &p->w[i];
    if (w->state == W_FREE) continue;
    if (w->state == W_SPAWNING) *w = (pworker){.state = W_FREE, .fd = -1};
    else worker_exited(p, w, 0, false); /* it dies with the server (PR_SET_PDEATHSIG) */
  }
  if (p->quit_sent) return;
  /* Unexpected: nothing can fork a new server from this (multi-threaded)
   * process, so the pool stays unavailable until it is restarted. */
  char how[96];
  if (known) apsched__describe_status("its fork server", status, how, sizeof how);
  else snprintf(how, sizeof how, "its fork server exited (reaped elsewhere in the process)");
  pthread_mutex_lock(&p->lock);
  p->unavailable = true;
  snprintf(p->unavailable_msg, sizeof p->unavailable_msg, "process pool unavailable: %s", how);
  pthread_mutex_unlock(&p->lock);
  fail_queue(p, p->unavailable_msg);
}

static void read_ctl(process_pool *p) {
  for (;;) {
    apsched__ctl_msg m;
    int fd;
    int r = apsched__ctl_recv(p->server.ctl, &m, &fd, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r < 0 && errno == EPROTO) continue;
    if (r <= 0) {
      on_server_gone(p);
      return;
    }
    bool slot_ok = m.slot >= 0 && m.slot < p->max_workers;
    if (!slot_ok || m.type != APSCHED__CTL_SPAWNED) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
    if (!slot_ok) continue;
    if (m.type == APSCHED__CTL_SPAWNED) on_spawned(p, &m, fd);
    else if (m.type == APSCHED__CTL_SPAWN_FAILED && p->w[m.slot].state == W_SPAWNING)
      on_spawn_failed(p, &m);
    else if (m.type == APSCHED__CTL_EXITED && p->w[m.slot].pid == m.pid &&
             p->w[m.slot].state != W_FREE && p->w[m.slot].state != W_SPAWNING)
      worker_exited(p, &p->w[m.slot], m.value, true);
  }
}

/* Hands queued runs to idle workers. */
static void assign(process_pool *p) {
  for (int i = 0; i < p->max_workers; i++) {
    pworker *w = &p->w[i];
    if (w->state != W_IDLE) continue;
    pthread_mutex_lock(&p->lock);
    bool have = p->count > 0;
    qrun r = {0};
    if (have) {
      r = p->queue[p->head];
      p->head = (p->head + 1) % p->cap;
      p->count--;
    }
    pthread_mutex_unlock(&p->lock);
    if (!have) return;
    start_run(w, r.run, r.next);
    if (w->state == W_IDLE) i--; /* nothing of that run ran: offer w the next */
  }
}

/* Asks for workers while queued runs outnumber idle and starting ones. */
static void spawn_more(process_pool *p, size_t queued) {
  if (p->quit_sent || now_us() < p->spawn_retry_at) return;
  size_t supply = 0;
  for (int i = 0; i < p->max_workers; i++)
    supply += p->w[i].state == W_IDLE || p->w[i].state == W_SPAWNING;
  for (int i = 0; i < p->max_workers && queued > supply; i++) {
    if (p->w[i].state != W_FREE) continue;
    p->w[i] = (pworker){.state = W_SPAWNING, .fd = -1, .deadline = INT64_MAX};
    ctl_send(p, APSCHED__CTL_SPAWN, i, 0, 0);
    supply++;
  }
}

/* Shutdown steps: with QUIT_NOW at once (running jobs are terminated);
 * with QUIT_DRAIN once nothing is queued or running. */
static void maybe_quit(process_pool *p, int quit, size_t queued) {
  if (quit == QUIT_NONE || p->quit_sent) return;
  bool running = false;
  for (int i = 0; i < p->max_workers; i++) running |= p->w[i].run != NULL;
  if (quit == QUIT_DRAIN && (queued > 0 || running)) return;
  for (int i = 0; i < p->max_workers; i++) {
    pworker *w = &p->w[i];
    if (w->run && w->why == END_NONE) w->why = END_SHUTDOWN;
    if (w->state == W_IDLE) {
      close_worker_fd(w); /* it exits at end of file, if SIGTERM is not first */
      w->state = W_DYING;
    } else if (w->state == W_BUSY) {
      w->state = W_DYING;
    }
  }
  ctl_send(p, APSCHED__CTL_QUIT, -1, 0, 0);
  p->quit_sent = true;
}

/* Ends workers whose run overran its max_runtime or was told to stop (a
 * newer run of its job under TERMINATE_OTHER): both are recorded with the
 * run's cancellation, as "timed out ..." or the stop's reason. */
static void check_deadlines(process_pool *p, int64_t now) {
  for (int i = 0; i < p->max_workers; i++) {
    pworker *w = &p->w[i];
    if (w->state != W_BUSY) continue;
    bool stop = apsched_run_stop_reason(w->run) != NULL;
    if (!stop && w->deadline > now) continue;
    if (!stop) apsched_run_cancel(w->run);
    end_worker(p, w, END_TIMEOUT, SIGTERM);
  }
}

static void *io_main(void *arg) {
  process_pool *p = arg;
  io_pool = p;
  while (!p->server_gone) {
    uint64_t pokes;
    while (read(p->wake, &pokes, sizeof pokes) < 0 && errno == EINTR) {
    }
    if (!p->quit_sent) assign(p);
    pthread_mutex_lock(&p->lock);
    int quit = p->quit;
    size_t queued = p->count;
    pthread_mutex_unlock(&p->lock);
    spawn_more(p, queued);
    maybe_quit(p, quit, queued);

    size_t n = 0;
    p->pfd[n++] = (struct pollfd){.fd = p->wake, .events = POLLIN};
    p->pfd[n++] = (struct pollfd){.fd = p->server.ctl,
                                  .events = POLLIN | (p->ctl_out_n ? POLLOUT : 0)};
    int64_t now = now_us(), wake_at = INT64_MAX;
    for (int i = 0; i < p->max_workers; i++) {
      pworker *w = &p->w[i];
      if (w->state == W_BUSY && w->deadline < wake_at) wake_at = w->deadline;
      if (w->fd >= 0 && !w->eof)
        p->pfd[n++] = (struct pollfd){
            .fd = w->fd, .events = POLLIN | (w->out.len > w->out.off ? POLLOUT : 0)};
    }
    if (queued > 0 && p->spawn_retry_at > now && p->spawn_retry_at < wake_at)
      wake_at = p->spawn_retry_at;
    int timeout = -1;
    if (wake_at != INT64_MAX) {
      int64_t ms = wake_at > now ? (wake_at - now + 999) / 1000 : 0;
      timeout = ms > 60000 ? 60000 : (int)ms;
    }
    if (poll(p->pfd, n, timeout) < 0 && errno != EINTR) {
      /* Cannot wait: nothing sensible is left but to go around slowly. */
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    /* Workers before the server's reports, so a result sent just before a
     * worker ended is never mistaken for a crash. */
    for (size_t k = 2; k < n; k++) {
      if (!p->pfd[k].revents) continue;
      for (int i = 0; i < p->max_workers; i++) {
        pworker *w = &p->w[i];
        if (w->fd != p->pfd[k].fd || w->eof) continue;
        if (p->pfd[k].revents & POLLOUT && apsched__wire_flush(w->fd, &w->out) != 0) w->eof = true;
        read_worker(p, w);
        break;
      }
    }
    if (p->pfd[1].revents & POLLOUT) ctl_flush(p);
    if (p->pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) read_ctl(p);
    if (!p->server_gone) check_deadlines(p, now_us());
  }
  /* Runs requeued by workers that died with the server. */
  fail_queue(p, NULL);
  close(p->server.ctl);
  pthread_mutex_lock(&p->lock);
  p->server.ctl = -1;
  p->io_running = false;
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

/* ------------------------------------------------------------ the vtable */

/* The run's stop reason is set already: the I/O thread ends its worker on
 * its next round (check_deadlines); a run still queued ends when it starts
 * (its times are not started). */
static void pp_terminate(apsched_executor *ex, apsched_run_ctx *run) {
  (void)run;
  poke((process_pool *)ex);
}

static int pp_start(apsched_executor *ex, apsched_scheduler *s, const char *alias) {
  (void)s;
  process_pool *p = (process_pool *)ex;
  /* Called with the scheduler's lock held: wait for nothing here (the I/O
   * thread of a previous round may itself wait for that lock). */
  pthread_mutex_lock(&p->lock);
  int rc = APSCHED_OK;
  if (p->io_running) {
    /* the previous shutdown is still ending its workers */
    rc = apsched__error(APSCHED_ESTATE, "process pool '%s': the previous shutdown is still "
                                        "ending its workers", alias);
  } else {
    if (p->io_joinable) {
      pthread_join(p->io, NULL); /* finished: returns at once */
      p->io_joinable = false;
    }
    if (p->server.pid == 0) { /* restarted after a shutdown: a new server */
      char why[200] = "";
      rc = apsched__fork_server_start(&p->server, p->grace, p->allow_threads, why, sizeof why);
      if (rc != APSCHED_OK) apsched__error(rc, "process pool '%s': %s", alias, why);
    }
  }
  if (rc == APSCHED_OK) {
    for (int i = 0; i < p->max_workers; i++)
      p->w[i] = (pworker){.state = W_FREE, .fd = -1, .deadline = INT64_MAX};
    p->ctl_out_n = 0;
    p->quit_sent = p->server_gone = false;
    p->spawn_retry_at = 0;
    p->accepting = true;
    p->quit = QUIT_NONE;
    p->unavailable = false;
    p->io_running = true;
    int err = pthread_create(&p->io, NULL, io_main, p);
    if (err != 0) {
      p->io_running = p->accepting = false;
      rc = apsched__error(APSCHED_ESYS, "process pool '%s': cannot start its I/O thread: %s",
                          alias, strerror(err));
    } else {
      p->io_joinable = true;
    }
  }
  pthread_mutex_unlock(&p->lock);
  return rc;
}

static int pp_submit(apsched_executor *ex, apsched_run_ctx *run) {
  process_pool *p = (process_pool *)ex;
  char why[400];
  const char *refused = refusal(run, why, sizeof why);
  const char *alias = apsched_run_executor(run);
  pthread_mutex_lock(&p->lock);
  int rc = APSCHED_OK;
  if (!p->accepting) {
    rc = apsched__error(APSCHED_ESTATE, "process pool '%s': shut down, not accepting runs", alias);
  } else if (!refused && p->unavailable) {
    snprintf(why, sizeof why, "%s", p->unavailable_msg);
    refused = why;
  } else if (!refused && queue_push(p, (qrun){run, 0}, false) != APSCHED_OK) {
    rc = apsched__error(APSCHED_ENOMEM, "process pool '%s': out of memory queueing the run", alias);
  }
  pthread_mutex_unlock(&p->lock);
  if (rc != APSCHED_OK) return rc;
  if (refused) finish_rest(run, 0, refused); /* ours now: reported, not run */
  else poke(p);
  return APSCHED_OK;
}

static void pp_shutdown(apsched_executor *ex, bool wait) {
  process_pool *p = (process_pool *)ex;
  pthread_mutex_lock(&p->lock);
  p->accepting = false;
  size_t n = 0;
  qrun *dropped = NULL;
  if (!wait) {
    dropped = queue_take_all(p, &n);
    p->quit = QUIT_NOW;
  } else if (p->quit < QUIT_DRAIN) {
    p->quit = QUIT_DRAIN;
  }
  pthread_mutex_unlock(&p->lock);
  poke(p);
  for (size_t i = 0; i < n; i++) drop_run(dropped[i], NULL);
  free(dropped);
  if (!wait || io_pool == p) return;
  pthread_mutex_lock(&p->lock);
  while (p->io_running) pthread_cond_wait(&p->changed, &p->lock);
  bool join = p->io_joinable;
  p->io_joinable = false;
  pthread_mutex_unlock(&p->lock);
  if (join) pthread_join(p->io, NULL);
}

static bool pp_owns_thread(apsched_executor *ex) { return io_pool == (process_pool *)ex; }

static void pp_destroy(apsched_executor *ex) {
  process_pool *p = (process_pool *)ex;
  pp_shutdown(ex, false);
  pthread_mutex_lock(&p->lock);
  bool join = p->io_joinable && io_pool != p;
  p->io_joinable = false;
  pthread_mutex_unlock(&p->lock);
  if (join) pthread_join(p->io, NULL); /* its workers end within kill_grace */
  if (p->server.ctl >= 0) {
    close(p->server.ctl); /* never started (or start failed): end of file stops it */
    p->server.ctl = -1;
  }
  int status;
  if (p->server.pid > 0) apsched__fork_server_reap(&p->server, &status);
  close(p->wake);
  pthread_cond_destroy(&p->changed);
  pthread_mutex_destroy(&p->lock);
  free(p->queue);
  free(p->w);
  free(p->pfd);
  free(p->ctl_out);
  free(p);
}

static const apsched_executor_vtable pp_vtable = {
    .version = APSCHED_EXECUTOR_VTABLE_VERSION,
    .kind = "processpool",
    .start = pp_start,
    .submit = pp_submit,
    .shutdown = pp_shutdown,
    .owns_thread = pp_owns_thread,
    .destroy = pp_destroy,
    .check_job = pp_check_job,
    .terminate = pp_terminate,
};

static int pp_create(const apsched_process_pool_options *opt, apsched_executor **out,
                     char *errbuf, size_t errlen) {
  if (!out) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "process pool: out is NULL");
  apsched_process_pool_options o = opt ? *opt : (apsched_process_pool_options){0};
  if (o.max_workers < 0 || o.max_workers > MAX_WORKERS)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "max_workers: %d is out of range (allowed: 1..%d, or 0 for %d)",
                         o.max_workers, MAX_WORKERS, DEFAULT_WORKERS);
  if (o.max_tasks_per_child < 0)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "max_tasks_per_child: %d is negative (allowed: 1 or more, or 0 for "
                         "no limit)", o.max_tasks_per_child);
  if (o.kill_grace < 0 || o.kill_grace > APSCHED_DURATION_MAX)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "kill_grace: %lld microseconds is out of range (allowed: 1..%lld, or 0 "
                         "for 2 s)", (long long)o.kill_grace, (long long)APSCHED_DURATION_MAX);
  process_pool *p = calloc(1, sizeof *p);
  if (!p) return apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "process pool: out of memory");
  p->base.vtable = &pp_vtable;
  p->max_workers = o.max_workers ? o.max_workers : DEFAULT_WORKERS;
  p->max_tasks = (unsigned)o.max_tasks_per_child;
  p->grace = o.kill_grace ? o.kill_grace : DEFAULT_GRACE;
  p->allow_threads = o.allow_threads;
  p->server = (apsched__fork_server){.pid = 0, .ctl = -1, .pidfd = -1};
  p->wake = -1;
  p->w = calloc((size_t)p->max_workers, sizeof *p->w);
  p->pfd = calloc((size_t)p->max_workers + 2, sizeof *p->pfd);
  p->ctl_out_cap = 4 * (size_t)p->max_workers + 4;
  p->ctl_out = malloc(p->ctl_out_cap * sizeof *p->ctl_out);
  int rc = APSCHED_ENOMEM;
  if (!p->w || !p->pfd || !p->ctl_out) {
    apsched__fail(rc, errbuf, errlen, "process pool: out of memory");
    goto fail;
  }
  rc = APSCHED_ESYS;
  p->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->wake < 0) {
    apsched__fail(rc, errbuf, errlen, "process pool: eventfd failed: %s", strerror(errno));
    goto fail;
  }
  if (pthread_mutex_init(&p->lock, NULL) != 0) {
    apsched__fail(rc, errbuf, errlen, "process pool: pthread_mutex_init failed");
    goto fail;
  }
  if (pthread_cond_init(&p->changed, NULL) != 0) {
    apsched__fail(rc, errbuf, errlen, "process pool: pthread_cond_init failed");
    pthread_mutex_destroy(&p->lock);
    goto fail;
  }
  /* Last, so that nothing above can fail after a process exists. */
  rc = apsched__fork_server_start(&p->server, p->grace, p->allow_threads, errbuf, errlen);
  if (rc != APSCHED_OK) {
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    goto fail;
  }
  *out = &p->base;
  return APSCHED_OK;
fail:
  if (p->wake >= 0) close(p->wake);
  free(p->w);
  free(p->pfd);
  free(p->ctl_out);
  free(p);
  return rc;
}

int apsched_process_pool_create(const apsched_process_pool_options *opt, apsched_executor **out,
                                char *errbuf, size_t errlen) {
  /* The reason goes to errbuf and to apsched_last_error() alike. */
  char why[400] = "";
  int rc = pp_create(opt, out, why, sizeof why);
  if (rc != APSCHED_OK) {
    apsched__error(rc, "%s", why);
    if (errbuf && errlen > 0) snprintf(errbuf, errlen, "%s", why);
  }
  return rc;
}
