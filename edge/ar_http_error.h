/*  ar_http_error: errors in the caller's own shape.
        OpenAI:    {"error":{"message":"...","type":"...","param":null|"...","code":null|"..."}}
        Anthropic: {"type":"error","error":{"type":"...","message":"..."}}
*/
#ifndef AR_HTTP_ERROR_H
#define AR_HTTP_ERROR_H

#include <stdbool.h>
#include <stddef.h>

//  Write the OpenAI error body into buf (message is JSON-escaped; param/code may be NULL).
//  type NULL picks one from the status. Returns the length (truncated safely if too long).
int ar_http_error_openai (char *buf, size_t size, int status, const char *message, const char *type,
                          const char *param, const char *code);

typedef enum { AR_ERROR_OPENAI, AR_ERROR_ANTHROPIC } ar_error_shape_t;

//  The Anthropic error body; the type follows the status as Anthropic documents it.
int ar_http_error_anthropic (char *buf, size_t size, int status, const char *message);

//  The error in the given shape (param and code exist only in OpenAI's).
int ar_http_error (ar_error_shape_t shape, char *buf, size_t size, int status, const char *message,
                   const char *param, const char *code);

//  JSON-escape src into dst (NUL-terminated, truncated at a character boundary). Returns the
//  length written.
size_t ar_json_escape (char *dst, size_t size, const char *src);

void ar_http_error_test (bool verbose);

#endif
