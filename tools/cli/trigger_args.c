/* TRIGGER arguments of the `apsched` tool -> a library trigger.
 *
 *   cron 'CRONTAB LINE'         one argument with blanks, or an @-shorthand
 *   cron FIELD=VALUE...         APScheduler's CronTrigger fields
 *   interval FIELD=VALUE...     weeks days hours minutes seconds (decimals allowed)
 *   calendar FIELD=VALUE...     APScheduler 4's CalendarIntervalTrigger
 *   date TIME
 *   KIND[...]                   a canonical text, as apsched_trigger_describe writes it
 *
 * Every zone is --tz; every TIME is read by cli_parse_time. The field values
 * themselves are checked by the library, whose messages name the field. */
#include "cli.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) APSCHED_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return APSCHED_EINVAL;
}

/* A library message gets the trigger kind in front, unless it has one. */
static int fail_lib(char *err, size_t errlen, const char *kind, int rc, const char *msg) {
  size_t k = strlen(kind);
  if (!*msg) msg = apsched_strerror(rc);
  if (strncmp(msg, kind, k) == 0 && msg[k] == ':') return fail(err, errlen, "%s", msg);
  return fail(err, errlen, "%s: %s", kind, msg);
}

int cli_parse_time(const char *what, const char *text, const cli_context *ctx,
                   apsched_time_t *out, char *err, size_t errlen) {
  if (strcmp(text, "now") == 0) {
    *out = apsched_now();
    return APSCHED_OK;
  }
  char msg[CLI_ERR_MAX] = "";
  int rc = apsched_time_parse(text, ctx->tz, out, msg, sizeof msg);
  if (rc != APSCHED_OK) return fail(err, errlen, "%s: %s", what, *msg ? msg : apsched_strerror(rc));
  return APSCHED_OK;
}

/* ------------------------------------------------------- FIELD=VALUE lists */

/* Joins the names for "unknown field" messages. */
static void list_names(const char *const names[], char *buf, size_t len) {
  size_t pos = 0;
  buf[0] = '\0';
  for (int i = 0; names[i] && pos < len; i++)
    pos += (size_t)snprintf(buf + pos, len - pos, "%s%s", i ? ", " : "", names[i]);
}

/* Sorts FIELD=VALUE arguments into values[i] for names[i] (NULL when not
 * given). Unknown, repeated and malformed arguments are errors. */
static int split_fields(const char *kind, int n, char *const args[], const char *const names[],
                        const char *values[], char *err, size_t errlen) {
  int count = 0;
  while (names[count]) values[count++] = NULL;
  for (int a = 0; a < n; a++) {
    const char *eq = strchr(args[a], '=');
    if (!eq || eq == args[a]) {
      if (strcmp(kind, "cron") == 0)
        return fail(err, errlen,
                    "cron: '%s' is not FIELD=VALUE (a crontab line is one argument: "
                    "cron '0 2 * * *')",
                    args[a]);
      return fail(err, errlen, "%s: '%s' is not FIELD=VALUE", kind, args[a]);
    }
    size_t len = (size_t)(eq - args[a]);
    int i = 0;
    while (names[i] && !(strlen(names[i]) == len && strncmp(names[i], args[a], len) == 0)) i++;
    if (!names[i]) {
      if (len == 8 && strncmp(args[a], "timezone", len) == 0)
        return fail(err, errlen, "%s: timezone: the trigger's zone is set with --tz ZONE", kind);
      char allowed[256];
      list_names(names, allowed, sizeof allowed);
      return fail(err, errlen, "%s: unknown field '%.*s' (fields: %s)", kind, (int)len, args[a],
                  allowed);
    }
    if (values[i]) return fail(err, errlen, "%s: %s is given twice", kind, names[i]);
    values[i] = eq + 1;
  }
  return APSCHED_OK;
}

/* The index of name in names (which must hold it). */
static int field_index(const char *const names[], const char *name) {
  int i = 0;
  while (strcmp(names[i], name) != 0) i++;
  return i;
}

