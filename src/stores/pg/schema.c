/* The schema's tables: created on first use, versioned, migrated forward.
 *
 * "@" in the SQL below stands for the schema, quoted (PQescapeIdentifier).
 * Every table and column carries a COMMENT, so `\d+ apsched.jobs` in psql
 * explains the jobs. Version k becomes k + 1 by running steps[k]; all the
 * steps a database needs run in one transaction with the new version
 * number, under an advisory lock so two schedulers starting at once do not
 * both create the tables. A schema at a version newer than this library's
 * is refused before anything is written. */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Version 0 (no tables) to 1 (its runs table was never used: version 2
 * replaces it). */
static const char schema_v1[] =
    "CREATE SCHEMA IF NOT EXISTS @;\n"
    "CREATE TABLE @.schema_version (\n"
    "  version integer NOT NULL\n"
    ");\n"
    "COMMENT ON TABLE @.schema_version IS "
    "'The layout of the tables of this schema (APSCHED_PG_SCHEMA_VERSION); one row';\n"
    "CREATE TABLE @.jobs (\n"
    "  id text PRIMARY KEY,\n"
    "  name text,\n"
    "  func text NOT NULL,\n"
    "  \"trigger\" text NOT NULL,\n"
    "  executor text NOT NULL,\n"
    "  arg bytea,\n"
    "  misfire_grace_ms bigint,\n"
    "  \"coalesce\" boolean NOT NULL,\n"
    "  max_instances integer NOT NULL,\n"
    "  max_runtime_ms bigint NOT NULL,\n"
    "  next_run_time bigint,\n"
    "  trigger_time bigint,\n"
    "  delivery text NOT NULL DEFAULT 'at_most_once'\n"
    "    CHECK (delivery IN ('at_most_once', 'at_least_once')),\n"
    "  paused boolean GENERATED ALWAYS AS (next_run_time IS NULL) STORED,\n"
    "  next_run_at timestamptz GENERATED ALWAYS AS\n"
    "    (to_timestamp(next_run_time::double precision / 1000000)) STORED\n"
    ");\n"
    "CREATE INDEX jobs_next_run_time ON @.jobs (next_run_time);\n"
    "COMMENT ON TABLE @.jobs IS 'One row per job of libapsched';\n"
    "COMMENT ON COLUMN @.jobs.id IS 'The job id, unique in this schema';\n"
    "COMMENT ON COLUMN @.jobs.name IS 'NULL: the default name (the function''s name)';\n"
    "COMMENT ON COLUMN @.jobs.func IS 'The name the job function is registered under';\n"
    "COMMENT ON COLUMN @.jobs.\"trigger\" IS "
    "'Canonical trigger text, e.g. interval[seconds=10, start_date=''...'']';\n"
    "COMMENT ON COLUMN @.jobs.executor IS 'Executor alias';\n"
    "COMMENT ON COLUMN @.jobs.arg IS 'The job''s byte argument; NULL: none';\n"
    "COMMENT ON COLUMN @.jobs.misfire_grace_ms IS 'Milliseconds; NULL: unlimited';\n"
    "COMMENT ON COLUMN @.jobs.\"coalesce\" IS 'true: missed runs are run once';\n"
    "COMMENT ON COLUMN @.jobs.max_instances IS 'Runs of this job at the same time, at most';\n"
    "COMMENT ON COLUMN @.jobs.max_runtime_ms IS 'Milliseconds; 0: no limit';\n"
    "COMMENT ON COLUMN @.jobs.next_run_time IS "
    "'Microseconds since 1970-01-01 UTC; NULL: paused';\n"
    "COMMENT ON COLUMN @.jobs.trigger_time IS 'next_run_time before jitter';\n"
    "COMMENT ON COLUMN @.jobs.delivery IS "
    "'at_most_once (a run lost in a crash is not repeated) or at_least_once (run again after "
    "a crash; not built yet in this store)';\n"
    "COMMENT ON COLUMN @.jobs.paused IS 'next_run_time IS NULL';\n"
    "COMMENT ON COLUMN @.jobs.next_run_at IS 'next_run_time as a timestamp, for people';\n"
    "CREATE TABLE @.runs (\n"
    "  job_id text NOT NULL,\n"
    "  scheduled_time bigint NOT NULL,\n"
    "  owner text,\n"
    "  token bigint,\n"
    "  attempt integer NOT NULL DEFAULT 1,\n"
    "  claimed_at timestamptz,\n"
    "  started_at timestamptz,\n"
    "  finished_at timestamptz,\n"
    "  outcome text,\n"
    "  error text,\n"
    "  PRIMARY KEY (job_id, scheduled_time)\n"
    ");\n"
    "COMMENT ON TABLE @.runs IS "
    "'One row per run of a job at a scheduled time (not used yet)';\n"
    "COMMENT ON COLUMN @.runs.scheduled_time IS 'Microseconds since 1970-01-01 UTC';\n"
    "COMMENT ON COLUMN @.runs.owner IS 'The scheduler (schedulers.id) that claimed the run';\n"
    "COMMENT ON COLUMN @.runs.token IS 'Per-claim token: every later write of the run names it';\n"
    "COMMENT ON COLUMN @.runs.attempt IS '1, or more when a run was taken over';\n"
    "COMMENT ON COLUMN @.runs.outcome IS 'NULL while running; executed, error, missed, ...';\n"
    "CREATE TABLE @.schedulers (\n"
    "  id text PRIMARY KEY,\n"
    "  name text,\n"
    "  host text,\n"
    "  pid integer,\n"
    "  started_at timestamptz NOT NULL DEFAULT now(),\n"
    "  heartbeat_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "COMMENT ON TABLE @.schedulers IS "
    "'The schedulers using this schema, with their heartbeats (not used yet)';\n";

