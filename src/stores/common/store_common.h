/* What the persistent job stores (libapsched-sqlite, -pg, -redis) share:
 * the job columns, records <-> column values, rows that cannot be decoded,
 * the claimed batch, their error messages, and for the shared stores the
 * claims' tokens and the database's clock. Compiled into each store
 * library (hidden): the libraries see the core only through apsched.h and
 * apsched_plugin.h, like any store plugin. */
#ifndef APSCHED_STORE_COMMON_H
#define APSCHED_STORE_COMMON_H

#include "apsched_plugin.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_HIDDEN __attribute__((visibility("hidden")))

/* The job columns in the order every statement binds and selects them. */
#define STORE_JOB_COLUMNS                                                                   \
  "id, name, func, \"trigger\", executor, arg, misfire_grace_ms, \"coalesce\", max_instances, " \
  "max_runtime_ms, next_run_time, trigger_time, delivery, policies, failures"
enum {
  COL_ID,
  COL_NAME,
  COL_FUNC,
  COL_TRIGGER,
  COL_EXECUTOR,
  COL_ARG,
  COL_MISFIRE,
  COL_COALESCE,
  COL_MAX_INSTANCES,
  COL_MAX_RUNTIME,
  COL_NEXT_RUN_TIME,
  COL_TRIGGER_TIME,
  COL_DELIVERY,
  COL_POLICIES, /* apsched_job_policies_describe's text; NULL: all default */
  COL_FAILURES, /* consecutive failed runs (pause_after_failures) */
  COL_COUNT
};

/* ------------------------------------------------------------- errors.c */

/* apsched_plugin_error, also kept for apsched__pstore_last_error. Every
 * message of a store library goes through here. */
STORE_HIDDEN int apsched__pstore_error(int code, const char *fmt, ...) APSCHED_PRINTF(2, 3);
/* The last message of apsched__pstore_error on this thread (for the errbuf of
 * a store's create function: the core keeps its own copy to itself). */
STORE_HIDDEN const char *apsched__pstore_last_error(void);

/* -------------------------------------------------------------- waits.c */

/* The name a shared store keeps a job's overlap policy under when its runs
 * wait (buffer_one, buffer_all, cancel_other, terminate_other); NULL for
 * the policies whose runs never wait. */
STORE_HIDDEN const char *apsched__pstore_wait_policy(const apsched_job_record *rec);
/* The policy of such a name (SKIP for any other text). */
STORE_HIDDEN apsched_overlap apsched__pstore_wait_overlap(const char *text);
/* runs_wait's and runs_add's arguments: APSCHED_OK, or APSCHED_EINVAL
 * naming the missing one (call: "runs_wait"). */
STORE_HIDDEN int apsched__pstore_check_wait_args(const char *call, const apsched_job_record *rec,
                                                 const apsched_time_t *times, size_t n,
                                                 const void *out);

/* ---------------------------------------------------------------- sql.c */

/* Replaces every '@' in sql by subst (a table prefix, a quoted schema name);
 * malloc'd, NULL when memory is short. */
STORE_HIDDEN char *apsched__pstore_expand(const char *sql, const char *subst);

/* -------------------------------------------------------------- codec.c */

/* One column value of a job row, as a store's driver read it (or is to
 * write it). */
typedef enum store_kind {
  STORE_NULL,
  STORE_INT,   /* i */
  STORE_TEXT,  /* text, NUL-terminated */
  STORE_BYTES, /* bytes, len */
  STORE_OTHER  /* a type the column should not hold; other says which ("a real number") */
} store_kind;

typedef struct store_value {
  store_kind kind;
  int64_t i;
  const char *text;
  const void *bytes;
  size_t len;
  const char *other;
} store_value;

/* Whether the record can be kept in a row at all (a registered function
 * name, no pointer argument); APSCHED_EINVAL with the reason if not. store
 * names the kind in the message ("SQLite", "PostgreSQL"). */
