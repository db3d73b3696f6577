/* A private PostgreSQL 15 server for one test program (header-only).
 *
 *   if (pg_server_start() != 0) return pg_server_unavailable();
 *   ... connect with pg_server_conninfo() (key=value) or pg_server_url() ...
 *
 * pg_server_start makes a temporary directory, runs Debian's initdb in it
 * (DIR/data, superuser "apsched", trust authentication, UTF8) and starts
 * `postgres` listening only on a unix socket in DIR (-c listen_addresses=''
 * -k DIR: the port number only names the socket file, so any number works
 * and nothing is reachable from outside). It waits until the server accepts
 * connections (PQping), and registers an atexit handler that stops it (fast
 * shutdown, SIGINT, waiting for it to exit) and removes the directory, so a
 * failed assertion cleans up too; if this process dies without exiting, the
 * server gets SIGQUIT (PR_SET_PDEATHSIG).
 *
 * initdb and postgres refuse to run as root, and CI runs as root: then they
 * run as the `postgres` system user (created by Debian's postgresql
 * package), dropped to with setgid/setuid in the forked child, and the
 * directory is chown'ed to it.
 *
 * The server runs with fsync=off and synchronous_commit=off: the tests that
 * use it test behaviour, not durability, and run several times faster.
 * pg_server_durable(preload), called before the first start, keeps
 * PostgreSQL's defaults instead (fsync, synchronous_commit and
 * full_page_writes on, 128 MB of shared buffers) and preloads the given
 * libraries ("pg_stat_statements"): the benchmarks measure that server.
 *
 * pg_server_stop / pg_server_start again: the same data, restarted (for
 * outage tests). When the server cannot start, pg_server_unavailable()
 * prints why and returns 1 under CI=true (a CI run never skips), else 77
 * (ctest's SKIP_RETURN_CODE for these tests).
 *
 * Needs _GNU_SOURCE (nftw, setgroups) defined before the first system
 * header; link with libpq.
 */
#ifndef APSCHED_TEST_PG_SERVER_H
#define APSCHED_TEST_PG_SERVER_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG_SERVER_BIN "/usr/lib/postgresql/15/bin"
#define PG_SERVER_PORT 5432

static struct {
  char dir[128];       /* "" until made */
  char conninfo[256];  /* host=DIR port=... user=apsched dbname=postgres */
  char url[320];       /* postgresql://apsched@/postgres?host=DIR&port=... */
  char why[512];       /* why it could not start */
  pid_t pid;           /* the postmaster; 0 when stopped */
  bool initialized, drop, cleanup_registered;
  bool durable;        /* pg_server_durable: PostgreSQL's durability defaults */
  char preload[64];    /* shared_preload_libraries; "" none */
  uid_t uid;
  gid_t gid;
} pg_srv;

static inline int pg_server_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Runs argv as the server's user, output appended to DIR/log. server: the
 * postmaster (SIGQUIT when we die). Returns the child's pid, or -1. */
static inline pid_t pg_server_spawn(char *const argv[], bool server) {
  char log[192];
  snprintf(log, sizeof log, "%s/log", pg_srv.dir);
  pid_t pid = fork();
  if (pid != 0) return pid;
  /* The child: only async-signal-safe calls until exec. */
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  int null = open("/dev/null", O_RDONLY);
  if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(126);
  if (pg_srv.drop && (setgroups(0, NULL) != 0 || setgid(pg_srv.gid) != 0 || setuid(pg_srv.uid) != 0))
    _exit(125);
  if (chdir(pg_srv.dir) != 0) _exit(124);
  if (server) prctl(PR_SET_PDEATHSIG, SIGQUIT); /* after setuid, which clears it */
  execv(argv[0], argv);
  _exit(127);
}

/* The last lines of DIR/log, for messages. */
static inline void pg_server_log_tail(char *buf, size_t len) {
  char path[192];
  snprintf(path, sizeof path, "%s/log", pg_srv.dir);
  FILE *f = fopen(path, "r");
  buf[0] = '\0';
  if (!f) return;
  fseek(f, 0, SEEK_END);
  long size = ftell(f), from = size > (long)len - 1 ? size - (long)len + 1 : 0;
  fseek(f, from, SEEK_SET);
  size_t n = fread(buf, 1, len - 1, f);
  buf[n] = '\0';
  fclose(f);
}

static inline void pg_server_stop(void) {
  if (pg_srv.pid <= 0) return;
  kill(pg_srv.pid, SIGINT); /* fast shutdown: disconnects clients, then exits */
  int status;
  while (waitpid(pg_srv.pid, &status, 0) < 0 && errno == EINTR) {
  }
  pg_srv.pid = 0;
}

static inline void pg_server_cleanup(void) {
  pg_server_stop();
  if (pg_srv.dir[0]) nftw(pg_srv.dir, pg_server_rm, 8, FTW_DEPTH | FTW_PHYS);
  pg_srv.dir[0] = '\0';
}

static inline int pg_server_fail(const char *what) {
  char tail[300];
  pg_server_log_tail(tail, sizeof tail);
  snprintf(pg_srv.why, sizeof pg_srv.why, "%s%s%s", what, tail[0] ? "; its log ends:\n" : "", tail);
  return -1;
}

