/* The job API (add, remove, pause, resume, modify, reschedule, get, print),
 * pending jobs, and what the loop does with one due job. */
#include "scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

/* Longest catch-up walked run by run; beyond it the trigger skips ahead. */
#define CATCHUP_STEPS 256
/* Most run times handed to an executor in one run (no coalescing, long grace). */
#define RUN_BATCH_MAX 256

/* ------------------------------------------------------------- helpers */

store_entry *apsched__find_store(apsched_scheduler *s, const char *alias) {
  for (store_entry *e = s->stores; e; e = e->next)
    if (strcmp(e->alias, alias) == 0) return e;
  return NULL;
}

executor_entry *apsched__find_executor(apsched_scheduler *s, const char *alias) {
  for (executor_entry *e = s->executors; e; e = e->next)
    if (strcmp(e->alias, alias) == 0) return e;
  return NULL;
}

static apsched_time_t with_jitter(const apsched_trigger *t, apsched_time_t base) {
  if (base == APSCHED_TIME_NONE || t->jitter <= 0) return base;
  apsched_time_t out;
  if (__builtin_add_overflow(base, (int64_t)apsched__random_upto((uint64_t)t->jitter), &out))
    return base;
  return out;
}

/* Sets the record's first run time from its trigger (paused: none). */
static void schedule_first(apsched_job_record *rec, apsched_time_t now) {
  rec->trigger_time = apsched_trigger_next(rec->trigger, APSCHED_TIME_NONE, now);
  rec->next_run_time = with_jitter(rec->trigger, rec->trigger_time);
}

static const char *default_name(const apsched_job_record *rec) {
  return rec->name ? rec->name : (rec->func->name ? rec->func->name : rec->id);
}

