/* Framing and descriptor helpers shared by the process pool, its fork server
 * and its workers (see process_wire.h for the formats). */
#include "process_wire.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- buffers */

void apsched__wire_buf_free(apsched__wire_buf *b) {
  free(b->data);
  *b = (apsched__wire_buf){0};
}

int apsched__wire_buf_reserve(apsched__wire_buf *b, size_t n) {
  if (b->off > 0) {
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
  }
  if (b->cap - b->len >= n) return APSCHED_OK;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) return APSCHED_ENOMEM;
    cap *= 2;
  }
  unsigned char *d = realloc(b->data, cap);
  if (!d) return APSCHED_ENOMEM;
  b->data = d;
  b->cap = cap;
  return APSCHED_OK;
}

static void put(apsched__wire_buf *b, const void *p, size_t n) {
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void put_u32(apsched__wire_buf *b, uint32_t v) { put(b, &v, sizeof v); }

/* Cuts n so that text[0, n) does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *text, size_t n) {
  while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80) n--;
  return n;
}

int apsched__wire_put_task(apsched__wire_buf *b, const apsched__wire_task *task) {
  const char *name = task->name;
  size_t id_len = strlen(task->id), name_len = strlen(name);
  size_t store_len = strlen(task->jobstore), exec_len = strlen(task->executor);
  if (name_len > APSCHED__WIRE_MAX_NAME) name_len = utf8_cut(name, APSCHED__WIRE_MAX_NAME);
  if (task->arg_len > APSCHED__WIRE_MAX_ARG || id_len > 1024 || store_len > 1024 || exec_len > 1024)
    return APSCHED_EINVAL;
  size_t body = 8 + 8 + 4 * 6 + id_len + 1 + name_len + 1 + store_len + 1 + exec_len + 1 +
                task->arg_len;
  int rc = apsched__wire_buf_reserve(b, 4 + 1 + body);
  if (rc != APSCHED_OK) return rc;
  put_u32(b, (uint32_t)(1 + body));
  unsigned char type = APSCHED__FRAME_TASK;
  put(b, &type, 1);
  put(b, &task->fn, 8);
  put(b, &task->t, 8);
  put_u32(b, task->attempt);
  put_u32(b, (uint32_t)id_len);
  put_u32(b, (uint32_t)name_len);
  put_u32(b, (uint32_t)store_len);
  put_u32(b, (uint32_t)exec_len);
  put_u32(b, (uint32_t)task->arg_len);
  put(b, task->id, id_len);
  put(b, "", 1);
  put(b, name, name_len);
  put(b, "", 1);
  put(b, task->jobstore, store_len);
  put(b, "", 1);
  put(b, task->executor, exec_len);
  put(b, "", 1);
  put(b, task->arg, task->arg_len);
  return APSCHED_OK;
}

int apsched__wire_put_result(apsched__wire_buf *b, int32_t retval, const char *error) {
  /* type + retval + length + text + NUL must fit the cap. */
  const size_t room = APSCHED__WIRE_MAX_RESULT - 1 - 4 - 4 - 1;
  size_t err_len = error ? strlen(error) : 0;
  if (err_len > room) err_len = utf8_cut(error, room);
  size_t body = 4 + 4 + (error ? err_len + 1 : 0);
  int rc = apsched__wire_buf_reserve(b, 4 + 1 + body);
  if (rc != APSCHED_OK) return rc;
  put_u32(b, (uint32_t)(1 + body));
  unsigned char type = APSCHED__FRAME_RESULT;
  put(b, &type, 1);
  put(b, &retval, 4);
  put_u32(b, error ? (uint32_t)err_len : UINT32_MAX);
  if (error) {
    put(b, error, err_len);
    put(b, "", 1);
  }
  return APSCHED_OK;
}

static uint32_t get_u32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* The NUL-terminated text of len bytes at *p (no NUL inside), then past
 * it; NULL if it is not one. */
static const char *get_text(const unsigned char **p, size_t len) {
  const unsigned char *q = *p;
  if (q[len] != 0 || memchr(q, 0, len)) return NULL;
  *p = q + len + 1;
  return (const char *)q;
}

bool apsched__wire_get_task(const unsigned char *body, size_t len, apsched__wire_task *out) {
  const size_t fixed = 8 + 8 + 4 * 6;
  if (len < fixed) return false;
  memcpy(&out->fn, body, 8);
  memcpy(&out->t, body + 8, 8);
  out->attempt = get_u32(body + 16);
  size_t id_len = get_u32(body + 20), name_len = get_u32(body + 24),
         store_len = get_u32(body + 28), exec_len = get_u32(body + 32),
         arg_len = get_u32(body + 36);
  /* Each length is < 2^32, so the sum cannot overflow a 64-bit size_t. */
  if (fixed + id_len + 1 + name_len + 1 + store_len + 1 + exec_len + 1 + arg_len != len)
    return false;
  const unsigned char *p = body + fixed;
  if (!(out->id = get_text(&p, id_len)) || !(out->name = get_text(&p, name_len)) ||
      !(out->jobstore = get_text(&p, store_len)) || !(out->executor = get_text(&p, exec_len)))
    return false;
  out->arg = arg_len ? p : NULL;
  out->arg_len = arg_len;
  return true;
}

