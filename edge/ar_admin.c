/*  ar_admin: the admin API (see the header). */
#include "ar_admin.h"
#include "ar_http_error.h"
#include "ar_optimizer_settings.h"
#include "ar_strategy_registry.h"
#include <assert.h>
#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ar_admin_t {
    bool enabled;
    uint8_t token_digest[SHA256_DIGEST_LENGTH];
    ar_optimizer_settings_t *settings;
    ar_admin_stats_fn *stats;
    void *stats_arg;
};

ar_admin_t *ar_admin_new (const char *token, const char *db_path, ar_admin_stats_fn *stats,
                          void *stats_arg, char *error, size_t error_size)
{
    ar_admin_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->stats = stats;
    self->stats_arg = stats_arg;
    if (!token || !*token)
        return self; // off: nothing to open
    self->enabled = true;
    SHA256 ((const unsigned char *)token, strlen (token), self->token_digest);
    self->settings = ar_optimizer_settings_new (db_path, error, error_size);
    if (!self->settings)
        ar_admin_destroy (&self);
    return self;
}

void ar_admin_destroy (ar_admin_t **self_p)
{
    ar_admin_t *self = *self_p;
    if (!self)
        return;
    OPENSSL_cleanse (self->token_digest, sizeof self->token_digest);
    ar_optimizer_settings_destroy (&self->settings);
    free (self);
    *self_p = NULL;
}

bool ar_admin_enabled (ar_admin_t *self)
{
    return self && self->enabled;
}

static int s_error (char **reply, int status, const char *message, const char *type,
                    const char *param, const char *code)
{
    char body[2048];
    ar_http_error_openai (body, sizeof body, status, message, type, param, code);
    *reply = strdup (body);
    return status;
}

static int s_json (char **reply, json_t *doc)
{
    *reply = doc ? json_dumps (doc, JSON_COMPACT | JSON_REAL_PRECISION (15)) : NULL;
    json_decref (doc);
    if (!*reply)
        return s_error (reply, 500, "out of memory", "server_error", NULL, "internal_error");
    return 200;
}

//  "Bearer <token>", compared as SHA-256 digests in constant time.
static bool s_authorized (ar_admin_t *self, const char *header)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    const char *token = "";
    if (header && strncasecmp (header, "Bearer ", 7) == 0)
        token = header + 7;
    SHA256 ((const unsigned char *)token, strlen (token), digest);
    bool ok = CRYPTO_memcmp (digest, self->token_digest, sizeof digest) == 0 && *token;
    OPENSSL_cleanse (digest, sizeof digest);
    return ok;
}

//  Who to write in the audit log: a console-supplied name when it is a plain identifier.
static const char *s_actor (const char *header, char *out, size_t size)
{
    size_t len = header ? strlen (header) : 0;
    bool plain = len > 0 && len <= 64;
    for (size_t i = 0; plain && i < len; i++)
        plain = isalnum ((unsigned char)header[i]) || strchr ("@._:-", header[i]);
    snprintf (out, size, "%s%s", plain ? "admin:" : "admin", plain ? header : "");
    return out;
}

static int s_get_settings (ar_admin_t *self, char **reply)
{
    ar_optimizer_settings_poll (self->settings); // another edge or replica may have written
    const ar_optimizer_config_t *config = ar_optimizer_settings_config (self->settings);
    json_t *doc = json_pack ("{s:I, s:O, s:o}", "version",
                             (json_int_t)ar_optimizer_settings_version (self->settings), "config",
                             ar_optimizer_config_document (config), "capabilities",
                             ar_strategy_registry_capabilities ());
    return s_json (reply, doc);
}

