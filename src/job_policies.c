/* A job's schedule policies as text: overlap, catch-up window and pause
 * after failures, written only when not default, so a job with default
 * policies prints and stores as it did before they existed. The same text
 * is shown by print_jobs and kept by persistent stores (one column). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const overlap_names[] = {
    [APSCHED_OVERLAP_DEFAULT] = "skip",           [APSCHED_OVERLAP_SKIP] = "skip",
    [APSCHED_OVERLAP_BUFFER_ONE] = "buffer_one",   [APSCHED_OVERLAP_BUFFER_ALL] = "buffer_all",
    [APSCHED_OVERLAP_CANCEL_OTHER] = "cancel_other",
    [APSCHED_OVERLAP_TERMINATE_OTHER] = "terminate_other",
    [APSCHED_OVERLAP_ALLOW_ALL] = "allow_all"};

const char *apsched__overlap_name(int overlap) {
  return overlap >= 0 && overlap <= APSCHED_OVERLAP_ALLOW_ALL ? overlap_names[overlap] : "?";
}

bool apsched__overlap_waits(int overlap) {
  return overlap > APSCHED_OVERLAP_SKIP && overlap != APSCHED_OVERLAP_ALLOW_ALL;
}

int apsched_job_policies_describe(const apsched_job_record *rec, char *buf, size_t len) {
  if (!rec) return apsched__error(APSCHED_EINVAL, "job_policies_describe: rec is NULL");
  size_t pos = 0;
  const char *sep = "";
  if (buf && len) buf[0] = '\0';
  if (rec->overlap > APSCHED_OVERLAP_SKIP) {
    apsched__append(buf, len, &pos, "overlap=%s", apsched__overlap_name(rec->overlap));
    sep = ", ";
  }
  if (rec->catchup_window_ms) {
    uint32_t ms = rec->catchup_window_ms;
    if (ms % 1000 == 0) apsched__append(buf, len, &pos, "%scatchup_window=%us", sep, ms / 1000);
    else apsched__append(buf, len, &pos, "%scatchup_window=%ums", sep, ms);
    sep = ", ";
  }
  if (rec->pause_after_failures)
    apsched__append(buf, len, &pos, "%spause_after_failures=%u", sep, rec->pause_after_failures);
  return (int)pos;
}

/* An unsigned decimal within [1, max]; false if not. */
static bool parse_count(const char *text, size_t n, uint64_t max, uint64_t *out) {
  if (n == 0 || n > 12) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (text[i] < '0' || text[i] > '9') return false;
    v = v * 10 + (uint64_t)(text[i] - '0');
  }
  if (v == 0 || v > max) return false;
  *out = v;
  return true;
}

int apsched_job_policies_parse(const char *text, apsched_job_record *rec, char *errbuf,
                               size_t errlen) {
  if (!rec) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "job_policies_parse: rec is NULL");
  uint8_t overlap = 0;
  uint32_t window = 0;
  uint16_t pause_after = 0;
  const char *p = text ? text : "";
  while (*p) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    if (!eq)
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "policies: '%.*s' is not key=value",
                           (int)(n > 60 ? 60 : n), p);
    size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
    const char *v = eq + 1;
    uint64_t num;
    if (klen == 7 && memcmp(p, "overlap", 7) == 0) {
      int found = -1;
      for (int i = APSCHED_OVERLAP_SKIP; i <= APSCHED_OVERLAP_ALLOW_ALL && found < 0; i++)
        if (strlen(overlap_names[i]) == vlen && memcmp(overlap_names[i], v, vlen) == 0) found = i;
      if (found < 0)
        return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                             "policies: overlap '%.*s' is not skip, buffer_one, buffer_all, "
                             "cancel_other, terminate_other or allow_all",
                             (int)(vlen > 40 ? 40 : vlen), v);
      overlap = (uint8_t)found;
    } else if (klen == 14 && memcmp(p, "catchup_window", 14) == 0) {
      bool ms = vlen > 2 && memcmp(v + vlen - 2, "ms", 2) == 0;
      bool sec = !ms && vlen > 1 && v[vlen - 1] == 's';
      size_t digits = ms ? vlen - 2 : sec ? vlen - 1 : 0;
      uint64_t limit = (uint64_t)(APSCHED_DURATION_MAX / APSCHED_MSEC);
      if (!(ms || sec) || !parse_count(v, digits, ms ? limit : limit / 1000, &num))
        return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                             "policies: catchup_window '%.*s' is not a positive number of "
                             "seconds ('3600s') or milliseconds ('1500ms') up to %llu ms",
                             (int)(vlen > 40 ? 40 : vlen), v, (unsigned long long)limit);
      window = (uint32_t)(ms ? num : num * 1000);
    } else if (klen == 20 && memcmp(p, "pause_after_failures", 20) == 0) {
      if (!parse_count(v, vlen, APSCHED_PAUSE_AFTER_LIMIT, &num))
        return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                             "policies: pause_after_failures '%.*s' is outside 1..%d",
                             (int)(vlen > 40 ? 40 : vlen), v, APSCHED_PAUSE_AFTER_LIMIT);
      pause_after = (uint16_t)num;
    } else {
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                           "policies: unknown key '%.*s' (overlap, catchup_window, "
                           "pause_after_failures)",
                           (int)(klen > 40 ? 40 : klen), p);
    }
    p += n;
    if (*p == ',') p++;
    while (*p == ' ') p++;
  }
  rec->overlap = overlap;
  rec->catchup_window_ms = window;
  rec->pause_after_failures = pause_after;
  return APSCHED_OK;
}
