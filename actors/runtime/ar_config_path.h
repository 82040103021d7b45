/*  ar_config_path: the field paths a config parser names in its errors ("targets[1].retry",
    "endpoints[\"/v1/chat\"]"), shared by ar_optimizer_config and ar_routing_config so both
    report a bad document the same way.

    A path that does not fit AR_CONFIG_PATH_MAX ends in "..." rather than being cut silently.
*/
#ifndef AR_CONFIG_PATH_H
#define AR_CONFIG_PATH_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define AR_CONFIG_PATH_MAX 512 // bytes of a path buffer, its NUL included

//  "<path>: <fmt...>" into error (nothing when error is NULL or size is 0). Returns -1, what a
//  parser returns on failure.
int ar_config_path_fail (char *error, size_t size, const char *path, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
int ar_config_path_vfail (char *error, size_t size, const char *path, const char *fmt, va_list args)
    __attribute__ ((format (printf, 4, 0)));

//  Into out (AR_CONFIG_PATH_MAX bytes): path.name (name at the top level), path[i], and
//  path["key"] (map keys are user text, so they are quoted).
void ar_config_path_join (char *out, const char *path, const char *name);
void ar_config_path_index (char *out, const char *path, size_t i);
void ar_config_path_key (char *out, const char *path, const char *key);

//  "an object", "a list", "a string", "a number", "a boolean" or "null", for "must be X, not Y".
const char *ar_config_path_type_of (const json_t *v);

void ar_config_path_test (bool verbose);

#endif