/* Version 1 to 2: run records (every claimed run, until it ends), the
 * token sequence that fences them, run history, and what the schedulers
 * table needs for liveness. Version 1 never wrote its runs table, so it is
 * replaced. */
static const char schema_v2[] =
    "DROP TABLE @.runs;\n"
    "CREATE SEQUENCE @.run_tokens;\n"
    "COMMENT ON SEQUENCE @.run_tokens IS 'Claim tokens: each claim of runs takes the next';\n"
    "CREATE TABLE @.runs (\n"
    "  job_id text NOT NULL,\n"
    "  scheduled_time bigint NOT NULL,\n"
    "  owner text NOT NULL,\n"
    "  token bigint NOT NULL,\n"
    "  attempt integer NOT NULL,\n"
    "  claimed_at timestamptz NOT NULL DEFAULT now(),\n"
    "  started_at timestamptz,\n"
    "  name text,\n"
    "  func text NOT NULL,\n"
    "  executor text NOT NULL,\n"
    "  arg bytea,\n"
    "  max_instances integer NOT NULL,\n"
    "  max_runtime_ms bigint NOT NULL,\n"
    "  delivery text NOT NULL CHECK (delivery IN ('at_most_once', 'at_least_once')),\n"
    "  PRIMARY KEY (job_id, scheduled_time)\n"
    ");\n"
    "CREATE INDEX runs_owner ON @.runs (owner);\n"
    "COMMENT ON TABLE @.runs IS "
    "'Runs claimed by a scheduler that have not ended: one row per job and scheduled time';\n"
    "COMMENT ON COLUMN @.runs.scheduled_time IS 'Microseconds since 1970-01-01 UTC';\n"
    "COMMENT ON COLUMN @.runs.owner IS 'The scheduler (schedulers.id) that runs it';\n"
    "COMMENT ON COLUMN @.runs.token IS "
    "'The claim''s token: every later write of the run names owner and token';\n"
    "COMMENT ON COLUMN @.runs.attempt IS '1, or more once taken over from a dead scheduler';\n"
    "COMMENT ON COLUMN @.runs.started_at IS 'NULL until the run starts';\n"
    "COMMENT ON COLUMN @.runs.func IS "
    "'The job as it was claimed (func, executor, arg, ...): what a survivor runs'; \n"
    "COMMENT ON COLUMN @.runs.delivery IS "
    "'at_least_once: run again by a survivor if its scheduler dies; at_most_once: only if it "
    "had not started';\n"
    "CREATE TABLE @.run_history (\n"
    "  job_id text NOT NULL,\n"
    "  scheduled_time bigint NOT NULL,\n"
    "  attempt integer NOT NULL,\n"
    "  started_at bigint,\n"
    "  finished_at bigint NOT NULL,\n"
    "  outcome text NOT NULL CHECK (outcome IN ('executed', 'failed', 'missed', 'skipped')),\n"
    "  retval integer,\n"
    "  error text\n"
    ");\n"
    "CREATE INDEX run_history_finished_at ON @.run_history (finished_at);\n"
    "CREATE INDEX run_history_job ON @.run_history (job_id, scheduled_time);\n"
    "COMMENT ON TABLE @.run_history IS "
    "'Ended runs, kept for the store''s history_retention';\n"
    "COMMENT ON COLUMN @.run_history.started_at IS "
    "'Microseconds since 1970-01-01 UTC; NULL: never started (missed, skipped)';\n"
    "COMMENT ON COLUMN @.run_history.retval IS 'What the job returned';\n"
    "COMMENT ON TABLE @.schedulers IS "
    "'The schedulers using this schema: each holds an advisory lock while it lives and "
    "heartbeats every lease / 3';\n"
    "ALTER TABLE @.schedulers ADD COLUMN lease_ms integer NOT NULL DEFAULT 5000;\n"
    "COMMENT ON COLUMN @.schedulers.heartbeat_at IS "
    "'Older than 2 x lease_ms: the scheduler is dead, its runs are taken over';\n"
    "COMMENT ON COLUMN @.schedulers.lease_ms IS "
    "'This scheduler''s lease: it heartbeats every lease_ms / 3';\n"
    "COMMENT ON COLUMN @.jobs.delivery IS "
    "'at_most_once (a run lost in a crash is not repeated) or at_least_once (run again "
    "by a survivor after a crash)';\n";

