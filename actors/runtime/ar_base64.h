/*  ar_base64: standard-alphabet, padded base64 (RFC 4648 section 4), decoded strictly: the
    length a multiple of 4, '=' only as the last one or two digits, and the bits a short last
    group does not use zero, so one byte string has exactly one text (a sealed box, a key).
*/
#ifndef AR_BASE64_H
#define AR_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The base64 of size bytes of data, NUL-terminated (caller frees); NULL when out of memory.
char *ar_base64_encode (const uint8_t *data, size_t size);

//  Decode len characters of text into out (room for out_size bytes; len / 4 * 3 always
//  suffice). Returns 0 with the byte count in *size_out, or -1 when text is not canonical
//  base64 or does not fit; out may then hold part of the bytes (the caller wipes a secret).
int ar_base64_decode (const char *text, size_t len, uint8_t *out, size_t out_size,
                      size_t *size_out);

void ar_base64_test (bool verbose);

#endif
