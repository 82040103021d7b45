/*  ar_strategy_registry: the table of strategy kinds (see the header). */
#include "ar_strategy_registry.h"
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define AR_TOKENS_MAX 10000000 // ten million tokens: beyond any context window

static const char *const s_compression_levels[] = {"light", "balanced", "aggressive", NULL};

static const ar_param_spec_t s_semantic_cache_params[] = {
    {"threshold", AR_PARAM_NUMBER, 0, 1, NULL, "0.92",
     "Minimum cosine similarity between request embeddings for a cache hit."},
    {"ttlSeconds", AR_PARAM_INTEGER, 1, 2592000, NULL, "86400",
     "How long a cached response may be served, in seconds."},
};
static const ar_param_spec_t s_vision_ocr_params[] = {
    {"minConfidence", AR_PARAM_NUMBER, 0, 100, NULL, "80",
     "Mean OCR word confidence (0-100) below which the image is kept as it is."},
    {"maxImages", AR_PARAM_INTEGER, 1, 64, NULL, "4", "Images per request that are tried."},
};
static const ar_param_spec_t s_prompt_compression_params[] = {
    {"level", AR_PARAM_ENUM, 0, 0, s_compression_levels, "\"balanced\"",
     "How hard the prompt and system message are shortened."},
    {"minTokens", AR_PARAM_INTEGER, 0, AR_TOKENS_MAX, NULL, "512",
     "Prompts shorter than this many tokens are left alone."},
};
static const ar_param_spec_t s_context_compression_params[] = {
    {"minTokens", AR_PARAM_INTEGER, 0, AR_TOKENS_MAX, NULL, "256",
     "Tool outputs shorter than this many tokens are left alone."},
    {"maxBlobTokens", AR_PARAM_INTEGER, 64, AR_TOKENS_MAX, NULL, "4000",
     "Cap on one oversized blob after minifying; the rest is elided and stashed."},
    {"minifyJson", AR_PARAM_BOOLEAN, 0, 0, NULL, "true",
     "Drop the whitespace between the tokens of a tool output that is one JSON object or array "
     "(byte-exact otherwise: key order, numbers and escapes unchanged)."},
    {"stripAnsi", AR_PARAM_BOOLEAN, 0, 0, NULL, "true",
     "Remove ANSI escape sequences and keep only the final state of lines a progress bar "
     "redrew with carriage returns."},
    {"collapseWhitespace", AR_PARAM_BOOLEAN, 0, 0, NULL, "true",
     "Trim trailing whitespace, squeeze runs of blank lines and of inner spaces; indentation is "
     "never changed."},
    {"foldRepeats", AR_PARAM_BOOLEAN, 0, 0, NULL, "true",
     "Fold runs of lines identical but for numbers and hex ids (logs, progress) to their first "
     "and last line and a count; the folded lines are stashed."},
    {"minRepeat", AR_PARAM_INTEGER, 3, 100000, NULL, "4",
     "Shortest run of similar lines that is folded."},
    {"dropRepeatedLines", AR_PARAM_BOOLEAN, 0, 0, NULL, "true",
     "A tool output loses the runs of lines a later turn shows again (a file region read twice, "
     "a test rerun, a narrowed grep), behind a stashed marker; the latest copy stays."},
    {"oldTurns", AR_PARAM_INTEGER, 0, 1000, NULL, "2",
     "Tool outputs behind the latest this many assistant turns are old: capped at "
     "oldMaxBlobTokens, unless their call names a file those latest turns name too. 0: no "
     "age-aware cap."},
    {"oldMaxBlobTokens", AR_PARAM_INTEGER, 64, AR_TOKENS_MAX, NULL, "160",
     "Cap on one old tool output (head and tail kept around a stashed marker, error and "
     "file:line lines kept)."},
};
static const ar_param_spec_t s_code_skeleton_params[] = {
    {"minLines", AR_PARAM_INTEGER, 1, AR_TOKENS_MAX, NULL, "80",
     "Source files shorter than this many lines are kept whole."},
    {"keepTurns", AR_PARAM_INTEGER, 0, 100, NULL, "1",
     "Results of the latest this many assistant turns, and every read of a file those turns "
     "touch (the file about to be edited), are kept whole."},
};
static const ar_param_spec_t s_code_graph_params[] = {
    {"minLines", AR_PARAM_INTEGER, 1, AR_TOKENS_MAX, NULL, "80",
     "Source files shorter than this many lines are kept whole."},
    {"neighborHops", AR_PARAM_INTEGER, 0, 5, NULL, "1",
     "How far along the symbol graph from the symbols the question touches bodies are kept."},
};
static const ar_param_spec_t s_relevance_filter_params[] = {
    {"minTokens", AR_PARAM_INTEGER, 0, AR_TOKENS_MAX, NULL, "1000",
     "Tool outputs shorter than this many tokens are kept whole."},
    {"keepLines", AR_PARAM_INTEGER, 1, 100000, NULL, "60",
     "Lines kept: the most relevant to the live question (BM25)."},
    {"contextLines", AR_PARAM_INTEGER, 0, 50, NULL, "2",
     "Neighbouring lines kept around each kept line."},
};
static const ar_param_spec_t s_window_budget_params[] = {
    {"maxTokens", AR_PARAM_INTEGER, 256, AR_TOKENS_MAX, NULL, "24000",
     "Token budget the conversation is fitted into."},
    {"cropReasoning", AR_PARAM_BOOLEAN, 0, 0, NULL, "true",
     "Whatever the budget, an agent's assistant turns older than the latest reasoningTurns keep "
     "their action (tool calls, or the fenced command their text ends with) and the code blocks "
     "of their prose; the rest of the prose is stashed behind a marker. Turns with no action "
     "are never touched."},
    {"reasoningTurns", AR_PARAM_INTEGER, 1, 1000, NULL, "2",
     "The latest this many assistant turns keep their reasoning whole."},
    {"dropQuotedCode", AR_PARAM_BOOLEAN, 0, 0, NULL, "true",
     "Of an old turn whose reasoning is cut, code blocks that only quote lines the request shows "
     "elsewhere (a tool output, a command) go too; drafted code stays."},
};
static const ar_param_spec_t s_tool_pruning_params[] = {
    {"keep", AR_PARAM_INTEGER, 1, 128, NULL, "3",
     "Best-scoring tools always kept (whole when near the best score, else compact: first "
     "sentences, optional parameters' descriptions and empty schema members dropped); besides "
     "these only tools of a family in play, mentioned or scoring 20% of the best stay, "
     "compact. tool_choice and called tools are never touched."},
};
static const ar_param_spec_t s_param_tuning_params[] = {
    {"maxTokensCap", AR_PARAM_INTEGER, 1, AR_TOKENS_MAX, NULL, "4096",
     "max_tokens / max_completion_tokens are lowered to this (never raised)."},
    {"temperatureMax", AR_PARAM_NUMBER, 0, 2, NULL, NULL,
     "When set, temperature is lowered to this (never raised); unset leaves it alone."},
};