STORE_HIDDEN int apsched__pstore_storable(const apsched_job_record *rec, const char *store);

/* The canonical text of rec's trigger (malloc'd), or NULL when memory is
 * short or the trigger cannot describe itself (the error is set). */
STORE_HIDDEN char *apsched__pstore_trigger_text(const apsched_job_record *rec);

/* What add checks before it writes anything: every record storable (else
 * *failed is its index), and the canonical trigger texts of all, in *texts
 * (freed with apsched__pstore_free_texts). */
STORE_HIDDEN int apsched__pstore_add_prepare(apsched_job_record *const *recs, size_t n,
                                             const char *store, char ***texts, size_t *failed);
STORE_HIDDEN void apsched__pstore_free_texts(char **texts, size_t n);

/* The column values of rec (a storable record); they point into rec,
 * trigger_text and policies. Times and the argument are NULL when absent. */
/* Room for the text of a record's non-default policies (COL_POLICIES):
 * fits any combination. */
typedef struct store_policies {
  char text[128];
} store_policies;

/* ... and COL_POLICIES points into policies. */
STORE_HIDDEN void apsched__pstore_encode(const apsched_job_record *rec, const char *trigger_text,
                                         store_policies *policies, store_value out[COL_COUNT]);

/* Interns an executor alias for a record read back. */
typedef const char *(*store_intern_fn)(void *ctx, const char *text);

/* v in decimal at buf (at least 21 bytes), NUL-terminated; returns its
 * length. What snprintf("%" PRId64) writes, without its cost: a batch
 * sends several numbers per run. */
STORE_HIDDEN size_t apsched__pstore_i64(char *buf, int64_t v);
/* Decodes one row into a new record. A row that cannot be decoded becomes
 * a broken record (APSCHED_JOB_BROKEN, an unparsed trigger saying why, no
 * next run time); *why (if given) then points at the reason, valid until
 * the record is freed. APSCHED_ENOMEM is the only error. */
STORE_HIDDEN int apsched__pstore_decode(const store_value cols[COL_COUNT], store_intern_fn intern,
                                       void *ctx, apsched_job_record **out, const char **why);

/* ------------------------------------------------------------- strset.c */

/* A small set of strings (ids of broken rows, aliases interned before the
 * store knows its scheduler): few entries, so a plain array. */
typedef struct store_strset {
  char **items;
  size_t n, cap;
} store_strset;

STORE_HIDDEN const char *apsched__pstore_strset_find(const store_strset *set, const char *s);
/* The stored copy of s (added if missing); NULL when memory is short. */
STORE_HIDDEN const char *apsched__pstore_strset_add(store_strset *set, const char *s);
STORE_HIDDEN void apsched__pstore_strset_remove(store_strset *set, const char *s);
STORE_HIDDEN void apsched__pstore_strset_clear(store_strset *set);
STORE_HIDDEN void apsched__pstore_strset_free(store_strset *set);

/* --------------------------------------------------------------- base.c */

/* The state of a persistent store that is not in its database: the
 * scheduler it was opened by, the rows found broken (reported once per
 * open), and the records of the claimed batch. Embedded in each store. */
typedef struct store_base {
  apsched_scheduler *sched; /* from open; NULL before open and after close */
  const char *alias;
  store_strset broken;  /* ids of rows that do not decode, reported since open */
  store_strset aliases; /* executor aliases while there is no scheduler */
  apsched_job_record **claimed; /* every record claimed in the batch */
  size_t nclaimed, claimed_cap, held;
  /* claimed by id: an open-addressing table of indices into claimed (+ 1;
   * 0: empty), at most half full, so a claim of n jobs checks what it
   * holds in O(n), not O(n^2). */
  uint32_t *by_id;
  size_t by_id_slots;
} store_base;

/* An intern function for apsched__pstore_decode; ctx is the store_base. */
STORE_HIDDEN const char *apsched__pstore_intern(void *ctx, const char *text);
/* open / close of the vtable: remembers (forgets) the scheduler; a new open
 * reports every broken row again. */