static bool valid_id(const char *id) {
  size_t n = strnlen(id, APSCHED_ID_MAX + 1);
  if (n == 0 || n > APSCHED_ID_MAX) return false;
  for (const unsigned char *p = (const unsigned char *)id; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return false;
  return true;
}

static bool valid_alias(const char *alias) { return valid_id(alias) && strlen(alias) < 128; }

static bool valid_flag(apsched_flag f) { return f == APSCHED_DEFAULT || f == APSCHED_YES || f == APSCHED_NO; }

static bool valid_grace(int64_t g) {
  return g == APSCHED_GRACE_UNLIMITED || (g >= 0 && g <= APSCHED_DURATION_MAX);
}

static bool valid_duration(int64_t d) { return d >= 0 && d <= APSCHED_DURATION_MAX; }

static int check_id(const char *id) {
  if (!valid_id(id))
    return apsched__error(APSCHED_EINVAL,
                          "id: '%.64s' must be 1..%d bytes without control characters", id,
                          APSCHED_ID_MAX);
  return APSCHED_OK;
}

/* The settings add_job and modify_job share (zero: unchanged / default). */
static int check_settings(const char *name, int max_instances, int64_t grace, int64_t max_runtime,
                          apsched_flag coalesce, const char *executor) {
  if (name && !*name) return apsched__error(APSCHED_EINVAL, "name: empty");
  if (max_instances < 0 || max_instances > APSCHED_MAX_INSTANCES_LIMIT)
    return apsched__error(APSCHED_EINVAL, "max_instances: %d is outside 1..%d", max_instances,
                          APSCHED_MAX_INSTANCES_LIMIT);
  if (!valid_grace(grace))
    return apsched__error(APSCHED_EINVAL,
                          "misfire_grace_time: %lld us is not 0..%lld or APSCHED_GRACE_UNLIMITED",
                          (long long)grace, (long long)APSCHED_DURATION_MAX);
  if (max_runtime != APSCHED_NO_MAX_RUNTIME && !valid_duration(max_runtime))
    return apsched__error(APSCHED_EINVAL, "max_runtime: %lld us is outside 0..%lld",
                          (long long)max_runtime, (long long)APSCHED_DURATION_MAX);
  if (!valid_flag(coalesce))
    return apsched__error(APSCHED_EINVAL, "coalesce: %d is not an apsched_flag", (int)coalesce);
  if (executor && !valid_alias(executor))
    return apsched__error(APSCHED_EINVAL, "executor: '%.64s' is not a valid alias", executor);
  return APSCHED_OK;
}

/* Microseconds (validated) -> whole milliseconds, rounded up. */
static uint32_t to_ms(int64_t usec) { return (uint32_t)((usec + APSCHED_MSEC - 1) / APSCHED_MSEC); }

static uint32_t grace_to_ms(int64_t usec) {
  return usec == APSCHED_GRACE_UNLIMITED ? UINT32_MAX : to_ms(usec);
}

/* Resolves func / func_name into an interned entry; NULL if invalid. */
static int resolve_func(apsched_job_fn fn, const char *name, const apsched_func **out) {
  if (fn && name) {
    const apsched_func *f = apsched__func_by_name(name, false);
    if (!f || f->fn != fn)
      return apsched__error(APSCHED_EINVAL, "func_name: '%s' is not registered for that func", name);
    *out = f;
    return APSCHED_OK;
  }
  if (fn) {
    *out = apsched__func_by_ptr(fn);
    return *out ? APSCHED_OK : APSCHED_ENOMEM;
  }
  if (!name) return apsched__error(APSCHED_EINVAL, "func: no function given (func or func_name)");
  const apsched_func *f = apsched__func_by_name(name, false);
  if (!f || !f->fn)
    return apsched__error(APSCHED_EINVAL, "func_name: no function is registered as '%s'", name);
  *out = f;
  return APSCHED_OK;
}

/* A scheduler-owned copy of a trigger, bound to now. */
static int copy_trigger(const apsched_trigger *t, apsched_time_t now, apsched_trigger **out) {
  apsched_trigger *copy;
  if (!t) {
    int rc = apsched_trigger_date(NULL, &copy);
    if (rc != APSCHED_OK) return rc;
  } else {
    if (!apsched__trigger_vtable_ok(t))
      return apsched__error(APSCHED_EINVAL, "trigger: unknown vtable version or missing entries");
    int rc = apsched_trigger_clone(t, &copy);
    if (rc != APSCHED_OK) return rc;
  }
  if (copy->vtable->bind) copy->vtable->bind(copy, now);
  *out = copy;
  return APSCHED_OK;
}

/* Builds a record from add options. Everything that can fail without the
 * lock happens here; aliases are interned later, under the lock. */
static int build_record(apsched_scheduler *s, const apsched_job_options *o, apsched_time_t now,
                        apsched_job_record **out) {
  char generated[33];
  const char *id = o->id;
  if (!id) {
    apsched__uuid_hex(generated);
    id = generated;
  }
  int rc = check_id(id);
  if (rc == APSCHED_OK)
    rc = check_settings(o->name, o->max_instances, o->misfire_grace_time, o->max_runtime,
                        o->coalesce, o->executor);
  if (rc == APSCHED_OK && o->max_runtime < 0)
    rc = apsched__error(APSCHED_EINVAL, "max_runtime: %lld us is negative", (long long)o->max_runtime);
  if (rc != APSCHED_OK) return rc;
  if (o->arg_len && !o->arg_bytes)
    return apsched__error(APSCHED_EINVAL, "arg_bytes: NULL with arg_len %zu", o->arg_len);
  if (o->jobstore && !valid_alias(o->jobstore))
    return apsched__error(APSCHED_EINVAL, "jobstore: '%.64s' is not a valid alias", o->jobstore);
  if (o->next_run_time && o->paused)
    return apsched__error(APSCHED_EINVAL, "next_run_time and paused: give one or the other");
  const apsched_func *func;
  rc = resolve_func(o->func, o->func_name, &func);
  if (rc != APSCHED_OK) return rc;
  apsched_job_record *rec = apsched__record_new(id);
  if (!rec) return APSCHED_ENOMEM;
  rec->func = func;
  rc = copy_trigger(o->trigger, now, &rec->trigger);
  if (rc != APSCHED_OK) goto fail;
  rc = APSCHED_ENOMEM;
  if (o->name && !(rec->name = apsched__strdup(o->name))) goto fail;
  bool oom;
  rec->args = apsched__args_new(o->arg, o->arg_free, o->arg_bytes, o->arg_len, &oom);
  if (oom) goto fail;
  rec->max_instances = (uint16_t)(o->max_instances ? o->max_instances : s->default_max_instances);
  rec->misfire_grace_ms = grace_to_ms(o->misfire_grace_time ? o->misfire_grace_time : s->default_grace);
  rec->max_runtime_ms = to_ms(o->max_runtime);
  bool coalesce = o->coalesce == APSCHED_DEFAULT ? s->default_coalesce : o->coalesce == APSCHED_YES;
  rec->flags = (uint16_t)((coalesce ? APSCHED_JOB_COALESCE : 0) |
                          (o->id ? 0 : APSCHED_JOB_GENERATED_ID));
  *out = rec;
  return APSCHED_OK;
fail:
  /* The argument destructor belongs to the caller until the add succeeds. */
  if (rec->args) rec->args->ptr_free = NULL;
  apsched_job_record_free(rec);
  return rc;
}

static void add_event(apsched_scheduler *s, notice_list *nl, int code, const char *id,
                      const char *jobstore) {
  if (!apsched__wants(s, code)) return;
  apsched__notice_own(s, apsched__notice_add(s, nl, code), id, jobstore);
}

/* ---------------------------------------------------------- pending jobs */

/* Bit kept in a pending record's flags: "added paused" (cleared at commit). */
#define PENDING_PAUSED 0x8000

static void pending_unlink(apsched_scheduler *s, pending_job *p) {
  apsched__strmap_remove(&s->pending_index, p->rec->id);
  if (p->prev) p->prev->next = p->next;
  else s->pending_head = p->next;
  if (p->next) p->next->prev = p->prev;
  else s->pending_tail = p->prev;
}

static pending_job *pending_find(apsched_scheduler *s, const char *id, const char *jobstore) {
  pending_job *p = apsched__strmap_get(&s->pending_index, id);
  if (p && jobstore && strcmp(p->jobstore, jobstore) != 0) return NULL;
  return p;
}

void apsched__free_pending(apsched_scheduler *s) {
  while (s->pending_head) {
    pending_job *p = s->pending_head;
    pending_unlink(s, p);
    apsched_job_record_free(p->rec);
    apsched__dealloc(s, p);
  }
  apsched__strmap_free(&s->pending_index);
}

/* Asks the job's executor, if it exists already, whether it can run the job. */
static int executor_accepts(apsched_scheduler *s, const apsched_job_record *rec) {
  executor_entry *ex = apsched__find_executor(s, rec->executor);
  if (!ex || !ex->executor->vtable->check_job) return APSCHED_OK;
  char why[200] = "";
  int rc = ex->executor->vtable->check_job(ex->executor, rec, why, sizeof why);
  if (rc == APSCHED_OK) return APSCHED_OK;
  return apsched__error(rc < 0 ? rc : APSCHED_EINVAL, "executor '%s': %s", rec->executor,
                        why[0] ? why : "refuses the job");
}

/* Puts rec into store, replacing a job with the same id if asked to. */
static int store_add(store_entry *se, apsched_job_record *rec, bool replace) {
  const apsched_jobstore_vtable *vt = se->store->vtable;
  int rc = vt->add(se->store, rec);
  if (rc == APSCHED_EEXIST && replace) {
    rc = vt->remove(se->store, rec->id);
    if (rc == APSCHED_OK) rc = vt->add(se->store, rec);
  }
  return rc;
}

void apsched__commit_pending(apsched_scheduler *s, notice_list *nl) {
  apsched_time_t now = apsched__wall(s);
  while (s->pending_head) {
    pending_job *p = s->pending_head;
    pending_unlink(s, p);
    apsched_job_record *rec = p->rec;
    store_entry *se = apsched__find_store(s, p->jobstore);
    /* APScheduler computes a pending job's first run time at start. */
    if (!p->explicit_next) {
      if (rec->flags & PENDING_PAUSED) rec->next_run_time = rec->trigger_time = APSCHED_TIME_NONE;
      else schedule_first(rec, now);
    }
    rec->flags &= (uint16_t)~PENDING_PAUSED;
    int rc = se ? store_add(se, rec, p->replace_existing) : APSCHED_ENOENT;
    if (rc != APSCHED_OK) {
      apsched__log_later(s, nl, APSCHED_LOG_ERROR,
                          "Could not add pending job \"%s\" to job store \"%s\": %s", rec->id,
                          p->jobstore, apsched_strerror(rc));
      apsched_job_record_free(rec);
    } else {
      add_event(s, nl, APSCHED_EVENT_JOB_ADDED, rec->id, se->alias);
      apsched__log_later(s, nl, APSCHED_LOG_INFO, "Added job \"%s\" to job store \"%s\"",
                          default_name(rec), se->alias);
    }
    apsched__dealloc(s, p);
  }
}

/* ------------------------------------------------------------- add_job */

int apsched_add_job(apsched_scheduler *s, const apsched_job_options *o, char *id_out,
                    size_t id_len) {
  if (!s || !o) return APSCHED_EINVAL;
  apsched_time_t now = apsched__wall(s);
  apsched_job_record *rec = NULL;
  int rc = build_record(s, o, now, &rec);
  if (rc != APSCHED_OK) return rc;
  if (id_out && id_len <= strlen(rec->id)) {
    if (rec->args) rec->args->ptr_free = NULL;
    apsched_job_record_free(rec);
    return apsched__error(APSCHED_EINVAL, "id_out: %zu bytes cannot hold the id", id_len);
  }
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  const char *store_alias = apsched__intern(s, o->jobstore ? o->jobstore : "default");
  rec->executor = apsched__intern(s, o->executor ? o->executor : "default");
  if (!store_alias || !rec->executor) {
    rc = APSCHED_ENOMEM;
    goto out;
  }
  store_entry *se = apsched__find_store(s, store_alias);
  rc = executor_accepts(s, rec);
  if (rc != APSCHED_OK) goto out;
  if (s->state == APSCHED_STATE_STOPPED) {
    /* Pending until start; duplicates are refused now, not at start. */
    pending_job *old = apsched__strmap_get(&s->pending_index, rec->id);
    bool in_store = se && se->store->vtable->lookup(se->store, rec->id);
    if ((old || in_store) && !o->replace_existing) {
      rc = apsched__error(APSCHED_EEXIST, "id: '%.64s' is already used by a %s job", rec->id,
                          old ? "pending" : "stored");
      goto out;
    }
    if (o->next_run_time) rec->next_run_time = rec->trigger_time = o->next_run_time;
    if (o->paused) rec->flags |= PENDING_PAUSED;
    if (old) {
      /* Replace in place: nothing to allocate, so nothing can fail halfway. */
      apsched_job_record *prev = old->rec;
      old->rec = rec;
      old->jobstore = store_alias;
      old->replace_existing = o->replace_existing;
      old->explicit_next = o->next_run_time != 0;
      apsched__strmap_put(&s->pending_index, rec->id, old); /* re-keys the existing slot */
      apsched_job_record_free(prev);
    } else {
      pending_job *p = apsched__alloc(s, sizeof *p);
      if (!p || apsched__strmap_put(&s->pending_index, rec->id, p) != 0) {
        apsched__dealloc(s, p);
        rc = APSCHED_ENOMEM;
        goto out;
      }
      *p = (pending_job){.rec = rec, .jobstore = store_alias,
                         .replace_existing = o->replace_existing,
                         .explicit_next = o->next_run_time != 0, .prev = s->pending_tail};
      if (s->pending_tail) s->pending_tail->next = p;
      else s->pending_head = p;
      s->pending_tail = p;
    }
    apsched__log_later(s, &nl, APSCHED_LOG_INFO,
                        "Adding job tentatively -- it will be properly scheduled when the "
                        "scheduler starts");
  } else {
    if (!se) {
      rc = apsched__error(APSCHED_ENOENT, "jobstore: no job store '%.64s'", store_alias);
      goto out;
    }
    if (o->next_run_time) {
      rec->next_run_time = rec->trigger_time = o->next_run_time;
    } else if (!o->paused) {
      schedule_first(rec, now);
      if (rec->next_run_time == APSCHED_TIME_NONE) {
        rc = apsched__error(APSCHED_EINVAL, "trigger: it never fires from now on");
        goto out;
      }
    }
    rc = store_add(se, rec, o->replace_existing);
    if (rc == APSCHED_EEXIST)
      apsched__error(rc, "id: '%.64s' is already used by a job in '%s'", rec->id, se->alias);
    if (rc != APSCHED_OK) goto out;
    add_event(s, &nl, APSCHED_EVENT_JOB_ADDED, rec->id, se->alias);
    apsched__log_later(s, &nl, APSCHED_LOG_INFO, "Added job \"%s\" to job store \"%s\"",
                        default_name(rec), se->alias);
    apsched__wake_if_earlier(s, rec->next_run_time);
  }
  if (id_out) memcpy(id_out, rec->id, strlen(rec->id) + 1);
  rec = NULL; /* owned by the store or the pending list now */
out:
  apsched__unlock(s);
  if (rec) {
    if (rec->args) rec->args->ptr_free = NULL;
    apsched_job_record_free(rec);
  }
  apsched__notices_flush(s, &nl);
  return rc;
}

/* ---------------------------------------------- lookup across the stores */

typedef struct found_job {
  apsched_job_record *rec;
  store_entry *store;   /* NULL for a pending job */
  pending_job *pending;
} found_job;

static int find_job(apsched_scheduler *s, const char *id, const char *jobstore, found_job *f) {
  memset(f, 0, sizeof *f);
  if (!id) return APSCHED_EINVAL;
  pending_job *p = pending_find(s, id, jobstore);
  if (p) {
    f->rec = p->rec;
    f->pending = p;
    return APSCHED_OK;
  }
  for (store_entry *e = s->stores; e; e = e->next) {
    if (jobstore && strcmp(e->alias, jobstore) != 0) continue;
    apsched_job_record *rec = e->store->vtable->lookup(e->store, id);
    if (rec) {
      f->rec = rec;
      f->store = e;
      return APSCHED_OK;
    }
  }
  return apsched__error(APSCHED_ENOENT, "no job '%.64s'%s%.64s%s", id, jobstore ? " in job store '" : "",
                        jobstore ? jobstore : "", jobstore ? "'" : "");
}

static const char *found_store_alias(const found_job *f) {
  return f->store ? f->store->alias : f->pending->jobstore;
}

static int remove_found(apsched_scheduler *s, found_job *f, notice_list *nl) {
  const char *alias = found_store_alias(f);
  add_event(s, nl, APSCHED_EVENT_JOB_REMOVED, f->rec->id, alias);
  apsched__log_later(s, nl, APSCHED_LOG_INFO, "Removed job %s", f->rec->id);
  if (f->pending) {
    pending_unlink(s, f->pending);
    apsched_job_record_free(f->rec);
    apsched__dealloc(s, f->pending);
    return APSCHED_OK;
  }
  return f->store->store->vtable->remove(f->store->store, f->rec->id);
}

/* Writes a changed record back (pending records live in memory only). */
static int store_update(apsched_scheduler *s, found_job *f) {
  if (f->pending) return APSCHED_OK;
  int rc = f->store->store->vtable->update(f->store->store, f->rec);
  if (rc == APSCHED_OK) apsched__wake_if_earlier(s, f->rec->next_run_time);
  return rc;
}

int apsched_remove_job(apsched_scheduler *s, const char *id, const char *jobstore) {
  if (!s || !id) return APSCHED_EINVAL;
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  found_job f;
  int rc = find_job(s, id, jobstore, &f);
  if (rc == APSCHED_OK) rc = remove_found(s, &f, &nl);
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  return rc;
}

int apsched_remove_all_jobs(apsched_scheduler *s, const char *jobstore) {
  if (!s) return APSCHED_EINVAL;
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  int rc = APSCHED_OK;
  if (jobstore && !apsched__find_store(s, jobstore)) {
    /* A store that only pending jobs name is fine while stopped. */
    bool named = false;
    for (pending_job *p = s->pending_head; p && !named; p = p->next)
      named = strcmp(p->jobstore, jobstore) == 0;
    if (!named && s->state != APSCHED_STATE_STOPPED) rc = APSCHED_ENOENT;
  }
  if (rc == APSCHED_OK) {
    for (pending_job *p = s->pending_head, *next; p; p = next) {
      next = p->next;
      if (jobstore && strcmp(p->jobstore, jobstore) != 0) continue;
      pending_unlink(s, p);
      apsched_job_record_free(p->rec);
      apsched__dealloc(s, p);
    }
    for (store_entry *e = s->stores; e; e = e->next) {
      if (jobstore && strcmp(e->alias, jobstore) != 0) continue;
      int r = e->store->vtable->remove_all(e->store);
      if (r != APSCHED_OK) rc = r;
    }
    if (apsched__wants(s, APSCHED_EVENT_ALL_JOBS_REMOVED)) {
      notice *n = apsched__notice_add(s, &nl, APSCHED_EVENT_ALL_JOBS_REMOVED);
      if (n) n->ev.alias = jobstore ? apsched__intern(s, jobstore) : NULL;
    }
  }
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  return rc;
}

/* ------------------------------------------- pause / resume / modify */

static void modified_event(apsched_scheduler *s, notice_list *nl, const found_job *f) {
  add_event(s, nl, APSCHED_EVENT_JOB_MODIFIED, f->rec->id, found_store_alias(f));
}

int apsched_pause_job(apsched_scheduler *s, const char *id, const char *jobstore) {
  if (!s || !id) return APSCHED_EINVAL;
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  found_job f;
  int rc = find_job(s, id, jobstore, &f);
  if (rc == APSCHED_OK) {
    if (f.pending) {
      f.pending->explicit_next = false;
      f.rec->flags |= PENDING_PAUSED;
    }
    f.rec->next_run_time = f.rec->trigger_time = APSCHED_TIME_NONE;
    rc = store_update(s, &f);
    if (rc == APSCHED_OK) modified_event(s, &nl, &f);
  }
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  return rc;
}

int apsched_resume_job(apsched_scheduler *s, const char *id, const char *jobstore) {
  if (!s || !id) return APSCHED_EINVAL;
  notice_list nl;
  apsched__notices_init(&nl);
  apsched_time_t now = apsched__wall(s);
  apsched__lock(s);
  found_job f;
  int rc = find_job(s, id, jobstore, &f);
  if (rc == APSCHED_OK && f.pending) {
    /* Still pending: its first run time is computed at start. */
    f.rec->flags &= (uint16_t)~PENDING_PAUSED;
    modified_event(s, &nl, &f);
  } else if (rc == APSCHED_OK) {
    schedule_first(f.rec, now);
    if (f.rec->next_run_time == APSCHED_TIME_NONE) {
      rc = remove_found(s, &f, &nl); /* nothing left to run: like APScheduler */
    } else {
      rc = store_update(s, &f);
      if (rc == APSCHED_OK) modified_event(s, &nl, &f);
    }
  }
  apsched__unlock(s);
  apsched__notices_flush(s, &nl);
  return rc;
}

/* A validated set of changes, ready to apply without failing. */
typedef struct prepared_change {
  const apsched_func *func;
  char *name;
  apsched_trigger *trigger;
  apsched_job_args *args;
  bool set_args;
} prepared_change;

static void prepared_free(prepared_change *p) {
  free(p->name);
  apsched_trigger_free(p->trigger);
  if (p->args) p->args->ptr_free = NULL; /* still the caller's on failure */
  apsched__args_unref(p->args);
}

static int prepare_change(const apsched_job_changes *c, apsched_time_t now, prepared_change *p) {
  memset(p, 0, sizeof *p);
  int rc = check_settings(c->name, c->max_instances, c->misfire_grace_time, c->max_runtime,
                          c->coalesce, c->executor);
  if (rc != APSCHED_OK) return rc;
  if (c->set_arg_bytes && c->arg_len && !c->arg_bytes)
    return apsched__error(APSCHED_EINVAL, "arg_bytes: NULL with arg_len %zu", c->arg_len);
  if ((!c->set_arg && (c->arg || c->arg_free)) || (!c->set_arg_bytes && (c->arg_bytes || c->arg_len)))
    return apsched__error(APSCHED_EINVAL, "arg/arg_bytes given without set_arg/set_arg_bytes");
  if (c->func || c->func_name) {
    rc = resolve_func(c->func, c->func_name, &p->func);
    if (rc != APSCHED_OK) return rc;
  }
  if (c->trigger) {
    rc = copy_trigger(c->trigger, now, &p->trigger);
    if (rc != APSCHED_OK) return rc;
  }
  if (c->name && !(p->name = apsched__strdup(c->name))) goto oom;
  return APSCHED_OK;
oom:
  prepared_free(p);
  return APSCHED_ENOMEM;
}

/* Builds the new argument block: changed parts from c, others from old. */
static int prepare_args(const apsched_job_changes *c, const apsched_job_args *old,
                        prepared_change *p) {
  if (!c->set_arg && !c->set_arg_bytes) return APSCHED_OK;
  void *ptr = c->set_arg ? c->arg : (old ? old->ptr : NULL);
  void (*ptr_free)(void *) = c->set_arg ? c->arg_free : (old ? old->ptr_free : NULL);
  const void *bytes = c->set_arg_bytes ? c->arg_bytes : (old ? old->bytes : NULL);
  size_t len = c->set_arg_bytes ? c->arg_len : (old ? old->len : 0);
  bool oom;
  p->args = apsched__args_new(ptr, ptr_free, bytes, len, &oom);
  p->set_args = true;
  return oom ? APSCHED_ENOMEM : APSCHED_OK;
}

int apsched_modify_job(apsched_scheduler *s, const char *id, const char *jobstore,
                       const apsched_job_changes *c) {
  if (!s || !id || !c) return APSCHED_EINVAL;
  apsched_time_t now = apsched__wall(s);
  prepared_change p;
  int rc = prepare_change(c, now, &p);
  if (rc != APSCHED_OK) return rc;
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  found_job f;
  rc = find_job(s, id, jobstore, &f);
  const char *executor = NULL;
  if (rc == APSCHED_OK && c->executor && !(executor = apsched__intern(s, c->executor)))
    rc = APSCHED_ENOMEM;
  if (rc == APSCHED_OK) rc = prepare_args(c, f.rec->args, &p);
  if (rc == APSCHED_OK && (executor || p.set_args || p.func)) {
    /* The changed job must still suit its (maybe new) executor: ask with the
     * new values in place (under the lock), then put the old ones back. */
    apsched_job_record *r = f.rec;
    const char *old_executor = r->executor;
    apsched_job_args *old_args = r->args;
    const apsched_func *old_func = r->func;
    if (executor) r->executor = executor;
    if (p.set_args) r->args = p.args;
    if (p.func) r->func = p.func;
    rc = executor_accepts(s, r);
    r->executor = old_executor;
    r->args = old_args;
    r->func = old_func;
  }
  if (rc == APSCHED_OK) {
    apsched_job_record *r = f.rec;
    /* Validation is over: from here on nothing fails except the store write. */
    if (p.func) r->func = p.func;
    if (p.name) {
      free(r->name);
      r->name = p.name;
      p.name = NULL;
    }
    if (p.trigger) {
      apsched_trigger_free(r->trigger);
      r->trigger = p.trigger;
      p.trigger = NULL;
    }
    if (p.set_args) {
      apsched_job_args *old = r->args;
      r->args = p.args;
      p.args = NULL;
      /* The old block's destructor must not free a pointer that lives on. */
      if (old && c->set_arg == false) old->ptr_free = NULL;
      apsched__args_unref(old);
    }
    if (executor) r->executor = executor;
    if (c->max_instances) r->max_instances = (uint16_t)c->max_instances;
    if (c->misfire_grace_time) r->misfire_grace_ms = grace_to_ms(c->misfire_grace_time);
    if (c->max_runtime) r->max_runtime_ms = c->max_runtime < 0 ? 0 : to_ms(c->max_runtime);
    if (c->coalesce != APSCHED_DEFAULT) {
      if (c->coalesce == APSCHED_YES) r->flags |= APSCHED_JOB_COALESCE;
      else r->flags &= (uint16_t)~APSCHED_JOB_COALESCE;
    }
    if (c->next_run_time) {
      r->next_run_time = r->trigger_time = c->next_run_time;
      if (f.pending) {
        f.pending->explicit_next = true;
        r->flags &= (uint16_t)~PENDING_PAUSED;
      }
    }
    rc = store_update(s, &f);
    if (rc == APSCHED_OK) modified_event(s, &nl, &f);
  }
  apsched__unlock(s);
  prepared_free(&p);
  apsched__notices_flush(s, &nl);
  return rc;
}

int apsched_reschedule_job(apsched_scheduler *s, const char *id, const char *jobstore,
                           const apsched_trigger *trigger) {
  if (!s || !id || !trigger || !apsched__trigger_vtable_ok(trigger)) return APSCHED_EINVAL;
  apsched_time_t now = apsched__wall(s);
  apsched_trigger *copy;
  int rc = copy_trigger(trigger, now, &copy);
  if (rc != APSCHED_OK) return rc;
  notice_list nl;
  apsched__notices_init(&nl);
  apsched__lock(s);
  found_job f;
  rc = find_job(s, id, jobstore, &f);
  if (rc == APSCHED_OK) {
    apsched_trigger_free(f.rec->trigger);
    f.rec->trigger = copy;
    copy = NULL;
    if (f.pending) {
      f.pending->explicit_next = false; /* computed from the new trigger at start */
      f.rec->flags &= (uint16_t)~PENDING_PAUSED;
    } else {
      /* As APScheduler: a trigger with no fire time leaves the job paused. */
      schedule_first(f.rec, now);
    }
    rc = store_update(s, &f);
    if (rc == APSCHED_OK) modified_event(s, &nl, &f);
  }
  apsched__unlock(s);
  apsched_trigger_free(copy);
  apsched__notices_flush(s, &nl);
  return rc;
}

/* ------------------------------------------------------------ snapshots */

void apsched_job_free(apsched_job *job) {
  if (!job) return;
  apsched_jobs_free(job, 1);
}

static void job_fields_free(apsched_job *j) {
  free(j->id);
  free(j->name);
  free(j->func_name);
  free(j->trigger);
  free(j->executor);
  free(j->jobstore);
}

void apsched_jobs_free(apsched_job *jobs, size_t count) {
  if (!jobs) return;
  for (size_t i = 0; i < count; i++) job_fields_free(&jobs[i]);
  free(jobs);
}

static char *describe_trigger(const apsched_trigger *t) {
  int n = apsched_trigger_describe(t, NULL, 0);
  if (n < 0) return NULL;
  char *text = malloc((size_t)n + 1);
  if (text) apsched_trigger_describe(t, text, (size_t)n + 1);
  return text;
}

static int snapshot(const apsched_job_record *r, const char *jobstore, bool pending,
                    apsched_job *j) {
  memset(j, 0, sizeof *j);
  j->id = apsched__strdup(r->id);
  j->name = apsched__strdup(default_name(r));
  j->func_name = r->func->name ? apsched__strdup(r->func->name) : NULL;
  j->trigger = describe_trigger(r->trigger);
  j->executor = apsched__strdup(r->executor);
  j->jobstore = apsched__strdup(jobstore);
  j->max_instances = r->max_instances;
  j->misfire_grace_time = apsched__grace_usec(r->misfire_grace_ms);
  j->max_runtime = apsched__max_runtime_usec(r);
  j->coalesce = (r->flags & APSCHED_JOB_COALESCE) != 0;
  j->pending = pending;
  j->next_run_time = r->next_run_time;
  j->paused = pending ? (r->flags & PENDING_PAUSED) != 0 : r->next_run_time == APSCHED_TIME_NONE;
  if (j->paused) j->next_run_time = APSCHED_TIME_NONE;
  if (!j->id || !j->name || (r->func->name && !j->func_name) || !j->trigger || !j->executor ||
      !j->jobstore) {
    job_fields_free(j);
    return APSCHED_ENOMEM;
  }
  return APSCHED_OK;
}

int apsched_get_job(apsched_scheduler *s, const char *id, const char *jobstore, apsched_job **out) {
  if (!s || !id || !out) return APSCHED_EINVAL;
  apsched_job *j = malloc(sizeof *j);
  if (!j) return APSCHED_ENOMEM;
  apsched__lock(s);
  found_job f;
  int rc = find_job(s, id, jobstore, &f);
  if (rc == APSCHED_OK) rc = snapshot(f.rec, found_store_alias(&f), f.pending != NULL, j);
  apsched__unlock(s);
  if (rc != APSCHED_OK) {
    free(j);
    return rc;
  }
  *out = j;
  return APSCHED_OK;
}

typedef struct collect_ctx {
  apsched_job *jobs;
  size_t count, cap;
  const char *jobstore;
  int rc;
} collect_ctx;

static int collect_one(const apsched_job_record *r, const char *jobstore, bool pending,
                       collect_ctx *c) {
  if (c->count == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    apsched_job *jobs = realloc(c->jobs, cap * sizeof *jobs);
    if (!jobs) return c->rc = APSCHED_ENOMEM;
    c->jobs = jobs;
    c->cap = cap;
  }
  int rc = snapshot(r, jobstore, pending, &c->jobs[c->count]);
  if (rc != APSCHED_OK) return c->rc = rc;
  c->count++;
  return 0;
}

static int collect_cb(const apsched_job_record *r, void *ud) {
  collect_ctx *c = ud;
  return collect_one(r, c->jobstore, false, c);
}

static int by_next_run_time(const void *a, const void *b) {
  const apsched_job *x = a, *y = b;
  /* Paused jobs (no next run time) last, as APScheduler sorts them. */
  bool xn = x->next_run_time == APSCHED_TIME_NONE, yn = y->next_run_time == APSCHED_TIME_NONE;
  if (xn != yn) return xn ? 1 : -1;
  if (x->next_run_time != y->next_run_time) return x->next_run_time < y->next_run_time ? -1 : 1;
  return strcmp(x->id, y->id);
}

int apsched_get_jobs(apsched_scheduler *s, const char *jobstore, apsched_job **out,
                     size_t *count) {
  if (!s || !out || !count) return APSCHED_EINVAL;
  collect_ctx c = {0};
  apsched__lock(s);
  for (pending_job *p = s->pending_head; p && c.rc == APSCHED_OK; p = p->next)
    if (!jobstore || strcmp(p->jobstore, jobstore) == 0) collect_one(p->rec, p->jobstore, true, &c);
  for (store_entry *e = s->stores; e && c.rc == APSCHED_OK; e = e->next) {
    if (jobstore && strcmp(e->alias, jobstore) != 0) continue;
    c.jobstore = e->alias;
    int rc = e->store->vtable->foreach(e->store, collect_cb, &c);
    if (rc != APSCHED_OK && c.rc == APSCHED_OK) c.rc = rc;
  }
  apsched__unlock(s);
  if (c.rc != APSCHED_OK) {
    apsched_jobs_free(c.jobs, c.count);
    return c.rc;
  }
  if (c.count > 1) qsort(c.jobs, c.count, sizeof *c.jobs, by_next_run_time);
  *out = c.jobs;
  *count = c.count;
  return APSCHED_OK;
}

int apsched_print_jobs(apsched_scheduler *s, const char *jobstore, FILE *out) {
  if (!s || !out) return APSCHED_EINVAL;
  apsched_job *jobs;
  size_t n;
  int rc = apsched_get_jobs(s, jobstore, &jobs, &n);
  if (rc != APSCHED_OK) return rc;
  /* Group by store in the order stores were added, pending first. */
  apsched__lock(s);
  size_t nstores = 0;
  for (store_entry *e = s->stores; e; e = e->next) nstores++;
  const char **aliases = malloc((nstores + 1) * sizeof *aliases);
  size_t k = 0;
  if (aliases)
    for (store_entry *e = s->stores; e; e = e->next)
      if (!jobstore || strcmp(e->alias, jobstore) == 0) aliases[k++] = e->alias;
  apsched__unlock(s);
  if (!aliases) {
    apsched_jobs_free(jobs, n);
    return APSCHED_ENOMEM;
  }
  const apsched_tz *tz = s->tz;
  bool any_pending = false;
  for (size_t i = 0; i < n; i++) any_pending |= jobs[i].pending;
  for (size_t g = 0; g <= k; g++) {
    bool pending_group = g == k;
    if (pending_group && !any_pending) break;
    if (pending_group) fprintf(out, "Pending jobs:\n");
    else fprintf(out, "Jobstore %s:\n", aliases[g]);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
      apsched_job *j = &jobs[i];
      if (j->pending != pending_group || (!pending_group && strcmp(j->jobstore, aliases[g]) != 0))
        continue;
      /* As APScheduler: "paused", "pending" (before start) or the next run. */
      char when[80] = "paused";
      if (!j->paused && j->next_run_time != APSCHED_TIME_NONE) {
        char t[48];
        apsched_time_format(j->next_run_time, tz, t, sizeof t);
        snprintf(when, sizeof when, "next run at: %s", t);
      } else if (!j->paused) {
        snprintf(when, sizeof when, "pending");
      }
      fprintf(out, "    %s (trigger: %s, %s)\n", j->name, j->trigger, when);
      shown++;
    }
    if (!shown) fprintf(out, "    No scheduled jobs\n");
  }
  free(aliases);
  apsched_jobs_free(jobs, n);
  return ferror(out) ? APSCHED_ESYS : APSCHED_OK;
}

