/* Cron field expressions -> compact matchers.
 *
 * Every field becomes a bit mask (seconds and minutes in a uint64_t, hours in
 * a uint32_t, ...), the day-of-month field additionally a few "dynamic" bits
 * ("last", "3rd fri", "last sun") resolved per month, and the year field a
 * short list of ranges. Alongside, each field's canonical text is written in
 * the field API's syntax, so that crontab strings (Sunday = 0, wrap-around
 * ranges) describe themselves in a form the field parser reads back. */
#include "cron_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *const apsched__cron_field_names[APSCHED__CRON_NFIELDS] = {
    "year", "month", "day", "week", "day_of_week", "hour", "minute", "second"};

static const int field_min[APSCHED__CRON_NFIELDS] = {APSCHED__CRON_YEAR_MIN, 1, 1, 1, 0, 0, 0, 0};
static const int field_max[APSCHED__CRON_NFIELDS] = {
    APSCHED__CRON_YEAR_MAX, 12, 31, 53, 6, 23, 59, 59};
/* APScheduler's DEFAULT_VALUES: what a field finer than the finest given one gets. */
static const char *const field_default[APSCHED__CRON_NFIELDS] = {"*", "1", "1", "*",
                                                                 "*", "0", "0", "0"};

static const char *const month_names[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec"};
/* Field API order: 0 = Monday. */
static const char *const weekday_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
static const char *const positions[6] = {"1st", "2nd", "3rd", "4th", "5th", "last"};

/* ISO weeks that days of each month can fall in, over the whole 400-year
 * Gregorian cycle (bit w = week w). Lets the parser prove "month=2 week=20"
 * impossible without searching. */
static const uint64_t month_weeks[13] = {0,
                                         0x3000000000003eull,
                                         0x3e0ull,
                                         0x7e00ull,
                                         0x7e000ull,
                                         0xfe0000ull,
                                         0xfc00000ull,
                                         0xfc000000ull,
                                         0x1fc0000000ull,
                                         0x1f800000000ull,
                                         0x1f8000000000ull,
                                         0x3f00000000000ull,
                                         0x3f000000000002ull};

enum expr_kind { EXPR_ALL, EXPR_RANGE, EXPR_LAST_DAY, EXPR_NTH_WEEKDAY, EXPR_LAST_WEEKDAY };

/* One parsed expression before it is folded into the field's matcher. */
typedef struct expr {
  int kind;
  int first, last, step; /* RANGE/ALL; step 0 = none; NTH: first = n, last = weekday */
  bool open;             /* "a/s": runs to the field maximum */
  bool names;            /* endpoints were names ("jan", "mon") */
} expr;

/* State while parsing one field. */
typedef struct field_parser {
  apsched__cron_spec *sp;
  int field;
  bool crontab; /* crontab numbering for day_of_week, wrap-around ranges */
  const char *tok;
  size_t tok_len;
  char *errbuf;
  size_t errlen;
  char *text; /* canonical text of the field */
  size_t text_pos;
  bool text_overflow;
} field_parser;

static int fail(field_parser *fp, const char *fmt, ...) APSCHED_PRINTF(2, 3);
static int fail(field_parser *fp, const char *fmt, ...) {
  /* Formatted even without errbuf: the message is also apsched_last_error(). */
  char msg[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return apsched__fail(APSCHED_EINVAL, fp->errbuf, fp->errlen, "%s: '%.*s': %s",
                       apsched__cron_field_names[fp->field],
                       (int)(fp->tok_len > 100 ? 100 : fp->tok_len), fp->tok, msg);
}

/* ---- canonical text, written without printf (parsing must stay cheap) */

static void put_str(field_parser *fp, const char *s) {
  size_t n = strlen(s);
  if (fp->text_pos + n > APSCHED__CRON_TEXT_MAX) {
    fp->text_overflow = true;
    return;
  }
  memcpy(fp->text + fp->text_pos, s, n);
  fp->text_pos += n;
  fp->text[fp->text_pos] = '\0';
}

static void put_int(field_parser *fp, int v) {
  char digits[12];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  char s[12];
  for (int i = 0; i < n; i++) s[i] = digits[n - 1 - i];
  s[n] = '\0';
  put_str(fp, s);
}

/* A value as the field API writes it: a name where the user wrote one. */
static void put_value(field_parser *fp, int v, bool names) {
  if (names && fp->field == APSCHED__CRON_MONTH) {
    put_str(fp, month_names[v - 1]);
  } else if (names && fp->field == APSCHED__CRON_DOW) {
    put_str(fp, weekday_names[v]);
  } else {
    put_int(fp, v);
  }
}

static void put_sep(field_parser *fp) {
  if (fp->text_pos > 0) put_str(fp, ",");
}

/* A set of values as a list of ranges ("1-3,7"). */
static void put_set(field_parser *fp, uint64_t set, bool names) {
  int lo = field_min[fp->field], hi = field_max[fp->field];
  for (int v = lo; v <= hi; v++) {
    if (!(set >> v & 1)) continue;
    int end = v;
    while (end + 1 <= hi && (set >> (end + 1) & 1)) end++;
    put_sep(fp);
    put_value(fp, v, names);
    if (end > v) {
      put_str(fp, "-");
      put_value(fp, end, names);
    }
    v = end;
  }
}

/* ---- lexing */

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Case-insensitive comparison of s[0..n) with a lowercase word. */
static bool word_is(const char *s, size_t n, const char *word) {
  size_t wl = strlen(word);
  if (n != wl) return false;
  for (size_t i = 0; i < n; i++)
    if (lower(s[i]) != word[i]) return false;
  return true;
}

static int lookup(const char *s, size_t n, const char *const *table, int count) {
  for (int i = 0; i < count; i++)
    if (word_is(s, n, table[i])) return i;
  return -1;
}

/* Reads a number (capped, so absurd ones still produce a range message). */
static bool read_number(const char **p, const char *end, int *out) {
  const char *s = *p;
  if (s >= end || !is_digit(*s)) return false;
  long v = 0;
  while (s < end && is_digit(*s)) {
    v = v * 10 + (*s - '0');
    if (v > 1000000) v = 1000000;
    s++;
  }
  *out = (int)v;
  *p = s;
  return true;
}

/* A weekday name in the field API's numbering (0 = Monday), or -1. */
static int weekday_of(const char *s, size_t n) { return lookup(s, n, weekday_names, 7); }

static const char *expr_forms(int field) {
  if (field == APSCHED__CRON_DAY)
    return "allowed: *, */step, a, a-b, a-b/step, a/step, last, 1st..5th or last + weekday";
  if (field == APSCHED__CRON_MONTH || field == APSCHED__CRON_DOW)
    return "allowed: *, */step, a, a-b, a-b/step, a/step, names";
  return "allowed: *, */step, a, a-b, a-b/step, a/step";
}

/* Reads a value: a number, or a month / weekday name where the field has
 * names. Names are returned in the numbering the field's numbers use. */
static int read_value(field_parser *fp, const char **p, const char *end, int *out, bool *named) {
  if (read_number(p, end, out)) return APSCHED_OK;
  const char *s = *p;
  while (s < end && is_alpha(*s)) s++;
  size_t n = (size_t)(s - *p);
  if (n == 0) return fail(fp, "unrecognized expression (%s)", expr_forms(fp->field));
  if (fp->field == APSCHED__CRON_MONTH) {
    int m = lookup(*p, n, month_names, 12);
    if (m < 0)
      return fail(fp,
                  "invalid month name '%.*s' (allowed: jan feb mar apr may jun jul aug sep "
                  "oct nov dec)",
                  (int)n, *p);
    *out = m + 1;
  } else if (fp->field == APSCHED__CRON_DOW) {
    int w = weekday_of(*p, n);
    if (w < 0)
      return fail(fp, "invalid weekday name '%.*s' (allowed: mon tue wed thu fri sat sun)", (int)n,
                  *p);
    *out = fp->crontab ? (w + 1) % 7 : w; /* crontab: sun = 0 */
  } else {
    return fail(fp, "unrecognized expression (%s)", expr_forms(fp->field));
  }
  *named = true;
  *p = s;
  return APSCHED_OK;
}

/* The day field's "last", "3rd fri", "last sun". Returns 1 if it matched. */
static int parse_day_special(field_parser *fp, expr *e) {
  const char *s = fp->tok, *end = fp->tok + fp->tok_len;
  if (word_is(s, fp->tok_len, "last")) {
    e->kind = EXPR_LAST_DAY;
    return 1;
  }
  const char *w = s;
  while (w < end && (is_alpha(*w) || is_digit(*w))) w++;
  if (w == end || *w != ' ') return 0;
  size_t pos_len = (size_t)(w - s);
  while (w < end && *w == ' ') w++;
  int pos = lookup(s, pos_len, positions, 6);
  if (pos < 0) {
    /* Only call it a bad position if the rest looks like a weekday. */
    const char *q = w;
    while (q < end && is_alpha(*q)) q++;
    if (q == end && weekday_of(w, (size_t)(end - w)) >= 0)
      return fail(fp, "invalid weekday position '%.*s' (allowed: 1st 2nd 3rd 4th 5th last)",
                  (int)pos_len, s);
    return 0;
  }
  int wd = weekday_of(w, (size_t)(end - w));
  if (wd < 0)
    return fail(fp, "invalid weekday name '%.*s' (allowed: mon tue wed thu fri sat sun)",
                (int)(end - w), w);
  e->kind = pos == 5 ? EXPR_LAST_WEEKDAY : EXPR_NTH_WEEKDAY;
  e->first = pos + 1;
  e->last = wd;
  return 1;
}

/* Parses the current token into *e (syntax only). */
static int parse_syntax(field_parser *fp, expr *e) {
  const char *p = fp->tok, *end = fp->tok + fp->tok_len;
  memset(e, 0, sizeof *e);
  if (fp->tok_len == 0) return fail(fp, "empty expression (%s)", expr_forms(fp->field));
  if (fp->field == APSCHED__CRON_DAY) {
    int rc = parse_day_special(fp, e);
    if (rc < 0) return rc;
    if (rc == 1) return APSCHED_OK;
  }
  if (*p == '*') {
    e->kind = EXPR_ALL;
    p++;
  } else {
    e->kind = EXPR_RANGE;
    if (!is_digit(*p) && !is_alpha(*p))
      return fail(fp, "unrecognized expression (%s)", expr_forms(fp->field));
    int rc = read_value(fp, &p, end, &e->first, &e->names);
    if (rc != APSCHED_OK) return rc;
    e->last = e->first;
    if (p < end && *p == '-') {
      p++;
      if (p >= end || (!is_digit(*p) && !is_alpha(*p)))
        return fail(fp, "unrecognized expression (%s)", expr_forms(fp->field));
      rc = read_value(fp, &p, end, &e->last, &e->names);
      if (rc != APSCHED_OK) return rc;
    } else if (p < end && *p == '/') {
      e->open = true;
    }
  }
  if (p < end && *p == '/') {
    p++;
    if (!read_number(&p, end, &e->step))
      return fail(fp, "unrecognized expression; a step is a number (%s)", expr_forms(fp->field));
    if (e->step == 0) return fail(fp, "the step must be at least 1");
  }
  if (p != end) return fail(fp, "unrecognized expression (%s)", expr_forms(fp->field));
  return APSCHED_OK;
}

/* The values an ALL or RANGE expression selects, as a mask over the field's
 * own numbering (crontab day_of_week: 0..7 with 0 and 7 Sunday). Validates
 * like APScheduler: limits first, then the step against the span. */
static int expr_values(field_parser *fp, expr *e, uint64_t *set) {
  int lo = field_min[fp->field], hi = field_max[fp->field];
  if (fp->crontab && fp->field == APSCHED__CRON_DOW) hi = 7;
  if (e->kind == EXPR_ALL) {
    e->first = lo;
    e->last = hi;
  } else {
    if (e->first < lo) return fail(fp, "%d is below the minimum %d", e->first, lo);
    if (e->first > hi) return fail(fp, "%d is above the maximum %d", e->first, hi);
    if (e->open) e->last = hi;
    if (e->last > hi) return fail(fp, "%d is above the maximum %d", e->last, hi);
    if (e->last < lo) return fail(fp, "%d is below the minimum %d", e->last, lo);
  }
  bool wrap = e->first > e->last;
  if (wrap && !fp->crontab)
    return fail(fp,
                "the range start %d is above its end %d (wrap-around ranges are for crontab "
                "strings only)",
                e->first, e->last);
  int first = e->first, size = hi - lo + 1;
  if (wrap && fp->crontab && fp->field == APSCHED__CRON_DOW) {
    /* Wrap around the week, Sunday counted once: "6-1" is sat, sun, mon. */
    if (first == 7) first = 0;
    size = 7;
    hi = 6;
  }
  int count = wrap ? (e->last - first + size) % size + 1 : e->last - first + 1;
  int step = e->step ? e->step : 1;
  if (e->step && e->step > count - 1)
    return fail(fp, "the step %d is larger than the range of the expression (%d)", e->step,
                count - 1);
  if (fp->field == APSCHED__CRON_YEAR) {
    *set = 0; /* years are kept as ranges, not masks */
    return APSCHED_OK;
  }
  uint64_t m = 0;
  if (!wrap && step == 1) {
    m = (e->last >= 63 ? ~0ull : ((1ull << (e->last + 1)) - 1)) & ~((1ull << first) - 1);
  } else {
    for (int i = 0; i < count; i += step) {
      int v = first + i;
      if (v > hi) v -= size;
      m |= 1ull << v;
    }
  }
  *set = m;
  return APSCHED_OK;
}

/* Crontab weekday numbers (0..7, Sunday 0 and 7) -> field API bits (0 = Monday). */
static uint8_t crontab_dow_to_field(uint64_t set) {
  uint8_t out = 0;
  for (int c = 0; c <= 7; c++)
    if (set >> c & 1) out |= (uint8_t)(1u << ((c + 6) % 7));
  return out;
}

/* Folds one expression into the spec and appends its canonical text. */
static int add_expr(field_parser *fp, expr *e) {
  apsched__cron_spec *sp = fp->sp;
  if (e->kind == EXPR_LAST_DAY) {
    sp->last_day = true;
    put_sep(fp);
    put_str(fp, "last");
    return APSCHED_OK;
  }
  if (e->kind == EXPR_NTH_WEEKDAY || e->kind == EXPR_LAST_WEEKDAY) {
    if (e->kind == EXPR_NTH_WEEKDAY)
      sp->nth[e->first - 1] |= (uint8_t)(1u << e->last);
    else
      sp->last_wd |= (uint8_t)(1u << e->last);
    put_sep(fp);
    put_str(fp, positions[e->first - 1]);
    put_str(fp, " ");
    put_str(fp, weekday_names[e->last]);
    return APSCHED_OK;
  }
  uint64_t set = 0;
  int rc = expr_values(fp, e, &set);
  if (rc != APSCHED_OK) return rc;
  if (e->kind == EXPR_ALL && (fp->field == APSCHED__CRON_HOUR || fp->field == APSCHED__CRON_MINUTE))
    sp->wildcard = true;

  bool wrap = e->first > e->last;
  switch (fp->field) {
    case APSCHED__CRON_YEAR:
      if (sp->n_years == APSCHED__CRON_YEAR_EXPRS)
        return fail(fp, "too many year expressions (at most %d)", APSCHED__CRON_YEAR_EXPRS);
      sp->years[sp->n_years].first = (int16_t)e->first;
      sp->years[sp->n_years].last = (int16_t)e->last;
      sp->years[sp->n_years].step = (int16_t)(e->step ? e->step : 1);
      sp->n_years++;
      break;
    case APSCHED__CRON_MONTH: sp->month |= (uint16_t)set; break;
    case APSCHED__CRON_DAY: sp->day |= (uint32_t)set; break;
    case APSCHED__CRON_WEEK: sp->week |= set; break;
    case APSCHED__CRON_DOW:
      if (fp->crontab) {
        /* Written once the whole field is known (see parse_field). */
        sp->dow |= crontab_dow_to_field(set);
        return APSCHED_OK;
      }
      sp->dow |= (uint8_t)set;
      break;
    case APSCHED__CRON_HOUR: sp->hour |= (uint32_t)set; break;
    case APSCHED__CRON_MINUTE: sp->minute |= set; break;
    case APSCHED__CRON_SECOND: sp->second |= set; break;
  }

  put_sep(fp);
  if (wrap) {
    /* Crontab wrap-around: the field API has none, so spell out the values. */
    if (!e->step) {
      put_value(fp, e->first, e->names);
      if (e->first < field_max[fp->field]) {
        put_str(fp, "-");
        put_value(fp, field_max[fp->field], e->names);
      }
      put_str(fp, ",");
      put_value(fp, field_min[fp->field], e->names);
      if (e->last > field_min[fp->field]) {
        put_str(fp, "-");
        put_value(fp, e->last, e->names);
      }
    } else {
      bool first = true;
      for (int v = field_min[fp->field]; v <= field_max[fp->field]; v++) {
        if (!(set >> v & 1)) continue;
        if (!first) put_str(fp, ",");
        put_value(fp, v, e->names);
        first = false;
      }
    }
  } else if (e->kind == EXPR_ALL) {
    put_str(fp, "*");
  } else {
    put_value(fp, e->first, e->names);
    if (e->open) {
      /* "a/s" */
    } else if (e->last != e->first) {
      put_str(fp, "-");
      put_value(fp, e->last, e->names);
    }
  }
  if (e->step && !wrap) {
    put_str(fp, "/");
    put_int(fp, e->step);
  }
  return APSCHED_OK;
}

/* Parses one field's text ("1-5, 7, 9-11"): comma-separated expressions,
 * blanks around commas and at the ends ignored, names case-insensitive. */
static int parse_field(apsched__cron_spec *sp, apsched__cron_text *out, int field, const char *text,
                       bool crontab, char *errbuf, size_t errlen) {
  field_parser fp = {.sp = sp,
                     .field = field,
                     .crontab = crontab,
                     .errbuf = errbuf,
                     .errlen = errlen,
                     .text = out->field[field]};
  fp.text[0] = '\0';
  const char *p = text;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    const char *start = p;
    while (*p && *p != ',') p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
    fp.tok = start;
    fp.tok_len = (size_t)(end - start);
    expr e;
    int rc = parse_syntax(&fp, &e);
    if (rc == APSCHED_OK) rc = add_expr(&fp, &e);
    if (rc != APSCHED_OK) return rc;
    if (!*p) break;
    p++;
  }
  if (crontab && field == APSCHED__CRON_DOW) {
    /* Crontab weekdays become field-API names (Sunday is 6 there, not 0). */
    if (sp->dow == 0x7f)
      put_str(&fp, "*");
    else
      put_set(&fp, sp->dow, true);
  }
  if (fp.text_overflow) {
    fp.tok = text;
    fp.tok_len = strlen(text);
    return fail(&fp, "too long: at most %d characters in canonical form", APSCHED__CRON_TEXT_MAX);
  }
  return APSCHED_OK;
}

/* Sound, cheap impossibility check: true only if no month the month field
 * allows can ever hold a matching day (whatever its length and first weekday). */
static bool provably_never(const apsched__cron_spec *sp) {
  for (int mo = 1; mo <= 12; mo++) {
    if (!(sp->month >> mo & 1)) continue;
    if (!sp->week_any && !(month_weeks[mo] & sp->week)) continue;
    int lens[2], nl = 1;
    if (mo == 2) {
      lens[0] = 28;
      lens[1] = 29;
      nl = 2;
    } else {
      lens[0] = (mo == 4 || mo == 6 || mo == 9 || mo == 11) ? 30 : 31;
    }
    for (int i = 0; i < nl; i++)
      for (int wd1 = 0; wd1 < 7; wd1++)
        if (apsched__cron_month_shape(sp, lens[i], wd1)) return false;
  }
  return true;
}

static void finish(apsched__cron_spec *sp) {
  const uint64_t all_weeks = ((1ull << 54) - 1) & ~1ull;
  sp->week_any = (sp->week & all_weeks) == all_weeks;
  sp->day_any = sp->week_any && sp->dow == 0x7f && sp->day == 0xfffffffeu;
  sp->year_any = false;
  for (int i = 0; i < sp->n_years; i++)
    if (sp->years[i].first <= APSCHED__CRON_YEAR_MIN &&
        sp->years[i].last >= APSCHED__CRON_YEAR_MAX && sp->years[i].step == 1)
      sp->year_any = true;
  sp->never = provably_never(sp);
}

int apsched__cron_parse_fields(apsched__cron_parsed *parsed, apsched__cron_text *out,
                               const char *const values[APSCHED__CRON_NFIELDS], char *errbuf,
                               size_t errlen) {
  memset(parsed, 0, sizeof *parsed);
  apsched__cron_spec *sp = &parsed->spec;
  sp->years = parsed->year_buf;
  int finest = -1;
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++)
    if (values[f]) finest = f;
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++) {
    const char *text = values[f] ? values[f] : (f < finest ? "*" : field_default[f]);
    if (finest < 0) text = "*"; /* nothing given: APScheduler fires every second */
    int rc = parse_field(sp, out, f, text, false, errbuf, errlen);
    if (rc != APSCHED_OK) return rc;
  }
  finish(sp);
  return APSCHED_OK;
}

