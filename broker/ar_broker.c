/*  ar_broker: services, workers, requests in flight, dispatch by credit, deadlines.

    Costs and choices:
    - Maps are zhashx keyed by hex strings (routing ids, request ids): O(1) on the hot path.
    - Deadlines are swept by a scan at most every AR_SWEEP_MS rather than kept in a heap: with
      thousands in flight that is well under a million cheap checks a second, and it keeps
      one structure per request instead of two. Expiry is therefore up to AR_SWEEP_MS late.
    - Every send is ZMQ_DONTWAIT on a ROUTER_MANDATORY socket: EHOSTUNREACH means the peer is
      gone, EAGAIN a slow consumer; the broker never blocks.
    - A request keeps its envelope and body frames until the first reply byte is forwarded, so
      it can be requeued once after a worker dies; after that they are released.
*/
#include "ar_broker.h"
#include "ar_buf.h"
#include "ar_clock.h"
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define AR_SWEEP_MS     10
#define AR_LIVENESS     3
#define AR_QUEUE_MAX    10000 // per service; beyond it requests are OVERLOADED at once
#define AR_SERVICES_MAX 256
#define AR_WORKERS_MAX  4096

typedef struct s_service_t s_service_t;

typedef struct {
    char key[2 * 256 + 1]; // hex of the routing id
    zframe_t *routing_id;
    s_service_t *service;
    uint32_t credit, inflight;
    uint64_t last_dispatch; // dispatch counter, for least-recently-used tie breaks
    ar_mono_ms expiry;
} s_worker_t;

struct s_service_t {
    char name[AR_SERVICE_MAX + 1];
    zlistx_t *workers; // s_worker_t*, not owned
    zlistx_t *queue;   // s_request_t*, not owned (owned by the requests map)
};

typedef struct {
    char key[2 * AR_ID_LEN + 1];
    uint8_t id[AR_ID_LEN];
    zframe_t *client; // routing id of the requester
    s_service_t *service;
    s_worker_t *worker; // NULL while queued
    void *queue_handle; // position in service->queue while queued
    ar_mono_ms deadline;
    zframe_t *env_frame; // kept for requeue until the first reply byte
    zframe_t *body;
    bool replied; // a CHUNK reached the client: never replay
    uint8_t attempt;
} s_request_t;

struct ar_broker_t {
    zsock_t *router;
    uint32_t heartbeat_ms;
    zhashx_t *services; // name -> s_service_t
    zhashx_t *workers;  // routing hex -> s_worker_t
    zhashx_t *requests; // id hex -> s_request_t
    ar_mono_ms next_heartbeat, next_sweep;
    uint64_t dispatches;
    ar_broker_stats_t stats;
};

static void s_request_destroy (void **item)
{
    s_request_t *request = *item;
    zframe_destroy (&request->client);
    zframe_destroy (&request->env_frame);
    zframe_destroy (&request->body);
    free (request);
    *item = NULL;
}

static void s_worker_destroy (void **item)
{
    s_worker_t *worker = *item;
    zframe_destroy (&worker->routing_id);
    free (worker);
    *item = NULL;
}

static void s_service_destroy (void **item)
{
    s_service_t *service = *item;
    zlistx_destroy (&service->workers);
    zlistx_destroy (&service->queue);
    free (service);
    *item = NULL;
}

ar_broker_t *ar_broker_new (const char *endpoint, uint32_t heartbeat_ms)
{
    ar_broker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_sndtimeo (self->router, 0);
    //  Deep queues absorb bursts of stream chunks; the broker still never blocks on them.
    zsock_set_sndhwm (self->router, 200000);
    zsock_set_rcvhwm (self->router, 200000);
    zsock_set_linger (self->router, 200);
    if (zsock_bind (self->router, "%s", endpoint) < 0) {
        fprintf (stderr, "anyray-broker: cannot bind %s: %s\n", endpoint, zmq_strerror (errno));
        zsock_destroy (&self->router);
        free (self);
        return NULL;
    }
    self->heartbeat_ms = heartbeat_ms ? heartbeat_ms : 500;
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, s_service_destroy);
    self->workers = zhashx_new ();
    zhashx_set_destructor (self->workers, s_worker_destroy);
    self->requests = zhashx_new ();
    zhashx_set_destructor (self->requests, s_request_destroy);
    self->next_heartbeat = ar_mono_now () + self->heartbeat_ms;
    return self;
}

void ar_broker_destroy (ar_broker_t **self_p)
{
    ar_broker_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->requests);
    zhashx_destroy (&self->workers);
    zhashx_destroy (&self->services);
    zsock_destroy (&self->router);
    free (self);
    *self_p = NULL;
}

const ar_broker_stats_t *ar_broker_stats (ar_broker_t *self)
{
    return &self->stats;
}

//  --------------------------------------------------------------------------
//  Answers the broker writes itself.