/* ------------------------------------------------- one due job, in the loop */

/* A due run that cannot be handed to an executor: the job stays, and the
 * skip is reported as JOB_ERROR (with why) and logged. */
static void skipped_run(apsched_scheduler *s, notice_list *nl, const apsched_job_record *rec,
                        const char *jobstore, apsched_time_t when, const char *why) {
  bool wanted = apsched__wants(s, APSCHED_EVENT_JOB_ERROR);
  notice *e = apsched__notice_add(s, nl, wanted ? APSCHED_EVENT_JOB_ERROR : 0);
  if (!e) return;
  if (wanted) {
    /* One owned buffer: the id, then the message. */
    size_t idlen = strlen(rec->id) + 1, whylen = strlen(why) + 1;
    char *buf = apsched__alloc(s, idlen + whylen);
    if (buf) {
      memcpy(buf, rec->id, idlen);
      memcpy(buf + idlen, why, whylen);
      e->owned = buf;
      e->ev.job_id = buf;
      e->ev.error = buf + idlen;
    }
    e->ev.jobstore = jobstore;
    e->ev.scheduled_run_time = when;
    e->ev.retval = -1;
  }
  apsched__notice_log(s, e, APSCHED_LOG_ERROR, "Job \"%s\": %s", default_name(rec), why);
}

