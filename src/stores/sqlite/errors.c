/* Error messages of the SQLite store: SQLite's own words, prefixed with the
 * file and what the store was doing, so "database is locked", "database or
 * disk is full", "attempt to write a readonly database" and "file is not a
 * database" reach apsched_last_error() and the scheduler's logs. */
#include "sqlite_internal.h"

int apsched__sqlite_fail(sqlite3 *db, const char *path, const char *what) {
  int err = db ? sqlite3_errcode(db) : SQLITE_NOMEM;
  const char *msg = db ? sqlite3_errmsg(db) : "out of memory";
  int code = (err & 0xff) == SQLITE_NOMEM ? APSCHED_ENOMEM : APSCHED_EBACKEND;
  return apsched__pstore_error(code, "'%s': %s: %s", path, what, msg);
}
