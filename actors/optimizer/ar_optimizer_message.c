/*  ar_optimizer_message: Optimizer Protocol v1 request bodies (see the header). */
#include "ar_optimizer_message.h"
#include "ar_json_scan.h"
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Members each operation accepts, and which of them it requires.
typedef enum {
    M_ENDPOINT,
    M_SHAPE,
    M_REQUEST,
    M_RESPONSE,
    M_METADATA,
    M_SHORT_CIRCUIT,
    M_BUDGET,
    M_TTL,
    M_ID,
    M_COUNT
} s_member_t;

static const char *const s_member_names[M_COUNT] = {"endpoint", "shape",      "request",
                                                    "response", "metadata",   "canShortCircuit",
                                                    "budgetMs", "ttlSeconds", "id"};

#define BIT(m) (1u << (m))
static const struct {
    const char *kind, *path;
    unsigned allowed, required;
} s_ops[AR_OP_COUNT] = {
    [AR_OP_OPTIMIZE] = {"optimize", "/v1/optimize",
                        BIT (M_ENDPOINT) | BIT (M_SHAPE) | BIT (M_REQUEST) | BIT (M_METADATA) |
                            BIT (M_SHORT_CIRCUIT) | BIT (M_BUDGET),
                        BIT (M_ENDPOINT) | BIT (M_REQUEST)},
    [AR_OP_OPTIMIZE_RESPONSE] = {"optimize-response", "/v1/optimize-response",
                                 BIT (M_ENDPOINT) | BIT (M_SHAPE) | BIT (M_REQUEST) |
                                     BIT (M_RESPONSE) | BIT (M_METADATA),
                                 BIT (M_ENDPOINT) | BIT (M_RESPONSE)},
    [AR_OP_CACHE] = {"cache", "/v1/cache",
                     BIT (M_ENDPOINT) | BIT (M_SHAPE) | BIT (M_REQUEST) | BIT (M_RESPONSE) |
                         BIT (M_METADATA) | BIT (M_TTL),
                     BIT (M_ENDPOINT) | BIT (M_REQUEST) | BIT (M_RESPONSE)},
    [AR_OP_RETRIEVE] = {"retrieve", "/v1/retrieve", BIT (M_ID), BIT (M_ID)},
    //  Not on the HTTP port: only the gateway knows it offered the tool.
    [AR_OP_EXPAND] = {"expand", NULL,
                      BIT (M_ENDPOINT) | BIT (M_SHAPE) | BIT (M_REQUEST) | BIT (M_RESPONSE) |
                          BIT (M_METADATA),
                      BIT (M_ENDPOINT) | BIT (M_REQUEST) | BIT (M_RESPONSE)},
};

int ar_optimizer_op_from_kind (const char *kind)
{
    for (int op = 0; kind && op < AR_OP_COUNT; op++)
        if (strcmp (kind, s_ops[op].kind) == 0)
            return op;
    return -1;
}

int ar_optimizer_op_from_path (const char *path)
{
    for (int op = 0; path && op < AR_OP_COUNT; op++)
        if (s_ops[op].path && strcmp (path, s_ops[op].path) == 0)
            return op;
    return -1;
}

const char *ar_optimizer_op_kind (ar_optimizer_op_t op)
{
    return op < AR_OP_COUNT ? s_ops[op].kind : "?";
}

typedef struct {
    struct {
        ar_json_type_t type;
        const char *value;
        size_t len;
    } seen[M_COUNT];
    unsigned present;
    bool root_object;
    char unknown[80]; // first unknown or repeated member
    bool repeated;
} s_scan_t;

static int s_visit (const ar_json_item_t *item, void *arg)
{
    s_scan_t *scan = arg;
    if (item->depth == 0) {
        scan->root_object = item->type == AR_JSON_OBJECT;
        return scan->root_object ? 0 : 1;
    }
    for (int m = 0; m < M_COUNT; m++)
        if (item->key_len == strlen (s_member_names[m]) &&
            memcmp (item->key, s_member_names[m], item->key_len) == 0) {
            if (scan->present & BIT (m)) {
                scan->repeated = true;
                snprintf (scan->unknown, sizeof scan->unknown, "%s", s_member_names[m]);
                return 1;
            }
            scan->present |= BIT (m);
            scan->seen[m].type = item->type;
            scan->seen[m].value = item->value;
            scan->seen[m].len = item->value_len;
            return 0;
        }
    if (!*scan->unknown)
        snprintf (scan->unknown, sizeof scan->unknown, "%.*s",
                  (int)(item->key_len < 64 ? item->key_len : 64), item->key);
    return 0;
}

