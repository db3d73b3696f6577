/* The libuv adapter (include/apsched/adapters/libuv.h) on the real libuv:
 * the loop kit (tests/loop_kit.h). "Empty" is libuv's own word for it:
 * uv_loop_alive() is false and uv_loop_close() returns 0. */
#include "loop_kit.h"

#include "apsched/adapters/libuv.h"

static void *uv_new(void) {
  uv_loop_t *loop = malloc(sizeof *loop);
  assert_non_null(loop);
  assert_int_equal(uv_loop_init(loop), 0);
  return loop;
}

static void uv_free(void *loop) {
  assert_int_equal(uv_loop_close(loop), 0); /* UV_EBUSY while a handle is left */
  free(loop);
}

static int uv_attach(void *loop, apsched_scheduler *s, void **adapter) {
  return apsched_uv_attach(loop, s, (apsched_uv **)adapter);
}

static void uv_detach(void *adapter) { apsched_uv_detach(adapter); }

static void uv_run_all(void *loop, void *adapter) {
  (void)adapter;
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0); /* 0: nothing active is left */
}

static void uv_run_once(void *loop) { uv_run(loop, UV_RUN_NOWAIT); }

static int64_t uv_due_ms(void *adapter) {
  apsched_uv *a = adapter;
  if (!uv_is_active((uv_handle_t *)&a->timer)) return -1;
  return (int64_t)uv_timer_get_due_in(&a->timer);
}

static bool uv_empty(void *loop, void *adapter) {
  (void)adapter;
  return !uv_loop_alive(loop);
}

int main(void) {
  static const loop_ops ops = {"libuv", uv_new, uv_free, uv_attach, uv_detach,
                               uv_run_all, uv_run_once, uv_due_ms, uv_empty};
  return loop_kit_run(&ops);
}
