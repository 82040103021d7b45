/*  strategy_tool_pruning: keep whole only the tool definitions likely to be used this turn.

    With more than `keep` unprotected tools, each tool is scored against the live context: the
    latest user turn a person wrote, the text of the last two assistant turns and the newest
    tool results (agents act on tool output). Words are lowercased runs of letters and digits
    (names also split on "_", "-", "." and camelCase), at least two characters, a light suffix
    strip ("ing", "ed", "es", "s"), a few stop words and all-digit runs skipped. Each tool is a
    small document with fields weighted name 6, parameter names and enum values 4, description
    2, parameter descriptions 1; a context word that a tool has scores its best field weight
    times its IDF over the tool set (BM25's idf), so boilerplate every tool shares counts for
    nothing. Ties keep the earlier tool: deterministic.

    Families: tools whose descriptions share a boilerplate prefix ending at a sentence or
    clause boundary (".", ":", ";", "!", "?"), at least 32 bytes, shared by three or more
    tools ("This tool belongs to the vehicle control system, ... Tool description: ").

    Tiers, over the unprotected tools ranked by score:
      - whole: among the `keep` best and scoring at least 45% of the best (and above 0);
      - compact: the rest of the `keep` best (the floor: never fewer than `keep` kept), and any
        other tool whose family is in play (its best member scores 35% of the best, or a member
        was called or is tool_choice), that scores 20% of the best, or whose exact name the
        conversation or system prompt mentions. A compact tool keeps its name and its
        parameters' names, types, enums, defaults, examples and required list, so the model
        can still call it; its description is cut to the first sentence after the family
        prefix, a required parameter's description to its first sentence, and an optional
        parameter's description goes (a tool unlikely to be called is called with what it
        requires); schema members that say nothing go too: an empty "description" or
        "required", and an "optional" list (ToolBench's) naming exactly the properties
        "required" leaves out;
      - dropped: everything else.
    A whole tool of a family whose prefix an earlier kept tool already shows gets "(see
    <that tool>) " in place of the prefix. Whole tools are otherwise untouched; in compact
    ones nothing but descriptions and the members above changes.

    Never dropped nor changed, and not counted against `keep`: the tool tool_choice names and
    every tool already called in the conversation (the model may call it again, and a provider
    rejects history that calls an undefined tool). Tools without a name are kept unchanged: we
    do not drop what we cannot identify. Survivors keep their order. The original tools array
    goes to the stash whole (one entry, named in the note); without a stash nothing changes.
*/
#include "ar_chat_view.h"
#include "ar_text_hash.h"
#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WORD_MAX   32     // longer words are cut (they still match their prefix)
#define S_DICT_MAX   16384  // distinct tool words indexed
#define S_ENTRY_MAX  262144 // (tool, word) pairs indexed
#define S_RESULT_MAX 16384  // bytes of one tool result read into the context
#ifndef S_CUT_PARAMS
#define S_CUT_PARAMS 1
#endif
#define S_FAMILY_MIN  32   // bytes of a shared description prefix that make a family
#define S_WHOLE_PCT   0.45 // a top-`keep` tool is whole when it scores this much of the best
#define S_FAMILY_PCT  0.35 // a family is in play when its best member scores this much
#define S_COMPACT_PCT 0.20 // any tool scoring this much of the best is kept compact

//  Field weights: a context word counts its best field's weight times its IDF.
enum { S_W_PARAM_DOC = 1, S_W_DOC = 2, S_W_PARAM = 4, S_W_NAME = 6 };

typedef struct {
    uint32_t word;
    uint8_t weight;
} s_entry_t;

//  The tool words: a dictionary (open addressing over 2 * S_DICT_MAX slots), each word's
//  document frequency and query hit, and per tool its distinct words with their best weight.
typedef struct {
    char (*words)[S_WORD_MAX + 1];
    uint32_t *slots; // index + 1 into words; 0 = empty
    uint32_t *df;    // tools that have the word
    uint32_t *stamp; // tool + 1 that last added the word
    uint32_t *at;    // ... and its entry
    bool *hit;       // the live context has the word
    size_t count, mask, dict_max, entry_max;
    s_entry_t *entries;
    size_t nentries;
    size_t tool;    // the tool being indexed
    uint8_t weight; // the field being indexed
    bool query;     // scanning the context: look words up, add none
    size_t budget;  // context bytes still to read from the current message
} s_index_t;

