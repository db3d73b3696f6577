/* The Redis job store (libapsched-redis) against a real server started for
 * this program (redis_server.h): the conformance kit (each store under a
 * fresh prefix), the readable layout, restarts, a newer layout refused
 * untouched, bad options, refusals at add, hashes it cannot decode, run
 * records and max_instances, and the server stopped and restarted. */
#include "store_conformance.h"
#include "persistent_store.h"
#include "apsched_redis.h"
#include "stores/redis/redis_internal.h"
#include "redis_server.h"

#include <inttypes.h>

static atomic_int prefix_seq;

static void new_prefix(char *buf, size_t len, const char *stem) {
  snprintf(buf, len, "%s%d", stem, atomic_fetch_add(&prefix_seq, 1));
}

static apsched_jobstore *open_store(const char *prefix) {
  apsched_redis_options o = {.url = redis_server_url(), .prefix = prefix};
  apsched_jobstore *st = NULL;
  char err[256] = "";
  apsched__error(APSCHED_OK, "untouched");
  int rc = apsched_redis_store_create(&o, &st, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("redis store under %s: %s (%s)", prefix, apsched_strerror(rc), err);
  assert_string_equal(apsched_last_error(), "untouched");
  return st;
}

static apsched_jobstore *make_store(void *ud) {
  (void)ud;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "kit");
  return open_store(prefix);
}

static char *locate_store(void *ud, apsched_jobstore *st) {
  (void)ud;
  return strdup(apsched__redis_store_prefix(st));
}

static apsched_jobstore *open_store_at(void *ud, const char *prefix) {
  (void)ud;
  return open_store(prefix);
}

static apsched_jobstore *open_where(const char *prefix) { return open_store(prefix); }

/* The kit's stale schedulers: the liveness key gone, as after a stall past
 * the lease. */
static void stall_store(void *ud, apsched_jobstore *st) {
  (void)ud;
  redisContext *c = redis_server_connect();
  redisReply *r = redisCommand(c, "DEL {%s}:alive:%s", apsched__redis_store_prefix(st),
                               apsched__redis_store_id(st));
  if (!r || r->type != REDIS_REPLY_INTEGER) fail_msg("DEL of the liveness key: %s", r ? r->str : c->errstr);
  freeReplyObject(r);
  redisFree(c);
}

/* ------------------------------------------------------------- helpers */

/* A command on c (printf-style, as redis-cli takes it); the reply. */
static redisReply *cmd(redisContext *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  if (!r || r->type == REDIS_REPLY_ERROR) fail_msg("%s: %s", fmt, r ? r->str : c->errstr);
  return r;
}

/* Every field of a hash as "field=value|..." sorted by field; NULL if absent. */
static int by_text(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *hash_text(redisContext *c, const char *key) {
  redisReply *r = cmd(c, "HGETALL %s", key);
  if (r->elements == 0) {
    freeReplyObject(r);
    return NULL;
  }
  char *items[64];
  size_t n = 0;
  for (size_t i = 0; i + 1 < r->elements && n < 64; i += 2) {
    char *item = malloc(r->element[i]->len + r->element[i + 1]->len * 4 + 4);
    size_t k = (size_t)sprintf(item, "%s=", r->element[i]->str);
    for (size_t j = 0; j < r->element[i + 1]->len; j++) {
      unsigned char ch = (unsigned char)r->element[i + 1]->str[j];
      k += (size_t)(ch >= 0x20 && ch < 0x7f ? sprintf(item + k, "%c", ch) : sprintf(item + k, "\\x%02x", ch));
    }
    items[n++] = item;
  }
  qsort(items, n, sizeof *items, by_text);
  char *out = calloc(1, 4096);
  for (size_t i = 0; i < n; i++) {
    strncat(out, items[i], 4000 - strlen(out));
    strncat(out, "|", 4000 - strlen(out));
    free(items[i]);
  }
  freeReplyObject(r);
  return out;
}

static apsched_job_record *plain_record(const char *id, apsched_time_t next) {
  apsched_job_record *r = apsched__record_new(id);
  r->trigger = every(10 * APSCHED_SEC, T0);
  r->func = apsched_func_by_name(TICK);
  r->executor = "default";
  r->misfire_grace_ms = UINT32_MAX;
  r->max_instances = 1;
  r->flags = APSCHED_JOB_COALESCE;
  r->next_run_time = r->trigger_time = next;
  return r;
}

/* ------------------------------------------------------------- layout */

/* The prefix's layout version key holds want. */
static void expect_version(redisContext *c, const char *prefix, const char *want) {
  redisReply *r = cmd(c, "GET {%s}:version", prefix);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_string_equal(r->str, want);
  freeReplyObject(r);
}

static void test_layout_is_readable(void **state) {
  (void)state;
  char prefix[64], key[128];
  new_prefix(prefix, sizeof prefix, "readable");
  fake_clock fc;
  fake_clock_init(&fc, T0);
  apsched_scheduler *s = sched_with(&fc, NULL, open_store(prefix));
  add_sample_jobs(s, APSCHED_DELIVERY_DEFAULT);
  redisContext *c = redis_server_connect();
  snprintf(key, sizeof key, "{%s}:job:report", prefix);
  char *h = hash_text(c, key);
  assert_non_null(h);
  assert_string_equal(h, "arg=\\x01\\x02xyz|coalesce=0|delivery=at_most_once|executor=default|"
                         "failures=0|func=" TICK "|max_instances=3|max_runtime_ms=30000|"
                         "misfire_grace_ms=2500|name=Daily report|"
                         "policies=catchup_window=3600s, pause_after_failures=3|"
                         "trigger=interval[seconds=10, start_date='2026-01-01T00:00:00Z']|");
  free(h);
  snprintf(key, sizeof key, "{%s}:job:nightly", prefix);
  h = hash_text(c, key);
  assert_string_equal(h, "coalesce=1|delivery=at_most_once|executor=default|failures=0|"
                         "func=" TICK "|"
                         "max_instances=1|max_runtime_ms=0|"
                         "trigger=cron[year='*', month='*', day='*', week='*', day_of_week='*', "
                         "hour='3', minute='30', second='0', timezone='Europe/Berlin']|");
  free(h);
  expect_version(c, prefix, "4");
  redisReply *r = cmd(c, "ZRANGE {%s}:next 0 -1 WITHSCORES", prefix); /* the paused job is not there */
  assert_int_equal(r->elements, 2);
  assert_string_equal(r->element[0]->str, "report");
  assert_string_equal(r->element[1]->str, "1767225610000250");
  freeReplyObject(r);
  r = cmd(c, "ZRANGE {%s}:jobs 0 -1", prefix);
  assert_int_equal(r->elements, 2);
  assert_string_equal(r->element[0]->str, "nightly");
  freeReplyObject(r);
  r = cmd(c, "SCARD {%s}:schedulers", prefix); /* the scheduler registered itself */
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);
  redisFree(c);
  apsched_job *j = get(s, "report");
  assert_string_equal(j->name, "Daily report");
  assert_int_equal(j->misfire_grace_time, 2500 * APSCHED_MSEC);
  apsched_job_free(j);
  apsched_free(s);
}

