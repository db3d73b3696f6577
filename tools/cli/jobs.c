/* `apsched jobs`: the jobs of a persistent job store.
 *
 *   apsched jobs --store URL [--tz ZONE] list
 *   apsched jobs --store URL [--tz ZONE] show ID
 *   apsched jobs --store URL pause ID | resume ID | remove ID
 *   apsched jobs --store URL export
 *   apsched jobs --store URL [--replace] import [FILE]
 *
 * The tool uses the store as any program would: a scheduler (apsched_create,
 * apsched_add_jobstore, apsched_start_hosted paused) and the job API. The
 * store is opened as an outside tool, so this works while a scheduler runs
 * jobs from the same store; that scheduler sees the changes within its
 * max_wait.
 *
 * Nothing ever runs here: the scheduler is started paused and never
 * processed, the store refuses to hand out due jobs (external), and the only
 * executors are stand-ins that refuse every run. Functions are not
 * registered, and need not be: a job whose function name is unknown is kept
 * as it is, and listed, shown, paused, resumed, removed and exported like any
 * other. Only import registers a stand-in under each name it adds (see
 * cli_standin_job in cli.h).
 *
 * Exit status: 0 done; 1 the output could not be written or memory ran out;
 * 2 bad usage or input, no such job, or the store failed (locked, not a job
 * store...): one line on stderr names the job and the store. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- stand-ins */

int cli_standin_job(apsched_run_ctx *run) {
  apsched_run_set_error(run, "the apsched tool does not run jobs");
  return 1;
}

static int standin_start(apsched_executor *ex, apsched_scheduler *s, const char *alias) {
  (void)ex;
  (void)s;
  (void)alias;
  return APSCHED_OK;
}

static int standin_submit(apsched_executor *ex, apsched_run_ctx *run) {
  (void)ex;
  (void)run;
  return apsched_plugin_error(APSCHED_ESTATE, "the apsched tool runs no jobs");
}

static void standin_shutdown(apsched_executor *ex, bool wait) {
  (void)ex;
  (void)wait;
}

static bool standin_owns_thread(apsched_executor *ex) {
  (void)ex;
  return false;
}

static void standin_destroy(apsched_executor *ex) { free(ex); }

static const apsched_executor_vtable standin_vtable = {
    .version = APSCHED_EXECUTOR_VTABLE_VERSION,
    .kind = "apsched-tool",
    .start = standin_start,
    .submit = standin_submit,
    .shutdown = standin_shutdown,
    .owns_thread = standin_owns_thread,
    .destroy = standin_destroy,
};

/* ---------------------------------------------------------------- session */

const char *cli_lib_error(int rc) {
  const char *msg = apsched_last_error();
  return msg[0] ? msg : apsched_strerror(rc);
}

int cli_jobs_error(const cli_session *ss, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "apsched: jobs %s: ", ss->cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return CLI_EXIT_USAGE;
}

static int out_of_memory(const cli_session *ss) {
  fprintf(stderr, "apsched: jobs %s: out of memory\n", ss->cmd);
  return CLI_EXIT_FAILURE;
}

/* No such job, or the library's message (it names the store by its alias,
 * the URL when it can be; else the URL is added). */
int cli_store_failure(const cli_session *ss, const char *id, int rc) {
  if (rc == APSCHED_ENOMEM) return out_of_memory(ss);
  if (id && rc == APSCHED_ENOENT) return cli_jobs_error(ss, "no job '%s' in %s", id, ss->url);
  const char *in = ss->alias_is_url ? "" : " in ";
  const char *url = ss->alias_is_url ? "" : ss->url;
  if (id) return cli_jobs_error(ss, "job '%s'%s%s: %s", id, in, url, cli_lib_error(rc));
  if (ss->alias_is_url) return cli_jobs_error(ss, "%s", cli_lib_error(rc));
  return cli_jobs_error(ss, "%s: %s", ss->url, cli_lib_error(rc));
}

