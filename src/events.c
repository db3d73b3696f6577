/* Listeners, event dispatch, log messages, and the "notices" the scheduler
 * collects under its lock and delivers after releasing it (user code never
 * runs with the lock held). */
#include "scheduler_internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which scheduler's user code (job, listener, log callback) this thread is
 * running, so blocking calls can refuse to wait for themselves. */
static _Thread_local apsched_scheduler *current_user_code;

bool apsched__in_user_code(apsched_scheduler *s) { return current_user_code == s; }

apsched_scheduler *apsched__enter_user_code(apsched_scheduler *s) {
  apsched_scheduler *saved = current_user_code;
  current_user_code = s;
  return saved;
}

void apsched__leave_user_code(apsched_scheduler *saved) { current_user_code = saved; }

/* Which scheduler's apsched_process this thread is inside: host listeners
 * get its events at once instead of through the queue's round trip. */
static _Thread_local apsched_scheduler *current_host;

apsched_scheduler *apsched__enter_host(apsched_scheduler *s) {
  apsched_scheduler *saved = current_host;
  current_host = s;
  return saved;
}

void apsched__leave_host(apsched_scheduler *saved) { current_host = saved; }

const char *apsched_event_name(int code) {
  switch (code) {
  case APSCHED_EVENT_SCHEDULER_STARTED: return "EVENT_SCHEDULER_STARTED";
  case APSCHED_EVENT_SCHEDULER_SHUTDOWN: return "EVENT_SCHEDULER_SHUTDOWN";
  case APSCHED_EVENT_SCHEDULER_PAUSED: return "EVENT_SCHEDULER_PAUSED";
  case APSCHED_EVENT_SCHEDULER_RESUMED: return "EVENT_SCHEDULER_RESUMED";
  case APSCHED_EVENT_EXECUTOR_ADDED: return "EVENT_EXECUTOR_ADDED";
  case APSCHED_EVENT_EXECUTOR_REMOVED: return "EVENT_EXECUTOR_REMOVED";
  case APSCHED_EVENT_JOBSTORE_ADDED: return "EVENT_JOBSTORE_ADDED";
  case APSCHED_EVENT_JOBSTORE_REMOVED: return "EVENT_JOBSTORE_REMOVED";
  case APSCHED_EVENT_ALL_JOBS_REMOVED: return "EVENT_ALL_JOBS_REMOVED";
  case APSCHED_EVENT_JOB_ADDED: return "EVENT_JOB_ADDED";
  case APSCHED_EVENT_JOB_REMOVED: return "EVENT_JOB_REMOVED";
  case APSCHED_EVENT_JOB_MODIFIED: return "EVENT_JOB_MODIFIED";
  case APSCHED_EVENT_JOB_EXECUTED: return "EVENT_JOB_EXECUTED";
  case APSCHED_EVENT_JOB_ERROR: return "EVENT_JOB_ERROR";
  case APSCHED_EVENT_JOB_MISSED: return "EVENT_JOB_MISSED";
  case APSCHED_EVENT_JOB_SUBMITTED: return "EVENT_JOB_SUBMITTED";
  case APSCHED_EVENT_JOB_MAX_INSTANCES: return "EVENT_JOB_MAX_INSTANCES";
  case APSCHED_EVENT_CLOCK_STEP: return "EVENT_CLOCK_STEP";
  case APSCHED_EVENT_JOBSTORE_FAILED: return "EVENT_JOBSTORE_FAILED";
  case APSCHED_EVENT_JOBSTORE_RECOVERED: return "EVENT_JOBSTORE_RECOVERED";
  case APSCHED_EVENT_JOB_RECOVERED: return "EVENT_JOB_RECOVERED";
  case APSCHED_EVENT_JOB_BUFFERED: return "EVENT_JOB_BUFFERED";
  case APSCHED_EVENT_JOB_PAUSED: return "EVENT_JOB_PAUSED";
  default: return "EVENT_UNKNOWN";
  }
}

