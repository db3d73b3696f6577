/* The process pool's wire formats.
 *
 * Two channels, both AF_UNIX socket pairs created close-on-exec:
 *  - control (SOCK_SEQPACKET) between the scheduler's process and the fork
 *    server: fixed-size apsched__ctl_msg records; a SPAWNED record carries
 *    the parent's end of the new worker's socket (SCM_RIGHTS).
 *  - task (SOCK_STREAM) between the scheduler's process and one worker:
 *    frames of a 4-byte length (of what follows), a 1-byte type and a body.
 *    Every frame length is checked against a cap before anything is
 *    allocated, so a confused or hostile peer cannot make the other side
 *    allocate without bound.
 * Both ends are the same binary on the same machine: integers travel in
 * native byte order. */
#ifndef APSCHED_PROCESS_WIRE_H
#define APSCHED_PROCESS_WIRE_H

#include "../internal.h"

#include <sys/types.h>

/* ---- control records */

enum {
  /* scheduler process -> server */
  APSCHED__CTL_SPAWN = 1,     /* fork a worker for slot */
  APSCHED__CTL_TERMINATE = 2, /* signal worker (slot, pid) with value (SIGTERM escalates) */
  APSCHED__CTL_QUIT = 3,      /* terminate every worker, reap them, exit */
  /* server -> scheduler process */
  APSCHED__CTL_SPAWNED = 10,      /* worker pid started for slot; carries its socket */
  APSCHED__CTL_SPAWN_FAILED = 11, /* value: errno of the failed call */
  APSCHED__CTL_EXITED = 12        /* worker pid of slot was reaped; value: wait status */
};

typedef struct apsched__ctl_msg {
  int32_t type;
  int32_t slot;
  int32_t pid;
  int32_t value;
} apsched__ctl_msg;

/* ---- task frames */

enum {
  APSCHED__FRAME_TASK = 1,  /* scheduler process -> worker */
  APSCHED__FRAME_RESULT = 2 /* worker -> scheduler process */
};

/* Frame header: uint32 length of type + body, uint8 type. */
#define APSCHED__FRAME_HEADER 5
/* Largest byte argument a process pool job may have. */
#define APSCHED__WIRE_MAX_ARG (16u * 1024 * 1024)
/* Job names longer than this are cut (the id is at most APSCHED_ID_MAX). */
#define APSCHED__WIRE_MAX_NAME 4096u
/* Largest task frame (type + body). */
#define APSCHED__WIRE_MAX_TASK (APSCHED__WIRE_MAX_ARG + APSCHED__WIRE_MAX_NAME + 4096u)
/* Largest result frame (type + body); longer job messages are cut. */
#define APSCHED__WIRE_MAX_RESULT (64u * 1024)

/* A growable byte buffer; [off, len) is the unconsumed part. */
typedef struct apsched__wire_buf {
  unsigned char *data;
  size_t off, len, cap;
} apsched__wire_buf;

APSCHED_INTERNAL void apsched__wire_buf_free(apsched__wire_buf *b);
/* Makes room for n more bytes after len (compacting first). */
APSCHED_INTERNAL int apsched__wire_buf_reserve(apsched__wire_buf *b, size_t n);

/* A task: what a worker needs to run one scheduled time of a job. Decoded,
 * the pointers point into the frame body. */
typedef struct apsched__wire_task {
  uint64_t fn;
  apsched_time_t t;
  uint32_t attempt;     /* apsched_run_attempt */
  const char *id;       /* NUL-terminated */
  const char *name;     /* NUL-terminated */
  const char *jobstore; /* apsched_run_jobstore in the worker; NUL-terminated */
  const char *executor; /* apsched_run_executor in the worker; NUL-terminated */
  const void *arg;
  size_t arg_len;
} apsched__wire_task;

/* Appends a task frame. name is cut to APSCHED__WIRE_MAX_NAME bytes; an id
 * or alias over 1024 bytes or an argument over APSCHED__WIRE_MAX_ARG is
 * APSCHED_EINVAL (nothing appended). */
APSCHED_INTERNAL int apsched__wire_put_task(apsched__wire_buf *b, const apsched__wire_task *task);
/* Appends a result frame; error (may be NULL) is cut to fit the cap. */
APSCHED_INTERNAL int apsched__wire_put_result(apsched__wire_buf *b, int32_t retval,
                                              const char *error);

/* Decodes a task body (after the type byte); false if malformed. */
APSCHED_INTERNAL bool apsched__wire_get_task(const unsigned char *body, size_t len,
                                             apsched__wire_task *out);
/* Decodes a result body; *error points into body (NUL-terminated) or is NULL.
 * The body is modified in place (a terminator is written). */
APSCHED_INTERNAL bool apsched__wire_get_result(unsigned char *body, size_t len, int32_t *retval,
                                               const char **error);

/* Looks for one complete frame at the start of b's unconsumed bytes.
 * Returns 1 and sets *type, *body, *body_len (consuming the frame), 0 if more
 * bytes are needed, or -1 if the announced length is 0 or above max (in
 * *announced). */
APSCHED_INTERNAL int apsched__wire_take_frame(apsched__wire_buf *b, size_t max, int *type,
                                              unsigned char **body, size_t *body_len,
                                              size_t *announced);

/* ---- descriptors */

/* Sends b's unconsumed bytes on a non-blocking socket as far as possible.
 * Returns 0 (all sent or the socket is full) or -1 (peer gone / error). */
APSCHED_INTERNAL int apsched__wire_flush(int fd, apsched__wire_buf *b);
/* Reads what a non-blocking socket has into b. Returns 1 on data or
 * nothing-yet, 0 on end of file, -1 on error. At most max_pending unconsumed
 * bytes are buffered (the caller consumes frames between calls). */
APSCHED_INTERNAL int apsched__wire_fill(int fd, apsched__wire_buf *b, size_t max_pending);

/* Blocking exact read / write (worker side); retries EINTR. read returns 1,
 * 0 on end of file before any byte, -1 on error or a short stream. */
APSCHED_INTERNAL int apsched__read_full(int fd, void *buf, size_t n);
APSCHED_INTERNAL int apsched__write_full(int fd, const void *buf, size_t n);

/* Sends one control record, optionally with a descriptor (-1: none).
 * flags: extra send flags (MSG_DONTWAIT). Returns 0, or -1 with errno. */
APSCHED_INTERNAL int apsched__ctl_send(int fd, const apsched__ctl_msg *m, int pass_fd, int flags);
/* Receives one control record; a passed descriptor lands in *got_fd (close-
 * on-exec) or *got_fd = -1. Returns 1, 0 on end of file, -1 with errno
 * (EAGAIN when non-blocking and empty; EPROTO for a malformed record). */
APSCHED_INTERNAL int apsched__ctl_recv(int fd, apsched__ctl_msg *m, int *got_fd, int flags);

/* Describes a wait status: who "killed by signal 11 (SIGSEGV)", who
 * "exited with status 3". */
APSCHED_INTERNAL void apsched__describe_status(const char *who, int status, char *buf,
                                               size_t len);

#endif
