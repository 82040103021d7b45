/*  =========================================================================
    mock_chat - the Chat Completions wire format
    =========================================================================
*/
#include "mock_chat.h"
#include "mock_json.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_uint_fast64_t s_id_counter;

//  Describe a JSON value's type the way the real API's messages do
static const char *s_type_name (mock_json_t *doc, uint32_t value)
{
    switch (mock_json_type (doc, value)) {
    case MOCK_JSON_OBJECT:
        return "an object";
    case MOCK_JSON_ARRAY:
        return "an array";
    case MOCK_JSON_STRING:
        return "a string";
    case MOCK_JSON_INTEGER:
        return "an integer";
    case MOCK_JSON_REAL:
        return "a decimal";
    case MOCK_JSON_TRUE:
    case MOCK_JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

//  Present and not null
static bool s_given (mock_json_t *doc, uint32_t value)
{
    return value && mock_json_type (doc, value) != MOCK_JSON_NULL;
}

static bool s_is (mock_json_t *doc, uint32_t value, mock_json_type_t type)
{
    return value && mock_json_type (doc, value) == type;
}

static bool s_is_boolean (mock_json_t *doc, uint32_t value)
{
    return s_is (doc, value, MOCK_JSON_TRUE) || s_is (doc, value, MOCK_JSON_FALSE);
}

static void s_invalid_type (mock_error_t *err, const char *param, const char *want,
                            mock_json_t *doc, uint32_t got)
{
    mock_error_set (err, 400, "invalid_request_error", param, "invalid_type",
                    "Invalid type for '%s': expected %s, but got %s instead.", param, want,
                    s_type_name (doc, got));
}

static void s_missing (mock_error_t *err, const char *param)
{
    mock_error_set (err, 400, "invalid_request_error", param, "missing_required_parameter",
                    "Missing required parameter: '%s'.", param);
}

//  A fresh id that looks like the real ones: prefix and chars base62 chars
//  (chatcmpl- and 29, call_ and 24)
static void s_new_id (char *id, size_t size, const char *prefix, int chars)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    uint64_t state =
        atomic_fetch_add (&s_id_counter, 1) * 0x9E3779B97F4A7C15ull + (uint64_t)time (NULL);
    //  Salt by kind, or a call id would repeat the next chatcmpl id's digits
    for (const char *c = prefix; *c; c++)
        state = (state ^ (unsigned char)*c) * 0x100000001B3ull;
    uint64_t x = 0;
    char *p = id + snprintf (id, size, "%s", prefix);
    for (int i = 0; i < chars && p + 1 < id + size; i++) {
        if (i % 10 == 0) {
            //  splitmix64 step: cheap and well spread
            state += 0x9E3779B97F4A7C15ull;
            uint64_t z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            x = z ^ (z >> 31);
        }
        *p++ = alphabet[x % 62];
        x /= 62;
    }
    *p = 0;
}

//  Add a message's text to out (if not NULL) and return its byte count.
//  Content is a string, or an array of parts of which "text" parts count.
static size_t s_content_text (mock_json_t *doc, uint32_t content, mock_buf_t *out)
{
    if (s_is (doc, content, MOCK_JSON_STRING)) {
        if (out)
            mock_json_string (doc, content, out);
        return mock_json_string_length (doc, content);
    }
    size_t total = 0;
    for (uint32_t part = mock_json_first (doc, content); part;
         part = mock_json_next (doc, content, part)) {
        uint32_t text = mock_json_get (doc, part, "text");
        if (!s_is (doc, text, MOCK_JSON_STRING))
            continue;
        if (out) {
            if (total)
                mock_buf_append (out, "\n", 1);
            mock_json_string (doc, text, out);
        }
        total += mock_json_string_length (doc, text);
    }
    return total;
}

static bool s_valid_role (mock_json_t *doc, uint32_t role)
{
    static const char *roles[] = {"system",   "user",      "assistant", "tool",
                                  "function", "developer", NULL};
    for (int i = 0; roles[i]; i++)
        if (mock_json_string_is (doc, role, roles[i]))
            return true;
    return false;
}

//  True if both are strings that decode to the same bytes
static bool s_same_string (mock_json_t *doc, uint32_t a, uint32_t b)
{
    if (!s_is (doc, a, MOCK_JSON_STRING) || !s_is (doc, b, MOCK_JSON_STRING) ||
        mock_json_string_length (doc, a) != mock_json_string_length (doc, b))
        return false;
    mock_buf_t x = {0};
    mock_buf_t y = {0};
    mock_json_string (doc, a, &x);
    mock_json_string (doc, b, &y);
    bool same = !x.broken && !y.broken && (x.len == 0 || memcmp (x.data, y.data, x.len) == 0);
    mock_buf_free (&x);
    mock_buf_free (&y);
    return same;
}

//  Member key of object obj must be a string; param is "<where>.<key>"
static bool s_need_string (mock_json_t *doc, uint32_t obj, const char *key, const char *where,
                           mock_error_t *err)
{
    char param[64];
    snprintf (param, sizeof param, "%s.%s", where, key);
    uint32_t value = mock_json_get (doc, obj, key);
    if (!value)
        s_missing (err, param);
    else if (!s_is (doc, value, MOCK_JSON_STRING))
        s_invalid_type (err, param, "a string", doc, value);
    else
        return true;
    return false;
}

static void s_empty_array (mock_error_t *err, const char *param)
{
    mock_error_set (err, 400, "invalid_request_error", param, "empty_array",
                    "Invalid '%s': empty array. Expected an array with minimum length 1, but got "
                    "an empty array instead.",
                    param);
}

//  An assistant message's tool_calls: [{"id","type":"function","function":{"name","arguments"}}]
static bool s_check_tool_calls (mock_json_t *doc, uint32_t calls, const char *where,
                                mock_error_t *err)
{
    char param[64];
    snprintf (param, sizeof param, "%s.tool_calls", where);
    if (!s_is (doc, calls, MOCK_JSON_ARRAY)) {
        s_invalid_type (err, param, "an array", doc, calls);
        return false;
    }
    if (mock_json_first (doc, calls) == 0) {
        s_empty_array (err, param);
        return false;
    }
    size_t index = 0;
    for (uint32_t call = mock_json_first (doc, calls); call;
         call = mock_json_next (doc, calls, call), index++) {
        snprintf (param, sizeof param, "%s.tool_calls[%zu]", where, index);
        if (!s_is (doc, call, MOCK_JSON_OBJECT)) {
            s_invalid_type (err, param, "an object", doc, call);
            return false;
        }
        if (!s_need_string (doc, call, "id", param, err) ||
            !s_need_string (doc, call, "type", param, err))
            return false;
        uint32_t type = mock_json_get (doc, call, "type");
        if (!mock_json_string_is (doc, type, "function")) {
            mock_buf_t name = {0};
            mock_json_string (doc, type, &name);
            char at[128];
            snprintf (at, sizeof at, "%s.type", param);
            mock_error_set (err, 400, "invalid_request_error", at, "invalid_value",
                            "Invalid value: '%.64s'. Supported values are: 'function'.",
                            name.data ? name.data : "");
            mock_buf_free (&name);
            return false;
        }
        uint32_t function = mock_json_get (doc, call, "function");
        char at[128];
        snprintf (at, sizeof at, "%s.function", param);
        if (!function) {
            s_missing (err, at);
            return false;
        }
        if (!s_is (doc, function, MOCK_JSON_OBJECT)) {
            s_invalid_type (err, at, "an object", doc, function);
            return false;
        }
        if (!s_need_string (doc, function, "name", at, err) ||
            !s_need_string (doc, function, "arguments", at, err))
            return false;
    }
    return true;
}

//  True if the assistant message's tool_calls hold a call with this id
static bool s_has_call (mock_json_t *doc, uint32_t assistant, uint32_t id)
{
    uint32_t calls = mock_json_get (doc, assistant, "tool_calls");
    for (uint32_t call = mock_json_first (doc, calls); call;
         call = mock_json_next (doc, calls, call))
        if (s_same_string (doc, mock_json_get (doc, call, "id"), id))
            return true;
    return false;
}

//  Every call of the assistant message must have a tool message among the
//  ones after it, up to stop (0 = the end). index is where the error points.
static bool s_all_answered (mock_json_t *doc, uint32_t messages, uint32_t assistant, uint32_t stop,
                            size_t index, mock_error_t *err)
{
    mock_buf_t missing = {0};
    uint32_t calls = mock_json_get (doc, assistant, "tool_calls");
    for (uint32_t call = mock_json_first (doc, calls); call;
         call = mock_json_next (doc, calls, call)) {
        uint32_t id = mock_json_get (doc, call, "id");
        bool answered = false;
        for (uint32_t m = mock_json_next (doc, messages, assistant); m && m != stop && !answered;
             m = mock_json_next (doc, messages, m))
            answered = s_same_string (doc, mock_json_get (doc, m, "tool_call_id"), id);
        if (!answered) {
            if (missing.len)
                mock_buf_puts (&missing, ", ");
            mock_json_string (doc, id, &missing);
        }
    }
    if (missing.len == 0 && !missing.broken)
        return true;
    char param[48];
    snprintf (param, sizeof param, "messages.[%zu].role", index);
    mock_error_set (err, 400, "invalid_request_error", param, NULL,
                    "An assistant message with 'tool_calls' must be followed by tool messages "
                    "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                    "response messages: %s",
                    missing.data ? missing.data : "");
    mock_buf_free (&missing);
    return false;
}

//  Check the messages array; count text bytes; find the last user message
//  and the last message
static bool s_check_messages (mock_chat_t *self, mock_json_t *doc, uint32_t messages,
                              uint32_t *last_user, uint32_t *last, mock_error_t *err)
{
    if (mock_json_first (doc, messages) == 0) {
        mock_error_set (err, 400, "invalid_request_error", "messages", "empty_array",
                        "Invalid 'messages': empty array. Expected an array with minimum length "
                        "1, but got an empty array instead.");
        return false;
    }
    size_t bytes = 0;
    size_t index = 0;
    uint32_t calling = 0; //  assistant message whose tool_calls want answers
    size_t calling_index = 0;
    for (uint32_t message = mock_json_first (doc, messages); message;
         message = mock_json_next (doc, messages, message), index++) {
        char where[48];
        char param[64];
        snprintf (where, sizeof where, "messages[%zu]", index);
        if (!s_is (doc, message, MOCK_JSON_OBJECT)) {
            s_invalid_type (err, where, "an object", doc, message);
            return false;
        }
        uint32_t role = mock_json_get (doc, message, "role");
        snprintf (param, sizeof param, "%s.role", where);
        if (!role) {
            s_missing (err, param);
            return false;
        }
        if (!s_valid_role (doc, role)) {
            mock_error_set (err, 400, "invalid_request_error", param, "invalid_value",
                            "Invalid value for '%s': supported values are 'system', 'user', "
                            "'assistant', 'tool', 'function' and 'developer'.",
                            param);
            return false;
        }
        bool assistant = mock_json_string_is (doc, role, "assistant");
        uint32_t content = mock_json_get (doc, message, "content");
        bool ok = s_is (doc, content, MOCK_JSON_STRING) || s_is (doc, content, MOCK_JSON_ARRAY) ||
                  (assistant && !s_given (doc, content));
        if (!ok) {
            snprintf (param, sizeof param, "%s.content", where);
            if (!content)
                s_missing (err, param);
            else
                s_invalid_type (err, param, "one of a string or array of objects", doc, content);
            return false;
        }
        if (s_given (doc, content))
            bytes += s_content_text (doc, content, NULL);
        if (mock_json_string_is (doc, role, "user"))
            *last_user = message;
        *last = message;

        //  Tool results follow the call they answer, all of them, at once
        bool tool = mock_json_string_is (doc, role, "tool");
        if (calling && !tool) {
            if (!s_all_answered (doc, messages, calling, message, index, err))
                return false;
            calling = 0;
        }
        if (tool) {
            if (!s_need_string (doc, message, "tool_call_id", where, err))
                return false;
            if (!calling ||
                !s_has_call (doc, calling, mock_json_get (doc, message, "tool_call_id"))) {
                snprintf (param, sizeof param, "messages.[%zu].role", index);
                mock_error_set (err, 400, "invalid_request_error", param, NULL,
                                "Invalid parameter: messages with role 'tool' must be a response "
                                "to a preceeding message with 'tool_calls'.");
                return false;
            }
        }
        uint32_t calls = mock_json_get (doc, message, "tool_calls");
        if (assistant && s_given (doc, calls)) {
            if (!s_check_tool_calls (doc, calls, where, err))
                return false;
            calling = message;
            calling_index = index;
        }
    }
    if (calling && !s_all_answered (doc, messages, calling, 0, calling_index, err))
        return false;
    self->prompt_tokens = (long long)((bytes + 3) / 4);
    return true;
}

static bool s_blank (char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

//  Index the words of self->text: runs of non-blanks, whatever the blanks
//  between them; past the limit the last word takes the rest
static void s_index_words (mock_chat_t *self)
{
    self->words = 0;
    if (self->text.broken)
        return;
    size_t i = 0;
    size_t len = self->text.len;
    const char *text = self->text.data;
    while (i < len) {
        while (i < len && s_blank (text[i]))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && !s_blank (text[i]))
            i++;
        if (self->words == MOCK_CHAT_MAX_WORDS) {
            size_t last = (size_t)self->words - 1;
            size_t end = len;
            while (end > start && s_blank (text[end - 1]))
                end--;
            self->word_len[last] = end - self->word_off[last];
            break;
        }
        self->word_off[self->words] = start;
        self->word_len[self->words] = i - start;
        self->words++;
    }
}

//  Build "Mock reply to: ..." from the user's text and index its words
static void s_natural_reply (mock_chat_t *self, const char *text, size_t len)
{
    mock_buf_puts (&self->text, "Mock reply to:");
    size_t i = 0;
    int taken = 0;
    while (taken < MOCK_CHAT_USER_WORDS) {
        while (i < len && s_blank (text[i]))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && !s_blank (text[i]))
            i++;
        mock_buf_append (&self->text, " ", 1);
        mock_buf_append (&self->text, text + start, i - start);
        taken++;
    }
    if (taken == 0)
        mock_buf_puts (&self->text, " (empty)");
    s_index_words (self);
}