/* Version 2 to 3: schedule policies and the count of consecutive failures. */
static const char schema_v3[] =
    "ALTER TABLE @.jobs ADD COLUMN policies text;\n"
    "ALTER TABLE @.jobs ADD COLUMN failures integer NOT NULL DEFAULT 0;\n"
    "COMMENT ON COLUMN @.jobs.policies IS "
    "'Non-default schedule policies (overlap=buffer_one, catchup_window=3600s, "
    "pause_after_failures=3); NULL: the defaults';\n"
    "COMMENT ON COLUMN @.jobs.failures IS "
    "'Consecutive failed runs; pause_after_failures of them pause the job';\n";

/* Version 3 to 4: the claim's order (next_run_time, id) is an index, so a
 * claim reads its batch from the index instead of sorting every due row
 * (10^5 jobs due at once: each claim of 256 sorted all of them). */
static const char schema_v4[] =
    "CREATE INDEX jobs_due ON @.jobs (next_run_time, id);\n"
    "DROP INDEX @.jobs_next_run_time;\n"
    "COMMENT ON INDEX @.jobs_due IS "
    "'The claim order: due jobs earliest first, ties by id';\n";

/* Version 4 to 5: runs that wait for a free instance slot of their job
 * (overlap policies buffer_one, buffer_all, cancel_other, terminate_other;
 * run now and backfill), kept in the runs table so any scheduler starts
 * them and they outlive the one that made them wait; and requests to stop
 * a running run, which its own scheduler reads. */
