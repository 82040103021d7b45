/*  ar_provider: the provider actor's engine (see ar_provider.h for the reply contract).

    One call per job. Its life: the easy handle runs in the shared multi handle; the write
    callback either collects the body (non-stream, errors) or cuts SSE events and hands each
    batch to the broker at once; when the transfer ends the easy handle goes back to a small
    pool and the call sends its END or ERROR. A call whose bytes the broker refused waits in the
    blocked queue; a short timer retries the queue in order, and resumes paused transfers.

    Cost per streamed write: one scan for event boundaries, one substring check per event (the
    JSON parser runs only on the event that carries usage), one copy into the batch and one
    into the CHUNK frame. A batch is every event one write completed: one message, not one per
    event, when the upstream is faster than we are.

    Every provider goes through the same engine: ar_target says where a call goes and in which
    shape, the request body is translated here when the shapes differ, each call is
    authenticated its provider's way (a key header, an AWS SigV4 signature over the request, or
    a Vertex AI access token that one shared fetch keeps fresh while calls wait for it), and
    ar_answer turns what comes back into the caller's shape, event by event.

    Keys: the environment's, read at start, and over them the runtime's an admin sets
    (ar_provider_keys, polled every ANYRAY_CONFIG_POLL_MS on the same one timer). A call copies
    its credential when it starts (a header line, a signature, a token), so a poll that
    replaces or wipes a key never touches a call in flight; a new Vertex AI service account
    drops the cached token and any exchange running for the old one.
*/
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "ar_provider.h"
#include "ar_answer.h"
#include "ar_buf.h"
#include "ar_env.h"
#include "ar_google_auth.h"
#include "ar_keyring.h"
#include "ar_provider_keys.h"
#include "ar_sigv4.h"
#include "ar_target.h"
#include "ar_upstream.h"
#include "ar_upstream_request.h"
#include "ar_wire.h"
#include "ar_xlate.h"

#define s_MAX_WIRES   16
#define s_IDLE_EASY   256                 // easy handles kept for reuse
#define s_BODY_MAX    (64u * 1024 * 1024) // a whole body we hold (non-stream, errors)
#define s_RETRY_MS    2                   // how soon a refused CHUNK is offered again
#define s_REASON_HOST "upstream"
#define s_POLL_MS     250  // ANYRAY_CONFIG_POLL_MS default: runtime keys reach us within 1 s
#define s_REOPEN_MS   5000 // how often a store that would not open is tried again

typedef enum { s_FINAL_NONE, s_FINAL_END, s_FINAL_ERROR } s_final_t;

//  A growable byte buffer: pending SSE events, or a whole body.

typedef struct s_call_t s_call_t;
struct s_call_t {
    ar_provider_t *provider;
    ar_job_t *job;              // NULL once answered or cancelled
    CURL *easy;                 // NULL once the transfer is over
    struct curl_slist *headers; // owned: the call's own, credential included
    const ar_wire_t *wire;
    ar_target_t target;
    ar_answer_t *answer;
    ar_buf_t body;           // what is sent, when it is not the job's own bytes (translated)
    bool token_fetch;        // not a job: the Vertex AI token exchange
    bool waiting_token;      // parked until a Vertex AI token arrives
    bool ended_by_answer;    // the answer ended the stream itself (an error event went out)
    s_call_t *token_next;    // the parked list
    char aws_error_type[96]; // a Bedrock error's x-amzn-ErrorType
    bool stream;             // meta stream=1
    bool strip_usage;        // meta strip_usage=1
    bool started;            // response headers seen: status, content type and mode known
    bool sse;                // forwarding whole events as CHUNKs (else: one END with the body)
    bool replied;            // a message reached the broker (it carried the status)
    bool paused;             // we returned CURL_WRITEFUNC_PAUSE: curl holds the bytes
    bool too_large;          // the write callback refused the bytes: over a cap
    bool blocked;            // in the blocked queue
    s_final_t final;         // set once the transfer is over
    uint16_t error_code;
    const char *error_reason; // static string
    long status;
    char content_type[256];
    int64_t retry_after;                   // seconds, from a 429/503 Retry-After; 0 = none
    ar_buf_t out;                          // SSE events the broker has not taken, or the whole body
    s_call_t *prev, *next;                 // every call
    s_call_t *blocked_prev, *blocked_next; // the blocked queue
};

//  AWS credentials for Bedrock (each string owned, wiped when freed).
typedef struct {
    char *access_key_id, *secret_access_key, *session_token;
} s_aws_t;

struct ar_provider_t {
    ar_provider_host_t host;
    ar_upstream_t *upstream;
    ar_keyring_t *keyring;
    const ar_wire_t *wires[s_MAX_WIRES];
    size_t wire_count;
    //  Bedrock: the environment's AWS credentials (ANYRAY_PROVIDER_KEY_BEDROCK or the AWS_*
    //  variables), the runtime's, and the ones in use (runtime wins; NULL when none).
    s_aws_t aws_env, aws_runtime;
    const s_aws_t *aws;
    //  Vertex AI: the environment's and the runtime's service accounts, the one in use (not
    //  owned; NULL when none), its token, and the calls waiting for one.
    ar_google_account_t *google_env, *google_runtime;
    ar_google_account_t *google;
    uint8_t google_runtime_digest[32]; // SHA-256 of the runtime JSON in google_runtime
    bool google_runtime_seen;          // a runtime JSON was applied (even if it did not parse)
    ar_google_token_cache_t *google_token;
    s_call_t *token_waiting;
    s_call_t *calls; // every call
    size_t call_count;
    s_call_t *blocked_head, *blocked_tail;
    size_t blocked_count;
    bool broker_full;     // the host refused a message during this retry turn
    ar_mono_ms retry_due; // -1 when nothing waits
    ar_mono_ms armed;     // what the host timer is set to; INT64_MIN = unknown
    //  Runtime keys: the store, the version applied, and when to poll it next (-1: never).
    ar_provider_keys_t *keys;
    char *data_dir; // where the store is, while it would not open
    int64_t keys_version;
    ar_mono_ms poll_ms, poll_due;
    bool keys_failing; // the last poll could not read the store (logged once)
    CURL *idle[s_IDLE_EASY];
    size_t idle_count;
    const char *ca_file; // ANYRAY_PROVIDER_CA_FILE: a private CA for TLS upstreams
    //  Counters (content-free), for logs and tests.
    uint64_t refused;  // CHUNK/END/ERROR the broker could not take at once
    uint64_t pauses;   // transfers paused for the broker
    ar_mono_ms log_at; // rate limit for failure logs
    uint64_t log_quiet;
};

//  ---------------------------------------------------------------------------
//  Small helpers

//  Free a header list that may hold a credential, wiping it first.
static void s_headers_free (struct curl_slist *headers)
{
    for (struct curl_slist *item = headers; item; item = item->next)
        explicit_bzero (item->data, strlen (item->data));
    curl_slist_free_all (headers);
}

static bool s_meta_is (const ar_envelope_t *env, const char *key, const char *value)
{
    const char *have = ar_envelope_meta_get (env, key);
    return have && strcmp (have, value) == 0;
}

//  At most one failure line a second: a dead upstream fails thousands of calls at once.
static void s_log_failure (ar_provider_t *self, const char *reason, CURLcode result)
{
    ar_mono_ms now = ar_mono_now ();
    if (now < self->log_at) {
        self->log_quiet++;
        return;
    }
    self->log_at = now + 1000;
    zsys_warning ("provider: %s (curl %d: %s); %" PRIu64 " more not logged", reason, (int)result,
                  curl_easy_strerror (result), self->log_quiet);
    self->log_quiet = 0;
}

//  ---------------------------------------------------------------------------
//  The one host timer serves three clocks: curl's, the blocked-queue retry, and the poll of
//  the runtime keys.

static void s_arm (ar_provider_t *self)
{
    ar_mono_ms due = ar_upstream_due (self->upstream);
    if (self->retry_due >= 0 && (due < 0 || self->retry_due < due))
        due = self->retry_due;
    if (self->poll_due >= 0 && (due < 0 || self->poll_due < due))
        due = self->poll_due;
    if (due == self->armed)
        return;
    self->armed = due;
    self->host.set_timer (self->host.arg, due);
}

static void s_upstream_timer (ar_mono_ms due, void *arg)
{
    s_arm ((ar_provider_t *)arg);
}

//  ---------------------------------------------------------------------------
//  The blocked queue: calls waiting for the broker to take a message.

static void s_block (s_call_t *call)
{
    ar_provider_t *self = call->provider;
    if (call->blocked)
        return;
    call->blocked = true;
    call->blocked_next = NULL;
    call->blocked_prev = self->blocked_tail;
    if (self->blocked_tail)
        self->blocked_tail->blocked_next = call;
    else
        self->blocked_head = call;
    self->blocked_tail = call;
    self->blocked_count++;
    if (self->retry_due < 0) {
        self->retry_due = ar_mono_now () + s_RETRY_MS;
        s_arm (self);
    }
}

static void s_unblock (s_call_t *call)
{
    ar_provider_t *self = call->provider;
    if (!call->blocked)
        return;
    if (call->blocked_prev)
        call->blocked_prev->blocked_next = call->blocked_next;
    else
        self->blocked_head = call->blocked_next;
    if (call->blocked_next)
        call->blocked_next->blocked_prev = call->blocked_prev;
    else
        self->blocked_tail = call->blocked_prev;
    call->blocked = false;
    call->blocked_prev = call->blocked_next = NULL;
    self->blocked_count--;
}

//  ---------------------------------------------------------------------------
//  Easy handles: reset and kept for the next call (saves the allocation and its buffers).

static CURL *s_easy_get (ar_provider_t *self)
{
    if (self->idle_count > 0)
        return self->idle[--self->idle_count];
    return curl_easy_init ();
}

//  Take the call's transfer out of the multi handle at once: no more bytes are read.
static void s_easy_release (s_call_t *call)
{
    ar_provider_t *self = call->provider;
    if (!call->easy)
        return;
    ar_upstream_remove (self->upstream, call->easy);
    if (self->idle_count < s_IDLE_EASY) {
        curl_easy_reset (call->easy);
        self->idle[self->idle_count++] = call->easy;
    } else
        curl_easy_cleanup (call->easy);
    call->easy = NULL;
}

//  ---------------------------------------------------------------------------
//  Calls

static void s_call_free (s_call_t *call)
{
    ar_provider_t *self = call->provider;
    s_easy_release (call);
    s_unblock (call);
    if (call->job)
        call->job->user = NULL;
    s_headers_free (call->headers);
    ar_answer_destroy (&call->answer);
    ar_buf_free (&call->body);
    ar_buf_free (&call->out);
    if (call->waiting_token) {
        s_call_t **at = &self->token_waiting;
        while (*at && *at != call)
            at = &(*at)->token_next;
        if (*at)
            *at = call->token_next;
    }
    if (call->prev)
        call->prev->next = call->next;
    else
        self->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    self->call_count--;
    free (call);
}

