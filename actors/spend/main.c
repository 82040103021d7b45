/*  anyray-spend: the spend actor.

    Takes spend.row requests (one per finished gateway call, fire-and-forget from the edge),
    validates them, and commits them to <ANYRAY_DATA_DIR>/anyray.db in batches: a transaction
    when AR_SPEND_BATCH rows are waiting or 20 ms after the first one. Each request is answered
    END only once its row has committed, so "answered" means durable. A failed commit keeps the
    rows queued (bounded; past the bound new rows get 503) and retries with backoff. On SIGTERM
    the queue is flushed, and whatever cannot be committed in time is spooled (fsync) to
    spend-spool.<pid>.jsonl, which the next start replays.

    Logs name the request id at most: never a row's content.

    Environment: ANYRAY_DATA_DIR, ANYRAY_BROKER_ENDPOINT (via the runtime),
    ANYRAY_SPEND_CREDIT (1024), ANYRAY_SPEND_QUEUE_MAX (100000), ANYRAY_SPEND_DRAIN_MS (3000, under
   the launcher's 5 s stop deadline).
*/
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ar_actor.h"
#include "ar_env.h"
#include "ar_spend_store.h"

#define S_BATCH_DELAY_MS   20
#define S_BACKOFF_MIN_MS   50
#define S_BACKOFF_MAX_MS   5000
#define S_BATCHES_PER_TURN 16 // then let the loop beat and read before going on
#define S_SPOOL_PREFIX     "spend-spool."
#define S_SPOOL_SUFFIX     ".jsonl"

typedef struct {
    ar_actor_t *actor;
    ar_spend_store_t *store;
    bool timer_armed;
    ar_mono_ms backoff_ms; // 0 while the store is healthy
    size_t rejected;       // 503s since the last log line
} s_spend_t;

static void s_on_timer (ar_actor_t *actor, void *arg);

static void s_arm (s_spend_t *self, ar_mono_ms delay)
{
    ar_actor_set_timer (self->actor, ar_mono_now () + delay, s_on_timer);
    self->timer_armed = true;
}

//  A row left the queue: answer its job, if the job still waits.
static void s_done (ar_spend_row_t *row, int status, void *arg)
{
    s_spend_t *self = (s_spend_t *)arg;
    ar_job_t *job = (ar_job_t *)row->tag;
    if (status)
        zsys_warning ("spend: row %s refused by the database", row->request_id);
    if (!job)
        return; // cancelled, or replayed from a spool
    job->user = NULL;
    if (status == 0)
        ar_actor_end (self->actor, &job, NULL, 0);
    else
        ar_actor_error (self->actor, &job, 400, "bad spend row");
}

//  Commit what is queued, a few batches per turn; on failure back off and retry.
static void s_flush (s_spend_t *self)
{
    for (int turn = 0; turn < S_BATCHES_PER_TURN && ar_spend_store_queued (self->store); turn++)
        if (ar_spend_store_flush (self->store, AR_SPEND_BATCH, s_done, self) < 0) {
            self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : S_BACKOFF_MIN_MS;
            if (self->backoff_ms > S_BACKOFF_MAX_MS)
                self->backoff_ms = S_BACKOFF_MAX_MS;
            zsys_error ("spend: commit failed, %zu rows queued, %zu refused (503), retry in "
                        "%d ms: %s",
                        ar_spend_store_queued (self->store), self->rejected, (int)self->backoff_ms,
                        ar_spend_store_error (self->store));
            self->rejected = 0;
            s_arm (self, self->backoff_ms);
            return;
        }
    if (self->backoff_ms) {
        zsys_info ("spend: store recovered, %zu rows still queued",
                   ar_spend_store_queued (self->store));
        self->backoff_ms = 0;
    }
    if (ar_spend_store_queued (self->store))
        s_arm (self, 0); // a backlog: go on after the loop's other work
    else if (self->timer_armed) {
        ar_actor_set_timer (self->actor, -1, NULL);
        self->timer_armed = false;
    }
}

static void s_on_timer (ar_actor_t *actor, void *arg)
{
    s_spend_t *self = (s_spend_t *)arg;
    self->timer_armed = false;
    s_flush (self);
}

static void s_on_request (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    s_spend_t *self = (s_spend_t *)arg;
    char id[33];
    if (strcmp (job->env.kind, "spend.row") != 0) {
        ar_envelope_id_hex (&job->env, id);
        zsys_warning ("spend: envelope %s: unknown kind", id);
        ar_actor_error (actor, &job, 400, "unknown kind");
        return;
    }
    const char *error = "empty body";
    ar_spend_row_t *row = NULL;
    if (job->body)
        row = ar_spend_row_parse (zframe_data (job->body), zframe_size (job->body), &error);
    if (!row) {
        //  the reason names a field at most; the body may hold anything, so it stays out
        ar_envelope_id_hex (&job->env, id);
        zsys_warning ("spend: envelope %s: bad spend row (%s)", id, error);
        ar_actor_error (actor, &job, 400, "bad spend row");
        return;
    }
    row->tag = job;
    job->user = row;
    if (ar_spend_store_queue (self->store, &row)) {
        job->user = NULL;
        ar_spend_row_destroy (&row);
        self->rejected++; // logged with the next commit failure, not once per row
        ar_actor_error (actor, &job, 503, "spend store unavailable");
        return;
    }
    if (self->backoff_ms)
        return; // the retry timer is armed
    if (ar_spend_store_queued (self->store) >= AR_SPEND_BATCH)
        s_flush (self);
    else if (!self->timer_armed)
        s_arm (self, S_BATCH_DELAY_MS);
}

