/* What the shared stores' runs that wait (contract version 5) have in
 * common: the overlap policies whose runs wait, by the names the stores
 * keep them under, and the checks of runs_wait's and runs_add's
 * arguments. */
#include "store_common.h"

#include <string.h>

static const struct {
  apsched_overlap overlap;
  const char *text;
} waiting_policies[] = {
    {APSCHED_OVERLAP_BUFFER_ONE, "buffer_one"},
    {APSCHED_OVERLAP_BUFFER_ALL, "buffer_all"},
    {APSCHED_OVERLAP_CANCEL_OTHER, "cancel_other"},
    {APSCHED_OVERLAP_TERMINATE_OTHER, "terminate_other"},
};

enum { NPOLICIES = sizeof waiting_policies / sizeof waiting_policies[0] };

const char *apsched__pstore_wait_policy(const apsched_job_record *rec) {
  for (size_t i = 0; i < NPOLICIES; i++)
    if ((int)waiting_policies[i].overlap == rec->overlap) return waiting_policies[i].text;
  return NULL;
}

apsched_overlap apsched__pstore_wait_overlap(const char *text) {
  for (size_t i = 0; text && i < NPOLICIES; i++)
    if (strcmp(waiting_policies[i].text, text) == 0) return waiting_policies[i].overlap;
  return APSCHED_OVERLAP_SKIP;
}

int apsched__pstore_check_wait_args(const char *call, const apsched_job_record *rec,
                                    const apsched_time_t *times, size_t n, const void *out) {
  if (rec && times && out && n > 0) return APSCHED_OK;
  return apsched__pstore_error(APSCHED_EINVAL, "%s: %s", call,
                               !rec     ? "rec is NULL"
                               : !times ? "times is NULL"
                               : !out   ? "out is NULL"
                                        : "no times");
}
