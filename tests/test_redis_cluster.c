/* Several schedulers on one Redis prefix (issue 10), each a process of its
 * own (this binary again, with a --child mode), against a real server
 * (redis_server.h), with the tests every shared store passes
 * (cluster_support.h: every due run exactly once, counted from a file
 * outside the store; max_instances = 1 across the processes; a job added
 * by one process wakes another through PUBLISH), and:
 *  - a scheduler killed with SIGKILL: once its liveness key expires (2 x
 *    its 300 ms lease) a survivor takes its claimed runs over: an
 *    at-least-once run as attempt 2, an at-most-once run that never started
 *    as attempt 1, an at-most-once run that had started is reported lost;
 *  - a scheduler stopped (SIGSTOP) past 2 x its lease: a survivor takes its
 *    runs over, and once it continues it can neither start nor close them
 *    (fencing by owner and token). */
#include "cluster_support.h"
#include "apsched_redis.h"
#include "stores/redis/redis_internal.h"
#include "redis_server.h"

static apsched_jobstore *store_at(const char *url, const char *prefix, int lease_ms) {
  apsched_redis_options o = {.url = url, .prefix = prefix, .lease_ms = lease_ms};
  apsched_jobstore *st = NULL;
  char err[256];
  if (apsched_redis_store_create(&o, &st, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "child: redis store: %s\n", err);
    return NULL;
  }
  return st;
}

/* How many run records the prefix holds (owned by owner, or all: NULL). */
static long run_records(const char *prefix, const char *owner) {
  redisContext *c = redis_server_connect();
  char pattern[128];
  if (owner) snprintf(pattern, sizeof pattern, "{%s}:runs:%s", prefix, owner);
  else snprintf(pattern, sizeof pattern, "{%s}:runs:*", prefix);
  /* (Each runs hash keeps the empty field "", which is no run.) */
  redisReply *r = redisCommand(c, "EVAL %s 0 %s",
                               "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                               "n = n + redis.call('HLEN', k) - redis.call('HEXISTS', k, '') end return n",
                               pattern);
  long n = r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1;
  if (r) freeReplyObject(r);
  redisFree(c);
  return n;
}

/* SIGKILL of a claimer with a 300 ms lease: a running scheduler takes its
 * runs over once its liveness key expired, within 2 s of the kill. */
static void test_failover_after_sigkill(void **state) {
  (void)state;
  char prefix[32], runs[128];
  new_schema(prefix, sizeof prefix, "killed");
  runs_path(runs, sizeof runs, prefix);
  g_runs_fd = open(runs, O_WRONLY | O_APPEND | O_CREAT, 0644);
  apsched_jobstore *st = store_at(cluster_target, prefix, 0);
  assert_non_null(st);
  apsched_time_t due = apsched_now() - APSCHED_SEC;
  apsched_job_record *recs[3] = {job("alo", due, APSCHED_HOUR, true, 1, true, "0"),
                                 job("amo-waiting", due, APSCHED_HOUR, false, 1, true, "0"),
                                 job("amo-started", due, APSCHED_HOUR, false, 1, true, "0")};
  add_jobs(st, recs, 3);
  int ready, go;
  pid_t pid = start_claimer(prefix, 300, "alo,amo-started", &ready, &go);

  recorder r;
  recorder_init(&r);
  apsched_config cfg = {.timezone = "UTC", .max_wait = 100 * APSCHED_MSEC};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  assert_int_equal(apsched_add_listener(s, record_event, APSCHED_EVENT_EVERYTHING, &r, NULL), APSCHED_OK);
  assert_int_equal(apsched_add_jobstore(s, st, "db"), APSCHED_OK);
  assert_int_equal(apsched_start(s, false), APSCHED_OK);
  sleep_ms(1000); /* the claimer is alive (heartbeats every 100 ms): nothing is taken over */
  assert_int_equal(recorder_count(&r, APSCHED_EVENT_JOB_RECOVERED), 0);

  int64_t t0 = mono_ms();
  kill(pid, SIGKILL);
  assert_int_equal(wait_exit(pid), 128 + SIGKILL);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_RECOVERED, 2));
  int64_t took = mono_ms() - t0;
  if (took > 2000) fail_msg("the runs were taken over %" PRId64 " ms after the kill", took);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_EXECUTED, 2));
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOB_ERROR, 1));
  for (int i = 0; i < 2; i++) {
    int e = recorder_find(&r, APSCHED_EVENT_JOB_RECOVERED, i);
    if (strcmp(r.ev[e].job_id, "alo") == 0) assert_int_equal(r.ev[e].attempt, 2);
    else if (strcmp(r.ev[e].job_id, "amo-waiting") == 0) assert_int_equal(r.ev[e].attempt, 1);
    else fail_msg("recovered %s", r.ev[e].job_id);
  }
  int e = recorder_find(&r, APSCHED_EVENT_JOB_ERROR, 0);
  assert_string_equal(r.ev[e].job_id, "amo-started");
  assert_non_null(strstr(r.ev[e].error, "was lost with scheduler"));
  assert_non_null(strstr(r.ev[e].error, "(at most once)"));
  /* The survivor closes what it ran: no run record is left. */
  for (int64_t t = mono_ms(); run_records(prefix, NULL) != 0 && mono_ms() - t < 5000;) sleep_ms(10);
  assert_int_equal(run_records(prefix, NULL), 0);
  apsched_free(s);
  recorder_destroy(&r);
  close(ready);
  close(go);
  close(g_runs_fd);
  g_runs_fd = -1;
  unlink(runs);
}

