/* Generic trigger calls (dispatch through the vtable) and the registry of
 * trigger kinds that apsched_trigger_parse understands. */
#include "../internal.h"
#include "builtin.h"
#include "cron_internal.h"
#include "extra_kinds.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct kind_entry {
  const char *kind;
  apsched_trigger_parse_fn parse;
} kind_entry;

static const kind_entry builtin_kinds[] = {
    {"date", apsched__date_parse_params},
    {"interval", apsched__interval_parse_params},
    {"cron", apsched__cron_parse_params},
    {"calendar", apsched__calendar_parse_params},
    {"and", apsched__and_parse_params},
    {"or", apsched__or_parse_params},
};

/* Custom kinds registered at run time; a short list, read under the lock. */
typedef struct custom_kind {
  char *kind;
  apsched_trigger_parse_fn parse;
  struct custom_kind *next;
} custom_kind;

static pthread_mutex_t kinds_lock = PTHREAD_MUTEX_INITIALIZER;
static custom_kind *custom_kinds;

static apsched_trigger_parse_fn find_builtin(const char *kind) {
  for (size_t i = 0; i < sizeof builtin_kinds / sizeof builtin_kinds[0]; i++)
    if (strcmp(builtin_kinds[i].kind, kind) == 0) return builtin_kinds[i].parse;
  return NULL;
}

static apsched_trigger_parse_fn find_kind(const char *kind) {
  apsched_trigger_parse_fn builtin = find_builtin(kind);
  if (builtin) return builtin;
  apsched_trigger_parse_fn fn = NULL;
  pthread_mutex_lock(&kinds_lock);
  for (custom_kind *c = custom_kinds; c && !fn; c = c->next)
    if (strcmp(c->kind, kind) == 0) fn = c->parse;
  pthread_mutex_unlock(&kinds_lock);
  return fn;
}

int apsched_register_trigger_kind(const char *kind, apsched_trigger_parse_fn parse) {
  if (!kind) return apsched__error(APSCHED_EINVAL, "register_trigger_kind: kind is NULL");
  if (!parse)
    return apsched__error(APSCHED_EINVAL, "register_trigger_kind: '%.40s': parse is NULL", kind);
  if (!*kind || strlen(kind) >= 32)
    return apsched__error(APSCHED_EINVAL,
                          "register_trigger_kind: '%.40s': a kind has 1..31 characters", kind);
  for (const char *p = kind; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
      return apsched__error(APSCHED_EINVAL,
                            "register_trigger_kind: '%s': only a-z, 0-9 and '_' are allowed",
                            kind);
  if (find_kind(kind))
    return apsched__error(APSCHED_EEXIST, "register_trigger_kind: '%s' is already registered",
                          kind);
  custom_kind *c = malloc(sizeof *c);
  char *name = apsched__strdup(kind);
  if (!c || !name) {
    free(c);
    free(name);
    return apsched__error(APSCHED_ENOMEM, "register_trigger_kind: out of memory");
  }
  c->kind = name;
  c->parse = parse;
  pthread_mutex_lock(&kinds_lock);
  c->next = custom_kinds;
  custom_kinds = c;
  pthread_mutex_unlock(&kinds_lock);
  return APSCHED_OK;
}

int apsched_trigger_parse(const char *text, apsched_trigger **out, char *errbuf, size_t errlen) {
  if (!text) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_parse: text is NULL");
  if (!out) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "trigger_parse: out is NULL");
  const char *open = strchr(text, '[');
  size_t len = strlen(text);
  if (!open || len < 2 || text[len - 1] != ']')
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "'%s': a trigger is written as kind[param=value, ...]", text);
  char kind[32];
  size_t klen = (size_t)(open - text);
  if (klen == 0 || klen >= sizeof kind)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': missing or too long trigger kind",
                         text);
  memcpy(kind, text, klen);
  kind[klen] = '\0';
  bool builtin = find_builtin(kind) != NULL;
  apsched_trigger_parse_fn parse = find_kind(kind);
  if (!parse)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': unknown trigger kind '%s'", text,
                         kind);
  /* Hand the parser the text between the brackets. */
  size_t plen = len - klen - 2;
  char *params = malloc(plen + 1);
  if (!params) return apsched__fail(APSCHED_ENOMEM, errbuf, errlen, "out of memory");
  memcpy(params, open + 1, plen);
  params[plen] = '\0';
  if (builtin) {
    /* Every failure of a built-in kind goes through apsched__fail. */
    int rc = parse(params, out, errbuf, errlen);
    free(params);
    return rc;
  }
  /* A custom kind's parser may not say why it failed, or not through
   * apsched__fail: its message (or a general one) becomes last_error here. */
  char own[256];
  char *msg = errbuf && errlen > 0 ? errbuf : own;
  size_t msglen = errbuf && errlen > 0 ? errlen : sizeof own;
  msg[0] = '\0';
  int rc = parse(params, out, msg, msglen);
  free(params);
  if (rc == APSCHED_OK) return rc;
  if (!msg[0])
    return apsched__fail(rc, errbuf, errlen, "'%s': the %s parser failed: %s", text, kind,
                         apsched_strerror(rc));
  return apsched__error(rc, "%s", msg);
}

