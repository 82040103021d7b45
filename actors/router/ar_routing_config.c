/*  ar_routing_config: the routing config (see the header for the shape and semantics). */
#include "ar_routing_config.h"
#include "ar_config_path.h"
#include "ar_buf.h"
#include "ar_json_scan.h"
#include <assert.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_QUERY_DEPTH_MAX 8                           // nested $and / $or
#define S_VALUES_MAX      64                          // members of one $in / $nin list
#define S_META_KEY_MAX    (AR_ROUTING_STRING_MAX - 9) // "metadata." + key fits a string
#define S_FACT_MAX        1024 // a metadata value longer than this is treated as absent

static const char *const s_providers[] = {"openai", "anthropic", "azure-openai", "bedrock",
                                          "google-vertex-ai"};
#define S_PROVIDERS 5

//  --------------------------------------------------------------------------
//  The parsed tree

typedef enum { S_FIELD_MODEL, S_FIELD_PROVIDER, S_FIELD_ENDPOINT, S_FIELD_METADATA } s_field_t;
typedef enum { S_OP_EQ, S_OP_NE, S_OP_IN, S_OP_NIN, S_OP_GLOB } s_op_kind_t;
static const char *const s_op_names[] = {"$eq", "$ne", "$in", "$nin", "$glob"};
#define S_OPS 5

typedef struct {
    s_op_kind_t kind;
    char **values; // one for $eq, $ne, $glob
    size_t count;
} s_op_t;

typedef enum { S_Q_ALL, S_Q_ANY, S_Q_FIELD } s_query_kind_t;

typedef struct s_query_t s_query_t;
struct s_query_t {
    s_query_kind_t kind;
    s_query_t *items; // S_Q_ALL, S_Q_ANY
    size_t count;
    s_field_t field; // S_Q_FIELD
    char *key;       // the metadata member
    s_op_t *ops;
    size_t op_count;
};

typedef struct {
    s_query_t query;
    char *then_name;
    size_t then;
} s_cond_t;

typedef enum { S_SINGLE, S_LOADBALANCE, S_FALLBACK, S_CONDITIONAL } s_mode_t;
static const char *const s_mode_names[] = {"single", "loadbalance", "fallback", "conditional"};

//  A retry object as written: -1 for a member not given.
typedef struct {
    int attempts, backoff_ms, max_backoff_ms, retry_after, max_retry_after_ms;
    bool has_on;
    ar_status_set_t on;
} s_retry_t;

typedef struct s_node_t s_node_t;
struct s_node_t {
    bool leaf;
    char *name;
    double weight;
    s_retry_t retry;
    int timeout_ms; // 0: not given
    //  group
    s_mode_t mode;
    bool has_fallback_on;
    ar_status_set_t fallback_on;
    s_node_t *children;
    size_t count;
    double total_weight;
    s_cond_t *conds;
    size_t cond_count;
    char *default_name;
    long default_child; // -1: none
    //  target
    char *resource_url;         // https://<resource>.openai.azure.com, unless base_url is given
    ar_routing_target_t target; // strings owned (provider is static)
};

struct ar_routing_config_t {
    json_t *doc; // canonical
    s_node_t root;
    size_t target_count;
};

//  --------------------------------------------------------------------------
//  Status sets

bool ar_status_set_has (const ar_status_set_t *set, int status)
{
    if (status < 400 || status > 599)
        return false;
    int bit = status - 400;
    return (set->bits[bit / 64] >> (bit % 64)) & 1;
}

void ar_status_set_add (ar_status_set_t *set, int status)
{
    if (status < 400 || status > 599)
        return;
    int bit = status - 400;
    set->bits[bit / 64] |= (uint64_t)1 << (bit % 64);
}

ar_status_set_t ar_status_set_default (void)
{
    ar_status_set_t set = {{0}};
    static const int codes[] = {429, 500, 502, 503, 504, 529};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        ar_status_set_add (&set, codes[i]);
    return set;
}

int ar_status_set_json (const ar_status_set_t *set, char *buf, size_t size)
{
    size_t len = 0;
    if (size < 3)
        return -1;
    buf[len++] = '[';
    for (int status = 400; status <= 599; status++) {
        if (!ar_status_set_has (set, status))
            continue;
        int n = snprintf (buf + len, size - len, "%s%d", len > 1 ? "," : "", status);
        if (n < 0 || (size_t)n >= size - len)
            return -1;
        len += (size_t)n;
    }
    if (len + 2 > size)
        return -1;
    buf[len++] = ']';
    buf[len] = 0;
    return (int)len;
}

static json_t *s_status_array (const ar_status_set_t *set)
{
    json_t *array = json_array ();
    for (int status = 400; array && status <= 599; status++)
        if (ar_status_set_has (set, status))
            json_array_append_new (array, json_integer (status));
    return array;
}

const char *ar_routing_default_tail (void)
{
    return ",\"attempts\":0,\"retry_on\":[429,500,502,503,504,529],\"backoff_ms\":250,"
           "\"max_backoff_ms\":8000,\"retry_after\":true,\"max_retry_after_ms\":60000";
}

