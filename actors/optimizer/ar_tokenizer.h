/*  ar_tokenizer: the o200k_base byte-level BPE (the GPT-4o / o-series tokenizer), in C.
    Every "tokens" figure of the optimizer comes from here. The rank table is generated from a
    published npm package into data/ (see data/README.md) and embedded, so nothing is read at
    run time. Pieces are cut by tiktoken's o200k pre-tokenizer pattern (by hand where only ASCII
    decides, else PCRE2 JIT), then merged by rank exactly as tiktoken's encode_ordinary:
    special-token text counts as plain text. Counting keeps a 128 KB per-thread cache of short
    pieces and their counts.
    Bytes that are not valid UTF-8 are never dropped: each run of them is one byte-level piece.
    After ar_tokenizer_new, a tokenizer is read-only and may be shared by threads.
    Known gap: PCRE2 10.42 (Debian 12) knows Unicode 14, so a character assigned later (e.g.
    CJK Extension H) is not a letter to it and the text around it may split differently from
    tiktoken, by a token or so each time. Everything up to Unicode 14 matches tiktoken.
*/
#ifndef AR_TOKENIZER_H
#define AR_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _ar_tokenizer_t ar_tokenizer_t;

//  Build the rank index and compile the pattern (a few ms, ~6 MB). NULL on failure.
ar_tokenizer_t *ar_tokenizer_new (void);

void ar_tokenizer_destroy (ar_tokenizer_t **self_p);

//  Number of o200k_base tokens in text[0..len). Any bytes are accepted.
size_t ar_tokenizer_count (ar_tokenizer_t *self, const char *text, size_t len);

//  Encode text into token ids; writes at most max ids to out (out may be NULL when max is 0)
//  and returns the total number of tokens, like snprintf: a result above max means truncated.
size_t ar_tokenizer_encode (ar_tokenizer_t *self, const char *text, size_t len, uint32_t *out,
                            size_t max);

//  The bytes of token id (not NUL-terminated), with *len set; NULL if id is not a token.
const char *ar_tokenizer_token (ar_tokenizer_t *self, uint32_t id, size_t *len);

void ar_tokenizer_test (bool verbose);

#endif
