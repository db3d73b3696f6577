/* A connection to the server: made on first use and again after a failure
 * (a restarted server, a dropped connection), so the call after a failure
 * recovers; the call that found it lost fails with hiredis's message and
 * the scheduler retries with backoff. A script whose reply was lost may or
 * may not have run: the callers treat that outcome as unknown. */
#include "redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int apsched__redis_fail(const redis_link *l, const char *what, const char *why) {
  return apsched__pstore_error(APSCHED_EBACKEND, "redis prefix '%s': %s: %s", l->prefix, what,
                               why && *why ? why : "unknown error");
}

void apsched__redis_disconnect(redis_link *l) {
  if (l->c) redisFree(l->c);
  l->c = NULL;
  for (int s = 0; s < S_COUNT; s++) l->sha[s][0] = '\0';
}

/* Appends a command to the connection's output, written in RESP here:
 * hiredis's redisFormatSdsCommandArgv formats each argument's header with
 * sdscatfmt and grows its buffer piecewise, a tenth of a scheduler's CPU
 * time per run with a commit's thousands of arguments. REDIS_OK or
 * REDIS_ERR (out of memory, said in l->c->errstr as hiredis says it). */
static int append_command(redis_link *l, int argc, const char *const *argv, const size_t *lens) {
  size_t total = 1 + 20 + 2;
  for (int i = 0; i < argc; i++) total += 1 + 20 + 2 + (lens ? lens[i] : strlen(argv[i])) + 2;
  char *buf = malloc(total), *p = buf;
  if (!buf) {
    l->c->err = REDIS_ERR_OOM;
    snprintf(l->c->errstr, sizeof l->c->errstr, "Out of memory");
    return REDIS_ERR;
  }
  *p++ = '*';
  p += apsched__pstore_i64(p, argc);
  *p++ = '\r';
  *p++ = '\n';
  for (int i = 0; i < argc; i++) {
    size_t len = lens ? lens[i] : strlen(argv[i]);
    *p++ = '$';
    p += apsched__pstore_i64(p, (int64_t)len);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, argv[i], len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
  }
  int rc = redisAppendFormattedCommand(l->c, buf, (size_t)(p - buf));
  free(buf);
  return rc;
}

/* One command and its reply (NULL: I/O failed, or out of memory). */
static redisReply *command_reply(redis_link *l, int argc, const char *const *argv,
                                 const size_t *lens) {
  void *r = NULL;
  if (append_command(l, argc, argv, lens) != REDIS_OK || redisGetReply(l->c, &r) != REDIS_OK)
    return NULL;
  return r;
}

/* One command without the reconnect (the connection must be up). */
static redisReply *raw(redis_link *l, int argc, const char **argv, const size_t *lens,
                       const char *what, int *rc) {
  redisReply *r = command_reply(l, argc, argv, lens);
  if (!r) {
    /* I/O: the connection is unusable now. */
    *rc = apsched__redis_fail(l, what, l->c->errstr);
    apsched__redis_disconnect(l);
    return NULL;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    *rc = apsched__redis_fail(l, what, r->str);
    apsched__redis_reply_free(r);
    return NULL;
  }
  return r;
}

int apsched__redis_ready(redis_link *l) {
  if (l->c && !l->c->err) return APSCHED_OK;
  apsched__redis_disconnect(l);
  struct timeval tv = {l->timeout_ms / 1000, (l->timeout_ms % 1000) * 1000};
  const redis_addr *a = l->addr;
  l->c = a->path ? redisConnectUnixWithTimeout(a->path, tv)
                 : redisConnectWithTimeout(a->host, a->port, tv);
  if (!l->c) return apsched__pstore_error(APSCHED_ENOMEM, "redis store: out of memory");
  int rc = APSCHED_OK;
  if (l->c->err) {
    char where[300];
    if (a->path) snprintf(where, sizeof where, "cannot connect to %s", a->path);
    else snprintf(where, sizeof where, "cannot connect to %s:%d", a->host, a->port);
    rc = apsched__redis_fail(l, where, l->c->errstr);
    apsched__redis_disconnect(l);
    return rc;
  }
  redisSetTimeout(l->c, tv);
  apsched__redis_replies_use(l->c->reader);
  if (!a->path) redisEnableKeepAlive(l->c);
  if (a->password) {
    const char *argv[3] = {"AUTH", a->user ? a->user : a->password, a->password};
    apsched__redis_reply_free(raw(l, a->user ? 3 : 2, argv, NULL, "authenticating", &rc));
  }
  if (rc == APSCHED_OK && a->db != 0) {
    char db[16];
    snprintf(db, sizeof db, "%d", a->db);
    const char *argv[2] = {"SELECT", db};
    apsched__redis_reply_free(raw(l, 2, argv, NULL, "selecting the database", &rc));
  }
  if (rc != APSCHED_OK) apsched__redis_disconnect(l);
  return rc;
}

