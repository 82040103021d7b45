/*  ar_buf: a growable byte buffer (doubling, optional cap). One piece for every place that
    accumulates bytes: response bodies, pending SSE events, partial stream lines, text a
    strategy rebuilds. Once anything has been appended (even zero bytes), data is non-NULL and
    data[len] is a NUL, so text can be read as a C string.
*/
#ifndef AR_BUF_H
#define AR_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;
    size_t len;  // bytes in use
    size_t size; // bytes usable (one more is allocated for the NUL)
} ar_buf_t;

//  Append len bytes. Returns 0, or -1 (buffer unchanged) when the result would pass cap
//  (SIZE_MAX for none) or memory runs out.
int ar_buf_append (ar_buf_t *self, const void *data, size_t len, size_t cap);
//  The same without a cap.
int ar_buf_add (ar_buf_t *self, const void *data, size_t len);

//  Drop the first n bytes (n <= len), keeping the rest at the front.
void ar_buf_consume (ar_buf_t *self, size_t n);

//  Free the storage; the buffer is empty and reusable afterwards.
void ar_buf_free (ar_buf_t *self);

//  The whole file at path, NUL-terminated (caller frees), its length in *len when len is not
//  NULL; NULL when it cannot be opened or read.
char *ar_buf_read_file (const char *path, size_t *len);

//  Lower-case hex of size bytes into out (2 * size + 1 bytes, NUL-terminated).
void ar_hex_encode (const uint8_t *data, size_t size, char *out);
//  The value of one hex digit (either case), or -1.
int ar_hex_value (char c);

void ar_buf_test (bool verbose);

#endif
