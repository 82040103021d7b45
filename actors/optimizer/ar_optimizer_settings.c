/*  ar_optimizer_settings: the running optimizer config, kept in step with the store by
    ar_config_settings (see the header for the seeding rules). */
#include "ar_optimizer_settings.h"
#include "ar_config_settings.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The seed is the file or, without one, the baked-in default (ar_optimizer_config_load_env).
static int s_load_seed (const char *path, void **object, char *error, size_t error_size)
{
    (void)path;
    *object = ar_optimizer_config_load_env (error, error_size);
    return *object ? 0 : -1;
}

static void *s_parse (const char *text, size_t len, char *error, size_t error_size)
{
    return ar_optimizer_config_parse (text, len, error, error_size);
}

static char *s_to_json (const void *object)
{
    return ar_optimizer_config_to_json (object);
}

static void s_destroy (void *object)
{
    ar_optimizer_config_t *config = object;
    ar_optimizer_config_destroy (&config);
}

static const ar_config_settings_class_t s_class = {
    .kind = AR_OPTIMIZER_SETTINGS_KIND,
    .seed_kind = AR_OPTIMIZER_SEED_KIND,
    .seed_env = "ANYRAY_OPTIMIZER_CONFIG",
    .name = "optimizer",
    .none_max = 0, // there is always a config
    .load_seed = s_load_seed,
    .parse = s_parse,
    .to_json = s_to_json,
    .destroy = s_destroy,
};

//  An ar_optimizer_settings_t is an ar_config_settings_t of s_class.
static ar_config_settings_t *s_engine (ar_optimizer_settings_t *self)
{
    return (ar_config_settings_t *)self;
}

ar_optimizer_settings_t *ar_optimizer_settings_new (const char *db_path, char *error,
                                                    size_t error_size)
{
    return (ar_optimizer_settings_t *)ar_config_settings_new (&s_class, db_path, error, error_size);
}

void ar_optimizer_settings_destroy (ar_optimizer_settings_t **self_p)
{
    ar_config_settings_t *engine = s_engine (*self_p);
    ar_config_settings_destroy (&engine);
    *self_p = NULL;
}

int ar_optimizer_settings_poll (ar_optimizer_settings_t *self)
{
    return ar_config_settings_poll (s_engine (self));
}

const ar_optimizer_config_t *ar_optimizer_settings_config (ar_optimizer_settings_t *self)
{
    return ar_config_settings_object (s_engine (self));
}

//  The newest version looked at: one that did not parse lends its number to the running
//  config, as it always has here (ar_routing_settings reports the running one).
int64_t ar_optimizer_settings_version (ar_optimizer_settings_t *self)
{
    return ar_config_settings_seen (s_engine (self));
}

int ar_optimizer_settings_put (ar_optimizer_settings_t *self, const char *json, size_t len,
                               const char *actor, int64_t *version_out, char *error,
                               size_t error_size)
{
    return ar_config_settings_put (s_engine (self), json, len, actor, version_out, error,
                                   error_size);
}

ar_config_store_t *ar_optimizer_settings_store (ar_optimizer_settings_t *self)
{
    return ar_config_settings_store (s_engine (self));
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
