/*  ar_optimizer_exchange: wrap a chat request as a /v1/optimize message; read the reply. */
#include "ar_optimizer_exchange.h"
#include "ar_json_scan.h"
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *ar_exchange_wrap (const char *endpoint, const char *shape, const char *metadata,
                        bool can_short_circuit, uint32_t budget_ms, const char *body, size_t len,
                        size_t *out_len)
{
    char head[4096];
    int n = snprintf (head, sizeof head,
                      "{\"endpoint\":\"%s\",\"shape\":\"%s\",\"canShortCircuit\":%s,"
                      "\"budgetMs\":%u,\"metadata\":%s,\"request\":",
                      endpoint, shape, can_short_circuit ? "true" : "false", budget_ms,
                      metadata && *metadata ? metadata : "{}");
    if (n < 0 || (size_t)n >= sizeof head)
        return NULL;
    char *out = malloc ((size_t)n + len + 2);
    if (!out)
        return NULL;
    memcpy (out, head, (size_t)n);
    memcpy (out + n, body, len);
    out[(size_t)n + len] = '}';
    out[(size_t)n + len + 1] = 0;
    *out_len = (size_t)n + len + 1;
    return out;
}

char *ar_exchange_wrap_expand (const char *endpoint, const char *shape, const char *request,
                               size_t request_len, const char *response, size_t response_len,
                               size_t *out_len)
{
    char head[512];
    int n = snprintf (head, sizeof head,
                      "{\"endpoint\":\"%s\",\"shape\":\"%s\",\"response\":", endpoint, shape);
    if (n < 0 || (size_t)n >= sizeof head)
        return NULL;
    static const char mid[] = ",\"request\":";
    size_t total = (size_t)n + response_len + sizeof mid - 1 + request_len + 1;
    char *out = malloc (total + 1);
    if (!out)
        return NULL;
    size_t at = 0;
    memcpy (out, head, (size_t)n);
    at += (size_t)n;
    memcpy (out + at, response, response_len);
    at += response_len;
    memcpy (out + at, mid, sizeof mid - 1);
    at += sizeof mid - 1;
    memcpy (out + at, request, request_len);
    at += request_len;
    out[at++] = '}';
    out[at] = 0;
    *out_len = at;
    return out;
}

typedef struct {
    ar_exchange_expand_t *reply;
    bool root_object, has_expanded;
} s_read_expand_t;

static bool s_key (const ar_json_item_t *item, const char *name)
{
    return item->key && item->key_len == strlen (name) &&
           memcmp (item->key, name, item->key_len) == 0;
}

static int s_visit_expand (const ar_json_item_t *item, void *arg)
{
    s_read_expand_t *read = arg;
    if (item->depth == 0)
        read->root_object = item->type == AR_JSON_OBJECT;
    else if (s_key (item, "expanded") &&
             (item->type == AR_JSON_TRUE || item->type == AR_JSON_FALSE)) {
        read->reply->expanded = item->type == AR_JSON_TRUE;
        read->has_expanded = true;
    } else if (s_key (item, "request") && item->type == AR_JSON_OBJECT) {
        read->reply->request = item->value;
        read->reply->request_len = item->value_len;
    } else if (s_key (item, "response") && item->type == AR_JSON_OBJECT) {
        read->reply->response = item->value;
        read->reply->response_len = item->value_len;
    }
    return 0;
}

int ar_exchange_read_expand (const char *body, size_t len, ar_exchange_expand_t *reply)
{
    memset (reply, 0, sizeof *reply);
    s_read_expand_t read = {.reply = reply};
    if (!body || ar_json_scan (body, len, 1, s_visit_expand, &read, NULL, NULL) != 0 ||
        !read.root_object || !read.has_expanded || (reply->expanded && !reply->request))
        return -1;
    return 0;
}

typedef struct {
    ar_exchange_reply_t *reply;
    const char *applied, *skipped;
    size_t applied_len, skipped_len;
    bool root_object, has_changed;
} s_read_t;

static int64_t s_number (const ar_json_item_t *item)
{
    char text[32];
    size_t len = item->value_len < sizeof text - 1 ? item->value_len : sizeof text - 1;
    memcpy (text, item->value, len);
    text[len] = 0;
    return strtoll (text, NULL, 10);
}

