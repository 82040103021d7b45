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

    Old reasoning (cropReasoning, on by default) runs first, whatever the budget: an agent's
    assistant turn older than the latest reasoningTurns assistant turns keeps its action and
    loses the prose around it. An action is a tool call (OpenAI tool_calls, Anthropic tool_use
    blocks, kept as they are) or, for agents that write their command in text (mini-swe-agent,
    SWE-agent), the fenced block the turn's text ends with when the message after it is that
    command's output (ar_chat_view_is_observation). Fenced code blocks inside the prose are
    kept too (an agent often drafts there the code it writes a few turns later). The prose is
    the model's own narration of what it was about to do; what it did (the action) and what
    came back (the observation, left to context_compression) stay. The whole original message
    is stashed and the kept text opens with "[anyray: reasoning elided; retrieve with id
    <id>]". Turns with no action (plain chat answers, a final report) are never touched, nor
    pinned ones, nor turns whose content holds anything but text and tool calls (thinking
    blocks, images, cache_control), nor prose shorter than a marker is worth. Why here: this is
    the same cut as the budget's (oldest middle context, pinned system prompt and latest turns),
    made finer, and cropping it first means fewer whole messages go when the budget still
    does not fit.

    Only requests that pass ar_chat_view_validate are cropped; without a stash nothing is. The
    new messages array is built aside and swapped in only when it counts fewer tokens.
*/
#include "ar_buf.h"
#include "ar_chat_view.h"
#include "ar_json_fast.h"
#include "ar_line_set.h"
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

//  --------------------------------------------------------------------------------------------
//  Old reasoning

//  A turn's prose goes only when that saves at least this many tokens with its marker: a
//  one-line thought ("Now run the tests.") costs less than the marker that would replace it.
#define S_MIN_REASONING_GAIN 32
#define S_PLACEHOLDER_ID     "00000000000000000000000000000000"
#define S_ID_LEN             32 // hex digits of a stash id

//  Append to buf; a failure sticks in *ok (the caller checks once).
static void s_add (ar_buf_t *buf, const char *bytes, size_t len, bool *ok)
{
    if (*ok && ar_buf_add (buf, bytes, len) != 0)
        *ok = false;
}

//  Whether every non-blank line of text[0, len) is one the request shows elsewhere: a block
//  the agent quoted from a tool output (or from its own command) rather than drafted.
static bool s_quoted (const ar_line_set_t *shown, const char *text, size_t len)
{
    size_t lines = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr (text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len, start;
        if (ar_line_set_trim (text + i, end - i, &start)) {
            if (!ar_line_set_has (shown, text + i, end - i))
                return false;
            lines++;
        }
        i = end + 1;
    }
    return lines > 0;
}

//  The fenced blocks of prose (text[0, len)), each with its fences, joined by a newline, into
//  out: code the agent drafted while thinking. An unclosed fence keeps the rest of the text.
//  With shown, a block whose every line the request shows elsewhere goes: a quote.
static void s_code_blocks (const char *text, size_t len, const ar_line_set_t *shown, ar_buf_t *out,
                           bool *ok)
{
    size_t open = 0;
    bool in_block = false;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr (text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        const char *line = text + i;
        size_t indent = 0;
        while (i + indent < end && (line[indent] == ' ' || line[indent] == '\t'))
            indent++;
        bool fence = end - i - indent >= 3 && memcmp (line + indent, "```", 3) == 0;
        if (fence && !in_block) {
            open = i;
            in_block = true;
        } else if (fence) {
            size_t stop = end;
            while (stop > open && (text[stop - 1] == '\n' || text[stop - 1] == '\r'))
                stop--;
            in_block = false;
            const char *body = memchr (text + open, '\n', i - open);
            if (shown && body && s_quoted (shown, body + 1, (size_t)(text + i - body - 1))) {
                i = end;
                continue;
            }
            if (out->len)
                s_add (out, "\n", 1, ok);
            s_add (out, text + open, stop - open, ok);
        }
        i = end;
    }
    if (in_block) {
        if (out->len)
            s_add (out, "\n", 1, ok);
        s_add (out, text + open, len - open, ok);
    }
}

//  The text that replaces a turn's prose: the marker, the prose's code blocks, then the action
//  (text[action, len) when action >= 0). text holds the turn's whole text.
static json_t *s_kept_text (const char *id, const char *text, size_t len, long action,
                            const ar_line_set_t *shown)
{
    ar_buf_t buf = {0}, code = {0};
    bool ok = true;
    char marker[96];
    snprintf (marker, sizeof marker, "[anyray: reasoning elided; retrieve with id %s]", id);
    s_add (&buf, marker, strlen (marker), &ok);
    s_code_blocks (text, action >= 0 ? (size_t)action : len, shown, &code, &ok);
    if (code.len) {
        s_add (&buf, "\n\n", 2, &ok);
        s_add (&buf, code.data, code.len, &ok);
    }
    free (code.data);
    if (action >= 0) {
        s_add (&buf, "\n\n", 2, &ok);
        s_add (&buf, text + action, len - (size_t)action, &ok);
    }
    json_t *value = ok ? json_stringn (buf.data, buf.len) : NULL;
    free (buf.data);
    return value;
}

//  A text block or part with nothing but its type and text: one this phase may rewrite.
static bool s_plain_text_block (const json_t *block)
{
    return json_object_size (block) == 2 && json_is_string (json_object_get (block, "text")) &&
           json_is_string (json_object_get (block, "type")) &&
           strcmp (json_string_value (json_object_get (block, "type")), "text") == 0;
}

