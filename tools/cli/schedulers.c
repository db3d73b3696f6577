/* `apsched schedulers`: the schedulers sharing a store.
 *
 *   apsched schedulers --store URL [--tz ZONE]
 *
 * One line per scheduler, fields separated by tabs: id, name, host, pid,
 * alive or dead, last heartbeat and start (RFC 3339 in ZONE), lease (s),
 * runs claimed and not started, runs started and not ended. Live ones
 * first. Read from a connection of its own: it never registers as a
 * scheduler and never changes anything but a schema older than the tool's
 * (brought to its version, as jobs does). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void put_time(apsched_time_t t, const apsched_tz *tz) {
  char text[64];
  if (apsched_time_format(t, tz, text, sizeof text) < 0)
    snprintf(text, sizeof text, "(%lld us)", (long long)t);
  fputs(text, stdout);
}

static int put_scheduler(const cli_scheduler *sch, void *ud) {
  const apsched_tz *tz = ud;
  char lease[32];
  cli_format_seconds((int64_t)sch->lease_ms * 1000, lease, sizeof lease);
  cli_put_text(sch->id);
  putchar('\t');
  cli_put_text(sch->name ? sch->name : "");
  putchar('\t');
  cli_put_text(sch->host);
  printf("\t%d\t%s\t", sch->pid, sch->alive ? "alive" : "dead");
  put_time(sch->heartbeat_at, tz);
  putchar('\t');
  put_time(sch->started_at, tz);
  printf("\t%s\t%lu\t%lu\n", lease, sch->claimed, sch->running);
  return ferror(stdout) ? 1 : 0;
}

int cli_schedulers_main(int argc, char **argv) {
  const char *store = NULL, *tz_name = NULL;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    bool missing = false;
    const char *v;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      cli_print_help(stdout);
      return cli_finish_output();
    }
    if ((v = cli_option_value(argc, argv, &i, "--store", &missing))) store = v;
    else if ((v = cli_option_value(argc, argv, &i, "--tz", &missing))) tz_name = v;
    else if (missing) return cli_usage_error("schedulers: %s needs a value", arg);
    else if (arg[0] == '-') return cli_usage_error("schedulers: unknown option %s", arg);
    else return cli_usage_error("schedulers: unexpected argument '%s'", arg);
  }
  if (!store)
    return cli_usage_error("schedulers: --store URL is needed (postgresql://user@host/dbname)");
  apsched_tz *tz = NULL;
  char err[CLI_ERR_MAX] = "";
  if (apsched_tz_get(tz_name ? tz_name : "local", &tz, err, sizeof err) != APSCHED_OK)
    return cli_usage_error("schedulers: --tz: %s", err);
  int rc = cli_store_schedulers(store, put_scheduler, tz, err, sizeof err);
  apsched_tz_free(tz);
  if (rc != APSCHED_OK) {
    if (rc == APSCHED_ENOMEM) {
      fprintf(stderr, "apsched: schedulers: out of memory\n");
      return CLI_EXIT_FAILURE;
    }
    return cli_usage_error("schedulers: %s", err);
  }
  return cli_finish_output();
}