static int s_visit (const ar_json_item_t *item, void *arg)
{
    s_read_t *read = arg;
    ar_exchange_reply_t *reply = read->reply;
    if (item->depth == 0) {
        read->root_object = item->type == AR_JSON_OBJECT;
        return 0;
    }
    bool boolean = item->type == AR_JSON_TRUE || item->type == AR_JSON_FALSE;
    if (s_key (item, "changed") && boolean) {
        reply->changed = item->type == AR_JSON_TRUE;
        read->has_changed = true;
    } else if (s_key (item, "cacheHit") && boolean)
        reply->cache_hit = item->type == AR_JSON_TRUE;
    else if (s_key (item, "request") && item->type == AR_JSON_OBJECT) {
        reply->request = item->value;
        reply->request_len = item->value_len;
    } else if (s_key (item, "cachedResponse") && item->type == AR_JSON_OBJECT) {
        reply->cached_response = item->value;
        reply->cached_response_len = item->value_len;
    } else if (s_key (item, "tokensBefore") && item->type == AR_JSON_NUMBER)
        reply->tokens_before = s_number (item);
    else if (s_key (item, "tokensAfter") && item->type == AR_JSON_NUMBER)
        reply->tokens_after = s_number (item);
    else if (s_key (item, "applied") && item->type == AR_JSON_ARRAY) {
        read->applied = item->value;
        read->applied_len = item->value_len;
    } else if (s_key (item, "skipped") && item->type == AR_JSON_ARRAY) {
        read->skipped = item->value;
        read->skipped_len = item->value_len;
    } else if (s_key (item, "retrieveTool") && item->type == AR_JSON_OBJECT) {
        json_t *tool = json_loadb (item->value, item->value_len, 0, NULL);
        json_int_t calls = json_integer_value (json_object_get (tool, "maxCalls"));
        reply->retrieve_max_calls = calls > 0 && calls <= 8 ? (int)calls : 0;
        json_decref (tool);
    }
    return 0;
}

int ar_exchange_read (const char *body, size_t len, ar_exchange_reply_t *reply)
{
    memset (reply, 0, sizeof *reply);
    s_read_t read = {.reply = reply};
    if (!body || ar_json_scan (body, len, 1, s_visit, &read, NULL, NULL) != 0 ||
        !read.root_object || !read.has_changed || (reply->changed && !reply->request) ||
        (reply->cache_hit && !reply->cached_response))
        return -1;
    //  The report is small: a DOM of just it.
    json_t *applied = read.applied ? json_loadb (read.applied, read.applied_len, 0, NULL) : NULL;
    json_t *skipped = read.skipped ? json_loadb (read.skipped, read.skipped_len, 0, NULL) : NULL;
    size_t i;
    json_t *row;
    json_array_foreach (applied, i, row)
    {
        const char *kind = json_string_value (json_object_get (row, "kind"));
        if (!kind || reply->applied_count == AR_EXCHANGE_STEPS)
            continue;
        ar_exchange_step_t *step = &reply->applied[reply->applied_count++];
        snprintf (step->kind, sizeof step->kind, "%s", kind);
        step->changed = json_is_true (json_object_get (row, "changed"));
        step->before = json_integer_value (json_object_get (row, "tokensBefore"));
        step->after = json_integer_value (json_object_get (row, "tokensAfter"));
    }
    json_array_foreach (skipped, i, row)
    {
        const char *kind = json_string_value (json_object_get (row, "kind"));
        const char *reason = json_string_value (json_object_get (row, "reason"));
        if (!kind || !reason || reply->skipped_count == AR_EXCHANGE_STEPS)
            continue;
        ar_exchange_skip_t *skip = &reply->skipped[reply->skipped_count++];
        snprintf (skip->kind, sizeof skip->kind, "%s", kind);
        snprintf (skip->reason, sizeof skip->reason, "%s", reason);
    }
    json_decref (applied);
    json_decref (skipped);
    return 0;
}

size_t ar_exchange_header (const ar_exchange_reply_t *reply, char *out, size_t size)
{
    size_t len = 0;
    if (size)
        out[0] = 0;
    for (size_t i = 0; i < reply->applied_count; i++) {
        if (!reply->applied[i].changed)
            continue;
        int n = snprintf (len < size ? out + len : NULL, len < size ? size - len : 0, "%s%s",
                          len ? "," : "", reply->applied[i].kind);
        len += n > 0 ? (size_t)n : 0;
    }
    return len;
}

int ar_exchange_savings_json (const ar_exchange_reply_t *reply, char *out, size_t size)
{
    size_t len = 0;
    int n = snprintf (out, size, "[");
    len += (size_t)n;
    for (size_t i = 0; i < reply->applied_count && len < size; i++) {
        const ar_exchange_step_t *step = &reply->applied[i];
        //  Kinds are registry identifiers ([a-z_]); nothing here needs escaping.
        n = snprintf (out + len, size - len,
                      "%s{\"kind\":\"%s\",\"tokens_before\":%lld,\"tokens_after\":%lld}",
                      i ? "," : "", step->kind, (long long)step->before, (long long)step->after);
        len += n > 0 ? (size_t)n : 0;
    }
    if (len < size)
        len += (size_t)snprintf (out + len, size - len, "]");
    return len < size ? (int)len : -1;
}

