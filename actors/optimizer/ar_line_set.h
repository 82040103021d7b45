/*  ar_line_set: the lines a conversation still shows, to ask "is this line there already?".

    Agents re-read what they read before (the same file region twice, a test run repeated, a
    grep narrowed) and quote in their reasoning code they saw in a tool output. A line set holds
    the lines of the texts that stay in the request, so a strategy can drop an older or a quoted
    copy of a line without losing what it says: another copy is still in front of the model.

    A line is compared trimmed of surrounding whitespace (indentation and "\r" differ between
    a command's output and a quote of it), each inner run of spaces and tabs as one space (one
    copy may have been squeezed by context_compression, another not). A line of `nl -ba` or
    `cat -n` output ("   388\t...") is added twice: as it is, and without its number, so a
    quote of the code matches it while a numbered line only matches the same number: dropping
    it never loses a line number an edit may use. Lines are kept as 64-bit hashes with their
    length: a false match needs a collision of both.
*/
#ifndef AR_LINE_SET_H
#define AR_LINE_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ar_line_set ar_line_set_t;

ar_line_set_t *ar_line_set_new (void);
void ar_line_set_destroy (ar_line_set_t **self_p);

//  Add every line of text[0, len) (trimmed; empty lines are not added). -1 when memory runs out.
int ar_line_set_add_text (ar_line_set_t *self, const char *text, size_t len);

//  Whether the line (trimmed here) is in the set. An empty line never is.
bool ar_line_set_has (const ar_line_set_t *self, const char *line, size_t len);

//  line[0, len) without surrounding whitespace: *start and the trimmed length.
size_t ar_line_set_trim (const char *line, size_t len, size_t *start);

//  How many distinct lines the set holds.
size_t ar_line_set_size (const ar_line_set_t *self);

void ar_line_set_test (bool verbose);

#endif