int apsched_trigger_describe(const apsched_trigger *t, char *buf, size_t len) {
  if (!t) return apsched__error(APSCHED_EINVAL, "trigger_describe: t is NULL");
  int n = t->vtable->describe(t, buf, len);
  if (n < 0)
    return apsched__error(n, "trigger_describe: the %s trigger cannot be written as text: %s",
                          t->vtable->kind, apsched_strerror(n));
  return n;
}

apsched_time_t apsched_trigger_next(const apsched_trigger *t, apsched_time_t prev,
                                    apsched_time_t now) {
  if (!t) {
    apsched__error(APSCHED_EINVAL, "trigger_next: t is NULL");
    return APSCHED_TIME_NONE;
  }
  return t->vtable->next(t, prev, now);
}

bool apsched_trigger_equal(const apsched_trigger *a, const apsched_trigger *b) {
  if (a == b) return true;
  if (!a || !b || a->vtable != b->vtable || a->jitter != b->jitter) return false;
  return a->vtable->equal(a, b);
}

int apsched_trigger_set_jitter(apsched_trigger *t, int64_t jitter) {
  if (!t) return apsched__error(APSCHED_EINVAL, "trigger_set_jitter: t is NULL");
  if (jitter < 0)
    return apsched__error(APSCHED_EINVAL, "trigger_set_jitter: jitter %lld is negative",
                          (long long)jitter);
  t->jitter = jitter;
  return APSCHED_OK;
}

const char *apsched_trigger_kind(const apsched_trigger *t) { return t ? t->vtable->kind : NULL; }

int apsched_trigger_clone(const apsched_trigger *t, apsched_trigger **out) {
  if (!t) return apsched__error(APSCHED_EINVAL, "trigger_clone: t is NULL");
  if (!out) return apsched__error(APSCHED_EINVAL, "trigger_clone: out is NULL");
  int rc = t->vtable->clone(t, out);
  if (rc != APSCHED_OK)
    return apsched__error(rc, "trigger_clone: cannot copy the %s trigger: %s", t->vtable->kind,
                          apsched_strerror(rc));
  return APSCHED_OK;
}

size_t apsched__trigger_flat_size(const apsched_trigger *t) {
  size_t n = apsched__interval_flat_size(t);
  return n ? n : apsched__date_flat_size(t);
}

void apsched_trigger_free(apsched_trigger *t) {
  if (t) t->vtable->destroy(t);
}

bool apsched__trigger_vtable_ok(const apsched_trigger *t) {
  /* Vtables are constant: the last one found complete is not checked again
   * (every add checks its trigger's). */
  static _Atomic(const apsched_trigger_vtable *) last_complete;
  const apsched_trigger_vtable *vt = t ? t->vtable : NULL;
  if (!vt || t->jitter < 0) return false;
  if (vt == atomic_load_explicit(&last_complete, memory_order_relaxed)) return true;
  bool ok = vt->version == APSCHED_TRIGGER_VTABLE_VERSION && vt->kind && vt->next && vt->describe &&
            vt->clone && vt->equal && vt->destroy;
  if (ok) atomic_store_explicit(&last_complete, vt, memory_order_relaxed);
  return ok;
}

/* ---- canonical text: kind[key=value, key='quoted value'] */

