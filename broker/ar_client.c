/*  ar_client: requester half of the broker protocol. */
#include "ar_client.h"
#include <assert.h>
#include <string.h>

struct ar_client_t {
    zsock_t *dealer;
    uint32_t heartbeat_ms;
    ar_mono_ms next_beat, broker_expiry;
};

ar_client_t *ar_client_new (const char *endpoint, uint32_t heartbeat_ms)
{
    ar_client_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->dealer = zsock_new (ZMQ_DEALER);
    //  A high HWM: replies to thousands of open streams arrive on this one socket.
    zsock_set_sndhwm (self->dealer, 100000);
    zsock_set_rcvhwm (self->dealer, 200000);
    zsock_set_linger (self->dealer, 200);
    if (zsock_connect (self->dealer, "%s", endpoint) != 0) {
        zsock_destroy (&self->dealer);
        free (self);
        return NULL;
    }
    self->heartbeat_ms = heartbeat_ms ? heartbeat_ms : 500;
    ar_mono_ms now = ar_mono_now ();
    self->next_beat = now;
    self->broker_expiry = now + 3 * (ar_mono_ms)self->heartbeat_ms;
    return self;
}

void ar_client_destroy (ar_client_t **self_p)
{
    ar_client_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->dealer);
    free (self);
    *self_p = NULL;
}

zsock_t *ar_client_sock (ar_client_t *self)
{
    return self->dealer;
}

int ar_client_request (ar_client_t *self, const ar_envelope_t *env, zframe_t **body_p)
{
    return ar_msg_send (self->dealer, NULL, AR_CMD_REQUEST, env, NULL, body_p, ZMQ_DONTWAIT);
}

int ar_client_cancel (ar_client_t *self, const uint8_t *id)
{
    ar_envelope_t env;
    ar_envelope_init (&env);
    memcpy (env.id, id, AR_ID_LEN);
    return ar_msg_send (self->dealer, NULL, AR_CMD_CANCEL, &env, NULL, NULL, ZMQ_DONTWAIT);
}

ar_recv_result_t ar_client_recv (ar_client_t *self, ar_msg_t *msg)
{
    for (;;) {
        const char *error = NULL;
        ar_recv_result_t rc = ar_msg_recv (self->dealer, false, msg, &error, ZMQ_DONTWAIT);
        if (rc == AR_RECV_INTERRUPTED)
            return rc;
        self->broker_expiry = ar_mono_now () + 3 * (ar_mono_ms)self->heartbeat_ms;
        if (rc == AR_RECV_OK && msg->cmd == AR_CMD_HEARTBEAT) {
            ar_msg_reset (msg);
            continue;
        }
        return rc;
    }
}

int64_t ar_client_tick (ar_client_t *self)
{
    ar_mono_ms now = ar_mono_now ();
    if (now >= self->next_beat) {
        ar_envelope_t env;
        ar_envelope_init (&env);
        ar_msg_send (self->dealer, NULL, AR_CMD_HEARTBEAT, &env, NULL, NULL, ZMQ_DONTWAIT);
        self->next_beat = now + self->heartbeat_ms;
    }
    return self->next_beat - now;
}

bool ar_client_broker_alive (ar_client_t *self)
{
    return ar_mono_now () < self->broker_expiry;
}

#include "ar_broker.h"

static void s_broker_thread (zsock_t *pipe, void *endpoint)
{
    ar_broker_t *broker = ar_broker_new (endpoint, 50);
    assert (broker);
    zsock_signal (pipe, 0);
    ar_broker_run (broker, pipe);
    ar_broker_destroy (&broker);
}

void ar_client_test (bool verbose)
{
    const char *endpoint = "inproc://ar_client_test";
    zactor_t *broker = zactor_new (s_broker_thread, (void *)endpoint);
    ar_client_t *client = ar_client_new (endpoint, 50);
    assert (client);
    //  Beats are answered, so the broker counts as alive; they never surface as replies.
    ar_client_tick (client);
    zclock_sleep (30);
    ar_msg_t msg;
    assert (ar_client_recv (client, &msg) == AR_RECV_INTERRUPTED);
    assert (ar_client_broker_alive (client));
    //  A request to nobody comes back NO_WORKER.
    ar_envelope_t env;
    ar_envelope_init (&env);
    ar_envelope_new_id (&env);
    strcpy (env.service, "nobody");
    env.deadline_ms = ar_wall_now () + 1000;
    zframe_t *body = zframe_new ("x", 1);
    assert (ar_client_request (client, &env, &body) == 0 && body == NULL);
    zmq_pollitem_t item = {zsock_resolve (ar_client_sock (client)), 0, ZMQ_POLLIN, 0};
    assert (zmq_poll (&item, 1, 1000) == 1);
    assert (ar_client_recv (client, &msg) == AR_RECV_OK);
    assert (msg.cmd == AR_CMD_ERROR && strcmp (msg.env.status_reason, AR_REASON_NO_WORKER) == 0);
    ar_msg_reset (&msg);
    //  With the broker gone, liveness lapses after three beats.
    zactor_destroy (&broker);
    zclock_sleep (200);
    ar_client_tick (client);
    ar_client_recv (client, &msg);
    assert (!ar_client_broker_alive (client));
    ar_client_destroy (&client);
    (void)verbose;
}
