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
*/
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <czmq.h>
#include "ar_provider.h"
#include "ar_buf.h"
#include "ar_keyring.h"
#include "ar_sse_splitter.h"
#include "ar_upstream.h"
#include "ar_upstream_request.h"
#include "ar_wire.h"

#define s_MAX_WIRES   16
#define s_IDLE_EASY   256                 // easy handles kept for reuse
#define s_BODY_MAX    (64u * 1024 * 1024) // a whole body we hold (non-stream, errors)
#define s_EVENT_MAX   (16u * 1024 * 1024) // one unfinished SSE event
#define s_RETRY_MS    2                   // how soon a refused CHUNK is offered again
#define s_REASON_HOST "upstream"

typedef enum { s_FINAL_NONE, s_FINAL_END, s_FINAL_ERROR } s_final_t;

//  A growable byte buffer: pending SSE events, or a whole body.

typedef struct s_call_t s_call_t;
struct s_call_t {
    ar_provider_t *provider;
    ar_job_t *job;              // NULL once answered or cancelled
    CURL *easy;                 // NULL once the transfer is over
    struct curl_slist *headers; // owned (caller's credential), or NULL: shared key headers
    const ar_wire_t *wire;
    bool stream;      // meta stream=1
    bool strip_usage; // meta strip_usage=1
    bool started;     // response headers seen: status, content type and mode known
    bool sse;         // forwarding whole events as CHUNKs (else: one END with the body)
    bool replied;     // a message reached the broker (it carried the status)
    bool paused;      // we returned CURL_WRITEFUNC_PAUSE: curl holds the bytes
    bool too_large;   // the write callback refused the bytes: over a cap
    bool blocked;     // in the blocked queue
    s_final_t final;  // set once the transfer is over
    uint16_t error_code;
    const char *error_reason; // static string
    long status;
    char content_type[256];
    int64_t retry_after; // seconds, from a 429/503 Retry-After; 0 = none
    ar_sse_splitter_t *splitter;
    ar_buf_t out; // SSE events the broker has not taken, or the whole body
    ar_usage_t usage;
    s_call_t *prev, *next;                 // every call
    s_call_t *blocked_prev, *blocked_next; // the blocked queue
};

