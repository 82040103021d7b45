/*  ar_target: where one call goes upstream and in which shape (see ar_target.h). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "ar_target.h"

static int s_refuse (ar_target_t *self, int status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->message, sizeof self->message, format, args);
    va_end (args);
    self->status = status;
    return -1;
}

int ar_target_encode_segment (const char *s, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        bool plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                     (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' || *c == '~';
        if (n + (plain ? 1 : 3) >= size)
            return -1;
        if (plain)
            out[n++] = (char)*c;
        else {
            out[n++] = '%';
            out[n++] = hex[*c >> 4];
            out[n++] = hex[*c & 15];
        }
    }
    if (n >= size)
        return -1;
    out[n] = 0;
    return (int)n;
}

//  base + the rest, formatted; a trailing slash on base is dropped.
static int s_url (ar_target_t *self, const char *format, ...)
{
    const char *base = self->base_url ? self->base_url : "";
    size_t base_len = strlen (base);
    while (base_len && base[base_len - 1] == '/')
        base_len--;
    if (base_len == 0)
        return s_refuse (self, 500, "No base URL is configured for provider %s.", self->slug);
    if (base_len >= sizeof self->url)
        return s_refuse (self, 500, "The base URL of provider %s is too long.", self->slug);
    memcpy (self->url, base, base_len);
    va_list args;
    va_start (args, format);
    int n = vsnprintf (self->url + base_len, sizeof self->url - base_len, format, args);
    va_end (args);
    if (n < 0 || (size_t)n >= sizeof self->url - base_len)
        return s_refuse (self, 400, "The upstream URL for this request is too long.");
    return 0;
}

static bool s_is (const char *path, const char *want)
{
    return path && strcmp (path, want) == 0;
}

//  The conversation endpoints: chat completions (OpenAI callers), messages (Anthropic ones).
static bool s_conversation (const ar_target_t *self)
{
    return s_is (self->path, "/chat/completions") || s_is (self->path, "/messages");
}

static int s_unsupported (ar_target_t *self)
{
    return s_refuse (self, 400, "Provider %s does not support %s %s through this gateway.",
                     self->slug, self->method ? self->method : "POST",
                     self->path ? self->path : "?");
}

//  OpenAI: every OpenAI endpoint as it is; Anthropic messages translated to chat.
static int s_plan_openai (ar_target_t *self)
{
    self->upstream = AR_SHAPE_OPENAI;
    self->auth = AR_AUTH_KEY;
    if (s_is (self->path, "/messages"))
        return s_url (self, "/chat/completions");
    if (s_is (self->path, "/messages/count_tokens"))
        return s_unsupported (self);
    return s_url (self, "%s", self->path);
}

//  Azure OpenAI: /openai/deployments/{deployment}/{operation}?api-version=...
static int s_plan_azure (ar_target_t *self)
{
    self->upstream = AR_SHAPE_OPENAI;
    self->auth = AR_AUTH_KEY;
    const char *operation = NULL;
    if (s_conversation (self))
        operation = "chat/completions";
    else if (s_is (self->path, "/embeddings"))
        operation = "embeddings";
    else if (s_is (self->path, "/completions"))
        operation = "completions";
    else
        return s_unsupported (self);
    const char *deployment = self->deployment && *self->deployment ? self->deployment
                             : self->model                         ? self->model
                                                                   : "";
    char segment[512], version[128];
    if (!*deployment || ar_target_encode_segment (deployment, segment, sizeof segment) < 0)
        return s_refuse (self, 400,
                         "An Azure OpenAI deployment name is needed (the model names it "
                         "unless routing sets one).");
    const char *api_version =
        self->api_version && *self->api_version ? self->api_version : "2024-10-21";
    if (ar_target_encode_segment (api_version, version, sizeof version) < 0)
        return s_refuse (self, 400, "The Azure api-version is too long.");
    return s_url (self, "/openai/deployments/%s/%s?api-version=%s", segment, operation, version);
}

//  Anthropic: messages and count_tokens as they are; OpenAI chat translated to messages.
static int s_plan_anthropic (ar_target_t *self)
{
    self->upstream = AR_SHAPE_ANTHROPIC;
    self->auth = AR_AUTH_KEY;
    if (s_conversation (self))
        return s_url (self, "/messages");
    if (s_is (self->path, "/messages/count_tokens"))
        return s_url (self, "/messages/count_tokens");
    if (s_is (self->path, "/models") && s_is (self->method, "GET"))
        return s_url (self, "/models");
    return s_unsupported (self);
}

//  Bedrock: Claude for Anthropic callers through InvokeModel (the Anthropic body as it is);
//  everything else through Converse.
static int s_plan_bedrock (ar_target_t *self)
{
    self->auth = AR_AUTH_SIGV4;
    if (!s_conversation (self))
        return s_unsupported (self);
    char model[512];
    if (!self->model || !*self->model ||
        ar_target_encode_segment (self->model, model, sizeof model) < 0)
        return s_refuse (self, 400, "A Bedrock model id is needed.");
    self->drop_model = true;
    //  Model ids ("anthropic.claude-...") and inference profiles ("us.anthropic.claude-...").
    bool claude = strstr (self->model, "anthropic.") != NULL;
    if (self->caller == AR_SHAPE_ANTHROPIC && claude) {
        self->upstream = AR_SHAPE_ANTHROPIC;
        self->anthropic_version = "bedrock-2023-05-31";
        self->framing = AR_FRAMING_EVENTSTREAM_BYTES;
        return s_url (self, "/model/%s/%s", model,
                      self->stream ? "invoke-with-response-stream" : "invoke");
    }
    self->upstream = AR_SHAPE_CONVERSE;
    self->framing = AR_FRAMING_EVENTSTREAM;
    return s_url (self, "/model/%s/%s", model, self->stream ? "converse-stream" : "converse");
}

//  Vertex AI: Claude through the Anthropic publisher (rawPredict), Gemini through Google's.
static int s_plan_vertex (ar_target_t *self)
{
    self->auth = AR_AUTH_GOOGLE;
    bool count = s_is (self->path, "/messages/count_tokens");
    if (!s_conversation (self) && !count)
        return s_unsupported (self);
    char model[512], project[256], location[128];
    if (!self->project || !*self->project ||
        ar_target_encode_segment (self->project, project, sizeof project) < 0)
        return s_refuse (self, 500, "No Google Cloud project is configured for Vertex AI.");
    const char *where = self->location && *self->location ? self->location : "us-central1";
    if (ar_target_encode_segment (where, location, sizeof location) < 0)
        return s_refuse (self, 400, "The Vertex AI location is too long.");
    if (!self->model || !*self->model ||
        ar_target_encode_segment (self->model, model, sizeof model) < 0)
        return s_refuse (self, 400, "A Vertex AI model name is needed.");
    bool claude = strncmp (self->model, "claude", 6) == 0;
    if (claude) {
        self->upstream = AR_SHAPE_ANTHROPIC;
        self->anthropic_version = "vertex-2023-10-16";
        if (count) //  Vertex counts Claude tokens with a model named count-tokens.
            return s_url (self,
                          "/v1/projects/%s/locations/%s/publishers/anthropic/models/"
                          "count-tokens:rawPredict",
                          project, location);
        self->drop_model = true;
        return s_url (self, "/v1/projects/%s/locations/%s/publishers/anthropic/models/%s:%s",
                      project, location, model, self->stream ? "streamRawPredict" : "rawPredict");
    }
    if (count)
        return s_unsupported (self);
    self->upstream = AR_SHAPE_GEMINI;
    self->drop_model = true;
    return s_url (self, "/v1/projects/%s/locations/%s/publishers/google/models/%s:%s", project,
                  location, model,
                  self->stream ? "streamGenerateContent?alt=sse" : "generateContent");
}

int ar_target_plan (ar_target_t *self)
{
    self->url[0] = 0;
    self->message[0] = 0;
    self->status = 0;
    self->framing = AR_FRAMING_SSE;
    self->anthropic_version = NULL;
    self->drop_model = false;
    //  Anthropic's endpoints only from Anthropic callers, and the other way round.
    bool anthropic_path =
        s_is (self->path, "/messages") || s_is (self->path, "/messages/count_tokens");
    if (anthropic_path != (self->caller == AR_SHAPE_ANTHROPIC))
        return s_refuse (self, 400, "This endpoint takes the other API's shape.");
    int rc;
    const char *slug = self->slug ? self->slug : "";
    if (strcmp (slug, "openai") == 0)
        rc = s_plan_openai (self);
    else if (strcmp (slug, "azure-openai") == 0)
        rc = s_plan_azure (self);
    else if (strcmp (slug, "anthropic") == 0)
        rc = s_plan_anthropic (self);
    else if (strcmp (slug, "bedrock") == 0)
        rc = s_plan_bedrock (self);
    else if (strcmp (slug, "google-vertex-ai") == 0)
        rc = s_plan_vertex (self);
    else
        return s_refuse (self, 400, "Unknown provider.");
    if (rc == 0)
        self->translate = self->upstream != self->caller;
    return rc;
}

//  ---------------------------------------------------------------------------
//  Self-test

static void s_expect (ar_target_t *t, const char *url, ar_wire_shape_t upstream)
{
    int rc = ar_target_plan (t);
    if (rc != 0 || strcmp (t->url, url) != 0 || t->upstream != upstream) {
        fprintf (stderr, "ar_target: %s %s -> rc=%d url=%s (%s) want %s\n", t->slug, t->path, rc,
                 t->url, t->message, url);
        assert (false);
    }
}

void ar_target_test (bool verbose)
{
    if (verbose)
        printf (" * ar_target: ");
    char out[64];
    assert (ar_target_encode_segment ("anthropic.claude-3-5-sonnet-20240620-v1:0", out,
                                      sizeof out) > 0);
    assert (strcmp (out, "anthropic.claude-3-5-sonnet-20240620-v1%3A0") == 0);
    assert (ar_target_encode_segment ("a/b c", out, sizeof out) == 9);
    assert (strcmp (out, "a%2Fb%20c") == 0);
    assert (ar_target_encode_segment ("abcdef", out, 6) == -1);

    ar_target_t t = {.slug = "openai",
                     .base_url = "https://api.openai.com/v1/",
                     .path = "/chat/completions",
                     .method = "POST",
                     .model = "gpt-4o",
                     .caller = AR_SHAPE_OPENAI};
    s_expect (&t, "https://api.openai.com/v1/chat/completions", AR_SHAPE_OPENAI);
    assert (!t.translate && t.framing == AR_FRAMING_SSE && t.auth == AR_AUTH_KEY);
    t.path = "/responses";
    s_expect (&t, "https://api.openai.com/v1/responses", AR_SHAPE_OPENAI);
    t.path = "/messages", t.caller = AR_SHAPE_ANTHROPIC;
    s_expect (&t, "https://api.openai.com/v1/chat/completions", AR_SHAPE_OPENAI);
    assert (t.translate);
    t.path = "/messages/count_tokens";
    assert (ar_target_plan (&t) == -1 && t.status == 400 && strstr (t.message, "openai"));
    //  A path that does not match the caller's shape.
    t.path = "/chat/completions";
    assert (ar_target_plan (&t) == -1);

    t = (ar_target_t){.slug = "azure-openai",
                      .base_url = "https://res.openai.azure.com",
                      .path = "/chat/completions",
                      .method = "POST",
                      .model = "gpt-4o",
                      .caller = AR_SHAPE_OPENAI};
    s_expect (&t,
              "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
              "?api-version=2024-10-21",
              AR_SHAPE_OPENAI);
    t.deployment = "prod 4o", t.api_version = "2025-01-01-preview", t.path = "/embeddings";
    s_expect (&t,
              "https://res.openai.azure.com/openai/deployments/prod%204o/embeddings"
              "?api-version=2025-01-01-preview",
              AR_SHAPE_OPENAI);
    t.path = "/responses";
    assert (ar_target_plan (&t) == -1 && t.status == 400);

    t = (ar_target_t){.slug = "anthropic",
                      .base_url = "https://api.anthropic.com/v1",
                      .path = "/messages",
                      .method = "POST",
                      .model = "claude-sonnet-4-5",
                      .caller = AR_SHAPE_ANTHROPIC,
                      .stream = true};
    s_expect (&t, "https://api.anthropic.com/v1/messages", AR_SHAPE_ANTHROPIC);
    assert (!t.translate && !t.anthropic_version && !t.drop_model);
    t.path = "/messages/count_tokens";
    s_expect (&t, "https://api.anthropic.com/v1/messages/count_tokens", AR_SHAPE_ANTHROPIC);
    t.path = "/chat/completions", t.caller = AR_SHAPE_OPENAI;
    s_expect (&t, "https://api.anthropic.com/v1/messages", AR_SHAPE_ANTHROPIC);
    assert (t.translate);
    t.path = "/embeddings";
    assert (ar_target_plan (&t) == -1);

    t = (ar_target_t){.slug = "bedrock",
                      .base_url = "https://bedrock-runtime.us-east-1.amazonaws.com",
                      .path = "/messages",
                      .method = "POST",
                      .model = "anthropic.claude-3-5-sonnet-20240620-v1:0",
                      .caller = AR_SHAPE_ANTHROPIC,
                      .stream = true};
    s_expect (&t,
              "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
              "anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke-with-response-stream",
              AR_SHAPE_ANTHROPIC);
    assert (t.framing == AR_FRAMING_EVENTSTREAM_BYTES && t.drop_model && !t.translate);
    assert (strcmp (t.anthropic_version, "bedrock-2023-05-31") == 0 && t.auth == AR_AUTH_SIGV4);
    t.stream = false;
    s_expect (&t,
              "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
              "anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke",
              AR_SHAPE_ANTHROPIC);
    t.path = "/chat/completions", t.caller = AR_SHAPE_OPENAI, t.stream = true;
    s_expect (&t,
              "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
              "anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream",
              AR_SHAPE_CONVERSE);
    assert (t.framing == AR_FRAMING_EVENTSTREAM && t.translate && !t.anthropic_version);
    t.model = "amazon.nova-pro-v1:0", t.caller = AR_SHAPE_ANTHROPIC, t.path = "/messages";
    s_expect (&t,
              "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-pro-v1%3A0/"
              "converse-stream",
              AR_SHAPE_CONVERSE);
    t.path = "/messages/count_tokens";
    assert (ar_target_plan (&t) == -1);

    t = (ar_target_t){.slug = "google-vertex-ai",
                      .base_url = "https://us-east5-aiplatform.googleapis.com",
                      .path = "/messages",
                      .method = "POST",
                      .model = "claude-sonnet-4-5@20250929",
                      .caller = AR_SHAPE_ANTHROPIC,
                      .project = "my-proj",
                      .location = "us-east5",
                      .stream = true};
    s_expect (&t,
              "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/"
              "publishers/anthropic/models/claude-sonnet-4-5%4020250929:streamRawPredict",
              AR_SHAPE_ANTHROPIC);
    assert (strcmp (t.anthropic_version, "vertex-2023-10-16") == 0 && t.drop_model);
    assert (t.auth == AR_AUTH_GOOGLE && t.framing == AR_FRAMING_SSE);
    t.path = "/messages/count_tokens";
    s_expect (&t,
              "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/"
              "publishers/anthropic/models/count-tokens:rawPredict",
              AR_SHAPE_ANTHROPIC);
    assert (!t.drop_model);
    t.path = "/chat/completions", t.caller = AR_SHAPE_OPENAI, t.model = "gemini-2.5-pro";
    s_expect (&t,
              "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/"
              "publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
              AR_SHAPE_GEMINI);
    assert (t.translate && t.drop_model);
    t.stream = false;
    s_expect (&t,
              "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/"
              "publishers/google/models/gemini-2.5-pro:generateContent",
              AR_SHAPE_GEMINI);
    t.project = NULL;
    assert (ar_target_plan (&t) == -1 && t.status == 500);

    t = (ar_target_t){.slug = "nope", .path = "/chat/completions", .caller = AR_SHAPE_OPENAI};
    assert (ar_target_plan (&t) == -1 && t.status == 400);
    if (verbose)
        printf ("OK\n");
}
