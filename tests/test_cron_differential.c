/* Differential test against Python APScheduler 3.9.1 (Debian's
 * python3-apscheduler): many random CronTrigger field sets, in UTC and in
 * DST zones, each asked for several successive fire times from a random
 * moment. tools/cron_reference.py computes APScheduler's answers; where an
 * offset change lies between two steps it says so and the comparison of that
 * sequence stops there, since our DST rules differ on purpose (see the top
 * of src/triggers/cron.c). Skipped when /usr/bin/python3 or APScheduler is
 * missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apsched.h"

#define PYTHON "/usr/bin/python3"
#define STEPS 6

static const char *const field_names[8] = {"year",        "month", "day",    "week",
                                           "day_of_week", "hour",  "minute", "second"};
static const int lo[8] = {1970, 1, 1, 1, 0, 0, 0, 0};
static const int hi[8] = {9999, 12, 31, 53, 6, 23, 59, 59};

static unsigned rnd(unsigned *seed, unsigned n) { return (unsigned)rand_r(seed) % n; }

static void append(char *buf, size_t len, const char *fmt, ...) APSCHED_PRINTF(3, 4);
static void append(char *buf, size_t len, const char *fmt, ...) {
  size_t used = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + used, len - used, fmt, ap);
  va_end(ap);
}

/* One random expression valid for both implementations. */
static void gen_expr(unsigned *seed, int f, char *out, size_t len) {
  static const char *const months[] = {"jan", "Feb", "mar", "APR", "may", "jun",
                                       "jul", "aug", "Sep", "oct", "nov", "dec"};
  static const char *const days[] = {"mon", "tue", "Wed", "thu", "FRI", "sat", "sun"};
  static const char *const pos[] = {"1st", "2nd", "3rd", "4th", "5th", "last"};
  int min = lo[f], max = hi[f];
  if (f == 0) { /* keep years near the test's dates */
    min = 2000;
    max = 2040;
  }
  int a = min + (int)rnd(seed, (unsigned)(max - min + 1));
  int b = a + (int)rnd(seed, (unsigned)(max - a + 1));
  out[0] = '\0';
  int form = (int)rnd(seed, 9);
  if (f == 2 && form >= 7) { /* day specials */
    int k = (int)rnd(seed, 3);
    if (k == 0)
      snprintf(out, len, "last");
    else
      snprintf(out, len, "%s %s", pos[rnd(seed, k == 1 ? 5 : 6)], days[rnd(seed, 7)]);
    return;
  }
  if (f == 1 && form == 8) {
    int m2 = a + (int)rnd(seed, (unsigned)(12 - a + 1));
    snprintf(out, len, "%s-%s", months[a - 1], months[m2 - 1]);
    return;
  }
  if (f == 4 && form == 8) {
    snprintf(out, len, "%s-%s", days[a], days[b]);
    return;
  }
  switch (form) {
    case 0: snprintf(out, len, "*"); break;
    case 1: snprintf(out, len, "*/%d", 1 + (int)rnd(seed, (unsigned)(hi[f] - lo[f]))); break;
    case 2: snprintf(out, len, "%d", a); break;
    case 3: snprintf(out, len, "%d-%d", a, b); break;
    case 4:
      if (b > a)
        snprintf(out, len, "%d-%d/%d", a, b, 1 + (int)rnd(seed, (unsigned)(b - a)));
      else
        snprintf(out, len, "%d", a);
      break;
    case 5:
      if (a < hi[f])
        snprintf(out, len, "%d/%d", a, 1 + (int)rnd(seed, (unsigned)(hi[f] - a)));
      else
        snprintf(out, len, "%d", a);
      break;
    default: {
      int c = min + (int)rnd(seed, (unsigned)(max - min + 1));
      snprintf(out, len, "%d, %d", a, c);
    }
  }
}

typedef struct query {
  char zone[40];
  char fields[8][64];
  bool given[8];
  int64_t now;
} query;

static void gen_query(unsigned *seed, const char *zone, query *q) {
  memset(q, 0, sizeof *q);
  snprintf(q->zone, sizeof q->zone, "%s", zone);
  for (int f = 0; f < 8; f++) {
    /* Year and week rarely (they make most sets sparse); time fields often. */
    unsigned chance = f == 0 ? 8 : f == 3 ? 10 : f >= 5 ? 2 : 3;
    if (rnd(seed, chance) != 0) continue;
    q->given[f] = true;
    gen_expr(seed, f, q->fields[f], sizeof q->fields[f]);
  }
  /* Contradictions ("2nd sat" with day_of_week 'mon', week 7 in May) make
   * APScheduler search day by day up to year 9999, seconds per query; the
   * impossible cases are tested elsewhere. */
  bool day_special = q->given[2] && strpbrk(q->fields[2], "abcdefghijklmnopqrstuvwxyz");
  if (day_special) q->given[4] = false;
  if (q->given[3]) q->given[1] = q->given[2] = false;
  /* 2001 .. 2035, any second (APScheduler's zone data ends in 2037). */
  q->now = (978307200LL + (int64_t)rnd(seed, 34u * 365 * 86400)) * APSCHED_SEC +
           (rnd(seed, 4) == 0 ? (int64_t)rnd(seed, 1000000) : 0);
}

