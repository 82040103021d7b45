/*  =========================================================================
    mock_control - per-request behaviour switches

    The gateway forwards no custom headers, so a test steers one request by
    starting the last user message with "[mock key=value ...]". The CLI
    flags fill in the defaults; the prefix overrides them for that request.

        latency=MS       wait before sending response headers
        status=CODE      answer with this HTTP status and an OpenAI error body
        retry_after=S    add a retry-after header to an error answer
        chunks=N         reply with N words "w1 w2 ... wN"
        chunk_delay=MS   stream: wait this long before each content chunk
        hang=1           never answer; hold the request until the client leaves
        drop=1           cut the connection halfway through the body
        drop_after=K     stream: cut the connection after K content chunks
        tool=NAME        answer with a call to the request's tool NAME
                         ([A-Za-z0-9_-]{1,64}) unless the last message is
                         already a tool result (see mock_chat.h)
    =========================================================================
*/
#ifndef MOCK_CONTROL_H_INCLUDED
#define MOCK_CONTROL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define MOCK_CONTROL_TOOL_MAX 64

typedef struct {
    int latency_ms;     //  before headers; 0 = none
    int status;         //  0 = answer normally
    int retry_after;    //  seconds; -1 = no header
    int chunks;         //  -1 = the natural "Mock reply to: ..." words
    int chunk_delay_ms; //  stream only; 0 = as fast as the socket takes it
    bool hang;
    int drop_after;                       //  -1 = never, -2 = halfway, K = after K chunks
    char tool[MOCK_CONTROL_TOOL_MAX + 1]; //  "" = answer with text
} mock_control_t;

//  Defaults when no CLI flag says otherwise
void mock_control_init (mock_control_t *self);

//  If text starts with "[mock ...]", apply its options over self and return
//  how many bytes the prefix (and the blanks after it) take; else 0.
//  Unknown keys and bad values are ignored, never fatal.
size_t mock_control_parse (mock_control_t *self, const char *text, size_t len);

#endif
