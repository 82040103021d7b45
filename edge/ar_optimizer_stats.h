/*  ar_optimizer_stats: what the optimizer did for the calls through this edge, for
    GET /admin/optimizer/stats. Content-free counters only.

    Fail-open is counted at both levels: a whole OPTIMIZE that timed out, erred or found no
    worker (the request went upstream unchanged), and each strategy that failed, overran or
    was unavailable inside an answered one (the optimizer undid just that step).
*/
#ifndef AR_OPTIMIZER_STATS_H
#define AR_OPTIMIZER_STATS_H

#include "ar_optimizer_exchange.h"
#include <stdbool.h>
#include <stdint.h>

#define AR_STATS_KINDS 16

typedef enum {
    AR_FAIL_OPEN_TIMEOUT,   // no answer within ANYRAY_OPTIMIZER_TIMEOUT_MS
    AR_FAIL_OPEN_ERROR,     // an error reply, or a reply that did not read
    AR_FAIL_OPEN_NO_WORKER, // no optimizer worker, or the broker would not take it
    AR_FAIL_OPEN_COUNT
} ar_fail_open_t;

typedef struct {
    char kind[48];
    uint64_t runs, changed, failed, overran, unavailable;
    int64_t tokens_saved;
} ar_stats_kind_t;

typedef struct {
    uint64_t calls, answered, changed, cache_hits;
    uint64_t fail_open[AR_FAIL_OPEN_COUNT];
    int64_t tokens_before, tokens_after;
    ar_stats_kind_t kinds[AR_STATS_KINDS];
    size_t kind_count;
} ar_optimizer_stats_t;

//  One OPTIMIZE answered with a well-formed reply.
void ar_optimizer_stats_add_reply (ar_optimizer_stats_t *self, const ar_exchange_reply_t *reply);
//  One OPTIMIZE that failed open as a whole.
void ar_optimizer_stats_add_fail_open (ar_optimizer_stats_t *self, ar_fail_open_t why);
//  {"calls","answered","changed","cacheHits","failOpen":{"timeout","error","noWorker","total"},
//   "tokensBefore","tokensAfter","tokensSaved","strategies":{kind:{runs,changed,failed,
//   overran,unavailable,tokensSaved}}}. Caller frees.
char *ar_optimizer_stats_json (const ar_optimizer_stats_t *self);

void ar_optimizer_stats_test (bool verbose);

#endif
