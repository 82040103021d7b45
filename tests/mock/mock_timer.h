/*  =========================================================================
    mock_timer - one thread that wakes suspended connections when they are due

    Slow streams and latency waits must scale to thousands of connections
    without a thread each and without polling. A connection that has
    nothing to send yet suspends itself in MHD and parks a mock_wait_t here;
    the timer thread keeps a min-heap of due times and resumes each
    connection exactly once per wait. Long waits are also checked every
    half second for a client that went away, so hung requests end when
    their client does.
    =========================================================================
*/
#ifndef MOCK_TIMER_H_INCLUDED
#define MOCK_TIMER_H_INCLUDED

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;
typedef struct _mock_timer_t mock_timer_t;

//  One parked connection. Lives inside the caller's per-request state and
//  must stay valid until the connection has been resumed.
typedef struct {
    struct MHD_Connection *conn;
    int fd;           //  socket, for the liveness check
    uint64_t due_ms;  //  monotonic ms when to resume; UINT64_MAX = never
    atomic_bool gone; //  set before resume if client left or we shut down
} mock_wait_t;

//  Monotonic clock in milliseconds
uint64_t mock_clock_ms (void);

//  Create the timer and start its thread; NULL on failure
mock_timer_t *mock_timer_new (void);

//  Resume every parked connection (marked gone) and stop the thread.
//  Later parks resume at once as gone, so the object must outlive every
//  connection that might still park: destroy it after MHD_stop_daemon.
void mock_timer_stop (mock_timer_t *self);

//  Stop if needed, then free
void mock_timer_destroy (mock_timer_t **self_p);

//  Suspend the connection (call only from an MHD callback for that
//  connection) and resume it at due_ms, or earlier if the client goes away.
void mock_timer_park (mock_timer_t *self, mock_wait_t *wait, struct MHD_Connection *conn,
                      uint64_t due_ms);

//  Number of connections parked right now
size_t mock_timer_parked (mock_timer_t *self);

#endif
