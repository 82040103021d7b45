/*  ar_answer: the upstream's answer, in the caller's shape, as it arrives (see ar_answer.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <openssl/evp.h>
#include "ar_answer.h"
#include "ar_eventstream.h"
#include "ar_sse_splitter.h"
#include "ar_xlate.h"

#define s_EVENT_MAX (16u * 1024 * 1024) // one unfinished event or frame

struct ar_answer_t {
    ar_answer_config_t config;
    char model[256];
    bool streaming;   // events are forwarded as they come
    bool translating; // upstream shape != caller shape
    bool failed;      // the stream was ended with an error event: nothing more goes out
    ar_sse_splitter_t *splitter;
    ar_eventstream_decoder_t *decoder;
    ar_xlate_stream_t *xlate;
    ar_usage_t usage;
    ar_buf_t *out; // during feed and finish
};

ar_answer_t *ar_answer_new (const ar_answer_config_t *config)
{
    ar_answer_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    snprintf (self->model, sizeof self->model, "%s", config->model ? config->model : "");
    self->config.model = self->model;
    self->translating = config->upstream != config->caller;
    return self;
}

void ar_answer_destroy (ar_answer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_answer_t *self = *self_p;
    ar_sse_splitter_destroy (&self->splitter);
    ar_eventstream_decoder_destroy (&self->decoder);
    ar_xlate_stream_destroy (&self->xlate);
    free (self);
    *self_p = NULL;
}

const ar_usage_t *ar_answer_usage (ar_answer_t *self)
{
    return &self->usage;
}

bool ar_answer_start (ar_answer_t *self, long status, const char *content_type)
{
    const char *type = content_type ? content_type : "";
    bool ok = status >= 200 && status < 300;
    bool sse = strncasecmp (type, "text/event-stream", 17) == 0;
    bool frames = strncasecmp (type, "application/vnd.amazon.eventstream", 34) == 0;
    //  A stream the caller asked for, in the framing the target streams in (an upstream that
    //  answers a stream with JSON, say an error, is taken whole).
    bool framed = self->config.framing == AR_FRAMING_SSE ? (sse || !*type) : frames;
    if (!ok || !self->config.stream || !framed)
        return false;
    if (self->config.framing == AR_FRAMING_SSE)
        self->splitter = ar_sse_splitter_new (s_EVENT_MAX);
    else
        self->decoder = ar_eventstream_decoder_new (s_EVENT_MAX);
    if (self->translating)
        self->xlate = ar_xlate_stream_new (self->config.upstream, self->config.caller, self->model,
                                           self->config.include_usage);
    if ((!self->splitter && !self->decoder) || (self->translating && !self->xlate))
        return false; // out of memory: taken whole, and refused as not what was asked
    self->streaming = true;
    return true;
}

const char *ar_answer_content_type (ar_answer_t *self, const char *upstream_type)
{
    if (self->streaming)
        return self->translating || self->decoder ? "text/event-stream" : upstream_type;
    return upstream_type && *upstream_type ? upstream_type : "application/json";
}

//  ---------------------------------------------------------------------------
//  Events out: SSE in the caller's shape.

static int s_emit (void *arg, const char *name, const char *data, size_t len)
{
    ar_answer_t *self = arg;
    ar_buf_t *out = self->out;
    int rc = 0;
    if (name && *name) {
        rc |= ar_buf_add (out, "event: ", 7);
        rc |= ar_buf_add (out, name, strlen (name));
        rc |= ar_buf_add (out, "\n", 1);
    }
    rc |= ar_buf_add (out, "data: ", 6);
    rc |= ar_buf_add (out, data, len);
    rc |= ar_buf_add (out, "\n\n", 2);
    return rc ? -1 : 0;
}

//  End the caller's stream with an error event of its shape, built from an upstream error
//  payload (any shape) or a message of ours.
static int s_fail_stream (ar_answer_t *self, int status, const char *payload, size_t len,
                          const char *aws_type)
{
    if (self->failed)
        return -1;
    self->failed = true;
    json_t *error =
        payload ? ar_xlate_error_body (self->config.caller, self->config.error_shape, status,
                                       payload, len, aws_type)
                : ar_xlate_error_new (self->config.caller, status, "The upstream stream broke off.",
                                      NULL, "upstream_error");
    char *text = error ? json_dumps (error, JSON_COMPACT) : NULL;
    json_decref (error);
    if (text) {
        s_emit (self, self->config.caller == AR_SHAPE_ANTHROPIC ? "error" : NULL, text,
                strlen (text));
        free (text);
    }
    return -1;
}

//  ---------------------------------------------------------------------------
//  SSE in.

//  Same shape: the event as it came, with usage noted (and the injected usage event dropped).
static int s_on_passthrough (const char *event, size_t len, void *arg)
{
    ar_answer_t *self = arg;
    bool usage_only = false;
    const ar_wire_t *wire = self->config.usage_wire;
    if (wire)
        wire->stream_event (event, len, &self->usage, &usage_only);
    if (usage_only && self->config.strip_usage)
        return 0;
    size_t start = self->out->len;
    if (ar_buf_add (self->out, event, len) != 0)
        return -1;
    if (self->config.strip_usage && wire && wire->strip_event)
        self->out->len = start + wire->strip_event (self->out->data + start, len);
    return 0;
}

static int s_translate (ar_answer_t *self, const char *name, const char *data, size_t len)
{
    ar_xlate_sink_t sink = {s_emit, self};
    if (ar_xlate_stream_event (self->xlate, name, data, len, &sink, &self->usage) != 0) {
        self->failed = true; // the translator ended the stream with its own error event
        return -1;
    }
    return 0;
}

static int s_on_sse (const char *event, size_t len, void *arg)
{
    ar_answer_t *self = arg;
    char name[64];
    if (ar_sse_event_name (event, len, name, sizeof name) < 0)
        name[0] = 0; // a name this long is none we know
    size_t data_len = 0;
    char *data = ar_sse_event_data (event, len, &data_len);
    if (!data)
        return 0; // a comment or keep-alive
    int rc = s_translate (self, *name ? name : NULL, data, data_len);
    free (data);
    return rc;
}

//  ---------------------------------------------------------------------------
//  AWS eventstream in.

static int s_exception_status (const char *type, size_t len)
{
    static const struct {
        const char *type;
        int status;
    } map[] = {{"throttlingException", 429},         {"validationException", 400},
               {"serviceUnavailableException", 503}, {"modelTimeoutException", 504},
               {"accessDeniedException", 403},       {"resourceNotFoundException", 404}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen (map[i].type) == len && strncasecmp (map[i].type, type, len) == 0)
            return map[i].status;
    return 500;
}

//  Claude's events on Bedrock: {"bytes":"<base64 of one Anthropic event>"} per chunk frame.
static char *s_unwrap_bytes (const uint8_t *payload, size_t len, size_t *out_len)
{
    json_t *root = json_loadb ((const char *)payload, len, 0, NULL);
    const char *b64 = json_string_value (json_object_get (root, "bytes"));
    size_t b64_len = b64 ? strlen (b64) : 0;
    char *decoded = NULL;
    if (b64 && b64_len % 4 == 0 && b64_len < INT32_MAX) {
        decoded = malloc (b64_len / 4 * 3 + 1);
        int n = decoded ? EVP_DecodeBlock ((unsigned char *)decoded, (const unsigned char *)b64,
                                           (int)b64_len)
                        : -1;
        if (n < 0) {
            free (decoded);
            decoded = NULL;
        } else {
            //  EVP_DecodeBlock counts the padding's zero bytes too.
            while (b64_len && b64[b64_len - 1] == '=' && n > 0)
                n--, b64_len--;
            decoded[n] = 0;
            *out_len = (size_t)n;
        }
    }
    json_decref (root);
    return decoded;
}

static int s_on_frame (const ar_eventstream_message_t *msg, void *arg)
{
    ar_answer_t *self = arg;
    size_t kind_len = 0, type_len = 0;
    const char *kind = ar_eventstream_header_string (msg, ":message-type", &kind_len);
    if (kind && kind_len == 5 && memcmp (kind, "event", 5) == 0) {
        const char *type = ar_eventstream_header_string (msg, ":event-type", &type_len);
        char name[64] = "";
        if (type && type_len < sizeof name)
            memcpy (name, type, type_len), name[type_len] = 0;
        if (self->config.framing == AR_FRAMING_EVENTSTREAM)
            return s_translate (self, *name ? name : NULL, (const char *)msg->payload,
                                msg->payload_len);
        if (strcmp (name, "chunk") != 0)
            return 0; // nothing else is defined for InvokeModel streams
        size_t event_len = 0;
        char *event = s_unwrap_bytes (msg->payload, msg->payload_len, &event_len);
        if (!event)
            return s_fail_stream (self, 502, NULL, 0, NULL);
        json_t *root = json_loadb (event, event_len, 0, NULL);
        const char *event_type = json_string_value (json_object_get (root, "type"));
        char type_name[64] = "";
        if (event_type && strlen (event_type) < sizeof type_name)
            snprintf (type_name, sizeof type_name, "%s", event_type);
        json_decref (root);
        int rc;
        if (self->translating)
            rc = s_translate (self, *type_name ? type_name : NULL, event, event_len);
        else {
            //  Claude to an Anthropic caller: the event as Anthropic's API would send it.
            size_t start = self->out->len;
            rc = s_emit (self, type_name, event, event_len);
            bool usage_only = false;
            if (rc == 0 && self->config.usage_wire)
                self->config.usage_wire->stream_event (
                    self->out->data + start, self->out->len - start, &self->usage, &usage_only);
        }
        free (event);
        return rc;
    }
    //  An exception (or an error) frame ends the stream: the caller gets its own error event.
    const char *type = ar_eventstream_header_string (msg, ":exception-type", &type_len);
    if (!type)
        type = ar_eventstream_header_string (msg, ":error-code", &type_len);
    char aws_type[64] = "";
    if (type && type_len < sizeof aws_type)
        memcpy (aws_type, type, type_len), aws_type[type_len] = 0;
    return s_fail_stream (self, type ? s_exception_status (type, type_len) : 500,
                          (const char *)msg->payload, msg->payload_len,
                          *aws_type ? aws_type : NULL);
}

//  ---------------------------------------------------------------------------
//  Streams

int ar_answer_feed (ar_answer_t *self, const void *data, size_t len, ar_buf_t *out)
{
    if (self->failed)
        return -1;
    self->out = out;
    int rc;
    if (self->decoder) {
        rc = ar_eventstream_decoder_feed (self->decoder, data, len, s_on_frame, self);
        if (rc != 0 && !self->failed)
            s_fail_stream (self, 502, NULL, 0, NULL); // a bad frame or CRC
    } else if (self->translating)
        rc = ar_sse_splitter_feed (self->splitter, data, len, s_on_sse, self);
    else
        rc = ar_sse_splitter_feed (self->splitter, data, len, s_on_passthrough, self);
    self->out = NULL;
    return rc ? -1 : 0;
}

int ar_answer_finish (ar_answer_t *self, ar_buf_t *out)
{
    if (self->failed)
        return -1;
    self->out = out;
    int rc = 0;
    if (self->decoder) {
        if (ar_eventstream_decoder_finish (self->decoder) != 0)
            rc = s_fail_stream (self, 502, NULL, 0, NULL);
    } else
        rc = ar_sse_splitter_finish (self->splitter,
                                     self->translating ? s_on_sse : s_on_passthrough, self);
    if (rc == 0 && self->translating) {
        ar_xlate_sink_t sink = {s_emit, self};
        rc = ar_xlate_stream_finish (self->xlate, &sink, &self->usage);
        self->failed = rc != 0;
    }
    self->out = NULL;
    return rc ? -1 : 0;
}

//  ---------------------------------------------------------------------------
//  Whole answers

static json_t *s_response_to_caller (ar_answer_t *self, const json_t *upstream)
{
    json_t *openai = NULL;
    switch (self->config.upstream) {
    case AR_SHAPE_OPENAI:
        openai = json_incref ((json_t *)upstream);
        break;
    case AR_SHAPE_ANTHROPIC:
        openai = ar_xlate_anthropic_to_openai_response (upstream, &self->usage);
        break;
    case AR_SHAPE_CONVERSE:
        openai = ar_xlate_converse_to_openai_response (upstream, self->model, &self->usage);
        break;
    case AR_SHAPE_GEMINI:
        openai = ar_xlate_gemini_to_openai_response (upstream, self->model, &self->usage);
        break;
    }
    if (!openai || self->config.caller == AR_SHAPE_OPENAI)
        return openai;
    bool counted = self->config.upstream != AR_SHAPE_OPENAI;
    json_t *anthropic =
        ar_xlate_openai_to_anthropic_response (openai, counted ? NULL : &self->usage);
    json_decref (openai);
    return anthropic;
}

static int s_dump (json_t *root, ar_buf_t *out)
{
    char *text = root ? json_dumps (root, JSON_COMPACT) : NULL;
    int rc = text ? ar_buf_add (out, text, strlen (text)) : -1;
    free (text);
    return rc;
}

int ar_answer_whole (ar_answer_t *self, long *status, const char *body, size_t len,
                     const char *aws_error_type, ar_buf_t *out)
{
    bool ok = *status >= 200 && *status < 300;
    if (ok && !self->translating) {
        if (self->config.usage_wire && len)
            self->config.usage_wire->body_usage (body, len, &self->usage);
        return 1;
    }
    if (!ok) {
        if (self->config.error_shape == self->config.caller)
            return 1;
        json_t *error = ar_xlate_error_body (self->config.caller, self->config.error_shape,
                                             (int)*status, body, len, aws_error_type);
        int rc = s_dump (error, out);
        json_decref (error);
        return rc;
    }
    json_t *upstream = json_loadb (body, len, 0, NULL);
    json_t *answer = json_is_object (upstream) ? s_response_to_caller (self, upstream) : NULL;
    json_decref (upstream);
    int rc = answer ? s_dump (answer, out) : -1;
    json_decref (answer);
    if (rc == 0)
        return 0;
    *status = 502;
    json_t *error = ar_xlate_error_new (self->config.caller, 502,
                                        "The upstream answer was not in the shape its API "
                                        "defines, so it could not be translated.",
                                        NULL, "upstream_error");
    s_dump (error, out);
    json_decref (error);
    return -1;
}

//  ---------------------------------------------------------------------------
//  Self-test: the framings and the pass-through paths here; each translator tests its own
//  events, and the integration tests run every pair through real SDKs.

static void s_frame (ar_buf_t *out, const char *kind, const char *type, const char *payload)
{
    const char *names[] = {":message-type", ":event-type", ":content-type"};
    const char *values[] = {kind, type, "application/json"};
    if (strcmp (kind, "exception") == 0)
        names[1] = ":exception-type";
    assert (ar_eventstream_encode (names, values, 3, payload, strlen (payload), out) == 0);
}

static void s_chunk_frame (ar_buf_t *out, const char *event)
{
    size_t len = strlen (event);
    char *b64 = malloc (4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock ((unsigned char *)b64, (const unsigned char *)event, (int)len);
    char payload[2048];
    snprintf (payload, sizeof payload, "{\"bytes\":\"%s\",\"p\":\"abcdefgh\"}", b64);
    free (b64);
    s_frame (out, "event", "chunk", payload);
}

void ar_answer_test (bool verbose)
{
    if (verbose)
        printf (" * ar_answer: ");
    //  OpenAI to OpenAI: events pass through, the injected usage event is dropped and counted.
    ar_answer_config_t config = {.caller = AR_SHAPE_OPENAI,
                                 .upstream = AR_SHAPE_OPENAI,
                                 .error_shape = AR_SHAPE_OPENAI,
                                 .stream = true,
                                 .strip_usage = true,
                                 .model = "gpt-4o",
                                 .usage_wire = &ar_wire_openai};
    ar_answer_t *answer = ar_answer_new (&config);
    assert (ar_answer_start (answer, 200, "text/event-stream; charset=utf-8"));
    ar_buf_t out = {0};
    const char *events = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n"
                         "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens"
                         "\":1}}\n\ndata: [DO";
    assert (ar_answer_feed (answer, events, strlen (events), &out) == 0);
    assert (ar_answer_feed (answer, "NE]\n\n", 5, &out) == 0);
    assert (ar_answer_finish (answer, &out) == 0);
    assert (out.len &&
            strcmp (out.data, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
                              "data: [DONE]\n\n") == 0);
    assert (ar_answer_usage (answer)->input_tokens == 5);
    assert (strcmp (ar_answer_content_type (answer, "text/event-stream"), "text/event-stream") ==
            0);
    ar_answer_destroy (&answer);
    ar_buf_free (&out);

    //  A non-stream error in the caller's own shape passes through.
    answer = ar_answer_new (&config);
    assert (!ar_answer_start (answer, 429, "application/json"));
    long status = 429;
    const char *error = "{\"error\":{\"message\":\"slow\",\"type\":\"rate_limit\"}}";
    assert (ar_answer_whole (answer, &status, error, strlen (error), NULL, &out) == 1);
    assert (out.len == 0 && status == 429);
    ar_answer_destroy (&answer);
    ar_buf_free (&out);

    //  Claude on Bedrock to an Anthropic caller: base64 chunk frames become Anthropic's SSE,
    //  whatever way the bytes are cut; usage is read from the events.
    config = (ar_answer_config_t){.caller = AR_SHAPE_ANTHROPIC,
                                  .upstream = AR_SHAPE_ANTHROPIC,
                                  .error_shape = AR_SHAPE_CONVERSE,
                                  .framing = AR_FRAMING_EVENTSTREAM_BYTES,
                                  .stream = true,
                                  .model = "anthropic.claude",
                                  .usage_wire = &ar_wire_bedrock};
    ar_buf_t frames = {0};
    s_chunk_frame (&frames, "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":"
                            "\"claude\",\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}");
    s_chunk_frame (&frames, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                            "\"text_delta\",\"text\":\"Hi\"}}");
    s_chunk_frame (&frames, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                            "\"usage\":{\"output_tokens\":4}}");
    for (size_t cut = 1; cut < frames.len; cut += 37) {
        answer = ar_answer_new (&config);
        assert (ar_answer_start (answer, 200, "application/vnd.amazon.eventstream"));
        assert (ar_answer_feed (answer, frames.data, cut, &out) == 0);
        assert (ar_answer_feed (answer, frames.data + cut, frames.len - cut, &out) == 0);
        assert (ar_answer_finish (answer, &out) == 0);
        assert (strstr (out.data, "event: message_start\ndata: {\"type\":\"message_start\""));
        assert (strstr (out.data, "event: content_block_delta\ndata: "));
        assert (strstr (out.data, "\"text\":\"Hi\"") && strstr (out.data, "event: message_delta"));
        assert (ar_answer_usage (answer)->input_tokens == 11);
        assert (ar_answer_usage (answer)->output_tokens == 4);
        ar_answer_destroy (&answer);
        ar_buf_free (&out);
    }
    //  A frame with a bad CRC ends the stream with an Anthropic error event.
    answer = ar_answer_new (&config);
    assert (ar_answer_start (answer, 200, "application/vnd.amazon.eventstream"));
    frames.data[frames.len - 1] ^= 1;
    assert (ar_answer_feed (answer, frames.data, frames.len, &out) == -1);
    assert (strstr (out.data, "event: error\ndata: {"));
    assert (ar_answer_feed (answer, "x", 1, &out) == -1); // nothing after the end
    ar_answer_destroy (&answer);
    ar_buf_free (&out);
    ar_buf_free (&frames);
    //  An exception frame mid-stream: the caller's error event, with the status it implies.
    answer = ar_answer_new (&config);
    assert (ar_answer_start (answer, 200, "application/vnd.amazon.eventstream"));
    s_frame (&frames, "exception", "throttlingException", "{\"message\":\"Too many requests\"}");
    assert (ar_answer_feed (answer, frames.data, frames.len, &out) == -1);
    assert (strstr (out.data, "event: error\n") && strstr (out.data, "rate_limit_error"));
    ar_answer_destroy (&answer);
    ar_buf_free (&out);
    ar_buf_free (&frames);
    if (verbose)
        printf ("OK\n");
}
