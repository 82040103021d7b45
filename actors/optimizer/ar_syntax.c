/*  ar_syntax: language detection, tree-sitter parsing and definition queries for the code
    strategies. See ar_syntax.h.

    One TSParser per thread (a pthread key frees it when the thread ends): parsers are not
    thread-safe and cost a few KB, so the optimizer's worker threads each keep theirs. The
    queries are compiled once per process (TSQuery is immutable, shared by all threads).

    Each language has one query with the captures @def (the definition), @name (its name),
    @decl (C/C++: the declarator the name is read from) and @body (what a skeleton elides).
*/
#include "ar_syntax.h"
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tree_sitter/api.h>

const TSLanguage *tree_sitter_python (void);
const TSLanguage *tree_sitter_javascript (void);
const TSLanguage *tree_sitter_typescript (void);
const TSLanguage *tree_sitter_tsx (void);
const TSLanguage *tree_sitter_go (void);
const TSLanguage *tree_sitter_rust (void);
const TSLanguage *tree_sitter_java (void);
const TSLanguage *tree_sitter_c (void);
const TSLanguage *tree_sitter_cpp (void);

#define S_JS_DEFS                                                                                  \
    "(function_declaration name: (identifier) @name body: (statement_block) @body) @def\n"         \
    "(generator_function_declaration name: (identifier) @name body: (statement_block) @body) "     \
    "@def\n"                                                                                       \
    "(method_definition name: (_) @name body: (statement_block) @body) @def\n"                     \
    "(variable_declarator name: (identifier) @name value: [(arrow_function body: "                 \
    "(statement_block) @body) (function_expression body: (statement_block) @body)]) @def\n"        \
    "(pair key: (_) @name value: [(arrow_function body: (statement_block) @body) "                 \
    "(function_expression body: (statement_block) @body)]) @def\n"

#define S_C_DEFS                                                                                   \
    "(function_definition declarator: (_) @decl body: (compound_statement) @body) @def\n"

static const struct {
    const char *name;
    const TSLanguage *(*language) (void);
    const char *query;
} s_langs[AR_LANG_COUNT] = {
    [AR_LANG_NONE] = {"", NULL, NULL},
    [AR_LANG_PYTHON] =
        {"python", tree_sitter_python,
         "(function_definition name: (identifier) @name body: (block) @body) @def\n"},
    [AR_LANG_JAVASCRIPT] = {"javascript", tree_sitter_javascript, S_JS_DEFS},
    [AR_LANG_TYPESCRIPT] = {"typescript", tree_sitter_typescript, S_JS_DEFS},
    [AR_LANG_TSX] = {"tsx", tree_sitter_tsx, S_JS_DEFS},
    [AR_LANG_GO] = {"go", tree_sitter_go,
                    "(function_declaration name: (identifier) @name body: (block) @body) @def\n"
                    "(method_declaration name: (field_identifier) @name body: (block) @body) "
                    "@def\n"},
    [AR_LANG_RUST] = {"rust", tree_sitter_rust,
                      "(function_item name: (identifier) @name body: (block) @body) @def\n"},
    [AR_LANG_JAVA] = {"java", tree_sitter_java,
                      "(method_declaration name: (identifier) @name body: (block) @body) @def\n"
                      "(constructor_declaration name: (identifier) @name body: "
                      "(constructor_body) @body) @def\n"},
    [AR_LANG_C] = {"c", tree_sitter_c, S_C_DEFS},
    [AR_LANG_CPP] = {"cpp", tree_sitter_cpp, S_C_DEFS},
};

static TSQuery *s_queries[AR_LANG_COUNT];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static pthread_key_t s_parser_key;

static void s_parser_free (void *parser)
{
    ts_parser_delete ((TSParser *)parser);
}

static void s_init (void)
{
    pthread_key_create (&s_parser_key, s_parser_free);
}

//  The query of one language, compiled on first use (compiling all nine costs tens of ms, and
//  most processes see one or two languages). NULL when the grammar's ABI is not the runtime's
//  or the query does not compile: that language is refused.
static TSQuery *s_query (ar_lang_t lang)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static bool tried[AR_LANG_COUNT];
    pthread_mutex_lock (&lock);
    if (!tried[lang]) {
        tried[lang] = true;
        uint32_t offset = 0;
        TSQueryError error = TSQueryErrorNone;
        const TSLanguage *language = s_langs[lang].language ();
        uint32_t version = ts_language_version (language);
        if (version >= TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION &&
            version <= TREE_SITTER_LANGUAGE_VERSION) {
            s_queries[lang] =
                ts_query_new (language, s_langs[lang].query, (uint32_t)strlen (s_langs[lang].query),
                              &offset, &error);
            if (!s_queries[lang])
                fprintf (stderr, "ar_syntax: %s query error %d at %u\n", s_langs[lang].name,
                         (int)error, offset);
        }
    }
    TSQuery *query = s_queries[lang];
    pthread_mutex_unlock (&lock);
    return query;
}

static TSParser *s_parser (void)
{
    TSParser *parser = pthread_getspecific (s_parser_key);
    if (!parser) {
        parser = ts_parser_new ();
        if (parser && pthread_setspecific (s_parser_key, parser) != 0) {
            ts_parser_delete (parser);
            parser = NULL;
        }
    }
    return parser;
}

size_t ar_syntax_warm (void)
{
    pthread_once (&s_once, s_init);
    size_t usable = 0;
    if (!s_parser ())
        return 0;
    for (int lang = AR_LANG_NONE + 1; lang < AR_LANG_COUNT; lang++)
        usable += s_query ((ar_lang_t)lang) != NULL;
    return usable;
}

const char *ar_syntax_lang_name (ar_lang_t lang)
{
    return lang > AR_LANG_NONE && lang < AR_LANG_COUNT ? s_langs[lang].name : "";
}

