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
#include <string.h>

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

/* A statement prepared on the link's session: its text and its name there. */
typedef struct pg_prepared {
  char *sql;
  char name[32];
} pg_prepared;

/* At most this many per session: the store's statements are a few dozen
 * (found by comparing texts, which differ early); a text beyond them runs
 * unprepared. */
#define PREPARED_MAX 128

/* Forgets every prepared statement: the session they lived in is gone, or
 * they are to be prepared again under new names (the old ones stay on the
 * server until the session ends: a failed transaction cannot drop them). */
static void prepared_forget(pg_link *l) {
  for (size_t i = 0; i < l->nprepared; i++) free(l->prepared[i].sql);
  free(l->prepared);
  l->prepared = NULL;
  l->nprepared = 0;
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
  prepared_forget(l);
  PQreset(l->conn);
  if (PQstatus(l->conn) != CONNECTION_OK) return apsched__pg_fail(l, NULL, "cannot reconnect");
  return session_setup(l);
}

void apsched__pg_disconnect(pg_link *l) {
  prepared_forget(l);
  PQfinish(l->conn);
  l->conn = NULL;
}

/* The entry of sql among the session's prepared statements, preparing it
 * first if needed (one more round trip, once); -1 when it is not prepared
 * (the cache is full, or memory short: it runs unprepared), -2 when the
 * server refused it (*res then holds the failed result). */
static long prepared_index(pg_link *l, const char *sql, int n, PGresult **res) {
  for (size_t i = 0; i < l->nprepared; i++)
    if (strcmp(l->prepared[i].sql, sql) == 0) return (long)i;
  if (l->nprepared == PREPARED_MAX) return -1;
  pg_prepared *grown = realloc(l->prepared, (l->nprepared + 1) * sizeof *grown);
  if (!grown) return -1;
  l->prepared = grown;
  pg_prepared *p = &l->prepared[l->nprepared];
  if (!(p->sql = strdup(sql))) return -1;
  snprintf(p->name, sizeof p->name, "apsched_%lu", l->prepared_names);
  *res = PQprepare(l->conn, p->name, sql, n, NULL);
  if (!*res || PQresultStatus(*res) != PGRES_COMMAND_OK) {
    free(p->sql);
    return -2;
  }
  PQclear(*res);
  *res = NULL;
  l->prepared_names++;
  return (long)l->nprepared++;
}

static PGresult *exec(pg_link *l, const char *sql, int n, const char *const *values,
                      const int *lengths, const int *formats, bool binary, const char *what,
                      int *rc, bool prepare) {
  PGresult *res = NULL;
  long i = prepare ? prepared_index(l, sql, n, &res) : -1;
  if (i >= 0) {
    res = PQexecPrepared(l->conn, l->prepared[i].name, n, values, lengths, formats, binary ? 1 : 0);
  } else if (i == -1) {
    res = PQexecParams(l->conn, sql, n, NULL, values, lengths, formats, binary ? 1 : 0);
  }
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
  /* The statement's plan no longer fits its tables (a schema change since
   * it was prepared, e.g. a column's type: SQLSTATE 0A000), or the session
   * lost it (26000): prepared again by the next call. Outside a
   * transaction this call runs again at once, unprepared; inside one it
   * fails (the transaction is spoilt) and the scheduler's retry runs it. */
  const char *state = apsched__pg_sqlstate(res);
  if (i >= 0 && (strcmp(state, "0A000") == 0 || strcmp(state, "26000") == 0)) {
    prepared_forget(l);
    if (PQtransactionStatus(l->conn) == PQTRANS_IDLE) {
      PQclear(res);
      return exec(l, sql, n, values, lengths, formats, binary, what, rc, false);
    }
  }
  *rc = apsched__pg_fail(l, res, what);
  PQclear(res);
  return NULL;
}

PGresult *apsched__pg_exec(pg_link *l, const char *sql, int n, const char *const *values,
                           const int *lengths, const int *formats, bool binary, const char *what,
                           int *rc) {
  /* Statements without parameters (BEGIN, COMMIT, DDL) are cheap to plan
   * or run once: only those with parameters are prepared. */
  return exec(l, sql, n, values, lengths, formats, binary, what, rc, n > 0);
}

PGresult *apsched__pg_exec_custom(pg_link *l, const char *sql, int n, const char *const *values,
                                  const char *what, int *rc) {
  return exec(l, sql, n, values, NULL, NULL, false, what, rc, false);
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
