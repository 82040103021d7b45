/*  strategy_tool_pruning: drop the tool definitions least likely to be used this turn.

    With more than `keep` tools, each tool is scored by lexical overlap between its name and
    description and the live context: the latest user turn plus the text of the last two
    assistant turns. Words are lowercased runs of letters and digits (names split on "_", "-",
    "." and camelCase), at least three characters. A name word that matches scores 3, a
    description word 1, each distinct word once. Ties keep the earlier tool: deterministic.

    Never dropped, and not counted against `keep`: the tool tool_choice names and every tool
    already called in the conversation (the model may call it again, and a provider rejects
    history that calls an undefined tool). Tools without a name are kept: we do not drop what
    we cannot identify. Survivors keep their order. The dropped definitions go to the stash as
    a JSON array in their original order; without a stash nothing is dropped.
*/
#include "ar_chat_view.h"
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WORD_MAX  32   // longer words are cut (they still match their prefix)
#define S_QUERY_MAX 8192 // distinct context words considered

//  A small set of words: open addressing over slots (2 * max, a power of two), so a 100 KB
//  user turn costs one pass, not a scan of the set per word.
typedef struct {
    char (*words)[S_WORD_MAX + 1];
    uint32_t *slots; // index + 1 into words; 0 = empty
    size_t count, max, mask;
} s_words_t;

static int s_words_init (s_words_t *set, size_t max)
{
    size_t nslots = 16;
    while (nslots < 2 * max)
        nslots *= 2;
    set->words = calloc (max, S_WORD_MAX + 1);
    set->slots = calloc (nslots, sizeof (uint32_t));
    set->count = 0;
    set->max = max;
    set->mask = nslots - 1;
    return set->words && set->slots ? 0 : -1;
}

static void s_words_fini (s_words_t *set)
{
    free (set->words);
    free (set->slots);
}

static uint32_t *s_slot (const s_words_t *set, const char *word)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = word; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    for (size_t i = h & set->mask;; i = (i + 1) & set->mask)
        if (!set->slots[i] || strcmp (set->words[set->slots[i] - 1], word) == 0)
            return &set->slots[i];
}

static bool s_has (const s_words_t *set, const char *word)
{
    return *s_slot (set, word) != 0;
}

static void s_put (s_words_t *set, const char *word)
{
    uint32_t *slot = s_slot (set, word);
    if (*slot || set->count == set->max)
        return;
    strcpy (set->words[set->count], word);
    *slot = (uint32_t)++set->count;
}

//  Split text into words and add the new ones to set (deduplicated, bounded).
static void s_add_words (const char *text, size_t len, void *arg)
{
    s_words_t *set = (s_words_t *)arg;
    char word[S_WORD_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)text[i] : 0;
        //  camelCase: an upper-case letter after a lower-case one starts a word.
        bool split =
            !isalnum (c) || (n && isupper (c) && i && islower ((unsigned char)text[i - 1]));
        if (split && n) {
            word[n < S_WORD_MAX ? n : S_WORD_MAX] = 0;
            if (n >= 3)
                s_put (set, word);
            n = 0;
        }
        if (isalnum (c)) {
            if (n < S_WORD_MAX)
                word[n] = (char)tolower (c);
            n++;
        }
    }
}

typedef struct {
    const char **names;
    size_t count, max;
} s_names_t;

static void s_add_called (const char *id, const char *name, void *arg)
{
    s_names_t *called = (s_names_t *)arg;
    if (name && called->count < called->max)
        called->names[called->count++] = name;
}

static bool s_protected (const char *name, const char *choice, const s_names_t *called)
{
    if (!name)
        return true;
    if (choice && strcmp (name, choice) == 0)
        return true;
    for (size_t i = 0; i < called->count; i++)
        if (strcmp (called->names[i], name) == 0)
            return true;
    return false;
}

static int s_score (ar_shape_t shape, const json_t *tool, const s_words_t *query)
{
    s_words_t set;
    if (s_words_init (&set, 256) != 0)
        return 0;
    int score = 0;
    const char *name = ar_chat_view_tool_name (shape, tool);
    s_add_words (name, strlen (name), &set);
    for (size_t i = 0; i < set.count; i++)
        score += s_has (query, set.words[i]) ? 3 : 0;
    size_t named = set.count;
    const char *doc = ar_chat_view_tool_description (shape, tool);
    if (doc)
        s_add_words (doc, strlen (doc), &set);
    for (size_t i = named; i < set.count; i++)
        score += s_has (query, set.words[i]) ? 1 : 0;
    s_words_fini (&set);
    return score;
}

