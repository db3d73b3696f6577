/*
 * apsched/adapters/glib.h - a hosted scheduler inside a GLib main context
 * (the loop under GTK; the same shape as Qt's QSocketNotifier + QTimer).
 *
 * Header-only: the program that includes it links GLib; libapsched does
 * not. The adapter is a GSource of its own: the scheduler's descriptor is
 * watched with g_source_add_unix_fd and the wait apsched_process returns is
 * the source's ready time, so no thread is added:
 *
 *   apsched_start_hosted(s, false);
 *   apsched_glib *a;
 *   apsched_glib_attach(NULL, s, &a);   // NULL: the default main context
 *   g_main_loop_run(loop);              // quit it from a host listener, say
 *   apsched_glib_detach(a);
 *   apsched_free(s);
 *
 * Threads: jobs on the inline executor and host listeners
 * (apsched_add_host_listener) run on the thread iterating the context,
 * inside the source's dispatch. Pool jobs run on the pool's threads; their
 * events reach ordinary listeners there and host listeners on the
 * context's thread. Attach and detach on the context's thread; any thread
 * may add jobs or shut the scheduler down (that wakes the context through
 * the descriptor).
 *
 * When the scheduler stops (a shutdown from a job, a listener or another
 * thread), the source removes itself from the context.
 */
#ifndef APSCHED_ADAPTERS_GLIB_H
#define APSCHED_ADAPTERS_GLIB_H

#include <apsched.h>
#include <apsched_plugin.h>

#include <glib.h>
#include <stdint.h>

/* One attachment of a scheduler to a context: a GSource (read its fields,
 * never write). */
typedef struct apsched_glib {
  GSource source;
  apsched_scheduler *s;
} apsched_glib;

static inline gboolean apsched_glib__dispatch(GSource *source, GSourceFunc callback,
                                              gpointer user_data) {
  (void)callback;
  (void)user_data;
  apsched_glib *a = (apsched_glib *)source;
  int64_t wait_us;
  int rc = apsched_process(a->s, &wait_us);
  /* Stopped, or destroyed by a job or listener: the context drops it. */
  if (rc != APSCHED_OK || apsched_get_state(a->s) == APSCHED_STATE_STOPPED ||
      g_source_is_destroyed(source))
    return G_SOURCE_REMOVE;
  /* -1: nothing scheduled, the descriptor says when. */
  g_source_set_ready_time(source, wait_us < 0 ? -1 : g_get_monotonic_time() + wait_us);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs apsched_glib__funcs = {NULL, NULL, apsched_glib__dispatch, NULL, NULL, NULL};

/* Attaches a scheduler started with apsched_start_hosted to context (NULL:
 * the default one); *out is for apsched_glib_detach. Its first pass runs
 * in the context's next iteration. APSCHED_EINVAL (NULL argument),
 * APSCHED_ESTATE (not started hosted, or stopped); apsched_last_error()
 * says which. On error nothing is attached. */
static inline int apsched_glib_attach(GMainContext *context, apsched_scheduler *s,
                                      apsched_glib **out) {
  if (out) *out = NULL; /* on error too: detach(NULL) is a no-op */
  if (!s || !out)
    return apsched_plugin_error(APSCHED_EINVAL, "apsched_glib_attach: %s is NULL",
                                !s ? "scheduler" : "out");
  int fd = apsched_fd(s);
  if (fd < 0 || apsched_get_state(s) == APSCHED_STATE_STOPPED)
    return apsched_plugin_error(APSCHED_ESTATE,
                                "apsched_glib_attach: the scheduler is not running in hosted mode "
                                "(start it with apsched_start_hosted)");
  GSource *source = g_source_new(&apsched_glib__funcs, sizeof(apsched_glib));
  apsched_glib *a = (apsched_glib *)source;
  a->s = s;
  g_source_set_name(source, "apsched");
  g_source_add_unix_fd(source, fd, G_IO_IN);
  g_source_set_ready_time(source, 0);
  g_source_attach(source, context);
  *out = a;
  return APSCHED_OK;
}

/* Detaches (the scheduler keeps running, hosted: attach it again or call
 * apsched_process yourself) and releases a; NULL is a no-op. Call it once,
 * also after the source removed itself because the scheduler stopped. */
static inline void apsched_glib_detach(apsched_glib *a) {
  if (!a) return;
  g_source_destroy(&a->source);
  g_source_unref(&a->source);
}

#endif /* APSCHED_ADAPTERS_GLIB_H */
