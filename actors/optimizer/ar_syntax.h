/*  ar_syntax: source-code syntax for the code strategies (code_skeleton, code_graph).

    Detects the language of a source text from a path (extension) or from its content
    (shebang, a few telltale lines), parses it with tree-sitter (Debian's runtime, grammars
    pinned in third_party/grammars, ABI 14) on a per-thread parser bounded by a deadline, and
    reports what the strategies need: the function/method definitions with their name and
    body byte ranges (found by one tree-sitter query per language), and the identifiers the
    text uses (for the symbol graph). A text whose ERROR/MISSING nodes cover more than a small
    fraction of it is refused: a strategy then leaves it alone.
*/
#ifndef AR_SYNTAX_H
#define AR_SYNTAX_H

#include "ar_chat_view.h"
#include "ar_clock.h"
#include "ar_buf.h"
#include "ar_strategy.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    AR_LANG_NONE,
    AR_LANG_PYTHON,
    AR_LANG_JAVASCRIPT,
    AR_LANG_TYPESCRIPT,
    AR_LANG_TSX,
    AR_LANG_GO,
    AR_LANG_RUST,
    AR_LANG_JAVA,
    AR_LANG_C,
    AR_LANG_CPP,
    AR_LANG_COUNT
} ar_lang_t;

//  One function or method definition: byte offsets into the parsed text.
typedef struct {
    uint32_t start, end;           // the whole definition
    uint32_t name_start, name_end; // its name (empty when it has none we can read)
    uint32_t body_start, body_end; // its body (block, statement block, compound statement)
    uint32_t doc_end;              // Python: end of the docstring's first line, else 0
} ar_syntax_def_t;

//  An identifier use (any leaf whose node type ends in "identifier").
typedef struct {
    uint32_t start, end;
} ar_syntax_ident_t;

typedef struct {
    ar_lang_t lang;
    ar_syntax_def_t *defs; // in text order (outer before inner)
    size_t def_count;
    ar_syntax_ident_t *idents; // in text order; only with want_idents
    size_t ident_count;
    double error_fraction; // bytes under ERROR/MISSING nodes / text length
} ar_syntax_outline_t;

//  "python", "go", ... ("" for AR_LANG_NONE).
const char *ar_syntax_lang_name (ar_lang_t lang);
//  From a file name's extension (path need not be NUL-terminated). AR_LANG_NONE if unknown.
ar_lang_t ar_syntax_lang_from_path (const char *path, size_t len);
//  From the text itself: shebang, then telltale line starts. AR_LANG_NONE if unsure.
ar_lang_t ar_syntax_lang_from_content (const char *text, size_t len);

//  Compile every language's query and this thread's parser now, so the first request that
//  meets a language does not pay for it (tens of ms in all): the optimizer process calls it at
//  start. Safe to call again. Returns how many languages are usable.
size_t ar_syntax_warm (void);

//  Parse text and fill outline. Returns 0, or -1 on failure: unknown language, parse timeout
//  (deadline, monotonic ms; INT64_MAX for none), or errors over max_error_fraction of the text.
int ar_syntax_outline (ar_lang_t lang, const char *text, size_t len, bool want_idents,
                       double max_error_fraction, ar_mono_ms deadline,
                       ar_syntax_outline_t *outline);
void ar_syntax_outline_fini (ar_syntax_outline_t *outline);

//  --------------------------------------------------------------------------------------------
//  Source files inside tool outputs: what both code strategies read.

//  One line of a source text as a tool output shows it: where it is in the output, the length
//  of its line-number prefix ("   12\t" from cat -n / nl, "12:" from grep -n), and where its
//  text (prefix stripped) starts in the stripped copy that is parsed.
typedef struct {
    uint32_t start, end; // in the output, without the '\n'
    uint32_t prefix;     // line-number prefix bytes (kept in whatever is shown)
    uint32_t text;       // offset of the stripped line in ar_syntax_source_t.text
} ar_syntax_line_t;

typedef struct {
    char *text; // the stripped source (what is parsed), NUL-terminated
    size_t len;
    ar_syntax_line_t *lines;
    size_t line_count;
    size_t start, end; // the range of the output it was read from
} ar_syntax_source_t;

//  The code regions of a tool output: inside <output>, <output_head>, <output_tail> when the
//  output has them (mini-swe-agent observations), else the whole text. Returns how many (at
//  most max) as [starts[i], ends[i]) byte ranges.
size_t ar_syntax_segments (const char *text, size_t len, size_t *starts, size_t *ends, size_t max);
//  Read text[start, end) into source: lines, line-number prefixes detected and stripped.
int ar_syntax_source_init (ar_syntax_source_t *source, const char *text, size_t start, size_t end);
void ar_syntax_source_fini (ar_syntax_source_t *source);
//  The line holding byte offset (in source->text).
size_t ar_syntax_source_line (const ar_syntax_source_t *source, uint32_t offset);

