/*  anyray-edge: the HTTP edge as its own process. */
#include "ar_edge.h"
#include <signal.h>
#include <sys/resource.h>

int main (void)
{
    //  A client gone mid-write must not kill the process.
    signal (SIGPIPE, SIG_IGN);
    //  Thousands of held streams need thousands of descriptors.
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit (RLIMIT_NOFILE, &limit);
    }
    char endpoint[512];
    ar_edge_config_t config;
    ar_edge_config_from_env (&config, endpoint, sizeof endpoint);
    ar_edge_t *edge = ar_edge_new (&config);
    if (!edge)
        return 1;
    ar_edge_run (edge);
    ar_edge_destroy (&edge);
    return 0;
}
