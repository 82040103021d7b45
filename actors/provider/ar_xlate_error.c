/*  PLACEHOLDER: replaced by the translator's real implementation (issue 5, in progress). */
#include <stdio.h>
#include <stdlib.h>
#include "ar_xlate.h"
#define AR_XLATE_STUB_STREAM(name) \
    static void *name##_create (const char *m, bool u) { (void)m; (void)u; return calloc (1, 1); } \
    static int name##_event (void *s, const char *n, const char *d, size_t l, const ar_xlate_sink_t *k, ar_usage_t *u) { (void)s; (void)n; (void)d; (void)l; (void)k; (void)u; return -1; } \
    static int name##_finish (void *s, const ar_xlate_sink_t *k, ar_usage_t *u) { (void)s; (void)k; (void)u; return -1; } \
    const ar_xlate_stream_ops_t name = {name##_create, name##_event, name##_finish, free};
json_t *ar_xlate_error_body (ar_shape_t caller, ar_shape_t upstream, int status, const char *body, size_t len, const char *aws_error_type) { (void)caller; (void)upstream; (void)status; (void)body; (void)len; (void)aws_error_type; return NULL; }
json_t *ar_xlate_error_new (ar_shape_t caller, int status, const char *message, const char *param, const char *code) { (void)caller; (void)status; (void)message; (void)param; (void)code; return NULL; }
void ar_xlate_error_test (bool verbose) { (void)verbose; }
