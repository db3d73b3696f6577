/* libFuzzer target: cron trigger text. The first byte picks the form (canonical
 * "cron[...]" text, a crontab line, or eight raw field values separated by
 * newlines) and a zone; the rest is the text. Whatever parses must survive
 * describe -> parse -> equal with the same text again, and next() must be
 * strictly increasing for a few steps from a start the input also picks.
 * Whatever does not parse must say why.
 *
 * Build and run (clang with libFuzzer, from the repository root):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=all -Iinclude -Isrc -o /tmp/fuzz_cron fuzz/fuzz_cron.c \
 *     src/triggers/cron.c src/triggers/cron_parse.c src/triggers/trigger.c \
 *     src/triggers/date.c src/triggers/interval.c src/time/civil.c src/time/posix_tz.c \
 *     src/time/time_text.c src/time/tz.c src/time/tz_build.c src/time/tz_convert.c \
 *     src/time/tzif.c src/util/strings.c src/error.c -lpthread
 *   /tmp/fuzz_cron -max_total_time=60 -max_len=512
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "triggers/cron_internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static const char *const zones[] = {
    "UTC",          "Europe/Berlin",    "America/New_York", "Australia/Lord_Howe",
    "Pacific/Apia", "America/Santiago", "+05:45",           "Europe/Dublin"};

static apsched_trigger *build(unsigned mode, const char *zone, const char *text) {
  apsched_trigger *t = NULL;
  char err[512];
  err[0] = '\0';
  int rc;
  if (mode == 0) {
    char *full = malloc(strlen(text) + 8);
    if (!full) return NULL;
    sprintf(full, "cron[%s]", text);
    rc = apsched_trigger_parse(full, &t, err, sizeof err);
    free(full);
  } else if (mode == 1) {
    rc = apsched_trigger_crontab(text, zone, &t, err, sizeof err);
  } else {
    /* Eight fields, one per line; an empty line means "not given". */
    char copy[600];
    snprintf(copy, sizeof copy, "%s", text);
    apsched_cron_options o = {.timezone = zone};
    const char **slot[8] = {&o.year,        &o.month, &o.day,    &o.week,
                            &o.day_of_week, &o.hour,  &o.minute, &o.second};
    char *p = copy;
    for (int f = 0; f < 8 && p; f++) {
      char *nl = strchr(p, '\n');
      if (nl) *nl = '\0';
      if (*p) *slot[f] = p;
      p = nl ? nl + 1 : NULL;
    }
    rc = apsched_trigger_cron(&o, &t, err, sizeof err);
  }
  if (rc != APSCHED_OK) {
    /* Rejections explain themselves and leave nothing behind. */
    if (t != NULL || err[0] == '\0' || !memchr(err, '\0', sizeof err)) abort();
    return NULL;
  }
  return t;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (size < 3 || size > 512) return 0;
  unsigned mode = data[0] % 3;
  const char *zone = zones[(data[0] / 3) % (sizeof zones / sizeof zones[0])];
  /* Start anywhere in 1960 .. 2100, second-exact or not. */
  int64_t start =
      ((int64_t)data[1] * 4391 * 86400 % (140LL * 365 * 86400) - 10LL * 365 * 86400) * APSCHED_SEC +
      (data[2] & 1 ? (int64_t)data[2] * 3917 : 0);
  char text[520];
  memcpy(text, data + 3, size - 3);
  text[size - 3] = '\0';
  if (strlen(text) != size - 3) return 0; /* embedded NUL: not text */

  apsched_trigger *t = build(mode, zone, text);
  if (!t) return 0;

  char d1[2048], d2[2048];
  int n = apsched_trigger_describe(t, d1, sizeof d1);
  if (n <= 0 || (size_t)n >= sizeof d1) abort();
  apsched_trigger *back = NULL;
  char err[512];
  if (apsched_trigger_parse(d1, &back, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "canonical text does not parse: %s\n%s\n", d1, err);
    abort();
  }
  if (!apsched_trigger_equal(t, back)) abort();
  if (apsched_trigger_describe(back, d2, sizeof d2) != n || strcmp(d1, d2) != 0) abort();

  apsched_time_t prev = APSCHED_TIME_NONE;
  for (int i = 0; i < 8; i++) {
    apsched_time_t next = apsched_trigger_next(t, prev, start);
    if (next != apsched_trigger_next(back, prev, start)) abort();
    if (next == APSCHED_TIME_NONE) break;
    if (next < start || (prev != APSCHED_TIME_NONE && next <= prev)) abort();
    if (next % APSCHED_SEC != 0) abort(); /* whole seconds */
    prev = next;
  }
  apsched_trigger_free(back);
  apsched_trigger_free(t);
  return 0;
}
