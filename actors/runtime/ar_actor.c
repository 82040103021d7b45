/*  ar_actor: the worker loop (see ar_actor.h).

    Liveness follows Paranoid Pirate: the broker is alive while anything arrives from it; after
    three silent heartbeat intervals the actor drops its socket, opens a fresh one (a new
    routing id) and READYs again, backing off 100 ms doubling to 5 s. A DISCONNECT from the
    broker (it restarted, or did not know us) does the same at once. Jobs in flight when the
    broker goes are cancelled locally: the broker that knew them is gone.
*/
#include "ar_actor.h"
#include "ar_buf.h"
#include "ar_env.h"
#include "ar_msg.h"
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define AR_ACTOR_FDS   8
#define AR_LIVENESS    3
#define AR_SWEEP_MS    10
#define AR_BACKOFF_MIN 100
#define AR_BACKOFF_MAX 5000

typedef struct {
    int fd;
    short events;
    void (*on_ready) (ar_actor_t *actor, int fd, short revents, void *arg);
} s_watch_t;

struct ar_actor_t {
    ar_actor_ops_t ops;
    char endpoint[512];
    zsock_t *dealer;
    uint32_t heartbeat_ms;
    ar_mono_ms broker_expiry, next_heartbeat, next_sweep, reconnect_at;
    uint32_t backoff_ms;
    zhashx_t *jobs; // id hex -> ar_job_t, owned
    size_t watch_count;
    s_watch_t watches[AR_ACTOR_FDS];
    ar_mono_ms timer_due;
    void (*on_timer) (ar_actor_t *actor, void *arg);
    bool stopping;
};

static void s_job_key (const uint8_t *id, char *key)
{
    ar_hex_encode (id, AR_ID_LEN, key);
}

static void s_job_free (void **item)
{
    ar_job_t *job = *item;
    zframe_destroy (&job->body);
    free (job);
    *item = NULL;
}

static void s_send_ready (ar_actor_t *self)
{
    ar_envelope_t env;
    ar_envelope_init (&env);
    snprintf (env.service, sizeof env.service, "%s", self->ops.service);
    env.credit = self->ops.credit ? self->ops.credit : 1;
    env.heartbeat_ms = self->heartbeat_ms;
    snprintf (env.instance, sizeof env.instance, "%s-%d", self->ops.service, (int)getpid ());
    ar_msg_send (self->dealer, NULL, AR_CMD_READY, &env, NULL, NULL, ZMQ_DONTWAIT);
}

static int s_connect (ar_actor_t *self)
{
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer)
        return -1;
    //  Linger so a final END or DISCONNECT still leaves at shutdown; a high HWM because a
    //  provider may stream thousands of chunks a second through this one socket.
    zsock_set_linger (self->dealer, 500);
    zsock_set_sndhwm (self->dealer, 100000);
    zsock_set_rcvhwm (self->dealer, 100000);
    //  No ZMQ_IMMEDIATE: READY must queue while the connection completes, or a fast start
    //  loses it and the broker first hears an unknown worker's heartbeat.
    if (zsock_connect (self->dealer, "%s", self->endpoint) != 0) {
        zsock_destroy (&self->dealer);
        return -1;
    }
    ar_mono_ms now = ar_mono_now ();
    self->broker_expiry = now + (ar_mono_ms)AR_LIVENESS * self->heartbeat_ms;
    self->next_heartbeat = now + self->heartbeat_ms;
    s_send_ready (self);
    return 0;
}

//  Forget every job: the broker that handed them out is gone or has forgotten us.
static void s_cancel_all (ar_actor_t *self)
{
    zlistx_t *all = zhashx_values (self->jobs);
    //  zhashx_values hands the list the hash's destructor: the hash alone frees the jobs.
    zlistx_set_destructor (all, NULL);
    for (ar_job_t *job = zlistx_first (all); job; job = zlistx_next (all)) {
        if (self->ops.on_cancel)
            self->ops.on_cancel (self, job, self->ops.arg);
        char key[2 * AR_ID_LEN + 1];
        s_job_key (job->env.id, key);
        zhashx_delete (self->jobs, key);
    }
    zlistx_destroy (&all);
}

