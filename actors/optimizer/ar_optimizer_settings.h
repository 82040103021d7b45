/*  ar_optimizer_settings: the running optimizer.config.json of one process, kept in step with
    the versions in the shared config store (ar_config_store, kind "optimizer").

    The store is the source of truth, so an admin change reaches every replica (each polls one
    indexed lookup, ar_optimizer_settings_poll) and survives restarts. The file named by
    ANYRAY_OPTIMIZER_CONFIG (or, without one, the baked-in default) only seeds it:
      - an empty store is seeded with it;
      - an explicit file whose canonical text differs from what it last seeded (kept as kind
        "optimizer.seed") is written as a new version, so editing the file and restarting
        does what the operator expects, while admin changes survive restarts that did not
        touch the file. The baked-in default never overrides a stored version: an upgrade
        must not undo an admin's edits.
    A file that exists but does not parse stops the start (ar_optimizer_settings_new fails
    with its field path): running on something else would hide the operator's mistake.

    Every version is stored in canonical form (ar_optimizer_config_to_json). One object per
    thread (the store handle is single-threaded).
*/
#ifndef AR_OPTIMIZER_SETTINGS_H
#define AR_OPTIMIZER_SETTINGS_H

#include "ar_config_store.h"
#include "ar_optimizer_config.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_OPTIMIZER_SETTINGS_KIND "optimizer"
#define AR_OPTIMIZER_SEED_KIND     "optimizer.seed"

typedef struct ar_optimizer_settings_t ar_optimizer_settings_t;

//  Open the store at db_path, seed it (see above) and load the newest version. NULL on
//  failure with a content-free reason (a field path for a bad file) in error.
ar_optimizer_settings_t *ar_optimizer_settings_new (const char *db_path, char *error,
                                                    size_t error_size);
void ar_optimizer_settings_destroy (ar_optimizer_settings_t **self_p);

//  Take the newest stored version when it is newer than the running one. Returns 1 when the
//  running config changed, 0 when it is current, -1 when the store could not be read or the
//  stored text does not parse (the running config is kept).
int ar_optimizer_settings_poll (ar_optimizer_settings_t *self);

//  The running config (valid until the next poll or put) and its version.
const ar_optimizer_config_t *ar_optimizer_settings_config (ar_optimizer_settings_t *self);
int64_t ar_optimizer_settings_version (ar_optimizer_settings_t *self);

//  Validate json as a whole optimizer.config.json and store it as the next version, written
//  by actor, with its content-free audit row. On success the running config is the new one
//  and its version is in *version_out. Returns 0; 400 when the document is invalid (error
//  names the failing field path; nothing stored, the running config untouched); 500 when the
//  store refused the write.
int ar_optimizer_settings_put (ar_optimizer_settings_t *self, const char *json, size_t len,
                               const char *actor, int64_t *version_out, char *error,
                               size_t error_size);

//  The store itself, for the audit log the admin API also reads and writes.
ar_config_store_t *ar_optimizer_settings_store (ar_optimizer_settings_t *self);

void ar_optimizer_settings_test (bool verbose);

#endif
