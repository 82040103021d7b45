/*  ar_client: the requester's half of the broker protocol (the edge uses it).

    A DEALER to the broker. The client drives liveness (zproto's advice: clients ping, the
    server answers), so the edge learns within three beats that its broker is gone and fails
    its requests by its own deadlines rather than waiting on a dead socket.
*/
#ifndef AR_CLIENT_H
#define AR_CLIENT_H

#include "ar_msg.h"
#include "ar_clock.h"

typedef struct ar_client_t ar_client_t;

ar_client_t *ar_client_new (const char *endpoint, uint32_t heartbeat_ms);
void ar_client_destroy (ar_client_t **self_p);

//  The socket, to poll for ZMQ_POLLIN.
zsock_t *ar_client_sock (ar_client_t *self);

//  Send a REQUEST. env must carry id, service and deadline; the body frame is consumed.
int ar_client_request (ar_client_t *self, const ar_envelope_t *env, zframe_t **body_p);

//  Tell the broker the requester gave up on id (client gone, local deadline).
int ar_client_cancel (ar_client_t *self, const uint8_t *id);

//  Non-blocking receive of one reply (CHUNK, END, ERROR). Heartbeats are consumed here and
//  reported as AR_RECV_INTERRUPTED-free skips; returns AR_RECV_INTERRUPTED when nothing is left.
ar_recv_result_t ar_client_recv (ar_client_t *self, ar_msg_t *msg);

//  Beat if due; returns ms until the next beat. Call once per loop pass.
int64_t ar_client_tick (ar_client_t *self);

//  True while the broker answered within three beats.
bool ar_client_broker_alive (ar_client_t *self);

void ar_client_test (bool verbose);

#endif
