/*  strategy_context_compression: shrink bulky tool/function output the agent reads back.

    Only tool results are touched: OpenAI "tool" (and legacy "function") messages, string or
    text-part content; Anthropic tool_result blocks, string or text-block content. User,
    assistant and system text and tool call arguments are never touched. Results of fewer than
    minTokens tokens are left alone, and so is the latest turn (the last message, and in
    Anthropic shape the last user turn, where the freshest results live): the next step most
    likely reads it verbatim.

    Each text of a result goes through these steps, lossless ones first:
    1. minifyJson: a text that parses as one JSON object or array (jansson, duplicate keys
       rejected) loses the whitespace between its tokens. The text is edited byte by byte, never
       re-serialised, so key order, number spelling and string escapes stay exactly as they
       were. A JSON text skips steps 2-4 (whitespace inside its strings is content).
    2. stripAnsi: ANSI CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \) and two-byte ESC
       sequences are removed, and a line a progress bar redrew with carriage returns keeps only
       its final state (the last non-empty segment after a "\r").
    3. collapseWhitespace: trailing whitespace (CRLF's "\r" included) goes, runs of blank lines
       become one blank line, and runs of two or more spaces inside a line become one space.
       Indentation is never changed: the leading whitespace, and the whitespace after a line
       number or grep-style "path:12:" prefix, a diff or bullet marker, are kept exactly. Lines
       that look like code (any of = ( ) { } ; " ' # < > `) keep their inner spaces too, and
       tabs are never touched (they may be column separators).
    4. foldRepeats: a run of at least minRepeat consecutive lines that are identical once runs
       of digits and hex ids are masked (timestamps, counters, percentages, hashes) keeps its
       first and last line, with "[anyray: N similar lines folded; retrieve with id <id>]" in
       place of the N lines between.
    5. maxBlobTokens: a text still above it keeps a head (~2/3 of the budget) and a tail (~1/3,
       and never fewer than the last 20 lines) of whole lines around "[anyray: N lines (T
       tokens) elided; retrieve with id <id>]". A text made of few huge lines (minified JSON)
       is cut by bytes instead, at UTF-8 boundaries: "[anyray: N bytes (T tokens) elided; ...]".
    Lines that the next step likely needs verbatim are never folded or elided: lines naming a
    file with a line number ("file.py:123", "line 12"), error and failure lines ("Error",
    "error:", "error[", "Traceback", "Exception", "FAIL", "panic") and the last 20 lines of the
    text (where a test run's summary is). Those inside a capped middle are kept between
    markers, up to a quarter of the budget.

    Age (oldTurns, oldMaxBlobTokens): a result behind the latest oldTurns assistant turns is
    old, and step 5 caps it at oldMaxBlobTokens instead (head and tail within that budget, no
    20-line tail: an old test run's summary is history). Why: an agent reads most output once,
    acts on it, and moves on; what it acted on is in its later turns. Except the file it is
    working on: an old result whose call names a file (a word with a known source or text
    extension, by base name) that one of the latest oldTurns actions names too (tool call
    arguments, or the fenced command a text-action turn ends with) keeps the normal cap, every
    read of it, because the next edit most likely replaces text seen there. So does the latest
    read of a file the task names (its base name without extension, four letters or more, as
    a word of the first user text: "Engine.render_to_string" names engine.py): agents often
    read the file the issue is about, then the files around it, then edit the first. oldTurns
    0: no age-aware cap.

    Stashing: whenever a result changes at all, its original (the whole tool message, or the
    whole tool_result block, as compact JSON) is stashed once, and every marker in it names
    that one id. A result that only went through lossless steps gets one marker at its end,
    "[anyray: tool output compacted; retrieve with id <id>]", so the original bytes stay one
    retrieve away (exact whitespace, colours). Without a stash nothing is changed.

    A result is only rewritten when it saves at least max(32 tokens, 5%) with its markers; the
    request must pass ar_chat_view_validate. The new messages array is built aside and swapped
    in at the end; on -1 the request is as it was.
*/
#include "ar_buf.h"
#include "ar_chat_view.h"
#include "ar_json_fast.h"
#include "ar_line_set.h"
#include "ar_syntax.h"
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_TAIL_LINES 20 // the last lines of a text are never folded or elided
#define S_MIN_GAIN   32 // tokens a rewritten result saves at least (markers included)

typedef struct {
    int64_t min_tokens, max_blob_tokens, min_repeat;
    bool minify_json, strip_ansi, fold_repeats, collapse_ws;
    int64_t old_turns, old_max_blob_tokens; // age-aware cap (see the header)
    size_t tail_lines;  // the last lines never folded or elided (S_TAIL_LINES; 0 for old output)
    bool drop_repeated; // dropRepeatedLines
    const ar_line_set_t *later; // the lines the request shows after this result, or NULL
} s_params_t;

//  What happened to one text, for the note.
typedef struct {
    bool json, ansi, whitespace;
    size_t folded, capped; // lines (or bytes, when cut by bytes) removed
    size_t repeated;       // lines dropped because a later turn shows them
    size_t markers;        // fold, repeat and cap markers written
    int64_t fold_saved;    // tokens the folds and repeats took out, markers counted (this text)
} s_what_t;

//  --------------------------------------------------------------------------------------------
//  A growable byte buffer

typedef struct {
    char *data;
    size_t len, cap;
    bool oom;
} s_buf_t;

static void s_put (s_buf_t *buf, const char *bytes, size_t len)
{
    if (buf->oom)
        return;
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap < buf->len + len + 1)
            cap *= 2;
        char *data = realloc (buf->data, cap);
        if (!data) {
            buf->oom = true;
            return;
        }
        buf->data = data;
        buf->cap = cap;
    }
    if (len)
        memcpy (buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = 0;
}

static void s_putc (s_buf_t *buf, char c)
{
    s_put (buf, &c, 1);
}

static void s_putf (s_buf_t *buf, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
static void s_putf (s_buf_t *buf, const char *format, ...)
{
    char text[256];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (text, sizeof text, format, args);
    va_end (args);
    if (n > 0)
        s_put (buf, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

//  --------------------------------------------------------------------------------------------
//  1. JSON minify

static bool s_json_space (char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

//  When text is one JSON object or array, its bytes without the whitespace between tokens.
static bool s_minify (const char *text, size_t len, s_buf_t *out)
{
    size_t i = 0;
    while (i < len && s_json_space (text[i]))
        i++;
    if (i == len || (text[i] != '{' && text[i] != '['))
        return false;
    json_t *parsed = json_loadb (text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!parsed)
        return false;
    json_decref (parsed);
    bool in_string = false;
    size_t start = i;
    for (; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++; // the escaped byte is part of the string
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (s_json_space (c)) {
            s_put (out, text + start, i - start);
            start = i + 1;
        }
    }
    s_put (out, text + start, len - start);
    return !out->oom;
}

//  --------------------------------------------------------------------------------------------
//  2. ANSI escapes and carriage-return redraws

//  Length of the escape sequence at text[i] (text[i] == ESC), 1 for a lone ESC.
static size_t s_escape_len (const char *text, size_t len, size_t i)
{
    if (i + 1 >= len)
        return 1;
    unsigned char kind = (unsigned char)text[i + 1];
    size_t j = i + 2;
    if (kind == '[') { // CSI: parameter and intermediate bytes, then one final byte
        while (j < len && (unsigned char)text[j] >= 0x20 && (unsigned char)text[j] <= 0x3f)
            j++;
        while (j < len && (unsigned char)text[j] >= 0x20 && (unsigned char)text[j] <= 0x2f)
            j++;
        if (j < len && (unsigned char)text[j] >= 0x40 && (unsigned char)text[j] <= 0x7e)
            return j + 1 - i;
        return j - i;
    }
    if (kind == ']' || kind == 'P' || kind == '_' || kind == '^') { // OSC/DCS/APC/PM
        for (; j < len && text[j] != '\n'; j++) {
            if (text[j] == '\a')
                return j + 1 - i;
            if (text[j] == 0x1b && j + 1 < len && text[j + 1] == '\\')
                return j + 2 - i;
        }
        return j - i;
    }
    if (kind == '(' || kind == ')' || kind == '#' || kind == '%') // charset: one more byte
        return j < len ? 3 : 2;
    if (kind >= 0x40 && kind <= 0x7e)
        return 2;
    return 1;
}

static void s_strip_escapes (const char *text, size_t len, s_buf_t *out)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == 0x1b) {
            s_put (out, text + start, i - start);
            i += s_escape_len (text, len, i) - 1;
            start = i + 1;
        }
    s_put (out, text + start, len - start);
}

//  --------------------------------------------------------------------------------------------
//  3. Whitespace

static bool s_blank (const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace ((unsigned char)line[i]))
            return false;
    return true;
}

//  Bytes of a line that count as its indentation: the leading whitespace, then a line-number
//  prefix ("  12\t", "12:", "path/x.py:12:"), a diff or bullet marker, and the whitespace after
//  it. Collapsing never touches them.
static size_t s_indent (const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t p = i;
    if (p < len && isdigit ((unsigned char)line[p])) { // cat -n, nl, "12:"
        while (p < len && isdigit ((unsigned char)line[p]))
            p++;
        if (p < len && strchr ("\t:|-", line[p]))
            p++;
        else
            p = i;
    } else if (p < len && strchr ("+-<>|!*", line[p]) && p + 1 < len &&
               (line[p + 1] == ' ' || line[p + 1] == '\t'))
        p++; // diff line, bullet, quote
    else {
        size_t q = p; // grep -n: a path without spaces, ':' or '-', digits, ':' or '-'
        while (q < len && line[q] != ' ' && line[q] != '\t' && line[q] != ':')
            q++;
        if (q > p && q + 1 < len && line[q] == ':' && isdigit ((unsigned char)line[q + 1])) {
            q++;
            while (q < len && isdigit ((unsigned char)line[q]))
                q++;
            if (q < len && (line[q] == ':' || line[q] == '-'))
                p = q + 1;
        }
    }
    while (p < len && (line[p] == ' ' || line[p] == '\t'))
        p++;
    return p > i ? p : i;
}

static bool s_codeish (const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (strchr ("=(){};\"'#<>`", line[i]) && line[i])
            return true;
    return false;
}

//  One line (no '\n') through steps 2 and 3 into out.
static void s_clean_line (const s_params_t *p, const char *line, size_t len, s_buf_t *out,
                          s_what_t *what)
{
    if (p->strip_ansi) {
        //  A "\r" before the end redraws the line: keep the last segment that shows something.
        size_t end = len;
        while (end > 0 && line[end - 1] == '\r')
            end--;
        const char *cr = memrchr (line, '\r', end);
        if (cr) {
            size_t from = (size_t)(cr + 1 - line);
            line += from;
            len -= from;
            what->ansi = true;
        }
    }
    if (!p->collapse_ws) {
        s_put (out, line, len);
        return;
    }
    size_t end = len;
    while (end > 0 && isspace ((unsigned char)line[end - 1]))
        end--;
    if (end < len)
        what->whitespace = true;
    size_t indent = s_indent (line, end);
    s_put (out, line, indent);
    if (s_codeish (line, end)) {
        s_put (out, line + indent, end - indent);
        return;
    }
    size_t start = indent;
    for (size_t i = indent; i < end; i++)
        if (line[i] == ' ' && i + 1 < end && line[i + 1] == ' ') {
            s_put (out, line + start, i + 1 - start);
            while (i + 1 < end && line[i + 1] == ' ')
                i++;
            start = i + 1;
            what->whitespace = true;
        }
    s_put (out, line + start, end - start);
}

//  Steps 2 and 3 over a whole text.
static void s_clean (const s_params_t *p, const char *text, size_t len, s_buf_t *out,
                     s_what_t *what)
{
    s_buf_t plain = {0};
    if (p->strip_ansi && memchr (text, 0x1b, len)) {
        s_strip_escapes (text, len, &plain);
        if (plain.oom) {
            out->oom = true;
            return;
        }
        what->ansi = plain.len != len;
        text = plain.data;
        len = plain.len;
    }
    bool blank_before = false, any = false;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr (text + i, '\n', len - i);
        size_t line_len = nl ? (size_t)(nl - (text + i)) : len - i;
        const char *line = text + i;
        i += line_len + (nl ? 1 : 0);
        if (p->collapse_ws && s_blank (line, line_len)) {
            if (blank_before || !any)
                what->whitespace = true; // a run of blanks, or blanks leading the text
            blank_before = true;
            continue;
        }
        if (blank_before && any)
            s_putc (out, '\n');
        blank_before = false;
        s_clean_line (p, line, line_len, out, what);
        any = true;
        if (nl)
            s_putc (out, '\n');
    }
    if (blank_before && !any)
        what->whitespace = true;
    free (plain.data);
}

