/* Zone objects: the static UTC zone, lookup by name, "local", and a
 * process-wide cache. Zones are immutable once built; the cache holds one
 * reference to each, so cached zones live until exit and apsched_tz_get of a
 * known name is a hash lookup under a mutex. */
#include "tz_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_TZDIR "/usr/share/zoneinfo"

static apsched__tz_type utc_type = {0, 0, "UTC"};
static apsched_tz utc_zone = {
    .is_static = true,
    .ntypes = 1,
    .rule_hi = INT64_MAX,
    .types = &utc_type,
    .name = "UTC",
    .cap_types = 1,
};

apsched_tz *apsched_tz_utc(void) { return &utc_zone; }

apsched_tz *apsched_tz_ref(apsched_tz *tz) {
  if (tz && !tz->is_static) atomic_fetch_add_explicit(&tz->refs, 1, memory_order_relaxed);
  return tz;
}

void apsched_tz_free(apsched_tz *tz) {
  if (!tz || tz->is_static) return;
  if (atomic_fetch_sub_explicit(&tz->refs, 1, memory_order_acq_rel) == 1) apsched__tz_destroy(tz);
}

const char *apsched_tz_name(const apsched_tz *tz) { return tz ? tz->name : utc_zone.name; }

/* ------------------------------------------------------------------ cache */

#define CACHE_BUCKETS 256
#define CACHE_MAX 4096 /* beyond this, zones are handed out uncached */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static apsched_tz *cache[CACHE_BUCKETS];
static size_t cache_count;

static unsigned hash_key(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h % CACHE_BUCKETS;
}

/* A new reference to the cached zone for key, or NULL. */
static apsched_tz *cache_find(const char *key) {
  apsched_tz *found = NULL;
  pthread_mutex_lock(&cache_lock);
  for (apsched_tz *z = cache[hash_key(key)]; z; z = z->cache_next)
    if (strcmp(z->key, key) == 0) {
      found = apsched_tz_ref(z);
      break;
    }
  pthread_mutex_unlock(&cache_lock);
  return found;
}

/* Caches tz (one reference) under key and returns the zone to hand out: tz,
 * or the one another thread cached first (then tz is released). */
static apsched_tz *cache_insert(const char *key, apsched_tz *tz) {
  unsigned b = hash_key(key);
  char *k = apsched__strdup(key);
  pthread_mutex_lock(&cache_lock);
  for (apsched_tz *z = cache[b]; z; z = z->cache_next)
    if (strcmp(z->key, key) == 0) {
      apsched_tz *winner = apsched_tz_ref(z);
      pthread_mutex_unlock(&cache_lock);
      free(k);
      apsched_tz_free(tz);
      return winner;
    }
  if (k && cache_count < CACHE_MAX) {
    tz->key = k;
    k = NULL;
    tz->cache_next = cache[b];
    cache[b] = apsched_tz_ref(tz);
    cache_count++;
  }
  pthread_mutex_unlock(&cache_lock);
  free(k);
  return tz;
}

/* ------------------------------------------------------------------ names */

/* The message of a bad name, into errbuf only: callers try a name as a file
 * first and may then read it another way (a POSIX TZ string), so this is not
 * yet a failure for apsched_last_error(). */
static int name_error(char *errbuf, size_t errlen, const char *fmt, ...) APSCHED_PRINTF(3, 4);

static int name_error(char *errbuf, size_t errlen, const char *fmt, ...) {
  if (errbuf && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
  }
  return APSCHED_EINVAL;
}

int apsched__tz_check_name(const char *name, char *errbuf, size_t errlen) {
  size_t len = strlen(name);
  if (len == 0) return name_error(errbuf, errlen, "empty time zone name");
  if (len > APSCHED__TZ_NAME_MAX)
    return name_error(errbuf, errlen,
                         "time zone name of %zu bytes is longer than %d", len,
                         APSCHED__TZ_NAME_MAX);
  if (name[0] == '/')
    return name_error(errbuf, errlen,
                         "time zone name '%s' must be relative (like 'Europe/Berlin')", name);
  const char *comp = name;
  for (const char *p = name;; p++) {
    char ch = *p;
    if (ch == '/' || ch == '\0') {
      size_t n = (size_t)(p - comp);
      if (n == 0)
        return name_error(errbuf, errlen,
                             "time zone name '%s' has an empty path component", name);
      if (comp[0] == '.')
        return name_error(errbuf, errlen,
                             "time zone name '%s': a component may not start with '.'", name);
      if (ch == '\0') break;
      comp = p + 1;
      continue;
    }
    bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '+' || ch == '.';
    if (!ok)
      return name_error(errbuf, errlen,
                           "time zone name '%s': character '%c' is not allowed (letters, digits, "
                           "'/', '_', '-', '+', '.')",
                           name, (ch >= 0x20 && ch < 0x7f) ? ch : '?');
  }
  return APSCHED_OK;
}

static int digits(const char **p, int max, int *val) {
  int n = 0, v = 0;
  while (n < max && **p >= '0' && **p <= '9') {
    v = v * 10 + (**p - '0');
    (*p)++;
    n++;
  }
  *val = v;
  return n;
}

