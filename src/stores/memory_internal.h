/* Test hooks into the memory job store (src/stores/memory.c). Not part of the
 * public API: only the library's own tests and benchmarks use them. */
#ifndef APSCHED_MEMORY_INTERNAL_H
#define APSCHED_MEMORY_INTERNAL_H

#include "../internal.h"

/* Verifies every structural invariant of a memory store: heap order and
 * positions, hash membership, counts, capacity reserved for claimed records.
 * Returns 0 when consistent, else -1 with *why (if given) naming the broken
 * invariant. */
APSCHED_INTERNAL int apsched__memory_store_check(apsched_jobstore *st, const char **why);

/* Sets the sequence number the next heap entry receives, so tests can cross
 * the 32-bit wrap without four billion insertions. */
APSCHED_INTERNAL void apsched__memory_store_set_seq(apsched_jobstore *st, uint32_t seq);

/* Replaces the allocator the store uses for its heap and bucket arrays
 * (NULL restores realloc), to test out-of-memory handling. */
APSCHED_INTERNAL void apsched__memory_store_set_realloc(apsched_jobstore *st,
                                                        void *(*fn)(void *ptr, size_t size));

/* The length of the longest hash chain and the bucket count. */
APSCHED_INTERNAL size_t apsched__memory_store_max_chain(apsched_jobstore *st, size_t *buckets);

#endif
