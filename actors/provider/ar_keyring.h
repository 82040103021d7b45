/*  ar_keyring: the server-held provider keys, in two layers.

    The environment's, read at start: ANYRAY_PROVIDER_KEY_<SLUG> (slug upper-cased, '-' as '_'),
    e.g. ANYRAY_PROVIDER_KEY_OPENAI. Over it, the runtime's (set by an admin, ar_provider_keys):
    a runtime key wins; clearing it brings the environment's back. Keys are secrets: this class
    never prints them, and wipes its copies when they are replaced or destroyed. A key with a
    control character in it is refused (it would break or inject an HTTP header).
*/
#ifndef AR_KEYRING_H
#define AR_KEYRING_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ar_keyring_t ar_keyring_t;

//  Read the environment's key of every slug in the NULL-terminated list (at most 16).
ar_keyring_t *ar_keyring_new (const char *const *slugs);
void ar_keyring_destroy (ar_keyring_t **self_p);

//  The key for slug (the runtime's, else the environment's), or NULL when none is configured.
//  Valid until the next ar_keyring_set_runtime of that slug: copy it to keep it.
const char *ar_keyring_get (ar_keyring_t *self, const char *slug);

//  Set slug's runtime key (copied), or clear it with NULL. Returns 0; -1 (runtime key cleared)
//  for a slug not in the list, a key with a control character, or no memory.
int ar_keyring_set_runtime (ar_keyring_t *self, const char *slug, const char *key);

//  Where slug's key comes from: "runtime", "env", or NULL when it has none.
const char *ar_keyring_source (ar_keyring_t *self, const char *slug);

//  The variable name for slug into buf. Returns 0, or -1 if it does not fit or the slug has a
//  character that cannot be part of a variable name.
int ar_keyring_env_name (const char *slug, char *buf, size_t size);

void ar_keyring_test (bool verbose);

#endif
