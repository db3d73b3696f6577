/* Records <-> rows. A job is one row of readable columns (see schema.c):
 * the trigger as its canonical text, the function by its registered name,
 * the byte argument as a BLOB, times as integer microseconds. Reading a row
 * back parses the trigger and interns the names; a row that cannot be read
 * back (a trigger kind this program does not know, a bad parameter, a value
 * out of range, written by hand or by another version) becomes a broken
 * record, never an error: the row stays as it is. */
#include "sqlite_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- writing */

int apsched__sqlite_storable(const apsched_job_record *rec) {
  if (!rec->func || !rec->func->name)
    return apsched__sqlite_error(APSCHED_EINVAL,
                                "job '%.64s': its function has no registered name, so a SQLite "
                                "store could not call it after a restart: apsched_register_func it "
                                "and add the job with func_name",
                                rec->id);
  if (apsched_job_args_has_pointer(rec->args)) {
    size_t len = 0;
    apsched_job_args_bytes(rec->args, &len);
    if (len == 0)
      return apsched__sqlite_error(APSCHED_EINVAL,
                                  "job '%.64s' has only a pointer argument, which a SQLite store "
                                  "cannot keep: give it arg_bytes",
                                  rec->id);
    return apsched__sqlite_error(APSCHED_EINVAL,
                                "job '%.64s' has a pointer argument besides its bytes, which a "
                                "SQLite store cannot keep (its runs would never see it): give it "
                                "arg_bytes only",
                                rec->id);
  }
  if (!rec->trigger || !rec->executor)
    return apsched__sqlite_error(APSCHED_EINVAL, "job '%.64s' has no %s", rec->id,
                                !rec->trigger ? "trigger" : "executor");
  return APSCHED_OK;
}

char *apsched__sqlite_trigger_text(const apsched_job_record *rec) {
  char small[256];
  int n = apsched_trigger_describe(rec->trigger, small, sizeof small);
  if (n < 0) {
    apsched__sqlite_error(APSCHED_EINVAL, "job '%.64s': its trigger cannot describe itself (%s)",
                         rec->id, apsched_strerror(n));
    return NULL;
  }
  char *text = malloc((size_t)n + 1);
  if (!text) {
    apsched__sqlite_error(APSCHED_ENOMEM, "out of memory");
    return NULL;
  }
  if ((size_t)n < sizeof small) memcpy(text, small, (size_t)n + 1);
  else apsched_trigger_describe(rec->trigger, text, (size_t)n + 1);
  return text;
}

const char *apsched__sqlite_delivery_text(unsigned flags) {
  return flags & APSCHED_JOB_AT_LEAST_ONCE ? "at_least_once" : "at_most_once";
}

static int bind_time(sqlite3_stmt *st, int col, apsched_time_t t) {
  return t == APSCHED_TIME_NONE ? sqlite3_bind_null(st, col) : sqlite3_bind_int64(st, col, t);
}

int apsched__sqlite_bind(sqlite3_stmt *st, const apsched_job_record *rec, const char *trigger_text) {
  size_t len = 0;
  const void *bytes = apsched_job_args_bytes(rec->args, &len);
  int rc = sqlite3_bind_text(st, COL_ID + 1, rec->id, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = rec->name ? sqlite3_bind_text(st, COL_NAME + 1, rec->name, -1, SQLITE_STATIC)
                   : sqlite3_bind_null(st, COL_NAME + 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, COL_FUNC + 1, rec->func->name, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, COL_TRIGGER + 1, trigger_text, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, COL_EXECUTOR + 1, rec->executor, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = len ? sqlite3_bind_blob64(st, COL_ARG + 1, bytes, len, SQLITE_STATIC)
             : sqlite3_bind_null(st, COL_ARG + 1);
  if (rc == SQLITE_OK)
    rc = rec->misfire_grace_ms == UINT32_MAX ? sqlite3_bind_null(st, COL_MISFIRE + 1)
                                             : sqlite3_bind_int64(st, COL_MISFIRE + 1, rec->misfire_grace_ms);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int(st, COL_COALESCE + 1, (rec->flags & APSCHED_JOB_COALESCE) ? 1 : 0);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, COL_MAX_INSTANCES + 1, rec->max_instances);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, COL_MAX_RUNTIME + 1, rec->max_runtime_ms);
  if (rc == SQLITE_OK) rc = bind_time(st, COL_NEXT_RUN_TIME + 1, rec->next_run_time);
  if (rc == SQLITE_OK) rc = bind_time(st, COL_TRIGGER_TIME + 1, rec->trigger_time);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(st, COL_DELIVERY + 1, apsched__sqlite_delivery_text(rec->flags), -1,
                           SQLITE_STATIC);
  return rc;
}

/* --------------------------------------------------------------- reading */

typedef struct decoding {
  sqlite3_stmt *st;
  char why[320]; /* the first problem found; "" while none */
} decoding;

static void problem(decoding *d, const char *fmt, ...) APSCHED_PRINTF(2, 3);
static void problem(decoding *d, const char *fmt, ...) {
  if (d->why[0]) return; /* the first one is reported */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->why, sizeof d->why, fmt, ap);
  va_end(ap);
}

static const char *type_name(int type) {
  switch (type) {
  case SQLITE_INTEGER: return "an integer";
  case SQLITE_FLOAT: return "a real number";
  case SQLITE_TEXT: return "text";
  case SQLITE_BLOB: return "a blob";
  default: return "NULL";
  }
}

