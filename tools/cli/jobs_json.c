/* apsched jobs export / import: jobs as JSON (read and written with jansson).
 *
 *   {"version": 1,
 *    "jobs": [{"id": "tick", "name": "tick", "func": "app.tick",
 *              "trigger": "interval[...]", "executor": "default",
 *              "args_base64": null, "misfire_grace_time": 1, "coalesce": true,
 *              "max_instances": 1, "max_runtime": null, "delivery": "at_most_once",
 *              "policies": "overlap=buffer_one, pause_after_failures=3", "failures": 1,
 *              "next_run_time": "2026-01-01T00:00:00Z", "paused": false}]}
 *
 * APScheduler 3.11's export_jobs idea with libapsched's fields: the trigger
 * is its canonical text, the byte argument base64, durations are seconds
 * (misfire_grace_time null: no limit; max_runtime null: none), run times
 * RFC 3339 in UTC to the microsecond (null: paused). The schedule policies
 * (their canonical text, apsched_job_policies_describe) and the count of
 * consecutive failed runs are written only when not default, so an export
 * from before them still imports (absent: defaults). A job its store cannot
 * decode is exported as stored with "broken": why, and import refuses it.
 *
 * Import reads the whole input and checks every job before it opens the
 * store, then adds them in one batch (apsched_add_jobs: all or nothing),
 * keeping run times and paused states. Required: id, func, trigger; a field
 * left out takes the library's default (next_run_time: computed from the
 * trigger at import). Unknown fields are errors, so a typo is not ignored. */
#include "cli.h"

#ifdef APSCHED_CLI_HAVE_JANSSON

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { FORMAT_VERSION = 1 };

/* Seconds up to this are converted to microseconds without overflow; the
 * library then checks its own limits. */
#define SECONDS_MAX 1e12

static int fail(char *err, size_t errlen, const char *fmt, ...) APSCHED_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return APSCHED_EINVAL;
}

/* ------------------------------------------------------------------ export */

static json_t *seconds_value(int64_t usec) {
  if (usec % APSCHED_SEC == 0) return json_integer(usec / APSCHED_SEC);
  return json_real((double)usec / (double)APSCHED_SEC);
}

/* Builds one job's object: the first failure is kept (what, and whether it
 * was memory), later additions are skipped. */
typedef struct builder {
  json_t *obj;
  const char *not_utf8; /* the field whose text is not UTF-8 */
  bool oom;
} builder;

/* Adds key: value (a new reference; NULL when it could not be made). */
static void add(builder *b, const char *key, json_t *value) {
  if (b->not_utf8 || b->oom) {
    json_decref(value);
    return;
  }
  if (!value || json_object_set_new(b->obj, key, value) != 0) b->oom = true;
}

/* Adds key: text (NULL: null). json_string refuses text that is not UTF-8,
 * which JSON cannot hold. */
static void add_text(builder *b, const char *key, const char *text) {
  if (!text || b->not_utf8 || b->oom) {
    add(b, key, text ? NULL : json_null());
    return;
  }
  json_t *v = json_string(text);
  if (!v) {
    json_t *raw = json_stringn_nocheck(text, strlen(text)); /* fails only without memory */
    if (raw) b->not_utf8 = key;
    json_decref(raw);
  }
  add(b, key, v);
}

