/* Checks that the installed headers and library agree and that a job runs. */
#include <apsched.h>
#include <stdio.h>
#include <string.h>

static int ran;

static int job(apsched_run_ctx *run) {
  (void)run;
  ran = 1;
  return 0;
}

int main(void) {
  if (strcmp(apsched_version(), APSCHED_VERSION_STRING) != 0) {
    fprintf(stderr, "header %s, library %s\n", APSCHED_VERSION_STRING, apsched_version());
    return 1;
  }
  apsched_scheduler *s;
  apsched_executor *ex;
  if (apsched_create(NULL, &s) != APSCHED_OK || apsched_inline_executor_create(&ex) != APSCHED_OK ||
      apsched_add_executor(s, ex, "default") != APSCHED_OK)
    return 1;
  apsched_job_options o = {.func = job};
  if (apsched_add_job(s, &o, NULL, 0) != APSCHED_OK || apsched_start_hosted(s, false) != APSCHED_OK)
    return 1;
  int64_t wait;
  apsched_process(s, &wait);
  apsched_free(s);
  printf("consumer: libapsched %s, job ran: %s\n", apsched_version(), ran ? "yes" : "no");
  return ran ? 0 : 1;
}
