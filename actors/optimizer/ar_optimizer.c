/*  ar_optimizer: the OPTIMIZE service (see the header). */
#include "ar_optimizer.h"
#include "ar_chat_view.h"
#include "ar_content_key.h"
#include "ar_env.h"
#include "ar_json_fast.h"
#include "ar_optimizer_settings.h"
#include "ar_retrieve_tool.h"
#include "ar_stash.h"
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_SWEEP_MS    60000 // expired stash rows are deleted this often
#define S_REPLY_SLACK 5     // ms kept back from the deadline to ship the reply in time

struct ar_optimizer_t {
    ar_optimizer_settings_t *settings;
    ar_tokenizer_t *tokenizer;
    ar_content_key_t *key;
    ar_stash_t *stash;
    ar_stash_sink_t sink;
    ar_optimize_counters_t counters;
    ar_mono_ms next_sweep;
};

//  --------------------------------------------------------------------------
//  ANYRAY_FAULT_STRATEGY: a test-only stand-in that misbehaves, to prove fail-open end to end.

static struct {
    char kind[64];
    bool stall;
} s_fault;

static int s_fault_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *res)
{
    (void)params;
    json_object_del (ctx->request, "messages"); // damage the runner must undo
    json_object_set_new (ctx->request, "anyray_fault", json_true ());
    res->applied = true;
    snprintf (res->note, sizeof res->note, "injected fault");
    if (!s_fault.stall)
        return -1;
    ar_mono_ms now = ar_mono_now ();
    ar_mono_ms wait = ctx->deadline > now ? ctx->deadline - now + 5 : 5;
    struct timespec pause = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
    nanosleep (&pause, NULL);
    return 0;
}

static const ar_strategy_t s_fault_strategy = {"fault", s_fault_apply};

static void s_fault_from_env (void)
{
    const char *spec = getenv ("ANYRAY_FAULT_STRATEGY");
    const char *colon = spec ? strchr (spec, ':') : NULL;
    s_fault.kind[0] = 0;
    if (!colon || (size_t)(colon - spec) >= sizeof s_fault.kind)
        return;
    snprintf (s_fault.kind, sizeof s_fault.kind, "%.*s", (int)(colon - spec), spec);
    s_fault.stall = strcmp (colon + 1, "stall") == 0;
    fprintf (stderr, "anyray-optimizer: ANYRAY_FAULT_STRATEGY makes %s %s (testing only)\n",
             s_fault.kind, s_fault.stall ? "stall" : "fail");
}

//  --------------------------------------------------------------------------

ar_optimizer_t *ar_optimizer_new (const char *data_dir, char *error, size_t error_size)
{
    ar_optimizer_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    char db[1024];
    snprintf (db, sizeof db, "%s/anyray.db", data_dir);
    const char *why = NULL;
    self->settings = ar_optimizer_settings_new (db, error, error_size);
    self->tokenizer = self->settings ? ar_tokenizer_new () : NULL;
    self->key = self->tokenizer ? ar_content_key_new (data_dir, &why) : NULL;
    if (self->key) {
        uint32_t ttl =
            (uint32_t)ar_env_int ("ANYRAY_STASH_TTL_SECONDS", 86400, 1, AR_STASH_TTL_MAX);
        self->stash = ar_stash_open (db, ar_content_key_bytes (self->key), ttl, &why);
    }
    if (!self->settings || !self->tokenizer || !self->key || !self->stash) {
        if (self->settings)
            snprintf (error, error_size, "%s", why ? why : "cannot load the tokenizer");
        ar_optimizer_destroy (&self);
        return NULL;
    }
    self->sink = ar_stash_sink (self->stash);
    s_fault_from_env ();
    return self;
}

void ar_optimizer_destroy (ar_optimizer_t **self_p)
{
    ar_optimizer_t *self = *self_p;
    if (!self)
        return;
    ar_stash_destroy (&self->stash);
    ar_content_key_destroy (&self->key);
    ar_tokenizer_destroy (&self->tokenizer);
    ar_optimizer_settings_destroy (&self->settings);
    free (self);
    *self_p = NULL;
}

int ar_optimizer_poll (ar_optimizer_t *self)
{
    ar_mono_ms now = ar_mono_now ();
    if (now >= self->next_sweep) {
        ar_stash_sweep (self->stash);
        self->next_sweep = now + S_SWEEP_MS;
    }
    return ar_optimizer_settings_poll (self->settings);
}

