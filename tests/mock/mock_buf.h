/*  =========================================================================
    mock_buf - growable byte buffer with JSON string escaping

    The mock builds every response body by appending into one of these.
    Appends never fail loudly: on out-of-memory the buffer is marked broken
    and later appends are ignored, so callers check once at the end.
    =========================================================================
*/
#ifndef MOCK_BUF_H_INCLUDED
#define MOCK_BUF_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data;  //  NUL-terminated when non-NULL
    size_t len;  //  bytes used, not counting the NUL
    size_t cap;  //  bytes allocated
    bool broken; //  an allocation failed; contents are unusable
} mock_buf_t;

//  Empty the buffer but keep its memory
void mock_buf_reset (mock_buf_t *self);

//  Release the memory
void mock_buf_free (mock_buf_t *self);

//  Make room for at least extra more bytes; false if that failed
bool mock_buf_reserve (mock_buf_t *self, size_t extra);

//  Append raw bytes
void mock_buf_append (mock_buf_t *self, const void *data, size_t len);

//  Append a NUL-terminated string
void mock_buf_puts (mock_buf_t *self, const char *str);

//  Append printf-style text
void mock_buf_printf (mock_buf_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Append data as a quoted JSON string. Invalid UTF-8 becomes U+FFFD so
//  the output is always valid JSON whatever bytes the client sent.
void mock_buf_json_string (mock_buf_t *self, const char *data, size_t len);

//  Length of the valid UTF-8 sequence starting at s (at most left bytes),
//  or 0 if it is not valid UTF-8 (overlong, surrogate, past U+10FFFF...)
size_t mock_utf8_len (const unsigned char *s, size_t left);

//  Hand the memory to the caller (who frees it); the buffer becomes empty
char *mock_buf_detach (mock_buf_t *self, size_t *len_p);

#endif
