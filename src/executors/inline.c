/* The inline executor: runs jobs in the scheduler's own thread, at once
 * (like APScheduler's DebugExecutor). A long job delays every other job. */
#include "../internal.h"

#include <stdatomic.h>
#include <stdlib.h>

typedef struct inline_executor {
  apsched_executor base;
  /* Atomic: submit reads it on the loop's thread while shutdown may write it
   * from any thread, with no lock in common. */
  atomic_bool stopped;
} inline_executor;

/* Nesting depth of inline runs on this thread (a job may trigger more). */
static _Thread_local int inline_depth;

static int inline_start(apsched_executor *ex, apsched_scheduler *s, const char *alias) {
  (void)s;
  (void)alias;
  atomic_store(&((inline_executor *)ex)->stopped, false);
  return APSCHED_OK;
}

static int inline_submit(apsched_executor *ex, apsched_run_ctx *run) {
  if (atomic_load(&((inline_executor *)ex)->stopped))
    return apsched__error(APSCHED_ESTATE, "inline executor '%s': shut down, not accepting runs",
                          apsched_run_executor(run));
  inline_depth++;
  apsched_run_execute(run);
  inline_depth--;
  return APSCHED_OK;
}

static void inline_shutdown(apsched_executor *ex, bool wait) {
  (void)wait; /* nothing queued: a running job is on the caller's own stack */
  atomic_store(&((inline_executor *)ex)->stopped, true);
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
  if (!out) return apsched__error(APSCHED_EINVAL, "inline executor: out is NULL");
  inline_executor *ex = calloc(1, sizeof *ex);
  if (!ex) return apsched__error(APSCHED_ENOMEM, "inline executor: out of memory");
  ex->base.vtable = &inline_vtable;
  atomic_init(&ex->stopped, false);
  *out = &ex->base;
  return APSCHED_OK;
}