#define S_PARAMS(a) a, sizeof (a) / sizeof (a[0])

//  The built strategies, one file each (strategy_<kind>.c). CMake compiles the files that exist
//  and defines AR_HAVE_STRATEGY_<KIND> for each, so a new strategy is one new file: its kind
//  turns from "unavailable" to available here without an edit.
#ifdef AR_HAVE_STRATEGY_PROMPT_COMPRESSION
extern const ar_strategy_t ar_strategy_prompt_compression;
#define S_PROMPT_COMPRESSION_BUILT true
#define S_PROMPT_COMPRESSION_IMPL  &ar_strategy_prompt_compression
#else
#define S_PROMPT_COMPRESSION_BUILT false
#define S_PROMPT_COMPRESSION_IMPL  NULL
#endif
#ifdef AR_HAVE_STRATEGY_CONTEXT_COMPRESSION
extern const ar_strategy_t ar_strategy_context_compression;
#define S_CONTEXT_COMPRESSION_BUILT true
#define S_CONTEXT_COMPRESSION_IMPL  &ar_strategy_context_compression
#else
#define S_CONTEXT_COMPRESSION_BUILT false
#define S_CONTEXT_COMPRESSION_IMPL  NULL
#endif
#ifdef AR_HAVE_STRATEGY_CODE_SKELETON
extern const ar_strategy_t ar_strategy_code_skeleton;
#define S_CODE_SKELETON_BUILT true
#define S_CODE_SKELETON_IMPL  &ar_strategy_code_skeleton
#else
#define S_CODE_SKELETON_BUILT false
#define S_CODE_SKELETON_IMPL  NULL
#endif
#ifdef AR_HAVE_STRATEGY_CODE_GRAPH
extern const ar_strategy_t ar_strategy_code_graph;
#define S_CODE_GRAPH_BUILT true
#define S_CODE_GRAPH_IMPL  &ar_strategy_code_graph
#else
#define S_CODE_GRAPH_BUILT false
#define S_CODE_GRAPH_IMPL  NULL
#endif
#ifdef AR_HAVE_STRATEGY_RELEVANCE_FILTER
extern const ar_strategy_t ar_strategy_relevance_filter;
#define S_RELEVANCE_FILTER_BUILT true
#define S_RELEVANCE_FILTER_IMPL  &ar_strategy_relevance_filter
#else
#define S_RELEVANCE_FILTER_BUILT false
#define S_RELEVANCE_FILTER_IMPL  NULL
#endif
extern const ar_strategy_t ar_strategy_window_budget;
extern const ar_strategy_t ar_strategy_tool_pruning;
extern const ar_strategy_t ar_strategy_param_tuning;

