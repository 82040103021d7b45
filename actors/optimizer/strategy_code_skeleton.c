/*  strategy_code_skeleton: outline source files the agent read back, eliding function bodies.

    A coding agent reads whole files (cat, nl -ba, sed -n, an editor's view) and keeps them in
    its context for the rest of the run, though after a few turns it needs their shape more
    than their statements. Each older tool result that shows a source file (Python, JavaScript,
    TypeScript/TSX, Go, Rust, Java, C, C++; found by the producing call's path argument or shell
    command, else by content) becomes its outline: imports, declarations, classes, signatures,
    the first line of each Python docstring, with every function/method body of at least two
    lines replaced by one line "<indent>...". Line-number prefixes (cat -n, nl, grep -n) are
    stripped for parsing (ar_syntax, tree-sitter) and kept on every kept line. Text around the
    code (mini-swe-agent's <returncode>/<output> tags, headers) is kept as it is.

    One stash entry per tool result holds its original content (the JSON string, or the parts
    array, exactly as it was), and one marker line leads the rewritten text: "[anyray: N
    function bodies elided; retrieve with id <id>]".

    Never outlined, so the text an edit will replace is still there verbatim:
    - the results of the latest keepTurns assistant turns (default 1), and the latest message,
      last user turn and last user-written text;
    - any read of a file that those turns' calls or commands name (the file being edited), or
      whose name the last user text mentions;
    - files under minLines lines (default 80), and text the parser finds more than 5% errors in
      (fragments, not code).
    Only requests that pass ar_chat_view_validate are touched; without a stash nothing is.
*/
#include "ar_chat_view.h"
#include "ar_text_hash.h"
#include "ar_rng.h"
#include "ar_stash.h"
#include "ar_syntax.h"
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_ERRORS 0.05 // share of a text under parse errors beyond which it is left alone
#define S_MIN_BODY   2    // body lines worth one "..." line
#define S_SEGMENTS   4
//  Parse time one request may spend (cold; the memo makes later turns cheap): files past it
//  stay whole this turn and are outlined on a later one.
#define S_PARSE_BUDGET_US 1500
static int64_t s_parse_budget_us = S_PARSE_BUDGET_US; // tests may lift it
//  This thread's parse speed per language (microseconds per KB, 0 until measured): a parse
//  that would not finish in the budget left is not started, rather than cut when it is spent.
static _Thread_local double s_us_per_kb[AR_LANG_COUNT];

//  Learn from a parse of len bytes that took us microseconds; cut: it did not finish, so the
//  rate is at least what it shows.
static void s_learn_rate (ar_lang_t lang, size_t len, int64_t us, bool cut)
{
    double rate = (double)us * 1024.0 / (double)(len ? len : 1);
    double *known = &s_us_per_kb[lang];
    if (cut)
        *known = rate > *known ? rate : *known;
    else
        *known = *known > 0 ? 0.75 * *known + 0.25 * rate : rate;
}

//  A top-level line: one that starts a declaration, statement, comment or decorator at column 0.
static bool s_top_level (const ar_syntax_source_t *source, size_t line)
{
    char c = source->text[source->lines[line].text];
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '@' || c == '#' ||
           c == '/';
}

//  A fragment of a file (a head or tail cut by the tool, a sed -n range) parses only between
//  its first and last top-level lines, so the cut construct at either end is no error.
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

