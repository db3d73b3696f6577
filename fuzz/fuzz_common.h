/* Shared by the time zone fuzz targets: drives an accepted zone through both
 * conversions and aborts if they disagree with each other. */
#ifndef APSCHED_FUZZ_COMMON_H
#define APSCHED_FUZZ_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "time/tz_internal.h"

static void fuzz_exercise_zone(const apsched_tz *tz, const unsigned char *data, size_t size) {
  static const int64_t seconds[] = {INT64_MIN / APSCHED_SEC + 1, -62135596800LL, -2208988800LL,
                                    -1, 0, 1, 1711846800LL, 2147483647LL, 4102444800LL,
                                    4133980800LL, 16725225600LL, 253402300799LL,
                                    INT64_MAX / APSCHED_SEC - 1};
  apsched_civil c;
  apsched_local_result r;
  for (size_t i = 0; i < sizeof seconds / sizeof *seconds; i++) {
    /* Mix in input bytes so the fuzzer steers the instants as well. */
    int64_t sec = seconds[i], lim = INT64_MAX / APSCHED_SEC - 1;
    if (size >= 4)
      sec += (int32_t)((uint32_t)data[i % size] << 24 | (uint32_t)data[(i + 1) % size] << 16 |
                       (uint32_t)data[(i + 2) % size] << 8 | data[(i + 3) % size]);
    if (sec > lim || sec < -lim) continue;
    int64_t t = sec * APSCHED_SEC + (size ? data[0] : 0);
    if (apsched_tz_to_local(tz, t, &c) != APSCHED_OK) continue;
    for (int how = APSCHED_EARLIER; how <= APSCHED_GAP_END; how++) {
      if (apsched_tz_from_local(tz, &c, (apsched_disambiguate)how, &r) != APSCHED_OK) continue;
      /* A local time just produced by to_local really happened. */
      if (r.kind == APSCHED_LOCAL_SKIPPED) abort();
      apsched_civil back;
      if (apsched_tz_to_local(tz, r.utc, &back) != APSCHED_OK) abort();
      if (back.year != c.year || back.month != c.month || back.day != c.day ||
          back.hour != c.hour || back.minute != c.minute || back.second != c.second ||
          back.microsecond != c.microsecond)
        abort();
    }
  }
}

#endif
