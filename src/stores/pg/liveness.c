/* Liveness: each scheduler using a schema is a row of <schema>.schedulers
 * and holds a session-level advisory lock keyed on its id, on a connection
 * of its own that a thread of its own keeps: it heartbeats every lease / 3
 * (and measures the database's clock on the way), LISTENs for other
 * schedulers' changes and wakes the scheduler when one arrives, and reads
 * requests to stop its runs (waiting.c).
 *
 * A scheduler is alive while it holds the lock AND its heartbeat is younger
 * than 2 x lease. The lock goes with the connection, so a process that dies
 * is seen dead at once; the heartbeat catches one that is stopped (SIGSTOP,
 * a stall) with its connection still open. Its runs are then taken over
 * (runs.c), and its own later writes are fenced.
 *
 * Registration happens when the store is opened by a scheduler, or at its
 * first claim; a tool that only lists jobs never registers. */
#include "pg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* The row is written again (not only updated) by every heartbeat, so a
 * scheduler whose row was deleted by hand reappears. The same statement
 * prunes the rows of schedulers dead for 10 leases (theirs) that own no
 * runs any more (their history ends there; `apsched schedulers` shows the
 * dead ones until then): one commit per heartbeat. */
static const char beat_sql[] =
    "WITH pruned AS (DELETE FROM @.schedulers s WHERE s.id <> $1"
    " AND s.heartbeat_at < now() - make_interval(secs => s.lease_ms / 100.0)"
    " AND NOT EXISTS (SELECT 1 FROM @.runs r WHERE r.owner = s.id))"
    " INSERT INTO @.schedulers (id, name, host, pid, lease_ms) VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()"
    " RETURNING (extract(epoch FROM clock_timestamp()) * 1000000)::bigint";
static const char lock_sql[] =
    "SELECT pg_try_advisory_lock(hashtext('libapsched-pg ' || $1), hashtext($2))";
/* A scheduler that stops goes from the table, unless it leaves runs: then
 * its row stays with lease_ms 0, which makes it dead from now on (by
 * either rule of PG_SCHEDULER_ALIVE, whatever its heartbeat or the
 * server's start), so the others' takeover (R_ORPHANS, which looks at the
 * runs of dead schedulers' rows) finds its runs at once; the heartbeats'
 * prune removes the row once the runs are gone. */
static const char delete_sql[] =
    "WITH kept AS (UPDATE @.schedulers SET lease_ms = 0"
    " WHERE id = $1 AND EXISTS (SELECT 1 FROM @.runs r WHERE r.owner = $1))"
    " DELETE FROM @.schedulers WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM @.runs r WHERE r.owner = $1)";

/* Every run leaves a dead row in runs (inserted at the claim, deleted at
 * its end), and autovacuum looks at a table once a minute at most: under
 * a steady load the table and its key grow to megabytes of dead rows that
 * every claim, insert and close walks (measured: the claim's instance read
 * 2.6 ms per batch of 256 on such a table, 0.8 ms after a VACUUM; with it
 * here 25-40 % more runs/s). So a scheduler that has closed many runs
 * since vacuums the table itself, after a heartbeat, without waiting for
 * a lock (another scheduler vacuuming it meanwhile is enough). */
#define VACUUM_AFTER_CLOSES 1000

static const char may_vacuum_sql[] =
    "SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE') FROM pg_catalog.pg_class c"
    " WHERE c.oid = to_regclass($1)";