/* ---- crontab lines */

static const struct {
  const char *name;
  const char *expansion;
} shorthands[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

int apsched__cron_parse_crontab(apsched__cron_parsed *parsed, apsched__cron_text *out,
                                const char *line, char *errbuf, size_t errlen) {
  memset(parsed, 0, sizeof *parsed);
  apsched__cron_spec *sp = &parsed->spec;
  sp->years = parsed->year_buf;
  while (*line == ' ' || *line == '\t') line++;
  const char *text = line;
  if (*line == '@') {
    const char *end = line;
    while (*end && *end != ' ' && *end != '\t') end++;
    const char *rest = end;
    while (*rest == ' ' || *rest == '\t') rest++;
    text = NULL;
    for (size_t i = 0; i < sizeof shorthands / sizeof shorthands[0] && !*rest; i++)
      if (word_is(line, (size_t)(end - line), shorthands[i].name)) text = shorthands[i].expansion;
    if (!text)
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                           "crontab '%.100s': unknown shorthand (allowed: @yearly @annually "
                           "@monthly @weekly @daily @midnight @hourly)",
                           line);
  }
  /* Split into whitespace-separated fields, each copied so it ends in NUL. */
  char buf[512];
  size_t len = strlen(text);
  if (len >= sizeof buf)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "crontab: the line is too long (%zu "
                         "characters; at most %zu)",
                         len, sizeof buf - 1);
  memcpy(buf, text, len + 1);
  char *fields[8];
  int n = 0;
  for (char *p = buf; *p;) {
    while (*p == ' ' || *p == '\t') *p++ = '\0';
    if (!*p) break;
    if (n == 8) {
      n++;
      break;
    }
    fields[n++] = p;
    while (*p && *p != ' ' && *p != '\t') p++;
  }
  if (n != 5 && n != 6)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "crontab '%.100s': expected 5 fields (minute hour day month "
                         "day_of_week) or 6 (second first), got %d%s",
                         line, n > 8 ? 8 : n, n > 8 ? " or more" : "");
  int o = n - 5;
  const char *values[APSCHED__CRON_NFIELDS] = {"*",       fields[o + 3],      fields[o + 2],
                                               "*",       fields[o + 4],      fields[o + 1],
                                               fields[o], o ? fields[0] : "0"};
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++) {
    bool crontab = f != APSCHED__CRON_YEAR && f != APSCHED__CRON_WEEK;
    int rc = parse_field(sp, out, f, values[f], crontab, errbuf, errlen);
    if (rc != APSCHED_OK) return rc;
  }
  finish(sp);
  return APSCHED_OK;
}

