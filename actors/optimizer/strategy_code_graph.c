/*  strategy_code_graph: keep the bodies of the code the live question touches, elide the rest.

    Where code_skeleton outlines every older source file the agent read, code_graph first
    builds the symbol graph of all of them (ar_syntax: tree-sitter definition queries and
    identifiers): a function or method is a node, and A -- B when A's body names B. The seeds
    are the definitions the live question touches: those whose name the last user text, the
    latest assistant turn (tool call arguments, bash block) or the error lines of the latest
    tool results mention, and those enclosing a "file:line" / 'File "x", line N' location those
    results report. Bodies of the seeds and of their neighbours up to neighborHops (default 1)
    away stay; every other body of at least two lines becomes "<indent>...". As in
    code_skeleton, one stash entry per rewritten tool result holds its original content (JSON)
    and one marker leads it: "[anyray: N function bodies elided; retrieve with id <id>]".

    The same protections as code_skeleton: the latest turn's results, every read of a file it
    touches, the latest message and last user turn are never rewritten (a file the question
    only names is not protected: the graph keeps the parts it points at); files under minLines
    lines and texts with over 5% parse errors are left whole; only valid requests are touched
    and nothing without a stash. Default off; the config refuses it together with
    code_skeleton.
*/
#include "ar_chat_view.h"
#include "ar_rng.h"
#include "ar_stash.h"
#include "ar_syntax.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_ERRORS      0.05
#define S_MIN_BODY        2
#define S_SEGMENTS        4
#define S_PIECES          16
#define S_KEEP_TURNS      1
#define S_PARSE_BUDGET_US 10000 // the graph needs every file parsed in the same request
static int64_t s_parse_budget_us = S_PARSE_BUDGET_US; // tests may lift it
#define S_NAME_MAX 64

//  One parsed code segment of one piece of one tool result.
typedef struct {
    size_t result, piece;
    const char *text; // the piece's text
    size_t start, end;
    ar_syntax_source_t source;
    ar_syntax_outline_t outline;
    size_t first_def; // index of its first definition in the graph
    bool whole;       // the segment starts at the file's first line (for line numbers)
} s_file_t;

//  One definition: a node.
typedef struct {
    size_t file, def;
    char name[S_NAME_MAX + 1];
    bool keep;
    int depth; // hops from a seed (-1: not reached)
} s_node_t;

typedef struct {
    s_file_t *files;
    size_t nfiles, maxfiles;
    s_node_t *nodes;
    size_t nnodes, maxnodes;
} s_graph_t;

static bool s_top_level (const ar_syntax_source_t *source, size_t line)
{
    char c = source->text[source->lines[line].text];
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '@' || c == '#' ||
           c == '/';
}

static void s_trim (const char *text, const ar_syntax_source_t *source, bool head, bool tail,
                    size_t *start, size_t *end)
{
    size_t first = 0, last = source->line_count;
    if (tail)
        while (first < source->line_count && !s_top_level (source, first))
            first++;
    if (head) {
        while (last > first + 1 && !s_top_level (source, last - 1))
            last--;
        if (last > first + 1)
            last--; // the last top-level construct may be cut short
    }
    if (first < last && first < source->line_count) {
        *start = source->lines[first].start;
        *end = last < source->line_count ? source->lines[last].start : *end;
    }
}

static int s_grow (void **array, size_t count, size_t *max, size_t size)
{
    if (count < *max)
        return 0;
    size_t grown = *max ? *max * 2 : 32;
    void *bigger = realloc (*array, grown * size);
    if (!bigger)
        return -1;
    *array = bigger;
    *max = grown;
    return 0;
}

//  The name of a definition, as the graph compares it: the last component of a qualified name
//  (S::get -> get, obj.method -> method).
static void s_def_name (const s_file_t *file, const ar_syntax_def_t *def, char *name)
{
    const char *at = file->source.text + def->name_start;
    size_t len = def->name_end - def->name_start;
    for (size_t i = len; i-- > 0;)
        if (at[i] == ':' || at[i] == '.' || at[i] == '~') {
            at += i + 1;
            len -= i + 1;
            break;
        }
    if (len > S_NAME_MAX)
        len = S_NAME_MAX;
    memcpy (name, at, len);
    name[len] = 0;
}

