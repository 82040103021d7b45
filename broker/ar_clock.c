/*  ar_clock: wall time for the wire, monotonic time for timers. */
#include "ar_clock.h"
#include <assert.h>
#include <time.h>

ar_wall_ms ar_wall_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (ar_wall_ms)ts.tv_sec * 1000 + (ar_wall_ms)(ts.tv_nsec / 1000000);
}

ar_mono_ms ar_mono_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (ar_mono_ms)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ar_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  The sender states both the absolute deadline and the budget it had left; we trust whichever
//  is tighter, so a receiver whose wall clock runs behind cannot stretch a deadline.
ar_mono_ms ar_deadline_to_mono (ar_wall_ms deadline, uint32_t budget_ms)
{
    ar_mono_ms now = ar_mono_now ();
    if (deadline == 0 && budget_ms == 0)
        return INT64_MAX;
    int64_t left = INT64_MAX;
    if (deadline) {
        ar_wall_ms wall = ar_wall_now ();
        left = deadline > wall ? (int64_t)(deadline - wall) : 0;
    }
    if (budget_ms && (int64_t)budget_ms < left)
        left = budget_ms;
    return now + left;
}

void ar_clock_test (bool verbose)
{
    ar_mono_ms m1 = ar_mono_now ();
    ar_wall_ms w1 = ar_wall_now ();
    assert (w1 > 1600000000000ULL); // after 2020
    assert (ar_mono_us () / 1000 >= m1);
    //  No deadline at all: never expires.
    assert (ar_deadline_to_mono (0, 0) == INT64_MAX);
    //  Absolute deadline 500 ms ahead.
    ar_mono_ms d = ar_deadline_to_mono (w1 + 500, 0);
    assert (d >= m1 + 450 && d <= ar_mono_now () + 500);
    //  The budget is tighter than the deadline: the budget wins (skewed sender clock).
    d = ar_deadline_to_mono (w1 + 60000, 100);
    assert (d <= ar_mono_now () + 100);
    //  A deadline in the past is due now, never in the future.
    d = ar_deadline_to_mono (w1 - 1000, 0);
    assert (d <= ar_mono_now ());
    (void)verbose;
}
