/*  ar_rng: a tiny seeded xorshift64* generator for tests and benchmarks, so generated inputs
    are the same bytes for the same seed on every machine. Not for anything secret: keys, ids
    and nonces come from the system CSPRNG.
*/
#ifndef AR_RNG_H
#define AR_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t state; // never 0
} ar_rng_t;

static inline uint64_t ar_rng_next (ar_rng_t *rng)
{
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return x * 0x2545f4914f6cdd1dull;
}

//  Uniform enough in [0, n) for test inputs; n > 0.
static inline size_t ar_rng_below (ar_rng_t *rng, size_t n)
{
    return (size_t)(ar_rng_next (rng) % n);
}

#endif
