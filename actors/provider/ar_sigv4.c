/*  ar_sigv4: AWS Signature Version 4, for the Bedrock runtime (and any other non-S3 service).

    The steps and their names follow AWS's description of the algorithm: canonical request,
    string to sign, signing key, signature. Every text is built in an ar_buf with a sticky
    failure flag, so a failed allocation anywhere surfaces once, at the end of a step.
*/
#include <assert.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include "ar_sigv4.h"
#include "ar_buf.h"

#define s_ALGORITHM "AWS4-HMAC-SHA256"

//  Text under construction: a buffer whose first failed append fails the whole.
typedef struct {
    ar_buf_t buf;
    bool failed;
} s_text_t;

static void s_put (s_text_t *text, const void *data, size_t len)
{
    if (!text->failed && ar_buf_add (&text->buf, data, len) != 0)
        text->failed = true;
}

static void s_puts (s_text_t *text, const char *string)
{
    s_put (text, string, strlen (string));
}

//  Wipe and free: texts may hold the session token.
static void s_text_free (s_text_t *text)
{
    if (text->buf.data)
        explicit_bzero (text->buf.data, text->buf.len);
    ar_buf_free (&text->buf);
}

//  The text as a new string (the caller frees), or NULL if building it failed.
static char *s_text_take (s_text_t *text)
{
    s_put (text, "", 0); // an empty text still becomes ""
    char *string = text->failed ? NULL : strdup (text->buf.data);
    s_text_free (text);
    return string;
}

//  RFC 3986 unreserved characters: the only ones SigV4 leaves unencoded.
static bool s_unreserved (unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void s_encode_byte (s_text_t *text, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    if (s_unreserved (c))
        s_put (text, &c, 1);
    else {
        char escaped[3] = {'%', hex[c >> 4], hex[c & 15]};
        s_put (text, escaped, 3);
    }
}

//  Query keys and values: decode %XX (a stray '%' stands for itself), encode strictly.
static void s_reencode (s_text_t *text, const char *string, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)string[i];
        if (c == '%' && i + 2 < len) {
            int high = ar_hex_value (string[i + 1]), low = ar_hex_value (string[i + 2]);
            if (high >= 0 && low >= 0) {
                c = (unsigned char)(high << 4 | low);
                i += 2;
            }
        }
        s_encode_byte (text, c);
    }
}

//  ---------------------------------------------------------------------------
//  The URL: which host, path and query the request goes to.

typedef struct {
    const char *host; // host[:port] as curl sends it in Host
    size_t host_len;
    const char *path; // as on the wire, without the query
    size_t path_len;
    const char *query; // after '?', without the fragment; NULL if none
    size_t query_len;
} s_url_t;

static int s_url_parse (const char *url, s_url_t *parsed)
{
    const char *default_port;
    if (strncasecmp (url, "https://", 8) == 0) {
        url += 8;
        default_port = "443";
    } else if (strncasecmp (url, "http://", 7) == 0) {
        url += 7;
        default_port = "80";
    } else
        return -1;
    size_t authority_len = strcspn (url, "/?#");
    if (authority_len == 0)
        return -1;
    for (size_t i = 0; i < authority_len; i++)
        //  No userinfo (curl would send it as Basic auth), no spaces or controls.
        if (url[i] == '@' || (unsigned char)url[i] <= ' ' || url[i] == 0x7f)
            return -1;
    parsed->host = url;
    parsed->host_len = authority_len;
    //  A port follows the last ':' (after an IPv6 literal's ']'); curl leaves a default one out.
    const char *from = url;
    if (url[0] == '[') {
        from = memchr (url, ']', authority_len);
        if (!from)
            return -1;
    }
    const char *colon = memrchr (from, ':', authority_len - (size_t)(from - url));
    if (colon) {
        const char *port = colon + 1;
        size_t port_len = authority_len - (size_t)(port - url);
        for (size_t i = 0; i < port_len; i++)
            if (port[i] < '0' || port[i] > '9')
                return -1;
        if (port_len == 0 ||
            (port_len == strlen (default_port) && memcmp (port, default_port, port_len) == 0))
            parsed->host_len = (size_t)(colon - url);
        if (parsed->host_len == 0)
            return -1;
    }
    const char *rest = url + authority_len;
    parsed->path = rest;
    parsed->path_len = *rest == '/' ? strcspn (rest, "?#") : 0;
    rest += parsed->path_len;
    parsed->query = NULL;
    parsed->query_len = 0;
    if (*rest == '?') {
        parsed->query = rest + 1;
        parsed->query_len = strcspn (parsed->query, "#");
    }
    //  Controls (CR, LF above all) have no place in a request line.
    for (const char *c = parsed->path; c < parsed->path + parsed->path_len; c++)
        if ((unsigned char)*c < ' ' || *c == 0x7f)
            return -1;
    for (const char *c = parsed->query; c && c < parsed->query + parsed->query_len; c++)
        if ((unsigned char)*c < ' ' || *c == 0x7f)
            return -1;
    return 0;
}