/* The last fire time <= limit, given that from (<= limit) is one: galloping
 * backwards from limit keeps the number of trigger calls logarithmic in the
 * distance, whatever the trigger's period. */
static apsched_time_t last_fire_until(const apsched_trigger *t, apsched_time_t from,
                                      apsched_time_t limit) {
  for (int64_t w = 1; w > 0 && limit - w > from; w *= 2) {
    apsched_time_t c = apsched_trigger_next(t, limit - w, limit);
    if (c != APSCHED_TIME_NONE && c <= limit) {
      from = c;
      break;
    }
  }
  for (int steps = 0; steps < CATCHUP_STEPS; steps++) {
    apsched_time_t c = apsched_trigger_next(t, from, limit);
    if (c == APSCHED_TIME_NONE || c > limit) break;
    from = c;
  }
  return from;
}

void apsched__process_claimed(apsched_scheduler *s, store_entry *se, apsched_job_record *rec,
                              apsched_time_t now, notice_list *nl) {
  const apsched_trigger *t = rec->trigger;
  const bool coalesce = rec->flags & APSCHED_JOB_COALESCE;
  const int64_t grace = apsched__grace_usec(rec->misfire_grace_ms);
  /* Runs that start before `late` are past their grace time already. */
  apsched_time_t late;
  if (grace == APSCHED_GRACE_UNLIMITED || __builtin_sub_overflow(now, grace, &late))
    late = INT64_MIN;
  apsched_time_t times[RUN_BATCH_MAX];
  size_t n = 0;
  uint64_t missed = 0;
  bool missed_exact = true;
  apsched_time_t first_missed = APSCHED_TIME_NONE, latest = APSCHED_TIME_NONE;
  apsched_time_t at = rec->next_run_time;
  apsched_time_t base = rec->trigger_time == APSCHED_TIME_NONE ? at : rec->trigger_time;
  int steps = 0;

  while (at != APSCHED_TIME_NONE && at <= now) {
    if (coalesce) {
      latest = at;
    } else if (at < late) {
      if (missed++ == 0) first_missed = at;
    } else {
      times[n++] = at;
    }
    if (!coalesce && n == RUN_BATCH_MAX) {
      base = apsched_trigger_next(t, base, now);
      at = with_jitter(t, base);
      break; /* the rest are handled on the next pass */
    }
    if (++steps == CATCHUP_STEPS) {
      /* A long downtime: jump instead of walking every missed run. */
      steps = 0;
      if (coalesce) {
        base = last_fire_until(t, base, now);
        at = with_jitter(t, base);
        if (at > now) at = base;
        continue; /* recorded as the latest at the top of the loop */
      }
      if (at < late) {
        /* Skip to the first run that may still be inside the grace window;
         * the runs jumped over are counted as "at least". */
        apsched_time_t from = late - t->jitter - 1;
        base = apsched_trigger_next(t, from > base ? from : base, now);
        at = with_jitter(t, base);
        missed_exact = false;
        continue;
      }
    }
    base = apsched_trigger_next(t, base, now);
    at = with_jitter(t, base);
  }
  if (coalesce && latest != APSCHED_TIME_NONE) {
    if (latest < late) {
      missed = 1;
      first_missed = latest;
    } else {
      times[n++] = latest;
    }
  }

  if (missed) {
    notice *m = apsched__notice_add(s, nl, apsched__wants(s, APSCHED_EVENT_JOB_MISSED) ? APSCHED_EVENT_JOB_MISSED : 0);
    if (m) {
      apsched__notice_own(s, m, m->ev.code ? rec->id : NULL, se->alias);
      m->ev.scheduled_run_time = first_missed;
      m->ev.missed_count = missed;
      m->ev.missed_count_exact = missed_exact;
      if (apsched__log_enabled(s, APSCHED_LOG_WARNING)) {
        char d[64];
        apsched__format_duration(now - first_missed, d, sizeof d);
        if (missed == 1)
          apsched__notice_log(s, m, APSCHED_LOG_WARNING, "Run time of job \"%s\" was missed by %s",
                              default_name(rec), d);
        else
          apsched__notice_log(s, m, APSCHED_LOG_WARNING,
                              "Run time of job \"%s\" was missed by %s (%s%llu run times missed)",
                              default_name(rec), d, missed_exact ? "" : "at least ",
                              (unsigned long long)missed);
      }
    }
  }

  if (n > 0) {
    executor_entry *ex = apsched__find_executor(s, rec->executor);
    bool full = false;
    instance_count *inst = NULL;
    if (!ex || !rec->func->fn) {
      char why[300];
      if (!ex)
        snprintf(why, sizeof why, "executor \"%s\" does not exist: the run is skipped and the job kept",
                 rec->executor);
      else
        snprintf(why, sizeof why, "function \"%s\" is not registered: the run is skipped and the job kept",
                 rec->func->name ? rec->func->name : "?");
      skipped_run(s, nl, rec, se->alias, times[0], why);
    } else if (!(inst = apsched__instance_reserve(s, rec->id, rec->max_instances, &full))) {
      int code = APSCHED_EVENT_JOB_MAX_INSTANCES;
      notice *e = apsched__notice_add(s, nl, apsched__wants(s, code) ? code : 0);
      if (e && e->ev.code) {
        apsched__notice_own(s, e, rec->id, se->alias);
        /* The run times go into the notice's own buffer after the id. */
        size_t idlen = strlen(rec->id) + 1, off = (idlen + 7) & ~(size_t)7;
        char *buf = apsched__alloc(s, off + n * sizeof(apsched_time_t));
        if (buf) {
          memcpy(buf, rec->id, idlen);
          memcpy(buf + off, times, n * sizeof(apsched_time_t));
          apsched__dealloc(s, e->owned);
          e->owned = buf;
          e->ev.job_id = buf;
          e->ev.scheduled_run_times = (apsched_time_t *)(void *)(buf + off);
          e->ev.run_time_count = n;
        }
      }
      if (full)
        apsched__notice_log(s, e, APSCHED_LOG_WARNING,
                            "Execution of job \"%s\" skipped: maximum number of running instances "
                            "reached (%u)",
                            default_name(rec), (unsigned)rec->max_instances);
      else
        apsched__notice_log(s, e, APSCHED_LOG_ERROR, "Execution of job \"%s\" skipped: out of memory",
                            default_name(rec));
    } else {
      apsched_run_ctx *run = apsched__run_new(s, rec, se->alias, ex->alias, inst, times, n);
      notice *e = run ? apsched__notice_add(s, nl, apsched__wants(s, APSCHED_EVENT_JOB_SUBMITTED)
                                                       ? APSCHED_EVENT_JOB_SUBMITTED
                                                       : 0)
                      : NULL;
      if (!e) {
        if (run) apsched__run_abandon(run);
        apsched__instance_release(s, inst);
      } else {
        e->run = run;
        e->exec = ex;
        ex->submitting++;
        s->running_runs++;
        e->ev.job_id = apsched_run_job_id(run);
        e->ev.jobstore = se->alias;
        e->ev.scheduled_run_times = apsched__run_times(run);
        e->ev.run_time_count = n;
        apsched__notice_log(s, e, APSCHED_LOG_INFO, "Submitted job \"%s\" to executor \"%s\"",
                            default_name(rec), ex->alias);
      }
    }
  }

  const apsched_jobstore_vtable *vt = se->store->vtable;
  if (at == APSCHED_TIME_NONE) {
    /* The trigger is finished: the job goes, as in APScheduler. */
    add_event(s, nl, APSCHED_EVENT_JOB_REMOVED, rec->id, se->alias);
    apsched__log_later(s, nl, APSCHED_LOG_INFO, "Removed job %s", rec->id);
    vt->release(se->store, rec, true);
  } else {
    rec->next_run_time = at;
    rec->trigger_time = base;
    vt->release(se->store, rec, false);
  }
}
