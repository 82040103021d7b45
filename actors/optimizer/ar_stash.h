/*  ar_stash: the reversible stash. Content a strategy removes from a request is kept here,
    encrypted, under an id that goes into the elision marker; POST /v1/retrieve reads it back
    by that id until its TTL runs out.

    The id is the first 16 bytes, in hex, of HMAC-SHA256 of the content under a key derived
    from the content key (SHA-256 of "anyray.stash.id.v1" || key): the same original always
    gets the same id, so an agent loop that resends its history sees byte-identical markers
    turn after turn (providers' prompt caches keep working) and the table holds one row per
    distinct original; putting it again re-encrypts the row and refreshes its expiry. Without
    the key an id cannot be computed, so it reveals nothing about the content.

    Rows live in the `stash` table (schemas/migrations/0002_stash.sql) of the same database as
    the spend store (<ANYRAY_DATA_DIR>/anyray.db: WAL, busy_timeout), so every replica sees the
    rows of every other. Each row is AES-256-GCM with a fresh 12-byte random nonce; the AAD
    binds the row's id and expiry, so a row moved to another id, given a later expiry, or
    altered in any byte fails authentication and reads as missing. Only ciphertext reaches the
    database file.

    Row format (v1), for anything else that reads the table:
        key        32 bytes (ar_content_key: ANYRAY_CONTENT_KEY or <data dir>/content.key)
        nonce      12 random bytes; tag: 16 bytes (the full GCM tag)
        ciphertext AES-256-GCM of the original, same length (may be empty)
        AAD        "anyray.stash.v1" (15 ASCII bytes) || id (32 ASCII hex) || expires_ms
                   (8 bytes, big-endian two's complement)

    The migration is applied on open with the bookkeeping every runner shares
    (schema_migrations; versions are global, 0001 is the spend store's), one transaction per
    version under BEGIN IMMEDIATE, so replicas starting together apply it once.

    One handle per thread (SQLite opened NOMUTEX); open one per replica or worker. Nothing here
    logs; ar_stash_error gives SQLite's content-free message for the last failure.
*/
#ifndef AR_STASH_H
#define AR_STASH_H

#include "ar_strategy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_STASH_ID_LEN  32                  // hex digits of an id (16 random bytes)
#define AR_STASH_MAX     (64u * 1024 * 1024) // largest original accepted, in bytes
#define AR_STASH_TTL_MAX (366u * 24 * 3600)  // one year, in seconds

typedef struct ar_stash_t ar_stash_t;

//  Open or create the database at db_path, migrate it, and keep a copy of key (wiped on
//  destroy). Rows expire ttl_seconds after they are put (1..AR_STASH_TTL_MAX). NULL on failure.
ar_stash_t *ar_stash_new (const char *db_path, const uint8_t key[32], uint32_t ttl_seconds);
//  The same, with the reason for a failure in *error (SQLite's message or a static string;
//  content-free, valid until the next call on this thread) when error is not NULL.
ar_stash_t *ar_stash_open (const char *db_path, const uint8_t key[32], uint32_t ttl_seconds,
                           const char **error);
void ar_stash_destroy (ar_stash_t **self_p);

//  Encrypt and store content[0..len) under its id (the same content, the same id), written
//  (NUL-terminated) into id_out.
//  Returns 0, or -1 (nothing stored; id_out empty).
int ar_stash_put (ar_stash_t *self, const char *content, size_t len, char id_out[33]);

//  The original stored under id, NUL-terminated (len excludes the NUL; the content may hold
//  NULs); the caller frees it. NULL when id is malformed, missing, expired, or the row fails
//  authentication (wrong key, tampered row).
char *ar_stash_get (ar_stash_t *self, const char *id, size_t *len);

//  Delete every expired row. Returns the number deleted, or -1.
int ar_stash_sweep (ar_stash_t *self);

//  Group the puts that follow into one transaction until ar_stash_commit: a request whose
//  strategies stash dozens of originals (an agent conversation, one per cut turn) pays for one
//  commit instead of one each. Deferred: the write lock is taken by the first put, so a
//  request that stashes nothing takes none. Returns 0, or -1 (puts then commit one by one).
int ar_stash_begin (ar_stash_t *self);
//  Commit what was put since ar_stash_begin. Returns 0, or -1: it was rolled back and none of
//  those ids can be read back, so nothing that names them may go out.
int ar_stash_commit (ar_stash_t *self);

//  The adapter strategies call (ar_strategy.h); valid while self lives.
ar_stash_sink_t ar_stash_sink (ar_stash_t *self);

//  TTL for rows put from now on (the optimizer config may change it at run time). -1 if out
//  of range (unchanged).
int ar_stash_set_ttl (ar_stash_t *self, uint32_t ttl_seconds);
//  How long one statement waits on another replica's write lock, in ms (default 250).
void ar_stash_set_busy_timeout (ar_stash_t *self, int ms);
//  The wall clock (Unix epoch ms) used for created/expires; NULL restores the real one. Tests.
void ar_stash_set_clock (ar_stash_t *self, int64_t (*now_ms) (void *arg), void *arg);
//  SQLite's or OpenSSL's message for the last failure (content-free), or "".
const char *ar_stash_error (ar_stash_t *self);

void ar_stash_test (bool verbose);

#endif
