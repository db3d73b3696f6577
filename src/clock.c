/* Clocks: a monotonic clock and the scheduler's (possibly injected) wall
 * clock; apsched_now() itself lives with the time code. */
#include "scheduler_internal.h"

#include <time.h>

int64_t apsched__mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * APSCHED_SEC + ts.tv_nsec / 1000;
}

apsched_time_t apsched__wall(apsched_scheduler *s) {
  return s->clock.wall ? s->clock.wall(s->clock.user_data) : apsched_now();
}
