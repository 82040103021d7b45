/*  ar_bench_client: the small HTTP/1.1 client behind tests/bench/run.sh.

    ar_bench_client freeport
        Prints a free loopback TCP port (bound and released at once).

    ar_bench_client ttfb --port P [--port P2 ...] --body FILE [--n N] [--timeout-s S]
                         [--header 'K: V']...
        N rounds of sequential POST /v1/chat/completions; each round sends one request to
        every --port in turn (up to 4), each target on its own keep-alive connection
        (reconnects only if the server closes), so every target sees the same moments of a
        noisy machine. Timestamps the write of each request, the first response byte (status
        line) and the first decoded body byte. Prints one line per target, in --port order:
          port=.. n=.. ok=.. errors=.. ttfb_p50_us=.. ttfb_p90_us=.. ttfb_p99_us=..
          hdr_p50_us=.. total_p50_us=.. total_p90_us=.. total_p99_us=.. reconnects=..
        ("total" is the whole request: for a non-streamed answer, the round-trip latency.)

    ar_bench_client streams --port P --body FILE [--n N] [--ramp R] [--timeout-s S]
                            [--header 'K: V']...
        N concurrent POSTs, one connection each (epoll, non-blocking), opened in batches of R
        every 10 ms (default 250). A stream is OK when it answers 200,
        its chunked body ends properly and contains "data: [DONE]" and no "\"error\"" event.
        Prints one line:
          n=.. ok=.. errors=.. peak_open=.. all_open_ms=.. elapsed_ms=.. err_connect=..
          err_status=.. err_closed=.. err_timeout=.. err_body=.. dur_p50_ms=.. dur_max_ms=..

    Every mode is bounded by count and by --timeout-s (default 60), and exits by itself.
    Loopback (127.0.0.1) only.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS   16
#define HDR_MAX       16384
#define BODY_KEEP_MAX (256 * 1024) // streams: bytes of decoded body kept for the checks

static int64_t s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void s_die (const char *what)
{
    fprintf (stderr, "ar_bench_client: %s\n", what);
    exit (2);
}

//  --------------------------------------------------------------------------
//  Options.

#define MAX_TARGETS 4

typedef struct {
    int port;               //  the first --port
    int ports[MAX_TARGETS]; //  ttfb: every --port, taken in turn
    int port_count;
    const char *body_file;
    long n;
    int ramp;
    int timeout_s;
    const char *headers[MAX_HEADERS];
    int header_count;
} s_opts_t;

static char *s_request;
static size_t s_request_len;

static void s_build_request (const s_opts_t *o)
{
    FILE *f = fopen (o->body_file, "rb");
    if (!f)
        s_die ("cannot open --body file");
    fseek (f, 0, SEEK_END);
    long len = ftell (f);
    fseek (f, 0, SEEK_SET);
    if (len < 0)
        s_die ("cannot size --body file");
    size_t cap = (size_t)len + 4096;
    for (int i = 0; i < o->header_count; i++)
        cap += strlen (o->headers[i]) + 2;
    s_request = malloc (cap);
    if (!s_request)
        s_die ("out of memory");
    int n = snprintf (s_request, cap,
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/json\r\nAccept: */*\r\n"
                      "Content-Length: %ld\r\n",
                      len);
    size_t at = (size_t)n;
    for (int i = 0; i < o->header_count; i++)
        at += (size_t)snprintf (s_request + at, cap - at, "%s\r\n", o->headers[i]);
    at += (size_t)snprintf (s_request + at, cap - at, "\r\n");
    if (fread (s_request + at, 1, (size_t)len, f) != (size_t)len)
        s_die ("short read on --body file");
    fclose (f);
    s_request_len = at + (size_t)len;
}

//  --------------------------------------------------------------------------
//  An incremental HTTP/1.1 response parser (Content-Length or chunked).

typedef enum {
    P_HEADERS,
    P_LENGTH,
    P_CHUNK_SIZE,
    P_CHUNK_DATA,
    P_CHUNK_CRLF,
    P_TRAILER,
    P_EOF,
    P_DONE
} s_phase_t;

