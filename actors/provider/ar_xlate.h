/*  ar_xlate: translation between the API shapes callers send and providers speak.

    A caller speaks OpenAI chat completions or Anthropic messages; an upstream speaks one of four
    shapes. Everything goes through OpenAI chat as the pivot: a translator converts its shape to
    or from OpenAI, and two hops make any pair (Anthropic caller -> Gemini upstream is
    Anthropic -> OpenAI -> Gemini). Same shape on both sides is no translation at all: the
    caller's bytes go through untouched.

    Requests and whole responses are jansson DOMs in, new DOMs out (the input is never changed).
    Streams are translated event by event as they arrive, never buffered: a stream translator
    takes one upstream event (SSE event name or AWS :event-type, and its JSON payload) and emits
    zero or more events in the target shape through a sink, keeping what it needs across events
    (open content blocks, tool-call indexes, usage so far) in its own state.

    Rules every translator keeps:
    - Never log or print content. Errors name the failing member path (`messages[2].content`),
      never its value.
    - Unknown members the target cannot express are dropped; members that change the meaning
      and cannot be expressed (e.g. n > 1 to Anthropic) are refused with a 400 naming them.
    - Usage (input, output, cached input tokens) is taken from upstream data into ar_usage_t.
*/
#ifndef AR_XLATE_H
#define AR_XLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "ar_wire.h"

typedef enum {
    AR_SHAPE_OPENAI,    // OpenAI chat completions; also Azure OpenAI
    AR_SHAPE_ANTHROPIC, // Anthropic messages; also Claude on Bedrock InvokeModel and Vertex
    AR_SHAPE_CONVERSE,  // AWS Bedrock Converse / ConverseStream
    AR_SHAPE_GEMINI,    // Google generateContent / streamGenerateContent
} ar_wire_shape_t;

//  Why a request could not be translated; goes back to the caller in its own error shape.
typedef struct {
    int status;        // HTTP status for the caller, normally 400
    char param[128];   // the failing member path, "" when none
    char message[256]; // human-readable; names members, never their values
} ar_xlate_error_t;

//  ---------------------------------------------------------------------------
//  Requests. NULL with err filled when the request cannot be expressed in the target shape.

//  ar_xlate_anthropic.c
json_t *ar_xlate_openai_to_anthropic_request (const json_t *request, ar_xlate_error_t *err);
json_t *ar_xlate_anthropic_to_openai_request (const json_t *request, ar_xlate_error_t *err);
//  ar_xlate_converse.c (the model goes in the URL, not the body)
json_t *ar_xlate_openai_to_converse_request (const json_t *request, ar_xlate_error_t *err);
//  ar_xlate_gemini.c (the model goes in the URL, not the body)
json_t *ar_xlate_openai_to_gemini_request (const json_t *request, ar_xlate_error_t *err);

//  ---------------------------------------------------------------------------
//  Whole (non-streamed) 2xx responses. model: what the caller asked for, for shapes whose
//  responses do not name it. usage may be NULL. NULL when the body is not the expected shape.

json_t *ar_xlate_anthropic_to_openai_response (const json_t *response, ar_usage_t *usage);
json_t *ar_xlate_openai_to_anthropic_response (const json_t *response, ar_usage_t *usage);
json_t *ar_xlate_converse_to_openai_response (const json_t *response, const char *model,
                                              ar_usage_t *usage);
json_t *ar_xlate_gemini_to_openai_response (const json_t *response, const char *model,
                                            ar_usage_t *usage);

//  ---------------------------------------------------------------------------
//  Errors (ar_xlate_error.c). An upstream error (status, body in the upstream's shape, maybe
//  not JSON at all) as an error body in the caller's shape: OpenAI
//  {"error":{"message","type","param","code"}} or Anthropic
//  {"type":"error","error":{"type","message"}}, with the type the status implies (429 ->
//  rate_limit_error, 529 -> overloaded_error, ...). aws_error_type: the x-amzn-ErrorType header
//  of a Bedrock error, or NULL. Never NULL except out of memory.
json_t *ar_xlate_error_body (ar_wire_shape_t caller, ar_wire_shape_t upstream, int status,
                             const char *body, size_t len, const char *aws_error_type);