//  The job ends unanswered; its row stays queued (an accepted row is never dropped).
static void s_on_cancel (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    ar_spend_row_t *row = (ar_spend_row_t *)job->user;
    if (row)
        row->tag = NULL;
    job->user = NULL;
}

static bool s_is_spool (const char *name)
{
    size_t len = strlen (name);
    size_t prefix = strlen (S_SPOOL_PREFIX), suffix = strlen (S_SPOOL_SUFFIX);
    return len > prefix + suffix && strncmp (name, S_SPOOL_PREFIX, prefix) == 0 &&
           strcmp (name + len - suffix, S_SPOOL_SUFFIX) == 0;
}

//  Queue the rows an earlier run spooled; the files go once those rows have committed.
static void s_replay_spools (s_spend_t *self, const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (!s_is_spool (entry->d_name))
            continue;
        char path[PATH_MAX];
        if (snprintf (path, sizeof path, "%s/%s", dir, entry->d_name) >= (int)sizeof path)
            continue;
        size_t skipped = 0;
        int rows = ar_spend_store_replay (self->store, path, &skipped);
        if (rows < 0)
            zsys_error ("spend: cannot read spool %s: %s", path, strerror (errno));
        else
            zsys_info ("spend: replaying %d rows from %s (%zu unreadable lines skipped)", rows,
                       path, skipped);
    }
    closedir (handle);
}

//  After the loop stopped: commit what is queued, retrying for a while; spool the rest.
static void s_drain (s_spend_t *self, const char *dir)
{
    int64_t budget = ar_env_int ("ANYRAY_SPEND_DRAIN_MS", 3000, 0, 600000);
    ar_mono_ms deadline = ar_mono_now () + budget;
    ar_mono_ms backoff = S_BACKOFF_MIN_MS;
    while (ar_spend_store_queued (self->store)) {
        if (ar_spend_store_flush (self->store, AR_SPEND_BATCH, s_done, self) >= 0)
            continue;
        if (ar_mono_now () + backoff > deadline)
            break;
        zsys_warning ("spend: commit failed at shutdown, %zu rows queued, retry in %d ms: %s",
                      ar_spend_store_queued (self->store), (int)backoff,
                      ar_spend_store_error (self->store));
        zclock_sleep ((int)backoff);
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
    }
    size_t left = ar_spend_store_queued (self->store);
    if (left == 0)
        return;
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/" S_SPOOL_PREFIX "%d" S_SPOOL_SUFFIX, dir, (int)getpid ());
    if (ar_spend_store_spool (self->store, path, s_done, self) == 0)
        zsys_warning ("spend: database unavailable (%s); %zu rows spooled to %s for the next "
                      "start",
                      ar_spend_store_error (self->store), left, path);
    else
        zsys_error ("spend: %zu rows LOST: database unavailable (%s) and cannot write %s: %s", left,
                    ar_spend_store_error (self->store), path, strerror (errno));
}

int main (void)
{
    const char *dir = ar_env_data_dir ();
    if (!dir) {
        zsys_error ("spend: cannot create the data dir (ANYRAY_DATA_DIR)");
        return 1;
    }
    char path[PATH_MAX];
    if (snprintf (path, sizeof path, "%s/anyray.db", dir) >= (int)sizeof path) {
        zsys_error ("spend: data dir path too long");
        return 1;
    }
    s_spend_t self = {0};
    const char *error = NULL;
    self.store = ar_spend_store_new (path, &error);
    if (!self.store) {
        zsys_error ("spend: cannot open %s: %s", path, error);
        return 1;
    }
    ar_spend_store_set_queue_max (
        self.store, (size_t)ar_env_int ("ANYRAY_SPEND_QUEUE_MAX", AR_SPEND_QUEUE_MAX, 1, 10000000));
    s_replay_spools (&self, dir);

    ar_actor_ops_t ops = {
        .service = "spend",
        .credit = (uint16_t)ar_env_int ("ANYRAY_SPEND_CREDIT", 1024, 1, 65535),
        .arg = &self,
        .on_request = s_on_request,
        .on_cancel = s_on_cancel,
    };
    self.actor = ar_actor_new (&ops);
    if (!self.actor) {
        zsys_error ("spend: cannot start the actor runtime");
        ar_spend_store_destroy (&self.store); // replayed rows stay in their spool files
        return 1;
    }
    zsys_info ("spend: serving, database %s", path);
    if (ar_spend_store_queued (self.store))
        s_flush (&self); // replayed rows
    ar_actor_run (self.actor);

    zsys_info ("spend: stopping, %zu rows to commit", ar_spend_store_queued (self.store));
    s_drain (&self, dir);
    //  the actor first: jobs it still holds may be cancelled into rows the store owns
    ar_actor_destroy (&self.actor);
    ar_spend_store_destroy (&self.store);
    return 0;
}
