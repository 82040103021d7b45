/*  ar_provider_keys: provider keys set at runtime (GET/PUT /admin/provider-keys), stored
    encrypted in the shared config store (kind "provider_keys") and read by every provider
    replica. A runtime key wins over ANYRAY_PROVIDER_KEY_<SLUG>; removing it falls back to the
    environment.

    Each stored version is a JSON object {"<slug>":{"sealed":"<base64 nonce|ciphertext|tag>",
    "fingerprint":"sha256:<8 hex>","set_ms":<unix ms>}} sealed with AES-256-GCM under the
    content key (ar_content_key: ANYRAY_CONTENT_KEY or <data dir>/content.key), the slug as
    associated data, so a sealed value cannot be moved to another provider. Plaintext keys live
    only in this object's memory (wiped on replace and destroy); they are never written, logged,
    returned or put in an audit row. The fingerprint is the first 8 hex digits of the key's
    SHA-256: enough to tell two keys apart, useless to recover one.

    Slugs: openai, anthropic, azure-openai, bedrock ("<access key id>:<secret>[:<session token>]",
    like ANYRAY_PROVIDER_KEY_BEDROCK), google-vertex-ai (a service account JSON, like
    ANYRAY_PROVIDER_KEY_GOOGLE_VERTEX_AI). One object per thread.
*/
#ifndef AR_PROVIDER_KEYS_H
#define AR_PROVIDER_KEYS_H

#include "ar_config_store.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_PROVIDER_KEYS_KIND "provider_keys"
#define AR_PROVIDER_KEY_MAX   16384 // bytes of one key (a service account JSON fits)

typedef struct ar_provider_keys_t ar_provider_keys_t;

//  The slugs that take a key, NULL-terminated.
const char *const *ar_provider_keys_slugs (void);

//  Open the store at db_path and the content key for data_dir, and load the newest version.
//  NULL on failure with a content-free reason in error.
ar_provider_keys_t *ar_provider_keys_new (const char *db_path, const char *data_dir, char *error,
                                          size_t error_size);
void ar_provider_keys_destroy (ar_provider_keys_t **self_p);

//  Take the newest stored version. 1: changed, 0: current, -1: unreadable (kept as it was).
int ar_provider_keys_poll (ar_provider_keys_t *self);
int64_t ar_provider_keys_version (ar_provider_keys_t *self);

//  The runtime key of slug (valid until the next poll, put or destroy), or NULL when none.
const char *ar_provider_keys_get (ar_provider_keys_t *self, const char *slug);

//  GET /admin/provider-keys: {"version":N,"providers":[{"provider":"openai",
//  "source":"runtime"|"env"|null,"fingerprint":"sha256:1a2b3c4d"|null,"updated_ms":N|null,
//  "env_var":"ANYRAY_PROVIDER_KEY_OPENAI","env_set":true}, ...]} (caller frees), after a poll.
//  Never a key.
char *ar_provider_keys_describe (ar_provider_keys_t *self);

//  PUT /admin/provider-keys: json is {"<slug>":"<key>"|null, ...} or {"keys":{...}} (null
//  removes the runtime key); slugs not named keep theirs. Stores the next version, written by
//  actor, with one content-free audit row per changed slug (action "provider_key.set" or
//  "provider_key.removed", target the slug, detail {"provider","fingerprint"}). Returns 0 with
//  the version in *version_out; 400 with error "<field path>: <why>" (e.g. "keys.nope: unknown
//  provider") and nothing stored; 500 when the store refused the write.
int ar_provider_keys_put (ar_provider_keys_t *self, const char *json, size_t len, const char *actor,
                          int64_t *version_out, char *error, size_t error_size);

ar_config_store_t *ar_provider_keys_store (ar_provider_keys_t *self);

void ar_provider_keys_test (bool verbose);

#endif