/* Reads start_date / end_date when given; 0 means not given. */
static int read_dates(const char *kind, const char *const names[], const char *values[],
                      const cli_context *ctx, apsched_time_t *start, apsched_time_t *end,
                      char *err, size_t errlen) {
  static const char *const keys[2] = {"start_date", "end_date"};
  apsched_time_t *dest[2] = {start, end};
  for (int k = 0; k < 2; k++) {
    *dest[k] = 0;
    const char *text = values[field_index(names, keys[k])];
    if (!text) continue;
    char what[64];
    snprintf(what, sizeof what, "%s: %s", kind, keys[k]);
    int rc = cli_parse_time(what, text, ctx, dest[k], err, errlen);
    if (rc != APSCHED_OK) return rc;
  }
  return APSCHED_OK;
}

/* ------------------------------------------------------------------- cron */

static const char *const cron_names[] = {"year",   "month",  "day",        "week",
                                         "day_of_week", "hour", "minute", "second",
                                         "start_date", "end_date", NULL};

/* Where each of the first eight names goes in the options. */
static const size_t cron_offsets[] = {
    offsetof(apsched_cron_options, year),   offsetof(apsched_cron_options, month),
    offsetof(apsched_cron_options, day),    offsetof(apsched_cron_options, week),
    offsetof(apsched_cron_options, day_of_week), offsetof(apsched_cron_options, hour),
    offsetof(apsched_cron_options, minute), offsetof(apsched_cron_options, second)};

/* One argument without '=' that has blanks or starts with '@' is a crontab
 * line; anything else is read as fields (with a hint if that fails). */
static bool is_crontab_line(int n, char *const args[]) {
  if (n != 1 || strchr(args[0], '=')) return false;
  return args[0][0] == '@' || strpbrk(args[0], " \t") != NULL;
}

