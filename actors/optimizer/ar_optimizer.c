/*  ar_optimizer: the OPTIMIZE service (pass-through until the pipeline lands). */
#include "ar_optimizer.h"
#include <assert.h>
#include <jansson.h>
#include <string.h>

int ar_optimizer_decide (const char *body, size_t len, char **out)
{
    *out = NULL;
    json_error_t error;
    json_t *request = json_loadb (body, len, JSON_REJECT_DUPLICATES, &error);
    if (!request || !json_is_object (request)) {
        json_decref (request);
        return -1;
    }
    //  No strategy runs yet: the request goes on exactly as it came.
    json_decref (request);
    return 0;
}

void ar_optimizer_handle (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    (void) arg;
    if (!job->body) {
        ar_actor_error (actor, &job, 400, "empty request");
        return;
    }
    char *changed = NULL;
    int rc = ar_optimizer_decide ((const char *) zframe_data (job->body), zframe_size (job->body),
                                  &changed);
    if (rc < 0) {
        ar_actor_error (actor, &job, 400, "request is not a JSON object");
        return;
    }
    ar_envelope_set_status (&job->reply, 200, rc == 0 ? "unchanged" : "changed");
    ar_actor_end (actor, &job, changed, changed ? strlen (changed) : 0);
    free (changed);
}

void ar_optimizer_test (bool verbose)
{
    char *out = NULL;
    const char *ok = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    assert (ar_optimizer_decide (ok, strlen (ok), &out) == 0 && out == NULL);
    assert (ar_optimizer_decide ("[1,2]", 5, &out) == -1);
    assert (ar_optimizer_decide ("{\"a\":", 5, &out) == -1);
    assert (ar_optimizer_decide ("{\"a\":1,\"a\":2}", 13, &out) == -1);
    (void) verbose;
}
