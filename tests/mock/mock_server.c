/*  =========================================================================
    mock_server - the HTTP side of the mock OpenAI upstream
    =========================================================================
*/
#include "mock_server.h"
#include "mock_buf.h"
#include "mock_chat.h"
#include "mock_error.h"
#include "mock_log.h"
#include "mock_stream.h"
#include "mock_timer.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

//  Largest request body we accept; beyond it the answer is 413
#define MAX_BODY (64u * 1024 * 1024)

struct _mock_server_t {
    mock_config_t config;
    char *key;    //  own copy of config.key
    char *models; //  GET /v1/models body, built once
    struct MHD_Daemon *daemon;
    mock_timer_t *timer;
    mock_log_t *log;
    atomic_long open_streams;
    int port;
};

//  Per-request state, from the first callback to the completed callback
typedef struct {
    mock_buf_t body;
    bool too_big;                 //  body passed MAX_BODY; rest is discarded
    bool parked;                  //  waiting on the timer (latency or hang)
    bool hang;                    //  never answer
    struct MHD_Response *pending; //  answer to send once the wait ends
    unsigned pending_status;
    mock_wait_t wait;
} s_request_t;

//  Models GET /v1/models lists
static const struct {
    const char *id;
    long long created;
} s_models[] = {{"gpt-4o-mini", 1721172741},
                {"gpt-4o", 1715367049},
                {"gpt-4.1", 1744316542},
                {"gpt-4.1-mini", 1744318173},
                {"gpt-4.1-nano", 1744321707},
                {"o3-mini", 1737146383},
                {"gpt-3.5-turbo", 1677610602},
                {"text-embedding-3-small", 1705948997},
                {NULL, 0}};

static void s_model_json (mock_buf_t *out, int index)
{
    mock_buf_printf (
        out, "{\"id\":\"%s\",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"openai\"}",
        s_models[index].id, s_models[index].created);
}

//  --------------------------------------------------------------------------
//  Response helpers

//  Wrap a finished buffer as a response with the given content type
static struct MHD_Response *s_buffer_response (mock_buf_t *body, const char *content_type)
{
    size_t len;
    char *data = mock_buf_detach (body, &len);
    if (!data)
        return NULL;
    struct MHD_Response *response =
        MHD_create_response_from_buffer_with_free_callback (len, data, free);
    if (!response) {
        free (data);
        return NULL;
    }
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return response;
}

//  Headers the real API puts on every answer
static void s_api_headers (struct MHD_Response *response)
{
    static atomic_uint_fast64_t counter;
    char id[40];
    snprintf (id, sizeof id, "req_mock%016llx", (unsigned long long)atomic_fetch_add (&counter, 1));
    MHD_add_response_header (response, "x-request-id", id);
    MHD_add_response_header (response, "openai-version", "2020-10-01");
}

static struct MHD_Response *s_error_response (const mock_error_t *err)
{
    mock_buf_t body = {0};
    mock_error_json (err, &body);
    struct MHD_Response *response = s_buffer_response (&body, "application/json");
    if (response)
        s_api_headers (response);
    return response;
}