//  Parse the code segments of one piece into the graph.
static void s_add_piece (s_graph_t *graph, size_t result, size_t piece, const char *text,
                         size_t len, ar_lang_t hint, size_t min_lines, int64_t *budget_us)
{
    size_t starts[S_SEGMENTS], ends[S_SEGMENTS];
    size_t count = ar_syntax_segments (text, len, starts, ends, S_SEGMENTS);
    for (size_t s = 0; s<count && * budget_us> 0; s++) {
        ar_syntax_source_t source;
        if (ar_syntax_source_init (&source, text, starts[s], ends[s]) != 0)
            return;
        if (source.line_count < min_lines) {
            ar_syntax_source_fini (&source);
            continue;
        }
        ar_lang_t lang = hint ? hint : ar_syntax_lang_from_content (source.text, source.len);
        long first_number =
            source.lines[0].prefix ? strtol (text + source.lines[0].start, NULL, 10) : 1;
        bool tagged_tail = memmem (text, starts[s], "<output_tail>", 13) != NULL;
        bool head = lang == AR_LANG_PYTHON && !tagged_tail &&
                    memmem (text, starts[s], "<output_head>", 13) != NULL;
        bool tail = tagged_tail || first_number > 1;
        if (head || tail) {
            size_t start = starts[s], end = ends[s];
            s_trim (text, &source, head, tail, &start, &end);
            ar_syntax_source_fini (&source);
            if (ar_syntax_source_init (&source, text, start, end) != 0)
                return;
            starts[s] = start;
            ends[s] = end;
        }
        ar_syntax_outline_t outline;
        int64_t t0 = ar_mono_us ();
        int rc = lang && source.line_count >= 2
                     ? ar_syntax_outline (lang, source.text, source.len, true, S_MAX_ERRORS,
                                          *budget_us, &outline)
                     : -1;
        *budget_us -= ar_mono_us () - t0;
        if (rc != 0 || s_grow ((void **)&graph->files, graph->nfiles, &graph->maxfiles,
                               sizeof (s_file_t)) != 0) {
            if (rc == 0)
                ar_syntax_outline_fini (&outline);
            ar_syntax_source_fini (&source);
            continue;
        }
        s_file_t *file = &graph->files[graph->nfiles++];
        *file = (s_file_t){result,    piece,         text,
                           starts[s], ends[s],       source,
                           outline,   graph->nnodes, !tail && first_number == 1};
        for (size_t d = 0; d < outline.def_count; d++) {
            if (s_grow ((void **)&graph->nodes, graph->nnodes, &graph->maxnodes,
                        sizeof (s_node_t)) != 0) {
                file->outline.def_count = d; // the rest are not nodes: never elided
                break;
            }
            s_node_t *node = &graph->nodes[graph->nnodes++];
            node->file = graph->nfiles - 1;
            node->def = d;
            node->keep = false;
            node->depth = -1;
            s_def_name (file, &outline.defs[d], node->name);
        }
    }
}

static bool s_word_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

//  Seed every node whose name occurs in text as a whole word.
static void s_seed_words (s_graph_t *graph, const char *text, size_t len)
{
    for (size_t i = 0; i < graph->nnodes; i++) {
        s_node_t *node = &graph->nodes[i];
        size_t n = strlen (node->name);
        if (n < 3 || node->depth == 0)
            continue;
        for (const char *at = memmem (text, len, node->name, n); at;
             at = memmem (at + 1, len - (size_t)(at + 1 - text), node->name, n)) {
            bool before = at > text && s_word_char (at[-1]);
            bool after = at + n < text + len && s_word_char (at[n]);
            if (!before && !after) {
                node->depth = 0;
                break;
            }
        }
    }
}

