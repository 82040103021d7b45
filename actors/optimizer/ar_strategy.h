/*  ar_strategy: the one small interface every optimizer strategy implements.

    A strategy is one file (strategy_<kind>.c) exporting one const ar_strategy_t, listed in the
    registry (ar_strategy_registry.c) and nowhere else. It transforms the request DOM in place
    by adding, removing and replacing members and items; it never edits a string or number node
    itself (no json_string_set, json_integer_set...): the runner's undo copy shares them. It
    must leave the request exactly as it found it when it returns -1 (the pipeline also
    enforces this: fail-open per strategy). It never adds tokens: a strategy whose output would
   count more tokens than its input must leave the request alone.

    Content a strategy removes must stay retrievable: it is handed to ctx->stash, and the id
    that comes back goes into the elision marker the model sees. Without a stash a strategy
    must not remove content (it may still rewrite parameters).
*/
#ifndef AR_STRATEGY_H
#define AR_STRATEGY_H

#include "ar_clock.h"
#include "ar_tokenizer.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

//  The wire shape of the request being optimized.
typedef enum {
    AR_SHAPE_OPENAI_CHAT,        // POST /v1/chat/completions
    AR_SHAPE_ANTHROPIC_MESSAGES, // POST /v1/messages
} ar_shape_t;

//  Where removed originals go (the reversible stash). put() stores len bytes and writes a
//  32-hex-digit id (NUL-terminated) into id_out; returns 0 or -1.
typedef struct {
    void *self;
    int (*put) (void *self, const char *content, size_t len, char id_out[33]);
} ar_stash_sink_t;

typedef struct {
    ar_shape_t shape;
    json_t *request;              // the request DOM; strategies edit it in place
    const char *endpoint;         // e.g. "/v1/chat/completions"
    const char *model;            // may be NULL
    ar_tokenizer_t *tokenizer;    // counts every "tokens" figure
    const ar_stash_sink_t *stash; // NULL: content may not be removed
    ar_mono_ms deadline;          // strategies check it in long loops and give up (-1) past it
} ar_strategy_ctx_t;

//  What one strategy did, for the reply's per-strategy report and savings accounting.
typedef struct {
    bool applied;          // it changed the request
    int64_t tokens_before; // request tokens when it started
    int64_t tokens_after;  // ... and when it finished (== before when not applied)
    int64_t micros;        // time taken
    char note[128];        // short, content-free: "clamped max_tokens 8192->4096"
} ar_strategy_result_t;

typedef struct {
    const char *kind; // as in optimizer.config.json, e.g. "param_tuning"
    //  Apply to ctx->request with the effective params (registry defaults merged with the
    //  config and the matching rules). Fill result->applied and result->note; the pipeline
    //  measures tokens and time. Return 0, or -1 on any failure (request untouched).
    int (*apply) (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result);
} ar_strategy_t;

#endif
