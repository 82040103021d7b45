/*  ar_json_scan: a strict, allocation-free JSON validator that reports shallow values.

    Why hand-written: the edge must refuse malformed JSON and invalid UTF-8 on every request
    before it spends anything on it, and bodies reach 100 KB and more. jansson (the DOM library
    we use for small documents) parses ~75 MB/s here, 1.4 ms for 100 KB, which alone would cap
    the gateway near 700 req/s on two cores; Debian ships no fast C JSON parser (yyjson is not
    in bookworm, simdjson is C++). A validating scan that builds nothing runs at memory-ish
    speed. It follows RFC 8259 strictly: UTF-8 checked (no overlongs, no surrogates, nothing
    above U+10FFFF), escapes checked (lone surrogate \u escapes refused), numbers by the
    grammar, depth capped.

    The callback sees every value at depth <= report_depth (the root is depth 0) with its
    member key (raw, still escaped, without quotes) when its parent is an object.
*/
#ifndef AR_JSON_SCAN_H
#define AR_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    AR_JSON_OBJECT,
    AR_JSON_ARRAY,
    AR_JSON_STRING,
    AR_JSON_NUMBER,
    AR_JSON_TRUE,
    AR_JSON_FALSE,
    AR_JSON_NULL
} ar_json_type_t;

typedef struct {
    int depth;
    ar_json_type_t type;
    const char *key; // NULL unless the parent is an object
    size_t key_len;
    const char *value; // the value's bytes (strings include their quotes)
    size_t value_len;
} ar_json_item_t;

//  Return non-zero from the callback to stop the scan (ar_json_scan then returns 1).
typedef int (*ar_json_visit_fn) (const ar_json_item_t *item, void *arg);

//  Validate data as one JSON text. Returns 0 if valid (and every callback returned 0), 1 if a
//  callback stopped it, -1 if invalid: *error_at (if not NULL) gets the byte offset and
//  *error a short static reason.
int ar_json_scan (const char *data, size_t len, int report_depth, ar_json_visit_fn visit, void *arg,
                  size_t *error_at, const char **error);

//  Decode a JSON string token (with quotes) into out as UTF-8. Returns the length, or -1 if it
//  does not fit or is not a string token. out is NUL-terminated.
int ar_json_string (const char *token, size_t len, char *out, size_t size);

void ar_json_scan_test (bool verbose);

#endif