static int s_index_init (s_index_t *index, size_t ntools)
{
    size_t dict = 128 * ntools + 256 < S_DICT_MAX ? 128 * ntools + 256 : S_DICT_MAX, nslots = 16;
    while (nslots < 2 * dict)
        nslots *= 2;
    size_t entries = 256 * ntools < S_ENTRY_MAX ? 256 * ntools : S_ENTRY_MAX;
    *index = (s_index_t){.mask = nslots - 1, .dict_max = dict, .entry_max = entries};
    index->words = calloc (dict, S_WORD_MAX + 1);
    index->slots = calloc (nslots, sizeof (uint32_t));
    index->df = calloc (dict, sizeof (uint32_t));
    index->stamp = calloc (dict, sizeof (uint32_t));
    index->at = calloc (dict, sizeof (uint32_t));
    index->hit = calloc (dict, sizeof (bool));
    index->entries = calloc (entries, sizeof (s_entry_t));
    return index->words && index->slots && index->df && index->stamp && index->at && index->hit &&
                   index->entries
               ? 0
               : -1;
}

static void s_index_fini (s_index_t *index)
{
    free (index->words);
    free (index->slots);
    free (index->df);
    free (index->stamp);
    free (index->at);
    free (index->hit);
    free (index->entries);
}

static const char *const s_stop[] = {
    "the",   "and",  "for",    "with",  "you",   "your",   "this", "that", "are",  "can",
    "from",  "into", "will",   "which", "all",   "any",    "its",  "not",  "of",   "to",
    "in",    "is",   "it",     "be",    "an",    "or",     "by",   "as",   "at",   "if",
    "me",    "my",   "we",     "our",   "do",    "so",     "was",  "has",  "have", "been",
    "there", "what", "please", "would", "could", "should", "i",    "a"};

static bool s_stopword (const char *word)
{
    for (size_t i = 0; i < sizeof s_stop / sizeof s_stop[0]; i++)
        if (strcmp (s_stop[i], word) == 0)
            return true;
    return false;
}

//  One suffix off, so "doors"/"door", "locked"/"lock", "starting"/"start" meet.
static void s_stem (char *word, size_t n)
{
    if (n >= 6 && strcmp (word + n - 3, "ing") == 0)
        word[n - 3] = 0;
    else if (n >= 5 && strcmp (word + n - 2, "ed") == 0)
        word[n - 2] = 0;
    else if (n >= 5 && strcmp (word + n - 2, "es") == 0 && strchr ("sxz", word[n - 3]))
        word[n - 2] = 0;
    else if (n >= 4 && word[n - 1] == 's' && word[n - 2] != 's' && word[n - 2] != 'u')
        word[n - 1] = 0;
}

static void s_word (s_index_t *index, const char *word)
{
    size_t len = strlen (word);
    uint32_t *slot = NULL;
    for (size_t i = ar_text_hash (word, len) & index->mask;; i = (i + 1) & index->mask) {
        slot = &index->slots[i];
        if (!*slot || strcmp (index->words[*slot - 1], word) == 0)
            break;
    }
    if (index->query) {
        if (*slot)
            index->hit[*slot - 1] = true;
        return;
    }
    if (!*slot) {
        if (index->count == index->dict_max)
            return;
        strcpy (index->words[index->count], word);
        *slot = (uint32_t)++index->count;
    }
    uint32_t w = *slot - 1;
    if (index->stamp[w] == index->tool + 1) {
        s_entry_t *entry = &index->entries[index->at[w]];
        if (entry->weight < index->weight)
            entry->weight = index->weight;
        return;
    }
    if (index->nentries == index->entry_max)
        return;
    index->stamp[w] = (uint32_t)index->tool + 1;
    index->at[w] = (uint32_t)index->nentries;
    index->entries[index->nentries++] = (s_entry_t){w, index->weight};
    index->df[w]++;
}

//  Split text into words (lowercased, camelCase split, stemmed) and index or look them up.
static void s_scan (const char *text, size_t len, void *arg)
{
    s_index_t *index = (s_index_t *)arg;
    if (index->query) {
        if (len > index->budget)
            len = index->budget;
        index->budget -= len;
    }
    char word[S_WORD_MAX + 1];
    size_t n = 0;
    bool digits = true;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)text[i] : 0;
        //  camelCase: an upper-case letter after a lower-case one starts a word.
        bool split =
            !isalnum (c) || (n && isupper (c) && i && islower ((unsigned char)text[i - 1]));
        if (split && n) {
            size_t m = n < S_WORD_MAX ? n : S_WORD_MAX;
            word[m] = 0;
            if (m >= 2 && !digits && !s_stopword (word)) {
                s_stem (word, m);
                s_word (index, word);
            }
            n = 0;
            digits = true;
        }
        if (isalnum (c)) {
            if (n < S_WORD_MAX)
                word[n] = (char)tolower (c);
            digits = digits && isdigit (c);
            n++;
        }
    }
}

static void s_scan_str (s_index_t *index, const char *text, uint8_t weight)
{
    if (text) {
        index->weight = weight;
        s_scan (text, strlen (text), index);
    }
}