/* One job as an object; NULL with a message in err ("" when memory ran out). */
static json_t *job_object(const apsched_job *j, char *err, size_t errlen) {
  err[0] = '\0';
  char when[64] = "";
  if (!j->paused && j->next_run_time != APSCHED_TIME_NONE &&
      apsched_time_format(j->next_run_time, NULL, when, sizeof when) < 0) {
    fail(err, errlen, "job '%s': its next run time (%lld us) cannot be written", j->id,
         (long long)j->next_run_time);
    return NULL;
  }
  builder b = {.obj = json_object()};
  char *b64 = j->arg_len ? cli_base64_encode(j->arg_bytes, j->arg_len) : NULL;
  b.oom = !b.obj || (j->arg_len && !b64);
  add_text(&b, "id", j->id);
  add_text(&b, "name", j->name);
  add_text(&b, "func", j->func_name);
  add_text(&b, "trigger", j->trigger);
  add_text(&b, "executor", j->executor);
  add_text(&b, "args_base64", b64);
  add(&b, "misfire_grace_time",
      j->misfire_grace_time == APSCHED_GRACE_UNLIMITED ? json_null()
                                                       : seconds_value(j->misfire_grace_time));
  add(&b, "coalesce", json_boolean(j->coalesce));
  add(&b, "max_instances", json_integer(j->max_instances));
  add(&b, "max_runtime", j->max_runtime ? seconds_value(j->max_runtime) : json_null());
  add_text(&b, "delivery", j->delivery == APSCHED_AT_LEAST_ONCE ? "at_least_once" : "at_most_once");
  /* Only when not default, so a job without policies exports as before. */
  if (j->policies) add_text(&b, "policies", j->policies);
  if (j->failures) add(&b, "failures", json_integer(j->failures));
  add_text(&b, "next_run_time", when[0] ? when : NULL);
  add(&b, "paused", json_boolean(j->paused));
  if (j->broken) add_text(&b, "broken", j->broken);
  free(b64);
  if (!b.not_utf8 && !b.oom) return b.obj;
  json_decref(b.obj);
  if (b.not_utf8)
    fail(err, errlen, "job '%s': its %s is not UTF-8 text, which JSON cannot hold", j->id,
         b.not_utf8);
  return NULL;
}

int cli_jobs_export(cli_session *ss) {
  int status = cli_session_open(ss, false);
  if (status != CLI_EXIT_OK) return status;
  apsched_job *jobs;
  size_t n;
  int rc = apsched_get_jobs(ss->sched, ss->alias, &jobs, &n);
  if (rc != APSCHED_OK) {
    status = cli_store_failure(ss, NULL, rc);
    cli_session_close(ss);
    return status;
  }
  cli_session_close(ss);

  char err[CLI_ERR_MAX] = "";
  json_t *list = json_array();
  json_t *root = json_object();
  bool ok = list && root &&
            json_object_set_new(root, "version", json_integer(FORMAT_VERSION)) == 0 &&
            json_object_set(root, "jobs", list) == 0;
  for (size_t i = 0; ok && i < n; i++) {
    json_t *o = job_object(&jobs[i], err, sizeof err);
    ok = o && json_array_append_new(list, o) == 0;
  }
  status = CLI_EXIT_OK;
  if (!ok) {
    /* Nothing is written unless every job could be. */
    status = err[0] ? cli_jobs_error(ss, "%s", err) : CLI_EXIT_FAILURE;
    if (!err[0]) fprintf(stderr, "apsched: jobs export: out of memory\n");
  } else {
    for (size_t i = 0; i < n; i++)
      if (jobs[i].broken)
        fprintf(stderr,
                "apsched: jobs export: job '%s' cannot be decoded (%s): it is exported as "
                "stored, with \"broken\", and import refuses it until it is fixed\n",
                jobs[i].id, jobs[i].broken);
    if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) != 0 ||
        putchar('\n') == EOF)
      status = CLI_EXIT_FAILURE;
    int flushed = cli_finish_output();
    if (status == CLI_EXIT_FAILURE && flushed == CLI_EXIT_OK)
      fprintf(stderr, "apsched: cannot write the output\n");
    if (flushed != CLI_EXIT_OK) status = flushed;
  }
  json_decref(list);
  json_decref(root);
  apsched_jobs_free(jobs, n);
  return status;
}

/* ------------------------------------------------------------------ import */

static const char *const job_fields[] = {
    "id",
    "name",
    "func",
    "trigger",
    "executor",
    "args_base64",
    "misfire_grace_time",
    "coalesce",
    "max_instances",
    "max_runtime",
    "delivery",
    "policies",
    "failures",
    "next_run_time",
    "paused",
    "broken",
    NULL,
};

typedef struct import_job {
  apsched_job_options o;
  apsched_trigger *trigger;
  unsigned char *args;
} import_job;

typedef struct import_batch {
  json_t *root; /* the strings of the options point into it */
  import_job *jobs;
  size_t n;
} import_batch;

