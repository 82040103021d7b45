/*  ar_router: request facts in, a plan of targets out (see the header for the plan).

    Without a routing config the provider is x-anyray-provider's when given, else the one the
    caller's SDK implies (the Anthropic endpoints go to ANYRAY_ANTHROPIC_SDK_PROVIDER), else
    ANYRAY_DEFAULT_PROVIDER. With one, the config's tree decides (ar_routing_config_select).
    Either way each target's settings the config does not give come from the environment
    (a few getenv calls per plan).

    Plans are made per request: they are written straight into the caller's buffer, with no
    allocation; the config-only members of each target were prebuilt at parse time.
*/
#include "ar_router.h"
#include "ar_buf.h"
#include "ar_env.h"
#include "ar_routing_settings.h"
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct ar_router_t {
    char default_provider[64];
    char anthropic_provider[64];     // for the Anthropic SDK's calls
    ar_routing_settings_t *settings; // NULL: the environment only
    ar_rng_t rng;                    // loadbalance draws
    char plan[AR_ROUTER_PLAN_SIZE];  // ar_router_handle's reply
};

ar_router_t *ar_router_new (const char *db_path, char *error, size_t error_size)
{
    ar_router_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    snprintf (self->default_provider, sizeof self->default_provider, "%s",
              ar_env_str ("ANYRAY_DEFAULT_PROVIDER", "openai"));
    snprintf (self->anthropic_provider, sizeof self->anthropic_provider, "%s",
              ar_env_str ("ANYRAY_ANTHROPIC_SDK_PROVIDER", "anthropic"));
    uint64_t seed = 0;
    if (getrandom (&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)time (NULL) ^ ((uint64_t)getpid () << 32); // not a secret
    ar_router_seed (self, seed);
    if (db_path) {
        self->settings = ar_routing_settings_new (db_path, error, error_size);
        if (!self->settings) {
            free (self);
            return NULL;
        }
    }
    return self;
}

void ar_router_destroy (ar_router_t **self_p)
{
    ar_router_t *self = *self_p;
    if (!self)
        return;
    ar_routing_settings_destroy (&self->settings);
    free (self);
    *self_p = NULL;
}

void ar_router_seed (ar_router_t *self, uint64_t seed)
{
    self->rng.state = seed ? seed : 0x9e3779b97f4a7c15ull; // xorshift state is never 0
}

int ar_router_poll (ar_router_t *self)
{
    return self->settings ? ar_routing_settings_poll (self->settings) : 0;
}

int64_t ar_router_version (ar_router_t *self)
{
    return self->settings ? ar_routing_settings_version (self->settings) : 0;
}

//  --------------------------------------------------------------------------
//  Writing the plan

typedef struct {
    char *buf;
    size_t size, len;
    bool full;
} s_out_t;

static void s_put (s_out_t *out, const char *text, size_t len)
{
    if (out->full || len >= out->size - out->len) {
        out->full = true;
        return;
    }
    memcpy (out->buf + out->len, text, len);
    out->len += len;
    out->buf[out->len] = 0;
}

static void s_puts (s_out_t *out, const char *text)
{
    s_put (out, text, strlen (text));
}

//  A value the environment gave is written only when plain (no quote, backslash or control
//  character: these are names, versions and URLs, never free text).
static bool s_plain (const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == '"' || value[i] == '\\')
            return false;
    return true;
}