void ar_optimizer_exchange_test (bool verbose)
{
    (void)verbose;
    const char *body = "{\"model\":\"m\",\"messages\":[]}";
    size_t len = 0;
    char *msg = ar_exchange_wrap ("/v1/chat/completions", "openai.chat", "{\"team\":\"a\"}", true,
                                  800, body, strlen (body), &len);
    assert (msg && strlen (msg) == len);
    json_t *root = json_loads (msg, 0, NULL);
    assert (root && json_integer_value (json_object_get (root, "budgetMs")) == 800);
    assert (json_is_true (json_object_get (root, "canShortCircuit")));
    assert (
        strcmp (json_string_value (json_object_get (json_object_get (root, "metadata"), "team")),
                "a") == 0);
    assert (json_is_array (json_object_get (json_object_get (root, "request"), "messages")));
    json_decref (root);
    free (msg);
    msg = ar_exchange_wrap ("/v1/chat/completions", "openai.chat", NULL, false, 5, body,
                            strlen (body), &len);
    root = json_loads (msg, 0, NULL);
    assert (root && json_is_object (json_object_get (root, "metadata")));
    json_decref (root);
    free (msg);

    const char *reply_text =
        "{\"changed\":true,\"cacheHit\":false,\"cachedResponse\":null,\"applied\":["
        "{\"kind\":\"window_budget\",\"changed\":true,\"tokensBefore\":900,\"tokensAfter\":300,"
        "\"ms\":0.5},{\"kind\":\"tool_pruning\",\"changed\":false,\"tokensBefore\":300,"
        "\"tokensAfter\":300,\"ms\":0.01},{\"kind\":\"param_tuning\",\"changed\":true,"
        "\"tokensBefore\":300,\"tokensAfter\":300,\"ms\":0.01,\"note\":\"x\"}],\"skipped\":["
        "{\"kind\":\"code_graph\",\"reason\":\"unavailable\"}],\"tokensBefore\":900,"
        "\"tokensAfter\":300,\"stashIds\":[],\"request\":{\"model\":\"m\",\"max_tokens\":1}}";
    ar_exchange_reply_t reply;
    assert (ar_exchange_read (reply_text, strlen (reply_text), &reply) == 0);
    assert (reply.changed && !reply.cache_hit && reply.tokens_before == 900 &&
            reply.tokens_after == 300);
    assert (reply.request_len == strlen ("{\"model\":\"m\",\"max_tokens\":1}"));
    assert (reply.applied_count == 3 && reply.skipped_count == 1);
    assert (strcmp (reply.skipped[0].reason, "unavailable") == 0);
    char header[128];
    assert (ar_exchange_header (&reply, header, sizeof header) ==
            strlen ("window_budget,param_tuning"));
    assert (strcmp (header, "window_budget,param_tuning") == 0);
    char savings[512];
    int n = ar_exchange_savings_json (&reply, savings, sizeof savings);
    assert (n > 0 && (size_t)n == strlen (savings));
    root = json_loads (savings, 0, NULL);
    assert (json_array_size (root) == 3);
    assert (json_integer_value (json_object_get (json_array_get (root, 0), "tokens_after")) == 300);
    json_decref (root);
    assert (ar_exchange_savings_json (&reply, savings, 20) == -1);

    //  The retrieve tool: offered rounds, the expand message and its reply.
    const char *offered = "{\"changed\":true,\"retrieveTool\":{\"maxCalls\":2},\"request\":{}}";
    assert (ar_exchange_read (offered, strlen (offered), &reply) == 0);
    assert (reply.retrieve_max_calls == 2);
    msg = ar_exchange_wrap_expand ("/v1/chat/completions", "openai.chat", "{\"messages\":[]}", 15,
                                   "{\"id\":\"r\"}", 10, &len);
    root = json_loads (msg, 0, NULL);
    assert (root && strlen (msg) == len);
    assert (json_is_array (json_object_get (json_object_get (root, "request"), "messages")));
    assert (strcmp (json_string_value (json_object_get (json_object_get (root, "response"), "id")),
                    "r") == 0);
    json_decref (root);
    free (msg);
    ar_exchange_expand_t expand;
    const char *more = "{\"expanded\":true,\"request\":{\"messages\":[1]}}";
    assert (ar_exchange_read_expand (more, strlen (more), &expand) == 0);
    assert (expand.expanded && expand.request_len == strlen ("{\"messages\":[1]}"));
    const char *cut = "{\"expanded\":false,\"response\":{\"id\":\"x\"}}";
    assert (ar_exchange_read_expand (cut, strlen (cut), &expand) == 0);
    assert (!expand.expanded && expand.response && !expand.request);
    assert (ar_exchange_read_expand ("{\"expanded\":true}", 17, &expand) == -1);
    assert (ar_exchange_read_expand ("[]", 2, &expand) == -1);

    //  Malformed replies are refused (the edge then forwards the original).
    const char *bad[] = {"",
                         "[]",
                         "{\"changed\":true}",
                         "{\"request\":{}}",
                         "{\"changed\":false,\"cacheHit\":true}",
                         "{\"changed\":\"yes\"}",
                         "{\"changed\":true,\"request\":{\"a\":}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert (ar_exchange_read (bad[i], strlen (bad[i]), &reply) == -1);
}
