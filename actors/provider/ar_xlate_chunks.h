/*  ar_xlate_chunks: the OpenAI chunk writer every stream translator to OpenAI shares.

    Anthropic, Converse and Gemini streams all reach an OpenAI caller as chat.completion.chunk
    events, and the envelope is the same whoever fills it: every chunk of one stream carries
    the same id, created and model, one choice at index 0, and "usage":null when the caller
    asked for stream_options.include_usage; the end is the usage chunk (when asked) and
    "[DONE]"; a stream that breaks ends with OpenAI's mid-stream error object instead, never
    with a close the caller would take for a whole answer. The translators keep one of these
    in their state and only say what goes in the deltas and when.

    The usage object is here too: usage chunks and whole chat.completions carry the same one.
*/
#ifndef AR_XLATE_CHUNKS_H
#define AR_XLATE_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "ar_xlate.h"

#define AR_XLATE_CHUNKS_ID_MAX 160

typedef struct {
    char id[AR_XLATE_CHUNKS_ID_MAX]; // "chatcmpl-...": the translator sets it before chunk one
    char *model;                     // the caller's ("" when it named none)
    json_int_t created;
    bool include_usage;
    bool failed; // an error went out or the sink refused: nothing more may go out
} ar_xlate_chunks_t;
//  A translator's state struct starts with one (see ar_xlate_chunks_new); this says so.
#define AR_XLATE_CHUNKS_FIRST(type, member)                                                        \
    _Static_assert(offsetof (type, member) == 0, #member " must come first in " #type)

//  A stream translator's state: size bytes, zeroed, whose first member is the writer (id
//  empty, created now). NULL when out of memory.
void *ar_xlate_chunks_new (size_t size, const char *model, bool include_usage);
//  Free such a state, once the translator freed what it added; fits the ops' destroy.
void ar_xlate_chunks_destroy (void *state);

//  Each of these sends one chunk and returns 0, or -1 (and sets failed) when the chunk could
//  not be made or the sink refused it.
//  A chunk with this delta (taken; NULL fails) and finish_reason (NULL: null).
int ar_xlate_chunks_delta (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink, json_t *delta,
                           const char *finish_reason);
//  The first chunk: {"role":"assistant","content":""}.
int ar_xlate_chunks_role (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink);
//  A piece of the answer's text.
int ar_xlate_chunks_text (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink, const char *text,
                          size_t len);
//  The first delta of tool call index: its id and name, arguments "" so far.
int ar_xlate_chunks_tool_call (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink,
                               json_int_t index, const char *id, const char *name);
//  A piece of tool call index's arguments.
int ar_xlate_chunks_arguments (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink,
                               json_int_t index, const char *arguments, size_t len);
//  The finish chunk: an empty delta and why the answer ended.
int ar_xlate_chunks_finish (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink,
                            const char *finish_reason);

//  The end of a whole answer: the usage chunk when the caller asked for one and there is usage
//  to tell (taken; NULL: none), then "[DONE]".
int ar_xlate_chunks_end (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink, json_t *usage);
//  OpenAI's mid-stream error, {"error":{"message","type","param":null,"code"}} (code NULL:
//  null), and no "[DONE]" after it. Sets failed; returns -1, for the translator to return.
int ar_xlate_chunks_error (ar_xlate_chunks_t *self, const ar_xlate_sink_t *sink,
                           const char *message, const char *type, const char *code);

//  OpenAI's usage object: {prompt_tokens, completion_tokens, total_tokens,
//  prompt_tokens_details: {cached_tokens}}. NULL when out of memory.
json_t *ar_xlate_chunks_usage (int64_t prompt, int64_t completion, int64_t total, int64_t cached);

//  Send one JSON event (root taken) through the sink as compact text; name as the sink takes
//  it (NULL for OpenAI). 0, or -1 when root is NULL, it cannot be printed or the sink refused.
int ar_xlate_chunks_emit (const ar_xlate_sink_t *sink, const char *name, json_t *root);

void ar_xlate_chunks_test (bool verbose);

#endif
