/*  ar_optimizer_config: optimizer.config.json, parsed, validated and resolved per request.

    Shape (the Configure page; JSON Schema in schemas/config/optimizer.config.schema.json):

      { "strategies": [ { "kind", "enabled", "params" }, ... ],   array order = execution order
        "overrides": {
          "byEndpoint": { "<endpoint>": { "strategies": [ ... ] } },   replaces the base list
          "rules": [ { "when": { "endpoints", "models", "users", "teams", "metadata" },
                       "enable": [kinds], "disable": [kinds], "params": { kind: {...} } } ] },
        "retrieveTool": { "enabled": false, "maxCalls": 3 } }                optional

    Validation is strict so a typo is caught, not silently ignored: unknown fields anywhere
    (top level, entries, overrides, rules, when, params) are rejected, as are duplicate JSON
    keys, unknown or repeated kinds, wrong types and params outside the registry's schema. The
    only extra member allowed is a top-level "$schema" string, so editors can validate. Every
    error names the failing field path, e.g. "overrides.rules[1].when.models[0]: must be a
    string". "strategies" and each entry's "kind" and "enabled" are required; "params" defaults
    to {} and "overrides" to none.

    Matching: each of endpoints, models, users, teams is a glob string or a non-empty list of
    them (any one matching is enough); metadata is an object key -> glob or list, and every key
    must match. Globs are fnmatch(3) with no flags: "*" any run of characters including "/",
    "?" one character, "[...]" a set, "\" escapes; case-sensitive, whole value. A fact the
    request does not carry (NULL) matches nothing, not even "*". A rule applies when every
    matcher it has matches; "when": {} matches every request.

    Resolution for one request: the base list is overrides.byEndpoint[endpoint] when the
    endpoint is a key (exact match), else strategies[]. Matching rules then apply in order:
    enable turns kinds on, disable turns them off, and disable wins over enable across all the
    rules that matched, whatever their order. A kind enabled by a rule but absent from the base
    list is inserted where the registry's order puts it. params of a rule merge (member by
    member) over the entry's params, later rules over earlier ones; rule params alone do not
    enable a kind. Each resolved strategy's params are registry defaults <- entry params <-
    rule params, so a strategy always sees every param that has a default.

    Numbers are kept to 15 significant digits, so to_json -> parse -> to_json is byte-stable.
*/
#ifndef AR_OPTIMIZER_CONFIG_H
#define AR_OPTIMIZER_CONFIG_H

#include "ar_strategy_registry.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define AR_OPTIMIZER_CONFIG_MAX (1024 * 1024) // bytes of a config file we agree to read

typedef struct ar_optimizer_config_t ar_optimizer_config_t;
typedef struct ar_pipeline_t ar_pipeline_t;

typedef struct {
    const char *key;
    const char *value;
} ar_fact_pair_t;

//  What the rules match on for one request. Any field may be NULL (absent).
typedef struct {
    const char *endpoint; // e.g. "/v1/chat/completions"
    const char *model;
    const char *user; // identity from x-anyray-metadata
    const char *team;
    const ar_fact_pair_t *metadata; // x-anyray-metadata members, values as strings
    size_t metadata_count;
} ar_request_facts_t;

//  Parse and validate a config document of len bytes (at most AR_OPTIMIZER_CONFIG_MAX). NULL on
//  failure with the reason in error: the field path first ("strategies[2].enabled: ..."), or
//  "(document) line L column C: ..." when the text is not JSON.
ar_optimizer_config_t *ar_optimizer_config_parse (const char *json, size_t len, char *error,
                                                  size_t error_size);
//  The baked-in default (schemas/config/optimizer.config.default.json, embedded at build).
ar_optimizer_config_t *ar_optimizer_config_default (void);
//  Read and parse the file at path (at most AR_OPTIMIZER_CONFIG_MAX bytes).
ar_optimizer_config_t *ar_optimizer_config_load_file (const char *path, char *error,
                                                      size_t error_size);
//  The config named by ANYRAY_OPTIMIZER_CONFIG: the baked-in default when the variable is unset
//  or empty or the file does not exist yet (a fresh install runs on the seed); an error when
//  the file exists but cannot be read or is invalid, which the caller must not paper over.
ar_optimizer_config_t *ar_optimizer_config_load_env (char *error, size_t error_size);
void ar_optimizer_config_destroy (ar_optimizer_config_t **self_p);

//  Canonical JSON (two-space indent, fixed member order, matchers always lists); parsing it
//  gives back the same config. Caller frees; NULL only when out of memory.
char *ar_optimizer_config_to_json (const ar_optimizer_config_t *self);
//  The canonical document itself (borrowed, read-only), for embedding in an admin reply.
const json_t *ar_optimizer_config_document (const ar_optimizer_config_t *self);

//  The effective ordered pipeline of enabled strategies for one request, unavailable kinds
//  included (the runner skips and reports them). NULL only when out of memory. facts may be
//  NULL (no facts: only rules with "when": {} apply). Read-only on the config: safe to call
//  from several threads on one config.
ar_pipeline_t *ar_optimizer_config_resolve (const ar_optimizer_config_t *self,
                                            const ar_request_facts_t *facts);

size_t ar_pipeline_size (const ar_pipeline_t *self);
//  Step i (0 = runs first): its registry row (kind, available, ...) and its params object
//  (borrowed, valid until the pipeline is destroyed). NULL past the end.
const ar_strategy_info_t *ar_pipeline_strategy (const ar_pipeline_t *self, size_t i);
const char *ar_pipeline_kind (const ar_pipeline_t *self, size_t i);
const json_t *ar_pipeline_params (const ar_pipeline_t *self, size_t i);
//  [{"kind":..,"params":{..}}, ...] compact; caller frees.
char *ar_pipeline_to_json (const ar_pipeline_t *self);
void ar_pipeline_destroy (ar_pipeline_t **self_p);

//  Whether the model is offered the gateway's retrieve tool ("retrieveTool": {"enabled":
//  true, "maxCalls": N}; off when absent), and how many rounds of it one call may take.
bool ar_optimizer_config_retrieve_tool (const ar_optimizer_config_t *self, int *max_calls);

void ar_optimizer_config_test (bool verbose);

#endif
