/*  strategy_prompt_compression: conservative shortening of the text people and operators wrote
    (system prompt and user text): whitespace, markup noise and blocks repeated verbatim, never
    a paraphrase, never inside code.

    What it reads: the system prompt (OpenAI system/developer messages, string or text parts;
    Anthropic `system`, string or text blocks) and user text (OpenAI user content as a string or
    text parts; Anthropic user content as a string or text blocks). Never tool results or the
    command output agents carry in user turns (ar_chat_view_is_observation), which get the
    whitespace rules only and are never the source of a repeat: they are context_compression's.
   Never the last message, the last user turn or the last user text a person wrote: those stay
   byte-identical.

    What it does, by level (param `level`, default balanced):
    - every level: the whitespace rules below on the system prompt and on older user text, per
      text of at least minTokens tokens. They only remove whitespace (and invisible zero-width
      characters), so the same input always gives the same output and no stash is needed:
      providers' prompt caching keys on the system prompt's prefix, which stays stable.
    - balanced and aggressive, in requests that are not plain chat (the request has tools, tool
      calls or results, or agent observations) and only with a stash:
      - repeated blocks: a run of paragraphs (non-blank prose lines between blank lines) of at
        least 40 tokens (20 at aggressive) that appeared verbatim earlier (system prompt, an
        earlier user text, or earlier in the same text) is replaced, in the later occurrence
        only, by "[anyray: repeated text elided (same as message N); retrieve with id <id>]",
        its exact bytes stashed as {"text": ...}; only when the marker counts fewer tokens;
      - markup noise in older user text of at least minTokens tokens: HTML comments outside
        code (`<!-- ... -->`, a comment on lines of its own takes them with it) and the extra
        lines of a run of 3+ identical horizontal rules go; the text before their removal is
        stashed as {"text": ...} and one marker takes the first removal's place; only when
        what goes counts more tokens than the marker.
    Plain chat gets the whitespace rules only (byte-identical but for whitespace).

    The whitespace rules:
    - trailing spaces and tabs of a line go;
    - a run of spaces inside a prose line becomes one (leading indentation is kept); not in
      command output, where the indentation of a numbered listing (`nl -ba`, `cat -n`) comes
      after the line number;
    - more than two blank lines in a row become two;
    - zero-width spaces (U+200B), word joiners (U+2060) and stray byte-order marks (U+FEFF)
      go; U+200C/U+200D stay (they change how Persian script and emoji sequences render).
    Fenced code blocks (``` or ~~~, up to the closing fence) and indented code lines (four
    spaces or a tab) are copied byte for byte and are never part of a repeated block or a
    markup removal. A text is rewritten only when it counts fewer tokens afterwards; tokens are
    counted only of the texts that change.
*/
#include "ar_chat_view.h"
#include "ar_text_hash.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_FLOOR_BYTES 24 // a paragraph shorter than this is never looked up as a repeat

typedef enum { S_LIGHT, S_BALANCED, S_AGGRESSIVE } s_level_t;

