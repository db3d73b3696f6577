/* Starts recorded in groups, for the shared stores. A run starts only after
 * its start is recorded (a fenced write: the run must still be this
 * scheduler's), and with fsync on that write costs a commit: one per run
 * would cap a scheduler at a few hundred runs a second. So the write that
 * records a start also records ahead the starts of up to STORE_START_GROUP
 * other runs this scheduler holds and has not started, and renews its
 * liveness. For a window (a quarter lease, 250 ms at most) those runs may
 * start without a round trip: nobody can take them over before 2 x lease.
 * What the window leaves unused is taken back (the heartbeat thread calls
 * apsched__pstore_starts_expire), so a run that waits longer (behind a long
 * job, in a full pool) still goes to a survivor if this scheduler dies.
 * The price: an at-most-once run recorded ahead that had not started when
 * its process died within the window is lost (reported), not moved.
 *
 * Claims carry the state (claims.c: started, prestart_until). Two locks:
 * st->mu guards the claims; st->write_mu orders the store's writes of
 * groups, so a start taken back and started again is written in that
 * order. */
#include "store_common.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void group_add(store_start_group *g, const store_claim *c) {
  g->job_id[g->n] = c->job_id;
  g->t[g->n] = c->scheduled_time;
  g->token[g->n] = c->token;
  g->attempt[g->n++] = c->attempt;
}

typedef struct gathering {
  store_start_group *g;
  int64_t now;
  bool expired; /* windows that ran out unused, not runs never recorded ahead */
} gathering;

static void gather(store_claim *c, void *ud) {
  gathering *w = ud;
  if (w->g->n >= STORE_START_GROUP || c->started) return;
  if (w->expired ? c->prestart_until != 0 && c->prestart_until <= w->now : c->prestart_until == 0)
    group_add(w->g, c);
}

/* The job ids are copied: the claims may go while the write runs. */
static bool group_own(store_start_group *g) {
  for (size_t i = 0; i < g->n; i++)
    if (!(g->job_id[i] = strdup(g->job_id[i]))) {
      while (i > 0) free((char *)g->job_id[--i]);
      g->n = 0;
      return false;
    }
  return true;
}

static void group_free(store_start_group *g) {
  for (size_t i = 0; i < g->n; i++) free((char *)g->job_id[i]);
  g->n = 0;
}

static void earliest(store_claim *c, void *ud) {
  store_starts *st = ud;
  if (!c->started && c->prestart_until != 0 && (st->due == 0 || c->prestart_until < st->due))
    st->due = c->prestart_until;
}

typedef struct start_hits {
  store_starts *st;
  const store_start_group *g;
  int64_t until;
  bool first; /* the run asked for (entry 0) is still this scheduler's */
} start_hits;

/* A run of the group found ours: the first starts, the others are
 * recorded ahead until h->until. */
static void started_hit(size_t i, void *ud) {
  start_hits *h = ud;
  const store_start_group *g = h->g;
  pthread_mutex_lock(h->st->mu);
  store_claim *c = apsched__pstore_claims_find(h->st->claims, g->job_id[i], g->t[i], g->attempt[i]);
  if (c && c->token == g->token[i] && !c->started) {
    if (i == 0) {
      c->started = true;
      h->first = true;
    } else {
      c->prestart_until = h->until;
      if (h->st->due == 0 || h->until < h->st->due) h->st->due = h->until;
    }
  }
  pthread_mutex_unlock(h->st->mu);
}

/* Whether the run may start without a write (then it has started), or why
 * it may not start at all. mu held. */
static int start_locally(store_starts *st, const char *job_id, int64_t t, unsigned attempt,
                         bool *done) {
  *done = false;
  store_claim *c = apsched__pstore_claims_find(st->claims, job_id, t, attempt);
  if (!c)
    return apsched__pstore_error(APSCHED_ESTATE,
                                 "%s: job '%.64s': this scheduler holds no claim of attempt %u "
                                 "of the run scheduled at %" PRId64,
                                 st->where, job_id, attempt, t);
  if (c->started)
    return apsched__pstore_error(APSCHED_ESTATE,
                                 "%s: job '%.64s': attempt %u of the run scheduled at %" PRId64
                                 " has started already",
                                 st->where, job_id, attempt, t);
  if (c->prestart_until > apsched__pstore_mono_us()) c->started = *done = true;
  return APSCHED_OK;
}

