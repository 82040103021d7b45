/*  ar_spend_outbox: held spend rows, retries and the spool (see the header). */
#include "ar_spend_outbox.h"
#include "ar_buf.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define AR_OUTBOX_DEADLINE_MS 10000 // what the spend actor gets to commit one row
#define AR_OUTBOX_PATIENCE_MS 15000 // after that long without a reply, send again
#define AR_OUTBOX_BACKOFF_MIN 250
#define AR_OUTBOX_BACKOFF_MAX 10000
#define AR_OUTBOX_TICK_MS     100

typedef struct {
    char request_hex[2 * AR_ID_LEN + 1];
    char key[2 * AR_ID_LEN + 1]; // broker id of the send in flight, "" while waiting
    char *row;
    size_t len;
    ar_mono_ms due; // waiting: when to send again; in flight: when to stop waiting
    uint32_t backoff_ms;
    void *handle; // position in rows
} s_row_t;

struct ar_spend_outbox_t {
    ar_client_t *client;
    char spool_path[PATH_MAX];
    bool has_spool;
    size_t max_pending;
    zhashx_t *in_flight; // key -> s_row_t (not owned)
    zlistx_t *rows;      // every held row (owned)
    ar_mono_ms next_tick;
    uint64_t lost;
};

static void s_row_free (void **item)
{
    s_row_t *row = *item;
    free (row->row);
    free (row);
    *item = NULL;
}

ar_spend_outbox_t *ar_spend_outbox_new (ar_client_t *client, const char *spool_dir,
                                        size_t max_pending)
{
    ar_spend_outbox_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->client = client;
    self->max_pending = max_pending ? max_pending : 1;
    if (spool_dir)
        self->has_spool =
            snprintf (self->spool_path, sizeof self->spool_path, "%s/spend-spool.edge-%d.jsonl",
                      spool_dir, (int)getpid ()) < (int)sizeof self->spool_path;
    self->in_flight = zhashx_new ();
    self->rows = zlistx_new ();
    zlistx_set_destructor (self->rows, s_row_free);
    return self;
}

//  Append rows to the spool, one JSON line each, and make them durable before returning.
static int s_spool (ar_spend_outbox_t *self, s_row_t **rows, size_t count)
{
    if (!self->has_spool || count == 0)
        return count ? -1 : 0;
    int fd = open (self->spool_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        struct iovec parts[2] = {{rows[i]->row, rows[i]->len}, {"\n", 1}};
        ssize_t want = (ssize_t)rows[i]->len + 1;
        if (writev (fd, parts, 2) != want)
            rc = -1;
    }
    if (fsync (fd) != 0)
        rc = -1;
    close (fd);
    if (rc != 0)
        fprintf (stderr, "anyray-edge: spend spool %s: %s\n", self->spool_path, strerror (errno));
    return rc;
}

void ar_spend_outbox_destroy (ar_spend_outbox_t **self_p)
{
    ar_spend_outbox_t *self = *self_p;
    if (!self)
        return;
    size_t count = zlistx_size (self->rows);
    if (count) {
        s_row_t **all = calloc (count, sizeof *all);
        size_t n = 0;
        for (s_row_t *row = zlistx_first (self->rows); row && all; row = zlistx_next (self->rows))
            all[n++] = row;
        if (!all || s_spool (self, all, n) != 0) {
            self->lost += count;
            fprintf (stderr, "anyray-edge: %zu spend rows could not be spooled at shutdown\n",
                     count);
        }
        free (all);
    }
    zhashx_destroy (&self->in_flight);
    zlistx_destroy (&self->rows);
    free (self);
    *self_p = NULL;
}

//  Send (or send again) one row. On a refused send the row waits for its backoff.
static void s_dispatch (ar_spend_outbox_t *self, s_row_t *row)
{
    ar_envelope_t env;
    ar_envelope_init (&env);
    ar_envelope_new_id (&env);
    strcpy (env.service, "spend");
    strcpy (env.kind, "spend.row");
    env.deadline_ms = ar_wall_now () + AR_OUTBOX_DEADLINE_MS;
    env.budget_ms = AR_OUTBOX_DEADLINE_MS;
    ar_envelope_meta_set (&env, "request_id", row->request_hex);
    zframe_t *frame = zframe_new (row->row, row->len);
    ar_mono_ms now = ar_mono_now ();
    if (ar_client_request (self->client, &env, &frame) != 0) {
        row->due = now + row->backoff_ms;
        return;
    }
    ar_hex_encode (env.id, AR_ID_LEN, row->key);
    zhashx_insert (self->in_flight, row->key, row);
    row->due = now + AR_OUTBOX_PATIENCE_MS;
}