//  The source file a shell command prints (cat, nl, sed, head, tail, less, more, bat): the
//  first argument with a known source extension of a reader in the pipeline. With any_use,
//  the first such argument of any command (e.g. the file `sed -i` edits).
bool ar_syntax_command_path (const char *command, size_t len, bool any_use, const char **path,
                             size_t *path_len);

//  An ar_chat_text_fn: append the text and a newline to the ar_buf_t in arg.
void ar_syntax_collect_text (const char *text, size_t len, void *arg);

//  One text piece of a tool result: holder's member key is a JSON string; a strategy sets
//  replacement (a new string) to swap in, or leaves it NULL.
typedef struct {
    json_t *holder;
    const char *key;
    json_t *replacement;
} ar_syntax_piece_t;

//  The text pieces of a result holder's "content" (the string itself, or the text parts or
//  blocks of an array), at most max of them. Returns how many.
size_t ar_syntax_pieces (json_t *owner, ar_syntax_piece_t *pieces, size_t max);
//  Append piece to a growable array. Returns 0, or -1 out of memory.
int ar_syntax_push_piece (ar_syntax_piece_t **all, size_t *count, size_t *max,
                          const ar_syntax_piece_t *piece);

//  A tool result whose pieces have outlined replacements: stash owner's original "content"
//  (compact JSON), write one marker "[anyray: N function bodies elided; retrieve with id <id>]"
//  into the first replaced piece at its marks[] offset, and move every replaced piece onto the
//  all array (which then owns the replacements); *after grows by the marker's tokens. Returns
//  0, or -1 with every replacement of pieces released.
int ar_syntax_stash_elided (ar_strategy_ctx_t *ctx, json_t *owner, ar_syntax_piece_t *pieces,
                            size_t npieces, const size_t *marks, size_t elided, int64_t *after,
                            ar_syntax_piece_t **all, size_t *nall, size_t *maxall);

//  Whether the body of outline->defs[def] stays (true) or is elided.
typedef bool (ar_syntax_keep_fn) (const ar_syntax_outline_t *outline, size_t def, void *arg);
//  Append text[source's range] to out with each body keep() refuses (outermost only; at least
//  min_body lines) replaced by one line "<indent>..." (Python keeps the docstring's first
//  line; brace languages keep the lines with the braces). Kept lines are copied byte-exact,
//  line-number prefixes included. Returns the bodies elided.
size_t ar_syntax_elide (const char *text, const ar_syntax_source_t *source,
                        const ar_syntax_outline_t *outline, size_t min_body,
                        ar_syntax_keep_fn *keep, void *arg, ar_buf_t *out);

//  One tool result in a conversation: an OpenAI tool message, an Anthropic tool_result block,
//  or a mini-swe-agent observation (a user message "<returncode>...<output>..." answering the
//  bash block of the assistant turn before it). Its text is owner's "content" (a string, or
//  text parts/blocks).
typedef struct {
    size_t message; // index in messages
    json_t *owner;  // the message, or the tool_result block
    char path[256]; // the file the producing call names ("" when none or unknown)
    bool reader;    // the call reads that file (path/file_path argument, cat/nl/sed/head...)
} ar_syntax_result_t;

//  Every tool result of the conversation in order; *out is malloc'd (free it). Returns count.
size_t ar_syntax_results (ar_shape_t shape, json_t *messages, ar_syntax_result_t **out);
//  The source path a tool call names: "path"/"file_path"/"filename"/... arguments, or the file
//  a shell command ("command"/"cmd") reads (or, with any_use, touches at all).
bool ar_syntax_call_path (const json_t *arguments, bool any_use, char *path, size_t size);
//  Same path, allowing a leading "./" or a directory prefix on either side.
bool ar_syntax_same_path (const char *a, const char *b);
//  The file name of a path: what follows its last '/' (the whole path without one).
const char *ar_syntax_basename (const char *path);

//  What both code strategies may rewrite in a request: its tool results, less the protected
//  ones (the latest keep_turns assistant turns and what follows, the last user turn, the last
//  user-written text, the last message) and every read of a file those protected turns touch
//  (the file being edited: the text an edit replaces must stay verbatim).
typedef struct {
    json_t *messages;
    size_t n;
    size_t protect_from; // messages from here on are protected
    size_t last_turn, last_text;
    ar_syntax_result_t *results;
    size_t count;
    char (*hot)[256]; // the paths the protected turns read or edit
    size_t nhot;
} ar_syntax_scope_t;

//  1: scope filled (ar_syntax_scope_fini it); 0: the request is left alone (fewer than three
//  messages; no stash: result->note = no_stash_note; not valid: "left alone: <why>"); -1: out
//  of memory.
int ar_syntax_scope_init (ar_strategy_ctx_t *ctx, size_t keep_turns, const char *no_stash_note,
                          ar_strategy_result_t *result, ar_syntax_scope_t *scope);
//  Whether res may be rewritten: not protected and not a read of a hot file.
bool ar_syntax_scope_open (const ar_syntax_scope_t *scope, const ar_syntax_result_t *res);
void ar_syntax_scope_fini (ar_syntax_scope_t *scope);

void ar_syntax_test (bool verbose);

#endif