//  Parameter names and enum values, then descriptions, of a JSON schema.
static void s_scan_schema (s_index_t *index, const json_t *schema, int depth)
{
    if (!json_is_object (schema) || depth > 8)
        return;
    const char *key;
    json_t *value;
    size_t i;
    json_object_foreach ((json_t *)json_object_get (schema, "properties"), key, value)
    {
        s_scan_str (index, key, S_W_PARAM);
        s_scan_schema (index, value, depth + 1);
    }
    json_array_foreach (json_object_get (schema, "enum"), i, value)
        s_scan_str (index, json_string_value (value), S_W_PARAM);
    s_scan_str (index, json_string_value (json_object_get (schema, "description")), S_W_PARAM_DOC);
    s_scan_schema (index, json_object_get (schema, "items"), depth + 1);
    const char *combos[] = {"anyOf", "oneOf", "allOf"};
    for (size_t c = 0; c < 3; c++)
        json_array_foreach (json_object_get (schema, combos[c]), i, value)
            s_scan_schema (index, value, depth + 1);
}

static const json_t *s_schema (const json_t *tool)
{
    const json_t *fn = json_object_get (tool, "function");
    return json_is_object (fn) ? json_object_get (fn, "parameters")
                               : json_object_get (tool, "input_schema");
}

//  Names: tools already called, and an exact-name set for mentions.
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

//  Tool names by hash (open addressing; slot = tool + 1), and which the text mentions.
typedef struct {
    const char **names; // per tool
    uint32_t *slots;
    size_t mask;
    bool *mentioned; // per tool
} s_mentions_t;

static void s_mention (s_mentions_t *set, const char *text, size_t len)
{
    for (size_t i = ar_text_hash (text, len) & set->mask; set->slots[i]; i = (i + 1) & set->mask) {
        uint32_t t = set->slots[i] - 1;
        if (strncmp (set->names[t], text, len) == 0 && set->names[t][len] == 0)
            set->mentioned[t] = true;
    }
}

//  Identifier-like runs ([A-Za-z0-9_.-], trailing "." and "-" cut) checked against the names.
static void s_scan_mentions (const char *text, size_t len, void *arg)
{
    s_mentions_t *set = (s_mentions_t *)arg;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)text[i] : 0;
        if (isalnum (c) || c == '_' || c == '.' || c == '-')
            continue;
        size_t end = i;
        while (end > start && (text[end - 1] == '.' || text[end - 1] == '-'))
            end--;
        if (end - start >= 2)
            s_mention (set, text + start, end - start);
        start = i + 1;
    }
}

typedef struct {
    const char *doc;
    size_t index;
} s_sorted_t;

static int s_by_doc (const void *a, const void *b)
{
    const s_sorted_t *x = (const s_sorted_t *)a, *y = (const s_sorted_t *)b;
    int c = strcmp (x->doc, y->doc);
    return c ? c : (x->index < y->index ? -1 : x->index > y->index);
}

//  Per tool: the length of the longest description prefix ending at a sentence or clause
//  boundary (spaces and quotes after it included), at least S_FAMILY_MIN bytes, shorter than
//  the description, that two other tools share; and its family: the first tool with the same
//  prefix. Sorted, the tools sharing a prefix are neighbours.
static int s_families (const char **docs, size_t ntools, size_t *prefix, size_t *family)
{
    s_sorted_t *sorted = calloc (ntools + 1, sizeof (s_sorted_t));
    size_t *lcp = calloc (ntools + 1, sizeof (size_t));
    uint64_t *hashes = calloc (ntools + 1, sizeof (uint64_t));
    if (!sorted || !lcp || !hashes) {
        free (sorted);
        free (lcp);
        free (hashes);
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < ntools; i++) {
        prefix[i] = 0;
        family[i] = i;
        if (docs[i] && strlen (docs[i]) > S_FAMILY_MIN)
            sorted[m++] = (s_sorted_t){docs[i], i};
    }
    qsort (sorted, m, sizeof (s_sorted_t), s_by_doc);
    for (size_t p = 0; p + 1 < m; p++) {
        const char *a = sorted[p].doc, *b = sorted[p + 1].doc;
        size_t n = 0;
        while (a[n] && a[n] == b[n])
            n++;
        lcp[p] = n;
    }
    for (size_t p = 0; p < m; p++) {
        const char *doc = sorted[p].doc;
        size_t before = p ? lcp[p - 1] : 0, after = p + 1 < m ? lcp[p] : 0;
        size_t limit = before > after ? before : after, len = strlen (doc), best = 0;
        for (size_t k = 0; k < limit; k++) {
            if (!strchr (".:;!?", doc[k]))
                continue;
            size_t b = k + 1;
            while (b < len && strchr (" \t\r\n\"'", doc[b]))
                b++;
            if (b < S_FAMILY_MIN || b >= len || b > limit)
                continue;
            bool three = (p >= 2 && lcp[p - 2] >= b && lcp[p - 1] >= b) ||
                         (p >= 1 && p + 1 < m && lcp[p - 1] >= b && lcp[p] >= b) ||
                         (p + 2 < m && lcp[p] >= b && lcp[p + 1] >= b);
            if (three)
                best = b;
        }
        prefix[sorted[p].index] = best;
    }
    for (size_t i = 0; i < ntools; i++) {
        if (!prefix[i])
            continue;
        hashes[i] = ar_text_hash (docs[i], prefix[i]);
        for (size_t j = 0; j < i; j++)
            if (prefix[j] == prefix[i] && hashes[j] == hashes[i] &&
                memcmp (docs[j], docs[i], prefix[i]) == 0) {
                family[i] = family[j];
                break;
            }
    }
    free (sorted);
    free (lcp);
    free (hashes);
    return 0;
}

