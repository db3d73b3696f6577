/* The layout version key {P}:version and the raise of an older layout.
 * Layout 1 is layout 2 without waiting runs. Layout 2 kept each claim as a
 * key {P}:claim:ID, each run as a hash {P}:run:ID:T listed in
 * {P}:owned:OWNER, and each job's open runs in {P}:jobruns:ID: 15 server
 * calls of 2-10 us per run, which bounded a shared Redis to ~22 k runs/s.
 * Layout 3 keeps them as fields of three hashes ({P}:claims,
 * {P}:runs:OWNER, {P}:open) that a batch writes once each; S_MIGRATE
 * (scripts.c) rewrites a layout 2 prefix in place, in one script, when a
 * scheduler of this library opens it. Layout 4 is layout 3 whose claims
 * may end in '+' (the job changed while claimed): a layout 3 scheduler
 * would take such a claim for none, so the version is raised (nothing
 * else changes). Upgrade with every scheduler of the older library
 * stopped: they would go on writing keys that nothing reads any more, or
 * claim jobs another scheduler holds. */
#include "redis_internal.h"

#include <stdlib.h>

#define APSCHED_REDIS_LAYOUT_TEXT "4"
_Static_assert(APSCHED_REDIS_LAYOUT_VERSION == 4, "APSCHED_REDIS_LAYOUT_TEXT is the version as text");

/* The layout version key: created on first use, raised from an older
 * layout (unless existing_only: a tool that only reads changes nothing);
 * a newer or foreign one refused. */
int apsched__redis_check_layout(redis_link *l, const char *root, bool existing_only) {
  char key[REDIS_PREFIX_MAX + 16];
  snprintf(key, sizeof key, "%s:version", root);
  const char *get[2] = {"GET", key};
  int rc;
  redisReply *r = apsched__redis_command(l, 2, get, NULL, "reading the layout version", &rc);
  if (!r) return rc;
  if (r->type == REDIS_REPLY_NIL) {
    apsched__redis_reply_free(r);
    if (existing_only)
      return apsched__pstore_error(APSCHED_EINVAL,
                                   "redis prefix '%s' holds no libapsched-redis data (no key %s)",
                                   l->prefix, key);
    const char *set[4] = {"SET", key, APSCHED_REDIS_LAYOUT_TEXT, "NX"};
    apsched__redis_reply_free(apsched__redis_command(l, 4, set, NULL, "writing the layout version", &rc));
    return rc;
  }
  char *end = NULL;
  long v = r->type == REDIS_REPLY_STRING ? strtol(r->str, &end, 10) : 0;
  bool number = end && end != r->str && !*end && v >= 1;
  char text[24];
  snprintf(text, sizeof text, "%.20s", r->type == REDIS_REPLY_STRING ? r->str : "?");
  apsched__redis_reply_free(r);
  if (!number)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "redis prefix '%s': %s holds '%s', not a layout version: these "
                                 "keys were not made by libapsched-redis",
                                 l->prefix, key, text);
  if (v > APSCHED_REDIS_LAYOUT_VERSION)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "redis prefix '%s': layout version %ld is newer than this "
                                 "library's (%d): use a newer libapsched-redis",
                                 l->prefix, v, APSCHED_REDIS_LAYOUT_VERSION);
  if (v < APSCHED_REDIS_LAYOUT_VERSION && !existing_only) {
    /* One script: every scheduler sees the old layout or 4, never a mix. */
    apsched__redis_reply_free(apsched__redis_script(l, S_MIGRATE, root, 0, NULL, NULL,
                                          "raising the layout to version " APSCHED_REDIS_LAYOUT_TEXT,
                                          &rc));
    return rc;
  }
  return APSCHED_OK;
}
