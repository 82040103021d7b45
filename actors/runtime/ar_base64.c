/*  ar_base64: strict base64 for ar_secret_box's texts and ar_content_key's key (see the
    header).
*/
#include "ar_base64.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const char s_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int s_value (char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

char *ar_base64_encode (const uint8_t *data, size_t size)
{
    char *out = malloc ((size + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    char *at = out;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t group = (uint32_t)data[i] << 16;
        if (i + 1 < size)
            group |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < size)
            group |= data[i + 2];
        *at++ = s_alphabet[group >> 18 & 63];
        *at++ = s_alphabet[group >> 12 & 63];
        *at++ = i + 1 < size ? s_alphabet[group >> 6 & 63] : '=';
        *at++ = i + 2 < size ? s_alphabet[group & 63] : '=';
    }
    *at = 0;
    return out;
}

int ar_base64_decode (const char *text, size_t len, uint8_t *out, size_t out_size, size_t *size_out)
{
    if (len == 0 || len % 4 != 0)
        return -1;
    size_t padding = text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
    size_t size = len / 4 * 3 - padding;
    if (size > out_size)
        return -1;
    size_t produced = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t group = 0;
        size_t digits = i + 4 == len ? 4 - padding : 4;
        for (size_t j = 0; j < 4; j++) {
            int value = j < digits ? s_value (text[i + j]) : 0;
            if (value < 0 || (j >= digits && text[i + j] != '='))
                return -1;
            group = group << 6 | (uint32_t)value;
        }
        //  the bits a short last group does not use must be zero: one byte string, one text
        if ((digits == 3 && (group & 0xff)) || (digits == 2 && (group & 0xffff)))
            return -1;
        uint8_t bytes[3] = {(uint8_t)(group >> 16), (uint8_t)(group >> 8), (uint8_t)group};
        for (size_t j = 0; j < digits - 1; j++)
            out[produced++] = bytes[j];
    }
    assert (produced == size);
    *size_out = size;
    return 0;
}

//  --------------------------------------------------------------------------
//  Self-test

void ar_base64_test (bool verbose)
{
    (void)verbose;
    //  Known vectors (RFC 4648 section 10), and refusals of non-canonical text.
    const char *vectors[][2] = {{"f", "Zg=="},         {"fo", "Zm8="},
                                {"foo", "Zm9v"},       {"foob", "Zm9vYg=="},
                                {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    uint8_t decoded[16];
    size_t size = 0;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char *encoded = ar_base64_encode ((const uint8_t *)vectors[i][0], strlen (vectors[i][0]));
        assert (encoded && strcmp (encoded, vectors[i][1]) == 0);
        free (encoded);
        const char *text = vectors[i][1];
        assert (ar_base64_decode (text, strlen (text), decoded, sizeof decoded, &size) == 0);
        assert (size == strlen (vectors[i][0]) && memcmp (decoded, vectors[i][0], size) == 0);
        //  exactly the room the bytes need is enough; one byte less is not
        assert (ar_base64_decode (text, strlen (text), decoded, size, &size) == 0);
        assert (ar_base64_decode (text, strlen (text), decoded, size - 1, &size) == -1);
    }
    const char *malformed[] = {
        "Zg=", "Zh==", "Zm9=", "Z===", "=Zg=", "Zg==Zg==", "Zm9v!A==", "Zm 9", ""};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        assert (ar_base64_decode (malformed[i], strlen (malformed[i]), decoded, sizeof decoded,
                                  &size) == -1);
    char *empty = ar_base64_encode (NULL, 0);
    assert (empty && *empty == 0);
    free (empty);
}