ar_lang_t ar_syntax_lang_from_path (const char *path, size_t len)
{
    static const struct {
        const char *ext;
        ar_lang_t lang;
    } exts[] = {{"py", AR_LANG_PYTHON},
                {"pyi", AR_LANG_PYTHON},
                {"js", AR_LANG_JAVASCRIPT},
                {"mjs", AR_LANG_JAVASCRIPT},
                {"cjs", AR_LANG_JAVASCRIPT},
                {"jsx", AR_LANG_TSX},
                {"ts", AR_LANG_TYPESCRIPT},
                {"mts", AR_LANG_TYPESCRIPT},
                {"cts", AR_LANG_TYPESCRIPT},
                {"tsx", AR_LANG_TSX},
                {"go", AR_LANG_GO},
                {"rs", AR_LANG_RUST},
                {"java", AR_LANG_JAVA},
                {"c", AR_LANG_C},
                {"h", AR_LANG_C},
                {"cc", AR_LANG_CPP},
                {"cpp", AR_LANG_CPP},
                {"cxx", AR_LANG_CPP},
                {"hpp", AR_LANG_CPP},
                {"hh", AR_LANG_CPP},
                {"hxx", AR_LANG_CPP}};
    size_t dot = len;
    while (dot > 0 && path[dot - 1] != '.' && path[dot - 1] != '/')
        dot--;
    if (dot == 0 || path[dot - 1] != '.' || len - dot > 4)
        return AR_LANG_NONE;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strlen (exts[i].ext) == len - dot &&
            strncasecmp (path + dot, exts[i].ext, len - dot) == 0)
            return exts[i].lang;
    return AR_LANG_NONE;
}

static bool s_starts (const char *line, size_t len, const char *prefix)
{
    size_t n = strlen (prefix);
    return len >= n && memcmp (line, prefix, n) == 0;
}

ar_lang_t ar_syntax_lang_from_content (const char *text, size_t len)
{
    if (s_starts (text, len, "#!")) {
        const char *eol = memchr (text, '\n', len);
        size_t n = eol ? (size_t)(eol - text) : len;
        if (memmem (text, n, "python", 6))
            return AR_LANG_PYTHON;
        if (memmem (text, n, "node", 4) || memmem (text, n, "deno", 4))
            return AR_LANG_JAVASCRIPT;
    }
    //  Test runs and tracebacks quote code but are not code.
    if (memmem (text, len, "Traceback (most recent call last)", 33) ||
        memmem (text, len, "test session starts", 19) || memmem (text, len, "\nE   ", 5))
        return AR_LANG_NONE;
    //  Votes from line starts (indentation skipped) over the first 400 lines.
    int votes[AR_LANG_COUNT] = {0};
    size_t lines = 0;
    for (size_t i = 0; i < len && lines < 400; lines++) {
        const char *eol = memchr (text + i, '\n', len - i);
        size_t end = eol ? (size_t)(eol - text) : len;
        size_t s = i;
        while (s < end && (text[s] == ' ' || text[s] == '\t'))
            s++;
        const char *l = text + s;
        size_t n = end - s;
        if (s_starts (l, n, "def ") || s_starts (l, n, "from ") || s_starts (l, n, "elif ") ||
            (s_starts (l, n, "class ") && n && l[n - 1] == ':'))
            votes[AR_LANG_PYTHON]++;
        if (s_starts (l, n, "func ") || s_starts (l, n, "package "))
            votes[AR_LANG_GO] += s_starts (l, n, "package ") && memchr (l, ';', n) ? 0 : 1;
        if (s_starts (l, n, "fn ") || s_starts (l, n, "pub fn ") || s_starts (l, n, "impl ") ||
            s_starts (l, n, "use ") || s_starts (l, n, "let mut "))
            votes[AR_LANG_RUST]++;
        if (s_starts (l, n, "public class ") || s_starts (l, n, "private ") ||
            s_starts (l, n, "@Override") || (s_starts (l, n, "package ") && memchr (l, ';', n)))
            votes[AR_LANG_JAVA]++;
        if (s_starts (l, n, "#include") || s_starts (l, n, "#define "))
            votes[AR_LANG_C]++;
        if (s_starts (l, n, "namespace ") || s_starts (l, n, "template<") ||
            s_starts (l, n, "template <") || memmem (l, n, "std::", 5))
            votes[AR_LANG_CPP] += 2;
        if (s_starts (l, n, "function ") || s_starts (l, n, "const ") ||
            s_starts (l, n, "export ") || s_starts (l, n, "module.exports"))
            votes[AR_LANG_JAVASCRIPT]++;
        if (s_starts (l, n, "interface ") || s_starts (l, n, "export interface ") ||
            s_starts (l, n, "type ") || s_starts (l, n, "export type "))
            votes[AR_LANG_TYPESCRIPT] += 2;
        i = end + 1;
    }
    if (votes[AR_LANG_CPP])
        votes[AR_LANG_CPP] += votes[AR_LANG_C];
    if (votes[AR_LANG_TYPESCRIPT])
        votes[AR_LANG_TYPESCRIPT] += votes[AR_LANG_JAVASCRIPT];
    ar_lang_t best = AR_LANG_NONE;
    int best_votes = 0, second = 0;
    for (int lang = 1; lang < AR_LANG_COUNT; lang++) {
        if (votes[lang] > best_votes) {
            second = best_votes;
            best_votes = votes[lang];
            best = (ar_lang_t)lang;
        } else if (votes[lang] > second)
            second = votes[lang];
    }
    //  At least three telltale lines, and a clear lead over the runner-up.
    best = best_votes >= 3 ? best : AR_LANG_NONE;
    return best != AR_LANG_NONE && best_votes >= 2 * second ? best : AR_LANG_NONE;
}

