/*  ar_route_plan: the router's ordered plan for one call, and the walk along it (see header). */
#include "ar_route_plan.h"
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ar_route_plan_t {
    int64_t version;
    size_t count;
    size_t current; // the target being tried
    int tries;      // tries of the current target that have begun
    int total;      // tries of every target
    ar_route_target_t targets[];
};

//  Copy a string member into out; absent is "", too long is a refusal.
static int s_string (json_t *object, const char *key, char *out, size_t size)
{
    json_t *value = json_object_get (object, key);
    *out = 0;
    if (!value)
        return 0;
    if (!json_is_string (value) || json_string_length (value) >= size)
        return -1;
    memcpy (out, json_string_value (value), json_string_length (value) + 1);
    return 0;
}

static uint32_t s_uint (json_t *object, const char *key, uint32_t fallback)
{
    json_t *value = json_object_get (object, key);
    if (!json_is_integer (value) || json_integer_value (value) < 0)
        return fallback;
    json_int_t n = json_integer_value (value);
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static void s_codes (json_t *object, const char *key, ar_route_codes_t *out)
{
    json_t *list = json_object_get (object, key);
    size_t index;
    json_t *code;
    json_array_foreach (list, index, code)
    {
        json_int_t n = json_integer_value (code) - 400;
        if (json_is_integer (code) && n >= 0 && n < 256)
            out->bits[n / 64] |= 1ull << (n % 64);
    }
}

static int s_target (json_t *object, ar_route_target_t *target)
{
    if (!json_is_object (object) ||
        s_string (object, "provider", target->provider, sizeof target->provider) != 0 ||
        s_string (object, "base_url", target->base_url, sizeof target->base_url) != 0 ||
        s_string (object, "name", target->name, sizeof target->name) != 0 ||
        s_string (object, "model", target->model, sizeof target->model) != 0 ||
        !*target->provider || !*target->base_url)
        return -1;
    //  The provider's settings ride to the provider actor as they are.
    static const char *const extras[] = {"deployment", "api_version", "region", "project",
                                         "location"};
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        char *value = target->extras[target->extra_count].value;
        if (s_string (object, extras[i], value, sizeof target->extras[0].value) != 0)
            return -1;
        if (*value)
            snprintf (target->extras[target->extra_count++].key, sizeof target->extras[0].key, "%s",
                      extras[i]);
    }
    target->attempts = (int)s_uint (object, "attempts", 0);
    if (target->attempts > 10)
        target->attempts = 10;
    s_codes (object, "retry_on", &target->retry_on);
    target->backoff_ms = s_uint (object, "backoff_ms", 250);
    target->max_backoff_ms = s_uint (object, "max_backoff_ms", 8000);
    target->retry_after = !json_is_false (json_object_get (object, "retry_after"));
    target->max_retry_after_ms = s_uint (object, "max_retry_after_ms", 60000);
    target->timeout_ms = s_uint (object, "timeout_ms", 0);
    target->in_fallback = json_object_get (object, "fallback_on") != NULL;
    s_codes (object, "fallback_on", &target->fallback_on);
    return 0;
}

ar_route_plan_t *ar_route_plan_parse (const char *json, size_t len)
{
    json_t *root = json_loadb (json, len, 0, NULL);
    json_t *targets = json_object_get (root, "targets");
    size_t count = json_array_size (targets);
    if (count > AR_ROUTE_PLAN_TARGETS_MAX)
        count = AR_ROUTE_PLAN_TARGETS_MAX;
    ar_route_plan_t *self =
        count ? calloc (1, sizeof *self + count * sizeof (ar_route_target_t)) : NULL;
    if (self) {
        self->count = count;
        json_t *version = json_object_get (root, "version");
        self->version = json_is_integer (version) ? json_integer_value (version) : 0;
        for (size_t i = 0; i < count && self; i++)
            if (s_target (json_array_get (targets, i), &self->targets[i]) != 0)
                ar_route_plan_destroy (&self);
    }
    json_decref (root);
    return self;
}

