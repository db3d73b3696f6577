/* The `apsched` command-line tool: declarations shared by its files.
 *
 * main.c         commands and options, printing fire times
 * trigger_args.c TRIGGER arguments (cron 'LINE', FIELD=VALUE..., date TIME) -> a trigger
 * help.c         the man-page-style help text
 * jobs.c         apsched jobs: list, show, pause, resume, remove through a paused scheduler
 * jobs_json.c    apsched jobs export / import (jansson; built when it is found)
 * schedulers.c   apsched schedulers: who shares a store
 * store_url.c    --store URLs -> job stores (a table of schemes)
 * base64.c       byte arguments as text
 */
#ifndef APSCHED_CLI_H
#define APSCHED_CLI_H

#include <apsched.h>
#include <apsched_plugin.h>

#include <stdbool.h>
#include <stdio.h>

/* Exit statuses, as documented under EXIT STATUS in the help. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

/* Room for any message the tool prints; library messages are shorter. */
enum { CLI_ERR_MAX = 512 };

/* What every TRIGGER is read against: --tz and --from. */
typedef struct cli_context {
  const char *tz_name;  /* as given to --tz ("local" by default) */
  const apsched_tz *tz; /* that zone: TIME values without an offset are local to it */
  apsched_time_t from;  /* --from, or now */
  bool from_given;      /* --from was on the command line */
} cli_context;

/* A trigger built from the command line, with the `now` to ask it with. */
typedef struct cli_trigger {
  apsched_trigger *trigger;
  apsched_time_t ask_now; /* the now argument for apsched_trigger_next */
} cli_trigger;

/* Reads a TIME value (RFC 3339 / ISO 8601, local in ctx->tz without an
 * offset, or "now"). what names it in messages ("--from", "start_date"). */
int cli_parse_time(const char *what, const char *text, const cli_context *ctx,
                   apsched_time_t *out, char *err, size_t errlen);

/* Builds the trigger described by args[0] (its kind, or a canonical text
 * such as "cron[hour='2']") and its arguments args[1..n-1]. bind_interval:
 * an interval without start_date starts at ctx->from (what `next` does).
 * On bad input returns APSCHED_EINVAL and a message (without "apsched: ")
 * in err; nothing is allocated then. */
int cli_trigger_build(const cli_context *ctx, int n, char *const args[], bool bind_interval,
                      cli_trigger *out, char *err, size_t errlen);

/* Prints "apsched: " + the message + newline on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) APSCHED_PRINTF(1, 2);
/* Flushes stdout; a failed write (full disk, closed pipe) is CLI_EXIT_FAILURE. */
int cli_finish_output(void);
/* "--tz ZONE" or "--tz=ZONE" at argv[*i] (and "-n5" for a two-letter name):
 * returns the value (advancing *i past it), or NULL if argv[*i] is not this
 * option; *missing is set when the value is absent. */
const char *cli_option_value(int argc, char **argv, int *i, const char *name, bool *missing);

/* ------------------------------------------------------------ apsched jobs */

/* apsched jobs with its arguments (after the word "jobs"); an exit status. */
int cli_jobs_main(int argc, char **argv);

/* Opens the job store url names (see store_url.c for the forms). create: a
 * store that does not exist yet may be created (import); otherwise it must
 * exist. On error returns APSCHED_E* and a message without "apsched: " in
 * err that names the URL. */
int cli_store_open(const char *url, bool create, apsched_jobstore **out, char *err,
                   size_t errlen);

/* A scheduler sharing a store, as `apsched schedulers` shows it. */
typedef struct cli_scheduler {
  const char *id, *name, *host; /* name may be NULL */
  int pid;
  apsched_time_t started_at, heartbeat_at;
  int lease_ms;
  bool alive;
  unsigned long claimed, running;
} cli_scheduler;

/* Called for each scheduler; 0 goes on. */
typedef int (*cli_scheduler_visit)(const cli_scheduler *sch, void *ud);

/* Lists the schedulers sharing the store url names (a shared store kind:
 * postgresql://); an error and its message in err otherwise. */
int cli_store_schedulers(const char *url, cli_scheduler_visit visit, void *ud, char *err,
                         size_t errlen);

/* apsched schedulers with its arguments (after the word); an exit status. */
int cli_schedulers_main(int argc, char **argv);

/* Prints text, but control characters as \xNN (one record per line). */
void cli_put_text(const char *text);

/* A store as the tool uses it: a scheduler started hosted and paused (it
 * never runs a job) that holds the store under alias, and stand-in
 * executors that refuse every run. */
typedef struct cli_session {
  const char *cmd;      /* "list", "import", ... (for messages) */
  const char *url;      /* the --store URL (for messages) */
  const apsched_tz *tz; /* --tz: the zone run times are shown in */
  apsched_scheduler *sched;
  /* The store's alias: the URL itself when it is a valid alias, so that the
   * library's messages name it ("job store 'sqlite:///jobs.db' (sqlite):
   * update failed: ... database is locked"); else "store". */
  char alias[128];
  bool alias_is_url;
} cli_session;

/* Opens the session's store and starts its scheduler (paused); an exit
 * status, with the message printed. */
int cli_session_open(cli_session *ss, bool create);
void cli_session_close(cli_session *ss);
/* Adds a stand-in executor under alias unless there is one. */
int cli_session_add_executor(cli_session *ss, const char *alias);
/* The function import registers under a job's func name (the library adds
 * a job by name only when a function is registered under it). It is never
 * called: the scheduler stays paused, the store is opened as an outside
 * tool (its claim_due refuses), the executors refuse every run; and if it
 * were, it would fail without doing anything. */
int cli_standin_job(apsched_run_ctx *run);
/* Prints "apsched: jobs CMD: " + the message on stderr; returns CLI_EXIT_USAGE. */
int cli_jobs_error(const cli_session *ss, const char *fmt, ...) APSCHED_PRINTF(2, 3);
/* A failed library call on the session's store (about job id, or none):
 * prints why, naming the job and the store; returns the exit status. */
int cli_store_failure(const cli_session *ss, const char *id, int rc);
/* The library's message for the last failed call (or the code's text). */
const char *cli_lib_error(int rc);

/* export: every job as JSON on stdout; import: a JSON file (NULL or "-":
 * stdin) into the store, all or nothing. Exit statuses. Without jansson
 * both print what is missing. */
int cli_jobs_export(cli_session *ss);
int cli_jobs_import(cli_session *ss, const char *file, bool replace);

/* Base64 (RFC 4648): encode returns a malloc'd string (NULL: no memory);
 * decode accepts the canonical padded form only (APSCHED_EINVAL otherwise)
 * and returns a malloc'd buffer. */
char *cli_base64_encode(const void *data, size_t len);
int cli_base64_decode(const char *text, unsigned char **out, size_t *len);

/* Microseconds as seconds ("2.5", "1"), without a unit. */
void cli_format_seconds(int64_t usec, char *buf, size_t len);

/* Writes the whole help text to out. */
void cli_print_help(FILE *out);
/* Writes the two-line usage summary to out (after a usage error). */
void cli_print_usage(FILE *out);

#endif