typedef struct {
    size_t index;
    double score;
} s_rank_t;

static int s_by_score (const void *a, const void *b)
{
    const s_rank_t *x = (const s_rank_t *)a, *y = (const s_rank_t *)b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->index < y->index ? -1 : x->index > y->index;
}

enum { S_DROP, S_COMPACT, S_WHOLE, S_PROTECTED };

static size_t s_tokens (ar_strategy_ctx_t *ctx, const char *text, size_t len)
{
    return ctx->tokenizer ? ar_tokenizer_count (ctx->tokenizer, text, len) : len;
}

static size_t s_first_sentence (const char *text);

//  Whether name is in the JSON array list (of strings).
static bool s_listed (const json_t *list, const char *name)
{
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item)
    {
        if (json_is_string (item) && strcmp (json_string_value (item), name) == 0)
            return true;
    }
    return false;
}

//  An "optional" list (ToolBench's, not JSON Schema's) naming exactly the properties that
//  "required" leaves out says nothing "required" does not say already.
static bool s_restates_required (const json_t *schema, const json_t *optional)
{
    const json_t *props = json_object_get (schema, "properties");
    const json_t *required = json_object_get (schema, "required");
    if (!json_is_array (optional) || !json_is_object (props))
        return false;
    size_t i, optional_props = 0;
    json_t *item;
    json_array_foreach (optional, i, item)
    {
        if (!json_is_string (item) || !json_object_get (props, json_string_value (item)) ||
            s_listed (required, json_string_value (item)))
            return false;
        for (size_t j = 0; j < i; j++)
            if (json_equal (item, json_array_get (optional, j)))
                return false; // listed twice
    }
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)props, key, value) optional_props += !s_listed (required, key);
    return optional_props == json_array_size (optional);
}

//  A copy of schema for a compact tool (names, types, enums, defaults and required unchanged):
//  a property's "description" is cut to its first sentence, or dropped when the property is
//  optional (not in its object's "required"); members that say nothing go (an empty
//  "description" or "required", an "optional" list that restates "required"). required: the
//  enclosing object's list when schema is its "properties" map (map). Sets *cut when anything
//  changed.
static json_t *s_cut_schema (ar_strategy_ctx_t *ctx, const json_t *schema, int depth, bool map,
                             const json_t *required, bool *cut)
{
    if (!json_is_object (schema) && !json_is_array (schema))
        return json_incref ((json_t *)schema);
    json_t *copy = json_is_object (schema) ? json_object () : json_array ();
    const char *key;
    json_t *value;
    size_t i;
    if (json_is_array (schema)) {
        json_array_foreach (schema, i, value)
        {
            json_t *sub = depth < 8 ? s_cut_schema (ctx, value, depth + 1, false, NULL, cut)
                                    : json_incref (value);
            if (!sub || json_array_append_new (copy, sub) != 0)
                goto fail;
        }
        return copy;
    }
    json_object_foreach ((json_t *)schema, key, value)
    {
        json_t *sub = NULL;
        const char *doc = json_string_value (value);
        if (map) {
            //  One property (a copy of its own when an object): an optional one loses its
            //  description.
            bool own = depth < 8 && json_is_object (value);
            sub =
                own ? s_cut_schema (ctx, value, depth + 1, false, NULL, cut) : json_incref (value);
            if (sub && own && !s_listed (required, key) && json_object_get (sub, "description")) {
                if (json_object_del (sub, "description") != 0) {
                    json_decref (sub);
                    goto fail;
                }
                *cut = true;
            }
        } else if (strcmp (key, "description") == 0 && doc && !*doc) {
            *cut = true; // says nothing
            continue;
        } else if (strcmp (key, "description") == 0 && doc) {
            size_t len = s_first_sentence (doc);
            if (len && len < strlen (doc)) { // a prefix cut at a sentence end
                sub = json_stringn (doc, len);
                *cut = true;
            } else
                sub = json_incref (value);
        } else if ((strcmp (key, "required") == 0 && json_is_array (value) &&
                    json_array_size (value) == 0) ||
                   (strcmp (key, "optional") == 0 && s_restates_required (schema, value))) {
            *cut = true; // says nothing
            continue;
        } else if ((strcmp (key, "properties") == 0 || strcmp (key, "items") == 0 ||
                    strcmp (key, "anyOf") == 0 || strcmp (key, "oneOf") == 0 ||
                    strcmp (key, "allOf") == 0) &&
                   depth < 8)
            //  A map of schemas ("properties"), a schema or a list of them.
            sub = s_cut_schema (ctx, value, depth + 1, strcmp (key, "properties") == 0,
                                json_object_get (schema, "required"), cut);
        else
            sub = json_incref (value);
        if (!sub || json_object_set_new (copy, key, sub) != 0)
            goto fail;
    }
    return copy;
fail:
    json_decref (copy);
    return NULL;
}