//  --------------------------------------------------------------------------------------------
//  4/5. Lines: protected ones, masks, folding, the cap

typedef struct {
    const char *text; // into the cleaned text, or NULL for a marker
    size_t len;
    size_t folded;  // a marker: how many lines it stands for
    int64_t tokens; // of the line (or the marker); -1 until s_line_tokens counts it
    uint64_t mask;  // hash of the masked line
    int8_t protect; // never folded or elided: 1, 0, or -1 until s_line_protected looks
    bool repeated;  // a marker for lines a later turn shows (else for similar lines)
} s_line_t;

//  "name.ext:123" or "dir/name:123" ending at line[i] == ':': a path-like word (a letter and
//  a '.' or '/') before ":<digit>".
static bool s_path_line_ref (const char *line, size_t len, size_t i)
{
    if (i == 0 || i + 1 >= len || !isdigit ((unsigned char)line[i + 1]))
        return false;
    bool letter = false, sep = false;
    for (size_t j = i; j-- > 0;) {
        char c = line[j];
        if (isspace ((unsigned char)c) || c == '"' || c == '\'' || c == '(' || c == ':')
            break;
        letter |= isalpha ((unsigned char)c) != 0;
        sep |= c == '.' || c == '/';
    }
    return letter && sep;
}

//  A line the next step likely needs verbatim: errors, failures, file:line references. One
//  pass; a word is compared only where its first byte is (this runs on every line, and 'e'
//  is the commonest letter: the second byte is checked before the words are).
static bool s_protected (const char *line, size_t len)
{
    typedef struct {
        const char *text;
        size_t len;
    } s_word_t;
#define S_WORD(w)                                                                                  \
    {                                                                                              \
        w, sizeof w - 1                                                                            \
    }
    static const s_word_t upper_e[] = {S_WORD ("Error"), S_WORD ("ERROR"), S_WORD ("Exception")};
    static const s_word_t lower_e[] = {S_WORD ("error:"), S_WORD ("error[")};
    static const s_word_t upper_f[] = {S_WORD ("FAIL"), S_WORD ("Failed")};
    static const s_word_t lower_f[] = {S_WORD ("fatal"), S_WORD ("failed")};
    static const s_word_t upper_t[] = {S_WORD ("Traceback")};
    static const s_word_t lower_p[] = {S_WORD ("panic")};
    static const s_word_t comma[] = {S_WORD (", line ")};
#undef S_WORD
    for (size_t i = 0; i < len; i++) {
        const s_word_t *words = NULL;
        size_t count = 0;
        switch (line[i]) {
        case ':':
            if (s_path_line_ref (line, len, i))
                return true;
            continue;
        case 'E':
            words = upper_e, count = 3;
            break;
        case 'e':
            if (i + 1 < len && line[i + 1] == 'r')
                words = lower_e, count = 2;
            break;
        case 'F':
            words = upper_f, count = 2;
            break;
        case 'f':
            words = lower_f, count = 2;
            break;
        case 'T':
            words = upper_t, count = 1;
            break;
        case 'p':
            words = lower_p, count = 1;
            break;
        case ',':
            words = comma, count = 1;
            break;
        default:
            continue;
        }
        for (size_t w = 0; w < count; w++)
            if (len - i >= words[w].len && memcmp (line + i, words[w].text, words[w].len) == 0)
                return true;
    }
    return false;
}

//  Hash of the line with runs of digits, and hex words of six or more with a digit, masked.
static uint64_t s_mask (const char *line, size_t len)
{
    uint64_t h = 1469598103934665603ull;
#define S_MIX(c) (h = (h ^ (unsigned char)(c)) * 1099511628211ull)
    for (size_t i = 0; i < len;) {
        if (line[i] == '0' && i + 2 < len && line[i + 1] == 'x' &&
            isxdigit ((unsigned char)line[i + 2])) { // 0x1f: any length
            for (i += 2; i < len && isxdigit ((unsigned char)line[i]); i++)
                ;
            S_MIX ('#');
            continue;
        }
        if (isxdigit ((unsigned char)line[i])) {
            size_t j = i;
            bool digit = false;
            while (j < len && isxdigit ((unsigned char)line[j]))
                digit |= isdigit ((unsigned char)line[j++]) != 0;
            bool word_end = j == len || !isalnum ((unsigned char)line[j]);
            bool word_start = i == 0 || !isalnum ((unsigned char)line[i - 1]);
            if (digit && j - i >= 6 && word_start && word_end) {
                S_MIX ('#');
                i = j;
                continue;
            }
        }
        if (isdigit ((unsigned char)line[i])) {
            while (i < len && isdigit ((unsigned char)line[i]))
                i++;
            S_MIX ('0');
            continue;
        }
        S_MIX (line[i]);
        i++;
    }
#undef S_MIX
    return h;
}

static int64_t s_tokens (ar_tokenizer_t *tok, const char *text, size_t len)
{
    return ar_chat_view_text_tokens (tok, text, len);
}

//  Split text into lines (a final "\n" ends the last line, it does not start an empty one).
static s_line_t *s_lines (ar_tokenizer_t *tok, const char *text, size_t len, size_t tail_lines,
                          size_t *count)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    n += len && text[len - 1] != '\n';
    s_line_t *lines = calloc (n ? n : 1, sizeof (s_line_t));
    if (!lines)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len && k < n;) {
        const char *nl = memchr (text + i, '\n', len - i);
        size_t line_len = nl ? (size_t)(nl - (text + i)) : len - i;
        lines[k] = (s_line_t){text + i, line_len, 0, -1, 0, -1, false};
        lines[k].mask = s_mask (text + i, line_len);
        k++;
        i += line_len + 1;
    }
    for (size_t i = n > tail_lines ? n - tail_lines : 0; i < n; i++)
        lines[i].protect = 1;
    *count = n;
    return lines;
}

#define S_FOLD_MARKER_TOKENS 24

//  Whether a line is protected, looked at the first time it matters: only lines that could
//  fold or fall into a cap's gap are (most lines are neither).
static bool s_line_protected (s_line_t *line)
{
    if (line->protect < 0)
        line->protect = line->text && s_protected (line->text, line->len);
    return line->protect > 0;
}

//  A line's tokens (its newline included), counted the first time they are needed: most
//  lines are neither in a fold nor at a cap's edge, and counting is most of this strategy's
//  time.
static int64_t s_line_tokens (ar_tokenizer_t *tok, s_line_t *line)
{
    if (line->tokens < 0)
        line->tokens = s_tokens (tok, line->text, line->len) + 1;
    return line->tokens;
}

//  Fold runs of similar lines in place; returns the new count.
static size_t s_fold (ar_tokenizer_t *tok, const s_params_t *p, s_line_t *lines, size_t n,
                      s_what_t *what)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        if (lines[i].len && j < n && lines[j].mask == lines[i].mask &&
            !s_line_protected (&lines[i]))
            while (j < n && lines[j].mask == lines[i].mask && lines[j].len &&
                   !s_line_protected (&lines[j]))
                j++;
        size_t run = j - i;
        int64_t middle = 0;
        for (size_t m = i + 1; m + 1 < j; m++)
            middle += s_line_tokens (tok, &lines[m]);
        if (run >= (size_t)p->min_repeat && run >= 3 && middle > S_FOLD_MARKER_TOKENS + 8) {
            lines[k++] = lines[i];
            lines[k++] = (s_line_t){NULL, 0, run - 2, S_FOLD_MARKER_TOKENS, 0, 0, false};
            lines[k++] = lines[j - 1];
            what->folded += run - 2;
            what->markers++;
            what->fold_saved += middle - S_FOLD_MARKER_TOKENS;
        } else
            for (size_t m = i; m < j; m++)
                lines[k++] = lines[m];
        i = j;
    }
    return k;
}

//  What a "shown again later" marker costs (~12 tokens of text and ~20 of id).
#define S_REPEAT_MARKER_TOKENS 32

//  A line that only wraps output ("<output>", "</output>", "<returncode>0</returncode>"): it
//  is in every observation and says where this one starts and ends, so it always stays.
static bool s_wrapper_line (const char *line, size_t len)
{
    size_t start;
    len = ar_line_set_trim (line, len, &start);
    return len >= 3 && len <= 40 && line[start] == '<' && line[start + len - 1] == '>';
}

//  A line a later turn shows again, and that may go from this older copy.
static bool s_shown_later (const ar_line_set_t *later, const char *line, size_t len)
{
    return !s_wrapper_line (line, len) && ar_line_set_has (later, line, len);
}

static bool s_seen_later (const s_params_t *p, const s_line_t *line)
{
    return line->text && s_shown_later (p->later, line->text, line->len);
}

//  Drop the runs of lines a later turn shows again (the same file region read twice, a test
//  rerun, a narrowed grep): this older copy tells the model nothing the later one does not.
//  Blank lines join a run between two such lines. A run goes when it is worth more than its
//  marker (tokens estimated at per_byte; the result is counted exactly afterwards). Returns
//  the new count.
static size_t s_drop_seen (const s_params_t *p, s_line_t *lines, size_t n, double per_byte,
                           s_what_t *what)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (!s_seen_later (p, &lines[i])) {
            lines[k++] = lines[i++];
            continue;
        }
        size_t end = i + 1, bytes = lines[i].len + 1;
        for (size_t j = i + 1; j < n; j++) {
            if (s_seen_later (p, &lines[j]))
                end = j + 1;
            else if (!lines[j].text || !s_blank (lines[j].text, lines[j].len))
                break;
        }
        for (size_t m = i + 1; m < end; m++)
            bytes += lines[m].len + 1;
        int64_t tokens = (int64_t)((double)bytes * per_byte);
        if (end - i >= 2 && tokens > S_REPEAT_MARKER_TOKENS + 8) {
            lines[k++] = (s_line_t){NULL, 0, end - i, S_REPEAT_MARKER_TOKENS, 0, false, true};
            what->repeated += end - i;
            what->markers++;
            what->fold_saved += tokens - S_REPEAT_MARKER_TOKENS;
        } else
            for (size_t m = i; m < end; m++)
                lines[k++] = lines[m];
        i = end;
    }
    return k;
}

