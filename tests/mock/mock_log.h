/*  =========================================================================
    mock_log - the recent requests and counters tests inspect

    Tests read what the gateway really sent upstream through
    GET /__mock/requests. The log keeps the newest MOCK_LOG_SIZE requests
    (fewer if their bodies pass MOCK_LOG_BYTES) and takes ownership of each
    body, so logging costs no copy on the fast path. Thread-safe.
    =========================================================================
*/
#ifndef MOCK_LOG_H_INCLUDED
#define MOCK_LOG_H_INCLUDED

#include "mock_buf.h"

#include <stdint.h>

#define MOCK_LOG_SIZE  256
#define MOCK_LOG_BYTES (128u * 1024 * 1024) //  body bytes kept at most

typedef struct _mock_log_t mock_log_t;

mock_log_t *mock_log_new (void);
void mock_log_destroy (mock_log_t **self_p);

//  Record one request. Takes the body's memory (body is left empty);
//  authorization may be NULL when the header was absent.
void mock_log_add (mock_log_t *self, const char *method, const char *path,
                   const char *authorization, mock_buf_t *body);

//  Forget every logged request (the request counter keeps counting)
void mock_log_clear (mock_log_t *self);

//  Append the log, oldest first, as a JSON array
void mock_log_dump (mock_log_t *self, mock_buf_t *out);

//  Requests logged since start
uint64_t mock_log_count (mock_log_t *self);

#endif