static uint16_t s_status_for (const char *reason)
{
    if (strcmp (reason, AR_REASON_EXPIRED) == 0)
        return 504;
    if (strcmp (reason, AR_REASON_WORKER_LOST) == 0)
        return 502;
    if (strcmp (reason, AR_REASON_MALFORMED) == 0 || strcmp (reason, AR_REASON_VERSION) == 0)
        return 400;
    return 503; // NO_WORKER, OVERLOADED
}

static void s_send_error (ar_broker_t *self, zframe_t *client, const uint8_t *id,
                          const char *reason)
{
    ar_envelope_t env;
    ar_envelope_init (&env);
    if (id)
        memcpy (env.id, id, AR_ID_LEN);
    ar_envelope_set_status (&env, s_status_for (reason), reason);
    ar_msg_send (self->router, client, AR_CMD_ERROR, &env, NULL, NULL, ZMQ_DONTWAIT);
}

static void s_send_control (ar_broker_t *self, zframe_t *peer, ar_cmd_t cmd, const uint8_t *id,
                            const char *reason)
{
    ar_envelope_t env;
    ar_envelope_init (&env);
    if (id)
        memcpy (env.id, id, AR_ID_LEN);
    if (reason)
        ar_envelope_set_status (&env, 400, reason);
    ar_msg_send (self->router, peer, cmd, &env, NULL, NULL, ZMQ_DONTWAIT);
}

//  --------------------------------------------------------------------------
//  Services and workers.

static s_service_t *s_service_require (ar_broker_t *self, const char *name)
{
    s_service_t *service = zhashx_lookup (self->services, name);
    if (service || zhashx_size (self->services) >= AR_SERVICES_MAX)
        return service;
    service = calloc (1, sizeof *service);
    snprintf (service->name, sizeof service->name, "%s", name);
    service->workers = zlistx_new ();
    service->queue = zlistx_new ();
    zhashx_insert (self->services, name, service);
    return service;
}

static void s_request_finish (ar_broker_t *self, s_request_t *request)
{
    if (request->worker && request->worker->inflight)
        request->worker->inflight--;
    if (request->queue_handle)
        zlistx_delete (request->service->queue, request->queue_handle);
    zhashx_delete (self->requests, request->key);
}

static void s_dispatch_queue (ar_broker_t *self, s_service_t *service);

//  Send a request to the worker with the most free credit (least recently used on ties).
//  Returns 0 if a worker took it, 1 if every worker is full, -1 if there is no worker.
static int s_dispatch (ar_broker_t *self, s_request_t *request)
{
    s_service_t *service = request->service;
    for (int tries = 0; tries < 8; tries++) {
        s_worker_t *best = NULL;
        for (s_worker_t *w = zlistx_first (service->workers); w;
             w = zlistx_next (service->workers)) {
            if (w->inflight >= w->credit)
                continue;
            if (!best || w->credit - w->inflight > best->credit - best->inflight ||
                (w->credit - w->inflight == best->credit - best->inflight &&
                 w->last_dispatch < best->last_dispatch))
                best = w;
        }
        if (!best)
            return zlistx_size (service->workers) ? 1 : -1;
        zframe_t *env_frame = zframe_dup (request->env_frame);
        zframe_t *body = request->body ? zframe_dup (request->body) : NULL;
        if (ar_msg_send (self->router, best->routing_id, AR_CMD_REQUEST, NULL, &env_frame, &body,
                         ZMQ_DONTWAIT) == 0) {
            best->inflight++;
            best->last_dispatch = ++self->dispatches;
            request->worker = best;
            return 0;
        }
        //  EHOSTUNREACH: the worker is gone; EAGAIN: it cannot take more now. Either way it
        //  leaves rotation: a gone worker for good, a slow one until it speaks again.
        if (errno == EHOSTUNREACH) {
            zlistx_delete (service->workers, zlistx_find (service->workers, best));
            best->service = NULL;
        } else
            best->inflight = best->credit;
    }
    return 1;
}

static void s_worker_remove (ar_broker_t *self, s_worker_t *worker)
{
    s_service_t *service = worker->service;
    if (service) {
        void *handle = zlistx_find (service->workers, worker);
        if (handle)
            zlistx_delete (service->workers, handle);
    }
    //  Its requests: requeue those whose client has seen nothing yet (once), fail the rest.
    zlistx_t *lost = zlistx_new ();
    for (s_request_t *r = zhashx_first (self->requests); r; r = zhashx_next (self->requests))
        if (r->worker == worker)
            zlistx_add_end (lost, r);
    ar_mono_ms now = ar_mono_now ();
    for (s_request_t *r = zlistx_first (lost); r; r = zlistx_next (lost)) {
        r->worker = NULL;
        bool retry = !r->replied && r->attempt < 1 && r->env_frame && r->deadline > now &&
                     zlistx_size (r->service->workers) > 0;
        if (retry) {
            r->attempt++;
            self->stats.requeued++;
            int rc = s_dispatch (self, r);
            if (rc == 0)
                continue;
            if (rc == 1 && zlistx_size (r->service->queue) < AR_QUEUE_MAX) {
                r->queue_handle = zlistx_add_start (r->service->queue, r);
                continue;
            }
        }
        self->stats.worker_lost++;
        s_send_error (self, r->client, r->id, AR_REASON_WORKER_LOST);
        s_request_finish (self, r);
    }
    zlistx_destroy (&lost);
    zhashx_delete (self->workers, worker->key);
}

