/* Checks that the installed libapsched-redis links and keeps a job in a
 * Redis server (a private one, started by ../redis_server.h). */
#define _GNU_SOURCE /* redis_server.h: nftw */
#include <apsched.h>
#include <apsched_redis.h>
#include <stdio.h>

#include "../redis_server.h"

static int job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

int main(void) {
  if (redis_server_start("none") != 0) return redis_server_unavailable() == 77 ? 0 : 1;
  apsched_scheduler *s;
  apsched_jobstore *st;
  char err[256];
  int ok = apsched_register_func("consumer.job", job) == APSCHED_OK &&
           apsched_create(NULL, &s) == APSCHED_OK;
  apsched_redis_options ro = {.url = redis_server_url(), .prefix = "consumer"};
  if (ok && apsched_redis_store_create(&ro, &st, err, sizeof err) != APSCHED_OK) {
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
  printf("consumer: libapsched-redis with libapsched %s, job kept: %s\n", apsched_version(),
         ok ? "yes" : "no");
  return ok ? 0 : 1;
}
