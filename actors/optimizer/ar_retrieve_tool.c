/*  ar_retrieve_tool: offer the model anyray_retrieve, and expand its calls (see the header). */
#include "ar_retrieve_tool.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_DESCRIPTION                                                                              \
    "Fetch content the gateway elided from this conversation to save tokens. Text such as "        \
    "[anyray: 12 earlier messages elided; retrieve with id <id>] marks where; call this with "     \
    "that id when you need the original to answer correctly."

static json_t *s_schema (void)
{
    return json_pack ("{s:s, s:{s:{s:s, s:s}}, s:[s]}", "type", "object", "properties", "id",
                      "type", "string", "description",
                      "The 32 hex digits after \"retrieve with id\" in the marker.", "required",
                      "id");
}

static bool s_named (const json_t *tools, ar_shape_t shape)
{
    size_t i;
    json_t *tool;
    json_array_foreach (tools, i, tool)
    {
        const json_t *named =
            shape == AR_SHAPE_OPENAI_CHAT ? json_object_get (tool, "function") : tool;
        const char *name = json_string_value (json_object_get (named, "name"));
        if (name && strcmp (name, AR_RETRIEVE_TOOL_NAME) == 0)
            return true;
    }
    return false;
}

bool ar_retrieve_tool_offer (ar_shape_t shape, json_t *request)
{
    if (json_is_true (json_object_get (request, "stream")))
        return false;
    json_t *choice = json_object_get (request, "tool_choice");
    const char *choice_text = json_string_value (choice);
    const char *choice_type = json_string_value (json_object_get (choice, "type"));
    if ((choice_text && strcmp (choice_text, "none") == 0) ||
        (choice_type && strcmp (choice_type, "none") == 0))
        return false;
    json_t *tools = json_object_get (request, "tools");
    if (tools && (!json_is_array (tools) || s_named (tools, shape)))
        return false;
    json_t *tool = shape == AR_SHAPE_OPENAI_CHAT
                       ? json_pack ("{s:s, s:{s:s, s:s, s:o}}", "type", "function", "function",
                                    "name", AR_RETRIEVE_TOOL_NAME, "description", S_DESCRIPTION,
                                    "parameters", s_schema ())
                       : json_pack ("{s:s, s:s, s:o}", "name", AR_RETRIEVE_TOOL_NAME, "description",
                                    S_DESCRIPTION, "input_schema", s_schema ());
    if (!tool)
        return false;
    if (!tools) {
        tools = json_array ();
        if (!tools || json_object_set_new (request, "tools", tools) != 0) {
            json_decref (tool);
            return false;
        }
    }
    return json_array_append_new (tools, tool) == 0;
}

//  The tool result for one id: the stashed original, or a sentence saying it is gone.
static json_t *s_result_text (ar_stash_t *stash, const char *id)
{
    size_t len = 0;
    char *content = id && stash ? ar_stash_get (stash, id, &len) : NULL;
    json_t *text = content ? json_stringn (content, len)
                           : json_string ("No content is stashed under this id: it is unknown "
                                          "or has expired.");
    free (content);
    return text;
}

static ar_expand_t s_expand_openai (json_t *request, const json_t *response, ar_stash_t *stash,
                                    json_t **stripped)
{
    json_t *message =
        json_object_get (json_array_get (json_object_get (response, "choices"), 0), "message");
    json_t *calls = json_object_get (message, "tool_calls");
    json_t *messages = json_object_get (request, "messages");
    size_t ours = 0, i;
    json_t *call;
    json_array_foreach (calls, i, call)
    {
        const char *name =
            json_string_value (json_object_get (json_object_get (call, "function"), "name"));
        ours += name && strcmp (name, AR_RETRIEVE_TOOL_NAME) == 0;
    }
    if (!ours || !json_is_array (messages))
        return AR_EXPAND_NONE;
    if (ours < json_array_size (calls)) {
        *stripped = json_deep_copy (response);
        json_t *copy = json_object_get (
            json_object_get (json_array_get (json_object_get (*stripped, "choices"), 0), "message"),
            "tool_calls");
        for (size_t j = json_array_size (copy); j-- > 0;) {
            const char *name = json_string_value (
                json_object_get (json_object_get (json_array_get (copy, j), "function"), "name"));
            if (name && strcmp (name, AR_RETRIEVE_TOOL_NAME) == 0)
                json_array_remove (copy, j);
        }
        return *stripped ? AR_EXPAND_STRIPPED : AR_EXPAND_NONE;
    }
    //  The assistant turn as a request message: role, content and the calls, nothing else.
    json_t *turn = json_pack (
        "{s:s, s:O, s:O}", "role", "assistant", "content",
        json_object_get (message, "content") ? json_object_get (message, "content") : json_null (),
        "tool_calls", calls);
    if (!turn || json_array_append_new (messages, turn) != 0)
        return AR_EXPAND_NONE;
    json_array_foreach (calls, i, call)
    {
        const char *arguments =
            json_string_value (json_object_get (json_object_get (call, "function"), "arguments"));
        json_t *args = arguments ? json_loads (arguments, 0, NULL) : NULL;
        json_t *result = json_pack (
            "{s:s, s:O, s:o}", "role", "tool", "tool_call_id", json_object_get (call, "id"),
            "content", s_result_text (stash, json_string_value (json_object_get (args, "id"))));
        json_decref (args);
        if (!result || json_array_append_new (messages, result) != 0)
            return AR_EXPAND_NONE;
    }
    return AR_EXPAND_CONTINUE;
}

