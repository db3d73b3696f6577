/*
 * libapsched - an embeddable job scheduling library (C11 + pthreads).
 *
 * One umbrella header. Plugin authors (custom triggers, job stores,
 * executors) also include <apsched_plugin.h>.
 *
 * Conventions:
 *  - Every fallible call returns int: APSCHED_OK (0) or a negative APSCHED_E*
 *    code. On error nothing has changed.
 *  - Options are plain structs; a zero field means "the default".
 *  - Objects are opaque and library-allocated; every *_free(NULL) is a no-op.
 *  - Times are apsched_time_t: int64 microseconds since the Unix epoch, UTC.
 *  - All calls on a scheduler are thread-safe, and may be made from jobs and
 *    event listeners running on that same scheduler.
 */
#ifndef APSCHED_H
#define APSCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(APSCHED_STATIC)
#define APSCHED_API
#elif defined(APSCHED_BUILDING)
#define APSCHED_API __attribute__((visibility("default")))
#else
#define APSCHED_API
#endif

#if defined(__GNUC__)
#define APSCHED_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define APSCHED_PRINTF(fmt, args)
#endif

/* ---------------------------------------------------------------- version */

#define APSCHED_VERSION_MAJOR 0
#define APSCHED_VERSION_MINOR 1
#define APSCHED_VERSION_PATCH 0
#define APSCHED_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, comparable with APSCHED_VERSION_NUMBER. */
#define APSCHED_VERSION_NUMBER \
  (APSCHED_VERSION_MAJOR * 10000 + APSCHED_VERSION_MINOR * 100 + APSCHED_VERSION_PATCH)

/* The version of the library actually loaded at run time ("0.1.0"). */
APSCHED_API const char *apsched_version(void);
/* The same as a number: MAJOR * 10000 + MINOR * 100 + PATCH. */
APSCHED_API int apsched_version_number(void);

/* ----------------------------------------------------------------- errors */

enum {
  APSCHED_OK = 0,
  APSCHED_EINVAL = -1,   /* a bad argument; nothing changed */
  APSCHED_ENOENT = -2,   /* no job (or store, executor, listener) by that id */
  APSCHED_EEXIST = -3,   /* the id or alias is already taken */
  APSCHED_ESTATE = -4,   /* wrong scheduler state (already running, not running) */
  APSCHED_ENOMEM = -5,   /* out of memory */
  APSCHED_EBACKEND = -6, /* a job store or executor failed */
  APSCHED_ESYS = -7,     /* a system call failed (threads, descriptors) */
  APSCHED_EDEADLK = -8,  /* the call would wait for the calling thread itself */
  APSCHED_ERANGE = -9,   /* a time or count outside the supported range */
  APSCHED_EBUSY = -10    /* max_instances reached (in a shared store: across schedulers) */
};

/* A short, static description of an error code; never allocates, never NULL. */
APSCHED_API const char *apsched_strerror(int code);
/* What exactly was wrong in the last call that failed on this thread, naming
 * the bad input ("max_instances: -1 is outside 1..65535"); "" if none.
 * Successful calls leave it unchanged. Valid until the thread's next failure. */
APSCHED_API const char *apsched_last_error(void);

/* ------------------------------------------------------------------- time */

typedef int64_t apsched_time_t;

#define APSCHED_TIME_NONE INT64_MIN /* "no time": paused job, finished trigger */
#define APSCHED_USEC 1LL
#define APSCHED_MSEC 1000LL
#define APSCHED_SEC 1000000LL
#define APSCHED_MINUTE (60LL * APSCHED_SEC)
#define APSCHED_HOUR (60LL * APSCHED_MINUTE)
#define APSCHED_DAY (24LL * APSCHED_HOUR)
#define APSCHED_WEEK (7LL * APSCHED_DAY)

/* The system's wall-clock time (CLOCK_REALTIME) as apsched_time_t. */
APSCHED_API apsched_time_t apsched_now(void);

/* --------------------------------------------------------------- time zones
 * Zones are immutable, reference counted and safe to share between threads.
 * apsched_tz_get() returns a new reference the caller releases with
 * apsched_tz_free(). Names: "UTC", fixed offsets ("+05:45", "UTC-03:00"),
 * IANA names ("Europe/Berlin"), POSIX TZ strings, and "local".
 */
typedef struct apsched_tz apsched_tz;

/* Broken-down civil time in some zone. */
typedef struct apsched_civil {
  int year;        /* proleptic Gregorian, e.g. 2026 */
  int month;       /* 1..12 */
  int day;         /* 1..31 */
  int hour;        /* 0..23 */
  int minute;      /* 0..59 */
  int second;      /* 0..59 */
  int microsecond; /* 0..999999 */
  int utc_offset;  /* seconds east of UTC in effect (filled by conversions) */
  int is_dst;      /* 1 if daylight saving time is in effect */
  char abbr[16];   /* zone abbreviation ("CEST", "+0545") */
} apsched_civil;

/* How a local time that is skipped (gap) or repeated (fold) maps to UTC. */
typedef enum apsched_local_kind {
  APSCHED_LOCAL_UNIQUE = 0,  /* exactly one instant */
  APSCHED_LOCAL_SKIPPED = 1, /* falls in a gap: never happened on the wall */
  APSCHED_LOCAL_REPEATED = 2 /* falls in a fold: happened twice */
} apsched_local_kind;

typedef enum apsched_disambiguate {
  APSCHED_EARLIER = 0, /* fold: first occurrence; gap: as if the earlier offset applied */
  APSCHED_LATER = 1,   /* fold: second occurrence; gap: as if the later offset applied */
  APSCHED_GAP_END = 2  /* fold: first occurrence; gap: the first instant after the gap */
} apsched_disambiguate;

