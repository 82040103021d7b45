/*  ar_provider_keys: runtime provider keys, sealed in the config store (see the header).

    A put starts from the newest stored body, not from what this object decrypted: members it
    cannot open (another content key, a slug from a newer release) are carried over sealed as
    they are, so one replica's put never drops what another wrote. Only changed slugs are
    sealed again; an unchanged key keeps its box, its fingerprint and its set_ms.

    Plaintext keys are wiped wherever this file can reach them: its own slots, the strings of
    the parsed PUT document (jansson frees without wiping), and every temporary.
*/
#include "ar_provider_keys.h"
#include "ar_buf.h"
#include "ar_content_key.h"
#include "ar_secret_box.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define S_FINGERPRINT_MAX 24 // "sha256:" + 8 hex digits + NUL fits
#define S_ENV_NAME_MAX    64
#define S_NAME_SHOWN_MAX  64 // longest member name an error repeats

static const char *const s_slugs[] = {"openai",  "anthropic",        "azure-openai",
                                      "bedrock", "google-vertex-ai", NULL};
#define S_SLOTS (sizeof s_slugs / sizeof s_slugs[0] - 1)

typedef struct {
    char *key; // plaintext, NUL-terminated; NULL when no usable runtime key
    size_t len;
    char fingerprint[S_FINGERPRINT_MAX];
    int64_t set_ms;
} s_slot_t;

struct ar_provider_keys_t {
    ar_config_store_t *store;
    ar_content_key_t *content_key;
    int64_t version; // of the body the slots came from; 0 = none stored
    s_slot_t slots[S_SLOTS];
};

const char *const *ar_provider_keys_slugs (void)
{
    return s_slugs;
}

//  --------------------------------------------------------------------------
//  Small helpers

