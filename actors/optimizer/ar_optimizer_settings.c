/*  ar_optimizer_settings: the running optimizer config, kept in step with the store (see the
    header for the seeding rules). */
#include "ar_optimizer_settings.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ar_optimizer_settings_t {
    ar_config_store_t *store;
    ar_optimizer_config_t *config;
    int64_t version;
};

//  Write text as the next version and remember it as the last seed, when the store needs it.
static int s_seed (ar_optimizer_settings_t *self, char *error, size_t error_size)
{
    const char *path = getenv ("ANYRAY_OPTIMIZER_CONFIG");
    bool from_file = path && *path && access (path, F_OK) == 0;
    ar_optimizer_config_t *seed = ar_optimizer_config_load_env (error, error_size);
    if (!seed)
        return -1;
    char *text = ar_optimizer_config_to_json (seed);
    ar_optimizer_config_destroy (&seed);
    if (!text) {
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    int64_t stored = ar_config_store_version (self->store, AR_OPTIMIZER_SETTINGS_KIND);
    int64_t seeded_version = 0;
    char *seeded = ar_config_store_latest (self->store, AR_OPTIMIZER_SEED_KIND, &seeded_version);
    bool write = stored == 0 || (from_file && (!seeded || strcmp (seeded, text) != 0));
    int rc = stored < 0 || seeded_version < 0 ? -1 : 0;
    const char *actor = from_file ? "seed:file" : "seed:default";
    if (rc == 0 && write &&
        (ar_config_store_put (self->store, AR_OPTIMIZER_SETTINGS_KIND, text, actor, NULL) != 0 ||
         ar_config_store_put (self->store, AR_OPTIMIZER_SEED_KIND, text, actor, NULL) != 0))
        rc = -1;
    if (rc != 0)
        snprintf (error, error_size, "config store: %s", ar_config_store_error (self->store));
    free (seeded);
    free (text);
    return rc;
}

ar_optimizer_settings_t *ar_optimizer_settings_new (const char *db_path, char *error,
                                                    size_t error_size)
{
    if (error_size)
        error[0] = 0;
    ar_optimizer_settings_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    const char *why = NULL;
    self->store = ar_config_store_open (db_path, &why);
    if (!self->store) {
        snprintf (error, error_size, "config store %s: %s", db_path, why ? why : "cannot open");
        ar_optimizer_settings_destroy (&self);
        return NULL;
    }
    if (s_seed (self, error, error_size) != 0 || ar_optimizer_settings_poll (self) < 0 ||
        !self->config) {
        if (self->store && !*error)
            snprintf (error, error_size, "the stored optimizer config cannot be loaded");
        ar_optimizer_settings_destroy (&self);
        return NULL;
    }
    return self;
}

void ar_optimizer_settings_destroy (ar_optimizer_settings_t **self_p)
{
    ar_optimizer_settings_t *self = *self_p;
    if (!self)
        return;
    ar_optimizer_config_destroy (&self->config);
    ar_config_store_destroy (&self->store);
    free (self);
    *self_p = NULL;
}

int ar_optimizer_settings_poll (ar_optimizer_settings_t *self)
{
    int64_t version = ar_config_store_version (self->store, AR_OPTIMIZER_SETTINGS_KIND);
    if (version < 0)
        return -1;
    if (version <= self->version)
        return 0;
    int64_t latest = 0;
    char *text = ar_config_store_latest (self->store, AR_OPTIMIZER_SETTINGS_KIND, &latest);
    if (!text)
        return -1;
    char error[256];
    ar_optimizer_config_t *config =
        ar_optimizer_config_parse (text, strlen (text), error, sizeof error);
    free (text);
    if (!config) {
        //  Only puts that validated reach the store; this is a hand edit of the database.
        //  Remember the version so the same bad text is not parsed every poll.
        self->version = latest;
        return -1;
    }
    ar_optimizer_config_destroy (&self->config);
    self->config = config;
    self->version = latest;
    return 1;
}

const ar_optimizer_config_t *ar_optimizer_settings_config (ar_optimizer_settings_t *self)
{
    return self->config;
}

int64_t ar_optimizer_settings_version (ar_optimizer_settings_t *self)
{
    return self->version;
}

int ar_optimizer_settings_put (ar_optimizer_settings_t *self, const char *json, size_t len,
                               const char *actor, int64_t *version_out, char *error,
                               size_t error_size)
{
    ar_optimizer_config_t *config = ar_optimizer_config_parse (json, len, error, error_size);
    if (!config)
        return 400;
    char *text = ar_optimizer_config_to_json (config);
    int64_t version = 0;
    if (!text ||
        ar_config_store_put (self->store, AR_OPTIMIZER_SETTINGS_KIND, text, actor, &version) != 0) {
        snprintf (error, error_size, "the config store refused the write: %s",
                  text ? ar_config_store_error (self->store) : "out of memory");
        free (text);
        ar_optimizer_config_destroy (&config);
        return 500;
    }
    free (text);
    ar_optimizer_config_destroy (&self->config);
    self->config = config;
    self->version = version;
    if (version_out)
        *version_out = version;
    return 0;
}

ar_config_store_t *ar_optimizer_settings_store (ar_optimizer_settings_t *self)
{
    return self->store;
}

//  --------------------------------------------------------------------------
//  Self-test: seeding, polling across two handles, puts, restarts, file edits.

static const char *s_kinds (const ar_optimizer_config_t *config)
{
    static char out[512];
    ar_pipeline_t *pipeline = ar_optimizer_config_resolve (config, NULL);
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < ar_pipeline_size (pipeline); i++)
        len += (size_t)snprintf (out + len, sizeof out - len, "%s%s", i ? "," : "",
                                 ar_pipeline_kind (pipeline, i));
    ar_pipeline_destroy (&pipeline);
    return out;
}