//  messages[index], an assistant turn, with its prose replaced by the marker naming id, its
//  code blocks and its action (new reference); NULL when it is no agent action or holds
//  something this phase does not rewrite. *failed when memory runs out.
static json_t *s_reasoning_message (ar_shape_t shape, json_t *messages, size_t index,
                                    const char *id, const ar_line_set_t *shown, bool *failed)
{
    json_t *message = json_array_get (messages, index);
    json_t *content = json_object_get (message, "content");
    bool calls = ar_chat_view_each_call (shape, message, NULL, NULL) > 0;
    //  The text to crop: string content, or the text blocks of an array of text (and, in
    //  Anthropic shape, tool_use) blocks and nothing else.
    const char *text = NULL;
    size_t len = 0, texts = 0;
    ar_buf_t joined = {0};
    bool ok = true;
    if (json_is_string (content)) {
        text = json_string_value (content);
        len = json_string_length (content);
        texts = 1;
    } else if (json_is_array (content)) {
        size_t i;
        json_t *block;
        json_array_foreach (content, i, block)
        {
            if (s_plain_text_block (block)) {
                json_t *value = json_object_get (block, "text");
                if (texts++)
                    s_add (&joined, "\n\n", 2, &ok);
                s_add (&joined, json_string_value (value), json_string_length (value), &ok);
                continue;
            }
            const char *type = json_string_value (json_object_get (block, "type"));
            if (!(shape == AR_SHAPE_ANTHROPIC_MESSAGES && type && strcmp (type, "tool_use") == 0)) {
                free (joined.data);
                return NULL; // thinking, images, cache_control...: left as they are
            }
        }
        text = joined.data;
        len = joined.len;
    }
    long action = -1;
    if (ok && text && !calls && index + 1 < json_array_size (messages) &&
        ar_chat_view_is_observation (shape, messages, index + 1))
        action = ar_chat_view_action_fence (text, len);
    if (ok && (!text || !texts || (!calls && action < 0))) {
        free (joined.data);
        return NULL; // no prose, or no action: plain answers are never touched
    }
    json_t *kept = ok ? s_kept_text (id, text, len, action, shown) : NULL;
    free (joined.data);
    json_t *copy = kept ? json_copy (message) : NULL;
    json_t *new_content = NULL;
    if (copy && json_is_string (content))
        new_content = json_incref (kept);
    else if (copy && (new_content = json_array ()) != NULL) {
        //  The text blocks become one, where the first was; tool_use blocks stay in order.
        bool placed = false;
        size_t i;
        json_t *block;
        json_array_foreach (content, i, block)
        {
            json_t *item = s_plain_text_block (block) ? NULL : json_incref (block);
            if (!item && !placed) {
                item = json_pack ("{s:s, s:O}", "type", "text", "text", kept);
                placed = true;
            }
            if (item && json_array_append_new (new_content, item) != 0) {
                json_decref (new_content);
                new_content = NULL;
                break;
            }
        }
    }
    json_decref (kept);
    if (!new_content || json_object_set_new (copy, "content", new_content) != 0) {
        json_decref (copy);
        *failed = true;
        return NULL;
    }
    return copy;
}

//  Params, with the registry's defaults when absent. -1 when one is out of range.
typedef struct {
    int64_t budget;
    bool crop_reasoning, drop_quoted;
    int64_t reasoning_turns;
} s_params_t;

static int s_read_params (const json_t *params, s_params_t *p)
{
    json_t *max = json_object_get (params, "maxTokens");
    json_t *crop = json_object_get (params, "cropReasoning");
    json_t *turns = json_object_get (params, "reasoningTurns");
    json_t *quoted = json_object_get (params, "dropQuotedCode");
    if (!json_is_integer (max) || json_integer_value (max) < 1 ||
        (crop && !json_is_boolean (crop)) || (quoted && !json_is_boolean (quoted)) ||
        (turns && (!json_is_integer (turns) || json_integer_value (turns) < 1)))
        return -1;
    p->budget = json_integer_value (max);
    p->crop_reasoning = !crop || json_is_true (crop);
    p->drop_quoted = !quoted || json_is_true (quoted);
    p->reasoning_turns = turns ? json_integer_value (turns) : 2;
    return 0;
}

//  One assistant turn whose reasoning the plan cuts.
typedef struct {
    size_t index;  // in the messages
    json_t *plan;  // the turn as it would be, with a placeholder id
    int64_t saved; // tokens that saves
} s_cut_t;

//  Plan the old-reasoning cuts: assistant turns of unpinned units older than the latest
//  reasoningTurns assistant turns whose cut saves at least S_MIN_REASONING_GAIN. Unit tokens
//  are lowered by what each cut saves. Returns how many (cuts holds one per message at most);
//  *failed when memory or time runs out.
static size_t s_plan_cuts (ar_strategy_ctx_t *ctx, const s_params_t *p, json_t *messages,
                           const int64_t *tokens, s_unit_t *units, size_t count,
                           const ar_line_set_t *shown, s_cut_t *cuts, bool *failed)
{
    ar_shape_t shape = ctx->shape;
    size_t n = json_array_size (messages), assistants = 0, planned = 0;
    for (size_t i = 0; i < n; i++)
        assistants +=
            ar_chat_view_role (shape, json_array_get (messages, i)) == AR_CHAT_ROLE_ASSISTANT;
    size_t seen = 0;
    for (size_t u = 0; u < count && !*failed; u++) {
        for (size_t i = units[u].start; i < units[u].end && !*failed; i++) {
            if (ar_chat_view_role (shape, json_array_get (messages, i)) != AR_CHAT_ROLE_ASSISTANT)
                continue;
            if (assistants - seen++ <= (size_t)p->reasoning_turns || units[u].pinned)
                continue;
            json_t *plan =
                s_reasoning_message (shape, messages, i, S_PLACEHOLDER_ID, shown, failed);
            int64_t saved =
                plan ? tokens[i] - ar_chat_view_message_tokens (shape, plan, ctx->tokenizer) : 0;
            if (plan && saved >= S_MIN_REASONING_GAIN) {
                cuts[planned++] = (s_cut_t){i, plan, saved};
                units[u].tokens -= saved;
            } else
                json_decref (plan);
        }
        if (ar_mono_now () > ctx->deadline)
            *failed = true;
    }
    return planned;
}