static int run_ours(const query *q, int64_t *out, char *err, size_t errlen) {
  apsched_cron_options o = {.timezone = q->zone};
  const char **slots[8] = {&o.year,        &o.month, &o.day,    &o.week,
                           &o.day_of_week, &o.hour,  &o.minute, &o.second};
  for (int f = 0; f < 8; f++)
    if (q->given[f]) *slots[f] = q->fields[f];
  apsched_trigger *t;
  int rc = apsched_trigger_cron(&o, &t, err, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched_time_t prev = APSCHED_TIME_NONE;
  for (int i = 0; i < STEPS; i++) {
    out[i] = apsched_trigger_next(t, prev, q->now);
    if (out[i] == APSCHED_TIME_NONE) break;
    prev = out[i];
  }
  apsched_trigger_free(t);
  return APSCHED_OK;
}

static void describe_query(const query *q, char *buf, size_t len) {
  buf[0] = '\0';
  for (int f = 0; f < 8; f++)
    if (q->given[f]) append(buf, len, "%s='%s' ", field_names[f], q->fields[f]);
  append(buf, len, "timezone='%s' now=%lld", q->zone, (long long)q->now);
}

static void test_against_apscheduler(void **state) {
  (void)state;
  if (access(PYTHON, X_OK) != 0 ||
      system(PYTHON " -c 'import apscheduler.triggers.cron, pytz' 2>/dev/null") != 0)
    skip();
  static const char *const zones[] = {"UTC",
                                      "Europe/Berlin",
                                      "America/New_York",
                                      "Asia/Kolkata",
                                      "Australia/Sydney",
                                      "Asia/Kathmandu",
                                      "America/Sao_Paulo"};
  const int per_zone = getenv("CRON_DIFF_QUERIES") ? atoi(getenv("CRON_DIFF_QUERIES")) : 200;
  const int nq = per_zone * (int)(sizeof zones / sizeof zones[0]);
  query *qs = calloc((size_t)nq, sizeof *qs);
  assert_non_null(qs);
  unsigned seed = 3091;
  for (int i = 0; i < nq; i++) gen_query(&seed, zones[i / per_zone], &qs[i]);

  char path[] = "/tmp/cron_diff_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  for (int i = 0; i < nq; i++) {
    fprintf(f, "%s\t{", qs[i].zone);
    bool first = true;
    for (int k = 0; k < 8; k++) {
      if (!qs[i].given[k]) continue;
      fprintf(f, "%s\"%s\": \"%s\"", first ? "" : ", ", field_names[k], qs[i].fields[k]);
      first = false;
    }
    fprintf(f, "}\t%lld\t%d\n", (long long)qs[i].now, STEPS);
  }
  fclose(f);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, PYTHON " %s/tools/cron_reference.py < %s", APSCHED_SOURCE_DIR, path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);

  /* Collect every answer first, so the query file is gone before any failure. */
  char(*answers)[512] = calloc((size_t)nq, sizeof *answers);
  assert_non_null(answers);
  int got = 0;
  while (got < nq && fgets(answers[got], sizeof answers[got], p)) got++;
  pclose(p);
  if (getenv("CRON_DIFF_KEEP"))
    printf("# queries kept in %s\n", path); /* for re-running the reference by hand */
  else
    unlink(path);
  if (got < nq) fail_msg("the reference script answered %d of %d queries", got, nq);

  int mismatches = 0, compared = 0, stopped_dst = 0;
  for (int i = 0; i < nq; i++) {
    char *line = answers[i];
    line[strcspn(line, "\n")] = '\0';
    char desc[1024], err[256] = "";
    describe_query(&qs[i], desc, sizeof desc);
    int64_t ours[STEPS];
    int rc = run_ours(&qs[i], ours, err, sizeof err);
    if (strncmp(line, "error:", 6) == 0 || rc != APSCHED_OK) {
      if (mismatches++ < 20)
        printf("MISMATCH %s: APScheduler '%s', ours '%s'\n", desc, line, rc ? err : "ok");
      continue;
    }
    char *save = NULL;
    int step = 0;
    for (char *tok = strtok_r(line, " ", &save); tok && step < STEPS;
         tok = strtok_r(NULL, " ", &save), step++) {
      if (strcmp(tok, "dst") == 0) {
        stopped_dst++;
        break;
      }
      if (strcmp(tok, "overflow") == 0) break;
      bool none = strcmp(tok, "none") == 0;
      int64_t want = none ? APSCHED_TIME_NONE : strtoll(tok, NULL, 10);
      compared++;
      if (ours[step] != want) {
        if (mismatches++ < 20)
          printf("MISMATCH %s step %d: APScheduler %s, ours %lld\n", desc, step, tok,
                 (long long)ours[step]);
        break;
      }
      if (none) break;
    }
  }
  free(answers);
  free(qs);
  printf("# %d fire times compared, %d sequences stopped at an offset change, %d mismatches\n",
         compared, stopped_dst, mismatches);
  assert_int_equal(mismatches, 0);
  /* The comparison must have had substance. */
  assert_true(compared > nq * 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_apscheduler)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