static void s_dispatch_queue (ar_broker_t *self, s_service_t *service)
{
    s_request_t *request;
    while ((request = zlistx_first (service->queue))) {
        zlistx_delete (service->queue, request->queue_handle);
        request->queue_handle = NULL;
        int rc = s_dispatch (self, request);
        if (rc == 0)
            continue;
        if (rc == 1) {
            request->queue_handle = zlistx_add_start (service->queue, request);
            return;
        }
        self->stats.no_worker++;
        s_send_error (self, request->client, request->id, AR_REASON_NO_WORKER);
        s_request_finish (self, request);
    }
}

//  --------------------------------------------------------------------------
//  Management (MMI): answered by the broker, live workers only.

static void s_mmi (ar_broker_t *self, ar_msg_t *msg)
{
    ar_envelope_t env;
    ar_envelope_init (&env);
    memcpy (env.id, msg->env.id, AR_ID_LEN);
    char body[8192];
    size_t used = 0;
    if (strcmp (msg->env.service, "mmi.service") == 0) {
        char name[AR_SERVICE_MAX + 1] = "";
        if (msg->body && zframe_size (msg->body) <= AR_SERVICE_MAX) {
            memcpy (name, zframe_data (msg->body), zframe_size (msg->body));
            name[zframe_size (msg->body)] = 0;
        }
        s_service_t *service = zhashx_lookup (self->services, name);
        bool live = service && zlistx_size (service->workers) > 0;
        ar_envelope_set_status (&env, live ? 200 : 404, live ? "OK" : "NOT_FOUND");
    } else if (strcmp (msg->env.service, "mmi.workers") == 0) {
        used += (size_t)snprintf (body, sizeof body, "{");
        bool first = true;
        for (s_service_t *s = zhashx_first (self->services); s; s = zhashx_next (self->services)) {
            uint32_t credit = 0, inflight = 0;
            for (s_worker_t *w = zlistx_first (s->workers); w; w = zlistx_next (s->workers))
                credit += w->credit, inflight += w->inflight;
            if (used < sizeof body - 200)
                used += (size_t)snprintf (
                    body + used, sizeof body - used,
                    "%s\"%s\":{\"workers\":%zu,\"credit\":%u,\"inflight\":%u,\"queued\":%zu}",
                    first ? "" : ",", s->name, zlistx_size (s->workers), credit, inflight,
                    zlistx_size (s->queue));
            first = false;
        }
        used += (size_t)snprintf (body + used, sizeof body - used, "}");
        ar_envelope_set_status (&env, 200, "OK");
    } else if (strcmp (msg->env.service, "mmi.stats") == 0) {
        const ar_broker_stats_t *st = &self->stats;
        used = (size_t)snprintf (
            body, sizeof body,
            "{\"requests\":%lu,\"replies\":%lu,\"expired\":%lu,\"no_worker\":%lu,"
            "\"overloaded\":%lu,\"worker_lost\":%lu,\"requeued\":%lu,\"late_replies\":%lu,"
            "\"malformed\":%lu,\"not_ours\":%lu,\"cancelled\":%lu,\"slow_consumer\":%lu,"
            "\"workers_expired\":%lu,\"inflight\":%zu}",
            st->requests, st->replies, st->expired, st->no_worker, st->overloaded, st->worker_lost,
            st->requeued, st->late_replies, st->malformed, st->not_ours, st->cancelled,
            st->slow_consumer, st->workers_expired, zhashx_size (self->requests));
        ar_envelope_set_status (&env, 200, "OK");
    } else
        ar_envelope_set_status (&env, 501, "UNKNOWN_MMI");
    ar_msg_send_bytes (self->router, msg->routing_id, AR_CMD_END, &env, used ? body : NULL, used,
                       ZMQ_DONTWAIT);
}

//  --------------------------------------------------------------------------
//  Commands.

