/* Shared declarations of the Redis job store (libapsched-redis). Like the
 * other store libraries it sees the core only through apsched.h and
 * apsched_plugin.h; what it shares with them is in ../common.
 *
 * The layout, every key under the hash tag {P} (P: the prefix):
 *   {P}:version           "3": the layout version (2 is migrated: layout.c; 1 had no waiting runs)
 *   {P}:jobs              sorted set of every job id (score 0: by id)
 *   {P}:next              sorted set: job id -> next run time (unpaused jobs)
 *   {P}:job:ID            hash: the job's fields (absent field: NULL)
 *   {P}:claims            hash: job id -> "OWNER TOKEN EXPIRY" (EXPIRY: server us): claimed jobs
 *   {P}:token             counter handing out claim tokens
 *   {P}:runs:OWNER        hash: "T:ID" -> JSON of a run OWNER holds (T: its scheduled time, us)
 *   {P}:open              hash: job id -> "T:TOKEN:OWNER,...": its open runs (instances)
 *   {P}:owners            set of owners holding runs
 *   {P}:schedulers        set of registered scheduler ids
 *   {P}:scheduler:ID      hash: name, host, pid, started_at, heartbeat_at, lease_ms
 *   {P}:alive:ID          exists while the scheduler heartbeats (expires at 2 x lease)
 *   {P}:history           stream of ended runs (history_retention)
 *   {P}:waiting:ID        sorted set: the job's waiting runs (token -> first time)
 *   {P}:wait:ID:TOKEN     hash: a waiting run (its times, the job as it was, its
 *                         misfire grace, on_demand, overlap policy)
 *   {P}:waitjobs          set of job ids with waiting runs
 *   {P}:stops:OWNER       set of "T:ID" of OWNER's runs asked to stop (cancel_other)
 *   channel {P}:wakeup    "look now" after a change
 */
#ifndef APSCHED_REDIS_INTERNAL_H
#define APSCHED_REDIS_INTERNAL_H

#include "apsched_redis.h"
#include "../common/store_common.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>

#define REDIS_HIDDEN __attribute__((visibility("hidden")))

enum { REDIS_PREFIX_MAX = 100 };

/* Where the server is (url.c). */
typedef struct redis_addr {
  char *host;     /* NULL for a unix socket */
  int port;
  char *path;     /* the unix socket, or NULL */
  char *user;     /* NULL: AUTH with the password only */
  char *password; /* NULL: no AUTH */
  int db;
} redis_addr;

/* The Lua scripts (scripts.c). */
typedef enum redis_script {
  S_PUT,
  S_REMOVE,
  S_NEXT,
  S_CLAIM,
  S_COMMIT,
  S_ORPHANS,
  S_START,
  S_UNSTART,
  S_CLOSE,
  S_BEAT,
  S_LIST,
  S_WAIT,
  S_ADD,
  S_TAKE,
  S_STOPS,
  S_MIGRATE,
  S_COUNT
} redis_script;

/* One connection and what its messages call the store. */
typedef struct redis_link {
  redisContext *c;         /* NULL until connected, or after a failure */
  const redis_addr *addr;
  const char *prefix;      /* for messages */
  int timeout_ms;          /* connect and command timeout */
  char sha[S_COUNT][41];   /* the scripts' SHA1s on this server ("": not loaded) */
} redis_link;

/* ----------------------------------------------------------------- url.c */

/* Reads url into a (malloc'd strings); APSCHED_EINVAL naming the bad part. */
REDIS_HIDDEN int apsched__redis_parse_url(const char *url, redis_addr *a);
REDIS_HIDDEN void apsched__redis_addr_free(redis_addr *a);

/* ---------------------------------------------------------------- conn.c */

/* A working connection: connects (AUTH, SELECT) the first time and after a
 * failure. APSCHED_EBACKEND with hiredis's message if it cannot. */
REDIS_HIDDEN int apsched__redis_ready(redis_link *l);
REDIS_HIDDEN void apsched__redis_disconnect(redis_link *l);

/* ------------------------------------------------------------ replies.c */

/* Makes reader (a connection's) build its replies in one arena per reply
 * (replies.c). Every reply it reads is freed with
 * apsched__redis_reply_free. */
REDIS_HIDDEN void apsched__redis_replies_use(redisReader *reader);
REDIS_HIDDEN void apsched__redis_reply_free(void *reply);
/* An empty error reply of the same kind (NULL: out of memory). */
REDIS_HIDDEN redisReply *apsched__redis_reply_error(void);

/* Runs a command (argv with lengths; lens NULL: all NUL-terminated). The
 * reply, or NULL with the error set in *rc (what names the step): an I/O
 * failure drops the connection (the next call reconnects), an error reply
 * is APSCHED_EBACKEND with the server's words. */