typedef struct apsched_local_result {
  apsched_time_t utc;        /* the chosen instant */
  apsched_local_kind kind;   /* unique, skipped or repeated */
  apsched_time_t transition; /* for skipped/repeated: the transition instant */
} apsched_local_result;

/* Looks a zone up by name (see above). On error returns APSCHED_EINVAL or
 * APSCHED_ENOENT and a message naming the problem, in errbuf if given and in
 * apsched_last_error(). */
APSCHED_API int apsched_tz_get(const char *name, apsched_tz **out, char *errbuf, size_t errlen);
/* The process-wide UTC zone: never NULL; freeing it is harmless. */
APSCHED_API apsched_tz *apsched_tz_utc(void);
/* Adds a reference; returns tz. */
APSCHED_API apsched_tz *apsched_tz_ref(apsched_tz *tz);
/* Drops a reference. */
APSCHED_API void apsched_tz_free(apsched_tz *tz);
/* The name the zone was looked up by (canonical for fixed offsets: "+05:45"). */
APSCHED_API const char *apsched_tz_name(const apsched_tz *tz);
/* UTC instant -> local civil time with offset, DST flag and abbreviation. */
APSCHED_API int apsched_tz_to_local(const apsched_tz *tz, apsched_time_t t, apsched_civil *out);
/* Local civil time (the offset fields of *local are ignored) -> UTC.
 * APSCHED_EINVAL for a field out of range, APSCHED_ERANGE for a time
 * apsched_time_t cannot hold. */
APSCHED_API int apsched_tz_from_local(const apsched_tz *tz, const apsched_civil *local,
                                      apsched_disambiguate how, apsched_local_result *out);

/* Parses ISO 8601 / RFC 3339 and APScheduler's date strings: "2021-10-25",
 * "2021-10-25 07:48:05", "2021-10-25T07:48:05.25+02:00", "...Z". Text without
 * an offset is local time in tz (UTC if tz is NULL); a skipped local time
 * resolves to the first instant after the gap, a repeated one to the first
 * occurrence. */
APSCHED_API int apsched_time_parse(const char *text, const apsched_tz *tz, apsched_time_t *out,
                                   char *errbuf, size_t errlen);
/* Formats t as RFC 3339 in tz (UTC if NULL): "2026-03-29T03:00:00+02:00",
 * fractional seconds only when non-zero. Returns the length that the full
 * text needs (like snprintf), or a negative error code. */
APSCHED_API int apsched_time_format(apsched_time_t t, const apsched_tz *tz, char *buf, size_t len);

/* ---------------------------------------------------------------- triggers
 * A trigger decides when a job runs. Triggers are pure: they never read the
 * clock. The scheduler keeps its own copy of the trigger passed to add_job
 * and friends; the caller still owns and frees the one it created.
 */
typedef struct apsched_trigger apsched_trigger;

typedef struct apsched_date_options {
  apsched_time_t run_date; /* 0: the time the job is added; else within the years
                              0000..9999 (UTC) */
} apsched_date_options;

typedef struct apsched_interval_options {
  int64_t weeks, days, hours, minutes, seconds, microseconds; /* summed; must be > 0 */
  apsched_time_t start_date; /* 0: the time the job is added + the interval
                                (APSCHED_TIME_NONE is refused) */
  apsched_time_t end_date;   /* 0: none; the last fire time is <= end_date
                                (APSCHED_TIME_NONE is refused) */
  int64_t jitter;            /* microseconds; each run is delayed by a random [0, jitter] */
} apsched_interval_options;

/* Creates a date trigger: fires once at run_date. apsched_trigger_next with
 * prev APSCHED_TIME_NONE returns run_date even when it is before now (a job
 * added late still runs, subject to its misfire grace time). */
APSCHED_API int apsched_trigger_date(const apsched_date_options *opt, apsched_trigger **out);
/* Creates an interval trigger: fires at start_date + k * interval, exactly
 * (no drift; elapsed time, not wall-clock time). */
APSCHED_API int apsched_trigger_interval(const apsched_interval_options *opt,
                                         apsched_trigger **out, char *errbuf, size_t errlen);
/* APScheduler's CronTrigger fields. NULL fields get APScheduler's defaults:
 * fields coarser than the finest one given are "*", finer ones their minimum.
 * day_of_week: 0 = Monday ("mon-fri", "0-4"). Expressions: "*", "*" "/a", "a",
 * "a-b", "a-b/c", "a/c", "xth y", "last x", "last", "x,y,z", names. */
typedef struct apsched_cron_options {
  const char *year, *month, *day, *week, *day_of_week, *hour, *minute, *second;
  apsched_time_t start_date; /* 0: none */
  apsched_time_t end_date;   /* 0: none; not before start_date */
  const char *timezone;      /* NULL: "local" */
  int64_t jitter;            /* microseconds */
} apsched_cron_options;

/* Creates a cron trigger from fields; errors name the field, the text and
 * the allowed range ("hour: '0-24': 24 is above the maximum 23"). */
APSCHED_API int apsched_trigger_cron(const apsched_cron_options *opt, apsched_trigger **out,
                                     char *errbuf, size_t errlen);
/* Creates a cron trigger from a crontab line: 5 fields "m h dom mon dow", 6
 * with seconds first, or @yearly @monthly @weekly @daily @hourly. Crontab
 * numbering: 0 and 7 are Sunday; wrap-around ranges ("fri-mon") allowed. */
APSCHED_API int apsched_trigger_crontab(const char *expr, const char *timezone,
                                        apsched_trigger **out, char *errbuf, size_t errlen);
/* APScheduler 4's CalendarIntervalTrigger: every years/months/weeks/days
 * calendar steps, always at the wall-clock time hour:minute:second. */
