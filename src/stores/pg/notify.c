/* Wake-ups across processes: a write that changes jobs (add, update,
 * remove, a release to an earlier time) sends NOTIFY on the schema's
 * channel inside its transaction, so it is delivered at COMMIT; every
 * scheduler LISTENs on its heartbeat connection and wakes its loop. A lost
 * notification costs only latency: the loop still polls every max_wait.
 * The payload "stop" says a run was asked to stop (waiting.c): each
 * scheduler then reads whether it was one of its own. */
#include "pg_internal.h"

#include <stdio.h>
#include <string.h>

/* A channel name is an identifier (at most 63 bytes): a digest of the
 * schema, which may be that long itself. */
int apsched__pg_channel(pg_store *ps) {
  const char *values[1] = {ps->link.schema};
  int rc = APSCHED_OK;
  PGresult *res = apsched__pg_exec(&ps->link, "SELECT 'apsched_' || md5($1)", 1, values, NULL,
                                   NULL, false, "naming the notification channel", &rc);
  if (!res) return rc;
  snprintf(ps->channel, sizeof ps->channel, "%s", PQgetvalue(res, 0, 0));
  PQclear(res);
  return APSCHED_OK;
}

int apsched__pg_notify(pg_store *ps) {
  const char *values[1] = {ps->channel};
  int rc = APSCHED_OK;
  PQclear(apsched__pg_exec(&ps->link, "SELECT pg_notify($1, '')", 1, values, NULL, NULL, false,
                           "notifying the other schedulers", &rc));
  return rc;
}

int apsched__pg_listen(pg_store *ps, pg_link *l) {
  char *quoted = PQescapeIdentifier(l->conn, ps->channel, strlen(ps->channel));
  if (!quoted) return apsched__pg_fail(l, NULL, "quoting the notification channel");
  char sql[96];
  snprintf(sql, sizeof sql, "LISTEN %s", quoted);
  PQfreemem(quoted);
  return apsched__pg_command(l, sql, "listening for other schedulers' changes");
}

unsigned apsched__pg_notified(pg_link *l) {
  unsigned heard = 0;
  for (PGnotify *n; (n = PQnotifies(l->conn)) != NULL; PQfreemem(n))
    heard |= PG_HEARD_CHANGE | (strcmp(n->extra, "stop") == 0 ? PG_HEARD_STOP : 0);
  return heard;
}
