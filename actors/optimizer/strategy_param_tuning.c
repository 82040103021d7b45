/*  strategy_param_tuning: clamp generation params down to the configured caps.

    max_tokens and max_completion_tokens are lowered to maxTokensCap, never raised; an absent one
    stays absent (OpenAI makes them optional; Anthropic requires max_tokens, so there it is only
    ever clamped). temperature is lowered to temperatureMax when that param is set. A member of
    the wrong type is the provider's to reject: we leave it alone rather than guess.
*/
#include "ar_chat_view.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>

static void s_note (ar_strategy_result_t *result, const char *format, const char *name, double from,
                    double to)
{
    size_t used = strlen (result->note);
    if (used + 1 >= sizeof result->note)
        return;
    snprintf (result->note + used, sizeof result->note - used, format, used ? ", " : "", name, from,
              to);
}

static int s_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    json_t *request = ctx->request;
    json_t *cap = json_object_get (params, "maxTokensCap");
    json_t *tmax = json_object_get (params, "temperatureMax");
    if (!json_is_object (request) || !json_is_integer (cap) || json_integer_value (cap) < 1 ||
        (tmax && !json_is_number (tmax)))
        return -1;
    json_int_t limit = json_integer_value (cap);
    const char *fields[] = {"max_tokens", "max_completion_tokens"};
    size_t nfields = ctx->shape == AR_SHAPE_OPENAI_CHAT ? 2 : 1;
    for (size_t i = 0; i < nfields; i++) {
        json_t *value = json_object_get (request, fields[i]);
        if (!json_is_integer (value) || json_integer_value (value) <= limit)
            continue;
        s_note (result, "%s%s %.0f->%.0f", fields[i], (double)json_integer_value (value),
                (double)limit);
        //  A fresh value: a node may be shared by other documents, so never edit one in place.
        if (json_object_set_new (request, fields[i], json_integer (limit)) != 0)
            return -1;
        result->applied = true;
    }
    json_t *temperature = json_object_get (request, "temperature");
    if (tmax && json_is_number (temperature) &&
        json_number_value (temperature) > json_number_value (tmax)) {
        s_note (result, "%s%s %g->%g", "temperature", json_number_value (temperature),
                json_number_value (tmax));
        //  A fresh real: the old value may be an integer ("temperature": 2).
        if (json_object_set_new (request, "temperature", json_real (json_number_value (tmax))) != 0)
            return -1;
        result->applied = true;
    }
    return 0;
}

const ar_strategy_t ar_strategy_param_tuning = {"param_tuning", s_apply};

//  --------------------------------------------------------------------------------------------

static json_t *s_run (ar_shape_t shape, const char *request, const char *params, int *rc,
                      char *note)
{
    json_t *req = json_loads (request, 0, NULL);
    json_t *par = json_loads (params, 0, NULL);
    assert (req && par);
    ar_strategy_ctx_t ctx = {.shape = shape, .request = req, .deadline = INT64_MAX};
    ar_strategy_result_t result = {.applied = false};
    *rc = s_apply (&ctx, par, &result);
    strcpy (note, result.note);
    assert (result.applied == (*note != 0));
    json_decref (par);
    return req;
}

void strategy_param_tuning_test (bool verbose)
{
    int rc;
    char note[128];
    const ar_shape_t oa = AR_SHAPE_OPENAI_CHAT, an = AR_SHAPE_ANTHROPIC_MESSAGES;
    //  Clamped down, with the note the protocol example shows.
    json_t *r =
        s_run (oa, "{\"max_tokens\":8192,\"messages\":[]}", "{\"maxTokensCap\":4096}", &rc, note);
    assert (rc == 0 && strcmp (note, "max_tokens 8192->4096") == 0);
    assert (json_integer_value (json_object_get (r, "max_tokens")) == 4096);
    json_decref (r);
    //  Never raised; absent stays absent.
    r = s_run (oa, "{\"max_tokens\":100}", "{\"maxTokensCap\":4096}", &rc, note);
    assert (rc == 0 && !*note && json_integer_value (json_object_get (r, "max_tokens")) == 100);
    json_decref (r);
    r = s_run (oa, "{\"messages\":[]}", "{\"maxTokensCap\":4096}", &rc, note);
    assert (rc == 0 && !*note && !json_object_get (r, "max_tokens") &&
            !json_object_get (r, "max_completion_tokens"));
    json_decref (r);
    //  Both OpenAI fields, and temperature.
    r = s_run (oa, "{\"max_completion_tokens\":9000,\"max_tokens\":5000,\"temperature\":2}",
               "{\"maxTokensCap\":4096,\"temperatureMax\":0.7}", &rc, note);
    assert (rc == 0);
    assert (
        strcmp (note,
                "max_tokens 5000->4096, max_completion_tokens 9000->4096, temperature 2->0.7") ==
        0);
    assert (json_integer_value (json_object_get (r, "max_completion_tokens")) == 4096);
    assert (json_real_value (json_object_get (r, "temperature")) == 0.7);
    json_decref (r);
    //  Temperature below the max, or no max given: untouched.
    r = s_run (oa, "{\"temperature\":0.2}", "{\"maxTokensCap\":4096,\"temperatureMax\":0.7}", &rc,
               note);
    assert (rc == 0 && !*note && json_real_value (json_object_get (r, "temperature")) == 0.2);
    json_decref (r);
    r = s_run (oa, "{\"temperature\":1.9}", "{\"maxTokensCap\":4096}", &rc, note);
    assert (rc == 0 && !*note);
    json_decref (r);
    //  Anthropic: max_tokens only; max_completion_tokens is not its field.
    r = s_run (an, "{\"max_tokens\":64000,\"max_completion_tokens\":9000}",
               "{\"maxTokensCap\":4096}", &rc, note);
    assert (rc == 0 && strcmp (note, "max_tokens 64000->4096") == 0);
    assert (json_integer_value (json_object_get (r, "max_completion_tokens")) == 9000);
    json_decref (r);
    //  Wrong types in the request: skipped. Wrong params: -1, request untouched.
    r = s_run (oa, "{\"max_tokens\":\"9000\",\"temperature\":\"hot\"}",
               "{\"maxTokensCap\":4096,\"temperatureMax\":0.5}", &rc, note);
    assert (rc == 0 && !*note);
    json_decref (r);
    r = s_run (oa, "{\"max_tokens\":9000}", "{\"maxTokensCap\":\"4096\"}", &rc, note);
    assert (rc == -1 && json_integer_value (json_object_get (r, "max_tokens")) == 9000);
    json_decref (r);
    r = s_run (oa, "[1]", "{\"maxTokensCap\":4096}", &rc, note);
    assert (rc == -1);
    json_decref (r);
    if (verbose)
        printf ("strategy_param_tuning: ok\n");
}