redisReply *apsched__redis_command(redis_link *l, int argc, const char **argv, const size_t *lens,
                                   const char *what, int *rc) {
  if ((*rc = apsched__redis_ready(l)) != APSCHED_OK) return NULL;
  return raw(l, argc, argv, lens, what, rc);
}

int apsched__redis_pipeline(redis_link *l, size_t n, int argc, const char *const *const *argvs,
                            redisReply **out, const char *what) {
  int rc = apsched__redis_ready(l);
  if (rc != APSCHED_OK) return rc;
  for (size_t i = 0; i < n; i++) {
    if (append_command(l, argc, argvs[i], NULL) != REDIS_OK) {
      rc = apsched__redis_fail(l, what, l->c->errstr);
      apsched__redis_disconnect(l); /* the replies of the appended ones would be out of step */
      return rc;
    }
  }
  for (size_t i = 0; i < n; i++) {
    void *r = NULL;
    if (redisGetReply(l->c, &r) != REDIS_OK || !r) {
      rc = apsched__redis_fail(l, what, l->c->errstr);
      apsched__redis_disconnect(l);
      for (size_t j = 0; j < i; j++) apsched__redis_reply_free(out[j]);
      return rc;
    }
    out[i] = r;
  }
  return APSCHED_OK;
}

/* SCRIPT LOAD s: its SHA1 into l->sha[s]. */
static int load(redis_link *l, redis_script s) {
  const char *argv[3] = {"SCRIPT", "LOAD", apsched__redis_script_text(s)};
  int rc = APSCHED_OK;
  redisReply *r = raw(l, 3, argv, NULL, "loading a script", &rc);
  if (!r) return rc;
  if (r->type == REDIS_REPLY_STRING && r->len == 40) memcpy(l->sha[s], r->str, 41);
  else rc = apsched__redis_fail(l, "loading a script", "unexpected reply");
  apsched__redis_reply_free(r);
  return rc;
}

redisReply *apsched__redis_script(redis_link *l, redis_script s, const char *root, int argc,
                                  const char **argv, const size_t *lens, const char *what,
                                  int *rc) {
  if ((*rc = apsched__redis_ready(l)) != APSCHED_OK) return NULL;
  if (!l->sha[s][0] && (*rc = load(l, s)) != APSCHED_OK) return NULL;
  enum { FIXED = 4 }; /* EVALSHA sha 1 root */
  const char **args = malloc((size_t)(argc + FIXED) * sizeof *args);
  size_t *alens = malloc((size_t)(argc + FIXED) * sizeof *alens);
  if (!args || !alens) {
    free(args);
    free(alens);
    *rc = apsched__pstore_error(APSCHED_ENOMEM, "redis store: out of memory");
    return NULL;
  }
  args[0] = "EVALSHA";
  args[1] = l->sha[s];
  args[2] = "1";
  args[3] = root; /* KEYS[1]: routes the call to the slot of {P} */
  for (int i = 0; i < FIXED; i++) alens[i] = strlen(args[i]);
  for (int i = 0; i < argc; i++) {
    args[FIXED + i] = argv[i];
    alens[FIXED + i] = lens ? lens[i] : strlen(argv[i]);
  }
  redisReply *r = command_reply(l, argc + FIXED, args, alens);
  if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
    /* Flushed or a new server under the same connection: EVAL caches it again. */
    apsched__redis_reply_free(r);
    l->sha[s][0] = '\0';
    args[0] = "EVAL";
    args[1] = apsched__redis_script_text(s);
    alens[0] = 4;
    alens[1] = strlen(args[1]);
    r = command_reply(l, argc + FIXED, args, alens);
  }
  free(args);
  free(alens);
  if (!r) {
    *rc = apsched__redis_fail(l, what, l->c->errstr);
    apsched__redis_disconnect(l);
    return NULL;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    /* The script's own error_reply, or the server's (OOM, READONLY...). */
    *rc = apsched__redis_fail(l, what, r->str);
    apsched__redis_reply_free(r);
    return NULL;
  }
  return r;
}
