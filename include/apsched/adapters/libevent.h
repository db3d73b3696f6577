/*
 * apsched/adapters/libevent.h - a hosted scheduler inside a libevent
 * event_base.
 *
 * Header-only: the program that includes it links libevent; libapsched does
 * not. The scheduler's descriptor is watched with an EV_READ | EV_PERSIST
 * event and the wait apsched_process returns with a timer event, so no
 * thread is added:
 *
 *   apsched_start_hosted(s, false);
 *   apsched_libevent *a;
 *   apsched_libevent_attach(base, s, &a);
 *   event_base_dispatch(base);  // returns once no event is left
 *   apsched_libevent_detach(a);
 *   apsched_free(s);
 *
 * Threads: jobs on the inline executor and host listeners
 * (apsched_add_host_listener) run on the thread running the base, inside
 * the adapter's callbacks. Pool jobs run on the pool's threads; their
 * events reach ordinary listeners there and host listeners on the base's
 * thread. Attach and detach on the base's thread (libevent's own threading
 * is not needed); any thread may add jobs or shut the scheduler down (that
 * wakes the base through the descriptor).
 *
 * When the scheduler stops (a shutdown from a job, a listener or another
 * thread), the adapter deletes its events by itself, so the dispatch can
 * return.
 */
#ifndef APSCHED_ADAPTERS_LIBEVENT_H
#define APSCHED_ADAPTERS_LIBEVENT_H

#include <apsched.h>
#include <apsched_plugin.h>

#include <event2/event.h>
#include <sys/time.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* One attachment of a scheduler to a base (read its fields, never write). */
typedef struct apsched_libevent {
  apsched_scheduler *s;
  struct event *io;    /* the scheduler's descriptor */
  struct event *timer; /* apsched_process's wait */
  bool processing;     /* inside apsched_process: a job or listener may detach */
  bool detached;       /* apsched_libevent_detach was called meanwhile: free after */
} apsched_libevent;

static inline void apsched_libevent__free(apsched_libevent *a) {
  event_free(a->io);
  event_free(a->timer);
  free(a);
}

static inline void apsched_libevent__on_event(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  apsched_libevent *a = (apsched_libevent *)arg;
  int64_t wait_us;
  a->processing = true;
  int rc = apsched_process(a->s, &wait_us);
  a->processing = false;
  if (a->detached) { /* by a job or listener of this pass */
    apsched_libevent__free(a);
    return;
  }
  if (rc != APSCHED_OK || apsched_get_state(a->s) == APSCHED_STATE_STOPPED) {
    /* Nothing of the scheduler stays in the base. */
    event_del(a->io);
    event_del(a->timer);
    return;
  }
  if (wait_us < 0) {
    event_del(a->timer); /* nothing scheduled: the descriptor says when */
    return;
  }
  /* The base's cached time may be behind after this callback's work. */
  event_base_update_cache_time(event_get_base(a->timer));
  struct timeval tv = {(time_t)(wait_us / 1000000), (suseconds_t)(wait_us % 1000000)};
  evtimer_add(a->timer, &tv);
}

/* Attaches a scheduler started with apsched_start_hosted to base; *out is
 * for apsched_libevent_detach. Its first pass runs in the base's next
 * iteration. APSCHED_EINVAL (NULL argument), APSCHED_ESTATE (not started
 * hosted, or stopped), APSCHED_ENOMEM, APSCHED_ESYS (libevent refused the
 * descriptor); apsched_last_error() says which. On error nothing is
 * attached. */
static inline int apsched_libevent_attach(struct event_base *base, apsched_scheduler *s,
                                          apsched_libevent **out) {
  if (out) *out = NULL; /* on error too: detach(NULL) is a no-op */
  if (!base || !s || !out)
    return apsched_plugin_error(APSCHED_EINVAL, "apsched_libevent_attach: %s is NULL",
                                !base ? "base" : !s ? "scheduler" : "out");
  int fd = apsched_fd(s);
  if (fd < 0 || apsched_get_state(s) == APSCHED_STATE_STOPPED)
    return apsched_plugin_error(APSCHED_ESTATE,
                                "apsched_libevent_attach: the scheduler is not running in hosted "
                                "mode (start it with apsched_start_hosted)");
  apsched_libevent *a = (apsched_libevent *)calloc(1, sizeof *a);
  if (!a) return apsched_plugin_error(APSCHED_ENOMEM, "apsched_libevent_attach: out of memory");
  a->s = s;
  a->io = event_new(base, fd, EV_READ | EV_PERSIST, apsched_libevent__on_event, a);
  a->timer = evtimer_new(base, apsched_libevent__on_event, a);
  struct timeval now = {0, 0};
  if (!a->io || !a->timer || event_add(a->io, NULL) != 0 || evtimer_add(a->timer, &now) != 0) {
    if (a->io) event_free(a->io); /* event_free also deletes an added event */
    if (a->timer) event_free(a->timer);
    free(a);
    return apsched_plugin_error(APSCHED_ESYS,
                                "apsched_libevent_attach: libevent refused descriptor %d", fd);
  }
  *out = a;
  return APSCHED_OK;
}

/* Detaches (the scheduler keeps running, hosted: attach it again or call
 * apsched_process yourself) and frees a; NULL is a no-op. Call it once, on
 * the base's thread, also after the adapter deleted its events because the
 * scheduler stopped. */
static inline void apsched_libevent_detach(apsched_libevent *a) {
  if (!a) return;
  if (a->processing) {
    /* From a job or listener: the pass in progress frees it when it returns. */
    event_del(a->io);
    event_del(a->timer);
    a->detached = true;
    return;
  }
  apsched_libevent__free(a);
}

#endif /* APSCHED_ADAPTERS_LIBEVENT_H */
