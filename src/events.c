/* Listeners, event dispatch, log messages, and the "notices" the scheduler
 * collects under its lock and delivers after releasing it (user code never
 * runs with the lock held). */
#include "scheduler_internal.h"

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

int apsched_add_listener(apsched_scheduler *s, apsched_listener_fn fn, int mask, void *user_data,
                         int *id_out) {
  if (!s || !fn || mask == 0 || (mask & ~APSCHED_EVENT_EVERYTHING)) return APSCHED_EINVAL;
  listener *l = apsched__alloc(s, sizeof *l);
  if (!l) return APSCHED_ENOMEM;
  *l = (listener){.fn = fn, .mask = mask, .user_data = user_data};
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

int apsched_remove_listener(apsched_scheduler *s, int id) {
  if (!s) return APSCHED_EINVAL;
  apsched__lock(s);
  listener **pp = &s->listeners;
  while (*pp && ((*pp)->id != id || (*pp)->removed)) pp = &(*pp)->next;
  listener *l = *pp;
  if (!l) {
    apsched__unlock(s);
    return APSCHED_ENOENT;
  }
  l->removed = true;
  recompute_mask(s);
  /* Wait for calls on other threads. A listener removing itself (or one
   * removed from inside another listener or a job) cannot wait for calls
   * that may include its own: then the last dispatcher to leave frees it. */
  bool free_now = l->active == 0;
  if (!free_now && !apsched__in_user_code(s)) {
    l->waiter = true;
    while (l->active > 0) pthread_cond_wait(&s->changed, &s->lock);
    free_now = true;
  }
  if (free_now) {
    for (pp = &s->listeners; *pp != l; pp = &(*pp)->next) {
    }
    *pp = l->next;
  }
  apsched__unlock(s);
  if (free_now) apsched__dealloc(s, l);
  return APSCHED_OK;
}

bool apsched__wants(apsched_scheduler *s, int code) {
  return (atomic_load_explicit(&s->listener_mask, memory_order_relaxed) & code) != 0;
}

void apsched__dispatch(apsched_scheduler *s, const apsched_event *ev) {
  if (!apsched__wants(s, ev->code)) return;
  apsched__lock(s);
  listener *l = s->listeners;
  while (l) {
    if (l->removed || !(l->mask & ev->code)) {
      l = l->next;
      continue;
    }
    l->active++;
    s->listener_calls++;
    apsched__unlock(s);
    apsched_scheduler *saved = apsched__enter_user_code(s);
    l->fn(ev, l->user_data);
    apsched__leave_user_code(saved);
    apsched__lock(s);
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
  apsched__unlock(s);
}

/* ---- logging */

bool apsched__log_enabled(apsched_scheduler *s, apsched_log_level lvl) {
  return s->log && lvl >= s->log_level;
}

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

void apsched__log(apsched_scheduler *s, apsched_log_level lvl, const char *fmt, ...) {
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
}

notice *apsched__notice_add(apsched_scheduler *s, notice_list *l, int code) {
  if (l->count == l->cap) {
    size_t cap = l->cap * 2;
    notice *items = apsched__alloc(s, cap * sizeof *items);
    if (!items) return NULL;
    memcpy(items, l->items, l->count * sizeof *items);
    if (l->items != l->inline_items) apsched__dealloc(s, l->items);
    l->items = items;
    l->cap = cap;
  }
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

void apsched__log_later(apsched_scheduler *s, notice_list *l, apsched_log_level lvl,
                        const char *fmt, ...) {
  if (!apsched__log_enabled(s, lvl)) return; /* no notice at all: the hot path stays cheap */
  va_list ap;
  va_start(ap, fmt);
  notice_vlog(s, apsched__notice_add(s, l, 0), lvl, fmt, ap);
  va_end(ap);
}

void apsched__notice_own(apsched_scheduler *s, notice *n, const char *job_id,
                         const char *jobstore_or_alias) {
  if (!n) return;
  /* Aliases are interned for the scheduler's lifetime; only ids need a copy. */
  if (n->ev.code & (APSCHED_EVENT_EXECUTOR_ADDED | APSCHED_EVENT_EXECUTOR_REMOVED |
                    APSCHED_EVENT_JOBSTORE_ADDED | APSCHED_EVENT_JOBSTORE_REMOVED |
                    APSCHED_EVENT_ALL_JOBS_REMOVED))
    n->ev.alias = jobstore_or_alias;
  else
    n->ev.jobstore = jobstore_or_alias;
  if (job_id) {
    n->owned = apsched__sdup(s, job_id);
    n->ev.job_id = n->owned;
  }
}

void apsched__notices_flush(apsched_scheduler *s, notice_list *l) {
  for (size_t i = 0; i < l->count; i++) {
    notice *n = &l->items[i];
    if (n->log_msg) emit_log(s, n->log_level, n->log_msg);
    if (n->ev.code) apsched__dispatch(s, &n->ev);
    if (n->run) {
      executor_entry *e = n->exec;
      int rc = e->executor->vtable->submit(e->executor, n->run);
      if (rc != APSCHED_OK) {
        apsched__log(s, APSCHED_LOG_ERROR, "Error submitting job \"%s\" to executor \"%s\": %s",
                     apsched_run_job_name(n->run), e->alias, apsched_strerror(rc));
        apsched_run_set_error(n->run, "executor \"%s\" refused the run: %s", e->alias,
                              apsched_strerror(rc));
        apsched__run_fail(n->run);
      }
      apsched__lock(s);
      e->submitting--;
      pthread_cond_broadcast(&s->changed);
      apsched__unlock(s);
    }
    apsched__dealloc(s, n->owned);
    apsched__dealloc(s, n->log_msg);
  }
  if (l->items != l->inline_items) apsched__dealloc(s, l->items);
  apsched__notices_init(l);
}