static void s_emit_line (s_buf_t *out, const s_line_t *line, const char *id)
{
    if (line->text)
        s_put (out, line->text, line->len);
    else if (line->repeated)
        s_putf (out, "[anyray: %zu lines shown again later; retrieve with id %s]", line->folded,
                id);
    else
        s_putf (out, "[anyray: %zu similar lines folded; retrieve with id %s]", line->folded, id);
}

static size_t s_weight (const s_line_t *line)
{
    return line->text ? 1 : line->folded;
}

//  Write lines, eliding the middle when they exceed budget tokens (head ~2/3, tail ~1/3 and at
//  least the last S_TAIL_LINES, protected lines of the middle kept while a quarter of the
//  budget lasts). final_nl: the text ended with "\n".
//  total: the lines' tokens (INT64_MAX: no cap). Only the lines the head and tail take and the
//  protected ones are counted; an elided line's tokens are estimated at per_byte (the text's
//  tokens per byte) for the marker: counting every line of an old output would double the
//  strategy's time for a figure the model only reads as a size.
static void s_cap_lines (ar_tokenizer_t *tok, s_line_t *lines, size_t n, int64_t budget,
                         int64_t total, double per_byte, size_t tail_lines, const char *id,
                         bool final_nl, s_buf_t *out, s_what_t *what)
{
    size_t head = n, tail = n; // lines [0, head) and [tail, n) are kept whole
    if (total > budget) {
        int64_t head_budget = budget * 2 / 3, tail_budget = budget - head_budget, used = 0;
        tail = n;
        while (tail > 0 && (n - tail < tail_lines ||
                            used + s_line_tokens (tok, &lines[tail - 1]) <= tail_budget)) {
            used += s_line_tokens (tok, &lines[tail - 1]);
            tail--;
        }
        used = 0;
        head = 0;
        while (head < tail && used + s_line_tokens (tok, &lines[head]) <= head_budget)
            used += lines[head++].tokens;
        if (tail - head < 2)
            head = tail = n; // nothing worth a marker
    }
    int64_t extra = budget / 4;
    size_t gap = 0;
    int64_t gap_tokens = 0;
    for (size_t i = 0; i < n; i++) {
        bool keep = i < head || i >= tail;
        if (!keep && s_line_protected (&lines[i]) && s_line_tokens (tok, &lines[i]) <= extra) {
            extra -= lines[i].tokens;
            keep = true;
        }
        if (!keep) {
            gap += s_weight (&lines[i]);
            gap_tokens += lines[i].tokens >= 0 ? lines[i].tokens
                                               : (int64_t)((double)(lines[i].len + 1) * per_byte);
            continue;
        }
        if (gap) {
            s_putf (out, "[anyray: %zu lines (%lld tokens) elided; retrieve with id %s]\n", gap,
                    (long long)gap_tokens, id);
            what->capped += gap;
            what->markers++;
            gap = 0;
            gap_tokens = 0;
        }
        s_emit_line (out, &lines[i], id);
        if (i + 1 < n || final_nl)
            s_putc (out, '\n');
    }
}

//  Move head back to the start of a marker it falls inside, and tail past the end of one.
static void s_outside_marker (const char *text, size_t len, size_t *head, size_t *tail)
{
    for (const char *at = text; (at = memmem (at, len - (size_t)(at - text), "[anyray: ", 9));) {
        size_t start = (size_t)(at - text);
        const char *close = memchr (at, ']', len - start);
        size_t end = close ? (size_t)(close - text) + 1 : len;
        if (start < *head && *head < end)
            *head = start;
        if (start < *tail && *tail < end)
            *tail = end;
        at = text + end;
        if (end >= len)
            break;
    }
}

//  Cut text by bytes to ~budget tokens: head ~2/3, tail ~1/3, at UTF-8 boundaries (at a line
//  end when one is near).
static void s_cap_bytes (ar_tokenizer_t *tok, const char *text, size_t len, int64_t tokens,
                         int64_t budget, const char *id, s_buf_t *out, s_what_t *what)
{
    double per_token = (double)len / (double)(tokens ? tokens : 1);
    size_t head = (size_t)(per_token * (double)(budget * 2 / 3));
    size_t tail_len = (size_t)(per_token * (double)(budget - budget * 2 / 3));
    if (head + tail_len + 64 >= len) {
        s_put (out, text, len);
        return;
    }
    size_t tail = len - tail_len;
    const char *nl = memrchr (text, '\n', head);
    if (nl && (size_t)(nl - text) > head - head / 8)
        head = (size_t)(nl - text) + 1;
    while (head > 0 && ((unsigned char)text[head] & 0xc0) == 0x80)
        head--;
    nl = memchr (text + tail, '\n', tail_len);
    if (nl && (size_t)(nl - (text + tail)) < tail_len / 8)
        tail = (size_t)(nl - text) + 1;
    while (tail < len && ((unsigned char)text[tail] & 0xc0) == 0x80)
        tail++;
    //  Never through a marker an earlier step wrote (its id is filled in later, whole).
    s_outside_marker (text, len, &head, &tail);
    if (head >= tail) {
        s_put (out, text, len);
        return;
    }
    s_put (out, text, head);
    if (head && text[head - 1] != '\n')
        s_putc (out, '\n');
    s_putf (out, "[anyray: %zu bytes (%lld tokens) elided; retrieve with id %s]\n", tail - head,
            (long long)s_tokens (tok, text + head, tail - head), id);
    s_put (out, text + tail, len - tail);
    what->capped += tail - head;
    what->markers++;
}

//  --------------------------------------------------------------------------------------------
//  One text through every step. out gets the new text; returns whether it differs.

static bool s_compress (ar_tokenizer_t *tok, const s_params_t *p, const char *text, size_t len,
                        int64_t text_tokens, const char *id, s_buf_t *out, s_what_t *what)
{
    s_buf_t clean = {0};
    bool json = p->minify_json && s_minify (text, len, &clean);
    if (json)
        what->json = clean.len != len;
    else {
        clean.len = 0;
        clean.oom = false;
        if (p->strip_ansi || p->collapse_ws)
            s_clean (p, text, len, &clean, what);
        else
            s_put (&clean, text, len);
    }
    if (clean.oom) {
        free (clean.data);
        out->oom = true;
        return false;
    }
    size_t n = 0;
    s_line_t *lines = NULL;
    //  Counting is most of this strategy's time: a text the lossless steps left as it was has
    //  the count the caller took already (text_tokens, -1 when it took none).
    bool same = clean.len == len && (!len || memcmp (clean.data, text, len) == 0);
    int64_t tokens = same && text_tokens >= 0
                         ? text_tokens
                         : s_tokens (tok, clean.data ? clean.data : "", clean.len);
    bool fold = p->fold_repeats && !json;
    bool drop = p->later && !json;
    bool may_cap = tokens > p->max_blob_tokens; // folding only ever removes tokens
    double per_byte = clean.len ? (double)tokens / (double)clean.len : 0;
    if (fold || drop || may_cap) {
        lines = s_lines (tok, clean.data ? clean.data : "", clean.len, p->tail_lines, &n);
        if (!lines) {
            free (clean.data);
            out->oom = true;
            return false;
        }
    }
    int64_t fold_before = what->fold_saved;
    if (drop)
        n = s_drop_seen (p, lines, n, per_byte, what);
    if (fold)
        n = s_fold (tok, p, lines, n, what);
    if (lines) {
        s_buf_t capped = {0};
        bool final_nl = clean.len && clean.data[clean.len - 1] == '\n';
        //  The folds' lines were counted: what is left is the text's count less what they
        //  took out.
        s_cap_lines (tok, lines, n, may_cap ? p->max_blob_tokens : INT64_MAX,
                     tokens - (what->fold_saved - fold_before), per_byte, p->tail_lines, id,
                     final_nl, &capped, what);
        int64_t after = may_cap ? s_tokens (tok, capped.data ? capped.data : "", capped.len) : 0;
        if (!capped.oom && after > p->max_blob_tokens + p->max_blob_tokens / 4) {
            s_cap_bytes (tok, capped.data, capped.len, after, p->max_blob_tokens, id, out, what);
        } else
            s_put (out, capped.data ? capped.data : "", capped.len);
        out->oom |= capped.oom;
        free (capped.data);
    } else
        s_put (out, clean.data ? clean.data : "", clean.len);
    free (lines);
    free (clean.data);
    return !out->oom && (out->len != len || memcmp (out->data ? out->data : "", text, len) != 0);
}

//  --------------------------------------------------------------------------------------------
//  Tool results in the request

//  The texts of one result: the string content itself, or the text parts/blocks of an array.
//  Calls fn with each json string node; returns how many.
typedef void (s_text_fn) (json_t *string, void *arg);

static size_t s_each_text (json_t *content, s_text_fn *fn, void *arg)
{
    if (json_is_string (content)) {
        if (fn)
            fn (content, arg);
        return 1;
    }
    size_t i, count = 0;
    json_t *part;
    json_array_foreach (content, i, part)
    {
        json_t *text = json_object_get (part, "text");
        const char *type = json_string_value (json_object_get (part, "type"));
        if (json_is_string (text) && type && strcmp (type, "text") == 0) {
            if (fn)
                fn (text, arg);
            count++;
        }
    }
    return count;
}

#define S_COUNTED 16 // texts of one result whose counts are remembered

typedef struct {
    const json_t *string;
    int64_t tokens;
} s_count_t;

typedef struct {
    ar_tokenizer_t *tok;
    const s_params_t *params;
    const char *id;
    s_count_t counted[S_COUNTED]; // what s_count_text counted, to count nothing twice
    size_t ncounted;
    int64_t before, after;
    bool changed, oom, skip;
    s_what_t what;
    json_t *replaced; // new content (when building)
} s_unit_t;

#define S_PLACEHOLDER_ID "00000000000000000000000000000000"

static void s_count_bytes (json_t *string, void *arg)
{
    ((s_unit_t *)arg)->before += (int64_t)json_string_length (string);
}

//  Write id over the placeholder in every replacement text ([node, new text] pairs).
static int s_set_id (json_t *replaced, const char *id)
{
    size_t i;
    json_t *pair;
    json_array_foreach (replaced, i, pair)
    {
        json_t *text = json_array_get (pair, 1);
        size_t len = json_string_length (text);
        char *copy = malloc (len + 1);
        if (!copy)
            return -1;
        memcpy (copy, json_string_value (text), len + 1);
        for (char *at = copy; (at = memmem (at, len - (size_t)(at - copy), S_PLACEHOLDER_ID, 32));
             at += 32)
            memcpy (at, id, 32);
        int rc = json_array_set_new (pair, 1, json_stringn (copy, len));
        free (copy);
        if (rc != 0)
            return -1;
    }
    return 0;
}

//  The count s_count_text took of string, or -1.
static int64_t s_counted (const s_unit_t *unit, const json_t *string)
{
    for (size_t i = 0; i < unit->ncounted; i++)
        if (unit->counted[i].string == string)
            return unit->counted[i].tokens;
    return -1;
}

