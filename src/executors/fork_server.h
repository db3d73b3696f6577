/* The process pool's fork server.
 *
 * The server is forked once, when a process pool is created, from a
 * single-threaded process; it never starts a thread. It forks the workers on
 * request (so no worker is ever forked from the multi-threaded scheduler
 * process), reaps each of them by pid, and reports how each one ended. It
 * installs no signal handler: it learns that a worker ended from a pidfd
 * (or, on kernels without pidfds, a short WNOHANG poll of its own pids).
 *
 * Lifetime: the server exits after a QUIT record (once its workers are gone),
 * when its control socket reaches end of file, or when its parent process
 * changes (the scheduler's process died); in the last two cases it first
 * terminates its workers. A worker dies with its server (PR_SET_PDEATHSIG)
 * and exits at end of file on its task socket.
 *
 * Worker processes: each is its own process group leader (so a timeout
 * signal reaches whatever the job started), has only its task socket beyond
 * descriptors 0-2, default signal dispositions and an empty signal mask, and
 * runs one task at a time: the job function is called by pointer (valid
 * because the worker is a copy of the application image as it was when the
 * server was forked) with a worker-side run context. */
#ifndef APSCHED_FORK_SERVER_H
#define APSCHED_FORK_SERVER_H

#include "process_wire.h"

#include <sys/types.h>

typedef struct apsched__fork_server {
  pid_t pid;  /* 0: none */
  int ctl;    /* the scheduler process's end of the control socket, or -1 */
  int pidfd;  /* a pidfd of the server, or -1 (kernel without pidfds) */
} apsched__fork_server;

/* Threads of the calling process other than the caller that are still
 * alive (a thread that was just joined may linger in /proc for a moment:
 * this waits up to ~100 ms for such to vanish). Under ThreadSanitizer its
 * runtime's own background thread is not counted. -1 if /proc cannot be
 * read. */
APSCHED_INTERNAL int apsched__other_threads(void);

/* Forks the server. Unless allow_threads, refuses (APSCHED_ESTATE and a
 * message) when the process has other threads. kill_grace: microseconds
 * between SIGTERM and SIGKILL when a worker is terminated. */
APSCHED_INTERNAL int apsched__fork_server_start(apsched__fork_server *fs, int64_t kill_grace,
                                                bool allow_threads, char *errbuf, size_t errlen);

/* Waits for the server to exit and reaps it (by pidfd or pid, never
 * waitpid(-1)); closes the pidfd. Returns true with its wait status, or
 * false when something else in the process already reaped it. Does not
 * close ctl. */
APSCHED_INTERNAL bool apsched__fork_server_reap(apsched__fork_server *fs, int *status);

#endif