static void s_reconnect_later (ar_actor_t *self, const char *why)
{
    fprintf (stderr, "anyray-%s: %s; reconnecting in %u ms\n", self->ops.service, why,
             self->backoff_ms);
    s_cancel_all (self);
    zsock_destroy (&self->dealer);
    self->reconnect_at = ar_mono_now () + self->backoff_ms;
    self->backoff_ms =
        self->backoff_ms * 2 > AR_BACKOFF_MAX ? AR_BACKOFF_MAX : self->backoff_ms * 2;
}

ar_actor_t *ar_actor_new (const ar_actor_ops_t *ops)
{
    ar_actor_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ops = *ops;
    ar_env_broker_endpoint (self->endpoint, sizeof self->endpoint);
    self->heartbeat_ms = (uint32_t)ar_env_int ("ANYRAY_HEARTBEAT_MS", 500, 50, 60000);
    self->backoff_ms = AR_BACKOFF_MIN;
    self->timer_due = -1;
    self->jobs = zhashx_new ();
    zhashx_set_destructor (self->jobs, s_job_free);
    if (s_connect (self) != 0) {
        fprintf (stderr, "anyray-%s: cannot connect to %s\n", ops->service, self->endpoint);
        zhashx_destroy (&self->jobs);
        free (self);
        return NULL;
    }
    return self;
}

void ar_actor_destroy (ar_actor_t **self_p)
{
    ar_actor_t *self = *self_p;
    if (!self)
        return;
    if (self->dealer) {
        //  Tell the broker now rather than let it wait three beats.
        ar_envelope_t env;
        ar_envelope_init (&env);
        ar_msg_send (self->dealer, NULL, AR_CMD_DISCONNECT, &env, NULL, NULL, ZMQ_DONTWAIT);
    }
    s_cancel_all (self);
    zhashx_destroy (&self->jobs);
    zsock_destroy (&self->dealer);
    free (self);
    *self_p = NULL;
}

void ar_actor_stop (ar_actor_t *self)
{
    self->stopping = true;
}

size_t ar_actor_inflight (ar_actor_t *self)
{
    return zhashx_size (self->jobs);
}

int ar_actor_watch_fd (ar_actor_t *self, int fd, short events,
                       void (*on_ready) (ar_actor_t *actor, int fd, short revents, void *arg))
{
    if (self->watch_count == AR_ACTOR_FDS)
        return -1;
    self->watches[self->watch_count++] = (s_watch_t){fd, events, on_ready};
    return 0;
}

void ar_actor_set_timer (ar_actor_t *self, ar_mono_ms due,
                         void (*on_timer) (ar_actor_t *actor, void *arg))
{
    self->timer_due = due;
    self->on_timer = on_timer;
}

//  --------------------------------------------------------------------------
//  Replies.

static int s_reply (ar_actor_t *self, ar_job_t *job, ar_cmd_t cmd, const void *data, size_t len)
{
    if (!self->dealer)
        return -1;
    memcpy (job->reply.id, job->env.id, AR_ID_LEN);
    int rc = ar_msg_send_bytes (self->dealer, NULL, cmd, &job->reply, data,
                                data || cmd == AR_CMD_CHUNK ? len : 0, ZMQ_DONTWAIT);
    if (rc == 0) {
        job->reply.seq++;
        //  Meta and status describe one message; later chunks stay small.
        job->reply.meta_count = 0;
        job->reply.meta_used = 0;
        job->reply.has_status = false;
    }
    return rc;
}

int ar_actor_chunk (ar_actor_t *self, ar_job_t *job, const void *data, size_t len)
{
    return s_reply (self, job, AR_CMD_CHUNK, data ? data : "", len);
}

static void s_job_finish (ar_actor_t *self, ar_job_t **job_p)
{
    char key[2 * AR_ID_LEN + 1];
    s_job_key ((*job_p)->env.id, key);
    zhashx_delete (self->jobs, key);
    *job_p = NULL;
}

//  A final message the broker socket refused keeps its job, so the caller can offer it again;
//  if it never does, the deadline sweep cancels the job like any other.
int ar_actor_end (ar_actor_t *self, ar_job_t **job_p, const void *data, size_t len)
{
    int rc = s_reply (self, *job_p, AR_CMD_END, data, len);
    if (rc == 0)
        s_job_finish (self, job_p);
    return rc;
}

