/* Jitter as text ("jitter=2.5" seconds), shared by every built-in kind. */
#include "builtin.h"

#include <stdio.h>

void apsched__append_jitter(char *buf, size_t len, size_t *pos, const char *sep, int64_t usec) {
  char frac[8];
  snprintf(frac, sizeof frac, "%06lld", (long long)(usec % APSCHED_SEC));
  int n = 6;
  while (n > 0 && frac[n - 1] == '0') frac[--n] = '\0';
  apsched__append(buf, len, pos, "%sjitter=%lld%s%s", sep, (long long)(usec / APSCHED_SEC),
                  n ? "." : "", frac);
}

int apsched__param_seconds(const apsched__param *p, int64_t *out, char *errbuf, size_t errlen) {
  const char *s = p->value;
  int64_t whole = 0, frac = 0, usec = 0;
  int digits = 0;
  bool too_large = false;
  if (*s < '0' || *s > '9') goto bad;
  for (; *s >= '0' && *s <= '9'; s++) {
    /* Beyond INT64_MAX / SEC seconds nothing fits: stop counting before
     * whole itself overflows, but read on to check the syntax. */
    if (whole > INT64_MAX / APSCHED_SEC) too_large = true;
    else whole = whole * 10 + (*s - '0');
  }
  if (*s == '.') {
    for (s++; *s >= '0' && *s <= '9'; s++) {
      if (++digits > 6) goto bad;
      frac = frac * 10 + (*s - '0');
    }
  }
  if (*s) goto bad;
  for (; digits < 6; digits++) frac *= 10;
  if (too_large || __builtin_mul_overflow(whole, APSCHED_SEC, &usec) ||
      __builtin_add_overflow(usec, frac, &usec))
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "%s: '%s' is too large (at most %lld.%06lld seconds)", p->key, p->value,
                         (long long)(INT64_MAX / APSCHED_SEC),
                         (long long)(INT64_MAX % APSCHED_SEC));
  *out = usec;
  return APSCHED_OK;
bad:
  return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                       "%s: '%s' is not a number of seconds (up to 6 decimals)", p->key, p->value);
}
