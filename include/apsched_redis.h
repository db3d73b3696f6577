/*
 * libapsched-redis: a job store in a Redis server. Jobs survive restarts
 * (as far as the server's persistence setting keeps them: see the README),
 * one readable hash per job (`redis-cli HGETALL '{apsched}:job:ID'`), and
 * every key of a store shares the hash tag {PREFIX}, so the layout works on
 * Redis Cluster too.
 *
 * Several schedulers may share one prefix: each due job is claimed by one
 * of them (a Lua script), its runs are recorded and its next run time
 * stored by another (one per claimed batch), every later write of a run is
 * fenced by owner and token, a dead scheduler's runs are taken over by a
 * survivor, max_instances is counted in Redis, and PUBLISH wakes the others
 * after a change. Outside tools (redis-cli, `apsched jobs --store
 * redis://...`) may change the jobs at any time.
 *
 * The store keeps what a later process can use: a job needs a function
 * registered by name (apsched_register_func, func_name) and at most a byte
 * argument (arg_bytes); other jobs are refused when added (APSCHED_EINVAL).
 * A hash it cannot decode is never changed or deleted: it is reported,
 * listed as broken and only removable.
 *
 * Link with apsched::redis (CMake) or `pkg-config --libs apsched-redis`.
 */
#ifndef APSCHED_REDIS_H
#define APSCHED_REDIS_H

#include "apsched_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct apsched_redis_options {
  /* Where the server is. Required (not NULL):
   *   redis://[[user]:password@]host[:port][/db]   (port 6379, db 0 by default)
   *   unix:///path/to/redis.sock[?db=N][&password=P]
   * %XX escapes in the password and the path are decoded. */
  const char *url;
  /* The keys' prefix, used as their hash tag: "{PREFIX}:job:ID" ...; NULL:
   * "apsched". 1 to 100 bytes, none of '{', '}' or control characters. */
  const char *prefix;
  /* The lease, in milliseconds (0: 5000; 100 to 86400000): a scheduler
   * heartbeats every lease / 3 and is dead once its liveness key, set to
   * expire after 2 x lease, is gone; a claimed batch not committed within
   * the lease is given up. Schedulers sharing a prefix may use different
   * leases. */
  int lease_ms;
  /* A name for this scheduler in the registry; NULL: none. */
  const char *scheduler_name;
  /* Refuse a server without this prefix's layout version key instead of
   * creating it (tools that should not turn a typo into an empty store). */
  bool existing_only;
  /* Run history: every ended run becomes an entry of the stream
   * {PREFIX}:history, trimmed to this many microseconds (by the server's
   * clock). 0: no history; APSCHED_REDIS_HISTORY_FOREVER: keep all. */
  int64_t history_retention;
} apsched_redis_options;

/* Connects, checks the layout version key (creating it on first use) and
 * loads the store's Lua scripts. Fails with APSCHED_EINVAL for bad options
 * (naming the bad one), a layout newer than this library's or a version key
 * it did not write; APSCHED_EBACKEND when the server cannot be reached or
 * refuses (with hiredis's or the server's message). errbuf (optional) and
 * apsched_last_error() say why; nothing on the server changes on failure.
 * The store is APSCHED_STORE_BLOCKING and reconnects by itself after a lost
 * connection (the call that found it lost fails with APSCHED_EBACKEND; the
 * scheduler retries with capped backoff). Add it with apsched_add_jobstore
 * (which then owns it). */
APSCHED_API int apsched_redis_store_create(const apsched_redis_options *opts,
                                           apsched_jobstore **out, char *errbuf, size_t errlen);

/* One scheduler registered under a prefix, as apsched_redis_schedulers
 * reports it. The strings live until visit returns. */
typedef struct apsched_redis_scheduler {
  const char *id;   /* 16 hex digits: the owner field of run records */
  const char *name; /* its scheduler_name, or NULL */
  const char *host;
  int pid;
  apsched_time_t started_at;   /* the server's clock */
  apsched_time_t heartbeat_at; /* its last heartbeat */
  int lease_ms;
  /* Its liveness key exists (heartbeat within 2 x lease_ms). A dead
   * scheduler stays listed until 10 x lease_ms after its last heartbeat and
   * until no run of it is left to take over. */
  bool alive;
  unsigned long claimed; /* runs it claimed that have not started */
  unsigned long running; /* runs it started that have not ended */
} apsched_redis_scheduler;

/* Calls visit for every scheduler registered under the prefix opts names
 * (live ones first, then by start), from a connection of its own; visit
 * returns 0 to go on. Options as for apsched_redis_store_create, with
 * existing_only implied. */
APSCHED_API int apsched_redis_schedulers(const apsched_redis_options *opts,
                                         int (*visit)(const apsched_redis_scheduler *sch, void *ud),
                                         void *ud, char *errbuf, size_t errlen);

/* The layout version this library writes (and the newest it opens). 2
 * added runs that wait; 3 keeps claims, run records and open runs as
 * fields of three hashes instead of keys of their own; 4 marks the claim
 * of a job changed while claimed (an older layout is raised to 4 on open,
 * in one script). */
#define APSCHED_REDIS_LAYOUT_VERSION 4
/* history_retention: keep every ended run. */
#define APSCHED_REDIS_HISTORY_FOREVER INT64_MAX

#ifdef __cplusplus
}
#endif
#endif /* APSCHED_REDIS_H */
