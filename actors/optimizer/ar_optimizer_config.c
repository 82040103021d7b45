/*  ar_optimizer_config: optimizer.config.json (see the header for the shape and semantics). */
#include "ar_optimizer_config.h"
#include "ar_config_path.h"
#include "ar_buf.h"
#include "ar_optimizer_config_default.h"
#include <assert.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_EXCLUSIVE                                                                                \
    "code_graph and code_skeleton cannot both be enabled (code_graph outlines the files "          \
    "itself); enable one"

//  Matchers of a rule's "when", in canonical order; metadata is separate.
static const char *const s_matcher_names[] = {"endpoints", "models", "users", "teams"};
#define S_MATCHERS 4

typedef struct {
    int kind;       // registry index
    bool enabled;   //
    json_t *params; // borrowed from the canonical document
} s_entry_t;

typedef struct {
    s_entry_t *items;
    size_t count;
} s_list_t;

typedef struct {
    char *endpoint;
    s_list_t list;
} s_endpoint_t;

typedef struct {
    json_t *matchers[S_MATCHERS];    // canonical arrays of globs (borrowed), NULL = not given
    json_t *metadata;                // canonical object key -> array of globs, NULL = not given
    uint64_t enable, disable;        // bit per registry index
    json_t *params[AR_STRATEGY_MAX]; // borrowed; NULL = none for that kind
} s_rule_t;

struct ar_optimizer_config_t {
    json_t *doc; // canonical document; everything below points into it
    s_list_t base;
    s_endpoint_t *endpoints;
    size_t endpoint_count;
    s_rule_t *rules;
    size_t rule_count;
    json_t *defaults[AR_STRATEGY_MAX]; // registry default params, built once
    bool retrieve_tool;                // "retrieveTool": {"enabled": true}
    int retrieve_max_calls;
};

typedef struct {
    const ar_strategy_info_t *info;
    json_t *params; // owned
} s_step_t;

struct ar_pipeline_t {
    size_t count;
    s_step_t steps[AR_STRATEGY_MAX];
};

typedef struct {
    char *error;
    size_t size;
} s_ctx_t;

static int s_fail (s_ctx_t *ctx, const char *path, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    ar_config_path_vfail (ctx->error, ctx->size, path, fmt, args);
    va_end (args);
    return -1;
}

//  Reject members of obj not named in allowed (NULL-terminated): a typo must not pass as
//  "no setting".
static int s_only (s_ctx_t *ctx, const char *path, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp (allowed[i], key) == 0;
        if (known)
            continue;
        char expected[256];
        int n = 0;
        for (size_t i = 0; allowed[i] && n >= 0 && (size_t)n < sizeof expected; i++)
            n += snprintf (expected + n, sizeof expected - n, "%s%s", i ? ", " : "", allowed[i]);
        char where[AR_CONFIG_PATH_MAX];
        ar_config_path_join (where, path, key);
        return s_fail (ctx, where, "unknown field (expected %s)", expected);
    }
    return 0;
}

static int s_kind (s_ctx_t *ctx, const char *path, json_t *value)
{
    if (!json_is_string (value))
        return s_fail (ctx, path, "must be a string, not %s", ar_config_path_type_of (value));
    int kind = ar_strategy_registry_index (json_string_value (value));
    if (kind < 0) {
        char known[512];
        int n = 0;
        for (size_t i = 0; i < ar_strategy_registry_count () && n >= 0 && (size_t)n < sizeof known;
             i++)
            n += snprintf (known + n, sizeof known - n, "%s%s", i ? ", " : "",
                           ar_strategy_registry_at (i)->kind);
        return s_fail (ctx, path, "unknown kind \"%.64s\" (known: %s)", json_string_value (value),
                       known);
    }
    return kind;
}

//  A validated params object in canonical form: reals to 15 significant digits, so the text
//  to_json writes parses back to the very same numbers.
static json_t *s_canon_params (const json_t *params)
{
    json_t *out = json_object ();
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)params, key, value)
    {
        json_t *copy;
        if (json_is_real (value)) {
            char text[32];
            snprintf (text, sizeof text, "%.15g", json_real_value (value));
            copy = json_real (strtod (text, NULL));
        } else
            copy = json_deep_copy (value);
        if (!out || json_object_set_new (out, key, copy) != 0) {
            json_decref (out);
            return NULL;
        }
    }
    return out;
}

//  A strategies[] list: validated into out, its canonical form appended to *canon.
static int s_parse_list (s_ctx_t *ctx, const char *path, json_t *in, s_list_t *out, json_t **canon)
{
    static const char *const fields[] = {"kind", "enabled", "params", NULL};
    if (!json_is_array (in))
        return s_fail (ctx, path, "must be a list, not %s", ar_config_path_type_of (in));
    *canon = json_array ();
    out->items = calloc (json_array_size (in) + 1, sizeof (s_entry_t));
    if (!*canon || !out->items)
        return s_fail (ctx, path, "out of memory");
    size_t i;
    json_t *item;
    json_array_foreach (in, i, item)
    {
        char at[AR_CONFIG_PATH_MAX], field[AR_CONFIG_PATH_MAX];
        ar_config_path_index (at, path, i);
        if (!json_is_object (item))
            return s_fail (ctx, at, "must be an object, not %s", ar_config_path_type_of (item));
        if (s_only (ctx, at, item, fields))
            return -1;
        ar_config_path_join (field, at, "kind");
        json_t *kind_v = json_object_get (item, "kind");
        if (!kind_v)
            return s_fail (ctx, field, "required");
        int kind = s_kind (ctx, field, kind_v);
        if (kind < 0)
            return -1;
        for (size_t j = 0; j < out->count; j++)
            if (out->items[j].kind == kind)
                return s_fail (ctx, field, "duplicate kind \"%s\" (also at %s[%zu])",
                               ar_strategy_registry_at (kind)->kind, path, j);
        ar_config_path_join (field, at, "enabled");
        json_t *enabled = json_object_get (item, "enabled");
        if (!enabled)
            return s_fail (ctx, field, "required");
        if (!json_is_boolean (enabled))
            return s_fail (ctx, field, "must be true or false, not %s",
                           ar_config_path_type_of (enabled));
        ar_config_path_join (field, at, "params");
        json_t *params = json_object_get (item, "params");
        if (params && ar_strategy_registry_check_params (ar_strategy_registry_at (kind), params,
                                                         field, ctx->error, ctx->size))
            return -1;
        json_t *canon_params = params ? s_canon_params (params) : json_object ();
        json_t *entry = json_pack ("{s:s, s:b, s:o}", "kind", ar_strategy_registry_at (kind)->kind,
                                   "enabled", json_is_true (enabled), "params", canon_params);
        if (!entry || json_array_append_new (*canon, entry) != 0)
            return s_fail (ctx, at, "out of memory");
        out->items[out->count++] =
            (s_entry_t){kind, json_is_true (enabled), json_object_get (entry, "params")};
    }
    //  code_graph outlines files itself: running code_skeleton too would outline them twice.
    int skeleton = ar_strategy_registry_index ("code_skeleton");
    int graph = ar_strategy_registry_index ("code_graph");
    size_t on_skeleton = SIZE_MAX, on_graph = SIZE_MAX;
    for (size_t j = 0; j < out->count; j++)
        if (out->items[j].enabled && out->items[j].kind == skeleton)
            on_skeleton = j;
        else if (out->items[j].enabled && out->items[j].kind == graph)
            on_graph = j;
    if (on_skeleton != SIZE_MAX && on_graph != SIZE_MAX) {
        char at[AR_CONFIG_PATH_MAX], field[AR_CONFIG_PATH_MAX];
        ar_config_path_index (at, path, on_skeleton > on_graph ? on_skeleton : on_graph);
        ar_config_path_join (field, at, "enabled");
        return s_fail (ctx, field, S_EXCLUSIVE);
    }
    return 0;
}

//  A glob or a non-empty list of globs, canonically a list.
static json_t *s_parse_matcher (s_ctx_t *ctx, const char *path, json_t *in)
{
    if (json_is_string (in))
        return json_pack ("[O]", in);
    if (!json_is_array (in) || json_array_size (in) == 0) {
        s_fail (ctx, path, "must be a string or a non-empty list of strings");
        return NULL;
    }
    size_t i;
    json_t *item;
    json_array_foreach (in, i, item)
    {
        if (!json_is_string (item)) {
            char at[AR_CONFIG_PATH_MAX];
            ar_config_path_index (at, path, i);
            s_fail (ctx, at, "must be a string, not %s", ar_config_path_type_of (item));
            return NULL;
        }
    }
    return json_deep_copy (in);
}

static uint64_t s_kind_list (s_ctx_t *ctx, const char *path, json_t *in, int *rc)
{
    uint64_t set = 0;
    if (!json_is_array (in)) {
        *rc = s_fail (ctx, path, "must be a list of kinds, not %s", ar_config_path_type_of (in));
        return 0;
    }
    size_t i;
    json_t *item;
    json_array_foreach (in, i, item)
    {
        char at[AR_CONFIG_PATH_MAX];
        ar_config_path_index (at, path, i);
        int kind = s_kind (ctx, at, item);
        if (kind < 0) {
            *rc = -1;
            return 0;
        }
        if (set & (UINT64_C (1) << kind)) {
            *rc = s_fail (ctx, at, "duplicate kind \"%s\"", ar_strategy_registry_at (kind)->kind);
            return 0;
        }
        set |= UINT64_C (1) << kind;
    }
    return set;
}

