/*  anyray-optimizer: the OPTIMIZE service as its own process. */
#include "ar_env.h"
#include "ar_optimizer.h"
#include "ar_syntax.h"
#include <stdio.h>

static uint32_t s_poll_ms;

//  The store is polled on a short timer (one indexed lookup), so a config change reaches this
//  replica within s_poll_ms with no restart.
static void s_on_timer (ar_actor_t *actor, void *arg)
{
    ar_optimizer_t *optimizer = arg;
    int64_t before = ar_optimizer_config_version (optimizer);
    if (ar_optimizer_poll (optimizer) > 0)
        printf ("anyray-optimizer: config version %lld -> %lld\n", (long long)before,
                (long long)ar_optimizer_config_version (optimizer));
    fflush (stdout);
    ar_actor_set_timer (actor, ar_mono_now () + s_poll_ms, s_on_timer);
}

int main (void)
{
    char error[512];
    ar_optimizer_t *optimizer = ar_optimizer_new (ar_env_data_dir (), error, sizeof error);
    if (!optimizer) {
        fprintf (stderr, "anyray-optimizer: %s\n", error);
        return 1;
    }
    //  The code strategies' parsers and queries, built before the first request needs them.
    ar_syntax_warm ();
    s_poll_ms = (uint32_t)ar_env_int ("ANYRAY_CONFIG_POLL_MS", 250, 10, 60000);
    ar_actor_ops_t ops = {
        .service = "optimizer",
        .credit = (uint16_t)ar_env_int ("ANYRAY_OPTIMIZER_CREDIT", 64, 1, 65535),
        .arg = optimizer,
        .on_request = ar_optimizer_handle,
    };
    ar_actor_t *actor = ar_actor_new (&ops);
    if (!actor) {
        ar_optimizer_destroy (&optimizer);
        return 1;
    }
    printf ("anyray-optimizer: config version %lld\n",
            (long long)ar_optimizer_config_version (optimizer));
    fflush (stdout);
    ar_actor_set_timer (actor, ar_mono_now () + s_poll_ms, s_on_timer);
    ar_actor_run (actor);
    ar_actor_destroy (&actor);
    ar_optimizer_destroy (&optimizer);
    return 0;
}
