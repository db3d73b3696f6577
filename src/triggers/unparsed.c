/* The unparsed trigger: what a persistent store puts in a record whose
 * trigger text it could not parse, so the job can be kept, listed and
 * removed without ever firing (a store never deletes what it cannot decode). */
#include "builtin.h"

#include <stdlib.h>
#include <string.h>

typedef struct unparsed_trigger {
  apsched_trigger base;
  char *why;
  char text[]; /* the original text, then why */
} unparsed_trigger;

static const apsched_trigger_vtable unparsed_vtable;

static apsched_time_t unparsed_next(const apsched_trigger *t, apsched_time_t prev,
                                    apsched_time_t now) {
  (void)t;
  (void)prev;
  (void)now;
  return APSCHED_TIME_NONE;
}

static int unparsed_describe(const apsched_trigger *t, char *buf, size_t len) {
  const unparsed_trigger *u = (const unparsed_trigger *)t;
  size_t pos = 0;
  apsched__append(buf, len, &pos, "%s", u->text);
  return (int)pos;
}

static int unparsed_clone(const apsched_trigger *t, apsched_trigger **out) {
  const unparsed_trigger *u = (const unparsed_trigger *)t;
  return apsched_trigger_unparsed(u->text, u->why, out);
}

static bool unparsed_equal(const apsched_trigger *a, const apsched_trigger *b) {
  const unparsed_trigger *x = (const unparsed_trigger *)a, *y = (const unparsed_trigger *)b;
  return strcmp(x->text, y->text) == 0;
}

static void unparsed_destroy(apsched_trigger *t) { free(t); }

static const apsched_trigger_vtable unparsed_vtable = {
    .version = APSCHED_TRIGGER_VTABLE_VERSION,
    .kind = "unparsed",
    .next = unparsed_next,
    .describe = unparsed_describe,
    .clone = unparsed_clone,
    .equal = unparsed_equal,
    .destroy = unparsed_destroy,
};

int apsched_trigger_unparsed(const char *text, const char *why, apsched_trigger **out) {
  if (!text || !why || !out)
    return apsched__error(APSCHED_EINVAL, "trigger_unparsed: %s is NULL",
                          !text ? "text" : !why ? "why" : "out");
  size_t tlen = strlen(text) + 1, wlen = strlen(why) + 1;
  unparsed_trigger *u = malloc(sizeof *u + tlen + wlen);
  if (!u) return apsched__error(APSCHED_ENOMEM, "trigger_unparsed: out of memory");
  u->base.vtable = &unparsed_vtable;
  u->base.jitter = 0;
  memcpy(u->text, text, tlen);
  u->why = u->text + tlen;
  memcpy(u->why, why, wlen);
  *out = &u->base;
  return APSCHED_OK;
}

const char *apsched_trigger_unparsed_why(const apsched_trigger *t) {
  if (!t || t->vtable != &unparsed_vtable) return NULL;
  return ((const unparsed_trigger *)t)->why;
}