//  Bytes under ERROR nodes (MISSING nodes count one byte each).
static uint32_t s_error_bytes (TSNode node)
{
    if (!ts_node_has_error (node))
        return 0;
    if (ts_node_is_missing (node))
        return 1;
    if (strcmp (ts_node_type (node), "ERROR") == 0)
        return ts_node_end_byte (node) - ts_node_start_byte (node);
    uint32_t sum = 0, count = ts_node_child_count (node);
    for (uint32_t i = 0; i < count; i++)
        sum += s_error_bytes (ts_node_child (node, i));
    return sum;
}

//  C/C++: the name inside a declarator (pointer, reference, function declarators, ...).
static bool s_declarator_name (TSNode node, uint32_t *start, uint32_t *end)
{
    for (int depth = 0; depth < 8 && !ts_node_is_null (node); depth++) {
        const char *type = ts_node_type (node);
        if (strstr (type, "identifier") || strcmp (type, "destructor_name") == 0 ||
            strcmp (type, "operator_name") == 0) {
            *start = ts_node_start_byte (node);
            *end = ts_node_end_byte (node);
            return true;
        }
        TSNode inner = ts_node_child_by_field_name (node, "declarator", 10);
        if (ts_node_is_null (inner) && ts_node_named_child_count (node))
            inner = ts_node_named_child (node, 0);
        node = inner;
    }
    return false;
}

//  Python: end of the first line of the docstring that opens a body, or 0.
static uint32_t s_doc_end (const char *text, TSNode body)
{
    TSNode first = ts_node_named_child (body, 0);
    if (ts_node_is_null (first) || strcmp (ts_node_type (first), "expression_statement") != 0)
        return 0;
    TSNode string = ts_node_named_child (first, 0);
    if (ts_node_is_null (string) || strcmp (ts_node_type (string), "string") != 0)
        return 0;
    uint32_t start = ts_node_start_byte (string), end = ts_node_end_byte (string);
    const char *eol = memchr (text + start, '\n', end - start);
    return eol ? (uint32_t)(eol - text) : end;
}

static int s_by_start (const void *a, const void *b)
{
    const ar_syntax_def_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end > y->end ? -1 : x->end < y->end;
}

static int s_push (void **array, size_t *count, size_t *max, size_t size)
{
    if (*count < *max)
        return 0;
    size_t grown = *max ? *max * 2 : 64;
    void *bigger = realloc (*array, grown * size);
    if (!bigger)
        return -1;
    *array = bigger;
    *max = grown;
    return 0;
}

static int s_idents (TSNode root, ar_syntax_outline_t *outline)
{
    size_t max = 0;
    TSTreeCursor cursor = ts_tree_cursor_new (root);
    int rc = 0;
    for (bool more = true; more;) {
        TSNode node = ts_tree_cursor_current_node (&cursor);
        if (ts_node_child_count (node) == 0) {
            const char *type = ts_node_type (node);
            size_t n = strlen (type);
            if (n >= 10 && strcmp (type + n - 10, "identifier") == 0) {
                if (s_push ((void **)&outline->idents, &outline->ident_count, &max,
                            sizeof (ar_syntax_ident_t)) != 0) {
                    rc = -1;
                    break;
                }
                outline->idents[outline->ident_count++] =
                    (ar_syntax_ident_t){ts_node_start_byte (node), ts_node_end_byte (node)};
            }
        }
        if (ts_tree_cursor_goto_first_child (&cursor))
            continue;
        while (!ts_tree_cursor_goto_next_sibling (&cursor))
            if (!ts_tree_cursor_goto_parent (&cursor)) {
                more = false;
                break;
            }
    }
    ts_tree_cursor_delete (&cursor);
    return rc;
}

int ar_syntax_outline (ar_lang_t lang, const char *text, size_t len, bool want_idents,
                       double max_error_fraction, int64_t max_us, ar_syntax_outline_t *outline)
{
    memset (outline, 0, sizeof *outline);
    if (lang <= AR_LANG_NONE || lang >= AR_LANG_COUNT || !text || len == 0 || len > UINT32_MAX)
        return -1;
    pthread_once (&s_once, s_init);
    TSParser *parser = s_parser ();
    TSQuery *query = s_query (lang);
    if (!parser || !query || !ts_parser_set_language (parser, s_langs[lang].language ()))
        return -1;
    if (max_us < 0)
        return -2;
    ts_parser_set_timeout_micros (parser, (uint64_t)max_us);
    TSTree *tree = ts_parser_parse_string (parser, NULL, text, (uint32_t)len);
    if (!tree) {
        ts_parser_reset (parser); // timed out: the next parse starts afresh
        return -2;
    }
    outline->lang = lang;
    TSNode root = ts_tree_root_node (tree);
    outline->error_fraction = (double)s_error_bytes (root) / (double)len;
    int rc = -1;
    if (outline->error_fraction > max_error_fraction)
        goto done;
    TSQueryCursor *cursor = ts_query_cursor_new ();
    if (!cursor)
        goto done;
    ts_query_cursor_exec (cursor, query, root);
    TSQueryMatch match;
    size_t max = 0;
    rc = 0;
    while (ts_query_cursor_next_match (cursor, &match)) {
        ar_syntax_def_t def = {0};
        bool body = false;
        for (uint16_t c = 0; c < match.capture_count; c++) {
            uint32_t n;
            const char *name = ts_query_capture_name_for_id (query, match.captures[c].index, &n);
            TSNode node = match.captures[c].node;
            if (strcmp (name, "def") == 0) {
                def.start = ts_node_start_byte (node);
                def.end = ts_node_end_byte (node);
            } else if (strcmp (name, "name") == 0) {
                def.name_start = ts_node_start_byte (node);
                def.name_end = ts_node_end_byte (node);
            } else if (strcmp (name, "decl") == 0)
                s_declarator_name (node, &def.name_start, &def.name_end);
            else if (strcmp (name, "body") == 0) {
                def.body_start = ts_node_start_byte (node);
                def.body_end = ts_node_end_byte (node);
                if (lang == AR_LANG_PYTHON)
                    def.doc_end = s_doc_end (text, node);
                body = true;
            }
        }
        if (!body || def.end < def.body_end)
            continue;
        if (s_push ((void **)&outline->defs, &outline->def_count, &max, sizeof (ar_syntax_def_t)) !=
            0) {
            rc = -1;
            break;
        }
        outline->defs[outline->def_count++] = def;
    }
    ts_query_cursor_delete (cursor);
    if (rc == 0 && outline->def_count)
        qsort (outline->defs, outline->def_count, sizeof (ar_syntax_def_t), s_by_start);
    if (rc == 0 && want_idents)
        rc = s_idents (root, outline);
done:
    ts_tree_delete (tree);
    if (rc != 0)
        ar_syntax_outline_fini (outline);
    return rc;
}

