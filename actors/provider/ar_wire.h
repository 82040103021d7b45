/*  ar_wire: what differs between upstream providers, one file per provider wire.

    The provider actor does the same thing for every upstream (send the body, stream the answer
    back cut at event boundaries, report usage); only a few details differ: how a server-held key
    is presented, and where token usage sits in a streamed event or a whole body. Each wire
    fills one ar_wire_t, and the registry in ar_wire.c maps a slug to it. Adding a wire touches
    its file and the registry. Where a call goes and in which shape is ar_target's; the usage
    functions of a shape's wire (openai, anthropic) read answers that pass through unchanged.
*/
#ifndef AR_WIRE_H
#define AR_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>

#define AR_WIRE_MODEL_MAX 128

//  Token usage as the upstream reported it. Fields fill in as events arrive.
typedef struct {
    bool has_input;
    bool has_output;
    bool has_cached;
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cached_input_tokens;       // input tokens served from the provider's prompt cache
    char model[AR_WIRE_MODEL_MAX + 1]; // "" until seen
} ar_usage_t;

typedef struct {
    const char *slug; // as the router names it: "openai"
    //  Append the headers that present a server-held key. Returns the list (curl_slist_append
    //  semantics), NULL on failure. The key is a secret: it goes into the list and nowhere else.
    //  NULL for providers that sign each request instead (Bedrock, Vertex).
    struct curl_slist *(*key_headers) (struct curl_slist *headers, const char *key);
    //  One complete SSE event: update usage if the event carries it, and say whether the event
    //  carries nothing but usage (dropped when the edge asked for strip_usage).
    void (*stream_event) (const char *event, size_t len, ar_usage_t *usage, bool *usage_only);
    //  A whole (non-streamed) response body: update usage from it.
    void (*body_usage) (const char *body, size_t len, ar_usage_t *usage);
    //  With strip_usage, undo in place what asking for usage added to an ordinary event, so
    //  the caller sees what the upstream would have sent it. Returns the new length.
    size_t (*strip_event) (char *event, size_t len);
} ar_wire_t;

//  The wire for a slug, or NULL if no such provider.
const ar_wire_t *ar_wire_lookup (const char *slug);
//  Every registered wire, NULL-terminated (to read their keys at start).
const ar_wire_t *const *ar_wire_all (void);

//  Shared helpers for wires: is there a `"name": {` (an object, not null) anywhere in s? A cheap
//  filter that runs before any JSON parser.
bool ar_wire_has_object (const char *s, size_t len, const char *name);
//  Append "<prefix><key>" as one header line (a key presented in a header).
struct curl_slist *ar_wire_key_header (struct curl_slist *headers, const char *prefix,
                                       const char *key);

//  The wires (one file each).
extern const ar_wire_t ar_wire_openai;
extern const ar_wire_t ar_wire_anthropic;
extern const ar_wire_t ar_wire_azure_openai;
extern const ar_wire_t ar_wire_bedrock;
extern const ar_wire_t ar_wire_google_vertex_ai;

void ar_wire_test (bool verbose);
void ar_wire_openai_test (bool verbose);
void ar_wire_anthropic_test (bool verbose);

#endif
