/*  =========================================================================
    mock_chat - the Chat Completions wire format

    Validates a POST /v1/chat/completions body the way the real API does,
    decides the reply, and renders it either as one chat.completion object
    or as chat.completion.chunk events. The reply is a pure function of the
    request (but for ids), so a test can compare a direct call with a call
    through the gateway:

        content           "Mock reply to: " + first 12 words of the last user
                          message (after any "[mock ...]" prefix), or
                          "w1 w2 ... wN" when chunks=N is in force
        completion_tokens number of words in content; one stream chunk each
                          (max_tokens / max_completion_tokens cut it short,
                          with finish_reason "length")
        prompt_tokens     ceil (bytes of all message text / 4)

    Tool calls, like the real API:

        tool=NAME         when "tools" has a function NAME, tool_choice is
                          not "none" and the last message is not a tool
                          result, the answer is one call to NAME (content
                          null, finish_reason "tool_calls"). Its arguments
                          are {"id":"<hex>"} when NAME's parameters have an
                          "id" property or NAME contains "retrieve" (hex:
                          the first 32 lowercase hex digits after the text
                          "retrieve with id " in any message, else ""),
                          otherwise {}. Streamed, the arguments come in a
                          few pieces; each counts as one completion token.
        last msg is tool  content "Mock reply to tool result: " + the first
                          80 characters of that message's text, whitespace
                          kept; tool=NAME does not apply, nor chunks=N
        validation        a tool message must answer an id in the tool_calls
                          of the assistant message before it, and every such
                          id must be answered before the next other message;
                          otherwise 400 with the real API's wording
    =========================================================================
*/
#ifndef MOCK_CHAT_H_INCLUDED
#define MOCK_CHAT_H_INCLUDED

#include "mock_buf.h"
#include "mock_control.h"
#include "mock_error.h"

#include <stdbool.h>

#define MOCK_CHAT_USER_WORDS 12
#define MOCK_CHAT_TOOL_CHARS 80 //  of a tool result quoted back
//  Room for the longest reply: 5 prefix words + 40 one-letter words
#define MOCK_CHAT_MAX_WORDS 64

typedef struct {
    char id[48];           //  chatcmpl-...
    long long created;     //  unix seconds
    char model[64];        //  raw model name, cut short, for error messages
    mock_buf_t model_json; //  model as a quoted JSON string, ready to paste
    bool stream;
    bool include_usage;
    mock_control_t ctl; //  defaults with the request's [mock ...] applied
    long long prompt_tokens;
    int words;              //  completion_tokens: words, or argument pieces
    char finish_reason[16]; //  "stop", "tool_calls", or "length" when max_tokens cut it
    bool tool_call;         //  answer with a call to ctl.tool instead of text
    char call_id[32];       //  call_ and 24 base62 chars
    mock_buf_t text;        //  reply text, or the call's arguments (unused when ctl.chunks >= 0)
    //  Words of text (or argument pieces); stream chunk i carries word i and
    //  the blanks after it, up to word i + 1
    size_t word_off[MOCK_CHAT_MAX_WORDS];
    size_t word_len[MOCK_CHAT_MAX_WORDS];
    mock_buf_t head; //  stream: the JSON every chunk starts with
} mock_chat_t;

//  Parse and validate a request body. On success fills self and returns
//  true; otherwise fills err (self needs mock_chat_free either way).
bool mock_chat_parse (mock_chat_t *self, const char *body, size_t len,
                      const mock_control_t *defaults, mock_error_t *err);

//  Release what parse allocated
void mock_chat_free (mock_chat_t *self);

//  Append the non-stream chat.completion body
void mock_chat_render (mock_chat_t *self, mock_buf_t *out);

//  Stream events, each a complete "data: ...\n\n" block
void mock_chat_event_role (mock_chat_t *self, mock_buf_t *out);
void mock_chat_event_word (mock_chat_t *self, int index, mock_buf_t *out);
void mock_chat_event_finish (mock_chat_t *self, mock_buf_t *out);
void mock_chat_event_usage (mock_chat_t *self, mock_buf_t *out);
void mock_chat_event_done (mock_buf_t *out);

#endif
