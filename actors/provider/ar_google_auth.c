/*  ar_google_auth: OAuth2 access tokens for Google Vertex AI from a service account.

    The exchange (Google's "OAuth 2.0 for server to server applications"): a JWT with header
    {"alg":"RS256","typ":"JWT","kid":<private_key_id>} and claims {iss, scope, aud = token_uri,
    iat, exp = iat + 3600 (Google's maximum)}, each part base64url without padding, signed with
    RSASSA-PKCS1-v1_5 over SHA-256; POSTed as a form to the token_uri; the reply is
    {"access_token","expires_in","token_type":"Bearer"} or {"error","error_description"}.
*/
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include "ar_google_auth.h"

//  Google refuses assertions that live longer than an hour.
#define s_ASSERTION_LIFETIME_S 3600
//  Google's keys are RSA 2048; anything shorter is not worth signing with.
#define s_RSA_BITS_MIN 2048
#define s_GRANT_PREFIX "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="

struct ar_google_account_t {
    char *client_email;
    char *private_key_id; //  NULL: no "kid" in the header
    char *token_uri;
    char *project_id; //  NULL when the file has none
    EVP_PKEY *key;
};

//  ---------------------------------------------------------------------------
//  Small helpers

static void s_set_error (char *error, size_t error_size, const char *format, ...)
{
    if (!error || error_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (error, error_size, format, args);
    va_end (args);
}

static void s_wipe_free (char *secret)
{
    if (secret) {
        explicit_bzero (secret, strlen (secret));
        free (secret);
    }
}

void ar_google_secret_free (char **secret_p)
{
    if (secret_p) {
        s_wipe_free (*secret_p);
        *secret_p = NULL;
    }
}

//  Wipe jansson's copy of a secret string member before the tree is freed.
static void s_wipe_member (json_t *object, const char *name)
{
    json_t *value = json_object_get (object, name);
    if (json_is_string (value))
        explicit_bzero ((char *)json_string_value (value), json_string_length (value));
}

//  Visible ASCII only: the value goes into an HTTP header or a URL.
static bool s_printable_word (const char *text)
{
    if (!text || !*text)
        return false;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

//  https anywhere; plain http only to this host, where a test's fake endpoint runs.
static bool s_token_uri_ok (const char *uri)
{
    if (!s_printable_word (uri))
        return false;
    if (strncmp (uri, "https://", 8) == 0)
        return uri[8] != 0;
    const char *loopbacks[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
    for (size_t i = 0; i < sizeof loopbacks / sizeof loopbacks[0]; i++) {
        size_t len = strlen (loopbacks[i]);
        if (strncmp (uri, loopbacks[i], len) == 0 &&
            (uri[len] == 0 || uri[len] == ':' || uri[len] == '/'))
            return true;
    }
    return false;
}

//  Base64url without padding (RFC 7515 §2), as a fresh string.
static char *s_base64url (const unsigned char *data, size_t len)
{
    if (len > INT_MAX / 2)
        return NULL;
    char *text = malloc (4 * ((len + 2) / 3) + 1);
    if (!text)
        return NULL;
    int text_len = EVP_EncodeBlock ((unsigned char *)text, data, (int)len);
    while (text_len > 0 && text[text_len - 1] == '=')
        text_len--;
    text[text_len] = 0;
    for (char *p = text; *p; p++)
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    return text;
}

//  A JSON value compact-printed then base64url-encoded; takes the value.
static char *s_json_part (json_t *value)
{
    char *text = value ? json_dumps (value, JSON_COMPACT) : NULL;
    json_decref (value);
    if (!text)
        return NULL;
    char *part = s_base64url ((const unsigned char *)text, strlen (text));
    free (text);
    return part;
}

//  The default PEM callback would prompt on the terminal for an encrypted key; refuse instead.
static int s_no_passphrase (char *buf, int size, int rwflag, void *unused)
{
    return -1;
}

//  ---------------------------------------------------------------------------
//  Parse a service account

//  A string member as a fresh copy. Returns 0 (absent optional: *copy NULL), or -1.
static int s_string_member (json_t *root, const char *name, bool required, char **copy, char *error,
                            size_t error_size)
{
    *copy = NULL;
    json_t *value = json_object_get (root, name);
    if (!value && !required)
        return 0;
    if (!json_is_string (value) || json_string_length (value) == 0) {
        s_set_error (error, error_size, "service account: %s %s", name,
                     value ? "is not a non-empty string" : "is missing");
        return -1;
    }
    *copy = strdup (json_string_value (value));
    if (!*copy) {
        s_set_error (error, error_size, "service account: out of memory");
        return -1;
    }
    return 0;
}

static EVP_PKEY *s_load_key (json_t *root, char *error, size_t error_size)
{
    json_t *pem = json_object_get (root, "private_key");
    if (!json_is_string (pem) || json_string_length (pem) == 0 ||
        json_string_length (pem) > INT_MAX) {
        s_set_error (error, error_size, "service account: private_key %s",
                     pem ? "is not a non-empty string" : "is missing");
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf (json_string_value (pem), (int)json_string_length (pem));
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey (bio, NULL, s_no_passphrase, NULL) : NULL;
    BIO_free (bio);
    //  OpenSSL's error queue would otherwise surface in some unrelated caller later.
    ERR_clear_error ();
    if (!key) {
        s_set_error (error, error_size,
                     "service account: private_key is not an unencrypted PEM private key");
        return NULL;
    }
    if (!EVP_PKEY_is_a (key, "RSA")) {
        s_set_error (error, error_size, "service account: private_key is not an RSA key");
        EVP_PKEY_free (key);
        return NULL;
    }
    if (EVP_PKEY_get_bits (key) < s_RSA_BITS_MIN) {
        s_set_error (error, error_size, "service account: private_key is shorter than %d bits",
                     s_RSA_BITS_MIN);
        EVP_PKEY_free (key);
        return NULL;
    }
    //  n = p * q and the rest agree: a damaged key is caught here, not as "Invalid JWT
    //  Signature" from Google on every call. Cheap (no primality tests).
    EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey (NULL, key, NULL);
    bool consistent = check && EVP_PKEY_pairwise_check (check) == 1;
    EVP_PKEY_CTX_free (check);
    ERR_clear_error ();
    if (!consistent) {
        s_set_error (error, error_size, "service account: private_key is not a consistent RSA key");
        EVP_PKEY_free (key);
        return NULL;
    }
    return key;
}

ar_google_account_t *ar_google_account_parse (const char *json, size_t len, char *error,
                                              size_t error_size)
{
    s_set_error (error, error_size, "%s", "");
    if (!json) {
        s_set_error (error, error_size, "service account: no JSON");
        return NULL;
    }
    json_error_t json_error;
    json_t *root = json_loadb (json, len, JSON_REJECT_DUPLICATES, &json_error);
    if (!json_is_object (root)) {
        //  Position only: jansson's text quotes the input, which may be the key.
        if (root)
            s_set_error (error, error_size, "service account: not a JSON object");
        else
            s_set_error (error, error_size, "service account: not JSON (line %d, column %d)",
                         json_error.line, json_error.column);
        json_decref (root);
        return NULL;
    }
    ar_google_account_t *self = calloc (1, sizeof *self);
    const char *type = json_string_value (json_object_get (root, "type"));
    bool ok = self != NULL;
    if (!self)
        s_set_error (error, error_size, "service account: out of memory");
    else if (!type || strcmp (type, "service_account") != 0) {
        s_set_error (error, error_size, "service account: type is not \"service_account\"");
        ok = false;
    }
    ok = ok &&
         s_string_member (root, "client_email", true, &self->client_email, error, error_size) == 0;
    ok = ok && s_string_member (root, "private_key_id", false, &self->private_key_id, error,
                                error_size) == 0;
    ok = ok && s_string_member (root, "token_uri", false, &self->token_uri, error, error_size) == 0;
    ok = ok &&
         s_string_member (root, "project_id", false, &self->project_id, error, error_size) == 0;
    if (ok && self->token_uri && !s_token_uri_ok (self->token_uri)) {
        s_set_error (error, error_size,
                     "service account: token_uri is not an https URL (http only to loopback)");
        ok = false;
    }
    if (ok && !self->token_uri && !(self->token_uri = strdup (AR_GOOGLE_TOKEN_URI_DEFAULT))) {
        s_set_error (error, error_size, "service account: out of memory");
        ok = false;
    }
    if (ok && !(self->key = s_load_key (root, error, error_size)))
        ok = false;
    s_wipe_member (root, "private_key");
    json_decref (root);
    if (!ok)
        ar_google_account_destroy (&self);
    return self;
}

void ar_google_account_destroy (ar_google_account_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_google_account_t *self = *self_p;
    //  EVP_PKEY_free clears an RSA key's private numbers (BN_clear_free) as it frees them.
    EVP_PKEY_free (self->key);
    free (self->client_email);
    free (self->private_key_id);
    free (self->token_uri);
    free (self->project_id);
    free (self);
    *self_p = NULL;
}

const char *ar_google_account_project_id (ar_google_account_t *self)
{
    return self ? self->project_id : NULL;
}

const char *ar_google_account_client_email (ar_google_account_t *self)
{
    return self ? self->client_email : NULL;
}

const char *ar_google_account_token_uri (ar_google_account_t *self)
{
    return self ? self->token_uri : NULL;
}

//  ---------------------------------------------------------------------------
//  The signed assertion

//  RSASSA-PKCS1-v1_5 with SHA-256 of data, base64url-encoded.
static char *s_sign (EVP_PKEY *key, const char *data, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    EVP_PKEY_CTX *key_ctx = NULL;
    unsigned char *signature = NULL;
    size_t signature_len = 0;
    char *encoded = NULL;
    if (ctx && EVP_DigestSignInit (ctx, &key_ctx, EVP_sha256 (), NULL, key) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding (key_ctx, RSA_PKCS1_PADDING) == 1 &&
        EVP_DigestSign (ctx, NULL, &signature_len, (const unsigned char *)data, len) == 1 &&
        (signature = malloc (signature_len)) &&
        EVP_DigestSign (ctx, signature, &signature_len, (const unsigned char *)data, len) == 1)
        encoded = s_base64url (signature, signature_len);
    free (signature);
    EVP_MD_CTX_free (ctx);
    ERR_clear_error ();
    return encoded;
}

char *ar_google_assertion (ar_google_account_t *acct, time_t now, const char *scope)
{
    if (!acct || !acct->key)
        return NULL;
    if (!scope || !*scope)
        scope = AR_GOOGLE_SCOPE_CLOUD_PLATFORM;
    json_t *header = json_pack ("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
    if (header && acct->private_key_id)
        json_object_set_new (header, "kid", json_string (acct->private_key_id));
    json_t *claims = json_pack ("{s:s, s:s, s:s, s:I, s:I}", "iss", acct->client_email, "scope",
                                scope, "aud", acct->token_uri, "iat", (json_int_t)now, "exp",
                                (json_int_t)now + s_ASSERTION_LIFETIME_S);
    char *header_part = s_json_part (header);
    char *claims_part = s_json_part (claims);
    char *assertion = NULL;
    if (header_part && claims_part) {
        size_t header_len = strlen (header_part);
        size_t claims_len = strlen (claims_part);
        //  header.claims, then .signature over exactly those bytes.
        char *signing_input = malloc (header_len + 1 + claims_len + 1);
        if (signing_input) {
            snprintf (signing_input, header_len + 1 + claims_len + 1, "%s.%s", header_part,
                      claims_part);
            char *signature = s_sign (acct->key, signing_input, header_len + 1 + claims_len);
            size_t size =
                header_len + 1 + claims_len + 1 + (signature ? strlen (signature) : 0) + 1;
            if (signature && (assertion = malloc (size)))
                snprintf (assertion, size, "%s.%s", signing_input, signature);
            s_wipe_free (signature);
            free (signing_input);
        }
    }
    free (header_part);
    free (claims_part);
    return assertion;
}

char *ar_google_token_request_body (ar_google_account_t *acct, time_t now)
{
    //  base64url and '.' need no form-encoding.
    char *assertion = ar_google_assertion (acct, now, NULL);
    if (!assertion)
        return NULL;
    size_t size = strlen (s_GRANT_PREFIX) + strlen (assertion) + 1;
    char *body = malloc (size);
    if (body)
        snprintf (body, size, "%s%s", s_GRANT_PREFIX, assertion);
    s_wipe_free (assertion);
    return body;
}

//  ---------------------------------------------------------------------------
//  The token endpoint's reply

//  Longer unbroken runs than this are opaque values (tokens, assertions): never quoted.
#define s_REASON_WORD_MAX 32

//  Append text to reason: visible ASCII kept, whitespace runs as one space, other bytes as '?',
//  long words as "[redacted]", cut at max_len with "...".
static void s_append_clean (char *reason, size_t reason_size, const char *text, size_t max_len)
{
    size_t used = strlen (reason);
    size_t taken = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p && taken < max_len && used + 1 < reason_size) {
        if (*p <= 0x20) {
            while (*p && *p <= 0x20)
                p++;
            reason[used++] = ' ';
            taken++;
            continue;
        }
        size_t word = 0;
        while (p[word] > 0x20)
            word++;
        if (word > s_REASON_WORD_MAX) {
            used += snprintf (reason + used, reason_size - used, "[redacted]");
            used = used < reason_size ? used : reason_size - 1;
            taken += 10;
            p += word;
            continue;
        }
        for (; word > 0 && taken < max_len && used + 1 < reason_size; word--, p++, taken++)
            reason[used++] = *p < 0x7f ? (char)*p : '?';
        reason[used] = 0;
    }
    reason[used] = 0;
    if (*p)
        snprintf (reason + used, reason_size - used, "...");
}

//  expires_in as seconds: a positive integer, whole real, or string of digits.
static int64_t s_expires_in (json_t *value)
{
    if (json_is_integer (value))
        return json_integer_value (value) > 0 && json_integer_value (value) < INT32_MAX
                   ? json_integer_value (value)
                   : -1;
    if (json_is_real (value)) {
        double seconds = json_real_value (value);
        return seconds >= 1 && seconds < INT32_MAX && seconds == (double)(int64_t)seconds
                   ? (int64_t)seconds
                   : -1;
    }
    const char *text = json_string_value (value);
    if (!text || !*text || strlen (text) > 9 || strspn (text, "0123456789") != strlen (text))
        return -1;
    int64_t seconds = strtoll (text, NULL, 10);
    return seconds > 0 ? seconds : -1;
}

static int s_token_parse (const char *body, size_t len, char **token, int64_t *expires_in,
                          char *reason, size_t reason_size)
{
    *token = NULL;
    *expires_in = 0;
    s_set_error (reason, reason_size, "ok");
    json_t *root = body ? json_loadb (body, len, 0, NULL) : NULL;
    int rc = -1;
    if (!json_is_object (root))
        s_set_error (reason, reason_size, "token reply is not a JSON object");
    else if (json_object_get (root, "error")) {
        const char *code = json_string_value (json_object_get (root, "error"));
        const char *description = json_string_value (json_object_get (root, "error_description"));
        s_set_error (reason, reason_size, "token endpoint refused: ");
        if (reason && reason_size) {
            s_append_clean (reason, reason_size, code ? code : "(error is not a string)", 40);
            if (description) {
                s_append_clean (reason, reason_size, " (", 2);
                s_append_clean (reason, reason_size, description, 160);
                s_append_clean (reason, reason_size, ")", 1);
            }
        }
    } else {
        const char *access_token = json_string_value (json_object_get (root, "access_token"));
        json_t *token_type = json_object_get (root, "token_type");
        int64_t seconds = s_expires_in (json_object_get (root, "expires_in"));
        if (!access_token)
            s_set_error (reason, reason_size, "token reply has no access_token");
        else if (!s_printable_word (access_token))
            s_set_error (reason, reason_size,
                         "token reply's access_token is empty or not header-safe");
        else if (token_type && (!json_is_string (token_type) ||
                                strcasecmp (json_string_value (token_type), "Bearer") != 0))
            s_set_error (reason, reason_size, "token reply's token_type is not Bearer");
        else if (seconds <= 0)
            s_set_error (reason, reason_size,
                         "token reply's expires_in is missing or not a positive number");
        else if (!(*token = strdup (access_token)))
            s_set_error (reason, reason_size, "out of memory");
        else {
            *expires_in = seconds;
            rc = 0;
        }
    }
    if (root)
        s_wipe_member (root, "access_token");
    json_decref (root);
    return rc;
}

int ar_google_token_parse (const char *body, size_t len, char **token, int64_t *expires_in)
{
    return s_token_parse (body, len, token, expires_in, NULL, 0);
}

void ar_google_token_reason (const char *body, size_t len, char *reason, size_t reason_size)
{
    char *token = NULL;
    int64_t expires_in;
    s_token_parse (body, len, &token, &expires_in, reason, reason_size);
    s_wipe_free (token);
}

//  ---------------------------------------------------------------------------
//  The token cache

//  Refresh this long before expiry, or at half-life for tokens shorter than twice this.
#define s_REFRESH_MARGIN_MS (5 * 60 * 1000)
//  Stop handing a token out this long before expires_in runs out (or a tenth of its life,
//  for short ones): the call still has to reach Google, and expires_in was counted from
//  before the reply crossed the network.
#define s_EXPIRY_SKEW_MS   10000
#define s_BACKOFF_FIRST_MS 1000
#define s_BACKOFF_MAX_MS   30000
//  A day is longer than any Google access token; a larger expires_in is not believed.
#define s_LIFETIME_MAX_S (24 * 3600)

struct ar_google_token_cache_t {
    char *token;             //  NULL until the first fetch succeeds
    int64_t refresh_at_ms;   //  from here on, ask for a background refresh
    int64_t usable_until_ms; //  from here on, the token is not handed out
    bool fetching;
    unsigned failures; //  consecutive, for the back-off
    int64_t retry_at_ms;
};

ar_google_token_cache_t *ar_google_token_cache_new (void)
{
    return calloc (1, sizeof (ar_google_token_cache_t));
}

void ar_google_token_cache_destroy (ar_google_token_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_wipe_free ((*self_p)->token);
    free (*self_p);
    *self_p = NULL;
}

const char *ar_google_token_cache_get (ar_google_token_cache_t *self, int64_t now_ms)
{
    return self->token && now_ms < self->usable_until_ms ? self->token : NULL;
}

int64_t ar_google_token_cache_next_fetch_ms (ar_google_token_cache_t *self)
{
    if (self->fetching)
        return INT64_MAX;
    int64_t due = self->token ? self->refresh_at_ms : INT64_MIN;
    return due > self->retry_at_ms ? due : self->retry_at_ms;
}

bool ar_google_token_cache_should_fetch (ar_google_token_cache_t *self, int64_t now_ms)
{
    return now_ms >= ar_google_token_cache_next_fetch_ms (self);
}

void ar_google_token_cache_fetch_started (ar_google_token_cache_t *self)
{
    self->fetching = true;
}

void ar_google_token_cache_fetch_failed (ar_google_token_cache_t *self, int64_t now_ms)
{
    self->fetching = false;
    if (self->failures < UINT_MAX)
        self->failures++;
    int64_t delay = s_BACKOFF_FIRST_MS;
    for (unsigned i = 1; i < self->failures && delay < s_BACKOFF_MAX_MS; i++)
        delay *= 2;
    self->retry_at_ms = now_ms + (delay < s_BACKOFF_MAX_MS ? delay : s_BACKOFF_MAX_MS);
}

int ar_google_token_cache_fetch_done (ar_google_token_cache_t *self, const char *token,
                                      int64_t expires_in, int64_t now_ms)
{
    char *copy = s_printable_word (token) && expires_in > 0 ? strdup (token) : NULL;
    if (!copy) {
        ar_google_token_cache_fetch_failed (self, now_ms);
        return -1;
    }
    s_wipe_free (self->token);
    self->token = copy;
    int64_t lifetime_ms = (expires_in < s_LIFETIME_MAX_S ? expires_in : s_LIFETIME_MAX_S) * 1000;
    int64_t margin_ms =
        lifetime_ms / 2 < s_REFRESH_MARGIN_MS ? lifetime_ms / 2 : s_REFRESH_MARGIN_MS;
    int64_t skew_ms = lifetime_ms / 10 < s_EXPIRY_SKEW_MS ? lifetime_ms / 10 : s_EXPIRY_SKEW_MS;
    self->refresh_at_ms = now_ms + lifetime_ms - margin_ms;
    self->usable_until_ms = now_ms + lifetime_ms - skew_ms;
    self->fetching = false;
    self->failures = 0;
    self->retry_at_ms = 0;
    return 0;
}

//  ---------------------------------------------------------------------------
//  Self-test

//  Test helpers: keys as PEM, service-account JSON, JWT parts decoded and verified.

static char *s_test_pem (EVP_PKEY *key, bool public_only)
{
    BIO *bio = BIO_new (BIO_s_mem ());
    assert (bio);
    if (public_only)
        assert (PEM_write_bio_PUBKEY (bio, key) == 1);
    else
        assert (PEM_write_bio_PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL) == 1);
    char *data;
    long len = BIO_get_mem_data (bio, &data);
    char *pem = strndup (data, (size_t)len);
    assert (pem);
    BIO_free (bio);
    return pem;
}

//  The public half only, as a verifier would have it.
static EVP_PKEY *s_test_public (EVP_PKEY *key)
{
    char *pem = s_test_pem (key, true);
    BIO *bio = BIO_new_mem_buf (pem, -1);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL);
    assert (pub);
    BIO_free (bio);
    free (pem);
    return pub;
}

//  A service-account file like Google's, with the given key.
static json_t *s_test_account_json (const char *pem)
{
    json_t *json =
        json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "type", "service_account",
                   "project_id", "vertex-test-123", "private_key_id",
                   "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4", "private_key", pem, "client_email",
                   "anyray@vertex-test-123.iam.gserviceaccount.com", "client_id",
                   "104242424242424242424", "auth_uri", "https://accounts.google.com/o/oauth2/auth",
                   "token_uri", "https://oauth2.googleapis.com/token");
    assert (json);
    return json;
}

static ar_google_account_t *s_test_parse (json_t *json, char *error, size_t error_size)
{
    char *text = json_dumps (json, 0);
    assert (text);
    ar_google_account_t *acct = ar_google_account_parse (text, strlen (text), error, error_size);
    s_wipe_free (text);
    return acct;
}

//  Parse must fail, naming field, and never echo the key.
static void s_test_refused (json_t *json, const char *field)
{
    char error[256];
    assert (s_test_parse (json, error, sizeof error) == NULL);
    assert (strstr (error, field));
    assert (!strstr (error, "MII") && !strstr (error, "BEGIN"));
    json_decref (json);
}

static unsigned char *s_test_unbase64url (const char *text, size_t len, size_t *out_len)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char *out = malloc (len * 3 / 4 + 1);
    assert (out);
    uint32_t bits = 0;
    int bit_count = 0;
    *out_len = 0;
    for (size_t i = 0; i < len; i++) {
        const char *digit = text[i] ? strchr (digits, text[i]) : NULL;
        assert (digit); //  no padding, no '+' or '/'
        bits = (bits << 6) | (uint32_t)(digit - digits);
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            out[(*out_len)++] = (unsigned char)(bits >> bit_count);
        }
    }
    assert (len % 4 != 1);
    out[*out_len] = 0;
    return out;
}