//  "Mock reply to tool result: " and the start of the tool message's text
static void s_tool_reply (mock_chat_t *self, mock_json_t *doc, uint32_t message)
{
    mock_buf_t text = {0};
    s_content_text (doc, mock_json_get (doc, message, "content"), &text);
    //  Characters, not bytes: the text is valid UTF-8, so skip continuations
    size_t cut = 0;
    for (int chars = 0; cut < text.len && chars < MOCK_CHAT_TOOL_CHARS; chars++) {
        cut++;
        while (cut < text.len && ((unsigned char)text.data[cut] & 0xC0) == 0x80)
            cut++;
    }
    mock_buf_puts (&self->text, "Mock reply to tool result:");
    if (cut) {
        mock_buf_append (&self->text, " ", 1);
        mock_buf_append (&self->text, text.data, cut);
    } else
        mock_buf_puts (&self->text, " (empty)");
    if (text.broken)
        self->text.broken = true;
    mock_buf_free (&text);
    s_index_words (self);
}

//  The function named name among the request's tools, or 0
static uint32_t s_find_tool (mock_json_t *doc, uint32_t tools, const char *name)
{
    if (!s_is (doc, tools, MOCK_JSON_ARRAY))
        return 0;
    for (uint32_t tool = mock_json_first (doc, tools); tool;
         tool = mock_json_next (doc, tools, tool)) {
        uint32_t function = mock_json_get (doc, tool, "function");
        if (s_is (doc, function, MOCK_JSON_OBJECT) &&
            mock_json_string_is (doc, mock_json_get (doc, function, "name"), name))
            return function;
    }
    return 0;
}

