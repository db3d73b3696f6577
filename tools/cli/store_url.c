/* Store URLs of `apsched jobs --store URL` -> a job store.
 *
 *   SCHEME://REST        SCHEME picks a row of the table below (case does
 *                        not matter); the row's open function reads REST.
 *
 * sqlite (SQLAlchemy's form):
 *   sqlite:///relative/path.db     relative to the current directory
 *   sqlite:////absolute/path.db    an absolute path (four slashes)
 *   ...?timeout=SECONDS            how long to wait for another connection's
 *                                  lock (pysqlite's timeout; default 5)
 *   ...?table_prefix=NAME          the store's table prefix (default apsched_)
 *   %XX in the path is decoded (a '?' or '%' in a file name: %3F, %25).
 *   Refused: a host (sqlite://host/x), no path (sqlite:///, in-memory in
 *   SQLAlchemy: an empty store is useless here), :memory:, other parameters.
 *
 * postgresql (libpq's URL; postgres:// too):
 *   postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]
 *   ...?schema=NAME                the store's PostgreSQL schema (default
 *                                  apsched); every other parameter is
 *                                  libpq's (host=/run/postgresql, sslmode, ...)
 *   Only import creates a schema that does not exist.
 *
 * redis (the library's URLs, plus ?prefix=NAME, the key prefix; default apsched):
 *   redis://[[user]:password@]host[:port][/db][?prefix=NAME]
 *   unix:///path/to/redis.sock[?db=N][&password=P][&prefix=NAME]
 *   Only import creates a prefix that does not exist.
 *
 * A new store kind is one more row and one open function.
 * A kind whose library was not found when the tool was built keeps its row,
 * with what it needs, so the message says what is missing. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifdef APSCHED_CLI_HAVE_SQLITE
#include <apsched_sqlite.h>
#endif
#ifdef APSCHED_CLI_HAVE_PG
#include <apsched_pg.h>
#endif
#ifdef APSCHED_CLI_HAVE_REDIS
#include <apsched_redis.h>
#endif

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) APSCHED_PRINTF(4, 5);

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return rc;
}

/* Opens the store REST names (REST: the URL after "SCHEME://"). */
typedef int (*store_open_fn)(const char *url, const char *rest, bool create, apsched_jobstore **out,
                             char *err, size_t errlen);

/* Lists the schedulers sharing the store REST names. */
typedef int (*store_schedulers_fn)(const char *url, const char *rest, cli_scheduler_visit visit,
                                   void *ud, char *err, size_t errlen);

typedef struct store_scheme {
  const char *scheme;  /* before "://" */
  store_open_fn open;  /* NULL: not built into this tool */
  const char *missing; /* when open is NULL: what building it needs */
  /* NULL: a store one scheduler uses at a time (nothing to list). */
  store_schedulers_fn schedulers;
} store_scheme;

#if defined(APSCHED_CLI_HAVE_SQLITE) || defined(APSCHED_CLI_HAVE_PG) || defined(APSCHED_CLI_HAVE_REDIS)

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes %XX escapes of text[0..len) into a new string (NULL: *bad set, or
 * out of memory). */
static char *percent_decode(const char *text, size_t len, bool *bad) {
  char *out = malloc(len + 1);
  if (!out) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] != '%') {
      out[k++] = text[i];
      continue;
    }
    /* Two hex digits must follow; %00 would cut the text short. */
    int a = i + 1 < len ? hex_digit(text[i + 1]) : -1;
    int b = i + 2 < len ? hex_digit(text[i + 2]) : -1;
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

#endif

/* ------------------------------------------------------------------ sqlite */

#ifdef APSCHED_CLI_HAVE_SQLITE

enum { SQLITE_TIMEOUT_MAX_S = 3600 };

/* Reads "timeout=S&table_prefix=P" into the options (prefix points into a
 * copy the caller frees). */
