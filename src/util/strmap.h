/* A string-keyed hash map of pointers (open addressing, linear probing,
 * backward-shift deletion). Keys are borrowed: each key must stay valid and
 * unchanged while its entry is present (typically it lives in the value). */
#ifndef APSCHED_UTIL_STRMAP_H
#define APSCHED_UTIL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct apsched_strmap_slot {
  const char *key; /* NULL: empty */
  uint64_t hash;
  void *value;
} apsched_strmap_slot;

typedef struct apsched_strmap {
  apsched_strmap_slot *slots;
  size_t cap; /* power of two, or 0 */
  size_t count;
} apsched_strmap;

/* A fast 64-bit hash of a NUL-terminated id; seed varies it (per table). */
__attribute__((visibility("hidden"))) uint64_t apsched__hash_id(uint64_t seed, const char *key);
__attribute__((visibility("hidden"))) uint64_t apsched__strhash(const char *key);
/* apsched__strhash of a key whose length (strlen) the caller knows. */
__attribute__((visibility("hidden"))) uint64_t apsched__strhash_len(const char *key, size_t len);
__attribute__((visibility("hidden"))) void *apsched__strmap_get(const apsched_strmap *m,
                                                                 const char *key);
/* Inserts or replaces; returns 0, or -1 on allocation failure (map unchanged). */
__attribute__((visibility("hidden"))) int apsched__strmap_put(apsched_strmap *m, const char *key,
                                                               void *value);
/* Removes and returns the value (NULL if absent). */
__attribute__((visibility("hidden"))) void *apsched__strmap_remove(apsched_strmap *m,
                                                                    const char *key);
/* The same three with the key's apsched__strhash given, for a caller that
 * keeps it (a hot path that looks one key up, inserts and removes it). */
__attribute__((visibility("hidden"))) void *apsched__strmap_get_h(const apsched_strmap *m,
                                                                   const char *key, uint64_t h);
__attribute__((visibility("hidden"))) int apsched__strmap_put_h(apsched_strmap *m, const char *key,
                                                                 uint64_t h, void *value);
__attribute__((visibility("hidden"))) void *apsched__strmap_remove_h(apsched_strmap *m,
                                                                      const char *key, uint64_t h);
__attribute__((visibility("hidden"))) void apsched__strmap_free(apsched_strmap *m);

#endif
