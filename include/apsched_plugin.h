/*
 * libapsched plugin interface: custom triggers, job stores and executors.
 *
 * Every vtable starts with a version field; the library refuses a vtable whose
 * version it does not know (APSCHED_EINVAL), so a plugin built against an
 * older header keeps working and a newer one fails cleanly.
 *
 * Plugin objects embed the base struct as their first member and are created
 * by the plugin (with malloc or anything else: destroy frees them).
 */
#ifndef APSCHED_PLUGIN_H
#define APSCHED_PLUGIN_H

#include "apsched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- triggers */

#define APSCHED_TRIGGER_VTABLE_VERSION 1

typedef struct apsched_trigger_vtable {
  int version;      /* APSCHED_TRIGGER_VTABLE_VERSION */
  const char *kind; /* "date", "interval", ...: the canonical text starts with it */
  /* The first fire time strictly after prev, or at/after now when prev is
   * APSCHED_TIME_NONE; APSCHED_TIME_NONE when finished. Must be a pure
   * function of the trigger's parameters: the scheduler may call it with any
   * prev (for example to skip over a long downtime in one step). */
  apsched_time_t (*next)(const apsched_trigger *t, apsched_time_t prev, apsched_time_t now);
  /* Canonical text "kind[param=value, ...]"; snprintf semantics. */
  int (*describe)(const apsched_trigger *t, char *buf, size_t len);
  int (*clone)(const apsched_trigger *t, apsched_trigger **out);
  bool (*equal)(const apsched_trigger *a, const apsched_trigger *b);
  /* Optional: resolve parameters relative to the moment the job is added
   * ("now" defaults). Called on the scheduler's copy only. */
  void (*bind)(apsched_trigger *t, apsched_time_t now);
  void (*destroy)(apsched_trigger *t);
} apsched_trigger_vtable;

struct apsched_trigger {
  const apsched_trigger_vtable *vtable;
  int64_t jitter; /* microseconds; the scheduler adds a random [0, jitter] per run */
};

/* Registers a parser for a custom kind so apsched_trigger_parse (and persistent
 * stores) can restore it: parse receives the text between the brackets. */
typedef int (*apsched_trigger_parse_fn)(const char *params, apsched_trigger **out, char *errbuf,
                                        size_t errlen);
APSCHED_API int apsched_register_trigger_kind(const char *kind, apsched_trigger_parse_fn parse);

/* ------------------------------------------------------------ job records
 * The scheduler's representation of a job, handed to job stores. Records are
 * allocated by the library with malloc (not the scheduler's allocator, since
 * stores free them) and freed with apsched_job_record_free.
 */

/* A registered (or merely referenced) job function. Interned: the pointer is
 * stable for the life of the process. fn is NULL for a name that no function
 * was registered under (a job restored from a persistent store); it may be
 * set later by apsched_register_func, so read it with apsched_func_get. */
typedef struct apsched_func {
  apsched_job_fn fn;
  const char *name; /* NULL if registered by pointer only */
} apsched_func;

/* The function registered for f right now (NULL: none yet). Thread-safe. */
APSCHED_API apsched_job_fn apsched_func_get(const apsched_func *f);
/* The interned entry for a function name, created unresolved (fn NULL) if no
 * function was registered under it yet: what a persistent store puts in a
 * record it reads back. NULL for an empty name or when memory is short. */
APSCHED_API const apsched_func *apsched_func_by_name(const char *name);

/* Shared, reference-counted job arguments (a run keeps them alive). */
typedef struct apsched_job_args apsched_job_args;

enum {
  APSCHED_JOB_COALESCE = 1 << 0,
  /* The id is a library-generated UUIDv7: stores may skip the duplicate check. */
  APSCHED_JOB_GENERATED_ID = 1 << 1,
  /* A persistent store could not decode the job (its trigger is an
   * apsched_trigger_unparsed saying why): the job is kept paused as it is,
   * listed, and can only be removed. */
  APSCHED_JOB_BROKEN = 1 << 2,
  /* apsched_delivery APSCHED_AT_LEAST_ONCE (absent: at most once). */
  APSCHED_JOB_AT_LEAST_ONCE = 1 << 3
};

