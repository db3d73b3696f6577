/* Zone construction: one allocation per zone. A footer rule is appended to
 * the transition table through APSCHED__TZ_EXPAND_LAST_YEAR, and one 400-year
 * cycle of its changes is stored for everything later, so every conversion
 * is a binary search. */
#include "tz_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

apsched_tz *apsched__tz_alloc(const char *name, size_t ntypes, size_t ntrans, bool rule_dst) {
  if (ntypes > 256 || ntrans > (size_t)UINT32_MAX - APSCHED__TZ_EXPAND_MAX) return NULL;
  size_t cap_trans = ntrans + (rule_dst ? APSCHED__TZ_EXPAND_MAX : 0);
  size_t cap_cyc = rule_dst ? APSCHED__TZ_CYCLE_MAX : 0, cap_types = ntypes + 2;
  size_t name_len = strlen(name) + 1;
  size_t off_at = align8(sizeof(apsched_tz));
  size_t off_types = align8(off_at + (cap_trans + cap_cyc) * sizeof(int64_t));
  size_t off_ti = align8(off_types + cap_types * sizeof(apsched__tz_type));
  size_t off_name = off_ti + (cap_trans + cap_cyc) * sizeof(uint16_t);
  char *mem = calloc(1, off_name + name_len);
  if (!mem) return NULL;
  apsched_tz *tz = (apsched_tz *)mem;
  tz->at = (int64_t *)(mem + off_at);
  tz->cyc_at = tz->at + cap_trans;
  tz->types = (apsched__tz_type *)(mem + off_types);
  tz->ti = (uint16_t *)(mem + off_ti);
  tz->cyc_ti = tz->ti + cap_trans;
  tz->name = mem + off_name;
  memcpy(tz->name, name, name_len);
  tz->cap_trans = (uint32_t)cap_trans;
  tz->cap_types = (uint16_t)cap_types;
  tz->rule_hi = INT64_MAX;
  atomic_init(&tz->refs, 1);
  return tz;
}

void apsched__tz_destroy(apsched_tz *tz) {
  if (!tz || tz->is_static) return;
  free(tz->key);
  free(tz);
}

static uint16_t add_type(apsched_tz *tz, const apsched__tz_type *t) {
  for (uint16_t i = 0; i < tz->ntypes; i++) {
    const apsched__tz_type *o = &tz->types[i];
    if (o->utoff == t->utoff && o->isdst == t->isdst && strcmp(o->abbr, t->abbr) == 0) return i;
  }
  tz->types[tz->ntypes] = *t;
  return tz->ntypes++;
}

static int64_t utc_year(int64_t t) {
  int64_t y;
  int m, d;
  apsched__civil_from_days(apsched__floor_div(t, APSCHED__SEC_PER_DAY), &y, &m, &d);
  return y;
}

/* Writes the rule's changes in (after, before), from DST periods starting in
 * years [y0, y1], to at/ti; returns how many. cap >= 2 * (y1 - y0 + 1). */
static uint32_t rule_changes(const apsched_tz *tz, int64_t y0, int64_t y1, int64_t after,
                             int64_t before, int64_t *at, uint16_t *ti) {
  int64_t all[APSCHED__TZ_CYCLE_MAX];
  bool to_dst[APSCHED__TZ_CYCLE_MAX];
  uint32_t k = 0;
  if (y1 < y0 || 2 * (y1 - y0 + 1) > APSCHED__TZ_CYCLE_MAX) return 0;
  size_t n = apsched__posix_tz_changes(&tz->rule, y0, y1, all, to_dst);
  for (size_t i = 0; i < n; i++) {
    if (all[i] <= after || all[i] >= before) continue;
    at[k] = all[i];
    ti[k++] = to_dst[i] ? tz->rule_dst : tz->rule_std;
  }
  return k;
}

static uint16_t rule_type_at(const apsched_tz *tz, int64_t t) {
  return apsched__posix_tz_is_dst(&tz->rule, t) ? tz->rule_dst : tz->rule_std;
}

