/* The clock of a database that several hosts share. Due-ness and leases
 * follow the database's time, not the hosts' (which disagree). The loop
 * asks for it at every pass, so it must not cost a round trip: a store's
 * heartbeat thread measures the offset between the database's clock and
 * this host's on each heartbeat, and the store answers host time + offset.
 * Of the last few samples, the one with the fastest round trip wins: its
 * midpoint is the tightest estimate. A sample tells the offset only to
 * within half its round trip: when that range holds 0, the clocks agree
 * as far as can be measured and the offset is 0 (a job due at an instant
 * is not held back by a measuring error). */
#include "store_common.h"

#include <time.h>

int64_t apsched__pstore_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void apsched__pstore_clock_sample(store_clock *c, int64_t before, int64_t db, int64_t after) {
  if (db == 0 || after < before) return; /* no reading, or the host's clock stepped */
  unsigned k = c->next++ % STORE_CLOCK_SAMPLES;
  c->rtt[k] = after - before;
  int64_t offset = db - (before + (after - before) / 2), half = (after - before) / 2;
  c->sample[k] = offset <= half && offset >= -half ? 0 : offset;
  unsigned best = k;
  for (unsigned i = 0; i < STORE_CLOCK_SAMPLES && i < c->next; i++)
    if (c->rtt[i] < c->rtt[best]) best = i;
  atomic_store(&c->offset, c->sample[best]);
  atomic_store(&c->known, true);
}

apsched_time_t apsched__pstore_clock_now(store_clock *c, apsched_time_t host_now) {
  if (!atomic_load(&c->known) || host_now == APSCHED_TIME_NONE) return host_now;
  int64_t offset = atomic_load(&c->offset), t;
  return __builtin_add_overflow(host_now, offset, &t) ? host_now : t;
}
