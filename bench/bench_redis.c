/* Redis job store benchmark (libapsched-redis), one JSON object per line.
 * It starts a private redis-server of its own (tests/redis_server.h: a
 * temporary directory, a unix socket there only) with appendonly yes and
 * appendfsync everysec. Every scheduler is a process of its own (this
 * program again, exec'd with --child), a hosted scheduler with the inline
 * executor on one key prefix of that server; the job counts its run in
 * shared memory and does nothing else.
 *
 *   redis_server       the server's version and persistence settings;
 *   redis_dispatch     runs/s with 1 and 3 scheduler processes when --jobs
 *                      (10^5) jobs are due at once (hourly interval jobs,
 *                      due a second ago, at most once), from the moment the
 *                      paused schedulers are resumed until the last run
 *                      started; each job must run exactly once;
 *   redis_adds         jobs added per second by one scheduler: "batch"
 *                      (apsched_add_jobs, 1000 jobs a call) over --jobs
 *                      jobs, "single" (apsched_add_job) over a tenth of them;
 *   redis_accounting   what a claimed run costs the server, with 1 and with
 *                      the most processes, over at most 20,000 jobs: round
 *                      trips (commands sent by the schedulers, from MONITOR:
 *                      the lines not issued by a script) per run and by
 *                      command, every command the server executed (INFO
 *                      commandstats deltas, the scripts' own calls
 *                      included) per run, and the server's time in the
 *                      store's scripts per run (EVALSHA's usec: the bound
 *                      of a single-threaded server, whatever the number
 *                      of schedulers), and its CPU time per run, all of it
 *                      and its main thread's (INFO cpu: the scripts, the
 *                      HGETALLs, the sockets, the AOF; it moves less with
 *                      the machine's load than a rate does), next to the
 *                      scheduler processes' CPU time per run (/proc);
 *   redis_raw          redis-benchmark on the same socket, with as many
 *                      clients as scheduler processes: SET, ZADD, HSET
 *                      (one round trip, one write each) and an EVAL of a
 *                      script making one HSET and one ZADD, the smallest
 *                      script doing a run's writes (a claimed run costs at
 *                      least a hash write and a sorted set write).
 *
 *   redis_wakeup       process A (this one, a paused scheduler on the
 *                      prefix) adds a job due now, process B (an idle
 *                      scheduler, default max_wait of 1 s) runs it: us from
 *                      the call of apsched_add_job until the job starts
 *                      (PUBLISH woke B), p50 / p99 / max over --samples adds;
 *   redis_wait_handoff, runs that wait under the prefix (overlap
 *   redis_cancel_reach  policies): bench_waits.h, --samples (500) each.
 *
 *   bench_redis [--quick] [--only=dispatch,adds,accounting,raw,wakeup,waits]
 *               [--jobs=N] [--reps=N] [--procs=1,3] [--samples=N]
 *               [-- COMMAND [ARG...]]
 *
 * Throughputs are the median of --reps repetitions (default 3) with min and
 * max, each on a fresh prefix (the server is emptied after each); every
 * line carries the load average when it was printed. --quick is the smoke
 * run of tools/test.sh: 2,000 jobs, one repetition.
 *
 * After its own lines, COMMAND (bench/run.sh: apscheduler_redis_bench.py)
 * runs against the same server, with the socket's path in
 * APSCHED_REDIS_SOCKET and its URL in APSCHED_REDIS_URL; its output follows
 * on stdout and its exit status is bench_redis's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* before the first system header: memfd_create, pipe2, nftw */
#endif
#define BENCH_NAME "bench_redis"
#include "bench_procs.h"
#include "bench_waits.h"
#include "bench_wakeup.h"
#include "../tests/redis_server.h"

#include <apsched.h>
#include <apsched_redis.h>

#include <ctype.h>
#include <limits.h>
#include <pthread.h>