bool ar_routing_known_provider (const char *slug)
{
    for (size_t i = 0; slug && i < S_PROVIDERS; i++)
        if (strcmp (slug, s_providers[i]) == 0)
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Freeing

static void s_query_free (s_query_t *query)
{
    for (size_t i = 0; i < query->count; i++)
        s_query_free (&query->items[i]);
    free (query->items);
    for (size_t i = 0; i < query->op_count; i++) {
        for (size_t j = 0; j < query->ops[i].count; j++)
            free (query->ops[i].values[j]);
        free (query->ops[i].values);
    }
    free (query->ops);
    free (query->key);
    memset (query, 0, sizeof *query);
}

static void s_node_free (s_node_t *node)
{
    for (size_t i = 0; i < node->count; i++)
        s_node_free (&node->children[i]);
    free (node->children);
    for (size_t i = 0; i < node->cond_count; i++) {
        s_query_free (&node->conds[i].query);
        free (node->conds[i].then_name);
    }
    free (node->conds);
    free (node->default_name);
    free (node->resource_url);
    free (node->name);
    ar_routing_target_t *t = &node->target;
    free ((char *)t->model);
    free ((char *)t->base_url);
    free ((char *)t->deployment);
    free ((char *)t->api_version);
    free ((char *)t->region);
    free ((char *)t->project);
    free ((char *)t->location);
    free ((char *)t->plan_head);
    free ((char *)t->plan_tail);
    memset (node, 0, sizeof *node);
}

void ar_routing_config_destroy (ar_routing_config_t **self_p)
{
    ar_routing_config_t *self = *self_p;
    if (!self)
        return;
    s_node_free (&self->root);
    json_decref (self->doc);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Validation helpers

typedef struct {
    char *error;
    size_t size;
    size_t targets;     // seen so far in the document
    const char **names; // every name seen so far (borrowed from the input)
    size_t name_count, name_size;
} s_ctx_t;

static int s_fail (s_ctx_t *ctx, const char *path, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int s_fail (s_ctx_t *ctx, const char *path, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    ar_config_path_vfail (ctx->error, ctx->size, path, fmt, args);
    va_end (args);
    return -1;
}

//  JSON Schema's "integer": an integer, or a number with an integral value (2.0).
static bool s_integer (const json_t *v, long long min, long long max, long long *out)
{
    double d;
    if (json_is_integer (v))
        d = (double)json_integer_value (v);
    else if (json_is_real (v) && isfinite (json_real_value (v)) &&
             floor (json_real_value (v)) == json_real_value (v))
        d = json_real_value (v);
    else
        return false;
    if (d < (double)min || d > (double)max)
        return false;
    *out = json_is_integer (v) ? (long long)json_integer_value (v) : (long long)d;
    return true;
}

static int s_int_member (s_ctx_t *ctx, const char *path, const json_t *v, int min, int max,
                         int *out, json_t **canon)
{
    long long n;
    if (!s_integer (v, min, max, &n))
        return s_fail (ctx, path, "must be an integer from %d to %d", min, max);
    *out = (int)n;
    *canon = json_integer (n);
    return 0;
}

//  A string of at most AR_ROUTING_STRING_MAX bytes.
static int s_string (s_ctx_t *ctx, const char *path, const json_t *v, const char **out)
{
    if (!json_is_string (v))
        return s_fail (ctx, path, "must be a string, not %s", ar_config_path_type_of (v));
    if (json_string_length (v) > AR_ROUTING_STRING_MAX)
        return s_fail (ctx, path, "must be at most %d bytes", AR_ROUTING_STRING_MAX);
    *out = json_string_value (v);
    return 0;
}

typedef enum {
    S_CHARS_NAME,     // [A-Za-z0-9_.-]
    S_CHARS_HOST,     // [a-z0-9-]: regions, locations (they become host names)
    S_CHARS_RESOURCE, // [A-Za-z0-9-]
    S_CHARS_PROJECT,  // [A-Za-z0-9_.:-]
    S_CHARS_TEXT      // anything but control characters
} s_chars_t;

static bool s_char_ok (unsigned char c, s_chars_t chars)
{
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    switch (chars) {
    case S_CHARS_NAME:
        return alnum || c == '_' || c == '.' || c == '-';
    case S_CHARS_HOST:
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-';
    case S_CHARS_RESOURCE:
        return alnum || c == '-';
    case S_CHARS_PROJECT:
        return alnum || c == '_' || c == '.' || c == ':' || c == '-';
    case S_CHARS_TEXT:
        return c >= 0x20 && c != 0x7f;
    }
    return false;
}

static bool s_chars (const char *s, size_t min, size_t max, s_chars_t chars)
{
    size_t len = strlen (s);
    if (len < min || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_char_ok ((unsigned char)s[i], chars))
            return false;
    return true;
}

//  A string member of the given characters, copied (owned) into *out.
static int s_text_member (s_ctx_t *ctx, const char *path, const json_t *v, size_t min, size_t max,
                          s_chars_t chars, const char *rule, char **out, json_t **canon)
{
    const char *s;
    if (s_string (ctx, path, v, &s))
        return -1;
    if (!s_chars (s, min, max, chars))
        return s_fail (ctx, path, "must be %s", rule);
    *out = strdup (s);
    *canon = json_string (s);
    return *out && *canon ? 0 : s_fail (ctx, path, "out of memory");
}

#define S_RULE_NAME "1 to 64 of A-Z a-z 0-9 _ . -"

//  http(s)://, then at least one character that is not a slash, no space, quote, backslash or
//  control character anywhere. Trailing slashes are dropped (the path is appended to it).
static int s_base_url (s_ctx_t *ctx, const char *path, const json_t *v, char **out, json_t **canon)
{
    const char *s;
    if (s_string (ctx, path, v, &s))
        return -1;
    size_t skip = strncmp (s, "https://", 8) == 0 ? 8 : strncmp (s, "http://", 7) == 0 ? 7 : 0;
    bool ok = skip && s[skip] && s[skip] != '/';
    for (const unsigned char *c = (const unsigned char *)s; ok && *c; c++)
        ok = *c > 0x20 && *c != 0x7f && *c != '"' && *c != '\\';
    if (!ok)
        return s_fail (ctx, path,
                       "must be an http:// or https:// URL with a host, without spaces, quotes, "
                       "backslashes or control characters");
    size_t len = strlen (s);
    while (len > skip && s[len - 1] == '/')
        len--;
    *out = strndup (s, len);
    *canon = *out ? json_string (*out) : NULL;
    return *out && *canon ? 0 : s_fail (ctx, path, "out of memory");
}

//  A list of statuses 400..599, no repeats.
static int s_statuses (s_ctx_t *ctx, const char *path, const json_t *v, ar_status_set_t *out,
                       json_t **canon)
{
    if (!json_is_array (v))
        return s_fail (ctx, path, "must be a list of HTTP statuses, not %s",
                       ar_config_path_type_of (v));
    memset (out, 0, sizeof *out);
    size_t i;
    json_t *item;
    json_array_foreach (v, i, item)
    {
        char at[AR_CONFIG_PATH_MAX];
        ar_config_path_index (at, path, i);
        long long status;
        if (!s_integer (item, 400, 599, &status))
            return s_fail (ctx, at, "must be an integer from 400 to 599");
        if (ar_status_set_has (out, (int)status))
            return s_fail (ctx, at, "%lld is listed twice", status);
        ar_status_set_add (out, (int)status);
    }
    *canon = s_status_array (out);
    return *canon ? 0 : s_fail (ctx, path, "out of memory");
}

//  Reject a member not in allowed (a list of names for the message).
static int s_unknown (s_ctx_t *ctx, const char *path, const char *key, const char *expected)
{
    char where[AR_CONFIG_PATH_MAX];
    ar_config_path_join (where, path, key);
    return s_fail (ctx, where, "unknown field (expected %s)", expected);
}

//  --------------------------------------------------------------------------
//  retry

static const char *const s_retry_fields[] = {
    "attempts",       "on_status_codes",        "backoff_ms",
    "max_backoff_ms", "use_retry_after_header", "max_retry_after_ms"};
#define S_RETRY_FIELDS 6

static int s_parse_retry (s_ctx_t *ctx, const char *path, const json_t *in, s_retry_t *retry,
                          json_t **canon)
{
    if (!json_is_object (in))
        return s_fail (ctx, path, "must be an object, not %s", ar_config_path_type_of (in));
    json_t *slots[S_RETRY_FIELDS] = {0};
    const char *key;
    json_t *value;
    int rc = 0;
    json_object_foreach ((json_t *)in, key, value)
    {
        size_t f = 0;
        while (f < S_RETRY_FIELDS && strcmp (key, s_retry_fields[f]) != 0)
            f++;
        if (f == S_RETRY_FIELDS) {
            rc = s_unknown (ctx, path, key,
                            "attempts, on_status_codes, backoff_ms, max_backoff_ms, "
                            "use_retry_after_header, max_retry_after_ms");
            break;
        }
        char at[AR_CONFIG_PATH_MAX];
        ar_config_path_join (at, path, key);
        if (f == 0)
            rc = s_int_member (ctx, at, value, 0, 10, &retry->attempts, &slots[f]);
        else if (f == 1) {
            rc = s_statuses (ctx, at, value, &retry->on, &slots[f]);
            retry->has_on = rc == 0;
        } else if (f == 2)
            rc = s_int_member (ctx, at, value, 0, 60000, &retry->backoff_ms, &slots[f]);
        else if (f == 3)
            rc = s_int_member (ctx, at, value, 0, 300000, &retry->max_backoff_ms, &slots[f]);
        else if (f == 4) {
            if (!json_is_boolean (value))
                rc = s_fail (ctx, at, "must be true or false, not %s",
                             ar_config_path_type_of (value));
            else {
                retry->retry_after = json_is_true (value);
                slots[f] = json_boolean (retry->retry_after);
            }
        } else
            rc = s_int_member (ctx, at, value, 0, 600000, &retry->max_retry_after_ms, &slots[f]);
        if (rc)
            break;
    }
    if (rc == 0 && retry->backoff_ms >= 0 && retry->max_backoff_ms >= 0 &&
        retry->max_backoff_ms < retry->backoff_ms) {
        char at[AR_CONFIG_PATH_MAX];
        ar_config_path_join (at, path, "max_backoff_ms");
        rc = s_fail (ctx, at, "must be at least backoff_ms (%d)", retry->backoff_ms);
    }
    json_t *out = rc == 0 ? json_object () : NULL;
    for (size_t f = 0; f < S_RETRY_FIELDS; f++)
        if (slots[f] && out)
            json_object_set_new (out, s_retry_fields[f], slots[f]);
        else
            json_decref (slots[f]);
    *canon = out;
    return rc == 0 && !out ? s_fail (ctx, path, "out of memory") : rc;
}

//  --------------------------------------------------------------------------
//  Queries

//  The text a scalar compares as: strings as they are, numbers and booleans as JSON text.
static int s_scalar_text (const json_t *v, char *out, size_t size)
{
    int n = -1;
    if (json_is_string (v))
        n = snprintf (out, size, "%s", json_string_value (v));
    else if (json_is_integer (v))
        n = snprintf (out, size, "%lld", (long long)json_integer_value (v));
    else if (json_is_real (v))
        n = snprintf (out, size, "%.15g", json_real_value (v));
    else if (json_is_boolean (v))
        n = snprintf (out, size, "%s", json_is_true (v) ? "true" : "false");
    return n >= 0 && (size_t)n < size ? n : -1;
}

static bool s_is_scalar (const json_t *v)
{
    return json_is_string (v) || json_is_number (v) || json_is_boolean (v);
}

//  A scalar operand: a string of at most AR_ROUTING_STRING_MAX bytes, a number or a boolean.
static int s_operand (s_ctx_t *ctx, const char *path, const json_t *v, char **out)
{
    if (!s_is_scalar (v))
        return s_fail (ctx, path, "must be a string, number or boolean, not %s",
                       ar_config_path_type_of (v));
    if (json_is_string (v) && json_string_length (v) > AR_ROUTING_STRING_MAX)
        return s_fail (ctx, path, "must be at most %d bytes", AR_ROUTING_STRING_MAX);
    char text[AR_ROUTING_STRING_MAX + 1];
    if (s_scalar_text (v, text, sizeof text) < 0)
        return s_fail (ctx, path, "cannot be compared");
    *out = strdup (text);
    return *out ? 0 : s_fail (ctx, path, "out of memory");
}

//  A field's condition: a scalar ($eq) or an object of operators.
static int s_parse_ops (s_ctx_t *ctx, const char *path, const json_t *in, s_query_t *query)
{
    if (s_is_scalar (in)) {
        query->ops = calloc (1, sizeof (s_op_t));
        if (!query->ops)
            return s_fail (ctx, path, "out of memory");
        query->op_count = 1;
        query->ops[0].kind = S_OP_EQ;
        query->ops[0].values = calloc (1, sizeof (char *));
        if (!query->ops[0].values)
            return s_fail (ctx, path, "out of memory");
        query->ops[0].count = 1;
        return s_operand (ctx, path, in, &query->ops[0].values[0]);
    }
    if (!json_is_object (in))
        return s_fail (ctx, path,
                       "must be a string, number, boolean or an object of operators ($eq, $ne, "
                       "$in, $nin, $glob), not %s",
                       ar_config_path_type_of (in));
    if (json_object_size (in) == 0)
        return s_fail (ctx, path, "must have at least one operator ($eq, $ne, $in, $nin, $glob)");
    query->ops = calloc (json_object_size (in), sizeof (s_op_t));
    if (!query->ops)
        return s_fail (ctx, path, "out of memory");
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)in, key, value)
    {
        char at[AR_CONFIG_PATH_MAX];
        ar_config_path_join (at, path, key);
        if (strcmp (key, "$regex") == 0)
            return s_fail (ctx, at, "not supported (use $glob)");
        size_t k = 0;
        while (k < S_OPS && strcmp (key, s_op_names[k]) != 0)
            k++;
        if (k == S_OPS)
            return s_fail (ctx, at, "unknown operator (expected $eq, $ne, $in, $nin, $glob)");
        s_op_t *op = &query->ops[query->op_count++];
        op->kind = (s_op_kind_t)k;
        if (op->kind == S_OP_IN || op->kind == S_OP_NIN) {
            if (!json_is_array (value) || json_array_size (value) == 0 ||
                json_array_size (value) > S_VALUES_MAX)
                return s_fail (ctx, at, "must be a list of 1 to %d strings, numbers or booleans",
                               S_VALUES_MAX);
            op->values = calloc (json_array_size (value), sizeof (char *));
            if (!op->values)
                return s_fail (ctx, at, "out of memory");
            size_t i;
            json_t *item;
            json_array_foreach (value, i, item)
            {
                char item_at[AR_CONFIG_PATH_MAX];
                ar_config_path_index (item_at, at, i);
                if (s_operand (ctx, item_at, item, &op->values[op->count]))
                    return -1;
                op->count++;
            }
        } else {
            if (op->kind == S_OP_GLOB && !json_is_string (value))
                return s_fail (ctx, at, "must be a string, not %s", ar_config_path_type_of (value));
            op->values = calloc (1, sizeof (char *));
            if (!op->values)
                return s_fail (ctx, at, "out of memory");
            if (s_operand (ctx, at, value, &op->values[0]))
                return -1;
            op->count = 1;
        }
    }
    return 0;
}

static int s_parse_query (s_ctx_t *ctx, const char *path, const json_t *in, s_query_t *query,
                          int depth);

//  "$and" / "$or": a non-empty list of queries.
static int s_parse_junction (s_ctx_t *ctx, const char *path, const json_t *in, s_query_t *query,
                             int depth)
{
    if (!json_is_array (in) || json_array_size (in) == 0 ||
        json_array_size (in) > AR_ROUTING_CONDS_MAX)
        return s_fail (ctx, path, "must be a list of 1 to %d queries", AR_ROUTING_CONDS_MAX);
    if (depth >= S_QUERY_DEPTH_MAX)
        return s_fail (ctx, path, "queries nest deeper than %d levels", S_QUERY_DEPTH_MAX);
    query->items = calloc (json_array_size (in), sizeof (s_query_t));
    if (!query->items)
        return s_fail (ctx, path, "out of memory");
    size_t i;
    json_t *item;
    json_array_foreach (in, i, item)
    {
        char at[AR_CONFIG_PATH_MAX];
        ar_config_path_index (at, path, i);
        query->count++;
        if (s_parse_query (ctx, at, item, &query->items[i], depth + 1))
            return -1;
    }
    return 0;
}

static int s_parse_query (s_ctx_t *ctx, const char *path, const json_t *in, s_query_t *query,
                          int depth)
{
    if (!json_is_object (in))
        return s_fail (ctx, path, "must be an object, not %s", ar_config_path_type_of (in));
    if (json_object_size (in) == 0)
        return s_fail (ctx, path,
                       "must test at least one field (model, provider, endpoint, "
                       "metadata.<key>) or hold $and / $or");
    query->kind = S_Q_ALL;
    query->items = calloc (json_object_size (in), sizeof (s_query_t));
    if (!query->items)
        return s_fail (ctx, path, "out of memory");
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)in, key, value)
    {
        char at[AR_CONFIG_PATH_MAX];
        ar_config_path_join (at, path, key);
        s_query_t *item = &query->items[query->count++];
        if (strcmp (key, "$and") == 0 || strcmp (key, "$or") == 0) {
            item->kind = key[1] == 'a' ? S_Q_ALL : S_Q_ANY;
            if (s_parse_junction (ctx, at, value, item, depth))
                return -1;
            continue;
        }
        item->kind = S_Q_FIELD;
        if (strcmp (key, "model") == 0)
            item->field = S_FIELD_MODEL;
        else if (strcmp (key, "provider") == 0)
            item->field = S_FIELD_PROVIDER;
        else if (strcmp (key, "endpoint") == 0)
            item->field = S_FIELD_ENDPOINT;
        else if (strncmp (key, "metadata.", 9) == 0 &&
                 s_chars (key + 9, 1, S_META_KEY_MAX, S_CHARS_TEXT)) {
            item->field = S_FIELD_METADATA;
            item->key = strdup (key + 9);
            if (!item->key)
                return s_fail (ctx, at, "out of memory");
        } else
            return s_fail (ctx, at,
                           "unknown field (expected model, provider, endpoint, metadata.<key>, "
                           "$and, $or)");
        if (s_parse_ops (ctx, at, value, item))
            return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Strategy

//  One condition: {"query": {...}, "then": "<name of a child>"}.
static int s_parse_condition (s_ctx_t *ctx, const char *path, const json_t *in, s_cond_t *cond,
                              json_t **canon)
{
    if (!json_is_object (in))
        return s_fail (ctx, path, "must be an object, not %s", ar_config_path_type_of (in));
    char at[AR_CONFIG_PATH_MAX];
    json_t *query = NULL, *then = NULL;
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)in, key, value)
    {
        ar_config_path_join (at, path, key);
        if (strcmp (key, "query") == 0) {
            if (s_parse_query (ctx, at, value, &cond->query, 0))
                return -1;
            query = value;
        } else if (strcmp (key, "then") == 0) {
            json_t *ignored = NULL;
            int rc = s_text_member (ctx, at, value, 1, 64, S_CHARS_NAME, S_RULE_NAME,
                                    &cond->then_name, &ignored);
            json_decref (ignored);
            if (rc)
                return -1;
            then = value;
        } else
            return s_unknown (ctx, path, key, "query, then");
    }
    if (!query || !then) {
        ar_config_path_join (at, path, !query ? "query" : "then");
        return s_fail (ctx, at, "required");
    }
    *canon = json_pack ("{s:O,s:s}", "query", query, "then", cond->then_name);
    return *canon ? 0 : s_fail (ctx, path, "out of memory");
}

static int s_parse_conditions (s_ctx_t *ctx, const char *path, const json_t *in, s_node_t *node,
                               json_t **canon)
{
    if (!json_is_array (in) || json_array_size (in) == 0 ||
        json_array_size (in) > AR_ROUTING_CONDS_MAX)
        return s_fail (ctx, path, "must be a list of 1 to %d conditions", AR_ROUTING_CONDS_MAX);
    node->conds = calloc (json_array_size (in), sizeof (s_cond_t));
    *canon = json_array ();
    if (!node->conds || !*canon)
        return s_fail (ctx, path, "out of memory");
    size_t i;
    json_t *item;
    json_array_foreach (in, i, item)
    {
        char at[AR_CONFIG_PATH_MAX];
        ar_config_path_index (at, path, i);
        json_t *cond = NULL;
        node->cond_count++;
        if (s_parse_condition (ctx, at, item, &node->conds[i], &cond))
            return -1;
        json_array_append_new (*canon, cond);
    }
    return 0;
}

//  strategy: "mode" first (it decides which members may follow), then the others in order.
static const char *const s_strategy_fields[] = {"mode", "on_status_codes", "conditions", "default"};
#define S_STRATEGY_FIELDS 4