int ar_actor_error (ar_actor_t *self, ar_job_t **job_p, uint16_t code, const char *reason)
{
    ar_envelope_set_status (&(*job_p)->reply, code, reason);
    int rc = s_reply (self, *job_p, AR_CMD_ERROR, NULL, 0);
    if (rc == 0)
        s_job_finish (self, job_p);
    return rc;
}

//  --------------------------------------------------------------------------
//  Incoming.

static void s_on_request (ar_actor_t *self, ar_msg_t *msg)
{
    char key[2 * AR_ID_LEN + 1];
    s_job_key (msg->env.id, key);
    if (zhashx_lookup (self->jobs, key))
        return; // a duplicate delivery; the first one answers
    ar_mono_ms deadline = ar_deadline_to_mono (msg->env.deadline_ms, msg->env.budget_ms);
    if (deadline <= ar_mono_now ())
        return; // expired on the way: the broker has answered EXPIRED already
    ar_job_t *job = calloc (1, sizeof *job);
    if (!job)
        return;
    job->env = msg->env;
    job->body = msg->body;
    msg->body = NULL;
    job->deadline = deadline;
    ar_envelope_init (&job->reply);
    memcpy (job->reply.id, job->env.id, AR_ID_LEN);
    zhashx_insert (self->jobs, key, job);
    self->ops.on_request (self, job, self->ops.arg);
}

static void s_on_cancel (ar_actor_t *self, const uint8_t *id)
{
    char key[2 * AR_ID_LEN + 1];
    s_job_key (id, key);
    ar_job_t *job = zhashx_lookup (self->jobs, key);
    if (!job)
        return;
    if (self->ops.on_cancel)
        self->ops.on_cancel (self, job, self->ops.arg);
    zhashx_delete (self->jobs, key);
}

static void s_read_broker (ar_actor_t *self)
{
    for (int i = 0; i < 1024 && self->dealer; i++) {
        ar_msg_t msg;
        const char *error = NULL;
        ar_recv_result_t rc = ar_msg_recv (self->dealer, false, &msg, &error, ZMQ_DONTWAIT);
        if (rc == AR_RECV_INTERRUPTED)
            break;
        if (rc != AR_RECV_OK) {
            fprintf (stderr, "anyray-%s: dropped a bad message from the broker: %s\n",
                     self->ops.service, error ? error : "?");
            ar_msg_reset (&msg);
            continue;
        }
        self->broker_expiry = ar_mono_now () + (ar_mono_ms)AR_LIVENESS * self->heartbeat_ms;
        self->backoff_ms = AR_BACKOFF_MIN;
        switch (msg.cmd) {
        case AR_CMD_REQUEST:
            s_on_request (self, &msg);
            break;
        case AR_CMD_CANCEL:
            s_on_cancel (self, msg.env.id);
            break;
        case AR_CMD_DISCONNECT:
            s_reconnect_later (self, msg.env.has_status ? msg.env.status_reason
                                                        : "broker said DISCONNECT");
            //  The broker is up and asked us to come back: no need to wait long.
            self->reconnect_at = ar_mono_now () + 10;
            break;
        default:
            break; // HEARTBEAT: arrival alone counts
        }
        ar_msg_reset (&msg);
    }
}

//  Jobs past their deadline end here: the broker has told the client EXPIRED already.
static void s_sweep (ar_actor_t *self, ar_mono_ms now)
{
    zlistx_t *expired = NULL;
    for (ar_job_t *job = zhashx_first (self->jobs); job; job = zhashx_next (self->jobs))
        if (job->deadline <= now) {
            if (!expired)
                expired = zlistx_new ();
            zlistx_add_end (expired, job);
        }
    if (!expired)
        return;
    for (ar_job_t *job = zlistx_first (expired); job; job = zlistx_next (expired))
        s_on_cancel (self, job->env.id);
    zlistx_destroy (&expired);
}