#define IMPL "libapsched"
#define FUNC "bench_redis.job"
#define CLAIM_BATCH 256 /* the scheduler's claimed batch (src/dispatch.c) */
#define ADD_BATCH 1000
#define ACCOUNTING_MAX_JOBS 20000

static void check(int rc, const char *what) {
  if (rc != APSCHED_OK)
    fail("%s failed: %s (%d): %s", what, apsched_strerror(rc), rc, apsched_last_error());
}

/* ---------------------------------------------------------- the job */

static int bench_job(apsched_run_ctx *run) {
  size_t len = 0;
  const unsigned char *a = apsched_run_arg_bytes(run, &len);
  if (!a || len != 4) {
    apsched_run_set_error(run, "the index argument did not come back from the store");
    return 1;
  }
  count_run(get_index(a));
  return 0;
}

/* ------------------------------------------------------- the store */

static const char *g_url; /* the server's, in a child the parent's */

static apsched_jobstore *store_on(const char *prefix, const char *name) {
  apsched_redis_options o = {.url = g_url, .prefix = prefix, .scheduler_name = name};
  apsched_jobstore *st;
  char err[512] = "";
  if (apsched_redis_store_create(&o, &st, err, sizeof err) != APSCHED_OK)
    fail("apsched_redis_store_create (prefix %s): %s", prefix, err);
  return st;
}

/* A store under the prefix (ud), for bench_waits. */
static apsched_jobstore *store_for_waits(void *ud) { return store_on(ud, "bench_redis-waits"); }

/* A hosted scheduler with the inline executor on the prefix, paused: a
 * blocking store's own thread claims and runs its due jobs once resumed. */
static apsched_scheduler *scheduler_on(const char *prefix, const char *name) {
  apsched_scheduler *s;
  check(apsched_create(&(apsched_config){.timezone = "UTC"}, &s), "apsched_create");
  check(apsched_add_jobstore(s, store_on(prefix, name), "default"), "apsched_add_jobstore");
  apsched_executor *ex;
  check(apsched_inline_executor_create(&ex), "apsched_inline_executor_create");
  check(apsched_add_executor(s, ex, "default"), "apsched_add_executor");
  check(apsched_start_hosted(s, true), "apsched_start_hosted");
  return s;
}

/* n jobs due a second ago (hourly interval, at most once, any lateness),
 * indices 0..n-1, batch jobs a call (1: apsched_add_job). Returns adds/s. */
static double add_due_jobs(const char *prefix, size_t n, size_t batch) {
  apsched_scheduler *s = scheduler_on(prefix, "bench_redis-adder");
  apsched_time_t due = apsched_now() - APSCHED_SEC;
  apsched_trigger *t;
  char err[256] = "";
  if (apsched_trigger_interval(&(apsched_interval_options){.hours = 1, .start_date = due}, &t, err,
                               sizeof err) != APSCHED_OK)
    fail("interval trigger: %s", err);
  static apsched_job_options opts[ADD_BATCH];
  static unsigned char args[ADD_BATCH][4];
  int64_t t0 = now_ns();
  for (size_t done = 0; done < n;) {
    size_t k = n - done < batch ? n - done : batch;
    for (size_t j = 0; j < k; j++) {
      put_index(args[j], (uint32_t)(done + j));
      opts[j] = (apsched_job_options){.func_name = FUNC, .trigger = t, .next_run_time = due,
                                      .misfire_grace_time = APSCHED_GRACE_UNLIMITED,
                                      .arg_bytes = args[j], .arg_len = 4};
    }
    if (k == 1) check(apsched_add_job(s, &opts[0], NULL, 0), "apsched_add_job");
    else check(apsched_add_jobs(s, opts, k, NULL), "apsched_add_jobs");
    done += k;
  }
  double rate = (double)n / (double)(now_ns() - t0) * 1e9;
  apsched_trigger_free(t);
  apsched_free(s);
  return rate;
}

/* ------------------------------------------ the server, through hiredis */

static redisContext *admin;