int apsched__pstore_run_starting(store_starts *st, const char *job_id, int64_t t, unsigned attempt) {
  bool done;
  pthread_mutex_lock(st->mu);
  int rc = start_locally(st, job_id, t, attempt, &done);
  pthread_mutex_unlock(st->mu);
  if (rc != APSCHED_OK || done) return rc;
  /* Another thread's group may record this start while this one waits. */
  pthread_mutex_lock(st->write_mu);
  store_start_group *g = malloc(sizeof *g);
  pthread_mutex_lock(st->mu);
  rc = start_locally(st, job_id, t, attempt, &done);
  if (rc == APSCHED_OK && !done && g) {
    store_claim *c = apsched__pstore_claims_find(st->claims, job_id, t, attempt);
    g->n = 0;
    group_add(g, c);
    c->prestart_until = 1; /* not gathered twice */
    gathering w = {g, 0, false};
    apsched__pstore_claims_each(st->claims, gather, &w);
    c->prestart_until = 0;
  }
  pthread_mutex_unlock(st->mu);
  if (rc == APSCHED_OK && !done && (!g || !group_own(g)))
    rc = apsched__pstore_error(APSCHED_ENOMEM, "%s: out of memory", st->where);
  if (rc == APSCHED_OK && !done) {
    start_hits h = {st, g, apsched__pstore_mono_us() + st->window, false};
    pthread_mutex_lock(st->mu);
    int64_t due_before = st->due;
    pthread_mutex_unlock(st->mu);
    rc = st->write(st->store, g, true, started_hit, &h);
    if (rc == APSCHED_OK && !h.first) {
      char at[48];
      apsched_time_format(t, NULL, at, sizeof at);
      rc = apsched__pstore_error(APSCHED_ESTATE,
                                 "%s: job '%.64s': the claim of this run (scheduled at %s) was "
                                 "lost: another scheduler took it over",
                                 st->where, job_id, at);
    }
    /* The heartbeat thread waits for the earliest window to end. */
    pthread_mutex_lock(st->mu);
    bool moved = st->due != due_before;
    pthread_mutex_unlock(st->mu);
    if (moved) apsched__pstore_starts_wake(st);
    group_free(g);
  }
  free(g);
  pthread_mutex_unlock(st->write_mu);
  return rc;
}

void apsched__pstore_starts_expire(store_starts *st) {
  pthread_mutex_lock(st->mu);
  bool due = st->due != 0 && st->due <= apsched__pstore_mono_us();
  pthread_mutex_unlock(st->mu);
  /* Never waits for a start being written (a heartbeat thread calls this:
   * its beats must go on while the server is slow). */
  if (!due || pthread_mutex_trylock(st->write_mu) != 0) return;
  store_start_group *g = malloc(sizeof *g);
  if (!g) {
    pthread_mutex_unlock(st->write_mu);
    return;
  }
  /* Under write_mu: a start of one of these now waits for this write, and
   * then records it again. */
  pthread_mutex_lock(st->mu);
  g->n = 0;
  gathering w = {g, apsched__pstore_mono_us(), true};
  apsched__pstore_claims_each(st->claims, gather, &w);
  bool owned = group_own(g);
  for (size_t i = 0; owned && i < g->n; i++) {
    store_claim *c = apsched__pstore_claims_find(st->claims, g->job_id[i], g->t[i], g->attempt[i]);
    if (c) c->prestart_until = 0;
  }
  st->due = 0;
  apsched__pstore_claims_each(st->claims, earliest, st);
  pthread_mutex_unlock(st->mu);
  /* A failed write leaves those runs marked started: lost, not moved,
   * should this scheduler die; a later start of theirs records it again. */
  if (owned && g->n > 0) st->write(st->store, g, false, NULL, NULL);
  group_free(g);
  pthread_mutex_unlock(st->write_mu);
  free(g);
}

static void end_window(store_claim *c, void *ud) {
  int64_t *now = ud;
  if (!c->started && c->prestart_until != 0) c->prestart_until = *now;
}

void apsched__pstore_starts_take_back_all(store_starts *st) {
  /* Every window ends now; expire takes them back a group at a time. */
  for (int round = 0; round < 64; round++) {
    pthread_mutex_lock(st->mu);
    int64_t now = apsched__pstore_mono_us();
    apsched__pstore_claims_each(st->claims, end_window, &now);
    st->due = 0;
    apsched__pstore_claims_each(st->claims, earliest, st);
    bool left = st->due != 0;
    pthread_mutex_unlock(st->mu);
    if (!left) return;
    apsched__pstore_starts_expire(st);
  }
}

bool apsched__pstore_starts_ahead_locked(store_starts *st, int64_t until) {
  if (st->due != 0 && st->due <= until) return false;
  st->due = until;
  return true;
}

void apsched__pstore_starts_wake(store_starts *st) {
  pthread_mutex_lock(st->mu);
  int fd = st->wake_fd;
  pthread_mutex_unlock(st->mu);
  if (fd >= 0) {
    ssize_t wrote = write(fd, "p", 1);
    (void)wrote;
  }
}

int64_t apsched__pstore_starts_due(store_starts *st) {
  pthread_mutex_lock(st->mu);
  int64_t due = st->due;
  pthread_mutex_unlock(st->mu);
  return due;
}

bool apsched__pstore_starts_wait(store_starts *st, int wake_fd, int conn_fd, int64_t next) {
  apsched__pstore_starts_expire(st);
  int64_t now = apsched__pstore_mono_us(), due = apsched__pstore_starts_due(st);
  int64_t until = due != 0 && due < next ? due : next;
  if (until <= now) until = now + 10000; /* a start was being written: soon again */
  struct pollfd fds[2] = {{.fd = wake_fd, .events = POLLIN}, {.fd = conn_fd, .events = POLLIN}};
  int ready = poll(fds, 2, (int)((until - now + 999) / 1000));
  if (ready > 0 && (fds[0].revents & POLLIN)) {
    char drain[64]; /* a new window or the stop */
    while (read(wake_fd, drain, sizeof drain) > 0) {
    }
  }
  return ready > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR));
}
