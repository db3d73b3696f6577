/* Runs the `apsched` binary as a separate process for the CLI tests:
 * its exit status, stdout and stderr; optionally TZ, stdin from a file,
 * stdout into a file, and a working directory. Header-only, like support.h. */
#ifndef APSCHED_TEST_CLI_RUN_H
#define APSCHED_TEST_CLI_RUN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct buffer {
  char *data;
  size_t len, cap;
} buffer;

typedef struct cli_result {
  int status; /* exit status, or 128 + signal */
  buffer out, err;
} cli_result;

/* Where the child's input and output go; every field may be NULL. */
typedef struct cli_io {
  const char *tz_env;      /* "TZ=..." replacing ours */
  const char *stdin_path;  /* stdin from this file (else /dev/null) */
  const char *stdout_path; /* stdout into this file (else captured) */
  const char *cwd;         /* the child's working directory */
} cli_io;

static void buffer_add(buffer *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->data = realloc(b->data, b->cap);
    assert_non_null(b->data);
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void result_free(cli_result *r) {
  free(r->out.data);
  free(r->err.data);
}

/* The environment for the child: ours, with TZ replaced by tz_env ("TZ=...")
 * when given. */
static char **child_env(const char *tz_env) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = calloc(n + 2, sizeof *env);
  assert_non_null(env);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!tz_env || strncmp(environ[i], "TZ=", 3) != 0) env[k++] = environ[i];
  if (tz_env) env[k++] = (char *)tz_env;
  env[k] = NULL;
  return env;
}

/* Runs the tool with args (NULL-terminated, without argv[0]). */
static void cli_run(cli_result *r, const cli_io *io, const char *const args[]) {
  static const cli_io none;
  if (!io) io = &none;
  memset(r, 0, sizeof *r);
  buffer_add(&r->out, "", 0);
  buffer_add(&r->err, "", 0);
  const char *argv[64] = {APSCHED_CLI_PATH};
  size_t argc = 1;
  for (; args[argc - 1]; argc++) {
    assert_true(argc < 63);
    argv[argc] = args[argc - 1];
  }
  argv[argc] = NULL;

  int out_pipe[2], err_pipe[2];
  assert_int_equal(pipe2(out_pipe, O_CLOEXEC), 0);
  assert_int_equal(pipe2(err_pipe, O_CLOEXEC), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (io->cwd) posix_spawn_file_actions_addchdir_np(&fa, io->cwd);
  posix_spawn_file_actions_addopen(&fa, 0, io->stdin_path ? io->stdin_path : "/dev/null",
                                   O_RDONLY, 0);
  if (io->stdout_path)
    posix_spawn_file_actions_addopen(&fa, 1, io->stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  else
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  char **env = child_env(io->tz_env);
  pid_t pid;
  int rc = posix_spawn(&pid, APSCHED_CLI_PATH, &fa, NULL, (char *const *)argv, env);
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  assert_int_equal(rc, 0);
  close(out_pipe[1]);
  close(err_pipe[1]);

  /* Read both pipes together, so a full one cannot stall the child. */
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  buffer *dest[2] = {&r->out, &r->err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      assert_int_equal(errno, EINTR);
      continue;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char chunk[4096];
      ssize_t got = read(fds[i].fd, chunk, sizeof chunk);
      if (got > 0) {
        buffer_add(dest[i], chunk, (size_t)got);
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      }
    }
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) assert_int_equal(errno, EINTR);
  r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

#endif
