/*  =========================================================================
    mock_error - OpenAI-shaped error answers
    =========================================================================
*/
#include "mock_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void mock_error_set (mock_error_t *self, int status, const char *type, const char *param,
                     const char *code, const char *format, ...)
{
    self->status = status;
    self->type = type;
    snprintf (self->param, sizeof self->param, "%s", param ? param : "");
    self->code = code;
    va_list args;
    va_start (args, format);
    vsnprintf (self->message, sizeof self->message, format, args);
    va_end (args);
}

//  --------------------------------------------------------------------------
//  The error the real API gives for a status

void mock_error_for_status (mock_error_t *self, int status, const char *model)
{
    //  Keep a long model name from crowding out the message
    char name[64];
    snprintf (name, sizeof name, "%s", model ? model : "gpt-4o-mini");
    const char *server = "server_error";
    const char *invalid = "invalid_request_error";
    switch (status) {
    case 400:
        mock_error_set (self, status, invalid, NULL, NULL, "Mock bad request.");
        break;
    case 401:
        mock_error_set (self, status, invalid, NULL, "invalid_api_key",
                        "Incorrect API key provided: sk-...mock. You can find your API key at "
                        "https://platform.openai.com/account/api-keys.");
        break;
    case 403:
        mock_error_set (self, status, "permission_error", NULL,
                        "unsupported_country_region_territory",
                        "Country, region, or territory not supported");
        break;
    case 404:
        mock_error_set (self, status, invalid, NULL, "model_not_found",
                        "The model `%s` does not exist or you do not have access to it.", name);
        break;
    case 408:
        mock_error_set (self, status, server, NULL, NULL, "Request timed out.");
        break;
    case 409:
        mock_error_set (self, status, invalid, NULL, NULL,
                        "The request conflicted with another request.");
        break;
    case 413:
        mock_error_set (self, status, invalid, NULL, NULL, "Request too large.");
        break;
    case 422:
        mock_error_set (self, status, invalid, NULL, NULL, "Unprocessable entity.");
        break;
    case 429:
        mock_error_set (self, status, "requests", NULL, "rate_limit_exceeded",
                        "Rate limit reached for %s in organization org-mock on requests per min "
                        "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                        name);
        break;
    case 500:
        mock_error_set (self, status, server, NULL, NULL,
                        "The server had an error while processing your request. Sorry about that!");
        break;
    case 502:
        mock_error_set (self, status, server, NULL, NULL, "Bad gateway.");
        break;
    case 503:
        mock_error_set (self, status, server, NULL, NULL,
                        "The engine is currently overloaded, please try again later.");
        break;
    case 504:
        mock_error_set (self, status, server, NULL, NULL, "Gateway timeout.");
        break;
    default:
        mock_error_set (self, status, status >= 500 ? server : invalid, NULL, NULL,
                        "Mock error with status %d.", status);
        break;
    }
}

static void s_string_or_null (mock_buf_t *out, const char *str)
{
    if (str)
        mock_buf_json_string (out, str, strlen (str));
    else
        mock_buf_puts (out, "null");
}

//  --------------------------------------------------------------------------
//  Append the JSON body

void mock_error_json (const mock_error_t *self, mock_buf_t *out)
{
    mock_buf_puts (out, "{\"error\":{\"message\":");
    mock_buf_json_string (out, self->message, strlen (self->message));
    mock_buf_puts (out, ",\"type\":");
    s_string_or_null (out, self->type);
    mock_buf_puts (out, ",\"param\":");
    s_string_or_null (out, self->param[0] ? self->param : NULL);
    mock_buf_puts (out, ",\"code\":");
    s_string_or_null (out, self->code);
    mock_buf_puts (out, "}}");
}
