/*  ar_config_settings: one running config of one kind, kept in step with the versions in the
    shared config store (ar_config_store), seeded from a file. The engine under
    ar_optimizer_settings and ar_routing_settings; a class (below) says how its documents parse.

    The store is the source of truth: a put reaches every replica (each polls one indexed
    lookup) and survives restarts. The file named by the class's environment variable only
    seeds it: an empty store takes the seed; a file whose canonical text differs from the one
    it last seeded (kept as kind seed_kind) is written as a new version, so editing the file and
    restarting does what the operator expects while admin changes survive restarts that did not
    touch the file. A class's baked-in default (a seed without a file) only fills an empty store.
    A seed that does not parse stops the start: running on something else would hide the
    operator's mistake.

    Every version is stored in canonical form (the class's to_json). A version that does not
    parse (only a hand edit of the database can store one) is skipped once: the running object
    stays. One object per thread (the store handle is single-threaded).
*/
#ifndef AR_CONFIG_SETTINGS_H
#define AR_CONFIG_SETTINGS_H

#include "ar_config_store.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *kind;      // the store kind of the versions, e.g. "routing"
    const char *seed_kind; // the last seed written, e.g. "routing.seed"
    const char *seed_env;  // the environment variable that names the seed file
    const char *name;      // for messages: "the stored <name> config cannot be loaded"
    //  Non-zero: a JSON null document of at most this many bytes means "no config" (stored as
    //  "null"; the object is then NULL). Zero: null is just an invalid document, and a store
    //  that holds no valid version stops the start.
    size_t none_max;
    //  The seed: path is the seed file when it exists, else NULL. Sets *object (NULL: nothing to
    //  seed) and returns 0, or returns -1 with a content-free reason in error.
    int (*load_seed) (const char *path, void **object, char *error, size_t error_size);
    //  A whole document: the object, or NULL with "<field path>: <why>" in error.
    void *(*parse) (const char *text, size_t len, char *error, size_t error_size);
    char *(*to_json) (const void *object); // canonical text (caller frees), NULL when out of memory
    void (*destroy) (void *object);
} ar_config_settings_class_t;

typedef struct ar_config_settings_t ar_config_settings_t;

//  Open the store at db_path, seed it and load the newest version. NULL on failure with a
//  content-free reason (a field path for a bad seed) in error. cls must outlive the object.
ar_config_settings_t *ar_config_settings_new (const ar_config_settings_class_t *cls,
                                              const char *db_path, char *error, size_t error_size);
void ar_config_settings_destroy (ar_config_settings_t **self_p);

//  Take the newest stored version when it is newer than the newest looked at. Returns 1 when
//  the running object changed, 0 when current, -1 when the store could not be read or the
//  stored text does not parse (the running object is kept).
int ar_config_settings_poll (ar_config_settings_t *self);

//  The running object (NULL for "no config"; valid until the next poll or put), its version
//  (0 when none), and the newest version looked at (a skipped bad one included).
const void *ar_config_settings_object (ar_config_settings_t *self);
int64_t ar_config_settings_version (ar_config_settings_t *self);
int64_t ar_config_settings_seen (ar_config_settings_t *self);

//  Validate json and store its canonical text as the next version, written by actor, with its
//  content-free audit row. Returns 0 with the version in *version_out (the running object is
//  the new one); 400 when the document is invalid (error from parse; nothing stored); 500 when
//  the store refused the write.
int ar_config_settings_put (ar_config_settings_t *self, const char *json, size_t len,
                            const char *actor, int64_t *version_out, char *error,
                            size_t error_size);

ar_config_store_t *ar_config_settings_store (ar_config_settings_t *self);

void ar_config_settings_test (bool verbose);

#endif
