/* `apsched jobs`, run as a separate process against real SQLite files in a
 * temporary directory: list, show, pause, resume, remove (and their errors),
 * export -> import into a second file (identical listings and exports),
 * malformed JSON refused with nothing imported, store URL errors, a locked
 * database, and a scheduler running in this process on the same file that
 * stops running a job the tool paused (and runs it again once resumed).
 * Built without the SQLite store or jansson, it checks the message saying
 * what is missing instead. */
#include "cli_run.h"

#include <poll.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include "apsched.h"

#ifdef APSCHED_CLI_HAVE_SQLITE
#include <sqlite3.h>

#include "apsched_sqlite.h"
#endif

/* ------------------------------------------------------------- helpers */

/* Some helpers go unused when the tool is built without a store kind. */
#define MAYBE_UNUSED __attribute__((unused))

static char tmpdir[64];

static int setup_dir(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/apsched-cli-jobs-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int remove_dir(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* tmpdir/name */
MAYBE_UNUSED static const char *in_dir(const char *name) {
  static char paths[8][256];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, 256, "%s/%s", tmpdir, name);
  return p;
}

/* The tool run in tmpdir (so sqlite:///name.db is tmpdir/name.db), stdin
 * from stdin_path (or /dev/null). */
static void run_in(cli_result *r, const char *stdin_path, const char *const args[]) {
  cli_io io = {.cwd = tmpdir, .stdin_path = stdin_path, .tz_env = "TZ=UTC"};
  cli_run(r, &io, args);
}

static void show_failure(const char *const args[], const cli_result *r) {
  fprintf(stderr, "args:");
  for (int i = 0; args[i]; i++) fprintf(stderr, " '%s'", args[i]);
  fprintf(stderr, "\nstatus %d\n--- stdout:\n%s--- stderr:\n%s\n", r->status, r->out.data,
          r->err.data);
}

/* Runs the tool in tmpdir: exit 0, nothing on stderr; returns stdout (freed
 * by the caller). */
static char *ok_output(const char *stdin_path, const char *const args[]) {
  cli_result r;
  run_in(&r, stdin_path, args);
  if (r.status != 0 || r.err.len != 0) show_failure(args, &r);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err.data, "");
  free(r.err.data);
  return r.out.data;
}

MAYBE_UNUSED static void expect_out(const char *expected, const char *const args[]) {
  char *out = ok_output(NULL, args);
  if (strcmp(out, expected) != 0) fprintf(stderr, "--- expected:\n%s--- got:\n%s", expected, out);
  assert_string_equal(out, expected);
  free(out);
}
#define EXPECT_OUT(expected, ...) expect_out(expected, ARGS(__VA_ARGS__))

/* Runs the tool in tmpdir: exit status 2, nothing on stdout, and stderr is
 * exactly one line "apsched: " + message (or starts with it, when prefix). */
static void expect_error_in(const char *stdin_path, const char *message, bool prefix,
                            const char *const args[]) {
  cli_result r;
  run_in(&r, stdin_path, args);
  char want[1024];
  snprintf(want, sizeof want, "apsched: %s%s", message, prefix ? "" : "\n");
  bool good = r.status == 2 && r.out.len == 0 &&
              (prefix ? strncmp(r.err.data, want, strlen(want)) == 0 &&
                            strchr(r.err.data, '\n') == r.err.data + r.err.len - 1
                      : strcmp(r.err.data, want) == 0);
  if (!good) {
    show_failure(args, &r);
    fprintf(stderr, "--- expected stderr%s:\n%s\n", prefix ? " starting with" : "", want);
  }
  assert_true(good);
  result_free(&r);
}
#define EXPECT_ERROR(message, ...) expect_error_in(NULL, message, false, ARGS(__VA_ARGS__))
#define EXPECT_ERROR_PREFIX(message, ...) expect_error_in(NULL, message, true, ARGS(__VA_ARGS__))

MAYBE_UNUSED static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

/* --------------------------------------------------- usage and URL errors */