//  Rewrite text into buf (segment by segment); returns bodies elided (0: leave it). mark_at:
//  where the first outlined segment starts in buf (the marker goes there, so text around the
//  code, such as an observation's <returncode> tag, stays first). budget_us: parse time left
//  for this request; *cut is set when a parse ran out of it (the answer is not final).
static size_t s_outline (const char *text, size_t len, ar_lang_t hint, size_t min_lines,
                         int64_t *budget_us, bool *cut, ar_buf_t *buf, size_t *mark_at)
{
    size_t starts[S_SEGMENTS], ends[S_SEGMENTS];
    size_t count = ar_syntax_segments (text, len, starts, ends, S_SEGMENTS);
    size_t bodies = 0, copied = 0;
    for (size_t s = 0; s < count; s++) {
        ar_syntax_source_t source;
        if (ar_syntax_source_init (&source, text, starts[s], ends[s]) != 0)
            return 0;
        if (source.line_count < min_lines) {
            ar_syntax_source_fini (&source);
            continue;
        }
        //  A fragment: a tagged head or tail, or numbered lines not starting at line 1. Brace
        //  languages survive a cut end (the parser inserts the missing braces); Python's head
        //  is trimmed to its last complete top-level construct.
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
                return 0;
            starts[s] = start;
            ends[s] = end;
        }
        ar_syntax_outline_t outline;
        int rc = -1;
        bool parseable = lang && source.line_count >= 2;
        if (parseable && s_us_per_kb[lang] * (double)source.len / 1024.0 > (double)*budget_us)
            rc = -2; // would run out of the budget: not started, tried again next turn
        else if (parseable) {
            int64_t t0 = ar_mono_us ();
            rc = ar_syntax_outline (lang, source.text, source.len, false, S_MAX_ERRORS,
                                    *budget_us > 0 ? *budget_us : -1, &outline);
            int64_t spent = ar_mono_us () - t0;
            *budget_us -= spent;
            if (rc != -2 || spent > 0)
                s_learn_rate (lang, source.len, spent, rc == -2);
        }
        *cut |= rc == -2;
        if (rc == 0) {
            ar_buf_t part = {NULL, 0, 0};
            size_t n = ar_syntax_elide (text, &source, &outline, S_MIN_BODY, NULL, NULL, &part);
            if (n && ar_buf_add (buf, text + copied, starts[s] - copied) == 0 &&
                (bodies || (*mark_at = buf->len, true)) &&
                ar_buf_add (buf, part.data, part.len) == 0) {
                copied = ends[s];
                bodies += n;
            }
            free (part.data);
            ar_syntax_outline_fini (&outline);
        }
        ar_syntax_source_fini (&source);
    }
    if (bodies && ar_buf_add (buf, text + copied, len - copied) != 0)
        return 0;
    return bodies;
}

//  Per-thread memo of outlines (agents resend the same tool results every turn, and parsing
//  costs ~0.3 ms per KB): text hash, hint and minLines -> the outlined text, or none.
#define S_MEMO 128
typedef struct {
    uint64_t hash;
    size_t len, min_lines, bodies, mark_at, out_len;
    int hint;
    char *out; // NULL: not outlined
} s_memo_entry_t;
typedef struct {
    s_memo_entry_t entries[S_MEMO];
    size_t next;
} s_memo_t;

static pthread_key_t s_memo_key;
static pthread_once_t s_memo_once = PTHREAD_ONCE_INIT;

static void s_memo_free (void *arg)
{
    s_memo_t *memo = (s_memo_t *)arg;
    for (size_t i = 0; i < S_MEMO; i++)
        free (memo->entries[i].out);
    free (memo);
}

static void s_memo_init (void)
{
    pthread_key_create (&s_memo_key, s_memo_free);
}

//  s_outline through the memo.
static size_t s_outline_memo (const char *text, size_t len, ar_lang_t hint, size_t min_lines,
                              int64_t *budget_us, ar_buf_t *buf, size_t *mark_at)
{
    pthread_once (&s_memo_once, s_memo_init);
    s_memo_t *memo = pthread_getspecific (s_memo_key);
    if (!memo && (memo = calloc (1, sizeof *memo)) && pthread_setspecific (s_memo_key, memo)) {
        free (memo);
        memo = NULL;
    }
    uint64_t hash = ar_text_hash (text, len);
    for (size_t i = 0; memo && i < S_MEMO; i++) {
        s_memo_entry_t *e = &memo->entries[i];
        if (e->hash == hash && e->len == len && e->hint == (int)hint && e->min_lines == min_lines) {
            if (!e->out || ar_buf_add (buf, e->out, e->out_len) != 0)
                return 0;
            *mark_at = e->mark_at;
            return e->bodies;
        }
    }
    bool cut = false;
    size_t bodies = s_outline (text, len, hint, min_lines, budget_us, &cut, buf, mark_at);
    if (memo && !cut) {
        s_memo_entry_t *e = &memo->entries[memo->next++ % S_MEMO];
        free (e->out);
        *e = (s_memo_entry_t){hash, len, min_lines, bodies, *mark_at, 0, (int)hint, NULL};
        if (bodies && (e->out = malloc (buf->len + 1))) {
            memcpy (e->out, buf->data, buf->len);
            e->out_len = buf->len;
        } else
            e->bodies = 0;
    }
    return bodies;
}

