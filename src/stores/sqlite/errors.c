/* Error messages of the SQLite store: SQLite's own words, prefixed with the
 * file and what the store was doing, so "database is locked", "database or
 * disk is full", "attempt to write a readonly database" and "file is not a
 * database" reach apsched_last_error() and the scheduler's logs. */
#include "sqlite_internal.h"

#include <stdarg.h>
#include <stdio.h>

/* The last message on this thread, for apsched_sqlite_store_create's errbuf
 * (the core keeps apsched_plugin_error's copy to itself). */
static _Thread_local char last_message[512];

int apsched__sqlite_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
  return apsched_plugin_error(code, "%s", last_message);
}

const char *apsched__sqlite_last_error(void) { return last_message; }

int apsched__sqlite_fail(sqlite3 *db, const char *path, const char *what) {
  int err = db ? sqlite3_errcode(db) : SQLITE_NOMEM;
  const char *msg = db ? sqlite3_errmsg(db) : "out of memory";
  int code = (err & 0xff) == SQLITE_NOMEM ? APSCHED_ENOMEM : APSCHED_EBACKEND;
  return apsched__sqlite_error(code, "'%s': %s: %s", path, what, msg);
}
