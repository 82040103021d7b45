/*  ar_xlate_converse: OpenAI chat completions <-> AWS Bedrock Converse (JSON over REST).

    Bedrock's Converse API (POST /model/{modelId}/converse and /converse-stream) is one shape
    for every model on Bedrock, so one translator reaches them all. The model id goes in the
    URL; the body carries messages as content blocks ({"text"}, {"image"}, {"toolUse"},
    {"toolResult"}), the system prompt apart, sampling in inferenceConfig and tools in
    toolConfig. Converse insists on what OpenAI leaves loose: turns alternate user/assistant
    and begin with a user turn, tool results are user content, blocks are never blank, and
    a toolConfig must be present whenever the history holds tool blocks.

    The answer comes back as one message of content blocks, or as ConverseStream events
    (messageStart, contentBlockStart/Delta/Stop, messageStop, then metadata with usage)
    that the eventstream decoder hands over one by one; each becomes zero or more OpenAI
    chunks as it arrives.

    Usage: Bedrock counts inputTokens apart from the tokens read from or written to the prompt
    cache; OpenAI's prompt_tokens includes them. So prompt_tokens (and ar_usage_t's
    input_tokens, as the OpenAI wire fills it) is the sum of the three, and cached_tokens is
    cacheReadInputTokens.
*/
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/rand.h>
#include "ar_xlate_chunks.h"

//  ---------------------------------------------------------------------------
//  Shared helpers

static json_t *s_refuse (ar_xlate_error_t *err, const char *param, const char *format, ...)
{
    if (err) {
        err->status = 400;
        snprintf (err->param, sizeof err->param, "%s", param ? param : "");
        va_list args;
        va_start (args, format);
        vsnprintf (err->message, sizeof err->message, format, args);
        va_end (args);
    }
    return NULL;
}

//  A member that is absent or JSON null: both mean "not set" to OpenAI.
static bool s_unset (const json_t *value)
{
    return !value || json_is_null (value);
}

//  A fresh id shaped like OpenAI's: prefix and 24 base62 characters.
static void s_new_id (char *id, size_t size, const char *prefix)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static unsigned s_counter;
    unsigned char raw[24];
    if (RAND_bytes (raw, sizeof raw) != 1) {
        //  Ids only need to differ, not to be secret: time and a counter will do
        uint64_t x = (uint64_t)time (NULL) * 0x9E3779B97F4A7C15ull + ++s_counter;
        for (size_t i = 0; i < sizeof raw; i++, x = x * 6364136223846793005ull + 1)
            raw[i] = (unsigned char)(x >> 56);
    }
    int used = snprintf (id, size, "%s", prefix);
    char *p = id + (used > 0 ? (size_t)used : 0);
    for (size_t i = 0; i < sizeof raw && p + 1 < id + size; i++)
        *p++ = alphabet[raw[i] % 62];
    *p = 0;
}

static const char *s_finish_reason (const char *stop_reason)
{
    if (!stop_reason)
        return "stop";
    if (strcmp (stop_reason, "tool_use") == 0)
        return "tool_calls";
    if (strcmp (stop_reason, "max_tokens") == 0 ||
        strcmp (stop_reason, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp (stop_reason, "guardrail_intervened") == 0 ||
        strcmp (stop_reason, "content_filtered") == 0)
        return "content_filter";
    return "stop"; // end_turn, stop_sequence, and any reason added later
}

static int64_t s_count (const json_t *object, const char *key)
{
    json_t *value = json_object_get (object, key);
    return json_is_integer (value) && json_integer_value (value) > 0 ? json_integer_value (value)
                                                                     : 0;
}

//  Converse TokenUsage as an OpenAI usage object, and into ar_usage_t. NULL when the usage
//  is not there or not the expected shape.
static json_t *s_usage (const json_t *converse, ar_usage_t *usage)
{
    if (!json_is_integer (json_object_get (converse, "inputTokens")) ||
        !json_is_integer (json_object_get (converse, "outputTokens")))
        return NULL;
    int64_t cache_read = s_count (converse, "cacheReadInputTokens");
    int64_t prompt = s_count (converse, "inputTokens") + cache_read +
                     s_count (converse, "cacheWriteInputTokens");
    int64_t completion = s_count (converse, "outputTokens");
    if (usage) {
        usage->has_input = usage->has_output = true;
        usage->input_tokens = prompt;
        usage->output_tokens = completion;
        if (json_object_get (converse, "cacheReadInputTokens")) {
            usage->has_cached = true;
            usage->cached_input_tokens = cache_read;
        }
    }
    return ar_xlate_chunks_usage (prompt, completion, prompt + completion, cache_read);
}

//  ---------------------------------------------------------------------------
//  Requests: OpenAI chat -> Converse

typedef struct {
    ar_xlate_error_t *err;
    json_t *turns;        // Converse messages, alternating
    json_t *system;       // system content blocks
    json_t *called_tools; // tool names the history calls, for a toolConfig it needs
    bool tool_blocks;     // the history holds toolUse or toolResult blocks
    size_t first_user;    // index of the message that opened the first turn
} s_request_t;

//  A text block, or nothing for blank text (Converse refuses blank text blocks).
static int s_add_text (json_t *blocks, const char *text, size_t len)
{
    if (len == 0)
        return 0;
    return json_array_append_new (blocks, json_pack ("{s:s%}", "text", text, len));
}

//  Text-only content (system, developer, assistant, tool): a string or an array of text
//  parts (assistant refusal parts are what it said, so they count as text).
static int s_text_blocks (const json_t *content, const char *path, json_t *blocks,
                          ar_xlate_error_t *err)
{
    char param[192];
    if (s_unset (content))
        return 0;
    if (json_is_string (content))
        return s_add_text (blocks, json_string_value (content), json_string_length (content));
    if (!json_is_array (content)) {
        s_refuse (err, path, "%s must be a string or an array of content parts", path);
        return -1;
    }
    size_t j;
    json_t *part;
    json_array_foreach (content, j, part)
    {
        const char *type = json_string_value (json_object_get (part, "type"));
        const char *key = type && strcmp (type, "refusal") == 0 ? "refusal" : "text";
        json_t *text = json_object_get (part, key);
        snprintf (param, sizeof param, "%s[%zu]", path, j);
        if (!type || (strcmp (type, "text") && strcmp (type, "refusal"))) {
            s_refuse (err, param, "%s: only text parts can be sent to Bedrock here", param);
            return -1;
        }
        if (!json_is_string (text)) {
            s_refuse (err, param, "%s.%s must be a string", param, key);
            return -1;
        }
        if (s_add_text (blocks, json_string_value (text), json_string_length (text)))
            return -1;
    }
    return 0;
}

//  The same content as one string (a tool result is one text or one JSON document).
static char *s_joined_text (const json_t *content, const char *path, ar_xlate_error_t *err)
{
    json_t *blocks = json_array ();
    if (!blocks || s_text_blocks (content, path, blocks, err)) {
        json_decref (blocks);
        return NULL;
    }
    size_t size = 1, i;
    json_t *block;
    json_array_foreach (blocks, i, block)
    {
        size += json_string_length (json_object_get (block, "text"));
    }
    char *text = malloc (size), *p = text;
    if (text) {
        json_array_foreach (blocks, i, block)
        {
            json_t *piece = json_object_get (block, "text");
            memcpy (p, json_string_value (piece), json_string_length (piece));
            p += json_string_length (piece);
        }
        *p = 0;
    }
    json_decref (blocks);
    return text;
}

static bool s_is_base64 (const char *s)
{
    size_t len = strlen (s), pad = 0;
    while (pad < 2 && len > pad && s[len - 1 - pad] == '=')
        pad++;
    if (len == 0 || len % 4)
        return false;
    for (size_t i = 0; i < len - pad; i++)
        if (!isalnum ((unsigned char)s[i]) && s[i] != '+' && s[i] != '/')
            return false;
    return true;
}

//  An image part. Converse has no way to fetch a URL, so only data: URLs go; their base64
//  goes through untouched, as the JSON form of Converse carries blob bytes in base64.
static json_t *s_image_block (const json_t *part, const char *path, ar_xlate_error_t *err)
{
    char param[192];
    snprintf (param, sizeof param, "%s.image_url.url", path);
    json_t *image_url = json_object_get (part, "image_url");
    const char *url = json_string_value (json_object_get (image_url, "url"));
    if (!url && json_is_string (image_url))
        url = json_string_value (image_url); // an early shape some clients still send
    if (!url)
        return s_refuse (err, param, "%s is required", param);
    if (strncmp (url, "data:", 5) != 0)
        return s_refuse (
            err, param, "%s: Bedrock cannot fetch image URLs; send the image as a base64 data: URL",
            param);
    const char *comma = strchr (url, ',');
    const char *semi = strchr (url, ';');
    if (!comma || !semi || semi > comma || (size_t)(comma - semi) != 7 ||
        strncmp (semi, ";base64", 7) != 0)
        return s_refuse (err, param, "%s must be a base64 data: URL", param);
    static const struct {
        const char *mime;
        const char *format;
    } formats[] = {{"image/png", "png"},
                   {"image/jpeg", "jpeg"},
                   {"image/jpg", "jpeg"},
                   {"image/gif", "gif"},
                   {"image/webp", "webp"}};
    const char *format = NULL;
    size_t mime_len = (size_t)(semi - url - 5);
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strlen (formats[i].mime) == mime_len &&
            strncasecmp (url + 5, formats[i].mime, mime_len) == 0)
            format = formats[i].format;
    if (!format)
        return s_refuse (err, param, "%s: Bedrock takes png, jpeg, gif or webp images only", param);
    if (!s_is_base64 (comma + 1))
        return s_refuse (err, param, "%s: the image data is not valid base64", param);
    return json_pack ("{s{ss s{ss}}}", "image", "format", format, "source", "bytes", comma + 1);
}

static int s_user_blocks (const json_t *content, const char *path, json_t *blocks,
                          ar_xlate_error_t *err)
{
    char param[128];
    if (json_is_string (content))
        return s_add_text (blocks, json_string_value (content), json_string_length (content));
    if (!json_is_array (content)) {
        s_refuse (err, path, "%s must be a string or an array of content parts", path);
        return -1;
    }
    size_t j;
    json_t *part;
    json_array_foreach (content, j, part)
    {
        snprintf (param, sizeof param, "%s[%zu]", path, j);
        const char *type = json_string_value (json_object_get (part, "type"));
        if (type && strcmp (type, "text") == 0) {
            json_t *text = json_object_get (part, "text");
            if (!json_is_string (text)) {
                s_refuse (err, param, "%s.text must be a string", param);
                return -1;
            }
            if (s_add_text (blocks, json_string_value (text), json_string_length (text)))
                return -1;
        } else if (type && strcmp (type, "image_url") == 0) {
            json_t *image = s_image_block (part, param, err);
            if (!image || json_array_append_new (blocks, image))
                return -1;
        } else {
            //  Audio and files have no Converse block we can fill from what OpenAI sends
            s_refuse (err, param, "%s: this content part type cannot be sent to Bedrock", param);
            return -1;
        }
    }
    return 0;
}

