/*  anyray-router: the ROUTE service as its own process. */
#include "ar_router.h"
#include <stdio.h>

int main (void)
{
    char error[512];
    ar_router_t *router = ar_router_new (NULL, error, sizeof error);
    if (!router) {
        fprintf (stderr, "anyray-router: %s\n", error);
        return 1;
    }
    ar_actor_ops_t ops = {
        .service = "router", .credit = 256, .arg = router, .on_request = ar_router_handle};
    ar_actor_t *actor = ar_actor_new (&ops);
    if (!actor)
        return 1;
    ar_actor_run (actor);
    ar_actor_destroy (&actor);
    ar_router_destroy (&router);
    return 0;
}
