/*  ar_buf: growable byte buffer. */
#include "ar_buf.h"
#include <unistd.h>
#include <stdio.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int ar_buf_append (ar_buf_t *self, const void *data, size_t len, size_t cap)
{
    if (len > cap || self->len > cap - len || len == SIZE_MAX)
        return -1;
    if (!self->data || self->len + len > self->size) {
        size_t size = self->size ? self->size : 1024;
        while (size < self->len + len)
            size *= 2;
        char *grown = realloc (self->data, size + 1); // + the NUL
        if (!grown)
            return -1;
        self->data = grown;
        self->size = size;
    }
    if (len)
        memcpy (self->data + self->len, data, len);
    self->len += len;
    self->data[self->len] = 0;
    return 0;
}

int ar_buf_add (ar_buf_t *self, const void *data, size_t len)
{
    return ar_buf_append (self, data, len, SIZE_MAX);
}

void ar_buf_consume (ar_buf_t *self, size_t n)
{
    if (n >= self->len) {
        self->len = 0;
        if (self->data)
            self->data[0] = 0;
        return;
    }
    memmove (self->data, self->data + n, self->len - n);
    self->len -= n;
    self->data[self->len] = 0;
}

void ar_buf_free (ar_buf_t *self)
{
    free (self->data);
    self->data = NULL;
    self->len = self->size = 0;
}

char *ar_buf_read_file (const char *path, size_t *len)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    ar_buf_t buf = {0};
    char chunk[65536];
    size_t n;
    bool failed = ar_buf_add (&buf, "", 0) != 0;
    while (!failed && (n = fread (chunk, 1, sizeof chunk, file)) > 0)
        failed = ar_buf_add (&buf, chunk, n) != 0;
    failed |= ferror (file) != 0;
    fclose (file);
    if (failed) {
        ar_buf_free (&buf);
        return NULL;
    }
    if (len)
        *len = buf.len;
    return buf.data;
}

int ar_hex_value (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void ar_hex_encode (const uint8_t *data, size_t size, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * size] = 0;
}

void ar_buf_test (bool verbose)
{
    ar_buf_t buf = {0};
    assert (ar_buf_append (&buf, "hello", 5, SIZE_MAX) == 0);
    char big[3000];
    memset (big, 'x', sizeof big);
    assert (ar_buf_append (&buf, big, sizeof big, SIZE_MAX) == 0);
    assert (buf.len == 3005 && buf.size >= 3005 && memcmp (buf.data, "hello", 5) == 0);
    assert (buf.data[buf.len] == 0); // readable as a C string
    //  The cap refuses and leaves the buffer as it was.
    assert (ar_buf_append (&buf, "y", 1, 3005) == -1 && buf.len == 3005);
    assert (ar_buf_append (&buf, "y", SIZE_MAX, SIZE_MAX) == -1);
    ar_buf_consume (&buf, 5);
    assert (buf.len == 3000 && buf.data[0] == 'x' && buf.data[3000] == 0);
    ar_buf_consume (&buf, 9999);
    assert (buf.len == 0);
    ar_buf_free (&buf);
    assert (buf.data == NULL && buf.size == 0);
    //  Appending nothing to an empty buffer still gives a C string.
    assert (ar_buf_add (&buf, "", 0) == 0 && buf.data && buf.data[0] == 0 && buf.len == 0);
    ar_buf_free (&buf);
    //  A whole file back, NUL-terminated; a missing one is NULL.
    char path[] = "/tmp/ar_buf_test.XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0 && write (fd, "one\0two", 7) == 7 && close (fd) == 0);
    size_t len = 0;
    char *text = ar_buf_read_file (path, &len);
    assert (text && len == 7 && memcmp (text, "one\0two", 7) == 0 && text[7] == 0);
    free (text);
    assert (unlink (path) == 0 && ar_buf_read_file (path, &len) == NULL);
    char hex[9];
    assert (ar_hex_value ('7') == 7 && ar_hex_value ('b') == 11 && ar_hex_value ('F') == 15);
    assert (ar_hex_value ('g') == -1 && ar_hex_value ('/') == -1);
    ar_hex_encode ((const uint8_t *)"\x01\xab\xff\x10", 4, hex);
    assert (strcmp (hex, "01abff10") == 0);
    (void)verbose;
}
