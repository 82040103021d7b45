/*  ar_chat_request: validation of model-call bodies (chat, messages, completions, ...). */
#include "ar_chat_request.h"
#include "ar_http_error.h"
#include "ar_json_scan.h"
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ar_chat_request_t *request;
    bool root_object, has_model, has_messages, has_max_tokens, has_input, has_prompt;
    const char *stream_options, *messages;
    size_t stream_options_len, messages_len;
} s_scan_state_t;

static bool s_key_is (const ar_json_item_t *item, const char *name)
{
    size_t len = strlen (name);
    return item->key_len == len && memcmp (item->key, name, len) == 0;
}

static int s_fail (ar_chat_request_t *request, const char *param, const char *message)
{
    request->param = param;
    snprintf (request->error, sizeof request->error, "%s", message);
    return 1; // stops the scan
}

static int s_visit (const ar_json_item_t *item, void *arg)
{
    s_scan_state_t *state = arg;
    ar_chat_request_t *request = state->request;
    if (item->depth == 0) {
        state->root_object = item->type == AR_JSON_OBJECT;
        return 0;
    }
    if (s_key_is (item, "model")) {
        if (item->type != AR_JSON_STRING ||
            ar_json_string (item->value, item->value_len, request->model, sizeof request->model) <=
                0)
            return s_fail (request, "model",
                           "'model' must be a non-empty string of at most 255 bytes.");
        state->has_model = true;
    } else if (s_key_is (item, "messages")) {
        if (item->type != AR_JSON_ARRAY)
            return s_fail (request, "messages", "'messages' must be an array.");
        state->has_messages = true;
        state->messages = item->value;
        state->messages_len = item->value_len;
    } else if (s_key_is (item, "max_tokens") && request->api == AR_API_MESSAGES) {
        if (item->type != AR_JSON_NUMBER || item->value_len > 9 ||
            memchr (item->value, '.', item->value_len) ||
            memchr (item->value, 'e', item->value_len) ||
            memchr (item->value, 'E', item->value_len) || item->value[0] == '-' ||
            atol (item->value) < 1)
            return s_fail (request, "max_tokens", "max_tokens: Input should be a positive integer");
        state->has_max_tokens = true;
    } else if (s_key_is (item, "input")) {
        if (item->type != AR_JSON_STRING && item->type != AR_JSON_ARRAY &&
            request->api == AR_API_EMBEDDINGS)
            return s_fail (request, "input", "'input' must be a string or an array.");
        state->has_input = item->type != AR_JSON_NULL;
    } else if (s_key_is (item, "prompt")) {
        if (item->type != AR_JSON_STRING && item->type != AR_JSON_ARRAY &&
            request->api == AR_API_COMPLETIONS)
            return s_fail (request, "prompt", "'prompt' must be a string or an array.");
        state->has_prompt = true;
    } else if (s_key_is (item, "stream")) {
        if (item->type != AR_JSON_TRUE && item->type != AR_JSON_FALSE && item->type != AR_JSON_NULL)
            return s_fail (request, "stream", "'stream' must be a boolean.");
        request->stream = item->type == AR_JSON_TRUE;
    } else if (s_key_is (item, "stream_options")) {
        if (item->type != AR_JSON_OBJECT && item->type != AR_JSON_NULL)
            return s_fail (request, "stream_options", "'stream_options' must be an object.");
        request->has_stream_options = item->type == AR_JSON_OBJECT;
        state->stream_options = item->value;
        state->stream_options_len = item->value_len;
    }
    return 0;
}

//  Messages: every element an object with a string role. A second, shallow scan of the array.
static int s_visit_message (const ar_json_item_t *item, void *arg)
{
    ar_chat_request_t *request = arg;
    if (item->depth == 1 && item->type != AR_JSON_OBJECT)
        return s_fail (request, "messages", "Each entry of 'messages' must be an object.");
    return 0;
}

int ar_chat_request_parse (ar_chat_request_t *self, const char *body, size_t len)
{
    return ar_chat_request_parse_api (self, AR_API_CHAT, body, len);
}