int apsched__tz_parse_offset_name(const char *name, int32_t *utoff, char *errbuf, size_t errlen) {
  const char *p = name;
  if (strncasecmp(p, "UTC", 3) == 0 && (p[3] == '+' || p[3] == '-')) p += 3;
  if (*p != '+' && *p != '-') return 0;
  int sign = *p++ == '-' ? -1 : 1, h, m = 0, s = 0;
  int nh = digits(&p, 2, &h);
  if (nh == 0) goto syntax;
  if (*p == ':') {
    p++;
    if (digits(&p, 2, &m) != 2) goto syntax;
    if (*p == ':') {
      p++;
      if (digits(&p, 2, &s) != 2) goto syntax;
    }
  } else if (nh == 2 && *p >= '0' && *p <= '9') {
    if (digits(&p, 2, &m) != 2) goto syntax; /* "+0545" */
  }
  if (*p) goto syntax;
  if (h > 23 || m > 59 || s > 59)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "UTC offset '%s' is out of range (hours 0..23, minutes and seconds 0..59)",
                         name);
  *utoff = sign * (h * 3600 + m * 60 + s);
  return 1;
syntax:
  return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                       "UTC offset '%s' is malformed (expected like '+05:45', '-03', 'UTC+5')",
                       name);
}

/* True if name could be meant as a POSIX TZ string rather than a file. */
static bool looks_posix(const char *name) {
  if (name[0] == '<' || strchr(name, ',')) return true;
  const char *p = name;
  while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) p++;
  return p - name >= 3 && (*p == '+' || *p == '-' || (*p >= '0' && *p <= '9'));
}

/* ------------------------------------------------------------------ files */

/* Internal result: no such regular file (nothing written to errbuf). */
#define MISSING 1

/* Loads the TZif file at path, or returns MISSING. */
static int load_file(const char *path, const char *name, apsched_tz **out, char *errbuf,
                     size_t errlen) {
  /* O_NONBLOCK: a FIFO planted in a zone directory must not hang us. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return MISSING;
    return apsched__fail(APSCHED_ENOENT, errbuf, errlen, "time zone '%s': cannot open %s: %s",
                         name, path, strerror(errno));
  }
  struct stat st;
  int rc;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return MISSING;
  }
  if (st.st_size > (off_t)APSCHED__TZIF_MAX_BYTES) {
    close(fd);
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "time zone '%s': %s is too large for a TZif file (%lld bytes)", name, path,
                         (long long)st.st_size);
  }
  size_t cap = (size_t)st.st_size + 1, len = 0;
  unsigned char *buf = malloc(cap);
  if (!buf) {
    close(fd);
    return apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "out of memory");
  }
  /* Read to EOF but never past the size seen: the file may change under us. */
  for (;;) {
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = apsched__fail(APSCHED_EINVAL, errbuf, errlen, "time zone '%s': cannot read %s: %s",
                         name, path, strerror(errno));
      free(buf);
      close(fd);
      return rc;
    }
    if (n == 0 || (len += (size_t)n) == cap) break;
  }
  close(fd);
  rc = apsched__tzif_parse(buf, len, name, out, errbuf, errlen);
  free(buf);
  return rc;
}

/* Cached load of dir/file, reported as name; MISSING if there is no file. */
static int get_file(const char *dir, const char *file, const char *name, apsched_tz **out,
                    char *errbuf, size_t errlen) {
  char key[2 * APSCHED__TZ_NAME_MAX + 64];
  int n = snprintf(key, sizeof key, "F:%s/%s", dir, file);
  if (n < 0 || (size_t)n >= sizeof key)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "time zone '%s': path too long", name);
  apsched_tz *tz = cache_find(key);
  if (!tz) {
    int rc = load_file(key + 2, name, &tz, errbuf, errlen);
    if (rc != APSCHED_OK) return rc;
    tz = cache_insert(key, tz);
  }
  *out = tz;
  return APSCHED_OK;
}

/* A name under $TZDIR, then the system directory; MISSING if in neither. */
static int get_iana(const char *name, apsched_tz **out, char *errbuf, size_t errlen) {
  const char *env = getenv("TZDIR");
  int rc = MISSING;
  if (env && *env) rc = get_file(env, name, name, out, errbuf, errlen);
  if (rc == MISSING && !(env && strcmp(env, DEFAULT_TZDIR) == 0))
    rc = get_file(DEFAULT_TZDIR, name, name, out, errbuf, errlen);
  return rc;
}

/* Cached zone built from a short spec (offset or POSIX string). */
static int get_spec(const char *key, const char *spec, bool is_offset, int32_t utoff,
                    apsched_tz **out, char *errbuf, size_t errlen) {
  apsched_tz *tz = cache_find(key);
  if (!tz) {
    int rc = is_offset ? apsched__tz_fixed(utoff, &tz)
                       : apsched__tz_from_posix(spec, strlen(spec), spec, &tz, errbuf, errlen);
    if (rc == APSCHED_ENOMEM) return apsched__fail(rc, errbuf, errlen, "out of memory");
    if (rc != APSCHED_OK) return rc;
    tz = cache_insert(key, tz);
  }
  *out = tz;
  return APSCHED_OK;
}