typedef struct apsched_calendar_options {
  int years, months, weeks, days; /* >= 0; at least one > 0 */
  int hour, minute, second;       /* the wall-clock time of every run (0..23, 0..59, 0..59) */
  apsched_time_t start_date;      /* 0: the time the job is added; its local date is day 0 */
  apsched_time_t end_date;        /* 0: none; the last fire time is <= end_date */
  const char *timezone;           /* NULL: "local" */
  int64_t jitter;                 /* microseconds; each run is delayed by a random [0, jitter] */
} apsched_calendar_options;

/* Creates a calendar-interval trigger. Runs fall on start_date's local date,
 * then every years/months/weeks/days later, at hour:minute:second local time;
 * the first run is the first such instant at or after start_date. A month
 * step onto a day the month does not have (Jan 31 + 1 month) skips that
 * month, as APScheduler 4 does. DST as for a fixed-time cron job: a time in a
 * spring-forward gap runs at the end of the gap, a repeated one at its first
 * occurrence; no day is skipped or doubled. Errors name the parameter. */
APSCHED_API int apsched_trigger_calendar(const apsched_calendar_options *opt,
                                         apsched_trigger **out, char *errbuf, size_t errlen);

/* Combines triggers (each is copied; the caller still owns the originals).
 * and: fires only when every trigger fires at the same instant (the search
 * gives up after 10,000 rounds and reports "no next time"); or: fires
 * whenever any trigger fires (a time shared by several fires once). The
 * combination has jitter 0 (its canonical text may set one: "jitter=5");
 * the jitter of the triggers inside is ignored. n must be 1..64. */
APSCHED_API int apsched_trigger_and(const apsched_trigger *const *triggers, size_t n,
                                    apsched_trigger **out, char *errbuf, size_t errlen);
APSCHED_API int apsched_trigger_or(const apsched_trigger *const *triggers, size_t n,
                                   apsched_trigger **out, char *errbuf, size_t errlen);

/* Sets the random delay added to each run: [0, jitter] microseconds (any
 * trigger kind; for and/or the combination's own). */
APSCHED_API int apsched_trigger_set_jitter(apsched_trigger *t, int64_t jitter);
/* Parses a trigger's canonical text form, as written by apsched_trigger_describe
 * ("date[run_date='2026-01-01T00:00:00Z']", "interval[seconds=3, start_date='...']"). */
APSCHED_API int apsched_trigger_parse(const char *text, apsched_trigger **out, char *errbuf,
                                      size_t errlen);
/* Writes the canonical text form; returns the length the full text needs (like
 * snprintf), or a negative error code. */
APSCHED_API int apsched_trigger_describe(const apsched_trigger *t, char *buf, size_t len);
/* The first fire time strictly after prev, or, when prev is APSCHED_TIME_NONE,
 * the first at or after now. APSCHED_TIME_NONE when the trigger is finished
 * (or t is NULL, which also sets apsched_last_error()). Jitter is not applied
 * here (the scheduler applies it). */
APSCHED_API apsched_time_t apsched_trigger_next(const apsched_trigger *t, apsched_time_t prev,
                                                apsched_time_t now);
/* True when both triggers describe the same schedule. */
APSCHED_API bool apsched_trigger_equal(const apsched_trigger *a, const apsched_trigger *b);
/* The kind name: "date", "interval", "cron", "calendar", "and", "or", or a
 * custom trigger's kind. */
APSCHED_API const char *apsched_trigger_kind(const apsched_trigger *t);
/* A deep copy. */
APSCHED_API int apsched_trigger_clone(const apsched_trigger *t, apsched_trigger **out);
APSCHED_API void apsched_trigger_free(apsched_trigger *t);

/* ------------------------------------------------------------------- jobs */

typedef struct apsched_scheduler apsched_scheduler;
typedef struct apsched_jobstore apsched_jobstore;
typedef struct apsched_executor apsched_executor;

/* One execution of a job, passed to the job function. Valid only during the call. */
typedef struct apsched_run_ctx apsched_run_ctx;

/* A job function returns 0 on success; any other value is reported as an
 * error (EVENT_JOB_ERROR), with the message set by apsched_run_set_error. */
typedef int (*apsched_job_fn)(apsched_run_ctx *run);

APSCHED_API const char *apsched_run_job_id(const apsched_run_ctx *run);
APSCHED_API const char *apsched_run_job_name(const apsched_run_ctx *run);
/* The scheduled run time of this execution (after jitter). */
APSCHED_API apsched_time_t apsched_run_scheduled_time(const apsched_run_ctx *run);
/* The job's pointer argument (apsched_job_options.arg), or NULL. */
APSCHED_API void *apsched_run_arg(const apsched_run_ctx *run);
/* The job's byte argument and its length (NULL, 0 if none). */
APSCHED_API const void *apsched_run_arg_bytes(const apsched_run_ctx *run, size_t *len);
/* The aliases of the job store the job came from and the executor running it. */
APSCHED_API const char *apsched_run_jobstore(const apsched_run_ctx *run);
APSCHED_API const char *apsched_run_executor(const apsched_run_ctx *run);
/* True once the run exceeded its job's max_runtime, or a newer run of its
 * job asked it to stop (overlap policy CANCEL_OTHER): thread pools cannot
 * stop a thread, so a long job should check this and return. */
APSCHED_API bool apsched_run_cancelled(const apsched_run_ctx *run);
/* The scheduler running this job (to add, modify, remove jobs from inside it). */
APSCHED_API apsched_scheduler *apsched_run_scheduler(const apsched_run_ctx *run);
/* Which attempt at this scheduled time this is: 1, or 2 and more for a run
 * of an at-least-once job that a crashed scheduler left unfinished and that
 * is run again (with the job id and apsched_run_scheduled_time, an
 * idempotency key for the job's own effects). */