//  The row is not answered: wait, then try again, a little later each time.
static void s_retry_later (ar_spend_outbox_t *self, s_row_t *row)
{
    if (*row->key) {
        zhashx_delete (self->in_flight, row->key);
        *row->key = 0;
    }
    row->due = ar_mono_now () + row->backoff_ms;
    row->backoff_ms =
        row->backoff_ms * 2 > AR_OUTBOX_BACKOFF_MAX ? AR_OUTBOX_BACKOFF_MAX : row->backoff_ms * 2;
}

int ar_spend_outbox_send (ar_spend_outbox_t *self, const char *request_hex, const char *text,
                          size_t len)
{
    s_row_t *row = calloc (1, sizeof *row);
    char *copy = malloc (len);
    if (!row || !copy) {
        free (row);
        free (copy);
        self->lost++;
        return -1;
    }
    memcpy (copy, text, len);
    row->row = copy;
    row->len = len;
    row->backoff_ms = AR_OUTBOX_BACKOFF_MIN;
    snprintf (row->request_hex, sizeof row->request_hex, "%s", request_hex);
    if (zlistx_size (self->rows) >= self->max_pending) {
        //  Too many held already (spend has been away a long time): straight to disk.
        int rc = s_spool (self, &row, 1);
        if (rc != 0) {
            self->lost++;
            fprintf (stderr, "anyray-edge: spend row %s lost: outbox full and no spool\n",
                     request_hex);
        }
        s_row_free ((void **)&row);
        return rc;
    }
    row->handle = zlistx_add_end (self->rows, row);
    s_dispatch (self, row);
    return 0;
}

bool ar_spend_outbox_on_reply (ar_spend_outbox_t *self, const ar_msg_t *msg)
{
    char key[2 * AR_ID_LEN + 1];
    ar_hex_encode (msg->env.id, AR_ID_LEN, key);
    s_row_t *row = zhashx_lookup (self->in_flight, key);
    if (!row)
        return false;
    if (msg->cmd == AR_CMD_END) {
        zhashx_delete (self->in_flight, key);
        zlistx_delete (self->rows, row->handle); // committed: done with it
    } else if (msg->cmd == AR_CMD_ERROR) {
        if (msg->env.has_status && msg->env.status_code == 400) {
            //  The spend actor refused the row itself: sending it again cannot help.
            fprintf (stderr, "anyray-edge: spend row %s refused: %s\n", row->request_hex,
                     msg->env.status_reason);
            zhashx_delete (self->in_flight, key);
            zlistx_delete (self->rows, row->handle);
            self->lost++;
        } else
            s_retry_later (self, row);
    }
    return true;
}

void ar_spend_outbox_tick (ar_spend_outbox_t *self)
{
    ar_mono_ms now = ar_mono_now ();
    if (now < self->next_tick || zlistx_size (self->rows) == 0)
        return;
    self->next_tick = now + AR_OUTBOX_TICK_MS;
    for (s_row_t *row = zlistx_first (self->rows); row; row = zlistx_next (self->rows)) {
        if (row->due > now)
            continue;
        if (*row->key)
            s_retry_later (self, row); // no answer at all: the broker may have restarted
        else
            s_dispatch (self, row);
    }
}

size_t ar_spend_outbox_pending (ar_spend_outbox_t *self)
{
    return zlistx_size (self->rows);
}

uint64_t ar_spend_outbox_lost (ar_spend_outbox_t *self)
{
    return self->lost;
}

//  --------------------------------------------------------------------------
//  Self-test: a real broker thread, a worker socket playing the spend actor.

#include "ar_broker.h"

static void s_broker_thread (zsock_t *pipe, void *endpoint)
{
    ar_broker_t *broker = ar_broker_new (endpoint, 1000);
    assert (broker);
    zsock_signal (pipe, 0);
    ar_broker_run (broker, pipe);
    ar_broker_destroy (&broker);
}

