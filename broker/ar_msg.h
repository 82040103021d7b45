/*  ar_msg: one protocol message as it crosses a socket: optional routing id, command,
    envelope, optional body. Receiving validates frames 0-2 before anything is decoded and
    never asserts on what the network sent.
*/
#ifndef AR_MSG_H
#define AR_MSG_H

#include "ar_envelope.h"

typedef struct {
    zframe_t *routing_id; // ROUTER side only; owned
    ar_cmd_t cmd;
    ar_envelope_t env;
    zframe_t *env_frame; // the envelope as received, to forward without re-encoding; owned
    zframe_t *body;      // owned, NULL when absent
} ar_msg_t;

typedef enum {
    AR_RECV_OK = 0,
    AR_RECV_NOT_OURS = -1,   // no ARB tag, too few frames: drop and count
    AR_RECV_VERSION = -2,    // ARB with another major: answer UNSUPPORTED_VERSION
    AR_RECV_MALFORMED = -3,  // our tag but bad command or envelope: answer MALFORMED if we can
    AR_RECV_INTERRUPTED = -4 // nothing read (EINTR/EAGAIN)
} ar_recv_result_t;

//  Receive one message (non-blocking if flags has ZMQ_DONTWAIT). With router = true, the first
//  frame is taken as the peer's routing id. On any result other than AR_RECV_INTERRUPTED the
//  whole multipart was consumed; msg->routing_id may be set even on error. *error gets a short
//  static reason.
ar_recv_result_t ar_msg_recv (void *zsock, bool router, ar_msg_t *msg, const char **error,
                              int flags);

//  Release frames held by msg (idempotent).
void ar_msg_reset (ar_msg_t *msg);

//  Send cmd + env + body. routing_id (borrowed, not consumed) may be NULL (DEALER side). env_frame,
//  if not NULL, is sent in place of encoding env (forwarding). body may be NULL. Frames passed as
//  pointers are consumed (sent or destroyed) and the pointers nulled. flags: ZMQ_DONTWAIT or 0.
//  Returns 0 or -1 with errno set (EAGAIN, EHOSTUNREACH...).
int ar_msg_send (void *zsock, zframe_t *routing_id, ar_cmd_t cmd, const ar_envelope_t *env,
                 zframe_t **env_frame_p, zframe_t **body_p, int flags);

//  Same, with the body given as bytes (copied).
int ar_msg_send_bytes (void *zsock, zframe_t *routing_id, ar_cmd_t cmd, const ar_envelope_t *env,
                       const void *body, size_t body_len, int flags);

void ar_msg_test (bool verbose);

#endif