static int s_parse_rule (s_ctx_t *ctx, const char *path, json_t *in, s_rule_t *rule, json_t **canon)
{
    static const char *const fields[] = {"when", "enable", "disable", "params", NULL};
    static const char *const when_fields[] = {"endpoints", "models",   "users",
                                              "teams",     "metadata", NULL};
    char field[AR_CONFIG_PATH_MAX], at[AR_CONFIG_PATH_MAX];
    if (!json_is_object (in))
        return s_fail (ctx, path, "must be an object, not %s", ar_config_path_type_of (in));
    if (s_only (ctx, path, in, fields))
        return -1;
    *canon = json_object ();
    if (!*canon)
        return s_fail (ctx, path, "out of memory");

    ar_config_path_join (field, path, "when");
    json_t *when = json_object_get (in, "when");
    if (!when)
        return s_fail (ctx, field, "required (use {} to match every request)");
    if (!json_is_object (when))
        return s_fail (ctx, field, "must be an object, not %s", ar_config_path_type_of (when));
    if (s_only (ctx, field, when, when_fields))
        return -1;
    json_t *canon_when = json_object ();
    json_object_set_new (*canon, "when", canon_when);
    for (size_t m = 0; m < S_MATCHERS; m++) {
        json_t *value = json_object_get (when, s_matcher_names[m]);
        if (!value)
            continue;
        ar_config_path_join (at, field, s_matcher_names[m]);
        json_t *list = s_parse_matcher (ctx, at, value);
        if (!list)
            return -1;
        json_object_set_new (canon_when, s_matcher_names[m], list);
        rule->matchers[m] = list;
    }
    json_t *metadata = json_object_get (when, "metadata");
    if (metadata) {
        char mpath[AR_CONFIG_PATH_MAX];
        ar_config_path_join (mpath, field, "metadata");
        if (!json_is_object (metadata) || json_object_size (metadata) == 0)
            return s_fail (ctx, mpath, "must be a non-empty object of key: glob or list of globs");
        json_t *canon_meta = json_object ();
        json_object_set_new (canon_when, "metadata", canon_meta);
        rule->metadata = canon_meta;
        const char *key;
        json_t *value;
        json_object_foreach (metadata, key, value)
        {
            ar_config_path_key (at, mpath, key);
            json_t *list = s_parse_matcher (ctx, at, value);
            if (!list)
                return -1;
            json_object_set_new (canon_meta, key, list);
        }
    }

    static const char *const actions[] = {"enable", "disable"};
    for (size_t a = 0; a < 2; a++) {
        json_t *value = json_object_get (in, actions[a]);
        if (!value)
            continue;
        ar_config_path_join (at, path, actions[a]);
        int rc = 0;
        uint64_t set = s_kind_list (ctx, at, value, &rc);
        if (rc)
            return -1;
        uint64_t both = (UINT64_C (1) << ar_strategy_registry_index ("code_skeleton")) |
                        (UINT64_C (1) << ar_strategy_registry_index ("code_graph"));
        if (a == 0 && (set & both) == both)
            return s_fail (ctx, at, S_EXCLUSIVE);
        *(a ? &rule->disable : &rule->enable) = set;
        json_object_set_new (*canon, actions[a], json_deep_copy (value));
    }

    json_t *params = json_object_get (in, "params");
    if (params) {
        ar_config_path_join (field, path, "params");
        if (!json_is_object (params))
            return s_fail (ctx, field, "must be an object of kind: params, not %s",
                           ar_config_path_type_of (params));
        json_t *canon_params = json_object ();
        json_object_set_new (*canon, "params", canon_params);
        const char *key;
        json_t *value;
        json_object_foreach (params, key, value)
        {
            ar_config_path_join (at, field, key);
            json_t *name = json_string (key);
            int kind = s_kind (ctx, at, name);
            json_decref (name);
            if (kind < 0)
                return -1;
            if (ar_strategy_registry_check_params (ar_strategy_registry_at (kind), value, at,
                                                   ctx->error, ctx->size))
                return -1;
            json_t *copy = s_canon_params (value);
            if (!copy || json_object_set_new (canon_params, key, copy) != 0)
                return s_fail (ctx, at, "out of memory");
            rule->params[kind] = copy;
        }
    }
    return 0;
}

static int s_parse_overrides (s_ctx_t *ctx, ar_optimizer_config_t *self, json_t *in, json_t *canon)
{
    static const char *const fields[] = {"byEndpoint", "rules", NULL};
    static const char *const endpoint_fields[] = {"strategies", NULL};
    const char *path = "overrides";
    char field[AR_CONFIG_PATH_MAX], at[AR_CONFIG_PATH_MAX], list_path[AR_CONFIG_PATH_MAX];
    if (!json_is_object (in))
        return s_fail (ctx, path, "must be an object, not %s", ar_config_path_type_of (in));
    if (s_only (ctx, path, in, fields))
        return -1;

    json_t *by_endpoint = json_object_get (in, "byEndpoint");
    json_t *canon_by = json_object_get (canon, "byEndpoint");
    if (by_endpoint) {
        ar_config_path_join (field, path, "byEndpoint");
        if (!json_is_object (by_endpoint))
            return s_fail (ctx, field, "must be an object of endpoint: {\"strategies\": [...]}");
        self->endpoints = calloc (json_object_size (by_endpoint) + 1, sizeof (s_endpoint_t));
        if (!self->endpoints)
            return s_fail (ctx, field, "out of memory");
        const char *key;
        json_t *value;
        json_object_foreach (by_endpoint, key, value)
        {
            ar_config_path_key (at, field, key);
            if (key[0] != '/')
                return s_fail (ctx, at, "an endpoint is a path starting with \"/\"");
            if (!json_is_object (value))
                return s_fail (ctx, at, "must be an object, not %s",
                               ar_config_path_type_of (value));
            if (s_only (ctx, at, value, endpoint_fields))
                return -1;
            ar_config_path_join (list_path, at, "strategies");
            json_t *list = json_object_get (value, "strategies");
            if (!list)
                return s_fail (ctx, list_path, "required");
            s_endpoint_t *ep = &self->endpoints[self->endpoint_count++];
            ep->endpoint = strdup (key);
            json_t *canon_list = NULL;
            int rc = ep->endpoint ? s_parse_list (ctx, list_path, list, &ep->list, &canon_list)
                                  : s_fail (ctx, at, "out of memory");
            if (canon_list)
                json_object_set_new (canon_by, key, json_pack ("{s:o}", "strategies", canon_list));
            if (rc)
                return -1;
        }
    }

    json_t *rules = json_object_get (in, "rules");
    json_t *canon_rules = json_object_get (canon, "rules");
    if (rules) {
        ar_config_path_join (field, path, "rules");
        if (!json_is_array (rules))
            return s_fail (ctx, field, "must be a list, not %s", ar_config_path_type_of (rules));
        self->rules = calloc (json_array_size (rules) + 1, sizeof (s_rule_t));
        if (!self->rules)
            return s_fail (ctx, field, "out of memory");
        size_t i;
        json_t *rule;
        json_array_foreach (rules, i, rule)
        {
            ar_config_path_index (at, field, i);
            json_t *canon_rule = NULL;
            int rc = s_parse_rule (ctx, at, rule, &self->rules[self->rule_count++], &canon_rule);
            if (canon_rule)
                json_array_append_new (canon_rules, canon_rule);
            if (rc)
                return -1;
        }
    }
    return 0;
}

//  "retrieveTool": {"enabled": bool, "maxCalls": 1..8}: offer the model a tool that fetches
//  elided originals, answered by the gateway. Off unless given.
static int s_parse_retrieve_tool (s_ctx_t *ctx, ar_optimizer_config_t *self, json_t *in)
{
    static const char *const fields[] = {"enabled", "maxCalls", NULL};
    if (!json_is_object (in))
        return s_fail (ctx, "retrieveTool", "must be an object, not %s",
                       ar_config_path_type_of (in));
    if (s_only (ctx, "retrieveTool", in, fields))
        return -1;
    json_t *enabled = json_object_get (in, "enabled");
    if (!enabled)
        return s_fail (ctx, "retrieveTool.enabled", "required");
    if (!json_is_boolean (enabled))
        return s_fail (ctx, "retrieveTool.enabled", "must be true or false, not %s",
                       ar_config_path_type_of (enabled));
    json_t *max = json_object_get (in, "maxCalls");
    json_int_t calls = 3;
    if (max) {
        if (!json_is_integer (max) || json_integer_value (max) < 1 || json_integer_value (max) > 8)
            return s_fail (ctx, "retrieveTool.maxCalls", "must be an integer from 1 to 8");
        calls = json_integer_value (max);
    }
    self->retrieve_tool = json_is_true (enabled);
    self->retrieve_max_calls = (int)calls;
    json_object_set_new (
        self->doc, "retrieveTool",
        json_pack ("{s:b, s:I}", "enabled", self->retrieve_tool, "maxCalls", calls));
    return 0;
}

bool ar_optimizer_config_retrieve_tool (const ar_optimizer_config_t *self, int *max_calls)
{
    if (max_calls)
        *max_calls = self->retrieve_max_calls;
    return self->retrieve_tool;
}

