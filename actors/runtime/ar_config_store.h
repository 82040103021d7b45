/*  ar_config_store: versions of the runtime-mutable config and the admin audit log.

    Tables `config_versions` and `audit_log` (schemas/migrations/0003_config_audit.sql) in the
    shared <ANYRAY_DATA_DIR>/anyray.db (WAL), migrated on open by ar_sqlite like the spend
    store and the stash, so every replica of every actor sees the same versions.

    A put appends version latest + 1 of a config kind and its audit row in ONE transaction
    (BEGIN IMMEDIATE: writers on other handles or processes queue on the write lock), so two
    admins or replicas racing get distinct consecutive versions, and no version exists without
    its audit row. The audit row of a put is content-free: action "config.put", target the
    kind, detail {"kind","version","bytes","sha256"} (SHA-256 of the body as lower-case hex);
    the body itself never reaches audit_log (provider keys will live in bodies).

    audit_log.ts_ms is the wall clock, raised to (previous newest + 1) when that is later, in the
    same write-locked transaction: the log has a strict order that matches commit order across
    replicas, so "newest first" and polling with since_ms never tie or skip. Under bursts of
    more than one entry per ms, or after a replica with a clock running ahead wrote, entries
    are stamped a little later than the wall clock.

    Bodies are opaque UTF-8 text (the store never parses them); kinds and actions are short
    identifiers. One handle per thread (SQLite opened NOMUTEX). Nothing here logs;
    ar_config_store_error gives a content-free reason for the last failure.
*/
#ifndef AR_CONFIG_STORE_H
#define AR_CONFIG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_CONFIG_KIND_MAX       64             // bytes of a kind or an action: [a-z0-9_.-]
#define AR_CONFIG_ACTOR_MAX      128            // bytes of an actor, UTF-8, no controls
#define AR_CONFIG_TARGET_MAX     256            // bytes of an audit target, same rules
#define AR_CONFIG_BODY_MAX       (1024u * 1024) // bytes of one config body
#define AR_CONFIG_DETAIL_MAX     4096           // bytes of an audit detail (compact JSON)
#define AR_CONFIG_AUDIT_LIST_MAX 1000           // most entries one audit_list returns
#define AR_CONFIG_AUDIT_ID_LEN   32             // hex digits of an audit row id
#define AR_CONFIG_PUT_ACTION     "config.put"   // the action of a config write's audit row

typedef struct ar_config_store_t ar_config_store_t;

//  Open or create the database at db_path, switch it to WAL and apply the migrations this
//  store knows (0003). NULL on failure.
ar_config_store_t *ar_config_store_new (const char *db_path);
//  The same, with the reason for a failure in *error (content-free; valid until the next call
//  on this thread) when error is not NULL.
ar_config_store_t *ar_config_store_open (const char *db_path, const char **error);
void ar_config_store_destroy (ar_config_store_t **self_p);

//  Append body as the next version of kind, written by actor (token id or "console", never a
//  token), with its content-free audit row, in one transaction. kind: 1..AR_CONFIG_KIND_MAX
//  bytes of [a-z0-9_.-]; body: valid UTF-8, at most AR_CONFIG_BODY_MAX bytes (may be empty);
//  actor: 1..AR_CONFIG_ACTOR_MAX bytes of UTF-8 without control characters. Returns 0 with
//  the new version in *version_out (when not NULL), or -1 with nothing written.
int ar_config_store_put (ar_config_store_t *self, const char *kind, const char *body,
                         const char *actor, int64_t *version_out);

//  The newest body of kind (caller frees) and its version in *version_out. NULL with version
//  0 when kind has no version yet; NULL with version -1 on a bad kind or a database error.
char *ar_config_store_latest (ar_config_store_t *self, const char *kind, int64_t *version_out);

//  The newest version of kind, 0 when none, -1 on a bad kind or an error. One index lookup:
//  the poll every replica runs each second as the backstop to the announcement.
int64_t ar_config_store_version (ar_config_store_t *self, const char *kind);

//  The body of kind at version (caller frees), or NULL when there is none (or on error).
char *ar_config_store_get (ar_config_store_t *self, const char *kind, int64_t version);

//  Record an admin action that is not a config write (e.g. "content_mode.set",
//  "admin.unauthorized"). action: like a kind; target: NULL or UTF-8 without controls, at
//  most AR_CONFIG_TARGET_MAX bytes (a slug, never a value); detail_json: NULL or a JSON object
//  of at most AR_CONFIG_DETAIL_MAX bytes once compacted. The caller keeps it content-free.
//  Returns 0 or -1.
int ar_config_store_audit (ar_config_store_t *self, const char *actor, const char *action,
                           const char *target, const char *detail_json);

//  The audit entries with ts_ms > since_ms (0: all), newest first, at most limit of them
//  (1..; larger than AR_CONFIG_AUDIT_LIST_MAX is clamped to it), as a JSON array of
//  {"id","ts_ms","actor","action","target","detail"} (target and detail may be null; detail
//  is an object). Caller frees. NULL on bad arguments (since_ms < 0, limit < 1) or error.
char *ar_config_store_audit_list (ar_config_store_t *self, int64_t since_ms, int limit);

//  How long one statement waits for another writer's lock, in ms (default 2000).
void ar_config_store_set_busy_timeout (ar_config_store_t *self, int ms);
//  The wall clock (Unix epoch ms) for created_ms and ts_ms; NULL restores the real one. Tests.
void ar_config_store_set_clock (ar_config_store_t *self, int64_t (*now_ms) (void *arg), void *arg);
//  SQLite's, OpenSSL's or a static message for the last failure (content-free), or "".
const char *ar_config_store_error (ar_config_store_t *self);

void ar_config_store_test (bool verbose);

#endif