typedef struct {
    s_phase_t phase;
    char hdr[HDR_MAX];
    size_t hdr_len;
    int status;
    bool chunked, close;
    long long remaining;
    char line[128];
    size_t line_len;
    bool keep_body;
    char *body;
    size_t body_len;
    int64_t first_byte_ns, first_body_ns;
    bool bad;
} s_resp_t;

static void s_resp_reset (s_resp_t *r, bool keep_body)
{
    char *body = r->body;
    memset (r, 0, sizeof *r);
    r->body = body;
    r->keep_body = keep_body;
    if (keep_body && !r->body) {
        r->body = malloc (BODY_KEEP_MAX + 1);
        if (!r->body)
            s_die ("out of memory");
    }
}

static void s_body_bytes (s_resp_t *r, const char *data, size_t len, int64_t now)
{
    if (!len)
        return;
    if (!r->first_body_ns)
        r->first_body_ns = now;
    if (r->keep_body) {
        size_t room = BODY_KEEP_MAX - r->body_len;
        size_t n = len < room ? len : room;
        memcpy (r->body + r->body_len, data, n);
        r->body_len += n;
    }
}

static bool s_header_is (const char *line, size_t len, const char *name, const char **value)
{
    size_t n = strlen (name);
    if (len <= n || strncasecmp (line, name, n) != 0 || line[n] != ':')
        return false;
    const char *v = line + n + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    *value = v;
    return true;
}

//  Parse the header block in r->hdr (ends with \r\n\r\n).
static void s_parse_headers (s_resp_t *r)
{
    r->hdr[r->hdr_len] = 0;
    if (strncmp (r->hdr, "HTTP/1.", 7) != 0) {
        r->bad = true;
        return;
    }
    r->status = atoi (r->hdr + 9);
    bool has_length = false;
    r->close = r->hdr[7] == '0';
    for (char *line = strstr (r->hdr, "\r\n") + 2; line && *line && *line != '\r';) {
        char *end = strstr (line, "\r\n");
        if (!end)
            break;
        const char *v;
        size_t len = (size_t)(end - line);
        if (s_header_is (line, len, "content-length", &v)) {
            r->remaining = strtoll (v, NULL, 10);
            has_length = true;
        } else if (s_header_is (line, len, "transfer-encoding", &v))
            r->chunked = strncasecmp (v, "chunked", 7) == 0;
        else if (s_header_is (line, len, "connection", &v))
            r->close = strncasecmp (v, "close", 5) == 0;
        line = end + 2;
    }
    if (r->chunked)
        r->phase = P_CHUNK_SIZE;
    else if (has_length)
        r->phase = r->remaining ? P_LENGTH : P_DONE;
    else {
        r->phase = P_EOF;
        r->close = true;
    }
}

//  Feed bytes; returns how many were used (the rest belongs to the next response).
static size_t s_resp_feed (s_resp_t *r, const char *data, size_t len, int64_t now)
{
    size_t i = 0;
    if (len && !r->first_byte_ns)
        r->first_byte_ns = now;
    while (i < len && r->phase != P_DONE && !r->bad) {
        switch (r->phase) {
        case P_HEADERS:
            if (r->hdr_len >= HDR_MAX - 1) {
                r->bad = true;
                break;
            }
            r->hdr[r->hdr_len++] = data[i++];
            if (r->hdr_len >= 4 && memcmp (r->hdr + r->hdr_len - 4, "\r\n\r\n", 4) == 0)
                s_parse_headers (r);
            break;
        case P_LENGTH: {
            size_t n = len - i;
            if ((long long)n > r->remaining)
                n = (size_t)r->remaining;
            s_body_bytes (r, data + i, n, now);
            i += n;
            r->remaining -= (long long)n;
            if (!r->remaining)
                r->phase = P_DONE;
            break;
        }
        case P_EOF:
            s_body_bytes (r, data + i, len - i, now);
            i = len;
            break;
        case P_CHUNK_SIZE:
        case P_TRAILER: {
            char c = data[i++];
            if (r->line_len >= sizeof r->line - 1) {
                r->bad = true;
                break;
            }
            r->line[r->line_len++] = c;
            if (c != '\n')
                break;
            r->line[r->line_len] = 0;
            bool empty = r->line_len <= 2;
            r->line_len = 0;
            if (r->phase == P_TRAILER) {
                if (empty)
                    r->phase = P_DONE;
                break;
            }
            char *end;
            r->remaining = strtoll (r->line, &end, 16);
            if (end == r->line || r->remaining < 0) {
                r->bad = true;
                break;
            }
            r->phase = r->remaining ? P_CHUNK_DATA : P_TRAILER;
            break;
        }
        case P_CHUNK_DATA: {
            size_t n = len - i;
            if ((long long)n > r->remaining)
                n = (size_t)r->remaining;
            s_body_bytes (r, data + i, n, now);
            i += n;
            r->remaining -= (long long)n;
            if (!r->remaining) {
                r->phase = P_CHUNK_CRLF;
                r->line_len = 0;
            }
            break;
        }
        case P_CHUNK_CRLF:
            if (data[i++] == '\n')
                r->phase = P_CHUNK_SIZE;
            break;
        case P_DONE:
            break;
        }
    }
    return i;
}

