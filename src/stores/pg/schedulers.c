/* apsched_pg_schedulers: who shares a schema, as `apsched schedulers` shows
 * it. A connection of its own, so it never touches a store's connection
 * (any process, any time), and it never registers itself. */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* $1: the schema name (for the advisory lock keys). Times as microseconds
 * of the database's clock. */
static const char list_sql[] =
    "SELECT s.id, s.name, s.host, s.pid,"
    " (extract(epoch FROM s.started_at) * 1000000)::bigint,"
    " (extract(epoch FROM s.heartbeat_at) * 1000000)::bigint, s.lease_ms,"
    " " PG_SCHEDULER_ALIVE("s", "$1") " AS alive,"
    " (SELECT count(*) FROM @.runs r WHERE r.owner = s.id AND r.started_at IS NULL),"
    " (SELECT count(*) FROM @.runs r WHERE r.owner = s.id AND r.started_at IS NOT NULL)"
    " FROM @.schedulers s ORDER BY alive DESC, s.started_at, s.id";

static int list(pg_link *l, int (*visit)(const apsched_pg_scheduler *, void *), void *ud) {
  int rc = apsched__pg_ready(l);
  if (rc != APSCHED_OK) return rc;
  l->quoted = PQescapeIdentifier(l->conn, l->schema, strlen(l->schema));
  if (!l->quoted) return apsched__pg_fail(l, NULL, "quoting the schema name");
  if ((rc = apsched__pg_schema_ensure(l, true)) != APSCHED_OK) return rc;
  char *sql = apsched__pstore_expand(list_sql, l->quoted);
  if (!sql) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  const char *values[1] = {l->schema};
  PGresult *res = apsched__pg_exec(l, sql, 1, values, NULL, NULL, false,
                                   "listing the schedulers", &rc);
  free(sql);
  if (!res) return rc;
  for (int row = 0; row < PQntuples(res); row++) {
    apsched_pg_scheduler sch = {
        .id = PQgetvalue(res, row, 0),
        .name = PQgetisnull(res, row, 1) ? NULL : PQgetvalue(res, row, 1),
        .host = PQgetvalue(res, row, 2),
        .pid = atoi(PQgetvalue(res, row, 3)),
        .started_at = strtoll(PQgetvalue(res, row, 4), NULL, 10),
        .heartbeat_at = strtoll(PQgetvalue(res, row, 5), NULL, 10),
        .lease_ms = atoi(PQgetvalue(res, row, 6)),
        .alive = strcmp(PQgetvalue(res, row, 7), "t") == 0,
        .claimed = strtoul(PQgetvalue(res, row, 8), NULL, 10),
        .running = strtoul(PQgetvalue(res, row, 9), NULL, 10),
    };
    if (visit(&sch, ud) != 0) break;
  }
  PQclear(res);
  return APSCHED_OK;
}

int apsched_pg_schedulers(const apsched_pg_options *opts,
                          int (*visit)(const apsched_pg_scheduler *sch, void *ud), void *ud,
                          char *errbuf, size_t errlen) {
  int rc = apsched__pg_check_options(opts);
  if (rc == APSCHED_OK && !visit)
    rc = apsched__pstore_error(APSCHED_EINVAL, "postgresql store: visit is NULL");
  if (rc == APSCHED_OK) {
    pg_link l = {.conninfo = (char *)opts->conninfo,
                 .schema = (char *)(opts->schema ? opts->schema : "apsched")};
    rc = list(&l, visit, ud);
    PQfreemem(l.quoted);
    apsched__pg_disconnect(&l);
  }
  if (rc != APSCHED_OK && errbuf && errlen)
    snprintf(errbuf, errlen, "%s", apsched__pstore_last_error());
  return rc;
}
