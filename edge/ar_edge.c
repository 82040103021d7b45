/*  ar_edge: HTTP edge, request lifecycle and fail-open (see ar_edge.h).

    OPTIMIZE and ROUTE run side by side (the plan does not depend on the optimizer's rewrite),
    so a call costs two broker round trips before the provider, not three.

    Stage timers: every stage of one kind has the same timeout, so each stage kind keeps a
    FIFO of its stages and the head is always the next to expire: O(1) to arm, disarm and
    check, with no heap. The edge's own timers decide; broker ERRORs only let it decide sooner.
*/
#include "ar_edge.h"
#include "ar_admin.h"
#include "ar_buf.h"
#include "ar_chat_request.h"
#include "ar_client.h"
#include "ar_env.h"
#include "ar_http_error.h"
#include "ar_optimizer_exchange.h"
#include "ar_optimizer_message.h"
#include "ar_optimizer_stats.h"
#include "ar_route_plan.h"
#include "ar_router.h"
#include "ar_spend_outbox.h"
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <poll.h>
#include <sys/random.h>
#include <string.h>

#define AR_STREAM_BUFFER_MAX (8u << 20)   // bytes queued for one slow SSE reader before we cut it
#define AR_DRAIN_MAX         (1ull << 30) // oversized bodies up to this are read and dropped
#define AR_HANGUP_CHECK_MS   1000         // how often suspended calls are checked for a client gone

typedef enum {
    EP_CHAT,         // POST /v1/chat/completions
    EP_MESSAGES,     // POST /v1/messages (Anthropic)
    EP_COUNT_TOKENS, // POST /v1/messages/count_tokens (Anthropic)
    EP_EMBEDDINGS,   // POST /v1/embeddings
    EP_COMPLETIONS,  // POST /v1/completions
    EP_RESPONSES,    // POST /v1/responses
    EP_MODELS,
    EP_HEALTH,
    EP_OPTIMIZER, // Optimizer Protocol v1 on the optimizer port
    EP_ADMIN,     // /admin/... on either port
    EP_NOT_FOUND,
    EP_BAD_METHOD
} s_endpoint_t;

typedef enum {
    S_RECEIVING,
    S_PREPARING, // OPTIMIZE and ROUTE in flight
    S_PROVIDING,
    S_REPLYING,  // a whole response is ready to queue
    S_STREAMING, // an SSE response is queued or about to be
    S_EXPANDING, // the model called anyray_retrieve: the optimizer answers it, then we go again
    S_DONE
} s_state_t;

typedef struct s_call_t s_call_t;

typedef enum { STAGE_OPTIMIZE, STAGE_ROUTE, STAGE_PROVIDE, STAGE_COUNT } s_stage_kind_t;

//  One request on the broker on behalf of a call.
typedef struct {
    s_call_t *call;
    s_stage_kind_t kind;
    char key[2 * AR_ID_LEN + 1]; // empty when not in flight
    uint8_t id[AR_ID_LEN];
    void *timer_handle;
    ar_mono_ms deadline;
} s_stage_t;

struct ar_edge_t {
    ar_edge_config_t config;
    char broker_endpoint[512];
    struct MHD_Daemon *daemon;
    struct MHD_Daemon *optimizer_daemon; // Optimizer Protocol v1 for other gateways
    ar_client_t *client;
    ar_admin_t *admin;
    ar_optimizer_stats_t stats;
    ar_router_t *fallback_router;  // the static plan when the router is down
    ar_spend_outbox_t *spend;      // rows held until the spend actor commits them
    zhashx_t *stages;              // stage id hex -> s_stage_t (not owned)
    zlistx_t *calls;               // every live call (not owned), to resume all at shutdown
    zlistx_t *timers[STAGE_COUNT]; // per stage kind, in deadline order
    zlistx_t *waits;               // calls waiting to retry, in due order (not owned)
    uint32_t timeouts[STAGE_COUNT];
    bool broker_was_alive;
    ar_mono_ms next_hangup_check;
};

struct s_call_t {
    ar_edge_t *edge;
    struct MHD_Connection *conn;
    void *calls_handle;
    s_endpoint_t endpoint;
    ar_optimizer_op_t op; // EP_OPTIMIZER
    char path[128];       // the URL path (endpoints as the stage metadata names them)
    char method[16];
    s_state_t state;
    bool suspended, response_queued;
    //  Request.
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    char *sent_body; // what goes upstream when it differs from body (owned)
    size_t sent_len;
    ar_chat_request_t chat;
    ar_error_shape_t shape; // the caller's SDK: errors go back in its shape
    char user[129], team[129], session[129], provider[64];
    char *metadata;   // x-anyray-metadata's scalar members, compact, for the optimizer's rules
    const char *auth; // the caller's Authorization header (MHD owns it for the request)
    uint8_t request_id[AR_ID_LEN];
    char request_hex[2 * AR_ID_LEN + 1];
    s_stage_t stages[STAGE_COUNT];
    bool optimize_done, route_done;
    bool optimized, failed_open;
    char optimizations[256]; // x-anyray-optimizations
    int64_t tokens_saved;
    char savings[1536];       // the spend row's "savings" array, "" when none
    int retrieve_left;        // rounds of anyray_retrieve the model may still take
    int retrieved;            // rounds it took (x-anyray-retrieved)
    ar_route_plan_t *plan;    // the router's targets and where the walk along them is
    char target_provider[64]; // the provider of the current try ("cache" for a cache hit)
    char *target_body;        // the body with the target's model, when it overrides it
    size_t target_len;
    uint32_t try_timeout_ms; // the current try's timeout
    void *wait_handle;       // in edge->waits while waiting to retry
    ar_mono_ms wait_due;
    bool usage_added; // the edge asked the upstream for stream usage the caller did not want
    //  Response.
    int status;
    bool status_known;
    char content_type[128];
    char retry_after[24];  // the upstream's Retry-After on a 429/503, passed on to the caller
    zframe_t *reply_frame; // a whole upstream body, served without a copy
    ar_buf_t out;          // buffered bytes: a streamed response's pending part, or an error body
    size_t out_off;        // how much of out the SSE reader has sent
    bool upstream_done;
    //  Accounting (content-free).
    int64_t start_us, first_byte_us;
    long input_tokens, output_tokens, cached_input_tokens;
    bool spend_sent;
};

//  --------------------------------------------------------------------------
//  Small helpers.

static int s_append (s_call_t *call, const void *data, size_t len)
{
    //  The SSE reader consumes from the front: drop what it has sent before growing.
    if (call->out_off && call->out.len + len > call->out.size) {
        ar_buf_consume (&call->out, call->out_off);
        call->out_off = 0;
    }
    return ar_buf_append (&call->out, data, len, SIZE_MAX);
}

static void s_resume (s_call_t *call)
{
    if (call->suspended) {
        call->suspended = false;
        MHD_resume_connection (call->conn);
    }
}

static void s_suspend (s_call_t *call)
{
    if (!call->suspended) {
        call->suspended = true;
        MHD_suspend_connection (call->conn);
    }
}

static void s_hex (const uint8_t *id, char *out)
{
    ar_hex_encode (id, AR_ID_LEN, out);
}

//  One row per model-call endpoint: its path, the API it validates as, the provider path it
//  maps to (in OpenAI's layout; the provider's wire maps it to its own), and whether the
//  optimizer sees it (the two chat shapes: the strategies work on conversations).
typedef struct {
    s_endpoint_t endpoint;
    const char *path;
    ar_api_t api;
    const char *upstream_path;
    const char *optimizer_shape; // NULL: not optimized
} s_api_row_t;

static const s_api_row_t s_apis[] = {
    {EP_CHAT, "/v1/chat/completions", AR_API_CHAT, "/chat/completions", "openai.chat"},
    {EP_MESSAGES, "/v1/messages", AR_API_MESSAGES, "/messages", "anthropic.messages"},
    {EP_COUNT_TOKENS, "/v1/messages/count_tokens", AR_API_COUNT_TOKENS, "/messages/count_tokens",
     NULL},
    {EP_EMBEDDINGS, "/v1/embeddings", AR_API_EMBEDDINGS, "/embeddings", NULL},
    {EP_COMPLETIONS, "/v1/completions", AR_API_COMPLETIONS, "/completions", NULL},
    {EP_RESPONSES, "/v1/responses", AR_API_RESPONSES, "/responses", NULL},
};

static const s_api_row_t *s_api_of (s_endpoint_t endpoint)
{
    for (size_t i = 0; i < sizeof s_apis / sizeof s_apis[0]; i++)
        if (s_apis[i].endpoint == endpoint)
            return &s_apis[i];
    return NULL;
}

//  A call that goes to a model (and so is routed, provided and spent).
static bool s_model_call (const s_call_t *call)
{
    return s_api_of (call->endpoint) != NULL;
}

//  The call's body is a conversation the optimizer works on.
static const char *s_optimizer_shape (const s_call_t *call)
{
    const s_api_row_t *row = s_api_of (call->endpoint);
    return row ? row->optimizer_shape : NULL;
}

