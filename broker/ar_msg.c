/*  ar_msg: one protocol message on a socket (routing id, tag, command, envelope, body).

    Frames arrive whole: ZeroMQ delivers a multipart message atomically, so once the first
    frame is readable the rest are too. Nothing here asserts on what a peer sent; every shape
    error consumes the whole message and is reported to the caller to count and answer.
*/
#include "ar_msg.h"
#include <assert.h>
#include <errno.h>
#include <string.h>

void ar_msg_reset (ar_msg_t *msg)
{
    zframe_destroy (&msg->routing_id);
    zframe_destroy (&msg->env_frame);
    zframe_destroy (&msg->body);
}

//  Read and drop any frames left of the current multipart message.
static void s_drain (void *handle)
{
    int more = 0;
    size_t size = sizeof more;
    zmq_getsockopt (handle, ZMQ_RCVMORE, &more, &size);
    while (more) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, handle, 0) == -1) {
            zmq_msg_close (&part);
            return;
        }
        more = zmq_msg_more (&part);
        zmq_msg_close (&part);
    }
}

static bool s_more (void *handle)
{
    int more = 0;
    size_t size = sizeof more;
    zmq_getsockopt (handle, ZMQ_RCVMORE, &more, &size);
    return more != 0;
}

ar_recv_result_t ar_msg_recv (void *zsock, bool router, ar_msg_t *msg, const char **error,
                              int flags)
{
    const char *dummy;
    if (!error)
        error = &dummy;
    void *handle = zsock_resolve (zsock);
    memset (msg, 0, offsetof (ar_msg_t, env));
    msg->env_frame = NULL;
    msg->body = NULL;
    if (flags & ZMQ_DONTWAIT) {
        //  zframe_recv blocks; ask first so a spurious wake-up costs nothing.
        int events = 0;
        size_t size = sizeof events;
        if (zmq_getsockopt (handle, ZMQ_EVENTS, &events, &size) != 0 || !(events & ZMQ_POLLIN))
            return AR_RECV_INTERRUPTED;
    }
    if (router) {
        msg->routing_id = zframe_recv (handle);
        if (!msg->routing_id)
            return AR_RECV_INTERRUPTED;
        if (!s_more (handle)) {
            *error = "no frames after routing id";
            return AR_RECV_NOT_OURS;
        }
    }
    zframe_t *tag = zframe_recv (handle);
    if (!tag) {
        ar_msg_reset (msg);
        return AR_RECV_INTERRUPTED;
    }
    int tag_check = ar_envelope_check_tag (zframe_data (tag), zframe_size (tag));
    zframe_destroy (&tag);
    if (tag_check != 0 || !s_more (handle)) {
        s_drain (handle);
        *error = tag_check == -2 ? "unsupported protocol major version" : "not an ARB message";
        return tag_check == -2 ? AR_RECV_VERSION : AR_RECV_NOT_OURS;
    }
    zframe_t *cmd = zframe_recv (handle);
    if (!cmd || zframe_size (cmd) != 1 || !s_more (handle)) {
        zframe_destroy (&cmd);
        s_drain (handle);
        *error = "command frame must be one byte followed by an envelope";
        return AR_RECV_MALFORMED;
    }
    msg->cmd = (ar_cmd_t)zframe_data (cmd)[0];
    zframe_destroy (&cmd);
    if (msg->cmd < AR_CMD_READY || msg->cmd > AR_CMD_CREDIT) {
        s_drain (handle);
        *error = "unknown command";
        return AR_RECV_MALFORMED;
    }
    msg->env_frame = zframe_recv (handle);
    if (!msg->env_frame) {
        *error = "missing envelope";
        return AR_RECV_MALFORMED;
    }
    if (s_more (handle)) {
        msg->body = zframe_recv (handle);
        if (s_more (handle)) {
            s_drain (handle);
            *error = "too many frames";
            return AR_RECV_MALFORMED;
        }
    }
    if (ar_envelope_decode (&msg->env, zframe_data (msg->env_frame), zframe_size (msg->env_frame),
                            error) != 0)
        return AR_RECV_MALFORMED;
    return AR_RECV_OK;
}

//  Send a list of frames as one message; all frames are consumed whatever happens. Only the
//  first send can fail: once ZeroMQ takes the first frame it takes the whole message.
static int s_send_frames (void *handle, zframe_t **frames, int count, int flags)
{
    int rc = 0;
    for (int i = 0; i < count; i++) {
        if (rc == 0) {
            int frame_flags =
                (i < count - 1 ? ZFRAME_MORE : 0) | ((flags & ZMQ_DONTWAIT) ? ZFRAME_DONTWAIT : 0);
            if (zframe_send (&frames[i], handle, frame_flags) != 0)
                rc = -1;
        }
        zframe_destroy (&frames[i]);
    }
    return rc;
}

