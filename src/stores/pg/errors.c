/* Error messages of the PostgreSQL store: the server's own words (its
 * primary message: "duplicate key value ...", "terminating connection due
 * to administrator command") or libpq's ("connection to server on socket
 * ... failed: No such file or directory"), on one line, prefixed with the
 * schema and what the store was doing. */
#include "pg_internal.h"

#include <stdio.h>
#include <string.h>

/* Copies text into buf on one line: newlines and tabs become single spaces. */
static void one_line(char *buf, size_t len, const char *text) {
  size_t k = 0;
  bool space = false;
  for (const char *p = text; *p && k + 1 < len; p++) {
    bool ws = *p == '\n' || *p == '\t' || *p == '\r' || *p == ' ';
    if (ws) {
      space = k > 0;
      continue;
    }
    if (space && k + 2 < len) buf[k++] = ' ';
    space = false;
    buf[k++] = *p;
  }
  buf[k] = '\0';
}

int apsched__pg_fail(const pg_link *l, const PGresult *res, const char *what) {
  const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *text = primary              ? primary
                     : res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                     : l->conn            ? PQerrorMessage(l->conn)
                                          : "out of memory";
  char msg[400];
  one_line(msg, sizeof msg, *text ? text : "unknown error");
  return apsched__pstore_error(APSCHED_EBACKEND, "postgresql schema '%s': %s: %s", l->schema, what,
                               msg);
}

const char *apsched__pg_sqlstate(const PGresult *res) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  return state ? state : "";
}