/* A trigger that stands for text a store could not parse (an unknown kind, a
 * bad parameter): it never fires, describes itself as the original text, and
 * apsched_trigger_unparsed_why tells what was wrong. */
APSCHED_API int apsched_trigger_unparsed(const char *text, const char *why, apsched_trigger **out);
/* The reason given to apsched_trigger_unparsed, or NULL for any other trigger. */
APSCHED_API const char *apsched_trigger_unparsed_why(const apsched_trigger *t);

typedef struct apsched_job_record {
  apsched_time_t next_run_time;  /* APSCHED_TIME_NONE: paused */
  apsched_time_t trigger_time;   /* next_run_time before jitter (the trigger's own time) */
  apsched_trigger *trigger;      /* owned by the record (maybe in its allocation: never free it
                                    alone; apsched_job_record_free frees both) */
  const apsched_func *func;      /* interned */
  char *name;                    /* owned; NULL: default name */
  const char *executor;          /* interned alias */
  apsched_job_args *args;        /* NULL: none */
  uint32_t misfire_grace_ms;     /* milliseconds; UINT32_MAX: unlimited */
  uint32_t max_runtime_ms;       /* milliseconds; 0: no limit */
  void *store_link;              /* for the store's own use (e.g. a hash chain) */
  uint32_t store_pos;            /* for the store's own use (e.g. a heap index) */
  uint32_t store_seq;            /* for the store's own use (e.g. FIFO order) */
  uint16_t max_instances;
  uint16_t flags;                /* APSCHED_JOB_* */
  uint32_t catchup_window_ms;    /* milliseconds; 0: none */
  uint16_t pause_after_failures; /* 0: never */
  uint16_t failures;             /* consecutive failed runs (kept by the store) */
  uint8_t overlap;               /* apsched_overlap; 0 (default) is SKIP */
  char id[];                     /* NUL-terminated */
} apsched_job_record;

APSCHED_API void apsched_job_record_free(apsched_job_record *rec);
/* The canonical text of a record's non-default schedule policies (overlap,
 * catch-up window, pause after failures), as print_jobs shows it and
 * persistent stores keep it: "overlap=buffer_one, catchup_window=3600s,
 * pause_after_failures=3"; "" when all are default. snprintf semantics. */
APSCHED_API int apsched_job_policies_describe(const apsched_job_record *rec, char *buf,
                                              size_t len);
/* Parses that text (NULL or "" for all defaults) into rec's policy fields;
 * on error rec is unchanged and errbuf names the bad part. */
APSCHED_API int apsched_job_policies_parse(const char *text, apsched_job_record *rec, char *errbuf,
                                           size_t errlen);
/* A new record with the given id, every other field zero / APSCHED_TIME_NONE
 * (what a store fills from a row it reads back). NULL when memory is short. */
APSCHED_API apsched_job_record *apsched_job_record_new(const char *id);
/* A byte argument (copied) with one reference, for a record read back; NULL
 * for len 0 or when memory is short. */
APSCHED_API apsched_job_args *apsched_job_args_new(const void *bytes, size_t len);
/* A deep copy of rec (trigger cloned, name copied, arguments shared); the
 * store_* fields are zero. NULL when memory is short. */
APSCHED_API apsched_job_record *apsched_job_record_copy(const apsched_job_record *rec);

/* The byte argument of a job (persistent stores serialize it). */
APSCHED_API const void *apsched_job_args_bytes(const apsched_job_args *a, size_t *len);
/* True if the job has a pointer argument (which no persistent store or other
 * process can keep). */
APSCHED_API bool apsched_job_args_has_pointer(const apsched_job_args *a);