static redisReply *cmd(redisContext *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  if (!r) fail("'%s': %s", fmt, c->errstr);
  if (r->type == REDIS_REPLY_ERROR) fail("'%s': %s", fmt, r->str);
  return r;
}

/* A command of one word (FLUSHALL). */
static void cmd_run(const char *word) { freeReplyObject(cmd(admin, "%s", word)); }

/* The value of field name in an INFO section, as text ("" if missing). */
static void info_field(const char *section, const char *name, char *out, size_t len) {
  redisReply *r = cmd(admin, "INFO %s", section);
  out[0] = '\0';
  size_t nl = strlen(name);
  for (const char *p = r->str; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, name, nl) == 0 && p[nl] == ':') {
      size_t k = strcspn(p + nl + 1, "\r\n");
      snprintf(out, len, "%.*s", (int)k, p + nl + 1);
      break;
    }
  freeReplyObject(r);
}

static void config_get(const char *name, char *out, size_t len) {
  redisReply *r = cmd(admin, "CONFIG GET %s", name);
  snprintf(out, len, "%s",
           r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->str : "?");
  freeReplyObject(r);
}

static int prefix_seq;

static void new_prefix(char *buf, size_t len, const char *stem) {
  snprintf(buf, len, "bench_%s_%d", stem, prefix_seq++);
}

/* ------------------------------------------------------- child processes */

static size_t g_jobs;

static child spawn(const char *prefix) {
  child_fds fds;
  char a_jobs[24];
  snprintf(a_jobs, sizeof a_jobs, "%zu", g_jobs);
  char *argv[] = {(char *)"bench_redis", (char *)"--child", (char *)g_url, (char *)prefix,
                  fds.shm, a_jobs, fds.ready, fds.go, NULL};
  return spawn_child(argv, &fds);
}

/* --child URL PREFIX SHM_FD JOBS READY_FD GO_FD */
static int child_main(char **argv) {
  g_url = argv[2];
  shared_map(atoi(argv[4]), (size_t)atoll(argv[5]));
  int ready = atoi(argv[6]), go_fd = atoi(argv[7]);
  check(apsched_register_func(FUNC, bench_job), "apsched_register_func");
  apsched_scheduler *s = scheduler_on(argv[3], "bench_redis-sched");
  if (!child_ready_go(ready, go_fd)) return 2;
  check(apsched_resume(s), "apsched_resume");
  child_await_end(go_fd);
  apsched_free(s);
  return 0;
}

/* ------------------------------------------------- round trips (MONITOR) */

#define MON_CMDS 32
#define MON_END "bench_redis-monitor-end"

typedef struct monitor {
  redisContext *c;
  pthread_t thread;
  unsigned long client, script; /* commands sent by clients, run by scripts */
  char names[MON_CMDS][24];
  unsigned long calls[MON_CMDS]; /* client commands by name */
} monitor;

/* The command name of a MONITOR line: its first quoted word, upper case. */
static void monitor_count(monitor *m, const char *line) {
  const char *bracket = strchr(line, '[');
  if (!bracket) return;
  if (strstr(line, MON_END)) return;
  bool lua = strncmp(strchr(bracket, ' ') ? strchr(bracket, ' ') + 1 : "", "lua]", 4) == 0;
  if (lua) {
    m->script++;
    return;
  }
  m->client++;
  const char *q = strchr(line, '"');
  char name[24] = "";
  if (q) {
    size_t k = 0;
    for (q++; *q && *q != '"' && k + 1 < sizeof name; q++) name[k++] = (char)toupper((unsigned char)*q);
    name[k] = '\0';
  }
  for (int i = 0; i < MON_CMDS; i++) {
    if (!m->names[i][0]) snprintf(m->names[i], sizeof m->names[i], "%s", name);
    if (strcmp(m->names[i], name) == 0) {
      m->calls[i]++;
      return;
    }
  }
}

