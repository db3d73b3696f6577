/* `apsched`: when does a schedule fire? Which jobs does a store hold?
 *
 *   apsched next [--tz ZONE] [--from TIME] [-n COUNT] TRIGGER
 *   apsched describe [--tz ZONE] [--from TIME] TRIGGER
 *   apsched jobs --store URL COMMAND ...   (jobs.c)
 *   apsched help | --help | --version
 *
 * Options may come anywhere after the command, before, after or between the
 * words of TRIGGER, as with GNU getopt; "--" ends them. The other words, in
 * order, are TRIGGER. Bad input: one line on stderr naming the problem,
 * status 2. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* -n accepts up to this many: enough for any listing, small enough that a
 * typo cannot make the tool run for hours. */
enum { COUNT_DEFAULT = 5, COUNT_MAX = 1000000 };

int cli_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("apsched: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return CLI_EXIT_USAGE;
}

int cli_finish_output(void) {
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "apsched: cannot write the output\n");
    return CLI_EXIT_FAILURE;
  }
  return CLI_EXIT_OK;
}

void cli_put_text(const char *text) {
  /* A newline in a job name would split its line. */
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) printf("\\x%02x", *p);
    else putchar(*p);
  }
}

static int print_help(void) {
  cli_print_help(stdout);
  return cli_finish_output();
}

/* A positive whole number up to COUNT_MAX. */
static bool parse_count(const char *text, long *out) {
  long v = 0;
  const char *s = text;
  for (; *s >= '0' && *s <= '9'; s++) {
    v = v * 10 + (*s - '0');
    if (v > COUNT_MAX) v = COUNT_MAX + 1L; /* saturate; reported below */
  }
  *out = v;
  return s != text && !*s && v > 0;
}

/* The options of next / describe as given, and the words left for TRIGGER. */
typedef struct options {
  const char *tz;
  const char *from;
  const char *count;
  char **trigger; /* the non-option words, in order (moved to the front of argv) */
  int trigger_len;
} options;

const char *cli_option_value(int argc, char **argv, int *i, const char *name, bool *missing) {
  const char *arg = argv[*i];
  size_t len = strlen(name);
  if (strncmp(arg, name, len) != 0) return NULL;
  if (arg[len] == '=') return arg + len + 1;
  /* "-n5" too, for the one short option */
  if (len == 2 && arg[len] != '\0') return arg + len;
  if (arg[len] != '\0') return NULL;
  if (*i + 1 >= argc) {
    *missing = true;
    return NULL;
  }
  return argv[++*i];
}

/* Reads the options wherever they are and moves the other words, in order,
 * to the front of argv: they are TRIGGER. A word starting with '-' is an
 * option (a lone "-" is not), except after "--". Returns -1 when help was
 * asked for, else an exit status (CLI_EXIT_OK to go on). */
static int parse_options(const char *cmd, int argc, char **argv, options *o) {
  bool is_next = strcmp(cmd, "next") == 0;
  *o = (options){.tz = "local", .trigger = argv};
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
      /* words <= i: only slots already read are overwritten */
      argv[words++] = argv[i];
      continue;
    }
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) return -1;
    if ((v = cli_option_value(argc, argv, &i, "--tz", &missing))) {
      o->tz = v;
    } else if ((v = cli_option_value(argc, argv, &i, "--from", &missing))) {
      o->from = v;
    } else if (is_next && ((v = cli_option_value(argc, argv, &i, "-n", &missing)) ||
                           (v = cli_option_value(argc, argv, &i, "--count", &missing)))) {
      o->count = v;
    } else if (missing) {
      return cli_usage_error("%s needs a value", arg);
    } else if (!is_next && (strncmp(arg, "-n", 2) == 0 || strncmp(arg, "--count", 7) == 0)) {
      return cli_usage_error("%s: %s is an option of 'apsched next'", cmd, arg);
    } else {
      return cli_usage_error("unknown option %s", arg);
    }
  }
  o->trigger_len = words;
  return CLI_EXIT_OK;
}

