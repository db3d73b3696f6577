/* The in-memory job store: a 4-ary min-heap of records ordered by
 * (next_run_time, store_seq) plus an id hash table chained through
 * rec->store_link. add, update, remove and claim are O(log n), lookup O(1).
 *
 * rec->store_pos is the record's heap index, or POS_IDLE for a record that is
 * in the hash but not in the heap (paused), or POS_CLAIMED while the
 * scheduler holds it between claim_due and release. The heap array always has
 * room for every record the store holds, so only add ever allocates: update
 * and release cannot fail for lack of memory.
 *
 * No locking: the store does no I/O, so the scheduler calls it with its own
 * mutex held (see the store contract in apsched_plugin.h). */
#include "memory_internal.h"
#include "../util/strmap.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define POS_IDLE UINT32_MAX
#define POS_CLAIMED (UINT32_MAX - 1)
/* Heap indices must stay below the two markers. */
#define MAX_RECORDS ((size_t)UINT32_MAX - 2)
#define MIN_CAPACITY 16

/* A heap entry carries its record's key (next_run_time), so that choosing
 * among children reads the heap array only: the records, scattered over
 * the heap of malloc, are read only to break a tie (store_seq). */
typedef struct heap_slot {
  apsched_time_t at; /* == rec->next_run_time */
  apsched_job_record *rec;
} heap_slot;

/* Records per bucket before the bucket array doubles (chains of 1 to 2 on
 * average): the heap slots' keys cost 8 bytes per job, the buckets give 4
 * of them back; only lookups by id walk the chains, never a dispatch. */
#define LOAD 2

typedef struct memory_store {
  apsched_jobstore base;
  heap_slot *heap;
  size_t heap_len;
  size_t heap_cap; /* >= count, so records returning to the heap always fit */
  apsched_job_record **buckets;
  size_t bucket_mask; /* bucket count - 1 (a power of two) */
  size_t count;       /* records in the hash: queued, paused and claimed */
  uint64_t hash_seed; /* random per store, so crafted ids cannot flood one chain */
  uint32_t next_seq;
  void *(*realloc_fn)(void *ptr, size_t size);
} memory_store;

static memory_store *as_memory(apsched_jobstore *st) { return (memory_store *)st; }

static apsched_job_record *next_in_chain(const apsched_job_record *rec) {
  return (apsched_job_record *)rec->store_link;
}

/* ------------------------------------------------------------------ hash */

/* The hash of an id (a record does not keep it: 4 more bytes per record
 * would cost an interval job a larger malloc chunk). */
static uint32_t id_hash(const memory_store *ms, const char *id) {
  return (uint32_t)apsched__hash_id(ms->hash_seed, id);
}

static apsched_job_record **bucket_of(memory_store *ms, const char *id) {
  return &ms->buckets[id_hash(ms, id) & ms->bucket_mask];
}

/* The link that points at the record with this id, or NULL. */
static apsched_job_record **find_in(apsched_job_record **bucket, const char *id) {
  for (apsched_job_record **link = bucket; *link;
       link = (apsched_job_record **)&(*link)->store_link)
    if (strcmp((*link)->id, id) == 0) return link;
  return NULL;
}

static apsched_job_record **find_link(memory_store *ms, const char *id) {
  return find_in(bucket_of(ms, id), id);
}

/* Moves every record into a new bucket array of new_count buckets. Failure
 * leaves the old table in place: only the chains get longer. */
static void rehash(memory_store *ms, size_t new_count) {
  if (new_count > SIZE_MAX / sizeof(apsched_job_record *)) return;
  apsched_job_record **fresh = ms->realloc_fn(NULL, new_count * sizeof *fresh);
  if (!fresh) return;
  memset(fresh, 0, new_count * sizeof *fresh);
  size_t old_count = ms->bucket_mask + 1;
  size_t mask = new_count - 1;
  for (size_t b = 0; b < old_count; b++) {
    apsched_job_record *rec = ms->buckets[b];
    while (rec) {
      apsched_job_record *next = next_in_chain(rec);
      apsched_job_record **head = &fresh[id_hash(ms, rec->id) & mask];
      rec->store_link = *head;
      *head = rec;
      rec = next;
    }
  }
  free(ms->buckets);
  ms->buckets = fresh;
  ms->bucket_mask = mask;
}

/* ------------------------------------------------------------------ heap */