static int s_assistant_blocks (s_request_t *req, const json_t *message, const char *path,
                               json_t *blocks)
{
    char param[160];
    snprintf (param, sizeof param, "%s.content", path);
    if (s_text_blocks (json_object_get (message, "content"), param, blocks, req->err))
        return -1;
    if (!s_unset (json_object_get (message, "function_call"))) {
        snprintf (param, sizeof param, "%s.function_call", path);
        s_refuse (req->err, param, "%s: use tool_calls; function_call has no call id", param);
        return -1;
    }
    json_t *calls = json_object_get (message, "tool_calls");
    if (s_unset (calls))
        return 0;
    if (!json_is_array (calls)) {
        snprintf (param, sizeof param, "%s.tool_calls", path);
        s_refuse (req->err, param, "%s must be an array", param);
        return -1;
    }
    size_t j;
    json_t *call;
    json_array_foreach (calls, j, call)
    {
        json_t *function = json_object_get (call, "function");
        const char *id = json_string_value (json_object_get (call, "id"));
        const char *name = json_string_value (json_object_get (function, "name"));
        json_t *arguments = json_object_get (function, "arguments");
        if (!id || !*id) {
            snprintf (param, sizeof param, "%s.tool_calls[%zu].id", path, j);
            s_refuse (req->err, param, "%s is required", param);
            return -1;
        }
        if (!name || !*name) {
            snprintf (param, sizeof param, "%s.tool_calls[%zu].function.name", path, j);
            s_refuse (req->err, param, "%s is required", param);
            return -1;
        }
        //  Converse wants the input as a JSON object, not the string OpenAI carries; an
        //  empty string is what some clients send for a call without arguments
        json_t *input = NULL;
        if (json_is_string (arguments) && json_string_length (arguments) == 0)
            input = json_object ();
        else if (json_is_string (arguments))
            input =
                json_loadb (json_string_value (arguments), json_string_length (arguments), 0, NULL);
        if (!json_is_object (input)) {
            json_decref (input);
            snprintf (param, sizeof param, "%s.tool_calls[%zu].function.arguments", path, j);
            s_refuse (req->err, param, "%s must be a JSON object in a string", param);
            return -1;
        }
        if (json_array_append_new (blocks, json_pack ("{s{ss ss so}}", "toolUse", "toolUseId", id,
                                                      "name", name, "input", input)))
            return -1;
        json_object_set_new (req->called_tools, name, json_true ());
        req->tool_blocks = true;
    }
    return 0;
}

static int s_tool_result_blocks (s_request_t *req, const json_t *message, const char *path,
                                 json_t *blocks)
{
    char param[160];
    const char *id = json_string_value (json_object_get (message, "tool_call_id"));
    if (!id || !*id) {
        snprintf (param, sizeof param, "%s.tool_call_id", path);
        s_refuse (req->err, param, "%s is required", param);
        return -1;
    }
    snprintf (param, sizeof param, "%s.content", path);
    char *text = s_joined_text (json_object_get (message, "content"), param, req->err);
    if (!text)
        return -1;
    //  A result that is a JSON object goes as a json block, which models read as data;
    //  anything else as text. Empty content is an empty list: blank text is refused.
    json_t *content = json_array ();
    json_t *object = *text ? json_loads (text, 0, NULL) : NULL;
    if (json_is_object (object))
        json_array_append_new (content, json_pack ("{so}", "json", object));
    else {
        json_decref (object);
        s_add_text (content, text, strlen (text));
    }
    free (text);
    req->tool_blocks = true;
    return json_array_append_new (
        blocks, json_pack ("{s{ss so}}", "toolResult", "toolUseId", id, "content", content));
}

//  Append blocks as a turn of role, merged into the last turn when it has the same role:
//  Converse needs turns to alternate, where OpenAI allows runs (parallel tool results, a
//  user message after them, two assistant messages).
static int s_add_turn (s_request_t *req, const char *role, json_t *blocks, size_t index)
{
    if (json_array_size (blocks) == 0)
        return 0; // nothing to say: no turn, and no blank block either
    size_t turns = json_array_size (req->turns);
    json_t *last = turns ? json_array_get (req->turns, turns - 1) : NULL;
    if (last && strcmp (json_string_value (json_object_get (last, "role")), role) == 0)
        return json_array_extend (json_object_get (last, "content"), blocks);
    if (!last)
        req->first_user = index;
    return json_array_append_new (req->turns,
                                  json_pack ("{ss sO}", "role", role, "content", blocks));
}

static int s_messages (s_request_t *req, const json_t *messages)
{
    char path[64];
    if (!json_is_array (messages) || json_array_size (messages) == 0) {
        s_refuse (req->err, "messages", "messages must be a non-empty array");
        return -1;
    }
    size_t i;
    json_t *message;
    json_array_foreach (messages, i, message)
    {
        snprintf (path, sizeof path, "messages[%zu]", i);
        const char *role = json_string_value (json_object_get (message, "role"));
        json_t *blocks = json_array ();
        int rc = -1;
        char param[96];
        snprintf (param, sizeof param, "%s.content", path);
        if (!blocks)
            return -1;
        if (role && (strcmp (role, "system") == 0 || strcmp (role, "developer") == 0)) {
            //  Converse keeps system text apart; its place between turns is lost
            rc = s_text_blocks (json_object_get (message, "content"), param, req->system, req->err);
        } else if (role && strcmp (role, "user") == 0) {
            rc = s_user_blocks (json_object_get (message, "content"), param, blocks, req->err);
            rc = rc ? rc : s_add_turn (req, "user", blocks, i);
        } else if (role && strcmp (role, "assistant") == 0) {
            rc = s_assistant_blocks (req, message, path, blocks);
            rc = rc ? rc : s_add_turn (req, "assistant", blocks, i);
        } else if (role && strcmp (role, "tool") == 0) {
            rc = s_tool_result_blocks (req, message, path, blocks);
            rc = rc ? rc : s_add_turn (req, "user", blocks, i);
        } else {
            snprintf (param, sizeof param, "%s.role", path);
            s_refuse (req->err, param, "%s must be system, developer, user, assistant or tool",
                      param);
        }
        json_decref (blocks);
        if (rc)
            return -1;
    }
    json_t *first = json_array_get (req->turns, 0);
    if (!first) {
        s_refuse (req->err, "messages", "messages has no user or assistant content");
        return -1;
    }
    if (strcmp (json_string_value (json_object_get (first, "role")), "user") != 0) {
        snprintf (path, sizeof path, "messages[%zu].role", req->first_user);
        s_refuse (req->err, path, "%s: Bedrock needs the conversation to begin with a user message",
                  path);
        return -1;
    }
    return 0;
}

static int s_inference_config (const json_t *request, json_t *config, ar_xlate_error_t *err)
{
    static const char *const limits[] = {"max_completion_tokens", "max_tokens"};
    for (size_t i = 0; i < 2; i++) {
        json_t *value = json_object_get (request, limits[i]);
        if (s_unset (value))
            continue;
        if (!json_is_integer (value) || json_integer_value (value) < 1) {
            s_refuse (err, limits[i], "%s must be a positive integer", limits[i]);
            return -1;
        }
        if (!json_object_get (config, "maxTokens"))
            json_object_set (config, "maxTokens", value);
    }
    static const char *const samplers[][2] = {{"temperature", "temperature"}, {"top_p", "topP"}};
    for (size_t i = 0; i < 2; i++) {
        json_t *value = json_object_get (request, samplers[i][0]);
        if (s_unset (value))
            continue;
        if (!json_is_number (value)) {
            s_refuse (err, samplers[i][0], "%s must be a number", samplers[i][0]);
            return -1;
        }
        json_object_set_new (config, samplers[i][1], json_real (json_number_value (value)));
    }
    json_t *stop = json_object_get (request, "stop");
    json_t *sequences = json_array ();
    if (json_is_string (stop))
        json_array_append (sequences, stop);
    else if (json_is_array (stop)) {
        size_t i;
        json_t *item;
        json_array_foreach (stop, i, item)
        {
            if (!json_is_string (item)) {
                char param[48];
                snprintf (param, sizeof param, "stop[%zu]", i);
                json_decref (sequences);
                s_refuse (err, param, "%s must be a string", param);
                return -1;
            }
            json_array_append (sequences, item);
        }
    } else if (!s_unset (stop)) {
        json_decref (sequences);
        s_refuse (err, "stop", "stop must be a string or an array of strings");
        return -1;
    }
    //  Converse refuses empty stop strings; OpenAI ignores them
    for (size_t i = json_array_size (sequences); i-- > 0;)
        if (json_string_length (json_array_get (sequences, i)) == 0)
            json_array_remove (sequences, i);
    if (json_array_size (sequences))
        json_object_set (config, "stopSequences", sequences);
    json_decref (sequences);
    return 0;
}

static json_t *s_tool_spec (const json_t *tool, size_t i, ar_xlate_error_t *err)
{
    char param[64];
    const char *type = json_string_value (json_object_get (tool, "type"));
    json_t *function = json_object_get (tool, "function");
    const char *name = json_string_value (json_object_get (function, "name"));
    if (!type || strcmp (type, "function") != 0) {
        snprintf (param, sizeof param, "tools[%zu].type", i);
        return s_refuse (err, param, "%s: Bedrock takes function tools only", param);
    }
    if (!name || !*name) {
        snprintf (param, sizeof param, "tools[%zu].function.name", i);
        return s_refuse (err, param, "%s is required", param);
    }
    json_t *schema = json_object_get (function, "parameters");
    json_t *spec = json_pack ("{ss}", "name", name);
    json_t *description = json_object_get (function, "description");
    if (json_is_string (description) && json_string_length (description))
        json_object_set (spec, "description", description);
    //  OpenAI lets a function without parameters take none; Converse requires a schema
    json_object_set_new (spec, "inputSchema",
                         json_is_object (schema)
                             ? json_pack ("{sO}", "json", schema)
                             : json_pack ("{s{ss s{}}}", "json", "type", "object", "properties"));
    return json_pack ("{so}", "toolSpec", spec);
}

//  tools and tool_choice as a toolConfig, into out (left NULL when there is none to send).
static int s_tool_config (const json_t *request, s_request_t *req, json_t **out)
{
    json_t *tools = json_object_get (request, "tools");
    json_t *choice = json_object_get (request, "tool_choice");
    json_t *specs = json_array ();
    if (!s_unset (tools) && !json_is_array (tools)) {
        json_decref (specs);
        s_refuse (req->err, "tools", "tools must be an array");
        return -1;
    }
    size_t i;
    json_t *tool;
    json_array_foreach (tools, i, tool)
    {
        json_t *spec = s_tool_spec (tool, i, req->err);
        if (!spec) {
            json_decref (specs);
            return -1;
        }
        json_array_append_new (specs, spec);
    }
    json_t *tool_choice = NULL; // Converse toolChoice; NULL leaves Bedrock's default (auto)
    bool none = false;
    const char *mode = json_string_value (choice);
    if (mode && strcmp (mode, "none") == 0)
        none = true;
    else if (mode && strcmp (mode, "auto") == 0)
        tool_choice = json_pack ("{s{}}", "auto");
    else if (mode && strcmp (mode, "required") == 0)
        tool_choice = json_pack ("{s{}}", "any");
    else if (json_is_object (choice)) {
        const char *name =
            json_string_value (json_object_get (json_object_get (choice, "function"), "name"));
        if (!name || !*name) {
            json_decref (specs);
            s_refuse (req->err, "tool_choice.function.name",
                      "tool_choice.function.name is required");
            return -1;
        }
        tool_choice = json_pack ("{s{ss}}", "tool", "name", name);
    } else if (!s_unset (choice)) {
        json_decref (specs);
        s_refuse (req->err, "tool_choice",
                  "tool_choice must be none, auto, required or a function");
        return -1;
    }
    if (tool_choice && json_array_size (specs) == 0 && !json_object_get (tool_choice, "auto")) {
        json_decref (specs);
        json_decref (tool_choice);
        s_refuse (req->err, "tool_choice", "tool_choice asks for a tool but tools is empty");
        return -1;
    }
    //  Converse has no "none". Without tools the model cannot call one, so none means
    //  sending no toolConfig; but Bedrock refuses toolUse/toolResult blocks without one, so
    //  when the history has them the tools stay (the model may then still call one).
    if (none && !req->tool_blocks)
        json_array_clear (specs);
    if (none || json_array_size (specs) == 0) {
        json_decref (tool_choice);
        tool_choice = NULL;
    }
    //  History with tool blocks and no tools at all: declare the tools it calls, with an
    //  open schema, so Bedrock accepts the history
    if (req->tool_blocks && json_array_size (specs) == 0) {
        const char *name;
        json_t *unused;
        json_object_foreach (req->called_tools, name, unused)
        {
            json_array_append_new (specs, json_pack ("{s{ss s{s{ss}}}}", "toolSpec", "name", name,
                                                     "inputSchema", "json", "type", "object"));
        }
    }
    if (json_array_size (specs)) {
        *out = json_pack ("{so}", "tools", specs);
        if (tool_choice)
            json_object_set_new (*out, "toolChoice", tool_choice);
    } else {
        json_decref (specs);
        json_decref (tool_choice);
    }
    return 0;
}