//  Part index (0 header, 1 claims, 2 signature) of a JWT, decoded.
static char *s_test_part (const char *jwt, int index, size_t *len)
{
    const char *start = jwt;
    for (int i = 0; i < index; i++) {
        start = strchr (start, '.');
        assert (start);
        start++;
    }
    size_t part_len = strcspn (start, ".");
    return (char *)s_test_unbase64url (start, part_len, len);
}

static bool s_test_verifies (EVP_PKEY *pub, const char *jwt)
{
    const char *last_dot = strrchr (jwt, '.');
    assert (last_dot);
    size_t signature_len;
    unsigned char *signature = (unsigned char *)s_test_part (jwt, 2, &signature_len);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    assert (EVP_DigestVerifyInit (ctx, NULL, EVP_sha256 (), NULL, pub) == 1);
    int rc = EVP_DigestVerify (ctx, signature, signature_len, (const unsigned char *)jwt,
                               (size_t)(last_dot - jwt));
    EVP_MD_CTX_free (ctx);
    free (signature);
    ERR_clear_error ();
    return rc == 1;
}

static void s_test_assertion (void)
{
    EVP_PKEY *key = EVP_RSA_gen (2048);
    assert (key);
    EVP_PKEY *pub = s_test_public (key);
    char *pem = s_test_pem (key, false);
    assert (strstr (pem, "-----BEGIN PRIVATE KEY-----")); //  PKCS#8, as Google writes it

    json_t *json = s_test_account_json (pem);
    char error[256];
    ar_google_account_t *acct = s_test_parse (json, error, sizeof error);
    assert (acct);
    assert (strcmp (ar_google_account_project_id (acct), "vertex-test-123") == 0);
    assert (strcmp (ar_google_account_client_email (acct),
                    "anyray@vertex-test-123.iam.gserviceaccount.com") == 0);
    assert (strcmp (ar_google_account_token_uri (acct), "https://oauth2.googleapis.com/token") ==
            0);

    //  Three base64url parts; header and claims exactly as Google wants them.
    const time_t nows[] = {1754000000, 1754000000 + 86400 + 17};
    for (size_t n = 0; n < 2; n++) {
        char *jwt = ar_google_assertion (acct, nows[n], NULL);
        assert (jwt);
        assert (strspn (jwt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
                strlen (jwt));
        size_t dots = 0;
        for (const char *p = jwt; *p; p++)
            dots += *p == '.';
        assert (dots == 2);
        size_t len;
        char *header = s_test_part (jwt, 0, &len);
        assert (strcmp (header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":"
                                "\"0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4\"}") == 0);
        char *claims = s_test_part (jwt, 1, &len);
        char expected[512];
        snprintf (expected, sizeof expected,
                  "{\"iss\":\"anyray@vertex-test-123.iam.gserviceaccount.com\","
                  "\"scope\":\"https://www.googleapis.com/auth/cloud-platform\","
                  "\"aud\":\"https://oauth2.googleapis.com/token\",\"iat\":%lld,\"exp\":%lld}",
                  (long long)nows[n], (long long)nows[n] + 3600);
        assert (strcmp (claims, expected) == 0);
        char *signature = s_test_part (jwt, 2, &len);
        assert (len == 256); //  RSA 2048
        free (header);
        free (claims);
        free (signature);

        //  The signature verifies with the public key, and not once anything is altered.
        assert (s_test_verifies (pub, jwt));
        char *last = jwt + strlen (jwt) - 8;
        char original = *last;
        *last = original == 'A' ? 'B' : 'A';
        assert (!s_test_verifies (pub, jwt));
        *last = original;
        assert (s_test_verifies (pub, jwt));
        char *in_claims = strchr (jwt, '.') + 5;
        *in_claims = *in_claims == 'A' ? 'B' : 'A';
        assert (!s_test_verifies (pub, jwt));
        ar_google_secret_free (&jwt);
        assert (jwt == NULL);
    }

    //  A caller's scope goes into the claims as given.
    char *jwt = ar_google_assertion (acct, 1754000000, "https://www.googleapis.com/auth/x y");
    size_t len;
    char *claims = s_test_part (jwt, 1, &len);
    json_t *parsed = json_loads (claims, 0, NULL);
    assert (strcmp (json_string_value (json_object_get (parsed, "scope")),
                    "https://www.googleapis.com/auth/x y") == 0);
    json_decref (parsed);
    free (claims);
    assert (s_test_verifies (pub, jwt));
    ar_google_secret_free (&jwt);

    //  The form body carries a valid assertion for now.
    char *body = ar_google_token_request_body (acct, 1754000123);
    assert (body);
    const char *prefix =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    assert (strncmp (body, prefix, strlen (prefix)) == 0);
    const char *body_jwt = body + strlen (prefix);
    assert (s_test_verifies (pub, body_jwt));
    claims = s_test_part (body_jwt, 1, &len);
    parsed = json_loads (claims, 0, NULL);
    assert (json_integer_value (json_object_get (parsed, "iat")) == 1754000123);
    assert (json_integer_value (json_object_get (parsed, "exp")) == 1754000123 + 3600);
    json_decref (parsed);
    free (claims);
    ar_google_secret_free (&body);

    //  A JWT signed by another account's key does not verify with this one's.
    EVP_PKEY *other_key = EVP_RSA_gen (2048);
    assert (other_key);
    EVP_PKEY *other_pub = s_test_public (other_key);
    char *other_pem = s_test_pem (other_key, false);
    json_t *other_json = s_test_account_json (other_pem);
    ar_google_account_t *other = s_test_parse (other_json, NULL, 0);
    assert (other);
    char *other_jwt = ar_google_assertion (other, 1754000000, NULL);
    assert (s_test_verifies (other_pub, other_jwt));
    assert (!s_test_verifies (pub, other_jwt));
    ar_google_secret_free (&other_jwt);
    ar_google_account_destroy (&other);
    json_decref (other_json);

    //  Optional fields: no private_key_id, no kid; no token_uri, Google's; loopback http ok.
    json_t *minimal = json_deep_copy (json);
    json_object_del (minimal, "private_key_id");
    json_object_del (minimal, "token_uri");
    json_object_del (minimal, "project_id");
    ar_google_account_t *bare = s_test_parse (minimal, error, sizeof error);
    assert (bare);
    assert (ar_google_account_project_id (bare) == NULL);
    assert (strcmp (ar_google_account_token_uri (bare), AR_GOOGLE_TOKEN_URI_DEFAULT) == 0);
    jwt = ar_google_assertion (bare, 1754000000, NULL);
    char *header = s_test_part (jwt, 0, &len);
    assert (strcmp (header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}") == 0);
    free (header);
    assert (s_test_verifies (pub, jwt));
    ar_google_secret_free (&jwt);
    ar_google_account_destroy (&bare);
    json_object_set_new (minimal, "token_uri", json_string ("http://127.0.0.1:8931/token"));
    bare = s_test_parse (minimal, error, sizeof error);
    assert (bare);
    assert (strcmp (ar_google_account_token_uri (bare), "http://127.0.0.1:8931/token") == 0);
    ar_google_account_destroy (&bare);
    assert (bare == NULL);
    json_decref (minimal);

    //  Refusals name the field and never quote the key.
    const char *required[] = {"type", "client_email", "private_key"};
    for (size_t i = 0; i < 3; i++) {
        json_t *broken = json_deep_copy (json);
        json_object_del (broken, required[i]);
        s_test_refused (broken, required[i]);
        broken = json_deep_copy (json);
        json_object_set_new (broken, required[i], json_integer (7));
        s_test_refused (broken, required[i]);
    }
    json_t *broken = json_deep_copy (json);
    json_object_set_new (broken, "type", json_string ("authorized_user"));
    s_test_refused (broken, "type");
    broken = json_deep_copy (json);
    json_object_set_new (broken, "private_key_id", json_true ());
    s_test_refused (broken, "private_key_id");
    const char *bad_uris[] = {"http://oauth2.googleapis.com/token", "ftp://x", "https://",
                              "https://x/\r\nHost: y", "http://localhost.evil.example/"};
    for (size_t i = 0; i < sizeof bad_uris / sizeof bad_uris[0]; i++) {
        broken = json_deep_copy (json);
        json_object_set_new (broken, "token_uri", json_string (bad_uris[i]));
        s_test_refused (broken, "token_uri");
    }
    //  Garbage PEM; a good PEM with a byte of its body changed; an encrypted key (no prompt).
    broken = json_deep_copy (json);
    json_object_set_new (
        broken, "private_key",
        json_string (
            "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n"));
    s_test_refused (broken, "private_key");
    //  Still valid base64: the change lands in the modulus, which no longer matches p * q.
    char *damaged = strdup (pem);
    char *in_modulus = damaged + strlen ("-----BEGIN PRIVATE KEY-----\n") + 100;
    *in_modulus = *in_modulus == 'A' ? 'B' : 'A';
    broken = s_test_account_json (damaged);
    assert (s_test_parse (broken, error, sizeof error) == NULL);
    assert (strstr (error, "private_key is not a consistent RSA key"));
    s_test_refused (broken, "private_key");
    s_wipe_free (damaged);
    BIO *bio = BIO_new (BIO_s_mem ());
    assert (PEM_write_bio_PKCS8PrivateKey (bio, key, EVP_aes_256_cbc (), "pass", 4, NULL, NULL) ==
            1);
    char *data;
    long data_len = BIO_get_mem_data (bio, &data);
    char *encrypted = strndup (data, (size_t)data_len);
    BIO_free (bio);
    assert (strstr (encrypted, "ENCRYPTED"));
    s_test_refused (s_test_account_json (encrypted), "private_key");
    free (encrypted);
    //  Not RSA: an EC key; RSA but too short.
    EVP_PKEY *ec_key = EVP_EC_gen ("P-256");
    assert (ec_key);
    char *ec_pem = s_test_pem (ec_key, false);
    s_test_refused (s_test_account_json (ec_pem), "private_key");
    char ec_error[256];
    json_t *ec_json = s_test_account_json (ec_pem);
    assert (s_test_parse (ec_json, ec_error, sizeof ec_error) == NULL);
    assert (strstr (ec_error, "not an RSA key"));
    json_decref (ec_json);
    s_wipe_free (ec_pem);
    EVP_PKEY_free (ec_key);
    EVP_PKEY *short_key = EVP_RSA_gen (1024);
    char *short_pem = s_test_pem (short_key, false);
    json_t *short_json = s_test_account_json (short_pem);
    assert (s_test_parse (short_json, error, sizeof error) == NULL);
    assert (strstr (error, "private_key") && strstr (error, "2048"));
    json_decref (short_json);
    s_wipe_free (short_pem);
    EVP_PKEY_free (short_key);

    //  Not JSON (cut off inside the key): the position, never jansson's quote of the input.
    char *text = json_dumps (json, 0);
    char *cut = strstr (text, "MII");
    assert (cut);
    size_t cut_len = (size_t)(cut - text) + 20;
    assert (ar_google_account_parse (text, cut_len, error, sizeof error) == NULL);
    assert (strstr (error, "not JSON") && !strstr (error, "MII"));
    s_wipe_free (text);
    assert (ar_google_account_parse ("[1]", 3, error, sizeof error) == NULL);
    assert (strstr (error, "not a JSON object"));
    assert (ar_google_account_parse (NULL, 0, NULL, 0) == NULL);
    assert (ar_google_assertion (NULL, 1754000000, NULL) == NULL);

    ar_google_account_destroy (&acct);
    ar_google_account_destroy (&acct); //  idempotent
    json_decref (json);
    s_wipe_free (pem);
    s_wipe_free (other_pem);
    EVP_PKEY_free (pub);
    EVP_PKEY_free (key);
    EVP_PKEY_free (other_pub);
    EVP_PKEY_free (other_key);
}

//  Parse body as a token reply; expect rc, and the reason to contain want.
static void s_test_reply (const char *body, int want_rc, const char *want_token,
                          int64_t want_expires_in, const char *want_reason)
{
    char *token = (char *)"unset";
    int64_t expires_in = -7;
    int rc = ar_google_token_parse (body, strlen (body), &token, &expires_in);
    assert (rc == want_rc);
    if (want_rc == 0) {
        assert (strcmp (token, want_token) == 0);
        assert (expires_in == want_expires_in);
    } else
        assert (token == NULL);
    ar_google_secret_free (&token);
    char reason[200];
    ar_google_token_reason (body, strlen (body), reason, sizeof reason);
    assert (strstr (reason, want_reason));
    for (const char *p = reason; *p; p++)
        assert (*p >= 0x20 && *p < 0x7f);
    assert (!strstr (reason, "ya29"));
}

static void s_test_token_reply (void)
{
    s_test_reply ("{\"access_token\":\"ya29.c.b0AXv0zTOk-_x\",\"expires_in\":3599,"
                  "\"token_type\":\"Bearer\"}",
                  0, "ya29.c.b0AXv0zTOk-_x", 3599, "ok");
    s_test_reply ("{\"access_token\":\"ya29.t\",\"expires_in\":\"120\"}", 0, "ya29.t", 120, "ok");
    s_test_reply ("{\"access_token\":\"ya29.t\",\"expires_in\":60.0,\"token_type\":\"bearer\"}", 0,
                  "ya29.t", 60, "ok");
    s_test_reply ("{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}",
                  -1, NULL, 0, "invalid_grant (Invalid JWT Signature.)");
    s_test_reply ("{\"error\":\"invalid_scope\"}", -1, NULL, 0, "refused: invalid_scope");
    //  An error wins over a token in the same reply.
    s_test_reply ("{\"error\":\"x\",\"access_token\":\"ya29.t\",\"expires_in\":5}", -1, NULL, 0,
                  "refused: x");
    //  Long opaque words and control characters never reach the reason.
    s_test_reply ("{\"error\":\"invalid_grant\",\"error_description\":\"bad assertion "
                  "ya29eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhIn0 at\\r\\nX-Log: 1\"}",
                  -1, NULL, 0, "(bad assertion [redacted] at X-Log: 1)");
    s_test_reply ("{\"error\":{\"code\":400}}", -1, NULL, 0, "(error is not a string)");
    s_test_reply ("{\"expires_in\":3599,\"token_type\":\"Bearer\"}", -1, NULL, 0,
                  "no access_token");
    s_test_reply ("{\"access_token\":\"\",\"expires_in\":3599}", -1, NULL, 0, "not header-safe");
    s_test_reply ("{\"access_token\":\"ya29.a\\r\\nX: y\",\"expires_in\":3599}", -1, NULL, 0,
                  "not header-safe");
    s_test_reply ("{\"access_token\":\"ya29.t\",\"expires_in\":3599,\"token_type\":\"MAC\"}", -1,
                  NULL, 0, "token_type");
    s_test_reply ("{\"access_token\":\"ya29.t\"}", -1, NULL, 0, "expires_in");
    s_test_reply ("{\"access_token\":\"ya29.t\",\"expires_in\":0}", -1, NULL, 0, "expires_in");
    s_test_reply ("{\"access_token\":\"ya29.t\",\"expires_in\":-5}", -1, NULL, 0, "expires_in");
    s_test_reply ("{\"access_token\":\"ya29.t\",\"expires_in\":\"12x\"}", -1, NULL, 0,
                  "expires_in");
    s_test_reply ("{\"access_token\":\"ya29.t\",\"expires_in\":1.5}", -1, NULL, 0, "expires_in");
    s_test_reply ("<html>502 Bad Gateway</html>", -1, NULL, 0, "not a JSON object");
    s_test_reply ("[\"ya29.t\"]", -1, NULL, 0, "not a JSON object");
    //  A long description is cut.
    char body[1024];
    snprintf (body, sizeof body, "{\"error\":\"e\",\"error_description\":\"%0400d\"}", 0);
    char reason[64];
    ar_google_token_reason (body, strlen (body), reason, sizeof reason);
    assert (strstr (reason, "[redacted]") && strlen (reason) < sizeof reason);
    snprintf (body, sizeof body, "{\"error\":\"e\",\"error_description\":\"");
    for (int i = 0; i < 100; i++)
        strcat (body, "word ");
    strcat (body, "\"}");
    char long_reason[400];
    ar_google_token_reason (body, strlen (body), long_reason, sizeof long_reason);
    assert (strlen (long_reason) < 220 && strstr (long_reason, "..."));
    ar_google_token_reason (body, strlen (body), reason, sizeof reason);
    assert (strlen (reason) == sizeof reason - 1);
}

static void s_test_cache (void)
{
    ar_google_token_cache_t *cache = ar_google_token_cache_new ();
    assert (cache);
    //  Empty: nothing to hand out, fetch now, once.
    assert (ar_google_token_cache_get (cache, 1000) == NULL);
    assert (ar_google_token_cache_should_fetch (cache, 1000));
    ar_google_token_cache_fetch_started (cache);
    assert (!ar_google_token_cache_should_fetch (cache, 1000));
    assert (ar_google_token_cache_next_fetch_ms (cache) == INT64_MAX);
    assert (ar_google_token_cache_get (cache, 1000) == NULL);

    //  Failures back off 1, 2, 4, 8, 16, 30, 30 s, counted from each failure.
    const int64_t backoffs[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    int64_t now = 2000;
    for (size_t i = 0; i < sizeof backoffs / sizeof backoffs[0]; i++) {
        ar_google_token_cache_fetch_failed (cache, now);
        assert (ar_google_token_cache_next_fetch_ms (cache) == now + backoffs[i]);
        assert (!ar_google_token_cache_should_fetch (cache, now));
        assert (!ar_google_token_cache_should_fetch (cache, now + backoffs[i] - 1));
        now += backoffs[i];
        assert (ar_google_token_cache_should_fetch (cache, now));
        ar_google_token_cache_fetch_started (cache);
    }

    //  A 3600 s token: fresh until 5 minutes before expiry, then refresh in the background
    //  while it is still handed out, until 10 s before expiry.
    int64_t t0 = now;
    assert (ar_google_token_cache_fetch_done (cache, "ya29.first", 3600, t0) == 0);
    const char *token = ar_google_token_cache_get (cache, t0);
    assert (token && strcmp (token, "ya29.first") == 0);
    assert (!ar_google_token_cache_should_fetch (cache, t0));
    assert (ar_google_token_cache_next_fetch_ms (cache) == t0 + 3300000);
    assert (!ar_google_token_cache_should_fetch (cache, t0 + 3300000 - 1));
    assert (ar_google_token_cache_should_fetch (cache, t0 + 3300000));
    ar_google_token_cache_fetch_started (cache);
    assert (!ar_google_token_cache_should_fetch (cache, t0 + 3300000));
    assert (strcmp (ar_google_token_cache_get (cache, t0 + 3300000), "ya29.first") == 0);
    assert (ar_google_token_cache_get (cache, t0 + 3590000 - 1));
    //  The refresh fails: the old token still serves, the retry waits 1 s.
    ar_google_token_cache_fetch_failed (cache, t0 + 3400000);
    assert (strcmp (ar_google_token_cache_get (cache, t0 + 3400000), "ya29.first") == 0);
    assert (!ar_google_token_cache_should_fetch (cache, t0 + 3400999));
    assert (ar_google_token_cache_should_fetch (cache, t0 + 3401000));
    //  Expired: not handed out, fetch wanted (no fetch in flight now).
    assert (ar_google_token_cache_get (cache, t0 + 3590000) == NULL);
    assert (ar_google_token_cache_get (cache, t0 + 3600000 + 5) == NULL);
    assert (ar_google_token_cache_should_fetch (cache, t0 + 3600000 + 5));

    //  A short token (60 s) refreshes at half-life and is handed out until a tenth of its life
    //  (6 s) before expiry.
    int64_t t1 = t0 + 3700000;
    ar_google_token_cache_fetch_started (cache);
    assert (ar_google_token_cache_fetch_done (cache, "ya29.short", 60, t1) == 0);
    assert (ar_google_token_cache_next_fetch_ms (cache) == t1 + 30000); //  success resets back-off
    assert (!ar_google_token_cache_should_fetch (cache, t1 + 29999));
    assert (ar_google_token_cache_should_fetch (cache, t1 + 30000));
    assert (strcmp (ar_google_token_cache_get (cache, t1 + 53999), "ya29.short") == 0);
    assert (ar_google_token_cache_get (cache, t1 + 54000) == NULL);

    //  A refused token counts as a failure and keeps the old one.
    ar_google_token_cache_fetch_started (cache);
    assert (ar_google_token_cache_fetch_done (cache, "bad\r\ntoken", 3600, t1 + 30000) == -1);
    assert (ar_google_token_cache_fetch_done (cache, "ya29.x", 0, t1 + 30000) == -1);
    assert (ar_google_token_cache_fetch_done (cache, NULL, 3600, t1 + 30000) == -1);
    assert (strcmp (ar_google_token_cache_get (cache, t1 + 30000), "ya29.short") == 0);
    assert (ar_google_token_cache_next_fetch_ms (cache) == t1 + 30000 + 4000); //  third failure

    //  An absurd expires_in is held to a day.
    int64_t t2 = t1 + 200000;
    assert (ar_google_token_cache_fetch_done (cache, "ya29.long", INT64_MAX / 2, t2) == 0);
    assert (ar_google_token_cache_next_fetch_ms (cache) == t2 + 86400000 - 300000);
    assert (ar_google_token_cache_get (cache, t2 + 86400000 - 10000 - 1));
    assert (!ar_google_token_cache_get (cache, t2 + 86400000 - 10000));

    ar_google_token_cache_destroy (&cache);
    ar_google_token_cache_destroy (&cache);
    assert (cache == NULL);
}

void ar_google_auth_test (bool verbose)
{
    if (verbose)
        printf (" * ar_google_auth: ");
    //  @selftest
    s_test_assertion ();
    s_test_token_reply ();
    s_test_cache ();
    //  @end
    if (verbose)
        printf ("OK\n");
}
