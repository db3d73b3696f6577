/* Differential test against zdump (glibc): for every zone in tzdata.zi,
 * `zdump -v -c 1900,2100` prints each transition at t-1 and t with the local
 * time, abbreviation, DST flag and offset; apsched_tz_to_local must agree on
 * every line, and apsched_tz_from_local must map each printed local time back
 * to an instant that includes t. Links that point at an already checked file
 * are compared with their target zone instead of running zdump again. A
 * second pass checks 2099..2500, where only the footer TZ rule applies, for
 * one zone per distinct rule. zdump runs in worker threads: it is the slow part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "time/tz_internal.h"

#define ZONEINFO "/usr/share/zoneinfo"
#define WORKERS 4
#define BATCH 12

typedef struct zone_entry {
  char name[128];
  char real[PATH_MAX];
  int primary; /* index of the entry with the same file checked by zdump, or -1 */
} zone_entry;

static zone_entry *zones;
static size_t nzones;
static atomic_size_t next_zone;
static const char *zdump_range = "1900,2100";
static int batch_size = BATCH;
static atomic_long lines_checked, failures;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static int month_index(const char *m) {
  static const char *names = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const char *p = strstr(names, m);
  return p && strlen(m) == 3 ? (int)(p - names) / 3 + 1 : 0;
}

static void report(const char *fmt, ...) APSCHED_PRINTF(1, 2);
static void report(const char *fmt, ...) {
  if (atomic_fetch_add(&failures, 1) >= 40) return;
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&print_lock);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  pthread_mutex_unlock(&print_lock);
  va_end(ap);
}

/* "Europe/Berlin  Sun Mar 29 00:59:59 2026 UT = Sun Mar 29 01:59:59 2026 CET isdst=0 gmtoff=3600" */
static void check_line(const char *line, apsched_tz **cache_tz, char *cache_name) {
  char name[128], umon[8], lmon[8], abbr[32];
  int ud, uh, umi, us, uy, ld, lh, lmi, ls, ly, isdst, gmtoff;
  if (strstr(line, "= NULL")) return;
  if (sscanf(line, "%127s %*s %7s %d %d:%d:%d %d UT = %*s %7s %d %d:%d:%d %d %31s isdst=%d gmtoff=%d",
             name, umon, &ud, &uh, &umi, &us, &uy, lmon, &ld, &lh, &lmi, &ls, &ly, abbr, &isdst,
             &gmtoff) != 16) {
    report("unparsed zdump line: %s", line);
    return;
  }
  if (strcmp(name, cache_name) != 0) {
    apsched_tz_free(*cache_tz);
    *cache_tz = NULL;
    char err[256];
    snprintf(cache_name, 128, "%s", name);
    if (apsched_tz_get(name, cache_tz, err, sizeof err) != APSCHED_OK) {
      report("%s: cannot load: %s", name, err);
      return;
    }
  }
  if (!*cache_tz) return;
  int64_t t = apsched__days_from_civil(uy, month_index(umon), ud) * 86400 + uh * 3600 + umi * 60 + us;
  apsched_civil c;
  assert_int_equal(apsched_tz_to_local(*cache_tz, t * APSCHED_SEC, &c), APSCHED_OK);
  if (c.year != ly || c.month != month_index(lmon) || c.day != ld || c.hour != lh ||
      c.minute != lmi || c.second != ls || c.utc_offset != gmtoff || c.is_dst != isdst ||
      strcmp(c.abbr, abbr) != 0) {
    report("%s at %lld: got %04d-%02d-%02d %02d:%02d:%02d %s isdst=%d gmtoff=%d; zdump: %s", name,
           (long long)t, c.year, c.month, c.day, c.hour, c.minute, c.second, c.abbr, c.is_dst,
           c.utc_offset, line);
    return;
  }
  /* The printed local time must map back to a set of instants containing t. */
  apsched_local_result e, l;
  assert_int_equal(apsched_tz_from_local(*cache_tz, &c, APSCHED_EARLIER, &e), APSCHED_OK);
  assert_int_equal(apsched_tz_from_local(*cache_tz, &c, APSCHED_LATER, &l), APSCHED_OK);
  if (e.kind == APSCHED_LOCAL_SKIPPED ||
      (e.utc != t * APSCHED_SEC && l.utc != t * APSCHED_SEC) ||
      (e.kind == APSCHED_LOCAL_UNIQUE && e.utc != l.utc)) {
    report("%s: local %04d-%02d-%02d %02d:%02d:%02d (from UTC %lld) maps back to %lld/%lld kind %d",
           name, c.year, c.month, c.day, c.hour, c.minute, c.second, (long long)t,
           (long long)(e.utc / APSCHED_SEC), (long long)(l.utc / APSCHED_SEC), (int)e.kind);
    return;
  }
  atomic_fetch_add(&lines_checked, 1);
}

/* A link to an already checked file must behave exactly like its target. */
static void check_link(const zone_entry *link, const zone_entry *target) {
  apsched_tz *a = NULL, *b = NULL;
  char err[256];
  if (apsched_tz_get(link->name, &a, err, sizeof err) != APSCHED_OK ||
      apsched_tz_get(target->name, &b, err, sizeof err) != APSCHED_OK) {
    report("%s: cannot load: %s", link->name, err);
  } else {
    assert_string_equal(apsched_tz_name(a), link->name);
    for (int64_t t = -2208988800LL; t < 4102444800LL; t += 86400LL * 29 + 3607) {
      apsched_civil x, y;
      apsched_tz_to_local(a, t * APSCHED_SEC, &x);
      apsched_tz_to_local(b, t * APSCHED_SEC, &y);
      if (x.utc_offset != y.utc_offset || strcmp(x.abbr, y.abbr) != 0 || x.hour != y.hour) {
        report("link %s differs from %s at %lld", link->name, target->name, (long long)t);
        break;
      }
    }
  }
  apsched_tz_free(a);
  apsched_tz_free(b);
}

