/*  ar_sse_splitter: cuts a Server-Sent Events byte stream into whole events. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ar_sse_splitter.h"
#include "ar_buf.h"

struct ar_sse_splitter_t {
    ar_buf_t held;   // the unfinished event, from its first byte
    size_t scan;     // where the scan resumes in buf (bytes before it hold no event end)
    bool line_start; // scan sits at the start of a line
    size_t max_event;
};

//  ---------------------------------------------------------------------------
//  Create a splitter.

ar_sse_splitter_t *ar_sse_splitter_new (size_t max_event)
{
    ar_sse_splitter_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->line_start = true;
    self->max_event = max_event;
    return self;
}

//  ---------------------------------------------------------------------------
//  Destroy a splitter.

void ar_sse_splitter_destroy (ar_sse_splitter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_sse_splitter_t *self = *self_p;
    ar_buf_free (&self->held);
    free (self);
    *self_p = NULL;
}

//  The end of the first complete event in s[0, n), scanning from *scan where *line_start says
//  whether *scan begins a line. Returns the offset just past the event's blank line, or 0 when
//  the event is not complete yet; then *scan and *line_start say where to resume.
static size_t s_event_end (const char *s, size_t n, size_t *scan, bool *line_start)
{
    size_t i = *scan;
    bool at_line_start = *line_start;
    while (i < n) {
        //  Skip to the next line end with memchr (vectorised): LF, or a CR before it.
        const char *start = s + i;
        const char *lf = memchr (start, '\n', n - i);
        size_t span = lf ? (size_t)(lf - start) : n - i;
        const char *cr = memchr (start, '\r', span);
        size_t skip = cr ? (size_t)(cr - start) : span;
        if (skip > 0)
            at_line_start = false;
        i += skip;
        if (i == n)
            break;
        char c = s[i];
        size_t term = 1;
        if (c == '\r') {
            if (i + 1 == n)
                break; // CR at the edge: an LF may follow and belong to it
            if (s[i + 1] == '\n')
                term = 2;
        }
        i += term;
        if (at_line_start) {
            *scan = 0;
            *line_start = true;
            return i;
        }
        at_line_start = true;
    }
    *scan = i;
    *line_start = at_line_start;
    return 0;
}

static int s_hold (ar_sse_splitter_t *self, const char *data, size_t len)
{
    return ar_buf_append (&self->held, data, len, SIZE_MAX);
}

//  ---------------------------------------------------------------------------
//  Take the next piece of the stream; call fn for every event it completes.

int ar_sse_splitter_feed (ar_sse_splitter_t *self, const void *data, size_t len,
                          ar_sse_event_fn *fn, void *arg)
{
    const char *bytes = data;
    if (self->held.len == 0) {
        //  Nothing held: cut events straight out of the new bytes, copy only the tail.
        size_t off = 0;
        while (off < len) {
            size_t scan = 0;
            bool line_start = true;
            size_t end = s_event_end (bytes + off, len - off, &scan, &line_start);
            if (end == 0) {
                if (len - off > self->max_event || s_hold (self, bytes + off, len - off))
                    return -1;
                self->scan = scan;
                self->line_start = line_start;
                return 0;
            }
            if (fn (bytes + off, end, arg))
                return -1;
            off += end;
        }
        return 0;
    }
    //  An event is open: append, then cut from the held bytes, resuming where the scan stopped.
    if (s_hold (self, bytes, len))
        return -1;
    size_t head = 0;
    int rc = 0;
    while (head < self->held.len) {
        size_t scan = self->scan;
        bool line_start = self->line_start;
        size_t end =
            s_event_end (self->held.data + head, self->held.len - head, &scan, &line_start);
        self->scan = scan;
        self->line_start = line_start;
        if (end == 0)
            break;
        if (fn (self->held.data + head, end, arg)) {
            rc = -1;
            head += end;
            break;
        }
        head += end;
    }
    if (head > 0) {
        memmove (self->held.data, self->held.data + head, self->held.len - head);
        self->held.len -= head;
        if (self->held.len == 0) {
            self->scan = 0;
            self->line_start = true;
        }
    }
    if (rc == 0 && self->held.len > self->max_event)
        rc = -1;
    return rc;
}

//  ---------------------------------------------------------------------------
//  End of stream: hand out the unfinished event, if any.

int ar_sse_splitter_finish (ar_sse_splitter_t *self, ar_sse_event_fn *fn, void *arg)
{
    if (self->held.len == 0)
        return 0;
    size_t len = self->held.len;
    self->held.len = 0;
    self->scan = 0;
    self->line_start = true;
    return fn (self->held.data, len, arg) ? -1 : 0;
}

//  ---------------------------------------------------------------------------
//  Bytes held for the unfinished event.

size_t ar_sse_splitter_pending (ar_sse_splitter_t *self)
{
    return self->held.len;
}

//  ---------------------------------------------------------------------------
//  The event's data lines, joined with LF.

//  The value of the next `field:` line of an event from *at on (an optional single space
//  after the colon is not part of it), or NULL when no line is left.
static const char *s_next_field (const char *event, size_t len, size_t *at, const char *field,
                                 size_t *value_len)
{
    size_t field_len = strlen (field);
    while (*at < len) {
        size_t start = *at, i = *at;
        while (i < len && event[i] != '\n' && event[i] != '\r')
            i++;
        size_t line_len = i - start;
        if (i < len)
            i += (event[i] == '\r' && i + 1 < len && event[i + 1] == '\n') ? 2 : 1;
        *at = i;
        const char *line = event + start;
        //  "field" alone, or "field:" and the value
        if (line_len < field_len || memcmp (line, field, field_len) != 0)
            continue;
        if (line_len > field_len && line[field_len] != ':')
            continue;
        const char *value = line + (line_len > field_len ? field_len + 1 : field_len);
        *value_len = line_len - (size_t)(value - line);
        if (*value_len > 0 && *value == ' ')
            value++, (*value_len)--;
        return value;
    }
    return NULL;
}

int ar_sse_event_name (const char *event, size_t len, char *out, size_t size)
{
    int found = 0;
    if (size)
        out[0] = 0;
    size_t at = 0, value_len;
    const char *value;
    while ((value = s_next_field (event, len, &at, "event", &value_len))) {
        if (value_len >= size)
            return -1;
        memcpy (out, value, value_len);
        out[value_len] = 0;
        found = (int)value_len; // the last one wins
    }
    return found;
}

char *ar_sse_event_data (const char *event, size_t len, size_t *data_len)
{
    char *out = NULL;
    size_t out_len = 0;
    bool found = false;
    size_t at = 0, value_len;
    const char *value;
    while ((value = s_next_field (event, len, &at, "data", &value_len))) {
        char *grown = realloc (out, out_len + (found ? 1 : 0) + value_len + 1);
        if (!grown) {
            free (out);
            return NULL;
        }
        out = grown;
        if (found)
            out[out_len++] = '\n';
        memcpy (out + out_len, value, value_len);
        out_len += value_len;
        out[out_len] = 0;
        found = true;
    }
    if (found && data_len)
        *data_len = out_len;
    return out;
}

//  ---------------------------------------------------------------------------
//  Self-test

typedef struct {
    char out[4096];
    size_t out_len;
    size_t events;
    size_t lens[256];
} s_sink_t;

static int s_sink (const char *event, size_t len, void *arg)
{
    s_sink_t *sink = arg;
    if (sink->out_len + len > sizeof sink->out || sink->events == 256)
        return -1;
    memcpy (sink->out + sink->out_len, event, len);
    sink->out_len += len;
    sink->lens[sink->events++] = len;
    return 0;
}

static int s_stop (const char *event, size_t len, void *arg)
{
    return -1;
}

//  Feed text in pieces of `step` bytes (0 = all at once) and check every event comes out
//  whole, in order, and the bytes reassemble identically.
static void s_check_split (const char *text, size_t step, const size_t *want, size_t want_n)
{
    size_t len = strlen (text);
    ar_sse_splitter_t *splitter = ar_sse_splitter_new (1 << 16);
    assert (splitter);
    s_sink_t sink = {0};
    size_t off = 0;
    while (off < len) {
        size_t n = step && step < len - off ? step : len - off;
        assert (ar_sse_splitter_feed (splitter, text + off, n, s_sink, &sink) == 0);
        off += n;
    }
    assert (ar_sse_splitter_finish (splitter, s_sink, &sink) == 0);
    assert (sink.out_len == len && memcmp (sink.out, text, len) == 0);
    assert (sink.events == want_n);
    for (size_t i = 0; i < want_n; i++)
        assert (sink.lens[i] == want[i]);
    ar_sse_splitter_destroy (&splitter);
    assert (splitter == NULL);
}

void ar_sse_splitter_test (bool verbose)
{
    //  @selftest
    const char *lf = "data: {\"a\":1}\n\n"   // 15
                     ": keep-alive\n\n"      // 14
                     "event: x\ndata: y\n\n" // 18
                     "data: [DONE]\n\n";     // 14
    const size_t lf_lens[] = {15, 14, 18, 14};
    for (size_t step = 0; step <= 20; step++)
        s_check_split (lf, step, lf_lens, 4);

    const char *crlf = "data: 1\r\n\r\ndata: 2\r\n\r\n"; // 11 + 11
    const size_t crlf_lens[] = {11, 11};
    for (size_t step = 0; step <= 12; step++)
        s_check_split (crlf, step, crlf_lens, 2);

    //  Lone CRs end lines too; a CR split from its LF must not end the event early.
    const char *cr = "data: a\r\rdata: b\r\n\r\n"; // 9 + 11
    const size_t cr_lens[] = {9, 11};
    for (size_t step = 0; step <= 10; step++)
        s_check_split (cr, step, cr_lens, 2);

    //  A stream that ends without its blank line: the tail comes out at finish.
    const char *tail = "data: 1\n\ndata: 2\n"; // 9 + 8
    const size_t tail_lens[] = {9, 8};
    for (size_t step = 0; step <= 9; step++)
        s_check_split (tail, step, tail_lens, 2);

    //  One event fed a byte at a time is handed out once, identical, only when complete.
    ar_sse_splitter_t *splitter = ar_sse_splitter_new (64);
    s_sink_t sink = {0};
    const char *one = "data: {\"choices\":[]}\n\n";
    for (size_t i = 0; one[i]; i++) {
        assert (ar_sse_splitter_feed (splitter, one + i, 1, s_sink, &sink) == 0);
        assert (sink.events == (one[i + 1] ? 0u : 1u));
    }
    assert (sink.out_len == strlen (one) && memcmp (sink.out, one, sink.out_len) == 0);
    assert (ar_sse_splitter_pending (splitter) == 0);

    //  The cap on an unfinished event, and a callback that stops.
    char big[100];
    memset (big, 'x', sizeof big);
    assert (ar_sse_splitter_feed (splitter, big, sizeof big, s_sink, &sink) == -1);
    ar_sse_splitter_destroy (&splitter);
    splitter = ar_sse_splitter_new (64);
    assert (ar_sse_splitter_feed (splitter, "data: 1\n\n", 9, s_stop, NULL) == -1);
    assert (ar_sse_splitter_feed (splitter, "da", 2, s_stop, NULL) == 0);
    assert (ar_sse_splitter_feed (splitter, "ta: 1\n\n", 7, s_stop, NULL) == -1);
    ar_sse_splitter_destroy (&splitter);
    ar_sse_splitter_destroy (&splitter); // idempotent

    //  Random streams over a hostile alphabet: cut at random points, the events are exactly
    //  those of the stream fed whole.
    static const char alphabet[] = "ab: \r\n\n";
    srand (42);
    for (int round = 0; round < 500; round++) {
        char text[256];
        size_t len = (size_t)(rand () % (int)(sizeof text - 1));
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[rand () % (int)(sizeof alphabet - 1)];
        text[len] = 0;
        ar_sse_splitter_t *whole = ar_sse_splitter_new (1 << 16);
        ar_sse_splitter_t *cut = ar_sse_splitter_new (1 << 16);
        s_sink_t want = {0}, got = {0};
        assert (ar_sse_splitter_feed (whole, text, len, s_sink, &want) == 0);
        assert (ar_sse_splitter_finish (whole, s_sink, &want) == 0);
        size_t off = 0;
        while (off < len) {
            size_t n = 1 + (size_t)rand () % (len - off);
            assert (ar_sse_splitter_feed (cut, text + off, n, s_sink, &got) == 0);
            off += n;
        }
        assert (ar_sse_splitter_finish (cut, s_sink, &got) == 0);
        assert (got.out_len == len && memcmp (got.out, text, len) == 0);
        assert (got.events == want.events);
        for (size_t i = 0; i < want.events; i++)
            assert (got.lens[i] == want.lens[i]);
        ar_sse_splitter_destroy (&whole);
        ar_sse_splitter_destroy (&cut);
    }

    //  Data field extraction.
    size_t data_len = 0;
    char *data = ar_sse_event_data ("data: {\"x\":1}\n\n", 15, &data_len);
    assert (data && data_len == 7 && strcmp (data, "{\"x\":1}") == 0);
    free (data);
    data = ar_sse_event_data ("event: e\r\ndata:a\r\ndata:  b\r\ndata\r\n\r\n", 36, &data_len);
    assert (data && strcmp (data, "a\n b\n") == 0 && data_len == 5);
    free (data);
    assert (ar_sse_event_data (": comment\n\n", 11, &data_len) == NULL);
    assert (ar_sse_event_data ("database: 1\n\n", 13, &data_len) == NULL);
    char name[32];
    assert (ar_sse_event_name ("event: message_start\r\ndata: {}\r\n\r\n", 34, name, sizeof name) ==
            13);
    assert (strcmp (name, "message_start") == 0);
    assert (ar_sse_event_name ("data: {}\n\n", 10, name, sizeof name) == 0 && !*name);
    assert (ar_sse_event_name ("event:ping\n\n", 12, name, sizeof name) == 4);
    assert (strcmp (name, "ping") == 0);
    assert (ar_sse_event_name ("event: a-very-long-name\n\n", 25, name, 8) == -1);
    //  @end
    if (verbose)
        printf ("ar_sse_splitter: ok\n");
}
