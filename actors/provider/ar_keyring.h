/*  ar_keyring: the server-held provider keys, read from the environment at start.

    ANYRAY_PROVIDER_KEY_<SLUG> (slug upper-cased, '-' as '_'), e.g. ANYRAY_PROVIDER_KEY_OPENAI.
    Keys are secrets: this class never prints them, and wipes its copies when destroyed. A key
    with a control character in it is refused (it would break or inject an HTTP header).
*/
#ifndef AR_KEYRING_H
#define AR_KEYRING_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ar_keyring_t ar_keyring_t;

//  Read the key of every slug in the NULL-terminated list.
ar_keyring_t *ar_keyring_new (const char *const *slugs);
void ar_keyring_destroy (ar_keyring_t **self_p);

//  The key for slug, or NULL when none is configured.
const char *ar_keyring_get (ar_keyring_t *self, const char *slug);

//  The variable name for slug into buf. Returns 0, or -1 if it does not fit or the slug has a
//  character that cannot be part of a variable name.
int ar_keyring_env_name (const char *slug, char *buf, size_t size);

void ar_keyring_test (bool verbose);

#endif
