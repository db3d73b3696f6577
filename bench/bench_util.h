/* What the store benchmarks share that is not about processes
 * (header-only): a monotonic clock, sleeping, failing with the program's
 * name, min/median/max of a sample, the load average, JSON string text.
 *
 * Define BENCH_NAME ("bench_pg") before including it. */
#ifndef APSCHED_BENCH_UTIL_H
#define APSCHED_BENCH_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void sleep_us(int64_t us) {
  struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static _Noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, BENCH_NAME ": ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct stats {
  double min, median, max;
} stats;

static inline stats summarize(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return (stats){v[0], med, v[n - 1]};
}

static inline const char *loadavg(void) {
  static char text[64];
  double l[3] = {-1, -1, -1};
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3) l[0] = l[1] = l[2] = -1;
    fclose(f);
  }
  snprintf(text, sizeof text, "[%.2f,%.2f,%.2f]", l[0], l[1], l[2]);
  return text;
}

/* s as the inside of a JSON string (quotes, backslashes, control bytes). */
static inline void json_text(char *out, size_t len, const char *s) {
  size_t k = 0;
  for (; *s && k + 7 < len; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') out[k++] = '\\', out[k++] = (char)c;
    else if (c < 0x20) k += (size_t)snprintf(out + k, len - k, "\\u%04x", c);
    else out[k++] = (char)c;
  }
  out[k] = '\0';
}

#endif
