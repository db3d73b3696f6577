/* A private redis-server for one test program (header-only).
 *
 *   if (redis_server_start("none") != 0) return redis_server_unavailable();
 *   ... connect with redis_server_url() (unix:///DIR/redis.sock) ...
 *
 * redis_server_start makes a temporary directory the first time and starts
 * Debian's redis-server in it, listening only on the unix socket DIR/redis.sock
 * (--port 0: no TCP at all), with the persistence the test asks for:
 * "none" (no RDB, no AOF), "rdb" (a snapshot every second if anything
 * changed, and at shutdown), "aof-everysec" or "aof-always". It waits until
 * the server answers PING, and registers an atexit handler that stops it
 * and removes the directory; if this process dies without exiting, the
 * server gets SIGKILL (PR_SET_PDEATHSIG). redis_server_stop(crash) stops it
 * (SIGTERM: a clean shutdown, saving what its persistence saves; crash:
 * SIGKILL), and redis_server_start again restarts it on the same directory.
 * When it cannot start, redis_server_unavailable() prints why and returns 1
 * under CI=true (a CI run never skips), else 77 (ctest's SKIP_RETURN_CODE).
 * Runs as root as well. Needs _GNU_SOURCE (nftw); link with hiredis. */
#ifndef APSCHED_TEST_REDIS_SERVER_H
#define APSCHED_TEST_REDIS_SERVER_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <poll.h>
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

#define REDIS_SERVER_BIN "/usr/bin/redis-server"

static struct {
  char dir[128];  /* "" until made */
  char sock[160];
  char url[192];  /* unix:///DIR/redis.sock */
  char why[512];
  pid_t pid;      /* 0 when stopped */
  bool cleanup_registered;
} redis_srv;

static inline int redis_server_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline void redis_server_stop(bool crash) {
  if (redis_srv.pid <= 0) return;
  kill(redis_srv.pid, crash ? SIGKILL : SIGTERM);
  int status;
  while (waitpid(redis_srv.pid, &status, 0) < 0 && errno == EINTR) {
  }
  redis_srv.pid = 0;
}

static inline void redis_server_cleanup(void) {
  redis_server_stop(true);
  if (redis_srv.dir[0]) nftw(redis_srv.dir, redis_server_rm, 8, FTW_DEPTH | FTW_PHYS);
  redis_srv.dir[0] = '\0';
}

/* A connection to the server (as redis-cli would open); NULL if it cannot. */
static inline redisContext *redis_server_try_connect(void) {
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectUnixWithTimeout(redis_srv.sock, tv);
  if (c && c->err) {
    redisFree(c);
    c = NULL;
  }
  return c;
}

static inline int redis_server_start(const char *persistence) {
  if (redis_srv.pid > 0) return 0;
  if (!redis_srv.dir[0]) {
    snprintf(redis_srv.dir, sizeof redis_srv.dir, "/tmp/apsched-redis-XXXXXX");
    if (!mkdtemp(redis_srv.dir)) {
      redis_srv.dir[0] = '\0';
      snprintf(redis_srv.why, sizeof redis_srv.why, "mkdtemp: %s", strerror(errno));
      return -1;
    }
    snprintf(redis_srv.sock, sizeof redis_srv.sock, "%s/redis.sock", redis_srv.dir);
    snprintf(redis_srv.url, sizeof redis_srv.url, "unix://%s", redis_srv.sock);
    if (!redis_srv.cleanup_registered) atexit(redis_server_cleanup);
    redis_srv.cleanup_registered = true;
  }
  bool rdb = strcmp(persistence, "rdb") == 0, aof = strncmp(persistence, "aof-", 4) == 0;
  if (!rdb && !aof && strcmp(persistence, "none") != 0) {
    snprintf(redis_srv.why, sizeof redis_srv.why, "unknown persistence '%s'", persistence);
    return -1;
  }
  char log[192];
  snprintf(log, sizeof log, "%s/log", redis_srv.dir);
  char *const argv[] = {REDIS_SERVER_BIN, "--port", "0", "--unixsocket", redis_srv.sock,
                        "--unixsocketperm", "700", "--dir", redis_srv.dir, "--daemonize", "no",
                        "--logfile", log, "--save", rdb ? "1 1" : "",
                        "--appendonly", aof ? "yes" : "no",
                        "--appendfsync", aof ? (char *)persistence + 4 : "everysec", NULL};
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(redis_srv.why, sizeof redis_srv.why, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) _exit(126);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(argv[0], argv);
    _exit(127);
  }
  redis_srv.pid = pid;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    redisContext *c = redis_server_try_connect();
    if (c) {
      redisReply *r = redisCommand(c, "PING");
      bool up = r && r->type == REDIS_REPLY_STATUS;
      if (r) freeReplyObject(r);
      redisFree(c);
      if (up) return 0;
    }
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      redis_srv.pid = 0;
      snprintf(redis_srv.why, sizeof redis_srv.why, REDIS_SERVER_BIN " exited (status %d); see %s",
               status, log);
      return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > 30) {
      redis_server_stop(true);
      snprintf(redis_srv.why, sizeof redis_srv.why, "the server did not answer within 30 s");
      return -1;
    }
    poll(NULL, 0, 10); /* the interval between two tries */
  }
}

static inline const char *redis_server_url(void) { return redis_srv.url; }

static inline int redis_server_unavailable(void) {
  const char *ci = getenv("CI");
  bool in_ci = ci && strcmp(ci, "true") == 0;
  fprintf(stderr, "%s: cannot start a Redis server: %s\n", in_ci ? "FAILED" : "SKIPPED",
          redis_srv.why);
  return in_ci ? 1 : 77;
}

/* A plain connection, aborting the test if it cannot connect. */
static inline redisContext *redis_server_connect(void) {
  redisContext *c = redis_server_try_connect();
  if (!c) {
    fprintf(stderr, "connecting to the test server at %s failed\n", redis_srv.sock);
    abort();
  }
  return c;
}

#endif