static int s_parse_strategy (s_ctx_t *ctx, const char *path, const json_t *in, s_node_t *node,
                             json_t **canon)
{
    if (!json_is_object (in))
        return s_fail (ctx, path, "must be an object, not %s", ar_config_path_type_of (in));
    char at[AR_CONFIG_PATH_MAX];
    ar_config_path_join (at, path, "mode");
    json_t *mode = json_object_get (in, "mode");
    if (!mode)
        return s_fail (ctx, at, "required (single, loadbalance, fallback or conditional)");
    size_t m = 0;
    while (json_is_string (mode) && m < 4 && strcmp (json_string_value (mode), s_mode_names[m]))
        m++;
    if (!json_is_string (mode) || m == 4)
        return s_fail (ctx, at, "must be single, loadbalance, fallback or conditional");
    node->mode = (s_mode_t)m;
    json_t *slots[S_STRATEGY_FIELDS] = {json_string (s_mode_names[m])};
    int rc = 0;
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)in, key, value)
    {
        ar_config_path_join (at, path, key);
        if (strcmp (key, "mode") == 0)
            continue;
        if (strcmp (key, "on_status_codes") == 0 && node->mode == S_FALLBACK) {
            rc = s_statuses (ctx, at, value, &node->fallback_on, &slots[1]);
            node->has_fallback_on = rc == 0;
        } else if (strcmp (key, "conditions") == 0 && node->mode == S_CONDITIONAL)
            rc = s_parse_conditions (ctx, at, value, node, &slots[2]);
        else if (strcmp (key, "default") == 0 && node->mode == S_CONDITIONAL)
            rc = s_text_member (ctx, at, value, 1, 64, S_CHARS_NAME, S_RULE_NAME,
                                &node->default_name, &slots[3]);
        else if (strcmp (key, "on_status_codes") == 0)
            rc = s_fail (ctx, at, "only for mode fallback");
        else if (strcmp (key, "conditions") == 0 || strcmp (key, "default") == 0)
            rc = s_fail (ctx, at, "only for mode conditional");
        else
            rc = s_unknown (ctx, path, key,
                            node->mode == S_FALLBACK      ? "mode, on_status_codes"
                            : node->mode == S_CONDITIONAL ? "mode, conditions, default"
                                                          : "mode");
        if (rc)
            break;
    }
    if (rc == 0 && node->mode == S_CONDITIONAL && !slots[2]) {
        ar_config_path_join (at, path, "conditions");
        rc = s_fail (ctx, at, "required for mode conditional");
    }
    json_t *out = json_object ();
    for (size_t f = 0; f < S_STRATEGY_FIELDS; f++)
        if (slots[f] && out)
            json_object_set_new (out, s_strategy_fields[f], slots[f]);
        else
            json_decref (slots[f]);
    *canon = out;
    return rc == 0 && !out ? s_fail (ctx, path, "out of memory") : rc;
}

//  --------------------------------------------------------------------------
//  Nodes: groups and targets

typedef enum {
    F_SCHEMA,
    F_NAME,
    F_PROVIDER,
    F_WEIGHT,
    F_STRATEGY,
    F_OVERRIDE,
    F_BASE_URL,
    F_RESOURCE,
    F_DEPLOYMENT,
    F_API_VERSION,
    F_REGION,
    F_PROJECT,
    F_LOCATION,
    F_RETRY,
    F_TIMEOUT,
    F_TARGETS,
    F_COUNT
} s_member_t;

//  In canonical order.
static const char *const s_members[F_COUNT] = {
    "$schema",  "name",     "provider",        "weight",      "strategy", "override_params",
    "base_url", "resource", "deployment",      "api_version", "region",   "project",
    "location", "retry",    "request_timeout", "targets"};

#define S_BIT(f) (1u << (f))
static const unsigned s_root_members =
    S_BIT (F_SCHEMA) | S_BIT (F_STRATEGY) | S_BIT (F_RETRY) | S_BIT (F_TIMEOUT) | S_BIT (F_TARGETS);
static const unsigned s_group_members = S_BIT (F_NAME) | S_BIT (F_WEIGHT) | S_BIT (F_STRATEGY) |
                                        S_BIT (F_RETRY) | S_BIT (F_TIMEOUT) | S_BIT (F_TARGETS);
static const unsigned s_target_members =
    S_BIT (F_NAME) | S_BIT (F_PROVIDER) | S_BIT (F_WEIGHT) | S_BIT (F_OVERRIDE) |
    S_BIT (F_BASE_URL) | S_BIT (F_RESOURCE) | S_BIT (F_DEPLOYMENT) | S_BIT (F_API_VERSION) |
    S_BIT (F_REGION) | S_BIT (F_PROJECT) | S_BIT (F_LOCATION) | S_BIT (F_RETRY) | S_BIT (F_TIMEOUT);

static void s_expected (char *out, size_t size, unsigned allowed)
{
    size_t len = 0;
    out[0] = 0;
    for (int f = 0; f < F_COUNT; f++)
        if (allowed & S_BIT (f)) {
            int n = snprintf (out + len, size - len, "%s%s", len ? ", " : "", s_members[f]);
            if (n < 0 || (size_t)n >= size - len)
                return;
            len += (size_t)n;
        }
}

static int s_remember_name (s_ctx_t *ctx, const char *path, const char *name)
{
    for (size_t i = 0; i < ctx->name_count; i++)
        if (strcmp (ctx->names[i], name) == 0)
            return s_fail (ctx, path, "the name \"%s\" is used twice (names are unique)", name);
    if (ctx->name_count == ctx->name_size) {
        size_t size = ctx->name_size ? ctx->name_size * 2 : 32;
        const char **names = realloc (ctx->names, size * sizeof *names);
        if (!names)
            return s_fail (ctx, path, "out of memory");
        ctx->names = names;
        ctx->name_size = size;
    }
    ctx->names[ctx->name_count++] = name;
    return 0;
}

//  Which provider a provider-specific member belongs to; NULL for the others.
static const char *s_member_provider (s_member_t f)
{
    switch (f) {
    case F_RESOURCE:
    case F_DEPLOYMENT:
    case F_API_VERSION:
        return "azure-openai";
    case F_REGION:
        return "bedrock";
    case F_PROJECT:
    case F_LOCATION:
        return "google-vertex-ai";
    default:
        return NULL;
    }
}

static int s_parse_node (s_ctx_t *ctx, const char *path, const json_t *in, s_node_t *node,
                         int depth, json_t **canon);

static int s_parse_targets (s_ctx_t *ctx, const char *path, const json_t *in, s_node_t *node,
                            int depth, json_t **canon)
{
    if (!json_is_array (in) || json_array_size (in) == 0 ||
        json_array_size (in) > AR_ROUTING_LIST_MAX)
        return s_fail (ctx, path, "must be a list of 1 to %d targets", AR_ROUTING_LIST_MAX);
    node->children = calloc (json_array_size (in), sizeof (s_node_t));
    json_t *out = json_array ();
    *canon = out;
    if (!node->children || !out)
        return s_fail (ctx, path, "out of memory");
    size_t i;
    json_t *item;
    json_array_foreach (in, i, item)
    {
        char at[AR_CONFIG_PATH_MAX];
        ar_config_path_index (at, path, i);
        json_t *child = NULL;
        node->count++;
        int rc = s_parse_node (ctx, at, item, &node->children[i], depth + 1, &child);
        if (child)
            json_array_append_new (out, child);
        if (rc)
            return -1;
        node->total_weight += node->children[i].weight;
    }
    return 0;
}

//  One member of a node, validated into the node and its canonical value.
static int s_parse_member (s_ctx_t *ctx, const char *at, s_member_t f, const json_t *value,
                           s_node_t *node, int depth, json_t **slot)
{
    ar_routing_target_t *t = &node->target;
    const char *s;
    switch (f) {
    case F_SCHEMA:
        if (s_string (ctx, at, value, &s))
            return -1;
        *slot = json_string (s);
        return 0;
    case F_NAME:
        if (s_text_member (ctx, at, value, 1, 64, S_CHARS_NAME, S_RULE_NAME, &node->name, slot))
            return -1;
        return s_remember_name (ctx, at, json_string_value (value));
    case F_PROVIDER:
        if (s_string (ctx, at, value, &s))
            return -1;
        for (size_t i = 0; i < S_PROVIDERS; i++)
            if (strcmp (s, s_providers[i]) == 0)
                t->provider = s_providers[i];
        if (!t->provider)
            return s_fail (ctx, at,
                           "unknown provider (expected openai, anthropic, azure-openai, bedrock, "
                           "google-vertex-ai)");
        *slot = json_string (t->provider);
        return 0;
    case F_WEIGHT:
        if (!json_is_number (value) || !(json_number_value (value) > 0))
            return s_fail (ctx, at, "must be a number above 0");
        node->weight = json_number_value (value);
        *slot = json_deep_copy (value);
        return 0;
    case F_STRATEGY:
        return s_parse_strategy (ctx, at, value, node, slot);
    case F_OVERRIDE: {
        if (!json_is_object (value))
            return s_fail (ctx, at, "must be an object, not %s", ar_config_path_type_of (value));
        *slot = json_object ();
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *)value, key, member)
        {
            char field[AR_CONFIG_PATH_MAX];
            ar_config_path_join (field, at, key);
            if (strcmp (key, "model") != 0)
                return s_fail (ctx, field, "unknown field (only model can be overridden)");
            json_t *model = NULL;
            if (s_text_member (ctx, field, member, 1, AR_ROUTING_STRING_MAX, S_CHARS_TEXT,
                               "1 to 256 bytes without control characters", (char **)&t->model,
                               &model))
                return -1;
            json_object_set_new (*slot, "model", model);
        }
        return 0;
    }
    case F_BASE_URL:
        return s_base_url (ctx, at, value, (char **)&t->base_url, slot);
    case F_RESOURCE: {
        char *resource = NULL;
        if (s_text_member (ctx, at, value, 1, 64, S_CHARS_RESOURCE, "1 to 64 of A-Z a-z 0-9 -",
                           &resource, slot))
            return -1;
        size_t size = strlen (resource) + 32;
        node->resource_url = malloc (size);
        if (node->resource_url)
            snprintf (node->resource_url, size, "https://%s.openai.azure.com", resource);
        free (resource);
        return node->resource_url ? 0 : s_fail (ctx, at, "out of memory");
    }
    case F_DEPLOYMENT:
        return s_text_member (ctx, at, value, 1, AR_ROUTING_STRING_MAX, S_CHARS_NAME,
                              "1 to 256 of A-Z a-z 0-9 _ . -", (char **)&t->deployment, slot);
    case F_API_VERSION:
        return s_text_member (ctx, at, value, 1, 64, S_CHARS_NAME, "1 to 64 of A-Z a-z 0-9 _ . -",
                              (char **)&t->api_version, slot);
    case F_REGION:
        return s_text_member (ctx, at, value, 1, 64, S_CHARS_HOST, "1 to 64 of a-z 0-9 -",
                              (char **)&t->region, slot);
    case F_PROJECT:
        return s_text_member (ctx, at, value, 1, 128, S_CHARS_PROJECT,
                              "1 to 128 of A-Z a-z 0-9 _ . : -", (char **)&t->project, slot);
    case F_LOCATION:
        return s_text_member (ctx, at, value, 1, 64, S_CHARS_HOST, "1 to 64 of a-z 0-9 -",
                              (char **)&t->location, slot);
    case F_RETRY:
        return s_parse_retry (ctx, at, value, &node->retry, slot);
    case F_TIMEOUT:
        return s_int_member (ctx, at, value, 100, 600000, &node->timeout_ms, slot);
    case F_TARGETS:
        return s_parse_targets (ctx, at, value, node, depth, slot);
    case F_COUNT:
        break;
    }
    return -1;
}

//  The child of a group named name, or -1.
static long s_child_named (const s_node_t *node, const char *name)
{
    for (size_t i = 0; i < node->count; i++)
        if (node->children[i].name && strcmp (node->children[i].name, name) == 0)
            return (long)i;
    return -1;
}

