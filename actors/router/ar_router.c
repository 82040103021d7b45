/*  ar_router: single-target routing from the environment.

    The provider is x-anyray-provider's when given, else the one the caller's SDK implies (the
    Anthropic endpoints go to anthropic), else ANYRAY_DEFAULT_PROVIDER. Each provider's base URL
    is ANYRAY_PROVIDER_URL_<SLUG> or its public one, and the target carries the settings its
    provider needs (Azure deployment and API version, Bedrock region, Vertex project and
    location), all from the environment until routing config replaces them.
*/
#include "ar_router.h"
#include "ar_env.h"
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ar_router_t {
    char default_provider[64];
    char anthropic_provider[64]; // for the Anthropic SDK's calls
};

ar_router_t *ar_router_new (const char *db_path, char *error, size_t error_size)
{
    (void)db_path; // the routing config comes with issue 6's ar_routing_settings
    ar_router_t *self = calloc (1, sizeof *self);
    if (!self)
        snprintf (error, error_size, "out of memory");
    if (self) {
        snprintf (self->default_provider, sizeof self->default_provider, "%s",
                  ar_env_str ("ANYRAY_DEFAULT_PROVIDER", "openai"));
        snprintf (self->anthropic_provider, sizeof self->anthropic_provider, "%s",
                  ar_env_str ("ANYRAY_ANTHROPIC_SDK_PROVIDER", "anthropic"));
    }
    return self;
}