//  Seed the innermost definition enclosing line `number` of the file at path.
static void s_seed_location (s_graph_t *graph, const char *path, size_t path_len, long number)
{
    char want[256];
    if (path_len >= sizeof want || number < 1)
        return;
    memcpy (want, path, path_len);
    want[path_len] = 0;
    for (size_t f = 0; f < graph->nfiles; f++) {
        s_file_t *file = &graph->files[f];
        (void)file;
        for (size_t l = 0; l < file->source.line_count; l++) {
            const ar_syntax_line_t *line = &file->source.lines[l];
            long at = line->prefix ? strtol (file->text + line->start, NULL, 10)
                                   : (file->whole ? (long)l + 1 : -1);
            if (at != number)
                continue;
            //  The innermost definition whose range holds this line.
            size_t best = SIZE_MAX;
            for (size_t d = 0; d < file->outline.def_count; d++) {
                const ar_syntax_def_t *def = &file->outline.defs[d];
                if (def->start <= line->text && line->text < def->end)
                    best = d;
            }
            if (best != SIZE_MAX)
                graph->nodes[file->first_def + best].depth = 0;
            break;
        }
    }
}

//  Error locations in text: 'File "x.py", line 12' and 'x.go:12:' forms.
static void s_seed_locations (s_graph_t *graph, const char *text, size_t len)
{
    for (const char *at = memmem (text, len, "File \"", 6); at;
         at = memmem (at + 1, len - (size_t)(at + 1 - text), "File \"", 6)) {
        const char *path = at + 6, *close = memchr (path, '"', len - (size_t)(path - text));
        if (!close || (size_t)(text + len - close) < 8 || strncmp (close, "\", line ", 8) != 0)
            continue;
        s_seed_location (graph, path, (size_t)(close - path), strtol (close + 8, NULL, 10));
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] != ':' || i + 1 >= len || text[i + 1] < '0' || text[i + 1] > '9')
            continue;
        size_t s = i;
        while (s > 0 && !strchr (" \t\n\"'(", text[s - 1]))
            s--;
        if (ar_syntax_lang_from_path (text + s, i - s))
            s_seed_location (graph, text + s, i - s, strtol (text + i + 1, NULL, 10));
    }
}