static void *worker(void *arg) {
  (void)arg;
  char *cmd = malloc(BATCH * 140 + 64);
  char line[512], cache_name[128] = "";
  apsched_tz *cache_tz = NULL;
  for (;;) {
    size_t first = atomic_fetch_add(&next_zone, (size_t)batch_size);
    if (first >= nzones) break;
    size_t pos = (size_t)sprintf(cmd, "zdump -v -c %s", zdump_range);
    int count = 0;
    for (size_t i = first; i < first + (size_t)batch_size && i < nzones; i++) {
      if (zones[i].primary >= 0) {
        check_link(&zones[i], &zones[zones[i].primary]);
        continue;
      }
      pos += (size_t)sprintf(cmd + pos, " %s", zones[i].name);
      count++;
    }
    if (!count) continue;
    FILE *p = popen(cmd, "r");
    if (!p) {
      report("popen failed");
      continue;
    }
    while (fgets(line, sizeof line, p)) {
      line[strcspn(line, "\n")] = '\0';
      check_line(line, &cache_tz, cache_name);
    }
    if (pclose(p) != 0) report("zdump failed: %s", cmd);
  }
  apsched_tz_free(cache_tz);
  free(cmd);
  return NULL;
}

static void run_workers(void) {
  pthread_t th[WORKERS];
  atomic_store(&next_zone, 0);
  for (int i = 0; i < WORKERS; i++) assert_int_equal(pthread_create(&th[i], NULL, worker, NULL), 0);
  for (int i = 0; i < WORKERS; i++) pthread_join(th[i], NULL);
}

/* The footer: the last line of a version 2+ file. */
static bool read_footer(const char *path, char *out, size_t len) {
  char buf[8192];
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  size_t n = fread(buf, 1, sizeof buf, f);
  if (n == sizeof buf) {
    fseek(f, -(long)sizeof buf, SEEK_END);
    n = fread(buf, 1, sizeof buf, f);
  }
  fclose(f);
  if (n < 2 || buf[n - 1] != '\n') return false;
  size_t start = n - 1;
  while (start > 0 && buf[start - 1] != '\n') start--;
  snprintf(out, len, "%.*s", (int)(n - 1 - start), buf + start);
  return true;
}

static int cmp_real(const void *a, const void *b) {
  return strcmp(((const zone_entry *)a)->real, ((const zone_entry *)b)->real);
}

static void test_every_zone_matches_zdump(void **state) {
  (void)state;
  if (system("zdump --version >/dev/null 2>&1") != 0) skip();
  unsetenv("TZDIR");
  FILE *f = fopen(ZONEINFO "/tzdata.zi", "r");
  if (!f) skip();
  char line[1024], a[256], b[256], c[256];
  size_t cap = 1024;
  zones = calloc(cap, sizeof *zones);
  while (fgets(line, sizeof line, f)) {
    const char *name = NULL;
    if (line[0] == 'Z' && sscanf(line, "Z %255s", a) == 1) name = a;
    else if (line[0] == 'L' && sscanf(line, "L %255s %255s", b, c) == 2) name = c;
    if (!name || strlen(name) >= sizeof zones->name) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, ZONEINFO "/%s", name);
    if (nzones == cap) zones = realloc(zones, (cap *= 2) * sizeof *zones);
    if (!realpath(path, zones[nzones].real)) continue; /* not installed */
    memcpy(zones[nzones].name, name, strlen(name) + 1); /* length checked above */
    nzones++;
  }
  fclose(f);
  assert_true(nzones > 300);
  /* Group by file; the first name of each group is checked by zdump. */
  qsort(zones, nzones, sizeof *zones, cmp_real);
  for (size_t i = 0; i < nzones; i++)
    zones[i].primary = (i > 0 && strcmp(zones[i].real, zones[i - 1].real) == 0)
                           ? (zones[i - 1].primary >= 0 ? zones[i - 1].primary : (int)i - 1)
                           : -1;

  run_workers();
  fprintf(stderr, "zdump 1900-2100: %zu zone names, %ld lines checked, %ld failures\n", nzones,
          atomic_load(&lines_checked), atomic_load(&failures));
  assert_int_equal(atomic_load(&failures), 0);
  /* About 84,000 lines for a full tzdata; far fewer means zdump printed nothing. */
  assert_true(atomic_load(&lines_checked) > 50000);

  /* Pass 2: one zone per distinct footer rule with DST, 2099..2500. */
  static char footers[256][64];
  size_t nfooters = 0, kept = 0;
  for (size_t i = 0; i < nzones; i++) {
    char footer[64];
    if (zones[i].primary >= 0 || !read_footer(zones[i].real, footer, sizeof footer) ||
        !strchr(footer, ','))
      continue;
    size_t k = 0;
    while (k < nfooters && strcmp(footers[k], footer) != 0) k++;
    if (k < nfooters || nfooters == 256) continue;
    snprintf(footers[nfooters++], sizeof footers[0], "%s", footer);
    zones[kept++] = zones[i];
  }
  nzones = kept;
  assert_true(nzones >= 10);
  long before = atomic_load(&lines_checked);
  zdump_range = "2099,2500";
  batch_size = 1;
  run_workers();
  fprintf(stderr, "zdump 2099-2500: %zu footer rules, %ld lines checked, %ld failures\n", nzones,
          atomic_load(&lines_checked) - before, atomic_load(&failures));
  assert_int_equal(atomic_load(&failures), 0);
  assert_true(atomic_load(&lines_checked) - before > 10000);
  free(zones);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_zone_matches_zdump),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
