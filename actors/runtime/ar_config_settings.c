/*  ar_config_settings: a running config kept in step with the store (see the header for the
    seeding rules).
*/
#include "ar_config_settings.h"
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_NONE "null" // the body of a version that removes the config

struct ar_config_settings_t {
    const ar_config_settings_class_t *cls;
    ar_config_store_t *store;
    void *object;    // NULL: none
    int64_t version; // the running object's
    int64_t seen;    // the newest version looked at (a bad one is not retried)
};

//  Whether text is the JSON null (whitespace around it allowed).
static bool s_is_null (const char *text, size_t len)
{
    json_t *value = json_loadb (text, len, JSON_DECODE_ANY, NULL);
    bool null = value && json_is_null (value);
    json_decref (value);
    return null;
}

static void s_drop (ar_config_settings_t *self, void **object_p)
{
    if (*object_p)
        self->cls->destroy (*object_p);
    *object_p = NULL;
}

//  Write the seed as the next version, and remember it as the last seed, when the store needs
//  it.
static int s_seed (ar_config_settings_t *self, char *error, size_t error_size)
{
    const char *path = getenv (self->cls->seed_env);
    bool from_file = path && *path && access (path, F_OK) == 0;
    void *seed = NULL;
    if (self->cls->load_seed (from_file ? path : NULL, &seed, error, error_size) != 0)
        return -1;
    if (!seed)
        return 0;
    char *text = self->cls->to_json (seed);
    s_drop (self, &seed);
    if (!text) {
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    const char *kind = self->cls->kind, *seed_kind = self->cls->seed_kind;
    int64_t stored = ar_config_store_version (self->store, kind);
    int64_t seeded_version = 0;
    char *seeded = ar_config_store_latest (self->store, seed_kind, &seeded_version);
    //  A file edited since it last seeded is the operator's newer intent; the same file after a
    //  restart, or the baked-in default after an upgrade, must not undo an admin's change.
    bool write = stored == 0 || (from_file && (!seeded || strcmp (seeded, text) != 0));
    int rc = stored < 0 || seeded_version < 0 ? -1 : 0;
    const char *actor = from_file ? "seed:file" : "seed:default";
    if (rc == 0 && write &&
        (ar_config_store_put (self->store, kind, text, actor, NULL) != 0 ||
         ar_config_store_put (self->store, seed_kind, text, actor, NULL) != 0))
        rc = -1;
    if (rc != 0)
        snprintf (error, error_size, "config store: %s", ar_config_store_error (self->store));
    free (seeded);
    free (text);
    return rc;
}

ar_config_settings_t *ar_config_settings_new (const ar_config_settings_class_t *cls,
                                              const char *db_path, char *error, size_t error_size)
{
    if (error_size)
        error[0] = 0;
    ar_config_settings_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->cls = cls;
    const char *why = NULL;
    self->store = ar_config_store_open (db_path, &why);
    if (!self->store) {
        snprintf (error, error_size, "config store %s: %s", db_path ? db_path : "(none)",
                  why ? why : "cannot open");
        ar_config_settings_destroy (&self);
        return NULL;
    }
    if (s_seed (self, error, error_size) != 0 || ar_config_settings_poll (self) < 0 ||
        (!cls->none_max && !self->object)) {
        if (error_size && !*error)
            snprintf (error, error_size, "the stored %s config cannot be loaded", cls->name);
        ar_config_settings_destroy (&self);
        return NULL;
    }
    return self;
}

void ar_config_settings_destroy (ar_config_settings_t **self_p)
{
    ar_config_settings_t *self = *self_p;
    if (!self)
        return;
    s_drop (self, &self->object);
    ar_config_store_destroy (&self->store);
    free (self);
    *self_p = NULL;
}

int ar_config_settings_poll (ar_config_settings_t *self)
{
    int64_t version = ar_config_store_version (self->store, self->cls->kind);
    if (version < 0)
        return -1;
    if (version <= self->seen)
        return 0;
    int64_t latest = 0;
    char *text = ar_config_store_latest (self->store, self->cls->kind, &latest);
    if (!text)
        return -1;
    char error[256];
    size_t len = strlen (text);
    bool none = self->cls->none_max && s_is_null (text, len);
    void *object = none ? NULL : self->cls->parse (text, len, error, sizeof error);
    free (text);
    if (!none && !object) {
        //  Only puts that validated reach the store; this is a hand edit of the database.
        //  Remember the version so the same bad text is not parsed every poll.
        self->seen = latest;
        return -1;
    }
    s_drop (self, &self->object);
    self->object = object;
    self->version = self->seen = latest;
    return 1;
}

const void *ar_config_settings_object (ar_config_settings_t *self)
{
    return self->object;
}

int64_t ar_config_settings_version (ar_config_settings_t *self)
{
    return self->version;
}

int64_t ar_config_settings_seen (ar_config_settings_t *self)
{
    return self->seen;
}

int ar_config_settings_put (ar_config_settings_t *self, const char *json, size_t len,
                            const char *actor, int64_t *version_out, char *error, size_t error_size)
{
    if (error_size)
        error[0] = 0;
    //  The size bound keeps a huge body from being parsed twice.
    bool none = json && len <= self->cls->none_max && s_is_null (json, len);
    void *object = none ? NULL : self->cls->parse (json, len, error, error_size);
    if (!none && !object)
        return 400;
    char *text = none ? strdup (S_NONE) : self->cls->to_json (object);
    int64_t version = 0;
    if (!text || ar_config_store_put (self->store, self->cls->kind, text, actor, &version) != 0) {
        snprintf (error, error_size, "the config store refused the write: %s",
                  text ? ar_config_store_error (self->store) : "out of memory");
        free (text);
        s_drop (self, &object);
        return 500;
    }
    free (text);
    s_drop (self, &self->object);
    self->object = object;
    self->version = self->seen = version;
    if (version_out)
        *version_out = version;
    return 0;
}

ar_config_store_t *ar_config_settings_store (ar_config_settings_t *self)
{
    return self->store;
}

//  --------------------------------------------------------------------------
//  Self-test: a class whose documents are JSON objects (canonical: sorted keys) with an
//  integer "n" and a baked-in default, and the same class with null meaning "none".

static const char *s_test_default = "{\"n\":0}";

static void *s_test_parse (const char *text, size_t len, char *error, size_t error_size)
{
    json_t *doc = json_loadb (text, len, 0, NULL);
    if (!json_is_object (doc) || !json_is_integer (json_object_get (doc, "n"))) {
        snprintf (error, error_size, "n: must be an integer");
        json_decref (doc);
        return NULL;
    }
    return doc;
}

static int s_test_load_seed (const char *path, void **object, char *error, size_t error_size)
{
    json_t *doc = path ? json_load_file (path, 0, NULL) : json_loads (s_test_default, 0, NULL);
    *object = doc;
    if (!doc || !json_is_integer (json_object_get (doc, "n"))) {
        snprintf (error, error_size, "n: must be an integer");
        json_decref (doc);
        *object = NULL;
        return -1;
    }
    return 0;
}

//  The routing-like variant: no default, so no file means nothing to seed.
static int s_test_load_file (const char *path, void **object, char *error, size_t error_size)
{
    *object = NULL;
    return path ? s_test_load_seed (path, object, error, error_size) : 0;
}

static char *s_test_to_json (const void *object)
{
    return json_dumps (object, JSON_SORT_KEYS | JSON_COMPACT);
}

static void s_test_destroy (void *object)
{
    json_decref (object);
}

static json_int_t s_n (ar_config_settings_t *self)
{
    return json_integer_value (json_object_get (ar_config_settings_object (self), "n"));
}

void ar_config_settings_test (bool verbose)
{
    (void)verbose;
    char dir[] = "/tmp/ar_config_settings_test.XXXXXX";
    assert (mkdtemp (dir));
    char db[256], file[256], error[512];
    snprintf (db, sizeof db, "%s/anyray.db", dir);
    snprintf (file, sizeof file, "%s/test.json", dir);
    unsetenv ("AR_CONFIG_SETTINGS_TEST");
    ar_config_settings_class_t cls = {"test",
                                      "test.seed",
                                      "AR_CONFIG_SETTINGS_TEST",
                                      "test",
                                      0,
                                      s_test_load_seed,
                                      s_test_parse,
                                      s_test_to_json,
                                      s_test_destroy};

    //  The default seeds an empty store once; a put reaches the other handle, canonical.
    ar_config_settings_t *a = ar_config_settings_new (&cls, db, error, sizeof error);
    assert (a && ar_config_settings_version (a) == 1 && s_n (a) == 0);
    ar_config_settings_t *b = ar_config_settings_new (&cls, db, error, sizeof error);
    assert (b && ar_config_settings_version (b) == 1);
    int64_t version = 0;
    assert (ar_config_settings_put (a, "{\"x\":1, \"n\":2}", 14, "admin", &version, error,
                                    sizeof error) == 0 &&
            version == 2);
    assert (ar_config_settings_poll (b) == 1 && s_n (b) == 2 && ar_config_settings_poll (b) == 0);
    char *stored = ar_config_store_latest (ar_config_settings_store (b), "test", &version);
    assert (stored && strcmp (stored, "{\"n\":2,\"x\":1}") == 0);
    free (stored);

    //  Without none_max, null is an invalid document; so is anything parse refuses.
    assert (ar_config_settings_put (a, "null", 4, "admin", NULL, error, sizeof error) == 400);
    assert (ar_config_settings_put (a, "{}", 2, "admin", NULL, error, sizeof error) == 400);
    assert (strcmp (error, "n: must be an integer") == 0 && ar_config_settings_version (a) == 2);

    //  A bad stored version is skipped once: the object and its version stay, seen moves on.
    assert (ar_config_store_put (ar_config_settings_store (b), "test", "{", "hand", NULL) == 0);
    assert (ar_config_settings_poll (a) == -1 && ar_config_settings_poll (a) == 0);
    assert (ar_config_settings_version (a) == 2 && ar_config_settings_seen (a) == 3);
    assert (s_n (a) == 2);
    ar_config_settings_destroy (&a);
    ar_config_settings_destroy (&b);

    //  A stored bad newest version stops the start; the default does not override a version.
    a = ar_config_settings_new (&cls, db, error, sizeof error);
    assert (!a && strstr (error, "the stored test config cannot be loaded"));
    b = NULL;
    snprintf (db, sizeof db, "%s/seeded.db", dir);

    //  A file seeds once, survives a restart after a put, and is taken again when edited; a
    //  broken file stops the start with the reason.
    FILE *out = fopen (file, "w");
    fputs ("{\"n\":5}", out);
    fclose (out);
    setenv ("AR_CONFIG_SETTINGS_TEST", file, 1);
    a = ar_config_settings_new (&cls, db, error, sizeof error);
    assert (a && ar_config_settings_version (a) == 1 && s_n (a) == 5);
    assert (ar_config_settings_put (a, "{\"n\":6}", 7, "admin", NULL, error, sizeof error) == 0);
    ar_config_settings_destroy (&a);
    a = ar_config_settings_new (&cls, db, error, sizeof error);
    assert (a && ar_config_settings_version (a) == 2 && s_n (a) == 6);
    ar_config_settings_destroy (&a);
    out = fopen (file, "w");
    fputs ("{\"n\":7}", out);
    fclose (out);
    a = ar_config_settings_new (&cls, db, error, sizeof error);
    assert (a && ar_config_settings_version (a) == 3 && s_n (a) == 7);
    ar_config_settings_destroy (&a);
    out = fopen (file, "w");
    fputs ("{\"n\":\"7\"}", out);
    fclose (out);
    assert (!ar_config_settings_new (&cls, db, error, sizeof error));
    assert (strcmp (error, "n: must be an integer") == 0);
    unsetenv ("AR_CONFIG_SETTINGS_TEST");
    snprintf (db, sizeof db, "%s/none.db", dir);

    //  With none_max and no default: an empty store is no config; null removes one.
    cls.none_max = 64;
    cls.load_seed = s_test_load_file;
    a = ar_config_settings_new (&cls, db, error, sizeof error);
    assert (a && ar_config_settings_version (a) == 0 && !ar_config_settings_object (a));
    assert (ar_config_settings_put (a, "{\"n\":1}", 7, "admin", NULL, error, sizeof error) == 0);
    assert (ar_config_settings_put (a, " null ", 6, "admin", &version, error, sizeof error) == 0);
    assert (version == 2 && !ar_config_settings_object (a));
    b = ar_config_settings_new (&cls, db, error, sizeof error);
    assert (b && ar_config_settings_version (b) == 2 && !ar_config_settings_object (b));
    ar_config_settings_destroy (&a);
    ar_config_settings_destroy (&b);

    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
}
