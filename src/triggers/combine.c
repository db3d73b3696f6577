/* The and/or combinations of triggers (APScheduler's AndTrigger/OrTrigger).
 *
 * or: the earliest of the triggers' next times (a time several share fires
 * once, since next() is always strictly after prev).
 * and: APScheduler 3's search. Ask every trigger, then move each one behind
 * the latest answer to its first time at or after it, until all agree. A
 * trigger only moves forward, so the search ends when one is finished; since
 * triggers that never meet (two intervals out of phase) would otherwise
 * search forever, it gives up after AND_MAX_ROUNDS rounds and reports "no
 * next time" (APScheduler 4 raises MaxIterationsReached after 10,000).
 * Times agree only when exactly equal (APScheduler 3; 4.x's threshold is not
 * offered).
 *
 * Jitter: the combination has its own (base.jitter, "jitter=" in the text);
 * the jitter of the triggers inside is kept (and written) but never applied,
 * because the scheduler only sees the combination.
 *
 * Text: "and[cron[...], interval[...], jitter=5]", each trigger in its own
 * canonical form, so nesting and quotes are respected when splitting.
 */
#include "extra_kinds.h"

#include <stdlib.h>
#include <string.h>

#define COMBINE_MAX_TRIGGERS 64
#define AND_MAX_ROUNDS 10000
/* Deepest nesting of brackets the parser accepts (each level recurses). */
#define MAX_NESTING 32

typedef struct combined_trigger {
  apsched_trigger base;
  size_t n;
  apsched_trigger *sub[];
} combined_trigger;

static const apsched_trigger_vtable and_vtable, or_vtable;

static apsched_time_t sub_next(const apsched_trigger *t, apsched_time_t prev,
                               apsched_time_t now) {
  return t->vtable->next(t, prev, now);
}

static apsched_time_t or_next(const apsched_trigger *t, apsched_time_t prev, apsched_time_t now) {
  const combined_trigger *c = (const combined_trigger *)t;
  apsched_time_t best = APSCHED_TIME_NONE;
  for (size_t i = 0; i < c->n; i++) {
    apsched_time_t next = sub_next(c->sub[i], prev, now);
    if (next != APSCHED_TIME_NONE && (best == APSCHED_TIME_NONE || next < best)) best = next;
  }
  return best;
}

static apsched_time_t and_next(const apsched_trigger *t, apsched_time_t prev, apsched_time_t now) {
  const combined_trigger *c = (const combined_trigger *)t;
  apsched_time_t times[COMBINE_MAX_TRIGGERS];
  for (size_t i = 0; i < c->n; i++) {
    times[i] = sub_next(c->sub[i], prev, now);
    if (times[i] == APSCHED_TIME_NONE) return APSCHED_TIME_NONE;
  }
  for (int round = 0; round < AND_MAX_ROUNDS; round++) {
    apsched_time_t latest = times[0];
    for (size_t i = 1; i < c->n; i++)
      if (times[i] > latest) latest = times[i];
    bool agree = true;
    for (size_t i = 0; i < c->n; i++) {
      if (times[i] == latest) continue;
      agree = false;
      /* "Strictly after latest - 1" is "at or after latest"; now stays the
       * caller's, so unbound triggers keep the same anchor every round. */
      times[i] = sub_next(c->sub[i], latest - 1, now);
      if (times[i] == APSCHED_TIME_NONE) return APSCHED_TIME_NONE;
    }
    if (agree) return latest;
  }
  return APSCHED_TIME_NONE;
}

static int combined_describe(const apsched_trigger *t, char *buf, size_t len) {
  const combined_trigger *c = (const combined_trigger *)t;
  size_t pos = 0;
  apsched__append(buf, len, &pos, "%s[", t->vtable->kind);
  for (size_t i = 0; i < c->n; i++) {
    if (i) apsched__append(buf, len, &pos, ", ");
    bool room = buf && pos < len;
    int n = c->sub[i]->vtable->describe(c->sub[i], room ? buf + pos : NULL, room ? len - pos : 0);
    if (n < 0) return n;
    pos += (size_t)n;
  }
  if (c->base.jitter) apsched__append_jitter(buf, len, &pos, ", ", c->base.jitter);
  apsched__append(buf, len, &pos, "]");
  if (buf && len > 0 && pos >= len) buf[len - 1] = '\0';
  return (int)pos;
}

static void combined_destroy(apsched_trigger *t) {
  combined_trigger *c = (combined_trigger *)t;
  for (size_t i = 0; i < c->n; i++) apsched_trigger_free(c->sub[i]);
  free(c);
}

