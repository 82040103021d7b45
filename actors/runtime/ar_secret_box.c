/*  ar_secret_box: AES-256-GCM seal/open of one byte string, as base64 text (see the header).

    Every intermediate buffer that held plaintext is wiped before it is freed. Base64 is parsed
    strictly (length a multiple of 4, padding only at the end, unused bits zero), so one box has
    exactly one text.
*/
#include "ar_secret_box.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define S_OVERHEAD (AR_SECRET_BOX_NONCE_LEN + AR_SECRET_BOX_TAG_LEN)

//  --------------------------------------------------------------------------
//  Base64

static const char s_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int s_base64_value (char c)
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

static char *s_base64_encode (const uint8_t *data, size_t size)
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

//  Decode text (len a multiple of 4) into a fresh buffer; NULL when not canonical base64.
static uint8_t *s_base64_decode (const char *text, size_t len, size_t *size_out)
{
    if (len == 0 || len % 4 != 0)
        return NULL;
    size_t padding = text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
    size_t size = len / 4 * 3 - padding;
    uint8_t *out = malloc (size ? size : 1);
    if (!out)
        return NULL;
    size_t produced = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t group = 0;
        size_t digits = i + 4 == len ? 4 - padding : 4;
        for (size_t j = 0; j < 4; j++) {
            int value = j < digits ? s_base64_value (text[i + j]) : 0;
            if (value < 0 || (j >= digits && text[i + j] != '=')) {
                free (out);
                return NULL;
            }
            group = group << 6 | (uint32_t)value;
        }
        //  the bits a short last group does not use must be zero: one box, one text
        if ((digits == 3 && (group & 0xff)) || (digits == 2 && (group & 0xffff))) {
            free (out);
            return NULL;
        }
        uint8_t bytes[3] = {(uint8_t)(group >> 16), (uint8_t)(group >> 8), (uint8_t)group};
        for (size_t j = 0; j < digits - 1; j++)
            out[produced++] = bytes[j];
    }
    assert (produced == size);
    *size_out = size;
    return out;
}

//  --------------------------------------------------------------------------
//  Seal

char *ar_secret_box_seal (const uint8_t key[AR_SECRET_BOX_KEY_LEN], const char *aad,
                          const void *plain, size_t len)
{
    if (!key || (len && !plain) || len > AR_SECRET_BOX_MAX)
        return NULL;
    size_t aad_len = aad ? strlen (aad) : 0;
    if (aad_len > INT_MAX)
        return NULL;
    size_t size = S_OVERHEAD + len;
    uint8_t *box = malloc (size);
    EVP_CIPHER_CTX *ctx = box ? EVP_CIPHER_CTX_new () : NULL;
    uint8_t *nonce = box, *ciphertext = box + AR_SECRET_BOX_NONCE_LEN;
    uint8_t *tag = ciphertext + len;
    int out = 0, final = 0;
    bool ok = ctx && RAND_bytes (nonce, AR_SECRET_BOX_NONCE_LEN) == 1 &&
              EVP_EncryptInit_ex (ctx, EVP_aes_256_gcm (), NULL, key, nonce) == 1 &&
              (aad_len == 0 ||
               EVP_EncryptUpdate (ctx, NULL, &out, (const uint8_t *)aad, (int)aad_len) == 1) &&
              (len == 0 || EVP_EncryptUpdate (ctx, ciphertext, &out, plain, (int)len) == 1) &&
              EVP_EncryptFinal_ex (ctx, ciphertext + (len ? out : 0), &final) == 1 &&
              EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_GET_TAG, AR_SECRET_BOX_TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free (ctx); // cleanses the key schedule
    char *text = ok ? s_base64_encode (box, size) : NULL;
    if (!ok)
        ERR_clear_error ();
    if (box) {
        OPENSSL_cleanse (box, size); // ciphertext only, but no reason to leave it around
        free (box);
    }
    return text;
}

//  --------------------------------------------------------------------------
//  Open

