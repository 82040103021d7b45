/*  ar_retrieve_tool: let the model expand what the optimizer elided.

    When the config turns it on ("retrieveTool": {"enabled": true}) and a strategy left elision
    markers in the request, the optimizer adds one tool, anyray_retrieve(id), to the request.
    If the model calls it, the gateway does not hand that call to the caller (who never
    declared such a tool): it asks the optimizer to expand — the assistant turn with the call
    and a tool result holding the stashed original are appended to the request — and calls the
    provider again. The caller sees only the final answer.

    Only non-streamed calls are offered the tool (a stream's first bytes would reach the caller
    before the gateway knew whether the model wanted to retrieve). When the model calls
    anyray_retrieve together with the caller's own tools, the gateway cannot answer the
    caller's calls, so the response goes to the caller with the anyray_retrieve calls removed.
*/
#ifndef AR_RETRIEVE_TOOL_H
#define AR_RETRIEVE_TOOL_H

#include "ar_stash.h"
#include "ar_strategy.h"
#include <jansson.h>
#include <stdbool.h>

#define AR_RETRIEVE_TOOL_NAME "anyray_retrieve"

//  Add the tool definition to request when it may be offered: not streamed, tool_choice not
//  "none", no tool of that name already. Returns true when added.
bool ar_retrieve_tool_offer (ar_shape_t shape, json_t *request);

typedef enum {
    AR_EXPAND_NONE,     // the response calls no anyray_retrieve: give it to the caller
    AR_EXPAND_CONTINUE, // request extended with the call and its results: call again
    AR_EXPAND_STRIPPED, // mixed with the caller's tool calls: *stripped is the response without
                        // ours
} ar_expand_t;

//  Look at a provider response to request. CONTINUE: request (edited in place) now ends with the
//  assistant turn and one result per anyray_retrieve call, read from stash (a missing or
//  expired id gets a result that says so). STRIPPED: *stripped is a new response (caller
//  decrefs). Returns NONE on anything it does not understand.
ar_expand_t ar_retrieve_tool_expand (ar_shape_t shape, json_t *request, const json_t *response,
                                     ar_stash_t *stash, json_t **stripped);

void ar_retrieve_tool_test (bool verbose);

#endif
