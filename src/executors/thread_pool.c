/* The thread pool executor: a FIFO of runs served by up to max_workers
 * threads, started lazily. submit never blocks on a job: it only takes the
 * pool's own short lock. A watchdog thread (started with the first job that
 * has a max_runtime) cancels runs that overrun: a thread cannot be stopped,
 * so the job sees apsched_run_cancelled() and its outcome is "timed out". */
#include "../internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_WORKERS 10

typedef struct worker {
  pthread_t thread;
  struct thread_pool *pool;
  bool exited; /* under the pool lock: only joining remains */
  apsched_run_ctx *watched; /* the run being executed, if it has a max_runtime */
  bool cancelling;          /* the watchdog is cancelling `watched` right now */
  struct worker *next;
} worker;

typedef struct thread_pool {
  apsched_executor base;
  pthread_mutex_t lock;
  pthread_cond_t work;    /* runs queued or stopping */
  pthread_cond_t drained; /* a worker exited */
  int max_workers;
  int live;               /* workers not yet exited */
  int idle;               /* workers waiting for work */
  int waking;             /* of those, signalled and not yet awake: no second signal for them */
  atomic_int returning;   /* workers back from a run, about to look at the queue */
  bool stopping;
  int waiting_shutdowns;  /* shutdown(wait) calls still waiting: no restart meanwhile */
  apsched_run_ctx **queue;    /* ring buffer */
  size_t head, count, cap;
  worker *workers;        /* every thread started, for joining */
  pthread_cond_t watch;   /* (CLOCK_MONOTONIC) watched runs changed */
  pthread_t watchdog;
  bool watchdog_running; /* false: the thread in `watchdog` (if any) is told to end */
} thread_pool;

/* The pool whose worker this thread is (for owns_thread). */
static _Thread_local thread_pool *current_pool;

/* ---- max_runtime watchdog */