//  --------------------------------------------------------------------------
//  Stages on the broker.

static void s_stage_end (s_stage_t *stage, bool cancel)
{
    if (!*stage->key)
        return;
    ar_edge_t *self = stage->call->edge;
    if (cancel)
        ar_client_cancel (self->client, stage->id);
    zhashx_delete (self->stages, stage->key);
    if (stage->timer_handle)
        zlistx_delete (self->timers[stage->kind], stage->timer_handle);
    stage->timer_handle = NULL;
    *stage->key = 0;
}

static void s_stages_end (s_call_t *call, bool cancel)
{
    for (int kind = 0; kind < STAGE_COUNT; kind++)
        s_stage_end (&call->stages[kind], cancel);
    if (call->wait_handle) {
        zlistx_delete (call->edge->waits, call->wait_handle);
        call->wait_handle = NULL;
    }
}

//  Make the call answer with an error in its caller's shape once the connection runs again.
//  Whatever else it had on the broker is cancelled.
static void s_fail (s_call_t *call, int status, const char *message, const char *param,
                    const char *code)
{
    s_stages_end (call, true);
    char body[1600];
    int len = ar_http_error (call->shape, body, sizeof body, status, message, param, code);
    call->out.len = call->out_off = 0;
    zframe_destroy (&call->reply_frame);
    s_append (call, body, (size_t)len);
    call->status = status;
    call->status_known = true;
    snprintf (call->content_type, sizeof call->content_type, "application/json");
    call->upstream_done = true;
    call->state = S_REPLYING;
    s_resume (call);
}

//  Send one stage request. body may be NULL. Returns 0, or -1 if the broker socket would not
//  take it (the caller then fails open or fails the call).
static int s_stage_begin (s_call_t *call, s_stage_kind_t kind, const char *service,
                          const char *body_kind, const void *body, size_t body_len,
                          void (*add_meta) (s_call_t *call, ar_envelope_t *env))
{
    ar_edge_t *self = call->edge;
    s_stage_t *stage = &call->stages[kind];
    //  A try of a routing target has that target's timeout.
    uint32_t timeout_ms =
        kind == STAGE_PROVIDE && call->try_timeout_ms ? call->try_timeout_ms : self->timeouts[kind];
    ar_envelope_t env;
    ar_envelope_init (&env);
    ar_envelope_new_id (&env);
    snprintf (env.service, sizeof env.service, "%s", service);
    snprintf (env.kind, sizeof env.kind, "%s", body_kind);
    env.deadline_ms = ar_wall_now () + timeout_ms;
    env.budget_ms = timeout_ms;
    //  Content-free metadata only: who, where, which model. Never prompt text.
    ar_envelope_meta_set (&env, "request_id", call->request_hex);
    ar_envelope_meta_set (&env, "endpoint", call->path);
    if (*call->chat.model)
        ar_envelope_meta_set (&env, "model", call->chat.model);
    if (*call->user)
        ar_envelope_meta_set (&env, "user", call->user);
    if (*call->team)
        ar_envelope_meta_set (&env, "team", call->team);
    if (*call->session)
        ar_envelope_meta_set (&env, "session", call->session);
    if (add_meta)
        add_meta (call, &env);
    zframe_t *frame = body ? zframe_new (body, body_len) : NULL;
    if (ar_client_request (self->client, &env, &frame) != 0)
        return -1;
    stage->call = call;
    stage->kind = kind;
    memcpy (stage->id, env.id, AR_ID_LEN);
    s_hex (env.id, stage->key);
    zhashx_insert (self->stages, stage->key, stage);
    stage->deadline = ar_mono_now () + timeout_ms;
    //  Provider tries differ in timeout: their list is kept sorted (from the end, where new
    //  deadlines almost always go); the other kinds share one timeout, so FIFO is sorted.
    stage->timer_handle = kind == STAGE_PROVIDE ? zlistx_insert (self->timers[kind], stage, false)
                                                : zlistx_add_end (self->timers[kind], stage);
    return 0;
}

//  The body as the optimizer left it, before any target's model override.
static const char *s_upstream_body (s_call_t *call, size_t *len)
{
    *len = call->sent_body ? call->sent_len : call->body_len;
    return call->sent_body ? call->sent_body : call->body;
}

//  A caller header the provider needs, when present (values are bounded by the meta map).
static void s_forward_header (s_call_t *call, ar_envelope_t *env, const char *header,
                              const char *key)
{
    const char *value = MHD_lookup_connection_value (call->conn, MHD_HEADER_KIND, header);
    if (value && ar_envelope_meta_set (env, key, value) != 0)
        ar_envelope_meta_set (env, key, "");
}

static void s_provide_meta (s_call_t *call, ar_envelope_t *env)
{
    const s_api_row_t *api = s_api_of (call->endpoint);
    const ar_route_target_t *target = ar_route_plan_target (call->plan);
    ar_envelope_meta_set (env, "provider", target->provider);
    ar_envelope_meta_set (env, "base_url", target->base_url);
    if (*target->model)
        ar_envelope_meta_set (env, "model", target->model);
    ar_envelope_meta_set (env, "method", api ? "POST" : "GET");
    ar_envelope_meta_set (env, "path", api ? api->upstream_path : "/models");
    //  The caller's shape: the provider translates to the target's and back.
    if (call->shape == AR_ERROR_ANTHROPIC)
        ar_envelope_meta_set (env, "shape", "anthropic");
    if (call->chat.stream)
        ar_envelope_meta_set (env, "stream", "1");
    if (call->chat.include_usage)
        ar_envelope_meta_set (env, "include_usage", "1");
    if (call->sent_body && call->chat.stream && !call->chat.include_usage && call->usage_added)
        ar_envelope_meta_set (env, "strip_usage", "1");
    //  Settings of the target the routing chose (Azure deployment and API version, ...).
    for (size_t i = 0; i < target->extra_count; i++)
        ar_envelope_meta_set (env, target->extras[i].key, target->extras[i].value);
    //  The caller's own key rides along only for the provider to use when it holds none.
    if (call->auth && ar_envelope_meta_set (env, "auth", call->auth) != 0)
        ar_envelope_meta_set (env, "auth", "");
    s_forward_header (call, env, "x-api-key", "api_key");
    s_forward_header (call, env, "anthropic-version", "anthropic_version");
    s_forward_header (call, env, "anthropic-beta", "anthropic_beta");
}

//  Send the body to the plan's current target: with the target's model when it overrides
//  the caller's, within the target's timeout.
static void s_provide (s_call_t *call)
{
    ar_edge_t *self = call->edge;
    const ar_route_target_t *target = ar_route_plan_target (call->plan);
    snprintf (call->target_provider, sizeof call->target_provider, "%s", target->provider);
    call->try_timeout_ms = target->timeout_ms && target->timeout_ms < self->timeouts[STAGE_PROVIDE]
                               ? target->timeout_ms
                               : self->timeouts[STAGE_PROVIDE];
    size_t len;
    const char *body = s_upstream_body (call, &len);
    bool with_body = s_model_call (call);
    free (call->target_body);
    call->target_body = NULL;
    if (with_body && *target->model && strcmp (target->model, call->chat.model) != 0) {
        call->target_body =
            ar_chat_request_with_model (body, len, target->model, &call->target_len);
        if (call->target_body) {
            body = call->target_body;
            len = call->target_len;
        }
    }
    if (s_stage_begin (call, STAGE_PROVIDE, "provider", "provide", with_body ? body : NULL,
                       with_body ? len : 0, s_provide_meta) != 0)
        s_fail (call, 503, "The gateway cannot reach its provider workers right now.", NULL,
                "no_worker");
}

//  A new try of the plan's current target (the first, a retry, or the next target's).
static void s_try_begin (s_call_t *call)
{
    call->state = S_PROVIDING;
    call->status_known = false;
    call->retry_after[0] = 0;
    call->content_type[0] = 0;
    call->out.len = call->out_off = 0;
    zframe_destroy (&call->reply_frame);
    ar_route_plan_begin_try (call->plan);
    s_provide (call);
}

//  Both OPTIMIZE and ROUTE are settled: call the provider.
static void s_maybe_provide (s_call_t *call)
{
    if (call->state != S_PREPARING || !call->optimize_done || !call->route_done)
        return;
    s_try_begin (call);
}

//  The try that just ended (status 0: transport failure or timeout) was not the answer:
//  returns true when the plan goes on (a retry after its delay, or the next target).
static bool s_walk_on (s_call_t *call, int status, int64_t retry_after_ms)
{
    if (!call->plan || call->state != S_PROVIDING)
        return false;
    uint64_t random = 0;
    if (getrandom (&random, sizeof random, GRND_NONBLOCK) != sizeof random)
        random = (uint64_t)ar_mono_us () * 0x9E3779B97F4A7C15ull;
    uint32_t delay = 0;
    ar_route_step_t step = ar_route_plan_next (call->plan, status, retry_after_ms, random, &delay);
    if (step == AR_ROUTE_ANSWER)
        return false;
    s_stage_end (&call->stages[STAGE_PROVIDE], false); // that try's job has ended
    if (delay == 0) {
        s_try_begin (call);
        return true;
    }
    ar_edge_t *self = call->edge;
    call->wait_due = ar_mono_now () + delay;
    call->wait_handle = zlistx_insert (self->waits, call, false);
    if (!call->wait_handle)
        s_try_begin (call); // out of memory: no wait rather than no try
    return true;
}

