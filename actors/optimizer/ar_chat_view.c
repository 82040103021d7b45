/*  ar_chat_view: both request shapes behind one reading (see the header). */
#include "ar_chat_view.h"
#include "ar_line_set.h"
#include "ar_text_hash.h"
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

static bool s_is (const json_t *object, const char *key, const char *value)
{
    const char *s = s_str (object, key);
    return s && strcmp (s, value) == 0;
}

static void s_emit (const json_t *string, ar_chat_text_fn *fn, void *arg)
{
    if (json_is_string (string) && json_string_length (string))
        fn (json_string_value (string), json_string_length (string), arg);
}

//  Compact JSON of any value, for tool_use input and tool definitions.
static void s_emit_json (const json_t *value, ar_chat_text_fn *fn, void *arg)
{
    if (!value)
        return;
    char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text)
        fn (text, strlen (text), arg);
    free (text);
}

json_t *ar_chat_view_messages (const json_t *request)
{
    json_t *messages = json_object_get (request, "messages");
    return json_is_array (messages) ? messages : NULL;
}

ar_chat_role_t ar_chat_view_role (ar_shape_t shape, const json_t *message)
{
    const char *role = s_str (message, "role");
    if (!role)
        return AR_CHAT_ROLE_OTHER;
    if (strcmp (role, "user") == 0)
        return AR_CHAT_ROLE_USER;
    if (strcmp (role, "assistant") == 0)
        return AR_CHAT_ROLE_ASSISTANT;
    if (shape == AR_SHAPE_OPENAI_CHAT) {
        if (strcmp (role, "system") == 0 || strcmp (role, "developer") == 0)
            return AR_CHAT_ROLE_SYSTEM;
        if (strcmp (role, "tool") == 0 || strcmp (role, "function") == 0)
            return AR_CHAT_ROLE_TOOL;
    }
    return AR_CHAT_ROLE_OTHER;
}

bool ar_chat_view_has_results (ar_shape_t shape, const json_t *message)
{
    if (shape == AR_SHAPE_OPENAI_CHAT)
        return ar_chat_view_role (shape, message) == AR_CHAT_ROLE_TOOL;
    json_t *content = json_object_get (message, "content");
    size_t i;
    json_t *block;
    json_array_foreach (content, i, block)
    {
        if (s_is (block, "type", "tool_result"))
            return true;
    }
    return false;
}

//  The first string of a message's content: its text, or its first text part or block.
static const char *s_first_text (const json_t *message)
{
    json_t *content = json_object_get (message, "content");
    if (json_is_string (content))
        return json_string_value (content);
    size_t i;
    json_t *part;
    json_array_foreach (content, i, part)
    {
        const char *text = json_string_value (json_object_get (part, "text"));
        if (text)
            return text;
    }
    return NULL;
}

//  An assistant turn that ends with a fenced block: an agent's action, by convention last.
static bool s_ends_with_fence (const char *text)
{
    size_t len = text ? strlen (text) : 0;
    while (len && strchr (" \t\r\n", text[len - 1]))
        len--;
    return len >= 6 && memcmp (text + len - 3, "```", 3) == 0;
}

bool ar_chat_view_is_observation (ar_shape_t shape, const json_t *messages, size_t index)
{
    const json_t *message = json_array_get (messages, index);
    if (ar_chat_view_has_results (shape, message))
        return true;
    if (index == 0 || ar_chat_view_role (shape, message) != AR_CHAT_ROLE_USER ||
        ar_chat_view_role (shape, json_array_get (messages, index - 1)) != AR_CHAT_ROLE_ASSISTANT)
        return false;
    bool earlier_user = false;
    for (size_t i = 0; i < index && !earlier_user; i++)
        earlier_user = ar_chat_view_role (shape, json_array_get (messages, i)) == AR_CHAT_ROLE_USER;
    if (!earlier_user)
        return false; // the first user turn states the task
    const char *text = s_first_text (message);
    if (!text)
        return false;
    while (*text && strchr (" \t\r\n", *text))
        text++;
    static const char *const opens[] = {"<returncode>", "<output>", "OBSERVATION:", "Observation:"};
    for (size_t i = 0; i < sizeof opens / sizeof opens[0]; i++)
        if (strncmp (text, opens[i], strlen (opens[i])) == 0)
            return true;
    return s_ends_with_fence (s_first_text (json_array_get (messages, index - 1)));
}