//  Zero-width characters dropped from prose (UTF-8): U+200B, U+2060, U+FEFF.
static size_t s_zero_width (const char *p, const char *end)
{
    if (end - p >= 3 && (unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x80 &&
        (unsigned char)p[2] == 0x8b)
        return 3;
    if (end - p >= 3 && (unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x81 &&
        (unsigned char)p[2] == 0xa0)
        return 3;
    if (end - p >= 3 && (unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb &&
        (unsigned char)p[2] == 0xbf)
        return 3;
    return 0;
}

//  A fence line: up to three spaces, then ``` or ~~~.
static bool s_fence (const char *line, const char *end)
{
    int spaces = 0;
    while (line < end && *line == ' ' && spaces < 4) {
        line++;
        spaces++;
    }
    return spaces < 4 && end - line >= 3 &&
           (memcmp (line, "```", 3) == 0 || memcmp (line, "~~~", 3) == 0);
}

//  The normalised text into out (at least len bytes); returns its length. output: command
//  output, whose inner space runs stay ("   12\t        return x" is indented code).
static size_t s_normalize (const char *text, size_t len, bool output, char *out)
{
    const char *p = text, *end = text + len;
    char *o = out;
    bool fenced = false;
    int blanks = 0;
    while (p < end) {
        const char *nl = memchr (p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        bool fence = s_fence (p, line_end);
        if (fenced || fence || *p == '\t' || (line_end - p >= 4 && memcmp (p, "    ", 4) == 0)) {
            //  Code: byte for byte.
            if (fence)
                fenced = !fenced;
            memcpy (o, p, (size_t)(next - p));
            o += next - p;
            blanks = 0;
            p = next;
            continue;
        }
        const char *body_end = line_end;
        bool cr = body_end > p && body_end[-1] == '\r';
        if (cr)
            body_end--;
        char *start = o;
        const char *c = p;
        while (c < body_end && *c == ' ') // leading indentation stays
            *o++ = *c++;
        char *prose = o;
        while (c < body_end) {
            size_t zw = s_zero_width (c, body_end);
            if (zw) {
                c += zw;
                continue;
            }
            if (!output && *c == ' ' && o > prose && o[-1] == ' ') {
                c++;
                continue;
            }
            *o++ = *c++;
        }
        while (o > start && (o[-1] == ' ' || o[-1] == '\t'))
            o--;
        bool blank = o == start;
        if (blank && ++blanks > 2) {
            o = start; // a third blank line in a row
            p = next;
            continue;
        }
        if (!blank)
            blanks = 0;
        if (cr)
            *o++ = '\r';
        if (nl)
            *o++ = '\n';
        p = next;
    }
    return (size_t)(o - out);
}

//  Whether the line [p, line_end) is code: a fence, inside one, or indented four spaces or a
//  tab. Updates *fenced.
static bool s_code_line (const char *p, const char *line_end, bool *fenced)
{
    bool fence = s_fence (p, line_end);
    bool code = *fenced || fence || (p < line_end && *p == '\t') ||
                (line_end - p >= 4 && memcmp (p, "    ", 4) == 0);
    if (fence)
        *fenced = !*fenced;
    return code;
}

//  Only spaces, tabs and \r in [p, end).
static bool s_space_only (const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r')
            return false;
    return true;
}

//  --------------------------------------------------------------------------------------------
//  Growable byte buffer

typedef struct {
    char *data;
    size_t len, max;
    bool oom;
} s_buf_t;

static void s_put (s_buf_t *buf, const char *bytes, size_t len)
{
    if (buf->oom || len == 0)
        return;
    if (buf->len + len + 1 > buf->max) {
        size_t max = (buf->len + len + 1) * 2;
        char *data = realloc (buf->data, max);
        if (!data) {
            buf->oom = true;
            return;
        }
        buf->data = data;
        buf->max = max;
    }
    memcpy (buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = 0;
}

//  --------------------------------------------------------------------------------------------
//  Stash: originals go in as compact JSON {"text": original}, so every id reads back as JSON.

static int s_stash_text (const ar_strategy_ctx_t *ctx, const char *text, size_t len, char id[33])
{
    json_t *string = json_stringn (text, len);
    json_t *holder = string ? json_pack ("{s:o}", "text", string) : NULL;
    char *dump = holder ? json_dumps (holder, JSON_COMPACT) : NULL;
    json_decref (holder);
    int rc = dump ? ctx->stash->put (ctx->stash->self, dump, strlen (dump), id) : -1;
    free (dump);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Repeated blocks: every paragraph of the texts seen so far, by hash, with where it was.

#define S_WHERE_SYSTEM 0 // else message index + 1

typedef struct {
    uint64_t hash;
    const char *text; // inside the request's own strings, which outlive the run
    size_t len;
    size_t where;
} s_slot_t;

typedef struct {
    s_slot_t *slots;
    size_t mask, count;
    bool oom;
} s_table_t;

static const s_slot_t *s_find (const s_table_t *table, uint64_t hash, const char *text, size_t len)
{
    if (!table->slots)
        return NULL;
    for (size_t i = hash & table->mask;; i = (i + 1) & table->mask) {
        const s_slot_t *slot = &table->slots[i];
        if (!slot->text)
            return NULL;
        if (slot->hash == hash && slot->len == len && memcmp (slot->text, text, len) == 0)
            return slot;
    }
}

static void s_insert (s_table_t *table, uint64_t hash, const char *text, size_t len, size_t where)
{
    if (table->oom)
        return;
    if ((table->count + 1) * 2 > table->mask + 1 || !table->slots) {
        size_t size = table->slots ? (table->mask + 1) * 2 : 256;
        s_slot_t *slots = calloc (size, sizeof *slots);
        if (!slots) {
            table->oom = true;
            return;
        }
        for (size_t i = 0; table->slots && i <= table->mask; i++) {
            if (!table->slots[i].text)
                continue;
            size_t j = table->slots[i].hash & (size - 1);
            while (slots[j].text)
                j = (j + 1) & (size - 1);
            slots[j] = table->slots[i];
        }
        free (table->slots);
        table->slots = slots;
        table->mask = size - 1;
    }
    size_t i = hash & table->mask;
    while (table->slots[i].text)
        i = (i + 1) & table->mask;
    table->slots[i] = (s_slot_t){hash, text, len, where};
    table->count++;
}

typedef struct {
    ar_strategy_ctx_t *ctx;
    s_table_t *table;
    size_t where;     // this text's place
    bool elide;       // replace repeats (else only remember the paragraphs)
    int64_t floor;    // fewest tokens of a replaced run
    const char *text; // the text scanned
    s_buf_t *out;     // with elide: the text with its runs replaced
    const char *copied;
    const char *run, *run_end; // the open run of repeated paragraphs
    size_t run_where;
    size_t replaced;
} s_scan_t;

static void s_flush (s_scan_t *scan)
{
    const char *run = scan->run;
    scan->run = NULL;
    if (!run || (size_t)(scan->run_end - run) < (size_t)scan->floor) // tokens <= bytes
        return;
    size_t len = (size_t)(scan->run_end - run);
    int64_t tokens = (int64_t)ar_tokenizer_count (scan->ctx->tokenizer, run, len);
    if (tokens < scan->floor)
        return;
    char id[33] = "", where[48], marker[160];
    if (scan->run_where == S_WHERE_SYSTEM)
        snprintf (where, sizeof where, "the system prompt");
    else if (scan->run_where == scan->where)
        snprintf (where, sizeof where, "earlier in this message");
    else
        snprintf (where, sizeof where, "message %zu", scan->run_where);
    //  The id is only known after the put; its length is fixed, so count with a stand-in.
    int n = snprintf (marker, sizeof marker,
                      "[anyray: repeated text elided (same as %s); retrieve with id "
                      "00000000000000000000000000000000]",
                      where);
    if ((int64_t)ar_tokenizer_count (scan->ctx->tokenizer, marker, (size_t)n) + 8 >= tokens ||
        s_stash_text (scan->ctx, run, len, id) != 0 || strlen (id) != 32)
        return;
    n = snprintf (marker, sizeof marker,
                  "[anyray: repeated text elided (same as %s); retrieve with id %s]", where, id);
    s_put (scan->out, scan->copied, (size_t)(run - scan->copied));
    s_put (scan->out, marker, (size_t)n);
    scan->copied = scan->run_end;
    scan->replaced++;
}

static void s_block (s_scan_t *scan, const char *start, const char *end)
{
    size_t len = (size_t)(end - start);
    if (len < S_FLOOR_BYTES) {
        s_flush (scan);
        return;
    }
    uint64_t hash = ar_text_hash (start, len);
    const s_slot_t *seen = s_find (scan->table, hash, start, len);
    if (seen && scan->elide) {
        if (scan->run && seen->where == scan->run_where) {
            scan->run_end = end;
            return;
        }
        s_flush (scan);
        scan->run = start;
        scan->run_end = end;
        scan->run_where = seen->where;
        return;
    }
    s_flush (scan);
    if (!seen)
        s_insert (scan->table, hash, start, len, scan->where);
}

//  Remember the paragraphs of text and, with scan->elide, replace those seen before; the
//  result (with replacements) in scan->out.
static void s_repeats (s_scan_t *scan, const char *text, size_t len)
{
    const char *p = text, *end = text + len, *block = NULL, *block_end = NULL;
    bool fenced = false;
    scan->text = scan->copied = text;
    scan->run = NULL;
    while (p < end) {
        const char *nl = memchr (p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        bool was_fenced = fenced;
        bool code = s_code_line (p, line_end, &fenced);
        bool blank = !was_fenced && !s_fence (p, line_end) && s_space_only (p, line_end);
        if (code || blank) {
            if (block)
                s_block (scan, block, block_end);
            block = NULL;
            if (code && !blank)
                s_flush (scan); // code ends a run; blank lines do not
        } else {
            if (!block)
                block = p;
            block_end = line_end;
        }
        p = nl ? nl + 1 : end;
    }
    if (block)
        s_block (scan, block, block_end);
    s_flush (scan);
    if (scan->elide && scan->replaced)
        s_put (scan->out, scan->copied, (size_t)(end - scan->copied));
}

//  --------------------------------------------------------------------------------------------
//  Markup noise: HTML comments outside code, the extra lines of 3+ identical rules.

typedef struct {
    size_t comments, rules;
    int64_t tokens;  // of what went
    size_t first_at; // where in out the first removal was
    bool first_line; // ... and whether whole lines went there
} s_markup_t;

//  A horizontal rule: up to three spaces, then 3+ of one of - * _ = (spaces between allowed).
static bool s_rule (const char *p, const char *end)
{
    int spaces = 0, marks = 0;
    while (p < end && *p == ' ' && spaces < 4)
        p++, spaces++;
    if (spaces > 3 || p == end || !strchr ("-*_=", *p))
        return false;
    char mark = *p;
    for (; p < end; p++) {
        if (*p == mark)
            marks++;
        else if (*p != ' ' && *p != '\t' && *p != '\r')
            return false;
    }
    return marks >= 3;
}

static void s_removed (s_markup_t *markup, ar_tokenizer_t *tokenizer, const s_buf_t *out,
                       const char *start, const char *end, bool lines)
{
    if (markup->comments + markup->rules == 0) {
        markup->first_at = out->len;
        markup->first_line = lines;
    }
    markup->tokens += (int64_t)ar_tokenizer_count (tokenizer, start, (size_t)(end - start));
}

static void s_markup (const char *text, size_t len, s_buf_t *out, s_markup_t *markup,
                      ar_tokenizer_t *tokenizer)
{
    const char *p = text, *end = text + len;
    bool fenced = false;
    while (p < end) {
        const char *nl = memchr (p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end, *next = nl ? nl + 1 : end;
        if (s_code_line (p, line_end, &fenced)) {
            s_put (out, p, (size_t)(next - p));
            p = next;
            continue;
        }
        if (s_rule (p, line_end) && nl) {
            //  A run of identical rule lines: the first stays.
            const char *q = next;
            size_t count = 1;
            while (q < end && (size_t)(end - q) >= (size_t)(next - p) &&
                   memcmp (q, p, (size_t)(next - p)) == 0) {
                q += next - p;
                count++;
            }
            s_put (out, p, (size_t)(next - p));
            if (count >= 3) {
                s_removed (markup, tokenizer, out, next, q, true);
                markup->rules += count - 1;
                p = q;
            } else
                p = next;
            continue;
        }
        const char *line = p, *q = p;
        bool dropped = false;
        for (;;) {
            const char *open = memmem (q, (size_t)(line_end - q), "<!--", 4);
            size_t ticks = 0;
            for (const char *t = line; open && t < open; t++)
                ticks += *t == '`';
            if (!open || ticks % 2) // none, or inside inline code
                break;
            const char *close = memmem (open + 4, (size_t)(end - open - 4), "-->", 3);
            if (!close || memmem (open, (size_t)(close - open), "```", 3) ||
                memmem (open, (size_t)(close - open), "~~~", 3))
                break;
            const char *after = close + 3;
            const char *after_nl = memchr (after, '\n', (size_t)(end - after));
            const char *tail = after_nl ? after_nl : end;
            if (q == line && s_space_only (line, open) && s_space_only (after, tail)) {
                //  The comment has its lines to itself: they go with it.
                s_removed (markup, tokenizer, out, line, after_nl ? after_nl + 1 : end, true);
                markup->comments++;
                p = after_nl ? after_nl + 1 : end;
                dropped = true;
                break;
            }
            s_put (out, q, (size_t)(open - q));
            s_removed (markup, tokenizer, out, open, after, false);
            markup->comments++;
            q = after;
            line_end = tail;
            next = after_nl ? after_nl + 1 : end;
        }
        if (dropped)
            continue;
        s_put (out, q, (size_t)(next - q));
        p = next;
    }
}

//  --------------------------------------------------------------------------------------------
//  The texts a request holds, in conversation order.

typedef struct {
    size_t message; // index in messages, or SIZE_MAX: Anthropic's top-level system
    size_t block;   // index in an array content, or SIZE_MAX: string content
    const json_t *text;
    bool system, edit;
    bool output;    // agent command output in a user turn: whitespace rules only, not a source
    json_t *result; // the new text, when it changes
} s_unit_t;

typedef struct {
    s_unit_t *units;
    size_t count, max;
    bool oom;
} s_units_t;

static void s_unit_add (s_units_t *units, size_t message, const json_t *content, bool system,
                        bool edit, bool output)
{
    size_t n = json_is_array (content) ? json_array_size (content) : 1;
    for (size_t j = 0; j < n; j++) {
        const json_t *text = content;
        size_t block = SIZE_MAX;
        if (json_is_array (content)) {
            json_t *part = json_array_get (content, j);
            const char *type = json_string_value (json_object_get (part, "type"));
            text = json_object_get (part, "text");
            block = j;
            if (!type || strcmp (type, "text") != 0)
                continue;
        }
        if (!json_is_string (text) || units->oom)
            continue;
        if (units->count == units->max) {
            size_t max = units->max ? units->max * 2 : 32;
            s_unit_t *grown = realloc (units->units, max * sizeof *grown);
            if (!grown) {
                units->oom = true;
                return;
            }
            units->units = grown;
            units->max = max;
        }
        units->units[units->count++] = (s_unit_t){message, block, text, system, edit, output, NULL};
    }
}

//  The content with the units' new texts (new reference), or NULL on failure.
static json_t *s_rebuilt (const json_t *content, const s_unit_t *units, size_t count)
{
    if (json_is_string (content))
        return json_incref (units[0].result);
    json_t *out = json_copy ((json_t *)content);
    for (size_t u = 0; out && u < count; u++) {
        if (!units[u].result)
            continue;
        json_t *block = json_copy (json_array_get (content, units[u].block));
        if (!block || json_object_set (block, "text", units[u].result) != 0 ||
            json_array_set_new (out, units[u].block, block) != 0) {
            json_decref (block);
            json_decref (out);
            out = NULL;
        }
    }
    return out;
}

//  Plain chat: no tools, no tool calls or results, no agent observations.
static bool s_plain_chat (ar_shape_t shape, const json_t *request, const json_t *messages)
{
    if (json_array_size (json_object_get (request, "tools")))
        return false;
    for (size_t i = 0; i < json_array_size (messages); i++) {
        json_t *message = json_array_get (messages, i);
        if (ar_chat_view_each_call (shape, message, NULL, NULL) ||
            ar_chat_view_has_results (shape, message) ||
            ar_chat_view_is_observation (shape, messages, i))
            return false;
    }
    return true;
}

//  One text through the rules; its new text in unit->result when it gets fewer tokens.
static int s_unit (ar_strategy_ctx_t *ctx, s_unit_t *unit, s_table_t *table, s_level_t level,
                   bool remove, int64_t min_tokens)
{
    const char *text = json_string_value (unit->text);
    size_t len = json_string_length (unit->text);
    s_buf_t elided = {NULL}, marked = {NULL};
    s_scan_t scan = {.ctx = ctx,
                     .table = table,
                     .where = unit->system ? S_WHERE_SYSTEM : unit->message + 1,
                     .elide = remove && unit->edit,
                     .floor = level == S_AGGRESSIVE ? 20 : 40,
                     .out = &elided};
    if (remove && !table->oom)
        s_repeats (&scan, text, len);
    const char *t1 = scan.replaced ? elided.data : text;
    size_t len1 = scan.replaced ? elided.len : len;
    s_markup_t markup = {0};
    if (remove && unit->edit && len >= (size_t)min_tokens)
        s_markup (t1, len1, &marked, &markup, ctx->tokenizer);
    int rc = elided.oom || marked.oom ? -1 : 0;
    char *normal = rc == 0 ? malloc (len1 + 200) : NULL;
    if (rc == 0 && !normal)
        rc = -1;
    if (rc == 0) {
        size_t n = len1;
        int64_t before = -1;
        if (len >= (size_t)min_tokens) {
            //  Markup out when what goes outweighs its marker, then the whitespace rules.
            const char *t2 = t1;
            size_t len2 = len1;
            s_buf_t withmark = {NULL};
            char id[33] = "", marker[160];
            if (markup.comments + markup.rules) {
                int m = snprintf (marker, sizeof marker,
                                  "[anyray: markup elided (%zu HTML comment%s, %zu rule line%s); "
                                  "retrieve with id 00000000000000000000000000000000]",
                                  markup.comments, markup.comments == 1 ? "" : "s", markup.rules,
                                  markup.rules == 1 ? "" : "s");
                if ((int64_t)ar_tokenizer_count (ctx->tokenizer, marker, (size_t)m) + 4 <
                        markup.tokens &&
                    s_stash_text (ctx, t1, len1, id) == 0 && strlen (id) == 32) {
                    memcpy (marker + m - 33, id, 32);
                    s_put (&withmark, marked.data, markup.first_at);
                    s_put (&withmark, marker, (size_t)m);
                    if (markup.first_line)
                        s_put (&withmark, "\n", 1);
                    s_put (&withmark, marked.data + markup.first_at, marked.len - markup.first_at);
                    if (withmark.oom)
                        rc = -1;
                    else {
                        t2 = withmark.data;
                        len2 = withmark.len;
                    }
                }
            }
            if (rc == 0) {
                char *grown = len2 + 1 > len1 + 200 ? realloc (normal, len2 + 1) : normal;
                if (!grown)
                    rc = -1;
                else {
                    normal = grown;
                    n = s_normalize (t2, len2, unit->output, normal);
                }
            }
            free (withmark.data);
            if (rc == 0 && (n != len || memcmp (normal, text, len) != 0)) {
                before = ar_chat_view_text_tokens (ctx->tokenizer, text, len);
                //  (a text under minTokens gets the repeats alone)
                if (before >= min_tokens &&
                    ar_chat_view_text_tokens (ctx->tokenizer, normal, n) < before)
                    unit->result = json_stringn (normal, n);
            }
        }
        if (rc == 0 && !unit->result && scan.replaced) {
            if (before < 0)
                before = ar_chat_view_text_tokens (ctx->tokenizer, text, len);
            if (ar_chat_view_text_tokens (ctx->tokenizer, t1, len1) < before)
                unit->result = json_stringn (t1, len1);
        }
    }
    free (normal);
    free (elided.data);
    free (marked.data);
    return rc;
}

static int s_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    ar_shape_t shape = ctx->shape;
    json_t *min_param = json_object_get (params, "minTokens");
    json_t *level_param = json_object_get (params, "level");
    if (!json_is_object (ctx->request) || !ctx->tokenizer ||
        (min_param && (!json_is_integer (min_param) || json_integer_value (min_param) < 0)) ||
        (level_param && !json_is_string (level_param)))
        return -1;
    int64_t min_tokens = min_param ? json_integer_value (min_param) : 512;
    s_level_t level = S_LIGHT;
    if (level_param) {
        const char *name = json_string_value (level_param);
        if (strcmp (name, "balanced") == 0)
            level = S_BALANCED;
        else if (strcmp (name, "aggressive") == 0)
            level = S_AGGRESSIVE;
        else if (strcmp (name, "light") != 0)
            return -1;
    }
    json_t *messages = ar_chat_view_messages (ctx->request);
    size_t n = json_array_size (messages);
    if (n == 0 || ar_chat_view_validate (shape, ctx->request, NULL, 0) != 0)
        return 0;
    size_t last_user = n, last_text = n;
    for (size_t i = n; i-- > 0;) {
        json_t *message = json_array_get (messages, i);
        if (last_user == n && ar_chat_view_role (shape, message) == AR_CHAT_ROLE_USER)
            last_user = i;
        if (last_text == n && ar_chat_view_is_user_text (shape, message))
            last_text = i;
    }
    bool remove = level != S_LIGHT && ctx->stash && !s_plain_chat (shape, ctx->request, messages);

    //  The texts, in the order the model reads them.
    s_units_t units = {NULL};
    json_t *system = json_object_get (ctx->request, "system");
    if (shape == AR_SHAPE_ANTHROPIC_MESSAGES && system)
        s_unit_add (&units, SIZE_MAX, system, true, true, false);
    for (size_t i = 0; i < n; i++) {
        json_t *message = json_array_get (messages, i);
        ar_chat_role_t role = ar_chat_view_role (shape, message);
        json_t *content = json_object_get (message, "content");
        if (role == AR_CHAT_ROLE_SYSTEM)
            s_unit_add (&units, i, content, true, true, false);
        else if (role == AR_CHAT_ROLE_USER && !ar_chat_view_has_results (shape, message))
            s_unit_add (&units, i, content, false, i != last_user && i != last_text && i + 1 < n,
                        ar_chat_view_is_observation (shape, messages, i));
    }
    int rc = units.oom ? -1 : 0;
    s_table_t table = {NULL};
    size_t changed = 0;
    for (size_t u = 0; rc == 0 && u < units.count; u++) {
        if ((u & 15) == 0 && ar_mono_now () > ctx->deadline) {
            rc = -1;
            break;
        }
        s_unit_t *unit = &units.units[u];
        if (!unit->edit && !remove)
            continue;
        if (!unit->edit && unit->output)
            continue;
        if (!unit->edit) {
            //  Only remembered, for the repeats later texts make of it.
            s_scan_t scan = {.ctx = ctx, .table = &table, .where = unit->message + 1};
            if (unit->system)
                scan.where = S_WHERE_SYSTEM;
            s_repeats (&scan, json_string_value (unit->text), json_string_length (unit->text));
            continue;
        }
        rc =
            s_unit (ctx, unit, &table, level, remove && !unit->system && !unit->output, min_tokens);
        if (rc == 0 && unit->system && remove) {
            //  The system prompt (whitespace rules only) is also where later repeats point.
            s_scan_t scan = {.ctx = ctx, .table = &table, .where = S_WHERE_SYSTEM};
            s_repeats (&scan, json_string_value (unit->text), json_string_length (unit->text));
        }
        changed += unit->result != NULL;
    }
    //  Commit: new messages (and system) built aside, then set, so -1 leaves all as it was.
    json_t *out_messages = NULL, *out_system = NULL;
    for (size_t u = 0; rc == 0 && changed && u < units.count;) {
        size_t end = u + 1;
        while (end < units.count && units.units[end].message == units.units[u].message)
            end++;
        bool any = false;
        for (size_t k = u; k < end; k++)
            any |= units.units[k].result != NULL;
        if (any) {
            size_t i = units.units[u].message;
            const json_t *holder = i == SIZE_MAX ? ctx->request : json_array_get (messages, i);
            json_t *content = json_object_get (holder, i == SIZE_MAX ? "system" : "content");
            json_t *rebuilt = s_rebuilt (content, units.units + u, end - u);
            if (!rebuilt)
                rc = -1;
            else if (i == SIZE_MAX)
                out_system = rebuilt;
            else {
                json_t *copy = json_copy ((json_t *)holder);
                if (!out_messages)
                    out_messages = json_copy (messages);
                if (!copy || !out_messages || json_object_set_new (copy, "content", rebuilt) != 0 ||
                    json_array_set_new (out_messages, i, copy) != 0) {
                    if (!copy)
                        json_decref (rebuilt);
                    rc = -1;
                }
            }
        }
        u = end;
    }
    if (rc == 0 && changed) {
        //  Held while they are replaced, so a failure can put them back.
        json_incref (messages);
        json_incref (system);
        if ((out_messages && json_object_set (ctx->request, "messages", out_messages) != 0) ||
            (out_system && json_object_set (ctx->request, "system", out_system) != 0)) {
            json_object_set (ctx->request, "messages", messages);
            if (system)
                json_object_set (ctx->request, "system", system);
            rc = -1;
        } else {
            result->applied = true;
            snprintf (result->note, sizeof result->note, "rewrote %zu text%s (level %s)", changed,
                      changed == 1 ? "" : "s",
                      level == S_LIGHT      ? "light"
                      : level == S_BALANCED ? "balanced"
                                            : "aggressive");
        }
        json_decref (messages);
        json_decref (system);
    }
    json_decref (out_messages);
    json_decref (out_system);
    for (size_t u = 0; u < units.count; u++)
        json_decref (units.units[u].result);
    free (units.units);
    free (table.slots);
    return rc;
}

const ar_strategy_t ar_strategy_prompt_compression = {"prompt_compression", s_apply};

//  --------------------------------------------------------------------------------------------
//  Self-test

#include "ar_rng.h"
#include "ar_stash.h"
#include <unistd.h>

static void s_check (const char *in, const char *want)
{
    char out[4096];
    size_t n = s_normalize (in, strlen (in), false, out);
    out[n] = 0;
    if (strcmp (out, want) != 0) {
        fprintf (stderr, "normalize:\n[%s]\nwant:\n[%s]\n", out, want);
        assert (false);
    }
}

//  Whitespace-only difference: the two texts are equal with all spaces, tabs, \r, \n and the
//  dropped zero-width characters removed.
static bool s_same_but_space (const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (i < alen && (strchr (" \t\r\n", a[i]) || s_zero_width (a + i, a + alen)))
            i += s_zero_width (a + i, a + alen) ? s_zero_width (a + i, a + alen) : 1;
        while (j < blen && (strchr (" \t\r\n", b[j]) || s_zero_width (b + j, b + blen)))
            j += s_zero_width (b + j, b + blen) ? s_zero_width (b + j, b + blen) : 1;
        if (i == alen || j == blen)
            return i == alen && j == blen;
        if (a[i++] != b[j++])
            return false;
    }
}

//  The text with every marker of kind ("repeated text elided" or "markup elided") replaced by
//  what its stash id holds ({"text": original}). Returns a malloc'd string; *markers counts them.
static char *s_expand (ar_stash_t *stash, const char *text, const char *kind, size_t *markers)
{
    s_buf_t out = {NULL};
    char head[64];
    snprintf (head, sizeof head, "[anyray: %s (", kind);
    const char *p = text;
    for (const char *at = strstr (p, head); at; at = strstr (p, head)) {
        const char *tag = strstr (at, "retrieve with id ");
        assert (tag && tag[17 + 32] == ']');
        char id[33];
        memcpy (id, tag + 17, 32);
        id[32] = 0;
        size_t len = 0;
        char *stored = ar_stash_get (stash, id, &len);
        assert (stored);
        json_t *json = json_loadb (stored, len, 0, NULL);
        json_t *original = json_object_get (json, "text");
        assert (json_is_string (original));
        s_put (&out, p, (size_t)(at - p));
        s_put (&out, json_string_value (original), json_string_length (original));
        json_decref (json);
        free (stored);
        p = tag + 17 + 33;
        (*markers)++;
    }
    s_put (&out, p, strlen (p));
    s_put (&out, "", 0);
    return out.data ? out.data : strdup ("");
}

//  The original of an output text: its markup marker's stash, then its repeats' stashes. exact
//  says whether it is byte for byte (a markup marker's stash holds the text before whitespace).
static char *s_original (ar_stash_t *stash, const char *text, size_t *markers, bool *exact)
{
    size_t markup = 0;
    const char *at = strstr (text, "[anyray: markup elided (");
    char *base = NULL;
    if (at) {
        base = s_expand (stash, at, "markup elided", &markup);
        //  The marker's stash is the whole text before markup went: only it counts.
        const char *tag = strstr (at, "retrieve with id ");
        char id[33];
        memcpy (id, tag + 17, 32);
        id[32] = 0;
        size_t len = 0;
        char *stored = ar_stash_get (stash, id, &len);
        json_t *json = json_loadb (stored, len, 0, NULL);
        free (base);
        base = strdup (json_string_value (json_object_get (json, "text")));
        json_decref (json);
        free (stored);
        (*markers)++;
    }
    char *whole = s_expand (stash, base ? base : text, "repeated text elided", markers);
    free (base);
    *exact = at != NULL;
    return whole;
}

static json_t *s_req (ar_shape_t shape, const char *system, bool tools, const char *const *users,
                      size_t nusers)
{
    json_t *request = json_pack ("{s:s, s:i, s:[]}", "model", "m", "max_tokens", 100, "messages");
    json_t *messages = json_object_get (request, "messages");
    if (shape == AR_SHAPE_OPENAI_CHAT) {
        json_array_append_new (messages,
                               json_pack ("{s:s, s:s}", "role", "system", "content", system));
        if (tools)
            json_object_set_new (request, "tools",
                                 json_pack ("[{s:s, s:{s:s, s:s, s:{}}}]", "type", "function",
                                            "function", "name", "bash", "description",
                                            "Run a shell command.", "parameters"));
    } else {
        //  Anthropic: the system prompt as two text blocks.
        const char *code = strstr (system, "```");
        size_t half = code ? (size_t)(code - system) : strlen (system) / 2;
        json_t *first = json_stringn (system, half);
        json_object_set_new (request, "system",
                             json_pack ("[{s:s, s:o}, {s:s, s:s}]", "type", "text", "text", first,
                                        "type", "text", "text", system + half));
        if (tools)
            json_object_set_new (request, "tools",
                                 json_pack ("[{s:s, s:s, s:{s:s}}]", "name", "bash", "description",
                                            "Run a shell command.", "input_schema", "type",
                                            "object"));
    }
    for (size_t i = 0; i < nusers; i++) {
        if (i)
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:s}", "role", "assistant", "content", "ok"));
        json_array_append_new (messages,
                               json_pack ("{s:s, s:s}", "role", "user", "content", users[i]));
    }
    return request;
}

//  The system prompt's texts joined, for either shape.
static const char *s_system_text (ar_shape_t shape, const json_t *request, char *buf, size_t size)
{
    if (shape == AR_SHAPE_OPENAI_CHAT)
        return json_string_value (
            json_object_get (json_array_get (json_object_get (request, "messages"), 0), "content"));
    json_t *blocks = json_object_get (request, "system");
    snprintf (buf, size, "%s%s",
              json_string_value (json_object_get (json_array_get (blocks, 0), "text")),
              json_string_value (json_object_get (json_array_get (blocks, 1), "text")));
    return buf;
}

static const char *s_user_text (const json_t *request, size_t index)
{
    return json_string_value (
        json_object_get (json_array_get (json_object_get (request, "messages"), index), "content"));
}

static const char s_instructions[] =
    "IMPORTANT TIPS:\n"
    "1. Always start by trying to replicate the bug that the issue discusses, and run the\n"
    "   reproduction script again after every edit to check that the fix works.\n"
    "2. If you run a command and it doesn't work, try running a different command. A command\n"
    "   that did not work once will not work the second time unless you modify it!\n";
static const char s_comment[] =
    "<!--\n"
    "Thanks for contributing a pull request! Please make sure to read the contributing guide,\n"
    "fill in every section of this template and link the issue this pull request resolves.\n"
    "Delete this comment before submitting. If the pull request is not ready for review yet,\n"
    "open it as a draft and say what is missing, so reviewers know what to expect from it.\n"
    "-->\n";
static const char s_code[] = "```python\ndef f(x):   \n    return  x   \n\n\n\n```\n";

static void s_agent_tests (ar_tokenizer_t *tok, ar_stash_t *stash, bool verbose)
{
    char system[4096], task[8192], again[4096], last[4096], sysbuf[8192];
    snprintf (system, sizeof system,
              "You are a helpful   assistant that can interact with a computer.   \n\n\n\n\n%s\n"
              "Answer with one bash block.\n%s",
              s_instructions, s_code);
    //  The task repeats the tips verbatim, carries an issue template's comment, and a code
    //  block that holds the tips too (never elided: code).
    snprintf (task, sizeof task,
              "<pr_description>\nConsider the following PR description:\n\n%s\n"
              "The function   crashes   on empty input.  \n\n```\n%s```\n</pr_description>\n\n%s\n"
              "Please fix it.\n",
              s_comment, s_instructions, s_instructions);
    snprintf (again, sizeof again, "Format error: no action found.\n\n%s\nTry again.\n",
              s_instructions);
    snprintf (last, sizeof last, "%s\nAnd now the last turn.   \n", s_instructions);
    const char *users[] = {task, again, last};
    for (int s = 0; s < 2; s++) {
        ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        size_t base = s ? 0 : 1; // index of the first user message
        for (int variant = 0; variant < 5; variant++) {
            //  0 balanced, 1 aggressive, 2 light, 3 balanced without a stash, 4 plain chat
            bool tools = variant != 4;
            json_t *request = s_req (shape, system, tools, users, 3);
            json_t *original = json_deep_copy (request);
            ar_stash_sink_t sink = ar_stash_sink (stash);
            ar_strategy_ctx_t ctx = {.shape = shape,
                                     .request = request,
                                     .tokenizer = tok,
                                     .stash = variant == 3 ? NULL : &sink,
                                     .deadline = INT64_MAX};
            json_t *params = json_pack ("{s:s, s:i}", "level",
                                        variant == 1   ? "aggressive"
                                        : variant == 2 ? "light"
                                                       : "balanced",
                                        "minTokens", 0);
            ar_strategy_result_t result = {.applied = false};
            int64_t before = ar_chat_view_count_tokens (shape, request, tok);
            assert (s_apply (&ctx, params, &result) == 0 && result.applied);
            int64_t after = ar_chat_view_count_tokens (shape, request, tok);
            assert (after < before);
            if (verbose)
                printf ("prompt_compression %s variant %d: %s, %lld -> %lld tokens\n",
                        s ? "anthropic" : "openai", variant, result.note, (long long)before,
                        (long long)after);
            //  The system prompt: whitespace only, its code block byte for byte.
            const char *sys = s_system_text (shape, request, sysbuf, sizeof sysbuf);
            assert (strstr (sys, "You are a helpful assistant that can interact with a computer.\n"
                                 "\n\nIMPORTANT TIPS:"));
            assert (strstr (sys, s_code) && strstr (sys, s_instructions));
            //  The latest user turn: byte for byte.
            assert (json_equal (json_array_get (json_object_get (request, "messages"), base + 4),
                                json_array_get (json_object_get (original, "messages"), base + 4)));
            const char *first = s_user_text (request, base);
            const char *second = s_user_text (request, base + 2);
            bool removes = variant <= 1;
            //  The code block that holds the tips stays, byte for byte.
            char fenced[2048];
            snprintf (fenced, sizeof fenced, "```\n%s```\n", s_instructions);
            assert (strstr (first, fenced));
            assert (strstr (first, "The function crashes on empty input.\n"));
            assert (!strstr (first, "<!--") == removes);
            assert (!!strstr (first, "same as the system prompt") == removes);
            assert (!!strstr (second, "[anyray: repeated text elided (same as the system "
                                      "prompt); retrieve with id ") == removes);
            assert (!strstr (second, s_instructions) == removes);
            //  Every marker gives back the original: the stash round trip, byte for byte.
            for (size_t m = base; m <= base + 2; m += 2) {
                size_t markers = 0;
                bool exact = false;
                const char *in = s_user_text (original, m);
                char *back = s_original (stash, s_user_text (request, m), &markers, &exact);
                assert (markers == 0 || removes);
                assert (exact ? strcmp (back, in) == 0
                              : s_same_but_space (back, strlen (back), in, strlen (in)));
                free (back);
            }
            //  Same input, same output.
            json_t *again_request = json_deep_copy (original);
            ctx.request = again_request;
            result = (ar_strategy_result_t){.applied = false};
            assert (s_apply (&ctx, params, &result) == 0 && json_equal (again_request, request));
            json_decref (again_request);
            json_decref (params);
            json_decref (original);
            json_decref (request);
        }
    }
}

//  Generated requests: paragraphs drawn from a small pool (so some repeat), comments, rules,
//  code, noise; each level, both shapes, with the real stash. Never more tokens, the latest
//  user turn byte for byte, the system prompt equal but for whitespace, and every user text
//  given back by its markers.
static void s_generated (ar_tokenizer_t *tok, ar_stash_t *stash)
{
    static const char *const paragraphs[] = {
        "Make sure every test passes before you submit, and never edit the tests themselves "
        "unless the issue asks for it.\n",
        "When a command fails, read its error output carefully, fix the cause and run it again "
        "rather than retrying the same command unchanged.\n",
        "Short line.\n",
        "Use the repository's own style:   four spaces, no tabs, and a blank line between "
        "functions.  \n",
        "<!-- template: describe the change, link the issue, list what you tested -->\n",
        "<!--\nA comment that spans\nseveral lines of a template.\n-->\n",
        "---\n---\n---\n",
        "```\nIMPORTANT: code keeps   its   spaces  \n```\n",
        "    indented   code  line\n",
        "caf\xc3\xa9 \xe2\x80\x8b z\xc3\xbcrich   text\n",
        "\n\n\n\n",
    };
    const size_t npieces = sizeof paragraphs / sizeof paragraphs[0];
    ar_rng_t rng = {0x243f6a8885a308d3ull};
    ar_stash_sink_t sink = ar_stash_sink (stash);
    for (int c = 0; c < 300; c++) {
        ar_shape_t shape = c % 2 ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        char texts[4][2048];
        for (int t = 0; t < 4; t++) {
            size_t len = 0, count = 1 + ar_rng_below (&rng, 12);
            for (size_t k = 0; k < count; k++) {
                const char *p = paragraphs[ar_rng_below (&rng, npieces)];
                size_t l = strlen (p);
                if (len + l + 2 >= sizeof texts[t])
                    break;
                memcpy (texts[t] + len, p, l);
                len += l;
                texts[t][len++] = '\n';
            }
            texts[t][len] = 0;
        }
        const char *users[] = {texts[1], texts[2], texts[3]};
        json_t *request = s_req (shape, texts[0], ar_rng_below (&rng, 4) != 0, users, 3);
        json_t *original = json_deep_copy (request);
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = INT64_MAX};
        static const char *const levels[] = {"light", "balanced", "aggressive"};
        json_t *params = json_pack ("{s:s, s:i}", "level", levels[ar_rng_below (&rng, 3)],
                                    "minTokens", (int)ar_rng_below (&rng, 3) * 40);
        ar_strategy_result_t result = {.applied = false};
        int64_t before = ar_chat_view_count_tokens (shape, request, tok);
        assert (s_apply (&ctx, params, &result) == 0);
        int64_t after = ar_chat_view_count_tokens (shape, request, tok);
        assert (result.applied ? after < before : json_equal (request, original));
        char a[8192], b[8192];
        const char *sa = s_system_text (shape, original, a, sizeof a);
        const char *sb = s_system_text (shape, request, b, sizeof b);
        assert (strlen (sb) <= strlen (sa) && s_same_but_space (sa, strlen (sa), sb, strlen (sb)));
        size_t base = shape == AR_SHAPE_OPENAI_CHAT ? 1 : 0;
        assert (strcmp (s_user_text (request, base + 4), s_user_text (original, base + 4)) == 0);
        for (size_t m = base; m <= base + 2; m += 2) {
            size_t markers = 0;
            bool exact = false;
            const char *in = s_user_text (original, m);
            char *back = s_original (stash, s_user_text (request, m), &markers, &exact);
            assert (exact ? strcmp (back, in) == 0
                          : s_same_but_space (back, strlen (back), in, strlen (in)));
            free (back);
        }
        json_decref (params);
        json_decref (original);
        json_decref (request);
    }
}

void strategy_prompt_compression_test (bool verbose)
{
    //  The rules, on pasted text typical of chat prompts.
    s_check ("Hello   world.  \nSecond\tline\t \n", "Hello world.\nSecond\tline\n");
    s_check ("a\n\n\n\n\nb\n", "a\n\n\nb\n");
    s_check ("  indented  twice\n", "  indented twice\n");
    s_check ("x\xe2\x80\x8by\xef\xbb\xbfz \r\n", "xyz\r\n");
    s_check ("emoji \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9 kept\n",
             "emoji \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9 kept\n");
    //  Code is byte for byte: fenced and indented.
    s_check ("Fix  this:\n```python\ndef f():   \n    return  1   \n\n\n\n```\nthen  go  \n",
             "Fix this:\n```python\ndef f():   \n    return  1   \n\n\n\n```\nthen go\n");
    s_check ("text\n    code   here  \n\tmore  code \nend  \n",
             "text\n    code   here  \n\tmore  code \nend\n");

    ar_tokenizer_t *tok = ar_tokenizer_new ();
    assert (tok);
    //  Markup: comments outside code go (their own lines with them), rule runs keep one line.
    static const struct {
        const char *in, *want;
        size_t comments, rules;
    } markups[] = {
        {"a\n<!-- note -->\nb <!-- x --> c\n", "a\nb  c\n", 2, 0},
        {"a\n<!--\nmulti\nline\n-->\nb\n", "a\nb\n", 1, 0},
        {"```\n<!-- code -->\n```\n`<!-- inline -->`\n",
         "```\n<!-- code -->\n```\n`<!-- inline -->`\n", 0, 0},
        {"    <!-- indented -->\n", "    <!-- indented -->\n", 0, 0},
        {"<!-- open\n```\n-->\n```\n", "<!-- open\n```\n-->\n```\n", 0, 0},
        {"x\n---\n---\n---\n---\ny\n---\n---\n", "x\n---\ny\n---\n---\n", 0, 3},
    };
    for (size_t i = 0; i < sizeof markups / sizeof markups[0]; i++) {
        s_buf_t out = {NULL};
        s_markup_t markup = {0};
        s_markup (markups[i].in, strlen (markups[i].in), &out, &markup, tok);
        s_put (&out, "", 0);
        const char *got = out.data ? out.data : "";
        if (strcmp (got, markups[i].want) != 0 || markup.comments != markups[i].comments ||
            markup.rules != markups[i].rules) {
            fprintf (stderr, "markup %zu: [%s] %zu %zu\n", i, got, markup.comments, markup.rules);
            assert (false);
        }
        free (out.data);
    }
    //  Requests: an older pasted user message is normalised, the last one is not.
    const char *pasted = "Here is the log I pasted from the terminal:    \n\n\n\n\n"
                         "ERROR   could  not    connect    to   the   database      \n"
                         "WARNING   retrying   in   5   seconds     \n\n\n\n\n"
                         "```\nSELECT  *   FROM  t;   \n```\n";
    for (int s = 0; s < 2; s++) {
        ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        json_t *request =
            json_pack ("{s:s, s:i, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}", "model", "m",
                       "max_tokens", 100, "messages", "role", "user", "content", pasted, "role",
                       "assistant", "content", "ok", "role", "user", "content", pasted);
        json_t *original = json_deep_copy (request);
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = NULL,
                                 .deadline = INT64_MAX};
        json_t *params = json_pack ("{s:s, s:i}", "level", "light", "minTokens", 0);
        ar_strategy_result_t result = {.applied = false};
        int64_t before = ar_chat_view_count_tokens (shape, request, tok);
        assert (s_apply (&ctx, params, &result) == 0 && result.applied);
        int64_t after = ar_chat_view_count_tokens (shape, request, tok);
        assert (after < before);
        if (verbose)
            printf ("prompt_compression %s: %s\n", s ? "anthropic" : "openai", result.note);
        json_t *m = ar_chat_view_messages (request), *om = ar_chat_view_messages (original);
        assert (json_equal (json_array_get (m, 2), json_array_get (om, 2)));
        const char *first = json_string_value (json_object_get (json_array_get (m, 0), "content"));
        assert (strstr (first, "ERROR could not connect to the database\n"));
        assert (strstr (first, "```\nSELECT  *   FROM  t;   \n```\n"));
        //  minTokens above the message: untouched.
        json_t *copy = json_deep_copy (original);
        ctx.request = copy;
        json_decref (params);
        params = json_pack ("{s:i}", "minTokens", 100000);
        result = (ar_strategy_result_t){.applied = false};
        assert (s_apply (&ctx, params, &result) == 0 && !result.applied &&
                json_equal (copy, original));
        json_decref (params);
        params = json_pack ("{s:i}", "minTokens", -1);
        assert (s_apply (&ctx, params, &result) == -1 && json_equal (copy, original));
        json_decref (params);
        json_decref (copy);
        json_decref (original);
        json_decref (request);
    }

    //  Command output in a user turn (a text-action agent's observation) keeps its inner
    //  spaces: a numbered listing's indentation follows the number. Trailing blanks still go.
    {
        char listed[64];
        const char *line = "   12\t        return  x   \n";
        assert (s_normalize (line, strlen (line), true, listed) == strlen (line) - 3);
        assert (memcmp (listed, "   12\t        return  x\n", strlen (line) - 3) == 0);
        assert (s_normalize (line, strlen (line), false, listed) == 16); // prose: squeezed
        const char *listing = "<returncode>0</returncode>\n<output>\n"
                              "   311\t    def  f(self): \t \t \t \t \n"
                              "   312\t        return  self.x \t \t \t \t \n</output>";
        json_t *request = json_pack (
            "{s:s, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}", "model", "m",
            "messages", "role", "user", "content", "Fix  the  bug   in  f.", "role", "assistant",
            "content", "Reading it.\n```bash\nnl -ba a.py | sed -n 311,312p\n```", "role", "user",
            "content", listing, "role", "assistant", "content", "Next.\n```bash\nls\n```", "role",
            "user", "content", "<returncode>0</returncode>\n<output>\na.py\n</output>");
        assert (request);
        ar_strategy_ctx_t ctx = {.shape = AR_SHAPE_OPENAI_CHAT,
                                 .request = request,
                                 .tokenizer = tok,
                                 .deadline = INT64_MAX};
        json_t *params = json_pack ("{s:s, s:i}", "level", "light", "minTokens", 0);
        ar_strategy_result_t result = {.applied = false};
        assert (s_apply (&ctx, params, &result) == 0 && result.applied);
        json_t *m = ar_chat_view_messages (request);
        assert (strcmp (json_string_value (json_object_get (json_array_get (m, 2), "content")),
                        "<returncode>0</returncode>\n<output>\n"
                        "   311\t    def  f(self):\n"
                        "   312\t        return  self.x\n</output>") == 0);
        json_decref (params);
        json_decref (request);
    }

    //  Property loop: generated noisy text; the output is never longer and differs only in
    //  whitespace and dropped zero-width characters.
    static const char *const pieces[] = {"word",     " ",
                                         "  ",       "   ",
                                         "\t",       "\n",
                                         "\n\n\n\n", "\xe2\x80\x8b",
                                         "```\n",    "    code  x  \n",
                                         "\r\n",     "caf\xc3\xa9",
                                         ".",        "  \n"};
    ar_rng_t rng = {0x9e3779b97f4a7c15ull};
    char in[4096], out[4096];
    for (int c = 0; c < 5000; c++) {
        size_t len = 0, count = ar_rng_below (&rng, 80);
        for (size_t k = 0; k < count; k++) {
            const char *p = pieces[ar_rng_below (&rng, sizeof pieces / sizeof pieces[0])];
            memcpy (in + len, p, strlen (p));
            len += strlen (p);
        }
        in[len] = 0;
        size_t n = s_normalize (in, len, false, out);
        assert (n <= len);
        assert (s_same_but_space (in, len, out, n));
        (void)tok;
    }

    //  Agent requests through a real stash on a fresh directory.
    char dir[] = "/tmp/ar-prompt-compression.XXXXXX";
    assert (mkdtemp (dir));
    char db[128];
    snprintf (db, sizeof db, "%s/stash.db", dir);
    uint8_t key[32] = {9};
    ar_stash_t *stash = ar_stash_new (db, key, 3600);
    assert (stash);
    s_agent_tests (tok, stash, verbose);
    s_generated (tok, stash);
    ar_stash_destroy (&stash);
    char cmd[256];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
    ar_tokenizer_destroy (&tok);
}
