/*  ar_chat_request: what the edge must know about a chat completions body before it spends
    anything on it: is it valid JSON and UTF-8, are the fields it routes on the right types,
    does the client stream, did it ask for usage in the stream. One strict scan, no DOM.
*/
#ifndef AR_CHAT_REQUEST_H
#define AR_CHAT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char model[256];
    bool stream;
    bool has_stream_options;
    bool include_usage;
    //  On failure: a message for the caller and the offending parameter (or NULL).
    char error[256];
    const char *param;
} ar_chat_request_t;

//  Returns 0 if body is a valid chat completions request, else -1 with error/param set.
int ar_chat_request_parse (ar_chat_request_t *self, const char *body, size_t len);

//  When the client streams without asking for usage, the gateway asks for it (it needs the
//  token counts for spend) and strips the usage-only event from what the client sees.
//  Returns a new body (caller frees, *out_len set) with stream_options.include_usage = true,
//  or NULL when the body already asks for it or is not streamed.
char *ar_chat_request_with_usage (const ar_chat_request_t *self, const char *body, size_t len,
                                  size_t *out_len);

void ar_chat_request_test (bool verbose);

#endif
