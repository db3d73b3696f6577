/* Random numbers for job ids and jitter: a per-thread xoshiro256** state,
 * seeded from the kernel, so no lock is taken on the hot path. */
#include "../internal.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static _Thread_local uint64_t rng_state[4];
static _Thread_local bool rng_seeded;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static void rng_seed(void) {
  if (getrandom(rng_state, sizeof rng_state, 0) != (ssize_t)sizeof rng_state) {
    /* No entropy source: fall back to time and addresses (ids stay unique
     * enough; they are not secrets). */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rng_state[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
    rng_state[1] = (uint64_t)(uintptr_t)&ts ^ (uint64_t)getpid();
    rng_state[2] = 0x9E3779B97F4A7C15ull;
    rng_state[3] = 0xD1B54A32D192ED03ull;
  }
  if ((rng_state[0] | rng_state[1] | rng_state[2] | rng_state[3]) == 0) rng_state[0] = 1;
  rng_seeded = true;
}

static uint64_t rng_next(void) {
  if (!rng_seeded) rng_seed();
  uint64_t *s = rng_state;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t apsched__random_upto(uint64_t bound) {
  if (bound == UINT64_MAX) return rng_next();
  uint64_t range = bound + 1;
  /* Rejection sampling keeps the distribution uniform. */
  uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t r;
  do r = rng_next();
  while (r >= limit);
  return r % range;
}

/* A UUIDv7 (RFC 9562): the Unix time in milliseconds, then 74 random bits.
 * Ids generated close together sort close together, so a database's index
 * takes them near its right edge instead of at random pages (SQLite takes a
 * batch of them several times faster); a collision needs 2^37 ids within
 * one millisecond. */
void apsched__uuid_hex(char buf[33]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  uint64_t hi = (ms << 16) | (rng_next() & 0x0FFFull) | 0x7000ull; /* version 7 */
  uint64_t lo = rng_next();
  lo = (lo & ~(3ull << 62)) | (2ull << 62);             /* RFC 4122 variant */
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) buf[i] = hex[(hi >> (60 - 4 * i)) & 0xF];
  for (int i = 0; i < 16; i++) buf[16 + i] = hex[(lo >> (60 - 4 * i)) & 0xF];
  buf[32] = '\0';
}