static int s_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    ar_shape_t shape = ctx->shape;
    json_t *min_param = json_object_get (params, "minLines");
    json_t *keep_param = json_object_get (params, "keepTurns");
    if (!json_is_object (ctx->request) || !ctx->tokenizer ||
        (min_param && (!json_is_integer (min_param) || json_integer_value (min_param) < 1)) ||
        (keep_param && (!json_is_integer (keep_param) || json_integer_value (keep_param) < 0)))
        return -1;
    size_t min_lines = min_param ? (size_t)json_integer_value (min_param) : 80;
    size_t keep_turns = keep_param ? (size_t)json_integer_value (keep_param) : 1;
    ar_syntax_scope_t scope;
    int go = ar_syntax_scope_init (ctx, keep_turns, "no stash: nothing outlined", result, &scope);
    if (go <= 0)
        return go;
    ar_buf_t live = {NULL, 0, 0};
    if (scope.last_text < scope.n)
        ar_chat_view_message_text (shape, json_array_get (scope.messages, scope.last_text), false,
                                   ar_syntax_collect_text, &live);

    int rc = -1;
    int64_t budget = s_parse_budget_us;
    size_t files = 0, bodies = 0;
    int64_t saved = 0;
    ar_syntax_piece_t *all = NULL; // every piece changed, applied at the end
    size_t nall = 0, maxall = 0;
    for (size_t r = 0; r < scope.count; r++) {
        ar_syntax_result_t *res = &scope.results[r];
        if (res->path[0] && !res->reader)
            continue; // a command that runs or edits a file: its output is not the file
        if (!ar_syntax_scope_open (&scope, res) ||
            (res->path[0] && live.data && strstr (live.data, ar_syntax_basename (res->path))))
            continue;
        if (ar_mono_now () > ctx->deadline)
            goto done;
        int64_t left_ms = ctx->deadline - ar_mono_now ();
        if (left_ms < budget / 1000)
            budget = left_ms * 1000;
        ar_lang_t hint =
            res->path[0] ? ar_syntax_lang_from_path (res->path, strlen (res->path)) : AR_LANG_NONE;
        ar_syntax_piece_t pieces[16];
        size_t marks[16];
        size_t npieces = ar_syntax_pieces (res->owner, pieces, 16), elided = 0;
        int64_t before = 0, after = 0;
        for (size_t p = 0; p < npieces; p++) {
            json_t *string = json_object_get (pieces[p].holder, pieces[p].key);
            ar_buf_t buf = {NULL, 0, 0};
            //  A text an earlier strategy already cut (its marker names the original) is no
            //  longer the file as read: parsing it costs time for an outline of a fragment.
            if (memmem (json_string_value (string), json_string_length (string), "[anyray: ", 9))
                continue;
            size_t k = s_outline_memo (json_string_value (string), json_string_length (string),
                                       hint, min_lines, &budget, &buf, &marks[p]);
            if (k) {
                pieces[p].replacement = json_stringn (buf.data, buf.len);
                before += ar_chat_view_text_tokens (ctx->tokenizer, json_string_value (string),
                                                    json_string_length (string));
                after += ar_chat_view_text_tokens (ctx->tokenizer, buf.data, buf.len);
                elided += k;
            }
            free (buf.data);
        }
        //  Worth it only when it saves more than a marker costs (~45 tokens with its id).
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
    //  Everything stashed: now the request changes, and nothing after this can fail.
    for (size_t p = 0; p < nall; p++) {
        json_object_set_new (all[p].holder, all[p].key, all[p].replacement);
        all[p].replacement = NULL;
    }
    rc = 0;
    if (files) {
        result->applied = true;
        snprintf (result->note, sizeof result->note,
                  "outlined %zu file%s, %zu bodies elided, -%lld tokens", files,
                  files == 1 ? "" : "s", bodies, (long long)saved);
    }
done:
    for (size_t p = 0; p < nall; p++)
        json_decref (all[p].replacement);
    free (all);
    ar_syntax_scope_fini (&scope);
    free (live.data);
    return rc;
}

const ar_strategy_t ar_strategy_code_skeleton = {"code_skeleton", s_apply};

//  --------------------------------------------------------------------------------------------
//  Self-test: real-world files in both shapes and a generated property loop with a real stash.
//  Corpus figures come from tests/bench/ar_eval (--config with only this strategy enabled).