static ar_expand_t s_expand_anthropic (json_t *request, const json_t *response, ar_stash_t *stash,
                                       json_t **stripped)
{
    json_t *content = json_object_get (response, "content");
    json_t *messages = json_object_get (request, "messages");
    size_t ours = 0, uses = 0, i;
    json_t *block;
    json_array_foreach (content, i, block)
    {
        const char *type = json_string_value (json_object_get (block, "type"));
        if (!type || strcmp (type, "tool_use") != 0)
            continue;
        uses++;
        const char *name = json_string_value (json_object_get (block, "name"));
        ours += name && strcmp (name, AR_RETRIEVE_TOOL_NAME) == 0;
    }
    if (!ours || !json_is_array (messages))
        return AR_EXPAND_NONE;
    if (ours < uses) {
        *stripped = json_deep_copy (response);
        json_t *copy = json_object_get (*stripped, "content");
        for (size_t j = json_array_size (copy); j-- > 0;) {
            const char *name =
                json_string_value (json_object_get (json_array_get (copy, j), "name"));
            if (name && strcmp (name, AR_RETRIEVE_TOOL_NAME) == 0)
                json_array_remove (copy, j);
        }
        return *stripped ? AR_EXPAND_STRIPPED : AR_EXPAND_NONE;
    }
    json_t *results = json_array ();
    json_array_foreach (content, i, block)
    {
        const char *type = json_string_value (json_object_get (block, "type"));
        if (!type || strcmp (type, "tool_use") != 0)
            continue;
        json_t *input = json_object_get (block, "input");
        json_array_append_new (
            results,
            json_pack ("{s:s, s:O, s:o}", "type", "tool_result", "tool_use_id",
                       json_object_get (block, "id"), "content",
                       s_result_text (stash, json_string_value (json_object_get (input, "id")))));
    }
    if (json_array_append_new (
            messages, json_pack ("{s:s, s:O}", "role", "assistant", "content", content)) != 0 ||
        json_array_append_new (messages,
                               json_pack ("{s:s, s:o}", "role", "user", "content", results)) != 0)
        return AR_EXPAND_NONE;
    return AR_EXPAND_CONTINUE;
}

ar_expand_t ar_retrieve_tool_expand (ar_shape_t shape, json_t *request, const json_t *response,
                                     ar_stash_t *stash, json_t **stripped)
{
    *stripped = NULL;
    if (!json_is_object (request) || !json_is_object (response))
        return AR_EXPAND_NONE;
    return shape == AR_SHAPE_OPENAI_CHAT ? s_expand_openai (request, response, stash, stripped)
                                         : s_expand_anthropic (request, response, stash, stripped);
}

//  --------------------------------------------------------------------------
//  Self-test