static bool runs_before(const heap_slot *a, const heap_slot *b) {
  if (a->at != b->at) return a->at < b->at;
  return a->rec->store_seq < b->rec->store_seq;
}

static heap_slot slot_of(apsched_job_record *rec) {
  return (heap_slot){.at = rec->next_run_time, .rec = rec};
}

static void heap_set(memory_store *ms, size_t i, heap_slot slot) {
  ms->heap[i] = slot;
  slot.rec->store_pos = (uint32_t)i;
}

/* A 4-ary heap: half the levels of a binary one, and a level's four
 * children (64 bytes of slots) are fetched together. */
#define ARITY 4

static size_t parent_of(size_t i) { return (i - 1) / ARITY; }
static size_t first_child(size_t i) { return ARITY * i + 1; }

/* The earliest of the children of i in heap[0..len) (at least one). A
 * node with all four children (every one above the last level) plays two
 * independent pairs, then their winners. */
static size_t earliest_child(const memory_store *ms, size_t len, size_t i) {
  const heap_slot *h = ms->heap;
  size_t first = first_child(i);
  if (first + ARITY <= len) {
    size_t a = first + runs_before(&h[first + 1], &h[first]);
    size_t b = first + 2 + runs_before(&h[first + 3], &h[first + 2]);
    return runs_before(&h[b], &h[a]) ? b : a;
  }
  size_t best = first;
  for (size_t c = first + 1; c < len; c++)
    if (runs_before(&h[c], &h[best])) best = c;
  return best;
}

/* Moves slot from the hole at i towards the root to its place. */
static void sift_up(memory_store *ms, size_t i, heap_slot slot) {
  while (i > 0) {
    size_t parent = parent_of(i);
    if (!runs_before(&slot, &ms->heap[parent])) break;
    heap_set(ms, i, ms->heap[parent]);
    i = parent;
  }
  heap_set(ms, i, slot);
}

/* Moves slot from the hole at i towards the leaves of heap[0..len). */
static void sift_down(memory_store *ms, size_t len, size_t i, heap_slot slot) {
  while (first_child(i) < len) {
    size_t child = earliest_child(ms, len, i);
    if (!runs_before(&ms->heap[child], &slot)) break;
    heap_set(ms, i, ms->heap[child]);
    i = child;
  }
  heap_set(ms, i, slot);
}

/* Puts slot at hole i, in whichever direction its key requires. */
static void heap_place(memory_store *ms, size_t i, heap_slot slot) {
  if (i > 0 && runs_before(&slot, &ms->heap[parent_of(i)]))
    sift_up(ms, i, slot);
  else
    sift_down(ms, ms->heap_len, i, slot);
}

/* Before the 32-bit sequence wraps, renumber the queued records 0..n-1 in
 * their exact order, so equal run times stay FIFO forever. A heap sort in
 * place: no allocation, and it happens once per ~4 billion insertions. */
static void renumber(memory_store *ms) {
  size_t n = ms->heap_len;
  for (size_t end = n; end > 1; end--) {
    heap_slot top = ms->heap[0];
    sift_down(ms, end - 1, 0, ms->heap[end - 1]);
    ms->heap[end - 1] = top;
  }
  /* Now in descending order; a sorted ascending array is a valid heap. */
  for (size_t i = 0; i < n / 2; i++) {
    heap_slot t = ms->heap[i];
    ms->heap[i] = ms->heap[n - 1 - i];
    ms->heap[n - 1 - i] = t;
  }
  for (size_t i = 0; i < n; i++) {
    ms->heap[i].rec->store_pos = (uint32_t)i;
    ms->heap[i].rec->store_seq = (uint32_t)i;
  }
  ms->next_seq = (uint32_t)n;
}

/* The sequence for a record entering the queue. Only call while the heap is
 * valid (the record being queued is not in it). */
static uint32_t take_seq(memory_store *ms) {
  if (ms->next_seq == UINT32_MAX) renumber(ms);
  return ms->next_seq++;
}

static void heap_push(memory_store *ms, apsched_job_record *rec) {
  rec->store_seq = take_seq(ms);
  sift_up(ms, ms->heap_len++, slot_of(rec));
}

/* Takes rec out of the heap. Valid even if rec's key was changed since it
 * was placed: only the remaining slots are compared. */
