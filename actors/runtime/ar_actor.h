/*  ar_actor: the runtime every actor process runs on.

    One event loop per process owns one DEALER to the broker. It announces the service with a
    credit (how many requests it takes at once), heartbeats from the same loop that does the
    work (a hung loop stops beating; a busy one does not), re-READYs after DISCONNECT or a broker
    restart, and tracks every job in flight with its deadline: an expired job is cancelled
    locally (on_cancel) and never answered late.

    Handlers never block. Work that waits on I/O (curl, a database) registers its fd with
    ar_actor_watch_fd and its next timer with ar_actor_set_timer; the loop calls back.

    A job is answered by zero or more ar_actor_chunk and then exactly one ar_actor_end or
    ar_actor_error, now or later. job->reply is the envelope those messages carry: set its meta
    or status before a send; the runtime clears meta and status after each send.
*/
#ifndef AR_ACTOR_H
#define AR_ACTOR_H

#include "ar_envelope.h"
#include "ar_clock.h"

typedef struct ar_actor_t ar_actor_t;

typedef struct ar_job_t {
    ar_envelope_t env;   // the request as received
    zframe_t *body;      // request body; owned by the job, may be NULL
    ar_envelope_t reply; // what replies carry (id, seq kept by the runtime)
    ar_mono_ms deadline; // local monotonic deadline derived from env
    void *user;          // the handler's per-job state
    // runtime-private below
    struct ar_job_t *prev, *next;
} ar_job_t;

typedef struct {
    const char *service; // e.g. "provider"
    uint16_t credit;     // requests taken at once
    void *arg;           // passed to every callback
    //  A request arrived. Reply now or later.
    void (*on_request) (ar_actor_t *actor, ar_job_t *job, void *arg);
    //  The job ends without a reply (broker CANCEL or deadline passed). Release job->user; the
    //  runtime frees the job afterwards. May be NULL when handlers always answer at once.
    void (*on_cancel) (ar_actor_t *actor, ar_job_t *job, void *arg);
} ar_actor_ops_t;

//  Connect to the broker (ar_env_broker_endpoint) and READY. NULL on failure.
ar_actor_t *ar_actor_new (const ar_actor_ops_t *ops);
void ar_actor_destroy (ar_actor_t **self_p);

//  Run until SIGINT/SIGTERM or ar_actor_stop. Returns 0.
int ar_actor_run (ar_actor_t *self);
void ar_actor_stop (ar_actor_t *self);

//  Streamed part of the reply (seq advances). Returns 0, or -1 if the broker cannot take it now.
int ar_actor_chunk (ar_actor_t *self, ar_job_t *job, const void *data, size_t len);
//  Final part; frees the job and nulls *job_p. Returns -1 (job kept, *job_p unchanged) if the
//  broker cannot take it now: offer it again later, or let the deadline cancel the job.
int ar_actor_end (ar_actor_t *self, ar_job_t **job_p, const void *data, size_t len);
//  The request failed; code is HTTP-like (502, 504...), reason short and content-free. Same
//  ownership rule as ar_actor_end.
int ar_actor_error (ar_actor_t *self, ar_job_t **job_p, uint16_t code, const char *reason);

//  Call on_ready whenever fd is readable (or writable, per events: ZMQ_POLLIN/ZMQ_POLLOUT).
//  At most 8 fds. Returns 0 or -1.
int ar_actor_watch_fd (ar_actor_t *self, int fd, short events,
                       void (*on_ready) (ar_actor_t *actor, int fd, short revents, void *arg));
//  One timer per actor: fire on_timer at monotonic time due (replaces any earlier setting);
//  due < 0 clears it.
void ar_actor_set_timer (ar_actor_t *self, ar_mono_ms due,
                         void (*on_timer) (ar_actor_t *actor, void *arg));

//  Jobs in flight now.
size_t ar_actor_inflight (ar_actor_t *self);

void ar_actor_test (bool verbose);

#endif