APSCHED_API unsigned apsched_run_attempt(const apsched_run_ctx *run);
/* Sets the error message reported if the job returns non-zero. */
APSCHED_API void apsched_run_set_error(apsched_run_ctx *run, const char *fmt, ...) APSCHED_PRINTF(2, 3);

/* Tri-state for boolean options where zero means "the default". */
typedef enum apsched_flag { APSCHED_DEFAULT = 0, APSCHED_YES = 1, APSCHED_NO = 2 } apsched_flag;

/* What a persistent store promises about a run when the scheduler dies
 * while the run is due or running (README "Delivery"). */
typedef enum apsched_delivery {
  APSCHED_DELIVERY_DEFAULT = 0, /* at most once */
  /* APScheduler's: the job's next run time is stored before the run starts;
   * a crash before the run ends loses that run. */
  APSCHED_AT_MOST_ONCE = 1,
  /* The store keeps a record of the run until it has ended; a run a crashed
   * scheduler left unfinished is run again when the store is next used
   * (apsched_run_attempt() 2, APSCHED_EVENT_JOB_RECOVERED). A store that
   * does not survive the process (memory) keeps the choice but cannot act
   * on it. */
  APSCHED_AT_LEAST_ONCE = 2
} apsched_delivery;

/* What happens to a run that is due while max_instances runs of its job are
 * still running (README "Schedule policies"). Zero is the default, SKIP. */
typedef enum apsched_overlap {
  APSCHED_OVERLAP_DEFAULT = 0,
  /* Drop it (MAX_INSTANCES event): APScheduler's behaviour. */
  APSCHED_OVERLAP_SKIP = 1,
  /* Keep the latest due run waiting (JOB_BUFFERED) and start it when a slot
   * frees; a newer one replaces it (the older is dropped: MAX_INSTANCES). */
  APSCHED_OVERLAP_BUFFER_ONE = 2,
  /* Queue every due run, in order, up to APSCHED_BUFFER_ALL_LIMIT waiting;
   * beyond that the new run is dropped (MAX_INSTANCES). */
  APSCHED_OVERLAP_BUFFER_ALL = 3,
  /* Ask the oldest running run to stop (apsched_run_cancelled() turns true;
   * its outcome is an ERROR "cancelled: ..."), keep the new run waiting as
   * BUFFER_ONE does, and start it when the slot frees. */
  APSCHED_OVERLAP_CANCEL_OTHER = 4,
  /* As CANCEL_OTHER, but the running run's worker process is terminated as
   * max_runtime does (SIGTERM, then SIGKILL). Only for executors that can
   * terminate a run (the process pool); refused at add time elsewhere. */
  APSCHED_OVERLAP_TERMINATE_OTHER = 5,
  /* No limit: max_instances is not enforced. */
  APSCHED_OVERLAP_ALLOW_ALL = 6
} apsched_overlap;

/* Most runs of one job that BUFFER_ALL keeps waiting (in the scheduler's
 * memory: about 100 bytes each). */
#define APSCHED_BUFFER_ALL_LIMIT 100
/* Most consecutive failures pause_after_failures may name. */
#define APSCHED_PAUSE_AFTER_LIMIT 65535
/* Most occurrences one apsched_backfill_job call runs. */
#define APSCHED_BACKFILL_LIMIT 1000
/* apsched_job_changes value removing a job's catch-up window or its
 * pause_after_failures. */
#define APSCHED_POLICY_NONE (-1)

/* misfire_grace_time value meaning "run however late". Other grace times and
 * max_runtime are kept with millisecond precision (rounded up) and may be at
 * most APSCHED_DURATION_MAX (about 49.7 days). */
#define APSCHED_GRACE_UNLIMITED INT64_MAX
#define APSCHED_DURATION_MAX (4294967294LL * APSCHED_MSEC)
/* apsched_job_changes.max_runtime value removing a job's limit. */
#define APSCHED_NO_MAX_RUNTIME (-1)
/* Largest max_instances accepted. */
#define APSCHED_MAX_INSTANCES_LIMIT 65535
/* Longest job id accepted, in bytes. */
#define APSCHED_ID_MAX 200

typedef struct apsched_job_options {
  const char *id;        /* NULL: a generated 32-character UUIDv7 hex id (time-ordered) */
  const char *name;      /* NULL: the registered function name, else the id */
  apsched_job_fn func;   /* the function, or NULL and func_name */
  const char *func_name; /* a name given to apsched_register_func */
  const apsched_trigger *trigger; /* copied; NULL: a date trigger at "now" */
  const char *executor;  /* alias; NULL: "default" */
  const char *jobstore;  /* alias; NULL: "default" */
  void *arg;             /* passed to the function (in-process executors only) */
  void (*arg_free)(void *arg); /* called once when the job is gone and no run uses arg */
  const void *arg_bytes; /* copied; available to every executor and store */
  size_t arg_len;
  int max_instances;     /* 0: the scheduler default (1) */
  int64_t misfire_grace_time; /* microseconds; 0: default (1 s); APSCHED_GRACE_UNLIMITED */
  int64_t max_runtime;   /* microseconds; 0: no limit. A run over it is reported as an
                            error ("timed out after ..."); process pools end it,
                            thread pools set apsched_run_cancelled() for it */
  apsched_flag coalesce; /* default: the scheduler default (yes) */
  apsched_time_t next_run_time; /* 0: from the trigger */
  bool paused;           /* add the job paused (no next run time) */
  bool replace_existing; /* replace a job with the same id instead of failing */
  apsched_delivery delivery; /* default: at most once */
  apsched_overlap overlap;   /* default: SKIP */
  /* Microseconds; 0: none. After downtime or a clock jump, occurrences
   * older than this are not run but reported as missed (misfire_grace_time
   * still applies to the rest, also when a run waits in an executor). */
  int64_t catchup_window;
  /* Pause the job after this many consecutive failed runs (JOB_PAUSED);
   * 0: never. apsched_resume_job resets the count. */
  int pause_after_failures;
  /* Consecutive failed runs already counted toward pause_after_failures,
   * 0..APSCHED_PAUSE_AFTER_LIMIT: for restoring a job as it was (apsched
   * jobs import); 0 normally. */
  int failures;
} apsched_job_options;

