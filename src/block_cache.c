/* Recycled blocks of one size. Every dispatched run makes a run context and
 * usually an instance count, and frees both when it ends: taking them from
 * a short list of freed blocks instead of the allocator saves ~350
 * instructions per run (bench/instr_counts.sh). The caller serializes the
 * calls on one cache (see each cache's field in apsched_scheduler). */
#include "scheduler_internal.h"

void *apsched__block_take(apsched_scheduler *s, block_cache *c) {
  void *p = c->head;
  if (!p) return apsched__alloc(s, c->size);
  c->head = *(void **)p;
  c->count--;
  return p;
}

void apsched__block_give(apsched_scheduler *s, block_cache *c, void *p) {
  if (!p) return;
  if (c->count >= c->limit) {
    apsched__dealloc(s, p);
    return;
  }
  *(void **)p = c->head;
  c->head = p;
  c->count++;
}

void apsched__block_cache_free(apsched_scheduler *s, block_cache *c) {
  while (c->head) {
    void *p = c->head;
    c->head = *(void **)p;
    apsched__dealloc(s, p);
  }
  c->count = 0;
}
