/* The job part of a run record's JSON ({P}:runs:OWNER, scripts.c), written
 * here rather than by the commit script: cjson.encode in the script cost
 * the one server thread 3 us per run; the schedulers have cores to spare.
 * Strings are escaped as lua-cjson escapes them (quote, backslash, control
 * characters; other bytes as they are), so cjson.decode reads them back
 * byte for byte, the argument's bytes included. */
#include "redis_internal.h"

#include <stdlib.h>
#include <string.h>

/* Appends "name":"value" (value escaped) at p; returns the end. */
static char *member(char *p, const char *name, const char *value, size_t len) {
  size_t nlen = strlen(name);
  *p++ = ',';
  *p++ = '"';
  p = (char *)memcpy(p, name, nlen) + nlen;
  *p++ = '"';
  *p++ = ':';
  *p++ = '"';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)value[i];
    if (c == '"' || c == '\\') {
      *p++ = '\\';
      *p++ = (char)c;
    } else if (c == '\n') {
      p = memcpy(p, "\\n", 2) + 2;
    } else if (c == '\t') {
      p = memcpy(p, "\\t", 2) + 2;
    } else if (c < 0x20) {
      static const char hex[] = "0123456789abcdef";
      p = memcpy(p, "\\u00", 4) + 4;
      *p++ = hex[c >> 4];
      *p++ = hex[c & 15];
    } else {
      *p++ = (char)c;
    }
  }
  *p++ = '"';
  return p;
}

char *apsched__redis_run_json_tail(const apsched_job_record *rec, size_t *len) {
  size_t arglen = 0;
  const void *arg = apsched_job_args_bytes(rec->args, &arglen);
  const char *name = rec->name ? rec->name : "";
  size_t strings = strlen(rec->func->name) + strlen(rec->executor) + strlen(name) + arglen;
  /* 6 bytes per byte at most (\u00XX), plus the names and numbers. */
  char *out = malloc(6 * strings + 192);
  if (!out) return NULL;
  char *p = out, num[24];
  p = member(p, "func", rec->func->name, strlen(rec->func->name));
  /* Members at their default are left out (the readers in scripts.c
   * default them): a run record is written to the AOF twice. */
  if (strcmp(rec->executor, "default") != 0)
    p = member(p, "executor", rec->executor, strlen(rec->executor));
  unsigned max = apsched__redis_instance_limit(rec);
  if (max != 1) p = member(p, "max_instances", num, apsched__pstore_i64(num, max));
  if (rec->max_runtime_ms) p = member(p, "max_runtime_ms", num, apsched__pstore_i64(num, rec->max_runtime_ms));
  if (rec->flags & APSCHED_JOB_AT_LEAST_ONCE) p = member(p, "delivery", "at_least_once", 13);
  if (rec->name) p = member(p, "name", name, strlen(name));
  if (arglen) p = member(p, "arg", arg, arglen);
  *p++ = '}';
  *p = '\0';
  *len = (size_t)(p - out);
  return out;
}