//  Members that would change the answer and Converse cannot express: refused, not dropped.
static int s_check_refused (const json_t *request, ar_xlate_error_t *err)
{
    json_t *n = json_object_get (request, "n");
    if (!s_unset (n) && (!json_is_integer (n) || json_integer_value (n) != 1)) {
        s_refuse (err, "n", "n: Bedrock Converse returns one choice; n must be 1");
        return -1;
    }
    if (json_is_true (json_object_get (request, "logprobs"))) {
        s_refuse (err, "logprobs", "logprobs: Bedrock Converse does not return log probabilities");
        return -1;
    }
    json_t *top = json_object_get (request, "top_logprobs");
    if (!s_unset (top) && !(json_is_integer (top) && json_integer_value (top) == 0)) {
        s_refuse (err, "top_logprobs",
                  "top_logprobs: Bedrock Converse does not return log probabilities");
        return -1;
    }
    json_t *format = json_object_get (request, "response_format");
    const char *format_type = json_string_value (json_object_get (format, "type"));
    if (!s_unset (format) && (!format_type || strcmp (format_type, "text") != 0)) {
        s_refuse (err, "response_format.type",
                  "response_format.type: Bedrock Converse has no JSON mode; only text");
        return -1;
    }
    if (!s_unset (json_object_get (request, "audio"))) {
        s_refuse (err, "audio", "audio: Bedrock Converse does not answer with audio");
        return -1;
    }
    json_t *modalities = json_object_get (request, "modalities");
    size_t i;
    json_t *modality;
    json_array_foreach (modalities, i, modality)
    {
        if (!json_is_string (modality) || strcmp (json_string_value (modality), "text")) {
            char param[48];
            snprintf (param, sizeof param, "modalities[%zu]", i);
            s_refuse (err, param, "%s: Bedrock Converse answers with text only", param);
            return -1;
        }
    }
    static const char *const legacy[] = {"functions", "function_call"};
    for (i = 0; i < 2; i++)
        if (!s_unset (json_object_get (request, legacy[i]))) {
            s_refuse (err, legacy[i], "%s: use tools and tool_choice", legacy[i]);
            return -1;
        }
    return 0;
}

//  Dropped without a word, as Converse has nothing for them and the answer stays valid:
//  stream (the URL, /converse or /converse-stream, decides), stream_options (the stream
//  translator's include_usage), user, metadata, store and service_tier (OpenAI-side
//  bookkeeping), seed, frequency/presence penalties and logit_bias (sampling hints Converse
//  only takes per model, through additionalModelRequestFields), parallel_tool_calls (a
//  hint; the caller handles one call as well as several), reasoning_effort (per model too).
json_t *ar_xlate_openai_to_converse_request (const json_t *request, ar_xlate_error_t *err)
{
    if (!json_is_object (request))
        return s_refuse (err, "", "the request body must be a JSON object");
    if (s_check_refused (request, err))
        return NULL;
    s_request_t req = {.err = err,
                       .turns = json_array (),
                       .system = json_array (),
                       .called_tools = json_object ()};
    json_t *out = json_object ();
    json_t *config = json_object ();
    json_t *tool_config = NULL;
    if (!req.turns || !req.system || !req.called_tools || !out || !config ||
        s_messages (&req, json_object_get (request, "messages")) ||
        s_inference_config (request, config, err) || s_tool_config (request, &req, &tool_config)) {
        json_decref (out);
        out = NULL;
    } else {
        json_object_set (out, "messages", req.turns);
        if (json_array_size (req.system))
            json_object_set (out, "system", req.system);
        if (json_object_size (config))
            json_object_set (out, "inferenceConfig", config);
        if (tool_config)
            json_object_set (out, "toolConfig", tool_config);
    }
    json_decref (tool_config);
    json_decref (config);
    json_decref (req.turns);
    json_decref (req.system);
    json_decref (req.called_tools);
    return out;
}

//  ---------------------------------------------------------------------------
//  Whole responses: Converse -> chat.completion

json_t *ar_xlate_converse_to_openai_response (const json_t *response, const char *model,
                                              ar_usage_t *usage)
{
    json_t *blocks = json_object_get (
        json_object_get (json_object_get (response, "output"), "message"), "content");
    if (!json_is_array (blocks))
        return NULL;
    //  Text blocks join with nothing between them, as their deltas do in a stream
    size_t size = 1, i;
    json_t *block;
    json_array_foreach (blocks, i, block)
    {
        size += json_string_length (json_object_get (block, "text"));
    }
    char *text = malloc (size);
    json_t *calls = json_array ();
    if (!text || !calls) {
        free (text);
        json_decref (calls);
        return NULL;
    }
    size_t used = 0;
    json_array_foreach (blocks, i, block)
    {
        json_t *piece = json_object_get (block, "text");
        json_t *tool_use = json_object_get (block, "toolUse");
        if (json_is_string (piece)) {
            memcpy (text + used, json_string_value (piece), json_string_length (piece));
            used += json_string_length (piece);
        } else if (json_is_object (tool_use)) {
            const char *id = json_string_value (json_object_get (tool_use, "toolUseId"));
            const char *name = json_string_value (json_object_get (tool_use, "name"));
            json_t *input = json_object_get (tool_use, "input");
            char *arguments =
                input ? json_dumps (input, JSON_COMPACT | JSON_ENCODE_ANY) : strdup ("{}");
            if (!id || !name || !arguments) {
                free (arguments);
                free (text);
                json_decref (calls);
                return NULL;
            }
            json_array_append_new (calls,
                                   json_pack ("{ss ss s{ss ss}}", "id", id, "type", "function",
                                              "function", "name", name, "arguments", arguments));
            free (arguments);
        }
        //  reasoningContent has no place in chat.completion; images and the rest neither
    }
    text[used] = 0;
    //  No text at all is null content, as OpenAI says it (with tool calls, or a blank answer)
    json_t *message = json_pack ("{ss so? sn}", "role", "assistant", "content",
                                 used ? json_stringn (text, used) : NULL, "refusal");
    free (text);
    if (json_array_size (calls))
        json_object_set (message, "tool_calls", calls);
    json_decref (calls);

    char id[48];
    s_new_id (id, sizeof id, "chatcmpl-");
    const char *stop = json_string_value (json_object_get (response, "stopReason"));
    json_t *out =
        json_pack ("{ss ss sI ss s[{si so ss}]}", "id", id, "object", "chat.completion", "created",
                   (json_int_t)time (NULL), "model", model ? model : "", "choices", "index", 0,
                   "message", message, "finish_reason", s_finish_reason (stop));
    json_t *openai_usage = s_usage (json_object_get (response, "usage"), usage);
    if (out && openai_usage)
        json_object_set_new (out, "usage", openai_usage);
    else
        json_decref (openai_usage);
    return out;
}

//  ---------------------------------------------------------------------------
//  Streams: ConverseStream events -> chat.completion.chunk

typedef struct {
    ar_xlate_chunks_t out; // id, model, what went out
    bool started;          // the role chunk went out
    bool stopped;          // messageStop seen, finish chunk sent
    bool done;             // [DONE] sent
    json_t *usage;         // OpenAI usage once metadata said it
    json_t *tool_of;       // contentBlockIndex (as a key) -> tool_calls index
    json_int_t tools;      // tool calls begun so far
} s_stream_t;
AR_XLATE_CHUNKS_FIRST (s_stream_t, out);

static void s_stream_destroy (void *state)
{
    s_stream_t *self = state;
    if (self) {
        json_decref (self->usage);
        json_decref (self->tool_of);
    }
    ar_xlate_chunks_destroy (self);
}

static void *s_stream_create (const char *model, bool include_usage)
{
    s_stream_t *self = ar_xlate_chunks_new (sizeof *self, model, include_usage);
    if (!self)
        return NULL;
    self->tool_of = json_object ();
    if (!self->tool_of) {
        s_stream_destroy (self);
        return NULL;
    }
    s_new_id (self->out.id, sizeof self->out.id, "chatcmpl-");
    return self;
}

//  The first chunk names the role; sent on messageStart, or before whatever comes first.
static int s_start (s_stream_t *self, const ar_xlate_sink_t *sink)
{
    if (self->started)
        return 0;
    self->started = true;
    return ar_xlate_chunks_role (&self->out, sink);
}

//  After messageStop and metadata: the usage chunk if asked for, then [DONE].
static int s_end (s_stream_t *self, const ar_xlate_sink_t *sink)
{
    self->done = true;
    return ar_xlate_chunks_end (&self->out, sink, json_incref (self->usage));
}

static int s_content_block_start (s_stream_t *self, const json_t *event,
                                  const ar_xlate_sink_t *sink)
{
    json_t *tool_use = json_object_get (json_object_get (event, "start"), "toolUse");
    json_t *index = json_object_get (event, "contentBlockIndex");
    if (!tool_use)
        return 0; // text blocks start with their first delta; other starts carry nothing
    const char *id = json_string_value (json_object_get (tool_use, "toolUseId"));
    const char *name = json_string_value (json_object_get (tool_use, "name"));
    if (!json_is_integer (index) || !id || !name)
        return ar_xlate_chunks_error (&self->out, sink,
                                      "Bedrock sent a malformed contentBlockStart event",
                                      "server_error", "upstream_malformed_event");
    char key[32];
    snprintf (key, sizeof key, "%" JSON_INTEGER_FORMAT, json_integer_value (index));
    json_int_t k = self->tools++;
    json_object_set_new (self->tool_of, key, json_integer (k));
    return ar_xlate_chunks_tool_call (&self->out, sink, k, id, name);
}

static int s_content_block_delta (s_stream_t *self, const json_t *event,
                                  const ar_xlate_sink_t *sink)
{
    json_t *delta = json_object_get (event, "delta");
    json_t *text = json_object_get (delta, "text");
    json_t *tool_use = json_object_get (delta, "toolUse");
    if (json_is_string (text))
        return json_string_length (text) == 0
                   ? 0
                   : ar_xlate_chunks_text (&self->out, sink, json_string_value (text),
                                           json_string_length (text));
    if (!tool_use)
        return 0; // reasoningContent, citations: nothing in chat chunks says them
    char key[32];
    json_t *index = json_object_get (event, "contentBlockIndex");
    snprintf (key, sizeof key, "%" JSON_INTEGER_FORMAT, json_integer_value (index));
    json_t *k = json_is_integer (index) ? json_object_get (self->tool_of, key) : NULL;
    json_t *input = json_object_get (tool_use, "input");
    if (!k || !json_is_string (input))
        return ar_xlate_chunks_error (&self->out, sink,
                                      "Bedrock sent tool input for a block it did not start",
                                      "server_error", "upstream_malformed_event");
    if (json_string_length (input) == 0)
        return 0; // Bedrock opens each input with an empty piece; no chunk says nothing
    return ar_xlate_chunks_arguments (&self->out, sink, json_integer_value (k),
                                      json_string_value (input), json_string_length (input));
}