/* A layout written by a newer library is refused and not changed; so is a
 * version key that is not ours, and (existing_only) a prefix with none. */
static void test_newer_layout_is_refused_untouched(void **state) {
  (void)state;
  char prefix[64], err[256];
  new_prefix(prefix, sizeof prefix, "newer");
  redisContext *c = redis_server_connect();
  freeReplyObject(cmd(c, "SET {%s}:version 5", prefix));
  apsched_redis_options o = {.url = redis_server_url(), .prefix = prefix};
  apsched_jobstore *st = (apsched_jobstore *)1;
  assert_int_equal(apsched_redis_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_null(st);
  assert_non_null(strstr(err, "layout version 5 is newer than this library's (4)"));
  freeReplyObject(cmd(c, "SET {%s}:version banana", prefix));
  assert_int_equal(apsched_redis_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "holds 'banana', not a layout version"));
  redisReply *r = cmd(c, "KEYS {%s}*", prefix);
  assert_int_equal(r->elements, 1); /* nothing written */
  freeReplyObject(r);
  new_prefix(prefix, sizeof prefix, "absent");
  o.existing_only = true;
  assert_int_equal(apsched_redis_store_create(&o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_non_null(strstr(err, "holds no libapsched-redis data"));
  r = cmd(c, "KEYS {%s}*", prefix);
  assert_int_equal(r->elements, 0);
  freeReplyObject(r);
  redisFree(c);
}

/* Layout 1 (no waiting runs) is raised to 4 when a scheduler opens it;
 * a tool that opens existing data only (existing_only) changes nothing.
 * Layout 3 is raised to 4 by its version alone: its claims stay. */
static void test_layout_1_is_raised(void **state) {
  (void)state;
  char prefix[64], err[256];
  new_prefix(prefix, sizeof prefix, "old");
  redisContext *c = redis_server_connect();
  freeReplyObject(cmd(c, "SET {%s}:version 1", prefix));
  apsched_redis_options o = {.url = redis_server_url(), .prefix = prefix, .existing_only = true};
  apsched_jobstore *st = NULL;
  assert_int_equal(apsched_redis_store_create(&o, &st, err, sizeof err), APSCHED_OK);
  apsched_jobstore_free(st);
  expect_version(c, prefix, "1");
  o.existing_only = false;
  assert_int_equal(apsched_redis_store_create(&o, &st, err, sizeof err), APSCHED_OK);
  apsched_jobstore_free(st);
  expect_version(c, prefix, "4");
  new_prefix(prefix, sizeof prefix, "layout3");
  freeReplyObject(cmd(c, "SET {%s}:version 3", prefix));
  freeReplyObject(cmd(c, "HSET {%s}:claims m %s", prefix, "ghost 5 99999999999999999"));
  o.prefix = prefix;
  assert_int_equal(apsched_redis_store_create(&o, &st, err, sizeof err), APSCHED_OK);
  apsched_jobstore_free(st);
  expect_version(c, prefix, "4");
  redisReply *r = cmd(c, "HGET {%s}:claims m", prefix);
  assert_string_equal(r->str, "ghost 5 99999999999999999");
  freeReplyObject(r);
  redisFree(c);
}

/* The field of a job hash (NULL: none). */
static char *job_field(redisContext *c, const char *prefix, const char *id, const char *field) {
  redisReply *r = cmd(c, "HGET {%s}:job:%s %s", prefix, id, field);
  char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
  freeReplyObject(r);
  return v;
}

/* Whether the key fmt names exists (1) or not (0). */
__attribute__((format(printf, 2, 3))) static long long exists(redisContext *c, const char *fmt, ...) {
  char key[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(key, sizeof key, fmt, ap);
  va_end(ap);
  redisReply *r = cmd(c, "EXISTS %s", key);
  long long n = r->integer;
  freeReplyObject(r);
  return n;
}

/* Layout 2 kept a claim as a key, a run as a hash listed in its owner's
 * set and a job's open runs in a hash of its own: opened by a scheduler,
 * they become the fields of layout 3 (now 4) in one script, and work there: the
 * run of a dead scheduler written by the older library is taken over. */
static void test_layout_2_is_migrated(void **state) {
  (void)state;
  char prefix[64], err[256];
  new_prefix(prefix, sizeof prefix, "layout2");
  redisContext *c = redis_server_connect();
  long long t = (long long)(T0 - 10 * APSCHED_SEC);
  freeReplyObject(cmd(c, "SET {%s}:version 2", prefix));
  freeReplyObject(cmd(c, "HSET {%s}:job:m func %s trigger %s executor default coalesce 0 max_instances 2 "
                         "max_runtime_ms 0 next_run_time %lld delivery at_least_once",
                      prefix, TICK, "interval[seconds=10]", (long long)T0));
  freeReplyObject(cmd(c, "ZADD {%s}:jobs 0 m", prefix));
  freeReplyObject(cmd(c, "ZADD {%s}:next %lld m", prefix, (long long)T0));
  freeReplyObject(cmd(c, "SET {%s}:claim:m %s PX 60000", prefix, "ghost 5"));
  freeReplyObject(cmd(c, "HSET {%s}:run:m:%lld job_id m scheduled_time %lld owner ghost token 7 attempt 1 "
                         "claimed_at %lld started_at %lld func %s executor default max_instances 2 "
                         "max_runtime_ms 0 delivery at_least_once arg %b",
                      prefix, t, t, t, t, TICK, "a b\0c", (size_t)5));
  freeReplyObject(cmd(c, "SADD {%s}:owned:ghost {%s}:run:m:%lld", prefix, prefix, t));
  freeReplyObject(cmd(c, "SADD {%s}:owners ghost", prefix));
  freeReplyObject(cmd(c, "HSET {%s}:jobruns:m %lld 7", prefix, t));
  freeReplyObject(cmd(c, "SADD {%s}:schedulers ghost", prefix));
  freeReplyObject(cmd(c, "SADD {%s}:stops:ghost {%s}:run:m:%lld", prefix, prefix, t));

  /* A tool that only reads changes nothing. */
  apsched_redis_options o = {.url = redis_server_url(), .prefix = prefix, .existing_only = true};
  apsched_jobstore *st = NULL;
  assert_int_equal(apsched_redis_store_create(&o, &st, err, sizeof err), APSCHED_OK);
  apsched_jobstore_free(st);
  assert_int_equal(exists(c, "{%s}:run:m:%lld", prefix, t), 1);

  apsched_jobstore *b = open_store(prefix);
  expect_version(c, prefix, "4");
  assert_int_equal(exists(c, "{%s}:run:m:%lld", prefix, t), 0);
  assert_int_equal(exists(c, "{%s}:claim:m", prefix), 0);
  assert_int_equal(exists(c, "{%s}:owned:ghost", prefix), 0);
  assert_int_equal(exists(c, "{%s}:jobruns:m", prefix), 0);
  assert_null(job_field(c, prefix, "m", "next_run_time")); /* the score holds it */
  redisReply *r = cmd(c, "HGET {%s}:claims m", prefix);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_true(strncmp(r->str, "ghost 5 ", 8) == 0);
  freeReplyObject(r);
  char want[96];
  snprintf(want, sizeof want, "%lld:7:ghost", t);
  r = cmd(c, "HGET {%s}:open m", prefix);
  assert_string_equal(r->str, want);
  freeReplyObject(r);
  snprintf(want, sizeof want, "%lld:m", t);
  r = cmd(c, "SMEMBERS {%s}:stops:ghost", prefix);
  assert_int_equal(r->elements, 1);
  assert_string_equal(r->element[0]->str, want);
  freeReplyObject(r);
  r = cmd(c, "HGET {%s}:runs:ghost %s", prefix, want);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_non_null(strstr(r->str, "\"token\":\"7\""));
  assert_non_null(strstr(r->str, "\"delivery\":\"at_least_once\""));
  freeReplyObject(r);
  /* ghost has no liveness key: its at-least-once run is run again here,
   * as attempt 2, with the job as it was (the argument's bytes too). */
  apsched_orphan_run orphans[2];
  assert_int_equal(b->vtable->claim_orphans(b, orphans, 2), 1);
  assert_string_equal(orphans[0].rec->id, "m");
  assert_int_equal(orphans[0].scheduled_time, t);
  assert_int_equal(orphans[0].attempt, 2);
  size_t len = 0;
  const void *arg = apsched_job_args_bytes(orphans[0].rec->args, &len);
  assert_int_equal(len, 5);
  assert_memory_equal(arg, "a b\0c", 5);
  apsched_job_record_free(orphans[0].rec);
  r = cmd(c, "HGET {%s}:open m", prefix);
  snprintf(want, sizeof want, ":%s", apsched__redis_store_id(b));
  assert_non_null(strstr(r->str, want));
  freeReplyObject(r);
  redisFree(c);
  apsched_jobstore_free(b);
}

/* A job's next run time is its score in {P}:next; its hash repeats it only
 * where a double cannot hold it exactly (after 2^53 us, the year 2255) and
 * keeps the trigger time only where it differs (jitter). Either way every
 * time reads back exact, and a claim's release writes the fields as they
 * must then be. */
static void test_times_the_score_cannot_hold(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "times");
  apsched_jobstore *st = open_store(prefix);
  const apsched_time_t far = (INT64_C(1) << 53) + 1; /* no double holds it */
  apsched_job_record *recs[2] = {plain_record("jittered", T0), plain_record("far", far)};
  recs[0]->trigger_time = T0 - 3 * APSCHED_SEC;
  assert_int_equal(st->vtable->add(st, recs, 2, NULL, NULL), APSCHED_OK);
  redisContext *c = redis_server_connect();
  char *v = job_field(c, prefix, "jittered", "trigger_time");
  assert_non_null(v);
  assert_int_equal(strtoll(v, NULL, 10), T0 - 3 * APSCHED_SEC);
  free(v);
  assert_null(job_field(c, prefix, "jittered", "next_run_time"));
  v = job_field(c, prefix, "far", "next_run_time");
  assert_non_null(v);
  assert_int_equal(strtoll(v, NULL, 10), far);
  free(v);
  assert_null(job_field(c, prefix, "far", "trigger_time"));
  const apsched_job_record *got;
  assert_int_equal(st->vtable->lookup(st, "far", &got), APSCHED_OK);
  assert_int_equal(got->next_run_time, far);
  assert_int_equal(got->trigger_time, far);
  assert_int_equal(st->vtable->lookup(st, "jittered", &got), APSCHED_OK);
  assert_int_equal(got->next_run_time, T0);
  assert_int_equal(got->trigger_time, T0 - 3 * APSCHED_SEC);
  /* Claimed and released without jitter: the field goes. */
  apsched_job_record *due[1];
  assert_int_equal(st->vtable->claim_due(st, T0, due, 1), 1);
  assert_int_equal(due[0]->trigger_time, T0 - 3 * APSCHED_SEC);
  assert_int_equal(st->vtable->release(st, due[0], T0 + APSCHED_SEC, T0 + APSCHED_SEC, false), APSCHED_OK);
  assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  assert_null(job_field(c, prefix, "jittered", "trigger_time"));
  /* ...and with jitter again, it comes back. */
  assert_int_equal(st->vtable->claim_due(st, T0 + APSCHED_SEC, due, 1), 1);
  assert_int_equal(st->vtable->release(st, due[0], T0 + 2 * APSCHED_SEC, T0 + APSCHED_SEC, false), APSCHED_OK);
  assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  v = job_field(c, prefix, "jittered", "trigger_time");
  assert_non_null(v);
  assert_int_equal(strtoll(v, NULL, 10), T0 + APSCHED_SEC);
  free(v);
  apsched_jobstore_free(st);
  /* A new store reads them all back as they were. */
  st = open_store(prefix);
  assert_int_equal(st->vtable->lookup(st, "jittered", &got), APSCHED_OK);
  assert_int_equal(got->next_run_time, T0 + 2 * APSCHED_SEC);
  assert_int_equal(got->trigger_time, T0 + APSCHED_SEC);
  assert_int_equal(st->vtable->lookup(st, "far", &got), APSCHED_OK);
  assert_int_equal(got->next_run_time, far);
  redisFree(c);
  apsched_jobstore_free(st);
}

/* Another scheduler changes jobs that this one has claimed: an update,
 * a pause and a removal between the claim and its commit win (the commit
 * keeps what they wrote, as if they came after it); a job nobody changed
 * is advanced. The change marks the claim ('+'), which the commit reads
 * instead of reading the job back. */
static void test_changes_during_a_claim_win(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "changed");
  apsched_jobstore *a = open_store(prefix), *b = open_store(prefix);
  apsched_job_record *recs[4] = {plain_record("kept", T0), plain_record("moved", T0),
                                 plain_record("paused", T0), plain_record("gone", T0)};
  assert_int_equal(a->vtable->add(a, recs, 4, NULL, NULL), APSCHED_OK);
  apsched_job_record *due[4];
  assert_int_equal(a->vtable->claim_due(a, T0, due, 4), 4);
  assert_int_equal(b->vtable->update(b, plain_record("moved", T0 + 100 * APSCHED_SEC)), APSCHED_OK);
  assert_int_equal(b->vtable->update(b, plain_record("paused", APSCHED_TIME_NONE)), APSCHED_OK);
  assert_int_equal(b->vtable->remove(b, "gone"), APSCHED_OK);
  redisContext *c = redis_server_connect();
  const char *marked[] = {"moved", "paused", "gone"};
  for (size_t i = 0; i < 3; i++) {
    redisReply *r = cmd(c, "HGET {%s}:claims %s", prefix, marked[i]);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->str[r->len - 1], '+');
    freeReplyObject(r);
  }
  redisReply *r = cmd(c, "HGET {%s}:claims kept", prefix);
  assert_int_not_equal(r->str[r->len - 1], '+');
  freeReplyObject(r);
  for (int i = 0; i < 4; i++)
    assert_int_equal(a->vtable->release(a, due[i], T0 + 10 * APSCHED_SEC, T0 + 10 * APSCHED_SEC, false),
                     APSCHED_OK);
  assert_int_equal(a->vtable->commit(a), APSCHED_OK);
  const apsched_job_record *got;
  assert_int_equal(b->vtable->lookup(b, "kept", &got), APSCHED_OK);
  assert_int_equal(got->next_run_time, T0 + 10 * APSCHED_SEC);
  assert_int_equal(b->vtable->lookup(b, "moved", &got), APSCHED_OK);
  assert_int_equal(got->next_run_time, T0 + 100 * APSCHED_SEC);
  assert_int_equal(b->vtable->lookup(b, "paused", &got), APSCHED_OK);
  assert_int_equal(got->next_run_time, APSCHED_TIME_NONE);
  assert_int_equal(b->vtable->lookup(b, "gone", &got), APSCHED_ENOENT);
  r = cmd(c, "ZRANGE {%s}:next 0 -1", prefix); /* no next run time for the paused or the removed job */
  assert_int_equal(r->elements, 2);
  freeReplyObject(r);
  r = cmd(c, "HLEN {%s}:claims", prefix); /* every claim ended: only the hash-table field */
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);
  redisFree(c);
  apsched_jobstore_free(b);
  apsched_jobstore_free(a);
}