static void batch_free(import_batch *b) {
  for (size_t i = 0; b->jobs && i < b->n; i++) {
    apsched_trigger_free(b->jobs[i].trigger);
    free(b->jobs[i].args);
  }
  free(b->jobs);
  json_decref(b->root);
}

/* A field's value: NULL when absent or null. */
static json_t *field(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_null(v) ? NULL : v;
}

/* A string field: *out NULL when absent or null. */
static int string_field(json_t *o, size_t i, const char *key, bool required, const char **out,
                        char *err, size_t errlen) {
  json_t *v = field(o, key);
  *out = NULL;
  if (!v && required) return fail(err, errlen, "jobs[%zu].%s: missing", i, key);
  if (!v) return APSCHED_OK;
  if (!json_is_string(v)) return fail(err, errlen, "jobs[%zu].%s: not a string", i, key);
  *out = json_string_value(v);
  if (!**out) return fail(err, errlen, "jobs[%zu].%s: empty", i, key);
  return APSCHED_OK;
}

/* A duration in seconds (> 0) -> microseconds; *present false when absent
 * or null. */
static int seconds_field(json_t *o, size_t i, const char *key, int64_t *usec, bool *present,
                         char *err, size_t errlen) {
  json_t *v = field(o, key);
  *present = v != NULL;
  if (!v) return APSCHED_OK;
  double s = json_number_value(v);
  if (!json_is_number(v) || !(s > 0) || s > SECONDS_MAX)
    return fail(err, errlen, "jobs[%zu].%s: not a number of seconds above 0 (or null)", i, key);
  *usec = (int64_t)(s * (double)APSCHED_SEC + 0.5);
  if (*usec <= 0) *usec = 1; /* above 0, below a microsecond */
  return APSCHED_OK;
}

static int bool_field(json_t *o, size_t i, const char *key, bool *out, bool *present, char *err,
                      size_t errlen) {
  json_t *v = field(o, key);
  *present = v != NULL;
  if (!v) return APSCHED_OK;
  if (!json_is_boolean(v)) return fail(err, errlen, "jobs[%zu].%s: not true or false", i, key);
  *out = json_is_true(v);
  return APSCHED_OK;
}

/* "policies": the canonical text (null or "": the defaults) into the
 * options; "failures": the count of consecutive failed runs so far. */
static int policies_fields(json_t *o, size_t i, apsched_job_options *opt, char *err,
                           size_t errlen) {
  json_t *v = field(o, "policies");
  if (v && !json_is_string(v))
    return fail(err, errlen, "jobs[%zu].policies: job '%s': not a string", i, opt->id);
  if (v) {
    const char *text = json_string_value(v);
    apsched_job_record rec = {0};
    char msg[CLI_ERR_MAX] = "";
    int rc = apsched_job_policies_parse(text, &rec, msg, sizeof msg);
    if (rc == APSCHED_ENOMEM) return rc;
    if (rc != APSCHED_OK) {
      const char *why = msg[0] ? msg : apsched_strerror(rc);
      if (strncmp(why, "policies: ", 10) == 0) why += 10;
      return fail(err, errlen, "jobs[%zu].policies: job '%s': '%.200s': %s", i, opt->id, text,
                  why);
    }
    opt->overlap = (apsched_overlap)rec.overlap;
    opt->catchup_window = (int64_t)rec.catchup_window_ms * APSCHED_MSEC;
    opt->pause_after_failures = rec.pause_after_failures;
  }
  v = field(o, "failures");
  if (v && (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > APSCHED_PAUSE_AFTER_LIMIT))
    return fail(err, errlen, "jobs[%zu].failures: job '%s': not a whole number from 0 to %d", i,
                opt->id, APSCHED_PAUSE_AFTER_LIMIT);
  if (v) opt->failures = (int)json_integer_value(v);
  return APSCHED_OK;
}