//  The registry. Row order is the Configure page's order (the default pipeline's order).
static const ar_strategy_info_t s_strategies[] = {
    {"semantic_cache", "Short-circuit near-duplicate requests from cache.", false, false,
     S_PARAMS (s_semantic_cache_params), NULL},
    {"vision_ocr",
     "Swap a pasted text-only screenshot for its OCR'd text (local Tesseract, "
     "confidence-gated). Reversible via POST /v1/retrieve.",
     false, false, S_PARAMS (s_vision_ocr_params), NULL},
    {"prompt_compression", "Shorten / restructure the prompt and system message.", true,
     S_PROMPT_COMPRESSION_BUILT, S_PARAMS (s_prompt_compression_params), S_PROMPT_COMPRESSION_IMPL},
    {"context_compression",
     "Shrink bulky tool/function output the agent reads back (minify JSON, collapse "
     "whitespace, cap oversized blobs). Reversible via POST /v1/retrieve.",
     true, S_CONTEXT_COMPRESSION_BUILT, S_PARAMS (s_context_compression_params),
     S_CONTEXT_COMPRESSION_IMPL},
    {"code_skeleton",
     "Outline a source file the agent read back to its signatures/structure, eliding "
     "statement bodies. Reversible via POST /v1/retrieve.",
     true, S_CODE_SKELETON_BUILT, S_PARAMS (s_code_skeleton_params), S_CODE_SKELETON_IMPL},
    {"code_graph",
     "Graph-aware multi-file skeletonization: keep the bodies of the symbols the live question "
     "touches (plus their graph neighbors), elide the rest. Enable this or code_skeleton, not "
     "both. Reversible via POST /v1/retrieve.",
     false, S_CODE_GRAPH_BUILT, S_PARAMS (s_code_graph_params), S_CODE_GRAPH_IMPL},
    {"relevance_filter",
     "Keep only the lines of a large tool output relevant to the live question (BM25, "
     "lexical). Reversible via POST /v1/retrieve.",
     false, S_RELEVANCE_FILTER_BUILT, S_PARAMS (s_relevance_filter_params),
     S_RELEVANCE_FILTER_IMPL},
    {"window_budget",
     "Fit the conversation into a context-window token budget by cropping the oldest middle "
     "messages, pinning the system prompt and most recent turns. Reversible via POST "
     "/v1/retrieve.",
     true, true, S_PARAMS (s_window_budget_params), &ar_strategy_window_budget},
    {"tool_pruning", "Drop tools unlikely to be invoked for this request.", true, true,
     S_PARAMS (s_tool_pruning_params), &ar_strategy_tool_pruning},
    {"param_tuning", "Clamp generation params (e.g. max_tokens, temperature).", true, true,
     S_PARAMS (s_param_tuning_params), &ar_strategy_param_tuning},
};