static void test_usage_and_url_errors(void **state) {
  (void)state;
  EXPECT_ERROR("jobs: missing command (list, show, pause, resume, remove, export or import)",
               "jobs");
  EXPECT_ERROR("jobs: unknown command 'lsit' (list, show, pause, resume, remove, export or "
               "import)",
               "jobs", "--store", "sqlite:///a.db", "lsit");
  EXPECT_ERROR("jobs list: --store URL is needed (sqlite:///relative/path.db or "
               "sqlite:////absolute/path.db)",
               "jobs", "list");
  EXPECT_ERROR("jobs: --store needs a value", "jobs", "list", "--store");
  EXPECT_ERROR("jobs: unknown option --force", "jobs", "--force", "list");
  EXPECT_ERROR("jobs show: missing ID (usage: apsched jobs --store URL show ID)", "jobs",
               "--store", "sqlite:///a.db", "show");
  EXPECT_ERROR("jobs pause: unexpected argument 'b' (usage: apsched jobs --store URL pause ID)",
               "jobs", "--store", "sqlite:///a.db", "pause", "a", "b");
  EXPECT_ERROR("jobs pause: --tz is an option of list and show", "jobs", "--store",
               "sqlite:///a.db", "--tz", "UTC", "pause", "a");
  EXPECT_ERROR("jobs list: --replace is an option of import", "jobs", "--store=sqlite:///a.db",
               "--replace", "list");
  EXPECT_ERROR("jobs list: --tz: unknown time zone 'Mars/Base'", "jobs", "--store",
               "sqlite:///a.db", "--tz", "Mars/Base", "list");
  EXPECT_ERROR("--store goes after the command: apsched jobs --store URL ...", "--store",
               "sqlite:///a.db", "jobs", "list");
  EXPECT_ERROR("jobs list: --store: 'jobs.db' is not a store URL (sqlite:///relative/path.db, "
               "sqlite:////absolute/path.db, postgresql://user@host/dbname or redis://host:port/db)",
               "jobs", "--store", "jobs.db", "list");
  EXPECT_ERROR("jobs list: --store: unknown store kind 'mongodb' in 'mongodb://localhost/0' "
               "(known: sqlite, postgresql, postgres, redis, unix)",
               "jobs", "--store", "mongodb://localhost/0", "list");
  EXPECT_ERROR("jobs list: --store: unknown store kind 'mysql' in "
               "'mysql://u@localhost/jobs' (known: sqlite, postgresql, postgres, redis, unix)",
               "jobs", "--store", "mysql://u@localhost/jobs", "list");
#ifdef APSCHED_CLI_HAVE_SQLITE
  EXPECT_ERROR("jobs list: sqlite://host/a.db: a sqlite URL has no host: "
               "sqlite:///relative/path.db or sqlite:////absolute/path.db",
               "jobs", "--store", "sqlite://host/a.db", "list");
  EXPECT_ERROR("jobs list: sqlite:///: no file name (sqlite:///relative/path.db or "
               "sqlite:////absolute/path.db)",
               "jobs", "--store", "sqlite:///", "list");
  EXPECT_ERROR("jobs list: sqlite:///?timeout=1: no file name (sqlite:///relative/path.db or "
               "sqlite:////absolute/path.db)",
               "jobs", "--store", "sqlite:///?timeout=1", "list");
  EXPECT_ERROR("jobs list: sqlite:///:memory:: an in-memory database holds no jobs to show",
               "jobs", "--store", "sqlite:///:memory:", "list");
  EXPECT_ERROR("jobs list: sqlite:///a%zz.db: a bad %XX escape in the path", "jobs", "--store",
               "sqlite:///a%zz.db", "list");
  EXPECT_ERROR("jobs list: sqlite:///a.db?mode=ro: unknown parameter 'mode' (sqlite URLs take "
               "timeout and table_prefix)",
               "jobs", "--store", "sqlite:///a.db?mode=ro", "list");
  EXPECT_ERROR("jobs list: sqlite:///a.db?timeout=soon: timeout: 'soon' is not a number of "
               "seconds from 0 to 3600",
               "jobs", "--store", "sqlite:///a.db?timeout=soon", "list");
  /* Only import creates a file: a typo in a path is not a new, empty store. */
  EXPECT_ERROR("jobs list: sqlite:///missing.db: cannot open 'missing.db': No such file or "
               "directory",
               "jobs", "--store", "sqlite:///missing.db", "list");
  EXPECT_ERROR("jobs pause: sqlite:////nonexistent-dir/x.db: cannot open '/nonexistent-dir/x.db': "
               "No such file or directory",
               "jobs", "--store", "sqlite:////nonexistent-dir/x.db", "pause", "a");
  struct stat st;
  assert_int_not_equal(stat(in_dir("missing.db"), &st), 0);
#ifndef APSCHED_CLI_HAVE_JANSSON
  write_file(in_dir("empty.db"), "");
  EXPECT_ERROR("jobs export: this apsched was built without jansson (libjansson-dev), which "
               "export and import need",
               "jobs", "--store", "sqlite:///empty.db", "export");
#endif
#else
  EXPECT_ERROR("jobs list: --store: sqlite:///a.db: this apsched was built without the SQLite "
               "job store (libapsched-sqlite; it is built when SQLite 3, libsqlite3-dev, is "
               "found)",
               "jobs", "--store", "sqlite:///a.db", "list");
#endif
  /* The help documents the command. */
  char *help = ok_output(NULL, ARGS("jobs", "--help"));
  assert_non_null(strstr(help, "\nJOBS\n"));
  assert_non_null(strstr(help, "apsched jobs --store URL [--tz ZONE] list"));
  assert_non_null(strstr(help, "sqlite:////absolute/path.db"));
  free(help);
}

#ifdef APSCHED_CLI_HAVE_SQLITE

/* ------------------------------------------------------------ a store */

/* Runs of test.count (a persistent store keeps no pointer argument). */
static atomic_int runs;

static int count_job(apsched_run_ctx *run) {
  (void)run;
  atomic_fetch_add(&runs, 1);
  return 0;
}

static apsched_time_t fixed_now(void *ud) {
  (void)ud;
  return 1767225600LL * APSCHED_SEC; /* 2026-01-01T00:00:00Z */
}

static int64_t fixed_mono(void *ud) {
  (void)ud;
  return 1000 * APSCHED_SEC;
}

static apsched_trigger *parse_trigger(const char *text) {
  apsched_trigger *t;
  char err[256] = "";
  if (apsched_trigger_parse(text, &t, err, sizeof err) != APSCHED_OK) fail_msg("%s: %s", text, err);
  return t;
}

/* Opens path as a scheduler would (not external), in a scheduler started
 * paused at 2026-01-01T00:00:00Z, with an inline executor "pool" too. */
static apsched_scheduler *open_store(const char *path) {
  static const apsched_clock clock = {fixed_now, fixed_mono, NULL};
  apsched_config cfg = {.timezone = "UTC", .clock = &clock};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_sqlite_options o = {.path = path};
  apsched_jobstore *st;
  char err[256] = "";
  if (apsched_sqlite_store_create(&o, &st, err, sizeof err) != APSCHED_OK) fail_msg("%s", err);
  assert_int_equal(apsched_add_jobstore(s, st, "default"), APSCHED_OK);
  apsched_executor *ex;
  assert_int_equal(apsched_inline_executor_create(&ex), APSCHED_OK);
  assert_int_equal(apsched_add_executor(s, ex, "pool"), APSCHED_OK);
  assert_int_equal(apsched_start_hosted(s, true), APSCHED_OK);
  return s;
}