void ar_router_destroy (ar_router_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

//  The first non-empty variable of a list, or fallback.
static const char *s_env_first (const char *const *names, const char *fallback)
{
    for (size_t i = 0; names[i]; i++) {
        const char *value = getenv (names[i]);
        if (value && *value)
            return value;
    }
    return fallback;
}

//  A JSON string member `,"key":"value"` when value is set and plain (no quote, backslash or
//  control character: these are names and versions, never free text).
static int s_member (char *buf, size_t size, const char *key, const char *value)
{
    if (!value || !*value)
        return 0;
    for (const unsigned char *c = (const unsigned char *)value; *c; c++)
        if (*c < 0x20 || *c == '"' || *c == '\\')
            return 0;
    int n = snprintf (buf, size, ",\"%s\":\"%s\"", key, value);
    return n > 0 && (size_t)n < size ? n : -1;
}

int ar_router_poll (ar_router_t *self)
{
    (void)self;
    return 0;
}

int64_t ar_router_version (ar_router_t *self)
{
    (void)self;
    return 0;
}

int ar_router_plan (ar_router_t *self, const ar_route_facts_t *facts, char *buf, size_t size)
{
    const char *provider = facts->provider, *endpoint = facts->endpoint;
    if (!provider || !*provider) {
        bool anthropic_sdk = endpoint && (strcmp (endpoint, "/v1/messages") == 0 ||
                                          strcmp (endpoint, "/v1/messages/count_tokens") == 0);
        provider = anthropic_sdk ? self->anthropic_provider : self->default_provider;
    }
    char region_url[256] = "", location_url[256] = "", azure_url[256] = "";
    const char *base = NULL;
    char extra[768] = "";
    int used = 0, n = 0;
    if (strcmp (provider, "openai") == 0)
        base = "https://api.openai.com/v1";
    else if (strcmp (provider, "anthropic") == 0)
        base = "https://api.anthropic.com/v1";
    else if (strcmp (provider, "azure-openai") == 0) {
        const char *resource = getenv ("ANYRAY_AZURE_RESOURCE");
        if (resource && *resource)
            snprintf (azure_url, sizeof azure_url, "https://%s.openai.azure.com", resource);
        base = azure_url;
        n = s_member (extra, sizeof extra, "deployment", getenv ("ANYRAY_AZURE_DEPLOYMENT"));
        used = n < 0 ? -1 : n;
        n = used < 0 ? -1
                     : s_member (extra + used, sizeof extra - (size_t)used, "api_version",
                                 getenv ("ANYRAY_AZURE_API_VERSION"));
    } else if (strcmp (provider, "bedrock") == 0) {
        static const char *const regions[] = {"ANYRAY_BEDROCK_REGION", "AWS_REGION",
                                              "AWS_DEFAULT_REGION", NULL};
        const char *region = s_env_first (regions, "us-east-1");
        snprintf (region_url, sizeof region_url, "https://bedrock-runtime.%s.amazonaws.com",
                  region);
        base = region_url;
        n = s_member (extra, sizeof extra, "region", region);
    } else if (strcmp (provider, "google-vertex-ai") == 0) {
        const char *location = ar_env_str ("ANYRAY_VERTEX_LOCATION", "us-central1");
        //  The global endpoint has no region prefix.
        if (strcmp (location, "global") == 0)
            snprintf (location_url, sizeof location_url, "https://aiplatform.googleapis.com");
        else
            snprintf (location_url, sizeof location_url, "https://%s-aiplatform.googleapis.com",
                      location);
        base = location_url;
        n = s_member (extra, sizeof extra, "location", location);
        used = n < 0 ? -1 : n;
        n = used < 0 ? -1
                     : s_member (extra + used, sizeof extra - (size_t)used, "project",
                                 getenv ("ANYRAY_VERTEX_PROJECT"));
    } else
        return -1;
    if (n < 0 || used < 0)
        return -1;
    char name[96] = "ANYRAY_PROVIDER_URL_";
    size_t len = strlen (name);
    for (const char *c = provider; *c && len + 1 < sizeof name; c++)
        name[len++] = *c == '-' ? '_' : (char)toupper ((unsigned char)*c);
    name[len] = 0;
    const char *url = ar_env_str (name, base);
    //  A trailing slash would double up when the path is appended.
    size_t url_len = strlen (url);
    while (url_len && url[url_len - 1] == '/')
        url_len--;
    for (size_t i = 0; i < url_len; i++)
        if ((unsigned char)url[i] < 0x20 || url[i] == '"' || url[i] == '\\')
            return -1;
    int written =
        snprintf (buf, size, "{\"targets\":[{\"provider\":\"%s\",\"base_url\":\"%.*s\"%s}]}",
                  provider, (int)url_len, url, extra);
    return written > 0 && (size_t)written < size ? written : -1;
}

void ar_router_handle (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    char plan[2048];
    ar_route_facts_t facts = {
        ar_envelope_meta_get (&job->env, "provider"), ar_envelope_meta_get (&job->env, "endpoint"),
        ar_envelope_meta_get (&job->env, "model"), ar_envelope_meta_get (&job->env, "metadata")};
    int len = ar_router_plan (arg, &facts, plan, sizeof plan);
    if (len < 0) {
        ar_actor_error (actor, &job, 400, "unknown provider");
        return;
    }
    ar_envelope_set_status (&job->reply, 200, "OK");
    ar_actor_end (actor, &job, plan, (size_t)len);
}

void ar_router_test (bool verbose)
{
    const char *vars[] = {"ANYRAY_PROVIDER_URL_OPENAI",
                          "ANYRAY_DEFAULT_PROVIDER",
                          "ANYRAY_AZURE_RESOURCE",
                          "ANYRAY_AZURE_DEPLOYMENT",
                          "ANYRAY_AZURE_API_VERSION",
                          "ANYRAY_BEDROCK_REGION",
                          "AWS_REGION",
                          "AWS_DEFAULT_REGION",
                          "ANYRAY_VERTEX_LOCATION",
                          "ANYRAY_VERTEX_PROJECT",
                          "ANYRAY_PROVIDER_URL_ANTHROPIC"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv (vars[i]);
    char err[200];
    ar_router_t *router = ar_router_new (NULL, err, sizeof err);
    char plan[2048];
    assert (ar_router_plan (router, &(ar_route_facts_t){NULL, "/v1/chat/completions", NULL, NULL},
                            plan, sizeof plan) > 0);
    assert (strstr (plan, "\"provider\":\"openai\",\"base_url\":\"https://api.openai.com/v1\""));
    //  The Anthropic SDK implies anthropic; the header still wins.
    assert (ar_router_plan (router, &(ar_route_facts_t){NULL, "/v1/messages", NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (
        strstr (plan, "\"provider\":\"anthropic\",\"base_url\":\"https://api.anthropic.com/v1\""));
    assert (ar_router_plan (router, &(ar_route_facts_t){"openai", "/v1/messages", NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (strstr (plan, "\"provider\":\"openai\""));
    ar_router_destroy (&router);
    setenv ("ANYRAY_ANTHROPIC_SDK_PROVIDER", "bedrock", 1);
    router = ar_router_new (NULL, err, sizeof err);
    assert (ar_router_plan (router, &(ar_route_facts_t){NULL, "/v1/messages", NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (strstr (plan, "\"provider\":\"bedrock\""));
    unsetenv ("ANYRAY_ANTHROPIC_SDK_PROVIDER");
    ar_router_destroy (&router);
    router = ar_router_new (NULL, err, sizeof err);
    setenv ("ANYRAY_PROVIDER_URL_OPENAI", "http://127.0.0.1:9999/v1/", 1);
    assert (ar_router_plan (router, &(ar_route_facts_t){"openai", NULL, NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (strstr (plan, "\"base_url\":\"http://127.0.0.1:9999/v1\"")); // slash trimmed
    assert (ar_router_plan (router, &(ar_route_facts_t){"nope", NULL, NULL, NULL}, plan,
                            sizeof plan) == -1);
    assert (ar_router_plan (router, &(ar_route_facts_t){"openai", NULL, NULL, NULL}, plan, 10) ==
            -1);
    //  Each provider's settings ride in its target.
    setenv ("ANYRAY_AZURE_RESOURCE", "contoso", 1);
    setenv ("ANYRAY_AZURE_API_VERSION", "2024-10-21", 1);
    assert (ar_router_plan (router, &(ar_route_facts_t){"azure-openai", NULL, NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (strstr (plan, "\"base_url\":\"https://contoso.openai.azure.com\""));
    assert (strstr (plan, "\"api_version\":\"2024-10-21\"") && !strstr (plan, "deployment"));
    setenv ("AWS_REGION", "eu-west-3", 1);
    assert (ar_router_plan (router, &(ar_route_facts_t){"bedrock", NULL, NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (strstr (plan,
                    "https://bedrock-runtime.eu-west-3.amazonaws.com\",\"region\":\"eu-west-3\""));
    setenv ("ANYRAY_BEDROCK_REGION", "us-west-2", 1); // ours wins over AWS's
    assert (ar_router_plan (router, &(ar_route_facts_t){"bedrock", NULL, NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (strstr (plan, "\"region\":\"us-west-2\""));
    setenv ("ANYRAY_VERTEX_PROJECT", "proj-1", 1);
    setenv ("ANYRAY_VERTEX_LOCATION", "europe-west1", 1);
    assert (ar_router_plan (router, &(ar_route_facts_t){"google-vertex-ai", NULL, NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (strstr (plan, "https://europe-west1-aiplatform.googleapis.com\""));
    assert (strstr (plan, "\"location\":\"europe-west1\",\"project\":\"proj-1\""));
    setenv ("ANYRAY_VERTEX_PROJECT", "bad\"quote", 1); // never written into the JSON
    assert (ar_router_plan (router, &(ar_route_facts_t){"google-vertex-ai", NULL, NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (!strstr (plan, "project"));
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv (vars[i]);
    ar_router_destroy (&router);
    assert (router == NULL);
    (void)verbose;
}