static int sqlite_query(const char *url, const char *query, apsched_sqlite_options *o,
                        char **prefix, char *err, size_t errlen) {
  const char *p = query;
  while (*p) {
    const char *end = strchr(p, '&');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    size_t klen = eq ? (size_t)(eq - p) : len;
    const char *value = eq ? eq + 1 : "";
    size_t vlen = eq ? len - klen - 1 : 0;
    if (klen == 7 && strncmp(p, "timeout", 7) == 0) {
      char text[32];
      if (vlen == 0 || vlen >= sizeof text)
        return fail(err, errlen, APSCHED_EINVAL, "%s: timeout: '%.*s' is not a number of seconds",
                    url, (int)vlen, value);
      memcpy(text, value, vlen);
      text[vlen] = '\0';
      char *stop;
      errno = 0;
      double s = strtod(text, &stop);
      if (*stop || errno || !(s >= 0) || s > SQLITE_TIMEOUT_MAX_S)
        return fail(err, errlen, APSCHED_EINVAL,
                    "%s: timeout: '%s' is not a number of seconds from 0 to %d", url, text,
                    SQLITE_TIMEOUT_MAX_S);
      /* 0 means "the default" to the store: ask for the shortest wait. */
      int ms = (int)(s * 1000 + 0.5);
      o->busy_timeout_ms = ms > 0 ? ms : 1;
    } else if (klen == 12 && strncmp(p, "table_prefix", 12) == 0) {
      bool bad = false;
      free(*prefix);
      *prefix = percent_decode(value, vlen, &bad);
      if (!*prefix)
        return bad ? fail(err, errlen, APSCHED_EINVAL, "%s: table_prefix: a bad %%XX escape", url)
                   : APSCHED_ENOMEM;
      o->table_prefix = *prefix;
    } else {
      return fail(err, errlen, APSCHED_EINVAL,
                  "%s: unknown parameter '%.*s' (sqlite URLs take timeout and table_prefix)", url,
                  (int)klen, p);
    }
    p += len + (end != NULL);
  }
  return APSCHED_OK;
}

static int open_sqlite(const char *url, const char *rest, bool create, apsched_jobstore **out,
                       char *err, size_t errlen) {
  /* REST is "/PATH": the empty host of "sqlite:///", then the path, which
   * starts with '/' when it is absolute (four slashes in all). */
  if (rest[0] != '/')
    return fail(err, errlen, APSCHED_EINVAL,
                "%s: a sqlite URL has no host: sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db",
                url);
  const char *path_text = rest + 1;
  const char *q = strchr(path_text, '?');
  size_t path_len = q ? (size_t)(q - path_text) : strlen(path_text);
  if (path_len == 0)
    return fail(err, errlen, APSCHED_EINVAL,
                "%s: no file name (sqlite:///relative/path.db or sqlite:////absolute/path.db)",
                url);
  bool bad = false;
  char *path = percent_decode(path_text, path_len, &bad);
  if (!path)
    return bad ? fail(err, errlen, APSCHED_EINVAL, "%s: a bad %%XX escape in the path", url)
               : APSCHED_ENOMEM;
  char *prefix = NULL;
  apsched_sqlite_options o = {.path = path};
  int rc = APSCHED_OK;
  if (strcmp(path, ":memory:") == 0)
    rc = fail(err, errlen, APSCHED_EINVAL, "%s: an in-memory database holds no jobs to show", url);
  if (rc == APSCHED_OK && q) rc = sqlite_query(url, q + 1, &o, &prefix, err, errlen);
  struct stat st;
  if (rc == APSCHED_OK && !create && stat(path, &st) != 0)
    rc = fail(err, errlen, APSCHED_EINVAL, "%s: cannot open '%s': %s", url, path, strerror(errno));
  if (rc == APSCHED_OK) {
    /* An outside tool: no one-scheduler lock, so a running scheduler keeps
     * the file, and sees what the tool changes within its max_wait. */
    o.external = true;
    char why[CLI_ERR_MAX] = "";
    rc = apsched_sqlite_store_create(&o, out, why, sizeof why);
    if (rc != APSCHED_OK)
      fail(err, errlen, rc, "%s: %s", url,
           why[0]                    ? why
           : apsched_last_error()[0] ? apsched_last_error()
                                     : apsched_strerror(rc));
  }
  free(prefix);
  free(path);
  return rc;
}

#endif /* APSCHED_CLI_HAVE_SQLITE */

/* -------------------------------------------------------------- postgresql */

#ifdef APSCHED_CLI_HAVE_PG

/* Reads postgresql://REST into a conninfo for libpq (the URL without our
 * own parameter, schema, which libpq would refuse) and the schema (NULL:
 * the default); both malloc'd, NULL on error. */
