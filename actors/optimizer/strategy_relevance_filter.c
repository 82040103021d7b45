/*  strategy_relevance_filter: keep only the lines of a large tool output that bear on the live
    question, and stash the rest.

    Which outputs: tool results (OpenAI tool/function messages, string or text-part content;
    Anthropic tool_result blocks, string or text-block content) of at least minTokens tokens,
    before the latest round. The latest round (everything after the last assistant message),
    the last user turn and the last user text are never touched: that is what the model reads
    right now, and the pipeline promises them byte-identical.

    The live question: the last user text a person wrote (elision markers skipped), plus the
    last assistant message's text and tool calls (agents state their intent there), plus the
    arguments of the latest assistant tool call when that is an earlier message. It is read
    three ways:
    - terms: lower-cased runs of letters and digits, snake_case and camelCase split, at least
      two characters, stopwords dropped (at most S_TERMS_MAX);
    - symbols: identifiers that look like code (an "_" or a lower-to-upper case change), kept
      as written: a line holding one as a whole identifier is always kept;
    - paths: words with a "/" or a file extension (and their base names): a line holding one
      is always kept.

    Scoring: BM25 (k1 1.2, b 0.75) over windows of three lines centred on each line, IDF over
    the windows of that one output. A three-line window lets a line next to a hit (the body
    under a matching header, the message after a matching file name) score too; the line's own
    window score ranks it. The keepLines best lines with a score above zero are kept, each with
    contextLines either side, plus every line naming a symbol or path of the question, plus the
    first and last S_EDGE lines (headers, summaries). Ties go to the earlier line:
    deterministic.

    Each run of at least S_MIN_GAP dropped lines becomes one line "[anyray: N lines elided;
    retrieve with id <id>]". The stash gets one entry per tool result (every marker of it names
    that id): the
    tool result as the JSON object it was (the OpenAI tool message, the Anthropic tool_result
    block), whose content is the exact original text.
    A result is rewritten only when its new text counts fewer tokens; without a stash nothing
    is.
*/
#include "ar_chat_view.h"
#include "ar_text_hash.h"
#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TERMS_MAX   128 // distinct query terms
#define S_SYMBOLS_MAX 64  // distinct query symbols
#define S_PATHS_MAX   24  // distinct query paths (with base names)
#define S_TERM_MAX    32  // longer terms are cut (they still match their prefix)
#define S_SYMBOL_MAX  80
#define S_PATH_MAX    200
#define S_EDGE        5 // first and last lines always kept
#define S_MIN_GAP     3 // a marker costs ~30 tokens: shorter gaps are kept
#define S_RADIUS      1 // lines each side of a line in its scoring window
#define S_K1          1.2
#define S_B           0.75
#define S_MARKER_EST  40 // tokens one marker costs at most (text ~14, id up to ~26)

//  --------------------------------------------------------------------------------------------
//  A small string set: open addressing, index + 1 in slots.

typedef struct {
    char *names;     // count * width bytes
    uint16_t *slots; // 0 = empty
    size_t count, max, width, mask;
} s_set_t;

static int s_set_init (s_set_t *set, size_t max, size_t width)
{
    size_t nslots = 16;
    while (nslots < 4 * max)
        nslots *= 2;
    *set = (s_set_t){calloc (max, width), calloc (nslots, sizeof (uint16_t)), 0, max, width,
                     nslots - 1};
    return set->names && set->slots ? 0 : -1;
}

static void s_set_fini (s_set_t *set)
{
    free (set->names);
    free (set->slots);
}

static uint16_t *s_set_slot (const s_set_t *set, const char *name, size_t len)
{
    uint64_t h = ar_text_hash (name, len);
    for (size_t i = h & set->mask;; i = (i + 1) & set->mask) {
        uint16_t s = set->slots[i];
        if (!s)
            return &set->slots[i];
        const char *have = set->names + (s - 1) * set->width;
        if (strncmp (have, name, len) == 0 && have[len] == 0)
            return &set->slots[i];
    }
}

//  Index of name, or -1.
static int s_set_find (const s_set_t *set, const char *name, size_t len)
{
    if (len >= set->width)
        return -1;
    return (int)*s_set_slot (set, name, len) - 1;
}

static void s_set_add (s_set_t *set, const char *name, size_t len)
{
    if (len >= set->width || set->count == set->max)
        return;
    uint16_t *slot = s_set_slot (set, name, len);
    if (*slot)
        return;
    memcpy (set->names + set->count * set->width, name, len);
    *slot = (uint16_t)++set->count;
}

//  --------------------------------------------------------------------------------------------
//  Words

static const char *const s_stopwords[] = {
    "a",      "about", "after",  "all",  "also",  "an",    "and",   "any",   "are",   "as",
    "at",     "be",    "been",   "but",  "by",    "can",   "could", "do",    "does",  "for",
    "from",   "had",   "has",    "have", "he",    "her",   "here",  "his",   "how",   "i",
    "if",     "in",    "into",   "is",   "it",    "its",   "just",  "let",   "like",  "me",
    "my",     "no",    "not",    "now",  "of",    "on",    "one",   "or",    "our",   "out",
    "please", "she",   "should", "so",   "some",  "than",  "that",  "the",   "their", "them",
    "then",   "there", "these",  "they", "this",  "those", "to",    "too",   "up",    "us",
    "use",    "very",  "was",    "we",   "were",  "what",  "when",  "where", "which", "while",
    "who",    "why",   "will",   "with", "would", "you",   "your",
};

static bool s_stopword (const char *term)
{
    for (size_t i = 0; i < sizeof s_stopwords / sizeof s_stopwords[0]; i++)
        if (strcmp (s_stopwords[i], term) == 0)
            return true;
    return false;
}

static bool s_ident_char (unsigned char c)
{
    return isalnum (c) || c == '_';
}

//  Call fn for each term of the identifier run word[0..len): split on "_", on a lower-to-upper
//  change and before the last capital of an acronym ("HTTPServer": http, server), and between
//  letters and digits; lower-cased, cut to S_TERM_MAX.
typedef void (s_term_fn) (const char *term, size_t len, void *arg);

static void s_split (const char *word, size_t len, s_term_fn *fn, void *arg)
{
    char term[S_TERM_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)word[i] : '_';
        bool split = c == '_';
        if (!split && n && i) {
            unsigned char p = (unsigned char)word[i - 1];
            unsigned char q = i + 1 < len ? (unsigned char)word[i + 1] : 0;
            split = (isupper (c) && (islower (p) || isdigit (p))) ||
                    (isupper (c) && isupper (p) && islower (q)) || (isdigit (c) != isdigit (p));
        }
        if (split && n) {
            if (n >= 2)
                fn (term, n < S_TERM_MAX ? n : S_TERM_MAX, arg);
            n = 0;
        }
        if (c != '_' && n < S_TERM_MAX)
            term[n++] = (char)tolower (c);
        else if (c != '_')
            n++;
    }
}