long ar_chat_view_action_fence (const char *text, size_t len)
{
    while (len && strchr (" \t\r\n", text[len - 1]))
        len--;
    if (len < 6 || memcmp (text + len - 3, "```", 3) != 0)
        return -1;
    size_t close = len - 3;
    if (close > 0 && text[close - 1] != '\n')
        return -1; // "```" ending a line of prose or a one-line `` ```x``` ``: not a block
    for (size_t i = close; i-- > 0;)
        if ((i == 0 || text[i - 1] == '\n') && len - i >= 3 && memcmp (text + i, "```", 3) == 0 &&
            i + 3 < close)
            return (long)i;
    return -1;
}

typedef struct {
    ar_line_set_t *set;
    bool oom;
} s_shown_sink_t;

static void s_add_shown_text (const char *text, size_t len, void *arg)
{
    s_shown_sink_t *sink = (s_shown_sink_t *)arg;
    if (!sink->oom && ar_line_set_add_text (sink->set, text, len) != 0)
        sink->oom = true;
}

//  The string leaves of a tool call's arguments (a command, a file's new text), depth-bounded.
static void s_add_shown_json (const json_t *value, int depth, s_shown_sink_t *sink)
{
    if (json_is_string (value))
        s_add_shown_text (json_string_value (value), json_string_length (value), sink);
    else if (depth < 4 && json_is_object (value)) {
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *)value, key, member)
            s_add_shown_json (member, depth + 1, sink);
    } else if (depth < 4 && json_is_array (value)) {
        size_t i;
        json_t *item;
        json_array_foreach (value, i, item) s_add_shown_json (item, depth + 1, sink);
    }
}

int ar_chat_view_add_shown_lines (ar_shape_t shape, const json_t *message, ar_line_set_t *later)
{
    s_shown_sink_t sink = {later, false};
    if (ar_chat_view_role (shape, message) != AR_CHAT_ROLE_ASSISTANT) {
        ar_chat_view_message_text (shape, message, false, s_add_shown_text, &sink);
        return sink.oom ? -1 : 0;
    }
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get (message, "tool_calls"), i, item)
    {
        json_t *args = json_object_get (json_object_get (item, "function"), "arguments");
        json_t *parsed =
            json_is_string (args) ? json_loads (json_string_value (args), 0, NULL) : NULL;
        s_add_shown_json (parsed, 0, &sink);
        json_decref (parsed);
    }
    json_t *content = json_object_get (message, "content");
    const char *last = json_string_value (content);
    size_t last_len = json_string_length (content);
    json_array_foreach (content, i, item)
    {
        const char *type = json_string_value (json_object_get (item, "type"));
        if (type && strcmp (type, "tool_use") == 0)
            s_add_shown_json (json_object_get (item, "input"), 0, &sink);
        else if (type && strcmp (type, "text") == 0 &&
                 json_is_string (json_object_get (item, "text"))) {
            last = json_string_value (json_object_get (item, "text"));
            last_len = json_string_length (json_object_get (item, "text"));
        }
    }
    long fence = last ? ar_chat_view_action_fence (last, last_len) : -1;
    if (fence >= 0)
        s_add_shown_text (last + fence, last_len - (size_t)fence, &sink);
    return sink.oom ? -1 : 0;
}

size_t ar_chat_view_last_user (ar_shape_t shape, const json_t *messages, bool text_only)
{
    for (size_t i = json_array_size (messages); i-- > 0;) {
        const json_t *message = json_array_get (messages, i);
        if (text_only ? ar_chat_view_is_user_text (shape, message)
                      : ar_chat_view_role (shape, message) == AR_CHAT_ROLE_USER)
            return i;
    }
    return json_array_size (messages);
}

//  An elision marker a strategy left ("[anyray: 12 earlier messages elided; ...]") is ours,
//  not the person's: it must not become "the latest user turn" the next strategy reads.
static bool s_is_marker (const json_t *text)
{
    const char *value = json_string_value (text);
    return value && strncmp (value, "[anyray: ", 9) == 0;
}

bool ar_chat_view_is_user_text (ar_shape_t shape, const json_t *message)
{
    if (ar_chat_view_role (shape, message) != AR_CHAT_ROLE_USER)
        return false;
    json_t *content = json_object_get (message, "content");
    if (!json_is_array (content))
        return !s_is_marker (content);
    size_t i;
    json_t *block;
    json_array_foreach (content, i, block)
    {
        if (shape == AR_SHAPE_OPENAI_CHAT && !s_is_marker (json_object_get (block, "text")))
            return true;
        if (shape == AR_SHAPE_ANTHROPIC_MESSAGES && !s_is (block, "type", "tool_result") &&
            !s_is_marker (json_object_get (block, "text")))
            return true;
    }
    return shape == AR_SHAPE_OPENAI_CHAT && json_array_size (content) == 0;
}