static void s_count_text (json_t *string, void *arg)
{
    s_unit_t *unit = (s_unit_t *)arg;
    const char *text = json_string_value (string);
    size_t len = json_string_length (string);
    int64_t tokens = s_tokens (unit->tok, text, len);
    unit->before += tokens;
    if (unit->ncounted < S_COUNTED)
        unit->counted[unit->ncounted++] = (s_count_t){string, tokens};
    if (memmem (text, len, "[anyray: ", 9))
        unit->skip = true; // already ours: do not compress twice
}

//  Compress one text; with unit->replaced (a copy of the content), set the new text there.
static void s_compress_text (json_t *string, void *arg)
{
    s_unit_t *unit = (s_unit_t *)arg;
    const char *text = json_string_value (string);
    size_t len = json_string_length (string);
    s_buf_t out = {0};
    int64_t counted = s_counted (unit, string);
    if (len < 32 ||
        !s_compress (unit->tok, unit->params, text, len, counted, unit->id, &out, &unit->what)) {
        unit->oom |= out.oom;
        unit->after += counted >= 0 ? counted : s_tokens (unit->tok, text, len);
        free (out.data);
        return;
    }
    unit->changed = true;
    unit->after += s_tokens (unit->tok, out.data, out.len);
    (void)unit->replaced;
    json_t *value = json_stringn (out.data, out.len);
    free (out.data);
    if (!value) {
        unit->oom = true;
        return;
    }
    //  Remember the replacement on the unit: the caller swaps string nodes in its copy.
    json_t *pairs = unit->replaced;
    if (!pairs || json_array_append_new (pairs, json_pack ("[o,o]", json_incref (string), value)))
        unit->oom = true;
}

//  The content with each string node listed in pairs replaced by its new value (copies of the
//  containers on the way; leaves shared).
static json_t *s_substitute (json_t *content, json_t *pairs)
{
    size_t i;
    json_t *pair;
    json_array_foreach (pairs, i, pair) if (json_array_get (pair, 0) ==
                                            content) return json_incref (json_array_get (pair, 1));
    if (json_is_array (content)) {
        json_t *copy = json_array ();
        json_t *item;
        json_array_foreach (content, i,
                            item) if (!copy ||
                                      json_array_append_new (copy, s_substitute (item, pairs)) != 0)
        {
            json_decref (copy);
            return NULL;
        }
        return copy;
    }
    if (json_is_object (content)) {
        json_t *copy = json_object ();
        const char *key;
        json_t *value;
        json_object_foreach (
            content, key,
            value) if (!copy || json_object_set_new (copy, key, s_substitute (value, pairs)) != 0)
        {
            json_decref (copy);
            return NULL;
        }
        return copy;
    }
    return json_incref (content);
}

//  A small result is only looked at when it has at least this many bytes in lines a later turn
//  shows: a run has to be worth more than its marker.
#define S_MIN_SHOWN_BYTES 160

typedef struct {
    const ar_line_set_t *later;
    size_t bytes; // of the lines a later turn shows
} s_shown_t;