static void *monitor_main(void *arg) {
  monitor *m = arg;
  for (;;) {
    redisReply *r = NULL;
    if (redisGetReply(m->c, (void **)&r) != REDIS_OK || !r) fail("MONITOR: %s", m->c->errstr);
    bool end = r->type == REDIS_REPLY_STATUS && strstr(r->str, MON_END);
    if (r->type == REDIS_REPLY_STATUS && !end) monitor_count(m, r->str);
    freeReplyObject(r);
    if (end) return NULL;
  }
}

static void monitor_start(monitor *m) {
  memset(m, 0, sizeof *m);
  m->c = redis_server_connect();
  freeReplyObject(cmd(m->c, "MONITOR"));
  if (pthread_create(&m->thread, NULL, monitor_main, m) != 0) fail("pthread_create failed");
}

static void monitor_stop(monitor *m) {
  freeReplyObject(cmd(admin, "ECHO %s", MON_END));
  pthread_join(m->thread, NULL);
  redisFree(m->c);
}

/* Calls per command name from INFO commandstats (cmdstat_NAME:calls=N,...). */
typedef struct cmdstats {
  size_t n;
  char names[64][32];
  double calls[64];
  double script_usec; /* EVALSHA's time on the server, its scripts' calls included */
  double read_usec;   /* HGETALL's: the claimed jobs' hashes, read by the schedulers */
} cmdstats;

static void read_cmdstats(cmdstats *cs) {
  redisReply *r = cmd(admin, "INFO commandstats");
  cs->n = 0;
  cs->script_usec = cs->read_usec = 0;
  for (const char *p = r->str; p && *p && cs->n < 64; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    char name[32];
    double calls, usec;
    if (sscanf(p, "cmdstat_%31[^:]:calls=%lf,usec=%lf", name, &calls, &usec) == 3 &&
        strcmp(name, "evalsha") == 0)
      cs->script_usec = usec;
    if (sscanf(p, "cmdstat_%31[^:]:calls=%lf,usec=%lf", name, &calls, &usec) == 3 &&
        strcmp(name, "hgetall") == 0)
      cs->read_usec = usec;
    if (sscanf(p, "cmdstat_%31[^:]:calls=%lf", name, &calls) == 2 && strcmp(name, "info") != 0 &&
        strcmp(name, "config|resetstat") != 0 && strcmp(name, "monitor") != 0 &&
        strcmp(name, "echo") != 0) {
      snprintf(cs->names[cs->n], sizeof cs->names[cs->n], "%s", name);
      cs->calls[cs->n++] = calls;
    }
  }
  freeReplyObject(r);
}

/* The server's CPU time in seconds (INFO cpu: used_cpu_sys + used_cpu_user,
 * every thread of the process; main: its main thread's alone). */
static void read_server_cpu(double *all, double *main_thread) {
  redisReply *r = cmd(admin, "INFO cpu");
  double sys = 0, user = 0, msys = 0, muser = 0;
  for (const char *p = r->str; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    sscanf(p, "used_cpu_sys:%lf", &sys);
    sscanf(p, "used_cpu_user:%lf", &user);
    sscanf(p, "used_cpu_sys_main_thread:%lf", &msys);
    sscanf(p, "used_cpu_user_main_thread:%lf", &muser);
  }
  freeReplyObject(r);
  *all = sys + user;
  *main_thread = msys + muser;
}