static bool s_lower_hex (char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

//  The first 32 lowercase hex digits after "retrieve with id " in any
//  message's text, into hex (33 bytes); "" if there are none
static void s_retrieve_id (mock_json_t *doc, uint32_t messages, char *hex)
{
    static const char marker[] = "retrieve with id ";
    size_t marker_len = sizeof marker - 1;
    hex[0] = 0;
    mock_buf_t text = {0};
    for (uint32_t message = mock_json_first (doc, messages); message && !hex[0];
         message = mock_json_next (doc, messages, message)) {
        uint32_t content = mock_json_get (doc, message, "content");
        if (!s_given (doc, content))
            continue;
        mock_buf_reset (&text);
        s_content_text (doc, content, &text);
        for (size_t i = 0; i + marker_len + 32 <= text.len && !text.broken; i++) {
            if (memcmp (text.data + i, marker, marker_len) != 0)
                continue;
            const char *digits = text.data + i + marker_len;
            size_t n = 0;
            while (n < 32 && s_lower_hex (digits[n]))
                n++;
            if (n == 32) {
                memcpy (hex, digits, 32);
                hex[32] = 0;
                break;
            }
        }
    }
    mock_buf_free (&text);
}

//  Append one argument piece; pieces are contiguous, so no blanks between
static void s_piece (mock_chat_t *self, const char *piece)
{
    if (self->words >= MOCK_CHAT_MAX_WORDS)
        return;
    self->word_off[self->words] = self->text.len;
    self->word_len[self->words] = strlen (piece);
    mock_buf_puts (&self->text, piece);
    self->words++;
}

//  The call's arguments, cut into pieces the way the real stream cuts them:
//  {"  id  ":"  hex in fours  "}
static void s_tool_args (mock_chat_t *self, mock_json_t *doc, uint32_t messages, uint32_t function)
{
    self->words = 0;
    uint32_t params = mock_json_get (doc, function, "parameters");
    uint32_t props =
        s_is (doc, params, MOCK_JSON_OBJECT) ? mock_json_get (doc, params, "properties") : 0;
    bool wants_id = (s_is (doc, props, MOCK_JSON_OBJECT) && mock_json_get (doc, props, "id")) ||
                    strstr (self->ctl.tool, "retrieve") != NULL;
    if (!wants_id) {
        s_piece (self, "{}");
        return;
    }
    char hex[33];
    s_retrieve_id (doc, messages, hex);
    s_piece (self, "{\"");
    s_piece (self, "id");
    s_piece (self, "\":\"");
    for (size_t i = 0; hex[i]; i += 8) {
        char part[9];
        snprintf (part, sizeof part, "%.8s", hex + i);
        s_piece (self, part);
    }
    s_piece (self, "\"}");
}

//  The request's tools: [{"type":"function","function":{"name",...}}, ...]
static bool s_check_tools (mock_json_t *doc, uint32_t tools, mock_error_t *err)
{
    if (!s_is (doc, tools, MOCK_JSON_ARRAY)) {
        s_invalid_type (err, "tools", "an array", doc, tools);
        return false;
    }
    if (mock_json_first (doc, tools) == 0) {
        s_empty_array (err, "tools");
        return false;
    }
    size_t index = 0;
    for (uint32_t tool = mock_json_first (doc, tools); tool;
         tool = mock_json_next (doc, tools, tool), index++) {
        char where[32];
        char param[64];
        snprintf (where, sizeof where, "tools[%zu]", index);
        if (!s_is (doc, tool, MOCK_JSON_OBJECT)) {
            s_invalid_type (err, where, "an object", doc, tool);
            return false;
        }
        if (!s_need_string (doc, tool, "type", where, err))
            return false;
        if (!mock_json_string_is (doc, mock_json_get (doc, tool, "type"), "function"))
            continue; //  other kinds of tool are not the mock's business
        uint32_t function = mock_json_get (doc, tool, "function");
        snprintf (param, sizeof param, "%s.function", where);
        if (!function) {
            s_missing (err, param);
            return false;
        }
        if (!s_is (doc, function, MOCK_JSON_OBJECT)) {
            s_invalid_type (err, param, "an object", doc, function);
            return false;
        }
        if (!s_need_string (doc, function, "name", param, err))
            return false;
    }
    return true;
}

//  Validate the top-level fields; fills self on success
static bool s_check (mock_chat_t *self, mock_json_t *doc, mock_error_t *err)
{
    uint32_t model = mock_json_get (doc, 0, "model");
    uint32_t messages = mock_json_get (doc, 0, "messages");
    uint32_t stream = mock_json_get (doc, 0, "stream");
    uint32_t options = mock_json_get (doc, 0, "stream_options");
    uint32_t max_tokens = mock_json_get (doc, 0, "max_completion_tokens");
    const char *max_name = "max_completion_tokens";
    if (!s_given (doc, max_tokens)) {
        max_tokens = mock_json_get (doc, 0, "max_tokens");
        max_name = "max_tokens";
    }
    if (!model || mock_json_string_is (doc, model, "")) {
        mock_error_set (err, 400, "invalid_request_error", "model", NULL,
                        "you must provide a model parameter");
        return false;
    }
    if (!s_is (doc, model, MOCK_JSON_STRING)) {
        s_invalid_type (err, "model", "a string", doc, model);
        return false;
    }
    if (!messages) {
        s_missing (err, "messages");
        return false;
    }
    if (!s_is (doc, messages, MOCK_JSON_ARRAY)) {
        s_invalid_type (err, "messages", "an array", doc, messages);
        return false;
    }
    if (s_given (doc, stream) && !s_is_boolean (doc, stream)) {
        s_invalid_type (err, "stream", "a boolean", doc, stream);
        return false;
    }
    self->stream = s_is (doc, stream, MOCK_JSON_TRUE);
    if (s_given (doc, options)) {
        if (!self->stream) {
            mock_error_set (err, 400, "invalid_request_error", "stream_options", NULL,
                            "The 'stream_options' parameter is only allowed when 'stream' is "
                            "enabled.");
            return false;
        }
        if (!s_is (doc, options, MOCK_JSON_OBJECT)) {
            s_invalid_type (err, "stream_options", "an object", doc, options);
            return false;
        }
        uint32_t usage = mock_json_get (doc, options, "include_usage");
        if (s_given (doc, usage) && !s_is_boolean (doc, usage)) {
            s_invalid_type (err, "stream_options.include_usage", "a boolean", doc, usage);
            return false;
        }
        self->include_usage = s_is (doc, usage, MOCK_JSON_TRUE);
    }
    long long limit = -1;
    if (s_given (doc, max_tokens)) {
        if (!s_is (doc, max_tokens, MOCK_JSON_INTEGER)) {
            s_invalid_type (err, max_name, "an integer", doc, max_tokens);
            return false;
        }
        limit = (long long)mock_json_integer (doc, max_tokens);
        if (limit < 1) {
            mock_error_set (err, 400, "invalid_request_error", max_name, "integer_below_min_value",
                            "Invalid '%s': integer below minimum value. Expected a value >= 1, "
                            "but got %lld instead.",
                            max_name, limit);
            return false;
        }
    }
    uint32_t last_user = 0;
    uint32_t last = 0;
    if (!s_check_messages (self, doc, messages, &last_user, &last, err))
        return false;
    uint32_t tools = mock_json_get (doc, 0, "tools");
    if (s_given (doc, tools) && !s_check_tools (doc, tools, err))
        return false;

    //  The reply comes from the last user message, after its [mock ...]
    mock_buf_t text = {0};
    if (last_user)
        s_content_text (doc, mock_json_get (doc, last_user, "content"), &text);
    const char *data = text.data ? text.data : "";
    size_t used = mock_control_parse (&self->ctl, data, text.len);
    //  ... unless a tool result came last, or the switches ask for a call
    bool tool_result = mock_json_string_is (doc, mock_json_get (doc, last, "role"), "tool");
    uint32_t function = 0;
    if (!tool_result && self->ctl.tool[0] &&
        !mock_json_string_is (doc, mock_json_get (doc, 0, "tool_choice"), "none"))
        function = s_find_tool (doc, tools, self->ctl.tool);
    if (tool_result) {
        self->ctl.chunks = -1;
        s_tool_reply (self, doc, last);
    } else if (function) {
        self->ctl.chunks = -1;
        self->tool_call = true;
        s_tool_args (self, doc, messages, function);
        s_new_id (self->call_id, sizeof self->call_id, "call_", 24);
        snprintf (self->finish_reason, sizeof self->finish_reason, "tool_calls");
    } else if (self->ctl.chunks >= 0)
        self->words = self->ctl.chunks;
    else
        s_natural_reply (self, data + used, text.len - used);
    mock_buf_free (&text);
    if (limit >= 0 && limit < self->words) {
        self->words = (int)limit;
        snprintf (self->finish_reason, sizeof self->finish_reason, "length");
    }

    mock_buf_t name = {0};
    mock_json_string (doc, model, &name);
    snprintf (self->model, sizeof self->model, "%s", name.data ? name.data : "");
    mock_buf_json_string (&self->model_json, name.data ? name.data : "", name.len);
    bool broken = name.broken;
    mock_buf_free (&name);
    if (self->text.broken || self->model_json.broken || broken) {
        mock_error_set (err, 500, "server_error", NULL, NULL, "Mock out of memory.");
        return false;
    }
    s_new_id (self->id, sizeof self->id, "chatcmpl-", 29);
    self->created = (long long)time (NULL);
    return true;
}

//  --------------------------------------------------------------------------
//  Parse and validate a request body

bool mock_chat_parse (mock_chat_t *self, const char *body, size_t len,
                      const mock_control_t *defaults, mock_error_t *err)
{
    memset (self, 0, sizeof *self);
    self->ctl = *defaults;
    snprintf (self->finish_reason, sizeof self->finish_reason, "stop");
    mock_json_t doc;
    bool ok = mock_json_parse (&doc, body, len);
    if (!ok || mock_json_type (&doc, 0) != MOCK_JSON_OBJECT) {
        mock_json_free (&doc);
        mock_error_set (err, 400, "invalid_request_error", NULL, NULL,
                        "We could not parse the JSON body of your request. (HINT: This likely "
                        "means you aren't using your HTTP library correctly. The OpenAI API "
                        "expects a JSON payload, but what was sent was not valid JSON. If you "
                        "have trouble figuring out how to fix this, please contact us through "
                        "our help center at help.openai.com.)");
        return false;
    }
    ok = s_check (self, &doc, err);
    mock_json_free (&doc);
    return ok;
}

//  --------------------------------------------------------------------------
//  Release what parse allocated

void mock_chat_free (mock_chat_t *self)
{
    mock_buf_free (&self->model_json);
    mock_buf_free (&self->text);
    mock_buf_free (&self->head);
}

//  Stream chunk index (0-based): word index and the blanks up to the next
//  word, none after the last, so the chunks join to the non-stream text
static void s_chunk (mock_chat_t *self, int index, char *tmp, size_t tmp_size, const char **chunk,
                     size_t *len)
{
    bool more = index + 1 < self->words;
    if (self->ctl.chunks >= 0) {
        *len = (size_t)snprintf (tmp, tmp_size, more ? "w%d " : "w%d", index + 1);
        *chunk = tmp;
    } else {
        *chunk = self->text.data + self->word_off[index];
        *len = more ? self->word_off[index + 1] - self->word_off[index] : self->word_len[index];
    }
}

//  Bytes of text the non-stream answer carries: up to the end of the last word
static size_t s_text_len (mock_chat_t *self)
{
    if (self->words <= 0)
        return 0;
    return self->word_off[self->words - 1] + self->word_len[self->words - 1];
}

static void s_usage (mock_chat_t *self, mock_buf_t *out)
{
    mock_buf_printf (out,
                     "{\"prompt_tokens\":%lld,\"completion_tokens\":%d,\"total_tokens\":%lld,"
                     "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
                     "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
                     "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
                     self->prompt_tokens, self->words, self->prompt_tokens + self->words);
}

//  --------------------------------------------------------------------------
//  Append the non-stream chat.completion body

void mock_chat_render (mock_chat_t *self, mock_buf_t *out)
{
    mock_buf_printf (
        out, "{\"id\":\"%s\",\"object\":\"chat.completion\",\"created\":%lld,\"model\":", self->id,
        self->created);
    mock_buf_append (out, self->model_json.data, self->model_json.len);
    mock_buf_puts (out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                        "\"content\":");
    if (self->tool_call) {
        //  The id and name need no escaping: base62 and [A-Za-z0-9_-]
        mock_buf_printf (out,
                         "null,\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\","
                         "\"function\":{\"name\":\"%s\",\"arguments\":",
                         self->call_id, self->ctl.tool);
        mock_buf_json_string (out, self->text.data ? self->text.data : "", s_text_len (self));
        mock_buf_puts (out, "}}]");
    } else if (self->ctl.chunks >= 0) {
        //  w1 w2 ... need no escaping
        mock_buf_puts (out, "\"");
        for (int i = 0; i < self->words; i++)
            mock_buf_printf (out, i ? " w%d" : "w%d", i + 1);
        mock_buf_puts (out, "\"");
    } else
        mock_buf_json_string (out, self->text.data ? self->text.data : "", s_text_len (self));
    mock_buf_printf (out,
                     ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"
                     "\"finish_reason\":\"%s\"}],\"usage\":",
                     self->finish_reason);
    s_usage (self, out);
    mock_buf_puts (out, ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock\"}");
}

//  Start an event: "data: " and the fields every chunk repeats
static void s_event_start (mock_chat_t *self, mock_buf_t *out)
{
    if (self->head.len == 0) {
        mock_buf_printf (&self->head,
                         "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\","
                         "\"created\":%lld,\"model\":",
                         self->id, self->created);
        mock_buf_append (&self->head, self->model_json.data, self->model_json.len);
        mock_buf_puts (&self->head, ",\"service_tier\":\"default\","
                                    "\"system_fingerprint\":\"fp_mock\",\"choices\":");
    }
    mock_buf_append (out, self->head.data, self->head.len);
}

static void s_event_end (mock_chat_t *self, mock_buf_t *out)
{
    mock_buf_puts (out, self->include_usage ? ",\"usage\":null}\n\n" : "}\n\n");
}

void mock_chat_event_role (mock_chat_t *self, mock_buf_t *out)
{
    s_event_start (self, out);
    if (self->tool_call) {
        //  The call's id and name come first, its arguments after in pieces
        mock_buf_printf (out,
                         "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
                         "\"tool_calls\":[{\"index\":0,\"id\":\"%s\",\"type\":\"function\","
                         "\"function\":{\"name\":\"%s\",\"arguments\":\"\"}}],"
                         "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]",
                         self->call_id, self->ctl.tool);
        s_event_end (self, out);
        return;
    }
    mock_buf_puts (out, "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
                        "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]");
    s_event_end (self, out);
}

void mock_chat_event_word (mock_chat_t *self, int index, mock_buf_t *out)
{
    char tmp[16];
    const char *chunk;
    size_t len;
    s_chunk (self, index, tmp, sizeof tmp, &chunk, &len);
    s_event_start (self, out);
    if (self->tool_call) {
        mock_buf_puts (out, "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                            "\"function\":{\"arguments\":");
        mock_buf_json_string (out, chunk, len);
        mock_buf_puts (out, "}}]");
    } else {
        mock_buf_puts (out, "[{\"index\":0,\"delta\":{\"content\":");
        mock_buf_json_string (out, chunk, len);
    }
    mock_buf_puts (out, "},\"logprobs\":null,\"finish_reason\":null}]");
    s_event_end (self, out);
}

void mock_chat_event_finish (mock_chat_t *self, mock_buf_t *out)
{
    s_event_start (self, out);
    mock_buf_printf (out, "[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}]",
                     self->finish_reason);
    s_event_end (self, out);
}

void mock_chat_event_usage (mock_chat_t *self, mock_buf_t *out)
{
    s_event_start (self, out);
    mock_buf_puts (out, "[],\"usage\":");
    s_usage (self, out);
    mock_buf_puts (out, "}\n\n");
}

void mock_chat_event_done (mock_buf_t *out)
{
    mock_buf_puts (out, "data: [DONE]\n\n");
}