static void s_error (char *error, size_t size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
static void s_error (char *error, size_t size, const char *format, ...)
{
    if (!error || size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (error, size, format, args);
    va_end (args);
}

static int s_slot_index (const char *slug)
{
    for (size_t i = 0; i < S_SLOTS; i++)
        if (strcmp (s_slugs[i], slug) == 0)
            return (int)i;
    return -1;
}

static void s_slot_clear (s_slot_t *slot)
{
    if (slot->key) {
        OPENSSL_cleanse (slot->key, slot->len);
        free (slot->key);
    }
    memset (slot, 0, sizeof *slot);
}

//  "sha256:" and the first 8 hex digits of the SHA-256 of data: tells keys apart, reveals none.
static void s_fingerprint (const void *data, size_t len, char out[S_FINGERPRINT_MAX])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    out[0] = 0;
    if (EVP_Digest (data, len, digest, &digest_len, EVP_sha256 (), NULL) != 1 || digest_len < 4)
        return;
    char hex[9];
    ar_hex_encode (digest, 4, hex);
    snprintf (out, S_FINGERPRINT_MAX, "sha256:%s", hex);
    OPENSSL_cleanse (digest, sizeof digest);
}

static int64_t s_wall_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  jansson frees a string's bytes without wiping them: wipe every string value under json.
static void s_json_wipe (json_t *json)
{
    if (json_is_string (json)) {
        //  the storage is jansson's own heap copy; writing over it before the free is safe
        char *text = (char *)json_string_value (json);
        OPENSSL_cleanse (text, json_string_length (json));
    } else if (json_is_object (json)) {
        const char *name;
        json_t *value;
        json_object_foreach (json, name, value) s_json_wipe (value);
    } else if (json_is_array (json)) {
        size_t i;
        json_t *value;
        json_array_foreach (json, i, value) s_json_wipe (value);
    }
}

static void s_json_free_wiped (json_t **json_p)
{
    if (*json_p) {
        s_json_wipe (*json_p);
        json_decref (*json_p);
        *json_p = NULL;
    }
}

//  A member name as an error may repeat it: short, printable, no quotes; else a stand-in (a
//  key pasted where a name belongs must not come back in the error).
static const char *s_shown_name (const char *name)
{
    size_t len = strlen (name);
    if (len == 0)
        return "(empty name)";
    if (len > S_NAME_SHOWN_MAX)
        return "(long name)";
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (*c < 0x20 || *c >= 0x7f || *c == '"' || *c == '\\')
            return "(unprintable name)";
    return name;
}

//  --------------------------------------------------------------------------
//  The environment a runtime key overrides

static int s_env_name (const char *slug, char *out, size_t size)
{
    int n = snprintf (out, size, "ANYRAY_PROVIDER_KEY_%s", slug);
    if (n < 0 || (size_t)n >= size)
        return -1;
    for (char *c = out; *c; c++)
        *c = *c == '-' ? '_' : (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
    return 0;
}

static const char *s_env (const char *name)
{
    const char *value = getenv (name);
    return value && *value ? value : NULL;
}

//  The fingerprint of a file's content, or "" when it cannot be read.
static void s_file_fingerprint (const char *path, char out[S_FINGERPRINT_MAX])
{
    size_t len = 0;
    char *content = ar_buf_read_file (path, &len);
    out[0] = 0;
    if (content) {
        s_fingerprint (content, len, out);
        OPENSSL_cleanse (content, len);
        free (content);
    }
}

//  Whether the provider actor finds an environment key for slug, and its fingerprint ("" when
//  it is a file that cannot be read here).
static bool s_env_key (const char *slug, char fingerprint[S_FINGERPRINT_MAX])
{
    fingerprint[0] = 0;
    char name[S_ENV_NAME_MAX];
    if (s_env_name (slug, name, sizeof name) != 0)
        return false;
    const char *ours = s_env (name);
    bool google = strcmp (slug, "google-vertex-ai") == 0;
    if (ours) {
        //  Vertex: the JSON itself, or the path of a file that holds it
        if (google && *ours != '{')
            s_file_fingerprint (ours, fingerprint);
        else
            s_fingerprint (ours, strlen (ours), fingerprint);
        return true;
    }
    if (strcmp (slug, "bedrock") == 0) {
        const char *id = s_env ("AWS_ACCESS_KEY_ID"), *secret = s_env ("AWS_SECRET_ACCESS_KEY");
        if (!id || !secret)
            return false;
        size_t size = strlen (id) + strlen (secret) + 2;
        char *pair = malloc (size);
        if (pair) {
            snprintf (pair, size, "%s:%s", id, secret);
            s_fingerprint (pair, size - 1, fingerprint);
            OPENSSL_cleanse (pair, size);
            free (pair);
        }
        return true;
    }
    if (google) {
        const char *path = s_env ("GOOGLE_APPLICATION_CREDENTIALS");
        if (!path)
            return false;
        s_file_fingerprint (path, fingerprint);
        return true;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Loading a stored body into the slots

//  Open every known slug of body (a stored version's text). A member that does not open is
//  absent; nothing about it is logged. Returns 0, or -1 when body is not a JSON object (the
//  slots are then left as they were).
static int s_load (ar_provider_keys_t *self, const char *body, int64_t version)
{
    s_slot_t fresh[S_SLOTS];
    memset (fresh, 0, sizeof fresh);
    if (body && *body) {
        json_t *root = json_loads (body, 0, NULL);
        if (!json_is_object (root)) {
            json_decref (root);
            return -1;
        }
        const uint8_t *key = ar_content_key_bytes (self->content_key);
        for (size_t i = 0; i < S_SLOTS; i++) {
            json_t *entry = json_object_get (root, s_slugs[i]);
            const char *sealed = json_string_value (json_object_get (entry, "sealed"));
            size_t len = 0;
            char *plain = sealed ? ar_secret_box_open (key, s_slugs[i], sealed, &len) : NULL;
            if (!plain)
                continue;
            if (len == 0 || strlen (plain) != len) { // never stored by a put: not a key
                ar_secret_box_free (&plain, len);
                continue;
            }
            fresh[i].key = plain;
            fresh[i].len = len;
            s_fingerprint (plain, len, fresh[i].fingerprint);
            json_t *set_ms = json_object_get (entry, "set_ms");
            fresh[i].set_ms = json_is_integer (set_ms) ? json_integer_value (set_ms) : 0;
        }
        json_decref (root); // sealed text only: nothing to wipe
    }
    for (size_t i = 0; i < S_SLOTS; i++) {
        s_slot_clear (&self->slots[i]);
        self->slots[i] = fresh[i];
    }
    self->version = version;
    return 0;
}

//  --------------------------------------------------------------------------
//  Create, destroy, poll

ar_provider_keys_t *ar_provider_keys_new (const char *db_path, const char *data_dir, char *error,
                                          size_t error_size)
{
    s_error (error, error_size, "%s", "");
    ar_provider_keys_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_error (error, error_size, "out of memory");
        return NULL;
    }
    const char *why = NULL;
    self->store = db_path ? ar_config_store_open (db_path, &why) : NULL;
    if (!self->store) {
        s_error (error, error_size, "config store %s: %s", db_path ? db_path : "(none)",
                 why ? why : "cannot open");
        ar_provider_keys_destroy (&self);
        return NULL;
    }
    self->content_key = ar_content_key_new (data_dir, &why);
    if (!self->content_key) {
        s_error (error, error_size, "content key: %s", why ? why : "unavailable");
        ar_provider_keys_destroy (&self);
        return NULL;
    }
    //  A version that does not parse is a hand edit: start without runtime keys, not at all
    if (ar_provider_keys_poll (self) < 0 &&
        ar_config_store_version (self->store, AR_PROVIDER_KEYS_KIND) < 0) {
        s_error (error, error_size, "config store %s: %s", db_path,
                 ar_config_store_error (self->store));
        ar_provider_keys_destroy (&self);
        return NULL;
    }
    return self;
}

void ar_provider_keys_destroy (ar_provider_keys_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_provider_keys_t *self = *self_p;
    for (size_t i = 0; i < S_SLOTS; i++)
        s_slot_clear (&self->slots[i]);
    ar_content_key_destroy (&self->content_key);
    ar_config_store_destroy (&self->store);
    free (self);
    *self_p = NULL;
}

int ar_provider_keys_poll (ar_provider_keys_t *self)
{
    assert (self);
    int64_t version = ar_config_store_version (self->store, AR_PROVIDER_KEYS_KIND);
    if (version < 0)
        return -1;
    if (version == self->version)
        return 0;
    int64_t latest = 0;
    char *body = ar_config_store_latest (self->store, AR_PROVIDER_KEYS_KIND, &latest);
    if (latest < 0)
        return -1;
    int rc = s_load (self, body, latest);
    free (body);
    if (rc != 0) {
        //  Only puts that validated reach the store: this is a hand edit of the database.
        //  Remember the version so the same text is not parsed on every poll.
        self->version = latest;
        return -1;
    }
    return 1;
}

int64_t ar_provider_keys_version (ar_provider_keys_t *self)
{
    assert (self);
    return self->version;
}

const char *ar_provider_keys_get (ar_provider_keys_t *self, const char *slug)
{
    assert (self);
    int index = slug ? s_slot_index (slug) : -1;
    return index < 0 ? NULL : self->slots[index].key;
}

ar_config_store_t *ar_provider_keys_store (ar_provider_keys_t *self)
{
    assert (self);
    return self->store;
}

//  --------------------------------------------------------------------------
//  Describe: where each provider's key comes from, never the key.

char *ar_provider_keys_describe (ar_provider_keys_t *self)
{
    assert (self);
    ar_provider_keys_poll (self); // a store that cannot be read: describe what we hold
    json_t *providers = json_array ();
    json_t *root =
        json_pack ("{sIso}", "version", (json_int_t)self->version, "providers", providers);
    if (!root)
        return NULL;
    for (size_t i = 0; i < S_SLOTS; i++) {
        const s_slot_t *slot = &self->slots[i];
        char env_name[S_ENV_NAME_MAX] = "";
        char env_fingerprint[S_FINGERPRINT_MAX];
        s_env_name (s_slugs[i], env_name, sizeof env_name);
        bool env_set = s_env_key (s_slugs[i], env_fingerprint);
        const char *source = slot->key ? "runtime" : env_set ? "env" : NULL;
        const char *fingerprint = slot->key ? slot->fingerprint : env_set ? env_fingerprint : "";
        json_t *entry =
            json_pack ("{ss so so so ss sb}", "provider", s_slugs[i], "source",
                       source ? json_string (source) : json_null (), "fingerprint",
                       *fingerprint ? json_string (fingerprint) : json_null (), "updated_ms",
                       slot->key && slot->set_ms > 0 ? json_integer (slot->set_ms) : json_null (),
                       "env_var", env_name, "env_set", env_set);
        if (!entry || json_array_append_new (providers, entry) != 0) {
            json_decref (root);
            return NULL;
        }
    }
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    return text;
}

//  --------------------------------------------------------------------------
//  Put: validate, merge into the newest stored body, store, audit.

typedef struct {
    int slot;          // index into s_slugs
    const char *value; // the new key (inside the parsed document), NULL = remove
    size_t len;
} s_change_t;

//  Whether text may contain these control characters: none, except that a service account
//  JSON is allowed its line breaks and tabs.
static bool s_controls_ok (const char *text, size_t len, bool json_whitespace)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == 0x7f || (c < 0x20 && !(json_whitespace && (c == '\n' || c == '\r' || c == '\t'))))
            return false;
    }
    return true;
}

