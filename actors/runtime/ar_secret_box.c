/*  ar_secret_box: AES-256-GCM seal/open of one byte string, as base64 text (see the header).

    Every intermediate buffer that held plaintext is wiped before it is freed. Base64 is parsed
    strictly (ar_base64), so one box has exactly one text.
*/
#include "ar_secret_box.h"
#include "ar_base64.h"

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

//  A box text's bytes in a fresh buffer; NULL when text is not canonical base64.
static uint8_t *s_decode (const char *text, size_t len, size_t *size_out)
{
    uint8_t *out = malloc (len / 4 * 3 + 1);
    if (out && ar_base64_decode (text, len, out, len / 4 * 3, size_out) != 0) {
        free (out);
        out = NULL;
    }
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
    char *text = ok ? ar_base64_encode (box, size) : NULL;
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
    uint8_t *box = s_decode (text, text_len, &size);
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
    uint8_t *box = s_decode (text, strlen (text), &size);
    assert (box && offset < size);
    box[offset] ^= 0x01;
    char *out = ar_base64_encode (box, size);
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
