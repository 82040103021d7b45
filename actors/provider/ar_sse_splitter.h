/*  ar_sse_splitter: cuts a Server-Sent Events byte stream into whole events.

    Upstream bytes arrive in arbitrary pieces (TCP segments, TLS records, HTTP/2 frames). The
    provider forwards SSE only at event boundaries, so a reader downstream never sees half an
    event, and it inspects whole events for usage. The splitter keeps the partial tail of the
    stream until its blank line arrives and hands out every complete event, with its terminating
    blank line, as soon as it is complete. Bytes are passed through unchanged.

    An event ends at an empty line; lines end in CRLF, LF or CR (the SSE grammar). A CR at the
    very end of what has arrived is held back, since the LF that may follow belongs to it.
*/
#ifndef AR_SSE_SPLITTER_H
#define AR_SSE_SPLITTER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ar_sse_splitter_t ar_sse_splitter_t;

//  Called for each complete event (bytes valid during the call only). Return 0, or -1 to stop.
typedef int (ar_sse_event_fn) (const char *event, size_t len, void *arg);

//  max_event caps the bytes held for one unfinished event.
ar_sse_splitter_t *ar_sse_splitter_new (size_t max_event);
void ar_sse_splitter_destroy (ar_sse_splitter_t **self_p);

//  Take the next piece of the stream and call fn for every event it completes. Returns 0, or
//  -1 if fn stopped or an unfinished event grew past max_event.
int ar_sse_splitter_feed (ar_sse_splitter_t *self, const void *data, size_t len,
                          ar_sse_event_fn *fn, void *arg);

//  End of stream: hand out what is left (an event without its blank line) as one last event,
//  if any. Returns 0, or -1 if fn stopped.
int ar_sse_splitter_finish (ar_sse_splitter_t *self, ar_sse_event_fn *fn, void *arg);

//  Bytes held for the unfinished event.
size_t ar_sse_splitter_pending (ar_sse_splitter_t *self);

//  The value of an event's data field: its data lines joined with LF, as a new NUL-terminated
//  string the caller frees; *data_len gets its length. NULL if the event has no data line.
char *ar_sse_event_data (const char *event, size_t len, size_t *data_len);

//  The value of an event's `event:` field into out (NUL-terminated; the last one wins, as in
//  the SSE grammar). Returns its length, 0 when the event has none, -1 if it does not fit.
int ar_sse_event_name (const char *event, size_t len, char *out, size_t size);

void ar_sse_splitter_test (bool verbose);

#endif
