/*  ar_xlate_stream_anthropic: streamed answers between Anthropic messages events and OpenAI
    chat.completion.chunk events, both ways, one upstream event in, zero or more events out.

    Anthropic -> OpenAI (Anthropic upstream, OpenAI caller). Anthropic sends typed events:
    message_start (id, model, input usage), then content blocks each opened, filled by deltas
    and closed (text, tool_use, thinking, ...), then message_delta (stop reason, output usage)
    and message_stop. OpenAI callers get one chunk per piece of text or tool-call arguments;
    the k-th tool_use block becomes tool call index k whatever its block index (thinking
    blocks in front of it are dropped), the finish chunk comes from message_delta, and the
    usage chunk and "[DONE]" from message_stop.

    OpenAI -> Anthropic (OpenAI-shaped upstream, Anthropic caller): chunks carry no block
    structure, so it is rebuilt here: text opens a text block, each new tool-call index closes
    the open block and opens a tool_use block, finish_reason closes the last. Usage arrives in
    its own chunk after finish_reason, so message_delta waits for "[DONE]" (or the end of the
    stream) to carry it.

    Either way the message id survives a round trip (msg_X <-> chatcmpl-X), and a stream that
    ends before the upstream said it was complete ends with an error event, never with a
    normal close the caller would take for a whole answer.
*/
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <jansson.h>
#include "ar_xlate_chunks.h"
#include "ar_xlate_reasons.h"

#define S_ID_MAX    160
#define S_INDEX_MAX 1024 // a block or tool-call index beyond this is a malformed stream

//  ---------------------------------------------------------------------------
//  Shared helpers

static bool s_int (const json_t *object, const char *key, int64_t *value)
{
    json_t *member = json_object_get (object, key);
    if (!json_is_integer (member) || json_integer_value (member) < 0)
        return false;
    *value = json_integer_value (member);
    return true;
}

static const char *s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

static bool s_has_prefix (const char *s, const char *prefix)
{
    return strncmp (s, prefix, strlen (prefix)) == 0;
}