int64_t ar_optimizer_config_version (ar_optimizer_t *self)
{
    return ar_optimizer_settings_version (self->settings);
}

//  --------------------------------------------------------------------------
//  Replies

static int s_error (char **reply, size_t *reply_len, int status, const char *type,
                    const char *message, const char *param)
{
    *reply = ar_optimizer_error_body (type, message, param);
    *reply_len = *reply ? strlen (*reply) : 0;
    return *reply ? status : 500;
}

//  head (a JSON object's text) with one more member, whose value is len raw bytes.
static char *s_with_member (char *head, const char *name, const char *value, size_t len,
                            size_t *out_len)
{
    size_t head_len = strlen (head), name_len = strlen (name);
    char *out = head ? malloc (head_len + name_len + len + 8) : NULL;
    if (out) {
        size_t n = head_len - 1; // without the closing brace
        memcpy (out, head, n);
        out[n++] = head_len > 2 ? ',' : ' ';
        out[n++] = '"';
        memcpy (out + n, name, name_len);
        n += name_len;
        out[n++] = '"';
        out[n++] = ':';
        memcpy (out + n, value, len);
        n += len;
        out[n++] = '}';
        out[n] = 0;
        *out_len = n;
    }
    free (head);
    return out;
}

//  The facts the targeting rules match on, from the message and the request.
static void s_facts (const ar_optimizer_message_t *msg, const json_t *request,
                     ar_request_facts_t *facts, ar_fact_pair_t *pairs, size_t max)
{
    memset (facts, 0, sizeof *facts);
    facts->endpoint = msg->endpoint;
    facts->model = json_string_value (json_object_get (request, "model"));
    facts->user = ar_optimizer_message_meta (msg, "user");
    facts->team = ar_optimizer_message_meta (msg, "team");
    const char *key;
    json_t *value;
    size_t n = 0;
    json_object_foreach (msg->metadata, key, value)
    {
        if (n == max)
            break;
        pairs[n++] = (ar_fact_pair_t){key, json_string_value (value)};
    }
    facts->metadata = pairs;
    facts->metadata_count = n;
}

