/* The table of parsed cron schedules shared between cron triggers.
 *
 * Most cron jobs of an application repeat a handful of expressions (every
 * hour, every five minutes on weekdays), and every job holds its own trigger. Without sharing,
 * each one carried its own spec and texts (about 600 bytes per job); with it
 * a trigger holds a pointer and the schedule exists once. The key is the
 * fields' canonical texts, which determine the spec; a spec that differs for
 * the same texts (never expected) simply gets a schedule of its own.
 *
 * One mutex guards the table. References are atomic so that copying a
 * trigger (which already holds one) needs no lock; only the first lookup of
 * a schedule and the release of a reference lock, so that a lookup never
 * revives a schedule whose last reference is being dropped. */
#include "cron_internal.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t shapes_lock = PTHREAD_MUTEX_INITIALIZER;
static apsched__cron_shape **buckets; /* power-of-two count, chained */
static size_t n_buckets, n_shapes;

static uint64_t text_hash(const char *text, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)text[i]) * 0x100000001b3ull;
  return h;
}

/* Doubles the bucket array (or makes the first); false when out of memory,
 * which only makes chains longer. */
static bool grow(void) {
  size_t n = n_buckets ? n_buckets * 2 : 64;
  apsched__cron_shape **b = calloc(n, sizeof *b);
  if (!b) return false;
  for (size_t i = 0; i < n_buckets; i++) {
    for (apsched__cron_shape *s = buckets[i], *next; s; s = next) {
      next = s->next;
      s->next = b[s->hash & (n - 1)];
      b[s->hash & (n - 1)] = s;
    }
  }
  free(buckets);
  buckets = b;
  n_buckets = n;
  return true;
}

/* The texts of a parse, NUL-separated, into buf (NULL: only the length). */
static size_t join_texts(const apsched__cron_text *tx, char *buf) {
  size_t len = 0;
  for (int f = 0; f < APSCHED__CRON_NFIELDS; f++) {
    size_t n = strlen(tx->field[f]) + 1;
    if (buf) memcpy(buf + len, tx->field[f], n);
    len += n;
  }
  return len;
}

/* A new schedule in one allocation: the header, the year ranges, the texts. */
static apsched__cron_shape *make_shape(const apsched__cron_parsed *parsed,
                                       const apsched__cron_text *tx, size_t text_len,
                                       uint64_t hash) {
  size_t years_at = (sizeof(apsched__cron_shape) + alignof(apsched__cron_years) - 1) /
                    alignof(apsched__cron_years) * alignof(apsched__cron_years);
  size_t years_len = (size_t)parsed->spec.n_years * sizeof(apsched__cron_years);
  char *mem = malloc(years_at + years_len + text_len);
  if (!mem) return NULL;
  apsched__cron_shape *s = (apsched__cron_shape *)(void *)mem;
  s->spec = parsed->spec;
  s->spec.years = (apsched__cron_years *)(void *)(mem + years_at);
  memcpy(s->spec.years, parsed->spec.years, years_len);
  char *text = mem + years_at + years_len;
  join_texts(tx, text);
  s->text = text;
  s->text_len = text_len;
  atomic_init(&s->refs, 1);
  s->hash = hash;
  s->next = NULL;
  return s;
}

int apsched__cron_shape_get(const apsched__cron_parsed *parsed, const apsched__cron_text *tx,
                            const apsched__cron_shape **out) {
  char key[APSCHED__CRON_NFIELDS * (APSCHED__CRON_TEXT_MAX + 1)];
  size_t len = join_texts(tx, key);
  uint64_t hash = text_hash(key, len);
  pthread_mutex_lock(&shapes_lock);
  if (n_buckets) {
    for (apsched__cron_shape *s = buckets[hash & (n_buckets - 1)]; s; s = s->next) {
      if (s->hash != hash || s->text_len != len || memcmp(s->text, key, len) != 0 ||
          !apsched__cron_spec_equal(&s->spec, &parsed->spec))
        continue;
      atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
      pthread_mutex_unlock(&shapes_lock);
      *out = s;
      return APSCHED_OK;
    }
  }
  apsched__cron_shape *s = make_shape(parsed, tx, len, hash);
  if (!s) {
    pthread_mutex_unlock(&shapes_lock);
    return APSCHED_ENOMEM;
  }
  if (n_shapes >= n_buckets) grow();
  if (n_buckets) {
    s->next = buckets[hash & (n_buckets - 1)];
    buckets[hash & (n_buckets - 1)] = s;
  }
  /* Without any bucket array (out of memory on the first grow) the schedule
   * is simply not shared: release finds it in no chain and frees it. */
  n_shapes += n_buckets ? 1 : 0;
  pthread_mutex_unlock(&shapes_lock);
  *out = s;
  return APSCHED_OK;
}

void apsched__cron_shape_ref(const apsched__cron_shape *shape) {
  apsched__cron_shape *s = (apsched__cron_shape *)shape;
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void apsched__cron_shape_release(const apsched__cron_shape *shape) {
  apsched__cron_shape *s = (apsched__cron_shape *)shape;
  if (!s) return;
  pthread_mutex_lock(&shapes_lock);
  if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) {
    pthread_mutex_unlock(&shapes_lock);
    return;
  }
  if (n_buckets) {
    for (apsched__cron_shape **p = &buckets[s->hash & (n_buckets - 1)]; *p; p = &(*p)->next) {
      if (*p != s) continue;
      *p = s->next;
      n_shapes--;
      break;
    }
  }
  if (n_shapes == 0) { /* nothing left: give the bucket array back too */
    free(buckets);
    buckets = NULL;
    n_buckets = 0;
  }
  pthread_mutex_unlock(&shapes_lock);
  free(s);
}

size_t apsched__cron_shape_count(void) {
  pthread_mutex_lock(&shapes_lock);
  size_t n = n_shapes;
  pthread_mutex_unlock(&shapes_lock);
  return n;
}