/* Checks the arguments shared by creating and parsing a combination. */
static int check_args(const apsched_trigger_vtable *vt, const apsched_trigger *const *triggers,
                      size_t n, int64_t jitter, apsched_trigger **out, char *errbuf,
                      size_t errlen) {
  if (!out)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_%s: out is NULL", vt->kind);
  if (n && !triggers)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_%s: triggers is NULL (n=%zu)",
                         vt->kind, n);
  if (n == 0 || n > COMBINE_MAX_TRIGGERS)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "%s: %zu triggers given (allowed: 1..%d)", vt->kind, n,
                         COMBINE_MAX_TRIGGERS);
  if (jitter < 0)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "%s: jitter=%lld is negative", vt->kind,
                         (long long)jitter);
  for (size_t i = 0; i < n; i++)
    if (!apsched__trigger_vtable_ok(triggers[i]))
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                           "%s: trigger %zu is missing or has an unknown vtable version",
                           vt->kind, i + 1);
  return APSCHED_OK;
}

/* An empty combination with room for n triggers. */
static combined_trigger *combined_alloc(const apsched_trigger_vtable *vt, size_t n,
                                        int64_t jitter) {
  combined_trigger *c = malloc(sizeof *c + n * sizeof c->sub[0]);
  if (!c) return NULL;
  c->base.vtable = vt;
  c->base.jitter = jitter;
  c->n = 0;
  return c;
}

/* A combination of copies of triggers[0..n); nothing is kept on error. */
static int combined_new(const apsched_trigger_vtable *vt, const apsched_trigger *const *triggers,
                        size_t n, int64_t jitter, apsched_trigger **out, char *errbuf,
                        size_t errlen) {
  int rc = check_args(vt, triggers, n, jitter, out, errbuf, errlen);
  if (rc != APSCHED_OK) return rc;
  combined_trigger *c = combined_alloc(vt, n, jitter);
  if (!c) return apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "out of memory");
  for (size_t i = 0; i < n; i++) {
    rc = triggers[i]->vtable->clone(triggers[i], &c->sub[i]);
    if (rc != APSCHED_OK) {
      combined_destroy(&c->base);
      return apsched__fail(rc, errbuf, errlen, "%s: cannot copy trigger %zu", vt->kind, i + 1);
    }
    c->n++;
  }
  *out = &c->base;
  return APSCHED_OK;
}

static int combined_clone(const apsched_trigger *t, apsched_trigger **out) {
  const combined_trigger *c = (const combined_trigger *)t;
  return combined_new(t->vtable, (const apsched_trigger *const *)c->sub, c->n, t->jitter, out,
                      NULL, 0);
}

static bool combined_equal(const apsched_trigger *a, const apsched_trigger *b) {
  const combined_trigger *x = (const combined_trigger *)a, *y = (const combined_trigger *)b;
  if (x->n != y->n || x->base.jitter != y->base.jitter) return false;
  for (size_t i = 0; i < x->n; i++)
    if (!apsched_trigger_equal(x->sub[i], y->sub[i])) return false;
  return true;
}

static void combined_bind(apsched_trigger *t, apsched_time_t now) {
  combined_trigger *c = (combined_trigger *)t;
  for (size_t i = 0; i < c->n; i++)
    if (c->sub[i]->vtable->bind) c->sub[i]->vtable->bind(c->sub[i], now);
}

static const apsched_trigger_vtable and_vtable = {
    .version = APSCHED_TRIGGER_VTABLE_VERSION,
    .kind = "and",
    .next = and_next,
    .describe = combined_describe,
    .clone = combined_clone,
    .equal = combined_equal,
    .bind = combined_bind,
    .destroy = combined_destroy,
};

static const apsched_trigger_vtable or_vtable = {
    .version = APSCHED_TRIGGER_VTABLE_VERSION,
    .kind = "or",
    .next = or_next,
    .describe = combined_describe,
    .clone = combined_clone,
    .equal = combined_equal,
    .bind = combined_bind,
    .destroy = combined_destroy,
};

int apsched_trigger_and(const apsched_trigger *const *triggers, size_t n, apsched_trigger **out,
                        char *errbuf, size_t errlen) {
  return combined_new(&and_vtable, triggers, n, 0, out, errbuf, errlen);
}

int apsched_trigger_or(const apsched_trigger *const *triggers, size_t n, apsched_trigger **out,
                       char *errbuf, size_t errlen) {
  return combined_new(&or_vtable, triggers, n, 0, out, errbuf, errlen);
}

/* ------------------------------------------------------------ the text */

