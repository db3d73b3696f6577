/* Store URLs -> where the server is:
 *   redis://[[user]:password@]host[:port][/db]
 *   unix:///path/to/redis.sock[?db=N][&password=P]
 * Everything else is refused with a message naming the bad part (never the
 * password). */
#include "redis_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* text[0..len) with %XX decoded (malloc'd); NULL: a bad escape or no memory (*bad). */
static char *decode(const char *text, size_t len, bool *bad) {
  char *out = malloc(len + 1);
  size_t k = 0;
  *bad = false;
  if (!out) return NULL;
  for (size_t i = 0; i < len; i++) {
    if (text[i] != '%') {
      out[k++] = text[i];
      continue;
    }
    int a = i + 1 < len ? hex(text[i + 1]) : -1, b = i + 2 < len ? hex(text[i + 2]) : -1;
    if (a < 0 || b < 0 || (a == 0 && b == 0)) {
      free(out);
      *bad = true;
      return NULL;
    }
    out[k++] = (char)(a * 16 + b);
    i += 2;
  }
  out[k] = '\0';
  return out;
}

static int bad_url(const char *what) {
  return apsched__pstore_error(APSCHED_EINVAL, "redis store: url: %s", what);
}

/* A decimal in [lo, hi] from text[0..len). */
static bool number(const char *text, size_t len, long lo, long hi, int *out) {
  if (len == 0 || len > 9) return false;
  long v = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] < '0' || text[i] > '9') return false;
    v = v * 10 + (text[i] - '0');
  }
  if (v < lo || v > hi) return false;
  *out = (int)v;
  return true;
}

static int parse_unix(const char *rest, redis_addr *a) {
  if (rest[0] != '/') return bad_url("unix:///path/to/redis.sock needs an absolute path");
  const char *q = strchr(rest, '?');
  size_t len = q ? (size_t)(q - rest) : strlen(rest);
  bool bad;
  if (!(a->path = decode(rest, len, &bad)))
    return bad ? bad_url("a bad %XX escape in the path") : APSCHED_ENOMEM;
  for (const char *p = q ? q + 1 : ""; *p;) {
    const char *end = strchr(p, '&');
    size_t plen = end ? (size_t)(end - p) : strlen(p);
    if (plen > 3 && strncmp(p, "db=", 3) == 0) {
      if (!number(p + 3, plen - 3, 0, 1000000, &a->db))
        return bad_url("db must be a number (unix:///path?db=N)");
    } else if (plen > 9 && strncmp(p, "password=", 9) == 0) {
      free(a->password);
      if (!(a->password = decode(p + 9, plen - 9, &bad)))
        return bad ? bad_url("a bad %XX escape in the password") : APSCHED_ENOMEM;
    } else {
      return apsched__pstore_error(APSCHED_EINVAL,
                                   "redis store: url: unknown parameter '%.*s' (unix URLs take "
                                   "db and password)",
                                   (int)(plen > 40 ? 40 : plen), p);
    }
    p += plen + (end != NULL);
  }
  return APSCHED_OK;
}

static int parse_tcp(const char *rest, redis_addr *a) {
  const char *slash = strchr(rest, '/');
  size_t auth_end = slash ? (size_t)(slash - rest) : strlen(rest);
  const char *at = memrchr(rest, '@', auth_end);
  bool bad;
  if (at) {
    const char *colon = memchr(rest, ':', (size_t)(at - rest));
    if (!colon) return bad_url("user info must be [user]:password@");
    if (colon > rest && !(a->user = decode(rest, (size_t)(colon - rest), &bad)))
      return bad ? bad_url("a bad %XX escape in the user") : APSCHED_ENOMEM;
    if (!(a->password = decode(colon + 1, (size_t)(at - colon - 1), &bad)))
      return bad ? bad_url("a bad %XX escape in the password") : APSCHED_ENOMEM;
    rest = at + 1;
  }
  const char *host_end = slash ? slash : rest + strlen(rest);
  const char *colon = memchr(rest, ':', (size_t)(host_end - rest));
  size_t hlen = colon ? (size_t)(colon - rest) : (size_t)(host_end - rest);
  if (hlen == 0) return bad_url("no host (redis://host[:port][/db])");
  if (!(a->host = strndup(rest, hlen))) return APSCHED_ENOMEM;
  a->port = 6379;
  if (colon && !number(colon + 1, (size_t)(host_end - colon - 1), 1, 65535, &a->port))
    return bad_url("the port must be a number from 1 to 65535");
  if (slash && slash[1] && !number(slash + 1, strlen(slash + 1), 0, 1000000, &a->db))
    return bad_url("the database must be a number (redis://host:port/db)");
  return APSCHED_OK;
}

int apsched__redis_parse_url(const char *url, redis_addr *a) {
  *a = (redis_addr){0};
  int rc;
  if (strncasecmp(url, "redis://", 8) == 0) rc = parse_tcp(url + 8, a);
  else if (strncasecmp(url, "unix://", 7) == 0) rc = parse_unix(url + 7, a);
  else if (strncasecmp(url, "rediss://", 9) == 0)
    rc = bad_url("rediss:// (TLS) is not supported by this build's hiredis");
  else
    rc = bad_url("must be redis://[[user]:password@]host[:port][/db] or "
                 "unix:///path/to/redis.sock[?db=N]");
  if (rc == APSCHED_ENOMEM) rc = apsched__pstore_error(APSCHED_ENOMEM, "redis store: out of memory");
  if (rc != APSCHED_OK) apsched__redis_addr_free(a);
  return rc;
}

void apsched__redis_addr_free(redis_addr *a) {
  free(a->host);
  free(a->path);
  free(a->user);
  free(a->password);
  *a = (redis_addr){0};
}