STORE_HIDDEN void apsched__pstore_base_open(store_base *b, apsched_scheduler *s, const char *alias);
STORE_HIDDEN void apsched__pstore_base_close(store_base *b);
STORE_HIDDEN void apsched__pstore_base_free(store_base *b);

/* Decodes a row (apsched__pstore_decode): a broken one is reported once per
 * open; one that decodes again (fixed by hand) is forgotten as broken. */
STORE_HIDDEN int apsched__pstore_decode_row(store_base *b, const store_value cols[COL_COUNT],
                                           apsched_job_record **out);
/* A row with this id was removed: forgotten as broken (id NULL: all rows). */
STORE_HIDDEN void apsched__pstore_removed(store_base *b, const char *id);
/* Whether a row with this id was found broken since open. */
STORE_HIDDEN bool apsched__pstore_known_broken(const store_base *b, const char *id);

/* Adds rec (claimed now) to the batch: held until released. */
STORE_HIDDEN int apsched__pstore_hold(store_base *b, apsched_job_record *rec);
/* Whether a record with this id is claimed and not yet released. */
STORE_HIDDEN bool apsched__pstore_is_held(const store_base *b, const char *id);
/* Ends the hold of rec for release(); APSCHED_EINVAL (naming rec and where)
 * if rec is not a held record of this batch. */
STORE_HIDDEN int apsched__pstore_unhold(store_base *b, apsched_job_record *rec, const char *where);
/* Frees the batch's records from index first on (0: all). */
STORE_HIDDEN void apsched__pstore_drop_claims(store_base *b, size_t first);

/* ------------------------------------------------------------- claims.c */

/* A run a shared store claimed: what its later writes are fenced with. */
typedef struct store_claim {
  struct store_claim *next;
  int64_t scheduled_time;
  int64_t token;
  unsigned attempt;
  /* Kept by the store that records starts in groups (pg/runs.c): the run
   * started here, or its start is recorded ahead until prestart_until (a
   * monotonic time in microseconds; 0: not recorded ahead). */
  bool started;
  int64_t prestart_until;
  char job_id[]; /* NUL-terminated */
} store_claim;

/* The claims a store holds, by (job id, scheduled time, attempt): one
 * process can hold two attempts of a run (it was taken for dead while
 * stalled, then took the run over again from the scheduler that had taken
 * it), and each attempt's writes are fenced with its own token. Not thread-safe:
 * the store guards it. */
typedef struct store_claims {
  store_claim **slots;
  size_t nslots, n;
} store_claims;

/* A claim not in any table yet; NULL when memory is short. */
STORE_HIDDEN store_claim *apsched__pstore_claim_new(const char *job_id, int64_t t, unsigned attempt,
                                                   int64_t token);
/* Keeps c (replacing a claim of the same run and attempt). */
STORE_HIDDEN void apsched__pstore_claims_put(store_claims *cs, store_claim *c);
/* The token of a claim held (0: none). */
STORE_HIDDEN int64_t apsched__pstore_claims_token(store_claims *cs, const char *job_id, int64_t t,
                                                  unsigned attempt);
/* The claim of (job_id, t, attempt), or NULL. */
STORE_HIDDEN store_claim *apsched__pstore_claims_find(store_claims *cs, const char *job_id, int64_t t,
                                                      unsigned attempt);
/* Calls fn on every claim held. */
STORE_HIDDEN void apsched__pstore_claims_each(store_claims *cs, void (*fn)(store_claim *c, void *ud),
                                              void *ud);
/* Forgets the claim of (job_id, t) that has this token, if still held. */
STORE_HIDDEN void apsched__pstore_claims_drop(store_claims *cs, const char *job_id, int64_t t,
                                             int64_t token);
STORE_HIDDEN void apsched__pstore_claims_free(store_claims *cs);

/* ------------------------------------------------------- start_groups.c */