static void s_on_request (ar_broker_t *self, ar_msg_t *msg)
{
    self->stats.requests++;
    if (msg->env.deadline_ms == 0) {
        self->stats.malformed++;
        s_send_error (self, msg->routing_id, msg->env.id, AR_REASON_MALFORMED);
        return;
    }
    ar_mono_ms deadline = ar_deadline_to_mono (msg->env.deadline_ms, msg->env.budget_ms);
    if (deadline <= ar_mono_now ()) {
        self->stats.expired++;
        s_send_error (self, msg->routing_id, msg->env.id, AR_REASON_EXPIRED);
        return;
    }
    //  A real prefix compare: "xmmi.foo" is an ordinary service.
    if (strncmp (msg->env.service, "mmi.", 4) == 0) {
        s_mmi (self, msg);
        return;
    }
    s_service_t *service = zhashx_lookup (self->services, msg->env.service);
    if (!service || zlistx_size (service->workers) == 0) {
        self->stats.no_worker++;
        s_send_error (self, msg->routing_id, msg->env.id, AR_REASON_NO_WORKER);
        return;
    }
    char key[2 * AR_ID_LEN + 1];
    ar_hex_encode (msg->env.id, AR_ID_LEN, key);
    if (zhashx_lookup (self->requests, key)) {
        self->stats.malformed++;
        s_send_error (self, msg->routing_id, msg->env.id, AR_REASON_MALFORMED);
        return;
    }
    s_request_t *request = calloc (1, sizeof *request);
    memcpy (request->key, key, sizeof key);
    memcpy (request->id, msg->env.id, AR_ID_LEN);
    request->client = msg->routing_id;
    msg->routing_id = NULL;
    request->service = service;
    request->deadline = deadline;
    request->env_frame = msg->env_frame;
    msg->env_frame = NULL;
    request->body = msg->body;
    msg->body = NULL;
    request->attempt = msg->env.attempt;
    zhashx_insert (self->requests, key, request);
    int rc = s_dispatch (self, request);
    if (rc == 0)
        return;
    if (rc == 1 && zlistx_size (service->queue) < AR_QUEUE_MAX) {
        request->queue_handle = zlistx_add_end (service->queue, request);
        return;
    }
    const char *reason = rc == 1 ? AR_REASON_OVERLOADED : AR_REASON_NO_WORKER;
    if (rc == 1)
        self->stats.overloaded++;
    else
        self->stats.no_worker++;
    s_send_error (self, request->client, msg->env.id, reason);
    s_request_finish (self, request);
}

static void s_on_worker_reply (ar_broker_t *self, s_worker_t *worker, ar_msg_t *msg)
{
    char key[2 * AR_ID_LEN + 1];
    ar_hex_encode (msg->env.id, AR_ID_LEN, key);
    s_request_t *request = zhashx_lookup (self->requests, key);
    if (!request || request->worker != worker) {
        //  Late (expired, cancelled) or not this worker's: drop and count.
        self->stats.late_replies++;
        return;
    }
    bool final = msg->cmd != AR_CMD_CHUNK;
    if (ar_msg_send (self->router, request->client, msg->cmd, NULL, &msg->env_frame, &msg->body,
                     ZMQ_DONTWAIT) != 0) {
        //  The requester is gone or cannot keep up: stop the work rather than queue unbounded.
        self->stats.slow_consumer++;
        if (!final)
            s_send_control (self, worker->routing_id, AR_CMD_CANCEL, msg->env.id, NULL);
        s_service_t *service = request->service;
        s_request_finish (self, request);
        s_dispatch_queue (self, service);
        return;
    }
    if (!request->replied) {
        request->replied = true;
        zframe_destroy (&request->env_frame);
        zframe_destroy (&request->body);
    }
    if (final) {
        self->stats.replies++;
        s_service_t *service = request->service;
        s_request_finish (self, request);
        s_dispatch_queue (self, service);
    }
}

static void s_on_ready (ar_broker_t *self, ar_msg_t *msg, const char *peer_key)
{
    if (zhashx_lookup (self->workers, peer_key)) {
        //  A second READY on the same routing id is a protocol error (MDP).
        s_worker_remove (self, zhashx_lookup (self->workers, peer_key));
        s_send_control (self, msg->routing_id, AR_CMD_DISCONNECT, NULL, "duplicate READY");
        return;
    }
    if (msg->env.heartbeat_ms && msg->env.heartbeat_ms != self->heartbeat_ms) {
        //  Mismatched intervals cause false expiries; fail loudly instead.
        fprintf (stderr, "anyray-broker: worker for %s beats every %u ms, broker every %u ms\n",
                 msg->env.service, msg->env.heartbeat_ms, self->heartbeat_ms);
        s_send_control (self, msg->routing_id, AR_CMD_DISCONNECT, NULL, "heartbeat mismatch");
        return;
    }
    s_service_t *service = *msg->env.service && strncmp (msg->env.service, "mmi.", 4) != 0
                               ? s_service_require (self, msg->env.service)
                               : NULL;
    if (!service || zhashx_size (self->workers) >= AR_WORKERS_MAX) {
        s_send_control (self, msg->routing_id, AR_CMD_DISCONNECT, NULL, "bad service");
        return;
    }
    s_worker_t *worker = calloc (1, sizeof *worker);
    snprintf (worker->key, sizeof worker->key, "%s", peer_key);
    worker->routing_id = msg->routing_id;
    msg->routing_id = NULL;
    worker->service = service;
    worker->credit = msg->env.credit ? msg->env.credit : 1;
    worker->expiry = ar_mono_now () + (ar_mono_ms)AR_LIVENESS * self->heartbeat_ms;
    zhashx_insert (self->workers, worker->key, worker);
    zlistx_add_end (service->workers, worker);
    s_dispatch_queue (self, service);
}