static int s_take_plan (s_call_t *call, const char *plan, size_t len)
{
    ar_route_plan_t *parsed = ar_route_plan_parse (plan, len);
    if (!parsed)
        return -1;
    ar_route_plan_destroy (&call->plan);
    call->plan = parsed;
    return 0;
}

static void s_route_done (s_call_t *call)
{
    call->route_done = true;
    s_maybe_provide (call);
}

//  No plan for this call (an AR_ROUTER_* code, from the router actor or the edge's own).
static void s_route_refused (s_call_t *call, int why)
{
    if (why == AR_ROUTER_UNKNOWN_PROVIDER)
        s_fail (call, 400, "Unknown provider in x-anyray-provider.", "x-anyray-provider",
                "unknown_provider");
    else if (why == AR_ROUTER_NO_MATCH)
        s_fail (call, 400, "No routing target matches this request.", NULL, "no_route");
    else
        s_fail (call, 500, "The call cannot be routed.", NULL, "routing_error");
}

//  The router did not answer: the static plan from the same environment keeps traffic moving.
static void s_route_fallback (s_call_t *call)
{
    static char plan[AR_ROUTER_PLAN_SIZE]; // one edge thread; too big for the stack
    ar_route_facts_t facts = {call->provider, call->path, call->chat.model, call->metadata};
    //  Read the stored config only now: this path is taken only while the router is away.
    ar_router_poll (call->edge->fallback_router);
    int len = ar_router_plan (call->edge->fallback_router, &facts, plan, sizeof plan);
    if (len < 0)
        s_route_refused (call, len);
    else if (s_take_plan (call, plan, (size_t)len) != 0)
        s_route_refused (call, AR_ROUTER_CANNOT_PLAN);
    else
        s_route_done (call);
}

static void s_route_meta (s_call_t *call, ar_envelope_t *env)
{
    if (*call->provider)
        ar_envelope_meta_set (env, "provider", call->provider);
    //  Conditional routing may match any metadata member (bounded: too big is left out).
    if (call->metadata && ar_envelope_meta_set (env, "metadata", call->metadata) != 0)
        ar_envelope_meta_set (env, "metadata", "{}");
}

//  OPTIMIZE is settled (answered, failed or timed out): ask upstream for usage if we must.
static void s_optimize_done (s_call_t *call)
{
    call->optimize_done = true;
    if (s_model_call (call) && call->chat.stream && !call->chat.include_usage) {
        size_t len;
        const char *body = s_upstream_body (call, &len);
        size_t out_len = 0;
        char *with_usage = ar_chat_request_with_usage (&call->chat, body, len, &out_len);
        if (with_usage) {
            free (call->sent_body);
            call->sent_body = with_usage;
            call->sent_len = out_len;
            call->usage_added = true;
        }
    }
    s_maybe_provide (call);
}

//  The whole OPTIMIZE failed open: the original goes on unchanged, and it is counted.
static void s_fail_open (s_call_t *call, ar_fail_open_t why)
{
    call->failed_open = true;
    ar_optimizer_stats_add_fail_open (&call->edge->stats, why);
    s_optimize_done (call);
}

//  Start OPTIMIZE (conversations only: the request wrapped as a /v1/optimize message) and
//  ROUTE together.
static void s_prepare (s_call_t *call)
{
    call->state = S_PREPARING;
    const char *shape = s_optimizer_shape (call);
    call->optimize_done = shape == NULL;
    if (shape) {
        size_t len = 0;
        //  A cached answer is served only where the edge can answer it as is: not to a stream.
        char *message = ar_exchange_wrap (call->path, shape, call->metadata, !call->chat.stream,
                                          call->edge->timeouts[STAGE_OPTIMIZE], call->body,
                                          call->body_len, &len);
        int rc = message ? s_stage_begin (call, STAGE_OPTIMIZE, "optimizer", "optimize", message,
                                          len, NULL)
                         : -1;
        free (message);
        if (rc != 0) {
            call->failed_open = true;
            call->optimize_done = true;
            ar_optimizer_stats_add_fail_open (&call->edge->stats, AR_FAIL_OPEN_NO_WORKER);
        }
    }
    if (s_stage_begin (call, STAGE_ROUTE, "router", "route", NULL, 0, s_route_meta) != 0)
        s_route_fallback (call);
}

//  Optimizer Protocol v1 from another gateway: the message goes to the optimizer as it came.
static void s_prepare_protocol (s_call_t *call)
{
    call->state = S_PROVIDING;
    if (s_stage_begin (call, STAGE_OPTIMIZE, "optimizer", ar_optimizer_op_kind (call->op),
                       call->body ? call->body : "", call->body_len, NULL) != 0)
        s_fail (call, 503, "No optimizer worker can take this right now.", NULL, "no_worker");
}

//  --------------------------------------------------------------------------
//  Replies from the broker.

static void s_usage_from (s_call_t *call, const ar_envelope_t *env)
{
    const char *in = ar_envelope_meta_get (env, "input_tokens");
    const char *out = ar_envelope_meta_get (env, "output_tokens");
    const char *cached = ar_envelope_meta_get (env, "cached_input_tokens");
    //  Each round with the provider adds (the retrieve tool can make a call take several).
    if (in)
        call->input_tokens += strtol (in, NULL, 10);
    if (out)
        call->output_tokens += strtol (out, NULL, 10);
    if (cached)
        call->cached_input_tokens += strtol (cached, NULL, 10);
}

//  Ask the optimizer whether the model called anyray_retrieve in the response just in.
static int s_expand_begin (s_call_t *call)
{
    size_t sent_len, len = 0;
    const char *sent = s_upstream_body (call, &sent_len);
    char *message = ar_exchange_wrap_expand (call->path, s_optimizer_shape (call), sent, sent_len,
                                             (const char *)zframe_data (call->reply_frame),
                                             zframe_size (call->reply_frame), &len);
    int rc = message
                 ? s_stage_begin (call, STAGE_OPTIMIZE, "optimizer", "expand", message, len, NULL)
                 : -1;
    free (message);
    if (rc == 0)
        call->state = S_EXPANDING;
    return rc;
}

//  The response in hand goes to the caller (the expansion is done, refused, or failed).
static void s_expand_finish (s_call_t *call)
{
    call->upstream_done = true;
    call->state = S_REPLYING;
    s_resume (call);
}

static void s_on_expand_reply (s_call_t *call, ar_msg_t *msg)
{
    s_stage_end (&call->stages[STAGE_OPTIMIZE], false);
    ar_exchange_expand_t reply;
    if (msg->cmd != AR_CMD_END || !msg->env.has_status || msg->env.status_code != 200 ||
        !msg->body ||
        ar_exchange_read_expand ((const char *)zframe_data (msg->body), zframe_size (msg->body),
                                 &reply) != 0) {
        s_expand_finish (call);
        return;
    }
    if (reply.expanded) {
        char *next = malloc (reply.request_len);
        if (!next) {
            s_expand_finish (call);
            return;
        }
        memcpy (next, reply.request, reply.request_len);
        free (call->sent_body);
        call->sent_body = next;
        call->sent_len = reply.request_len;
        call->retrieve_left--;
        call->retrieved++;
        zframe_destroy (&call->reply_frame);
        call->status_known = false;
        call->state = S_PROVIDING;
        s_provide (call); // the same target, with the expanded body
        return;
    }
    if (reply.response) {
        //  The caller's own tool calls, without ours.
        zframe_destroy (&call->reply_frame);
        call->reply_frame = zframe_new (reply.response, reply.response_len);
    }
    s_expand_finish (call);
}

//  A stream that already started ends with an error event in the caller's shape: OpenAI SDKs
//  raise on a data event with an error member, Anthropic SDKs on an `error` event.
static void s_stream_error (s_call_t *call, int status, const char *message, const char *code)
{
    char event[1800], body[1600];
    ar_http_error (call->shape, body, sizeof body, status, message, NULL, code);
    int n = snprintf (event, sizeof event, "%sdata: %s\n\n",
                      call->shape == AR_ERROR_ANTHROPIC ? "event: error\n" : "", body);
    if (n > 0 && (size_t)n < sizeof event)
        s_append (call, event, (size_t)n);
}

//  A provider ERROR that says the upstream could not be reached, did not answer in time, or
//  was lost with the worker calling it: another try (or target) may do better. Refusals (no
//  worker at all, overload) are the gateway's own state, not the target's.
static bool s_transport_failure (const ar_msg_t *msg)
{
    const char *reason = msg->env.has_status ? msg->env.status_reason : "";
    return strncmp (reason, "upstream ", 9) == 0 || strcmp (reason, AR_REASON_EXPIRED) == 0 ||
           strcmp (reason, AR_REASON_WORKER_LOST) == 0;
}