/* The store's connections build each reply in one arena (replies.c):
 * every kind of element, nesting, strings larger than a chunk, and a
 * reader freed in the middle of a reply (hiredis frees the part it built
 * with the same functions; ASan checks nothing leaks or is freed twice). */
static void test_replies_in_one_arena(void **state) {
  (void)state;
  redisReader *reader = redisReaderCreate();
  assert_non_null(reader);
  apsched__redis_replies_use(reader);
  char big[5000];
  memset(big, 'x', sizeof big);
  char resp[6000];
  int n = snprintf(resp, sizeof resp, "*6\r\n$3\r\nabc\r\n:-42\r\n$-1\r\n*2\r\n+OK\r\n*1\r\n-ERR no\r\n"
                                      "*0\r\n$%zu\r\n", sizeof big);
  memcpy(resp + n, big, sizeof big);
  memcpy(resp + n + sizeof big, "\r\n", 2);
  assert_int_equal(redisReaderFeed(reader, resp, (size_t)n + sizeof big + 2), REDIS_OK);
  void *got = NULL;
  assert_int_equal(redisReaderGetReply(reader, &got), REDIS_OK);
  redisReply *r = got;
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 6);
  assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
  assert_string_equal(r->element[0]->str, "abc");
  assert_int_equal(r->element[0]->len, 3);
  assert_int_equal(r->element[1]->type, REDIS_REPLY_INTEGER);
  assert_int_equal(r->element[1]->integer, -42);
  assert_int_equal(r->element[2]->type, REDIS_REPLY_NIL);
  redisReply *nested = r->element[3];
  assert_int_equal(nested->type, REDIS_REPLY_ARRAY);
  assert_int_equal(nested->elements, 2);
  assert_int_equal(nested->element[0]->type, REDIS_REPLY_STATUS);
  assert_string_equal(nested->element[0]->str, "OK");
  assert_int_equal(nested->element[1]->element[0]->type, REDIS_REPLY_ERROR);
  assert_string_equal(nested->element[1]->element[0]->str, "ERR no");
  assert_int_equal(r->element[4]->elements, 0);
  assert_int_equal(r->element[5]->len, sizeof big);
  assert_int_equal(memcmp(r->element[5]->str, big, sizeof big), 0);
  assert_int_equal(r->element[5]->str[sizeof big], '\0');
  apsched__redis_reply_free(r);
  /* A top-level string and an integer, each a reply of its own. */
  const char *two = "$2\r\nhi\r\n:7\r\n", *half = "*3\r\n$1\r\na\r\n*2\r\n:1\r\n";
  assert_int_equal(redisReaderFeed(reader, two, strlen(two)), REDIS_OK);
  assert_int_equal(redisReaderGetReply(reader, &got), REDIS_OK);
  assert_string_equal(((redisReply *)got)->str, "hi");
  apsched__redis_reply_free(got);
  assert_int_equal(redisReaderGetReply(reader, &got), REDIS_OK);
  assert_int_equal(((redisReply *)got)->integer, 7);
  apsched__redis_reply_free(got);
  /* Half a reply when the reader goes. */
  assert_int_equal(redisReaderFeed(reader, half, strlen(half)), REDIS_OK);
  assert_int_equal(redisReaderGetReply(reader, &got), REDIS_OK);
  assert_null(got);
  redisReaderFree(reader);
  redisReply *stand_in = apsched__redis_reply_error();
  assert_non_null(stand_in);
  assert_int_equal(stand_in->type, REDIS_REPLY_ERROR);
  assert_string_equal(stand_in->str, "");
  apsched__redis_reply_free(stand_in);
}