/* ---- listeners */

static void recompute_mask(apsched_scheduler *s) {
  int mask = 0;
  for (listener *l = s->listeners; l; l = l->next)
    if (!l->removed) mask |= l->mask;
  atomic_store_explicit(&s->listener_mask, mask, memory_order_relaxed);
}

static int add_listener(apsched_scheduler *s, apsched_listener_fn fn, int mask, void *user_data,
                        int *id_out, bool host, const char *what) {
  if (!s || !fn) return apsched__error(APSCHED_EINVAL, "%s: %s is NULL", what, !s ? "scheduler" : "fn");
  if (mask == 0 || (mask & ~APSCHED_EVENT_EVERYTHING))
    return apsched__error(APSCHED_EINVAL,
                          "%s: mask 0x%x is %s", what, (unsigned)mask,
                          mask == 0 ? "empty" : "not made of APSCHED_EVENT_* bits");
  listener *l = apsched__alloc(s, sizeof *l);
  if (!l) return apsched__error(APSCHED_ENOMEM, "%s: out of memory", what);
  *l = (listener){.fn = fn, .mask = mask, .user_data = user_data, .host = host};
  apsched__lock(s);
  l->id = ++s->next_listener_id;
  /* Append, so listeners are called in the order they were added. */
  listener **tail = &s->listeners;
  while (*tail) tail = &(*tail)->next;
  *tail = l;
  recompute_mask(s);
  apsched__unlock(s);
  if (id_out) *id_out = l->id;
  return APSCHED_OK;
}

int apsched_add_listener(apsched_scheduler *s, apsched_listener_fn fn, int mask, void *user_data,
                         int *id_out) {
  return add_listener(s, fn, mask, user_data, id_out, false, "add_listener");
}

int apsched_add_host_listener(apsched_scheduler *s, apsched_listener_fn fn, int mask,
                              void *user_data, int *id_out) {
  return add_listener(s, fn, mask, user_data, id_out, true, "add_host_listener");
}

/* One call of a listener in progress, on the stack of the dispatching thread
 * and in the listener's list of calls (scheduler lock). */
typedef struct listener_call {
  pthread_t thread;
  struct listener_call *next;
} listener_call;

/* How many of l's calls in progress run on thread t. */
static int calls_on(const listener *l, pthread_t t) {
  int n = 0;
  for (const listener_call *c = l->calls; c; c = c->next) n += pthread_equal(c->thread, t) != 0;
  return n;
}

/* True if thread t is blocked in remove_listener waiting, directly or through
 * other waiting threads, for a listener call on thread self. */
static bool waits_for(apsched_scheduler *s, pthread_t t, pthread_t self, int depth) {
  if (depth == 0) return false;
  for (const listener *y = s->listeners; y; y = y->next) {
    if (!y->waiter || !pthread_equal(y->waiter_thread, t)) continue;
    for (const listener_call *c = y->calls; c; c = c->next) {
      if (pthread_equal(c->thread, t)) continue; /* t does not wait for its own calls */
      if (pthread_equal(c->thread, self) || waits_for(s, c->thread, self, depth - 1)) return true;
    }
  }
  return false;
}

/* Waiting for l's calls on other threads never ends if one of those threads
 * waits (say, removing the listener this thread is running) for a call on
 * this thread. Every wait is checked when it starts, so waits never form a
 * cycle and the walk ends; depth bounds it all the same. */
static bool wait_would_deadlock(apsched_scheduler *s, const listener *l, pthread_t self) {
  int depth = 0;
  for (const listener *y = s->listeners; y; y = y->next) depth++;
  for (const listener_call *c = l->calls; c; c = c->next)
    if (!pthread_equal(c->thread, self) && waits_for(s, c->thread, self, depth)) return true;
  return false;
}