int apsched__split_trigger_text(const char *text, char *kind, size_t kind_len,
                                apsched__param *params, int max_params, char *errbuf,
                                size_t errlen) {
  const char *p = text;
  if (kind) {
    const char *open = strchr(text, '[');
    if (!open) return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': missing '['", text);
    size_t n = (size_t)(open - text);
    if (n == 0 || n >= kind_len)
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': bad trigger kind", text);
    memcpy(kind, text, n);
    kind[n] = '\0';
    p = open + 1;
  }
  int count = 0;
  for (;;) {
    while (*p == ' ') p++;
    if (*p == '\0' || (kind && *p == ']')) break;
    if (count == max_params)
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': too many parameters", text);
    apsched__param *pr = &params[count];
    size_t k = 0;
    while (*p && *p != '=' && *p != ',' && *p != ' ' && *p != ']') {
      if (k + 1 >= sizeof pr->key)
        return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': parameter name too long", text);
      pr->key[k++] = *p++;
    }
    pr->key[k] = '\0';
    while (*p == ' ') p++;
    if (k == 0 || *p != '=')
      return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                           "'%s': expected name=value at '%.20s'", text, p);
    p++;
    while (*p == ' ') p++;
    size_t v = 0;
    if (*p == '\'') {
      p++;
      for (;;) {
        if (*p == '\0')
          return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': unterminated quote", text);
        if (*p == '\'') {
          if (p[1] != '\'') break;
          p++; /* '' stands for one quote */
        }
        if (v + 1 >= sizeof pr->value)
          return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': value too long", text);
        pr->value[v++] = *p++;
      }
      p++;
    } else {
      while (*p && *p != ',' && *p != ']' && *p != ' ') {
        if (v + 1 >= sizeof pr->value)
          return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': value too long", text);
        pr->value[v++] = *p++;
      }
    }
    pr->value[v] = '\0';
    for (int i = 0; i < count; i++)
      if (strcmp(params[i].key, pr->key) == 0)
        return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': parameter '%s' given twice",
                             text, pr->key);
    count++;
    while (*p == ' ') p++;
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p == '\0' || (kind && *p == ']')) break;
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': expected ',' at '%.20s'", text, p);
  }
  if (kind && (*p != ']' || p[1] != '\0'))
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen, "'%s': expected ']' at the end", text);
  return count;
}

void apsched__append_quoted(char *buf, size_t len, size_t *pos, const char *sep,
                            const char *key, const char *value) {
  apsched__append(buf, len, pos, "%s%s='", sep, key);
  for (const char *c = value; *c; c++)
    apsched__append(buf, len, pos, *c == '\'' ? "''" : "%c", *c);
  apsched__append(buf, len, pos, "'");
}

int apsched__param_time(const apsched__param *p, apsched_time_t *out, char *errbuf,
                        size_t errlen) {
  char msg[200];
  int rc = apsched_time_parse(p->value, NULL, out, msg, sizeof msg);
  if (rc != APSCHED_OK) return apsched__fail(rc, errbuf, errlen, "%s: %s", p->key, msg);
  return APSCHED_OK;
}

int apsched__param_int(const apsched__param *p, int64_t min, int64_t max, int64_t *out,
                       char *errbuf, size_t errlen) {
  char *end;
  errno = 0;
  long long v = strtoll(p->value, &end, 10);
  if (p->value[0] == '\0' || *end != '\0' || errno == ERANGE || v < min || v > max)
    return apsched__fail(APSCHED_EINVAL, errbuf, errlen,
                         "%s: '%s' is not a whole number in %lld..%lld", p->key, p->value,
                         (long long)min, (long long)max);
  *out = v;
  return APSCHED_OK;
}

void apsched__append_time(char *buf, size_t len, size_t *pos, const char *sep, const char *key,
                          apsched_time_t t) {
  char text[64];
  apsched_time_format(t, NULL, text, sizeof text);
  apsched__append_quoted(buf, len, pos, sep, key, text);
}

apsched_time_t apsched__with_jitter(const apsched_trigger *t, apsched_time_t base) {
  if (base == APSCHED_TIME_NONE || t->jitter <= 0) return base;
  apsched_time_t out;
  if (__builtin_add_overflow(base, (int64_t)apsched__random_upto((uint64_t)t->jitter), &out))
    return base;
  return out;
}
