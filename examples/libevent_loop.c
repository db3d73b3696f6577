/*
 * libevent_loop.c - a libevent service with a scheduler inside its
 * event_base (include/apsched/adapters/libevent.h; build with pkg-config
 * libevent).
 *
 * The service reads "measurements" from a socket with a read event of its
 * own. The scheduler, attached to the same base, runs:
 *   - "sample" every 250 ms on the thread pool: it writes a measurement
 *     into the socket from a pool thread (the socket is the hand-off; the
 *     service reads it on the base's thread);
 *   - "summary" every second on the inline executor: on the base's thread,
 *     so it reads the service's totals without a lock;
 *   - "stop" at +3 s, which shuts the scheduler down. The adapter then
 *     deletes its events, a host listener (apsched_add_host_listener) on
 *     SCHEDULER_SHUTDOWN deletes the service's read event, and
 *     event_base_dispatch returns: no event is left.
 */
#include <apsched.h>
#include <apsched/adapters/libevent.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(call)                                                                    \
  do {                                                                                 \
    int rc_ = (call);                                                                  \
    if (rc_ != APSCHED_OK) {                                                           \
      fprintf(stderr, "%s failed: %s (%s)\n", #call, apsched_strerror(rc_), apsched_last_error()); \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

/* The service's state: touched on the base's thread only. */
static struct {
  int sock[2]; /* [0] the service reads, [1] the sampling job writes */
  struct event *reader;
  long total;
  int received;
  int summaries;
  apsched_time_t started;
} svc;

static double elapsed(void) { return (double)(apsched_now() - svc.started) / APSCHED_SEC; }

static void on_readable(evutil_socket_t fd, short what, void *ud) {
  (void)what;
  (void)ud;
  char buf[64];
  ssize_t n = recv(fd, buf, sizeof buf - 1, 0); /* one datagram: one measurement */
  if (n <= 0) return;
  buf[n] = '\0';
  svc.total += strtol(buf, NULL, 10);
  svc.received++;
}

static int sample(apsched_run_ctx *run) {
  /* A pool thread: it only writes to the socket. */
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%ld", (long)(apsched_run_scheduled_time(run) / 1000 % 100));
  return send(svc.sock[1], buf, (size_t)n, 0) == n ? 0 : 1;
}

static int summary(apsched_run_ctx *run) {
  (void)run;
  svc.summaries++; /* inline executor: the base's thread */
  printf("%5.2f s  summary: %d measurements, total %ld\n", elapsed(), svc.received, svc.total);
  return 0;
}

static int stop(apsched_run_ctx *run) {
  printf("%5.2f s  stop\n", elapsed());
  return apsched_shutdown(apsched_run_scheduler(run), false);
}

static void on_shutdown(const apsched_event *ev, void *ud) {
  (void)ev;
  (void)ud;
  printf("%5.2f s  scheduler shut down: the service stops reading\n", elapsed());
  event_del(svc.reader);
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
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, svc.sock) != 0) {
    perror("socketpair");
    return 1;
  }
  struct event_base *base = event_base_new();
  if (!base) return 1;
  svc.started = apsched_now();
  svc.reader = event_new(base, svc.sock[0], EV_READ | EV_PERSIST, on_readable, NULL);
  event_add(svc.reader, NULL);

  apsched_config cfg = {.timezone = "UTC"};
  apsched_scheduler *s;
  CHECK(apsched_create(&cfg, &s));
  apsched_executor *ex;
  CHECK(apsched_inline_executor_create(&ex));
  CHECK(apsched_add_executor(s, ex, "default"));
  CHECK(apsched_thread_pool_create(NULL, &ex));
  CHECK(apsched_add_executor(s, ex, "pool"));
  CHECK(apsched_add_host_listener(s, on_shutdown, APSCHED_EVENT_SCHEDULER_SHUTDOWN, NULL, NULL));
  add(s, "sample", sample, every_ms(250), "pool");
  add(s, "summary", summary, every_ms(1000), NULL);
  apsched_date_options at = {.run_date = svc.started + 3 * APSCHED_SEC + 100 * APSCHED_MSEC};
  apsched_trigger *t;
  CHECK(apsched_trigger_date(&at, &t));
  add(s, "stop", stop, t, NULL);

  CHECK(apsched_start_hosted(s, false));
  apsched_libevent *a = NULL;
  CHECK(apsched_libevent_attach(base, s, &a));
  int rc = event_base_dispatch(base); /* 1: returned because no event was left */
  apsched_libevent_detach(a);
  apsched_free(s);
  printf("base done (event_base_dispatch %d): %d measurements, %d summaries\n", rc, svc.received,
         svc.summaries);
  event_free(svc.reader);
  event_base_free(base);
  close(svc.sock[0]);
  close(svc.sock[1]);
  return rc == 1 && svc.received >= 8 && svc.summaries >= 3 ? 0 : 1;
}
