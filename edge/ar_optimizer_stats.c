/*  ar_optimizer_stats: counters of the optimizer's work through this edge. */
#include "ar_optimizer_stats.h"
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ar_stats_kind_t *s_kind (ar_optimizer_stats_t *self, const char *kind)
{
    for (size_t i = 0; i < self->kind_count; i++)
        if (strcmp (self->kinds[i].kind, kind) == 0)
            return &self->kinds[i];
    if (self->kind_count == AR_STATS_KINDS)
        return NULL;
    ar_stats_kind_t *row = &self->kinds[self->kind_count++];
    memset (row, 0, sizeof *row);
    snprintf (row->kind, sizeof row->kind, "%s", kind);
    return row;
}

void ar_optimizer_stats_add_reply (ar_optimizer_stats_t *self, const ar_exchange_reply_t *reply)
{
    self->calls++;
    self->answered++;
    self->changed += reply->changed;
    self->cache_hits += reply->cache_hit;
    self->tokens_before += reply->tokens_before;
    self->tokens_after += reply->tokens_after;
    for (size_t i = 0; i < reply->applied_count; i++) {
        ar_stats_kind_t *row = s_kind (self, reply->applied[i].kind);
        if (!row)
            continue;
        row->runs++;
        row->changed += reply->applied[i].changed;
        row->tokens_saved += reply->applied[i].before - reply->applied[i].after;
    }
    for (size_t i = 0; i < reply->skipped_count; i++) {
        ar_stats_kind_t *row = s_kind (self, reply->skipped[i].kind);
        const char *reason = reply->skipped[i].reason;
        if (!row)
            continue;
        if (strcmp (reason, "failed") == 0)
            row->runs++, row->failed++;
        else if (strcmp (reason, "overran") == 0)
            row->runs++, row->overran++;
        else if (strcmp (reason, "unavailable") == 0)
            row->unavailable++;
    }
}

void ar_optimizer_stats_add_fail_open (ar_optimizer_stats_t *self, ar_fail_open_t why)
{
    self->calls++;
    if (why < AR_FAIL_OPEN_COUNT)
        self->fail_open[why]++;
}

char *ar_optimizer_stats_json (const ar_optimizer_stats_t *self)
{
    json_t *kinds = json_object ();
    for (size_t i = 0; i < self->kind_count; i++) {
        const ar_stats_kind_t *row = &self->kinds[i];
        json_object_set_new (
            kinds, row->kind,
            json_pack ("{s:I, s:I, s:I, s:I, s:I, s:I}", "runs", (json_int_t)row->runs, "changed",
                       (json_int_t)row->changed, "failed", (json_int_t)row->failed, "overran",
                       (json_int_t)row->overran, "unavailable", (json_int_t)row->unavailable,
                       "tokensSaved", (json_int_t)row->tokens_saved));
    }
    const uint64_t *fail = self->fail_open;
    json_t *out = json_pack (
        "{s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:I, s:o}", "calls",
        (json_int_t)self->calls, "answered", (json_int_t)self->answered, "changed",
        (json_int_t)self->changed, "cacheHits", (json_int_t)self->cache_hits, "failOpen", "timeout",
        (json_int_t)fail[AR_FAIL_OPEN_TIMEOUT], "error", (json_int_t)fail[AR_FAIL_OPEN_ERROR],
        "noWorker", (json_int_t)fail[AR_FAIL_OPEN_NO_WORKER], "total",
        (json_int_t)(fail[AR_FAIL_OPEN_TIMEOUT] + fail[AR_FAIL_OPEN_ERROR] +
                     fail[AR_FAIL_OPEN_NO_WORKER]),
        "tokensBefore", (json_int_t)self->tokens_before, "tokensAfter",
        (json_int_t)self->tokens_after, "tokensSaved",
        (json_int_t)(self->tokens_before - self->tokens_after), "strategies", kinds);
    char *text = out ? json_dumps (out, JSON_COMPACT) : NULL;
    json_decref (out);
    return text;
}

void ar_optimizer_stats_test (bool verbose)
{
    (void)verbose;
    ar_optimizer_stats_t stats;
    memset (&stats, 0, sizeof stats);
    ar_exchange_reply_t reply;
    memset (&reply, 0, sizeof reply);
    reply.changed = true;
    reply.tokens_before = 900;
    reply.tokens_after = 300;
    reply.applied[0] = (ar_exchange_step_t){"window_budget", true, 900, 300};
    reply.applied_count = 1;
    snprintf (reply.skipped[0].kind, sizeof reply.skipped[0].kind, "param_tuning");
    snprintf (reply.skipped[0].reason, sizeof reply.skipped[0].reason, "overran");
    snprintf (reply.skipped[1].kind, sizeof reply.skipped[1].kind, "tool_pruning");
    snprintf (reply.skipped[1].reason, sizeof reply.skipped[1].reason, "failed");
    reply.skipped_count = 2;
    ar_optimizer_stats_add_reply (&stats, &reply);
    ar_optimizer_stats_add_reply (&stats, &reply);
    ar_optimizer_stats_add_fail_open (&stats, AR_FAIL_OPEN_TIMEOUT);
    char *text = ar_optimizer_stats_json (&stats);
    json_t *root = json_loads (text, 0, NULL);
    assert (json_integer_value (json_object_get (root, "calls")) == 3);
    assert (json_integer_value (json_object_get (root, "tokensSaved")) == 1200);
    json_t *fail = json_object_get (root, "failOpen");
    assert (json_integer_value (json_object_get (fail, "timeout")) == 1);
    assert (json_integer_value (json_object_get (fail, "total")) == 1);
    json_t *kinds = json_object_get (root, "strategies");
    assert (json_integer_value (
                json_object_get (json_object_get (kinds, "param_tuning"), "overran")) == 2);
    assert (json_integer_value (
                json_object_get (json_object_get (kinds, "tool_pruning"), "failed")) == 2);
    assert (json_integer_value (
                json_object_get (json_object_get (kinds, "window_budget"), "tokensSaved")) == 1200);
    json_decref (root);
    free (text);
}