ar_optimizer_config_t *ar_optimizer_config_parse (const char *json, size_t len, char *error,
                                                  size_t error_size)
{
    static const char *const fields[] = {"$schema", "strategies", "overrides", "retrieveTool",
                                         NULL};
    s_ctx_t ctx = {error, error_size};
    if (error && error_size)
        *error = 0;
    if (!json) {
        s_fail (&ctx, "(document)", "missing");
        return NULL;
    }
    if (len > AR_OPTIMIZER_CONFIG_MAX) {
        s_fail (&ctx, "(document)", "larger than %d bytes", AR_OPTIMIZER_CONFIG_MAX);
        return NULL;
    }
    json_error_t jerr;
    //  Duplicate keys are an error, not last-one-wins: two "enabled" in one entry is a mistake.
    json_t *in = json_loadb (json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!in) {
        char where[64];
        snprintf (where, sizeof where, "(document) line %d column %d", jerr.line, jerr.column);
        s_fail (&ctx, where, "%s", jerr.text);
        return NULL;
    }
    ar_optimizer_config_t *self = calloc (1, sizeof *self);
    json_t *canon_list = NULL;
    int rc = self ? 0 : s_fail (&ctx, "(document)", "out of memory");
    if (rc == 0 && !json_is_object (in))
        rc = s_fail (&ctx, "(document)", "must be an object, not %s", ar_config_path_type_of (in));
    if (rc == 0)
        rc = s_only (&ctx, "", in, fields);
    json_t *schema = rc == 0 ? json_object_get (in, "$schema") : NULL;
    if (schema && !json_is_string (schema))
        rc = s_fail (&ctx, "$schema", "must be a string, not %s", ar_config_path_type_of (schema));
    if (rc == 0) {
        self->doc = json_object ();
        if (schema)
            json_object_set (self->doc, "$schema", schema);
        json_t *strategies = json_object_get (in, "strategies");
        if (!strategies)
            rc = s_fail (&ctx, "strategies", "required");
        else
            rc = s_parse_list (&ctx, "strategies", strategies, &self->base, &canon_list);
        if (canon_list)
            json_object_set_new (self->doc, "strategies", canon_list);
    }
    if (rc == 0) {
        json_t *canon = json_pack ("{s:{}, s:[]}", "byEndpoint", "rules");
        json_object_set_new (self->doc, "overrides", canon);
        json_t *overrides = json_object_get (in, "overrides");
        if (overrides)
            rc = s_parse_overrides (&ctx, self, overrides, canon);
    }
    json_t *retrieve = rc == 0 ? json_object_get (in, "retrieveTool") : NULL;
    if (retrieve)
        rc = s_parse_retrieve_tool (&ctx, self, retrieve);
    for (size_t k = 0; rc == 0 && k < ar_strategy_registry_count (); k++) {
        self->defaults[k] = ar_strategy_registry_default_params (ar_strategy_registry_at (k));
        if (!self->defaults[k])
            rc = s_fail (&ctx, "(document)", "out of memory");
    }
    json_decref (in);
    if (rc)
        ar_optimizer_config_destroy (&self);
    return self;
}

ar_optimizer_config_t *ar_optimizer_config_default (void)
{
    return ar_optimizer_config_parse (s_default_config, strlen (s_default_config), NULL, 0);
}

ar_optimizer_config_t *ar_optimizer_config_load_file (const char *path, char *error,
                                                      size_t error_size)
{
    if (error && error_size)
        *error = 0;
    FILE *file = fopen (path, "rb");
    if (!file) {
        if (error && error_size)
            snprintf (error, error_size, "%s: %s", path, strerror (errno));
        return NULL;
    }
    char *text = malloc (AR_OPTIMIZER_CONFIG_MAX + 1);
    size_t len = text ? fread (text, 1, AR_OPTIMIZER_CONFIG_MAX + 1, file) : 0;
    bool failed = !text || ferror (file);
    fclose (file);
    ar_optimizer_config_t *self = NULL;
    if (failed) {
        if (error && error_size)
            snprintf (error, error_size, "%s: cannot read", path);
    } else if (len > AR_OPTIMIZER_CONFIG_MAX) {
        if (error && error_size)
            snprintf (error, error_size, "%s: larger than %d bytes", path, AR_OPTIMIZER_CONFIG_MAX);
    } else {
        char reason[512];
        self = ar_optimizer_config_parse (text, len, reason, sizeof reason);
        if (!self && error && error_size)
            snprintf (error, error_size, "%s: %s", path, reason);
    }
    free (text);
    return self;
}

ar_optimizer_config_t *ar_optimizer_config_load_env (char *error, size_t error_size)
{
    const char *path = getenv ("ANYRAY_OPTIMIZER_CONFIG");
    struct stat st;
    if (!path || !*path || (stat (path, &st) != 0 && errno == ENOENT))
        return ar_optimizer_config_default ();
    return ar_optimizer_config_load_file (path, error, error_size);
}

void ar_optimizer_config_destroy (ar_optimizer_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_optimizer_config_t *self = *self_p;
    free (self->base.items);
    for (size_t i = 0; i < self->endpoint_count; i++) {
        free (self->endpoints[i].endpoint);
        free (self->endpoints[i].list.items);
    }
    free (self->endpoints);
    free (self->rules);
    for (size_t k = 0; k < AR_STRATEGY_MAX; k++)
        json_decref (self->defaults[k]);
    json_decref (self->doc);
    free (self);
    *self_p = NULL;
}

char *ar_optimizer_config_to_json (const ar_optimizer_config_t *self)
{
    return json_dumps (self->doc, JSON_INDENT (2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (15));
}

const json_t *ar_optimizer_config_document (const ar_optimizer_config_t *self)
{
    return self->doc;
}

//  --------------------------------------------------------------------------------------------
//  Resolution

static bool s_match_list (const json_t *globs, const char *value)
{
    if (!value)
        return false; // an absent fact matches nothing, not even "*"
    size_t i;
    json_t *glob;
    json_array_foreach (globs, i,
                        glob) if (fnmatch (json_string_value (glob), value, 0) == 0) return true;
    return false;
}

static bool s_rule_matches (const s_rule_t *rule, const ar_request_facts_t *facts)
{
    static const ar_request_facts_t none = {0};
    if (!facts)
        facts = &none;
    const char *values[S_MATCHERS] = {facts->endpoint, facts->model, facts->user, facts->team};
    for (size_t m = 0; m < S_MATCHERS; m++)
        if (rule->matchers[m] && !s_match_list (rule->matchers[m], values[m]))
            return false;
    if (rule->metadata) {
        const char *key;
        json_t *globs;
        json_object_foreach (rule->metadata, key, globs)
        {
            const char *value = NULL;
            for (size_t i = 0; facts->metadata && i < facts->metadata_count && !value; i++)
                if (facts->metadata[i].key && strcmp (facts->metadata[i].key, key) == 0)
                    value = facts->metadata[i].value;
            if (!s_match_list (globs, value))
                return false;
        }
    }
    return true;
}

void ar_pipeline_destroy (ar_pipeline_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_pipeline_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        json_decref (self->steps[i].params);
    free (self);
    *self_p = NULL;
}

static int s_overlay (json_t *out, const json_t *layer)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)layer, key,
                         value) if (json_object_set_new (out, key, json_deep_copy (value)) !=
                                    0) return -1;
    return 0;
}

//  registry defaults <- entry params <- each matching rule's params in order. Deep copies: the
//  pipeline shares nothing with the config, and resolving never touches the config's
//  reference counts, so one config may be resolved from several threads at once.
static json_t *s_params_of (const ar_optimizer_config_t *self, int kind, const json_t *entry,
                            const bool *matched)
{
    json_t *out = json_deep_copy (self->defaults[kind]);
    int rc = out ? 0 : -1;
    if (rc == 0 && entry)
        rc = s_overlay (out, entry);
    for (size_t r = 0; rc == 0 && r < self->rule_count; r++)
        if (matched[r] && self->rules[r].params[kind])
            rc = s_overlay (out, self->rules[r].params[kind]);
    if (rc) {
        json_decref (out);
        return NULL;
    }
    return out;
}

ar_pipeline_t *ar_optimizer_config_resolve (const ar_optimizer_config_t *self,
                                            const ar_request_facts_t *facts)
{
    const s_list_t *list = &self->base;
    for (size_t i = 0; facts && facts->endpoint && i < self->endpoint_count; i++)
        if (strcmp (self->endpoints[i].endpoint, facts->endpoint) == 0)
            list = &self->endpoints[i].list;

    //  Fold the matching rules: enable/disable as sets (disable wins whatever the order);
    //  their params are layered in rule order below.
    bool *matched = calloc (self->rule_count + 1, sizeof (bool));
    if (!matched)
        return NULL;
    uint64_t enable = 0, disable = 0;
    for (size_t r = 0; r < self->rule_count; r++) {
        matched[r] = s_rule_matches (&self->rules[r], facts);
        if (matched[r]) {
            enable |= self->rules[r].enable;
            disable |= self->rules[r].disable;
        }
    }

    //  Execution order: the list's, with kinds a rule enables but the list lacks inserted
    //  before the first entry the registry orders after them.
    int order[AR_STRATEGY_MAX];
    const s_entry_t *entry[AR_STRATEGY_MAX];
    size_t count = 0;
    uint64_t listed = 0;
    for (size_t i = 0; i < list->count; i++) {
        order[count] = list->items[i].kind;
        entry[count++] = &list->items[i];
        listed |= UINT64_C (1) << list->items[i].kind;
    }
    for (size_t k = 0; k < ar_strategy_registry_count (); k++) {
        if (!(enable & (UINT64_C (1) << k)) || (listed & (UINT64_C (1) << k)))
            continue;
        size_t at = 0;
        while (at < count && order[at] < (int)k)
            at++;
        memmove (&order[at + 1], &order[at], (count - at) * sizeof order[0]);
        memmove (&entry[at + 1], &entry[at], (count - at) * sizeof entry[0]);
        order[at] = (int)k;
        entry[at] = NULL;
        count++;
    }

    //  Rules may turn on code_graph where the list has code_skeleton (the validator refuses
    //  both in one list or one rule): then code_graph, the narrower choice, runs alone.
    uint64_t on_set = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t bit = UINT64_C (1) << order[i];
        if (((entry[i] && entry[i]->enabled) || (enable & bit)) && !(disable & bit))
            on_set |= bit;
    }
    int skeleton = ar_strategy_registry_index ("code_skeleton");
    int graph = ar_strategy_registry_index ("code_graph");
    if ((on_set & (UINT64_C (1) << graph)) && (on_set & (UINT64_C (1) << skeleton)))
        on_set &= ~(UINT64_C (1) << skeleton);

    ar_pipeline_t *pipeline = calloc (1, sizeof *pipeline);
    for (size_t i = 0; pipeline && i < count; i++) {
        uint64_t bit = UINT64_C (1) << order[i];
        if (!(on_set & bit))
            continue;
        s_step_t *step = &pipeline->steps[pipeline->count];
        step->info = ar_strategy_registry_at (order[i]);
        step->params = s_params_of (self, order[i], entry[i] ? entry[i]->params : NULL, matched);
        if (!step->params)
            ar_pipeline_destroy (&pipeline);
        else
            pipeline->count++;
    }
    free (matched);
    return pipeline;
}