void ar_route_plan_destroy (ar_route_plan_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

const ar_route_target_t *ar_route_plan_target (const ar_route_plan_t *self)
{
    return &self->targets[self->current];
}

int ar_route_plan_tries (const ar_route_plan_t *self)
{
    return self->total;
}

int64_t ar_route_plan_version (const ar_route_plan_t *self)
{
    return self->version;
}

size_t ar_route_plan_size (const ar_route_plan_t *self)
{
    return self->count;
}

void ar_route_plan_begin_try (ar_route_plan_t *self)
{
    self->tries++;
    self->total++;
}

static bool s_listed (const ar_route_codes_t *codes, int status)
{
    int n = status - 400;
    return n >= 0 && n < 256 && (codes->bits[n / 64] >> (n % 64) & 1);
}

//  The wait before retry n (1-based): exponential, capped, jittered into [d/2, d].
static uint32_t s_backoff (const ar_route_target_t *target, int n, uint64_t random)
{
    uint64_t delay = target->backoff_ms;
    for (int i = 1; i < n && delay < target->max_backoff_ms; i++)
        delay *= 2;
    if (delay > target->max_backoff_ms)
        delay = target->max_backoff_ms;
    uint64_t half = delay / 2;
    return (uint32_t)(delay - half + random % (half + 1));
}

ar_route_step_t ar_route_plan_next (ar_route_plan_t *self, int status, int64_t retry_after_ms,
                                    uint64_t random, uint32_t *delay_ms)
{
    *delay_ms = 0;
    if (status >= 100 && status < 400)
        return AR_ROUTE_ANSWER;
    const ar_route_target_t *target = &self->targets[self->current];
    bool transport = status == 0;
    if ((transport || s_listed (&target->retry_on, status)) && self->tries <= target->attempts) {
        uint32_t delay = s_backoff (target, self->tries, random);
        bool asked = !transport && target->retry_after && retry_after_ms >= 0;
        if (!asked || (uint64_t)retry_after_ms <= target->max_retry_after_ms) {
            if (asked && (uint64_t)retry_after_ms > delay)
                delay = (uint32_t)retry_after_ms;
            *delay_ms = delay;
            return AR_ROUTE_RETRY;
        }
    }
    if (target->in_fallback && self->current + 1 < self->count &&
        (transport || s_listed (&target->fallback_on, status))) {
        self->current++;
        self->tries = 0;
        return AR_ROUTE_NEXT;
    }
    return AR_ROUTE_ANSWER;
}

//  --------------------------------------------------------------------------
//  Self-test

void ar_route_plan_test (bool verbose)
{
    (void)verbose;
    uint32_t delay;
    //  Not plans.
    const char *bad[] = {"",
                         "{}",
                         "{\"targets\":[]}",
                         "{\"targets\":[{\"provider\":\"openai\"}]}",
                         "{\"targets\":[{\"base_url\":\"http://x\"}]}",
                         "{\"targets\":[{\"provider\":7,\"base_url\":\"http://x\"}]}",
                         "[1]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert (ar_route_plan_parse (bad[i], strlen (bad[i])) == NULL);

    //  The env-only plan: one target, no retries, no fallback: every outcome is the answer.
    const char *single = "{\"version\":0,\"targets\":[{\"provider\":\"bedrock\",\"base_url\":"
                         "\"https://b\",\"region\":\"us-west-2\",\"unknown\":\"x\"}]}";
    ar_route_plan_t *plan = ar_route_plan_parse (single, strlen (single));
    assert (plan && ar_route_plan_size (plan) == 1 && ar_route_plan_version (plan) == 0);
    const ar_route_target_t *target = ar_route_plan_target (plan);
    assert (strcmp (target->provider, "bedrock") == 0 && !*target->model && !*target->name);
    assert (target->extra_count == 1 && strcmp (target->extras[0].key, "region") == 0);
    assert (strcmp (target->extras[0].value, "us-west-2") == 0);
    ar_route_plan_begin_try (plan);
    assert (ar_route_plan_next (plan, 500, -1, 0, &delay) == AR_ROUTE_ANSWER);
    assert (ar_route_plan_next (plan, 0, -1, 0, &delay) == AR_ROUTE_ANSWER);
    assert (ar_route_plan_next (plan, 200, -1, 0, &delay) == AR_ROUTE_ANSWER);
    ar_route_plan_destroy (&plan);
    assert (plan == NULL);

    //  Retries: backoff doubles, capped, jittered in [d/2, d]; then the fallback moves on.
    const char *walk =
        "{\"version\":4,\"targets\":["
        "{\"provider\":\"openai\",\"base_url\":\"http://a\",\"name\":\"a\",\"model\":\"m-a\","
        "\"attempts\":3,\"retry_on\":[503,429],\"backoff_ms\":100,\"max_backoff_ms\":300,"
        "\"retry_after\":true,\"max_retry_after_ms\":2000,\"timeout_ms\":500,"
        "\"fallback_on\":[500,503]},"
        "{\"provider\":\"anthropic\",\"base_url\":\"http://b\",\"fallback_on\":[500]},"
        "{\"provider\":\"openai\",\"base_url\":\"http://c\",\"retry_after\":false,"
        "\"attempts\":1,\"retry_on\":[429]}]}";
    plan = ar_route_plan_parse (walk, strlen (walk));
    assert (plan && ar_route_plan_size (plan) == 3 && ar_route_plan_version (plan) == 4);
    target = ar_route_plan_target (plan);
    assert (strcmp (target->model, "m-a") == 0 && target->timeout_ms == 500);
    uint32_t lows[] = {50, 100, 150}, highs[] = {100, 200, 300};
    for (int n = 0; n < 3; n++) {
        ar_route_plan_begin_try (plan);
        assert (ar_route_plan_next (plan, 503, -1, 0, &delay) == AR_ROUTE_RETRY);
        assert (delay == lows[n]); // the lowest draw
        assert (ar_route_plan_next (plan, 503, -1, UINT64_MAX - 1, &delay) == AR_ROUTE_RETRY);
        assert (delay >= lows[n] && delay <= highs[n]);
    }
    ar_route_plan_begin_try (plan); // the fourth try: retries spent, the fallback moves on
    assert (ar_route_plan_next (plan, 503, -1, 0, &delay) == AR_ROUTE_NEXT && delay == 0);
    assert (strcmp (ar_route_plan_target (plan)->provider, "anthropic") == 0);
    assert (ar_route_plan_tries (plan) == 4);
    //  The second target has no retries; a 429 is not in its fallback_on: the answer.
    ar_route_plan_begin_try (plan);
    assert (ar_route_plan_next (plan, 429, -1, 0, &delay) == AR_ROUTE_ANSWER);
    //  A transport failure always moves on inside a fallback.
    assert (ar_route_plan_next (plan, 0, -1, 0, &delay) == AR_ROUTE_NEXT);
    //  The last target: not in a fallback; one retry on 429 without honouring Retry-After.
    ar_route_plan_begin_try (plan);
    assert (ar_route_plan_next (plan, 429, 5000, 0, &delay) == AR_ROUTE_RETRY && delay == 125);
    ar_route_plan_begin_try (plan);
    assert (ar_route_plan_next (plan, 429, -1, 0, &delay) == AR_ROUTE_ANSWER);
    assert (ar_route_plan_tries (plan) == 7);
    ar_route_plan_destroy (&plan);

    //  Retry-After: waited for when it is longer than the backoff, refused past the cap.
    plan = ar_route_plan_parse (walk, strlen (walk));
    ar_route_plan_begin_try (plan);
    assert (ar_route_plan_next (plan, 429, 1000, 0, &delay) == AR_ROUTE_RETRY && delay == 1000);
    ar_route_plan_begin_try (plan);
    assert (ar_route_plan_next (plan, 429, 10, 0, &delay) == AR_ROUTE_RETRY && delay == 100);
    ar_route_plan_begin_try (plan);
    //  Too long to wait, and 429 is not in this fallback_on: the 429 is the answer.
    assert (ar_route_plan_next (plan, 429, 5000, 0, &delay) == AR_ROUTE_ANSWER);
    //  Too long to wait on a 503, which the fallback takes: next target.
    assert (ar_route_plan_next (plan, 503, 5000, 0, &delay) == AR_ROUTE_NEXT);
    ar_route_plan_destroy (&plan);

    //  Every listed status counts, however long the list (nested fallbacks unite theirs).
    char codes[4096] = "";
    size_t used = 0;
    for (int code = 400; code < 600; code++)
        used += (size_t)snprintf (codes + used, sizeof codes - used, "%s%d", used ? "," : "", code);
    char many[4400];
    int m = snprintf (many, sizeof many,
                      "{\"targets\":[{\"provider\":\"openai\",\"base_url\":\"http://a\","
                      "\"fallback_on\":[%s]},{\"provider\":\"openai\",\"base_url\":\"http://b\"}]}",
                      codes);
    assert (m > 0 && (size_t)m < sizeof many);
    plan = ar_route_plan_parse (many, (size_t)m);
    ar_route_plan_begin_try (plan);
    assert (ar_route_plan_next (plan, 599, -1, 0, &delay) == AR_ROUTE_NEXT);
    ar_route_plan_destroy (&plan);

    //  Strings that do not fit refuse the plan rather than truncating a URL.
    char big[1200];
    int n = snprintf (big, sizeof big,
                      "{\"targets\":[{\"provider\":\"openai\",\"base_url\":\"%0600d\"}]}", 0);
    assert (n > 0 && (size_t)n < sizeof big);
    assert (ar_route_plan_parse (big, (size_t)n) == NULL);
}
