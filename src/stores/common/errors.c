/* Error messages of the store libraries: each goes to apsched_plugin_error
 * (the scheduler's logs and apsched_last_error) and is kept per thread for
 * the errbuf of the store's create function. */
#include "store_common.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_message[512];

int apsched__pstore_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
  return apsched_plugin_error(code, "%s", last_message);
}

const char *apsched__pstore_last_error(void) { return last_message; }