size_t ar_pipeline_size (const ar_pipeline_t *self)
{
    return self ? self->count : 0;
}

const ar_strategy_info_t *ar_pipeline_strategy (const ar_pipeline_t *self, size_t i)
{
    return self && i < self->count ? self->steps[i].info : NULL;
}

const char *ar_pipeline_kind (const ar_pipeline_t *self, size_t i)
{
    return self && i < self->count ? self->steps[i].info->kind : NULL;
}

const json_t *ar_pipeline_params (const ar_pipeline_t *self, size_t i)
{
    return self && i < self->count ? self->steps[i].params : NULL;
}

char *ar_pipeline_to_json (const ar_pipeline_t *self)
{
    json_t *steps = json_array ();
    for (size_t i = 0; steps && i < self->count; i++)
        json_array_append_new (steps, json_pack ("{s:s, s:O}", "kind", self->steps[i].info->kind,
                                                 "params", self->steps[i].params));
    char *text =
        steps ? json_dumps (steps, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (15))
              : NULL;
    json_decref (steps);
    return text;
}

//  --------------------------------------------------------------------------------------------
//  Self-test

static ar_optimizer_config_t *s_ok (const char *text)
{
    char error[512];
    ar_optimizer_config_t *self =
        ar_optimizer_config_parse (text, strlen (text), error, sizeof error);
    if (!self)
        fprintf (stderr, "unexpected config error: %s\n", error);
    assert (self);
    return self;
}

static void s_bad (const char *text, const char *expected)
{
    char error[512];
    ar_optimizer_config_t *self =
        ar_optimizer_config_parse (text, strlen (text), error, sizeof error);
    if (self || strcmp (error, expected) != 0)
        fprintf (stderr, "config %s\n  want error: %s\n  got: %s\n", text, expected,
                 self ? "(accepted)" : error);
    assert (!self);
    assert (strcmp (error, expected) == 0);
}

//  The pipeline as "kind,kind,..." for comparisons.
static const char *s_kinds (const ar_optimizer_config_t *self, const ar_request_facts_t *facts)
{
    static char text[512];
    ar_pipeline_t *pipeline = ar_optimizer_config_resolve (self, facts);
    assert (pipeline);
    text[0] = 0;
    for (size_t i = 0; i < ar_pipeline_size (pipeline); i++)
        snprintf (text + strlen (text), sizeof text - strlen (text), "%s%s", i ? "," : "",
                  ar_pipeline_kind (pipeline, i));
    ar_pipeline_destroy (&pipeline);
    return text;
}

static bool s_has (const ar_optimizer_config_t *self, const ar_request_facts_t *facts,
                   const char *kind)
{
    const char *kinds = s_kinds (self, facts);
    size_t n = strlen (kind);
    for (const char *at = strstr (kinds, kind); at; at = strstr (at + 1, kind))
        if ((at == kinds || at[-1] == ',') && (at[n] == ',' || at[n] == 0))
            return true;
    return false;
}

//  The params of kind in the resolved pipeline as compact JSON ("" when not in it).
static const char *s_params (const ar_optimizer_config_t *self, const ar_request_facts_t *facts,
                             const char *kind)
{
    static char text[512];
    text[0] = 0;
    ar_pipeline_t *pipeline = ar_optimizer_config_resolve (self, facts);
    assert (pipeline);
    for (size_t i = 0; i < ar_pipeline_size (pipeline); i++)
        if (strcmp (ar_pipeline_kind (pipeline, i), kind) == 0) {
            char *dump = json_dumps (ar_pipeline_params (pipeline, i),
                                     JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (15));
            snprintf (text, sizeof text, "%s", dump);
            free (dump);
        }
    ar_pipeline_destroy (&pipeline);
    return text;
}

//  to_json -> parse -> to_json is byte-identical, and the documents are equal.
static void s_round_trip (const ar_optimizer_config_t *self)
{
    char *first = ar_optimizer_config_to_json (self);
    assert (first);
    ar_optimizer_config_t *again = s_ok (first);
    char *second = ar_optimizer_config_to_json (again);
    assert (second && strcmp (first, second) == 0);
    assert (json_equal ((json_t *)ar_optimizer_config_document (self),
                        (json_t *)ar_optimizer_config_document (again)));
    free (first);
    free (second);
    ar_optimizer_config_destroy (&again);
}

#define S_PAGE_STRATEGIES                                                                          \
    "\"strategies\": ["                                                                            \
    "{ \"kind\": \"semantic_cache\", \"enabled\": false, \"params\": {} },"                        \
    "{ \"kind\": \"vision_ocr\", \"enabled\": false, \"params\": {} },"                            \
    "{ \"kind\": \"prompt_compression\", \"enabled\": true, \"params\": {} },"                     \
    "{ \"kind\": \"context_compression\", \"enabled\": true, \"params\": {} },"                    \
    "{ \"kind\": \"code_skeleton\", \"enabled\": true, \"params\": {} },"                          \
    "{ \"kind\": \"code_graph\", \"enabled\": false, \"params\": {} },"                            \
    "{ \"kind\": \"relevance_filter\", \"enabled\": false, \"params\": {} },"                      \
    "{ \"kind\": \"window_budget\", \"enabled\": true, \"params\": { \"maxTokens\": 24000 } },"    \
    "{ \"kind\": \"tool_pruning\", \"enabled\": true, \"params\": {} },"                           \
    "{ \"kind\": \"param_tuning\", \"enabled\": true, \"params\": { \"maxTokensCap\": 4096 } }"    \
    "]"

//  window_budget's resolved params after maxTokens: the registry defaults of the rest.
#define S_WB_REST ",\"cropReasoning\":true,\"reasoningTurns\":2,\"dropQuotedCode\":true}"

#define S_DEFAULT_PIPELINE                                                                         \
    "prompt_compression,context_compression,code_skeleton,window_budget,tool_pruning,param_tuning"

static void s_test_default (bool verbose)
{
    //  The embedded copy is the checked-in file, byte for byte.
    size_t len;
    char *file = ar_buf_read_file (AR_OPTIMIZER_CONFIG_DIR "/optimizer.config.default.json", &len);
    assert (file);
    assert (len == strlen (s_default_config) && memcmp (file, s_default_config, len) == 0);
    free (file);

    //  It is the Configure page's default pipeline, exactly.
    ar_optimizer_config_t *self = ar_optimizer_config_default ();
    assert (self);
    json_t *page = json_loads ("{" S_PAGE_STRATEGIES "}", 0, NULL);
    assert (page);
    assert (json_equal (json_object_get (page, "strategies"),
                        json_object_get (ar_optimizer_config_document (self), "strategies")));
    json_decref (page);
    //  ... and it agrees with the registry's defaults, kind by kind.
    json_t *list = json_object_get (ar_optimizer_config_document (self), "strategies");
    assert (json_array_size (list) == ar_strategy_registry_count ());
    for (size_t i = 0; i < ar_strategy_registry_count (); i++) {
        json_t *entry = json_array_get (list, i);
        const ar_strategy_info_t *info = ar_strategy_registry_at (i);
        assert (strcmp (json_string_value (json_object_get (entry, "kind")), info->kind) == 0);
        assert (json_is_true (json_object_get (entry, "enabled")) == info->enabled);
    }
    assert (strcmp (s_kinds (self, NULL), S_DEFAULT_PIPELINE) == 0);
    //  Resolved params carry the registry defaults under the entry's own.
    assert (strcmp (s_params (self, NULL, "window_budget"), "{\"maxTokens\":24000" S_WB_REST) == 0);
    assert (strcmp (s_params (self, NULL, "param_tuning"), "{\"maxTokensCap\":4096}") == 0);
    assert (strcmp (s_params (self, NULL, "tool_pruning"), "{\"keep\":3}") == 0);
    ar_pipeline_t *pipeline = ar_optimizer_config_resolve (self, NULL);
    assert (ar_pipeline_size (pipeline) == 6);
    //  A kind is available exactly when its strategy is built.
    for (size_t i = 0; i < ar_pipeline_size (pipeline); i++)
        assert (ar_pipeline_strategy (pipeline, i)->available ==
                (ar_pipeline_strategy (pipeline, i)->strategy != NULL));
    assert (ar_pipeline_strategy (pipeline, 5)->available); // param_tuning
    assert (ar_pipeline_kind (pipeline, 6) == NULL && ar_pipeline_params (pipeline, 6) == NULL);
    char *steps = ar_pipeline_to_json (pipeline);
    assert (strstr (steps,
                    "{\"kind\":\"window_budget\",\"params\":{\"maxTokens\":24000" S_WB_REST "}"));
    if (verbose)
        printf ("default pipeline: %s\n", steps);
    free (steps);
    ar_pipeline_destroy (&pipeline);
    ar_pipeline_destroy (&pipeline); // idempotent
    s_round_trip (self);
    ar_optimizer_config_destroy (&self);
    ar_optimizer_config_destroy (&self);
}

