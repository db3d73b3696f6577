/* libFuzzer target: the TZif reader on arbitrary bytes, then conversions on
 * whatever it accepts. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  apsched_tz *tz = NULL;
  char err[256];
  if (apsched__tzif_parse(data, size, "Fuzz/Zone", &tz, err, sizeof err) == APSCHED_OK) {
    fuzz_exercise_zone(tz, data, size);
    apsched_tz_free(tz);
  } else if (!memchr(err, '\0', sizeof err) || !strstr(err, "Fuzz/Zone")) {
    abort(); /* every rejection explains itself */
  }
  return 0;
}
