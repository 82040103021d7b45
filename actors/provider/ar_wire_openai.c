/*  ar_wire_openai: the OpenAI wire (also what most OpenAI-compatible upstreams speak).

    Key: `Authorization: Bearer <key>`. Usage: a `usage` object with `prompt_tokens` and
    `completion_tokens`, at the top of a whole body, or in a streamed chunk. When a stream asks
    for `stream_options.include_usage`, the last chunk before `[DONE]` has `"choices":[]` and the
    usage; every other chunk says `"usage":null`, so the filter looks for an object, not the word.
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "ar_wire.h"
#include "ar_sse_splitter.h"
#include "ar_json_scan.h"

static struct curl_slist *s_key_headers (struct curl_slist *headers, const char *key)
{
    return ar_wire_key_header (headers, "Authorization: Bearer ", key);
}

//  Take usage and model from a parsed chunk or body.
static void s_usage_from (json_t *root, ar_usage_t *usage)
{
    //  The Responses API streams the whole response object in its last event.
    json_t *response = json_object_get (root, "response");
    if (json_is_object (response))
        root = response;
    json_t *model = json_object_get (root, "model");
    if (json_is_string (model) && json_string_length (model) > 0 &&
        json_string_length (model) <= AR_WIRE_MODEL_MAX)
        snprintf (usage->model, sizeof usage->model, "%s", json_string_value (model));
    json_t *object = json_object_get (root, "usage");
    if (!json_is_object (object))
        return;
    //  Chat and completions say prompt/completion; embeddings prompt only; Responses input/output.
    json_t *input = json_object_get (object, "prompt_tokens");
    json_t *output = json_object_get (object, "completion_tokens");
    json_t *details = json_object_get (object, "prompt_tokens_details");
    if (!input)
        input = json_object_get (object, "input_tokens");
    if (!output)
        output = json_object_get (object, "output_tokens");
    if (!details)
        details = json_object_get (object, "input_tokens_details");
    json_t *cached = json_object_get (details, "cached_tokens");
    if (json_is_integer (cached) && json_integer_value (cached) >= 0) {
        usage->cached_input_tokens = json_integer_value (cached);
        usage->has_cached = true;
    }
    if (json_is_integer (input) && json_integer_value (input) >= 0) {
        usage->input_tokens = json_integer_value (input);
        usage->has_input = true;
    }
    if (json_is_integer (output) && json_integer_value (output) >= 0) {
        usage->output_tokens = json_integer_value (output);
        usage->has_output = true;
    }
}

static void s_stream_event (const char *event, size_t len, ar_usage_t *usage, bool *usage_only)
{
    *usage_only = false;
    if (!ar_wire_has_object (event, len, "usage"))
        return; // the common case: a content delta, never parsed
    size_t data_len = 0;
    char *data = ar_sse_event_data (event, len, &data_len);
    if (!data)
        return;
    json_t *root = json_loadb (data, data_len, 0, NULL);
    free (data);
    if (!json_is_object (root)) {
        json_decref (root);
        return;
    }
    s_usage_from (root, usage);
    json_t *choices = json_object_get (root, "choices");
    *usage_only = json_is_object (json_object_get (root, "usage")) && json_is_array (choices) &&
                  json_array_size (choices) == 0;
    json_decref (root);
}

typedef struct {
    const char *model, *usage;
    size_t model_len, usage_len;
} s_top_spans_t;

static int s_top_spans (const ar_json_item_t *item, void *arg)
{
    s_top_spans_t *spans = arg;
    if (item->depth == 1 && item->key_len == 5 && memcmp (item->key, "model", 5) == 0)
        spans->model = item->value, spans->model_len = item->value_len;
    if (item->depth == 1 && item->key_len == 5 && memcmp (item->key, "usage", 5) == 0)
        spans->usage = item->value, spans->usage_len = item->value_len;
    return 0;
}

//  A whole body can be long (a big completion): scan it for the two top-level members we want
//  and build a DOM of those alone, instead of a DOM of the whole reply.
static void s_body_usage (const char *body, size_t len, ar_usage_t *usage)
{
    if (!ar_wire_has_object (body, len, "usage"))
        return;
    s_top_spans_t spans = {0};
    if (ar_json_scan (body, len, 1, s_top_spans, &spans, NULL, NULL) != 0 || !spans.usage)
        return;
    size_t size = spans.model_len + spans.usage_len + 32;
    char *doc = malloc (size);
    if (!doc)
        return;
    int doc_len = snprintf (doc, size, "{\"model\":%.*s,\"usage\":%.*s}",
                            spans.model ? (int)spans.model_len : 4,
                            spans.model ? spans.model : "null", (int)spans.usage_len, spans.usage);
    json_t *root = doc_len > 0 ? json_loadb (doc, (size_t)doc_len, 0, NULL) : NULL;
    free (doc);
    if (json_is_object (root))
        s_usage_from (root, usage);
    json_decref (root);
}

typedef struct {
    const char *member; // the first byte of the key's opening quote
    const char *end;    // one past the value
} s_null_usage_t;

static int s_find_null_usage (const ar_json_item_t *item, void *arg)
{
    s_null_usage_t *found = arg;
    if (item->depth == 1 && item->type == AR_JSON_NULL && item->key_len == 5 &&
        memcmp (item->key, "usage", 5) == 0) {
        found->member = item->key - 1;
        found->end = item->value + item->value_len;
        return 1;
    }
    return 0;
}

//  stream_options.include_usage makes OpenAI add "usage":null to every chunk; a caller who did
//  not ask for it would not see that member, so it goes, with the comma that joined it.
static size_t s_strip_event (char *event, size_t len)
{
    static const char prefix[] = "data: ";
    if (len < sizeof prefix || memcmp (event, prefix, sizeof prefix - 1) != 0 ||
        !memmem (event, len, "\"usage\":null", 12))
        return len;
    char *json = event + sizeof prefix - 1;
    char *line_end = memchr (json, '\n', len - (size_t)(json - event));
    if (!line_end)
        return len;
    size_t json_len = (size_t)(line_end - json);
    if (json_len && json[json_len - 1] == '\r')
        json_len--;
    s_null_usage_t found = {0};
    if (ar_json_scan (json, json_len, 1, s_find_null_usage, &found, NULL, NULL) != 1)
        return len;
    char *from = (char *)found.member, *to = (char *)found.end;
    //  Take the comma before the member, or else the one after it.
    char *before = from;
    while (before > json && (before[-1] == ' ' || before[-1] == '\t'))
        before--;
    if (before > json && before[-1] == ',')
        from = before - 1;
    else {
        char *after = to;
        while (after < json + json_len && (*after == ' ' || *after == '\t'))
            after++;
        if (after < json + json_len && *after == ',') {
            to = after + 1;
            while (to < json + json_len && (*to == ' ' || *to == '\t'))
                to++;
        }
    }
    memmove (from, to, len - (size_t)(to - event));
    return len - (size_t)(to - from);
}

const ar_wire_t ar_wire_openai = {
    .slug = "openai",
    .key_headers = s_key_headers,
    .stream_event = s_stream_event,
    .body_usage = s_body_usage,
    .strip_event = s_strip_event,
};

//  Azure OpenAI speaks OpenAI's shape; only its key header differs.
static struct curl_slist *s_azure_key_headers (struct curl_slist *headers, const char *key)
{
    return ar_wire_key_header (headers, "api-key: ", key);
}

const ar_wire_t ar_wire_azure_openai = {
    .slug = "azure-openai",
    .key_headers = s_azure_key_headers,
    .stream_event = s_stream_event,
    .body_usage = s_body_usage,
    .strip_event = s_strip_event,
};

//  ---------------------------------------------------------------------------
//  Self-test

void ar_wire_openai_test (bool verbose)
{
    //  strip_event removes the top-level "usage":null and its comma, nothing else.
    {
        char event[] =
            "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\":null\"}}],"
            "\"usage\":null}\n\n";
        size_t len = s_strip_event (event, strlen (event));
        event[len] = 0;
        assert (strcmp (event, "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":"
                               "\"\\\"usage\\\":null\"}}]}\n\n") == 0);
        char first[] = "data: {\"usage\":null, \"id\":\"c\"}\n\n";
        len = s_strip_event (first, strlen (first));
        first[len] = 0;
        assert (strcmp (first, "data: {\"id\":\"c\"}\n\n") == 0);
        char nested[] = "data: {\"x\":{\"usage\":null}}\n\n";
        assert (s_strip_event (nested, strlen (nested)) == strlen (nested)); // not top level
        char done[] = "data: [DONE]\n\n";
        assert (s_strip_event (done, strlen (done)) == strlen (done));
    }
    //  @selftest
    const ar_wire_t *wire = &ar_wire_openai;
    struct curl_slist *headers = wire->key_headers (NULL, "sk-test-123");
    assert (headers && strcmp (headers->data, "Authorization: Bearer sk-test-123") == 0);
    curl_slist_free_all (headers);

    //  A content delta: no usage, not parsed, not usage-only.
    ar_usage_t usage = {0};
    bool usage_only = true;
    const char *delta = "data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,"
                        "\"delta\":{\"content\":\"\\\"usage\\\": {\"}}],\"usage\":null}\n\n";
    wire->stream_event (delta, strlen (delta), &usage, &usage_only);
    assert (!usage_only && !usage.has_input && !usage.has_output);

    //  The final usage-only chunk.
    const char *final = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":"
                        "\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
                        "\"completion_tokens\":34,\"total_tokens\":46}}\n\n";
    wire->stream_event (final, strlen (final), &usage, &usage_only);
    assert (usage_only);
    assert (usage.has_input && usage.input_tokens == 12);
    assert (usage.has_output && usage.output_tokens == 34);
    assert (strcmp (usage.model, "gpt-4o-2024-08-06") == 0);

    //  Usage riding on a chunk that still has choices: counted, but not usage-only.
    ar_usage_t mixed = {0};
    const char *both = "data: {\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":1,"
                       "\"completion_tokens\":2}}\r\n\r\n";
    wire->stream_event (both, strlen (both), &mixed, &usage_only);
    assert (!usage_only && mixed.input_tokens == 1 && mixed.output_tokens == 2);

    //  Garbage that passes the filter is ignored.
    ar_usage_t none = {0};
    const char *bad = "data: {\"usage\": {\"prompt_tokens\": \n\n";
    wire->stream_event (bad, strlen (bad), &none, &usage_only);
    assert (!usage_only && !none.has_input);
    wire->stream_event ("data: [DONE]\n\n", 14, &none, &usage_only);
    assert (!usage_only && !none.has_input);

    //  A whole body.
    ar_usage_t body_usage = {0};
    const char *body = "{\"id\":\"c2\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,"
                       "\"message\":{\"role\":\"assistant\",\"content\":\"hi\"}}],"
                       "\"usage\": {\"prompt_tokens\": 7, \"completion_tokens\": 3}}";
    wire->body_usage (body, strlen (body), &body_usage);
    assert (body_usage.has_input && body_usage.input_tokens == 7);
    assert (body_usage.has_output && body_usage.output_tokens == 3);
    assert (strcmp (body_usage.model, "gpt-4o-mini") == 0);
    //  Cached input, and the Responses API's names inside its completed event.
    ar_usage_t cached = {0};
    const char *with_cache =
        "data: {\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":"
        "50,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\""
        ":40}}}\n\n";
    s_stream_event (with_cache, strlen (with_cache), &cached, &usage_only);
    assert (cached.has_cached && cached.cached_input_tokens == 40 && cached.input_tokens == 50);
    ar_usage_t responses = {0};
    const char *completed =
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{"
        "\"model\":\"gpt-4.1\",\"usage\":{\"input_tokens\":30,\"output_tokens\":7,"
        "\"input_tokens_details\":{\"cached_tokens\":3}}}}\n\n";
    s_stream_event (completed, strlen (completed), &responses, &usage_only);
    assert (!usage_only && responses.input_tokens == 30 && responses.output_tokens == 7);
    assert (responses.cached_input_tokens == 3 && strcmp (responses.model, "gpt-4.1") == 0);
    ar_usage_t neg = {0};
    const char *negative = "{\"usage\":{\"prompt_tokens\":-1,\"completion_tokens\":\"3\"}}";
    wire->body_usage (negative, strlen (negative), &neg);
    assert (!neg.has_input && !neg.has_output);
    //  @end
    if (verbose)
        printf ("ar_wire_openai: ok\n");
}