static void s_test_page_rules (void)
{
    //  The targeting example of the Configure page, on the default pipeline.
    ar_optimizer_config_t *self = s_ok ("{" S_PAGE_STRATEGIES ","
                                        "\"overrides\": { \"rules\": ["
                                        "  { \"when\": { \"teams\": [\"platform\"],"
                                        "                \"models\": [\"gpt-4o*\"] },"
                                        "    \"disable\": [\"prompt_compression\"] },"
                                        "  { \"when\": { \"endpoints\": [\"/v1/embeddings\"] },"
                                        "    \"enable\": [\"semantic_cache\"],"
                                        "    \"params\": { \"semantic_cache\": "
                                        "                  { \"threshold\": 0.95 } } } ] } }");
    ar_request_facts_t facts = {"/v1/chat/completions", "gpt-4o-mini", NULL, "platform", NULL, 0};
    assert (!s_has (self, &facts, "prompt_compression"));
    assert (strcmp (s_kinds (self, &facts),
                    "context_compression,code_skeleton,window_budget,tool_pruning,param_tuning") ==
            0);
    facts.model = "gpt-4o"; // "*" matches the empty tail
    assert (!s_has (self, &facts, "prompt_compression"));
    facts.model = "claude-x"; // both matchers must match
    assert (s_has (self, &facts, "prompt_compression"));
    facts.model = "gpt-4o-mini";
    facts.team = "research";
    assert (s_has (self, &facts, "prompt_compression"));
    facts.team = NULL; // no team: the teams matcher cannot match
    assert (s_has (self, &facts, "prompt_compression"));
    assert (!s_has (self, &facts, "semantic_cache"));

    facts = (ar_request_facts_t){"/v1/embeddings", "text-embedding-3-small", NULL, NULL, NULL, 0};
    assert (strcmp (s_kinds (self, &facts), "semantic_cache," S_DEFAULT_PIPELINE) == 0);
    assert (strcmp (s_params (self, &facts, "semantic_cache"),
                    "{\"threshold\":0.95,\"ttlSeconds\":86400}") == 0);
    ar_pipeline_t *pipeline = ar_optimizer_config_resolve (self, &facts);
    assert (json_real_value (json_object_get (ar_pipeline_params (pipeline, 0), "threshold")) ==
            0.95);
    ar_pipeline_destroy (&pipeline);
    //  Both rules at once: an embeddings call from platform on gpt-4o.
    facts.team = "platform";
    facts.model = "gpt-4o";
    assert (strcmp (s_kinds (self, &facts),
                    "semantic_cache,context_compression,code_skeleton,window_budget,tool_pruning,"
                    "param_tuning") == 0);
    //  No facts at all: no rule with matchers applies.
    assert (strcmp (s_kinds (self, NULL), S_DEFAULT_PIPELINE) == 0);
    s_round_trip (self);
    ar_optimizer_config_destroy (&self);
}

static void s_test_semantics (void)
{
    //  disable beats enable across matching rules, in either order and within one rule.
    ar_optimizer_config_t *self = s_ok (
        "{\"strategies\": [{\"kind\":\"tool_pruning\",\"enabled\":false},"
        "                  {\"kind\":\"param_tuning\",\"enabled\":true}],"
        " \"overrides\": {\"rules\": ["
        "  {\"when\": {\"models\": \"a*\"}, \"disable\": [\"tool_pruning\", \"param_tuning\"]},"
        "  {\"when\": {\"models\": \"*\"}, \"enable\": [\"tool_pruning\"]},"
        "  {\"when\": {\"users\": \"u1\"}, \"enable\": [\"param_tuning\"]},"
        "  {\"when\": {\"users\": \"u2\"}, \"enable\": [\"window_budget\"],"
        "   \"disable\": [\"window_budget\"]}]}}");
    ar_request_facts_t facts = {0};
    facts.model = "abc";
    assert (strcmp (s_kinds (self, &facts), "") == 0);
    facts.user = "u1"; // enabled by a later rule: still disabled
    assert (strcmp (s_kinds (self, &facts), "") == 0);
    facts.model = "xyz";
    assert (strcmp (s_kinds (self, &facts), "tool_pruning,param_tuning") == 0);
    facts.user = "u2";
    assert (strcmp (s_kinds (self, &facts), "tool_pruning,param_tuning") == 0);
    facts.model = NULL; // "*" does not match a missing model
    assert (strcmp (s_kinds (self, &facts), "param_tuning") == 0);
    ar_optimizer_config_destroy (&self);

    //  byEndpoint replaces the base list (order, enabled and params); rules still layer on it;
    //  a kind a rule enables that the list lacks goes where the registry order puts it.
    self =
        s_ok ("{" S_PAGE_STRATEGIES ", \"overrides\": {"
              " \"byEndpoint\": {"
              "  \"/v1/messages\": {\"strategies\": ["
              "    {\"kind\":\"param_tuning\",\"enabled\":true,\"params\":{\"maxTokensCap\":100}},"
              "    {\"kind\":\"window_budget\",\"enabled\":true},"
              "    {\"kind\":\"code_graph\",\"enabled\":false}]},"
              "  \"/v1/completions\": {\"strategies\": []},"
              "  \"/v1/x\": {\"strategies\": ["
              "    {\"kind\":\"window_budget\",\"enabled\":true},"
              "    {\"kind\":\"param_tuning\",\"enabled\":true}]}},"
              " \"rules\": ["
              "  {\"when\": {\"users\": \"alice\"}, \"enable\": [\"semantic_cache\"]},"
              "  {\"when\": {\"users\": \"bob\"}, \"enable\": [\"tool_pruning\", \"code_graph\"]}"
              " ]}}");
    facts = (ar_request_facts_t){"/v1/messages", NULL, NULL, NULL, NULL, 0};
    assert (strcmp (s_kinds (self, &facts), "param_tuning,window_budget") == 0);
    assert (strcmp (s_params (self, &facts, "param_tuning"), "{\"maxTokensCap\":100}") == 0);
    assert (strcmp (s_params (self, &facts, "window_budget"), "{\"maxTokens\":24000" S_WB_REST) ==
            0);
    facts.endpoint = "/v1/completions";
    assert (strcmp (s_kinds (self, &facts), "") == 0);
    facts.endpoint = "/v1/messages/"; // exact match only
    assert (strcmp (s_kinds (self, &facts), S_DEFAULT_PIPELINE) == 0);
    facts.endpoint = "/v1/messages";
    facts.user = "alice";
    assert (strcmp (s_kinds (self, &facts), "semantic_cache,param_tuning,window_budget") == 0);
    facts.user = "bob"; // code_graph is listed (off): enabled in place
    assert (strcmp (s_kinds (self, &facts), "tool_pruning,param_tuning,window_budget,code_graph") ==
            0);
    facts.endpoint = "/v1/x";
    assert (strcmp (s_kinds (self, &facts), "code_graph,window_budget,tool_pruning,param_tuning") ==
            0);
    facts.endpoint = "/v1/completions";
    assert (strcmp (s_kinds (self, &facts), "code_graph,tool_pruning") == 0);
    s_round_trip (self);
    ar_optimizer_config_destroy (&self);

    //  params: member-wise merge over the entry's params, later rules over earlier ones; rule
    //  params alone do not enable a kind.
    self = s_ok (
        "{" S_PAGE_STRATEGIES ", \"overrides\": {\"rules\": ["
        " {\"when\": {\"teams\": \"*\"}, \"params\": {\"window_budget\": {\"maxTokens\": 8000},"
        "   \"param_tuning\": {\"temperatureMax\": 0.5}, \"semantic_cache\": {\"threshold\": "
        "0.5}}},"
        " {\"when\": {\"teams\": \"small\"}, \"params\": {\"window_budget\": {\"maxTokens\": "
        "4000}}},"
        " {\"when\": {}, \"params\": {\"tool_pruning\": {\"keep\": 3}}}]}}");
    facts = (ar_request_facts_t){0};
    assert (strcmp (s_params (self, &facts, "window_budget"), "{\"maxTokens\":24000" S_WB_REST) ==
            0);
    assert (strcmp (s_params (self, &facts, "tool_pruning"), "{\"keep\":3}") == 0);
    assert (strcmp (s_params (self, NULL, "tool_pruning"), "{\"keep\":3}") == 0);
    facts.team = "big";
    assert (strcmp (s_params (self, &facts, "window_budget"), "{\"maxTokens\":8000" S_WB_REST) ==
            0);
    assert (strcmp (s_params (self, &facts, "param_tuning"),
                    "{\"maxTokensCap\":4096,\"temperatureMax\":0.5}") == 0);
    assert (!s_has (self, &facts, "semantic_cache"));
    facts.team = "small";
    assert (strcmp (s_params (self, &facts, "window_budget"), "{\"maxTokens\":4000" S_WB_REST) ==
            0);
    s_round_trip (self);
    ar_optimizer_config_destroy (&self);

    //  metadata: every key must match; a missing key does not.
    self = s_ok ("{\"strategies\": [{\"kind\":\"tool_pruning\",\"enabled\":true}],"
                 " \"overrides\": {\"rules\": [{\"when\": {\"metadata\": "
                 "   {\"env\": \"prod*\", \"tier\": [\"gold\", \"plat*\"]}}, "
                 "   \"disable\": [\"tool_pruning\"]}]}}");
    ar_fact_pair_t meta[] = {{"tier", "platinum"}, {"env", "production"}, {"x", "y"}};
    facts = (ar_request_facts_t){0};
    facts.metadata = meta;
    facts.metadata_count = 3;
    assert (!s_has (self, &facts, "tool_pruning"));
    meta[0].value = "gold";
    assert (!s_has (self, &facts, "tool_pruning"));
    meta[0].value = "silver";
    assert (s_has (self, &facts, "tool_pruning"));
    meta[0].value = "gold";
    facts.metadata_count = 1; // env missing
    assert (s_has (self, &facts, "tool_pruning"));
    meta[1].key = NULL; // a NULL key is skipped, not dereferenced
    facts.metadata_count = 3;
    assert (s_has (self, &facts, "tool_pruning"));
    s_round_trip (self);
    ar_optimizer_config_destroy (&self);
}

