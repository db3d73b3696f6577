/* The database's clock (../common/clock.c estimates it from the heartbeat
 * thread's round trips). */
#include "pg_internal.h"

void apsched__pg_clock_sample(pg_store *ps, int64_t before, int64_t db, int64_t after) {
  apsched__pstore_clock_sample(&ps->clock, before, db, after);
}

apsched_time_t apsched__pg_clock(apsched_jobstore *st, apsched_time_t host_now) {
  return apsched__pstore_clock_now(&((pg_store *)st)->clock, host_now);
}