//  --------------------------------------------------------------------------

static int s_connect_blocking (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t)port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

static int s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

//  Nearest-rank percentile of a sorted array.
static int64_t s_pct (const int64_t *v, long n, double p)
{
    if (n <= 0)
        return -1;
    long k = (long)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

//  One target of the ttfb mode: its keep-alive connection and its samples.
typedef struct {
    int port;
    int fd;
    long ok, errors, reconnects;
    int64_t *ttfb, *hdr, *total;
} s_target_t;

//  One request on the target's connection; false on any failure (the connection is dropped).
static bool s_one (s_target_t *t, int64_t deadline, s_resp_t *resp, char *buf, size_t buf_size)
{
    if (t->fd < 0) {
        t->fd = s_connect_blocking (t->port);
        if (t->fd < 0)
            return false;
        if (t->ok || t->errors)
            t->reconnects++;
    }
    s_resp_reset (resp, false);
    int64_t t0 = s_now_ns ();
    size_t sent = 0;
    bool failed = false;
    while (sent < s_request_len) {
        ssize_t w = send (t->fd, s_request + sent, s_request_len - sent, MSG_NOSIGNAL);
        if (w <= 0) {
            failed = true;
            break;
        }
        sent += (size_t)w;
    }
    while (!failed && resp->phase != P_DONE && !resp->bad) {
        int64_t left_ms = (deadline - s_now_ns ()) / 1000000;
        struct pollfd p = {.fd = t->fd, .events = POLLIN};
        if (left_ms <= 0 || poll (&p, 1, (int)(left_ms > 10000 ? 10000 : left_ms)) <= 0) {
            failed = true;
            break;
        }
        ssize_t r = recv (t->fd, buf, buf_size, 0);
        int64_t now = s_now_ns ();
        if (r <= 0) {
            if (resp->phase == P_EOF)
                resp->phase = P_DONE;
            else
                failed = true;
            break;
        }
        s_resp_feed (resp, buf, (size_t)r, now);
    }
    int64_t t1 = s_now_ns ();
    if (failed || resp->bad || resp->status != 200 || !resp->first_body_ns) {
        close (t->fd);
        t->fd = -1;
        return false;
    }
    t->ttfb[t->ok] = resp->first_body_ns - t0;
    t->hdr[t->ok] = resp->first_byte_ns - t0;
    t->total[t->ok] = t1 - t0;
    t->ok++;
    if (resp->close) {
        close (t->fd);
        t->fd = -1;
    }
    return true;
}

//  N rounds; each round sends one request to every target in turn, so all targets see the
//  same moments of a noisy machine. One result line per target, in --port order.
static int s_ttfb (const s_opts_t *o)
{
    int64_t deadline = s_now_ns () + (int64_t)o->timeout_s * 1000000000;
    s_target_t targets[MAX_TARGETS] = {{0}};
    for (int k = 0; k < o->port_count; k++) {
        s_target_t *t = &targets[k];
        t->port = o->ports[k];
        t->fd = -1;
        t->ttfb = calloc ((size_t)o->n, sizeof *t->ttfb);
        t->hdr = calloc ((size_t)o->n, sizeof *t->hdr);
        t->total = calloc ((size_t)o->n, sizeof *t->total);
        if (!t->ttfb || !t->hdr || !t->total)
            s_die ("out of memory");
    }
    static s_resp_t resp;
    static char buf[65536];
    for (long i = 0; i < o->n && s_now_ns () < deadline; i++)
        for (int k = 0; k < o->port_count; k++) {
            s_target_t *t = &targets[k];
            if (!s_one (t, deadline, &resp, buf, sizeof buf)) {
                t->errors++;
                usleep (1000);
            }
        }
    int rc = 0;
    for (int k = 0; k < o->port_count; k++) {
        s_target_t *t = &targets[k];
        long ok = t->ok;
        qsort (t->ttfb, (size_t)ok, sizeof *t->ttfb, s_cmp_i64);
        qsort (t->hdr, (size_t)ok, sizeof *t->hdr, s_cmp_i64);
        qsort (t->total, (size_t)ok, sizeof *t->total, s_cmp_i64);
        printf ("port=%d n=%ld ok=%ld errors=%ld ttfb_p50_us=%.1f ttfb_p90_us=%.1f "
                "ttfb_p99_us=%.1f hdr_p50_us=%.1f total_p50_us=%.1f total_p90_us=%.1f "
                "total_p99_us=%.1f reconnects=%ld\n",
                t->port, ok + t->errors, ok, t->errors, s_pct (t->ttfb, ok, 50) / 1e3,
                s_pct (t->ttfb, ok, 90) / 1e3, s_pct (t->ttfb, ok, 99) / 1e3,
                s_pct (t->hdr, ok, 50) / 1e3, s_pct (t->total, ok, 50) / 1e3,
                s_pct (t->total, ok, 90) / 1e3, s_pct (t->total, ok, 99) / 1e3, t->reconnects);
        if (t->errors)
            rc = 1;
        if (t->fd >= 0)
            close (t->fd);
        free (t->ttfb);
        free (t->hdr);
        free (t->total);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Many concurrent streams.

typedef enum { C_IDLE, C_CONNECTING, C_SENDING, C_READING, C_FINISHED } s_cstate_t;

typedef struct {
    int fd;
    s_cstate_t state;
    size_t sent;
    int64_t start_ns, end_ns;
    s_resp_t *resp;
    bool ok;
} s_conn_t;

typedef struct {
    long err_connect, err_status, err_closed, err_timeout, err_body;
} s_errs_t;

static void s_finish (int ep, s_conn_t *c, bool ok, long *err_counter, long *open_now)
{
    if (c->fd >= 0) {
        epoll_ctl (ep, EPOLL_CTL_DEL, c->fd, NULL);
        close (c->fd);
        c->fd = -1;
    }
    if (c->state == C_SENDING || c->state == C_READING)
        (*open_now)--;
    c->state = C_FINISHED;
    c->ok = ok;
    c->end_ns = s_now_ns ();
    if (!ok && err_counter)
        (*err_counter)++;
    free (c->resp->body);
    free (c->resp);
    c->resp = NULL;
}

static bool s_stream_ok (const s_resp_t *r)
{
    if (r->body_len >= BODY_KEEP_MAX)
        return false;
    r->body[r->body_len] = 0;
    return strstr (r->body, "data: [DONE]") && !strstr (r->body, "\"error\"");
}

static int s_streams (const s_opts_t *o)
{
    struct rlimit lim;
    if (getrlimit (RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit (RLIMIT_NOFILE, &lim);
    }
    if (getrlimit (RLIMIT_NOFILE, &lim) == 0 && (long)lim.rlim_cur < o->n + 64) {
        fprintf (stderr, "ar_bench_client: RLIMIT_NOFILE %ld is below %ld streams\n",
                 (long)lim.rlim_cur, o->n + 64);
        return 2;
    }
    s_conn_t *conns = calloc ((size_t)o->n, sizeof *conns);
    int ep = epoll_create1 (EPOLL_CLOEXEC);
    if (!conns || ep < 0)
        s_die ("out of memory or epoll");
    int64_t start = s_now_ns ();
    int64_t deadline = start + (int64_t)o->timeout_s * 1000000000;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t)o->port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    long opened = 0, finished = 0, open_now = 0, peak_open = 0;
    int64_t all_open_ns = 0;
    s_errs_t e = {0};
    int64_t next_batch = start;
    struct epoll_event events[1024];
    char buf[65536];
    while (finished < o->n) {
        int64_t now = s_now_ns ();
        if (now >= deadline)
            break;
        //  Open the next batch.
        if (opened < o->n && now >= next_batch) {
            for (int b = 0; b < o->ramp && opened < o->n; b++) {
                s_conn_t *c = &conns[opened++];
                c->start_ns = now;
                c->resp = calloc (1, sizeof *c->resp);
                if (!c->resp)
                    s_die ("out of memory");
                s_resp_reset (c->resp, true);
                c->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (c->fd < 0) {
                    s_finish (ep, c, false, &e.err_connect, &open_now);
                    finished++;
                    continue;
                }
                int one = 1;
                setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                int rc = connect (c->fd, (struct sockaddr *)&addr, sizeof addr);
                if (rc != 0 && errno != EINPROGRESS) {
                    s_finish (ep, c, false, &e.err_connect, &open_now);
                    finished++;
                    continue;
                }
                c->state = C_CONNECTING;
                struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                epoll_ctl (ep, EPOLL_CTL_ADD, c->fd, &ev);
            }
            next_batch = now + 10000000;
        }
        int64_t wait_ms = (deadline - now) / 1000000;
        if (opened < o->n) {
            int64_t to_batch = (next_batch - now) / 1000000;
            if (to_batch < wait_ms)
                wait_ms = to_batch < 0 ? 0 : to_batch;
        }
        if (wait_ms > 1000)
            wait_ms = 1000;
        int n = epoll_wait (ep, events, 1024, (int)wait_ms);
        if (n < 0 && errno != EINTR)
            break;
        for (int k = 0; k < n; k++) {
            s_conn_t *c = events[k].data.ptr;
            if (c->state == C_FINISHED)
                continue;
            now = s_now_ns ();
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    s_finish (ep, c, false, &e.err_connect, &open_now);
                    finished++;
                    continue;
                }
                c->state = C_SENDING;
                open_now++;
            }
            if (c->state == C_SENDING) {
                while (c->sent < s_request_len) {
                    ssize_t w =
                        send (c->fd, s_request + c->sent, s_request_len - c->sent, MSG_NOSIGNAL);
                    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                    if (w <= 0) {
                        s_finish (ep, c, false, &e.err_closed, &open_now);
                        finished++;
                        break;
                    }
                    c->sent += (size_t)w;
                }
                if (c->state == C_FINISHED)
                    continue;
                if (c->sent == s_request_len) {
                    c->state = C_READING;
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                    epoll_ctl (ep, EPOLL_CTL_MOD, c->fd, &ev);
                } else
                    continue;
            }
            //  C_READING: drain what is there.
            for (;;) {
                ssize_t r = recv (c->fd, buf, sizeof buf, 0);
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                s_resp_t *resp = c->resp;
                if (r <= 0) {
                    if (resp->phase == P_EOF) {
                        resp->phase = P_DONE;
                    } else {
                        s_finish (ep, c, false, &e.err_closed, &open_now);
                        finished++;
                        break;
                    }
                } else
                    s_resp_feed (resp, buf, (size_t)r, now);
                if (resp->bad) {
                    s_finish (ep, c, false, &e.err_body, &open_now);
                    finished++;
                    break;
                }
                if (resp->phase == P_DONE) {
                    if (resp->status != 200)
                        s_finish (ep, c, false, &e.err_status, &open_now);
                    else if (!s_stream_ok (resp))
                        s_finish (ep, c, false, &e.err_body, &open_now);
                    else
                        s_finish (ep, c, true, NULL, &open_now);
                    finished++;
                    break;
                }
            }
        }
        if (open_now > peak_open)
            peak_open = open_now;
        if (!all_open_ns && open_now == o->n)
            all_open_ns = s_now_ns () - start;
    }
    int64_t end = s_now_ns ();
    long ok = 0;
    int64_t *durs = calloc ((size_t)o->n, sizeof *durs);
    for (long i = 0; i < o->n; i++) {
        s_conn_t *c = &conns[i];
        if (i >= opened) {
            e.err_timeout++;
            continue;
        }
        if (c->state != C_FINISHED) {
            s_finish (ep, c, false, &e.err_timeout, &open_now);
            continue;
        }
        if (c->ok)
            durs[ok++] = c->end_ns - c->start_ns;
    }
    qsort (durs, (size_t)ok, sizeof *durs, s_cmp_i64);
    long errors = o->n - ok;
    printf ("n=%ld ok=%ld errors=%ld peak_open=%ld all_open_ms=%.0f elapsed_ms=%.0f "
            "err_connect=%ld err_status=%ld err_closed=%ld err_timeout=%ld err_body=%ld "
            "dur_p50_ms=%.0f dur_max_ms=%.0f\n",
            o->n, ok, errors, peak_open, all_open_ns ? all_open_ns / 1e6 : -1.0,
            (end - start) / 1e6, e.err_connect, e.err_status, e.err_closed, e.err_timeout,
            e.err_body, ok ? s_pct (durs, ok, 50) / 1e6 : -1.0, ok ? durs[ok - 1] / 1e6 : -1.0);
    free (durs);
    free (conns);
    close (ep);
    return errors ? 1 : 0;
}

//  --------------------------------------------------------------------------

static int s_freeport (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind (fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname (fd, (struct sockaddr *)&addr, &len) != 0)
        s_die ("cannot find a free port");
    printf ("%d\n", ntohs (addr.sin_port));
    close (fd);
    return 0;
}

static void s_usage (void)
{
    fprintf (
        stderr,
        "usage: ar_bench_client freeport\n"
        "       ar_bench_client ttfb --port P [--port P2...] --body FILE [--n N] [--timeout-s S] "
        "[--header 'K: V']...\n"
        "       ar_bench_client streams --port P --body FILE [--n N] [--ramp R] "
        "[--timeout-s S] [--header 'K: V']...\n");
    exit (2);
}

int main (int argc, char *argv[])
{
    if (argc < 2)
        s_usage ();
    signal (SIGPIPE, SIG_IGN);
    const char *mode = argv[1];
    if (strcmp (mode, "freeport") == 0)
        return s_freeport ();
    s_opts_t o = {.port = 0, .n = 500, .ramp = 250, .timeout_s = 60};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            s_usage ();
        if (strcmp (a, "--port") == 0) {
            if (o.port_count == MAX_TARGETS)
                s_die ("too many --port");
            o.ports[o.port_count++] = atoi (v);
            if (!o.port)
                o.port = atoi (v);
        } else if (strcmp (a, "--body") == 0)
            o.body_file = v;
        else if (strcmp (a, "--n") == 0)
            o.n = atol (v);
        else if (strcmp (a, "--ramp") == 0)
            o.ramp = atoi (v);
        else if (strcmp (a, "--timeout-s") == 0)
            o.timeout_s = atoi (v);
        else if (strcmp (a, "--header") == 0) {
            if (o.header_count == MAX_HEADERS)
                s_die ("too many --header");
            o.headers[o.header_count++] = v;
        } else
            s_usage ();
        i++;
    }
    for (int k = 0; k < o.port_count; k++)
        if (o.ports[k] <= 0 || o.ports[k] > 65535)
            s_usage ();
    if (o.port <= 0 || !o.body_file || o.n < 1 || o.n > 100000 || o.ramp < 1 || o.timeout_s < 1 ||
        o.timeout_s > 3600)
        s_usage ();
    s_build_request (&o);
    if (strcmp (mode, "ttfb") == 0)
        return s_ttfb (&o);
    if (strcmp (mode, "streams") == 0)
        return s_streams (&o);
    s_usage ();
    return 2;
}