static int s_optimize (ar_optimizer_t *self, const ar_optimizer_message_t *msg, ar_mono_ms deadline,
                       char **reply, size_t *reply_len)
{
    //  The broker's ar_json_scan already validated the request, so the fast loader (the same
    //  DOM as jansson, several times faster) reads it; jansson reads it only when that fails,
    //  for its error text (and, should the two ever disagree, its DOM).
    json_error_t jerr;
    json_t *request = ar_json_fast_load (msg->request, msg->request_len, 0);
    if (!request)
        request = json_loadb (msg->request, msg->request_len, 0, &jerr);
    if (!request) {
        char message[256];
        snprintf (message, sizeof message, "request cannot be read: %s", jerr.text);
        return s_error (reply, reply_len, 400, "invalid_request_error", message, "request");
    }
    char why[256];
    if (ar_chat_view_validate (msg->shape, request, why, sizeof why) != 0) {
        json_decref (request);
        char message[400];
        snprintf (message, sizeof message, "request is not a valid %s request: %s",
                  msg->shape == AR_SHAPE_OPENAI_CHAT ? "openai.chat" : "anthropic.messages", why);
        return s_error (reply, reply_len, 400, "invalid_request_error", message, "request");
    }
    ar_request_facts_t facts;
    ar_fact_pair_t pairs[64];
    s_facts (msg, request, &facts, pairs, 64);
    ar_pipeline_t *pipeline =
        ar_optimizer_config_resolve (ar_optimizer_settings_config (self->settings), &facts);
    ar_optimize_step_t steps[AR_OPTIMIZE_STEPS_MAX];
    size_t count = 0;
    for (size_t i = 0; pipeline && i < ar_pipeline_size (pipeline) && count < AR_OPTIMIZE_STEPS_MAX;
         i++) {
        const ar_strategy_info_t *info = ar_pipeline_strategy (pipeline, i);
        const ar_strategy_t *strategy = info->available ? info->strategy : NULL;
        if (strategy && *s_fault.kind && strcmp (s_fault.kind, info->kind) == 0)
            strategy = &s_fault_strategy;
        steps[count++] =
            (ar_optimize_step_t){info->kind, strategy, ar_pipeline_params (pipeline, i)};
    }
    ar_mono_ms now = ar_mono_now ();
    if (msg->budget_ms && now + msg->budget_ms < deadline)
        deadline = now + msg->budget_ms;
    //  A tenth of what is left (at least S_REPLY_SLACK) is kept back to ship the reply: a step
    //  that overruns the pipeline's deadline is undone and the answer still arrives in time.
    ar_mono_ms reserve = (deadline - now) / 10;
    if (reserve < S_REPLY_SLACK)
        reserve = S_REPLY_SLACK;
    ar_strategy_ctx_t ctx = {
        .shape = msg->shape,
        .request = request,
        .endpoint = msg->endpoint,
        .model = facts.model,
        .tokenizer = self->tokenizer,
        .stash = &self->sink,
        .deadline = deadline - reserve,
    };
    //  One stash transaction for the whole pipeline: an agent request can stash dozens of
    //  originals (a cut reasoning turn, a capped result each), and one commit costs what each
    //  of them would. Should the commit fail, the markers would name ids nobody can read back:
    //  the request goes on unchanged then (fail-open, as for any error).
    ar_optimize_report_t report;
    bool batched = ar_stash_begin (self->stash) == 0;
    int rc = pipeline ? ar_optimize_run_steps (steps, count, &ctx, &report) : -1;
    if (batched && ar_stash_commit (self->stash) != 0 && rc == 0 && report.stash_id_count) {
        json_decref (request);
        ar_pipeline_destroy (&pipeline);
        return s_error (reply, reply_len, 500, "server_error",
                        "the stash could not store the elided originals", NULL);
    }
    char *head = NULL;
    //  Something was elided: the model may be offered the tool that fetches it back (the
    //  tool's own tokens count in tokensAfter).
    int max_calls = 0;
    bool offered = false;
    if (rc == 0 && report.stash_id_count &&
        ar_optimizer_config_retrieve_tool (ar_optimizer_settings_config (self->settings),
                                           &max_calls) &&
        ar_retrieve_tool_offer (msg->shape, request)) {
        offered = true;
        report.tokens_after = ar_chat_view_count_tokens (msg->shape, request, self->tokenizer);
    }
    if (rc == 0) {
        ar_optimize_counters_add (&self->counters, &report);
        json_t *top = json_pack ("{s:b, s:b, s:n}", "changed", report.changed, "cacheHit", 0,
                                 "cachedResponse");
        if (top && offered)
            json_object_set_new (top, "retrieveTool", json_pack ("{s:i}", "maxCalls", max_calls));
        json_t *parts = ar_optimize_report_json (&report);
        if (top && parts && json_object_update (top, parts) == 0)
            head = json_dumps (top, JSON_COMPACT | JSON_REAL_PRECISION (6));
        json_decref (top);
        json_decref (parts);
    }
    ar_pipeline_destroy (&pipeline);
    if (!head) {
        json_decref (request);
        return s_error (reply, reply_len, 500, "server_error", "the optimizer ran out of memory",
                        NULL);
    }
    //  "request" goes last, so a reader can take it as one span; unchanged, it is the caller's
    //  own bytes, spliced in without a re-serialization. Changed, reals are written shortest
    //  (0.7 stays 0.7, where jansson writes 0.69999999999999996).
    size_t changed_len = 0;
    char *changed = report.changed ? ar_json_fast_dump (request, &changed_len) : NULL;
    json_decref (request);
    if (report.changed && !changed) {
        free (head);
        return s_error (reply, reply_len, 500, "server_error", "the optimizer ran out of memory",
                        NULL);
    }
    *reply = s_with_member (head, "request", changed ? changed : msg->request,
                            changed ? changed_len : msg->request_len, reply_len);
    free (changed);
    return *reply ? 200 : 500;
}

static int s_retrieve (ar_optimizer_t *self, const ar_optimizer_message_t *msg, char **reply,
                       size_t *reply_len)
{
    size_t len = 0;
    char *content = ar_stash_get (self->stash, msg->id, &len);
    if (!content)
        return s_error (reply, reply_len, 404, "not_found_error",
                        "Nothing is stashed under this id: it is unknown or has expired.", "id");
    json_t *body = json_pack ("{s:s, s:s%, s:s}", "id", msg->id, "content", content, len,
                              "contentType", "application/json");
    free (content);
    *reply = body ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    *reply_len = *reply ? strlen (*reply) : 0;
    return *reply ? 200 : 500;
}

