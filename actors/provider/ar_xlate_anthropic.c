/*  ar_xlate_anthropic: OpenAI chat completions <-> Anthropic messages, for requests and whole
     (non-streamed) responses, in both directions.

     OpenAI is the pivot (see ar_xlate.h), so this one file serves an OpenAI caller in front of
     Claude (Anthropic, Bedrock InvokeModel, Vertex) and an Anthropic caller in front of any
     OpenAI-shaped upstream. The two shapes differ mostly in where things sit:
     - OpenAI keeps system prompts and tool results as messages of their own; Anthropic has a
       top-level `system` and carries tool results as blocks inside a user turn.
     - Anthropic wants user and assistant turns to alternate, so consecutive same-role messages
       are merged into one turn; going back, a user turn with tool results is split into `tool`
       messages (first, since they answer the previous assistant turn) and the rest.
     - Tool call arguments are a JSON string in OpenAI and a JSON object in Anthropic.
     - Anthropic requires max_tokens; OpenAI does not.
     Anything that would change what the model is asked to do and has no equivalent is refused
     with a 400 naming the member; anything that is only a hint or a bookkeeping detail is dropped.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ar_xlate_chunks.h"
#include "ar_xlate_reasons.h"

//  What Anthropic gets when an OpenAI caller did not say: Anthropic has no default of its own.
#define AR_XLATE_DEFAULT_MAX_TOKENS 4096

//  ---------------------------------------------------------------------------
//  Small helpers shared by all four directions.

static void s_refuse (ar_xlate_error_t *err, const char *reason, const char *param_fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Fill err with a 400 naming the member (param) and why; never the member's value.
static void s_refuse (ar_xlate_error_t *err, const char *reason, const char *param_fmt, ...)
{
    if (!err)
        return;
    va_list args;
    va_start (args, param_fmt);
    vsnprintf (err->param, sizeof err->param, param_fmt, args);
    va_end (args);
    err->status = 400;
    snprintf (err->message, sizeof err->message, "%s %s", err->param, reason);
}

static void s_out_of_memory (ar_xlate_error_t *err)
{
    if (!err)
        return;
    err->status = 500;
    err->param[0] = 0;
    snprintf (err->message, sizeof err->message, "out of memory translating the request");
}

static const char *s_string (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  Present and not JSON null: OpenAI SDKs send explicit nulls for unset members.
static const json_t *s_member (const json_t *object, const char *key)
{
    const json_t *value = json_object_get (object, key);
    return json_is_null (value) ? NULL : value;
}

//  Copy one member under a new name when present (the input is never shared with the output,
//  so the caller may change what it gets back).
static void s_copy (json_t *to, const char *to_key, const json_t *from, const char *from_key)
{
    const json_t *value = s_member (from, from_key);
    if (value)
        json_object_set_new (to, to_key, json_deep_copy (value));
}

static bool s_is_type (const json_t *block, const char *type)
{
    const char *value = s_string (block, "type");
    return value && strcmp (value, type) == 0;
}

static json_t *s_text_block (const char *text)
{
    return json_pack ("{s:s, s:s}", "type", "text", "text", text);
}

static void s_usage_model (ar_usage_t *usage, const char *model)
{
    if (usage && model && strlen (model) <= AR_WIRE_MODEL_MAX)
        snprintf (usage->model, sizeof usage->model, "%s", model);
}

//  ---------------------------------------------------------------------------
//  OpenAI request -> Anthropic request

//  The open turn to append blocks to: the last one if it has this role (Anthropic wants roles
//  to alternate, so consecutive same-role messages become one turn), else a new one. A turn
//  that so far held plain string content is turned into a text block first.
static json_t *s_turn_blocks (json_t *turns, const char *role)
{
    json_t *last = json_array_get (turns, json_array_size (turns) - 1);
    if (last && strcmp (s_string (last, "role"), role) == 0) {
        json_t *content = json_object_get (last, "content");
        if (json_is_string (content)) {
            json_t *blocks = json_array ();
            if (json_string_length (content) > 0)
                json_array_append_new (blocks, s_text_block (json_string_value (content)));
            json_object_set_new (last, "content", blocks);
            return blocks;
        }
        return content;
    }
    json_t *blocks = json_array ();
    json_array_append_new (turns, json_pack ("{s:s, s:o}", "role", role, "content", blocks));
    return blocks;
}

//  A message whose content is one string: a turn of its own keeps it a string, so a plain
//  conversation reads the same on both sides.
static void s_turn_text (json_t *turns, const char *role, const json_t *text)
{
    json_t *last = json_array_get (turns, json_array_size (turns) - 1);
    if (last && strcmp (s_string (last, "role"), role) == 0) {
        //  Anthropic refuses empty text blocks; an empty string adds nothing to a merged turn
        json_t *blocks = s_turn_blocks (turns, role);
        if (json_string_length (text) > 0)
            json_array_append_new (blocks, s_text_block (json_string_value (text)));
    } else
        json_array_append_new (
            turns, json_pack ("{s:s, s:o}", "role", role, "content", json_deep_copy (text)));
}

//  system and developer messages all go to the top-level `system`: Anthropic has no other
//  place for them (a mid-conversation system message moves to the front).
static int s_system_add (json_t *system, bool *as_blocks, const json_t *content, size_t i,
                         ar_xlate_error_t *err)
{
    if (json_is_string (content)) {
        json_array_append_new (system, s_text_block (json_string_value (content)));
        return 0;
    }
    if (!json_is_array (content)) {
        s_refuse (err, "must be a string or an array of text parts", "messages[%zu].content", i);
        return -1;
    }
    *as_blocks = true;
    size_t j;
    const json_t *part;
    json_array_foreach (content, j, part)
    {
        const char *text = s_string (part, "text");
        if (!text || strcmp (s_string (part, "type") ? s_string (part, "type") : "", "text")) {
            s_refuse (err, "is not a text part; system prompts can only hold text",
                      "messages[%zu].content[%zu]", i, j);
            return -1;
        }
        json_array_append_new (system, s_text_block (text));
    }
    return 0;
}

//  image_url part -> Anthropic image block: a data: URL becomes a base64 source, an http(s) URL
//  a url source. The `detail` hint has no Anthropic equivalent and is dropped.
static json_t *s_image_block (const json_t *part, size_t i, size_t j, ar_xlate_error_t *err)
{
    const char *url = s_string (json_object_get (part, "image_url"), "url");
    if (!url) {
        s_refuse (err, "is missing", "messages[%zu].content[%zu].image_url.url", i, j);
        return NULL;
    }
    if (strncmp (url, "data:", 5) == 0) {
        const char *base64 = strstr (url, ";base64,");
        if (!base64) {
            s_refuse (err, "must be a base64 data: URL", "messages[%zu].content[%zu].image_url.url",
                      i, j);
            return NULL;
        }
        //  data:<media type>[;param=value...];base64,<data>
        size_t type_len = strcspn (url + 5, ";");
        return json_pack ("{s:s, s:{s:s, s:s%, s:s}}", "type", "image", "source", "type", "base64",
                          "media_type", url + 5, type_len, "data", base64 + 8);
    }
    if (strncmp (url, "https://", 8) == 0 || strncmp (url, "http://", 7) == 0)
        return json_pack ("{s:s, s:{s:s, s:s}}", "type", "image", "source", "type", "url", "url",
                          url);
    s_refuse (err, "must be an http(s) or data: URL", "messages[%zu].content[%zu].image_url.url", i,
              j);
    return NULL;
}

//  One part of a user message's content.
static int s_user_part (json_t *blocks, const json_t *part, size_t i, size_t j,
                        ar_xlate_error_t *err)
{
    const char *type = s_string (part, "type");
    if (type && strcmp (type, "text") == 0 && s_string (part, "text")) {
        if (strlen (s_string (part, "text")) > 0)
            json_array_append_new (blocks, s_text_block (s_string (part, "text")));
        return 0;
    }
    if (type && strcmp (type, "image_url") == 0) {
        json_t *image = s_image_block (part, i, j, err);
        if (!image)
            return -1;
        json_array_append_new (blocks, image);
        return 0;
    }
    //  input_audio and file parts: nothing in the messages API takes them as they are
    s_refuse (err, "is a content part type this provider does not accept",
              "messages[%zu].content[%zu]", i, j);
    return -1;
}

//  Text or refusal parts of an assistant message (a refusal is what the model said).
static int s_assistant_parts (json_t *blocks, const json_t *content, size_t i,
                              ar_xlate_error_t *err)
{
    size_t j;
    const json_t *part;
    json_array_foreach (content, j, part)
    {
        const char *type = s_string (part, "type");
        const char *text = type && strcmp (type, "refusal") == 0 ? s_string (part, "refusal")
                                                                 : s_string (part, "text");
        if (!text || !type || (strcmp (type, "text") && strcmp (type, "refusal"))) {
            s_refuse (err, "is not a text part", "messages[%zu].content[%zu]", i, j);
            return -1;
        }
        if (strlen (text) > 0)
            json_array_append_new (blocks, s_text_block (text));
    }
    return 0;
}

static int s_assistant_add (json_t *turns, const json_t *message, size_t i, ar_xlate_error_t *err)
{
    if (s_member (message, "function_call")) {
        s_refuse (err, "(legacy function calling) is not supported; use tool_calls",
                  "messages[%zu].function_call", i);
        return -1;
    }
    if (s_member (message, "audio")) {
        s_refuse (err, "is not supported by this provider", "messages[%zu].audio", i);
        return -1;
    }
    const json_t *content = s_member (message, "content");
    const json_t *tool_calls = s_member (message, "tool_calls");
    if (content && !json_is_string (content) && !json_is_array (content)) {
        s_refuse (err, "must be a string, an array of parts or null", "messages[%zu].content", i);
        return -1;
    }
    if (tool_calls && !json_is_array (tool_calls)) {
        s_refuse (err, "must be an array", "messages[%zu].tool_calls", i);
        return -1;
    }
    if (json_is_string (content) && json_array_size (tool_calls) == 0) {
        s_turn_text (turns, "assistant", content);
        return 0;
    }
    if (json_array_size (content) == 0 && json_string_length (content) == 0 &&
        json_array_size (tool_calls) == 0)
        return 0; // nothing said: Anthropic refuses empty turns
    json_t *blocks = s_turn_blocks (turns, "assistant");
    if (json_is_string (content) && json_string_length (content) > 0)
        json_array_append_new (blocks, s_text_block (json_string_value (content)));
    if (json_is_array (content) && s_assistant_parts (blocks, content, i, err))
        return -1;
    size_t j;
    const json_t *call;
    json_array_foreach (tool_calls, j, call)
    {
        const json_t *function = json_object_get (call, "function");
        const char *id = s_string (call, "id");
        const char *name = s_string (function, "name");
        const char *arguments = s_string (function, "arguments");
        const char *type = s_string (call, "type");
        if (type && strcmp (type, "function")) {
            s_refuse (err, "is not a function tool call", "messages[%zu].tool_calls[%zu].type", i,
                      j);
            return -1;
        }
        if (!id || !name || !arguments) {
            s_refuse (err, "needs an id, function.name and function.arguments",
                      "messages[%zu].tool_calls[%zu]", i, j);
            return -1;
        }
        //  Models send "" for a tool that takes no arguments
        json_t *input = *arguments ? json_loads (arguments, 0, NULL) : json_object ();
        if (!json_is_object (input)) {
            json_decref (input);
            s_refuse (err, "is not a JSON object",
                      "messages[%zu].tool_calls[%zu].function.arguments", i, j);
            return -1;
        }
        json_array_append_new (blocks, json_pack ("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id",
                                                  id, "name", name, "input", input));
    }
    return 0;
}

//  A tool message becomes a tool_result block in the user turn that follows the assistant's
//  tool_use; consecutive results (parallel calls) and any user text after them share that turn.
static int s_tool_result_add (json_t *turns, const json_t *message, size_t i, ar_xlate_error_t *err)
{
    const char *id = s_string (message, "tool_call_id");
    if (!id) {
        s_refuse (err, "is missing", "messages[%zu].tool_call_id", i);
        return -1;
    }
    const json_t *content = s_member (message, "content");
    json_t *result_content;
    if (json_is_string (content))
        result_content = json_deep_copy (content);
    else if (json_is_array (content)) {
        result_content = json_array ();
        size_t j;
        const json_t *part;
        json_array_foreach (content, j, part)
        {
            const char *text = s_string (part, "text");
            if (!text) {
                json_decref (result_content);
                s_refuse (err, "is not a text part", "messages[%zu].content[%zu]", i, j);
                return -1;
            }
            json_array_append_new (result_content, s_text_block (text));
        }
    } else {
        s_refuse (err, "must be a string or an array of text parts", "messages[%zu].content", i);
        return -1;
    }
    //  Anthropic wants a turn's tool results before anything else in it, so a result that
    //  arrives after user text (clients do reorder) goes in ahead of that text
    json_t *blocks = s_turn_blocks (turns, "user");
    size_t at = 0;
    while (at < json_array_size (blocks) && s_is_type (json_array_get (blocks, at), "tool_result"))
        at++;
    json_array_insert_new (blocks, at,
                           json_pack ("{s:s, s:s, s:o}", "type", "tool_result", "tool_use_id", id,
                                      "content", result_content));
    return 0;
}

static int s_messages_to_anthropic (json_t *out, const json_t *messages, ar_xlate_error_t *err)
{
    json_t *turns = json_array ();
    json_t *system = json_array ();
    bool system_blocks = false;
    size_t i;
    const json_t *message;
    int rc = 0;
    json_array_foreach (messages, i, message)
    {
        const char *role = s_string (message, "role");
        const json_t *content = s_member (message, "content");
        if (!role) {
            s_refuse (err, "is missing", "messages[%zu].role", i);
            rc = -1;
        } else if (strcmp (role, "system") == 0 || strcmp (role, "developer") == 0)
            rc = s_system_add (system, &system_blocks, content, i, err);
        else if (strcmp (role, "user") == 0) {
            if (json_is_string (content))
                s_turn_text (turns, "user", content);
            else if (json_is_array (content)) {
                json_t *blocks = s_turn_blocks (turns, "user");
                size_t j;
                const json_t *part;
                json_array_foreach (content, j, part)
                {
                    if ((rc = s_user_part (blocks, part, i, j, err)) != 0)
                        break;
                }
            } else {
                s_refuse (err, "must be a string or an array of parts", "messages[%zu].content", i);
                rc = -1;
            }
        } else if (strcmp (role, "assistant") == 0)
            rc = s_assistant_add (turns, message, i, err);
        else if (strcmp (role, "tool") == 0)
            rc = s_tool_result_add (turns, message, i, err);
        else if (strcmp (role, "function") == 0) {
            s_refuse (err, "'function' (legacy function calling) is not supported; use tools",
                      "messages[%zu].role", i);
            rc = -1;
        } else {
            s_refuse (err, "is not a known role", "messages[%zu].role", i);
            rc = -1;
        }
        if (rc)
            break;
    }
    if (rc == 0) {
        json_object_set_new (out, "messages", turns);
        //  One system string stays a string; several, or parts, stay separate blocks
        if (json_array_size (system) == 1 && !system_blocks)
            json_object_set (out, "system", json_object_get (json_array_get (system, 0), "text"));
        else if (json_array_size (system) > 0)
            json_object_set (out, "system", system);
    } else
        json_decref (turns);
    json_decref (system);
    return rc;
}

static int s_tools_to_anthropic (json_t *out, const json_t *tools, ar_xlate_error_t *err)
{
    if (!json_is_array (tools)) {
        s_refuse (err, "must be an array", "tools");
        return -1;
    }
    json_t *converted = json_array ();
    size_t k;
    const json_t *tool;
    json_array_foreach (tools, k, tool)
    {
        const json_t *function = json_object_get (tool, "function");
        const char *type = s_string (tool, "type");
        if (!type || strcmp (type, "function")) {
            json_decref (converted);
            s_refuse (err, "is not a function tool; only function tools are supported",
                      "tools[%zu].type", k);
            return -1;
        }
        if (!s_string (function, "name")) {
            json_decref (converted);
            s_refuse (err, "is missing", "tools[%zu].function.name", k);
            return -1;
        }
        json_t *anthropic = json_pack ("{s:s}", "name", s_string (function, "name"));
        s_copy (anthropic, "description", function, "description");
        //  Anthropic requires a schema; OpenAI lets a tool without parameters take none.
        //  `strict` is dropped: it asks for a guarantee, not a different answer.
        if (s_member (function, "parameters"))
            s_copy (anthropic, "input_schema", function, "parameters");
        else
            json_object_set_new (anthropic, "input_schema",
                                 json_pack ("{s:s, s:{}}", "type", "object", "properties"));
        json_array_append_new (converted, anthropic);
    }
    json_object_set_new (out, "tools", converted);
    return 0;
}

static int s_tool_choice_to_anthropic (json_t *out, const json_t *request, ar_xlate_error_t *err)
{
    const json_t *choice = s_member (request, "tool_choice");
    const json_t *parallel = s_member (request, "parallel_tool_calls");
    json_t *anthropic = NULL;
    if (json_is_string (choice)) {
        const char *value = json_string_value (choice);
        const char *type = strcmp (value, "auto") == 0       ? "auto"
                           : strcmp (value, "required") == 0 ? "any"
                           : strcmp (value, "none") == 0     ? "none"
                                                             : NULL;
        if (!type) {
            s_refuse (err, "is not auto, required, none or a function", "tool_choice");
            return -1;
        }
        anthropic = json_pack ("{s:s}", "type", type);
    } else if (json_is_object (choice)) {
        const char *name = s_string (json_object_get (choice, "function"), "name");
        if (!name || !s_string (choice, "type") || strcmp (s_string (choice, "type"), "function")) {
            s_refuse (err, "must name a function tool", "tool_choice");
            return -1;
        }
        anthropic = json_pack ("{s:s, s:s}", "type", "tool", "name", name);
    } else if (choice) {
        s_refuse (err, "must be a string or an object", "tool_choice");
        return -1;
    }
    //  OpenAI says it beside tool_choice, Anthropic inside it (and `none` has no such member)
    if (json_is_false (parallel) && json_object_get (out, "tools")) {
        if (!anthropic)
            anthropic = json_pack ("{s:s}", "type", "auto");
        if (strcmp (s_string (anthropic, "type"), "none"))
            json_object_set_new (anthropic, "disable_parallel_tool_use", json_true ());
    }
    if (anthropic)
        json_object_set_new (out, "tool_choice", anthropic);
    return 0;
}

//  Members that would change what the model does and that Anthropic cannot express.
static int s_refuse_unexpressible (const json_t *request, ar_xlate_error_t *err)
{
    const json_t *n = s_member (request, "n");
    if (n && (!json_is_integer (n) || json_integer_value (n) != 1)) {
        s_refuse (err, "must be 1: this provider returns one choice", "n");
        return -1;
    }
    if (json_is_true (s_member (request, "logprobs")) || s_member (request, "top_logprobs")) {
        s_refuse (err, "is not supported by this provider", "%s",
                  s_member (request, "top_logprobs") ? "top_logprobs" : "logprobs");
        return -1;
    }
    const json_t *format = s_member (request, "response_format");
    if (format && (!s_string (format, "type") || strcmp (s_string (format, "type"), "text"))) {
        s_refuse (err, "other than text is not supported by this provider", "response_format");
        return -1;
    }
    if (s_member (request, "audio")) {
        s_refuse (err, "output is not supported by this provider", "audio");
        return -1;
    }
    const json_t *modalities = s_member (request, "modalities");
    size_t k;
    const json_t *modality;
    json_array_foreach (modalities, k, modality)
    {
        if (!json_is_string (modality) || strcmp (json_string_value (modality), "text")) {
            s_refuse (err, "other than text are not supported by this provider", "modalities");
            return -1;
        }
    }
    const json_t *logit_bias = s_member (request, "logit_bias");
    if (json_object_size (logit_bias) > 0) {
        s_refuse (err, "is not supported by this provider", "logit_bias");
        return -1;
    }
    if (s_member (request, "web_search_options")) {
        s_refuse (err, "is not supported by this provider", "web_search_options");
        return -1;
    }
    if (s_member (request, "functions") || s_member (request, "function_call")) {
        s_refuse (err, "(legacy function calling) is not supported; use tools", "%s",
                  s_member (request, "functions") ? "functions" : "function_call");
        return -1;
    }
    return 0;
}

static int s_params_to_anthropic (json_t *out, const json_t *request, ar_xlate_error_t *err)
{
    const json_t *max_tokens = s_member (request, "max_completion_tokens");
    const char *max_name = "max_completion_tokens";
    if (!max_tokens) {
        max_tokens = s_member (request, "max_tokens");
        max_name = "max_tokens";
    }
    if (max_tokens && !json_is_integer (max_tokens)) {
        s_refuse (err, "must be an integer", "%s", max_name);
        return -1;
    }
    json_object_set_new (
        out, "max_tokens",
        json_integer (max_tokens ? json_integer_value (max_tokens) : AR_XLATE_DEFAULT_MAX_TOKENS));
    const json_t *temperature = s_member (request, "temperature");
    if (temperature && !json_is_number (temperature)) {
        s_refuse (err, "must be a number", "temperature");
        return -1;
    }
    //  OpenAI's scale goes to 2, Anthropic's to 1: clamping would quietly ask for less
    //  randomness than the caller wanted, so above 1 is refused instead.
    if (temperature && json_number_value (temperature) > 1.0) {
        s_refuse (err, "must be at most 1 for this provider", "temperature");
        return -1;
    }
    s_copy (out, "temperature", request, "temperature");
    s_copy (out, "top_p", request, "top_p");
    const json_t *stop = s_member (request, "stop");
    if (json_is_string (stop))
        json_object_set_new (out, "stop_sequences", json_pack ("[o]", json_deep_copy (stop)));
    else if (json_is_array (stop))
        json_object_set_new (out, "stop_sequences", json_deep_copy (stop));
    else if (stop) {
        s_refuse (err, "must be a string or an array of strings", "stop");
        return -1;
    }
    if (json_is_boolean (s_member (request, "stream")))
        s_copy (out, "stream", request, "stream");
    const json_t *user = s_member (request, "user");
    if (!json_is_string (user))
        user = s_member (request, "safety_identifier"); // what OpenAI now calls `user`
    if (json_is_string (user))
        json_object_set_new (out, "metadata",
                             json_pack ("{s:o}", "user_id", json_deep_copy (user)));
    //  Dropped: stream_options (Anthropic streams always report usage), seed (no equivalent;
    //  a best-effort hint anyway), frequency/presence_penalty (no equivalent; they only tune
    //  repetition), store, metadata (OpenAI's own dashboard labels), reasoning_effort,
    //  service_tier, prediction, prompt_cache_key: hints and bookkeeping, not meaning.
    return 0;
}

json_t *ar_xlate_openai_to_anthropic_request (const json_t *request, ar_xlate_error_t *err)
{
    if (err)
        memset (err, 0, sizeof *err);
    if (!json_is_object (request)) {
        s_refuse (err, "must be a JSON object", "%s", "body");
        return NULL;
    }
    const json_t *messages = json_object_get (request, "messages");
    if (!json_is_array (messages)) {
        s_refuse (err, "must be an array", "messages");
        return NULL;
    }
    json_t *out = json_object ();
    if (!out) {
        s_out_of_memory (err);
        return NULL;
    }
    s_copy (out, "model", request, "model");
    if (s_refuse_unexpressible (request, err) || s_params_to_anthropic (out, request, err) ||
        s_messages_to_anthropic (out, messages, err) ||
        (s_member (request, "tools") &&
         s_tools_to_anthropic (out, s_member (request, "tools"), err)) ||
        s_tool_choice_to_anthropic (out, request, err)) {
        json_decref (out);
        return NULL;
    }
    return out;
}

//  ---------------------------------------------------------------------------
//  Anthropic request -> OpenAI request

//  Anthropic's base64 image source as a data: URL, or its url source as it is.
static json_t *s_image_part (const json_t *block, size_t i, size_t j, ar_xlate_error_t *err)
{
    const json_t *source = json_object_get (block, "source");
    const char *type = s_string (source, "type");
    char *url = NULL;
    if (type && strcmp (type, "base64") == 0 && s_string (source, "media_type") &&
        s_string (source, "data")) {
        const char *media = s_string (source, "media_type");
        const char *data = s_string (source, "data");
        size_t size = strlen (media) + strlen (data) + sizeof "data:;base64,";
        url = malloc (size);
        if (url)
            snprintf (url, size, "data:%s;base64,%s", media, data);
    } else if (type && strcmp (type, "url") == 0 && s_string (source, "url"))
        url = strdup (s_string (source, "url"));
    else {
        s_refuse (err, "must be a base64 or url image source", "messages[%zu].content[%zu].source",
                  i, j);
        return NULL;
    }
    if (!url) {
        s_out_of_memory (err);
        return NULL;
    }
    json_t *part = json_pack ("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", url);
    free (url);
    return part;
}

//  A tool_result's content as the string an OpenAI tool message carries.
static json_t *s_tool_result_text (const json_t *block, size_t i, size_t j, ar_xlate_error_t *err)
{
    const json_t *content = s_member (block, "content");
    if (!content)
        return json_string ("");
    if (json_is_string (content))
        return json_deep_copy (content);
    if (!json_is_array (content)) {
        s_refuse (err, "must be a string or an array of blocks",
                  "messages[%zu].content[%zu].content", i, j);
        return NULL;
    }
    //  Text blocks joined by newlines; anything else (images, documents) a tool message cannot
    //  carry, and dropping it would hide what the tool returned.
    size_t total = 0, k;
    const json_t *inner;
    json_array_foreach (content, k, inner)
    {
        const char *text = s_string (inner, "text");
        if (!text || !s_string (inner, "type") || strcmp (s_string (inner, "type"), "text")) {
            s_refuse (err, "is not a text block; tool results can only carry text here",
                      "messages[%zu].content[%zu].content[%zu]", i, j, k);
            return NULL;
        }
        total += strlen (text) + 1;
    }
    char *joined = calloc (1, total + 1);
    if (!joined) {
        s_out_of_memory (err);
        return NULL;
    }
    size_t used = 0;
    json_array_foreach (content, k, inner)
    {
        size_t len = strlen (s_string (inner, "text"));
        if (k > 0)
            joined[used++] = '\n';
        memcpy (joined + used, s_string (inner, "text"), len);
        used += len;
    }
    json_t *result = json_stringn (joined, used);
    free (joined);
    return result;
}

//  A user turn: its tool results become tool messages first (they answer the assistant turn
//  before), then whatever else it holds becomes one user message.
static int s_user_turn_to_openai (json_t *messages, const json_t *content, size_t i,
                                  ar_xlate_error_t *err)
{
    if (json_is_string (content)) {
        json_array_append_new (messages, json_pack ("{s:s, s:o}", "role", "user", "content",
                                                    json_deep_copy (content)));
        return 0;
    }
    json_t *parts = json_array ();
    size_t j;
    const json_t *block;
    json_array_foreach (content, j, block)
    {
        const char *type = s_string (block, "type");
        json_t *part = NULL;
        if (type && strcmp (type, "text") == 0 && s_string (block, "text"))
            part = json_pack ("{s:s, s:s}", "type", "text", "text", s_string (block, "text"));
        else if (type && strcmp (type, "image") == 0)
            part = s_image_part (block, i, j, err);
        else if (type && strcmp (type, "tool_result") == 0 && s_string (block, "tool_use_id")) {
            //  is_error has no OpenAI counterpart; the content already says what went wrong
            json_t *text = s_tool_result_text (block, i, j, err);
            if (text)
                json_array_append_new (
                    messages, json_pack ("{s:s, s:s, s:o}", "role", "tool", "tool_call_id",
                                         s_string (block, "tool_use_id"), "content", text));
            else
                break;
            continue;
        } else
            s_refuse (err, "is not a block this provider accepts (or lacks a required member)",
                      "messages[%zu].content[%zu]", i, j);
        if (!part)
            break;
        json_array_append_new (parts, part);
    }
    if (j < json_array_size (content)) {
        json_decref (parts);
        return -1;
    }
    if (json_array_size (parts) > 0)
        json_array_append_new (messages,
                               json_pack ("{s:s, s:o}", "role", "user", "content", parts));
    else
        json_decref (parts);
    return 0;
}

static int s_assistant_turn_to_openai (json_t *messages, const json_t *content, size_t i,
                                       ar_xlate_error_t *err)
{
    if (json_is_string (content)) {
        json_array_append_new (messages, json_pack ("{s:s, s:o}", "role", "assistant", "content",
                                                    json_deep_copy (content)));
        return 0;
    }
    json_t *texts = json_array ();
    json_t *tool_calls = json_array ();
    size_t j;
    const json_t *block;
    json_array_foreach (content, j, block)
    {
        const char *type = s_string (block, "type");
        if (type && strcmp (type, "text") == 0 && s_string (block, "text"))
            json_array_append_new (
                texts, json_pack ("{s:s, s:s}", "type", "text", "text", s_string (block, "text")));
        else if (type && strcmp (type, "tool_use") == 0 && s_string (block, "id") &&
                 s_string (block, "name")) {
            const json_t *input = json_object_get (block, "input");
            char *arguments = input ? json_dumps (input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            json_array_append_new (tool_calls,
                                   json_pack ("{s:s, s:s, s:{s:s, s:s}}", "id",
                                              s_string (block, "id"), "type", "function",
                                              "function", "name", s_string (block, "name"),
                                              "arguments", arguments ? arguments : "{}"));
            free (arguments);
        } else if (type &&
                   (strcmp (type, "thinking") == 0 || strcmp (type, "redacted_thinking") == 0))
            continue; // the model's own scratch work: OpenAI has no place to send it back
        else {
            s_refuse (err, "is a block type this provider does not accept",
                      "messages[%zu].content[%zu]", i, j);
            json_decref (texts);
            json_decref (tool_calls);
            return -1;
        }
    }
    json_t *message = json_pack ("{s:s}", "role", "assistant");
    //  One text block reads best as a string; several keep their boundaries as parts
    if (json_array_size (texts) == 1)
        json_object_set (message, "content", json_object_get (json_array_get (texts, 0), "text"));
    else if (json_array_size (texts) > 1)
        json_object_set (message, "content", texts);
    else
        json_object_set_new (message, "content", json_null ());
    if (json_array_size (tool_calls) > 0)
        json_object_set (message, "tool_calls", tool_calls);
    json_decref (texts);
    json_decref (tool_calls);
    if (json_is_null (json_object_get (message, "content")) &&
        !json_object_get (message, "tool_calls"))
        json_decref (message); // only thinking: nothing to send back
    else
        json_array_append_new (messages, message);
    return 0;
}

static int s_system_to_openai (json_t *messages, const json_t *system, ar_xlate_error_t *err)
{
    if (json_is_string (system)) {
        json_array_append_new (messages, json_pack ("{s:s, s:o}", "role", "system", "content",
                                                    json_deep_copy (system)));
        return 0;
    }
    if (!json_is_array (system)) {
        s_refuse (err, "must be a string or an array of text blocks", "system");
        return -1;
    }
    json_t *parts = json_array ();
    size_t k;
    const json_t *block;
    json_array_foreach (system, k, block)
    {
        //  cache_control is dropped: OpenAI caches prefixes on its own
        const char *text = s_string (block, "text");
        if (!text || !s_string (block, "type") || strcmp (s_string (block, "type"), "text")) {
            json_decref (parts);
            s_refuse (err, "is not a text block", "system[%zu]", k);
            return -1;
        }
        json_array_append_new (parts, json_pack ("{s:s, s:s}", "type", "text", "text", text));
    }
    json_array_append_new (messages, json_pack ("{s:s, s:o}", "role", "system", "content", parts));
    return 0;
}

static int s_tools_to_openai (json_t *out, const json_t *tools, ar_xlate_error_t *err)
{
    if (!json_is_array (tools)) {
        s_refuse (err, "must be an array", "tools");
        return -1;
    }
    json_t *converted = json_array ();
    size_t k;
    const json_t *tool;
    json_array_foreach (tools, k, tool)
    {
        //  Server tools (web search, code execution, bash, ...) run inside Anthropic's API
        const char *type = s_string (tool, "type");
        if (type && strcmp (type, "custom")) {
            json_decref (converted);
            s_refuse (err, "is a server tool this provider does not run", "tools[%zu]", k);
            return -1;
        }
        if (!s_string (tool, "name")) {
            json_decref (converted);
            s_refuse (err, "is missing", "tools[%zu].name", k);
            return -1;
        }
        json_t *function = json_pack ("{s:s}", "name", s_string (tool, "name"));
        s_copy (function, "description", tool, "description");
        s_copy (function, "parameters", tool, "input_schema");
        json_array_append_new (converted,
                               json_pack ("{s:s, s:o}", "type", "function", "function", function));
    }
    json_object_set_new (out, "tools", converted);
    return 0;
}

static int s_tool_choice_to_openai (json_t *out, const json_t *choice, ar_xlate_error_t *err)
{
    const char *type = s_string (choice, "type");
    json_t *openai = NULL;
    if (type && strcmp (type, "auto") == 0)
        openai = json_string ("auto");
    else if (type && strcmp (type, "any") == 0)
        openai = json_string ("required");
    else if (type && strcmp (type, "none") == 0)
        openai = json_string ("none");
    else if (type && strcmp (type, "tool") == 0 && s_string (choice, "name"))
        openai = json_pack ("{s:s, s:{s:s}}", "type", "function", "function", "name",
                            s_string (choice, "name"));
    else {
        s_refuse (err, "is not auto, any, none or a named tool", "tool_choice");
        return -1;
    }
    json_object_set_new (out, "tool_choice", openai);
    if (json_is_true (json_object_get (choice, "disable_parallel_tool_use")))
        json_object_set_new (out, "parallel_tool_calls", json_false ());
    return 0;
}

//  output_config.format (structured output) -> response_format json_schema; effort is a hint.
static void s_output_config_to_openai (json_t *out, const json_t *config)
{
    const json_t *format = s_member (config, "format");
    const json_t *schema = json_object_get (format, "schema");
    if (s_string (format, "type") && strcmp (s_string (format, "type"), "json_schema") == 0 &&
        schema)
        json_object_set_new (out, "response_format",
                             json_pack ("{s:s, s:{s:s, s:o, s:b}}", "type", "json_schema",
                                        "json_schema", "name", "response", "schema",
                                        json_deep_copy (schema), "strict", 1));
}

json_t *ar_xlate_anthropic_to_openai_request (const json_t *request, ar_xlate_error_t *err)
{
    if (err)
        memset (err, 0, sizeof *err);
    if (!json_is_object (request)) {
        s_refuse (err, "must be a JSON object", "%s", "body");
        return NULL;
    }
    const json_t *turns = json_object_get (request, "messages");
    if (!json_is_array (turns)) {
        s_refuse (err, "must be an array", "messages");
        return NULL;
    }
    if (s_member (request, "mcp_servers")) {
        s_refuse (err, "(MCP connector) is not supported by this provider", "mcp_servers");
        return NULL;
    }
    json_t *out = json_object ();
    json_t *messages = json_array ();
    if (!out || !messages) {
        json_decref (out);
        json_decref (messages);
        s_out_of_memory (err);
        return NULL;
    }
    s_copy (out, "model", request, "model");
    json_object_set (out, "messages", messages);
    int rc = 0;
    if (s_member (request, "system"))
        rc = s_system_to_openai (messages, s_member (request, "system"), err);
    size_t i;
    const json_t *turn;
    json_array_foreach (turns, i, turn)
    {
        if (rc)
            break;
        const char *role = s_string (turn, "role");
        const json_t *content = json_object_get (turn, "content");
        if (!json_is_string (content) && !json_is_array (content)) {
            s_refuse (err, "must be a string or an array of blocks", "messages[%zu].content", i);
            rc = -1;
        } else if (role && strcmp (role, "user") == 0)
            rc = s_user_turn_to_openai (messages, content, i, err);
        else if (role && strcmp (role, "assistant") == 0)
            rc = s_assistant_turn_to_openai (messages, content, i, err);
        else {
            s_refuse (err, "must be user or assistant", "messages[%zu].role", i);
            rc = -1;
        }
    }
    json_decref (messages);
    const json_t *max_tokens = s_member (request, "max_tokens");
    if (rc == 0 && max_tokens && !json_is_integer (max_tokens)) {
        s_refuse (err, "must be an integer", "max_tokens");
        rc = -1;
    }
    if (rc == 0 && s_member (request, "tools"))
        rc = s_tools_to_openai (out, s_member (request, "tools"), err);
    if (rc == 0 && s_member (request, "tool_choice"))
        rc = s_tool_choice_to_openai (out, s_member (request, "tool_choice"), err);
    if (rc) {
        json_decref (out);
        return NULL;
    }
    s_copy (out, "max_tokens", request, "max_tokens");
    s_copy (out, "temperature", request, "temperature");
    s_copy (out, "top_p", request, "top_p");
    s_copy (out, "stop", request, "stop_sequences");
    if (json_is_true (s_member (request, "stream"))) {
        //  Anthropic streams always end with usage; OpenAI ones only when asked
        json_object_set_new (out, "stream", json_true ());
        json_object_set_new (out, "stream_options", json_pack ("{s:b}", "include_usage", 1));
    }
    const char *user = s_string (json_object_get (request, "metadata"), "user_id");
    if (user)
        json_object_set_new (out, "user", json_string (user));
    s_output_config_to_openai (out, s_member (request, "output_config"));
    //  Dropped: top_k (OpenAI has no such sampler), thinking (reasoning is the model's own
    //  business on OpenAI), service_tier, container, cache_control: hints, not meaning.
    return out;
}

//  ---------------------------------------------------------------------------
//  Anthropic response -> OpenAI chat.completion

static int64_t s_count (const json_t *usage, const char *key)
{
    const json_t *value = json_object_get (usage, key);
    return json_is_integer (value) && json_integer_value (value) > 0 ? json_integer_value (value)
                                                                     : 0;
}

json_t *ar_xlate_anthropic_to_openai_response (const json_t *response, ar_usage_t *usage)
{
    const json_t *content = json_object_get (response, "content");
    if (!json_is_object (response) || !json_is_array (content))
        return NULL;
    //  Text blocks of one answer are pieces of one text (split around citations): joined as is
    size_t text_len = 0, j;
    const json_t *block;
    json_array_foreach (content, j, block)
    {
        if (s_string (block, "type") && strcmp (s_string (block, "type"), "text") == 0)
            text_len += strlen (s_string (block, "text") ? s_string (block, "text") : "");
    }
    char *text = malloc (text_len + 1);
    if (!text)
        return NULL;
    size_t used = 0;
    bool has_text = false;
    json_t *tool_calls = json_array ();
    json_array_foreach (content, j, block)
    {
        const char *type = s_string (block, "type");
        if (type && strcmp (type, "text") == 0 && s_string (block, "text")) {
            size_t len = strlen (s_string (block, "text"));
            memcpy (text + used, s_string (block, "text"), len);
            used += len;
            has_text = true;
        } else if (type && strcmp (type, "tool_use") == 0) {
            const json_t *input = json_object_get (block, "input");
            char *arguments = input ? json_dumps (input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            json_array_append_new (
                tool_calls, json_pack ("{s:s, s:s, s:{s:s, s:s}}", "id",
                                       s_string (block, "id") ? s_string (block, "id") : "", "type",
                                       "function", "function", "name",
                                       s_string (block, "name") ? s_string (block, "name") : "",
                                       "arguments", arguments ? arguments : "{}"));
            free (arguments);
        }
        //  thinking and server-tool blocks have no place in a chat completion
    }
    json_t *message = json_pack ("{s:s}", "role", "assistant");
    json_object_set_new (message, "content", has_text ? json_stringn (text, used) : json_null ());
    free (text);
    json_object_set_new (message, "refusal", json_null ());
    if (json_array_size (tool_calls) > 0)
        json_object_set (message, "tool_calls", tool_calls);
    json_decref (tool_calls);

    const json_t *anthropic_usage = json_object_get (response, "usage");
    int64_t cache_read = s_count (anthropic_usage, "cache_read_input_tokens");
    //  OpenAI's prompt_tokens count every input token; Anthropic's input_tokens only the
    //  ones neither read from nor written to the cache.
    int64_t prompt = s_count (anthropic_usage, "input_tokens") + cache_read +
                     s_count (anthropic_usage, "cache_creation_input_tokens");
    int64_t completion = s_count (anthropic_usage, "output_tokens");
    const char *id = s_string (response, "id");
    const char *model = s_string (response, "model");
    json_t *out = json_pack (
        "{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s}], s:o}", "id", id ? id : "", "object",
        "chat.completion", "created", (json_int_t)time (NULL), "model", model ? model : "",
        "choices", "index", 0, "message", message, "logprobs", "finish_reason",
        ar_xlate_reasons_anthropic_to_openai (s_string (response, "stop_reason")), "usage",
        ar_xlate_chunks_usage (prompt, completion, prompt + completion, cache_read));
    if (usage) {
        if (json_is_integer (json_object_get (anthropic_usage, "input_tokens"))) {
            usage->input_tokens = prompt;
            usage->has_input = true;
        }
        if (json_is_integer (json_object_get (anthropic_usage, "output_tokens"))) {
            usage->output_tokens = completion;
            usage->has_output = true;
        }
        if (json_is_integer (json_object_get (anthropic_usage, "cache_read_input_tokens"))) {
            usage->cached_input_tokens = cache_read;
            usage->has_cached = true;
        }
        s_usage_model (usage, model);
    }
    return out;
}

//  ---------------------------------------------------------------------------
//  OpenAI chat.completion -> Anthropic message

static json_t *s_tool_use_block (const char *id, const json_t *function)
{
    //  Arguments the model got wrong still make a tool_use: the caller sees the call, with {}
    const char *arguments = s_string (function, "arguments");
    json_t *input = arguments ? json_loads (arguments, 0, NULL) : NULL;
    if (!json_is_object (input)) {
        json_decref (input);
        input = json_object ();
    }
    const char *name = s_string (function, "name");
    return json_pack ("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id", id, "name",
                      name ? name : "", "input", input);
}

json_t *ar_xlate_openai_to_anthropic_response (const json_t *response, ar_usage_t *usage)
{
    const json_t *choice = json_array_get (json_object_get (response, "choices"), 0);
    const json_t *message = json_object_get (choice, "message");
    if (!json_is_object (response) || !json_is_object (message))
        return NULL;
    json_t *content = json_array ();
    const char *text = s_string (message, "content");
    const char *refusal = s_string (message, "refusal");
    if (text && *text)
        json_array_append_new (content, s_text_block (text));
    else if (refusal && *refusal)
        json_array_append_new (content, s_text_block (refusal));
    size_t j;
    const json_t *call;
    json_array_foreach (json_object_get (message, "tool_calls"), j, call)
    {
        const char *id = s_string (call, "id");
        json_array_append_new (content,
                               s_tool_use_block (id ? id : "", json_object_get (call, "function")));
    }
    //  Legacy function calling: one call, no id of its own
    if (json_is_object (json_object_get (message, "function_call")))
        json_array_append_new (
            content,
            s_tool_use_block ("toolu_function_call", json_object_get (message, "function_call")));

    const char *stop_reason =
        ar_xlate_reasons_openai_to_anthropic (s_string (choice, "finish_reason"));
    if (refusal && *refusal && !(text && *text))
        stop_reason = "refusal";
    const json_t *openai_usage = json_object_get (response, "usage");
    int64_t prompt = s_count (openai_usage, "prompt_tokens");
    int64_t cached =
        s_count (json_object_get (openai_usage, "prompt_tokens_details"), "cached_tokens");
    int64_t completion = s_count (openai_usage, "completion_tokens");
    const char *id = s_string (response, "id");
    char *msg_id = NULL;
    if (!id || strncmp (id, "msg_", 4)) {
        size_t size = strlen (id ? id : "") + 5;
        msg_id = malloc (size);
        if (!msg_id) {
            json_decref (content);
            return NULL;
        }
        snprintf (msg_id, size, "msg_%s", id ? id : "");
    }
    const char *model = s_string (response, "model");
    json_t *out = json_pack ("{s:s, s:s, s:s, s:s, s:o, s:s, s:n, s:{s:I, s:I, s:I, s:I}}", "id",
                             msg_id ? msg_id : id, "type", "message", "role", "assistant", "model",
                             model ? model : "", "content", content, "stop_reason", stop_reason,
                             "stop_sequence", "usage", "input_tokens",
                             (json_int_t)(prompt > cached ? prompt - cached : 0), "output_tokens",
                             (json_int_t)completion, "cache_read_input_tokens", (json_int_t)cached,
                             "cache_creation_input_tokens", (json_int_t)0);
    free (msg_id);
    if (usage) {
        if (json_is_integer (json_object_get (openai_usage, "prompt_tokens"))) {
            usage->input_tokens = prompt;
            usage->has_input = true;
        }
        if (json_is_integer (json_object_get (openai_usage, "completion_tokens"))) {
            usage->output_tokens = completion;
            usage->has_output = true;
        }
        if (json_is_integer (json_object_get (
                json_object_get (openai_usage, "prompt_tokens_details"), "cached_tokens"))) {
            usage->cached_input_tokens = cached;
            usage->has_cached = true;
        }
        s_usage_model (usage, model);
    }
    return out;
}

//  ---------------------------------------------------------------------------
//  Self-test

static json_t *s_load (const char *text)
{
    json_error_t error;
    json_t *root = json_loads (text, 0, &error);
    if (!root)
        fprintf (stderr, "fixture: %s (line %d)\n", error.text, error.line);
    assert (root);
    return root;
}

static bool s_is (const json_t *value, const char *text)
{
    return json_is_string (value) && strcmp (json_string_value (value), text) == 0;
}

//  The request is refused with a 400 naming exactly this member, and the message never
//  carries the word SECRET that the fixtures hide in the refused values.
static void s_assert_refused (json_t *(*translate) (const json_t *, ar_xlate_error_t *),
                              const char *text, const char *param)
{
    json_t *request = s_load (text);
    ar_xlate_error_t err;
    json_t *out = translate (request, &err);
    if (out || strcmp (err.param, param))
        fprintf (stderr, "expected refusal of %s, got %s\n", param, out ? "a request" : err.param);
    assert (!out);
    assert (err.status == 400);
    assert (strcmp (err.param, param) == 0);
    assert (strstr (err.message, param));
    assert (!strstr (err.message, "SECRET"));
    json_decref (request);
}

static json_t *s_translate (json_t *(*translate) (const json_t *, ar_xlate_error_t *),
                            const json_t *request)
{
    ar_xlate_error_t err;
    json_t *out = translate (request, &err);
    if (!out)
        fprintf (stderr, "unexpected refusal: %s\n", err.message);
    assert (out);
    return out;
}

//  An OpenAI conversation reduced to what both shapes can say: developer is system, string
//  content is one text part, consecutive same-role messages are one, tool results are text.
static json_t *s_openai_normal (const json_t *messages)
{
    json_t *normal = json_array ();
    size_t i;
    const json_t *message;
    json_array_foreach (messages, i, message)
    {
        const char *role = s_string (message, "role");
        if (strcmp (role, "developer") == 0)
            role = "system";
        const json_t *content = json_object_get (message, "content");
        json_t *parts = json_array ();
        if (json_is_string (content) && json_string_length (content) > 0)
            json_array_append_new (parts, s_text_block (json_string_value (content)));
        size_t j;
        const json_t *part;
        json_array_foreach (content, j, part)
        {
            //  the detail hint has no Anthropic equivalent
            json_t *copy = json_deep_copy (part);
            json_object_del (json_object_get (copy, "image_url"), "detail");
            json_array_append_new (parts, copy);
        }
        if (strcmp (role, "tool") == 0) {
            //  results are text joined by newlines on the Anthropic -> OpenAI way
            char joined[4096] = "";
            json_array_foreach (parts, j, part)
            {
                if (j > 0)
                    strcat (joined, "\n");
                strcat (joined, s_string (part, "text"));
            }
            json_array_append_new (
                normal, json_pack ("{s:s, s:O, s:s}", "role", "tool", "tool_call_id",
                                   json_object_get (message, "tool_call_id"), "content", joined));
            json_decref (parts);
            continue;
        }
        json_t *last = json_array_get (normal, json_array_size (normal) - 1);
        if (last && s_is (json_object_get (last, "role"), role)) {
            json_array_extend (json_object_get (last, "content"), parts);
            json_decref (parts);
        } else {
            last = json_pack ("{s:s, s:o, s:[]}", "role", role, "content", parts, "tool_calls");
            json_array_append_new (normal, last);
        }
        if (json_is_array (json_object_get (message, "tool_calls")))
            json_array_extend (json_object_get (last, "tool_calls"),
                               json_object_get (message, "tool_calls"));
    }
    return normal;
}

//  An Anthropic conversation reduced likewise: system and string content are text blocks,
//  cache_control, thinking and is_error go (OpenAI cannot carry them), tool result text joined.
static json_t *s_anthropic_normal (const json_t *request)
{
    json_t *normal = json_object ();
    const json_t *system = json_object_get (request, "system");
    json_t *blocks = json_is_string (system)
                         ? json_pack ("[o]", s_text_block (json_string_value (system)))
                         : json_array ();
    size_t i, j;
    const json_t *block, *turn;
    json_array_foreach (system, i, block)
        json_array_append_new (blocks, s_text_block (s_string (block, "text")));
    json_object_set_new (normal, "system", blocks);
    json_t *turns = json_array ();
    json_array_foreach (json_object_get (request, "messages"), i, turn)
    {
        const json_t *content = json_object_get (turn, "content");
        blocks = json_array ();
        if (json_is_string (content))
            json_array_append_new (blocks, s_text_block (json_string_value (content)));
        json_array_foreach (content, j, block)
        {
            if (s_is (json_object_get (block, "type"), "thinking"))
                continue;
            json_t *copy = json_deep_copy (block);
            json_object_del (copy, "cache_control");
            json_object_del (copy, "is_error");
            json_t *result = json_object_get (copy, "content");
            if (json_is_array (result)) {
                char joined[4096] = "";
                size_t k;
                const json_t *inner;
                json_array_foreach (result, k, inner)
                {
                    if (k > 0)
                        strcat (joined, "\n");
                    strcat (joined, s_string (inner, "text"));
                }
                json_object_set_new (copy, "content", json_string (joined));
            }
            json_array_append_new (blocks, copy);
        }
        json_array_append_new (
            turns,
            json_pack ("{s:O, s:o}", "role", json_object_get (turn, "role"), "content", blocks));
    }
    json_object_set_new (normal, "messages", turns);
    json_t *tools = json_array ();
    const json_t *tool;
    json_array_foreach (json_object_get (request, "tools"), i, tool)
    {
        json_t *copy = json_deep_copy (tool);
        json_object_del (copy, "cache_control");
        json_object_del (copy, "type");
        json_array_append_new (tools, copy);
    }
    json_object_set_new (normal, "tools", tools);
    static const char *params[] = {"model", "max_tokens", "stop_sequences", "temperature",
                                   "top_p", "stream",     "metadata",       "tool_choice"};
    for (i = 0; i < sizeof params / sizeof params[0]; i++)
        s_copy (normal, params[i], request, params[i]);
    return normal;
}

//  Say what a failed round trip changed (fixtures only: test data, not callers' content).
static void s_report_difference (const json_t *before, const json_t *after)
{
    if (json_equal (before, after))
        return;
    char *a = json_dumps (before, JSON_COMPACT), *b = json_dumps (after, JSON_COMPACT);
    fprintf (stderr, "round trip differs:\n%s\n%s\n", a, b);
    free (a);
    free (b);
}

//  OpenAI -> Anthropic -> OpenAI keeps the conversation, tools and parameters.
static void s_assert_openai_round_trip (const json_t *request)
{
    json_t *anthropic = s_translate (ar_xlate_openai_to_anthropic_request, request);
    json_t *back = s_translate (ar_xlate_anthropic_to_openai_request, anthropic);
    json_t *before = s_openai_normal (json_object_get (request, "messages"));
    json_t *after = s_openai_normal (json_object_get (back, "messages"));
    s_report_difference (before, after);
    assert (json_equal (before, after));
    json_decref (before);
    json_decref (after);
    //  `strict` is the one tool member Anthropic does not take
    json_t *tools = json_deep_copy (json_object_get (request, "tools"));
    size_t k;
    json_t *tool;
    json_array_foreach (tools, k, tool)
        json_object_del (json_object_get (tool, "function"), "strict");
    s_report_difference (tools, json_object_get (back, "tools"));
    assert (json_equal (tools, json_object_get (back, "tools")));
    json_decref (tools);
    assert (json_equal (json_object_get (request, "tool_choice"),
                        json_object_get (back, "tool_choice")));
    assert (json_equal (json_object_get (request, "model"), json_object_get (back, "model")));
    const json_t *max = s_member (request, "max_completion_tokens");
    if (!max)
        max = s_member (request, "max_tokens");
    assert (json_integer_value (json_object_get (back, "max_tokens")) ==
            (max ? json_integer_value (max) : AR_XLATE_DEFAULT_MAX_TOKENS));
    static const char *same[] = {"temperature", "top_p", "user", "stream"};
    for (k = 0; k < sizeof same / sizeof same[0]; k++)
        assert (json_equal (s_member (request, same[k]), s_member (back, same[k])) ||
                (!s_member (request, same[k]) && !s_member (back, same[k])));
    const json_t *stop = s_member (request, "stop");
    if (json_is_string (stop))
        assert (json_equal (json_array_get (json_object_get (back, "stop"), 0), stop));
    else
        assert (json_equal (stop, json_object_get (back, "stop")) ||
                (!stop && !json_object_get (back, "stop")));
    //  parallel_tool_calls: false survives; true is the default on both sides
    assert (json_is_false (s_member (request, "parallel_tool_calls")) ==
            json_is_false (json_object_get (back, "parallel_tool_calls")));
    json_decref (anthropic);
    json_decref (back);
}

//  Anthropic -> OpenAI -> Anthropic keeps the conversation, tools and parameters.
static void s_assert_anthropic_round_trip (const json_t *request)
{
    json_t *openai = s_translate (ar_xlate_anthropic_to_openai_request, request);
    json_t *back = s_translate (ar_xlate_openai_to_anthropic_request, openai);
    json_t *before = s_anthropic_normal (request);
    json_t *after = s_anthropic_normal (back);
    s_report_difference (before, after);
    assert (json_equal (before, after));
    json_decref (before);
    json_decref (after);
    json_decref (openai);
    json_decref (back);
}

//  A multi-turn conversation with two parallel tool calls, as an OpenAI SDK sends it.
static const char *s_openai_parallel_tools =
    "{\"model\":\"claude-sonnet-4-5\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are a weather assistant.\"},"
    "{\"role\":\"user\",\"content\":\"What's the weather in Paris and in Tokyo?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"refusal\":null,\"tool_calls\":["
    "{\"id\":\"call_Vq0b8XkPZ3e1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"unit\\\":\\\"celsius\\\"}\"}},"
    "{\"id\":\"call_Wm7d2YtQ9f4k\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Tokyo\\\",\\\"unit\\\":\\\"celsius\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_Vq0b8XkPZ3e1\","
    "\"content\":\"{\\\"temp\\\":18,\\\"sky\\\":\\\"cloudy\\\"}\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_Wm7d2YtQ9f4k\","
    "\"content\":\"{\\\"temp\\\":24,\\\"sky\\\":\\\"clear\\\"}\"},"
    "{\"role\":\"user\",\"content\":\"Which one is warmer?\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"description\":\"Current weather for a city\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"type\":\"string\","
    "\"enum\":[\"celsius\",\"fahrenheit\"]}},\"required\":[\"city\"]}}}],"
    "\"tool_choice\":\"auto\",\"parallel_tool_calls\":true,\"max_completion_tokens\":1024,"
    "\"temperature\":0.2,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
    "\"user\":\"user-1234\",\"seed\":42,\"frequency_penalty\":0.5,\"presence_penalty\":0.1,"
    "\"store\":false,\"metadata\":{\"team\":\"search\"},\"service_tier\":\"auto\"}";

//  Images both ways, system prompts as a developer string and as parts.
static const char *s_openai_images =
    "{\"model\":\"claude-haiku-4-5\",\"messages\":["
    "{\"role\":\"developer\",\"content\":\"Answer tersely.\"},"
    "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"Describe images.\"},"
    "{\"type\":\"text\",\"text\":\"Use metric units.\"}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Compare these two photos.\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg"
    "AAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\","
    "\"detail\":\"high\"}},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://upload.wikimedia.org/wikipedia/"
    "commons/a/a7/Camponotus_flavomarginatus_ant.jpg\"}}]}],"
    "\"max_tokens\":300,\"stop\":\"\\n\\nHuman:\",\"top_p\":0.9,"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"tag_image\",\"parameters\":"
    "{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"items\":"
    "{\"type\":\"string\"}}}}}}],"
    "\"tool_choice\":\"required\",\"parallel_tool_calls\":false}";

//  Consecutive user messages, assistant text with a call, a tool result as parts, a named tool.
static const char *s_openai_named_tool =
    "{\"model\":\"claude-opus-4-1\",\"messages\":["
    "{\"role\":\"user\",\"content\":\"Look up order 8812.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"It was placed last week.\"}]},"
    "{\"role\":\"assistant\",\"content\":\"Let me check that order.\",\"tool_calls\":["
    "{\"id\":\"call_3kq\",\"type\":\"function\",\"function\":{\"name\":\"lookup_order\","
    "\"arguments\":\"{\\\"order_id\\\":\\\"8812\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_3kq\",\"content\":[{\"type\":\"text\","
    "\"text\":\"status: shipped\"},{\"type\":\"text\",\"text\":\"carrier: DHL\"}]},"
    "{\"role\":\"assistant\",\"content\":\"It shipped with DHL.\"},"
    "{\"role\":\"user\",\"content\":\"When will it arrive?\",\"name\":\"dana\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup_order\",\"description\":"
    "\"Order status\",\"parameters\":{\"type\":\"object\",\"properties\":{\"order_id\":"
    "{\"type\":\"string\"}},\"required\":[\"order_id\"]},\"strict\":true}}],"
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"lookup_order\"}},"
    "\"stop\":[\"END\",\"STOP\"],\"n\":1,\"response_format\":{\"type\":\"text\"},"
    "\"reasoning_effort\":\"low\",\"logprobs\":false,\"temperature\":1}";

static void s_test_openai_to_anthropic (void)
{
    json_t *request = s_load (s_openai_parallel_tools);
    json_t *out = s_translate (ar_xlate_openai_to_anthropic_request, request);
    assert (s_is (json_object_get (out, "model"), "claude-sonnet-4-5"));
    assert (s_is (json_object_get (out, "system"), "You are a weather assistant."));
    json_t *turns = json_object_get (out, "messages");
    assert (json_array_size (turns) == 3);
    assert (s_is (json_object_get (json_array_get (turns, 0), "role"), "user"));
    assert (s_is (json_object_get (json_array_get (turns, 0), "content"),
                  "What's the weather in Paris and in Tokyo?"));
    json_t *assistant = json_array_get (turns, 1);
    assert (s_is (json_object_get (assistant, "role"), "assistant"));
    json_t *blocks = json_object_get (assistant, "content");
    assert (json_array_size (blocks) == 2); // no empty text block for content:null
    for (size_t k = 0; k < 2; k++) {
        json_t *use = json_array_get (blocks, k);
        assert (s_is (json_object_get (use, "type"), "tool_use"));
        assert (s_is (json_object_get (use, "name"), "get_weather"));
        assert (s_is (json_object_get (json_object_get (use, "input"), "unit"), "celsius"));
    }
    assert (s_is (json_object_get (json_array_get (blocks, 0), "id"), "call_Vq0b8XkPZ3e1"));
    assert (s_is (json_object_get (json_object_get (json_array_get (blocks, 1), "input"), "city"),
                  "Tokyo"));
    //  both results and the following question share one user turn, results first
    json_t *results = json_object_get (json_array_get (turns, 2), "content");
    assert (s_is (json_object_get (json_array_get (turns, 2), "role"), "user"));
    assert (json_array_size (results) == 3);
    assert (s_is (json_object_get (json_array_get (results, 0), "type"), "tool_result"));
    assert (
        s_is (json_object_get (json_array_get (results, 0), "tool_use_id"), "call_Vq0b8XkPZ3e1"));
    assert (
        s_is (json_object_get (json_array_get (results, 1), "tool_use_id"), "call_Wm7d2YtQ9f4k"));
    assert (s_is (json_object_get (json_array_get (results, 1), "content"),
                  "{\"temp\":24,\"sky\":\"clear\"}"));
    assert (s_is (json_object_get (json_array_get (results, 2), "type"), "text"));
    assert (s_is (json_object_get (json_array_get (results, 2), "text"), "Which one is warmer?"));
    assert (json_integer_value (json_object_get (out, "max_tokens")) == 1024);
    assert (json_real_value (json_object_get (out, "temperature")) == 0.2);
    assert (json_is_true (json_object_get (out, "stream")));
    assert (s_is (json_object_get (json_object_get (out, "metadata"), "user_id"), "user-1234"));
    assert (json_object_size (json_object_get (out, "metadata")) == 1); // OpenAI's labels gone
    static const char *dropped[] = {"stream_options",      "seed",  "frequency_penalty",
                                    "presence_penalty",    "store", "service_tier",
                                    "parallel_tool_calls", "user",  "max_completion_tokens"};
    for (size_t k = 0; k < sizeof dropped / sizeof dropped[0]; k++)
        assert (!json_object_get (out, dropped[k]));
    json_t *tool = json_array_get (json_object_get (out, "tools"), 0);
    assert (s_is (json_object_get (tool, "name"), "get_weather"));
    assert (s_is (json_object_get (tool, "description"), "Current weather for a city"));
    assert (json_equal (
        json_object_get (tool, "input_schema"),
        json_object_get (
            json_object_get (json_array_get (json_object_get (request, "tools"), 0), "function"),
            "parameters")));
    assert (s_is (json_object_get (json_object_get (out, "tool_choice"), "type"), "auto"));
    assert (!json_object_get (json_object_get (out, "tool_choice"), "disable_parallel_tool_use"));
    json_decref (out);
    json_decref (request);

    request = s_load (s_openai_images);
    out = s_translate (ar_xlate_openai_to_anthropic_request, request);
    json_t *system = json_object_get (out, "system");
    assert (json_array_size (system) == 3);
    assert (s_is (json_object_get (json_array_get (system, 0), "text"), "Answer tersely."));
    assert (s_is (json_object_get (json_array_get (system, 2), "text"), "Use metric units."));
    turns = json_object_get (out, "messages");
    assert (json_array_size (turns) == 1);
    blocks = json_object_get (json_array_get (turns, 0), "content");
    assert (json_array_size (blocks) == 3);
    json_t *source = json_object_get (json_array_get (blocks, 1), "source");
    assert (s_is (json_object_get (json_array_get (blocks, 1), "type"), "image"));
    assert (s_is (json_object_get (source, "type"), "base64"));
    assert (s_is (json_object_get (source, "media_type"), "image/png"));
    assert (strncmp (s_string (source, "data"), "iVBORw0KGgo", 11) == 0);
    assert (!strchr (s_string (source, "data"), ','));
    source = json_object_get (json_array_get (blocks, 2), "source");
    assert (s_is (json_object_get (source, "type"), "url"));
    assert (s_is (json_object_get (source, "url"),
                  "https://upload.wikimedia.org/wikipedia/"
                  "commons/a/a7/Camponotus_flavomarginatus_ant.jpg"));
    assert (json_integer_value (json_object_get (out, "max_tokens")) == 300);
    assert (s_is (json_array_get (json_object_get (out, "stop_sequences"), 0), "\n\nHuman:"));
    assert (json_real_value (json_object_get (out, "top_p")) == 0.9);
    json_t *choice = json_object_get (out, "tool_choice");
    assert (s_is (json_object_get (choice, "type"), "any"));
    assert (json_is_true (json_object_get (choice, "disable_parallel_tool_use")));
    assert (!json_object_get (out, "stream"));
    json_decref (out);
    json_decref (request);

    request = s_load (s_openai_named_tool);
    out = s_translate (ar_xlate_openai_to_anthropic_request, request);
    assert (!json_object_get (out, "system"));
    assert (json_integer_value (json_object_get (out, "max_tokens")) ==
            AR_XLATE_DEFAULT_MAX_TOKENS);
    turns = json_object_get (out, "messages");
    assert (json_array_size (turns) == 5); // user+user, assistant, tool, assistant, user
    blocks = json_object_get (json_array_get (turns, 0), "content");
    assert (json_array_size (blocks) == 2);
    assert (s_is (json_object_get (json_array_get (blocks, 0), "text"), "Look up order 8812."));
    assert (
        s_is (json_object_get (json_array_get (blocks, 1), "text"), "It was placed last week."));
    blocks = json_object_get (json_array_get (turns, 1), "content");
    assert (json_array_size (blocks) == 2);
    assert (
        s_is (json_object_get (json_array_get (blocks, 0), "text"), "Let me check that order."));
    assert (
        s_is (json_object_get (json_object_get (json_array_get (blocks, 1), "input"), "order_id"),
              "8812"));
    blocks = json_object_get (json_array_get (turns, 2), "content");
    assert (json_array_size (blocks) == 1);
    json_t *result = json_object_get (json_array_get (blocks, 0), "content");
    assert (json_array_size (result) == 2);
    assert (s_is (json_object_get (json_array_get (result, 1), "text"), "carrier: DHL"));
    //  the assistant's answer and the next question each stay plain strings
    assert (s_is (json_object_get (json_array_get (turns, 3), "content"), "It shipped with DHL."));
    assert (s_is (json_object_get (json_array_get (turns, 4), "content"), "When will it arrive?"));
    choice = json_object_get (out, "tool_choice");
    assert (s_is (json_object_get (choice, "type"), "tool"));
    assert (s_is (json_object_get (choice, "name"), "lookup_order"));
    assert (json_array_size (json_object_get (out, "stop_sequences")) == 2);
    assert (!json_object_get (json_array_get (json_object_get (out, "tools"), 0), "strict"));
    assert (json_number_value (json_object_get (out, "temperature")) == 1.0);
    json_decref (out);
    json_decref (request);

    //  A tool result after user text still comes first in its turn
    request = s_load ("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
                      "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
                      "\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}}]},"
                      "{\"role\":\"user\",\"content\":\"hurry\"},"
                      "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"done\"}]}");
    out = s_translate (ar_xlate_openai_to_anthropic_request, request);
    blocks = json_object_get (json_array_get (json_object_get (out, "messages"), 2), "content");
    assert (json_array_size (blocks) == 2);
    assert (s_is_type (json_array_get (blocks, 0), "tool_result"));
    assert (s_is (json_object_get (json_array_get (blocks, 1), "text"), "hurry"));
    json_decref (out);
    json_decref (request);

    //  An empty message merged into a turn adds no (refused) empty text block
    request =
        s_load ("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\"},"
                "{\"role\":\"user\",\"content\":\"Hi\"},"
                "{\"role\":\"user\",\"content\":\"\"},{\"role\":\"user\",\"content\":"
                "[{\"type\":\"text\",\"text\":\"\"},{\"type\":\"text\",\"text\":\"there\"}]}]}");
    out = s_translate (ar_xlate_openai_to_anthropic_request, request);
    turns = json_object_get (out, "messages");
    assert (json_array_size (turns) == 1);
    blocks = json_object_get (json_array_get (turns, 0), "content");
    assert (json_array_size (blocks) == 2);
    assert (s_is (json_object_get (json_array_get (blocks, 0), "text"), "Hi"));
    assert (s_is (json_object_get (json_array_get (blocks, 1), "text"), "there"));
    json_decref (out);
    json_decref (request);

    //  A tool without parameters still gets the schema Anthropic requires
    request = s_load ("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"time?\"}],"
                      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"now\"}}],"
                      "\"parallel_tool_calls\":false}");
    out = s_translate (ar_xlate_openai_to_anthropic_request, request);
    json_t *schema =
        json_object_get (json_array_get (json_object_get (out, "tools"), 0), "input_schema");
    assert (s_is (json_object_get (schema, "type"), "object"));
    assert (json_is_object (json_object_get (schema, "properties")));
    //  parallel_tool_calls:false alone still reaches Anthropic, inside an auto tool_choice
    assert (s_is (json_object_get (json_object_get (out, "tool_choice"), "type"), "auto"));
    assert (json_is_true (
        json_object_get (json_object_get (out, "tool_choice"), "disable_parallel_tool_use")));
    json_decref (out);
    json_decref (request);
}

static void s_test_openai_refusals (void)
{
    json_t *(*to_anthropic) (const json_t *, ar_xlate_error_t *) =
        ar_xlate_openai_to_anthropic_request;
#define USER "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]"
    s_assert_refused (to_anthropic, "{\"model\":\"m\"," USER ",\"n\":2}", "n");
    s_assert_refused (to_anthropic, "{\"model\":\"m\"," USER ",\"logprobs\":true}", "logprobs");
    s_assert_refused (to_anthropic, "{\"model\":\"m\"," USER ",\"top_logprobs\":3}",
                      "top_logprobs");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\"," USER ",\"response_format\":{\"type\":\"json_object\"}}",
                      "response_format");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\"," USER ",\"response_format\":{\"type\":\"json_schema\","
                      "\"json_schema\":{\"name\":\"SECRET\",\"schema\":{}}}}",
                      "response_format");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\"," USER ",\"modalities\":[\"text\",\"audio\"],"
                      "\"audio\":{\"voice\":\"alloy\",\"format\":\"wav\"}}",
                      "audio");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\"," USER ",\"modalities\":[\"text\",\"audio\"]}",
                      "modalities");
    s_assert_refused (to_anthropic, "{\"model\":\"m\"," USER ",\"temperature\":1.5}",
                      "temperature");
    s_assert_refused (to_anthropic, "{\"model\":\"m\"," USER ",\"logit_bias\":{\"50256\":-100}}",
                      "logit_bias");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\"," USER
                      ",\"functions\":[{\"name\":\"f\",\"parameters\":{}}]}",
                      "functions");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\"," USER ",\"tools\":[{\"type\":\"function\",\"function\":"
                      "{\"name\":\"a\"}},{\"type\":\"custom\",\"custom\":{\"name\":\"SECRET\"}}]}",
                      "tools[1].type");
    s_assert_refused (to_anthropic, "{\"model\":\"m\"," USER ",\"tool_choice\":\"sometimes\"}",
                      "tool_choice");
    s_assert_refused (to_anthropic, "{\"model\":\"m\"}", "messages");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                      "{\"role\":\"function\",\"name\":\"f\",\"content\":\"SECRET\"}]}",
                      "messages[1].role");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
                      "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                      "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"a\","
                      "\"arguments\":\"{}\"}},"
                      "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"b\","
                      "\"arguments\":\"[\\\"SECRET\\\",2]\"}}]}]}",
                      "messages[1].tool_calls[1].function.arguments");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
                      "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
                      "\"function\",\"function\":{\"name\":\"a\",\"arguments\":"
                      "\"{city: SECRET\"}}]}]}",
                      "messages[1].tool_calls[0].function.arguments");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
                      "{\"type\":\"text\",\"text\":\"see\"},{\"type\":\"image_url\",\"image_url\":"
                      "{\"url\":\"ftp://example.com/SECRET.png\"}}]}]}",
                      "messages[0].content[1].image_url.url");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
                      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/svg+xml,"
                      "%3Csvg%3ESECRET\"}}]}]}",
                      "messages[0].content[0].image_url.url");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
                      "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"SECRET\","
                      "\"format\":\"wav\"}}]}]}",
                      "messages[0].content[0]");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
                      "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
                      "\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}}]},"
                      "{\"role\":\"tool\",\"content\":\"SECRET\"}]}",
                      "messages[2].tool_call_id");
    s_assert_refused (to_anthropic,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
                      "{\"role\":\"assistant\",\"content\":null,\"function_call\":{\"name\":\"f\","
                      "\"arguments\":\"{}\"}}]}",
                      "messages[1].function_call");
    s_assert_refused (to_anthropic, "{\"model\":\"m\",\"messages\":[{\"role\":\"critic\"}]}",
                      "messages[0].role");
    s_assert_refused (to_anthropic, "[1,2]", "body");
#undef USER
}

//  An Anthropic SDK's multi-turn tool use: cached system blocks, thinking, two parallel calls.
static const char *s_anthropic_parallel_tools =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":2048,"
    "\"system\":[{\"type\":\"text\",\"text\":\"You are a travel agent.\",\"cache_control\":"
    "{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"Today is 2025-03-01.\"}],"
    "\"messages\":["
    "{\"role\":\"user\",\"content\":\"Book the cheapest flight from Berlin to Lisbon and a "
    "hotel.\"},"
    "{\"role\":\"assistant\",\"content\":["
    "{\"type\":\"thinking\",\"thinking\":\"Flights and hotels, in parallel.\",\"signature\":"
    "\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds\"},"
    "{\"type\":\"text\",\"text\":\"I'll search flights and hotels at once.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01A09q90qw90lq917835lq9\",\"name\":\"search_flights\","
    "\"input\":{\"from\":\"BER\",\"to\":\"LIS\",\"max_stops\":0}},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01B7mxtAe2gV0PgXn1Ak4hE2\",\"name\":\"search_hotels\","
    "\"input\":{\"city\":\"Lisbon\",\"nights\":3,\"filters\":{\"stars\":[3,4]}}}]},"
    "{\"role\":\"user\",\"content\":["
    "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01A09q90qw90lq917835lq9\","
    "\"content\":\"TP 539, 89 EUR\"},"
    "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01B7mxtAe2gV0PgXn1Ak4hE2\",\"content\":["
    "{\"type\":\"text\",\"text\":\"Hotel Avenida: 120 EUR/night\"},"
    "{\"type\":\"text\",\"text\":\"Casa Alfama: 95 EUR/night\"}],\"is_error\":false},"
    "{\"type\":\"text\",\"text\":\"Go with the cheaper hotel.\",\"cache_control\":"
    "{\"type\":\"ephemeral\"}}]}],"
    "\"tools\":[{\"name\":\"search_flights\",\"description\":\"Search flights\",\"input_schema\":"
    "{\"type\":\"object\",\"properties\":{\"from\":{\"type\":\"string\"},\"to\":{\"type\":"
    "\"string\"},\"max_stops\":{\"type\":\"integer\"}},\"required\":[\"from\",\"to\"]}},"
    "{\"type\":\"custom\",\"name\":\"search_hotels\",\"description\":\"Search hotels\","
    "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}},"
    "\"cache_control\":{\"type\":\"ephemeral\"}}],"
    "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
    "\"stop_sequences\":[\"###\"],\"temperature\":0.7,\"top_p\":0.95,\"top_k\":40,"
    "\"stream\":true,\"metadata\":{\"user_id\":\"u-77\"},"
    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}}";

//  Images both kinds, a string system prompt, a named tool, an error result.
static const char *s_anthropic_images =
    "{\"model\":\"claude-haiku-4-5\",\"max_tokens\":512,\"system\":\"Be brief.\","
    "\"messages\":["
    "{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
    "\"media_type\":\"image/jpeg\",\"data\":\"/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA==\"}},"
    "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/cat.png\"}},"
    "{\"type\":\"text\",\"text\":\"What animals are these?\"}]},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"A dog and a cat.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"classify\",\"input\":{}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_9\","
    "\"content\":\"classifier offline\",\"is_error\":true}]},"
    "{\"role\":\"assistant\",\"content\":\"Sorry, I could not classify them.\"},"
    "{\"role\":\"user\",\"content\":\"Ok\"}],"
    "\"tools\":[{\"name\":\"classify\",\"input_schema\":{\"type\":\"object\"}}],"
    "\"tool_choice\":{\"type\":\"tool\",\"name\":\"classify\"},\"temperature\":0}";

static void s_test_anthropic_to_openai (void)
{
    json_t *request = s_load (s_anthropic_parallel_tools);
    json_t *out = s_translate (ar_xlate_anthropic_to_openai_request, request);
    json_t *messages = json_object_get (out, "messages");
    assert (json_array_size (messages) == 6);
    json_t *system = json_array_get (messages, 0);
    assert (s_is (json_object_get (system, "role"), "system"));
    assert (json_array_size (json_object_get (system, "content")) == 2);
    assert (!json_object_get (json_array_get (json_object_get (system, "content"), 0),
                              "cache_control"));
    assert (s_is (json_object_get (json_array_get (messages, 1), "role"), "user"));
    json_t *assistant = json_array_get (messages, 2);
    assert (
        s_is (json_object_get (assistant, "content"), "I'll search flights and hotels at once."));
    json_t *calls = json_object_get (assistant, "tool_calls");
    assert (json_array_size (calls) == 2);
    json_t *function = json_object_get (json_array_get (calls, 1), "function");
    assert (s_is (json_object_get (json_array_get (calls, 1), "type"), "function"));
    assert (
        s_is (json_object_get (json_array_get (calls, 1), "id"), "toolu_01B7mxtAe2gV0PgXn1Ak4hE2"));
    assert (s_is (json_object_get (function, "name"), "search_hotels"));
    json_t *arguments = s_load (s_string (function, "arguments"));
    assert (json_equal (
        arguments,
        json_object_get (
            json_array_get (
                json_object_get (json_array_get (json_object_get (request, "messages"), 1),
                                 "content"),
                3),
            "input")));
    assert (!strchr (s_string (function, "arguments"), ' ')); // compact
    json_decref (arguments);
    json_t *tool = json_array_get (messages, 3);
    assert (s_is (json_object_get (tool, "role"), "tool"));
    assert (s_is (json_object_get (tool, "tool_call_id"), "toolu_01A09q90qw90lq917835lq9"));
    assert (s_is (json_object_get (tool, "content"), "TP 539, 89 EUR"));
    tool = json_array_get (messages, 4);
    assert (s_is (json_object_get (tool, "content"),
                  "Hotel Avenida: 120 EUR/night\nCasa Alfama: 95 EUR/night"));
    json_t *user = json_array_get (messages, 5);
    assert (s_is (json_object_get (user, "role"), "user"));
    assert (s_is (json_object_get (json_array_get (json_object_get (user, "content"), 0), "text"),
                  "Go with the cheaper hotel."));
    assert (json_integer_value (json_object_get (out, "max_tokens")) == 2048);
    assert (s_is (json_array_get (json_object_get (out, "stop"), 0), "###"));
    assert (json_real_value (json_object_get (out, "temperature")) == 0.7);
    assert (json_real_value (json_object_get (out, "top_p")) == 0.95);
    assert (json_is_true (json_object_get (out, "stream")));
    assert (
        json_is_true (json_object_get (json_object_get (out, "stream_options"), "include_usage")));
    assert (s_is (json_object_get (out, "user"), "u-77"));
    assert (s_is (json_object_get (out, "tool_choice"), "required"));
    assert (json_is_false (json_object_get (out, "parallel_tool_calls")));
    static const char *dropped[] = {"top_k", "thinking", "metadata", "system", "stop_sequences"};
    for (size_t k = 0; k < sizeof dropped / sizeof dropped[0]; k++)
        assert (!json_object_get (out, dropped[k]));
    json_t *tools = json_object_get (out, "tools");
    assert (json_array_size (tools) == 2);
    function = json_object_get (json_array_get (tools, 1), "function");
    assert (s_is (json_object_get (json_array_get (tools, 1), "type"), "function"));
    assert (s_is (json_object_get (function, "name"), "search_hotels"));
    assert (s_is (json_object_get (function, "description"), "Search hotels"));
    assert (s_is (
        json_object_get (
            json_object_get (
                json_object_get (json_object_get (function, "parameters"), "properties"), "city"),
            "type"),
        "string"));
    json_decref (out);
    json_decref (request);

    request = s_load (s_anthropic_images);
    out = s_translate (ar_xlate_anthropic_to_openai_request, request);
    messages = json_object_get (out, "messages");
    assert (json_array_size (messages) == 6);
    assert (s_is (json_object_get (json_array_get (messages, 0), "content"), "Be brief."));
    json_t *parts = json_object_get (json_array_get (messages, 1), "content");
    assert (json_array_size (parts) == 3);
    assert (s_is (json_object_get (json_array_get (parts, 0), "type"), "image_url"));
    assert (s_is (json_object_get (json_object_get (json_array_get (parts, 0), "image_url"), "url"),
                  "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA=="));
    assert (s_is (json_object_get (json_object_get (json_array_get (parts, 1), "image_url"), "url"),
                  "https://example.com/cat.png"));
    assert (s_is (json_object_get (json_array_get (parts, 2), "text"), "What animals are these?"));
    //  the empty input object is still an argument string a parser takes
    calls = json_object_get (json_array_get (messages, 2), "tool_calls");
    assert (s_is (
        json_object_get (json_object_get (json_array_get (calls, 0), "function"), "arguments"),
        "{}"));
    //  an error result keeps its content and nothing else
    tool = json_array_get (messages, 3);
    assert (s_is (json_object_get (tool, "content"), "classifier offline"));
    assert (json_object_size (tool) == 3);
    assert (s_is (json_object_get (json_array_get (messages, 4), "content"),
                  "Sorry, I could not classify them."));
    json_t *choice = json_object_get (out, "tool_choice");
    assert (s_is (json_object_get (choice, "type"), "function"));
    assert (s_is (json_object_get (json_object_get (choice, "function"), "name"), "classify"));
    assert (!json_object_get (out, "parallel_tool_calls"));
    assert (!json_object_get (out, "stream") && !json_object_get (out, "stream_options"));
    assert (json_number_value (json_object_get (out, "temperature")) == 0);
    json_decref (out);
    json_decref (request);

    //  Only thinking in an assistant turn: nothing for OpenAI; structured output maps over
    request = s_load (
        "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"redacted_thinking\",\"data\":\"xyz\"}]},"
        "{\"role\":\"user\",\"content\":\"b\"}],\"output_config\":{\"effort\":\"low\",\"format\":"
        "{\"type\":\"json_schema\",\"schema\":{\"type\":\"object\",\"properties\":{}}}}}");
    out = s_translate (ar_xlate_anthropic_to_openai_request, request);
    assert (json_array_size (json_object_get (out, "messages")) == 2);
    json_t *format = json_object_get (out, "response_format");
    assert (s_is (json_object_get (format, "type"), "json_schema"));
    assert (json_is_object (json_object_get (json_object_get (format, "json_schema"), "schema")));
    json_decref (out);
    json_decref (request);
}

static void s_test_anthropic_refusals (void)
{
    json_t *(*to_openai) (const json_t *, ar_xlate_error_t *) =
        ar_xlate_anthropic_to_openai_request;
    s_assert_refused (to_openai,
                      "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
                      "\"content\":[{\"type\":\"text\",\"text\":\"Summarize\"},{\"type\":"
                      "\"document\",\"source\":{\"type\":\"base64\",\"media_type\":"
                      "\"application/pdf\",\"data\":\"SECRET\"}}]}]}",
                      "messages[0].content[1]");
    s_assert_refused (to_openai,
                      "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"news?\"}],\"tools\":[{\"name\":\"a\",\"input_schema\":"
                      "{\"type\":\"object\"}},{\"type\":\"web_search_20250305\",\"name\":"
                      "\"web_search\",\"max_uses\":5}]}",
                      "tools[1]");
    s_assert_refused (to_openai,
                      "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\"}],\"mcp_servers\":[{\"type\":\"url\",\"url\":"
                      "\"https://example.com/sse\",\"name\":\"SECRET\"}]}",
                      "mcp_servers");
    s_assert_refused (to_openai,
                      "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"shot\"},{\"role\":\"assistant\",\"content\":[{\"type\":"
                      "\"tool_use\",\"id\":\"t1\",\"name\":\"screenshot\",\"input\":{}}]},"
                      "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
                      "\"t1\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"},{\"type\":\"image\","
                      "\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":"
                      "\"SECRET\"}}]}]}]}",
                      "messages[2].content[0].content[1]");
    s_assert_refused (to_openai,
                      "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[{\"type\":"
                      "\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":\"web_search\","
                      "\"input\":{\"query\":\"SECRET\"}}]}]}",
                      "messages[1].content[0]");
    s_assert_refused (to_openai,
                      "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"system\","
                      "\"content\":\"SECRET\"}]}",
                      "messages[0].role");
    s_assert_refused (to_openai,
                      "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"q\"}],\"tool_choice\":{\"type\":\"sometimes\"}}",
                      "tool_choice");
    s_assert_refused (to_openai,
                      "{\"model\":\"m\",\"max_tokens\":10,\"system\":[{\"type\":\"image\"}],"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
                      "system[0]");
    s_assert_refused (to_openai,
                      "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
                      "\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"file\","
                      "\"file_id\":\"SECRET\"}}]}]}",
                      "messages[0].content[0].source");
    s_assert_refused (to_openai, "{\"model\":\"m\",\"max_tokens\":10}", "messages");
}

static void s_test_round_trips (void)
{
    const char *openai[] = {s_openai_parallel_tools, s_openai_images, s_openai_named_tool};
    for (size_t k = 0; k < sizeof openai / sizeof openai[0]; k++) {
        json_t *request = s_load (openai[k]);
        s_assert_openai_round_trip (request);
        json_decref (request);
    }
    const char *anthropic[] = {s_anthropic_parallel_tools, s_anthropic_images};
    for (size_t k = 0; k < sizeof anthropic / sizeof anthropic[0]; k++) {
        json_t *request = s_load (anthropic[k]);
        s_assert_anthropic_round_trip (request);
        json_decref (request);
    }
    //  The inputs are never changed
    json_t *request = s_load (s_openai_parallel_tools);
    json_t *copy = json_deep_copy (request);
    json_t *out = s_translate (ar_xlate_openai_to_anthropic_request, request);
    json_object_set_new (json_array_get (json_object_get (out, "messages"), 0), "content",
                         json_string ("changed"));
    assert (json_equal (request, copy));
    json_decref (out);
    json_decref (copy);
    json_decref (request);
}

//  A cached prompt answered in two text pieces, as the Messages API returns it.
static const char *s_anthropic_text_response =
    "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"text\",\"text\":"
    "\"Paris is \"},{\"type\":\"text\",\"text\":\"the capital of France.\",\"citations\":null}],"
    "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":21,"
    "\"cache_creation_input_tokens\":1500,\"cache_read_input_tokens\":3000,\"output_tokens\":12,"
    "\"service_tier\":\"standard\"}}";

static const char *s_anthropic_tool_response =
    "{\"id\":\"msg_01Aq9w938a90dw8q\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-opus-4-1-20250805\",\"content\":["
    "{\"type\":\"thinking\",\"thinking\":\"Two cities.\",\"signature\":\"EqQBCgIYAh\"},"
    "{\"type\":\"text\",\"text\":\"I'll check both cities.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\","
    "\"input\":{\"city\":\"Paris\",\"unit\":\"celsius\"}},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01VAZbW2bVvS8wXzCpQzZ7rT\",\"name\":\"get_weather\","
    "\"input\":{\"city\":\"Tokyo\",\"unit\":\"celsius\"}}],"
    "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,"
    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":89}}";

static const char *s_openai_text_response =
    "{\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion\","
    "\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"The image shows a wooden boardwalk.\","
    "\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":1117,\"completion_tokens\":46,\"total_tokens\":1163,"
    "\"prompt_tokens_details\":{\"cached_tokens\":1024,\"audio_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
    "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},"
    "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_fc9f1d7035\"}";

static const char *s_openai_tool_response =
    "{\"id\":\"chatcmpl-AbCdEf123\",\"object\":\"chat.completion\",\"created\":1741570300,"
    "\"model\":\"gpt-4.1-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":null,\"tool_calls\":["
    "{\"id\":\"call_abc\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
    "{\"id\":\"call_def\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Tok\"}}],\"refusal\":null},\"logprobs\":null,"
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":82,"
    "\"completion_tokens\":40,\"total_tokens\":122}}";

static void s_test_responses (void)
{
    json_t *response = s_load (s_anthropic_text_response);
    ar_usage_t usage = {0};
    json_t *out = ar_xlate_anthropic_to_openai_response (response, &usage);
    assert (out);
    assert (s_is (json_object_get (out, "object"), "chat.completion"));
    assert (strstr (s_string (out, "id"), "msg_01XFDUDYJgAACzvnptvVoYEL"));
    assert (json_integer_value (json_object_get (out, "created")) > 1700000000);
    assert (s_is (json_object_get (out, "model"), "claude-sonnet-4-5-20250929"));
    json_t *choice = json_array_get (json_object_get (out, "choices"), 0);
    json_t *message = json_object_get (choice, "message");
    assert (s_is (json_object_get (message, "role"), "assistant"));
    assert (s_is (json_object_get (message, "content"), "Paris is the capital of France."));
    assert (!json_object_get (message, "tool_calls"));
    assert (s_is (json_object_get (choice, "finish_reason"), "stop"));
    json_t *counts = json_object_get (out, "usage");
    assert (json_integer_value (json_object_get (counts, "prompt_tokens")) == 21 + 1500 + 3000);
    assert (json_integer_value (json_object_get (counts, "completion_tokens")) == 12);
    assert (json_integer_value (json_object_get (counts, "total_tokens")) == 4521 + 12);
    assert (json_integer_value (json_object_get (json_object_get (counts, "prompt_tokens_details"),
                                                 "cached_tokens")) == 3000);
    assert (usage.has_input && usage.input_tokens == 4521);
    assert (usage.has_output && usage.output_tokens == 12);
    assert (usage.has_cached && usage.cached_input_tokens == 3000);
    assert (strcmp (usage.model, "claude-sonnet-4-5-20250929") == 0);
    json_decref (out);
    json_decref (response);

    response = s_load (s_anthropic_tool_response);
    out = ar_xlate_anthropic_to_openai_response (response, NULL);
    choice = json_array_get (json_object_get (out, "choices"), 0);
    message = json_object_get (choice, "message");
    assert (s_is (json_object_get (message, "content"), "I'll check both cities."));
    assert (s_is (json_object_get (choice, "finish_reason"), "tool_calls"));
    json_t *calls = json_object_get (message, "tool_calls");
    assert (json_array_size (calls) == 2);
    assert (
        s_is (json_object_get (json_array_get (calls, 1), "id"), "toolu_01VAZbW2bVvS8wXzCpQzZ7rT"));
    json_t *arguments =
        s_load (s_string (json_object_get (json_array_get (calls, 1), "function"), "arguments"));
    assert (s_is (json_object_get (arguments, "city"), "Tokyo"));
    json_decref (arguments);
    json_decref (out);
    //  only tool_use: content is null
    json_array_remove (json_object_get (response, "content"), 1);
    out = ar_xlate_anthropic_to_openai_response (response, NULL);
    message = json_object_get (json_array_get (json_object_get (out, "choices"), 0), "message");
    assert (json_is_null (json_object_get (message, "content")));
    assert (json_array_size (json_object_get (message, "tool_calls")) == 2);
    json_decref (out);
    //  every stop reason
    static const char *stops[][2] = {{"end_turn", "stop"},
                                     {"stop_sequence", "stop"},
                                     {"max_tokens", "length"},
                                     {"tool_use", "tool_calls"},
                                     {"refusal", "content_filter"},
                                     {"pause_turn", "stop"},
                                     {"model_context_window_exceeded", "length"}};
    for (size_t k = 0; k < sizeof stops / sizeof stops[0]; k++) {
        json_object_set_new (response, "stop_reason", json_string (stops[k][0]));
        out = ar_xlate_anthropic_to_openai_response (response, NULL);
        assert (s_is (
            json_object_get (json_array_get (json_object_get (out, "choices"), 0), "finish_reason"),
            stops[k][1]));
        json_decref (out);
    }
    json_decref (response);

    response = s_load (s_openai_text_response);
    memset (&usage, 0, sizeof usage);
    out = ar_xlate_openai_to_anthropic_response (response, &usage);
    assert (out);
    assert (s_is (json_object_get (out, "id"), "msg_chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"));
    assert (s_is (json_object_get (out, "type"), "message"));
    assert (s_is (json_object_get (out, "role"), "assistant"));
    assert (s_is (json_object_get (out, "model"), "gpt-4o-2024-08-06"));
    json_t *content = json_object_get (out, "content");
    assert (json_array_size (content) == 1);
    assert (s_is (json_object_get (json_array_get (content, 0), "text"),
                  "The image shows a wooden boardwalk."));
    assert (s_is (json_object_get (out, "stop_reason"), "end_turn"));
    assert (json_is_null (json_object_get (out, "stop_sequence")));
    counts = json_object_get (out, "usage");
    assert (json_integer_value (json_object_get (counts, "input_tokens")) == 1117 - 1024);
    assert (json_integer_value (json_object_get (counts, "output_tokens")) == 46);
    assert (json_integer_value (json_object_get (counts, "cache_read_input_tokens")) == 1024);
    assert (json_integer_value (json_object_get (counts, "cache_creation_input_tokens")) == 0);
    assert (usage.has_input && usage.input_tokens == 1117);
    assert (usage.has_output && usage.output_tokens == 46);
    assert (usage.has_cached && usage.cached_input_tokens == 1024);
    assert (strcmp (usage.model, "gpt-4o-2024-08-06") == 0);
    json_decref (out);
    static const char *finishes[][2] = {{"stop", "end_turn"},
                                        {"length", "max_tokens"},
                                        {"tool_calls", "tool_use"},
                                        {"function_call", "tool_use"},
                                        {"content_filter", "refusal"}};
    json_t *first = json_array_get (json_object_get (response, "choices"), 0);
    for (size_t k = 0; k < sizeof finishes / sizeof finishes[0]; k++) {
        json_object_set_new (first, "finish_reason", json_string (finishes[k][0]));
        out = ar_xlate_openai_to_anthropic_response (response, NULL);
        assert (s_is (json_object_get (out, "stop_reason"), finishes[k][1]));
        json_decref (out);
    }
    //  a refusal message says so
    json_t *refusing = json_object_get (first, "message");
    json_object_set_new (refusing, "content", json_null ());
    json_object_set_new (refusing, "refusal", json_string ("I can't help with that."));
    json_object_set_new (first, "finish_reason", json_string ("stop"));
    out = ar_xlate_openai_to_anthropic_response (response, NULL);
    assert (s_is (json_object_get (out, "stop_reason"), "refusal"));
    assert (s_is (json_object_get (json_array_get (json_object_get (out, "content"), 0), "text"),
                  "I can't help with that."));
    json_decref (out);
    json_decref (response);

    response = s_load (s_openai_tool_response);
    memset (&usage, 0, sizeof usage);
    out = ar_xlate_openai_to_anthropic_response (response, &usage);
    content = json_object_get (out, "content");
    assert (json_array_size (content) == 2); // no text block for null content
    assert (s_is (json_object_get (json_array_get (content, 0), "type"), "tool_use"));
    assert (s_is (json_object_get (json_array_get (content, 0), "id"), "call_abc"));
    assert (s_is (json_object_get (json_object_get (json_array_get (content, 0), "input"), "city"),
                  "Paris"));
    //  cut-off arguments become {} and the rest goes on
    assert (json_object_size (json_object_get (json_array_get (content, 1), "input")) == 0);
    assert (s_is (json_object_get (json_array_get (content, 1), "name"), "get_weather"));
    assert (s_is (json_object_get (out, "stop_reason"), "tool_use"));
    assert (json_integer_value (json_object_get (json_object_get (out, "usage"), "input_tokens")) ==
            82);
    assert (usage.has_input && usage.input_tokens == 82 && !usage.has_cached);
    json_decref (out);
    json_decref (response);

    //  Round trip: Anthropic -> OpenAI -> Anthropic keeps content, stop reason and usage (with
    //  no cache writes, which OpenAI cannot tell apart)
    response = s_load (s_anthropic_tool_response);
    json_t *openai = ar_xlate_anthropic_to_openai_response (response, NULL);
    json_t *back = ar_xlate_openai_to_anthropic_response (openai, NULL);
    json_array_remove (json_object_get (response, "content"), 0); // thinking goes
    assert (json_equal (json_object_get (response, "content"), json_object_get (back, "content")));
    assert (json_equal (json_object_get (response, "stop_reason"),
                        json_object_get (back, "stop_reason")));
    assert (json_equal (json_object_get (response, "usage"), json_object_get (back, "usage")));
    assert (json_equal (json_object_get (response, "id"), json_object_get (back, "id")));
    json_decref (openai);
    json_decref (back);
    json_decref (response);

    //  Not the expected shape
    response = s_load ("{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}");
    assert (!ar_xlate_anthropic_to_openai_response (response, NULL));
    assert (!ar_xlate_openai_to_anthropic_response (response, NULL));
    json_decref (response);
    response = s_load ("{\"id\":\"chatcmpl-1\",\"choices\":[]}");
    assert (!ar_xlate_openai_to_anthropic_response (response, NULL));
    json_decref (response);
    response = s_load ("[]");
    assert (!ar_xlate_anthropic_to_openai_response (response, NULL));
    json_decref (response);
}

void ar_xlate_anthropic_test (bool verbose)
{
    if (verbose)
        printf (" * ar_xlate_anthropic: ");
    s_test_openai_to_anthropic ();
    s_test_openai_refusals ();
    s_test_anthropic_to_openai ();
    s_test_anthropic_refusals ();
    s_test_round_trips ();
    s_test_responses ();
    if (verbose)
        printf ("OK\n");
}