static bool s_member_is_text (json_t *object, const char *name)
{
    const char *value = json_string_value (json_object_get (object, name));
    return value && *value;
}

//  Check one value; 0, or -1 with "<path>: <why>" in error (never the value).
static int s_check_value (int slot, const char *path, json_t *value, s_change_t *change,
                          char *error, size_t error_size)
{
    const char *slug = s_slugs[slot];
    change->slot = slot;
    change->value = NULL;
    change->len = 0;
    if (json_is_null (value))
        return 0;
    if (!json_is_string (value)) {
        s_error (error, error_size, "%s: must be a string (the key) or null (remove it)", path);
        return -1;
    }
    const char *text = json_string_value (value);
    size_t len = json_string_length (value);
    bool google = strcmp (slug, "google-vertex-ai") == 0;
    if (len == 0) {
        s_error (error, error_size, "%s: must not be empty (null removes the key)", path);
        return -1;
    }
    if (len > AR_PROVIDER_KEY_MAX) {
        s_error (error, error_size, "%s: longer than %d bytes", path, AR_PROVIDER_KEY_MAX);
        return -1;
    }
    //  jansson has checked the UTF-8 already and refuses NUL unless asked to allow it
    if (strlen (text) != len || !s_controls_ok (text, len, google)) {
        s_error (error, error_size, "%s: must not contain control characters%s", path,
                 google ? " outside the JSON's whitespace" : "");
        return -1;
    }
    if (strcmp (slug, "bedrock") == 0) {
        const char *colon = strchr (text, ':');
        const char *second = colon ? strchr (colon + 1, ':') : NULL;
        if (!colon || colon == text || colon[1] == 0 || second == colon + 1 ||
            (second && second[1] == 0)) {
            s_error (error, error_size,
                     "%s: must be <access key id>:<secret access key>[:<session token>], no part "
                     "empty",
                     path);
            return -1;
        }
    }
    if (google) {
        json_t *account = json_loadb (text, len, JSON_REJECT_DUPLICATES, NULL);
        bool ok = json_is_object (account) && s_member_is_text (account, "client_email") &&
                  s_member_is_text (account, "private_key");
        s_json_free_wiped (&account);
        if (!ok) {
            s_error (error, error_size,
                     "%s: must be a service account key file's JSON object, with client_email "
                     "and private_key",
                     path);
            return -1;
        }
    }
    change->value = text;
    change->len = len;
    return 0;
}

//  Parse and check the whole document into changes (one per slug named). Returns the number of
//  changes, or -1 with error set. *root_out holds the document (values point into it).
static int s_parse_put (const char *json, size_t len, json_t **root_out, s_change_t *changes,
                        char *error, size_t error_size)
{
    *root_out = NULL;
    json_error_t parse_error;
    json_t *root = json ? json_loadb (json, len, JSON_REJECT_DUPLICATES, &parse_error) : NULL;
    if (!root) {
        //  jansson's text quotes the input near the error: give the position only
        if (json)
            s_error (error, error_size,
                     "(document): not valid JSON (line %d, column %d; duplicate names and "
                     "invalid UTF-8 are refused too)",
                     parse_error.line, parse_error.column);
        else
            s_error (error, error_size, "(document): empty");
        return -1;
    }
    *root_out = root;
    if (!json_is_object (root)) {
        s_error (error, error_size,
                 "(document): must be a JSON object of provider keys, {\"<provider>\": \"<key>\" "
                 "| null} or {\"keys\": {...}}");
        return -1;
    }
    json_t *map = root;
    const char *prefix = "";
    json_t *wrapped = json_object_get (root, "keys");
    if (wrapped) {
        const char *name;
        json_t *value;
        json_object_foreach (root, name, value)
        {
            if (strcmp (name, "keys") != 0) {
                s_error (error, error_size,
                         "%s: unknown member (with \"keys\", name every provider inside it)",
                         s_shown_name (name));
                return -1;
            }
        }
        if (!json_is_object (wrapped)) {
            s_error (error, error_size, "keys: must be an object of provider keys");
            return -1;
        }
        map = wrapped;
        prefix = "keys.";
    }
    int count = 0;
    const char *name;
    json_t *value;
    json_object_foreach (map, name, value)
    {
        char path[S_NAME_SHOWN_MAX + 32];
        snprintf (path, sizeof path, "%s%s", prefix, s_shown_name (name));
        int slot = s_slot_index (name);
        if (slot < 0) {
            s_error (error, error_size,
                     "%s: unknown provider (one of openai, anthropic, "
                     "azure-openai, bedrock, google-vertex-ai)",
                     path);
            return -1;
        }
        if (s_check_value (slot, path, value, &changes[count], error, error_size) != 0)
            return -1;
        count++; // duplicates are refused by the parser: at most one change per slot
    }
    return count;
}

static bool s_same_key (const s_slot_t *slot, const char *value, size_t len)
{
    return slot->key && slot->len == len && CRYPTO_memcmp (slot->key, value, len) == 0;
}

//  Apply changes to body (the newest stored version, an object); fill the audit rows to write.
//  Returns the number of slugs changed, or -1 when a seal failed.
typedef struct {
    int slot;
    bool removed;
    char fingerprint[S_FINGERPRINT_MAX];
} s_audit_t;

static int s_apply (ar_provider_keys_t *self, json_t *body, const s_change_t *changes, int count,
                    s_audit_t *audits)
{
    int changed = 0;
    int64_t now = s_wall_ms ();
    for (int i = 0; i < count; i++) {
        const char *slug = s_slugs[changes[i].slot];
        const s_slot_t *slot = &self->slots[changes[i].slot];
        json_t *stored = json_object_get (body, slug);
        s_audit_t *audit = &audits[changed];
        audit->slot = changes[i].slot;
        if (!changes[i].value) {
            if (!stored)
                continue; // nothing to remove
            //  the removed key's fingerprint: ours, or the stored one when we cannot open it
            const char *old = json_string_value (json_object_get (stored, "fingerprint"));
            snprintf (audit->fingerprint, sizeof audit->fingerprint, "%s",
                      slot->key ? slot->fingerprint
                      : old     ? old
                                : "");
            audit->removed = true;
            json_object_del (body, slug);
            changed++;
            continue;
        }
        if (stored && s_same_key (slot, changes[i].value, changes[i].len))
            continue;
        char *sealed = ar_secret_box_seal (ar_content_key_bytes (self->content_key), slug,
                                           changes[i].value, changes[i].len);
        if (!sealed)
            return -1;
        s_fingerprint (changes[i].value, changes[i].len, audit->fingerprint);
        audit->removed = false;
        json_t *entry = json_pack ("{ss ss sI}", "sealed", sealed, "fingerprint",
                                   audit->fingerprint, "set_ms", (json_int_t)now);
        free (sealed);
        if (!entry || json_object_set_new (body, slug, entry) != 0)
            return -1;
        changed++;
    }
    return changed;
}

