/*  ar_error_type: the error type an HTTP status implies (see ar_error_type.h). */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "ar_error_type.h"

const char *ar_error_type_openai (int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 402:
        return "insufficient_quota";
    case 403:
        return "permission_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 400 && status < 500 ? "invalid_request_error" : "server_error";
    }
}

const char *ar_error_type_anthropic (int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 408:
    case 504:
        return "timeout_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

void ar_error_type_test (bool verbose)
{
    assert (strcmp (ar_error_type_openai (401), "authentication_error") == 0);
    assert (strcmp (ar_error_type_openai (404), "invalid_request_error") == 0);
    assert (strcmp (ar_error_type_openai (429), "rate_limit_error") == 0);
    assert (strcmp (ar_error_type_openai (503), "server_error") == 0);
    assert (strcmp (ar_error_type_anthropic (404), "not_found_error") == 0);
    assert (strcmp (ar_error_type_anthropic (413), "request_too_large") == 0);
    assert (strcmp (ar_error_type_anthropic (502), "api_error") == 0);
    assert (strcmp (ar_error_type_anthropic (503), "overloaded_error") == 0);
    assert (strcmp (ar_error_type_anthropic (529), "overloaded_error") == 0);
    assert (strcmp (ar_error_type_anthropic (504), "timeout_error") == 0);
    assert (strcmp (ar_error_type_anthropic (422), "invalid_request_error") == 0);
    if (verbose)
        printf (" * ar_error_type: OK\n");
}