/* Checks one job of the input and fills its options. */
static int read_job(json_t *o, size_t i, bool replace, import_job *ij, char *err, size_t errlen) {
  if (!json_is_object(o)) return fail(err, errlen, "jobs[%zu]: not an object", i);
  const char *key;
  json_t *value;
  json_object_foreach(o, key, value) {
    int k = 0;
    while (job_fields[k] && strcmp(job_fields[k], key) != 0) k++;
    if (!job_fields[k])
      return fail(err, errlen,
                  "jobs[%zu]: unknown field '%s' (fields: id, name, func, trigger, executor, "
                  "args_base64, misfire_grace_time, coalesce, max_instances, max_runtime, "
                  "delivery, policies, failures, next_run_time, paused)",
                  i, key);
  }
  apsched_job_options *opt = &ij->o;
  *opt = (apsched_job_options){.replace_existing = replace}; /* jobstore: at add time */
  const char *text = NULL;
  int rc = string_field(o, i, "id", true, &opt->id, err, errlen);
  if (rc == APSCHED_OK) rc = string_field(o, i, "broken", false, &text, err, errlen);
  if (rc == APSCHED_OK && text)
    return fail(err, errlen,
                "jobs[%zu].broken: job '%s' could not be decoded in the store it came from (%s): "
                "fix its trigger and drop \"broken\", or leave the job out",
                i, opt->id, text);
  if (rc == APSCHED_OK && !field(o, "func") && json_object_get(o, "func"))
    return fail(err, errlen,
                "jobs[%zu].func: null: the job's function has no name (it was added by pointer), "
                "so no other program can run it",
                i);
  if (rc == APSCHED_OK) rc = string_field(o, i, "func", true, &opt->func_name, err, errlen);
  if (rc == APSCHED_OK) rc = string_field(o, i, "name", false, &opt->name, err, errlen);
  if (rc == APSCHED_OK) rc = string_field(o, i, "executor", false, &opt->executor, err, errlen);
  if (rc == APSCHED_OK) rc = string_field(o, i, "trigger", true, &text, err, errlen);
  if (rc == APSCHED_OK) {
    char msg[CLI_ERR_MAX] = "";
    rc = apsched_trigger_parse(text, &ij->trigger, msg, sizeof msg);
    if (rc == APSCHED_ENOMEM) return rc;
    if (rc != APSCHED_OK)
      return fail(err, errlen, "jobs[%zu].trigger: %s", i, msg[0] ? msg : apsched_strerror(rc));
    opt->trigger = ij->trigger;
  }
  json_t *v = field(o, "args_base64"); /* null or "": no byte argument */
  if (rc == APSCHED_OK && v) {
    size_t len;
    rc = json_is_string(v) ? cli_base64_decode(json_string_value(v), &ij->args, &len)
                           : APSCHED_EINVAL;
    if (rc == APSCHED_ENOMEM) return rc;
    if (rc != APSCHED_OK) return fail(err, errlen, "jobs[%zu].args_base64: not base64 text", i);
    opt->arg_bytes = len ? ij->args : NULL;
    opt->arg_len = len;
  }
  bool present;
  if (rc == APSCHED_OK) {
    rc = seconds_field(o, i, "misfire_grace_time", &opt->misfire_grace_time, &present, err, errlen);
    /* null: no limit; left out: the default */
    if (rc == APSCHED_OK && !present && json_object_get(o, "misfire_grace_time"))
      opt->misfire_grace_time = APSCHED_GRACE_UNLIMITED;
  }
  if (rc == APSCHED_OK)
    rc = seconds_field(o, i, "max_runtime", &opt->max_runtime, &present, err, errlen);
  bool flag = false;
  if (rc == APSCHED_OK) rc = bool_field(o, i, "coalesce", &flag, &present, err, errlen);
  if (rc == APSCHED_OK && present) opt->coalesce = flag ? APSCHED_YES : APSCHED_NO;
  if (rc == APSCHED_OK) rc = bool_field(o, i, "paused", &opt->paused, &present, err, errlen);
  if (rc == APSCHED_OK) rc = string_field(o, i, "delivery", false, &text, err, errlen);
  if (rc != APSCHED_OK) return rc;
  if (text && strcmp(text, "at_least_once") == 0) opt->delivery = APSCHED_AT_LEAST_ONCE;
  else if (text && strcmp(text, "at_most_once") == 0) opt->delivery = APSCHED_AT_MOST_ONCE;
  else if (text)
    return fail(err, errlen, "jobs[%zu].delivery: '%s' is neither at_most_once nor at_least_once",
                i, text);
  v = field(o, "max_instances");
  if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > APSCHED_MAX_INSTANCES_LIMIT))
    return fail(err, errlen, "jobs[%zu].max_instances: not a whole number from 1 to %d", i,
                APSCHED_MAX_INSTANCES_LIMIT);
  if (v) opt->max_instances = (int)json_integer_value(v);
  rc = policies_fields(o, i, opt, err, errlen);
  if (rc != APSCHED_OK) return rc;
  rc = string_field(o, i, "next_run_time", false, &text, err, errlen);
  if (rc != APSCHED_OK) return rc;
  if (text) {
    if (opt->paused)
      return fail(err, errlen, "jobs[%zu].next_run_time: a paused job has none (null)", i);
    char msg[CLI_ERR_MAX] = "";
    rc = apsched_time_parse(text, NULL, &opt->next_run_time, msg, sizeof msg);
    if (rc != APSCHED_OK)
      return fail(err, errlen, "jobs[%zu].next_run_time: %s", i,
                  msg[0] ? msg : apsched_strerror(rc));
    /* The library reads 0 as "from the trigger". */
    if (opt->next_run_time == 0)
      return fail(err, errlen, "jobs[%zu].next_run_time: the epoch itself cannot be given", i);
  }
  return APSCHED_OK;
}

