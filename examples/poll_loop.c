/*
 * poll_loop.c - host-loop mode, for programs that own their event loop.
 *
 * apsched_start_hosted() starts the scheduler without a thread of its own.
 * The program polls apsched_fd() (next to its own descriptors) and calls
 * apsched_process() whenever the descriptor is readable or the timeout that
 * apsched_process() returned has passed. With the inline executor, jobs run
 * right inside apsched_process(), on this one thread: no locks needed.
 *
 * Jobs: a heartbeat every second, a one-off at +2.5 s, and a one-off at
 * +5 s that stops the scheduler, which ends the loop.
 */
#include <apsched.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                      \
  do {                                                                   \
    int rc_ = (call);                                                    \
    if (rc_ != APSCHED_OK) {                                             \
      fprintf(stderr, "%s failed: %s\n", #call, apsched_strerror(rc_)); \
      exit(1);                                                           \
    }                                                                    \
  } while (0)

static apsched_time_t started;
static int runs;

static int say(apsched_run_ctx *run) {
  runs++; /* single-threaded: jobs run inside apsched_process() */
  printf("%6.3f s  job \"%s\"\n", (double)(apsched_now() - started) / APSCHED_SEC,
         apsched_run_job_id(run));
  return 0;
}

static int stop(apsched_run_ctx *run) {
  say(run);
  /* From inside a job only wait=false is allowed; the loop sees the state. */
  return apsched_shutdown(apsched_run_scheduler(run), false) == APSCHED_OK ? 0 : 1;
}

static void add(apsched_scheduler *s, const char *id, apsched_job_fn fn, apsched_trigger *t) {
  apsched_job_options o = {.id = id, .func = fn, .trigger = t};
  CHECK(apsched_add_job(s, &o, NULL, 0));
  apsched_trigger_free(t);
}

static apsched_trigger *at(int64_t after_ms) {
  apsched_date_options d = {.run_date = started + after_ms * APSCHED_MSEC};
  apsched_trigger *t;
  CHECK(apsched_trigger_date(&d, &t));
  return t;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  apsched_executor *inline_ex;
  CHECK(apsched_inline_executor_create(&inline_ex));
  CHECK(apsched_add_executor(s, inline_ex, "default"));

  started = apsched_now();
  apsched_interval_options every = {.seconds = 1};
  apsched_trigger *heartbeat;
  CHECK(apsched_trigger_interval(&every, &heartbeat, NULL, 0));
  add(s, "heartbeat", say, heartbeat);
  add(s, "hello", say, at(2500));
  add(s, "stop", stop, at(5000));

  CHECK(apsched_start_hosted(s, false));
  int fd = apsched_fd(s);
  int woken_by_fd = 0, woken_by_timeout = 0;
  for (;;) {
    int64_t wait_us;
    CHECK(apsched_process(s, &wait_us));
    /* A shutdown during apsched_process() still returns APSCHED_OK (the next
     * call would be APSCHED_ESTATE), so ask for the state. */
    if (apsched_get_state(s) == APSCHED_STATE_STOPPED) break;

    /* Microseconds to poll()'s milliseconds, rounded up so we never wake
     * early; -1 (nothing scheduled) means wait for the descriptor only. */
    int timeout_ms = wait_us < 0 ? -1 : (int)((wait_us + 999) / 1000);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0 && errno != EINTR) {
      fprintf(stderr, "poll: %s\n", strerror(errno));
      apsched_free(s);
      return 1;
    }
    if (n > 0) woken_by_fd++;
    else woken_by_timeout++;
  }
  printf("loop left after %d jobs; woken %d times by the descriptor, %d by the timeout\n", runs,
         woken_by_fd, woken_by_timeout);
  apsched_free(s);
  return runs >= 6 ? 0 : 1; /* 4 or 5 heartbeats + hello + stop */
}