//  The next body: the newest stored one (the base) with changes applied, in *text_out, with
//  the slugs it changes in audits. The slots are brought to the base first, to tell what
//  changes. Returns 0 (*changed may be 0: nothing to write), or 500 with error set.
//
//  Between reading the base and storing the result another replica may store a version; the
//  caller checks the version just before its put and merges again if it moved. That leaves a
//  window of one statement: two admins changing different slugs within it can lose one change
//  (both are still in the audit log). Closing it needs a compare-and-set put in the store.
static int s_merge (ar_provider_keys_t *self, const s_change_t *changes, int count,
                    s_audit_t *audits, int *changed, int64_t *base_out, char **text_out,
                    char *error, size_t error_size)
{
    *changed = 0;
    *text_out = NULL;
    int64_t base = 0;
    char *text = ar_config_store_latest (self->store, AR_PROVIDER_KEYS_KIND, &base);
    *base_out = base;
    if (base < 0) {
        s_error (error, error_size, "the config store cannot be read: %s",
                 ar_config_store_error (self->store));
        return 500;
    }
    json_t *body = text ? json_loads (text, 0, NULL) : NULL;
    if (base != self->version)
        s_load (self, text, base);
    free (text);
    if (!json_is_object (body)) { // none yet, or a hand-edited version: start afresh
        json_decref (body);
        body = json_object ();
    }
    int rc = body ? s_apply (self, body, changes, count, audits) : -1;
    if (rc > 0) {
        *text_out = json_dumps (body, JSON_COMPACT | JSON_SORT_KEYS);
        if (!*text_out)
            rc = -1;
    }
    json_decref (body);
    if (rc < 0) {
        s_error (error, error_size, "cannot seal the key (out of memory or no randomness)");
        return 500;
    }
    *changed = rc;
    return 0;
}

int ar_provider_keys_put (ar_provider_keys_t *self, const char *json, size_t len, const char *actor,
                          int64_t *version_out, char *error, size_t error_size)
{
    assert (self);
    s_error (error, error_size, "%s", "");
    if (version_out)
        *version_out = self->version;
    json_t *document = NULL;
    s_change_t changes[S_SLOTS];
    int count = s_parse_put (json, len, &document, changes, error, error_size);
    if (count < 0) {
        s_json_free_wiped (&document);
        return 400;
    }
    s_audit_t audits[S_SLOTS];
    int changed = 0;
    char *text = NULL;
    int64_t version = 0;
    //  Retried when another writer got in between (see s_merge): put has no compare-and-set.
    for (int attempt = 0; attempt < 3; attempt++) {
        int64_t base = 0;
        int rc = s_merge (self, changes, count, audits, &changed, &base, &text, error, error_size);
        if (rc != 0 || changed == 0) {
            s_json_free_wiped (&document);
            if (rc == 0 && version_out)
                *version_out = self->version; // nothing changed: nothing written
            return rc;
        }
        if (ar_config_store_version (self->store, AR_PROVIDER_KEYS_KIND) == base || attempt == 2)
            break;
        free (text);
        text = NULL;
    }
    s_json_free_wiped (&document);
    if (ar_config_store_put (self->store, AR_PROVIDER_KEYS_KIND, text, actor, &version) != 0) {
        s_error (error, error_size, "the config store refused the write: %s",
                 ar_config_store_error (self->store));
        free (text);
        return 500;
    }
    for (int i = 0; i < changed; i++) {
        char detail[128];
        snprintf (detail, sizeof detail, "{\"provider\":\"%s\",\"fingerprint\":%s%s%s}",
                  s_slugs[audits[i].slot], *audits[i].fingerprint ? "\"" : "",
                  *audits[i].fingerprint ? audits[i].fingerprint : "null",
                  *audits[i].fingerprint ? "\"" : "");
        //  The version is stored already: a refused audit row cannot undo it (the put's own
        //  "config.put" row, written with the version, still records the change).
        ar_config_store_audit (self->store, actor,
                               audits[i].removed ? "provider_key.removed" : "provider_key.set",
                               s_slugs[audits[i].slot], detail);
    }
    s_load (self, text, version);
    free (text);
    if (version_out)
        *version_out = version;
    return 0;
}

//  --------------------------------------------------------------------------
//  Self-test

#include <limits.h>
#include <unistd.h>

#define S_OPENAI_KEY  "sk-runtime-SECRET-openai-1111"
#define S_OPENAI_KEY2 "sk-runtime-SECRET-openai-2222"
#define S_ANTHRO_KEY  "sk-ant-SECRET-runtime-3333"
#define S_ENV_KEY     "sk-env-SECRET-openai-4444"
#define S_AWS_KEY     "AKIDSECRET5555:aws-secret-SECRET-5555:session-SECRET-5555"
#define S_GOOGLE_KEY                                                                               \
    "{\"type\":\"service_account\",\"client_email\":\"svc@p.iam.gserviceaccount.com\","            \
    "\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nMIIsecretGOOGLE6666\\n-----END PRIVATE "      \
    "KEY-----\\n\"}"

static const char *const s_test_env[] = {"ANYRAY_PROVIDER_KEY_OPENAI",
                                         "ANYRAY_PROVIDER_KEY_ANTHROPIC",
                                         "ANYRAY_PROVIDER_KEY_AZURE_OPENAI",
                                         "ANYRAY_PROVIDER_KEY_BEDROCK",
                                         "ANYRAY_PROVIDER_KEY_GOOGLE_VERTEX_AI",
                                         "AWS_ACCESS_KEY_ID",
                                         "AWS_SECRET_ACCESS_KEY",
                                         "GOOGLE_APPLICATION_CREDENTIALS",
                                         "ANYRAY_CONTENT_KEY",
                                         NULL};

static bool s_test_file_has (const char *path, const char *needle, size_t needle_len)
{
    size_t size = 0;
    char *data = ar_buf_read_file (path, &size);
    bool found = data && memmem (data, size, needle, needle_len) != NULL;
    free (data);
    return found;
}