static void s_shown_bytes (json_t *string, void *arg)
{
    s_shown_t *shown = (s_shown_t *)arg;
    const char *text = json_string_value (string);
    size_t len = json_string_length (string);
    for (size_t i = 0; i < len;) {
        const char *nl = memchr (text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (s_shown_later (shown->later, text + i, end - i))
            shown->bytes += end - i + 1;
        i = end + 1;
    }
}

//  One tool result (holder: the OpenAI message or the Anthropic tool_result block; its
//  "content" is the result). Returns the new holder (new reference), NULL to keep it, or sets
//  *failed.
static json_t *s_result (ar_strategy_ctx_t *ctx, const s_params_t *params, json_t *holder,
                         s_what_t *what, int64_t *saved, bool *failed)
{
    json_t *content = json_object_get (holder, "content");
    //  A result under minTokens only loses what a later turn shows again (when that is on):
    //  the steps that change its own bytes are for bulky output.
    s_params_t drop_only = {.min_tokens = 0,
                            .max_blob_tokens = INT64_MAX / 4,
                            .min_repeat = params->min_repeat,
                            .later = params->later};
    s_unit_t unit = {.tok = ctx->tokenizer, .params = params};
    //  A token is at least one byte: a result with fewer bytes than minTokens is not counted.
    s_unit_t bytes = {0};
    if (!s_each_text (content, s_count_bytes, &bytes))
        return NULL;
    bool small = bytes.before < params->min_tokens;
    s_shown_t shown = {params->later, 0};
    if (small && !(params->later && s_each_text (content, s_shown_bytes, &shown) &&
                   shown.bytes >= S_MIN_SHOWN_BYTES))
        return NULL;
    if (!s_each_text (content, s_count_text, &unit) || unit.skip)
        return NULL;
    if (!small && unit.before < params->min_tokens) {
        if (!params->later)
            return NULL;
        small = true;
    }
    if (small) {
        unit.params = &drop_only;
        params = &drop_only;
    }
    //  One run with a placeholder id decides; if the result is kept, the original is stashed
    //  and its id written over the placeholder (same length), without compressing again.
    unit.id = S_PLACEHOLDER_ID;
    unit.replaced = json_array ();
    s_each_text (content, s_compress_text, &unit);
    if (unit.oom || !unit.replaced) {
        json_decref (unit.replaced);
        *failed = true;
        return NULL;
    }
    bool lossless = unit.what.markers == 0;
    int64_t marker = lossless ? 24 : 0;
    int64_t gain = unit.before - unit.after - marker;
    if (!unit.changed || gain < S_MIN_GAIN || gain * 20 < unit.before) {
        json_decref (unit.replaced);
        return NULL;
    }
    size_t original_len = 0;
    char *original = ar_json_fast_dump (holder, &original_len);
    char id[33] = "";
    if (!original || ctx->stash->put (ctx->stash->self, original, original_len, id) != 0 ||
        s_set_id (unit.replaced, id) != 0) {
        free (original);
        json_decref (unit.replaced);
        *failed = true;
        return NULL;
    }
    free (original);
    s_unit_t real = unit;
    if (lossless) {
        //  One marker at the end of the last text that changed.
        json_t *last =
            json_array_get (json_array_get (real.replaced, json_array_size (real.replaced) - 1), 1);
        s_buf_t text = {0};
        s_put (&text, json_string_value (last), json_string_length (last));
        if (text.len && text.data[text.len - 1] != '\n')
            s_putc (&text, '\n');
        s_putf (&text, "[anyray: tool output compacted; retrieve with id %s]", id);
        json_t *marked = text.oom ? NULL : json_stringn (text.data, text.len);
        free (text.data);
        if (!marked ||
            json_array_set_new (json_array_get (real.replaced, json_array_size (real.replaced) - 1),
                                1, marked) != 0) {
            json_decref (real.replaced);
            *failed = true;
            return NULL;
        }
    }
    json_t *new_content = s_substitute (content, real.replaced);
    json_decref (real.replaced);
    json_t *copy = new_content ? json_copy (holder) : NULL;
    if (!copy || json_object_set_new (copy, "content", new_content) != 0) {
        if (!copy)
            json_decref (new_content);
        json_decref (copy);
        *failed = true;
        return NULL;
    }
    what->json |= real.what.json;
    what->ansi |= real.what.ansi;
    what->whitespace |= real.what.whitespace;
    what->folded += real.what.folded;
    what->repeated += real.what.repeated;
    what->capped += real.what.capped;
    *saved += unit.before - unit.after - marker;
    return copy;
}

//  --------------------------------------------------------------------------------------------
//  Age: which file names the latest turns are working on

//  File names (basenames with a known extension) a text mentions, as a list of "\n"-ended
//  names in a buffer. The extension list keeps out attribute chains ("self.storage",
//  "np.zeros") that would otherwise read as files.
static bool s_known_extension (const char *ext, size_t len)
{
    static const char *const known[] = {
        "py",   "pyi",   "pyx",    "js",    "jsx",  "mjs",   "cjs",     "ts",   "tsx",   "c",
        "h",    "cc",    "cpp",    "cxx",   "hpp",  "hh",    "go",      "rs",   "java",  "kt",
        "kts",  "scala", "rb",     "php",   "cs",   "swift", "m",       "mm",   "sh",    "bash",
        "pl",   "lua",   "r",      "jl",    "ex",   "exs",   "erl",     "hs",   "ml",    "clj",
        "dart", "vue",   "svelte", "sql",   "html", "htm",   "css",     "scss", "less",  "json",
        "yaml", "yml",   "toml",   "ini",   "cfg",  "conf",  "xml",     "md",   "rst",   "txt",
        "csv",  "lock",  "gradle", "cmake", "mk",   "proto", "graphql", "tf",   "ipynb", "log"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen (known[i]) == len && strncasecmp (known[i], ext, len) == 0)
            return true;
    return false;
}

static void s_file_names (const char *text, size_t len, s_buf_t *names)
{
    for (size_t i = 0; i < len;) {
        size_t start = i;
        while (i < len && (isalnum ((unsigned char)text[i]) || strchr ("_.-/~", text[i])))
            i++;
        if (i == start) {
            i++;
            continue;
        }
        size_t end = i;
        while (end > start && text[end - 1] == '.')
            end--;
        const char *slash = memrchr (text + start, '/', end - start);
        size_t base = slash ? (size_t)(slash + 1 - text) : start;
        const char *dot = end > base ? memrchr (text + base, '.', end - base) : NULL;
        if (!dot || dot == text + base ||
            !s_known_extension (dot + 1, (size_t)(text + end - dot - 1)))
            continue;
        s_put (names, text + base, end - base);
        s_putc (names, '\n');
    }
}

//  Whether any name of the list mine is in the list of theirs ("\n"-ended names each).
static bool s_names_meet (const s_buf_t *mine, const s_buf_t *theirs)
{
    for (size_t i = 0; i < mine->len;) {
        const char *nl = memchr (mine->data + i, '\n', mine->len - i);
        size_t len = (size_t)(nl - (mine->data + i)) + 1; // with its "\n"
        for (const char *at = theirs->data; at && at < theirs->data + theirs->len;) {
            at = memmem (at, (size_t)(theirs->data + theirs->len - at), mine->data + i, len);
            if (at && (at == theirs->data || at[-1] == '\n'))
                return true;
            if (at)
                at++;
        }
        i += len;
    }
    return false;
}

//  The names an assistant turn's action mentions: its tool calls' arguments (tool_use input),
//  or, for an agent that writes its command in text, the fenced block its text ends with.
static void s_action_names (ar_shape_t shape, const json_t *message, s_buf_t *names)
{
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get (message, "tool_calls"), i, item)
    {
        json_t *args = json_object_get (json_object_get (item, "function"), "arguments");
        if (json_is_string (args))
            s_file_names (json_string_value (args), json_string_length (args), names);
    }
    json_t *content = json_object_get (message, "content");
    const char *last = NULL;
    size_t last_len = 0;
    if (json_is_string (content)) {
        last = json_string_value (content);
        last_len = json_string_length (content);
    }
    json_array_foreach (content, i, item)
    {
        const char *type = json_string_value (json_object_get (item, "type"));
        if (type && strcmp (type, "tool_use") == 0) {
            char *input =
                json_dumps (json_object_get (item, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
            if (input)
                s_file_names (input, strlen (input), names);
            free (input);
        } else if (type && strcmp (type, "text") == 0 &&
                   json_is_string (json_object_get (item, "text"))) {
            last = json_string_value (json_object_get (item, "text"));
            last_len = json_string_length (json_object_get (item, "text"));
        }
    }
    long fence = last ? ar_chat_view_action_fence (last, last_len) : -1;
    if (fence >= 0)
        s_file_names (last + fence, last_len - (size_t)fence, names);
}

//  The text of the call a result answers: the tool call (OpenAI, by tool_call_id) or tool_use
//  block (Anthropic, by tool_use_id) of the assistant turn before it, or, for an observation in
//  a plain user turn, that assistant turn's text.
static void s_call_names (ar_shape_t shape, json_t *messages, size_t index, const json_t *holder,
                          s_buf_t *names)
{
    size_t a = index;
    while (a > 0 &&
           ar_chat_view_role (shape, json_array_get (messages, a - 1)) != AR_CHAT_ROLE_ASSISTANT)
        a--;
    if (a == 0)
        return;
    json_t *assistant = json_array_get (messages, a - 1);
    const char *id = json_string_value (
        json_object_get (holder, shape == AR_SHAPE_OPENAI_CHAT ? "tool_call_id" : "tool_use_id"));
    if (!id) {
        s_action_names (shape, assistant, names);
        return;
    }
    size_t i;
    json_t *call;
    json_array_foreach (
        json_object_get (assistant, shape == AR_SHAPE_OPENAI_CHAT ? "tool_calls" : "content"), i,
        call)
    {
        const char *call_id = json_string_value (json_object_get (call, "id"));
        if (!call_id || strcmp (call_id, id) != 0)
            continue;
        if (shape == AR_SHAPE_OPENAI_CHAT) {
            json_t *fn = json_object_get (call, "function");
            json_t *args = json_object_get (fn, "arguments");
            if (json_is_string (args))
                s_file_names (json_string_value (args), json_string_length (args), names);
        } else {
            char *input =
                json_dumps (json_object_get (call, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
            if (input)
                s_file_names (input, strlen (input), names);
            free (input);
        }
    }
}

//  One tool result of the conversation, in order, and whether it is capped as old.
typedef struct {
    const json_t *holder; // the tool message, observation, or tool_result block
    bool aged;
} s_age_t;

//  Whether messages[i] is an observation in a plain user turn with string content (one the
//  strategy rewrites like a tool result).
static bool s_observed_text (ar_shape_t shape, json_t *messages, size_t i)
{
    json_t *message = json_array_get (messages, i);
    return ar_chat_view_role (shape, message) == AR_CHAT_ROLE_USER &&
           !ar_chat_view_has_results (shape, message) &&
           ar_chat_view_is_observation (shape, messages, i);
}

//  Whether text holds the len bytes of word (any case) as a word of its own.
static bool s_has_word (const char *text, size_t text_len, const char *word, size_t len)
{
    for (size_t i = 0; len && i + len <= text_len; i++) {
        if (strncasecmp (text + i, word, len) != 0)
            continue;
        bool left = i == 0 || !(isalnum ((unsigned char)text[i - 1]) || text[i - 1] == '_');
        bool right = i + len == text_len ||
                     !(isalnum ((unsigned char)text[i + len]) || text[i + len] == '_');
        if (left && right)
            return true;
    }
    return false;
}

//  Un-age the latest read of each file the task names (see the header): list holds count
//  results in order. Out of memory, fewer reads are kept readable (the cap is not a fault).
static void s_keep_task_reads (ar_shape_t shape, json_t *messages, s_age_t *list, size_t count)
{
    size_t first = 0, n = json_array_size (messages);
    while (first < n && !ar_chat_view_is_user_text (shape, json_array_get (messages, first)))
        first++;
    if (first == n)
        return;
    ar_buf_t task = {NULL, 0, 0};
    ar_chat_view_message_text (shape, json_array_get (messages, first), false,
                               ar_syntax_collect_text, &task);
    ar_syntax_result_t *results = NULL;
    size_t total = ar_syntax_results (shape, messages, &results);
    for (size_t r = total; r-- > 0;) {
        const ar_syntax_result_t *res = &results[r];
        if (!res->reader || !res->path[0])
            continue;
        bool later = false; // a later read of the same file: this one is not the latest
        for (size_t q = r + 1; q < total && !later; q++)
            later = results[q].reader && ar_syntax_same_path (results[q].path, res->path);
        const char *base = ar_syntax_basename (res->path);
        const char *dot = strrchr (base, '.');
        size_t stem = dot ? (size_t)(dot - base) : strlen (base);
        if (later || stem < 4 || !s_has_word (task.data, task.len, base, stem))
            continue;
        for (size_t k = 0; k < count; k++)
            if (list[k].holder == res->owner)
                list[k].aged = false;
    }
    free (results);
    free (task.data);
}

//  Every result in order with its age decision: behind the latest old_turns assistant turns
//  it is old (later[i] counts the assistant turns after message i), and an old result is
//  capped (aged) unless its call names a file the latest turns' actions name: the file the
//  agent works on (most likely about to edit) stays readable, every read of it (an older one
//  may show the part the edit replaces: seen on a SWE-bench trajectory that re-read two lines
//  of a function it had read whole before). Returns how many; *failed when memory runs out.
static size_t s_plan_age (ar_shape_t shape, json_t *messages, const size_t *later, size_t old_turns,
                          const s_buf_t *recent, s_age_t **out, bool *failed)
{
    size_t n = json_array_size (messages), count = 0, max = 0;
    s_age_t *list = NULL;
    size_t *owner = NULL; // message index of each result
    for (size_t i = 0; i < n && !*failed; i++) {
        json_t *message = json_array_get (messages, i);
        const json_t *holders[64];
        size_t k = 0;
        bool observed = s_observed_text (shape, messages, i);
        if (shape == AR_SHAPE_OPENAI_CHAT ||
            (observed && json_is_string (json_object_get (message, "content")))) {
            if (ar_chat_view_role (shape, message) == AR_CHAT_ROLE_TOOL || observed)
                holders[k++] = message;
        } else if (ar_chat_view_role (shape, message) == AR_CHAT_ROLE_USER) {
            size_t b;
            json_t *block;
            json_array_foreach (json_object_get (message, "content"), b, block)
            {
                const char *type = json_string_value (json_object_get (block, "type"));
                if (k < 64 && type && strcmp (type, "tool_result") == 0)
                    holders[k++] = block;
            }
        }
        for (size_t h = 0; h < k; h++) {
            if (count == max) {
                max = max ? max * 2 : 32;
                s_age_t *grown = realloc (list, max * sizeof *list);
                size_t *owners = realloc (owner, max * sizeof *owner);
                if (grown)
                    list = grown;
                if (owners)
                    owner = owners;
                if (!grown || !owners) {
                    *failed = true;
                    break;
                }
            }
            owner[count] = i;
            list[count++] = (s_age_t){holders[h], old_turns && later[i] >= old_turns};
        }
    }
    for (size_t r = 0; r < count && !*failed && recent->len; r++) {
        if (!list[r].aged)
            continue;
        s_buf_t names = {0};
        s_call_names (shape, messages, owner[r], list[r].holder, &names);
        *failed |= names.oom;
        if (names.len && s_names_meet (&names, recent))
            list[r].aged = false;
        free (names.data);
    }
    free (owner);
    if (!*failed && count)
        s_keep_task_reads (shape, messages, list, count);
    if (*failed) {
        free (list);
        return 0;
    }
    *out = list;
    return count;
}

//  The age decision for holder (results are visited in the order s_plan_age listed them).
static bool s_aged (const s_age_t *list, size_t count, size_t *cursor, const json_t *holder)
{
    for (size_t k = 0; k < count; k++) {
        size_t at = (*cursor + k) % count;
        if (list[at].holder == holder) {
            *cursor = at + 1;
            return list[at].aged;
        }
    }
    return false;
}

static int s_int_param (const json_t *params, const char *name, int64_t fallback, int64_t min,
                        int64_t *out)
{
    json_t *value = json_object_get (params, name);
    if (!value) {
        *out = fallback;
        return 0;
    }
    if (!json_is_integer (value) || json_integer_value (value) < min)
        return -1;
    *out = json_integer_value (value);
    return 0;
}

static int s_bool_param (const json_t *params, const char *name, bool *out)
{
    json_t *value = json_object_get (params, name);
    if (!value) {
        *out = true;
        return 0;
    }
    if (!json_is_boolean (value))
        return -1;
    *out = json_is_true (value);
    return 0;
}

static int s_read_params (const json_t *params, s_params_t *p)
{
    if (params && !json_is_object (params))
        return -1;
    p->tail_lines = S_TAIL_LINES;
    if (s_int_param (params, "minTokens", 256, 0, &p->min_tokens) ||
        s_int_param (params, "maxBlobTokens", 4000, 64, &p->max_blob_tokens) ||
        s_int_param (params, "minRepeat", 4, 3, &p->min_repeat) ||
        s_int_param (params, "oldTurns", 2, 0, &p->old_turns) ||
        s_int_param (params, "oldMaxBlobTokens", 160, 64, &p->old_max_blob_tokens) ||
        s_bool_param (params, "minifyJson", &p->minify_json) ||
        s_bool_param (params, "stripAnsi", &p->strip_ansi) ||
        s_bool_param (params, "foldRepeats", &p->fold_repeats) ||
        s_bool_param (params, "collapseWhitespace", &p->collapse_ws) ||
        s_bool_param (params, "dropRepeatedLines", &p->drop_repeated))
        return -1;
    p->later = NULL;
    return 0;
}

static int s_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    s_params_t p;
    if (!json_is_object (ctx->request) || !ctx->tokenizer || s_read_params (params, &p) != 0)
        return -1;
    ar_shape_t shape = ctx->shape;
    json_t *messages = ar_chat_view_messages (ctx->request);
    size_t n = json_array_size (messages);
    if (n < 2)
        return 0;
    if (!ctx->stash) {
        snprintf (result->note, sizeof result->note, "no stash: nothing compressed");
        return 0;
    }
    if (ar_chat_view_validate (shape, ctx->request, NULL, 0) != 0) {
        snprintf (result->note, sizeof result->note, "left alone: request not valid");
        return 0;
    }
    //  The latest turn stays verbatim: the last message, the last user turn, and the results
    //  after the last assistant message (parallel calls answered together).
    //  And the last message a person wrote (Anthropic: it may hold tool results too).
    size_t pinned_user = n, last_assistant = n, last_text = n;
    for (size_t i = n; i-- > 0;) {
        ar_chat_role_t role = ar_chat_view_role (shape, json_array_get (messages, i));
        if (role == AR_CHAT_ROLE_USER && pinned_user == n)
            pinned_user = i;
        if (last_text == n && ar_chat_view_is_user_text (shape, json_array_get (messages, i)))
            last_text = i;
        if (role == AR_CHAT_ROLE_ASSISTANT && last_assistant == n)
            last_assistant = i;
    }
    //  Age: results behind the latest oldTurns assistant turns are old, and capped at
    //  oldMaxBlobTokens unless their call names a file those latest turns name too.
    size_t *later = calloc (n + 1, sizeof (size_t)); // assistant turns after each message
    s_buf_t recent = {0};
    if (!later)
        return -1;
    for (size_t i = n; i-- > 0;) {
        json_t *message = json_array_get (messages, i);
        later[i] = later[i + 1];
        if (ar_chat_view_role (shape, message) != AR_CHAT_ROLE_ASSISTANT)
            continue;
        if (p.old_turns && later[i] < (size_t)p.old_turns)
            s_action_names (shape, message, &recent);
        later[i]++;
    }
    s_params_t aged = p;
    aged.max_blob_tokens =
        p.old_max_blob_tokens < p.max_blob_tokens ? p.old_max_blob_tokens : p.max_blob_tokens;
    aged.tail_lines = 0; // the tail budget alone: an old test run's summary is history
    bool failed = recent.oom;
    s_age_t *ages = NULL;
    size_t nages = failed ? 0
                          : s_plan_age (shape, messages, later, (size_t)p.old_turns, &recent, &ages,
                                        &failed),
           cursor = 0;
    free (later);
    free (recent.data);
    //  Newest first, so each result knows the lines the turns after it show as they will be
    //  sent (dropRepeatedLines); the new array is built in order at the end.
    json_t *out = failed ? NULL : json_array ();
    json_t **replaced = out ? calloc (n, sizeof (json_t *)) : NULL;
    ar_line_set_t *shown = p.drop_repeated && replaced ? ar_line_set_new () : NULL;
    if (!replaced || (p.drop_repeated && !shown)) {
        json_decref (out);
        free (replaced);
        free (ages);
        return -1;
    }
    p.later = aged.later = shown;
    s_what_t what = {0};
    int64_t saved = 0;
    size_t results = 0, compressed = 0, capped_old = 0;
    for (size_t i = n; i-- > 0 && !failed;) {
        json_t *message = json_array_get (messages, i);
        json_t *replacement = NULL;
        bool pinned = i == n - 1 || i == pinned_user || i == last_text ||
                      (last_assistant < n && i > last_assistant);
        //  Agents that carry command output in plain user turns (mini-swe-agent, SWE-agent)
        //  read it back just like tool results.
        bool observed_text = s_observed_text (shape, messages, i);
        if (shape == AR_SHAPE_OPENAI_CHAT ||
            (observed_text && json_is_string (json_object_get (message, "content")))) {
            if (ar_chat_view_role (shape, message) == AR_CHAT_ROLE_TOOL || observed_text) {
                results++;
                const s_params_t *use = s_aged (ages, nages, &cursor, message) ? &aged : &p;
                if (!pinned)
                    replacement = s_result (ctx, use, message, &what, &saved, &failed);
                compressed += replacement != NULL;
                capped_old += replacement && use == &aged;
            }
        } else if (ar_chat_view_role (shape, message) == AR_CHAT_ROLE_USER &&
                   json_is_array (json_object_get (message, "content"))) {
            json_t *blocks = json_object_get (message, "content");
            json_t *new_blocks = NULL;
            size_t b;
            json_t *block;
            json_array_foreach (blocks, b, block)
            {
                const char *type = json_string_value (json_object_get (block, "type"));
                if (!type || strcmp (type, "tool_result") != 0)
                    continue;
                results++;
                const s_params_t *use = s_aged (ages, nages, &cursor, block) ? &aged : &p;
                json_t *new_block =
                    pinned || failed ? NULL : s_result (ctx, use, block, &what, &saved, &failed);
                if (!new_block)
                    continue;
                compressed++;
                capped_old += use == &aged;
                if (!new_blocks)
                    new_blocks = json_copy (blocks);
                if (!new_blocks || json_array_set_new (new_blocks, b, new_block) != 0)
                    failed = true;
            }
            if (new_blocks && !failed) {
                replacement = json_copy (message);
                if (!replacement ||
                    json_object_set_new (replacement, "content", json_incref (new_blocks)) != 0)
                    failed = true;
            }
            json_decref (new_blocks);
        }
        replaced[i] = replacement;
        if (shown && !failed &&
            ar_chat_view_add_shown_lines (shape, replacement ? replacement : message, shown))
            failed = true;
        if (ar_mono_now () > ctx->deadline)
            failed = true; // give up before the request is touched
    }
    free (ages);
    ar_line_set_destroy (&shown);
    for (size_t i = 0; i < n; i++) {
        json_t *message = replaced[i] ? replaced[i] : json_incref (json_array_get (messages, i));
        if (failed)
            json_decref (message);
        else if (json_array_append_new (out, message) != 0)
            failed = true;
    }
    free (replaced);
    if (failed) {
        json_decref (out);
        return -1;
    }
    int rc = 0;
    if (compressed) {
        if (json_object_set (ctx->request, "messages", out) != 0)
            rc = -1;
        else {
            result->applied = true;
            //  The note is for logs: a long one is cut, never an error.
            int len = snprintf (
                result->note, sizeof result->note,
                "compressed %zu of %zu tool results, %zu old (~%lld tokens saved%s%s%s%s%s%s)",
                compressed, results, capped_old, (long long)saved, what.json ? ", json" : "",
                what.ansi ? ", ansi" : "", what.whitespace ? ", whitespace" : "",
                what.folded ? ", folded" : "", what.capped ? ", capped" : "",
                what.repeated ? ", repeats" : "");
            (void)len;
        }
    }
    json_decref (out);
    return rc;
}

const ar_strategy_t ar_strategy_context_compression = {"context_compression", s_apply};

//  --------------------------------------------------------------------------------------------

//  The fixtures live in tests/fixtures/context_compression of the checkout this file is in.
#define S_FIXTURES "/../../tests/fixtures/context_compression"

typedef struct {
    char *content[256];
    size_t len[256];
    size_t count;
} s_test_stash_t;

static int s_test_put (void *self, const char *content, size_t len, char id_out[33])
{
    s_test_stash_t *stash = (s_test_stash_t *)self;
    if (stash->count == 256)
        return -1;
    stash->content[stash->count] = malloc (len + 1);
    memcpy (stash->content[stash->count], content, len);
    stash->content[stash->count][len] = 0;
    stash->len[stash->count] = len;
    char hex[48];
    snprintf (hex, sizeof hex, "%032zx", ++stash->count);
    memcpy (id_out, hex, 33);
    return 0;
}

static void s_test_stash_free (s_test_stash_t *stash)
{
    for (size_t i = 0; i < stash->count; i++)
        free (stash->content[i]);
    stash->count = 0;
}

//  user, assistant call, tool result (output), assistant text, user: the output is not the
//  latest turn. Anthropic: the result is a tool_result block with string content.
static json_t *s_test_request (ar_shape_t shape, const char *output)
{
    json_t *messages;
    if (shape == AR_SHAPE_OPENAI_CHAT)
        messages = json_pack (
            "[{s:s, s:s}, {s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}, {s:s, s:s, s:s}, {s:s, s:s},"
            " {s:s, s:s}]",
            "role", "user", "content", "fix the bug", "role", "assistant", "content", "tool_calls",
            "id", "call_1", "type", "function", "function", "name", "bash", "arguments",
            "{\"cmd\":\"run   it\"}", "role", "tool", "tool_call_id", "call_1", "content", output,
            "role", "assistant", "content", "Looked at it.", "role", "user", "content", "go on");
    else
        messages = json_pack (
            "[{s:s, s:s}, {s:s, s:[{s:s, s:s, s:s, s:{s:s}}]}, {s:s, s:[{s:s, s:s, s:s}]},"
            " {s:s, s:s}, {s:s, s:s}]",
            "role", "user", "content", "fix the bug", "role", "assistant", "content", "type",
            "tool_use", "id", "toolu_1", "name", "bash", "input", "cmd", "run   it", "role", "user",
            "content", "type", "tool_result", "tool_use_id", "toolu_1", "content", output, "role",
            "assistant", "content", "Looked at it.", "role", "user", "content", "go on");
    assert (messages);
    return json_pack ("{s:s, s:i, s:o}", "model", "m", "max_tokens", 100, "messages", messages);
}

static json_t *s_test_holder (ar_shape_t shape, json_t *request)
{
    json_t *message = json_array_get (json_object_get (request, "messages"), 2);
    return shape == AR_SHAPE_OPENAI_CHAT ? message
                                         : json_array_get (json_object_get (message, "content"), 0);
}

typedef struct {
    json_t *request;
    const char *text; // the compressed tool output (NULL when not applied)
    ar_strategy_result_t result;
    int rc;
    int64_t before, after;
} s_run_t;

//  Run the strategy over output as a tool result; check the invariants every run must have.
static s_run_t s_test_run (ar_tokenizer_t *tok, s_test_stash_t *stash, ar_shape_t shape,
                           const char *output, const char *params_json)
{
    s_run_t run = {.request = s_test_request (shape, output)};
    json_t *original = json_deep_copy (run.request);
    json_t *params = json_loads (params_json ? params_json : "{}", 0, NULL);
    assert (params);
    ar_stash_sink_t sink = {stash, s_test_put};
    ar_strategy_ctx_t ctx = {.shape = shape,
                             .request = run.request,
                             .tokenizer = tok,
                             .stash = &sink,
                             .deadline = INT64_MAX};
    size_t stashed = stash->count;
    run.before = ar_chat_view_count_tokens (shape, run.request, tok);
    run.rc = s_apply (&ctx, params, &run.result);
    run.after = ar_chat_view_count_tokens (shape, run.request, tok);
    assert (run.rc == 0);
    assert (ar_chat_view_validate (shape, run.request, NULL, 0) == 0);
    json_t *messages = json_object_get (run.request, "messages");
    json_t *omessages = json_object_get (original, "messages");
    //  Nothing but the tool result changes.
    for (size_t i = 0; i < json_array_size (omessages); i++)
        if (i != 2)
            assert (json_equal (json_array_get (messages, i), json_array_get (omessages, i)));
    if (!run.result.applied) {
        assert (json_equal (run.request, original));
        assert (stash->count == stashed);
    } else {
        //  Fewer tokens; one stash entry, the original result byte for byte; every marker
        //  names it.
        assert (run.after < run.before);
        assert (stash->count == stashed + 1);
        json_t *back = json_loads (stash->content[stashed], 0, NULL);
        assert (json_equal (back, s_test_holder (shape, original)));
        json_decref (back);
        run.text =
            json_string_value (json_object_get (s_test_holder (shape, run.request), "content"));
        assert (run.text);
        char id[64];
        snprintf (id, sizeof id, "retrieve with id %032zx]", stashed + 1);
        size_t markers = 0;
        for (const char *at = strstr (run.text, "[anyray: "); at;
             at = strstr (at + 1, "[anyray: ")) {
            const char *end = strchr (at, ']');
            assert (end && (size_t)(end + 1 - at) > strlen (id));
            assert (strncmp (end + 1 - strlen (id), id, strlen (id)) == 0);
            markers++;
        }
        assert (markers > 0);
    }
    json_decref (params);
    json_decref (original);
    return run;
}

static char *s_test_fixture (const char *name)
{
    char path[1024];
    const char *slash = strrchr (__FILE__, '/');
    snprintf (path, sizeof path, "%.*s%s/%s", slash ? (int)(slash - __FILE__) : 1,
              slash ? __FILE__ : ".", S_FIXTURES, name);
    return ar_buf_read_file (path, NULL);
}

//  Every line of original that contains keep is in text, as the lossless steps leave it (ANSI
//  and \r redraws gone, trailing whitespace trimmed; inner spaces as they were or squeezed).
static void s_test_lines_kept (const char *original, const char *text, const char *keep,
                               bool cleaned)
{
    s_params_t p = {0, 0, 4, cleaned, cleaned, cleaned, cleaned, 0, 64, S_TAIL_LINES, false, NULL};
    for (const char *line = original; *line;) {
        const char *nl = strchr (line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen (line);
        if (memmem (line, len, keep, strlen (keep))) {
            s_buf_t plain = {0}, want = {0};
            s_what_t what = {0};
            if (cleaned)
                s_strip_escapes (line, len, &plain);
            else
                s_put (&plain, line, len);
            s_clean_line (&p, plain.data ? plain.data : "", plain.len, &want, &what);
            if (want.len && !strstr (text, want.data)) {
                fprintf (stderr, "line lost: %s\n", want.data);
                assert (false);
            }
            free (plain.data);
            free (want.data);
        }
        line += len + (nl ? 1 : 0);
    }
}

//  An agent session as a request: the task, then one turn per action with its output (style 0:
//  commands in text, outputs in user turns, as mini-swe-agent; style 1: a "bash" tool call and
//  its result).
static json_t *s_test_session (ar_shape_t shape, int style, const char *const *actions,
                               char *const *outputs, size_t turns)
{
    json_t *messages = json_array ();
    json_array_append_new (
        messages, json_pack ("{s:s, s:s}", "role", "user", "content",
                             "<pr_description>LogisticRegressionCV(multi_class='multinomial')"
                             " scores with OvR</pr_description>"));
    for (size_t t = 0; t < turns; t++) {
        char id[32], text[512];
        snprintf (id, sizeof id, "call_%zu", t);
        if (style == 0) {
            snprintf (text, sizeof text, "THOUGHT: Next step.\n\n```bash\n%s\n```", actions[t]);
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:s}", "role", "assistant", "content", text));
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:s}", "role", "user", "content", outputs[t]));
            continue;
        }
        json_t *args = json_pack ("{s:s}", "command", actions[t]);
        if (shape == AR_SHAPE_OPENAI_CHAT) {
            char *arguments = json_dumps (args, JSON_COMPACT);
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role",
                                              "assistant", "content", "tool_calls", "id", id,
                                              "type", "function", "function", "name", "bash",
                                              "arguments", arguments));
            free (arguments);
            json_array_append_new (messages, json_pack ("{s:s, s:s, s:s}", "role", "tool",
                                                        "tool_call_id", id, "content", outputs[t]));
        } else {
            json_array_append_new (messages, json_pack ("{s:s, s:[{s:s, s:s, s:s, s:O}]}", "role",
                                                        "assistant", "content", "type", "tool_use",
                                                        "id", id, "name", "bash", "input", args));
            json_array_append_new (messages, json_pack ("{s:s, s:[{s:s, s:s, s:s}]}", "role",
                                                        "user", "content", "type", "tool_result",
                                                        "tool_use_id", id, "content", outputs[t]));
        }
        json_decref (args);
    }
    return json_pack ("{s:s, s:i, s:o}", "model", "m", "max_tokens", 100, "messages", messages);
}