//  The first identifier at or after offset (binary search: identifiers are in text order).
static size_t s_first_ident (const ar_syntax_outline_t *outline, uint32_t offset)
{
    size_t lo = 0, hi = outline->ident_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (outline->idents[mid].start < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

//  Whether the body of def (in file) names name.
static bool s_names (const s_file_t *file, const ar_syntax_def_t *def, const char *name)
{
    size_t n = strlen (name);
    if (!n)
        return false;
    const ar_syntax_outline_t *outline = &file->outline;
    for (size_t i = s_first_ident (outline, def->body_start);
         i < outline->ident_count && outline->idents[i].end <= def->body_end; i++) {
        const ar_syntax_ident_t *id = &outline->idents[i];
        if (id->end - id->start == n && memcmp (file->source.text + id->start, name, n) == 0)
            return true;
    }
    return false;
}

//  Breadth-first from the seeds along "names" edges both ways, up to hops.
static void s_spread (s_graph_t *graph, int hops)
{
    for (int depth = 0; depth < hops; depth++)
        for (size_t a = 0; a < graph->nnodes; a++) {
            s_node_t *from = &graph->nodes[a];
            if (from->depth != depth)
                continue;
            const s_file_t *file = &graph->files[from->file];
            const ar_syntax_def_t *def = &file->outline.defs[from->def];
            for (size_t b = 0; b < graph->nnodes; b++) {
                s_node_t *to = &graph->nodes[b];
                if (to->depth >= 0)
                    continue;
                const s_file_t *tf = &graph->files[to->file];
                //  Out: a name this body uses. In: a body that uses this name.
                if (s_names (file, def, to->name) ||
                    s_names (tf, &tf->outline.defs[to->def], from->name))
                    to->depth = depth + 1;
            }
        }
    for (size_t i = 0; i < graph->nnodes; i++)
        graph->nodes[i].keep = graph->nodes[i].depth >= 0;
}

static bool s_keep (const ar_syntax_outline_t *outline, size_t def, void *arg)
{
    const s_node_t *first = (const s_node_t *)arg;
    return first[def].keep;
}

static void s_graph_fini (s_graph_t *graph)
{
    for (size_t f = 0; f < graph->nfiles; f++) {
        ar_syntax_outline_fini (&graph->files[f].outline);
        ar_syntax_source_fini (&graph->files[f].source);
    }
    free (graph->files);
    free (graph->nodes);
}

//  The latest assistant turn's text with tool data (arguments, bash blocks).
static void s_latest_assistant (ar_shape_t shape, json_t *messages, ar_buf_t *out)
{
    for (size_t i = json_array_size (messages); i-- > 0;) {
        json_t *message = json_array_get (messages, i);
        if (ar_chat_view_role (shape, message) == AR_CHAT_ROLE_ASSISTANT) {
            ar_chat_view_message_text (shape, message, true, ar_syntax_collect_text, out);
            return;
        }
    }
}

//  The lines of text that report errors (they name the failing symbols).
static void s_error_lines (const char *text, size_t len, void *arg)
{
    for (size_t i = 0; i < len;) {
        const char *eol = memchr (text + i, '\n', len - i);
        size_t end = eol ? (size_t)(eol - text) : len;
        if (memmem (text + i, end - i, "rror", 4) || memmem (text + i, end - i, "xception", 8) ||
            memmem (text + i, end - i, "File \"", 6) || memmem (text + i, end - i, "FAIL", 4))
            ar_syntax_collect_text (text + i, end - i, arg);
        i = end + 1;
    }
}

static int s_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    ar_shape_t shape = ctx->shape;
    json_t *min_param = json_object_get (params, "minLines");
    json_t *hops_param = json_object_get (params, "neighborHops");
    if (!json_is_object (ctx->request) || !ctx->tokenizer ||
        (min_param && (!json_is_integer (min_param) || json_integer_value (min_param) < 1)) ||
        (hops_param && (!json_is_integer (hops_param) || json_integer_value (hops_param) < 0 ||
                        json_integer_value (hops_param) > 5)))
        return -1;
    size_t min_lines = min_param ? (size_t)json_integer_value (min_param) : 80;
    int hops = hops_param ? (int)json_integer_value (hops_param) : 1;
    ar_syntax_scope_t scope;
    int go = ar_syntax_scope_init (ctx, S_KEEP_TURNS, "no stash: nothing elided", result, &scope);
    if (go <= 0)
        return go;
    json_t *messages = scope.messages;
    size_t n = scope.n, protect_from = scope.protect_from, last_text = scope.last_text;
    //  The live question: last user text, latest assistant turn, error lines of the latest
    //  results.
    ar_buf_t live = {NULL, 0, 0}, errors = {NULL, 0, 0};
    if (last_text < n)
        ar_chat_view_message_text (shape, json_array_get (messages, last_text), false,
                                   ar_syntax_collect_text, &live);
    s_latest_assistant (shape, messages, &live);
    for (size_t i = protect_from; i < n; i++)
        if (ar_chat_view_role (shape, json_array_get (messages, i)) != AR_CHAT_ROLE_ASSISTANT)
            ar_chat_view_message_text (shape, json_array_get (messages, i), false, s_error_lines,
                                       &errors);

    ar_syntax_result_t *results = scope.results;
    size_t count = scope.count;
    bool *eligible = calloc (count + 1, sizeof (bool));
    s_graph_t graph = {NULL, 0, 0, NULL, 0, 0};
    int rc = -1;
    int64_t budget = s_parse_budget_us;
    size_t files = 0, bodies = 0;
    int64_t saved = 0;
    ar_syntax_piece_t *all = NULL;
    size_t nall = 0, maxall = 0;
    if (!eligible)
        goto done;
    int64_t left_ms = ctx->deadline - ar_mono_now ();
    if (left_ms <= 0)
        goto done;
    if (left_ms < budget / 1000)
        budget = left_ms * 1000;

    //  1. Every source file in the results, eligible or not, into the graph.
    for (size_t r = 0; r < count && budget > 0; r++) {
        ar_syntax_result_t *res = &results[r];
        if (res->path[0] && !res->reader)
            continue;
        //  (A file the question names stays eligible: the graph keeps what it points at.)
        eligible[r] = ar_syntax_scope_open (&scope, res);
        ar_lang_t hint =
            res->path[0] ? ar_syntax_lang_from_path (res->path, strlen (res->path)) : AR_LANG_NONE;
        ar_syntax_piece_t pieces[S_PIECES];
        size_t npieces = ar_syntax_pieces (res->owner, pieces, S_PIECES);
        for (size_t p = 0; p < npieces; p++) {
            json_t *string = json_object_get (pieces[p].holder, pieces[p].key);
            s_add_piece (&graph, r, p, json_string_value (string), json_string_length (string),
                         hint, min_lines, &budget);
        }
    }
    if (budget <= 0 || ar_mono_now () > ctx->deadline)
        goto done; // a partial graph could elide what the question needs

    //  2. Seeds, then their neighbours.
    if (live.data)
        s_seed_words (&graph, live.data, live.len);
    if (errors.data) {
        s_seed_words (&graph, errors.data, errors.len);
        s_seed_locations (&graph, errors.data, errors.len);
    }
    s_spread (&graph, hops);

    //  3. Rewrite each eligible result's code segments.
    for (size_t r = 0; r < count; r++) {
        if (!eligible[r])
            continue;
        ar_syntax_result_t *res = &results[r];
        ar_syntax_piece_t pieces[S_PIECES];
        size_t marks[S_PIECES] = {0};
        size_t npieces = ar_syntax_pieces (res->owner, pieces, S_PIECES), elided = 0;
        int64_t before = 0, after = 0;
        for (size_t p = 0; p < npieces; p++) {
            json_t *string = json_object_get (pieces[p].holder, pieces[p].key);
            const char *text = json_string_value (string);
            size_t len = json_string_length (string), copied = 0, k = 0;
            ar_buf_t buf = {NULL, 0, 0};
            for (size_t f = 0; f < graph.nfiles; f++) {
                s_file_t *file = &graph.files[f];
                if (file->result != r || file->piece != p)
                    continue;
                ar_buf_t part = {NULL, 0, 0};
                size_t e = ar_syntax_elide (text, &file->source, &file->outline, S_MIN_BODY, s_keep,
                                            &graph.nodes[file->first_def], &part);
                if (e && ar_buf_add (&buf, text + copied, file->start - copied) == 0 &&
                    (k || (marks[p] = buf.len, true)) &&
                    ar_buf_add (&buf, part.data, part.len) == 0) {
                    copied = file->end;
                    k += e;
                }
                free (part.data);
            }
            if (k && ar_buf_add (&buf, text + copied, len - copied) == 0) {
                pieces[p].replacement = json_stringn (buf.data, buf.len);
                before += (int64_t)ar_tokenizer_count (ctx->tokenizer, text, len);
                after += (int64_t)ar_tokenizer_count (ctx->tokenizer, buf.data, buf.len);
                elided += k;
            }
            free (buf.data);
        }
        if (elided && after + 45 < before) {
            if (ar_syntax_stash_elided (ctx, res->owner, pieces, npieces, marks, elided, &after,
                                        &all, &nall, &maxall) != 0)
                goto done;
            files++;
            bodies += elided;
            saved += before - after;
        }
        for (size_t p = 0; p < npieces; p++)
            json_decref (pieces[p].replacement);
    }
    for (size_t p = 0; p < nall; p++) {
        json_object_set_new (all[p].holder, all[p].key, all[p].replacement);
        all[p].replacement = NULL;
    }
    rc = 0;
    if (files) {
        size_t kept = 0;
        for (size_t i = 0; i < graph.nnodes; i++)
            kept += graph.nodes[i].keep;
        result->applied = true;
        snprintf (result->note, sizeof result->note,
                  "%zu file%s, %zu bodies elided, %zu of %zu symbols kept, -%lld tokens", files,
                  files == 1 ? "" : "s", bodies, kept, graph.nnodes, (long long)saved);
    }
done:
    for (size_t p = 0; p < nall; p++)
        json_decref (all[p].replacement);
    free (all);
    s_graph_fini (&graph);
    free (eligible);
    ar_syntax_scope_fini (&scope);
    free (live.data);
    free (errors.data);
    return rc;
}

const ar_strategy_t ar_strategy_code_graph = {"code_graph", s_apply};

//  --------------------------------------------------------------------------------------------
//  Self-test: a real file and a question about one function; an error location; a generated
//  property loop with a real stash.

static char *s_fixture (const char *name, size_t *len)
{
    char path[1024];
    const char *file = __FILE__, *slash = strrchr (file, '/');
    snprintf (path, sizeof path, "%.*s/../../tests/fixtures/code_skeleton/%s",
              (int)(slash ? slash - file : 1), slash ? file : ".", name);
    char *data = ar_buf_read_file (path, len);
    assert (data);
    return data;
}

//  task; read each file (path, text); one more round; the question.
static json_t *s_request (ar_shape_t shape, const char *const *paths, char *const *texts,
                          size_t files, const char *question)
{
    json_t *messages = json_array ();
    json_array_append_new (messages,
                           json_pack ("{s:s, s:s}", "role", "user", "content", "Fix the bug."));
    for (size_t t = 0; t <= files; t++) {
        char id[32], args[512];
        const char *path = t < files ? paths[t] : "notes.txt";
        snprintf (id, sizeof id, "toolu_%zu", t);
        snprintf (args, sizeof args, "{\"path\": \"%s\"}", path);
        const char *text = t < files ? texts[t] : "nothing";
        if (shape == AR_SHAPE_OPENAI_CHAT) {
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role",
                                              "assistant", "content", "tool_calls", "id", id,
                                              "type", "function", "function", "name", "read_file",
                                              "arguments", args));
            json_array_append_new (messages, json_pack ("{s:s, s:s, s:s}", "role", "tool",
                                                        "tool_call_id", id, "content", text));
        } else {
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:[{s:s, s:s, s:s, s:{s:s}}]}", "role",
                                              "assistant", "content", "type", "tool_use", "id", id,
                                              "name", "read_file", "input", "path", path));
            json_array_append_new (messages, json_pack ("{s:s, s:[{s:s, s:s, s:s}]}", "role",
                                                        "user", "content", "type", "tool_result",
                                                        "tool_use_id", id, "content", text));
        }
    }
    json_array_append_new (messages,
                           json_pack ("{s:s, s:s}", "role", "assistant", "content", "Read them."));
    json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", "user", "content", question));
    return json_pack ("{s:s, s:i, s:o}", "model", "m", "max_tokens", 100, "messages", messages);
}

