/* The store conformance kit (store_conformance.h) against the stores the
 * core ships: the memory store, and the memory store behind a wrapper that
 * declares it blocking (so the scheduler calls it without its lock, from the
 * store's own thread: the path every disk or network store takes). */
#include "store_conformance.h"

static apsched_jobstore *make_memory(void *ud) {
  (void)ud;
  apsched_jobstore *st;
  return apsched_memory_store_create(&st) == APSCHED_OK ? st : NULL;
}

static apsched_jobstore *make_blocking(void *ud) {
  (void)ud;
  wrapped_store *w = wrapped_memory_store(APSCHED_STORE_BLOCKING);
  return w ? &w->base : NULL;
}

int main(void) {
  store_kit memory = {"memory store", make_memory, NULL};
  store_kit blocking = {"memory store as a blocking store", make_blocking, NULL};
  int failed = store_kit_run(&memory);
  failed += store_kit_run(&blocking);
  return failed;
}