static enum MHD_Result s_queue (struct MHD_Connection *conn, unsigned status,
                                struct MHD_Response *response)
{
    if (!response)
        return MHD_NO; //  out of memory: closing is all we can do
    enum MHD_Result rc = MHD_queue_response (conn, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result s_queue_error (struct MHD_Connection *conn, const mock_error_t *err)
{
    return s_queue (conn, (unsigned)err->status, s_error_response (err));
}

static enum MHD_Result s_queue_json (struct MHD_Connection *conn, unsigned status, mock_buf_t *body)
{
    return s_queue (conn, status, s_buffer_response (body, "application/json"));
}

//  --------------------------------------------------------------------------
//  Authorization, like the real API

//  Compare without leaking where the first difference is
static bool s_same_secret (const char *a, size_t a_len, const char *b, size_t b_len)
{
    volatile unsigned char diff = (unsigned char)(a_len != b_len);
    size_t len = a_len > b_len ? a_len : b_len;
    for (size_t i = 0; i < len; i++) {
        unsigned char x = i < a_len ? (unsigned char)a[i] : 0;
        unsigned char y = i < b_len ? (unsigned char)b[i] : 0;
        diff |= x ^ y;
    }
    return diff == 0;
}

//  Show a key the way the real API does: enough to recognise, never all
static void s_mask_key (char *out, size_t size, const char *key, size_t len)
{
    if (len >= 12)
        snprintf (out, size, "%.3s...%.4s", key, key + len - 4);
    else
        snprintf (out, size, "***");
}

//  True if the request may go on; otherwise err says why
static bool s_authorized (mock_server_t *self, const char *header, mock_error_t *err)
{
    if (!self->key)
        return true;
    if (!header || strncasecmp (header, "Bearer ", 7) != 0 || header[7] == 0) {
        mock_error_set (err, 401, "invalid_request_error", NULL, NULL,
                        "You didn't provide an API key. You need to provide your API key in an "
                        "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                        "YOUR_KEY), or as the password field (with blank username) if you're "
                        "accessing the API from your browser and are prompted for a username. "
                        "You can obtain an API key from "
                        "https://platform.openai.com/account/api-keys.");
        return false;
    }
    const char *given = header + 7;
    size_t given_len = strlen (given);
    if (s_same_secret (given, given_len, self->key, strlen (self->key)))
        return true;
    char masked[16];
    s_mask_key (masked, sizeof masked, given, given_len);
    mock_error_set (err, 401, "invalid_request_error", NULL, "invalid_api_key",
                    "Incorrect API key provided: %s. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    masked);
    return false;
}

//  --------------------------------------------------------------------------
//  Routes

//  Send now, or park the connection and send once the latency is over
static enum MHD_Result s_answer (mock_server_t *self, struct MHD_Connection *conn, s_request_t *req,
                                 unsigned status, struct MHD_Response *response, int latency_ms)
{
    if (latency_ms <= 0 || !response)
        return s_queue (conn, status, response);
    req->pending = response;
    req->pending_status = status;
    req->parked = true;
    mock_timer_park (self->timer, &req->wait, conn, mock_clock_ms () + (uint64_t)latency_ms);
    return MHD_YES;
}

static enum MHD_Result s_chat (mock_server_t *self, struct MHD_Connection *conn, s_request_t *req)
{
    mock_chat_t chat;
    mock_error_t err;
    if (!mock_chat_parse (&chat, req->body.data ? req->body.data : "", req->body.len,
                          &self->config.defaults, &err)) {
        mock_chat_free (&chat);
        return s_answer (self, conn, req, (unsigned)err.status, s_error_response (&err),
                         self->config.defaults.latency_ms);
    }
    int latency = chat.ctl.latency_ms;
    if (chat.ctl.hang) {
        mock_chat_free (&chat);
        req->hang = true;
        req->parked = true;
        mock_timer_park (self->timer, &req->wait, conn, UINT64_MAX);
        return MHD_YES;
    }
    if (chat.ctl.status) {
        mock_error_for_status (&err, chat.ctl.status, chat.model);
        struct MHD_Response *response = s_error_response (&err);
        if (response && chat.ctl.retry_after >= 0) {
            char value[16];
            snprintf (value, sizeof value, "%d", chat.ctl.retry_after);
            MHD_add_response_header (response, "retry-after", value);
        }
        mock_chat_free (&chat);
        return s_answer (self, conn, req, (unsigned)err.status, response, latency);
    }
    if (chat.stream) {
        mock_chat_t *owned = malloc (sizeof *owned);
        struct MHD_Response *response = NULL;
        if (owned) {
            *owned = chat; //  the stream takes the buffers along
            response = mock_stream_response (owned, conn, self->timer, &self->open_streams);
            if (!response) {
                mock_chat_free (owned);
                free (owned);
            }
        } else
            mock_chat_free (&chat);
        if (response) {
            MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
            MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
            s_api_headers (response);
        }
        return s_answer (self, conn, req, MHD_HTTP_OK, response, latency);
    }
    mock_buf_t body = {0};
    mock_chat_render (&chat, &body);
    bool drop = chat.ctl.drop_after != -1;
    mock_chat_free (&chat);
    struct MHD_Response *response = NULL;
    if (drop) {
        size_t len;
        char *data = mock_buf_detach (&body, &len);
        if (data && !(response = mock_stream_cut_response (data, len)))
            free (data);
        if (response)
            MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    } else
        response = s_buffer_response (&body, "application/json");
    if (response)
        s_api_headers (response);
    return s_answer (self, conn, req, MHD_HTTP_OK, response, latency);
}

static enum MHD_Result s_models_route (mock_server_t *self, struct MHD_Connection *conn,
                                       const char *url)
{
    mock_buf_t body = {0};
    if (strcmp (url, "/v1/models") == 0)
        mock_buf_puts (&body, self->models);
    else {
        const char *id = url + strlen ("/v1/models/");
        for (int i = 0; s_models[i].id; i++)
            if (strcmp (s_models[i].id, id) == 0)
                s_model_json (&body, i);
        if (body.len == 0) {
            mock_error_t err;
            mock_error_set (&err, 404, "invalid_request_error", "model", "model_not_found",
                            "The model '%.100s' does not exist", id);
            return s_queue_error (conn, &err);
        }
    }
    struct MHD_Response *response = s_buffer_response (&body, "application/json");
    if (response)
        s_api_headers (response);
    return s_queue (conn, MHD_HTTP_OK, response);
}

static enum MHD_Result s_inspect (mock_server_t *self, struct MHD_Connection *conn, const char *url,
                                  const char *method)
{
    mock_buf_t body = {0};
    bool get = strcmp (method, "GET") == 0;
    if (strcmp (url, "/__mock/requests") == 0 && get)
        mock_log_dump (self->log, &body);
    else if (strcmp (url, "/__mock/requests") == 0 && strcmp (method, "DELETE") == 0) {
        mock_log_clear (self->log);
        mock_buf_puts (&body, "{\"cleared\":true}");
    } else if (strcmp (url, "/__mock/stats") == 0 && get)
        mock_buf_printf (&body, "{\"requests\":%llu,\"open_streams\":%ld,\"parked\":%zu}",
                         (unsigned long long)mock_log_count (self->log),
                         atomic_load (&self->open_streams), mock_timer_parked (self->timer));
    else {
        bool known = strcmp (url, "/__mock/requests") == 0 || strcmp (url, "/__mock/stats") == 0;
        mock_error_t err;
        mock_error_set (&err, known ? 405 : 404, "invalid_request_error", NULL, NULL,
                        "%s (%.16s %.200s)", known ? "Invalid method for URL" : "Invalid URL",
                        method, url);
        return s_queue_error (conn, &err);
    }
    return s_queue_json (conn, MHD_HTTP_OK, &body);
}

//  Everything that is not /__mock: the imitation of the real API
static enum MHD_Result s_api (mock_server_t *self, struct MHD_Connection *conn, s_request_t *req,
                              const char *url, const char *method)
{
    const char *auth =
        MHD_lookup_connection_value (conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    bool chat = strcmp (url, "/v1/chat/completions") == 0;
    bool models = strcmp (url, "/v1/models") == 0 ||
                  (strncmp (url, "/v1/models/", 11) == 0 && url[11] && !strchr (url + 11, '/'));
    mock_error_t err;
    enum MHD_Result rc;
    if (strncmp (url, "/v1/", 4) == 0 && !s_authorized (self, auth, &err))
        rc = s_queue_error (conn, &err);
    else if (chat && strcmp (method, "POST") == 0)
        rc = s_chat (self, conn, req);
    else if (models && strcmp (method, "GET") == 0)
        rc = s_models_route (self, conn, url);
    else {
        bool known = chat || models;
        mock_error_set (&err, known ? 405 : 404, "invalid_request_error", NULL, NULL,
                        "%s (%.16s %.200s)", known ? "Invalid method for URL" : "Invalid URL",
                        method, url);
        rc = s_queue_error (conn, &err);
    }
    //  Log last: the log takes the body, and the chat answer was built from it
    mock_log_add (self->log, method, url, auth, &req->body);
    return rc;
}

//  --------------------------------------------------------------------------
//  MHD callbacks

static enum MHD_Result s_too_large (struct MHD_Connection *conn)
{
    mock_error_t err;
    mock_error_set (&err, 413, "invalid_request_error", NULL, NULL,
                    "Request body too large for the mock (limit %u bytes).", MAX_BODY);
    return s_queue_error (conn, &err);
}

static enum MHD_Result s_access (void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    mock_server_t *self = cls;
    s_request_t *req = *con_cls;
    if (!req) {
        req = calloc (1, sizeof *req);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        //  Refuse an announced oversize body before reading any of it
        const char *length =
            MHD_lookup_connection_value (conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long announced = length ? strtoull (length, NULL, 10) : 0;
        if (announced > MAX_BODY)
            return s_too_large (conn);
        //  One allocation for the whole body instead of a doubling series
        if (announced)
            mock_buf_reserve (&req->body, (size_t)announced);
        return MHD_YES;
    }
    if (*upload_data_size) {
        //  Chunked uploads announce no length: read past the limit into
        //  nothing, then answer 413 like for an announced one
        if (req->body.len + *upload_data_size > MAX_BODY) {
            req->too_big = true;
            mock_buf_free (&req->body);
        }
        if (!req->too_big)
            mock_buf_append (&req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return req->body.broken ? MHD_NO : MHD_YES;
    }
    if (req->parked) {
        //  Back from the timer: the wait is over or the client left
        req->parked = false;
        if (atomic_load (&req->wait.gone))
            return MHD_NO;
        if (req->hang) {
            req->parked = true;
            mock_timer_park (self->timer, &req->wait, conn, UINT64_MAX);
            return MHD_YES;
        }
        struct MHD_Response *response = req->pending;
        req->pending = NULL;
        return s_queue (conn, req->pending_status, response);
    }
    if (req->pending || req->hang)
        return MHD_NO; //  already answered; MHD should not call again
    if (req->too_big)
        return s_too_large (conn);
    if (strncmp (url, "/__mock/", 8) == 0)
        return s_inspect (self, conn, url, method);
    return s_api (self, conn, req, url, method);
}

static void s_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    s_request_t *req = *con_cls;
    if (!req)
        return;
    if (req->pending)
        MHD_destroy_response (req->pending);
    mock_buf_free (&req->body);
    free (req);
    *con_cls = NULL;
}

static void s_mhd_log (void *cls, const char *format, va_list args)
{
    vfprintf (stderr, format, args);
}

//  --------------------------------------------------------------------------
//  Start serving

mock_server_t *mock_server_new (const mock_config_t *config)
{
    struct sockaddr_in addr4;
    struct sockaddr_in6 addr6;
    struct sockaddr *addr;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    memset (&addr4, 0, sizeof addr4);
    memset (&addr6, 0, sizeof addr6);
    const char *host = strcmp (config->host, "localhost") == 0 ? "127.0.0.1" : config->host;
    if (inet_pton (AF_INET, host, &addr4.sin_addr) == 1) {
        //  Loopback only: the mock is never meant to be reachable
        if ((ntohl (addr4.sin_addr.s_addr) >> 24) != 127) {
            fprintf (stderr, "mock-upstream: refusing non-loopback host %s\n", config->host);
            return NULL;
        }
        addr4.sin_family = AF_INET;
        addr4.sin_port = htons ((uint16_t)config->port);
        addr = (struct sockaddr *)&addr4;
    } else if (inet_pton (AF_INET6, host, &addr6.sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK (&addr6.sin6_addr)) {
            fprintf (stderr, "mock-upstream: refusing non-loopback host %s\n", config->host);
            return NULL;
        }
        addr6.sin6_family = AF_INET6;
        addr6.sin6_port = htons ((uint16_t)config->port);
        addr = (struct sockaddr *)&addr6;
        flags |= MHD_USE_IPv6;
    } else {
        fprintf (stderr, "mock-upstream: bad host %s (want a loopback IP)\n", config->host);
        return NULL;
    }
    if (config->verbose)
        flags |= MHD_USE_ERROR_LOG;

    mock_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    self->key = config->key ? strdup (config->key) : NULL;
    self->config.key = self->key;
    self->timer = mock_timer_new ();
    self->log = mock_log_new ();
    mock_buf_t models = {0};
    mock_buf_puts (&models, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; s_models[i].id; i++) {
        if (i)
            mock_buf_puts (&models, ",");
        s_model_json (&models, i);
    }
    mock_buf_puts (&models, "]}");
    self->models = mock_buf_detach (&models, NULL);
    if (!self->timer || !self->log || !self->models || (config->key && !self->key)) {
        fprintf (stderr, "mock-upstream: out of memory\n");
        mock_server_destroy (&self);
        return NULL;
    }
    //  Options one per line; clang-format would pack them unreadably
    // clang-format off
    self->daemon = MHD_start_daemon(
        flags, (uint16_t)config->port, NULL, NULL, s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(config->threads > 1 ? config->threads : 0),
        MHD_OPTION_CONNECTION_LIMIT, 60000u,
        MHD_OPTION_CONNECTION_TIMEOUT, 0u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_END);
    // clang-format on
    if (!self->daemon) {
        fprintf (stderr, "mock-upstream: cannot listen on %s:%d\n", config->host, config->port);
        mock_server_destroy (&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : config->port;
    return self;
}

//  --------------------------------------------------------------------------
//  Stop serving, end open requests, free

void mock_server_destroy (mock_server_t **self_p)
{
    mock_server_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon) {
        //  Stop accepting, wake every parked connection as "gone", give
        //  the workers a moment to close them, then stop
        MHD_quiesce_daemon (self->daemon);
        mock_timer_stop (self->timer);
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep (&pause, NULL);
        MHD_stop_daemon (self->daemon);
    }
    mock_timer_destroy (&self->timer);
    mock_log_destroy (&self->log);
    free (self->models);
    free (self->key);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  The port actually bound

int mock_server_port (mock_server_t *self)
{
    return self->port;
}