//  The upstream's Retry-After in ms, or -1.
static int64_t s_retry_after_ms (const ar_msg_t *msg)
{
    const char *seconds = ar_envelope_meta_get (&msg->env, "retry_after");
    char *end = NULL;
    long long value = seconds ? strtoll (seconds, &end, 10) : -1;
    return seconds && end != seconds && value >= 0 && value < 86400 ? value * 1000 : -1;
}

static void s_on_provide_reply (s_call_t *call, ar_msg_t *msg)
{
    //  Before the first byte goes out, a failed try may be retried or passed to the next target.
    if (call->state == S_PROVIDING && msg->cmd == AR_CMD_END && msg->env.has_status &&
        msg->env.status_code >= 400 &&
        s_walk_on (call, msg->env.status_code, s_retry_after_ms (msg)))
        return;
    if (call->state == S_PROVIDING && msg->cmd == AR_CMD_ERROR && s_transport_failure (msg) &&
        s_walk_on (call, 0, -1))
        return;
    if (!call->status_known && msg->env.has_status && msg->cmd != AR_CMD_ERROR) {
        call->status = msg->env.status_code;
        call->status_known = true;
        const char *content_type = ar_envelope_meta_get (&msg->env, "content_type");
        snprintf (call->content_type, sizeof call->content_type, "%s",
                  content_type ? content_type : "application/json");
        const char *retry_after = ar_envelope_meta_get (&msg->env, "retry_after");
        snprintf (call->retry_after, sizeof call->retry_after, "%s",
                  retry_after ? retry_after : "");
    }
    if (!call->first_byte_us)
        call->first_byte_us = ar_mono_us ();
    size_t len = msg->body ? zframe_size (msg->body) : 0;
    if (msg->cmd == AR_CMD_CHUNK) {
        if (call->out.len - call->out_off + len > AR_STREAM_BUFFER_MAX) {
            //  A reader this far behind is cut (Redis's client-output-buffer hard limit).
            s_stage_end (&call->stages[STAGE_PROVIDE], true);
            call->upstream_done = true;
            s_resume (call);
            return;
        }
        if (len)
            s_append (call, zframe_data (msg->body), len);
        bool sse = call->chat.stream && call->status >= 200 && call->status < 300;
        if (sse && call->state == S_PROVIDING)
            call->state = S_STREAMING;
        if (call->state == S_STREAMING)
            s_resume (call);
        return;
    }
    s_stage_end (&call->stages[STAGE_PROVIDE], false);
    if (msg->cmd == AR_CMD_END) {
        s_usage_from (call, &msg->env);
        if (call->out.len == 0 && msg->body) {
            call->reply_frame = msg->body; // served as is, no copy
            msg->body = NULL;
        } else if (len)
            s_append (call, zframe_data (msg->body), len);
        if (call->retrieve_left > 0 && call->state == S_PROVIDING && call->status == 200 &&
            call->reply_frame && s_expand_begin (call) == 0)
            return; // the optimizer looks for anyray_retrieve calls first
        call->upstream_done = true;
        if (call->state != S_STREAMING)
            call->state = S_REPLYING;
        s_resume (call);
        return;
    }
    //  ERROR: from the provider (502/504) or the broker (NO_WORKER, EXPIRED, WORKER_LOST).
    const char *reason = msg->env.has_status ? msg->env.status_reason : "upstream error";
    int status = msg->env.has_status && msg->env.status_code >= 400 ? msg->env.status_code : 502;
    if (strcmp (reason, AR_REASON_EXPIRED) == 0)
        status = 504;
    if (call->state == S_STREAMING) {
        //  Bytes already went out: finish the stream with an error event the SDK can raise.
        s_stream_error (call, status, reason, "upstream_error");
        call->upstream_done = true;
        s_resume (call);
        return;
    }
    char message[256];
    const char *code = "upstream_error";
    if (strcmp (reason, AR_REASON_NO_WORKER) == 0 || strcmp (reason, AR_REASON_OVERLOADED) == 0)
        code = "no_worker", status = 503;
    else if (status == 504)
        code = "upstream_timeout";
    snprintf (message, sizeof message, "Upstream call failed: %s", reason);
    s_fail (call, status, message, NULL, code);
}

//  The optimizer's answer to another gateway goes back as it is, with its status.
static void s_on_protocol_reply (s_call_t *call, ar_msg_t *msg)
{
    s_stage_end (&call->stages[STAGE_OPTIMIZE], false);
    if (msg->cmd != AR_CMD_END || !msg->env.has_status || !msg->body) {
        const char *reason = msg->env.has_status ? msg->env.status_reason : "optimizer error";
        if (strcmp (reason, AR_REASON_NO_WORKER) == 0 || strcmp (reason, AR_REASON_OVERLOADED) == 0)
            s_fail (call, 503, "No optimizer worker can take this right now.", NULL, "no_worker");
        else if (strcmp (reason, AR_REASON_EXPIRED) == 0)
            s_fail (call, 504, "The optimizer did not answer in time.", NULL, "optimizer_timeout");
        else
            s_fail (call, 502, "The optimizer failed on this message.", NULL, "optimizer_error");
        return;
    }
    call->status = msg->env.status_code;
    call->status_known = true;
    ar_exchange_reply_t reply;
    if (call->op == AR_OP_OPTIMIZE && call->status == 200 &&
        ar_exchange_read ((const char *)zframe_data (msg->body), zframe_size (msg->body), &reply) ==
            0)
        ar_optimizer_stats_add_reply (&call->edge->stats,
                                      &reply); // other gateways' calls count too
    snprintf (call->content_type, sizeof call->content_type, "application/json");
    call->reply_frame = msg->body; // served as is, no copy
    msg->body = NULL;
    call->upstream_done = true;
    call->state = S_REPLYING;
    s_resume (call);
}

//  A semantic_cache hit for a call that can take it: answer without the provider.
static void s_serve_cached (s_call_t *call, const ar_exchange_reply_t *reply)
{
    s_stages_end (call, true); // ROUTE is not needed any more
    call->out.len = call->out_off = 0;
    s_append (call, reply->cached_response, reply->cached_response_len);
    call->status = 200;
    call->status_known = true;
    snprintf (call->content_type, sizeof call->content_type, "application/json");
    snprintf (call->target_provider, sizeof call->target_provider, "cache");
    call->upstream_done = true;
    call->state = S_REPLYING;
    s_resume (call);
}

static void s_on_optimize_reply (s_call_t *call, ar_msg_t *msg)
{
    if (call->endpoint == EP_OPTIMIZER) {
        s_on_protocol_reply (call, msg);
        return;
    }
    if (call->state == S_EXPANDING) {
        s_on_expand_reply (call, msg);
        return;
    }
    s_stage_end (&call->stages[STAGE_OPTIMIZE], false);
    ar_exchange_reply_t reply;
    if (msg->cmd != AR_CMD_END) {
        const char *reason = msg->env.has_status ? msg->env.status_reason : "";
        bool no_worker =
            strcmp (reason, AR_REASON_NO_WORKER) == 0 || strcmp (reason, AR_REASON_OVERLOADED) == 0;
        s_fail_open (call, no_worker ? AR_FAIL_OPEN_NO_WORKER : AR_FAIL_OPEN_ERROR);
        return;
    }
    if (!msg->env.has_status || msg->env.status_code != 200 || !msg->body ||
        ar_exchange_read ((const char *)zframe_data (msg->body), zframe_size (msg->body), &reply) !=
            0) {
        s_fail_open (call, AR_FAIL_OPEN_ERROR); // any optimizer error: forward the original
        return;
    }
    ar_optimizer_stats_add_reply (&call->edge->stats, &reply);
    call->optimized = true;
    ar_exchange_header (&reply, call->optimizations, sizeof call->optimizations);
    call->tokens_saved = reply.tokens_before - reply.tokens_after;
    call->retrieve_left = call->chat.stream ? 0 : reply.retrieve_max_calls;
    if (ar_exchange_savings_json (&reply, call->savings, sizeof call->savings) < 0)
        call->savings[0] = 0;
    if (reply.cache_hit && !call->chat.stream) {
        s_serve_cached (call, &reply);
        return;
    }
    if (reply.changed) {
        char *copy = malloc (reply.request_len);
        if (copy) {
            memcpy (copy, reply.request, reply.request_len);
            free (call->sent_body);
            call->sent_body = copy;
            call->sent_len = reply.request_len; // strategies never touch stream options
        }
    }
    s_optimize_done (call);
}

static void s_on_route_reply (s_call_t *call, ar_msg_t *msg)
{
    s_stage_end (&call->stages[STAGE_ROUTE], false);
    if (msg->cmd == AR_CMD_END && msg->body &&
        s_take_plan (call, (const char *)zframe_data (msg->body), zframe_size (msg->body)) == 0)
        s_route_done (call);
    else if (msg->cmd == AR_CMD_ERROR && msg->env.status_code == 400)
        s_route_refused (call, strcmp (msg->env.status_reason, "unknown provider") == 0
                                   ? AR_ROUTER_UNKNOWN_PROVIDER
                                   : AR_ROUTER_NO_MATCH);
    else
        s_route_fallback (call);
}