/* ------------------------------------------------------------- job stores
 * The store contract (version 2). Every store passes the conformance kit in
 * tests/store_conformance.h.
 *
 * - Calls on one store never overlap: the scheduler serializes them. A store
 *   needs no locking of its own unless it shares state outside itself.
 * - A store that does no I/O is called with the scheduler's mutex held, so it
 *   must be fast and never block. A store whose calls may block (disk,
 *   network) sets APSCHED_STORE_BLOCKING: then the scheduler calls it without
 *   its mutex, from API callers' threads and from one thread of the store's
 *   own that claims its due jobs, so a slow store delays only its own jobs.
 * - Every mutating call is all or nothing: when it returns an error, the
 *   store holds exactly what it held before the call.
 * - A claimed batch is: claim_orphans, claim_due, runs_open and release of
 *   every record claim_due returned, then commit. Within it the
 *   scheduler makes no other call on that store.
 * - A store says why a call failed with apsched_plugin_error (the scheduler
 *   puts it into apsched_last_error and its logs), interns the executor
 *   aliases of the records it reads with apsched_intern_alias and their
 *   functions with apsched_func_by_name, and reports a job it cannot decode
 *   with apsched_store_report (and keeps it: see APSCHED_JOB_BROKEN).
 */

/* Records why a plugin call is about to fail (printf-style); returns code,
 * so `return apsched_plugin_error(APSCHED_EBACKEND, "disk full: %s", ...)`. */
APSCHED_API int apsched_plugin_error(int code, const char *fmt, ...) APSCHED_PRINTF(2, 3);
/* An alias string that lives as long as the scheduler (for rec->executor).
 * Thread-safe, also from inside a store call. NULL when memory is short. */
APSCHED_API const char *apsched_intern_alias(apsched_scheduler *s, const char *text);
/* A shared store tells this scheduler that another one asked its run of
 * job_id at scheduled_time to stop (overlap policy cancel_other, or
 * terminate_other when terminate): the run sees apsched_run_cancelled(),
 * and an executor that can end runs terminates it. Thread-safe, also from
 * a store's own threads; nothing happens if no such run is running here. */
APSCHED_API void apsched_store_stop_run(apsched_scheduler *s, const char *jobstore,
                                        const char *job_id, apsched_time_t scheduled_time,
                                        bool terminate);
/* Reports a problem with one of the store's jobs (a row it cannot decode):
 * announced by the loop as JOB_ERROR (job_id, jobstore, error = why) and an
 * error log line. Thread-safe, also from inside a store call. */
APSCHED_API void apsched_store_report(apsched_scheduler *s, const char *jobstore,
                                      const char *job_id, const char *why);

/* Version 3 added the run-record calls at the end of the vtable, version 4
 * the calls of stores shared by several schedulers after them, version 5
 * the schedule policies of such stores, version 6 runs_closed_in_batch; the
 * library still accepts versions 2 to 5 (without them). */
#define APSCHED_JOBSTORE_VTABLE_VERSION 6

/* How a run ended, for apsched_jobstore_vtable.runs_closed. */
typedef enum apsched_run_outcome {
  APSCHED_RUN_EXECUTED = 0, /* returned 0 */
  APSCHED_RUN_FAILED,       /* returned non-zero, or timed out */
  APSCHED_RUN_MISSED,       /* too late to start (misfire_grace_time) */
  APSCHED_RUN_SKIPPED       /* not started: max_instances running */
} apsched_run_outcome;

/* One ended run (borrowed strings, valid during the call). */
typedef struct apsched_run_result {
  const char *job_id;
  apsched_time_t scheduled_time;
  unsigned attempt;                /* 1, or more for a recovered run */
  apsched_run_outcome outcome;
  apsched_time_t started_at;       /* wall time; APSCHED_TIME_NONE: never started */
  apsched_time_t finished_at;      /* wall time the outcome was known */
  int retval;
  const char *error;               /* NULL or the failure message */
} apsched_run_result;

/* A run a store recorded with runs_open that a scheduler which is gone
 * never closed (see claim_orphans). */
typedef struct apsched_orphan_run {
  /* What to run, owned by the scheduler after the call: the job as it was
   * when the run was claimed (id, name, function, executor, arguments,
   * max_runtime, max_instances; the trigger is not used). */
  apsched_job_record *rec;
  apsched_time_t scheduled_time;
  unsigned attempt; /* the attempt this run will be: 2 for the first re-run */
} apsched_orphan_run;