/* A process's CPU time in seconds so far (/proc/PID/stat: utime + stime). */
static double process_cpu(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[len] = 0;
  const char *p = strrchr(buf, ')'); /* the name may hold spaces */
  unsigned long utime = 0, stime = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
    return 0;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* ---------------------------------------------------------- dispatch */

/* PLAIN: timed only; COUNTED: INFO commandstats deltas (g_acct.stats);
 * MONITORED: the client commands seen by MONITOR (g_acct.mon), which slows
 * the server down, hence a run of its own. */
typedef enum { PLAIN, COUNTED, MONITORED } rep_kind;

static struct {
  cmdstats stats;
  monitor mon;
  double rate; /* of the COUNTED run */
  double server_cpu, server_main_cpu; /* s, over the COUNTED run */
  double schedulers_cpu;              /* s, the scheduler processes', same run */
} g_acct;

/* One repetition: n due jobs under a fresh prefix, procs processes claim
 * and run them. Returns runs/s. */
static double dispatch_rep(size_t procs, size_t n, rep_kind kind) {
  char prefix[48];
  new_prefix(prefix, sizeof prefix, "dispatch");
  add_due_jobs(prefix, n, ADD_BATCH);
  shared_reset((long)n);
  child kids[BENCH_MAX_PROCS];
  for (size_t i = 0; i < procs; i++) kids[i] = spawn(prefix);
  await_ready(procs);
  double cpu0 = 0, main0 = 0;
  if (kind == COUNTED) {
    freeReplyObject(cmd(admin, "CONFIG RESETSTAT"));
    read_server_cpu(&cpu0, &main0);
  }
  if (kind == MONITORED) monitor_start(&g_acct.mon);
  double kids0 = 0;
  for (size_t i = 0; kind == COUNTED && i < procs; i++) kids0 += process_cpu(kids[i].pid);
  int64_t t0 = now_ns();
  for (size_t i = 0; i < procs; i++) go(&kids[i]);
  if (!await_runs(900))
    fail("%s, %zu processes: only %ld of %zu runs after 900 s", prefix, procs,
         atomic_load(&sh->runs), n);
  double rate = (double)n / (double)(atomic_load(&sh->done_ns) - t0) * 1e9;
  if (kind != PLAIN)
    /* Up to the last batch's commit, sent after its runs started. */
    sleep_us(300000);
  if (kind == COUNTED) {
    read_cmdstats(&g_acct.stats);
    g_acct.rate = rate;
    read_server_cpu(&g_acct.server_cpu, &g_acct.server_main_cpu);
    g_acct.server_cpu -= cpu0;
    g_acct.server_main_cpu -= main0;
    g_acct.schedulers_cpu = -kids0;
    for (size_t i = 0; i < procs; i++) g_acct.schedulers_cpu += process_cpu(kids[i].pid);
  }
  if (kind == MONITORED) monitor_stop(&g_acct.mon);
  for (size_t i = 0; i < procs; i++) finish(&kids[i]);
  if (atomic_load(&sh->dups) != 0 || atomic_load(&sh->runs) != (long)n)
    fail("%s: %ld runs (%ld of them repeated) for %zu due jobs", prefix, atomic_load(&sh->runs),
         atomic_load(&sh->dups), n);
  cmd_run("FLUSHALL");
  return rate;
}

/* What a claimed run costs the server, from a COUNTED and a MONITORED run
 * of n jobs. */
static void emit_accounting(size_t procs, size_t n) {
  monitor *mon = &g_acct.mon;
  cmdstats *cs = &g_acct.stats;
  char by_cmd[2048], all[4096];
  size_t k = (size_t)snprintf(by_cmd, sizeof by_cmd, "{");
  for (int i = 0; i < MON_CMDS && mon->names[i][0] && k + 64 < sizeof by_cmd; i++)
    k += (size_t)snprintf(by_cmd + k, sizeof by_cmd - k, "%s\"%s\":%.4f", i ? "," : "",
                          mon->names[i], (double)mon->calls[i] / (double)n);
  snprintf(by_cmd + k, sizeof by_cmd - k, "}");
  double total = 0;
  k = (size_t)snprintf(all, sizeof all, "{");
  for (size_t i = 0; i < cs->n && k + 64 < sizeof all; i++) {
    total += cs->calls[i];
    k += (size_t)snprintf(all + k, sizeof all - k, "%s\"%s\":%.3f", i ? "," : "", cs->names[i],
                          cs->calls[i] / (double)n);
  }
  snprintf(all + k, sizeof all - k, "}");
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"redis_accounting\",\"procs\":%zu,\"jobs\":%zu,"
         "\"batch\":%d,\"round_trips_per_run\":%.4f,\"round_trips_per_batch\":%.2f,"
         "\"round_trips_by_command_per_run\":%s,\"script_commands_per_run\":%.2f,"
         "\"server_commands_per_run\":%.2f,\"script_usec_per_run\":%.1f,"
         "\"hgetall_usec_per_run\":%.1f,\"server_cpu_usec_per_run\":%.1f,\"server_main_thread_cpu_usec_per_run\":%.1f,"
         "\"schedulers_cpu_usec_per_run\":%.1f,"
         "\"commandstats_per_run\":%s,\"runs_per_sec\":%.0f,"
         "\"source\":\"MONITOR (client vs lua lines; a run of its own), INFO commandstats after "
         "CONFIG RESETSTAT\",\"loadavg\":%s}\n",
         procs, n, CLAIM_BATCH, (double)mon->client / (double)n,
         (double)mon->client / (double)((n + CLAIM_BATCH - 1) / CLAIM_BATCH), by_cmd,
         (double)mon->script / (double)n, total / (double)n, cs->script_usec / (double)n,
         cs->read_usec / (double)n, g_acct.server_cpu * 1e6 / (double)n, g_acct.server_main_cpu * 1e6 / (double)n,
         g_acct.schedulers_cpu * 1e6 / (double)n, all,
         g_acct.rate, loadavg());
  fflush(stdout);
}