//  An id for when the upstream gave none: prefix and 24 random hex digits.
static void s_random_id (char *buf, size_t size, const char *prefix)
{
    unsigned char raw[12] = {0};
    if (getrandom (raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        //  Only before the entropy pool is seeded; the id just has to be unlikely to repeat.
        uint64_t mix = (uint64_t)time (NULL) ^ (uint64_t)(uintptr_t)buf;
        for (size_t i = 0; i < sizeof raw; i++, mix = mix * 6364136223846793005u + 1)
            raw[i] = (unsigned char)(mix >> 56);
    }
    int at = snprintf (buf, size, "%s", prefix);
    for (size_t i = 0; i < sizeof raw && at > 0 && (size_t)at + 2 < size; i++)
        at += snprintf (buf + at, size - at, "%02x", raw[i]);
}

//  The id under our prefix: the upstream's id with its own prefix swapped, so
//  msg_X -> chatcmpl-X -> msg_X.
static void s_id_from (char *buf, size_t size, const char *id, const char *theirs, const char *ours)
{
    if (!id || !*id) {
        s_random_id (buf, size, ours);
        return;
    }
    if (s_has_prefix (id, theirs) && id[strlen (theirs)])
        id += strlen (theirs);
    snprintf (buf, size, "%s%s", ours, id);
}

//  The upstream's model in place of the caller's when the caller named none ("").
static int s_adopt_model (char **model, const char *upstream)
{
    if (**model || !upstream || !*upstream)
        return 0;
    char *copy = strdup (upstream);
    if (!copy)
        return -1;
    free (*model);
    *model = copy;
    return 0;
}

//  Anthropic error types callers can act on; anything else is a server-side failure.
static const char *s_anthropic_error_types[] = {"invalid_request_error",
                                                "authentication_error",
                                                "permission_error",
                                                "not_found_error",
                                                "request_too_large",
                                                "rate_limit_error",
                                                "api_error",
                                                "overloaded_error",
                                                "billing_error",
                                                "timeout_error",
                                                NULL};

static bool s_is_anthropic_error_type (const char *type)
{
    for (size_t i = 0; type && s_anthropic_error_types[i]; i++)
        if (strcmp (type, s_anthropic_error_types[i]) == 0)
            return true;
    return false;
}

//  Grow an int array to hold index, new slots set to -1.
static int s_slot (int **array, size_t *size, size_t index)
{
    if (index < *size)
        return 0;
    size_t grown = *size ? *size : 8;
    while (grown <= index)
        grown *= 2;
    int *bigger = realloc (*array, grown * sizeof **array);
    if (!bigger)
        return -1;
    for (size_t i = *size; i < grown; i++)
        bigger[i] = -1;
    *array = bigger;
    *size = grown;
    return 0;
}

//  ---------------------------------------------------------------------------
//  Anthropic -> OpenAI

typedef struct {
    ar_xlate_chunks_t out; // id, model (the caller's, else message_start's), what went out
    bool started;          // message_start seen
    bool finished;         // finish chunk sent
    bool stopped;          // message_stop seen, [DONE] sent
    int *tool_of_block;    // tool-call index per content block index, -1: not a tool call
    size_t blocks;
    int tools; // tool_use blocks so far
    int64_t input, cache_read, cache_creation, output;
    bool has_input, has_output, has_cached;
} s_a2o_t;
AR_XLATE_CHUNKS_FIRST (s_a2o_t, out);

static void *s_a2o_create (const char *model, bool include_usage)
{
    return ar_xlate_chunks_new (sizeof (s_a2o_t), model, include_usage);
}

static void s_a2o_destroy (void *state)
{
    s_a2o_t *self = state;
    if (self)
        free (self->tool_of_block);
    ar_xlate_chunks_destroy (self);
}

//  A server-side failure: OpenAI's mid-stream error; the stream is over.
static int s_a2o_error (s_a2o_t *self, const ar_xlate_sink_t *sink, const char *message)
{
    return ar_xlate_chunks_error (&self->out, sink, message, "server_error", NULL);
}

static void s_a2o_report (s_a2o_t *self, ar_usage_t *usage)
{
    if (!usage)
        return;
    if (self->has_input) {
        usage->input_tokens = self->input + self->cache_read + self->cache_creation;
        usage->has_input = true;
    }
    if (self->has_cached) {
        usage->cached_input_tokens = self->cache_read;
        usage->has_cached = true;
    }
    if (self->has_output) {
        usage->output_tokens = self->output;
        usage->has_output = true;
    }
}

//  Anthropic usage (message_start's, or message_delta's whose members are whole-message
//  totals when present): take what is there.
static void s_a2o_usage (s_a2o_t *self, const json_t *object, ar_usage_t *usage)
{
    if (!json_is_object (object))
        return;
    if (s_int (object, "input_tokens", &self->input))
        self->has_input = true;
    if (s_int (object, "cache_read_input_tokens", &self->cache_read))
        self->has_cached = true;
    s_int (object, "cache_creation_input_tokens", &self->cache_creation);
    if (s_int (object, "output_tokens", &self->output))
        self->has_output = true;
    s_a2o_report (self, usage);
}

static int s_a2o_message_start (s_a2o_t *self, const json_t *root, const ar_xlate_sink_t *sink,
                                ar_usage_t *usage)
{
    json_t *message = json_object_get (root, "message");
    if (self->started || !json_is_object (message))
        return s_a2o_error (self, sink, "malformed upstream event");
    self->started = true;
    s_id_from (self->out.id, sizeof self->out.id, s_str (message, "id"), "msg_", "chatcmpl-");
    const char *model = s_str (message, "model");
    if (s_adopt_model (&self->out.model, model))
        return s_a2o_error (self, sink, "out of memory");
    if (model && *model && usage && strlen (model) <= AR_WIRE_MODEL_MAX)
        snprintf (usage->model, sizeof usage->model, "%s", model);
    s_a2o_usage (self, json_object_get (message, "usage"), usage);
    return ar_xlate_chunks_role (&self->out, sink);
}

static int s_a2o_block_start (s_a2o_t *self, const json_t *root, const ar_xlate_sink_t *sink)
{
    int64_t index;
    json_t *block = json_object_get (root, "content_block");
    if (!s_int (root, "index", &index) || index >= S_INDEX_MAX || !json_is_object (block))
        return s_a2o_error (self, sink, "malformed upstream event");
    if (s_slot (&self->tool_of_block, &self->blocks, (size_t)index))
        return s_a2o_error (self, sink, "out of memory");
    const char *type = s_str (block, "type");
    //  Only the caller's own tools become tool calls; server tools and thinking are dropped.
    if (!type || strcmp (type, "tool_use") != 0) {
        self->tool_of_block[index] = -1;
        return 0;
    }
    const char *id = s_str (block, "id");
    const char *name = s_str (block, "name");
    if (!id || !name)
        return s_a2o_error (self, sink, "malformed upstream event");
    int tool = self->tools++;
    self->tool_of_block[index] = tool;
    return ar_xlate_chunks_tool_call (&self->out, sink, tool, id, name);
}

static int s_a2o_block_delta (s_a2o_t *self, const json_t *root, const ar_xlate_sink_t *sink)
{
    int64_t index;
    json_t *delta = json_object_get (root, "delta");
    if (!s_int (root, "index", &index) || !json_is_object (delta))
        return s_a2o_error (self, sink, "malformed upstream event");
    const char *type = s_str (delta, "type");
    if (!type)
        return s_a2o_error (self, sink, "malformed upstream event");
    if (strcmp (type, "text_delta") == 0) {
        const char *text = s_str (delta, "text");
        if (!text || !*text)
            return 0;
        return ar_xlate_chunks_text (&self->out, sink, text, strlen (text));
    }
    if (strcmp (type, "input_json_delta") == 0) {
        const char *json = s_str (delta, "partial_json");
        //  Anthropic opens with an empty piece; OpenAI's first chunk already said "".
        if (!json || !*json || (size_t)index >= self->blocks || self->tool_of_block[index] < 0)
            return 0;
        return ar_xlate_chunks_arguments (&self->out, sink, self->tool_of_block[index], json,
                                          strlen (json));
    }
    return 0; // thinking, signature, citations: OpenAI chunks cannot say them
}

static int s_a2o_message_delta (s_a2o_t *self, const json_t *root, const ar_xlate_sink_t *sink,
                                ar_usage_t *usage)
{
    s_a2o_usage (self, json_object_get (root, "usage"), usage);
    if (self->finished)
        return 0;
    self->finished = true;
    const char *stop = s_str (json_object_get (root, "delta"), "stop_reason");
    return ar_xlate_chunks_finish (&self->out, sink, ar_xlate_reasons_anthropic_to_openai (stop));
}

static int s_a2o_message_stop (s_a2o_t *self, const ar_xlate_sink_t *sink)
{
    if (!self->finished) {
        self->finished = true;
        if (ar_xlate_chunks_finish (&self->out, sink, "stop"))
            return -1;
    }
    self->stopped = true;
    int64_t prompt = self->input + self->cache_read + self->cache_creation;
    return ar_xlate_chunks_end (
        &self->out, sink,
        ar_xlate_chunks_usage (prompt, self->output, prompt + self->output, self->cache_read));
}

//  Anthropic's error event: {"type":"error","error":{"type","message"}}.
static int s_a2o_upstream_error (s_a2o_t *self, const json_t *root, const ar_xlate_sink_t *sink)
{
    json_t *error = json_object_get (root, "error");
    const char *type = s_str (error, "type");
    const char *message = s_str (error, "message");
    if (!message)
        message = s_str (root, "message"); // a Bedrock exception event
    //  The 4xx kinds have the same names on both sides; the rest are the server's failure.
    //  code keeps Anthropic's own word, so a caller (or a second translation) can tell.
    const char *openai_type = "server_error";
    if (type &&
        (strcmp (type, "invalid_request_error") == 0 ||
         strcmp (type, "authentication_error") == 0 || strcmp (type, "permission_error") == 0 ||
         strcmp (type, "not_found_error") == 0 || strcmp (type, "rate_limit_error") == 0))
        openai_type = type;
    return ar_xlate_chunks_error (&self->out, sink, message ? message : "upstream error",
                                  openai_type, type);
}

static int s_a2o_event (void *state, const char *name, const char *data, size_t len,
                        const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    s_a2o_t *self = state;
    if (self->out.failed)
        return -1;
    if (self->stopped)
        return 0; // nothing follows message_stop; Bedrock may add metrics, never content
    json_t *root = json_loadb (data, len, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return s_a2o_error (self, sink, "malformed upstream event");
    }
    //  The payload's type is what Anthropic documents; the SSE name repeats it (and Bedrock's
    //  event-stream has none: its payloads are "chunk"s).
    const char *type = s_str (root, "type");
    if (!type)
        type = name ? name : "";
    int rc = 0;
    size_t type_len = strlen (type);
    if (strcmp (type, "error") == 0 ||
        (type_len > 9 && strcmp (type + type_len - 9, "Exception") == 0))
        rc = s_a2o_upstream_error (self, root, sink);
    else if (strcmp (type, "message_start") == 0)
        rc = s_a2o_message_start (self, root, sink, usage);
    else if (strcmp (type, "ping") == 0)
        rc = 0;
    else if (!self->started)
        rc = s_a2o_error (self, sink, "malformed upstream event");
    else if (strcmp (type, "content_block_start") == 0)
        rc = s_a2o_block_start (self, root, sink);
    else if (strcmp (type, "content_block_delta") == 0)
        rc = s_a2o_block_delta (self, root, sink);
    else if (strcmp (type, "message_delta") == 0)
        rc = s_a2o_message_delta (self, root, sink, usage);
    else if (strcmp (type, "message_stop") == 0)
        rc = s_a2o_message_stop (self, sink);
    //  content_block_stop says nothing OpenAI needs; unknown types are skipped, as Anthropic
    //  asks clients to do with event types added later.
    json_decref (root);
    return rc;
}

static int s_a2o_finish (void *state, const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    s_a2o_t *self = state;
    (void)usage;
    if (self->out.failed)
        return -1;
    if (self->stopped)
        return 0;
    //  A cut stream must not look like a whole answer.
    return s_a2o_error (self, sink, "upstream stream ended early");
}

const ar_xlate_stream_ops_t ar_xlate_stream_anthropic_to_openai = {s_a2o_create, s_a2o_event,
                                                                   s_a2o_finish, s_a2o_destroy};

//  ---------------------------------------------------------------------------
//  OpenAI -> Anthropic

typedef struct {
    char *model; // the caller's, else the upstream's from the first chunk
    char id[S_ID_MAX];
    bool started;       // message_start sent
    bool stopped;       // message_stop sent
    bool failed;        // error event sent or sink refused
    int open;           // index of the open content block, -1 when none
    int open_tool;      // OpenAI tool-call index of the open block, -1 when it is text
    int blocks;         // content blocks started so far
    int *block_of_tool; // content block index per OpenAI tool-call index, -1: not seen
    size_t tools;
    int tools_seen;
    const char *stop_reason; // Anthropic's, NULL until finish_reason seen
    int64_t prompt, completion, cached;
    bool has_prompt, has_completion, has_cached;
} s_o2a_t;

static void *s_o2a_create (const char *model, bool include_usage)
{
    (void)include_usage; // Anthropic always reports usage
    s_o2a_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->model = strdup (model ? model : "");
    if (!self->model) {
        free (self);
        return NULL;
    }
    self->open = -1;
    self->open_tool = -1;
    return self;
}

static void s_o2a_destroy (void *state)
{
    s_o2a_t *self = state;
    if (!self)
        return;
    free (self->model);
    free (self->block_of_tool);
    free (self);
}

static int s_o2a_send (s_o2a_t *self, const ar_xlate_sink_t *sink, const char *name, json_t *event)
{
    if (ar_xlate_chunks_emit (sink, name, event)) {
        self->failed = true;
        return -1;
    }
    return 0;
}

static int s_o2a_error (s_o2a_t *self, const ar_xlate_sink_t *sink, const char *type,
                        const char *message)
{
    self->failed = true;
    ar_xlate_chunks_emit (sink, "error",
                          json_pack ("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type,
                                     "message", message));
    return -1;
}

static void s_o2a_usage (s_o2a_t *self, const json_t *root, ar_usage_t *usage)
{
    json_t *object = json_object_get (root, "usage");
    if (!json_is_object (object))
        return;
    if (s_int (object, "prompt_tokens", &self->prompt))
        self->has_prompt = true;
    if (s_int (object, "completion_tokens", &self->completion))
        self->has_completion = true;
    if (s_int (json_object_get (object, "prompt_tokens_details"), "cached_tokens", &self->cached))
        self->has_cached = true;
    if (!usage)
        return;
    if (self->has_prompt) {
        usage->input_tokens = self->prompt;
        usage->has_input = true;
    }
    if (self->has_completion) {
        usage->output_tokens = self->completion;
        usage->has_output = true;
    }
    if (self->has_cached) {
        usage->cached_input_tokens = self->cached;
        usage->has_cached = true;
    }
}

static int s_o2a_start (s_o2a_t *self, const json_t *root, const ar_xlate_sink_t *sink)
{
    self->started = true;
    s_id_from (self->id, sizeof self->id, s_str (root, "id"), "chatcmpl-", "msg_");
    if (s_adopt_model (&self->model, s_str (root, "model")))
        return s_o2a_error (self, sink, "api_error", "out of memory");
    //  OpenAI counts come last; message_delta carries them (the SDKs take them from there).
    json_t *event = json_pack (
        "{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:{s:i, s:i}}}", "type", "message_start",
        "message", "id", self->id, "type", "message", "role", "assistant", "model", self->model,
        "content", "stop_reason", "stop_sequence", "usage", "input_tokens", 0, "output_tokens", 0);
    return s_o2a_send (self, sink, "message_start", event);
}

static int s_o2a_close_block (s_o2a_t *self, const ar_xlate_sink_t *sink)
{
    if (self->open < 0)
        return 0;
    int index = self->open;
    self->open = -1;
    self->open_tool = -1;
    return s_o2a_send (self, sink, "content_block_stop",
                       json_pack ("{s:s, s:i}", "type", "content_block_stop", "index", index));
}

static int s_o2a_text (s_o2a_t *self, const char *text, const ar_xlate_sink_t *sink)
{
    if (self->open < 0 || self->open_tool >= 0) {
        if (s_o2a_close_block (self, sink))
            return -1;
        self->open = self->blocks++;
        json_t *event =
            json_pack ("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_start", "index",
                       self->open, "content_block", "type", "text", "text", "");
        if (s_o2a_send (self, sink, "content_block_start", event))
            return -1;
    }
    json_t *event = json_pack ("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_delta", "index",
                               self->open, "delta", "type", "text_delta", "text", text);
    return s_o2a_send (self, sink, "content_block_delta", event);
}

static int s_o2a_tool_call (s_o2a_t *self, const json_t *call, const ar_xlate_sink_t *sink)
{
    const char *id = s_str (call, "id");
    json_t *function = json_object_get (call, "function");
    int64_t tool;
    if (!s_int (call, "index", &tool))
        //  Some OpenAI-compatible servers leave index out: an id starts a new call.
        tool = id || self->open_tool < 0 ? self->tools_seen : self->open_tool;
    if (tool >= S_INDEX_MAX)
        return s_o2a_error (self, sink, "api_error", "malformed upstream event");
    if (s_slot (&self->block_of_tool, &self->tools, (size_t)tool))
        return s_o2a_error (self, sink, "api_error", "out of memory");
    int block = self->block_of_tool[tool];
    if (block < 0) {
        if (s_o2a_close_block (self, sink))
            return -1;
        char made[S_ID_MAX];
        if (!id || !*id) {
            s_random_id (made, sizeof made, "toolu_");
            id = made;
        }
        const char *name = s_str (function, "name");
        block = self->blocks++;
        self->block_of_tool[tool] = block;
        self->open = block;
        self->open_tool = (int)tool;
        if (tool >= self->tools_seen)
            self->tools_seen = (int)tool + 1;
        json_t *event = json_pack ("{s:s, s:i, s:{s:s, s:s, s:s, s:{}}}", "type",
                                   "content_block_start", "index", block, "content_block", "type",
                                   "tool_use", "id", id, "name", name ? name : "", "input");
        if (s_o2a_send (self, sink, "content_block_start", event))
            return -1;
    }
    //  A piece for an earlier call whose block is closed still goes to that block's index:
    //  OpenAI streams calls one after another, and the SDKs accumulate by index anyway.
    const char *arguments = s_str (function, "arguments");
    if (!arguments || !*arguments)
        return 0;
    json_t *event =
        json_pack ("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_delta", "index", block,
                   "delta", "type", "input_json_delta", "partial_json", arguments);
    return s_o2a_send (self, sink, "content_block_delta", event);
}

static int s_o2a_choice (s_o2a_t *self, const json_t *choice, const ar_xlate_sink_t *sink)
{
    int64_t index = 0;
    s_int (choice, "index", &index);
    if (index != 0)
        return 0; // n > 1 is refused on the way in; nothing else sends more choices
    json_t *delta = json_object_get (choice, "delta");
    //  A refusal is the model's own words; Anthropic says them as text (stop_reason refusal).
    const char *keys[] = {"content", "refusal"};
    for (size_t k = 0; k < 2; k++) {
        const char *text = s_str (delta, keys[k]);
        if (text && *text && s_o2a_text (self, text, sink))
            return -1;
    }
    json_t *calls = json_object_get (delta, "tool_calls");
    size_t i;
    json_t *call;
    json_array_foreach (calls, i, call)
    {
        if (json_is_object (call) && s_o2a_tool_call (self, call, sink))
            return -1;
    }
    const char *finish = s_str (choice, "finish_reason");
    if (finish) {
        self->stop_reason = ar_xlate_reasons_openai_to_anthropic (finish);
        return s_o2a_close_block (self, sink);
    }
    return 0;
}

//  message_delta and message_stop: the end of a stream that said how it finished.
static int s_o2a_stop (s_o2a_t *self, const ar_xlate_sink_t *sink)
{
    if (!self->started || !self->stop_reason)
        return s_o2a_error (self, sink, "api_error", "upstream stream ended early");
    if (s_o2a_close_block (self, sink))
        return -1;
    self->stopped = true;
    json_t *usage = json_pack ("{s:I}", "output_tokens", (json_int_t)self->completion);
    if (usage && self->has_prompt) {
        //  Anthropic's input_tokens leaves out what was read from the cache.
        int64_t cached = self->has_cached && self->cached <= self->prompt ? self->cached : 0;
        json_object_set_new (usage, "input_tokens", json_integer (self->prompt - cached));
        if (self->has_cached)
            json_object_set_new (usage, "cache_read_input_tokens", json_integer (cached));
    }
    json_t *event = json_pack ("{s:s, s:{s:s, s:n}, s:o}", "type", "message_delta", "delta",
                               "stop_reason", self->stop_reason, "stop_sequence", "usage", usage);
    if (s_o2a_send (self, sink, "message_delta", event))
        return -1;
    return s_o2a_send (self, sink, "message_stop", json_pack ("{s:s}", "type", "message_stop"));
}

//  OpenAI's {"error":{"message","type","param","code"}} in Anthropic's words.
static int s_o2a_upstream_error (s_o2a_t *self, const json_t *error, const ar_xlate_sink_t *sink)
{
    const char *message = s_str (error, "message");
    const char *type = s_str (error, "type");
    const char *code = s_str (error, "code");
    const char *anthropic = "api_error";
    if (s_is_anthropic_error_type (code))
        anthropic = code; // an Anthropic error carried through OpenAI's shape
    else if (s_is_anthropic_error_type (type))
        anthropic = type;
    else if ((code && strcmp (code, "rate_limit_exceeded") == 0) ||
             (type && (strcmp (type, "requests") == 0 || strcmp (type, "tokens") == 0)))
        anthropic = "rate_limit_error";
    return s_o2a_error (self, sink, anthropic, message ? message : "upstream error");
}

static int s_o2a_event (void *state, const char *name, const char *data, size_t len,
                        const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    s_o2a_t *self = state;
    (void)name;
    if (self->failed)
        return -1;
    if (self->stopped)
        return 0;
    if (len == 6 && memcmp (data, "[DONE]", 6) == 0)
        return s_o2a_stop (self, sink);
    json_t *root = json_loadb (data, len, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return s_o2a_error (self, sink, "api_error", "malformed upstream event");
    }
    int rc = 0;
    json_t *error = json_object_get (root, "error");
    if (json_is_object (error))
        rc = s_o2a_upstream_error (self, error, sink);
    else if (!self->started && s_o2a_start (self, root, sink))
        rc = -1;
    else {
        s_o2a_usage (self, root, usage);
        size_t i;
        json_t *choice;
        json_array_foreach (json_object_get (root, "choices"), i, choice)
        {
            if (json_is_object (choice) && s_o2a_choice (self, choice, sink)) {
                rc = -1;
                break;
            }
        }
    }
    json_decref (root);
    return rc;
}

static int s_o2a_finish (void *state, const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    s_o2a_t *self = state;
    (void)usage;
    if (self->failed)
        return -1;
    if (self->stopped)
        return 0;
    return s_o2a_stop (self, sink);
}

const ar_xlate_stream_ops_t ar_xlate_stream_openai_to_anthropic = {s_o2a_create, s_o2a_event,
                                                                   s_o2a_finish, s_o2a_destroy};

//  ---------------------------------------------------------------------------
//  Self-test

#define S_REC_MAX 64

//  A sink that keeps what it is given, parsed ([DONE] as NULL JSON).
typedef struct {
    size_t count;
    char *name[S_REC_MAX];
    char *data[S_REC_MAX];
    json_t *json[S_REC_MAX];
    size_t refuse_at; // emit fails from this event on; 0: never
} s_rec_t;

static int s_rec_emit (void *arg, const char *name, const char *data, size_t len)
{
    s_rec_t *rec = arg;
    assert (rec->count < S_REC_MAX);
    if (rec->refuse_at && rec->count + 1 >= rec->refuse_at)
        return -1;
    assert (strlen (data) == len);
    rec->name[rec->count] = name ? strdup (name) : NULL;
    rec->data[rec->count] = strdup (data);
    rec->json[rec->count] = strcmp (data, "[DONE]") ? json_loads (data, 0, NULL) : NULL;
    assert (strcmp (data, "[DONE]") == 0 || json_is_object (rec->json[rec->count]));
    rec->count++;
    return 0;
}

static void s_rec_clear (s_rec_t *rec)
{
    for (size_t i = 0; i < rec->count; i++) {
        free (rec->name[i]);
        free (rec->data[i]);
        json_decref (rec->json[i]);
    }
    memset (rec, 0, sizeof *rec);
}

//  Feed {name, data} pairs until one fails; the failing call's return code, or 0.
static int s_feed (const ar_xlate_stream_ops_t *ops, void *state, const char *const *events,
                   size_t pairs, const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    for (size_t i = 0; i < pairs; i++) {
        const char *data = events[2 * i + 1];
        int rc = ops->event (state, events[2 * i], data, strlen (data), sink, usage);
        if (rc)
            return rc;
    }
    return 0;
}

#define S_PAIRS(a) (sizeof (a) / sizeof (a)[0] / 2)

//  Path lookups into recorded JSON, so assertions read like the wire.
static json_t *s_at (json_t *root, const char *path)
{
    char buf[128];
    snprintf (buf, sizeof buf, "%s", path);
    json_t *node = root;
    for (char *save = NULL, *part = strtok_r (buf, ".", &save); part && node;
         part = strtok_r (NULL, ".", &save)) {
        if (*part >= '0' && *part <= '9')
            node = json_array_get (node, (size_t)atoi (part));
        else
            node = json_object_get (node, part);
    }
    return node;
}

static const char *s_at_str (json_t *root, const char *path)
{
    return json_string_value (s_at (root, path));
}

static json_int_t s_at_int (json_t *root, const char *path)
{
    json_t *node = s_at (root, path);
    assert (json_is_integer (node));
    return json_integer_value (node);
}

static bool s_streq (const char *a, const char *b)
{
    return a && b && strcmp (a, b) == 0;
}

//  Every OpenAI chunk of one stream: the same id, object, created and model; usage:null
//  present exactly when include_usage; one choice at index 0 (but the usage chunk).
static void s_check_chunk (s_rec_t *rec, size_t i, const char *model, bool include_usage)
{
    json_t *chunk = rec->json[i];
    assert (chunk && !rec->name[i]);
    assert (s_streq (s_at_str (chunk, "id"), s_at_str (rec->json[0], "id")));
    assert (s_has_prefix (s_at_str (chunk, "id"), "chatcmpl-"));
    assert (s_streq (s_at_str (chunk, "object"), "chat.completion.chunk"));
    assert (s_at_int (chunk, "created") == s_at_int (rec->json[0], "created"));
    assert (s_at_int (chunk, "created") > 1600000000);
    assert (s_streq (s_at_str (chunk, "model"), model));
    json_t *choices = s_at (chunk, "choices");
    if (json_is_object (s_at (chunk, "usage"))) {
        assert (include_usage && json_array_size (choices) == 0);
        return;
    }
    assert (include_usage == json_is_null (s_at (chunk, "usage")));
    assert (json_array_size (choices) == 1);
    assert (s_at_int (chunk, "choices.0.index") == 0);
    assert (json_is_object (s_at (chunk, "choices.0.delta")));
}

static void s_check_anthropic (s_rec_t *rec, size_t i, const char *type)
{
    assert (i < rec->count);
    assert (s_streq (rec->name[i], type));
    assert (s_streq (s_at_str (rec->json[i], "type"), type));
}

//  Anthropic streams as the API sends them (ids and models from its documentation's shape).
#define S_MSG_START(usage)                                                                         \
    "message_start",                                                                               \
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\","        \
        "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-"  \
        "20250514\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":" usage "}}"