//  The first message of a reply says what the upstream said.
static void s_attach_status (s_call_t *call)
{
    ar_envelope_set_status (&call->job->reply, (uint16_t)call->status, s_REASON_HOST);
    if (call->content_type[0])
        ar_envelope_meta_set (&call->job->reply, "content_type", call->content_type);
    if (call->retry_after > 0) {
        char seconds[24];
        snprintf (seconds, sizeof seconds, "%" PRId64, call->retry_after);
        ar_envelope_meta_set (&call->job->reply, "retry_after", seconds);
    }
}

static void s_attach_usage (s_call_t *call)
{
    if (!call->answer)
        return;
    const ar_usage_t *usage = ar_answer_usage (call->answer);
    char number[24];
    if (usage->has_input) {
        snprintf (number, sizeof number, "%" PRId64, usage->input_tokens);
        ar_envelope_meta_set (&call->job->reply, "input_tokens", number);
    }
    if (usage->has_output) {
        snprintf (number, sizeof number, "%" PRId64, usage->output_tokens);
        ar_envelope_meta_set (&call->job->reply, "output_tokens", number);
    }
    if (usage->has_cached) {
        snprintf (number, sizeof number, "%" PRId64, usage->cached_input_tokens);
        ar_envelope_meta_set (&call->job->reply, "cached_input_tokens", number);
    }
    if (usage->model[0])
        ar_envelope_meta_set (&call->job->reply, "upstream_model", usage->model);
}

//  Hand the pending events to the broker as one CHUNK. 0, or -1 if it cannot take them now
//  (they stay pending).
static int s_flush (s_call_t *call)
{
    ar_provider_t *self = call->provider;
    if (call->out.len == 0)
        return 0;
    if (!call->replied)
        s_attach_status (call); // again on a retry: the runtime may have cleared it
    if (self->host.chunk (self->host.arg, call->job, call->out.data, call->out.len)) {
        self->refused++;
        self->broker_full = true;
        return -1;
    }
    call->replied = true;
    call->out.len = 0;
    return 0;
}

//  The transfer is over: send the last pending events, then END or ERROR. If the broker cannot
//  take them now the call waits in the blocked queue; otherwise it is freed.
static void s_finish (s_call_t *call)
{
    ar_provider_t *self = call->provider;
    int rc;
    if (call->final == s_FINAL_END) {
        if (call->sse && s_flush (call)) {
            s_block (call);
            return;
        }
        if (!call->replied)
            s_attach_status (call);
        s_attach_usage (call);
        size_t len = call->sse ? 0 : call->out.len;
        rc = self->host.end (self->host.arg, &call->job, len ? call->out.data : "", len);
    } else
        rc = self->host.error (self->host.arg, &call->job, call->error_code, call->error_reason);
    if (rc && call->job) {
        //  The runtime kept the job: it could not take the message; offer it again later.
        self->refused++;
        self->broker_full = true;
        s_block (call);
        return;
    }
    s_call_free (call);
}

static void s_fail (s_call_t *call, uint16_t code, const char *reason)
{
    s_easy_release (call);
    call->final = s_FINAL_ERROR;
    call->error_code = code;
    call->error_reason = reason;
    call->out.len = 0;
    s_finish (call);
}

//  ---------------------------------------------------------------------------
//  The response, as curl delivers it

//  Headers are in: take status and content type, and choose how to forward the body.
static void s_start (s_call_t *call)
{
    call->started = true;
    long status = 0;
    curl_easy_getinfo (call->easy, CURLINFO_RESPONSE_CODE, &status);
    call->status = status > 0 && status < 1000 ? status : 502;
    char *type = NULL;
    curl_easy_getinfo (call->easy, CURLINFO_CONTENT_TYPE, &type);
    if (type) {
        //  Meta values are bounded: drop parameters if the whole value would not fit.
        size_t len = strlen (type);
        if (len >= sizeof call->content_type)
            len = strcspn (type, ";");
        if (len < sizeof call->content_type) {
            memcpy (call->content_type, type, len);
            call->content_type[len] = 0;
        }
    }
    //  A rate limit or overload says when to come back: the edge may pass it on.
    curl_off_t retry_after = 0;
    if ((call->status == 429 || call->status == 503) &&
        curl_easy_getinfo (call->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK)
        call->retry_after = retry_after;
    //  The answer decides: events as they come (in the caller's shape), or the body whole.
    call->sse = ar_answer_start (call->answer, call->status, call->content_type);
    const char *answer_type =
        call->sse ? ar_answer_content_type (call->answer, call->content_type) : NULL;
    if (answer_type && answer_type != call->content_type) // the answer's own (reframed)
        snprintf (call->content_type, sizeof call->content_type, "%s", answer_type);
}

static size_t s_write (char *data, size_t size, size_t count, void *arg)
{
    s_call_t *call = arg;
    size_t len = size * count;
    if (!call->started)
        s_start (call);
    if (!call->sse) {
        if (ar_buf_append (&call->out, data, len, s_BODY_MAX)) {
            call->too_large = true;
            return 0; // CURLE_WRITE_ERROR
        }
        return len;
    }
    //  Events from an earlier write still wait: the broker is full, so hold these bytes in
    //  curl (it keeps them and reads no more from the socket) until the retry timer.
    if (call->out.len > 0 && s_flush (call)) {
        call->paused = true;
        call->provider->pauses++;
        s_block (call);
        return CURL_WRITEFUNC_PAUSE;
    }
    if (ar_answer_feed (call->answer, data, len, &call->out)) {
        //  The caller's stream ends here, with the error event the answer appended (or, over
        //  a cap, without one): stop reading, then END after the last events.
        call->ended_by_answer = true;
        if (s_flush (call))
            s_block (call);
        return 0;
    }
    if (s_flush (call))
        s_block (call); // these bytes are ours now; the next write pauses
    return len;
}

//  The gateway answers this call itself, in the caller's shape, with an upstream-like status
//  (a refusal before anything was sent: unsupported, untranslatable, no credentials).
static void s_refuse (s_call_t *call, int status, const char *message, const char *param)
{
    s_easy_release (call);
    json_t *error = ar_xlate_error_new (call->target.caller, status, message, param, NULL);
    char *text = error ? json_dumps (error, JSON_COMPACT) : NULL;
    json_decref (error);
    call->out.len = 0;
    if (!text || ar_buf_add (&call->out, text, strlen (text)) != 0) {
        free (text);
        s_fail (call, 503, "provider out of memory");
        return;
    }
    free (text);
    call->started = true;
    call->sse = false;
    call->status = status;
    snprintf (call->content_type, sizeof call->content_type, "application/json");
    call->final = s_FINAL_END;
    s_finish (call);
}

//  A whole answer, in the caller's shape: as it came (no copy), or translated.
static int s_answer_whole (s_call_t *call)
{
    ar_buf_t translated = {0};
    long status = call->status;
    int rc =
        ar_answer_whole (call->answer, &status, call->out.data ? call->out.data : "", call->out.len,
                         *call->aws_error_type ? call->aws_error_type : NULL, &translated);
    if (rc == 1)
        return 0;
    if (rc != 0 && translated.len == 0) {
        ar_buf_free (&translated);
        return -1;
    }
    ar_buf_free (&call->out);
    call->out = translated;
    call->status = status;
    snprintf (call->content_type, sizeof call->content_type, "application/json");
    return 0;
}

static void s_token_done (s_call_t *fetch, CURLcode result);

//  A transfer ended.
static void s_done (CURL *easy, CURLcode result, void *arg)
{
    ar_provider_t *self = arg;
    s_call_t *call = NULL;
    curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **)&call);
    if (!call || call->easy != easy) {
        ar_upstream_remove (self->upstream, easy); // not ours: never expected
        return;
    }
    if (call->token_fetch) {
        s_token_done (call, result);
        return;
    }
    if (call->ended_by_answer) {
        s_easy_release (call);
        call->final = s_FINAL_END;
        s_finish (call);
        return;
    }
    if (result != CURLE_OK) {
        const char *reason = "upstream unreachable";
        uint16_t code = 502;
        if (call->replied)
            reason = "upstream stream broken";
        else if (call->too_large)
            reason = "upstream response too large";
        else if (result == CURLE_OPERATION_TIMEDOUT &&
                 ar_mono_now () + 100 >= call->job->deadline) {
            //  The overall timeout is the deadline; timing out well before it means the
            //  connect timeout fired: that upstream is unreachable, another may not be.
            code = 504;
            reason = "upstream timeout";
        }
        s_log_failure (self, reason, result);
        s_fail (call, code, reason);
        return;
    }
    if (!call->started)
        s_start (call); // no body at all (204, empty 200)
    if (!call->sse && call->target.slug && strcmp (call->target.slug, "bedrock") == 0) {
        struct curl_header *type = NULL;
        if (curl_easy_header (easy, "x-amzn-ErrorType", 0, CURLH_HEADER, -1, &type) == CURLHE_OK)
            snprintf (call->aws_error_type, sizeof call->aws_error_type, "%s", type->value);
    }
    s_easy_release (call);
    if (call->sse)
        ar_answer_finish (call->answer, &call->out); // on a broken end: its error event
    else if (s_answer_whole (call) != 0) {
        s_fail (call, 503, "provider out of memory");
        return;
    }
    call->final = s_FINAL_END;
    s_finish (call);
}

//  ---------------------------------------------------------------------------
//  Retry the blocked queue from its head; stop at the first refusal (the broker is full for
//  everyone then). A refused call goes to the tail: round robin, no call starves.

static void s_retry (ar_provider_t *self)
{
    size_t turns = self->blocked_count;
    self->broker_full = false;
    while (turns-- > 0 && self->blocked_head && !self->broker_full) {
        s_call_t *call = self->blocked_head;
        s_unblock (call);
        if (call->final != s_FINAL_NONE) {
            s_finish (call); // blocks again or frees the call
            continue;
        }
        if (s_flush (call)) {
            s_block (call);
            continue;
        }
        if (call->paused) {
            //  curl delivers the bytes it held from inside curl_easy_pause: s_write may block
            //  the call again, and the transfer may even fail (reported later through s_done).
            call->paused = false;
            curl_easy_pause (call->easy, CURLPAUSE_CONT);
        }
    }
    self->retry_due = self->blocked_head ? ar_mono_now () + s_RETRY_MS : -1;
}

//  ---------------------------------------------------------------------------
//  Create the engine.

static void s_secret_free (char **secret_p)
{
    if (*secret_p) {
        explicit_bzero (*secret_p, strlen (*secret_p));
        free (*secret_p);
        *secret_p = NULL;
    }
}