static bool s_is_exception (const char *name)
{
    size_t len = strlen (name);
    return len > 9 && strcmp (name + len - 9, "Exception") == 0;
}

//  An exception event: the OpenAI error type its kind implies; the AWS name is the code.
static int s_exception (s_stream_t *self, const char *name, const json_t *event,
                        const ar_xlate_sink_t *sink)
{
    const char *type = "server_error";
    if (strcmp (name, "throttlingException") == 0)
        type = "rate_limit_error";
    else if (strcmp (name, "validationException") == 0)
        type = "invalid_request_error";
    const char *message = json_string_value (json_object_get (event, "message"));
    return ar_xlate_chunks_error (
        &self->out, sink, message ? message : "Bedrock ended the stream with an error", type, name);
}

static int s_stream_event (void *state, const char *name, const char *data, size_t len,
                           const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    s_stream_t *self = state;
    if (self->out.failed)
        return -1;
    if (self->done)
        return 0; // metadata is the last event; anything after it has no place
    json_t *event = json_loadb (data, len, 0, NULL);
    int rc = 0;
    if (name && s_is_exception (name))
        rc = s_exception (self, name, event, sink);
    else if (!name || !json_is_object (event))
        rc = ar_xlate_chunks_error (&self->out, sink,
                                    "Bedrock sent an event that is not a ConverseStream event",
                                    "server_error", "upstream_malformed_event");
    else if (strcmp (name, "messageStart") == 0)
        rc = s_start (self, sink);
    else if (strcmp (name, "contentBlockStart") == 0)
        rc = s_start (self, sink) ? -1 : s_content_block_start (self, event, sink);
    else if (strcmp (name, "contentBlockDelta") == 0)
        rc = s_start (self, sink) ? -1 : s_content_block_delta (self, event, sink);
    else if (strcmp (name, "messageStop") == 0 && !self->stopped) {
        const char *stop = json_string_value (json_object_get (event, "stopReason"));
        self->stopped = true;
        rc = s_start (self, sink)
                 ? -1
                 : ar_xlate_chunks_finish (&self->out, sink, s_finish_reason (stop));
        if (rc == 0 && self->usage)
            rc = s_end (self, sink); // metadata came early: nothing else is coming
    } else if (strcmp (name, "metadata") == 0) {
        json_t *openai_usage = s_usage (json_object_get (event, "usage"), usage);
        if (openai_usage) {
            json_decref (self->usage);
            self->usage = openai_usage;
        }
        if (self->stopped)
            rc = s_end (self, sink);
    }
    //  contentBlockStop, and events Bedrock may add later, carry nothing for the caller
    json_decref (event);
    return rc;
}

static int s_stream_finish (void *state, const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    (void)usage; // usage only ever comes in metadata, already counted
    s_stream_t *self = state;
    if (self->out.failed)
        return -1;
    if (self->done)
        return 0;
    if (!self->stopped)
        return ar_xlate_chunks_error (&self->out, sink,
                                      "Bedrock ended the stream before the answer was complete",
                                      "server_error", "upstream_incomplete");
    return s_end (self, sink);
}

const ar_xlate_stream_ops_t ar_xlate_stream_converse_to_openai = {
    s_stream_create, s_stream_event, s_stream_finish, s_stream_destroy};

//  ---------------------------------------------------------------------------
//  Self-test

//  A member by path ("messages[2].content[0].toolResult.toolUseId"), NULL if not there.
static json_t *s_at (const json_t *root, const char *path)
{
    json_t *node = (json_t *)root;
    const char *p = path;
    while (node && *p) {
        if (*p == '.')
            p++;
        if (*p == '[') {
            char *end;
            node = json_array_get (node, strtoul (p + 1, &end, 10));
            p = end + 1;
        } else {
            char key[64];
            size_t n = strcspn (p, ".[");
            snprintf (key, sizeof key, "%.*s", (int)n, p);
            node = json_object_get (node, key);
            p += n;
        }
    }
    return node;
}

static bool s_is (const json_t *root, const char *path, const char *expected)
{
    const char *value = json_string_value (s_at (root, path));
    return value && strcmp (value, expected) == 0;
}

static json_int_t s_int (const json_t *root, const char *path)
{
    json_t *value = s_at (root, path);
    assert (json_is_integer (value));
    return json_integer_value (value);
}

static json_t *s_parse (const char *text)
{
    json_error_t error;
    json_t *root = json_loads (text, 0, &error);
    if (!root)
        fprintf (stderr, "test JSON does not parse at line %d column %d\n", error.line,
                 error.column);
    assert (root);
    return root;
}

//  Translate a request; the input must come out unchanged.
static json_t *s_request (const char *text, ar_xlate_error_t *err)
{
    json_t *request = s_parse (text);
    json_t *copy = json_deep_copy (request);
    memset (err, 0, sizeof *err);
    json_t *out = ar_xlate_openai_to_converse_request (request, err);
    assert (json_equal (request, copy));
    json_decref (copy);
    json_decref (request);
    return out;
}

#define S_PNG                                                                                      \
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+"                                \
    "M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
#define S_JPEG                                                                                     \
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////" \
    "////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA="

static void s_test_full_request (void)
{
    const char *text =
        "{\"model\": \"anthropic.claude-3-5-sonnet-20241022-v2:0\","
        " \"messages\": ["
        "  {\"role\": \"system\", \"content\": \"You are a travel assistant.\"},"
        "  {\"role\": \"developer\", \"content\": [{\"type\": \"text\", \"text\": \"Answer in "
        "metric units.\"}]},"
        "  {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Weather in Paris "
        "and Berlin? This is me there.\"}, {\"type\": \"image_url\", \"image_url\": {\"url\": "
        "\"data:image/png;base64," S_PNG "\", \"detail\": \"low\"}}]},"
        "  {\"role\": \"assistant\", \"content\": null, \"tool_calls\": ["
        "   {\"id\": \"call_Kq1LmX8vT2pR\", \"type\": \"function\", \"function\": {\"name\": "
        "\"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\", \\\"unit\\\": "
        "\\\"celsius\\\"}\"}},"
        "   {\"id\": \"call_Zr7NwB3yQ9sD\", \"type\": \"function\", \"function\": {\"name\": "
        "\"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Berlin\\\", \\\"unit\\\": "
        "\\\"celsius\\\"}\"}}]},"
        "  {\"role\": \"tool\", \"tool_call_id\": \"call_Kq1LmX8vT2pR\", \"content\": "
        "\"{\\\"temp_c\\\": 18, \\\"sky\\\": \\\"cloudy\\\"}\"},"
        "  {\"role\": \"tool\", \"tool_call_id\": \"call_Zr7NwB3yQ9sD\", \"content\": "
        "[{\"type\": \"text\", \"text\": \"Sunny, \"}, {\"type\": \"text\", \"text\": \"22 "
        "C\"}]},"
        "  {\"role\": \"user\", \"content\": \"Which is warmer?\"},"
        "  {\"role\": \"assistant\", \"content\": \"Berlin is warmer.\"},"
        "  {\"role\": \"assistant\", \"content\": [{\"type\": \"text\", \"text\": \"By 4 "
        "degrees.\"}]},"
        "  {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"\"}, {\"type\": "
        "\"text\", \"text\": \"And this one?\"}, {\"type\": \"image_url\", \"image_url\": "
        "{\"url\": \"data:image/jpeg;base64," S_JPEG "\"}}]}],"
        " \"max_completion_tokens\": 1024, \"temperature\": 0.3, \"top_p\": 0.9,"
        " \"stop\": [\"\\n\\nHuman:\", \"\"],"
        " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
        "  \"description\": \"Current weather for a city\", \"strict\": true, \"parameters\": "
        "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": "
        "{\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}}, \"required\": "
        "[\"city\"]}}}],"
        " \"tool_choice\": \"auto\", \"parallel_tool_calls\": true,"
        " \"stream\": true, \"stream_options\": {\"include_usage\": true}, \"user\": "
        "\"user-4412\", \"seed\": 7, \"presence_penalty\": 0.5, \"frequency_penalty\": 0.1, "
        "\"store\": false, \"metadata\": {\"team\": \"travel\"}, \"n\": 1, \"logprobs\": false, "
        "\"response_format\": {\"type\": \"text\"}}";
    ar_xlate_error_t err;
    json_t *out = s_request (text, &err);
    assert (out);
    //  Only what Converse takes: no model (in the URL), nothing dropped sneaks through
    assert (json_object_size (out) == 4);
    assert (json_array_size (s_at (out, "system")) == 2);
    assert (s_is (out, "system[0].text", "You are a travel assistant."));
    assert (s_is (out, "system[1].text", "Answer in metric units."));

    assert (json_array_size (s_at (out, "messages")) == 5);
    //  1: text and a png
    assert (s_is (out, "messages[0].role", "user"));
    assert (json_array_size (s_at (out, "messages[0].content")) == 2);
    assert (s_is (out, "messages[0].content[0].text",
                  "Weather in Paris and Berlin? This is me there."));
    assert (json_object_size (s_at (out, "messages[0].content[1]")) == 1);
    assert (s_is (out, "messages[0].content[1].image.format", "png"));
    assert (s_is (out, "messages[0].content[1].image.source.bytes", S_PNG));
    //  2: two parallel calls, arguments as objects
    assert (s_is (out, "messages[1].role", "assistant"));
    assert (json_array_size (s_at (out, "messages[1].content")) == 2);
    assert (s_is (out, "messages[1].content[0].toolUse.toolUseId", "call_Kq1LmX8vT2pR"));
    assert (s_is (out, "messages[1].content[0].toolUse.name", "get_weather"));
    assert (json_object_size (s_at (out, "messages[1].content[0].toolUse.input")) == 2);
    assert (s_is (out, "messages[1].content[0].toolUse.input.city", "Paris"));
    assert (s_is (out, "messages[1].content[0].toolUse.input.unit", "celsius"));
    assert (s_is (out, "messages[1].content[1].toolUse.toolUseId", "call_Zr7NwB3yQ9sD"));
    assert (s_is (out, "messages[1].content[1].toolUse.input.city", "Berlin"));
    //  3: both results and the next user message, one user turn, results first
    assert (s_is (out, "messages[2].role", "user"));
    assert (json_array_size (s_at (out, "messages[2].content")) == 3);
    assert (s_is (out, "messages[2].content[0].toolResult.toolUseId", "call_Kq1LmX8vT2pR"));
    assert (json_array_size (s_at (out, "messages[2].content[0].toolResult.content")) == 1);
    assert (s_int (out, "messages[2].content[0].toolResult.content[0].json.temp_c") == 18);
    assert (s_is (out, "messages[2].content[0].toolResult.content[0].json.sky", "cloudy"));
    assert (s_is (out, "messages[2].content[1].toolResult.toolUseId", "call_Zr7NwB3yQ9sD"));
    assert (s_is (out, "messages[2].content[1].toolResult.content[0].text", "Sunny, 22 C"));
    assert (s_is (out, "messages[2].content[2].text", "Which is warmer?"));
    //  4: two assistant messages, one turn
    assert (s_is (out, "messages[3].role", "assistant"));
    assert (json_array_size (s_at (out, "messages[3].content")) == 2);
    assert (s_is (out, "messages[3].content[0].text", "Berlin is warmer."));
    assert (s_is (out, "messages[3].content[1].text", "By 4 degrees."));
    //  5: the blank text part is gone, the jpeg is there
    assert (s_is (out, "messages[4].role", "user"));
    assert (json_array_size (s_at (out, "messages[4].content")) == 2);
    assert (s_is (out, "messages[4].content[0].text", "And this one?"));
    assert (s_is (out, "messages[4].content[1].image.format", "jpeg"));
    assert (s_is (out, "messages[4].content[1].image.source.bytes", S_JPEG));

    assert (json_object_size (s_at (out, "inferenceConfig")) == 4);
    assert (s_int (out, "inferenceConfig.maxTokens") == 1024);
    assert (json_real_value (s_at (out, "inferenceConfig.temperature")) == 0.3);
    assert (json_real_value (s_at (out, "inferenceConfig.topP")) == 0.9);
    assert (json_array_size (s_at (out, "inferenceConfig.stopSequences")) == 1);
    assert (s_is (out, "inferenceConfig.stopSequences[0]", "\n\nHuman:"));

    assert (json_array_size (s_at (out, "toolConfig.tools")) == 1);
    assert (s_is (out, "toolConfig.tools[0].toolSpec.name", "get_weather"));
    assert (s_is (out, "toolConfig.tools[0].toolSpec.description", "Current weather for a city"));
    assert (json_object_size (s_at (out, "toolConfig.tools[0].toolSpec")) == 3);
    json_t *request = s_parse (text);
    assert (json_equal (s_at (out, "toolConfig.tools[0].toolSpec.inputSchema.json"),
                        s_at (request, "tools[0].function.parameters")));
    json_decref (request);
    assert (json_object_size (s_at (out, "toolConfig.toolChoice")) == 1);
    assert (json_object_size (s_at (out, "toolConfig.toolChoice.auto")) == 0);
    json_decref (out);
}

