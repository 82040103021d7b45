/*  ar_optimizer: the OPTIMIZE service. Answers Optimizer Protocol v1 messages
    (schemas/optimizer/PROTOCOL.md) whose operation is the envelope's body kind: "optimize",
    "optimize-response", "cache", "retrieve". The edge's own chat path and its HTTP server on
    :8088 both send these same messages over the broker.

    One object per process (or per thread): the running config (ar_optimizer_settings, polled
    from the shared store so an admin change lands within the poll interval), the o200k_base
    tokenizer, and the reversible stash. Every reply is the protocol's JSON with an HTTP-like
    status in the envelope: 200, 400 (the message is wrong; param names the member), 404
    (retrieve: unknown or expired id), 500. Callers treat anything but 200 as "forward
    unchanged".

    For tests of fail-open in real processes, ANYRAY_FAULT_STRATEGY="<kind>:fail" makes that
    kind corrupt the request and then report failure, and "<kind>:stall" makes it sleep past
    the deadline after editing it: the runner must undo both. Never set it in production.
*/
#ifndef AR_OPTIMIZER_H
#define AR_OPTIMIZER_H

#include "ar_actor.h"
#include "ar_optimize.h"
#include "ar_optimizer_message.h"

typedef struct ar_optimizer_t ar_optimizer_t;

//  Open the settings, the tokenizer and the stash under data_dir (anyray.db, content.key).
//  NULL on failure with a content-free reason in error.
ar_optimizer_t *ar_optimizer_new (const char *data_dir, char *error, size_t error_size);
void ar_optimizer_destroy (ar_optimizer_t **self_p);

//  Answer one message: returns the status and sets *reply (caller frees) to the reply body.
//  deadline bounds the strategies (they stop starting past it and undo what overran it).
int ar_optimizer_answer (ar_optimizer_t *self, ar_optimizer_op_t op, const char *body, size_t len,
                         ar_mono_ms deadline, char **reply, size_t *reply_len);

//  Take a newer stored config if there is one (see ar_optimizer_settings_poll).
int ar_optimizer_poll (ar_optimizer_t *self);
int64_t ar_optimizer_config_version (ar_optimizer_t *self);

//  Counters since start, as {"configVersion", "strategies": {kind: {runs, applied, failed,
//  overran, unavailable}}}. Caller frees.
char *ar_optimizer_counters_json (ar_optimizer_t *self);

//  The actor's on_request; arg is the ar_optimizer_t.
void ar_optimizer_handle (ar_actor_t *actor, ar_job_t *job, void *arg);

void ar_optimizer_test (bool verbose);

#endif