void ar_optimizer_settings_test (bool verbose)
{
    (void)verbose;
    char dir[] = "/tmp/ar_optimizer_settings_test.XXXXXX";
    assert (mkdtemp (dir));
    char db[256], file[256], error[512];
    snprintf (db, sizeof db, "%s/anyray.db", dir);
    snprintf (file, sizeof file, "%s/optimizer.config.json", dir);
    unsetenv ("ANYRAY_OPTIMIZER_CONFIG");

    //  An empty store is seeded with the baked-in default, once.
    ar_optimizer_settings_t *a = ar_optimizer_settings_new (db, error, sizeof error);
    assert (a && ar_optimizer_settings_version (a) == 1);
    const char *defaults = "window_budget,tool_pruning,param_tuning";
    assert (strstr (s_kinds (ar_optimizer_settings_config (a)), defaults));
    ar_optimizer_settings_t *b = ar_optimizer_settings_new (db, error, sizeof error);
    assert (b && ar_optimizer_settings_version (b) == 1);

    //  A put through one handle reaches the other on its next poll.
    const char *only_param = "{\"strategies\":[{\"kind\":\"param_tuning\",\"enabled\":true,"
                             "\"params\":{\"maxTokensCap\":1000}}]}";
    int64_t version = 0;
    assert (ar_optimizer_settings_put (a, only_param, strlen (only_param), "admin", &version, error,
                                       sizeof error) == 0);
    assert (version == 2 && ar_optimizer_settings_version (a) == 2);
    assert (strcmp (s_kinds (ar_optimizer_settings_config (a)), "param_tuning") == 0);
    assert (ar_optimizer_settings_poll (b) == 1 && ar_optimizer_settings_version (b) == 2);
    assert (strcmp (s_kinds (ar_optimizer_settings_config (b)), "param_tuning") == 0);
    assert (ar_optimizer_settings_poll (b) == 0);

    //  An invalid put names the field and changes nothing.
    const char *bad = "{\"strategies\":[{\"kind\":\"param_tuning\",\"enabled\":\"yes\"}]}";
    assert (ar_optimizer_settings_put (a, bad, strlen (bad), "admin", NULL, error, sizeof error) ==
            400);
    assert (strstr (error, "strategies[0].enabled"));
    assert (ar_optimizer_settings_version (a) == 2 && ar_optimizer_settings_poll (b) == 0);
    ar_optimizer_settings_destroy (&a);
    ar_optimizer_settings_destroy (&b);

    //  A restart keeps the admin's version: the baked-in default does not override it.
    a = ar_optimizer_settings_new (db, error, sizeof error);
    assert (a && ar_optimizer_settings_version (a) == 2);
    assert (strcmp (s_kinds (ar_optimizer_settings_config (a)), "param_tuning") == 0);
    ar_optimizer_settings_destroy (&a);

    //  An explicit file seeds once; a restart with the same file keeps later admin puts; an
    //  edited file is taken as a new version.
    FILE *out = fopen (file, "w");
    fputs ("{\"strategies\":[{\"kind\":\"tool_pruning\",\"enabled\":true}]}", out);
    fclose (out);
    setenv ("ANYRAY_OPTIMIZER_CONFIG", file, 1);
    a = ar_optimizer_settings_new (db, error, sizeof error);
    assert (a && ar_optimizer_settings_version (a) == 3);
    assert (strcmp (s_kinds (ar_optimizer_settings_config (a)), "tool_pruning") == 0);
    assert (ar_optimizer_settings_put (a, only_param, strlen (only_param), "admin", &version, error,
                                       sizeof error) == 0 &&
            version == 4);
    ar_optimizer_settings_destroy (&a);
    a = ar_optimizer_settings_new (db, error, sizeof error);
    assert (a && ar_optimizer_settings_version (a) == 4);
    ar_optimizer_settings_destroy (&a);
    out = fopen (file, "w");
    fputs ("{\"strategies\":[{\"kind\":\"window_budget\",\"enabled\":true}]}", out);
    fclose (out);
    a = ar_optimizer_settings_new (db, error, sizeof error);
    assert (a && ar_optimizer_settings_version (a) == 5);
    assert (strcmp (s_kinds (ar_optimizer_settings_config (a)), "window_budget") == 0);
    ar_optimizer_settings_destroy (&a);

    //  A broken file stops the start with its field path.
    out = fopen (file, "w");
    fputs ("{\"strategies\":[{\"kind\":\"nope\",\"enabled\":true}]}", out);
    fclose (out);
    error[0] = 0;
    assert (ar_optimizer_settings_new (db, error, sizeof error) == NULL);
    assert (strstr (error, "strategies[0].kind"));

    //  The audit log holds who and when, never the body.
    unsetenv ("ANYRAY_OPTIMIZER_CONFIG");
    a = ar_optimizer_settings_new (db, error, sizeof error);
    assert (a);
    char *audit = ar_config_store_audit_list (ar_optimizer_settings_store (a), 0, 100);
    assert (audit && strstr (audit, "\"admin\"") && strstr (audit, "seed:file"));
    assert (!strstr (audit, "maxTokensCap"));
    free (audit);
    ar_optimizer_settings_destroy (&a);

    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
}
