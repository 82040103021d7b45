/*  ar_launch: the local supervisor behind `./anyray up` (binary anyray-launch).

    anyray-launch [--demo] [--bin-dir DIR]

    Starts every Anyray process in the foreground (broker, then the actors, then the edge),
    prefixes their output with the process name, restarts a process that dies with a capped
    backoff, and on SIGINT/SIGTERM stops them in reverse order. With --demo it also starts the
    bundled mock upstream and points the openai provider at it.
*/
#ifndef AR_LAUNCH_H
#define AR_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Delay before restarting a child that ran for ran_ms; prev_ms is the delay used for its
//  previous restart (0: none yet). 100 ms doubling to 5 s; reset after 10 s of healthy running.
int ar_launch_backoff (int prev_ms, int64_t ran_ms);

//  Replica count from an ANYRAY_REPLICAS_<NAME> value: a decimal in [0, max], else def.
int ar_launch_replicas (const char *value, int def, int max);

//  Directory holding the binaries, from the launcher's own path: <root>/deploy/anyray-launch
//  gives <root> (a build tree); anything else gives the launcher's own directory.
//  Returns 0, or -1 if buf is too small.
int ar_launch_bin_dir (const char *exe, char *buf, size_t size);

//  Runs the supervisor until SIGINT/SIGTERM; returns the process exit code.
int ar_launch_main (int argc, char *argv[]);

void ar_launch_test (bool verbose);

#endif
