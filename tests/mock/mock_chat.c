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

//  A fresh id that looks like the real ones: chatcmpl- and 29 base62 chars
static void s_new_id (char *id, size_t size)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    uint64_t state =
        atomic_fetch_add (&s_id_counter, 1) * 0x9E3779B97F4A7C15ull + (uint64_t)time (NULL);
    uint64_t x = 0;
    char *p = id + snprintf (id, size, "chatcmpl-");
    for (int i = 0; i < 29 && p + 1 < id + size; i++) {
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

//  Check the messages array; count text bytes; find the last user message
static bool s_check_messages (mock_chat_t *self, mock_json_t *doc, uint32_t messages,
                              uint32_t *last_user, mock_error_t *err)
{
    if (mock_json_first (doc, messages) == 0) {
        mock_error_set (err, 400, "invalid_request_error", "messages", "empty_array",
                        "Invalid 'messages': empty array. Expected an array with minimum length "
                        "1, but got an empty array instead.");
        return false;
    }
    size_t bytes = 0;
    size_t index = 0;
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
    }
    self->prompt_tokens = (long long)((bytes + 3) / 4);
    return true;
}

static bool s_blank (char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
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
    if (self->text.broken)
        return;
    //  Words are separated by exactly one space now
    self->words = 0;
    size_t start = 0;
    for (size_t p = 0; p <= self->text.len; p++)
        if (p == self->text.len || self->text.data[p] == ' ') {
            self->word_off[self->words] = start;
            self->word_len[self->words] = p - start;
            self->words++;
            start = p + 1;
        }
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
    if (!s_check_messages (self, doc, messages, &last_user, err))
        return false;

    //  The reply comes from the last user message, after its [mock ...]
    mock_buf_t text = {0};
    if (last_user)
        s_content_text (doc, mock_json_get (doc, last_user, "content"), &text);
    const char *data = text.data ? text.data : "";
    size_t used = mock_control_parse (&self->ctl, data, text.len);
    if (self->ctl.chunks >= 0)
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
    s_new_id (self->id, sizeof self->id);
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

//  The text of word index (0-based), without separators
static void s_word (mock_chat_t *self, int index, char *tmp, size_t tmp_size, const char **word,
                    size_t *len)
{
    if (self->ctl.chunks >= 0) {
        *len = (size_t)snprintf (tmp, tmp_size, "w%d", index + 1);
        *word = tmp;
    } else {
        *word = self->text.data + self->word_off[index];
        *len = self->word_len[index];
    }
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
    if (self->ctl.chunks >= 0) {
        //  w1 w2 ... need no escaping
        mock_buf_puts (out, "\"");
        for (int i = 0; i < self->words; i++)
            mock_buf_printf (out, i ? " w%d" : "w%d", i + 1);
        mock_buf_puts (out, "\"");
    } else {
        size_t len = 0;
        if (self->words > 0)
            len = self->word_off[self->words - 1] + self->word_len[self->words - 1];
        mock_buf_json_string (out, self->text.data ? self->text.data : "", len);
    }
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
    mock_buf_puts (out, "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
                        "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]");
    s_event_end (self, out);
}

void mock_chat_event_word (mock_chat_t *self, int index, mock_buf_t *out)
{
    char tmp[16];
    const char *word;
    size_t len;
    s_word (self, index, tmp, sizeof tmp, &word, &len);
    s_event_start (self, out);
    mock_buf_puts (out, "[{\"index\":0,\"delta\":{\"content\":");
    //  Joined chunks equal the non-stream content: a space after every
    //  word but the last
    mock_buf_json_string (out, word, len);
    if (index + 1 < self->words && !out->broken) {
        out->len--; //  reopen the string to add the space
        mock_buf_puts (out, " \"");
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
