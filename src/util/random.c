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

#if defined(__SSE2__)
#include <emmintrin.h>

/* 16 nibbles, one per byte, as lowercase hex digits. */
static __m128i hex_digits(__m128i d) {
  __m128i letter = _mm_cmpgt_epi8(d, _mm_set1_epi8(9));
  d = _mm_add_epi8(d, _mm_set1_epi8('0'));
  return _mm_add_epi8(d, _mm_and_si128(letter, _mm_set1_epi8('a' - '0' - 10)));
}

/* Writes hi then lo as 32 hex digits: the 16 bytes' nibbles split and
 * interleaved in two registers (a quarter of the scalar version's
 * instructions, on every add without an id). */
static void put_hex128(char *out, uint64_t hi, uint64_t lo) {
  __m128i v = _mm_set_epi64x((long long)__builtin_bswap64(lo), (long long)__builtin_bswap64(hi));
  __m128i low = _mm_set1_epi8(0x0f);
  __m128i high_nibbles = _mm_and_si128(_mm_srli_epi16(v, 4), low);
  __m128i low_nibbles = _mm_and_si128(v, low);
  _mm_storeu_si128((__m128i *)out, hex_digits(_mm_unpacklo_epi8(high_nibbles, low_nibbles)));
  _mm_storeu_si128((__m128i *)(out + 16), hex_digits(_mm_unpackhi_epi8(high_nibbles, low_nibbles)));
}
#else
/* Writes x as 8 lowercase hex digits, most significant first: each nibble
 * is spread into a byte of its own and all eight are turned into digits at
 * once (a table lookup per digit cost ~200 instructions per generated id,
 * on the path of every apsched_add_job without an id). */
static void put_hex32(char *out, uint32_t x) {
  uint64_t v = x;
  v = ((v & 0xFFFF0000ull) << 16) | (v & 0xFFFFull);
  v = ((v & 0x0000FF000000FF00ull) << 8) | (v & 0x000000FF000000FFull);
  v = ((v & 0x00F000F000F000F0ull) << 4) | (v & 0x000F000F000F000Full);
  /* Byte k holds nibble k. A byte above 9 needs 'a' - '0' - 10 more. */
  uint64_t letters = ((v + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
  v += 0x3030303030303030ull + letters * (uint64_t)('a' - '0' - 10);
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  v = __builtin_bswap64(v); /* byte 7 (the top nibble) first in memory */
  memcpy(out, &v, 8);
#else
  for (int i = 0; i < 8; i++) out[i] = (char)(v >> (56 - 8 * i));
#endif
}

static void put_hex128(char *out, uint64_t hi, uint64_t lo) {
  put_hex32(out, (uint32_t)(hi >> 32));
  put_hex32(out + 8, (uint32_t)hi);
  put_hex32(out + 16, (uint32_t)(lo >> 32));
  put_hex32(out + 24, (uint32_t)lo);
}
#endif

/* A UUIDv7 (RFC 9562): the Unix time in milliseconds and its fraction,
 * then 62 random bits.
 * Ids generated close together sort close together, so a database's index
 * takes them near its right edge instead of at random pages (SQLite takes a
 * batch of them several times faster); a collision is likely only after
 * 2^31 ids within the same 1/4096 ms. */
void apsched__uuid_hex(char buf[33]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  /* rand_a holds the fraction of the millisecond in 1/4096ths (RFC 9562
   * 6.2, method 3): ids sort in creation order more finely, and one random
   * draw is enough. */
  uint64_t fraction = (uint64_t)(ts.tv_nsec % 1000000) * 4096u / 1000000u;
  uint64_t hi = (ms << 16) | 0x7000ull | fraction;     /* version 7 */
  uint64_t lo = (rng_next() & ~(3ull << 62)) | (2ull << 62); /* RFC 4122 variant */
  put_hex128(buf, hi, lo);
  buf[32] = '\0';
}