/* The numbers the scripts get (times, tokens) are written as snprintf
 * would write them, at both ends of int64_t and at every digit count. */
static void test_numbers_are_written_in_decimal(void **state) {
  (void)state;
  int64_t vals[64] = {0, -1, 1, INT64_MAX, INT64_MIN, INT64_MIN + 1, (INT64_C(1) << 53) + 1};
  size_t n = 7;
  for (int64_t p = 10; p <= INT64_MAX / 10 && n + 4 <= 64; p *= 10) {
    vals[n++] = p - 1;
    vals[n++] = p;
    vals[n++] = -p;
    vals[n++] = -p + 1;
  }
  for (size_t i = 0; i < n; i++) {
    char want[32], got[32];
    snprintf(want, sizeof want, "%" PRId64, vals[i]);
    memset(got, 'x', sizeof got);
    assert_int_equal(apsched__pstore_i64(got, vals[i]), strlen(want));
    assert_string_equal(got, want);
  }
}

static void expect_refused(const apsched_redis_options *o, const char *want) {
  char err[256] = "";
  apsched_jobstore *st = NULL;
  assert_int_equal(apsched_redis_store_create(o, &st, err, sizeof err), APSCHED_EINVAL);
  assert_null(st);
  if (!strstr(err, want)) fail_msg("error '%s' lacks '%s'", err, want);
}

