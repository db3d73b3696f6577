/* Liveness, wake-ups and the server's clock. Each scheduler using a prefix
 * is an entry of {P}:schedulers with a hash of its own, and holds a
 * liveness key {P}:alive:ID that expires 2 x lease after its last
 * heartbeat. A thread of its own heartbeats every lease / 3 on a
 * connection of its own (measuring the server's clock on the way), and
 * listens on a second, subscribed connection for the other schedulers'
 * PUBLISH on {P}:wakeup, waking the scheduler when one arrives (and
 * reading the requests to stop its runs when one says "stop": waiting.c).
 * A lost message costs only latency: the loop still polls every max_wait.
 *
 * A scheduler whose liveness key is gone (it died, or was stopped or cut
 * off for 2 x its lease) is dead: its runs are taken over (runs.c) and its
 * later writes are fenced. Registration happens when the store is opened
 * by a scheduler, or at its first claim; a tool that only lists jobs never
 * registers. */
#include "redis_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* The registry entry and liveness key, and a clock sample. */
static int beat(redis_store *rs) {
  char host[256] = "", pid[16], lease[16];
  gethostname(host, sizeof host - 1);
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  snprintf(lease, sizeof lease, "%d", rs->lease_ms);
  const char *argv[6] = {rs->id, rs->scheduler_name ? "1" : "0",
                         rs->scheduler_name ? rs->scheduler_name : "", host, pid, lease};
  int rc;
  int64_t before = apsched_now();
  redisReply *r = apsched__redis_script(&rs->hb, S_BEAT, rs->root, 6, argv, NULL,
                                        "writing this scheduler's heartbeat", &rc);
  int64_t after = apsched_now();
  if (r && r->type == REDIS_REPLY_STRING)
    apsched__pstore_clock_sample(&rs->clock, before, strtoll(r->str, NULL, 10), after);
  apsched__redis_reply_free(r);
  return rc;
}

/* (Re)subscribes the subscriber connection to the wake-up channel. */
static int subscribe(redis_store *rs) {
  char channel[REDIS_PREFIX_MAX + 16];
  snprintf(channel, sizeof channel, "%s:wakeup", rs->root);
  const char *argv[2] = {"SUBSCRIBE", channel};
  int rc;
  apsched__redis_reply_free(apsched__redis_command(&rs->sub, 2, argv, NULL,
                                         "subscribing to the other schedulers' changes", &rc));
  return rc;
}

enum { HEARD_CHANGE = 1, HEARD_STOP = 2 };

/* Reads what arrived on the subscriber connection: HEARD_CHANGE if a
 * message did, HEARD_STOP too if one said a run was asked to stop. */
static unsigned notified(redis_store *rs) {
  if (redisBufferRead(rs->sub.c) != REDIS_OK) {
    apsched__redis_disconnect(&rs->sub); /* subscribed again at the next beat */
    return 0;
  }
  unsigned heard = 0;
  void *reply;
  while (redisGetReplyFromReader(rs->sub.c, &reply) == REDIS_OK && reply) {
    redisReply *m = reply;
    heard |= HEARD_CHANGE;
    if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[2]->type == REDIS_REPLY_STRING &&
        strcmp(m->element[2]->str, "stop") == 0)
      heard |= HEARD_STOP;
    apsched__redis_reply_free(reply);
  }
  return heard;
}

static void *hb_main(void *arg) {
  redis_store *rs = arg;
  int64_t period = (int64_t)rs->lease_ms * 1000 / 3;
  bool ok = true; /* register made the first beat */
  int64_t next = apsched__pstore_mono_us() + period;
  while (!atomic_load(&rs->stopping)) {
    int64_t now = apsched__pstore_mono_us();
    if (now >= next) {
      ok = beat(rs) == APSCHED_OK;
      /* A stop request, or a run waiting, whose message was lost is found
       * here at the latest. */
      if (ok) apsched__redis_stops_read(rs);
      atomic_store(&rs->look_for_waiting, true);
      if (!rs->sub.c) subscribe(rs);
      /* Down: tried again within a second (the heartbeat is what keeps
       * this scheduler's runs). */
      next = now + (ok || period < 1000000 ? period : 1000000);
      continue;
    }
    /* Also where starts recorded ahead whose window ended go back. */
    if (!apsched__pstore_starts_wait(&rs->starts, rs->wake[0], rs->sub.c ? rs->sub.c->fd : -1, next))
      continue;
    unsigned heard = notified(rs);
    if (heard & HEARD_STOP) apsched__redis_stops_read(rs);
    if (heard) {
      atomic_store(&rs->look_for_waiting, true);
      pthread_mutex_lock(&rs->mu);
      apsched_scheduler *s = rs->sched;
      pthread_mutex_unlock(&rs->mu);
      /* Not under mu: close() joins this thread, and the scheduler lives
       * until close returns. */
      if (s) apsched_wakeup(s);
    }
  }
  return NULL;
}

