/*  ar_answer: the upstream's answer, in the caller's shape, as it arrives.

    The provider engine hands over the bytes curl delivers; this class gives back what the
    caller must see, and the usage for spend. A streamed 2xx answer comes back as whole SSE
    events, each as soon as the upstream finished it:
    - same shape both sides: the upstream's events unchanged (the usage-only event dropped when
      the edge asked for usage the caller did not; see ar_wire's strip_event);
    - another shape over SSE (Anthropic, Gemini, OpenAI): each event translated (ar_xlate);
    - AWS eventstream frames (ConverseStream; InvokeModel's Claude events in base64 "chunk"
      frames): decoded, CRC-checked, unwrapped, translated when the shapes differ.
    Anything else (a non-streamed answer, any error) is whole: translated to the caller's
    shape in one go, error bodies included, when the upstream does not already speak it.
*/
#ifndef AR_ANSWER_H
#define AR_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include "ar_buf.h"
#include "ar_target.h"
#include "ar_wire.h"

typedef struct ar_answer_t ar_answer_t;

typedef struct {
    ar_wire_shape_t caller;
    ar_wire_shape_t upstream;    // what a 2xx answer is in
    ar_wire_shape_t error_shape; // what the provider's error bodies are in
    ar_framing_t framing;        // of a streamed 2xx answer
    bool stream;                 // the caller asked for a stream
    bool strip_usage;            // same shape, OpenAI: drop the usage-only event
    bool include_usage;          // the caller asked for the usage chunk (OpenAI)
    const char *model;           // the model the caller asked for
    const ar_wire_t *usage_wire; // reads usage from an answer that passes through
} ar_answer_config_t;

ar_answer_t *ar_answer_new (const ar_answer_config_t *config);
void ar_answer_destroy (ar_answer_t **self_p);

//  The upstream's status and content type are in. Returns true when the answer streams
//  (events forwarded as they come), false when it is taken whole.
bool ar_answer_start (ar_answer_t *self, long status, const char *content_type);

//  The content type the caller gets (the upstream's when the answer passes through).
const char *ar_answer_content_type (ar_answer_t *self, const char *upstream_type);

//  Streamed bytes: append every whole caller-shaped event they complete to out. Returns 0, or
//  -1 when the stream cannot go on (a bad frame, an upstream error event, no memory): a
//  caller-shaped error event is appended then, when one can be.
int ar_answer_feed (ar_answer_t *self, const void *data, size_t len, ar_buf_t *out);
//  The upstream stream ended cleanly: append what closes the caller's stream. 0 or -1.
int ar_answer_finish (ar_answer_t *self, ar_buf_t *out);

//  A whole answer (non-stream, or an error) in the caller's shape. aws_error_type: a Bedrock
//  error's x-amzn-ErrorType, or NULL. Returns 1 when the body is already the caller's (usage
//  noted; out untouched: no copy), 0 when out holds the caller's body, or -1 when a 2xx body
//  is not what the upstream should send (out then holds a caller-shaped 502 error and *status
//  is 502) or memory ran out (out empty).
int ar_answer_whole (ar_answer_t *self, long *status, const char *body, size_t len,
                     const char *aws_error_type, ar_buf_t *out);

//  Usage seen so far.
const ar_usage_t *ar_answer_usage (ar_answer_t *self);

void ar_answer_test (bool verbose);

#endif
