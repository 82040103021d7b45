/*  anyray-router: the ROUTE service as its own process. */
#include "ar_env.h"
#include "ar_router.h"
#include <stdio.h>

static uint32_t s_poll_ms;

//  The shared store is polled on a short timer (one indexed lookup), so an admin's routing
//  change reaches this replica within s_poll_ms with no restart. Versions only: never the
//  config itself in the log.
static void s_on_timer (ar_actor_t *actor, void *arg)
{
    static int last_rc;
    ar_router_t *router = arg;
    int64_t before = ar_router_version (router);
    int rc = ar_router_poll (router);
    if (rc > 0)
        printf ("anyray-router: routing config version %lld -> %lld\n", (long long)before,
                (long long)ar_router_version (router));
    else if (rc < 0 && last_rc >= 0) // once per spell, not every poll
        printf ("anyray-router: the newest routing config cannot be read or loaded; keeping "
                "version %lld\n",
                (long long)before);
    last_rc = rc;
    fflush (stdout);
    ar_actor_set_timer (actor, ar_mono_now () + s_poll_ms, s_on_timer);
}

int main (void)
{
    char error[512], db[4096];
    const char *dir = ar_env_data_dir ();
    int n = dir ? snprintf (db, sizeof db, "%s/anyray.db", dir) : -1;
    if (n < 0 || (size_t)n >= sizeof db) {
        fprintf (stderr, "anyray-router: the data directory (ANYRAY_DATA_DIR) is not usable\n");
        return 1;
    }
    ar_router_t *router = ar_router_new (db, error, sizeof error);
    if (!router) {
        fprintf (stderr, "anyray-router: %s\n", error);
        return 1;
    }
    s_poll_ms = (uint32_t)ar_env_int ("ANYRAY_CONFIG_POLL_MS", 250, 10, 60000);
    ar_actor_ops_t ops = {
        .service = "router", .credit = 256, .arg = router, .on_request = ar_router_handle};
    ar_actor_t *actor = ar_actor_new (&ops);
    if (!actor) {
        ar_router_destroy (&router);
        return 1;
    }
    printf ("anyray-router: routing config version %lld\n", (long long)ar_router_version (router));
    fflush (stdout);
    ar_actor_set_timer (actor, ar_mono_now () + s_poll_ms, s_on_timer);
    ar_actor_run (actor);
    ar_actor_destroy (&actor);
    ar_router_destroy (&router);
    return 0;
}
