/*  ar_provider: the provider actor's engine. It takes `provide` jobs, calls the upstream LLM
    provider over one shared curl multi handle, and answers each job as the upstream answers.

    Reply contract (every job gets zero or more CHUNKs, then exactly one END or ERROR):
    - The first message carries status (upstream HTTP status, reason "upstream"), meta
      content_type (the upstream's Content-Type), and retry_after (seconds) when a 429 or 503
      said when to come back.
    - Streamed 2xx (text/event-stream): CHUNKs of whole SSE events, each sent as soon as its
      blank line arrives; the usage-only event is dropped when meta strip_usage is 1. Then an
      empty END with meta input_tokens, output_tokens and upstream_model when seen.
    - Anything else (non-stream 2xx, any 3xx/4xx/5xx): one END with the body unchanged; usage
      meta from a 2xx JSON body.
    - Transport failure: ERROR 502 "upstream unreachable" or 504 "upstream timeout" before any
      byte went out, 502 "upstream stream broken" after.
    - When the broker cannot take a CHUNK, the transfer pauses (curl holds the bytes) and resumes
      on a short timer; nothing is dropped. A cancelled job's transfer stops at once, silently.

    The engine does not call the actor runtime itself: it replies and sets its timer through an
    ar_provider_host_t (the runtime in main.c; a recorder in the self-test), and the owner
    watches ar_provider_fd. This keeps it testable end to end against a loopback upstream.
*/
#ifndef AR_PROVIDER_H
#define AR_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ar_actor.h"

typedef struct ar_provider_t ar_provider_t;

//  What the engine needs from its host: the ar_actor_chunk/end/error contract, and one timer.
typedef struct {
    void *arg; // first argument of every call below
    int (*chunk) (void *arg, ar_job_t *job, const void *data, size_t len);
    int (*end) (void *arg, ar_job_t **job_p, const void *data, size_t len);
    int (*error) (void *arg, ar_job_t **job_p, uint16_t code, const char *reason);
    //  Call ar_provider_timer at monotonic time due; due < 0 clears. One timer, replaced.
    void (*set_timer) (void *arg, ar_mono_ms due);
} ar_provider_host_t;

//  Read the server-held keys (ANYRAY_PROVIDER_KEY_<SLUG>) and ANYRAY_PROVIDER_CA_FILE (a CA
//  bundle for TLS upstreams with a private CA), and set up the multi handle. With a data_dir,
//  the runtime keys an admin sets (ar_provider_keys in <data_dir>/anyray.db, under the content
//  key of data_dir) win over the environment's, polled every ANYRAY_CONFIG_POLL_MS (250); if
//  that store will not open, the environment's keys serve (with a warning) while it is retried.
//  NULL data_dir: the environment's keys only. Call curl_global_init before. NULL on failure.
ar_provider_t *ar_provider_new (const ar_provider_host_t *host, const char *data_dir);
//  Stops every transfer without replying (the jobs stay the runtime's).
void ar_provider_destroy (ar_provider_t **self_p);

//  The fd the owner watches for readability (ZMQ_POLLIN); then call ar_provider_ready.
int ar_provider_fd (ar_provider_t *self);
void ar_provider_ready (ar_provider_t *self);
//  The host timer fired.
void ar_provider_timer (ar_provider_t *self);

//  A `provide` job arrived (on_request). It is answered now or later.
void ar_provider_request (ar_provider_t *self, ar_job_t *job);
//  The job ends without a reply (on_cancel): stop its transfer, free its state, send nothing.
void ar_provider_cancel (ar_provider_t *self, ar_job_t *job);

//  Calls in flight (including those waiting to hand their last bytes to the broker).
size_t ar_provider_calls (ar_provider_t *self);

void ar_provider_test (bool verbose);

#endif
