/* Error strings and the library version. */
#include "internal.h"

#include <stdio.h>

const char *apsched_strerror(int code) {
  switch (code) {
  case APSCHED_OK: return "success";
  case APSCHED_EINVAL: return "invalid argument";
  case APSCHED_ENOENT: return "no such job, store, executor or listener";
  case APSCHED_EEXIST: return "id or alias already in use";
  case APSCHED_ESTATE: return "wrong scheduler state";
  case APSCHED_ENOMEM: return "out of memory";
  case APSCHED_EBACKEND: return "job store or executor failure";
  case APSCHED_ESYS: return "system call failed";
  case APSCHED_EDEADLK: return "the call would wait for the calling thread itself";
  case APSCHED_ERANGE: return "value out of range";
  default: return "unknown error";
  }
}

/* The message of the last failed call on this thread (see apsched_last_error). */
static _Thread_local char last_error[256];

const char *apsched_last_error(void) { return last_error; }

int apsched__error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return code;
}

const char *apsched_version(void) { return APSCHED_VERSION_STRING; }

int apsched_version_number(void) { return APSCHED_VERSION_NUMBER; }