static void heap_remove(memory_store *ms, apsched_job_record *rec) {
  size_t i = rec->store_pos;
  heap_slot last = ms->heap[--ms->heap_len];
  if (last.rec != rec) heap_place(ms, i, last);
  rec->store_pos = POS_IDLE;
}

/* Takes the root out. Bottom-up: the hole left at the root follows the
 * earliest child down to a leaf (no comparison with the record that will
 * fill it), and the last record, which belongs near the leaves, rises from
 * there. */
static apsched_job_record *heap_pop(memory_store *ms) {
  apsched_job_record *top = ms->heap[0].rec;
  size_t len = --ms->heap_len;
  if (len == 0) return top;
  heap_slot last = ms->heap[len];
  size_t i = 0;
  while (first_child(i) < len) {
    /* The hole goes down one of these four children: fetch all their
     * children (16 slots, 256 bytes) while this level is compared. */
    size_t grand = first_child(first_child(i));
    if (grand < len) {
      const char *from = (const char *)&ms->heap[grand];
      for (size_t b = 0; b < ARITY * ARITY * sizeof(heap_slot) + 64; b += 64)
        __builtin_prefetch(from + b);
    }
    size_t child = earliest_child(ms, len, i);
    heap_set(ms, i, ms->heap[child]);
    i = child;
  }
  sift_up(ms, i, last);
  return top;
}

/* -------------------------------------------------------------- capacity */

static bool resize_heap(memory_store *ms, size_t cap) {
  if (cap > SIZE_MAX / sizeof(heap_slot)) return false;
  heap_slot *heap = ms->realloc_fn(ms->heap, cap * sizeof *heap);
  if (!heap) return false;
  ms->heap = heap;
  ms->heap_cap = cap;
  return true;
}

/* Gives memory back after many removals. Thresholds at a quarter keep a
 * store that oscillates around a size from resizing on every call. */
static void maybe_shrink(memory_store *ms) {
  if (ms->heap_cap > MIN_CAPACITY && ms->count < ms->heap_cap / 4)
    resize_heap(ms, ms->heap_cap / 2); /* failure keeps the larger array */
  size_t buckets = ms->bucket_mask + 1;
  if (buckets > MIN_CAPACITY && ms->count < LOAD * buckets / 4) rehash(ms, buckets / 2);
}

/* Unlinks rec from the hash and the heap and frees it, keeping the arrays'
 * sizes (a batch add relies on the room it reserved). */
static void discard_keep_room(memory_store *ms, apsched_job_record **link) {
  apsched_job_record *rec = *link;
  *link = next_in_chain(rec);
  if (rec->store_pos < POS_CLAIMED) heap_remove(ms, rec);
  ms->count--;
  apsched_job_record_free(rec);
}

static void discard(memory_store *ms, apsched_job_record **link) {
  discard_keep_room(ms, link);
  maybe_shrink(ms);
}

/* ---------------------------------------------------------------- vtable */

static int mem_open(apsched_jobstore *st, apsched_scheduler *s, const char *alias) {
  (void)st;
  (void)s;
  (void)alias;
  return APSCHED_OK;
}

static void mem_close(apsched_jobstore *st) { (void)st; }

static void free_all_records(memory_store *ms) {
  size_t buckets = ms->bucket_mask + 1;
  for (size_t b = 0; b < buckets; b++) {
    apsched_job_record *rec = ms->buckets[b];
    while (rec) {
      apsched_job_record *next = next_in_chain(rec);
      apsched_job_record_free(rec);
      rec = next;
    }
    ms->buckets[b] = NULL;
  }
  ms->heap_len = 0;
  ms->count = 0;
}

static void mem_destroy(apsched_jobstore *st) {
  memory_store *ms = as_memory(st);
  if (!ms) return;
  free_all_records(ms);
  free(ms->heap);
  free(ms->buckets);
  free(ms);
}

/* Room for n more records in the heap array (see heap_cap). */
static int reserve(memory_store *ms, size_t n) {
  if (n > MAX_RECORDS - ms->count) return APSCHED_ENOMEM;
  size_t need = ms->count + n;
  if (need <= ms->heap_cap) return APSCHED_OK;
  size_t cap = ms->heap_cap * 2;
  if (cap < need) cap = need;
  if (cap > MAX_RECORDS) cap = MAX_RECORDS;
  return resize_heap(ms, cap) ? APSCHED_OK : APSCHED_ENOMEM;
}