static int s_parse_node (s_ctx_t *ctx, const char *path, const json_t *in, s_node_t *node,
                         int depth, json_t **canon)
{
    node->weight = 1;
    node->default_child = -1;
    node->retry = (s_retry_t){-1, -1, -1, -1, -1, false, {{0}}};
    if (!json_is_object (in))
        return s_fail (ctx, path, "must be an object, not %s", ar_config_path_type_of (in));
    bool root = depth == 1;
    node->leaf = !root && json_object_get (in, "provider") != NULL;
    if (!root && !node->leaf && !json_object_get (in, "strategy") &&
        !json_object_get (in, "targets"))
        return s_fail (ctx, path,
                       "must have provider (a target) or strategy and targets (a group)");
    if (node->leaf && ++ctx->targets > AR_ROUTING_TARGETS_MAX)
        return s_fail (ctx, path, "more than %d targets in the config", AR_ROUTING_TARGETS_MAX);
    if (!node->leaf && depth > AR_ROUTING_DEPTH_MAX)
        return s_fail (ctx, path, "groups nest deeper than %d levels", AR_ROUTING_DEPTH_MAX);
    unsigned allowed = root ? s_root_members : node->leaf ? s_target_members : s_group_members;
    json_t *slots[F_COUNT] = {0};
    int rc = 0;
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)in, key, value)
    {
        int f = 0;
        while (f < F_COUNT && strcmp (key, s_members[f]) != 0)
            f++;
        if (f == F_COUNT || !(allowed & S_BIT (f))) {
            char expected[256];
            s_expected (expected, sizeof expected, allowed);
            rc = s_unknown (ctx, path, key, expected);
            break;
        }
        char at[AR_CONFIG_PATH_MAX];
        ar_config_path_join (at, path, key);
        if ((rc = s_parse_member (ctx, at, (s_member_t)f, value, node, depth, &slots[f])) != 0)
            break;
        if (!slots[f]) {
            rc = s_fail (ctx, at, "out of memory");
            break;
        }
    }
    //  Members that must be there, then those that depend on others.
    char at[AR_CONFIG_PATH_MAX];
    if (rc == 0 && !node->leaf && (!slots[F_STRATEGY] || !slots[F_TARGETS])) {
        ar_config_path_join (at, path, slots[F_STRATEGY] ? "targets" : "strategy");
        rc = s_fail (ctx, at, "required");
    }
    for (void *it = json_object_iter ((json_t *)in); rc == 0 && node->leaf && it;
         it = json_object_iter_next ((json_t *)in, it)) {
        key = json_object_iter_key (it);
        const char *owner = NULL;
        for (int f = 0; f < F_COUNT; f++)
            if (strcmp (key, s_members[f]) == 0)
                owner = s_member_provider ((s_member_t)f);
        if (owner && strcmp (owner, node->target.provider) != 0) {
            ar_config_path_join (at, path, key);
            rc = s_fail (ctx, at, "only for provider %s", owner);
        }
    }
    for (size_t i = 0; rc == 0 && i < node->cond_count; i++) {
        long child = s_child_named (node, node->conds[i].then_name);
        if (child < 0) {
            char cond[AR_CONFIG_PATH_MAX], field[AR_CONFIG_PATH_MAX];
            ar_config_path_join (at, path, "strategy.conditions");
            ar_config_path_index (cond, at, i);
            ar_config_path_join (field, cond, "then");
            rc = s_fail (ctx, field, "no target named \"%s\" in this group's targets",
                         node->conds[i].then_name);
        }
        node->conds[i].then = (size_t)child;
    }
    if (rc == 0 && node->mode == S_CONDITIONAL && node->default_name && !node->leaf) {
        node->default_child = s_child_named (node, node->default_name);
        if (node->default_child < 0) {
            ar_config_path_join (at, path, "strategy.default");
            rc = s_fail (ctx, at, "no target named \"%s\" in this group's targets",
                         node->default_name);
        }
    }
    //  A target's resource URL, unless base_url is given too.
    if (node->leaf && node->resource_url && !node->target.base_url) {
        node->target.base_url = node->resource_url;
        node->resource_url = NULL;
    }
    json_t *out = json_object ();
    for (int f = 0; f < F_COUNT; f++)
        if (slots[f] && out)
            json_object_set_new (out, s_members[f], slots[f]);
        else
            json_decref (slots[f]);
    *canon = out;
    return rc == 0 && !out ? s_fail (ctx, path, "out of memory") : rc;
}

//  --------------------------------------------------------------------------
//  Resolution: inheritance and the prebuilt plan members of every target

static void s_json_escaped (ar_buf_t *buf, const char *s, int *rc)
{
    static const char hex[] = "0123456789abcdef";
    *rc |= ar_buf_add (buf, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[7] = {'\\', (char)*c, 0};
        if (*c == '"' || *c == '\\')
            *rc |= ar_buf_add (buf, esc, 2);
        else if (*c < 0x20) {
            snprintf (esc, sizeof esc, "\\u00%c%c", hex[*c >> 4], hex[*c & 15]);
            *rc |= ar_buf_add (buf, esc, 6);
        } else
            *rc |= ar_buf_add (buf, (const char *)c, 1);
    }
    *rc |= ar_buf_add (buf, "\"", 1);
}