typedef struct {
    size_t index;
    int score;
} s_rank_t;

static int s_by_score (const void *a, const void *b)
{
    const s_rank_t *x = (const s_rank_t *)a, *y = (const s_rank_t *)b;
    if (x->score != y->score)
        return y->score - x->score;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int s_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    ar_shape_t shape = ctx->shape;
    json_t *keep_param = json_object_get (params, "keep");
    json_t *tools = json_object_get (ctx->request, "tools");
    if (!json_is_object (ctx->request) || (keep_param && !json_is_integer (keep_param)))
        return -1;
    json_int_t keep = keep_param ? json_integer_value (keep_param) : 8;
    if (keep < 1)
        return -1;
    if (!json_is_array (tools) || json_array_size (tools) <= (size_t)keep)
        return 0;
    if (!ctx->stash) {
        snprintf (result->note, sizeof result->note, "no stash: tools kept");
        return 0;
    }
    size_t ntools = json_array_size (tools);
    json_t *messages = ar_chat_view_messages (ctx->request);
    size_t nmessages = json_array_size (messages);

    //  Tools already called, and the live context: the last user turn, then up to two
    //  assistant turns after or before it, newest first.
    s_names_t called = {calloc (4096, sizeof (char *)), 0, 4096};
    s_words_t query;
    int qrc = s_words_init (&query, S_QUERY_MAX);
    s_rank_t *ranks = calloc (ntools, sizeof (s_rank_t));
    bool *dropped = calloc (ntools, sizeof (bool));
    json_t *stashed = json_array ();
    json_t *kept = json_array ();
    int rc = -1;
    if (!called.names || qrc != 0 || !ranks || !dropped || !stashed || !kept)
        goto done;
    bool user_seen = false;
    int assistants = 0;
    for (size_t i = nmessages; i-- > 0;) {
        json_t *message = json_array_get (messages, i);
        ar_chat_view_each_call (shape, message, s_add_called, &called);
        if (!user_seen && ar_chat_view_is_user_text (shape, message)) {
            ar_chat_view_message_text (shape, message, false, s_add_words, &query);
            user_seen = true;
        } else if (assistants < 2 && ar_chat_view_role (shape, message) == AR_CHAT_ROLE_ASSISTANT) {
            ar_chat_view_message_text (shape, message, false, s_add_words, &query);
            assistants++;
        }
        if ((i & 255) == 0 && ar_mono_now () > ctx->deadline)
            goto done;
    }
    if (called.count == called.max) {
        rc = 0; // cannot be sure which tools were called: keep them all
        goto done;
    }
    const char *choice = ar_chat_view_tool_choice_name (shape, ctx->request);

    //  Rank the unprotected tools; keep the best `keep` of them.
    size_t candidates = 0;
    for (size_t i = 0; i < ntools; i++) {
        json_t *tool = json_array_get (tools, i);
        const char *name = ar_chat_view_tool_name (shape, tool);
        if (s_protected (name, choice, &called))
            continue;
        ranks[candidates].index = i;
        ranks[candidates].score = s_score (shape, tool, &query);
        candidates++;
    }
    if (candidates <= (size_t)keep) {
        rc = 0;
        goto done;
    }
    qsort (ranks, candidates, sizeof (s_rank_t), s_by_score);
    for (size_t r = (size_t)keep; r < candidates; r++)
        dropped[ranks[r].index] = true;
    size_t ndropped = 0;
    for (size_t i = 0; i < ntools; i++) {
        json_t *tool = json_array_get (tools, i);
        if (json_array_append (dropped[i] ? stashed : kept, tool) != 0)
            goto done;
        ndropped += dropped[i];
    }
    char *text = json_dumps (stashed, JSON_COMPACT | JSON_REAL_PRECISION (17));
    char id[33] = "";
    int put = text ? ctx->stash->put (ctx->stash->self, text, strlen (text), id) : -1;
    free (text);
    //  Only now is the request changed: a new array in place of the old one.
    if (put != 0 || json_object_set (ctx->request, "tools", kept) != 0)
        goto done;
    result->applied = true;
    snprintf (result->note, sizeof result->note, "kept %zu of %zu tools; stash %s",
              ntools - ndropped, ntools, id);
    rc = 0;
done:
    free (called.names);
    s_words_fini (&query);
    free (ranks);
    free (dropped);
    json_decref (stashed);
    json_decref (kept);
    return rc;
}

