/*  ar_fake_upstream: a tiny HTTP/1.1 server on loopback that plays an OpenAI upstream, for the
    provider's self-tests (no network, no other process). One thread accepts, one thread serves
    each connection, keep-alive honoured, so connection reuse can be counted.

    Routes: POST /v1/chat/completions (SSE when the body has "stream":true, written in small
    pieces; else a JSON body), GET /v1/models, /v1/error (401), /v1/limited (429, Retry-After: 7),
   /v1/slow (answers after 3 s), /v1/broken (one event, then the connection drops), /v1/hang (one
   event, then nothing until the client goes away), /v1/many (a long fast stream, to fill the
   broker).
*/
#ifndef AR_FAKE_UPSTREAM_H
#define AR_FAKE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ar_fake_upstream_t ar_fake_upstream_t;

ar_fake_upstream_t *ar_fake_upstream_new (void);
void ar_fake_upstream_destroy (ar_fake_upstream_t **self_p);

//  "http://127.0.0.1:<port>/v1"
const char *ar_fake_upstream_base_url (ar_fake_upstream_t *self);
//  The Authorization header of the last request ("" if it had none), copied into buf.
void ar_fake_upstream_last_auth (ar_fake_upstream_t *self, char *buf, size_t size);
//  Whether the last request had an Expect header, and its Content-Type.
bool ar_fake_upstream_last_expect (ar_fake_upstream_t *self);
//  Connections accepted, requests served, and clients seen going away mid-answer so far.
size_t ar_fake_upstream_connections (ar_fake_upstream_t *self);
size_t ar_fake_upstream_requests (ar_fake_upstream_t *self);
size_t ar_fake_upstream_hangups (ar_fake_upstream_t *self);

//  The canned chat stream exactly as sent, and as it must arrive with strip_usage.
const char *ar_fake_upstream_stream (void);
const char *ar_fake_upstream_stream_stripped (void);
//  The canned non-stream body, the error body, and the /v1/many stream (built once).
const char *ar_fake_upstream_body (void);
const char *ar_fake_upstream_error_body (void);
const char *ar_fake_upstream_many (void);

#endif
