/*  ar_xlate_stream: chains stream translators from the upstream's shape to the caller's.

    One translator when one side is OpenAI; two when neither is (Converse or Gemini upstream,
    Anthropic caller): the first stage's events feed the second directly, one at a time, so
    the chain holds nothing back either. The second stage always gets the usage chunk it needs
    to report usage in its own shape, and leaves the counting to the first.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "ar_xlate.h"

struct ar_xlate_stream_t {
    const ar_xlate_stream_ops_t *ops[2];
    void *state[2];
    size_t stages;
    const ar_xlate_sink_t *sink; // the caller's sink, during one call
};

static const ar_xlate_stream_ops_t *s_to_openai (ar_wire_shape_t from)
{
    switch (from) {
    case AR_SHAPE_ANTHROPIC:
        return &ar_xlate_stream_anthropic_to_openai;
    case AR_SHAPE_CONVERSE:
        return &ar_xlate_stream_converse_to_openai;
    case AR_SHAPE_GEMINI:
        return &ar_xlate_stream_gemini_to_openai;
    default:
        return NULL;
    }
}

ar_xlate_stream_t *ar_xlate_stream_new (ar_wire_shape_t from, ar_wire_shape_t to, const char *model,
                                        bool include_usage)
{
    if (from == to || (to != AR_SHAPE_OPENAI && to != AR_SHAPE_ANTHROPIC))
        return NULL;
    ar_xlate_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    if (from != AR_SHAPE_OPENAI) {
        self->ops[self->stages++] = s_to_openai (from);
        if (!self->ops[0]) {
            free (self);
            return NULL;
        }
    }
    if (to == AR_SHAPE_ANTHROPIC)
        self->ops[self->stages++] = &ar_xlate_stream_openai_to_anthropic;
    for (size_t i = 0; i < self->stages; i++) {
        //  A first stage feeding Anthropic must send the usage chunk the second one reports.
        bool usage = i + 1 < self->stages ? true : include_usage;
        self->state[i] = self->ops[i]->create (model, usage);
        if (!self->state[i]) {
            ar_xlate_stream_destroy (&self);
            return NULL;
        }
    }
    return self;
}

//  The first stage's sink when there are two: each event goes on to the second stage.
static int s_relay (void *arg, const char *name, const char *data, size_t len)
{
    ar_xlate_stream_t *self = arg;
    return self->ops[1]->event (self->state[1], name, data, len, self->sink, NULL);
}

int ar_xlate_stream_event (ar_xlate_stream_t *self, const char *name, const char *data, size_t len,
                           const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    if (self->stages == 1)
        return self->ops[0]->event (self->state[0], name, data, len, sink, usage);
    self->sink = sink;
    ar_xlate_sink_t relay = {s_relay, self};
    return self->ops[0]->event (self->state[0], name, data, len, &relay, usage);
}

int ar_xlate_stream_finish (ar_xlate_stream_t *self, const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    if (self->stages == 1)
        return self->ops[0]->finish (self->state[0], sink, usage);
    self->sink = sink;
    ar_xlate_sink_t relay = {s_relay, self};
    if (self->ops[0]->finish (self->state[0], &relay, usage))
        return -1;
    return self->ops[1]->finish (self->state[1], sink, NULL);
}

void ar_xlate_stream_destroy (ar_xlate_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_xlate_stream_t *self = *self_p;
    for (size_t i = 0; i < self->stages; i++)
        if (self->state[i])
            self->ops[i]->destroy (self->state[i]);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  Self-test: which chains exist. The translators test their own events.

void ar_xlate_stream_test (bool verbose)
{
    if (verbose)
        printf (" * ar_xlate_stream: ");
    assert (!ar_xlate_stream_new (AR_SHAPE_OPENAI, AR_SHAPE_OPENAI, "m", false));
    assert (!ar_xlate_stream_new (AR_SHAPE_ANTHROPIC, AR_SHAPE_ANTHROPIC, "m", false));
    assert (!ar_xlate_stream_new (AR_SHAPE_OPENAI, AR_SHAPE_GEMINI, "m", false));
    ar_wire_shape_t froms[] = {AR_SHAPE_OPENAI, AR_SHAPE_ANTHROPIC, AR_SHAPE_CONVERSE,
                               AR_SHAPE_GEMINI};
    ar_wire_shape_t tos[] = {AR_SHAPE_OPENAI, AR_SHAPE_ANTHROPIC};
    for (size_t f = 0; f < 4; f++)
        for (size_t t = 0; t < 2; t++) {
            ar_xlate_stream_t *chain = ar_xlate_stream_new (froms[f], tos[t], "m", true);
            assert ((chain != NULL) == (froms[f] != tos[t]));
            if (chain)
                assert (chain->stages ==
                        (froms[f] == AR_SHAPE_OPENAI || tos[t] == AR_SHAPE_OPENAI ? 1 : 2));
            ar_xlate_stream_destroy (&chain);
            assert (!chain);
        }
    if (verbose)
        printf ("OK\n");
}
