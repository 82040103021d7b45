/*  ar_xlate_reasons: why an answer ended, in Anthropic's words and OpenAI's.

    See ar_xlate_reasons.h. Words either side may add later fall back to the plain "it
    ended" of the other side: stop and end_turn.
*/
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "ar_xlate_reasons.h"

const char *ar_xlate_reasons_anthropic_to_openai (const char *stop_reason)
{
    if (!stop_reason)
        return "stop";
    if (strcmp (stop_reason, "max_tokens") == 0 ||
        strcmp (stop_reason, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp (stop_reason, "tool_use") == 0)
        return "tool_calls";
    if (strcmp (stop_reason, "refusal") == 0)
        return "content_filter";
    return "stop"; // end_turn, stop_sequence, pause_turn
}

const char *ar_xlate_reasons_openai_to_anthropic (const char *finish_reason)
{
    if (!finish_reason)
        return "end_turn";
    if (strcmp (finish_reason, "length") == 0)
        return "max_tokens";
    if (strcmp (finish_reason, "tool_calls") == 0 || strcmp (finish_reason, "function_call") == 0)
        return "tool_use";
    if (strcmp (finish_reason, "content_filter") == 0)
        return "refusal";
    return "end_turn"; // stop, and anything added later
}

//  ---------------------------------------------------------------------------
//  Self-test

void ar_xlate_reasons_test (bool verbose)
{
    if (verbose)
        printf (" * ar_xlate_reasons: ");
    static const char *const to_openai[][2] = {{"end_turn", "stop"},
                                               {"stop_sequence", "stop"},
                                               {"pause_turn", "stop"},
                                               {"max_tokens", "length"},
                                               {"model_context_window_exceeded", "length"},
                                               {"tool_use", "tool_calls"},
                                               {"refusal", "content_filter"},
                                               {"new_reason", "stop"}};
    for (size_t i = 0; i < sizeof to_openai / sizeof to_openai[0]; i++)
        assert (strcmp (ar_xlate_reasons_anthropic_to_openai (to_openai[i][0]), to_openai[i][1]) ==
                0);
    assert (strcmp (ar_xlate_reasons_anthropic_to_openai (NULL), "stop") == 0);
    static const char *const to_anthropic[][2] = {
        {"stop", "end_turn"},          {"length", "max_tokens"},      {"tool_calls", "tool_use"},
        {"function_call", "tool_use"}, {"content_filter", "refusal"}, {"new_reason", "end_turn"}};
    for (size_t i = 0; i < sizeof to_anthropic / sizeof to_anthropic[0]; i++)
        assert (strcmp (ar_xlate_reasons_openai_to_anthropic (to_anthropic[i][0]),
                        to_anthropic[i][1]) == 0);
    assert (strcmp (ar_xlate_reasons_openai_to_anthropic (NULL), "end_turn") == 0);
    //  Each of OpenAI's four words goes there and back unchanged.
    const char *openai[] = {"stop", "length", "tool_calls", "content_filter"};
    for (size_t i = 0; i < 4; i++)
        assert (strcmp (ar_xlate_reasons_anthropic_to_openai (
                            ar_xlate_reasons_openai_to_anthropic (openai[i])),
                        openai[i]) == 0);
    if (verbose)
        printf ("OK\n");
}
