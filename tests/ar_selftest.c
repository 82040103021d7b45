/*  ar_selftest: runs module self-tests (CZMQ's czmq_selftest shape).
    ar_selftest [--list] [--verbose] [--test NAME]... ; no --test runs them all.
*/
#include <stdio.h>
#include <string.h>
#include "ar_selftest_table.h"

int main (int argc, char *argv[])
{
    bool verbose = false;
    const char *only[64];
    int only_count = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--verbose") == 0 || strcmp (argv[i], "-v") == 0)
            verbose = true;
        else if (strcmp (argv[i], "--list") == 0) {
            for (const ar_selftest_t *t = ar_selftests; t->name; t++)
                puts (t->name);
            return 0;
        } else if (strcmp (argv[i], "--test") == 0 && i + 1 < argc && only_count < 64)
            only[only_count++] = argv[++i];
        else {
            fprintf (stderr, "usage: ar_selftest [--list] [--verbose] [--test NAME]...\n");
            return 2;
        }
    }
    int ran = 0;
    for (const ar_selftest_t *t = ar_selftests; t->name; t++) {
        bool wanted = only_count == 0;
        for (int i = 0; i < only_count; i++)
            if (strcmp (only[i], t->name) == 0)
                wanted = true;
        if (!wanted)
            continue;
        printf (" * %s: ", t->name);
        fflush (stdout);
        t->fn (verbose);
        printf ("OK\n");
        ran++;
    }
    if (ran == 0) {
        fprintf (stderr, "ar_selftest: no test matched\n");
        return 1;
    }
    return 0;
}