static void vacuum_if_churned(pg_store *ps) {
  if (atomic_load(&ps->closed_since_vacuum) < VACUUM_AFTER_CLOSES || ps->may_vacuum == 0) return;
  int rc = APSCHED_OK;
  if (ps->may_vacuum < 0) {
    /* Only the table's owner may vacuum it (anyone else gets a warning
     * and nothing done): asked once. */
    char *table = apsched__pstore_expand("@.runs", ps->hb.quoted);
    if (!table) return;
    const char *values[1] = {table};
    PGresult *res = apsched__pg_exec(&ps->hb, may_vacuum_sql, 1, values, NULL, NULL, false,
                                     "checking who may vacuum the runs table", &rc);
    free(table);
    if (!res) return;
    ps->may_vacuum = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!ps->may_vacuum) return;
  }
  /* TRUNCATE false: giving the emptied tail pages back to the file system
   * takes an ACCESS EXCLUSIVE lock on runs, which stops every scheduler's
   * claims and closes while held, and which VACUUM keeps trying to get for
   * up to 5 s while they run (delaying this thread's next heartbeat); the
   * pages are refilled by the next claims anyway. */
  char *sql = apsched__pstore_expand("VACUUM (SKIP_LOCKED, TRUNCATE false) @.runs", ps->hb.quoted);
  if (!sql) return;
  atomic_store(&ps->closed_since_vacuum, 0);
  /* A failure costs nothing but the cleanup: tried again after as many closes. */
  PQclear(apsched__pg_exec(&ps->hb, sql, 0, NULL, NULL, NULL, false, "vacuuming the runs table", &rc));
  free(sql);
}

/* Writes the row (heartbeat), samples the clock, and prunes long dead
 * schedulers' rows. */
static int beat(pg_store *ps) {
  char *sql = apsched__pstore_expand(beat_sql, ps->hb.quoted);
  if (!sql) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  char host[256] = "", pid[16], lease[16];
  gethostname(host, sizeof host - 1);
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  snprintf(lease, sizeof lease, "%d", ps->lease_ms);
  const char *values[5] = {ps->id, ps->scheduler_name, host, pid, lease};
  int rc = APSCHED_OK;
  int64_t before = apsched_now(), sent = apsched__pstore_mono_us();
  PGresult *res = apsched__pg_exec(&ps->hb, sql, 5, values, NULL, NULL, true,
                                   "writing this scheduler's heartbeat", &rc);
  int64_t after = apsched_now();
  if (res) atomic_store(&ps->last_beat, sent); /* heartbeat_at is no older than sent */
  if (res && PQntuples(res) == 1) apsched__pg_clock_sample(ps, before, apsched__pg_int8(res, 0, 0), after);
  PQclear(res);
  /* A stop request, or a run waiting, whose notification was lost is
   * found here at the latest. Not part of the heartbeat: a failed read is
   * tried again at the next beat and keeps the session (and its lock). */
  if (rc == APSCHED_OK) apsched__pg_stops_read(ps);
  if (rc == APSCHED_OK) vacuum_if_churned(ps);
  atomic_store(&ps->look_for_waiting, true);
  free(sql);
  return rc;
}

/* A new session on hb: the lock, the row, LISTEN. */
static int hb_session(pg_store *ps) {
  int rc = apsched__pg_ready(&ps->hb);
  if (rc != APSCHED_OK) return rc;
  const char *values[2] = {ps->link.schema, ps->id};
  PGresult *res = apsched__pg_exec(&ps->hb, lock_sql, 2, values, NULL, NULL, false,
                                   "taking this scheduler's lock", &rc);
  if (!res) return rc;
  bool locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
  PQclear(res);
  if (!locked)
    return apsched__pstore_error(APSCHED_EBACKEND,
                                 "postgresql schema '%s': the lock of scheduler id '%s' is held "
                                 "by another session",
                                 ps->link.schema, ps->id);
  if ((rc = beat(ps)) != APSCHED_OK) return rc;
  return apsched__pg_listen(ps, &ps->hb);
}