/* ---- comparison */

int apsched__cron_next_year(const apsched__cron_spec *sp, int y) {
  if (y < APSCHED__CRON_YEAR_MIN) y = APSCHED__CRON_YEAR_MIN;
  if (y > APSCHED__CRON_YEAR_MAX) return -1;
  if (sp->year_any) return y;
  int best = -1;
  for (int i = 0; i < sp->n_years; i++) {
    const apsched__cron_years *r = &sp->years[i];
    int v = y < r->first ? r->first : y;
    int off = (v - r->first) % r->step;
    if (off) v += r->step - off;
    if (v <= r->last && (best < 0 || v < best)) best = v;
  }
  return best;
}

static bool same_years(const apsched__cron_spec *a, const apsched__cron_spec *b) {
  if (a->year_any && b->year_any) return true;
  if (a->n_years == b->n_years &&
      memcmp(a->years, b->years, (size_t)a->n_years * sizeof a->years[0]) == 0)
    return true;
  /* Different spellings of possibly the same set: walk both. */
  for (int y = APSCHED__CRON_YEAR_MIN;;) {
    int ya = apsched__cron_next_year(a, y), yb = apsched__cron_next_year(b, y);
    if (ya != yb) return false;
    if (ya < 0) return true;
    y = ya + 1;
  }
}

bool apsched__cron_spec_equal(const apsched__cron_spec *a, const apsched__cron_spec *b) {
  return a->second == b->second && a->minute == b->minute && a->hour == b->hour &&
         a->day == b->day && a->week == b->week && a->month == b->month && a->dow == b->dow &&
         memcmp(a->nth, b->nth, sizeof a->nth) == 0 && a->last_wd == b->last_wd &&
         a->last_day == b->last_day && a->wildcard == b->wildcard && same_years(a, b);
}
