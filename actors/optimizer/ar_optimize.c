/*  ar_optimize: the pipeline runner (see the header). */
#include "ar_optimize.h"
#include "ar_chat_view.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  The stash the strategies see: the caller's, plus a note of every id for the report.
typedef struct {
    const ar_stash_sink_t *inner;
    ar_optimize_report_t *report;
} s_stash_wrap_t;

static int s_stash_put (void *self, const char *content, size_t len, char id_out[33])
{
    s_stash_wrap_t *wrap = (s_stash_wrap_t *)self;
    ar_optimize_report_t *report = wrap->report;
    if (report->stash_id_count == AR_OPTIMIZE_STASH_IDS_MAX ||
        wrap->inner->put (wrap->inner->self, content, len, id_out) != 0)
        return -1;
    id_out[32] = 0;
    memcpy (report->stash_ids[report->stash_id_count++], id_out, 33);
    return 0;
}

//  Put the saved members back into the caller's root object, so its identity (and every
//  reference the caller holds to it) survives; member order is the saved order.
static int s_restore (json_t *request, json_t *saved)
{
    if (json_object_clear (request) != 0)
        return -1;
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach (saved, key, key_len, value)
    {
        if (json_object_setn (request, key, key_len, value) != 0)
            return -1;
    }
    return 0;
}

//  The undo copy: every object and array copied, every string, number and literal shared (a
//  reference). Strategies replace scalars, never edit one in place (ar_strategy.h), so this
//  restores as exactly as a deep copy, without copying the request's text: a 100 KB request is
//  a few hundred containers but 100 KB of strings.
static json_t *s_undo_copy (json_t *value)
{
    if (json_is_object (value)) {
        json_t *copy = json_object ();
        const char *key;
        size_t key_len;
        json_t *member;
        json_object_keylen_foreach (value, key, key_len, member)
        {
            if (!copy ||
                json_object_setn_new_nocheck (copy, key, key_len, s_undo_copy (member)) != 0) {
                json_decref (copy);
                return NULL;
            }
        }
        return copy;
    }
    if (json_is_array (value)) {
        json_t *copy = json_array ();
        size_t i;
        json_t *item;
        json_array_foreach (value, i, item)
        {
            if (!copy || json_array_append_new (copy, s_undo_copy (item)) != 0) {
                json_decref (copy);
                return NULL;
            }
        }
        return copy;
    }
    return json_incref (value);
}

int ar_optimize_run_steps (const ar_optimize_step_t *steps, size_t count, ar_strategy_ctx_t *ctx,
                           ar_optimize_report_t *report)
{
    memset (report, 0, sizeof *report);
    int64_t start = ar_mono_us ();
    if (!ctx || !json_is_object (ctx->request) || !ctx->tokenizer)
        return -1;
    json_t *root = ctx->request;
    int64_t tokens = ar_chat_view_count_tokens (ctx->shape, root, ctx->tokenizer);
    report->tokens_before = report->tokens_after = tokens;
    const ar_stash_sink_t *outer = ctx->stash;
    s_stash_wrap_t wrap = {outer, report};
    ar_stash_sink_t sink = {&wrap, s_stash_put};
    for (size_t i = 0; i < count && i < AR_OPTIMIZE_STEPS_MAX; i++) {
        ar_optimize_step_result_t *step = &report->steps[report->step_count++];
        step->kind = steps[i].kind;
        step->result.tokens_before = step->result.tokens_after = tokens;
        if (!steps[i].strategy || !steps[i].strategy->apply) {
            step->status = AR_OPTIMIZE_UNAVAILABLE;
            snprintf (step->result.note, sizeof step->result.note, "unavailable");
            continue;
        }
        if (ar_mono_now () > ctx->deadline) {
            step->status = AR_OPTIMIZE_OVERRAN;
            snprintf (step->result.note, sizeof step->result.note, "not started: past deadline");
            continue;
        }
        //  The undo copy (containers copied, scalars shared): it survives a strategy editing
        //  nested objects and arrays in place.
        json_t *saved = s_undo_copy (root);
        if (!saved) {
            step->status = AR_OPTIMIZE_FAILED;
            snprintf (step->result.note, sizeof step->result.note, "out of memory");
            continue;
        }
        size_t ids_before = report->stash_id_count;
        ctx->stash = outer ? &sink : NULL;
        ar_strategy_result_t result = {.applied = false};
        int64_t t0 = ar_mono_us ();
        int rc = steps[i].strategy->apply (ctx, steps[i].params, &result);
        result.micros = ar_mono_us () - t0;
        bool late = ar_mono_now () > ctx->deadline;
        ctx->stash = outer;
        bool swapped = ctx->request != root; // the contract is in place: a new root is a fault
        ctx->request = root;
        int64_t after = tokens;
        if (rc == 0 && !late && !swapped && result.applied)
            after = ar_chat_view_count_tokens (ctx->shape, root, ctx->tokenizer);
        result.note[sizeof result.note - 1] = 0;
        if (rc != 0 || late || swapped || after < 0 || after > tokens) {
            step->status = late && rc == 0 ? AR_OPTIMIZE_OVERRAN : AR_OPTIMIZE_FAILED;
            if (s_restore (root, saved) != 0) {
                //  Out of memory half-way: nothing better is left than to say so.
                json_decref (saved);
                report->stash_id_count = ids_before;
                report->micros = ar_mono_us () - start;
                return -1;
            }
            report->stash_id_count = ids_before;
            if (step->status == AR_OPTIMIZE_OVERRAN)
                snprintf (result.note, sizeof result.note, "past deadline: undone");
            else if (rc != 0 || swapped)
                snprintf (result.note, sizeof result.note, "error: undone");
            else
                snprintf (result.note, sizeof result.note, "grew %lld->%lld tokens: undone",
                          (long long)tokens, (long long)after);
            result.applied = false;
            after = tokens;
        } else {
            step->status = AR_OPTIMIZE_RAN;
            if (!result.applied) // stashed, then thought better of it: no marker names these
                report->stash_id_count = ids_before;
        }
        json_decref (saved);
        result.tokens_before = tokens;
        result.tokens_after = after;
        step->result = result;
        tokens = after;
        report->changed |= result.applied;
    }
    report->tokens_after = tokens;
    report->micros = ar_mono_us () - start;
    return 0;
}

