/* libFuzzer target: POSIX TZ strings (as in TZ and TZif footers), then
 * conversions through the 400-year rule cycle on whatever parses. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  apsched_tz *tz = NULL;
  char err[256];
  if (size > 256) return 0;
  if (apsched__tz_from_posix((const char *)data, size, "fuzz", &tz, err, sizeof err) ==
      APSCHED_OK) {
    fuzz_exercise_zone(tz, data, size);
    /* The cycle table must agree with evaluating the rule directly. */
    if (tz->has_rule)
      for (int i = 0; i < 64; i++) {
        int64_t t = (int64_t)(i - 32) * 9876543211LL + (size ? data[i % size] : 0) * 3600LL;
        const apsched__tz_type *ty = apsched__tz_type_at(tz, t);
        int dst = apsched__posix_tz_is_dst(&tz->rule, t);
        if (ty != &tz->types[dst ? tz->rule_dst : tz->rule_std]) abort();
      }
    apsched_tz_free(tz);
  } else if (!memchr(err, '\0', sizeof err) || !strstr(err, "POSIX TZ string")) {
    abort();
  }
  return 0;
}
