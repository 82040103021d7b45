/*  strategy_window_budget: fit the conversation into maxTokens by cropping the oldest middle.

    Messages are grouped into units that go or stay together, so a tool call never loses its
    result: in OpenAI shape an assistant message with tool_calls plus the tool messages after
    it, else one message; in Anthropic shape the first user message, then each assistant turn
    with the user turn after it (that user turn is where its tool_results live).

    Pinned (never cropped):
    - the system prompt: OpenAI system/developer messages wherever they are (Anthropic keeps it
      in "system", which is never touched);
    - the first user message and everything before it: in agent conversations it states the
      task, which every later turn depends on;
    - the latest turn: the last user or tool-result message (its unit) and everything after it;
    - the last user message a person wrote (the live question), when it lies further back (in
      Anthropic shape with the unit after it, so no marker is ever appended to it).
    The unpinned units are cropped oldest first until the request fits, or all of them when
    even the pinned parts exceed the budget. Each run of cropped messages goes to the stash as
    a JSON array and is replaced by one marker, "[anyray: N earlier messages elided; retrieve
    with id <id>]": in OpenAI shape a user message where the run was; in Anthropic shape the
    run always starts with an assistant turn and ends with a user turn, so the message before
    it is a user turn and the marker is appended to its content (a text block, or "\n\n" +
    marker to string content), which keeps the user/assistant alternation.

    Only requests that pass ar_chat_view_validate are cropped; without a stash nothing is. The
    new messages array is built aside and swapped in only when it counts fewer tokens.
*/
#include "ar_chat_view.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  What one marker costs, for planning: the text is ~12 tokens and a random 32-hex-digit id up
//  to ~26. The exact count decides whether the result is kept; a plan that underestimates
//  would leave the result a few tokens over budget.
#define S_MARKER_TOKENS 40

typedef struct {
    size_t start, end; // messages [start, end)
    int64_t tokens;
    bool pinned, cropped;
} s_unit_t;

//  Group messages into units; returns how many.
static size_t s_units (ar_shape_t shape, json_t *messages, s_unit_t *units)
{
    size_t n = json_array_size (messages), count = 0;
    for (size_t i = 0; i < n;) {
        size_t end = i + 1;
        json_t *message = json_array_get (messages, i);
        if (shape == AR_SHAPE_OPENAI_CHAT) {
            if (ar_chat_view_each_call (shape, message, NULL, NULL))
                while (end < n && ar_chat_view_role (shape, json_array_get (messages, end)) ==
                                      AR_CHAT_ROLE_TOOL)
                    end++;
        } else if (i > 0 && end < n)
            end++; // assistant + the user turn after it
        units[count++] = (s_unit_t){i, end, 0, false, false};
        i = end;
    }
    return count;
}

static size_t s_unit_of (const s_unit_t *units, size_t count, size_t message)
{
    for (size_t u = 0; u < count; u++)
        if (message < units[u].end)
            return u;
    return count - 1;
}

static void s_pin (ar_shape_t shape, json_t *messages, s_unit_t *units, size_t count)
{
    size_t n = json_array_size (messages);
    size_t first_user = n, last_turn = n, last_text = n;
    for (size_t i = 0; i < n; i++) {
        json_t *message = json_array_get (messages, i);
        ar_chat_role_t role = ar_chat_view_role (shape, message);
        if (role == AR_CHAT_ROLE_SYSTEM)
            units[s_unit_of (units, count, i)].pinned = true;
        if (role == AR_CHAT_ROLE_USER && first_user == n)
            first_user = i;
        if (role == AR_CHAT_ROLE_USER || role == AR_CHAT_ROLE_TOOL)
            last_turn = i;
        if (ar_chat_view_is_user_text (shape, message))
            last_text = i;
    }
    size_t head = first_user < n ? s_unit_of (units, count, first_user) : 0;
    size_t tail = last_turn < n ? s_unit_of (units, count, last_turn) : count - 1;
    for (size_t u = 0; u < count; u++)
        if (u <= head || u >= tail)
            units[u].pinned = true;
    if (last_text < n) {
        size_t u = s_unit_of (units, count, last_text);
        units[u].pinned = true;
        //  Anthropic markers are appended to the user turn before a run: keep the live
        //  question byte-identical by never starting a run right after it.
        if (shape == AR_SHAPE_ANTHROPIC_MESSAGES && u + 1 < count)
            units[u + 1].pinned = true;
    }
}

