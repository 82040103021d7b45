/*  ar_xlate_error: error bodies in the caller's shape, whoever raised the error.

    A caller's SDK reads errors in its own shape: OpenAI's {"error":{"message","type","param",
    "code"}} or Anthropic's {"type":"error","error":{"type","message"}}. When the upstream speaks
    another shape (Bedrock's {"message"} plus an x-amzn-ErrorType header, Gemini's
    {"error":{"code","message","status"}}), or is not JSON at all (a proxy's HTML page), the
    caller would otherwise get an error its SDK cannot read. So the upstream's message is taken
    out of whatever shape it came in and written in the caller's, with the error type the HTTP
    status (or, for Bedrock, the exception name) implies.

    The message is the upstream's own words about the request, never its raw body: a body with no
    message we can find becomes a generic one naming the HTTP status. Messages are capped at
    1000 bytes, cut on a UTF-8 boundary, and any invalid UTF-8 in them is replaced.
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ar_xlate.h"
#include "ar_error_type.h"

#define AR_XLATE_ERROR_MESSAGE_MAX 1000

//  ---------------------------------------------------------------------------
//  Messages

//  Length of the valid UTF-8 sequence at s (at most left bytes), 0 when it is not one:
//  overlong forms, surrogates and code points past U+10FFFF are not.
static size_t s_utf8_length (const unsigned char *s, size_t left)
{
    if (s[0] < 0x80)
        return 1;
    size_t length = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (length == 0 || s[0] > 0xf4 || length > left)
        return 0;
    for (size_t k = 1; k < length; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return length;
}

//  At most AR_XLATE_ERROR_MESSAGE_MAX bytes of text as a JSON string: whole UTF-8 sequences
//  only, each invalid byte (and NUL) replaced by '?', so jansson never refuses it.
static json_t *s_capped_string (const char *text, size_t len)
{
    char capped[AR_XLATE_ERROR_MESSAGE_MAX];
    size_t used = 0, at = 0;
    const unsigned char *bytes = (const unsigned char *)text;
    while (at < len) {
        size_t length = bytes[at] ? s_utf8_length (bytes + at, len - at) : 0;
        size_t copy = length ? length : 1;
        if (used + copy > sizeof capped)
            break;
        if (length)
            memcpy (capped + used, bytes + at, length);
        else
            capped[used] = '?';
        used += copy;
        at += length ? length : 1;
    }
    return json_stringn (capped, used);
}

static const char *s_reason_phrase (int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 529:
        return "Overloaded";
    default:
        return "Error";
    }
}

//  When there is no message of the upstream's to pass on: the status, never the raw body.
static json_t *s_generic_message (int status)
{
    char text[128];
    snprintf (text, sizeof text, "The upstream provider returned HTTP %d (%s)", status,
              s_reason_phrase (status));
    return json_string (text);
}

//  ---------------------------------------------------------------------------
//  Error types

//  The status a Bedrock exception stands for, where it says more than the HTTP status does
//  (ServiceQuotaExceededException comes as a 400 but is a rate limit; an unknown signing key
//  comes as a 403 but is an authentication failure). 0 when the name adds nothing.
static int s_aws_status (const char *exception)
{
    static const struct {
        const char *name;
        int status;
    } table[] = {
        {"ThrottlingException", 429},          {"ServiceQuotaExceededException", 429},
        {"TooManyRequestsException", 429},     {"ModelNotReadyException", 503},
        {"ServiceUnavailableException", 503},  {"AccessDeniedException", 403},
        {"UnrecognizedClientException", 401},  {"InvalidSignatureException", 401},
        {"ExpiredTokenException", 401},        {"MissingAuthenticationTokenException", 401},
        {"IncompleteSignatureException", 401}, {"ResourceNotFoundException", 404},
        {"ValidationException", 400},          {"ModelTimeoutException", 408},
        {"InternalServerException", 500},      {"ModelErrorException", 500},
        {"ModelStreamErrorException", 500},
    };
    for (size_t k = 0; exception && k < sizeof table / sizeof table[0]; k++)
        if (strcmp (exception, table[k].name) == 0)
            return table[k].status;
    return 0;
}

//  "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/" (the header) or
//  "com.amazon.coral.service#UnrecognizedClientException" (a body's __type): the bare name.
static void s_aws_name (char *name, size_t size, const char *value)
{
    const char *hash = strchr (value, '#');
    if (hash)
        value = hash + 1;
    size_t length = strcspn (value, ":");
    snprintf (name, size, "%.*s", (int)(length < size ? length : size - 1), value);
}

//  ---------------------------------------------------------------------------
//  Reading the upstream's error

typedef struct {
    json_t *root;          // the parsed body, or NULL
    const json_t *error;   // its "error" object, or NULL
    const json_t *message; // a non-empty string, or NULL
    char aws_name[96];     // Bedrock's exception name, "" when none
} s_upstream_t;

//  Wherever the shapes put the message: error.message (OpenAI, Anthropic, Gemini), message or
//  Message (Bedrock), or error as a bare string (some OpenAI-compatible servers).
static void s_upstream_read (s_upstream_t *self, const char *body, size_t len,
                             const char *aws_error_type)
{
    memset (self, 0, sizeof *self);
    if (aws_error_type)
        s_aws_name (self->aws_name, sizeof self->aws_name, aws_error_type);
    self->root = body && len > 0 ? json_loadb (body, len, 0, NULL) : NULL;
    //  Vertex sometimes wraps the error in a one-element array
    const json_t *top = json_is_array (self->root) ? json_array_get (self->root, 0) : self->root;
    if (!json_is_object (top))
        return;
    const json_t *error = json_object_get (top, "error");
    const json_t *candidates[] = {json_object_get (error, "message"), error,
                                  json_object_get (top, "message"),
                                  json_object_get (top, "Message")};
    for (size_t k = 0; k < sizeof candidates / sizeof candidates[0]; k++)
        if (json_is_string (candidates[k]) && json_string_length (candidates[k]) > 0) {
            self->message = candidates[k];
            break;
        }
    self->error = json_is_object (error) ? error : NULL;
    const char *aws_type = json_string_value (json_object_get (top, "__type"));
    if (!self->aws_name[0] && aws_type)
        s_aws_name (self->aws_name, sizeof self->aws_name, aws_type);
}

//  The status the error type follows: Bedrock's exception name when it says more, an
//  OpenAI quota error as billing, else the HTTP status.
static int s_upstream_kind (const s_upstream_t *self, int status)
{
    int aws = s_aws_status (self->aws_name);
    if (aws)
        return aws;
    const char *type = json_string_value (json_object_get (self->error, "type"));
    const char *code = json_string_value (json_object_get (self->error, "code"));
    if ((type && strcmp (type, "insufficient_quota") == 0) ||
        (code && strcmp (code, "insufficient_quota") == 0))
        return 402;
    return status;
}

//  A machine-readable name for an OpenAI caller's `code`: OpenAI's own where it has one,
//  else the upstream's (Bedrock exception, Gemini status, Anthropic type), else null.
static json_t *s_openai_code (const s_upstream_t *self, int kind)
{
    if (kind == 429)
        return json_string ("rate_limit_exceeded");
    if (kind == 402)
        return json_string ("insufficient_quota");
    if (self->aws_name[0])
        return json_string (self->aws_name);
    const char *name = json_string_value (json_object_get (self->error, "status"));
    if (!name)
        name = json_string_value (json_object_get (self->error, "type"));
    return name && strlen (name) < 64 ? json_string (name) : json_null ();
}

//  ---------------------------------------------------------------------------
//  Writing the caller's error

static json_t *s_openai_body (json_t *message, const char *type, json_t *param, json_t *code)
{
    return json_pack ("{s:{s:o, s:s, s:o, s:o}}", "error", "message", message, "type", type,
                      "param", param ? param : json_null (), "code", code ? code : json_null ());
}

static json_t *s_anthropic_body (json_t *message, const char *type)
{
    return json_pack ("{s:s, s:{s:s, s:o}}", "type", "error", "error", "type", type, "message",
                      message);
}

json_t *ar_xlate_error_body (ar_wire_shape_t caller, ar_wire_shape_t upstream, int status,
                             const char *body, size_t len, const char *aws_error_type)
{
    s_upstream_t source;
    s_upstream_read (&source, body, len, aws_error_type);
    json_t *message = source.message ? s_capped_string (json_string_value (source.message),
                                                        json_string_length (source.message))
                                     : s_generic_message (status);
    int kind = s_upstream_kind (&source, status);
    json_t *out;
    if (caller == AR_SHAPE_ANTHROPIC) {
        //  Same shape: the upstream's own type says it best
        const char *type = json_string_value (json_object_get (source.error, "type"));
        if (upstream != AR_SHAPE_ANTHROPIC || !type)
            type = ar_error_type_anthropic (kind);
        out = s_anthropic_body (message, type);
        const json_t *request_id = json_object_get (source.root, "request_id");
        if (upstream == AR_SHAPE_ANTHROPIC && json_is_string (request_id))
            json_object_set_new (out, "request_id", json_deep_copy (request_id));
    } else {
        //  Callers speak OpenAI or Anthropic; anything else gets OpenAI's shape
        const char *type = NULL;
        json_t *param = NULL, *code = NULL;
        if (upstream == AR_SHAPE_OPENAI && source.error) {
            //  Same shape: keep what the upstream said (OpenAI's 429s say "tokens" or
            //  "requests" as their type, and codes callers may test for)
            type = json_string_value (json_object_get (source.error, "type"));
            const json_t *up_param = json_object_get (source.error, "param");
            const json_t *up_code = json_object_get (source.error, "code");
            if (json_is_string (up_param))
                param = json_deep_copy (up_param);
            if (json_is_string (up_code) || json_is_integer (up_code))
                code = json_deep_copy (up_code);
            else if (!up_code || !json_is_null (up_code))
                code = s_openai_code (&source, kind);
        } else
            code = s_openai_code (&source, kind);
        out = s_openai_body (message, type ? type : ar_error_type_openai (kind), param, code);
    }
    json_decref (source.root);
    return out;
}

json_t *ar_xlate_error_new (ar_wire_shape_t caller, int status, const char *message,
                            const char *param, const char *code)
{
    json_t *text =
        message ? s_capped_string (message, strlen (message)) : s_generic_message (status);
    if (caller == AR_SHAPE_ANTHROPIC)
        //  Anthropic errors have no param or code: the message names the member already
        return s_anthropic_body (text, ar_error_type_anthropic (status));
    return s_openai_body (text, ar_error_type_openai (status),
                          param ? s_capped_string (param, strlen (param)) : NULL,
                          code ? s_capped_string (code, strlen (code)) : NULL);
}

//  ---------------------------------------------------------------------------
//  Self-test

//  Is the whole string valid UTF-8?
static bool s_valid_utf8 (const char *text, size_t len)
{
    for (size_t at = 0; at < len;) {
        size_t length = s_utf8_length ((const unsigned char *)text + at, len - at);
        if (!length)
            return false;
        at += length;
    }
    return true;
}

static const char *s_get (const json_t *root, const char *outer, const char *inner)
{
    return json_string_value (json_object_get (json_object_get (root, outer), inner));
}

//  Each body is what the provider sends for that status (messages as their docs and SDK tests
//  show them); expect what each caller shape should get.
typedef struct {
    ar_wire_shape_t upstream;
    int status;
    const char *body;
    const char *aws_error_type;
    const char *message;        // expected message; NULL: the generic one
    const char *openai_type;    // for an OpenAI caller
    const char *openai_code;    // NULL: JSON null
    const char *anthropic_type; // for an Anthropic caller
} s_case_t;

static const s_case_t s_cases[] = {
    {AR_SHAPE_OPENAI, 429,
     "{\"error\":{\"message\":\"Rate limit reached for gpt-4o in organization org-abc on tokens "
     "per min (TPM): Limit 30000, Used 29876, Requested 1024. Please try again in 1.8s.\","
     "\"type\":\"tokens\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}",
     NULL,
     "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit "
     "30000, Used 29876, Requested 1024. Please try again in 1.8s.",
     "tokens", "rate_limit_exceeded", "rate_limit_error"},
    {AR_SHAPE_OPENAI, 401,
     "{\"error\":{\"message\":\"Incorrect API key provided: sk-proj-****abcd. You can find your "
     "API key at https://platform.openai.com/account/api-keys.\",\"type\":"
     "\"invalid_request_error\",\"param\":null,\"code\":\"invalid_api_key\"}}",
     NULL,
     "Incorrect API key provided: sk-proj-****abcd. You can find your API key at "
     "https://platform.openai.com/account/api-keys.",
     "invalid_request_error", "invalid_api_key", "authentication_error"},
    {AR_SHAPE_OPENAI, 429,
     "{\"error\":{\"message\":\"You exceeded your current quota, please check your plan and "
     "billing details.\",\"type\":\"insufficient_quota\",\"param\":null,\"code\":"
     "\"insufficient_quota\"}}",
     NULL, "You exceeded your current quota, please check your plan and billing details.",
     "insufficient_quota", "insufficient_quota", "billing_error"},
    {AR_SHAPE_OPENAI, 503,
     "{\"error\":{\"message\":\"That model is currently overloaded with other requests.\","
     "\"type\":\"server_error\",\"param\":null,\"code\":null}}",
     NULL, "That model is currently overloaded with other requests.", "server_error", NULL,
     "overloaded_error"},
    {AR_SHAPE_ANTHROPIC, 529,
     "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"},"
     "\"request_id\":\"req_011CSHoEeqs5C35K2UUqR7Fy\"}",
     NULL, "Overloaded", "server_error", "overloaded_error", "overloaded_error"},
    {AR_SHAPE_ANTHROPIC, 400,
     "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
     "\"messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'\"}}",
     NULL, "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'",
     "invalid_request_error", "invalid_request_error", "invalid_request_error"},
    {AR_SHAPE_ANTHROPIC, 404,
     "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"model: "
     "claude-3-opus-latest\"},\"request_id\":\"req_01\"}",
     NULL, "model: claude-3-opus-latest", "invalid_request_error", "not_found_error",
     "not_found_error"},
    {AR_SHAPE_ANTHROPIC, 429,
     "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"This request "
     "would exceed your organization's rate limit of 50,000 input tokens per minute.\"}}",
     NULL,
     "This request would exceed your organization's rate limit of 50,000 input tokens per "
     "minute.",
     "rate_limit_error", "rate_limit_exceeded", "rate_limit_error"},
    {AR_SHAPE_ANTHROPIC, 401,
     "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid "
     "x-api-key\"}}",
     NULL, "invalid x-api-key", "authentication_error", "authentication_error",
     "authentication_error"},
    //  Claude on Bedrock InvokeModel errs in Bedrock's shape
    {AR_SHAPE_ANTHROPIC, 429,
     "{\"message\":\"Too many requests, please wait before trying again.\"}",
     "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
     "Too many requests, please wait before trying again.", "rate_limit_error",
     "rate_limit_exceeded", "rate_limit_error"},
    {AR_SHAPE_CONVERSE, 429, "{\"message\":\"Too many tokens, please wait before trying again.\"}",
     "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
     "Too many tokens, please wait before trying again.", "rate_limit_error", "rate_limit_exceeded",
     "rate_limit_error"},
    {AR_SHAPE_CONVERSE, 400, "{\"message\":\"The provided model identifier is invalid.\"}",
     "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
     "The provided model identifier is invalid.", "invalid_request_error", "ValidationException",
     "invalid_request_error"},
    {AR_SHAPE_CONVERSE, 400,
     "{\"message\":\"Your request exceeds the service quota for your account.\"}",
     "ServiceQuotaExceededException:http://internal.amazon.com/coral/com.amazon.bedrock/",
     "Your request exceeds the service quota for your account.", "rate_limit_error",
     "rate_limit_exceeded", "rate_limit_error"},
    {AR_SHAPE_CONVERSE, 403,
     "{\"Message\":\"User: arn:aws:iam::123456789012:user/gw is not authorized to perform: "
     "bedrock:InvokeModel\"}",
     "AccessDeniedException",
     "User: arn:aws:iam::123456789012:user/gw is not authorized to perform: bedrock:InvokeModel",
     "permission_error", "AccessDeniedException", "permission_error"},
    {AR_SHAPE_CONVERSE, 503, "{\"message\":\"Bedrock is unable to process your request.\"}",
     "ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.bedrock/",
     "Bedrock is unable to process your request.", "server_error", "ServiceUnavailableException",
     "overloaded_error"},
    {AR_SHAPE_CONVERSE, 408, "{\"message\":\"Model has timed out in processing the request.\"}",
     "ModelTimeoutException:http://internal.amazon.com/coral/com.amazon.bedrock/",
     "Model has timed out in processing the request.", "invalid_request_error",
     "ModelTimeoutException", "timeout_error"},
    //  No header: the body's __type says it
    {AR_SHAPE_CONVERSE, 403,
     "{\"__type\":\"com.amazon.coral.service#UnrecognizedClientException\",\"message\":\"The "
     "security token included in the request is invalid.\"}",
     NULL, "The security token included in the request is invalid.", "authentication_error",
     "UnrecognizedClientException", "authentication_error"},
    {AR_SHAPE_GEMINI, 429,
     "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted (e.g. check quota).\","
     "\"status\":\"RESOURCE_EXHAUSTED\"}}",
     NULL, "Resource has been exhausted (e.g. check quota).", "rate_limit_error",
     "rate_limit_exceeded", "rate_limit_error"},
    {AR_SHAPE_GEMINI, 400,
     "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API key.\","
     "\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/"
     "google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\"}]}}",
     NULL, "API key not valid. Please pass a valid API key.", "invalid_request_error",
     "INVALID_ARGUMENT", "invalid_request_error"},
    {AR_SHAPE_GEMINI, 404,
     "[{\"error\":{\"code\":404,\"message\":\"Publisher Model `projects/p/locations/us-central1/"
     "publishers/google/models/gemini-9` was not found.\",\"status\":\"NOT_FOUND\"}}]",
     NULL,
     "Publisher Model `projects/p/locations/us-central1/publishers/google/models/gemini-9` was "
     "not found.",
     "invalid_request_error", "NOT_FOUND", "not_found_error"},
    {AR_SHAPE_GEMINI, 503,
     "{\"error\":{\"code\":503,\"message\":\"The model is overloaded. Please try again later.\","
     "\"status\":\"UNAVAILABLE\"}}",
     NULL, "The model is overloaded. Please try again later.", "server_error", "UNAVAILABLE",
     "overloaded_error"},
    {AR_SHAPE_GEMINI, 403,
     "{\"error\":{\"code\":403,\"message\":\"Permission denied on resource project p.\","
     "\"status\":\"PERMISSION_DENIED\"}}",
     NULL, "Permission denied on resource project p.", "permission_error", "PERMISSION_DENIED",
     "permission_error"},
    //  Not JSON, or JSON without a message: the status, never the body
    {AR_SHAPE_OPENAI, 502,
     "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
     "</center><hr><center>nginx</center></body></html>",
     NULL, NULL, "server_error", NULL, "api_error"},
    {AR_SHAPE_ANTHROPIC, 504, "upstream request timeout", NULL, NULL, "server_error", NULL,
     "timeout_error"},
    {AR_SHAPE_GEMINI, 500, "{\"error\":{\"code\":500,\"status\":\"INTERNAL\"}}", NULL, NULL,
     "server_error", "INTERNAL", "api_error"},
    {AR_SHAPE_CONVERSE, 413, "{\"message\":\"\"}", NULL, NULL, "invalid_request_error", NULL,
     "request_too_large"},
    {AR_SHAPE_OPENAI, 402, "", NULL, NULL, "insufficient_quota", "insufficient_quota",
     "billing_error"},
    {AR_SHAPE_OPENAI, 400, "{\"error\":\"model is required\"}", NULL, "model is required",
     "invalid_request_error", NULL, "invalid_request_error"},
};

static void s_check_case (const s_case_t *test, ar_wire_shape_t caller)
{
    json_t *out = ar_xlate_error_body (caller, test->upstream, test->status, test->body,
                                       strlen (test->body), test->aws_error_type);
    assert (out);
    const char *message = s_get (out, "error", "message");
    assert (message);
    if (test->message)
        assert (strcmp (message, test->message) == 0);
    else {
        char status[8];
        snprintf (status, sizeof status, "%d", test->status);
        assert (strstr (message, status) && strstr (message, "HTTP"));
        assert (!strstr (message, "nginx") && !strstr (message, "<") &&
                !strstr (message, "timeout") && !strstr (message, "INTERNAL"));
    }
    const char *type = s_get (out, "error", "type");
    if (caller == AR_SHAPE_ANTHROPIC) {
        assert (json_object_size (out) <= 3);
        assert (strcmp (json_string_value (json_object_get (out, "type")), "error") == 0);
        assert (strcmp (type, test->anthropic_type) == 0);
        assert (json_object_size (json_object_get (out, "error")) == 2);
    } else {
        if (strcmp (type, test->openai_type))
            fprintf (stderr, "status %d: type %s, want %s\n", test->status, type,
                     test->openai_type);
        assert (strcmp (type, test->openai_type) == 0);
        json_t *code = json_object_get (json_object_get (out, "error"), "code");
        if (test->openai_code)
            assert (json_is_string (code) &&
                    strcmp (json_string_value (code), test->openai_code) == 0);
        else
            assert (json_is_null (code));
        assert (json_object_get (json_object_get (out, "error"), "param"));
    }
    json_decref (out);
}

static void s_test_upstream_errors (void)
{
    for (size_t k = 0; k < sizeof s_cases / sizeof s_cases[0]; k++) {
        s_check_case (&s_cases[k], AR_SHAPE_OPENAI);
        s_check_case (&s_cases[k], AR_SHAPE_ANTHROPIC);
    }
    //  Same shape keeps the upstream's own members
    const char *invalid =
        "{\"error\":{\"message\":\"Invalid value for 'temperature': expected a number.\","
        "\"type\":\"invalid_request_error\",\"param\":\"temperature\",\"code\":\"invalid_value\"}}";
    json_t *out = ar_xlate_error_body (AR_SHAPE_OPENAI, AR_SHAPE_OPENAI, 400, invalid,
                                       strlen (invalid), NULL);
    assert (strcmp (s_get (out, "error", "param"), "temperature") == 0);
    assert (strcmp (s_get (out, "error", "code"), "invalid_value") == 0);
    json_decref (out);
    const char *anthropic = s_cases[4].body;
    out = ar_xlate_error_body (AR_SHAPE_ANTHROPIC, AR_SHAPE_ANTHROPIC, 529, anthropic,
                               strlen (anthropic), NULL);
    assert (strcmp (json_string_value (json_object_get (out, "request_id")),
                    "req_011CSHoEeqs5C35K2UUqR7Fy") == 0);
    json_decref (out);
    //  An upstream type the status would not give is kept for a same-shape caller only
    const char *odd =
        "{\"type\":\"error\",\"error\":{\"type\":\"billing_error\",\"message\":\"m\"}}";
    out =
        ar_xlate_error_body (AR_SHAPE_ANTHROPIC, AR_SHAPE_ANTHROPIC, 400, odd, strlen (odd), NULL);
    assert (strcmp (s_get (out, "error", "type"), "billing_error") == 0);
    json_decref (out);
    out = ar_xlate_error_body (AR_SHAPE_OPENAI, AR_SHAPE_ANTHROPIC, 400, odd, strlen (odd), NULL);
    assert (strcmp (s_get (out, "error", "type"), "invalid_request_error") == 0);
    assert (json_is_null (json_object_get (json_object_get (out, "error"), "param")));
    json_decref (out);

    //  Only len bytes are read: what follows the body in the buffer is not part of it
    const char *buffer = "{\"message\":\"Throttled\"}trailing SECRET";
    out = ar_xlate_error_body (AR_SHAPE_OPENAI, AR_SHAPE_CONVERSE, 429, buffer, 23,
                               "ThrottlingException");
    assert (strcmp (s_get (out, "error", "message"), "Throttled") == 0);
    json_decref (out);
    //  No body at all
    out = ar_xlate_error_body (AR_SHAPE_ANTHROPIC, AR_SHAPE_GEMINI, 500, NULL, 0, NULL);
    assert (strstr (s_get (out, "error", "message"), "500"));
    assert (strcmp (s_get (out, "error", "type"), "api_error") == 0);
    json_decref (out);

    //  Over-long messages are cut at 1000 bytes, on a UTF-8 boundary
    char body[4200];
    int used = snprintf (body, sizeof body, "{\"error\":{\"message\":\"");
    for (int k = 0; k < 400; k++)
        used += snprintf (body + used, sizeof body - (size_t)used, "\xe2\x82\xac"); // U+20AC
    used += snprintf (body + used, sizeof body - (size_t)used, "\",\"type\":\"x\"}}");
    out = ar_xlate_error_body (AR_SHAPE_ANTHROPIC, AR_SHAPE_OPENAI, 400, body, (size_t)used, NULL);
    const char *message = s_get (out, "error", "message");
    assert (strlen (message) == 999); // 333 whole euro signs; a 334th would pass 1000
    assert (s_valid_utf8 (message, strlen (message)));
    json_decref (out);
    used = snprintf (body, sizeof body, "{\"message\":\"");
    for (int k = 0; k < 3000; k++)
        body[used++] = 'a';
    used += snprintf (body + used, sizeof body - (size_t)used, "\"}");
    out = ar_xlate_error_body (AR_SHAPE_OPENAI, AR_SHAPE_CONVERSE, 400, body, (size_t)used, NULL);
    assert (strlen (s_get (out, "error", "message")) == AR_XLATE_ERROR_MESSAGE_MAX);
    json_decref (out);

    //  Invalid UTF-8 makes the body unreadable JSON: generic message, no raw bytes
    const char *broken = "{\"error\":{\"message\":\"bad \xff\xfe bytes SECRET\",\"type\":\"x\"}}";
    out =
        ar_xlate_error_body (AR_SHAPE_OPENAI, AR_SHAPE_OPENAI, 400, broken, strlen (broken), NULL);
    message = s_get (out, "error", "message");
    assert (!strstr (message, "SECRET") && strstr (message, "400"));
    assert (strcmp (s_get (out, "error", "type"), "invalid_request_error") == 0);
    json_decref (out);
    //  An escaped NUL is refused by the parser too
    const char *nul = "{\"message\":\"a\\u0000SECRET\"}";
    out = ar_xlate_error_body (AR_SHAPE_ANTHROPIC, AR_SHAPE_CONVERSE, 400, nul, strlen (nul), NULL);
    assert (!strstr (s_get (out, "error", "message"), "SECRET"));
    json_decref (out);
}

static void s_test_own_errors (void)
{
    json_t *out =
        ar_xlate_error_new (AR_SHAPE_OPENAI, 400, "temperature must be at most 1 for this provider",
                            "temperature", NULL);
    json_t *error = json_object_get (out, "error");
    assert (json_object_size (out) == 1 && json_object_size (error) == 4);
    assert (strcmp (s_get (out, "error", "message"),
                    "temperature must be at most 1 for this provider") == 0);
    assert (strcmp (s_get (out, "error", "type"), "invalid_request_error") == 0);
    assert (strcmp (s_get (out, "error", "param"), "temperature") == 0);
    assert (json_is_null (json_object_get (error, "code")));
    json_decref (out);
    //  The types the edge sends OpenAI callers for the same statuses
    static const struct {
        int status;
        const char *openai, *anthropic;
    } types[] = {{400, "invalid_request_error", "invalid_request_error"},
                 {401, "authentication_error", "authentication_error"},
                 {402, "insufficient_quota", "billing_error"},
                 {403, "permission_error", "permission_error"},
                 {404, "invalid_request_error", "not_found_error"},
                 {413, "invalid_request_error", "request_too_large"},
                 {429, "rate_limit_error", "rate_limit_error"},
                 {500, "server_error", "api_error"},
                 {502, "server_error", "api_error"},
                 {503, "server_error", "overloaded_error"},
                 {504, "server_error", "timeout_error"},
                 {529, "server_error", "overloaded_error"}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        out = ar_xlate_error_new (AR_SHAPE_OPENAI, types[k].status, "m", NULL, "no_worker");
        assert (strcmp (s_get (out, "error", "type"), types[k].openai) == 0);
        assert (strcmp (s_get (out, "error", "code"), "no_worker") == 0);
        assert (json_is_null (json_object_get (json_object_get (out, "error"), "param")));
        json_decref (out);
        out = ar_xlate_error_new (AR_SHAPE_ANTHROPIC, types[k].status, "m", "p", "c");
        assert (strcmp (s_get (out, "error", "type"), types[k].anthropic) == 0);
        assert (strcmp (json_string_value (json_object_get (out, "type")), "error") == 0);
        assert (json_object_size (json_object_get (out, "error")) == 2);
        json_decref (out);
    }
    //  No message: the status says it; invalid UTF-8 is replaced, not refused
    out = ar_xlate_error_new (AR_SHAPE_ANTHROPIC, 503, NULL, NULL, NULL);
    assert (strstr (s_get (out, "error", "message"), "503"));
    json_decref (out);
    out = ar_xlate_error_new (AR_SHAPE_OPENAI, 400, "caf\xc3 \xed\xa0\x80 ok \xc3\xa9", NULL, NULL);
    assert (strcmp (s_get (out, "error", "message"), "caf? ??? ok \xc3\xa9") == 0);
    json_decref (out);
    //  Other shapes are not caller shapes: OpenAI's
    out = ar_xlate_error_new (AR_SHAPE_GEMINI, 429, "slow down", NULL, NULL);
    assert (strcmp (s_get (out, "error", "type"), "rate_limit_error") == 0);
    json_decref (out);
}

void ar_xlate_error_test (bool verbose)
{
    if (verbose)
        printf (" * ar_xlate_error: ");
    s_test_upstream_errors ();
    s_test_own_errors ();
    if (verbose)
        printf ("OK\n");
}
