/*
 * libuv_loop.c - a libuv service with a scheduler inside its loop
 * (include/apsched/adapters/libuv.h; build with pkg-config libuv).
 *
 * The service has a timer of its own that handles a "request" every 200 ms.
 * The scheduler, attached to the same loop, runs:
 *   - "report" every second on the inline executor: on the loop's thread,
 *     so it reads the service's counters without a lock;
 *   - "crunch" every 700 ms on the thread pool: off the loop's thread; a
 *     host listener (apsched_add_host_listener) takes its EXECUTED events
 *     on the loop's thread and updates the service's state there;
 *   - "stop" at +3.5 s, which shuts the scheduler down. The adapter then
 *     leaves the loop, the SCHEDULER_SHUTDOWN host listener stops the
 *     service's timer, and uv_run returns: nothing is active any more.
 */
#include <apsched.h>
#include <apsched/adapters/libuv.h>

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

/* The service's state: touched on the loop's thread only. */
static struct {
  uv_timer_t requests;
  int handled;
  int crunched;
  int reports;
  apsched_time_t started;
} svc;

static double elapsed(void) { return (double)(apsched_now() - svc.started) / APSCHED_SEC; }

static void on_request(uv_timer_t *t) {
  (void)t;
  svc.handled++;
}

static int report(apsched_run_ctx *run) {
  (void)run;
  svc.reports++; /* inline executor: the loop's thread */
  printf("%5.2f s  report: %d requests handled, %d crunches done\n", elapsed(), svc.handled,
         svc.crunched);
  return 0;
}

static int crunch(apsched_run_ctx *run) {
  (void)run; /* a pool thread: touches nothing of the service */
  unsigned long x = 0;
  for (unsigned long i = 0; i < 1000000; i++) x += i ^ (x >> 3);
  return x == 42 ? 1 : 0;
}

static int stop(apsched_run_ctx *run) {
  printf("%5.2f s  stop\n", elapsed());
  return apsched_shutdown(apsched_run_scheduler(run), false);
}

/* Host listener: the loop's thread, whichever thread ran the job. */
static void on_event(const apsched_event *ev, void *ud) {
  (void)ud;
  if (ev->code == APSCHED_EVENT_JOB_EXECUTED && ev->job_id[0] == 'c') svc.crunched++;
  if (ev->code == APSCHED_EVENT_SCHEDULER_SHUTDOWN) {
    printf("%5.2f s  scheduler shut down: the service stops too\n", elapsed());
    uv_close((uv_handle_t *)&svc.requests, NULL);
  }
}

static void add(apsched_scheduler *s, const char *id, apsched_job_fn fn, apsched_trigger *t,
                const char *executor) {
  apsched_job_options o = {.id = id, .func = fn, .trigger = t, .executor = executor};
  CHECK(apsched_add_job(s, &o, NULL, 0));
  apsched_trigger_free(t);
}

static apsched_trigger *every_ms(int64_t ms) {
  apsched_interval_options o = {.microseconds = ms * APSCHED_MSEC};
  apsched_trigger *t;
  CHECK(apsched_trigger_interval(&o, &t, NULL, 0));
  return t;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  uv_loop_t *loop = uv_default_loop();
  svc.started = apsched_now();
  uv_timer_init(loop, &svc.requests);
  uv_timer_start(&svc.requests, on_request, 200, 200);

  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  apsched_executor *ex;
  CHECK(apsched_inline_executor_create(&ex));
  CHECK(apsched_add_executor(s, ex, "default"));
  CHECK(apsched_thread_pool_create(NULL, &ex));
  CHECK(apsched_add_executor(s, ex, "pool"));
  CHECK(apsched_add_host_listener(s, on_event,
                                  APSCHED_EVENT_JOB_EXECUTED | APSCHED_EVENT_SCHEDULER_SHUTDOWN,
                                  NULL, NULL));
  add(s, "report", report, every_ms(1000), NULL);
  add(s, "crunch", crunch, every_ms(700), "pool");
  apsched_date_options at = {.run_date = svc.started + 3500 * APSCHED_MSEC};
  apsched_trigger *t;
  CHECK(apsched_trigger_date(&at, &t));
  add(s, "stop", stop, t, NULL);

  CHECK(apsched_start_hosted(s, false));
  apsched_uv *a = NULL;
  CHECK(apsched_uv_attach(loop, s, &a));
  int rc = uv_run(loop, UV_RUN_DEFAULT); /* returns when nothing is active */
  apsched_uv_detach(a);
  apsched_free(s);
  int closed = uv_loop_close(loop);
  printf("loop done (uv_run %d, uv_loop_close %d): %d requests, %d reports, %d crunches\n", rc,
         closed, svc.handled, svc.reports, svc.crunched);
  return rc == 0 && closed == 0 && svc.reports >= 3 && svc.crunched >= 3 && svc.handled >= 10 ? 0 : 1;
}