#define S_TEXT_START(i)                                                                            \
    "content_block_start", "{\"type\":\"content_block_start\",\"index\":" #i                       \
                           ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"
#define S_TEXT(i, text)                                                                            \
    "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":" #i                       \
                           ",\"delta\":{\"type\":\"text_delta\",\"text\":\"" text "\"}}"
#define S_TOOL_START(i, id, name)                                                                  \
    "content_block_start",                                                                         \
        "{\"type\":\"content_block_start\",\"index\":" #i ",\"content_block\":{\"type\":"          \
        "\"tool_use\",\"id\":\"" id "\",\"name\":\"" name "\",\"input\":{}}}"
#define S_JSON(i, json)                                                                            \
    "content_block_delta",                                                                         \
        "{\"type\":\"content_block_delta\",\"index\":" #i                                          \
        ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"" json "\"}}"
#define S_STOP(i) "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":" #i "}"
#define S_MSG_DELTA(reason, usage)                                                                 \
    "message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" reason            \
                     "\",\"stop_sequence\":null},\"usage\":" usage "}"
#define S_MSG_STOP "message_stop", "{\"type\":\"message_stop\"}"
#define S_PING     "ping", "{\"type\": \"ping\"}"

static const char *const s_anthropic_text[] = {
    S_MSG_START ("{\"input_tokens\":25,\"cache_creation_input_tokens\":0,"
                 "\"cache_read_input_tokens\":0,\"output_tokens\":1}"),
    S_TEXT_START (0),
    S_PING,
    S_TEXT (0, "Hello"),
    S_TEXT (0, "! How can I help?"),
    S_STOP (0),
    S_MSG_DELTA ("end_turn", "{\"output_tokens\":15}"),
    S_MSG_STOP};