static int s_put_settings (ar_admin_t *self, const ar_admin_request_t *request, char **reply)
{
    char actor[80], error[512];
    s_actor (request->actor, actor, sizeof actor);
    const char *body = request->body ? request->body : "";
    size_t len = request->body_len;
    //  GET's reply with edits may come back whole: take its "config".
    char *unwrapped = NULL;
    const char *prefix = "";
    json_t *root = json_loadb (body, len, 0, NULL);
    if (json_is_object (root) && json_object_get (root, "config") &&
        !json_object_get (root, "strategies")) {
        const char *key;
        json_t *value;
        json_object_foreach (root, key, value) if (strcmp (key, "config") != 0 &&
                                                   strcmp (key, "version") != 0 &&
                                                   strcmp (key, "capabilities") != 0)
        {
            json_decref (root);
            char message[200];
            snprintf (message, sizeof message, "%.64s: unknown member", key);
            return s_error (reply, 400, message, "invalid_request_error", key, "invalid_config");
        }
        unwrapped =
            json_dumps (json_object_get (root, "config"), JSON_COMPACT | JSON_REAL_PRECISION (17));
        prefix = "config.";
        body = unwrapped ? unwrapped : "";
        len = strlen (body);
    }
    json_decref (root);
    int64_t version = 0;
    int rc =
        ar_optimizer_settings_put (self->settings, body, len, actor, &version, error, sizeof error);
    free (unwrapped);
    if (rc == 400) {
        //  The parser says "path: why"; the path alone is the param, and it is content-free.
        char param[256], message[700];
        const char *colon = strstr (error, ": ");
        snprintf (param, sizeof param, "%s%.*s", prefix, colon ? (int)(colon - error) : 0, error);
        if (strncmp (error, "(document)", 10) == 0)
            snprintf (param, sizeof param, "%s", *prefix ? "config" : "");
        snprintf (message, sizeof message, "%s%s", prefix, error);
        char detail[400], escaped[300];
        ar_json_escape (escaped, sizeof escaped, param);
        snprintf (detail, sizeof detail, "{\"param\":\"%s\"}", escaped);
        ar_config_store_audit (ar_optimizer_settings_store (self->settings), actor,
                               "config.rejected", AR_OPTIMIZER_SETTINGS_KIND, detail);
        return s_error (reply, 400, message, "invalid_request_error", *param ? param : NULL,
                        "invalid_config");
    }
    if (rc != 0)
        return s_error (reply, 500, error, "server_error", NULL, "store_unavailable");
    json_t *doc =
        json_pack ("{s:I, s:O}", "version", (json_int_t)version, "config",
                   ar_optimizer_config_document (ar_optimizer_settings_config (self->settings)));
    return s_json (reply, doc);
}

static int s_get_audit (ar_admin_t *self, const ar_admin_request_t *request, char **reply)
{
    char *end = NULL;
    long long since = request->since_ms ? strtoll (request->since_ms, &end, 10) : 0;
    if (request->since_ms && (*end || since < 0))
        return s_error (reply, 400, "since_ms must be a non-negative integer (Unix ms).",
                        "invalid_request_error", "since_ms", "invalid_value");
    long limit = request->limit ? strtol (request->limit, &end, 10) : 100;
    if (request->limit && (*end || limit < 1 || limit > 1000))
        return s_error (reply, 400, "limit must be an integer from 1 to 1000.",
                        "invalid_request_error", "limit", "invalid_value");
    char *entries = ar_config_store_audit_list (ar_optimizer_settings_store (self->settings), since,
                                                (int)limit);
    json_t *list = entries ? json_loads (entries, 0, NULL) : NULL;
    free (entries);
    if (!list)
        return s_error (reply, 500, "The audit log cannot be read right now.", "server_error", NULL,
                        "store_unavailable");
    return s_json (reply, json_pack ("{s:o}", "entries", list));
}

int ar_admin_handle (ar_admin_t *self, const ar_admin_request_t *request, char **reply)
{
    *reply = NULL;
    if (!self->enabled)
        return s_error (reply, 403, "The admin API is off: set ANYRAY_ADMIN_TOKEN to turn it on.",
                        "permission_error", NULL, "admin_disabled");
    if (!s_authorized (self, request->authorization))
        return s_error (reply, 401, "Missing or wrong admin token (Authorization: Bearer ...).",
                        "authentication_error", NULL, "invalid_admin_token");
    const char *path = request->path, *method = request->method;
    bool get = strcmp (method, "GET") == 0, put = strcmp (method, "PUT") == 0;
    if (strcmp (path, "/admin/optimizer/settings") == 0) {
        if (get)
            return s_get_settings (self, reply);
        if (put)
            return s_put_settings (self, request, reply);
    } else if (strcmp (path, "/admin/optimizer/stats") == 0) {
        if (get) {
            char *stats = self->stats ? self->stats (self->stats_arg) : NULL;
            json_t *doc = stats ? json_loads (stats, 0, NULL) : json_object ();
            free (stats);
            ar_optimizer_settings_poll (self->settings);
            json_object_set_new (doc, "configVersion",
                                 json_integer (ar_optimizer_settings_version (self->settings)));
            return s_json (reply, doc);
        }
    } else if (strcmp (path, "/admin/audit") == 0) {
        if (get)
            return s_get_audit (self, request, reply);
    } else
        return s_error (reply, 404, "Unknown admin URL.", "invalid_request_error", NULL,
                        "unknown_url");
    return s_error (reply, 405, "Method not allowed for this URL.", "invalid_request_error", NULL,
                    "method_not_allowed");
}

//  --------------------------------------------------------------------------
//  Self-test

static char *s_test_stats (void *arg)
{
    (void)arg;
    return strdup ("{\"calls\":3}");
}

static int s_call (ar_admin_t *admin, const char *method, const char *path, const char *auth,
                   const char *body, json_t **out)
{
    ar_admin_request_t request = {method, path, auth, "ops@example",
                                  NULL,   NULL, body, body ? strlen (body) : 0};
    char *reply = NULL;
    int status = ar_admin_handle (admin, &request, &reply);
    assert (reply);
    *out = json_loads (reply, 0, NULL);
    assert (*out);
    free (reply);
    return status;
}