static int s_printf (ar_buf_t *buf, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static int s_printf (ar_buf_t *buf, const char *fmt, ...)
{
    char text[256];
    va_list args;
    va_start (args, fmt);
    int n = vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    return n >= 0 && (size_t)n < sizeof text ? ar_buf_add (buf, text, (size_t)n) : -1;
}

static void s_merge_retry (s_retry_t *into, const s_retry_t *from)
{
    if (from->attempts >= 0)
        into->attempts = from->attempts;
    if (from->backoff_ms >= 0)
        into->backoff_ms = from->backoff_ms;
    if (from->max_backoff_ms >= 0)
        into->max_backoff_ms = from->max_backoff_ms;
    if (from->retry_after >= 0)
        into->retry_after = from->retry_after;
    if (from->max_retry_after_ms >= 0)
        into->max_retry_after_ms = from->max_retry_after_ms;
    if (from->has_on) {
        into->has_on = true;
        into->on = from->on;
    }
}

static int s_finish_target (s_node_t *node)
{
    ar_routing_target_t *t = &node->target;
    t->name = node->name;
    ar_buf_t head = {0}, tail = {0};
    int rc = ar_buf_add (&head, "", 0) | ar_buf_add (&tail, "", 0);
    if (t->name) {
        rc |= ar_buf_add (&head, ",\"name\":", 8);
        s_json_escaped (&head, t->name, &rc);
    }
    if (t->model) {
        rc |= ar_buf_add (&head, ",\"model\":", 9);
        s_json_escaped (&head, t->model, &rc);
    }
    char statuses[1024];
    rc |= s_printf (&tail, ",\"attempts\":%d,\"retry_on\":", t->attempts);
    int n = ar_status_set_json (&t->retry_on, statuses, sizeof statuses);
    rc |= n < 0 ? -1 : ar_buf_add (&tail, statuses, (size_t)n);
    rc |= s_printf (&tail,
                    ",\"backoff_ms\":%d,\"max_backoff_ms\":%d,\"retry_after\":%s,"
                    "\"max_retry_after_ms\":%d",
                    t->backoff_ms, t->max_backoff_ms, t->retry_after ? "true" : "false",
                    t->max_retry_after_ms);
    if (t->timeout_ms)
        rc |= s_printf (&tail, ",\"timeout_ms\":%d", t->timeout_ms);
    if (t->in_fallback) {
        n = ar_status_set_json (&t->fallback_on, statuses, sizeof statuses);
        rc |= s_printf (&tail, ",\"fallback_on\":");
        rc |= n < 0 ? -1 : ar_buf_add (&tail, statuses, (size_t)n);
    }
    t->plan_head = head.data;
    t->plan_tail = tail.data;
    return rc;
}

static int s_resolve (s_node_t *node, s_retry_t retry, int timeout_ms, bool in_fallback,
                      ar_status_set_t fallback_on)
{
    s_merge_retry (&retry, &node->retry);
    if (node->timeout_ms)
        timeout_ms = node->timeout_ms;
    if (node->leaf) {
        ar_routing_target_t *t = &node->target;
        t->attempts = retry.attempts;
        t->retry_on = retry.on;
        t->backoff_ms = retry.backoff_ms;
        //  A cap below the first delay would make the delay meaningless.
        t->max_backoff_ms =
            retry.max_backoff_ms > retry.backoff_ms ? retry.max_backoff_ms : retry.backoff_ms;
        t->retry_after = retry.retry_after;
        t->max_retry_after_ms = retry.max_retry_after_ms;
        t->timeout_ms = timeout_ms;
        t->in_fallback = in_fallback;
        t->fallback_on = fallback_on;
        return s_finish_target (node);
    }
    if (node->mode == S_FALLBACK) {
        ar_status_set_t own = node->has_fallback_on ? node->fallback_on : ar_status_set_default ();
        for (int i = 0; i < 4; i++)
            fallback_on.bits[i] = (in_fallback ? fallback_on.bits[i] : 0) | own.bits[i];
        in_fallback = true;
    }
    for (size_t i = 0; i < node->count; i++)
        if (s_resolve (&node->children[i], retry, timeout_ms, in_fallback, fallback_on))
            return -1;
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse

ar_routing_config_t *ar_routing_config_parse (const char *json, size_t len, char *error,
                                              size_t error_size)
{
    s_ctx_t ctx = {error, error_size, 0, NULL, 0, 0};
    if (error_size)
        error[0] = 0;
    if (!json || len > AR_ROUTING_CONFIG_MAX) {
        s_fail (&ctx, "(document)", "must be at most %d bytes of JSON", AR_ROUTING_CONFIG_MAX);
        return NULL;
    }
    json_error_t jerr;
    json_t *in = json_loadb (json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!in) {
        s_fail (&ctx, "(document)", "not valid JSON (line %d column %d: %s)", jerr.line,
                jerr.column, jerr.text);
        return NULL;
    }
    ar_routing_config_t *self = calloc (1, sizeof *self);
    int rc = self ? 0 : s_fail (&ctx, "(document)", "out of memory");
    if (rc == 0 && !json_is_object (in))
        rc = s_fail (&ctx, "(document)", "must be a JSON object, not %s",
                     ar_config_path_type_of (in));
    if (rc == 0)
        rc = s_parse_node (&ctx, "", in, &self->root, 1, &self->doc);
    if (rc == 0) {
        s_retry_t defaults = {0, 250, 8000, 1, 60000, true, ar_status_set_default ()};
        ar_status_set_t none = {{0}};
        if (s_resolve (&self->root, defaults, 0, false, none))
            rc = s_fail (&ctx, "(document)", "out of memory");
    }
    free (ctx.names);
    json_decref (in);
    if (rc != 0) {
        ar_routing_config_destroy (&self);
        return NULL;
    }
    self->target_count = ctx.targets;
    return self;
}

ar_routing_config_t *ar_routing_config_load_file (const char *path, char *error, size_t error_size)
{
    size_t len = 0;
    char *text = ar_buf_read_file (path, &len);
    if (!text) {
        snprintf (error, error_size, "(document): cannot read the file");
        return NULL;
    }
    ar_routing_config_t *self = ar_routing_config_parse (text, len, error, error_size);
    free (text);
    return self;
}

char *ar_routing_config_to_json (const ar_routing_config_t *self)
{
    return json_dumps (self->doc, JSON_INDENT (2) | JSON_REAL_PRECISION (15));
}

const json_t *ar_routing_config_document (const ar_routing_config_t *self)
{
    return self->doc;
}

size_t ar_routing_config_target_count (const ar_routing_config_t *self)
{
    return self->target_count;
}

//  --------------------------------------------------------------------------
//  Selection for one request

typedef struct {
    const ar_route_facts_t *facts;
    ar_rng_t *rng;
    const ar_routing_target_t **out;
    size_t max, count;
    char value[S_FACT_MAX]; // the metadata member being compared
} s_walk_t;

typedef struct {
    const char *key;
    char *out;
    size_t size;
    bool seen, found;
} s_lookup_t;

//  Numbers compare as the text a config number has: integers as written, others as %.15g.
static bool s_number_text (const char *token, size_t len, char *out, size_t size)
{
    if (len >= 64)
        return false;
    char copy[64];
    memcpy (copy, token, len);
    copy[len] = 0;
    int n = strpbrk (copy, ".eE") ? snprintf (out, size, "%.15g", strtod (copy, NULL))
                                  : snprintf (out, size, "%s", copy);
    return n >= 0 && (size_t)n < size;
}

static int s_lookup_visit (const ar_json_item_t *item, void *arg)
{
    s_lookup_t *lookup = arg;
    if (item->depth != 1 || !item->key || lookup->seen)
        return 0;
    char key[S_META_KEY_MAX + 8];
    if (memchr (item->key, '\\', item->key_len)) {
        char quoted[2 * S_META_KEY_MAX];
        if (item->key_len + 2 >= sizeof quoted)
            return 0;
        quoted[0] = '"';
        memcpy (quoted + 1, item->key, item->key_len);
        quoted[item->key_len + 1] = '"';
        if (ar_json_string (quoted, item->key_len + 2, key, sizeof key) < 0)
            return 0;
    } else {
        if (item->key_len >= sizeof key)
            return 0;
        memcpy (key, item->key, item->key_len);
        key[item->key_len] = 0;
    }
    if (strcmp (key, lookup->key) != 0)
        return 0;
    if (item->type == AR_JSON_STRING)
        lookup->found =
            ar_json_string (item->value, item->value_len, lookup->out, lookup->size) >= 0;
    else if (item->type == AR_JSON_NUMBER)
        lookup->found = s_number_text (item->value, item->value_len, lookup->out, lookup->size);
    else if (item->type == AR_JSON_TRUE || item->type == AR_JSON_FALSE)
        lookup->found = snprintf (lookup->out, lookup->size, "%s",
                                  item->type == AR_JSON_TRUE ? "true" : "false") > 0;
    lookup->seen = true; // the first member of that name decides
    return 0;            // the rest is still validated: bad metadata is no metadata
}

//  The request's value of a field, or NULL when it does not carry one.
static const char *s_fact (s_walk_t *walk, const s_query_t *query)
{
    const ar_route_facts_t *facts = walk->facts;
    if (!facts)
        return NULL;
    switch (query->field) {
    case S_FIELD_MODEL:
        return facts->model;
    case S_FIELD_PROVIDER:
        return facts->provider && *facts->provider ? facts->provider : NULL;
    case S_FIELD_ENDPOINT:
        return facts->endpoint;
    case S_FIELD_METADATA:
        if (!facts->metadata)
            return NULL;
        s_lookup_t lookup = {query->key, walk->value, sizeof walk->value, false, false};
        int rc = ar_json_scan (facts->metadata, strlen (facts->metadata), 1, s_lookup_visit,
                               &lookup, NULL, NULL);
        return rc == 0 && lookup.found ? walk->value : NULL;
    }
    return NULL;
}

static bool s_op_holds (const s_op_t *op, const char *value)
{
    bool any = false;
    for (size_t i = 0; value && !any && i < op->count; i++)
        any = op->kind == S_OP_GLOB ? fnmatch (op->values[i], value, 0) == 0
                                    : strcmp (op->values[i], value) == 0;
    return op->kind == S_OP_NE || op->kind == S_OP_NIN ? !any : any;
}

static bool s_matches (s_walk_t *walk, const s_query_t *query)
{
    if (query->kind == S_Q_FIELD) {
        const char *value = s_fact (walk, query);
        for (size_t i = 0; i < query->op_count; i++)
            if (!s_op_holds (&query->ops[i], value))
                return false;
        return true;
    }
    for (size_t i = 0; i < query->count; i++) {
        bool match = s_matches (walk, &query->items[i]);
        if (query->kind == S_Q_ANY && match)
            return true;
        if (query->kind == S_Q_ALL && !match)
            return false;
    }
    return query->kind == S_Q_ALL;
}

static size_t s_draw (const s_node_t *node, ar_rng_t *rng)
{
    if (!rng || node->count == 1)
        return 0;
    double at = (double)(ar_rng_next (rng) >> 11) * (1.0 / 9007199254740992.0) * node->total_weight;
    for (size_t i = 0; i < node->count; i++) {
        if (at < node->children[i].weight)
            return i;
        at -= node->children[i].weight;
    }
    return node->count - 1; // rounding
}

static void s_walk (s_walk_t *walk, const s_node_t *node)
{
    if (walk->count >= walk->max)
        return;
    if (node->leaf) {
        walk->out[walk->count++] = &node->target;
        return;
    }
    switch (node->mode) {
    case S_SINGLE:
        s_walk (walk, &node->children[0]);
        break;
    case S_LOADBALANCE:
        s_walk (walk, &node->children[s_draw (node, walk->rng)]);
        break;
    case S_FALLBACK:
        for (size_t i = 0; i < node->count; i++)
            s_walk (walk, &node->children[i]);
        break;
    case S_CONDITIONAL: {
        long chosen = node->default_child;
        for (size_t i = 0; i < node->cond_count; i++)
            if (s_matches (walk, &node->conds[i].query)) {
                chosen = (long)node->conds[i].then;
                break;
            }
        if (chosen >= 0)
            s_walk (walk, &node->children[chosen]);
        break;
    }
    }
}

int ar_routing_config_select (const ar_routing_config_t *self, const ar_route_facts_t *facts,
                              ar_rng_t *rng, const ar_routing_target_t **out, size_t max)
{
    s_walk_t walk;
    walk.facts = facts;
    walk.rng = rng;
    walk.out = out;
    walk.max = max;
    walk.count = 0;
    s_walk (&walk, &self->root);
    return walk.count ? (int)walk.count : AR_ROUTING_NO_MATCH;
}

//  --------------------------------------------------------------------------
//  Self-test

//  Test documents are written with ' for " (read better in C); this swaps them back.
static char *s_doc (const char *text)
{
    static char out[8192];
    size_t len = strlen (text);
    assert (len < sizeof out);
    for (size_t i = 0; i <= len; i++)
        out[i] = text[i] == '\'' ? '"' : text[i];
    return out;
}

static ar_routing_config_t *s_parse (const char *text)
{
    char error[512];
    const char *doc = s_doc (text);
    ar_routing_config_t *config = ar_routing_config_parse (doc, strlen (doc), error, sizeof error);
    if (!config)
        fprintf (stderr, "unexpected: %s\n  in %s\n", error, doc);
    assert (config);
    return config;
}

//  The error a document gets (it must get one).
static const char *s_error (const char *text)
{
    static char error[512];
    const char *doc = s_doc (text);
    ar_routing_config_t *config = ar_routing_config_parse (doc, strlen (doc), error, sizeof error);
    if (config)
        fprintf (stderr, "unexpectedly valid: %s\n", doc);
    assert (!config);
    return error;
}

static void s_expect_error (const char *text, const char *expected)
{
    const char *error = s_error (text);
    if (strncmp (error, expected, strlen (expected)) != 0)
        fprintf (stderr, "error \"%s\"\n  expected \"%s...\"\n  for %s\n", error, expected,
                 s_doc (text));
    assert (strncmp (error, expected, strlen (expected)) == 0);
}

//  The targets planned for facts, by name (provider when unnamed): "a,b" or "NO_MATCH".
static const char *s_names (const ar_routing_config_t *config, const ar_route_facts_t *facts,
                            ar_rng_t *rng)
{
    static char out[1024];
    const ar_routing_target_t *targets[AR_ROUTING_PLAN_MAX];
    int n = ar_routing_config_select (config, facts, rng, targets, AR_ROUTING_PLAN_MAX);
    if (n == AR_ROUTING_NO_MATCH)
        return "NO_MATCH";
    assert (n >= 1 && n <= AR_ROUTING_PLAN_MAX);
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        const char *name = targets[i]->name ? targets[i]->name : targets[i]->provider;
        int w = snprintf (out + len, sizeof out - len, "%s%s", i ? "," : "", name);
        assert (w > 0 && (size_t)w < sizeof out - len);
        len += (size_t)w;
    }
    return out;
}

static const char *s_names_for (const ar_routing_config_t *config, const char *provider,
                                const char *endpoint, const char *model, const char *metadata)
{
    ar_rng_t rng = {42};
    ar_route_facts_t facts = {provider, endpoint, model, metadata};
    return s_names (config, &facts, &rng);
}

static const ar_routing_target_t *s_target_named (const ar_routing_config_t *config,
                                                  const ar_route_facts_t *facts, const char *name)
{
    ar_rng_t rng = {7};
    const ar_routing_target_t *targets[AR_ROUTING_PLAN_MAX];
    int n = ar_routing_config_select (config, facts, &rng, targets, AR_ROUTING_PLAN_MAX);
    for (int i = 0; i < n; i++)
        if (targets[i]->name && strcmp (targets[i]->name, name) == 0)
            return targets[i];
    return NULL;
}

#define S_LEAF(name, provider) "{'name':'" name "','provider':'" provider "'}"
#define S_ONE(target)          "{'strategy':{'mode':'single'},'targets':[" target "]}"

static void s_test_errors (void)
{
    //  The document as a whole.
    assert (strncmp (s_error ("{"), "(document): not valid JSON (line 1", 34) == 0);
    s_expect_error ("[]", "(document): must be a JSON object, not a list");
    s_expect_error ("7", "(document): must be a JSON object, not a number");
    s_expect_error ("{'a':1,'a':2}", "(document): not valid JSON");
    char *big = calloc (1, AR_ROUTING_CONFIG_MAX + 2);
    memset (big, ' ', AR_ROUTING_CONFIG_MAX + 1);
    char error[256];
    assert (!ar_routing_config_parse (big, AR_ROUTING_CONFIG_MAX + 1, error, sizeof error));
    assert (strstr (error, "(document): must be at most"));
    free (big);
    assert (!ar_routing_config_parse (NULL, 0, error, sizeof error));
    assert (!ar_routing_config_parse ("{}", 2, NULL, 0)); // no error buffer: still no crash

    //  Root members.
    s_expect_error ("{'strategy':{'mode':'single'},'targets':[{'provider':'openai'}],'x':1}",
                    "x: unknown field (expected $schema, strategy, retry, request_timeout, "
                    "targets)");
    s_expect_error ("{'name':'root','strategy':{'mode':'single'},'targets':[]}",
                    "name: unknown field");
    s_expect_error ("{'targets':[{'provider':'openai'}]}", "strategy: required");
    s_expect_error ("{'strategy':{'mode':'single'}}", "targets: required");
    s_expect_error ("{}", "strategy: required");
    s_expect_error ("{'$schema':1,'strategy':{'mode':'single'},'targets':[]}",
                    "$schema: must be a string, not a number");
    s_expect_error ("{'strategy':{'mode':'single'},'targets':[]}",
                    "targets: must be a list of 1 to 64 targets");
    s_expect_error ("{'strategy':{'mode':'single'},'targets':{}}",
                    "targets: must be a list of 1 to 64 targets");
    s_expect_error (S_ONE ("3"), "targets[0]: must be an object, not a number");
    s_expect_error (S_ONE ("{'name':'x'}"),
                    "targets[0]: must have provider (a target) or strategy and targets");
    s_expect_error (S_ONE ("{'strategy':{'mode':'single'}}"), "targets[0].targets: required");
    s_expect_error (S_ONE ("{'targets':[{'provider':'openai'}]}"), "targets[0].strategy: required");

    //  Strategy.
    s_expect_error ("{'strategy':{},'targets':[{'provider':'openai'}]}",
                    "strategy.mode: required (single, loadbalance, fallback or conditional)");
    s_expect_error ("{'strategy':'single','targets':[{'provider':'openai'}]}",
                    "strategy: must be an object, not a string");
    s_expect_error ("{'strategy':{'mode':'random'},'targets':[{'provider':'openai'}]}",
                    "strategy.mode: must be single, loadbalance, fallback or conditional");
    s_expect_error ("{'strategy':{'mode':'single','x':1},'targets':[{'provider':'openai'}]}",
                    "strategy.x: unknown field (expected mode)");
    s_expect_error ("{'strategy':{'mode':'loadbalance','on_status_codes':[500]},"
                    "'targets':[{'provider':'openai'}]}",
                    "strategy.on_status_codes: only for mode fallback");
    s_expect_error (
        "{'strategy':{'mode':'fallback','default':'a'},'targets':[{'provider':'openai'}]}",
        "strategy.default: only for mode conditional");
    s_expect_error ("{'strategy':{'mode':'fallback','on_status_codes':[500,'502']},"
                    "'targets':[{'provider':'openai'}]}",
                    "strategy.on_status_codes[1]: must be an integer from 400 to 599");
    s_expect_error ("{'strategy':{'mode':'conditional'},'targets':[{'provider':'openai'}]}",
                    "strategy.conditions: required for mode conditional");
    s_expect_error (
        "{'strategy':{'mode':'conditional','conditions':[]},'targets':[{'provider':'openai'}]}",
        "strategy.conditions: must be a list of 1 to 32 conditions");
    s_expect_error ("{'strategy':{'mode':'conditional','conditions':[{'then':'a'}]},"
                    "'targets':[" S_LEAF ("a", "openai") "]}",
                    "strategy.conditions[0].query: required");
    s_expect_error ("{'strategy':{'mode':'conditional','conditions':[{'query':{'model':'m'}}]},"
                    "'targets':[" S_LEAF ("a", "openai") "]}",
                    "strategy.conditions[0].then: required");
    s_expect_error ("{'strategy':{'mode':'conditional','conditions':[{'query':{'model':'m'},"
                    "'then':'a','else':'b'}]},'targets':[" S_LEAF ("a", "openai") "]}",
                    "strategy.conditions[0].else: unknown field (expected query, then)");
    s_expect_error ("{'strategy':{'mode':'conditional','conditions':[{'query':{'model':'m'},"
                    "'then':'b'}]},'targets':[" S_LEAF ("a", "openai") "]}",
                    "strategy.conditions[0].then: no target named \"b\" in this group's targets");
    s_expect_error ("{'strategy':{'mode':'conditional','conditions':[{'query':{'model':'m'},"
                    "'then':'a'}],'default':'zz'},'targets':[" S_LEAF ("a", "openai") "]}",
                    "strategy.default: no target named \"zz\"");
    //  then names a direct child, not a grandchild.
    s_expect_error ("{'strategy':{'mode':'conditional','conditions':[{'query':{'model':'m'},"
                    "'then':'deep'}]},'targets':[{'name':'g','strategy':{'mode':'single'},"
                    "'targets':[" S_LEAF ("deep", "openai") "]}]}",
                    "strategy.conditions[0].then: no target named \"deep\"");
    {
        char doc[4096] = "{'strategy':{'mode':'conditional','conditions':[";
        for (int i = 0; i < 33; i++)
            strcat (doc, i ? ",{'query':{'model':'m'},'then':'a'}"
                           : "{'query':{'model':'m'},'then':'a'}");
        strcat (doc, "]},'targets':[" S_LEAF ("a", "openai") "]}");
        s_expect_error (doc, "strategy.conditions: must be a list of 1 to 32 conditions");
    }

    //  Queries.
#define S_QUERY(q)                                                                                 \
    "{'strategy':{'mode':'conditional','conditions':[{'query':" q ",'then':'a'}]},"                \
    "'targets':[" S_LEAF ("a", "openai") "]}"
    s_expect_error (S_QUERY ("{}"), "strategy.conditions[0].query: must test at least one field");
    s_expect_error (S_QUERY ("[]"), "strategy.conditions[0].query: must be an object, not a list");
    s_expect_error (S_QUERY ("{'team':'x'}"),
                    "strategy.conditions[0].query.team: unknown field (expected model, provider, "
                    "endpoint, metadata.<key>, $and, $or)");
    s_expect_error (S_QUERY ("{'metadata.':'x'}"),
                    "strategy.conditions[0].query.metadata.: unknown");
    s_expect_error (S_QUERY ("{'model':{'$regex':'^gpt'}}"),
                    "strategy.conditions[0].query.model.$regex: not supported (use $glob)");
    s_expect_error (S_QUERY ("{'model':{'$gt':1}}"),
                    "strategy.conditions[0].query.model.$gt: unknown operator");
    s_expect_error (S_QUERY ("{'model':{}}"),
                    "strategy.conditions[0].query.model: must have at least one operator");
    s_expect_error (S_QUERY ("{'model':null}"),
                    "strategy.conditions[0].query.model: must be a string, number, boolean or an "
                    "object of operators");
    s_expect_error (S_QUERY ("{'model':['a']}"), "strategy.conditions[0].query.model: must be");
    s_expect_error (S_QUERY ("{'model':{'$in':'a'}}"),
                    "strategy.conditions[0].query.model.$in: must be a list of 1 to 64");
    s_expect_error (S_QUERY ("{'model':{'$nin':[]}}"),
                    "strategy.conditions[0].query.model.$nin: must be a list of 1 to 64");
    s_expect_error (S_QUERY ("{'model':{'$in':['a',{}]}}"),
                    "strategy.conditions[0].query.model.$in[1]: must be a string, number or "
                    "boolean, not an object");
    s_expect_error (S_QUERY ("{'model':{'$eq':null}}"),
                    "strategy.conditions[0].query.model.$eq: must be a string, number or boolean");
    s_expect_error (S_QUERY ("{'model':{'$glob':5}}"),
                    "strategy.conditions[0].query.model.$glob: must be a string, not a number");
    s_expect_error (S_QUERY ("{'$and':[]}"),
                    "strategy.conditions[0].query.$and: must be a list of 1 to 32 queries");
    s_expect_error (S_QUERY ("{'$or':[{'model':'a'},{'bogus':1}]}"),
                    "strategy.conditions[0].query.$or[1].bogus: unknown field");
    s_expect_error (S_QUERY ("{'$and':[{'$or':[{'$and':[{'$or':[{'$and':[{'$or':[{'$and':[{'$or':"
                             "[{'$and':[{'model':'a'}]}]}]}]}]}]}]}]}]}"),
                    "strategy.conditions[0].query.$and[0].$or[0].$and[0].$or[0].$and[0].$or[0]."
                    "$and[0].$or[0].$and: queries nest deeper than 8 levels");

    //  Targets.
    s_expect_error (
        S_ONE ("{'provider':'openai','x':1}"),
        "targets[0].x: unknown field (expected name, provider, weight, override_params, "
        "base_url, resource, deployment, api_version, region, project, location, retry, "
        "request_timeout)");
    s_expect_error (S_ONE ("{'provider':'openai','strategy':{'mode':'single'}}"),
                    "targets[0].strategy: unknown field");
    s_expect_error (S_ONE ("{'provider':'openai','targets':[]}"),
                    "targets[0].targets: unknown field");
    s_expect_error (S_ONE ("{'provider':'mistral'}"), "targets[0].provider: unknown provider");
    s_expect_error (S_ONE ("{'provider':7}"),
                    "targets[0].provider: must be a string, not a number");
    s_expect_error (S_ONE ("{'provider':'openai','name':'a b'}"),
                    "targets[0].name: must be 1 to 64 of A-Z a-z 0-9 _ . -");
    s_expect_error (S_ONE ("{'provider':'openai','name':''}"), "targets[0].name: must be 1 to 64");
    s_expect_error (S_ONE ("{'provider':'openai','weight':0}"),
                    "targets[0].weight: must be a number above 0");
    s_expect_error (S_ONE ("{'provider':'openai','weight':'1'}"),
                    "targets[0].weight: must be a number above 0");
    s_expect_error (S_ONE ("{'provider':'openai','override_params':{'temperature':0}}"),
                    "targets[0].override_params.temperature: unknown field (only model can be "
                    "overridden)");
    s_expect_error (S_ONE ("{'provider':'openai','override_params':{'model':''}}"),
                    "targets[0].override_params.model: must be 1 to 256 bytes");
    s_expect_error (S_ONE ("{'provider':'openai','override_params':'gpt-4o'}"),
                    "targets[0].override_params: must be an object, not a string");
    s_expect_error (S_ONE ("{'provider':'openai','base_url':'ftp://x'}"),
                    "targets[0].base_url: must be an http:// or https:// URL");
    s_expect_error (S_ONE ("{'provider':'openai','base_url':'https://'}"),
                    "targets[0].base_url: must be an http");
    s_expect_error (S_ONE ("{'provider':'openai','base_url':'https:///v1'}"),
                    "targets[0].base_url: must be an http");
    s_expect_error (S_ONE ("{'provider':'openai','base_url':'https://a b'}"),
                    "targets[0].base_url: must be an http");
    s_expect_error (S_ONE ("{'provider':'openai','base_url':'https://a\\\\b'}"),
                    "targets[0].base_url: must be an http");
    s_expect_error (S_ONE ("{'provider':'openai','base_url':'https://a\\u0001'}"),
                    "targets[0].base_url: must be an http");
    s_expect_error (S_ONE ("{'provider':'openai','region':'us-east-1'}"),
                    "targets[0].region: only for provider bedrock");
    s_expect_error (S_ONE ("{'region':'us-east-1','provider':'anthropic'}"),
                    "targets[0].region: only for provider bedrock");
    s_expect_error (S_ONE ("{'provider':'bedrock','resource':'x'}"),
                    "targets[0].resource: only for provider azure-openai");
    s_expect_error (S_ONE ("{'provider':'azure-openai','project':'p'}"),
                    "targets[0].project: only for provider google-vertex-ai");
    s_expect_error (S_ONE ("{'provider':'bedrock','region':'US-EAST-1'}"),
                    "targets[0].region: must be 1 to 64 of a-z 0-9 -");
    s_expect_error (S_ONE ("{'provider':'azure-openai','resource':'a.b'}"),
                    "targets[0].resource: must be 1 to 64 of A-Z a-z 0-9 -");
    s_expect_error (S_ONE ("{'provider':'azure-openai','deployment':'a/b'}"),
                    "targets[0].deployment: must be 1 to 256");
    s_expect_error (S_ONE ("{'provider':'azure-openai','api_version':''}"),
                    "targets[0].api_version: must be 1 to 64");
    s_expect_error (S_ONE ("{'provider':'google-vertex-ai','location':'eu west'}"),
                    "targets[0].location: must be 1 to 64 of a-z 0-9 -");
    s_expect_error (S_ONE ("{'provider':'google-vertex-ai','project':'a/b'}"),
                    "targets[0].project: must be 1 to 128");
    s_expect_error (S_ONE ("{'provider':'openai','request_timeout':99}"),
                    "targets[0].request_timeout: must be an integer from 100 to 600000");
    s_expect_error (S_ONE ("{'provider':'openai','request_timeout':1000.5}"),
                    "targets[0].request_timeout: must be an integer from 100 to 600000");
    {
        char doc[1024];
        char model[300];
        memset (model, 'm', 257);
        model[257] = 0;
        snprintf (doc, sizeof doc, S_ONE ("{'provider':'openai','override_params':{'model':'%s'}}"),
                  model);
        s_expect_error (doc, "targets[0].override_params.model: must be at most 256 bytes");
        model[256] = 0; // exactly 256 is fine
        snprintf (doc, sizeof doc, S_ONE ("{'provider':'openai','override_params':{'model':'%s'}}"),
                  model);
        ar_routing_config_t *config = s_parse (doc);
        ar_routing_config_destroy (&config);
    }

    //  retry.
    s_expect_error ("{'strategy':{'mode':'single'},'retry':{'attempts':11},'targets':[{'provider':"
                    "'openai'}]}",
                    "retry.attempts: must be an integer from 0 to 10");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'attempts':-1}}"),
                    "targets[0].retry.attempts: must be an integer from 0 to 10");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'attempts':1.5}}"),
                    "targets[0].retry.attempts: must be an integer");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'on_status_codes':[399]}}"),
                    "targets[0].retry.on_status_codes[0]: must be an integer from 400 to 599");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'on_status_codes':[500,600]}}"),
                    "targets[0].retry.on_status_codes[1]: must be an integer from 400 to 599");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'on_status_codes':[500,500]}}"),
                    "targets[0].retry.on_status_codes[1]: 500 is listed twice");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'on_status_codes':500}}"),
                    "targets[0].retry.on_status_codes: must be a list of HTTP statuses");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'backoff_ms':60001}}"),
                    "targets[0].retry.backoff_ms: must be an integer from 0 to 60000");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'max_backoff_ms':300001}}"),
                    "targets[0].retry.max_backoff_ms: must be an integer from 0 to 300000");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'max_backoff_ms':100,'backoff_ms':500}}"),
                    "targets[0].retry.max_backoff_ms: must be at least backoff_ms (500)");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'use_retry_after_header':'yes'}}"),
                    "targets[0].retry.use_retry_after_header: must be true or false, not a string");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'max_retry_after_ms':600001}}"),
                    "targets[0].retry.max_retry_after_ms: must be an integer from 0 to 600000");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'jitter':true}}"),
                    "targets[0].retry.jitter: unknown field (expected attempts, on_status_codes, "
                    "backoff_ms, max_backoff_ms, use_retry_after_header, max_retry_after_ms)");
    s_expect_error (S_ONE ("{'provider':'openai','retry':3}"),
                    "targets[0].retry: must be an object, not a number");

    //  Names are unique in the whole document, groups' too.
    s_expect_error ("{'strategy':{'mode':'fallback'},'targets':[" S_LEAF (
                        "a", "openai") ",{'name':"
                                       "'g','strategy':{'mode':'single'},'targets':[" S_LEAF (
                                           "a", "anthropic") "]}]}",
                    "targets[1].targets[0].name: the name \"a\" is used twice");
    s_expect_error ("{'strategy':{'mode':'fallback'},'targets':[{'name':'g','strategy':{'mode':"
                    "'single'},'targets':[" S_LEAF ("g", "anthropic") "]}]}",
                    "targets[0].targets[0].name: the name \"g\" is used twice");

    //  Nested paths name the field exactly.
    s_expect_error ("{'strategy':{'mode':'fallback'},'targets':[{'provider':'openai'},{'strategy':"
                    "{'mode':'loadbalance'},'targets':[{'provider':'anthropic','weight':-1}]}]}",
                    "targets[1].targets[0].weight: must be a number above 0");

    //  Limits: depth (groups, the root's included), targets in all.
    {
        char doc[2048] = "";
        for (int i = 0; i < 8; i++)
            strcat (doc, "{'strategy':{'mode':'single'},'targets':[");
        strcat (doc, "{'provider':'openai'}");
        for (int i = 0; i < 8; i++)
            strcat (doc, "]}");
        ar_routing_config_t *config = s_parse (doc); // 8 levels of groups
        assert (strcmp (s_names_for (config, NULL, NULL, NULL, NULL), "openai") == 0);
        ar_routing_config_destroy (&config);
        doc[0] = 0;
        for (int i = 0; i < 9; i++)
            strcat (doc, "{'strategy':{'mode':'single'},'targets':[");
        strcat (doc, "{'provider':'openai'}");
        for (int i = 0; i < 9; i++)
            strcat (doc, "]}");
        s_expect_error (doc, "targets[0].targets[0].targets[0].targets[0].targets[0].targets[0]."
                             "targets[0].targets[0]: groups nest deeper than 8 levels");
    }
    {
        char doc[8192] = "{'strategy':{'mode':'fallback'},'targets':[";
        for (int g = 0; g < 2; g++) {
            strcat (doc, g ? ",{'strategy':{'mode':'single'},'targets':["
                           : "{'strategy':{'mode':'single'},'targets':[");
            for (int i = 0; i < 40; i++)
                strcat (doc, i ? ",{'provider':'openai'}" : "{'provider':'openai'}");
            strcat (doc, "]}");
        }
        strcat (doc, "]}");
        s_expect_error (doc, "targets[1].targets[24]: more than 64 targets in the config");
        char list[8192] = "{'strategy':{'mode':'fallback'},'targets':[";
        for (int i = 0; i < 65; i++)
            strcat (list, i ? ",{'provider':'openai'}" : "{'provider':'openai'}");
        strcat (list, "]}");
        s_expect_error (list, "targets: must be a list of 1 to 64 targets");
    }

    //  The first failing path in document order, whatever else is wrong later.
    s_expect_error ("{'targets':[{'provider':'nope'}],'strategy':{'mode':'bad'}}",
                    "targets[0].provider: unknown provider");
    s_expect_error ("{'strategy':{'mode':'bad'},'targets':[{'provider':'nope'}]}",
                    "strategy.mode: must be");
    s_expect_error (S_ONE ("{'weight':0,'provider':'nope'}"), "targets[0].weight: must be");
    s_expect_error (S_ONE ("{'provider':'openai','retry':{'attempts':99},'bogus':1}"),
                    "targets[0].retry.attempts: must be");
    for (int i = 0; i < 3; i++) // deterministic
        s_expect_error ("{'strategy':{'mode':'fallback'},'targets':[{'provider':'openai','x':1},"
                        "{'provider':'y'}]}",
                        "targets[0].x: unknown field");
}

