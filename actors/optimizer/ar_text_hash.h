/*  ar_text_hash: one fast 64-bit hash of a byte string, for the optimizer's memo tables and
    sets (token counts, line sets). Not keyed and not for anything an attacker may choose to
    collide on purpose; a wrong answer from a collision costs a recount or one kept line.
*/
#ifndef AR_TEXT_HASH_H
#define AR_TEXT_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  MurmurHash3's 64-bit mixing over 8-byte words, seeded with the length, then its finalizer.
uint64_t ar_text_hash (const char *text, size_t len);

void ar_text_hash_test (bool verbose);

#endif