static void s_on_reply (ar_edge_t *self, ar_msg_t *msg)
{
    char key[2 * AR_ID_LEN + 1];
    s_hex (msg->env.id, key);
    s_stage_t *stage = zhashx_lookup (self->stages, key);
    if (!stage) {
        ar_spend_outbox_on_reply (self->spend, msg); // else late: nothing waits for it
        return;
    }
    if (stage->kind == STAGE_PROVIDE)
        s_on_provide_reply (stage->call, msg);
    else if (msg->cmd == AR_CMD_CHUNK)
        return; // only the provider streams
    else if (stage->kind == STAGE_OPTIMIZE)
        s_on_optimize_reply (stage->call, msg);
    else
        s_on_route_reply (stage->call, msg);
}

//  A stage got no answer in time (or the broker went away): each kind has its own way out.
static void s_stage_lapsed (s_stage_t *stage, bool cancel)
{
    s_call_t *call = stage->call;
    s_stage_end (stage, cancel);
    if (stage->kind == STAGE_OPTIMIZE && call->endpoint == EP_OPTIMIZER)
        s_fail (call, cancel ? 504 : 502,
                cancel ? "The optimizer did not answer in time."
                       : "The gateway lost its broker during the call.",
                NULL, cancel ? "optimizer_timeout" : "broker_unavailable");
    else if (stage->kind == STAGE_OPTIMIZE && call->state == S_EXPANDING)
        s_expand_finish (call);             // the response in hand stands
    else if (stage->kind == STAGE_OPTIMIZE) // 800 ms passed: the original goes on unchanged
        s_fail_open (call, cancel ? AR_FAIL_OPEN_TIMEOUT : AR_FAIL_OPEN_NO_WORKER);
    else if (stage->kind == STAGE_ROUTE)
        s_route_fallback (call);
    else if (cancel && s_walk_on (call, 0, -1))
        return; // the try timed out: the plan goes on
    else if (call->state == S_STREAMING) {
        s_stream_error (call, 504, "Upstream timed out", "upstream_timeout");
        call->upstream_done = true;
        s_resume (call);
    } else if (cancel)
        s_fail (call, 504, "The upstream provider did not answer in time.", NULL,
                "upstream_timeout");
    else
        s_fail (call, 502, "The gateway lost its broker during the call.", NULL,
                "broker_unavailable");
}

static int s_stage_compare (const void *a, const void *b)
{
    const s_stage_t *x = a, *y = b;
    return x->deadline < y->deadline ? -1 : x->deadline > y->deadline;
}

static int s_wait_compare (const void *a, const void *b)
{
    const s_call_t *x = a, *y = b;
    return x->wait_due < y->wait_due ? -1 : x->wait_due > y->wait_due;
}

static void s_expire (zlistx_t *timers, ar_mono_ms now)
{
    s_stage_t *stage;
    while ((stage = zlistx_first (timers)) && stage->deadline <= now)
        s_stage_lapsed (stage, true);
}

//  The broker went silent: settle what waits on it now rather than at each deadline.
static void s_broker_lost (ar_edge_t *self)
{
    zlistx_t *waiting = zhashx_values (self->stages);
    for (s_stage_t *stage = zlistx_first (waiting); stage; stage = zlistx_next (waiting))
        if (*stage->key) // an earlier one may have failed its whole call
            s_stage_lapsed (stage, false);
    zlistx_destroy (&waiting);
}

//  --------------------------------------------------------------------------
//  Spend: one content-free row per chat call, fire-and-forget.

static void s_send_spend (s_call_t *call, int status)
{
    if (call->spend_sent || !s_model_call (call) || call->state == S_RECEIVING)
        return;
    call->spend_sent = true;
    ar_edge_t *self = call->edge;
    char user[300], team[300], session[300], model[600], provider[140], endpoint[260];
    ar_json_escape (endpoint, sizeof endpoint, call->path);
    ar_json_escape (user, sizeof user, call->user);
    ar_json_escape (team, sizeof team, call->team);
    ar_json_escape (session, sizeof session, call->session);
    //  The model called: the routing target's when it overrode the caller's.
    const char *called = call->chat.model;
    if (call->plan && ar_route_plan_tries (call->plan) && *ar_route_plan_target (call->plan)->model)
        called = ar_route_plan_target (call->plan)->model;
    ar_json_escape (model, sizeof model, called);
    ar_json_escape (provider, sizeof provider,
                    *call->target_provider ? call->target_provider : call->provider);
    int64_t now = ar_mono_us ();
    char row[4096];
    int len = snprintf (
        row, sizeof row,
        "{\"request_id\":\"%s\",\"ts_ms\":%llu,\"user\":%s%s%s,\"team\":%s%s%s,"
        "\"session\":%s%s%s,\"endpoint\":\"%s\",\"provider\":\"%s\","
        "\"model\":\"%s\",\"input_tokens\":%ld,\"output_tokens\":%ld,"
        "\"cached_input_tokens\":%ld,\"latency_ms\":%lld,"
        "\"ttfb_ms\":%lld,\"status\":%d,\"stream\":%s,\"optimized\":%s%s%s}",
        call->request_hex, (unsigned long long)ar_wall_now (), *user ? "\"" : "",
        *user ? user : "null", *user ? "\"" : "", *team ? "\"" : "", *team ? team : "null",
        *team ? "\"" : "", *session ? "\"" : "", *session ? session : "null", *session ? "\"" : "",
        endpoint, provider, model, call->input_tokens, call->output_tokens,
        call->cached_input_tokens, (long long)((now - call->start_us) / 1000),
        (long long)(call->first_byte_us ? (call->first_byte_us - call->start_us) / 1000 : 0),
        status, call->chat.stream ? "true" : "false", call->optimized ? "true" : "false",
        *call->savings ? ",\"savings\":" : "", call->savings);
    if (len < 0 || (size_t)len >= sizeof row)
        return; // cannot happen with the bounded fields above
    ar_spend_outbox_send (self->spend, call->request_hex, row, (size_t)len);
}

//  --------------------------------------------------------------------------
//  HTTP.

//  What a URL is. The gateway port serves the SDK endpoints; the optimizer port serves
//  Optimizer Protocol v1 (op set); both serve /healthz and /admin/...
static s_endpoint_t s_classify (const char *method, const char *url, bool optimizer_port,
                                ar_optimizer_op_t *op)
{
    bool post = strcmp (method, "POST") == 0, get = strcmp (method, "GET") == 0;
    if (strcmp (url, "/admin") == 0 || strncmp (url, "/admin/", 7) == 0)
        return EP_ADMIN;
    if (strcmp (url, "/healthz") == 0)
        return get ? EP_HEALTH : EP_BAD_METHOD;
    if (optimizer_port) {
        int found = ar_optimizer_op_from_path (url);
        if (found < 0)
            return EP_NOT_FOUND;
        *op = (ar_optimizer_op_t)found;
        return post ? EP_OPTIMIZER : EP_BAD_METHOD;
    }
    //  The OpenAI SDKs use a base URL with /v1; the seeds' examples set it without. Both work.
    //  The Anthropic SDK appends /v1/messages to its base URL: with or without /v1 works too.
    const char *path = strncmp (url, "/v1/", 4) == 0 ? url + 3 : url;
    for (size_t i = 0; i < sizeof s_apis / sizeof s_apis[0]; i++)
        if (strcmp (path, s_apis[i].upstream_path) == 0)
            return post ? s_apis[i].endpoint : EP_BAD_METHOD;
    if (strcmp (url, "/v1/models") == 0 || strcmp (url, "/models") == 0)
        return get ? EP_MODELS : EP_BAD_METHOD;
    return EP_NOT_FOUND;
}

