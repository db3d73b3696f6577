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

/* The database's real name (symbolic links and ".." resolved), so that two
 * names of one file lock the same sidecar; malloc'd, NULL when short of
 * memory. A file that does not exist yet is named by its real directory. */
static char *real_name(const char *path) {
  char *real = realpath(path, NULL);
  if (real) return real;
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, (size_t)(slash - path + (slash == path))) : strdup(".");
  char *real_dir = dir ? realpath(dir, NULL) : NULL;
  free(dir);
  if (!real_dir) return strdup(path); /* opening it will say what is wrong */
  const char *base = slash ? slash + 1 : path;
  size_t n = strlen(real_dir) + strlen(base) + 2;
  char *joined = malloc(n);
  if (joined) snprintf(joined, n, "%s/%s", strcmp(real_dir, "/") == 0 ? "" : real_dir, base);
  free(real_dir);
  return joined;
}

int apsched__sqlite_lock(const char *path) {
  char *real = real_name(path);
  size_t len = real ? strlen(real) : 0;
  char *lock_path = real ? malloc(len + sizeof "-lock") : NULL;
  if (!lock_path) {
    free(real);
    return apsched__pstore_error(APSCHED_ENOMEM, "'%s': out of memory", path);
  }
  memcpy(lock_path, real, len);
  memcpy(lock_path + len, "-lock", sizeof "-lock");
  free(real);
  int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  /* flock needs no write access: a lock file left by another user still
   * locks (only the pid is not written then). */
  if (fd < 0 && errno == EACCES) fd = open(lock_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int rc = apsched__pstore_error(APSCHED_EBACKEND, "'%s': cannot open its lock file '%s': %s",
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
        rc = apsched__pstore_error(APSCHED_ESTATE, "'%s' is used by another scheduler", path);
      else
        rc = apsched__pstore_error(APSCHED_ESTATE, "'%s' is used by another scheduler (pid %ld%s)",
                                  path, pid, pid == (long)getpid() ? ", this process" : "");
    } else {
      rc = apsched__pstore_error(APSCHED_EBACKEND, "'%s': cannot lock '%s-lock': %s", path, path,
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