static void *watchdog_main(void *arg) {
  thread_pool *p = arg;
  pthread_mutex_lock(&p->lock);
  /* Ends when told to, or when a newer watchdog replaced this one. */
  while (p->watchdog_running && pthread_equal(p->watchdog, pthread_self())) {
    int64_t now = apsched__mono_now(), next = INT64_MAX;
    worker *due = NULL;
    for (worker *w = p->workers; w; w = w->next) {
      if (!w->watched) continue;
      /* cancelled first: apsched_run_begin clears it before it records the
       * new start, so a time that is not cancelled is never judged by the
       * start of the time before it. */
      bool cancelled = apsched_run_cancelled(w->watched);
      int64_t deadline = apsched__run_deadline(w->watched);
      if (cancelled || deadline == INT64_MAX) {
        /* Its next start (handed over but not begun yet, or the next time of
         * the run) is recorded without telling us. It cannot be earlier than
         * now, so its deadline is no earlier than now + max_runtime: look
         * again then. */
        deadline = now + apsched_run_max_runtime(w->watched);
        if (deadline < next) next = deadline;
      } else if (deadline <= now) {
        due = w;
      } else if (deadline < next) {
        next = deadline;
      }
    }
    if (due) {
      /* Cancel outside the lock (it logs: user code), keeping the run alive. */
      due->cancelling = true;
      apsched_run_ctx *run = due->watched;
      pthread_mutex_unlock(&p->lock);
      apsched_run_cancel(run);
      pthread_mutex_lock(&p->lock);
      due->cancelling = false;
      pthread_cond_broadcast(&p->watch);
      continue;
    }
    if (next == INT64_MAX) {
      pthread_cond_wait(&p->watch, &p->lock);
    } else {
      struct timespec ts = {(time_t)(next / 1000000), (long)(next % 1000000) * 1000};
      pthread_cond_timedwait(&p->watch, &p->lock, &ts);
    }
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

/* Registers a run with a max_runtime for the watchdog (pool lock held).
 * False if the watchdog cannot run: the limit is then not enforced. */
static bool watch_run(thread_pool *p, worker *self, apsched_run_ctx *run) {
  if (!p->watchdog_running) {
    if (pthread_create(&p->watchdog, NULL, watchdog_main, p) != 0) return false;
    p->watchdog_running = true;
  }
  self->watched = run;
  pthread_cond_broadcast(&p->watch);
  return true;
}

static void stop_watchdog(thread_pool *p) {
  pthread_mutex_lock(&p->lock);
  bool running = p->watchdog_running;
  pthread_t thread = p->watchdog;
  p->watchdog_running = false;
  pthread_cond_broadcast(&p->watch);
  pthread_mutex_unlock(&p->lock);
  if (running) pthread_join(thread, NULL);
}

/* ---- workers */

static void *worker_main(void *arg);

/* Starts one more worker (lock held): 0, or why it could not. */
static int start_worker(thread_pool *p) {
  worker *w = malloc(sizeof *w);
  if (!w) return ENOMEM;
  *w = (worker){.pool = p};
  int err = pthread_create(&w->thread, NULL, worker_main, w);
  if (err != 0) {
    free(w);
    return err;
  }
  w->next = p->workers;
  p->workers = w;
  p->live++;
  return 0;
}

/* Finds a worker for the queued runs no awake worker is coming for: wakes
 * an idle one, one at a time (the one woken does the same when it takes a
 * run and more are queued, before it runs its own), or starts a new one
 * while none is idle and the pool has room. A burst of short runs is then
 * served by the workers already awake, instead of waking every idle one to
 * compete for the CPUs (and for this lock) while a few would do; a queued
 * run still never waits for a busy worker while another sleeps, only for
 * the wake-ups before it. Lock held; returns 0 or why a worker could not
 * start. */
static int serve_queued(thread_pool *p) {
  if (p->count == 0 || p->waking > 0) return 0;
  if (p->count <= (size_t)atomic_load(&p->returning)) return 0;
  if (p->idle > 0) {
    p->waking++;
    pthread_cond_signal(&p->work);
    return 0;
  }
  return p->live < p->max_workers ? start_worker(p) : 0;
}

static void *worker_main(void *arg) {
  worker *self = arg;
  thread_pool *p = self->pool;
  current_pool = p;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (p->count == 0 && !p->stopping) {
      p->idle++;
      pthread_cond_wait(&p->work, &p->lock);
      p->idle--;
      if (p->waking > 0) p->waking--; /* (or woken spuriously: the count stays an upper bound) */
    }
    if (p->count == 0) break; /* stopping and nothing left */
    apsched_run_ctx *run = p->queue[p->head];
    p->head = (p->head + 1) % p->cap;
    p->count--;
    serve_queued(p); /* before the run, which may be long (a failed start: we still serve) */
    bool watched = apsched_run_max_runtime(run) > 0 && watch_run(p, self, run);
    pthread_mutex_unlock(&p->lock);
    apsched__run_execute_times(run);
    if (watched) {
      pthread_mutex_lock(&p->lock);
      while (self->cancelling) pthread_cond_wait(&p->watch, &p->lock);
      self->watched = NULL;
      pthread_mutex_unlock(&p->lock);
    }
    apsched_run_complete(run);
    atomic_fetch_add(&p->returning, 1);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_sub(&p->returning, 1);
  }
  p->live--;
  self->exited = true;
  pthread_cond_broadcast(&p->drained);
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static int grow_queue(thread_pool *p) {
  size_t cap = p->cap ? p->cap * 2 : 64;
  apsched_run_ctx **q = malloc(cap * sizeof *q);
  if (!q) return APSCHED_ENOMEM;
  for (size_t i = 0; i < p->count; i++) q[i] = p->queue[(p->head + i) % p->cap];
  free(p->queue);
  p->queue = q;
  p->head = 0;
  p->cap = cap;
  return APSCHED_OK;
}

/* Joins every exited worker thread except the caller's own. */
static void join_workers(thread_pool *p) {
  pthread_mutex_lock(&p->lock);
  worker *w = p->workers, *keep = NULL;
  p->workers = NULL;
  pthread_mutex_unlock(&p->lock);
  while (w) {
    worker *next = w->next;
    if (pthread_equal(w->thread, pthread_self())) {
      w->next = keep;
      keep = w;
    } else {
      pthread_join(w->thread, NULL);
      free(w);
    }
    w = next;
  }
  if (keep) {
    pthread_mutex_lock(&p->lock);
    keep->next = p->workers;
    p->workers = keep;
    pthread_mutex_unlock(&p->lock);
  }
}

static int pool_start(apsched_executor *ex, apsched_scheduler *s, const char *alias) {
  (void)s;
  thread_pool *p = (thread_pool *)ex;
  /* After a shutdown without wait, workers still finishing a job simply
   * serve again; the ones that already exited are joined here. Nothing here
   * waits for a job, since the caller may hold the scheduler's lock. */
  pthread_mutex_lock(&p->lock);
  if (p->waiting_shutdowns > 0) {
    /* Serving again would keep its workers alive: it would never return. */
    pthread_mutex_unlock(&p->lock);
    return apsched__error(APSCHED_ESTATE,
                          "thread pool '%s': a shutdown is still waiting for its runs to finish",
                          alias);
  }
  p->stopping = false;
  worker *done = NULL, **link = &p->workers;
  while (*link) {
    worker *w = *link;
    if (w->exited && !pthread_equal(w->thread, pthread_self())) {
      *link = w->next;
      w->next = done;
      done = w;
    } else {
      link = &w->next;
    }
  }
  pthread_mutex_unlock(&p->lock);
  while (done) {
    worker *next = done->next;
    pthread_join(done->thread, NULL);
    free(done);
    done = next;
  }
  return APSCHED_OK;
}

static int pool_submit(apsched_executor *ex, apsched_run_ctx *run) {
  thread_pool *p = (thread_pool *)ex;
  const char *alias = apsched_run_executor(run);
  pthread_mutex_lock(&p->lock);
  int rc = APSCHED_OK;
  if (p->stopping) {
    rc = apsched__error(APSCHED_ESTATE, "thread pool '%s': shut down, not accepting runs", alias);
  } else if (p->count == p->cap && grow_queue(p) != APSCHED_OK) {
    rc = apsched__error(APSCHED_ENOMEM, "thread pool '%s': out of memory growing its queue of "
                                        "%zu runs", alias, p->count);
  }
  if (rc == APSCHED_OK) {
    p->queue[(p->head + p->count) % p->cap] = run;
    p->count++;
    int err = serve_queued(p);
    if (err != 0 && p->live == 0) { /* nobody would ever run it */
      p->count--;
      rc = apsched__error(err == ENOMEM ? APSCHED_ENOMEM : APSCHED_ESYS,
                          "thread pool '%s': cannot start a worker thread: %s", alias,
                          strerror(err));
    }
  }
  pthread_mutex_unlock(&p->lock);
  return rc;
}

static void pool_shutdown(apsched_executor *ex, bool wait) {
  thread_pool *p = (thread_pool *)ex;
  bool waits = wait && current_pool != p; /* a worker cannot wait for itself */
  pthread_mutex_lock(&p->lock);
  p->stopping = true;
  if (waits) p->waiting_shutdowns++; /* with stopping, in one step: start sees both or neither */
  apsched_run_ctx **dropped = NULL;
  size_t ndropped = 0;
  if (!wait && p->count > 0) {
    /* Queued runs never start; they are reported, not lost silently. */
    dropped = malloc(p->count * sizeof *dropped);
    if (dropped) {
      for (; p->count > 0; p->count--, p->head = (p->head + 1) % p->cap)
        dropped[ndropped++] = p->queue[p->head];
    }
  }
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->lock);
  for (size_t i = 0; i < ndropped; i++) apsched_run_discard(dropped[i]);
  free(dropped);
  if (waits) {
    pthread_mutex_lock(&p->lock);
    while (p->live > 0) pthread_cond_wait(&p->drained, &p->lock);
    pthread_mutex_unlock(&p->lock);
    join_workers(p);
    /* No run is left to watch. Joined too, so that after a waiting shutdown
     * the pool has no thread left (a process pool forks only from a
     * single-threaded process); the next run with a max_runtime restarts it. */
    stop_watchdog(p);
    pthread_mutex_lock(&p->lock);
    p->waiting_shutdowns--;
    pthread_mutex_unlock(&p->lock);
  }
}

static bool pool_owns_thread(apsched_executor *ex) { return current_pool == (thread_pool *)ex; }

static void pool_destroy(apsched_executor *ex) {
  thread_pool *p = (thread_pool *)ex;
  pool_shutdown(ex, true);
  join_workers(p);
  stop_watchdog(p);
  pthread_cond_destroy(&p->watch);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->drained);
  free(p->queue);
  free(p);
}