/* Changes for apsched_modify_job: NULL / zero fields stay unchanged. The
 * whole change is validated first; on error nothing changes. */
typedef struct apsched_job_changes {
  const char *name;
  apsched_job_fn func;
  const char *func_name;
  const apsched_trigger *trigger; /* copied; the next run time is not recomputed */
  const char *executor;
  bool set_arg;               /* replace arg/arg_free with the two below */
  void *arg;
  void (*arg_free)(void *arg);
  bool set_arg_bytes;         /* replace the byte argument with the two below */
  const void *arg_bytes;
  size_t arg_len;
  int max_instances;
  int64_t misfire_grace_time;
  int64_t max_runtime;        /* 0: unchanged; APSCHED_NO_MAX_RUNTIME: remove the limit */
  apsched_flag coalesce;
  apsched_time_t next_run_time; /* 0: unchanged */
  apsched_delivery delivery;  /* 0: unchanged */
  apsched_overlap overlap;    /* 0: unchanged */
  int64_t catchup_window;     /* 0: unchanged; APSCHED_POLICY_NONE: remove the window */
  int pause_after_failures;   /* 0: unchanged; APSCHED_POLICY_NONE: never pause */
} apsched_job_changes;

/* A snapshot of a job, owned by the caller (apsched_job_free / apsched_jobs_free). */
typedef struct apsched_job {
  char *id;
  char *name;
  char *func_name;     /* NULL if the function is not registered by name */
  char *trigger;       /* canonical trigger text */
  char *executor;
  char *jobstore;      /* the store it is in (or will be in, while pending) */
  int max_instances;
  int64_t misfire_grace_time;
  int64_t max_runtime;  /* 0: none */
  bool coalesce;
  apsched_delivery delivery; /* APSCHED_AT_MOST_ONCE or APSCHED_AT_LEAST_ONCE */
  apsched_overlap overlap;   /* never APSCHED_OVERLAP_DEFAULT (shown as SKIP) */
  int64_t catchup_window;    /* 0: none */
  int pause_after_failures;  /* 0: never */
  int failures;              /* consecutive failed runs so far (kept by its store) */
  char *policies;            /* canonical text of the non-default policies
                                ("overlap=buffer_one, pause_after_failures=3"), or NULL */
  bool pending;        /* added before start, not yet in its store */
  bool paused;         /* no next run time until resumed */
  apsched_time_t next_run_time; /* APSCHED_TIME_NONE: paused, or pending (computed at start) */
  char *broken;        /* NULL, or why its store could not decode it: the job is kept
                          as stored (paused, trigger = the stored text); only
                          apsched_remove_job works on it */
  void *arg_bytes;     /* a copy of the byte argument (NULL: none), e.g. to move the
                          job to another store; arg, the pointer argument, is not shown */
  size_t arg_len;
} apsched_job;

/* Registers fn under name for all schedulers of the process (needed to
 * restore jobs from persistent stores and to run them in process pools).
 * Re-registering the same pair is a no-op; a name taken by another function
 * is APSCHED_EEXIST. */
APSCHED_API int apsched_register_func(const char *name, apsched_job_fn fn);

/* Adds a job. If id_out is given, the job id is copied there (NUL-terminated;
 * 33 bytes hold any generated id). Errors: APSCHED_EINVAL (bad option),
 * APSCHED_EEXIST (id taken and !replace_existing), APSCHED_ENOENT (no such
 * store or executor when the scheduler is running). replace_existing is one
 * upsert in the store. Like every job call: on error nothing changed and
 * nothing was announced. */
APSCHED_API int apsched_add_job(apsched_scheduler *s, const apsched_job_options *opt,
                                char *id_out, size_t id_len);
/* Adds n jobs as one batch, all or nothing: a persistent store writes them
 * in one transaction. Every job of a batch goes to the same store. On error
 * nothing was added and *failed_index (if given) is the index of the job
 * that failed (n if none is to blame). Generated ids are not reported: give
 * ids when you need them. */
APSCHED_API int apsched_add_jobs(apsched_scheduler *s, const apsched_job_options *jobs, size_t n,
                                 size_t *failed_index);
/* Runs a job once now, without changing its schedule (APScheduler 4's
 * run_job): one run at the current time, whatever its misfire grace time,
 * subject to its overlap policy (a job at max_instances is skipped,
 * buffered, or cancels its running run, as for a scheduled run). The run is
 * this scheduler's: no store records it. APSCHED_ESTATE if the scheduler is
 * not running; APSCHED_EINVAL for a job stored in a store shared by several
 * schedulers (its runs are counted in the database) or one that cannot be
 * decoded. */
APSCHED_API int apsched_run_job_now(apsched_scheduler *s, const char *id, const char *jobstore);
/* Runs the job's occurrences in [from, to] (its trigger's times, without
 * jitter), oldest first, as one run that may wait, be skipped or cancel
 * others under the job's overlap policy, whatever their lateness; the
 * schedule is unchanged. At most APSCHED_BACKFILL_LIMIT occurrences
 * (APSCHED_ERANGE naming how many the range holds); none in the range is
 * APSCHED_ENOENT. Same refusals as apsched_run_job_now. */
APSCHED_API int apsched_backfill_job(apsched_scheduler *s, const char *id, const char *jobstore,
                                     apsched_time_t from, apsched_time_t to);