//  tool_choice in every form, and the toolConfig Bedrock needs for history with tool blocks.
static void s_test_tool_choice (void)
{
#define S_TOOL                                                                                     \
    "{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": "             \
    "{\"type\": \"object\", \"properties\": {\"tz\": {\"type\": \"string\"}}}}}"
#define S_NO_PARAMS "{\"type\": \"function\", \"function\": {\"name\": \"ping\"}}"
#define S_USER      "{\"role\": \"user\", \"content\": \"What time is it in Tokyo?\"}"
#define S_HISTORY                                                                                  \
    S_USER ", {\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"toolu_01\", \"type\": "        \
           "\"function\", \"function\": {\"name\": \"get_time\", \"arguments\": \"\"}}]}, "        \
           "{\"role\": \"tool\", \"tool_call_id\": \"toolu_01\", \"content\": \"\"}"
    ar_xlate_error_t err;
    json_t *out = s_request ("{\"messages\": [" S_USER "], \"tools\": [" S_TOOL ", " S_NO_PARAMS
                             "], \"tool_choice\": \"required\"}",
                             &err);
    assert (out && json_object_size (s_at (out, "toolConfig.toolChoice.any")) == 0);
    assert (json_object_size (s_at (out, "toolConfig.toolChoice")) == 1);
    assert (json_array_size (s_at (out, "toolConfig.tools")) == 2);
    assert (!s_at (out, "toolConfig.tools[0].toolSpec.description"));
    //  A function without parameters takes none: an empty object schema
    assert (s_is (out, "toolConfig.tools[1].toolSpec.inputSchema.json.type", "object"));
    assert (json_object_size (
                s_at (out, "toolConfig.tools[1].toolSpec.inputSchema.json.properties")) == 0);
    assert (!s_at (out, "inferenceConfig"));
    json_decref (out);

    out = s_request ("{\"messages\": [" S_USER "], \"tools\": [" S_TOOL "], \"tool_choice\": "
                     "{\"type\": \"function\", \"function\": {\"name\": \"get_time\"}}}",
                     &err);
    assert (out && s_is (out, "toolConfig.toolChoice.tool.name", "get_time"));
    json_decref (out);

    //  No tool_choice: Bedrock's default, which is auto
    out = s_request ("{\"messages\": [" S_USER "], \"tools\": [" S_TOOL "]}", &err);
    assert (out && s_at (out, "toolConfig.tools[0]") && !s_at (out, "toolConfig.toolChoice"));
    json_decref (out);

    //  none, no tool blocks: no toolConfig at all
    out = s_request ("{\"messages\": [" S_USER "], \"tools\": [" S_TOOL "], \"tool_choice\": "
                     "\"none\"}",
                     &err);
    assert (out && !s_at (out, "toolConfig"));
    json_decref (out);

    //  none with tool blocks: the tools stay (Bedrock requires them), the choice goes
    out = s_request ("{\"messages\": [" S_HISTORY "], \"tools\": [" S_TOOL "], \"tool_choice\": "
                     "\"none\"}",
                     &err);
    assert (out && json_array_size (s_at (out, "toolConfig.tools")) == 1);
    assert (s_at (out, "toolConfig.tools[0].toolSpec.inputSchema.json.properties.tz"));
    assert (!s_at (out, "toolConfig.toolChoice"));
    //  The empty arguments are an empty object; the empty result an empty content list
    assert (json_object_size (s_at (out, "messages[1].content[0].toolUse.input")) == 0);
    assert (json_is_array (s_at (out, "messages[2].content[0].toolResult.content")));
    assert (json_array_size (s_at (out, "messages[2].content[0].toolResult.content")) == 0);
    json_decref (out);

    //  Tool blocks and no tools: the called tools are declared, with an open schema
    out =
        s_request ("{\"messages\": [" S_HISTORY "], \"max_tokens\": 200, \"stop\": \"###\"}", &err);
    assert (out && json_array_size (s_at (out, "toolConfig.tools")) == 1);
    assert (s_is (out, "toolConfig.tools[0].toolSpec.name", "get_time"));
    assert (s_is (out, "toolConfig.tools[0].toolSpec.inputSchema.json.type", "object"));
    assert (!s_at (out, "toolConfig.toolChoice"));
    assert (s_int (out, "inferenceConfig.maxTokens") == 200);
    assert (s_is (out, "inferenceConfig.stopSequences[0]", "###"));
    assert (json_array_size (s_at (out, "inferenceConfig.stopSequences")) == 1);
    json_decref (out);

    //  Tool choice "auto" and no tools: nothing to choose from, nothing sent
    out = s_request ("{\"messages\": [" S_USER "], \"tool_choice\": \"auto\"}", &err);
    assert (out && !s_at (out, "toolConfig") && json_object_size (out) == 1);
    json_decref (out);
}

static void s_test_refusals (void)
{
    static const struct {
        const char *request;
        const char *param;
    } cases[] = {
        {"{\"messages\": [" S_USER "], \"n\": 2}", "n"},
        {"{\"messages\": [" S_USER "], \"logprobs\": true}", "logprobs"},
        {"{\"messages\": [" S_USER "], \"top_logprobs\": 3}", "top_logprobs"},
        {"{\"messages\": [" S_USER "], \"response_format\": {\"type\": \"json_object\"}}",
         "response_format.type"},
        {"{\"messages\": [" S_USER "], \"response_format\": {\"type\": \"json_schema\", "
         "\"json_schema\": {\"name\": \"t\", \"schema\": {\"type\": \"object\"}}}}",
         "response_format.type"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": "
         "\"Look\"}, {\"type\": \"image_url\", \"image_url\": {\"url\": "
         "\"https://images.example.com/cat.png\"}}]}]}",
         "messages[0].content[1].image_url.url"},
        {"{\"messages\": [" S_USER ", {\"role\": \"assistant\", \"content\": \"Sure\"}, "
         "{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": "
         "\"http://images.example.com/cat.png\"}}]}]}",
         "messages[2].content[0].image_url.url"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", "
         "\"image_url\": {\"url\": \"data:image/bmp;base64,Qk0eAAAAAAAAABoAAAAMAAAA\"}}]}]}",
         "messages[0].content[0].image_url.url"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", "
         "\"image_url\": {\"url\": \"data:image/png,%89PNG%0D%0A\"}}]}]}",
         "messages[0].content[0].image_url.url"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", "
         "\"image_url\": {\"url\": \"data:image/png;base64,iVBO*w0K\"}}]}]}",
         "messages[0].content[0].image_url.url"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"input_audio\", "
         "\"input_audio\": {\"data\": \"UklGRiQAAABXQVZF\", \"format\": \"wav\"}}]}]}",
         "messages[0].content[0]"},
        {"{\"messages\": [" S_USER ", {\"role\": \"assistant\", \"tool_calls\": [{\"id\": "
         "\"call_1\", \"type\": \"function\", \"function\": {\"name\": \"get_time\", "
         "\"arguments\": \"{}\"}}, {\"id\": \"call_2\", \"type\": \"function\", \"function\": "
         "{\"name\": \"get_time\", \"arguments\": \"{\\\"tz\\\": \\\"Asia/To\"}}]}]}",
         "messages[1].tool_calls[1].function.arguments"},
        {"{\"messages\": [" S_USER ", {\"role\": \"assistant\", \"tool_calls\": [{\"id\": "
         "\"call_1\", \"type\": \"function\", \"function\": {\"name\": \"get_time\", "
         "\"arguments\": \"[\\\"Asia/Tokyo\\\"]\"}}]}]}",
         "messages[1].tool_calls[0].function.arguments"},
        {"{\"messages\": [" S_USER ", {\"role\": \"assistant\", \"tool_calls\": [{\"type\": "
         "\"function\", \"function\": {\"name\": \"get_time\", \"arguments\": \"{}\"}}]}]}",
         "messages[1].tool_calls[0].id"},
        {"{\"messages\": [" S_USER ", {\"role\": \"assistant\", \"tool_calls\": [{\"id\": "
         "\"call_1\", \"type\": \"function\", \"function\": {\"name\": \"get_time\", "
         "\"arguments\": \"{}\"}}]}, {\"role\": \"tool\", \"content\": \"12:00\"}]}",
         "messages[2].tool_call_id"},
        {"{\"messages\": [" S_USER ", {\"role\": \"function\", \"name\": \"get_time\", "
         "\"content\": \"12:00\"}]}",
         "messages[1].role"},
        {"{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": "
         "\"assistant\", \"content\": \"Hello!\"}, " S_USER "]}",
         "messages[1].role"},
        {"{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}]}", "messages"},
        {"{\"messages\": []}", "messages"},
        {"{\"messages\": [" S_USER "], \"tool_choice\": \"required\"}", "tool_choice"},
        {"{\"messages\": [" S_USER "], \"tools\": [{\"type\": \"web_search_preview\"}]}",
         "tools[0].type"},
        {"{\"messages\": [" S_USER "], \"modalities\": [\"text\", \"audio\"]}", "modalities[1]"},
        {"{\"messages\": [" S_USER "], \"functions\": [{\"name\": \"get_time\"}]}", "functions"},
        {"{\"messages\": [" S_USER "], \"max_tokens\": 0}", "max_tokens"},
        {"{\"messages\": [" S_USER "], \"temperature\": \"warm\"}", "temperature"},
        {"{\"messages\": [" S_USER "], \"stop\": [\"###\", 7]}", "stop[1]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ar_xlate_error_t err;
        json_t *out = s_request (cases[i].request, &err);
        if (out || strcmp (err.param, cases[i].param) != 0)
            fprintf (stderr, "refusal case %zu: got param '%s'\n", i, err.param);
        assert (!out);
        assert (err.status == 400);
        assert (strcmp (err.param, cases[i].param) == 0);
        //  The message names the member and never quotes a value
        assert (strstr (err.message, cases[i].param));
        assert (!strstr (err.message, "example.com") && !strstr (err.message, "Asia"));
        assert (!strstr (err.message, "Tokyo") && !strstr (err.message, "warm"));
        //  A URL is refused for what it is, not as a malformed data: URL
        if (strstr (cases[i].request, "://"))
            assert (strstr (err.message, "cannot fetch"));
    }
}

//  ---------------------------------------------------------------------------
//  Responses, as Bedrock sends them

#define S_TEXT_RESPONSE                                                                            \
    "{\"metrics\": {\"latencyMs\": 812}, \"output\": {\"message\": {\"content\": [{\"text\": "     \
    "\"Berlin is warmer today: 22 C against 18 C in Paris.\"}], \"role\": \"assistant\"}}, "       \
    "\"stopReason\": \"end_turn\", \"usage\": {\"inputTokens\": 25, \"outputTokens\": 14, "        \
    "\"totalTokens\": 39}}"
#define S_TOOL_RESPONSE                                                                            \
    "{\"metrics\": {\"latencyMs\": 1834}, \"output\": {\"message\": {\"content\": ["               \
    "{\"reasoningContent\": {\"reasoningText\": {\"text\": \"Two cities, two calls.\", "           \
    "\"signature\": \"EqQBCkgIARABGAIiQL0\"}}}, "                                                  \
    "{\"text\": \"I'll check both cities.\"}, "                                                    \
    "{\"toolUse\": {\"input\": {\"city\": \"Paris\", \"unit\": \"celsius\"}, \"name\": "           \
    "\"get_weather\", \"toolUseId\": \"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q\"}}, "                       \
    "{\"toolUse\": {\"input\": {\"city\": \"Berlin\", \"unit\": \"celsius\", \"days\": [1, 2]}, "  \
    "\"name\": \"get_weather\", \"toolUseId\": \"tooluse_2Wf8yX0dSpe1nQ0ZCm6wRw\"}}], "            \
    "\"role\": \"assistant\"}}, \"stopReason\": \"tool_use\", \"usage\": "                         \
    "{\"cacheReadInputTokens\": "                                                                  \
    "1536, \"cacheWriteInputTokens\": 0, \"inputTokens\": 12, \"outputTokens\": 80, "              \
    "\"totalTokens\": 1628}}"

static void s_test_responses (void)
{
    ar_usage_t usage = {0};
    json_t *response = s_parse (S_TEXT_RESPONSE);
    json_t *out = ar_xlate_converse_to_openai_response (response, "claude-sonnet", &usage);
    assert (out);
    assert (strncmp (json_string_value (s_at (out, "id")), "chatcmpl-", 9) == 0);
    assert (strlen (json_string_value (s_at (out, "id"))) == 9 + 24);
    assert (s_is (out, "object", "chat.completion"));
    assert (s_int (out, "created") > 1700000000);
    assert (s_is (out, "model", "claude-sonnet"));
    assert (json_array_size (s_at (out, "choices")) == 1);
    assert (s_int (out, "choices[0].index") == 0);
    assert (s_is (out, "choices[0].message.role", "assistant"));
    assert (s_is (out, "choices[0].message.content",
                  "Berlin is warmer today: 22 C against 18 C in Paris."));
    assert (!s_at (out, "choices[0].message.tool_calls"));
    assert (s_is (out, "choices[0].finish_reason", "stop"));
    assert (s_int (out, "usage.prompt_tokens") == 25);
    assert (s_int (out, "usage.completion_tokens") == 14);
    assert (s_int (out, "usage.total_tokens") == 39);
    assert (s_int (out, "usage.prompt_tokens_details.cached_tokens") == 0);
    assert (usage.has_input && usage.input_tokens == 25);
    assert (usage.has_output && usage.output_tokens == 14);
    assert (!usage.has_cached);
    //  Every answer gets its own id
    json_t *again = ar_xlate_converse_to_openai_response (response, "claude-sonnet", NULL);
    assert (strcmp (json_string_value (s_at (out, "id")), json_string_value (s_at (again, "id"))));
    json_decref (again);
    json_decref (out);
    json_decref (response);

    //  Reasoning dropped, text kept, two calls with their input as compact JSON, cached usage
    memset (&usage, 0, sizeof usage);
    response = s_parse (S_TOOL_RESPONSE);
    out = ar_xlate_converse_to_openai_response (response, "claude-sonnet", &usage);
    assert (out);
    assert (s_is (out, "choices[0].message.content", "I'll check both cities."));
    assert (json_array_size (s_at (out, "choices[0].message.tool_calls")) == 2);
    assert (s_is (out, "choices[0].message.tool_calls[0].id", "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"));
    assert (s_is (out, "choices[0].message.tool_calls[0].type", "function"));
    assert (s_is (out, "choices[0].message.tool_calls[0].function.name", "get_weather"));
    assert (s_is (out, "choices[0].message.tool_calls[0].function.arguments",
                  "{\"city\":\"Paris\",\"unit\":\"celsius\"}"));
    assert (s_is (out, "choices[0].message.tool_calls[1].id", "tooluse_2Wf8yX0dSpe1nQ0ZCm6wRw"));
    json_t *arguments = s_parse (
        json_string_value (s_at (out, "choices[0].message.tool_calls[1].function.arguments")));
    assert (json_equal (arguments, s_at (response, "output.message.content[3].toolUse.input")));
    json_decref (arguments);
    assert (s_is (out, "choices[0].finish_reason", "tool_calls"));
    assert (s_int (out, "usage.prompt_tokens") == 12 + 1536);
    assert (s_int (out, "usage.completion_tokens") == 80);
    assert (s_int (out, "usage.total_tokens") == 12 + 1536 + 80);
    assert (s_int (out, "usage.prompt_tokens_details.cached_tokens") == 1536);
    assert (usage.input_tokens == 1548 && usage.output_tokens == 80);
    assert (usage.has_cached && usage.cached_input_tokens == 1536);
    json_decref (out);
    json_decref (response);

    //  Tool calls only, and a cache write (counts as prompt, not as cached)
    response = s_parse ("{\"output\": {\"message\": {\"role\": \"assistant\", \"content\": "
                        "[{\"toolUse\": {\"toolUseId\": \"tooluse_q1\", \"name\": \"ping\", "
                        "\"input\": {}}}]}}, \"stopReason\": \"tool_use\", \"usage\": "
                        "{\"inputTokens\": 20, \"outputTokens\": 9, \"totalTokens\": 1029, "
                        "\"cacheWriteInputTokens\": 1000}, \"metrics\": {\"latencyMs\": 300}}");
    out = ar_xlate_converse_to_openai_response (response, "m", NULL);
    assert (out && json_is_null (s_at (out, "choices[0].message.content")));
    assert (s_is (out, "choices[0].message.tool_calls[0].function.arguments", "{}"));
    assert (s_int (out, "usage.prompt_tokens") == 1020);
    assert (s_int (out, "usage.prompt_tokens_details.cached_tokens") == 0);
    json_decref (out);
    json_decref (response);

    //  Every stop reason
    static const char *const stops[][2] = {
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"tool_use", "tool_calls"},
        {"max_tokens", "length"},
        {"guardrail_intervened", "content_filter"},
        {"content_filtered", "content_filter"},
    };
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        char text[512];
        snprintf (text, sizeof text,
                  "{\"output\": {\"message\": {\"role\": \"assistant\", \"content\": "
                  "[{\"text\": \"Sorry, the model cannot answer this question.\"}]}}, "
                  "\"stopReason\": \"%s\", \"usage\": {\"inputTokens\": 3, \"outputTokens\": 1, "
                  "\"totalTokens\": 4}, \"trace\": {\"guardrail\": {}}}",
                  stops[i][0]);
        response = s_parse (text);
        out = ar_xlate_converse_to_openai_response (response, "m", NULL);
        assert (out && s_is (out, "choices[0].finish_reason", stops[i][1]));
        json_decref (out);
        json_decref (response);
    }

    //  Not a Converse answer
    static const char *const bad[] = {
        "{\"message\": \"The security token included in the request is invalid.\"}",
        "{\"output\": {\"message\": {\"role\": \"assistant\", \"content\": \"hi\"}}}",
        "{\"output\": {\"message\": {\"role\": \"assistant\", \"content\": [{\"toolUse\": "
        "{\"input\": {}}}]}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        response = s_parse (bad[i]);
        assert (!ar_xlate_converse_to_openai_response (response, "m", NULL));
        json_decref (response);
    }
}

