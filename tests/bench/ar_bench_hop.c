/*  ar_bench_hop: the cost of one broker round trip (client → broker → router actor → broker →
    client) on a running stack, sequential, so the added latency of a gateway call can be split
    into broker round trips and the rest. A call makes two of them before the provider answers
    (OPTIMIZE and ROUTE side by side, then PROVIDE).

    ar_bench_hop [rounds]    (ANYRAY_BROKER_ENDPOINT or ANYRAY_DATA_DIR must name the stack)
*/
#include "ar_client.h"
#include "ar_env.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main (int argc, char *argv[])
{
    int rounds = argc > 1 ? atoi (argv[1]) : 2000;
    if (rounds < 10)
        rounds = 10;
    char endpoint[512];
    ar_env_broker_endpoint (endpoint, sizeof endpoint);
    ar_client_t *client = ar_client_new (endpoint, 500);
    if (!client)
        return 1;
    int64_t *took = calloc ((size_t)rounds, sizeof *took);
    int errors = 0;
    void *socket = zsock_resolve (ar_client_sock (client));
    for (int i = 0; i < rounds + 100; i++) { // the first 100 warm up
        ar_envelope_t env;
        ar_envelope_init (&env);
        ar_envelope_new_id (&env);
        strcpy (env.service, "router");
        strcpy (env.kind, "route");
        env.deadline_ms = ar_wall_now () + 1000;
        int64_t start = ar_mono_us ();
        zframe_t *none = NULL;
        if (ar_client_request (client, &env, &none) != 0) {
            errors++;
            continue;
        }
        bool done = false;
        while (!done) {
            zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
            if (zmq_poll (&item, 1, 1000) <= 0) {
                errors++;
                break;
            }
            ar_msg_t msg;
            while (!done && ar_client_recv (client, &msg) != AR_RECV_INTERRUPTED) {
                if (memcmp (msg.env.id, env.id, AR_ID_LEN) == 0) {
                    done = true;
                    if (msg.cmd != AR_CMD_END)
                        errors++;
                }
                ar_msg_reset (&msg);
            }
        }
        if (i >= 100)
            took[i - 100] = ar_mono_us () - start;
    }
    qsort (took, (size_t)rounds, sizeof *took, s_compare);
    printf ("hop target=broker+router rounds=%d errors=%d rtt_p50_us=%lld rtt_p90_us=%lld "
            "rtt_p99_us=%lld\n",
            rounds, errors, (long long)took[rounds / 2], (long long)took[rounds * 9 / 10],
            (long long)took[rounds * 99 / 100]);
    free (took);
    ar_client_destroy (&client);
    return errors ? 1 : 0;
}
