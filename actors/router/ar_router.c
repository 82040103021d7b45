/*  ar_router: single-target routing from the environment. */
#include "ar_router.h"
#include "ar_env.h"
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Providers we know, with their public base URLs (OpenAI-SDK style, /v1 included).
static const struct {
    const char *slug;
    const char *base_url;
} s_providers[] = {
    {"openai", "https://api.openai.com/v1"},
};

struct ar_router_t {
    char default_provider[64];
};

ar_router_t *ar_router_new (void)
{
    ar_router_t *self = calloc (1, sizeof *self);
    if (self)
        snprintf (self->default_provider, sizeof self->default_provider, "%s",
                  ar_env_str ("ANYRAY_DEFAULT_PROVIDER", "openai"));
    return self;
}

void ar_router_destroy (ar_router_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

int ar_router_plan (ar_router_t *self, const char *provider, char *buf, size_t size)
{
    if (!provider || !*provider)
        provider = self->default_provider;
    for (size_t i = 0; i < sizeof s_providers / sizeof s_providers[0]; i++) {
        if (strcmp (provider, s_providers[i].slug) != 0)
            continue;
        char name[96] = "ANYRAY_PROVIDER_URL_";
        size_t n = strlen (name);
        for (const char *c = provider; *c && n + 1 < sizeof name; c++)
            name[n++] = *c == '-' ? '_' : (char)toupper ((unsigned char)*c);
        name[n] = 0;
        const char *url = ar_env_str (name, s_providers[i].base_url);
        //  A trailing slash would double up when the path is appended.
        size_t url_len = strlen (url);
        while (url_len && url[url_len - 1] == '/')
            url_len--;
        int len =
            snprintf (buf, size, "{\"targets\":[{\"provider\":\"%s\",\"base_url\":\"%.*s\"}]}",
                      provider, (int)url_len, url);
        return len > 0 && (size_t)len < size ? len : -1;
    }
    return -1;
}

void ar_router_handle (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    char plan[1024];
    int len = ar_router_plan (arg, ar_envelope_meta_get (&job->env, "provider"), plan, sizeof plan);
    if (len < 0) {
        ar_actor_error (actor, &job, 400, "unknown provider");
        return;
    }
    ar_envelope_set_status (&job->reply, 200, "OK");
    ar_actor_end (actor, &job, plan, (size_t)len);
}

void ar_router_test (bool verbose)
{
    unsetenv ("ANYRAY_PROVIDER_URL_OPENAI");
    unsetenv ("ANYRAY_DEFAULT_PROVIDER");
    ar_router_t *router = ar_router_new ();
    char plan[1024];
    assert (ar_router_plan (router, NULL, plan, sizeof plan) > 0);
    assert (strstr (plan, "\"base_url\":\"https://api.openai.com/v1\""));
    setenv ("ANYRAY_PROVIDER_URL_OPENAI", "http://127.0.0.1:9999/v1/", 1);
    assert (ar_router_plan (router, "openai", plan, sizeof plan) > 0);
    assert (strstr (plan, "\"base_url\":\"http://127.0.0.1:9999/v1\"")); // slash trimmed
    assert (ar_router_plan (router, "nope", plan, sizeof plan) == -1);
    assert (ar_router_plan (router, "openai", plan, 10) == -1);
    unsetenv ("ANYRAY_PROVIDER_URL_OPENAI");
    ar_router_destroy (&router);
    assert (router == NULL);
    (void)verbose;
}
