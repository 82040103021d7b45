/*  ar_optimizer: the OPTIMIZE service. For now a real pass-through: it parses the request
    (so a body the pipeline could not read is refused the way the pipeline will refuse it) and
    answers "unchanged" without echoing the bytes back, which spares the edge a second copy of
    a 100 KB body. The strategy pipeline plugs in here (issue: the optimizer).
*/
#ifndef AR_OPTIMIZER_H
#define AR_OPTIMIZER_H

#include "ar_actor.h"

//  Handle one optimize job: END with status 200 "unchanged" and no body, END with status 200
//  "changed" and the new request as body, or ERROR 400 when the body is not a JSON object.
void ar_optimizer_handle (ar_actor_t *actor, ar_job_t *job, void *arg);

//  The decision alone, for tests: 0 unchanged, 1 changed (*out set, caller frees), -1 refused.
int ar_optimizer_decide (const char *body, size_t len, char **out);

void ar_optimizer_test (bool verbose);

#endif
