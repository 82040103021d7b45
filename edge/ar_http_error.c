/*  ar_http_error: error bodies in the caller's shape (OpenAI or Anthropic). */
#include "ar_http_error.h"
#include "ar_error_type.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>

size_t ar_json_escape (char *dst, size_t size, const char *src)
{
    size_t used = 0;
    if (size == 0)
        return 0;
    for (const unsigned char *c = (const unsigned char *)src; *c; c++) {
        char esc[8];
        size_t n;
        if (*c == '"' || *c == '\\')
            esc[0] = '\\', esc[1] = (char)*c, n = 2;
        else if (*c == '\n')
            memcpy (esc, "\\n", 2), n = 2;
        else if (*c < 0x20)
            n = (size_t)snprintf (esc, sizeof esc, "\\u%04x", *c);
        else
            esc[0] = (char)*c, n = 1;
        if (used + n >= size)
            break;
        memcpy (dst + used, esc, n);
        used += n;
    }
    //  Never end inside a UTF-8 sequence: back off to its lead byte.
    while (used > 0 && ((unsigned char)dst[used - 1] & 0xc0) == 0x80)
        used--;
    if (used > 0 && ((unsigned char)dst[used - 1] & 0xc0) == 0xc0)
        used--;
    dst[used] = 0;
    return used;
}

int ar_http_error_openai (char *buf, size_t size, int status, const char *message, const char *type,
                          const char *param, const char *code)
{
    char msg[1024], par[128], cod[128];
    ar_json_escape (msg, sizeof msg, message ? message : "");
    if (param)
        ar_json_escape (par, sizeof par, param);
    if (code)
        ar_json_escape (cod, sizeof cod, code);
    int len = snprintf (buf, size,
                        "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":%s%s%s,"
                        "\"code\":%s%s%s}}",
                        msg, type ? type : ar_error_type_openai (status), param ? "\"" : "",
                        param ? par : "null", param ? "\"" : "", code ? "\"" : "",
                        code ? cod : "null", code ? "\"" : "");
    if (len < 0)
        return 0;
    return (size_t)len < size ? len : (int)size - 1;
}

int ar_http_error_anthropic (char *buf, size_t size, int status, const char *message)
{
    char msg[1024];
    ar_json_escape (msg, sizeof msg, message ? message : "");
    int len =
        snprintf (buf, size, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}",
                  ar_error_type_anthropic (status), msg);
    if (len < 0)
        return 0;
    return (size_t)len < size ? len : (int)size - 1;
}

int ar_http_error (ar_error_shape_t shape, char *buf, size_t size, int status, const char *message,
                   const char *param, const char *code)
{
    if (shape == AR_ERROR_ANTHROPIC)
        return ar_http_error_anthropic (buf, size, status, message);
    return ar_http_error_openai (buf, size, status, message, NULL, param, code);
}

void ar_http_error_test (bool verbose)
{
    char buf[1600];
    int len = ar_http_error_openai (buf, sizeof buf, 400, "bad \"json\"\n", NULL, "model", NULL);
    assert (len == (int)strlen (buf));
    assert (strcmp (buf, "{\"error\":{\"message\":\"bad \\\"json\\\"\\n\",\"type\":"
                         "\"invalid_request_error\",\"param\":\"model\",\"code\":null}}") == 0);
    ar_http_error_openai (buf, sizeof buf, 503, "no worker", NULL, NULL, "no_worker");
    assert (strstr (buf, "\"type\":\"server_error\"") && strstr (buf, "\"code\":\"no_worker\""));
    ar_http_error_openai (buf, sizeof buf, 401, "x", NULL, NULL, NULL);
    assert (strstr (buf, "authentication_error"));
    ar_http_error (AR_ERROR_ANTHROPIC, buf, sizeof buf, 429, "slow \"down\"", "p", "c");
    assert (strcmp (buf, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                         "\"message\":\"slow \\\"down\\\"\"}}") == 0);
    ar_http_error (AR_ERROR_ANTHROPIC, buf, sizeof buf, 404, "x", NULL, NULL);
    assert (strstr (buf, "not_found_error"));
    ar_http_error (AR_ERROR_ANTHROPIC, buf, sizeof buf, 503, "x", NULL, NULL);
    assert (strstr (buf, "overloaded_error"));
    ar_http_error (AR_ERROR_OPENAI, buf, sizeof buf, 404, "x", NULL, "unknown_url");
    assert (strstr (buf, "\"code\":\"unknown_url\""));
    //  Truncation keeps UTF-8 whole.
    char small[6];
    ar_json_escape (small, sizeof small, "ab\xc3\xa9\xc3\xa9");
    assert (strcmp (small, "ab\xc3\xa9") == 0);
    ar_json_escape (small, sizeof small, "a\x01");
    assert (strcmp (small, "a") == 0); // the \u0001 escape does not fit: dropped whole
    (void)verbose;
}
