/*  ar_secret_box: one byte string sealed with AES-256-GCM under a 32-byte key, as text.

    The sealed text is the base64 (standard alphabet, padded) of nonce (12 random bytes, fresh
    per seal) | ciphertext | tag (16 bytes), so it can sit in a JSON body or a text column. The
    associated data (e.g. the name the secret is stored under) is authenticated but not stored:
    a box opened with other associated data, another key, or any byte changed fails as a whole.

    Nothing here logs. Opened plaintext is the caller's to wipe: ar_secret_box_free.
*/
#ifndef AR_SECRET_BOX_H
#define AR_SECRET_BOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_SECRET_BOX_KEY_LEN   32
#define AR_SECRET_BOX_NONCE_LEN 12
#define AR_SECRET_BOX_TAG_LEN   16
#define AR_SECRET_BOX_MAX       (16u * 1024 * 1024) // bytes of plaintext one box takes

//  Seal len bytes of plain (may be 0; plain may then be NULL) under key, binding aad (a string,
//  NULL for none). Returns the base64 text (caller frees), or NULL on bad arguments, a plaintext
//  over AR_SECRET_BOX_MAX, or a failure of the system's randomness or cipher.
char *ar_secret_box_seal (const uint8_t key[AR_SECRET_BOX_KEY_LEN], const char *aad,
                          const void *plain, size_t len);

//  Open text sealed by ar_secret_box_seal with the same key and aad. Returns the plaintext
//  (NUL-terminated for convenience; its length in *len_out when not NULL), or NULL when text is
//  not a well-formed box, or was sealed under another key or aad, or was changed at all.
char *ar_secret_box_open (const uint8_t key[AR_SECRET_BOX_KEY_LEN], const char *aad,
                          const char *text, size_t *len_out);

//  Wipe len bytes of an opened plaintext, free it, and NULL the pointer.
void ar_secret_box_free (char **plain_p, size_t len);

void ar_secret_box_test (bool verbose);

#endif