static const char schema_v5[] =
    "ALTER TABLE @.runs ADD COLUMN waiting boolean NOT NULL DEFAULT false;\n"
    "ALTER TABLE @.runs ADD COLUMN on_demand boolean NOT NULL DEFAULT false;\n"
    "ALTER TABLE @.runs ADD COLUMN misfire_grace_ms bigint;\n"
    "ALTER TABLE @.runs ADD COLUMN stop_request text\n"
    "  CHECK (stop_request IN ('cancel', 'terminate'));\n"
    "ALTER TABLE @.runs ADD COLUMN stop_told boolean NOT NULL DEFAULT false;\n"
    "ALTER TABLE @.runs ADD COLUMN overlap text;\n"
    "CREATE INDEX runs_waiting ON @.runs (job_id, scheduled_time) WHERE waiting;\n"
    "CREATE INDEX runs_stop ON @.runs (owner) WHERE stop_request IS NOT NULL AND NOT stop_told;\n"
    "COMMENT ON COLUMN @.runs.waiting IS "
    "'true: the run waits for a free instance slot of its job (owner is empty; the rows of one "
    "run share its token); any scheduler starts it when one frees';\n"
    "COMMENT ON COLUMN @.runs.on_demand IS "
    "'A run asked for through the API (run now, backfill): it runs whatever its lateness';\n"
    "COMMENT ON COLUMN @.runs.misfire_grace_ms IS "
    "'The job''s misfire grace time when the run began to wait; NULL: unlimited';\n"
    "COMMENT ON COLUMN @.runs.stop_request IS "
    "'cancel or terminate: a newer run of the job asked this one to stop (overlap policy "
    "cancel_other or terminate_other); NULL: not asked';\n"
    "COMMENT ON COLUMN @.runs.overlap IS "
    "'The overlap policy a waiting run waits under (it applies when it runs); NULL otherwise';\n"
    "COMMENT ON COLUMN @.runs.stop_told IS "
    "'The scheduler that runs it has read the stop request';\n";

/* Version 5 to 6: the index by owner also holds the token, so the runs of
 * one claim that all ended are closed by one range of it (runs.c,
 * R_CLOSE_TOKEN) instead of a look-up per run. */
static const char schema_v6[] =
    "CREATE INDEX runs_owner_token ON @.runs (owner, token);\n"
    "DROP INDEX @.runs_owner;\n"
    "COMMENT ON INDEX @.runs_owner_token IS "
    "'A scheduler''s runs, by claim: the runs of a claim share its token';\n"
    "COMMENT ON COLUMN @.runs.token IS "
    "'The claim''s token (all runs of one claim share it): every later write of the run names "
    "job, time, owner and token';\n";

static const char *const steps[APSCHED_PG_SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3,
                                                                schema_v4, schema_v5, schema_v6};

/* The schema version (0: no tables of ours yet). Reads only. */
static int schema_version(pg_link *l, int *version) {
  const char *params[1] = {l->schema};
  int rc = APSCHED_OK;
  PGresult *res = apsched__pg_exec(
      l,
      "SELECT count(*) FILTER (WHERE tablename = 'schema_version'),"
      " count(*) FILTER (WHERE tablename = 'jobs')"
      " FROM pg_catalog.pg_tables WHERE schemaname = $1",
      1, params, NULL, NULL, false, "reading the schema", &rc);
  if (!res) return rc;
  bool has_version = atoi(PQgetvalue(res, 0, 0)) > 0, has_jobs = atoi(PQgetvalue(res, 0, 1)) > 0;
  PQclear(res);
  if (!has_version) {
    if (has_jobs)
      return apsched__pstore_error(APSCHED_EINVAL,
                                   "postgresql schema '%s' has a table 'jobs' but no "
                                   "'schema_version': it was not made by libapsched-pg (use "
                                   "another schema)",
                                   l->schema);
    *version = 0;
    return APSCHED_OK;
  }
  char *sql = apsched__pstore_expand("SELECT max(version), count(*) FROM @.schema_version",
                                     l->quoted);
  if (!sql) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  res = apsched__pg_exec(l, sql, 0, NULL, NULL, NULL, false, "reading the schema version", &rc);
  free(sql);
  if (!res) return rc;
  long v = PQgetisnull(res, 0, 0) ? 0 : atol(PQgetvalue(res, 0, 0));
  long rows = atol(PQgetvalue(res, 0, 1));
  PQclear(res);
  if (rows != 1 || v < 1 || v > 1000000)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "postgresql schema '%s': table 'schema_version' must hold "
                                 "exactly one version number (it holds %ld rows)",
                                 l->schema, rows);
  *version = (int)v;
  return APSCHED_OK;
}

