/* The store's one connection: opened at create, used by one call at a time
 * (the scheduler serializes a store's calls), and opened again by the first
 * call after it was lost (a restarted server, a dropped network, a
 * terminated backend). The call that finds it lost fails with the server's
 * or libpq's message, and the scheduler retries with backoff: the retry
 * reconnects. A transaction open when the connection was lost is rolled
 * back by the server, so nothing is ever half-written. */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* What every new session of l needs before its first statement. */
static int session_setup(pg_link *l) {
  if (l->idle_in_transaction_ms <= 0) return APSCHED_OK;
  char sql[96];
  snprintf(sql, sizeof sql, "SET idle_in_transaction_session_timeout = %d",
           l->idle_in_transaction_ms);
  return apsched__pg_command(l, sql, "setting idle_in_transaction_session_timeout");
}

/* Server notices (VACUUM (SKIP_LOCKED)'s "skipping vacuum of ... lock not
 * available", "... already exists, skipping") tell nothing the store does
 * not check itself; libpq's default prints them on stderr, which a library
 * must not write to. Kept across PQreset. */
static void drop_notice(void *arg, const PGresult *res) {
  (void)arg;
  (void)res;
}

int apsched__pg_ready(pg_link *l) {
  if (!l->conn) {
    /* expand_dbname: conninfo may be a URL or key=value pairs; a
     * fallback_application_name shows who is connected in pg_stat_activity. */
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const values[] = {l->conninfo, "libapsched", NULL};
    l->conn = PQconnectdbParams(keys, values, 1);
    if (!l->conn) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
    PQsetNoticeReceiver(l->conn, drop_notice, NULL);
    if (PQstatus(l->conn) != CONNECTION_OK) return apsched__pg_fail(l, NULL, "cannot connect");
    return session_setup(l);
  }
  if (PQstatus(l->conn) == CONNECTION_OK) return APSCHED_OK;
  PQreset(l->conn);
  if (PQstatus(l->conn) != CONNECTION_OK) return apsched__pg_fail(l, NULL, "cannot reconnect");
  return session_setup(l);
}

void apsched__pg_disconnect(pg_link *l) {
  PQfinish(l->conn);
  l->conn = NULL;
}

PGresult *apsched__pg_exec(pg_link *l, const char *sql, int n, const char *const *values,
                           const int *lengths, const int *formats, bool binary, const char *what,
                           int *rc) {
  PGresult *res = PQexecParams(l->conn, sql, n, NULL, values, lengths, formats, binary ? 1 : 0);
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
  *rc = apsched__pg_fail(l, res, what);
  PQclear(res);
  return NULL;
}

int apsched__pg_command(pg_link *l, const char *sql, const char *what) {
  int rc = APSCHED_OK;
  PQclear(apsched__pg_exec(l, sql, 0, NULL, NULL, NULL, false, what, &rc));
  return rc;
}

bool apsched__pg_in_transaction(const pg_link *l) {
  PGTransactionStatusType t = l->conn ? PQtransactionStatus(l->conn) : PQTRANS_UNKNOWN;
  return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}
