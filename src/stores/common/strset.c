/* A small set of strings: ids of broken rows and early executor aliases,
 * a handful at most, so a plain array searched linearly. */
#include "store_common.h"

#include <stdlib.h>
#include <string.h>

const char *apsched__pstore_strset_find(const store_strset *set, const char *s) {
  for (size_t i = 0; i < set->n; i++)
    if (strcmp(set->items[i], s) == 0) return set->items[i];
  return NULL;
}

const char *apsched__pstore_strset_add(store_strset *set, const char *s) {
  const char *have = apsched__pstore_strset_find(set, s);
  if (have) return have;
  if (set->n == set->cap) {
    size_t cap = set->cap ? set->cap * 2 : 8;
    char **items = realloc(set->items, cap * sizeof *items);
    if (!items) return NULL;
    set->items = items;
    set->cap = cap;
  }
  char *copy = strdup(s);
  if (!copy) return NULL;
  set->items[set->n++] = copy;
  return copy;
}

void apsched__pstore_strset_remove(store_strset *set, const char *s) {
  for (size_t i = 0; i < set->n; i++) {
    if (strcmp(set->items[i], s) != 0) continue;
    free(set->items[i]);
    set->items[i] = set->items[--set->n];
    return;
  }
}

void apsched__pstore_strset_clear(store_strset *set) {
  for (size_t i = 0; i < set->n; i++) free(set->items[i]);
  set->n = 0;
}

void apsched__pstore_strset_free(store_strset *set) {
  apsched__pstore_strset_clear(set);
  free(set->items);
  *set = (store_strset){0};
}