#define S_COUNT (sizeof (s_strategies) / sizeof (s_strategies[0]))
_Static_assert(S_COUNT <= AR_STRATEGY_MAX, "kind sets are one uint64_t");

size_t ar_strategy_registry_count (void)
{
    return S_COUNT;
}

const ar_strategy_info_t *ar_strategy_registry_at (size_t index)
{
    return index < S_COUNT ? &s_strategies[index] : NULL;
}

int ar_strategy_registry_index (const char *kind)
{
    if (!kind)
        return -1;
    for (size_t i = 0; i < S_COUNT; i++)
        if (strcmp (s_strategies[i].kind, kind) == 0)
            return (int)i;
    return -1;
}

const ar_strategy_info_t *ar_strategy_registry_find (const char *kind)
{
    int i = ar_strategy_registry_index (kind);
    return i < 0 ? NULL : &s_strategies[i];
}

static const ar_param_spec_t *s_spec (const ar_strategy_info_t *info, const char *name)
{
    for (size_t i = 0; i < info->param_count; i++)
        if (strcmp (info->params[i].name, name) == 0)
            return &info->params[i];
    return NULL;
}

json_t *ar_strategy_registry_default_params (const ar_strategy_info_t *info)
{
    json_t *params = json_object ();
    for (size_t i = 0; params && i < info->param_count; i++) {
        if (!info->params[i].default_json)
            continue;
        //  The defaults are our own literals; the self-test proves each one parses and passes.
        json_t *value = json_loads (info->params[i].default_json, JSON_DECODE_ANY, NULL);
        if (!value || json_object_set_new (params, info->params[i].name, value) != 0) {
            json_decref (params);
            return NULL;
        }
    }
    return params;
}

//  A bound as an integer when it is one, so the schema says 0 rather than 0.0.
static json_t *s_bound (double v)
{
    return v == floor (v) && fabs (v) < 1e15 ? json_integer ((json_int_t)v) : json_real (v);
}

static const char *s_type_name (ar_param_type_t type)
{
    switch (type) {
    case AR_PARAM_INTEGER:
        return "integer";
    case AR_PARAM_NUMBER:
        return "number";
    case AR_PARAM_BOOLEAN:
        return "boolean";
    case AR_PARAM_ENUM:
        return "string";
    }
    return "null";
}

json_t *ar_strategy_registry_param_schema (const ar_strategy_info_t *info)
{
    json_t *props = json_object ();
    for (size_t i = 0; props && i < info->param_count; i++) {
        const ar_param_spec_t *spec = &info->params[i];
        json_t *prop = json_object ();
        if (!prop)
            break;
        json_object_set_new (prop, "type", json_string (s_type_name (spec->type)));
        if (spec->type == AR_PARAM_INTEGER || spec->type == AR_PARAM_NUMBER) {
            json_object_set_new (prop, "minimum", s_bound (spec->min));
            json_object_set_new (prop, "maximum", s_bound (spec->max));
        }
        if (spec->type == AR_PARAM_ENUM) {
            json_t *choices = json_array ();
            for (size_t c = 0; spec->choices && spec->choices[c]; c++)
                json_array_append_new (choices, json_string (spec->choices[c]));
            json_object_set_new (prop, "enum", choices);
        }
        if (spec->default_json)
            json_object_set_new (prop, "default",
                                 json_loads (spec->default_json, JSON_DECODE_ANY, NULL));
        json_object_set_new (prop, "description", json_string (spec->doc));
        json_object_set_new (props, spec->name, prop);
    }
    if (!props)
        return NULL;
    return json_pack ("{s:s, s:b, s:o}", "type", "object", "additionalProperties", 0, "properties",
                      props);
}