int apsched_remove_listener(apsched_scheduler *s, int id) {
  if (!s) return apsched__error(APSCHED_EINVAL, "remove_listener: scheduler is NULL");
  pthread_t self = pthread_self();
  apsched__lock(s);
  listener **pp = &s->listeners;
  while (*pp && ((*pp)->id != id || (*pp)->removed)) pp = &(*pp)->next;
  listener *l = *pp;
  if (!l) {
    apsched__unlock(s);
    return apsched__error(APSCHED_ENOENT, "remove_listener: no listener %d", id);
  }
  if (wait_would_deadlock(s, l, self)) {
    apsched__unlock(s);
    return apsched__error(APSCHED_EDEADLK,
                          "remove_listener: listener %d runs on a thread that is waiting for "
                          "this one; it was not removed",
                          id);
  }
  l->removed = true;
  recompute_mask(s);
  /* Wait for the calls on other threads (no new call starts). Calls on this
   * thread (a listener removing itself, or removal from a dispatch nested in
   * one of its calls) cannot end while it waits: the last of them frees it. */
  int own = calls_on(l, self);
  if (l->active > own) {
    l->waiter = true;
    l->waiter_thread = self;
    while (l->active > own) pthread_cond_wait(&s->changed, &s->lock);
    l->waiter = false;
  }
  bool free_now = l->active == 0;
  if (free_now) {
    for (pp = &s->listeners; *pp != l; pp = &(*pp)->next) {
    }
    *pp = l->next;
  }
  apsched__unlock(s);
  if (free_now) apsched__dealloc(s, l);
  return APSCHED_OK;
}

/* Which listeners a dispatch calls. */
typedef enum listener_set { ALL_LISTENERS, DIRECT_LISTENERS, HOST_LISTENERS } listener_set;

/* Calls the listeners of set that take ev, up to listener id last. Lock
 * held on entry and exit (dropped around each call). */
static void call_listeners(apsched_scheduler *s, const apsched_event *ev, listener_set set,
                           int last) {
  listener *l = s->listeners;
  while (l) {
    if (l->removed || !(l->mask & ev->code) || l->id > last ||
        (set == DIRECT_LISTENERS && l->host) || (set == HOST_LISTENERS && !l->host)) {
      l = l->next;
      continue;
    }
    listener_call call = {.thread = pthread_self(), .next = l->calls};
    l->calls = &call;
    l->active++;
    s->listener_calls++;
    apsched__unlock(s);
    apsched_scheduler *saved = apsched__enter_user_code(s);
    l->fn(ev, l->user_data);
    apsched__leave_user_code(saved);
    apsched__lock(s);
    listener_call **cp = &l->calls;
    while (*cp != &call) cp = &(*cp)->next;
    *cp = call.next;
    l->active--;
    s->listener_calls--;
    listener *next = l->next;
    if (l->removed && l->active == 0 && !l->waiter) {
      listener **pp = &s->listeners;
      while (*pp != l) pp = &(*pp)->next;
      *pp = l->next;
      apsched__dealloc(s, l);
    }
    pthread_cond_broadcast(&s->changed);
    l = next;
  }
}

/* True if a host listener takes code and the scheduler is hosted (before
 * its first apsched_start_hosted, and in the other modes, host listeners
 * are called like the others). Lock held. */
static bool host_queue_wanted(apsched_scheduler *s, int code) {
  if (s->mode != MODE_HOSTED) return false;
  for (const listener *l = s->listeners; l; l = l->next)
    if (l->host && !l->removed && (l->mask & code)) return true;
  return false;
}

static size_t text_size(const char *text) { return text ? strlen(text) + 1 : 0; }

/* Copies text to *at (advancing it); NULL stays NULL. */
static const char *copy_text(const char *text, char **at) {
  if (!text) return NULL;
  size_t n = strlen(text) + 1;
  char *out = memcpy(*at, text, n);
  *at += n;
  return out;
}

