/*  ar_route_plan: the router's ordered plan for one call, and the walk along it.

    The plan (ar_router.h has its JSON form) lists targets in the order to try them. Each
    target carries its own retry settings and timeout, and, when it sits inside a fallback,
    the statuses on which the walk moves on to the next target. After each try the edge reports
    how it went (ar_route_plan_next) and is told what to do: keep the answer, try the same
    target again after a delay, or try the next target.

    - A 1xx-3xx answer is kept.
    - A status in the target's retry_on, or a transport failure (status 0: refused, reset,
      timed out), is tried again while attempts remain, after backoff_ms * 2^(n-1) capped at
      max_backoff_ms, drawn uniformly from [d/2, d] so that replicas do not retry in step. When
      the target honours Retry-After, the wait is at least what the upstream asked; an upstream
      that asks for more than max_retry_after_ms is not waited for on this target.
    - Otherwise, inside a fallback, a status in fallback_on or a transport failure moves on to
      the next target. Anything else is the answer.

    The edge only asks before the first byte has gone to its caller: a stream that fails midway
    is never retried or moved on (the caller has seen part of an answer).
*/
#ifndef AR_ROUTE_PLAN_H
#define AR_ROUTE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_ROUTE_PLAN_TARGETS_MAX 16
#define AR_ROUTE_PLAN_EXTRAS_MAX  6

//  A set of HTTP statuses 400..655 (the config allows 400..599), one bit each.
typedef struct {
    uint64_t bits[4];
} ar_route_codes_t;

typedef struct {
    char provider[64];
    char base_url[512];
    char name[72];   // "" when the config did not name it
    char model[264]; // "" unless the target overrides the model (the config allows 256 bytes)
    struct {
        char key[32], value[264];
    } extras[AR_ROUTE_PLAN_EXTRAS_MAX]; // the provider's settings (deployment, region, ...)
    size_t extra_count;
    int attempts; // retries after the first try
    ar_route_codes_t retry_on;
    uint32_t backoff_ms, max_backoff_ms;
    bool retry_after;
    uint32_t max_retry_after_ms;
    uint32_t timeout_ms; // one try; 0: the edge's default
    bool in_fallback;
    ar_route_codes_t fallback_on;
} ar_route_target_t;

typedef enum {
    AR_ROUTE_ANSWER, // this try's outcome is the call's answer
    AR_ROUTE_RETRY,  // try the same target again after *delay_ms
    AR_ROUTE_NEXT    // try the next target now
} ar_route_step_t;

typedef struct ar_route_plan_t ar_route_plan_t;

//  Parse a plan. NULL when it is not a plan (no targets, a target without provider or
//  base_url, a string that does not fit).
ar_route_plan_t *ar_route_plan_parse (const char *json, size_t len);
void ar_route_plan_destroy (ar_route_plan_t **self_p);

//  The target of the current try.
const ar_route_target_t *ar_route_plan_target (const ar_route_plan_t *self);
//  Tries made so far (all targets), counting the current one once it has begun.
int ar_route_plan_tries (const ar_route_plan_t *self);
int64_t ar_route_plan_version (const ar_route_plan_t *self);
size_t ar_route_plan_size (const ar_route_plan_t *self);

//  A try is about to begin (counts it).
void ar_route_plan_begin_try (ar_route_plan_t *self);

//  The current try ended with status (0: transport failure or timeout) and the upstream's
//  Retry-After in ms (-1: none). random is a uniform 64-bit draw for the jitter. Returns what
//  to do; on AR_ROUTE_RETRY *delay_ms is the wait; on AR_ROUTE_NEXT the current target has
//  moved on.
ar_route_step_t ar_route_plan_next (ar_route_plan_t *self, int status, int64_t retry_after_ms,
                                    uint64_t random, uint32_t *delay_ms);

void ar_route_plan_test (bool verbose);

#endif