/* next: the first COUNT fire times at or after --from, one per line. */
static int list_fire_times(const cli_context *ctx, const cli_trigger *ct, long count) {
  apsched_time_t prev = APSCHED_TIME_NONE;
  long printed = 0;
  while (printed < count) {
    apsched_time_t t = apsched_trigger_next(ct->trigger, prev, ct->ask_now);
    if (t == APSCHED_TIME_NONE) break;
    prev = t;
    /* Only a date (or a combination holding one) can lie before --from. */
    if (t < ctx->from) continue;
    char text[64];
    if (apsched_time_format(t, ctx->tz, text, sizeof text) < 0) {
      fprintf(stderr, "apsched: cannot show the fire time %lld us in %s\n", (long long)t,
              ctx->tz_name);
      return CLI_EXIT_FAILURE;
    }
    puts(text);
    printed++;
  }
  return cli_finish_output();
}

static int describe(const cli_trigger *ct) {
  char small[512];
  int len = apsched_trigger_describe(ct->trigger, small, sizeof small);
  if (len < 0) {
    fprintf(stderr, "apsched: cannot describe the trigger: %s\n", apsched_strerror(len));
    return CLI_EXIT_FAILURE;
  }
  if ((size_t)len < sizeof small) {
    puts(small);
  } else {
    char *big = malloc((size_t)len + 1);
    if (!big) {
      fprintf(stderr, "apsched: out of memory\n");
      return CLI_EXIT_FAILURE;
    }
    apsched_trigger_describe(ct->trigger, big, (size_t)len + 1);
    puts(big);
    free(big);
  }
  return cli_finish_output();
}

/* next / describe with their arguments (after the command word). */
static int run_command(const char *cmd, int argc, char **argv) {
  options o;
  int rc = parse_options(cmd, argc, argv, &o);
  if (rc < 0) return print_help();
  if (rc != CLI_EXIT_OK) return rc;

  long count = COUNT_DEFAULT;
  if (o.count && !parse_count(o.count, &count))
    return cli_usage_error("-n: '%s' is not a positive count", o.count);
  if (count > COUNT_MAX)
    return cli_usage_error("-n: '%s' is above the maximum %d", o.count, COUNT_MAX);

  char err[CLI_ERR_MAX] = "";
  apsched_tz *tz;
  if (apsched_tz_get(o.tz, &tz, err, sizeof err) != APSCHED_OK)
    return cli_usage_error("--tz: %s", err);
  cli_context ctx = {.tz_name = o.tz, .tz = tz, .from = apsched_now(), .from_given = o.from};
  if (o.from && cli_parse_time("--from", o.from, &ctx, &ctx.from, err, sizeof err) != APSCHED_OK) {
    apsched_tz_free(tz);
    return cli_usage_error("%s", err);
  }

  bool is_next = strcmp(cmd, "next") == 0;
  cli_trigger ct;
  /* describe shows an interval's start only when --from names one. */
  rc = cli_trigger_build(&ctx, o.trigger_len, o.trigger, is_next || ctx.from_given, &ct, err,
                         sizeof err);
  if (rc != APSCHED_OK) {
    apsched_tz_free(tz);
    if (rc == APSCHED_ENOMEM) {
      fprintf(stderr, "apsched: out of memory\n");
      return CLI_EXIT_FAILURE;
    }
    return cli_usage_error("%s", err);
  }
  rc = is_next ? list_fire_times(&ctx, &ct, count) : describe(&ct);
  apsched_trigger_free(ct.trigger);
  apsched_tz_free(tz);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    cli_print_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
    return print_help();
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("apsched %s\n", apsched_version());
    return cli_finish_output();
  }
  if (strcmp(cmd, "next") == 0 || strcmp(cmd, "describe") == 0)
    return run_command(cmd, argc - 2, argv + 2);
  if (strcmp(cmd, "jobs") == 0) return cli_jobs_main(argc - 2, argv + 2);
  if (strcmp(cmd, "schedulers") == 0) return cli_schedulers_main(argc - 2, argv + 2);
  if (cmd[0] == '-') {
    if (strcmp(cmd, "--tz") == 0 || strcmp(cmd, "--from") == 0 || strcmp(cmd, "-n") == 0 ||
        strncmp(cmd, "--tz=", 5) == 0 || strncmp(cmd, "--from=", 7) == 0)
      return cli_usage_error("%s goes after the command: apsched next %s ...", cmd, cmd);
    if (strcmp(cmd, "--store") == 0 || strncmp(cmd, "--store=", 8) == 0)
      return cli_usage_error("%s goes after the command: apsched jobs --store URL ...", cmd);
    return cli_usage_error("unknown option %s", cmd);
  }
  return cli_usage_error("unknown command '%s' (next, describe, jobs, schedulers or help)", cmd);
}