//  One pass of the loop. An optional pipe (tests) is polled too; returns 1 when it is readable,
//  -1 on a poll failure, else 0.
static int s_run_once (ar_actor_t *self, zsock_t *pipe)
{
    ar_mono_ms now = ar_mono_now ();
    if (!self->dealer && now >= self->reconnect_at && s_connect (self) != 0)
        self->reconnect_at = now + self->backoff_ms;

    zmq_pollitem_t items[2 + AR_ACTOR_FDS];
    int count = 0, dealer_at = -1, pipe_at = -1;
    if (self->dealer) {
        dealer_at = count;
        items[count++] = (zmq_pollitem_t){zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0};
    }
    if (pipe) {
        pipe_at = count;
        items[count++] = (zmq_pollitem_t){zsock_resolve (pipe), 0, ZMQ_POLLIN, 0};
    }
    int first_fd = count;
    for (size_t i = 0; i < self->watch_count; i++)
        items[count++] = (zmq_pollitem_t){NULL, self->watches[i].fd, self->watches[i].events, 0};

    ar_mono_ms wake = self->dealer ? self->next_heartbeat : self->reconnect_at;
    if (self->dealer && self->broker_expiry < wake)
        wake = self->broker_expiry;
    if (self->timer_due >= 0 && self->timer_due < wake)
        wake = self->timer_due;
    if (zhashx_size (self->jobs) && self->next_sweep < wake)
        wake = self->next_sweep;
    long timeout = wake > now ? (long)(wake - now) : 0;
    if (zmq_poll (items, count, timeout) == -1 && errno != EINTR)
        return -1;

    if (dealer_at >= 0 && (items[dealer_at].revents & ZMQ_POLLIN))
        s_read_broker (self);
    for (int i = first_fd; i < count; i++)
        if (items[i].revents)
            self->watches[i - first_fd].on_ready (self, items[i].fd, items[i].revents,
                                                  self->ops.arg);
    now = ar_mono_now ();
    if (self->timer_due >= 0 && now >= self->timer_due) {
        self->timer_due = -1;
        if (self->on_timer)
            self->on_timer (self, self->ops.arg);
    }
    if (now >= self->next_sweep) {
        s_sweep (self, now);
        self->next_sweep = now + AR_SWEEP_MS;
    }
    if (self->dealer && now >= self->broker_expiry)
        s_reconnect_later (self, "broker silent for three heartbeats");
    else if (self->dealer && now >= self->next_heartbeat) {
        ar_envelope_t env;
        ar_envelope_init (&env);
        //  The service name lets a broker that lost us tell a worker from a client.
        snprintf (env.service, sizeof env.service, "%s", self->ops.service);
        ar_msg_send (self->dealer, NULL, AR_CMD_HEARTBEAT, &env, NULL, NULL, ZMQ_DONTWAIT);
        self->next_heartbeat = now + self->heartbeat_ms;
    }
    return pipe_at >= 0 && (items[pipe_at].revents & ZMQ_POLLIN) ? 1 : 0;
}

int ar_actor_run (ar_actor_t *self)
{
    while (!zsys_interrupted && !self->stopping)
        if (s_run_once (self, NULL) < 0)
            break;
    return 0;
}

//  --------------------------------------------------------------------------
//  Self-test: a real broker, an echo actor and a client over ipc.

#include "ar_broker.h"

static void s_echo_request (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    (void)arg;
    if (strcmp (job->env.kind, "hold") == 0)
        return; // answered later, or cancelled
    //  Stream the body back in two chunks then END, with a status on the first.
    ar_envelope_set_status (&job->reply, 200, "ok");
    ar_envelope_meta_set (&job->reply, "echo", "1");
    size_t len = job->body ? zframe_size (job->body) : 0;
    const uint8_t *data = job->body ? zframe_data (job->body) : NULL;
    ar_actor_chunk (actor, job, data, len / 2);
    ar_actor_chunk (actor, job, data + len / 2, len - len / 2);
    ar_actor_end (actor, &job, NULL, 0);
}

static int s_cancelled;
static void s_echo_cancel (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    (void)actor, (void)job, (void)arg;
    s_cancelled++;
}

static void s_broker_thread (zsock_t *pipe, void *endpoint)
{
    ar_broker_t *broker = ar_broker_new (endpoint, 100);
    assert (broker);
    zsock_signal (pipe, 0);
    ar_broker_run (broker, pipe);
    ar_broker_destroy (&broker);
}

static void s_actor_thread (zsock_t *pipe, void *arg)
{
    (void)arg;
    ar_actor_ops_t ops = {
        .service = "echo", .credit = 4, .on_request = s_echo_request, .on_cancel = s_echo_cancel};
    ar_actor_t *actor = ar_actor_new (&ops);
    assert (actor);
    zsock_signal (pipe, 0);
    while (!zsys_interrupted && s_run_once (actor, pipe) == 0)
        ;
    ar_actor_destroy (&actor);
}