static void emit_rate(const char *bench, const char *unit, const char *mode, size_t procs,
                      size_t n, double *rates, size_t reps) {
  stats st = summarize(rates, reps);
  printf("{\"impl\":\"" IMPL "\",\"bench\":\"%s\",\"mode\":\"%s\",\"procs\":%zu,\"jobs\":%zu,"
         "\"reps\":%zu,\"unit\":\"%s\",\"per_sec\":%.0f,\"per_sec_min\":%.0f,"
         "\"per_sec_max\":%.0f,\"executor\":\"inline\",\"appendfsync\":\"everysec\","
         "\"loadavg\":%s}\n",
         bench, mode, procs, n, reps, unit, st.median, st.min, st.max, loadavg());
  fflush(stdout);
}

/* ------------------------------------------------------------- wake-up */

/* Sample i: the shared run count's target is i + 1, so the start of job i
 * notes done_ns. */
static void redis_arm(size_t i) {
  atomic_store(&sh->done_ns, 0);
  atomic_store(&sh->target, (long)i + 1);
}

static int64_t redis_started_ns(size_t i) {
  (void)i;
  return atomic_load(&sh->done_ns);
}

static void bench_wakeup(size_t samples) {
  char prefix[48];
  new_prefix(prefix, sizeof prefix, "wakeup");
  apsched_scheduler *a = scheduler_on(prefix, "bench_redis-A");
  shared_reset(LONG_MAX);
  child b = spawn(prefix);
  await_ready(1);
  go(&b);
  sleep_us(300000);
  bench_wakeup_samples("redis", a, FUNC, samples, redis_arm, redis_started_ns);
  if (atomic_load(&sh->dups) != 0) fail("wake-up: %ld runs repeated", atomic_load(&sh->dups));
  finish(&b);
  apsched_free(a);
  cmd_run("FLUSHALL");
}

/* ------------------------------------------------------ redis-benchmark */

/* redis-benchmark --csv with clients clients over n requests: one line per
 * test, "name",rps,... */