void ar_syntax_outline_fini (ar_syntax_outline_t *outline)
{
    free (outline->defs);
    free (outline->idents);
    outline->defs = NULL;
    outline->idents = NULL;
    outline->def_count = outline->ident_count = 0;
}

//  --------------------------------------------------------------------------------------------
//  Source files inside tool outputs.

static const char *s_find (const char *text, size_t len, size_t from, const char *needle)
{
    if (from >= len)
        return NULL;
    return memmem (text + from, len - from, needle, strlen (needle));
}

size_t ar_syntax_segments (const char *text, size_t len, size_t *starts, size_t *ends, size_t max)
{
    static const char *tags[][2] = {{"<output>\n", "</output>"},
                                    {"<output_head>\n", "</output_head>"},
                                    {"<output_tail>\n", "</output_tail>"}};
    size_t count = 0;
    for (size_t t = 0; t < 3 && count < max; t++) {
        const char *open = s_find (text, len, 0, tags[t][0]);
        if (!open)
            continue;
        size_t start = (size_t)(open - text) + strlen (tags[t][0]);
        const char *close = s_find (text, len, start, tags[t][1]);
        starts[count] = start;
        ends[count++] = close ? (size_t)(close - text) : len;
    }
    if (count == 0 && max) {
        starts[0] = 0;
        ends[0] = len;
        count = 1;
    }
    return count;
}

//  Length of a line-number prefix of the given style (0: none): 1 "  12\t", 2 "12:" / "12-".
static uint32_t s_prefix (const char *line, size_t len, int style)
{
    size_t i = 0;
    if (style == 1)
        while (i < len && line[i] == ' ')
            i++;
    size_t digits = i;
    while (i < len && line[i] >= '0' && line[i] <= '9')
        i++;
    if (i == digits || i - digits > 9 || i >= len)
        return 0;
    if (style == 1 && line[i] == '\t')
        return (uint32_t)i + 1;
    if (style == 2 && (line[i] == ':' || line[i] == '-'))
        return (uint32_t)i + 1;
    return 0;
}

int ar_syntax_source_init (ar_syntax_source_t *source, const char *text, size_t start, size_t end)
{
    memset (source, 0, sizeof *source);
    if (end < start || end > UINT32_MAX)
        return -1;
    size_t count = 0;
    for (size_t i = start; i < end; i++)
        count += text[i] == '\n';
    count++;
    source->lines = calloc (count, sizeof (ar_syntax_line_t));
    source->text = malloc (end - start + count + 1);
    if (!source->lines || !source->text) {
        ar_syntax_source_fini (source);
        return -1;
    }
    //  Lines, then the prefix style most of the non-empty lines have (80%).
    size_t n = 0, nonempty = 0, styled[3] = {0};
    for (size_t i = start; i <= end && n < count;) {
        const char *eol = i < end ? memchr (text + i, '\n', end - i) : NULL;
        size_t stop = eol ? (size_t)(eol - text) : end;
        if (!eol && stop == i && n > 0)
            break; // the text ends with '\n': no empty last line
        source->lines[n++] = (ar_syntax_line_t){(uint32_t)i, (uint32_t)stop, 0, 0};
        if (stop > i) {
            nonempty++;
            for (int style = 1; style <= 2; style++)
                styled[style] += s_prefix (text + i, stop - i, style) > 0;
        }
        i = stop + 1;
    }
    source->line_count = n;
    int style = 0;
    if (nonempty && styled[1] * 5 >= nonempty * 4)
        style = 1;
    else if (nonempty && styled[2] * 5 >= nonempty * 4)
        style = 2;
    size_t out = 0;
    for (size_t l = 0; l < n; l++) {
        ar_syntax_line_t *line = &source->lines[l];
        const char *at = text + line->start;
        size_t len = line->end - line->start;
        line->prefix = style ? s_prefix (at, len, style) : 0;
        line->text = (uint32_t)out;
        //  With numbered lines, an unnumbered one (a header) is blank to the parser.
        if (!style || line->prefix) {
            memcpy (source->text + out, at + line->prefix, len - line->prefix);
            out += len - line->prefix;
        }
        source->text[out++] = '\n';
    }
    source->text[out] = 0;
    source->len = out;
    source->start = start;
    source->end = end;
    return 0;
}

void ar_syntax_source_fini (ar_syntax_source_t *source)
{
    free (source->text);
    free (source->lines);
    source->text = NULL;
    source->lines = NULL;
    source->len = source->line_count = 0;
}