static enum MHD_Result s_queue (s_call_t *call, int status, const char *content_type,
                                struct MHD_Response *response)
{
    MHD_add_response_header (response, "Content-Type", content_type);
    if (*call->request_hex)
        MHD_add_response_header (response, "x-anyray-request-id", call->request_hex);
    if (s_optimizer_shape (call) && call->optimized) {
        //  What the optimizer did, content-free: the kinds that changed it, tokens saved.
        char saved[32];
        snprintf (saved, sizeof saved, "%lld", (long long)call->tokens_saved);
        if (*call->optimizations)
            MHD_add_response_header (response, "x-anyray-optimizations", call->optimizations);
        if (call->retrieved) {
            char rounds[16];
            snprintf (rounds, sizeof rounds, "%d", call->retrieved);
            MHD_add_response_header (response, "x-anyray-retrieved", rounds);
        }
        MHD_add_response_header (response, "x-anyray-tokens-saved", saved);
    }
    //  Where the call went, content-free: the provider, the routing target, the tries.
    if (s_model_call (call) && *call->target_provider)
        MHD_add_response_header (response, "x-anyray-provider", call->target_provider);
    if (s_model_call (call) && call->plan && ar_route_plan_tries (call->plan)) {
        char tries[16];
        snprintf (tries, sizeof tries, "%d", ar_route_plan_tries (call->plan));
        MHD_add_response_header (response, "x-anyray-attempts", tries);
        if (*ar_route_plan_target (call->plan)->name)
            MHD_add_response_header (response, "x-anyray-target",
                                     ar_route_plan_target (call->plan)->name);
    }
    //  The SDKs wait as long as the provider asked before they retry.
    if (*call->retry_after && (status == 429 || status == 503))
        MHD_add_response_header (response, "retry-after", call->retry_after);
    call->status = status;
    call->response_queued = true;
    enum MHD_Result rc = MHD_queue_response (call->conn, (unsigned)status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result s_reply_now (s_call_t *call, int status, const char *body)
{
    size_t len = strlen (body);
    struct MHD_Response *response =
        MHD_create_response_from_buffer (len, (void *)body, MHD_RESPMEM_MUST_COPY);
    return s_queue (call, status, "application/json", response);
}

static enum MHD_Result s_reply_error_now (s_call_t *call, int status, const char *message,
                                          const char *param, const char *code)
{
    char body[1600];
    ar_http_error (call->shape, body, sizeof body, status, message, param, code);
    return s_reply_now (call, status, body);
}

static ssize_t s_stream_reader (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    s_call_t *call = cls;
    if (call->out_off < call->out.len) {
        size_t n = call->out.len - call->out_off;
        if (n > max)
            n = max;
        memcpy (buf, call->out.data + call->out_off, n);
        call->out_off += n;
        return (ssize_t)n;
    }
    if (call->upstream_done)
        return MHD_CONTENT_READER_END_OF_STREAM;
    //  Nothing yet: sleep until the next chunk resumes us (returning 0 unsuspended would spin).
    s_suspend (call);
    return 0;
}

static enum MHD_Result s_queue_result (s_call_t *call)
{
    call->state = S_DONE;
    struct MHD_Response *response;
    if (call->reply_frame)
        response = MHD_create_response_from_buffer (zframe_size (call->reply_frame),
                                                    zframe_data (call->reply_frame),
                                                    MHD_RESPMEM_PERSISTENT);
    else
        response =
            MHD_create_response_from_buffer (call->out.len, call->out.data, MHD_RESPMEM_PERSISTENT);
    return s_queue (call, call->status, call->content_type, response);
}

static enum MHD_Result s_queue_stream (s_call_t *call)
{
    struct MHD_Response *response =
        MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 8 * 1024, s_stream_reader, call, NULL);
    MHD_add_response_header (response, "Cache-Control", "no-cache");
    MHD_add_response_header (response, "X-Accel-Buffering", "no");
    return s_queue (call, call->status, call->content_type, response);
}

static int s_read_metadata (s_call_t *call, const char *header)
{
    json_t *root = json_loads (header, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return -1;
    }
    struct {
        const char *key;
        char *out;
    } fields[] = {{"user", call->user}, {"team", call->team}, {"session", call->session}};
    int rc = 0;
    for (size_t i = 0; i < 3; i++) {
        json_t *value = json_object_get (root, fields[i].key);
        if (!value || json_is_null (value))
            continue;
        if (!json_is_string (value) || json_string_length (value) > 128) {
            rc = -1;
            break;
        }
        snprintf (fields[i].out, 129, "%s", json_string_value (value));
    }
    //  The targeting rules may match any member: the scalar ones go to the optimizer.
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe (root, tmp, key,
                              value) if (json_is_object (value) || json_is_array (value) ||
                                         json_is_null (value)) json_object_del (root, key);
    if (rc == 0 && json_object_size (root) <= 64)
        call->metadata = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    return rc;
}

//  /admin/...: answered here and now (the store is local SQLite; admin calls are rare).
static enum MHD_Result s_admin (ar_edge_t *self, s_call_t *call)
{
    struct MHD_Connection *conn = call->conn;
    ar_admin_request_t request = {
        .method = call->method,
        .path = call->path,
        .authorization = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Authorization"),
        .actor = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "x-anyray-admin-actor"),
        .since_ms = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "since_ms"),
        .limit = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "limit"),
        .body = call->body,
        .body_len = call->body_len,
    };
    char *reply = NULL;
    int status = ar_admin_handle (self->admin, &request, &reply);
    if (!reply)
        return s_reply_error_now (call, 500, "out of memory", NULL, "internal_error");
    enum MHD_Result rc = s_reply_now (call, status, reply);
    free (reply);
    return rc;
}

//  The whole body is in: check it and start the stages.
static enum MHD_Result s_start (ar_edge_t *self, s_call_t *call)
{
    struct MHD_Connection *conn = call->conn;
    if (call->endpoint == EP_HEALTH) {
        bool alive = ar_client_broker_alive (self->client);
        return s_reply_now (call, alive ? 200 : 503,
                            alive ? "{\"status\":\"ok\",\"broker\":true}"
                                  : "{\"status\":\"degraded\",\"broker\":false}");
    }
    if (call->too_large) {
        char message[160];
        snprintf (message, sizeof message, "Request body too large: the limit is %llu bytes.",
                  (unsigned long long)self->config.max_body_bytes);
        return s_reply_error_now (call, 413, message, NULL, "request_too_large");
    }
    if (call->endpoint == EP_ADMIN)
        return s_admin (self, call);
    const char *metadata = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "x-anyray-metadata");
    if (metadata && s_read_metadata (call, metadata) != 0)
        return s_reply_error_now (call, 400,
                                  "x-anyray-metadata must be a JSON object whose user, team and "
                                  "session are strings of at most 128 bytes.",
                                  "x-anyray-metadata", "invalid_metadata");
    const char *provider = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "x-anyray-provider");
    if (provider)
        snprintf (call->provider, sizeof call->provider, "%s", provider);
    call->auth = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Authorization");
    if (!ar_client_broker_alive (self->client))
        return s_reply_error_now (call, 503, "The gateway's broker is not reachable right now.",
                                  NULL, "broker_unavailable");
    if (call->endpoint == EP_OPTIMIZER) {
        s_prepare_protocol (call);
        if (call->state == S_REPLYING)
            return s_queue_result (call);
        s_suspend (call);
        return MHD_YES;
    }
    const s_api_row_t *api = s_api_of (call->endpoint);
    if (api && ar_chat_request_parse_api (&call->chat, api->api, call->body ? call->body : "",
                                          call->body_len) != 0)
        return s_reply_error_now (call, 400, call->chat.error, call->chat.param,
                                  call->chat.param ? "invalid_value" : "invalid_json");
    s_prepare (call);
    if (call->state == S_REPLYING) // failed at once (e.g. no broker socket)
        return s_queue_result (call);
    s_suspend (call);
    return MHD_YES;
}

static enum MHD_Result s_access (void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    ar_edge_t *self = cls;
    s_call_t *call = *con_cls;
    if (!call) {
        call = calloc (1, sizeof *call);
        if (!call)
            return MHD_NO;
        call->edge = self;
        call->conn = conn;
        call->start_us = ar_mono_us ();
        const union MHD_ConnectionInfo *daemon =
            MHD_get_connection_info (conn, MHD_CONNECTION_INFO_DAEMON);
        bool optimizer_port = daemon && daemon->daemon == self->optimizer_daemon;
        call->endpoint = s_classify (method, url, optimizer_port, &call->op);
        snprintf (call->method, sizeof call->method, "%s", method);
        const s_api_row_t *api = s_api_of (call->endpoint);
        snprintf (call->path, sizeof call->path, "%s",
                  api                           ? api->path
                  : call->endpoint == EP_MODELS ? "/v1/models"
                                                : url);
        //  Anthropic's SDKs get Anthropic's error shape, from the first refusal on.
        if (call->endpoint == EP_MESSAGES || call->endpoint == EP_COUNT_TOKENS)
            call->shape = AR_ERROR_ANTHROPIC;
        ar_envelope_t id;
        ar_envelope_new_id (&id);
        memcpy (call->request_id, id.id, AR_ID_LEN);
        s_hex (call->request_id, call->request_hex);
        call->calls_handle = zlistx_add_end (self->calls, call);
        *con_cls = call;
        if (call->endpoint == EP_NOT_FOUND) {
            char message[512];
            snprintf (message, sizeof message,
                      "Unknown request URL: %.16s %.256s. Please check the "
                      "URL for typos.",
                      method, url);
            return s_reply_error_now (call, 404, message, NULL, "unknown_url");
        }
        if (call->endpoint == EP_BAD_METHOD)
            return s_reply_error_now (call, 405, "Method not allowed for this URL.", NULL,
                                      "method_not_allowed");
        const char *length = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Content-Length");
        unsigned long long declared = length ? strtoull (length, NULL, 10) : 0;
        if (declared > self->config.max_body_bytes) {
            //  Answering before the body is read would close a socket with unread bytes in it,
            //  and the kernel's RST can reach the client before our 413 does. So an oversized
            //  body is read and dropped (no memory kept) and the 413 goes out after it; only an
            //  absurd size is refused at once.
            call->too_large = true;
            if (declared > AR_DRAIN_MAX) {
                char message[160];
                snprintf (message, sizeof message,
                          "Request body too large: the limit is %llu bytes.",
                          (unsigned long long)self->config.max_body_bytes);
                return s_reply_error_now (call, 413, message, NULL, "request_too_large");
            }
            return MHD_YES;
        }
        if (declared) {
            call->body = malloc (declared + 1);
            call->body_cap = call->body ? declared : 0;
        }
        return MHD_YES;
    }
    if (call->response_queued)
        return MHD_YES;
    if (*upload_data_size) {
        size_t len = *upload_data_size;
        *upload_data_size = 0;
        if (call->too_large || call->body_len + len > self->config.max_body_bytes) {
            call->too_large = true;
            return MHD_YES; // swallow the rest, answer 413 at the end
        }
        if (call->body_len + len > call->body_cap) {
            size_t cap = call->body_cap ? call->body_cap * 2 : 16384;
            while (cap < call->body_len + len)
                cap *= 2;
            char *grown = realloc (call->body, cap + 1);
            if (!grown)
                return MHD_NO;
            call->body = grown;
            call->body_cap = cap;
        }
        memcpy (call->body + call->body_len, upload_data, len);
        call->body_len += len;
        return MHD_YES;
    }
    switch (call->state) {
    case S_RECEIVING:
        return s_start (self, call);
    case S_REPLYING:
        return s_queue_result (call);
    case S_STREAMING:
        return s_queue_stream (call);
    default:
        s_suspend (call); // woken early: keep waiting
        return MHD_YES;
    }
}

