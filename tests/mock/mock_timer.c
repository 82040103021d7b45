/*  =========================================================================
    mock_timer - one thread that wakes suspended connections when they are due
    =========================================================================
*/
#include "mock_timer.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

//  Waits longer than this get a liveness check every CHECK_MS meanwhile
#define LONG_WAIT_MS 1000
#define CHECK_MS     500

typedef struct {
    uint64_t key; //  when the timer thread looks at this entry next
    mock_wait_t *wait;
} s_entry_t;

struct _mock_timer_t {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    pthread_t thread;
    s_entry_t *heap; //  min-heap on key
    size_t size;
    size_t cap;
    bool stopping; //  destroy asked the thread to finish
    bool stopped;  //  thread has drained the heap; park resumes at once
};

uint64_t mock_clock_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

//  When to look at a wait next, seen from now
static uint64_t s_next_key (const mock_wait_t *wait, uint64_t now)
{
    if (wait->due_ms > now + LONG_WAIT_MS)
        return now + CHECK_MS;
    return wait->due_ms;
}

static bool s_heap_push (mock_timer_t *self, s_entry_t entry)
{
    if (self->size == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 1024;
        s_entry_t *heap = realloc (self->heap, cap * sizeof *heap);
        if (!heap)
            return false;
        self->heap = heap;
        self->cap = cap;
    }
    size_t i = self->size++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->heap[parent].key <= entry.key)
            break;
        self->heap[i] = self->heap[parent];
        i = parent;
    }
    self->heap[i] = entry;
    return true;
}

static s_entry_t s_heap_pop (mock_timer_t *self)
{
    s_entry_t top = self->heap[0];
    s_entry_t last = self->heap[--self->size];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size && self->heap[child + 1].key < self->heap[child].key)
            child++;
        if (last.key <= self->heap[child].key)
            break;
        self->heap[i] = self->heap[child];
        i = child;
    }
    if (self->size)
        self->heap[i] = last;
    return top;
}

//  True if the peer has closed or reset the socket. Pending request bytes
//  (a pipelined next request) count as alive.
static bool s_peer_gone (int fd)
{
    if (fd < 0)
        return false; //  cannot tell, so let the wait run its course
    char byte;
    ssize_t rc = recv (fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (rc > 0)
        return false;
    if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return false;
    return true;
}

static void s_resume (mock_wait_t *wait, bool gone)
{
    if (gone)
        atomic_store (&wait->gone, true);
    MHD_resume_connection (wait->conn);
}

static void *s_run (void *arg)
{
    mock_timer_t *self = arg;
    s_entry_t *batch = NULL;
    size_t batch_cap = 0;

    pthread_mutex_lock (&self->mutex);
    while (!self->stopping) {
        if (self->size == 0) {
            pthread_cond_wait (&self->cond, &self->mutex);
            continue;
        }
        uint64_t now = mock_clock_ms ();
        if (self->heap[0].key > now) {
            uint64_t key = self->heap[0].key;
            struct timespec ts = {.tv_sec = (time_t)(key / 1000),
                                  .tv_nsec = (long)(key % 1000) * 1000000};
            pthread_cond_timedwait (&self->cond, &self->mutex, &ts);
            continue;
        }
        //  Take everything due, then work on it without the lock so
        //  parking connections never waits behind MHD's own mutexes
        size_t count = 0;
        while (self->size && self->heap[0].key <= now) {
            if (count == batch_cap) {
                size_t cap = batch_cap ? batch_cap * 2 : 256;
                s_entry_t *grown = realloc (batch, cap * sizeof *grown);
                if (!grown)
                    break;
                batch = grown;
                batch_cap = cap;
            }
            batch[count++] = s_heap_pop (self);
        }
        pthread_mutex_unlock (&self->mutex);

        size_t keep = 0;
        for (size_t i = 0; i < count; i++) {
            mock_wait_t *wait = batch[i].wait;
            if (wait->due_ms <= now)
                s_resume (wait, false);
            else if (s_peer_gone (wait->fd))
                s_resume (wait, true);
            else {
                batch[keep].key = s_next_key (wait, now);
                batch[keep++].wait = wait;
            }
        }
        pthread_mutex_lock (&self->mutex);
        for (size_t i = 0; i < keep; i++)
            if (!s_heap_push (self, batch[i])) {
                //  Out of memory: better to end the wait than to lose it
                pthread_mutex_unlock (&self->mutex);
                s_resume (batch[i].wait, true);
                pthread_mutex_lock (&self->mutex);
            }
    }
    //  Shutting down: nobody may stay suspended or MHD_stop_daemon panics
    self->stopped = true;
    size_t count = self->size;
    s_entry_t *rest = self->heap;
    self->heap = NULL;
    self->size = self->cap = 0;
    pthread_mutex_unlock (&self->mutex);
    for (size_t i = 0; i < count; i++)
        s_resume (rest[i].wait, true);
    free (rest);
    free (batch);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Create the timer and start its thread

mock_timer_t *mock_timer_new (void)
{
    mock_timer_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cond, &attr);
    pthread_condattr_destroy (&attr);
    pthread_mutex_init (&self->mutex, NULL);
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        pthread_cond_destroy (&self->cond);
        pthread_mutex_destroy (&self->mutex);
        free (self);
        return NULL;
    }
    return self;
}

//  --------------------------------------------------------------------------
//  Resume everything and stop the thread

void mock_timer_stop (mock_timer_t *self)
{
    pthread_mutex_lock (&self->mutex);
    bool running = !self->stopping;
    self->stopping = true;
    pthread_cond_signal (&self->cond);
    pthread_mutex_unlock (&self->mutex);
    if (running)
        pthread_join (self->thread, NULL);
}

//  --------------------------------------------------------------------------
//  Stop if needed, then free

void mock_timer_destroy (mock_timer_t **self_p)
{
    mock_timer_t *self = *self_p;
    if (!self)
        return;
    mock_timer_stop (self);
    pthread_cond_destroy (&self->cond);
    pthread_mutex_destroy (&self->mutex);
    free (self->heap);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Suspend the connection and resume it when due

void mock_timer_park (mock_timer_t *self, mock_wait_t *wait, struct MHD_Connection *conn,
                      uint64_t due_ms)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    wait->conn = conn;
    wait->fd = info ? info->connect_fd : -1;
    wait->due_ms = due_ms;
    atomic_store (&wait->gone, false);

    //  Suspend before the entry becomes visible, so the resume can only
    //  ever come after the suspend
    MHD_suspend_connection (conn);
    pthread_mutex_lock (&self->mutex);
    bool parked = false;
    if (!self->stopped) {
        s_entry_t entry = {.key = s_next_key (wait, mock_clock_ms ()), .wait = wait};
        parked = s_heap_push (self, entry);
        if (parked && self->heap[0].wait == wait)
            pthread_cond_signal (&self->cond);
    }
    pthread_mutex_unlock (&self->mutex);
    if (!parked)
        s_resume (wait, true);
}

//  --------------------------------------------------------------------------
//  Number of connections parked right now

size_t mock_timer_parked (mock_timer_t *self)
{
    pthread_mutex_lock (&self->mutex);
    size_t size = self->size;
    pthread_mutex_unlock (&self->mutex);
    return size;
}
