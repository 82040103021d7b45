/*  ar_routing_settings: the running routing config of one process, kept in step with the
    versions in the shared config store (ar_config_store, kind "routing"), like
    ar_optimizer_settings is for the optimizer.

    The store is the source of truth: an admin PUT reaches every router replica (each polls one
    indexed lookup) and survives restarts. ANYRAY_ROUTING_CONFIG may name a file that seeds it:
    an empty store takes it; a file whose canonical text differs from the one it last seeded
    (kept as kind "routing.seed") is written as a new version. Without a file and without a
    stored version there is no routing config: the router plans from the environment.
    A file that exists but does not parse stops the start (new fails with its field path).

    Every version is stored in canonical form. A put of JSON null removes the config (stored
    as the text "null"; the router plans from the environment again). One object per thread.
*/
#ifndef AR_ROUTING_SETTINGS_H
#define AR_ROUTING_SETTINGS_H

#include "ar_config_store.h"
#include "ar_routing_config.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_ROUTING_SETTINGS_KIND "routing"
#define AR_ROUTING_SEED_KIND     "routing.seed"

typedef struct ar_routing_settings_t ar_routing_settings_t;

ar_routing_settings_t *ar_routing_settings_new (const char *db_path, char *error,
                                                size_t error_size);
void ar_routing_settings_destroy (ar_routing_settings_t **self_p);

//  1: the running config changed, 0: current, -1: store unreadable or the stored text does not
//  parse (the running config is kept).
int ar_routing_settings_poll (ar_routing_settings_t *self);

//  The running config (NULL when none is stored; valid until the next poll or put) and its
//  version (0 when none).
const ar_routing_config_t *ar_routing_settings_config (ar_routing_settings_t *self);
int64_t ar_routing_settings_version (ar_routing_settings_t *self);

//  The running config as a JSON document (new reference): the canonical config, or JSON null.
json_t *ar_routing_settings_document (ar_routing_settings_t *self);

//  Validate json as a whole routing config and store it as the next version, written by actor,
//  with its content-free audit row. Returns 0 with the version in *version_out; 400 when the
//  document is invalid (error is "<field path>: <why>", e.g.
//  "targets[1].retry.attempts: must be an integer from 0 to 10"; "(document): ..." for the
//  whole; nothing stored, the running config untouched); 500 when the store refused the write.
int ar_routing_settings_put (ar_routing_settings_t *self, const char *json, size_t len,
                             const char *actor, int64_t *version_out, char *error,
                             size_t error_size);

ar_config_store_t *ar_routing_settings_store (ar_routing_settings_t *self);

void ar_routing_settings_test (bool verbose);

#endif