//  The marker for a run of cropped messages, appended to out per the shape's rules.
static int s_add_marker (ar_strategy_ctx_t *ctx, json_t *out, size_t elided, const char *id,
                         int64_t *delta)
{
    char marker[128];
    snprintf (marker, sizeof marker, "[anyray: %zu earlier messages elided; retrieve with id %s]",
              elided, id);
    ar_tokenizer_t *tok = ctx->tokenizer;
    if (ctx->shape == AR_SHAPE_OPENAI_CHAT) {
        json_t *message = json_pack ("{s:s, s:s}", "role", "user", "content", marker);
        *delta += ar_chat_view_message_tokens (ctx->shape, message, tok);
        return json_array_append_new (out, message);
    }
    //  Anthropic: the message before the run is a user turn; extend a copy of it.
    size_t last = json_array_size (out) - 1;
    json_t *prev = json_array_get (out, last);
    json_t *content = json_object_get (prev, "content");
    json_t *extended = NULL;
    if (json_is_string (content)) {
        size_t len = json_string_length (content);
        char *text = malloc (len + strlen (marker) + 3);
        if (!text)
            return -1;
        memcpy (text, json_string_value (content), len);
        strcpy (text + len, "\n\n");
        strcpy (text + len + 2, marker);
        extended = json_stringn (text, len + strlen (marker) + 2);
        free (text);
    } else if (json_is_array (content)) {
        extended = json_copy (content);
        if (extended && json_array_append_new (extended, json_pack ("{s:s, s:s}", "type", "text",
                                                                    "text", marker)) != 0) {
            json_decref (extended);
            extended = NULL;
        }
    }
    json_t *copy = extended ? json_copy (prev) : NULL;
    if (!copy || json_object_set_new (copy, "content", extended) != 0) {
        json_decref (copy);
        if (!copy)
            json_decref (extended);
        return -1;
    }
    *delta += ar_chat_view_message_tokens (ctx->shape, copy, tok) -
              ar_chat_view_message_tokens (ctx->shape, prev, tok);
    return json_array_set_new (out, last, copy);
}