static int s_fail (char *param, size_t param_size, const char *member, char *error,
                   size_t error_size, const char *why)
{
    snprintf (param, param_size, "%s", member);
    snprintf (error, error_size, "%s", why);
    return -1;
}

//  Shape from the endpoint, with or without the /v1 prefix.
static int s_infer_shape (const char *endpoint, ar_shape_t *shape)
{
    const char *path = strncmp (endpoint, "/v1/", 4) == 0 ? endpoint + 3 : endpoint;
    if (strcmp (path, "/chat/completions") == 0)
        *shape = AR_SHAPE_OPENAI_CHAT;
    else if (strcmp (path, "/messages") == 0)
        *shape = AR_SHAPE_ANTHROPIC_MESSAGES;
    else
        return -1;
    return 0;
}

//  metadata: an object of scalars, normalized to strings (what the rules match on).
static int s_metadata (ar_optimizer_message_t *msg, const char *text, size_t len, char *param,
                       size_t param_size, char *error, size_t error_size)
{
    json_t *in = json_loadb (text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);
    json_t *out = json_object ();
    const char *key;
    json_t *value;
    int rc = 0;
    if (!in || !out) {
        rc = s_fail (param, param_size, "metadata", error, error_size,
                     "must be an object without repeated members");
        goto done;
    }
    json_object_foreach (in, key, value)
    {
        char text_value[64];
        const char *as_text = NULL;
        if (json_is_string (value))
            as_text = json_string_value (value);
        else if (json_is_boolean (value))
            as_text = json_is_true (value) ? "true" : "false";
        else if (json_is_number (value)) {
            double number = json_number_value (value);
            snprintf (text_value, sizeof text_value, "%.15g", number);
            as_text = text_value;
        } else if (json_is_null (value))
            continue;
        char path[300];
        snprintf (path, sizeof path, "metadata.%.200s", key);
        if (!as_text) {
            rc = s_fail (param, param_size, path, error, error_size,
                         "must be a string, a number or a boolean");
            goto done;
        }
        if (strlen (key) > 64 || strlen (as_text) > AR_OPTIMIZER_META_VALUE) {
            rc = s_fail (param, param_size, path, error, error_size,
                         "keys are at most 64 bytes and values at most 256");
            goto done;
        }
        json_object_set_new (out, key, json_string (as_text));
    }
    if (json_object_size (out) > 64)
        rc = s_fail (param, param_size, "metadata", error, error_size, "at most 64 members");
done:
    json_decref (in);
    if (rc == 0)
        msg->metadata = out;
    else
        json_decref (out);
    return rc;
}

static int s_int_member (const char *value, size_t len, int64_t min, int64_t max, int64_t *out)
{
    char text[32];
    if (len >= sizeof text)
        return -1;
    memcpy (text, value, len);
    text[len] = 0;
    char *end;
    double number = strtod (text, &end);
    if (*end || number < (double)min || number > (double)max)
        return -1;
    *out = (int64_t)number;
    return 0;
}