static void raw_probe(size_t clients, size_t n) {
  char line[1024];
  for (int pass = 0; pass < 2; pass++) {
    char command[1024];
    int len = snprintf(command, sizeof command,
                       "redis-benchmark -s '%s' -n %zu -c %zu --csv %s 2>&1", redis_srv.sock, n,
                       clients,
                       pass == 0 ? "-t set,zadd,hset"
                                 : "EVAL \"redis.call('HSET',KEYS[1],'f',ARGV[1]) return "
                                   "redis.call('ZADD',KEYS[2],ARGV[1],'m')\" 2 '{rb}:h' '{rb}:z' 1");
    if (len < 0 || (size_t)len >= sizeof command) fail("redis-benchmark command too long");
    FILE *p = popen(command, "r");
    if (!p) fail("cannot run redis-benchmark: %s", strerror(errno));
    bool any = false;
    while (fgets(line, sizeof line, p)) {
      char name[128];
      double rps, p50;
      if (sscanf(line, "\"%127[^\"]\",\"%lf\",\"%*[^\"]\",\"%*[^\"]\",\"%lf\"", name, &rps, &p50) != 3)
        continue;
      char test[160];
      json_text(test, sizeof test, pass == 0 ? name : "EVAL (HSET + ZADD)");
      printf("{\"impl\":\"redis-benchmark\",\"bench\":\"redis_raw\",\"test\":\"%s\","
             "\"clients\":%zu,\"requests\":%zu,\"per_sec\":%.0f,\"p50_ms\":%.3f,"
             "\"pipeline\":1,\"appendfsync\":\"everysec\",\"loadavg\":%s}\n",
             test, clients, n, rps, p50, loadavg());
      any = true;
    }
    if (pclose(p) != 0 || !any) fail("redis-benchmark (%s) failed: %s", command, line);
    fflush(stdout);
  }
  cmd_run("FLUSHALL");
}

/* ----------------------------------------------------------------- main */

static void emit_server(void) {
  char version[32], aof[8], fsync[16], save[32];
  info_field("server", "redis_version", version, sizeof version);
  config_get("appendonly", aof, sizeof aof);
  config_get("appendfsync", fsync, sizeof fsync);
  config_get("save", save, sizeof save);
  printf("{\"impl\":\"redis\",\"bench\":\"redis_server\",\"version\":\"%s\",\"appendonly\":\"%s\","
         "\"appendfsync\":\"%s\",\"save\":\"%s\",\"socket\":\"unix\",\"loadavg\":%s}\n",
         version, aof, fsync, save, loadavg());
  fflush(stdout);
}

static bool parse_count(const char *text, size_t *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end); /* accepts 1e5 */
  if (errno || end == text || *end || v < 1 || v > 1e7) return false;
  *out = (size_t)v;
  return true;
}

static _Noreturn void usage(void) {
  fprintf(stderr, "usage: bench_redis [--quick] [--only=dispatch,adds,accounting,raw,wakeup,waits]\n"
                  "                   [--jobs=N] [--reps=N] [--procs=1,3] [--samples=N]\n"
                  "                   [-- COMMAND [ARG...]]\n");
  exit(2);
}

/* Runs COMMAND against the server; its exit status. */
static int run_command(char **command) {
  setenv("APSCHED_REDIS_URL", redis_server_url(), 1);
  setenv("APSCHED_REDIS_SOCKET", redis_srv.sock, 1);
  pid_t pid = fork();
  if (pid < 0) fail("fork: %s", strerror(errno));
  if (pid == 0) {
    execvp(command[0], command);
    fprintf(stderr, "bench_redis: cannot run %s: %s\n", command[0], strerror(errno));
    _exit(127);
  }
  return wait_exit(pid);
}