/* A new random id: 16 hex digits. */
static void new_id(redis_store *rs) {
  unsigned char b[8];
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
    int64_t t = apsched_now() ^ (int64_t)getpid() << 40;
    memcpy(b, &t, sizeof b);
  }
  for (size_t i = 0; i < sizeof b; i++) snprintf(rs->id + 2 * i, 3, "%02x", b[i]);
}

int apsched__redis_register(redis_store *rs) {
  if (rs->registered) return APSCHED_OK;
  if (!rs->id[0]) new_id(rs);
  int rc = beat(rs);
  if (rc == APSCHED_OK) rc = subscribe(rs);
  if (rc != APSCHED_OK) {
    apsched__redis_disconnect(&rs->hb);
    apsched__redis_disconnect(&rs->sub);
    return rc;
  }
  if (pipe2(rs->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    apsched__redis_disconnect(&rs->hb);
    apsched__redis_disconnect(&rs->sub);
    return apsched__pstore_error(APSCHED_ESYS, "redis store: pipe: %s", strerror(errno));
  }
  atomic_store(&rs->stopping, false);
  pthread_mutex_lock(&rs->mu);
  rs->starts.wake_fd = rs->wake[1];
  pthread_mutex_unlock(&rs->mu);
  if (pthread_create(&rs->hb_thread, NULL, hb_main, rs) != 0) {
    pthread_mutex_lock(&rs->mu);
    rs->starts.wake_fd = -1;
    pthread_mutex_unlock(&rs->mu);
    close(rs->wake[0]);
    close(rs->wake[1]);
    apsched__redis_disconnect(&rs->hb);
    apsched__redis_disconnect(&rs->sub);
    return apsched__pstore_error(APSCHED_ESYS, "redis store: cannot start the heartbeat thread");
  }
  rs->registered = true;
  return APSCHED_OK;
}

void apsched__redis_deregister(redis_store *rs) {
  if (!rs->registered) return;
  atomic_store(&rs->stopping, true);
  ssize_t w = write(rs->wake[1], "x", 1);
  (void)w;
  pthread_join(rs->hb_thread, NULL);
  pthread_mutex_lock(&rs->mu);
  rs->starts.wake_fd = -1;
  pthread_mutex_unlock(&rs->mu);
  close(rs->wake[0]);
  close(rs->wake[1]);
  rs->registered = false;
  /* Dead at once: its runs stay, and whoever comes next takes them over. */
  char alive[REDIS_PREFIX_MAX + 48], entry[REDIS_PREFIX_MAX + 48], set[REDIS_PREFIX_MAX + 16];
  snprintf(alive, sizeof alive, "%s:alive:%s", rs->root, rs->id);
  snprintf(entry, sizeof entry, "%s:scheduler:%s", rs->root, rs->id);
  snprintf(set, sizeof set, "%s:schedulers", rs->root);
  const char *del[3] = {"DEL", alive, entry};
  const char *srem[3] = {"SREM", set, rs->id};
  int rc;
  if (rs->hb.c) {
    apsched__redis_reply_free(apsched__redis_command(&rs->hb, 3, del, NULL, "removing this scheduler", &rc));
    apsched__redis_reply_free(apsched__redis_command(&rs->hb, 3, srem, NULL, "removing this scheduler", &rc));
  }
  apsched__redis_disconnect(&rs->hb);
  apsched__redis_disconnect(&rs->sub);
}

apsched_time_t apsched__redis_clock(apsched_jobstore *st, apsched_time_t host_now) {
  return apsched__pstore_clock_now(&((redis_store *)st)->clock, host_now);
}