static int s_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    ar_shape_t shape = ctx->shape;
    json_t *max_param = json_object_get (params, "maxTokens");
    if (!json_is_object (ctx->request) || !json_is_integer (max_param) ||
        json_integer_value (max_param) < 1 || !ctx->tokenizer)
        return -1;
    int64_t budget = json_integer_value (max_param);
    json_t *messages = ar_chat_view_messages (ctx->request);
    size_t n = json_array_size (messages);
    if (n < 3)
        return 0; // nothing in the middle
    s_unit_t *units = calloc (n, sizeof (s_unit_t));
    json_t *out = json_array ();
    int rc = -1;
    if (!units || !out)
        goto done;
    size_t count = s_units (shape, messages, units);
    int64_t total = ar_chat_view_other_tokens (shape, ctx->request, ctx->tokenizer);
    for (size_t u = 0; u < count; u++) {
        for (size_t i = units[u].start; i < units[u].end; i++)
            units[u].tokens +=
                ar_chat_view_message_tokens (shape, json_array_get (messages, i), ctx->tokenizer);
        total += units[u].tokens;
        if ((u & 63) == 0 && ar_mono_now () > ctx->deadline)
            goto done;
    }
    rc = 0;
    if (total <= budget)
        goto done;
    if (!ctx->stash) {
        snprintf (result->note, sizeof result->note, "no stash: nothing cropped");
        goto done;
    }
    char why[96];
    if (ar_chat_view_validate (shape, ctx->request, why, sizeof why) != 0) {
        snprintf (result->note, sizeof result->note, "left alone: %s", why);
        goto done;
    }
    s_pin (shape, messages, units, count);

    //  Plan: oldest unpinned units first, until the estimate fits.
    int64_t estimate = total;
    bool in_run = false;
    for (size_t u = 0; u < count && estimate > budget; u++) {
        if (units[u].pinned) {
            in_run = false;
            continue;
        }
        units[u].cropped = true;
        estimate -= units[u].tokens - (in_run ? 0 : S_MARKER_TOKENS);
        in_run = true;
    }

    //  Build the new array aside: kept messages by reference, each run stashed and marked.
    rc = -1;
    int64_t after = total;
    size_t cropped = 0, runs = 0;
    for (size_t u = 0; u < count;) {
        if (!units[u].cropped) {
            for (size_t i = units[u].start; i < units[u].end; i++)
                if (json_array_append (out, json_array_get (messages, i)) != 0)
                    goto done;
            u++;
            continue;
        }
        size_t v = u;
        json_t *run = json_array ();
        for (; v < count && units[v].cropped; v++) {
            after -= units[v].tokens;
            for (size_t i = units[v].start; i < units[v].end; i++)
                if (!run || json_array_append (run, json_array_get (messages, i)) != 0)
                    break;
        }
        size_t elided = json_array_size (run);
        char *text = run ? json_dumps (run, JSON_COMPACT | JSON_REAL_PRECISION (17)) : NULL;
        json_decref (run);
        char id[33] = "";
        int put = text ? ctx->stash->put (ctx->stash->self, text, strlen (text), id) : -1;
        free (text);
        if (put != 0 || s_add_marker (ctx, out, elided, id, &after) != 0)
            goto done;
        if (ar_mono_now () > ctx->deadline)
            goto done; // a slow stash: give up before the request is touched
        cropped += elided;
        runs++;
        u = v;
    }
    rc = 0;
    if (runs == 0 || after >= total)
        goto done; // nothing to crop, or markers would cost more than they save
    if (json_object_set (ctx->request, "messages", out) != 0) {
        rc = -1;
        goto done;
    }
    result->applied = true;
    snprintf (result->note, sizeof result->note,
              "cropped %zu messages in %zu run%s; %lld->%lld tokens", cropped, runs,
              runs == 1 ? "" : "s", (long long)total, (long long)after);
done:
    free (units);
    json_decref (out);
    return rc;
}

const ar_strategy_t ar_strategy_window_budget = {"window_budget", s_apply};

//  --------------------------------------------------------------------------------------------

typedef struct {
    char *content[8];
    size_t count;
} s_test_stash_t;

static int s_test_put (void *self, const char *content, size_t len, char id_out[33])
{
    s_test_stash_t *stash = (s_test_stash_t *)self;
    if (stash->count == 8)
        return -1;
    stash->content[stash->count] = strndup (content, len);
    char hex[48];
    snprintf (hex, sizeof hex, "%032zx", stash->count++);
    memcpy (id_out, hex, 33);
    return 0;
}

static json_t *s_conversation (ar_shape_t shape, size_t turns, size_t words)
{
    json_t *messages = json_array ();
    char *text = malloc (words * 6 + 1);
    assert (text && messages);
    for (size_t w = 0; w < words; w++)
        memcpy (text + w * 6, "lorem ", 6);
    text[words * 6] = 0;
    if (shape == AR_SHAPE_OPENAI_CHAT)
        json_array_append_new (
            messages, json_pack ("{s:s, s:s}", "role", "system", "content", "You are terse."));
    json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", "user", "content", "task"));
    for (size_t t = 0; t < turns; t++) {
        char id[32];
        snprintf (id, sizeof id, "call_%zu", t);
        if (shape == AR_SHAPE_OPENAI_CHAT) {
            json_array_append_new (
                messages, json_pack ("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role",
                                     "assistant", "content", "tool_calls", "id", id, "type",
                                     "function", "function", "name", "cat", "arguments", "{}"));
            json_array_append_new (messages, json_pack ("{s:s, s:s, s:s}", "role", "tool",
                                                        "tool_call_id", id, "content", text));
        } else {
            json_array_append_new (messages, json_pack ("{s:s, s:[{s:s, s:s, s:s, s:{}}]}", "role",
                                                        "assistant", "content", "type", "tool_use",
                                                        "id", id, "name", "cat", "input"));
            json_array_append_new (messages, json_pack ("{s:s, s:[{s:s, s:s, s:s}]}", "role",
                                                        "user", "content", "type", "tool_result",
                                                        "tool_use_id", id, "content", text));
        }
    }
    free (text);
    json_t *request =
        json_pack ("{s:s, s:i, s:o}", "model", "m", "max_tokens", 1000, "messages", messages);
    if (shape == AR_SHAPE_ANTHROPIC_MESSAGES)
        json_object_set_new (request, "system", json_string ("You are terse."));
    return request;
}

