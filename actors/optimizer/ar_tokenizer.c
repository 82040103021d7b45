/*  ar_tokenizer: o200k_base BPE (pre-tokenize with PCRE2 JIT, merge by rank). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "ar_tokenizer.h"
#include <assert.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/o200k_base.inc"

//  tiktoken's o200k_base pattern as js-tiktoken ships it (the generator checks it is
//  unchanged), with two changes that keep its meaning under PCRE2: the contraction group is
//  non-capturing (we only need the whole match), and \s is spelled out as Unicode White_Space,
//  which is what tiktoken's Rust regex means by it; PCRE2's \s would also take U+180E.
#define S_CONTRACTIONS                                                                             \
    "(?:'s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?"
#define S_WS                                                                                       \
    "\\t\\n\\x0B\\f\\r\\x20\\x85\\xA0\\x{1680}\\x{2000}-\\x{200A}"                                 \
    "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char s_pattern[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" //
    S_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" //
    S_CONTRACTIONS "|\\p{N}{1,3}| ?[^" S_WS "\\p{L}\\p{N}]+[\\r\\n/]*|[" S_WS "]*[\\r\\n]+|[" S_WS
    "]+(?![^" S_WS "])|[" S_WS "]+";

#define S_NONE UINT32_MAX
//  A hash slot holds everything a lookup needs, so it costs one cache miss plus the bytes:
//  rank + 1 (18 bits), blob offset (21), length (8) and 17 more bits of the hash as a tag.
#define S_SLOT(rank, off, len, h)                                                                  \
    (((uint64_t)(rank) + 1) | (uint64_t)(off) << 18 | (uint64_t)(len) << 39 | ((h) >> 47) << 47)
_Static_assert(AR_O200K_NRANKS < (1 << 18) && AR_O200K_BLOBLEN < (1 << 21) && AR_O200K_MAXLEN < 256,
               "o200k table no longer fits the packed hash slot");
#define S_SLOTS_BITS 19 // 512 Ki slots for 200 Ki ranks: short probes, 4 MB
//  Pieces up to this length merge with tiktoken's simple rescan loop (fast for short pieces);
//  longer ones use a heap so a 1 MB run of letters costs O(n log n), not O(n^2).
#define S_SHORT_MAX 128

struct _ar_tokenizer_t {
    uint32_t *off;       // rank -> offset of its bytes in s_o200k_blob
    uint8_t *len;        // rank -> byte length (0: unused rank)
    uint64_t *slots;     // open addressing, S_SLOT packed; 0 empty
    uint32_t *pairs;     // rank of each 2-byte token by its bytes (64 Ki), S_NONE if none
    uint32_t bytes[256]; // rank of each 1-byte token (all 256 are tokens)
    uint32_t mask;
    pcre2_code *re;
    bool jit;
};

//  Each piece's encoding goes to a sink: a counter, or an id array with a bound.
typedef struct {
    uint32_t *out;
    size_t max;
    size_t n;
} s_sink_t;

static inline void s_emit (s_sink_t *sink, uint32_t rank)
{
    if (sink->n < sink->max)
        sink->out[sink->n] = rank;
    sink->n++;
}

static inline uint32_t s_load32 (const uint8_t *p)
{
    uint32_t w;
    memcpy (&w, p, 4);
    return w;
}

//  A short-input hash with fixed-size loads only (no memcpy of a variable length): the tail is
//  covered by two overlapping 4-byte words, or by first/middle/last byte below 4.
static inline uint64_t s_hash (const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n > 8) {
        uint64_t w;
        memcpy (&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w;
    if (n >= 4)
        w = (uint64_t)s_load32 (p) << 32 | s_load32 (p + n - 4);
    else if (n > 0)
        w = (uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1];
    else
        w = 0;
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

//  a[0..n) == b[0..n) with word loads (pieces are short; a libc call costs more than them).
static inline bool s_equal (const uint8_t *a, const uint8_t *b, size_t n)
{
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            uint64_t x, y;
            memcpy (&x, a + i, 8);
            memcpy (&y, b + i, 8);
            if (x != y)
                return false;
        }
        uint64_t x, y;
        memcpy (&x, a + n - 8, 8);
        memcpy (&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4)
        return s_load32 (a) == s_load32 (b) && s_load32 (a + n - 4) == s_load32 (b + n - 4);
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

//  Rank of the token whose bytes are p[0..n), or S_NONE.
static inline uint32_t s_rank (const ar_tokenizer_t *self, const uint8_t *p, size_t n)
{
    if (n == 2) // every merge loop starts with n - 1 of these
        return self->pairs[p[0] << 8 | p[1]];
    if (n == 1)
        return self->bytes[p[0]];
    if (n > AR_O200K_MAXLEN)
        return S_NONE;
    const uint8_t *blob = (const uint8_t *)s_o200k_blob;
    uint64_t h = s_hash (p, n);
    uint64_t want = (uint64_t)n << 39 | (h >> 47) << 47; // length and tag must match
    for (uint32_t i = (uint32_t)h & self->mask;; i = (i + 1) & self->mask) {
        uint64_t slot = self->slots[i];
        if (slot == 0)
            return S_NONE;
        if ((slot & ~((1ull << 39) - 1)) == want &&
            s_equal (blob + (slot >> 18 & ((1u << 21) - 1)), p, n))
            return (uint32_t)(slot & ((1u << 18) - 1)) - 1;
    }
}

//  tiktoken's _byte_pair_merge: parts hold (start, rank of merging it with the next part);
//  repeatedly merge the leftmost lowest-ranked pair.
static void s_merge_short (const ar_tokenizer_t *self, const uint8_t *p, size_t n, s_sink_t *sink)
{
    uint32_t start[S_SHORT_MAX + 1], rank[S_SHORT_MAX + 1];
    size_t parts = n + 1;
    uint32_t min_rank = S_NONE;
    size_t min_i = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        start[i] = (uint32_t)i;
        rank[i] = s_rank (self, p + i, 2);
        if (rank[i] < min_rank) {
            min_rank = rank[i];
            min_i = i;
        }
    }
    start[n - 1] = (uint32_t)(n - 1);
    rank[n - 1] = S_NONE;
    start[n] = (uint32_t)n;
    rank[n] = S_NONE;
    while (min_rank != S_NONE) {
        size_t i = min_i;
        //  After part i+1 goes, the pairs at i-1 and i span one more part.
        if (i > 0)
            rank[i - 1] = i + 2 < parts
                              ? s_rank (self, p + start[i - 1], start[i + 2] - start[i - 1])
                              : S_NONE;
        rank[i] = i + 3 < parts ? s_rank (self, p + start[i], start[i + 3] - start[i]) : S_NONE;
        memmove (start + i + 1, start + i + 2, (parts - i - 2) * sizeof start[0]);
        memmove (rank + i + 1, rank + i + 2, (parts - i - 2) * sizeof rank[0]);
        parts--;
        min_rank = S_NONE;
        for (size_t j = 0; j + 1 < parts; j++)
            if (rank[j] < min_rank) {
                min_rank = rank[j];
                min_i = j;
            }
    }
    if (!sink->out) // counting: the parts are the tokens, no need to look them up again
        sink->n += parts - 1;
    else
        for (size_t j = 0; j + 1 < parts; j++)
            s_emit (sink, s_rank (self, p + start[j], start[j + 1] - start[j]));
}

//  Heap of candidate merges, each the part starting at pos with its next part, keyed
//  rank << 32 | pos: the smallest key is exactly "lowest rank, leftmost first". Four children
//  per node: half the depth of a binary heap, and siblings share a cache line.
static void s_heap_push (uint64_t *heap, size_t *size, uint32_t rank, uint32_t pos)
{
    uint64_t key = (uint64_t)rank << 32 | pos;
    size_t i = (*size)++;
    while (i > 0 && key < heap[(i - 1) / 4]) {
        heap[i] = heap[(i - 1) / 4];
        i = (i - 1) / 4;
    }
    heap[i] = key;
}

static uint64_t s_heap_pop (uint64_t *heap, size_t *size)
{
    uint64_t top = heap[0], last = heap[--*size];
    size_t i = 0, n = *size;
    for (;;) {
        size_t c = 4 * i + 1, end = c + 4 < n ? c + 4 : n;
        if (c >= n)
            break;
        size_t m = c;
        for (size_t k = c + 1; k < end; k++)
            if (heap[k] < heap[m])
                m = k;
        if (heap[m] >= last)
            break;
        heap[i] = heap[m];
        i = m;
    }
    if (n > 0)
        heap[i] = last;
    return top;
}

//  Same result as s_merge_short, for long pieces: parts are a linked list indexed by their
//  start byte, pair ranks live in pair[start], and stale heap entries are skipped on pop.
static int s_merge_long (const ar_tokenizer_t *self, const uint8_t *p, size_t n, s_sink_t *sink)
{
    //  next/prev/pair per byte position plus a heap of at most n + 2 pushes per merge.
    uint32_t *next = malloc ((n + 1) * sizeof *next);
    uint32_t *prev = malloc ((n + 1) * sizeof *prev);
    uint32_t *pair = malloc ((n + 1) * sizeof *pair);
    uint64_t *heap = malloc (3 * (n + 1) * sizeof *heap);
    if (!next || !prev || !pair || !heap) {
        free (next);
        free (prev);
        free (pair);
        free (heap);
        return -1;
    }
    size_t hsize = 0;
    for (size_t i = 0; i < n; i++) {
        next[i] = (uint32_t)(i + 1);
        prev[i] = i > 0 ? (uint32_t)(i - 1) : S_NONE;
        pair[i] = i + 1 < n ? s_rank (self, p + i, 2) : S_NONE;
        if (pair[i] != S_NONE)
            s_heap_push (heap, &hsize, pair[i], (uint32_t)i);
    }
    next[n] = S_NONE;
    while (hsize > 0) {
        uint64_t key = s_heap_pop (heap, &hsize);
        uint32_t i = (uint32_t)key, rank = (uint32_t)(key >> 32);
        //  Stale unless the part at i still exists (prev[i] is cleared when it is absorbed)
        //  and its pair rank is unchanged.
        if (pair[i] != rank || (i > 0 && prev[i] == S_NONE))
            continue;
        uint32_t gone = next[i], after = next[gone];
        next[i] = after;
        prev[gone] = S_NONE;
        pair[gone] = S_NONE;
        if (after < n)
            prev[after] = i;
        uint32_t after2 = after < n ? next[after] : S_NONE;
        pair[i] = after2 != S_NONE ? s_rank (self, p + i, after2 - i) : S_NONE;
        if (pair[i] != S_NONE)
            s_heap_push (heap, &hsize, pair[i], i);
        if (i > 0) {
            uint32_t q = prev[i];
            pair[q] = s_rank (self, p + q, after - q);
            if (pair[q] != S_NONE)
                s_heap_push (heap, &hsize, pair[q], q);
        }
    }
    for (uint32_t i = 0; i < n; i = next[i])
        s_emit (sink, s_rank (self, p + i, next[i] - i));
    free (next);
    free (prev);
    free (pair);
    free (heap);
    return 0;
}

static void s_piece (const ar_tokenizer_t *self, const uint8_t *p, size_t n, s_sink_t *sink)
{
    if (n == 0)
        return;
    //  Most pieces are a whole token: one lookup, no merging.
    uint32_t whole = s_rank (self, p, n);
    if (whole != S_NONE) {
        s_emit (sink, whole);
        return;
    }
    if (n <= S_SHORT_MAX)
        s_merge_short (self, p, n, sink);
    else if (s_merge_long (self, p, n, sink) != 0) {
        //  Out of memory: fall back to one token per byte, an upper bound, rather than fail.
        for (size_t i = 0; i < n; i++)
            s_emit (sink, s_rank (self, p + i, 1));
    }
}

//  Counting goes through a per-thread cache of short pieces and their token counts: text
//  repeats its words, and a hit costs a compare in a 128 KB table instead of a lookup in the
//  4 MB rank index and the blob (two cache misses) or a whole merge. Direct-mapped; a piece
//  is only a hit with its exact bytes, so a count never differs from the merge's. Safe to
//  share between tokenizers: they all hold the same o200k table.
#define S_CACHE_BITS 12
#define S_CACHE_MAX  30 // bytes; longer pieces are rare and go straight to the merge

typedef struct {
    uint8_t len, count;
    uint8_t bytes[S_CACHE_MAX];
} s_cached_t;

static _Thread_local s_cached_t s_cache[1u << S_CACHE_BITS];

static size_t s_count_piece (const ar_tokenizer_t *self, const uint8_t *p, size_t n)
{
    s_sink_t sink = {NULL, 0, 0};
    if (n <= 2) // every 1-byte piece is a token, a 2-byte one is one or two
        return n == 1 ? 1 : 1 + (self->pairs[p[0] << 8 | p[1]] == S_NONE);
    if (n > S_CACHE_MAX) {
        s_piece (self, p, n, &sink);
        return sink.n;
    }
    uint64_t h = s_hash (p, n);
    s_cached_t *entry = &s_cache[h >> (64 - S_CACHE_BITS)];
    if (entry->len == n && s_equal (entry->bytes, p, n))
        return entry->count;
    s_piece (self, p, n, &sink);
    entry->len = (uint8_t)n;
    entry->count = (uint8_t)sink.n;
    memcpy (entry->bytes, p, n);
    return sink.n;
}

static inline void s_take (const ar_tokenizer_t *self, const uint8_t *p, size_t n, s_sink_t *sink)
{
    if (sink->out)
        s_piece (self, p, n, sink);
    else
        sink->n += s_count_piece (self, p, n);
}

//  The pattern above, by hand, for pieces that only involve ASCII: most text is ASCII, and
//  PCRE2's per-match overhead was most of the tokenizer's time. Byte classes:
#define S_UP  1   // A-Z (the only ASCII in [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}])
#define S_LO  2   // a-z (the only ASCII in [\p{Ll}\p{Lm}\p{Lo}\p{M}])
#define S_DIG 4   // 0-9 (\p{N})
#define S_SP  8   // the ASCII of S_WS: \t \n \x0B \f \r and space
#define S_NL  16  // \r \n
#define S_HI  32  // 0x80 and up: part of a character we do not classify here
#define S_OTH 64  // any other ASCII: [^S_WS\p{L}\p{N}]
#define S_PRE 128 // [^\r\n\p{L}\p{N}] (the optional prefix of the letter branches)

static uint8_t s_class[256];
static pthread_once_t s_class_once = PTHREAD_ONCE_INIT;

static void s_class_init (void)
{
    for (int c = 0; c < 256; c++) {
        uint8_t k;
        if (c >= 0x80)
            k = S_HI;
        else if (c >= 'A' && c <= 'Z')
            k = S_UP;
        else if (c >= 'a' && c <= 'z')
            k = S_LO;
        else if (c >= '0' && c <= '9')
            k = S_DIG;
        else if (c == '\r' || c == '\n')
            k = S_SP | S_NL;
        else if (c == '\t' || c == 0x0B || c == '\f' || c == ' ')
            k = S_SP | S_PRE;
        else
            k = S_OTH | S_PRE;
        s_class[c] = k;
    }
}

//  End of the pattern's match at p (s[p] ASCII), or 0 when the answer depends on a byte
//  >= 0x80 (a letter? a digit? white space?): the caller asks PCRE2 then. The branches are
//  taken in the pattern's order, with its backtracking worked out for ASCII.
static size_t s_ascii_match (const uint8_t *s, size_t len, size_t p)
{
    const uint8_t *cls = s_class;
    uint8_t c = cls[s[p]];
    size_t q = p; // where the letters start
    if (c & S_PRE) {
        if (p + 1 < len) {
            uint8_t d = cls[s[p + 1]];
            if (d & S_HI)
                return 0;
            if (d & (S_UP | S_LO))
                q = p + 1;
        }
    } else if (c & S_HI)
        return 0;
    if (c & (S_UP | S_LO) || q > p) {
        //  Branches 1 and 2: [prefix] uppercase* lowercase+ | [prefix] uppercase+ lowercase*,
        //  both then an optional contraction; in ASCII that is uppercase run, lowercase run.
        size_t e = q;
        while (e < len && cls[s[e]] & S_UP)
            e++;
        while (e < len && cls[s[e]] & S_LO)
            e++;
        if (e < len && cls[s[e]] & S_HI)
            return 0;
        if (e + 1 < len && s[e] == '\'') {
            uint8_t a = s[e + 1] | 0x20; // the contractions come in every case mix
            if (a == 's' || a == 't' || a == 'm' || a == 'd')
                return e + 2;
            if (e + 2 < len) {
                uint8_t b = s[e + 2] | 0x20;
                if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                    return e + 3;
            }
        }
        return e;
    }
    if (c & S_DIG) { // \p{N}{1,3}
        size_t e = p + 1;
        while (e < len && e - p < 3 && cls[s[e]] & S_DIG)
            e++;
        if (e - p < 3 && e < len && cls[s[e]] & S_HI)
            return 0;
        return e;
    }
    //  Branch 4: " ?[^S_WS\p{L}\p{N}]+[\r\n/]*" (s[p + 1] is known ASCII here if p is a space).
    bool space = s[p] == ' ' && p + 1 < len && cls[s[p + 1]] & S_OTH;
    if (c & S_OTH || space) {
        size_t e = p + space;
        while (e < len && cls[s[e]] & S_OTH)
            e++;
        if (e < len && cls[s[e]] & S_HI)
            return 0;
        while (e < len && (s[e] == '\r' || s[e] == '\n' || s[e] == '/'))
            e++;
        return e;
    }
    //  White space: "[S_WS]*[\r\n]+" ends after the run's last line break; else
    //  "[S_WS]+(?![^S_WS])" leaves the run's last space to the next piece; else the run.
    size_t e = p, nl = 0;
    while (e < len && cls[s[e]] & S_SP) {
        if (cls[s[e]] & S_NL)
            nl = e + 1;
        e++;
    }
    if (e < len && cls[s[e]] & S_HI)
        return 0;
    if (nl)
        return nl;
    if (e < len && e - p >= 2)
        return e - 1;
    return e;
}

//  ascii: cut ASCII pieces by hand (always, except in the self-test's PCRE2-only reference).
static void s_encode (ar_tokenizer_t *self, const char *text, size_t len, s_sink_t *sink,
                      bool ascii)
{
    if (!self || !text || len == 0)
        return;
    pthread_once (&s_class_once, s_class_init);
    const uint8_t *s = (const uint8_t *)text;
    pcre2_match_data *md = NULL; // made on the first piece PCRE2 has to cut
    size_t pos = 0;
    while (pos < len) {
        size_t end = ascii ? s_ascii_match (s, len, pos) : 0;
        if (end) {
            s_take (self, s + pos, end - pos, sink);
            pos = end;
            continue;
        }
        if (!md && !(md = pcre2_match_data_create (1, NULL)))
            break;
        int rc = self->jit ? pcre2_jit_match (self->re, s, len, pos, 0, md, NULL)
                           : pcre2_match (self->re, s, len, pos, 0, md, NULL);
        if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && self->jit) // e.g. JIT stack: interpreter
            rc = pcre2_match (self->re, s, len, pos, 0, md, NULL);
        size_t ms = len, me = len;
        if (rc >= 0) { // 0: matched, ovector only has room for the whole match
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer (md);
            ms = ov[0];
            me = ov[1];
        }
        //  Bytes the pattern skipped can only be invalid UTF-8 (every valid character matches
        //  some branch); they go through BPE as one byte-level piece. An error from the matcher
        //  (none is expected) ends up here too, so nothing is ever dropped.
        if (ms > pos)
            s_take (self, s + pos, ms - pos, sink);
        if (me <= ms) { // defensive: no branch matches empty
            if (ms < len)
                s_take (self, s + ms, 1, sink);
            pos = ms + 1;
            continue;
        }
        s_take (self, s + ms, me - ms, sink);
        pos = me;
    }
    if (!md) // no memory for match data: count bytes, an upper bound
        for (; pos < len; pos++)
            s_emit (sink, s_rank (self, s + pos, 1));
    pcre2_match_data_free (md);
}

ar_tokenizer_t *ar_tokenizer_new (void)
{
    ar_tokenizer_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->mask = (1u << S_SLOTS_BITS) - 1;
    self->off = malloc (AR_O200K_NRANKS * sizeof *self->off);
    self->len = malloc (AR_O200K_NRANKS);
    self->slots = calloc ((size_t)self->mask + 1, sizeof *self->slots);
    self->pairs = malloc (65536 * sizeof *self->pairs);
    if (!self->off || !self->len || !self->slots || !self->pairs)
        goto fail;
    for (size_t i = 0; i < 65536; i++)
        self->pairs[i] = S_NONE;
    for (size_t i = 0; i < 256; i++)
        self->bytes[i] = S_NONE;
    const uint8_t *blob = (const uint8_t *)s_o200k_blob;
    size_t at = 0;
    for (uint32_t r = 0; r < AR_O200K_NRANKS; r++) {
        if (at >= AR_O200K_BLOBLEN || at + 1 + blob[at] > AR_O200K_BLOBLEN)
            goto fail;
        self->len[r] = blob[at];
        self->off[r] = (uint32_t)(at + 1);
        at += 1 + blob[at];
        if (self->len[r] == 0)
            continue;
        if (self->len[r] == 2)
            self->pairs[blob[self->off[r]] << 8 | blob[self->off[r] + 1]] = r;
        if (self->len[r] == 1)
            self->bytes[blob[self->off[r]]] = r;
        uint64_t h = s_hash (blob + self->off[r], self->len[r]);
        uint32_t i = (uint32_t)h & self->mask;
        while (self->slots[i])
            i = (i + 1) & self->mask;
        self->slots[i] = S_SLOT (r, self->off[r], self->len[r], h);
    }
    int err;
    PCRE2_SIZE erroff;
    //  UCP: \s and \p{..} by Unicode properties; MATCH_INVALID_UTF: any bytes may come in.
    self->re = pcre2_compile ((PCRE2_SPTR)s_pattern, PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &erroff, NULL);
    if (!self->re)
        goto fail;
    self->jit = pcre2_jit_compile (self->re, PCRE2_JIT_COMPLETE) == 0;
    return self;
fail:
    ar_tokenizer_destroy (&self);
    return NULL;
}

void ar_tokenizer_destroy (ar_tokenizer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_tokenizer_t *self = *self_p;
    pcre2_code_free (self->re);
    free (self->off);
    free (self->len);
    free (self->slots);
    free (self->pairs);
    free (self);
    *self_p = NULL;
}

size_t ar_tokenizer_count (ar_tokenizer_t *self, const char *text, size_t len)
{
    s_sink_t sink = {NULL, 0, 0};
    s_encode (self, text, len, &sink, true);
    return sink.n;
}

size_t ar_tokenizer_encode (ar_tokenizer_t *self, const char *text, size_t len, uint32_t *out,
                            size_t max)
{
    s_sink_t sink = {out, out ? max : 0, 0};
    s_encode (self, text, len, &sink, true);
    return sink.n;
}

const char *ar_tokenizer_token (ar_tokenizer_t *self, uint32_t id, size_t *len)
{
    if (!self || id >= AR_O200K_NRANKS || self->len[id] == 0)
        return NULL;
    if (len)
        *len = self->len[id];
    return s_o200k_blob + self->off[id];
}

//  --------------------------------------------------------------------------
//  Self-test

#include "data/o200k_golden.inc"

static uint64_t s_rand_state = 0x2545F4914F6CDD1Dull;
static uint32_t s_rand (void)
{
    s_rand_state ^= s_rand_state << 13;
    s_rand_state ^= s_rand_state >> 7;
    s_rand_state ^= s_rand_state << 17;
    return (uint32_t)(s_rand_state >> 11);
}

//  Encode, then check the ids spell the input back byte for byte.
static size_t s_roundtrip (ar_tokenizer_t *tok, const char *text, size_t len)
{
    uint32_t *ids = malloc ((len + 1) * sizeof *ids);
    assert (ids);
    size_t n = ar_tokenizer_encode (tok, text, len, ids, len + 1);
    assert (n <= len);
    assert (n == ar_tokenizer_count (tok, text, len));
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t tl = 0;
        const char *t = ar_tokenizer_token (tok, ids[i], &tl);
        assert (t && at + tl <= len && memcmp (text + at, t, tl) == 0);
        at += tl;
    }
    assert (at == len);
    free (ids);
    return n;
}

//  The two merge loops must agree on any piece.
static void s_check_merges_agree (ar_tokenizer_t *tok, const uint8_t *p, size_t n)
{
    uint32_t a[S_SHORT_MAX], b[S_SHORT_MAX];
    s_sink_t sa = {a, S_SHORT_MAX, 0}, sb = {b, S_SHORT_MAX, 0};
    s_merge_short (tok, p, n, &sa);
    assert (s_merge_long (tok, p, n, &sb) == 0);
    assert (sa.n == sb.n && memcmp (a, b, sa.n * sizeof a[0]) == 0);
}

//  The hand-cut ASCII matcher must end every match where PCRE2 does, at every ASCII position
//  it answers for; and counting (fast cuts, piece cache) must equal PCRE2-only encoding.
static void s_check_ascii_match (ar_tokenizer_t *tok, const char *text, size_t len)
{
    pthread_once (&s_class_once, s_class_init);
    const uint8_t *s = (const uint8_t *)text;
    pcre2_match_data *md = pcre2_match_data_create (1, NULL);
    assert (md);
    for (size_t p = 0; p < len; p++) {
        if (s[p] >= 0x80)
            continue;
        size_t end = s_ascii_match (s, len, p);
        if (end == 0)
            continue;
        int rc = pcre2_match (tok->re, s, len, p, 0, md, NULL);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer (md);
        if (rc < 0 || ov[0] != p || ov[1] != end)
            fprintf (
                stderr, "ar_tokenizer: ascii match at %zu of \"%.*s\": %zu, pcre2 %d %zu-%zu\n", p,
                (int)len, text, end, rc, rc < 0 ? 0 : (size_t)ov[0], rc < 0 ? 0 : (size_t)ov[1]);
        assert (rc >= 0 && ov[0] == p && ov[1] == end);
    }
    pcre2_match_data_free (md);
    s_sink_t ref = {NULL, 0, 0};
    s_encode (tok, text, len, &ref, false);
    assert (ar_tokenizer_count (tok, text, len) == ref.n);
}

static char *s_corpus (bool skip_long, int reps, size_t *len)
{
    size_t n = sizeof s_golden / sizeof s_golden[0], unit = 0, at = 0;
    for (size_t g = 0; g < n; g++)
        if (!skip_long || strncmp (s_golden[g].name, "long_", 5) != 0)
            unit += s_golden[g].len;
    char *text = malloc (unit * (size_t)reps);
    assert (text);
    for (int r = 0; r < reps; r++)
        for (size_t g = 0; g < n; g++)
            if (!skip_long || strncmp (s_golden[g].name, "long_", 5) != 0) {
                memcpy (text + at, s_golden[g].text, s_golden[g].len);
                at += s_golden[g].len;
            }
    *len = at;
    return text;
}

typedef struct {
    ar_tokenizer_t *tok;
    const char *text;
    size_t len, count;
} s_thread_arg_t;

static void *s_count_thread (void *arg)
{
    s_thread_arg_t *a = arg;
    for (int i = 0; i < 5; i++)
        a->count = ar_tokenizer_count (a->tok, a->text, a->len);
    return NULL;
}

static double s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void ar_tokenizer_test (bool verbose)
{
    double t0 = s_now ();
    ar_tokenizer_t *tok = ar_tokenizer_new ();
    assert (tok);
    double t_load = s_now () - t0;

    //  Golden vectors from the reference (tiktoken encode_ordinary): counts and leading ids.
    for (size_t g = 0; g < sizeof s_golden / sizeof s_golden[0]; g++) {
        const s_golden_t *v = &s_golden[g];
        size_t n = ar_tokenizer_count (tok, v->text, v->len);
        if (n != v->count)
            fprintf (stderr, "ar_tokenizer: %s: %zu tokens, want %zu\n", v->name, n, v->count);
        assert (n == v->count);
        uint32_t ids[64];
        size_t m = ar_tokenizer_encode (tok, v->text, v->len, ids, v->nids);
        assert (m == v->count);
        for (size_t i = 0; i < v->nids; i++) {
            if (ids[i] != v->ids[i])
                fprintf (stderr, "ar_tokenizer: %s: id %zu is %u, want %u\n", v->name, i, ids[i],
                         v->ids[i]);
            assert (ids[i] == v->ids[i]);
        }
        s_roundtrip (tok, v->text, v->len);
    }

    //  Both corpora (every golden text joined and repeated; the speed one without the long_*
    //  runs) have reference counts too, which pins how pieces meet at text boundaries.
    size_t clen, slen;
    char *corpus = s_corpus (false, AR_GOLDEN_CORPUS_REPS, &clen);
    char *speed = s_corpus (true, AR_GOLDEN_SPEED_REPS, &slen);
    assert (ar_tokenizer_count (tok, corpus, clen) == AR_GOLDEN_CORPUS_COUNT);
    assert (ar_tokenizer_count (tok, speed, slen) == AR_GOLDEN_SPEED_COUNT);
    s_roundtrip (tok, corpus, clen);

    //  Edge cases of the API.
    assert (ar_tokenizer_count (tok, NULL, 0) == 0);
    assert (ar_tokenizer_count (tok, "x", 0) == 0);
    assert (ar_tokenizer_count (NULL, "x", 1) == 0);
    assert (ar_tokenizer_encode (tok, "Hello, world!", 13, NULL, 0) == 4);
    uint32_t two[2];
    assert (ar_tokenizer_encode (tok, "Hello, world!", 13, two, 2) == 4);
    assert (two[0] == 13225 && two[1] == 11);
    size_t tl;
    assert (ar_tokenizer_token (tok, AR_O200K_NRANKS, &tl) == NULL);
    assert (ar_tokenizer_token (tok, 13225, &tl) && tl == 5);

    //  Invalid UTF-8 is counted byte-level and never lost: stray continuation bytes, a
    //  truncated sequence, overlongs, surrogates, 0xFF, NULs, each next to valid text.
    const char bad[] = "ok \x80\x80 caf\xc3 \xe4\xbd x \xc0\xaf \xed\xa0\x80 \xff\xfe\xfd \x00\x00 "
                       "\xf4\x90\x80\x80 end\xe2\x82";
    assert (s_roundtrip (tok, bad, sizeof bad - 1) > 0);
    assert (ar_tokenizer_count (tok, "\xff", 1) == 1);
    //  A valid prefix tokenizes as it would alone.
    assert (ar_tokenizer_count (tok, "Hello\xff", 6) == 2);

    //  Random bytes, random valid-ish mixes, and pieces long enough for the heap path.
    for (int round = 0; round < 300; round++) {
        char buf[600] = {0};
        size_t n = s_rand () % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            uint32_t k = s_rand () % 8;
            buf[i] = k < 3   ? (char)(s_rand () & 0xff)
                     : k < 6 ? "aZ 9'\n\t.,e"[s_rand () % 11]
                             : "\xc3\xa9\xe4\xb8\xad"[s_rand () % 5];
        }
        s_roundtrip (tok, buf, n);
        size_t pn = 1 + s_rand () % S_SHORT_MAX;
        s_check_merges_agree (tok, (const uint8_t *)buf, pn < n ? pn : (n ? n : 1));
    }
    for (size_t g = 0; g < sizeof s_golden / sizeof s_golden[0]; g++) {
        const s_golden_t *v = &s_golden[g];
        for (size_t i = 0; i + 1 < v->len && i < 300; i += 7) {
            size_t pn = v->len - i < S_SHORT_MAX ? v->len - i : S_SHORT_MAX;
            s_check_merges_agree (tok, (const uint8_t *)v->text + i, pn);
        }
    }

    //  The ASCII matcher against PCRE2: random strings over the characters each branch of the
    //  pattern turns on (case mixes, contractions, digit runs, every kind of white space and
    //  line break, '/', controls) next to non-ASCII letters, marks, digits, spaces and
    //  invalid bytes; then the golden texts.
    static const char *atoms[] = {"a",
                                  "Z",
                                  "q",
                                  "Ab",
                                  "HTTP",
                                  "x",
                                  "9",
                                  "12",
                                  "0",
                                  " ",
                                  " ",
                                  "  ",
                                  "\t",
                                  "\n",
                                  "\r",
                                  "\r\n",
                                  "\x0B",
                                  "\f",
                                  "'",
                                  "'s",
                                  "'S",
                                  "'t",
                                  "'re",
                                  "'RE",
                                  "'rE",
                                  "'ve",
                                  "'m",
                                  "'ll",
                                  "'Ll",
                                  "'d",
                                  "'D",
                                  "'x",
                                  "/",
                                  "//",
                                  ".",
                                  ",",
                                  "-",
                                  "_",
                                  "\"",
                                  "{",
                                  "}",
                                  "(",
                                  "\\",
                                  "#",
                                  "\x00",
                                  "\x01",
                                  "\x1C",
                                  "\x1F",
                                  "\x7F",
                                  "\xc3\xa9",
                                  "\xc3\x89",
                                  "\xca\xb0",
                                  "\xcc\x81",
                                  "\xc2\xb2",
                                  "\xd9\xa3",
                                  "\xc2\xa0",
                                  "\xe3\x80\x80",
                                  "\xe2\x80\xa8",
                                  "\xc2\x85",
                                  "\xe6\xbc\xa2",
                                  "\xe2\x80\x94",
                                  "\xc2\xab",
                                  "\xf0\x9f\x98\x80",
                                  "\x80",
                                  "\xff",
                                  "\xc3"};
    size_t natoms = sizeof atoms / sizeof atoms[0];
    for (int round = 0; round < 4000; round++) {
        char buf[256];
        size_t n = 0, want = 1 + s_rand () % 40;
        //  Mostly ASCII, like real text; sometimes any atom.
        while (n < want) {
            uint32_t k = s_rand () % 100;
            const char *atom = atoms[k < 85 ? s_rand () % 48 : s_rand () % natoms];
            size_t al = strlen (atom) ? strlen (atom) : 1; // "\x00" is one NUL byte
            if (n + al > sizeof buf)
                break;
            memcpy (buf + n, atom, al);
            n += al;
        }
        s_check_ascii_match (tok, buf, n);
    }
    for (size_t g = 0; g < sizeof s_golden / sizeof s_golden[0]; g++)
        if (s_golden[g].len < 4096)
            s_check_ascii_match (tok, s_golden[g].text, s_golden[g].len);

    //  Huge single pieces (1 MB of one letter, of CJK, of invalid bytes) stay fast and exact.
    size_t big = 1 << 20;
    char *huge = malloc (big);
    assert (huge);
    memset (huge, 'a', big);
    double th = s_now ();
    assert (s_roundtrip (tok, huge, big) == 131072); // 'a' x 8 is one token
    memset (huge, 0xff, big);
    s_roundtrip (tok, huge, big);
    for (size_t i = 0; i + 3 <= big; i += 3)
        memcpy (huge + i, "\xe6\xbc\xa2", 3);
    s_roundtrip (tok, huge, big - big % 3);
    th = s_now () - th;
    free (huge);

    //  One tokenizer shared by threads: read-only after new, so every thread gets the same.
    pthread_t th_ids[4];
    s_thread_arg_t th_args[4];
    for (int i = 0; i < 4; i++) {
        th_args[i] = (s_thread_arg_t){tok, speed, slen, 0};
        assert (pthread_create (&th_ids[i], NULL, s_count_thread, &th_args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        assert (pthread_join (th_ids[i], NULL) == 0);
        assert (th_args[i].count == AR_GOLDEN_SPEED_COUNT);
    }

    //  Speed, counting only as the optimizer uses it: ~100 KB of ordinary mixed text, and
    //  the corpus with the long runs.
    int iters = 20;
    double ts = s_now ();
    for (int i = 0; i < iters; i++)
        assert (ar_tokenizer_count (tok, speed, slen) == AR_GOLDEN_SPEED_COUNT);
    ts = s_now () - ts;
    double tc = s_now ();
    for (int i = 0; i < iters; i++)
        assert (ar_tokenizer_count (tok, corpus, clen) == AR_GOLDEN_CORPUS_COUNT);
    tc = s_now () - tc;
    if (verbose)
        printf ("ar_tokenizer: load %.1f ms; %zu KB mixed text: %.1f MB/s, %.2f M tokens/s "
                "(%.2f ms per pass); with long runs %.1f MB/s; 3 x 1 MB single pieces in "
                "%.0f ms\n",
                t_load * 1e3, slen / 1024, (double)slen * iters / ts / 1e6,
                (double)AR_GOLDEN_SPEED_COUNT * iters / ts / 1e6, ts * 1e3 / iters,
                (double)clen * iters / tc / 1e6, th * 1e3);
    free (speed);
    free (corpus);
    ar_tokenizer_destroy (&tok);
    ar_tokenizer_destroy (&tok);
    assert (tok == NULL);
}