/* The alias the store is added under (see cli_session). */
static void choose_alias(cli_session *ss) {
  size_t n = strlen(ss->url);
  bool ok = n > 0 && n < sizeof ss->alias;
  for (const unsigned char *p = (const unsigned char *)ss->url; ok && *p; p++)
    ok = *p >= 0x20 && *p != 0x7f;
  snprintf(ss->alias, sizeof ss->alias, "%s", ok ? ss->url : "store");
  ss->alias_is_url = ok;
}

int cli_session_add_executor(cli_session *ss, const char *alias) {
  apsched_executor *ex = malloc(sizeof *ex);
  if (!ex) return APSCHED_ENOMEM;
  ex->vtable = &standin_vtable;
  int rc = apsched_add_executor(ss->sched, ex, alias); /* owns ex, also on error */
  return rc == APSCHED_EEXIST ? APSCHED_OK : rc;
}

int cli_session_open(cli_session *ss, bool create) {
  char err[CLI_ERR_MAX] = "";
  apsched_jobstore *st;
  int rc = cli_store_open(ss->url, create, &st, err, sizeof err);
  if (rc == APSCHED_ENOMEM) return out_of_memory(ss);
  if (rc != APSCHED_OK) return cli_jobs_error(ss, "%s", err);
  choose_alias(ss);
  /* No log function: what goes wrong comes back from the calls. */
  apsched_config cfg = {.timezone = "UTC"};
  rc = apsched_create(&cfg, &ss->sched);
  if (rc != APSCHED_OK) {
    apsched_jobstore_free(st);
    return rc == APSCHED_ENOMEM ? out_of_memory(ss) : cli_store_failure(ss, NULL, rc);
  }
  rc = apsched_add_jobstore(ss->sched, st, ss->alias); /* owns st, also on error */
  /* A "default" executor of our own: start adds no thread pool then. */
  if (rc == APSCHED_OK) rc = cli_session_add_executor(ss, "default");
  if (rc == APSCHED_OK) rc = apsched_start_hosted(ss->sched, true);
  if (rc != APSCHED_OK) {
    int status = cli_store_failure(ss, NULL, rc);
    cli_session_close(ss);
    return status;
  }
  return CLI_EXIT_OK;
}

void cli_session_close(cli_session *ss) {
  apsched_free(ss->sched);
  ss->sched = NULL;
}

/* -------------------------------------------------------------- printing */

void cli_format_seconds(int64_t usec, char *buf, size_t len) {
  long long whole = (long long)(usec / APSCHED_SEC), frac = (long long)(usec % APSCHED_SEC);
  if (frac == 0) {
    snprintf(buf, len, "%lld", whole);
    return;
  }
  char digits[8];
  snprintf(digits, sizeof digits, "%06lld", frac < 0 ? -frac : frac);
  for (int i = 5; i > 0 && digits[i] == '0'; i--) digits[i] = '\0';
  snprintf(buf, len, "%s%lld.%s", usec < 0 && whole == 0 ? "-" : "", whole, digits);
}


/* A run time in the --tz zone, "paused", or why a job is broken. */
static void put_when(const cli_session *ss, const apsched_job *j) {
  if (j->broken) {
    fputs("broken: ", stdout);
    cli_put_text(j->broken);
  } else if (j->paused || j->next_run_time == APSCHED_TIME_NONE) {
    fputs("paused", stdout);
  } else {
    char t[64];
    if (apsched_time_format(j->next_run_time, ss->tz, t, sizeof t) < 0)
      snprintf(t, sizeof t, "(%lld us)", (long long)j->next_run_time);
    fputs(t, stdout);
  }
}

/* list: one line per job, tab-separated: id, name, trigger, next run. */
static int cmd_list(cli_session *ss) {
  apsched_job *jobs;
  size_t n;
  int rc = apsched_get_jobs(ss->sched, ss->alias, &jobs, &n);
  if (rc != APSCHED_OK) return cli_store_failure(ss, NULL, rc);
  for (size_t i = 0; i < n; i++) {
    cli_put_text(jobs[i].id);
    putchar('\t');
    cli_put_text(jobs[i].name);
    putchar('\t');
    cli_put_text(jobs[i].trigger);
    putchar('\t');
    put_when(ss, &jobs[i]);
    putchar('\n');
  }
  apsched_jobs_free(jobs, n);
  return cli_finish_output();
}

