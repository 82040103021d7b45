/*  ar_upstream_request: turns one `provide` job into a configured curl easy handle.

    URL = base_url + path (one slash between them), only http and https. Headers: JSON content
    type, no `Expect:` (a 100-continue round trip would add a full RTT before every large body),
    and the credential: the server-held key presented by the provider's wire, or, only when no
    key is configured, the caller's own Authorization value. The body is the job's frame, sent
    without a copy. Timeouts come from the job's deadline.
*/
#ifndef AR_UPSTREAM_REQUEST_H
#define AR_UPSTREAM_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <curl/curl.h>
#include "ar_clock.h"
#include "ar_wire.h"

#define AR_UPSTREAM_URL_MAX        2048
#define AR_UPSTREAM_CONNECT_MAX_MS 10000

typedef struct {
    const char *url;      // the whole URL, when the target built it (then base_url/path unused)
    const char *base_url; // meta base_url
    const char *path;     // meta path
    const char *method;   // "POST" or "GET"
    const void *body;     // POST body, must outlive the transfer; NULL = empty
    size_t body_len;
    struct curl_slist *headers; // from ar_upstream_request_headers; must outlive the transfer
    ar_mono_ms ms_left;         // until the job's deadline (> 0)
    const char *ca_file;        // CA bundle for TLS upstreams; NULL = the system's
} ar_upstream_request_t;

//  base + path into buf. Returns 0, or -1 if either is malformed or the result does not fit.
int ar_upstream_request_url (const char *base, const char *path, char *buf, size_t size);

//  The header list for a request: with a server-held key (through wire->key_headers) when key
//  is not NULL, else with the caller's Authorization value when it is usable, else none.
//  NULL on failure. Free with curl_slist_free_all.
struct curl_slist *ar_upstream_request_headers (const ar_wire_t *wire, const char *key,
                                                const char *caller_auth);

//  Set every option for the request on easy (fresh or reset). Returns 0, or -1 if the URL or
//  method is not acceptable (nothing worth sending).
int ar_upstream_request_setup (CURL *easy, const ar_upstream_request_t *request);

void ar_upstream_request_test (bool verbose);

#endif
