/* TZif reader (RFC 8536 / RFC 9636): versions 1 to 4. For version 2+ only
 * the 64-bit block and the footer TZ string are used. Every count is checked
 * against the bytes actually present before anything is allocated, so a
 * truncated or hostile file costs nothing but an error message. */
#include "tz_internal.h"

#include <string.h>

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p) {
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct counts {
  uint32_t isut, isstd, leap, time, type, chars;
} counts;

enum { HEADER = 44 };

static void read_counts(const unsigned char *h, counts *c) {
  c->isut = be32(h + 20);
  c->isstd = be32(h + 24);
  c->leap = be32(h + 28);
  c->time = be32(h + 32);
  c->type = be32(h + 36);
  c->chars = be32(h + 40);
}

/* Size of a data block; 64-bit arithmetic cannot overflow on 32-bit counts. */
static uint64_t block_size(const counts *c, unsigned tsize) {
  return (uint64_t)c->time * (tsize + 1) + (uint64_t)c->type * 6 + c->chars +
         (uint64_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

#define FAIL(...) apsched__fail(APSCHED_EINVAL, errbuf, errlen, __VA_ARGS__)

int apsched__tzif_parse(const unsigned char *data, size_t len, const char *name, apsched_tz **out,
                        char *errbuf, size_t errlen) {
  if (!data || len < HEADER)
    return FAIL("time zone '%s': truncated TZif file (%zu bytes, a header needs %d)", name, len,
                HEADER);
  if (memcmp(data, "TZif", 4) != 0) return FAIL("time zone '%s': not a TZif file", name);
  unsigned char version = data[4];
  if (version != 0 && version < '2')
    return FAIL("time zone '%s': unknown TZif version byte 0x%02x", name, version);

  counts c;
  read_counts(data, &c);
  size_t pos = HEADER;
  unsigned tsize = 4;
  if (version >= '2') {
    /* Skip the 32-bit block: it is only for old readers. */
    uint64_t skip = block_size(&c, 4);
    if (skip > len - pos || len - pos - skip < HEADER)
      return FAIL("time zone '%s': truncated TZif file (the version 1 block needs %llu bytes "
                  "and a second header, %zu present)",
                  name, (unsigned long long)skip, len - pos);
    pos += (size_t)skip;
    if (memcmp(data + pos, "TZif", 4) != 0)
      return FAIL("time zone '%s': corrupt TZif file (second header missing)", name);
    read_counts(data + pos, &c);
    pos += HEADER;
    tsize = 8;
  }
  if (c.type == 0 || c.type > 256)
    return FAIL("time zone '%s': corrupt TZif file (%u local time types, allowed 1..256)", name,
                c.type);
  if (c.chars == 0)
    return FAIL("time zone '%s': corrupt TZif file (no abbreviation characters)", name);
  if ((c.isstd != 0 && c.isstd != c.type) || (c.isut != 0 && c.isut != c.type))
    return FAIL("time zone '%s': corrupt TZif file (indicator counts %u/%u do not match %u "
                "types)",
                name, c.isstd, c.isut, c.type);
  if (c.leap != 0)
    return FAIL("time zone '%s': leap-second TZif files ('right/' zones) are not supported", name);
  uint64_t need = block_size(&c, tsize);
  if (need > len - pos)
    return FAIL("time zone '%s': truncated TZif file (header says %u transitions and %u types, "
                "needing %llu bytes of data; %zu present)",
                name, c.time, c.type, (unsigned long long)need, len - pos);

  const unsigned char *times = data + pos;
  const unsigned char *idx = times + (size_t)c.time * tsize;
  const unsigned char *ttinfo = idx + c.time;
  const char *chars = (const char *)(ttinfo + (size_t)c.type * 6);
  const unsigned char *isstd = (const unsigned char *)chars + c.chars;
  const unsigned char *isut = isstd + c.isstd;
  pos += (size_t)need;

  /* Validate everything before allocating. Transitions beyond +-REACH can
   * never matter to an apsched_time_t (about +-2^43 s); keeping them out keeps
   * every later computation far from overflow. */
  const int64_t REACH = INT64_C(1) << 44;
  int64_t prev = INT64_MIN;
  uint32_t first = 0, end = c.time; /* the reachable transitions [first, end) */
  for (uint32_t i = 0; i < c.time; i++) {
    int64_t t = tsize == 8 ? be64(times + (size_t)i * 8) : (int32_t)be32(times + (size_t)i * 4);
    if (i > 0 && t <= prev)
      return FAIL("time zone '%s': corrupt TZif file (transition %u is not after the previous "
                  "one)",
                  name, i);
    if (idx[i] >= c.type)
      return FAIL("time zone '%s': corrupt TZif file (transition %u uses type %u of %u)", name,
                  i, idx[i], c.type);
    prev = t;
    if (t < -REACH) first = i + 1;
    if (t > REACH && end == c.time) end = i;
  }
  for (uint32_t i = 0; i < c.type; i++) {
    const unsigned char *p = ttinfo + (size_t)i * 6;
    int32_t utoff = (int32_t)be32(p);
    if (utoff < -89999 || utoff > 93599)
      return FAIL("time zone '%s': corrupt TZif file (type %u has UTC offset %d s, allowed "
                  "-89999..93599)",
                  name, i, utoff);
    if (p[4] > 1)
      return FAIL("time zone '%s': corrupt TZif file (type %u has DST flag %u)", name, i, p[4]);
    if (p[5] >= c.chars)
      return FAIL("time zone '%s': corrupt TZif file (type %u abbreviation index %u is past the "
                  "%u characters)",
                  name, i, p[5], c.chars);
    const char *a = chars + p[5];
    const char *nul = memchr(a, '\0', c.chars - p[5]);
    if (!nul)
      return FAIL("time zone '%s': corrupt TZif file (abbreviation of type %u is not "
                  "terminated)",
                  name, i);
    if (nul - a > 15)
      return FAIL("time zone '%s': abbreviation of type %u is longer than 15 characters", name, i);
  }
  for (uint32_t i = 0; i < c.isstd; i++)
    if (isstd[i] > 1 || (c.isut && isut[i] > 1) || (c.isut && isut[i] && !isstd[i]))
      return FAIL("time zone '%s': corrupt TZif file (bad standard/UT indicators of type %u)",
                  name, i);

  /* Footer: "\n<POSIX TZ string>\n" (version 2+). */
  apsched__posix_tz rule;
  bool has_rule = false;
  if (tsize == 8 && pos < len) {
    if (data[pos] != '\n')
      return FAIL("time zone '%s': corrupt TZif file (footer does not start with a newline)",
                  name);
    const unsigned char *s = data + pos + 1;
    const unsigned char *nl = memchr(s, '\n', len - pos - 1);
    if (!nl)
      return FAIL("time zone '%s': corrupt TZif file (footer is not terminated by a newline)",
                  name);
    size_t flen = (size_t)(nl - s);
    if (flen > 0) {
      char inner[256];
      int rc = apsched__posix_tz_parse((const char *)s, flen, &rule, inner, sizeof inner);
      if (rc != APSCHED_OK)
        return FAIL("time zone '%s': bad footer rule: %s", name, inner);
      has_rule = true;
    }
  }
  if (end < c.time) has_rule = false; /* the footer only applies after the last transition */

  apsched_tz *tz = apsched__tz_alloc(name, c.type, end - first, has_rule && rule.has_dst);
  if (!tz) return apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "out of memory");
  for (uint32_t i = 0; i < c.type; i++) {
    const unsigned char *p = ttinfo + (size_t)i * 6;
    apsched__tz_type *t = &tz->types[i];
    t->utoff = (int32_t)be32(p);
    t->isdst = p[4];
    strcpy(t->abbr, chars + p[5]); /* length checked above */
  }
  tz->ntypes = (uint16_t)c.type;
  for (uint32_t i = first; i < end; i++) {
    tz->at[i - first] =
        tsize == 8 ? be64(times + (size_t)i * 8) : (int32_t)be32(times + (size_t)i * 4);
    tz->ti[i - first] = idx[i];
  }
  tz->ntrans = end - first;
  /* RFC 8536: type 0 applies before the first transition. */
  tz->type_before = first ? idx[first - 1] : 0;
  int rc = apsched__tz_finish(tz, has_rule ? &rule : NULL, errbuf, errlen);
  if (rc != APSCHED_OK) {
    apsched__tz_destroy(tz);
    return rc;
  }
  *out = tz;
  return APSCHED_OK;
}