int ar_chat_request_parse_api (ar_chat_request_t *self, ar_api_t api, const char *body, size_t len)
{
    memset (self, 0, sizeof *self);
    self->api = api;
    bool anthropic = api == AR_API_MESSAGES || api == AR_API_COUNT_TOKENS;
    s_scan_state_t state = {.request = self};
    const char *error = NULL;
    size_t at = 0;
    int rc = ar_json_scan (body, len, 1, s_visit, &state, &at, &error);
    if (rc < 0) {
        snprintf (self->error, sizeof self->error,
                  "We could not parse the JSON body of your request: %s at byte %zu. (The body "
                  "must be valid JSON in UTF-8.)",
                  error, at);
        return -1;
    }
    if (rc > 0)
        return -1;
    if (!state.root_object) {
        s_fail (self, NULL, "The request body must be a JSON object.");
        return -1;
    }
    if (!state.has_model) {
        s_fail (self, "model",
                anthropic ? "model: Field required" : "you must provide a model parameter");
        return -1;
    }
    bool needs_messages = api == AR_API_CHAT || anthropic;
    if (needs_messages && !state.has_messages) {
        s_fail (self, "messages",
                anthropic ? "messages: Field required" : "Missing required parameter: 'messages'.");
        return -1;
    }
    if (api == AR_API_MESSAGES && !state.has_max_tokens) {
        s_fail (self, "max_tokens", "max_tokens: Field required");
        return -1;
    }
    if (api == AR_API_EMBEDDINGS && !state.has_input) {
        s_fail (self, "input", "Missing required parameter: 'input'.");
        return -1;
    }
    if (api == AR_API_COMPLETIONS && !state.has_prompt) {
        s_fail (self, "prompt", "Missing required parameter: 'prompt'.");
        return -1;
    }
    if (state.messages && ar_json_scan (state.messages, state.messages_len, 1, s_visit_message,
                                        self, NULL, NULL) != 0)
        return -1;
    if (api == AR_API_EMBEDDINGS || api == AR_API_COUNT_TOKENS)
        self->stream = false; // no streamed form: a stray member changes nothing
    if (state.stream_options && self->has_stream_options) {
        //  Small object: a DOM is fine here.
        json_t *options = json_loadb (state.stream_options, state.stream_options_len, 0, NULL);
        json_t *include = json_object_get (options, "include_usage");
        if (include && !json_is_boolean (include)) {
            json_decref (options);
            s_fail (self, "stream_options.include_usage", "'include_usage' must be a boolean.");
            return -1;
        }
        self->include_usage = json_is_true (include);
        json_decref (options);
    }
    return 0;
}