//  Whether any of the sqlite files holds needle's bytes.
static bool s_test_db_has (const char *db, const char *needle)
{
    char path[PATH_MAX];
    bool found = s_test_file_has (db, needle, strlen (needle));
    snprintf (path, sizeof path, "%s-wal", db);
    found = found || s_test_file_has (path, needle, strlen (needle));
    snprintf (path, sizeof path, "%s-journal", db);
    return found || s_test_file_has (path, needle, strlen (needle));
}

static int s_test_put (ar_provider_keys_t *self, const char *json, int64_t *version, char *error,
                       size_t error_size)
{
    return ar_provider_keys_put (self, json, strlen (json), "admin-token-1", version, error,
                                 error_size);
}

//  A put that must fail with status 400 and path in the error, never holding secret.
static void s_test_refused (ar_provider_keys_t *self, const char *json, size_t len,
                            const char *path, const char *secret)
{
    char error[512] = "";
    int64_t before = ar_provider_keys_version (self);
    char *audit_before = ar_config_store_audit_list (ar_provider_keys_store (self), 0, 1000);
    int64_t version = -7;
    int rc = ar_provider_keys_put (self, json, len, "admin", &version, error, sizeof error);
    if (rc != 400 || strncmp (error, path, strlen (path)) != 0 || error[strlen (path)] != ':') {
        fprintf (stderr, "ar_provider_keys: want 400 '%s: ...', got %d '%s'\n", path, rc, error);
        assert (false);
    }
    assert (!secret || !strstr (error, secret));
    assert (ar_config_store_version (ar_provider_keys_store (self), AR_PROVIDER_KEYS_KIND) ==
            before);
    char *audit_after = ar_config_store_audit_list (ar_provider_keys_store (self), 0, 1000);
    assert (audit_before && audit_after && strcmp (audit_before, audit_after) == 0);
    free (audit_before);
    free (audit_after);
}

static void s_test_refused_text (ar_provider_keys_t *self, const char *json, const char *path,
                                 const char *secret)
{
    s_test_refused (self, json, strlen (json), path, secret);
}

//  The describe entry of slug, as a new JSON object (caller decrefs).
static json_t *s_test_entry (ar_provider_keys_t *self, const char *slug)
{
    char *text = ar_provider_keys_describe (self);
    assert (text);
    for (const char *const *secret = (const char *const[]){S_OPENAI_KEY, S_OPENAI_KEY2,
                                                           S_ANTHRO_KEY, S_ENV_KEY, "SECRET", NULL};
         *secret; secret++)
        assert (!strstr (text, *secret));
    json_t *root = json_loads (text, 0, NULL);
    free (text);
    assert (root && json_is_integer (json_object_get (root, "version")));
    json_t *found = NULL;
    size_t i;
    json_t *entry;
    json_array_foreach (json_object_get (root, "providers"), i,
                        entry) if (strcmp (json_string_value (json_object_get (entry, "provider")),
                                           slug) == 0) found = json_incref (entry);
    assert (json_array_size (json_object_get (root, "providers")) == S_SLOTS);
    json_decref (root);
    assert (found);
    return found;
}

static const char *s_test_member (json_t *entry, const char *name)
{
    return json_string_value (json_object_get (entry, name)); // NULL for null
}

static void s_test_fingerprint_of (const char *text, char out[S_FINGERPRINT_MAX])
{
    s_fingerprint (text, strlen (text), out);
}