static int s_fail (char *error, size_t error_size, const char *path, const char *name,
                   const char *reason)
{
    if (error && error_size)
        snprintf (error, error_size, "%s.%s: %s", path, name, reason);
    return -1;
}

int ar_strategy_registry_check_params (const ar_strategy_info_t *info, const json_t *params,
                                       const char *path, char *error, size_t error_size)
{
    if (!json_is_object (params)) {
        if (error && error_size)
            snprintf (error, error_size, "%s: must be an object", path);
        return -1;
    }
    const char *name;
    json_t *value;
    char reason[256];
    json_object_foreach ((json_t *)params, name, value)
    {
        const ar_param_spec_t *spec = s_spec (info, name);
        if (!spec) {
            //  Say what would have been right: a typo is the usual cause.
            int n = snprintf (reason, sizeof reason, "unknown param of %s (known:", info->kind);
            for (size_t i = 0; i < info->param_count && n > 0 && (size_t)n < sizeof reason; i++)
                n += snprintf (reason + n, sizeof reason - n, "%s %s", i ? "," : "",
                               info->params[i].name);
            if (n > 0 && (size_t)n < sizeof reason)
                snprintf (reason + n, sizeof reason - n, "%s)", info->param_count ? "" : " none");
            return s_fail (error, error_size, path, name, reason);
        }
        bool ok = false;
        switch (spec->type) {
        case AR_PARAM_INTEGER:
            ok = json_is_integer (value) && (double)json_integer_value (value) >= spec->min &&
                 (double)json_integer_value (value) <= spec->max;
            snprintf (reason, sizeof reason, "must be an integer from %.15g to %.15g", spec->min,
                      spec->max);
            break;
        case AR_PARAM_NUMBER:
            ok = json_is_number (value) && json_number_value (value) >= spec->min &&
                 json_number_value (value) <= spec->max;
            snprintf (reason, sizeof reason, "must be a number from %.15g to %.15g", spec->min,
                      spec->max);
            break;
        case AR_PARAM_BOOLEAN:
            ok = json_is_boolean (value);
            snprintf (reason, sizeof reason, "must be true or false");
            break;
        case AR_PARAM_ENUM: {
            int n = snprintf (reason, sizeof reason, "must be one of");
            for (size_t c = 0; spec->choices && spec->choices[c]; c++) {
                if (json_is_string (value) &&
                    strcmp (json_string_value (value), spec->choices[c]) == 0)
                    ok = true;
                if (n > 0 && (size_t)n < sizeof reason)
                    n += snprintf (reason + n, sizeof reason - n, "%s \"%s\"", c ? "," : "",
                                   spec->choices[c]);
            }
            break;
        }
        }
        if (!ok)
            return s_fail (error, error_size, path, name, reason);
    }
    return 0;
}

json_t *ar_strategy_registry_capabilities (void)
{
    json_t *kinds = json_array ();
    for (size_t i = 0; kinds && i < S_COUNT; i++) {
        const ar_strategy_info_t *info = &s_strategies[i];
        json_t *row =
            json_pack ("{s:s, s:s, s:b, s:b, s:o*, s:o*}", "kind", info->kind, "description",
                       info->doc, "available", info->available, "defaultEnabled", info->enabled,
                       "defaultParams", ar_strategy_registry_default_params (info), "paramSchema",
                       ar_strategy_registry_param_schema (info));
        if (!row || json_array_append_new (kinds, row) != 0) {
            json_decref (kinds);
            return NULL;
        }
    }
    return kinds ? json_pack ("{s:o}", "kinds", kinds) : NULL;
}