char *ar_chat_request_with_usage (const ar_chat_request_t *self, const char *body, size_t len,
                                  size_t *out_len)
{
    if (!self->stream || self->include_usage ||
        (self->api != AR_API_CHAT && self->api != AR_API_COMPLETIONS))
        return NULL;
    if (!self->has_stream_options) {
        //  No stream_options member: insert one right after the opening brace, a byte splice
        //  instead of a re-serialisation of what may be a 100 KB body.
        static const char member[] = "\"stream_options\":{\"include_usage\":true}";
        const char *brace = memchr (body, '{', len);
        if (!brace)
            return NULL;
        size_t head = (size_t)(brace - body) + 1;
        const char *p = brace + 1;
        while (p < body + len && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        bool empty = p < body + len && *p == '}';
        size_t extra = sizeof member - 1 + (empty ? 0 : 1);
        char *out = malloc (len + extra + 1);
        if (!out)
            return NULL;
        memcpy (out, body, head);
        memcpy (out + head, member, sizeof member - 1);
        if (!empty)
            out[head + sizeof member - 1] = ',';
        memcpy (out + head + extra, body + head, len - head);
        out[len + extra] = 0;
        *out_len = len + extra;
        return out;
    }
    //  stream_options exists without include_usage: rare, so the DOM route is fine.
    json_t *root = json_loadb (body, len, 0, NULL);
    json_t *options = json_object_get (root, "stream_options");
    if (!json_is_object (options)) {
        json_decref (root);
        return NULL;
    }
    json_object_set_new (options, "include_usage", json_true ());
    char *out = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    if (out)
        *out_len = strlen (out);
    return out;
}

typedef struct {
    const char *value; // the top-level model's bytes (with quotes), when found
    size_t value_len;
} s_model_at_t;

static int s_find_model (const ar_json_item_t *item, void *arg)
{
    s_model_at_t *at = arg;
    if (item->depth == 1 && item->key_len == 5 && memcmp (item->key, "model", 5) == 0 &&
        item->type == AR_JSON_STRING) {
        at->value = item->value;
        at->value_len = item->value_len;
        return 1;
    }
    return 0;
}

char *ar_chat_request_with_model (const char *body, size_t len, const char *model, size_t *out_len)
{
    s_model_at_t at = {0};
    ar_json_scan (body, len, 1, s_find_model, &at, NULL, NULL);
    if (!at.value)
        return NULL;
    size_t room = strlen (model) * 6 + 3; // every byte \u-escaped at worst, and the quotes
    char *escaped = malloc (room);
    if (!escaped)
        return NULL;
    escaped[0] = '"';
    size_t n = ar_json_escape (escaped + 1, room - 2, model);
    escaped[n + 1] = '"';
    escaped[n + 2] = 0;
    size_t head = (size_t)(at.value - body), tail = len - head - at.value_len;
    char *out = malloc (head + n + 2 + tail + 1);
    if (out) {
        memcpy (out, body, head);
        memcpy (out + head, escaped, n + 2);
        memcpy (out + head + n + 2, at.value + at.value_len, tail);
        out[head + n + 2 + tail] = 0;
        *out_len = head + n + 2 + tail;
    }
    free (escaped);
    return out;
}

void ar_chat_request_test (bool verbose)
{
    //  A routing target's model replaces the caller's, and only the top-level one.
    {
        const char *body = "{\"messages\":[{\"model\":\"inner\"}],\"model\" : \"gpt-4o\",\"n\":1}";
        size_t out_len = 0;
        char *out = ar_chat_request_with_model (body, strlen (body), "m\"x", &out_len);
        assert (out && out_len == strlen (out));
        assert (
            strcmp (out, "{\"messages\":[{\"model\":\"inner\"}],\"model\" : \"m\\\"x\",\"n\":1}") ==
            0);
        free (out);
        assert (ar_chat_request_with_model ("{\"model\":1}", 11, "m", &out_len) == NULL);
        assert (ar_chat_request_with_model ("{\"x\":\"model\"}", 15, "m", &out_len) == NULL);
    }

    ar_chat_request_t r;
    const char *ok =
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    assert (ar_chat_request_parse (&r, ok, strlen (ok)) == 0);
    assert (strcmp (r.model, "gpt-4o-mini") == 0 && !r.stream);
    size_t out_len = 0;
    assert (ar_chat_request_with_usage (&r, ok, strlen (ok), &out_len) == NULL);

    //  Streaming without include_usage: the splice adds it and stays valid JSON.
    const char *st = " { \"stream\":true,\"model\":\"m\",\"messages\":[{}]}";
    assert (ar_chat_request_parse (&r, st, strlen (st)) == 0 && r.stream && !r.include_usage);
    char *spliced = ar_chat_request_with_usage (&r, st, strlen (st), &out_len);
    assert (spliced && out_len == strlen (spliced));
    ar_chat_request_t again;
    assert (ar_chat_request_parse (&again, spliced, out_len) == 0);
    assert (again.stream && again.include_usage);
    free (spliced);

    //  stream_options present without include_usage: rewritten through the DOM.
    const char *so = "{\"stream\":true,\"stream_options\":{},\"model\":\"m\",\"messages\":[]}";
    assert (ar_chat_request_parse (&r, so, strlen (so)) == 0 && r.has_stream_options);
    char *rewritten = ar_chat_request_with_usage (&r, so, strlen (so), &out_len);
    assert (rewritten && ar_chat_request_parse (&again, rewritten, out_len) == 0);
    assert (again.include_usage);
    free (rewritten);
    const char *asked = "{\"stream\":true,\"stream_options\":{\"include_usage\":true},\"model\":"
                        "\"m\",\"messages\":[]}";
    assert (ar_chat_request_parse (&r, asked, strlen (asked)) == 0 && r.include_usage);
    assert (ar_chat_request_with_usage (&r, asked, strlen (asked), &out_len) == NULL);

    //  Refusals name the parameter.
    struct {
        const char *body;
        const char *param;
    } bad[] = {
        {"{\"messages\":[]}", "model"},
        {"{\"model\":1,\"messages\":[]}", "model"},
        {"{\"model\":\"\",\"messages\":[]}", "model"},
        {"{\"model\":\"m\"}", "messages"},
        {"{\"model\":\"m\",\"messages\":{}}", "messages"},
        {"{\"model\":\"m\",\"messages\":[{},\"x\"]}", "messages"},
        {"{\"model\":\"m\",\"messages\":[],\"stream\":\"yes\"}", "stream"},
        {"{\"model\":\"m\",\"messages\":[],\"stream_options\":1}", "stream_options"},
        {"{\"model\":\"m\",\"messages\":[],\"stream_options\":{\"include_usage\":1}}",
         "stream_options.include_usage"},
        {"[1]", NULL},
        {"{\"model\":\"m\",", NULL},
        {"{\"model\":\"\xff\",\"messages\":[]}", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert (ar_chat_request_parse (&r, bad[i].body, strlen (bad[i].body)) == -1);
        assert (*r.error);
        if (bad[i].param)
            assert (r.param && strcmp (r.param, bad[i].param) == 0);
    }
    //  Each endpoint's own required members.
    struct {
        ar_api_t api;
        const char *body;
        const char *param; // NULL: accepted
    } apis[] = {
        {AR_API_MESSAGES, "{\"model\":\"claude\",\"max_tokens\":64,\"messages\":[{}]}", NULL},
        {AR_API_MESSAGES, "{\"model\":\"claude\",\"messages\":[{}]}", "max_tokens"},
        {AR_API_MESSAGES, "{\"model\":\"claude\",\"max_tokens\":0,\"messages\":[]}", "max_tokens"},
        {AR_API_MESSAGES, "{\"model\":\"claude\",\"max_tokens\":1.5,\"messages\":[]}",
         "max_tokens"},
        {AR_API_MESSAGES, "{\"model\":\"claude\",\"max_tokens\":\"9\",\"messages\":[]}",
         "max_tokens"},
        {AR_API_MESSAGES, "{\"model\":\"claude\",\"max_tokens\":9}", "messages"},
        {AR_API_COUNT_TOKENS, "{\"model\":\"claude\",\"messages\":[]}", NULL},
        {AR_API_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"hi\"}", NULL},
        {AR_API_EMBEDDINGS, "{\"model\":\"e\",\"input\":[1,2]}", NULL},
        {AR_API_EMBEDDINGS, "{\"model\":\"e\"}", "input"},
        {AR_API_EMBEDDINGS, "{\"model\":\"e\",\"input\":{}}", "input"},
        {AR_API_COMPLETIONS, "{\"model\":\"c\",\"prompt\":\"hi\",\"stream\":true}", NULL},
        {AR_API_COMPLETIONS, "{\"model\":\"c\"}", "prompt"},
        {AR_API_RESPONSES, "{\"model\":\"r\",\"input\":\"hi\"}", NULL},
        {AR_API_RESPONSES, "{\"input\":\"hi\"}", "model"},
    };
    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++) {
        int rc = ar_chat_request_parse_api (&r, apis[i].api, apis[i].body, strlen (apis[i].body));
        assert (rc == (apis[i].param ? -1 : 0));
        if (apis[i].param)
            assert (r.param && strcmp (r.param, apis[i].param) == 0);
    }
    //  Usage is asked for only where stream_options exists.
    const char *cs = "{\"model\":\"c\",\"prompt\":\"hi\",\"stream\":true}";
    assert (ar_chat_request_parse_api (&r, AR_API_COMPLETIONS, cs, strlen (cs)) == 0 && r.stream);
    char *with = ar_chat_request_with_usage (&r, cs, strlen (cs), &out_len);
    assert (with && strstr (with, "include_usage"));
    free (with);
    const char *ms = "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[],\"stream\":true}";
    assert (ar_chat_request_parse_api (&r, AR_API_MESSAGES, ms, strlen (ms)) == 0 && r.stream);
    assert (ar_chat_request_with_usage (&r, ms, strlen (ms), &out_len) == NULL);
    (void)verbose;
}