/* Three jobs in path:
 *   alpha  every hour from 2026-01-01, name "Alpha job", byte argument, every
 *          option and schedule policy set (4 failed runs counted), executor "pool"
 *   beta   cron hour=2 UTC, all defaults (its name is the function's)
 *   gamma  a date in 2030, paused */
static void seed_store(const char *path) {
  assert_int_equal(apsched_register_func("test.count", count_job), APSCHED_OK);
  apsched_scheduler *s = open_store(path);
  apsched_trigger *hourly = parse_trigger("interval[hours=1, start_date='2026-01-01T00:00:00Z']");
  apsched_trigger *nightly = parse_trigger(
      "cron[year='*', month='*', day='*', week='*', day_of_week='*', hour='2', minute='0', "
      "second='0', timezone='UTC']");
  apsched_trigger *once = parse_trigger("date[run_date='2030-01-01T00:00:00Z']");
  const char bytes[] = {'h', 'i', '\0', '\xff'};
  apsched_job_options jobs[3] = {
      {.id = "alpha", .name = "Alpha job", .func_name = "test.count", .trigger = hourly,
       .executor = "pool", .arg_bytes = bytes, .arg_len = sizeof bytes, .max_instances = 3,
       .misfire_grace_time = APSCHED_GRACE_UNLIMITED, .max_runtime = 2500 * APSCHED_MSEC,
       .coalesce = APSCHED_NO, .delivery = APSCHED_AT_LEAST_ONCE,
       .overlap = APSCHED_OVERLAP_ALLOW_ALL, .catchup_window = 90 * APSCHED_SEC,
       .pause_after_failures = 5, .failures = 4},
      {.id = "beta", .func_name = "test.count", .trigger = nightly},
      {.id = "gamma", .func_name = "test.count", .trigger = once, .paused = true},
  };
  size_t failed;
  assert_int_equal(apsched_add_jobs(s, jobs, 3, &failed), APSCHED_OK);
  apsched_trigger_free(hourly);
  apsched_trigger_free(nightly);
  apsched_trigger_free(once);
  apsched_free(s);
}

#define HOURLY "interval[hours=1, start_date='2026-01-01T00:00:00Z']"
#define NIGHTLY                                                                             \
  "cron[year='*', month='*', day='*', week='*', day_of_week='*', hour='2', minute='0', " \
  "second='0', timezone='UTC']"
#define ONCE "date[run_date='2030-01-01T00:00:00Z']"
#define ALPHA_POLICIES "overlap=allow_all, catchup_window=90s, pause_after_failures=5"

#define LIST_SEEDED                                                \
  "alpha\tAlpha job\t" HOURLY "\t2026-01-01T00:00:00Z\n"          \
  "beta\ttest.count\t" NIGHTLY "\t2026-01-01T02:00:00Z\n"         \
  "gamma\ttest.count\t" ONCE "\tpaused\n"

/* ------------------------------------------- list, show, pause, resume, remove */

