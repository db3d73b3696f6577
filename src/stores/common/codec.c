/* Records <-> column values. A job is one row of readable columns: the
 * trigger as its canonical text, the function by its registered name, the
 * byte argument as bytes, times as integer microseconds (NULL: none).
 * Reading a row back parses the trigger and interns the names; a row that
 * cannot be read back (a trigger kind this program does not know, a bad
 * parameter, a value out of range or of the wrong type, written by hand or
 * by another version) becomes a broken record, never an error: the row
 * stays as it is. Each store's driver turns its rows into store_values. */
#include "store_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- writing */

int apsched__pstore_storable(const apsched_job_record *rec, const char *store) {
  if (!rec->func || !rec->func->name)
    return apsched__pstore_error(APSCHED_EINVAL,
                                "job '%.64s': its function has no registered name, so a %s "
                                "store could not call it after a restart: apsched_register_func it "
                                "and add the job with func_name",
                                rec->id, store);
  if (apsched_job_args_has_pointer(rec->args)) {
    size_t len = 0;
    apsched_job_args_bytes(rec->args, &len);
    if (len == 0)
      return apsched__pstore_error(APSCHED_EINVAL,
                                  "job '%.64s' has only a pointer argument, which a %s store "
                                  "cannot keep: give it arg_bytes",
                                  rec->id, store);
    return apsched__pstore_error(APSCHED_EINVAL,
                                "job '%.64s' has a pointer argument besides its bytes, which a "
                                "%s store cannot keep (its runs would never see it): give it "
                                "arg_bytes only",
                                rec->id, store);
  }
  if (!rec->trigger || !rec->executor)
    return apsched__pstore_error(APSCHED_EINVAL, "job '%.64s' has no %s", rec->id,
                                !rec->trigger ? "trigger" : "executor");
  return APSCHED_OK;
}

char *apsched__pstore_trigger_text(const apsched_job_record *rec) {
  char small[256];
  int n = apsched_trigger_describe(rec->trigger, small, sizeof small);
  if (n < 0) {
    apsched__pstore_error(APSCHED_EINVAL, "job '%.64s': its trigger cannot describe itself (%s)",
                         rec->id, apsched_strerror(n));
    return NULL;
  }
  char *text = malloc((size_t)n + 1);
  if (!text) {
    apsched__pstore_error(APSCHED_ENOMEM, "out of memory");
    return NULL;
  }
  if ((size_t)n < sizeof small) memcpy(text, small, (size_t)n + 1);
  else apsched_trigger_describe(rec->trigger, text, (size_t)n + 1);
  return text;
}

int apsched__pstore_add_prepare(apsched_job_record *const *recs, size_t n, const char *store,
                                char ***texts, size_t *failed) {
  *texts = NULL;
  if (!recs) return apsched__pstore_error(APSCHED_EINVAL, "add: no records");
  int rc = APSCHED_OK;
  for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
    rc = recs[i] ? apsched__pstore_storable(recs[i], store)
                 : apsched__pstore_error(APSCHED_EINVAL, "add: record %zu is NULL", i);
    if (rc != APSCHED_OK) *failed = i;
  }
  if (rc != APSCHED_OK) return rc;
  char **t = calloc(n, sizeof *t);
  if (!t) return apsched__pstore_error(APSCHED_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    if (!(t[i] = apsched__pstore_trigger_text(recs[i]))) {
      *failed = i;
      apsched__pstore_free_texts(t, n);
      return APSCHED_EINVAL;
    }
  }
  *texts = t;
  return APSCHED_OK;
}

void apsched__pstore_free_texts(char **texts, size_t n) {
  for (size_t i = 0; texts && i < n; i++) free(texts[i]);
  free(texts);
}

static store_value text_value(const char *text) {
  return text ? (store_value){.kind = STORE_TEXT, .text = text} : (store_value){.kind = STORE_NULL};
}

static store_value int_value(int64_t i) { return (store_value){.kind = STORE_INT, .i = i}; }

static store_value time_value(apsched_time_t t) {
  return t == APSCHED_TIME_NONE ? (store_value){.kind = STORE_NULL} : int_value(t);
}

void apsched__pstore_encode(const apsched_job_record *rec, const char *trigger_text,
                            store_policies *policies, store_value out[COL_COUNT]) {
  size_t len = 0;
  const void *bytes = apsched_job_args_bytes(rec->args, &len);
  out[COL_ID] = text_value(rec->id);
  out[COL_NAME] = text_value(rec->name);
  out[COL_FUNC] = text_value(rec->func->name);
  out[COL_TRIGGER] = text_value(trigger_text);
  out[COL_EXECUTOR] = text_value(rec->executor);
  out[COL_ARG] = len ? (store_value){.kind = STORE_BYTES, .bytes = bytes, .len = len}
                     : (store_value){.kind = STORE_NULL};
  out[COL_MISFIRE] = rec->misfire_grace_ms == UINT32_MAX ? (store_value){.kind = STORE_NULL}
                                                         : int_value(rec->misfire_grace_ms);
  out[COL_COALESCE] = int_value((rec->flags & APSCHED_JOB_COALESCE) ? 1 : 0);
  out[COL_MAX_INSTANCES] = int_value(rec->max_instances);
  out[COL_MAX_RUNTIME] = int_value(rec->max_runtime_ms);
  out[COL_NEXT_RUN_TIME] = time_value(rec->next_run_time);
  out[COL_TRIGGER_TIME] = time_value(rec->trigger_time);
  out[COL_DELIVERY] =
      text_value(rec->flags & APSCHED_JOB_AT_LEAST_ONCE ? "at_least_once" : "at_most_once");
  apsched_job_policies_describe(rec, policies->text, sizeof policies->text);
  out[COL_POLICIES] = policies->text[0] ? text_value(policies->text) : (store_value){.kind = STORE_NULL};
  out[COL_FAILURES] = int_value(rec->failures);
}