static void s_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    ar_edge_t *self = cls;
    s_call_t *call = *con_cls;
    if (!call)
        return;
    //  The client left mid-call: stop the work so no more tokens are bought for nobody.
    s_stages_end (call, true);
    int status = call->response_queued ? call->status : 499;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && call->state == S_STREAMING)
        status = 499;
    s_send_spend (call, status);
    zlistx_delete (self->calls, call->calls_handle);
    zframe_destroy (&call->reply_frame);
    free (call->body);
    free (call->sent_body);
    free (call->target_body);
    ar_route_plan_destroy (&call->plan);
    free (call->metadata);
    ar_buf_free (&call->out);
    free (call);
    *con_cls = NULL;
}

//  --------------------------------------------------------------------------

void ar_edge_config_from_env (ar_edge_config_t *config, char *endpoint_buf, size_t size)
{
    config->host = ar_env_str ("ANYRAY_HOST", "127.0.0.1");
    config->port = (uint16_t)ar_env_int ("ANYRAY_PORT", 8787, 1, 65535);
    config->broker_endpoint = ar_env_broker_endpoint (endpoint_buf, size);
    config->heartbeat_ms = (uint32_t)ar_env_int ("ANYRAY_HEARTBEAT_MS", 500, 50, 60000);
    config->max_body_bytes =
        (uint64_t)ar_env_int ("ANYRAY_MAX_BODY_BYTES", 32 << 20, 1024, (int64_t)1 << 34);
    config->optimize_timeout_ms =
        (uint32_t)ar_env_int ("ANYRAY_OPTIMIZER_TIMEOUT_MS", 800, 1, 60000);
    config->route_timeout_ms = (uint32_t)ar_env_int ("ANYRAY_ROUTE_TIMEOUT_MS", 250, 1, 60000);
    config->request_timeout_ms =
        (uint32_t)ar_env_int ("ANYRAY_REQUEST_TIMEOUT_MS", 600000, 100, 3600000);
    config->optimizer_host = ar_env_str ("ANYRAY_OPTIMIZER_HOST", "127.0.0.1");
    config->optimizer_port = (uint16_t)ar_env_int ("ANYRAY_OPTIMIZER_PORT", 8088, 0, 65535);
    config->admin_token = ar_env_str ("ANYRAY_ADMIN_TOKEN", "");
}

static char *s_stats_json (void *arg)
{
    ar_edge_t *self = arg;
    return ar_optimizer_stats_json (&self->stats);
}

//  One listener. External epoll, no internal thread: our loop drives MHD and the broker socket
//  together. The per-connection pool is small on purpose: MHD 0.9.75 zeroes the whole pool for
//  each request (a 256 KB pool cost a fifth of the edge's CPU and ~190 KB per held stream),
//  and 32 KB still holds headers and reads bodies in big enough slices.
static struct MHD_Daemon *s_listen (ar_edge_t *self, const char *host, uint16_t port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons (port)};
    if (inet_pton (AF_INET, host, &addr.sin_addr) != 1) {
        fprintf (stderr, "anyray-edge: %s is not an IPv4 address\n", host);
        return NULL;
    }
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, port, NULL, NULL, s_access, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        (unsigned int)1, MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)60000, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)900, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)4096, MHD_OPTION_END);
    if (!daemon)
        fprintf (stderr, "anyray-edge: cannot listen on %s:%u\n", host, port);
    return daemon;
}

ar_edge_t *ar_edge_new (const ar_edge_config_t *config)
{
    ar_edge_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    snprintf (self->broker_endpoint, sizeof self->broker_endpoint, "%s", config->broker_endpoint);
    self->config.broker_endpoint = self->broker_endpoint;
    self->client = ar_client_new (self->broker_endpoint, config->heartbeat_ms);
    char db[1024], error[512];
    snprintf (db, sizeof db, "%s/anyray.db", ar_env_data_dir ());
    //  The plan when the router does not answer: the same config, read from the same store.
    self->fallback_router = ar_router_new (db, error, sizeof error);
    if (!self->fallback_router)
        fprintf (stderr, "anyray-edge: routing config: %s\n", error);
    self->spend = self->client ? ar_spend_outbox_new (self->client, ar_env_data_dir (),
                                                      (size_t)ar_env_int ("ANYRAY_SPEND_OUTBOX_MAX",
                                                                          100000, 1, 10000000))
                               : NULL;
    self->stages = zhashx_new ();
    self->calls = zlistx_new ();
    for (int kind = 0; kind < STAGE_COUNT; kind++)
        self->timers[kind] = zlistx_new ();
    zlistx_set_comparator (self->timers[STAGE_PROVIDE], s_stage_compare);
    self->waits = zlistx_new ();
    zlistx_set_comparator (self->waits, s_wait_compare);
    self->timeouts[STAGE_OPTIMIZE] = config->optimize_timeout_ms;
    self->timeouts[STAGE_ROUTE] = config->route_timeout_ms;
    self->timeouts[STAGE_PROVIDE] = config->request_timeout_ms;
    self->admin = ar_admin_new (config->admin_token, db, s_stats_json, self, error, sizeof error);
    if (!self->admin) {
        fprintf (stderr, "anyray-edge: admin API: %s\n", error);
        ar_edge_destroy (&self);
        return NULL;
    }
    if (!self->fallback_router) {
        ar_edge_destroy (&self);
        return NULL;
    }
    if (!self->client) {
        fprintf (stderr, "anyray-edge: cannot reach the broker at %s\n", self->broker_endpoint);
        ar_edge_destroy (&self);
        return NULL;
    }
    self->daemon = s_listen (self, config->host, config->port);
    if (self->daemon && config->optimizer_port)
        self->optimizer_daemon = s_listen (self, config->optimizer_host, config->optimizer_port);
    if (!self->daemon || (config->optimizer_port && !self->optimizer_daemon)) {
        ar_edge_destroy (&self);
        return NULL;
    }
    self->broker_was_alive = true;
    return self;
}

void ar_edge_destroy (ar_edge_t **self_p)
{
    ar_edge_t *self = *self_p;
    if (!self)
        return;
    //  MHD forbids stopping with suspended connections: wake them all first.
    for (s_call_t *call = self->calls ? zlistx_first (self->calls) : NULL; call;
         call = zlistx_next (self->calls)) {
        call->upstream_done = true;
        s_resume (call);
    }
    struct MHD_Daemon *daemons[2] = {self->daemon, self->optimizer_daemon};
    for (int i = 0; i < 2; i++)
        if (daemons[i]) {
            MHD_run (daemons[i]);
            MHD_stop_daemon (daemons[i]);
        }
    ar_admin_destroy (&self->admin);
    ar_spend_outbox_destroy (&self->spend); // spools what the spend actor has not committed
    ar_client_destroy (&self->client);
    ar_router_destroy (&self->fallback_router);
    zhashx_destroy (&self->stages);
    zlistx_destroy (&self->calls);
    for (int kind = 0; kind < STAGE_COUNT; kind++)
        zlistx_destroy (&self->timers[kind]);
    zlistx_destroy (&self->waits);
    free (self);
    *self_p = NULL;
}

