/*  ar_strategy_property: a property test of every built optimizer strategy, alone and chained
    in the registry's (the default pipeline's) order, over thousands of seeded random requests
    in both shapes (OpenAI chat and Anthropic messages), with a real stash on a temp dir.

    Each output is checked for: structural validity for its API; no more tokens than its input;
    tool call/result pairs kept together; system prompt and last user turn unchanged; -1 or
    "not applied" meaning untouched; params never raised; protected tools never pruned; every
    elision marker's stash id readable back as the exact removed content. A strategy that
    silently stops applying fails the applied-share floors.

    ANYRAY_PROPERTY_SEED=<n> changes the seed (a failure prints the seed and case), and
    ANYRAY_PROPERTY_CASE=<i> runs that one case; ANYRAY_PROPERTY_CASES=<n> sets cases per shape.
*/
#ifndef AR_STRATEGY_PROPERTY_H
#define AR_STRATEGY_PROPERTY_H

#include <stdbool.h>

void ar_strategy_property_test (bool verbose);

#endif
