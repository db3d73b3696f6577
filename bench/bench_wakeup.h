/* The cross-process wake-up of the shared stores (PostgreSQL's NOTIFY,
 * Redis's PUBLISH), for bench_pg and bench_redis: this process adds a job
 * due now, an idle scheduler in another process (default max_wait of 1 s:
 * only the notification wakes it sooner) runs it. One JSON line,
 * <name>_wakeup: us from the call of the add until the job started, p50 /
 * p99 / max / min over the samples, and the add call's own p50.
 *
 * Header-only: include bench_util.h first. adder (paused) adds job i of
 * func, due now, with i as its argument (4 bytes, little-endian, as the
 * benchmarks' jobs read it), after arm(i) (NULL: none); started_ns(i) is
 * now_ns() when job i started in the other process, 0 before. Each add
 * waits 2-10 ms after the last start: the other scheduler is asleep again
 * by then. */
#ifndef APSCHED_BENCH_WAKEUP_H
#define APSCHED_BENCH_WAKEUP_H

#include <apsched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void bench_wakeup_samples(const char *name, apsched_scheduler *adder, const char *func,
                                 size_t samples, void (*arm)(size_t i),
                                 int64_t (*started_ns)(size_t i)) {
  apsched_trigger *now_trigger;
  if (apsched_trigger_date(&(apsched_date_options){.run_date = 0}, &now_trigger) != APSCHED_OK)
    fail("wake-up: apsched_trigger_date: %s", apsched_last_error());
  double *lat = malloc(samples * sizeof *lat), *call = malloc(samples * sizeof *call);
  if (!lat || !call) fail("out of memory");
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < samples; i++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    sleep_us(2000 + (int64_t)(rng % 8000));
    if (arm) arm(i);
    unsigned char arg[4];
    for (int k = 0; k < 4; k++) arg[k] = (unsigned char)(i >> (8 * k));
    apsched_job_options o = {.func_name = func, .trigger = now_trigger,
                             .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .arg_bytes = arg,
                             .arg_len = 4};
    int64_t t0 = now_ns();
    if (apsched_add_job(adder, &o, NULL, 0) != APSCHED_OK)
      fail("wake-up: apsched_add_job: %s", apsched_last_error());
    call[i] = (double)(now_ns() - t0) / 1e3;
    int64_t limit = t0 + 10000000000;
    while (started_ns(i) == 0) {
      if (now_ns() > limit) fail("wake-up: job %zu did not start within 10 s", i);
      sleep_us(50);
    }
    lat[i] = (double)(started_ns(i) - t0) / 1e3;
  }
  qsort(lat, samples, sizeof *lat, cmp_double);
  qsort(call, samples, sizeof *call, cmp_double);
  size_t p99 = (size_t)((double)(samples - 1) * 0.99 + 0.5);
  printf("{\"impl\":\"libapsched\",\"bench\":\"%s_wakeup\",\"samples\":%zu,\"unit\":\"us\","
         "\"p50_us\":%.0f,\"p99_us\":%.0f,\"max_us\":%.0f,\"min_us\":%.0f,"
         "\"add_call_p50_us\":%.0f,\"max_wait_ms\":1000,\"loadavg\":%s}\n",
         name, samples, lat[samples / 2], lat[p99], lat[samples - 1], lat[0], call[samples / 2],
         loadavg());
  fflush(stdout);
  free(lat);
  free(call);
  apsched_trigger_free(now_trigger);
}

#endif
