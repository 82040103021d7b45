/*  anyray-broker: binds the broker on ANYRAY_BROKER_ENDPOINT (default ipc in the data dir). */
#include "ar_broker.h"
#include "ar_env.h"
#include <stdio.h>

int main (void)
{
    char endpoint[512];
    ar_env_broker_endpoint (endpoint, sizeof endpoint);
    uint32_t heartbeat = (uint32_t)ar_env_int ("ANYRAY_HEARTBEAT_MS", 500, 50, 60000);
    ar_broker_t *broker = ar_broker_new (endpoint, heartbeat);
    if (!broker)
        return 1;
    printf ("anyray-broker: listening on %s\n", endpoint);
    fflush (stdout);
    ar_broker_run (broker, NULL);
    ar_broker_destroy (&broker);
    return 0;
}