char *ar_secret_box_open (const uint8_t key[AR_SECRET_BOX_KEY_LEN], const char *aad,
                          const char *text, size_t *len_out)
{
    if (len_out)
        *len_out = 0;
    if (!key || !text)
        return NULL;
    size_t aad_len = aad ? strlen (aad) : 0;
    size_t text_len = strnlen (text, (AR_SECRET_BOX_MAX + S_OVERHEAD) / 3 * 4 + 8);
    if (aad_len > INT_MAX || text_len > (AR_SECRET_BOX_MAX + S_OVERHEAD + 2) / 3 * 4)
        return NULL;
    size_t size = 0;
    uint8_t *box = s_base64_decode (text, text_len, &size);
    if (!box)
        return NULL;
    if (size < S_OVERHEAD) {
        free (box);
        return NULL;
    }
    size_t len = size - S_OVERHEAD;
    const uint8_t *nonce = box, *ciphertext = box + AR_SECRET_BOX_NONCE_LEN;
    uint8_t *tag = box + AR_SECRET_BOX_NONCE_LEN + len;
    char *plain = malloc (len + 1);
    EVP_CIPHER_CTX *ctx = plain ? EVP_CIPHER_CTX_new () : NULL;
    int out = 0, final = 0;
    bool ok =
        ctx && EVP_DecryptInit_ex (ctx, EVP_aes_256_gcm (), NULL, key, nonce) == 1 &&
        (aad_len == 0 ||
         EVP_DecryptUpdate (ctx, NULL, &out, (const uint8_t *)aad, (int)aad_len) == 1) &&
        (len == 0 || EVP_DecryptUpdate (ctx, (uint8_t *)plain, &out, ciphertext, (int)len) == 1) &&
        EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_SET_TAG, AR_SECRET_BOX_TAG_LEN, tag) == 1 &&
        EVP_DecryptFinal_ex (ctx, (uint8_t *)plain + (len ? out : 0), &final) == 1;
    EVP_CIPHER_CTX_free (ctx);
    free (box);
    if (!ok) {
        ERR_clear_error ();
        if (plain) {
            OPENSSL_cleanse (plain, len); // unauthenticated bytes: nobody gets to see them
            free (plain);
        }
        return NULL;
    }
    plain[len] = 0;
    if (len_out)
        *len_out = len;
    return plain;
}

void ar_secret_box_free (char **plain_p, size_t len)
{
    if (!plain_p || !*plain_p)
        return;
    OPENSSL_cleanse (*plain_p, len);
    free (*plain_p);
    *plain_p = NULL;
}

//  --------------------------------------------------------------------------
//  Self-test

//  text with the byte at offset (into the decoded box) flipped, re-encoded.
static char *s_test_flip (const char *text, size_t offset)
{
    size_t size = 0;
    uint8_t *box = s_base64_decode (text, strlen (text), &size);
    assert (box && offset < size);
    box[offset] ^= 0x01;
    char *out = s_base64_encode (box, size);
    free (box);
    assert (out);
    return out;
}