void ar_admin_test (bool verbose)
{
    (void)verbose;
    char dir[] = "/tmp/ar_admin_test.XXXXXX", db[256], error[256];
    assert (mkdtemp (dir));
    snprintf (db, sizeof db, "%s/anyray.db", dir);
    unsetenv ("ANYRAY_OPTIMIZER_CONFIG");
    json_t *out;

    //  Off without a token, and says so.
    ar_admin_t *admin = ar_admin_new (NULL, db, NULL, NULL, error, sizeof error);
    assert (admin && !ar_admin_enabled (admin));
    assert (s_call (admin, "GET", "/admin/optimizer/settings", "Bearer x", NULL, &out) == 403);
    json_decref (out);
    ar_admin_destroy (&admin);

    admin = ar_admin_new ("s3cret-admin", db, s_test_stats, NULL, error, sizeof error);
    assert (admin && ar_admin_enabled (admin));
    const char *wrong[] = {NULL,
                           "",
                           "Bearer ",
                           "Bearer s3cret",
                           "Bearer s3cret-admin2",
                           "s3cret-admin",
                           "Basic s3cret-admin"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        assert (s_call (admin, "GET", "/admin/optimizer/settings", wrong[i], NULL, &out) == 401);
        char *text = json_dumps (out, 0);
        assert (text && !strstr (text, "s3cret"));
        free (text);
        json_decref (out);
    }
    const char *auth = "Bearer s3cret-admin";
    assert (s_call (admin, "GET", "/admin/optimizer/settings", auth, NULL, &out) == 200);
    assert (json_integer_value (json_object_get (out, "version")) == 1);
    assert (json_array_size (json_object_get (json_object_get (out, "config"), "strategies")) ==
            10);
    assert (json_array_size (json_object_get (json_object_get (out, "capabilities"), "kinds")) ==
            10);

    //  GET's reply, edited, goes back as is.
    json_t *config = json_object_get (out, "config");
    json_t *first = json_array_get (json_object_get (config, "strategies"), 0);
    json_object_set_new (first, "enabled", json_true ());
    char *edited = json_dumps (out, JSON_COMPACT);
    json_decref (out);
    assert (s_call (admin, "PUT", "/admin/optimizer/settings", auth, edited, &out) == 200);
    assert (json_integer_value (json_object_get (out, "version")) == 2);
    json_decref (out);
    free (edited);

    //  A bad PUT names the path, in both forms, and changes nothing.
    assert (s_call (admin, "PUT", "/admin/optimizer/settings", auth,
                    "{\"strategies\":[{\"kind\":\"param_tuning\",\"enabled\":true,\"params\":"
                    "{\"maxTokensCap\":\"big\"}}]}",
                    &out) == 400);
    json_t *err = json_object_get (out, "error");
    assert (strcmp (json_string_value (json_object_get (err, "param")),
                    "strategies[0].params.maxTokensCap") == 0);
    json_decref (out);
    assert (s_call (admin, "PUT", "/admin/optimizer/settings", auth,
                    "{\"config\":{\"strategies\":[{\"kind\":\"nope\",\"enabled\":true}]}}",
                    &out) == 400);
    err = json_object_get (out, "error");
    assert (strcmp (json_string_value (json_object_get (err, "param")),
                    "config.strategies[0].kind") == 0);
    json_decref (out);
    assert (s_call (admin, "PUT", "/admin/optimizer/settings", auth, "{not json", &out) == 400);
    json_decref (out);
    assert (s_call (admin, "GET", "/admin/optimizer/settings", auth, NULL, &out) == 200);
    assert (json_integer_value (json_object_get (out, "version")) == 2);
    json_decref (out);

    //  The audit log: who, what, when, never the body.
    assert (s_call (admin, "GET", "/admin/audit", auth, NULL, &out) == 200);
    json_t *entries = json_object_get (out, "entries");
    assert (json_array_size (entries) >= 4); // seed, put, three refusals
    json_t *newest = json_array_get (entries, 0);
    assert (strcmp (json_string_value (json_object_get (newest, "action")), "config.rejected") ==
            0);
    assert (strcmp (json_string_value (json_object_get (newest, "actor")), "admin:ops@example") ==
            0);
    char *text = json_dumps (out, 0);
    assert (!strstr (text, "maxTokensCap\":") && !strstr (text, "\"big\""));
    free (text);
    json_decref (out);

    assert (s_call (admin, "GET", "/admin/optimizer/stats", auth, NULL, &out) == 200);
    assert (json_integer_value (json_object_get (out, "calls")) == 3);
    assert (json_integer_value (json_object_get (out, "configVersion")) == 2);
    json_decref (out);
    assert (s_call (admin, "GET", "/admin/nope", auth, NULL, &out) == 404);
    json_decref (out);
    assert (s_call (admin, "DELETE", "/admin/audit", auth, NULL, &out) == 405);
    json_decref (out);
    ar_admin_destroy (&admin);

    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
}