/* Run records under prefix whose start is not recorded. */
static long runs_not_started(const char *prefix) {
  redisContext *c = redis_server_connect();
  char pattern[128];
  snprintf(pattern, sizeof pattern, "{%s}:runs:*", prefix);
  redisReply *r = redisCommand(c, "EVAL %s 0 %s",
                               "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                               "local h = redis.call('HGETALL', k) for i = 1, #h, 2 do "
                               "if h[i] ~= '' and not cjson.decode(h[i + 1]).started_at then n = n + 1 end end end "
                               "return n",
                               pattern);
  long n = r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1;
  if (r) freeReplyObject(r);
  redisFree(c);
  return n;
}

/* The last heartbeat of the scheduler under prefix that is not `self`
 * ("" while there is none). */
static void other_beat(const char *prefix, const char *self, char *out, size_t len) {
  redisContext *c = redis_server_connect();
  redisReply *ids = redisCommand(c, "SMEMBERS {%s}:schedulers", prefix);
  out[0] = '\0';
  for (size_t i = 0; ids && ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
    if (strcmp(ids->element[i]->str, self) == 0) continue;
    redisReply *r = redisCommand(c, "HGET {%s}:scheduler:%s heartbeat_at", prefix, ids->element[i]->str);
    if (r && r->type == REDIS_REPLY_STRING) snprintf(out, len, "%s", r->str);
    if (r) freeReplyObject(r);
  }
  if (ids) freeReplyObject(ids);
  redisFree(c);
}

/* SIGSTOP past 2 x lease: the liveness key expires, the runs go to the
 * survivor; continued, the stalled scheduler can neither start nor close
 * them, and the survivor's writes land. */