static void s_test_strategies (void)
{
    ar_rng_t rng = {1};
    //  single: the first target, whatever follows.
    ar_routing_config_t *config = s_parse ("{'strategy':{'mode':'single'},'targets':[" S_LEAF (
        "a", "openai") "," S_LEAF ("b", "anthropic") "]}");
    assert (strcmp (s_names (config, NULL, &rng), "a") == 0);
    assert (ar_routing_config_target_count (config) == 2);
    ar_routing_config_destroy (&config);

    //  fallback: all, in order, each with the fallback's statuses; default statuses.
    config = s_parse ("{'strategy':{'mode':'fallback'},'targets':[" S_LEAF (
        "a", "openai") "," S_LEAF ("b", "anthropic") "," S_LEAF ("c", "bedrock") "]}");
    assert (strcmp (s_names (config, NULL, &rng), "a,b,c") == 0);
    const ar_routing_target_t *a = s_target_named (config, NULL, "a");
    assert (a->in_fallback && ar_status_set_has (&a->fallback_on, 529) &&
            ar_status_set_has (&a->fallback_on, 429) && !ar_status_set_has (&a->fallback_on, 501));
    assert (strstr (a->plan_tail, ",\"fallback_on\":[429,500,502,503,504,529]"));
    assert (strcmp (a->plan_head, ",\"name\":\"a\"") == 0);
    ar_routing_config_destroy (&config);

    //  Outside a fallback there is no fallback_on.
    config = s_parse (S_ONE (S_LEAF ("a", "openai")));
    a = s_target_named (config, NULL, "a");
    assert (!a->in_fallback && !strstr (a->plan_tail, "fallback_on"));
    assert (strcmp (a->plan_tail, ar_routing_default_tail ()) == 0); // defaults throughout
    assert (!a->model && !a->base_url && !a->region && a->timeout_ms == 0);
    ar_routing_config_destroy (&config);

    //  Nested: fallback(loadbalance(a, b), fallback(c, d)); inner fallback statuses united with
    //  the outer's.
    config = s_parse (
        "{'strategy':{'mode':'fallback','on_status_codes':[500]},'targets':["
        "{'strategy':{'mode':'loadbalance'},'targets':[" S_LEAF ("a", "openai") "," S_LEAF (
            "b", "anthropic") "]},"
                              "{'strategy':{'mode':'fallback','on_status_codes':[429]},'targets':"
                              "[" S_LEAF ("c", "openai") "," S_LEAF ("d", "anthropic") "]}]}");
    int seen_a = 0, seen_b = 0;
    for (int i = 0; i < 200; i++) {
        const char *names = s_names (config, NULL, &rng);
        seen_a += strcmp (names, "a,c,d") == 0;
        seen_b += strcmp (names, "b,c,d") == 0;
    }
    assert (seen_a + seen_b == 200 && seen_a > 50 && seen_b > 50);
    a = s_target_named (config, NULL, "c");
    assert (a && strstr (a->plan_tail, ",\"fallback_on\":[429,500]"));
    ar_rng_t fixed = {3};
    ar_route_facts_t none = {0};
    const ar_routing_target_t *targets[AR_ROUTING_PLAN_MAX];
    assert (ar_routing_config_select (config, &none, &fixed, targets, AR_ROUTING_PLAN_MAX) == 3);
    assert (strstr (targets[0]->plan_tail, ",\"fallback_on\":[500]"));
    //  max caps the plan.
    assert (ar_routing_config_select (config, NULL, &fixed, targets, 2) == 2);
    ar_routing_config_destroy (&config);

    //  A plan lists at most AR_ROUTING_PLAN_MAX targets.
    char doc[4096] = "{'strategy':{'mode':'fallback'},'targets':[";
    for (int i = 0; i < 20; i++)
        strcat (doc, i ? ",{'provider':'openai'}" : "{'provider':'openai'}");
    strcat (doc, "]}");
    config = s_parse (doc);
    assert (ar_routing_config_select (config, NULL, &rng, targets, AR_ROUTING_PLAN_MAX) ==
            AR_ROUTING_PLAN_MAX);
    ar_routing_config_destroy (&config);

    //  single over a group: the group is flattened.
    config = s_parse ("{'strategy':{'mode':'single'},'targets':[{'strategy':{'mode':'fallback'},"
                      "'targets':[" S_LEAF ("a", "openai") "," S_LEAF ("b", "openai") "]}," S_LEAF (
                          "c", "openai") "]}");
    assert (strcmp (s_names (config, NULL, &rng), "a,b") == 0);
    ar_routing_config_destroy (&config);
}

