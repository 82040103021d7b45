/*  ar_routing_config: the gateway's routing config (GET/PUT /admin/routing-config), parsed,
    validated, canonicalized, and walked per request into the ordered targets of a plan.

    Shape (Portkey-style; JSON Schema in schemas/config/routing.config.schema.json, example in
    routing.config.example.json):

      { "$schema"?, "strategy": {...}, "retry"?: {...}, "request_timeout"?, "targets": [node] }

    A node is a group (has "strategy" and "targets"; may carry name, weight, retry,
    request_timeout) or a target (has "provider"). The root is a group without name or weight.

      strategy: {"mode": "single"}              the first target
                {"mode": "loadbalance"}         one target drawn by "weight" (> 0, default 1)
                {"mode": "fallback", "on_status_codes": [..]}   the targets in order; the edge
                        moves on on these statuses (400..599, default 429,500,502,503,504,529)
                        and always on transport errors and timeouts
                {"mode": "conditional", "conditions": [{"query": {..}, "then": "<name>"}],
                 "default": "<name>"}           the child named by the first matching condition,
                        else the default; "then" and "default" name direct children
      target:   provider (openai, anthropic, azure-openai, bedrock, google-vertex-ai), name
                ([A-Za-z0-9_.-]{1,64}, unique in the whole document), weight,
                override_params {"model"}, base_url (http(s), trailing slashes trimmed),
                resource | deployment | api_version (azure-openai only; resource makes the
                base URL https://<resource>.openai.azure.com), region (bedrock only), project |
                location (google-vertex-ai only), retry, request_timeout (ms, 100..600000)
      retry:    attempts 0..10 (0), on_status_codes (429,500,502,503,504,529), backoff_ms
                0..60000 (250), max_backoff_ms backoff_ms..300000 (8000; never below
                backoff_ms once merged), use_retry_after_header (true), max_retry_after_ms
                0..600000 (60000)

    retry and request_timeout are inherited from enclosing groups, retry member by member.
    Targets in a fallback carry its on_status_codes, united with any enclosing fallback's.

    Queries: an object whose members all hold. "$and"/"$or": non-empty lists of queries. Fields:
    "model", "provider" (x-anyray-provider), "endpoint", "metadata.<key>" (x-anyray-metadata's
    member; strings as they are, numbers and booleans as their JSON text). A field's value is a
    string, number or boolean (shorthand for $eq) or an object of operators, all of which hold:
    $eq, $ne (scalars), $in, $nin (non-empty lists of scalars), $glob (fnmatch(3): * ? [..]).
    Values compare as strings, case-sensitive. A fact the request lacks equals nothing: $eq,
    $in and $glob fail, $ne and $nin hold. $regex is refused (use $glob).

    Validation is strict: unknown members, wrong types and out-of-range values are refused with
    "<field path>: <why>" (e.g. "targets[1].targets[0].weight: must be a number above 0");
    "(document): ..." for text that is not a JSON object. The error is the first failing path
    in document order (each object's members in the order written, then its cross-member
    checks), so one document always gives one error. Limits: groups nest at most 8 deep, at
    most 64 targets and 32 conditions per list, 64 targets in all, strings at most 256 bytes.

    Read-only once parsed: several threads may walk one config.
*/
#ifndef AR_ROUTING_CONFIG_H
#define AR_ROUTING_CONFIG_H

#include "ar_rng.h"
#include "ar_router.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_ROUTING_CONFIG_MAX  (256 * 1024) // bytes of a routing document
#define AR_ROUTING_DEPTH_MAX   8            // levels of groups, the root's included
#define AR_ROUTING_TARGETS_MAX 64           // targets in one document
#define AR_ROUTING_LIST_MAX    64           // members of one targets list
#define AR_ROUTING_CONDS_MAX   32           // conditions of one conditional group
#define AR_ROUTING_STRING_MAX  256          // bytes of any string
#define AR_ROUTING_PLAN_MAX    16           // targets one plan lists
#define AR_ROUTING_NO_MATCH    (-3)         // select: no conditional matched, no default

typedef struct ar_routing_config_t ar_routing_config_t;

//  A set of HTTP statuses 400..599.
typedef struct {
    uint64_t bits[4];
} ar_status_set_t;

//  One target as a plan lists it: the config's values, inheritance and defaults applied.
//  The strings are NULL when the config does not give them (the environment's then apply).
typedef struct {
    const char *provider;    // slug
    const char *name;        // the target's own name
    const char *model;       // override_params.model
    const char *base_url;    // trimmed; from base_url, or resource for azure-openai
    const char *deployment;  // azure-openai
    const char *api_version; // azure-openai
    const char *region;      // bedrock
    const char *project;     // google-vertex-ai
    const char *location;    // google-vertex-ai
    int attempts;            // retries after the first try
    ar_status_set_t retry_on;
    int backoff_ms, max_backoff_ms;
    bool retry_after;
    int max_retry_after_ms;
    int timeout_ms; // 0: not configured
    bool in_fallback;
    ar_status_set_t fallback_on; // when in_fallback
    //  The plan members that depend on the config alone, prebuilt: `"name":..,"model":..`
    //  (may be empty) and `"attempts":..` up to fallback_on (see ar_router.h). Never NULL.
    const char *plan_head;
    const char *plan_tail;
} ar_routing_target_t;

//  Parse and validate a document of len bytes (at most AR_ROUTING_CONFIG_MAX). NULL on failure
//  with "<field path>: <why>" in error.
ar_routing_config_t *ar_routing_config_parse (const char *json, size_t len, char *error,
                                              size_t error_size);
//  The same for a file's contents; a file that cannot be read is "(document): ..." too.
ar_routing_config_t *ar_routing_config_load_file (const char *path, char *error, size_t error_size);
void ar_routing_config_destroy (ar_routing_config_t **self_p);

//  Canonical text (two-space indent, fixed member order, status lists sorted, base URLs
//  trimmed, integral numbers as integers); parsing it gives the same config. Caller frees;
//  NULL only when out of memory.
char *ar_routing_config_to_json (const ar_routing_config_t *self);
//  The canonical document (borrowed, read-only).
const json_t *ar_routing_config_document (const ar_routing_config_t *self);

//  The ordered targets for one request (facts may be NULL: no facts), at most max of them
//  (the rest are dropped), into out. Loadbalance draws from rng. A conditional group that
//  matches nothing and has no default contributes no target (so a fallback moves past it).
//  Returns how many (>= 1), or AR_ROUTING_NO_MATCH when that leaves none. No allocation.
int ar_routing_config_select (const ar_routing_config_t *self, const ar_route_facts_t *facts,
                              ar_rng_t *rng, const ar_routing_target_t **out, size_t max);

//  How many targets the document has in all.
size_t ar_routing_config_target_count (const ar_routing_config_t *self);

//  Whether status is in set; add one (400..599, others ignored).
bool ar_status_set_has (const ar_status_set_t *set, int status);
void ar_status_set_add (ar_status_set_t *set, int status);
//  The default retry and fallback statuses: 429, 500, 502, 503, 504, 529.
ar_status_set_t ar_status_set_default (void);
//  `[429,500]` into buf; the length, or -1 when it does not fit.
int ar_status_set_json (const ar_status_set_t *set, char *buf, size_t size);

//  The plan tail of a target with no config (the environment's plan): default retry settings,
//  no retries. Static.
const char *ar_routing_default_tail (void);

//  Whether slug is a provider the gateway knows.
bool ar_routing_known_provider (const char *slug);

void ar_routing_config_test (bool verbose);

#endif