static int get_named(const char *name, apsched_tz **out, char *errbuf, size_t errlen) {
  char key[APSCHED__TZ_NAME_MAX + 8];
  int32_t utoff;
  int rc;
  if (strcasecmp(name, "UTC") == 0 || strcmp(name, "Z") == 0) {
    *out = &utc_zone;
    return APSCHED_OK;
  }
  if (strlen(name) > APSCHED__TZ_NAME_MAX)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "time zone name of %zu bytes is longer than %d", strlen(name),
                         APSCHED__TZ_NAME_MAX);
  rc = apsched__tz_parse_offset_name(name, &utoff, errbuf, errlen);
  if (rc < 0) return rc;
  if (rc == 1) {
    snprintf(key, sizeof key, "O:%d", (int)utoff);
    return get_spec(key, NULL, true, utoff, out, errbuf, errlen);
  }
  char name_err[320];
  int name_rc = apsched__tz_check_name(name, name_err, sizeof name_err);
  if (name_rc == APSCHED_OK) {
    rc = get_iana(name, out, errbuf, errlen);
    if (rc == MISSING && !looks_posix(name))
      return apsched__fail(APSCHED_ENOENT, errbuf, errlen, "unknown time zone '%s'", name);
    if (rc != MISSING) return rc;
  } else if (!looks_posix(name)) {
    return apsched__fail(name_rc, errbuf, errlen, "%s", name_err);
  }
  snprintf(key, sizeof key, "P:%s", name);
  return get_spec(key, name, false, 0, out, errbuf, errlen);
}

/* Splits a path ".../zoneinfo/Area/City" into its directory and zone name. */
static bool split_zoneinfo_path(const char *path, char *dir, size_t dirlen, const char **name) {
  const char *hit = NULL;
  for (const char *p = strstr(path, "/zoneinfo/"); p; p = strstr(p + 1, "/zoneinfo/")) hit = p;
  if (!hit) return false;
  *name = hit + strlen("/zoneinfo/");
  size_t n = (size_t)(hit - path) + strlen("/zoneinfo");
  if (n >= dirlen || apsched__tz_check_name(*name, NULL, 0) != APSCHED_OK) return false;
  memcpy(dir, path, n);
  dir[n] = '\0';
  return true;
}

static int get_local(apsched_tz **out, char *errbuf, size_t errlen) {
  char dir[512], target[512];
  const char *name;
  const char *env = getenv("TZ");
  int rc;
  if (env) {
    const char *spec = env[0] == ':' ? env + 1 : env;
    if (!*spec) {
      *out = &utc_zone; /* TZ="" means UTC */
      return APSCHED_OK;
    }
    if (spec[0] == '/') {
      /* The environment may name a file directly (TZ=/path/to/zone). */
      const char *slash = strrchr(spec, '/');
      if (strlen(spec) >= sizeof target)
        return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "TZ environment variable is too long");
      if (split_zoneinfo_path(spec, dir, sizeof dir, &name))
        rc = get_file(dir, name, name, out, errbuf, errlen);
      else {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - spec), spec);
        rc = get_file(dir, slash + 1, spec, out, errbuf, errlen);
      }
      if (rc == MISSING)
        return apsched__fail(APSCHED_ENOENT, errbuf, errlen,
                             "TZ environment variable: no zone file '%s'", spec);
      return rc;
    }
    char inner[400] = "";
    rc = get_named(spec, out, inner, sizeof inner);
    if (rc != APSCHED_OK)
      return apsched__fail(rc, errbuf, errlen, "TZ environment variable: %s", inner);
    return rc;
  }
  /* /etc/localtime: its link target names the zone ("../usr/share/zoneinfo/Europe/Berlin"). */
  ssize_t n = readlink("/etc/localtime", target, sizeof target - 1);
  if (n > 0) {
    target[n] = '\0';
    if (split_zoneinfo_path(target, dir, sizeof dir, &name)) {
      char abs_dir[600];
      snprintf(abs_dir, sizeof abs_dir, "%s%s", dir[0] == '/' ? "" : "/etc/", dir);
      rc = get_file(abs_dir, name, name, out, errbuf, errlen);
      if (rc != MISSING) return rc;
    }
  }
  rc = get_file("/etc", "localtime", "local", out, errbuf, errlen);
  if (rc == MISSING) {
    *out = &utc_zone; /* no local zone configured: UTC, as the C library does */
    return APSCHED_OK;
  }
  return rc;
}

int apsched_tz_get(const char *name, apsched_tz **out, char *errbuf, size_t errlen) {
  if (errbuf && errlen) errbuf[0] = '\0';
  if (!out) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "tz_get: out is NULL");
  if (!name) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "tz_get: name is NULL");
  apsched_tz *tz = NULL;
  int rc = strcmp(name, "local") == 0 ? get_local(&tz, errbuf, errlen)
                                      : get_named(name, &tz, errbuf, errlen);
  if (rc == APSCHED_OK) *out = tz;
  return rc;
}