const ar_strategy_t ar_strategy_tool_pruning = {"tool_pruning", s_apply};

//  --------------------------------------------------------------------------------------------

typedef struct {
    char content[4][2048];
    size_t count;
} s_test_stash_t;

static int s_test_put (void *self, const char *content, size_t len, char id_out[33])
{
    s_test_stash_t *stash = (s_test_stash_t *)self;
    if (stash->count == 4 || len >= 2048)
        return -1;
    memcpy (stash->content[stash->count], content, len);
    stash->content[stash->count][len] = 0;
    char hex[48];
    snprintf (hex, sizeof hex, "%032zx", stash->count++);
    memcpy (id_out, hex, 33);
    return 0;
}

static const char *s_names (const json_t *request, char *out)
{
    out[0] = 0;
    size_t i;
    json_t *tool;
    json_array_foreach (json_object_get (request, "tools"), i, tool)
    {
        strcat (out, ar_chat_view_tool_name (AR_SHAPE_OPENAI_CHAT, tool));
        strcat (out, " ");
    }
    return out;
}

void strategy_tool_pruning_test (bool verbose)
{
    const char *names[] = {"read_file", "write_file", "list_dir",  "grep_search",
                           "run_tests", "git_commit", "web_fetch", "sendEmail"};
    const char *docs[] = {"Read a file from disk",   "Write a file to disk",
                          "List a directory",        "Search files for a pattern",
                          "Run the test suite",      "Commit staged changes",
                          "Fetch a web page by URL", "Send an email message"};
    json_t *tools = json_array ();
    for (size_t i = 0; i < 8; i++)
        json_array_append_new (tools,
                               json_pack ("{s:s, s:{s:s, s:s}}", "type", "function", "function",
                                          "name", names[i], "description", docs[i]));
    json_t *request = json_pack (
        "{s:s, s:o, s:[{s:s, s:s}, {s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}, {s:s, s:s, s:s},"
        "{s:s, s:s}]}",
        "model", "m", "tools", tools, "messages", "role", "user", "content", "hello", "role",
        "assistant", "content", "tool_calls", "id", "c1", "type", "function", "function", "name",
        "git_commit", "arguments", "{}", "role", "tool", "tool_call_id", "c1", "content", "done",
        "role", "user", "content", "please send an email about the failing tests");
    assert (request);
    json_object_set_new (
        request, "tool_choice",
        json_pack ("{s:s, s:{s:s}}", "type", "function", "function", "name", "web_fetch"));
    s_test_stash_t stash = {.count = 0};
    ar_stash_sink_t sink = {&stash, s_test_put};
    ar_strategy_ctx_t ctx = {
        .shape = AR_SHAPE_OPENAI_CHAT, .request = request, .stash = &sink, .deadline = INT64_MAX};
    json_t *params = json_pack ("{s:i}", "keep", 2);
    ar_strategy_result_t result = {.applied = false};
    assert (s_apply (&ctx, params, &result) == 0 && result.applied);
    //  sendEmail (name + doc) and run_tests (doc "test") win; git_commit was called and
    //  web_fetch is tool_choice; order kept.
    char buf[256];
    assert (strcmp (s_names (request, buf), "run_tests git_commit web_fetch sendEmail ") == 0);
    assert (stash.count == 1);
    json_t *back = json_loads (stash.content[0], 0, NULL);
    assert (json_array_size (back) == 4);
    assert (strcmp (ar_chat_view_tool_name (AR_SHAPE_OPENAI_CHAT, json_array_get (back, 0)),
                    "read_file") == 0);
    json_decref (back);
    assert (strstr (result.note, "kept 4 of 8 tools; stash 0000"));
    //  Few enough tools, or no stash: nothing happens.
    result = (ar_strategy_result_t){.applied = false};
    assert (s_apply (&ctx, params, &result) == 0 && !result.applied);
    json_decref (params);
    params = json_pack ("{s:i}", "keep", 1);
    ctx.stash = NULL;
    assert (s_apply (&ctx, params, &result) == 0 && !result.applied);
    assert (json_array_size (json_object_get (request, "tools")) == 4);
    //  Wrong types: -1 or skip, never a crash.
    json_decref (params);
    params = json_pack ("{s:s}", "keep", "2");
    assert (s_apply (&ctx, params, &result) == -1);
    json_decref (params);
    json_decref (request);
    if (verbose)
        printf ("strategy_tool_pruning: ok\n");
}
