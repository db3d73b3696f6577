/* Internal declarations shared across the library's source files. */
#ifndef APSCHED_INTERNAL_H
#define APSCHED_INTERNAL_H

#include "apsched_plugin.h"

#include <stdarg.h>
#include <stdatomic.h>

#define APSCHED_INTERNAL __attribute__((visibility("hidden")))

/* Writes a formatted message into errbuf (if given) and records it for
 * apsched_last_error() on this thread; returns code. Defined in src/error.c. */
APSCHED_INTERNAL int apsched__fail(int code, char *errbuf, size_t errlen, const char *fmt, ...)
    APSCHED_PRINTF(4, 5);

/* Records a message for apsched_last_error() on this thread; returns code. */
APSCHED_INTERNAL int apsched__error(int code, const char *fmt, ...) APSCHED_PRINTF(2, 3);

/* The message of apsched_plugin_error since the last take ("" if none),
 * valid until the next take on this thread. */
APSCHED_INTERNAL const char *apsched__take_plugin_error(void);

/* snprintf that tolerates buf == NULL / len == 0 and appends at *pos,
 * always advancing *pos by the full length (so the caller learns the size). */
APSCHED_INTERNAL void apsched__append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    APSCHED_PRINTF(4, 5);

/* strdup with malloc; NULL in gives NULL out. */
APSCHED_INTERNAL char *apsched__strdup(const char *s);

/* A job's pointer argument and its destructor, in a holder of their own:
 * every argument block carrying the pointer holds a reference, so the
 * destructor runs exactly once, when the job and every run that may still use
 * the pointer are gone (a byte-only change makes a new block, same holder). */
typedef struct apsched_arg_ptr {
  atomic_uint refs;
  void *ptr;
  void (*destroy)(void *); /* NULL: the pointer is not ours to free */
  struct apsched_arg_ptr *next_deferred;
} apsched_arg_ptr;

/* Job arguments shared by a job record and the runs that use them. */
struct apsched_job_args {
  atomic_uint refs;
  void *ptr;              /* holder->ptr (NULL without a holder), for direct reads */
  apsched_arg_ptr *holder; /* NULL: no pointer argument */
  size_t len;
  unsigned char bytes[];
};

/* New arguments with one reference; NULL if there is nothing to hold
 * (ptr NULL and len 0) or on allocation failure (*oom set). */
APSCHED_INTERNAL apsched_job_args *apsched__args_new(void *ptr, void (*ptr_free)(void *),
                                                     const void *bytes, size_t len, bool *oom);
/* New arguments with the given bytes that share from's pointer argument (and
 * its destructor); NULL / *oom as for apsched__args_new. */
APSCHED_INTERNAL apsched_job_args *apsched__args_with_bytes(const apsched_job_args *from,
                                                            const void *bytes, size_t len,
                                                            bool *oom);
/* For a block from apsched__args_new that never reached a job: the pointer
 * stays the caller's, so its destructor must not run. */
APSCHED_INTERNAL void apsched__args_disown(apsched_job_args *a);
APSCHED_INTERNAL apsched_job_args *apsched__args_ref(apsched_job_args *a);
APSCHED_INTERNAL void apsched__args_unref(apsched_job_args *a);
/* Brackets a region (a scheduler's locked section) in which destructors of
 * arguments are deferred until the outermost end, on this thread. */
APSCHED_INTERNAL void apsched__args_defer_begin(void);
APSCHED_INTERNAL void apsched__args_defer_end(void);

/* A record's grace time and max_runtime (kept in milliseconds) in microseconds. */
static inline int64_t apsched__grace_usec(uint32_t ms) {
  return ms == UINT32_MAX ? APSCHED_GRACE_UNLIMITED : (int64_t)ms * APSCHED_MSEC;
}
static inline int64_t apsched__max_runtime_usec(const apsched_job_record *rec) {
  return (int64_t)rec->max_runtime_ms * APSCHED_MSEC;
}

/* The text name of an apsched_overlap ("buffer_one"; the default is "skip"). */
APSCHED_INTERNAL const char *apsched__overlap_name(int overlap);
/* Whether the overlap policy lets a run wait for a running one (buffer_one,
 * buffer_all, cancel_other, terminate_other). */
APSCHED_INTERNAL bool apsched__overlap_waits(int overlap);

/* apsched_job_record_copy, optionally without the trigger (NULL in the
 * copy), for a change that replaces it anyway. */
APSCHED_INTERNAL apsched_job_record *apsched__record_copy(const apsched_job_record *rec,
                                                          bool with_trigger);
/* The job's name as APScheduler shows it: its name, else its function's
 * registered name, else its id. */