//  The model answered a request that offered anyray_retrieve: {"expanded":true,"request":..}
//  to call again, {"expanded":false,"response":..} (the caller's calls without ours), or
//  {"expanded":false} (nothing of ours: the response stands).
static int s_expand (ar_optimizer_t *self, const ar_optimizer_message_t *msg, char **reply,
                     size_t *reply_len)
{
    json_t *request = ar_json_fast_load (msg->request, msg->request_len, 0);
    json_t *response = ar_json_fast_load (msg->response, msg->response_len, 0);
    json_t *stripped = NULL;
    ar_expand_t what = request && response ? ar_retrieve_tool_expand (msg->shape, request, response,
                                                                      self->stash, &stripped)
                                           : AR_EXPAND_NONE;
    const json_t *part = what == AR_EXPAND_CONTINUE   ? request
                         : what == AR_EXPAND_STRIPPED ? stripped
                                                      : NULL;
    size_t part_len = 0;
    char *text = part ? ar_json_fast_dump (part, &part_len) : NULL;
    char *head =
        strdup (what == AR_EXPAND_CONTINUE ? "{\"expanded\":true}" : "{\"expanded\":false}");
    if (text)
        *reply = s_with_member (head, what == AR_EXPAND_CONTINUE ? "request" : "response", text,
                                part_len, reply_len);
    else {
        *reply = head;
        *reply_len = head ? strlen (head) : 0;
    }
    free (text);
    json_decref (stripped);
    json_decref (request);
    json_decref (response);
    return *reply ? 200 : 500;
}

//  True when kind runs for this message under the running config.
static bool s_enabled_for (ar_optimizer_t *self, const ar_optimizer_message_t *msg,
                           const char *kind)
{
    json_t *request = msg->request ? json_loadb (msg->request, msg->request_len, 0, NULL) : NULL;
    ar_request_facts_t facts;
    ar_fact_pair_t pairs[64];
    s_facts (msg, request, &facts, pairs, 64);
    ar_pipeline_t *pipeline =
        ar_optimizer_config_resolve (ar_optimizer_settings_config (self->settings), &facts);
    bool found = false;
    for (size_t i = 0; pipeline && i < ar_pipeline_size (pipeline); i++)
        found |= strcmp (ar_pipeline_kind (pipeline, i), kind) == 0;
    ar_pipeline_destroy (&pipeline);
    json_decref (request);
    return found;
}

int ar_optimizer_answer (ar_optimizer_t *self, ar_optimizer_op_t op, const char *body, size_t len,
                         ar_mono_ms deadline, char **reply, size_t *reply_len)
{
    *reply = NULL;
    *reply_len = 0;
    ar_optimizer_message_t msg;
    char param[128], error[256];
    if (ar_optimizer_message_parse (op, body, len, &msg, param, sizeof param, error,
                                    sizeof error) != 0)
        return s_error (reply, reply_len, 400, "invalid_request_error", error, param);
    int status = 500;
    if (op == AR_OP_OPTIMIZE)
        status = s_optimize (self, &msg, deadline, reply, reply_len);
    else if (op == AR_OP_RETRIEVE)
        status = s_retrieve (self, &msg, reply, reply_len);
    else if (op == AR_OP_EXPAND)
        status = s_expand (self, &msg, reply, reply_len);
    else if (op == AR_OP_OPTIMIZE_RESPONSE) {
        //  No response strategy is built yet: the response goes back as it came.
        char *head = strdup ("{\"changed\":false,\"applied\":[],\"skipped\":[]}");
        *reply = s_with_member (head, "response", msg.response, msg.response_len, reply_len);
        status = *reply ? 200 : 500;
    } else {
        //  Write-back feeds semantic_cache, which is not built yet: say so, store nothing.
        const char *reason = s_enabled_for (self, &msg, "semantic_cache")
                                 ? "semantic_cache is not available in this build"
                                 : "semantic_cache is not enabled for this request";
        json_t *out = json_pack ("{s:b, s:s}", "stored", 0, "reason", reason);
        *reply = out ? json_dumps (out, JSON_COMPACT) : NULL;
        json_decref (out);
        *reply_len = *reply ? strlen (*reply) : 0;
        status = *reply ? 200 : 500;
    }
    ar_optimizer_message_release (&msg);
    return status;
}