//  A suspended connection does not notice its client leaving (libmicrohttpd reads nothing
//  while it sleeps), so a call waiting on a slow upstream would keep buying tokens for nobody.
//  Once a second every suspended call's socket is asked, in one poll(2), whether the peer hung
//  up; such a call is cancelled upstream and finished as 499 (client closed request).
static void s_check_hangups (ar_edge_t *self)
{
    size_t count = 0;
    for (s_call_t *call = zlistx_first (self->calls); call; call = zlistx_next (self->calls))
        count += call->suspended;
    if (count == 0)
        return;
    struct pollfd *fds = calloc (count, sizeof *fds);
    s_call_t **calls = calloc (count, sizeof *calls);
    size_t n = 0;
    for (s_call_t *call = zlistx_first (self->calls); call && fds && calls && n < count;
         call = zlistx_next (self->calls)) {
        if (!call->suspended)
            continue;
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (call->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!info)
            continue;
        fds[n] = (struct pollfd){.fd = info->connect_fd, .events = POLLRDHUP};
        calls[n++] = call;
    }
    if (n && poll (fds, n, 0) > 0)
        for (size_t i = 0; i < n; i++)
            if (fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR))
                s_fail (calls[i], 499, "The client closed the connection.", NULL,
                        "client_closed_request");
    free (fds);
    free (calls);
}

static ar_mono_ms s_next_deadline (ar_edge_t *self)
{
    s_call_t *waiting = zlistx_first (self->waits);
    ar_mono_ms next = waiting ? waiting->wait_due : INT64_MAX;
    for (int kind = 0; kind < STAGE_COUNT; kind++) {
        s_stage_t *head = zlistx_first (self->timers[kind]);
        if (head && head->deadline < next)
            next = head->deadline;
    }
    return next;
}

int ar_edge_run (ar_edge_t *self)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    int mhd_fd = info->epoll_fd, optimizer_fd = -1;
    if (self->optimizer_daemon) {
        info = MHD_get_daemon_info (self->optimizer_daemon, MHD_DAEMON_INFO_EPOLL_FD);
        optimizer_fd = info->epoll_fd;
        printf ("anyray-edge: Optimizer Protocol v1 on http://%s:%u\n", self->config.optimizer_host,
                self->config.optimizer_port);
    }
    printf ("anyray-edge: admin API %s\n", ar_admin_enabled (self->admin)
                                               ? "on (ANYRAY_ADMIN_TOKEN)"
                                               : "off (set ANYRAY_ADMIN_TOKEN to turn it on)");
    printf ("anyray-edge: listening on http://%s:%u\n", self->config.host, self->config.port);
    fflush (stdout);
    while (!zsys_interrupted) {
        ar_mono_ms now = ar_mono_now ();
        int64_t timeout = ar_client_tick (self->client);
        ar_mono_ms deadline = s_next_deadline (self);
        if (deadline != INT64_MAX && deadline - now < timeout)
            timeout = deadline > now ? deadline - now : 0;
        if (ar_spend_outbox_pending (self->spend) && timeout > 100)
            timeout = 100; // held spend rows retry on a 100 ms tick
        MHD_UNSIGNED_LONG_LONG mhd_timeout;
        if (MHD_get_timeout (self->daemon, &mhd_timeout) == MHD_YES &&
            (int64_t)mhd_timeout < timeout)
            timeout = (int64_t)mhd_timeout;
        if (self->optimizer_daemon &&
            MHD_get_timeout (self->optimizer_daemon, &mhd_timeout) == MHD_YES &&
            (int64_t)mhd_timeout < timeout)
            timeout = (int64_t)mhd_timeout;
        zmq_pollitem_t items[3] = {
            {zsock_resolve (ar_client_sock (self->client)), 0, ZMQ_POLLIN, 0},
            {NULL, mhd_fd, ZMQ_POLLIN, 0},
            {NULL, optimizer_fd, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, optimizer_fd >= 0 ? 3 : 2, (long)timeout) == -1 && errno != EINTR)
            break;
        for (int i = 0; i < 8192; i++) {
            ar_msg_t msg;
            ar_recv_result_t rc = ar_client_recv (self->client, &msg);
            if (rc == AR_RECV_INTERRUPTED)
                break;
            if (rc == AR_RECV_OK)
                s_on_reply (self, &msg);
            ar_msg_reset (&msg);
        }
        now = ar_mono_now ();
        for (int kind = 0; kind < STAGE_COUNT; kind++)
            s_expire (self->timers[kind], now);
        s_call_t *waiting;
        while ((waiting = zlistx_first (self->waits)) && waiting->wait_due <= now) {
            zlistx_delete (self->waits, waiting->wait_handle);
            waiting->wait_handle = NULL;
            s_try_begin (waiting);
        }
        ar_spend_outbox_tick (self->spend);
        if (now >= self->next_hangup_check) {
            s_check_hangups (self);
            self->next_hangup_check = now + AR_HANGUP_CHECK_MS;
        }
        bool alive = ar_client_broker_alive (self->client);
        if (self->broker_was_alive && !alive) {
            fprintf (stderr, "anyray-edge: broker silent for three heartbeats\n");
            s_broker_lost (self);
        }
        self->broker_was_alive = alive;
        MHD_run (self->daemon);
        if (self->optimizer_daemon)
            MHD_run (self->optimizer_daemon);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Self-test: configuration and the request classifier. The lifecycle itself runs against
//  real processes in tests/integration.

void ar_edge_test (bool verbose)
{
    (void)verbose;
    char endpoint[256];
    ar_edge_config_t config;
    unsetenv ("ANYRAY_PORT");
    unsetenv ("ANYRAY_OPTIMIZER_TIMEOUT_MS");
    setenv ("ANYRAY_BROKER_ENDPOINT", "ipc:///tmp/ar-edge-test.ipc", 1);
    ar_edge_config_from_env (&config, endpoint, sizeof endpoint);
    assert (config.port == 8787 && config.optimize_timeout_ms == 800);
    assert (strcmp (config.host, "127.0.0.1") == 0);
    assert (config.max_body_bytes == 32u << 20);
    setenv ("ANYRAY_PORT", "9999", 1);
    setenv ("ANYRAY_OPTIMIZER_TIMEOUT_MS", "250", 1);
    ar_edge_config_from_env (&config, endpoint, sizeof endpoint);
    assert (config.port == 9999 && config.optimize_timeout_ms == 250);
    unsetenv ("ANYRAY_PORT");
    unsetenv ("ANYRAY_OPTIMIZER_TIMEOUT_MS");
    unsetenv ("ANYRAY_BROKER_ENDPOINT");

    //  Both SDK base-URL styles reach the same endpoints; everything else is refused.
    ar_optimizer_op_t op = AR_OP_COUNT;
    assert (s_classify ("POST", "/v1/chat/completions", false, &op) == EP_CHAT);
    assert (s_classify ("POST", "/chat/completions", false, &op) == EP_CHAT);
    assert (s_classify ("POST", "/v1/messages", false, &op) == EP_MESSAGES);
    assert (s_classify ("POST", "/messages", false, &op) == EP_MESSAGES);
    assert (s_classify ("POST", "/v1/messages/count_tokens", false, &op) == EP_COUNT_TOKENS);
    assert (s_classify ("POST", "/v1/embeddings", false, &op) == EP_EMBEDDINGS);
    assert (s_classify ("POST", "/v1/completions", false, &op) == EP_COMPLETIONS);
    assert (s_classify ("POST", "/v1/responses", false, &op) == EP_RESPONSES);
    assert (s_classify ("GET", "/v1/messages", false, &op) == EP_BAD_METHOD);
    assert (s_classify ("POST", "/v1/messages/x", false, &op) == EP_NOT_FOUND);
    assert (s_classify ("GET", "/v1/chat/completions", false, &op) == EP_BAD_METHOD);
    assert (s_classify ("GET", "/v1/models", false, &op) == EP_MODELS);
    assert (s_classify ("GET", "/models", false, &op) == EP_MODELS);
    assert (s_classify ("GET", "/healthz", false, &op) == EP_HEALTH);
    assert (s_classify ("POST", "/v1/chat/completions/x", false, &op) == EP_NOT_FOUND);
    assert (s_classify ("GET", "/", false, &op) == EP_NOT_FOUND);
    assert (s_classify ("PUT", "/admin/optimizer/settings", false, &op) == EP_ADMIN);
    assert (s_classify ("POST", "/v1/optimize", false, &op) == EP_NOT_FOUND);
    //  The optimizer port: the protocol, health and admin, and nothing of the SDK surface.
    assert (s_classify ("POST", "/v1/optimize", true, &op) == EP_OPTIMIZER && op == AR_OP_OPTIMIZE);
    assert (s_classify ("POST", "/v1/retrieve", true, &op) == EP_OPTIMIZER && op == AR_OP_RETRIEVE);
    assert (s_classify ("GET", "/v1/optimize", true, &op) == EP_BAD_METHOD);
    assert (s_classify ("POST", "/v1/chat/completions", true, &op) == EP_NOT_FOUND);
    assert (s_classify ("GET", "/healthz", true, &op) == EP_HEALTH);
    assert (s_classify ("GET", "/admin/audit", true, &op) == EP_ADMIN);

    //  A bad bind address is refused cleanly.
    config.host = "not-an-address";
    config.admin_token = NULL;
    config.broker_endpoint = "inproc://ar-edge-test";
    ar_edge_t *edge = ar_edge_new (&config);
    assert (edge == NULL);
}