//  tests/fixtures/code_skeleton, found from this file's path (CMake compiles absolute paths).
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

//  What the extra tool rounds of s_request name (the file being edited, in one test).
static const char *s_extra_path = "notes.txt";

//  text with "%6zu\t" line numbers (cat -n).
static char *s_numbered (const char *text, size_t len)
{
    ar_buf_t buf = {NULL, 0, 0};
    size_t line = 1;
    for (size_t i = 0; i < len;) {
        const char *eol = memchr (text + i, '\n', len - i);
        size_t end = eol ? (size_t)(eol - text) + 1 : len;
        char prefix[16];
        snprintf (prefix, sizeof prefix, "%6zu\t", line++);
        ar_buf_add (&buf, prefix, strlen (prefix));
        ar_buf_add (&buf, text + i, end - i);
        i = end;
    }
    return buf.data;
}

//  A conversation: task, then reads of each file (a tool call naming path, its result
//  content), then `extra` more tool rounds, then a user question. style 0: plain strings,
//  1: content parts/blocks, 2: mini-swe-agent observations (OpenAI user messages).
static json_t *s_request (ar_shape_t shape, int style, const char *const *paths, json_t **contents,
                          size_t files, size_t extra)
{
    json_t *messages = json_array ();
    if (shape == AR_SHAPE_OPENAI_CHAT)
        json_array_append_new (messages,
                               json_pack ("{s:s, s:s}", "role", "system", "content", "Be brief."));
    json_array_append_new (messages,
                           json_pack ("{s:s, s:s}", "role", "user", "content", "Fix the bug."));
    for (size_t t = 0; t < files + extra; t++) {
        char id[32], args[512], text[512];
        const char *path = t < files ? paths[t] : s_extra_path;
        json_t *content = t < files ? json_incref (contents[t]) : json_string ("ok");
        snprintf (id, sizeof id, "call_%zu", t);
        snprintf (args, sizeof args, "{\"path\": \"%s\"}", path);
        if (style == 2 && shape == AR_SHAPE_OPENAI_CHAT) {
            snprintf (text, sizeof text, "THOUGHT: read it.\n\n```bash\nnl -ba %s\n```", path);
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:s}", "role", "assistant", "content", text));
            const char *body = json_string_value (content);
            char *obs = malloc (strlen (body) + 64);
            sprintf (obs, "<returncode>0</returncode>\n<output>\n%s</output>", body);
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:s}", "role", "user", "content", obs));
            free (obs);
            json_decref (content);
            continue;
        }
        if (style == 1) {
            json_t *parts = json_array ();
            json_array_append_new (parts,
                                   json_pack ("{s:s, s:O}", "type", "text", "text", content));
            json_decref (content);
            content = parts;
        }
        if (shape == AR_SHAPE_OPENAI_CHAT) {
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role",
                                              "assistant", "content", "tool_calls", "id", id,
                                              "type", "function", "function", "name", "read_file",
                                              "arguments", args));
            json_array_append_new (messages, json_pack ("{s:s, s:s, s:o}", "role", "tool",
                                                        "tool_call_id", id, "content", content));
        } else {
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:[{s:s, s:s, s:s, s:{s:s}}]}", "role",
                                              "assistant", "content", "type", "tool_use", "id", id,
                                              "name", "read_file", "input", "path", path));
            json_array_append_new (messages, json_pack ("{s:s, s:[{s:s, s:s, s:o}]}", "role",
                                                        "user", "content", "type", "tool_result",
                                                        "tool_use_id", id, "content", content));
        }
    }
    if (shape == AR_SHAPE_OPENAI_CHAT || style == 2)
        json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", "assistant", "content",
                                                    "Looked at the files."));
    else
        json_array_append_new (messages, json_pack ("{s:s, s:[{s:s, s:s}]}", "role", "assistant",
                                                    "content", "type", "text", "text", "Looked."));
    json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", "user", "content",
                                                "Which function should change?"));
    json_t *request =
        json_pack ("{s:s, s:i, s:o}", "model", "m", "max_tokens", 1000, "messages", messages);
    if (shape == AR_SHAPE_ANTHROPIC_MESSAGES)
        json_object_set_new (request, "system", json_string ("Be brief."));
    return request;
}

