/* Internal time zone representation, shared by the TZif reader, the POSIX
 * TZ rule code, the conversions, the tests and the fuzz targets. */
#ifndef APSCHED_TZ_INTERNAL_H
#define APSCHED_TZ_INTERNAL_H

#include "../internal.h"

#include <stdbool.h>
#include <stdint.h>

/* Longest zone name accepted (IANA names, POSIX strings, offsets). */
#define APSCHED__TZ_NAME_MAX 255
/* Largest TZif file read from disk; real ones are under 10 KiB. */
#define APSCHED__TZIF_MAX_BYTES (1u << 20)
/* A footer rule is pre-expanded into the transition table through this year,
 * so conversions up to it need only the table. */
#define APSCHED__TZ_EXPAND_LAST_YEAR 2100
#define APSCHED__TZ_EXPAND_FIRST_YEAR 1900
/* Room reserved for expanded transitions (two per year, plus slack). */
#define APSCHED__TZ_EXPAND_MAX \
  (2 * (APSCHED__TZ_EXPAND_LAST_YEAR - APSCHED__TZ_EXPAND_FIRST_YEAR + 3) + 16)
/* The table also holds the rule's changes this far past rule_hi: more than
 * any local-time window (offsets span under 51 hours), so from_local never
 * needs the table and the cycle at once. */
#define APSCHED__TZ_TABLE_OVERLAP (3 * 86400)
/* POSIX rules repeat every 400 Gregorian years (146097 days, a whole number
 * of weeks); one cycle of the rule's changes, plus a margin, answers any
 * instant past the table after a shift by whole cycles. */
#define APSCHED__TZ_CYCLE_SECS (146097LL * 86400)
#define APSCHED__TZ_CYCLE_MAX (2 * 408 + 8)
#define APSCHED__SEC_PER_DAY 86400

/* One local time type: offset east of UTC, DST flag, abbreviation. */
typedef struct apsched__tz_type {
  int32_t utoff;
  uint8_t isdst;
  char abbr[16];
} apsched__tz_type;

/* When a POSIX rule changes: a date form and a local time of day. */
enum { APSCHED__RULE_JULIAN1 = 1, /* Jn: 1..365, February 29 never counted */
       APSCHED__RULE_ZERO = 2,    /* n: 0..365, February 29 counted */
       APSCHED__RULE_MWD = 3 };   /* Mm.w.d: day d of week w of month m */

typedef struct apsched__tz_rule_date {
  int kind;
  int day;                /* JULIAN1 / ZERO */
  int month, week, wday;  /* MWD: 1..12, 1..5 (5 = last), 0..6 (0 = Sunday) */
  int32_t secs;           /* local time of the change, -167 h .. 167 h */
} apsched__tz_rule_date;

/* A parsed POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3"). */
typedef struct apsched__posix_tz {
  apsched__tz_type std, dst; /* dst is meaningful only with has_dst */
  bool has_dst;
  apsched__tz_rule_date start, end; /* start: std -> dst (in std time); end: dst -> std */
} apsched__posix_tz;

/* Zone object. Immutable after construction apart from refs. Instants
 * before rule_hi use the table (at/ti, exact to rule_hi + TABLE_OVERLAP);
 * later ones, shifted by whole 400-year cycles into [cyc_base, cyc_base +
 * cycle), use the rule's cycle table. */
struct apsched_tz {
  atomic_int refs;       /* unused for the static UTC zone */
  bool is_static;
  bool has_rule;         /* rule is valid and has DST */
  uint16_t ntypes;
  uint16_t type_before;  /* type in effect before the first transition */
  uint16_t rule_std, rule_dst; /* type indices of the rule's two types */
  uint16_t cyc_type0;    /* type in effect at cyc_base */
  int32_t omin, omax;    /* smallest and largest utoff over all types */
  uint32_t ntrans, ncyc;
  int64_t rule_hi;       /* INT64_MAX without a DST rule; INT64_MIN for rule-only zones */
  int64_t cyc_base;
  int64_t *at;           /* transition instants, UTC seconds, strictly increasing */
  uint16_t *ti;          /* type index in effect from at[i] */
  int64_t *cyc_at;       /* one rule cycle of changes after cyc_base */
  uint16_t *cyc_ti;
  apsched__tz_type *types;
  apsched__posix_tz rule;
  char *name;            /* reported by apsched_tz_name */
  char *key;             /* cache key (malloc'd) or NULL when not cached */
  struct apsched_tz *cache_next;
  uint32_t cap_trans;    /* capacities, for construction */
  uint16_t cap_types;
};

/* ---- civil helpers (civil.c) */
/* Division rounding toward minus infinity; inline so constant divisors
 * become multiplications. */
