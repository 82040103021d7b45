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

#include "ar_clock.h"
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

//  Parse text and fill outline. Returns 0, or -1 on failure: unknown language, parse timeout
//  (deadline, monotonic ms; INT64_MAX for none), or errors over max_error_fraction of the text.
int ar_syntax_outline (ar_lang_t lang, const char *text, size_t len, bool want_idents,
                       double max_error_fraction, ar_mono_ms deadline,
                       ar_syntax_outline_t *outline);
void ar_syntax_outline_fini (ar_syntax_outline_t *outline);

void ar_syntax_test (bool verbose);

#endif
