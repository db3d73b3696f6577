/* The libevent adapter (include/apsched/adapters/libevent.h) on the real
 * libevent: the loop kit (tests/loop_kit.h). "Empty": the base counts no
 * added or active event, and event_base_dispatch returns 1 (none left). */
#include "loop_kit.h"

#include "apsched/adapters/libevent.h"

static bool base_empty(struct event_base *base) {
  return event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE) == 0;
}

static void *ev_new(void) {
  struct event_base *base = event_base_new();
  assert_non_null(base);
  return base;
}

static void ev_free(void *base) {
  assert_true(base_empty(base));
  event_base_free(base);
}

static int ev_attach(void *base, apsched_scheduler *s, void **adapter) {
  return apsched_libevent_attach(base, s, (apsched_libevent **)adapter);
}

static void ev_detach(void *adapter) { apsched_libevent_detach(adapter); }

static void ev_run_all(void *base, void *adapter) {
  (void)adapter;
  assert_int_equal(event_base_dispatch(base), 1); /* 1: no event was left */
}

static void ev_run_once(void *base) { event_base_loop(base, EVLOOP_NONBLOCK); }

static int64_t ev_due_ms(void *adapter) {
  apsched_libevent *a = adapter;
  struct timeval at, now;
  if (!event_pending(a->timer, EV_TIMEOUT, &at)) return -1;
  gettimeofday(&now, NULL); /* event_pending reports wall-clock time */
  return ((int64_t)(at.tv_sec - now.tv_sec) * 1000000 + (at.tv_usec - now.tv_usec)) / 1000;
}

static bool ev_empty(void *base, void *adapter) {
  (void)adapter;
  return base_empty(base);
}

int main(void) {
  static const loop_ops ops = {"libevent", ev_new, ev_free, ev_attach, ev_detach,
                               ev_run_all, ev_run_once, ev_due_ms, ev_empty};
  return loop_kit_run(&ops);
}
