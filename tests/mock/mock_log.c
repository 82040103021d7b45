/*  =========================================================================
    mock_log - the recent requests and counters tests inspect
    =========================================================================
*/
#include "mock_log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *method;
    char *path;
    char *authorization; //  NULL if absent
    char *body;
    size_t body_len;
} s_item_t;

struct _mock_log_t {
    pthread_mutex_t mutex;
    s_item_t ring[MOCK_LOG_SIZE];
    size_t next;  //  slot the next request goes into
    size_t used;  //  slots holding a request
    size_t bytes; //  body bytes held
    uint64_t total;
};

static void s_item_clear (s_item_t *item)
{
    free (item->method);
    free (item->path);
    free (item->authorization);
    free (item->body);
    memset (item, 0, sizeof *item);
}

mock_log_t *mock_log_new (void)
{
    mock_log_t *self = calloc (1, sizeof *self);
    if (self)
        pthread_mutex_init (&self->mutex, NULL);
    return self;
}

void mock_log_destroy (mock_log_t **self_p)
{
    mock_log_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < MOCK_LOG_SIZE; i++)
        s_item_clear (&self->ring[i]);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Record one request, taking the body's memory

void mock_log_add (mock_log_t *self, const char *method, const char *path,
                   const char *authorization, mock_buf_t *body)
{
    //  Build the item outside the lock; only the swap happens under it
    s_item_t item = {0};
    item.method = strdup (method ? method : "");
    item.path = strdup (path ? path : "");
    item.authorization = authorization ? strdup (authorization) : NULL;
    item.body = mock_buf_detach (body, &item.body_len);
    s_item_t old;

    pthread_mutex_lock (&self->mutex);
    self->total++;
    old = self->ring[self->next];
    self->ring[self->next] = item;
    self->next = (self->next + 1) % MOCK_LOG_SIZE;
    if (self->used < MOCK_LOG_SIZE)
        self->used++;
    self->bytes = self->bytes - old.body_len + item.body_len;
    //  Big bodies would make 256 entries gigabytes: past the byte budget
    //  drop the oldest, but always keep the newest
    while (self->bytes > MOCK_LOG_BYTES && self->used > 1) {
        s_item_t *oldest = &self->ring[(self->next + MOCK_LOG_SIZE - self->used) % MOCK_LOG_SIZE];
        self->bytes -= oldest->body_len;
        s_item_clear (oldest);
        self->used--;
    }
    pthread_mutex_unlock (&self->mutex);
    s_item_clear (&old);
}

//  --------------------------------------------------------------------------
//  Forget every logged request

void mock_log_clear (mock_log_t *self)
{
    s_item_t *old = malloc (sizeof self->ring);
    pthread_mutex_lock (&self->mutex);
    if (old)
        memcpy (old, self->ring, sizeof self->ring);
    else
        for (size_t i = 0; i < MOCK_LOG_SIZE; i++)
            s_item_clear (&self->ring[i]);
    memset (self->ring, 0, sizeof self->ring);
    self->next = self->used = self->bytes = 0;
    pthread_mutex_unlock (&self->mutex);
    if (old) {
        for (size_t i = 0; i < MOCK_LOG_SIZE; i++)
            s_item_clear (&old[i]);
        free (old);
    }
}

static void s_string_or_null (mock_buf_t *out, const char *str, size_t len)
{
    if (str)
        mock_buf_json_string (out, str, len);
    else
        mock_buf_puts (out, "null");
}

//  --------------------------------------------------------------------------
//  Append the log, oldest first, as a JSON array

void mock_log_dump (mock_log_t *self, mock_buf_t *out)
{
    mock_buf_puts (out, "[");
    pthread_mutex_lock (&self->mutex);
    size_t first = (self->next + MOCK_LOG_SIZE - self->used) % MOCK_LOG_SIZE;
    for (size_t i = 0; i < self->used; i++) {
        const s_item_t *item = &self->ring[(first + i) % MOCK_LOG_SIZE];
        mock_buf_puts (out, i ? ",{\"method\":" : "{\"method\":");
        s_string_or_null (out, item->method, item->method ? strlen (item->method) : 0);
        mock_buf_puts (out, ",\"path\":");
        s_string_or_null (out, item->path, item->path ? strlen (item->path) : 0);
        mock_buf_puts (out, ",\"authorization\":");
        s_string_or_null (out, item->authorization,
                          item->authorization ? strlen (item->authorization) : 0);
        mock_buf_puts (out, ",\"body\":");
        mock_buf_json_string (out, item->body ? item->body : "", item->body_len);
        mock_buf_puts (out, "}");
    }
    pthread_mutex_unlock (&self->mutex);
    mock_buf_puts (out, "]");
}

//  --------------------------------------------------------------------------
//  Requests logged since start

uint64_t mock_log_count (mock_log_t *self)
{
    pthread_mutex_lock (&self->mutex);
    uint64_t total = self->total;
    pthread_mutex_unlock (&self->mutex);
    return total;
}