int ar_optimize_run (const ar_pipeline_t *pipeline, ar_strategy_ctx_t *ctx,
                     ar_optimize_report_t *report)
{
    ar_optimize_step_t steps[AR_OPTIMIZE_STEPS_MAX];
    size_t count = 0;
    for (size_t i = 0; pipeline && i < ar_pipeline_size (pipeline) && count < AR_OPTIMIZE_STEPS_MAX;
         i++) {
        const ar_strategy_info_t *info = ar_pipeline_strategy (pipeline, i);
        if (!info)
            continue;
        steps[count++] = (ar_optimize_step_t){info->kind, info->available ? info->strategy : NULL,
                                              ar_pipeline_params (pipeline, i)};
    }
    return ar_optimize_run_steps (steps, count, ctx, report);
}

static const char *s_reason (ar_optimize_status_t status)
{
    return status == AR_OPTIMIZE_UNAVAILABLE ? "unavailable"
           : status == AR_OPTIMIZE_OVERRAN   ? "overran"
                                             : "failed";
}

json_t *ar_optimize_report_json (const ar_optimize_report_t *report)
{
    json_t *applied = json_array ();
    json_t *skipped = json_array ();
    json_t *ids = json_array ();
    json_t *reply = json_object ();
    if (!applied || !skipped || !ids || !reply)
        goto fail;
    for (size_t i = 0; i < report->step_count; i++) {
        const ar_optimize_step_result_t *step = &report->steps[i];
        json_t *row;
        if (step->status == AR_OPTIMIZE_RAN) {
            row = json_pack (
                "{s:s, s:b, s:I, s:I, s:f}", "kind", step->kind, "changed", step->result.applied,
                "tokensBefore", (json_int_t)step->result.tokens_before, "tokensAfter",
                (json_int_t)step->result.tokens_after, "ms", (double)step->result.micros / 1000.0);
            if (row && *step->result.note &&
                json_object_set_new (row, "note", json_string (step->result.note)) != 0)
                goto fail_row;
        } else
            row = json_pack ("{s:s, s:s}", "kind", step->kind, "reason", s_reason (step->status));
        if (!row ||
            json_array_append_new (step->status == AR_OPTIMIZE_RAN ? applied : skipped, row) != 0)
            goto fail;
        continue;
    fail_row:
        json_decref (row);
        goto fail;
    }
    for (size_t i = 0; i < report->stash_id_count; i++)
        if (json_array_append_new (ids, json_string (report->stash_ids[i])) != 0)
            goto fail;
    if (json_object_set_new (reply, "applied", applied) != 0 ||
        json_object_set_new (reply, "skipped", skipped) != 0 ||
        json_object_set_new (reply, "tokensBefore", json_integer (report->tokens_before)) != 0 ||
        json_object_set_new (reply, "tokensAfter", json_integer (report->tokens_after)) != 0 ||
        json_object_set_new (reply, "stashIds", ids) != 0) {
        json_decref (reply);
        return NULL;
    }
    return reply;
fail:
    json_decref (applied);
    json_decref (skipped);
    json_decref (ids);
    json_decref (reply);
    return NULL;
}

size_t ar_optimize_report_header (const ar_optimize_report_t *report, char *out, size_t size)
{
    size_t len = 0;
    if (size)
        out[0] = 0;
    for (size_t i = 0; i < report->step_count; i++) {
        const ar_optimize_step_result_t *step = &report->steps[i];
        if (step->status != AR_OPTIMIZE_RAN || !step->result.applied)
            continue;
        int n = snprintf (len < size ? out + len : NULL, len < size ? size - len : 0, "%s%s",
                          len ? "," : "", step->kind);
        len += n > 0 ? (size_t)n : 0;
    }
    return len;
}

void ar_optimize_counters_add (ar_optimize_counters_t *counters, const ar_optimize_report_t *report)
{
    for (size_t i = 0; counters && i < report->step_count; i++) {
        const ar_optimize_step_result_t *step = &report->steps[i];
        int k = ar_strategy_registry_index (step->kind);
        if (k < 0 || k >= AR_STRATEGY_MAX)
            continue;
        switch (step->status) {
        case AR_OPTIMIZE_RAN:
            counters->runs[k]++;
            counters->applied[k] += step->result.applied;
            break;
        case AR_OPTIMIZE_UNAVAILABLE:
            counters->unavailable[k]++;
            break;
        case AR_OPTIMIZE_FAILED:
            counters->runs[k]++;
            counters->failed[k]++;
            break;
        case AR_OPTIMIZE_OVERRAN:
            counters->overran[k]++;
            break;
        }
    }
}

//  --------------------------------------------------------------------------------------------
//  Self-test: generated conversations in both shapes through each strategy and the pipeline.

static uint64_t s_rand (uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ull;
}

static size_t s_below (uint64_t *rng, size_t n)
{
    return n ? (size_t)(s_rand (rng) % n) : 0;
}

static const char *s_vocab[] = {
    "the",     "file",     "read",     "search",    "test",   "commit", "email",     "weather",
    "report",  "function", "error",    "build",     "deploy", "query",  "table",     "user",
    "please",  "check",    "why",      "does",      "this",   "fail",   "fix",       "bug",
    "code",    "line",     "value",    "return",    "update", "list",   "folder",    "config",
    "server",  "request",  "token",    "budget",    "window", "tool",   "result",    "output",
    "and",     "with",     "from",     "into",      "about",  "😀",      "naïve",     "東京",
    "{\"k\":", "1234",     "x_y_z",    "CamelCase", "\n",     "  ",     "—",         "data",
    "image",   "resize",   "calendar", "event",     "stock",  "price",  "translate", "docs"};

#define S_VOCAB (sizeof s_vocab / sizeof s_vocab[0])

static const char *s_tool_names[] = {
    "read_file",     "write_file",     "list_dir",      "grep_search",    "run_tests",
    "git_commit",    "git_diff",       "web_fetch",     "send_email",     "get_weather",
    "createEvent",   "query_database", "http_request",  "image_resize",   "translate_text",
    "summarize_doc", "lint_code",      "format_code",   "deploy_service", "open_ticket",
    "search_docs",   "calc_math",      "convert_units", "fetch_stock"};

#define S_TOOLS (sizeof s_tool_names / sizeof s_tool_names[0])

//  words words of vocabulary; *bytes grows by the length.
static char *s_text (uint64_t *rng, size_t words, size_t *bytes)
{
    size_t cap = words * 12 + 2, len = 0;
    char *text = malloc (cap);
    assert (text);
    for (size_t w = 0; w < words; w++) {
        const char *word = s_vocab[s_below (rng, S_VOCAB)];
        size_t n = strlen (word);
        if (len + n + 2 > cap)
            break;
        if (w)
            text[len++] = ' ';
        memcpy (text + len, word, n);
        len += n;
    }
    text[len] = 0;
    *bytes += len;
    return text;
}

static json_t *s_text_json (uint64_t *rng, size_t words, size_t *bytes)
{
    char *text = s_text (rng, words, bytes);
    json_t *string = json_string (text);
    free (text);
    assert (string);
    return string;
}

