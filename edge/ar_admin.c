/*  ar_admin: the admin API (see the header). */
#include "ar_admin.h"
#include "ar_http_error.h"
#include "ar_clock.h"
#include "ar_optimizer_settings.h"
#include "ar_provider_keys.h"
#include "ar_routing_settings.h"
#include "ar_strategy_registry.h"
#include <assert.h>
#include <ctype.h>
#include <jansson.h>
#include <libgen.h>
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
    ar_routing_settings_t *routing;
    ar_provider_keys_t *keys;
    ar_admin_stats_fn *stats;
    void *stats_arg;
    //  Refused attempts are audited, at most S_REFUSALS_PER_SECOND a second: a flood of bad
    //  tokens must not flood the log.
    int64_t refusal_second;
    int refusals, refusals_dropped;
};

#define S_REFUSALS_PER_SECOND 20

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
    if (self->settings)
        self->routing = ar_routing_settings_new (db_path, error, error_size);
    if (self->routing) {
        //  The content key that seals provider keys lives beside the database.
        char dir[1024];
        snprintf (dir, sizeof dir, "%s", db_path);
        self->keys = ar_provider_keys_new (db_path, dirname (dir), error, error_size);
    }
    if (!self->keys)
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
    ar_routing_settings_destroy (&self->routing);
    ar_provider_keys_destroy (&self->keys);
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

//  A refused config write: 400 naming the field path (content-free, from the parser's
//  "path: why"), audited as config.rejected of kind.
static int s_rejected (ar_admin_t *self, const char *actor, const char *kind, const char *prefix,
                       const char *error, char **reply)
{
    char param[256], message[700];
    const char *colon = strstr (error, ": ");
    snprintf (param, sizeof param, "%s%.*s", prefix, colon ? (int)(colon - error) : 0, error);
    if (strncmp (error, "(document)", 10) == 0)
        snprintf (param, sizeof param, "%s", *prefix ? "config" : "");
    snprintf (message, sizeof message, "%s%s", prefix, error);
    char detail[400], escaped[300];
    ar_json_escape (escaped, sizeof escaped, param);
    snprintf (detail, sizeof detail, "{\"param\":\"%s\"}", escaped);
    ar_config_store_audit (ar_optimizer_settings_store (self->settings), actor, "config.rejected",
                           kind, detail);
    return s_error (reply, 400, message, "invalid_request_error", *param ? param : NULL,
                    "invalid_config");
}

//  GET's reply with edits may come back whole: {"config": {...}, "version": ...}. Returns the
//  config's text to validate (caller frees *unwrapped), or 400 for members that do not belong.
static int s_unwrap (const ar_admin_request_t *request, const char *marker, const char **body,
                     size_t *len, char **unwrapped, const char **prefix, char **reply)
{
    *body = request->body ? request->body : "";
    *len = request->body_len;
    *unwrapped = NULL;
    *prefix = "";
    json_t *root = json_loadb (*body, *len, 0, NULL);
    if (json_is_object (root) && json_object_get (root, "config") &&
        !json_object_get (root, marker)) {
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
        *unwrapped =
            json_dumps (json_object_get (root, "config"), JSON_COMPACT | JSON_REAL_PRECISION (17));
        *prefix = "config.";
        *body = *unwrapped ? *unwrapped : "";
        *len = strlen (*body);
    }
    json_decref (root);
    return 0;
}