int apsched__tz_finish(apsched_tz *tz, const apsched__posix_tz *rule, char *errbuf,
                       size_t errlen) {
  if (rule) {
    uint16_t istd = add_type(tz, &rule->std);
    if (!rule->has_dst) {
      /* The footer governs from the last transition on (as the C library does). */
      if (tz->ntrans > 0) tz->ti[tz->ntrans - 1] = istd;
      else if (tz->ntypes == 1) tz->type_before = istd;
    } else if (tz->cap_trans >= tz->ntrans + APSCHED__TZ_EXPAND_MAX) {
      tz->rule = *rule;
      tz->rule_std = istd;
      tz->rule_dst = add_type(tz, &rule->dst);
      tz->has_rule = true;
      int64_t hi = apsched__posix_tz_start(rule, APSCHED__TZ_EXPAND_LAST_YEAR + 1);
      if (tz->ntrans > 0) {
        /* The rule governs from the last transition on; the table caches it
         * through EXPAND_LAST_YEAR. */
        int64_t last = tz->at[tz->ntrans - 1];
        int64_t y = utc_year(last);
        tz->ti[tz->ntrans - 1] = rule_type_at(tz, last);
        if (y >= APSCHED__TZ_EXPAND_FIRST_YEAR && y <= APSCHED__TZ_EXPAND_LAST_YEAR && hi > last) {
          tz->ntrans += rule_changes(tz, y - 2, APSCHED__TZ_EXPAND_LAST_YEAR, last, hi,
                                     tz->at + tz->ntrans, tz->ti + tz->ntrans);
          tz->rule_hi = hi;
        } else {
          tz->rule_hi = last;
        }
        /* Overlap, so that local-time windows reaching past rule_hi stay in the table. */
        int64_t yh = utc_year(tz->rule_hi), after = tz->at[tz->ntrans - 1];
        tz->ntrans += rule_changes(tz, yh - 2, yh + 1, after,
                                   tz->rule_hi + APSCHED__TZ_TABLE_OVERLAP + 1,
                                   tz->at + tz->ntrans, tz->ti + tz->ntrans);
      } else {
        tz->type_before = istd;
        tz->rule_hi = INT64_MIN; /* only a rule: it answers for all time */
      }
      int64_t base = tz->ntrans > 0 ? tz->rule_hi : hi, y = utc_year(base);
      tz->cyc_base = base;
      tz->cyc_type0 = rule_type_at(tz, base);
      tz->ncyc = rule_changes(tz, y - 3, y + 403, base,
                              base + APSCHED__TZ_CYCLE_SECS + 30 * APSCHED__SEC_PER_DAY,
                              tz->cyc_at, tz->cyc_ti);
    }
  }
  if (tz->ntypes == 0)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "time zone '%s': no local time types",
                         tz->name);
  tz->omin = tz->omax = tz->types[0].utoff;
  for (uint16_t i = 1; i < tz->ntypes; i++) {
    if (tz->types[i].utoff < tz->omin) tz->omin = tz->types[i].utoff;
    if (tz->types[i].utoff > tz->omax) tz->omax = tz->types[i].utoff;
  }
  return APSCHED_OK;
}

int apsched__tz_from_posix(const char *s, size_t len, const char *name, apsched_tz **out,
                           char *errbuf, size_t errlen) {
  apsched__posix_tz rule;
  int rc = apsched__posix_tz_parse(s, len, &rule, errbuf, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched_tz *tz = apsched__tz_alloc(name, 0, 0, rule.has_dst);
  if (!tz) return apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "out of memory");
  rc = apsched__tz_finish(tz, &rule, errbuf, errlen);
  if (rc != APSCHED_OK) {
    apsched__tz_destroy(tz);
    return rc;
  }
  *out = tz;
  return APSCHED_OK;
}

int apsched__tz_fixed(int32_t utoff, apsched_tz **out) {
  char name[16], abbr[16];
  int32_t a = utoff < 0 ? -utoff : utoff;
  int h = a / 3600, m = a / 60 % 60, s = a % 60;
  char sign = utoff < 0 ? '-' : '+';
  /* Name like ISO 8601 ("+05:45"), abbreviation like tzdata ("+0545", "+05"). */
  if (s) {
    snprintf(name, sizeof name, "%c%02d:%02d:%02d", sign, h, m, s);
    snprintf(abbr, sizeof abbr, "%c%02d%02d%02d", sign, h, m, s);
  } else {
    snprintf(name, sizeof name, "%c%02d:%02d", sign, h, m);
    if (m) snprintf(abbr, sizeof abbr, "%c%02d%02d", sign, h, m);
    else snprintf(abbr, sizeof abbr, "%c%02d", sign, h);
  }
  apsched_tz *tz = apsched__tz_alloc(name, 1, 0, false);
  if (!tz) return APSCHED_ENOMEM;
  tz->types[0].utoff = utoff;
  memcpy(tz->types[0].abbr, abbr, sizeof abbr);
  tz->ntypes = 1;
  apsched__tz_finish(tz, NULL, NULL, 0);
  *out = tz;
  return APSCHED_OK;
}