void ar_provider_keys_test (bool verbose)
{
    //  @selftest
    char *saved[16] = {0};
    for (size_t i = 0; s_test_env[i]; i++) {
        const char *value = getenv (s_test_env[i]);
        saved[i] = value ? strdup (value) : NULL;
        unsetenv (s_test_env[i]);
    }
    char dir[] = "/tmp/ar_provider_keys_test.XXXXXX";
    assert (mkdtemp (dir));
    char db[PATH_MAX], error[512];
    snprintf (db, sizeof db, "%s/anyray.db", dir);
    int64_t version = 0;

    //  Slugs.
    const char *const *slugs = ar_provider_keys_slugs ();
    size_t slug_count = 0;
    while (slugs[slug_count])
        slug_count++;
    assert (slug_count == S_SLOTS && strcmp (slugs[3], "bedrock") == 0);

    //  Two handles on one db (two replicas); nothing stored yet.
    ar_provider_keys_t *a = ar_provider_keys_new (db, dir, error, sizeof error);
    assert (a);
    ar_provider_keys_t *b = ar_provider_keys_new (db, dir, error, sizeof error);
    assert (b);
    assert (ar_provider_keys_version (a) == 0 && ar_provider_keys_get (a, "openai") == NULL);
    assert (ar_provider_keys_poll (b) == 0);
    assert (ar_provider_keys_get (a, NULL) == NULL && ar_provider_keys_get (a, "nope") == NULL);

    //  A put through one handle: the other sees it on its next poll.
    assert (s_test_put (a, "{\"openai\":\"" S_OPENAI_KEY "\"}", &version, error, sizeof error) ==
            0);
    assert (version == 1 && ar_provider_keys_version (a) == 1);
    assert (strcmp (ar_provider_keys_get (a, "openai"), S_OPENAI_KEY) == 0);
    assert (ar_provider_keys_get (b, "openai") == NULL);
    assert (ar_provider_keys_poll (b) == 1 && ar_provider_keys_version (b) == 1);
    assert (strcmp (ar_provider_keys_get (b, "openai"), S_OPENAI_KEY) == 0);
    assert (ar_provider_keys_poll (b) == 0);

    //  Describe: runtime wins over the environment; env keys are seen, with fingerprints.
    setenv ("ANYRAY_PROVIDER_KEY_OPENAI", S_ENV_KEY, 1);
    setenv ("ANYRAY_PROVIDER_KEY_ANTHROPIC", S_ENV_KEY, 1);
    char want[S_FINGERPRINT_MAX], env_want[S_FINGERPRINT_MAX];
    s_test_fingerprint_of (S_OPENAI_KEY, want);
    s_test_fingerprint_of (S_ENV_KEY, env_want);
    assert (strlen (want) == 15 && strncmp (want, "sha256:", 7) == 0);
    json_t *entry = s_test_entry (b, "openai");
    assert (strcmp (s_test_member (entry, "source"), "runtime") == 0);
    assert (strcmp (s_test_member (entry, "fingerprint"), want) == 0);
    assert (strcmp (s_test_member (entry, "env_var"), "ANYRAY_PROVIDER_KEY_OPENAI") == 0);
    assert (json_is_true (json_object_get (entry, "env_set")));
    int64_t updated = json_integer_value (json_object_get (entry, "updated_ms"));
    assert (updated > 1600000000000 && updated <= s_wall_ms ());
    json_decref (entry);
    entry = s_test_entry (b, "anthropic");
    assert (strcmp (s_test_member (entry, "source"), "env") == 0);
    assert (strcmp (s_test_member (entry, "fingerprint"), env_want) == 0);
    assert (json_is_null (json_object_get (entry, "updated_ms")));
    json_decref (entry);
    entry = s_test_entry (b, "azure-openai");
    assert (json_is_null (json_object_get (entry, "source")));
    assert (json_is_null (json_object_get (entry, "fingerprint")));
    assert (json_is_false (json_object_get (entry, "env_set")));
    assert (strcmp (s_test_member (entry, "env_var"), "ANYRAY_PROVIDER_KEY_AZURE_OPENAI") == 0);
    json_decref (entry);
    //  Bedrock from AWS's own variables (fingerprint of "id:secret"); Vertex from a credentials
    //  file (of its content when readable, else null).
    setenv ("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv ("AWS_SECRET_ACCESS_KEY", "envSECRET", 1);
    entry = s_test_entry (b, "bedrock");
    s_test_fingerprint_of ("AKIDENV:envSECRET", want);
    assert (strcmp (s_test_member (entry, "source"), "env") == 0);
    assert (strcmp (s_test_member (entry, "fingerprint"), want) == 0);
    json_decref (entry);
    char credentials[PATH_MAX];
    snprintf (credentials, sizeof credentials, "%s/sa.json", dir);
    FILE *file = fopen (credentials, "w");
    assert (file);
    fputs (S_GOOGLE_KEY, file);
    fclose (file);
    setenv ("GOOGLE_APPLICATION_CREDENTIALS", credentials, 1);
    entry = s_test_entry (b, "google-vertex-ai");
    s_test_fingerprint_of (S_GOOGLE_KEY, want);
    assert (strcmp (s_test_member (entry, "source"), "env") == 0);
    assert (strcmp (s_test_member (entry, "fingerprint"), want) == 0);
    json_decref (entry);
    setenv ("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/sa.json", 1);
    entry = s_test_entry (b, "google-vertex-ai");
    assert (strcmp (s_test_member (entry, "source"), "env") == 0);
    assert (json_is_null (json_object_get (entry, "fingerprint")));
    json_decref (entry);
    unsetenv ("GOOGLE_APPLICATION_CREDENTIALS");
    unsetenv ("AWS_ACCESS_KEY_ID");
    unsetenv ("AWS_SECRET_ACCESS_KEY");

    //  The wrapped form; bedrock and a Vertex service account (its JSON may hold newlines).
    const char *wrapped = "{\"keys\":{\"anthropic\":\"" S_ANTHRO_KEY "\",\"bedrock\":\"" S_AWS_KEY
                          "\",\"google-vertex-ai\":\"{\\n  \\\"client_email\\\": \\\"a@b.c\\\",\\n"
                          "  \\\"private_key\\\": \\\"pem-SECRET\\\"\\n}\"}}";
    assert (s_test_put (b, wrapped, &version, error, sizeof error) == 0 && version == 2);
    assert (strcmp (ar_provider_keys_get (b, "bedrock"), S_AWS_KEY) == 0);
    assert (strstr (ar_provider_keys_get (b, "google-vertex-ai"), "\n  \"client_email\""));
    assert (ar_provider_keys_poll (a) == 1);
    assert (strcmp (ar_provider_keys_get (a, "anthropic"), S_ANTHRO_KEY) == 0);
    assert (strcmp (ar_provider_keys_get (a, "openai"), S_OPENAI_KEY) == 0); // kept
    char *audit = ar_config_store_audit_list (ar_provider_keys_store (a), 0, 1000);
    json_t *rows = json_loads (audit, 0, NULL);
    size_t audit_rows = json_array_size (rows);
    json_decref (rows);
    free (audit);

    //  Putting the same key again changes nothing: no version, no audit row.
    assert (s_test_put (a, "{\"openai\":\"" S_OPENAI_KEY "\",\"azure-openai\":null}", &version,
                        error, sizeof error) == 0);
    assert (version == 2 && ar_provider_keys_version (a) == 2);
    audit = ar_config_store_audit_list (ar_provider_keys_store (a), 0, 1000);
    rows = json_loads (audit, 0, NULL);
    assert (json_array_size (rows) == audit_rows);
    json_decref (rows);
    free (audit);
    assert (s_test_put (a, "{}", &version, error, sizeof error) == 0 && version == 2);
    assert (s_test_put (a, "{\"keys\":{}}", &version, error, sizeof error) == 0 && version == 2);

    //  Replace one key; remove another: the environment's key is what shows then.
    assert (s_test_put (a, "{\"openai\":\"" S_OPENAI_KEY2 "\"}", &version, error, sizeof error) ==
            0);
    assert (version == 3 && strcmp (ar_provider_keys_get (a, "openai"), S_OPENAI_KEY2) == 0);
    assert (s_test_put (a, "{\"keys\":{\"openai\":null}}", &version, error, sizeof error) == 0);
    assert (version == 4 && ar_provider_keys_get (a, "openai") == NULL);
    assert (ar_provider_keys_poll (b) == 1 && ar_provider_keys_get (b, "openai") == NULL);
    assert (strcmp (ar_provider_keys_get (b, "anthropic"), S_ANTHRO_KEY) == 0);
    entry = s_test_entry (b, "openai");
    assert (strcmp (s_test_member (entry, "source"), "env") == 0);
    assert (strcmp (s_test_member (entry, "fingerprint"), env_want) == 0);
    json_decref (entry);
    unsetenv ("ANYRAY_PROVIDER_KEY_OPENAI");
    unsetenv ("ANYRAY_PROVIDER_KEY_ANTHROPIC");

    //  The audit log: one row per changed slug, by slug and fingerprint, never a key.
    audit = ar_config_store_audit_list (ar_provider_keys_store (a), 0, 1000);
    assert (audit);
    for (const char *secret = "SECRET"; secret; secret = NULL)
        assert (!strstr (audit, secret));
    rows = json_loads (audit, 0, NULL);
    int sets = 0, removals = 0;
    size_t i;
    json_t *row;
    char old_fingerprint[S_FINGERPRINT_MAX];
    s_test_fingerprint_of (S_OPENAI_KEY2, old_fingerprint);
    json_array_foreach (rows, i, row)
    {
        const char *action = json_string_value (json_object_get (row, "action"));
        json_t *detail = json_object_get (row, "detail");
        if (strcmp (action, "provider_key.set") == 0) {
            sets++;
            assert (strcmp (json_string_value (json_object_get (row, "actor")), "admin-token-1") ==
                    0);
            assert (strcmp (json_string_value (json_object_get (row, "target")),
                            json_string_value (json_object_get (detail, "provider"))) == 0);
            assert (strncmp (json_string_value (json_object_get (detail, "fingerprint")),
                             "sha256:", 7) == 0);
        } else if (strcmp (action, "provider_key.removed") == 0) {
            removals++;
            assert (strcmp (json_string_value (json_object_get (row, "target")), "openai") == 0);
            assert (strcmp (json_string_value (json_object_get (detail, "fingerprint")),
                            old_fingerprint) == 0);
        }
    }
    assert (sets == 5 && removals == 1); // openai, anthropic, bedrock, vertex, openai again
    json_decref (rows);
    free (audit);

    //  The sqlite files hold no key bytes (sealed only).
    const char *secrets[] = {
        S_OPENAI_KEY, S_OPENAI_KEY2, S_ANTHRO_KEY, "AKIDSECRET5555", "aws-secret-SECRET-5555",
        "pem-SECRET", NULL};
    for (size_t s = 0; secrets[s]; s++)
        assert (!s_test_db_has (db, secrets[s]));

    //  Bad inputs: refused with the field path, nothing stored, the value never echoed.
    s_test_refused_text (a, "not json " S_OPENAI_KEY, "(document)", S_OPENAI_KEY);
    s_test_refused_text (a, "{\"openai\":\"" S_OPENAI_KEY "\"", "(document)", S_OPENAI_KEY);
    s_test_refused_text (a, "[\"" S_OPENAI_KEY "\"]", "(document)", S_OPENAI_KEY);
    s_test_refused_text (a, "\"" S_OPENAI_KEY "\"", "(document)", S_OPENAI_KEY);
    s_test_refused_text (a, "", "(document)", NULL);
    s_test_refused (a, NULL, 0, "(document)", NULL);
    s_test_refused_text (a, "{\"openai\":\"a\",\"openai\":\"" S_OPENAI_KEY "\"}", "(document)",
                         S_OPENAI_KEY);
    s_test_refused_text (a, "{\"openai\":\"\xff\xfe" S_OPENAI_KEY "\"}", "(document)",
                         S_OPENAI_KEY);
    s_test_refused (a, "{\"openai\":\"sk\0x\"}", sizeof "{\"openai\":\"sk\0x\"}" - 1, "(document)",
                    NULL);
    s_test_refused_text (a, "{\"openai\":\"sk-\\u0000-" S_OPENAI_KEY "\"}", "(document)",
                         S_OPENAI_KEY);
    s_test_refused_text (a, "{\"nope\":\"" S_OPENAI_KEY "\"}", "nope", S_OPENAI_KEY);
    s_test_refused_text (a, "{\"keys\":{\"nope\":\"" S_OPENAI_KEY "\"}}", "keys.nope",
                         S_OPENAI_KEY);
    s_test_refused_text (a, "{\"" S_OPENAI_KEY "-and-more-to-pass-sixty-four-bytes-0123456789\":1}",
                         "(long name)", S_OPENAI_KEY);
    s_test_refused_text (a, "{\"keys\":\"" S_OPENAI_KEY "\"}", "keys", S_OPENAI_KEY);
    s_test_refused_text (a, "{\"keys\":{},\"openai\":\"" S_OPENAI_KEY "\"}", "openai",
                         S_OPENAI_KEY);
    s_test_refused_text (a, "{\"openai\":\"\"}", "openai", NULL);
    s_test_refused_text (a, "{\"keys\":{\"openai\":42}}", "keys.openai", NULL);
    s_test_refused_text (a, "{\"openai\":{\"key\":\"" S_OPENAI_KEY "\"}}", "openai", S_OPENAI_KEY);
    s_test_refused_text (a, "{\"openai\":true}", "openai", NULL);
    s_test_refused_text (a, "{\"openai\":\"sk-SECRET\\r\\nX-Injected: 1\"}", "openai", "SECRET");
    s_test_refused_text (a, "{\"keys\":{\"anthropic\":\"sk-SECRET\\t\"}}", "keys.anthropic",
                         "SECRET");
    s_test_refused_text (a, "{\"openai\":\"sk-SECRET\\u007f\"}", "openai", "SECRET");
    s_test_refused_text (a, "{\"openai\":\"ok\",\"anthropic\":\"\"}", "anthropic", NULL);
    s_test_refused_text (a, "{\"bedrock\":\"AKIDSECRET-no-colon\"}", "bedrock", "SECRET");
    s_test_refused_text (a, "{\"bedrock\":\":aws-SECRET\"}", "bedrock", "SECRET");
    s_test_refused_text (a, "{\"bedrock\":\"AKIDSECRET:\"}", "bedrock", "SECRET");
    s_test_refused_text (a, "{\"bedrock\":\"AKIDSECRET::token\"}", "bedrock", "SECRET");
    s_test_refused_text (a, "{\"keys\":{\"bedrock\":\"AKID:aws-SECRET:\"}}", "keys.bedrock",
                         "SECRET");
    s_test_refused_text (a, "{\"google-vertex-ai\":\"not json SECRET\"}", "google-vertex-ai",
                         "SECRET");
    s_test_refused_text (a, "{\"google-vertex-ai\":\"[\\\"SECRET\\\"]\"}", "google-vertex-ai",
                         "SECRET");
    s_test_refused_text (a, "{\"google-vertex-ai\":\"{\\\"client_email\\\":\\\"a@b\\\"}\"}",
                         "google-vertex-ai", NULL);
    s_test_refused_text (a,
                         "{\"keys\":{\"google-vertex-ai\":\"{\\\"client_email\\\":\\\"a@b\\\","
                         "\\\"private_key\\\":7}\"}}",
                         "keys.google-vertex-ai", NULL);
    s_test_refused_text (a, "{\"google-vertex-ai\":\"{\\\"private_key\\\":\\\"SECRET\\\"}\"}",
                         "google-vertex-ai", "SECRET");
    s_test_refused_text (a, "{\"google-vertex-ai\":\"\\u0001{}\"}", "google-vertex-ai", NULL);
    {
        //  One byte over the limit, and exactly the limit (accepted).
        size_t big = AR_PROVIDER_KEY_MAX + 1;
        char *json = malloc (big + 32);
        assert (json);
        int n = snprintf (json, big + 32, "{\"azure-openai\":\"");
        memset (json + n, 'k', big);
        snprintf (json + n + big, 32, "\"}");
        s_test_refused_text (a, json, "azure-openai", "kkkkkkkkkkkkkkkk");
        memcpy (json + n + big - 1, "\"}", 3);
        assert (s_test_put (a, json, &version, error, sizeof error) == 0 && version == 5);
        assert (strlen (ar_provider_keys_get (a, "azure-openai")) == AR_PROVIDER_KEY_MAX);
        free (json);
    }
    assert (s_test_put (a, "{\"azure-openai\":null}", &version, error, sizeof error) == 0);
    assert (version == 6);

    //  A version a hand edit broke: poll says so and keeps the keys; a sealed value moved to
    //  another slug does not open there (the slug is bound to it), the others still do.
    ar_config_store_t *store = ar_provider_keys_store (b);
    assert (ar_config_store_put (store, AR_PROVIDER_KEYS_KIND, "not json", "hand", NULL) == 0);
    assert (ar_provider_keys_poll (a) == -1);
    assert (strcmp (ar_provider_keys_get (a, "anthropic"), S_ANTHRO_KEY) == 0);
    assert (ar_provider_keys_poll (a) == 0); // that version is remembered, not parsed again
    char *latest = NULL;
    {
        //  version 6's body with openai given anthropic's box
        char *six = ar_config_store_get (store, AR_PROVIDER_KEYS_KIND, 6);
        json_t *body = json_loads (six, 0, NULL);
        free (six);
        json_object_set (body, "openai", json_object_get (body, "anthropic"));
        latest = json_dumps (body, JSON_COMPACT);
        json_decref (body);
    }
    assert (ar_config_store_put (store, AR_PROVIDER_KEYS_KIND, latest, "hand", NULL) == 0);
    free (latest);
    assert (ar_provider_keys_poll (a) == 1 && ar_provider_keys_version (a) == 8);
    assert (ar_provider_keys_get (a, "openai") == NULL);
    assert (strcmp (ar_provider_keys_get (a, "anthropic"), S_ANTHRO_KEY) == 0);
    assert (strcmp (ar_provider_keys_get (a, "bedrock"), S_AWS_KEY) == 0);
    //  Removing the unopenable one still works, audited with its stored fingerprint.
    assert (s_test_put (a, "{\"openai\":null}", &version, error, sizeof error) == 0);
    assert (version == 9);
    ar_provider_keys_destroy (&a);

    //  A restart keeps the keys (the store is the source of truth).
    a = ar_provider_keys_new (db, dir, error, sizeof error);
    assert (a && ar_provider_keys_version (a) == 9);
    assert (strcmp (ar_provider_keys_get (a, "anthropic"), S_ANTHRO_KEY) == 0);
    assert (ar_provider_keys_get (a, "openai") == NULL);

    //  Another content key opens nothing, and says nothing about the values; its own put keeps
    //  the boxes it cannot open, so the replicas with the right key lose nothing.
    setenv ("ANYRAY_CONTENT_KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
    ar_provider_keys_t *stranger = ar_provider_keys_new (db, dir, error, sizeof error);
    unsetenv ("ANYRAY_CONTENT_KEY");
    assert (stranger && ar_provider_keys_version (stranger) == 9);
    for (size_t s = 0; slugs[s]; s++)
        assert (ar_provider_keys_get (stranger, slugs[s]) == NULL);
    entry = s_test_entry (stranger, "anthropic");
    assert (json_is_null (json_object_get (entry, "source")));
    json_decref (entry);
    assert (s_test_put (stranger, "{\"azure-openai\":\"azure-SECRET-7777\"}", &version, error,
                        sizeof error) == 0 &&
            version == 10);
    assert (strcmp (ar_provider_keys_get (stranger, "azure-openai"), "azure-SECRET-7777") == 0);
    assert (ar_provider_keys_poll (a) == 1);
    assert (strcmp (ar_provider_keys_get (a, "anthropic"), S_ANTHRO_KEY) == 0);
    assert (ar_provider_keys_get (a, "azure-openai") == NULL); // sealed under the other key
    ar_provider_keys_destroy (&stranger);
    assert (!s_test_db_has (db, "azure-SECRET-7777"));

    //  A put merges into the newest stored version, not into what its handle last polled: b is
    //  six versions behind and keeps everything the others wrote.
    assert (ar_provider_keys_version (b) == 4);
    assert (s_test_put (b, "{\"openai\":\"" S_OPENAI_KEY "\"}", &version, error, sizeof error) ==
            0);
    assert (version == 11 && ar_provider_keys_version (b) == 11);
    assert (strcmp (ar_provider_keys_get (b, "anthropic"), S_ANTHRO_KEY) == 0);
    assert (ar_provider_keys_poll (a) == 1);
    assert (strcmp (ar_provider_keys_get (a, "openai"), S_OPENAI_KEY) == 0);
    assert (strcmp (ar_provider_keys_get (a, "bedrock"), S_AWS_KEY) == 0);
    {
        char *eleven = ar_config_store_get (ar_provider_keys_store (a), AR_PROVIDER_KEYS_KIND, 11);
        json_t *body = json_loads (eleven, 0, NULL);
        free (eleven);
        assert (json_object_size (body) == 5); // the stranger's azure box too
        json_decref (body);
    }

    //  Cannot open: a bad db path, a bad content key; the reason never holds a key.
    snprintf (error, sizeof error, "x");
    assert (ar_provider_keys_new ("/nonexistent/dir/anyray.db", dir, error, sizeof error) == NULL);
    assert (*error && strstr (error, "config store"));
    setenv ("ANYRAY_CONTENT_KEY", "not-a-key-SECRET", 1);
    assert (ar_provider_keys_new (db, dir, error, sizeof error) == NULL);
    unsetenv ("ANYRAY_CONTENT_KEY");
    assert (strstr (error, "ANYRAY_CONTENT_KEY") && !strstr (error, "SECRET"));
    if (verbose)
        printf ("   refused: %s\n", error);

    ar_provider_keys_destroy (&a);
    ar_provider_keys_destroy (&b);
    assert (a == NULL);
    ar_provider_keys_destroy (&a); // twice is harmless

    char cmd[PATH_MAX + 16];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
    for (size_t e = 0; s_test_env[e]; e++) {
        if (saved[e]) {
            setenv (s_test_env[e], saved[e], 1);
            OPENSSL_cleanse (saved[e], strlen (saved[e]));
            free (saved[e]);
        }
    }
    //  @end
    if (verbose)
        printf ("ar_provider_keys: ok\n");
}
