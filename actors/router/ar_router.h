/*  ar_router: the ROUTE service: request facts in, an ordered plan of targets out.

    With no routing config stored (GET /admin/routing-config says null) the plan has one target:
    the provider named by x-anyray-provider (facts->provider), else the one the endpoint implies
    (Anthropic's SDK: ANYRAY_ANTHROPIC_SDK_PROVIDER, default anthropic), else
    ANYRAY_DEFAULT_PROVIDER (openai), at ANYRAY_PROVIDER_URL_<SLUG> or the provider's public base
    URL, with the provider's settings from the environment.

    With a routing config (ar_routing_config.h; kind "routing" in the shared config store, polled
    by ar_router_poll), the config's strategy tree is walked for this request: single takes its
    first target, loadbalance draws one target by weight, conditional takes the target its first
    matching condition names (else its default), fallback lists its targets in order. Nested
    groups are flattened the same way. When x-anyray-provider is given, only the plan's targets
    of that provider are kept (in order); when none is left, the plan is the single
    environment target of that provider.

    A config target's settings are its own, else the environment's: base_url (or an Azure
    resource), else ANYRAY_PROVIDER_URL_<SLUG>, else the URL its region/location/resource
    implies; deployment, api_version, region, project, location likewise.

    Keys never appear in a plan: the provider actor holds them. Plan body (compact JSON):

    {"version":3,"targets":[
      {"provider":"openai","base_url":"https://api.openai.com/v1",
       "name":"primary",                    optional, the config's target name
       "model":"gpt-4o",                    only when the target overrides the model
       "deployment":"..","api_version":"..","region":"..","project":"..","location":"..",
                                            the provider's settings, strings, when known
       "attempts":2,                        retries after the first try (0: none)
       "retry_on":[429,500,502,503,504],    statuses that are retried (transport errors always are)
       "backoff_ms":250,"max_backoff_ms":8000,  exponential backoff with jitter
       "retry_after":true,                  a retry waits at least the upstream's Retry-After
       "max_retry_after_ms":60000,          a longer Retry-After: no retry on this target
       "timeout_ms":30000,                  one try's timeout (absent: the edge's default)
       "fallback_on":[429,500,502,503,504]  present only inside a fallback: on these statuses,
                                            and on transport errors and timeouts, the edge moves
                                            on to the next target once the retries are spent
      }, ...]}

    "version" is the routing config version (0: none stored).
*/
#ifndef AR_ROUTER_H
#define AR_ROUTER_H

#include "ar_actor.h"
#include <stdint.h>

typedef struct ar_router_t ar_router_t;

//  What a plan may depend on. Every member may be NULL.
typedef struct {
    const char *provider; // x-anyray-provider
    const char *endpoint; // the edge's endpoint path, e.g. "/v1/chat/completions"
    const char *model;    // the request body's model
    const char *metadata; // x-anyray-metadata's scalar members, a compact JSON object
} ar_route_facts_t;

//  db_path: the shared anyray.db holding the routing config; NULL: the environment only (no
//  config is ever read). NULL on failure (the store cannot be opened, or the seed file named by
//  ANYRAY_ROUTING_CONFIG is invalid) with a content-free reason in error.
ar_router_t *ar_router_new (const char *db_path, char *error, size_t error_size);
void ar_router_destroy (ar_router_t **self_p);

//  Take the newest stored routing config. 1: it changed, 0: current, -1: the store could not
//  be read (the running config is kept).
int ar_router_poll (ar_router_t *self);
int64_t ar_router_version (ar_router_t *self);

#define AR_ROUTER_UNKNOWN_PROVIDER (-1)        // 400 "unknown provider"
#define AR_ROUTER_CANNOT_PLAN      (-2)        // 500: the plan does not fit or cannot be made
#define AR_ROUTER_NO_MATCH         (-3)        // 400 "no routing target matches"
#define AR_ROUTER_PLAN_SIZE        (64 * 1024) // fits any plan the config limits allow

//  Write the plan for facts into buf. Returns its length; -1 when the provider asked for is
//  unknown; -2 when the plan does not fit or cannot be made; -3 when a conditional group
//  matched nothing and has no default, leaving no target (the request fails with 400).
int ar_router_plan (ar_router_t *self, const ar_route_facts_t *facts, char *buf, size_t size);

//  Reseed the loadbalance draws (the router seeds itself from getrandom). Tests.
void ar_router_seed (ar_router_t *self, uint64_t seed);

//  Actor callback; arg is the ar_router_t. Reads meta provider, endpoint, model, metadata.
//  Errors: 400 "unknown provider", 400 "no routing target matches", 500 "routing plan failed".
void ar_router_handle (ar_actor_t *actor, ar_job_t *job, void *arg);

void ar_router_test (bool verbose);

#endif