static void s_test_globs (void)
{
    struct {
        const char *glob; // JSON text of the pattern
        const char *value;
        bool match;
    } cases[] = {
        {"\"gpt-4o*\"", "gpt-4o-mini", true},
        {"\"gpt-4o*\"", "gpt-4o", true},
        {"\"gpt-4o*\"", "gpt-4", false},
        {"\"gpt-4o*\"", "GPT-4o", false},   // case-sensitive
        {"\"gpt-4o*\"", "x-gpt-4o", false}, // whole value, anchored
        {"\"gpt-4?\"", "gpt-4o", true},
        {"\"gpt-4?\"", "gpt-4", false},
        {"\"gpt-4?\"", "gpt-4o-mini", false},
        {"\"/v1/*\"", "/v1/chat/completions", true}, // "*" crosses "/"
        {"\"*\"", "", true},
        {"\"\"", "", true},
        {"\"\"", "a", false},
        {"\"*\"", ".hidden", true}, // no special leading dot
        {"\"a\\\\*\"", "a*", true}, // "\*" is a literal star
        {"\"a\\\\*\"", "ab", false},
        {"\"[ab]x\"", "bx", true},
        {"\"[ab]x\"", "cx", false},
        {"\"claude-*-sonnet*\"", "claude-3-5-sonnet-latest", true},
        {"\"exact\"", "exact", true},
        {"\"exact\"", "exactly", false},
        {"[\"x\", \"y*\"]", "yes", true},
        {"[\"x\", \"y*\"]", "no", false},
        {"\"caf\\u00e9*\"", "caf\xc3\xa9 au lait", true}, // UTF-8 bytes compare as bytes
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf (text, sizeof text,
                  "{\"strategies\": [{\"kind\":\"tool_pruning\",\"enabled\":true}],"
                  " \"overrides\": {\"rules\": [{\"when\": {\"models\": %s},"
                  " \"disable\": [\"tool_pruning\"]}]}}",
                  cases[i].glob);
        ar_optimizer_config_t *self = s_ok (text);
        ar_request_facts_t facts = {0};
        facts.model = cases[i].value;
        bool matched = !s_has (self, &facts, "tool_pruning");
        if (matched != cases[i].match)
            fprintf (stderr, "glob %s on \"%s\": want %d\n", cases[i].glob, cases[i].value,
                     cases[i].match);
        assert (matched == cases[i].match);
        ar_optimizer_config_destroy (&self);
    }
}

static void s_test_errors (void)
{
    s_bad ("", "(document) line 1 column 0: '[' or '{' expected near end of file");
    s_bad ("[]", "(document): must be an object, not a list");
    s_bad ("{\"strategies\": [] ,}",
           "(document) line 1 column 20: string or '}' expected near '}'");
    s_bad ("{\"strategies\": [], \"strategies\": []}",
           "(document) line 1 column 31: duplicate object key near '\"strategies\"'");
    s_bad ("{}", "strategies: required");
    s_bad ("{\"strategies\": {}}", "strategies: must be a list, not an object");
    s_bad ("{\"strategies\": [], \"overides\": {}}",
           "overides: unknown field (expected $schema, strategies, overrides, retrieveTool)");
    s_bad ("{\"$schema\": 1, \"strategies\": []}", "$schema: must be a string, not a number");
    s_bad ("{\"strategies\": [1]}", "strategies[0]: must be an object, not a number");
    s_bad ("{\"strategies\": [{\"enabled\": true}]}", "strategies[0].kind: required");
    s_bad ("{\"strategies\": [{\"kind\": 3, \"enabled\": true}]}",
           "strategies[0].kind: must be a string, not a number");
    s_bad ("{\"strategies\": [{\"kind\": \"semantic_cash\", \"enabled\": true}]}",
           "strategies[0].kind: unknown kind \"semantic_cash\" (known: semantic_cache, vision_ocr, "
           "prompt_compression, context_compression, code_skeleton, code_graph, relevance_filter, "
           "window_budget, tool_pruning, param_tuning)");
    s_bad ("{\"strategies\": [{\"kind\": \"tool_pruning\"}]}", "strategies[0].enabled: required");
    s_bad ("{\"strategies\": [{\"kind\": \"tool_pruning\", \"enabled\": \"yes\"}]}",
           "strategies[0].enabled: must be true or false, not a string");
    s_bad ("{\"strategies\": [{\"kind\": \"tool_pruning\", \"enabled\": true, \"param\": {}}]}",
           "strategies[0].param: unknown field (expected kind, enabled, params)");
    s_bad ("{\"strategies\": [{\"kind\": \"tool_pruning\", \"enabled\": true},"
           " {\"kind\": \"tool_pruning\", \"enabled\": false}]}",
           "strategies[1].kind: duplicate kind \"tool_pruning\" (also at strategies[0])");
    s_bad ("{\"strategies\": [{\"kind\": \"tool_pruning\", \"enabled\": true, \"params\": []}]}",
           "strategies[0].params: must be an object");
    s_bad ("{\"strategies\": [{\"kind\": \"window_budget\", \"enabled\": true,"
           " \"params\": {\"maxTokens\": 10}}]}",
           "strategies[0].params.maxTokens: must be an integer from 256 to 10000000");
    s_bad ("{\"strategies\": [{\"kind\": \"tool_pruning\", \"enabled\": true,"
           " \"params\": {\"kep\": 3}}]}",
           "strategies[0].params.kep: unknown param of tool_pruning (known: keep)");
    s_bad ("{\"strategies\": [], \"overrides\": []}", "overrides: must be an object, not a list");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rule\": []}}",
           "overrides.rule: unknown field (expected byEndpoint, rules)");
    s_bad ("{\"strategies\": [], \"overrides\": {\"byEndpoint\": []}}",
           "overrides.byEndpoint: must be an object of endpoint: {\"strategies\": [...]}");
    s_bad ("{\"strategies\": [], \"overrides\": {\"byEndpoint\": {\"v1/chat\": {}}}}",
           "overrides.byEndpoint[\"v1/chat\"]: an endpoint is a path starting with \"/\"");
    s_bad ("{\"strategies\": [], \"overrides\": {\"byEndpoint\": {\"/v1/chat\": []}}}",
           "overrides.byEndpoint[\"/v1/chat\"]: must be an object, not a list");
    s_bad ("{\"strategies\": [], \"overrides\": {\"byEndpoint\": {\"/v1/chat\": {}}}}",
           "overrides.byEndpoint[\"/v1/chat\"].strategies: required");
    s_bad ("{\"strategies\": [], \"overrides\": {\"byEndpoint\": {\"/v\\\"1\": {\"strategies\": [],"
           " \"x\": 1}}}}",
           "overrides.byEndpoint[\"/v\\\"1\"].x: unknown field (expected strategies)");
    s_bad ("{\"strategies\": [], \"overrides\": {\"byEndpoint\": {\"/v1/chat/completions\":"
           " {\"strategies\": [{\"kind\": \"param_tuning\", \"enabled\": true,"
           " \"params\": {\"maxTokensCap\": 0}}]}}}}",
           "overrides.byEndpoint[\"/v1/chat/completions\"].strategies[0].params.maxTokensCap: "
           "must be an integer from 1 to 10000000");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": {}}}",
           "overrides.rules: must be a list, not an object");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [[]]}}",
           "overrides.rules[0]: must be an object, not a list");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{}]}}",
           "overrides.rules[0].when: required (use {} to match every request)");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {}, \"disabled\": []}]}}",
           "overrides.rules[0].disabled: unknown field (expected when, enable, disable, params)");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": \"*\"}]}}",
           "overrides.rules[0].when: must be an object, not a string");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {\"model\": \"x\"}}]}}",
           "overrides.rules[0].when.model: unknown field (expected endpoints, models, users, "
           "teams, metadata)");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {}},"
           " {\"when\": {\"models\": [\"gpt-4o*\", 4]}}]}}",
           "overrides.rules[1].when.models[1]: must be a string, not a number");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {}},"
           " {\"when\": {\"models\": [1]}}]}}",
           "overrides.rules[1].when.models[0]: must be a string, not a number");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {\"teams\": []}}]}}",
           "overrides.rules[0].when.teams: must be a string or a non-empty list of strings");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {\"users\": 7}}]}}",
           "overrides.rules[0].when.users: must be a string or a non-empty list of strings");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {\"endpoints\": null}}]}}",
           "overrides.rules[0].when.endpoints: must be a string or a non-empty list of strings");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {\"metadata\": {}}}]}}",
           "overrides.rules[0].when.metadata: must be a non-empty object of key: glob or list of "
           "globs");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {\"metadata\":"
           " {\"env\": [\"prod\", true]}}}]}}",
           "overrides.rules[0].when.metadata[\"env\"][1]: must be a string, not a boolean");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {}, \"enable\":"
           " \"semantic_cache\"}]}}",
           "overrides.rules[0].enable: must be a list of kinds, not a string");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {}, \"disable\":"
           " [\"tool_pruning\", \"nope\"]}]}}",
           "overrides.rules[0].disable[1]: unknown kind \"nope\" (known: semantic_cache, "
           "vision_ocr, prompt_compression, context_compression, code_skeleton, code_graph, "
           "relevance_filter, window_budget, tool_pruning, param_tuning)");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {}, \"enable\":"
           " [\"tool_pruning\", \"tool_pruning\"]}]}}",
           "overrides.rules[0].enable[1]: duplicate kind \"tool_pruning\"");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {}, \"params\": []}]}}",
           "overrides.rules[0].params: must be an object of kind: params, not a list");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {}, \"params\":"
           " {\"cache\": {}}}]}}",
           "overrides.rules[0].params.cache: unknown kind \"cache\" (known: semantic_cache, "
           "vision_ocr, prompt_compression, context_compression, code_skeleton, code_graph, "
           "relevance_filter, window_budget, tool_pruning, param_tuning)");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {}, \"params\":"
           " {\"semantic_cache\": 0.95}}]}}",
           "overrides.rules[0].params.semantic_cache: must be an object");
    s_bad ("{\"strategies\": [], \"overrides\": {\"rules\": [{\"when\": {}, \"params\":"
           " {\"semantic_cache\": {\"threshold\": 1.5}}}]}}",
           "overrides.rules[0].params.semantic_cache.threshold: must be a number from 0 to 1");

    //  No error buffer, or a tiny one: still refused, never overflowed.
    const char *bad = "{\"strategies\": [{\"kind\": \"nope\", \"enabled\": true}]}";
    assert (ar_optimizer_config_parse (bad, strlen (bad), NULL, 0) == NULL);
    char tiny[10];
    assert (ar_optimizer_config_parse (bad, strlen (bad), tiny, sizeof tiny) == NULL);
    assert (strcmp (tiny, "strategie") == 0);
    assert (ar_optimizer_config_parse (NULL, 0, tiny, sizeof tiny) == NULL);
    char big[64]; // refused on its length alone, before a byte is read
    assert (ar_optimizer_config_parse (bad, AR_OPTIMIZER_CONFIG_MAX + 1, big, sizeof big) == NULL);
    assert (strcmp (big, "(document): larger than 1048576 bytes") == 0);
    //  len is honoured: the bytes after it are not read.
    const char *ok = "{\"strategies\": []}garbage";
    ar_optimizer_config_t *self = ar_optimizer_config_parse (ok, 18, NULL, 0);
    assert (self);
    assert (strcmp (s_kinds (self, NULL), "") == 0);
    ar_optimizer_config_destroy (&self);
    assert (ar_optimizer_config_parse (ok, strlen (ok), NULL, 0) == NULL);
}