//  Content that is a string or an array of parts/blocks with "text" (OpenAI parts and Anthropic
//  text blocks alike); tool_result blocks carry their own content, one level down.
static void s_content_text (const json_t *content, bool tool_data, ar_chat_text_fn *fn, void *arg,
                            int depth)
{
    if (json_is_string (content)) {
        s_emit (content, fn, arg);
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach (content, i, part)
    {
        const char *type = s_str (part, "type");
        if (!type)
            continue;
        if (strcmp (type, "text") == 0)
            s_emit (json_object_get (part, "text"), fn, arg);
        else if (strcmp (type, "tool_result") == 0 && depth == 0)
            s_content_text (json_object_get (part, "content"), tool_data, fn, arg, depth + 1);
        else if (strcmp (type, "tool_use") == 0 && tool_data) {
            s_emit (json_object_get (part, "name"), fn, arg);
            s_emit_json (json_object_get (part, "input"), fn, arg);
        }
    }
}

void ar_chat_view_message_text (ar_shape_t shape, const json_t *message, bool tool_data,
                                ar_chat_text_fn *fn, void *arg)
{
    if (!json_is_object (message))
        return;
    s_content_text (json_object_get (message, "content"), tool_data, fn, arg, 0);
    if (shape == AR_SHAPE_OPENAI_CHAT && tool_data) {
        size_t i;
        json_t *call;
        json_array_foreach (json_object_get (message, "tool_calls"), i, call)
        {
            json_t *function = json_object_get (call, "function");
            s_emit (json_object_get (function, "name"), fn, arg);
            s_emit (json_object_get (function, "arguments"), fn, arg);
        }
    }
}

size_t ar_chat_view_each_call (ar_shape_t shape, const json_t *message, ar_chat_call_fn *fn,
                               void *arg)
{
    size_t count = 0, i;
    json_t *item;
    if (ar_chat_view_role (shape, message) != AR_CHAT_ROLE_ASSISTANT)
        return 0;
    if (shape == AR_SHAPE_OPENAI_CHAT) {
        json_array_foreach (json_object_get (message, "tool_calls"), i, item)
        {
            if (fn)
                fn (s_str (item, "id"), s_str (json_object_get (item, "function"), "name"), arg);
            count++;
        }
    } else {
        json_array_foreach (json_object_get (message, "content"), i, item)
        {
            if (!s_is (item, "type", "tool_use"))
                continue;
            if (fn)
                fn (s_str (item, "id"), s_str (item, "name"), arg);
            count++;
        }
    }
    return count;
}

size_t ar_chat_view_each_result (ar_shape_t shape, const json_t *message, ar_chat_call_fn *fn,
                                 void *arg)
{
    if (shape == AR_SHAPE_OPENAI_CHAT) {
        if (ar_chat_view_role (shape, message) != AR_CHAT_ROLE_TOOL)
            return 0;
        if (fn)
            fn (s_str (message, "tool_call_id"), NULL, arg);
        return 1;
    }
    if (ar_chat_view_role (shape, message) != AR_CHAT_ROLE_USER)
        return 0;
    size_t count = 0, i;
    json_t *block;
    json_array_foreach (json_object_get (message, "content"), i, block)
    {
        if (!s_is (block, "type", "tool_result"))
            continue;
        if (fn)
            fn (s_str (block, "tool_use_id"), NULL, arg);
        count++;
    }
    return count;
}

const char *ar_chat_view_tool_name (ar_shape_t shape, const json_t *tool)
{
    //  OpenAI function tools nest it; custom tools and Anthropic tools do not.
    const char *name = s_str (json_object_get (tool, "function"), "name");
    return name ? name : s_str (tool, "name");
}

const char *ar_chat_view_tool_description (ar_shape_t shape, const json_t *tool)
{
    const char *doc = s_str (json_object_get (tool, "function"), "description");
    return doc ? doc : s_str (tool, "description");
}

const char *ar_chat_view_tool_choice_name (ar_shape_t shape, const json_t *request)
{
    json_t *choice = json_object_get (request, "tool_choice");
    if (!json_is_object (choice))
        return NULL;
    const char *name = s_str (json_object_get (choice, "function"), "name");
    return name ? name : s_str (choice, "name");
}

typedef struct {
    ar_tokenizer_t *tokenizer;
    int64_t tokens;
} s_count_t;

//  Token counts are memoized per thread by a 64-bit hash of the text: the pipeline counts the
//  same request several times (before, after each strategy, inside window_budget) and agent
//  loops resend the same history every turn, and hashing is ~100x cheaper than BPE. A piece is
//  only ever looked up with its length and full hash, so a wrong count needs a 64-bit
//  collision. Short pieces are cheaper to count than to look up.
#define S_MEMO_BITS 13 // 8192 entries, 128 KB per thread
#define S_MEMO_MIN  64 // bytes

typedef struct {
    uint64_t hash;
    uint32_t len, tokens;
} s_memo_t;

static _Thread_local s_memo_t s_memo[1u << S_MEMO_BITS];

int64_t ar_chat_view_text_tokens (ar_tokenizer_t *tokenizer, const char *text, size_t len)
{
    if (len < S_MEMO_MIN || len > UINT32_MAX)
        return (int64_t)ar_tokenizer_count (tokenizer, text, len);
    uint64_t hash = ar_text_hash (text, len);
    s_memo_t *memo = &s_memo[hash >> (64 - S_MEMO_BITS)];
    if (memo->hash != hash || memo->len != len) {
        size_t tokens = ar_tokenizer_count (tokenizer, text, len);
        *memo = (s_memo_t){hash, (uint32_t)len, (uint32_t)tokens};
    }
    return memo->tokens;
}

static void s_count_piece (const char *text, size_t len, void *arg)
{
    s_count_t *count = (s_count_t *)arg;
    count->tokens += ar_chat_view_text_tokens (count->tokenizer, text, len);
}

int64_t ar_chat_view_message_tokens (ar_shape_t shape, const json_t *message,
                                     ar_tokenizer_t *tokenizer)
{
    s_count_t count = {tokenizer, 0};
    ar_chat_view_message_text (shape, message, true, s_count_piece, &count);
    return count.tokens;
}

int64_t ar_chat_view_other_tokens (ar_shape_t shape, const json_t *request,
                                   ar_tokenizer_t *tokenizer)
{
    s_count_t count = {tokenizer, 0};
    if (shape == AR_SHAPE_ANTHROPIC_MESSAGES)
        s_content_text (json_object_get (request, "system"), false, s_count_piece, &count, 1);
    size_t i;
    json_t *tool;
    json_array_foreach (json_object_get (request, "tools"), i, tool)
        s_emit_json (tool, s_count_piece, &count);
    return count.tokens;
}

int64_t ar_chat_view_count_tokens (ar_shape_t shape, const json_t *request,
                                   ar_tokenizer_t *tokenizer)
{
    if (!json_is_object (request) || !tokenizer)
        return -1;
    int64_t tokens = ar_chat_view_other_tokens (shape, request, tokenizer);
    size_t i;
    json_t *message;
    json_array_foreach (ar_chat_view_messages (request), i, message) tokens +=
        ar_chat_view_message_tokens (shape, message, tokenizer);
    return tokens;
}

//  --------------------------------------------------------------------------------------------
//  Validators

static int s_why (char *why, size_t size, const char *format, ...)
{
    if (why && size) {
        va_list args;
        va_start (args, format);
        vsnprintf (why, size, format, args);
        va_end (args);
    }
    return -1;
}

//  Ids of tool calls still waiting for their result.
typedef struct {
    const char *ids[256];
    size_t count;
    bool bad; // a call without an id, or too many at once
} s_pending_t;

static void s_pending_add (const char *id, const char *name, void *arg)
{
    s_pending_t *pending = (s_pending_t *)arg;
    if (!id || !name || pending->count == 256)
        pending->bad = true;
    else
        pending->ids[pending->count++] = id;
}

static void s_pending_answer (const char *id, const char *name, void *arg)
{
    s_pending_t *pending = (s_pending_t *)arg;
    for (size_t i = 0; id && i < pending->count; i++)
        if (strcmp (pending->ids[i], id) == 0) {
            pending->ids[i] = pending->ids[--pending->count];
            return;
        }
    pending->bad = true; // answers no open call
}

static bool s_valid_content (const json_t *content, bool null_ok)
{
    if (json_is_string (content) || (null_ok && (!content || json_is_null (content))))
        return true;
    if (!json_is_array (content))
        return false;
    size_t i;
    json_t *part;
    json_array_foreach (content, i, part)
    {
        if (!s_str (part, "type"))
            return false;
        if (s_is (part, "type", "text") && !json_is_string (json_object_get (part, "text")))
            return false;
    }
    return true;
}

static int s_validate_openai (const json_t *messages, char *why, size_t size)
{
    s_pending_t pending = {.count = 0};
    size_t i;
    json_t *message;
    json_array_foreach (messages, i, message)
    {
        ar_chat_role_t role = ar_chat_view_role (AR_SHAPE_OPENAI_CHAT, message);
        if (role == AR_CHAT_ROLE_OTHER)
            return s_why (why, size, "messages[%zu].role: unknown", i);
        if (role != AR_CHAT_ROLE_TOOL && pending.count)
            return s_why (why, size, "messages[%zu]: tool calls before it are unanswered", i);
        if (role == AR_CHAT_ROLE_TOOL) {
            ar_chat_view_each_result (AR_SHAPE_OPENAI_CHAT, message, s_pending_answer, &pending);
            if (pending.bad)
                return s_why (why, size, "messages[%zu]: tool result answers no open call", i);
            if (!json_is_string (json_object_get (message, "content")) &&
                !s_valid_content (json_object_get (message, "content"), false))
                return s_why (why, size, "messages[%zu].content: invalid", i);
            continue;
        }
        json_t *calls = json_object_get (message, "tool_calls");
        if (calls && !json_is_array (calls))
            return s_why (why, size, "messages[%zu].tool_calls: must be an array", i);
        size_t opened =
            ar_chat_view_each_call (AR_SHAPE_OPENAI_CHAT, message, s_pending_add, &pending);
        if (calls && role != AR_CHAT_ROLE_ASSISTANT)
            return s_why (why, size, "messages[%zu].tool_calls: only assistants call tools", i);
        if (pending.bad)
            return s_why (why, size, "messages[%zu].tool_calls: a call lacks id or name", i);
        bool null_ok = role == AR_CHAT_ROLE_ASSISTANT;
        if (!s_valid_content (json_object_get (message, "content"), null_ok))
            return s_why (why, size, "messages[%zu].content: invalid", i);
        if (role == AR_CHAT_ROLE_ASSISTANT && !opened &&
            !json_is_string (json_object_get (message, "content")) &&
            !json_is_array (json_object_get (message, "content")))
            return s_why (why, size, "messages[%zu]: assistant without content or calls", i);
    }
    if (pending.count)
        return s_why (why, size, "messages: the last tool calls are unanswered");
    return 0;
}

static int s_validate_anthropic (const json_t *request, const json_t *messages, char *why,
                                 size_t size)
{
    json_t *system = json_object_get (request, "system");
    if (system && !json_is_string (system) && !s_valid_content (system, false))
        return s_why (why, size, "system: must be a string or text blocks");
    if (!json_is_integer (json_object_get (request, "max_tokens")))
        return s_why (why, size, "max_tokens: required integer");
    s_pending_t pending = {.count = 0};
    size_t i;
    json_t *message;
    json_array_foreach (messages, i, message)
    {
        ar_chat_role_t role = ar_chat_view_role (AR_SHAPE_ANTHROPIC_MESSAGES, message);
        ar_chat_role_t want = i % 2 ? AR_CHAT_ROLE_ASSISTANT : AR_CHAT_ROLE_USER;
        if (role != want)
            return s_why (why, size, "messages[%zu].role: must be %s (alternation)", i,
                          want == AR_CHAT_ROLE_USER ? "user" : "assistant");
        json_t *content = json_object_get (message, "content");
        if (!s_valid_content (content, false) ||
            (json_is_array (content) && json_array_size (content) == 0))
            return s_why (why, size, "messages[%zu].content: invalid", i);
        if (role == AR_CHAT_ROLE_USER) {
            //  Every call of the assistant before must be answered here, and only those.
            ar_chat_view_each_result (AR_SHAPE_ANTHROPIC_MESSAGES, message, s_pending_answer,
                                      &pending);
            if (pending.bad)
                return s_why (why, size, "messages[%zu]: tool_result answers no open call", i);
            if (pending.count)
                return s_why (why, size, "messages[%zu]: tool_use left unanswered", i);
        } else {
            if (ar_chat_view_has_results (AR_SHAPE_ANTHROPIC_MESSAGES, message))
                return s_why (why, size, "messages[%zu]: tool_result in an assistant turn", i);
            ar_chat_view_each_call (AR_SHAPE_ANTHROPIC_MESSAGES, message, s_pending_add, &pending);
            if (pending.bad)
                return s_why (why, size, "messages[%zu]: a tool_use lacks id or name", i);
        }
    }
    //  A trailing assistant turn (prefill) may not leave calls open either.
    if (pending.count)
        return s_why (why, size, "messages: the last tool_use is unanswered");
    return 0;
}

int ar_chat_view_validate (ar_shape_t shape, const json_t *request, char *why, size_t why_size)
{
    if (!json_is_object (request))
        return s_why (why, why_size, "request: must be an object");
    json_t *messages = ar_chat_view_messages (request);
    if (!messages || json_array_size (messages) == 0)
        return s_why (why, why_size, "messages: must be a non-empty array");
    json_t *tools = json_object_get (request, "tools");
    if (tools) {
        if (!json_is_array (tools))
            return s_why (why, why_size, "tools: must be an array");
        size_t i;
        json_t *tool;
        json_array_foreach (tools, i, tool)
        {
            if (!ar_chat_view_tool_name (shape, tool))
                return s_why (why, why_size, "tools[%zu]: has no name", i);
        }
    }
    if (shape == AR_SHAPE_OPENAI_CHAT)
        return s_validate_openai (messages, why, why_size);
    return s_validate_anthropic (request, messages, why, why_size);
}

//  --------------------------------------------------------------------------------------------

static void s_collect (const char *id, const char *name, void *arg)
{
    char *out = (char *)arg;
    strcat (out, id ? id : "-");
    strcat (out, ":");
    strcat (out, name ? name : "-");
    strcat (out, ";");
}

static json_t *s_load (const char *text)
{
    json_t *json = json_loads (text, 0, NULL);
    assert (json);
    return json;
}

//  The action an agent writes in text, and the lines a message keeps in front of the model.
static void s_test_actions (void)
{
    const char *turn = "THOUGHT: look.\n\n```python\nx = 1\n```\n\n```bash\nls -la\n```\n";
    long at = ar_chat_view_action_fence (turn, strlen (turn));
    assert (at > 0 && strncmp (turn + at, "```bash\nls -la\n```", 18) == 0);
    assert (ar_chat_view_action_fence ("no fence", 8) == -1);
    assert (ar_chat_view_action_fence ("say ```x```", 11) == -1); // inline, not a block
    ar_line_set_t *set = ar_line_set_new ();
    assert (set);
    json_t *assistant = json_pack ("{s:s, s:s}", "role", "assistant", "content", turn);
    json_t *calls =
        json_pack ("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role", "assistant", "content",
                   "tool_calls", "id", "c1", "type", "function", "function", "name", "bash",
                   "arguments", "{\"command\":\"cat <<'EOF' > a.py\\nprint(2)\\nEOF\"}");
    json_t *tool = json_pack ("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", "c1", "content",
                              "line one of output\nline two");
    assert (ar_chat_view_add_shown_lines (AR_SHAPE_OPENAI_CHAT, assistant, set) == 0);
    assert (ar_chat_view_add_shown_lines (AR_SHAPE_OPENAI_CHAT, calls, set) == 0);
    assert (ar_chat_view_add_shown_lines (AR_SHAPE_OPENAI_CHAT, tool, set) == 0);
    assert (ar_line_set_has (set, "ls -la", 6) && ar_line_set_has (set, "print(2)", 8));
    assert (ar_line_set_has (set, "line one of output", 18) &&
            ar_line_set_has (set, "line two", 8));
    assert (!ar_line_set_has (set, "THOUGHT: look.", 14)); // prose may be elided
    assert (!ar_line_set_has (set, "x = 1", 5));           // so may drafted code
    json_decref (assistant);
    json_decref (calls);
    json_decref (tool);
    ar_line_set_destroy (&set);
}

void ar_chat_view_test (bool verbose)
{
    ar_tokenizer_t *tok = ar_tokenizer_new ();
    assert (tok);
    s_test_actions ();
    char why[128];

    //  OpenAI: roles, calls, results, text.
    json_t *oa = s_load (
        "{\"model\":\"m\",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"grep\"}},"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"grep\",\"description\":"
        "\"search files\"}}],\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"find foo\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"grep\",\"arguments\":\"{\\\"q\\\":\\\"foo\\\"}\"}}]}"
        ","
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"a.c:1: foo\"}]}");
    json_t *m = ar_chat_view_messages (oa);
    assert (json_array_size (m) == 4);
    assert (ar_chat_view_role (AR_SHAPE_OPENAI_CHAT, json_array_get (m, 0)) == AR_CHAT_ROLE_SYSTEM);
    assert (ar_chat_view_is_user_text (AR_SHAPE_OPENAI_CHAT, json_array_get (m, 1)));
    assert (ar_chat_view_has_results (AR_SHAPE_OPENAI_CHAT, json_array_get (m, 3)));
    char calls[256] = "";
    assert (ar_chat_view_each_call (AR_SHAPE_OPENAI_CHAT, json_array_get (m, 2), s_collect,
                                    calls) == 1);
    assert (strcmp (calls, "c1:grep;") == 0);
    calls[0] = 0;
    assert (ar_chat_view_each_result (AR_SHAPE_OPENAI_CHAT, json_array_get (m, 3), s_collect,
                                      calls) == 1);
    assert (strcmp (calls, "c1:-;") == 0);
    assert (strcmp (ar_chat_view_tool_choice_name (AR_SHAPE_OPENAI_CHAT, oa), "grep") == 0);
    json_t *tool = json_array_get (json_object_get (oa, "tools"), 0);
    assert (strcmp (ar_chat_view_tool_name (AR_SHAPE_OPENAI_CHAT, tool), "grep") == 0);
    assert (strcmp (ar_chat_view_tool_description (AR_SHAPE_OPENAI_CHAT, tool), "search files") ==
            0);
    assert (ar_chat_view_validate (AR_SHAPE_OPENAI_CHAT, oa, why, sizeof why) == 0);
    //  Tokens: the sum of the parts, each counted alone.
    int64_t total = ar_chat_view_count_tokens (AR_SHAPE_OPENAI_CHAT, oa, tok);
    int64_t want = 0;
    const char *pieces[] = {"be brief", "find foo", "grep", "{\"q\":\"foo\"}", "a.c:1: foo"};
    for (size_t i = 0; i < 5; i++)
        want += (int64_t)ar_tokenizer_count (tok, pieces[i], strlen (pieces[i]));
    char *tooljson = json_dumps (tool, JSON_COMPACT);
    want += (int64_t)ar_tokenizer_count (tok, tooljson, strlen (tooljson));
    free (tooljson);
    assert (total == want);
    //  An orphan tool result, an unanswered call, a bad role.
    json_t *bad = json_deep_copy (oa);
    json_array_remove (ar_chat_view_messages (bad), 2);
    assert (ar_chat_view_validate (AR_SHAPE_OPENAI_CHAT, bad, why, sizeof why) == -1);
    json_decref (bad);
    bad = json_deep_copy (oa);
    json_array_remove (ar_chat_view_messages (bad), 3);
    assert (ar_chat_view_validate (AR_SHAPE_OPENAI_CHAT, bad, why, sizeof why) == -1);
    json_object_set_new (json_array_get (ar_chat_view_messages (bad), 0), "role",
                         json_string ("wizard"));
    assert (ar_chat_view_validate (AR_SHAPE_OPENAI_CHAT, bad, why, sizeof why) == -1);
    json_decref (bad);
    json_decref (oa);

    //  Anthropic: system blocks, tool_use/tool_result, alternation.
    json_t *an = s_load (
        "{\"model\":\"c\",\"max_tokens\":100,\"system\":[{\"type\":\"text\",\"text\":\"sys\"}],"
        "\"tool_choice\":{\"type\":\"tool\",\"name\":\"ls\"},\"tools\":[{\"name\":\"ls\","
        "\"description\":\"list\",\"input_schema\":{\"type\":\"object\"}}],\"messages\":["
        "{\"role\":\"user\",\"content\":\"list it\"},{\"role\":\"assistant\",\"content\":["
        "{\"type\":\"text\",\"text\":\"ok\"},{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"ls\","
        "\"input\":{\"d\":\"/\"}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"t1\",\"content\":[{\"type\":\"text\",\"text\":\"bin etc\"}]}]}]}");
    m = ar_chat_view_messages (an);
    assert (ar_chat_view_validate (AR_SHAPE_ANTHROPIC_MESSAGES, an, why, sizeof why) == 0);
    assert (strcmp (ar_chat_view_tool_choice_name (AR_SHAPE_ANTHROPIC_MESSAGES, an), "ls") == 0);
    assert (ar_chat_view_is_user_text (AR_SHAPE_ANTHROPIC_MESSAGES, json_array_get (m, 0)));
    assert (!ar_chat_view_is_user_text (AR_SHAPE_ANTHROPIC_MESSAGES, json_array_get (m, 2)));
    //  Observations: tool results, and command output agents carry in plain user turns.
    json_t *agent = json_pack (
        "[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]",
        "role", "system", "content", "You are an agent.", "role", "user", "content", "Fix the bug.",
        "role", "assistant", "content", "THOUGHT: look.\n\n```bash\nls\n```\n", "role", "user",
        "content", "a.py\nb.py", "role", "assistant", "content", "Done?", "role", "user", "content",
        "<returncode>0</returncode>\n<output>\nok\n</output>", "role", "user", "content", "thanks");
    assert (!ar_chat_view_is_observation (AR_SHAPE_OPENAI_CHAT, agent, 0));
    assert (!ar_chat_view_is_observation (AR_SHAPE_OPENAI_CHAT, agent, 1)); // the task
    assert (!ar_chat_view_is_observation (AR_SHAPE_OPENAI_CHAT, agent, 2));
    assert (ar_chat_view_is_observation (AR_SHAPE_OPENAI_CHAT, agent, 3));  // after a fence
    assert (!ar_chat_view_is_observation (AR_SHAPE_OPENAI_CHAT, agent, 6)); // a person
    json_t *chat = json_array_get (agent, 4); // "Done?" then <returncode>: opens like output
    assert (chat && ar_chat_view_is_observation (AR_SHAPE_OPENAI_CHAT, agent, 5));
    json_decref (agent);
    json_t *marker = json_pack ("{s:s, s:s}", "role", "user", "content",
                                "[anyray: 3 earlier messages elided; retrieve with id x]");
    assert (!ar_chat_view_is_user_text (AR_SHAPE_OPENAI_CHAT, marker));
    assert (!ar_chat_view_is_user_text (AR_SHAPE_ANTHROPIC_MESSAGES, marker));
    json_decref (marker);
    marker = json_pack ("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "role", "user", "content", "type",
                        "tool_result", "tool_use_id", "t1", "type", "text", "text",
                        "[anyray: 2 earlier messages elided; retrieve with id y]");
    assert (!ar_chat_view_is_user_text (AR_SHAPE_ANTHROPIC_MESSAGES, marker));
    json_decref (marker);
    assert (ar_chat_view_has_results (AR_SHAPE_ANTHROPIC_MESSAGES, json_array_get (m, 2)));
    calls[0] = 0;
    assert (ar_chat_view_each_call (AR_SHAPE_ANTHROPIC_MESSAGES, json_array_get (m, 1), s_collect,
                                    calls) == 1);
    assert (strcmp (calls, "t1:ls;") == 0);
    total = ar_chat_view_count_tokens (AR_SHAPE_ANTHROPIC_MESSAGES, an, tok);
    const char *apieces[] = {"sys", "list it", "ok", "ls", "{\"d\":\"/\"}", "bin etc"};
    want = 0;
    for (size_t i = 0; i < 6; i++)
        want += (int64_t)ar_tokenizer_count (tok, apieces[i], strlen (apieces[i]));
    tooljson = json_dumps (json_array_get (json_object_get (an, "tools"), 0), JSON_COMPACT);
    want += (int64_t)ar_tokenizer_count (tok, tooljson, strlen (tooljson));
    free (tooljson);
    assert (total == want);
    bad = json_deep_copy (an);
    json_array_remove (ar_chat_view_messages (bad), 2);
    assert (ar_chat_view_validate (AR_SHAPE_ANTHROPIC_MESSAGES, bad, why, sizeof why) == -1);
    json_array_append_new (ar_chat_view_messages (bad),
                           s_load ("{\"role\":\"user\",\"content\":\"x\"}"));
    assert (ar_chat_view_validate (AR_SHAPE_ANTHROPIC_MESSAGES, bad, why, sizeof why) == -1);
    json_decref (bad);
    json_decref (an);

    //  Any shape at all: no crash, sane answers.
    const char *weird[] = {"[]",
                           "{}",
                           "{\"messages\":{}}",
                           "{\"messages\":[1,null,\"x\",[]]}",
                           "{\"messages\":[{\"role\":1,\"content\":{}}],\"tools\":3}",
                           "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[1,{}],"
                           "\"content\":[1,{\"type\":\"tool_result\",\"content\":[{\"type\":"
                           "\"tool_result\",\"content\":\"x\"}]}]}],\"system\":7,"
                           "\"tool_choice\":{\"function\":3}}"};
    for (size_t i = 0; i < sizeof weird / sizeof weird[0]; i++) {
        json_t *w = s_load (weird[i]);
        for (int s = 0; s < 2; s++) {
            ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
            assert (ar_chat_view_validate (shape, w, why, sizeof why) == -1);
            assert (ar_chat_view_count_tokens (shape, w, tok) >= (json_is_object (w) ? 0 : -1));
            ar_chat_view_tool_choice_name (shape, w);
            size_t k;
            json_t *msg;
            json_array_foreach (ar_chat_view_messages (w), k, msg)
            {
                ar_chat_view_each_call (shape, msg, NULL, NULL);
                ar_chat_view_each_result (shape, msg, NULL, NULL);
                ar_chat_view_is_user_text (shape, msg);
            }
        }
        json_decref (w);
    }
    //  The memo: repeated and altered long pieces count exactly as the tokenizer does.
    char text[600];
    for (size_t i = 0; i < sizeof text - 1; i++)
        text[i] = "ab c1\n"[i % 6];
    text[sizeof text - 1] = 0;
    for (int round = 0; round < 3; round++) {
        json_t *msg = json_pack ("{s:s, s:s}", "role", "user", "content", text);
        int64_t direct = (int64_t)ar_tokenizer_count (tok, text, strlen (text));
        assert (ar_chat_view_message_tokens (AR_SHAPE_OPENAI_CHAT, msg, tok) == direct);
        assert (ar_chat_view_message_tokens (AR_SHAPE_OPENAI_CHAT, msg, tok) == direct);
        json_decref (msg);
        text[100 + round] = ' '; // same length, other text
    }
    if (verbose)
        printf ("ar_chat_view: ok\n");
    ar_tokenizer_destroy (&tok);
}