static void put_field(const char *key, const char *value) {
  printf("%s: ", key);
  cli_put_text(value);
  putchar('\n');
}

/* show: every field, one "key: value" per line, named as in export. */
static int cmd_show(cli_session *ss, const char *id) {
  apsched_job *j;
  int rc = apsched_get_job(ss->sched, id, ss->alias, &j);
  if (rc != APSCHED_OK) return cli_store_failure(ss, id, rc);
  char *b64 = j->arg_len ? cli_base64_encode(j->arg_bytes, j->arg_len) : NULL;
  if (j->arg_len && !b64) {
    apsched_job_free(j);
    return out_of_memory(ss);
  }
  char num[64];
  put_field("id", j->id);
  put_field("name", j->name);
  put_field("func", j->func_name ? j->func_name : "(none: not registered by name)");
  put_field("trigger", j->trigger);
  put_field("executor", j->executor);
  if (b64) printf("args_base64: %s (%zu bytes)\n", b64, j->arg_len);
  else printf("args_base64: (none)\n");
  if (j->misfire_grace_time == APSCHED_GRACE_UNLIMITED) {
    printf("misfire_grace_time: unlimited\n");
  } else {
    cli_format_seconds(j->misfire_grace_time, num, sizeof num);
    printf("misfire_grace_time: %s s\n", num);
  }
  printf("coalesce: %s\n", j->coalesce ? "true" : "false");
  printf("delivery: %s\n", j->delivery == APSCHED_AT_LEAST_ONCE ? "at_least_once" : "at_most_once");
  printf("max_instances: %d\n", j->max_instances);
  if (j->max_runtime) {
    cli_format_seconds(j->max_runtime, num, sizeof num);
    printf("max_runtime: %s s\n", num);
  } else {
    printf("max_runtime: none\n");
  }
  /* Schedule policies only when not default (README "Schedule policies"). */
  if (j->policies) printf("policies: %s\n", j->policies);
  if (j->pause_after_failures)
    printf("failures: %d in a row (paused at %d)\n", j->failures, j->pause_after_failures);
  fputs("next_run_time: ", stdout);
  if (j->next_run_time == APSCHED_TIME_NONE) fputs("none", stdout);
  else put_when(ss, j);
  putchar('\n');
  printf("paused: %s\n", j->paused ? "true" : "false");
  if (j->broken) put_field("broken", j->broken);
  free(b64);
  apsched_job_free(j);
  return cli_finish_output();
}