int main(int argc, char **argv) {
  if (argc == 8 && strcmp(argv[1], "--child") == 0) return child_main(argv);
  size_t jobs = 100000, reps = 3, nprocs = 2;
  size_t procs[BENCH_MAX_PROCS] = {1, 3};
  bool run_dispatch = true, run_adds = true, run_accounting = true, run_raw = true,
       run_wakeup = true, run_waits = true;
  size_t samples = 500;
  char **command = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    size_t v;
    if (strcmp(a, "--") == 0) {
      if (i + 1 >= argc) usage();
      command = argv + i + 1;
      break;
    } else if (strcmp(a, "--quick") == 0) {
      jobs = 2000;
      reps = 1;
      samples = 50;
    } else if (strncmp(a, "--only=", 7) == 0) {
      const char *list = a + 7;
      run_dispatch = strstr(list, "dispatch") != NULL;
      run_adds = strstr(list, "adds") != NULL;
      run_accounting = strstr(list, "accounting") != NULL;
      run_raw = strstr(list, "raw") != NULL;
      run_wakeup = strstr(list, "wakeup") != NULL;
      run_waits = strstr(list, "waits") != NULL;
      if (!run_dispatch && !run_adds && !run_accounting && !run_raw && !run_wakeup && !run_waits)
        usage();
    } else if (strncmp(a, "--samples=", 10) == 0 && parse_count(a + 10, &v)) {
      samples = v;
    } else if (strncmp(a, "--jobs=", 7) == 0 && parse_count(a + 7, &v)) {
      jobs = v;
    } else if (strncmp(a, "--reps=", 7) == 0 && parse_count(a + 7, &v) && v <= BENCH_MAX_REPS) {
      reps = v;
    } else if (strncmp(a, "--procs=", 8) == 0) {
      nprocs = 0;
      for (char *p = (char *)a + 8, *end; *p; p = *end == ',' ? end + 1 : end) {
        long k = strtol(p, &end, 10);
        if (end == p || k < 1 || k > BENCH_MAX_PROCS || nprocs == BENCH_MAX_PROCS ||
            (*end && *end != ','))
          usage();
        procs[nprocs++] = (size_t)k;
      }
      if (nprocs == 0) usage();
    } else {
      usage();
    }
  }

  if (redis_server_start("aof-everysec") != 0)
    fail("cannot start a Redis server: %s", redis_srv.why);
  g_url = redis_server_url();
  admin = redis_server_connect();
  fcntl(admin->fd, F_SETFD, FD_CLOEXEC);
  g_jobs = jobs;
  shared_map(-1, g_jobs);
  check(apsched_register_func(FUNC, bench_job), "apsched_register_func");
  emit_server();

  for (size_t p = 0; p < nprocs && run_dispatch; p++) {
    double rates[BENCH_MAX_REPS];
    for (size_t r = 0; r < reps; r++) rates[r] = dispatch_rep(procs[p], jobs, PLAIN);
    emit_rate("redis_dispatch", "runs", "claim", procs[p], jobs, rates, reps);
  }
  if (run_adds) {
    double rates[BENCH_MAX_REPS];
    size_t single = jobs / 10 > 100 ? jobs / 10 : 100;
    for (size_t mode = 0; mode < 2; mode++) {
      size_t n = mode == 0 ? jobs : single;
      for (size_t r = 0; r < reps; r++) {
        char prefix[48];
        new_prefix(prefix, sizeof prefix, "adds");
        rates[r] = add_due_jobs(prefix, n, mode == 0 ? ADD_BATCH : 1);
        cmd_run("FLUSHALL");
      }
      emit_rate("redis_adds", "jobs", mode == 0 ? "batch" : "single", 1, n, rates, reps);
    }
  }
  if (run_accounting) {
    size_t most = 1, n = jobs < ACCOUNTING_MAX_JOBS ? jobs : ACCOUNTING_MAX_JOBS;
    for (size_t p = 0; p < nprocs; p++) most = procs[p] > most ? procs[p] : most;
    size_t counts[2] = {1, most};
    for (size_t i = 0; i < (most > 1 ? 2u : 1u); i++) {
      dispatch_rep(counts[i], n, COUNTED);
      dispatch_rep(counts[i], n, MONITORED);
      emit_accounting(counts[i], n);
    }
  }
  if (run_raw)
    for (size_t p = 0; p < nprocs; p++) raw_probe(procs[p], jobs);
  if (run_wakeup) bench_wakeup(samples);
  if (run_waits) {
    char prefix[48];
    new_prefix(prefix, sizeof prefix, "waits");
    bench_waits("redis", store_for_waits, prefix, samples);
  }
  redisFree(admin);
  return command ? run_command(command) : 0;
}
