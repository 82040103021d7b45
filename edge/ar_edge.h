/*  ar_edge: the HTTP edge. libmicrohttpd in external-epoll mode, driven from the same loop as
    the broker DEALER, so one thread owns every socket and every suspend/resume with no locks;
    more cores mean more edge processes sharing the port (SO_REUSEPORT).

    The optimizer port (:8088) serves Optimizer Protocol v1 to other gateways by sending the
    same messages over the broker; both ports serve /healthz and the admin API (ar_admin).

    One call: receive the body (413 over the limit) → validate (400) → OPTIMIZE (800 ms,
    fail-open) → ROUTE (falls back to the static plan) → PROVIDE (streamed as chunks arrive)
    → SPEND (fire-and-forget, one content-free row). Connections wait suspended, never on a
    thread.
*/
#ifndef AR_EDGE_H
#define AR_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ar_edge_t ar_edge_t;

typedef struct {
    const char *host;             // bind address (ANYRAY_HOST, default 127.0.0.1)
    uint16_t port;                // ANYRAY_PORT, default 8787
    const char *broker_endpoint;  // ar_env_broker_endpoint
    uint32_t heartbeat_ms;        // ANYRAY_HEARTBEAT_MS
    uint64_t max_body_bytes;      // ANYRAY_MAX_BODY_BYTES, default 32 MiB
    uint32_t optimize_timeout_ms; // ANYRAY_OPTIMIZER_TIMEOUT_MS, default 800
    uint32_t route_timeout_ms;    // ANYRAY_ROUTE_TIMEOUT_MS, default 250
    uint32_t request_timeout_ms;  // ANYRAY_REQUEST_TIMEOUT_MS, default 600000
    const char *optimizer_host;   // ANYRAY_OPTIMIZER_HOST, default 127.0.0.1 (internal port)
    uint16_t optimizer_port;      // ANYRAY_OPTIMIZER_PORT, default 8088; 0 turns it off
    const char *admin_token;      // ANYRAY_ADMIN_TOKEN; NULL or "" turns the admin API off
} ar_edge_config_t;

//  Defaults overridden by the ANYRAY_* environment.
void ar_edge_config_from_env (ar_edge_config_t *config, char *endpoint_buf, size_t size);

ar_edge_t *ar_edge_new (const ar_edge_config_t *config);
void ar_edge_destroy (ar_edge_t **self_p);

//  Serve until SIGINT/SIGTERM.
int ar_edge_run (ar_edge_t *self);

void ar_edge_test (bool verbose);

#endif
