/*  ar_strategy_registry: every optimizer strategy kind Anyray knows, in the Configure page's
    order, with its default on/off state, its params (name, type, bounds, default) and whether
    it is built yet. It is the one table the config validator, the capabilities listing of the
    admin API and (later) the pipeline runner read: adding a strategy, or a param to one, is a
    new row in s_strategies (ar_strategy_registry.c) and nothing else.

    Kinds that are not built yet are still known, so a config naming them is valid, but they
    say "available": false instead of pretending to run.
*/
#ifndef AR_STRATEGY_REGISTRY_H
#define AR_STRATEGY_REGISTRY_H

#include "ar_strategy.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define AR_STRATEGY_MAX 64 // a config keeps per-kind sets as one uint64_t bit mask

typedef enum {
    AR_PARAM_INTEGER, // JSON integer within [min, max]
    AR_PARAM_NUMBER,  // JSON integer or real within [min, max]
    AR_PARAM_BOOLEAN, // true or false
    AR_PARAM_ENUM,    // one of the strings in choices
} ar_param_type_t;

typedef struct {
    const char *name;
    ar_param_type_t type;
    double min, max;            // INTEGER and NUMBER only
    const char *const *choices; // ENUM only, NULL-terminated
    const char *default_json;   // JSON text of the default; NULL = optional, no default
    const char *doc;
} ar_param_spec_t;

typedef struct {
    const char *kind;
    const char *doc;
    bool enabled;   // on in the default pipeline
    bool available; // built: the runner can execute it
    const ar_param_spec_t *params;
    size_t param_count;
    const ar_strategy_t *strategy; // the implementation when available, else NULL
} ar_strategy_info_t;

//  Number of kinds, and the kind at index (NULL past the end). Index order is the Configure
//  page's order, which is also the default pipeline's order.
size_t ar_strategy_registry_count (void);
const ar_strategy_info_t *ar_strategy_registry_at (size_t index);
//  Index of kind, or -1 when no such kind is registered (kind may be NULL).
int ar_strategy_registry_index (const char *kind);
const ar_strategy_info_t *ar_strategy_registry_find (const char *kind);

//  New object of the kind's params that have defaults (e.g. {"maxTokens":24000}).
json_t *ar_strategy_registry_default_params (const ar_strategy_info_t *info);

//  New JSON Schema (draft 2020-12) object for the kind's params: type object, no extra
//  properties, one property per param with type, bounds, default and description.
json_t *ar_strategy_registry_param_schema (const ar_strategy_info_t *info);

//  Check a params object for the kind: an object whose members are all known params of the
//  right type within bounds. path names the object in errors ("strategies[2].params"), and on
//  failure error holds "<path>.<param>: <reason>". Returns 0 or -1.
int ar_strategy_registry_check_params (const ar_strategy_info_t *info, const json_t *params,
                                       const char *path, char *error, size_t error_size);

//  The capabilities listing for GET /admin/optimizer/settings:
//  {"kinds":[{"kind","description","available","defaultEnabled","defaultParams","paramSchema"}]}
//  in registry order. New reference, NULL only when out of memory.
json_t *ar_strategy_registry_capabilities (void);
//  The same as compact JSON text; caller frees. NULL only when out of memory.
char *ar_strategy_registry_capabilities_json (void);

void ar_strategy_registry_test (bool verbose);

#endif
