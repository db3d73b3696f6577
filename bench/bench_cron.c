/* Cron trigger benchmark: ns per next-fire-time computation and per parse.
 *
 * One JSON object per line:
 *   {"bench":"cron_next","impl":"libapsched","case":"every_5_minutes","tz":"UTC","ns":41.2,...}
 *   {"bench":"cron_parse","impl":"libapsched","case":"every_5_minutes","ns":310.5,...}
 * "ns" is the median over many timed batches. next() walks forward from a
 * set of start times (prev = the previous result), the way a scheduler uses
 * it. When /usr/bin/python3 with APScheduler is available, the same cases
 * run through APScheduler 3.x's CronTrigger and print lines with
 * "impl":"apscheduler-<version>".
 *
 * Usage: bench_cron [--quick] [--no-python]
 */
#include <apsched.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct bench_case {
  const char *name;
  apsched_cron_options fields; /* timezone filled in per run */
  const char *python_kwargs;   /* the same fields for APScheduler's CronTrigger */
} bench_case;

static const bench_case cases[] = {
    {"every_5_minutes", {.minute = "*/5"}, "minute='*/5'"},
    {"weekdays_0900", {.day_of_week = "mon-fri", .hour = "9"}, "day_of_week='mon-fri', hour=9"},
    {"last_day_of_month", {.day = "last"}, "day='last'"},
    {"3rd_fri_some_months",
     {.month = "6-8,11-12", .day = "3rd fri", .hour = "0-3"},
     "month='6-8,11-12', day='3rd fri', hour='0-3'"},
    {"every_second", {.second = "*"}, "second='*'"},
};
#define NCASES (sizeof cases / sizeof cases[0])

static const char *const zones[] = {"UTC", "Europe/Berlin"};

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Keeps results alive so the compiler cannot drop the calls. */
static volatile int64_t sink;

static double bench_next(const apsched_trigger *t, int batches, int calls) {
  double *per_call = malloc(sizeof(double) * (size_t)batches);
  if (!per_call) return -1;
  /* 2026-01-01T00:00:00Z, moved a little for each batch. */
  const apsched_time_t base = 1767225600LL * APSCHED_SEC;
  for (int b = 0; b < batches; b++) {
    apsched_time_t prev = APSCHED_TIME_NONE, start = base + (int64_t)b * 7919 * APSCHED_SEC;
    double t0 = now_ns();
    for (int i = 0; i < calls; i++) {
      apsched_time_t next = apsched_trigger_next(t, prev, start);
      prev = next;
    }
    per_call[b] = (now_ns() - t0) / calls;
    sink += prev;
  }
  double m = median(per_call, batches);
  free(per_call);
  return m;
}

static double bench_parse(const apsched_cron_options *opt, int batches, int calls) {
  double *per_call = malloc(sizeof(double) * (size_t)batches);
  if (!per_call) return -1;
  for (int b = 0; b < batches; b++) {
    double t0 = now_ns();
    for (int i = 0; i < calls; i++) {
      apsched_trigger *t = NULL;
      if (apsched_trigger_cron(opt, &t, NULL, 0) != APSCHED_OK) {
        free(per_call);
        return -1;
      }
      apsched_trigger_free(t);
    }
    per_call[b] = (now_ns() - t0) / calls;
  }
  double m = median(per_call, batches);
  free(per_call);
  return m;
}