static void *hb_main(void *arg) {
  pg_store *ps = arg;
  int64_t period = (int64_t)ps->lease_ms * 1000 / 3;
  bool session = true; /* register made the first one */
  int64_t next = apsched__pstore_mono_us() + period;
  while (!atomic_load(&ps->stopping)) {
    int64_t now = apsched__pstore_mono_us();
    if (now >= next) {
      int rc = session ? beat(ps) : hb_session(ps);
      session = rc == APSCHED_OK;
      if (!session && PQstatus(ps->hb.conn) == CONNECTION_OK) {
        /* The session is fine but a statement failed (the lock is taken
         * after a reconnect race): start over on a new connection. */
        apsched__pg_disconnect(&ps->hb);
      }
      next = now + (session ? period : period < 1000000 ? period : 1000000);
      continue;
    }
    /* Also where starts recorded ahead whose window ended go back. */
    int fd = session && ps->hb.conn ? PQsocket(ps->hb.conn) : -1;
    if (!apsched__pstore_starts_wait(&ps->starts, ps->wake[0], fd, next)) continue;
    if (!PQconsumeInput(ps->hb.conn)) {
      session = false; /* lost: a new session at the next beat */
      next = apsched__pstore_mono_us();
      continue;
    }
    unsigned heard = apsched__pg_notified(&ps->hb);
    if (heard & PG_HEARD_STOP) apsched__pg_stops_read(ps); /* else at the next beat */
    if (heard) {
      atomic_store(&ps->look_for_waiting, true);
      pthread_mutex_lock(&ps->mu);
      apsched_scheduler *s = ps->sched;
      pthread_mutex_unlock(&ps->mu);
      /* Not under mu: close() joins this thread, and the scheduler lives
       * until close returns. */
      if (s) apsched_wakeup(s);
    }
  }
  return NULL;
}

/* A new random id: 16 hex digits (its hash keys the lock). */
static void new_id(pg_store *ps) {
  unsigned char b[8];
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
    int64_t t = apsched_now() ^ (int64_t)getpid() << 40;
    memcpy(b, &t, sizeof b);
  }
  for (size_t i = 0; i < sizeof b; i++) snprintf(ps->id + 2 * i, 3, "%02x", b[i]);
}

int apsched__pg_register(pg_store *ps) {
  if (ps->registered) return APSCHED_OK;
  if (!ps->id[0]) new_id(ps);
  ps->hb.conninfo = ps->link.conninfo;
  ps->hb.schema = ps->link.schema;
  ps->hb.quoted = ps->link.quoted;
  int rc = hb_session(ps);
  if (rc != APSCHED_OK) {
    apsched__pg_disconnect(&ps->hb);
    return rc;
  }
  if (pipe2(ps->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    apsched__pg_disconnect(&ps->hb);
    return apsched__pstore_error(APSCHED_ESYS, "postgresql store: pipe: %s", strerror(errno));
  }
  atomic_store(&ps->stopping, false);
  pthread_mutex_lock(&ps->mu);
  ps->starts.wake_fd = ps->wake[1];
  pthread_mutex_unlock(&ps->mu);
  if (pthread_create(&ps->hb_thread, NULL, hb_main, ps) != 0) {
    pthread_mutex_lock(&ps->mu);
    ps->starts.wake_fd = -1;
    pthread_mutex_unlock(&ps->mu);
    close(ps->wake[0]);
    close(ps->wake[1]);
    apsched__pg_disconnect(&ps->hb);
    return apsched__pstore_error(APSCHED_ESYS, "postgresql store: cannot start the heartbeat thread");
  }
  ps->registered = true;
  return APSCHED_OK;
}

void apsched__pg_deregister(pg_store *ps) {
  if (!ps->registered) return;
  atomic_store(&ps->stopping, true);
  ssize_t w = write(ps->wake[1], "x", 1);
  (void)w;
  pthread_join(ps->hb_thread, NULL);
  pthread_mutex_lock(&ps->mu);
  ps->starts.wake_fd = -1;
  pthread_mutex_unlock(&ps->mu);
  close(ps->wake[0]);
  close(ps->wake[1]);
  ps->registered = false;
  /* Its runs stay: whoever comes next takes them over as from a dead
   * scheduler (delete_sql). The lock goes with the connection. */
  if (ps->hb.conn && PQstatus(ps->hb.conn) == CONNECTION_OK) {
    char *sql = apsched__pstore_expand(delete_sql, ps->hb.quoted);
    if (sql) {
      const char *values[1] = {ps->id};
      int rc = APSCHED_OK;
      PQclear(apsched__pg_exec(&ps->hb, sql, 1, values, NULL, NULL, false,
                               "removing this scheduler's row", &rc));
      free(sql);
    }
  }
  apsched__pg_disconnect(&ps->hb);
}
