/*  ar_upstream: one curl multi handle for the whole process, driven by the multi socket API.

    The epoll set is level-triggered: a socket that still has bytes keeps the epoll fd readable,
    so the actor loop comes back to it after serving the broker socket, and one turn never
    drains more than s_BATCH events (fairness with the broker). A paused transfer drops its read
    interest (curl tells us), so it cannot spin the loop.
*/
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <czmq.h>
#include "ar_upstream.h"

#define s_BATCH 128

struct ar_upstream_t {
    CURLM *multi;
    int epoll_fd;
    ar_mono_ms due; // curl's timer, -1 when none
    int running;
    ar_upstream_done_fn *done;
    ar_upstream_timer_fn *timer;
    void *arg;
};

//  curl wants a socket watched for in, out, both, or no longer.
static int s_socket (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    ar_upstream_t *self = userp;
    if (what == CURL_POLL_REMOVE || what == CURL_POLL_NONE) {
        if (socketp) {
            //  May fail if curl closed the socket already (the kernel dropped it): fine.
            epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
            curl_multi_assign (self->multi, fd, NULL);
        }
        return 0;
    }
    struct epoll_event event = {0};
    event.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    event.data.fd = fd;
    int rc = epoll_ctl (self->epoll_fd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event);
    if (rc && errno == EEXIST)
        rc = epoll_ctl (self->epoll_fd, EPOLL_CTL_MOD, fd, &event);
    else if (rc && errno == ENOENT)
        rc = epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event);
    if (rc) {
        zsys_warning ("provider: epoll_ctl: %s", strerror (errno));
        return -1;
    }
    if (!socketp)
        curl_multi_assign (self->multi, fd, self); // any non-NULL: "in the epoll set"
    return 0;
}

static void s_set_due (ar_upstream_t *self, ar_mono_ms due)
{
    if (due == self->due)
        return;
    self->due = due;
    if (self->timer)
        self->timer (due, self->arg);
}

//  curl's one timer changed.
static int s_timer (CURLM *multi, long timeout_ms, void *userp)
{
    ar_upstream_t *self = userp;
    s_set_due (self, timeout_ms < 0 ? -1 : ar_mono_now () + timeout_ms);
    return 0;
}

//  After acting: report finished transfers, and take curl's timer as it stands now (it does not
//  call the timer function again if the timer fired a fraction of a millisecond early).
static void s_after_action (ar_upstream_t *self)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        //  msg dies when the handle is removed, which done may do.
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        self->done (easy, result, self->arg);
    }
    long timeout_ms = -1;
    if (curl_multi_timeout (self->multi, &timeout_ms) == CURLM_OK)
        s_set_due (self, timeout_ms < 0 ? -1 : ar_mono_now () + timeout_ms);
}

//  ---------------------------------------------------------------------------
//  Create the multi handle and its epoll set.