static void s_test_canonical (void)
{
    //  Short forms become lists, absent parts appear empty, numbers keep 15 digits, and the
    //  canonical text parses back to the same config.
    ar_optimizer_config_t *self =
        s_ok ("{\"$schema\": \"./optimizer.config.schema.json\","
              " \"overrides\": {\"rules\": [{\"disable\": [\"tool_pruning\"],"
              "   \"when\": {\"metadata\": {\"env\": \"prod\"}, \"models\": \"gpt-*\"}}]},"
              " \"strategies\": [{\"enabled\": true, \"kind\": \"semantic_cache\","
              "   \"params\": {\"threshold\": 0.95}},"
              "  {\"kind\": \"param_tuning\", \"enabled\": true,"
              "   \"params\": {\"temperatureMax\": 0.30000000000000004}}]}");
    char *text = ar_optimizer_config_to_json (self);
    const char *want = "{\n"
                       "  \"$schema\": \"./optimizer.config.schema.json\",\n"
                       "  \"strategies\": [\n"
                       "    {\n"
                       "      \"kind\": \"semantic_cache\",\n"
                       "      \"enabled\": true,\n"
                       "      \"params\": {\n"
                       "        \"threshold\": 0.95\n"
                       "      }\n"
                       "    },\n"
                       "    {\n"
                       "      \"kind\": \"param_tuning\",\n"
                       "      \"enabled\": true,\n"
                       "      \"params\": {\n"
                       "        \"temperatureMax\": 0.3\n"
                       "      }\n"
                       "    }\n"
                       "  ],\n"
                       "  \"overrides\": {\n"
                       "    \"byEndpoint\": {},\n"
                       "    \"rules\": [\n"
                       "      {\n"
                       "        \"when\": {\n"
                       "          \"models\": [\n"
                       "            \"gpt-*\"\n"
                       "          ],\n"
                       "          \"metadata\": {\n"
                       "            \"env\": [\n"
                       "              \"prod\"\n"
                       "            ]\n"
                       "          }\n"
                       "        },\n"
                       "        \"disable\": [\n"
                       "          \"tool_pruning\"\n"
                       "        ]\n"
                       "      }\n"
                       "    ]\n"
                       "  }\n"
                       "}";
    if (strcmp (text, want) != 0)
        fprintf (stderr, "canonical:\n%s\n", text);
    assert (strcmp (text, want) == 0);
    free (text);
    s_round_trip (self);
    ar_optimizer_config_destroy (&self);
}

static void s_test_files (void)
{
    char dir[] = "/tmp/ar_optimizer_config_XXXXXX";
    assert (mkdtemp (dir));
    char path[256], error[512];
    snprintf (path, sizeof path, "%s/optimizer.config.json", dir);

    //  Missing file: an error from load_file, the baked-in default from load_env.
    assert (ar_optimizer_config_load_file (path, error, sizeof error) == NULL);
    assert (strstr (error, path) && strstr (error, "No such file"));
    char *saved =
        getenv ("ANYRAY_OPTIMIZER_CONFIG") ? strdup (getenv ("ANYRAY_OPTIMIZER_CONFIG")) : NULL;
    setenv ("ANYRAY_OPTIMIZER_CONFIG", path, 1);
    ar_optimizer_config_t *self = ar_optimizer_config_load_env (error, sizeof error);
    assert (self && strcmp (s_kinds (self, NULL), S_DEFAULT_PIPELINE) == 0);
    ar_optimizer_config_destroy (&self);

    //  A file that is there is read, whatever it says.
    FILE *file = fopen (path, "w");
    fputs ("{\"strategies\": [{\"kind\": \"param_tuning\", \"enabled\": true}]}", file);
    fclose (file);
    self = ar_optimizer_config_load_env (error, sizeof error);
    assert (self && strcmp (s_kinds (self, NULL), "param_tuning") == 0);
    ar_optimizer_config_destroy (&self);
    self = ar_optimizer_config_load_file (path, error, sizeof error);
    assert (self);
    ar_optimizer_config_destroy (&self);

    //  An invalid file is an error that names the file and the field, never the default.
    file = fopen (path, "w");
    fputs ("{\"strategies\": [{\"kind\": \"param_tuning\", \"enabled\": 1}]}", file);
    fclose (file);
    assert (ar_optimizer_config_load_env (error, sizeof error) == NULL);
    char want[512];
    snprintf (want, sizeof want, "%s: strategies[0].enabled: must be true or false, not a number",
              path);
    assert (strcmp (error, want) == 0);

    //  Too large to be a config.
    file = fopen (path, "w");
    for (size_t i = 0; i <= AR_OPTIMIZER_CONFIG_MAX; i += 8)
        fputs ("        ", file);
    fclose (file);
    assert (ar_optimizer_config_load_file (path, error, sizeof error) == NULL);
    assert (strstr (error, "larger than"));
    //  A directory cannot be read as one.
    assert (ar_optimizer_config_load_file (dir, error, sizeof error) == NULL);

    //  Unset or empty: the default.
    setenv ("ANYRAY_OPTIMIZER_CONFIG", "", 1);
    self = ar_optimizer_config_load_env (error, sizeof error);
    assert (self && strcmp (s_kinds (self, NULL), S_DEFAULT_PIPELINE) == 0);
    ar_optimizer_config_destroy (&self);
    if (saved)
        setenv ("ANYRAY_OPTIMIZER_CONFIG", saved, 1);
    else
        unsetenv ("ANYRAY_OPTIMIZER_CONFIG");
    free (saved);
    unlink (path);
    rmdir (dir);
}

//  The JSON Schema file describes what the parser accepts: its kinds are the registry's and
//  each kind's params schema is exactly the one the registry serves in capabilities.
static void s_test_schema_file (void)
{
    json_error_t jerr;
    json_t *schema =
        json_load_file (AR_OPTIMIZER_CONFIG_DIR "/optimizer.config.schema.json", 0, &jerr);
    if (!schema)
        fprintf (stderr, "schema: line %d: %s\n", jerr.line, jerr.text);
    assert (schema);
    json_t *defs = json_object_get (schema, "$defs");
    json_t *kinds = json_object_get (json_object_get (defs, "kind"), "enum");
    assert (json_array_size (kinds) == ar_strategy_registry_count ());
    for (size_t i = 0; i < ar_strategy_registry_count (); i++) {
        const ar_strategy_info_t *info = ar_strategy_registry_at (i);
        assert (strcmp (json_string_value (json_array_get (kinds, i)), info->kind) == 0);
        char name[128];
        snprintf (name, sizeof name, "%s.params", info->kind);
        json_t *want = ar_strategy_registry_param_schema (info);
        if (!json_equal (json_object_get (defs, name), want))
            fprintf (stderr, "schema $defs[\"%s\"] differs from the registry\n", name);
        assert (json_equal (json_object_get (defs, name), want));
        json_decref (want);
    }
    json_decref (schema);
}

