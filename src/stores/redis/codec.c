/* Job hashes <-> the shared column values (../common/codec.c does the
 * records). Every field is text as redis-cli shows it: integers in decimal,
 * the trigger as its canonical text, the argument as its raw bytes; an
 * absent field is NULL. A field that does not read back (not a number, a
 * NUL inside text, a key of another type) makes the job broken, never an
 * error: the hash stays as it is. */
#include "redis_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const field_names[COL_COUNT] = {
    [COL_ID] = NULL,
    [COL_NAME] = "name",
    [COL_FUNC] = "func",
    [COL_TRIGGER] = "trigger",
    [COL_EXECUTOR] = "executor",
    [COL_ARG] = "arg",
    [COL_MISFIRE] = "misfire_grace_ms",
    [COL_COALESCE] = "coalesce",
    [COL_MAX_INSTANCES] = "max_instances",
    [COL_MAX_RUNTIME] = "max_runtime_ms",
    [COL_NEXT_RUN_TIME] = "next_run_time",
    [COL_TRIGGER_TIME] = "trigger_time",
    [COL_DELIVERY] = "delivery",
    [COL_POLICIES] = "policies",
    [COL_FAILURES] = "failures",
};

const char *apsched__redis_field(int col) { return field_names[col]; }

static bool integer_col(int col) {
  return col == COL_MISFIRE || col == COL_COALESCE || col == COL_MAX_INSTANCES ||
         col == COL_MAX_RUNTIME || col == COL_NEXT_RUN_TIME || col == COL_TRIGGER_TIME ||
         col == COL_FAILURES;
}

/* One field's value as the codec wants it. */
static store_value value(int col, const redisReply *v) {
  if (col == COL_ARG) return (store_value){.kind = STORE_BYTES, .bytes = v->str, .len = v->len};
  if (memchr(v->str, '\0', v->len))
    return (store_value){.kind = STORE_OTHER, .other = "bytes with a NUL"};
  if (!integer_col(col)) return (store_value){.kind = STORE_TEXT, .text = v->str};
  char *end;
  errno = 0;
  long long i = strtoll(v->str, &end, 10);
  if (v->len == 0 || *end || errno || (v->str[0] != '-' && (v->str[0] < '0' || v->str[0] > '9')))
    return (store_value){.kind = STORE_OTHER, .other = "text that is not a number"};
  return (store_value){.kind = STORE_INT, .i = i};
}

bool apsched__redis_time_kept(int col, int64_t t, int64_t next) {
  if (col == COL_NEXT_RUN_TIME) return t > (INT64_C(1) << 53) || t < -(INT64_C(1) << 53);
  return t != next;
}

/* The next run time a score reads as (Redis prints a double as %.17g:
 * digits for every time up to 2^53 us). */
static store_value score_value(const redisReply *score) {
  char *end;
  errno = 0;
  long long i = strtoll(score->str, &end, 10);
  if (score->len > 0 && !*end && !errno) return (store_value){.kind = STORE_INT, .i = i};
  double d = strtod(score->str, &end);
  if (score->len > 0 && !*end && d > -9.2e18 && d < 9.2e18)
    return (store_value){.kind = STORE_INT, .i = (long long)(d < 0 ? d - 0.5 : d + 0.5)};
  return (store_value){.kind = STORE_OTHER, .other = "a score that is not a time"};
}

int apsched__redis_decode(const char *id, const redisReply *hash, const redisReply *score,
                          store_base *b, apsched_job_record **out) {
  store_value v[COL_COUNT];
  for (int col = 0; col < COL_COUNT; col++) v[col] = (store_value){.kind = STORE_NULL};
  v[COL_ID] = (store_value){.kind = STORE_TEXT, .text = id};
  if (hash->type != REDIS_REPLY_ARRAY) {
    /* A key of another type: every column reads as such. */
    v[COL_TRIGGER] = (store_value){.kind = STORE_OTHER, .other = "a key that is not a hash"};
  } else {
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
      const redisReply *f = hash->element[i], *val = hash->element[i + 1];
      if (f->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING) continue;
      for (int col = 1; col < COL_COUNT; col++)
        if (field_names[col][0] == f->str[0] && strcmp(f->str, field_names[col]) == 0) {
          v[col] = value(col, val);
          break;
        }
    }
    /* The times a hash leaves out (apsched__redis_time_kept). */
    if (v[COL_NEXT_RUN_TIME].kind == STORE_NULL && score && score->type == REDIS_REPLY_STRING)
      v[COL_NEXT_RUN_TIME] = score_value(score);
    if (v[COL_TRIGGER_TIME].kind == STORE_NULL) v[COL_TRIGGER_TIME] = v[COL_NEXT_RUN_TIME];
  }
  return apsched__pstore_decode_row(b, v, out);
}
