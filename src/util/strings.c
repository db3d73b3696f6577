/* Small string helpers: appending formatters, strdup. */
#include "../internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void apsched__append(char *buf, size_t len, size_t *pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *dst = NULL;
  size_t room = 0;
  if (buf && *pos < len) {
    dst = buf + *pos;
    room = len - *pos;
  }
  int n = vsnprintf(dst, room, fmt, ap);
  va_end(ap);
  if (n > 0) *pos += (size_t)n;
}

char *apsched__strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