//  A copy of tool with description text (the member that held it, nested or not) and, when
//  not NULL, schema as its parameters / input_schema.
static json_t *s_redescribe (const json_t *tool, const char *text, size_t len, json_t *schema)
{
    json_t *copy = json_copy ((json_t *)tool);
    json_t *doc = json_stringn (text, len);
    json_t *fn = json_object_get (tool, "function");
    int rc = -1;
    if (copy && doc) {
        if (json_is_object (fn)) {
            json_t *fcopy = json_copy (fn);
            rc = fcopy && json_object_set (fcopy, "description", doc) == 0 ? 0 : -1;
            if (rc == 0 && schema)
                rc = json_object_set (fcopy, "parameters", schema);
            if (rc == 0)
                rc = json_object_set (copy, "function", fcopy);
            json_decref (fcopy);
        } else {
            rc = json_object_set (copy, "description", doc);
            if (rc == 0 && schema)
                rc = json_object_set (copy, "input_schema", schema);
        }
    }
    json_decref (doc);
    if (rc != 0) {
        json_decref (copy);
        return NULL;
    }
    return copy;
}

//  The first sentence of text: up to ".", "!" or "?" before white space, or a line end.
static size_t s_first_sentence (const char *text)
{
    size_t i = 0;
    for (; text[i]; i++) {
        if (text[i] == '\n')
            return i;
        if (strchr (".!?", text[i]) && (!text[i + 1] || isspace ((unsigned char)text[i + 1])))
            return i + 1;
    }
    return i;
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
    size_t ntools = json_array_size (tools), nslots = 16;
    while (nslots < 2 * ntools)
        nslots *= 2;
    json_t *messages = ar_chat_view_messages (ctx->request);
    size_t nmessages = json_array_size (messages);
    s_names_t called = {calloc (4096, sizeof (char *)), 0, 4096};
    s_index_t index;
    int irc = s_index_init (&index, ntools);
    const char **names = calloc (ntools, sizeof (char *));
    const char **docs = calloc (ntools, sizeof (char *));
    size_t *prefix = calloc (ntools, sizeof (size_t));
    size_t *family = calloc (ntools, sizeof (size_t));
    size_t *anchor = calloc (ntools, sizeof (size_t));
    size_t *first = calloc (ntools + 1, sizeof (size_t));
    double *score = calloc (ntools, sizeof (double));
    double *famscore = calloc (ntools, sizeof (double));
    bool *famplay = calloc (ntools, sizeof (bool));
    unsigned char *tier = calloc (ntools, 1);
    s_rank_t *ranks = calloc (ntools, sizeof (s_rank_t));
    s_mentions_t mentions = {names, calloc (nslots, sizeof (uint32_t)), nslots - 1,
                             calloc (ntools, sizeof (bool))};
    json_t *kept = json_array ();
    char *text = NULL;
    int rc = -1;
    if (!called.names || irc != 0 || !names || !docs || !prefix || !family || !anchor || !first ||
        !score || !famscore || !famplay || !tier || !ranks || !mentions.slots ||
        !mentions.mentioned || !kept)
        goto done;

    //  The tool documents: name, description after the family prefix, schema.
    for (size_t i = 0; i < ntools; i++) {
        names[i] = ar_chat_view_tool_name (shape, json_array_get (tools, i));
        docs[i] = ar_chat_view_tool_description (shape, json_array_get (tools, i));
    }
    if (s_families (docs, ntools, prefix, family) != 0)
        goto done;
    for (size_t i = 0; i < ntools; i++) {
        json_t *tool = json_array_get (tools, i);
        index.tool = i;
        first[i] = index.nentries;
        s_scan_str (&index, names[i], S_W_NAME);
        if (docs[i])
            s_scan_str (&index, docs[i] + prefix[i], S_W_DOC);
        s_scan_schema (&index, s_schema (tool), 0);
        if (names[i]) {
            size_t s = ar_text_hash (names[i], strlen (names[i])) & mentions.mask;
            while (mentions.slots[s])
                s = (s + 1) & mentions.mask;
            mentions.slots[s] = (uint32_t)i + 1;
        }
    }
    first[ntools] = index.nentries;

    //  Tools already called; names the conversation mentions; the live context: the last user
    //  turn, the tool results after the last assistant turn, and up to two assistant turns.
    index.query = true;
    bool user_seen = false, results_open = true;
    int assistants = 0;
    for (size_t i = nmessages; i-- > 0;) {
        json_t *message = json_array_get (messages, i);
        ar_chat_view_each_call (shape, message, s_add_called, &called);
        ar_chat_role_t role = ar_chat_view_role (shape, message);
        //  Names are mentioned by people and prompts; tool output is most of a request's bytes
        //  and is read (below) only where it is newest.
        if (!ar_chat_view_is_observation (shape, messages, i))
            ar_chat_view_message_text (shape, message, false, s_scan_mentions, &mentions);
        index.budget = S_RESULT_MAX;
        if (role == AR_CHAT_ROLE_ASSISTANT) {
            results_open = false;
            if (assistants < 2) {
                ar_chat_view_message_text (shape, message, false, s_scan, &index);
                assistants++;
            }
        } else if (!user_seen && ar_chat_view_is_user_text (shape, message)) {
            index.budget = SIZE_MAX;
            ar_chat_view_message_text (shape, message, false, s_scan, &index);
            user_seen = true;
            results_open = false;
        } else if (results_open &&
                   (role == AR_CHAT_ROLE_TOOL || ar_chat_view_has_results (shape, message)))
            ar_chat_view_message_text (shape, message, false, s_scan, &index);
        if ((i & 255) == 0 && ar_mono_now () > ctx->deadline)
            goto done;
    }
    json_t *system = json_object_get (ctx->request, "system");
    if (shape == AR_SHAPE_ANTHROPIC_MESSAGES && json_is_string (system))
        s_scan_mentions (json_string_value (system), json_string_length (system), &mentions);
    size_t b;
    json_t *block;
    if (shape == AR_SHAPE_ANTHROPIC_MESSAGES)
        json_array_foreach (system, b, block)
        {
            json_t *btext = json_object_get (block, "text");
            if (json_is_string (btext))
                s_scan_mentions (json_string_value (btext), json_string_length (btext), &mentions);
        }
    if (called.count == called.max) {
        rc = 0; // cannot be sure which tools were called: keep them all
        goto done;
    }
    const char *choice = ar_chat_view_tool_choice_name (shape, ctx->request);

    //  Scores; families in play; rank the unprotected tools.
    size_t candidates = 0;
    for (size_t i = 0; i < ntools; i++) {
        for (size_t e = first[i]; e < first[i + 1]; e++) {
            s_entry_t entry = index.entries[e];
            if (!index.hit[entry.word])
                continue;
            double df = index.df[entry.word];
            score[i] += entry.weight * log (1 + (ntools - df + 0.5) / (df + 0.5));
        }
        bool protect = s_protected (names[i], choice, &called);
        if (prefix[i]) {
            if (famscore[family[i]] < score[i])
                famscore[family[i]] = score[i];
            famplay[family[i]] |= protect;
        }
        anchor[i] = SIZE_MAX;
        tier[i] = S_PROTECTED;
        if (!protect)
            ranks[candidates++] = (s_rank_t){i, score[i]};
    }
    if (candidates <= (size_t)keep) {
        rc = 0;
        goto done;
    }
    qsort (ranks, candidates, sizeof (s_rank_t), s_by_score);
    double best = ranks[0].score;
    for (size_t r = 0; r < candidates; r++) {
        size_t i = ranks[r].index;
        double s = ranks[r].score, fs = famscore[family[i]];
        if (r < (size_t)keep)
            tier[i] = s > 0 && s >= S_WHOLE_PCT * best ? S_WHOLE : S_COMPACT;
        else if (mentions.mentioned[i] || (s > 0 && s >= S_COMPACT_PCT * best) ||
                 (prefix[i] && (famplay[family[i]] || (fs > 0 && fs >= S_FAMILY_PCT * best))))
            tier[i] = S_COMPACT;
        else
            tier[i] = S_DROP;
    }

    //  The survivors in order: compact ones cut to their first sentence, whole ones whose
    //  family prefix an earlier kept tool shows point to it; each only when it saves tokens.
    size_t ndropped = 0, nshort = 0;
    for (size_t i = 0; i < ntools; i++) {
        json_t *tool = json_array_get (tools, i), *out = NULL;
        const char *doc = docs[i], *body = doc ? doc + prefix[i] : NULL;
        size_t fam = prefix[i] ? family[i] : SIZE_MAX;
        if (tier[i] == S_DROP) {
            ndropped++;
            continue;
        }
        if (tier[i] == S_COMPACT && doc) {
            size_t len = s_first_sentence (body);
            bool cut = false;
            json_t *schema = (json_t *)s_schema (tool);
            json_t *cutschema =
                schema && S_CUT_PARAMS ? s_cut_schema (ctx, schema, 0, false, NULL, &cut) : NULL;
            if (schema && S_CUT_PARAMS && !cutschema)
                goto done;
            bool shorter = len && len < strlen (doc); // a cut at a sentence end
            if (shorter || cut)
                out = s_redescribe (tool, shorter ? body : doc, shorter ? len : strlen (doc),
                                    cut ? cutschema : NULL);
            json_decref (cutschema);
            if ((shorter || cut) && !out)
                goto done;
        } else if (tier[i] == S_WHOLE && doc && fam != SIZE_MAX && anchor[fam] != SIZE_MAX) {
            const char *to = names[anchor[fam]];
            size_t size = strlen (to) + strlen (body) + 16;
            free (text);
            if (!(text = malloc (size)))
                goto done;
            int len = snprintf (text, size, "(see %s) %s", to, body);
            if (s_tokens (ctx, text, (size_t)len) < s_tokens (ctx, doc, strlen (doc)) &&
                !(out = s_redescribe (tool, text, (size_t)len, NULL)))
                goto done;
        }
        if (!out && doc && names[i] && fam != SIZE_MAX && anchor[fam] == SIZE_MAX)
            anchor[fam] = i; // shows the family prefix
        nshort += out != NULL;
        if ((out ? json_array_append_new (kept, out) : json_array_append (kept, tool)) != 0)
            goto done;
    }
    if (ndropped == 0 && nshort == 0) {
        rc = 0;
        goto done;
    }
    free (text);
    text = json_dumps (tools, JSON_COMPACT | JSON_REAL_PRECISION (17));
    char id[33] = "";
    int put = text ? ctx->stash->put (ctx->stash->self, text, strlen (text), id) : -1;
    //  Only now is the request changed: a new array in place of the old one.
    if (put != 0 || json_object_set (ctx->request, "tools", kept) != 0)
        goto done;
    result->applied = true;
    snprintf (result->note, sizeof result->note, "kept %zu of %zu tools, %zu shortened; stash %s",
              ntools - ndropped, ntools, nshort, id);
    rc = 0;
done:
    free (called.names);
    s_index_fini (&index);
    free (names);
    free (docs);
    free (prefix);
    free (family);
    free (anchor);
    free (first);
    free (score);
    free (famscore);
    free (famplay);
    free (tier);
    free (ranks);
    free (mentions.slots);
    free (mentions.mentioned);
    free (text);
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
    assert (json_array_size (back) == 8); // the whole input array
    assert (strcmp (ar_chat_view_tool_name (AR_SHAPE_OPENAI_CHAT, json_array_get (back, 0)),
                    "read_file") == 0);
    json_decref (back);
    assert (strstr (result.note, "kept 4 of 8 tools, 0 shortened; stash 0000"));
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

    //  A family (shared boilerplate prefix) in play is kept, its low scorers cut to their first
    //  sentence (required parameters' descriptions too, optional ones' dropped); an unrelated
    //  tool is dropped. Anthropic shape.
    const char *pre = "This tool belongs to the vehicle system, which controls the car. "
                      "Tool description: ";
    const char *fam[] = {"startEngine", "Starts the engine. Needs ignition.",
                         "lockDoors",   "Locks the doors. All of them.",
                         "setLights",   "Sets the lights. On or off.",
                         "postTweet",   "Posts a tweet. Short text."};
    tools = json_array ();
    for (size_t i = 0; i < 4; i++) {
        char doc[256];
        snprintf (doc, sizeof doc, "%s%s", i < 3 ? pre : "", fam[2 * i + 1]);
        json_array_append_new (
            tools, json_pack ("{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:[s]}}", "name",
                              fam[2 * i], "description", doc, "input_schema", "type", "object",
                              "properties", "mode", "type", "string", "description",
                              "The mode. [Enum]: [\"a\", \"b\"]", "delay", "type", "integer",
                              "description", "Seconds to wait first.", "required", "mode"));
    }
    request = json_pack ("{s:s, s:O, s:[{s:s, s:s}]}", "model", "m", "tools", tools, "messages",
                         "role", "user", "content", "please start the engine");
    ctx = (ar_strategy_ctx_t){.shape = AR_SHAPE_ANTHROPIC_MESSAGES,
                              .request = request,
                              .stash = &sink,
                              .deadline = INT64_MAX};
    params = json_pack ("{s:i}", "keep", 1);
    result = (ar_strategy_result_t){.applied = false};
    assert (s_apply (&ctx, params, &result) == 0 && result.applied);
    json_t *out = json_object_get (request, "tools");
    assert (json_array_size (out) == 3);
    assert (strstr (ar_chat_view_tool_description (ctx.shape, json_array_get (out, 0)), pre));
    assert (strcmp (ar_chat_view_tool_description (ctx.shape, json_array_get (out, 1)),
                    "Locks the doors.") == 0);
    assert (strcmp (json_string_value (json_object_get (
                        json_object_get (json_object_get (json_object_get (json_array_get (out, 2),
                                                                           "input_schema"),
                                                          "properties"),
                                         "mode"),
                        "description")),
                    "The mode.") == 0);
    json_t *delay = json_object_get (
        json_object_get (json_object_get (json_array_get (out, 2), "input_schema"), "properties"),
        "delay");
    assert (json_object_size (delay) == 1 && json_object_get (delay, "type"));
    assert (strstr (result.note, "kept 3 of 4 tools, 2 shortened; stash"));
    back = json_loads (stash.content[1], 0, NULL);
    assert (json_equal (back, tools));
    json_decref (back);
    json_decref (tools);
    json_decref (params);
    json_decref (request);

    //  Schema members that say nothing go from compact tools: an empty description or
    //  required list, ToolBench's "optional" list when it names exactly the properties
    //  "required" leaves out. Example values, defaults and required stay. (Tool definitions
    //  as ToolBench's RapidAPI answers have them.)
    const char *rapid = "This is the subfunction for tool \"trackingmore_v2\", you can use this "
                        "tool.The description of this function is: ";
    tools = json_array ();
    json_array_append_new (
        tools, json_pack ("{s:s, s:{s:s, s:s, s:{s:s, s:{s:{s:s, s:s, s:s}}, s:[s], s:[]}}}",
                          "type", "function", "function", "name",
                          "carriers_detect_for_trackingmore_v2", "description",
                          "This is the subfunction for tool \"trackingmore_v2\", you can use this "
                          "tool.The description of this function is: \"Detect carrier by providing "
                          "tracking number\"",
                          "parameters", "type", "object", "properties", "trackingnumber", "type",
                          "string", "description", "The tracking number of parcel", "example_value",
                          "YT2003521266065328", "required", "trackingnumber", "optional"));
    const char *others[] = {"packages_track_deprecated_for_trackingmore_v2",
                            "carriers_list_for_trackingmore_v2", "user_info_for_trackingmore_v2"};
    for (size_t i = 0; i < 3; i++) {
        char doc[256];
        snprintf (doc, sizeof doc, "%s\"%s. Returns JSON.\"", rapid,
                  i == 0   ? "Get tracking information of specific package"
                  : i == 1 ? "List all carriers"
                           : "Get user info");
        json_t *schema =
            i == 0
                ? json_pack ("{s:s, s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}, s:[s], s:[s]}",
                             "type", "object", "properties", "carriercode", "type", "string",
                             "description", "Carrier code gotten from .../carriers/list",
                             "example_value", "yunexpress", "lang", "type", "string", "description",
                             "One of the following : en|cn|es|it|ru", "example_value", "en",
                             "required", "carriercode", "optional", "lang")
                : json_pack ("{s:s, s:{}, s:[], s:[]}", "type", "object", "properties", "required",
                             "optional");
        json_array_append_new (tools, json_pack ("{s:s, s:{s:s, s:s, s:o}}", "type", "function",
                                                 "function", "name", others[i], "description", doc,
                                                 "parameters", schema));
    }
    request =
        json_pack ("{s:s, s:O, s:[{s:s, s:s}]}", "model", "m", "tools", tools, "messages", "role",
                   "user", "content", "Detect the carrier of tracking number YT2003521266065328.");
    ctx = (ar_strategy_ctx_t){
        .shape = AR_SHAPE_OPENAI_CHAT, .request = request, .stash = &sink, .deadline = INT64_MAX};
    params = json_pack ("{s:i}", "keep", 1);
    result = (ar_strategy_result_t){.applied = false};
    assert (s_apply (&ctx, params, &result) == 0 && result.applied);
    out = json_object_get (request, "tools");
    size_t compact = 0;
    bool track_seen = false;
    for (size_t i = 0; i < json_array_size (out); i++) {
        json_t *tool = json_array_get (out, i);
        const char *name = ar_chat_view_tool_name (ctx.shape, tool);
        json_t *schema = json_object_get (json_object_get (tool, "function"), "parameters");
        json_t *original = NULL;
        for (size_t j = 0; j < json_array_size (tools); j++)
            if (strcmp (ar_chat_view_tool_name (ctx.shape, json_array_get (tools, j)), name) == 0)
                original = json_array_get (tools, j);
        assert (original);
        if (json_equal (tool, original))
            continue; // kept whole
        compact++;
        //  Compact: nothing that says nothing, everything that says something.
        json_t *required = json_object_get (schema, "required");
        assert (!required || json_array_size (required));
        assert (!json_object_get (schema, "optional"));
        if (strcmp (name, "packages_track_deprecated_for_trackingmore_v2") == 0) {
            track_seen = true;
            json_t *props = json_object_get (schema, "properties");
            assert (!json_object_get (schema, "optional")); // ["lang"]: what required implies
            assert (json_object_get (json_object_get (props, "carriercode"), "description"));
            assert (!json_object_get (json_object_get (props, "lang"), "description"));
            assert (strcmp (json_string_value (
                                json_object_get (json_object_get (props, "lang"), "example_value")),
                            "en") == 0);
        }
    }
    assert (compact >= 2 && track_seen);
    json_decref (tools);
    json_decref (params);
    json_decref (request);
    if (verbose)
        printf ("strategy_tool_pruning: ok\n");
}
