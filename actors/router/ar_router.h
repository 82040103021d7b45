/*  ar_router: the ROUTE service: request metadata in, an ordered plan of targets out.

    For now the plan has one target: the provider named by x-anyray-provider (meta
    "provider"), else the one the endpoint implies (Anthropic's SDK: anthropic, or
    ANYRAY_ANTHROPIC_SDK_PROVIDER), else
    ANYRAY_DEFAULT_PROVIDER (openai), at ANYRAY_PROVIDER_URL_<SLUG> or the provider's public
    base URL, with the provider's own settings. Keys never appear in a plan: the provider
    actor holds them. Plan body:
    {"targets":[{"provider":"bedrock","base_url":"https://bedrock-runtime.us-east-1.amazonaws.com",
                 "region":"us-east-1"}]}
*/
#ifndef AR_ROUTER_H
#define AR_ROUTER_H

#include "ar_actor.h"

typedef struct ar_router_t ar_router_t;

ar_router_t *ar_router_new (void);
void ar_router_destroy (ar_router_t **self_p);

//  Write the plan for provider (NULL: the endpoint's, else the default) into buf. Returns
//  length, or -1 when the provider is unknown.
int ar_router_plan (ar_router_t *self, const char *provider, const char *endpoint, char *buf,
                    size_t size);

//  Actor callback; arg is the ar_router_t.
void ar_router_handle (ar_actor_t *actor, ar_job_t *job, void *arg);

void ar_router_test (bool verbose);

#endif