/* Removes a job; jobstore NULL searches every store. */
APSCHED_API int apsched_remove_job(apsched_scheduler *s, const char *id, const char *jobstore);
/* Removes every job of a store, or of all stores when jobstore is NULL. */
APSCHED_API int apsched_remove_all_jobs(apsched_scheduler *s, const char *jobstore);
/* Pauses a job: it keeps its trigger but has no next run time. */
APSCHED_API int apsched_pause_job(apsched_scheduler *s, const char *id, const char *jobstore);
/* Resumes a job: the next run time is computed from the trigger and now;
 * a job whose trigger is finished is removed. */
APSCHED_API int apsched_resume_job(apsched_scheduler *s, const char *id, const char *jobstore);
APSCHED_API int apsched_modify_job(apsched_scheduler *s, const char *id, const char *jobstore,
                                   const apsched_job_changes *changes);
/* Replaces the trigger and recomputes the next run time from now. */
APSCHED_API int apsched_reschedule_job(apsched_scheduler *s, const char *id,
                                       const char *jobstore, const apsched_trigger *trigger);
/* A snapshot of one job; free with apsched_job_free. */
APSCHED_API int apsched_get_job(apsched_scheduler *s, const char *id, const char *jobstore,
                                apsched_job **out);
/* Snapshots of all jobs (of one store, or all if NULL; pending ones too),
 * ordered by next run time, paused last. Free with apsched_jobs_free.
 * APSCHED_ENOENT for a store that does not exist (while stopped, a store
 * that may still come is fine: "default" or one a pending job names). */
APSCHED_API int apsched_get_jobs(apsched_scheduler *s, const char *jobstore, apsched_job **out,
                                 size_t *count);
APSCHED_API void apsched_job_free(apsched_job *job);
APSCHED_API void apsched_jobs_free(apsched_job *jobs, size_t count);
/* Prints a human-readable list of jobs per store, like APScheduler's print_jobs. */
APSCHED_API int apsched_print_jobs(apsched_scheduler *s, const char *jobstore, FILE *out);

/* ----------------------------------------------------------------- events */

enum {
  APSCHED_EVENT_SCHEDULER_STARTED = 1 << 0,
  APSCHED_EVENT_SCHEDULER_SHUTDOWN = 1 << 1,
  APSCHED_EVENT_SCHEDULER_PAUSED = 1 << 2,
  APSCHED_EVENT_SCHEDULER_RESUMED = 1 << 3,
  APSCHED_EVENT_EXECUTOR_ADDED = 1 << 4,
  APSCHED_EVENT_EXECUTOR_REMOVED = 1 << 5,
  APSCHED_EVENT_JOBSTORE_ADDED = 1 << 6,
  APSCHED_EVENT_JOBSTORE_REMOVED = 1 << 7,
  APSCHED_EVENT_ALL_JOBS_REMOVED = 1 << 8,
  APSCHED_EVENT_JOB_ADDED = 1 << 9,
  APSCHED_EVENT_JOB_REMOVED = 1 << 10,
  APSCHED_EVENT_JOB_MODIFIED = 1 << 11,
  APSCHED_EVENT_JOB_EXECUTED = 1 << 12,
  APSCHED_EVENT_JOB_ERROR = 1 << 13,
  APSCHED_EVENT_JOB_MISSED = 1 << 14,
  APSCHED_EVENT_JOB_SUBMITTED = 1 << 15,
  APSCHED_EVENT_JOB_MAX_INSTANCES = 1 << 16,
  /* All of APScheduler's events (131071, as EVENT_ALL). */
  APSCHED_EVENT_ALL = (1 << 17) - 1,
  /* libapsched only: the wall clock stepped (event.clock_step holds by how much). */
  APSCHED_EVENT_CLOCK_STEP = 1 << 17,
  /* libapsched only: a job store failed while the loop used it (event.alias,
   * event.retval the error code, event.error the store's message if it gave
   * one). Once per outage; the loop retries it with a backoff from 100 ms up
   * to apsched_config.store_retry_interval. */
  APSCHED_EVENT_JOBSTORE_FAILED = 1 << 18,
  /* libapsched only: a store that had failed works again (event.alias). */
  APSCHED_EVENT_JOBSTORE_RECOVERED = 1 << 19,
  /* libapsched only: a run of an at-least-once job that a crashed scheduler
   * left unfinished is run again (job_id, jobstore, scheduled_run_time,
   * attempt); its outcome follows as EXECUTED / ERROR as usual. */
  APSCHED_EVENT_JOB_RECOVERED = 1 << 20,
  /* libapsched only: a due run waits for a running run of its job to end
   * (overlap policy BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, TERMINATE_OTHER;
   * scheduled_run_times, run_time_count). SUBMITTED follows when it starts. */
  APSCHED_EVENT_JOB_BUFFERED = 1 << 21,
  /* libapsched only: the job was paused after pause_after_failures
   * consecutive failed runs (retval: that count; error: the last failure's
   * message). apsched_resume_job resumes it and resets the count. */
  APSCHED_EVENT_JOB_PAUSED = 1 << 22,
  APSCHED_EVENT_EVERYTHING = APSCHED_EVENT_ALL | APSCHED_EVENT_CLOCK_STEP |
                             APSCHED_EVENT_JOBSTORE_FAILED | APSCHED_EVENT_JOBSTORE_RECOVERED |
                             APSCHED_EVENT_JOB_RECOVERED | APSCHED_EVENT_JOB_BUFFERED |
                             APSCHED_EVENT_JOB_PAUSED
};