//  loadbalance: 100,000 seeded draws land within 1% of the weights.
static void s_test_distribution (void)
{
    ar_routing_config_t *config =
        s_parse ("{'strategy':{'mode':'loadbalance'},'targets':[{'name':'a','provider':'openai',"
                 "'weight':0.7},{'name':'b','provider':'anthropic','weight':0.2},{'name':'c',"
                 "'provider':'bedrock','weight':0.1}]}");
    ar_rng_t rng = {0x1234567890abcdefull};
    int counts[3] = {0};
    const int draws = 100000;
    for (int i = 0; i < draws; i++) {
        const ar_routing_target_t *target;
        assert (ar_routing_config_select (config, NULL, &rng, &target, 1) == 1);
        counts[target->name[0] - 'a']++;
    }
    const double want[3] = {0.7, 0.2, 0.1};
    for (int i = 0; i < 3; i++)
        assert (fabs ((double)counts[i] / draws - want[i]) < 0.01);
    ar_routing_config_destroy (&config);
    //  Default weights are equal; integers work as well as fractions.
    config = s_parse ("{'strategy':{'mode':'loadbalance'},'targets':[" S_LEAF (
        "a", "openai") ","
                       "{'name':'b','provider':'openai','weight':3}]}");
    counts[0] = counts[1] = 0;
    for (int i = 0; i < draws; i++) {
        const ar_routing_target_t *target;
        assert (ar_routing_config_select (config, NULL, &rng, &target, 1) == 1);
        counts[target->name[0] - 'a']++;
    }
    assert (fabs ((double)counts[0] / draws - 0.25) < 0.01);
    //  The same seed draws the same targets.
    ar_rng_t one = {99}, two = {99};
    for (int i = 0; i < 100; i++) {
        const ar_routing_target_t *x, *y;
        ar_routing_config_select (config, NULL, &one, &x, 1);
        ar_routing_config_select (config, NULL, &two, &y, 1);
        assert (x == y);
    }
    ar_routing_config_destroy (&config);
}

static void s_test_conditional (void)
{
    ar_routing_config_t *config =
        s_parse (
            "{'strategy':{'mode':'conditional','conditions':["
            "{'query':{'metadata.team':'search'},'then':'search'},"
            "{'query':{'model':{'$in':['gpt-4o','gpt-4o-mini']}},'then':'openai'},"
            "{'query':{'model':{'$glob':'claude-*'}},'then':'claude'},"
            "{'query':{'endpoint':'/v1/embeddings'},'then':'embed'},"
            "{'query':{'$and':[{'metadata.tier':{'$ne':'free'}},{'metadata.region':'eu'}]},"
            "'then':'eu'},"
            "{'query':{'$or':[{'metadata.beta':true},{'metadata.level':3}]},'then':'beta'},"
            "{'query':{'provider':'bedrock','metadata.user':{'$nin':['bob','eve']}},'then':'aws'}],"
            "'default':'fallback'},"
            "'targets':[" S_LEAF ("search", "openai") "," S_LEAF ("openai", "openai") "," S_LEAF ("claude", "anthropic") "," S_LEAF (
                "embed",
                "openai") "," S_LEAF ("eu",
                                      "openai") "," S_LEAF ("beta",
                                                            "openai") "," S_LEAF ("aws",
                                                                                  "bedrock") ","
                                                                                             "{'"
                                                                                             "name'"
                                                                                             ":'"
                                                                                             "fallb"
                                                                                             "ack',"
                                                                                             "'stra"
                                                                                             "tegy'"
                                                                                             ":{'"
                                                                                             "mode'"
                                                                                             ":'"
                                                                                             "fallb"
                                                                                             "ack'}"
                                                                                             ",'"
                                                                                             "targe"
                                                                                             "ts':"
                                                                                             "[" S_LEAF ("f1", "openai") "," S_LEAF (
                                                                                                 "f"
                                                                                                 "2",
                                                                                                 "a"
                                                                                                 "n"
                                                                                                 "t"
                                                                                                 "h"
                                                                                                 "r"
                                                                                                 "o"
                                                                                                 "p"
                                                                                                 "i"
                                                                                                 "c") "]}]}");
    //  By metadata.team (first matching condition wins, even over a matching model).
    assert (strcmp (s_names_for (config, NULL, "/v1/chat/completions", "gpt-4o",
                                 "{\"team\":\"search\"}"),
                    "search") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "gpt-4o", "{\"team\":\"other\"}"), "openai") ==
            0);
    //  $in, $glob, endpoint.
    assert (strcmp (s_names_for (config, NULL, NULL, "gpt-4o-mini", NULL), "openai") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "claude-3-5-sonnet", NULL), "claude") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "xclaude-3", NULL), "f1,f2") == 0);
    assert (strcmp (s_names_for (config, NULL, "/v1/embeddings", "text-embedding-3", NULL),
                    "embed") == 0);
    //  $and with $ne: a missing member is "not equal"; an equal one is not.
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"region\":\"eu\"}"), "eu") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"region\":\"eu\",\"tier\":\"pro\"}"),
                    "eu") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"region\":\"eu\",\"tier\":\"free\"}"),
                    "f1,f2") == 0);
    //  $or; booleans and numbers compare as their JSON text (3 and 3.0 alike).
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"beta\":true}"), "beta") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"beta\":\"true\"}"), "beta") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"beta\":false}"), "f1,f2") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"level\":3}"), "beta") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"level\":3.0}"), "beta") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"level\":30}"), "f1,f2") == 0);
    //  provider (x-anyray-provider) with $nin; a missing user is "not in".
    assert (strcmp (s_names_for (config, "bedrock", NULL, "m", NULL), "aws") == 0);
    assert (strcmp (s_names_for (config, "bedrock", NULL, "m", "{\"user\":\"ann\"}"), "aws") == 0);
    assert (strcmp (s_names_for (config, "bedrock", NULL, "m", "{\"user\":\"eve\"}"), "f1,f2") ==
            0);
    //  Escaped keys and values in the metadata are decoded; bad metadata is no metadata.
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"te\\u0061m\":\"se\\u0061rch\"}"),
                    "search") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "{\"team\":\"search\""), "f1,f2") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "m", "[\"team\"]"), "f1,f2") == 0);
    //  No facts at all: the default.
    assert (strcmp (s_names (config, NULL, &(ar_rng_t){5}), "f1,f2") == 0);
    ar_routing_config_destroy (&config);

    //  No match and no default: no target. Inside a fallback, the fallback moves past it.
    config = s_parse ("{'strategy':{'mode':'conditional','conditions':[{'query':{'model':'a'},"
                      "'then':'x'}]},'targets':[" S_LEAF ("x", "openai") "]}");
    assert (strcmp (s_names_for (config, NULL, NULL, "a", NULL), "x") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "b", NULL), "NO_MATCH") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, NULL, NULL), "NO_MATCH") == 0);
    ar_routing_config_destroy (&config);
    config = s_parse ("{'strategy':{'mode':'fallback'},'targets':[{'strategy':{'mode':"
                      "'conditional','conditions':[{'query':{'model':'a'},'then':'x'}]},"
                      "'targets':[" S_LEAF ("x", "openai") "]}," S_LEAF ("y", "anthropic") "]}");
    assert (strcmp (s_names_for (config, NULL, NULL, "a", NULL), "x,y") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "b", NULL), "y") == 0);
    ar_routing_config_destroy (&config);

    //  Several operators on one field all hold; $eq against a number.
    config = s_parse ("{'strategy':{'mode':'conditional','conditions':[{'query':{'model':{"
                      "'$glob':'gpt-*','$ne':'gpt-3.5','$nin':['gpt-4']}},'then':'x'},{'query':{"
                      "'metadata.n':{'$eq':5}},'then':'x'}],'default':'y'},'targets':[" S_LEAF (
                          "x", "openai") "," S_LEAF ("y", "openai") "]}");
    assert (strcmp (s_names_for (config, NULL, NULL, "gpt-4o", NULL), "x") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "gpt-3.5", NULL), "y") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "gpt-4", NULL), "y") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "o1", "{\"n\":5}"), "x") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "o1", "{\"n\":\"5\"}"), "x") == 0);
    assert (strcmp (s_names_for (config, NULL, NULL, "o1", "{\"n\":5.5}"), "y") == 0);
    ar_routing_config_destroy (&config);
}

