/* One scheduler per database file. SQLite's own locks only serialize
 * transactions; two schedulers on one file would both run every job. The
 * store therefore holds an exclusive flock on a sidecar file "<path>-lock"
 * for its whole life, with its pid in it so the refused opener can say who
 * holds the file.
 *
 * Why a sidecar and not the database file: SQLite uses POSIX (fcntl) locks
 * on the database, and closing any descriptor of that file in the process
 * drops all of them. So this file never opens the database itself. flock
 * locks belong to the open file description, which also makes a second
 * store on the same file in the same process fail, as it must. */
#include "sqlite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* The pid the holder wrote, or 0 if the file does not hold one (yet). */
static long holder_pid(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char *end;
  long pid = strtol(buf, &end, 10);
  return end != buf && pid > 0 ? pid : 0;
}

int apsched__sqlite_lock(const char *path) {
  size_t len = strlen(path);
  char *lock_path = malloc(len + sizeof "-lock");
  if (!lock_path) return apsched__sqlite_error(APSCHED_ENOMEM, "'%s': out of memory", path);
  memcpy(lock_path, path, len);
  memcpy(lock_path + len, "-lock", sizeof "-lock");
  int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    int rc = apsched__sqlite_error(APSCHED_EBACKEND, "'%s': cannot open its lock file '%s': %s",
                                  path, lock_path, strerror(errno));
    free(lock_path);
    return rc;
  }
  free(lock_path);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    int rc;
    if (err == EWOULDBLOCK) {
      long pid = holder_pid(fd);
      if (pid == 0)
        rc = apsched__sqlite_error(APSCHED_ESTATE, "'%s' is used by another scheduler", path);
      else
        rc = apsched__sqlite_error(APSCHED_ESTATE, "'%s' is used by another scheduler (pid %ld%s)",
                                  path, pid, pid == (long)getpid() ? ", this process" : "");
    } else {
      rc = apsched__sqlite_error(APSCHED_EBACKEND, "'%s': cannot lock '%s-lock': %s", path, path,
                                strerror(err));
    }
    close(fd);
    return rc;
  }
  /* The pid is only informative: a failure to write it changes nothing. */
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n) {
    /* nothing to do: the lock is what matters */
  }
  return fd;
}

void apsched__sqlite_unlock(int fd) {
  if (fd < 0) return;
  /* Closing the only descriptor of this open file description drops the
   * flock. The file stays: removing it could let two openers lock two
   * different files under one name. */
  close(fd);
}
