/* Cron trigger internals shared by the expression parser (cron_parse.c), the
 * trigger itself (cron.c) and the tests. */
#ifndef APSCHED_TRIGGERS_CRON_INTERNAL_H
#define APSCHED_TRIGGERS_CRON_INTERNAL_H

#include "../internal.h"

#include <stdatomic.h>

/* Field order is APScheduler's: most significant first. */
enum {
  APSCHED__CRON_YEAR,
  APSCHED__CRON_MONTH,
  APSCHED__CRON_DAY,
  APSCHED__CRON_WEEK,
  APSCHED__CRON_DOW,
  APSCHED__CRON_HOUR,
  APSCHED__CRON_MINUTE,
  APSCHED__CRON_SECOND,
  APSCHED__CRON_NFIELDS
};

/* APScheduler's MIN_VALUES / MAX_VALUES for the year field: the search never
 * looks at local years outside this range, which bounds it. */
#define APSCHED__CRON_YEAR_MIN 1970
#define APSCHED__CRON_YEAR_MAX 9999
/* Longest canonical text of one field (it must fit a canonical-text value). */
#define APSCHED__CRON_TEXT_MAX 200
/* Most comma-separated expressions the year field may hold. */
#define APSCHED__CRON_YEAR_EXPRS 48

/* One expression of the year field ("*", "*" "/s", "a", "a-b", "a-b/s", "a/s"). */
typedef struct apsched__cron_years {
  int16_t first, last, step; /* step 1 when none */
} apsched__cron_years;

/* A parsed cron schedule: one compact matcher per field (about 70 bytes and
 * the year ranges; jobs with the same fields share one, see cron_shapes.c). */
typedef struct apsched__cron_spec {
  uint64_t second; /* bit v: second v matches */
  uint64_t minute; /* bit v: minute v */
  uint64_t week;   /* bit w: ISO week w (1..53) */
  uint32_t hour;   /* bit h */
  uint32_t day;    /* bit d: day of month d given as a number, range or step */
  uint16_t month;  /* bit m (1..12) */
  uint8_t dow;     /* bit w: weekday w, 0 = Monday */
  uint8_t nth[5];  /* nth[n - 1] bit w: "the n-th weekday w of the month" */
  uint8_t last_wd; /* bit w: "the last weekday w of the month" */
  bool last_day;   /* "last": the last day of the month */
  bool week_any;   /* week is every week */
  bool day_any;    /* day, week and day_of_week match every day */
  bool year_any;   /* every year */
  bool wildcard;   /* hour or minute holds '*': DST "wildcard job" (DESIGN.md section 3) */
  bool never;      /* provably no day ever matches */
  int n_years;
  /* n_years ranges: the parser's buffer (apsched__cron_parsed), or the tail
   * of the shared schedule that holds this spec (cron_shapes.c). */
  apsched__cron_years *years;
} apsched__cron_spec;

/* What the parsers write: a spec and room for the most year ranges it may
 * hold. Not copied by value (spec.years points into it). */
typedef struct apsched__cron_parsed {
  apsched__cron_spec spec;
  apsched__cron_years year_buf[APSCHED__CRON_YEAR_EXPRS];
} apsched__cron_parsed;

/* The canonical text of every field, in the field API's syntax and numbering
 * (0 = Monday), as the parser writes it; a scratch buffer while parsing. */
typedef struct apsched__cron_text {
  char field[APSCHED__CRON_NFIELDS][APSCHED__CRON_TEXT_MAX + 1];
} apsched__cron_text;

/* The field names, "year" .. "second". */
APSCHED_INTERNAL extern const char *const apsched__cron_field_names[APSCHED__CRON_NFIELDS];

/* Parses APScheduler CronTrigger fields; values[i] NULL means "not given"
 * and gets APScheduler's default (coarser than the finest given field: '*',
 * finer: the minimum). Errors name the field, the expression and the limit. */
APSCHED_INTERNAL int apsched__cron_parse_fields(apsched__cron_parsed *out, apsched__cron_text *text,
                                                const char *const values[APSCHED__CRON_NFIELDS],
                                                char *errbuf, size_t errlen);
/* Parses a crontab line: "m h dom mon dow", "s m h dom mon dow", or an
 * @-shorthand. Crontab numbering (0 and 7 = Sunday) and wrap-around ranges
 * are converted to the field form, so the canonical text uses the field API. */