//  Every tool result owner of out, with the content it had in in: a marker's id must read back
//  from the stash as exactly that content (JSON), and the kept lines must be original lines.
static size_t s_check_markers (ar_shape_t shape, const json_t *in, json_t *out, ar_stash_t *stash)
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
        char *dump = json_dumps (cout, JSON_COMPACT | JSON_ENCODE_ANY);
        const char *at = strstr (dump, "function bod");
        assert (at);
        at = strstr (at, "retrieve with id ");
        assert (at);
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
        //  Kept lines are the original's lines, in order.
        ar_buf_t a = {NULL, 0, 0}, b = {NULL, 0, 0};
        ar_syntax_piece_t pa[16], pb[16];
        size_t na = ar_syntax_pieces (rin[r].owner, pa, 16),
               nb = ar_syntax_pieces (rout[r].owner, pb, 16);
        assert (na == nb);
        for (size_t p = 0; p < na; p++) {
            json_t *sa = json_object_get (pa[p].holder, pa[p].key);
            json_t *sb = json_object_get (pb[p].holder, pb[p].key);
            ar_buf_add (&a, json_string_value (sa), json_string_length (sa));
            ar_buf_add (&b, json_string_value (sb), json_string_length (sb));
        }
        const char *orig = a.data;
        for (char *line = strtok (b.data, "\n"); line; line = strtok (NULL, "\n")) {
            const char *t = line;
            while (*t == ' ' || *t == '\t')
                t++;
            if (strcmp (t, "...") == 0 || strncmp (t, "[anyray: ", 9) == 0)
                continue;
            const char *found = strstr (orig, line);
            assert (found);
            orig = found + strlen (line);
        }
        free (a.data);
        free (b.data);
    }
    free (rin);
    free (rout);
    return marked;
}

static const struct {
    const char *file, *path, *keep; // keep: a signature that must survive
} s_fixtures[] = {
    {"glob.py.txt", "lib/glob.py", "def glob(pathname, *, root_dir=None"},
    {"node-gyp-build.js.txt", "node-gyp-build.js", "function load (dir) {"},
    {"merge.ts.txt", "source/utils/merge.ts", "export const mergeHeaders = ("},
    {"copy-button.tsx.txt", "components/copy-button.tsx", "export function CopyButton({"},
    {"utils.go.txt", "utils.go", "func WrapF(f http.HandlerFunc) HandlerFunc {"},
    {"algorithm.rs.txt", "src/lexical/algorithm.rs", "fn"},
    {"JsonPrimitive.java.txt", "gson/JsonPrimitive.java", "public boolean isBoolean() {"},
    {"scanner.c.txt", "src/scanner.c", "bool tree_sitter_python_external_scanner_scan("},
    {"log_reader.cc.txt", "db/log_reader.cc", "bool Reader::ReadRecord("},
};
#define S_FIXTURES (sizeof s_fixtures / sizeof s_fixtures[0])