//  Run the client's receive side until the outbox has nothing in flight or time runs out.
static void s_pump (ar_spend_outbox_t *outbox, ar_client_t *client, int ms)
{
    ar_mono_ms until = ar_mono_now () + ms;
    while (ar_mono_now () < until) {
        zmq_pollitem_t item = {zsock_resolve (ar_client_sock (client)), 0, ZMQ_POLLIN, 0};
        zmq_poll (&item, 1, 10);
        ar_msg_t msg;
        while (ar_client_recv (client, &msg) != AR_RECV_INTERRUPTED) {
            ar_spend_outbox_on_reply (outbox, &msg);
            ar_msg_reset (&msg);
        }
        ar_spend_outbox_tick (outbox);
    }
}

void ar_spend_outbox_test (bool verbose)
{
    (void)verbose;
    char dir[] = "/tmp/ar_outbox_testXXXXXX";
    assert (mkdtemp (dir));
    const char *endpoint = "inproc://ar_spend_outbox_test";
    zactor_t *broker = zactor_new (s_broker_thread, (void *)endpoint);
    ar_client_t *client = ar_client_new (endpoint, 1000);
    ar_spend_outbox_t *outbox = ar_spend_outbox_new (client, dir, 2);

    //  No spend worker yet: NO_WORKER comes back and the row is held, not lost.
    const char *row = "{\"request_id\":\"00000000000000000000000000000001\"}";
    assert (ar_spend_outbox_send (outbox, "01", row, strlen (row)) == 0);
    s_pump (outbox, client, 100);
    assert (ar_spend_outbox_pending (outbox) == 1 && ar_spend_outbox_lost (outbox) == 0);

    //  The spend actor arrives: the retry reaches it, it commits (END), the row is done.
    zsock_t *worker = zsock_new_dealer (endpoint);
    ar_envelope_t ready;
    ar_envelope_init (&ready);
    strcpy (ready.service, "spend");
    ready.credit = 8;
    ready.heartbeat_ms = 1000;
    assert (ar_msg_send_bytes (worker, NULL, AR_CMD_READY, &ready, NULL, 0, 0) == 0);
    ar_msg_t got;
    const char *error;
    zsock_set_rcvtimeo (worker, 10);
    bool delivered = false;
    for (int i = 0; i < 200 && !delivered; i++) {
        s_pump (outbox, client, 10);
        if (ar_msg_recv (worker, false, &got, &error, 0) == AR_RECV_OK) {
            if (got.cmd == AR_CMD_REQUEST) {
                assert (zframe_size (got.body) == strlen (row));
                assert (memcmp (zframe_data (got.body), row, strlen (row)) == 0);
                //  First answer: the database is away (503). The row must come back.
                ar_envelope_t reply = got.env;
                ar_envelope_set_status (&reply, 503, "spend store unavailable");
                ar_msg_send_bytes (worker, NULL, AR_CMD_ERROR, &reply, NULL, 0, 0);
                delivered = true;
            }
            ar_msg_reset (&got);
        }
    }
    assert (delivered);
    bool committed = false;
    for (int i = 0; i < 300 && !committed; i++) {
        s_pump (outbox, client, 10);
        if (ar_msg_recv (worker, false, &got, &error, 0) == AR_RECV_OK) {
            if (got.cmd == AR_CMD_REQUEST) {
                ar_msg_send_bytes (worker, NULL, AR_CMD_END, &got.env, NULL, 0, 0);
                committed = true;
            }
            ar_msg_reset (&got);
        }
    }
    assert (committed);
    s_pump (outbox, client, 100);
    assert (ar_spend_outbox_pending (outbox) == 0 && ar_spend_outbox_lost (outbox) == 0);

    //  Past the bound rows go straight to the spool; held rows are spooled at destroy.
    zsock_destroy (&worker); // nobody answers from here on
    for (int i = 0; i < 3; i++)
        assert (ar_spend_outbox_send (outbox, "02", row, strlen (row)) == 0);
    assert (ar_spend_outbox_pending (outbox) == 2);
    ar_spend_outbox_destroy (&outbox);
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/spend-spool.edge-%d.jsonl", dir, (int)getpid ());
    FILE *file = fopen (path, "r");
    assert (file);
    char line[256];
    int lines = 0;
    while (fgets (line, sizeof line, file)) {
        assert (strncmp (line, row, strlen (row)) == 0 && line[strlen (row)] == '\n');
        lines++;
    }
    fclose (file);
    assert (lines == 3);
    unlink (path);
    rmdir (dir);
    ar_client_destroy (&client);
    zactor_destroy (&broker);
}