static const apsched_executor_vtable pool_vtable = {
    .version = APSCHED_EXECUTOR_VTABLE_VERSION,
    .kind = "threadpool",
    .start = pool_start,
    .submit = pool_submit,
    .shutdown = pool_shutdown,
    .owns_thread = pool_owns_thread,
    .destroy = pool_destroy,
};

int apsched_thread_pool_create(const apsched_thread_pool_options *opt, apsched_executor **out) {
  if (!out) return apsched__error(APSCHED_EINVAL, "thread pool: out is NULL");
  if (opt && opt->max_workers < 0)
    return apsched__error(APSCHED_EINVAL,
                          "max_workers: %d is negative (allowed: 1 or more, or 0 for %d)",
                          opt->max_workers, DEFAULT_WORKERS);
  thread_pool *p = calloc(1, sizeof *p);
  if (!p) return apsched__error(APSCHED_ENOMEM, "thread pool: out of memory");
  p->base.vtable = &pool_vtable;
  p->max_workers = opt && opt->max_workers ? opt->max_workers : DEFAULT_WORKERS;
  atomic_init(&p->returning, 0);
  const char *what = "pthread_mutex_init";
  int err = pthread_mutex_init(&p->lock, NULL);
  if (err != 0) goto fail;
  what = "pthread_cond_init";
  if ((err = pthread_cond_init(&p->work, NULL)) != 0) goto fail_lock;
  if ((err = pthread_cond_init(&p->drained, NULL)) != 0) goto fail_work;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  err = pthread_cond_init(&p->watch, &ca);
  pthread_condattr_destroy(&ca);
  if (err != 0) goto fail_drained;
  *out = &p->base;
  return APSCHED_OK;
fail_drained:
  pthread_cond_destroy(&p->drained);
fail_work:
  pthread_cond_destroy(&p->work);
fail_lock:
  pthread_mutex_destroy(&p->lock);
fail:
  free(p);
  return apsched__error(APSCHED_ESYS, "thread pool: %s failed: %s", what, strerror(err));
}