/* A text column; NULL (and *problem) when it is missing or empty. */
static const char *text_col(decoding *d, int col, const char *name, bool required) {
  int type = sqlite3_column_type(d->st, col);
  if (type == SQLITE_NULL) {
    if (required) problem(d, "column %s is NULL", name);
    return NULL;
  }
  const char *text = (const char *)sqlite3_column_text(d->st, col);
  if (required && (!text || !*text)) problem(d, "column %s is empty", name);
  return text;
}

/* An integer column within [lo, hi]; *null tells a NULL (allowed if null
 * is given). Out of range or of another type: a problem, and lo. */
static sqlite3_int64 int_col(decoding *d, int col, const char *name, sqlite3_int64 lo,
                             sqlite3_int64 hi, bool *null) {
  int type = sqlite3_column_type(d->st, col);
  if (null) *null = type == SQLITE_NULL;
  if (type == SQLITE_NULL) {
    if (!null) problem(d, "column %s is NULL", name);
    return lo;
  }
  if (type != SQLITE_INTEGER) {
    problem(d, "column %s holds %s, not an integer", name, type_name(type));
    return lo;
  }
  sqlite3_int64 v = sqlite3_column_int64(d->st, col);
  if (v < lo || v > hi) {
    problem(d, "column %s: %lld is outside %lld..%lld", name, (long long)v, (long long)lo,
            (long long)hi);
    return lo;
  }
  return v;
}

int apsched__sqlite_decode(sqlite3_stmt *st, sqlite_intern_fn intern, void *ctx,
                           apsched_job_record **out, const char **why) {
  decoding d = {.st = st};
  *out = NULL;
  if (why) *why = NULL;
  const char *id = (const char *)sqlite3_column_text(st, COL_ID);
  if (!id) id = "";
  apsched_job_record *rec = apsched_job_record_new(id);
  if (!rec) return APSCHED_ENOMEM;

  const char *trigger = text_col(&d, COL_TRIGGER, "trigger", true);
  if (trigger && !d.why[0]) {
    char err[256] = "";
    if (apsched_trigger_parse(trigger, &rec->trigger, err, sizeof err) != APSCHED_OK) {
      rec->trigger = NULL;
      problem(&d, "trigger %s", err[0] ? err : "cannot be parsed");
    }
  }
  if (!*id) problem(&d, "column id is empty");
  else if (strlen(id) > APSCHED_ID_MAX)
    problem(&d, "the id is longer than %d bytes", APSCHED_ID_MAX);

  const char *func = text_col(&d, COL_FUNC, "func", true);
  rec->func = apsched_func_by_name(func && *func ? func : "(no function)");
  const char *executor = text_col(&d, COL_EXECUTOR, "executor", true);
  rec->executor = intern(ctx, executor && *executor ? executor : "default");
  const char *name = text_col(&d, COL_NAME, "name", false);
  if (name) rec->name = strdup(name);

  int arg_type = sqlite3_column_type(st, COL_ARG);
  if (arg_type == SQLITE_BLOB || arg_type == SQLITE_TEXT) {
    const void *bytes = sqlite3_column_blob(st, COL_ARG);
    size_t len = (size_t)sqlite3_column_bytes(st, COL_ARG);
    if (len > 0 && !(rec->args = apsched_job_args_new(bytes, len))) goto oom;
  } else if (arg_type != SQLITE_NULL) {
    problem(&d, "column arg holds %s, not bytes", type_name(arg_type));
  }

  bool unlimited;
  sqlite3_int64 grace = int_col(&d, COL_MISFIRE, "misfire_grace_ms", 0, UINT32_MAX - 1, &unlimited);
  rec->misfire_grace_ms = unlimited ? UINT32_MAX : (uint32_t)grace;
  if (int_col(&d, COL_COALESCE, "coalesce", 0, 1, NULL)) rec->flags |= APSCHED_JOB_COALESCE;
  rec->max_instances = (uint16_t)int_col(&d, COL_MAX_INSTANCES, "max_instances", 1, UINT16_MAX, NULL);
  rec->max_runtime_ms = (uint32_t)int_col(&d, COL_MAX_RUNTIME, "max_runtime_ms", 0, UINT32_MAX, NULL);
  bool none;
  sqlite3_int64 t = int_col(&d, COL_NEXT_RUN_TIME, "next_run_time", INT64_MIN + 1, INT64_MAX, &none);
  rec->next_run_time = none ? APSCHED_TIME_NONE : t;
  t = int_col(&d, COL_TRIGGER_TIME, "trigger_time", INT64_MIN + 1, INT64_MAX, &none);
  rec->trigger_time = none ? APSCHED_TIME_NONE : t;
  const char *delivery = text_col(&d, COL_DELIVERY, "delivery", true);
  if (delivery && strcmp(delivery, "at_least_once") == 0) rec->flags |= APSCHED_JOB_AT_LEAST_ONCE;
  else if (delivery && strcmp(delivery, "at_most_once") != 0)
    problem(&d, "column delivery: '%.40s' is neither at_most_once nor at_least_once", delivery);

  if (!rec->func || !rec->executor || (name && !rec->name)) goto oom;
  if (d.why[0]) {
    /* Kept as stored, paused, and only removable (APSCHED_JOB_BROKEN). */
    apsched_trigger_free(rec->trigger);
    rec->trigger = NULL;
    if (apsched_trigger_unparsed(trigger ? trigger : "", d.why, &rec->trigger) != APSCHED_OK) goto oom;
    rec->flags = APSCHED_JOB_BROKEN;
    rec->next_run_time = rec->trigger_time = APSCHED_TIME_NONE;
    if (why) *why = apsched_trigger_unparsed_why(rec->trigger);
  }
  *out = rec;
  return APSCHED_OK;
oom:
  apsched_job_record_free(rec);
  return apsched__sqlite_error(APSCHED_ENOMEM, "out of memory while reading job '%.64s'", id);
}
