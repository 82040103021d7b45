/*  ar_broker: the Majordomo-style switch between the edge and the actors.

    Workers READY a service with a credit; requests go to the live worker with the most free
    credit; replies (CHUNK... END | ERROR) go back to the requester in order. Unlike MDP's
    reference broker it tracks every request in flight, so it can expire work on arrival, in
    the queue and in flight, answer NO_WORKER at once, and requeue (once, and only before the
    first byte reached the client) the work of a worker that died. schemas/broker-protocol.md
    states the rules; each has a test in ar_broker_test.
*/
#ifndef AR_BROKER_H
#define AR_BROKER_H

#include "ar_msg.h"

typedef struct ar_broker_t ar_broker_t;

typedef struct {
    uint64_t requests, replies, expired, no_worker, overloaded, worker_lost, requeued;
    uint64_t late_replies, malformed, not_ours, cancelled, slow_consumer, workers_expired;
} ar_broker_stats_t;

//  Bind a ROUTER to endpoint ("tcp://127.0.0.1:5555", "ipc:///path"). heartbeat_ms is the
//  interval both ways; a worker silent for 3 intervals is dropped. NULL if the bind fails.
ar_broker_t *ar_broker_new (const char *endpoint, uint32_t heartbeat_ms);
void ar_broker_destroy (ar_broker_t **self_p);

//  Serve until zsys_interrupted, or until pipe (if not NULL) receives "$TERM".
int ar_broker_run (ar_broker_t *self, zsock_t *pipe);

const ar_broker_stats_t *ar_broker_stats (ar_broker_t *self);

void ar_broker_test (bool verbose);

#endif
