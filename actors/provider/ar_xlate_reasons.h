/*  ar_xlate_reasons: why an answer ended, in Anthropic's words and OpenAI's.

    Anthropic says stop_reason (end_turn, max_tokens, tool_use, refusal, ...), OpenAI says
    finish_reason (stop, length, tool_calls, content_filter). Whole answers
    (ar_xlate_anthropic.c) and streamed ones (ar_xlate_stream_anthropic.c) both translate it,
    each way; one map each way keeps a streamed answer ending as the same answer whole does.
*/
#ifndef AR_XLATE_REASONS_H
#define AR_XLATE_REASONS_H

#include <stdbool.h>

//  Anthropic stop_reason (NULL: none given) as OpenAI's finish_reason; never NULL.
const char *ar_xlate_reasons_anthropic_to_openai (const char *stop_reason);
//  OpenAI finish_reason (NULL: none given) as Anthropic's stop_reason; never NULL.
const char *ar_xlate_reasons_openai_to_anthropic (const char *finish_reason);

void ar_xlate_reasons_test (bool verbose);

#endif