static int pg_url(const char *url, const char *rest, char **conninfo_out, char **schema_out,
                  char *err, size_t errlen) {
  static const char scheme[] = "postgresql://"; /* libpq wants it in lower case */
  *conninfo_out = *schema_out = NULL;
  const char *q = strchr(rest, '?');
  size_t base = q ? (size_t)(q - rest) : strlen(rest);
  char *conninfo = malloc(sizeof scheme + strlen(rest) + 1);
  if (!conninfo) return APSCHED_ENOMEM;
  memcpy(conninfo, scheme, sizeof scheme - 1);
  size_t len = sizeof scheme - 1;
  memcpy(conninfo + len, rest, base);
  len += base;
  char *schema = NULL;
  int rc = APSCHED_OK;
  char sep = '?';
  for (const char *p = q ? q + 1 : ""; *p && rc == APSCHED_OK;) {
    const char *end = strchr(p, '&');
    size_t plen = end ? (size_t)(end - p) : strlen(p);
    if (plen > 7 && strncmp(p, "schema=", 7) == 0) {
      bool bad = false;
      free(schema);
      schema = percent_decode(p + 7, plen - 7, &bad);
      if (!schema)
        rc = bad ? fail(err, errlen, APSCHED_EINVAL, "%s: schema: a bad %%XX escape", url)
                 : APSCHED_ENOMEM;
    } else if (plen == 6 && strncmp(p, "schema", 6) == 0) {
      rc = fail(err, errlen, APSCHED_EINVAL, "%s: schema: no name (schema=NAME)", url);
    } else if (plen > 0) {
      conninfo[len++] = sep;
      sep = '&';
      memcpy(conninfo + len, p, plen);
      len += plen;
    }
    p += plen + (end != NULL);
  }
  conninfo[len] = '\0';
  if (rc != APSCHED_OK) {
    free(schema);
    free(conninfo);
    return rc;
  }
  *conninfo_out = conninfo;
  *schema_out = schema;
  return APSCHED_OK;
}

#endif /* APSCHED_CLI_HAVE_PG */

#if defined(APSCHED_CLI_HAVE_PG) || defined(APSCHED_CLI_HAVE_REDIS)

/* "URL: why" in err from the library's message of a failed call. */
static int library_failure(const char *url, int rc, const char *why, char *err, size_t errlen) {
  return fail(err, errlen, rc, "%s: %s", url,
              why[0]                    ? why
              : apsched_last_error()[0] ? apsched_last_error()
                                        : apsched_strerror(rc));
}

#endif

#ifdef APSCHED_CLI_HAVE_PG