static void test_bad_options(void **state) {
  (void)state;
  expect_refused(&(apsched_redis_options){0}, "url is NULL");
  expect_refused(&(apsched_redis_options){.url = "http://x"}, "must be redis://");
  expect_refused(&(apsched_redis_options){.url = "redis://h:99999/0"}, "port must be a number");
  expect_refused(&(apsched_redis_options){.url = "redis://h/x"}, "database must be a number");
  expect_refused(&(apsched_redis_options){.url = "unix://rel"}, "needs an absolute path");
  expect_refused(&(apsched_redis_options){.url = "unix:///s?dbb=1"}, "unknown parameter 'dbb=1'");
  expect_refused(&(apsched_redis_options){.url = "rediss://h"}, "TLS");
  expect_refused(&(apsched_redis_options){.url = redis_server_url(), .prefix = "a{b"},
                 "prefix 'a{b' must be");
  expect_refused(&(apsched_redis_options){.url = redis_server_url(), .lease_ms = 50},
                 "lease_ms 50 is outside 100..86400000");
  expect_refused(&(apsched_redis_options){.url = redis_server_url(), .history_retention = -1},
                 "history_retention -1 us is negative");
  char err[256];
  apsched_jobstore *st;
  apsched_redis_options o = {.url = "unix:///nonexistent-dir/redis.sock"};
  assert_int_equal(apsched_redis_store_create(&o, &st, err, sizeof err), APSCHED_EBACKEND);
  assert_non_null(strstr(err, "cannot connect to /nonexistent-dir/redis.sock: "));
}

static void test_restart_continues_the_schedule(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "restart");
  persistent_restart_test(open_where, prefix);
}

static void test_unstorable_jobs_are_refused(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "refusals");
  persistent_refusals_test(open_store(prefix), "Redis");
}

/* A hash that does not decode is kept as it is, reported once, listed as
 * broken, never run, and removable; fixed by hand, it is a job again. */
static void test_undecodable_hashes_are_kept_and_reported(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "broken");
  reset_runs();
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_jobstore *st = open_store(prefix);
  apsched_job_record *recs[3] = {plain_record("lunar", T0), plain_record("limits", T0),
                                 plain_record("good", T0)};
  assert_int_equal(st->vtable->add(st, recs, 3, NULL, NULL), APSCHED_OK);
  st->vtable->destroy(st);
  redisContext *c = redis_server_connect();
  freeReplyObject(cmd(c, "HSET {%s}:job:lunar trigger lunar[phase=full]", prefix));
  freeReplyObject(cmd(c, "HSET {%s}:job:limits max_runtime_ms 1.5", prefix));
  char key[128];
  snprintf(key, sizeof key, "{%s}:job:lunar", prefix);
  char *before = hash_text(c, key);

  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = sched_with(&fc, &r, open_store(prefix));
  assert_true(wait_for_job(&r, APSCHED_EVENT_JOB_ERROR, "lunar"));
  assert_true(wait_for_job(&r, APSCHED_EVENT_JOB_ERROR, "limits"));
  pass(s);
  assert_true(wait_for_job(&r, APSCHED_EVENT_JOB_EXECUTED, "good"));
  assert_int_equal(runs_of("lunar"), 0);
  assert_int_equal(runs_of("limits"), 0);
  apsched_job *j = get(s, "lunar");
  assert_non_null(j->broken);
  assert_non_null(strstr(j->broken, "unknown trigger kind 'lunar'"));
  assert_true(j->paused);
  apsched_job_free(j);
  j = get(s, "limits");
  assert_non_null(strstr(j->broken, "column max_runtime_ms holds text that is not a number"));
  apsched_job_free(j);
  assert_int_equal(apsched_resume_job(s, "lunar", NULL), APSCHED_EINVAL);
  char *after = hash_text(c, key);
  assert_string_equal(before, after);
  assert_int_equal(apsched_remove_job(s, "lunar", NULL), APSCHED_OK);
  assert_null(hash_text(c, key));
  freeReplyObject(cmd(c, "HSET {%s}:job:limits max_runtime_ms 15", prefix));
  j = get(s, "limits");
  assert_null(j->broken);
  apsched_job_free(j);
  apsched_free(s);
  recorder_destroy(&r);
  redisFree(c);
  free(before);
  free(after);
}

typedef struct listing {
  int seen, broken;
  bool order_ok;
  char last[16];
} listing;

static int list_job(const apsched_job_record *rec, void *ud) {
  listing *l = ud;
  l->seen++;
  if (rec->flags & APSCHED_JOB_BROKEN) l->broken++;
  if (strcmp(rec->id, l->last) <= 0) l->order_ok = false;
  snprintf(l->last, sizeof l->last, "%s", rec->id);
  return 0;
}

/* foreach (and so every open) reads the hashes in pipelined chunks of 512:
 * 1,100 jobs cross two chunk boundaries; every job comes once, in id order
 * (the jobs set's), and a key of another type under a job's name in the
 * second chunk is a broken job, not a failure of the listing. */
static void test_listing_reads_every_job(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "listing");
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_jobstore *st = open_store(prefix);
  enum { N = 1100 };
  apsched_job_record **recs = malloc(N * sizeof *recs);
  for (int i = 0; i < N; i++) {
    char id[16];
    snprintf(id, sizeof id, "job%04d", i);
    recs[i] = plain_record(id, T0 + i);
  }
  assert_int_equal(st->vtable->add(st, recs, N, NULL, NULL), APSCHED_OK);
  free(recs);
  redisContext *c = redis_server_connect();
  freeReplyObject(cmd(c, "DEL {%s}:job:job0700", prefix));
  freeReplyObject(cmd(c, "SET {%s}:job:job0700 not-a-hash", prefix));
  listing l = {.order_ok = true};
  assert_int_equal(st->vtable->foreach(st, list_job, &l), APSCHED_OK);
  assert_int_equal(l.seen, N);
  assert_int_equal(l.broken, 1);
  assert_true(l.order_ok);
  st->vtable->destroy(st);
  redisFree(c);
}

/* ------------------------------------------------------ run records */

/* Claims the due job at `at` and opens one run at its next run time; the
 * rc of runs_open. The batch is committed with the job advanced by 10 s. */
static int claim_and_open(apsched_jobstore *st, apsched_time_t at) {
  apsched_job_record *due[1];
  assert_int_equal(st->vtable->claim_due(st, at, due, 1), 1);
  apsched_time_t t = due[0]->next_run_time;
  bool track = false;
  int rc = st->vtable->runs_open(st, due[0], &t, 1, &track);
  assert_int_equal(track, rc == APSCHED_OK);
  assert_int_equal(st->vtable->release(st, due[0], t + 10 * APSCHED_SEC, t + 10 * APSCHED_SEC, false),
                   APSCHED_OK);
  assert_int_equal(st->vtable->commit(st), APSCHED_OK);
  return rc;
}