//  `,"key":"value"` when value is set and plain.
static void s_member (s_out_t *out, const char *key, const char *value)
{
    if (!value || !*value || !s_plain (value, strlen (value)))
        return;
    s_puts (out, ",\"");
    s_puts (out, key);
    s_puts (out, "\":\"");
    s_puts (out, value);
    s_puts (out, "\"");
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

static const char *s_env (const char *name)
{
    const char *value = getenv (name);
    return value && *value ? value : NULL;
}

//  One target: the config's values (t, NULL for the environment's plan) over the
//  environment's. Returns -1 when the provider is unknown, -2 when the URL is not plain.
static int s_target (s_out_t *out, const char *provider, const ar_routing_target_t *t)
{
    const ar_routing_target_t none = {0};
    if (!t)
        t = &none;
    char derived[320] = "";
    int n = 0; // the length of derived, checked: a cut URL would go somewhere else
    const char *base = NULL;
    const char *deployment = NULL, *api_version = NULL, *region = NULL, *project = NULL,
               *location = NULL;
    if (strcmp (provider, "openai") == 0)
        base = "https://api.openai.com/v1";
    else if (strcmp (provider, "anthropic") == 0)
        base = "https://api.anthropic.com/v1";
    else if (strcmp (provider, "azure-openai") == 0) {
        const char *resource = s_env ("ANYRAY_AZURE_RESOURCE");
        if (resource)
            n = snprintf (derived, sizeof derived, "https://%s.openai.azure.com", resource);
        base = derived;
        deployment = t->deployment ? t->deployment : s_env ("ANYRAY_AZURE_DEPLOYMENT");
        api_version = t->api_version ? t->api_version : s_env ("ANYRAY_AZURE_API_VERSION");
    } else if (strcmp (provider, "bedrock") == 0) {
        static const char *const regions[] = {"ANYRAY_BEDROCK_REGION", "AWS_REGION",
                                              "AWS_DEFAULT_REGION", NULL};
        region = t->region ? t->region : s_env_first (regions, "us-east-1");
        n = snprintf (derived, sizeof derived, "https://bedrock-runtime.%s.amazonaws.com", region);
        base = derived;
    } else if (strcmp (provider, "google-vertex-ai") == 0) {
        location = t->location ? t->location : ar_env_str ("ANYRAY_VERTEX_LOCATION", "us-central1");
        //  The global endpoint has no region prefix.
        if (strcmp (location, "global") == 0)
            n = snprintf (derived, sizeof derived, "https://aiplatform.googleapis.com");
        else
            n = snprintf (derived, sizeof derived, "https://%s-aiplatform.googleapis.com",
                          location);
        base = derived;
        project = t->project ? t->project : s_env ("ANYRAY_VERTEX_PROJECT");
    } else
        return AR_ROUTER_UNKNOWN_PROVIDER;
    if (n < 0 || (size_t)n >= sizeof derived)
        return AR_ROUTER_CANNOT_PLAN;
    const char *url = t->base_url;
    if (!url) {
        char name[96] = "ANYRAY_PROVIDER_URL_";
        size_t len = strlen (name);
        for (const char *c = provider; *c && len + 1 < sizeof name; c++)
            name[len++] = *c == '-' ? '_' : (char)toupper ((unsigned char)*c);
        name[len] = 0;
        url = ar_env_str (name, base);
    }
    //  A trailing slash would double up when the path is appended.
    size_t url_len = strlen (url);
    while (url_len && url[url_len - 1] == '/')
        url_len--;
    if (!s_plain (url, url_len))
        return AR_ROUTER_CANNOT_PLAN;
    s_puts (out, "{\"provider\":\"");
    s_puts (out, provider);
    s_puts (out, "\",\"base_url\":\"");
    s_put (out, url, url_len);
    s_puts (out, "\"");
    if (t->plan_head)
        s_puts (out, t->plan_head);
    s_member (out, "deployment", deployment);
    s_member (out, "api_version", api_version);
    s_member (out, "region", region);
    s_member (out, "location", location);
    s_member (out, "project", project);
    s_puts (out, t->plan_tail ? t->plan_tail : ar_routing_default_tail ());
    s_puts (out, "}");
    return 0;
}

int ar_router_plan (ar_router_t *self, const ar_route_facts_t *facts, char *buf, size_t size)
{
    const ar_route_facts_t no_facts = {0};
    if (!facts)
        facts = &no_facts;
    const char *asked = facts->provider && *facts->provider ? facts->provider : NULL;
    if (asked && !ar_routing_known_provider (asked))
        return AR_ROUTER_UNKNOWN_PROVIDER;
    if (!buf || size == 0)
        return AR_ROUTER_CANNOT_PLAN;
    const ar_routing_config_t *config =
        self->settings ? ar_routing_settings_config (self->settings) : NULL;
    s_out_t out = {buf, size, 0, false};
    char head[64];
    snprintf (head, sizeof head, "{\"version\":%lld,\"targets\":[",
              (long long)ar_router_version (self));
    s_puts (&out, head);
    int rc = 0;
    if (!config) {
        const char *provider = asked;
        if (!provider) {
            const char *endpoint = facts->endpoint;
            bool anthropic_sdk = endpoint && (strcmp (endpoint, "/v1/messages") == 0 ||
                                              strcmp (endpoint, "/v1/messages/count_tokens") == 0);
            provider = anthropic_sdk ? self->anthropic_provider : self->default_provider;
        }
        rc = s_target (&out, provider, NULL);
    } else {
        const ar_routing_target_t *targets[AR_ROUTING_PLAN_MAX];
        int count =
            ar_routing_config_select (config, facts, &self->rng, targets, AR_ROUTING_PLAN_MAX);
        if (count < 0)
            return AR_ROUTER_NO_MATCH;
        size_t kept = 0;
        for (int i = 0; i < count && rc == 0; i++) {
            if (asked && strcmp (targets[i]->provider, asked) != 0)
                continue;
            if (kept++)
                s_puts (&out, ",");
            rc = s_target (&out, targets[i]->provider, targets[i]);
        }
        //  The caller named a provider the config does not route to here: honour the header.
        if (rc == 0 && kept == 0)
            rc = s_target (&out, asked, NULL);
    }
    s_puts (&out, "]}");
    if (rc != 0)
        return rc;
    return out.full ? AR_ROUTER_CANNOT_PLAN : (int)out.len;
}

void ar_router_handle (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    ar_router_t *self = arg;
    ar_route_facts_t facts = {
        ar_envelope_meta_get (&job->env, "provider"), ar_envelope_meta_get (&job->env, "endpoint"),
        ar_envelope_meta_get (&job->env, "model"), ar_envelope_meta_get (&job->env, "metadata")};
    int len = ar_router_plan (self, &facts, self->plan, sizeof self->plan);
    if (len == AR_ROUTER_UNKNOWN_PROVIDER)
        ar_actor_error (actor, &job, 400, "unknown provider");
    else if (len == AR_ROUTER_NO_MATCH)
        ar_actor_error (actor, &job, 400, "no routing target matches");
    else if (len < 0)
        ar_actor_error (actor, &job, 500, "routing plan failed");
    else {
        ar_envelope_set_status (&job->reply, 200, "OK");
        ar_actor_end (actor, &job, self->plan, (size_t)len);
    }
}

//  --------------------------------------------------------------------------
//  Self-test

static const char *const s_vars[] = {"ANYRAY_PROVIDER_URL_OPENAI",
                                     "ANYRAY_PROVIDER_URL_ANTHROPIC",
                                     "ANYRAY_PROVIDER_URL_BEDROCK",
                                     "ANYRAY_PROVIDER_URL_AZURE_OPENAI",
                                     "ANYRAY_PROVIDER_URL_GOOGLE_VERTEX_AI",
                                     "ANYRAY_DEFAULT_PROVIDER",
                                     "ANYRAY_ANTHROPIC_SDK_PROVIDER",
                                     "ANYRAY_AZURE_RESOURCE",
                                     "ANYRAY_AZURE_DEPLOYMENT",
                                     "ANYRAY_AZURE_API_VERSION",
                                     "ANYRAY_BEDROCK_REGION",
                                     "AWS_REGION",
                                     "AWS_DEFAULT_REGION",
                                     "ANYRAY_VERTEX_LOCATION",
                                     "ANYRAY_VERTEX_PROJECT",
                                     "ANYRAY_ROUTING_CONFIG",
                                     NULL};

static void s_clear_env (void)
{
    for (size_t i = 0; s_vars[i]; i++)
        unsetenv (s_vars[i]);
}

//  No routing config: one target from the environment, as before issue 6.
static void s_test_environment (void)
{
    char err[200];
    ar_router_t *router = ar_router_new (NULL, err, sizeof err);
    char plan[2048];
    assert (ar_router_plan (router, &(ar_route_facts_t){NULL, "/v1/chat/completions", NULL, NULL},
                            plan, sizeof plan) > 0);
    assert (strcmp (plan, "{\"version\":0,\"targets\":[{\"provider\":\"openai\",\"base_url\":"
                          "\"https://api.openai.com/v1\",\"attempts\":0,\"retry_on\":[429,500,"
                          "502,503,504,529],\"backoff_ms\":250,\"max_backoff_ms\":8000,"
                          "\"retry_after\":true,\"max_retry_after_ms\":60000}]}") == 0);
    assert (ar_router_plan (router, NULL, plan, sizeof plan) > 0); // no facts at all
    assert (strstr (plan, "\"provider\":\"openai\""));
    //  The Anthropic SDK implies anthropic; the header still wins.
    assert (ar_router_plan (router, &(ar_route_facts_t){NULL, "/v1/messages", NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (
        strstr (plan, "\"provider\":\"anthropic\",\"base_url\":\"https://api.anthropic.com/v1\""));
    assert (ar_router_plan (router, &(ar_route_facts_t){"openai", "/v1/messages", NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (strstr (plan, "\"provider\":\"openai\""));
    assert (ar_router_poll (router) == 0 && ar_router_version (router) == 0);
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
                            sizeof plan) == AR_ROUTER_UNKNOWN_PROVIDER);
    assert (ar_router_plan (router, &(ar_route_facts_t){"openai", NULL, NULL, NULL}, plan, 10) ==
            AR_ROUTER_CANNOT_PLAN);
    assert (ar_router_plan (router, &(ar_route_facts_t){"openai", NULL, NULL, NULL}, NULL, 0) ==
            AR_ROUTER_CANNOT_PLAN);
    setenv ("ANYRAY_PROVIDER_URL_OPENAI", "http://a\"b", 1); // never written into the JSON
    assert (ar_router_plan (router, &(ar_route_facts_t){"openai", NULL, NULL, NULL}, plan,
                            sizeof plan) == AR_ROUTER_CANNOT_PLAN);
    unsetenv ("ANYRAY_PROVIDER_URL_OPENAI");
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
    setenv ("ANYRAY_VERTEX_LOCATION", "global", 1); // the global endpoint has no prefix
    assert (ar_router_plan (router, &(ar_route_facts_t){"google-vertex-ai", NULL, NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (strstr (plan, "\"base_url\":\"https://aiplatform.googleapis.com\""));
    char long_location[400];
    memset (long_location, 'a', sizeof long_location - 1);
    long_location[sizeof long_location - 1] = 0;
    setenv ("ANYRAY_VERTEX_LOCATION", long_location, 1); // a URL is never cut short
    assert (ar_router_plan (router, &(ar_route_facts_t){"google-vertex-ai", NULL, NULL, NULL}, plan,
                            sizeof plan) == AR_ROUTER_CANNOT_PLAN);
    setenv ("ANYRAY_VERTEX_LOCATION", "global", 1);
    setenv ("ANYRAY_VERTEX_PROJECT", "bad\"quote", 1); // never written into the JSON
    assert (ar_router_plan (router, &(ar_route_facts_t){"google-vertex-ai", NULL, NULL, NULL}, plan,
                            sizeof plan) > 0);
    assert (!strstr (plan, "project"));
    s_clear_env ();
    ar_router_destroy (&router);
    assert (router == NULL);
    ar_router_destroy (&router); // twice is fine
}

static int s_store (ar_router_t *router, const char *json)
{
    char error[512];
    int64_t version = 0;
    int rc = ar_routing_settings_put (router->settings, json, strlen (json), "test", &version,
                                      error, sizeof error);
    if (rc != 0)
        fprintf (stderr, "put: %s\n", error);
    assert (rc == 0);
    return (int)version;
}

//  With a routing config: its tree, the provider filter, the environment under the config.
static void s_test_config (void)
{
    char dir[] = "/tmp/ar_router_test.XXXXXX";
    assert (mkdtemp (dir));
    char db[256], err[512];
    snprintf (db, sizeof db, "%s/anyray.db", dir);
    ar_router_t *router = ar_router_new (db, err, sizeof err);
    assert (router && ar_router_version (router) == 0);
    ar_router_seed (router, 12345);
    char plan[AR_ROUTER_PLAN_SIZE];
    //  Nothing stored yet: the environment, version 0.
    assert (ar_router_plan (router, NULL, plan, sizeof plan) > 0);
    assert (strncmp (plan, "{\"version\":0,\"targets\":[{\"provider\":\"openai\"", 44) == 0);

    //  The example config: fallback(primary, loadbalance(anthropic, bedrock)).
    setenv ("ANYRAY_PROVIDER_URL_ANTHROPIC", "http://127.0.0.1:7/v1", 1);
    setenv ("ANYRAY_BEDROCK_REGION", "eu-west-3", 1);
    char *example = ar_buf_read_file (AR_ROUTING_SCHEMA_DIR "/routing.config.example.json", NULL);
    assert (example);
    assert (s_store (router, example) == 1);
    free (example);
    assert (ar_router_version (router) == 1);
    ar_route_facts_t facts = {NULL, "/v1/chat/completions", "gpt-4o-mini", NULL};
    int len = ar_router_plan (router, &facts, plan, sizeof plan);
    assert (len > 0 && (size_t)len == strlen (plan));
    json_t *parsed = json_loads (plan, 0, NULL);
    assert (parsed && json_integer_value (json_object_get (parsed, "version")) == 1);
    json_t *targets = json_object_get (parsed, "targets");
    assert (json_array_size (targets) == 2);
    json_decref (parsed);
    const char *primary =
        "{\"version\":1,\"targets\":[{\"provider\":\"openai\",\"base_url\":"
        "\"https://api.openai.com/v1\",\"name\":\"primary\",\"model\":\"gpt-4o\",\"attempts\":3,"
        "\"retry_on\":[429,500,502,503,504],\"backoff_ms\":250,\"max_backoff_ms\":8000,"
        "\"retry_after\":true,\"max_retry_after_ms\":60000,\"timeout_ms\":20000,"
        "\"fallback_on\":[429,500,502,503,504]},";
    assert (strncmp (plan, primary, strlen (primary)) == 0);
    //  The second target is drawn: anthropic (at the environment's URL) or bedrock (its own
    //  region, in its URL too; the environment's region is only a default).
    int anthropic = 0, bedrock = 0;
    for (int i = 0; i < 400; i++) {
        assert (ar_router_plan (router, &facts, plan, sizeof plan) > 0);
        if (strstr (plan, "{\"provider\":\"anthropic\",\"base_url\":\"http://127.0.0.1:7/v1\","
                          "\"attempts\":2,"))
            anthropic++;
        else if (strstr (plan, "{\"provider\":\"bedrock\",\"base_url\":\"https://bedrock-runtime."
                               "us-west-2.amazonaws.com\",\"model\":\"anthropic.claude-3-5-"
                               "sonnet-20240620-v1:0\",\"region\":\"us-west-2\",\"attempts\":2,"))
            bedrock++;
    }
    assert (anthropic + bedrock == 400 && anthropic > 220 && bedrock > 70);

    //  x-anyray-provider keeps the plan's targets of that provider, in order.
    facts.provider = "bedrock";
    assert (ar_router_plan (router, &facts, plan, sizeof plan) > 0);
    parsed = json_loads (plan, 0, NULL);
    targets = json_object_get (parsed, "targets");
    for (size_t i = 0; i < json_array_size (targets); i++)
        assert (
            strcmp (json_string_value (json_object_get (json_array_get (targets, i), "provider")),
                    "bedrock") == 0);
    json_decref (parsed);
    //  None of them: the environment's target of that provider.
    facts.provider = "azure-openai";
    setenv ("ANYRAY_AZURE_RESOURCE", "contoso", 1);
    assert (ar_router_plan (router, &facts, plan, sizeof plan) > 0);
    assert (strstr (plan, "{\"version\":1,\"targets\":[{\"provider\":\"azure-openai\",\"base_url\":"
                          "\"https://contoso.openai.azure.com\",\"attempts\":0,"));
    facts.provider = "nope";
    assert (ar_router_plan (router, &facts, plan, sizeof plan) == AR_ROUTER_UNKNOWN_PROVIDER);

    //  Conditional: metadata picks; no match and no default is its own code.
    s_store (router, "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":"
                     "{\"metadata.team\":\"eu\"},\"then\":\"eu\"}]},\"targets\":[{\"name\":\"eu\","
                     "\"provider\":\"bedrock\",\"region\":\"eu-central-1\"}]}");
    ar_route_facts_t eu = {NULL, "/v1/chat/completions", "m", "{\"team\":\"eu\"}"};
    assert (ar_router_plan (router, &eu, plan, sizeof plan) > 0);
    assert (strstr (plan, "\"version\":2") && strstr (plan, "\"region\":\"eu-central-1\""));
    ar_route_facts_t us = {NULL, "/v1/chat/completions", "m", "{\"team\":\"us\"}"};
    assert (ar_router_plan (router, &us, plan, sizeof plan) == AR_ROUTER_NO_MATCH);
    us.provider = "openai"; // the header does not override the config's refusal
    assert (ar_router_plan (router, &us, plan, sizeof plan) == AR_ROUTER_NO_MATCH);
    us.provider = "nope"; // an unknown provider is reported first
    assert (ar_router_plan (router, &us, plan, sizeof plan) == AR_ROUTER_UNKNOWN_PROVIDER);

    //  A config value wins over the environment's; the environment fills the rest. An
    //  explicit base_url wins over ANYRAY_PROVIDER_URL_<SLUG>, which wins over a region's URL.
    setenv ("ANYRAY_AZURE_DEPLOYMENT", "env-dep", 1);
    setenv ("ANYRAY_AZURE_API_VERSION", "2024-02-01", 1);
    setenv ("ANYRAY_PROVIDER_URL_BEDROCK", "http://127.0.0.1:8/", 1);
    setenv ("ANYRAY_VERTEX_PROJECT", "env-proj", 1);
    s_store (router, "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":["
                     "{\"name\":\"az\",\"provider\":\"azure-openai\",\"deployment\":\"cfg-dep\"},"
                     "{\"name\":\"br\",\"provider\":\"bedrock\",\"region\":\"ap-south-1\"},"
                     "{\"name\":\"vx\",\"provider\":\"google-vertex-ai\",\"location\":\"us-east5\","
                     "\"base_url\":\"https://vertex.example/\"}]}");
    len = ar_router_plan (router, NULL, plan, sizeof plan);
    assert (len > 0);
    assert (strstr (plan, "{\"provider\":\"azure-openai\",\"base_url\":\"https://contoso.openai."
                          "azure.com\",\"name\":\"az\",\"deployment\":\"cfg-dep\",\"api_version\":"
                          "\"2024-02-01\",\"attempts\":0,"));
    assert (strstr (plan, "{\"provider\":\"bedrock\",\"base_url\":\"http://127.0.0.1:8\",\"name\":"
                          "\"br\",\"region\":\"ap-south-1\","));
    assert (strstr (plan, "{\"provider\":\"google-vertex-ai\",\"base_url\":\"https://vertex."
                          "example\",\"name\":\"vx\",\"location\":\"us-east5\",\"project\":"
                          "\"env-proj\","));
    //  A buffer too small for the whole plan is refused, never cut.
    assert (ar_router_plan (router, NULL, plan, (size_t)len) == AR_ROUTER_CANNOT_PLAN);
    assert (ar_router_plan (router, NULL, plan, (size_t)len + 1) == len);

    //  Another handle's put is taken on poll; removing the config returns to the environment.
    ar_router_t *other = ar_router_new (db, err, sizeof err);
    assert (other && ar_router_version (other) == 3);
    char error[256];
    int64_t version = 0;
    assert (ar_routing_settings_put (other->settings, "null", 4, "test", &version, error,
                                     sizeof error) == 0 &&
            version == 4);
    assert (ar_router_poll (router) == 1 && ar_router_version (router) == 4);
    assert (ar_router_poll (router) == 0);
    assert (ar_router_plan (router, &us, plan, sizeof plan) == AR_ROUTER_UNKNOWN_PROVIDER);
    us.provider = NULL;
    assert (ar_router_plan (router, &us, plan, sizeof plan) > 0);
    assert (strstr (plan, "{\"version\":4,\"targets\":[{\"provider\":\"openai\""));
    ar_router_destroy (&other);
    ar_router_destroy (&router);

    //  A seed file that does not parse stops the start, with its path.
    char file[300];
    snprintf (file, sizeof file, "%s/routing.json", dir);
    FILE *out = fopen (file, "w");
    assert (out);
    fputs ("{\"strategy\":{\"mode\":\"single\"},\"targets\":[{\"provider\":\"openai\","
           "\"weight\":0}]}",
           out);
    fclose (out);
    setenv ("ANYRAY_ROUTING_CONFIG", file, 1);
    assert (!ar_router_new (db, err, sizeof err));
    assert (strstr (err, "targets[0].weight: must be a number above 0"));
    unsetenv ("ANYRAY_ROUTING_CONFIG");
    assert (!ar_router_new ("/nonexistent-dir/x/anyray.db", err, sizeof err));

    s_clear_env ();
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
}

//  Plans are cheap: a config plan per request, no allocation.
static void s_test_speed (bool verbose)
{
    char dir[] = "/tmp/ar_router_speed.XXXXXX";
    assert (mkdtemp (dir));
    char db[256], err[512];
    snprintf (db, sizeof db, "%s/anyray.db", dir);
    ar_router_t *router = ar_router_new (db, err, sizeof err);
    assert (router);
    char *example = ar_buf_read_file (AR_ROUTING_SCHEMA_DIR "/routing.config.example.json", NULL);
    s_store (router, example);
    free (example);
    char plan[AR_ROUTER_PLAN_SIZE];
    ar_route_facts_t facts = {NULL, "/v1/chat/completions", "gpt-4o", "{\"team\":\"a\"}"};
    const int rounds = 20000;
    struct timespec start, end;
    clock_gettime (CLOCK_MONOTONIC, &start);
    for (int i = 0; i < rounds; i++)
        assert (ar_router_plan (router, &facts, plan, sizeof plan) > 0);
    clock_gettime (CLOCK_MONOTONIC, &end);
    double us =
        ((double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec)) / 1e3 /
        rounds;
    if (verbose)
        printf ("ar_router: %.2f us per plan (2 targets)\n", us);
    ar_router_destroy (&router);
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
}

void ar_router_test (bool verbose)
{
    s_clear_env ();
    s_test_environment ();
    s_test_config ();
    s_test_speed (verbose);
}
