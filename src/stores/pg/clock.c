/* The database's clock. Due-ness and leases follow the database's time, not
 * the hosts' (which disagree). The loop asks for it at every pass, so it
 * must not cost a round trip: the heartbeat thread measures the offset
 * between the database's clock and this host's on each heartbeat, and the
 * store answers host time + offset. Of the last few samples, the one with
 * the fastest round trip wins: its midpoint is the tightest estimate. */
#include "pg_internal.h"

void apsched__pg_clock_sample(pg_store *ps, int64_t before, int64_t db, int64_t after) {
  if (db == 0 || after < before) return; /* no reading, or the host's clock stepped */
  unsigned k = ps->clock_next++ % PG_CLOCK_SAMPLES;
  ps->clock_rtt[k] = after - before;
  ps->clock_sample[k] = db - (before + (after - before) / 2);
  unsigned best = k;
  for (unsigned i = 0; i < PG_CLOCK_SAMPLES && i < ps->clock_next; i++)
    if (ps->clock_rtt[i] < ps->clock_rtt[best]) best = i;
  atomic_store(&ps->clock_offset, ps->clock_sample[best]);
  atomic_store(&ps->clock_known, true);
}

apsched_time_t apsched__pg_clock(apsched_jobstore *st, apsched_time_t host_now) {
  pg_store *ps = (pg_store *)st;
  if (!atomic_load(&ps->clock_known) || host_now == APSCHED_TIME_NONE) return host_now;
  int64_t offset = atomic_load(&ps->clock_offset), t;
  return __builtin_add_overflow(host_now, offset, &t) ? host_now : t;
}
