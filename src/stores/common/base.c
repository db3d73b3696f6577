/* The part of a persistent store that lives outside its database: which
 * scheduler opened it, the rows found broken since (each reported once per
 * open, never changed), and the records of the batch claim_due handed out,
 * until their release. */
#include "store_common.h"

#include <stdlib.h>
#include <string.h>

const char *apsched__pstore_intern(void *ctx, const char *text) {
  store_base *b = ctx;
  return b->sched ? apsched_intern_alias(b->sched, text) : apsched__pstore_strset_add(&b->aliases, text);
}

void apsched__pstore_base_open(store_base *b, apsched_scheduler *s, const char *alias) {
  b->sched = s;
  b->alias = alias;
  apsched__pstore_strset_clear(&b->broken);
}

void apsched__pstore_base_close(store_base *b) {
  b->sched = NULL;
  b->alias = NULL;
}

void apsched__pstore_base_free(store_base *b) {
  apsched__pstore_drop_claims(b, 0);
  free(b->claimed);
  apsched__pstore_strset_free(&b->broken);
  apsched__pstore_strset_free(&b->aliases);
}

int apsched__pstore_decode_row(store_base *b, const store_value cols[COL_COUNT],
                              apsched_job_record **out) {
  const char *why;
  int rc = apsched__pstore_decode(cols, apsched__pstore_intern, b, out, &why);
  if (rc != APSCHED_OK) return rc;
  const char *id = (*out)->id;
  if (!why) {
    apsched__pstore_strset_remove(&b->broken, id); /* fixed by hand */
  } else if (!apsched__pstore_strset_find(&b->broken, id) && apsched__pstore_strset_add(&b->broken, id)) {
    /* (Short of memory, it is reported again next time: harmless.) */
    if (b->sched && b->alias) apsched_store_report(b->sched, b->alias, id, why);
  }
  return APSCHED_OK;
}

void apsched__pstore_removed(store_base *b, const char *id) {
  if (id) apsched__pstore_strset_remove(&b->broken, id);
  else apsched__pstore_strset_clear(&b->broken);
}

bool apsched__pstore_known_broken(const store_base *b, const char *id) {
  return apsched__pstore_strset_find(&b->broken, id) != NULL;
}

/* rec->store_pos of a claimed record: still held by the scheduler, or released. */
enum { RELEASED = 0, HELD = 1 };

int apsched__pstore_hold(store_base *b, apsched_job_record *rec) {
  if (b->nclaimed == b->claimed_cap) {
    size_t cap = b->claimed_cap ? b->claimed_cap * 2 : 64;
    apsched_job_record **a = realloc(b->claimed, cap * sizeof *a);
    if (!a) return apsched__pstore_error(APSCHED_ENOMEM, "out of memory while claiming jobs");
    b->claimed = a;
    b->claimed_cap = cap;
  }
  rec->store_pos = HELD;
  b->claimed[b->nclaimed++] = rec;
  b->held++;
  return APSCHED_OK;
}

bool apsched__pstore_is_held(const store_base *b, const char *id) {
  if (b->held == 0) return false;
  for (size_t i = 0; i < b->nclaimed; i++)
    if (b->claimed[i]->store_pos == HELD && strcmp(b->claimed[i]->id, id) == 0) return true;
  return false;
}

int apsched__pstore_unhold(store_base *b, apsched_job_record *rec, const char *where) {
  bool ours = false;
  for (size_t i = 0; rec && i < b->nclaimed && !ours; i++) ours = b->claimed[i] == rec;
  if (!ours || rec->store_pos != HELD)
    return apsched__pstore_error(APSCHED_EINVAL, "release: job '%.64s' is not claimed from %s",
                                rec ? rec->id : "(null)", where);
  rec->store_pos = RELEASED;
  b->held--;
  return APSCHED_OK;
}

void apsched__pstore_drop_claims(store_base *b, size_t first) {
  while (b->nclaimed > first) {
    apsched_job_record *rec = b->claimed[--b->nclaimed];
    if (rec->store_pos == HELD) b->held--;
    apsched_job_record_free(rec);
  }
}
