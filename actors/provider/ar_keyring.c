/*  ar_keyring: the server-held provider keys, the environment's and the runtime's over them. */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "ar_keyring.h"

#define s_MAX_KEYS 16

typedef struct {
    char *slug;
    char *env;     // ANYRAY_PROVIDER_KEY_<SLUG>, or NULL
    char *runtime; // set by an admin at runtime (wins), or NULL
} s_entry_t;

struct ar_keyring_t {
    size_t count;
    s_entry_t entries[s_MAX_KEYS];
};

//  ---------------------------------------------------------------------------
//  The variable name for slug.

int ar_keyring_env_name (const char *slug, char *buf, size_t size)
{
    static const char prefix[] = "ANYRAY_PROVIDER_KEY_";
    size_t slug_len = slug ? strlen (slug) : 0;
    if (slug_len == 0 || sizeof prefix + slug_len > size)
        return -1;
    memcpy (buf, prefix, sizeof prefix - 1);
    char *out = buf + sizeof prefix - 1;
    for (size_t i = 0; i < slug_len; i++) {
        unsigned char c = (unsigned char)slug[i];
        if (c == '-')
            c = '_';
        else if (!isalnum (c) && c != '_')
            return -1;
        out[i] = (char)toupper (c);
    }
    out[slug_len] = 0;
    return 0;
}

static bool s_key_ok (const char *key)
{
    if (!*key)
        return false;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

//  ---------------------------------------------------------------------------
//  Read the key of every slug.

ar_keyring_t *ar_keyring_new (const char *const *slugs)
{
    ar_keyring_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    for (size_t i = 0; slugs && slugs[i] && self->count < s_MAX_KEYS; i++) {
        char name[96];
        if (ar_keyring_env_name (slugs[i], name, sizeof name))
            continue;
        s_entry_t *entry = &self->entries[self->count];
        entry->slug = strdup (slugs[i]);
        if (!entry->slug) {
            ar_keyring_destroy (&self);
            return NULL;
        }
        self->count++;
        const char *key = getenv (name);
        if (!key || !*key)
            continue;
        if (!s_key_ok (key)) {
            zsys_warning ("provider: %s has a control character; ignored", name);
            continue;
        }
        entry->env = strdup (key);
        if (!entry->env) {
            ar_keyring_destroy (&self);
            return NULL;
        }
    }
    return self;
}

static void s_secret_free (char **secret_p)
{
    if (*secret_p) {
        explicit_bzero (*secret_p, strlen (*secret_p));
        free (*secret_p);
        *secret_p = NULL;
    }
}

//  ---------------------------------------------------------------------------
//  Destroy the keyring, wiping the keys.

void ar_keyring_destroy (ar_keyring_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_keyring_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        s_secret_free (&self->entries[i].env);
        s_secret_free (&self->entries[i].runtime);
        free (self->entries[i].slug);
    }
    free (self);
    *self_p = NULL;
}

static s_entry_t *s_entry (ar_keyring_t *self, const char *slug)
{
    if (!slug)
        return NULL;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->entries[i].slug, slug) == 0)
            return &self->entries[i];
    return NULL;
}

//  ---------------------------------------------------------------------------
//  The key for slug, or NULL.

const char *ar_keyring_get (ar_keyring_t *self, const char *slug)
{
    s_entry_t *entry = s_entry (self, slug);
    if (!entry)
        return NULL;
    return entry->runtime ? entry->runtime : entry->env;
}

//  ---------------------------------------------------------------------------
//  The runtime layer.

int ar_keyring_set_runtime (ar_keyring_t *self, const char *slug, const char *key)
{
    s_entry_t *entry = s_entry (self, slug);
    if (!entry)
        return -1;
    s_secret_free (&entry->runtime);
    if (!key)
        return 0;
    if (!s_key_ok (key))
        return -1;
    entry->runtime = strdup (key);
    return entry->runtime ? 0 : -1;
}

const char *ar_keyring_source (ar_keyring_t *self, const char *slug)
{
    s_entry_t *entry = s_entry (self, slug);
    if (!entry)
        return NULL;
    return entry->runtime ? "runtime" : entry->env ? "env" : NULL;
}

//  ---------------------------------------------------------------------------
//  Self-test

