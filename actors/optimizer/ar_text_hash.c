/*  ar_text_hash: see the header. */
#include "ar_text_hash.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>

static uint64_t s_rotl (uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

uint64_t ar_text_hash (const char *text, size_t len)
{
    const uint64_t c1 = 0x87c37b91114253d5ull, c2 = 0x4cf5ad432745937full;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy (&w, text + i, 8);
        w = s_rotl (w * c1, 31) * c2;
        h = s_rotl (h ^ w, 27) * 5 + 0x52dce729;
    }
    uint64_t w = 0;
    if (len > i)
        memcpy (&w, text + i, len - i);
    h ^= s_rotl (w * c1, 31) * c2;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

void ar_text_hash_test (bool verbose)
{
    assert (ar_text_hash ("abcdefgh", 8) != ar_text_hash ("abcdefgi", 8));
    assert (ar_text_hash ("abc", 3) != ar_text_hash ("abc\0", 4));
    assert (ar_text_hash ("", 0) == ar_text_hash (NULL, 0));
    //  Every single-bit flip of a 24-byte text changes the hash, and about half its bits.
    char text[24] = "the quick brown fox jum";
    uint64_t base = ar_text_hash (text, sizeof text);
    int flipped = 0;
    for (size_t bit = 0; bit < sizeof text * 8; bit++) {
        text[bit / 8] ^= (char)(1 << (bit % 8));
        uint64_t h = ar_text_hash (text, sizeof text);
        text[bit / 8] ^= (char)(1 << (bit % 8));
        assert (h != base);
        flipped += __builtin_popcountll (h ^ base);
    }
    double mean = (double)flipped / (sizeof text * 8);
    assert (mean > 24 && mean < 40);
    if (verbose)
        printf ("ar_text_hash: %.1f bits change per flipped input bit\n", mean);
}
