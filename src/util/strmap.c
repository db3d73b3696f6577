/* String-keyed hash map; see strmap.h. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(uint64_t seed, const char *key, size_t len) {
  /* Eight bytes per step (ids are usually 32 characters), then a final mix
   * so the low bits are usable as an index. */
  uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);
  for (; len >= 8; len -= 8, key += 8) {
    uint64_t w;
    memcpy(&w, key, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  uint64_t w = 0;
  memcpy(&w, key, len);
  h = (h ^ w) * 0x94d049bb133111ebull;
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ull;
  h ^= h >> 32;
  return h;
}

uint64_t apsched__hash_id(uint64_t seed, const char *key) { return hash_bytes(seed, key, strlen(key)); }

#define STRMAP_SEED 0xcbf29ce484222325ull

uint64_t apsched__strhash(const char *key) { return hash_bytes(STRMAP_SEED, key, strlen(key)); }

uint64_t apsched__strhash_len(const char *key, size_t len) { return hash_bytes(STRMAP_SEED, key, len); }

static size_t find_slot(const apsched_strmap *m, const char *key, uint64_t h) {
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const apsched_strmap_slot *s = &m->slots[i];
    if (!s->key || (s->hash == h && (s->key == key || strcmp(s->key, key) == 0))) return i;
  }
}

void *apsched__strmap_get_h(const apsched_strmap *m, const char *key, uint64_t h) {
  if (m->count == 0) return NULL;
  size_t i = find_slot(m, key, h);
  return m->slots[i].key ? m->slots[i].value : NULL;
}

void *apsched__strmap_get(const apsched_strmap *m, const char *key) {
  return m->count ? apsched__strmap_get_h(m, key, apsched__strhash(key)) : NULL;
}

static int grow(apsched_strmap *m) {
  size_t cap = m->cap ? m->cap * 2 : 16;
  apsched_strmap_slot *slots = calloc(cap, sizeof *slots);
  if (!slots) return -1;
  apsched_strmap old = *m;
  m->slots = slots;
  m->cap = cap;
  for (size_t i = 0; i < old.cap; i++)
    if (old.slots[i].key) m->slots[find_slot(m, old.slots[i].key, old.slots[i].hash)] = old.slots[i];
  free(old.slots);
  return 0;
}

int apsched__strmap_put(apsched_strmap *m, const char *key, void *value) {
  return apsched__strmap_put_h(m, key, apsched__strhash(key), value);
}

int apsched__strmap_put_h(apsched_strmap *m, const char *key, uint64_t h, void *value) {
  size_t i = m->cap ? find_slot(m, key, h) : 0;
  if (!m->cap || !m->slots[i].key) {
    /* A new key: keep the load under 3/4 so probe sequences stay short.
     * (Replacing an existing key never allocates, so it cannot fail.) */
    if ((m->count + 1) * 4 > m->cap * 3) {
      if (grow(m) != 0) return -1;
      i = find_slot(m, key, h);
    }
    m->count++;
  }
  m->slots[i].key = key;
  m->slots[i].hash = h;
  m->slots[i].value = value;
  return 0;
}

void *apsched__strmap_remove(apsched_strmap *m, const char *key) {
  return m->count ? apsched__strmap_remove_h(m, key, apsched__strhash(key)) : NULL;
}

void *apsched__strmap_remove_h(apsched_strmap *m, const char *key, uint64_t h) {
  if (m->count == 0) return NULL;
  size_t mask = m->cap - 1;
  size_t i = find_slot(m, key, h);
  if (!m->slots[i].key) return NULL;
  void *value = m->slots[i].value;
  /* Backward shift: pull later entries of the same cluster into the hole so
   * lookups never need tombstones. */
  for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
    size_t home = m->slots[j].hash & mask;
    int between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
    if (!between) {
      m->slots[i] = m->slots[j];
      i = j;
    }
  }
  m->slots[i].key = NULL;
  m->count--;
  return value;
}

void apsched__strmap_free(apsched_strmap *m) {
  free(m->slots);
  m->slots = NULL;
  m->cap = m->count = 0;
}