//  The text of turn t's output in request.
static const char *s_test_output (ar_shape_t shape, int style, json_t *request, size_t t)
{
    json_t *message = json_array_get (json_object_get (request, "messages"), 2 + 2 * t);
    json_t *content = json_object_get (message, "content");
    if (style == 1 && shape == AR_SHAPE_ANTHROPIC_MESSAGES)
        content = json_object_get (json_array_get (content, 0), "content");
    return json_string_value (content);
}

//  Age: outputs behind the latest oldTurns turns are capped at oldMaxBlobTokens, unless their
//  command names a file a latest action names (the file being worked on), or they are the
//  latest read of a file the task names.
static void s_test_age (ar_tokenizer_t *tok, s_test_stash_t *stash, bool verbose)
{
    char *outputs[6] = {s_test_fixture ("nl_python_source.txt"),
                        s_test_fixture ("pytest_failure.txt"),
                        s_test_fixture ("ls_R.txt"),
                        s_test_fixture ("grep_n.txt"),
                        strdup ("<returncode>0</returncode>\n"
                                "<output>\n</output>"),
                        strdup ("<returncode>0</returncode>\n<output>\nok\n</output>")};
    const char *actions[6] = {"nl -ba sklearn/linear_model/logistic.py | sed -n '774,962p'",
                              "python -m pytest testing/test_collection.py -x",
                              "ls -R sklearn.egg-info",
                              "grep -n annotation pylint/checkers/variables.py",
                              "cat setup.cfg",
                              "python reproduce.py"};
    for (size_t i = 0; i < 6; i++)
        assert (outputs[i]);
    for (int s = 0; s < 2; s++)
        for (int style = 0; style < 2; style++) {
            ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
            ar_stash_sink_t sink = {stash, s_test_put};
            for (int focus = 0; focus < 4; focus++) {
                //  focus 1: the latest turns edit the file turn 0 read; 2: no age cap at all;
                //  3: the task names that file ("logistic"), whose latest read is turn 0.
                actions[4] = focus == 1
                                 ? "sed -i 's/ovr/multi_class/' sklearn/linear_model/logistic.py"
                                 : "cat setup.cfg";
                json_t *request = s_test_session (shape, style, actions, outputs, 6);
                if (focus == 3)
                    json_object_set_new (
                        json_array_get (json_object_get (request, "messages"), 0), "content",
                        json_string ("<pr_description>Logistic: _log_reg_scoring_path scores "
                                     "with OvR</pr_description>"));
                json_t *original = json_deep_copy (request);
                ar_strategy_ctx_t ctx = {.shape = shape,
                                         .request = request,
                                         .tokenizer = tok,
                                         .stash = &sink,
                                         .deadline = INT64_MAX};
                //  The mechanism at explicit values (the defaults are tuned on the corpus).
                json_t *params = json_loads (
                    focus == 2 ? "{\"oldTurns\":0}" : "{\"oldTurns\":3,\"oldMaxBlobTokens\":500}",
                    0, NULL);
                ar_strategy_result_t result = {.applied = false};
                assert (s_apply (&ctx, params, &result) == 0 && (result.applied || focus == 2));
                assert (ar_chat_view_validate (shape, request, NULL, 0) == 0);
                //  Old: turns 0-2 (three turns after each). Turn 0 read logistic.py.
                for (size_t t = 0; t < 6; t++) {
                    const char *text = s_test_output (shape, style, request, t);
                    const char *was = s_test_output (shape, style, original, t);
                    bool capped = strstr (text, " lines (") && strstr (text, "tokens) elided;");
                    int64_t tokens = s_tokens (tok, text, strlen (text));
                    if (t >= 3) {
                        assert (!capped); // recent: under the normal cap (4000)
                        continue;
                    }
                    if (focus == 2 || ((focus == 1 || focus == 3) && t == 0)) {
                        assert (!capped && tokens * 10 > s_tokens (tok, was, strlen (was)) * 9);
                        continue;
                    }
                    //  Capped near 500 tokens: head, tail, error lines kept, one stash entry.
                    if (t != 1 || strlen (was) > 3000)
                        assert (capped && tokens < 500 + 500 / 4 + 64);
                    if (t == 0)
                        assert (strstr (text, "   774\tdef _log_reg_scoring_path(X, y, train, "));
                    if (t == 1) {
                        assert (strstr (text, "FAILED testing/test_collection.py::test_collect_"
                                              "sub_with_symlinks[True]"));
                        assert (strstr (text, "2 failed in 0.24s"));
                    }
                }
                if (verbose && style == 0 && s == 0)
                    printf ("\n  age (%s): %s",
                            focus == 0   ? "none in focus"
                            : focus == 1 ? "turn 0 in focus"
                            : focus == 3 ? "turn 0 named by the task"
                                         : "off",
                            result.note);
                json_decref (params);
                json_decref (original);
                json_decref (request);
            }
        }
    actions[4] = "cat setup.cfg";
    for (size_t i = 0; i < 6; i++)
        free (outputs[i]);
}

