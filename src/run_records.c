/* Ended runs on their way back to their store. A store that tracks runs
 * (runs_open set *track: at-least-once jobs, a run history) gets them in
 * runs_closed. Runs end on executor threads; their results are queued on the
 * store's entry and handed over in batches by the loop that serves the
 * store, so a blocking store closes many runs in one transaction and is
 * never called from a worker. */
#include "scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

void apsched__runs_ended(apsched_scheduler *s, const char *jobstore, const apsched_run_result *r,
                         size_t n) {
  store_entry *se = apsched__find_store(s, jobstore);
  if (!se || !se->runs_closed || n == 0) return; /* the store is gone: its records stay open */
  if (se->closed_count + n > se->closed_cap) {
    size_t cap = se->closed_cap ? se->closed_cap : 16;
    while (cap < se->closed_count + n) cap *= 2;
    apsched_run_result *grown = realloc(se->closed, cap * sizeof *grown);
    if (!grown) {
      apsched__log(s, APSCHED_LOG_ERROR,
                   "Out of memory: the end of %zu run(s) of job \"%s\" is not recorded in job "
                   "store \"%s\" (their records stay open)",
                   n, r[0].job_id, se->alias);
      return;
    }
    se->closed = grown;
    se->closed_cap = cap;
  }
  bool was_empty = se->closed_count == 0;
  for (size_t i = 0; i < n; i++) {
    apsched_run_result c = r[i];
    c.job_id = apsched__strdup(r[i].job_id);
    c.error = r[i].error ? apsched__strdup(r[i].error) : NULL;
    if (!c.job_id || (r[i].error && !c.error)) {
      apsched__run_result_free(&c);
      apsched__log(s, APSCHED_LOG_ERROR,
                   "Out of memory: the end of a run of job \"%s\" is not recorded in job store "
                   "\"%s\" (its record stays open)",
                   r[i].job_id, se->alias);
      continue;
    }
    se->closed[se->closed_count++] = c;
  }
  if (was_empty && se->closed_count > 0) apsched__wake(s, apsched__store_waker(s, se));
}

size_t apsched__runs_take(store_entry *se, apsched_run_result **batch, size_t *cap) {
  /* Taken out of the entry: runs that end meanwhile queue up behind a fresh
   * array. Nothing queued: the array (if any) stays for the next ones. */
  size_t n = se->closed_count;
  if (n == 0) {
    *batch = NULL;
    *cap = 0;
    return 0;
  }
  *batch = se->closed;
  *cap = se->closed_cap;
  se->closed = NULL;
  se->closed_count = se->closed_cap = 0;
  return n;
}

void apsched__runs_settle(apsched_scheduler *s, store_entry *se, apsched_run_result *batch, size_t n,
                          size_t cap, bool recorded) {
  if (recorded || n == 0) {
    for (size_t i = 0; i < n; i++) apsched__run_result_free(&batch[i]);
    free(batch);
    return;
  }
  /* Kept, in front of what ended meanwhile, for the next try. */
  if (se->closed_count > 0) {
    size_t total = n + se->closed_count;
    if (total > cap) {
      apsched_run_result *grown = realloc(batch, total * sizeof *grown);
      if (!grown) {
        /* Cannot keep both: keep the newer ones; the older records stay open. */
        apsched__log(s, APSCHED_LOG_ERROR,
                     "Out of memory: the end of %zu run(s) is not recorded in job store \"%s\" "
                     "(their records stay open)",
                     n, se->alias);
        for (size_t i = 0; i < n; i++) apsched__run_result_free(&batch[i]);
        free(batch);
        return;
      }
      batch = grown;
      cap = total;
    }
    memcpy(batch + n, se->closed, se->closed_count * sizeof *batch);
    free(se->closed);
    n = total;
  }
  se->closed = batch;
  se->closed_count = n;
  se->closed_cap = cap;
}

int apsched__runs_flush(apsched_scheduler *s, store_entry *se) {
  apsched_run_result *batch;
  size_t cap, n = apsched__runs_take(se, &batch, &cap);
  if (n == 0) return APSCHED_OK;
  apsched__store_enter(s, se);
  int rc = se->runs_closed(se->store, batch, n);
  apsched__store_leave(s, se);
  apsched__runs_settle(s, se, batch, n, cap, rc == APSCHED_OK);
  return rc;
}