/* Every claimed run is a field of its scheduler's runs hash, with a token
 * and the job as claimed, and an entry of the job's open runs;
 * max_instances counts the job's open runs on the server: over it,
 * runs_open refuses (APSCHED_EBUSY), also for another scheduler. */
static void test_run_records_and_max_instances(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "runs");
  apsched_jobstore *a = open_store(prefix), *b = open_store(prefix);
  apsched_job_record *rec = plain_record("one", T0);
  assert_int_equal(a->vtable->add(a, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(a, T0), APSCHED_OK);
  redisContext *c = redis_server_connect();
  const char *owner = apsched__redis_store_id(a);
  redisReply *r = cmd(c, "HGET {%s}:runs:%s %lld:one", prefix, owner, (long long)T0);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_non_null(strstr(r->str, "\"func\":\"" TICK "\""));
  /* (attempt 1, executor "default", 1 instance, no max_runtime, at most
   * once: defaults, left out) */
  assert_null(strstr(r->str, "\"attempt\""));
  assert_null(strstr(r->str, "\"executor\""));
  assert_null(strstr(r->str, "\"max_instances\""));
  assert_null(strstr(r->str, "\"max_runtime_ms\""));
  assert_null(strstr(r->str, "\"delivery\""));
  assert_non_null(strstr(r->str, "\"token\":\""));
  freeReplyObject(r);
  r = cmd(c, "HGET {%s}:open one", prefix);
  char want[128];
  snprintf(want, sizeof want, "%lld:", (long long)T0);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_true(strncmp(r->str, want, strlen(want)) == 0);
  assert_string_equal(r->str + strlen(r->str) - strlen(owner), owner);
  freeReplyObject(r);
  /* The next time, claimed by b: one instance is in progress. */
  assert_int_equal(claim_and_open(b, T0 + 10 * APSCHED_SEC), APSCHED_EBUSY);
  assert_non_null(strstr(apsched__pstore_last_error(), "1 of its at most 1 instances"));
  /* It ends: the next one is recorded. */
  assert_int_equal(a->vtable->run_starting(a, "one", T0, 1), APSCHED_OK);
  assert_int_equal(a->vtable->run_starting(a, "one", T0, 1), APSCHED_ESTATE); /* once */
  apsched_run_result done = {.job_id = "one", .scheduled_time = T0, .attempt = 1,
                             .outcome = APSCHED_RUN_EXECUTED, .started_at = T0, .finished_at = T0 + 1};
  assert_int_equal(a->vtable->runs_closed(a, &done, 1), APSCHED_OK);
  r = cmd(c, "HEXISTS {%s}:runs:%s %lld:one", prefix, owner, (long long)T0);
  assert_int_equal(r->integer, 0);
  freeReplyObject(r);
  r = cmd(c, "HEXISTS {%s}:open one", prefix);
  assert_int_equal(r->integer, 0);
  freeReplyObject(r);
  assert_int_equal(claim_and_open(b, T0 + 20 * APSCHED_SEC), APSCHED_OK);
  redisFree(c);
  apsched_jobstore_free(a);
  apsched_jobstore_free(b);
}

/* A run record without the members at their default is taken over with
 * them: executor "default", 1 instance, no max_runtime, attempt 1 + 1. */
static void test_defaults_left_out_are_taken_over(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "defaults");
  apsched_jobstore *a = open_store(prefix), *b = open_store(prefix);
  apsched_orphan_run o[2];
  assert_int_equal(b->vtable->claim_orphans(b, o, 2), 0); /* registers */
  assert_int_equal(b->vtable->commit(b), APSCHED_OK);
  apsched_job_record *rec = plain_record("alo", T0);
  rec->flags |= APSCHED_JOB_AT_LEAST_ONCE;
  assert_int_equal(a->vtable->add(a, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(a, T0), APSCHED_OK);
  redisContext *c = redis_server_connect();
  redisReply *r = cmd(c, "HGET {%s}:runs:%s %lld:alo", prefix, apsched__redis_store_id(a), (long long)T0);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_non_null(strstr(r->str, "\"delivery\":\"at_least_once\""));
  assert_null(strstr(r->str, "\"executor\""));
  freeReplyObject(r);
  redisFree(c);
  /* (a's heartbeat thread may renew its liveness key in between: again) */
  int n = 0;
  for (int tries = 0; tries < 20 && n == 0; tries++) {
    stall_store(NULL, a);
    n = b->vtable->claim_orphans(b, o, 2);
    assert_int_equal(b->vtable->commit(b), APSCHED_OK);
  }
  assert_int_equal(n, 1);
  assert_string_equal(o[0].rec->id, "alo");
  assert_int_equal(o[0].attempt, 2);
  assert_string_equal(o[0].rec->executor, "default");
  assert_int_equal(o[0].rec->max_instances, 1);
  assert_int_equal(o[0].rec->max_runtime_ms, 0);
  assert_true(o[0].rec->flags & APSCHED_JOB_AT_LEAST_ONCE);
  apsched_job_record_free(o[0].rec);
  apsched_jobstore_free(b);
  apsched_jobstore_free(a);
}

/* ------------------------------------------------------ outages */

/* The server stops (a crash) and comes back: calls fail cleanly meanwhile
 * and work again after it; a scheduler reports the failure and recovery. */
static void test_server_restart(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "outage");
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_jobstore *st = open_store(prefix);
  apsched_job_record *rec = plain_record("kept", T0);
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  redis_server_stop(false); /* saves nothing: persistence "none"... */
  apsched_time_t next;
  assert_int_equal(st->vtable->next_run_time(st, &next), APSCHED_EBACKEND);
  assert_int_equal(next, APSCHED_TIME_NONE);
  rec = plain_record("new", T0);
  size_t failed = 99;
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, &failed), APSCHED_EBACKEND);
  assert_int_equal(failed, 1); /* not the record's fault */
  assert_non_null(strstr(apsched__pstore_last_error(), "cannot connect to "));
  apsched_job_record *out[2];
  assert_int_equal(st->vtable->claim_due(st, T0, out, 2), APSCHED_EBACKEND);
  if (redis_server_start("none") != 0) fail_msg("restarting the server: %s", redis_srv.why);
  /* ...so the layout key is gone too: the store writes the jobs again. */
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(st->vtable->next_run_time(st, &next), APSCHED_OK);
  assert_int_equal(next, T0);
  apsched_jobstore_free(st);

  /* Through a scheduler: JOBSTORE_FAILED, then JOBSTORE_RECOVERED. */
  fake_clock fc;
  fake_clock_init(&fc, T0);
  recorder r;
  recorder_init(&r);
  apsched_scheduler *s = sched_with(&fc, &r, open_store(prefix));
  redis_server_stop(true);
  fake_advance(&fc, APSCHED_SEC);
  pass(s);
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_FAILED, 1));
  if (redis_server_start("none") != 0) fail_msg("restarting the server: %s", redis_srv.why);
  for (int i = 0; i < 400 && recorder_count(&r, APSCHED_EVENT_JOBSTORE_RECOVERED) == 0; i++) {
    fake_advance(&fc, APSCHED_SEC);
    pass(s);
    struct timespec ms = {0, 5000000};
    nanosleep(&ms, NULL);
  }
  assert_true(recorder_wait(&r, APSCHED_EVENT_JOBSTORE_RECOVERED, 1));
  apsched_free(s);
  recorder_destroy(&r);
}