static int cmd_change(cli_session *ss, const char *id) {
  int rc;
  if (strcmp(ss->cmd, "remove") != 0) {
    /* Said here in the tool's words; the library refuses it as well. */
    apsched_job *j;
    rc = apsched_get_job(ss->sched, id, ss->alias, &j);
    if (rc != APSCHED_OK) return cli_store_failure(ss, id, rc);
    int status = CLI_EXIT_OK;
    if (j->broken)
      status = cli_jobs_error(ss, "job '%s' in %s cannot be decoded (%s): only remove works on it",
                              id, ss->url, j->broken);
    apsched_job_free(j);
    if (status != CLI_EXIT_OK) return status;
  }
  if (strcmp(ss->cmd, "pause") == 0) rc = apsched_pause_job(ss->sched, id, ss->alias);
  else if (strcmp(ss->cmd, "resume") == 0) rc = apsched_resume_job(ss->sched, id, ss->alias);
  else rc = apsched_remove_job(ss->sched, id, ss->alias);
  if (rc != APSCHED_OK) return cli_store_failure(ss, id, rc);
  if (strcmp(ss->cmd, "resume") == 0) {
    /* A trigger with no run left removes its job (as APScheduler): say so. */
    apsched_job *j;
    rc = apsched_get_job(ss->sched, id, ss->alias, &j);
    if (rc == APSCHED_ENOENT)
      fprintf(stderr, "apsched: jobs resume: job '%s' has no run left: it was removed\n", id);
    if (rc == APSCHED_OK) apsched_job_free(j);
  }
  return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- options */

typedef struct jobs_command {
  const char *name;
  int min_words, max_words; /* after the command word */
  const char *words;        /* for messages */
  bool takes_tz, takes_replace;
} jobs_command;

static const jobs_command commands[] = {
    {"list", 0, 0, "", true, false},          {"show", 1, 1, " ID", true, false},
    {"pause", 1, 1, " ID", false, false},     {"resume", 1, 1, " ID", false, false},
    {"remove", 1, 1, " ID", false, false},    {"export", 0, 0, "", false, false},
    {"import", 0, 1, " [FILE]", false, true},
};

enum { COMMAND_COUNT = sizeof commands / sizeof commands[0] };

#define COMMAND_NAMES "list, show, pause, resume, remove, export or import"
#define URL_FORMS "sqlite:///relative/path.db or sqlite:////absolute/path.db"

int cli_jobs_main(int argc, char **argv) {
  const char *store = NULL, *tz_name = NULL;
  bool replace = false;
  int words = 0;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    bool missing = false;
    const char *v;
    if (strcmp(arg, "--") == 0) {
      while (++i < argc) argv[words++] = argv[i];
      break;
    }
    if (arg[0] != '-' || arg[1] == '\0') {
      argv[words++] = argv[i]; /* words <= i: only slots already read are overwritten */
      continue;
    }
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      cli_print_help(stdout);
      return cli_finish_output();
    }
    if ((v = cli_option_value(argc, argv, &i, "--store", &missing))) {
      store = v;
    } else if ((v = cli_option_value(argc, argv, &i, "--tz", &missing))) {
      tz_name = v;
    } else if (strcmp(arg, "--replace") == 0) {
      replace = true;
    } else if (missing) {
      return cli_usage_error("jobs: %s needs a value", arg);
    } else {
      return cli_usage_error("jobs: unknown option %s", arg);
    }
  }
  if (words == 0) return cli_usage_error("jobs: missing command (" COMMAND_NAMES ")");
  const jobs_command *c = NULL;
  for (int i = 0; i < COMMAND_COUNT && !c; i++)
    if (strcmp(argv[0], commands[i].name) == 0) c = &commands[i];
  if (!c) return cli_usage_error("jobs: unknown command '%s' (" COMMAND_NAMES ")", argv[0]);
  int n = words - 1;
  if (n < c->min_words || n > c->max_words) {
    if (n > c->max_words)
      return cli_usage_error(
          "jobs %s: unexpected argument '%s' (usage: apsched jobs --store URL %s%s)", c->name,
          argv[1 + c->max_words], c->name, c->words);
    return cli_usage_error("jobs %s: missing%s (usage: apsched jobs --store URL %s%s)", c->name,
                           c->words, c->name, c->words);
  }
  if (tz_name && !c->takes_tz)
    return cli_usage_error("jobs %s: --tz is an option of list and show", c->name);
  if (replace && !c->takes_replace)
    return cli_usage_error("jobs %s: --replace is an option of import", c->name);
  if (!store) return cli_usage_error("jobs %s: --store URL is needed (" URL_FORMS ")", c->name);

  apsched_tz *tz = NULL;
  char err[CLI_ERR_MAX] = "";
  if (apsched_tz_get(tz_name ? tz_name : "local", &tz, err, sizeof err) != APSCHED_OK)
    return cli_usage_error("jobs %s: --tz: %s", c->name, err);
  cli_session ss = {.cmd = c->name, .url = store, .tz = tz};
  int status;
  if (strcmp(c->name, "import") == 0) {
    /* Reads and checks the whole input before it opens the store. */
    status = cli_jobs_import(&ss, n ? argv[1] : NULL, replace);
  } else if (strcmp(c->name, "export") == 0) {
    status = cli_jobs_export(&ss);
  } else {
    status = cli_session_open(&ss, false);
    if (status == CLI_EXIT_OK) {
      if (strcmp(c->name, "list") == 0) status = cmd_list(&ss);
      else if (strcmp(c->name, "show") == 0) status = cmd_show(&ss, argv[1]);
      else status = cmd_change(&ss, argv[1]);
      cli_session_close(&ss);
    }
  }
  apsched_tz_free(tz);
  return status;
}
