/*  ar_content_key: the 32-byte AES-256-GCM key that encrypts stored content at rest.

    ANYRAY_CONTENT_KEY holds it as 64 hex digits or as the base64 of 32 bytes (padded or not;
    surrounding whitespace is ignored). Anything else is an error that names the variable but
    never repeats its value.

    When the variable is unset (or empty), the key lives in <data dir>/content.key: generated
    once from the system CSPRNG (64 hex digits, mode 0600, created atomically so replicas that
    start together agree on one key) and reused on every later start. That keeps the embedded
    default working out of the box and across restarts; a cluster whose replicas do not share
    the data dir must set the variable. Either way the object carries a warning for the caller
    to log (ar_content_key_warning); nothing here logs and no message ever holds key material.

    The key is wiped from memory when the object is destroyed.
*/
#ifndef AR_CONTENT_KEY_H
#define AR_CONTENT_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_CONTENT_KEY_LEN  32
#define AR_CONTENT_KEY_ENV  "ANYRAY_CONTENT_KEY"
#define AR_CONTENT_KEY_FILE "content.key"

typedef struct ar_content_key_t ar_content_key_t;

typedef enum {
    AR_CONTENT_KEY_FROM_ENV,       // ANYRAY_CONTENT_KEY
    AR_CONTENT_KEY_FROM_FILE,      // an existing <data dir>/content.key
    AR_CONTENT_KEY_FROM_GENERATED, // <data dir>/content.key, created by this call
} ar_content_key_source_t;

//  Parse text as 64 hex digits or base64 of 32 bytes into key. Returns 0, or -1 with a static,
//  value-free reason in *error (when error is not NULL); key is zeroed on failure.
int ar_content_key_parse (const char *text, uint8_t key[AR_CONTENT_KEY_LEN], const char **error);

//  Load the key from ANYRAY_CONTENT_KEY, else from (or into) <data_dir>/content.key.
//  NULL on failure with the reason in *error (names the variable or the file, never the key).
ar_content_key_t *ar_content_key_new (const char *data_dir, const char **error);
//  Wipes the key and frees the object.
void ar_content_key_destroy (ar_content_key_t **self_p);

//  The 32 key bytes; valid until destroy.
const uint8_t *ar_content_key_bytes (ar_content_key_t *self);
ar_content_key_source_t ar_content_key_source (ar_content_key_t *self);
//  What the caller should log at start (file-held key: where, and that a cluster must set
//  ANYRAY_CONTENT_KEY), or NULL when the key came from the variable.
const char *ar_content_key_warning (ar_content_key_t *self);

void ar_content_key_test (bool verbose);

#endif