size_t ar_syntax_source_line (const ar_syntax_source_t *source, uint32_t offset)
{
    size_t lo = 0, hi = source->line_count;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (source->lines[mid].text <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

bool ar_syntax_command_path (const char *command, size_t len, bool any_use, const char **path,
                             size_t *path_len)
{
    static const char *readers[] = {"cat",  "nl",   "sed", "head",  "tail",
                                    "less", "more", "bat", "batcat"};
    bool first = true, reader = false;
    for (size_t i = 0; i < len;) {
        char c = command[i];
        if (c == '|' || c == ';' || c == '&' || c == '\n' || c == '(' || c == ')') {
            first = true; // a new command in the pipeline or list
            i++;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\\' || c == '<' || c == '>') {
            i++;
            continue;
        }
        //  One word, quotes stripped.
        size_t s = i, e;
        char quote = (c == '\'' || c == '"') ? c : 0;
        if (quote) {
            s = ++i;
            while (i < len && command[i] != quote)
                i++;
            e = i;
            i += i < len;
        } else {
            while (i < len && !strchr (" \t\n|;&()<>", command[i]))
                i++;
            e = i;
        }
        if (first) {
            const char *word = command + s;
            size_t n = e - s;
            const char *slash = memrchr (word, '/', n);
            if (slash) { // /usr/bin/cat
                n -= (size_t)(slash + 1 - word);
                word = slash + 1;
            }
            reader = false;
            for (size_t r = 0; r < sizeof readers / sizeof readers[0]; r++)
                reader |= strlen (readers[r]) == n && memcmp (readers[r], word, n) == 0;
            first = false;
            continue;
        }
        //  A path is one plain word (not a sed script that happens to end in ".py").
        bool plain = !memchr (command + s, ' ', e - s) && !memchr (command + s, '(', e - s);
        if ((reader || any_use) && plain && e > s &&
            ar_syntax_lang_from_path (command + s, e - s)) {
            *path = command + s;
            *path_len = e - s;
            return true;
        }
    }
    return false;
}

size_t ar_syntax_elide (const char *text, const ar_syntax_source_t *source,
                        const ar_syntax_outline_t *outline, size_t min_body,
                        ar_syntax_keep_fn *keep, void *arg, ar_buf_t *out)
{
    size_t elided = 0, next = 0; // next: the first line not yet copied
    uint32_t covered = 0;        // stripped bytes before this are inside an elided body
    const ar_syntax_line_t *lines = source->lines;
    int failed = 0;
    for (size_t d = 0; d < outline->def_count && !failed; d++) {
        const ar_syntax_def_t *def = &outline->defs[d];
        if (def->body_start < covered || def->body_end <= def->body_start)
            continue;
        size_t head = ar_syntax_source_line (source, def->start);
        size_t open = ar_syntax_source_line (source, def->body_start);
        size_t close = ar_syntax_source_line (source, def->body_end - 1);
        size_t a, b;
        if (outline->lang == AR_LANG_PYTHON) {
            if (open == head)
                continue; // def f(): return 1
            a = def->doc_end ? ar_syntax_source_line (source, def->doc_end) + 1 : open;
            b = close;
        } else {
            a = open + 1;
            b = close ? close - 1 : 0;
        }
        if (b < a || b - a + 1 < min_body || a < next)
            continue;
        if (keep && keep (outline, d, arg))
            continue;
        //  The indentation of the first non-blank elided line.
        const char *indent = "";
        size_t indent_len = 0;
        for (size_t l = a; l <= b && !indent_len; l++) {
            const char *t = source->text + lines[l].text;
            size_t n = 0;
            while (t[n] == ' ' || t[n] == '\t')
                n++;
            if (t[n] != '\n') {
                indent = t;
                indent_len = n;
                break;
            }
        }
        failed |= ar_buf_add (out, text + lines[next].start, lines[a].start - lines[next].start);
        failed |= ar_buf_add (out, indent, indent_len);
        failed |= ar_buf_add (out, "...\n", 4);
        next = b + 1;
        covered = def->body_end;
        elided++;
    }
    if (next < source->line_count)
        failed |= ar_buf_add (out, text + lines[next].start, source->end - lines[next].start);
    return failed ? 0 : elided;
}

const char *ar_syntax_basename (const char *path)
{
    const char *slash = strrchr (path, '/');
    return slash ? slash + 1 : path;
}

bool ar_syntax_same_path (const char *a, const char *b)
{
    while (a[0] == '.' && a[1] == '/')
        a += 2;
    while (b[0] == '.' && b[1] == '/')
        b += 2;
    size_t la = strlen (a), lb = strlen (b);
    if (!la || !lb)
        return false;
    if (la < lb) {
        const char *t = a;
        a = b;
        b = t;
        size_t tl = la;
        la = lb;
        lb = tl;
    }
    return strcmp (a + la - lb, b) == 0 && (la == lb || a[la - lb - 1] == '/');
}

int ar_syntax_scope_init (ar_strategy_ctx_t *ctx, size_t keep_turns, const char *no_stash_note,
                          ar_strategy_result_t *result, ar_syntax_scope_t *scope)
{
    ar_shape_t shape = ctx->shape;
    memset (scope, 0, sizeof *scope);
    json_t *messages = ar_chat_view_messages (ctx->request);
    size_t n = json_array_size (messages);
    if (n < 3)
        return 0;
    if (!ctx->stash) {
        snprintf (result->note, sizeof result->note, "%s", no_stash_note);
        return 0;
    }
    char why[96];
    if (ar_chat_view_validate (shape, ctx->request, why, sizeof why) != 0) {
        snprintf (result->note, sizeof result->note, "left alone: %s", why);
        return 0;
    }
    size_t protect_from = n, turns = 0;
    while (protect_from > 0 && turns < keep_turns)
        if (ar_chat_view_role (shape, json_array_get (messages, --protect_from)) ==
            AR_CHAT_ROLE_ASSISTANT)
            turns++;
    if (turns < keep_turns)
        protect_from = 0;
    scope->messages = messages;
    scope->n = n;
    scope->protect_from = protect_from;
    scope->last_turn = ar_chat_view_last_user (shape, messages, false);
    scope->last_text = ar_chat_view_last_user (shape, messages, true);
    scope->count = ar_syntax_results (shape, messages, &scope->results);
    scope->hot = calloc (scope->count + 1, 256);
    if (!scope->hot) {
        ar_syntax_scope_fini (scope);
        return -1;
    }
    for (size_t r = 0; r < scope->count; r++)
        if (scope->results[r].message >= protect_from && scope->results[r].path[0])
            memcpy (scope->hot[scope->nhot++], scope->results[r].path, 256);
    return 1;
}

bool ar_syntax_scope_open (const ar_syntax_scope_t *scope, const ar_syntax_result_t *res)
{
    if (res->message >= scope->protect_from || res->message == scope->last_turn ||
        res->message == scope->last_text || res->message == scope->n - 1)
        return false;
    for (size_t h = 0; h < scope->nhot; h++)
        if (ar_syntax_same_path (scope->hot[h], res->path))
            return false;
    return true;
}

void ar_syntax_scope_fini (ar_syntax_scope_t *scope)
{
    free (scope->hot);
    free (scope->results);
    memset (scope, 0, sizeof *scope);
}

static bool s_copy_path (const char *at, size_t len, char *path, size_t size)
{
    if (len == 0 || len >= size)
        return false;
    memcpy (path, at, len);
    path[len] = 0;
    return true;
}

bool ar_syntax_call_path (const json_t *arguments, bool any_use, char *path, size_t size)
{
    static const char *keys[] = {"path",        "file_path", "filePath",     "filename",
                                 "target_file", "file",      "absolute_path"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *value = json_string_value (json_object_get (arguments, keys[k]));
        if (value && ar_syntax_lang_from_path (value, strlen (value)))
            return s_copy_path (value, strlen (value), path, size);
    }
    static const char *commands[] = {"command", "cmd", "script"};
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        const json_t *value = json_object_get (arguments, commands[k]);
        if (json_is_array (value)) // ["bash", "-lc", "cat x.py"]
            value = json_array_get (value, json_array_size (value) - 1);
        const char *command = json_string_value (value), *at;
        size_t len;
        if (command && ar_syntax_command_path (command, strlen (command), any_use, &at, &len))
            return s_copy_path (at, len, path, size);
    }
    return false;
}

typedef struct {
    const char *id;
    char path[256];
    bool reader;
} s_call_t;

//  The bash block of a mini-swe-agent assistant turn.
static const char *s_bash_block (const json_t *message, size_t *len)
{
    const char *text = json_string_value (json_object_get (message, "content"));
    if (!text) {
        json_t *first = json_array_get (json_object_get (message, "content"), 0);
        text = json_string_value (json_object_get (first, "text"));
    }
    const char *open = text ? strstr (text, "```bash\n") : NULL;
    if (!open)
        return NULL;
    open += 8;
    const char *close = strstr (open, "```");
    *len = close ? (size_t)(close - open) : strlen (open);
    return open;
}

static bool s_observation (const json_t *message)
{
    const char *text = json_string_value (json_object_get (message, "content"));
    return text && strncmp (text, "<returncode>", 12) == 0;
}

size_t ar_syntax_results (ar_shape_t shape, json_t *messages, ar_syntax_result_t **out)
{
    size_t n = json_array_size (messages), ncalls = 0, maxcalls = 0, count = 0, max = 0;
    s_call_t *calls = NULL;
    ar_syntax_result_t *results = NULL;
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *message = json_array_get (messages, i);
        ar_chat_role_t role = ar_chat_view_role (shape, message);
        if (role == AR_CHAT_ROLE_ASSISTANT) {
            size_t j;
            json_t *item;
            json_t *list = shape == AR_SHAPE_OPENAI_CHAT ? json_object_get (message, "tool_calls")
                                                         : json_object_get (message, "content");
            json_array_foreach (list, j, item)
            {
                json_t *args = NULL;
                const char *id = json_string_value (json_object_get (item, "id"));
                if (shape == AR_SHAPE_OPENAI_CHAT) {
                    const char *text = json_string_value (
                        json_object_get (json_object_get (item, "function"), "arguments"));
                    args = text ? json_loads (text, 0, NULL) : NULL;
                } else if (json_is_object (json_object_get (item, "input")))
                    args = json_incref (json_object_get (item, "input"));
                if (id && args &&
                    s_push ((void **)&calls, &ncalls, &maxcalls, sizeof *calls) == 0) {
                    s_call_t *call = &calls[ncalls];
                    call->id = id;
                    call->reader = ar_syntax_call_path (args, false, call->path, sizeof call->path);
                    if (call->reader ||
                        ar_syntax_call_path (args, true, call->path, sizeof call->path))
                        ncalls++;
                }
                json_decref (args);
            }
            continue;
        }
        //  What this message answers, as (owner, call id) pairs.
        json_t *owners[64];
        const char *ids[64];
        size_t k = 0;
        if (role == AR_CHAT_ROLE_TOOL) {
            owners[k] = message;
            ids[k++] = json_string_value (json_object_get (message, "tool_call_id"));
        } else if (role == AR_CHAT_ROLE_USER && s_observation (message)) {
            owners[k] = message;
            ids[k++] = NULL;
        } else if (role == AR_CHAT_ROLE_USER && shape == AR_SHAPE_ANTHROPIC_MESSAGES) {
            size_t j;
            json_t *block;
            json_array_foreach (json_object_get (message, "content"), j, block)
            {
                const char *type = json_string_value (json_object_get (block, "type"));
                if (k < 64 && type && strcmp (type, "tool_result") == 0) {
                    owners[k] = block;
                    ids[k++] = json_string_value (json_object_get (block, "tool_use_id"));
                }
            }
        }
        for (size_t r = 0; r < k; r++) {
            if (s_push ((void **)&results, &count, &max, sizeof *results) != 0)
                break;
            ar_syntax_result_t *result = &results[count++];
            memset (result, 0, sizeof *result);
            result->message = i;
            result->owner = owners[r];
            if (ids[r]) {
                for (size_t c = ncalls; c-- > 0;)
                    if (strcmp (calls[c].id, ids[r]) == 0) {
                        memcpy (result->path, calls[c].path, sizeof result->path);
                        result->reader = calls[c].reader;
                        break;
                    }
            } else if (i > 0) {
                size_t len;
                const char *command = s_bash_block (json_array_get (messages, i - 1), &len), *at;
                size_t at_len;
                if (command) {
                    result->reader = ar_syntax_command_path (command, len, false, &at, &at_len);
                    if (result->reader || ar_syntax_command_path (command, len, true, &at, &at_len))
                        s_copy_path (at, at_len, result->path, sizeof result->path);
                }
            }
        }
    }
    free (calls);
    *out = results;
    return count;
}

