/* Job records (what stores keep), shared job arguments, and the process-wide
 * registry of job functions. */
#include "internal.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A block of len bytes carrying holder (whose reference it takes over). */
static apsched_job_args *args_alloc(apsched_arg_ptr *holder, const void *bytes, size_t len,
                                    bool *oom) {
  apsched_job_args *a = malloc(sizeof *a + len);
  if (!a) {
    *oom = true;
    return NULL;
  }
  atomic_init(&a->refs, 1);
  a->holder = holder;
  a->ptr = holder ? holder->ptr : NULL;
  a->len = len;
  if (len) memcpy(a->bytes, bytes, len);
  return a;
}

apsched_job_args *apsched__args_new(void *ptr, void (*ptr_free)(void *), const void *bytes,
                                    size_t len, bool *oom) {
  *oom = false;
  if (!ptr && !ptr_free && len == 0) return NULL;
  apsched_arg_ptr *h = NULL;
  if (ptr || ptr_free) {
    if (!(h = malloc(sizeof *h))) {
      *oom = true;
      return NULL;
    }
    atomic_init(&h->refs, 1);
    h->ptr = ptr;
    h->destroy = ptr_free;
  }
  apsched_job_args *a = args_alloc(h, bytes, len, oom);
  if (!a) free(h);
  return a;
}

apsched_job_args *apsched__args_with_bytes(const apsched_job_args *from, const void *bytes,
                                           size_t len, bool *oom) {
  *oom = false;
  apsched_arg_ptr *h = from ? from->holder : NULL;
  if (!h && len == 0) return NULL;
  apsched_job_args *a = args_alloc(h, bytes, len, oom);
  if (a && h) atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
  return a;
}

void apsched__args_disown(apsched_job_args *a) {
  if (a && a->holder) a->holder->destroy = NULL;
}

apsched_job_args *apsched__args_ref(apsched_job_args *a) {
  if (a) atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
  return a;
}

/* While a thread holds a scheduler's lock, argument destructors (user code)
 * are deferred and run when it lets go of the lock. */
static _Thread_local int defer_depth;
static _Thread_local apsched_arg_ptr *deferred;

static void holder_unref(apsched_arg_ptr *h) {
  if (!h || atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1) return;
  if (h->destroy && defer_depth > 0) {
    h->next_deferred = deferred;
    deferred = h;
    return;
  }
  if (h->destroy) h->destroy(h->ptr);
  free(h);
}

void apsched__args_unref(apsched_job_args *a) {
  if (!a) return;
  if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1) return;
  apsched_arg_ptr *h = a->holder;
  free(a);
  holder_unref(h);
}

void apsched__args_defer_begin(void) { defer_depth++; }

void apsched__args_defer_end(void) {
  if (--defer_depth > 0) return;
  while (deferred) {
    apsched_arg_ptr *h = deferred;
    deferred = h->next_deferred;
    h->destroy(h->ptr);
    free(h);
  }
}

bool apsched_job_args_has_pointer(const apsched_job_args *a) { return a && a->holder; }

apsched_job_args *apsched_job_args_new(const void *bytes, size_t len) {
  if (len == 0 || !bytes) return NULL;
  bool oom;
  return apsched__args_new(NULL, NULL, bytes, len, &oom);
}

apsched_job_record *apsched_job_record_new(const char *id) {
  return id ? apsched__record_new(id) : NULL;
}

const void *apsched_job_args_bytes(const apsched_job_args *a, size_t *len) {
  if (!a || a->len == 0) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = a->len;
  return a->bytes;
}

/* Where a record's inline trigger starts: after the id's NUL, 8-aligned
 * (a trigger holds pointers and 64-bit times). */
static size_t inline_trigger_offset(size_t id_size) {
  return (offsetof(apsched_job_record, id) + id_size + 7) & ~(size_t)7;
}

/* A zeroed record with room for a trigger of trigger_room bytes after its
 * id (0: none). */
