/*  ar_chat_request: validation of POST /v1/chat/completions bodies. */
#include "ar_chat_request.h"
#include "ar_json_scan.h"
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ar_chat_request_t *request;
    bool root_object, has_model, has_messages;
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
    memset (self, 0, sizeof *self);
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
        s_fail (self, "model", "you must provide a model parameter");
        return -1;
    }
    if (!state.has_messages) {
        s_fail (self, "messages", "Missing required parameter: 'messages'.");
        return -1;
    }
    if (ar_json_scan (state.messages, state.messages_len, 1, s_visit_message, self, NULL, NULL) !=
        0)
        return -1;
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
    if (!self->stream || self->include_usage)
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

void ar_chat_request_test (bool verbose)
{
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
    (void)verbose;
}
