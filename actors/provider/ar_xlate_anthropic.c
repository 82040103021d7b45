/*  PLACEHOLDER: replaced by the translator's real implementation (issue 5, in progress). */
#include <stdio.h>
#include <stdlib.h>
#include "ar_xlate.h"
#define AR_XLATE_STUB_STREAM(name) \
    static void *name##_create (const char *m, bool u) { (void)m; (void)u; return calloc (1, 1); } \
    static int name##_event (void *s, const char *n, const char *d, size_t l, const ar_xlate_sink_t *k, ar_usage_t *u) { (void)s; (void)n; (void)d; (void)l; (void)k; (void)u; return -1; } \
    static int name##_finish (void *s, const ar_xlate_sink_t *k, ar_usage_t *u) { (void)s; (void)k; (void)u; return -1; } \
    const ar_xlate_stream_ops_t name = {name##_create, name##_event, name##_finish, free};
json_t *ar_xlate_openai_to_anthropic_request (const json_t *request, ar_xlate_error_t *err) { (void)request; (void)err; return NULL; }
json_t *ar_xlate_anthropic_to_openai_request (const json_t *request, ar_xlate_error_t *err) { (void)request; (void)err; return NULL; }
json_t *ar_xlate_anthropic_to_openai_response (const json_t *response, ar_usage_t *usage) { (void)response; (void)usage; return NULL; }
json_t *ar_xlate_openai_to_anthropic_response (const json_t *response, ar_usage_t *usage) { (void)response; (void)usage; return NULL; }
void ar_xlate_anthropic_test (bool verbose) { (void)verbose; }