//  String content or an array of text parts/blocks, either way.
static json_t *s_content (uint64_t *rng, size_t words, size_t *bytes)
{
    if (s_below (rng, 2))
        return s_text_json (rng, words, bytes);
    json_t *parts = json_array ();
    size_t n = 1 + s_below (rng, 2);
    for (size_t i = 0; i < n; i++)
        json_array_append_new (parts, json_pack ("{s:s, s:o}", "type", "text", "text",
                                                 s_text_json (rng, words / n + 1, bytes)));
    return parts;
}

static size_t s_words (uint64_t *rng, size_t target)
{
    size_t r = s_below (rng, 100);
    size_t words = r < 70 ? 5 + s_below (rng, 60) : 100 + s_below (rng, 1400);
    size_t cap = target / 6 + 5;
    return words < cap ? words : cap;
}

static json_t *s_tool_def (ar_shape_t shape, size_t index, uint64_t *rng)
{
    size_t bytes = 0;
    char *extra = s_text (rng, 3 + s_below (rng, 8), &bytes);
    char doc[256];
    snprintf (doc, sizeof doc, "Tool %s: %s", s_tool_names[index], extra);
    free (extra);
    json_t *schema =
        json_pack ("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "arg", "type", "string");
    if (shape == AR_SHAPE_OPENAI_CHAT)
        return json_pack ("{s:s, s:{s:s, s:s, s:o}}", "type", "function", "function", "name",
                          s_tool_names[index], "description", doc, "parameters", schema);
    return json_pack ("{s:s, s:s, s:o}", "name", s_tool_names[index], "description", doc,
                      "input_schema", schema);
}

//  One generated request of about target bytes of text: system prompts, plain turns, tool
//  rounds (1-3 parallel calls), both content forms, tools, tool_choice and sampling params.
static json_t *s_generate (ar_shape_t shape, uint64_t *rng, size_t target)
{
    bool oa = shape == AR_SHAPE_OPENAI_CHAT;
    json_t *request = json_pack ("{s:s}", "model", oa ? "gpt-4o" : "claude-sonnet-4");
    size_t order[S_TOOLS];
    for (size_t i = 0; i < S_TOOLS; i++)
        order[i] = i;
    for (size_t i = S_TOOLS - 1; i > 0; i--) {
        size_t j = s_below (rng, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    size_t ntools = s_below (rng, 4) == 0 ? 0 : s_below (rng, 21);
    if (ntools) {
        json_t *tools = json_array ();
        for (size_t i = 0; i < ntools; i++)
            json_array_append_new (tools, s_tool_def (shape, order[i], rng));
        json_object_set_new (request, "tools", tools);
    }
    json_t *messages = json_array ();
    size_t bytes = 0, calls = 0;
    size_t r = s_below (rng, 10);
    if (oa && r < 8)
        json_array_append_new (
            messages, json_pack ("{s:s, s:o}", "role", r < 2 ? "developer" : "system", "content",
                                 s_content (rng, 20 + s_below (rng, 60), &bytes)));
    if (!oa && r < 7)
        json_object_set_new (request, "system",
                             r < 4 ? s_text_json (rng, 20 + s_below (rng, 60), &bytes)
                                   : json_pack ("[{s:s, s:o}]", "type", "text", "text",
                                                s_text_json (rng, 30, &bytes)));
    json_array_append_new (messages, json_pack ("{s:s, s:o}", "role", "user", "content",
                                                s_content (rng, 10 + s_below (rng, 90), &bytes)));
    //  Tool rounds reference tools of the set (or invented ones when there are none).
#define S_TOOL_NAME (ntools ? s_tool_names[order[s_below (rng, ntools)]] : "undeclared_tool")
    for (bool last = false; !last;) {
        last = bytes >= target;
        bool tool_round = s_below (rng, 10) < 6;
        if (last && oa)
            tool_round = s_below (rng, 10) < 3; // some agent loops end on a tool result
        if (oa && tool_round) {
            size_t k = 1 + s_below (rng, 3);
            json_t *tcs = json_array ();
            char ids[3][16];
            for (size_t c = 0; c < k; c++) {
                snprintf (ids[c], sizeof ids[c], "call_%zu", calls++);
                json_array_append_new (tcs,
                                       json_pack ("{s:s, s:s, s:{s:s, s:s}}", "id", ids[c], "type",
                                                  "function", "function", "name", S_TOOL_NAME,
                                                  "arguments", "{\"arg\":\"x\"}"));
            }
            json_t *assistant = json_pack ("{s:s, s:o}", "role", "assistant", "tool_calls", tcs);
            json_object_set_new (assistant, "content",
                                 s_below (rng, 2) ? json_null () : s_text_json (rng, 8, &bytes));
            json_array_append_new (messages, assistant);
            for (size_t c = 0; c < k; c++)
                json_array_append_new (messages,
                                       json_pack ("{s:s, s:s, s:o}", "role", "tool", "tool_call_id",
                                                  ids[c], "content",
                                                  s_content (rng, s_words (rng, target), &bytes)));
            if (last)
                break;
            if (s_below (rng, 10) == 0)
                json_array_append_new (messages,
                                       json_pack ("{s:s, s:s}", "role", "system", "content",
                                                  "Mid-conversation reminder: stay on task."));
            continue;
        }
        if (oa) {
            if (!last)
                json_array_append_new (messages,
                                       json_pack ("{s:s, s:o}", "role", "assistant", "content",
                                                  s_content (rng, s_words (rng, target), &bytes)));
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:o}", "role", "user", "content",
                                              s_content (rng, 5 + s_below (rng, 60), &bytes)));
            continue;
        }
        //  Anthropic: an assistant turn and the user turn after it.
        if (tool_round) {
            size_t k = 1 + s_below (rng, 3);
            json_t *blocks = json_array (), *results = json_array ();
            if (s_below (rng, 2))
                json_array_append_new (blocks, json_pack ("{s:s, s:o}", "type", "text", "text",
                                                          s_text_json (rng, 8, &bytes)));
            for (size_t c = 0; c < k; c++) {
                char id[16];
                snprintf (id, sizeof id, "toolu_%zu", calls++);
                json_array_append_new (blocks, json_pack ("{s:s, s:s, s:s, s:{s:s}}", "type",
                                                          "tool_use", "id", id, "name", S_TOOL_NAME,
                                                          "input", "arg", "x"));
                json_array_append_new (
                    results, json_pack ("{s:s, s:s, s:o}", "type", "tool_result", "tool_use_id", id,
                                        "content", s_content (rng, s_words (rng, target), &bytes)));
            }
            if (s_below (rng, 4) == 0)
                json_array_append_new (results, json_pack ("{s:s, s:o}", "type", "text", "text",
                                                           s_text_json (rng, 12, &bytes)));
            json_array_append_new (
                messages, json_pack ("{s:s, s:o}", "role", "assistant", "content", blocks));
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:o}", "role", "user", "content", results));
        } else {
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:o}", "role", "assistant", "content",
                                              s_content (rng, s_words (rng, target), &bytes)));
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:o}", "role", "user", "content",
                                              s_content (rng, 5 + s_below (rng, 60), &bytes)));
        }
    }