static int by_id(const void *a, const void *b) {
  const import_job *x = *(const import_job *const *)a, *y = *(const import_job *const *)b;
  int c = strcmp(x->o.id, y->o.id);
  return c ? c : (x < y ? -1 : x > y);
}

/* An id given twice would fail the batch with a message about the store. */
static int check_unique_ids(import_batch *b, char *err, size_t errlen) {
  if (b->n < 2) return APSCHED_OK;
  import_job **order = malloc(b->n * sizeof *order);
  if (!order) return APSCHED_ENOMEM;
  for (size_t i = 0; i < b->n; i++) order[i] = &b->jobs[i];
  qsort(order, b->n, sizeof *order, by_id);
  int rc = APSCHED_OK;
  for (size_t i = 1; i < b->n && rc == APSCHED_OK; i++)
    if (strcmp(order[i - 1]->o.id, order[i]->o.id) == 0)
      rc = fail(err, errlen, "jobs[%zu].id: '%s' is also the id of jobs[%zu]",
                (size_t)(order[i] - b->jobs), order[i]->o.id, (size_t)(order[i - 1] - b->jobs));
  free(order);
  return rc;
}

/* Reads and checks the whole input. */
static int read_input(const char *file, bool replace, import_batch *b, char *err, size_t errlen) {
  const char *src = file ? file : "stdin";
  json_error_t je;
  b->root = file ? json_load_file(file, JSON_REJECT_DUPLICATES, &je)
                 : json_loadf(stdin, JSON_REJECT_DUPLICATES, &je);
  if (!b->root) {
    if (je.line > 0) return fail(err, errlen, "%s:%d:%d: %s", src, je.line, je.column, je.text);
    return fail(err, errlen, "%s: %s", src, je.text);
  }
  if (!json_is_object(b->root))
    return fail(err, errlen, "%s: not a JSON object {\"version\": 1, \"jobs\": [...]}", src);
  const char *key;
  json_t *value;
  json_object_foreach(b->root, key, value) {
    if (strcmp(key, "version") != 0 && strcmp(key, "jobs") != 0)
      return fail(err, errlen, "%s: unknown field '%s' (fields: version, jobs)", src, key);
  }
  json_t *version = json_object_get(b->root, "version");
  if (!version) return fail(err, errlen, "%s: version: missing", src);
  if (!json_is_integer(version) || json_integer_value(version) != FORMAT_VERSION)
    return fail(err, errlen, "%s: version: not %d, the only version this apsched reads", src,
                FORMAT_VERSION);
  json_t *list = json_object_get(b->root, "jobs");
  if (!json_is_array(list))
    return fail(err, errlen, "%s: jobs: %s", src, list ? "not an array" : "missing");
  b->n = json_array_size(list);
  b->jobs = calloc(b->n ? b->n : 1, sizeof *b->jobs);
  if (!b->jobs) return APSCHED_ENOMEM;
  for (size_t i = 0; i < b->n; i++) {
    char msg[CLI_ERR_MAX] = "";
    int rc = read_job(json_array_get(list, i), i, replace, &b->jobs[i], msg, sizeof msg);
    if (rc == APSCHED_ENOMEM) return rc;
    if (rc != APSCHED_OK) return fail(err, errlen, "%s: %s", src, msg);
  }
  char msg[CLI_ERR_MAX] = "";
  int rc = check_unique_ids(b, msg, sizeof msg);
  if (rc == APSCHED_EINVAL) return fail(err, errlen, "%s: %s", src, msg);
  return rc;
}

