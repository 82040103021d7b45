/*  ar_keyring: the server-held provider keys, read from the environment at start. */
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
    char *key;
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
        const char *key = getenv (name);
        if (!key || !*key)
            continue;
        if (!s_key_ok (key)) {
            zsys_warning ("provider: %s has a control character; ignored", name);
            continue;
        }
        s_entry_t *entry = &self->entries[self->count];
        entry->slug = strdup (slugs[i]);
        entry->key = strdup (key);
        if (!entry->slug || !entry->key) {
            free (entry->slug);
            free (entry->key);
            ar_keyring_destroy (&self);
            return NULL;
        }
        self->count++;
    }
    return self;
}

//  ---------------------------------------------------------------------------
//  Destroy the keyring, wiping the keys.

void ar_keyring_destroy (ar_keyring_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_keyring_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        explicit_bzero (self->entries[i].key, strlen (self->entries[i].key));
        free (self->entries[i].key);
        free (self->entries[i].slug);
    }
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  The key for slug, or NULL.

const char *ar_keyring_get (ar_keyring_t *self, const char *slug)
{
    if (!slug)
        return NULL;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->entries[i].slug, slug) == 0)
            return self->entries[i].key;
    return NULL;
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
    unsetenv ("ANYRAY_PROVIDER_KEY_KR_TEST_A");
    unsetenv ("ANYRAY_PROVIDER_KEY_KR_TEST_B");
    unsetenv ("ANYRAY_PROVIDER_KEY_KR_TEST_C");
    //  @end
    if (verbose)
        printf ("ar_keyring: ok\n");
}