#undef S_TOOL_NAME
    if (!oa && s_below (rng, 10) == 0) // a prefilled assistant turn
        json_array_append_new (
            messages, json_pack ("{s:s, s:s}", "role", "assistant", "content", "Sure, here"));
    json_object_set_new (request, "messages", messages);
    if (ntools && s_below (rng, 3) == 0) {
        const char *name = s_tool_names[order[s_below (rng, ntools)]];
        json_object_set_new (
            request, "tool_choice",
            oa ? json_pack ("{s:s, s:{s:s}}", "type", "function", "function", "name", name)
               : json_pack ("{s:s, s:s}", "type", "tool", "name", name));
    } else if (ntools && s_below (rng, 2))
        json_object_set_new (request, "tool_choice",
                             oa ? json_string ("auto") : json_pack ("{s:s}", "type", "auto"));
    if (!oa || s_below (rng, 2))
        json_object_set_new (request, "max_tokens", json_integer (100 + s_below (rng, 20000)));
    if (oa && s_below (rng, 4) == 0)
        json_object_set_new (request, "max_completion_tokens",
                             json_integer (100 + s_below (rng, 20000)));
    if (s_below (rng, 2))
        json_object_set_new (request, "temperature", json_real ((double)s_below (rng, 21) / 10));
    return request;
}

//  The test stash: ids are the 1-based index in hex.
typedef struct {
    char **content;
    size_t count, max;
    bool *used; // referenced by a marker (reassembly bookkeeping)
} s_stash_t;

static int s_stash_test_put (void *self, const char *content, size_t len, char id_out[33])
{
    s_stash_t *stash = (s_stash_t *)self;
    if (stash->count == stash->max) {
        size_t max = stash->max ? stash->max * 2 : 16;
        stash->content = realloc (stash->content, max * sizeof (char *));
        stash->used = realloc (stash->used, max * sizeof (bool));
        assert (stash->content && stash->used);
        stash->max = max;
    }
    stash->content[stash->count] = strndup (content, len);
    stash->used[stash->count] = false;
    char hex[48];
    snprintf (hex, sizeof hex, "%032zx", ++stash->count);
    memcpy (id_out, hex, 33);
    return 0;
}

static void s_stash_reset (s_stash_t *stash)
{
    for (size_t i = 0; i < stash->count; i++)
        free (stash->content[i]);
    stash->count = 0;
}

