/*
 * glib_loop.c - a GLib (GTK-style) service with a scheduler inside its main
 * loop (include/apsched/adapters/glib.h; build with pkg-config glib-2.0).
 *
 * The service keeps a "status line" updated by a g_timeout of its own every
 * 300 ms (what a GTK program would draw in a widget, on the main thread).
 * The scheduler, attached to the main context, runs:
 *   - "fetch" every 600 ms on the thread pool (off the main thread, as a
 *     slow download would); a host listener (apsched_add_host_listener)
 *     takes its EXECUTED and ERROR events on the main thread and updates
 *     the status there, where GTK widgets could be touched;
 *   - "stop" at +3 s, which shuts the scheduler down. The adapter's source
 *     leaves the context, and the SCHEDULER_SHUTDOWN host listener removes
 *     the service's timeout and quits the main loop.
 */
#include <apsched.h>
#include <apsched/adapters/glib.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                    \
  do {                                                                                 \
    int rc_ = (call);                                                                  \
    if (rc_ != APSCHED_OK) {                                                           \
      fprintf(stderr, "%s failed: %s (%s)\n", #call, apsched_strerror(rc_), apsched_last_error()); \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

/* The service's state: touched on the main thread only. */
static struct {
  GMainLoop *loop;
  guint ticker;
  int ticks, fetched, failed;
  GThread *main_thread;
  apsched_time_t started;
} svc;

static double elapsed(void) { return (double)(apsched_now() - svc.started) / APSCHED_SEC; }

static gboolean on_tick(gpointer ud) {
  (void)ud;
  svc.ticks++;
  if (svc.ticks % 3 == 0)
    printf("%5.2f s  status: %d fetched, %d failed\n", elapsed(), svc.fetched, svc.failed);
  return G_SOURCE_CONTINUE;
}

static int fetch(apsched_run_ctx *run) {
  /* A pool thread: every third fetch "fails", to show ERROR events too. */
  static atomic_int calls;
  if (atomic_fetch_add(&calls, 1) % 3 == 2) {
    apsched_run_set_error(run, "server busy");
    return 1;
  }
  return 0;
}

static int stop(apsched_run_ctx *run) {
  printf("%5.2f s  stop\n", elapsed());
  return apsched_shutdown(apsched_run_scheduler(run), false);
}

static void on_event(const apsched_event *ev, void *ud) {
  (void)ud;
  if (g_thread_self() != svc.main_thread) abort(); /* never: host listeners run here */
  if (ev->code == APSCHED_EVENT_JOB_EXECUTED && ev->job_id[0] == 'f') svc.fetched++;
  if (ev->code == APSCHED_EVENT_JOB_ERROR) svc.failed++;
  if (ev->code == APSCHED_EVENT_SCHEDULER_SHUTDOWN) {
    printf("%5.2f s  scheduler shut down: quitting the main loop\n", elapsed());
    g_source_remove(svc.ticker);
    g_main_loop_quit(svc.loop);
  }
}

static void add(apsched_scheduler *s, const char *id, apsched_job_fn fn, apsched_trigger *t,
                const char *executor) {
  apsched_job_options o = {.id = id, .func = fn, .trigger = t, .executor = executor};
  CHECK(apsched_add_job(s, &o, NULL, 0));
  apsched_trigger_free(t);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  svc.main_thread = g_thread_self();
  svc.loop = g_main_loop_new(NULL, FALSE);
  svc.started = apsched_now();
  svc.ticker = g_timeout_add(300, on_tick, NULL);

  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  apsched_executor *ex;
  CHECK(apsched_inline_executor_create(&ex));
  CHECK(apsched_add_executor(s, ex, "default"));
  CHECK(apsched_thread_pool_create(NULL, &ex));
  CHECK(apsched_add_executor(s, ex, "pool"));
  CHECK(apsched_add_host_listener(s, on_event,
                                  APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_JOB_ERROR |
                                      APSCHED_EVENT_SCHEDULER_SHUTDOWN,
                                  NULL, NULL));
  apsched_interval_options every = {.microseconds = 600 * APSCHED_MSEC};
  apsched_trigger *t;
  CHECK(apsched_trigger_interval(&every, &t, NULL, 0));
  add(s, "fetch", fetch, t, "pool");
  apsched_date_options at = {.run_date = svc.started + 3 * APSCHED_SEC + 100 * APSCHED_MSEC};
  CHECK(apsched_trigger_date(&at, &t));
  add(s, "stop", stop, t, NULL);

  CHECK(apsched_start_hosted(s, false));
  apsched_glib *a = NULL;
  CHECK(apsched_glib_attach(NULL, s, &a));
  g_main_loop_run(svc.loop);
  apsched_glib_detach(a);
  apsched_free(s);
  /* Nothing of the service or the scheduler is left in the context. */
  gboolean pending = g_main_context_pending(NULL);
  printf("main loop done (sources pending: %s): %d ticks, %d fetched, %d failed\n",
         pending ? "yes" : "no", svc.ticks, svc.fetched, svc.failed);
  g_main_loop_unref(svc.loop);
  return !pending && svc.fetched >= 2 && svc.failed >= 1 && svc.ticks >= 8 ? 0 : 1;
}
