/*  ar_routing_settings: the running routing config, kept in step with the store (see the
    header for the seeding rules).

    A version's body is the canonical config, or the text "null" when an admin removed the
    config (PUT of JSON null): the router then plans from the environment again.
*/
#include "ar_routing_settings.h"
#include "ar_buf.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_NONE "null" // the body of a version that removes the config

struct ar_routing_settings_t {
    ar_config_store_t *store;
    ar_routing_config_t *config; // NULL: none
    int64_t version;             // the running config's
    int64_t seen;                // the newest version looked at (a bad one is not retried)
};

//  Whether text is the JSON null (whitespace around it allowed).
static bool s_is_null (const char *text, size_t len)
{
    json_t *value = json_loadb (text, len, JSON_DECODE_ANY, NULL);
    bool null = value && json_is_null (value);
    json_decref (value);
    return null;
}

//  Write the file named by ANYRAY_ROUTING_CONFIG as the next version when the store needs it.
static int s_seed (ar_routing_settings_t *self, char *error, size_t error_size)
{
    const char *path = getenv ("ANYRAY_ROUTING_CONFIG");
    if (!path || !*path || access (path, F_OK) != 0)
        return 0;
    char why[512];
    ar_routing_config_t *seed = ar_routing_config_load_file (path, why, sizeof why);
    if (!seed) {
        snprintf (error, error_size, "ANYRAY_ROUTING_CONFIG: %s", why);
        return -1;
    }
    char *text = ar_routing_config_to_json (seed);
    ar_routing_config_destroy (&seed);
    if (!text) {
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    int64_t stored = ar_config_store_version (self->store, AR_ROUTING_SETTINGS_KIND);
    int64_t seeded_version = 0;
    char *seeded = ar_config_store_latest (self->store, AR_ROUTING_SEED_KIND, &seeded_version);
    //  A file edited since it last seeded is the operator's newer intent; the same file after a
    //  restart must not undo an admin's later change.
    bool write = stored == 0 || !seeded || strcmp (seeded, text) != 0;
    int rc = stored < 0 || seeded_version < 0 ? -1 : 0;
    if (rc == 0 && write &&
        (ar_config_store_put (self->store, AR_ROUTING_SETTINGS_KIND, text, "seed:file", NULL) !=
             0 ||
         ar_config_store_put (self->store, AR_ROUTING_SEED_KIND, text, "seed:file", NULL) != 0))
        rc = -1;
    if (rc != 0)
        snprintf (error, error_size, "config store: %s", ar_config_store_error (self->store));
    free (seeded);
    free (text);
    return rc;
}

ar_routing_settings_t *ar_routing_settings_new (const char *db_path, char *error, size_t error_size)
{
    if (error_size)
        error[0] = 0;
    ar_routing_settings_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    const char *why = NULL;
    self->store = ar_config_store_open (db_path, &why);
    if (!self->store) {
        snprintf (error, error_size, "config store %s: %s", db_path ? db_path : "(none)",
                  why ? why : "cannot open");
        ar_routing_settings_destroy (&self);
        return NULL;
    }
    if (s_seed (self, error, error_size) != 0 || ar_routing_settings_poll (self) < 0) {
        if (!*error)
            snprintf (error, error_size, "the stored routing config cannot be loaded");
        ar_routing_settings_destroy (&self);
        return NULL;
    }
    return self;
}

void ar_routing_settings_destroy (ar_routing_settings_t **self_p)
{
    ar_routing_settings_t *self = *self_p;
    if (!self)
        return;
    ar_routing_config_destroy (&self->config);
    ar_config_store_destroy (&self->store);
    free (self);
    *self_p = NULL;
}

int ar_routing_settings_poll (ar_routing_settings_t *self)
{
    int64_t version = ar_config_store_version (self->store, AR_ROUTING_SETTINGS_KIND);
    if (version < 0)
        return -1;
    if (version <= self->seen)
        return 0;
    int64_t latest = 0;
    char *text = ar_config_store_latest (self->store, AR_ROUTING_SETTINGS_KIND, &latest);
    if (!text)
        return -1;
    char error[256];
    size_t len = strlen (text);
    bool none = s_is_null (text, len);
    ar_routing_config_t *config =
        none ? NULL : ar_routing_config_parse (text, len, error, sizeof error);
    free (text);
    if (!none && !config) {
        //  Only puts that validated reach the store; this is a hand edit of the database.
        //  Remember the version so the same bad text is not parsed every poll.
        self->seen = latest;
        return -1;
    }
    ar_routing_config_destroy (&self->config);
    self->config = config;
    self->version = self->seen = latest;
    return 1;
}

const ar_routing_config_t *ar_routing_settings_config (ar_routing_settings_t *self)
{
    return self->config;
}

int64_t ar_routing_settings_version (ar_routing_settings_t *self)
{
    return self->version;
}

json_t *ar_routing_settings_document (ar_routing_settings_t *self)
{
    return self->config ? json_deep_copy (ar_routing_config_document (self->config)) : json_null ();
}

int ar_routing_settings_put (ar_routing_settings_t *self, const char *json, size_t len,
                             const char *actor, int64_t *version_out, char *error,
                             size_t error_size)
{
    if (error_size)
        error[0] = 0;
    bool none = json && len <= AR_ROUTING_CONFIG_MAX && s_is_null (json, len);
    ar_routing_config_t *config =
        none ? NULL : ar_routing_config_parse (json, len, error, error_size);
    if (!none && !config)
        return 400;
    char *text = none ? strdup (S_NONE) : ar_routing_config_to_json (config);
    int64_t version = 0;
    if (!text ||
        ar_config_store_put (self->store, AR_ROUTING_SETTINGS_KIND, text, actor, &version) != 0) {
        snprintf (error, error_size, "the config store refused the write: %s",
                  text ? ar_config_store_error (self->store) : "out of memory");
        free (text);
        ar_routing_config_destroy (&config);
        return 500;
    }
    free (text);
    ar_routing_config_destroy (&self->config);
    self->config = config;
    self->version = self->seen = version;
    if (version_out)
        *version_out = version;
    return 0;
}

ar_config_store_t *ar_routing_settings_store (ar_routing_settings_t *self)
{
    return self->store;
}

//  --------------------------------------------------------------------------
//  Self-test: polling across two handles, puts, removal, restarts, the seed file.

static void s_write (const char *path, const char *text)
{
    FILE *out = fopen (path, "w");
    assert (out);
    fputs (text, out);
    fclose (out);
}

//  The name of the first target a config plans for no facts ("" when there is no config).
static const char *s_first (ar_routing_settings_t *self)
{
    const ar_routing_config_t *config = ar_routing_settings_config (self);
    if (!config)
        return "";
    const ar_routing_target_t *targets[AR_ROUTING_PLAN_MAX];
    ar_rng_t rng = {1};
    int n = ar_routing_config_select (config, NULL, &rng, targets, AR_ROUTING_PLAN_MAX);
    assert (n >= 1);
    return targets[0]->name ? targets[0]->name : "?";
}

void ar_routing_settings_test (bool verbose)
{
    (void)verbose;
    char dir[] = "/tmp/ar_routing_settings_test.XXXXXX";
    assert (mkdtemp (dir));
    char db[256], file[256], error[512];
    snprintf (db, sizeof db, "%s/anyray.db", dir);
    snprintf (file, sizeof file, "%s/routing.config.json", dir);
    unsetenv ("ANYRAY_ROUTING_CONFIG");

    //  No file, nothing stored: no config, version 0, the document is null.
    ar_routing_settings_t *a = ar_routing_settings_new (db, error, sizeof error);
    assert (a && ar_routing_settings_version (a) == 0 && !ar_routing_settings_config (a));
    json_t *doc = ar_routing_settings_document (a);
    assert (json_is_null (doc));
    json_decref (doc);
    ar_routing_settings_t *b = ar_routing_settings_new (db, error, sizeof error);
    assert (b && ar_routing_settings_poll (b) == 0);

    //  A put through one handle reaches the other on its next poll, canonical.
    const char *one = "{\"targets\":[{\"provider\":\"openai\",\"name\":\"one\"}],"
                      "\"strategy\":{\"mode\":\"single\"}}";
    int64_t version = 0;
    assert (ar_routing_settings_put (a, one, strlen (one), "admin", &version, error,
                                     sizeof error) == 0);
    assert (version == 1 && ar_routing_settings_version (a) == 1);
    assert (strcmp (s_first (a), "one") == 0);
    assert (ar_routing_settings_poll (b) == 1 && ar_routing_settings_version (b) == 1);
    assert (strcmp (s_first (b), "one") == 0);
    assert (ar_routing_settings_poll (b) == 0);
    char *stored = ar_config_store_latest (ar_routing_settings_store (b), "routing", &version);
    assert (stored && version == 1);
    assert (strstr (stored, "\"strategy\"") < strstr (stored, "\"targets\"")); // canonical order
    assert (strstr (stored, "\"name\": \"one\"") < strstr (stored, "\"provider\""));
    free (stored);
    doc = ar_routing_settings_document (b);
    assert (json_is_object (doc) && json_object_get (doc, "targets"));
    json_decref (doc);

    //  An invalid put names the field and changes nothing, here or there.
    const char *bad = "{\"strategy\":{\"mode\":\"single\"},\"targets\":[{\"provider\":\"openai\","
                      "\"retry\":{\"attempts\":11}}]}";
    assert (ar_routing_settings_put (a, bad, strlen (bad), "admin", NULL, error, sizeof error) ==
            400);
    assert (strcmp (error, "targets[0].retry.attempts: must be an integer from 0 to 10") == 0);
    assert (ar_routing_settings_put (a, "[1]", 3, "admin", NULL, error, sizeof error) == 400);
    assert (strncmp (error, "(document): ", 12) == 0);
    assert (ar_routing_settings_version (a) == 1 && strcmp (s_first (a), "one") == 0);
    assert (ar_routing_settings_poll (b) == 0 && strcmp (s_first (b), "one") == 0);

    //  JSON null removes the config: back to the environment, on both handles.
    assert (ar_routing_settings_put (a, " null ", 6, "admin", &version, error, sizeof error) == 0);
    assert (version == 2 && !ar_routing_settings_config (a));
    assert (ar_routing_settings_poll (b) == 1 && !ar_routing_settings_config (b));
    doc = ar_routing_settings_document (b);
    assert (json_is_null (doc));
    json_decref (doc);
    const char *two = "{\"strategy\":{\"mode\":\"single\"},\"targets\":[{\"name\":\"two\","
                      "\"provider\":\"anthropic\"}]}";
    assert (ar_routing_settings_put (b, two, strlen (two), "admin", &version, error,
                                     sizeof error) == 0 &&
            version == 3);
    assert (ar_routing_settings_poll (a) == 1 && strcmp (s_first (a), "two") == 0);

    //  A version that does not parse (a hand edit of the database) is skipped once: the
    //  running config and its version stay; the next good version is taken.
    assert (ar_config_store_put (ar_routing_settings_store (b), "routing", "{\"bad\"", "hand",
                                 &version) == 0 &&
            version == 4);
    assert (ar_routing_settings_poll (a) == -1 && ar_routing_settings_version (a) == 3);
    assert (strcmp (s_first (a), "two") == 0 && ar_routing_settings_poll (a) == 0);
    assert (ar_routing_settings_put (b, two, strlen (two), "admin", &version, error,
                                     sizeof error) == 0 &&
            version == 5);
    assert (ar_routing_settings_poll (a) == 1 && ar_routing_settings_version (a) == 5);
    assert (strcmp (s_first (a), "two") == 0);
    ar_routing_settings_destroy (&a);
    ar_routing_settings_destroy (&b);

    //  A restart keeps the stored version.
    a = ar_routing_settings_new (db, error, sizeof error);
    assert (a && ar_routing_settings_version (a) == 5 && strcmp (s_first (a), "two") == 0);
    ar_routing_settings_destroy (&a);

    //  The seed file is written once; a restart with the same file keeps later admin puts; an
    //  edited file is taken as a new version; a missing file seeds nothing.
    s_write (file, "{\"strategy\":{\"mode\":\"single\"},\"targets\":[{\"name\":\"seed\","
                   "\"provider\":\"bedrock\",\"region\":\"eu-west-1\"}]}");
    setenv ("ANYRAY_ROUTING_CONFIG", file, 1);
    a = ar_routing_settings_new (db, error, sizeof error);
    assert (a && ar_routing_settings_version (a) == 6 && strcmp (s_first (a), "seed") == 0);
    assert (ar_routing_settings_put (a, one, strlen (one), "admin", &version, error,
                                     sizeof error) == 0 &&
            version == 7);
    ar_routing_settings_destroy (&a);
    a = ar_routing_settings_new (db, error, sizeof error);
    assert (a && ar_routing_settings_version (a) == 7 && strcmp (s_first (a), "one") == 0);
    ar_routing_settings_destroy (&a);
    s_write (file, "{\"strategy\":{\"mode\":\"single\"},\"targets\":[{\"name\":\"edited\","
                   "\"provider\":\"openai\"}]}");
    a = ar_routing_settings_new (db, error, sizeof error);
    assert (a && ar_routing_settings_version (a) == 8 && strcmp (s_first (a), "edited") == 0);
    ar_routing_settings_destroy (&a);

    //  A broken seed file stops the start with its field path.
    s_write (file, "{\"strategy\":{\"mode\":\"single\"},\"targets\":[{\"provider\":\"nope\"}]}");
    error[0] = 0;
    assert (ar_routing_settings_new (db, error, sizeof error) == NULL);
    assert (strstr (error, "targets[0].provider: unknown provider"));

    //  A fresh store seeded by a file; without the variable, an unreadable path seeds nothing.
    unlink (file);
    a = ar_routing_settings_new (db, error, sizeof error);
    assert (a && ar_routing_settings_version (a) == 8);

    //  The audit log holds who and when, never the body.
    char *audit = ar_config_store_audit_list (ar_routing_settings_store (a), 0, 100);
    assert (audit && strstr (audit, "\"admin\"") && strstr (audit, "seed:file"));
    assert (strstr (audit, "\"routing\"") && !strstr (audit, "eu-west-1"));
    assert (!strstr (audit, "edited"));
    free (audit);
    ar_routing_settings_destroy (&a);
    unsetenv ("ANYRAY_ROUTING_CONFIG");

    //  A database that cannot be opened is a clear error.
    assert (ar_routing_settings_new ("/nonexistent-dir/x/anyray.db", error, sizeof error) == NULL);
    assert (strstr (error, "config store"));

    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
}