APSCHED_INTERNAL int apsched__cron_parse_crontab(apsched__cron_parsed *out, apsched__cron_text *text,
                                                 const char *line, char *errbuf, size_t errlen);
/* True when both specs match exactly the same local times with the same DST mode. */
APSCHED_INTERNAL bool apsched__cron_spec_equal(const apsched__cron_spec *a,
                                               const apsched__cron_spec *b);
/* The smallest year >= y in the year field, or -1. */
APSCHED_INTERNAL int apsched__cron_next_year(const apsched__cron_spec *sp, int y);

/* A parsed schedule shared by every cron trigger with the same fields (the
 * same canonical texts): jobs that all run "0 * * * *" hold one spec and one
 * text between them, and a trigger is a few dozen bytes. Immutable once made;
 * counted references; kept in a process-wide table while referenced. */
typedef struct apsched__cron_shape {
  apsched__cron_spec spec; /* spec.years points into this allocation */
  const char *text;        /* the fields' texts, year .. second, each NUL-terminated */
  size_t text_len;
  /* The table's own: */
  atomic_size_t refs;
  uint64_t hash;
  struct apsched__cron_shape *next;
} apsched__cron_shape;

/* The shared schedule for a parse result and its texts: a new reference to
 * the one already in use with the same texts, or a new one (APSCHED_ENOMEM). */
APSCHED_INTERNAL int apsched__cron_shape_get(const apsched__cron_parsed *parsed,
                                             const apsched__cron_text *text,
                                             const apsched__cron_shape **out);
/* One more reference (a copy of a trigger). */
APSCHED_INTERNAL void apsched__cron_shape_ref(const apsched__cron_shape *shape);
/* Drops a reference; the last one removes the schedule from the table. */
APSCHED_INTERNAL void apsched__cron_shape_release(const apsched__cron_shape *shape);
/* How many distinct schedules the table holds (tests). */
APSCHED_INTERNAL size_t apsched__cron_shape_count(void);

/* Local civil time, whole seconds. */
typedef struct apsched__cron_civil {
  int year, month, day, hour, minute, second;
} apsched__cron_civil;

/* Moves *c to the first local civil time >= *c that matches every field.
 * Returns false when there is none up to the end of APSCHED__CRON_YEAR_MAX.
 * Bounded: at most one pass over each year, and at most 400 years (a full
 * Gregorian cycle) examined day by day. */
APSCHED_INTERNAL bool apsched__cron_next_local(const apsched__cron_spec *sp,
                                               apsched__cron_civil *c);

/* The days (bits 1..31) of a month of md days whose 1st is weekday wd1
 * (0 = Monday) that the day and day_of_week fields accept; the week field is
 * applied separately (it depends on the year). */
static inline uint32_t apsched__cron_month_shape(const apsched__cron_spec *sp, int md, int wd1) {
  uint32_t m = sp->day;
  if (sp->last_day) m |= 1u << md;
  for (int n = 0; n < 5; n++) {
    if (!sp->nth[n]) continue;
    for (int w = 0; w < 7; w++) {
      int day = 1 + (w - wd1 + 7) % 7 + 7 * n;
      if ((sp->nth[n] >> w & 1) && day <= md) m |= 1u << day;
    }
  }
  if (sp->last_wd) {
    for (int w = 0; w < 7; w++) {
      if (!(sp->last_wd >> w & 1)) continue;
      int first = 1 + (w - wd1 + 7) % 7;
      m |= 1u << (first + (md - first) / 7 * 7);
    }
  }
  /* The weekday field as a repeating 7-day pattern laid over days 1..35. */
  uint32_t rot = ((uint32_t)sp->dow >> wd1 | (uint32_t)sp->dow << (7 - wd1)) & 0x7f;
  uint64_t pattern = (uint64_t)rot | (uint64_t)rot << 7 | (uint64_t)rot << 14 |
                     (uint64_t)rot << 21 | (uint64_t)rot << 28;
  uint32_t in_month = (uint32_t)(((1ull << (md + 1)) - 1) & ~1ull);
  return m & (uint32_t)(pattern << 1) & in_month;
}

/* Parser for the text between the brackets of "cron[...]" (trigger.c's table). */
APSCHED_INTERNAL int apsched__cron_parse_params(const char *params, apsched_trigger **out,
                                                char *errbuf, size_t errlen);

#endif
