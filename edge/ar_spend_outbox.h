/*  ar_spend_outbox: the edge's side of "a spend row is never lost".

    A row goes to the spend service fire-and-forget as far as the caller is concerned, but the
    edge keeps it until the spend actor answers END (the row is committed). An ERROR
    (NO_WORKER while spend restarts, EXPIRED, WORKER_LOST, 503 while its database is away), a
    send the broker socket refused, or no answer by the deadline puts the row back for a retry
    with backoff (250 ms doubling to 10 s). Rows past the bound, and every row still held at
    shutdown, are appended (fsync'd) to <data dir>/spend-spool.edge-<pid>.jsonl, the format the
    spend actor replays at start.
*/
#ifndef AR_SPEND_OUTBOX_H
#define AR_SPEND_OUTBOX_H

#include "ar_client.h"

typedef struct ar_spend_outbox_t ar_spend_outbox_t;

//  client is borrowed. spool_dir may be NULL (rows past the bound are then dropped and
//  counted). max_pending bounds the rows held in memory.
ar_spend_outbox_t *ar_spend_outbox_new (ar_client_t *client, const char *spool_dir,
                                        size_t max_pending);
//  Spools every row still held, then frees.
void ar_spend_outbox_destroy (ar_spend_outbox_t **self_p);

//  Hand over one row (JSON, content-free). request_hex names it in logs. Returns 0 if it is
//  held or sent, -1 if it could be neither held nor spooled (counted as lost).
int ar_spend_outbox_send (ar_spend_outbox_t *self, const char *request_hex, const char *row,
                          size_t len);

//  A reply from the broker: returns true if it answered one of our rows (and took it).
bool ar_spend_outbox_on_reply (ar_spend_outbox_t *self, const ar_msg_t *msg);

//  Retry what is due, give up waiting on silent sends. Cheap when nothing is due.
void ar_spend_outbox_tick (ar_spend_outbox_t *self);

//  Rows held now (sent and unanswered, or waiting for a retry).
size_t ar_spend_outbox_pending (ar_spend_outbox_t *self);
//  Rows lost for good (no spool directory and over the bound, or the spool write failed).
uint64_t ar_spend_outbox_lost (ar_spend_outbox_t *self);

void ar_spend_outbox_test (bool verbose);

#endif