//  dropRepeatedLines: a file region read again later (nl -ba, same numbers) leaves the older
//  read; an edit that moved the lines (other numbers) does not; wrappers and the lines only
//  the older read has stay; the stash gives back the exact original.
static void s_test_repeats (ar_tokenizer_t *tok, s_test_stash_t *stash, bool verbose)
{
    char *source = s_test_fixture ("nl_python_source.txt");
    assert (source);
    //  The narrower re-read: the fixture's lines 40-119 (numbers 812-891) in their own tags.
    const char *from = source, *to;
    for (int line = 0; line < 40; line++)
        from = strchr (from, '\n') + 1;
    to = from;
    for (int line = 0; line < 80; line++)
        to = strchr (to, '\n') + 1;
    char *narrow = malloc ((size_t)(to - from) + 64);
    assert (narrow);
    sprintf (narrow, "<returncode>0</returncode>\n<output>\n%.*s</output>", (int)(to - from), from);
    //  The same lines after an edit above them: every number one higher.
    char *moved = strdup (narrow);
    for (char *at = moved; (at = strstr (at, "\t")) != NULL; at++)
        for (char *digit = at - 1; digit >= moved && *digit >= '0' && *digit <= '9'; digit--) {
            if (*digit < '9') {
                (*digit)++;
                break;
            }
            *digit = '0';
        }
    const char *actions[4] = {"nl -ba sklearn/linear_model/logistic.py | sed -n '774,962p'",
                              "python reproduce.py", "nl -ba sklearn/linear_model/logistic.py",
                              "python reproduce.py"};
    for (int s = 0; s < 2; s++)
        for (int style = 0; style < 2; style++)
            for (int variant = 0; variant < 3; variant++) {
                ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
                char *outputs[4] = {source,
                                    "<returncode>1</returncode>\n<output>\nValueError: "
                                    "bad\n</output>",
                                    variant == 1 ? moved : narrow,
                                    "<returncode>0</returncode>\n<output>\nok\n</output>"};
                json_t *request = s_test_session (shape, style, actions, outputs, 4);
                json_t *original = json_deep_copy (request);
                ar_stash_sink_t sink = {stash, s_test_put};
                ar_strategy_ctx_t ctx = {.shape = shape,
                                         .request = request,
                                         .tokenizer = tok,
                                         .stash = &sink,
                                         .deadline = INT64_MAX};
                json_t *params =
                    json_loads (variant == 2 ? "{\"oldTurns\":0,\"dropRepeatedLines\":false}"
                                             : "{\"oldTurns\":0}",
                                0, NULL);
                ar_strategy_result_t result = {.applied = false};
                assert (s_apply (&ctx, params, &result) == 0);
                assert (ar_chat_view_validate (shape, request, NULL, 0) == 0);
                const char *first = s_test_output (shape, style, request, 0);
                //  The re-read itself is as it was.
                assert (strcmp (s_test_output (shape, style, request, 2), outputs[2]) == 0);
                if (variant != 0) {
                    //  Moved lines, or the step off: nothing of the first read is dropped.
                    assert (!strstr (first, "shown again later"));
                    assert (strstr (first, "   811\t        that can be used, look at"));
                } else {
                    assert (result.applied && strstr (result.note, "repeats"));
                    const char *marker = strstr (first, "[anyray: 80 lines shown again later; "
                                                        "retrieve with id ");
                    assert (marker);
                    assert (strncmp (first, "<returncode>0</returncode>\n<output>\n   774\t", 42) ==
                            0);
                    assert (!strstr (first, "   812\t") && !strstr (first, "   891\t"));
                    assert (strstr (first, "   811\t") && strstr (first, "   892\t"));
                    //  The marker's id gives back the whole original result.
                    char id[33];
                    memcpy (id, strstr (marker, "with id ") + 8, 32);
                    id[32] = 0;
                    unsigned long slot = strtoul (id, NULL, 16) - 1; // ids count from 1
                    assert (slot < stash->count);
                    json_t *back = json_loadb (stash->content[slot], stash->len[slot], 0, NULL);
                    json_t *holder = json_array_get (json_object_get (original, "messages"), 2);
                    if (style == 1 && shape == AR_SHAPE_ANTHROPIC_MESSAGES)
                        holder = json_array_get (json_object_get (holder, "content"), 0);
                    assert (json_equal (back, holder));
                    json_decref (back);
                    if (verbose && s == 0 && style == 0)
                        printf ("\n  repeats: %zu -> %zu bytes (%s)", strlen (source),
                                strlen (first), result.note);
                }
                json_decref (params);
                json_decref (original);
                json_decref (request);
            }
    free (moved);
    free (narrow);
    free (source);
}