/* Links rec into the hash (and the heap unless paused); room is reserved. */
static void insert(memory_store *ms, apsched_job_record *rec) {
  apsched_job_record **head = bucket_of(ms, rec->id);
  rec->store_link = *head;
  *head = rec;
  ms->count++;
  rec->store_pos = POS_IDLE;
  if (rec->next_run_time != APSCHED_TIME_NONE) heap_push(ms, rec);
}

/* Checks a batch in order before anything changes: record i may not reuse
 * an id the store holds or an earlier record of the batch has, unless it
 * replaces. last[i] (when n > 1) tells whether record i is the last of its
 * id; earlier ones are superseded by a later upsert and never inserted. */
static int check_batch(memory_store *ms, apsched_job_record *const *recs, size_t n,
                       const bool *replace, bool *last, size_t *failed) {
  apsched_strmap seen = {0}; /* id -> &recs[j], the latest record with that id */
  int rc = APSCHED_OK;
  for (size_t i = 0; i < n && rc == APSCHED_OK; i++) {
    const apsched_job_record *rec = recs[i];
    bool upsert = replace && replace[i];
    apsched_job_record *const *earlier = n > 1 ? apsched__strmap_get(&seen, rec->id) : NULL;
    if (earlier && !upsert) {
      rc = APSCHED_EEXIST;
    } else if (!earlier && !upsert && !(rec->flags & APSCHED_JOB_GENERATED_ID) &&
               find_link(ms, rec->id)) {
      /* A library-generated UUIDv7 cannot collide in practice (74 random bits per ms):
       * skipping the check saves a cache miss per add on large stores. */
      rc = APSCHED_EEXIST;
    } else if (n > 1) {
      last[i] = true;
      if (earlier) last[earlier - recs] = false;
      if (apsched__strmap_put(&seen, rec->id, (void *)&recs[i]) != 0) rc = APSCHED_ENOMEM;
    }
    if (rc == APSCHED_EEXIST) *failed = i;
  }
  apsched__strmap_free(&seen);
  return rc;
}

static int mem_add(apsched_jobstore *st, apsched_job_record *const *recs, size_t n,
                   const bool *replace, size_t *failed) {
  memory_store *ms = as_memory(st);
  size_t dummy;
  if (!failed) failed = &dummy;
  *failed = n;
  if (!recs && n > 0) return APSCHED_EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (recs[i]) continue;
    *failed = i;
    return APSCHED_EINVAL;
  }
  bool *last = NULL;
  if (n > 1 && !(last = malloc(n))) return APSCHED_ENOMEM;
  int rc = check_batch(ms, recs, n, replace, last, failed);
  if (rc == APSCHED_OK) rc = reserve(ms, n);
  if (rc != APSCHED_OK) {
    free(last);
    return rc;
  }
  if (ms->count + n > LOAD * (ms->bucket_mask + 1)) {
    size_t buckets = ms->bucket_mask + 1;
    while (LOAD * buckets < ms->count + n && buckets <= SIZE_MAX / 4) buckets *= 2;
    rehash(ms, buckets); /* failure only makes chains longer */
  }
  /* Nothing can fail from here on. */
  for (size_t i = 0; i < n; i++) {
    apsched_job_record *rec = recs[i];
    if (last && !last[i]) {
      apsched_job_record_free(rec); /* superseded within the batch */
      continue;
    }
    if (replace && replace[i]) {
      apsched_job_record **link = find_link(ms, rec->id);
      if (link) discard_keep_room(ms, link);
    }
    insert(ms, rec);
  }
  free(last);
  return APSCHED_OK;
}

static int mem_lookup(apsched_jobstore *st, const char *id, const apsched_job_record **out) {
  if (!id || !out) return APSCHED_EINVAL;
  apsched_job_record **link = find_link(as_memory(st), id);
  *out = link ? *link : NULL;
  return link ? APSCHED_OK : APSCHED_ENOENT;
}