/* What runs_wait / runs_add did with runs that wait (version 5). */
typedef struct apsched_runs_waiting {
  unsigned waiting;         /* runs of the job waiting now, the new one included */
  apsched_time_t replaced;  /* NONE, or the first time of the waiting run the new one replaced */
  apsched_time_t stop_time; /* NONE, or the scheduled time of the running run asked to stop */
  bool stop_here;           /* ... which is this scheduler's own: the scheduler stops it */
} apsched_runs_waiting;

/* A run that waited in a shared store and now starts (claim_waiting). */
typedef struct apsched_waited_run {
  /* The job as it was when the run began to wait (as apsched_orphan_run's
   * rec, with its misfire_grace_ms), owned by the scheduler after the call. */
  apsched_job_record *rec;
  apsched_time_t *times; /* its scheduled times, oldest first (malloc'd; the scheduler frees it) */
  size_t n;
  bool on_demand;        /* run now / backfill: it runs whatever its lateness */
} apsched_waited_run;

enum {
  /* The store's calls may block (disk, network): never call it with the
   * scheduler's mutex held. */
  APSCHED_STORE_BLOCKING = 1 << 0
};

typedef struct apsched_jobstore_vtable {
  int version;      /* APSCHED_JOBSTORE_VTABLE_VERSION */
  const char *kind; /* "memory", "sqlite", ... */
  unsigned flags;   /* APSCHED_STORE_* */
  /* Optional. Called when added to a scheduler (alias is interned, valid
   * until destroy). An error refuses the store. */
  int (*open)(apsched_jobstore *st, apsched_scheduler *s, const char *alias);
  /* Optional. Called when removed or when the scheduler is freed, before destroy. */
  void (*close)(apsched_jobstore *st);
  void (*destroy)(apsched_jobstore *st);
  /* Adds n records, all or nothing. replace[i] (replace may be NULL) makes
   * record i replace a job with the same id in one step (an upsert: the old
   * job is never missing); otherwise an id the store holds, or one that
   * repeats in the batch, fails the call with APSCHED_EEXIST. On success the
   * store owns the records; on error it owns none, and *failed (if given)
   * is the index of the offending record (n when none is to blame). */
  int (*add)(apsched_jobstore *st, apsched_job_record *const *recs, size_t n,
             const bool *replace, size_t *failed);
  /* Finds a job: *out is a borrowed, read-only record, valid until the next
   * call on the store. APSCHED_ENOENT if absent; other errors if the store
   * could not look. */
  int (*lookup)(apsched_jobstore *st, const char *id, const apsched_job_record **out);
  /* Replaces the stored job with the same id by rec (a new record: on
   * success the store owns it and frees the one it replaced; on error the
   * stored job is unchanged and the caller keeps rec). APSCHED_ENOENT if absent. */
  int (*update)(apsched_jobstore *st, apsched_job_record *rec);
  /* APSCHED_ENOENT if absent. */
  int (*remove)(apsched_jobstore *st, const char *id);
  int (*remove_all)(apsched_jobstore *st);
  /* The earliest next_run_time over unclaimed, unpaused jobs
   * (APSCHED_TIME_NONE if none). */
  int (*next_run_time)(apsched_jobstore *st, apsched_time_t *out);
  /* Claims up to max jobs with next_run_time <= now, earliest first. Claimed
   * records are borrowed and read-only, and belong to this scheduler until
   * released; a store shared by several schedulers hands each due job to
   * exactly one of them. Returns the number claimed (>= 0) or an error. */
  int (*claim_due)(apsched_jobstore *st, apsched_time_t now, apsched_job_record **out,
                   size_t max);
  /* Ends the claim of rec: stores next_run_time and trigger_time
   * (APSCHED_TIME_NONE: the job is now paused), or deletes the job when
   * remove_job is set. The scheduler starts the job's runs only after this
   * succeeded. On error the claim is undone: the job keeps its previous
   * next run time and is due again. */
  int (*release)(apsched_jobstore *st, apsched_job_record *rec, apsched_time_t next_run_time,
                 apsched_time_t trigger_time, bool remove_job);
  /* Optional. Called once after the releases of one claim_due batch (also
   * when some failed), so a store can claim, record and advance a whole batch
   * in one transaction and commit it here. On error every release of the
   * batch is undone (the jobs are due again) and the scheduler starts none
   * of their runs. */
  int (*commit)(apsched_jobstore *st);
  /* Calls fn for every job (borrowed records); stops early if fn returns
   * non-zero and returns that value. */
  int (*foreach)(apsched_jobstore *st, int (*fn)(const apsched_job_record *rec, void *ud),
                 void *ud);

  /* ---- version 3: run records (at-least-once delivery, run history).
   * All optional; a store without them keeps no record of runs. */

  /* Called in a claimed batch, after claim_due and before release(rec):
   * the runs the scheduler will start for rec if the release succeeds. A
   * store records what must outlive a crash (every run of a job with
   * APSCHED_JOB_AT_LEAST_ONCE) in the same transaction as the release, and
   * sets *track when it wants these runs back in runs_closed. On error the
   * scheduler releases rec with its times unchanged (it is due again) and
   * starts none of its runs. Version 4: APSCHED_EBUSY says that starting
   * them would exceed the job's max_instances across every scheduler of a
   * shared store; the scheduler then skips them (MAX_INSTANCES event), still
   * releases rec with its new times, and passes nothing to runs_closed. */
  int (*runs_open)(apsched_jobstore *st, const apsched_job_record *rec,
                   const apsched_time_t *times, size_t n, bool *track);
  /* Runs that ended, in the order they ended, for runs the store tracked:
   * close their records, keep a history if the store does. Never called
   * inside a claimed batch (see runs_closed_in_batch); a blocking store gets the call from its own
   * thread, batched. On error nothing of the call is kept and the scheduler
   * passes the same results again later (the store reports as failing). A
   * run whose record is gone is ignored. Runs that never started are passed
   * as SKIPPED when a policy skipped them (max_instances) or their release
   * failed, and, for at-most-once jobs, as FAILED when this scheduler could
   * not start them (no such executor, or it refused them; the function is
   * not registered; run_starting could not reach the store). Otherwise
   * (at-least-once runs this scheduler could not start, runs dropped by a
   * shutdown without waiting, memory ran short) they are not passed: their
   * records stay open for the next scheduler, and at-least-once runs are
   * run again. */
  int (*runs_closed)(apsched_jobstore *st, const apsched_run_result *results, size_t n);
  /* Called at the start of each claimed batch (before claim_due, in the
   * same transaction): runs recorded by runs_open whose scheduler is gone
   * (SQLite: a previous process; shared stores: an owner whose lease
   * lapsed), up to max, which this scheduler takes over (their attempt
   * incremented in the store). They are run whatever their lateness and
   * announced as JOB_RECOVERED; the store gets them back in runs_closed.
   * Returns the number (>= 0) or an error (the batch is undone). */
  int (*claim_orphans)(apsched_jobstore *st, apsched_orphan_run *out, size_t max);

  /* ---- version 4: stores shared by several schedulers. Optional. */

  /* The store's clock, when due-ness follows the clock of a database that
   * several hosts share rather than each host's: the loop claims due jobs,
   * plans their runs, checks their lateness when they start and sleeps by
   * it. host_now is the scheduler's wall clock. Called at the start of
   * every pass and without any lock (also while other calls of the store
   * run): no round trip, e.g. host_now plus an offset measured on the
   * store's last round trips. */
  apsched_time_t (*clock)(apsched_jobstore *st, apsched_time_t host_now);
  /* Called on the thread about to start one scheduled time of a run the
   * store tracks (after the misfire check): the store confirms that this
   * scheduler still owns the run (fencing: one stalled past its lease has
   * lost it to another) and records the start. APSCHED_OK: it starts; an
   * error: it does not start, it is reported as JOB_ERROR ("the claim of
   * this run was lost: ...") and not passed to runs_closed. Called without
   * the store's call lock, concurrently with its other calls and with
   * itself: the store guards what it shares. */
  int (*run_starting)(apsched_jobstore *st, const char *job_id, apsched_time_t scheduled_time,
                      unsigned attempt);

  /* ---- version 5: schedule policies of shared stores. Optional; a shared
   * store without them refuses the overlap policies whose runs wait
   * (buffer_one, buffer_all, cancel_other, terminate_other), run now and
   * backfill. Runs wait in the store, not in any one scheduler: any
   * scheduler starts them when the job has a free instance slot counted
   * across all of them, and they outlive the scheduler that made them wait. */

  /* Called in a claimed batch after runs_open answered APSCHED_EBUSY for a
   * job whose overlap policy lets a run wait: the store keeps the run (its
   * times) waiting, in the batch's transaction. buffer_all: after the runs
   * waiting already, or APSCHED_EBUSY (nothing kept) when
   * APSCHED_BUFFER_ALL_LIMIT wait already; the other policies: it replaces
   * the waiting run, which the store ends as skipped. cancel_other and
   * terminate_other also ask the oldest running run of the job that was not
   * asked yet to stop: the store tells its scheduler (apsched_store_stop_run,
   * within a heartbeat) or, when it is this one, says so in *out. An error
   * fails the batch as runs_open's does. */
  int (*runs_wait)(apsched_jobstore *st, const apsched_job_record *rec, const apsched_time_t *times,
                   size_t n, apsched_runs_waiting *out);
  /* Called in each claimed batch after claim_orphans (same transaction):
   * waiting runs whose job has a free instance slot now, oldest first, up to
   * max, which this scheduler takes and starts (recorded as its runs, as by
   * runs_open, and given back in runs_closed; the misfire check applies
   * unless on_demand). Returns the number (>= 0) or an error (the batch is
   * undone). */
  int (*claim_waiting)(apsched_jobstore *st, apsched_waited_run *out, size_t max);
  /* A run on demand (apsched_run_job_now, apsched_backfill_job: one run of
   * times), outside any batch, committed on its own: recorded as runs_open
   * records runs (APSCHED_OK, out->waiting 0: this scheduler starts it,
   * *track as runs_open's), or, at max_instances across the schedulers,
   * kept waiting as runs_wait keeps runs (APSCHED_OK, out->waiting > 0) or
   * skipped (APSCHED_EBUSY: policy skip, or buffer_all's limit). */
  int (*runs_add)(apsched_jobstore *st, const apsched_job_record *rec, const apsched_time_t *times,
                  size_t n, bool *track, apsched_runs_waiting *out);

  /* ---- version 6. Optional; only used with runs_closed and commit. */

  /* runs_closed, but as the first call of a claimed batch (before
   * claim_orphans): the store writes the closes in the batch's transaction,
   * so that ending runs and claiming the next batch cost one commit. The
   * scheduler then calls commit at the end of the batch even when it claims
   * nothing; the closes take effect with it, or, when it fails (or the
   * batch is rolled back), not at all, and the scheduler passes the same
   * results again later. results stay valid until commit returns. On error
   * nothing of the call is kept, and no transaction is left open by it: the
   * scheduler claims nothing in that pass and retries later. The other
   * rules of runs_closed apply. */
  int (*runs_closed_in_batch)(apsched_jobstore *st, const apsched_run_result *results, size_t n);
} apsched_jobstore_vtable;