/* An event. All pointers are valid only during the listener call. */
typedef struct apsched_event {
  int code;                      /* one APSCHED_EVENT_* bit */
  const char *alias;             /* store or executor alias (store/executor events) */
  const char *job_id;            /* job events */
  const char *jobstore;          /* job events */
  apsched_time_t scheduled_run_time; /* EXECUTED / ERROR / MISSED: the run time */
  const apsched_time_t *scheduled_run_times; /* SUBMITTED / MAX_INSTANCES: the batch */
  size_t run_time_count;
  uint64_t missed_count;         /* MISSED: runs this event stands for (>= 1) */
  bool missed_count_exact;       /* MISSED: false when a long downtime was skipped
                                    and missed_count is a lower bound */
  int retval;                    /* EXECUTED / ERROR: the job's return value;
                                    JOBSTORE_FAILED: the store's error code */
  const char *error;             /* ERROR: the job's message (or NULL) */
  unsigned attempt;              /* EXECUTED / ERROR / MISSED / JOB_RECOVERED: the run's
                                    attempt (apsched_run_attempt); 0 for other events */
  int64_t clock_step;            /* CLOCK_STEP: wall minus monotonic drift, microseconds */
} apsched_event;

typedef void (*apsched_listener_fn)(const apsched_event *ev, void *user_data);

/* APScheduler's name of an event code ("EVENT_JOB_EXECUTED"; "EVENT_CLOCK_STEP"
 * for libapsched's own), or "EVENT_UNKNOWN". Static, never NULL. */
APSCHED_API const char *apsched_event_name(int code);

/* Adds a listener for the events in mask. A listener runs on the thread
 * that raised the event: the scheduler's loop (apsched_process's caller in
 * hosted mode) for SUBMITTED, MISSED and inline jobs' outcomes, an
 * executor's thread for its runs' outcomes, the caller's thread for job and
 * lifecycle calls. So listeners may be called from several threads at
 * once; they may call any function of the scheduler.
 * If id_out is given, it receives a handle for apsched_remove_listener. */
APSCHED_API int apsched_add_listener(apsched_scheduler *s, apsched_listener_fn fn, int mask,
                                     void *user_data, int *id_out);
/* Adds a host listener: in hosted mode (apsched_start_hosted) it is called
 * only inside apsched_process, on the thread calling it, so it may touch
 * what belongs to the host's event loop. Events raised elsewhere (a thread
 * or process pool's EXECUTED / ERROR, a job added by another thread, a
 * shutdown) are copied into a queue, the descriptor becomes readable, and
 * the next apsched_process delivers them, oldest first; events raised
 * inside apsched_process (SUBMITTED, inline jobs' outcomes) are delivered
 * at once. Once stopped, apsched_process still delivers what is queued;
 * what is left when the scheduler is freed, apsched_free delivers on its
 * caller's thread. Before the first apsched_start_hosted, and in the other
 * modes, it is called like any listener. Removed with apsched_remove_listener
 * (queued events are not delivered to it afterwards). */
APSCHED_API int apsched_add_host_listener(apsched_scheduler *s, apsched_listener_fn fn, int mask,
                                          void *user_data, int *id_out);
/* After this returns, the listener is not running on any other thread and
 * will not be called again: it waits for the listener's calls on other
 * threads, also when called from a job or listener. A listener may remove
 * itself (its calls on the calling thread end after this returns; the
 * scheduler frees it then). APSCHED_EDEADLK, with nothing changed, if a
 * thread running the listener is itself waiting in this function for a
 * listener call on the calling thread (two listeners removing each other). */
APSCHED_API int apsched_remove_listener(apsched_scheduler *s, int id);

/* -------------------------------------------------------------- scheduler */

typedef enum apsched_state {
  APSCHED_STATE_STOPPED = 0,
  APSCHED_STATE_RUNNING = 1,
  APSCHED_STATE_PAUSED = 2
} apsched_state;

typedef enum apsched_log_level {
  APSCHED_LOG_DEBUG = 10,
  APSCHED_LOG_INFO = 20,
  APSCHED_LOG_WARNING = 30,
  APSCHED_LOG_ERROR = 40
} apsched_log_level;

typedef void (*apsched_log_fn)(apsched_log_level level, const char *message, void *user_data);

/* A clock: wall time (UTC) and a monotonic time, both in microseconds.
 * Tests inject fake clocks; if monotonic is NULL, clock steps go undetected. */
typedef struct apsched_clock {
  apsched_time_t (*wall)(void *user_data);
  int64_t (*monotonic)(void *user_data);
  void *user_data;
} apsched_clock;

/* Optional allocator for the scheduler's own allocations (the scheduler, runs,
 * event and log buffers, listeners). Job records, triggers, stores, executors
 * and job snapshots (freed by other code) use malloc. */
typedef struct apsched_allocator {
  void *(*malloc)(size_t size, void *user_data);
  void *(*realloc)(void *ptr, size_t size, void *user_data);
  void (*free)(void *ptr, void *user_data);
  void *user_data;
} apsched_allocator;

typedef struct apsched_config {
  /* Job defaults, as in APScheduler's job_defaults (zero: built-in default). */
  int max_instances;              /* 1 */
  int64_t misfire_grace_time;     /* 1 s */
  apsched_flag coalesce;          /* yes */
  const char *timezone;           /* NULL: "local" */
  const apsched_clock *clock;     /* NULL: CLOCK_REALTIME + CLOCK_MONOTONIC */
  apsched_log_fn log;             /* NULL: no logging */
  void *log_user_data;
  apsched_log_level log_level;    /* 0: WARNING */
  const apsched_allocator *allocator; /* NULL: malloc */
  int64_t max_wait;               /* cap on one sleep, microseconds; 0: 1 s */
  int64_t store_retry_interval;   /* longest wait before retrying a failing job
                                     store, microseconds; 0: 10 s (APScheduler's
                                     jobstore_retry_interval) */
} apsched_config;

/* Creates a stopped scheduler. cfg may be NULL for all defaults; it is copied. */
APSCHED_API int apsched_create(const apsched_config *cfg, apsched_scheduler **out);
/* Shuts down (without waiting) if needed and frees everything. Must not be
 * called from a job or listener of s. */