static int s_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    ar_shape_t shape = ctx->shape;
    s_params_t p;
    if (!json_is_object (ctx->request) || !ctx->tokenizer || s_read_params (params, &p) != 0)
        return -1;
    ar_tokenizer_t *tok = ctx->tokenizer;
    int64_t budget = p.budget;
    json_t *messages = ar_chat_view_messages (ctx->request);
    size_t n = json_array_size (messages);
    if (n < 3)
        return 0; // nothing in the middle
    s_unit_t *units = calloc (n, sizeof (s_unit_t));
    int64_t *tokens = calloc (n, sizeof (int64_t));
    s_cut_t *cuts = calloc (n, sizeof (s_cut_t));
    json_t *kept = json_array (); // the messages with old reasoning cut
    json_t *out = json_array ();
    size_t planned = 0;
    ar_line_set_t *shown = NULL;
    int rc = -1;
    if (!units || !tokens || !cuts || !kept || !out || json_array_extend (kept, messages) != 0)
        goto done;
    size_t count = s_units (shape, messages, units);
    int64_t total = ar_chat_view_other_tokens (shape, ctx->request, tok);
    size_t assistants = 0;
    for (size_t u = 0; u < count; u++) {
        for (size_t i = units[u].start; i < units[u].end; i++) {
            json_t *message = json_array_get (messages, i);
            tokens[i] = ar_chat_view_message_tokens (shape, message, tok);
            units[u].tokens += tokens[i];
            assistants += ar_chat_view_role (shape, message) == AR_CHAT_ROLE_ASSISTANT;
        }
        total += units[u].tokens;
        if ((u & 63) == 0 && ar_mono_now () > ctx->deadline)
            goto done;
    }
    rc = 0;
    //  Old reasoning can only go from a conversation with more assistant turns than are kept.
    bool reasoning = p.crop_reasoning && assistants > (size_t)p.reasoning_turns;
    if (total <= budget && !reasoning)
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
    bool failed = false;
    rc = -1;
    //  The lines the request shows outside old prose (dropQuotedCode): every message's text but
    //  assistant turns', which count by their action only.
    if (reasoning && p.drop_quoted) {
        shown = ar_line_set_new ();
        for (size_t i = 0; shown && i < n && !failed; i++)
            failed = ar_chat_view_add_shown_lines (shape, json_array_get (messages, i), shown) != 0;
        if (!shown || failed)
            goto done;
    }
    if (reasoning)
        planned = s_plan_cuts (ctx, &p, messages, tokens, units, count, shown, cuts, &failed);
    if (failed)
        goto done;

    //  Plan the budget: oldest unpinned units first, until the estimate fits.
    int64_t estimate = total;
    for (size_t c = 0; c < planned; c++)
        estimate -= cuts[c].saved;
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

    //  Cut the reasoning of the turns that stay, for real: stash the original, name it in the
    //  marker. Turns of a cropped run go whole, as they were. A put that fails (the stash, or
    //  the request's cap on stash ids) ends the phase: the turns not cut yet keep their prose.
    int64_t after = total;
    size_t turns_cut = 0;
    for (size_t c = 0; c < planned; c++) {
        size_t i = cuts[c].index;
        if (units[s_unit_of (units, count, i)].cropped)
            continue;
        json_t *message = json_array_get (messages, i);
        size_t text_len = 0;
        char *text = ar_json_fast_dump (message, &text_len);
        char id[33] = "";
        int put = text ? ctx->stash->put (ctx->stash->self, text, text_len, id) : -1;
        free (text);
        if (put != 0)
            break;
        json_t *cut = s_reasoning_message (shape, messages, i, id, shown, &failed);
        if (!cut || json_array_set_new (kept, i, cut) != 0)
            goto done;
        //  What the plan counted, but for the id: the message itself is not counted again.
        after -= cuts[c].saved - ((int64_t)ar_tokenizer_count (tok, id, S_ID_LEN) -
                                  (int64_t)ar_tokenizer_count (tok, S_PLACEHOLDER_ID, S_ID_LEN));
        turns_cut++;
        if (ar_mono_now () > ctx->deadline)
            goto done; // a slow stash: give up before the request is touched
    }

    //  Build the new array aside: kept messages by reference, each run stashed and marked.
    int64_t with_runs = after;
    size_t cropped = 0, runs = 0;
    for (size_t u = 0; u < count;) {
        if (!units[u].cropped) {
            for (size_t i = units[u].start; i < units[u].end; i++)
                if (json_array_append (out, json_array_get (kept, i)) != 0)
                    goto done;
            u++;
            continue;
        }
        size_t v = u;
        json_t *run = json_array ();
        for (; v < count && units[v].cropped; v++)
            for (size_t i = units[v].start; i < units[v].end; i++) {
                with_runs -= tokens[i];
                if (!run || json_array_append (run, json_array_get (messages, i)) != 0)
                    break;
            }
        size_t elided = json_array_size (run);
        size_t text_len = 0;
        char *text = run ? ar_json_fast_dump (run, &text_len) : NULL;
        json_decref (run);
        char id[33] = "";
        int put = text ? ctx->stash->put (ctx->stash->self, text, text_len, id) : -1;
        free (text);
        if (put != 0 || s_add_marker (ctx, out, elided, id, &with_runs) != 0)
            goto done;
        if (ar_mono_now () > ctx->deadline)
            goto done; // a slow stash: give up before the request is touched
        cropped += elided;
        runs++;
        u = v;
    }
    rc = 0;
    json_t *result_messages = out;
    if (runs && with_runs >= after) {
        //  The runs' markers would cost more than they save: the reasoning cuts alone.
        result_messages = kept;
        runs = cropped = 0;
        with_runs = after;
    }
    if (with_runs >= total)
        goto done; // nothing to crop, or markers would cost more than they save
    if (json_object_set (ctx->request, "messages", result_messages) != 0) {
        rc = -1;
        goto done;
    }
    result->applied = true;
    int len = 0;
    if (turns_cut)
        len =
            snprintf (result->note, sizeof result->note, "reasoning of %zu turns cut; ", turns_cut);
    if (runs && len >= 0 && (size_t)len < sizeof result->note)
        len +=
            snprintf (result->note + len, sizeof result->note - (size_t)len,
                      "cropped %zu messages in %zu run%s; ", cropped, runs, runs == 1 ? "" : "s");
    if (len >= 0 && (size_t)len < sizeof result->note)
        snprintf (result->note + len, sizeof result->note - (size_t)len, "%lld->%lld tokens",
                  (long long)total, (long long)with_runs);