APSCHED_INTERNAL const char *apsched__record_name(const apsched_job_record *rec);
/* A record with the given id and all other fields zero / NONE. */
APSCHED_INTERNAL apsched_job_record *apsched__record_new(const char *id);
/* A new record (as apsched__record_new) holding a copy of t. A flat trigger
 * (apsched__trigger_flat_size) is copied into the record's own allocation,
 * right after the id: one malloc chunk instead of two saves the second
 * chunk's header and rounding (an interval job with a 32-character id: 176
 * bytes instead of 144 + 48) and keeps the trigger next to the record.
 * Returns APSCHED_OK, APSCHED_ENOMEM or the clone's error (*out NULL). */
APSCHED_INTERNAL int apsched__record_with_trigger(const char *id, const apsched_trigger *t,
                                                  apsched_job_record **out);
/* Replaces rec's trigger with t (owned by the record from now on), freeing
 * the old one unless it lives in the record's allocation. */
APSCHED_INTERNAL void apsched__record_set_trigger(apsched_job_record *rec, apsched_trigger *t);

/* Interns a function (by pointer, by name, or both). NULL on OOM. */
APSCHED_INTERNAL const apsched_func *apsched__func_by_ptr(apsched_job_fn fn);
/* Looks a name up; creates an unresolved entry (fn NULL) if create is set. */
APSCHED_INTERNAL const apsched_func *apsched__func_by_name(const char *name, bool create);
/* An entry's function. apsched_register_func may resolve an entry (NULL to
 * fn) while the loop and runs read it, so every read goes through here. */
static inline apsched_job_fn apsched__func_fn(const apsched_func *f) {
  return __atomic_load_n(&f->fn, __ATOMIC_ACQUIRE);
}

/* Fills buf (33 bytes) with a random UUID4 in hex. */
APSCHED_INTERNAL void apsched__uuid_hex(char buf[33]);
/* A uniformly random integer in [0, bound] (thread-safe, not cryptographic). */
APSCHED_INTERNAL uint64_t apsched__random_upto(uint64_t bound);

/* Time helpers (src/time). */
APSCHED_INTERNAL int64_t apsched__days_from_civil(int64_t y, int m, int d);
APSCHED_INTERNAL void apsched__civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Formats a duration of microseconds as APScheduler does ("0:00:03",
 * "1 day, 2:00:00.250000") into buf. */
APSCHED_INTERNAL void apsched__format_duration(int64_t usec, char *buf, size_t len);

/* Canonical-text helpers for triggers (src/triggers/trigger_text.c). */
typedef struct apsched__param {
  char key[32];
  char value[256];
} apsched__param;
/* Splits "kind[k=v, k=v]" into its kind and parameters. Values may be quoted
 * with single quotes. Returns the parameter count or a negative error. */
APSCHED_INTERNAL int apsched__split_trigger_text(const char *text, char *kind, size_t kind_len,
                                                 apsched__param *params, int max_params,
                                                 char *errbuf, size_t errlen);

/* What a worker process knows of the run it is given (the strings must
 * outlive the run context: they are not copied). */
typedef struct apsched_run_local_info {
  const char *id, *name, *jobstore, *executor;
  apsched_time_t t;
  unsigned attempt;
  const void *bytes;
  size_t len;
} apsched_run_local_info;
/* A run context rebuilt in a worker process (no scheduler: apsched_run_scheduler
 * returns NULL, apsched_run_arg NULL): what a job function needs there. */
APSCHED_INTERNAL apsched_run_ctx *apsched__run_local(const apsched_run_local_info *info);
/* The message the job set with apsched_run_set_error, or NULL. */
APSCHED_INTERNAL const char *apsched__run_local_error(apsched_run_ctx *run);
APSCHED_INTERNAL void apsched__run_local_free(apsched_run_ctx *run);

/* Runs every time of a run in the calling thread without finishing it (the
 * caller then calls apsched_run_complete). */
APSCHED_INTERNAL void apsched__run_execute_times(apsched_run_ctx *run);
/* CLOCK_MONOTONIC microseconds at which the current execution exceeds its
 * max_runtime; INT64_MAX when there is no limit or nothing is executing. */
APSCHED_INTERNAL int64_t apsched__run_deadline(const apsched_run_ctx *run);
APSCHED_INTERNAL int64_t apsched__mono_now(void);

/* base plus a random [0, t->jitter] (saturating; NONE stays NONE): the run
 * time the scheduler uses for a trigger time. */
APSCHED_INTERNAL apsched_time_t apsched__with_jitter(const apsched_trigger *t, apsched_time_t base);
/* The size of t's struct when t is a built-in kind whose copy is its bytes
 * and which owns nothing else (interval, date): such a trigger can live in
 * its job record's own allocation (see apsched__record_with_trigger). 0 for
 * every other kind. */
APSCHED_INTERNAL size_t apsched__trigger_flat_size(const apsched_trigger *t);
/* True if t has a vtable of a known version with every required entry. */
APSCHED_INTERNAL bool apsched__trigger_vtable_ok(const apsched_trigger *t);

#endif
