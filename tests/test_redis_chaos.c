/* The chaos test of schedulers sharing one Redis prefix (issue 10), the
 * same as PostgreSQL's (tests/chaos_support.h runs both: three scheduler
 * processes, 64 jobs due every second for 45 s, at least 110 SIGKILLs, one
 * scheduler stopped past 2 x its lease, the server restarted once; exactly
 * once checked against a file the jobs append to, outside the store).
 * Here the restart is a crash (SIGKILL of redis-server, started again on
 * its data directory) of a server with appendonly yes and appendfsync
 * always: nothing it acknowledged is lost, so every check holds across it
 * (with less, a lost commit's times would run again: README, "What Redis
 * persistence keeps"). This file says how to read the prefix: its
 * schedulers (apsched_redis_schedulers), run records {P}:runs:*,
 * jobs, and the history stream {P}:history, kept for ever here
 * (APSCHED_REDIS_HISTORY_FOREVER). */
#include "support.h"
#include "internal.h"
#include "apsched_redis.h"
#include "redis_server.h"
#include "chaos_support.h"

#define PERSISTENCE "aof-always"

static int redis_store_create(const char *url, const char *prefix, int lease_ms, bool history,
                              apsched_jobstore **out, char *errbuf, size_t errlen) {
  apsched_redis_options o = {.url = url, .prefix = prefix, .lease_ms = lease_ms,
                             .history_retention = history ? APSCHED_REDIS_HISTORY_FOREVER : 0};
  return apsched_redis_store_create(&o, out, errbuf, errlen);
}

/* One command's reply on a connection of its own (the server may have
 * restarted since the last one), failing the test on an error. */
static redisReply *command(const char *what, const char *fmt, ...) {
  redisContext *c = redis_server_connect();
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  if (!r || r->type == REDIS_REPLY_ERROR)
    fail_msg("%s: %s", what, r ? r->str : c->errstr);
  redisFree(c);
  return r;
}

/* An integer reply of fmt with up to two string arguments. */
static long integer(const char *what, const char *fmt, const char *a, const char *b) {
  redisReply *r = command(what, fmt, a, b);
  if (r->type != REDIS_REPLY_INTEGER) fail_msg("%s: not an integer reply", what);
  long n = (long)r->integer;
  freeReplyObject(r);
  return n;
}

typedef struct newest {
  pid_t pid;
  char *id;
  size_t len;
  apsched_time_t started;
} newest;

static int visit_scheduler(const apsched_redis_scheduler *sch, void *ud) {
  newest *n = ud;
  if (sch->pid == n->pid && sch->started_at >= n->started) {
    snprintf(n->id, n->len, "%s", sch->id);
    n->started = sch->started_at;
  }
  return 0;
}

static void redis_scheduler_id(const char *prefix, pid_t pid, char *id, size_t len) {
  apsched_redis_options o = {.url = redis_server_url(), .prefix = prefix};
  newest n = {.pid = pid, .id = id, .len = len, .started = APSCHED_TIME_NONE};
  char err[256];
  id[0] = '\0';
  if (apsched_redis_schedulers(&o, visit_scheduler, &n, err, sizeof err) != APSCHED_OK)
    fail_msg("listing the schedulers: %s", err);
}

/* The run records a scheduler owns (what a survivor takes over from it). */
static long redis_owned_runs(const char *prefix, const char *id) {
  char key[192];
  snprintf(key, sizeof key, "{%s}:runs:%s", prefix, id);
  /* (Each runs hash keeps the empty field "", which is no run.) */
  return integer("counting a scheduler's runs", "EVAL %s 0 %s",
                 "return redis.call('HLEN', ARGV[1]) - redis.call('HEXISTS', ARGV[1], '')", key);
}

static long redis_jobs_left(const char *prefix) {
  return integer("counting the jobs", "ZCARD {%s}:jobs", prefix, NULL);
}

static long redis_runs_left(const char *prefix) {
  return integer("counting the run records", "EVAL %s 0 {%s}:runs:*",
                 "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                 "n = n + redis.call('HLEN', k) - redis.call('HEXISTS', k, '') end return n",
                 prefix);
}

static size_t redis_read_history(const char *prefix, hist_row **out) {
  redisReply *r = command("reading the history stream", "XRANGE {%s}:history - +", prefix);
  if (r->type != REDIS_REPLY_ARRAY) fail_msg("XRANGE: not an array");
  hist_row *v = calloc(r->elements ? r->elements : 1, sizeof *v);
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *f = r->element[i]->element[1];
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
      const char *name = f->element[k]->str, *val = f->element[k + 1]->str;
      if (strcmp(name, "job_id") == 0) snprintf(v[i].job, sizeof v[i].job, "%s", val);
      else if (strcmp(name, "scheduled_time") == 0) v[i].scheduled = atoll(val);
      else if (strcmp(name, "attempt") == 0) v[i].attempt = (unsigned)atoi(val);
      else if (strcmp(name, "outcome") == 0) snprintf(v[i].outcome, sizeof v[i].outcome, "%s", val);
    }
  }
  size_t n = r->elements;
  freeReplyObject(r);
  *out = v;
  return n;
}

/* A crash: SIGKILL, nothing is flushed at exit (AOF always wrote each
 * acknowledged script already). */
static void redis_crash(void) { redis_server_stop(true); }

static int redis_start(char *why, size_t len) {
  int rc = redis_server_start(PERSISTENCE);
  if (rc != 0) snprintf(why, len, "%s", redis_srv.why);
  return rc;
}

static chaos_backend backend = {
    .history = "{prefix}:history",
    .store_create = redis_store_create,
    .scheduler_id = redis_scheduler_id,
    .owned_runs = redis_owned_runs,
    .jobs_left = redis_jobs_left,
    .runs_left = redis_runs_left,
    .read_history = redis_read_history,
    .server_stop = redis_crash,
    .server_start = redis_start,
};

static void test_chaos(void **state) {
  (void)state;
  chaos_run(&backend, "chaos");
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 7 && strcmp(argv[1], "--chaos") == 0) return chaos_child(&backend, argv);
  if (redis_server_start(PERSISTENCE) != 0) return redis_server_unavailable();
  backend.target = redis_server_url();
  if (apsched_register_func(CHAOS_FN, chaos_job) != APSCHED_OK) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chaos),
  };
  return cmocka_run_group_tests_name("redis chaos", tests, NULL, NULL);
}
