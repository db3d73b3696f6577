/* Checks that the installed adapter headers compile as a user gets them
 * (all three in one program, unused ones too, warnings as errors), that
 * only this program links the loops, and that a job runs in a libuv loop. */
#include <apsched.h>
#include <apsched/adapters/glib.h>
#include <apsched/adapters/libevent.h>
#include <apsched/adapters/libuv.h>
#include <stdio.h>

static int ran;

static int job(apsched_run_ctx *run) {
  ran = 1;
  return apsched_shutdown(apsched_run_scheduler(run), false);
}

int main(void) {
  apsched_scheduler *s;
  apsched_executor *ex;
  if (apsched_create(NULL, &s) != APSCHED_OK || apsched_inline_executor_create(&ex) != APSCHED_OK ||
      apsched_add_executor(s, ex, "default") != APSCHED_OK)
    return 1;
  apsched_job_options o = {.func = job};
  apsched_uv *a = NULL;
  if (apsched_add_job(s, &o, NULL, 0) != APSCHED_OK || apsched_start_hosted(s, false) != APSCHED_OK ||
      apsched_uv_attach(uv_default_loop(), s, &a) != APSCHED_OK)
    return 1;
  int rc = uv_run(uv_default_loop(), UV_RUN_DEFAULT); /* returns once the job stopped it */
  apsched_uv_detach(a);
  apsched_free(s);
  printf("consumer: libuv adapter, job ran: %s, uv_run %d, uv_loop_close %d\n", ran ? "yes" : "no",
         rc, uv_loop_close(uv_default_loop()));
  return ran && rc == 0 ? 0 : 1;
}
