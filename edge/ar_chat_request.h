/*  ar_chat_request: what the edge must know about a model call's body before it spends
    anything on it: is it valid JSON and UTF-8, are the fields it routes on the right types and
    are the endpoint's required members there, does the client stream, did it ask for usage in
    the stream. One strict scan, no DOM. Every model-call endpoint goes through here: OpenAI
    chat, completions, embeddings and responses; Anthropic messages and count_tokens.
*/
#ifndef AR_CHAT_REQUEST_H
#define AR_CHAT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    AR_API_CHAT,         // POST /v1/chat/completions
    AR_API_MESSAGES,     // POST /v1/messages (Anthropic)
    AR_API_COUNT_TOKENS, // POST /v1/messages/count_tokens (Anthropic)
    AR_API_EMBEDDINGS,   // POST /v1/embeddings
    AR_API_COMPLETIONS,  // POST /v1/completions
    AR_API_RESPONSES,    // POST /v1/responses
} ar_api_t;

typedef struct {
    ar_api_t api;
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
//  The same for any model-call endpoint: each has its own required members.
int ar_chat_request_parse_api (ar_chat_request_t *self, ar_api_t api, const char *body, size_t len);

//  When the client streams without asking for usage, the gateway asks for it (it needs the
//  token counts for spend) and strips the usage-only event from what the client sees.
//  Returns a new body (caller frees, *out_len set) with stream_options.include_usage = true,
//  or NULL when the body already asks for it, is not streamed, or its endpoint has no
//  stream_options (only chat and completions do).
char *ar_chat_request_with_usage (const ar_chat_request_t *self, const char *body, size_t len,
                                  size_t *out_len);

//  The body with its top-level "model" replaced by model (a routing target's override): a
//  byte splice, the rest of the body untouched. Returns a new body (caller frees, *out_len
//  set), or NULL when body has no top-level string "model" or memory runs out.
char *ar_chat_request_with_model (const char *body, size_t len, const char *model, size_t *out_len);

void ar_chat_request_test (bool verbose);

#endif