int ar_optimizer_message_parse (ar_optimizer_op_t op, const char *body, size_t len,
                                ar_optimizer_message_t *msg, char *param, size_t param_size,
                                char *error, size_t error_size)
{
    memset (msg, 0, sizeof *msg);
    msg->op = op;
    if (param_size)
        *param = 0;
    if (op >= AR_OP_COUNT)
        return s_fail (param, param_size, "", error, error_size, "unknown operation");
    s_scan_t scan;
    memset (&scan, 0, sizeof scan);
    size_t at = 0;
    const char *why = NULL;
    int rc = ar_json_scan (body ? body : "", body ? len : 0, 1, s_visit, &scan, &at, &why);
    if (rc < 0) {
        char reason[160];
        snprintf (reason, sizeof reason, "body is not valid JSON: %s at byte %zu", why, at);
        return s_fail (param, param_size, "", error, error_size, reason);
    }
    if (scan.repeated)
        return s_fail (param, param_size, scan.unknown, error, error_size,
                       "member given more than once");
    if (!scan.root_object)
        return s_fail (param, param_size, "", error, error_size, "body must be a JSON object");
    unsigned allowed = s_ops[op].allowed;
    for (int m = 0; m < M_COUNT; m++)
        if ((scan.present & BIT (m)) && !(allowed & BIT (m)))
            return s_fail (param, param_size, s_member_names[m], error, error_size,
                           "unknown member for this operation");
    if (*scan.unknown)
        return s_fail (param, param_size, scan.unknown, error, error_size, "unknown member");
    for (int m = 0; m < M_COUNT; m++)
        if ((s_ops[op].required & BIT (m)) && !(scan.present & BIT (m)))
            return s_fail (param, param_size, s_member_names[m], error, error_size,
                           "required member missing");
#define SEEN(m) (scan.present & BIT (m))
    if (SEEN (M_ENDPOINT)) {
        if (scan.seen[M_ENDPOINT].type != AR_JSON_STRING ||
            ar_json_string (scan.seen[M_ENDPOINT].value, scan.seen[M_ENDPOINT].len, msg->endpoint,
                            sizeof msg->endpoint) <= 0 ||
            msg->endpoint[0] != '/')
            return s_fail (param, param_size, "endpoint", error, error_size,
                           "must be a path such as \"/v1/chat/completions\" (at most 256 bytes)");
    }
    if (SEEN (M_SHAPE)) {
        char shape[32];
        if (scan.seen[M_SHAPE].type != AR_JSON_STRING ||
            ar_json_string (scan.seen[M_SHAPE].value, scan.seen[M_SHAPE].len, shape, sizeof shape) <
                0 ||
            (strcmp (shape, "openai.chat") != 0 && strcmp (shape, "anthropic.messages") != 0))
            return s_fail (param, param_size, "shape", error, error_size,
                           "must be \"openai.chat\" or \"anthropic.messages\"");
        msg->shape =
            strcmp (shape, "openai.chat") == 0 ? AR_SHAPE_OPENAI_CHAT : AR_SHAPE_ANTHROPIC_MESSAGES;
    } else if (SEEN (M_ENDPOINT) && op != AR_OP_RETRIEVE &&
               s_infer_shape (msg->endpoint, &msg->shape) != 0)
        return s_fail (param, param_size, "shape", error, error_size,
                       "required when the endpoint does not imply it (\"openai.chat\" or "
                       "\"anthropic.messages\")");
    if (SEEN (M_REQUEST)) {
        if (scan.seen[M_REQUEST].type != AR_JSON_OBJECT)
            return s_fail (param, param_size, "request", error, error_size,
                           "must be the provider request object");
        msg->request = scan.seen[M_REQUEST].value;
        msg->request_len = scan.seen[M_REQUEST].len;
    }
    if (SEEN (M_RESPONSE)) {
        if (scan.seen[M_RESPONSE].type != AR_JSON_OBJECT)
            return s_fail (param, param_size, "response", error, error_size,
                           "must be the provider response object");
        msg->response = scan.seen[M_RESPONSE].value;
        msg->response_len = scan.seen[M_RESPONSE].len;
    }
    if (SEEN (M_SHORT_CIRCUIT)) {
        ar_json_type_t type = scan.seen[M_SHORT_CIRCUIT].type;
        if (type != AR_JSON_TRUE && type != AR_JSON_FALSE)
            return s_fail (param, param_size, "canShortCircuit", error, error_size,
                           "must be a boolean");
        msg->can_short_circuit = type == AR_JSON_TRUE;
    }
    if (SEEN (M_BUDGET) && (scan.seen[M_BUDGET].type != AR_JSON_NUMBER ||
                            s_int_member (scan.seen[M_BUDGET].value, scan.seen[M_BUDGET].len, 1,
                                          60000, &msg->budget_ms) != 0))
        return s_fail (param, param_size, "budgetMs", error, error_size,
                       "must be a number of milliseconds from 1 to 60000");
    if (SEEN (M_TTL) && (scan.seen[M_TTL].type != AR_JSON_NUMBER ||
                         s_int_member (scan.seen[M_TTL].value, scan.seen[M_TTL].len, 1, 366 * 86400,
                                       &msg->ttl_seconds) != 0))
        return s_fail (param, param_size, "ttlSeconds", error, error_size,
                       "must be a number of seconds from 1 to 31622400");
    if (SEEN (M_ID)) {
        char id[64];
        int n = scan.seen[M_ID].type == AR_JSON_STRING
                    ? ar_json_string (scan.seen[M_ID].value, scan.seen[M_ID].len, id, sizeof id)
                    : -1;
        bool hex = n == 32;
        for (int i = 0; hex && i < 32; i++)
            hex = isxdigit ((unsigned char)id[i]) && !isupper ((unsigned char)id[i]);
        if (!hex)
            return s_fail (param, param_size, "id", error, error_size,
                           "must be the 32 lower-case hex digits of an elision marker");
        memcpy (msg->id, id, 33);
    }
    if (SEEN (M_METADATA)) {
        if (scan.seen[M_METADATA].type != AR_JSON_OBJECT)
            return s_fail (param, param_size, "metadata", error, error_size, "must be an object");
        if (s_metadata (msg, scan.seen[M_METADATA].value, scan.seen[M_METADATA].len, param,
                        param_size, error, error_size) != 0)
            return -1;
    }
#undef SEEN
    return 0;
}

