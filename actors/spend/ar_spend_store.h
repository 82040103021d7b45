/*  ar_spend_store: the spend actor's SQLite store.

    Owns <ANYRAY_DATA_DIR>/anyray.db (WAL, synchronous=NORMAL), applies the embedded copies of
    schemas/migrations/NNNN_name.sql once each (schema_migrations), and keeps a bounded FIFO of
   validated spend rows that a flush commits in one transaction with INSERT ... ON CONFLICT
   (request_id) DO NOTHING; a row's savings (table spend_savings) go in with it or not at all,
   and only when its spend row was new, so a duplicate never doubles them. A row leaves the queue
   only when its transaction has committed (or the database refused that one row), so a caller that
   answers from the flush callback answers "durable".

    When the database stays away past shutdown, the queue is written to a spool file (JSON lines,
    content-free) that the next start replays; inserts are idempotent, so replaying twice is safe.
*/
#ifndef AR_SPEND_STORE_H
#define AR_SPEND_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_SPEND_STR_MAX     256    // bytes per string field
#define AR_SPEND_BODY_MAX    16384  // bytes of one spend.row body
#define AR_SPEND_BATCH       256    // rows per transaction
#define AR_SPEND_QUEUE_MAX   100000 // default bound on rows waiting for a commit
#define AR_SPEND_SAVINGS_MAX 16     // savings entries per row
#define AR_SPEND_KIND_MAX    64     // bytes of a savings kind, [a-z0-9_]

//  What one optimizer strategy did to the request (member "savings" of spend.row).
typedef struct {
    const char *kind;      // the strategy, e.g. window_budget
    int64_t tokens_before; // 0..INT64_MAX
    int64_t tokens_after;  // 0..tokens_before
} ar_spend_saving_t;

//  One validated spend row (body kind spend.row). Strings live in the same allocation.
typedef struct ar_spend_row_t {
    char request_id[33]; // 32 lower-case hex digits
    int64_t ts_ms;
    const char *user; // NULL when null or absent
    const char *team;
    const char *session;
    const char *endpoint;
    const char *provider; // NULL when null or absent
    const char *model;
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cached_input_tokens; // part of input_tokens; 0 when the provider said none
    int64_t latency_ms;
    int64_t ttfb_ms;
    int64_t status;
    bool stream;
    bool optimized;
    size_t savings_count;       // 0 when "savings" is absent or []
    ar_spend_saving_t *savings; // in pipeline order; NULL when none
    void *tag; // caller's handle (the job waiting for the commit); set NULL to forget it
    // store-private below
    bool replayed; // came from a spool file
    bool refused;  // the database refused it in the last flush
    struct ar_spend_row_t *next;
} ar_spend_row_t;

//  Parse and strictly validate a spend.row JSON body. Returns a new row, or NULL with a short,
//  content-free reason in *error (static string naming the field at most).
ar_spend_row_t *ar_spend_row_parse (const void *data, size_t size, const char **error);
void ar_spend_row_destroy (ar_spend_row_t **self_p);
//  Compact JSON of the row (the spend.row shape), one line; caller frees. NULL if out of memory.
char *ar_spend_row_encode (const ar_spend_row_t *self);

typedef struct ar_spend_store_t ar_spend_store_t;

//  Open or create the database at path and migrate it. NULL on failure, with the reason in
//  *error (SQLite's message, content-free) when error is not NULL.
ar_spend_store_t *ar_spend_store_new (const char *path, const char **error);
//  Closes the database; rows still queued are dropped (flush or spool them first).
void ar_spend_store_destroy (ar_spend_store_t **self_p);

//  Bound on queued rows (default AR_SPEND_QUEUE_MAX).
void ar_spend_store_set_queue_max (ar_spend_store_t *self, size_t max);
//  How long one statement waits on another writer's lock, in ms (default 250).
void ar_spend_store_set_busy_timeout (ar_spend_store_t *self, int ms);

//  Queue a row; takes ownership and nulls *row_p. Returns -1 (row untouched) if the queue is full.
int ar_spend_store_queue (ar_spend_store_t *self, ar_spend_row_t **row_p);
size_t ar_spend_store_queued (ar_spend_store_t *self);

//  Called once per row leaving the queue, in queue order: status 0 = durable (committed, or
//  written to a spool), -1 = refused by the database (a constraint; never retried). The row is
//  freed after the call returns.
typedef void (ar_spend_done_fn) (ar_spend_row_t *row, int status, void *arg);

//  Commit up to max of the oldest queued rows in one transaction, then call done for each.
//  Returns the number of rows that left the queue, or -1 if the transaction failed: every row
//  then stays queued and ar_spend_store_error says why.
int ar_spend_store_flush (ar_spend_store_t *self, size_t max, ar_spend_done_fn *done, void *arg);
//  SQLite's message for the last failure (content-free), or "".
const char *ar_spend_store_error (ar_spend_store_t *self);

//  Move every queued row to path (temp file, fsync, rename; replaces the file). On success the
//  rows leave the queue with done (status 0: durable in the spool) and spool files replayed
//  earlier are removed. Returns 0, or -1 with every row still queued.
int ar_spend_store_spool (ar_spend_store_t *self, const char *path, ar_spend_done_fn *done,
                          void *arg);
//  Queue the rows of a spool file (tag NULL), bypassing the queue bound. The file is removed
//  once all rows replayed from it have left the queue. Returns rows queued, or -1 if the file
//  cannot be read; lines that fail validation are skipped and counted in *skipped.
int ar_spend_store_replay (ar_spend_store_t *self, const char *path, size_t *skipped);

void ar_spend_store_test (bool verbose);

#endif