char *ar_optimizer_counters_json (ar_optimizer_t *self)
{
    json_t *kinds = json_object ();
    for (size_t k = 0; k < ar_strategy_registry_count (); k++)
        json_object_set_new (kinds, ar_strategy_registry_at (k)->kind,
                             json_pack ("{s:I, s:I, s:I, s:I, s:I}", "runs",
                                        (json_int_t)self->counters.runs[k], "applied",
                                        (json_int_t)self->counters.applied[k], "failed",
                                        (json_int_t)self->counters.failed[k], "overran",
                                        (json_int_t)self->counters.overran[k], "unavailable",
                                        (json_int_t)self->counters.unavailable[k]));
    json_t *out =
        json_pack ("{s:I, s:o}", "configVersion",
                   (json_int_t)ar_optimizer_settings_version (self->settings), "strategies", kinds);
    char *text = out ? json_dumps (out, JSON_COMPACT) : NULL;
    json_decref (out);
    return text;
}

void ar_optimizer_handle (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    ar_optimizer_t *self = arg;
    int op = ar_optimizer_op_from_kind (job->env.kind);
    if (op < 0) {
        ar_actor_error (actor, &job, 400, "unknown optimizer operation");
        return;
    }
    char *reply = NULL;
    size_t reply_len = 0;
    int status = ar_optimizer_answer (
        self, (ar_optimizer_op_t)op, job->body ? (const char *)zframe_data (job->body) : NULL,
        job->body ? zframe_size (job->body) : 0, job->deadline, &reply, &reply_len);
    ar_envelope_set_status (&job->reply, (uint16_t)status, status == 200 ? "ok" : "refused");
    if (ar_actor_end (actor, &job, reply, reply_len) != 0)
        ar_actor_error (actor, &job, 503, "broker would not take the reply");
    free (reply);
}

//  --------------------------------------------------------------------------
//  Self-test: the four operations against a real store, stash and tokenizer.

static json_t *s_answer_json (ar_optimizer_t *self, ar_optimizer_op_t op, const char *body,
                              int expect)
{
    char *reply = NULL;
    size_t len = 0;
    int status =
        ar_optimizer_answer (self, op, body, strlen (body), ar_mono_now () + 800, &reply, &len);
    if (status != expect)
        fprintf (stderr, "status %d: %.*s\n", status, (int)len, reply);
    assert (status == expect && reply && strlen (reply) == len);
    json_t *out = json_loads (reply, 0, NULL);
    assert (out);
    free (reply);
    return out;
}

