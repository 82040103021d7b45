/*  ar_admin: the admin API (/admin/...), behind the single ANYRAY_ADMIN_TOKEN.

    Without the token set the API is off and says so (403 admin_disabled) rather than
    pretending the path does not exist. With it, every request needs "Authorization: Bearer
    <token>"; the compare is of SHA-256 digests with CRYPTO_memcmp, so neither the token's
    bytes nor its length leak through timing. The token is never logged or echoed.

        GET  /admin/optimizer/settings   {"version","config","capabilities"}
        PUT  /admin/optimizer/settings   a whole optimizer.config.json, or {"config": {...}}
                                         (GET's reply with edits); 400 names the field path and
                                         leaves the running config untouched
        GET  /admin/optimizer/stats      this edge's optimizer counters (ar_optimizer_stats)
        GET  /admin/audit                ?since_ms=&limit= newest first, content-free

    Writes go to the shared config store, where every optimizer replica polls for them; every
    write and every refused write is in the audit log with who (x-anyray-admin-actor when the
    console names its user, else "admin"), what and when, never the body.
*/
#ifndef AR_ADMIN_H
#define AR_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ar_admin_t ar_admin_t;

typedef struct {
    const char *method;
    const char *path;          // without the query string
    const char *authorization; // the header, or NULL
    const char *actor;         // x-anyray-admin-actor, or NULL
    const char *since_ms;      // query arguments, or NULL
    const char *limit;
    const char *body;
    size_t body_len;
} ar_admin_request_t;

//  The stats document for GET /admin/optimizer/stats (caller frees), from the edge.
typedef char *(ar_admin_stats_fn)(void *arg);

//  token NULL or empty: the API is off. db_path: the shared anyray.db. NULL on failure (the
//  store cannot be opened or the seed config is invalid) with the reason in error.
ar_admin_t *ar_admin_new (const char *token, const char *db_path, ar_admin_stats_fn *stats,
                          void *stats_arg, char *error, size_t error_size);
void ar_admin_destroy (ar_admin_t **self_p);

bool ar_admin_enabled (ar_admin_t *self);

//  Answer one request under /admin. Returns the HTTP status; *reply is a JSON body (caller
//  frees), errors in the OpenAI shape.
int ar_admin_handle (ar_admin_t *self, const ar_admin_request_t *request, char **reply);

void ar_admin_test (bool verbose);

#endif