/* Checks brackets and quotes and the nesting depth of the whole text. */
static int check_nesting(const char *kind, const char *s, char *errbuf, size_t errlen) {
  int depth = 0;
  bool quoted = false;
  for (const char *p = s; *p; p++) {
    if (*p == '\'') {
      quoted = !quoted; /* '' inside quotes toggles twice: still quoted */
    } else if (!quoted && *p == '[') {
      if (++depth > MAX_NESTING)
        return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                             "%s: triggers nested more than %d deep", kind, MAX_NESTING);
    } else if (!quoted && *p == ']') {
      if (--depth < 0)
        return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "%s: unbalanced ']' at '%.20s'",
                             kind, p);
    }
  }
  if (quoted) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "%s: unterminated quote", kind);
  if (depth) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "%s: unclosed '['", kind);
  return APSCHED_OK;
}

/* The end of the item starting at s: the next comma outside brackets and quotes. */
static const char *item_end(const char *s) {
  int depth = 0;
  bool quoted = false;
  for (; *s; s++) {
    if (*s == '\'')
      quoted = !quoted;
    else if (!quoted && *s == '[')
      depth++;
    else if (!quoted && *s == ']')
      depth--;
    else if (!quoted && depth == 0 && *s == ',')
      break;
  }
  return s;
}

/* True if the item is "name=value" (a parameter) rather than "kind[...]". */
static bool is_parameter(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '=') return i > 0;
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
          s[i] == ' '))
      return false;
  }
  return false;
}

static int parse_combined(const apsched_trigger_vtable *vt, const char *params,
                          apsched_trigger **out, char *errbuf, size_t errlen) {
  const char *kind = vt->kind;
  int rc = check_nesting(kind, params, errbuf, errlen);
  if (rc != APSCHED_OK) return rc;
  apsched_trigger *subs[COMBINE_MAX_TRIGGERS];
  size_t n = 0;
  int64_t jitter = 0;
  bool have_jitter = false;
  const char *p = params;
  char msg[512];
  while (rc == APSCHED_OK) {
    while (*p == ' ') p++;
    if (!*p && n == 0 && !have_jitter) break; /* "and[]": reported below */
    const char *end = item_end(p);
    size_t len = (size_t)(end - p);
    while (len > 0 && p[len - 1] == ' ') len--;
    char *item = malloc(len + 1);
    if (!item) {
      rc = apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "out of memory");
      break;
    }
    memcpy(item, p, len);
    item[len] = '\0';
    if (len == 0) {
      rc = apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "%s: expected a trigger (kind[...]) or jitter=seconds at '%.20s'", kind,
                         p);
    } else if (is_parameter(item, len)) {
      apsched__param prm;
      rc = apsched__split_trigger_text(item, NULL, 0, &prm, 1, msg, sizeof msg);
      if (rc < 0)
        rc = apsched__fail(rc, errbuf, errlen, "%s: %s", kind, msg);
      else if (strcmp(prm.key, "jitter") != 0)
        rc = apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                           "%s: unknown parameter '%s' (allowed: jitter, and triggers as "
                           "kind[...])",
                           kind, prm.key);
      else if (have_jitter)
        rc = apsched__fail(APSCHED_EINVAL, errbuf, errlen, "%s: parameter 'jitter' given twice",
                           kind);
      else
        rc = apsched__param_seconds(&prm, &jitter, errbuf, errlen);
      have_jitter = true;
    } else if (n == COMBINE_MAX_TRIGGERS) {
      rc = apsched__fail(APSCHED_EINVAL, errbuf, errlen, "%s: more than %d triggers", kind,
                         COMBINE_MAX_TRIGGERS);
    } else {
      msg[0] = '\0';
      rc = apsched_trigger_parse(item, &subs[n], msg, sizeof msg);
      if (rc != APSCHED_OK)
        rc = apsched__fail(rc, errbuf, errlen, "%s: trigger %zu: %s", kind, n + 1, msg);
      else
        n++;
    }
    free(item);
    if (!*end) break;
    p = end + 1;
  }
  if (rc == APSCHED_OK && n == 0)
    rc = apsched__fail(APSCHED_EINVAL, errbuf, errlen, "%s: at least one trigger is needed",
                       kind);
  /* The parsed triggers are fresh: the combination takes them over. */
  combined_trigger *c = NULL;
  if (rc == APSCHED_OK && !(c = combined_alloc(vt, n, jitter)))
    rc = apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "out of memory");
  if (rc != APSCHED_OK) {
    for (size_t i = 0; i < n; i++) apsched_trigger_free(subs[i]);
    return rc;
  }
  memcpy(c->sub, subs, n * sizeof subs[0]);
  c->n = n;
  *out = &c->base;
  return APSCHED_OK;
}

int apsched__and_parse_params(const char *params, apsched_trigger **out, char *errbuf,
                              size_t errlen) {
  return parse_combined(&and_vtable, params, out, errbuf, errlen);
}

int apsched__or_parse_params(const char *params, apsched_trigger **out, char *errbuf,
                             size_t errlen) {
  return parse_combined(&or_vtable, params, out, errbuf, errlen);
}
