/*  ar_optimizer: the OPTIMIZE service (pass-through until the pipeline lands). */
#include "ar_optimizer.h"
#include "ar_json_scan.h"
#include <assert.h>
#include <string.h>

static int s_root_is_object (const ar_json_item_t *item, void *arg)
{
    if (item->depth == 0)
        *(bool *)arg = item->type == AR_JSON_OBJECT;
    return 0;
}

int ar_optimizer_decide (const char *body, size_t len, char **out)
{
    *out = NULL;
    //  A validating scan, not a DOM: with no strategy enabled there is nothing to build, and a
    //  jansson parse of a 100 KB body costs ~1.4 ms of the optimizer's core.
    bool object = false;
    if (ar_json_scan (body, len, 0, s_root_is_object, &object, NULL, NULL) != 0 || !object)
        return -1;
    //  No strategy runs yet: the request goes on exactly as it came.
    return 0;
}

void ar_optimizer_handle (ar_actor_t *actor, ar_job_t *job, void *arg)
{
    (void)arg;
    if (!job->body) {
        ar_actor_error (actor, &job, 400, "empty request");
        return;
    }
    char *changed = NULL;
    int rc = ar_optimizer_decide ((const char *)zframe_data (job->body), zframe_size (job->body),
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
    const char *ok =
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    assert (ar_optimizer_decide (ok, strlen (ok), &out) == 0 && out == NULL);
    assert (ar_optimizer_decide ("[1,2]", 5, &out) == -1);
    assert (ar_optimizer_decide ("{\"a\":", 5, &out) == -1);
    assert (ar_optimizer_decide ("{\"a\":\"\xff\"}", 9, &out) == -1); // invalid UTF-8
    (void)verbose;
}
