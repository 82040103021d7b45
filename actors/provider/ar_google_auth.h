/*  ar_google_auth: OAuth2 access tokens for Google Vertex AI from a service account.

    Google wants "Authorization: Bearer <access token>". A service account gets one by signing a
    JWT assertion (RS256, with its private key) and POSTing it to its token_uri with
    grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer; the reply carries access_token and
    expires_in (about an hour). This file has the pure pieces of that exchange: parse the
    service-account JSON, build the assertion and the form body, parse the reply, and cache the
    token across calls. It does no I/O: the provider engine runs the POST on its curl multi handle
    (never blocking) and reads files itself.

    Secrets here (the private key, assertions, bodies, access tokens) are never printed, error
    texts name fields and never their values, and copies are wiped when freed.
*/
#ifndef AR_GOOGLE_AUTH_H
#define AR_GOOGLE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

//  The scope asked for when the caller gives none: all of Google Cloud, which Vertex AI needs.
#define AR_GOOGLE_SCOPE_CLOUD_PLATFORM "https://www.googleapis.com/auth/cloud-platform"
#define AR_GOOGLE_TOKEN_URI_DEFAULT    "https://oauth2.googleapis.com/token"

typedef struct ar_google_account_t ar_google_account_t;

//  Parse a service-account key file's JSON: type "service_account", client_email, private_key
//  (PEM, an unencrypted RSA key of at least 2048 bits, PKCS#8 or PKCS#1), and optionally
//  private_key_id (sent as the JWT "kid"), token_uri (https; plain http only to loopback, for
//  tests) and project_id. Returns NULL on error with a reason in error (which may be NULL),
//  naming the field. The caller wipes its copy of json.
ar_google_account_t *ar_google_account_parse (const char *json, size_t len, char *error,
                                              size_t error_size);
//  Wipes the key material.
void ar_google_account_destroy (ar_google_account_t **self_p);

//  project_id, or NULL when the file has none.
const char *ar_google_account_project_id (ar_google_account_t *self);
const char *ar_google_account_client_email (ar_google_account_t *self);
//  token_uri, or AR_GOOGLE_TOKEN_URI_DEFAULT when the file has none.
const char *ar_google_account_token_uri (ar_google_account_t *self);

//  The signed JWT assertion, valid from now for an hour, for scope (NULL: cloud-platform).
//  A fresh string the caller frees with ar_google_secret_free; NULL on failure.
char *ar_google_assertion (ar_google_account_t *acct, time_t now, const char *scope);

//  The form body to POST (Content-Type: application/x-www-form-urlencoded) to the token_uri:
//  grant_type=...jwt-bearer&assertion=<jwt>, for the cloud-platform scope. Free it with
//  ar_google_secret_free; NULL on failure.
char *ar_google_token_request_body (ar_google_account_t *acct, time_t now);

//  Parse the token endpoint's reply. On success returns 0 with *token a fresh string (free it
//  with ar_google_secret_free) and *expires_in in seconds (> 0). Returns -1 with *token NULL for
//  an error reply ({"error": ...}) or anything that is not a usable Bearer token.
int ar_google_token_parse (const char *body, size_t len, char **token, int64_t *expires_in);

//  Why ar_google_token_parse refuses body, fit to log: the endpoint's error code and a cleaned,
//  shortened error_description, or what is wrong with the reply. Never quotes a token or any
//  long opaque value. Writes "ok" when the reply parses.
void ar_google_token_reason (const char *body, size_t len, char *reason, size_t reason_size);

//  Wipe and free a secret string from this file, and set the pointer to NULL.
void ar_google_secret_free (char **secret_p);

//  ---------------------------------------------------------------------------
//  The token cache the provider keeps across calls. Single-threaded; times are monotonic ms.
//
//  Calls keep flowing during a refresh: _get hands out the token until it expires, while
//  _should_fetch asks for a background refresh once the token is inside its refresh margin
//  (5 minutes before expiry, or at half its life for tokens shorter than 10 minutes). The engine
//  does: if _should_fetch: _fetch_started, POST, then _fetch_done or _fetch_failed. After a
//  failure no fetch is asked for again until a back-off passes (1 s, doubling to 30 s).

typedef struct ar_google_token_cache_t ar_google_token_cache_t;

ar_google_token_cache_t *ar_google_token_cache_new (void);
//  Wipes the token.
void ar_google_token_cache_destroy (ar_google_token_cache_t **self_p);

//  The token while it is unexpired (a small skew short of expires_in), else NULL. The pointer
//  stays valid until the next _fetch_done or _destroy.
const char *ar_google_token_cache_get (ar_google_token_cache_t *self, int64_t now_ms);

//  True when no fetch is in flight, any back-off has passed, and the token is missing, expired
//  or inside its refresh margin.
bool ar_google_token_cache_should_fetch (ar_google_token_cache_t *self, int64_t now_ms);

//  When _should_fetch will next say true if nothing else happens (now or earlier: already), or
//  INT64_MAX while a fetch is in flight. For the engine's timer when calls wait for a token.
int64_t ar_google_token_cache_next_fetch_ms (ar_google_token_cache_t *self);

void ar_google_token_cache_fetch_started (ar_google_token_cache_t *self);

//  Store a fetched token (copied; the old one is wiped). Returns 0, or -1 if token is empty or
//  not header-safe or expires_in is not positive: then it counts as a failed fetch.
int ar_google_token_cache_fetch_done (ar_google_token_cache_t *self, const char *token,
                                      int64_t expires_in, int64_t now_ms);

//  The fetch failed (network, HTTP status, refused reply): back off before the next one. An
//  unexpired token stays usable meanwhile.
void ar_google_token_cache_fetch_failed (ar_google_token_cache_t *self, int64_t now_ms);

void ar_google_auth_test (bool verbose);

#endif