/* Makes the directory and the cluster (once). */
static inline int pg_server_init(void) {
  snprintf(pg_srv.dir, sizeof pg_srv.dir, "/tmp/apsched-pg-XXXXXX");
  if (!mkdtemp(pg_srv.dir)) {
    pg_srv.dir[0] = '\0';
    snprintf(pg_srv.why, sizeof pg_srv.why, "mkdtemp: %s", strerror(errno));
    return -1;
  }
  if (!pg_srv.cleanup_registered) atexit(pg_server_cleanup);
  pg_srv.cleanup_registered = true;
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam("postgres");
    if (!pw) {
      snprintf(pg_srv.why, sizeof pg_srv.why,
               "running as root, and there is no 'postgres' user to run the server as "
               "(Debian's postgresql package creates it)");
      return -1;
    }
    pg_srv.drop = true;
    pg_srv.uid = pw->pw_uid;
    pg_srv.gid = pw->pw_gid;
    if (chown(pg_srv.dir, pg_srv.uid, pg_srv.gid) != 0) {
      snprintf(pg_srv.why, sizeof pg_srv.why, "chown %s: %s", pg_srv.dir, strerror(errno));
      return -1;
    }
  }
  char data[160];
  snprintf(data, sizeof data, "%s/data", pg_srv.dir);
  char *const argv[] = {PG_SERVER_BIN "/initdb", "-D", data, "-U", "apsched", "-A", "trust",
                        "-E", "UTF8", "--no-locale", "--no-sync", NULL};
  pid_t pid = pg_server_spawn(argv, false);
  int status = 0;
  if (pid < 0) return pg_server_fail("fork failed");
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return pg_server_fail(PG_SERVER_BIN "/initdb failed");
  snprintf(pg_srv.conninfo, sizeof pg_srv.conninfo, "host=%s port=%d user=apsched dbname=postgres",
           pg_srv.dir, PG_SERVER_PORT);
  snprintf(pg_srv.url, sizeof pg_srv.url, "postgresql://apsched@/postgres?host=%s&port=%d",
           pg_srv.dir, PG_SERVER_PORT);
  pg_srv.initialized = true;
  return 0;
}

/* Before the first pg_server_start: PostgreSQL's durability defaults
 * (fsync on) instead of the tests' fast settings, preload ("" none) as
 * shared_preload_libraries. */
static inline void pg_server_durable(const char *preload) {
  pg_srv.durable = true;
  snprintf(pg_srv.preload, sizeof pg_srv.preload, "%s", preload ? preload : "");
}

/* Starts the server (making it the first time); 0 once it accepts
 * connections, -1 with pg_srv.why set. */
static inline int pg_server_start(void) {
  if (pg_srv.pid > 0) return 0;
  if (!pg_srv.initialized && pg_server_init() != 0) return -1;
  char data[160], port[16];
  snprintf(data, sizeof data, "%s/data", pg_srv.dir);
  snprintf(port, sizeof port, "%d", PG_SERVER_PORT);
  char preload[96];
  snprintf(preload, sizeof preload, "shared_preload_libraries=%s", pg_srv.preload);
  char *const fast[] = {PG_SERVER_BIN "/postgres", "-D", data, "-k", pg_srv.dir, "-p", port,
                        "-c", "listen_addresses=", "-c", "fsync=off",
                        "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                        "-c", "max_connections=60", "-c", "shared_buffers=16MB", NULL};
  char *const durable[] = {PG_SERVER_BIN "/postgres", "-D", data, "-k", pg_srv.dir, "-p", port,
                           "-c", "listen_addresses=", "-c", "max_connections=60",
                           "-c", "shared_buffers=128MB", "-c", preload, NULL};
  pg_srv.pid = pg_server_spawn(pg_srv.durable ? durable : fast, true);
  if (pg_srv.pid < 0) {
    pg_srv.pid = 0;
    return pg_server_fail("fork failed");
  }
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    if (PQping(pg_srv.conninfo) == PQPING_OK) return 0;
    int status;
    if (waitpid(pg_srv.pid, &status, WNOHANG) == pg_srv.pid) {
      pg_srv.pid = 0;
      return pg_server_fail(PG_SERVER_BIN "/postgres exited");
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > 60) {
      pg_server_stop();
      return pg_server_fail("the server did not accept connections within 60 s");
    }
    poll(NULL, 0, 10); /* the interval between two pings */
  }
}

static inline const char *pg_server_conninfo(void) { return pg_srv.conninfo; }
static inline const char *pg_server_url(void) { return pg_srv.url; }
static inline pid_t pg_server_pid(void) { return pg_srv.pid; }

/* What a test program returns when the server could not start. */
static inline int pg_server_unavailable(void) {
  const char *ci = getenv("CI");
  bool in_ci = ci && strcmp(ci, "true") == 0;
  fprintf(stderr, "%s: cannot start a PostgreSQL server: %s\n", in_ci ? "FAILED" : "SKIPPED",
          pg_srv.why);
  return in_ci ? 1 : 77;
}

/* A plain connection to the server (as psql would open), failing the test
 * if it cannot connect. */
static inline PGconn *pg_server_connect(void) {
  PGconn *c = PQconnectdb(pg_srv.conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connecting to the test server: %s", PQerrorMessage(c));
    abort();
  }
  return c;
}

#endif