/* The same cases through APScheduler, printed in the same format. */
static void run_python(int batches, int calls) {
  const char *python = "/usr/bin/python3";
  if (access(python, X_OK) != 0) {
    printf("{\"bench\":\"cron_next\",\"impl\":\"apscheduler\",\"skipped\":\"no %s\"}\n", python);
    return;
  }
  char script[8192];
  size_t pos = 0;
  pos += (size_t)snprintf(script + pos, sizeof script - pos,
                          "import json, timeit, datetime, statistics\n"
                          "import apscheduler\n"
                          "from apscheduler.triggers.cron import CronTrigger\n"
                          "import pytz\n"
                          "B, N = %d, %d\n"
                          "ver = 'apscheduler-' + apscheduler.__version__\n"
                          "cases = [\n",
                          batches, calls);
  for (size_t i = 0; i < NCASES; i++)
    pos += (size_t)snprintf(script + pos, sizeof script - pos, "  ('%s', dict(%s)),\n",
                            cases[i].name, cases[i].python_kwargs);
  pos += (size_t)snprintf(
      script + pos, sizeof script - pos,
      "]\n"
      "base = datetime.datetime(2026, 1, 1, tzinfo=pytz.utc)\n"
      "us = datetime.timedelta(microseconds=1)\n"
      "for name, kw in cases:\n"
      "  for zone in ('UTC', 'Europe/Berlin'):\n"
      "    t = CronTrigger(timezone=zone, **kw)\n"
      "    per = []\n"
      "    for b in range(B):\n"
      "      start = base + datetime.timedelta(seconds=7919 * b)\n"
      "      def walk():\n"
      "        prev = None\n"
      "        now = start\n"
      "        for i in range(N):\n"
      "          prev = t.get_next_fire_time(prev, now)\n"
      "          now = prev + us\n"
      "      per.append(timeit.timeit(walk, number=1) / N * 1e9)\n"
      "    print(json.dumps({'bench': 'cron_next', 'impl': ver, 'case': name, 'tz': zone,\n"
      "                      'ns': round(statistics.median(per), 1), 'batches': B, 'calls': N},\n"
      "                     separators=(',', ':')))\n"
      "  per = [timeit.timeit(lambda: CronTrigger(timezone='UTC', **kw), number=N) / N * 1e9\n"
      "         for b in range(B)]\n"
      "  print(json.dumps({'bench': 'cron_parse', 'impl': ver, 'case': name, 'tz': 'UTC',\n"
      "                    'ns': round(statistics.median(per), 1), 'batches': B, 'calls': N},\n"
      "                     separators=(',', ':')))\n");
  char path[] = "/tmp/bench_cron_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(path);
    return;
  }
  fputs(script, f);
  fclose(f);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "%s %s 2>&1", python, path);
  fflush(stdout);
  FILE *p = popen(cmd, "r");
  if (p) {
    char line[512];
    while (fgets(line, sizeof line, p)) {
      if (line[0] == '{')
        fputs(line, stdout);
      else
        printf("{\"bench\":\"cron_next\",\"impl\":\"apscheduler\",\"note\":\"%.*s\"}\n",
               (int)strcspn(line, "\"\\\n"), line);
    }
    pclose(p);
  }
  unlink(path);
}

int main(int argc, char **argv) {
  bool quick = false, python = true;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      quick = true;
    else if (strcmp(argv[i], "--no-python") == 0)
      python = false;
    else {
      fprintf(stderr, "usage: %s [--quick] [--no-python]\n", argv[0]);
      return 2;
    }
  }
  int batches = quick ? 21 : 201, calls = quick ? 200 : 1000;
  for (size_t i = 0; i < NCASES; i++) {
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
      apsched_cron_options opt = cases[i].fields;
      opt.timezone = zones[z];
      apsched_trigger *t = NULL;
      char err[256];
      if (apsched_trigger_cron(&opt, &t, err, sizeof err) != APSCHED_OK) {
        fprintf(stderr, "%s: %s\n", cases[i].name, err);
        return 1;
      }
      double ns = bench_next(t, batches, calls);
      printf(
          "{\"bench\":\"cron_next\",\"impl\":\"libapsched\",\"case\":\"%s\",\"tz\":\"%s\","
          "\"ns\":%.1f,\"batches\":%d,\"calls\":%d}\n",
          cases[i].name, zones[z], ns, batches, calls);
      apsched_trigger_free(t);
    }
    apsched_cron_options opt = cases[i].fields;
    opt.timezone = "UTC";
    printf(
        "{\"bench\":\"cron_parse\",\"impl\":\"libapsched\",\"case\":\"%s\",\"tz\":\"UTC\","
        "\"ns\":%.1f,\"batches\":%d,\"calls\":%d}\n",
        cases[i].name, bench_parse(&opt, batches, calls), batches, calls);
    fflush(stdout);
  }
  if (python) run_python(quick ? 5 : 21, quick ? 20 : 100);
  return 0;
}