static bool s_symbol_like (const char *word, size_t len)
{
    if (len < 3 || isdigit ((unsigned char)word[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if ((word[i] == '_' && i + 1 < len) ||
            (isupper ((unsigned char)word[i]) && islower ((unsigned char)word[i - 1])))
            return true;
    return false;
}

static bool s_path_char (unsigned char c)
{
    return isalnum (c) || c == '_' || c == '.' || c == '/' || c == '-' || c == '~';
}

//  A word with a "/" and a letter, or name.ext with a letter in ext.
static bool s_path_like (const char *word, size_t len)
{
    if (len < 4)
        return false;
    bool slash = false, letter = false;
    for (size_t i = 0; i < len; i++) {
        slash |= word[i] == '/';
        letter |= isalpha ((unsigned char)word[i]) != 0;
    }
    if (slash)
        return letter;
    const char *dot = memrchr (word, '.', len);
    if (!dot || dot == word)
        return false;
    size_t ext = len - (size_t)(dot - word) - 1;
    bool ext_letter = false;
    for (size_t i = 1; i <= ext; i++)
        ext_letter |= isalpha ((unsigned char)dot[i]) != 0;
    return ext >= 1 && ext <= 6 && ext_letter;
}

//  --------------------------------------------------------------------------------------------
//  The live question

typedef struct {
    s_set_t terms, symbols;
    char paths[S_PATHS_MAX][S_PATH_MAX];
    size_t npaths;
} s_query_t;

static void s_add_term (const char *term, size_t len, void *arg)
{
    s_query_t *query = (s_query_t *)arg;
    char copy[S_TERM_MAX + 1];
    memcpy (copy, term, len);
    copy[len] = 0;
    if (!s_stopword (copy))
        s_set_add (&query->terms, term, len);
}

static void s_add_path (s_query_t *query, const char *path, size_t len)
{
    if (len < 4 || len >= S_PATH_MAX || query->npaths == S_PATHS_MAX)
        return;
    for (size_t i = 0; i < query->npaths; i++)
        if (strncmp (query->paths[i], path, len) == 0 && query->paths[i][len] == 0)
            return;
    memcpy (query->paths[query->npaths], path, len);
    query->paths[query->npaths++][len] = 0;
}

static void s_query_text (const char *text, size_t len, void *arg)
{
    s_query_t *query = (s_query_t *)arg;
    if (len >= 9 && memcmp (text, "[anyray: ", 9) == 0)
        return; // an elision marker, not the question
    for (size_t i = 0; i < len;) {
        if (!s_path_char ((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && s_path_char ((unsigned char)text[i]))
            i++;
        //  Trim what ends a sentence or starts a relative path.
        size_t a = start, b = i;
        while (b > a && (text[b - 1] == '.' || text[b - 1] == '/' || text[b - 1] == '-'))
            b--;
        while (b - a > 2 && text[a] == '.' && text[a + 1] == '/')
            a += 2;
        if (s_path_like (text + a, b - a)) {
            s_add_path (query, text + a, b - a);
            const char *slash = memrchr (text + a, '/', b - a);
            if (slash && s_path_like (slash + 1, (size_t)(text + b - slash - 1)))
                s_add_path (query, slash + 1, (size_t)(text + b - slash - 1));
        }
        //  The identifiers inside the word: symbols and terms.
        for (size_t j = start; j < i;) {
            if (!s_ident_char ((unsigned char)text[j])) {
                j++;
                continue;
            }
            size_t w = j;
            while (j < i && s_ident_char ((unsigned char)text[j]))
                j++;
            if (s_symbol_like (text + w, j - w))
                s_set_add (&query->symbols, text + w, j - w);
            s_split (text + w, j - w, s_add_term, query);
        }
    }
}

//  The text of a user message a person wrote: string content, text parts/blocks only.
static void s_user_text (const json_t *message, s_query_t *query)
{
    json_t *content = json_object_get (message, "content");
    if (json_is_string (content))
        s_query_text (json_string_value (content), json_string_length (content), query);
    size_t i;
    json_t *block;
    json_array_foreach (content, i, block)
    {
        json_t *text = json_object_get (block, "text");
        if (json_is_string (text))
            s_query_text (json_string_value (text), json_string_length (text), query);
    }
}

static int s_query_init (s_query_t *query, ar_shape_t shape, json_t *messages)
{
    memset (query, 0, sizeof *query);
    if (s_set_init (&query->terms, S_TERMS_MAX, S_TERM_MAX + 1) != 0 ||
        s_set_init (&query->symbols, S_SYMBOLS_MAX, S_SYMBOL_MAX) != 0)
        return -1;
    size_t n = json_array_size (messages);
    bool user = false, assistant = false, call = false;
    for (size_t i = n; i-- > 0 && !(user && call);) {
        json_t *message = json_array_get (messages, i);
        ar_chat_role_t role = ar_chat_view_role (shape, message);
        if (!user && ar_chat_view_is_user_text (shape, message)) {
            s_user_text (message, query);
            user = true;
        } else if (role == AR_CHAT_ROLE_ASSISTANT) {
            bool calls = ar_chat_view_each_call (shape, message, NULL, NULL) > 0;
            if (!assistant || (!call && calls))
                ar_chat_view_message_text (shape, message, true, s_query_text, query);
            assistant = true;
            call |= calls;
        }
    }
    return 0;
}

static void s_query_fini (s_query_t *query)
{
    s_set_fini (&query->terms);
    s_set_fini (&query->symbols);
}

//  --------------------------------------------------------------------------------------------
//  One text piece: lines, scores, the plan of what stays

typedef struct {
    uint32_t line;
    uint16_t term;
} s_hit_t;

typedef struct {
    const char *text;
    size_t len, nlines;
    size_t *starts; // nlines + 1 offsets; line i is [starts[i], starts[i+1])
    char *keep;     // per line
    size_t kept, gaps;
} s_plan_t;

static void s_plan_fini (s_plan_t *plan)
{
    free (plan->starts);
    free (plan->keep);
    plan->starts = NULL;
    plan->keep = NULL;
}

typedef struct {
    size_t line;
    double score;
    uint32_t own; // hits on the line itself
} s_rank_t;

static int s_by_score (const void *a, const void *b)
{
    const s_rank_t *x = (const s_rank_t *)a, *y = (const s_rank_t *)b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    if (x->own != y->own)
        return x->own < y->own ? 1 : -1;
    return x->line < y->line ? -1 : 1;
}

typedef struct {
    const s_query_t *query;
    s_hit_t *hits;
    size_t nhits, max;
    uint32_t line, length;
    bool overflow;
} s_scan_t;

static void s_scan_term (const char *term, size_t len, void *arg)
{
    s_scan_t *scan = (s_scan_t *)arg;
    scan->length++;
    int q = s_set_find (&scan->query->terms, term, len);
    if (q < 0)
        return;
    if (scan->nhits == scan->max) {
        size_t max = scan->max ? scan->max * 2 : 1024;
        s_hit_t *hits = realloc (scan->hits, max * sizeof (s_hit_t));
        if (!hits) {
            scan->overflow = true;
            return;
        }
        scan->hits = hits;
        scan->max = max;
    }
    scan->hits[scan->nhits++] = (s_hit_t){scan->line, (uint16_t)q};
}

//  Plan one piece. Returns 1 when some lines go, 0 when it stays whole, -1 on failure.
static int s_plan (s_plan_t *plan, const char *text, size_t len, const s_query_t *query,
                   size_t keep_lines, size_t context)
{
    *plan = (s_plan_t){.text = text, .len = len};
    size_t nlines = 0;
    for (const char *p = text; p && p < text + len;
         p = memchr (p, '\n', (size_t)(text + len - p)), p = p ? p + 1 : NULL)
        nlines++;
    if (nlines < keep_lines + 2 * S_EDGE + S_MIN_GAP)
        return 0;
    plan->nlines = nlines;
    plan->starts = malloc ((nlines + 1) * sizeof (size_t));
    plan->keep = calloc (nlines, 1);
    size_t *length = calloc (nlines, sizeof (size_t));
    size_t *first = calloc (nlines + 1, sizeof (size_t)); // first hit of each line
    s_rank_t *ranks = calloc (nlines, sizeof (s_rank_t));
    size_t nterms = query->terms.count;
    double *idf = calloc (nterms + 1, sizeof (double));
    uint32_t *tf = calloc (nterms + 1, sizeof (uint32_t));
    int64_t *last = calloc (nterms + 1, sizeof (int64_t));
    s_scan_t scan = {.query = query};
    int rc = -1;
    if (!plan->starts || !plan->keep || !length || !first || !ranks || !idf || !tf || !last)
        goto done;
    size_t l = 0;
    plan->starts[0] = 0;
    for (const char *p = text; l < nlines; l++) {
        const char *nl = memchr (p, '\n', (size_t)(text + len - p));
        const char *end = nl ? nl : text + len;
        plan->starts[l + 1] = nl ? (size_t)(nl + 1 - text) : len;
        //  Terms and symbols of the line.
        scan.line = (uint32_t)l;
        scan.length = 0;
        first[l] = scan.nhits;
        for (const char *c = p; c < end;) {
            if (!s_ident_char ((unsigned char)*c)) {
                c++;
                continue;
            }
            const char *w = c;
            while (c < end && s_ident_char ((unsigned char)*c))
                c++;
            if (query->symbols.count && s_set_find (&query->symbols, w, (size_t)(c - w)) >= 0)
                plan->keep[l] = 1;
            if (nterms)
                s_split (w, (size_t)(c - w), s_scan_term, &scan);
        }
        length[l] = scan.length;
        p = end + 1;
    }
    first[nlines] = scan.nhits;
    if (scan.overflow)
        goto done;
    //  Lines naming a path of the question.
    for (size_t i = 0; i < query->npaths; i++) {
        size_t plen = strlen (query->paths[i]);
        for (const char *at = memmem (text, len, query->paths[i], plen); at;
             at = memmem (at + 1, (size_t)(text + len - at - 1), query->paths[i], plen)) {
            size_t off = (size_t)(at - text), lo = 0, hi = nlines;
            while (hi - lo > 1) { // the line holding off
                size_t mid = (lo + hi) / 2;
                if (plan->starts[mid] <= off)
                    lo = mid;
                else
                    hi = mid;
            }
            plan->keep[lo] = 1;
        }
    }
    //  BM25 over the windows [i - S_RADIUS, i + S_RADIUS]: document frequencies first (hits
    //  are in line order, so each window is counted once per term).
    for (size_t q = 0; q < nterms; q++)
        last[q] = -1;
    size_t *df = calloc (nterms + 1, sizeof (size_t));
    if (!df)
        goto done;
    for (size_t h = 0; h < scan.nhits; h++) {
        s_hit_t hit = scan.hits[h];
        int64_t lo = (int64_t)hit.line - S_RADIUS, hi = (int64_t)hit.line + S_RADIUS;
        if (lo <= last[hit.term])
            lo = last[hit.term] + 1;
        if (lo < 0)
            lo = 0;
        if (hi >= (int64_t)nlines)
            hi = (int64_t)nlines - 1;
        if (hi >= lo)
            df[hit.term] += (size_t)(hi - lo + 1);
        if (hi > last[hit.term])
            last[hit.term] = hi;
    }
    double total = 0;
    for (size_t i = 0; i < nlines; i++)
        total += (double)length[i];
    double avgdl = total * (2 * S_RADIUS + 1) / (double)nlines;
    if (avgdl <= 0)
        avgdl = 1;
    for (size_t q = 0; q < nterms; q++)
        idf[q] = log (1 + ((double)nlines - (double)df[q] + 0.5) / ((double)df[q] + 0.5));
    free (df);
    for (size_t i = 0; i < nlines; i++) {
        size_t lo = i >= S_RADIUS ? i - S_RADIUS : 0;
        size_t hi = i + S_RADIUS < nlines ? i + S_RADIUS : nlines - 1;
        double dl = 0;
        for (size_t j = lo; j <= hi; j++)
            dl += (double)length[j];
        for (size_t h = first[lo]; h < first[hi + 1]; h++)
            tf[scan.hits[h].term]++;
        double score = 0;
        double norm = S_K1 * (1 - S_B + S_B * dl / avgdl);
        for (size_t h = first[lo]; h < first[hi + 1]; h++) {
            uint16_t q = scan.hits[h].term;
            if (!tf[q])
                continue; // counted already
            score += idf[q] * (tf[q] * (S_K1 + 1)) / (tf[q] + norm);
            tf[q] = 0;
        }
        ranks[i] = (s_rank_t){i, score, (uint32_t)(first[i + 1] - first[i])};
    }
    qsort (ranks, nlines, sizeof (s_rank_t), s_by_score);
    for (size_t r = 0; r < keep_lines && r < nlines && ranks[r].score > 0; r++) {
        size_t i = ranks[r].line;
        size_t lo = i >= context ? i - context : 0;
        size_t hi = i + context < nlines ? i + context : nlines - 1;
        for (size_t j = lo; j <= hi; j++)
            plan->keep[j] = plan->keep[j] ? plan->keep[j] : 2;
    }
    for (size_t i = 0; i < S_EDGE; i++)
        plan->keep[i] = plan->keep[nlines - 1 - i] = 1;
    //  Gaps shorter than S_MIN_GAP stay: their marker would cost more than they do.
    for (size_t i = 0; i < nlines;) {
        if (plan->keep[i]) {
            plan->kept++;
            i++;
            continue;
        }
        size_t j = i;
        while (j < nlines && !plan->keep[j])
            j++;
        if (j - i < S_MIN_GAP) {
            for (size_t k = i; k < j; k++)
                plan->keep[k] = 1;
            plan->kept += j - i;
        } else
            plan->gaps++;
        i = j;
    }
    rc = plan->gaps > 0;
done:
    free (length);
    free (first);
    free (ranks);
    free (idf);
    free (tf);
    free (last);
    free (scan.hits);
    if (rc != 1)
        s_plan_fini (plan);
    return rc;
}

//  The piece with each gap replaced by its marker line; caller frees. NULL when out of memory.
static char *s_render (const s_plan_t *plan, const char *id, size_t *out_len)
{
    size_t max = plan->len + (plan->gaps + 1) * 128;
    char *out = malloc (max), *at = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < plan->nlines;) {
        size_t start = plan->starts[i];
        if (plan->keep[i]) {
            size_t j = i;
            while (j < plan->nlines && plan->keep[j])
                j++;
            memcpy (at, plan->text + start, plan->starts[j] - start);
            at += plan->starts[j] - start;
            i = j;
            continue;
        }
        size_t j = i;
        while (j < plan->nlines && !plan->keep[j])
            j++;
        //  A gap is never last (the last lines are kept), so its marker is a whole line.
        at += snprintf (at, 128, "[anyray: %zu lines elided; retrieve with id %s]\n", j - i, id);
        i = j;
    }
    *out_len = (size_t)(at - out);
    return out;
}

//  --------------------------------------------------------------------------------------------
//  Tool results in both shapes

//  The text pieces of one result content: the string itself, or each text part/block.
static size_t s_pieces (json_t *content, json_t **pieces, size_t max)
{
    if (json_is_string (content)) {
        pieces[0] = content;
        return 1;
    }
    size_t n = 0, i;
    json_t *block;
    json_array_foreach (content, i, block)
    {
        json_t *text = json_object_get (block, "text");
        if (n < max && json_is_string (text) &&
            (!json_object_get (block, "type") ||
             strcmp (json_string_value (json_object_get (block, "type")) ?: "", "text") == 0))
            pieces[n++] = text;
    }
    return n;
}

//  The content with each planned piece replaced by its rendering (pieces without a plan kept
//  by reference). New reference, or NULL.
static json_t *s_rebuild (json_t *content, s_plan_t *plans, json_t **pieces, size_t npieces,
                          const char *id)
{
    if (json_is_string (content)) {
        size_t len;
        char *text = s_render (&plans[0], id, &len);
        json_t *out = text ? json_stringn (text, len) : NULL;
        free (text);
        return out;
    }
    json_t *out = json_copy (content);
    for (size_t p = 0; out && p < npieces; p++) {
        if (!plans[p].keep)
            continue;
        for (size_t i = 0; i < json_array_size (out); i++) {
            json_t *block = json_array_get (out, i);
            if (json_object_get (block, "text") != pieces[p])
                continue;
            size_t len;
            char *text = s_render (&plans[p], id, &len);
            json_t *copy = json_copy (block);
            json_t *value = text ? json_stringn (text, len) : NULL;
            free (text);
            if (!copy || !value || json_object_set_new (copy, "text", value) != 0 ||
                json_array_set_new (out, i, copy) != 0) {
                json_decref (copy);
                json_decref (out);
                return NULL;
            }
            break;
        }
    }
    return out;
}

//  Tokens of one text as a message of its own (hits the view's per-thread memo).
static int64_t s_text_tokens (ar_strategy_ctx_t *ctx, json_t *text)
{
    json_t *message =
        json_pack ("{s:s, s:O}", "role", ctx->shape == AR_SHAPE_OPENAI_CHAT ? "tool" : "user",
                   "content", text);
    int64_t tokens =
        message ? ar_chat_view_message_tokens (ctx->shape, message, ctx->tokenizer) : -1;
    json_decref (message);
    return tokens;
}

#define S_PIECES_MAX 16

typedef struct {
    size_t results, pieces, lines_in, lines_kept;
    int64_t before, after;
} s_stats_t;

//  Filter one result content. Returns a new content (new reference) when it shrinks, NULL to
//  keep it (or on failure, with *failed set).
static json_t *s_filter (ar_strategy_ctx_t *ctx, json_t *holder, const s_query_t *query,
                         int64_t min_tokens, size_t keep_lines, size_t context, s_stats_t *stats,
                         bool *failed)
{
    json_t *content = json_object_get (holder, "content");
    json_t *pieces[S_PIECES_MAX];
    s_plan_t plans[S_PIECES_MAX];
    size_t npieces = s_pieces (content, pieces, S_PIECES_MAX), planned = 0;
    int64_t before = 0, estimate = 0;
    json_t *out = NULL;
    memset (plans, 0, sizeof plans);
    for (size_t p = 0; p < npieces; p++) {
        size_t len = json_string_length (pieces[p]);
        if ((int64_t)len < min_tokens) // a token is at least one byte
            continue;
        int64_t tokens = s_text_tokens (ctx, pieces[p]);
        if (tokens < 0) {
            *failed = true;
            goto done;
        }
        if (tokens < min_tokens)
            continue;
        int rc = s_plan (&plans[p], json_string_value (pieces[p]), len, query, keep_lines, context);
        if (rc < 0) {
            *failed = true;
            goto done;
        }
        if (rc == 0)
            continue;
        //  Rough saving: bytes dropped at the piece's own bytes-per-token, minus the markers.
        size_t dropped = 0;
        for (size_t i = 0; i < plans[p].nlines; i++)
            if (!plans[p].keep[i])
                dropped += plans[p].starts[i + 1] - plans[p].starts[i];
        estimate += (int64_t)((double)tokens * (double)dropped / (double)len) -
                    (int64_t)plans[p].gaps * S_MARKER_EST;
        before += tokens;
        planned++;
    }
    if (!planned || estimate <= 0)
        goto done;
    //  One stash entry per result: the message or block that holds it, as it was.
    char *original = json_dumps (holder, JSON_COMPACT);
    char id[33] = "";
    int put = original ? ctx->stash->put (ctx->stash->self, original, strlen (original), id) : -1;
    free (original);
    if (put != 0) {
        *failed = true;
        goto done;
    }
    out = s_rebuild (content, plans, pieces, npieces, id);
    if (!out) {
        *failed = true;
        goto done;
    }
    json_t *after_pieces[S_PIECES_MAX];
    size_t nafter = s_pieces (out, after_pieces, S_PIECES_MAX);
    int64_t after = 0;
    for (size_t p = 0; p < npieces && p < nafter; p++)
        if (plans[p].keep)
            after += s_text_tokens (ctx, after_pieces[p]);
    if (after >= before) {
        json_decref (out);
        out = NULL;
        goto done;
    }
    stats->results++;
    stats->pieces += planned;
    for (size_t p = 0; p < npieces; p++) {
        stats->lines_in += plans[p].nlines;
        stats->lines_kept += plans[p].kept;
    }
    stats->before += before;
    stats->after += after;
done:
    for (size_t p = 0; p < npieces; p++)
        s_plan_fini (&plans[p]);
    return out;
}

static int64_t s_param (const json_t *params, const char *name, int64_t fallback, bool *bad)
{
    json_t *value = json_object_get (params, name);
    if (!value)
        return fallback;
    if (!json_is_integer (value) || json_integer_value (value) < 0) {
        *bad = true;
        return fallback;
    }
    return json_integer_value (value);
}

static int s_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    ar_shape_t shape = ctx->shape;
    bool bad = false;
    int64_t min_tokens = s_param (params, "minTokens", 1000, &bad);
    int64_t keep_lines = s_param (params, "keepLines", 60, &bad);
    int64_t context = s_param (params, "contextLines", 2, &bad);
    if (bad || keep_lines < 1 || !json_is_object (ctx->request) || !ctx->tokenizer)
        return -1;
    if (keep_lines > 100000)
        keep_lines = 100000;
    if (context > 50)
        context = 50;
    if (!ctx->stash) {
        snprintf (result->note, sizeof result->note, "no stash: nothing filtered");
        return 0;
    }
    json_t *messages = ar_chat_view_messages (ctx->request);
    size_t n = json_array_size (messages);
    if (n < 2 || ar_chat_view_validate (shape, ctx->request, NULL, 0) != 0)
        return 0;
    //  The latest round and the last user turn are never touched.
    size_t protect = n, last_user = n, last_text = n;
    for (size_t i = n; i-- > 0;) {
        ar_chat_role_t role = ar_chat_view_role (shape, json_array_get (messages, i));
        if (role == AR_CHAT_ROLE_ASSISTANT && protect == n)
            protect = i;
        if (role == AR_CHAT_ROLE_USER && last_user == n)
            last_user = i;
        if (last_text == n && ar_chat_view_is_user_text (shape, json_array_get (messages, i)))
            last_text = i;
    }
    if (protect == n)
        return 0;
    s_query_t *query = malloc (sizeof (s_query_t));
    if (!query || s_query_init (query, shape, messages) != 0) {
        if (query)
            s_query_fini (query);
        free (query);
        return -1;
    }
    json_t *out = NULL;
    s_stats_t stats = {0};
    bool failed = false;
    for (size_t i = 0; i < protect && !failed; i++) {
        if (i == last_user || i == last_text)
            continue;
        if (ar_mono_now () > ctx->deadline) {
            failed = true;
            break;
        }
        json_t *message = json_array_get (messages, i);
        ar_chat_role_t role = ar_chat_view_role (shape, message);
        json_t *content = json_object_get (message, "content");
        json_t *new_content = NULL;
        if (shape == AR_SHAPE_OPENAI_CHAT) {
            if (role != AR_CHAT_ROLE_TOOL)
                continue;
            new_content = s_filter (ctx, message, query, min_tokens, (size_t)keep_lines,
                                    (size_t)context, &stats, &failed);
        } else {
            if (role != AR_CHAT_ROLE_USER || !json_is_array (content))
                continue;
            json_t *blocks = NULL;
            for (size_t b = 0; b < json_array_size (content) && !failed; b++) {
                json_t *block = json_array_get (content, b);
                const char *type = json_string_value (json_object_get (block, "type"));
                if (!type || strcmp (type, "tool_result") != 0)
                    continue;
                json_t *inner = s_filter (ctx, block, query, min_tokens, (size_t)keep_lines,
                                          (size_t)context, &stats, &failed);
                if (!inner)
                    continue;
                json_t *copy = json_copy (block);
                if (!blocks)
                    blocks = json_copy (content);
                if (!copy || !blocks || json_object_set_new (copy, "content", inner) != 0 ||
                    json_array_set_new (blocks, b, copy) != 0) {
                    if (!copy)
                        json_decref (inner);
                    json_decref (copy);
                    failed = true;
                }
            }
            new_content = blocks;
            if (failed) {
                json_decref (new_content);
                new_content = NULL;
            }
        }
        if (!new_content)
            continue;
        json_t *copy = json_copy (message);
        if (!out)
            out = json_copy (messages);
        if (!copy || !out || json_object_set_new (copy, "content", new_content) != 0 ||
            json_array_set_new (out, i, copy) != 0) {
            if (!copy)
                json_decref (new_content);
            json_decref (copy);
            failed = true;
        }
    }
    s_query_fini (query);
    free (query);
    int rc = 0;
    if (failed)
        rc = -1;
    else if (out && stats.after < stats.before) {
        if (json_object_set (ctx->request, "messages", out) != 0)
            rc = -1;
        else {
            result->applied = true;
            snprintf (result->note, sizeof result->note,
                      "filtered %zu tool result%s: %zu->%zu lines, %lld->%lld tokens",
                      stats.results, stats.results == 1 ? "" : "s", stats.lines_in,
                      stats.lines_kept, (long long)stats.before, (long long)stats.after);
        }
    }
    json_decref (out);
    return rc;
}

const ar_strategy_t ar_strategy_relevance_filter = {"relevance_filter", s_apply};

//  --------------------------------------------------------------------------------------------
//  Self-test

#include "ar_rng.h"
#include "ar_stash.h"
#include <limits.h>
#include <unistd.h>

//  A real tool output: mini-swe-agent + gemini-3-pro on SWE-bench Verified astropy-14096
//  (gruckion/mini-swe-agent, swebench_results/20251118_gemini-3-pro-74pct/trajs/
//  astropy__astropy-14096/astropy__astropy-14096.traj.json at d12a71af, MIT; the file shown is
//  astropy/coordinates/sky_coordinate.py, BSD-3-Clause), message 9 of corpus request hx0001.
static const char s_fixture[] =
    "<returncode>0</returncode>\n"
    "<output>\n"
    "   849\t        frattrs = {\n"
    "   850\t            attrnm: getattr(self, attrnm) for attrnm in self._extra_frameattr_names\n"
    "   851\t        }\n"
    "   852\t        frattrs[\"obstime\"] = new_obstime\n"
    "   853\t        result = self.__class__(icrs2, **frattrs).transform_to(self.frame)\n"
    "   854\t\n"
    "   855\t        # Without this the output might not have the right differential type.\n"
    "   856\t        # Not sure if this fixes the problem or just hides it.  See #11932\n"
    "   857\t        result.differential_type = self.differential_type\n"
    "   858\t\n"
    "   859\t        return result\n"
    "   860\t\n"
    "   861\t    def _is_name(self, string):\n"
    "   862\t        \"\"\"\n"
    "   863\t        Returns whether a string is one of the aliases for the frame.\n"
    "   864\t        \"\"\"\n"
    "   865\t        return self.frame.name == string or (\n"
    "   866\t            isinstance(self.frame.name, list) and string in self.frame.name\n"
    "   867\t        )\n"
    "   868\t\n"
    "   869\t    def __getattr__(self, attr):\n"
    "   870\t        \"\"\"\n"
    "   871\t        Overrides getattr to return coordinates that this can be transformed\n"
    "   872\t        to, based on the alias attr in the primary transform graph.\n"
    "   873\t        \"\"\"\n"
    "   874\t        if \"_sky_coord_frame\" in self.__dict__:\n"
    "   875\t            if self._is_name(attr):\n"
    "   876\t                return self  # Should this be a deepcopy of self?\n"
    "   877\t\n"
    "   878\t            # Anything in the set of all possible frame_attr_names is handled\n"
    "   879\t            # here. If the attr is relevant for the current frame then delegate\n"
    "   880\t            # to self.frame otherwise get it from self._<attr>.\n"
    "   881\t            if attr in frame_transform_graph.frame_attributes:\n"
    "   882\t                if attr in self.frame.frame_attributes:\n"
    "   883\t                    return getattr(self.frame, attr)\n"
    "   884\t                else:\n"
    "   885\t                    return getattr(self, \"_\" + attr, None)\n"
    "   886\t\n"
    "   887\t            # Some attributes might not fall in the above category but still\n"
    "   888\t            # are available through self._sky_coord_frame.\n"
    "   889\t            if not attr.startswith(\"_\") and hasattr(self._sky_coord_frame, attr):\n"
    "   890\t                return getattr(self._sky_coord_frame, attr)\n"
    "   891\t\n"
    "   892\t            # Try to interpret as a new frame for transforming.\n"
    "   893\t            frame_cls = frame_transform_graph.lookup_name(attr)\n"
    "   894\t            if frame_cls is not None and self.frame.is_transformable_to(frame_cls):\n"
    "   895\t                return self.transform_to(attr)\n"
    "   896\t\n"
    "   897\t        # Fail\n"
    "   898\t        raise AttributeError(\n"
    "   899\t            f\"'{self.__class__.__name__}' object has no attribute '{attr}'\"\n"
    "   900\t        )\n"
    "   901\t\n"
    "   902\t    def __setattr__(self, attr, val):\n"
    "   903\t        # This is to make anything available through __getattr__ immutable\n"
    "   904\t        if \"_sky_coord_frame\" in self.__dict__:\n"
    "   905\t            if self._is_name(attr):\n"
    "   906\t                raise AttributeError(f\"'{attr}' is immutable\")\n"
    "   907\t\n"
    "   908\t            if not attr.startswith(\"_\") and hasattr(self._sky_coord_frame, attr):\n"
    "   909\t                setattr(self._sky_coord_frame, attr, val)\n"
    "   910\t                return\n"
    "   911\t\n"
    "   912\t            frame_cls = frame_transform_graph.lookup_name(attr)\n"
    "   913\t            if frame_cls is not None and self.frame.is_transformable_to(frame_cls):\n"
    "   914\t                raise AttributeError(f\"'{attr}' is immutable\")\n"
    "   915\t\n"
    "   916\t        if attr in frame_transform_graph.frame_attributes:\n"
    "   917\t            # All possible frame attributes can be set, but only via a private\n"
    "   918\t            # variable.  See __getattr__ above.\n"
    "   919\t            super().__setattr__(\"_\" + attr, val)\n"
    "   920\t            # Validate it\n"
    "   921\t            frame_transform_graph.frame_attributes[attr].__get__(self)\n"
    "   922\t            # And add to set of extra attributes\n"
    "   923\t            self._extra_frameattr_names |= {attr}\n"
    "   924\t\n"
    "   925\t        else:\n"
    "   926\t            # Otherwise, do the standard Python attribute setting\n"
    "   927\t            super().__setattr__(attr, val)\n"
    "   928\t\n"
    "   929\t    def __delattr__(self, attr):\n"
    "   930\t        # mirror __setattr__ above\n"
    "   931\t        if \"_sky_coord_frame\" in self.__dict__:\n"
    "   932\t            if self._is_name(attr):\n"
    "   933\t                raise AttributeError(f\"'{attr}' is immutable\")\n"
    "   934\t\n"
    "   935\t            if not attr.startswith(\"_\") and hasattr(self._sky_coord_frame, attr):\n"
    "   936\t                delattr(self._sky_coord_frame, attr)\n"
    "   937\t                return\n"
    "   938\t\n"
    "   939\t            frame_cls = frame_transform_graph.lookup_name(attr)\n"
    "   940\t            if frame_cls is not None and self.frame.is_transformable_to(frame_cls):\n"
    "   941\t                raise AttributeError(f\"'{attr}' is immutable\")\n"
    "   942\t\n"
    "   943\t        if attr in frame_transform_graph.frame_attributes:\n"
    "   944\t            # All possible frame attributes can be deleted, but need to remove\n"
    "   945\t            # the corresponding private variable.  See __getattr__ above.\n"
    "   946\t            super().__delattr__(\"_\" + attr)\n"
    "   947\t            # Also remove it from the set of extra attributes\n"
    "   948\t            self._extra_frameattr_names -= {attr}\n"
    "   949\t\n"
    "   950\t        else:\n"
    "   951\t            # Otherwise, do the standard Python attribute setting\n"
    "   952\t            super().__delattr__(attr)\n"
    "   953\t\n"
    "   954\t    def __dir__(self):\n"
    "   955\t        \"\"\"\n"
    "   956\t        Override the builtin `dir` behavior to include:\n"
    "   957\t        - Transforms available by aliases\n"
    "   958\t        - Attribute / methods of the underlying self.frame object\n"
    "   959\t        \"\"\"\n"
    "   960\t        dir_values = set(super().__dir__())\n"
    "   961\t\n"
    "   962\t        # determine the aliases that this can be transformed to.\n"
    "   963\t        for name in frame_transform_graph.get_names():\n"
    "   964\t            frame_cls = frame_transform_graph.lookup_name(name)\n"
    "   965\t            if self.frame.is_transformable_to(frame_cls):\n"
    "</output>\n";

static json_t *s_test_request (ar_shape_t shape, json_t *output, const char *intent)
{
    json_t *messages = json_array ();
    const char *question = "Subclassed SkyCoord gives misleading attribute access message";
    if (shape == AR_SHAPE_OPENAI_CHAT) {
        json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", "system", "content",
                                                    "You are a helpful assistant."));
        json_array_append_new (messages,
                               json_pack ("{s:s, s:s}", "role", "user", "content", question));
        json_array_append_new (
            messages, json_pack ("{s:s, s:s, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role", "assistant",
                                 "content", "Looking at __getattr__.", "tool_calls", "id", "c1",
                                 "type", "function", "function", "name", "bash", "arguments",
                                 "{\"command\":\"nl -ba astropy/coordinates/sky_coordinate.py\"}"));
        json_array_append_new (messages, json_pack ("{s:s, s:s, s:O}", "role", "tool",
                                                    "tool_call_id", "c1", "content", output));
        json_array_append_new (messages, json_pack ("{s:s, s:s, s:[{s:s, s:s, s:{s:s, s:s}}]}",
                                                    "role", "assistant", "content", intent,
                                                    "tool_calls", "id", "c2", "type", "function",
                                                    "function", "name", "bash", "arguments",
                                                    "{\"command\":\"python reproduce_issue.py\"}"));
        json_array_append_new (messages, json_pack ("{s:s, s:s, s:s}", "role", "tool",
                                                    "tool_call_id", "c2", "content", "ok"));
        return json_pack ("{s:s, s:o}", "model", "gpt-4o", "messages", messages);
    }
    json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", "user", "content", question));
    json_array_append_new (
        messages, json_pack ("{s:s, s:[{s:s, s:s}, {s:s, s:s, s:s, s:{s:s}}]}", "role", "assistant",
                             "content", "type", "text", "text", "Looking at __getattr__.", "type",
                             "tool_use", "id", "c1", "name", "bash", "input", "command",
                             "nl -ba astropy/coordinates/sky_coordinate.py"));
    json_array_append_new (messages, json_pack ("{s:s, s:[{s:s, s:s, s:O}]}", "role", "user",
                                                "content", "type", "tool_result", "tool_use_id",
                                                "c1", "content", output));
    json_array_append_new (messages,
                           json_pack ("{s:s, s:[{s:s, s:s}, {s:s, s:s, s:s, s:{s:s}}]}", "role",
                                      "assistant", "content", "type", "text", "text", intent,
                                      "type", "tool_use", "id", "c2", "name", "bash", "input",
                                      "command", "python reproduce_issue.py"));
    json_array_append_new (messages,
                           json_pack ("{s:s, s:[{s:s, s:s, s:s}]}", "role", "user", "content",
                                      "type", "tool_result", "tool_use_id", "c2", "content", "ok"));
    return json_pack ("{s:s, s:i, s:s, s:o}", "model", "claude", "max_tokens", 1024, "system",
                      "You are a helpful assistant.", "messages", messages);
}

//  Every marker in text must name an id whose stashed JSON equals original.
static size_t s_test_markers (ar_stash_t *stash, const char *text, const json_t *original)
{
    size_t found = 0;
    static const char tag[] = "lines elided; retrieve with id ";
    for (const char *at = strstr (text, tag); at; at = strstr (at + 1, tag)) {
        char id[33] = "";
        memcpy (id, at + sizeof tag - 1, 32);
        size_t len = 0;
        char *stored = ar_stash_get (stash, id, &len);
        assert (stored);
        json_t *json = json_loadb (stored, len, 0, NULL);
        assert (json && json_equal (json_object_get (json, "content"), original));
        json_decref (json);
        free (stored);
        found++;
    }
    return found;
}

//  Every line of out is a marker or the next line of in that it equals (kept lines in order).
static void s_test_subsequence (const char *in, const char *out)
{
    const char *i = in, *o = out;
    while (*o) {
        const char *oe = strchr (o, '\n');
        size_t olen = oe ? (size_t)(oe - o) : strlen (o);
        if (strncmp (o, "[anyray: ", 9) != 0) {
            for (;;) {
                assert (*i);
                const char *ie = strchr (i, '\n');
                size_t ilen = ie ? (size_t)(ie - i) : strlen (i);
                bool same = ilen == olen && memcmp (i, o, olen) == 0;
                i = ie ? ie + 1 : i + ilen;
                if (same)
                    break;
            }
        }
        o = oe ? oe + 1 : o + olen;
    }
}

static const json_t *s_test_output (ar_shape_t shape, const json_t *request, size_t index)
{
    json_t *message = json_array_get (ar_chat_view_messages (request), index);
    json_t *content = json_object_get (message, "content");
    if (shape == AR_SHAPE_OPENAI_CHAT)
        return content;
    return json_object_get (json_array_get (content, 0), "content");
}

static const char *const s_test_words[] = {
    "error",
    "warning",
    "file",
    "line",
    "return",
    "value",
    "config",
    "parse",
    "request",
    "status",
    "timeout",
    "cache",
    "module",
    "import",
    "test",
    "failed",
    "passed",
    "build",
    "deploy",
    "handler",
    "self",
    "def",
    "class",
    "the",
    "of",
    "{",
    "}",
    "=",
    "->",
    "#",
    "0x1f",
    "42",
    "src/app/main.py",
    "lib/util.c",
    "get_user_by_id",
    "parseHttpRequest",
    "README.md",
    "café",
    "日本語",
    "\t",
};

static char *s_test_lines (ar_rng_t *rng, size_t lines)
{
    size_t max = lines * 200 + 1, len = 0;
    char *text = malloc (max);
    assert (text);
    for (size_t l = 0; l < lines; l++) {
        size_t words = ar_rng_below (rng, 12);
        for (size_t w = 0; w < words; w++) {
            const char *word =
                s_test_words[ar_rng_below (rng, sizeof s_test_words / sizeof s_test_words[0])];
            len += (size_t)snprintf (text + len, max - len, "%s%s", w ? " " : "", word);
        }
        if (l + 1 < lines || ar_rng_below (rng, 2))
            text[len++] = '\n';
        text[len] = 0;
    }
    return text;
}

void strategy_relevance_filter_test (bool verbose)
{
    ar_tokenizer_t *tok = ar_tokenizer_new ();
    assert (tok);
    char dir[] = "/tmp/ar_relevance_filter.XXXXXX";
    assert (mkdtemp (dir));
    char db_path[PATH_MAX];
    snprintf (db_path, sizeof db_path, "%s/anyray.db", dir);
    uint8_t key[32] = {1, 2, 3};
    ar_stash_t *stash = ar_stash_new (db_path, key, 3600);
    assert (stash);
    ar_stash_sink_t sink = ar_stash_sink (stash);
    const char *intent = "The message comes from `__getattr__`; I will check how "
                         "frame_transform_graph.lookup_name and __setattr__ handle it.";

    //  The real output, in both shapes and as text parts/blocks: the lines naming the
    //  question's symbols stay, the rest is one stash entry per result.
    for (int variant = 0; variant < 4; variant++) {
        ar_shape_t shape = variant & 1 ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        json_t *output = variant & 2 ? json_pack ("[{s:s, s:s}]", "type", "text", "text", s_fixture)
                                     : json_string (s_fixture);
        json_t *request = s_test_request (shape, output, intent);
        json_t *original = json_deep_copy (request);
        int64_t before = ar_chat_view_count_tokens (shape, request, tok);
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = INT64_MAX};
        json_t *params =
            json_pack ("{s:i, s:i, s:i}", "minTokens", 200, "keepLines", 10, "contextLines", 1);
        ar_strategy_result_t result = {.applied = false};
        assert (s_apply (&ctx, params, &result) == 0 && result.applied);
        int64_t after = ar_chat_view_count_tokens (shape, request, tok);
        if (verbose)
            printf ("relevance_filter %s%s: %s; request %lld->%lld tokens\n",
                    shape ? "anthropic" : "openai", variant & 2 ? " (parts)" : "", result.note,
                    (long long)before, (long long)after);
        assert (after < before * 3 / 4);
        assert (ar_chat_view_validate (shape, request, NULL, 0) == 0);
        size_t index = shape == AR_SHAPE_OPENAI_CHAT ? 3 : 2;
        const json_t *filtered = s_test_output (shape, request, index);
        const char *text =
            json_is_string (filtered)
                ? json_string_value (filtered)
                : json_string_value (json_object_get (json_array_get (filtered, 0), "text"));
        assert (text);
        assert (strstr (text, "<returncode>0</returncode>\n<output>\n   849"));
        assert (strstr (text, "frame_cls = frame_transform_graph.lookup_name(attr)"));
        assert (strstr (text, "def __setattr__(self, attr, val):"));
        assert (strstr (text, "def __getattr__(self, attr):"));
        assert (!strstr (text, "Returns whether a string is one of the aliases"));
        assert (s_test_markers (stash, text, output) >= 2);
        s_test_subsequence (s_fixture, text);
        //  Everything but the filtered output is as it was.
        json_t *messages = ar_chat_view_messages (request);
        json_t *omessages = ar_chat_view_messages (original);
        for (size_t i = 0; i < json_array_size (messages); i++)
            assert (i == index ||
                    json_equal (json_array_get (messages, i), json_array_get (omessages, i)));
        //  Again on the output: no marker is ever filtered twice into a worse state.
        json_t *once = json_deep_copy (request);
        result = (ar_strategy_result_t){.applied = false};
        assert (s_apply (&ctx, params, &result) == 0);
        assert (ar_chat_view_count_tokens (shape, request, tok) <= after);
        json_decref (once);
        //  Under minTokens: kept whole. No stash: nothing changes.
        json_t *copy = json_deep_copy (original);
        ctx.request = copy;
        json_t *defaults = json_pack ("{s:i}", "minTokens", 5000);
        result = (ar_strategy_result_t){.applied = false};
        assert (s_apply (&ctx, defaults, &result) == 0 && !result.applied);
        ctx.stash = NULL;
        assert (s_apply (&ctx, params, &result) == 0 && !result.applied);
        assert (json_equal (copy, original));
        //  Bad params: -1, untouched.
        json_t *bad = json_pack ("{s:s}", "keepLines", "ten");
        ctx.stash = &sink;
        assert (s_apply (&ctx, bad, &result) == -1 && json_equal (copy, original));
        json_decref (bad);
        json_decref (defaults);
        json_decref (copy);
        json_decref (params);
        json_decref (original);
        json_decref (request);
        json_decref (output);
    }

    //  Property loop: generated outputs, random params and shapes.
    ar_rng_t rng = {0x7e1e7a9cef11e2ull};
    size_t applied = 0, cases = 300;
    for (size_t c = 0; c < cases; c++) {
        ar_shape_t shape =
            ar_rng_below (&rng, 2) ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        char *lines = s_test_lines (&rng, 1 + ar_rng_below (&rng, 600));
        json_t *output = ar_rng_below (&rng, 3)
                             ? json_string (lines)
                             : json_pack ("[{s:s, s:s}, {s:s, s:s}]", "type", "text", "text", lines,
                                          "type", "text", "text", "tail");
        char intent[128];
        snprintf (intent, sizeof intent, "Now check %s in %s for %s",
                  s_test_words[ar_rng_below (&rng, 40)], s_test_words[ar_rng_below (&rng, 40)],
                  s_test_words[ar_rng_below (&rng, 40)]);
        json_t *request = s_test_request (shape, output, intent);
        json_t *original = json_deep_copy (request);
        int64_t before = ar_chat_view_count_tokens (shape, request, tok);
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = INT64_MAX};
        json_t *params = json_pack ("{s:i, s:i, s:i}", "minTokens", (int)ar_rng_below (&rng, 1500),
                                    "keepLines", 1 + (int)ar_rng_below (&rng, 100), "contextLines",
                                    (int)ar_rng_below (&rng, 5));
        ar_strategy_result_t result = {.applied = false};
        assert (s_apply (&ctx, params, &result) == 0);
        int64_t after = ar_chat_view_count_tokens (shape, request, tok);
        assert (ar_chat_view_validate (shape, request, NULL, 0) == 0);
        assert (result.applied ? after < before : json_equal (request, original));
        json_t *messages = ar_chat_view_messages (request);
        json_t *omessages = ar_chat_view_messages (original);
        size_t index = shape == AR_SHAPE_OPENAI_CHAT ? 3 : 2;
        for (size_t i = 0; i < json_array_size (messages); i++)
            assert (i == index ||
                    json_equal (json_array_get (messages, i), json_array_get (omessages, i)));
        if (result.applied) {
            applied++;
            const json_t *filtered = s_test_output (shape, request, index);
            const char *text =
                json_is_string (filtered)
                    ? json_string_value (filtered)
                    : json_string_value (json_object_get (json_array_get (filtered, 0), "text"));
            assert (s_test_markers (stash, text, output) >= 1);
            s_test_subsequence (lines, text);
        }
        json_decref (params);
        json_decref (original);
        json_decref (request);
        json_decref (output);
        free (lines);
    }
    assert (applied > cases / 10);
    if (verbose)
        printf ("relevance_filter: %zu generated cases, %zu filtered\n", cases, applied);
    ar_stash_destroy (&stash);
    ar_tokenizer_destroy (&tok);
    char path[PATH_MAX + 16];
    const char *files[] = {"anyray.db", "anyray.db-wal", "anyray.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s", dir, files[i]);
        unlink (path);
    }
    rmdir (dir);
}
