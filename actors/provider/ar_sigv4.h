/*  ar_sigv4: AWS Signature Version 4, for the Bedrock runtime (and any other non-S3 service).

    AWS authenticates each request by an HMAC-SHA256 over a canonical form of it: method,
    path, query, the headers chosen for signing and a hash of the body. The signer builds that
    canonical request, the string to sign over it, derives the day's signing key from the secret
    key and returns the Authorization header with the few headers that must travel with it.

    The URL is taken as it goes on the wire: its path is already percent-encoded (a Bedrock
    model id's ':' travels as %3A), and for every service except S3 the canonical URI encodes
    each path segment once more (%3A becomes %253A), after removing empty, "." and ".."
    segments. The query is decoded and re-encoded strictly, then sorted. The host signed is the
    one curl sends: host[:port], without the scheme's default port.

    The secret key never leaves this module; the derived keys are wiped after use. The session
    token is a secret too: it is in the canonical request (wiped when the parts are freed) and
    in the X-Amz-Security-Token line appended for curl, which the caller wipes when it frees the
    list, as it does for every credential header.
*/
#ifndef AR_SIGV4_H
#define AR_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <curl/curl.h>

typedef struct {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; // temporary credentials (STS, SSO, roles); NULL for long-term keys
    const char *region;        // "us-east-1"
    const char *service;       // the signing name: "bedrock" for bedrock-runtime
    bool content_sha256;       // also sign and send x-amz-content-sha256 (AWS's own SDKs do)
} ar_sigv4_credentials_t;

//  The pieces of one signature, as AWS's test suite checks them.
typedef struct {
    char *canonical_request;
    char *string_to_sign;
    char *authorization;   // the Authorization header's value
    char amz_date[17];     // X-Amz-Date, 20150830T123600Z
    char payload_hash[65]; // lower-case hex SHA-256 of the body (x-amz-content-sha256)
} ar_sigv4_parts_t;

//  Compute the signature of one request. method "POST"; url the full URL (http or https, host
//  [:port], path, query); headers: the other "Name: value" lines the request sends that are to
//  be signed (say "content-type: application/json"); host, x-amz-date, x-amz-security-token and
//  x-amz-content-sha256 are the signer's to add and are refused here. now: seconds since the
//  epoch. Returns 0 with parts filled (free with ar_sigv4_parts_free), or -1 (parts zeroed) on
//  a malformed URL, header or credential, or when memory runs out.
int ar_sigv4_compute (const ar_sigv4_credentials_t *creds, const char *method, const char *url,
                      const char *const *headers, size_t header_count, const void *body,
                      size_t body_len, time_t now, ar_sigv4_parts_t *parts);

//  Free the parts, wiping them (the canonical request may hold a session token).
void ar_sigv4_parts_free (ar_sigv4_parts_t *parts);

//  Sign one request (arguments as ar_sigv4_compute) and append the headers that carry the
//  signature to *out: Authorization, X-Amz-Date, X-Amz-Content-Sha256 when asked for, and
//  X-Amz-Security-Token with a session token. The request must also send the given headers,
//  unchanged, and the body. Returns 0, or -1 with *out unchanged.
int ar_sigv4_sign (const ar_sigv4_credentials_t *creds, const char *method, const char *url,
                   const char *const *headers, size_t header_count, const void *body,
                   size_t body_len, time_t now, struct curl_slist **out);

void ar_sigv4_test (bool verbose);

#endif