//  ---------------------------------------------------------------------------
//  Canonical URI: the path without empty, "." and ".." segments, each segment encoded once
//  more; a trailing '/' stays. (S3 would want neither; it is not signed here.)

static void s_canonical_uri (s_text_t *text, const char *path, size_t len)
{
    size_t start = text->buf.len;
    //  Where each kept segment starts in the text, so ".." can take the last one back.
    size_t *marks = malloc ((len / 2 + 1) * sizeof *marks);
    if (!marks) {
        text->failed = true;
        return;
    }
    size_t kept = 0;
    size_t at = 0;
    while (at < len) {
        while (at < len && path[at] == '/')
            at++;
        size_t end = at;
        while (end < len && path[end] != '/')
            end++;
        size_t seg_len = end - at;
        if (seg_len == 2 && path[at] == '.' && path[at + 1] == '.') {
            if (kept > 0 && !text->failed) {
                text->buf.len = marks[--kept];
                text->buf.data[text->buf.len] = 0;
            }
        } else if (seg_len > 0 && !(seg_len == 1 && path[at] == '.')) {
            marks[kept++] = text->buf.len;
            s_put (text, "/", 1);
            for (size_t i = at; i < end; i++)
                s_encode_byte (text, (unsigned char)path[i]);
        }
        at = end;
    }
    free (marks);
    if (text->buf.len == start || (kept > 0 && len > 0 && path[len - 1] == '/'))
        s_put (text, "/", 1);
}

//  ---------------------------------------------------------------------------
//  Canonical query: each key=value decoded, encoded strictly, sorted by key then value.

typedef struct {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} s_param_t;

static int s_param_compare (const void *a, const void *b)
{
    const s_param_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int order = memcmp (x->key, y->key, n);
    if (order == 0 && x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    if (order != 0)
        return order;
    n = x->value_len < y->value_len ? x->value_len : y->value_len;
    order = memcmp (x->value, y->value, n);
    if (order == 0 && x->value_len != y->value_len)
        return x->value_len < y->value_len ? -1 : 1;
    return order;
}

static void s_canonical_query (s_text_t *text, const char *query, size_t len)
{
    if (!query || len == 0)
        return;
    size_t count = 1;
    for (size_t i = 0; i < len; i++)
        count += query[i] == '&';
    s_param_t *params = calloc (count, sizeof *params);
    //  Keys and values are encoded into scratch first; offsets, since it may move as it grows.
    size_t *offsets = calloc (count * 3, sizeof *offsets);
    s_text_t scratch = {0};
    if (!params || !offsets) {
        free (params);
        free (offsets);
        text->failed = true;
        return;
    }
    size_t used = 0;
    for (size_t at = 0; at <= len;) {
        size_t end = at;
        while (end < len && query[end] != '&')
            end++;
        if (end > at) { // "a=1&&b=2" has nothing between its '&'s
            const char *equals = memchr (query + at, '=', end - at);
            size_t key_end = equals ? (size_t)(equals - query) : end;
            offsets[used * 3] = scratch.buf.len;
            s_reencode (&scratch, query + at, key_end - at);
            offsets[used * 3 + 1] = scratch.buf.len;
            if (equals)
                s_reencode (&scratch, equals + 1, end - key_end - 1);
            offsets[used * 3 + 2] = scratch.buf.len;
            used++;
        }
        at = end + 1;
    }
    s_put (&scratch, "", 0);
    if (!scratch.failed) {
        for (size_t i = 0; i < used; i++) {
            params[i].key = scratch.buf.data + offsets[i * 3];
            params[i].key_len = offsets[i * 3 + 1] - offsets[i * 3];
            params[i].value = scratch.buf.data + offsets[i * 3 + 1];
            params[i].value_len = offsets[i * 3 + 2] - offsets[i * 3 + 1];
        }
        qsort (params, used, sizeof *params, s_param_compare);
        for (size_t i = 0; i < used; i++) {
            if (i > 0)
                s_put (text, "&", 1);
            s_put (text, params[i].key, params[i].key_len);
            s_put (text, "=", 1);
            s_put (text, params[i].value, params[i].value_len);
        }
    } else
        text->failed = true;
    s_text_free (&scratch);
    free (params);
    free (offsets);
}

//  ---------------------------------------------------------------------------
//  Canonical headers: lower-case names, values trimmed with inner runs of blanks made one
//  space, sorted by name; a repeated name lists its values in order, joined by ','.

typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    size_t order; // as given, so repeated names keep their values' order through qsort
} s_header_t;

static int s_header_compare (const void *a, const void *b)
{
    const s_header_t *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int order = memcmp (x->name, y->name, n);
    if (order == 0 && x->name_len != y->name_len)
        order = x->name_len < y->name_len ? -1 : 1;
    if (order == 0)
        order = x->order < y->order ? -1 : 1;
    return order;
}

//  RFC 9110 token characters, the only ones a header name may have.
static bool s_token_char (unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr ("!#$%&'*+-.^_`|~", c));
}