/* ------------------------------------------------------- run history */

static apsched_jobstore *open_store_with_history(const char *prefix) {
  apsched_redis_options o = {.url = redis_server_url(), .prefix = prefix,
                             .history_retention = APSCHED_REDIS_HISTORY_FOREVER};
  apsched_jobstore *st = NULL;
  char err[256] = "";
  if (apsched_redis_store_create(&o, &st, err, sizeof err) != APSCHED_OK)
    fail_msg("redis store under %s: %s", prefix, err);
  return st;
}

/* The history stream as "job scheduled_time attempt outcome started_at
 * error|..." in stream order. */
static char *history_text(redisContext *c, const char *prefix) {
  redisReply *r = cmd(c, "XRANGE {%s}:history - +", prefix);
  char *out = calloc(1, 4096);
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *f = r->element[i]->element[1];
    const char *v[6] = {"-", "-", "-", "-", "-", "-"};
    const char *names[6] = {"job_id", "scheduled_time", "attempt", "outcome", "started_at", "error"};
    for (size_t k = 0; k + 1 < f->elements; k += 2)
      for (int n = 0; n < 6; n++)
        if (strcmp(f->element[k]->str, names[n]) == 0) v[n] = f->element[k + 1]->str;
    size_t len = strlen(out);
    snprintf(out + len, 4096 - len, "%s %s %s %s %s %s|", v[0], v[1], v[2], v[3], v[4], v[5]);
  }
  freeReplyObject(r);
  return out;
}

/* The history is fenced like the run records: the end of a run whose
 * claim was taken over meanwhile (its record has another owner and token
 * now), or of a run that was never recorded, adds no entry (its end
 * belongs to the run's new owner, or to the claim that records it later);
 * the end of a run closed here adds one. (The close script used to add an
 * entry for every end it was given, so a stalled scheduler's late end of a
 * run a survivor took over stood next to the survivor's.) */
static void test_history_is_fenced(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "fencedhistory");
  apsched_jobstore *st = open_store_with_history(prefix);
  apsched_job_record *rec = plain_record("f", T0);
  rec->max_instances = 2; /* the survivor's run and a later one of this store */
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(st, T0), APSCHED_OK);
  assert_int_equal(st->vtable->run_starting(st, "f", T0, 1), APSCHED_OK);
  redisContext *c = redis_server_connect();
  /* What a survivor's take-over does to the record: it moves to the
   * survivor's runs with a new token. */
  freeReplyObject(cmd(c, "HDEL {%s}:runs:%s %lld:f", prefix, apsched__redis_store_id(st), (long long)T0));
  freeReplyObject(cmd(c, "HSET {%s}:runs:survivor %lld:f {\"token\":\"1000\",\"attempt\":\"1\"}", prefix,
                      (long long)T0));
  freeReplyObject(cmd(c, "HSET {%s}:open f %lld:1000:survivor", prefix, (long long)T0));
  apsched_run_result r[2] = {
      {.job_id = "f", .scheduled_time = T0, .attempt = 1, .outcome = APSCHED_RUN_EXECUTED,
       .started_at = T0 + 1, .finished_at = T0 + 2},
      {.job_id = "f", .scheduled_time = T0 + 10 * APSCHED_SEC, .attempt = 1,
       .outcome = APSCHED_RUN_SKIPPED, .started_at = APSCHED_TIME_NONE, .finished_at = T0 + 3}};
  assert_int_equal(st->vtable->runs_closed(st, r, 2), APSCHED_OK);
  char *h = history_text(c, prefix);
  assert_string_equal(h, "");
  free(h);
  redisReply *left = cmd(c, "HGET {%s}:open f", prefix);
  char entry[64];
  snprintf(entry, sizeof entry, "%lld:1000:survivor", (long long)T0);
  assert_string_equal(left->str, entry);
  freeReplyObject(left);
  /* A run this store still holds: closed, and its end is in the history. */
  assert_int_equal(claim_and_open(st, T0 + 10 * APSCHED_SEC), APSCHED_OK);
  r[1].scheduled_time = T0 + 10 * APSCHED_SEC;
  r[1].outcome = APSCHED_RUN_EXECUTED;
  r[1].started_at = T0 + 10 * APSCHED_SEC;
  assert_int_equal(st->vtable->runs_closed(st, &r[1], 1), APSCHED_OK);
  h = history_text(c, prefix);
  char want[160];
  snprintf(want, sizeof want, "f %lld 1 executed %lld |", (long long)(T0 + 10 * APSCHED_SEC),
           (long long)(T0 + 10 * APSCHED_SEC));
  assert_string_equal(h, want);
  free(h);
  redisFree(c);
  apsched_jobstore_free(st);
}

/* A claimed run's record carries the job as claimed in JSON the scheduler
 * writes (run_json.c): a survivor reads it back byte for byte, the
 * argument's quotes, backslashes, control bytes, NUL and high bytes and a
 * name with a newline included. */
static void test_run_record_keeps_the_job_exactly(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "runjson");
  apsched_jobstore *a = open_store(prefix), *b = open_store(prefix);
  static const char arg[] = "q\"b\\s\n\x01\0\xff/}";
  apsched_job_record *rec = plain_record("exact", T0);
  bool oom = false;
  rec->args = apsched__args_new(NULL, NULL, arg, sizeof arg - 1, &oom);
  rec->name = strdup("two\nlines \"quoted\"");
  assert_false(oom);
  assert_non_null(rec->name);
  assert_int_equal(a->vtable->add(a, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(a, T0), APSCHED_OK);
  apsched_jobstore_free(a); /* gone before the run started: its start taken back */
  apsched_orphan_run orphans[2];
  assert_int_equal(b->vtable->claim_orphans(b, orphans, 2), 1);
  assert_string_equal(orphans[0].rec->id, "exact");
  assert_int_equal(orphans[0].scheduled_time, T0);
  assert_string_equal(orphans[0].rec->name, "two\nlines \"quoted\"");
  size_t len = 0;
  const void *got = apsched_job_args_bytes(orphans[0].rec->args, &len);
  assert_int_equal(len, sizeof arg - 1);
  assert_memory_equal(got, arg, sizeof arg - 1);
  apsched_job_record_free(orphans[0].rec);
  apsched_jobstore_free(b);
}

/* An at-most-once run that had started under a scheduler that is gone is
 * lost: the survivor deletes its record, reports it and ends it in the
 * history as failed in the same script, as the PostgreSQL store does (a
 * report alone goes with a survivor that dies before delivering it; the
 * history keeps every ended run). The chaos test found such runs missing
 * from the history. */
