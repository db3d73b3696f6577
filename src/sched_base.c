/* The bottom layer of the scheduler: allocation, interned aliases, the
 * clock, waking loops, and finding stores and executors by alias. */
#include "scheduler_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>

void *apsched__alloc(apsched_scheduler *s, size_t n) { return s->alloc.malloc(n, s->alloc.user_data); }

void apsched__dealloc(apsched_scheduler *s, void *p) {
  if (p) s->alloc.free(p, s->alloc.user_data);
}

char *apsched__sdup(apsched_scheduler *s, const char *text) {
  if (!text) return NULL;
  size_t n = strlen(text) + 1;
  char *d = apsched__alloc(s, n);
  if (d) memcpy(d, text, n);
  return d;
}

const char *apsched__intern(apsched_scheduler *s, const char *text) {
  /* Stores intern from their own calls, with or without the scheduler lock. */
  pthread_mutex_lock(&s->aux_lock);
  const char *found = NULL;
  for (interned *i = s->aliases; i && !found; i = i->next)
    if (strcmp(i->text, text) == 0) found = i->text;
  if (!found) {
    size_t n = strlen(text) + 1;
    interned *i = apsched__alloc(s, sizeof *i + n);
    if (i) {
      memcpy(i->text, text, n);
      i->next = s->aliases;
      s->aliases = i;
      found = i->text;
    }
  }
  pthread_mutex_unlock(&s->aux_lock);
  return found;
}

const char *apsched_intern_alias(apsched_scheduler *s, const char *text) {
  if (!s || !text) {
    apsched__error(APSCHED_EINVAL, "intern_alias: %s is NULL", !s ? "scheduler" : "text");
    return NULL;
  }
  return apsched__intern(s, text);
}

int64_t apsched__mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * APSCHED_SEC + ts.tv_nsec / 1000;
}

apsched_time_t apsched__wall(apsched_scheduler *s) {
  return s->clock.wall ? s->clock.wall(s->clock.user_data) : apsched_now();
}

/* ------------------------------------------------------------------ wake */

int apsched__waker_init(loop_waker *w) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int err = pthread_cond_init(&w->cond, &ca);
  pthread_condattr_destroy(&ca);
  w->wakeup_pending = false;
  w->planned_wake = APSCHED_TIME_NONE;
  return err ? APSCHED_ESYS : APSCHED_OK;
}

void apsched__waker_destroy(loop_waker *w) { pthread_cond_destroy(&w->cond); }

/* Hosted mode's descriptor is a timerfd armed in the past (readable at
 * once) when something changed. */
static void poke_host(apsched_scheduler *s) {
  if (s->event_fd < 0) return;
  struct itimerspec it = {{0, 0}, {0, 1}};
  timerfd_settime(s->event_fd, TFD_TIMER_ABSTIME, &it, NULL);
}

void apsched__wake(apsched_scheduler *s, loop_waker *w) {
  w->wakeup_pending = true;
  pthread_cond_signal(&w->cond);
  if (w == &s->waker) poke_host(s);
}

void apsched__wake_all(apsched_scheduler *s) {
  apsched__wake(s, &s->waker);
  for (store_entry *e = s->stores; e; e = e->next)
    if (e->blocking) apsched__wake(s, &e->waker);
}

void apsched__wake_if_earlier(apsched_scheduler *s, store_entry *se, apsched_time_t t) {
  if (s->state != APSCHED_STATE_RUNNING || t == APSCHED_TIME_NONE) return;
  loop_waker *w = apsched__store_waker(s, se);
  if (w->planned_wake != APSCHED_TIME_NONE && t >= w->planned_wake) return;
  w->planned_wake = t;
  apsched__wake(s, w);
}

void apsched__waker_sleep(apsched_scheduler *s, loop_waker *w, int64_t delay_us, const bool *stop) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t ns = ts.tv_nsec + (delay_us % APSCHED_SEC) * 1000;
  ts.tv_sec += (time_t)(delay_us / APSCHED_SEC + ns / 1000000000);
  ts.tv_nsec = (long)(ns % 1000000000);
  while (!w->wakeup_pending && !*stop) {
    if (pthread_cond_timedwait(&w->cond, &s->lock, &ts) == ETIMEDOUT) break;
  }
}

/* ---------------------------------------------------------------- lookups */

store_entry *apsched__find_store(apsched_scheduler *s, const char *alias) {
  /* Callers often hold the interned pointer itself. */
  for (store_entry *e = s->stores; e; e = e->next)
    if (e->alias == alias || strcmp(e->alias, alias) == 0) return e;
  return NULL;
}

executor_entry *apsched__find_executor(apsched_scheduler *s, const char *alias) {
  for (executor_entry *e = s->executors; e; e = e->next)
    if (e->alias == alias || strcmp(e->alias, alias) == 0) return e;
  return NULL;
}