/* A copy of ev that outlives the call raising it, in one allocation. */
static queued_event *copy_event(apsched_scheduler *s, const apsched_event *ev, int last) {
  size_t times = ev->scheduled_run_times ? ev->run_time_count : 0;
  size_t size = sizeof(queued_event) + times * sizeof(apsched_time_t) + text_size(ev->alias) +
                text_size(ev->job_id) + text_size(ev->jobstore) + text_size(ev->error);
  queued_event *q = apsched__alloc(s, size);
  if (!q) return NULL;
  q->next = NULL;
  q->last_listener = last;
  q->ev = *ev;
  if (times) {
    memcpy(q->run_times, ev->scheduled_run_times, times * sizeof(apsched_time_t));
    q->ev.scheduled_run_times = q->run_times;
  }
  char *at = (char *)(q->run_times + times);
  q->ev.alias = copy_text(ev->alias, &at);
  q->ev.job_id = copy_text(ev->job_id, &at);
  q->ev.jobstore = copy_text(ev->jobstore, &at);
  q->ev.error = copy_text(ev->error, &at);
  return q;
}

/* Queues ev for the host listeners; wake: makes the descriptor readable, so
 * the host calls apsched_process, which delivers it. */
static void queue_for_host(apsched_scheduler *s, const apsched_event *ev, int last, bool wake) {
  queued_event *q = copy_event(s, ev, last);
  if (!q) {
    apsched__log(s, APSCHED_LOG_ERROR, "Out of memory: %s is not delivered to host listeners",
                 apsched_event_name(ev->code));
    return;
  }
  apsched__lock(s);
  if (!s->queued) s->queued_tail = &s->queued;
  *s->queued_tail = q;
  s->queued_tail = &q->next;
  if (wake) apsched__wake(s, &s->waker);
  apsched__unlock(s);
}

bool apsched__events_queued(apsched_scheduler *s) { return s->queued != NULL; }

void apsched__deliver_queued(apsched_scheduler *s) {
  apsched__lock(s);
  while (s->queued) {
    /* One at a time: a listener may raise events (queued behind this one)
     * or deliver the queue itself (from a nested apsched_process). */
    queued_event *q = s->queued;
    s->queued = q->next;
    call_listeners(s, &q->ev, HOST_LISTENERS, q->last_listener);
    apsched__dealloc(s, q);
  }
  apsched__unlock(s);
}

void apsched__dispatch(apsched_scheduler *s, const apsched_event *ev) {
  if (!apsched__wants(s, ev->code)) return;
  apsched__lock(s);
  bool queue = host_queue_wanted(s, ev->code);
  int last = s->next_listener_id;
  call_listeners(s, ev, queue ? DIRECT_LISTENERS : ALL_LISTENERS, INT_MAX);
  apsched__unlock(s);
  if (!queue) return;
  /* Inside apsched_process: delivered now, after what came before it (no
   * wake-up: that would only cost the host a pass for nothing). */
  bool here = current_host == s;
  queue_for_host(s, ev, last, !here);
  if (here) apsched__deliver_queued(s);
}

/* ---- logging */

static char *vformat(apsched_scheduler *s, const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0) return NULL;
  char *msg = apsched__alloc(s, (size_t)n + 1);
  if (msg) vsnprintf(msg, (size_t)n + 1, fmt, ap);
  return msg;
}

static void emit_log(apsched_scheduler *s, apsched_log_level lvl, const char *msg) {
  apsched_scheduler *saved = apsched__enter_user_code(s);
  s->log(lvl, msg, s->log_user_data);
  apsched__leave_user_code(saved);
}

void(apsched__log)(apsched_scheduler *s, apsched_log_level lvl, const char *fmt, ...) {
  if (!apsched__log_enabled(s, lvl)) return;
  va_list ap;
  va_start(ap, fmt);
  char *msg = vformat(s, fmt, ap);
  va_end(ap);
  if (msg) emit_log(s, lvl, msg);
  apsched__dealloc(s, msg);
}

