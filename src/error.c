/* Error strings and the library version. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

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
  case APSCHED_EBUSY: return "maximum number of running instances reached";
  default: return "unknown error";
  }
}

/* The message of the last failed call on this thread (see apsched_last_error). */
static _Thread_local char last_error[256];

const char *apsched_last_error(void) { return last_error; }

/* Formats through a copy, so that a message may quote apsched_last_error()
 * itself without the output overwriting its own input. */
static void record(const char *fmt, va_list ap) {
  char msg[sizeof last_error];
  vsnprintf(msg, sizeof msg, fmt, ap);
  memcpy(last_error, msg, sizeof msg);
}

int apsched__error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(fmt, ap);
  va_end(ap);
  return code;
}

/* Every message a parser writes into errbuf is also this thread's
 * apsched_last_error(), so callers that pass no errbuf still learn why. */
int apsched__fail(int code, char *errbuf, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  /* Formatted twice: errbuf may be longer (or shorter) than last_error. */
  va_list again;
  va_copy(again, ap);
  record(fmt, again);
  va_end(again);
  if (errbuf && errlen > 0) vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
  return code;
}

/* What a plugin said about its last failure on this thread, taken by the
 * scheduler into the message of the call that failed. */
static _Thread_local char plugin_error[256];

int apsched_plugin_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(plugin_error, sizeof plugin_error, fmt, ap);
  va_end(ap);
  /* Also the caller's last error: a plugin's own public calls (a store's
   * create function) say why through it too. */
  memcpy(last_error, plugin_error, sizeof last_error);
  return code;
}

const char *apsched__take_plugin_error(void) {
  static _Thread_local char taken[sizeof plugin_error];
  memcpy(taken, plugin_error, sizeof taken);
  plugin_error[0] = '\0';
  return taken;
}

const char *apsched_version(void) { return APSCHED_VERSION_STRING; }

int apsched_version_number(void) { return APSCHED_VERSION_NUMBER; }