char *ar_strategy_registry_capabilities_json (void)
{
    json_t *caps = ar_strategy_registry_capabilities ();
    char *text =
        caps ? json_dumps (caps, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (15))
             : NULL;
    json_decref (caps);
    return text;
}

//  --------------------------------------------------------------------------------------------

static int s_check (const char *kind, const char *params_json, char *error, size_t size)
{
    json_t *params = json_loads (params_json, 0, NULL);
    assert (params);
    int rc = ar_strategy_registry_check_params (ar_strategy_registry_find (kind), params, "p",
                                                error, size);
    json_decref (params);
    return rc;
}

void ar_strategy_registry_test (bool verbose)
{
    //  The ten kinds of the Configure page, in its order, with its default on/off.
    static const char *kinds[] = {"semantic_cache",      "vision_ocr",    "prompt_compression",
                                  "context_compression", "code_skeleton", "code_graph",
                                  "relevance_filter",    "window_budget", "tool_pruning",
                                  "param_tuning"};
    static const bool on[] = {false, false, true, true, true, false, false, true, true, true};
    assert (ar_strategy_registry_count () == 10);
    for (size_t i = 0; i < 10; i++) {
        const ar_strategy_info_t *info = ar_strategy_registry_at (i);
        assert (info && strcmp (info->kind, kinds[i]) == 0);
        assert (info->enabled == on[i]);
        assert (ar_strategy_registry_index (kinds[i]) == (int)i);
        assert (ar_strategy_registry_find (kinds[i]) == info);
        //  The three always built claim to run, and so does each content strategy whose file
        //  CMake found (AR_HAVE_STRATEGY_<KIND>): available exactly when it has an
        //  implementation.
        bool built = strcmp (info->kind, "param_tuning") == 0 ||
                     strcmp (info->kind, "tool_pruning") == 0 ||
                     strcmp (info->kind, "window_budget") == 0;
        assert (!built || info->available);
        assert (info->available == (info->strategy != NULL));
        //  Every default is well-formed and passes its own spec; names are unique.
        json_t *defaults = ar_strategy_registry_default_params (info);
        assert (defaults);
        char error[256];
        assert (ar_strategy_registry_check_params (info, defaults, "p", error, sizeof error) == 0);
        json_decref (defaults);
        for (size_t p = 0; p < info->param_count; p++) {
            assert (info->params[p].doc && *info->params[p].doc);
            assert (info->params[p].type == AR_PARAM_ENUM ||
                    info->params[p].min <= info->params[p].max);
            for (size_t q = p + 1; q < info->param_count; q++)
                assert (strcmp (info->params[p].name, info->params[q].name) != 0);
        }
    }
    assert (ar_strategy_registry_at (10) == NULL);
    assert (ar_strategy_registry_index ("nope") == -1);
    assert (ar_strategy_registry_index (NULL) == -1);
    assert (ar_strategy_registry_find ("") == NULL);

    //  The defaults the page names.
    json_t *d = ar_strategy_registry_default_params (ar_strategy_registry_find ("window_budget"));
    json_t *want = json_pack ("{s:i, s:b, s:i, s:b}", "maxTokens", 24000, "cropReasoning", 1,
                              "reasoningTurns", 2, "dropQuotedCode", 1);
    assert (json_equal (d, want));
    json_decref (d);
    json_decref (want);
    d = ar_strategy_registry_default_params (ar_strategy_registry_find ("param_tuning"));
    want = json_pack ("{s:i}", "maxTokensCap", 4096);
    assert (json_equal (d, want));
    json_decref (d);
    json_decref (want);

    //  Validation: types, bounds, unknown names; the error names the param.
    char error[256];
    assert (s_check ("window_budget", "{\"maxTokens\":256}", error, sizeof error) == 0);
    assert (s_check ("window_budget", "{\"maxTokens\":255}", error, sizeof error) == -1);
    assert (strcmp (error, "p.maxTokens: must be an integer from 256 to 10000000") == 0);
    assert (s_check ("window_budget", "{\"maxTokens\":24000.0}", error, sizeof error) == -1);
    assert (s_check ("window_budget", "{\"maxTokens\":\"1\"}", error, sizeof error) == -1);
    assert (s_check ("window_budget", "{\"maxTokens\":10000001}", error, sizeof error) == -1);
    assert (s_check ("window_budget", "{\"maxToken\":300}", error, sizeof error) == -1);
    assert (strcmp (error, "p.maxToken: unknown param of window_budget (known: maxTokens, "
                           "cropReasoning, reasoningTurns, dropQuotedCode)") == 0);
    assert (s_check ("semantic_cache", "{\"threshold\":1}", error, sizeof error) == 0);
    assert (s_check ("semantic_cache", "{\"threshold\":0.95}", error, sizeof error) == 0);
    assert (s_check ("semantic_cache", "{\"threshold\":1.01}", error, sizeof error) == -1);
    assert (strcmp (error, "p.threshold: must be a number from 0 to 1") == 0);
    assert (s_check ("semantic_cache", "{\"threshold\":true}", error, sizeof error) == -1);
    assert (s_check ("prompt_compression", "{\"level\":\"balanced\"}", error, sizeof error) == 0);
    assert (s_check ("prompt_compression", "{\"level\":\"max\"}", error, sizeof error) == -1);
    assert (strcmp (error, "p.level: must be one of \"light\", \"balanced\", \"aggressive\"") == 0);
    assert (s_check ("prompt_compression", "{\"level\":1}", error, sizeof error) == -1);
    assert (s_check ("param_tuning", "{\"temperatureMax\":0.7}", error, sizeof error) == 0);
    assert (s_check ("param_tuning", "{\"temperatureMax\":-0.1}", error, sizeof error) == -1);
    assert (s_check ("tool_pruning", "{\"keep\":0}", error, sizeof error) == -1);
    assert (s_check ("tool_pruning", "[]", error, sizeof error) == -1);
    assert (strcmp (error, "p: must be an object") == 0);
    assert (s_check ("tool_pruning", "{}", error, sizeof error) == 0);
    //  A tiny buffer truncates, never overflows.
    char tiny[8];
    assert (s_check ("window_budget", "{\"zzz\":1}", tiny, sizeof tiny) == -1);
    assert (strlen (tiny) == 7);

    //  Capabilities: every kind once, in order, with a schema that matches the spec.
    json_t *caps = ar_strategy_registry_capabilities ();
    assert (caps);
    json_t *list = json_object_get (caps, "kinds");
    assert (json_array_size (list) == 10);
    for (size_t i = 0; i < 10; i++) {
        json_t *row = json_array_get (list, i);
        assert (strcmp (json_string_value (json_object_get (row, "kind")), kinds[i]) == 0);
        assert (json_is_boolean (json_object_get (row, "available")));
        assert (json_is_object (json_object_get (row, "defaultParams")));
        json_t *schema = json_object_get (row, "paramSchema");
        assert (json_is_false (json_object_get (schema, "additionalProperties")));
        assert (json_object_size (json_object_get (schema, "properties")) ==
                ar_strategy_registry_at (i)->param_count);
    }
    json_t *wb = json_object_get (
        json_object_get (json_object_get (json_array_get (list, 7), "paramSchema"), "properties"),
        "maxTokens");
    assert (json_integer_value (json_object_get (wb, "minimum")) == 256);
    assert (json_integer_value (json_object_get (wb, "default")) == 24000);
    assert (strcmp (json_string_value (json_object_get (wb, "type")), "integer") == 0);
    json_t *pt = json_array_get (list, 9);
    assert (json_is_false (json_object_get (json_array_get (list, 0), "available")));
    assert (json_is_true (json_object_get (pt, "available")));
    json_decref (caps);
    char *text = ar_strategy_registry_capabilities_json ();
    assert (text && strstr (text, "\"kind\":\"semantic_cache\""));
    if (verbose)
        printf ("%s\n", text);
    free (text);
}