//  The headers this module adds itself; a caller's copy would be signed twice.
static bool s_reserved (const char *name, size_t len)
{
    static const char *const reserved[] = {"host", "x-amz-date", "x-amz-security-token",
                                           "x-amz-content-sha256", "authorization"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen (reserved[i]) == len && strncasecmp (reserved[i], name, len) == 0)
            return true;
    return false;
}

//  Append one normalised header to scratch; its offsets go to offsets[0..3]. -1 if malformed.
static int s_header_add (s_text_t *scratch, const char *name, size_t name_len, const char *value,
                         size_t *offsets)
{
    if (name_len == 0)
        return -1;
    offsets[0] = scratch->buf.len;
    for (size_t i = 0; i < name_len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!s_token_char (c))
            return -1;
        char lower = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        s_put (scratch, &lower, 1);
    }
    offsets[1] = scratch->buf.len;
    bool blank = false; // a run of blanks is pending, written only if text follows
    bool started = false;
    for (const char *c = value; *c; c++) {
        if (*c == '\r' || *c == '\n')
            return -1; // header injection, or an obsolete fold the caller should unfold
        if (*c == ' ' || *c == '\t') {
            blank = started;
            continue;
        }
        if (blank)
            s_put (scratch, " ", 1);
        s_put (scratch, c, 1);
        blank = false;
        started = true;
    }
    offsets[2] = scratch->buf.len;
    return 0;
}

//  Fill the canonical headers and the signed header list. -1 on a malformed or reserved header.
static int s_canonical_headers (s_text_t *canonical, s_text_t *signed_names, const s_url_t *url,
                                const char *const *headers, size_t header_count,
                                const char *amz_date, const char *payload_hash,
                                const char *session_token)
{
    size_t total = header_count + 4;
    size_t *offsets = calloc (total * 3, sizeof *offsets);
    s_header_t *list = calloc (total, sizeof *list);
    s_text_t scratch = {0};
    int rc = offsets && list ? 0 : -1;
    size_t count = 0;
    for (size_t i = 0; rc == 0 && i < header_count; i++) {
        const char *line = headers[i];
        const char *colon = line ? strchr (line, ':') : NULL;
        size_t name_len = colon ? (size_t)(colon - line) : 0;
        if (!colon || s_reserved (line, name_len))
            rc = -1;
        else
            rc = s_header_add (&scratch, line, name_len, colon + 1, offsets + 3 * count++);
    }
    if (rc == 0) {
        char host[256];
        if (url->host_len >= sizeof host)
            rc = -1;
        else {
            memcpy (host, url->host, url->host_len);
            host[url->host_len] = 0;
            rc = s_header_add (&scratch, "host", 4, host, offsets + 3 * count++);
        }
    }
    if (rc == 0)
        rc = s_header_add (&scratch, "x-amz-date", 10, amz_date, offsets + 3 * count++);
    if (rc == 0 && payload_hash)
        rc = s_header_add (&scratch, "x-amz-content-sha256", 20, payload_hash,
                           offsets + 3 * count++);
    if (rc == 0 && session_token)
        rc = s_header_add (&scratch, "x-amz-security-token", 20, session_token,
                           offsets + 3 * count++);
    s_put (&scratch, "", 0);
    if (rc == 0 && scratch.failed)
        rc = -1;
    if (rc == 0) {
        for (size_t i = 0; i < count; i++) {
            list[i].name = scratch.buf.data + offsets[i * 3];
            list[i].name_len = offsets[i * 3 + 1] - offsets[i * 3];
            list[i].value = scratch.buf.data + offsets[i * 3 + 1];
            list[i].value_len = offsets[i * 3 + 2] - offsets[i * 3 + 1];
            list[i].order = i;
        }
        qsort (list, count, sizeof *list, s_header_compare);
        for (size_t i = 0; i < count; i++) {
            bool repeat = i > 0 && list[i].name_len == list[i - 1].name_len &&
                          memcmp (list[i].name, list[i - 1].name, list[i].name_len) == 0;
            if (repeat)
                s_put (canonical, ",", 1);
            else {
                if (i > 0) {
                    s_put (canonical, "\n", 1);
                    s_put (signed_names, ";", 1);
                }
                s_put (canonical, list[i].name, list[i].name_len);
                s_put (canonical, ":", 1);
                s_put (signed_names, list[i].name, list[i].name_len);
            }
            s_put (canonical, list[i].value, list[i].value_len);
        }
        s_put (canonical, "\n", 1);
    }
    s_text_free (&scratch);
    free (offsets);
    free (list);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Hashes and keys

static void s_sha256_hex (const void *data, size_t len, char hex[65])
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256 (data ? data : (const void *)"", len, digest);
    ar_hex_encode (digest, sizeof digest, hex);
}

static bool s_hmac (const void *key, size_t key_len, const void *data, size_t len, uint8_t out[32])
{
    unsigned int out_len = 0;
    return HMAC (EVP_sha256 (), key, (int)key_len, data, len, out, &out_len) && out_len == 32;
}

