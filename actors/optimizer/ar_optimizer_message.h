/*  ar_optimizer_message: one Optimizer Protocol v1 request body (schemas/optimizer/PROTOCOL.md),
    read and validated without building a DOM of the provider request inside it.

    The body is validated strictly in one pass (ar_json_scan: UTF-8, escapes, depth); its
    top-level members are checked by name and type per operation, unknown or repeated members
    are refused, and the provider "request" / "response" are kept as byte spans into the body,
    so the caller parses them once, or splices them back unchanged into a reply. An error names
    the failing member in param ("request", "metadata.team", "budgetMs") and says why.
*/
#ifndef AR_OPTIMIZER_MESSAGE_H
#define AR_OPTIMIZER_MESSAGE_H

#include "ar_strategy.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    AR_OP_OPTIMIZE,          // POST /v1/optimize
    AR_OP_OPTIMIZE_RESPONSE, // POST /v1/optimize-response
    AR_OP_CACHE,             // POST /v1/cache
    AR_OP_RETRIEVE,          // POST /v1/retrieve
    AR_OP_EXPAND,            // the gateway's own: answer the model's anyray_retrieve calls
    AR_OP_COUNT
} ar_optimizer_op_t;

#define AR_OPTIMIZER_ENDPOINT_MAX 256
#define AR_OPTIMIZER_META_VALUE   256 // bytes of one metadata value

typedef struct {
    ar_optimizer_op_t op;
    char endpoint[AR_OPTIMIZER_ENDPOINT_MAX + 1];
    ar_shape_t shape; // given, or inferred from endpoint
    const char *request;
    size_t request_len; // span in the body; request NULL when absent
    const char *response;
    size_t response_len;
    json_t *metadata;       // owned; NULL when absent. Values are strings, numbers or booleans
    bool can_short_circuit; //
    int64_t budget_ms;      // 0 when not given
    int64_t ttl_seconds;    // cache: 0 when not given
    char id[33];            // retrieve
} ar_optimizer_message_t;

//  The operation for a broker body kind ("optimize", "optimize-response", "cache",
//  "retrieve") or an HTTP path ("/v1/optimize", ...); -1 when it is neither.
int ar_optimizer_op_from_kind (const char *kind);
int ar_optimizer_op_from_path (const char *path);
const char *ar_optimizer_op_kind (ar_optimizer_op_t op);

//  Parse body as a message of op. Returns 0, or -1 with a short reason in error and the
//  failing member's path in param ("" when the body as a whole is wrong). On success release
//  with ar_optimizer_message_release; the spans point into body, which must outlive msg.
int ar_optimizer_message_parse (ar_optimizer_op_t op, const char *body, size_t len,
                                ar_optimizer_message_t *msg, char *param, size_t param_size,
                                char *error, size_t error_size);
void ar_optimizer_message_release (ar_optimizer_message_t *msg);

//  A metadata value as the text the targeting rules match on ("alice", "42", "true"), or
//  NULL when key is absent. Valid while msg lives.
const char *ar_optimizer_message_meta (const ar_optimizer_message_t *msg, const char *key);

//  The protocol's error body: {"error":{"message","type","param"}} (param null when empty).
//  type is "invalid_request_error", "not_found_error" or "server_error". Caller frees.
char *ar_optimizer_error_body (const char *type, const char *message, const char *param);

void ar_optimizer_message_test (bool verbose);

#endif
