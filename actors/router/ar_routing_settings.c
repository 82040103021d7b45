/*  ar_routing_settings: the running routing config, kept in step with the store by
    ar_config_settings (see the header for the seeding rules).

    A version's body is the canonical config, or the text "null" when an admin removed the
    config (PUT of JSON null): the router then plans from the environment again.
*/
#include "ar_routing_settings.h"
#include "ar_config_settings.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Only a file seeds: without one there is nothing to seed.
static int s_load_seed (const char *path, void **object, char *error, size_t error_size)
{
    *object = NULL;
    if (!path)
        return 0;
    char why[512];
    *object = ar_routing_config_load_file (path, why, sizeof why);
    if (!*object) {
        snprintf (error, error_size, "ANYRAY_ROUTING_CONFIG: %s", why);
        return -1;
    }
    return 0;
}

static void *s_parse (const char *text, size_t len, char *error, size_t error_size)
{
    return ar_routing_config_parse (text, len, error, error_size);
}

static char *s_to_json (const void *object)
{
    return ar_routing_config_to_json (object);
}

static void s_destroy (void *object)
{
    ar_routing_config_t *config = object;
    ar_routing_config_destroy (&config);
}

static const ar_config_settings_class_t s_class = {
    .kind = AR_ROUTING_SETTINGS_KIND,
    .seed_kind = AR_ROUTING_SEED_KIND,
    .seed_env = "ANYRAY_ROUTING_CONFIG",
    .name = "routing",
    .none_max = AR_ROUTING_CONFIG_MAX, // PUT null removes the config
    .load_seed = s_load_seed,
    .parse = s_parse,
    .to_json = s_to_json,
    .destroy = s_destroy,
};

//  An ar_routing_settings_t is an ar_config_settings_t of s_class.
static ar_config_settings_t *s_engine (ar_routing_settings_t *self)
{
    return (ar_config_settings_t *)self;
}

ar_routing_settings_t *ar_routing_settings_new (const char *db_path, char *error, size_t error_size)
{
    return (ar_routing_settings_t *)ar_config_settings_new (&s_class, db_path, error, error_size);
}

void ar_routing_settings_destroy (ar_routing_settings_t **self_p)
{
    ar_config_settings_t *engine = s_engine (*self_p);
    ar_config_settings_destroy (&engine);
    *self_p = NULL;
}

int ar_routing_settings_poll (ar_routing_settings_t *self)
{
    return ar_config_settings_poll (s_engine (self));
}

const ar_routing_config_t *ar_routing_settings_config (ar_routing_settings_t *self)
{
    return ar_config_settings_object (s_engine (self));
}

int64_t ar_routing_settings_version (ar_routing_settings_t *self)
{
    return ar_config_settings_version (s_engine (self));
}

json_t *ar_routing_settings_document (ar_routing_settings_t *self)
{
    const ar_routing_config_t *config = ar_routing_settings_config (self);
    return config ? json_deep_copy (ar_routing_config_document (config)) : json_null ();
}

int ar_routing_settings_put (ar_routing_settings_t *self, const char *json, size_t len,
                             const char *actor, int64_t *version_out, char *error,
                             size_t error_size)
{
    return ar_config_settings_put (s_engine (self), json, len, actor, version_out, error,
                                   error_size);
}

ar_config_store_t *ar_routing_settings_store (ar_routing_settings_t *self)
{
    return ar_config_settings_store (s_engine (self));
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