ar_upstream_t *ar_upstream_new (ar_upstream_done_fn *done, ar_upstream_timer_fn *timer, void *arg)
{
    ar_upstream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->due = -1;
    self->done = done;
    self->timer = timer;
    self->arg = arg;
    self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    self->multi = curl_multi_init ();
    if (self->epoll_fd < 0 || !self->multi) {
        ar_upstream_destroy (&self);
        return NULL;
    }
    CURLMcode rc = CURLM_OK;
#define s_SET(option, value)                                                                       \
    if (rc == CURLM_OK)                                                                            \
    rc = curl_multi_setopt (self->multi, option, value)
    s_SET (CURLMOPT_SOCKETFUNCTION, s_socket);
    s_SET (CURLMOPT_SOCKETDATA, self);
    s_SET (CURLMOPT_TIMERFUNCTION, s_timer);
    s_SET (CURLMOPT_TIMERDATA, self);
    //  Reuse: keep many idle connections, no per-host or total cap (the credit bounds us).
    s_SET (CURLMOPT_MAXCONNECTS, (long)AR_UPSTREAM_MAXCONNECTS);
    s_SET (CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    s_SET (CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    s_SET (CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
#undef s_SET
    if (rc != CURLM_OK) {
        ar_upstream_destroy (&self);
        return NULL;
    }
    return self;
}

//  ---------------------------------------------------------------------------
//  Destroy: close every connection, then the epoll set.

void ar_upstream_destroy (ar_upstream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_upstream_t *self = *self_p;
    if (self->multi)
        curl_multi_cleanup (self->multi); // may still call s_socket: epoll fd stays open
    if (self->epoll_fd >= 0)
        close (self->epoll_fd);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  The epoll fd.

int ar_upstream_fd (ar_upstream_t *self)
{
    return self->epoll_fd;
}

//  ---------------------------------------------------------------------------
//  Start a transfer; curl asks for its first timer (due now) from inside add_handle.

int ar_upstream_add (ar_upstream_t *self, CURL *easy)
{
    return curl_multi_add_handle (self->multi, easy) == CURLM_OK ? 0 : -1;
}

//  ---------------------------------------------------------------------------
//  Stop a transfer at once.

void ar_upstream_remove (ar_upstream_t *self, CURL *easy)
{
    curl_multi_remove_handle (self->multi, easy);
}

//  ---------------------------------------------------------------------------
//  Act on the ready sockets.

void ar_upstream_ready (ar_upstream_t *self)
{
    struct epoll_event events[s_BATCH];
    int count = epoll_wait (self->epoll_fd, events, s_BATCH, 0);
    for (int i = 0; i < count; i++) {
        uint32_t got = events[i].events;
        int action = ((got & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                     ((got & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                     ((got & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action (self->multi, events[i].data.fd, action, &self->running);
    }
    s_after_action (self);
}

//  ---------------------------------------------------------------------------
//  The timer fell due.

void ar_upstream_timeout (ar_upstream_t *self)
{
    self->due = -1;
    curl_multi_socket_action (self->multi, CURL_SOCKET_TIMEOUT, 0, &self->running);
    s_after_action (self);
}

//  ---------------------------------------------------------------------------
//  When the timer falls due next.

ar_mono_ms ar_upstream_due (ar_upstream_t *self)
{
    return self->due;
}

//  ---------------------------------------------------------------------------
//  Self-test: a transfer to a port nobody listens on fails through the socket API and the
//  timer, with no network beyond loopback.

typedef struct {
    int done;
    CURLcode result;
    ar_upstream_t *upstream;
} s_test_t;

static void s_test_done (CURL *easy, CURLcode result, void *arg)
{
    s_test_t *test = arg;
    test->done++;
    test->result = result;
    ar_upstream_remove (test->upstream, easy);
}

void ar_upstream_test (bool verbose)
{
    //  @selftest
    s_test_t test = {0};
    ar_upstream_t *upstream = ar_upstream_new (s_test_done, NULL, &test);
    assert (upstream);
    test.upstream = upstream;
    assert (ar_upstream_fd (upstream) >= 0);
    assert (ar_upstream_due (upstream) == -1);

    //  Find a loopback port that refuses: bind one, note it, close it.
    int probe = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof addr;
    assert (probe >= 0 && bind (probe, (struct sockaddr *)&addr, sizeof addr) == 0);
    assert (getsockname (probe, (struct sockaddr *)&addr, &addr_len) == 0);
    close (probe);
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/v1/models", ntohs (addr.sin_port));

    CURL *easy = curl_easy_init ();
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, 3000L);
    assert (ar_upstream_add (upstream, easy) == 0);
    assert (ar_upstream_due (upstream) >= 0); // curl asked to be kicked
    ar_mono_ms give_up = ar_mono_now () + 5000;
    while (!test.done && ar_mono_now () < give_up) {
        ar_mono_ms due = ar_upstream_due (upstream);
        int wait = due < 0 ? 100 : (int)(due - ar_mono_now ());
        struct pollfd item = {.fd = ar_upstream_fd (upstream), .events = POLLIN};
        poll (&item, 1, wait < 0 ? 0 : wait);
        if (item.revents & POLLIN)
            ar_upstream_ready (upstream);
        due = ar_upstream_due (upstream);
        if (due >= 0 && ar_mono_now () >= due)
            ar_upstream_timeout (upstream);
    }
    assert (test.done == 1);
    assert (test.result == CURLE_COULDNT_CONNECT);
    ar_upstream_remove (upstream, easy); // twice is harmless
    curl_easy_cleanup (easy);
    ar_upstream_destroy (&upstream);
    assert (upstream == NULL);
    //  @end
    if (verbose)
        printf ("ar_upstream: ok\n");
}
