/* Calling job stores. A store that does no I/O is called under the
 * scheduler lock; a blocking one (APSCHED_STORE_BLOCKING) is pinned and
 * called under its own call lock with the scheduler lock dropped, so a slow
 * or dead database delays only its own jobs. The loop's store failures are
 * events, retried with a capped backoff. */
#include "scheduler_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first retry of a failing store; doubled per failure up to
 * apsched_config.store_retry_interval. */
#define FIRST_RETRY (100 * APSCHED_MSEC)

void apsched__store_pin(store_entry *se) { se->pins++; }

void apsched__run_result_free(apsched_run_result *r) {
  free((char *)r->job_id);
  free((char *)r->error);
}

void apsched__runs_drop(store_entry *se) {
  for (size_t i = 0; i < se->closed_count; i++) apsched__run_result_free(&se->closed[i]);
  free(se->closed);
  se->closed = NULL;
  se->closed_count = se->closed_cap = 0;
}

void apsched__failures_drop(store_entry *se) {
  while (se->failure_reports) {
    failure_report *r = se->failure_reports;
    se->failure_reports = r->next;
    free(r);
  }
}

void apsched__store_entry_free(apsched_scheduler *s, store_entry *se) {
  apsched__runs_drop(se);
  apsched__failures_drop(se);
  if (se->blocking) {
    pthread_mutex_destroy(&se->call_lock);
    apsched__waker_destroy(&se->waker);
  }
  apsched__dealloc(s, se);
}

void apsched__store_unpin(apsched_scheduler *s, store_entry *se) {
  if (--se->pins > 0 || !se->removed) return;
  /* The last user of a removed store: unlink it from the removed list. */
  store_entry **pp = &s->removed_stores;
  while (*pp != se) pp = &(*pp)->next;
  *pp = se->next;
  /* A blocking store may block while it closes (a connection): not under
   * the lock. Nothing can reach the entry any more. */
  if (se->blocking) apsched__unlock(s);
  if (se->store->vtable->close) se->store->vtable->close(se->store);
  se->store->vtable->destroy(se->store);
  if (se->blocking) apsched__lock(s);
  apsched__store_entry_free(s, se);
  pthread_cond_broadcast(&s->changed);
}

void apsched__store_enter(apsched_scheduler *s, store_entry *se) {
  if (!se->blocking) return;
  apsched__store_pin(se);
  apsched__unlock(s);
  pthread_mutex_lock(&se->call_lock);
}

void apsched__store_leave(apsched_scheduler *s, store_entry *se) {
  if (!se->blocking) return;
  pthread_mutex_unlock(&se->call_lock);
  apsched__lock(s);
  apsched__store_unpin(s, se);
}

void apsched__section_lock(apsched_scheduler *s, store_entry *se) {
  if (se->blocking) apsched__lock(s);
}

void apsched__section_unlock(apsched_scheduler *s, store_entry *se) {
  if (se->blocking) apsched__unlock(s);
}

int apsched__store_run_starting(apsched_scheduler *s, const char *jobstore, const char *job_id,
                                apsched_time_t scheduled_time, unsigned attempt, char *why,
                                size_t whylen) {
  why[0] = '\0';
  apsched__lock(s);
  store_entry *se = apsched__find_store(s, jobstore);
  if (!se || !se->run_starting) {
    apsched__unlock(s);
    return APSCHED_OK;
  }
  apsched__store_pin(se);
  apsched__unlock(s);
  int rc = se->run_starting(se->store, job_id, scheduled_time, attempt);
  if (rc != APSCHED_OK) snprintf(why, whylen, "%s", apsched__take_plugin_error());
  apsched__lock(s);
  apsched__store_unpin(s, se);
  apsched__unlock(s);
  return rc;
}

int apsched__store_error(store_entry *se, const char *call, int rc) {
  const char *why = apsched__take_plugin_error();
  return apsched__error(rc, "job store '%s' (%s): %s failed: %s%s%s", se->alias,
                        se->store->vtable->kind ? se->store->vtable->kind : "?", call,
                        apsched_strerror(rc), why[0] ? ": " : "", why);
}

bool apsched__store_backing_off(store_entry *se, apsched_time_t now) {
  return se->failing && se->retry_at != APSCHED_TIME_NONE && now < se->retry_at;
}

void apsched__store_outcome(apsched_scheduler *s, store_entry *se, int rc, const char *what,
                            notice_list *nl) {
  if (rc == APSCHED_OK) {
    if (!se->failing) return;
    se->failing = false;
    se->backoff = 0;
    se->retry_at = APSCHED_TIME_NONE;
    notice *n = apsched__notice_if_wanted(s, nl, APSCHED_EVENT_JOBSTORE_RECOVERED);
    if (n) n->ev.alias = se->alias;
    apsched__log_later(s, nl, APSCHED_LOG_WARNING, "Job store \"%s\" works again", se->alias);
    return;
  }
  const char *why = apsched__take_plugin_error();
  bool first = !se->failing;
  se->failing = true;
  se->backoff = first ? FIRST_RETRY : se->backoff * 2;
  if (se->backoff > s->store_retry_max) se->backoff = s->store_retry_max;
  apsched_time_t now = apsched__wall(s);
  se->retry_at = now + se->backoff;
  if (!first) return; /* reported once per outage */
  notice *n = apsched__notice_if_wanted(s, nl, APSCHED_EVENT_JOBSTORE_FAILED);
  if (n) {
    n->ev.alias = se->alias;
    n->ev.retval = rc;
    if (why[0] && (n->owned = apsched__sdup(s, why))) n->ev.error = n->owned;
  }
  char d[64];
  apsched__format_duration(se->backoff, d, sizeof d);
  apsched__log_later(s, nl, APSCHED_LOG_ERROR,
                     "Error %s job store \"%s\": %s%s%s; retrying in %s, then with backoff up to "
                     "the retry interval",
                     what, se->alias, apsched_strerror(rc), why[0] ? ": " : "", why, d);
}