//  retry and request_timeout are inherited member by member; the target's own win.
static void s_test_inheritance (void)
{
    ar_routing_config_t *config =
        s_parse ("{'strategy':{'mode':'fallback'},'retry':{'attempts':2,'backoff_ms':100},"
                 "'request_timeout':30000,'targets':["
                 "{'name':'own','provider':'openai','retry':{'attempts':3,'on_status_codes':[503]},"
                 "'request_timeout':20000},"
                 "{'name':'group','strategy':{'mode':'single'},'retry':{'max_backoff_ms':500,"
                 "'use_retry_after_header':false},'request_timeout':10000,'targets':["
                 "{'name':'deep','provider':'anthropic','retry':{'backoff_ms':1000}}]}," S_LEAF (
                     "plain", "bedrock") "]}");
    const ar_routing_target_t *own = s_target_named (config, NULL, "own");
    assert (own->attempts == 3 && own->backoff_ms == 100 && own->max_backoff_ms == 8000);
    assert (ar_status_set_has (&own->retry_on, 503) && !ar_status_set_has (&own->retry_on, 429));
    assert (own->retry_after && own->max_retry_after_ms == 60000 && own->timeout_ms == 20000);
    assert (strcmp (own->plan_tail,
                    ",\"attempts\":3,\"retry_on\":[503],\"backoff_ms\":100,\"max_backoff_ms\":8000,"
                    "\"retry_after\":true,\"max_retry_after_ms\":60000,\"timeout_ms\":20000,"
                    "\"fallback_on\":[429,500,502,503,504,529]") == 0);
    //  deep: attempts from the root, max_backoff and retry-after from its group, its own
    //  backoff (above the inherited cap: the cap rises to it), the group's timeout.
    const ar_routing_target_t *deep = s_target_named (config, NULL, "deep");
    assert (deep->attempts == 2 && deep->backoff_ms == 1000 && deep->max_backoff_ms == 1000);
    assert (!deep->retry_after && deep->timeout_ms == 10000);
    assert (ar_status_set_has (&deep->retry_on, 429) && ar_status_set_has (&deep->retry_on, 529));
    const ar_routing_target_t *plain = s_target_named (config, NULL, "plain");
    assert (plain->attempts == 2 && plain->backoff_ms == 100 && plain->timeout_ms == 30000);
    ar_routing_config_destroy (&config);
}

//  Target settings: trimmed base URLs, Azure resources, provider fields, model overrides.
static void s_test_targets (void)
{
    ar_routing_config_t *config = s_parse (
        "{'strategy':{'mode':'fallback'},'targets':["
        "{'name':'o','provider':'openai','base_url':'http://127.0.0.1:9/v1//',"
        "'override_params':{'model':'gpt-4o \\\"x\\\\'}},"
        "{'name':'z','provider':'azure-openai','resource':'contoso','deployment':'dep.1',"
        "'api_version':'2024-10-21'},"
        "{'name':'zb','provider':'azure-openai','resource':'contoso','base_url':'https://z/'},"
        "{'name':'b','provider':'bedrock','region':'us-west-2'},"
        "{'name':'v','provider':'google-vertex-ai','project':'p:1','location':'global'}]}");
    const ar_routing_target_t *t = s_target_named (config, NULL, "o");
    assert (strcmp (t->base_url, "http://127.0.0.1:9/v1") == 0);
    assert (strcmp (t->model, "gpt-4o \"x\\") == 0);
    assert (strcmp (t->plan_head, ",\"name\":\"o\",\"model\":\"gpt-4o \\\"x\\\\\"") == 0);
    t = s_target_named (config, NULL, "z");
    assert (strcmp (t->base_url, "https://contoso.openai.azure.com") == 0);
    assert (strcmp (t->deployment, "dep.1") == 0 && strcmp (t->api_version, "2024-10-21") == 0);
    t = s_target_named (config, NULL, "zb");
    assert (strcmp (t->base_url, "https://z") == 0); // base_url wins over resource
    t = s_target_named (config, NULL, "b");
    assert (strcmp (t->region, "us-west-2") == 0 && !t->base_url);
    t = s_target_named (config, NULL, "v");
    assert (strcmp (t->project, "p:1") == 0 && strcmp (t->location, "global") == 0);
    ar_routing_config_destroy (&config);
}

//  Canonical text: fixed member order, stable through a round trip, same plans.
static void s_test_canonical (void)
{
    const char *doc =
        "{'targets':[{'provider':'openai','name':'p','override_params':{'model':'gpt-4o'},"
        "'retry':{'max_retry_after_ms':1000,'attempts':3.0,'on_status_codes':[503,429]},"
        "'request_timeout':20000,'base_url':'https://x/v1/'},"
        "{'targets':[{'weight':0.7,'provider':'anthropic','name':'q'},{'region':'us-west-2',"
        "'provider':'bedrock','weight':0.3,'name':'r'}],'strategy':{'mode':'loadbalance'}},"
        "{'strategy':{'default':'s','mode':'conditional','conditions':[{'then':'s','query':{"
        "'metadata.team':{'$in':['a',1,true]},'$or':[{'model':'m'},{'endpoint':{'$glob':'/v1/*'}}]"
        "}}]},'targets':[" S_LEAF (
            "s", "openai") "]}],"
                           "'request_timeout':30000,'strategy':{'on_status_codes':[504,500],'mode':"
                           "'fallback'},"
                           "'retry':{'attempts':1},'$schema':'./routing.config.schema.json'}";
    ar_routing_config_t *config = s_parse (doc);
    char *text = ar_routing_config_to_json (config);
    assert (text);
    //  Member order: $schema, strategy, retry, request_timeout, targets; a target's name first.
    const char *order[] = {"\"$schema\"",
                           "\"strategy\"",
                           "\"mode\": \"fallback\"",
                           "\"on_status_codes\": [\n      500,\n      504\n    ]",
                           "\"retry\"",
                           "\"request_timeout\": 30000",
                           "\"targets\"",
                           "\"name\": \"p\"",
                           "\"provider\": \"openai\"",
                           "\"override_params\"",
                           "\"base_url\": \"https://x/v1\"",
                           "\"attempts\": 3,",
                           "\"on_status_codes\": [\n          429,\n          503\n        ]",
                           "\"max_retry_after_ms\": 1000",
                           "\"request_timeout\": 20000",
                           "\"strategy\"",
                           "\"mode\": \"loadbalance\"",
                           "\"name\": \"q\"",
                           "\"provider\": \"anthropic\"",
                           "\"weight\": 0.7",
                           "\"name\": \"r\"",
                           "\"provider\": \"bedrock\"",
                           "\"weight\": 0.3",
                           "\"region\"",
                           "\"mode\": \"conditional\"",
                           "\"conditions\"",
                           "\"query\"",
                           "\"then\"",
                           "\"default\": \"s\""};
    const char *at = text;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *found = strstr (at, order[i]);
        if (!found)
            fprintf (stderr, "canonical: \"%s\" missing or out of order in\n%s\n", order[i], text);
        assert (found);
        at = found + 1;
    }
    ar_routing_config_t *again = ar_routing_config_parse (text, strlen (text), NULL, 0);
    assert (again);
    char *text2 = ar_routing_config_to_json (again);
    assert (strcmp (text, text2) == 0);
    assert (json_equal ((json_t *)ar_routing_config_document (config),
                        (json_t *)ar_routing_config_document (again)));
    //  The same plans for the same draws and facts.
    const char *metadata[] = {NULL, "{\"team\":\"a\"}", "{\"team\":1}", "{\"team\":\"b\"}"};
    const char *models[] = {NULL, "m", "x"};
    for (uint64_t seed = 1; seed < 50; seed++)
        for (size_t m = 0; m < 4; m++)
            for (size_t k = 0; k < 3; k++) {
                ar_route_facts_t facts = {NULL, "/v1/chat/completions", models[k], metadata[m]};
                ar_rng_t r1 = {seed}, r2 = {seed};
                char first[1024];
                snprintf (first, sizeof first, "%s", s_names (config, &facts, &r1));
                assert (strcmp (first, s_names (again, &facts, &r2)) == 0);
            }
    ar_route_facts_t team = {NULL, NULL, NULL, "{\"team\":true}"};
    assert (strcmp (s_names (again, &team, &(ar_rng_t){1}), "p,q,s") == 0 ||
            strcmp (s_names (again, &team, &(ar_rng_t){1}), "p,r,s") == 0);
    free (text);
    free (text2);
    ar_routing_config_destroy (&again);
    ar_routing_config_destroy (&config);

    //  The shipped example is valid and canonical text of it round-trips.
    char error[512];
    config = ar_routing_config_load_file (AR_ROUTING_SCHEMA_DIR "/routing.config.example.json",
                                          error, sizeof error);
    if (!config)
        fprintf (stderr, "routing.config.example.json: %s\n", error);
    assert (config);
    assert (ar_routing_config_target_count (config) == 3);
    text = ar_routing_config_to_json (config);
    again = ar_routing_config_parse (text, strlen (text), error, sizeof error);
    assert (again);
    const ar_routing_target_t *primary = s_target_named (again, NULL, "primary");
    assert (primary && primary->attempts == 3 && primary->timeout_ms == 20000);
    assert (strcmp (primary->model, "gpt-4o") == 0);
    free (text);
    ar_routing_config_destroy (&again);
    ar_routing_config_destroy (&config);
    assert (!ar_routing_config_load_file ("/nonexistent/routing.json", error, sizeof error));
    assert (strcmp (error, "(document): cannot read the file") == 0);
}

//  Bad input never crashes: mutated documents either parse (and then round-trip canonically)
//  or name a path; mutated metadata is only ever a fact that is missing or present.
static void s_test_mutations (void)
{
    const char *seeds[] = {
        "{'strategy':{'mode':'conditional','conditions':[{'query':{'metadata.team':'a',"
        "'metadata.x y':{'$eq':1,'$ne':true,'$in':['a',2,false],'$nin':['b'],'$glob':'*'},"
        "'model':{'$glob':'gpt-*'},'$or':[{'model':'n'},{'$and':[{'endpoint':'e'}]}]},"
        "'then':'t'}],'default':'t'},'targets':[{'name':'t','provider':'openai'}]}",
        "{'strategy':{'mode':'fallback'},'targets':[{'name':'g','weight':3,'retry':{'attempts':"
        "1},'request_timeout':5000,'strategy':{'mode':'single'},'targets':[{'provider':'openai'"
        "}]}]}",
        "{'strategy':{'mode':'fallback','on_status_codes':[400,599]},'targets':[{'provider':"
        "'openai','retry':{'attempts':10,'on_status_codes':[429],'backoff_ms':0,"
        "'max_backoff_ms':0,'use_retry_after_header':false,'max_retry_after_ms':0}}]}",
        S_ONE ("{'provider':'azure-openai','resource':'my-res-1','deployment':'gpt-4o.prod_1',"
               "'api_version':'2024-10-21'}")};
    const char alphabet[] = "{}[]\",:0123456789.-eE tfn$abmq'\\u";
    ar_rng_t rng = {2024};
    char doc[8192 + 16], error[512];
    int parsed = 0;
    for (int round = 0; round < 3000; round++) {
        snprintf (doc, sizeof doc, "%s", s_doc (seeds[round % 4]));
        size_t len = strlen (doc);
        for (int edits = 1 + (int)ar_rng_below (&rng, 3); edits > 0 && len > 2; edits--) {
            size_t at = ar_rng_below (&rng, len);
            char c = alphabet[ar_rng_below (&rng, sizeof alphabet - 1)];
            switch (ar_rng_below (&rng, 3)) {
            case 0: // replace
                doc[at] = c;
                break;
            case 1: // delete
                memmove (doc + at, doc + at + 1, len - at);
                len--;
                break;
            default: // insert
                if (len + 2 < sizeof doc) {
                    memmove (doc + at + 1, doc + at, len - at + 1);
                    doc[at] = c;
                    len++;
                }
            }
        }
        ar_routing_config_t *config = ar_routing_config_parse (doc, len, error, sizeof error);
        if (!config) {
            assert (strstr (error, ": "));
            continue;
        }
        parsed++;
        char *text = ar_routing_config_to_json (config);
        ar_routing_config_t *again = ar_routing_config_parse (text, strlen (text), NULL, 0);
        assert (again);
        char *text2 = ar_routing_config_to_json (again);
        assert (strcmp (text, text2) == 0);
        free (text);
        free (text2);
        const char *metadata[] = {"{\"team\":\"a\"}", "{\"x y\":1}", "{",
                                  "{\"a\":[1,{}]}",   "\"str\"",     "{\"team\":\"\\ud800\"}"};
        for (size_t m = 0; m < sizeof metadata / sizeof *metadata; m++) {
            ar_route_facts_t facts = {"openai", "/v1/x", "m", metadata[m]};
            const ar_routing_target_t *targets[AR_ROUTING_PLAN_MAX];
            int n = ar_routing_config_select (again, &facts, &rng, targets, AR_ROUTING_PLAN_MAX);
            assert (n == AR_ROUTING_NO_MATCH || (n >= 1 && n <= AR_ROUTING_PLAN_MAX));
        }
        ar_routing_config_destroy (&again);
        ar_routing_config_destroy (&config);
    }
    assert (parsed > 10); // some mutations keep the document valid
}

void ar_routing_config_test (bool verbose)
{
    (void)verbose;
    ar_status_set_t set = ar_status_set_default ();
    char codes[64];
    assert (ar_status_set_json (&set, codes, sizeof codes) > 0);
    assert (strcmp (codes, "[429,500,502,503,504,529]") == 0);
    assert (ar_status_set_json (&set, codes, 5) == -1);
    assert (!ar_status_set_has (&set, 200) && !ar_status_set_has (&set, 600));
    ar_status_set_add (&set, 700); // ignored
    assert (ar_routing_known_provider ("bedrock") && !ar_routing_known_provider ("Bedrock") &&
            !ar_routing_known_provider (NULL));
    s_test_errors ();
    s_test_strategies ();
    s_test_distribution ();
    s_test_conditional ();
    s_test_inheritance ();
    s_test_targets ();
    s_test_canonical ();
    s_test_mutations ();
}