//  Extended thinking first (dropped), then text, then two calls of the caller's tools.
static const char *const s_anthropic_tools[] = {
    S_MSG_START ("{\"input_tokens\":472,\"output_tokens\":2}"),
    "content_block_start",
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
    "\"thinking\":\"\"}}",
    "content_block_delta",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":\"The user wants weather in two cities.\"}}",
    "content_block_delta",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
    "\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds\"}}",
    S_STOP (0),
    S_TEXT_START (1),
    S_TEXT (1, "Let me check both."),
    S_STOP (1),
    S_PING,
    S_TOOL_START (2, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"),
    S_JSON (2, ""),
    S_JSON (2, "{\\\"location\\\": \\\"San Fra"),
    S_JSON (2, "ncisco, CA\\\"}"),
    S_STOP (2),
    S_TOOL_START (3, "toolu_01CAFE0000000000000000aa", "get_time"),
    S_JSON (3, ""),
    S_JSON (3, "{\\\"tz\\\":"),
    S_JSON (3, "\\\"America/New_York\\\"}"),
    S_STOP (3),
    S_MSG_DELTA ("tool_use", "{\"output_tokens\":89}"),
    S_MSG_STOP};

static const char *const s_anthropic_max_tokens[] = {
    S_MSG_START ("{\"input_tokens\":12,\"output_tokens\":1}"),
    S_TEXT_START (0),
    S_TEXT (0, "Once upon a time"),
    S_STOP (0),
    S_MSG_DELTA ("max_tokens", "{\"output_tokens\":4}"),
    S_MSG_STOP};

//  Prompt caching: newer APIs repeat the input counts, as totals, in message_delta.
static const char *const s_anthropic_cached[] = {
    S_MSG_START ("{\"input_tokens\":10,\"cache_creation_input_tokens\":20,"
                 "\"cache_read_input_tokens\":1000,\"output_tokens\":1}"),
    S_TEXT_START (0),
    S_TEXT (0, "Cached."),
    S_STOP (0),
    S_MSG_DELTA ("stop_sequence", "{\"input_tokens\":10,\"cache_creation_input_tokens\":20,"
                                  "\"cache_read_input_tokens\":1000,\"output_tokens\":42}"),
    S_MSG_STOP};

static const char *const s_anthropic_overloaded[] = {
    S_MSG_START ("{\"input_tokens\":25,\"output_tokens\":1}"),
    S_TEXT_START (0),
    S_TEXT (0, "Partial"),
    "error",
    "{\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": "
    "\"Overloaded\"}}",
    S_TEXT (0, "never seen")};

static const char *const s_anthropic_cut[] = {
    S_MSG_START ("{\"input_tokens\":25,\"output_tokens\":1}"), S_TEXT_START (0), S_TEXT (0, "Cut"),
    S_STOP (0), S_MSG_DELTA ("end_turn", "{\"output_tokens\":3}")};

static void s_test_anthropic_to_openai (void)
{
    const ar_xlate_stream_ops_t *ops = &ar_xlate_stream_anthropic_to_openai;
    s_rec_t rec = {0};
    ar_xlate_sink_t sink = {s_rec_emit, &rec};

    //  Plain text, usage asked for.
    ar_usage_t usage = {0};
    void *state = ops->create ("gpt-4o", true);
    assert (state);
    assert (s_feed (ops, state, s_anthropic_text, S_PAIRS (s_anthropic_text), &sink, &usage) == 0);
    assert (ops->finish (state, &sink, &usage) == 0); // after message_stop: nothing more
    ops->destroy (state);
    assert (rec.count == 6);
    for (size_t i = 0; i < 5; i++)
        s_check_chunk (&rec, i, "gpt-4o", true);
    assert (s_streq (s_at_str (rec.json[0], "id"), "chatcmpl-01XFDUDYJgAACzvnptvVoYEL"));
    assert (s_streq (s_at_str (rec.json[0], "choices.0.delta.role"), "assistant"));
    assert (s_streq (s_at_str (rec.json[0], "choices.0.delta.content"), ""));
    assert (json_is_null (s_at (rec.json[0], "choices.0.finish_reason")));
    assert (s_streq (s_at_str (rec.json[1], "choices.0.delta.content"), "Hello"));
    assert (s_streq (s_at_str (rec.json[2], "choices.0.delta.content"), "! How can I help?"));
    assert (json_object_size (s_at (rec.json[3], "choices.0.delta")) == 0);
    assert (s_streq (s_at_str (rec.json[3], "choices.0.finish_reason"), "stop"));
    assert (s_at_int (rec.json[4], "usage.prompt_tokens") == 25);
    assert (s_at_int (rec.json[4], "usage.completion_tokens") == 15);
    assert (s_at_int (rec.json[4], "usage.total_tokens") == 40);
    assert (s_at_int (rec.json[4], "usage.prompt_tokens_details.cached_tokens") == 0);
    assert (!rec.name[5] && s_streq (rec.data[5], "[DONE]"));
    assert (usage.has_input && usage.input_tokens == 25);
    assert (usage.has_output && usage.output_tokens == 15);
    assert (usage.has_cached && usage.cached_input_tokens == 0);
    assert (s_streq (usage.model, "claude-sonnet-4-20250514"));
    s_rec_clear (&rec);

    //  Thinking, text, two tool calls; no usage asked for, no caller model.
    memset (&usage, 0, sizeof usage);
    state = ops->create (NULL, false);
    assert (s_feed (ops, state, s_anthropic_tools, S_PAIRS (s_anthropic_tools), &sink, &usage) ==
            0);
    ops->destroy (state);
    assert (rec.count == 10);
    for (size_t i = 0; i < 9; i++) {
        s_check_chunk (&rec, i, "claude-sonnet-4-20250514", false);
        assert (!s_at (rec.json[i], "usage"));
    }
    assert (s_streq (s_at_str (rec.json[1], "choices.0.delta.content"), "Let me check both."));
    const char *ids[] = {"toolu_01T1x1fJ34qAmk2tNTrN7Up6", "toolu_01CAFE0000000000000000aa"};
    const char *names[] = {"get_weather", "get_time"};
    const char *pieces[][2] = {{"{\"location\": \"San Fra", "ncisco, CA\"}"},
                               {"{\"tz\":", "\"America/New_York\"}"}};
    for (size_t k = 0; k < 2; k++) {
        json_t *start = rec.json[2 + 3 * k];
        assert (json_array_size (s_at (start, "choices.0.delta.tool_calls")) == 1);
        assert (s_at_int (start, "choices.0.delta.tool_calls.0.index") == (json_int_t)k);
        assert (s_streq (s_at_str (start, "choices.0.delta.tool_calls.0.id"), ids[k]));
        assert (s_streq (s_at_str (start, "choices.0.delta.tool_calls.0.type"), "function"));
        assert (s_streq (s_at_str (start, "choices.0.delta.tool_calls.0.function.name"), names[k]));
        assert (s_streq (s_at_str (start, "choices.0.delta.tool_calls.0.function.arguments"), ""));
        for (size_t p = 0; p < 2; p++) {
            json_t *piece = rec.json[3 + 3 * k + p];
            assert (s_at_int (piece, "choices.0.delta.tool_calls.0.index") == (json_int_t)k);
            assert (!s_at (piece, "choices.0.delta.tool_calls.0.id"));
            assert (s_streq (s_at_str (piece, "choices.0.delta.tool_calls.0.function.arguments"),
                             pieces[k][p]));
        }
    }
    assert (s_streq (s_at_str (rec.json[8], "choices.0.finish_reason"), "tool_calls"));
    assert (s_streq (rec.data[9], "[DONE]"));
    assert (usage.input_tokens == 472 && usage.output_tokens == 89 && !usage.has_cached);
    s_rec_clear (&rec);

    //  max_tokens -> length.
    state = ops->create ("gpt-4o", false);
    assert (s_feed (ops, state, s_anthropic_max_tokens, S_PAIRS (s_anthropic_max_tokens), &sink,
                    NULL) == 0);
    ops->destroy (state);
    assert (rec.count == 4);
    assert (s_streq (s_at_str (rec.json[1], "choices.0.delta.content"), "Once upon a time"));
    assert (s_streq (s_at_str (rec.json[2], "choices.0.finish_reason"), "length"));
    assert (s_streq (rec.data[3], "[DONE]"));
    s_rec_clear (&rec);

    //  Cached input: prompt counts every input token, cached_tokens the cache reads.
    memset (&usage, 0, sizeof usage);
    state = ops->create ("gpt-4o", true);
    assert (s_feed (ops, state, s_anthropic_cached, S_PAIRS (s_anthropic_cached), &sink, &usage) ==
            0);
    ops->destroy (state);
    assert (rec.count == 5);
    assert (s_streq (s_at_str (rec.json[2], "choices.0.finish_reason"), "stop"));
    s_check_chunk (&rec, 3, "gpt-4o", true);
    assert (s_at_int (rec.json[3], "usage.prompt_tokens") == 1030);
    assert (s_at_int (rec.json[3], "usage.completion_tokens") == 42);
    assert (s_at_int (rec.json[3], "usage.total_tokens") == 1072);
    assert (s_at_int (rec.json[3], "usage.prompt_tokens_details.cached_tokens") == 1000);
    assert (usage.input_tokens == 1030 && usage.cached_input_tokens == 1000);
    assert (usage.output_tokens == 42);
    s_rec_clear (&rec);

    //  Overloaded mid-stream: OpenAI's error event, then nothing (no [DONE]).
    state = ops->create ("gpt-4o", true);
    assert (s_feed (ops, state, s_anthropic_overloaded, S_PAIRS (s_anthropic_overloaded), &sink,
                    NULL) == -1);
    assert (rec.count == 3);
    assert (s_streq (s_at_str (rec.json[1], "choices.0.delta.content"), "Partial"));
    assert (!rec.name[2] && !s_at (rec.json[2], "choices"));
    assert (s_streq (s_at_str (rec.json[2], "error.message"), "Overloaded"));
    assert (s_streq (s_at_str (rec.json[2], "error.type"), "server_error"));
    assert (s_streq (s_at_str (rec.json[2], "error.code"), "overloaded_error"));
    assert (ops->finish (state, &sink, NULL) == -1);
    assert (rec.count == 3);
    ops->destroy (state);
    s_rec_clear (&rec);

    //  Cut before message_stop: an error, not a finish the caller would trust.
    state = ops->create ("gpt-4o", false);
    assert (s_feed (ops, state, s_anthropic_cut, S_PAIRS (s_anthropic_cut), &sink, NULL) == 0);
    assert (rec.count == 3);
    assert (ops->finish (state, &sink, NULL) == -1);
    assert (rec.count == 4);
    assert (s_streq (s_at_str (rec.json[3], "error.message"), "upstream stream ended early"));
    assert (s_streq (s_at_str (rec.json[3], "error.type"), "server_error"));
    ops->destroy (state);
    s_rec_clear (&rec);

    //  Malformed: content before message_start, and JSON that is not JSON.
    state = ops->create ("gpt-4o", false);
    const char *early[] = {S_TEXT (0, "orphan")};
    assert (s_feed (ops, state, early, 1, &sink, NULL) == -1);
    assert (rec.count == 1 && s_at (rec.json[0], "error.message"));
    ops->destroy (state);
    s_rec_clear (&rec);
    state = ops->create ("gpt-4o", false);
    assert (ops->event (state, "message_start", "{\"type\":", 8, &sink, NULL) == -1);
    assert (rec.count == 1 && s_at (rec.json[0], "error"));
    ops->destroy (state);
    s_rec_clear (&rec);

    //  A sink that refuses stops the stream.
    rec.refuse_at = 2;
    state = ops->create ("gpt-4o", false);
    assert (s_feed (ops, state, s_anthropic_text, S_PAIRS (s_anthropic_text), &sink, NULL) == -1);
    assert (rec.count == 1);
    assert (ops->finish (state, &sink, NULL) == -1);
    ops->destroy (state);
    s_rec_clear (&rec);
}

//  OpenAI streams as the API sends them.
#define S_CHUNK(delta, finish)                                                                     \
    NULL,                                                                                          \
        "{\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":\"chat.completion.chunk\"," \
        "\"created\":1741569952,\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\","     \
        "\"system_fingerprint\":\"fp_f9f4fb6dbf\",\"choices\":[{\"index\":0,\"delta\":" delta      \
        ",\"logprobs\":null,\"finish_reason\":" finish "}],\"usage\":null}"
#define S_OTEXT(text) S_CHUNK ("{\"content\":\"" text "\"}", "null")
#define S_OCALL(index, id, name)                                                                   \
    S_CHUNK ("{\"tool_calls\":[{\"index\":" #index ",\"id\":\"" id "\",\"type\":\"function\","     \
             "\"function\":{\"name\":\"" name "\",\"arguments\":\"\"}}]}",                         \
             "null")
#define S_OARGS(index, args)                                                                       \
    S_CHUNK ("{\"tool_calls\":[{\"index\":" #index ",\"function\":{\"arguments\":\"" args          \
             "\"}}]}",                                                                             \
             "null")
#define S_OUSAGE(prompt, completion, cached)                                                       \
    NULL,                                                                                          \
        "{\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":\"chat.completion.chunk\"," \
        "\"created\":1741569952,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{"        \
        "\"prompt_tokens\":" #prompt ",\"completion_tokens\":" #completion                         \
        ",\"total_tokens\":0,\"prompt_tokens_details\":{\"cached_tokens\":" #cached                \
        ",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}"
#define S_OROLE S_CHUNK ("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", "null")
#define S_ODONE NULL, "[DONE]"

static const char *const s_openai_text[] = {S_OROLE,
                                            S_OTEXT ("Hel"),
                                            S_OTEXT ("lo there"),
                                            S_CHUNK ("{}", "\"stop\""),
                                            S_OUSAGE (19, 10, 0),
                                            S_ODONE};

static const char *const s_openai_tools[] = {
    S_OROLE,
    S_OTEXT ("Checking."),
    S_OCALL (0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather"),
    S_OARGS (0, "{\\\"location\\\":"),
    S_OARGS (0, "\\\"Paris\\\"}"),
    S_OCALL (1, "call_ABC123xyz", "get_time"),
    S_OARGS (1, "{\\\"tz\\\":\\\"CET\\\"}"),
    S_CHUNK ("{}", "\"tool_calls\""),
    S_OUSAGE (82, 40, 0),
    S_ODONE};

static const char *const s_openai_length[] = {
    S_OROLE, S_OTEXT ("Once"), S_CHUNK ("{}", "\"length\""), S_OUSAGE (9, 1, 0), S_ODONE};

static const char *const s_openai_cached[] = {
    S_OROLE, S_OTEXT ("Cached."), S_CHUNK ("{}", "\"stop\""), S_OUSAGE (1030, 42, 1000), S_ODONE};

static const char *const s_openai_error[] = {
    S_OROLE, S_OTEXT ("Part"), NULL,
    "{\"error\":{\"message\":\"The server had an error while processing your request. Sorry "
    "about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}"};

static void s_check_message_start (s_rec_t *rec, const char *id, const char *model)
{
    s_check_anthropic (rec, 0, "message_start");
    json_t *m = rec->json[0];
    assert (s_streq (s_at_str (m, "message.id"), id));
    assert (s_streq (s_at_str (m, "message.type"), "message"));
    assert (s_streq (s_at_str (m, "message.role"), "assistant"));
    assert (s_streq (s_at_str (m, "message.model"), model));
    assert (json_array_size (s_at (m, "message.content")) == 0);
    assert (json_is_null (s_at (m, "message.stop_reason")));
    assert (json_is_null (s_at (m, "message.stop_sequence")));
    assert (s_at_int (m, "message.usage.input_tokens") == 0);
    assert (s_at_int (m, "message.usage.output_tokens") == 0);
}

static void s_check_block_start (s_rec_t *rec, size_t i, json_int_t index, const char *type)
{
    s_check_anthropic (rec, i, "content_block_start");
    assert (s_at_int (rec->json[i], "index") == index);
    assert (s_streq (s_at_str (rec->json[i], "content_block.type"), type));
}

static void s_check_delta (s_rec_t *rec, size_t i, json_int_t index, const char *type,
                           const char *member, const char *value)
{
    s_check_anthropic (rec, i, "content_block_delta");
    assert (s_at_int (rec->json[i], "index") == index);
    assert (s_streq (s_at_str (rec->json[i], "delta.type"), type));
    char path[64];
    snprintf (path, sizeof path, "delta.%s", member);
    assert (s_streq (s_at_str (rec->json[i], path), value));
}

static void s_check_block_stop (s_rec_t *rec, size_t i, json_int_t index)
{
    s_check_anthropic (rec, i, "content_block_stop");
    assert (s_at_int (rec->json[i], "index") == index);
}

//  The last two events: message_delta with stop_reason and usage, message_stop.
static void s_check_end (s_rec_t *rec, const char *stop_reason, json_int_t output)
{
    size_t i = rec->count - 2;
    s_check_anthropic (rec, i, "message_delta");
    assert (s_streq (s_at_str (rec->json[i], "delta.stop_reason"), stop_reason));
    assert (json_is_null (s_at (rec->json[i], "delta.stop_sequence")));
    assert (s_at_int (rec->json[i], "usage.output_tokens") == output);
    s_check_anthropic (rec, i + 1, "message_stop");
}

static void s_test_openai_to_anthropic (void)
{
    const ar_xlate_stream_ops_t *ops = &ar_xlate_stream_openai_to_anthropic;
    s_rec_t rec = {0};
    ar_xlate_sink_t sink = {s_rec_emit, &rec};

    //  Plain text.
    ar_usage_t usage = {0};
    void *state = ops->create ("claude-sonnet-4-20250514", false);
    assert (state);
    assert (s_feed (ops, state, s_openai_text, S_PAIRS (s_openai_text), &sink, &usage) == 0);
    assert (ops->finish (state, &sink, &usage) == 0);
    ops->destroy (state);
    assert (rec.count == 7);
    s_check_message_start (&rec, "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT", "claude-sonnet-4-20250514");
    s_check_block_start (&rec, 1, 0, "text");
    assert (s_streq (s_at_str (rec.json[1], "content_block.text"), ""));
    s_check_delta (&rec, 2, 0, "text_delta", "text", "Hel");
    s_check_delta (&rec, 3, 0, "text_delta", "text", "lo there");
    s_check_block_stop (&rec, 4, 0);
    s_check_end (&rec, "end_turn", 10);
    assert (s_at_int (rec.json[5], "usage.input_tokens") == 19);
    assert (s_at_int (rec.json[5], "usage.cache_read_input_tokens") == 0);
    assert (usage.input_tokens == 19 && usage.output_tokens == 10);
    assert (usage.has_cached && usage.cached_input_tokens == 0);
    s_rec_clear (&rec);

    //  Text, then two tool calls; the caller named no model.
    state = ops->create ("", false);
    assert (s_feed (ops, state, s_openai_tools, S_PAIRS (s_openai_tools), &sink, NULL) == 0);
    ops->destroy (state);
    assert (rec.count == 13);
    s_check_message_start (&rec, "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT", "gpt-4o-2024-08-06");
    s_check_block_start (&rec, 1, 0, "text");
    s_check_delta (&rec, 2, 0, "text_delta", "text", "Checking.");
    s_check_block_stop (&rec, 3, 0);
    s_check_block_start (&rec, 4, 1, "tool_use");
    assert (s_streq (s_at_str (rec.json[4], "content_block.id"), "call_DdmO9pD3xa9XTPNJ32zg2hcA"));
    assert (s_streq (s_at_str (rec.json[4], "content_block.name"), "get_weather"));
    assert (json_object_size (s_at (rec.json[4], "content_block.input")) == 0);
    s_check_delta (&rec, 5, 1, "input_json_delta", "partial_json", "{\"location\":");
    s_check_delta (&rec, 6, 1, "input_json_delta", "partial_json", "\"Paris\"}");
    s_check_block_stop (&rec, 7, 1);
    s_check_block_start (&rec, 8, 2, "tool_use");
    assert (s_streq (s_at_str (rec.json[8], "content_block.id"), "call_ABC123xyz"));
    assert (s_streq (s_at_str (rec.json[8], "content_block.name"), "get_time"));
    s_check_delta (&rec, 9, 2, "input_json_delta", "partial_json", "{\"tz\":\"CET\"}");
    s_check_block_stop (&rec, 10, 2);
    s_check_end (&rec, "tool_use", 40);
    s_rec_clear (&rec);

    //  OpenAI-compatible servers: a call without index, whole in one chunk, then more text.
    state = ops->create ("m", false);
    const char *odd[] = {
        S_CHUNK ("{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
                 "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}",
                 "null"),
        S_OTEXT ("Done."), S_CHUNK ("{}", "\"stop\""), S_ODONE};
    assert (s_feed (ops, state, odd, S_PAIRS (odd), &sink, NULL) == 0);
    ops->destroy (state);
    assert (rec.count == 9);
    s_check_block_start (&rec, 1, 0, "tool_use");
    assert (s_streq (s_at_str (rec.json[1], "content_block.id"), "call_1"));
    s_check_delta (&rec, 2, 0, "input_json_delta", "partial_json", "{}");
    s_check_block_stop (&rec, 3, 0);
    s_check_block_start (&rec, 4, 1, "text");
    s_check_delta (&rec, 5, 1, "text_delta", "text", "Done.");
    s_check_block_stop (&rec, 6, 1);
    s_check_end (&rec, "end_turn", 0);
    assert (!s_at (rec.json[7], "usage.input_tokens")); // never reported: not made up
    s_rec_clear (&rec);

    //  length -> max_tokens; the end comes from finish() when [DONE] never arrives.
    state = ops->create ("claude-3-5-haiku-latest", false);
    assert (s_feed (ops, state, s_openai_length, S_PAIRS (s_openai_length) - 1, &sink, NULL) == 0);
    assert (rec.count == 4); // message_start, block start, delta, block stop: delta waits
    assert (ops->finish (state, &sink, NULL) == 0);
    ops->destroy (state);
    assert (rec.count == 6);
    s_check_end (&rec, "max_tokens", 1);
    s_rec_clear (&rec);

    //  Cached input: Anthropic's input_tokens leaves out the cache reads.
    memset (&usage, 0, sizeof usage);
    state = ops->create ("claude-sonnet-4-20250514", false);
    assert (s_feed (ops, state, s_openai_cached, S_PAIRS (s_openai_cached), &sink, &usage) == 0);
    ops->destroy (state);
    s_check_end (&rec, "end_turn", 42);
    assert (s_at_int (rec.json[rec.count - 2], "usage.input_tokens") == 30);
    assert (s_at_int (rec.json[rec.count - 2], "usage.cache_read_input_tokens") == 1000);
    assert (usage.input_tokens == 1030 && usage.cached_input_tokens == 1000);
    assert (usage.output_tokens == 42);
    s_rec_clear (&rec);

    //  Error mid-stream.
    state = ops->create ("claude-sonnet-4-20250514", false);
    assert (s_feed (ops, state, s_openai_error, S_PAIRS (s_openai_error), &sink, NULL) == -1);
    assert (rec.count == 4);
    s_check_delta (&rec, 2, 0, "text_delta", "text", "Part");
    s_check_anthropic (&rec, 3, "error");
    assert (s_streq (s_at_str (rec.json[3], "error.type"), "api_error"));
    assert (s_has_prefix (s_at_str (rec.json[3], "error.message"), "The server had an error"));
    assert (ops->finish (state, &sink, NULL) == -1);
    assert (rec.count == 4);
    ops->destroy (state);
    s_rec_clear (&rec);

    //  A rate limit keeps its kind.
    state = ops->create ("claude-sonnet-4-20250514", false);
    const char *limited[] = {NULL,
                             "{\"error\":{\"message\":\"Rate limit reached\",\"type\":"
                             "\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}"};
    assert (s_feed (ops, state, limited, 1, &sink, NULL) == -1);
    assert (rec.count == 1);
    assert (s_streq (s_at_str (rec.json[0], "error.type"), "rate_limit_error"));
    ops->destroy (state);
    s_rec_clear (&rec);

    //  Early end: no finish_reason, then finish(); and [DONE] without one.
    for (int done = 0; done < 2; done++) {
        state = ops->create ("claude-sonnet-4-20250514", false);
        assert (s_feed (ops, state, s_openai_text, 3, &sink, NULL) == 0);
        assert (rec.count == 4);
        int rc = done ? ops->event (state, NULL, "[DONE]", 6, &sink, NULL)
                      : ops->finish (state, &sink, NULL);
        assert (rc == -1);
        assert (rec.count == 5);
        s_check_anthropic (&rec, 4, "error");
        assert (s_streq (s_at_str (rec.json[4], "error.message"), "upstream stream ended early"));
        ops->destroy (state);
        s_rec_clear (&rec);
    }

    //  Nothing at all, then the end.
    state = ops->create ("claude-sonnet-4-20250514", false);
    assert (ops->finish (state, &sink, NULL) == -1);
    assert (rec.count == 1);
    s_check_anthropic (&rec, 0, "error");
    ops->destroy (state);
    s_rec_clear (&rec);
}

//  Anthropic -> OpenAI -> Anthropic, the first stage's chunks fed straight to the second.
typedef struct {
    void *second;
    const ar_xlate_sink_t *sink;
} s_relay_t;

static int s_relay_emit (void *arg, const char *name, const char *data, size_t len)
{
    s_relay_t *relay = arg;
    return ar_xlate_stream_openai_to_anthropic.event (relay->second, name, data, len, relay->sink,
                                                      NULL);
}

static void s_test_round_trip (void)
{
    s_rec_t rec = {0};
    ar_xlate_sink_t sink = {s_rec_emit, &rec};
    void *first = ar_xlate_stream_anthropic_to_openai.create ("claude-sonnet-4-20250514", true);
    void *second = ar_xlate_stream_openai_to_anthropic.create ("claude-sonnet-4-20250514", false);
    s_relay_t relay = {second, &sink};
    ar_xlate_sink_t relay_sink = {s_relay_emit, &relay};
    ar_usage_t usage = {0};
    assert (s_feed (&ar_xlate_stream_anthropic_to_openai, first, s_anthropic_tools,
                    S_PAIRS (s_anthropic_tools), &relay_sink, &usage) == 0);
    assert (ar_xlate_stream_anthropic_to_openai.finish (first, &relay_sink, &usage) == 0);
    assert (ar_xlate_stream_openai_to_anthropic.finish (second, &sink, NULL) == 0);
    ar_xlate_stream_anthropic_to_openai.destroy (first);
    ar_xlate_stream_openai_to_anthropic.destroy (second);

    //  Rebuild the message the way the SDK's accumulator does, then compare.
    s_check_message_start (&rec, "msg_01XFDUDYJgAACzvnptvVoYEL", "claude-sonnet-4-20250514");
    json_t *content = json_array ();
    int open = -1;
    for (size_t i = 1; i < rec.count - 2; i++) {
        json_t *event = rec.json[i];
        const char *type = s_at_str (event, "type");
        json_int_t index = s_at_int (event, "index");
        if (s_streq (type, "content_block_start")) {
            assert (open < 0 && index == (json_int_t)json_array_size (content));
            json_array_append_new (content, json_deep_copy (s_at (event, "content_block")));
            open = (int)index;
        } else if (s_streq (type, "content_block_stop")) {
            assert (index == open);
            open = -1;
        } else {
            assert (s_streq (type, "content_block_delta") && index == open);
            json_t *block = json_array_get (content, (size_t)index);
            bool text = s_streq (s_at_str (block, "type"), "text");
            const char *member = text ? "text" : "json"; // the SDK's hidden JSON buffer
            const char *piece = s_at_str (event, text ? "delta.text" : "delta.partial_json");
            assert (piece);
            const char *had = s_at_str (block, member);
            char joined[256];
            snprintf (joined, sizeof joined, "%s%s", had ? had : "", piece);
            json_object_set_new (block, member, json_string (joined));
        }
    }
    assert (open < 0);
    assert (json_array_size (content) == 3);
    assert (s_streq (s_at_str (content, "0.type"), "text"));
    assert (s_streq (s_at_str (content, "0.text"), "Let me check both."));
    assert (s_streq (s_at_str (content, "1.type"), "tool_use"));
    assert (s_streq (s_at_str (content, "1.id"), "toolu_01T1x1fJ34qAmk2tNTrN7Up6"));
    assert (s_streq (s_at_str (content, "1.name"), "get_weather"));
    assert (s_streq (s_at_str (content, "1.json"), "{\"location\": \"San Francisco, CA\"}"));
    assert (s_streq (s_at_str (content, "2.id"), "toolu_01CAFE0000000000000000aa"));
    assert (s_streq (s_at_str (content, "2.name"), "get_time"));
    assert (s_streq (s_at_str (content, "2.json"), "{\"tz\":\"America/New_York\"}"));
    json_decref (content);
    s_check_end (&rec, "tool_use", 89);
    assert (s_at_int (rec.json[rec.count - 2], "usage.input_tokens") == 472);
    assert (usage.input_tokens == 472 && usage.output_tokens == 89);
    s_rec_clear (&rec);

    //  An Anthropic error comes back as itself.
    first = ar_xlate_stream_anthropic_to_openai.create ("m", true);
    second = ar_xlate_stream_openai_to_anthropic.create ("m", false);
    relay.second = second;
    assert (s_feed (&ar_xlate_stream_anthropic_to_openai, first, s_anthropic_overloaded,
                    S_PAIRS (s_anthropic_overloaded), &relay_sink, NULL) == -1);
    s_check_anthropic (&rec, rec.count - 1, "error");
    assert (s_streq (s_at_str (rec.json[rec.count - 1], "error.type"), "overloaded_error"));
    assert (s_streq (s_at_str (rec.json[rec.count - 1], "error.message"), "Overloaded"));
    ar_xlate_stream_anthropic_to_openai.destroy (first);
    ar_xlate_stream_openai_to_anthropic.destroy (second);
    s_rec_clear (&rec);
}

void ar_xlate_stream_anthropic_test (bool verbose)
{
    if (verbose)
        printf (" * ar_xlate_stream_anthropic: ");
    s_test_anthropic_to_openai ();
    s_test_openai_to_anthropic ();
    s_test_round_trip ();
    if (verbose)
        printf ("OK\n");
}