static inline int64_t apsched__floor_div(int64_t a, int64_t b) {
  int64_t q = a / b, r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;
}
APSCHED_INTERNAL bool apsched__is_leap(int64_t y);
APSCHED_INTERNAL int apsched__days_in_month(int64_t y, int m);
/* Day of week of a day number: 0 = Sunday .. 6 = Saturday. */
APSCHED_INTERNAL int apsched__weekday(int64_t days);

/* ---- POSIX TZ rules (posix_tz.c) */
/* Parses s[0..len) completely; messages name the string and the problem. */
APSCHED_INTERNAL int apsched__posix_tz_parse(const char *s, size_t len, apsched__posix_tz *out,
                                             char *errbuf, size_t errlen);
/* UTC second at which DST starts / ends in year (rule with DST only). */
APSCHED_INTERNAL int64_t apsched__posix_tz_start(const apsched__posix_tz *r, int64_t year);
APSCHED_INTERNAL int64_t apsched__posix_tz_end(const apsched__posix_tz *r, int64_t year);
/* Whether DST is in effect at UTC second t. */
APSCHED_INTERNAL bool apsched__posix_tz_is_dst(const apsched__posix_tz *r, int64_t t);
/* Writes the rule's changes whose DST periods start in years [y0, y1], merged
 * and strictly increasing: at[k] is the instant, to_dst[k] the new state.
 * Returns the count (at most 2 * (y1 - y0 + 1)). */
APSCHED_INTERNAL size_t apsched__posix_tz_changes(const apsched__posix_tz *r, int64_t y0,
                                                  int64_t y1, int64_t *at, bool *to_dst);

/* ---- zone construction (tz_build.c) */
/* A zone with room for ntypes types and ntrans transitions, plus what a DST
 * rule needs if rule_dst; name is copied. NULL on allocation failure. */
APSCHED_INTERNAL apsched_tz *apsched__tz_alloc(const char *name, size_t ntypes, size_t ntrans,
                                               bool rule_dst);
/* Completes a zone whose types, transitions and type_before are filled in:
 * appends the rule's types, expands the rule, computes the offset bounds.
 * rule may be NULL. The zone gets one reference. */
APSCHED_INTERNAL int apsched__tz_finish(apsched_tz *tz, const apsched__posix_tz *rule,
                                        char *errbuf, size_t errlen);
/* Frees a zone regardless of its reference count (not the static UTC). */
APSCHED_INTERNAL void apsched__tz_destroy(apsched_tz *tz);
/* An uncached zone from a POSIX TZ string s[0..len); name is reported. */
APSCHED_INTERNAL int apsched__tz_from_posix(const char *s, size_t len, const char *name,
                                            apsched_tz **out, char *errbuf, size_t errlen);
/* An uncached zone with a fixed offset (seconds east of UTC). */
APSCHED_INTERNAL int apsched__tz_fixed(int32_t utoff, apsched_tz **out);

/* ---- TZif (tzif.c) */
/* Parses a TZif file image; every count is checked against len before any
 * allocation. name is reported by the zone and used in messages. */
APSCHED_INTERNAL int apsched__tzif_parse(const unsigned char *data, size_t len, const char *name,
                                         apsched_tz **out, char *errbuf, size_t errlen);

/* ---- names (tz.c) */
/* 0 if name is a safe IANA-style relative path; else APSCHED_EINVAL with a
 * message in errbuf (not in apsched_last_error(): callers may fall back). */
APSCHED_INTERNAL int apsched__tz_check_name(const char *name, char *errbuf, size_t errlen);
/* Parses "+05:45", "-3", "UTC+5", "UTC-03:00". Returns 1 and *utoff if name
 * has that form, 0 if it does not, or a negative error for a bad offset. */
APSCHED_INTERNAL int apsched__tz_parse_offset_name(const char *name, int32_t *utoff,
                                                   char *errbuf, size_t errlen);

/* ---- conversions (tz_convert.c) */
/* apsched_tz_to_local / apsched_tz_from_local without a message for
 * apsched_last_error(): for callers to which a failure is an answer (a
 * trigger's next() that runs out of time), not an error of theirs. */
APSCHED_INTERNAL int apsched__tz_to_local(const apsched_tz *tz, apsched_time_t t,
                                          apsched_civil *out);
APSCHED_INTERNAL int apsched__tz_from_local(const apsched_tz *tz, const apsched_civil *lt,
                                            apsched_disambiguate how, apsched_local_result *out);
/* The type in effect at UTC second t. */
APSCHED_INTERNAL const apsched__tz_type *apsched__tz_type_at(const apsched_tz *tz, int64_t t);

#endif
