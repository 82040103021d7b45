/*  ar_optimize: the pipeline runner. Runs the resolved strategies in order over one request
    DOM, fail-open per strategy, and reports what each did.

    For each step: a kind that is not built is skipped ("unavailable"); past ctx->deadline the
    rest are skipped ("overran", nothing started late). Otherwise the request is deep-copied,
    the strategy runs, and the request is restored exactly (in place: the root object keeps its
    identity and member order) when the strategy returns -1 ("failed"), finishes past the
    deadline ("overran"), or leaves more tokens than it found ("failed", note "grew"). Tokens
    are counted with ar_chat_view_count_tokens before the first step and after every step that
    says it changed the request; a step that says it did not is trusted and not recounted.

    Stash ids a strategy produced are recorded in the report, and forgotten when its work is
    undone or it reports no change (the orphan entries simply expire), so the report's ids are
    exactly those the request refers to (window_budget markers, tool_pruning's note).
*/
#ifndef AR_OPTIMIZE_H
#define AR_OPTIMIZE_H

#include "ar_optimizer_config.h"
#include "ar_strategy.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define AR_OPTIMIZE_STEPS_MAX AR_STRATEGY_MAX
//  Stash ids one request may produce; a put past it fails. An agent conversation of a hundred
//  turns stashes one original per turn whose reasoning window_budget cropped and per result
//  context_compression rewrote.
#define AR_OPTIMIZE_STASH_IDS_MAX 256

typedef enum {
    AR_OPTIMIZE_RAN,         // ran; result.applied says whether it changed anything
    AR_OPTIMIZE_UNAVAILABLE, // kind not built yet
    AR_OPTIMIZE_FAILED,      // returned -1 or grew the request: undone
    AR_OPTIMIZE_OVERRAN,     // finished past the deadline (undone), or not started past it
} ar_optimize_status_t;

typedef struct {
    const char *kind;
    ar_optimize_status_t status;
    ar_strategy_result_t result; // tokens, micros, note
} ar_optimize_step_result_t;

typedef struct {
    ar_optimize_step_result_t steps[AR_OPTIMIZE_STEPS_MAX];
    size_t step_count;
    int64_t tokens_before, tokens_after; // the whole request, first and last
    int64_t micros;                      // the whole run
    bool changed;                        // some step's work was kept
    char stash_ids[AR_OPTIMIZE_STASH_IDS_MAX][33];
    size_t stash_id_count;
} ar_optimize_report_t;

//  One step for ar_optimize_run_steps: strategy NULL means not built (unavailable).
typedef struct {
    const char *kind;
    const ar_strategy_t *strategy;
    const json_t *params;
} ar_optimize_step_t;

//  Per-kind counters for /admin stats; the caller owns them (one per process or replica) and
//  adds each report in. Indexed by registry index; kinds outside the registry are not counted.
typedef struct {
    uint64_t runs[AR_STRATEGY_MAX];
    uint64_t applied[AR_STRATEGY_MAX];
    uint64_t failed[AR_STRATEGY_MAX];
    uint64_t overran[AR_STRATEGY_MAX];
    uint64_t unavailable[AR_STRATEGY_MAX];
} ar_optimize_counters_t;

//  Run the pipeline over ctx->request. ctx->tokenizer is required. Returns 0, or -1 when the
//  request is not a JSON object or cannot be copied (it is then left as it was, nothing ran).
int ar_optimize_run (const ar_pipeline_t *pipeline, ar_strategy_ctx_t *ctx,
                     ar_optimize_report_t *report);
//  The same over an explicit list of steps (the pipeline's rows map to these via the registry).
int ar_optimize_run_steps (const ar_optimize_step_t *steps, size_t count, ar_strategy_ctx_t *ctx,
                           ar_optimize_report_t *report);

//  The reply's part: {"applied":[{"kind","changed","tokensBefore","tokensAfter","ms","note"}],
//  "skipped":[{"kind","reason"}],"tokensBefore","tokensAfter","stashIds":[...]}. "applied"
//  lists every step that ran, in order, whether or not it changed anything (as the protocol
//  says); "note" only when there is one. New reference, NULL only when out of memory.
json_t *ar_optimize_report_json (const ar_optimize_report_t *report);
//  x-anyray-optimizations: the kinds that changed the request, comma-separated, in order
//  ("param_tuning,window_budget"); "" when none. Returns the length (truncated like snprintf).
size_t ar_optimize_report_header (const ar_optimize_report_t *report, char *out, size_t size);
//  Add one report into the counters.
void ar_optimize_counters_add (ar_optimize_counters_t *counters,
                               const ar_optimize_report_t *report);

void ar_optimize_test (bool verbose);

#endif
