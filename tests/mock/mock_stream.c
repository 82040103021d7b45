/*  =========================================================================
    mock_stream - paced response bodies
    =========================================================================
*/
#include "mock_stream.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct {
    mock_chat_t *chat;
    struct MHD_Connection *conn;
    mock_timer_t *timer;
    atomic_long *open_streams;
    mock_wait_t wait;
    int next;        //  0 role, 1..words content, then finish, usage, done
    uint64_t due_ms; //  when the next content chunk may go
    int drop_at;     //  content chunks sent before the cut; -1 = never
    mock_buf_t pend; //  the event being written out
    size_t pend_off;
} s_stream_t;

//  End the response with an error, for real. libmicrohttpd 0.9.75 marks a
//  connection closed when a chunked reader fails but does not release it
//  until something else happens on that socket, which may be never. So
//  shut the socket down here (the client sees the cut at once) and give
//  the connection a short timeout, which makes MHD look at it again within
//  a second and free it.
static ssize_t s_abort (struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info)
        shutdown (info->connect_fd, SHUT_RDWR);
    MHD_set_connection_option (conn, MHD_CONNECTION_OPTION_TIMEOUT, 1u);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

//  Render event number index into pend; false when there are none left
static bool s_render (s_stream_t *self, int index)
{
    mock_chat_t *chat = self->chat;
    mock_buf_reset (&self->pend);
    self->pend_off = 0;
    if (index == 0)
        mock_chat_event_role (chat, &self->pend);
    else if (index <= chat->words)
        mock_chat_event_word (chat, index - 1, &self->pend);
    else if (index == chat->words + 1)
        mock_chat_event_finish (chat, &self->pend);
    else if (index == chat->words + 2) {
        if (chat->include_usage)
            mock_chat_event_usage (chat, &self->pend);
    } else if (index == chat->words + 3)
        mock_chat_event_done (&self->pend);
    else
        return false;
    return true;
}

static ssize_t s_stream_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    s_stream_t *self = cls;
    int delay = self->chat->ctl.chunk_delay_ms;
    size_t filled = 0;
    if (atomic_load (&self->wait.gone))
        return s_abort (self->conn);
    for (;;) {
        if (self->pend.broken)
            return s_abort (self->conn);
        if (self->pend_off < self->pend.len) {
            size_t n = self->pend.len - self->pend_off;
            if (n > max - filled)
                n = max - filled;
            memcpy (buf + filled, self->pend.data + self->pend_off, n);
            filled += n;
            self->pend_off += n;
            if (filled == max)
                return (ssize_t)filled;
            continue;
        }
        int index = self->next;
        bool content = index >= 1 && index <= self->chat->words;
        if (content && delay > 0) {
            uint64_t now = mock_clock_ms ();
            if (now < self->due_ms) {
                //  Let what we have go out now; park on the next call
                if (filled)
                    return (ssize_t)filled;
                mock_timer_park (self->timer, &self->wait, self->conn, self->due_ms);
                return 0;
            }
        }
        //  The cut comes when the next chunk would have, like a real failure
        if (content && self->drop_at >= 0 && index > self->drop_at)
            return filled ? (ssize_t)filled : s_abort (self->conn);
        if (!s_render (self, index))
            return filled ? (ssize_t)filled : MHD_CONTENT_READER_END_OF_STREAM;
        self->next++;
        if (delay > 0 && (index == 0 || content))
            self->due_ms = mock_clock_ms () + (uint64_t)delay;
    }
}

static void s_stream_free (void *cls)
{
    s_stream_t *self = cls;
    atomic_fetch_sub (self->open_streams, 1);
    mock_chat_free (self->chat);
    free (self->chat);
    mock_buf_free (&self->pend);
    free (self);
}

//  --------------------------------------------------------------------------
//  Build the text/event-stream response for chat

struct MHD_Response *mock_stream_response (mock_chat_t *chat, struct MHD_Connection *conn,
                                           mock_timer_t *timer, atomic_long *open_streams)
{
    s_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->chat = chat;
    self->conn = conn;
    self->timer = timer;
    self->open_streams = open_streams;
    self->drop_at = chat->ctl.drop_after;
    if (self->drop_at == -2)
        self->drop_at = (chat->words + 1) / 2;
    struct MHD_Response *response = MHD_create_response_from_callback (
        MHD_SIZE_UNKNOWN, 16 * 1024, s_stream_read, self, s_stream_free);
    if (!response) {
        free (self);
        return NULL;
    }
    atomic_fetch_add (open_streams, 1);
    return response;
}

typedef struct {
    char *body;
    size_t len;
} s_cut_t;

static ssize_t s_cut_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    s_cut_t *self = cls;
    size_t half = self->len / 2;
    if (pos >= half)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = half - (size_t)pos;
    if (n > max)
        n = max;
    memcpy (buf, self->body + pos, n);
    return (ssize_t)n;
}

static void s_cut_free (void *cls)
{
    s_cut_t *self = cls;
    free (self->body);
    free (self);
}

//  --------------------------------------------------------------------------
//  Build a response that sends half its announced body, then cuts

struct MHD_Response *mock_stream_cut_response (char *body, size_t len)
{
    s_cut_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->body = body;
    self->len = len;
    struct MHD_Response *response =
        MHD_create_response_from_callback (len, 4096, s_cut_read, self, s_cut_free);
    if (!response)
        free (self);
    return response;
}
