/*  ar_clock: two clocks that never mix. Wall time (Unix epoch ms) travels on the wire as
    absolute deadlines; monotonic time drives every local timer, so an NTP step cannot expire
    everything at once (the Majordomo reference's wall-clock expiry bug).
*/
#ifndef AR_CLOCK_H
#define AR_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t ar_wall_ms; // Unix epoch milliseconds, for the wire
typedef int64_t ar_mono_ms;  // CLOCK_MONOTONIC milliseconds, for timers

ar_wall_ms ar_wall_now (void);
ar_mono_ms ar_mono_now (void);
//  Microsecond monotonic clock, for latency measurement.
int64_t ar_mono_us (void);

//  Turn a wire deadline into a local monotonic one: min(deadline - now_wall, budget) from now.
//  budget_ms 0 means "not given". A deadline of 0 means none: returns INT64_MAX.
ar_mono_ms ar_deadline_to_mono (ar_wall_ms deadline, uint32_t budget_ms);

void ar_clock_test (bool verbose);

#endif