/* --------------------------------------------------------------- reading */

typedef struct decoding {
  const store_value *cols;
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

static const char *kind_name(const store_value *v) {
  switch (v->kind) {
  case STORE_INT: return "an integer";
  case STORE_TEXT: return "text";
  case STORE_BYTES: return "bytes";
  case STORE_OTHER: return v->other ? v->other : "a value of another type";
  default: return "NULL";
  }
}

/* A text column; NULL (and a problem) when it is missing, empty or not text. */
static const char *text_col(decoding *d, int col, const char *name, bool required) {
  const store_value *v = &d->cols[col];
  if (v->kind == STORE_NULL) {
    if (required) problem(d, "column %s is NULL", name);
    return NULL;
  }
  if (v->kind != STORE_TEXT) {
    problem(d, "column %s holds %s, not text", name, kind_name(v));
    return NULL;
  }
  if (required && !*v->text) problem(d, "column %s is empty", name);
  return v->text;
}

/* An integer column within [lo, hi]; *null tells a NULL (allowed if null
 * is given). Out of range or of another type: a problem, and lo. */
static int64_t int_col(decoding *d, int col, const char *name, int64_t lo, int64_t hi, bool *null) {
  const store_value *v = &d->cols[col];
  if (null) *null = v->kind == STORE_NULL;
  if (v->kind == STORE_NULL) {
    if (!null) problem(d, "column %s is NULL", name);
    return lo;
  }
  if (v->kind != STORE_INT) {
    problem(d, "column %s holds %s, not an integer", name, kind_name(v));
    return lo;
  }
  if (v->i < lo || v->i > hi) {
    problem(d, "column %s: %lld is outside %lld..%lld", name, (long long)v->i, (long long)lo,
            (long long)hi);
    return lo;
  }
  return v->i;
}

int apsched__pstore_decode(const store_value cols[COL_COUNT], store_intern_fn intern, void *ctx,
                          apsched_job_record **out, const char **why) {
  decoding d = {.cols = cols};
  *out = NULL;
  if (why) *why = NULL;
  const char *id = cols[COL_ID].kind == STORE_TEXT ? cols[COL_ID].text : "";
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

  const store_value *arg = &cols[COL_ARG];
  if (arg->kind == STORE_BYTES) {
    if (arg->len > 0 && !(rec->args = apsched_job_args_new(arg->bytes, arg->len))) goto oom;
  } else if (arg->kind != STORE_NULL) {
    problem(&d, "column arg holds %s, not bytes", kind_name(arg));
  }

  bool unlimited;
  int64_t grace = int_col(&d, COL_MISFIRE, "misfire_grace_ms", 0, UINT32_MAX - 1, &unlimited);
  rec->misfire_grace_ms = unlimited ? UINT32_MAX : (uint32_t)grace;
  if (int_col(&d, COL_COALESCE, "coalesce", 0, 1, NULL)) rec->flags |= APSCHED_JOB_COALESCE;
  rec->max_instances = (uint16_t)int_col(&d, COL_MAX_INSTANCES, "max_instances", 1, UINT16_MAX, NULL);
  rec->max_runtime_ms = (uint32_t)int_col(&d, COL_MAX_RUNTIME, "max_runtime_ms", 0, UINT32_MAX, NULL);
  bool none;
  int64_t t = int_col(&d, COL_NEXT_RUN_TIME, "next_run_time", INT64_MIN + 1, INT64_MAX, &none);
  rec->next_run_time = none ? APSCHED_TIME_NONE : t;
  t = int_col(&d, COL_TRIGGER_TIME, "trigger_time", INT64_MIN + 1, INT64_MAX, &none);
  rec->trigger_time = none ? APSCHED_TIME_NONE : t;
  const char *delivery = text_col(&d, COL_DELIVERY, "delivery", true);
  if (delivery && strcmp(delivery, "at_least_once") == 0) rec->flags |= APSCHED_JOB_AT_LEAST_ONCE;
  else if (delivery && strcmp(delivery, "at_most_once") != 0)
    problem(&d, "column delivery: '%.40s' is neither at_most_once nor at_least_once", delivery);

  const char *policies = text_col(&d, COL_POLICIES, "policies", false);
  char perr[200] = "";
  if (apsched_job_policies_parse(policies, rec, perr, sizeof perr) != APSCHED_OK)
    problem(&d, "column %s", perr);
  rec->failures = (uint16_t)int_col(&d, COL_FAILURES, "failures", 0, UINT16_MAX, NULL);

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
  return apsched__pstore_error(APSCHED_ENOMEM, "out of memory while reading job '%.64s'", id);
}

size_t apsched__pstore_i64(char *buf, int64_t v) {
  char digits[20];
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  size_t n = 0, len = 0;
  do {
    digits[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) buf[len++] = '-';
  while (n) buf[len++] = digits[--n];
  buf[len] = '\0';
  return len;
}
