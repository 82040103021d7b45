/*  =========================================================================
    mock_json - a strict, allocation-light JSON reader for request bodies

    Parsing every request into a jansson tree cost a third of the mock's
    CPU on the fast path. This reader validates the whole text as strictly
    as jansson does (grammar, UTF-8, escapes, surrogates, nesting depth) but
    only records a flat array of tokens pointing into the original text;
    strings are decoded on demand, for the few fields the mock reads.
    =========================================================================
*/
#ifndef MOCK_JSON_H_INCLUDED
#define MOCK_JSON_H_INCLUDED

#include "mock_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MOCK_JSON_NULL,
    MOCK_JSON_FALSE,
    MOCK_JSON_TRUE,
    MOCK_JSON_INTEGER,
    MOCK_JSON_REAL,
    MOCK_JSON_STRING,
    MOCK_JSON_ARRAY,
    MOCK_JSON_OBJECT
} mock_json_type_t;

typedef struct {
    uint8_t type;   //  mock_json_type_t
    bool escaped;   //  string contains backslash escapes
    uint32_t start; //  offset of the value (strings: after the quote)
    uint32_t end;   //  offset just past it (strings: at the closing quote)
    uint32_t next;  //  token index after this value and all it contains
    uint32_t count; //  arrays: elements; objects: members
} mock_json_token_t;

typedef struct {
    const char *text;
    mock_json_token_t *tokens; //  tokens[0] is the root value
    uint32_t size;
    uint32_t cap;
} mock_json_t;

//  Parse text (len bytes, need not be NUL-terminated, must stay alive).
//  False on any syntax error; the document needs mock_json_free either way.
bool mock_json_parse (mock_json_t *self, const char *text, size_t len);

void mock_json_free (mock_json_t *self);

//  Value of key in the object at index obj (the last one if repeated);
//  0 when obj is not an object or has no such key (0 is never a member).
uint32_t mock_json_get (mock_json_t *self, uint32_t obj, const char *key);

//  First element of an array or first member value of an object; then
//  mock_json_next to walk. Both return 0 at the end.
uint32_t mock_json_first (mock_json_t *self, uint32_t container);
uint32_t mock_json_next (mock_json_t *self, uint32_t container, uint32_t value);

//  Type of a token (index 0 is the root)
mock_json_type_t mock_json_type (mock_json_t *self, uint32_t index);

//  Decoded length in bytes of a string token
size_t mock_json_string_length (mock_json_t *self, uint32_t index);

//  Append a string token's decoded bytes
void mock_json_string (mock_json_t *self, uint32_t index, mock_buf_t *out);

//  True if the string token decodes to exactly str
bool mock_json_string_is (mock_json_t *self, uint32_t index, const char *str);

//  Integer token's value, saturated to the int64 range
int64_t mock_json_integer (mock_json_t *self, uint32_t index);

#endif