void ar_actor_test (bool verbose)
{
    char dir[] = "/tmp/ar_actor_testXXXXXX";
    assert (mkdtemp (dir));
    char endpoint[128];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/broker.ipc", dir);
    setenv ("ANYRAY_BROKER_ENDPOINT", endpoint, 1);
    setenv ("ANYRAY_HEARTBEAT_MS", "100", 1);
    zactor_t *broker = zactor_new (s_broker_thread, endpoint);
    zactor_t *actor = zactor_new (s_actor_thread, NULL);
    zsock_t *client = zsock_new (ZMQ_DEALER);
    assert (zsock_connect (client, "%s", endpoint) == 0);
    zclock_sleep (100);

    //  A request is streamed back: two CHUNKs then END; status and meta ride the first only.
    ar_envelope_t env;
    ar_envelope_init (&env);
    ar_envelope_new_id (&env);
    strcpy (env.service, "echo");
    env.deadline_ms = ar_wall_now () + 2000;
    assert (ar_msg_send_bytes (client, NULL, AR_CMD_REQUEST, &env, "abcdef", 6, 0) == 0);
    zsock_set_rcvtimeo (client, 2000);
    ar_msg_t msg;
    const char *error;
    assert (ar_msg_recv (client, false, &msg, &error, 0) == AR_RECV_OK);
    assert (msg.cmd == AR_CMD_CHUNK && msg.env.seq == 0 && zframe_streq (msg.body, "abc"));
    assert (msg.env.has_status && msg.env.status_code == 200);
    assert (strcmp (ar_envelope_meta_get (&msg.env, "echo"), "1") == 0);
    ar_msg_reset (&msg);
    assert (ar_msg_recv (client, false, &msg, &error, 0) == AR_RECV_OK);
    assert (msg.cmd == AR_CMD_CHUNK && msg.env.seq == 1 && zframe_streq (msg.body, "def"));
    assert (!msg.env.has_status && msg.env.meta_count == 0);
    ar_msg_reset (&msg);
    assert (ar_msg_recv (client, false, &msg, &error, 0) == AR_RECV_OK);
    assert (msg.cmd == AR_CMD_END && msg.env.seq == 2);
    ar_msg_reset (&msg);

    //  A held job past its deadline is cancelled locally, and the client hears EXPIRED.
    ar_envelope_new_id (&env);
    strcpy (env.kind, "hold");
    env.deadline_ms = ar_wall_now () + 200;
    assert (ar_msg_send_bytes (client, NULL, AR_CMD_REQUEST, &env, "x", 1, 0) == 0);
    assert (ar_msg_recv (client, false, &msg, &error, 0) == AR_RECV_OK);
    assert (msg.cmd == AR_CMD_ERROR && strcmp (msg.env.status_reason, AR_REASON_EXPIRED) == 0);
    ar_msg_reset (&msg);
    zclock_sleep (100);
    assert (s_cancelled == 1);

    //  A client CANCEL reaches the job.
    ar_envelope_new_id (&env);
    env.deadline_ms = ar_wall_now () + 5000;
    assert (ar_msg_send_bytes (client, NULL, AR_CMD_REQUEST, &env, "x", 1, 0) == 0);
    zclock_sleep (100);
    assert (ar_msg_send_bytes (client, NULL, AR_CMD_CANCEL, &env, NULL, 0, 0) == 0);
    zclock_sleep (100);
    assert (s_cancelled == 2);

    //  Destroying the actor with a job in flight cancels it exactly once (no double free).
    ar_envelope_new_id (&env);
    env.deadline_ms = ar_wall_now () + 5000;
    assert (ar_msg_send_bytes (client, NULL, AR_CMD_REQUEST, &env, "x", 1, 0) == 0);
    zclock_sleep (100);
    zsock_destroy (&client);
    zactor_destroy (&actor);
    assert (s_cancelled == 3);

    zactor_destroy (&broker);
    unsetenv ("ANYRAY_BROKER_ENDPOINT");
    unsetenv ("ANYRAY_HEARTBEAT_MS");
    char path[160];
    snprintf (path, sizeof path, "%s/broker.ipc", dir);
    unlink (path);
    rmdir (dir);
    (void)verbose;
}
