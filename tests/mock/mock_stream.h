/*  =========================================================================
    mock_stream - paced response bodies

    A streamed chat answer is an MHD content reader that emits one event per
    call when a chunk delay is set. When the next chunk is not due yet it
    parks the connection on the timer and returns 0, so thousands of slow
    streams cost no thread and no polling. Without a delay it packs as many
    events into each write as fit.

    The same file holds the "drop" answer for non-stream requests: a
    body with a correct content-length that stops halfway.
    =========================================================================
*/
#ifndef MOCK_STREAM_H_INCLUDED
#define MOCK_STREAM_H_INCLUDED

#include "mock_chat.h"
#include "mock_timer.h"

#include <stdatomic.h>

struct MHD_Connection;
struct MHD_Response;

//  Build the text/event-stream response for chat (heap-allocated; the
//  response takes it and frees it). open_streams counts live streams.
//  Returns NULL on failure, in which case chat is still the caller's.
struct MHD_Response *mock_stream_response (mock_chat_t *chat, struct MHD_Connection *conn,
                                           mock_timer_t *timer, atomic_long *open_streams);

//  Build a response that announces len bytes, sends half, then cuts the
//  connection. Takes body (malloc'd) on success.
struct MHD_Response *mock_stream_cut_response (char *body, size_t len);

#endif
