/* The inline executor: runs jobs in the scheduler's own thread, at once
 * (like APScheduler's DebugExecutor). A long job delays every other job. */
#include "../internal.h"

#include <stdlib.h>

typedef struct inline_executor {
  apsched_executor base;
  bool stopped;
} inline_executor;

/* Nesting depth of inline runs on this thread (a job may trigger more). */
static _Thread_local int inline_depth;

static int inline_start(apsched_executor *ex, apsched_scheduler *s, const char *alias) {
  (void)s;
  (void)alias;
  ((inline_executor *)ex)->stopped = false;
  return APSCHED_OK;
}

static int inline_submit(apsched_executor *ex, apsched_run_ctx *run) {
  if (((inline_executor *)ex)->stopped) return APSCHED_ESTATE;
  inline_depth++;
  apsched_run_execute(run);
  inline_depth--;
  return APSCHED_OK;
}

static void inline_shutdown(apsched_executor *ex, bool wait) {
  (void)wait; /* nothing queued: a running job is on the caller's own stack */
  ((inline_executor *)ex)->stopped = true;
}

static bool inline_owns_thread(apsched_executor *ex) {
  (void)ex;
  return inline_depth > 0;
}

static void inline_destroy(apsched_executor *ex) { free(ex); }

static const apsched_executor_vtable inline_vtable = {
    .version = APSCHED_EXECUTOR_VTABLE_VERSION,
    .kind = "inline",
    .start = inline_start,
    .submit = inline_submit,
    .shutdown = inline_shutdown,
    .owns_thread = inline_owns_thread,
    .destroy = inline_destroy,
};

int apsched_inline_executor_create(apsched_executor **out) {
  if (!out) return APSCHED_EINVAL;
  inline_executor *ex = calloc(1, sizeof *ex);
  if (!ex) return APSCHED_ENOMEM;
  ex->base.vtable = &inline_vtable;
  *out = &ex->base;
  return APSCHED_OK;
}
