/*  ar_optimizer_exchange: the edge's side of Optimizer Protocol v1 on its own chat path.

    The request goes to the optimizer as the protocol's /v1/optimize message, built around the
    caller's body without parsing it (one copy). The reply is read with one validating scan:
    only its small members (the per-strategy report) are parsed; "request" and
    "cachedResponse" stay spans into the reply, so a 100 KB rewritten request is copied once
    and never re-parsed here.
*/
#ifndef AR_OPTIMIZER_EXCHANGE_H
#define AR_OPTIMIZER_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_EXCHANGE_STEPS 16 // strategies a reply may report (the registry has ten)

typedef struct {
    char kind[48];
    bool changed;          // this step's work was kept and changed the request
    int64_t before, after; // tokens
} ar_exchange_step_t;

typedef struct {
    char kind[48];
    char reason[16]; // unavailable, failed, overran, disabled
} ar_exchange_skip_t;

typedef struct {
    bool changed, cache_hit;
    const char *request; // span into the reply; NULL when absent
    size_t request_len;
    const char *cached_response; // span, only with cache_hit
    size_t cached_response_len;
    int64_t tokens_before, tokens_after;
    ar_exchange_step_t applied[AR_EXCHANGE_STEPS];
    size_t applied_count;
    ar_exchange_skip_t skipped[AR_EXCHANGE_STEPS];
    size_t skipped_count;
    int retrieve_max_calls; // the model was offered anyray_retrieve for this many rounds; 0: not
} ar_exchange_reply_t;

//  The reply to an "expand" (the model's anyray_retrieve calls answered).
typedef struct {
    bool expanded;        // request is the next round's request
    const char *request;  // span, with expanded
    size_t request_len;   //
    const char *response; // span: the response for the caller without our calls; may be NULL
    size_t response_len;
} ar_exchange_expand_t;

//  The /v1/optimize message for body (a JSON object the caller validated): endpoint and shape
//  ("openai.chat"), metadata (a JSON object's text, or NULL), canShortCircuit, budgetMs.
//  Returns a malloc'd message and its length in *out_len, or NULL when out of memory.
char *ar_exchange_wrap (const char *endpoint, const char *shape, const char *metadata,
                        bool can_short_circuit, uint32_t budget_ms, const char *body, size_t len,
                        size_t *out_len);

//  Read a 200 reply. Returns 0, or -1 when it is not a well-formed reply (the caller then fails
//  open). Spans point into body.
int ar_exchange_read (const char *body, size_t len, ar_exchange_reply_t *reply);

//  The "expand" message for the request sent upstream and the provider's response; and its
//  reply. Same conventions as ar_exchange_wrap / ar_exchange_read.
char *ar_exchange_wrap_expand (const char *endpoint, const char *shape, const char *request,
                               size_t request_len, const char *response, size_t response_len,
                               size_t *out_len);
int ar_exchange_read_expand (const char *body, size_t len, ar_exchange_expand_t *reply);

//  x-anyray-optimizations: the kinds that changed the request, in order, comma-separated.
size_t ar_exchange_header (const ar_exchange_reply_t *reply, char *out, size_t size);

//  The spend row's "savings" member value: [{"kind","tokens_before","tokens_after"}] for each
//  step that ran. Returns the length, or -1 when it does not fit.
int ar_exchange_savings_json (const ar_exchange_reply_t *reply, char *out, size_t size);

void ar_optimizer_exchange_test (bool verbose);

#endif