APSCHED_API void apsched_free(apsched_scheduler *s);

/* Starts the scheduler loop in a background thread. A scheduler without a
 * "default" store or executor gets a memory store and a 10-worker thread pool.
 * paused: start in the PAUSED state. APSCHED_ESTATE if not stopped (or a start
 * or shutdown is in progress on another thread); APSCHED_ENOENT if a pending
 * job names a store or executor that does not exist. A failed start changes
 * nothing (defaults it added are removed, executors it started stopped). */
APSCHED_API int apsched_start(apsched_scheduler *s, bool paused);
/* Runs the loop in the calling thread until apsched_shutdown is called
 * (from another thread, a job or a listener). */
APSCHED_API int apsched_run(apsched_scheduler *s, bool paused);
/* Starts in host-loop mode: no loop thread. The application polls
 * apsched_fd() and calls apsched_process() when it is readable or its timeout
 * has elapsed. */
APSCHED_API int apsched_start_hosted(apsched_scheduler *s, bool paused);
/* A descriptor that becomes readable when work is due (or within max_wait,
 * so clock steps are noticed), when the next wake time changed, and when the
 * scheduler is shut down: polling it alone is enough; apsched_process's
 * wait_us is the same deadline for loops that prefer a timeout. -1 unless
 * started hosted; it stays open until apsched_free. */
APSCHED_API int apsched_fd(apsched_scheduler *s);
/* Hosted mode: delivers the events queued for host listeners, runs due jobs
 * and returns in *wait_us how long until the next call is needed (-1:
 * nothing scheduled, or the scheduler stopped during the call; wait for the
 * descriptor). Once stopped: APSCHED_OK (*wait_us -1) while it delivered
 * queued events, else APSCHED_ESTATE. */
APSCHED_API int apsched_process(apsched_scheduler *s, int64_t *wait_us);
/* Stops the scheduler. wait: also wait for running jobs to finish. From a job
 * or listener of s only wait=false is possible (else APSCHED_EDEADLK). */
APSCHED_API int apsched_shutdown(apsched_scheduler *s, bool wait);
/* Stops processing jobs until apsched_resume (running jobs continue). */
APSCHED_API int apsched_pause(apsched_scheduler *s);
APSCHED_API int apsched_resume(apsched_scheduler *s);
/* Makes the loop re-examine its stores now. */
APSCHED_API int apsched_wakeup(apsched_scheduler *s);
APSCHED_API apsched_state apsched_get_state(apsched_scheduler *s);
/* The scheduler's zone (a borrowed reference, valid until apsched_free). */
APSCHED_API const apsched_tz *apsched_timezone(apsched_scheduler *s);

/* ------------------------------------------------- stores and executors */

typedef struct apsched_thread_pool_options {
  int max_workers; /* 0: 10 */
} apsched_thread_pool_options;

/* An in-memory job store (the default). */
APSCHED_API int apsched_memory_store_create(apsched_jobstore **out);
/* Runs jobs in the scheduler's own thread (like APScheduler's DebugExecutor). */
APSCHED_API int apsched_inline_executor_create(apsched_executor **out);
/* Runs jobs on a pool of threads; never blocks the scheduler loop. */
APSCHED_API int apsched_thread_pool_create(const apsched_thread_pool_options *opt,
                                           apsched_executor **out);
/* Process pool: runs jobs in worker processes forked from a single-threaded
 * fork server, so a job that crashes, aborts, exits or hangs cannot take the
 * scheduler with it (Linux). */
typedef struct apsched_process_pool_options {
  int max_workers;         /* worker processes at most; 0: 5 (1..1024) */
  int max_tasks_per_child; /* a worker exits after this many runs and is replaced; 0: never */
  int64_t kill_grace;      /* microseconds between SIGTERM and SIGKILL when a job is
                              terminated (max_runtime, shutdown without wait); 0: 2 s */
  bool allow_threads;      /* fork the server even if the process already has other
                              threads (unsafe if one of them holds a lock a job needs) */
} apsched_process_pool_options;

/* Creates a process pool and forks its fork server now: call it before the
 * application starts any thread (including apsched_start), since the server
 * is a copy of the process at this moment. If the process already has other
 * threads, fails with APSCHED_ESTATE and a message in errbuf (also in
 * apsched_last_error()), unless
 * opt->allow_threads. Jobs run in it need a byte argument or none (a job
 * with only a void * argument gets an ERROR event); their function is called
 * by pointer in the worker, so it must be in the program or a library loaded
 * before this call. opt may be NULL for all defaults. */
APSCHED_API int apsched_process_pool_create(const apsched_process_pool_options *opt,
                                            apsched_executor **out, char *errbuf,
                                            size_t errlen);

/* Frees a store or executor that was never added to a scheduler. */
APSCHED_API void apsched_jobstore_free(apsched_jobstore *st);
APSCHED_API void apsched_executor_free(apsched_executor *ex);

/* Adds a store under alias; the scheduler owns it from then on (also on
 * error). Emits JOBSTORE_ADDED. APSCHED_EEXIST if the alias is taken. */
APSCHED_API int apsched_add_jobstore(apsched_scheduler *s, apsched_jobstore *st, const char *alias);
/* Removes and frees a store and its jobs (JOBSTORE_REMOVED). */
APSCHED_API int apsched_remove_jobstore(apsched_scheduler *s, const char *alias);
/* Adds an executor under alias; the scheduler owns it from then on (also on error). */
APSCHED_API int apsched_add_executor(apsched_scheduler *s, apsched_executor *ex, const char *alias);
/* Shuts an executor down (waiting for its jobs unless called from one) and frees it. */
APSCHED_API int apsched_remove_executor(apsched_scheduler *s, const char *alias);

#ifdef __cplusplus
}
#endif
#endif /* APSCHED_H */