static apsched_job_record *record_alloc(const char *id, size_t trigger_room) {
  size_t n = strlen(id) + 1;
  /* The id starts before sizeof's tail padding: allocating from its offset
   * keeps the chunk as small as the fields allow. */
  size_t size = trigger_room ? inline_trigger_offset(n) + trigger_room
                             : offsetof(apsched_job_record, id) + n;
  apsched_job_record *r = malloc(size);
  if (!r) return NULL;
  memset(r, 0, offsetof(apsched_job_record, id));
  r->next_run_time = APSCHED_TIME_NONE;
  r->trigger_time = APSCHED_TIME_NONE;
  memcpy(r->id, id, n);
  return r;
}

/* Whether rec's trigger lives in rec's own allocation. Only
 * apsched__record_with_trigger puts one there, and only a flat kind; a
 * trigger allocated on its own is never at that address (it would sit
 * inside or right after the record's chunk, where the allocator keeps its
 * header). */
static bool trigger_is_inline(const apsched_job_record *rec) {
  uintptr_t slot = (uintptr_t)rec + inline_trigger_offset(strlen(rec->id) + 1);
  return rec->trigger && (uintptr_t)rec->trigger == slot && apsched__trigger_flat_size(rec->trigger);
}

apsched_job_record *apsched__record_new(const char *id) { return record_alloc(id, 0); }

int apsched__record_with_trigger(const char *id, const apsched_trigger *t,
                                 apsched_job_record **out) {
  size_t flat = t ? apsched__trigger_flat_size(t) : 0; /* NULL: the clone names the error */
  apsched_job_record *r = record_alloc(id, flat);
  *out = NULL;
  if (!r) return APSCHED_ENOMEM;
  if (flat) {
    r->trigger = (apsched_trigger *)((char *)r + inline_trigger_offset(strlen(id) + 1));
    memcpy(r->trigger, t, flat); /* a flat trigger's copy is its bytes */
  } else {
    int rc = apsched_trigger_clone(t, &r->trigger);
    if (rc != APSCHED_OK) {
      free(r);
      return rc;
    }
  }
  *out = r;
  return APSCHED_OK;
}

void apsched__record_set_trigger(apsched_job_record *rec, apsched_trigger *t) {
  if (!trigger_is_inline(rec)) apsched_trigger_free(rec->trigger);
  rec->trigger = t;
}

void apsched_job_record_free(apsched_job_record *rec) {
  if (!rec) return;
  if (!trigger_is_inline(rec)) apsched_trigger_free(rec->trigger);
  free(rec->name);
  apsched__args_unref(rec->args);
  free(rec);
}

const char *apsched__record_name(const apsched_job_record *rec) {
  return rec->name ? rec->name : (rec->func->name ? rec->func->name : rec->id);
}

apsched_job_record *apsched_job_record_copy(const apsched_job_record *rec) {
  return apsched__record_copy(rec, true);
}

apsched_job_record *apsched__record_copy(const apsched_job_record *rec, bool with_trigger) {
  if (!rec) return NULL;
  apsched_job_record *c = NULL;
  if (with_trigger) apsched__record_with_trigger(rec->id, rec->trigger, &c);
  else c = apsched__record_new(rec->id);
  if (!c) return NULL;
  c->next_run_time = rec->next_run_time;
  c->trigger_time = rec->trigger_time;
  c->func = rec->func;
  c->executor = rec->executor;
  c->misfire_grace_ms = rec->misfire_grace_ms;
  c->max_runtime_ms = rec->max_runtime_ms;
  c->max_instances = rec->max_instances;
  c->flags = rec->flags;
  c->catchup_window_ms = rec->catchup_window_ms;
  c->pause_after_failures = rec->pause_after_failures;
  c->failures = rec->failures;
  c->overlap = rec->overlap;
  if (rec->name && !(c->name = apsched__strdup(rec->name))) {
    apsched_job_record_free(c);
    return NULL;
  }
  c->args = apsched__args_ref(rec->args);
  return c;
}