static char *s_message_text (ar_shape_t shape, json_t *request, size_t i)
{
    ar_buf_t buf = {NULL, 0, 0};
    ar_chat_view_message_text (shape, json_array_get (ar_chat_view_messages (request), i), false,
                               ar_syntax_collect_text, &buf);
    return buf.data;
}

//  Every rewritten result's marker id reads back as exactly its original content.
static size_t s_check_stash (ar_shape_t shape, const json_t *in, json_t *out, ar_stash_t *stash)
{
    ar_syntax_result_t *rin = NULL, *rout = NULL;
    size_t nin = ar_syntax_results (shape, ar_chat_view_messages (in), &rin);
    size_t nout = ar_syntax_results (shape, ar_chat_view_messages (out), &rout);
    assert (nin == nout);
    size_t marked = 0;
    for (size_t r = 0; r < nout; r++) {
        json_t *cin = json_object_get (rin[r].owner, "content");
        json_t *cout = json_object_get (rout[r].owner, "content");
        if (json_equal (cin, cout))
            continue;
        char *dump = json_dumps (cout, JSON_ENCODE_ANY);
        const char *at = strstr (dump, "function bod");
        assert (at && (at = strstr (at, "retrieve with id ")));
        char id[33];
        memcpy (id, at + 17, 32);
        id[32] = 0;
        free (dump);
        size_t len = 0;
        char *stashed = ar_stash_get (stash, id, &len);
        assert (stashed);
        json_t *original = json_loadb (stashed, len, JSON_DECODE_ANY, NULL);
        assert (original && json_equal (original, cin));
        json_decref (original);
        free (stashed);
        marked++;
    }
    free (rin);
    free (rout);
    return marked;
}