struct apsched_jobstore {
  const apsched_jobstore_vtable *vtable;
};

/* -------------------------------------------------------------- executors */

/* Version 2 added terminate at the end; version 1 vtables are still accepted. */
#define APSCHED_EXECUTOR_VTABLE_VERSION 2

typedef struct apsched_executor_vtable {
  int version;      /* APSCHED_EXECUTOR_VTABLE_VERSION */
  const char *kind; /* "inline", "threadpool", ... */
  /* Called when the scheduler starts (or when added to a running one).
   * Non-zero refuses (the built-in pools return APSCHED_ESTATE while a
   * previous shutdown is still waiting or ending its workers); the
   * scheduler then stays stopped. */
  int (*start)(apsched_executor *ex, apsched_scheduler *s, const char *alias);
  /* Takes ownership of run and must not block: eventually, on some thread,
   * calls apsched_run_execute(run) (in-process) or the lower-level calls below.
   * On error the scheduler still owns run. */
  int (*submit)(apsched_executor *ex, apsched_run_ctx *run);
  /* Stops accepting runs; wait: returns after all accepted runs have finished.
   * Without wait, runs still queued are dropped with apsched_run_discard. */
  void (*shutdown)(apsched_executor *ex, bool wait);
  /* True if the calling thread is one of the executor's workers. */
  bool (*owns_thread)(apsched_executor *ex);
  void (*destroy)(apsched_executor *ex);
  /* Optional: whether this executor can run the job at all (a process pool
   * cannot pass a pointer argument). Called when a job is added or modified
   * with this executor; non-zero refuses it, with a message in why. */
  int (*check_job)(apsched_executor *ex, const apsched_job_record *rec, char *why, size_t len);
  /* Version 2, optional: end a run it is executing now as max_runtime does
   * (the process pool terminates its worker); the run completes as usual,
   * with the outcome apsched_run_stop_reason() gives. Must not block; may be
   * called with the scheduler's lock held. Executors with it accept jobs
   * with the overlap policy TERMINATE_OTHER. */
  void (*terminate)(apsched_executor *ex, apsched_run_ctx *run);
} apsched_executor_vtable;

