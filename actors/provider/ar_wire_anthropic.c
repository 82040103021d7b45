/*  ar_wire_anthropic: the Anthropic wire, also what Claude answers with on Bedrock (InvokeModel)
    and Vertex AI (rawPredict), which is why those two providers' wires are here too.

    Key: `x-api-key: <key>` (anthropic-version and anthropic-beta travel per call). Usage: the
    message_start event carries the input side (input_tokens, and the cached parts beside it:
    cache_read_input_tokens and cache_creation_input_tokens, which input_tokens does not
    include), message_delta the output side; a whole message has both in its usage object. For
    spend, input is all three summed and cached is what the cache served.
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "ar_wire.h"
#include "ar_sse_splitter.h"

static struct curl_slist *s_key_headers (struct curl_slist *headers, const char *key)
{
    return ar_wire_key_header (headers, "x-api-key: ", key);
}

static int64_t s_count (json_t *usage, const char *name, bool *seen)
{
    json_t *value = json_object_get (usage, name);
    if (!json_is_integer (value) || json_integer_value (value) < 0)
        return 0;
    *seen = true;
    return json_integer_value (value);
}

//  A usage object, from message_start's message, message_delta or a whole message.
static void s_usage_from (json_t *object, json_t *model, ar_usage_t *usage)
{
    if (json_is_string (model) && json_string_length (model) > 0 &&
        json_string_length (model) <= AR_WIRE_MODEL_MAX)
        snprintf (usage->model, sizeof usage->model, "%s", json_string_value (model));
    json_t *counts = json_object_get (object, "usage");
    if (!json_is_object (counts))
        return;
    bool input_seen = false, output_seen = false, cached_seen = false, created_seen = false;
    int64_t input = s_count (counts, "input_tokens", &input_seen);
    int64_t cached = s_count (counts, "cache_read_input_tokens", &cached_seen);
    int64_t created = s_count (counts, "cache_creation_input_tokens", &created_seen);
    int64_t output = s_count (counts, "output_tokens", &output_seen);
    //  message_delta repeats the input counts only in newer API versions, and then they are
    //  the final ones; a delta without them leaves message_start's standing.
    if (input_seen) {
        usage->input_tokens = input + cached + created;
        usage->has_input = true;
    }
    if (cached_seen) {
        usage->cached_input_tokens = cached;
        usage->has_cached = true;
    }
    if (output_seen) {
        usage->output_tokens = output;
        usage->has_output = true;
    }
}

static void s_stream_event (const char *event, size_t len, ar_usage_t *usage, bool *usage_only)
{
    *usage_only = false;
    //  Only two event types carry usage; the text deltas are never parsed.
    if (!memmem (event, len, "\"usage\"", 7))
        return;
    size_t data_len = 0;
    char *data = ar_sse_event_data (event, len, &data_len);
    if (!data)
        return;
    json_t *root = json_loadb (data, data_len, 0, NULL);
    free (data);
    const char *type = json_string_value (json_object_get (root, "type"));
    if (type && strcmp (type, "message_start") == 0) {
        json_t *message = json_object_get (root, "message");
        s_usage_from (message, json_object_get (message, "model"), usage);
    } else if (type && strcmp (type, "message_delta") == 0)
        s_usage_from (root, NULL, usage);
    json_decref (root);
}

static void s_body_usage (const char *body, size_t len, ar_usage_t *usage)
{
    json_t *root = json_loadb (body, len, 0, NULL);
    if (json_is_object (root))
        s_usage_from (root, json_object_get (root, "model"), usage);
    json_decref (root);
}

const ar_wire_t ar_wire_anthropic = {
    .slug = "anthropic",
    .key_headers = s_key_headers,
    .stream_event = s_stream_event,
    .body_usage = s_body_usage,
};

//  Bedrock signs every request (SigV4) and Vertex presents an OAuth token: no key header. What
//  passes through unchanged from them is Claude's own answer.
const ar_wire_t ar_wire_bedrock = {
    .slug = "bedrock",
    .stream_event = s_stream_event,
    .body_usage = s_body_usage,
};

const ar_wire_t ar_wire_google_vertex_ai = {
    .slug = "google-vertex-ai",
    .stream_event = s_stream_event,
    .body_usage = s_body_usage,
};

//  ---------------------------------------------------------------------------
//  Self-test: the events and body as Anthropic sends them.

void ar_wire_anthropic_test (bool verbose)
{
    struct curl_slist *headers = s_key_headers (NULL, "sk-ant-TEST");
    assert (headers && strcmp (headers->data, "x-api-key: sk-ant-TEST") == 0);
    curl_slist_free_all (headers);

    ar_usage_t usage = {0};
    bool usage_only = true;
    const char *start =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
        "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\","
        "\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,"
        "\"cache_creation_input_tokens\":5,\"cache_read_input_tokens\":100,"
        "\"output_tokens\":1}}}\n\n";
    s_stream_event (start, strlen (start), &usage, &usage_only);
    assert (!usage_only && usage.has_input && usage.input_tokens == 130);
    assert (usage.has_cached && usage.cached_input_tokens == 100);
    assert (strcmp (usage.model, "claude-sonnet-4-5-20250929") == 0);
    const char *text = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                       "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"usage\"}}\n\n";
    s_stream_event (text, strlen (text), &usage, &usage_only);
    assert (usage.output_tokens == 1);
    const char *delta =
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n";
    s_stream_event (delta, strlen (delta), &usage, &usage_only);
    assert (usage.output_tokens == 15 && usage.input_tokens == 130); // input stands

    ar_usage_t whole = {0};
    const char *body = "{\"id\":\"msg_2\",\"type\":\"message\",\"model\":\"claude-x\",\"content\":"
                       "[{\"type\":\"text\",\"text\":\"hi\"}],\"usage\":{\"input_tokens\":9,"
                       "\"output_tokens\":3}}";
    s_body_usage (body, strlen (body), &whole);
    assert (whole.input_tokens == 9 && whole.output_tokens == 3 && !whole.has_cached);
    ar_usage_t bad = {0};
    s_body_usage ("{\"usage\":{\"input_tokens\":-1}}", 29, &bad);
    assert (!bad.has_input);
    s_body_usage ("not json", 8, &bad);
    assert (!bad.has_input && !bad.has_output);
    if (verbose)
        printf (" * ar_wire_anthropic: OK\n");
}