bool apsched__wire_get_result(unsigned char *body, size_t len, int32_t *retval,
                              const char **error) {
  if (len < 8) return false;
  memcpy(retval, body, 4);
  uint32_t err_len = get_u32(body + 4);
  if (err_len == UINT32_MAX) {
    *error = NULL;
    return len == 8;
  }
  if ((size_t)err_len + 1 != len - 8 || body[8 + err_len] != 0) return false;
  *error = (const char *)body + 8;
  return true;
}

int apsched__wire_take_frame(apsched__wire_buf *b, size_t max, int *type, unsigned char **body,
                             size_t *body_len, size_t *announced) {
  size_t avail = b->len - b->off;
  if (avail < 4) return 0;
  uint32_t n = get_u32(b->data + b->off);
  *announced = n;
  if (n == 0 || n > max) return -1;
  if (avail < 4 + (size_t)n) return 0;
  *type = b->data[b->off + 4];
  *body = b->data + b->off + 5;
  *body_len = n - 1;
  b->off += 4 + (size_t)n;
  if (b->off == b->len) b->off = b->len = 0;
  return 1;
}

/* ---- descriptors */

int apsched__wire_flush(int fd, apsched__wire_buf *b) {
  while (b->off < b->len) {
    ssize_t n = send(fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      b->off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return 0;
    } else {
      return -1;
    }
  }
  b->off = b->len = 0;
  return 0;
}

int apsched__wire_fill(int fd, apsched__wire_buf *b, size_t max_pending) {
  while (b->len - b->off < max_pending) {
    size_t want = max_pending - (b->len - b->off);
    if (want > 65536) want = 65536;
    if (apsched__wire_buf_reserve(b, want) != APSCHED_OK) return -1;
    ssize_t n = recv(fd, b->data + b->len, want, MSG_DONTWAIT);
    if (n > 0) {
      b->len += (size_t)n;
      if ((size_t)n < want) return 1; /* drained for now */
    } else if (n == 0) {
      return 0;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return 1;
    } else {
      return -1;
    }
  }
  return 1;
}

int apsched__read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r > 0) got += (size_t)r;
    else if (r == 0) return got == 0 ? 0 : -1;
    else if (errno != EINTR) return -1;
  }
  return 1;
}

int apsched__write_full(int fd, const void *buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = send(fd, (const char *)buf + done, n - done, MSG_NOSIGNAL);
    if (w > 0) done += (size_t)w;
    else if (w < 0 && errno != EINTR) return -1;
  }
  return 0;
}

int apsched__ctl_send(int fd, const apsched__ctl_msg *m, int pass_fd, int flags) {
  struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (pass_fd >= 0) {
    memset(&ctl, 0, sizeof ctl);
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | flags);
    if (n == (ssize_t)sizeof *m) return 0;
    if (n >= 0) {
      errno = EPROTO; /* a seqpacket send is all or nothing */
      return -1;
    }
    if (errno != EINTR) return -1;
  }
}

int apsched__ctl_recv(int fd, apsched__ctl_msg *m, int *got_fd, int flags) {
  *got_fd = -1;
  struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t n;
  do n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return (int)n;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfds; i++) {
      int d;
      memcpy(&d, CMSG_DATA(c) + i * sizeof(int), sizeof d);
      if (*got_fd < 0) *got_fd = d;
      else close(d); /* only one is ever sent */
    }
  }
  if (n != (ssize_t)sizeof *m || (mh.msg_flags & MSG_TRUNC)) {
    if (*got_fd >= 0) close(*got_fd);
    *got_fd = -1;
    errno = EPROTO;
    return -1;
  }
  return 1;
}

/* ---- signals and wait statuses */

void apsched__describe_status(const char *who, int status, char *buf, size_t len) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char *name = sigabbrev_np(sig); /* glibc: "SEGV" for 11 */
    if (name) snprintf(buf, len, "%s killed by signal %d (SIG%s)", who, sig, name);
    else snprintf(buf, len, "%s killed by signal %d", who, sig);
  } else if (WIFEXITED(status)) {
    snprintf(buf, len, "%s exited with status %d", who, WEXITSTATUS(status));
  } else {
    snprintf(buf, len, "%s ended with wait status 0x%x", who, (unsigned)status);
  }
}