static void test_list_show_pause_resume_remove(void **state) {
  (void)state;
  seed_store(in_dir("jobs.db"));
  char abs_url[300];
  snprintf(abs_url, sizeof abs_url, "sqlite:///%s", in_dir("jobs.db")); /* four slashes */
  assert_non_null(strstr(abs_url, "sqlite:////tmp/"));

  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", "sqlite:///jobs.db", "list");
  EXPECT_OUT(LIST_SEEDED, "jobs", "list", "--store", abs_url);
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", "sqlite:///jobs.db?timeout=2&table_prefix=apsched_",
             "list");
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", "SQLite:///%6aobs.db", "list"); /* %6a: 'j' */
  /* --tz: the zone run times are shown in */
  EXPECT_OUT("alpha\tAlpha job\t" HOURLY "\t2026-01-01T09:00:00+09:00\n"
             "beta\ttest.count\t" NIGHTLY "\t2026-01-01T11:00:00+09:00\n"
             "gamma\ttest.count\t" ONCE "\tpaused\n",
             "jobs", "--store", "sqlite:///jobs.db", "list", "--tz", "Asia/Tokyo");
  /* Another table prefix: no jobs there. */
  EXPECT_OUT("", "jobs", "--store", "sqlite:///jobs.db?table_prefix=other_", "list");

  EXPECT_OUT("id: alpha\n"
             "name: Alpha job\n"
             "func: test.count\n"
             "trigger: " HOURLY "\n"
             "executor: pool\n"
             "args_base64: aGkA/w== (4 bytes)\n"
             "misfire_grace_time: unlimited\n"
             "coalesce: false\n"
             "delivery: at_least_once\n"
             "max_instances: 3\n"
             "max_runtime: 2.5 s\n"
             "policies: " ALPHA_POLICIES "\n"
             "failures: 4 in a row (paused at 5)\n"
             "next_run_time: 2026-01-01T00:00:00Z\n"
             "paused: false\n",
             "jobs", "--store", "sqlite:///jobs.db", "show", "alpha");
  EXPECT_OUT("id: gamma\n"
             "name: test.count\n"
             "func: test.count\n"
             "trigger: " ONCE "\n"
             "executor: default\n"
             "args_base64: (none)\n"
             "misfire_grace_time: 1 s\n"
             "coalesce: true\n"
             "delivery: at_most_once\n"
             "max_instances: 1\n"
             "max_runtime: none\n"
             "next_run_time: none\n"
             "paused: true\n",
             "jobs", "--store", "sqlite:///jobs.db", "show", "gamma");

  EXPECT_OUT("", "jobs", "--store", "sqlite:///jobs.db", "pause", "beta");
  EXPECT_OUT("", "jobs", "--store", "sqlite:///jobs.db", "resume", "gamma");
  EXPECT_OUT("alpha\tAlpha job\t" HOURLY "\t2026-01-01T00:00:00Z\n"
             "gamma\ttest.count\t" ONCE "\t2030-01-01T00:00:00Z\n"
             "beta\ttest.count\t" NIGHTLY "\tpaused\n",
             "jobs", "--store", "sqlite:///jobs.db", "list");
  EXPECT_OUT("", "jobs", "--store", "sqlite:///jobs.db", "remove", "alpha");
  EXPECT_OUT("gamma\ttest.count\t" ONCE "\t2030-01-01T00:00:00Z\n"
             "beta\ttest.count\t" NIGHTLY "\tpaused\n",
             "jobs", "--store", "sqlite:///jobs.db", "list");

  /* The changes are in the file, for any program that opens it. */
  apsched_scheduler *s = open_store(in_dir("jobs.db"));
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "beta", NULL, &j), APSCHED_OK);
  assert_true(j->paused);
  apsched_job_free(j);
  assert_int_equal(apsched_get_job(s, "alpha", NULL, &j), APSCHED_ENOENT);
  apsched_free(s);

  /* A job that is not there: one line naming the job and the store. */
  EXPECT_ERROR("jobs pause: no job 'alpha' in sqlite:///jobs.db", "jobs", "--store",
               "sqlite:///jobs.db", "pause", "alpha");
  EXPECT_ERROR("jobs resume: no job 'nope' in sqlite:///jobs.db", "jobs", "--store",
               "sqlite:///jobs.db", "resume", "nope");
  EXPECT_ERROR("jobs remove: no job 'nope' in sqlite:///jobs.db", "jobs", "--store",
               "sqlite:///jobs.db", "remove", "nope");
  EXPECT_ERROR("jobs show: no job 'nope' in sqlite:///jobs.db", "jobs", "--store",
               "sqlite:///jobs.db", "show", "nope");

  /* Resuming a job whose trigger has no run left removes it, and says so. */
  s = open_store(in_dir("jobs.db"));
  apsched_trigger *over = parse_trigger(
      "interval[hours=1, start_date='2020-01-01T00:00:00Z', end_date='2020-01-02T00:00:00Z']");
  apsched_job_options o = {.id = "old", .func_name = "test.count", .trigger = over, .paused = true};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(over);
  apsched_free(s);
  cli_result r;
  run_in(&r, NULL, ARGS("jobs", "--store", "sqlite:///jobs.db", "resume", "old"));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out.data, "");
  assert_string_equal(r.err.data,
                      "apsched: jobs resume: job 'old' has no run left: it was removed\n");
  result_free(&r);
  EXPECT_OUT("gamma\ttest.count\t" ONCE "\t2030-01-01T00:00:00Z\n"
             "beta\ttest.count\t" NIGHTLY "\tpaused\n",
             "jobs", "--store", "sqlite:///jobs.db", "list");
}

/* A name with a newline or a tab stays on its line. */
static void test_control_characters_are_escaped(void **state) {
  (void)state;
  apsched_scheduler *s = open_store(in_dir("names.db"));
  assert_int_equal(apsched_register_func("test.count", count_job), APSCHED_OK);
  apsched_trigger *once = parse_trigger(ONCE);
  apsched_job_options o = {.id = "n", .name = "two\nlines\tand a tab", .func_name = "test.count",
                           .trigger = once};
  assert_int_equal(apsched_add_job(s, &o, NULL, 0), APSCHED_OK);
  apsched_trigger_free(once);
  apsched_free(s);
  EXPECT_OUT("n\ttwo\\x0alines\\x09and a tab\t" ONCE "\t2030-01-01T00:00:00Z\n", "jobs",
             "--store", "sqlite:///names.db", "list");
#ifdef APSCHED_CLI_HAVE_JANSSON
  /* JSON holds UTF-8 only: a Latin-1 name stops the export, naming the job
   * and the field, before anything is written. */
  s = open_store(in_dir("names.db"));
  once = parse_trigger(ONCE);
  apsched_job_options latin1 = {.id = "cafe", .name = "caf\xe9", .func_name = "test.count",
                                .trigger = once};
  assert_int_equal(apsched_add_job(s, &latin1, NULL, 0), APSCHED_OK);
  apsched_trigger_free(once);
  apsched_free(s);
  EXPECT_ERROR("jobs export: job 'cafe': its name is not UTF-8 text, which JSON cannot hold",
               "jobs", "--store", "sqlite:///names.db", "export");
#endif
}

/* ----------------------------------------------------- a locked database */