//  Corpus figures: tokens before/after per request, and whether meta's needed_strings are still
//  in the output verbatim, or only in what the markers' stash ids hold.

void strategy_code_graph_test (bool verbose)
{
    ar_tokenizer_t *tok = ar_tokenizer_new ();
    char dir[] = "/tmp/ar_code_graph.XXXXXX";
    assert (tok && mkdtemp (dir));
    char db[128];
    snprintf (db, sizeof db, "%s/stash.db", dir);
    uint8_t key[32] = {9};
    ar_stash_t *stash = ar_stash_new (db, key, 3600);
    assert (stash);
    ar_stash_sink_t sink = ar_stash_sink (stash);
    s_parse_budget_us = INT64_MAX / 4; // a loaded test machine parses slowly
    static const char *names[] = {"glob.py.txt", "utils.go.txt", "log_reader.cc.txt",
                                  "merge.ts.txt"};
    static const char *paths[] = {"lib/glob.py", "gin/utils.go", "db/log_reader.cc",
                                  "src/merge.ts"};
    char *texts[4];
    size_t lens[4];
    for (size_t f = 0; f < 4; f++)
        texts[f] = s_fixture (names[f], &lens[f]);

    //  1. A question about _glob1: its body and its neighbours' stay, far bodies go; the Go
    //  file, which it does not touch, is outlined whole.
    for (int s = 0; s < 2; s++) {
        ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        json_t *request =
            s_request (shape, paths, texts, 2, "Why does _glob1 skip hidden files here?");
        json_t *original = json_deep_copy (request);
        int64_t before = ar_chat_view_count_tokens (shape, request, tok);
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = INT64_MAX};
        json_t *params = json_pack ("{s:i, s:i}", "minLines", 80, "neighborHops", 1);
        ar_strategy_result_t result = {.applied = false};
        assert (s_apply (&ctx, params, &result) == 0 && result.applied);
        int64_t after = ar_chat_view_count_tokens (shape, request, tok);
        if (verbose)
            printf ("code_graph %s: %s (%lld -> %lld tokens)\n", s ? "anthropic" : "openai",
                    result.note, (long long)before, (long long)after);
        assert (after < before);
        char why[128];
        assert (ar_chat_view_validate (shape, request, why, sizeof why) == 0);
        assert (s_check_stash (shape, original, request, stash) == 2);
        char *glob = s_message_text (shape, request, 2);
        assert (strstr (glob, "    names = _listdir(dirname, dir_fd, dironly)\n")); // the seed
        assert (strstr (glob, "    with contextlib.closing(")); // a callee: kept
        assert (strstr (glob, "    return _glob1(dirname, pattern, None, False)")); // a caller
        assert (!strstr (glob, "drive, pathname = os.path.splitdrive(pathname)"));  // far: gone
        assert (strstr (glob, "def escape(pathname):"));
        free (glob);
        //  Zero hops: only the seed's body stays.
        json_t *copy = json_deep_copy (original);
        ctx.request = copy;
        json_t *zero = json_pack ("{s:i, s:i}", "minLines", 80, "neighborHops", 0);
        result = (ar_strategy_result_t){.applied = false};
        assert (s_apply (&ctx, zero, &result) == 0 && result.applied);
        glob = s_message_text (shape, copy, 2);
        assert (strstr (glob, "    names = _listdir(dirname, dir_fd, dironly)\n"));
        assert (!strstr (glob, "    with contextlib.closing("));
        free (glob);
        //  Without a stash, nothing; bad params, -1 and untouched.
        json_decref (copy);
        copy = json_deep_copy (original);
        ctx.request = copy;
        ctx.stash = NULL;
        assert (s_apply (&ctx, params, &result) == 0 && json_equal (copy, original));
        ctx.stash = &sink;
        json_t *bad = json_pack ("{s:i}", "neighborHops", 9);
        assert (s_apply (&ctx, bad, &result) == -1 && json_equal (copy, original));
        json_decref (bad);
        json_decref (zero);
        json_decref (copy);
        json_decref (params);
        json_decref (original);
        json_decref (request);
    }

    //  2. An error location seeds the function enclosing it: a traceback the person pasted.
    {
        json_t *request = s_request (AR_SHAPE_OPENAI_CHAT, paths, texts, 1,
                                     "It fails:\nTraceback (most recent call last):\n  File "
                                     "\"lib/glob.py\", line 243, in escape\nTypeError: x");
        json_t *params = json_pack ("{s:i, s:i}", "minLines", 80, "neighborHops", 0);
        ar_strategy_ctx_t ctx = {.shape = AR_SHAPE_OPENAI_CHAT,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = INT64_MAX};
        ar_strategy_result_t result = {.applied = false};
        assert (s_apply (&ctx, params, &result) == 0 && result.applied);
        char *glob = s_message_text (AR_SHAPE_OPENAI_CHAT, request, 2);
        assert (strstr (glob, "drive, pathname = os.path.splitdrive(pathname)")); // kept now
        assert (!strstr (glob, "    names = _listdir(dirname, dir_fd, dironly)\n"));
        free (glob);
        json_decref (params);
        json_decref (request);
    }

    //  3. Property loop: random files, cuts, questions and hops; valid, never more tokens, the
    //  same messages and roles, the latest message untouched, stash round trip.
    ar_rng_t rng = {0x9a9e5eedc0dea11ull};
    size_t applied = 0, cases = 120;
    for (size_t c = 0; c < cases; c++) {
        ar_shape_t shape =
            ar_rng_below (&rng, 2) ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        size_t files = 1 + ar_rng_below (&rng, 4);
        const char *ps[4];
        char *ts[4];
        for (size_t k = 0; k < files; k++) {
            size_t f = ar_rng_below (&rng, 4);
            size_t from = ar_rng_below (&rng, 3) ? 0 : ar_rng_below (&rng, lens[f]);
            ts[k] = strndup (texts[f] + from, lens[f] - from);
            ps[k] = paths[f];
        }
        static const char *questions[] = {"Why does _glob1 fail?", "Look at WrapF please",
                                          "ReadRecord drops data", "mergeHeaders is wrong",
                                          "nothing in particular"};
        json_t *request = s_request (shape, ps, ts, files, questions[ar_rng_below (&rng, 5)]);
        json_t *original = json_deep_copy (request);
        int64_t before = ar_chat_view_count_tokens (shape, request, tok);
        json_t *params = json_pack ("{s:i, s:i}", "minLines", 1 + (int)ar_rng_below (&rng, 100),
                                    "neighborHops", (int)ar_rng_below (&rng, 3));
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = INT64_MAX};
        ar_strategy_result_t result = {.applied = false};
        assert (s_apply (&ctx, params, &result) == 0);
        int64_t after = ar_chat_view_count_tokens (shape, request, tok);
        assert (after <= before && (!result.applied || after < before));
        char why[128];
        assert (ar_chat_view_validate (shape, request, why, sizeof why) == 0);
        json_t *min = ar_chat_view_messages (original), *mout = ar_chat_view_messages (request);
        size_t n = json_array_size (min);
        assert (n == json_array_size (mout));
        assert (json_equal (json_array_get (min, n - 1), json_array_get (mout, n - 1)));
        for (size_t i = 0; i < n; i++)
            assert (ar_chat_view_role (shape, json_array_get (min, i)) ==
                    ar_chat_view_role (shape, json_array_get (mout, i)));
        assert ((s_check_stash (shape, original, request, stash) > 0) == result.applied);
        applied += result.applied;
        json_decref (params);
        json_decref (original);
        json_decref (request);
        for (size_t k = 0; k < files; k++)
            free (ts[k]);
    }
    if (verbose)
        printf ("code_graph property: %zu cases, %zu applied\n", cases, applied);
    assert (applied * 5 >= cases);
    for (size_t f = 0; f < 4; f++)
        free (texts[f]);
    s_parse_budget_us = S_PARSE_BUDGET_US;
    ar_stash_destroy (&stash);
    char cmd[256];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
    ar_tokenizer_destroy (&tok);
}