void ar_keyring_test (bool verbose)
{
    //  @selftest
    char name[64];
    assert (ar_keyring_env_name ("openai", name, sizeof name) == 0);
    assert (streq (name, "ANYRAY_PROVIDER_KEY_OPENAI"));
    assert (ar_keyring_env_name ("azure-openai", name, sizeof name) == 0);
    assert (streq (name, "ANYRAY_PROVIDER_KEY_AZURE_OPENAI"));
    assert (ar_keyring_env_name ("bad slug", name, sizeof name) == -1);
    assert (ar_keyring_env_name ("", name, sizeof name) == -1);
    assert (ar_keyring_env_name ("openai", name, 10) == -1);

    const char *slugs[] = {"kr-test-a", "kr-test-b", "kr-test-c", NULL};
    setenv ("ANYRAY_PROVIDER_KEY_KR_TEST_A", "sk-a-secret", 1);
    unsetenv ("ANYRAY_PROVIDER_KEY_KR_TEST_B");
    setenv ("ANYRAY_PROVIDER_KEY_KR_TEST_C", "sk-c\r\nX-Injected: 1", 1);
    ar_keyring_t *keyring = ar_keyring_new (slugs);
    assert (keyring);
    assert (streq (ar_keyring_get (keyring, "kr-test-a"), "sk-a-secret"));
    assert (ar_keyring_get (keyring, "kr-test-b") == NULL);
    assert (ar_keyring_get (keyring, "kr-test-c") == NULL);
    assert (ar_keyring_get (keyring, "other") == NULL);
    assert (ar_keyring_get (keyring, NULL) == NULL);
    ar_keyring_destroy (&keyring);
    unsetenv ("ANYRAY_PROVIDER_KEY_KR_TEST_C");
    assert (keyring == NULL);

    //  Keys are read at start: a later change is not seen until a new keyring.
    setenv ("ANYRAY_PROVIDER_KEY_KR_TEST_B", "sk-b", 1);
    keyring = ar_keyring_new (slugs);
    assert (streq (ar_keyring_get (keyring, "kr-test-b"), "sk-b"));
    unsetenv ("ANYRAY_PROVIDER_KEY_KR_TEST_B");
    assert (streq (ar_keyring_get (keyring, "kr-test-b"), "sk-b"));
    ar_keyring_destroy (&keyring);
    setenv ("ANYRAY_PROVIDER_KEY_KR_TEST_B", "", 1);
    keyring = ar_keyring_new (slugs);
    assert (ar_keyring_get (keyring, "kr-test-b") == NULL);
    ar_keyring_destroy (&keyring);

    //  The runtime layer wins over the environment; clearing it brings the environment's back.
    setenv ("ANYRAY_PROVIDER_KEY_KR_TEST_A", "sk-a-env", 1);
    unsetenv ("ANYRAY_PROVIDER_KEY_KR_TEST_B");
    keyring = ar_keyring_new (slugs);
    assert (streq (ar_keyring_source (keyring, "kr-test-a"), "env"));
    assert (ar_keyring_source (keyring, "kr-test-b") == NULL);
    assert (ar_keyring_source (keyring, "other") == NULL);
    assert (ar_keyring_set_runtime (keyring, "kr-test-a", "sk-a-runtime") == 0);
    assert (streq (ar_keyring_get (keyring, "kr-test-a"), "sk-a-runtime"));
    assert (streq (ar_keyring_source (keyring, "kr-test-a"), "runtime"));
    assert (ar_keyring_set_runtime (keyring, "kr-test-a", "sk-a-runtime-2") == 0);
    assert (streq (ar_keyring_get (keyring, "kr-test-a"), "sk-a-runtime-2"));
    assert (ar_keyring_set_runtime (keyring, "kr-test-a", NULL) == 0);
    assert (streq (ar_keyring_get (keyring, "kr-test-a"), "sk-a-env"));
    assert (streq (ar_keyring_source (keyring, "kr-test-a"), "env"));
    //  A slug with no environment key takes a runtime one, and loses it again.
    assert (ar_keyring_set_runtime (keyring, "kr-test-b", "sk-b-runtime") == 0);
    assert (streq (ar_keyring_get (keyring, "kr-test-b"), "sk-b-runtime"));
    assert (ar_keyring_set_runtime (keyring, "kr-test-b", NULL) == 0);
    assert (ar_keyring_get (keyring, "kr-test-b") == NULL);
    //  Refused: an unknown slug, a control character (the runtime key is then cleared).
    assert (ar_keyring_set_runtime (keyring, "other", "sk") == -1);
    assert (ar_keyring_get (keyring, "other") == NULL);
    assert (ar_keyring_set_runtime (keyring, "kr-test-a", "sk-a-runtime") == 0);
    assert (ar_keyring_set_runtime (keyring, "kr-test-a", "sk\r\nX: 1") == -1);
    assert (streq (ar_keyring_get (keyring, "kr-test-a"), "sk-a-env"));
    assert (ar_keyring_set_runtime (keyring, "kr-test-a", "") == -1);
    assert (streq (ar_keyring_source (keyring, "kr-test-a"), "env"));
    ar_keyring_destroy (&keyring);

    unsetenv ("ANYRAY_PROVIDER_KEY_KR_TEST_A");
    unsetenv ("ANYRAY_PROVIDER_KEY_KR_TEST_B");
    unsetenv ("ANYRAY_PROVIDER_KEY_KR_TEST_C");
    //  @end
    if (verbose)
        printf ("ar_keyring: ok\n");
}