void ar_secret_box_test (bool verbose)
{
    //  @selftest
    uint8_t key[AR_SECRET_BOX_KEY_LEN], other[AR_SECRET_BOX_KEY_LEN];
    for (size_t i = 0; i < sizeof key; i++) {
        key[i] = (uint8_t)(i * 13 + 1);
        other[i] = key[i];
    }
    other[31] ^= 0x80;
    const char *secret = "sk-live-0123456789abcdef-SECRET";
    size_t secret_len = strlen (secret);

    //  Base64 against known vectors (RFC 4648 section 10), and refusals of non-canonical text.
    const char *vectors[][2] = {{"f", "Zg=="},         {"fo", "Zm8="},
                                {"foo", "Zm9v"},       {"foob", "Zm9vYg=="},
                                {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char *encoded = s_base64_encode ((const uint8_t *)vectors[i][0], strlen (vectors[i][0]));
        assert (encoded && strcmp (encoded, vectors[i][1]) == 0);
        free (encoded);
        size_t size = 0;
        uint8_t *decoded = s_base64_decode (vectors[i][1], strlen (vectors[i][1]), &size);
        assert (decoded && size == strlen (vectors[i][0]));
        assert (memcmp (decoded, vectors[i][0], size) == 0);
        free (decoded);
    }
    const char *malformed[] = {
        "Zg=", "Zh==", "Zm9=", "Z===", "=Zg=", "Zg==Zg==", "Zm9v!A==", "Zm 9", ""};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        size_t size = 0;
        assert (s_base64_decode (malformed[i], strlen (malformed[i]), &size) == NULL);
    }

    //  Round trip; a fresh nonce each time, so the same secret seals to different texts.
    char *sealed = ar_secret_box_seal (key, "openai", secret, secret_len);
    assert (sealed);
    assert (strlen (sealed) == (S_OVERHEAD + secret_len + 2) / 3 * 4);
    assert (strstr (sealed, secret) == NULL);
    size_t len = 0;
    char *opened = ar_secret_box_open (key, "openai", sealed, &len);
    assert (opened && len == secret_len && strcmp (opened, secret) == 0);
    ar_secret_box_free (&opened, len);
    assert (opened == NULL);
    ar_secret_box_free (&opened, 0); // twice is harmless
    char *again = ar_secret_box_seal (key, "openai", secret, secret_len);
    assert (again && strcmp (again, sealed) != 0);
    opened = ar_secret_box_open (key, "openai", again, NULL);
    assert (opened && strcmp (opened, secret) == 0);
    ar_secret_box_free (&opened, secret_len);
    free (again);

    //  Wrong associated data, wrong key: nothing.
    assert (ar_secret_box_open (key, "anthropic", sealed, &len) == NULL && len == 0);
    assert (ar_secret_box_open (key, NULL, sealed, &len) == NULL);
    assert (ar_secret_box_open (key, "openai ", sealed, &len) == NULL);
    assert (ar_secret_box_open (other, "openai", sealed, &len) == NULL);

    //  Any byte changed, in the nonce, the ciphertext or the tag: nothing.
    size_t box_size = S_OVERHEAD + secret_len;
    size_t offsets[] = {0,
                        AR_SECRET_BOX_NONCE_LEN - 1,
                        AR_SECRET_BOX_NONCE_LEN,
                        AR_SECRET_BOX_NONCE_LEN + secret_len / 2,
                        AR_SECRET_BOX_NONCE_LEN + secret_len - 1,
                        box_size - AR_SECRET_BOX_TAG_LEN,
                        box_size - 1};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        char *tampered = s_test_flip (sealed, offsets[i]);
        assert (ar_secret_box_open (key, "openai", tampered, &len) == NULL);
        free (tampered);
    }
    //  Cut short (a whole base64 group less: the tag loses bytes), grown, or not base64.
    char cut[512];
    snprintf (cut, sizeof cut, "%.*s", (int)(strlen (sealed) - 4), sealed);
    assert (ar_secret_box_open (key, "openai", cut, &len) == NULL);
    snprintf (cut, sizeof cut, "%sAAAA", sealed);
    assert (ar_secret_box_open (key, "openai", cut, &len) == NULL);
    snprintf (cut, sizeof cut, "%s", sealed);
    cut[5] = '*';
    assert (ar_secret_box_open (key, "openai", cut, &len) == NULL);
    assert (ar_secret_box_open (key, "openai", "", &len) == NULL);
    assert (ar_secret_box_open (key, "openai", "AAAA", &len) == NULL); // shorter than a box
    assert (ar_secret_box_open (key, "openai", NULL, &len) == NULL);
    assert (ar_secret_box_open (NULL, "openai", sealed, &len) == NULL);
    free (sealed);

    //  Empty plaintext: a box of nonce and tag only, still authenticated.
    sealed = ar_secret_box_seal (key, "empty", NULL, 0);
    assert (sealed && strlen (sealed) == (S_OVERHEAD + 2) / 3 * 4);
    opened = ar_secret_box_open (key, "empty", sealed, &len);
    assert (opened && len == 0 && opened[0] == 0);
    ar_secret_box_free (&opened, len);
    assert (ar_secret_box_open (key, "other", sealed, &len) == NULL);
    char *tampered = s_test_flip (sealed, S_OVERHEAD - 1);
    assert (ar_secret_box_open (key, "empty", tampered, &len) == NULL);
    free (tampered);
    free (sealed);

    //  Binary plaintext with NULs, every length across base64's three padding cases.
    uint8_t binary[70];
    for (size_t i = 0; i < sizeof binary; i++)
        binary[i] = (uint8_t)(i % 3 == 0 ? 0 : i * 37);
    for (size_t n = 0; n <= sizeof binary; n++) {
        sealed = ar_secret_box_seal (key, NULL, binary, n);
        assert (sealed);
        opened = ar_secret_box_open (key, NULL, sealed, &len);
        assert (opened && len == n && memcmp (opened, binary, n) == 0);
        ar_secret_box_free (&opened, len);
        free (sealed);
    }
    //  Bad arguments.
    assert (ar_secret_box_seal (NULL, "a", "x", 1) == NULL);
    assert (ar_secret_box_seal (key, "a", NULL, 1) == NULL);
    assert (ar_secret_box_seal (key, "a", "x", (size_t)AR_SECRET_BOX_MAX + 1) == NULL);
    //  @end
    if (verbose)
        printf ("ar_secret_box: ok\n");
}