void ar_retrieve_tool_test (bool verbose)
{
    (void)verbose;
    char dir[] = "/tmp/ar_retrieve_tool_test.XXXXXX", db[256];
    assert (mkdtemp (dir));
    snprintf (db, sizeof db, "%s/anyray.db", dir);
    uint8_t key[32] = {7};
    ar_stash_t *stash = ar_stash_new (db, key, 60);
    assert (stash);
    const char *original = "[{\"role\":\"user\",\"content\":\"the old question\"}]";
    char id[33];
    assert (ar_stash_put (stash, original, strlen (original), id) == 0);

    //  Offered: added once, never to a stream, never against tool_choice none.
    json_t *request = json_pack ("{s:s, s:[{s:s, s:s}]}", "model", "m", "messages", "role", "user",
                                 "content", "q");
    assert (ar_retrieve_tool_offer (AR_SHAPE_OPENAI_CHAT, request));
    assert (!ar_retrieve_tool_offer (AR_SHAPE_OPENAI_CHAT, request));
    json_t *tools = json_object_get (request, "tools");
    assert (json_array_size (tools) == 1);
    assert (strcmp (json_string_value (json_object_get (
                        json_object_get (json_array_get (tools, 0), "function"), "name")),
                    AR_RETRIEVE_TOOL_NAME) == 0);
    json_t *streamed = json_pack ("{s:b, s:[]}", "stream", 1, "messages");
    assert (!ar_retrieve_tool_offer (AR_SHAPE_OPENAI_CHAT, streamed));
    json_decref (streamed);
    json_t *none = json_pack ("{s:s, s:[]}", "tool_choice", "none", "messages");
    assert (!ar_retrieve_tool_offer (AR_SHAPE_OPENAI_CHAT, none));
    json_decref (none);
    json_t *anthropic_none =
        json_pack ("{s:{s:s}, s:[]}", "tool_choice", "type", "none", "messages");
    assert (!ar_retrieve_tool_offer (AR_SHAPE_ANTHROPIC_MESSAGES, anthropic_none));
    json_decref (anthropic_none);

    //  OpenAI: the model calls it; the request grows by the turn and the stashed original.
    char arguments[64];
    snprintf (arguments, sizeof arguments, "{\"id\":\"%s\"}", id);
    json_t *response =
        json_pack ("{s:[{s:i, s:{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}, s:s}]}", "choices",
                   "index", 0, "message", "role", "assistant", "content", "tool_calls", "id",
                   "call_1", "type", "function", "function", "name", AR_RETRIEVE_TOOL_NAME,
                   "arguments", arguments, "finish_reason", "tool_calls");
    json_t *stripped = NULL;
    assert (ar_retrieve_tool_expand (AR_SHAPE_OPENAI_CHAT, request, response, stash, &stripped) ==
            AR_EXPAND_CONTINUE);
    json_t *messages = json_object_get (request, "messages");
    assert (json_array_size (messages) == 3);
    json_t *result = json_array_get (messages, 2);
    assert (strcmp (json_string_value (json_object_get (result, "role")), "tool") == 0);
    assert (strcmp (json_string_value (json_object_get (result, "tool_call_id")), "call_1") == 0);
    assert (strcmp (json_string_value (json_object_get (result, "content")), original) == 0);
    assert (json_is_array (json_object_get (json_array_get (messages, 1), "tool_calls")));

    //  Mixed with the caller's own tool: ours are removed, theirs go to the caller.
    json_t *calls = json_object_get (
        json_object_get (json_array_get (json_object_get (response, "choices"), 0), "message"),
        "tool_calls");
    json_array_append_new (calls, json_pack ("{s:s, s:s, s:{s:s, s:s}}", "id", "call_2", "type",
                                             "function", "function", "name", "get_weather",
                                             "arguments", "{}"));
    size_t before = json_array_size (messages);
    assert (ar_retrieve_tool_expand (AR_SHAPE_OPENAI_CHAT, request, response, stash, &stripped) ==
            AR_EXPAND_STRIPPED);
    assert (json_array_size (messages) == before);
    json_t *left = json_object_get (
        json_object_get (json_array_get (json_object_get (stripped, "choices"), 0), "message"),
        "tool_calls");
    assert (json_array_size (left) == 1);
    json_decref (stripped);
    //  Text answers and the caller's own calls alone are not ours.
    json_array_remove (calls, 0);
    assert (ar_retrieve_tool_expand (AR_SHAPE_OPENAI_CHAT, request, response, stash, &stripped) ==
            AR_EXPAND_NONE);
    json_decref (response);
    json_decref (request);

    //  Anthropic: tool_use -> an assistant turn and a user turn of tool_result; unknown ids say so.
    request = json_pack ("{s:s, s:i, s:[{s:s, s:s}]}", "model", "claude", "max_tokens", 100,
                         "messages", "role", "user", "content", "q");
    assert (ar_retrieve_tool_offer (AR_SHAPE_ANTHROPIC_MESSAGES, request));
    response =
        json_pack ("{s:s, s:[{s:s, s:s}, {s:s, s:s, s:s, s:{s:s}}, {s:s, s:s, s:s, s:{s:s}}], "
                   "s:s}",
                   "role", "assistant", "content", "type", "text", "text", "Let me look.", "type",
                   "tool_use", "id", "toolu_1", "name", AR_RETRIEVE_TOOL_NAME, "input", "id", id,
                   "type", "tool_use", "id", "toolu_2", "name", AR_RETRIEVE_TOOL_NAME, "input",
                   "id", "00000000000000000000000000000000", "stop_reason", "tool_use");
    assert (ar_retrieve_tool_expand (AR_SHAPE_ANTHROPIC_MESSAGES, request, response, stash,
                                     &stripped) == AR_EXPAND_CONTINUE);
    messages = json_object_get (request, "messages");
    assert (json_array_size (messages) == 3);
    json_t *results = json_object_get (json_array_get (messages, 2), "content");
    assert (json_array_size (results) == 2);
    assert (strcmp (json_string_value (json_object_get (json_array_get (results, 0), "content")),
                    original) == 0);
    assert (strstr (json_string_value (json_object_get (json_array_get (results, 1), "content")),
                    "expired"));
    json_decref (response);
    json_decref (request);

    ar_stash_destroy (&stash);
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
}
