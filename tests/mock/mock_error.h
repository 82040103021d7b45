/*  =========================================================================
    mock_error - OpenAI-shaped error answers

    Every failure the mock reports looks like the real API's:
        {"error":{"message":..., "type":..., "param":..., "code":...}}
    =========================================================================
*/
#ifndef MOCK_ERROR_H_INCLUDED
#define MOCK_ERROR_H_INCLUDED

#include "mock_buf.h"

typedef struct {
    int status;       //  HTTP status
    const char *type; //  e.g. "invalid_request_error"
    char param[64];   //  "" = JSON null
    const char *code; //  NULL = JSON null
    char message[512];
} mock_error_t;

//  Fill in an error; the message is printf-style and truncated if long
void mock_error_set (mock_error_t *self, int status, const char *type, const char *param,
                     const char *code, const char *format, ...)
    __attribute__ ((format (printf, 6, 7)));

//  The error the real API gives for a status (used by status=CODE);
//  model may be NULL
void mock_error_for_status (mock_error_t *self, int status, const char *model);

//  Append the JSON body
void mock_error_json (const mock_error_t *self, mock_buf_t *out);

#endif
