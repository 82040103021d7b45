/*  anyray-provider: the provider actor process.

    Binds the engine (ar_provider) to the actor runtime: jobs and cancels in, replies out, the
    engine's epoll fd watched by the actor loop, its one timer on the actor's timer.

    Environment: ANYRAY_PROVIDER_CREDIT (requests taken at once, default 8192),
    ANYRAY_PROVIDER_KEY_<SLUG> (server-held keys), ANYRAY_PROVIDER_CA_FILE (private CA bundle),
    ANYRAY_DATA_DIR (where anyray.db holds the keys an admin sets at runtime, which win) with
    ANYRAY_CONFIG_POLL_MS (how often they are read, 250), ANYRAY_CONTENT_KEY (their encryption
    key, else <data dir>/content.key), and what the runtime reads (broker endpoint).
*/
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <curl/curl.h>
#include "ar_actor.h"
#include "ar_env.h"
#include "ar_provider.h"

typedef struct {
    ar_actor_t *actor;
    ar_provider_t *provider;
    ar_mono_ms early_due; // a timer the engine set before the actor existed; -1 none
} s_ctx_t;

static int s_chunk (void *arg, ar_job_t *job, const void *data, size_t len)
{
    s_ctx_t *ctx = arg;
    return ar_actor_chunk (ctx->actor, job, data, len);
}

static int s_end (void *arg, ar_job_t **job_p, const void *data, size_t len)
{
    s_ctx_t *ctx = arg;
    return ar_actor_end (ctx->actor, job_p, data, len);
}

static int s_error (void *arg, ar_job_t **job_p, uint16_t code, const char *reason)
{
    s_ctx_t *ctx = arg;
    return ar_actor_error (ctx->actor, job_p, code, reason);
}

static void s_on_timer (ar_actor_t *actor, void *arg)
{
    s_ctx_t *ctx = arg;
    if (ctx->provider)
        ar_provider_timer (ctx->provider);
}

static void s_set_timer (void *arg, ar_mono_ms due)
{
    s_ctx_t *ctx = arg;
    if (ctx->actor)
        ar_actor_set_timer (ctx->actor, due, s_on_timer);
    else
        ctx->early_due = due; // the first poll of the runtime keys, set by ar_provider_new
}

static void s_on_ready (ar_actor_t *actor, int fd, short revents, void *arg)
{
    s_ctx_t *ctx = arg;
    if (ctx->provider)
        ar_provider_ready (ctx->provider);
}

static void s_on_request (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    s_ctx_t *ctx = arg;
    ar_provider_request (ctx->provider, job);
}

static void s_on_cancel (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    s_ctx_t *ctx = arg;
    if (ctx->provider)
        ar_provider_cancel (ctx->provider, job);
}

//  Every call in flight may hold a socket: take all the descriptors we are allowed.
static rlim_t s_raise_nofile (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit))
        return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit (RLIMIT_NOFILE, &limit);
        getrlimit (RLIMIT_NOFILE, &limit);
    }
    return limit.rlim_cur;
}

int main (int argc, char *argv[])
{
    if (argc > 1) {
        fprintf (stderr, "usage: anyray-provider\n"
                         "  ANYRAY_PROVIDER_CREDIT=n        requests taken at once (8192)\n"
                         "  ANYRAY_PROVIDER_KEY_<SLUG>=key  server-held provider key\n"
                         "  ANYRAY_PROVIDER_CA_FILE=path    CA bundle for TLS upstreams\n"
                         "  ANYRAY_DATA_DIR=dir             anyray.db with the runtime keys\n"
                         "  ANYRAY_CONFIG_POLL_MS=n         how often they are read (250)\n"
                         "  ANYRAY_CONTENT_KEY=hex          their encryption key\n");
        return strcmp (argv[1], "--help") == 0 ? 0 : 2;
    }
    rlim_t files = s_raise_nofile ();
    uint16_t credit = (uint16_t)ar_env_int ("ANYRAY_PROVIDER_CREDIT", 8192, 1, 65535);
    if (files && files < (rlim_t)credit + 64)
        fprintf (stderr, "anyray-provider: only %llu descriptors for a credit of %u\n",
                 (unsigned long long)files, credit);
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf (stderr, "anyray-provider: curl_global_init failed\n");
        return 1;
    }
    s_ctx_t ctx = {.early_due = -1};
    ar_provider_host_t host = {
        .arg = &ctx, .chunk = s_chunk, .end = s_end, .error = s_error, .set_timer = s_set_timer};
    //  Without a data dir the environment's keys serve alone (ar_provider_new warns).
    const char *data_dir = ar_env_data_dir ();
    if (!data_dir)
        fprintf (stderr, "anyray-provider: no data dir: runtime provider keys are off\n");
    ctx.provider = ar_provider_new (&host, data_dir);
    if (!ctx.provider) {
        fprintf (stderr, "anyray-provider: cannot set up curl\n");
        curl_global_cleanup ();
        return 1;
    }
    ar_actor_ops_t ops = {.service = "provider",
                          .credit = credit,
                          .arg = &ctx,
                          .on_request = s_on_request,
                          .on_cancel = s_on_cancel};
    ctx.actor = ar_actor_new (&ops);
    if (!ctx.actor ||
        ar_actor_watch_fd (ctx.actor, ar_provider_fd (ctx.provider), ZMQ_POLLIN, s_on_ready)) {
        fprintf (stderr, "anyray-provider: cannot reach the broker\n");
        ar_actor_destroy (&ctx.actor);
        ar_provider_destroy (&ctx.provider);
        curl_global_cleanup ();
        return 1;
    }
    if (ctx.early_due >= 0)
        ar_actor_set_timer (ctx.actor, ctx.early_due, s_on_timer);
    ar_actor_run (ctx.actor);
    //  Transfers stop first (no reply); the runtime then frees the jobs it still holds.
    ar_provider_destroy (&ctx.provider);
    ar_actor_destroy (&ctx.actor);
    curl_global_cleanup ();
    return 0;
}