/* ---- notices */

void apsched__notices_init(notice_list *l) {
  l->items = l->inline_items;
  l->count = 0;
  l->cap = sizeof l->inline_items / sizeof l->inline_items[0];
  l->block = NULL;
}

/* A grown array goes back to the scheduler for the next list that grows:
 * a loop pass queues a notice per claimed run, and growing an array from
 * the inline items every pass cost ~150 instructions per run (copies,
 * frees). One is kept, the newest, if no larger than a pass needs (a
 * batch of 10^5 adds with listeners is not kept). Any thread, any lock
 * state. */
#define NOTICES_KEPT_MAX 512

static void notice_block_keep(apsched_scheduler *s, notice_block *b) {
  if (b && b->cap > NOTICES_KEPT_MAX) apsched__dealloc(s, b);
  else if (b) apsched__dealloc(s, atomic_exchange(&s->spare_notices, b));
}

bool apsched__notice_room(apsched_scheduler *s, notice_list *l) {
  if (l->count < l->cap) return true;
  size_t cap = l->cap * 2;
  notice_block *b = atomic_exchange(&s->spare_notices, NULL);
  if (b && b->cap < cap) {
    apsched__dealloc(s, b);
    b = NULL;
  }
  if (!b) {
    b = apsched__alloc(s, sizeof *b + cap * sizeof b->items[0]);
    if (!b) return false;
    b->cap = cap;
  }
  memcpy(b->items, l->items, l->count * sizeof *l->items);
  notice_block_keep(s, l->block);
  l->block = b;
  l->items = b->items;
  l->cap = b->cap;
  return true;
}

notice *apsched__notice_add(apsched_scheduler *s, notice_list *l, int code) {
  if (!apsched__notice_room(s, l)) return NULL;
  notice *n = &l->items[l->count++];
  memset(n, 0, sizeof *n);
  n->ev.code = code;
  n->ev.scheduled_run_time = APSCHED_TIME_NONE;
  return n;
}

/* Attaches a formatted log message to n (if the level is enabled). */
static void notice_vlog(apsched_scheduler *s, notice *n, apsched_log_level lvl, const char *fmt,
                        va_list ap) {
  if (!n || !apsched__log_enabled(s, lvl)) return;
  n->log_msg = vformat(s, fmt, ap);
  n->log_level = lvl;
}

void apsched__notice_log(apsched_scheduler *s, notice *n, apsched_log_level lvl, const char *fmt,
                         ...) {
  va_list ap;
  va_start(ap, fmt);
  notice_vlog(s, n, lvl, fmt, ap);
  va_end(ap);
}

void(apsched__log_later)(apsched_scheduler *s, notice_list *l, apsched_log_level lvl,
                         const char *fmt, ...) {
  if (!apsched__log_enabled(s, lvl)) return; /* no notice at all: the hot path stays cheap */
  va_list ap;
  va_start(ap, fmt);
  notice_vlog(s, apsched__notice_add(s, l, 0), lvl, fmt, ap);
  va_end(ap);
}

notice *apsched__notice_if_wanted(apsched_scheduler *s, notice_list *l, int code) {
  return apsched__wants(s, code) ? apsched__notice_add(s, l, code) : NULL;
}

void(apsched__job_event)(apsched_scheduler *s, notice_list *nl, int code, const char *id,
                         const char *jobstore) {
  apsched__notice_own(s, apsched__notice_if_wanted(s, nl, code), id, jobstore);
}