void strategy_code_skeleton_test (bool verbose)
{
    ar_tokenizer_t *tok = ar_tokenizer_new ();
    char dir[] = "/tmp/ar_code_skeleton.XXXXXX";
    assert (tok && mkdtemp (dir));
    char db[128];
    snprintf (db, sizeof db, "%s/stash.db", dir);
    uint8_t key[32] = {7};
    ar_stash_t *stash = ar_stash_new (db, key, 3600);
    assert (stash);
    ar_stash_sink_t sink = ar_stash_sink (stash);
    json_t *params = json_pack ("{s:i, s:i}", "minLines", 80, "keepTurns", 2);
    s_parse_budget_us = INT64_MAX / 4; // a loaded test machine parses slowly
    char *texts[S_FIXTURES];
    size_t lens[S_FIXTURES];
    for (size_t f = 0; f < S_FIXTURES; f++)
        texts[f] = s_fixture (s_fixtures[f].file, &lens[f]);

    //  1. Each real file, alone, in each shape and style, plain and numbered: outlined, its
    //  signatures kept, the original retrievable, fewer tokens.
    for (size_t f = 0; f < S_FIXTURES; f++)
        for (int s = 0; s < 2; s++)
            for (int style = 0; style < 3; style++)
                for (int numbered = 0; numbered < 2; numbered++) {
                    ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
                    if (style == 2 && s)
                        continue;
                    char *shown = numbered ? s_numbered (texts[f], lens[f]) : strdup (texts[f]);
                    json_t *content = json_string (shown);
                    json_t *request = s_request (shape, style, &s_fixtures[f].path, &content, 1, 2);
                    json_t *original = json_deep_copy (request);
                    int64_t before = ar_chat_view_count_tokens (shape, request, tok);
                    ar_strategy_ctx_t ctx = {.shape = shape,
                                             .request = request,
                                             .tokenizer = tok,
                                             .stash = &sink,
                                             .deadline = INT64_MAX};
                    ar_strategy_result_t result = {.applied = false};
                    assert (s_apply (&ctx, params, &result) == 0);
                    int64_t after = ar_chat_view_count_tokens (shape, request, tok);
                    if (verbose && style == 0 && numbered)
                        printf ("code_skeleton %-24s %s: %s (%lld -> %lld tokens)\n",
                                s_fixtures[f].file, s ? "anthropic" : "openai", result.note,
                                (long long)before, (long long)after);
                    assert (result.applied && after < before);
                    char why[128];
                    assert (ar_chat_view_validate (shape, request, why, sizeof why) == 0);
                    assert (s_check_markers (shape, original, request, stash) == 1);
                    char *dump = json_dumps (request, 0);
                    json_t *again = json_loads (dump, 0, NULL);
                    free (dump);
                    ar_syntax_result_t *results = NULL;
                    ar_syntax_results (shape, ar_chat_view_messages (again), &results);
                    char *text =
                        json_dumps (json_object_get (results[0].owner, "content"), JSON_ENCODE_ANY);
                    json_t *decoded = json_loads (text, JSON_DECODE_ANY, NULL);
                    free (text);
                    char *flat = json_dumps (decoded, JSON_ENCODE_ANY);
                    (void)flat;
                    free (flat);
                    json_decref (decoded);
                    //  The signature is still there, verbatim.
                    ar_buf_t buf = {NULL, 0, 0};
                    ar_chat_view_message_text (
                        shape, json_array_get (ar_chat_view_messages (request), results[0].message),
                        false, ar_syntax_collect_text, &buf);
                    assert (strstr (buf.data, s_fixtures[f].keep));
                    free (buf.data);
                    free (results);
                    json_decref (again);
                    //  The file the agent is about to edit (named by a recent call) and the
                    //  latest results are kept whole; so is everything without a stash.
                    json_t *copy = json_deep_copy (original);
                    ctx.request = copy;
                    json_t *near = json_pack ("{s:i, s:i}", "minLines", 80, "keepTurns", 4);
                    result = (ar_strategy_result_t){.applied = false};
                    assert (s_apply (&ctx, near, &result) == 0 && !result.applied);
                    assert (json_equal (copy, original));
                    json_t *edited =
                        (s_extra_path = s_fixtures[f].path,
                         s_request (shape, style, &s_fixtures[f].path, &content, 1, 2));
                    s_extra_path = "notes.txt";
                    json_t *edited_copy = json_deep_copy (edited);
                    ctx.request = edited;
                    assert (s_apply (&ctx, params, &result) == 0 && !result.applied);
                    assert (json_equal (edited, edited_copy));
                    json_decref (edited);
                    json_decref (edited_copy);
                    ctx.request = copy;
                    ctx.stash = NULL;
                    assert (s_apply (&ctx, params, &result) == 0 && !result.applied);
                    assert (json_equal (copy, original));
                    json_decref (near);
                    json_decref (copy);
                    json_decref (original);
                    json_decref (request);
                    json_decref (content);
                    free (shown);
                }

    //  2. Small files stay whole; a past deadline or bad params change nothing.
    {
        json_t *content = json_string (texts[0]);
        json_t *request = s_request (AR_SHAPE_OPENAI_CHAT, 0, &s_fixtures[0].path, &content, 1, 2);
        json_t *original = json_deep_copy (request);
        ar_strategy_ctx_t ctx = {.shape = AR_SHAPE_OPENAI_CHAT,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = INT64_MAX};
        json_t *big = json_pack ("{s:i}", "minLines", 100000);
        ar_strategy_result_t result = {.applied = false};
        assert (s_apply (&ctx, big, &result) == 0 && !result.applied);
        assert (json_equal (request, original));
        ctx.deadline = 1;
        assert (s_apply (&ctx, params, &result) == -1 && json_equal (request, original));
        ctx.deadline = INT64_MAX;
        json_t *bad = json_pack ("{s:s}", "minLines", "80");
        assert (s_apply (&ctx, bad, &result) == -1 && json_equal (request, original));
        json_decref (bad);
        json_decref (big);
        json_decref (original);
        json_decref (request);
        json_decref (content);
    }

    //  3. Property loop: generated conversations of real files cut at random lines (fragments
    //  too), random shapes, styles and numbering; every output valid, never more tokens, the
    //  same messages and tool pairs, the latest turns untouched, every marker retrievable.
    ar_rng_t rng = {0x5eedc0de5ce1e7a1ull};
    size_t applied = 0, cases = 300;
    for (size_t c = 0; c < cases; c++) {
        ar_shape_t shape =
            ar_rng_below (&rng, 2) ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        int style = (int)ar_rng_below (&rng, shape == AR_SHAPE_OPENAI_CHAT ? 3 : 2);
        size_t files = 1 + ar_rng_below (&rng, 4), extra = ar_rng_below (&rng, 4);
        const char *paths[4];
        json_t *contents[4];
        for (size_t k = 0; k < files; k++) {
            size_t f = ar_rng_below (&rng, S_FIXTURES);
            size_t from = ar_rng_below (&rng, 3) ? 0 : ar_rng_below (&rng, lens[f]);
            size_t to = from + ar_rng_below (&rng, lens[f] - from + 1);
            if (ar_rng_below (&rng, 2))
                to = lens[f];
            char *cut = strndup (texts[f] + from, to - from);
            char *shown = ar_rng_below (&rng, 2) ? s_numbered (cut, strlen (cut)) : strdup (cut);
            paths[k] = ar_rng_below (&rng, 4) ? s_fixtures[f].path : "output.log";
            contents[k] = json_string (shown);
            free (cut);
            free (shown);
        }
        json_t *request = s_request (shape, style, paths, contents, files, extra);
        json_t *original = json_deep_copy (request);
        int64_t before = ar_chat_view_count_tokens (shape, request, tok);
        json_t *p = json_pack ("{s:i, s:i}", "minLines", 1 + (int)ar_rng_below (&rng, 120),
                               "keepTurns", (int)ar_rng_below (&rng, 3));
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = INT64_MAX};
        ar_strategy_result_t result = {.applied = false};
        int rc = s_apply (&ctx, p, &result);
        assert (rc == 0);
        int64_t after = ar_chat_view_count_tokens (shape, request, tok);
        assert (after <= before);
        char why[128];
        assert (ar_chat_view_validate (shape, request, why, sizeof why) == 0);
        json_t *min = ar_chat_view_messages (original), *mout = ar_chat_view_messages (request);
        assert (json_array_size (min) == json_array_size (mout));
        size_t n = json_array_size (min);
        assert (json_equal (json_array_get (min, n - 1), json_array_get (mout, n - 1)));
        assert (json_equal (json_array_get (min, n - 2), json_array_get (mout, n - 2)));
        for (size_t i = 0; i < n; i++) {
            json_t *a = json_array_get (min, i), *b = json_array_get (mout, i);
            assert (ar_chat_view_role (shape, a) == ar_chat_view_role (shape, b));
            assert (ar_chat_view_role (shape, a) == AR_CHAT_ROLE_USER ||
                    ar_chat_view_role (shape, a) == AR_CHAT_ROLE_TOOL || json_equal (a, b));
        }
        size_t marked = s_check_markers (shape, original, request, stash);
        assert (result.applied == (marked > 0));
        assert (!result.applied || after < before);
        applied += result.applied;
        json_decref (p);
        json_decref (original);
        json_decref (request);
        for (size_t k = 0; k < files; k++)
            json_decref (contents[k]);
    }
    if (verbose)
        printf ("code_skeleton property: %zu cases, %zu applied\n", cases, applied);
    assert (applied * 5 >= cases); // it does work on generated input

    s_parse_budget_us = S_PARSE_BUDGET_US;
    for (size_t f = 0; f < S_FIXTURES; f++)
        free (texts[f]);
    json_decref (params);
    ar_stash_destroy (&stash);
    char cmd[256];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
    ar_tokenizer_destroy (&tok);
}

//  Corpus figures: tokens before/after per request, and whether meta's needed_strings are still
//  in the output verbatim, or only in what the markers' stash ids hold.