struct ar_provider_t {
    ar_provider_host_t host;
    ar_upstream_t *upstream;
    ar_keyring_t *keyring;
    const ar_wire_t *wires[s_MAX_WIRES];
    struct curl_slist *key_headers[s_MAX_WIRES]; // shared by every call with a server key
    size_t wire_count;
    s_call_t *calls; // every call
    size_t call_count;
    s_call_t *blocked_head, *blocked_tail;
    size_t blocked_count;
    bool broker_full;     // the host refused a message during this retry turn
    ar_mono_ms retry_due; // -1 when nothing waits
    ar_mono_ms armed;     // what the host timer is set to; INT64_MIN = unknown
    CURL *idle[s_IDLE_EASY];
    size_t idle_count;
    const char *ca_file; // ANYRAY_PROVIDER_CA_FILE: a private CA for TLS upstreams
    //  Counters (content-free), for logs and tests.
    uint64_t refused;  // CHUNK/END/ERROR the broker could not take at once
    uint64_t stripped; // usage-only events dropped
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
//  The one host timer serves two clocks: curl's, and the blocked-queue retry.

static void s_arm (ar_provider_t *self)
{
    ar_mono_ms due = ar_upstream_due (self->upstream);
    if (self->retry_due >= 0 && (due < 0 || self->retry_due < due))
        due = self->retry_due;
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
    ar_sse_splitter_destroy (&call->splitter);
    ar_buf_free (&call->out);
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
    char number[24];
    if (call->usage.has_input) {
        snprintf (number, sizeof number, "%" PRId64, call->usage.input_tokens);
        ar_envelope_meta_set (&call->job->reply, "input_tokens", number);
    }
    if (call->usage.has_output) {
        snprintf (number, sizeof number, "%" PRId64, call->usage.output_tokens);
        ar_envelope_meta_set (&call->job->reply, "output_tokens", number);
    }
    if (call->usage.model[0])
        ar_envelope_meta_set (&call->job->reply, "upstream_model", call->usage.model);
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
    bool event_stream = strncasecmp (call->content_type, "text/event-stream", 17) == 0;
    call->sse = call->status >= 200 && call->status < 300 &&
                (event_stream || (call->stream && !call->content_type[0]));
    if (call->sse) {
        call->splitter = ar_sse_splitter_new (s_EVENT_MAX);
        if (!call->splitter)
            call->sse = false; // out of memory: the stream still reaches the client, whole
    }
}

//  One complete SSE event: note usage, drop it if it is the injected usage-only event, else
//  queue it for the next CHUNK.
static int s_on_event (const char *event, size_t len, void *arg)
{
    s_call_t *call = arg;
    bool usage_only = false;
    call->wire->stream_event (event, len, &call->usage, &usage_only);
    if (usage_only && call->strip_usage) {
        call->provider->stripped++;
        return 0;
    }
    size_t start = call->out.len;
    if (ar_buf_append (&call->out, event, len, SIZE_MAX) != 0)
        return -1;
    if (call->strip_usage && call->wire->strip_event)
        call->out.len = start + call->wire->strip_event (call->out.data + start, len);
    return 0;
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
    if (ar_sse_splitter_feed (call->splitter, data, len, s_on_event, call)) {
        call->too_large = true;
        return 0;
    }
    if (s_flush (call))
        s_block (call); // these bytes are ours now; the next write pauses
    return len;
}

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
    s_easy_release (call);
    if (call->sse && ar_sse_splitter_finish (call->splitter, s_on_event, call)) {
        s_fail (call, 502, "upstream stream broken");
        return;
    }
    if (!call->sse && call->status >= 200 && call->status < 300 && call->out.len > 0)
        call->wire->body_usage (call->out.data, call->out.len, &call->usage);
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

ar_provider_t *ar_provider_new (const ar_provider_host_t *host)
{
    ar_provider_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->host = *host;
    self->retry_due = -1;
    self->armed = INT64_MIN;
    const char *slugs[s_MAX_WIRES + 1] = {0};
    for (const ar_wire_t *const *wire = ar_wire_all (); *wire; wire++) {
        if (self->wire_count == s_MAX_WIRES)
            break;
        slugs[self->wire_count] = (*wire)->slug;
        self->wires[self->wire_count++] = *wire;
    }
    self->ca_file = getenv ("ANYRAY_PROVIDER_CA_FILE");
    if (self->ca_file && !*self->ca_file)
        self->ca_file = NULL;
    self->keyring = ar_keyring_new (slugs);
    self->upstream = ar_upstream_new (s_done, s_upstream_timer, self);
    if (!self->keyring || !self->upstream) {
        ar_provider_destroy (&self);
        return NULL;
    }
    //  A server-held key's headers are the same for every call: build them once.
    for (size_t i = 0; i < self->wire_count; i++) {
        const char *key = ar_keyring_get (self->keyring, self->wires[i]->slug);
        if (!key)
            continue;
        self->key_headers[i] = ar_upstream_request_headers (self->wires[i], key, NULL);
        if (!self->key_headers[i]) {
            ar_provider_destroy (&self);
            return NULL;
        }
        zsys_info ("provider: %s uses the server-held key", self->wires[i]->slug);
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
    for (size_t i = 0; i < self->wire_count; i++)
        s_headers_free (self->key_headers[i]);
    ar_keyring_destroy (&self->keyring);
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
    ar_mono_ms due = ar_upstream_due (self->upstream);
    if (due >= 0 && now >= due)
        ar_upstream_timeout (self->upstream);
    s_arm (self);
}

//  ---------------------------------------------------------------------------
//  A job arrived: start its transfer, or answer at once if it cannot be sent.

void ar_provider_request (ar_provider_t *self, ar_job_t *job)
{
    s_call_t *call = calloc (1, sizeof *call);
    if (!call) {
        ar_job_t *lost = job;
        self->host.error (self->host.arg, &lost, 503, "provider out of memory");
        return;
    }
    call->provider = self;
    call->job = job;
    job->user = call;
    call->next = self->calls;
    if (self->calls)
        self->calls->prev = call;
    self->calls = call;
    self->call_count++;

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
    ar_mono_ms left = job->deadline - ar_mono_now ();
    if (left <= 0) {
        s_fail (call, 504, "upstream timeout");
        return;
    }
    //  The server-held key wins; the caller's own credential is used only without one.
    struct curl_slist *headers = self->key_headers[index];
    if (!headers) {
        call->headers =
            ar_upstream_request_headers (call->wire, NULL, ar_envelope_meta_get (env, "auth"));
        headers = call->headers;
    }
    call->easy = s_easy_get (self);
    if (!headers || !call->easy) {
        s_fail (call, 503, "provider out of memory");
        return;
    }
    ar_upstream_request_t request = {
        .base_url = ar_envelope_meta_get (env, "base_url"),
        .path = ar_envelope_meta_get (env, "path"),
        .method = ar_envelope_meta_get (env, "method"),
        .body = job->body ? zframe_data (job->body) : NULL,
        .body_len = job->body ? zframe_size (job->body) : 0,
        .headers = headers,
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
    ar_provider_t *provider = ar_provider_new (&binding);
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
    assert (provider->stripped == 1);
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
    provider = ar_provider_new (&binding);
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