void apsched__notice_own(apsched_scheduler *s, notice *n, const char *job_id,
                         const char *jobstore_or_alias) {
  if (!n) return;
  /* Aliases are interned for the scheduler's lifetime; only ids need a copy. */
  if (n->ev.code & (APSCHED_EVENT_EXECUTOR_ADDED | APSCHED_EVENT_EXECUTOR_REMOVED |
                    APSCHED_EVENT_JOBSTORE_ADDED | APSCHED_EVENT_JOBSTORE_REMOVED |
                    APSCHED_EVENT_ALL_JOBS_REMOVED | APSCHED_EVENT_JOBSTORE_FAILED |
                    APSCHED_EVENT_JOBSTORE_RECOVERED))
    n->ev.alias = jobstore_or_alias;
  else
    n->ev.jobstore = jobstore_or_alias;
  if (job_id) {
    n->owned = apsched__sdup(s, job_id);
    n->ev.job_id = n->owned;
  }
}

void apsched__notice_deliver(apsched_scheduler *s, notice *n) {
  if (n->log_msg) emit_log(s, n->log_level, n->log_msg);
  if (n->ev.code) apsched__dispatch(s, &n->ev);
  apsched__dealloc(s, n->owned);
  apsched__dealloc(s, n->log_msg);
}

void apsched__notices_reset(apsched_scheduler *s, notice_list *l) {
  notice_block_keep(s, l->block);
  apsched__notices_init(l);
}

void apsched__notices_truncate(apsched_scheduler *s, notice_list *l, size_t count) {
  while (l->count > count) {
    notice *n = &l->items[--l->count];
    apsched__dealloc(s, n->owned);
    apsched__dealloc(s, n->log_msg);
  }
}

void apsched__notices_drop(apsched_scheduler *s, notice_list *l) {
  apsched__notices_truncate(s, l, 0);
  apsched__notices_reset(s, l);
}

void apsched__notices_flush(apsched_scheduler *s, notice_list *l) {
  for (size_t i = 0; i < l->count; i++) apsched__notice_deliver(s, &l->items[i]);
  apsched__notices_reset(s, l);
}

/* ---- store reports */

void apsched_store_report(apsched_scheduler *s, const char *jobstore, const char *job_id,
                          const char *why) {
  if (!s || !jobstore || !job_id || !why) return;
  const char *alias = apsched__intern(s, jobstore);
  size_t idlen = strlen(job_id) + 1, whylen = strlen(why) + 1;
  store_report *r = apsched__alloc(s, sizeof *r + idlen + whylen);
  if (!alias || !r) {
    apsched__dealloc(s, r);
    return; /* best effort, like every event */
  }
  r->next = NULL;
  r->jobstore = alias;
  memcpy(r->job_id, job_id, idlen);
  r->why = r->job_id + idlen;
  memcpy(r->why, why, whylen);
  /* A store calls this from inside its own call: only the leaf lock. */
  pthread_mutex_lock(&s->aux_lock);
  if (!s->reports) s->reports_tail = &s->reports;
  *s->reports_tail = r;
  s->reports_tail = &r->next;
  pthread_mutex_unlock(&s->aux_lock);
}

static store_report *take_reports(apsched_scheduler *s) {
  pthread_mutex_lock(&s->aux_lock);
  store_report *list = s->reports;
  s->reports = NULL;
  pthread_mutex_unlock(&s->aux_lock);
  return list;
}

void apsched__deliver_reports(apsched_scheduler *s) {
  for (store_report *r = take_reports(s), *next; r; r = next) {
    next = r->next;
    apsched__log(s, APSCHED_LOG_ERROR, "Job \"%s\" in job store \"%s\": %s", r->job_id, r->jobstore,
                 r->why);
    apsched_event ev = {.code = APSCHED_EVENT_JOB_ERROR, .job_id = r->job_id,
                        .jobstore = r->jobstore, .scheduled_run_time = APSCHED_TIME_NONE,
                        .retval = -1, .error = r->why};
    apsched__dispatch(s, &ev);
    apsched__dealloc(s, r);
  }
}

void apsched__drop_reports(apsched_scheduler *s) {
  for (store_report *r = take_reports(s), *next; r; r = next) {
    next = r->next;
    apsched__dealloc(s, r);
  }
}