//  ---------------------------------------------------------------------------
//  Streams

typedef struct {
    json_t *events;   // what the sink got, as strings
    size_t refuse_at; // the sink refuses from this event on (0: never)
} s_sink_t;

static int s_collect (void *arg, const char *name, const char *data, size_t len)
{
    s_sink_t *self = arg;
    assert (name == NULL); // OpenAI events have no name
    if (self->refuse_at && json_array_size (self->events) + 1 >= self->refuse_at)
        return -1;
    json_array_append_new (self->events, json_stringn (data, len));
    return 0;
}

//  One ConverseStream event as the decoder hands it over.
typedef struct {
    const char *name;
    const char *data;
} s_event_t;

//  Run events; returns the rc of the last one run (stops at the first failure).
static int s_run (void *state, const s_event_t *events, size_t count, s_sink_t *sink,
                  ar_usage_t *usage)
{
    ar_xlate_sink_t to = {s_collect, sink};
    for (size_t i = 0; i < count; i++)
        if (ar_xlate_stream_converse_to_openai.event (state, events[i].name, events[i].data,
                                                      strlen (events[i].data), &to, usage))
            return -1;
    return 0;
}

static json_t *s_event_json (const s_sink_t *sink, size_t i)
{
    return s_parse (json_string_value (json_array_get (sink->events, i)));
}

//  Check every chunk's envelope and put the stream back together as one chat.completion
//  (content, tool calls, finish reason, usage), as a client would.
static json_t *s_assemble (const s_sink_t *sink, const char *model, bool include_usage)
{
    size_t count = json_array_size (sink->events);
    assert (count >= 2);
    assert (s_is (sink->events, "[0]", "[DONE]") == false);
    assert (strcmp (json_string_value (json_array_get (sink->events, count - 1)), "[DONE]") == 0);
    json_t *content = NULL, *calls = json_array (), *finish = NULL, *usage = NULL;
    char id[64] = "";
    for (size_t i = 0; i + 1 < count; i++) {
        json_t *chunk = s_event_json (sink, i);
        if (!*id)
            snprintf (id, sizeof id, "%s", json_string_value (s_at (chunk, "id")));
        assert (s_is (chunk, "id", id) && strncmp (id, "chatcmpl-", 9) == 0);
        assert (s_is (chunk, "object", "chat.completion.chunk"));
        assert (s_is (chunk, "model", model));
        assert (s_int (chunk, "created") > 1700000000);
        json_t *choices = s_at (chunk, "choices");
        if (json_array_size (choices) == 0) {
            //  The usage chunk: only when asked, last before [DONE]
            assert (include_usage && i + 2 == count && !usage);
            usage = json_incref (s_at (chunk, "usage"));
            assert (json_is_object (usage));
            json_decref (chunk);
            continue;
        }
        assert (include_usage ? json_is_null (s_at (chunk, "usage")) : !s_at (chunk, "usage"));
        assert (json_array_size (choices) == 1 && s_int (chunk, "choices[0].index") == 0);
        json_t *delta = s_at (chunk, "choices[0].delta");
        assert (json_is_object (delta));
        if (i == 0) {
            assert (s_is (delta, "role", "assistant") && s_is (delta, "content", ""));
            assert (json_object_size (delta) == 2);
        } else
            assert (!s_at (delta, "role"));
        assert (!finish); // nothing after the finish chunk but usage
        json_t *reason = s_at (chunk, "choices[0].finish_reason");
        if (json_is_string (reason)) {
            finish = json_incref (reason);
            assert (json_object_size (delta) == 0);
        } else
            assert (json_is_null (reason));
        json_t *piece = s_at (delta, "content");
        if (json_is_string (piece) && i > 0) {
            json_t *joined = json_sprintf ("%s%s", content ? json_string_value (content) : "",
                                           json_string_value (piece));
            json_decref (content);
            content = joined;
        }
        size_t j;
        json_t *call;
        json_array_foreach (s_at (delta, "tool_calls"), j, call)
        {
            json_int_t k = s_int (call, "index");
            json_t *arguments = s_at (call, "function.arguments");
            assert (json_is_string (arguments));
            if ((size_t)k == json_array_size (calls)) {
                //  The first delta of a call names it, with empty arguments
                assert (s_is (call, "type", "function") && json_string_length (arguments) == 0);
                json_array_append_new (
                    calls, json_pack ("{sO s{sO ss}}", "id", s_at (call, "id"), "function", "name",
                                      s_at (call, "function.name"), "arguments", ""));
            } else {
                assert ((size_t)k < json_array_size (calls) && !s_at (call, "id"));
                json_t *have = s_at (calls, "[0]") ? json_array_get (calls, k) : NULL;
                json_t *sum =
                    json_sprintf ("%s%s", json_string_value (s_at (have, "function.arguments")),
                                  json_string_value (arguments));
                json_object_set_new (json_object_get (have, "function"), "arguments", sum);
            }
        }
        json_decref (chunk);
    }
    assert (finish);
    json_t *message = json_pack ("{so?}", "content", content);
    if (json_array_size (calls))
        json_object_set (message, "tool_calls", calls);
    json_decref (calls);
    json_t *out =
        json_pack ("{s[{so so}]}", "choices", "message", message, "finish_reason", finish);
    if (usage)
        json_object_set_new (out, "usage", usage);
    return out;
}