static void s_on_cancel (ar_broker_t *self, ar_msg_t *msg)
{
    char key[2 * AR_ID_LEN + 1];
    ar_hex_encode (msg->env.id, AR_ID_LEN, key);
    s_request_t *request = zhashx_lookup (self->requests, key);
    if (!request || !zframe_eq (request->client, msg->routing_id))
        return;
    self->stats.cancelled++;
    if (request->worker)
        s_send_control (self, request->worker->routing_id, AR_CMD_CANCEL, msg->env.id, NULL);
    s_service_t *service = request->service;
    s_request_finish (self, request);
    s_dispatch_queue (self, service);
}

static void s_handle (ar_broker_t *self, ar_msg_t *msg)
{
    char peer_key[2 * 256 + 1];
    size_t peer_len = zframe_size (msg->routing_id);
    ar_hex_encode (zframe_data (msg->routing_id), peer_len < 256 ? peer_len : 256, peer_key);
    s_worker_t *worker = zhashx_lookup (self->workers, peer_key);
    if (worker)
        worker->expiry = ar_mono_now () + (ar_mono_ms)AR_LIVENESS * self->heartbeat_ms;

    switch (msg->cmd) {
    case AR_CMD_READY:
        s_on_ready (self, msg, peer_key);
        break;
    case AR_CMD_REQUEST:
        s_on_request (self, msg);
        break;
    case AR_CMD_CHUNK:
    case AR_CMD_END:
    case AR_CMD_ERROR:
        if (worker && worker->service)
            s_on_worker_reply (self, worker, msg);
        else
            //  A worker we do not know (we restarted, or dropped it): make it re-READY.
            s_send_control (self, msg->routing_id, AR_CMD_DISCONNECT, NULL, "unknown worker");
        break;
    case AR_CMD_CANCEL:
        s_on_cancel (self, msg);
        break;
    case AR_CMD_HEARTBEAT:
        if (!worker) {
            //  A client checking we are alive; a worker we do not know must re-READY.
            bool from_worker = *msg->env.service != 0;
            s_send_control (self, msg->routing_id,
                            from_worker ? AR_CMD_DISCONNECT : AR_CMD_HEARTBEAT, NULL,
                            from_worker ? "unknown worker" : NULL);
        }
        break;
    case AR_CMD_DISCONNECT:
        if (worker)
            s_worker_remove (self, worker);
        break;
    case AR_CMD_CREDIT:
        if (worker && msg->env.credit) {
            worker->credit = msg->env.credit;
            s_dispatch_queue (self, worker->service);
        }
        break;
    }
}

//  --------------------------------------------------------------------------
//  Timers: heartbeats out, liveness in, deadlines in queue and in flight.

static void s_heartbeat (ar_broker_t *self, ar_mono_ms now)
{
    zlistx_t *dead = zlistx_new ();
    for (s_worker_t *w = zhashx_first (self->workers); w; w = zhashx_next (self->workers)) {
        if (w->expiry <= now) {
            self->stats.workers_expired++;
            zlistx_add_end (dead, w);
            continue;
        }
        ar_envelope_t env;
        ar_envelope_init (&env);
        if (ar_msg_send (self->router, w->routing_id, AR_CMD_HEARTBEAT, &env, NULL, NULL,
                         ZMQ_DONTWAIT) != 0 &&
            errno == EHOSTUNREACH)
            zlistx_add_end (dead, w); // its connection is gone: no need to wait three beats
        else if (w->service && w->inflight >= w->credit) {
            //  A worker taken out of rotation for EAGAIN gets its real load back on each beat.
            uint32_t real = 0;
            for (s_request_t *r = zhashx_first (self->requests); r;
                 r = zhashx_next (self->requests))
                if (r->worker == w)
                    real++;
            w->inflight = real;
        }
    }
    for (s_worker_t *w = zlistx_first (dead); w; w = zlistx_next (dead)) {
        s_service_t *service = w->service;
        s_worker_remove (self, w);
        if (service)
            s_dispatch_queue (self, service);
    }
    zlistx_destroy (&dead);
}