static int newer_than_ours(const pg_link *l, int version) {
  return apsched__pstore_error(APSCHED_EINVAL,
                               "postgresql schema '%s' has schema version %d, newer than the %d "
                               "this library knows: use a newer libapsched-pg (nothing was "
                               "changed)",
                               l->schema, version, APSCHED_PG_SCHEMA_VERSION);
}

/* Runs one step's SQL (several statements, no parameters). */
static int run_step(pg_link *l, int to) {
  char *sql = apsched__pstore_expand(steps[to - 1], l->quoted);
  if (!sql) return apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
  char what[64];
  snprintf(what, sizeof what, "%s schema version %d", to == 1 ? "creating" : "migrating to", to);
  PGresult *res = PQexec(l->conn, sql);
  free(sql);
  int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? APSCHED_OK : apsched__pg_fail(l, res, what);
  PQclear(res);
  return rc;
}

int apsched__pg_schema_ensure(pg_link *l, bool existing_only) {
  int version;
  /* A first look without a transaction: a newer schema is refused untouched. */
  int rc = schema_version(l, &version);
  if (rc != APSCHED_OK) return rc;
  if (version > APSCHED_PG_SCHEMA_VERSION) return newer_than_ours(l, version);
  if (version == APSCHED_PG_SCHEMA_VERSION) return APSCHED_OK;
  if (existing_only && version == 0)
    return apsched__pstore_error(APSCHED_EINVAL,
                                 "postgresql schema '%s' holds no libapsched-pg tables", l->schema);

  rc = apsched__pg_command(l, "BEGIN", "starting the schema transaction");
  if (rc != APSCHED_OK) return rc;
  const char *lock_params[1] = {l->schema};
  PGresult *res = apsched__pg_exec(l, "SELECT pg_advisory_xact_lock(hashtext('libapsched-pg ' || $1))",
                                   1, lock_params, NULL, NULL, false, "locking the schema", &rc);
  PQclear(res);
  /* Again under the lock: another scheduler may have been first. */
  if (rc == APSCHED_OK) rc = schema_version(l, &version);
  if (rc == APSCHED_OK && version > APSCHED_PG_SCHEMA_VERSION) rc = newer_than_ours(l, version);
  for (int v = version; rc == APSCHED_OK && v < APSCHED_PG_SCHEMA_VERSION; v++) rc = run_step(l, v + 1);
  if (rc == APSCHED_OK && version < APSCHED_PG_SCHEMA_VERSION) {
    char number[16];
    snprintf(number, sizeof number, "%d", APSCHED_PG_SCHEMA_VERSION);
    const char *params[1] = {number};
    char *del = apsched__pstore_expand("DELETE FROM @.schema_version", l->quoted);
    char *ins = apsched__pstore_expand("INSERT INTO @.schema_version (version) VALUES ($1)", l->quoted);
    if (!del || !ins) rc = apsched__pstore_error(APSCHED_ENOMEM, "postgresql store: out of memory");
    if (rc == APSCHED_OK) rc = apsched__pg_command(l, del, "writing the schema version");
    if (rc == APSCHED_OK)
      PQclear(apsched__pg_exec(l, ins, 1, params, NULL, NULL, false, "writing the schema version", &rc));
    free(del);
    free(ins);
  }
  if (rc == APSCHED_OK) rc = apsched__pg_command(l, "COMMIT", "committing the schema");
  if (rc != APSCHED_OK && apsched__pg_in_transaction(l)) apsched__pg_command(l, "ROLLBACK", "undoing the schema");
  return rc;
}
