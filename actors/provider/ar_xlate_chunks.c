/*  ar_xlate_chunks: the OpenAI chunk writer every stream translator to OpenAI shares.

    See ar_xlate_chunks.h. Chunks are built as jansson objects in the order OpenAI writes
    their members (id, object, created, model, choices, usage), printed compact, and handed to
    the sink one at a time; nothing is held back.
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ar_xlate_chunks.h"

void *ar_xlate_chunks_new (size_t size, const char *model, bool include_usage)
{
    assert (size >= sizeof (ar_xlate_chunks_t));
    ar_xlate_chunks_t *self = calloc (1, size);
    if (!self)
        return NULL;
    self->model = strdup (model ? model : "");
    if (!self->model) {
        free (self);
        return NULL;
    }
    self->created = (json_int_t)time (NULL);
    self->include_usage = include_usage;
    return self;
}

void ar_xlate_chunks_destroy (void *state)
{
    ar_xlate_chunks_t *self = state;
    if (self)
        free (self->model);
    free (self);
}

int ar_xlate_chunks_emit (const ar_xlate_sink_t *sink, const char *name, json_t *root)
{
    if (!root)
        return -1;
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    if (!text)
        return -1;
    int rc = sink->emit (sink->arg, name, text, strlen (text));
    free (text);
    return rc ? -1 : 0;
}

//  Every chunk goes out through here, so a refusal stops the stream whatever the chunk was.
static int s_send (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink, json_t *chunk)
{
    if (ar_xlate_chunks_emit (sink, NULL, chunk)) {
        self->failed = true;
        return -1;
    }
    return 0;
}

//  The members every chunk starts with, choices (taken) last.
static json_t *s_envelope (const ar_xlate_chunks_t *self, json_t *choices)
{
    return json_pack ("{s:s, s:s, s:I, s:s, s:o}", "id", self->id, "object",
                      "chat.completion.chunk", "created", self->created, "model", self->model,
                      "choices", choices);
}

int ar_xlate_chunks_delta (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink, json_t *delta,
                           const char *finish_reason)
{
    json_t *chunk = s_envelope (self, json_pack ("[{s:i, s:o, s:s?}]", "index", 0, "delta", delta,
                                                 "finish_reason", finish_reason));
    //  With include_usage every chunk but the usage chunk says "usage":null, as OpenAI does.
    if (chunk && self->include_usage && json_object_set_new (chunk, "usage", json_null ())) {
        json_decref (chunk);
        chunk = NULL;
    }
    return s_send (self, sink, chunk);
}

int ar_xlate_chunks_role (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink)
{
    return ar_xlate_chunks_delta (
        self, sink, json_pack ("{s:s, s:s}", "role", "assistant", "content", ""), NULL);
}

int ar_xlate_chunks_text (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink, const char *text,
                          size_t len)
{
    return ar_xlate_chunks_delta (self, sink, json_pack ("{s:s%}", "content", text, len), NULL);
}

int ar_xlate_chunks_tool_call (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink,
                               json_int_t index, const char *id, const char *name)
{
    json_t *delta =
        json_pack ("{s:[{s:I, s:s, s:s, s:{s:s, s:s}}]}", "tool_calls", "index", index, "id", id,
                   "type", "function", "function", "name", name, "arguments", "");
    return ar_xlate_chunks_delta (self, sink, delta, NULL);
}

int ar_xlate_chunks_arguments (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink,
                               json_int_t index, const char *arguments, size_t len)
{
    json_t *delta = json_pack ("{s:[{s:I, s:{s:s%}}]}", "tool_calls", "index", index, "function",
                               "arguments", arguments, len);
    return ar_xlate_chunks_delta (self, sink, delta, NULL);
}

int ar_xlate_chunks_finish (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink,
                            const char *finish_reason)
{
    return ar_xlate_chunks_delta (self, sink, json_object (), finish_reason);
}

int ar_xlate_chunks_end (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink, json_t *usage)
{
    if (self->include_usage && usage) {
        json_t *chunk = s_envelope (self, json_array ());
        if (chunk && json_object_set_new (chunk, "usage", usage)) {
            json_decref (chunk);
            chunk = NULL;
        } else if (!chunk)
            json_decref (usage);
        if (s_send (self, sink, chunk))
            return -1;
    } else
        json_decref (usage);
    if (sink->emit (sink->arg, NULL, "[DONE]", 6)) {
        self->failed = true;
        return -1;
    }
    return 0;
}

int ar_xlate_chunks_error (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink,
                           const char *message, const char *type, const char *code)
{
    self->failed = true;
    ar_xlate_chunks_emit (sink, NULL,
                          json_pack ("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", message,
                                     "type", type, "param", "code", code));
    return -1;
}

json_t *ar_xlate_chunks_usage (int64_t prompt, int64_t completion, int64_t total, int64_t cached)
{
    return json_pack ("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", (json_int_t)prompt,
                      "completion_tokens", (json_int_t)completion, "total_tokens",
                      (json_int_t)total, "prompt_tokens_details", "cached_tokens",
                      (json_int_t)cached);
}

//  ---------------------------------------------------------------------------
//  Self-test: the exact text of each chunk, since callers' SDKs parse it.

#define S_REC_MAX 16

typedef struct {
    size_t count;
    char *data[S_REC_MAX];
    size_t refuse_at; // emit fails from this event on; 0: never
} s_rec_t;

static int s_rec_emit (void *arg, const char *name, const char *data, size_t len)
{
    s_rec_t *rec = arg;
    assert (!name && rec->count < S_REC_MAX && strlen (data) == len);
    if (rec->refuse_at && rec->count + 1 >= rec->refuse_at)
        return -1;
    rec->data[rec->count++] = strdup (data);
    return 0;
}

static void s_rec_clear (s_rec_t *rec)
{
    for (size_t i = 0; i < rec->count; i++)
        free (rec->data[i]);
    memset (rec, 0, sizeof *rec);
}

//  A chunk's text with its created second swapped for 0, so it can be compared whole.
static void s_expect (const s_rec_t *rec, size_t i, const ar_xlate_chunks_t *chunks,
                      const char *expected)
{
    assert (i < rec->count);
    char created[32], text[1024];
    snprintf (created, sizeof created, "\"created\":%" JSON_INTEGER_FORMAT ",", chunks->created);
    const char *at = strstr (rec->data[i], created);
    if (at)
        snprintf (text, sizeof text, "%.*s\"created\":0,%s", (int)(at - rec->data[i]), rec->data[i],
                  at + strlen (created));
    else
        snprintf (text, sizeof text, "%s", rec->data[i]);
    if (strcmp (text, expected)) {
        fprintf (stderr, "chunk %zu:\n  got      %s\n  expected %s\n", i, text, expected);
        assert (false);
    }
}

#define S_HEAD(model)                                                                              \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"" model \
    "\","
//  A chunk of gpt-4o's with include_usage.
#define S_CHUNK(delta, finish)                                                                     \
    S_HEAD ("gpt-4o")                                                                              \
    "\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" finish "}],\"usage\":null}"

void ar_xlate_chunks_test (bool verbose)
{
    if (verbose)
        printf (" * ar_xlate_chunks: ");
    s_rec_t rec = {0};
    ar_xlate_sink_t sink = {s_rec_emit, &rec};

    //  A whole answer with include_usage: usage:null on every chunk but the usage chunk.
    ar_xlate_chunks_t *chunks = ar_xlate_chunks_new (sizeof *chunks, "gpt-4o", true);
    assert (chunks);
    assert (chunks->created > 1600000000 && !*chunks->id);
    snprintf (chunks->id, sizeof chunks->id, "chatcmpl-1");
    assert (ar_xlate_chunks_role (chunks, &sink) == 0);
    assert (ar_xlate_chunks_text (chunks, &sink, "Hi \"there\"", 10) == 0);
    assert (ar_xlate_chunks_tool_call (chunks, &sink, 0, "call_1", "get_time") == 0);
    assert (ar_xlate_chunks_arguments (chunks, &sink, 0, "{\"tz\":", 6) == 0);
    assert (ar_xlate_chunks_finish (chunks, &sink, "tool_calls") == 0);
    assert (ar_xlate_chunks_end (chunks, &sink, ar_xlate_chunks_usage (12, 5, 17, 3)) == 0);
    assert (!chunks->failed && rec.count == 7);
    s_expect (&rec, 0, chunks, S_CHUNK ("{\"role\":\"assistant\",\"content\":\"\"}", "null"));
    s_expect (&rec, 1, chunks, S_CHUNK ("{\"content\":\"Hi \\\"there\\\"\"}", "null"));
    s_expect (&rec, 2, chunks,
              S_CHUNK ("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
                       "\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]}",
                       "null"));
    s_expect (&rec, 3, chunks,
              S_CHUNK ("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                       "\"{\\\"tz\\\":\"}}]}",
                       "null"));
    s_expect (&rec, 4, chunks, S_CHUNK ("{}", "\"tool_calls\""));
    s_expect (&rec, 5, chunks,
              S_HEAD ("gpt-4o") "\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
                                "\"completion_tokens\":5,\"total_tokens\":17,"
                                "\"prompt_tokens_details\":{\"cached_tokens\":3}}}");
    s_expect (&rec, 6, chunks, "[DONE]");
    ar_xlate_chunks_destroy (chunks);
    s_rec_clear (&rec);

    //  Without include_usage: no usage member at all, and no usage chunk even when told usage.
    chunks = ar_xlate_chunks_new (sizeof *chunks, NULL, false);
    assert (chunks);
    snprintf (chunks->id, sizeof chunks->id, "chatcmpl-1");
    assert (ar_xlate_chunks_finish (chunks, &sink, "stop") == 0);
    assert (ar_xlate_chunks_end (chunks, &sink, ar_xlate_chunks_usage (1, 1, 2, 0)) == 0);
    assert (rec.count == 2);
    s_expect (&rec, 0, chunks,
              S_HEAD ("") "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
                          "\"stop\"}]}");
    s_expect (&rec, 1, chunks, "[DONE]");
    s_rec_clear (&rec);

    //  include_usage but no usage to tell: straight to [DONE].
    chunks->include_usage = true;
    assert (ar_xlate_chunks_end (chunks, &sink, NULL) == 0);
    assert (rec.count == 1);
    s_expect (&rec, 0, chunks, "[DONE]");
    s_rec_clear (&rec);

    //  Errors: code or null, and failed set.
    assert (ar_xlate_chunks_error (chunks, &sink, "Overloaded", "server_error", NULL) == -1);
    assert (chunks->failed);
    assert (ar_xlate_chunks_error (chunks, &sink, "Slow down", "rate_limit_error",
                                   "throttlingException") == -1);
    s_expect (&rec, 0, chunks,
              "{\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\",\"param\":null,"
              "\"code\":null}}");
    s_expect (&rec, 1, chunks,
              "{\"error\":{\"message\":\"Slow down\",\"type\":\"rate_limit_error\",\"param\":"
              "null,\"code\":\"throttlingException\"}}");
    ar_xlate_chunks_destroy (chunks);
    s_rec_clear (&rec);

    //  The sink refuses, a delta could not be made: failed, -1.
    chunks = ar_xlate_chunks_new (sizeof *chunks, "m", false);
    assert (chunks);
    rec.refuse_at = 2;
    assert (ar_xlate_chunks_role (chunks, &sink) == 0 && !chunks->failed);
    assert (ar_xlate_chunks_text (chunks, &sink, "x", 1) == -1 && chunks->failed);
    chunks->failed = false;
    assert (ar_xlate_chunks_end (chunks, &sink, NULL) == -1 && chunks->failed);
    chunks->failed = false;
    rec.refuse_at = 0;
    assert (ar_xlate_chunks_delta (chunks, &sink, NULL, NULL) == -1 && chunks->failed);
    assert (rec.count == 1);
    ar_xlate_chunks_destroy (chunks);
    s_rec_clear (&rec);

    //  A translator's state: the writer first, the rest zeroed.
    typedef struct {
        ar_xlate_chunks_t out;
        int extra[64];
    } s_state_t;
    AR_XLATE_CHUNKS_FIRST (s_state_t, out);
    s_state_t *state = ar_xlate_chunks_new (sizeof *state, "m", true);
    assert (state && state->out.include_usage && strcmp (state->out.model, "m") == 0);
    for (size_t i = 0; i < 64; i++)
        assert (state->extra[i] == 0);
    ar_xlate_chunks_destroy (state);
    ar_xlate_chunks_destroy (NULL);

    //  emit: names pass through; NULL roots fail.
    assert (ar_xlate_chunks_emit (&sink, NULL, NULL) == -1);
    assert (ar_xlate_chunks_emit (&sink, NULL, json_pack ("{s:i}", "a", 1)) == 0);
    assert (rec.count == 1 && strcmp (rec.data[0], "{\"a\":1}") == 0);
    s_rec_clear (&rec);
    if (verbose)
        printf ("OK\n");
}