int ar_msg_send (void *zsock, zframe_t *routing_id, ar_cmd_t cmd, const ar_envelope_t *env,
                 zframe_t **env_frame_p, zframe_t **body_p, int flags)
{
    void *handle = zsock_resolve (zsock);
    zframe_t *frames[5];
    int count = 0;
    if (routing_id)
        frames[count++] = zframe_dup (routing_id);
    frames[count++] = zframe_new (AR_PROTO_TAG, AR_PROTO_TAG_LEN);
    uint8_t command = (uint8_t)cmd;
    frames[count++] = zframe_new (&command, 1);
    if (env_frame_p && *env_frame_p) {
        frames[count++] = *env_frame_p;
        *env_frame_p = NULL;
    } else {
        uint8_t buf[AR_ENVELOPE_MAX];
        int len = ar_envelope_encode (env, buf, sizeof buf);
        if (len < 0) {
            for (int i = 0; i < count; i++)
                zframe_destroy (&frames[i]);
            if (body_p)
                zframe_destroy (body_p);
            errno = EMSGSIZE;
            return -1;
        }
        frames[count++] = zframe_new (buf, (size_t)len);
    }
    if (body_p && *body_p) {
        frames[count++] = *body_p;
        *body_p = NULL;
    }
    int saved_errno = 0;
    int rc = s_send_frames (handle, frames, count, flags);
    if (rc != 0)
        saved_errno = errno;
    errno = saved_errno;
    return rc;
}

int ar_msg_send_bytes (void *zsock, zframe_t *routing_id, ar_cmd_t cmd, const ar_envelope_t *env,
                       const void *body, size_t body_len, int flags)
{
    zframe_t *frame = body ? zframe_new (body, body_len) : NULL;
    return ar_msg_send (zsock, routing_id, cmd, env, NULL, &frame, flags);
}

void ar_msg_test (bool verbose)
{
    zsock_t *server = zsock_new_router ("inproc://ar_msg_test");
    zsock_t *client = zsock_new_dealer (">inproc://ar_msg_test");
    assert (server && client);

    //  A well-formed REQUEST with a body arrives intact with the sender's routing id.
    ar_envelope_t env;
    ar_envelope_init (&env);
    ar_envelope_new_id (&env);
    strcpy (env.service, "echo");
    assert (ar_msg_send_bytes (client, NULL, AR_CMD_REQUEST, &env, "hello", 5, 0) == 0);
    ar_msg_t msg;
    const char *error = NULL;
    assert (ar_msg_recv (server, true, &msg, &error, 0) == AR_RECV_OK);
    assert (msg.routing_id && msg.cmd == AR_CMD_REQUEST);
    assert (strcmp (msg.env.service, "echo") == 0);
    assert (msg.body && zframe_size (msg.body) == 5 &&
            memcmp (zframe_data (msg.body), "hello", 5) == 0);

    //  Forwarding the received envelope frame back without re-encoding.
    assert (ar_msg_send (server, msg.routing_id, AR_CMD_END, NULL, &msg.env_frame, &msg.body, 0) ==
            0);
    assert (msg.env_frame == NULL && msg.body == NULL);
    ar_msg_reset (&msg);
    ar_msg_t reply;
    assert (ar_msg_recv (client, false, &reply, &error, 0) == AR_RECV_OK);
    assert (reply.cmd == AR_CMD_END && memcmp (reply.env.id, env.id, AR_ID_LEN) == 0);
    ar_msg_reset (&reply);

    //  Nothing waiting: a non-blocking receive reports so and consumes nothing.
    assert (ar_msg_recv (client, false, &reply, &error, ZMQ_DONTWAIT) == AR_RECV_INTERRUPTED);

    //  Stray traffic, another major, bad commands and bad envelopes are refused, whole.
    zstr_send (client, "hello");
    assert (ar_msg_recv (server, true, &msg, &error, 0) == AR_RECV_NOT_OURS);
    ar_msg_reset (&msg);
    zsock_send (client, "ss", "ARB2", "x");
    assert (ar_msg_recv (server, true, &msg, &error, 0) == AR_RECV_VERSION);
    ar_msg_reset (&msg);
    zsock_send (client, "sbs", "ARB1", "\x42", (size_t)1, "x");
    assert (ar_msg_recv (server, true, &msg, &error, 0) == AR_RECV_MALFORMED);
    ar_msg_reset (&msg);
    zsock_send (client, "sbb", "ARB1", "\x02", (size_t)1, "\xdd\xff\xff\xff\xff", (size_t)5);
    assert (ar_msg_recv (server, true, &msg, &error, 0) == AR_RECV_MALFORMED);
    assert (error && *error);
    ar_msg_reset (&msg);
    //  ...and the socket still works afterwards.
    assert (ar_msg_send_bytes (client, NULL, AR_CMD_HEARTBEAT, &env, NULL, 0, 0) == 0);
    assert (ar_msg_recv (server, true, &msg, &error, 0) == AR_RECV_OK);
    assert (msg.cmd == AR_CMD_HEARTBEAT && msg.body == NULL);
    ar_msg_reset (&msg);

    zsock_destroy (&client);
    zsock_destroy (&server);
    (void)verbose;
}
