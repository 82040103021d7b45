/*  ar_config_path: field paths for config parsers' errors (see the header).
 */
#include "ar_config_path.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>

int ar_config_path_vfail (char *error, size_t size, const char *path, const char *fmt, va_list args)
{
    if (!error || !size)
        return -1;
    int n = snprintf (error, size, "%s: ", path);
    if (n >= 0 && (size_t)n < size)
        vsnprintf (error + n, size - (size_t)n, fmt, args);
    return -1;
}

int ar_config_path_fail (char *error, size_t size, const char *path, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    ar_config_path_vfail (error, size, path, fmt, args);
    va_end (args);
    return -1;
}

//  A path too long for the buffer ends in "..." rather than being cut silently.
static void s_truncated (char *out, int n)
{
    if (n < 0 || n >= AR_CONFIG_PATH_MAX)
        memcpy (out + AR_CONFIG_PATH_MAX - 4, "...", 4);
}

void ar_config_path_join (char *out, const char *path, const char *name)
{
    s_truncated (out, snprintf (out, AR_CONFIG_PATH_MAX, "%s%s%s", path, *path ? "." : "", name));
}

void ar_config_path_index (char *out, const char *path, size_t i)
{
    s_truncated (out, snprintf (out, AR_CONFIG_PATH_MAX, "%s[%zu]", path, i));
}

void ar_config_path_key (char *out, const char *path, const char *key)
{
    int n = snprintf (out, AR_CONFIG_PATH_MAX, "%s[\"", path);
    for (const char *c = key; *c && n > 0 && n < AR_CONFIG_PATH_MAX - 8; c++) {
        if (*c == '"' || *c == '\\')
            out[n++] = '\\';
        out[n++] = *c;
    }
    if (n > 0 && n < AR_CONFIG_PATH_MAX - 3)
        snprintf (out + n, AR_CONFIG_PATH_MAX - (size_t)n, "\"]");
}

const char *ar_config_path_type_of (const json_t *v)
{
    switch (json_typeof (v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

//  --------------------------------------------------------------------------
//  Self-test

void ar_config_path_test (bool verbose)
{
    (void)verbose;
    char path[AR_CONFIG_PATH_MAX], at[AR_CONFIG_PATH_MAX], error[64];
    ar_config_path_join (path, "", "targets");
    ar_config_path_index (at, path, 1);
    ar_config_path_join (path, at, "retry");
    assert (strcmp (path, "targets[1].retry") == 0);
    ar_config_path_key (at, "endpoints", "/v1/\"x\"");
    assert (strcmp (at, "endpoints[\"/v1/\\\"x\\\"\"]") == 0);

    //  An over-long path ends in "...".
    char name[AR_CONFIG_PATH_MAX + 10];
    memset (name, 'a', sizeof name - 1);
    name[sizeof name - 1] = 0;
    ar_config_path_join (path, "top", name);
    assert (strlen (path) == AR_CONFIG_PATH_MAX - 1 &&
            strcmp (path + strlen (path) - 3, "...") == 0);

    assert (ar_config_path_fail (error, sizeof error, "a.b", "must be %s", "x") == -1);
    assert (strcmp (error, "a.b: must be x") == 0);
    assert (ar_config_path_fail (NULL, 0, "a", "nothing") == -1);
    json_t *list = json_array ();
    assert (strcmp (ar_config_path_type_of (list), "a list") == 0);
    json_decref (list);
}