static void s_aws_clear (s_aws_t *aws)
{
    s_secret_free (&aws->access_key_id);
    s_secret_free (&aws->secret_access_key);
    s_secret_free (&aws->session_token);
}

//  "<access key id>:<secret>[:<session token>]" into aws. 0, or -1 (aws empty) when malformed.
static int s_aws_parse (const char *text, s_aws_t *aws)
{
    const char *colon = strchr (text, ':');
    const char *second = colon ? strchr (colon + 1, ':') : NULL;
    if (!colon || colon == text || colon[1] == 0 || second == colon + 1)
        return -1;
    aws->access_key_id = strndup (text, (size_t)(colon - text));
    aws->secret_access_key =
        second ? strndup (colon + 1, (size_t)(second - colon - 1)) : strdup (colon + 1);
    if (second && second[1])
        aws->session_token = strdup (second + 1);
    if (!aws->access_key_id || !aws->secret_access_key ||
        (second && second[1] && !aws->session_token)) {
        s_aws_clear (aws);
        return -1;
    }
    return 0;
}

//  Bedrock's credentials: ANYRAY_PROVIDER_KEY_BEDROCK ("<access key id>:<secret>[:<session
//  token>]") or AWS's own variables, as every AWS SDK reads them.
static void s_read_aws (ar_provider_t *self)
{
    const char *ours = getenv ("ANYRAY_PROVIDER_KEY_BEDROCK");
    if (ours && *ours) {
        if (s_aws_parse (ours, &self->aws_env) != 0) {
            zsys_warning ("provider: ANYRAY_PROVIDER_KEY_BEDROCK is not <access key id>:<secret>"
                          "[:<session token>]; ignored");
            return;
        }
    } else {
        const char *id = getenv ("AWS_ACCESS_KEY_ID"), *secret = getenv ("AWS_SECRET_ACCESS_KEY");
        const char *token = getenv ("AWS_SESSION_TOKEN");
        if (!id || !*id || !secret || !*secret)
            return;
        self->aws_env.access_key_id = strdup (id);
        self->aws_env.secret_access_key = strdup (secret);
        if (token && *token)
            self->aws_env.session_token = strdup (token);
        if (!self->aws_env.access_key_id || !self->aws_env.secret_access_key) {
            s_aws_clear (&self->aws_env);
            return;
        }
    }
    self->aws = &self->aws_env;
    zsys_info ("provider: bedrock uses the server-held AWS credentials");
}

//  Vertex AI's service account: ANYRAY_PROVIDER_KEY_GOOGLE_VERTEX_AI (the JSON itself, or a
//  path to it), else GOOGLE_APPLICATION_CREDENTIALS (a path), as Google's libraries read it.
static void s_read_google (ar_provider_t *self)
{
    const char *ours = getenv ("ANYRAY_PROVIDER_KEY_GOOGLE_VERTEX_AI");
    const char *path = getenv ("GOOGLE_APPLICATION_CREDENTIALS");
    char *json = NULL;
    size_t len = 0;
    if (ours && *ours == '{') {
        json = strdup (ours);
        len = json ? strlen (json) : 0;
    } else {
        const char *file = ours && *ours ? ours : path && *path ? path : NULL;
        if (!file)
            return;
        json = ar_buf_read_file (file, &len);
        if (!json) {
            zsys_warning ("provider: cannot read the Vertex AI service account file");
            return;
        }
    }
    char error[200] = "";
    self->google_env = json ? ar_google_account_parse (json, len, error, sizeof error) : NULL;
    if (json) {
        explicit_bzero (json, len);
        free (json);
    }
    if (!self->google_env)
        zsys_warning ("provider: the Vertex AI service account is not usable: %s", error);
    else
        zsys_info ("provider: google-vertex-ai uses the server-held service account");
    self->google = self->google_env;
}

static void s_keys_open (ar_provider_t *self);
static void s_keys_poll (ar_provider_t *self);

ar_provider_t *ar_provider_new (const ar_provider_host_t *host, const char *data_dir)
{
    ar_provider_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->host = *host;
    self->retry_due = -1;
    self->poll_due = -1;
    self->armed = INT64_MIN;
    //  Keys in a header come from the keyring; Bedrock and Vertex sign their own way.
    const char *slugs[s_MAX_WIRES + 1] = {0};
    size_t keyed = 0;
    for (const ar_wire_t *const *wire = ar_wire_all (); *wire; wire++) {
        if (self->wire_count == s_MAX_WIRES)
            break;
        if ((*wire)->key_headers)
            slugs[keyed++] = (*wire)->slug;
        self->wires[self->wire_count++] = *wire;
    }
    self->ca_file = getenv ("ANYRAY_PROVIDER_CA_FILE");
    if (self->ca_file && !*self->ca_file)
        self->ca_file = NULL;
    self->keyring = ar_keyring_new (slugs);
    self->upstream = ar_upstream_new (s_done, s_upstream_timer, self);
    self->google_token = ar_google_token_cache_new ();
    self->data_dir = data_dir ? strdup (data_dir) : NULL;
    if (!self->keyring || !self->upstream || !self->google_token || (data_dir && !self->data_dir)) {
        ar_provider_destroy (&self);
        return NULL;
    }
    for (size_t i = 0; i < keyed; i++)
        if (ar_keyring_get (self->keyring, slugs[i]))
            zsys_info ("provider: %s uses the server-held key", slugs[i]);
    s_read_aws (self);
    s_read_google (self);
    self->poll_ms = ar_env_int ("ANYRAY_CONFIG_POLL_MS", s_POLL_MS, 10, 60000);
    if (self->data_dir) {
        s_keys_open (self);
        s_arm (self); // the first poll; a host not ready yet keeps it for later (main.c)
    }
    return self;
}

//  ---------------------------------------------------------------------------
//  Destroy the engine; every transfer stops, nothing is sent.