struct apsched_executor {
  const apsched_executor_vtable *vtable;
};

/* Runs every scheduled time of the run in the calling thread (misfire check,
 * the job function, events), then releases the run's instance slot and frees
 * run. The usual body of an in-process executor's worker. */
APSCHED_API void apsched_run_execute(apsched_run_ctx *run);
/* Frees a run that will not execute (executor shutting down without wait),
 * releasing its instance slot. */
APSCHED_API void apsched_run_discard(apsched_run_ctx *run);

/* Lower-level calls for executors that run the job elsewhere (another
 * process). For each i in [0, apsched_run_count): apsched_run_begin (the
 * misfire check at the moment the run would start; false: it was reported
 * missed, skip it), run the job, apsched_run_record; finally
 * apsched_run_complete (releases the instance slot, delivers the outcome
 * events, frees the run). apsched_run_execute does exactly this in-process. */
APSCHED_API size_t apsched_run_count(const apsched_run_ctx *run);
APSCHED_API apsched_time_t apsched_run_time_at(const apsched_run_ctx *run, size_t i);
/* The job's function (pointer and registered name, if any). */
APSCHED_API const apsched_func *apsched_run_func(const apsched_run_ctx *run);
/* The job's max_runtime in microseconds (0: none). */
APSCHED_API int64_t apsched_run_max_runtime(const apsched_run_ctx *run);
APSCHED_API bool apsched_run_begin(apsched_run_ctx *run, size_t i);
/* retval 0 is success; error (copied, may be NULL) is the failure message. */
APSCHED_API void apsched_run_record(apsched_run_ctx *run, size_t i, int retval, const char *error);
APSCHED_API void apsched_run_complete(apsched_run_ctx *run);
/* Marks the run as over its max_runtime (logged once): the job sees
 * apsched_run_cancelled(), and its outcome becomes "timed out after ...". */
APSCHED_API void apsched_run_cancel(apsched_run_ctx *run);
/* Why the run is being stopped: NULL when it is not (or only by its
 * max_runtime), else the error its outcome reports ("cancelled: a newer run
 * of the job is due (overlap policy cancel_other)"). */
APSCHED_API const char *apsched_run_stop_reason(const apsched_run_ctx *run);

#ifdef __cplusplus
}
#endif
#endif /* APSCHED_PLUGIN_H */
