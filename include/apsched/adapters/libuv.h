/*
 * apsched/adapters/libuv.h - a hosted scheduler inside a libuv loop.
 *
 * Header-only: the program that includes it links libuv; libapsched does
 * not. The scheduler's descriptor is watched with a uv_poll_t and the wait
 * apsched_process returns with a uv_timer_t, so no thread is added:
 *
 *   apsched_start_hosted(s, false);
 *   apsched_uv *a;
 *   apsched_uv_attach(uv_default_loop(), s, &a);
 *   uv_run(uv_default_loop(), UV_RUN_DEFAULT);  // returns once nothing else is active
 *   apsched_uv_detach(a);
 *   apsched_free(s);
 *
 * Threads: jobs on the inline executor and host listeners
 * (apsched_add_host_listener) run on the loop's thread, inside the
 * adapter's callbacks. Pool jobs run on the pool's threads; their events
 * reach ordinary listeners there and host listeners on the loop's thread.
 * Attach and detach on the loop's thread; any thread may add jobs or shut
 * the scheduler down (that wakes the loop through the descriptor).
 *
 * When the scheduler stops (a shutdown from a job, a listener or another
 * thread), the adapter closes its handles by itself, so uv_run can return.
 */
#ifndef APSCHED_ADAPTERS_LIBUV_H
#define APSCHED_ADAPTERS_LIBUV_H

#include <apsched.h>
#include <apsched_plugin.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <uv.h>

/* One attachment of a scheduler to a loop (read its fields, never write). */
typedef struct apsched_uv {
  apsched_scheduler *s;
  uv_poll_t poll;   /* the scheduler's descriptor */
  uv_timer_t timer; /* apsched_process's wait */
  int open_handles; /* handles whose close callback has not run yet */
  bool watching;    /* handles started and not being closed */
  bool detached;    /* apsched_uv_detach was called: freed once both are closed */
} apsched_uv;

static inline void apsched_uv__closed(uv_handle_t *h) {
  apsched_uv *a = (apsched_uv *)h->data;
  if (--a->open_handles == 0 && a->detached) free(a);
}

/* Closes both handles (the loop then has nothing of the scheduler). */
static inline void apsched_uv__stop(apsched_uv *a) {
  if (!a->watching) return;
  a->watching = false;
  uv_close((uv_handle_t *)&a->poll, apsched_uv__closed);
  uv_close((uv_handle_t *)&a->timer, apsched_uv__closed);
}

static inline void apsched_uv__on_timer(uv_timer_t *t);

static inline void apsched_uv__process(apsched_uv *a) {
  int64_t wait_us;
  int rc = apsched_process(a->s, &wait_us);
  if (!a->watching) return; /* a job or listener detached it */
  if (rc != APSCHED_OK || apsched_get_state(a->s) == APSCHED_STATE_STOPPED) {
    apsched_uv__stop(a);
    return;
  }
  if (wait_us < 0) {
    uv_timer_stop(&a->timer); /* nothing scheduled: the descriptor says when */
    return;
  }
  /* The loop's cached time may be behind after this callback's work. */
  uv_update_time(a->timer.loop);
  uv_timer_start(&a->timer, apsched_uv__on_timer, (uint64_t)((wait_us + 999) / 1000), 0);
}

static inline void apsched_uv__on_timer(uv_timer_t *t) { apsched_uv__process((apsched_uv *)t->data); }

static inline void apsched_uv__on_readable(uv_poll_t *p, int status, int events) {
  (void)status; /* an error on the descriptor: apsched_process says what is left */
  (void)events;
  apsched_uv__process((apsched_uv *)p->data);
}

/* Attaches a scheduler started with apsched_start_hosted to loop; *out is
 * for apsched_uv_detach. Its first pass runs in the loop's next iteration.
 * APSCHED_EINVAL (NULL argument), APSCHED_ESTATE (not started hosted, or
 * stopped), APSCHED_ENOMEM, APSCHED_ESYS (libuv refused the descriptor);
 * apsched_last_error() says which. On error nothing is attached. */
static inline int apsched_uv_attach(uv_loop_t *loop, apsched_scheduler *s, apsched_uv **out) {
  if (out) *out = NULL; /* on error too: detach(NULL) is a no-op */
  if (!loop || !s || !out)
    return apsched_plugin_error(APSCHED_EINVAL, "apsched_uv_attach: %s is NULL",
                                !loop ? "loop" : !s ? "scheduler" : "out");
  int fd = apsched_fd(s);
  if (fd < 0 || apsched_get_state(s) == APSCHED_STATE_STOPPED)
    return apsched_plugin_error(APSCHED_ESTATE,
                                "apsched_uv_attach: the scheduler is not running in hosted mode "
                                "(start it with apsched_start_hosted)");
  apsched_uv *a = (apsched_uv *)calloc(1, sizeof *a);
  if (!a) return apsched_plugin_error(APSCHED_ENOMEM, "apsched_uv_attach: out of memory");
  a->s = s;
  int err = uv_poll_init(loop, &a->poll, fd);
  if (err != 0) {
    free(a);
    return apsched_plugin_error(APSCHED_ESYS, "apsched_uv_attach: uv_poll_init on descriptor %d: %s",
                                fd, uv_strerror(err));
  }
  uv_timer_init(loop, &a->timer);
  a->poll.data = a->timer.data = a;
  a->open_handles = 2;
  a->watching = true;
  err = uv_poll_start(&a->poll, UV_READABLE, apsched_uv__on_readable);
  if (err != 0) {
    /* Closing completes in the loop's next iteration, which frees it. */
    a->detached = true;
    apsched_uv__stop(a);
    return apsched_plugin_error(APSCHED_ESYS, "apsched_uv_attach: uv_poll_start on descriptor %d: %s",
                                fd, uv_strerror(err));
  }
  uv_timer_start(&a->timer, apsched_uv__on_timer, 0, 0);
  *out = a;
  return APSCHED_OK;
}

/* Detaches (the scheduler keeps running, hosted: attach it again or call
 * apsched_process yourself) and releases a; NULL is a no-op. Call it once,
 * on the loop's thread, also after the adapter closed its handles because
 * the scheduler stopped. The handles close in the loop's next iteration
 * (uv_run), which frees a. */
static inline void apsched_uv_detach(apsched_uv *a) {
  if (!a) return;
  a->detached = true;
  apsched_uv__stop(a);
  if (a->open_handles == 0) free(a);
}

#endif /* APSCHED_ADAPTERS_LIBUV_H */