//  The day's key: HMAC chained from "AWS4" + secret over date, region, service, "aws4_request".
static bool s_signing_key (const char *secret, const char *date, const char *region,
                           const char *service, uint8_t key[32])
{
    size_t secret_len = strlen (secret);
    char *seed = malloc (4 + secret_len);
    if (!seed)
        return false;
    memcpy (seed, "AWS4", 4);
    memcpy (seed + 4, secret, secret_len);
    uint8_t date_key[32], region_key[32], service_key[32];
    bool ok = s_hmac (seed, 4 + secret_len, date, strlen (date), date_key) &&
              s_hmac (date_key, 32, region, strlen (region), region_key) &&
              s_hmac (region_key, 32, service, strlen (service), service_key) &&
              s_hmac (service_key, 32, "aws4_request", 12, key);
    explicit_bzero (seed, 4 + secret_len);
    explicit_bzero (date_key, sizeof date_key);
    explicit_bzero (region_key, sizeof region_key);
    explicit_bzero (service_key, sizeof service_key);
    free (seed);
    return ok;
}

//  Scope parts and the key id travel inside "Credential=a/b/c/d, ...": no '/', ',' or blanks.
static bool s_scope_word (const char *word)
{
    if (!word || !*word)
        return false;
    for (const char *c = word; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '/' || *c == ',' || *c == '=')
            return false;
    return true;
}

//  ---------------------------------------------------------------------------
//  Compute the signature of one request.