static int mem_update(apsched_jobstore *st, apsched_job_record *rec) {
  memory_store *ms = as_memory(st);
  if (!rec) return APSCHED_EINVAL;
  apsched_job_record **link = find_link(ms, rec->id);
  if (!link) return APSCHED_ENOENT;
  /* Swap the new record into the old one's place; nothing here allocates,
   * so nothing can fail halfway. */
  apsched_job_record *old = *link;
  rec->store_link = old->store_link;
  *link = rec;
  rec->store_pos = POS_IDLE;
  bool queued = rec->next_run_time != APSCHED_TIME_NONE;
  /* An update re-enters the queue: among jobs due at the same instant, the
   * one changed last runs last. */
  if (old->store_pos < POS_CLAIMED) {
    heap_set(ms, old->store_pos, slot_of(rec));
    if (queued && ms->next_seq != UINT32_MAX) {
      rec->store_seq = ms->next_seq++;
      heap_place(ms, rec->store_pos, slot_of(rec)); /* one sift, in whichever direction */
    } else {
      heap_remove(ms, rec); /* valid whatever rec's key is */
      if (queued) heap_push(ms, rec);
    }
  } else if (queued) {
    heap_push(ms, rec);
  }
  apsched_job_record_free(old);
  return APSCHED_OK;
}

static int mem_remove(apsched_jobstore *st, const char *id) {
  memory_store *ms = as_memory(st);
  if (!id) return APSCHED_EINVAL;
  apsched_job_record **link = find_link(ms, id);
  if (!link) return APSCHED_ENOENT;
  discard(ms, link);
  return APSCHED_OK;
}

static int mem_remove_all(apsched_jobstore *st) {
  memory_store *ms = as_memory(st);
  free_all_records(ms);
  if (ms->heap_cap > MIN_CAPACITY) resize_heap(ms, MIN_CAPACITY);
  if (ms->bucket_mask + 1 > MIN_CAPACITY) rehash(ms, MIN_CAPACITY); /* empty: just reallocates */
  return APSCHED_OK;
}

static int mem_next_run_time(apsched_jobstore *st, apsched_time_t *out) {
  memory_store *ms = as_memory(st);
  *out = ms->heap_len ? ms->heap[0].at : APSCHED_TIME_NONE;
  return APSCHED_OK;
}

static int mem_claim_due(apsched_jobstore *st, apsched_time_t now, apsched_job_record **out,
                         size_t max) {
  memory_store *ms = as_memory(st);
  if (!out && max > 0) return APSCHED_EINVAL;
  if (max > INT_MAX) max = INT_MAX;
  size_t n = 0;
  while (n < max && ms->heap_len > 0 && ms->heap[0].at <= now) {
    apsched_job_record *rec = heap_pop(ms);
    rec->store_pos = POS_CLAIMED;
    out[n++] = rec;
  }
  return (int)n;
}

static int mem_release(apsched_jobstore *st, apsched_job_record *rec, apsched_time_t next_run_time,
                       apsched_time_t trigger_time, bool remove_job) {
  memory_store *ms = as_memory(st);
  if (!rec || rec->store_pos != POS_CLAIMED) return APSCHED_EINVAL;
  if (remove_job) {
    apsched_job_record **link = bucket_of(ms, rec->id);
    while (*link && *link != rec) link = (apsched_job_record **)&(*link)->store_link;
    if (!*link) return APSCHED_EINVAL; /* claimed from another store */
    discard(ms, link);
    return APSCHED_OK;
  }
  rec->next_run_time = next_run_time;
  rec->trigger_time = trigger_time;
  rec->store_pos = POS_IDLE;
  if (next_run_time != APSCHED_TIME_NONE) heap_push(ms, rec); /* room reserved by add */
  return APSCHED_OK;
}

static int mem_foreach(apsched_jobstore *st, int (*fn)(const apsched_job_record *rec, void *ud),
                       void *ud) {
  memory_store *ms = as_memory(st);
  if (!fn) return APSCHED_EINVAL;
  size_t buckets = ms->bucket_mask + 1;
  for (size_t b = 0; b < buckets; b++) {
    for (const apsched_job_record *rec = ms->buckets[b]; rec; rec = next_in_chain(rec)) {
      int rc = fn(rec, ud);
      if (rc != 0) return rc;
    }
  }
  return APSCHED_OK;
}

static const apsched_jobstore_vtable memory_vtable = {
    .version = APSCHED_JOBSTORE_VTABLE_VERSION,
    .kind = "memory",
    .flags = 0,
    .open = mem_open,
    .close = mem_close,
    .destroy = mem_destroy,
    .add = mem_add,
    .lookup = mem_lookup,
    .update = mem_update,
    .remove = mem_remove,
    .remove_all = mem_remove_all,
    .next_run_time = mem_next_run_time,
    .claim_due = mem_claim_due,
    .release = mem_release,
    .foreach = mem_foreach,
};

