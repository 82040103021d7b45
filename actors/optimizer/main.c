/*  anyray-optimizer: the OPTIMIZE service as its own process. */
#include "ar_optimizer.h"
#include "ar_env.h"

int main (void)
{
    ar_actor_ops_t ops = {
        .service = "optimizer",
        .credit = (uint16_t)ar_env_int ("ANYRAY_OPTIMIZER_CREDIT", 64, 1, 65535),
        .on_request = ar_optimizer_handle,
    };
    ar_actor_t *actor = ar_actor_new (&ops);
    if (!actor)
        return 1;
    ar_actor_run (actor);
    ar_actor_destroy (&actor);
    return 0;
}
