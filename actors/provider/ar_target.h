/*  ar_target: where one call goes upstream and in which shape, for each provider.

    The edge says what the caller sent (its shape, the endpoint in OpenAI's layout, the model,
    stream or not) and the routing chose a provider and its settings (base URL, Azure
    deployment and API version, Bedrock region, Vertex project and location). This class turns
    that into the upstream URL, the shape the upstream speaks (so the provider knows whether to
    translate), how a streamed answer is framed, and the body fix-ups a provider needs (Claude
    on Bedrock and Vertex takes the model in the URL and an anthropic_version in the body).
    What a provider cannot do is refused here, with a status and a message for the caller.
*/
#ifndef AR_TARGET_H
#define AR_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include "ar_xlate.h"
#include "ar_upstream_request.h"

typedef enum {
    AR_FRAMING_SSE,               // text/event-stream
    AR_FRAMING_EVENTSTREAM,       // AWS eventstream, one event per frame (ConverseStream)
    AR_FRAMING_EVENTSTREAM_BYTES, // AWS eventstream, Anthropic events base64 in "chunk" frames
} ar_framing_t;

typedef enum {
    AR_AUTH_KEY,    // a key in a header (each wire presents it its own way)
    AR_AUTH_SIGV4,  // AWS Signature Version 4 over the whole request
    AR_AUTH_GOOGLE, // a service account's OAuth2 access token
} ar_auth_t;

typedef struct {
    //  In: from the job.
    const char *slug;     // "openai", "anthropic", "azure-openai", "bedrock", "google-vertex-ai"
    const char *base_url; // the provider's base URL (routing)
    const char *path;     // the endpoint in OpenAI's layout: "/chat/completions", "/messages", ...
    const char *method;   // "POST" or "GET"
    const char *model;    // the request's model ("" for GET /models)
    ar_wire_shape_t caller; // AR_SHAPE_OPENAI or AR_SHAPE_ANTHROPIC
    bool stream;
    const char *deployment, *api_version; // Azure (deployment defaults to the model)
    const char *project, *location;       // Vertex
    //  Out.
    char url[AR_UPSTREAM_URL_MAX];
    ar_wire_shape_t upstream; // the shape of what is sent and what comes back
    bool translate;           // upstream != caller: request, answer and errors are translated
    ar_framing_t framing;
    ar_auth_t auth;
    const char *anthropic_version; // set this member in the body (Claude on Bedrock/Vertex)
    bool drop_model;               // the model is in the URL; the body must not carry it
    //  Why not (when ar_target_plan fails).
    int status;
    char message[200];
} ar_target_t;

//  Fill the out members. 0, or -1 with status and message set (nothing is sent upstream).
int ar_target_plan (ar_target_t *self);

//  Percent-encode s for one URL path segment (RFC 3986 unreserved characters stay). Returns
//  the length, or -1 if it does not fit.
int ar_target_encode_segment (const char *s, char *out, size_t size);

void ar_target_test (bool verbose);

#endif