int apsched_memory_store_create(apsched_jobstore **out) {
  if (!out) return apsched__error(APSCHED_EINVAL, "memory_store_create: out is NULL");
  *out = NULL;
  memory_store *ms = calloc(1, sizeof *ms);
  if (!ms) return APSCHED_ENOMEM;
  ms->base.vtable = &memory_vtable;
  ms->realloc_fn = realloc;
  ms->heap = malloc(MIN_CAPACITY * sizeof *ms->heap);
  ms->buckets = calloc(MIN_CAPACITY, sizeof *ms->buckets);
  if (!ms->heap || !ms->buckets) {
    free(ms->heap);
    free(ms->buckets);
    free(ms);
    return APSCHED_ENOMEM;
  }
  ms->heap_cap = MIN_CAPACITY;
  ms->bucket_mask = MIN_CAPACITY - 1;
  ms->hash_seed = apsched__random_upto(UINT64_MAX);
  *out = &ms->base;
  return APSCHED_OK;
}

/* ------------------------------------------------------------ test hooks */

int apsched__memory_store_check(apsched_jobstore *st, const char **why) {
  memory_store *ms = as_memory(st);
  const char *dummy;
  if (!why) why = &dummy;
  *why = NULL;
  if (ms->heap_len > ms->count) *why = "more queued records than stored ones";
  if (ms->heap_cap < ms->count) *why = "heap array has no room reserved for every record";
  for (size_t i = 0; i < ms->heap_len && !*why; i++) {
    const apsched_job_record *rec = ms->heap[i].rec;
    if (rec->store_pos != i) *why = "heap record's store_pos differs from its index";
    else if (ms->heap[i].at != rec->next_run_time) *why = "heap key differs from its record's next run time";
    else if (rec->next_run_time == APSCHED_TIME_NONE) *why = "paused record in the heap";
    else if (i > 0 && runs_before(&ms->heap[i], &ms->heap[parent_of(i)])) *why = "heap order violated";
    else if (rec->store_seq >= ms->next_seq) *why = "sequence number from the future";
    else if (!find_link(ms, rec->id) || *find_link(ms, rec->id) != rec) *why = "heap record missing from the hash";
  }
  size_t stored = 0, queued = 0;
  size_t buckets = ms->bucket_mask + 1;
  for (size_t b = 0; b < buckets && !*why; b++) {
    for (const apsched_job_record *rec = ms->buckets[b]; rec && !*why; rec = next_in_chain(rec)) {
      stored++;
      if ((id_hash(ms, rec->id) & ms->bucket_mask) != b) *why = "record in wrong bucket";
      else if (rec->store_pos < POS_CLAIMED) {
        queued++;
        if (rec->store_pos >= ms->heap_len || ms->heap[rec->store_pos].rec != rec)
          *why = "record's store_pos does not point at it";
      } else if (rec->store_pos == POS_IDLE && rec->next_run_time != APSCHED_TIME_NONE) {
        *why = "unpaused, unclaimed record out of the heap";
      }
    }
  }
  if (!*why && stored != ms->count) *why = "hash holds a different number of records than count";
  if (!*why && queued != ms->heap_len) *why = "hash and heap disagree on the queued records";
  return *why ? -1 : 0;
}

void apsched__memory_store_set_seq(apsched_jobstore *st, uint32_t seq) {
  memory_store *ms = as_memory(st);
  /* Keep every queued sequence below next_seq, as take_seq assumes. */
  for (size_t i = 0; i < ms->heap_len; i++)
    if (ms->heap[i].rec->store_seq >= seq) return;
  ms->next_seq = seq;
}

void apsched__memory_store_set_realloc(apsched_jobstore *st, void *(*fn)(void *ptr, size_t size)) {
  as_memory(st)->realloc_fn = fn ? fn : realloc;
}

size_t apsched__memory_store_max_chain(apsched_jobstore *st, size_t *buckets) {
  memory_store *ms = as_memory(st);
  size_t longest = 0;
  size_t n = ms->bucket_mask + 1;
  for (size_t b = 0; b < n; b++) {
    size_t len = 0;
    for (const apsched_job_record *rec = ms->buckets[b]; rec; rec = next_in_chain(rec)) len++;
    if (len > longest) longest = len;
  }
  if (buckets) *buckets = n;
  return longest;
}
