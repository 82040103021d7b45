/*  =========================================================================
    mock_buf - growable byte buffer with JSON string escaping
    =========================================================================
*/
#include "mock_buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Empty the buffer but keep its memory

void mock_buf_reset (mock_buf_t *self)
{
    self->len = 0;
    self->broken = false;
    if (self->data)
        self->data[0] = 0;
}

//  --------------------------------------------------------------------------
//  Release the memory

void mock_buf_free (mock_buf_t *self)
{
    free (self->data);
    self->data = NULL;
    self->len = self->cap = 0;
    self->broken = false;
}

//  --------------------------------------------------------------------------
//  Make room for at least extra more bytes (plus the NUL)

bool mock_buf_reserve (mock_buf_t *self, size_t extra)
{
    if (self->broken)
        return false;
    if (extra > SIZE_MAX / 2 - self->len - 1) {
        self->broken = true;
        return false;
    }
    size_t need = self->len + extra + 1;
    if (need <= self->cap)
        return true;
    size_t cap = self->cap ? self->cap : 256;
    while (cap < need)
        cap *= 2;
    char *data = realloc (self->data, cap);
    if (!data) {
        self->broken = true;
        return false;
    }
    self->data = data;
    self->cap = cap;
    return true;
}

//  --------------------------------------------------------------------------
//  Append raw bytes

void mock_buf_append (mock_buf_t *self, const void *data, size_t len)
{
    if (!mock_buf_reserve (self, len))
        return;
    if (len)
        memcpy (self->data + self->len, data, len);
    self->len += len;
    self->data[self->len] = 0;
}

//  --------------------------------------------------------------------------
//  Append a NUL-terminated string

void mock_buf_puts (mock_buf_t *self, const char *str)
{
    mock_buf_append (self, str, strlen (str));
}

//  --------------------------------------------------------------------------
//  Append printf-style text

void mock_buf_printf (mock_buf_t *self, const char *format, ...)
{
    char small[256];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (small, sizeof small, format, args);
    va_end (args);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        mock_buf_append (self, small, (size_t)n);
        return;
    }
    if (!mock_buf_reserve (self, (size_t)n))
        return;
    va_start (args, format);
    vsnprintf (self->data + self->len, (size_t)n + 1, format, args);
    va_end (args);
    self->len += (size_t)n;
}

//  --------------------------------------------------------------------------
//  Length of the valid UTF-8 sequence at s, or 0

size_t mock_utf8_len (const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else
        return 0;
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    //  Reject overlong forms, surrogates and values past U+10FFFF
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

//  --------------------------------------------------------------------------
//  Append data as a quoted JSON string

void mock_buf_json_string (mock_buf_t *self, const char *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)data;
    mock_buf_append (self, "\"", 1);
    size_t i = 0;
    while (i < len && !self->broken) {
        //  Escape in blocks so a big body costs at most 6x one block extra;
        //  a UTF-8 sequence may run up to 3 bytes past the block end.
        size_t stop = len - i > 4096 ? i + 4096 : len;
        if (!mock_buf_reserve (self, (stop - i + 3) * 6))
            return;
        char *out = self->data + self->len;
        while (i < stop) {
            unsigned char c = s[i];
            if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                *out++ = (char)c;
                i++;
            } else if (c == '"' || c == '\\') {
                *out++ = '\\';
                *out++ = (char)c;
                i++;
            } else if (c < 0x20) {
                *out++ = '\\';
                if (c == '\n')
                    *out++ = 'n';
                else if (c == '\r')
                    *out++ = 'r';
                else if (c == '\t')
                    *out++ = 't';
                else {
                    memcpy (out, "u00", 3);
                    out += 3;
                    *out++ = hex[c >> 4];
                    *out++ = hex[c & 15];
                }
                i++;
            } else {
                size_t n = mock_utf8_len (s + i, len - i);
                if (n) {
                    memcpy (out, s + i, n);
                    out += n;
                    i += n;
                } else {
                    memcpy (out, "\\ufffd", 6);
                    out += 6;
                    i++;
                }
            }
        }
        self->len = (size_t)(out - self->data);
        self->data[self->len] = 0;
    }
    mock_buf_append (self, "\"", 1);
}

//  --------------------------------------------------------------------------
//  Hand the memory to the caller

char *mock_buf_detach (mock_buf_t *self, size_t *len_p)
{
    if (self->broken || !mock_buf_reserve (self, 0)) {
        mock_buf_free (self);
        if (len_p)
            *len_p = 0;
        return NULL;
    }
    char *data = self->data;
    if (len_p)
        *len_p = self->len;
    self->data = NULL;
    self->len = self->cap = 0;
    return data;
}