void ar_syntax_collect_text (const char *text, size_t len, void *arg)
{
    ar_buf_add ((ar_buf_t *)arg, text, len);
    ar_buf_add ((ar_buf_t *)arg, "\n", 1);
}

size_t ar_syntax_pieces (json_t *owner, ar_syntax_piece_t *pieces, size_t max)
{
    json_t *content = json_object_get (owner, "content");
    if (json_is_string (content)) {
        if (!max)
            return 0;
        pieces[0] = (ar_syntax_piece_t){owner, "content", NULL};
        return 1;
    }
    size_t i, count = 0;
    json_t *part;
    json_array_foreach (content, i, part)
    {
        const char *type = json_string_value (json_object_get (part, "type"));
        if (count < max && type && strcmp (type, "text") == 0 &&
            json_is_string (json_object_get (part, "text")))
            pieces[count++] = (ar_syntax_piece_t){part, "text", NULL};
    }
    return count;
}

int ar_syntax_push_piece (ar_syntax_piece_t **all, size_t *count, size_t *max,
                          const ar_syntax_piece_t *piece)
{
    if (*count == *max) {
        size_t grown = *max ? *max * 2 : 16;
        ar_syntax_piece_t *bigger = realloc (*all, grown * sizeof (ar_syntax_piece_t));
        if (!bigger)
            return -1;
        *all = bigger;
        *max = grown;
    }
    (*all)[(*count)++] = *piece;
    return 0;
}