static int s_put_settings (ar_admin_t *self, const ar_admin_request_t *request, char **reply)
{
    char actor[80], error[512];
    s_actor (request->actor, actor, sizeof actor);
    const char *body, *prefix;
    size_t len;
    char *unwrapped;
    int refused = s_unwrap (request, "strategies", &body, &len, &unwrapped, &prefix, reply);
    if (refused)
        return refused;
    int64_t version = 0;
    int rc =
        ar_optimizer_settings_put (self->settings, body, len, actor, &version, error, sizeof error);
    free (unwrapped);
    if (rc == 400)
        return s_rejected (self, actor, AR_OPTIMIZER_SETTINGS_KIND, prefix, error, reply);
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

static int s_get_routing (ar_admin_t *self, char **reply)
{
    ar_routing_settings_poll (self->routing); // another edge may have written
    return s_json (reply, json_pack ("{s:I, s:o}", "version",
                                     (json_int_t)ar_routing_settings_version (self->routing),
                                     "config", ar_routing_settings_document (self->routing)));
}

static int s_put_routing (ar_admin_t *self, const ar_admin_request_t *request, char **reply)
{
    char actor[80], error[512];
    s_actor (request->actor, actor, sizeof actor);
    const char *body, *prefix;
    size_t len;
    char *unwrapped;
    int refused = s_unwrap (request, "targets", &body, &len, &unwrapped, &prefix, reply);
    if (refused)
        return refused;
    int64_t version = 0;
    int rc =
        ar_routing_settings_put (self->routing, body, len, actor, &version, error, sizeof error);
    free (unwrapped);
    if (rc == 400)
        return s_rejected (self, actor, AR_ROUTING_SETTINGS_KIND, prefix, error, reply);
    if (rc != 0)
        return s_error (reply, 500, "The routing config cannot be stored right now.",
                        "server_error", NULL, "store_unavailable");
    return s_get_routing (self, reply);
}

static int s_keys_reply (ar_admin_t *self, char **reply)
{
    *reply = ar_provider_keys_describe (self->keys);
    if (!*reply)
        return s_error (reply, 500, "The provider keys cannot be read right now.", "server_error",
                        NULL, "store_unavailable");
    return 200;
}

static int s_put_keys (ar_admin_t *self, const ar_admin_request_t *request, char **reply)
{
    char actor[80], error[512];
    s_actor (request->actor, actor, sizeof actor);
    int64_t version = 0;
    int rc = ar_provider_keys_put (self->keys, request->body ? request->body : "",
                                   request->body_len, actor, &version, error, sizeof error);
    if (rc == 400)
        return s_rejected (self, actor, AR_PROVIDER_KEYS_KIND, "", error, reply);
    if (rc != 0)
        return s_error (reply, 500, "The provider keys cannot be stored right now.", "server_error",
                        NULL, "store_unavailable");
    return s_keys_reply (self, reply);
}

//  A refused admin call is logged and audited with what was asked, never with the token or
//  the body. The path is cut to the characters an admin URL has.
static void s_refused (ar_admin_t *self, const ar_admin_request_t *request)
{
    char path[96], method[16];
    size_t n = 0;
    for (const char *c = request->path; *c && n + 1 < sizeof path; c++)
        path[n++] = isalnum ((unsigned char)*c) || strchr ("/_.-", *c) ? *c : '?';
    path[n] = 0;
    n = 0;
    for (const char *c = request->method; *c && n + 1 < sizeof method; c++)
        method[n++] = isupper ((unsigned char)*c) ? *c : '?';
    method[n] = 0;
    const char *why = request->authorization && *request->authorization ? "wrong" : "missing";
    int64_t second = (int64_t)(ar_wall_now () / 1000);
    if (second != self->refusal_second) {
        if (self->refusals_dropped)
            fprintf (stderr, "anyray-edge: admin: %d more refused calls not audited\n",
                     self->refusals_dropped);
        self->refusal_second = second;
        self->refusals = self->refusals_dropped = 0;
    }
    if (++self->refusals > S_REFUSALS_PER_SECOND) {
        self->refusals_dropped++;
        return;
    }
    fprintf (stderr, "anyray-edge: admin: refused %s %s (%s token)\n", method, path, why);
    char detail[256];
    snprintf (detail, sizeof detail, "{\"method\":\"%s\",\"path\":\"%s\",\"token\":\"%s\"}", method,
              path, why);
    ar_config_store_audit (ar_optimizer_settings_store (self->settings), "unknown",
                           "admin.unauthorized", path, detail);
}

int ar_admin_handle (ar_admin_t *self, const ar_admin_request_t *request, char **reply)
{
    *reply = NULL;
    if (!self->enabled)
        return s_error (reply, 403, "The admin API is off: set ANYRAY_ADMIN_TOKEN to turn it on.",
                        "permission_error", NULL, "admin_disabled");
    if (!s_authorized (self, request->authorization)) {
        s_refused (self, request);
        return s_error (reply, 401, "Missing or wrong admin token (Authorization: Bearer ...).",
                        "authentication_error", NULL, "invalid_admin_token");
    }
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
    } else if (strcmp (path, "/admin/routing-config") == 0) {
        if (get)
            return s_get_routing (self, reply);
        if (put)
            return s_put_routing (self, request, reply);
    } else if (strcmp (path, "/admin/provider-keys") == 0) {
        if (get)
            return s_keys_reply (self, reply);
        if (put)
            return s_put_keys (self, request, reply);
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
    unsetenv ("ANYRAY_ROUTING_CONFIG");
    unsetenv ("ANYRAY_CONTENT_KEY");
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
    //  Routing config: none until a PUT; a bad one names its path and changes nothing.
    assert (s_call (admin, "GET", "/admin/routing-config", auth, NULL, &out) == 200);
    assert (json_integer_value (json_object_get (out, "version")) == 0);
    assert (json_is_null (json_object_get (out, "config")));
    json_decref (out);
    const char *routing = "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":["
                          "{\"name\":\"a\",\"provider\":\"openai\"},"
                          "{\"name\":\"b\",\"provider\":\"anthropic\"}]}";
    assert (s_call (admin, "PUT", "/admin/routing-config", auth, routing, &out) == 200);
    assert (json_integer_value (json_object_get (out, "version")) == 1);
    assert (json_array_size (json_object_get (json_object_get (out, "config"), "targets")) == 2);
    json_decref (out);
    assert (s_call (admin, "PUT", "/admin/routing-config", auth,
                    "{\"config\":{\"strategy\":{\"mode\":\"single\"},\"targets\":["
                    "{\"provider\":\"openai\",\"weight\":-1}]}}",
                    &out) == 400);
    err = json_object_get (out, "error");
    assert (strcmp (json_string_value (json_object_get (err, "param")),
                    "config.targets[0].weight") == 0);
    json_decref (out);
    assert (s_call (admin, "GET", "/admin/routing-config", auth, NULL, &out) == 200);
    assert (json_integer_value (json_object_get (out, "version")) == 1);
    json_decref (out);

    //  Provider keys: never returned; a fingerprint and where the key comes from.
    const char *key = "sk-admin-test-0123456789abcdef";
    char keys[200];
    snprintf (keys, sizeof keys, "{\"keys\":{\"openai\":\"%s\"}}", key);
    assert (s_call (admin, "PUT", "/admin/provider-keys", auth, keys, &out) == 200);
    text = json_dumps (out, 0);
    assert (text && !strstr (text, key) && strstr (text, "\"runtime\""));
    free (text);
    json_decref (out);
    assert (s_call (admin, "PUT", "/admin/provider-keys", auth, "{\"keys\":{\"nope\":\"sk-abc\"}}",
                    &out) == 400);
    err = json_object_get (out, "error");
    assert (strcmp (json_string_value (json_object_get (err, "param")), "keys.nope") == 0);
    json_decref (out);

    //  Refused calls are audited without the token.
    assert (s_call (admin, "PUT", "/admin/routing-config", "Bearer not-the-token-xyz", routing,
                    &out) == 401);
    json_decref (out);
    assert (s_call (admin, "GET", "/admin/audit", auth, NULL, &out) == 200);
    newest = json_array_get (json_object_get (out, "entries"), 0);
    assert (strcmp (json_string_value (json_object_get (newest, "action")), "admin.unauthorized") ==
            0);
    text = json_dumps (out, 0);
    assert (!strstr (text, "not-the-token-xyz") && !strstr (text, key));
    assert (strstr (text, "provider_key.set"));
    free (text);
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