static void s_sweep (ar_broker_t *self, ar_mono_ms now)
{
    zlistx_t *expired = NULL;
    for (s_request_t *r = zhashx_first (self->requests); r; r = zhashx_next (self->requests))
        if (r->deadline <= now) {
            if (!expired)
                expired = zlistx_new ();
            zlistx_add_end (expired, r);
        }
    if (!expired)
        return;
    for (s_request_t *r = zlistx_first (expired); r; r = zlistx_next (expired)) {
        self->stats.expired++;
        if (r->worker)
            s_send_control (self, r->worker->routing_id, AR_CMD_CANCEL, r->id, NULL);
        s_send_error (self, r->client, r->id, AR_REASON_EXPIRED);
        s_service_t *service = r->service;
        s_request_finish (self, r);
        s_dispatch_queue (self, service);
    }
    zlistx_destroy (&expired);
}

int ar_broker_run (ar_broker_t *self, zsock_t *pipe)
{
    zmq_pollitem_t items[2] = {{zsock_resolve (self->router), 0, ZMQ_POLLIN, 0},
                               {pipe ? zsock_resolve (pipe) : NULL, 0, ZMQ_POLLIN, 0}};
    int count = pipe ? 2 : 1;
    while (!zsys_interrupted) {
        ar_mono_ms now = ar_mono_now ();
        ar_mono_ms wake = self->next_heartbeat;
        if (zhashx_size (self->requests) && self->next_sweep < wake)
            wake = self->next_sweep;
        long timeout = wake > now ? (long)(wake - now) : 0;
        int rc = zmq_poll (items, count, timeout);
        if (rc == -1 && errno != EINTR)
            break;
        if (count == 2 && (items[1].revents & ZMQ_POLLIN)) {
            char *command = zstr_recv (pipe);
            bool term = command && strcmp (command, "$TERM") == 0;
            zstr_free (&command);
            if (term)
                break;
        }
        //  Drain in batches so timers still run under a flood.
        for (int i = 0; i < 4096; i++) {
            ar_msg_t msg;
            const char *error = NULL;
            ar_recv_result_t result = ar_msg_recv (self->router, true, &msg, &error, ZMQ_DONTWAIT);
            if (result == AR_RECV_INTERRUPTED)
                break;
            if (result == AR_RECV_OK)
                s_handle (self, &msg);
            else if (result == AR_RECV_NOT_OURS)
                self->stats.not_ours++;
            else {
                self->stats.malformed++;
                if (msg.routing_id)
                    s_send_error (self, msg.routing_id, NULL,
                                  result == AR_RECV_VERSION ? AR_REASON_VERSION
                                                            : AR_REASON_MALFORMED);
            }
            ar_msg_reset (&msg);
        }
        now = ar_mono_now ();
        if (now >= self->next_heartbeat) {
            s_heartbeat (self, now);
            self->next_heartbeat = now + self->heartbeat_ms;
        }
        if (now >= self->next_sweep) {
            s_sweep (self, now);
            self->next_sweep = now + AR_SWEEP_MS;
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Self-test: a real broker in a thread, a fake worker and client on real sockets.

static void s_broker_actor (zsock_t *pipe, void *endpoint)
{
    ar_broker_t *broker = ar_broker_new (endpoint, 100);
    assert (broker);
    zsock_signal (pipe, 0);
    ar_broker_run (broker, pipe);
    ar_broker_destroy (&broker);
}

static void s_send (zsock_t *sock, ar_cmd_t cmd, ar_envelope_t *env, const char *body)
{
    int rc = ar_msg_send_bytes (sock, NULL, cmd, env, body, body ? strlen (body) : 0, 0);
    assert (rc == 0);
}

static ar_cmd_t s_expect (zsock_t *sock, ar_msg_t *msg, int timeout_ms)
{
    zsock_set_rcvtimeo (sock, timeout_ms);
    for (;;) {
        const char *error;
        ar_recv_result_t rc = ar_msg_recv (sock, false, msg, &error, 0);
        if (rc == AR_RECV_INTERRUPTED)
            return 0; // timed out
        assert (rc == AR_RECV_OK);
        if (msg->cmd != AR_CMD_HEARTBEAT)
            return msg->cmd;
        //  Beat back, as a real worker's loop does (clients never get beats unasked).
        ar_envelope_t beat;
        ar_envelope_init (&beat);
        ar_msg_send (sock, NULL, AR_CMD_HEARTBEAT, &beat, NULL, NULL, 0);
        ar_msg_reset (msg);
    }
}

static void s_request_env (ar_envelope_t *env, const char *service, int64_t deadline_in_ms)
{
    ar_envelope_init (env);
    ar_envelope_new_id (env);
    snprintf (env->service, sizeof env->service, "%s", service);
    env->deadline_ms = (ar_wall_ms)((int64_t)ar_wall_now () + deadline_in_ms);
}

static zsock_t *s_worker (const char *endpoint, const char *service, uint16_t credit)
{
    zsock_t *worker = zsock_new (ZMQ_DEALER);
    assert (zsock_connect (worker, "%s", endpoint) == 0);
    ar_envelope_t env;
    ar_envelope_init (&env);
    strcpy (env.service, service);
    env.credit = credit;
    env.heartbeat_ms = 100;
    s_send (worker, AR_CMD_READY, &env, NULL);
    zclock_sleep (50); // READY is processed before the test's next request
    return worker;
}

void ar_broker_test (bool verbose)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "inproc://ar_broker_test");
    zactor_t *broker = zactor_new (s_broker_actor, endpoint);
    zsock_t *client = zsock_new (ZMQ_DEALER);
    assert (zsock_connect (client, "%s", endpoint) == 0);
    ar_envelope_t env;
    ar_msg_t msg;

    //  Rule: no worker for a service → NO_WORKER at once.
    s_request_env (&env, "nobody", 5000);
    s_send (client, AR_CMD_REQUEST, &env, "x");
    int64_t start = ar_mono_now ();
    assert (s_expect (client, &msg, 1000) == AR_CMD_ERROR);
    assert (strcmp (msg.env.status_reason, AR_REASON_NO_WORKER) == 0 && msg.env.status_code == 503);
    assert (memcmp (msg.env.id, env.id, AR_ID_LEN) == 0);
    assert (ar_mono_now () - start < 100);
    ar_msg_reset (&msg);

    //  Rule: expired on arrival → EXPIRED at once, never dispatched.
    zsock_t *worker = s_worker (endpoint, "echo", 2);
    s_request_env (&env, "echo", -10);
    s_send (client, AR_CMD_REQUEST, &env, "x");
    assert (s_expect (client, &msg, 1000) == AR_CMD_ERROR);
    assert (strcmp (msg.env.status_reason, AR_REASON_EXPIRED) == 0);
    ar_msg_reset (&msg);
    assert (s_expect (worker, &msg, 50) == 0); // the worker saw nothing

    //  Dispatch, then a streamed reply reaches the client in order.
    s_request_env (&env, "echo", 5000);
    strcpy (env.kind, "test");
    s_send (client, AR_CMD_REQUEST, &env, "ping");
    assert (s_expect (worker, &msg, 1000) == AR_CMD_REQUEST);
    assert (msg.body && zframe_streq (msg.body, "ping"));
    ar_envelope_t reply = msg.env;
    ar_msg_reset (&msg);
    for (uint32_t seq = 0; seq < 3; seq++) {
        reply.seq = seq;
        char part[16];
        snprintf (part, sizeof part, "part%u", seq);
        s_send (worker, AR_CMD_CHUNK, &reply, part);
    }
    reply.seq = 3;
    s_send (worker, AR_CMD_END, &reply, "end");
    for (uint32_t seq = 0; seq < 3; seq++) {
        assert (s_expect (client, &msg, 1000) == AR_CMD_CHUNK);
        assert (msg.env.seq == seq);
        ar_msg_reset (&msg);
    }
    assert (s_expect (client, &msg, 1000) == AR_CMD_END);
    assert (zframe_streq (msg.body, "end"));
    ar_msg_reset (&msg);

    //  Credit: two requests go out at once, the third waits until one ends.
    ar_envelope_t first, second, third;
    s_request_env (&first, "echo", 5000);
    s_request_env (&second, "echo", 5000);
    s_request_env (&third, "echo", 5000);
    s_send (client, AR_CMD_REQUEST, &first, "1");
    s_send (client, AR_CMD_REQUEST, &second, "2");
    s_send (client, AR_CMD_REQUEST, &third, "3");
    assert (s_expect (worker, &msg, 1000) == AR_CMD_REQUEST);
    ar_msg_reset (&msg);
    assert (s_expect (worker, &msg, 1000) == AR_CMD_REQUEST);
    ar_msg_reset (&msg);
    assert (s_expect (worker, &msg, 100) == 0); // over credit: queued
    s_send (worker, AR_CMD_END, &first, NULL);
    assert (s_expect (worker, &msg, 1000) == AR_CMD_REQUEST);
    assert (memcmp (msg.env.id, third.id, AR_ID_LEN) == 0);
    ar_msg_reset (&msg);
    s_send (worker, AR_CMD_END, &second, NULL);
    s_send (worker, AR_CMD_END, &third, NULL);
    for (int i = 0; i < 3; i++) {
        assert (s_expect (client, &msg, 1000) == AR_CMD_END);
        ar_msg_reset (&msg);
    }

    //  Rule: expiry in flight → CANCEL to the worker, EXPIRED to the client; a late END is
    //  dropped.
    s_request_env (&env, "echo", 150);
    s_send (client, AR_CMD_REQUEST, &env, "slow");
    assert (s_expect (worker, &msg, 1000) == AR_CMD_REQUEST);
    ar_msg_reset (&msg);
    assert (s_expect (client, &msg, 1000) == AR_CMD_ERROR);
    assert (strcmp (msg.env.status_reason, AR_REASON_EXPIRED) == 0);
    ar_msg_reset (&msg);
    assert (s_expect (worker, &msg, 1000) == AR_CMD_CANCEL);
    ar_msg_reset (&msg);
    s_send (worker, AR_CMD_END, &env, "late");
    assert (s_expect (client, &msg, 100) == 0);

    //  Rule: client CANCEL reaches the worker.
    s_request_env (&env, "echo", 5000);
    s_send (client, AR_CMD_REQUEST, &env, "x");
    assert (s_expect (worker, &msg, 1000) == AR_CMD_REQUEST);
    ar_msg_reset (&msg);
    s_send (client, AR_CMD_CANCEL, &env, NULL);
    assert (s_expect (worker, &msg, 1000) == AR_CMD_CANCEL);
    assert (memcmp (msg.env.id, env.id, AR_ID_LEN) == 0);
    ar_msg_reset (&msg);

    //  Rule: a worker that dies before its first byte: the request moves to another worker.
    zsock_t *spare = s_worker (endpoint, "echo", 2);
    s_request_env (&env, "echo", 5000);
    s_send (client, AR_CMD_REQUEST, &env, "again");
    zsock_t *got = NULL;
    zmq_pollitem_t items[] = {{zsock_resolve (worker), 0, ZMQ_POLLIN, 0},
                              {zsock_resolve (spare), 0, ZMQ_POLLIN, 0}};
    while (!got) {
        assert (zmq_poll (items, 2, 1000) > 0);
        zsock_t *which = (items[0].revents & ZMQ_POLLIN) ? worker : spare;
        if (s_expect (which, &msg, 10) == AR_CMD_REQUEST)
            got = which;
        ar_msg_reset (&msg);
    }
    zsock_t *survivor = got == worker ? spare : worker;
    zsock_destroy (got == worker ? &worker : &spare); // silent death: no DISCONNECT
    //  Liveness: 3 × 100 ms without a beat from the dead one → requeued on the survivor.
    ar_cmd_t cmd = s_expect (survivor, &msg, 2000);
    assert (cmd == AR_CMD_REQUEST);
    assert (memcmp (msg.env.id, env.id, AR_ID_LEN) == 0 && zframe_streq (msg.body, "again"));
    ar_msg_reset (&msg);

    //  A worker that dies after the client saw bytes: WORKER_LOST, never replayed.
    s_send (survivor, AR_CMD_CHUNK, &env, "first");
    assert (s_expect (client, &msg, 1000) == AR_CMD_CHUNK);
    ar_msg_reset (&msg);
    ar_envelope_t bye;
    ar_envelope_init (&bye);
    s_send (survivor, AR_CMD_DISCONNECT, &bye, NULL);
    assert (s_expect (client, &msg, 1000) == AR_CMD_ERROR);
    assert (strcmp (msg.env.status_reason, AR_REASON_WORKER_LOST) == 0 &&
            msg.env.status_code == 502);
    ar_msg_reset (&msg);
    zsock_destroy (&survivor);

    //  MMI, a real prefix compare, live workers only.
    zclock_sleep (50);
    s_request_env (&env, "mmi.service", 5000);
    s_send (client, AR_CMD_REQUEST, &env, "echo");
    assert (s_expect (client, &msg, 1000) == AR_CMD_END);
    assert (msg.env.status_code == 404);
    ar_msg_reset (&msg);

    //  Bad traffic is answered and counted, and the broker keeps serving.
    zsock_send (client, "sbb", "ARB1", "\x02", (size_t)1, "\xdd\xff\xff\xff\xff", (size_t)5);
    assert (s_expect (client, &msg, 1000) == AR_CMD_ERROR);
    assert (strcmp (msg.env.status_reason, AR_REASON_MALFORMED) == 0);
    ar_msg_reset (&msg);
    zsock_send (client, "ss", "ARB9", "x");
    assert (s_expect (client, &msg, 1000) == AR_CMD_ERROR);
    assert (strcmp (msg.env.status_reason, AR_REASON_VERSION) == 0);
    ar_msg_reset (&msg);
    s_request_env (&env, "mmi.stats", 5000);
    s_send (client, AR_CMD_REQUEST, &env, NULL);
    assert (s_expect (client, &msg, 1000) == AR_CMD_END);
    char *stats = msg.body ? zframe_strdup (msg.body) : NULL;
    assert (stats && strstr (stats, "\"malformed\":") != NULL);
    zstr_free (&stats);
    ar_msg_reset (&msg);

    //  A request without a deadline is refused.
    s_request_env (&env, "echo", 0);
    env.deadline_ms = 0;
    s_send (client, AR_CMD_REQUEST, &env, NULL);
    assert (s_expect (client, &msg, 1000) == AR_CMD_ERROR);
    assert (strcmp (msg.env.status_reason, AR_REASON_MALFORMED) == 0);
    ar_msg_reset (&msg);

    zsock_destroy (&client);
    zactor_destroy (&broker);
    (void)verbose;
}