static int build_cron(const cli_context *ctx, int n, char *const args[], cli_trigger *out,
                      char *err, size_t errlen) {
  char msg[CLI_ERR_MAX] = "";
  int rc;
  if (n == 0)
    return fail(err, errlen,
                "cron: give a crontab line (cron '0 2 * * *') or FIELD=VALUE arguments "
                "(cron hour=2)");
  if (is_crontab_line(n, args)) {
    rc = apsched_trigger_crontab(args[0], ctx->tz_name, &out->trigger, msg, sizeof msg);
    return rc == APSCHED_OK ? rc : fail_lib(err, errlen, "cron", rc, msg);
  }
  const char *values[sizeof cron_names / sizeof cron_names[0]];
  rc = split_fields("cron", n, args, cron_names, values, err, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched_cron_options opt = {.timezone = ctx->tz_name};
  for (size_t i = 0; i < sizeof cron_offsets / sizeof cron_offsets[0]; i++)
    *(const char **)((char *)&opt + cron_offsets[i]) = values[i];
  rc = read_dates("cron", cron_names, values, ctx, &opt.start_date, &opt.end_date, err, errlen);
  if (rc != APSCHED_OK) return rc;
  rc = apsched_trigger_cron(&opt, &out->trigger, msg, sizeof msg);
  return rc == APSCHED_OK ? rc : fail_lib(err, errlen, "cron", rc, msg);
}

/* --------------------------------------------------------------- interval */

static const char *const interval_names[] = {"weeks",   "days",         "hours",
                                             "minutes", "seconds",      "microseconds",
                                             "start_date", "end_date", NULL};
static const int64_t interval_units[] = {APSCHED_WEEK,   APSCHED_DAY, APSCHED_HOUR,
                                         APSCHED_MINUTE, APSCHED_SEC, APSCHED_USEC};

/* "15" or "2.5" units -> exact microseconds (at most 6 decimals). */
static int parse_amount(const char *name, const char *text, int64_t unit, int64_t *out,
                        char *err, size_t errlen) {
  const char *s = text;
  int64_t whole = 0, frac = 0, scale = 1;
  bool digits = false;
  if (*s == '-') return fail(err, errlen, "interval: %s: '%s' is negative", name, text);
  for (; *s >= '0' && *s <= '9'; s++, digits = true) {
    if (__builtin_mul_overflow(whole, 10, &whole) ||
        __builtin_add_overflow(whole, *s - '0', &whole))
      goto too_large;
  }
  if (*s == '.') {
    for (s++; *s >= '0' && *s <= '9'; s++, digits = true) {
      if (scale == 1000000)
        return fail(err, errlen, "interval: %s: '%s' has more than 6 decimals", name, text);
      frac = frac * 10 + (*s - '0');
      scale *= 10;
    }
  }
  if (*s || !digits)
    return fail(err, errlen, "interval: %s: '%s' is not a number (like 15 or 2.5)", name, text);
  /* frac < 10^6 and unit <= one week (6.048e11 us): the product fits. */
  if (frac * unit % scale != 0)
    return fail(err, errlen, "interval: %s: '%s' is not a whole number of microseconds", name,
                text);
  int64_t w;
  if (__builtin_mul_overflow(whole, unit, &w) || __builtin_add_overflow(w, frac * unit / scale, out))
    goto too_large;
  return APSCHED_OK;
too_large:
  return fail(err, errlen, "interval: %s: '%s' is too large", name, text);
}

static int build_interval(const cli_context *ctx, int n, char *const args[], bool bind,
                          cli_trigger *out, char *err, size_t errlen) {
  const char *values[sizeof interval_names / sizeof interval_names[0]];
  int rc = split_fields("interval", n, args, interval_names, values, err, errlen);
  if (rc != APSCHED_OK) return rc;
  int64_t total = 0;
  bool any = false;
  for (size_t i = 0; i < sizeof interval_units / sizeof interval_units[0]; i++) {
    if (!values[i]) continue;
    int64_t part = 0;
    rc = parse_amount(interval_names[i], values[i], interval_units[i], &part, err, errlen);
    if (rc != APSCHED_OK) return rc;
    if (__builtin_add_overflow(total, part, &total))
      return fail(err, errlen, "interval: the interval is too long");
    any = true;
  }
  if (!any)
    return fail(err, errlen,
                "interval: give its length with weeks, days, hours, minutes or seconds "
                "(interval minutes=15)");
  apsched_interval_options opt = {.microseconds = total};
  rc = read_dates("interval", interval_names, values, ctx, &opt.start_date, &opt.end_date, err,
                  errlen);
  if (rc != APSCHED_OK) return rc;
  /* `next` lists the runs from --from on, so an interval without a start
   * starts there (APScheduler would start one interval after "now"). */
  if (!values[field_index(interval_names, "start_date")] && bind) opt.start_date = ctx->from;
  /* A start of exactly the epoch would read as "no start"; one interval
   * earlier is the same series of runs. */
  if (opt.start_date == 0 && (bind || values[field_index(interval_names, "start_date")]))
    opt.start_date = -total;
  char msg[CLI_ERR_MAX] = "";
  rc = apsched_trigger_interval(&opt, &out->trigger, msg, sizeof msg);
  return rc == APSCHED_OK ? rc : fail_lib(err, errlen, "interval", rc, msg);
}

/* --------------------------------------------------------------- calendar */

static const char *const calendar_names[] = {"years",  "months", "weeks",      "days",
                                             "hour",   "minute", "second",     "start_date",
                                             "end_date", NULL};

/* A whole number 0..INT_MAX; the library checks the tighter ranges. */
static int parse_whole(const char *name, const char *text, int *out, char *err, size_t errlen) {
  const char *s = text;
  long long v = 0;
  if (*s == '-') return fail(err, errlen, "calendar: %s: '%s' is negative", name, text);
  for (; *s >= '0' && *s <= '9'; s++) {
    v = v * 10 + (*s - '0');
    if (v > INT_MAX)
      return fail(err, errlen, "calendar: %s: '%s' is above the maximum %d", name, text, INT_MAX);
  }
  if (*s || s == text)
    return fail(err, errlen, "calendar: %s: '%s' is not a whole number", name, text);
  *out = (int)v;
  return APSCHED_OK;
}

static int build_calendar(const cli_context *ctx, int n, char *const args[], cli_trigger *out,
                          char *err, size_t errlen) {
  const char *values[sizeof calendar_names / sizeof calendar_names[0]];
  int rc = split_fields("calendar", n, args, calendar_names, values, err, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched_calendar_options opt = {.timezone = ctx->tz_name};
  int *ints[] = {&opt.years, &opt.months, &opt.weeks, &opt.days,
                 &opt.hour,  &opt.minute, &opt.second};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    if (!values[i]) continue;
    rc = parse_whole(calendar_names[i], values[i], ints[i], err, errlen);
    if (rc != APSCHED_OK) return rc;
  }
  rc = read_dates("calendar", calendar_names, values, ctx, &opt.start_date, &opt.end_date, err,
                  errlen);
  if (rc != APSCHED_OK) return rc;
  /* Without start_date the calendar starts at the `now` it is asked with
   * (--from): --from's local date is its day 0. */
  char msg[CLI_ERR_MAX] = "";
  rc = apsched_trigger_calendar(&opt, &out->trigger, msg, sizeof msg);
  return rc == APSCHED_OK ? rc : fail_lib(err, errlen, "calendar", rc, msg);
}

/* ------------------------------------------------------------------- date */

static int build_date(const cli_context *ctx, int n, char *const args[], cli_trigger *out,
                      char *err, size_t errlen) {
  if (n != 1)
    return fail(err, errlen, "date: give exactly one TIME (date 2026-05-01T09:00:00+02:00)%s",
                n ? "; quote a TIME that has blanks" : "");
  const char *text = args[0];
  if (strncmp(text, "run_date=", 9) == 0) text += 9;
  apsched_date_options opt;
  int rc = cli_parse_time("date", text, ctx, &opt.run_date, err, errlen);
  if (rc != APSCHED_OK) return rc;
  rc = apsched_trigger_date(&opt, &out->trigger);
  /* apsched_trigger_date has no errbuf: its message is the last error. */
  if (rc != APSCHED_OK) return fail_lib(err, errlen, "date", rc, apsched_last_error());
  /* Asked with now = run date, even the epoch (0, "no date") means itself. */
  out->ask_now = opt.run_date;
  return APSCHED_OK;
}

/* ------------------------------------------------------------------ entry */

int cli_trigger_build(const cli_context *ctx, int n, char *const args[], bool bind_interval,
                      cli_trigger *out, char *err, size_t errlen) {
  out->trigger = NULL;
  out->ask_now = ctx->from;
  if (n < 1) return fail(err, errlen, "missing TRIGGER (cron, interval, calendar or date)");
  const char *kind = args[0];
  if (strchr(kind, '[')) {
    /* A canonical text carries its own zone and dates; it is used as is. */
    if (n > 1)
      return fail(err, errlen, "a trigger text takes no further arguments ('%s')", args[1]);
    char msg[CLI_ERR_MAX] = "";
    int rc = apsched_trigger_parse(kind, &out->trigger, msg, sizeof msg);
    return rc == APSCHED_OK ? rc : fail(err, errlen, "trigger text: %s", msg);
  }
  if (strcmp(kind, "cron") == 0) return build_cron(ctx, n - 1, args + 1, out, err, errlen);
  if (strcmp(kind, "interval") == 0)
    return build_interval(ctx, n - 1, args + 1, bind_interval, out, err, errlen);
  if (strcmp(kind, "calendar") == 0) return build_calendar(ctx, n - 1, args + 1, out, err, errlen);
  if (strcmp(kind, "date") == 0) return build_date(ctx, n - 1, args + 1, out, err, errlen);
  return fail(err, errlen,
              "unknown trigger '%s' (cron, interval, calendar, date, or a trigger text such as "
              "\"cron[hour='2']\")",
              kind);
}
