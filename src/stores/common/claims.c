/* The claims a shared store holds: for each run it claimed (job id,
 * scheduled time, attempt), the token its later writes are fenced with.
 * The hash leaves the attempt out, so all attempts of a run share a chain. Looked up
 * by executor threads (run_starting) and the store's calls, so the store
 * guards it with a mutex of its own. A chained hash table. */
#include "store_common.h"

#include <stdlib.h>
#include <string.h>

static uint64_t claim_hash(const char *job_id, int64_t t) {
  uint64_t h = 1469598103934665603ULL ^ (uint64_t)t;
  for (const unsigned char *p = (const unsigned char *)job_id; *p; p++) h = (h ^ *p) * 1099511628211ULL;
  return h;
}

store_claim *apsched__pstore_claim_new(const char *job_id, int64_t t, unsigned attempt,
                                       int64_t token) {
  size_t len = strlen(job_id) + 1;
  store_claim *c = malloc(sizeof *c + len);
  if (!c) return NULL;
  c->next = NULL;
  c->scheduled_time = t;
  c->token = token;
  c->attempt = attempt;
  c->started = false;
  c->prestart_until = 0;
  memcpy(c->job_id, job_id, len);
  return c;
}

static bool same_run(const store_claim *c, const char *job_id, int64_t t) {
  return c->scheduled_time == t && strcmp(c->job_id, job_id) == 0;
}

/* The slot holding (job_id, t, attempt), or where it would go. */
static store_claim **claim_slot(store_claims *cs, const char *job_id, int64_t t, unsigned attempt) {
  store_claim **p = &cs->slots[claim_hash(job_id, t) % cs->nslots];
  while (*p && ((*p)->attempt != attempt || !same_run(*p, job_id, t))) p = &(*p)->next;
  return p;
}

void apsched__pstore_claims_put(store_claims *cs, store_claim *c) {
  if (cs->n + 1 > cs->nslots) {
    size_t nslots = cs->nslots ? cs->nslots * 2 : 64;
    store_claim **slots = calloc(nslots, sizeof *slots);
    if (slots) { /* short of memory, the chains just grow longer */
      for (size_t i = 0; i < cs->nslots; i++)
        for (store_claim *e = cs->slots[i], *next; e; e = next) {
          next = e->next;
          size_t k = claim_hash(e->job_id, e->scheduled_time) % nslots;
          e->next = slots[k];
          slots[k] = e;
        }
      free(cs->slots);
      cs->slots = slots;
      cs->nslots = nslots;
    }
  }
  store_claim **p = claim_slot(cs, c->job_id, c->scheduled_time, c->attempt);
  if (*p) {
    store_claim *old = *p;
    c->next = old->next;
    free(old);
    cs->n--;
  }
  *p = c;
  cs->n++;
}

store_claim *apsched__pstore_claims_find(store_claims *cs, const char *job_id, int64_t t,
                                         unsigned attempt) {
  return cs->n == 0 ? NULL : *claim_slot(cs, job_id, t, attempt);
}

int64_t apsched__pstore_claims_token(store_claims *cs, const char *job_id, int64_t t,
                                     unsigned attempt) {
  store_claim *c = apsched__pstore_claims_find(cs, job_id, t, attempt);
  return c ? c->token : 0;
}

void apsched__pstore_claims_each(store_claims *cs, void (*fn)(store_claim *c, void *ud), void *ud) {
  for (size_t i = 0; i < cs->nslots; i++)
    for (store_claim *e = cs->slots[i]; e; e = e->next) fn(e, ud);
}

void apsched__pstore_claims_drop(store_claims *cs, const char *job_id, int64_t t, int64_t token) {
  if (cs->n == 0) return;
  store_claim **p = &cs->slots[claim_hash(job_id, t) % cs->nslots];
  while (*p && ((*p)->token != token || !same_run(*p, job_id, t))) p = &(*p)->next;
  if (!*p) return;
  store_claim *c = *p;
  *p = c->next;
  free(c);
  cs->n--;
}

void apsched__pstore_claims_free(store_claims *cs) {
  for (size_t i = 0; i < cs->nslots; i++)
    for (store_claim *e = cs->slots[i], *next; e; e = next) {
      next = e->next;
      free(e);
    }
  free(cs->slots);
  *cs = (store_claims){0};
}