//  Generated configs: canonical text is stable and resolves the same, and every resolved
//  pipeline keeps the invariants whatever the rules say.
static uint32_t s_rand (uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static bool s_enabled_in (const json_t *list, const char *kind)
{
    size_t i;
    json_t *entry;
    json_array_foreach (
        list, i, entry) if (strcmp (json_string_value (json_object_get (entry, "kind")), kind) ==
                            0) return json_is_true (json_object_get (entry, "enabled"));
    return false;
}

static json_t *s_random_list (uint32_t *seed)
{
    json_t *list = json_array ();
    size_t n = ar_strategy_registry_count ();
    int perm[AR_STRATEGY_MAX];
    for (size_t i = 0; i < n; i++)
        perm[i] = (int)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = s_rand (seed) % (i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    size_t take = s_rand (seed) % (n + 1);
    for (size_t i = 0; i < take; i++) {
        const ar_strategy_info_t *info = ar_strategy_registry_at (perm[i]);
        json_t *params =
            s_rand (seed) % 2 ? ar_strategy_registry_default_params (info) : json_object ();
        bool enabled = s_rand (seed) % 2;
        if (strcmp (info->kind, "code_graph") == 0 && s_enabled_in (list, "code_skeleton"))
            enabled = false; // the validator refuses both (tested in s_test_exclusive)
        if (strcmp (info->kind, "code_skeleton") == 0 && s_enabled_in (list, "code_graph"))
            enabled = false;
        json_array_append_new (list, json_pack ("{s:s, s:b, s:o}", "kind", info->kind, "enabled",
                                                (int)enabled, "params", params));
    }
    return list;
}

static json_t *s_random_kinds (uint32_t *seed)
{
    json_t *kinds = json_array ();
    bool skeleton = false;
    for (size_t k = 0; k < ar_strategy_registry_count (); k++) {
        const char *kind = ar_strategy_registry_at (k)->kind;
        if (s_rand (seed) % 5 != 0 || (skeleton && strcmp (kind, "code_graph") == 0))
            continue;
        skeleton |= strcmp (kind, "code_skeleton") == 0;
        json_array_append_new (kinds, json_string (kind));
    }
    return kinds;
}

//  code_graph and code_skeleton: never both in one list or one rule's enable; when rules make
//  both apply, code_graph runs alone.
static void s_test_exclusive (void)
{
    s_bad ("{\"strategies\":[{\"kind\":\"code_skeleton\",\"enabled\":true},"
           "{\"kind\":\"code_graph\",\"enabled\":true}]}",
           "strategies[1].enabled: " S_EXCLUSIVE);
    s_bad ("{\"strategies\":[],\"overrides\":{\"byEndpoint\":{\"/v1/messages\":{\"strategies\":["
           "{\"kind\":\"code_graph\",\"enabled\":true},{\"kind\":\"code_skeleton\","
           "\"enabled\":true}]}}}}",
           "overrides.byEndpoint[\"/v1/messages\"].strategies[1].enabled: " S_EXCLUSIVE);
    s_bad ("{\"strategies\":[],\"overrides\":{\"rules\":[{\"when\":{},\"enable\":["
           "\"code_skeleton\",\"code_graph\"]}]}}",
           "overrides.rules[0].enable: " S_EXCLUSIVE);
    //  One on, the other listed off: fine.
    ar_optimizer_config_t *self =
        s_ok ("{\"strategies\":[{\"kind\":\"code_skeleton\",\"enabled\":true},"
              "{\"kind\":\"code_graph\",\"enabled\":false}],\"overrides\":{\"rules\":["
              "{\"when\":{\"teams\":\"graph\"},\"enable\":[\"code_graph\"]}]}}");
    ar_request_facts_t facts = {"/v1/chat/completions", NULL, NULL, "other", NULL, 0};
    assert (strcmp (s_kinds (self, &facts), "code_skeleton") == 0);
    facts.team = "graph";
    assert (strcmp (s_kinds (self, &facts), "code_graph") == 0);
    ar_optimizer_config_destroy (&self);
}

static void s_test_retrieve_tool (void)
{
    ar_optimizer_config_t *self = s_ok ("{\"strategies\":[]}");
    int calls = 0;
    assert (!ar_optimizer_config_retrieve_tool (self, &calls));
    ar_optimizer_config_destroy (&self);
    self = s_ok ("{\"strategies\":[],\"retrieveTool\":{\"enabled\":true}}");
    assert (ar_optimizer_config_retrieve_tool (self, &calls) && calls == 3);
    s_round_trip (self);
    ar_optimizer_config_destroy (&self);
    self = s_ok ("{\"strategies\":[],\"retrieveTool\":{\"enabled\":false,\"maxCalls\":8}}");
    assert (!ar_optimizer_config_retrieve_tool (self, &calls) && calls == 8);
    ar_optimizer_config_destroy (&self);
    s_bad ("{\"strategies\":[],\"retrieveTool\":true}",
           "retrieveTool: must be an object, not a boolean");
    s_bad ("{\"strategies\":[],\"retrieveTool\":{}}", "retrieveTool.enabled: required");
    s_bad ("{\"strategies\":[],\"retrieveTool\":{\"enabled\":true,\"maxCalls\":9}}",
           "retrieveTool.maxCalls: must be an integer from 1 to 8");
    s_bad ("{\"strategies\":[],\"retrieveTool\":{\"enabled\":true,\"x\":1}}",
           "retrieveTool.x: unknown field (expected enabled, maxCalls)");
}

static void s_test_generated (void)
{
    static const char *globs[] = {"*",     "gpt-4o*", "claude-?", "/v1/*",    "/v1/embeddings",
                                  "alice", "b?b",     "plat*",    "research", "[pd]*"};
    static const char *endpoints[] = {"/v1/chat/completions", "/v1/embeddings", "/v1/messages",
                                      NULL};
    static const char *models[] = {"gpt-4o", "gpt-4o-mini", "claude-x", "claude-xy", NULL};
    static const char *users[] = {"alice", "bob", "carol", NULL};
    static const char *teams[] = {"platform", "research", NULL};
    static const char *envs[] = {"prod", "dev", "test", NULL};
    uint32_t seed = 20261121;
    for (int round = 0; round < 300; round++) {
        json_t *doc = json_pack ("{s:o, s:{s:{}, s:[]}}", "strategies", s_random_list (&seed),
                                 "overrides", "byEndpoint", "rules");
        if (s_rand (&seed) % 2)
            json_object_set_new (json_object_get (json_object_get (doc, "overrides"), "byEndpoint"),
                                 "/v1/messages",
                                 json_pack ("{s:o}", "strategies", s_random_list (&seed)));
        json_t *rules = json_object_get (json_object_get (doc, "overrides"), "rules");
        for (size_t r = s_rand (&seed) % 6; r > 0; r--) {
            json_t *when = json_object ();
            for (size_t m = 0; m < S_MATCHERS; m++)
                if (s_rand (&seed) % 3 == 0)
                    json_object_set_new (when, s_matcher_names[m],
                                         s_rand (&seed) % 2
                                             ? json_string (globs[s_rand (&seed) % 10])
                                             : json_pack ("[s,s]", globs[s_rand (&seed) % 10],
                                                          globs[s_rand (&seed) % 10]));
            if (s_rand (&seed) % 4 == 0)
                json_object_set_new (when, "metadata",
                                     json_pack ("{s:s}", "env", globs[s_rand (&seed) % 10]));
            json_t *rule = json_pack ("{s:o, s:o, s:o}", "when", when, "enable",
                                      s_random_kinds (&seed), "disable", s_random_kinds (&seed));
            if (s_rand (&seed) % 2)
                json_object_set_new (rule, "params",
                                     json_pack ("{s:{s:i}}", "window_budget", "maxTokens",
                                                (int)(256 + s_rand (&seed) % 100000)));
            json_array_append_new (rules, rule);
        }
        char *text = json_dumps (doc, JSON_COMPACT);
        ar_optimizer_config_t *self = s_ok (text);
        char *canon = ar_optimizer_config_to_json (self);
        ar_optimizer_config_t *again = s_ok (canon);
        s_round_trip (self);

        for (int f = 0; f < 20; f++) {
            ar_fact_pair_t meta = {"env", envs[s_rand (&seed) % 4]};
            ar_request_facts_t facts = {endpoints[s_rand (&seed) % 4],
                                        models[s_rand (&seed) % 5],
                                        users[s_rand (&seed) % 4],
                                        teams[s_rand (&seed) % 3],
                                        &meta,
                                        meta.value ? 1 : 0};
            ar_pipeline_t *pipeline = ar_optimizer_config_resolve (self, &facts);
            ar_pipeline_t *twin = ar_optimizer_config_resolve (again, &facts);
            assert (pipeline && twin);
            char *a = ar_pipeline_to_json (pipeline), *b = ar_pipeline_to_json (twin);
            assert (strcmp (a, b) == 0);
            free (a);
            free (b);
            uint64_t enable = 0, disable = 0, seen = 0;
            for (size_t r = 0; r < self->rule_count; r++)
                if (s_rule_matches (&self->rules[r], &facts)) {
                    enable |= self->rules[r].enable;
                    disable |= self->rules[r].disable;
                }
            const s_list_t *list = &self->base;
            if (facts.endpoint && strcmp (facts.endpoint, "/v1/messages") == 0 &&
                self->endpoint_count)
                list = &self->endpoints[0].list;
            int last_listed = -1; // position in the list of the previous listed step
            for (size_t i = 0; i < ar_pipeline_size (pipeline); i++) {
                int k = ar_strategy_registry_index (ar_pipeline_kind (pipeline, i));
                uint64_t bit = UINT64_C (1) << k;
                assert (!(seen & bit)); // each kind at most once
                seen |= bit;
                assert (!(disable & bit)); // disable always wins
                char error[256];
                assert (ar_strategy_registry_check_params (ar_pipeline_strategy (pipeline, i),
                                                           ar_pipeline_params (pipeline, i), "p",
                                                           error, sizeof error) == 0);
                for (size_t j = 0; j < list->count; j++)
                    if (list->items[j].kind == k) {
                        assert ((int)j > last_listed); // the list's order is kept
                        last_listed = (int)j;
                    }
            }
            //  Everything on (listed and enabled, or enabled by a rule) and not disabled runs,
            //  except code_skeleton when code_graph runs.
            uint64_t skeleton = UINT64_C (1) << ar_strategy_registry_index ("code_skeleton");
            uint64_t graph = UINT64_C (1) << ar_strategy_registry_index ("code_graph");
            uint64_t superseded = (seen & graph) ? skeleton : 0;
            assert (!((seen & graph) && (seen & skeleton)));
            for (size_t j = 0; j < list->count; j++) {
                uint64_t bit = UINT64_C (1) << list->items[j].kind;
                if ((list->items[j].enabled || (enable & bit)) && !(disable & bit) &&
                    !(bit & superseded))
                    assert (seen & bit);
                else
                    assert (!(seen & bit));
            }
            assert ((enable & ~disable & ~seen & ~superseded) == 0);
            ar_pipeline_destroy (&pipeline);
            ar_pipeline_destroy (&twin);
        }
        free (canon);
        free (text);
        json_decref (doc);
        ar_optimizer_config_destroy (&self);
        ar_optimizer_config_destroy (&again);
    }
}

void ar_optimizer_config_test (bool verbose)
{
    s_test_default (verbose);
    s_test_page_rules ();
    s_test_semantics ();
    s_test_globs ();
    s_test_errors ();
    s_test_canonical ();
    s_test_files ();
    s_test_schema_file ();
    s_test_exclusive ();
    s_test_retrieve_tool ();
    s_test_generated ();
}