const apsched_func *apsched_func_by_name(const char *name) {
  if (!name || !*name) {
    apsched__error(APSCHED_EINVAL, "func_by_name: the name is %s", !name ? "NULL" : "empty");
    return NULL;
  }
  return apsched__func_by_name(name, true);
}

apsched_job_fn apsched_func_get(const apsched_func *f) {
  return f ? apsched__func_fn(f) : NULL;
}

/* ---- function registry: a small list; lookups happen at add time only. */

typedef struct func_entry {
  apsched_func func;
  struct func_entry *next;
} func_entry;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static func_entry *registry;
/* Changes whenever what a lookup by pointer finds may change: an entry
 * added, or a restored name's function set. Never 0. */
static atomic_uint registry_generation = 1;

/* The last lookup by pointer on this thread: adds usually name the same
 * function again and again, and entries are never freed. */
static _Thread_local struct {
  apsched_job_fn fn;
  const apsched_func *found;
  unsigned generation;
} last_by_ptr;

static func_entry *find_locked(apsched_job_fn fn, const char *name) {
  for (func_entry *e = registry; e; e = e->next) {
    if (name ? (e->func.name && strcmp(e->func.name, name) == 0)
             : (apsched__func_fn(&e->func) == fn && e->func.name == NULL))
      return e;
  }
  return NULL;
}

static func_entry *insert_locked(apsched_job_fn fn, const char *name) {
  func_entry *e = malloc(sizeof *e);
  char *copy = name ? apsched__strdup(name) : NULL;
  if (!e || (name && !copy)) {
    free(e);
    free(copy);
    return NULL;
  }
  e->func.fn = fn;
  e->func.name = copy;
  e->next = registry;
  registry = e;
  atomic_fetch_add(&registry_generation, 1);
  return e;
}

int apsched_register_func(const char *name, apsched_job_fn fn) {
  if (!name || !*name || !fn)
    return apsched__error(APSCHED_EINVAL, "register_func: %s", !fn ? "fn is NULL" : "name is empty");
  int rc = APSCHED_OK;
  pthread_mutex_lock(&registry_lock);
  func_entry *e = find_locked(NULL, name);
  apsched_job_fn had = e ? apsched__func_fn(&e->func) : NULL;
  if (had && had != fn) {
    rc = apsched__error(APSCHED_EEXIST, "register_func: '%.64s' is registered for another function",
                        name);
  } else if (e) {
    /* Resolves an entry created for a restored job; loops read it unlocked. */
    __atomic_store_n(&e->func.fn, fn, __ATOMIC_RELEASE);
    atomic_fetch_add(&registry_generation, 1);
  } else if (!insert_locked(fn, name)) {
    rc = apsched__error(APSCHED_ENOMEM, "register_func: out of memory");
  }
  pthread_mutex_unlock(&registry_lock);
  return rc;
}

const apsched_func *apsched__func_by_ptr(apsched_job_fn fn) {
  unsigned generation = atomic_load(&registry_generation);
  if (last_by_ptr.fn == fn && last_by_ptr.generation == generation) return last_by_ptr.found;
  pthread_mutex_lock(&registry_lock);
  /* Prefer the named entry, so jobs added by pointer still persist by name. */
  func_entry *e = NULL;
  for (func_entry *it = registry; it && !e; it = it->next)
    if (apsched__func_fn(&it->func) == fn && it->func.name) e = it;
  if (!e) e = find_locked(fn, NULL);
  if (!e) e = insert_locked(fn, NULL);
  pthread_mutex_unlock(&registry_lock);
  if (e) {
    /* The generation read before the lookup: a change made meanwhile
     * makes the next call look again. */
    last_by_ptr.fn = fn;
    last_by_ptr.found = &e->func;
    last_by_ptr.generation = generation;
  }
  return e ? &e->func : NULL;
}

const apsched_func *apsched__func_by_name(const char *name, bool create) {
  pthread_mutex_lock(&registry_lock);
  func_entry *e = find_locked(NULL, name);
  if (!e && create) e = insert_locked(NULL, name);
  pthread_mutex_unlock(&registry_lock);
  return e ? &e->func : NULL;
}
