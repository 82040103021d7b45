/*  ar_env: ANYRAY_* configuration from the environment. */
#include "ar_env.h"
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *ar_env_str (const char *name, const char *def)
{
    const char *value = getenv (name);
    return value && *value ? value : def;
}

int64_t ar_env_int (const char *name, int64_t def, int64_t min, int64_t max)
{
    const char *value = getenv (name);
    if (!value || !*value)
        return def;
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll (value, &end, 10);
    if (errno || *end || parsed < min || parsed > max) {
        fprintf (stderr, "anyray: ignoring %s=%s (want an integer in [%lld, %lld])\n", name, value,
                 (long long)min, (long long)max);
        return def;
    }
    return parsed;
}

const char *ar_env_data_dir (void)
{
    const char *dir = ar_env_str ("ANYRAY_DATA_DIR", ".anyray-data");
    if (mkdir (dir, 0700) != 0 && errno != EEXIST)
        return NULL;
    return dir;
}

const char *ar_env_broker_endpoint (char *buf, size_t size)
{
    const char *endpoint = ar_env_str ("ANYRAY_BROKER_ENDPOINT", NULL);
    if (endpoint)
        snprintf (buf, size, "%s", endpoint);
    else {
        const char *dir = ar_env_data_dir ();
        snprintf (buf, size, "ipc://%s/broker.ipc", dir ? dir : ".");
    }
    return buf;
}

void ar_env_test (bool verbose)
{
    setenv ("AR_ENV_TEST_INT", "42", 1);
    assert (ar_env_int ("AR_ENV_TEST_INT", 7, 0, 100) == 42);
    assert (ar_env_int ("AR_ENV_TEST_INT", 7, 0, 10) == 7); // out of range
    setenv ("AR_ENV_TEST_INT", "4x", 1);
    assert (ar_env_int ("AR_ENV_TEST_INT", 7, 0, 100) == 7); // not a number
    unsetenv ("AR_ENV_TEST_INT");
    assert (ar_env_int ("AR_ENV_TEST_INT", 7, 0, 100) == 7);
    assert (strcmp (ar_env_str ("AR_ENV_TEST_UNSET", "d"), "d") == 0);
    setenv ("ANYRAY_BROKER_ENDPOINT", "tcp://127.0.0.1:1", 1);
    char buf[256];
    assert (strcmp (ar_env_broker_endpoint (buf, sizeof buf), "tcp://127.0.0.1:1") == 0);
    unsetenv ("ANYRAY_BROKER_ENDPOINT");
    (void)verbose;
}
