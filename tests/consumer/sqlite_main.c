/* Checks that the installed libapsched-sqlite links and keeps a job in a file. */
#include <apsched.h>
#include <apsched_sqlite.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int job(apsched_run_ctx *run) {
  (void)run;
  return 0;
}

int main(void) {
  char dir[] = "/tmp/apsched-consumer-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char path[64], side[80];
  snprintf(path, sizeof path, "%s/jobs.db", dir);
  apsched_scheduler *s;
  apsched_jobstore *st;
  char err[256];
  int ok = apsched_register_func("consumer.job", job) == APSCHED_OK &&
           apsched_create(NULL, &s) == APSCHED_OK;
  if (ok && apsched_sqlite_store_create(&(apsched_sqlite_options){.path = path}, &st, err,
                                        sizeof err) != APSCHED_OK) {
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
  const char *suffixes[] = {"", "-wal", "-shm", "-lock"};
  for (int i = 0; i < 4; i++) {
    snprintf(side, sizeof side, "%s%s", path, suffixes[i]);
    unlink(side);
  }
  rmdir(dir);
  printf("consumer: libapsched-sqlite with libapsched %s, job kept: %s\n", apsched_version(),
         ok ? "yes" : "no");
  return ok ? 0 : 1;
}