static void s_test_stream_text (void)
{
    const s_event_t events[] = {
        {"messageStart", "{\"p\":\"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW\","
                         "\"role\":\"assistant\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Berlin\"},"
                              "\"p\":\"abcdefghijklmnopqrs\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\" is warmer\"},"
                              "\"p\":\"abcdefghijklmnopqrstuvwx\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\" today.\"},"
                              "\"p\":\"abcdefghij\"}"},
        {"contentBlockStop", "{\"contentBlockIndex\":0,\"p\":\"abcdefghijklmnopqrstuvwxyzAB\"}"},
        {"messageStop", "{\"p\":\"abcdefghijklmnopqrstuvwxyzABCDEFGHI\",\"stopReason\":"
                        "\"end_turn\"}"},
        {"metadata", "{\"metrics\":{\"latencyMs\":505},\"p\":\"abcdefghijklmnopqrstuvw\","
                     "\"usage\":{\"inputTokens\":11,\"outputTokens\":9,\"totalTokens\":20}}"},
    };
    for (int include_usage = 0; include_usage < 2; include_usage++) {
        s_sink_t sink = {json_array (), 0};
        ar_xlate_sink_t to = {s_collect, &sink};
        ar_usage_t usage = {0};
        void *state = ar_xlate_stream_converse_to_openai.create ("claude-haiku", include_usage);
        assert (state);
        assert (s_run (state, events, 7, &sink, &usage) == 0);
        //  role, three pieces, finish, (usage), [DONE]
        size_t count = json_array_size (sink.events);
        assert (count == (include_usage ? 7u : 6u));
        json_t *chunk = s_event_json (&sink, 0);
        assert (s_is (chunk, "choices[0].delta.role", "assistant"));
        assert (json_is_null (s_at (chunk, "choices[0].finish_reason")));
        json_decref (chunk);
        static const char *const pieces[] = {"Berlin", " is warmer", " today."};
        for (size_t i = 0; i < 3; i++) {
            chunk = s_event_json (&sink, 1 + i);
            assert (s_is (chunk, "choices[0].delta.content", pieces[i]));
            assert (json_object_size (s_at (chunk, "choices[0].delta")) == 1);
            assert (json_is_null (s_at (chunk, "choices[0].finish_reason")));
            json_decref (chunk);
        }
        chunk = s_event_json (&sink, 4);
        assert (s_is (chunk, "choices[0].finish_reason", "stop"));
        assert (json_object_size (s_at (chunk, "choices[0].delta")) == 0);
        json_decref (chunk);
        if (include_usage) {
            chunk = s_event_json (&sink, 5);
            assert (json_array_size (s_at (chunk, "choices")) == 0);
            assert (s_int (chunk, "usage.prompt_tokens") == 11);
            assert (s_int (chunk, "usage.completion_tokens") == 9);
            assert (s_int (chunk, "usage.total_tokens") == 20);
            assert (s_int (chunk, "usage.prompt_tokens_details.cached_tokens") == 0);
            json_decref (chunk);
        }
        json_t *whole = s_assemble (&sink, "claude-haiku", include_usage);
        assert (s_is (whole, "choices[0].message.content", "Berlin is warmer today."));
        json_decref (whole);
        assert (usage.has_input && usage.input_tokens == 11);
        assert (usage.has_output && usage.output_tokens == 9 && !usage.has_cached);
        //  The stream is over: finish adds nothing
        assert (ar_xlate_stream_converse_to_openai.finish (state, &to, &usage) == 0);
        assert (json_array_size (sink.events) == count);
        ar_xlate_stream_converse_to_openai.destroy (state);
        json_decref (sink.events);
    }
}

static void s_test_stream_tools (void)
{
    const s_event_t events[] = {
        {"messageStart", "{\"p\":\"abcdefghijklmnopqr\",\"role\":\"assistant\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":"
                              "{\"text\":\"Two cities, two calls.\"}},\"p\":\"abcdefgh\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":"
                              "{\"signature\":\"EqQBCkgIARABGAIiQL0\"}},\"p\":\"abc\"}"},
        {"contentBlockStop", "{\"contentBlockIndex\":0,\"p\":\"abcdefghijklmnopqrstuvwxyzAB\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"I'll check\"},"
                              "\"p\":\"abcdefghijklm\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"text\":\" both cities.\"},"
                              "\"p\":\"abcdefghijklm\"}"},
        {"contentBlockStop", "{\"contentBlockIndex\":1,\"p\":\"abcdefghijklmnopq\"}"},
        {"contentBlockStart", "{\"contentBlockIndex\":2,\"p\":\"abcdefghijklmnopqrstuv\","
                              "\"start\":{\"toolUse\":{\"name\":\"get_weather\",\"toolUseId\":"
                              "\"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q\"}}}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"\"}},"
                              "\"p\":\"abcdefghijklmnopqrstuvwxyzABCDEF\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":"
                              "\"{\\\"city\\\": \\\"Pa\"}},\"p\":\"abcdefghij\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":"
                              "\"ris\\\", \\\"unit\\\": \\\"celsius\\\"}\"}},\"p\":\"abcd\"}"},
        {"contentBlockStop",
         "{\"contentBlockIndex\":2,\"p\":\"abcdefghijklmnopqrstuvwxyzABCDEFG\"}"},
        {"contentBlockStart", "{\"contentBlockIndex\":3,\"p\":\"abcdefghijkl\",\"start\":"
                              "{\"toolUse\":{\"name\":\"get_weather\",\"toolUseId\":"
                              "\"tooluse_2Wf8yX0dSpe1nQ0ZCm6wRw\"}}}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":3,\"delta\":{\"toolUse\":{\"input\":"
                              "\"{\\\"city\\\": \\\"Berlin\\\", \"}},\"p\":\"abcdefghijklmno\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":3,\"delta\":{\"toolUse\":{\"input\":"
                              "\"\\\"unit\\\": \\\"celsius\\\", \\\"days\\\": [1, 2]}\"}},"
                              "\"p\":\"abcdefghi\"}"},
        {"contentBlockStop", "{\"contentBlockIndex\":3,\"p\":\"abcdefghijklmnopqrstu\"}"},
        {"messageStop", "{\"p\":\"abcdefghijklmnopqrstuvwxyzABCDEFGH\",\"stopReason\":"
                        "\"tool_use\"}"},
        {"metadata", "{\"metrics\":{\"latencyMs\":1834},\"p\":\"abcdefghijklmnop\",\"usage\":"
                     "{\"cacheReadInputTokens\":1536,\"cacheWriteInputTokens\":0,\"inputTokens\":"
                     "12,\"outputTokens\":80,\"totalTokens\":1628}}"},
    };
    size_t n = sizeof events / sizeof events[0];
    s_sink_t sink = {json_array (), 0};
    ar_usage_t usage = {0};
    void *state = ar_xlate_stream_converse_to_openai.create ("claude-sonnet", true);
    assert (s_run (state, events, n, &sink, &usage) == 0);
    //  role, 2 text, start A, 2 A pieces (not the empty one), start B, 2 B pieces, finish,
    //  usage, [DONE]; reasoning nowhere
    assert (json_array_size (sink.events) == 12);
    json_t *chunk = s_event_json (&sink, 3);
    assert (json_array_size (s_at (chunk, "choices[0].delta.tool_calls")) == 1);
    assert (s_int (chunk, "choices[0].delta.tool_calls[0].index") == 0);
    assert (s_is (chunk, "choices[0].delta.tool_calls[0].id", "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"));
    assert (s_is (chunk, "choices[0].delta.tool_calls[0].type", "function"));
    assert (s_is (chunk, "choices[0].delta.tool_calls[0].function.name", "get_weather"));
    assert (s_is (chunk, "choices[0].delta.tool_calls[0].function.arguments", ""));
    json_decref (chunk);
    chunk = s_event_json (&sink, 4);
    assert (s_int (chunk, "choices[0].delta.tool_calls[0].index") == 0);
    assert (s_is (chunk, "choices[0].delta.tool_calls[0].function.arguments", "{\"city\": \"Pa"));
    assert (!s_at (chunk, "choices[0].delta.tool_calls[0].id"));
    assert (!s_at (chunk, "choices[0].delta.tool_calls[0].function.name"));
    json_decref (chunk);
    chunk = s_event_json (&sink, 6);
    assert (s_int (chunk, "choices[0].delta.tool_calls[0].index") == 1);
    assert (s_is (chunk, "choices[0].delta.tool_calls[0].id", "tooluse_2Wf8yX0dSpe1nQ0ZCm6wRw"));
    json_decref (chunk);
    chunk = s_event_json (&sink, 8);
    assert (s_int (chunk, "choices[0].delta.tool_calls[0].index") == 1);
    json_decref (chunk);
    chunk = s_event_json (&sink, 9);
    assert (s_is (chunk, "choices[0].finish_reason", "tool_calls"));
    json_decref (chunk);
    chunk = s_event_json (&sink, 10);
    assert (s_int (chunk, "usage.prompt_tokens") == 1548);
    assert (s_int (chunk, "usage.prompt_tokens_details.cached_tokens") == 1536);
    json_decref (chunk);
    assert (usage.input_tokens == 1548 && usage.output_tokens == 80);
    assert (usage.has_cached && usage.cached_input_tokens == 1536);

    //  The stream and the whole answer it streamed say the same thing
    json_t *streamed = s_assemble (&sink, "claude-sonnet", true);
    json_t *response = s_parse (S_TOOL_RESPONSE);
    json_t *whole = ar_xlate_converse_to_openai_response (response, "claude-sonnet", NULL);
    assert (json_equal (s_at (streamed, "choices[0].message.content"),
                        s_at (whole, "choices[0].message.content")));
    assert (json_equal (s_at (streamed, "choices[0].finish_reason"),
                        s_at (whole, "choices[0].finish_reason")));
    assert (json_equal (s_at (streamed, "usage"), s_at (whole, "usage")));
    json_t *calls = s_at (whole, "choices[0].message.tool_calls");
    assert (json_array_size (calls) == 2);
    assert (json_array_size (s_at (streamed, "choices[0].message.tool_calls")) == 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *a = json_array_get (s_at (streamed, "choices[0].message.tool_calls"), i);
        json_t *b = json_array_get (calls, i);
        assert (json_equal (s_at (a, "id"), s_at (b, "id")));
        assert (json_equal (s_at (a, "function.name"), s_at (b, "function.name")));
        //  Same arguments, whitespace aside
        json_t *x = s_parse (json_string_value (s_at (a, "function.arguments")));
        json_t *y = s_parse (json_string_value (s_at (b, "function.arguments")));
        assert (json_equal (x, y));
        json_decref (x);
        json_decref (y);
    }
    json_decref (whole);
    json_decref (response);
    json_decref (streamed);
    ar_xlate_stream_converse_to_openai.destroy (state);
    json_decref (sink.events);
}

