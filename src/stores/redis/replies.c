/* Replies read into one block of memory each instead of hiredis's
 * allocation per element: hiredis builds a reply through a table of
 * functions (redisReplyObjectFunctions), and the store's connections use
 * these, which place every element of a reply in its top-level reply's
 * arena. A claimed batch reads hundreds of job hashes of about 30
 * elements each; allocating and freeing each element was a large part of
 * the scheduler's CPU per run (malloc and free: 42 % of its samples in
 * `perf`, bench_redis at one process).
 *
 * The replies keep hiredis's redisReply layout, so everything that reads
 * them is unchanged; they are freed with apsched__redis_reply_free (never
 * freeReplyObject), the whole reply at once. */
#include "redis_internal.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A piece of a reply's arena. */
typedef struct arena_chunk {
  struct arena_chunk *next;
  size_t used, cap;
  alignas(max_align_t) unsigned char bytes[];
} arena_chunk;

/* A top-level reply: the redisReply its users see, and its arena, whose
 * chunks come as its elements need them (a job's hash fits in the
 * first). */
typedef struct reply_root {
  arena_chunk *chunks;
  redisReply reply;
} reply_root;

enum { FIRST_CHUNK = 2048 };

static reply_root *root_of(redisReply *r) {
  return (reply_root *)((char *)r - offsetof(reply_root, reply));
}

/* size bytes from root's arena, aligned; NULL when memory is short. */
static void *arena_take(reply_root *root, size_t size) {
  size = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
  arena_chunk *c = root->chunks;
  if (!c || c->cap - c->used < size) {
    size_t cap = c ? 2 * c->cap : FIRST_CHUNK;
    while (cap < size) cap *= 2;
    arena_chunk *grown = malloc(sizeof *grown + cap);
    if (!grown) return NULL;
    grown->next = c;
    grown->used = 0;
    grown->cap = cap;
    root->chunks = c = grown;
  }
  void *p = c->bytes + c->used;
  c->used += size;
  return p;
}

/* A new reply of type for task: the top-level one (with its arena) when
 * task has no parent, else an element of its parent's, placed in the
 * parent array. *more: extra bytes from the same arena (extra > 0). */
static redisReply *reply_new(const redisReadTask *task, int type, size_t extra, void **more) {
  reply_root *root;
  redisReply *r;
  if (!task->parent) {
    if (!(root = malloc(sizeof *root))) return NULL;
    root->chunks = NULL;
    r = &root->reply;
  } else {
    const redisReadTask *top = task;
    while (top->parent) top = top->parent;
    root = root_of(top->obj);
    if (!(r = arena_take(root, sizeof *r))) return NULL;
  }
  if (extra > 0 && !(*more = arena_take(root, extra))) {
    if (!task->parent) free(root); /* its arena is empty: nothing was taken */
    return NULL;
  }
  memset(r, 0, sizeof *r);
  r->type = type;
  if (task->parent) ((redisReply *)task->parent->obj)->element[task->idx] = r;
  return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len) {
  void *more = NULL;
  redisReply *r = reply_new(task, task->type, len + 1, &more);
  if (!r) return NULL;
  r->str = more;
  memcpy(r->str, str, len);
  r->str[len] = '\0';
  r->len = len;
  return r;
}

static void *create_array(const redisReadTask *task, int elements) {
  size_t n = elements > 0 ? (size_t)elements : 0;
  void *more = NULL;
  redisReply *r = reply_new(task, REDIS_REPLY_ARRAY, n * sizeof(redisReply *), &more);
  if (!r) return NULL;
  r->elements = n;
  if (n > 0) {
    r->element = more;
    memset(r->element, 0, n * sizeof(redisReply *));
  }
  return r;
}

static void *create_integer(const redisReadTask *task, long long value) {
  redisReply *r = reply_new(task, REDIS_REPLY_INTEGER, 0, NULL);
  if (r) r->integer = value;
  return r;
}

static void *create_nil(const redisReadTask *task) { return reply_new(task, REDIS_REPLY_NIL, 0, NULL); }

void apsched__redis_reply_free(void *reply) {
  if (!reply) return;
  reply_root *root = root_of(reply);
  for (arena_chunk *c = root->chunks, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(root);
}

static const redisReplyObjectFunctions reply_functions = {
    create_string, create_array, create_integer, create_nil, apsched__redis_reply_free};

void apsched__redis_replies_use(redisReader *reader) {
  if (reader) reader->fn = (redisReplyObjectFunctions *)&reply_functions;
}

redisReply *apsched__redis_reply_error(void) {
  redisReadTask task = {.type = REDIS_REPLY_ERROR};
  return create_string(&task, "", 0);
}