void ar_optimizer_test (bool verbose)
{
    (void)verbose;
    char dir[] = "/tmp/ar_optimizer_test.XXXXXX", error[512];
    assert (mkdtemp (dir));
    unsetenv ("ANYRAY_OPTIMIZER_CONFIG");
    unsetenv ("ANYRAY_CONTENT_KEY");
    unsetenv ("ANYRAY_FAULT_STRATEGY");
    ar_optimizer_t *self = ar_optimizer_new (dir, error, sizeof error);
    assert (self && ar_optimizer_config_version (self) == 1);

    //  The default pipeline clamps max_tokens; the reply says what ran, and what was skipped.
    const char *clamp = "{\"endpoint\":\"/v1/chat/completions\",\"request\":{\"model\":\"gpt-4o\","
                        "\"max_tokens\":8192,\"temperature\":0.7,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"Summarize this changelog\"}]}}";
    json_t *out = s_answer_json (self, AR_OP_OPTIMIZE, clamp, 200);
    assert (json_is_true (json_object_get (out, "changed")));
    assert (json_is_false (json_object_get (out, "cacheHit")));
    assert (json_is_null (json_object_get (out, "cachedResponse")));
    json_t *request = json_object_get (out, "request");
    assert (json_integer_value (json_object_get (request, "max_tokens")) == 4096);
    assert (json_real_value (json_object_get (request, "temperature")) == 0.7);
    size_t i;
    json_t *row;
    bool tuned = false;
    json_array_foreach (json_object_get (out, "applied"), i, row)
    {
        assert (json_is_integer (json_object_get (row, "tokensBefore")));
        tuned |= strcmp (json_string_value (json_object_get (row, "kind")), "param_tuning") == 0;
    }
    assert (tuned && json_is_array (json_object_get (out, "skipped")));
    assert (json_integer_value (json_object_get (out, "tokensBefore")) > 0);
    json_decref (out);

    //  Unchanged: the caller's own bytes come back, byte for byte, as the last member.
    const char *plain = "{\"endpoint\":\"/v1/messages\",\"request\":{\"model\":\"claude\","
                        "\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"hi  "
                        "\\u00e9\"}]}}";
    char *reply = NULL;
    size_t len = 0;
    assert (ar_optimizer_answer (self, AR_OP_OPTIMIZE, plain, strlen (plain), ar_mono_now () + 800,
                                 &reply, &len) == 200);
    assert (strstr (reply, "\"changed\":false"));
    const char *span = strstr (plain, "\"request\":");
    assert (len > strlen (span) && strcmp (reply + len - strlen (span), span) == 0);
    free (reply);

    //  A wrong message or an invalid provider request is a 400 naming the member.
    out = s_answer_json (self, AR_OP_OPTIMIZE, "{\"endpoint\":\"/v1/chat/completions\"}", 400);
    assert (strcmp (json_string_value (json_object_get (json_object_get (out, "error"), "param")),
                    "request") == 0);
    json_decref (out);
    out =
        s_answer_json (self, AR_OP_OPTIMIZE,
                       "{\"endpoint\":\"/v1/chat/completions\",\"request\":{\"messages\":7}}", 400);
    json_decref (out);

    //  Fail-open in the actor: a strategy that corrupts and fails, or stalls past the deadline,
    //  leaves the request as it came and is counted.
    const char *modes[] = {"param_tuning:fail", "param_tuning:stall"};
    for (int m = 0; m < 2; m++) {
        setenv ("ANYRAY_FAULT_STRATEGY", modes[m], 1);
        s_fault_from_env ();
        out = s_answer_json (self, AR_OP_OPTIMIZE, clamp, 200);
        request = json_object_get (out, "request");
        assert (json_integer_value (json_object_get (request, "max_tokens")) == 8192);
        assert (json_object_get (request, "messages") &&
                !json_object_get (request, "anyray_fault"));
        bool seen = false;
        json_array_foreach (json_object_get (out, "skipped"), i,
                            row) if (strcmp (json_string_value (json_object_get (row, "kind")),
                                             "param_tuning") == 0) seen =
            strcmp (json_string_value (json_object_get (row, "reason")),
                    m == 0 ? "failed" : "overran") == 0;
        assert (seen);
        json_decref (out);
    }
    unsetenv ("ANYRAY_FAULT_STRATEGY");
    s_fault_from_env ();
    char *stats = ar_optimizer_counters_json (self);
    json_t *root = json_loads (stats, 0, NULL);
    json_t *tuning = json_object_get (json_object_get (root, "strategies"), "param_tuning");
    assert (json_integer_value (json_object_get (tuning, "failed")) == 1);
    assert (json_integer_value (json_object_get (tuning, "overran")) == 1);
    assert (json_integer_value (json_object_get (tuning, "applied")) >= 1);
    json_decref (root);
    free (stats);

    //  window_budget crops and stashes; /v1/retrieve gives the original back; unknown ids 404.
    json_t *messages = json_array ();
    json_array_append_new (messages,
                           json_pack ("{s:s, s:s}", "role", "system", "content", "Be brief."));
    for (int turn = 0; turn < 40; turn++) {
        char text[600];
        memset (text, 'a' + turn % 26, 500);
        snprintf (text + 500, 100, " turn %d", turn);
        json_array_append_new (
            messages,
            json_pack ("{s:s, s:s}", "role", turn % 2 ? "assistant" : "user", "content", text));
    }
    json_array_append_new (messages,
                           json_pack ("{s:s, s:s}", "role", "user", "content", "And now?"));
    json_t *msg = json_pack ("{s:s, s:{s:s, s:o}}", "endpoint", "/v1/chat/completions", "request",
                             "model", "gpt-4o", "messages", messages);
    const char *small_budget = "{\"strategies\":[{\"kind\":\"window_budget\",\"enabled\":true,"
                               "\"params\":{\"maxTokens\":1000}}]}";
    assert (ar_optimizer_settings_put (self->settings, small_budget, strlen (small_budget), "test",
                                       NULL, error, sizeof error) == 0);
    char *text = json_dumps (msg, JSON_COMPACT);
    out = s_answer_json (self, AR_OP_OPTIMIZE, text, 200);
    assert (!json_object_get (out, "retrieveTool")); // off unless the config says so
    json_t *ids = json_object_get (out, "stashIds");
    assert (json_is_true (json_object_get (out, "changed")) && json_array_size (ids) == 1);
    assert (json_integer_value (json_object_get (out, "tokensAfter")) <= 1000);
    char body[128];
    snprintf (body, sizeof body, "{\"id\":\"%s\"}", json_string_value (json_array_get (ids, 0)));
    json_decref (out);
    out = s_answer_json (self, AR_OP_RETRIEVE, body, 200);
    json_t *original = json_loads (json_string_value (json_object_get (out, "content")), 0, NULL);
    assert (original && strstr (json_string_value (json_object_get (out, "content")), "turn 3"));
    json_decref (original);
    json_decref (out);
    out =
        s_answer_json (self, AR_OP_RETRIEVE, "{\"id\":\"00000000000000000000000000000000\"}", 404);
    json_decref (out);

    //  With retrieveTool on, the model is offered anyray_retrieve; when it calls it, expand
    //  appends the call and the stashed original, and the request goes round again.
    const char *with_tool = "{\"strategies\":[{\"kind\":\"window_budget\",\"enabled\":true,"
                            "\"params\":{\"maxTokens\":1000}}],\"retrieveTool\":{\"enabled\":true,"
                            "\"maxCalls\":2}}";
    assert (ar_optimizer_settings_put (self->settings, with_tool, strlen (with_tool), "test", NULL,
                                       error, sizeof error) == 0);
    out = s_answer_json (self, AR_OP_OPTIMIZE, text, 200);
    free (text);
    json_decref (msg);
    assert (json_integer_value (
                json_object_get (json_object_get (out, "retrieveTool"), "maxCalls")) == 2);
    json_t *sent = json_object_get (out, "request");
    json_t *tool = json_array_get (json_object_get (sent, "tools"), 0);
    assert (
        strcmp (json_string_value (json_object_get (json_object_get (tool, "function"), "name")),
                AR_RETRIEVE_TOOL_NAME) == 0);
    const char *stash_id =
        json_string_value (json_array_get (json_object_get (out, "stashIds"), 0));
    char arguments[64];
    snprintf (arguments, sizeof arguments, "{\"id\":\"%s\"}", stash_id);
    json_t *expand =
        json_pack ("{s:s, s:O, s:{s:[{s:i, s:{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}, s:s}]}}",
                   "endpoint", "/v1/chat/completions", "request", sent, "response", "choices",
                   "index", 0, "message", "role", "assistant", "content", "tool_calls", "id",
                   "call_9", "type", "function", "function", "name", AR_RETRIEVE_TOOL_NAME,
                   "arguments", arguments, "finish_reason", "tool_calls");
    json_decref (out);
    text = json_dumps (expand, JSON_COMPACT);
    json_decref (expand);
    out = s_answer_json (self, AR_OP_EXPAND, text, 200);
    free (text);
    assert (json_is_true (json_object_get (out, "expanded")));
    json_t *grown = json_object_get (json_object_get (out, "request"), "messages");
    json_t *last = json_array_get (grown, json_array_size (grown) - 1);
    assert (strcmp (json_string_value (json_object_get (last, "tool_call_id")), "call_9") == 0);
    assert (strstr (json_string_value (json_object_get (last, "content")), "turn 3"));
    json_decref (out);
    out = s_answer_json (self, AR_OP_EXPAND,
                         "{\"endpoint\":\"/v1/chat/completions\",\"request\":{\"messages\":[]},"
                         "\"response\":{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}}",
                         200);
    assert (json_is_false (json_object_get (out, "expanded")) && !json_object_get (out, "request"));
    json_decref (out);

    //  The response path and the write-back answer honestly about what is built.
    out =
        s_answer_json (self, AR_OP_OPTIMIZE_RESPONSE,
                       "{\"endpoint\":\"/v1/chat/completions\",\"response\":{\"id\":\"r1\"}}", 200);
    assert (json_is_false (json_object_get (out, "changed")));
    assert (strcmp (json_string_value (json_object_get (json_object_get (out, "response"), "id")),
                    "r1") == 0);
    json_decref (out);
    out = s_answer_json (self, AR_OP_CACHE,
                         "{\"endpoint\":\"/v1/chat/completions\",\"request\":{},\"response\":{}}",
                         200);
    assert (json_is_false (json_object_get (out, "stored")));
    assert (strstr (json_string_value (json_object_get (out, "reason")), "not enabled"));
    json_decref (out);

    ar_optimizer_destroy (&self);
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
}