static char *s_dump (const json_t *json)
{
    char *text = json_dumps (json, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    assert (text);
    return text;
}

static bool s_same (const json_t *a, const json_t *b)
{
    char *x = s_dump (a), *y = s_dump (b);
    bool same = strcmp (x, y) == 0;
    free (x);
    free (y);
    return same;
}

//  The stash entry a marker names, or NULL when text is not exactly a marker.
static json_t *s_marker (s_stash_t *stash, const char *text, size_t len)
{
    size_t elided = 0, index = 0;
    char id[33] = "";
    if (sscanf (text, "[anyray: %zu earlier messages elided; retrieve with id %32[0-9a-f]]",
                &elided, id) != 2 ||
        sscanf (id, "%zx", &index) != 1 || index == 0 || index > stash->count)
        return NULL;
    char want[128];
    snprintf (want, sizeof want, "[anyray: %zu earlier messages elided; retrieve with id %s]",
              elided, id);
    if (strlen (want) != len || memcmp (want, text, len) != 0)
        return NULL;
    stash->used[index - 1] = true;
    json_t *run = json_loads (stash->content[index - 1], 0, NULL);
    assert (json_array_size (run) == elided);
    return run;
}

//  Whether the report lists the test stash's id for entry number (1-based): an entry a
//  strategy stashed but then did not use is not in the request, nor in the report.
static bool s_reported (const ar_optimize_report_t *report, size_t number)
{
    char id[48];
    snprintf (id, sizeof id, "%032zx", number);
    for (size_t i = 0; i < report->stash_id_count; i++)
        if (strcmp (report->stash_ids[i], id) == 0)
            return true;
    return false;
}

//  Undo every marker and re-insert pruned tools: must give back the original request, except
//  for the params param_tuning changes, which are copied back from the original.
static json_t *s_reassemble (ar_shape_t shape, const json_t *out, const json_t *original,
                             s_stash_t *stash, const ar_optimize_report_t *report)
{
    json_t *rebuilt = json_deep_copy (out);
    json_t *messages = json_array ();
    size_t i;
    json_t *message;
    json_array_foreach (ar_chat_view_messages (out), i, message)
    {
        json_t *content = json_object_get (message, "content");
        json_t *run = NULL;
        json_t *copy = json_deep_copy (message);
        if (shape == AR_SHAPE_OPENAI_CHAT && json_is_string (content) &&
            ar_chat_view_role (shape, message) == AR_CHAT_ROLE_USER)
            run = s_marker (stash, json_string_value (content), json_string_length (content));
        else if (shape == AR_SHAPE_ANTHROPIC_MESSAGES && json_is_string (content)) {
            const char *text = json_string_value (content);
            const char *at = strstr (text, "\n\n[anyray: ");
            if (at && (run = s_marker (stash, at + 2, strlen (at + 2))))
                json_object_set_new (copy, "content", json_stringn (text, (size_t)(at - text)));
        } else if (shape == AR_SHAPE_ANTHROPIC_MESSAGES && json_is_array (content)) {
            json_t *last = json_array_get (content, json_array_size (content) - 1);
            json_t *text = json_object_get (last, "text");
            if (json_is_string (text) &&
                (run = s_marker (stash, json_string_value (text), json_string_length (text))))
                json_array_remove (json_object_get (copy, "content"),
                                   json_array_size (content) - 1);
        }
        if (!(run && shape == AR_SHAPE_OPENAI_CHAT))
            json_array_append (messages, copy);
        json_decref (copy);
        if (run)
            json_array_extend (messages, run);
        json_decref (run);
    }
    json_object_set_new (rebuilt, "messages", messages);
    //  Tools: tool_pruning stashes the whole original tools array when it changes any.
    json_t *tools = json_object_get (original, "tools");
    json_t *kept = json_object_get (out, "tools");
    if ((tools || kept) && !json_equal (tools, kept)) { // json_equal (NULL, NULL) is false
        bool found = false;
        for (size_t s = 0; s < stash->count && !found; s++)
            if (!stash->used[s] && s_reported (report, s + 1)) {
                json_t *entry = json_loads (stash->content[s], 0, NULL);
                found = json_equal (entry, tools);
                json_decref (entry);
            }
        assert (found);
        json_object_set (rebuilt, "tools", tools);
    }
    const char *params[] = {"max_tokens", "max_completion_tokens", "temperature"};
    for (size_t p = 0; p < 3; p++) {
        json_t *value = json_object_get (original, params[p]);
        if (value)
            json_object_set (rebuilt, params[p], value);
        else
            json_object_del (rebuilt, params[p]);
    }
    return rebuilt;
}

static void s_called (const char *id, const char *name, void *arg)
{
    if (name)
        json_array_append_new ((json_t *)arg, json_string (name));
}

static bool s_has_tool (ar_shape_t shape, const json_t *request, const char *name)
{
    size_t i;
    json_t *tool;
    json_array_foreach (json_object_get (request, "tools"), i, tool)
    {
        const char *have = ar_chat_view_tool_name (shape, tool);
        if (have && strcmp (have, name) == 0)
            return true;
    }
    return false;
}

//  Every property the issue asks for, on one (input, output) pair.
static void s_check (ar_shape_t shape, const json_t *in, const json_t *out,
                     const ar_optimize_report_t *report, s_stash_t *stash, ar_tokenizer_t *tok)
{
    char why[160];
    if (ar_chat_view_validate (shape, out, why, sizeof why) != 0) {
        fprintf (stderr, "ar_optimize: invalid output: %s\n", why);
        assert (false);
    }
    int64_t before = ar_chat_view_count_tokens (shape, in, tok);
    int64_t after = ar_chat_view_count_tokens (shape, out, tok);
    assert (after <= before);
    assert (report->tokens_before == before && report->tokens_after == after);
    //  The system prompt, byte-identical.
    if (shape == AR_SHAPE_ANTHROPIC_MESSAGES)
        assert (s_same (
            json_object_get (in, "system") ? json_object_get (in, "system") : json_null (),
            json_object_get (out, "system") ? json_object_get (out, "system") : json_null ()));
    else {
        json_t *a = json_array (), *b = json_array ();
        size_t i;
        json_t *m;
        json_array_foreach (ar_chat_view_messages (in), i, m)
        {
            if (ar_chat_view_role (shape, m) == AR_CHAT_ROLE_SYSTEM)
                json_array_append (a, m);
        }
        json_array_foreach (ar_chat_view_messages (out), i, m)
        {
            if (ar_chat_view_role (shape, m) == AR_CHAT_ROLE_SYSTEM)
                json_array_append (b, m);
        }
        assert (s_same (a, b));
        json_decref (a);
        json_decref (b);
    }
    //  The latest turn (last user or tool-result message and all after it) byte-identical, and
    //  the last message a person wrote kept as it was.
    json_t *mi = ar_chat_view_messages (in), *mo = ar_chat_view_messages (out);
    size_t n = json_array_size (mi), no = json_array_size (mo), tail = 0, text = n;
    for (size_t i = 0; i < n; i++) {
        ar_chat_role_t role = ar_chat_view_role (shape, json_array_get (mi, i));
        if (role == AR_CHAT_ROLE_USER || role == AR_CHAT_ROLE_TOOL)
            tail = i;
        if (ar_chat_view_is_user_text (shape, json_array_get (mi, i)))
            text = i;
    }
    assert (no >= n - tail);
    for (size_t i = tail; i < n; i++)
        assert (s_same (json_array_get (mi, i), json_array_get (mo, no - (n - i))));
    bool found = false;
    for (size_t i = 0; text < n && i < no && !found; i++)
        found = s_same (json_array_get (mi, text), json_array_get (mo, i));
    assert (text == n || found);
    //  tool_choice's tool and every tool called in the conversation the provider will see are
    //  still defined (a call window_budget cropped is no longer in it; alone, tool_pruning sees
    //  the input's calls, which are the output's).
    json_t *names = json_array ();
    size_t i;
    json_t *m;
    json_array_foreach (mo, i, m) ar_chat_view_each_call (shape, m, s_called, names);
    const char *choice = ar_chat_view_tool_choice_name (shape, in);
    if (choice)
        json_array_append_new (names, json_string (choice));
    json_array_foreach (names, i, m)
    {
        const char *name = json_string_value (m);
        if (s_has_tool (shape, in, name) && !s_has_tool (shape, out, name)) {
            char *a = s_dump (in), *b = s_dump (out);
            fprintf (stderr, "lost %s\nIN %s\nOUT %s\n", name, a, b);
            assert (false);
        }
    }
    json_decref (names);
    //  Everything removed comes back from the stash exactly.
    json_t *rebuilt = s_reassemble (shape, out, in, stash, report);
    if (!s_same (rebuilt, in)) {
        fprintf (stderr, "ar_optimize: reassembly differs\n");
        assert (false);
    }
    json_decref (rebuilt);
}

//  Replace one random node (a member value or an array element, at any depth) with a value
//  of an arbitrary type.
static void s_mutate (json_t *root, uint64_t *rng)
{
    json_t *node = root, *parent = NULL;
    const char *key = NULL;
    size_t index = 0;
    for (int depth = 0; depth < 8; depth++) {
        size_t size = json_is_object (node)  ? json_object_size (node)
                      : json_is_array (node) ? json_array_size (node)
                                             : 0;
        if (!size || (parent && s_below (rng, 3) == 0))
            break;
        size_t pick = s_below (rng, size);
        parent = node;
        if (json_is_array (node)) {
            index = pick;
            key = NULL;
            node = json_array_get (node, pick);
        } else {
            void *iter = json_object_iter (node);
            while (pick-- && iter)
                iter = json_object_iter_next (node, iter);
            key = json_object_iter_key (iter);
            node = json_object_iter_value (iter);
        }
    }
    json_t *values[] = {
        json_null (),    json_true (),     json_integer (-7),
        json_real (2.5), json_string (""), json_string ("user"),
        json_array (),   json_object (),   json_pack ("[{s:s}]", "type", "tool_use")};
    size_t pick = s_below (rng, sizeof values / sizeof values[0]);
    if (parent && key)
        json_object_set (parent, key, values[pick]);
    else if (parent)
        json_array_set (parent, index, values[pick]);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        json_decref (values[i]);
}

static const ar_strategy_t *s_builtin (const char *kind)
{
    const ar_strategy_info_t *info = ar_strategy_registry_find (kind);
    assert (info && info->available && info->strategy);
    assert (strcmp (info->strategy->kind, kind) == 0);
    return info->strategy;
}

//  Deliberately bad strategies for the fail-open tests.
static int s_failing (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    char id[33];
    if (ctx->stash)
        ctx->stash->put (ctx->stash->self, "x", 1, id);
    json_object_set_new (ctx->request, "model", json_string ("tampered"));
    json_array_clear (ar_chat_view_messages (ctx->request));
    return -1;
}

static int s_overrunning (ar_strategy_ctx_t *ctx, const json_t *params,
                          ar_strategy_result_t *result)
{
    //  Edit a nested node in place, then miss the deadline.
    json_t *first = json_array_get (ar_chat_view_messages (ctx->request), 0);
    json_object_set_new (first, "content", json_string ("short"));
    json_object_set_new (ctx->request, "zzz", json_true ());
    while (ar_mono_now () <= ctx->deadline)
        ;
    result->applied = true;
    return 0;
}

static int s_growing (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    json_array_append_new (ar_chat_view_messages (ctx->request),
                           json_pack ("{s:s, s:s}", "role", "user", "content",
                                      "more words than there were before, many more"));
    result->applied = true;
    return 0;
}

static const ar_strategy_t s_fail_strategy = {"prompt_compression", s_failing};
static const ar_strategy_t s_overrun_strategy = {"code_skeleton", s_overrunning};
static const ar_strategy_t s_grow_strategy = {"context_compression", s_growing};

static int s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

//  Pipeline time over a generated agent conversation of about size bytes.
static void s_timing (ar_tokenizer_t *tok, size_t size, int rounds, bool verbose)
{
    uint64_t rng = 0x5eed0000 + size;
    json_t *request = NULL;
    //  An OpenAI agent conversation that ends on a tool result, with tools.
    for (int tries = 0; tries < 100; tries++) {
        request = s_generate (AR_SHAPE_OPENAI_CHAT, &rng, size);
        if (json_array_size (json_object_get (request, "tools")) > 8)
            break;
        json_decref (request);
        request = NULL;
    }
    assert (request);
    char *text = json_dumps (request, JSON_COMPACT);
    size_t bytes = strlen (text);
    free (text);
    json_t *wb = json_pack ("{s:i}", "maxTokens", 24000);
    json_t *tp = json_pack ("{s:i}", "keep", 8);
    json_t *pt = json_pack ("{s:i}", "maxTokensCap", 4096);
    ar_optimize_step_t steps[] = {{"window_budget", s_builtin ("window_budget"), wb},
                                  {"tool_pruning", s_builtin ("tool_pruning"), tp},
                                  {"param_tuning", s_builtin ("param_tuning"), pt}};
    s_stash_t stash = {NULL, 0, 0, NULL};
    ar_stash_sink_t sink = {&stash, s_stash_test_put};
    int64_t *times = calloc ((size_t)rounds, sizeof (int64_t));
    int64_t copy_us = 0, count_us = 0, cold_us = 0, tokens = 0;
    assert (times);
    for (int r = 0; r < rounds; r++) {
        int64_t t0 = ar_mono_us ();
        json_t *work = json_deep_copy (request);
        copy_us += ar_mono_us () - t0;
        ar_strategy_ctx_t ctx = {.shape = AR_SHAPE_OPENAI_CHAT,
                                 .request = work,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = ar_mono_now () + 60000};
        ar_optimize_report_t report;
        assert (ar_optimize_run_steps (steps, 3, &ctx, &report) == 0);
        times[r] = report.micros;
        t0 = ar_mono_us ();
        tokens = report.tokens_before;
        count_us += ar_chat_view_count_tokens (AR_SHAPE_OPENAI_CHAT, work, tok) >= 0
                        ? ar_mono_us () - t0
                        : 0;
        if (r == 0) {
            cold_us = report.micros; // this text was never counted before: nothing memoized
            s_check (AR_SHAPE_OPENAI_CHAT, request, work, &report, &stash, tok);
            if (verbose)
                for (size_t s = 0; s < report.step_count; s++)
                    printf ("    %-14s %8.3f ms  %s\n", report.steps[s].kind,
                            report.steps[s].result.micros / 1000.0, report.steps[s].result.note);
        }
        json_decref (work);
        s_stash_reset (&stash);
    }
    //  Rounds after the first see the text again, as an agent loop resends its history.
    int64_t *warm = rounds > 1 ? times + 1 : times;
    size_t nwarm = rounds > 1 ? (size_t)rounds - 1 : 1;
    qsort (warm, nwarm, sizeof (int64_t), s_cmp_i64);
    if (verbose)
        printf ("ar_optimize: pipeline on %zu KB (%lld tokens, %zu messages): cold %.2f ms; "
                "resent p50 %.2f ms, p99 %.2f ms, %.1f Mtokens/s; deep copy %.2f ms, memoized "
                "full count %.2f ms\n",
                bytes / 1024, (long long)tokens, json_array_size (ar_chat_view_messages (request)),
                cold_us / 1000.0, warm[nwarm / 2] / 1000.0, warm[(nwarm * 99) / 100] / 1000.0,
                (double)tokens / (double)(warm[nwarm / 2] ? warm[nwarm / 2] : 1),
                (double)copy_us / rounds / 1000.0, (double)count_us / rounds / 1000.0);
    free (times);
    free (stash.content);
    free (stash.used);
    json_decref (wb);
    json_decref (tp);
    json_decref (pt);
    json_decref (request);
}

void ar_optimize_test (bool verbose)
{
    ar_tokenizer_t *tok = ar_tokenizer_new ();
    assert (tok);
    s_stash_t stash = {NULL, 0, 0, NULL};
    ar_stash_sink_t sink = {&stash, s_stash_test_put};
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    const char *kinds[] = {"window_budget", "tool_pruning", "param_tuning"};
    size_t stats[4] = {0}; // applied: window_budget, tool_pruning, param_tuning; requests

    //  Property test: generated requests, each through every strategy alone and the pipeline.
    for (int n = 0; n < 400; n++) {
        ar_shape_t shape = n % 2 ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        size_t r = s_below (&rng, 100);
        size_t target = r < 70   ? 300 + s_below (&rng, 6000)
                        : r < 97 ? 6000 + s_below (&rng, 40000)
                                 : 40000 + s_below (&rng, 80000);
        json_t *in = s_generate (shape, &rng, target);
        char why[160];
        if (ar_chat_view_validate (shape, in, why, sizeof why) != 0) {
            fprintf (stderr, "ar_optimize: generator made an invalid request: %s\n", why);
            assert (false);
        }
        int64_t tokens = ar_chat_view_count_tokens (shape, in, tok);
        json_t *params[3];
        int64_t budget = tokens * (int64_t)(10 + s_below (&rng, 110)) / 100;
        params[0] = json_pack ("{s:I}", "maxTokens", (json_int_t)(budget < 256 ? 256 : budget));
        params[1] = json_pack ("{s:i}", "keep", 1 + (int)s_below (&rng, 10));
        params[2] = json_pack ("{s:i}", "maxTokensCap", 16 + (int)s_below (&rng, 20000));
        if (s_below (&rng, 2))
            json_object_set_new (params[2], "temperatureMax",
                                 json_real ((double)s_below (&rng, 21) / 10));
        for (int variant = 0; variant < 5; variant++) {
            ar_optimize_step_t steps[3];
            size_t count = 0;
            if (variant < 3)
                steps[count++] = (ar_optimize_step_t){kinds[variant], s_builtin (kinds[variant]),
                                                      params[variant]};
            else
                for (size_t k = 0; k < 3; k++)
                    steps[count++] =
                        (ar_optimize_step_t){kinds[k], s_builtin (kinds[k]), params[k]};
            json_t *out = json_deep_copy (in);
            //  The last variant runs the pipeline without a stash: nothing may be removed.
            ar_strategy_ctx_t ctx = {.shape = shape,
                                     .request = out,
                                     .tokenizer = tok,
                                     .stash = variant == 4 ? NULL : &sink,
                                     .deadline = ar_mono_now () + 60000};
            ar_optimize_report_t report;
            assert (ar_optimize_run_steps (steps, count, &ctx, &report) == 0);
            assert (ctx.request == out);
            for (size_t s = 0; s < report.step_count; s++) {
                assert (report.steps[s].status == AR_OPTIMIZE_RAN);
                if (variant < 3 && report.steps[s].result.applied)
                    stats[variant]++;
            }
            s_check (shape, in, out, &report, &stash, tok);
            if (variant == 4) {
                assert (json_equal (ar_chat_view_messages (in), ar_chat_view_messages (out)));
                json_t *tin = json_object_get (in, "tools"), *tout = json_object_get (out, "tools");
                assert (tin ? json_equal (tin, tout) : !tout);
                assert (report.stash_id_count == 0);
            } else
                assert (report.stash_id_count <= stash.count);
            json_decref (out);
            s_stash_reset (&stash);
        }
        for (int k = 0; k < 3; k++)
            json_decref (params[k]);
        json_decref (in);
        stats[3]++;
    }
    if (verbose)
        printf ("ar_optimize: %zu generated requests; applied: window_budget %zu, tool_pruning "
                "%zu, param_tuning %zu\n",
                stats[3], stats[0], stats[1], stats[2]);
    //  The generator must exercise every strategy, or the properties prove little.
    assert (stats[0] > 40 && stats[1] > 40 && stats[2] > 40);

    //  Any JSON shape: generated requests with random nodes replaced by values of the wrong
    //  type. Nothing may crash, fail or grow; what is cropped still comes back exactly.
    for (int n = 0; n < 300; n++) {
        ar_shape_t shape = n % 2 ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        json_t *in = s_generate (shape, &rng, 200 + s_below (&rng, 4000));
        for (int m = 1 + (int)s_below (&rng, 3); m > 0; m--)
            s_mutate (in, &rng);
        json_t *out = json_deep_copy (in);
        json_t *params[3] = {json_pack ("{s:i}", "maxTokens", 256), json_pack ("{s:i}", "keep", 1),
                             json_pack ("{s:i, s:f}", "maxTokensCap", 10, "temperatureMax", 0.1)};
        ar_optimize_step_t steps[3];
        for (size_t k = 0; k < 3; k++)
            steps[k] = (ar_optimize_step_t){kinds[k], s_builtin (kinds[k]), params[k]};
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = out,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = ar_mono_now () + 60000};
        ar_optimize_report_t report;
        int rc = ar_optimize_run_steps (steps, 3, &ctx, &report);
        assert (rc == (json_is_object (in) ? 0 : -1));
        for (size_t s = 0; s < report.step_count; s++)
            assert (report.steps[s].status == AR_OPTIMIZE_RAN);
        assert (report.tokens_after <= report.tokens_before);
        char why[160];
        if (ar_chat_view_validate (shape, in, why, sizeof why) == 0)
            s_check (shape, in, out, &report, &stash, tok);
        for (int k = 0; k < 3; k++)
            json_decref (params[k]);
        json_decref (out);
        json_decref (in);
        s_stash_reset (&stash);
    }

    //  Fail-open: an erroring, an overrunning and a growing strategy leave the request
    //  byte-identical, around two that work; each is counted.
    ar_optimize_counters_t counters;
    memset (&counters, 0, sizeof counters);
    json_t *in = s_generate (AR_SHAPE_OPENAI_CHAT, &rng, 3000);
    json_t *pt = json_pack ("{s:i}", "maxTokensCap", 10);
    json_t *tp = json_pack ("{s:i}", "keep", 1);
    json_t *empty = json_object ();
    json_object_set_new (in, "max_tokens", json_integer (5000));
    ar_optimize_step_t good[] = {{"param_tuning", s_builtin ("param_tuning"), pt},
                                 {"tool_pruning", s_builtin ("tool_pruning"), tp}};
    json_t *want = json_deep_copy (in);
    ar_strategy_ctx_t ctx = {.shape = AR_SHAPE_OPENAI_CHAT,
                             .request = want,
                             .tokenizer = tok,
                             .stash = &sink,
                             .deadline = ar_mono_now () + 60000};
    ar_optimize_report_t report;
    assert (ar_optimize_run_steps (good, 2, &ctx, &report) == 0 && report.changed);
    s_stash_reset (&stash);
    for (int bad = 0; bad < 3; bad++) {
        const ar_strategy_t *strategy = bad == 0   ? &s_fail_strategy
                                        : bad == 1 ? &s_overrun_strategy
                                                   : &s_grow_strategy;
        //  Alone: byte-identical.
        json_t *work = json_deep_copy (in);
        char *before = s_dump (work);
        ar_optimize_step_t alone = {strategy->kind, strategy, empty};
        ctx = (ar_strategy_ctx_t){.shape = AR_SHAPE_OPENAI_CHAT,
                                  .request = work,
                                  .tokenizer = tok,
                                  .stash = &sink,
                                  .deadline = ar_mono_now () + 30};
        assert (ar_optimize_run_steps (&alone, 1, &ctx, &report) == 0);
        char *after = s_dump (work);
        assert (strcmp (before, after) == 0);
        assert (!report.changed && report.stash_id_count == 0);
        assert (report.steps[0].status == (bad == 1 ? AR_OPTIMIZE_OVERRAN : AR_OPTIMIZE_FAILED));
        assert (report.tokens_before == report.tokens_after);
        ar_optimize_counters_add (&counters, &report);
        free (before);
        free (after);
        json_decref (work);
        s_stash_reset (&stash);
        //  Between two good ones: the same result as the good ones alone.
        work = json_deep_copy (in);
        ar_optimize_step_t mixed[] = {good[0], alone, good[1]};
        ctx = (ar_strategy_ctx_t){.shape = AR_SHAPE_OPENAI_CHAT,
                                  .request = work,
                                  .tokenizer = tok,
                                  .stash = &sink,
                                  .deadline = ar_mono_now () + (bad == 1 ? 30 : 60000)};
        assert (ar_optimize_run_steps (mixed, 3, &ctx, &report) == 0);
        if (bad == 1) {
            //  Past the deadline nothing more starts.
            assert (report.steps[2].status == AR_OPTIMIZE_OVERRAN);
            assert (strstr (report.steps[2].result.note, "not started"));
        } else
            assert (s_same (work, want));
        assert (report.steps[0].status == AR_OPTIMIZE_RAN && report.steps[0].result.applied);
        ar_optimize_counters_add (&counters, &report);
        json_decref (work);
        s_stash_reset (&stash);
    }
    assert (counters.failed[ar_strategy_registry_index ("prompt_compression")] == 2);
    assert (counters.failed[ar_strategy_registry_index ("context_compression")] == 2);
    assert (counters.overran[ar_strategy_registry_index ("code_skeleton")] == 2);
    assert (counters.overran[ar_strategy_registry_index ("tool_pruning")] == 1);
    assert (counters.applied[ar_strategy_registry_index ("param_tuning")] == 3);
    assert (counters.failed[ar_strategy_registry_index ("param_tuning")] == 0);

    //  The registry points exactly the available kinds at their implementation.
    for (size_t k = 0; k < ar_strategy_registry_count (); k++) {
        const ar_strategy_info_t *info = ar_strategy_registry_at (k);
        assert (info->available == (info->strategy != NULL));
        assert (!info->strategy || strcmp (info->strategy->kind, info->kind) == 0);
    }

    //  The configured pipeline: the baked-in default, unavailable kinds reported as such.
    ar_optimizer_config_t *config = ar_optimizer_config_default ();
    assert (config);
    ar_request_facts_t facts = {.endpoint = "/v1/chat/completions", .model = "gpt-4o"};
    ar_pipeline_t *pipeline = ar_optimizer_config_resolve (config, &facts);
    assert (pipeline);
    json_t *work = json_deep_copy (in);
    ctx = (ar_strategy_ctx_t){.shape = AR_SHAPE_OPENAI_CHAT,
                              .request = work,
                              .tokenizer = tok,
                              .stash = &sink,
                              .deadline = ar_mono_now () + 60000};
    assert (ar_optimize_run (pipeline, &ctx, &report) == 0);
    assert (report.step_count == ar_pipeline_size (pipeline));
    size_t unavailable = 0;
    for (size_t s = 0; s < report.step_count; s++) {
        const ar_strategy_info_t *info = ar_pipeline_strategy (pipeline, s);
        assert (strcmp (report.steps[s].kind, info->kind) == 0);
        assert ((report.steps[s].status == AR_OPTIMIZE_UNAVAILABLE) == !info->available);
        unavailable += !info->available;
    }
    //  (unavailable may be 0: every kind the default enables may be built; a kind that is not
    //  is skipped and reported as such)
    ar_optimize_step_t missing = {"semantic_cache", NULL, NULL};
    ar_optimize_report_t gap;
    assert (ar_optimize_run_steps (&missing, 1, &ctx, &gap) == 0);
    assert (gap.step_count == 1 && gap.steps[0].status == AR_OPTIMIZE_UNAVAILABLE && !gap.changed);
    json_t *gap_json = ar_optimize_report_json (&gap);
    assert (strcmp (json_string_value (json_object_get (
                        json_array_get (json_object_get (gap_json, "skipped"), 0), "reason")),
                    "unavailable") == 0);
    json_decref (gap_json);
    //  The default caps max_tokens at 4096: the header and the reply say so.
    char header[256];
    assert (ar_optimize_report_header (&report, header, sizeof header) > 0);
    assert (strstr (header, "param_tuning"));
    json_t *reply = ar_optimize_report_json (&report);
    assert (reply);
    json_t *applied = json_object_get (reply, "applied");
    json_t *skipped = json_object_get (reply, "skipped");
    assert (json_array_size (applied) + json_array_size (skipped) == report.step_count);
    assert (json_array_size (skipped) == unavailable);
    assert (!unavailable ||
            strcmp (json_string_value (json_object_get (json_array_get (skipped, 0), "reason")),
                    "unavailable") == 0);
    size_t i;
    json_t *row;
    json_array_foreach (applied, i, row)
    {
        assert (json_is_string (json_object_get (row, "kind")));
        assert (json_is_boolean (json_object_get (row, "changed")));
        assert (json_is_integer (json_object_get (row, "tokensBefore")));
        assert (json_is_integer (json_object_get (row, "tokensAfter")));
        assert (json_is_number (json_object_get (row, "ms")));
    }
    assert (json_integer_value (json_object_get (reply, "tokensBefore")) == report.tokens_before);
    assert (json_array_size (json_object_get (reply, "stashIds")) == report.stash_id_count);
    if (verbose) {
        char *text = json_dumps (reply, JSON_COMPACT);
        printf ("ar_optimize: reply %s\nar_optimize: x-anyray-optimizations: %s\n", text, header);
        free (text);
    }
    //  A tiny header buffer truncates like snprintf.
    char tiny[4];
    assert (ar_optimize_report_header (&report, tiny, sizeof tiny) == strlen (header));
    assert (strlen (tiny) == 3);
    json_decref (reply);
    json_decref (work);
    s_stash_reset (&stash);
    ar_pipeline_destroy (&pipeline);
    ar_optimizer_config_destroy (&config);

    //  Not an object: -1, nothing runs.
    json_t *array = json_array ();
    ctx.request = array;
    assert (ar_optimize_run_steps (good, 2, &ctx, &report) == -1);
    json_decref (array);

    //  Big requests: properties hold; timings in verbose mode.
    s_timing (tok, 100 * 1024, verbose ? 50 : 2, verbose);
    s_timing (tok, 1024 * 1024, verbose ? 10 : 1, verbose);

    json_decref (in);
    json_decref (want);
    json_decref (pt);
    json_decref (tp);
    json_decref (empty);
    s_stash_reset (&stash);
    free (stash.content);
    free (stash.used);
    ar_tokenizer_destroy (&tok);
}