void ar_provider_destroy (ar_provider_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_provider_t *self = *self_p;
    while (self->calls)
        s_call_free (self->calls);
    for (size_t i = 0; i < self->idle_count; i++)
        curl_easy_cleanup (self->idle[i]);
    ar_upstream_destroy (&self->upstream);
    ar_keyring_destroy (&self->keyring);
    s_aws_clear (&self->aws_env);
    s_aws_clear (&self->aws_runtime);
    ar_google_account_destroy (&self->google_env);
    ar_google_account_destroy (&self->google_runtime);
    ar_google_token_cache_destroy (&self->google_token);
    ar_provider_keys_destroy (&self->keys);
    free (self->data_dir);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  The fd to watch, and what to do when it is readable or the timer fires.

int ar_provider_fd (ar_provider_t *self)
{
    return ar_upstream_fd (self->upstream);
}

void ar_provider_ready (ar_provider_t *self)
{
    ar_upstream_ready (self->upstream);
    s_arm (self);
}

void ar_provider_timer (ar_provider_t *self)
{
    self->armed = INT64_MIN; // fired: whatever comes next must be set again
    ar_mono_ms now = ar_mono_now ();
    if (self->retry_due >= 0 && now >= self->retry_due)
        s_retry (self);
    if (self->poll_due >= 0 && now >= self->poll_due) {
        if (self->keys)
            s_keys_poll (self);
        else
            s_keys_open (self);
    }
    ar_mono_ms due = ar_upstream_due (self->upstream);
    if (due >= 0 && now >= due)
        ar_upstream_timeout (self->upstream);
    s_arm (self);
}

//  ---------------------------------------------------------------------------
//  A job arrived: start its transfer, or answer at once if it cannot be sent.

static s_call_t *s_call_new (ar_provider_t *self, ar_job_t *job)
{
    s_call_t *call = calloc (1, sizeof *call);
    if (!call)
        return NULL;
    call->provider = self;
    call->job = job;
    if (job)
        job->user = call;
    call->next = self->calls;
    if (self->calls)
        self->calls->prev = call;
    self->calls = call;
    self->call_count++;
    return call;
}

//  The request in the upstream's shape: OpenAI is the pivot between any two.
static json_t *s_translate_request (ar_wire_shape_t caller, ar_wire_shape_t upstream,
                                    json_t *request, ar_xlate_error_t *err)
{
    json_t *openai = caller == AR_SHAPE_OPENAI
                         ? json_incref (request)
                         : ar_xlate_anthropic_to_openai_request (request, err);
    if (!openai || upstream == AR_SHAPE_OPENAI)
        return openai;
    json_t *out = NULL;
    if (upstream == AR_SHAPE_ANTHROPIC)
        out = ar_xlate_openai_to_anthropic_request (openai, err);
    else if (upstream == AR_SHAPE_CONVERSE)
        out = ar_xlate_openai_to_converse_request (openai, err);
    else if (upstream == AR_SHAPE_GEMINI)
        out = ar_xlate_openai_to_gemini_request (openai, err);
    json_decref (openai);
    return out;
}

//  The body the upstream gets: the caller's bytes when nothing changes, else translated and
//  fixed up. 0, or -1 when the call was refused.
static int s_prepare_body (s_call_t *call, const void *data, size_t len)
{
    ar_target_t *target = &call->target;
    if (!target->translate && !target->anthropic_version && !target->drop_model)
        return 0;
    json_t *root = data ? json_loadb (data, len, 0, NULL) : NULL;
    if (!json_is_object (root)) {
        json_decref (root);
        s_refuse (call, 400, "The request body must be a JSON object.", NULL);
        return -1;
    }
    ar_xlate_error_t err = {0};
    json_t *out = target->translate
                      ? s_translate_request (target->caller, target->upstream, root, &err)
                      : json_incref (root);
    json_decref (root);
    if (!out) {
        s_refuse (call, err.status ? err.status : 400,
                  *err.message ? err.message : "The request cannot be sent to this provider.",
                  *err.param ? err.param : NULL);
        return -1;
    }
    //  Claude on Bedrock and Vertex: the version in the body, the model in the URL; Bedrock's
    //  InvokeModel also refuses a stream member (the URL says it).
    if (target->anthropic_version)
        json_object_set_new (out, "anthropic_version", json_string (target->anthropic_version));
    if (target->drop_model)
        json_object_del (out, "model");
    if (target->upstream == AR_SHAPE_ANTHROPIC && strcmp (target->slug, "bedrock") == 0)
        json_object_del (out, "stream");
    char *text = json_dumps (out, JSON_COMPACT);
    json_decref (out);
    int rc = text ? ar_buf_add (&call->body, text, strlen (text)) : -1;
    free (text);
    if (rc != 0)
        s_fail (call, 503, "provider out of memory");
    return rc;
}

//  What goes upstream: the translated body, or the job's own bytes (no copy).
static const void *s_body_sent (s_call_t *call, size_t *len)
{
    if (call->body.len) {
        *len = call->body.len;
        return call->body.data;
    }
    *len = call->job->body ? zframe_size (call->job->body) : 0;
    return call->job->body ? (const void *)zframe_data (call->job->body) : NULL;
}

//  A header line from a caller's value, when it is safe to send (no CR/LF injection).
static struct curl_slist *s_header_line (struct curl_slist *headers, const char *name,
                                         const char *value)
{
    if (!headers || !value || !*value)
        return headers;
    for (const unsigned char *c = (const unsigned char *)value; *c; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
            return headers;
    char line[1024];
    int n = snprintf (line, sizeof line, "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof line)
        return headers;
    struct curl_slist *more = curl_slist_append (headers, line);
    if (!more)
        s_headers_free (headers);
    return more;
}

//  The caller's own credential, for a provider the gateway holds no key for: the x-api-key
//  value, or the token of a Bearer Authorization.
static const char *s_caller_key (const ar_envelope_t *env)
{
    const char *key = ar_envelope_meta_get (env, "api_key");
    if (key && *key)
        return key;
    const char *auth = ar_envelope_meta_get (env, "auth");
    if (auth && strncasecmp (auth, "Bearer ", 7) == 0 && auth[7])
        return auth + 7;
    return NULL;
}

//  The call's headers, its provider's credential included. NULL with *status and *why set when
//  it cannot be sent (no credentials; out of memory is 503).
static struct curl_slist *s_headers (s_call_t *call, int *status, const char **why)
{
    ar_provider_t *self = call->provider;
    const ar_envelope_t *env = &call->job->env;
    ar_target_t *target = &call->target;
    struct curl_slist *headers = NULL;
    *status = 503;
    *why = "provider out of memory";
    if (target->auth == AR_AUTH_KEY) {
        //  The server-held key wins; the caller's own credential only without one.
        const char *key = ar_keyring_get (self->keyring, call->wire->slug);
        bool openai = call->wire == &ar_wire_openai;
        if (!key && !openai)
            key = s_caller_key (env);
        headers = ar_upstream_request_headers (call->wire, key,
                                               openai ? ar_envelope_meta_get (env, "auth") : NULL);
        if (call->wire == &ar_wire_anthropic) {
            const char *version = ar_envelope_meta_get (env, "anthropic_version");
            headers = s_header_line (headers, "anthropic-version",
                                     version && *version ? version : "2023-06-01");
            headers = s_header_line (headers, "anthropic-beta",
                                     ar_envelope_meta_get (env, "anthropic_beta"));
        }
        return headers;
    }
    headers = ar_upstream_request_headers (call->wire, NULL, NULL);
    if (!headers)
        return NULL;
    if (target->auth == AR_AUTH_SIGV4) {
        if (!self->aws) {
            s_headers_free (headers);
            *status = 401;
            *why = "No AWS credentials for Bedrock are configured on the gateway "
                   "(ANYRAY_PROVIDER_KEY_BEDROCK or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).";
            return NULL;
        }
        const char *region = ar_envelope_meta_get (env, "region");
        ar_sigv4_credentials_t creds = {
            .access_key_id = self->aws->access_key_id,
            .secret_access_key = self->aws->secret_access_key,
            .session_token = self->aws->session_token,
            .region = region && *region ? region : "us-east-1",
            .service = "bedrock",
        };
        const char *const signed_headers[] = {"content-type: application/json"};
        size_t body_len;
        const void *body = s_body_sent (call, &body_len);
        if (ar_sigv4_sign (&creds, "POST", target->url, signed_headers, 1, body, body_len,
                           time (NULL), &headers) != 0) {
            s_headers_free (headers);
            *status = 400;
            *why = "The Bedrock request could not be signed.";
            return NULL;
        }
        return headers;
    }
    const char *token = ar_google_token_cache_get (self->google_token, ar_mono_now ());
    if (!token) {
        s_headers_free (headers);
        *status = 502;
        *why = "No Vertex AI access token is available.";
        return NULL;
    }
    struct curl_slist *more = ar_wire_key_header (headers, "Authorization: Bearer ", token);
    if (!more)
        s_headers_free (headers);
    return more;
}

//  Authenticate and start the transfer.
static void s_send (s_call_t *call)
{
    ar_provider_t *self = call->provider;
    ar_mono_ms left = call->job->deadline - ar_mono_now ();
    if (left <= 0) {
        s_fail (call, 504, "upstream timeout");
        return;
    }
    int status;
    const char *why;
    call->headers = s_headers (call, &status, &why);
    if (!call->headers) {
        if (status == 503)
            s_fail (call, 503, why);
        else
            s_refuse (call, status, why, NULL);
        return;
    }
    call->easy = s_easy_get (self);
    if (!call->easy) {
        s_fail (call, 503, "provider out of memory");
        return;
    }
    const ar_envelope_t *env = &call->job->env;
    size_t body_len;
    const void *body = s_body_sent (call, &body_len);
    ar_upstream_request_t request = {
        .url = call->target.url,
        .method = ar_envelope_meta_get (env, "method"),
        .body = body,
        .body_len = body_len,
        .headers = call->headers,
        .ms_left = left,
        .ca_file = self->ca_file,
    };
    if (ar_upstream_request_setup (call->easy, &request)) {
        s_fail (call, 400, "bad provider request");
        return;
    }
    curl_easy_setopt (call->easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt (call->easy, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt (call->easy, CURLOPT_WRITEDATA, call);
    if (ar_upstream_add (self->upstream, call->easy)) {
        s_fail (call, 502, "upstream unreachable");
        return;
    }
    s_arm (self);
}

//  ---------------------------------------------------------------------------
//  Vertex AI access tokens: one exchange at a time for the whole engine, calls park meanwhile.

static void s_token_fetch (ar_provider_t *self)
{
    s_call_t *fetch = s_call_new (self, NULL);
    char *form = fetch ? ar_google_token_request_body (self->google, time (NULL)) : NULL;
    if (form) {
        fetch->token_fetch = true;
        fetch->headers =
            curl_slist_append (NULL, "Content-Type: application/x-www-form-urlencoded");
        struct curl_slist *more =
            fetch->headers ? curl_slist_append (fetch->headers, "Expect:") : NULL;
        fetch->headers = more ? more : fetch->headers;
        if (more && ar_buf_add (&fetch->body, form, strlen (form)) == 0)
            fetch->easy = s_easy_get (self);
        ar_google_secret_free (&form);
    }
    ar_upstream_request_t request = {
        .url = self->google ? ar_google_account_token_uri (self->google) : NULL,
        .method = "POST",
        .body = fetch ? fetch->body.data : NULL,
        .body_len = fetch ? fetch->body.len : 0,
        .headers = fetch ? fetch->headers : NULL,
        .ms_left = 10000,
        .ca_file = self->ca_file,
    };
    if (!fetch || !fetch->easy || ar_upstream_request_setup (fetch->easy, &request) != 0) {
        if (fetch)
            s_call_free (fetch);
        ar_google_token_cache_fetch_failed (self->google_token, ar_mono_now ());
        zsys_warning ("provider: cannot start the Vertex AI token exchange");
        return;
    }
    curl_easy_setopt (fetch->easy, CURLOPT_PRIVATE, fetch);
    curl_easy_setopt (fetch->easy, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt (fetch->easy, CURLOPT_WRITEDATA, fetch);
    fetch->started = true; // the body is collected whole
    if (ar_upstream_add (self->upstream, fetch->easy)) {
        s_call_free (fetch);
        ar_google_token_cache_fetch_failed (self->google_token, ar_mono_now ());
        return;
    }
    ar_google_token_cache_fetch_started (self->google_token);
    s_arm (self);
}

static void s_token_done (s_call_t *fetch, CURLcode result)
{
    ar_provider_t *self = fetch->provider;
    long status = 0;
    curl_easy_getinfo (fetch->easy, CURLINFO_RESPONSE_CODE, &status);
    s_easy_release (fetch);
    ar_mono_ms now = ar_mono_now ();
    char *token = NULL;
    int64_t expires_in = 0;
    bool ok = result == CURLE_OK && status == 200 &&
              ar_google_token_parse (fetch->out.data, fetch->out.len, &token, &expires_in) == 0 &&
              ar_google_token_cache_fetch_done (self->google_token, token, expires_in, now) == 0;
    ar_google_secret_free (&token);
    if (!ok) {
        char reason[128] = "no answer";
        if (result == CURLE_OK)
            ar_google_token_reason (fetch->out.data, fetch->out.len, reason, sizeof reason);
        zsys_warning ("provider: the Vertex AI token exchange failed (HTTP %ld, curl %d: %s)",
                      status, (int)result, reason);
        ar_google_token_cache_fetch_failed (self->google_token, now);
    }
    //  The reply held the token and the request the signed assertion.
    explicit_bzero (fetch->out.data, fetch->out.len);
    explicit_bzero (fetch->body.data, fetch->body.len);
    s_call_free (fetch);
    s_call_t *waiting = self->token_waiting;
    self->token_waiting = NULL;
    while (waiting) {
        s_call_t *next = waiting->token_next;
        waiting->waiting_token = false;
        waiting->token_next = NULL;
        if (ok)
            s_send (waiting);
        else
            s_refuse (waiting, 502,
                      "The gateway could not get a Vertex AI access token for its service "
                      "account.",
                      NULL);
        waiting = next;
    }
}

static const char s_NO_GOOGLE[] =
    "No Google service account for Vertex AI is configured on the gateway "
    "(ANYRAY_PROVIDER_KEY_GOOGLE_VERTEX_AI or GOOGLE_APPLICATION_CREDENTIALS).";

//  Send now with a valid token, else park until the exchange answers.
static void s_google_send (s_call_t *call)
{
    ar_provider_t *self = call->provider;
    if (!self->google) {
        s_refuse (call, 401, s_NO_GOOGLE, NULL);
        return;
    }
    ar_mono_ms now = ar_mono_now ();
    bool fetching = ar_google_token_cache_next_fetch_ms (self->google_token) == INT64_MAX;
    if (!fetching && ar_google_token_cache_should_fetch (self->google_token, now)) {
        s_token_fetch (self); // a refresh runs while calls go on with the old token
        fetching = ar_google_token_cache_next_fetch_ms (self->google_token) == INT64_MAX;
    }
    if (ar_google_token_cache_get (self->google_token, now)) {
        s_send (call);
        return;
    }
    if (!fetching) {
        s_refuse (call, 502,
                  "The gateway could not get a Vertex AI access token for its service account; "
                  "it retries shortly.",
                  NULL);
        return;
    }
    call->waiting_token = true;
    call->token_next = self->token_waiting;
    self->token_waiting = call;
}

//  ---------------------------------------------------------------------------
//  Runtime keys: an admin's keys over the environment's, polled from the shared store.

//  The service account changed: the token (and an exchange in flight) belong to the old one.
//  Calls parked for a token wait for one of the new account's, or are refused without one.
static void s_google_reset (ar_provider_t *self)
{
    for (s_call_t *call = self->calls; call; call = call->next)
        if (call->token_fetch) {
            s_call_free (call); // at most one exchange runs at a time
            break;
        }
    ar_google_token_cache_destroy (&self->google_token); // wipes the old token
    self->google_token = ar_google_token_cache_new ();
    if (!self->google_token) {
        zsys_warning ("provider: out of memory for the Vertex AI token cache; Vertex AI is off");
        self->google = NULL;
    }
    if (!self->token_waiting)
        return;
    if (self->google)
        s_token_fetch (self);
    bool fetching =
        self->google && ar_google_token_cache_next_fetch_ms (self->google_token) == INT64_MAX;
    if (fetching)
        return;
    s_call_t *waiting = self->token_waiting;
    self->token_waiting = NULL;
    while (waiting) {
        s_call_t *next = waiting->token_next;
        waiting->waiting_token = false;
        waiting->token_next = NULL;
        if (self->google)
            s_refuse (waiting, 502,
                      "The gateway could not get a Vertex AI access token for its service "
                      "account.",
                      NULL);
        else
            s_refuse (waiting, 401, s_NO_GOOGLE, NULL);
        waiting = next;
    }
}

//  Take the runtime service account JSON (NULL: none). Only a different JSON is parsed again
//  and drops the token.
static void s_google_apply (ar_provider_t *self, const char *json)
{
    uint8_t digest[sizeof self->google_runtime_digest] = {0};
    unsigned int digest_len = 0;
    if (json && (EVP_Digest (json, strlen (json), digest, &digest_len, EVP_sha256 (), NULL) != 1 ||
                 digest_len != sizeof digest))
        memset (digest, 0, sizeof digest); // cannot tell: treat as new
    else if ((json != NULL) == self->google_runtime_seen &&
             (!json || CRYPTO_memcmp (digest, self->google_runtime_digest, sizeof digest) == 0))
        return; // the same account as before
    ar_google_account_destroy (&self->google_runtime);
    if (json) {
        char error[200] = "";
        self->google_runtime = ar_google_account_parse (json, strlen (json), error, sizeof error);
        if (!self->google_runtime)
            zsys_warning ("anyray-provider: the runtime Vertex AI service account is not usable "
                          "(%s); the environment's applies",
                          error);
    }
    memcpy (self->google_runtime_digest, digest, sizeof digest);
    self->google_runtime_seen = json != NULL;
    self->google = self->google_runtime ? self->google_runtime : self->google_env;
    s_google_reset (self);
}

//  "openai: runtime, anthropic: env, ..." for every provider: slugs and sources, no values.
static void s_keys_summary (ar_provider_t *self, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < self->wire_count; i++) {
        const char *slug = self->wires[i]->slug;
        const char *source;
        if (strcmp (slug, "bedrock") == 0)
            source = self->aws == &self->aws_runtime ? "runtime" : self->aws ? "env" : NULL;
        else if (strcmp (slug, "google-vertex-ai") == 0)
            source = !self->google                          ? NULL
                     : self->google == self->google_runtime ? "runtime"
                                                            : "env";
        else
            source = ar_keyring_source (self->keyring, slug);
        int n = snprintf (buf + used, size - used, "%s%s: %s", i ? ", " : "", slug,
                          source ? source : "none");
        if (n < 0 || (size_t)n >= size - used)
            return; // the line is cut, never wrong
        used += (size_t)n;
    }
}

//  Make the newest runtime keys the ones in use; from is the version before (-1: at start).
static void s_keys_apply (ar_provider_t *self, int64_t from)
{
    for (size_t i = 0; i < self->wire_count; i++) {
        const ar_wire_t *wire = self->wires[i];
        if (!wire->key_headers)
            continue;
        const char *key = ar_provider_keys_get (self->keys, wire->slug);
        if (ar_keyring_set_runtime (self->keyring, wire->slug, key) != 0 && key)
            zsys_warning ("anyray-provider: the runtime %s key is not usable (a control "
                          "character); the environment's applies",
                          wire->slug);
    }
    s_aws_clear (&self->aws_runtime);
    const char *aws = ar_provider_keys_get (self->keys, "bedrock");
    if (aws && s_aws_parse (aws, &self->aws_runtime) != 0)
        zsys_warning ("anyray-provider: the runtime bedrock key is not <access key id>:<secret>"
                      "[:<session token>]; the environment's applies");
    self->aws = self->aws_runtime.access_key_id ? &self->aws_runtime
                : self->aws_env.access_key_id   ? &self->aws_env
                                                : NULL;
    s_google_apply (self, ar_provider_keys_get (self->keys, "google-vertex-ai"));
    char summary[512];
    s_keys_summary (self, summary, sizeof summary);
    if (from < 0) // at start
        zsys_info ("anyray-provider: provider keys version %" PRId64 " (%s)", self->keys_version,
                   summary);
    else
        zsys_info ("anyray-provider: provider keys version %" PRId64 " -> %" PRId64 " (%s)", from,
                   self->keys_version, summary);
}

static void s_keys_poll (ar_provider_t *self)
{
    self->poll_due = ar_mono_now () + self->poll_ms;
    int rc = ar_provider_keys_poll (self->keys);
    if (rc < 0 && !self->keys_failing)
        zsys_warning ("anyray-provider: cannot read the runtime provider keys (version %" PRId64
                      "); the keys in use stay",
                      ar_provider_keys_version (self->keys));
    self->keys_failing = rc < 0;
    if (rc == 1) {
        int64_t from = self->keys_version;
        self->keys_version = ar_provider_keys_version (self->keys);
        s_keys_apply (self, from);
    }
}

//  Open the runtime keys' store; while it will not open, the environment's keys serve and it
//  is tried again now and then.
static void s_keys_open (ar_provider_t *self)
{
    char db[PATH_MAX], error[PATH_MAX + 256] = "";
    int n = snprintf (db, sizeof db, "%s/anyray.db", self->data_dir);
    if (n < 0 || (size_t)n >= sizeof db)
        snprintf (error, sizeof error, "data dir path too long");
    else
        self->keys = ar_provider_keys_new (db, self->data_dir, error, sizeof error);
    if (!self->keys) {
        if (self->poll_due < 0) // once, not at every retry
            zsys_warning ("anyray-provider: runtime provider keys unavailable (%s); the "
                          "environment's keys serve, retrying every %d s",
                          error, s_REOPEN_MS / 1000);
        self->poll_due = ar_mono_now () + s_REOPEN_MS;
        return;
    }
    self->keys_version = ar_provider_keys_version (self->keys);
    s_keys_apply (self, -1);
    self->poll_due = ar_mono_now () + self->poll_ms;
}

static ar_wire_shape_t s_error_shape (const char *slug)
{
    if (strcmp (slug, "anthropic") == 0)
        return AR_SHAPE_ANTHROPIC;
    if (strcmp (slug, "bedrock") == 0)
        return AR_SHAPE_CONVERSE;
    if (strcmp (slug, "google-vertex-ai") == 0)
        return AR_SHAPE_GEMINI;
    return AR_SHAPE_OPENAI;
}

void ar_provider_request (ar_provider_t *self, ar_job_t *job)
{
    s_call_t *call = s_call_new (self, job);
    if (!call) {
        ar_job_t *lost = job;
        self->host.error (self->host.arg, &lost, 503, "provider out of memory");
        return;
    }
    const ar_envelope_t *env = &job->env;
    const char *slug = ar_envelope_meta_get (env, "provider");
    size_t index = 0;
    while (index < self->wire_count && (!slug || strcmp (self->wires[index]->slug, slug) != 0))
        index++;
    if (index == self->wire_count) {
        s_fail (call, 502, "unknown provider");
        return;
    }
    call->wire = self->wires[index];
    call->stream = s_meta_is (env, "stream", "1");
    call->strip_usage = s_meta_is (env, "strip_usage", "1");
    if (job->deadline - ar_mono_now () <= 0) {
        s_fail (call, 504, "upstream timeout");
        return;
    }
    //  Where it goes and in which shape.
    ar_target_t *target = &call->target;
    const char *model = ar_envelope_meta_get (env, "model");
    const char *project = ar_envelope_meta_get (env, "project");
    if ((!project || !*project) && self->google)
        project = ar_google_account_project_id (self->google);
    target->slug = call->wire->slug;
    target->base_url = ar_envelope_meta_get (env, "base_url");
    target->path = ar_envelope_meta_get (env, "path");
    target->method = ar_envelope_meta_get (env, "method");
    target->model = model ? model : "";
    target->caller = s_meta_is (env, "shape", "anthropic") ? AR_SHAPE_ANTHROPIC : AR_SHAPE_OPENAI;
    target->stream = call->stream;
    target->deployment = ar_envelope_meta_get (env, "deployment");
    target->api_version = ar_envelope_meta_get (env, "api_version");
    target->project = project;
    target->location = ar_envelope_meta_get (env, "location");
    if (ar_target_plan (target) != 0) {
        s_refuse (call, target->status, target->message, NULL);
        return;
    }
    ar_answer_config_t answer = {
        .caller = target->caller,
        .upstream = target->upstream,
        .error_shape = s_error_shape (target->slug),
        .framing = target->framing,
        .stream = call->stream,
        .strip_usage = call->strip_usage && !target->translate,
        .include_usage = s_meta_is (env, "include_usage", "1"),
        .model = target->model,
        .usage_wire = target->upstream == AR_SHAPE_ANTHROPIC ? &ar_wire_anthropic
                      : target->upstream == AR_SHAPE_OPENAI  ? &ar_wire_openai
                                                             : NULL,
    };
    call->answer = ar_answer_new (&answer);
    if (!call->answer) {
        s_fail (call, 503, "provider out of memory");
        return;
    }
    if (s_prepare_body (call, job->body ? zframe_data (job->body) : NULL,
                        job->body ? zframe_size (job->body) : 0) != 0)
        return;
    if (target->auth == AR_AUTH_GOOGLE)
        s_google_send (call);
    else
        s_send (call);
}

//  ---------------------------------------------------------------------------
//  The job ends without a reply: stop buying tokens now.

void ar_provider_cancel (ar_provider_t *self, ar_job_t *job)
{
    s_call_t *call = job->user;
    if (!call)
        return;
    call->job = NULL;
    job->user = NULL;
    s_call_free (call);
    s_arm (self);
}

//  ---------------------------------------------------------------------------
//  Calls in flight.

size_t ar_provider_calls (ar_provider_t *self)
{
    return self->call_count;
}

//  ---------------------------------------------------------------------------
//  Self-test: the engine end to end against a loopback upstream, with a host that records every
//  reply the way the runtime would carry it.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "ar_fake_upstream.h"

#define s_SECRET "sk-test-SECRET-4242"

typedef struct {
    int final; // 0 none, 1 END, 2 ERROR
    size_t messages;
    size_t chunks;
    bool whole; // every CHUNK ended at an event boundary
    bool late;  // a message after the final one
    uint16_t first_status;
    char first_reason[AR_REASON_MAX + 1];
    char content_type[256];
    char retry_after[24];
    char input_tokens[24], output_tokens[24], model[129];
    uint16_t error_code;
    char error_reason[AR_REASON_MAX + 1];
    ar_buf_t bytes; // CHUNK bodies then the END body
} s_record_t;

typedef struct {
    ar_job_t job; // first: the host gets &job and finds the record
    s_record_t rec;
} s_test_job_t;

typedef struct {
    ar_mono_ms timer_due;
    int accept_every; // take only every n-th CHUNK offered (0: take all)
    int chunk_calls;
    int refuse_final; // refuse this many END/ERROR attempts
    bool secret_seen;
} s_host_t;

static void s_check_secret (s_host_t *host, const ar_envelope_t *reply, const void *data,
                            size_t len)
{
    size_t secret_len = strlen (s_SECRET);
    if (data && len >= secret_len && memmem (data, len, s_SECRET, secret_len))
        host->secret_seen = true;
    if (reply->has_status && strstr (reply->status_reason, s_SECRET))
        host->secret_seen = true;
    for (size_t i = 0; i < reply->meta_count; i++) {
        const char *key, *value;
        ar_envelope_meta_at (reply, i, &key, &value);
        if (strstr (value, s_SECRET) || strstr (key, s_SECRET))
            host->secret_seen = true;
    }
}

static void s_copy_meta (const ar_envelope_t *reply, const char *key, char *out, size_t size)
{
    const char *value = ar_envelope_meta_get (reply, key);
    if (value)
        snprintf (out, size, "%s", value);
}

//  Like the runtime: a message is taken, recorded, and its status and meta cleared.
static void s_take (s_host_t *host, s_test_job_t *test, const void *data, size_t len)
{
    s_record_t *rec = &test->rec;
    ar_envelope_t *reply = &test->job.reply;
    s_check_secret (host, reply, data, len);
    if (rec->final)
        rec->late = true;
    if (rec->messages++ == 0 && reply->has_status) {
        rec->first_status = reply->status_code;
        snprintf (rec->first_reason, sizeof rec->first_reason, "%s", reply->status_reason);
        s_copy_meta (reply, "content_type", rec->content_type, sizeof rec->content_type);
        s_copy_meta (reply, "retry_after", rec->retry_after, sizeof rec->retry_after);
    }
    s_copy_meta (reply, "input_tokens", rec->input_tokens, sizeof rec->input_tokens);
    s_copy_meta (reply, "output_tokens", rec->output_tokens, sizeof rec->output_tokens);
    s_copy_meta (reply, "upstream_model", rec->model, sizeof rec->model);
    if (len)
        assert (ar_buf_append (&rec->bytes, data, len, SIZE_MAX) == 0);
    reply->meta_count = 0;
    reply->meta_used = 0;
    reply->has_status = false;
}

//  Like the runtime: the job is gone after END or ERROR (poisoned here, to catch a late use).
static void s_retire (s_test_job_t *test, ar_job_t **job_p, int final)
{
    test->rec.final = final;
    zframe_destroy (&test->job.body);
    memset (&test->job, 0x5a, sizeof test->job);
    *job_p = NULL;
}

static int s_host_chunk (void *arg, ar_job_t *job, const void *data, size_t len)
{
    s_host_t *host = arg;
    s_test_job_t *test = (s_test_job_t *)job;
    if (host->accept_every && ++host->chunk_calls % host->accept_every != 0) {
        job->reply.meta_count = 0; // what a refused send leaves is not to be relied on
        job->reply.meta_used = 0;
        job->reply.has_status = false;
        return -1;
    }
    test->rec.chunks++;
    if (len < 2 || memcmp ((const char *)data + len - 2, "\n\n", 2) != 0)
        test->rec.whole = false;
    s_take (host, test, data, len);
    return 0;
}

static int s_host_end (void *arg, ar_job_t **job_p, const void *data, size_t len)
{
    s_host_t *host = arg;
    s_test_job_t *test = (s_test_job_t *)*job_p;
    if (host->refuse_final > 0) {
        host->refuse_final--;
        return -1; // and the job is kept
    }
    s_take (host, test, data, len);
    s_retire (test, job_p, 1);
    return 0;
}

static int s_host_error (void *arg, ar_job_t **job_p, uint16_t code, const char *reason)
{
    s_host_t *host = arg;
    s_test_job_t *test = (s_test_job_t *)*job_p;
    if (host->refuse_final > 0) {
        host->refuse_final--;
        return -1;
    }
    if (strstr (reason, s_SECRET))
        host->secret_seen = true;
    s_take (host, test, NULL, 0);
    test->rec.error_code = code;
    snprintf (test->rec.error_reason, sizeof test->rec.error_reason, "%s", reason);
    s_retire (test, job_p, 2);
    return 0;
}

static void s_host_set_timer (void *arg, ar_mono_ms due)
{
    ((s_host_t *)arg)->timer_due = due;
}

static s_test_job_t *s_job_new (const char *slug, const char *base_url, const char *method,
                                const char *path, const char *body, bool stream, bool strip,
                                const char *auth, ar_mono_ms budget)
{
    s_test_job_t *test = calloc (1, sizeof *test);
    assert (test);
    test->rec.whole = true;
    ar_envelope_init (&test->job.env);
    ar_envelope_init (&test->job.reply);
    ar_envelope_t *env = &test->job.env;
    assert (ar_envelope_meta_set (env, "provider", slug) == 0);
    assert (ar_envelope_meta_set (env, "base_url", base_url) == 0);
    assert (ar_envelope_meta_set (env, "method", method) == 0);
    assert (ar_envelope_meta_set (env, "path", path) == 0);
    assert (ar_envelope_meta_set (env, "stream", stream ? "1" : "0") == 0);
    assert (ar_envelope_meta_set (env, "strip_usage", strip ? "1" : "0") == 0);
    if (auth)
        assert (ar_envelope_meta_set (env, "auth", auth) == 0);
    if (body)
        test->job.body = zframe_new (body, strlen (body));
    test->job.deadline = ar_mono_now () + budget;
    return test;
}

static void s_job_destroy (s_test_job_t **test_p)
{
    s_test_job_t *test = *test_p;
    if (!test->rec.final)
        zframe_destroy (&test->job.body);
    ar_buf_free (&test->rec.bytes);
    free (test);
    *test_p = NULL;
}

//  Run the loop as the actor would, until every job has its final message (or `until` says
//  stop), for at most max_ms.
static void s_pump (ar_provider_t *provider, s_host_t *host, s_test_job_t **tests, size_t count,
                    bool (*until) (s_test_job_t **, size_t), int max_ms)
{
    ar_mono_ms give_up = ar_mono_now () + max_ms;
    while (ar_mono_now () < give_up) {
        size_t open = 0;
        for (size_t i = 0; i < count; i++)
            open += tests[i]->rec.final == 0;
        if ((until && until (tests, count)) || (!until && open == 0))
            return;
        ar_mono_ms now = ar_mono_now ();
        int wait = 10;
        if (host->timer_due >= 0)
            wait = host->timer_due <= now
                       ? 0
                       : (int)(host->timer_due - now < 10 ? host->timer_due - now : 10);
        struct pollfd item = {.fd = ar_provider_fd (provider), .events = POLLIN};
        poll (&item, 1, wait);
        if (item.revents & POLLIN)
            ar_provider_ready (provider);
        if (host->timer_due >= 0 && ar_mono_now () >= host->timer_due) {
            host->timer_due = -1; // one-shot, like the runtime's
            ar_provider_timer (provider);
        }
    }
}

static bool s_has_chunk (s_test_job_t **tests, size_t count)
{
    return tests[0]->rec.chunks > 0;
}

static bool s_same (const ar_buf_t *bytes, const char *text)
{
    return bytes->len == strlen (text) && memcmp (bytes->data, text, bytes->len) == 0;
}

static void s_provider_request (ar_provider_t *provider, s_test_job_t *test)
{
    ar_provider_request (provider, &test->job);
}

//  ---------------------------------------------------------------------------
//  Self-test of the runtime keys: the environment's, an admin's over them, and back.

#include <openssl/pem.h>

static bool verbose_keys;

static bool s_never (s_test_job_t **tests, size_t count)
{
    return false;
}

//  Run the engine (its timer included) until it applied keys version `version`.
static void s_wait_keys (ar_provider_t *provider, s_host_t *host, int64_t version)
{
    ar_mono_ms give_up = ar_mono_now () + 5000;
    while (provider->keys_version != version && ar_mono_now () < give_up)
        s_pump (provider, host, NULL, 0, s_never, 20);
    assert (provider->keys_version == version);
}

//  One call of slug (model, body) to the fake upstream; the Authorization it saw into auth.
static s_test_job_t *s_test_call (ar_provider_t *provider, s_host_t *host, ar_fake_upstream_t *fake,
                                  const char *slug, const char *model, const char *body, char *auth,
                                  size_t auth_size)
{
    s_test_job_t *test = s_job_new (slug, ar_fake_upstream_base_url (fake), "POST",
                                    "/chat/completions", body, false, false, NULL, 5000);
    if (model)
        assert (ar_envelope_meta_set (&test->job.env, "model", model) == 0);
    s_provider_request (provider, test);
    s_pump (provider, host, &test, 1, NULL, 5000);
    assert (test->rec.final);
    ar_fake_upstream_last_auth (fake, auth, auth_size);
    return test;
}

static void s_test_put_keys (ar_provider_keys_t *admin, const char *json, int64_t want)
{
    char error[256] = "";
    int64_t version = 0;
    assert (ar_provider_keys_put (admin, json, strlen (json), "admin", &version, error,
                                  sizeof error) == 0);
    assert (version == want);
}

//  A Vertex AI service account JSON with a fresh RSA key (caller frees).
static char *s_test_account (const char *email)
{
    EVP_PKEY *key = EVP_RSA_gen (2048);
    assert (key);
    BIO *bio = BIO_new (BIO_s_mem ());
    assert (bio && PEM_write_bio_PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL) == 1);
    char *pem = NULL;
    long pem_len = BIO_get_mem_data (bio, &pem);
    json_t *account =
        json_pack ("{ss ss ss so ss}", "type", "service_account", "client_email", email,
                   "project_id", "proj-1", "private_key", json_stringn (pem, (size_t)pem_len),
                   "token_uri", "http://127.0.0.1:1/token");
    assert (account);
    char *text = json_dumps (account, JSON_COMPACT);
    json_decref (account);
    BIO_free (bio);
    EVP_PKEY_free (key);
    assert (text);
    return text;
}

static void s_test_runtime_keys (ar_fake_upstream_t *fake, const ar_provider_host_t *binding,
                                 s_host_t *host)
{
    static const char *const vars[] = {
        "ANYRAY_CONFIG_POLL_MS",          "ANYRAY_PROVIDER_KEY_OPENAI",
        "ANYRAY_PROVIDER_KEY_BEDROCK",    "ANYRAY_PROVIDER_KEY_GOOGLE_VERTEX_AI",
        "GOOGLE_APPLICATION_CREDENTIALS", NULL};
    char *saved[8] = {0};
    for (size_t i = 0; vars[i]; i++) {
        const char *value = getenv (vars[i]);
        saved[i] = value ? strdup (value) : NULL;
        unsetenv (vars[i]);
    }
    setenv ("ANYRAY_CONFIG_POLL_MS", "20", 1);
    setenv ("ANYRAY_PROVIDER_KEY_OPENAI", s_SECRET, 1);
    setenv ("ANYRAY_PROVIDER_KEY_BEDROCK", "AKIDENV:env-secret", 1);
    char dir[] = "/tmp/ar_provider_test.XXXXXX";
    assert (mkdtemp (dir));
    char db[PATH_MAX], auth[512], error[512], summary[512];
    snprintf (db, sizeof db, "%s/anyray.db", dir);
    const char *plain_body = "{\"model\":\"gpt-4o-mini\",\"messages\":[]}";
    const char *chat_body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    const char *runtime_key = "sk-runtime-KEY-1";

    //  A store that will not open: the environment's keys serve, and it is retried later.
    ar_provider_t *provider = ar_provider_new (binding, "/nonexistent/anyray-data");
    assert (provider && !provider->keys && provider->poll_due > ar_mono_now () + 1000);
    s_test_job_t *test =
        s_test_call (provider, host, fake, "openai", NULL, plain_body, auth, sizeof auth);
    assert (test->rec.final == 1 && streq (auth, "Bearer " s_SECRET));
    s_job_destroy (&test);
    ar_provider_destroy (&provider);

    //  The environment's key first; the poll is armed on the host's one timer.
    host->timer_due = -1;
    provider = ar_provider_new (binding, dir);
    assert (provider && provider->keys && provider->keys_version == 0);
    assert (host->timer_due >= 0 && host->timer_due <= ar_mono_now () + 20);
    test = s_test_call (provider, host, fake, "openai", NULL, plain_body, auth, sizeof auth);
    assert (streq (auth, "Bearer " s_SECRET));
    s_job_destroy (&test);

    //  An admin sets a key through another handle on the same db (as the edge does): it wins
    //  after the next poll.
    ar_provider_keys_t *admin = ar_provider_keys_new (db, dir, error, sizeof error);
    assert (admin);
    char put[256];
    snprintf (put, sizeof put, "{\"openai\":\"%s\"}", runtime_key);
    s_test_put_keys (admin, put, 1);
    s_wait_keys (provider, host, 1);
    test = s_test_call (provider, host, fake, "openai", NULL, plain_body, auth, sizeof auth);
    assert (strncmp (auth, "Bearer ", 7) == 0 && streq (auth + 7, runtime_key));
    s_job_destroy (&test);
    s_keys_summary (provider, summary, sizeof summary);
    if (verbose_keys)
        printf ("   keys: %s\n", summary);
    assert (strstr (summary, "openai: runtime") && strstr (summary, "anthropic: none"));
    assert (strstr (summary, "bedrock: env") && strstr (summary, "google-vertex-ai: none"));
    assert (!strstr (summary, runtime_key) && !strstr (summary, s_SECRET));

    //  A call in flight keeps the key it started with while a poll removes (and wipes) it.
    test = s_job_new ("openai", ar_fake_upstream_base_url (fake), "POST", "/chat/completions",
                      plain_body, false, false, NULL, 5000);
    s_provider_request (provider, test); // headers built; nothing sent before the pump
    s_test_put_keys (admin, "{\"openai\":null}", 2);
    provider->poll_due = 0;
    ar_provider_timer (provider);
    assert (provider->keys_version == 2);
    s_pump (provider, host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1 && test->rec.first_status == 200);
    ar_fake_upstream_last_auth (fake, auth, sizeof auth);
    assert (strncmp (auth, "Bearer ", 7) == 0 && streq (auth + 7, runtime_key));
    s_job_destroy (&test);
    //  ... and the next call has the environment's again.
    test = s_test_call (provider, host, fake, "openai", NULL, plain_body, auth, sizeof auth);
    assert (streq (auth, "Bearer " s_SECRET));
    s_job_destroy (&test);

    //  Bedrock: runtime credentials sign instead of the environment's, until removed.
    const char *nova = "amazon.nova-pro-v1:0";
    test = s_test_call (provider, host, fake, "bedrock", nova, chat_body, auth, sizeof auth);
    assert (strstr (auth, "Credential=AKIDENV/"));
    s_job_destroy (&test);
    s_test_put_keys (admin, "{\"bedrock\":\"AKIDRUNTIME:runtime-secret:runtime-token\"}", 3);
    s_wait_keys (provider, host, 3);
    test = s_test_call (provider, host, fake, "bedrock", nova, chat_body, auth, sizeof auth);
    assert (strstr (auth, "Credential=AKIDRUNTIME/"));
    s_job_destroy (&test);
    s_keys_summary (provider, summary, sizeof summary);
    assert (strstr (summary, "openai: env") && strstr (summary, "bedrock: runtime"));
    s_test_put_keys (admin, "{\"bedrock\":null}", 4);
    s_wait_keys (provider, host, 4);
    test = s_test_call (provider, host, fake, "bedrock", nova, chat_body, auth, sizeof auth);
    assert (strstr (auth, "Credential=AKIDENV/"));
    s_job_destroy (&test);

    //  Vertex AI: a runtime service account where the environment has none; a new one drops
    //  the token cached for the old.
    assert (provider->google == NULL);
    char *first = s_test_account ("first@proj-1.iam.gserviceaccount.com");
    char *second = s_test_account ("second@proj-1.iam.gserviceaccount.com");
    json_t *wrapper = json_pack ("{s{ss}}", "keys", "google-vertex-ai", first);
    char *text = json_dumps (wrapper, JSON_COMPACT);
    json_decref (wrapper);
    s_test_put_keys (admin, text, 5);
    free (text);
    s_wait_keys (provider, host, 5);
    assert (provider->google && provider->google == provider->google_runtime);
    assert (streq (ar_google_account_client_email (provider->google),
                   "first@proj-1.iam.gserviceaccount.com"));
    ar_mono_ms now = ar_mono_now ();
    assert (ar_google_token_cache_fetch_done (provider->google_token, "ya29.first-token", 3600,
                                              now) == 0);
    assert (ar_google_token_cache_get (provider->google_token, now));
    //  Another version that leaves the account alone keeps the token.
    s_test_put_keys (admin, "{\"anthropic\":\"sk-ant-runtime\"}", 6);
    s_wait_keys (provider, host, 6);
    assert (ar_google_token_cache_get (provider->google_token, ar_mono_now ()));
    wrapper = json_pack ("{ss}", "google-vertex-ai", second);
    text = json_dumps (wrapper, JSON_COMPACT);
    json_decref (wrapper);
    s_test_put_keys (admin, text, 7);
    free (text);
    s_wait_keys (provider, host, 7);
    assert (streq (ar_google_account_client_email (provider->google),
                   "second@proj-1.iam.gserviceaccount.com"));
    assert (ar_google_token_cache_get (provider->google_token, ar_mono_now ()) == NULL);
    //  A call parked for the new account's token (the exchange cannot connect) is refused when
    //  the account goes away with no environment's to fall back to; the exchange stops.
    test = s_job_new ("google-vertex-ai", ar_fake_upstream_base_url (fake), "POST",
                      "/chat/completions", chat_body, false, false, NULL, 5000);
    assert (ar_envelope_meta_set (&test->job.env, "model", "gemini-1.5-pro") == 0);
    s_provider_request (provider, test);
    assert (test->rec.final == 0 && test->job.user && ((s_call_t *)test->job.user)->waiting_token);
    assert (ar_provider_calls (provider) == 2); // the call and the token exchange
    s_test_put_keys (admin, "{\"google-vertex-ai\":null}", 8);
    provider->poll_due = 0;
    ar_provider_timer (provider);
    assert (provider->keys_version == 8 && provider->google == NULL);
    assert (test->rec.final == 1 && test->rec.first_status == 401);
    assert (ar_provider_calls (provider) == 0);
    s_job_destroy (&test);
    explicit_bzero (first, strlen (first));
    explicit_bzero (second, strlen (second));
    free (first);
    free (second);
    assert (!host->secret_seen);

    ar_provider_destroy (&provider);
    ar_provider_keys_destroy (&admin);
    char cmd[PATH_MAX + 16];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
    for (size_t i = 0; vars[i]; i++) {
        unsetenv (vars[i]);
        if (saved[i]) {
            setenv (vars[i], saved[i], 1);
            explicit_bzero (saved[i], strlen (saved[i]));
            free (saved[i]);
        }
    }
}

void ar_provider_test (bool verbose)
{
    //  @selftest
    assert (curl_global_init (CURL_GLOBAL_DEFAULT) == CURLE_OK);
    ar_fake_upstream_t *fake = ar_fake_upstream_new ();
    assert (fake);
    const char *base = ar_fake_upstream_base_url (fake);
    const char *stream_body = "{\"model\":\"gpt-4o\",\"stream\":true,"
                              "\"stream_options\":{\"include_usage\":true}}";
    const char *plain_body = "{\"model\":\"gpt-4o-mini\",\"messages\":[]}";
    char auth[512];

    s_host_t host = {.timer_due = -1};
    ar_provider_host_t binding = {.arg = &host,
                                  .chunk = s_host_chunk,
                                  .end = s_host_end,
                                  .error = s_host_error,
                                  .set_timer = s_host_set_timer};
    const char *had = getenv ("ANYRAY_PROVIDER_KEY_OPENAI");
    char *saved = had ? strdup (had) : NULL;
    setenv ("ANYRAY_PROVIDER_KEY_OPENAI", s_SECRET, 1);
    ar_provider_t *provider = ar_provider_new (&binding, NULL);
    assert (provider);
    assert (ar_provider_fd (provider) >= 0);

    //  Streaming, strip_usage: whole events as they come, the usage-only event dropped, usage
    //  on the END, the server-held key sent (not the caller's), no Expect header.
    s_test_job_t *test = s_job_new ("openai", base, "POST", "/chat/completions", stream_body, true,
                                    true, "Bearer caller-token", 5000);
    s_provider_request (provider, test);
    assert (ar_provider_calls (provider) == 1);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1 && !test->rec.late);
    assert (test->rec.first_status == 200 && streq (test->rec.first_reason, "upstream"));
    assert (strncmp (test->rec.content_type, "text/event-stream", 17) == 0);
    assert (s_same (&test->rec.bytes, ar_fake_upstream_stream_stripped ()));
    assert (test->rec.whole && test->rec.chunks >= 2 && test->rec.messages == test->rec.chunks + 1);
    assert (streq (test->rec.input_tokens, "12") && streq (test->rec.output_tokens, "5"));
    assert (streq (test->rec.model, "gpt-4o-2024-08-06"));
    ar_fake_upstream_last_auth (fake, auth, sizeof auth);
    assert (streq (auth, "Bearer " s_SECRET));
    assert (!ar_fake_upstream_last_expect (fake));
    assert (ar_provider_calls (provider) == 0);
    s_job_destroy (&test);

    //  Streaming without strip_usage, while the broker refuses every other CHUNK offered: every
    //  byte arrives, in order, still cut at event boundaries.
    host.accept_every = 2;
    test = s_job_new ("openai", base, "POST", "/chat/completions", stream_body, true, false, NULL,
                      5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1 && test->rec.whole);
    assert (s_same (&test->rec.bytes, ar_fake_upstream_stream ()));
    assert (streq (test->rec.input_tokens, "12") && streq (test->rec.output_tokens, "5"));
    s_job_destroy (&test);

    //  A long fast stream while the broker takes one CHUNK in four: the transfer pauses (curl
    //  holds the bytes) and resumes on the retry timer; nothing is lost.
    host.accept_every = 4;
    uint64_t refused = provider->refused;
    test = s_job_new ("openai", base, "POST", "/many", stream_body, true, true, NULL, 10000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 10000);
    assert (test->rec.final == 1 && test->rec.whole && test->rec.first_status == 200);
    assert (s_same (&test->rec.bytes, ar_fake_upstream_many ()));
    assert (provider->refused > refused && provider->pauses > 0);
    s_job_destroy (&test);
    host.accept_every = 0;

    //  Non-stream: one END with the whole body, status, content type and usage; the next
    //  request reuses the kept-alive connection.
    test = s_job_new ("openai", base, "POST", "/chat/completions", plain_body, false, false, NULL,
                      5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1 && test->rec.messages == 1 && test->rec.chunks == 0);
    assert (test->rec.first_status == 200 && streq (test->rec.content_type, "application/json"));
    assert (s_same (&test->rec.bytes, ar_fake_upstream_body ()));
    assert (streq (test->rec.input_tokens, "9") && streq (test->rec.output_tokens, "1"));
    assert (streq (test->rec.model, "gpt-4o-mini-2024-07-18"));
    s_job_destroy (&test);
    size_t connections = ar_fake_upstream_connections (fake);
    test = s_job_new ("openai", base, "POST", "/chat/completions", plain_body, false, false, NULL,
                      5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1 && s_same (&test->rec.bytes, ar_fake_upstream_body ()));
    assert (ar_fake_upstream_connections (fake) == connections);
    s_job_destroy (&test);

    //  An upstream error: its status and its body, unchanged, no usage. Also when streaming.
    test = s_job_new ("openai", base, "POST", "/error", stream_body, true, true, NULL, 5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1 && test->rec.messages == 1 && test->rec.first_status == 401);
    assert (streq (test->rec.content_type, "application/json"));
    assert (s_same (&test->rec.bytes, ar_fake_upstream_error_body ()));
    assert (!test->rec.input_tokens[0] && !test->rec.output_tokens[0]);
    s_job_destroy (&test);

    //  A rate limit: its status, body, and when to come back.
    test = s_job_new ("openai", base, "POST", "/limited", plain_body, false, false, NULL, 5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1 && test->rec.first_status == 429);
    assert (streq (test->rec.retry_after, "7"));
    assert (s_same (&test->rec.bytes, ar_fake_upstream_error_body ()));
    s_job_destroy (&test);

    //  GET.
    test = s_job_new ("openai", base, "GET", "/models", NULL, false, false, NULL, 5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1 && test->rec.first_status == 200);
    assert (strstr (test->rec.bytes.data, "gpt-4o"));
    s_job_destroy (&test);

    //  Nobody listening: 502 before any byte.
    char closed[64];
    {
        int probe = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
        socklen_t addr_len = sizeof addr;
        assert (bind (probe, (struct sockaddr *)&addr, sizeof addr) == 0);
        assert (getsockname (probe, (struct sockaddr *)&addr, &addr_len) == 0);
        close (probe);
        snprintf (closed, sizeof closed, "http://127.0.0.1:%d/v1", ntohs (addr.sin_port));
    }
    test = s_job_new ("openai", closed, "POST", "/chat/completions", plain_body, false, false, NULL,
                      5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 2 && test->rec.messages == 1 && test->rec.error_code == 502);
    assert (streq (test->rec.error_reason, "upstream unreachable"));
    s_job_destroy (&test);

    //  The deadline passes before the upstream answers: 504.
    ar_mono_ms started = ar_mono_now ();
    test = s_job_new ("openai", base, "POST", "/slow", plain_body, false, false, NULL, 300);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 3000);
    assert (test->rec.final == 2 && test->rec.error_code == 504);
    assert (streq (test->rec.error_reason, "upstream timeout"));
    assert (ar_mono_now () - started < 1500);
    s_job_destroy (&test);

    //  The stream breaks after bytes went out: 502 stream broken, after the whole first event.
    test = s_job_new ("openai", base, "POST", "/broken", stream_body, true, true, NULL, 5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 2 && test->rec.error_code == 502);
    assert (streq (test->rec.error_reason, "upstream stream broken"));
    assert (test->rec.chunks == 1 && test->rec.whole && test->rec.first_status == 200);
    s_job_destroy (&test);

    //  Cancel mid-stream: the transfer stops at once (the upstream sees the hang-up), nothing
    //  more is sent.
    size_t hangups = ar_fake_upstream_hangups (fake);
    test = s_job_new ("openai", base, "POST", "/hang", stream_body, true, true, NULL, 5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, s_has_chunk, 5000);
    assert (test->rec.chunks == 1 && test->rec.final == 0);
    ar_provider_cancel (provider, &test->job);
    assert (test->job.user == NULL && ar_provider_calls (provider) == 0);
    ar_mono_ms wait_until = ar_mono_now () + 2000;
    while (ar_fake_upstream_hangups (fake) == hangups && ar_mono_now () < wait_until)
        s_pump (provider, &host, &test, 1, s_has_chunk, 10);
    assert (ar_fake_upstream_hangups (fake) == hangups + 1);
    assert (test->rec.messages == 1 && test->rec.final == 0);
    s_job_destroy (&test);

    //  Requests that cannot be sent are answered at once.
    test = s_job_new ("bedrock-v0", base, "POST", "/chat/completions", plain_body, false, false,
                      NULL, 5000);
    s_provider_request (provider, test);
    assert (test->rec.final == 2 && test->rec.error_code == 502);
    assert (streq (test->rec.error_reason, "unknown provider"));
    s_job_destroy (&test);
    test = s_job_new ("openai", base, "PUT", "/chat/completions", plain_body, false, false, NULL,
                      5000);
    s_provider_request (provider, test);
    assert (test->rec.final == 2 && test->rec.error_code == 400);
    s_job_destroy (&test);
    test = s_job_new ("openai", "file:///etc", "POST", "/passwd", plain_body, false, false, NULL,
                      5000);
    s_provider_request (provider, test);
    assert (test->rec.final == 2 && test->rec.error_code == 400);
    s_job_destroy (&test);
    test =
        s_job_new ("openai", base, "POST", "/chat/completions", plain_body, false, false, NULL, -1);
    s_provider_request (provider, test);
    assert (test->rec.final == 2 && test->rec.error_code == 504);
    s_job_destroy (&test);
    assert (ar_provider_calls (provider) == 0);

    //  The broker refuses the END twice: it is offered again until taken.
    host.refuse_final = 2;
    test = s_job_new ("openai", base, "POST", "/chat/completions", stream_body, true, true, NULL,
                      5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1 && host.refuse_final == 0);
    assert (s_same (&test->rec.bytes, ar_fake_upstream_stream_stripped ()));
    assert (streq (test->rec.input_tokens, "12"));
    s_job_destroy (&test);

    //  Many at once on one multi handle.
    enum { s_MANY = 64 };
    s_test_job_t *tests[s_MANY];
    for (size_t i = 0; i < s_MANY; i++) {
        tests[i] = s_job_new ("openai", base, "POST", "/chat/completions",
                              i % 2 ? stream_body : plain_body, i % 2, true, NULL, 10000);
        s_provider_request (provider, tests[i]);
    }
    assert (ar_provider_calls (provider) == s_MANY);
    s_pump (provider, &host, tests, s_MANY, NULL, 10000);
    for (size_t i = 0; i < s_MANY; i++) {
        assert (tests[i]->rec.final == 1 && tests[i]->rec.whole);
        assert (s_same (&tests[i]->rec.bytes,
                        i % 2 ? ar_fake_upstream_stream_stripped () : ar_fake_upstream_body ()));
        s_job_destroy (&tests[i]);
    }

    //  Destroyed with a call in flight: it stops, nothing is sent.
    test = s_job_new ("openai", base, "POST", "/hang", stream_body, true, true, NULL, 5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, s_has_chunk, 5000);
    size_t messages = test->rec.messages;
    ar_provider_destroy (&provider);
    assert (provider == NULL && test->job.user == NULL && test->rec.messages == messages);
    s_job_destroy (&test);
    assert (!host.secret_seen);

    //  No server-held key: the caller's own credential goes upstream; none, then nothing.
    unsetenv ("ANYRAY_PROVIDER_KEY_OPENAI");
    provider = ar_provider_new (&binding, NULL);
    test = s_job_new ("openai", base, "POST", "/chat/completions", plain_body, false, false,
                      "Bearer caller-token", 5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1);
    ar_fake_upstream_last_auth (fake, auth, sizeof auth);
    assert (streq (auth, "Bearer caller-token"));
    s_job_destroy (&test);
    test = s_job_new ("openai", base, "POST", "/chat/completions", plain_body, false, false, NULL,
                      5000);
    s_provider_request (provider, test);
    s_pump (provider, &host, &test, 1, NULL, 5000);
    assert (test->rec.final == 1);
    ar_fake_upstream_last_auth (fake, auth, sizeof auth);
    assert (streq (auth, ""));
    s_job_destroy (&test);
    ar_provider_destroy (&provider);

    verbose_keys = verbose;
    s_test_runtime_keys (fake, &binding, &host);

    ar_fake_upstream_destroy (&fake);
    if (saved) {
        setenv ("ANYRAY_PROVIDER_KEY_OPENAI", saved, 1);
        explicit_bzero (saved, strlen (saved));
        free (saved);
    }
    curl_global_cleanup ();
    //  @end
    if (verbose)
        printf ("ar_provider: ok\n");
}