int ar_sigv4_compute (const ar_sigv4_credentials_t *creds, const char *method, const char *url,
                      const char *const *headers, size_t header_count, const void *body,
                      size_t body_len, time_t now, ar_sigv4_parts_t *parts)
{
    memset (parts, 0, sizeof *parts);
    s_url_t parsed;
    if (!creds || !method || !*method || !url || (header_count && !headers) ||
        (body_len && !body) || !s_scope_word (creds->access_key_id) || !creds->secret_access_key ||
        !*creds->secret_access_key || !s_scope_word (creds->region) ||
        !s_scope_word (creds->service) || (creds->session_token && !*creds->session_token) ||
        s_url_parse (url, &parsed) != 0)
        return -1;
    for (const char *c = method; *c; c++)
        if (!s_token_char ((unsigned char)*c))
            return -1;
    struct tm tm;
    if (!gmtime_r (&now, &tm) ||
        strftime (parts->amz_date, sizeof parts->amz_date, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return -1;
    char date[9];
    memcpy (date, parts->amz_date, 8);
    date[8] = 0;
    s_sha256_hex (body, body_len, parts->payload_hash);

    s_text_t canonical = {0}, signed_names = {0};
    s_puts (&canonical, method);
    s_put (&canonical, "\n", 1);
    s_canonical_uri (&canonical, parsed.path, parsed.path_len);
    s_put (&canonical, "\n", 1);
    s_canonical_query (&canonical, parsed.query, parsed.query_len);
    s_put (&canonical, "\n", 1);
    if (s_canonical_headers (&canonical, &signed_names, &parsed, headers, header_count,
                             parts->amz_date, creds->content_sha256 ? parts->payload_hash : NULL,
                             creds->session_token) != 0) {
        s_text_free (&canonical);
        s_text_free (&signed_names);
        memset (parts, 0, sizeof *parts);
        return -1;
    }
    s_put (&canonical, "\n", 1);
    s_put (&signed_names, "", 0);
    if (!signed_names.failed)
        s_puts (&canonical, signed_names.buf.data);
    s_put (&canonical, "\n", 1);
    s_puts (&canonical, parts->payload_hash);
    if (signed_names.failed)
        canonical.failed = true;
    parts->canonical_request = s_text_take (&canonical);

    s_text_t scope = {0}, sts = {0};
    s_puts (&scope, date);
    s_put (&scope, "/", 1);
    s_puts (&scope, creds->region);
    s_put (&scope, "/", 1);
    s_puts (&scope, creds->service);
    s_puts (&scope, "/aws4_request");
    s_put (&scope, "", 0);
    if (parts->canonical_request && !scope.failed) {
        char request_hash[65];
        s_sha256_hex (parts->canonical_request, strlen (parts->canonical_request), request_hash);
        s_puts (&sts, s_ALGORITHM "\n");
        s_puts (&sts, parts->amz_date);
        s_put (&sts, "\n", 1);
        s_puts (&sts, scope.buf.data);
        s_put (&sts, "\n", 1);
        s_puts (&sts, request_hash);
        parts->string_to_sign = s_text_take (&sts);
    } else
        s_text_free (&sts);

    uint8_t key[32], mac[32];
    if (parts->string_to_sign &&
        s_signing_key (creds->secret_access_key, date, creds->region, creds->service, key)) {
        bool ok =
            s_hmac (key, sizeof key, parts->string_to_sign, strlen (parts->string_to_sign), mac);
        explicit_bzero (key, sizeof key);
        if (ok) {
            char signature[65];
            ar_hex_encode (mac, sizeof mac, signature);
            s_text_t authorization = {0};
            s_puts (&authorization, s_ALGORITHM " Credential=");
            s_puts (&authorization, creds->access_key_id);
            s_put (&authorization, "/", 1);
            s_puts (&authorization, scope.buf.data);
            s_puts (&authorization, ", SignedHeaders=");
            s_puts (&authorization, signed_names.buf.data);
            s_puts (&authorization, ", Signature=");
            s_puts (&authorization, signature);
            parts->authorization = s_text_take (&authorization);
        }
    }
    s_text_free (&scope);
    s_text_free (&signed_names);
    if (!parts->authorization) {
        ar_sigv4_parts_free (parts);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Free the parts.

void ar_sigv4_parts_free (ar_sigv4_parts_t *parts)
{
    char **strings[] = {&parts->canonical_request, &parts->string_to_sign, &parts->authorization};
    for (size_t i = 0; i < 3; i++)
        if (*strings[i]) {
            explicit_bzero (*strings[i], strlen (*strings[i]));
            free (*strings[i]);
        }
    memset (parts, 0, sizeof *parts);
}

//  ---------------------------------------------------------------------------
//  Sign a request: the headers that carry the signature, for curl.

//  Append "name: value" to list (wiping the line, which may hold a token). NULL on failure,
//  with list untouched.
static struct curl_slist *s_append (struct curl_slist *list, const char *name, const char *value)
{
    size_t size = strlen (name) + 2 + strlen (value) + 1;
    char *line = malloc (size);
    if (!line)
        return NULL;
    snprintf (line, size, "%s: %s", name, value);
    struct curl_slist *longer = curl_slist_append (list, line);
    explicit_bzero (line, size);
    free (line);
    return longer;
}

int ar_sigv4_sign (const ar_sigv4_credentials_t *creds, const char *method, const char *url,
                   const char *const *headers, size_t header_count, const void *body,
                   size_t body_len, time_t now, struct curl_slist **out)
{
    ar_sigv4_parts_t parts;
    if (!out || ar_sigv4_compute (creds, method, url, headers, header_count, body, body_len, now,
                                  &parts) != 0)
        return -1;
    //  Build the lines on their own list, then hang it on *out: all or nothing.
    struct curl_slist *added = s_append (NULL, "Authorization", parts.authorization);
    struct curl_slist *longer = added ? s_append (added, "X-Amz-Date", parts.amz_date) : NULL;
    if (longer && creds->content_sha256)
        longer = s_append (added, "X-Amz-Content-Sha256", parts.payload_hash);
    if (longer && creds->session_token)
        longer = s_append (added, "X-Amz-Security-Token", creds->session_token);
    ar_sigv4_parts_free (&parts);
    if (!longer) {
        for (struct curl_slist *item = added; item; item = item->next)
            explicit_bzero (item->data, strlen (item->data));
        curl_slist_free_all (added);
        return -1;
    }
    if (!*out)
        *out = added;
    else {
        struct curl_slist *tail = *out;
        while (tail->next)
            tail = tail->next;
        tail->next = added;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Self-test

#define s_ACCESS_KEY "AKIDEXAMPLE"
#define s_SECRET_KEY "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

//  One vector, read from its .req (a raw HTTP request) into the signer's arguments.
typedef struct {
    char *text; // the .req, cut up in place
    char method[16];
    char url[512];
    const char *headers[16];
    size_t header_count;
    const char *body;
    size_t body_len;
    time_t now;
    const char *content_sha256; // the X-Amz-Content-Sha256 the request carried, if any
    char region[64], service[64];
    ar_sigv4_credentials_t creds;
} s_case_t;

static char *s_vector (const char *name, const char *ext)
{
    char path[512];
    snprintf (path, sizeof path, "%s/schemas/vectors/sigv4/%s%s", AR_SOURCE_DIR, name, ext);
    char *text = ar_buf_read_file (path, NULL);
    if (!text)
        fprintf (stderr, "ar_sigv4: cannot read %s\n", path);
    assert (text);
    //  Expected outputs never end in a newline; an editor may have added one.
    size_t len = strlen (text);
    while (len > 0 && text[len - 1] == '\n' && strcmp (ext, ".req") != 0)
        text[--len] = 0;
    return text;
}

//  Parse name.req. The headers the signer adds itself (Host, X-Amz-Date, X-Amz-Security-Token,
//  X-Amz-Content-Sha256) become its inputs: the URL's host, now, the token, the flag.
static void s_case_read (const char *name, s_case_t *c)
{
    memset (c, 0, sizeof *c);
    c->text = s_vector (name, ".req");
    char *body = strstr (c->text, "\n\n");
    if (body) {
        *body = 0;
        c->body = body + 2;
        c->body_len = strlen (c->body);
    }
    char *save = NULL;
    char *request_line = strtok_r (c->text, "\n", &save);
    assert (request_line);
    char *first_space = strchr (request_line, ' ');
    char *last_space = strrchr (request_line, ' ');
    assert (first_space && last_space > first_space);
    *first_space = 0;
    *last_space = 0;
    assert (strlen (request_line) < sizeof c->method);
    strcpy (c->method, request_line);
    const char *target = first_space + 1;
    const char *host = NULL;
    char *previous = NULL;
    for (char *line = strtok_r (NULL, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        if (*line == ' ' || *line == '\t') {
            //  An obsolete folded line continues the previous header: unfold it with a space in
            //  place of the newline strtok_r cut (the header string then runs on through it).
            assert (previous);
            line[-1] = ' ';
            continue;
        }
        char *colon = strchr (line, ':');
        assert (colon);
        previous = line;
        *colon = 0;
        const char *value = colon + 1;
        if (strcasecmp (line, "Host") == 0)
            host = value;
        else if (strcasecmp (line, "X-Amz-Date") == 0) {
            struct tm tm = {0};
            assert (sscanf (value, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6);
            tm.tm_year -= 1900;
            tm.tm_mon -= 1;
            c->now = timegm (&tm);
        } else if (strcasecmp (line, "X-Amz-Security-Token") == 0)
            c->creds.session_token = value;
        else if (strcasecmp (line, "X-Amz-Content-Sha256") == 0) {
            c->creds.content_sha256 = true;
            c->content_sha256 = value;
        } else {
            *colon = ':';
            assert (c->header_count < sizeof c->headers / sizeof c->headers[0]);
            c->headers[c->header_count++] = line;
        }
    }
    assert (host && c->now > 0);
    snprintf (c->url, sizeof c->url, "https://%s%s", host, target);
    //  Region and service: the suite's inputs, written in its credential scope (line 3).
    char *sts = s_vector (name, ".sts");
    assert (sscanf (sts, "%*[^\n]\n%*[^\n]\n%*8[0-9]/%63[^/]/%63[^/]/aws4_request", c->region,
                    c->service) == 2);
    free (sts);
    c->creds.access_key_id = s_ACCESS_KEY;
    c->creds.secret_access_key = s_SECRET_KEY;
    c->creds.region = c->region;
    c->creds.service = c->service;
}

static void s_expect_equal (const char *name, const char *what, const char *want, const char *got)
{
    if (!got || strcmp (want, got) != 0) {
        fprintf (stderr, "ar_sigv4: %s: %s differs\n--- want\n%s\n--- got\n%s\n", name, what, want,
                 got ? got : "(null)");
        assert (false);
    }
}

static bool s_list_has (const struct curl_slist *list, const char *line)
{
    for (; list; list = list->next)
        if (strcmp (list->data, line) == 0)
            return true;
    return false;
}

static size_t s_list_length (const struct curl_slist *list)
{
    size_t length = 0;
    for (; list; list = list->next)
        length++;
    return length;
}

//  Check one stored vector: canonical request, string to sign, Authorization and curl lines.
static void s_check_vector (const char *name)
{
    s_case_t c;
    s_case_read (name, &c);
    ar_sigv4_parts_t parts;
    int rc = ar_sigv4_compute (&c.creds, c.method, c.url, c.headers, c.header_count, c.body,
                               c.body_len, c.now, &parts);
    if (rc != 0)
        fprintf (stderr, "ar_sigv4: %s: refused %s %s\n", name, c.method, c.url);
    assert (rc == 0);
    char *creq = s_vector (name, ".creq");
    char *sts = s_vector (name, ".sts");
    char *authz = s_vector (name, ".authz");
    s_expect_equal (name, "canonical request", creq, parts.canonical_request);
    s_expect_equal (name, "string to sign", sts, parts.string_to_sign);
    s_expect_equal (name, "authorization", authz, parts.authorization);
    if (c.content_sha256)
        s_expect_equal (name, "x-amz-content-sha256", c.content_sha256, parts.payload_hash);
    //  The secret itself is in no output.
    assert (!strstr (parts.canonical_request, s_SECRET_KEY));
    assert (!strstr (parts.string_to_sign, s_SECRET_KEY));
    assert (!strstr (parts.authorization, s_SECRET_KEY));

    //  The curl lines carry the same signature, and the headers that go with it.
    struct curl_slist *list = NULL;
    assert (ar_sigv4_sign (&c.creds, c.method, c.url, c.headers, c.header_count, c.body, c.body_len,
                           c.now, &list) == 0);
    char line[1024];
    snprintf (line, sizeof line, "Authorization: %s", authz);
    assert (s_list_has (list, line));
    snprintf (line, sizeof line, "X-Amz-Date: %s", parts.amz_date);
    assert (s_list_has (list, line));
    size_t expected = 2;
    if (c.creds.session_token) {
        snprintf (line, sizeof line, "X-Amz-Security-Token: %s", c.creds.session_token);
        assert (s_list_has (list, line));
        expected++;
    }
    if (c.content_sha256) {
        snprintf (line, sizeof line, "X-Amz-Content-Sha256: %s", c.content_sha256);
        assert (s_list_has (list, line));
        expected++;
    }
    assert (s_list_length (list) == expected);
    for (struct curl_slist *item = list; item; item = item->next)
        assert (!strstr (item->data, s_SECRET_KEY));
    curl_slist_free_all (list);
    ar_sigv4_parts_free (&parts);
    assert (!parts.canonical_request && !parts.authorization);
    free (creq);
    free (sts);
    free (authz);
    free (c.text);
}

//  Sign a GET with the suite's credentials; returns the canonical request (caller frees) or
//  NULL if refused.
static char *s_canonical_of (const char *url, const char *const *headers, size_t count)
{
    ar_sigv4_credentials_t creds = {s_ACCESS_KEY, s_SECRET_KEY, NULL,
                                    "us-east-1",  "service",    false};
    ar_sigv4_parts_t parts;
    if (ar_sigv4_compute (&creds, "GET", url, headers, count, NULL, 0, 1440938160, &parts) != 0)
        return NULL;
    char *creq = strdup (parts.canonical_request);
    ar_sigv4_parts_free (&parts);
    return creq;
}

//  The canonical request's second (URI), third (query) or fourth (first header) line.
static bool s_line_is (const char *creq, int index, const char *want)
{
    const char *line = creq;
    for (int i = 0; i < index && line; i++) {
        line = strchr (line, '\n');
        line = line ? line + 1 : NULL;
    }
    return line && strncmp (line, want, strlen (want)) == 0 && line[strlen (want)] == '\n';
}

static void s_check_line (const char *url, int index, const char *want)
{
    char *creq = s_canonical_of (url, NULL, 0);
    if (!creq || !s_line_is (creq, index, want)) {
        fprintf (stderr, "ar_sigv4: %s: want line %d \"%s\" in\n%s\n", url, index, want,
                 creq ? creq : "(refused)");
        assert (false);
    }
    free (creq);
}

void ar_sigv4_test (bool verbose)
{
    if (verbose)
        printf (" * ar_sigv4: ");
    //  @selftest
    //  Every stored vector: AWS's suite (from botocore) and the Bedrock ones from AWS's JS
    //  signer (schemas/vectors/sigv4/README.md).
    char dir_path[512];
    snprintf (dir_path, sizeof dir_path, "%s/schemas/vectors/sigv4", AR_SOURCE_DIR);
    DIR *dir = opendir (dir_path);
    assert (dir);
    size_t vectors = 0, bedrock = 0;
    for (struct dirent *entry = readdir (dir); entry; entry = readdir (dir)) {
        size_t len = strlen (entry->d_name);
        if (len <= 4 || strcmp (entry->d_name + len - 4, ".req") != 0)
            continue;
        char name[256];
        snprintf (name, sizeof name, "%.*s", (int)(len - 4), entry->d_name);
        s_check_vector (name);
        vectors++;
        bedrock += strncmp (name, "bedrock-", 8) == 0;
    }
    closedir (dir);
    assert (vectors >= 35 && bedrock == 3);

    //  The same request reached through the URL forms curl accepts signs the same: a default
    //  port and a fragment are not sent; another port is part of Host.
    char *vanilla = s_canonical_of ("https://example.amazonaws.com/", NULL, 0);
    assert (vanilla);
    const char *same[] = {"https://example.amazonaws.com:443/", "https://example.amazonaws.com",
                          "HTTPS://example.amazonaws.com/#fragment",
                          "http://example.amazonaws.com:80/"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char *creq = s_canonical_of (same[i], NULL, 0);
        assert (creq && strcmp (creq, vanilla) == 0);
        free (creq);
    }
    free (vanilla);
    s_check_line ("http://127.0.0.1:8080/x", 3, "host:127.0.0.1:8080");
    s_check_line ("https://example.amazonaws.com:80/", 3, "host:example.amazonaws.com:80");
    s_check_line ("https://[::1]:8443/", 3, "host:[::1]:8443");
    s_check_line ("https://[::1]:443/", 3, "host:[::1]");

    //  Paths: segments encoded once more than on the wire; dot segments and empty ones go.
    s_check_line ("https://h/model/a.b-v1%3A0/converse-stream", 1,
                  "/model/a.b-v1%253A0/converse-stream");
    s_check_line ("https://h/a%2Fb/c", 1, "/a%252Fb/c");
    s_check_line ("https://h/a/b/../c/./d/", 1, "/a/c/d/");
    s_check_line ("https://h/../..", 1, "/");
    s_check_line ("https://h?x=1", 1, "/");
    s_check_line ("https://h/a+b=c", 1, "/a%2Bb%3Dc");
    //  Queries: decoded, encoded strictly, sorted by key then value; empty pieces dropped.
    s_check_line ("https://h/?b=2&&a=1&", 2, "a=1&b=2");
    s_check_line ("https://h/?b&a=", 2, "a=&b=");
    s_check_line ("https://h/?%7e=%2f+%zz%", 2, "~=%2F%2B%25zz%25");
    s_check_line ("https://h/?a-b=1&a=2", 2, "a=2&a-b=1");
    s_check_line ("https://h/?%e1%88%b4=x y", 2, "%E1%88%B4=x%20y");

    //  Header values: trimmed, inner blanks made one space, tabs included; names lower-cased.
    const char *tabbed[] = {"X-Tab:\t a \t\tb\t"};
    char *creq = s_canonical_of ("https://h/", tabbed, 1);
    assert (creq && strstr (creq, "\nx-tab:a b\n") && strstr (creq, "\nhost;x-amz-date;x-tab\n"));
    free (creq);
    const char *empty_value[] = {"X-Empty:"};
    creq = s_canonical_of ("https://h/", empty_value, 1);
    assert (creq && strstr (creq, "\nx-empty:\n"));
    free (creq);

    //  Refused: what is not a URL, userinfo, reserved or malformed headers, missing creds.
    const char *bad_urls[] = {"ftp://h/",      "https:///p",    "https://user:pw@h/",
                              "h/p",           "https://h:x/",  "https://h/\r\nX: y",
                              "https://[::1/", "https://:443/", "https://h b/"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++)
        assert (!s_canonical_of (bad_urls[i], NULL, 0));
    const char *bad_headers[] = {"Host: h",          "x-amz-date: 1",    "X-Amz-Security-Token: t",
                                 "Authorization: x", "no colon",         ": empty name",
                                 "Bad Name: x",      "X-A: b\r\nX-B: c", "X-Amz-Content-Sha256: 0"};
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++)
        assert (!s_canonical_of ("https://h/", bad_headers + i, 1));
    ar_sigv4_credentials_t creds = {s_ACCESS_KEY, s_SECRET_KEY, NULL,
                                    "us-east-1",  "bedrock",    false};
    ar_sigv4_parts_t parts;
    const char *url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m%3A0/converse";
    ar_sigv4_credentials_t broken = creds;
    broken.secret_access_key = "";
    assert (ar_sigv4_compute (&broken, "POST", url, NULL, 0, "{}", 2, 0, &parts) == -1);
    assert (!parts.canonical_request && !parts.authorization);
    broken = creds;
    broken.region = "us east";
    assert (ar_sigv4_compute (&broken, "POST", url, NULL, 0, "{}", 2, 0, &parts) == -1);
    broken = creds;
    broken.access_key_id = NULL;
    assert (ar_sigv4_compute (&broken, "POST", url, NULL, 0, "{}", 2, 0, &parts) == -1);
    broken = creds;
    broken.session_token = "";
    assert (ar_sigv4_compute (&broken, "POST", url, NULL, 0, "{}", 2, 0, &parts) == -1);
    assert (ar_sigv4_compute (&creds, "PO ST", url, NULL, 0, "{}", 2, 0, &parts) == -1);
    assert (ar_sigv4_compute (&creds, "POST", url, NULL, 0, NULL, 2, 0, &parts) == -1);

    //  The signature follows every input: same inputs, same output; a byte or a second more,
    //  another signature.
    const char *json[] = {"content-type: application/json"};
    char first[256], again[256];
    assert (ar_sigv4_compute (&creds, "POST", url, json, 1, "{\"a\":1}", 7, 1718886896, &parts) ==
            0);
    snprintf (first, sizeof first, "%s", parts.authorization);
    ar_sigv4_parts_free (&parts);
    assert (ar_sigv4_compute (&creds, "POST", url, json, 1, "{\"a\":1}", 7, 1718886896, &parts) ==
            0);
    assert (strcmp (parts.authorization, first) == 0);
    assert (strcmp (parts.amz_date, "20240620T123456Z") == 0);
    ar_sigv4_parts_free (&parts);
    assert (ar_sigv4_compute (&creds, "POST", url, json, 1, "{\"a\":2}", 7, 1718886896, &parts) ==
            0);
    snprintf (again, sizeof again, "%s", parts.authorization);
    assert (strcmp (again, first) != 0);
    ar_sigv4_parts_free (&parts);
    assert (ar_sigv4_compute (&creds, "POST", url, json, 1, "{\"a\":1}", 7, 1718886897, &parts) ==
            0);
    assert (strcmp (parts.authorization, first) != 0);
    ar_sigv4_parts_free (&parts);

    //  Sign appends after the caller's lines and leaves the list alone when it refuses.
    struct curl_slist *list = curl_slist_append (NULL, "Content-Type: application/json");
    assert (list);
    assert (ar_sigv4_sign (&creds, "POST", "nonsense", json, 1, "{}", 2, 0, &list) == -1);
    assert (s_list_length (list) == 1);
    creds.session_token = "token-example";
    assert (ar_sigv4_sign (&creds, "POST", url, json, 1, "{}", 2, 1718886896, &list) == 0);
    assert (s_list_length (list) == 4);
    assert (strcmp (list->data, "Content-Type: application/json") == 0);
    const char *signed_line = "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240620/"
                              "us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;"
                              "x-amz-date;x-amz-security-token, Signature=";
    assert (strncmp (list->next->data, signed_line, strlen (signed_line)) == 0);
    assert (strlen (list->next->data) == strlen (signed_line) + 64);
    assert (s_list_has (list, "X-Amz-Security-Token: token-example"));
    curl_slist_free_all (list);
    //  @end
    if (verbose)
        printf ("OK\n");
}
