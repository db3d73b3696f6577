/* Time zone conversion speed: ns per apsched_tz_to_local / apsched_tz_from_local
 * (and parse/format), one JSON object per line:
 *   {"bench":"tz_to_local","zone":"Europe/Berlin","years":"2020-2030","ns_per_op":12.3}
 * Inputs walk a range of instants with an odd stride so that successive calls
 * hit different transitions, as the cron trigger's search does. */
#include <apsched.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile int64_t sink;

#define N 2000000

static void bench_zone(const char *zone, int y0, int y1) {
  apsched_tz *tz;
  char err[256];
  if (apsched_tz_get(zone, &tz, err, sizeof err) != APSCHED_OK) {
    fprintf(stderr, "%s: %s\n", zone, err);
    return;
  }
  apsched_civil c = {.year = y0, .month = 1, .day = 1};
  apsched_local_result r;
  apsched_tz_from_local(tz, &c, APSCHED_EARLIER, &r);
  apsched_time_t start = r.utc;
  c.year = y1;
  apsched_tz_from_local(tz, &c, APSCHED_EARLIER, &r);
  int64_t span = r.utc - start, stride = 7919LL * APSCHED_SEC + 13;
  int64_t acc = 0;

  double t0 = now_ns();
  apsched_time_t t = start;
  for (int i = 0; i < N; i++) {
    apsched_tz_to_local(tz, t, &c);
    acc += c.hour + c.utc_offset;
    t += stride;
    if (t - start >= span) t -= span;
  }
  double ns_to = (now_ns() - t0) / N;

  /* Local inputs: the same instants, converted once up front. */
  enum { M = 4096 };
  static apsched_civil locals[M];
  for (int i = 0; i < M; i++)
    apsched_tz_to_local(tz, start + (int64_t)((double)span * i / M) + 1234567, &locals[i]);
  t0 = now_ns();
  for (int i = 0; i < N; i++) {
    apsched_tz_from_local(tz, &locals[i & (M - 1)], APSCHED_GAP_END, &r);
    acc += r.utc;
  }
  double ns_from = (now_ns() - t0) / N;
  sink = acc;
  printf("{\"bench\":\"tz_to_local\",\"zone\":\"%s\",\"years\":\"%d-%d\",\"ns_per_op\":%.1f}\n", zone,
         y0, y1, ns_to);
  printf("{\"bench\":\"tz_from_local\",\"zone\":\"%s\",\"years\":\"%d-%d\",\"ns_per_op\":%.1f}\n",
         zone, y0, y1, ns_from);
  apsched_tz_free(tz);
}

static void bench_text(void) {
  apsched_tz *tz;
  apsched_tz_get("Europe/Berlin", &tz, NULL, 0);
  char buf[64];
  apsched_time_t t = 0;
  int64_t acc = 0;
  double t0 = now_ns();
  for (int i = 0; i < N / 4; i++) {
    apsched_time_parse("2026-03-29 02:30:00", tz, &t, NULL, 0);
    acc += t;
  }
  double ns_parse = (now_ns() - t0) / (N / 4);
  t0 = now_ns();
  for (int i = 0; i < N / 4; i++) acc += apsched_time_format(t + i * 1000003LL, tz, buf, sizeof buf);
  double ns_format = (now_ns() - t0) / (N / 4);
  t0 = now_ns();
  for (int i = 0; i < N / 20; i++) {
    apsched_tz *z;
    apsched_tz_get("America/New_York", &z, NULL, 0);
    apsched_tz_free(z);
  }
  double ns_get = (now_ns() - t0) / (N / 20);
  sink = acc;
  printf("{\"bench\":\"time_parse\",\"zone\":\"Europe/Berlin\",\"ns_per_op\":%.1f}\n", ns_parse);
  printf("{\"bench\":\"time_format\",\"zone\":\"Europe/Berlin\",\"ns_per_op\":%.1f}\n", ns_format);
  printf("{\"bench\":\"tz_get_cached\",\"zone\":\"America/New_York\",\"ns_per_op\":%.1f}\n", ns_get);
  apsched_tz_free(tz);
}

/* First-time loads: every zone named in tzdata.zi, each read, parsed and
 * expanded once (later gets are cache hits). */
static void bench_first_load(void) {
  FILE *f = fopen("/usr/share/zoneinfo/tzdata.zi", "r");
  if (!f) return;
  static char names[1024][64];
  char line[512];
  int n = 0;
  while (n < 1024 && fgets(line, sizeof line, f))
    if (line[0] == 'Z' && sscanf(line, "Z %63s", names[n]) == 1) n++;
  fclose(f);
  int loaded = 0;
  double t0 = now_ns();
  for (int i = 0; i < n; i++) {
    apsched_tz *z;
    if (apsched_tz_get(names[i], &z, NULL, 0) == APSCHED_OK) {
      loaded++;
      apsched_tz_free(z);
    }
  }
  if (loaded)
    printf("{\"bench\":\"tz_get_first_load\",\"zones\":%d,\"ns_per_op\":%.1f}\n", loaded,
           (now_ns() - t0) / loaded);
}

int main(void) {
  bench_first_load();
  bench_zone("UTC", 2020, 2030);
  bench_zone("+05:45", 2020, 2030);
  bench_zone("Europe/Berlin", 2020, 2030);
  bench_zone("Europe/Berlin", 1900, 2100);
  bench_zone("Europe/Berlin", 2200, 2300); /* beyond the expanded table: the footer rule */
  bench_zone("America/New_York", 2020, 2030);
  bench_zone("Australia/Lord_Howe", 2020, 2030);
  bench_zone("EST5EDT,M3.2.0,M11.1.0", 2020, 2030);
  bench_text();
  return 0;
}
