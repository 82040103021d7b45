/*  ar_upstream_request: turns one `provide` job into a configured curl easy handle. */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ar_upstream_request.h"

//  Printable ASCII without spaces: what may appear in a URL we build.
static bool s_url_chars_ok (const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

//  ---------------------------------------------------------------------------
//  base + path, exactly one slash between them.

int ar_upstream_request_url (const char *base, const char *path, char *buf, size_t size)
{
    if (!base || !path || *path != '/' || !s_url_chars_ok (base) || !s_url_chars_ok (path))
        return -1;
    if (strncasecmp (base, "http://", 7) != 0 && strncasecmp (base, "https://", 8) != 0)
        return -1;
    //  A host after the scheme; no query or fragment in the base (the path is appended).
    const char *host = strstr (base, "://") + 3;
    if (strcspn (host, "/") == 0 || strpbrk (base, "?#"))
        return -1;
    size_t base_len = strlen (base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    int len = snprintf (buf, size, "%.*s%s", (int)base_len, base, path);
    if (len < 0 || (size_t)len >= size)
        return -1;
    return 0;
}

//  A header value may not carry control characters: CR/LF would inject more headers.
static bool s_header_value_ok (const char *value)
{
    if (!value || !*value)
        return false;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

//  ---------------------------------------------------------------------------
//  The header list for a request.

struct curl_slist *ar_upstream_request_headers (const ar_wire_t *wire, const char *key,
                                                const char *caller_auth)
{
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    struct curl_slist *more = headers ? curl_slist_append (headers, "Expect:") : NULL;
    if (!more) {
        curl_slist_free_all (headers);
        return NULL;
    }
    headers = more;
    if (key)
        more = wire->key_headers (headers, key);
    else if (s_header_value_ok (caller_auth)) {
        size_t size = strlen ("Authorization: ") + strlen (caller_auth) + 1;
        char *line = malloc (size);
        if (line) {
            snprintf (line, size, "Authorization: %s", caller_auth);
            more = curl_slist_append (headers, line);
            explicit_bzero (line, size); // the caller's credential is a secret too
            free (line);
        } else
            more = NULL;
    }
    if (!more) {
        curl_slist_free_all (headers);
        return NULL;
    }
    return more;
}

//  ---------------------------------------------------------------------------
//  Set every option for the request on easy.

int ar_upstream_request_setup (CURL *easy, const ar_upstream_request_t *request)
{
    char url[AR_UPSTREAM_URL_MAX];
    if (request->url) {
        //  Built whole by ar_target: the same checks as a base URL, query allowed.
        size_t len = strlen (request->url);
        if (len >= sizeof url || !s_url_chars_ok (request->url) ||
            (strncasecmp (request->url, "http://", 7) != 0 &&
             strncasecmp (request->url, "https://", 8) != 0))
            return -1;
        memcpy (url, request->url, len + 1);
    } else if (ar_upstream_request_url (request->base_url, request->path, url, sizeof url))
        return -1;
    bool post = request->method && strcmp (request->method, "POST") == 0;
    bool get = request->method && strcmp (request->method, "GET") == 0;
    if (!post && !get)
        return -1;
    //  A missing deadline (INT64_MAX) means no overall timeout; curl takes a long.
    long total_ms = request->ms_left >= LONG_MAX || request->ms_left > 86400000
                        ? 0
                        : (long)(request->ms_left > 0 ? request->ms_left : 1);
    long connect_ms =
        total_ms && total_ms < AR_UPSTREAM_CONNECT_MAX_MS ? total_ms : AR_UPSTREAM_CONNECT_MAX_MS;

    CURLcode rc = CURLE_OK;
#define s_SET(option, value)                                                                       \
    if (rc == CURLE_OK)                                                                            \
    rc = curl_easy_setopt (easy, option, value)
    s_SET (CURLOPT_URL, url); // curl copies it
    s_SET (CURLOPT_PROTOCOLS_STR, "http,https");
    s_SET (CURLOPT_HTTPHEADER, request->headers);
    s_SET (CURLOPT_NOSIGNAL, 1L);
    s_SET (CURLOPT_TCP_NODELAY, 1L);
    //  An 8 KB receive buffer instead of 16 KB: SSE events are small, and with thousands of
    //  streams held open the buffer is most of what a transfer costs in memory.
    s_SET (CURLOPT_BUFFERSIZE, 8192L);
    s_SET (CURLOPT_TCP_KEEPALIVE, 1L);
    //  HTTP/2 over TLS when offered (streams share one connection); HTTP/1.1 in the clear.
    s_SET (CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    //  Wait for a connection that can multiplex rather than open another one.
    s_SET (CURLOPT_PIPEWAIT, 1L);
    s_SET (CURLOPT_FOLLOWLOCATION, 0L);
    s_SET (CURLOPT_TIMEOUT_MS, total_ms);
    s_SET (CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    if (request->ca_file)
        s_SET (CURLOPT_CAINFO, request->ca_file);
    if (post) {
        //  POSTFIELDS points at the job's frame: no copy (COPYPOSTFIELDS would copy).
        s_SET (CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->body_len);
        s_SET (CURLOPT_POSTFIELDS, request->body ? request->body : (const void *)"");
    } else
        s_SET (CURLOPT_HTTPGET, 1L);
#undef s_SET
    return rc == CURLE_OK ? 0 : -1;
}

//  ---------------------------------------------------------------------------
//  Self-test

static bool s_has_header (struct curl_slist *list, const char *line)
{
    for (; list; list = list->next)
        if (strcmp (list->data, line) == 0)
            return true;
    return false;
}

static bool s_mentions (struct curl_slist *list, const char *text)
{
    for (; list; list = list->next)
        if (strstr (list->data, text))
            return true;
    return false;
}

void ar_upstream_request_test (bool verbose)
{
    //  @selftest
    char url[AR_UPSTREAM_URL_MAX];
    assert (ar_upstream_request_url ("https://api.openai.com/v1", "/chat/completions", url,
                                     sizeof url) == 0);
    assert (strcmp (url, "https://api.openai.com/v1/chat/completions") == 0);
    assert (ar_upstream_request_url ("http://127.0.0.1:9999/v1/", "/models", url, sizeof url) == 0);
    assert (strcmp (url, "http://127.0.0.1:9999/v1/models") == 0);
    assert (ar_upstream_request_url ("HTTP://h", "/x?a=b", url, sizeof url) == 0);
    assert (strcmp (url, "HTTP://h/x?a=b") == 0);
    assert (ar_upstream_request_url ("ftp://h/v1", "/models", url, sizeof url) == -1);
    assert (ar_upstream_request_url ("file:///etc", "/passwd", url, sizeof url) == -1);
    assert (ar_upstream_request_url ("https://h/v1", "models", url, sizeof url) == -1);
    assert (ar_upstream_request_url ("https://h/v1", "/a b", url, sizeof url) == -1);
    assert (ar_upstream_request_url ("https://h/v1", "/a\r\nb", url, sizeof url) == -1);
    assert (ar_upstream_request_url ("https://", "/models", url, sizeof url) == -1);
    assert (ar_upstream_request_url ("https:///v1", "/models", url, sizeof url) == -1);
    assert (ar_upstream_request_url ("https://h/v1?x=1", "/models", url, sizeof url) == -1);
    assert (ar_upstream_request_url (NULL, "/models", url, sizeof url) == -1);
    assert (ar_upstream_request_url ("https://h/v1", "/models", url, 10) == -1);

    //  Server-held key: presented by the wire; the caller's credential is not sent.
    struct curl_slist *headers =
        ar_upstream_request_headers (&ar_wire_openai, "sk-server", "Bearer sk-caller");
    assert (headers);
    assert (s_has_header (headers, "Content-Type: application/json"));
    assert (s_has_header (headers, "Expect:"));
    assert (s_has_header (headers, "Authorization: Bearer sk-server"));
    assert (!s_mentions (headers, "sk-caller"));
    curl_slist_free_all (headers);

    //  No key: the caller's own Authorization value is used.
    headers = ar_upstream_request_headers (&ar_wire_openai, NULL, "Bearer sk-caller");
    assert (s_has_header (headers, "Authorization: Bearer sk-caller"));
    curl_slist_free_all (headers);

    //  Neither, or a caller value that would inject a header: no Authorization at all.
    headers = ar_upstream_request_headers (&ar_wire_openai, NULL, NULL);
    assert (headers && !s_mentions (headers, "Authorization"));
    curl_slist_free_all (headers);
    headers = ar_upstream_request_headers (&ar_wire_openai, NULL, "Bearer x\r\nHost: evil");
    assert (headers && !s_mentions (headers, "Authorization") && !s_mentions (headers, "evil"));
    curl_slist_free_all (headers);

    //  Setup accepts POST and GET only, and good URLs only.
    CURL *easy = curl_easy_init ();
    assert (easy);
    headers = ar_upstream_request_headers (&ar_wire_openai, NULL, NULL);
    ar_upstream_request_t request = {.base_url = "http://127.0.0.1:9/v1",
                                     .path = "/chat/completions",
                                     .method = "POST",
                                     .body = "{}",
                                     .body_len = 2,
                                     .headers = headers,
                                     .ms_left = 1500};
    assert (ar_upstream_request_setup (easy, &request) == 0);
    char *effective = NULL;
    assert (curl_easy_getinfo (easy, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK);
    assert (effective && strcmp (effective, "http://127.0.0.1:9/v1/chat/completions") == 0);
    request.method = "GET";
    request.ms_left = INT64_MAX;
    assert (ar_upstream_request_setup (easy, &request) == 0);
    request.method = "DELETE";
    assert (ar_upstream_request_setup (easy, &request) == -1);
    request.method = NULL;
    assert (ar_upstream_request_setup (easy, &request) == -1);
    request.method = "POST";
    request.base_url = "gopher://x";
    assert (ar_upstream_request_setup (easy, &request) == -1);
    curl_easy_cleanup (easy);
    curl_slist_free_all (headers);
    //  @end
    if (verbose)
        printf ("ar_upstream_request: ok\n");
}