enum { STORE_START_GROUP = 256 };

/* Runs whose starts one write records (or takes back). */
typedef struct store_start_group {
  const char *job_id[STORE_START_GROUP];
  int64_t t[STORE_START_GROUP], token[STORE_START_GROUP];
  unsigned attempt[STORE_START_GROUP];
  size_t n;
} store_start_group;

/* A store's write of a group (start: mark the runs started and renew this
 * scheduler's liveness; else: unmark them), each run fenced by owner and
 * token; calls hit(i, ud) for each run that was still this scheduler's
 * (hit may be NULL). */
typedef int (*store_group_write)(void *store, const store_start_group *g, bool start,
                                 void (*hit)(size_t i, void *ud), void *ud);

/* A store's starts (start_groups.c explains them). */
typedef struct store_starts {
  pthread_mutex_t *mu;       /* guards claims, due and wake_fd */
  pthread_mutex_t *write_mu; /* orders the writes of groups */
  store_claims *claims;
  int64_t window;            /* how long a start recorded ahead holds (us) */
  int64_t due;               /* earliest end of a window not used yet (0: none) */
  int wake_fd;               /* written when due moves earlier; -1: none */
  const char *where;         /* "postgresql schema 'x'": errors begin with it */
  store_group_write write;
  void *store;
} store_starts;

/* run_starting: APSCHED_OK once the run may start, APSCHED_ESTATE when it
 * is not this scheduler's (any more) or started already. */
STORE_HIDDEN int apsched__pstore_run_starting(store_starts *st, const char *job_id, int64_t t,
                                              unsigned attempt);
/* Takes back the starts recorded ahead whose window ended unused. */
STORE_HIDDEN void apsched__pstore_starts_expire(store_starts *st);
/* Takes back every start recorded ahead and not used (a clean close). */
STORE_HIDDEN void apsched__pstore_starts_take_back_all(store_starts *st);
/* A claim put with prestart_until = until (its start recorded ahead by the
 * store's claim): notes when its window ends (mu held); true if that is
 * now the earliest, and the heartbeat thread must be woken
 * (apsched__pstore_starts_wake, without mu). */
STORE_HIDDEN bool apsched__pstore_starts_ahead_locked(store_starts *st, int64_t until);
STORE_HIDDEN void apsched__pstore_starts_wake(store_starts *st);
/* When the earliest window ends (0: none). */
STORE_HIDDEN int64_t apsched__pstore_starts_due(store_starts *st);
/* A heartbeat thread's wait: takes back the windows that ended, then waits
 * on wake_fd (drained) and conn_fd (-1: none) until next (monotonic us, its
 * next beat) or the earliest window's end. True if conn_fd is readable. */
STORE_HIDDEN bool apsched__pstore_starts_wait(store_starts *st, int wake_fd, int conn_fd,
                                              int64_t next);

/* -------------------------------------------------------------- clock.c */

enum { STORE_CLOCK_SAMPLES = 8 };

/* The estimated offset of a database's clock from this host's. */
typedef struct store_clock {
  _Atomic int64_t offset; /* database minus host, microseconds */
  atomic_bool known;
  int64_t rtt[STORE_CLOCK_SAMPLES], sample[STORE_CLOCK_SAMPLES];
  unsigned next; /* the sampling thread's only */
} store_clock;

/* Notes one round trip: the host's time before and after, the database's
 * in between (0: no reading). One thread samples. */
STORE_HIDDEN void apsched__pstore_clock_sample(store_clock *c, int64_t before, int64_t db,
                                              int64_t after);
/* host_now plus the offset of the best recent sample (host_now before any). */
STORE_HIDDEN apsched_time_t apsched__pstore_clock_now(store_clock *c, apsched_time_t host_now);
/* This host's monotonic clock in microseconds: for durations (heartbeat
 * periods, how long a start recorded ahead stays valid), never due-ness. */
STORE_HIDDEN int64_t apsched__pstore_mono_us(void);

#endif