REDIS_HIDDEN redisReply *apsched__redis_command(redis_link *l, int argc, const char **argv,
                                                const size_t *lens, const char *what, int *rc);
/* Runs script s with KEYS[1] = the root "{P}" and argv as ARGV: EVALSHA,
 * and EVAL when the server does not have it (NOSCRIPT). As above. */
/* Sends n commands in one write and reads their n replies into out (one
 * round trip instead of n); argvs[i] holds argc arguments. Error replies are
 * kept in out for the caller to judge (a WRONGTYPE is a broken job, not a
 * failure). APSCHED_EBACKEND on I/O failure (nothing left in out). */
REDIS_HIDDEN int apsched__redis_pipeline(redis_link *l, size_t n, int argc,
                                         const char *const *const *argvs, redisReply **out,
                                         const char *what);
REDIS_HIDDEN redisReply *apsched__redis_script(redis_link *l, redis_script s, const char *root,
                                               int argc, const char **argv, const size_t *lens,
                                               const char *what, int *rc);
/* Says why a call on l failed; returns APSCHED_EBACKEND. */
REDIS_HIDDEN int apsched__redis_fail(const redis_link *l, const char *what, const char *why);

/* -------------------------------------------------------------- layout.c */

/* Checks the layout version key of root: created on first use, raised from
 * an older layout (unless existing_only: a tool that only reads changes
 * nothing), a newer or foreign one refused with APSCHED_EINVAL. */
REDIS_HIDDEN int apsched__redis_check_layout(redis_link *l, const char *root, bool existing_only);

/* ------------------------------------------------------------- scripts.c */

REDIS_HIDDEN const char *apsched__redis_script_text(redis_script s);

/* --------------------------------------------------------------- codec.c */

/* The fields of a job hash, in the order of the job columns (COL_*): the
 * field name of each column (NULL for the id, which is in the key). */
REDIS_HIDDEN const char *apsched__redis_field(int col);
/* Whether a job hash keeps the field of col (COL_NEXT_RUN_TIME or
 * COL_TRIGGER_TIME) holding t, the job's next run time being next: the
 * next run time is the job's score in {P}:next, and a hash repeats it only
 * where a double cannot hold it exactly (beyond 2^53 us, the year 2255);
 * the trigger time only where it differs (jitter). So a claimed run writes
 * one score, not a hash per job. */
REDIS_HIDDEN bool apsched__redis_time_kept(int col, int64_t t, int64_t next);
/* Decodes a job from its HGETALL reply (an array of field, value; an error
 * reply: a key of another type) and its score in {P}:next (score NULL or
 * nil: paused) with apsched__pstore_decode_row. */
REDIS_HIDDEN int apsched__redis_decode(const char *id, const redisReply *hash, const redisReply *score,
                                       store_base *b, apsched_job_record **out);

/* ---------------------------------------------------------------- store */

/* A run of the open batch, staged by runs_open until the commit. Its
 * record's store_seq is its index in the staged array + 1 when staged:
 * runs_open and release find it without a search of the batch. */
typedef struct redis_staged {
  apsched_job_record *rec; /* the claimed record (held by store_base) */
  long long token;         /* of its claim: its runs' token too */
  char *expected;          /* its next_run_time as claimed ("" : none) */
  bool time_fields;        /* its hash holds next_run_time or trigger_time */
  apsched_time_t next, trigger;
  bool remove, released;
  apsched_time_t *times;   /* runs_open's times (malloc'd) */
  size_t ntimes;
  /* From the claim: the job's open runs (instances), to refuse more. */
  long instances;
  char *taken;             /* ",T1,T2," times already recorded, or NULL */
} redis_staged;

typedef struct redis_store {
  apsched_jobstore base;
  redis_addr addr;
  char root[REDIS_PREFIX_MAX + 3]; /* "{P}" */
  char *prefix;
  redis_link link;           /* the store's calls (one at a time) */
  store_base b;
  int lease_ms;
  char *scheduler_name;
  int64_t history_retention;
  char id[24];               /* this scheduler's id (16 hex digits) */

  /* The claimed batch: claim_due began it; runs_open and release stage
   * it, commit sends it as one script. */
  bool batch, batch_failed;
  bool batch_waits;          /* a run began to wait in it: wake all after the commit */
  /* Set by every message on {P}:wakeup, heartbeat and run made to wait
   * here: claim_waiting has something to look for. */
  atomic_bool look_for_waiting;
  redis_staged *staged;
  size_t nstaged, staged_cap;
  store_claim *pending;      /* claims of orphans taken in this batch */
  apsched_job_record *found; /* the last lookup's record */

  /* mu guards what executor threads and the heartbeat thread share with the
   * store's calls: claims, doubt, sched. */
  pthread_mutex_t mu;
  store_claims claims;       /* committed claims (tokens) */
  /* Runs whose batch's outcome is unknown (the commit's reply was lost) or
   * whose batch failed after they were taken over: offered again by the
   * next claim_orphans if they are still this scheduler's. */
  store_claim *doubt;
  apsched_scheduler *sched;  /* woken by notifications; NULL when closed */
  pthread_mutex_t start_mu;  /* guards start */
  redis_link start;          /* run_starting's connection (start groups) */
  store_starts starts;       /* start groups, written on start (start_mu) */
  char where[160];           /* "redis prefix 'x'", for the start groups' errors */

  /* Liveness (liveness.c): the heartbeat thread, its connection and the
   * subscriber connection. */
  redis_link hb, sub;
  pthread_t hb_thread;
  bool registered;
  int wake[2];
  atomic_bool stopping;
  store_clock clock;
} redis_store;