//  Append one event (payload stolen) to a test stream.
static void s_push (json_t *events, const char *name, json_t *payload)
{
    char *data = json_dumps (payload, 0); // spaced, unlike what the translator writes
    json_array_append_new (events, json_pack ("[ss]", name, data));
    free (data);
    json_decref (payload);
}

//  The same answer, whole and streamed in pieces of every size from 1 byte up, as Bedrock
//  would: each text and each input's JSON text cut into deltas. Both translations agree.
static void s_test_stream_equals_whole (void)
{
    json_t *response = s_parse (S_TOOL_RESPONSE);
    json_t *whole = ar_xlate_converse_to_openai_response (response, "m", NULL);
    json_t *blocks = s_at (response, "output.message.content");
    for (size_t piece = 1; piece <= 40; piece++) {
        s_sink_t sink = {json_array (), 0};
        ar_xlate_sink_t to = {s_collect, &sink};
        void *state = ar_xlate_stream_converse_to_openai.create ("m", true);
        json_t *events = json_array ();
        json_array_append_new (
            events, json_pack ("[ss]", "messageStart", "{\"role\":\"assistant\",\"p\":\"ab\"}"));
        size_t i;
        json_t *block;
        json_array_foreach (blocks, i, block)
        {
            json_t *tool_use = s_at (block, "toolUse");
            char *text = NULL;
            if (tool_use) {
                s_push (events, "contentBlockStart",
                        json_pack ("{sI s{s{sO sO}}}", "contentBlockIndex", (json_int_t)i, "start",
                                   "toolUse", "toolUseId", s_at (tool_use, "toolUseId"), "name",
                                   s_at (tool_use, "name")));
                text = json_dumps (s_at (tool_use, "input"), 0); // spaced, unlike compact
            } else if (s_at (block, "text"))
                text = strdup (json_string_value (s_at (block, "text")));
            for (size_t at = 0; text && at < strlen (text); at += piece) {
                json_t *delta =
                    tool_use ? json_pack ("{s{s:s%}}", "toolUse", "input", text + at,
                                          strnlen (text + at, piece))
                             : json_pack ("{s:s%}", "text", text + at, strnlen (text + at, piece));
                s_push (events, "contentBlockDelta",
                        json_pack ("{sI so ss}", "contentBlockIndex", (json_int_t)i, "delta", delta,
                                   "p", "abcdefghijkl"));
            }
            free (text);
        }
        s_push (events, "messageStop",
                json_pack ("{sO}", "stopReason", s_at (response, "stopReason")));
        s_push (events, "metadata",
                json_pack ("{sO s{si}}", "usage", s_at (response, "usage"), "metrics", "latencyMs",
                           1834));
        json_t *event;
        json_array_foreach (events, i, event)
        {
            const char *data = json_string_value (json_array_get (event, 1));
            assert (ar_xlate_stream_converse_to_openai.event (
                        state, json_string_value (json_array_get (event, 0)), data, strlen (data),
                        &to, NULL) == 0);
        }
        assert (ar_xlate_stream_converse_to_openai.finish (state, &to, NULL) == 0);
        json_t *streamed = s_assemble (&sink, "m", true);
        assert (json_equal (s_at (streamed, "choices[0].message.content"),
                            s_at (whole, "choices[0].message.content")));
        assert (json_equal (s_at (streamed, "choices[0].finish_reason"),
                            s_at (whole, "choices[0].finish_reason")));
        assert (json_equal (s_at (streamed, "usage"), s_at (whole, "usage")));
        for (i = 0; i < 2; i++) {
            char path[64];
            snprintf (path, sizeof path, "choices[0].message.tool_calls[%zu].id", i);
            assert (json_equal (s_at (streamed, path), s_at (whole, path)));
            snprintf (path, sizeof path, "choices[0].message.tool_calls[%zu].function.name", i);
            assert (json_equal (s_at (streamed, path), s_at (whole, path)));
            snprintf (path, sizeof path, "choices[0].message.tool_calls[%zu].function.arguments",
                      i);
            json_t *x = s_parse (json_string_value (s_at (streamed, path)));
            json_t *y = s_parse (json_string_value (s_at (whole, path)));
            assert (json_equal (x, y));
            json_decref (x);
            json_decref (y);
        }
        json_decref (streamed);
        json_decref (events);
        ar_xlate_stream_converse_to_openai.destroy (state);
        json_decref (sink.events);
    }
    json_decref (whole);
    json_decref (response);
}

//  A stream that breaks: Bedrock's exception events, an early end, malformed events.
static void s_test_stream_errors (void)
{
    const s_event_t begin[] = {
        {"messageStart", "{\"p\":\"abcdefghijklmnopqrstuvwxyzAB\",\"role\":\"assistant\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Berlin is\"},"
                              "\"p\":\"abcdefg\"}"},
    };
    static const struct {
        const char *name;
        const char *data;
        const char *type;
    } exceptions[] = {
        {"throttlingException",
         "{\"message\":\"Too many tokens, please wait before trying again.\"}", "rate_limit_error"},
        {"modelStreamErrorException",
         "{\"message\":\"Model stream error\",\"originalStatusCode\":500,\"originalMessage\":"
         "\"upstream hiccup\"}",
         "server_error"},
        {"internalServerException", "{\"message\":\"Internal server error\"}", "server_error"},
        {"serviceUnavailableException", "{\"message\":\"Service unavailable\"}", "server_error"},
        {"validationException", "{\"message\":\"Input is too long for requested model.\"}",
         "invalid_request_error"},
    };
    for (size_t i = 0; i < sizeof exceptions / sizeof exceptions[0]; i++) {
        s_sink_t sink = {json_array (), 0};
        ar_xlate_sink_t to = {s_collect, &sink};
        void *state = ar_xlate_stream_converse_to_openai.create ("m", true);
        assert (s_run (state, begin, 2, &sink, NULL) == 0);
        assert (json_array_size (sink.events) == 2);
        const s_event_t failure = {exceptions[i].name, exceptions[i].data};
        assert (s_run (state, &failure, 1, &sink, NULL) == -1);
        assert (json_array_size (sink.events) == 3);
        json_t *error = s_event_json (&sink, 2);
        json_t *payload = s_parse (exceptions[i].data);
        assert (json_object_size (error) == 1);
        assert (json_equal (s_at (error, "error.message"), s_at (payload, "message")));
        assert (s_is (error, "error.type", exceptions[i].type));
        assert (s_is (error, "error.code", exceptions[i].name));
        json_decref (payload);
        json_decref (error);
        //  Nothing goes on after it, and the stream does not end as if whole
        assert (s_run (state, begin + 1, 1, &sink, NULL) == -1);
        assert (ar_xlate_stream_converse_to_openai.finish (state, &to, NULL) == -1);
        assert (json_array_size (sink.events) == 3);
        ar_xlate_stream_converse_to_openai.destroy (state);
        json_decref (sink.events);
    }

    //  The connection ends mid-answer: an error, no finish chunk, no [DONE]
    s_sink_t sink = {json_array (), 0};
    ar_xlate_sink_t to = {s_collect, &sink};
    ar_usage_t usage = {0};
    void *state = ar_xlate_stream_converse_to_openai.create ("m", true);
    assert (s_run (state, begin, 2, &sink, &usage) == 0);
    assert (ar_xlate_stream_converse_to_openai.finish (state, &to, &usage) == -1);
    assert (json_array_size (sink.events) == 3);
    json_t *error = s_event_json (&sink, 2);
    assert (s_is (error, "error.type", "server_error") && s_at (error, "error.message"));
    json_decref (error);
    assert (!usage.has_input && !usage.has_output);
    ar_xlate_stream_converse_to_openai.destroy (state);
    json_decref (sink.events);

    //  Ended after messageStop but without metadata: finish chunk, then [DONE], no usage
    const s_event_t no_metadata[] = {
        begin[0],
        begin[1],
        {"contentBlockStop", "{\"contentBlockIndex\":0,\"p\":\"abcdefgh\"}"},
        {"messageStop", "{\"p\":\"abcdefghijk\",\"stopReason\":\"max_tokens\"}"},
    };
    sink.events = json_array ();
    state = ar_xlate_stream_converse_to_openai.create ("m", true);
    assert (s_run (state, no_metadata, 4, &sink, &usage) == 0);
    assert (json_array_size (sink.events) == 3);
    assert (ar_xlate_stream_converse_to_openai.finish (state, &to, &usage) == 0);
    assert (json_array_size (sink.events) == 4);
    json_t *streamed = s_assemble (&sink, "m", true);
    assert (s_is (streamed, "choices[0].finish_reason", "length"));
    assert (s_is (streamed, "choices[0].message.content", "Berlin is"));
    assert (!s_at (streamed, "usage"));
    json_decref (streamed);
    ar_xlate_stream_converse_to_openai.destroy (state);
    json_decref (sink.events);

    //  Malformed upstream events
    const s_event_t malformed[][1] = {
        {{"contentBlockDelta", "{\"contentBlockIndex\":5,\"delta\":{\"toolUse\":{\"input\":"
                               "\"{}\"}}}"}},
        {{"contentBlockStart", "{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"name\":"
                               "\"get_weather\"}}}"}},
        {{"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Ber"}},
        {{NULL, "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Berlin\"}}"}},
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        sink.events = json_array ();
        state = ar_xlate_stream_converse_to_openai.create ("m", false);
        assert (s_run (state, begin, 1, &sink, NULL) == 0);
        assert (s_run (state, malformed[i], 1, &sink, NULL) == -1);
        size_t count = json_array_size (sink.events);
        error = s_event_json (&sink, count - 1);
        assert (s_is (error, "error.type", "server_error"));
        json_decref (error);
        ar_xlate_stream_converse_to_openai.destroy (state);
        json_decref (sink.events);
    }

    //  The sink refuses (out of memory downstream): the translator stops
    sink.events = json_array ();
    sink.refuse_at = 2;
    state = ar_xlate_stream_converse_to_openai.create ("m", false);
    assert (s_run (state, begin, 2, &sink, NULL) == -1);
    assert (json_array_size (sink.events) == 1);
    ar_xlate_stream_converse_to_openai.destroy (state);
    json_decref (sink.events);

    //  Through the chain, as the provider runs it
    ar_xlate_stream_t *chain = ar_xlate_stream_new (AR_SHAPE_CONVERSE, AR_SHAPE_OPENAI, "m", false);
    sink.events = json_array ();
    sink.refuse_at = 0;
    ar_xlate_sink_t chain_to = {s_collect, &sink};
    for (size_t i = 0; i < 4; i++)
        assert (ar_xlate_stream_event (chain, no_metadata[i].name, no_metadata[i].data,
                                       strlen (no_metadata[i].data), &chain_to, NULL) == 0);
    assert (ar_xlate_stream_finish (chain, &chain_to, NULL) == 0);
    streamed = s_assemble (&sink, "m", false);
    assert (s_is (streamed, "choices[0].message.content", "Berlin is"));
    json_decref (streamed);
    ar_xlate_stream_destroy (&chain);
    json_decref (sink.events);
}

void ar_xlate_converse_test (bool verbose)
{
    if (verbose)
        printf (" * ar_xlate_converse: ");
    s_test_full_request ();
    s_test_tool_choice ();
    s_test_refusals ();
    s_test_responses ();
    s_test_stream_text ();
    s_test_stream_tools ();
    s_test_stream_equals_whole ();
    s_test_stream_errors ();
    if (verbose)
        printf ("OK\n");
}