static void test_locked_database(void **state) {
  (void)state;
  seed_store(in_dir("locked.db"));
  sqlite3 *db;
  assert_int_equal(sqlite3_open(in_dir("locked.db"), &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
  cli_result r;
  const char *const *args =
      ARGS("jobs", "--store", "sqlite:///locked.db?timeout=0.2", "pause", "beta");
  run_in(&r, NULL, args);
  if (r.status != 2 || !strstr(r.err.data, "locked")) show_failure(args, &r);
  assert_int_equal(r.status, 2);
  assert_string_equal(r.out.data, "");
  /* One line, naming the command, the job and the store, and why. */
  assert_true(strncmp(r.err.data, "apsched: jobs pause: ", 21) == 0);
  assert_non_null(strstr(r.err.data, "sqlite:///locked.db"));
  assert_non_null(strstr(r.err.data, "locked"));
  assert_ptr_equal(strchr(r.err.data, '\n'), r.err.data + r.err.len - 1);
  result_free(&r);
  assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", "sqlite:///locked.db", "list");
}

/* A row the store cannot decode: listed and shown with why, refused by
 * pause and resume, exported as stored (with a note), removable. */
static void test_broken_row(void **state) {
  (void)state;
  seed_store(in_dir("broken.db"));
  sqlite3 *db;
  assert_int_equal(sqlite3_open(in_dir("broken.db"), &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "UPDATE apsched_jobs SET \"trigger\" = 'bogus[x=1]' "
                                    "WHERE id = 'beta'",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
#define WHY "trigger 'bogus[x=1]': unknown trigger kind 'bogus'"
  EXPECT_OUT("alpha\tAlpha job\t" HOURLY "\t2026-01-01T00:00:00Z\n"
             "beta\ttest.count\tbogus[x=1]\tbroken: " WHY "\n"
             "gamma\ttest.count\t" ONCE "\tpaused\n",
             "jobs", "--store", "sqlite:///broken.db", "list");
  char *shown = ok_output(NULL, ARGS("jobs", "--store", "sqlite:///broken.db", "show", "beta"));
  static const char shown_head[] =
      "id: beta\nname: test.count\nfunc: test.count\ntrigger: bogus[x=1]\n";
  assert_true(strncmp(shown, shown_head, strlen(shown_head)) == 0);
  assert_non_null(strstr(shown, "\nnext_run_time: none\npaused: true\nbroken: " WHY "\n"));
  free(shown);
  EXPECT_ERROR("jobs pause: job 'beta' in sqlite:///broken.db cannot be decoded (" WHY
               "): only remove works on it",
               "jobs", "--store", "sqlite:///broken.db", "pause", "beta");
  EXPECT_ERROR("jobs resume: job 'beta' in sqlite:///broken.db cannot be decoded (" WHY
               "): only remove works on it",
               "jobs", "--store", "sqlite:///broken.db", "resume", "beta");
#ifdef APSCHED_CLI_HAVE_JANSSON
  cli_result r;
  run_in(&r, NULL, ARGS("jobs", "--store", "sqlite:///broken.db", "export"));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err.data,
                      "apsched: jobs export: job 'beta' cannot be decoded (" WHY
                      "): it is exported as stored, with \"broken\", and import refuses it "
                      "until it is fixed\n");
  assert_non_null(strstr(r.out.data, "\"trigger\": \"bogus[x=1]\",\n"));
  assert_non_null(strstr(r.out.data, "\"paused\": true,\n      \"broken\": \"" WHY "\"\n"));
  write_file(in_dir("broken.json"), r.out.data);
  result_free(&r);
  expect_error_in(NULL,
                  "jobs import: broken.json: jobs[1].broken: job 'beta' could not be decoded in "
                  "the store it came from (" WHY "): fix its trigger and drop \"broken\", or "
                  "leave the job out",
                  false, ARGS("jobs", "--store", "sqlite:///fixed.db", "import", "broken.json"));
#endif
  EXPECT_OUT("", "jobs", "--store", "sqlite:///broken.db", "remove", "beta");
  EXPECT_OUT("alpha\tAlpha job\t" HOURLY "\t2026-01-01T00:00:00Z\n"
             "gamma\ttest.count\t" ONCE "\tpaused\n",
             "jobs", "--store", "sqlite:///broken.db", "list");
#undef WHY
}

#ifdef APSCHED_CLI_HAVE_JANSSON

/* ---------------------------------------------------- export and import */

static void test_export_import_round_trip(void **state) {
  (void)state;
  seed_store(in_dir("from.db"));
  char *exported = ok_output(NULL, ARGS("jobs", "--store", "sqlite:///from.db", "export"));
  static const char alpha_json[] =
      "    {\n"
      "      \"id\": \"alpha\",\n"
      "      \"name\": \"Alpha job\",\n"
      "      \"func\": \"test.count\",\n"
      "      \"trigger\": \"interval[hours=1, start_date='2026-01-01T00:00:00Z']\",\n"
      "      \"executor\": \"pool\",\n"
      "      \"args_base64\": \"aGkA/w==\",\n"
      "      \"misfire_grace_time\": null,\n"
      "      \"coalesce\": false,\n"
      "      \"max_instances\": 3,\n"
      "      \"max_runtime\": 2.5,\n"
      "      \"delivery\": \"at_least_once\",\n"
      "      \"policies\": \"" ALPHA_POLICIES "\",\n"
      "      \"failures\": 4,\n"
      "      \"next_run_time\": \"2026-01-01T00:00:00Z\",\n"
      "      \"paused\": false\n"
      "    },\n";
  if (!strstr(exported, alpha_json)) fprintf(stderr, "export:\n%s", exported);
  static const char head[] =
      "{\n  \"version\": 1,\n  \"jobs\": [\n    {\n      \"id\": \"alpha\",\n";
  assert_true(strncmp(exported, head, strlen(head)) == 0);
  assert_non_null(strstr(exported, alpha_json));
  assert_non_null(strstr(exported, "\"next_run_time\": null,\n      \"paused\": true\n"));
  write_file(in_dir("jobs.json"), exported);

  /* Into a new file (import creates it), from a file argument. */
  EXPECT_OUT("", "jobs", "--store", "sqlite:///to.db", "import", "jobs.json");
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", "sqlite:///to.db", "list");
  const char *ids[] = {"alpha", "beta", "gamma"};
  for (int i = 0; i < 3; i++) {
    char *a = ok_output(NULL, ARGS("jobs", "--store", "sqlite:///from.db", "show", ids[i]));
    char *b = ok_output(NULL, ARGS("jobs", "--store", "sqlite:///to.db", "show", ids[i]));
    assert_string_equal(a, b);
    free(a);
    free(b);
  }
  char *again = ok_output(NULL, ARGS("jobs", "--store", "sqlite:///to.db", "export"));
  assert_string_equal(again, exported);
  free(again);

  /* From stdin, into a third file, with "-". */
  const char *stdin_forms[2][6] = {{"jobs", "--store", "sqlite:///third.db", "import", NULL},
                                   {"jobs", "--store", "sqlite:///fourth.db", "import", "-"}};
  for (int f = 0; f < 2; f++) {
    char *out = ok_output(in_dir("jobs.json"), stdin_forms[f]);
    assert_string_equal(out, "");
    free(out);
    char *list = ok_output(NULL, ARGS("jobs", "--store", stdin_forms[f][2], "list"));
    assert_string_equal(list, LIST_SEEDED);
    free(list);
  }

  /* Again into to.db: every id is taken; nothing changes. */
  EXPECT_OUT("", "jobs", "--store", "sqlite:///to.db", "pause", "alpha");
  expect_error_in(NULL,
                  "jobs import: jobs[0] (id 'alpha'): id: 'alpha' is already used by a job in "
                  "'sqlite:///to.db'; nothing was imported into sqlite:///to.db",
                  false, ARGS("jobs", "--store", "sqlite:///to.db", "import", "jobs.json"));
  char *paused_list = ok_output(NULL, ARGS("jobs", "--store", "sqlite:///to.db", "list"));
  assert_non_null(strstr(paused_list, "alpha\tAlpha job\t" HOURLY "\tpaused\n"));
  free(paused_list);
  /* --replace: the file's jobs replace the store's. */
  EXPECT_OUT("", "jobs", "--store", "sqlite:///to.db", "import", "--replace", "jobs.json");
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", "sqlite:///to.db", "list");
  free(exported);

  /* A minimal hand-written job: defaults, and a first run from the trigger. */
  write_file(in_dir("min.json"),
             "{\"version\": 1, \"jobs\": [{\"id\": \"m\", \"func\": \"f\", \"trigger\": \"" ONCE
             "\"}]}");
  EXPECT_OUT("", "jobs", "--store", "sqlite:///min.db", "import", "min.json");
  EXPECT_OUT("m\tf\t" ONCE "\t2030-01-01T00:00:00Z\n", "jobs", "--store", "sqlite:///min.db",
             "list");
  /* null misfire_grace_time: no limit; a fractional max_runtime */
  write_file(in_dir("min2.json"),
             "{\"version\": 1, \"jobs\": [{\"id\": \"m2\", \"func\": \"f\", \"trigger\": \"" ONCE
             "\", \"misfire_grace_time\": null, \"max_runtime\": 0.25, \"args_base64\": \"\", "
             "\"policies\": \"\", \"failures\": null}]}");
  EXPECT_OUT("", "jobs", "--store", "sqlite:///min.db", "import", "min2.json");
  char *shown = ok_output(NULL, ARGS("jobs", "--store", "sqlite:///min.db", "show", "m2"));
  assert_non_null(strstr(shown, "\nargs_base64: (none)\nmisfire_grace_time: unlimited\n"));
  assert_non_null(strstr(shown, "\nmax_runtime: 0.25 s\n"));
  assert_null(strstr(shown, "policies"));  /* "": the defaults, as when left out */
  free(shown);
}

/* Bad input names the job and the field; nothing is imported. */
static void test_import_errors(void **state) {
  (void)state;
  seed_store(in_dir("target.db"));
  static const struct {
    const char *json, *error;
  } cases[] = {
      {"", "jobs import: bad.json:"},
      {"{\"version\": 1, \"jobs\": [] ", "jobs import: bad.json:1:"},
      {"[]", "jobs import: bad.json: not a JSON object {\"version\": 1, \"jobs\": [...]}"},
      {"{\"jobs\": []}", "jobs import: bad.json: version: missing"},
      {"{\"version\": 2, \"jobs\": []}",
       "jobs import: bad.json: version: not 1, the only version this apsched reads"},
      {"{\"version\": 1}", "jobs import: bad.json: jobs: missing"},
      {"{\"version\": 1, \"jobs\": {}}", "jobs import: bad.json: jobs: not an array"},
      {"{\"version\": 1, \"jobs\": [], \"extra\": 1}",
       "jobs import: bad.json: unknown field 'extra' (fields: version, jobs)"},
      {"{\"version\": 1, \"jobs\": [7]}", "jobs import: bad.json: jobs[0]: not an object"},
      {"{\"version\": 1, \"jobs\": [{\"func\": \"f\", \"trigger\": \"" ONCE "\"}]}",
       "jobs import: bad.json: jobs[0].id: missing"},
      {"{\"version\": 1, \"jobs\": [{\"id\": 5, \"func\": \"f\", \"trigger\": \"" ONCE "\"}]}",
       "jobs import: bad.json: jobs[0].id: not a string"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\"}, {\"id\": \"b\", \"trigger\": \"" ONCE "\"}]}",
       "jobs import: bad.json: jobs[1].func: missing"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": null, \"trigger\": \"" ONCE "\"}]}",
       "jobs import: bad.json: jobs[0].func: null: the job's function has no name (it was added "
       "by pointer), so no other program can run it"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\"}]}",
       "jobs import: bad.json: jobs[0].trigger: missing"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", "
       "\"trigger\": \"cron[hour='25']\"}]}",
       "jobs import: bad.json: jobs[0].trigger: "},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"colaesce\": true}]}",
       "jobs import: bad.json: jobs[0]: unknown field 'colaesce' (fields: id, name, func, "
       "trigger, executor, args_base64, misfire_grace_time, coalesce, max_instances, "
       "max_runtime, delivery, policies, failures, next_run_time, paused)"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"policies\": \"overlap=sometimes, pause_after_failures=3\"}]}",
       "jobs import: bad.json: jobs[0].policies: job 'a': 'overlap=sometimes, "
       "pause_after_failures=3': overlap 'sometimes' is not skip, buffer_one, buffer_all, "
       "cancel_other, terminate_other or allow_all"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"policies\": \"retries=3\"}]}",
       "jobs import: bad.json: jobs[0].policies: job 'a': 'retries=3': unknown key 'retries' "
       "(overlap, catchup_window, pause_after_failures)"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"policies\": 3}]}",
       "jobs import: bad.json: jobs[0].policies: job 'a': not a string"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"failures\": -1}]}",
       "jobs import: bad.json: jobs[0].failures: job 'a': not a whole number from 0 to 65535"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"delivery\": \"exactly_once\"}]}",
       "jobs import: bad.json: jobs[0].delivery: 'exactly_once' is neither at_most_once nor "
       "at_least_once"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"coalesce\": \"yes\"}]}",
       "jobs import: bad.json: jobs[0].coalesce: not true or false"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"max_instances\": 0}]}",
       "jobs import: bad.json: jobs[0].max_instances: not a whole number from 1 to 65535"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"max_instances\": 1.5}]}",
       "jobs import: bad.json: jobs[0].max_instances: not a whole number from 1 to 65535"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"misfire_grace_time\": -1}]}",
       "jobs import: bad.json: jobs[0].misfire_grace_time: not a number of seconds above 0 (or "
       "null)"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"max_runtime\": \"1s\"}]}",
       "jobs import: bad.json: jobs[0].max_runtime: not a number of seconds above 0 (or null)"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"args_base64\": \"aGk\"}]}",
       "jobs import: bad.json: jobs[0].args_base64: not base64 text"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"next_run_time\": \"tomorrow\"}]}",
       "jobs import: bad.json: jobs[0].next_run_time: "},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\", \"paused\": true, \"next_run_time\": \"2030-01-01T00:00:00Z\"}]}",
       "jobs import: bad.json: jobs[0].next_run_time: a paused job has none (null)"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"func\": \"f\", \"trigger\": \"bogus[x=1]\", "
       "\"broken\": \"unknown trigger kind\"}]}",
       "jobs import: bad.json: jobs[0].broken: job 'a' could not be decoded in the store it came "
       "from (unknown trigger kind): fix its trigger and drop \"broken\", or leave the job out"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"x\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\"}, {\"id\": \"y\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\"}, {\"id\": \"x\", \"func\": \"f\", \"trigger\": \"" ONCE "\"}]}",
       "jobs import: bad.json: jobs[2].id: 'x' is also the id of jobs[0]"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"a\", \"id\": \"b\", \"func\": \"f\"}]}",
       "jobs import: bad.json:1:"},
      /* Refused by the library when the batch is added: all or nothing. */
      {"{\"version\": 1, \"jobs\": [{\"id\": \"new\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\"}, {\"id\": \"beta\", \"func\": \"f\", \"trigger\": \"" ONCE "\"}]}",
       "jobs import: jobs[1] (id 'beta'): id: 'beta' is already used by a job in "
       "'sqlite:///target.db'; nothing was imported into sqlite:///target.db"},
      {"{\"version\": 1, \"jobs\": [{\"id\": \"new\", \"func\": \"f\", \"trigger\": \"" ONCE
       "\"}, {\"id\": \"bad\\u0001id\", \"func\": \"f\", \"trigger\": \"" ONCE "\"}]}",
       "jobs import: jobs[1] (id 'bad\001id'): id: "},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_file(in_dir("bad.json"), cases[i].json);
    size_t len = strlen(cases[i].error);
    bool prefix = cases[i].error[len - 1] == ' ' || cases[i].error[len - 1] == ':';
    expect_error_in(NULL, cases[i].error, prefix,
                    ARGS("jobs", "--store", "sqlite:///target.db", "import", "bad.json"));
  }
  /* From stdin: named so. */
  write_file(in_dir("bad.json"), "{\"version\": 1, \"jobs\": [{\"id\": \"a\"}]}");
  expect_error_in(in_dir("bad.json"), "jobs import: stdin: jobs[0].func: missing", false,
                  ARGS("jobs", "--store", "sqlite:///target.db", "import"));
  expect_error_in(NULL, "jobs import: nothing.json: ", true,
                  ARGS("jobs", "--store", "sqlite:///target.db", "import", "nothing.json"));
  /* Nothing was imported; a bad input never created a store either. */
  EXPECT_OUT(LIST_SEEDED, "jobs", "--store", "sqlite:///target.db", "list");
  struct stat st;
  expect_error_in(NULL, "jobs import: bad.json: ", true,
                  ARGS("jobs", "--store", "sqlite:///never.db", "import", "bad.json"));
  assert_int_not_equal(stat(in_dir("never.db"), &st), 0);
}

#endif /* APSCHED_CLI_HAVE_JANSSON */

/* ------------------------------- a scheduler running on the same file */

static apsched_time_t real_now(void) { return apsched_now(); }

/* Processes the hosted scheduler for up to ms milliseconds, or until runs
 * reaches want (want < 0: the whole time). */
static void process_for(apsched_scheduler *s, int want, int ms) {
  apsched_time_t end = real_now() + ms * APSCHED_MSEC;
  while (real_now() < end && (want < 0 || atomic_load(&runs) < want)) {
    struct pollfd p = {apsched_fd(s), POLLIN, 0};
    poll(&p, 1, 50);
    int64_t wait;
    assert_int_equal(apsched_process(s, &wait), APSCHED_OK);
  }
}

static void test_running_scheduler_sees_cli_pause(void **state) {
  (void)state;
  assert_int_equal(apsched_register_func("test.count", count_job), APSCHED_OK);
  /* A scheduler that runs jobs, hosted in this thread, max_wait 200 ms. */
  apsched_config cfg = {.timezone = "UTC", .max_wait = 200 * APSCHED_MSEC};
  apsched_scheduler *s;
  assert_int_equal(apsched_create(&cfg, &s), APSCHED_OK);
  apsched_sqlite_options o = {.path = in_dir("live.db")};
  apsched_jobstore *st;
  char err[256] = "";
  if (apsched_sqlite_store_create(&o, &st, err, sizeof err) != APSCHED_OK) fail_msg("%s", err);
  assert_int_equal(apsched_add_jobstore(s, st, "default"), APSCHED_OK);
  atomic_store(&runs, 0);
  apsched_interval_options every = {.microseconds = 300 * APSCHED_MSEC,
                                    .start_date = real_now() + 100 * APSCHED_MSEC};
  apsched_trigger *t;
  assert_int_equal(apsched_trigger_interval(&every, &t, NULL, 0), APSCHED_OK);
  apsched_job_options job = {.id = "tick", .func_name = "test.count", .trigger = t};
  assert_int_equal(apsched_add_job(s, &job, NULL, 0), APSCHED_OK);
  apsched_trigger_free(t);
  assert_int_equal(apsched_start_hosted(s, false), APSCHED_OK);
  process_for(s, 2, 10000);
  assert_true(atomic_load(&runs) >= 2);

  /* The tool works on the file while the scheduler runs jobs from it. */
  char *list = ok_output(NULL, ARGS("jobs", "--store", "sqlite:///live.db", "list"));
  assert_true(strncmp(list, "tick\ttest.count\tinterval[", 25) == 0);
  assert_null(strstr(list, "paused"));
  free(list);
  EXPECT_OUT("", "jobs", "--store", "sqlite:///live.db", "pause", "tick");

  /* Within max_wait the scheduler sees the pause: at most a run it had
   * already claimed, then none. */
  int at_pause = atomic_load(&runs);
  process_for(s, -1, 1000);
  int settled = atomic_load(&runs);
  assert_true(settled <= at_pause + 1);
  process_for(s, -1, 1200);
  assert_int_equal(atomic_load(&runs), settled);
  apsched_job *j;
  assert_int_equal(apsched_get_job(s, "tick", NULL, &j), APSCHED_OK);
  assert_true(j->paused);
  apsched_job_free(j);
  list = ok_output(NULL, ARGS("jobs", "--store", "sqlite:///live.db", "list"));
  assert_non_null(strstr(list, "\tpaused\n"));
  free(list);

  /* Resumed by the tool: it runs again. */
  EXPECT_OUT("", "jobs", "--store", "sqlite:///live.db", "resume", "tick");
  process_for(s, settled + 2, 10000);
  assert_true(atomic_load(&runs) >= settled + 2);

#ifdef APSCHED_CLI_HAVE_JANSSON
  /* A job imported by the tool is run by the scheduler (its function is
   * the one registered here, not the tool's stand-in). */
  EXPECT_OUT("", "jobs", "--store", "sqlite:///live.db", "pause", "tick");
  process_for(s, -1, 600);
  int before = atomic_load(&runs);
  char start[64], json[512];
  assert_true(apsched_time_format(real_now() + 200 * APSCHED_MSEC, NULL, start, sizeof start) > 0);
  snprintf(json, sizeof json,
           "{\"version\": 1, \"jobs\": [{\"id\": \"imported\", \"func\": \"test.count\", "
           "\"trigger\": \"interval[microseconds=300000, start_date='%s']\"}]}",
           start);
  write_file(in_dir("live.json"), json);
  EXPECT_OUT("", "jobs", "--store", "sqlite:///live.db", "import", "live.json");
  process_for(s, before + 2, 10000);
  assert_true(atomic_load(&runs) >= before + 2);
  assert_int_equal(apsched_get_job(s, "imported", NULL, &j), APSCHED_OK);
  assert_false(j->paused);
  apsched_job_free(j);
#endif
  apsched_free(s);
}

#endif /* APSCHED_CLI_HAVE_SQLITE */

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_usage_and_url_errors),
#ifdef APSCHED_CLI_HAVE_SQLITE
      cmocka_unit_test(test_list_show_pause_resume_remove),
      cmocka_unit_test(test_control_characters_are_escaped),
      cmocka_unit_test(test_locked_database),
      cmocka_unit_test(test_broken_row),
#ifdef APSCHED_CLI_HAVE_JANSSON
      cmocka_unit_test(test_export_import_round_trip),
      cmocka_unit_test(test_import_errors),
#endif
      cmocka_unit_test(test_running_scheduler_sees_cli_pause),
#endif
  };
  return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
