/* The `apsched` command-line tool: declarations shared by its files.
 *
 * main.c         commands and options, printing fire times
 * trigger_args.c TRIGGER arguments (cron 'LINE', FIELD=VALUE..., date TIME) -> a trigger
 * help.c         the man-page-style help text
 */
#ifndef APSCHED_CLI_H
#define APSCHED_CLI_H

#include <apsched.h>

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

/* Writes the whole help text to out. */
void cli_print_help(FILE *out);
/* Writes the two-line usage summary to out (after a usage error). */
void cli_print_usage(FILE *out);

#endif
