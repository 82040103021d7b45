/*  =========================================================================
    anyray-mock-upstream - a local stand-in for the OpenAI API

    Every test and benchmark talks to this instead of the real provider.

    Usage: anyray-mock-upstream --port P [--host 127.0.0.1] [--key KEY]
               [--latency-ms N] [--chunk-delay-ms N] [--chunks N] [--threads N]
               [--verbose]

    Prints "mock-upstream listening on HOST:PORT" once ready (--port 0 picks
    a free port) and exits cleanly on SIGINT or SIGTERM. See mock_server.h
    for the routes and mock_control.h for the per-request "[mock ...]"
    switches.
    =========================================================================
*/
#include "mock_server.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void s_usage (FILE *out)
{
    fprintf (out, "usage: anyray-mock-upstream --port P [--host 127.0.0.1] [--key KEY]\n"
                  "           [--latency-ms N] [--chunk-delay-ms N] [--chunks N]\n"
                  "           [--threads N] [--verbose]\n");
}

//  Parse a whole decimal in [min, max]
static bool s_int (const char *text, int min, int max, int *value)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    long n = strtol (text, &end, 10);
    if (errno || *end || n < min || n > max)
        return false;
    *value = (int)n;
    return true;
}

//  Thousands of open streams need thousands of descriptors
static void s_raise_fd_limit (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit (RLIMIT_NOFILE, &limit);
    }
}

int main (int argc, char *argv[])
{
    mock_config_t config = {.host = "127.0.0.1", .port = -1, .threads = 2};
    mock_control_init (&config.defaults);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage (stdout);
            return 0;
        } else if (strcmp (arg, "--verbose") == 0 || strcmp (arg, "-v") == 0) {
            config.verbose = true;
            continue;
        } else if (strcmp (arg, "--port") == 0)
            ok = s_int (value, 0, 65535, &config.port);
        else if (strcmp (arg, "--host") == 0)
            ok = (config.host = value) != NULL;
        else if (strcmp (arg, "--key") == 0)
            ok = (config.key = value) != NULL && *value;
        else if (strcmp (arg, "--latency-ms") == 0)
            ok = s_int (value, 0, 600000, &config.defaults.latency_ms);
        else if (strcmp (arg, "--chunk-delay-ms") == 0)
            ok = s_int (value, 0, 600000, &config.defaults.chunk_delay_ms);
        else if (strcmp (arg, "--chunks") == 0)
            ok = s_int (value, 0, 100000, &config.defaults.chunks);
        else if (strcmp (arg, "--threads") == 0)
            ok = s_int (value, 1, 256, &config.threads);
        else {
            fprintf (stderr, "anyray-mock-upstream: unknown option %s\n", arg);
            s_usage (stderr);
            return 2;
        }
        if (!ok) {
            fprintf (stderr, "anyray-mock-upstream: bad or missing value for %s\n", arg);
            s_usage (stderr);
            return 2;
        }
        i++;
    }
    if (config.port < 0) {
        fprintf (stderr, "anyray-mock-upstream: --port is required\n");
        s_usage (stderr);
        return 2;
    }
    s_raise_fd_limit ();

    //  Signals go to this thread only; every thread started later inherits
    //  the mask, and MHD writes with MSG_NOSIGNAL but SIGPIPE stays off anyway
    signal (SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);

    mock_server_t *server = mock_server_new (&config);
    if (!server)
        return 1;
    bool v6 = strchr (config.host, ':') != NULL;
    printf ("mock-upstream listening on %s%s%s:%d\n", v6 ? "[" : "", config.host, v6 ? "]" : "",
            mock_server_port (server));
    fflush (stdout);

    int sig = 0;
    while (sigwait (&stop, &sig) != 0)
        ;
    mock_server_destroy (&server);
    return 0;
}
