/*  ar_error_type: the error type an HTTP status implies, in each SDK's vocabulary.

    The edge writes its own errors and the provider translates upstream ones; both must name
    a status the same way, so the two maps live here once. The SDKs pick their exception
    class from the status; the type is for people and logs.
*/
#ifndef AR_ERROR_TYPE_H
#define AR_ERROR_TYPE_H

#include <stdbool.h>

//  OpenAI's: authentication_error, insufficient_quota, permission_error, rate_limit_error,
//  invalid_request_error (other 4xx), server_error (5xx).
const char *ar_error_type_openai (int status);
//  Anthropic's documented types (its SDK's ErrorType, and request_too_large for 413). 503 is
//  not an Anthropic status; it means the same as 529 (busy, retry later).
const char *ar_error_type_anthropic (int status);

void ar_error_type_test (bool verbose);

#endif