done:
    ar_line_set_destroy (&shown);
    for (size_t c = 0; c < planned; c++)
        json_decref (cuts[c].plan);
    free (units);
    free (tokens);
    free (cuts);
    json_decref (kept);
    json_decref (out);
    return rc;
}

const ar_strategy_t ar_strategy_window_budget = {"window_budget", s_apply};

//  --------------------------------------------------------------------------------------------

typedef struct {
    char *content[64];
    size_t count;
} s_test_stash_t;

static int s_test_put (void *self, const char *content, size_t len, char id_out[33])
{
    s_test_stash_t *stash = (s_test_stash_t *)self;
    if (stash->count == 64)
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

//  A mini-swe-agent trajectory (SWE-bench Verified astropy__astropy-14096 run, from the
//  development corpus; MIT), observations shortened: the task, then six action turns and
//  their output.
static const char *const s_swe_task =
    "<pr_description>\n"
    "Consider the following PR description:\n"
    "IndexError: tuple index out of range in identify_format (io.registry)\n"
    "\n"
    "Cron tests in HENDRICS using identify_format have started failing in `devdeps` w"
    "ith IndexError: tuple index out of range in `is_fits`.\n"
    "</pr_description>\n"
    "\n"
    "<instructions>\n"
    "# Task Instructions\n"
    "\n"
    "For each response:\n"
    "1. Include a THOUGHT section explaining your reasoning and what you're trying to"
    " accomplish\n"
    "2. Provide exactly ONE bash command to execute\n"
    "</instructions>";
static const char *const s_swe_turns[] = {
    "THOUGHT: I need to understand the structure of the repository first. Let me chec"
    "k what files are in the current directory to get a better understanding of the c"
    "odebase.\n"
    "\n"
    "```bash\n"
    "ls -la\n"
    "```",
    "<returncode>0</returncode>\n"
    "<output>\n"
    "total 720\n"
    "drwxrwxrwx  1 root root   4096 Oct 24  2024 .\n"
    "drwxr-xr-x  1 root root   4096 Nov 19 00:01 ..\n"
    "-rw-r--r--  1 root root      0 Oct 24  2024 .astropy-root\n"
    "drwxrwxrwx  2 root root   4096 Oct 24  2024 .circleci\n"
    "drwxrwxrwx  8 root root   4096 Oct 24  2024 .git\n"
    "-rw-r--r--  1 root root   1701 Oct 24  2024 .git-blame-ignore-revs\n"
    "-rw-r--r--  1 root root     74 Oct 24  2024 .gitattributes\n"
    "drwxrwxrwx  4 root root   4096 Oct 24  2024 .github\n"
    "-rw-r--r--  1 root root   1269 Oct 24  2024 .gitignore\n"
    "-rw-r--r--  1 root root  21212 Oct 24  2024 .mailmap\n"
    "-rw-r--r--  1 \n"
    "</output>",
    "THOUGHT: The issue is reported in `astropy.io.registry.identify_format` which ca"
    "lls `astropy.io.fits.connect.is_fits`. The error is `IndexError: tuple index out"
    " of range` in `is_fits`.\n"
    "\n"
    "The traceback indicates:\n"
    "```\n"
    "File ~/opt/anaconda3/envs/py310/lib/python3.10/site-packages/astropy/io/fits/con"
    "nect.py:72, in is_fits(origin, filepath, fileobj, *args, **kwargs)\n"
    "     68     if filepath.lower().endswith(\n"
    "     69         (\".fits\", \".fits.gz\", \".fit\", \".fit.gz\", \".fts\", \".ft"
    "s.gz\")\n"
    "     70     ):\n"
    "     71         return True\n"
    "---> 72 return isinstance(args[0], (HDUList, TableHDU, BinTableHDU, GroupsHDU))"
    "\n"
    "\n"
    "IndexError: tuple index out of range\n"
    "```\n"
    "\n"
    "This happens when `identify_format` is called with `args` being empty, but `is_f"
    "its` expects `args[0]` to exist if the filepath doesn't match the FITS extension"
    "s.\n"
    "\n"
    "I need to reproduce this first. I'll create a reproduction script based on the o"
    "ne provided in the PR description.\n"
    "\n"
    "```bash\n"
    "cat <<'EOF' > reproduce_issue.py\n"
    "from astropy.io.registry import identify_format\n"
    "from astropy.table import Table\n"
    "import sys\n"
    "\n"
    "try:\n"
    "    identify_format(\"write\", Table, \"bububu.ecsv\", None, [], {})\n"
    "    print(\"No error raised\")\n"
    "except IndexError as e:\n"
    "    print(f\"Caught expected error: {e}\")\n"
    "except Exception as e:\n"
    "    print(f\"Caught unexpected error: {e}\")\n"
    "    sys.exit(1)\n"
    "EOF\n"
    "```",
    "<returncode>0</returncode>\n"
    "<output>\n"
    "</output>",
    "THOUGHT: Now I will run the reproduction script to confirm the issue.\n"
    "\n"
    "```bash\n"
    "python reproduce_issue.py\n"
    "```",
    "<returncode>0</returncode>\n"
    "<output>\n"
    "Caught expected error: tuple index out of range\n"
    "</output>",
    "THOUGHT: The issue is reproduced. The error `IndexError: tuple index out of rang"
    "e` confirms that `args` is empty when `is_fits` tries to access `args[0]`.\n"
    "\n"
    "Now I need to examine `astropy/io/fits/connect.py` to see the `is_fits` function"
    ".\n"
    "\n"
    "```bash\n"
    "nl -ba astropy/io/fits/connect.py | sed -n '60,80p'\n"
    "```",
    "<returncode>0</returncode>\n"
    "<output>\n"
    "    60\t        Returns `True` if the given file is a FITS file.\n"
    "    61\t    \"\"\"\n"
    "    62\t    if fileobj is not None:\n"
    "    63\t        pos = fileobj.tell()\n"
    "    64\t        sig = fileobj.read(30)\n"
    "    65\t        fileobj.seek(pos)\n"
    "    66\t        return sig == FITS_SIGNATURE\n"
    "    67\t    elif filepath is not None:\n"
    "    68\t        if filepath.lower().endswith(\n"
    "    69\t            (\".fits\", \".fits.gz\", \".fit\", \".fit.gz\", \".fts\", "
    "\".fts.gz\")\n"
    "    70\t        ):\n"
    "    71\t            return True\n"
    "    72\t    return isinstance(args[0], (HDUList, TableHDU, BinTableHDU, GroupsHD"
    "U))\n"
    "    7\n"
    "</output>",
    "THOUGHT: The code at line 72 `return isinstance(args[0], (HDUList, TableHDU, Bin"
    "TableHDU, GroupsHDU))` assumes that `args` has at least one element.\n"
    "\n"
    "In the reproduction script:\n"
    "```python\n"
    "identify_format(\"write\", Table, \"bububu.ecsv\", None, [], {})\n"
    "```\n"
    "`args` is passed as `[]` (empty list) to `identify_format`.\n"
    "\n"
    "`identify_format` calls the identifier function. In `astropy/io/registry/base.py"
    "`:\n"
    "```python\n"
    "        if self._identifiers[(data_format, data_class)](\n"
    "            origin, path, fileobj, *args, **kwargs\n"
    "        ):\n"
    "```\n"
    "So `args` are unpacked. If `args` was `[]`, then `*args` is empty.\n"
    "\n"
    "The `is_fits` signature is:\n"
    "```python\n"
    "def is_fits(origin, filepath, fileobj, *args, **kwargs):\n"
    "```\n"
    "\n"
    "So `args` inside `is_fits` will be a tuple of the arguments passed after `fileob"
    "j`.\n"
    "\n"
    "If `identify_format` is called with `args=[]`, then `*args` unpacks nothing. So "
    "`args` inside `is_fits` is empty tuple `()`.\n"
    "\n"
    "The logic in `is_fits` seems to be:\n"
    "1. Check `fileobj` signature if `fileobj` is present.\n"
    "2. Check `filepath` extension if `filepath` is present.\n"
    "3. If neither matches (or `filepath` doesn't have fits extension), it tries to c"
    "heck if the first argument is an instance of FITS classes.\n"
    "\n"
    "This 3rd step seems to be intended for when `read` or `write` is called with a F"
    "ITS object directly, maybe?\n"
    "\n"
    "If `origin` is \"write\", `identify_format` is checking if the format is FITS.\n"
    "\n"
    "If I look at `astropy/io/registry/base.py`, `identify_format` is documented as:"
    "\n"
    "\n"
    "```python\n"
    "    def identify_format(self, origin, data_class_required, path, fileobj, args, "
    "kwargs):\n"
    "```\n"
    "\n"
    "Wait, the reproduction script calls:\n"
    "```python\n"
    "identify_format(\"write\", Table, \"bububu.ecsv\", None, [], {})\n"
    "```\n"
    "\n"
    "So `args` passed to `identify_format` is `[]`.\n"
    "\n"
    "In `astropy/io/registry/base.py`:\n"
    "```python\n"
    "        if self._identifiers[(data_format, data_class)](\n"
    "            origin, path, fileobj, *args, **kwargs\n"
    "        ):\n"
    "```\n"
    "\n"
    "So `is_fits` receives `(origin, path, fileobj)` and then whatever is in `args`. "
    "Since `args` is empty, `is_fits` receives just those 3 arguments plus empty `arg"
    "s` tuple.\n"
    "\n"
    "The issue is that `is_fits` blindly accesses `args[0]`.\n"
    "\n"
    "If `args` is empty, it should probably return `False` instead of crashing.\n"
    "\n"
    "Let's verify if `args` is indeed intended to hold the data object when writing."
    "\n"
    "\n"
    "When `Table.write` is called:\n"
    "```python\n"
    "t.write(\"filename\", format=\"fits\")\n"
    "```\n"
    "It calls `registry.write(t, \"filename\", format=\"fits\")`.\n"
    "\n"
    "But `identify_format` is used to guess the format when it is not specified.\n"
    "\n"
    "If I do `t.write(\"filename\")`, it calls `registry.write(t, \"filename\")`.\n"
    "`registry.write` calls `identify_format`.\n"
    "\n"
    "Let's check `astropy/io/registry/base.py` to see how `identify_format` is called"
    ".\n"
    "\n"
    "I'll look for `identify_format` definition and usage.\n"
    "\n"
    "```bash\n"
    "grep -r \"identify_format\" astropy/io/registry/\n"
    "```",
    "<returncode>0</returncode>\n"
    "<output>\n"
    "grep: astropy/io/registry/__pycache__/compat.cpython-39.pyc: binary file matches"
    "\n"
    "grep: astropy/io/registry/__pycache__/base.cpython-39.pyc: binary file matches\n"
    "astropy/io/registry/base.py:    def identify_format(self, origin, data_class_req"
    "uired, path, fileobj, args, kwargs):\n"
    "astropy/io/registry/base.py:        valid_formats = self.identify_format(mode, c"
    "ls, path, fileobj, args, kwargs)\n"
    "astropy/io/registry/tests/test_registries.py:    def test_identify_format(self, "
    "registry, fmtcls1):\n"
    "astropy/io/registry/tests/test_registries.py:        \"\"\"Test ``registry.id\n"
    "</output>",
    "THOUGHT: I want to see how `identify_format` is implemented in `astropy/io/regis"
    "try/base.py`.\n"
    "\n"
    "```bash\n"
    "nl -ba astropy/io/registry/base.py | sed -n '290,320p'\n"
    "```",
    "<returncode>0</returncode>\n"
    "<output>\n"
    "   290\t        data_class_required : object\n"
    "   291\t            The specified class for the result of `read` or the class th"
    "at is to be\n"
    "   292\t            written.\n"
    "   293\t        path : str or path-like or None\n"
    "   294\t            The path to the file or None.\n"
    "   295\t        fileobj : file-like or None.\n"
    "   296\t            An open file object to read the file's contents, or ``None``"
    " if the\n"
    "   297\t            file could not be opened.\n"
    "   298\t        args : sequence\n"
    "   299\t            Positional arguments for the `read` or `write` function. Not"
    "e that\n"
    "   300\t     \n"
    "</output>",
};

//  The trajectory as a request: OpenAI (system message) or Anthropic (system member).
static json_t *s_swe_request (ar_shape_t shape)
{
    const char *system = "You are a helpful assistant that can interact multiple times with a "
                         "computer shell to solve programming tasks.";
    json_t *messages = json_array ();
    if (shape == AR_SHAPE_OPENAI_CHAT)
        json_array_append_new (messages,
                               json_pack ("{s:s, s:s}", "role", "system", "content", system));
    json_array_append_new (messages,
                           json_pack ("{s:s, s:s}", "role", "user", "content", s_swe_task));
    for (size_t i = 0; i < sizeof s_swe_turns / sizeof s_swe_turns[0]; i++)
        json_array_append_new (messages,
                               json_pack ("{s:s, s:s}", "role", i % 2 ? "user" : "assistant",
                                          "content", s_swe_turns[i]));
    json_t *request =
        json_pack ("{s:s, s:i, s:o}", "model", "m", "max_tokens", 1000, "messages", messages);
    if (shape == AR_SHAPE_ANTHROPIC_MESSAGES)
        json_object_set_new (request, "system", json_string (system));
    return request;
}

//  Run window_budget with params; check what every run must keep: a valid request, fewer
//  tokens when applied, the latest turn as it was, every reasoning marker naming the stashed
//  original of its turn. Returns the number of turns cut.
static size_t s_test_cut (ar_tokenizer_t *tok, ar_shape_t shape, json_t *request,
                          const char *params_json, s_test_stash_t *stash, bool *applied)
{
    json_t *original = json_deep_copy (request);
    json_t *params = json_loads (params_json, 0, NULL);
    ar_stash_sink_t sink = {stash, s_test_put};
    ar_strategy_ctx_t ctx = {.shape = shape,
                             .request = request,
                             .tokenizer = tok,
                             .stash = &sink,
                             .deadline = INT64_MAX};
    ar_strategy_result_t result = {.applied = false};
    int64_t before = ar_chat_view_count_tokens (shape, request, tok);
    assert (params && s_apply (&ctx, params, &result) == 0);
    *applied = result.applied;
    assert (ar_chat_view_validate (shape, request, NULL, 0) == 0);
    json_t *messages = ar_chat_view_messages (request);
    json_t *omessages = ar_chat_view_messages (original);
    assert (json_equal (json_array_get (messages, json_array_size (messages) - 1),
                        json_array_get (omessages, json_array_size (omessages) - 1)));
    if (!result.applied)
        assert (json_equal (request, original));
    else
        assert (ar_chat_view_count_tokens (shape, request, tok) < before);
    size_t cuts = 0;
    for (size_t i = 0; i < json_array_size (messages); i++) {
        json_t *message = json_array_get (messages, i);
        json_t *content = json_object_get (message, "content");
        const char *text =
            json_is_string (content)
                ? json_string_value (content)
                : json_string_value (json_object_get (json_array_get (content, 0), "text"));
        const char *tag = "[anyray: reasoning elided; retrieve with id ";
        if (!text || strncmp (text, tag, strlen (tag)) != 0)
            continue;
        unsigned long slot = strtoul (text + strlen (tag), NULL, 16);
        assert (slot < stash->count);
        json_t *back = json_loads (stash->content[slot], 0, NULL);
        bool found = false; // the stash holds one of the input's messages, whole
        for (size_t j = 0; j < json_array_size (omessages) && !found; j++)
            found = json_equal (back, json_array_get (omessages, j));
        assert (found && ar_chat_view_role (shape, back) == AR_CHAT_ROLE_ASSISTANT);
        json_decref (back);
        cuts++;
    }
    json_decref (params);
    json_decref (original);
    return cuts;
}

static void s_test_reasoning (ar_tokenizer_t *tok, bool verbose)
{
    for (int s = 0; s < 2; s++) {
        ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        size_t head = s ? 1 : 2; // messages before the first turn
        s_test_stash_t stash = {.count = 0};
        bool applied;
        //  Within budget, the three latest turns kept: of the three older ones only the long
        //  one is cut (the two one-line thoughts cost less than a marker). It keeps the
        //  traceback it quoted and its command; the narration goes.
        json_t *request = s_swe_request (shape);
        assert (s_test_cut (tok, shape, request, "{\"maxTokens\":100000,\"reasoningTurns\":3}",
                            &stash, &applied) == 1 &&
                applied);
        json_t *messages = ar_chat_view_messages (request);
        for (size_t t = 0; t < 12; t += 2) {
            const char *text = json_string_value (
                json_object_get (json_array_get (messages, head + t), "content"));
            if (t != 2) {
                assert (strcmp (text, s_swe_turns[t]) == 0);
                continue;
            }
            assert (strncmp (text, "[anyray: reasoning elided; retrieve with id ", 44) == 0);
            assert (strstr (text, "```\nFile ~/opt/anaconda3/envs/py310/lib/python3.10/"));
            assert (strstr (text, "```bash\ncat <<'EOF' > reproduce_issue.py\n"));
            assert (!strstr (text, "I need to reproduce this first"));
            if (verbose && s == 0)
                printf ("\n  window_budget reasoning cut: %zu -> %zu bytes",
                        strlen (s_swe_turns[t]), strlen (text));
        }
        json_decref (request);
        //  One turn kept whole: the long analysis four turns back is cut too, its drafted
        //  code blocks and its grep kept.
        request = s_swe_request (shape);
        assert (s_test_cut (tok, shape, request, "{\"maxTokens\":100000,\"reasoningTurns\":1}",
                            &stash, &applied) >= 2);
        messages = ar_chat_view_messages (request);
        const char *text =
            json_string_value (json_object_get (json_array_get (messages, head + 8), "content"));
        assert (strncmp (text, "[anyray: reasoning elided", 25) == 0);
        assert (
            strstr (text, "```python\ndef is_fits(origin, filepath, fileobj, *args, **kwargs):"));
        assert (strstr (text, "```bash\ngrep -r \"identify_format\" astropy/io/registry/\n```"));
        assert (!strstr (text, "So `args` are unpacked."));
        assert (strcmp (json_string_value (
                            json_object_get (json_array_get (messages, head + 10), "content")),
                        s_swe_turns[10]) == 0);
        json_decref (request);
        //  cropReasoning off, within budget: untouched.
        request = s_swe_request (shape);
        assert (s_test_cut (tok, shape, request,
                            "{\"maxTokens\":100000,\"cropReasoning\":false,\"reasoningTurns\":1}",
                            &stash, &applied) == 0 &&
                !applied);
        json_decref (request);
        //  Plain chat: answers with no action (the same prose, commands dropped) are never cut.
        request = s_swe_request (shape);
        messages = ar_chat_view_messages (request);
        for (size_t t = 0; t < 12; t += 2) {
            const char *fence = strstr (s_swe_turns[t], "\n\n```bash");
            json_object_set_new (json_array_get (messages, head + t), "content",
                                 json_stringn (s_swe_turns[t], (size_t)(fence - s_swe_turns[t])));
        }
        assert (s_test_cut (tok, shape, request, "{\"maxTokens\":100000,\"reasoningTurns\":1}",
                            &stash, &applied) == 0 &&
                !applied);
        json_decref (request);
        //  Tool calls: the prose beside them goes, the calls stay as they are. An Anthropic
        //  turn holding a thinking block is left alone.
        request = s_swe_request (shape);
        messages = ar_chat_view_messages (request);
        for (size_t t = 0; t < 12; t += 2) {
            char id[16];
            snprintf (id, sizeof id, "call_%zu", t);
            const char *fence = strstr (s_swe_turns[t], "```bash\n") + 8;
            char *command = strndup (fence, strlen (fence) - 4);
            json_t *prose = json_stringn (s_swe_turns[t], (size_t)(fence - 8 - s_swe_turns[t]));
            json_t *args = json_pack ("{s:s}", "command", command);
            free (command);
            json_t *turn, *answer;
            if (s == 0) {
                char *arguments = json_dumps (args, JSON_COMPACT);
                turn = json_pack ("{s:s, s:o, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role", "assistant",
                                  "content", prose, "tool_calls", "id", id, "type", "function",
                                  "function", "name", "bash", "arguments", arguments);
                free (arguments);
                answer = json_pack (
                    "{s:s, s:s, s:O}", "role", "tool", "tool_call_id", id, "content",
                    json_object_get (json_array_get (messages, head + t + 1), "content"));
            } else {
                turn = json_pack ("{s:s, s:[{s:s, s:o}, {s:s, s:s, s:s, s:O}]}", "role",
                                  "assistant", "content", "type", "text", "text", prose, "type",
                                  "tool_use", "id", id, "name", "bash", "input", args);
                if (t == 8) // extended thinking: not ours to rewrite
                    json_array_insert_new (json_object_get (turn, "content"), 0,
                                           json_pack ("{s:s, s:s, s:s}", "type", "thinking",
                                                      "thinking", "Look at base.py.", "signature",
                                                      "c2lnbmF0dXJl"));
                answer = json_pack (
                    "{s:s, s:[{s:s, s:s, s:O}]}", "role", "user", "content", "type", "tool_result",
                    "tool_use_id", id, "content",
                    json_object_get (json_array_get (messages, head + t + 1), "content"));
            }
            json_decref (args);
            json_array_set_new (messages, head + t, turn);
            json_array_set_new (messages, head + t + 1, answer);
        }
        json_t *before = json_deep_copy (messages);
        size_t cuts = s_test_cut (tok, shape, request,
                                  "{\"maxTokens\":100000,\"reasoningTurns\":1}", &stash, &applied);
        assert (cuts >= 2 && applied);
        messages = ar_chat_view_messages (request);
        for (size_t t = 0; t < 12; t += 2) {
            json_t *turn = json_array_get (messages, head + t);
            json_t *was = json_array_get (before, head + t);
            if (s == 0)
                assert (json_equal (json_object_get (turn, "tool_calls"),
                                    json_object_get (was, "tool_calls")));
            else
                assert (json_equal (
                    json_array_get (json_object_get (turn, "content"),
                                    json_array_size (json_object_get (turn, "content")) - 1),
                    json_array_get (json_object_get (was, "content"),
                                    json_array_size (json_object_get (was, "content")) - 1)));
            if (s == 1 && t == 8)
                assert (json_equal (turn, was));
        }
        json_decref (before);
        json_decref (request);
        //  Over budget: the oldest turns go whole (their originals in the run), the reasoning
        //  of those that stay is cut, the result fits.
        request = s_swe_request (shape);
        int64_t full = ar_chat_view_count_tokens (shape, request, tok);
        char params[96];
        snprintf (params, sizeof params, "{\"maxTokens\":%lld,\"reasoningTurns\":1}",
                  (long long)(full * 2 / 3));
        s_test_cut (tok, shape, request, params, &stash, &applied);
        assert (applied && ar_chat_view_count_tokens (shape, request, tok) <= full * 2 / 3);
        json_decref (request);
        for (size_t i = 0; i < stash.count; i++)
            free (stash.content[i]);
    }
}

//  dropQuotedCode: an old turn that quoted lines of a tool output (without their numbers) and
//  drafted new code loses the quote with its prose; the drafted code and the action stay.
static void s_test_quoted (ar_tokenizer_t *tok, bool verbose)
{
    const char *read = "<returncode>0</returncode>\n<output>\n"
                       "   388\t    def prepare_content_length(self, body):\n"
                       "   389\t        self.headers['Content-Length'] = '0'\n"
                       "   390\t        if hasattr(body, 'seek') and hasattr(body, 'tell'):\n"
                       "   391\t            body.seek(0, 2)\n"
                       "   392\t            self.headers['Content-Length'] = str(body.tell())\n"
                       "</output>";
    const char *turn =
        "THOUGHT: The method always sets the header to '0' first, even for GET requests without "
        "a body, which is exactly what the PR complains about. Here it is again:\n\n"
        "```python\n"
        "def prepare_content_length(self, body):\n"
        "    self.headers['Content-Length'] = '0'\n"
        "    if hasattr(body, 'seek') and hasattr(body, 'tell'):\n"
        "```\n\n"
        "I will only set it when the method is not GET or HEAD, like this:\n\n"
        "```python\n"
        "elif self.method not in ('GET', 'HEAD'):\n"
        "    self.headers['Content-Length'] = '0'\n"
        "```\n\n"
        "Let me write the patch script first and check it compiles before applying it.\n\n"
        "```bash\n"
        "python3 apply_fix.py\n"
        "```";
    const char *texts[] = {
        "THOUGHT: Read the method.\n\n```bash\nnl -ba requests/models.py | sed -n '388,392p'\n```",
        read,
        turn,
        "<returncode>0</returncode>\n<output>\n</output>",
        "THOUGHT: Check it.\n\n```bash\npython3 reproduce.py\n```",
        "<returncode>0</returncode>\n<output>\nContent-Length header not present\n</output>"};
    for (int s = 0; s < 2; s++)
        for (int off = 0; off < 2; off++) {
            ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
            json_t *messages = json_array ();
            if (shape == AR_SHAPE_OPENAI_CHAT)
                json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", "system",
                                                            "content", "Use one bash block."));
            json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", "user", "content",
                                                        "<pr_description>GET sends "
                                                        "Content-Length</pr_description>"));
            for (size_t i = 0; i < 6; i++)
                json_array_append_new (messages, json_pack ("{s:s, s:s}", "role",
                                                            i % 2 ? "user" : "assistant", "content",
                                                            texts[i]));
            json_t *request = json_pack ("{s:s, s:i, s:o}", "model", "m", "max_tokens", 100,
                                         "messages", messages);
            if (shape == AR_SHAPE_ANTHROPIC_MESSAGES)
                json_object_set_new (request, "system", json_string ("Use one bash block."));
            s_test_stash_t stash = {.count = 0};
            bool applied;
            assert (s_test_cut (tok, shape, request,
                                off ? "{\"maxTokens\":100000,\"reasoningTurns\":1,"
                                      "\"dropQuotedCode\":false}"
                                    : "{\"maxTokens\":100000,\"reasoningTurns\":1}",
                                &stash, &applied) >= 1 &&
                    applied);
            json_t *cut = json_array_get (ar_chat_view_messages (request), s ? 3 : 4);
            const char *text = json_string_value (json_object_get (cut, "content"));
            assert (strncmp (text, "[anyray: reasoning elided; retrieve with id ", 44) == 0);
            assert (strstr (text, "```python\nelif self.method not in ('GET', 'HEAD'):\n"));
            assert (strstr (text, "```bash\npython3 apply_fix.py\n```"));
            assert (!strstr (text, "exactly what the PR complains about"));
            //  The quote goes only with the step on.
            assert (!strstr (text, "def prepare_content_length(self, body):") == !off);
            if (verbose && s == 0 && !off)
                printf ("\n  window_budget quoted code: %zu -> %zu bytes", strlen (turn),
                        strlen (text));
            json_decref (request);
            for (size_t i = 0; i < stash.count; i++)
                free (stash.content[i]);
        }
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
    s_test_reasoning (tok, verbose);
    s_test_quoted (tok, verbose);
    ar_tokenizer_destroy (&tok);
}