static void test_stalled_scheduler_is_fenced(void **state) {
  (void)state;
  enum { LEASE = 300 };
  char prefix[32];
  new_schema(prefix, sizeof prefix, "stalled");
  apsched_jobstore *st = store_at(cluster_target, prefix, LEASE);
  assert_non_null(st);
  const apsched_jobstore_vtable *vt = st->vtable;
  apsched_time_t due = apsched_now() - APSCHED_SEC;
  apsched_job_record *recs[2] = {job("alo", due, APSCHED_HOUR, true, 1, true, "0"),
                                 job("amo", due, APSCHED_HOUR, false, 1, true, "0")};
  add_jobs(st, recs, 2);
  int ready, go;
  pid_t pid = start_claimer(prefix, LEASE, "", &ready, &go);
  apsched_orphan_run o[4];
  assert_int_equal(vt->claim_orphans(st, o, 4), 0); /* alive */
  /* Its commit recorded both starts ahead: a stall within that window
   * (LEASE / 4) would lose the at-most-once run. Stopped once its heartbeat
   * thread took them back, it holds two runs not started. */
  for (int64_t t = mono_ms(); runs_not_started(prefix) != 2 && mono_ms() - t < 5000;) sleep_ms(5);
  assert_int_equal(runs_not_started(prefix), 2);
  /* Stopped right after a heartbeat: the survivor must wait 2 x lease. */
  char last[32], beat[32];
  other_beat(prefix, apsched__redis_store_id(st), last, sizeof last);
  int64_t waited = mono_ms();
  do {
    sleep_ms(1);
    other_beat(prefix, apsched__redis_store_id(st), beat, sizeof beat);
  } while (strcmp(beat, last) == 0 && mono_ms() - waited < 5000);
  assert_string_not_equal(beat, last);
  int64_t t0 = mono_ms();
  kill(pid, SIGSTOP);
  int n = 0;
  while (n == 0 && mono_ms() - t0 < 10000) {
    n = vt->claim_orphans(st, o, 4);
    assert_true(n >= 0);
    if (n == 0) sleep_ms(20);
  }
  int64_t took = mono_ms() - t0;
  int committed = n > 0 ? vt->commit(st) : APSCHED_EBACKEND;
  kill(pid, SIGCONT); /* before any assertion: a failed test must not leave it stopped */
  assert_int_equal(n, 2);
  assert_int_equal(committed, APSCHED_OK);
  /* Its last heartbeat may precede the stop by up to lease / 3. */
  if (took < 2 * LEASE - LEASE / 3 - 50)
    fail_msg("taken over after %" PRId64 " ms, before 2 x lease", took);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(o[i].attempt, strcmp(o[i].rec->id, "alo") == 0 ? 2 : 1);
    apsched_job_record_free(o[i].rec);
  }
  assert_int_equal(write(go, "g", 1), 1);
  char out[256];
  read_within(ready, out, sizeof out, 20000);
  assert_int_equal(wait_exit(pid), 0);
  char want[64];
  snprintf(want, sizeof want, "start=%d,%d closed=0", APSCHED_ESTATE, APSCHED_ESTATE);
  assert_string_equal(out, want);
  assert_int_equal(run_records(prefix, apsched__redis_store_id(st)), 2);
  apsched_run_result res[2];
  for (int i = 0; i < 2; i++) {
    const char *id = i ? "amo" : "alo";
    assert_int_equal(vt->run_starting(st, id, due, i ? 1 : 2), APSCHED_OK);
    res[i] = (apsched_run_result){.job_id = id, .scheduled_time = due, .attempt = i ? 1 : 2,
                                  .outcome = APSCHED_RUN_EXECUTED, .started_at = apsched_now(),
                                  .finished_at = apsched_now()};
  }
  assert_int_equal(vt->runs_closed(st, res, 2), APSCHED_OK);
  assert_int_equal(run_records(prefix, NULL), 0);
  close(ready);
  close(go);
  vt->destroy(st);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 8 && strcmp(argv[1], "--scheduler") == 0) return scheduler_child(argv);
  if (argc >= 8 && strcmp(argv[1], "--claimer") == 0) return claimer_child(argv);
  if (redis_server_start("none") != 0) return redis_server_unavailable();
  cluster_target = redis_server_url();
  if (apsched_register_func(RECORD_FN, record_job) != APSCHED_OK) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_due_run_exactly_once),
      cmocka_unit_test(test_max_instances_across_schedulers),
      cmocka_unit_test(test_wakeup_across_processes),
      cmocka_unit_test(test_failover_after_sigkill),
      cmocka_unit_test(test_stalled_scheduler_is_fenced),
  };
  return cmocka_run_group_tests_name("redis cluster", tests, NULL, NULL);
}
