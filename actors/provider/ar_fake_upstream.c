/*  ar_fake_upstream: a tiny loopback HTTP/1.1 server that plays an OpenAI upstream in tests. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "ar_fake_upstream.h"

#define s_MAX_CONNECTIONS 512

#define s_CHUNK(text)                                                                              \
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":"                         \
    "\"gpt-4o-2024-08-06\"," text "}\n\n"
#define s_USAGE_EVENT                                                                              \
    s_CHUNK ("\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,"             \
             "\"total_tokens\":17}")
#define s_STREAM_HEAD                                                                              \
    s_CHUNK ("\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],"    \
             "\"usage\":null")                                                                     \
        s_CHUNK ("\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],"                    \
                 "\"usage\":null") ": keep-alive\n\n" s_CHUNK ("\"choices\":[{"                    \
                                                               "\"index\":0,"                      \
                                                               "\"delta\":{"                       \
                                                               "\"content\":"                      \
                                                               "\"lo\"}}],"                        \
                                                               "\"usage\":null")                   \
            s_CHUNK ("\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"        \
                     "\"usage\":null")

static const char s_stream[] = s_STREAM_HEAD s_USAGE_EVENT "data: [DONE]\n\n";
//  What the caller sees with strip_usage: no usage event, and no "usage":null on the others.
#define s_STRIPPED_HEAD                                                                            \
    s_CHUNK ("\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]")    \
        s_CHUNK ("\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]") ": "               \
                                                                                "keep-"            \
                                                                                "alive\n"          \
                                                                                "\n" s_CHUNK (     \
                                                                                    "\"choices\":" \
                                                                                    "[{\"index\":" \
                                                                                    "0,\"delta\":" \
                                                                                    "{\"content\"" \
                                                                                    ":\"lo\"}}]")  \
                                                                                    s_CHUNK (      \
                                                                                        "\"choice" \
                                                                                        "s\":[{"   \
                                                                                        "\"index"  \
                                                                                        "\":0,"    \
                                                                                        "\"delta"  \
                                                                                        "\":{},"   \
                                                                                        "\"finish" \
                                                                                        "_reason"  \
                                                                                        "\":"      \
                                                                                        "\"stop\"" \
                                                                                        "}]")
static const char s_stream_stripped[] = s_STRIPPED_HEAD "data: [DONE]\n\n";
static const char s_body[] =
    "{\"id\":\"c2\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini-2024-07-18\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,"
    "\"total_tokens\":10}}";
static const char s_error_body[] =
    "{\"error\":{\"message\":\"Incorrect API key provided.\","
    "\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}";
static const char s_models[] = "{\"object\":\"list\",\"data\":[{\"id\":\"gpt-4o\"}]}";

struct ar_fake_upstream_t {
    int listener;
    char base_url[64];
    pthread_t acceptor;
    pthread_mutex_t lock;
    char last_auth[512];
    bool last_expect;
    atomic_bool stopping;
    atomic_size_t connections, requests, hangups;
    size_t thread_count;
    pthread_t threads[s_MAX_CONNECTIONS];
    int fds[s_MAX_CONNECTIONS];
};

typedef struct {
    ar_fake_upstream_t *self;
    int fd;
} s_conn_t;

static void s_sleep_ms (int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep (&t, NULL);
}

static int s_send_all (int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int s_send_chunk (int fd, const char *data, size_t len)
{
    char head[32];
    int head_len = snprintf (head, sizeof head, "%zx\r\n", len);
    if (s_send_all (fd, head, (size_t)head_len) || s_send_all (fd, data, len) ||
        s_send_all (fd, "\r\n", 2))
        return -1;
    return 0;
}

static int s_respond (int fd, int status, const char *type, const char *body)
{
    char head[256];
    int len = snprintf (head, sizeof head,
                        "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
                        type, strlen (body));
    return s_send_all (fd, head, (size_t)len) || s_send_all (fd, body, strlen (body)) ? -1 : 0;
}

static int s_sse_head (int fd)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8"
                               "\r\nTransfer-Encoding: chunked\r\n\r\n";
    return s_send_all (fd, head, sizeof head - 1);
}

//  Wait until the client closes (or the server stops); count a hang-up.
static void s_wait_hangup (ar_fake_upstream_t *self, int fd)
{
    while (!atomic_load (&self->stopping)) {
        struct pollfd item = {.fd = fd, .events = POLLIN};
        if (poll (&item, 1, 20) > 0) {
            char byte;
            if (recv (fd, &byte, 1, 0) <= 0) {
                atomic_fetch_add (&self->hangups, 1);
                return;
            }
        }
    }
}

static char s_many[2000 * 64];
static pthread_once_t s_many_once = PTHREAD_ONCE_INIT;

static void s_build_many (void)
{
    size_t off = 0;
    for (int i = 0; i < 2000; i++)
        off += (size_t)snprintf (s_many + off, sizeof s_many - off,
                                 "data: {\"choices\":[{\"delta\":{\"content\":\"%d\"}}]}\n\n", i);
    snprintf (s_many + off, sizeof s_many - off, "data: [DONE]\n\n");
}

const char *ar_fake_upstream_many (void)
{
    pthread_once (&s_many_once, s_build_many);
    return s_many;
}

//  Serve one request. Returns 0 to keep the connection, -1 to close it.
static int s_serve (ar_fake_upstream_t *self, int fd, const char *method, const char *path,
                    const char *body)
{
    atomic_fetch_add (&self->requests, 1);
    if (strcmp (path, "/v1/chat/completions") == 0 && strcmp (method, "POST") == 0) {
        if (!strstr (body, "\"stream\":true"))
            return s_respond (fd, 200, "application/json", s_body);
        if (s_sse_head (fd))
            return -1;
        //  Small pieces with pauses: events arrive cut at arbitrary points.
        size_t len = strlen (s_stream);
        for (size_t off = 0; off < len; off += 37) {
            size_t n = len - off < 37 ? len - off : 37;
            if (s_send_chunk (fd, s_stream + off, n))
                return -1;
            s_sleep_ms (1);
        }
        return s_send_all (fd, "0\r\n\r\n", 5);
    }
    if (strcmp (path, "/v1/models") == 0 && strcmp (method, "GET") == 0)
        return s_respond (fd, 200, "application/json", s_models);
    if (strcmp (path, "/v1/limited") == 0) {
        char head[256];
        int len = snprintf (head, sizeof head,
                            "HTTP/1.1 429 X\r\nContent-Type: application/json\r\nRetry-After: "
                            "7\r\nContent-Length: %zu\r\n\r\n",
                            strlen (s_error_body));
        return s_send_all (fd, head, (size_t)len) ||
                       s_send_all (fd, s_error_body, strlen (s_error_body))
                   ? -1
                   : 0;
    }
    if (strcmp (path, "/v1/error") == 0)
        return s_respond (fd, 401, "application/json", s_error_body);
    if (strcmp (path, "/v1/slow") == 0) {
        for (int i = 0; i < 150 && !atomic_load (&self->stopping); i++)
            s_sleep_ms (20);
        s_respond (fd, 200, "application/json", s_body);
        return -1;
    }
    if (strcmp (path, "/v1/broken") == 0) {
        s_sse_head (fd);
        s_send_chunk (fd, s_stream, 40); // not even a whole event, then the connection drops
        s_sleep_ms (20);
        s_send_chunk (fd, s_stream + 40, 200);
        return -1;
    }
    if (strcmp (path, "/v1/hang") == 0) {
        s_sse_head (fd);
        const char *second = strstr (s_stream, "\n\n") + 2;
        s_send_chunk (fd, s_stream, (size_t)(second - s_stream));
        s_wait_hangup (self, fd);
        return -1;
    }
    if (strcmp (path, "/v1/many") == 0) {
        if (s_sse_head (fd))
            return -1;
        const char *many = ar_fake_upstream_many ();
        if (s_send_chunk (fd, many, strlen (many)))
            return -1;
        return s_send_all (fd, "0\r\n\r\n", 5);
    }
    return s_respond (fd, 404, "application/json", "{\"error\":{\"message\":\"no route\"}}");
}

//  Read requests off one connection until it closes.
static void *s_connection (void *arg)
{
    s_conn_t *conn = arg;
    ar_fake_upstream_t *self = conn->self;
    int fd = conn->fd;
    free (conn);
    static const size_t cap = 1 << 20;
    char *buf = malloc (cap + 1);
    size_t have = 0;
    while (buf && !atomic_load (&self->stopping)) {
        char *end = NULL;
        while (!(end = memmem (buf, have, "\r\n\r\n", 4))) {
            if (have == cap)
                goto done;
            ssize_t n = recv (fd, buf + have, cap - have, 0);
            if (n <= 0)
                goto done;
            have += (size_t)n;
        }
        size_t head_len = (size_t)(end - buf) + 4;
        buf[head_len - 2] = 0;
        char method[16] = "", path[256] = "";
        if (sscanf (buf, "%15s %255s", method, path) != 2)
            goto done;
        size_t body_len = 0;
        char auth[512] = "";
        bool expect = false;
        for (char *line = strstr (buf, "\r\n"); line && line[2]; line = strstr (line + 2, "\r\n")) {
            char *name = line + 2;
            if (strncasecmp (name, "Content-Length:", 15) == 0)
                body_len = strtoul (name + 15, NULL, 10);
            else if (strncasecmp (name, "Authorization: ", 15) == 0)
                snprintf (auth, sizeof auth, "%.*s", (int)strcspn (name + 15, "\r"), name + 15);
            else if (strncasecmp (name, "Expect:", 7) == 0)
                expect = true;
        }
        if (head_len + body_len > cap)
            goto done;
        while (have < head_len + body_len) {
            ssize_t n = recv (fd, buf + have, cap - have, 0);
            if (n <= 0)
                goto done;
            have += (size_t)n;
        }
        char saved = buf[head_len + body_len];
        buf[head_len + body_len] = 0;
        pthread_mutex_lock (&self->lock);
        snprintf (self->last_auth, sizeof self->last_auth, "%s", auth);
        self->last_expect = expect;
        pthread_mutex_unlock (&self->lock);
        int rc = s_serve (self, fd, method, path, buf + head_len);
        buf[head_len + body_len] = saved;
        memmove (buf, buf + head_len + body_len, have - head_len - body_len);
        have -= head_len + body_len;
        if (rc)
            break;
    }
done:
    free (buf);
    shutdown (fd, SHUT_RDWR);
    return NULL;
}

static void *s_accept (void *arg)
{
    ar_fake_upstream_t *self = arg;
    while (!atomic_load (&self->stopping)) {
        int fd = accept (self->listener, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock (&self->lock);
        s_conn_t *conn = malloc (sizeof *conn);
        if (atomic_load (&self->stopping) || self->thread_count == s_MAX_CONNECTIONS || !conn) {
            pthread_mutex_unlock (&self->lock);
            free (conn);
            close (fd);
            continue;
        }
        conn->self = self;
        conn->fd = fd;
        self->fds[self->thread_count] = fd;
        if (pthread_create (&self->threads[self->thread_count], NULL, s_connection, conn)) {
            free (conn);
            close (fd);
        } else {
            self->thread_count++;
            atomic_fetch_add (&self->connections, 1);
        }
        pthread_mutex_unlock (&self->lock);
    }
    return NULL;
}

ar_fake_upstream_t *ar_fake_upstream_new (void)
{
    ar_fake_upstream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init (&self->lock, NULL);
    self->listener = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof addr;
    if (self->listener < 0 || bind (self->listener, (struct sockaddr *)&addr, sizeof addr) ||
        listen (self->listener, 512) ||
        getsockname (self->listener, (struct sockaddr *)&addr, &addr_len) ||
        pthread_create (&self->acceptor, NULL, s_accept, self)) {
        if (self->listener >= 0)
            close (self->listener);
        pthread_mutex_destroy (&self->lock);
        free (self);
        return NULL;
    }
    snprintf (self->base_url, sizeof self->base_url, "http://127.0.0.1:%d/v1",
              ntohs (addr.sin_port));
    return self;
}

void ar_fake_upstream_destroy (ar_fake_upstream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_fake_upstream_t *self = *self_p;
    atomic_store (&self->stopping, true);
    shutdown (self->listener, SHUT_RDWR); // wakes accept
    pthread_join (self->acceptor, NULL);
    close (self->listener);
    for (size_t i = 0; i < self->thread_count; i++) {
        shutdown (self->fds[i], SHUT_RDWR); // wakes recv
        pthread_join (self->threads[i], NULL);
        close (self->fds[i]);
    }
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

const char *ar_fake_upstream_base_url (ar_fake_upstream_t *self)
{
    return self->base_url;
}

void ar_fake_upstream_last_auth (ar_fake_upstream_t *self, char *buf, size_t size)
{
    pthread_mutex_lock (&self->lock);
    snprintf (buf, size, "%s", self->last_auth);
    pthread_mutex_unlock (&self->lock);
}

bool ar_fake_upstream_last_expect (ar_fake_upstream_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool expect = self->last_expect;
    pthread_mutex_unlock (&self->lock);
    return expect;
}

size_t ar_fake_upstream_connections (ar_fake_upstream_t *self)
{
    return atomic_load (&self->connections);
}

size_t ar_fake_upstream_requests (ar_fake_upstream_t *self)
{
    return atomic_load (&self->requests);
}

size_t ar_fake_upstream_hangups (ar_fake_upstream_t *self)
{
    return atomic_load (&self->hangups);
}

const char *ar_fake_upstream_stream (void)
{
    return s_stream;
}

const char *ar_fake_upstream_stream_stripped (void)
{
    return s_stream_stripped;
}

const char *ar_fake_upstream_body (void)
{
    return s_body;
}

const char *ar_fake_upstream_error_body (void)
{
    return s_error_body;
}