static void test_lost_run_in_history(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "losthistory");
  apsched_jobstore *a = open_store_with_history(prefix), *b = open_store_with_history(prefix);
  apsched_job_record *rec = plain_record("l", T0);
  assert_int_equal(a->vtable->add(a, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(a, T0), APSCHED_OK);
  assert_int_equal(a->vtable->run_starting(a, "l", T0, 1), APSCHED_OK);
  char owner[64];
  snprintf(owner, sizeof owner, "%s", apsched__redis_store_id(a));
  apsched_jobstore_free(a); /* gone while the run executed: its liveness key too */
  apsched_orphan_run orphans[2];
  assert_int_equal(b->vtable->claim_orphans(b, orphans, 2), 0); /* lost, not run again */
  redisContext *c = redis_server_connect();
  redisReply *left = cmd(c, "EXISTS {%s}:runs:%s", prefix, owner);
  assert_int_equal(left->integer, 0);
  freeReplyObject(left);
  left = cmd(c, "HEXISTS {%s}:open l", prefix);
  assert_int_equal(left->integer, 0);
  freeReplyObject(left);
  char *h = history_text(c, prefix);
  char want[64];
  snprintf(want, sizeof want, "l %lld 1 failed ", (long long)T0);
  if (strncmp(h, want, strlen(want)) != 0 || !strstr(h, " lost with scheduler ") ||
      !strstr(h, " (at most once): it started there and did not end|") || strchr(h, '|') != h + strlen(h) - 1)
    fail_msg("history: '%s'", h);
  free(h);
  redisFree(c);
  apsched_jobstore_free(b);
}

/* With appendfsync always nothing acknowledged is lost when the server is
 * killed: the job's advanced next run time and its run record come back,
 * and the claim still fences (the run starts once). With no persistence,
 * a restart comes back empty. */
static void test_aof_always_keeps_a_commit_across_a_crash(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "aof");
  redis_server_stop(false);
  if (redis_server_start("aof-always") != 0) fail_msg("starting with AOF: %s", redis_srv.why);
  assert_int_equal(apsched_register_func(TICK, tick_job), APSCHED_OK);
  apsched_jobstore *st = open_store(prefix);
  apsched_job_record *rec = plain_record("durable", T0);
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  assert_int_equal(claim_and_open(st, T0), APSCHED_OK);
  redis_server_stop(true); /* SIGKILL: no shutdown save */
  if (redis_server_start("aof-always") != 0) fail_msg("restarting with AOF: %s", redis_srv.why);
  const apsched_job_record *found;
  /* The call that finds the connection cut fails; the next one reconnects. */
  assert_int_equal(st->vtable->lookup(st, "durable", &found), APSCHED_EBACKEND);
  assert_int_equal(st->vtable->lookup(st, "durable", &found), APSCHED_OK);
  assert_int_equal(found->next_run_time, T0 + 10 * APSCHED_SEC);
  assert_int_equal(st->vtable->run_starting(st, "durable", T0, 1), APSCHED_OK);
  apsched_jobstore_free(st);
  /* Back to no persistence: a crash loses everything. */
  redis_server_stop(false);
  if (redis_server_start("none") != 0) fail_msg("restarting: %s", redis_srv.why);
  st = open_store(prefix);
  rec = plain_record("fleeting", T0);
  assert_int_equal(st->vtable->add(st, &rec, 1, NULL, NULL), APSCHED_OK);
  redis_server_stop(true);
  if (redis_server_start("none") != 0) fail_msg("restarting: %s", redis_srv.why);
  assert_int_equal(st->vtable->lookup(st, "fleeting", &found), APSCHED_EBACKEND);
  assert_int_equal(st->vtable->lookup(st, "fleeting", &found), APSCHED_ENOENT);
  apsched_jobstore_free(st);
}

/* The server's clock: host time plus the offset of the fastest sample
 * (0 when the sample cannot tell the clocks apart); a real sample on this
 * host, whose clock is the server's, is within a few ms. */
static void test_clock_follows_the_server(void **state) {
  (void)state;
  char prefix[64];
  new_prefix(prefix, sizeof prefix, "clock");
  apsched_jobstore *st = open_store(prefix);
  assert_int_equal(st->vtable->clock(st, T0), T0); /* no sample yet */
  redis_store *rs = (redis_store *)st;
  /* rtt 1000 us, offset -300: within the error of the sample, so 0. */
  apsched__pstore_clock_sample(&rs->clock, 1000, 1000 + 500 - 300, 2000);
  assert_int_equal(st->vtable->clock(st, T0), T0);
  apsched__pstore_clock_sample(&rs->clock, 5000, 5000 + 50 + 3000, 5100); /* rtt 100, +3000 */
  assert_int_equal(st->vtable->clock(st, T0), T0 + 3000);
  apsched_jobstore_free(st);
  st = open_store(prefix);
  apsched_orphan_run o[1];
  assert_int_equal(st->vtable->claim_orphans(st, o, 1), 0); /* registers: one sample */
  apsched_time_t now = apsched_now(), db = st->vtable->clock(st, now);
  assert_true(db - now < 50 * APSCHED_MSEC && now - db < 50 * APSCHED_MSEC);
  apsched_jobstore_free(st);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (redis_server_start("none") != 0) return redis_server_unavailable();
  store_kit kit = {"redis store", make_store, NULL, locate_store, open_store_at, stall_store};
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layout_is_readable),
      cmocka_unit_test(test_newer_layout_is_refused_untouched),
      cmocka_unit_test(test_layout_1_is_raised),
    cmocka_unit_test(test_layout_2_is_migrated),
    cmocka_unit_test(test_times_the_score_cannot_hold),
    cmocka_unit_test(test_changes_during_a_claim_win),
    cmocka_unit_test(test_numbers_are_written_in_decimal),
    cmocka_unit_test(test_replies_in_one_arena),
    cmocka_unit_test(test_defaults_left_out_are_taken_over),
    cmocka_unit_test(test_run_record_keeps_the_job_exactly),
      cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_restart_continues_the_schedule),
      cmocka_unit_test(test_unstorable_jobs_are_refused),
      cmocka_unit_test(test_undecodable_hashes_are_kept_and_reported),
      cmocka_unit_test(test_listing_reads_every_job),
      cmocka_unit_test(test_run_records_and_max_instances),
      cmocka_unit_test(test_server_restart),
      cmocka_unit_test(test_history_is_fenced),
      cmocka_unit_test(test_lost_run_in_history),
      cmocka_unit_test(test_aof_always_keeps_a_commit_across_a_crash),
      cmocka_unit_test(test_clock_follows_the_server),
  };
  int failed = cmocka_run_group_tests_name("redis store", tests, NULL, NULL);
  failed += store_kit_run(&kit);
  return failed;
}