//  The caller's error shape for an error the gateway itself raises.
json_t *ar_xlate_error_new (ar_wire_shape_t caller, int status, const char *message,
                            const char *param, const char *code);

//  ---------------------------------------------------------------------------
//  Streams

//  Where translated events go: name is the SSE event name (NULL: none, as OpenAI sends), data
//  the payload (JSON, or "[DONE]"). Return 0, or -1 to stop the stream (out of memory).
typedef struct {
    int (*emit) (void *arg, const char *name, const char *data, size_t len);
    void *arg;
} ar_xlate_sink_t;

//  One direction of stream translation. Every translator's state starts from create and ends
//  in destroy; event and finish return 0, or -1 when the stream cannot go on (a malformed
//  upstream event, or the sink refused), after emitting a caller-shaped error event if it can.
typedef struct {
    //  model: the model the caller asked for (OpenAI chunks name it). include_usage: the caller
    //  asked for a usage chunk (OpenAI stream_options.include_usage); ignored by translators
    //  whose target always reports usage (Anthropic message_start / message_delta).
    void *(*create) (const char *model, bool include_usage);
    //  One upstream event. name: the SSE `event:` name or the AWS :event-type header, NULL when
    //  the event had none. data: the event's JSON payload (for OpenAI upstreams possibly
    //  "[DONE]"). usage may be NULL (a second stage in a chain: the first one reports).
    int (*event) (void *state, const char *name, const char *data, size_t len,
                  const ar_xlate_sink_t *sink, ar_usage_t *usage);
    //  The upstream stream ended cleanly: emit whatever closes the target stream (OpenAI:
    //  the finish chunk if not yet sent, the usage chunk if asked, "[DONE]"; Anthropic:
    //  message_stop if not yet sent).
    int (*finish) (void *state, const ar_xlate_sink_t *sink, ar_usage_t *usage);
    void (*destroy) (void *state);
} ar_xlate_stream_ops_t;

//  ar_xlate_stream_anthropic.c
extern const ar_xlate_stream_ops_t ar_xlate_stream_anthropic_to_openai;
extern const ar_xlate_stream_ops_t ar_xlate_stream_openai_to_anthropic;
//  ar_xlate_converse.c (ConverseStream events: messageStart, contentBlockStart,
//  contentBlockDelta, contentBlockStop, messageStop, metadata, and the exception events)
extern const ar_xlate_stream_ops_t ar_xlate_stream_converse_to_openai;
//  ar_xlate_gemini.c (each event a GenerateContentResponse, from ?alt=sse)
extern const ar_xlate_stream_ops_t ar_xlate_stream_gemini_to_openai;

//  A chain of up to two translators from the upstream's shape to the caller's
//  (ar_xlate_stream.c). NULL when from == to (nothing to translate) or the pair is unknown.
typedef struct ar_xlate_stream_t ar_xlate_stream_t;
ar_xlate_stream_t *ar_xlate_stream_new (ar_wire_shape_t from, ar_wire_shape_t to, const char *model,
                                        bool include_usage);
int ar_xlate_stream_event (ar_xlate_stream_t *self, const char *name, const char *data, size_t len,
                           const ar_xlate_sink_t *sink, ar_usage_t *usage);
int ar_xlate_stream_finish (ar_xlate_stream_t *self, const ar_xlate_sink_t *sink,
                            ar_usage_t *usage);
void ar_xlate_stream_destroy (ar_xlate_stream_t **self_p);

//  Self-tests, one per file.
void ar_xlate_anthropic_test (bool verbose);
void ar_xlate_error_test (bool verbose);
void ar_xlate_stream_anthropic_test (bool verbose);
void ar_xlate_converse_test (bool verbose);
void ar_xlate_gemini_test (bool verbose);
void ar_xlate_stream_test (bool verbose);

#endif
