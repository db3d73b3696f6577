/* Checks that the installed libapsched-pg links and keeps a job in a
 * PostgreSQL server (a private one, started by ../pg_server.h). */
#define _GNU_SOURCE /* pg_server.h: nftw, setgroups */
#include <apsched.h>
#include <apsched_pg.h>
#include <stdio.h>

#include "../pg_server.h"

static int job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

int main(void) {
  if (pg_server_start() != 0) return pg_server_unavailable() == 77 ? 0 : 1;
  apsched_scheduler *s;
  apsched_jobstore *st;
  char err[256];
  int ok = apsched_register_func("consumer.job", job) == APSCHED_OK &&
           apsched_create(NULL, &s) == APSCHED_OK;
  apsched_pg_options po = {.conninfo = pg_server_conninfo(), .schema = "consumer"};
  if (ok && apsched_pg_store_create(&po, &st, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "%s\n", err);
    ok = 0;
  }
  apsched_job_options o = {.id = "kept", .func_name = "consumer.job", .jobstore = "db",
                           .paused = true};
  apsched_job *j = NULL;
  ok = ok && apsched_add_jobstore(s, st, "db") == APSCHED_OK &&
       apsched_add_job(s, &o, NULL, 0) == APSCHED_OK &&
       apsched_get_job(s, "kept", "db", &j) == APSCHED_OK;
  apsched_job_free(j);
  if (ok) apsched_free(s);
  printf("consumer: libapsched-pg with libapsched %s, job kept: %s\n", apsched_version(),
         ok ? "yes" : "no");
  return ok ? 0 : 1;
}
