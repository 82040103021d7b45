/*  ar_http_error: errors in the caller's own shape. The OpenAI shape for now:
        {"error":{"message":"...","type":"...","param":null|"...","code":null|"..."}}
    The Anthropic shape joins it when /v1/messages lands.
*/
#ifndef AR_HTTP_ERROR_H
#define AR_HTTP_ERROR_H

#include <stdbool.h>
#include <stddef.h>

//  Write the OpenAI error body into buf (message is JSON-escaped; param/code may be NULL).
//  type NULL picks one from the status. Returns the length (truncated safely if too long).
int ar_http_error_openai (char *buf, size_t size, int status, const char *message, const char *type,
                          const char *param, const char *code);

//  JSON-escape src into dst (NUL-terminated, truncated at a character boundary). Returns the
//  length written.
size_t ar_json_escape (char *dst, size_t size, const char *src);

void ar_http_error_test (bool verbose);

#endif