void ar_optimizer_message_release (ar_optimizer_message_t *msg)
{
    json_decref (msg->metadata);
    msg->metadata = NULL;
}

const char *ar_optimizer_message_meta (const ar_optimizer_message_t *msg, const char *key)
{
    return json_string_value (json_object_get (msg->metadata, key));
}

char *ar_optimizer_error_body (const char *type, const char *message, const char *param)
{
    json_t *body = json_pack ("{s:{s:s, s:s, s:o}}", "error", "message", message, "type", type,
                              "param", param && *param ? json_string (param) : json_null ());
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    return text;
}

//  --------------------------------------------------------------------------
//  Self-test

static int s_parse (ar_optimizer_op_t op, const char *body, char *param, char *error)
{
    ar_optimizer_message_t msg;
    int rc = ar_optimizer_message_parse (op, body, strlen (body), &msg, param, 128, error, 256);
    ar_optimizer_message_release (&msg);
    return rc;
}

void ar_optimizer_message_test (bool verbose)
{
    (void)verbose;
    char param[128], error[256];
    ar_optimizer_message_t msg;
    const char *body = "{\"endpoint\":\"/v1/chat/completions\",\"request\":{\"model\":\"gpt-4o\","
                       "\"messages\":[]},\"metadata\":{\"user\":\"alice\",\"n\":42,\"ok\":true,"
                       "\"gone\":null},\"canShortCircuit\":true,\"budgetMs\":800}";
    assert (ar_optimizer_message_parse (AR_OP_OPTIMIZE, body, strlen (body), &msg, param,
                                        sizeof param, error, sizeof error) == 0);
    assert (msg.shape == AR_SHAPE_OPENAI_CHAT && msg.can_short_circuit && msg.budget_ms == 800);
    assert (strcmp (msg.endpoint, "/v1/chat/completions") == 0);
    assert (msg.request_len == strlen ("{\"model\":\"gpt-4o\",\"messages\":[]}"));
    assert (memcmp (msg.request, "{\"model\"", 8) == 0);
    assert (strcmp (ar_optimizer_message_meta (&msg, "user"), "alice") == 0);
    assert (strcmp (ar_optimizer_message_meta (&msg, "n"), "42") == 0);
    assert (strcmp (ar_optimizer_message_meta (&msg, "ok"), "true") == 0);
    assert (ar_optimizer_message_meta (&msg, "gone") == NULL);
    ar_optimizer_message_release (&msg);

    //  Shape inferred from the endpoint, or given, or refused.
    assert (s_parse (AR_OP_OPTIMIZE, "{\"endpoint\":\"/messages\",\"request\":{}}", param, error) ==
            0);
    assert (s_parse (AR_OP_OPTIMIZE,
                     "{\"endpoint\":\"/v1/embeddings\",\"request\":{},\"shape\":\"openai.chat\"}",
                     param, error) == 0);
    assert (s_parse (AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/embeddings\",\"request\":{}}", param,
                     error) == -1 &&
            strcmp (param, "shape") == 0);

    //  Every refusal names its member.
    struct {
        ar_optimizer_op_t op;
        const char *body, *param;
    } bad[] = {
        {AR_OP_OPTIMIZE, "[1]", ""},
        {AR_OP_OPTIMIZE, "{\"endpoint\":", ""},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\",\"request\":{\"a\":\"\xff\"}}", ""},
        {AR_OP_OPTIMIZE, "{\"request\":{}}", "endpoint"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\"}", "request"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\",\"request\":[]}", "request"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":7,\"request\":{}}", "endpoint"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\",\"request\":{},\"bogus\":1}", "bogus"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\",\"request\":{},\"id\":\"x\"}", "id"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\",\"request\":{},\"request\":{}}",
         "request"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\",\"request\":{},\"budgetMs\":-1}",
         "budgetMs"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\",\"request\":{},\"budgetMs\":\"9\"}",
         "budgetMs"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\",\"request\":{},\"canShortCircuit\":1}",
         "canShortCircuit"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\",\"request\":{},\"shape\":\"x\"}", "shape"},
        {AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/messages\",\"request\":{},\"metadata\":[]}",
         "metadata"},
        {AR_OP_OPTIMIZE,
         "{\"endpoint\":\"/v1/messages\",\"request\":{},\"metadata\":{\"team\":{\"a\":1}}}",
         "metadata.team"},
        {AR_OP_OPTIMIZE_RESPONSE, "{\"endpoint\":\"/v1/messages\",\"request\":{}}", "response"},
        {AR_OP_CACHE,
         "{\"endpoint\":\"/v1/messages\",\"request\":{},\"response\":{},"
         "\"ttlSeconds\":0}",
         "ttlSeconds"},
        {AR_OP_RETRIEVE, "{}", "id"},
        {AR_OP_RETRIEVE, "{\"id\":\"3F2A9C0E5B7D41A8B6E0C4D2F1A39E77\"}", "id"},
        {AR_OP_RETRIEVE, "{\"id\":\"3f2a\"}", "id"},
        {AR_OP_RETRIEVE, "{\"id\":\"3f2a9c0e5b7d41a8b6e0c4d2f1a39e77\",\"endpoint\":\"/\"}",
         "endpoint"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = s_parse (bad[i].op, bad[i].body, param, error);
        if (rc != -1 || strcmp (param, bad[i].param) != 0)
            fprintf (stderr, "case %zu: rc %d param '%s' (%s)\n", i, rc, param, error);
        assert (rc == -1 && strcmp (param, bad[i].param) == 0 && *error);
    }
    assert (s_parse (AR_OP_RETRIEVE, "{\"id\":\"3f2a9c0e5b7d41a8b6e0c4d2f1a39e77\"}", param,
                     error) == 0);
    assert (s_parse (AR_OP_CACHE,
                     "{\"endpoint\":\"/v1/chat/completions\",\"request\":{},\"response\":{},"
                     "\"ttlSeconds\":60}",
                     param, error) == 0);

    assert (ar_optimizer_op_from_kind ("optimize-response") == AR_OP_OPTIMIZE_RESPONSE);
    assert (ar_optimizer_op_from_path ("/v1/retrieve") == AR_OP_RETRIEVE);
    assert (ar_optimizer_op_from_path ("/v1/nope") == -1);
    assert (ar_optimizer_op_from_path ("expand") == -1 &&
            ar_optimizer_op_from_kind ("expand") == AR_OP_EXPAND);
    char *err = ar_optimizer_error_body ("invalid_request_error", "bad \"x\"", "request");
    assert (err && strcmp (err, "{\"error\":{\"message\":\"bad \\\"x\\\"\",\"type\":"
                                "\"invalid_request_error\",\"param\":\"request\"}}") == 0);
    free (err);
}