int ar_syntax_stash_elided (ar_strategy_ctx_t *ctx, json_t *owner, ar_syntax_piece_t *pieces,
                            size_t npieces, const size_t *marks, size_t elided, int64_t *after,
                            ar_syntax_piece_t **all, size_t *nall, size_t *maxall)
{
    char *original =
        json_dumps (json_object_get (owner, "content"), JSON_COMPACT | JSON_ENCODE_ANY);
    char id[33] = "";
    int put = original ? ctx->stash->put (ctx->stash->self, original, strlen (original), id) : -1;
    free (original);
    char marker[128];
    snprintf (marker, sizeof marker, "[anyray: %zu function bod%s elided; retrieve with id %s]\n",
              elided, elided == 1 ? "y" : "ies", id);
    bool marked = false;
    for (size_t p = 0; p < npieces && put == 0; p++) {
        if (!pieces[p].replacement)
            continue;
        if (!marked) {
            ar_buf_t buf = {NULL, 0, 0};
            json_t *old = pieces[p].replacement;
            const char *was = json_string_value (old);
            size_t at = marks[p];
            if (ar_buf_add (&buf, was, at) != 0 ||
                ar_buf_add (&buf, marker, strlen (marker)) != 0 ||
                ar_buf_add (&buf, was + at, json_string_length (old) - at) != 0)
                put = -1;
            else {
                *after += (int64_t)ar_tokenizer_count (ctx->tokenizer, marker, strlen (marker));
                pieces[p].replacement = json_stringn (buf.data, buf.len);
                json_decref (old);
                marked = true;
            }
            free (buf.data);
        }
        if (ar_syntax_push_piece (all, nall, maxall, &pieces[p]) != 0)
            put = -1;
        else
            pieces[p].replacement = NULL; // owned by all now
    }
    if (put != 0)
        for (size_t p = 0; p < npieces; p++) {
            json_decref (pieces[p].replacement);
            pieces[p].replacement = NULL;
        }
    return put == 0 ? 0 : -1;
}
//  --------------------------------------------------------------------------------------------

static void s_expect (ar_lang_t lang, const char *text, const char *first_name, size_t defs,
                      bool verbose)
{
    ar_syntax_outline_t outline;
    int rc = ar_syntax_outline (lang, text, strlen (text), true, 0.05, 0, &outline);
    if (verbose)
        printf ("ar_syntax %s: rc %d, %zu defs, %zu idents, errors %.3f\n",
                ar_syntax_lang_name (lang), rc, outline.def_count, outline.ident_count,
                outline.error_fraction);
    assert (rc == 0);
    assert (outline.def_count == defs);
    const ar_syntax_def_t *def = &outline.defs[0];
    assert (def->name_end - def->name_start == strlen (first_name));
    assert (memcmp (text + def->name_start, first_name, strlen (first_name)) == 0);
    assert (def->start <= def->body_start && def->body_end <= def->end);
    assert (outline.ident_count > 0);
    ar_syntax_outline_fini (&outline);
}