void strategy_window_budget_test (bool verbose)
{
    ar_tokenizer_t *tok = ar_tokenizer_new ();
    assert (tok);
    for (int s = 0; s < 2; s++) {
        ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        //  20 tool rounds of ~300 tokens each, budget 2000: the oldest rounds go.
        json_t *request = s_conversation (shape, 20, 300);
        json_t *original = json_deep_copy (request);
        int64_t before = ar_chat_view_count_tokens (shape, request, tok);
        assert (before > 6000);
        s_test_stash_t stash = {.count = 0};
        ar_stash_sink_t sink = {&stash, s_test_put};
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = INT64_MAX};
        json_t *params = json_pack ("{s:i}", "maxTokens", 2000);
        ar_strategy_result_t result = {.applied = false};
        assert (s_apply (&ctx, params, &result) == 0 && result.applied);
        int64_t after = ar_chat_view_count_tokens (shape, request, tok);
        assert (after <= 2000 && after < before);
        char why[128];
        assert (ar_chat_view_validate (shape, request, why, sizeof why) == 0);
        assert (stash.count == 1);
        if (verbose)
            printf ("window_budget %s: %s\n", s ? "anthropic" : "openai", result.note);
        //  The marker names the stashed run; the stash holds exactly the cropped messages.
        json_t *messages = ar_chat_view_messages (request);
        json_t *omessages = ar_chat_view_messages (original);
        json_t *cropped = json_loads (stash.content[0], 0, NULL);
        size_t k = json_array_size (cropped);
        assert (k % 2 == 0 && k > 0);
        assert (json_array_size (messages) + k == json_array_size (omessages) + (s ? 0 : 1));
        size_t first = s ? 3 : 2; // the first cropped message (Anthropic: after the unit
                                  // following the live question "task")
        for (size_t i = 0; i < k; i++)
            assert (
                json_equal (json_array_get (cropped, i), json_array_get (omessages, first + i)));
        json_decref (cropped);
        json_t *content = json_object_get (json_array_get (messages, 2), "content");
        const char *marker =
            s ? json_string_value (json_object_get (
                    json_array_get (content, json_array_size (content) - 1), "text"))
              : json_string_value (content);
        assert (marker && strstr (marker, "earlier messages elided; retrieve with id 0000"));
        //  The latest turn is kept as it was.
        assert (json_equal (json_array_get (messages, json_array_size (messages) - 1),
                            json_array_get (omessages, json_array_size (omessages) - 1)));
        //  Under budget already, or no stash: untouched.
        result = (ar_strategy_result_t){.applied = false};
        json_t *copy = json_deep_copy (request);
        assert (s_apply (&ctx, params, &result) == 0 && !result.applied);
        assert (json_equal (copy, request));
        json_decref (params);
        params = json_pack ("{s:i}", "maxTokens", 256);
        ctx.stash = NULL;
        assert (s_apply (&ctx, params, &result) == 0 && !result.applied);
        assert (json_equal (copy, request));
        //  Bad params: -1.
        json_decref (params);
        params = json_pack ("{s:s}", "maxTokens", "256");
        assert (s_apply (&ctx, params, &result) == -1);
        json_decref (params);
        json_decref (copy);
        json_decref (original);
        json_decref (request);
        for (size_t i = 0; i < stash.count; i++)
            free (stash.content[i]);
    }
    ar_tokenizer_destroy (&tok);
}
