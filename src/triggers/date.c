/* The date trigger: fires once, at run_date. */
#include "builtin.h"

#include <stdlib.h>
#include <string.h>

typedef struct date_trigger {
  apsched_trigger base;
  apsched_time_t run_date; /* 0 until bound: "when the job is added" */
} date_trigger;

static const apsched_trigger_vtable date_vtable;

/* The run dates whose text (RFC 3339 in UTC, 4-digit years) reads back. */
#define FIRST_RUN_DATE (-62167219200LL * APSCHED_SEC)  /* 0000-01-01T00:00:00Z */
#define LAST_RUN_DATE (253402300800LL * APSCHED_SEC - 1) /* 9999-12-31T23:59:59.999999Z */

static apsched_time_t date_next(const apsched_trigger *t, apsched_time_t prev, apsched_time_t now) {
  const date_trigger *d = (const date_trigger *)t;
  apsched_time_t at = d->run_date ? d->run_date : now;
  /* Once: the run date when nothing fired yet (even if it is in the past, so
   * the scheduler can report it as missed), and never after it fired. */
  if (prev == APSCHED_TIME_NONE) return at;
  return at > prev ? at : APSCHED_TIME_NONE;
}

static int date_describe(const apsched_trigger *t, char *buf, size_t len) {
  const date_trigger *d = (const date_trigger *)t;
  size_t pos = 0;
  apsched__append(buf, len, &pos, "date[");
  if (d->run_date) apsched__append_time(buf, len, &pos, "", "run_date", d->run_date);
  apsched__append(buf, len, &pos, "]");
  if (buf && len > 0 && pos >= len) buf[len - 1] = '\0';
  return (int)pos;
}

static int date_new(apsched_time_t run_date, apsched_trigger **out, char *errbuf, size_t errlen) {
  /* NONE means "no time" everywhere else: as a run date it would never fire
   * and could not be written as text. */
  if (run_date == APSCHED_TIME_NONE)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "date: run_date is APSCHED_TIME_NONE (use 0 for \"when the job is "
                         "added\")");
  /* Like the calendar trigger's dates: the text must read back, and a date
   * hundreds of millennia away is a mistake (whose "missed by" the scheduler
   * could not even compute). */
  if (run_date < FIRST_RUN_DATE || run_date > LAST_RUN_DATE) {
    char text[64];
    apsched_time_format(run_date, NULL, text, sizeof text);
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "date: run_date %s is outside the years 0000..9999 (UTC)", text);
  }
  date_trigger *d = malloc(sizeof *d);
  if (!d) return apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "date: out of memory");
  d->base.vtable = &date_vtable;
  d->base.jitter = 0;
  d->run_date = run_date;
  *out = &d->base;
  return APSCHED_OK;
}

static int date_clone(const apsched_trigger *t, apsched_trigger **out) {
  return date_new(((const date_trigger *)t)->run_date, out, NULL, 0);
}

static bool date_equal(const apsched_trigger *a, const apsched_trigger *b) {
  return ((const date_trigger *)a)->run_date == ((const date_trigger *)b)->run_date;
}

static void date_bind(apsched_trigger *t, apsched_time_t now) {
  date_trigger *d = (date_trigger *)t;
  if (d->run_date == 0) d->run_date = now;
}

static void date_destroy(apsched_trigger *t) { free(t); }

static const apsched_trigger_vtable date_vtable = {
    .version = APSCHED_TRIGGER_VTABLE_VERSION,
    .kind = "date",
    .next = date_next,
    .describe = date_describe,
    .clone = date_clone,
    .equal = date_equal,
    .bind = date_bind,
    .destroy = date_destroy,
};

size_t apsched__date_flat_size(const apsched_trigger *t) {
  return t->vtable == &date_vtable ? sizeof(date_trigger) : 0;
}

int apsched_trigger_date(const apsched_date_options *opt, apsched_trigger **out) {
  if (!out) return apsched__error(APSCHED_EINVAL, "trigger_date: out is NULL");
  return date_new(opt ? opt->run_date : 0, out, NULL, 0);
}

int apsched__date_parse_params(const char *params, apsched_trigger **out, char *errbuf,
                               size_t errlen) {
  apsched__param p[2];
  int n = apsched__split_trigger_text(params, NULL, 0, p, 2, errbuf, errlen);
  if (n < 0) return n;
  apsched_time_t run_date = 0;
  for (int i = 0; i < n; i++) {
    if (strcmp(p[i].key, "run_date") != 0)
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                           "date: unknown parameter '%s' (allowed: run_date)", p[i].key);
    int rc = apsched__param_time(&p[i], &run_date, errbuf, errlen);
    if (rc != APSCHED_OK) return rc;
  }
  return date_new(run_date, out, errbuf, errlen);
}