void ar_syntax_test (bool verbose)
{
    //  Every grammar has the ABI the runtime accepts and its query compiles.
    pthread_once (&s_once, s_init);
    for (int lang = 1; lang < AR_LANG_COUNT; lang++)
        assert (s_query ((ar_lang_t)lang));
    assert (ar_syntax_lang_from_path ("a/b/c.py", 8) == AR_LANG_PYTHON);
    assert (ar_syntax_lang_from_path ("x.TSX", 5) == AR_LANG_TSX);
    assert (ar_syntax_lang_from_path ("src/lib.rs", 10) == AR_LANG_RUST);
    assert (ar_syntax_lang_from_path ("Makefile", 8) == AR_LANG_NONE);
    assert (ar_syntax_lang_from_path ("a.d/README", 10) == AR_LANG_NONE);
    const char *py = "#!/usr/bin/env python3\nimport os\n";
    assert (ar_syntax_lang_from_content (py, strlen (py)) == AR_LANG_PYTHON);
    const char *go = "package main\n\nimport \"fmt\"\n\nfunc main() {\n}\nfunc f() {\n}\n";
    assert (ar_syntax_lang_from_content (go, strlen (go)) == AR_LANG_GO);
    const char *prose = "Hello there.\nThis is not code.\n";
    assert (ar_syntax_lang_from_content (prose, strlen (prose)) == AR_LANG_NONE);

    s_expect (AR_LANG_PYTHON,
              "class A:\n    def f(self, x):\n        \"\"\"Doc line.\n\n        More.\"\"\"\n"
              "        return x + 1\n\ndef g():\n    return A().f(2)\n",
              "f", 2, verbose);
    s_expect (AR_LANG_JAVASCRIPT,
              "function add(a, b) {\n  return a + b;\n}\nconst mul = (a, b) => {\n  return a * "
              "b;\n};\nclass K { m() { return add(1, 2); } }\n",
              "add", 3, verbose);
    s_expect (AR_LANG_TYPESCRIPT,
              "interface P { x: number }\nexport function norm(p: P): number {\n  return p.x;\n}\n",
              "norm", 1, verbose);
    s_expect (AR_LANG_TSX, "export function App(): JSX.Element {\n  return <div>hi</div>;\n}\n",
              "App", 1, verbose);
    s_expect (AR_LANG_GO,
              "package m\n\ntype T struct{ n int }\n\nfunc (t *T) Inc() {\n\tt.n++\n}\n\nfunc "
              "New() *T {\n\treturn &T{}\n}\n",
              "Inc", 2, verbose);
    s_expect (
        AR_LANG_RUST,
        "struct S;\nimpl S {\n    fn go(&self) -> u32 {\n        1\n    }\n}\nfn main() {\n    "
        "S.go();\n}\n",
        "go", 2, verbose);
    s_expect (AR_LANG_JAVA,
              "class A {\n  A() {\n    super();\n  }\n  int f(int x) {\n    return x;\n  }\n}\n",
              "A", 2, verbose);
    s_expect (AR_LANG_C, "#include <stdio.h>\nstatic char *name (int x)\n{\n    return 0;\n}\n",
              "name", 1, verbose);
    s_expect (
        AR_LANG_CPP,
        "namespace n {\nint S::get() const {\n  return v;\n}\n}\nvoid f() { std::cout << 1; }\n",
        "S::get", 2, verbose);
    //  Not code: errors everywhere, refused.
    ar_syntax_outline_t outline;
    const char *junk = "this is ) not ( python { at all ]]] }}} \n";
    assert (ar_syntax_outline (AR_LANG_PYTHON, junk, strlen (junk), false, 0.05, 0, &outline) ==
            -1);
    //  No time left: refused as a timeout.
    assert (ar_syntax_outline (AR_LANG_PYTHON, "x = 1\n", 6, false, 0.05, -1, &outline) == -2);

    //  Source views: numbered lines stripped, segments of a mini-swe-agent observation.
    const char *numbered =
        "Here is the file:\n     1\tdef f():\n     2\t    return 1\n     3\t\n     4\tx = 1\n";
    ar_syntax_source_t source;
    assert (ar_syntax_source_init (&source, numbered, 0, strlen (numbered)) == 0);
    assert (source.line_count == 5 && source.lines[1].prefix == 7);
    assert (strcmp (source.text, "\ndef f():\n    return 1\n\nx = 1\n") == 0);
    assert (ar_syntax_source_line (&source, 2) == 1);
    ar_syntax_source_fini (&source);
    const char *grep = "12:int x;\n13-int y;\n";
    assert (ar_syntax_source_init (&source, grep, 0, strlen (grep)) == 0);
    assert (source.line_count == 2 && strcmp (source.text, "int x;\nint y;\n") == 0);
    ar_syntax_source_fini (&source);
    const char *obs = "<returncode>0</returncode>\n<output_head>\nA\n</output_head>\n<elided_chars>"
                      "\n9\n</elided_chars>\n<output_tail>\nB\n</output_tail>";
    size_t starts[4], ends[4];
    assert (ar_syntax_segments (obs, strlen (obs), starts, ends, 4) == 2);
    assert (ends[0] - starts[0] == 2 && obs[starts[0]] == 'A' && obs[starts[1]] == 'B');
    const char *path;
    size_t path_len;
    const char *cmd = "cd /repo && nl -ba 'src/x.py' | sed -n '1,200p'";
    assert (ar_syntax_command_path (cmd, strlen (cmd), false, &path, &path_len));
    assert (path_len == 8 && memcmp (path, "src/x.py", 8) == 0);
    cmd = "python reproduce.py";
    assert (!ar_syntax_command_path (cmd, strlen (cmd), false, &path, &path_len));
    assert (ar_syntax_command_path (cmd, strlen (cmd), true, &path, &path_len));
    cmd = "/usr/bin/cat a/b.go";
    assert (ar_syntax_command_path (cmd, strlen (cmd), false, &path, &path_len) && path_len == 6);
}