int cli_jobs_import(cli_session *ss, const char *file, bool replace) {
  if (file && strcmp(file, "-") == 0) file = NULL;
  import_batch b = {0};
  char err[CLI_ERR_MAX] = "";
  int rc = read_input(file, replace, &b, err, sizeof err);
  if (rc != APSCHED_OK) {
    batch_free(&b);
    if (rc == APSCHED_ENOMEM) {
      fprintf(stderr, "apsched: jobs import: out of memory\n");
      return CLI_EXIT_FAILURE;
    }
    return cli_jobs_error(ss, "%s", err);
  }
  /* The library adds a job by function name only when a function is
   * registered under it: a stand-in that never runs (see cli.h). */
  int status = CLI_EXIT_OK;
  for (size_t i = 0; i < b.n && status == CLI_EXIT_OK; i++) {
    rc = apsched_register_func(b.jobs[i].o.func_name, cli_standin_job);
    if (rc == APSCHED_ENOMEM) {
      fprintf(stderr, "apsched: jobs import: out of memory\n");
      status = CLI_EXIT_FAILURE;
    } else if (rc != APSCHED_OK) {
      status = cli_jobs_error(ss, "jobs[%zu].func: %s", i, cli_lib_error(rc));
    }
  }
  if (status == CLI_EXIT_OK) status = cli_session_open(ss, true);
  if (status != CLI_EXIT_OK) {
    batch_free(&b);
    return status;
  }
  /* A running scheduler adds a job only with an executor of that alias. */
  for (size_t i = 0; i < b.n && status == CLI_EXIT_OK; i++) {
    const char *alias = b.jobs[i].o.executor;
    rc = alias ? cli_session_add_executor(ss, alias) : APSCHED_OK;
    if (rc != APSCHED_OK)
      status = cli_jobs_error(ss, "jobs[%zu].executor: %s", i, cli_lib_error(rc));
  }
  apsched_job_options *opts = NULL;
  if (status == CLI_EXIT_OK && b.n > 0) {
    opts = malloc(b.n * sizeof *opts);
    if (!opts) {
      fprintf(stderr, "apsched: jobs import: out of memory\n");
      status = CLI_EXIT_FAILURE;
    }
  }
  if (status == CLI_EXIT_OK && b.n > 0) {
    for (size_t i = 0; i < b.n; i++) {
      opts[i] = b.jobs[i].o;
      opts[i].jobstore = ss->alias;
    }
    size_t failed = b.n;
    rc = apsched_add_jobs(ss->sched, opts, b.n, &failed);
    if (rc == APSCHED_ENOMEM) {
      fprintf(stderr, "apsched: jobs import: out of memory\n");
      status = CLI_EXIT_FAILURE;
    } else if (rc != APSCHED_OK && failed < b.n) {
      status = cli_jobs_error(ss, "jobs[%zu] (id '%s'): %s; nothing was imported into %s", failed,
                              opts[failed].id, cli_lib_error(rc), ss->url);
    } else if (rc != APSCHED_OK) {
      status = cli_jobs_error(ss, "%s; nothing was imported into %s", cli_lib_error(rc), ss->url);
    }
  }
  free(opts);
  cli_session_close(ss);
  batch_free(&b);
  return status;
}

#else /* without jansson */

static int no_jansson(cli_session *ss) {
  return cli_jobs_error(ss,
                        "this apsched was built without jansson (libjansson-dev), which export "
                        "and import need");
}

int cli_jobs_export(cli_session *ss) { return no_jansson(ss); }

int cli_jobs_import(cli_session *ss, const char *file, bool replace) {
  (void)file;
  (void)replace;
  return no_jansson(ss);
}

#endif
