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
  free(b->by_id);
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

static uint64_t id_hash(const char *id) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char *p = (const unsigned char *)id; *p; p++) h = (h ^ *p) * 1099511628211ULL;
  return h;
}

/* Enters claimed[i] in by_id (which has room). */
static void by_id_put(store_base *b, size_t i) {
  size_t mask = b->by_id_slots - 1, k = (size_t)id_hash(b->claimed[i]->id) & mask;
  while (b->by_id[k]) k = (k + 1) & mask;
  b->by_id[k] = (uint32_t)(i + 1);
}

/* Room in by_id for one more record: at most half full. */
static bool by_id_room(store_base *b) {
  if (2 * (b->nclaimed + 1) <= b->by_id_slots) return true;
  size_t n = b->by_id_slots ? 2 * b->by_id_slots : 128;
  while (n < 2 * (b->nclaimed + 1)) n *= 2;
  if (n > (size_t)UINT32_MAX) return false;
  uint32_t *slots = calloc(n, sizeof *slots);
  if (!slots) return false;
  free(b->by_id);
  b->by_id = slots;
  b->by_id_slots = n;
  for (size_t i = 0; i < b->nclaimed; i++) by_id_put(b, i);
  return true;
}

/* The claimed record that is rec (rec not NULL), or else one with this id
 * that is still held; NULL if none. */
static apsched_job_record *by_id_find(const store_base *b, const char *id,
                                      const apsched_job_record *rec) {
  if (b->by_id_slots == 0) return NULL;
  size_t mask = b->by_id_slots - 1;
  for (size_t k = (size_t)id_hash(id) & mask; b->by_id[k]; k = (k + 1) & mask) {
    apsched_job_record *c = b->claimed[b->by_id[k] - 1];
    if (rec ? c == rec : c->store_pos == HELD && strcmp(c->id, id) == 0) return c;
  }
  return NULL;
}

int apsched__pstore_hold(store_base *b, apsched_job_record *rec) {
  if (b->nclaimed == b->claimed_cap) {
    size_t cap = b->claimed_cap ? b->claimed_cap * 2 : 64;
    apsched_job_record **a = realloc(b->claimed, cap * sizeof *a);
    if (!a) return apsched__pstore_error(APSCHED_ENOMEM, "out of memory while claiming jobs");
    b->claimed = a;
    b->claimed_cap = cap;
  }
  if (!by_id_room(b)) return apsched__pstore_error(APSCHED_ENOMEM, "out of memory while claiming jobs");
  rec->store_pos = HELD;
  b->claimed[b->nclaimed++] = rec;
  by_id_put(b, b->nclaimed - 1);
  b->held++;
  return APSCHED_OK;
}

bool apsched__pstore_is_held(const store_base *b, const char *id) {
  return b->held > 0 && by_id_find(b, id, NULL) != NULL;
}

int apsched__pstore_unhold(store_base *b, apsched_job_record *rec, const char *where) {
  if (!rec || !by_id_find(b, rec->id, rec) || rec->store_pos != HELD)
    return apsched__pstore_error(APSCHED_EINVAL, "release: job '%.64s' is not claimed from %s",
                                rec ? rec->id : "(null)", where);
  rec->store_pos = RELEASED;
  b->held--;
  return APSCHED_OK;
}

void apsched__pstore_drop_claims(store_base *b, size_t first) {
  if (b->nclaimed <= first) return;
  while (b->nclaimed > first) {
    apsched_job_record *rec = b->claimed[--b->nclaimed];
    if (rec->store_pos == HELD) b->held--;
    apsched_job_record_free(rec);
  }
  /* by_id again from what is left (usually nothing). */
  if (b->by_id_slots) memset(b->by_id, 0, b->by_id_slots * sizeof *b->by_id);
  for (size_t i = 0; i < b->nclaimed; i++) by_id_put(b, i);
}