static int open_pg(const char *url, const char *rest, bool create, apsched_jobstore **out,
                   char *err, size_t errlen) {
  char *conninfo, *schema;
  int rc = pg_url(url, rest, &conninfo, &schema, err, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched_pg_options o = {.conninfo = conninfo, .schema = schema, .existing_only = !create};
  char why[CLI_ERR_MAX] = "";
  rc = apsched_pg_store_create(&o, out, why, sizeof why);
  if (rc != APSCHED_OK) library_failure(url, rc, why, err, errlen);
  free(schema);
  free(conninfo);
  return rc;
}

typedef struct pg_visit {
  cli_scheduler_visit visit;
  void *ud;
} pg_visit;

static int pg_visit_one(const apsched_pg_scheduler *p, void *ud) {
  const pg_visit *v = ud;
  cli_scheduler sch = {.id = p->id, .name = p->name, .host = p->host, .pid = p->pid,
                       .started_at = p->started_at, .heartbeat_at = p->heartbeat_at,
                       .lease_ms = p->lease_ms, .alive = p->alive, .claimed = p->claimed,
                       .running = p->running};
  return v->visit(&sch, v->ud);
}

static int schedulers_pg(const char *url, const char *rest, cli_scheduler_visit visit, void *ud,
                         char *err, size_t errlen) {
  char *conninfo, *schema;
  int rc = pg_url(url, rest, &conninfo, &schema, err, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched_pg_options o = {.conninfo = conninfo, .schema = schema, .existing_only = true};
  pg_visit v = {visit, ud};
  char why[CLI_ERR_MAX] = "";
  rc = apsched_pg_schedulers(&o, pg_visit_one, &v, why, sizeof why);
  if (rc != APSCHED_OK) library_failure(url, rc, why, err, errlen);
  free(schema);
  free(conninfo);
  return rc;
}

#endif /* APSCHED_CLI_HAVE_PG */

/* ------------------------------------------------------------------- redis */

#ifdef APSCHED_CLI_HAVE_REDIS

/* Splits SCHEME://REST into the library's URL (without our own parameter,
 * prefix) and the prefix (NULL: the default); both malloc'd. redis:// URLs
 * take no other parameter; unix:// ones keep theirs for the library. */
static int redis_url(const char *url, const char *rest, char **lib_out, char **prefix_out,
                     char *err, size_t errlen) {
  *lib_out = *prefix_out = NULL;
  bool is_unix = strncasecmp(url, "unix", 4) == 0;
  const char *q = strchr(rest, '?');
  size_t base = q ? (size_t)(q - rest) : strlen(rest);
  char *lib = malloc(strlen(url) + 16);
  if (!lib) return APSCHED_ENOMEM;
  size_t len = (size_t)sprintf(lib, "%s://", is_unix ? "unix" : "redis");
  memcpy(lib + len, rest, base);
  len += base;
  char *prefix = NULL, sep = '?';
  int rc = APSCHED_OK;
  for (const char *p = q ? q + 1 : ""; *p && rc == APSCHED_OK;) {
    const char *end = strchr(p, '&');
    size_t plen = end ? (size_t)(end - p) : strlen(p);
    if (plen > 7 && strncmp(p, "prefix=", 7) == 0) {
      bool bad = false;
      free(prefix);
      prefix = percent_decode(p + 7, plen - 7, &bad);
      if (!prefix)
        rc = bad ? fail(err, errlen, APSCHED_EINVAL, "%s: prefix: a bad %%XX escape", url)
                 : APSCHED_ENOMEM;
    } else if (plen == 6 && strncmp(p, "prefix", 6) == 0) {
      rc = fail(err, errlen, APSCHED_EINVAL, "%s: prefix: no name (prefix=NAME)", url);
    } else if (!is_unix && plen > 0) {
      rc = fail(err, errlen, APSCHED_EINVAL,
                "%s: unknown parameter '%.*s' (redis URLs take prefix)", url, (int)plen, p);
    } else if (plen > 0) {
      lib[len++] = sep;
      sep = '&';
      memcpy(lib + len, p, plen);
      len += plen;
    }
    p += plen + (end != NULL);
  }
  lib[len] = '\0';
  if (rc != APSCHED_OK) {
    free(prefix);
    free(lib);
    return rc;
  }
  *lib_out = lib;
  *prefix_out = prefix;
  return APSCHED_OK;
}

static int open_redis(const char *url, const char *rest, bool create, apsched_jobstore **out,
                      char *err, size_t errlen) {
  char *lib, *prefix;
  int rc = redis_url(url, rest, &lib, &prefix, err, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched_redis_options o = {.url = lib, .prefix = prefix, .existing_only = !create};
  char why[CLI_ERR_MAX] = "";
  rc = apsched_redis_store_create(&o, out, why, sizeof why);
  if (rc != APSCHED_OK) library_failure(url, rc, why, err, errlen);
  free(prefix);
  free(lib);
  return rc;
}

typedef struct redis_visit {
  cli_scheduler_visit visit;
  void *ud;
} redis_visit;

static int redis_visit_one(const apsched_redis_scheduler *p, void *ud) {
  const redis_visit *v = ud;
  cli_scheduler sch = {.id = p->id, .name = p->name, .host = p->host, .pid = p->pid,
                       .started_at = p->started_at, .heartbeat_at = p->heartbeat_at,
                       .lease_ms = p->lease_ms, .alive = p->alive, .claimed = p->claimed,
                       .running = p->running};
  return v->visit(&sch, v->ud);
}

static int schedulers_redis(const char *url, const char *rest, cli_scheduler_visit visit, void *ud,
                            char *err, size_t errlen) {
  char *lib, *prefix;
  int rc = redis_url(url, rest, &lib, &prefix, err, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched_redis_options o = {.url = lib, .prefix = prefix, .existing_only = true};
  redis_visit v = {visit, ud};
  char why[CLI_ERR_MAX] = "";
  rc = apsched_redis_schedulers(&o, redis_visit_one, &v, why, sizeof why);
  if (rc != APSCHED_OK) library_failure(url, rc, why, err, errlen);
  free(prefix);
  free(lib);
  return rc;
}

#endif /* APSCHED_CLI_HAVE_REDIS */

/* ------------------------------------------------------------------- table */

static const store_scheme schemes[] = {
#ifdef APSCHED_CLI_HAVE_SQLITE
    {"sqlite", open_sqlite, NULL},
#else
    {"sqlite", NULL,
     "the SQLite job store (libapsched-sqlite; it is built when SQLite 3, libsqlite3-dev, "
     "is found)"},
#endif
#ifdef APSCHED_CLI_HAVE_PG
    {"postgresql", open_pg, NULL, schedulers_pg},
    {"postgres", open_pg, NULL, schedulers_pg},
#else
    {"postgresql", NULL,
     "the PostgreSQL job store (libapsched-pg; it is built when libpq, libpq-dev, is found)"},
    {"postgres", NULL,
     "the PostgreSQL job store (libapsched-pg; it is built when libpq, libpq-dev, is found)"},
#endif
#ifdef APSCHED_CLI_HAVE_REDIS
    {"redis", open_redis, NULL, schedulers_redis},
    {"unix", open_redis, NULL, schedulers_redis},
#else
    {"redis", NULL,
     "the Redis job store (libapsched-redis; it is built when hiredis, libhiredis-dev, is found)"},
    {"unix", NULL,
     "the Redis job store (libapsched-redis; it is built when hiredis, libhiredis-dev, is found)"},
#endif
};

enum { SCHEME_COUNT = sizeof schemes / sizeof schemes[0] };

/* The row of the table url's scheme picks; NULL with the message in err. */
static const store_scheme *find_scheme(const char *url, size_t *scheme_len, int *rc, char *err,
                                       size_t errlen) {
  /* SCHEME: a letter, then letters, digits, '+', '-', '.' (RFC 3986). */
  size_t n = 0;
  while ((url[n] >= 'a' && url[n] <= 'z') || (url[n] >= 'A' && url[n] <= 'Z') ||
         (n > 0 &&
          ((url[n] >= '0' && url[n] <= '9') || url[n] == '+' || url[n] == '-' || url[n] == '.')))
    n++;
  if (n == 0 || strncmp(url + n, "://", 3) != 0) {
    *rc = fail(err, errlen, APSCHED_EINVAL,
         "--store: '%s' is not a store URL (sqlite:///relative/path.db, "
         "sqlite:////absolute/path.db, postgresql://user@host/dbname or redis://host:port/db)",
         url);
    return NULL;
  }
  *scheme_len = n;
  for (size_t i = 0; i < SCHEME_COUNT; i++) {
    const store_scheme *sc = &schemes[i];
    if (strlen(sc->scheme) != n || strncasecmp(url, sc->scheme, n) != 0) continue;
    if (!sc->open) {
      *rc = fail(err, errlen, APSCHED_ENOENT, "--store: %s: this apsched was built without %s", url,
           sc->missing);
      return NULL;
    }
    return sc;
  }
  char known[128] = "";
  size_t pos = 0;
  for (size_t i = 0; i < SCHEME_COUNT && pos < sizeof known; i++)
    pos +=
        (size_t)snprintf(known + pos, sizeof known - pos, "%s%s", i ? ", " : "", schemes[i].scheme);
  *rc = fail(err, errlen, APSCHED_ENOENT, "--store: unknown store kind '%.*s' in '%s' (known: %s)",
             (int)n, url, url, known);
  return NULL;
}

int cli_store_open(const char *url, bool create, apsched_jobstore **out, char *err, size_t errlen) {
  *out = NULL;
  size_t n;
  int rc;
  const store_scheme *sc = find_scheme(url, &n, &rc, err, errlen);
  if (!sc) return rc;
  return sc->open(url, url + n + 3, create, out, err, errlen);
}

int cli_store_schedulers(const char *url, cli_scheduler_visit visit, void *ud, char *err,
                         size_t errlen) {
  size_t n;
  int rc;
  const store_scheme *sc = find_scheme(url, &n, &rc, err, errlen);
  if (!sc) return rc;
  if (!sc->schedulers)
    return fail(err, errlen, APSCHED_EINVAL,
                "--store: %s: a %s store serves one scheduler at a time; schedulers lists the "
                "schedulers sharing a postgresql:// or redis:// store",
                url, sc->scheme);
  return sc->schedulers(url, url + n + 3, visit, ud, err, errlen);
}