void strategy_context_compression_test (bool verbose)
{
    ar_tokenizer_t *tok = ar_tokenizer_new ();
    assert (tok);
    s_test_stash_t stash = {.count = 0};
    s_buf_t buf = {0};
    s_what_t what = {0};

    //  Minify: byte-exact but for the whitespace between tokens; not JSON: not minified.
    const char *pretty = "{ \"a\" : [1.0, 1e5, \"x  y\\\" }\"],\n  \"b\": {}\n}\n";
    assert (s_minify (pretty, strlen (pretty), &buf));
    assert (strcmp (buf.data, "{\"a\":[1.0,1e5,\"x  y\\\" }\"],\"b\":{}}") == 0);
    buf.len = 0;
    assert (!s_minify ("{\"a\": 1} trailing", 17, &buf));
    assert (!s_minify ("{\"a\": 1, \"a\": 2}", 16, &buf)); // duplicate keys
    assert (!s_minify ("\"just a string\"", 15, &buf));
    free (buf.data);

    //  ANSI and carriage returns.
    buf = (s_buf_t){0};
    s_params_t p = {256, 4000, 4, true, true, true, true, 0, 64, S_TAIL_LINES, false, NULL};
    const char *ansi = "\x1b[1m\x1b[92m   Compiling\x1b[0m x v0.1\n"
                       "\x1b]8;;http://x\x07link\x1b]8;;\x07 ok\n"
                       "dl  10%\rdl  50%\rdl 100%\r\n";
    s_clean (&p, ansi, strlen (ansi), &buf, &what);
    assert (strcmp (buf.data, "   Compiling x v0.1\nlink ok\ndl 100%\n") == 0);
    assert (what.ansi && what.whitespace);
    free (buf.data);

    //  Whitespace: indentation kept (leading, after line numbers, grep prefixes, diff marks),
    //  code lines untouched, blank runs squeezed, inner space runs of plain lines squeezed.
    buf = (s_buf_t){0};
    const char *ws = "NAME      READY   STATUS    \n\n\n\n"
                     "   774\t        if   x:\n"
                     "src/a.py:12:        return  y\n"
                     "+        keep   this\n"
                     "    x    = 1\n"
                     "\tcol1\t\tcol2  end  \r\n";
    s_clean (&p, ws, strlen (ws), &buf, &what);
    assert (strcmp (buf.data, "NAME READY STATUS\n\n"
                              "   774\t        if x:\n"
                              "src/a.py:12:        return y\n"
                              "+        keep this\n"
                              "    x    = 1\n"
                              "\tcol1\t\tcol2 end\n") == 0);
    free (buf.data);

    //  Protected lines.
    assert (s_protected ("  File \"/x/y.py\", line 12, in f", 31));
    assert (s_protected ("src/main.rs:12:20", 17));
    assert (s_protected ("E   AssertionError: boom", 24));
    assert (!s_protected ("12:30:45 tick 4", 15));
    assert (!s_protected ("Downloading foo", 15));
    //  Masks: numbers and hex ids.
    assert (s_mask ("tick 12 at 0xdeadbeef1", 22) == s_mask ("tick 9 at 0xcafe12345", 21));
    assert (s_mask ("tick 12 at 3f2a9c1", 18) == s_mask ("tick 1 at 77aa001", 17));
    assert (s_mask ("tick a", 6) != s_mask ("tock a", 6));

    for (int s = 0; s < 2; s++) {
        ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        //  Folding: 200 similar log lines, a protected error among them, a summary at the end.
        s_buf_t log = {0};
        for (int i = 0; i < 200; i++) {
            s_putf (&log, "2024-05-0%d 12:%02d:%02d INFO worker-%d processed batch %d in %d ms\n",
                    1 + i % 9, i % 60, (i * 7) % 60, i % 4, i, 10 + i % 13);
            if (i == 120)
                s_putf (&log, "2024-05-01 12:00:00 ERROR worker-2 lost connection\n");
        }
        for (int i = 0; i < 25; i++)
            s_putf (&log, "summary line %d: all good\n", i);
        s_run_t run = s_test_run (tok, &stash, shape, log.data, NULL);
        assert (run.result.applied);
        assert (strstr (run.text, "similar lines folded; retrieve with id"));
        assert (strstr (run.text, "ERROR worker-2 lost connection"));
        assert (strstr (run.text, "processed batch 0 in 10 ms"));
        assert (strstr (run.text, "processed batch 199 in"));
        for (int i = 0; i < 25; i++) { // the last 20 lines and more: kept
            char line[64];
            snprintf (line, sizeof line, "summary line %d: all good\n", i);
            assert (strstr (run.text, line));
        }
        assert (run.after * 3 < run.before);
        if (verbose)
            printf ("\n  fold: %s", run.result.note);
        json_decref (run.request);
        //  foldRepeats off: only whitespace; nothing to gain, so nothing changes.
        run = s_test_run (tok, &stash, shape, log.data,
                          "{\"foldRepeats\":false,\"maxBlobTokens\":100000}");
        assert (!run.result.applied);
        json_decref (run.request);
        free (log.data);

        //  Below minTokens: untouched; the same with a low minTokens: compacted.
        const char *small = "{\n    \"a\": 1,\n    \"b\": [\n        1,\n        2\n    ]\n}";
        run = s_test_run (tok, &stash, shape, small, NULL);
        assert (!run.result.applied);
        json_decref (run.request);

        //  Bad params: -1, untouched.
        json_t *request = s_test_request (shape, "x");
        json_t *params = json_pack ("{s:s}", "minifyJson", "yes");
        ar_stash_sink_t sink = {&stash, s_test_put};
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = &sink,
                                 .deadline = INT64_MAX};
        ar_strategy_result_t result = {.applied = false};
        assert (s_apply (&ctx, params, &result) == -1);
        json_decref (params);
        //  No stash: nothing changes.
        json_decref (request);
        char *cargo = s_test_fixture ("cargo_build_ansi.txt");
        assert (cargo);
        request = s_test_request (shape, cargo);
        json_t *copy = json_deep_copy (request);
        ctx.request = request;
        ctx.stash = NULL;
        params = json_object ();
        assert (s_apply (&ctx, params, &result) == 0 && !result.applied);
        assert (json_equal (request, copy));
        //  The latest turn is never touched: the result as the last message.
        json_t *messages = json_object_get (request, "messages");
        json_array_remove (messages, 4);
        json_array_remove (messages, 3);
        json_decref (copy);
        copy = json_deep_copy (request);
        ctx.stash = &sink;
        assert (s_apply (&ctx, params, &result) == 0 && !result.applied);
        assert (json_equal (request, copy));
        json_decref (copy);
        json_decref (params);
        json_decref (request);
        free (cargo);
    }

    //  The real fixtures, both shapes: what each must keep, and how much it must save.
    static const struct {
        const char *file;
        const char *params;
        double max_ratio;    // after/before tokens of the request at most
        const char *keep[6]; // lines containing these survive verbatim
    } fixtures[] = {
        {"cargo_build_ansi.txt",
         NULL,
         0.75,
         {"error[E0425]", "src/main.rs:12:20", "warning: `ccdemo`", NULL}},
        {"kubectl_list.json", NULL, 0.6, {NULL}},
        {"kubectl_list.json", "{\"maxBlobTokens\":1000}", 0.3, {NULL}},
        {"git_log_stat.txt", "{\"maxBlobTokens\":2000}", 0.6, {NULL}},
        {"pytest_failure.txt",
         NULL,
         1.0,
         {"FAILED", "Error", "test_collection.py:", "passed", NULL}},
        {"pip_install.txt", NULL, 1.0, {"Successfully installed Sphinx", "WARNING", NULL}},
        {"nl_python_source.txt", NULL, 1.0, {"\t", NULL}},
        {"grep_n.txt", NULL, 1.0, {":", NULL}},
        {"django_runtests.txt", NULL, 1.0, {"Error", "FAIL", "Ran ", NULL}},
        {"ls_R.txt", NULL, 1.0, {NULL}},
    };
    for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
        char *output = s_test_fixture (fixtures[f].file);
        if (!output) {
            fprintf (stderr, "strategy_context_compression: fixture %s missing\n",
                     fixtures[f].file);
            assert (false);
        }
        for (int s = 0; s < 2; s++) {
            ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
            s_run_t run = s_test_run (tok, &stash, shape, output, fixtures[f].params);
            double ratio = (double)run.after / (double)run.before;
            if (verbose && s == 0)
                printf ("\n  %-22s %-24s %6lld -> %6lld tokens (%.2f) %s", fixtures[f].file,
                        fixtures[f].params ? fixtures[f].params : "", (long long)run.before,
                        (long long)run.after, ratio, run.result.note);
            assert (ratio <= fixtures[f].max_ratio);
            const char *text = run.text ? run.text : output;
            for (size_t k = 0; fixtures[f].keep[k]; k++)
                s_test_lines_kept (output, text, fixtures[f].keep[k], run.text != NULL);
            //  Source code lines keep their indentation exactly.
            if (run.text && strstr (fixtures[f].file, "nl_python"))
                s_test_lines_kept (output, text, "    ", true);
            json_decref (run.request);
        }
        free (output);
    }
    //  A progress bar redrawn with \r keeps its final state only.
    char *curl = s_test_fixture ("curl_progress_cr.txt");
    char *cargo = s_test_fixture ("cargo_build_ansi.txt");
    assert (curl && cargo && strstr (curl, "28.3%"));
    s_buf_t both = {0};
    s_put (&both, curl, strlen (curl));
    s_putc (&both, '\n');
    s_put (&both, cargo, strlen (cargo));
    s_run_t run = s_test_run (tok, &stash, AR_SHAPE_OPENAI_CHAT, both.data, NULL);
    assert (run.result.applied && strstr (run.text, "# 100.0%\n") && !strstr (run.text, "28.3%"));
    assert (!strchr (run.text, '\r') && !strchr (run.text, 0x1b));
    json_decref (run.request);
    free (both.data);
    free (curl);
    free (cargo);
    if (verbose)
        printf ("\n");
    s_test_age (tok, &stash, verbose);
    s_test_repeats (tok, &stash, verbose);
    if (verbose)
        printf ("\n");
    s_test_stash_free (&stash);
    ar_tokenizer_destroy (&tok);
}
