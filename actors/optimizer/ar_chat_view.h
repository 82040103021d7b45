/*  ar_chat_view: one reading of the two request shapes every strategy must understand, so a
    strategy asks "role? tool calls? text? tokens?" once instead of knowing both wire formats.

      OpenAI chat:         {model, messages[{role, content (string | parts), tool_calls,
                            tool_call_id}], tools[{type, function{name, description, ...}}],
                            tool_choice, max_tokens, max_completion_tokens, temperature}
      Anthropic messages:  {model, system (string | blocks), messages[{role, content (string |
                            blocks: text, tool_use{id,name,input}, tool_result{tool_use_id,
                            content})}], tools[{name, description, input_schema}],
                            tool_choice{type, name}, max_tokens, temperature}

    Everything here reads a DOM that may have any shape: a member of the wrong type reads as
    absent, never as a crash. The validators say whether a request is one the provider would
    accept structurally (roles, tool call/result pairing, Anthropic alternation); strategies that
    move messages only touch requests that pass them, and the tests check every output with them.
*/
#ifndef AR_CHAT_VIEW_H
#define AR_CHAT_VIEW_H

#include "ar_line_set.h"
#include "ar_strategy.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    AR_CHAT_ROLE_OTHER,     // missing or unknown role
    AR_CHAT_ROLE_SYSTEM,    // OpenAI "system" / "developer" (Anthropic keeps it outside)
    AR_CHAT_ROLE_USER,      // "user" (Anthropic tool_result messages included)
    AR_CHAT_ROLE_ASSISTANT, // "assistant"
    AR_CHAT_ROLE_TOOL,      // OpenAI "tool" / legacy "function"
} ar_chat_role_t;

//  Called for each piece of text; return nothing, pieces are not NUL-terminated.
typedef void (ar_chat_text_fn) (const char *text, size_t len, void *arg);
//  Called for each tool call a message makes (id and name may be NULL when absent).
typedef void (ar_chat_call_fn) (const char *id, const char *name, void *arg);

//  The messages array, or NULL when absent or not an array.
json_t *ar_chat_view_messages (const json_t *request);
ar_chat_role_t ar_chat_view_role (ar_shape_t shape, const json_t *message);
//  True for a user turn a person wrote: OpenAI role user; Anthropic role user with some content
//  that is not a tool_result block.
bool ar_chat_view_is_user_text (ar_shape_t shape, const json_t *message);
//  True when the message answers tool calls: OpenAI tool/function; Anthropic user message with
//  a tool_result block.
bool ar_chat_view_has_results (ar_shape_t shape, const json_t *message);
//  True when messages[index] is what a tool returned and the agent reads back: a message with
//  tool results (above), or, for agents that carry command output in plain user turns
//  (mini-swe-agent, SWE-agent and their kind), a user turn that is not the first one and
//  follows an assistant turn that ends with a fenced action (```...```), or whose text opens
//  like a command's result ("<returncode>", "<output>", "OBSERVATION:").
bool ar_chat_view_is_observation (ar_shape_t shape, const json_t *messages, size_t index);
//  Offset of the fenced block text[0, len) ends with (its opening ``` at a line start), or -1:
//  the action of an agent that writes its command in text (mini-swe-agent, SWE-agent).
long ar_chat_view_action_fence (const char *text, size_t len);
//  Add to set the lines message (as it will be sent) keeps in front of the model: all the text
//  of a user, tool or system message; of an assistant turn only its action (tool call
//  arguments' strings, the fenced command its text ends with), since window_budget may elide
//  the prose around it. -1 when memory runs out.
int ar_chat_view_add_shown_lines (ar_shape_t shape, const json_t *message, ar_line_set_t *set);
//  Index of the last user turn (text_only: the last one a person wrote, see
//  ar_chat_view_is_user_text), or the array's size when there is none.
size_t ar_chat_view_last_user (ar_shape_t shape, const json_t *messages, bool text_only);

//  The natural-language text of a message (string content, text parts/blocks, tool_result
//  text). With tool_data, also tool call names and arguments (tool_use input as compact JSON):
//  everything the model reads, which is what tokens are counted over.
void ar_chat_view_message_text (ar_shape_t shape, const json_t *message, bool tool_data,
                                ar_chat_text_fn *fn, void *arg);
//  The tool calls a message makes: OpenAI assistant tool_calls, Anthropic tool_use blocks.
size_t ar_chat_view_each_call (ar_shape_t shape, const json_t *message, ar_chat_call_fn *fn,
                               void *arg);
//  The tool call ids a message answers: OpenAI tool_call_id, Anthropic tool_result ids.
size_t ar_chat_view_each_result (ar_shape_t shape, const json_t *message, ar_chat_call_fn *fn,
                                 void *arg);

//  Tools: name and description of one definition (NULL when absent or not a string).
const char *ar_chat_view_tool_name (ar_shape_t shape, const json_t *tool);
const char *ar_chat_view_tool_description (ar_shape_t shape, const json_t *tool);
//  The tool tool_choice names ({"type":"function","function":{"name"}} or
//  {"type":"tool","name"}), NULL when it names none.
const char *ar_chat_view_tool_choice_name (ar_shape_t shape, const json_t *request);

//  Tokens (o200k_base) of one message: its text with tool data. 0 for a non-object.
int64_t ar_chat_view_message_tokens (ar_shape_t shape, const json_t *message,
                                     ar_tokenizer_t *tokenizer);
//  Tokens of everything but the messages: system prompt (Anthropic) and tool definitions
//  (compact JSON of each).
int64_t ar_chat_view_other_tokens (ar_shape_t shape, const json_t *request,
                                   ar_tokenizer_t *tokenizer);
//  Tokens of the whole request: messages + system + tool definitions. -1 when the request is
//  not an object.
//  Tokens of one text, memoized per thread by its hash and length: the pipeline counts the same
//  texts again and again (before and after each strategy, and every turn of an agent loop).
int64_t ar_chat_view_text_tokens (ar_tokenizer_t *tokenizer, const char *text, size_t len);
int64_t ar_chat_view_count_tokens (ar_shape_t shape, const json_t *request,
                                   ar_tokenizer_t *tokenizer);

//  0 when the request is structurally valid for its API, else -1 with the reason in why.
int ar_chat_view_validate (ar_shape_t shape, const json_t *request, char *why, size_t why_size);

void ar_chat_view_test (bool verbose);

#endif
