/* The GLib adapter (include/apsched/adapters/glib.h) on the real GLib, in
 * a main context of its own: the loop kit (tests/loop_kit.h). A context
 * never ends by itself, so "run" iterates it until the adapter's source has
 * left; "empty": that source is destroyed and the context has nothing
 * pending (the descriptor of a stopped scheduler stays readable: a source
 * left watching it would be pending). */
#include "loop_kit.h"

#include "apsched/adapters/glib.h"

static void *gl_new(void) { return g_main_context_new(); }

static void gl_free(void *context) {
  assert_false(g_main_context_pending(context));
  g_main_context_unref(context);
}

static int gl_attach(void *context, apsched_scheduler *s, void **adapter) {
  return apsched_glib_attach(context, s, (apsched_glib **)adapter);
}

static void gl_detach(void *adapter) { apsched_glib_detach(adapter); }

static void gl_run_all(void *context, void *adapter) {
  apsched_glib *a = adapter;
  while (!g_source_is_destroyed(&a->source)) g_main_context_iteration(context, TRUE);
}

static void gl_run_once(void *context) { g_main_context_iteration(context, FALSE); }

static int64_t gl_due_ms(void *adapter) {
  apsched_glib *a = adapter;
  gint64 ready = g_source_get_ready_time(&a->source);
  if (ready < 0) return -1;
  return (ready - g_get_monotonic_time()) / 1000;
}

static bool gl_empty(void *context, void *adapter) {
  apsched_glib *a = adapter;
  return g_source_is_destroyed(&a->source) && !g_main_context_pending(context);
}

int main(void) {
  static const loop_ops ops = {"glib", gl_new, gl_free, gl_attach, gl_detach,
                               gl_run_all, gl_run_once, gl_due_ms, gl_empty};
  return loop_kit_run(&ops);
}