/* Test hooks, not exported from the shared library. */
REDIS_HIDDEN const char *apsched__redis_store_id(apsched_jobstore *st);
REDIS_HIDDEN const char *apsched__redis_store_prefix(apsched_jobstore *st);

/* "{P}:" + suffix parts into a malloc'd key; NULL when memory is short. */
REDIS_HIDDEN char *apsched__redis_key(const redis_store *rs, const char *kind, const char *id);

/* ---------------------------------------------------------------- runs.c */

/* The staged entry of a claimed record, or NULL. */
REDIS_HIDDEN redis_staged *apsched__redis_staged_of(redis_store *rs, const apsched_job_record *rec);
REDIS_HIDDEN int apsched__redis_runs_open(redis_store *rs, const apsched_job_record *rec,
                                          const apsched_time_t *times, size_t n, bool *track);
REDIS_HIDDEN int apsched__redis_commit(redis_store *rs);
REDIS_HIDDEN int apsched__redis_runs_closed(redis_store *rs, const apsched_run_result *results,
                                            size_t n);
REDIS_HIDDEN int apsched__redis_orphans(redis_store *rs, apsched_orphan_run *out, size_t max);
/* Writes a start group (store_group_write; start_mu held). */
REDIS_HIDDEN int apsched__redis_group_write(void *store, const store_start_group *g, bool start,
                                            void (*hit)(size_t i, void *ud), void *ud);
/* Forgets the staged batch (after its commit, or when it is given up). */
REDIS_HIDDEN void apsched__redis_unstage(redis_store *rs);
REDIS_HIDDEN const char *apsched__redis_delivery_text(const apsched_job_record *rec);
/* How many runs of the job may be in progress across schedulers: overlap
 * allow_all lifts max_instances (as in the PostgreSQL store). */
REDIS_HIDDEN unsigned apsched__redis_instance_limit(const apsched_job_record *rec);

/* ------------------------------------------------------------ run_json.c */

/* The job members of a run record's JSON, from the first comma to the
 * closing brace: func, executor, max_instances, max_runtime_ms, delivery,
 * name and arg when set (malloc'd, *len its length; NULL: out of memory). */
REDIS_HIDDEN char *apsched__redis_run_json_tail(const apsched_job_record *rec, size_t *len);
/* The history retention as the scripts take it: ms, 0 none, -1 all. */
REDIS_HIDDEN void apsched__redis_history_keep(const redis_store *rs, char *buf, size_t len);
/* A record to run a run with, from 12 script values: job_id,
 * scheduled_time, attempt, token, name flag, name, func, executor, arg,
 * max_instances, max_runtime_ms, delivery. NULL when memory is short. */
REDIS_HIDDEN apsched_job_record *apsched__redis_run_record(redis_store *rs, redisReply **v);

/* ------------------------------------------------------------- waiting.c */

/* runs_wait (in the claimed batch: the job's claim is this scheduler's). */
REDIS_HIDDEN int apsched__redis_runs_wait(redis_store *rs, const apsched_job_record *rec,
                                          const apsched_time_t *times, size_t n,
                                          apsched_runs_waiting *out);
REDIS_HIDDEN int apsched__redis_runs_add(redis_store *rs, const apsched_job_record *rec,
                                         const apsched_time_t *times, size_t n, bool *track,
                                         apsched_runs_waiting *out);
/* claim_waiting's script; the runs' claims join the batch's (pending). */
REDIS_HIDDEN int apsched__redis_waiting_take(redis_store *rs, apsched_waited_run *out, size_t max);
/* The heartbeat thread (on hb): reads the stop requests of this
 * scheduler's runs and stops those runs here. */
REDIS_HIDDEN int apsched__redis_stops_read(redis_store *rs);

/* ------------------------------------------------------------ liveness.c */

REDIS_HIDDEN int apsched__redis_register(redis_store *rs);
REDIS_HIDDEN void apsched__redis_deregister(redis_store *rs);
REDIS_HIDDEN apsched_time_t apsched__redis_clock(apsched_jobstore *st, apsched_time_t host_now);

#endif
