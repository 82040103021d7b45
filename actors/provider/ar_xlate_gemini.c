/*  ar_xlate_gemini: OpenAI chat completions <-> Google Gemini generateContent (Vertex AI).

    Requests: OpenAI messages become Gemini `contents` (user/model turns of typed parts, with
    consecutive same-role turns merged, as Gemini wants turns to alternate), system and
    developer messages become `systemInstruction`, sampling options `generationConfig`, tools
    `functionDeclarations` with their JSON Schemas cut down to the OpenAPI subset Gemini takes,
    and tool_choice `toolConfig`. The model goes in the URL, so nothing here names it.

    Responses: a GenerateContentResponse (candidates of parts, finishReason, usageMetadata)
    becomes a chat.completion. Streams (streamGenerateContent?alt=sse) send one whole
    GenerateContentResponse per SSE event holding the parts generated since the last one; each
    becomes chat.completion.chunk deltas at once. Gemini sends a function call whole, never in
    pieces, so each becomes one complete tool_calls delta.

    Ids: Gemini names no completion id, only a responseId; the completion is chatcmpl-<that>
    and tool calls Gemini left without an id are call_<that>_<k>, so ids are unique across a
    conversation and a stream agrees with the same answer unstreamed.
*/
#include <assert.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <jansson.h>
#include "ar_xlate_chunks.h"

#define S_PATH_MAX   256  // member paths while translating; err->param keeps what fits
#define S_STEM_MAX   72   // a responseId, or 24 random hex digits
#define S_SCHEMA_MAX 32   // deeper schemas are refused rather than risk the stack
#define S_REFS_MAX   8    // $ref expansions on one path: more means a recursive schema
#define S_TOOLS_MAX  1024 // tool calls in one streamed answer; more is a runaway upstream

//  Gemini 3 refuses a replayed functionCall without the thought signature it issued, which
//  OpenAI messages cannot carry back; Google documents this value as "skip validation" for
//  calls replayed from elsewhere. Earlier models are assumed to take it as an opaque signature
//  (not checked against a live endpoint).
#define S_SKIP_SIGNATURE "skip_thought_signature_validator"

//  ---------------------------------------------------------------------------
//  Shared helpers

static bool s_streq (const char *a, const char *b)
{
    return a && b && strcmp (a, b) == 0;
}

//  ASCII case-insensitive equality, for schema type names.
static bool s_ieq (const char *a, const char *b)
{
    if (!a || !b)
        return false;
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

static const char *s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  A member that is there and not null: OpenAI clients send null for "not given".
static const json_t *s_given (const json_t *object, const char *key)
{
    const json_t *member = json_object_get (object, key);
    return json_is_null (member) ? NULL : member;
}

//  Set or append, taking value; a failure (out of memory) is remembered for one check later.
static void s_set (json_t *object, const char *key, json_t *value, bool *nomem)
{
    if (json_object_set_new (object, key, value))
        *nomem = true;
}

static void s_push (json_t *array, json_t *value, bool *nomem)
{
    if (json_array_append_new (array, value))
        *nomem = true;
}

//  24 random hex digits.
static void s_random_hex (char *buf, size_t size)
{
    unsigned char raw[12] = {0};
    if (getrandom (raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        //  Only before the entropy pool is seeded; the id just has to be unlikely to repeat.
        uint64_t mix = (uint64_t)time (NULL) ^ (uint64_t)(uintptr_t)buf;
        for (size_t i = 0; i < sizeof raw; i++, mix = mix * 6364136223846793005u + 1)
            raw[i] = (unsigned char)(mix >> 56);
    }
    size_t at = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof raw && at + 2 < size; i++, at += 2)
        snprintf (buf + at, size - at, "%02x", raw[i]);
}

//  The stem of a response's ids: its responseId when it is a plain token, else random.
static void s_stem (const json_t *response, char *stem, size_t size)
{
    const char *id = s_str (response, "responseId");
    size_t len = id ? strlen (id) : 0;
    bool plain = len > 0 && len < size && len <= 64;
    for (size_t i = 0; plain && i < len; i++) {
        char c = id[i];
        plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_';
    }
    if (plain)
        snprintf (stem, size, "%s", id);
    else
        s_random_hex (stem, size);
}

//  Compact JSON with the fewest digits that read back as the same numbers: 48.85, not
//  48.850000000000001 (jansson prints 17 significant digits unless told otherwise).
static char *s_dumps_short (const json_t *value)
{
    for (int precision = 15; precision < 17; precision++) {
        char *text = json_dumps (value, JSON_COMPACT | JSON_REAL_PRECISION (precision));
        if (!text)
            return NULL;
        json_t *back = json_loads (text, JSON_DECODE_ANY, NULL);
        bool same = back && json_equal (back, value);
        json_decref (back);
        if (same)
            return text;
        free (text);
    }
    return json_dumps (value, JSON_COMPACT | JSON_REAL_PRECISION (17));
}

//  A growable byte string (text may hold NULs: lengths, never strlen).
typedef struct {
    char *data;
    size_t len, cap;
    bool nomem;
} s_text_t;

static void s_text_add (s_text_t *self, const char *data, size_t len)
{
    if (self->len + len + 1 > self->cap) {
        size_t cap = self->cap ? self->cap : 256;
        while (cap < self->len + len + 1)
            cap *= 2;
        char *grown = realloc (self->data, cap);
        if (!grown) {
            self->nomem = true;
            return;
        }
        self->data = grown;
        self->cap = cap;
    }
    memcpy (self->data + self->len, data, len);
    self->len += len;
    self->data[self->len] = 0;
}

//  ---------------------------------------------------------------------------
//  Requests: OpenAI chat completions -> Gemini generateContent

typedef struct {
    ar_xlate_error_t *err;
    bool nomem;
} s_req_t;

//  A member path into a fixed buffer: a path too long for it is cut (it only names the place
//  for the caller's error message), which the truncation warning would otherwise refuse.
static void s_path (char *out, size_t size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (out, size, format, args);
    va_end (args);
}

//  Refuse the request, naming the member (never its value). Returns -1.
static int s_refuse (s_req_t *req, const char *param, const char *message)
{
    if (req->err) {
        req->err->status = 400;
        s_path (req->err->param, sizeof req->err->param, "%s", param ? param : "");
        snprintf (req->err->message, sizeof req->err->message, "%s", message);
    }
    return -1;
}

//  A text part, unless empty: Vertex refuses a request with an empty text part.
static void s_add_text (s_req_t *req, json_t *parts, const char *text, size_t len)
{
    if (len > 0)
        s_push (parts, json_pack ("{s:s%}", "text", text, len), &req->nomem);
}

//  ---------------------------------------------------------------------------
//  JSON Schema -> Gemini Schema (an OpenAPI 3.0 subset). Members Gemini has no field for
//  but whose loss only loosens the schema are dropped; members that change what is valid
//  and cannot be expressed are refused, naming their path.

static const char *s_schema_type (const char *name)
{
    static const char *types[][2] = {
        {"string", "STRING"}, {"number", "NUMBER"}, {"integer", "INTEGER"}, {"boolean", "BOOLEAN"},
        {"array", "ARRAY"},   {"object", "OBJECT"}, {"null", "NULL"}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (s_ieq (name, types[i][0]))
            return types[i][1];
    return NULL;
}

//  Formats Gemini accepts; it refuses others, and a format is only a hint, so they go.
static bool s_schema_format (const char *format)
{
    static const char *formats[] = {"enum", "date-time", "int32", "int64", "float", "double"};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (s_streq (format, formats[i]))
            return true;
    return false;
}

static bool s_is_null_schema (const json_t *schema)
{
    return json_object_size (schema) == 1 && s_ieq (s_str (schema, "type"), "null");
}

static json_t *s_schema (s_req_t *req, const json_t *defs, const json_t *in, const char *path,
                         int depth, int refs);

//  {"$ref":"#/$defs/X", ...}: the definition, with the siblings of $ref applied over it.
static json_t *s_schema_ref (s_req_t *req, const json_t *defs, const json_t *in, const char *path,
                             int depth, int refs)
{
    char sub[S_PATH_MAX];
    s_path (sub, sizeof sub, "%s.$ref", path);
    const char *target = s_str (in, "$ref");
    const char *name = NULL;
    if (target && strncmp (target, "#/$defs/", 8) == 0)
        name = target + 8;
    else if (target && strncmp (target, "#/definitions/", 14) == 0)
        name = target + 14;
    const json_t *def = name ? json_object_get (defs, name) : NULL;
    if (!json_is_object (def)) {
        s_refuse (req, sub, "$ref must name a definition in the schema's own $defs");
        return NULL;
    }
    if (refs >= S_REFS_MAX) {
        s_refuse (req, sub, "recursive schemas cannot be expressed for Gemini");
        return NULL;
    }
    json_t *merged = json_deep_copy (def);
    if (!merged) {
        req->nomem = true;
        return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)in, key, value) if (strcmp (key, "$ref") != 0)
        json_object_set (merged, key, value);
    json_t *out = s_schema (req, defs, merged, path, depth + 1, refs + 1);
    json_decref (merged);
    return out;
}

//  "type": a name, or an array of names of which one may be "null" (-> nullable).
static int s_schema_type_member (s_req_t *req, const json_t *value, const char *path, json_t *out,
                                 bool *nullable)
{
    const char *type = NULL;
    if (json_is_string (value)) {
        type = s_schema_type (json_string_value (value));
        if (!type)
            return s_refuse (req, path, "unknown schema type");
    } else if (json_is_array (value)) {
        size_t i, others = 0;
        json_t *name;
        json_array_foreach (value, i, name)
        {
            const char *mapped = s_schema_type (json_string_value (name));
            if (!mapped)
                return s_refuse (req, path, "unknown schema type");
            if (s_streq (mapped, "NULL"))
                *nullable = true;
            else {
                type = mapped;
                others++;
            }
        }
        if (others > 1)
            return s_refuse (req, path,
                             "a schema of several types cannot be expressed for "
                             "Gemini; use anyOf");
        if (others == 0)
            type = "NULL";
    } else
        return s_refuse (req, path, "schema type must be a string or an array of strings");
    s_set (out, "type", json_string (type), &req->nomem);
    return 0;
}

//  anyOf / oneOf / a one-member allOf, after the node's own members: {"type":"null"}
//  branches become nullable; one branch left is folded into the node (its own members win).
static int s_schema_branches (s_req_t *req, const json_t *defs, const json_t *branches,
                              const char *key, const char *path, int depth, int refs, json_t *out,
                              bool *nullable)
{
    char sub[S_PATH_MAX];
    json_t *kept = json_array ();
    size_t i;
    json_t *branch;
    json_array_foreach (branches, i, branch)
    {
        if (s_is_null_schema (branch)) {
            *nullable = true;
            continue;
        }
        s_path (sub, sizeof sub, "%s.%s[%zu]", path, key, i);
        json_t *converted = s_schema (req, defs, branch, sub, depth + 1, refs);
        if (!converted) {
            json_decref (kept);
            return -1;
        }
        s_push (kept, converted, &req->nomem);
    }
    if (json_array_size (kept) == 1)
        json_object_update_missing (out, json_array_get (kept, 0));
    else if (json_array_size (kept) > 1)
        s_set (out, "anyOf", json_incref (kept), &req->nomem);
    else if (!json_object_get (out, "type"))
        s_set (out, "type", json_string ("NULL"), &req->nomem);
    json_decref (kept);
    return 0;
}

static json_t *s_schema (s_req_t *req, const json_t *defs, const json_t *in, const char *path,
                         int depth, int refs)
{
    if (depth > S_SCHEMA_MAX) {
        s_refuse (req, path, "schema nests too deeply");
        return NULL;
    }
    if (!json_is_object (in)) {
        s_refuse (req, path, "a schema must be an object");
        return NULL;
    }
    if (json_object_get (in, "$ref"))
        return s_schema_ref (req, defs, in, path, depth, refs);

    json_t *out = json_object ();
    if (!out) {
        req->nomem = true;
        return NULL;
    }
    bool nullable = false;
    const json_t *branches = NULL;
    const char *branches_key = NULL;
    char sub[S_PATH_MAX];
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)in, key, value)
    {
        s_path (sub, sizeof sub, "%s.%s", path, key);
        if (strcmp (key, "type") == 0) {
            if (s_schema_type_member (req, value, sub, out, &nullable))
                goto fail;
        } else if (strcmp (key, "properties") == 0) {
            if (!json_is_object (value)) {
                s_refuse (req, sub, "properties must be an object");
                goto fail;
            }
            json_t *properties = json_object ();
            const char *name;
            json_t *property;
            json_object_foreach (value, name, property)
            {
                s_path (sub, sizeof sub, "%s.properties.%s", path, name);
                json_t *converted = s_schema (req, defs, property, sub, depth + 1, refs);
                if (!converted) {
                    json_decref (properties);
                    goto fail;
                }
                s_set (properties, name, converted, &req->nomem);
            }
            s_set (out, "properties", properties, &req->nomem);
        } else if (strcmp (key, "items") == 0) {
            if (!json_is_object (value)) {
                s_refuse (req, sub, "tuple items cannot be expressed for Gemini");
                goto fail;
            }
            json_t *converted = s_schema (req, defs, value, sub, depth + 1, refs);
            if (!converted)
                goto fail;
            s_set (out, "items", converted, &req->nomem);
        } else if (strcmp (key, "anyOf") == 0 || strcmp (key, "oneOf") == 0 ||
                   strcmp (key, "allOf") == 0) {
            //  oneOf is taken as anyOf: for one generated value they differ only when
            //  branches overlap. allOf of several schemas would need merging them.
            if (!json_is_array (value) || json_array_size (value) == 0 || branches ||
                (strcmp (key, "allOf") == 0 && json_array_size (value) > 1)) {
                s_refuse (req, sub, "this combination of schemas cannot be expressed for Gemini");
                goto fail;
            }
            branches = value;
            branches_key = key;
        } else if (strcmp (key, "enum") == 0) {
            size_t i;
            json_t *item;
            json_array_foreach (value, i, item) if (!json_is_string (item)) break;
            if (!json_is_array (value) || i < json_array_size (value)) {
                s_refuse (req, sub, "Gemini takes only string enum values");
                goto fail;
            }
            s_set (out, "enum", json_deep_copy (value), &req->nomem);
        } else if (strcmp (key, "const") == 0) {
            if (!json_is_string (value)) {
                s_refuse (req, sub, "Gemini takes only a string const (as a one-value enum)");
                goto fail;
            }
            s_set (out, "enum", json_pack ("[o]", json_deep_copy (value)), &req->nomem);
        } else if (strcmp (key, "not") == 0 || strcmp (key, "if") == 0 ||
                   strcmp (key, "prefixItems") == 0 || strcmp (key, "patternProperties") == 0 ||
                   strcmp (key, "dependentSchemas") == 0 || strcmp (key, "contains") == 0) {
            s_refuse (req, sub, "this schema keyword cannot be expressed for Gemini");
            goto fail;
        } else if (strcmp (key, "nullable") == 0)
            nullable = nullable || json_is_true (value);
        else if (strcmp (key, "format") == 0) {
            if (s_schema_format (json_string_value (value)))
                s_set (out, key, json_deep_copy (value), &req->nomem);
        } else if (strcmp (key, "description") == 0 || strcmp (key, "title") == 0 ||
                   strcmp (key, "pattern") == 0) {
            if (json_is_string (value))
                s_set (out, key, json_deep_copy (value), &req->nomem);
        } else if (strcmp (key, "minimum") == 0 || strcmp (key, "maximum") == 0) {
            if (json_is_number (value))
                s_set (out, key, json_deep_copy (value), &req->nomem);
        } else if (strcmp (key, "minItems") == 0 || strcmp (key, "maxItems") == 0 ||
                   strcmp (key, "minLength") == 0 || strcmp (key, "maxLength") == 0 ||
                   strcmp (key, "minProperties") == 0 || strcmp (key, "maxProperties") == 0) {
            if (json_is_integer (value))
                s_set (out, key, json_deep_copy (value), &req->nomem);
        } else if (strcmp (key, "required") == 0 || strcmp (key, "propertyOrdering") == 0) {
            if (json_is_array (value))
                s_set (out, key, json_deep_copy (value), &req->nomem);
        } else if (strcmp (key, "default") == 0 || strcmp (key, "example") == 0)
            s_set (out, key, json_deep_copy (value), &req->nomem);
        //  Everything else is dropped: $schema, $id, $defs (used through $ref), strict,
        //  additionalProperties (Gemini generates no undeclared members anyway), and
        //  constraints Gemini has no field for (multipleOf, uniqueItems, exclusiveMinimum...).
    }
    if (branches &&
        s_schema_branches (req, defs, branches, branches_key, path, depth, refs, out, &nullable))
        goto fail;
    if (json_object_get (out, "enum") && !json_object_get (out, "type"))
        s_set (out, "type", json_string ("STRING"), &req->nomem);
    if (nullable)
        s_set (out, "nullable", json_true (), &req->nomem);
    return out;
fail:
    json_decref (out);
    return NULL;
}

//  A whole schema: its root's $defs (or definitions) resolve the $refs inside it.
static json_t *s_schema_root (s_req_t *req, const json_t *schema, const char *path)
{
    const json_t *defs = json_object_get (schema, "$defs");
    if (!defs)
        defs = json_object_get (schema, "definitions");
    return s_schema (req, defs, schema, path, 0, 0);
}

//  ---------------------------------------------------------------------------
//  Message parts

//  A file extension's media type, for URLs Gemini fetches itself (it wants the type named).
static const char *s_mime_of_uri (const char *uri)
{
    static const char *types[][2] = {
        {"png", "image/png"},       {"jpg", "image/jpeg"},      {"jpeg", "image/jpeg"},
        {"webp", "image/webp"},     {"gif", "image/gif"},       {"heic", "image/heic"},
        {"heif", "image/heif"},     {"pdf", "application/pdf"}, {"txt", "text/plain"},
        {"mp3", "audio/mpeg"},      {"wav", "audio/wav"},       {"flac", "audio/flac"},
        {"aac", "audio/aac"},       {"ogg", "audio/ogg"},       {"mp4", "video/mp4"},
        {"mov", "video/quicktime"}, {"mpeg", "video/mpeg"},     {"mpg", "video/mpg"},
        {"webm", "video/webm"},     {"wmv", "video/wmv"},       {"flv", "video/x-flv"},
        {"3gp", "video/3gpp"}};
    const char *start = strstr (uri, "://");
    start = start ? start + 3 : uri;
    size_t end = strcspn (start, "?#");
    size_t dot = end;
    while (dot > 0 && start[dot - 1] != '.' && start[dot - 1] != '/')
        dot--;
    if (dot == 0 || start[dot - 1] != '.' || end - dot > 8)
        return NULL;
    char ext[9] = {0};
    memcpy (ext, start + dot, end - dot);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (s_ieq (ext, types[i][0]))
            return types[i][1];
    return NULL;
}

//  A URL to media: data: URLs go inline, http(s) and gs:// URLs by reference.
static json_t *s_media_part (s_req_t *req, const char *url, const char *path)
{
    if (strncmp (url, "data:", 5) == 0) {
        const char *comma = strchr (url, ',');
        size_t mime_len = strcspn (url + 5, ";,");
        bool base64 = comma && comma - url >= 12 && strncmp (comma - 7, ";base64", 7) == 0;
        if (!base64 || mime_len == 0 || !memchr (url + 5, '/', mime_len) || !comma[1]) {
            s_refuse (req, path, "a data URL must be data:<media type>;base64,<data>");
            return NULL;
        }
        return json_pack ("{s:{s:s%, s:s}}", "inlineData", "mimeType", url + 5, mime_len, "data",
                          comma + 1);
    }
    if (strncmp (url, "https://", 8) == 0 || strncmp (url, "http://", 7) == 0 ||
        strncmp (url, "gs://", 5) == 0) {
        const char *mime = s_mime_of_uri (url);
        if (!mime) {
            s_refuse (req, path, "the media type of the URL cannot be told from its extension");
            return NULL;
        }
        return json_pack ("{s:{s:s, s:s}}", "fileData", "mimeType", mime, "fileUri", url);
    }
    s_refuse (req, path, "a media URL must be a data:, http(s):// or gs:// URL");
    return NULL;
}

//  One part of a user message's content array.
static int s_user_part (s_req_t *req, const json_t *part, const char *path, json_t *parts)
{
    char sub[S_PATH_MAX];
    const char *type = s_str (part, "type");
    json_t *media = NULL;
    if (s_streq (type, "text")) {
        const json_t *text = json_object_get (part, "text");
        s_path (sub, sizeof sub, "%s.text", path);
        if (!json_is_string (text))
            return s_refuse (req, sub, "a text part needs text");
        s_add_text (req, parts, json_string_value (text), json_string_length (text));
        return 0;
    }
    if (s_streq (type, "image_url")) {
        const json_t *image = json_object_get (part, "image_url");
        const char *url = json_is_string (image) ? json_string_value (image) : s_str (image, "url");
        s_path (sub, sizeof sub, "%s.image_url.url", path);
        if (!url)
            return s_refuse (req, sub, "an image_url part needs a URL");
        media = s_media_part (req, url, sub);
    } else if (s_streq (type, "input_audio")) {
        const json_t *audio = json_object_get (part, "input_audio");
        const char *format = s_str (audio, "format");
        const char *data = s_str (audio, "data");
        const char *mime = s_streq (format, "wav")   ? "audio/wav"
                           : s_streq (format, "mp3") ? "audio/mpeg"
                                                     : NULL;
        s_path (sub, sizeof sub, "%s.input_audio.%s", path, mime ? "data" : "format");
        if (!mime || !data || !*data)
            return s_refuse (req, sub, "input_audio needs base64 data in wav or mp3");
        media = json_pack ("{s:{s:s, s:s}}", "inlineData", "mimeType", mime, "data", data);
    } else if (s_streq (type, "file")) {
        const json_t *file = json_object_get (part, "file");
        const char *data = s_str (file, "file_data");
        const char *filename = s_str (file, "filename");
        if (s_given (file, "file_id")) {
            s_path (sub, sizeof sub, "%s.file.file_id", path);
            return s_refuse (req, sub, "uploaded file ids cannot be sent to Gemini");
        }
        s_path (sub, sizeof sub, "%s.file.file_data", path);
        if (!data || !*data)
            return s_refuse (req, sub, "a file part needs file_data");
        if (strncmp (data, "data:", 5) == 0)
            media = s_media_part (req, data, sub);
        else {
            //  Bare base64: the filename tells the type.
            const char *mime = filename ? s_mime_of_uri (filename) : NULL;
            if (!mime)
                return s_refuse (req, sub, "the media type of the file cannot be told");
            media = json_pack ("{s:{s:s, s:s}}", "inlineData", "mimeType", mime, "data", data);
        }
    } else {
        s_path (sub, sizeof sub, "%s.type", path);
        return s_refuse (req, sub, "this content part type cannot be sent to Gemini");
    }
    if (!media)
        return -1;
    s_push (parts, media, &req->nomem);
    return 0;
}

//  Content that may only be text (system, developer, tool, assistant): a string, or text
//  parts (and an assistant's refusal parts) in order, into text.
static int s_content_text (s_req_t *req, const json_t *content, const char *path, s_text_t *text,
                           json_t *parts)
{
    char sub[S_PATH_MAX];
    if (!content || json_is_null (content))
        return 0;
    if (json_is_string (content)) {
        if (parts)
            s_add_text (req, parts, json_string_value (content), json_string_length (content));
        else
            s_text_add (text, json_string_value (content), json_string_length (content));
        return 0;
    }
    if (!json_is_array (content))
        return s_refuse (req, path, "content must be a string or an array of parts");
    size_t i;
    json_t *part;
    json_array_foreach (content, i, part)
    {
        const char *type = s_str (part, "type");
        const json_t *value = s_streq (type, "text")      ? json_object_get (part, "text")
                              : s_streq (type, "refusal") ? json_object_get (part, "refusal")
                                                          : NULL;
        if (!json_is_string (value)) {
            s_path (sub, sizeof sub, "%s[%zu].type", path, i);
            return s_refuse (req, sub, "only text parts can be sent in this message");
        }
        if (parts)
            s_add_text (req, parts, json_string_value (value), json_string_length (value));
        else
            s_text_add (text, json_string_value (value), json_string_length (value));
    }
    return 0;
}

static int s_user_parts (s_req_t *req, const json_t *message, const char *path, json_t *parts)
{
    char sub[S_PATH_MAX];
    const json_t *content = json_object_get (message, "content");
    s_path (sub, sizeof sub, "%s.content", path);
    if (!json_is_array (content))
        return s_content_text (req, content, sub, NULL, parts);
    size_t i;
    json_t *part;
    json_array_foreach (content, i, part)
    {
        s_path (sub, sizeof sub, "%s.content[%zu]", path, i);
        if (s_user_part (req, part, sub, parts))
            return -1;
    }
    return 0;
}

//  An assistant message: its text, then its tool calls as functionCall parts.
static int s_assistant_parts (s_req_t *req, const json_t *message, const char *path, json_t *parts)
{
    char sub[S_PATH_MAX];
    s_path (sub, sizeof sub, "%s.content", path);
    if (s_content_text (req, json_object_get (message, "content"), sub, NULL, parts))
        return -1;
    if (s_given (message, "function_call")) {
        s_path (sub, sizeof sub, "%s.function_call", path);
        return s_refuse (req, sub, "function_call is deprecated; send tool_calls");
    }
    const json_t *calls = s_given (message, "tool_calls");
    if (!calls)
        return 0;
    s_path (sub, sizeof sub, "%s.tool_calls", path);
    if (!json_is_array (calls))
        return s_refuse (req, sub, "tool_calls must be an array");
    size_t j;
    json_t *call;
    json_array_foreach (calls, j, call)
    {
        const char *type = s_str (call, "type");
        if (type && strcmp (type, "function") != 0) {
            s_path (sub, sizeof sub, "%s.tool_calls[%zu].type", path, j);
            return s_refuse (req, sub, "only function tool calls can be sent to Gemini");
        }
        const json_t *function = json_object_get (call, "function");
        const char *name = s_str (function, "name");
        if (!name || !*name) {
            s_path (sub, sizeof sub, "%s.tool_calls[%zu].function.name", path, j);
            return s_refuse (req, sub, "a tool call needs a function name");
        }
        s_path (sub, sizeof sub, "%s.tool_calls[%zu].function.arguments", path, j);
        const json_t *arguments = json_object_get (function, "arguments");
        if (!json_is_string (arguments))
            return s_refuse (req, sub, "arguments must be a string of JSON");
        //  Some clients send "" for a call without arguments.
        json_t *args = json_string_length (arguments) == 0
                           ? json_object ()
                           : json_loadb (json_string_value (arguments),
                                         json_string_length (arguments), 0, NULL);
        if (!json_is_object (args)) {
            json_decref (args);
            return s_refuse (req, sub, "arguments must be a JSON object");
        }
        json_t *part = json_pack ("{s:{s:s, s:o}}", "functionCall", "name", name, "args", args);
        if (part && j == 0)
            s_set (part, "thoughtSignature", json_string (S_SKIP_SIGNATURE), &req->nomem);
        s_push (parts, part, &req->nomem);
    }
    return 0;
}

//  The function name of the tool call with this id, from the nearest assistant message
//  before message i (Gemini matches responses to calls by name; OpenAI by id).
static const char *s_call_name (const json_t *messages, size_t i, const char *id)
{
    while (i-- > 0) {
        const json_t *message = json_array_get (messages, i);
        if (!s_streq (s_str (message, "role"), "assistant"))
            continue;
        size_t j;
        json_t *call;
        json_array_foreach (
            json_object_get (message, "tool_calls"), j,
            call) if (s_streq (s_str (call, "id"),
                               id)) return s_str (json_object_get (call, "function"), "name");
    }
    return NULL;
}

//  A tool message: a functionResponse naming the function whose call it answers.
static int s_tool_part (s_req_t *req, const json_t *messages, size_t i, const char *path,
                        json_t *parts)
{
    char sub[S_PATH_MAX];
    const json_t *message = json_array_get (messages, i);
    const char *id = s_str (message, "tool_call_id");
    const char *name = id ? s_call_name (messages, i, id) : NULL;
    s_path (sub, sizeof sub, "%s.tool_call_id", path);
    if (!name)
        return s_refuse (req, sub,
                         "tool_call_id matches no tool call of an earlier assistant "
                         "message");
    s_text_t text = {0};
    s_path (sub, sizeof sub, "%s.content", path);
    if (s_content_text (req, json_object_get (message, "content"), sub, &text, NULL)) {
        free (text.data);
        return -1;
    }
    if (text.nomem) {
        req->nomem = true;
        free (text.data);
        return -1;
    }
    //  Gemini wants an object: a result that is one goes as it is, anything else as text.
    json_t *response = text.len ? json_loadb (text.data, text.len, 0, NULL) : NULL;
    if (!json_is_object (response)) {
        json_decref (response);
        response = json_pack ("{s:s%}", "content", text.data ? text.data : "", text.len);
    }
    free (text.data);
    s_push (parts,
            json_pack ("{s:{s:s, s:o}}", "functionResponse", "name", name, "response", response),
            &req->nomem);
    return 0;
}

//  Append a turn, merged into the last one when the role repeats; empty turns are dropped.
static void s_add_turn (s_req_t *req, json_t *contents, const char *role, json_t *parts)
{
    json_t *last = json_array_get (contents, json_array_size (contents) - 1);
    if (json_array_size (parts) == 0)
        json_decref (parts);
    else if (last && s_streq (s_str (last, "role"), role)) {
        if (json_array_extend (json_object_get (last, "parts"), parts))
            req->nomem = true;
        json_decref (parts);
    } else
        s_push (contents, json_pack ("{s:s, s:o}", "role", role, "parts", parts), &req->nomem);
}

static int s_messages (s_req_t *req, const json_t *messages, json_t *contents, json_t *system)
{
    char path[48]; // messages[<index>]
    if (!json_is_array (messages) || json_array_size (messages) == 0)
        return s_refuse (req, "messages", "messages must be a non-empty array");
    size_t i;
    json_t *message;
    json_array_foreach (messages, i, message)
    {
        snprintf (path, sizeof path, "messages[%zu]", i);
        const char *role = s_str (message, "role");
        json_t *parts = json_array ();
        int rc;
        const char *gemini_role = "user";
        char sub[S_PATH_MAX];
        s_path (sub, sizeof sub, "%s.content", path);
        if (s_streq (role, "system") || s_streq (role, "developer")) {
            //  Gemini has one system instruction: every system message adds to it, in order.
            rc = s_content_text (req, json_object_get (message, "content"), sub, NULL, system);
            json_decref (parts);
            if (rc)
                return -1;
            continue;
        }
        if (s_streq (role, "user"))
            rc = s_user_parts (req, message, path, parts);
        else if (s_streq (role, "assistant")) {
            gemini_role = "model";
            rc = s_assistant_parts (req, message, path, parts);
        } else if (s_streq (role, "tool"))
            rc = s_tool_part (req, messages, i, path, parts);
        else {
            s_path (sub, sizeof sub, "%s.role", path);
            rc = s_refuse (req, sub, "role must be system, developer, user, assistant or tool");
        }
        if (rc) {
            json_decref (parts);
            return -1;
        }
        s_add_turn (req, contents, gemini_role, parts);
    }
    if (json_array_size (contents) == 0)
        return s_refuse (req, "messages",
                         "messages need a user or assistant message with "
                         "content");
    return 0;
}

//  ---------------------------------------------------------------------------
//  Options

//  Options Gemini cannot honour and whose loss would change the answer the caller gets.
static int s_refusals (s_req_t *req, const json_t *request)
{
    const json_t *n = s_given (request, "n");
    if (n && (!json_is_integer (n) || json_integer_value (n) < 1))
        return s_refuse (req, "n", "n must be a positive integer");
    if (n && json_integer_value (n) > 1)
        return s_refuse (req, "n", "n > 1 is not supported: one choice is streamed");
    if (json_is_true (json_object_get (request, "logprobs")))
        return s_refuse (req, "logprobs", "logprobs are not supported for Gemini");
    const json_t *top_logprobs = s_given (request, "top_logprobs");
    if (top_logprobs && !(json_is_integer (top_logprobs) && json_integer_value (top_logprobs) == 0))
        return s_refuse (req, "top_logprobs", "logprobs are not supported for Gemini");
    if (s_given (request, "audio"))
        return s_refuse (req, "audio", "audio output is not supported for Gemini");
    size_t i;
    json_t *modality;
    json_array_foreach (json_object_get (request, "modalities"), i, modality) if (
        !s_streq (json_string_value (modality),
                  "text")) return s_refuse (req, "modalities",
                                            "only text output is supported for Gemini");
    if (json_object_size (json_object_get (request, "logit_bias")) > 0)
        return s_refuse (req, "logit_bias", "logit_bias is not supported for Gemini");
    if (s_given (request, "functions") || s_given (request, "function_call"))
        return s_refuse (req, s_given (request, "functions") ? "functions" : "function_call",
                         "functions and function_call are deprecated; send tools");
    if (s_given (request, "web_search_options"))
        return s_refuse (req, "web_search_options", "web search is not supported for Gemini");
    return 0;
}

//  A number option under Gemini's name.
static int s_number (s_req_t *req, const json_t *request, const char *from, json_t *config,
                     const char *to, bool integer)
{
    const json_t *value = s_given (request, from);
    if (!value)
        return 0;
    if (integer ? !json_is_integer (value) : !json_is_number (value))
        return s_refuse (req, from, integer ? "must be an integer" : "must be a number");
    s_set (config, to, json_deep_copy (value), &req->nomem);
    return 0;
}

static int s_response_format (s_req_t *req, const json_t *format, json_t *config)
{
    const char *type = s_str (format, "type");
    if (s_streq (type, "text"))
        return 0;
    if (s_streq (type, "json_object")) {
        s_set (config, "responseMimeType", json_string ("application/json"), &req->nomem);
        return 0;
    }
    if (!s_streq (type, "json_schema"))
        return s_refuse (req, "response_format.type",
                         "response_format must be text, json_object or json_schema");
    const json_t *spec = json_object_get (format, "json_schema");
    if (!json_is_object (spec))
        return s_refuse (req, "response_format.json_schema", "json_schema must be an object");
    s_set (config, "responseMimeType", json_string ("application/json"), &req->nomem);
    const json_t *schema = s_given (spec, "schema");
    if (!schema)
        return 0;
    json_t *converted = s_schema_root (req, schema, "response_format.json_schema.schema");
    if (!converted)
        return -1;
    s_set (config, "responseSchema", converted, &req->nomem);
    return 0;
}

static int s_generation_config (s_req_t *req, const json_t *request, json_t *config)
{
    const char *max =
        s_given (request, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (s_number (req, request, max, config, "maxOutputTokens", true) ||
        s_number (req, request, "temperature", config, "temperature", false) ||
        s_number (req, request, "top_p", config, "topP", false) ||
        s_number (req, request, "seed", config, "seed", true) ||
        s_number (req, request, "presence_penalty", config, "presencePenalty", false) ||
        s_number (req, request, "frequency_penalty", config, "frequencyPenalty", false) ||
        s_number (req, request, "n", config, "candidateCount", true))
        return -1;
    const json_t *stop = s_given (request, "stop");
    if (json_is_string (stop))
        s_set (config, "stopSequences", json_pack ("[o]", json_deep_copy (stop)), &req->nomem);
    else if (stop) {
        size_t i;
        json_t *item;
        json_array_foreach (stop, i, item) if (!json_is_string (item)) break;
        if (!json_is_array (stop) || i < json_array_size (stop))
            return s_refuse (req, "stop", "stop must be a string or an array of strings");
        s_set (config, "stopSequences", json_deep_copy (stop), &req->nomem);
    }
    const json_t *format = s_given (request, "response_format");
    if (format && s_response_format (req, format, config))
        return -1;
    return 0;
}

static int s_tools (s_req_t *req, const json_t *request, json_t *out)
{
    char path[S_PATH_MAX];
    const json_t *tools = s_given (request, "tools");
    if (!tools)
        return 0;
    if (!json_is_array (tools))
        return s_refuse (req, "tools", "tools must be an array");
    json_t *declarations = json_array ();
    size_t i;
    json_t *tool;
    json_array_foreach (tools, i, tool)
    {
        const json_t *function = json_object_get (tool, "function");
        const char *name = s_str (function, "name");
        if (!s_streq (s_str (tool, "type"), "function"))
            snprintf (path, sizeof path, "tools[%zu].type", i);
        else if (!name || !*name)
            snprintf (path, sizeof path, "tools[%zu].function.name", i);
        else
            path[0] = 0;
        if (path[0]) {
            json_decref (declarations);
            return s_refuse (req, path, "only function tools with a name can be sent to Gemini");
        }
        json_t *declaration = json_pack ("{s:s}", "name", name);
        const json_t *description = json_object_get (function, "description");
        if (json_is_string (description))
            s_set (declaration, "description", json_deep_copy (description), &req->nomem);
        const json_t *parameters = s_given (function, "parameters");
        if (parameters) {
            snprintf (path, sizeof path, "tools[%zu].function.parameters", i);
            json_t *converted = s_schema_root (req, parameters, path);
            if (!converted) {
                json_decref (declaration);
                json_decref (declarations);
                return -1;
            }
            s_set (declaration, "parameters", converted, &req->nomem);
        }
        //  function.strict goes: Gemini always holds calls to the declared schema.
        s_push (declarations, declaration, &req->nomem);
    }
    if (json_array_size (declarations) > 0)
        s_set (out, "tools", json_pack ("[{s:o}]", "functionDeclarations", declarations),
               &req->nomem);
    else
        json_decref (declarations);
    return 0;
}

static int s_tool_config (s_req_t *req, const json_t *request, json_t *out)
{
    const json_t *choice = s_given (request, "tool_choice");
    if (!choice)
        return 0;
    const char *mode = NULL;
    const char *name = NULL;
    if (json_is_string (choice)) {
        const char *value = json_string_value (choice);
        mode = s_streq (value, "auto")       ? "AUTO"
               : s_streq (value, "none")     ? "NONE"
               : s_streq (value, "required") ? "ANY"
                                             : NULL;
    } else if (s_streq (s_str (choice, "type"), "function")) {
        name = s_str (json_object_get (choice, "function"), "name");
        mode = name && *name ? "ANY" : NULL;
    }
    if (!mode)
        return s_refuse (req, "tool_choice",
                         "tool_choice must be auto, none, required or a named function");
    json_t *config = json_pack ("{s:s}", "mode", mode);
    if (name)
        s_set (config, "allowedFunctionNames", json_pack ("[s]", name), &req->nomem);
    s_set (out, "toolConfig", json_pack ("{s:o}", "functionCallingConfig", config), &req->nomem);
    return 0;
}

json_t *ar_xlate_openai_to_gemini_request (const json_t *request, ar_xlate_error_t *err)
{
    s_req_t req = {err, false};
    if (err)
        memset (err, 0, sizeof *err);
    if (!json_is_object (request)) {
        s_refuse (&req, "", "the request must be a JSON object");
        return NULL;
    }
    if (s_refusals (&req, request))
        return NULL;
    json_t *out = json_object ();
    json_t *contents = json_array ();
    json_t *system = json_array ();
    json_t *config = json_object ();
    if (!out || !contents || !system || !config)
        req.nomem = true;
    else if (s_messages (&req, json_object_get (request, "messages"), contents, system) ||
             s_generation_config (&req, request, config) || s_tools (&req, request, out) ||
             s_tool_config (&req, request, out))
        goto fail;
    s_set (out, "contents", contents, &req.nomem);
    contents = NULL;
    if (json_array_size (system) > 0)
        s_set (out, "systemInstruction", json_pack ("{s:O}", "parts", system), &req.nomem);
    if (json_object_size (config) > 0)
        s_set (out, "generationConfig", json_incref (config), &req.nomem);
    //  Dropped on purpose: model (it goes in the URL); stream and stream_options (the URL
    //  picks streamGenerateContent, which always reports usage); user, store and metadata
    //  (OpenAI-side bookkeeping Gemini has no field for); parallel_tool_calls (Gemini has no
    //  switch; the caller handles however many calls come); reasoning_effort (thinking
    //  settings differ per Gemini model and are refused by models without thinking);
    //  service_tier and prediction (hints, not meaning).
    if (req.nomem)
        goto fail;
    json_decref (system);
    json_decref (config);
    return out;
fail:
    if (req.nomem && err) {
        err->status = 500;
        err->param[0] = 0;
        snprintf (err->message, sizeof err->message, "out of memory");
    }
    json_decref (out);
    json_decref (contents);
    json_decref (system);
    json_decref (config);
    return NULL;
}

//  ---------------------------------------------------------------------------
//  Responses: Gemini GenerateContentResponse -> OpenAI chat.completion

//  Token counts as Gemini reports them; a stream's early events carry usageMetadata with no
//  counts at all, so each count is taken only when present, and the latest one wins.
typedef struct {
    bool has_prompt, has_candidates, has_thoughts, has_cached, has_total, has_tool_use;
    int64_t prompt, candidates, thoughts, cached, total, tool_use;
} s_counts_t;

static void s_count (const json_t *meta, const char *key, bool *has, int64_t *value)
{
    const json_t *member = json_object_get (meta, key);
    if (json_is_integer (member) && json_integer_value (member) >= 0) {
        *value = json_integer_value (member);
        *has = true;
    }
}

static void s_counts_read (const json_t *response, s_counts_t *c)
{
    const json_t *meta = json_object_get (response, "usageMetadata");
    s_count (meta, "promptTokenCount", &c->has_prompt, &c->prompt);
    s_count (meta, "candidatesTokenCount", &c->has_candidates, &c->candidates);
    s_count (meta, "thoughtsTokenCount", &c->has_thoughts, &c->thoughts);
    s_count (meta, "cachedContentTokenCount", &c->has_cached, &c->cached);
    s_count (meta, "totalTokenCount", &c->has_total, &c->total);
    s_count (meta, "toolUsePromptTokenCount", &c->has_tool_use, &c->tool_use);
}

//  Prompt tokens include what built-in tools fed back (billed as input); completion tokens
//  include thinking (billed as output), as OpenAI counts reasoning.
static int64_t s_prompt_tokens (const s_counts_t *c)
{
    return c->prompt + c->tool_use;
}

static int64_t s_completion_tokens (const s_counts_t *c)
{
    return c->candidates + c->thoughts;
}

//  OpenAI's usage, with the thinking tokens completion_tokens includes said apart.
static json_t *s_usage_json (const s_counts_t *c)
{
    int64_t prompt = s_prompt_tokens (c), completion = s_completion_tokens (c);
    json_t *usage = ar_xlate_chunks_usage (
        prompt, completion, c->has_total ? c->total : prompt + completion, c->cached);
    if (usage &&
        json_object_set_new (usage, "completion_tokens_details",
                             json_pack ("{s:I}", "reasoning_tokens", (json_int_t)c->thoughts))) {
        json_decref (usage);
        return NULL;
    }
    return usage;
}

static void s_usage_fill (const s_counts_t *c, const json_t *response, ar_usage_t *usage)
{
    if (!usage)
        return;
    if (c->has_prompt || c->has_tool_use) {
        usage->input_tokens = s_prompt_tokens (c);
        usage->has_input = true;
    }
    if (c->has_candidates || c->has_thoughts) {
        usage->output_tokens = s_completion_tokens (c);
        usage->has_output = true;
    }
    if (c->has_cached) {
        usage->cached_input_tokens = c->cached;
        usage->has_cached = true;
    }
    const char *version = s_str (response, "modelVersion");
    if (version && *version && strlen (version) <= AR_WIRE_MODEL_MAX)
        snprintf (usage->model, sizeof usage->model, "%s", version);
}

static const char *s_finish_reason (const char *reason, bool tool_calls)
{
    static const char *filtered[] = {"SAFETY",
                                     "RECITATION",
                                     "BLOCKLIST",
                                     "PROHIBITED_CONTENT",
                                     "SPII",
                                     "IMAGE_SAFETY",
                                     "IMAGE_PROHIBITED_CONTENT",
                                     "IMAGE_RECITATION"};
    if (s_streq (reason, "MAX_TOKENS"))
        return "length";
    for (size_t i = 0; i < sizeof filtered / sizeof filtered[0]; i++)
        if (s_streq (reason, filtered[i]))
            return "content_filter";
    return tool_calls ? "tool_calls" : "stop";
}

//  The first candidate, or NULL; false when candidates is there but not an array of objects.
static bool s_candidate (const json_t *response, const json_t **candidate)
{
    const json_t *candidates = json_object_get (response, "candidates");
    *candidate = json_array_get (candidates, 0);
    if (candidates && !json_is_array (candidates))
        return false;
    return !*candidate || json_is_object (*candidate);
}

static const json_t *s_parts (const json_t *candidate)
{
    return json_object_get (json_object_get (candidate, "content"), "parts");
}

//  A functionCall part as an OpenAI tool call; index only in stream deltas.
static json_t *s_tool_call (const json_t *call, const char *stem, size_t k, bool index)
{
    char id[S_STEM_MAX + 32];
    const char *given = s_str (call, "id");
    if (given && *given)
        snprintf (id, sizeof id, "%s", given);
    else
        snprintf (id, sizeof id, "call_%s_%zu", stem, k);
    const json_t *args = json_object_get (call, "args");
    char *arguments = json_is_object (args) ? s_dumps_short (args) : strdup ("{}");
    const char *name = s_str (call, "name");
    json_t *out = arguments
                      ? json_pack ("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function",
                                   "function", "name", name ? name : "", "arguments", arguments)
                      : NULL;
    free (arguments);
    if (out && index && json_object_set_new (out, "index", json_integer ((json_int_t)k))) {
        json_decref (out);
        return NULL;
    }
    return out;
}

json_t *ar_xlate_gemini_to_openai_response (const json_t *response, const char *model,
                                            ar_usage_t *usage)
{
    const json_t *candidate;
    if (!json_is_object (response) || !s_candidate (response, &candidate))
        return NULL;
    char stem[S_STEM_MAX], id[S_STEM_MAX + 16];
    s_stem (response, stem, sizeof stem);
    snprintf (id, sizeof id, "chatcmpl-%s", stem);

    bool nomem = false;
    s_text_t text = {0};
    json_t *calls = json_array ();
    size_t i;
    json_t *part;
    json_array_foreach (s_parts (candidate), i, part)
    {
        const json_t *value = json_object_get (part, "text");
        const json_t *call = json_object_get (part, "functionCall");
        if (json_is_true (json_object_get (part, "thought")))
            continue; // thinking is not part of the answer
        if (json_is_string (value))
            s_text_add (&text, json_string_value (value), json_string_length (value));
        else if (json_is_object (call))
            s_push (calls, s_tool_call (call, stem, json_array_size (calls), false), &nomem);
    }
    const char *reason;
    if (candidate)
        reason = s_finish_reason (s_str (candidate, "finishReason"), json_array_size (calls) > 0);
    else if (s_str (json_object_get (response, "promptFeedback"), "blockReason"))
        reason = "content_filter"; // the prompt itself was blocked: no candidates at all
    else
        reason = "stop";

    json_t *message = json_pack ("{s:s}", "role", "assistant");
    if (text.len > 0 || json_array_size (calls) == 0)
        s_set (message, "content", json_stringn (text.data ? text.data : "", text.len), &nomem);
    else
        s_set (message, "content", json_null (), &nomem);
    if (json_array_size (calls) > 0)
        s_set (message, "tool_calls", json_incref (calls), &nomem);
    json_decref (calls);
    free (text.data);

    const char *name = model ? model : s_str (response, "modelVersion");
    json_t *out =
        json_pack ("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s, s:n}]}", "id", id, "object",
                   "chat.completion", "created", (json_int_t)time (NULL), "model", name ? name : "",
                   "choices", "index", 0, "message", message, "finish_reason", reason, "logprobs");
    s_counts_t counts = {0};
    s_counts_read (response, &counts);
    if (json_object_get (response, "usageMetadata"))
        s_set (out, "usage", s_usage_json (&counts), &nomem);
    if (nomem || text.nomem || !out) {
        json_decref (out);
        return NULL;
    }
    s_usage_fill (&counts, response, usage);
    return out;
}

//  ---------------------------------------------------------------------------
//  Streams: GenerateContentResponse events -> chat.completion.chunk events

typedef struct {
    ar_xlate_chunks_t out; // id (chatcmpl-<stem>, from the first event), model, what went out
    char stem[S_STEM_MAX];
    bool started;  // the role chunk went out
    bool finished; // the finish chunk went out
    size_t calls;  // functionCall parts so far: the next tool-call index
    s_counts_t counts;
} s_stream_t;
AR_XLATE_CHUNKS_FIRST (s_stream_t, out);

static void *s_stream_create (const char *model, bool include_usage)
{
    return ar_xlate_chunks_new (sizeof (s_stream_t), model, include_usage);
}

//  {"error":{"code":429,"message":"...","status":"RESOURCE_EXHAUSTED"}} in the stream.
static int s_stream_upstream_error (s_stream_t *self, const json_t *error,
                                    const ar_xlate_sink_t *sink)
{
    json_int_t code = json_integer_value (json_object_get (error, "code"));
    const char *message = s_str (error, "message");
    const char *type = code == 400   ? "invalid_request_error"
                       : code == 401 ? "authentication_error"
                       : code == 403 ? "permission_error"
                       : code == 404 ? "not_found_error"
                       : code == 429 ? "rate_limit_error"
                                     : "server_error";
    return ar_xlate_chunks_error (&self->out, sink, message ? message : "upstream error", type,
                                  s_str (error, "status"));
}

//  The parts of one event: text deltas and whole tool calls, thoughts dropped.
static int s_stream_parts (s_stream_t *self, const json_t *candidate, const ar_xlate_sink_t *sink)
{
    size_t i;
    json_t *part;
    json_array_foreach (s_parts (candidate), i, part)
    {
        const json_t *text = json_object_get (part, "text");
        const json_t *call = json_object_get (part, "functionCall");
        int rc = 0;
        if (json_is_true (json_object_get (part, "thought")))
            continue;
        if (json_is_string (text) && json_string_length (text) > 0)
            rc = ar_xlate_chunks_text (&self->out, sink, json_string_value (text),
                                       json_string_length (text));
        else if (json_is_object (call)) {
            if (self->calls >= S_TOOLS_MAX)
                return ar_xlate_chunks_error (&self->out, sink, "too many tool calls",
                                              "server_error", NULL);
            json_t *delta = s_tool_call (call, self->stem, self->calls++, true);
            rc = ar_xlate_chunks_delta (
                &self->out, sink, delta ? json_pack ("{s:[o]}", "tool_calls", delta) : NULL, NULL);
        }
        if (rc)
            return -1;
    }
    return 0;
}

static int s_stream_event (void *state, const char *name, const char *data, size_t len,
                           const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    s_stream_t *self = state;
    (void)name; // ?alt=sse events have no name: each is one GenerateContentResponse
    if (self->out.failed)
        return -1;
    json_t *root = json_loadb (data, len, 0, NULL);
    const json_t *candidate = NULL;
    if (!json_is_object (root) || !s_candidate (root, &candidate)) {
        json_decref (root);
        return ar_xlate_chunks_error (&self->out, sink, "malformed upstream event", "server_error",
                                      NULL);
    }
    const json_t *error = json_object_get (root, "error");
    if (error) {
        int rc = s_stream_upstream_error (self, error, sink);
        json_decref (root);
        return rc;
    }
    int rc = 0;
    if (!self->started) {
        s_stem (root, self->stem, sizeof self->stem);
        snprintf (self->out.id, sizeof self->out.id, "chatcmpl-%s", self->stem);
        self->started = true;
        rc = ar_xlate_chunks_role (&self->out, sink);
    }
    s_counts_read (root, &self->counts);
    s_usage_fill (&self->counts, root, usage);
    if (!rc)
        rc = s_stream_parts (self, candidate, sink);
    const char *reason = s_str (candidate, "finishReason");
    if (!rc && !self->finished) {
        //  A prompt blocked outright comes as promptFeedback and no candidates.
        const char *blocked =
            candidate ? NULL : s_str (json_object_get (root, "promptFeedback"), "blockReason");
        if (reason || blocked) {
            self->finished = true;
            rc = ar_xlate_chunks_finish (&self->out, sink,
                                         blocked ? "content_filter"
                                                 : s_finish_reason (reason, self->calls > 0));
        }
    }
    json_decref (root);
    return rc;
}

static int s_stream_finish (void *state, const ar_xlate_sink_t *sink, ar_usage_t *usage)
{
    s_stream_t *self = state;
    if (self->out.failed)
        return -1;
    if (!self->finished)
        //  Gemini ends every whole answer with a finishReason; without one it was cut off.
        return ar_xlate_chunks_error (&self->out, sink, "the upstream ended the stream mid-answer",
                                      "server_error", NULL);
    (void)usage; // filled event by event, so a broken stream still reports what came
    return ar_xlate_chunks_end (&self->out, sink, s_usage_json (&self->counts));
}

const ar_xlate_stream_ops_t ar_xlate_stream_gemini_to_openai = {
    s_stream_create, s_stream_event, s_stream_finish, ar_xlate_chunks_destroy};

//  ---------------------------------------------------------------------------
//  Self-test

//  Test JSON with ' for " so payloads read as they are sent; no test text holds a '.
static json_t *s_json (const char *text)
{
    char *copy = strdup (text);
    assert (copy);
    for (char *c = copy; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_error_t error;
    json_t *root = json_loads (copy, JSON_DECODE_ANY, &error);
    if (!root)
        fprintf (stderr, "test JSON: line %d: %s\n", error.line, error.text);
    assert (root);
    free (copy);
    return root;
}

static char *s_text (const char *text)
{
    json_t *root = s_json (text);
    char *dumped = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    assert (dumped);
    return dumped;
}

//  Translate a request, checking it is left unchanged; NULL and err when refused.
static json_t *s_test_request (const char *text, ar_xlate_error_t *err)
{
    json_t *request = s_json (text);
    json_t *before = json_deep_copy (request);
    json_t *out = ar_xlate_openai_to_gemini_request (request, err);
    assert (json_equal (request, before));
    json_decref (request);
    json_decref (before);
    return out;
}

static void s_expect_refusal (const char *text, const char *param)
{
    ar_xlate_error_t err;
    json_t *out = s_test_request (text, &err);
    if (out || err.status != 400 || strcmp (err.param, param) != 0)
        fprintf (stderr, "expected a refusal naming %s, got %s (%d)\n", param,
                 out ? "a translation" : err.param, err.status);
    assert (!out);
    assert (err.status == 400);
    assert (strcmp (err.param, param) == 0);
    assert (err.message[0]);
}

static void s_expect_equal (const json_t *got, const char *expected)
{
    json_t *want = s_json (expected);
    if (!json_equal (got, want)) {
        char *text = json_dumps (got, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf (stderr, "got: %s\n", text ? text : "(null)");
        free (text);
    }
    assert (json_equal (got, want));
    json_decref (want);
}

//  The first element of an array member: a completion's choice, a response's candidate.
static json_t *s_first (const json_t *object, const char *key)
{
    return json_array_get (json_object_get (object, key), 0);
}

//  The sink of the stream tests: every event parsed, "[DONE]" kept as a string.
typedef struct {
    json_t *events;
    int refuse_at; // emit number that fails, -1: none
    int emitted;
} s_capture_t;

static int s_capture_emit (void *arg, const char *name, const char *data, size_t len)
{
    s_capture_t *self = arg;
    assert (name == NULL); // OpenAI streams have no event names
    if (self->emitted++ == self->refuse_at)
        return -1;
    if (len == 6 && memcmp (data, "[DONE]", 6) == 0)
        json_array_append_new (self->events, json_string ("[DONE]"));
    else {
        json_t *event = json_loadb (data, len, 0, NULL);
        assert (json_is_object (event));
        json_array_append_new (self->events, event);
    }
    return 0;
}

//  Feed events (test text, ' for ") through a new stream; returns the last event rc.
static int s_feed (void *state, const char **events, size_t count, s_capture_t *capture,
                   ar_usage_t *usage)
{
    ar_xlate_sink_t sink = {s_capture_emit, capture};
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        char *data = s_text (events[i]);
        rc =
            ar_xlate_stream_gemini_to_openai.event (state, NULL, data, strlen (data), &sink, usage);
        free (data);
    }
    return rc;
}

//  What a client rebuilds from chunks: {id, content, tool_calls, finish_reason, usage}.
static json_t *s_rebuild (const json_t *events, bool include_usage)
{
    s_text_t content = {0};
    json_t *calls = json_array ();
    json_t *usage = NULL;
    const char *id = NULL, *finish = NULL;
    size_t i;
    json_t *event;
    json_array_foreach (events, i, event)
    {
        if (json_is_string (event))
            continue;
        assert (s_streq (s_str (event, "object"), "chat.completion.chunk"));
        assert (s_streq (s_str (event, "model"), "gemini-2.5-flash"));
        assert (json_is_integer (json_object_get (event, "created")));
        if (!id)
            id = s_str (event, "id");
        assert (s_streq (id, s_str (event, "id")));
        json_t *choices = json_object_get (event, "choices");
        if (json_array_size (choices) == 0) {
            usage = json_object_get (event, "usage");
            continue;
        }
        assert (include_usage == json_is_null (json_object_get (event, "usage")));
        json_t *choice = json_array_get (choices, 0);
        json_t *delta = json_object_get (choice, "delta");
        const char *text = s_str (delta, "content");
        if (text)
            s_text_add (&content, text, strlen (text));
        size_t j;
        json_t *call;
        json_array_foreach (json_object_get (delta, "tool_calls"), j, call)
        {
            json_t *copy = json_deep_copy (call);
            assert (json_integer_value (json_object_get (copy, "index")) ==
                    (json_int_t)json_array_size (calls));
            json_object_del (copy, "index");
            json_array_append_new (calls, copy);
        }
        if (s_str (choice, "finish_reason"))
            finish = s_str (choice, "finish_reason");
    }
    json_t *out = json_pack ("{s:s, s:s%, s:o, s:s?, s:O*}", "id", id ? id : "", "content",
                             content.data ? content.data : "", content.len, "tool_calls", calls,
                             "finish_reason", finish, "usage", usage);
    free (content.data);
    return out;
}

static void s_test_requests (void)
{
    ar_xlate_error_t err;
    //  A whole conversation: system and developer, two parallel tool calls and their
    //  results, then images of each kind.
    json_t *out = s_test_request (
        "{'model':'gemini-2.5-flash','messages':["
        "{'role':'system','content':'You are a travel assistant. Answer briefly.'},"
        "{'role':'developer','content':[{'type':'text','text':'Use metric units.'}]},"
        "{'role':'user','content':'What is the weather in Paris and the time in Tokyo?'},"
        "{'role':'assistant','content':null,'tool_calls':["
        " {'id':'call_a1','type':'function','function':{'name':'get_weather',"
        "  'arguments':'{\\'city\\':\\'Paris\\',\\'unit\\':\\'celsius\\'}'}},"
        " {'id':'call_b2','type':'function','function':{'name':'get_time',"
        "  'arguments':'{\\'timezone\\':\\'Asia/Tokyo\\'}'}}]},"
        "{'role':'tool','tool_call_id':'call_a1',"
        " 'content':'{\\'temperature\\':18.5,\\'conditions\\':\\'light rain\\'}'},"
        "{'role':'tool','tool_call_id':'call_b2','content':'It is 21:04 in Tokyo.'},"
        "{'role':'assistant','content':'Paris: 18.5 C, light rain. Tokyo: 21:04.'},"
        "{'role':'user','content':[{'type':'text','text':'Compare with these.'},"
        " {'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA"
        "AAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',"
        "  'detail':'high'}},"
        " {'type':'image_url','image_url':{'url':'https://img.example.com/fc/paris.JPG?s=l#top'}},"
        " {'type':'image_url','image_url':{'url':'gs://travel-bucket/reports/tokyo-2024.pdf'}}]},"
        "{'role':'user','content':''}],"
        "'tools':[{'type':'function','function':{'name':'get_weather',"
        " 'description':'Current weather for a city','strict':true,'parameters':{"
        " '$schema':'http://json-schema.org/draft-07/schema#','type':'object',"
        " 'additionalProperties':false,'properties':{"
        "  'city':{'type':'string','description':'City name'},"
        "  'unit':{'type':['string','null'],'enum':['celsius','fahrenheit']},"
        "  'days':{'type':'array','minItems':1,'uniqueItems':true,'items':{'type':'object',"
        "   'additionalProperties':false,'properties':{"
        "    'date':{'type':'string','format':'date-time'},"
        "    'when':{'type':'string','format':'date'},"
        "    'hourly':{'anyOf':[{'type':'boolean'},{'type':'null'}]}},"
        "   'required':['date']}}},"
        " 'required':['city','unit']}}},"
        " {'type':'function','function':{'name':'get_time','parameters':{'type':'object',"
        "  'properties':{'timezone':{'type':'string'}},'required':['timezone']}}},"
        " {'type':'function','function':{'name':'list_cities','description':'All cities'}}],"
        "'tool_choice':'auto','max_completion_tokens':1024,'max_tokens':99,'temperature':0.4,"
        "'top_p':0.9,'stop':'END','seed':42,'presence_penalty':0.1,'frequency_penalty':0.2,"
        "'n':1,'logprobs':false,'stream':true,'stream_options':{'include_usage':true},"
        "'user':'u-123','store':false,'metadata':{'team':'travel'},'parallel_tool_calls':true}",
        &err);
    assert (out);
    assert (json_object_size (out) == 5); // nothing the caller sent leaks through unmapped
    s_expect_equal (json_object_get (out, "systemInstruction"),
                    "{'parts':[{'text':'You are a travel assistant. Answer briefly.'},"
                    "{'text':'Use metric units.'}]}");
    json_t *contents = json_object_get (out, "contents");
    assert (json_array_size (contents) == 5);
    s_expect_equal (json_array_get (contents, 0),
                    "{'role':'user','parts':[{'text':'What is the weather in Paris and the time "
                    "in Tokyo?'}]}");
    s_expect_equal (json_array_get (contents, 1),
                    "{'role':'model','parts':["
                    "{'functionCall':{'name':'get_weather','args':{'city':'Paris',"
                    "'unit':'celsius'}},'thoughtSignature':'skip_thought_signature_validator'},"
                    "{'functionCall':{'name':'get_time','args':{'timezone':'Asia/Tokyo'}}}]}");
    s_expect_equal (json_array_get (contents, 2),
                    "{'role':'user','parts':["
                    "{'functionResponse':{'name':'get_weather','response':{'temperature':18.5,"
                    "'conditions':'light rain'}}},"
                    "{'functionResponse':{'name':'get_time','response':{'content':"
                    "'It is 21:04 in Tokyo.'}}}]}");
    s_expect_equal (
        json_array_get (contents, 3),
        "{'role':'model','parts':[{'text':'Paris: 18.5 C, light rain. Tokyo: 21:04.'}]}");
    s_expect_equal (json_array_get (contents, 4),
                    "{'role':'user','parts':[{'text':'Compare with these.'},"
                    "{'inlineData':{'mimeType':'image/png','data':'iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"
                    "CAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='}},"
                    "{'fileData':{'mimeType':'image/jpeg','fileUri':"
                    "'https://img.example.com/fc/paris.JPG?s=l#top'}},"
                    "{'fileData':{'mimeType':'application/pdf','fileUri':"
                    "'gs://travel-bucket/reports/tokyo-2024.pdf'}}]}");
    s_expect_equal (json_object_get (out, "generationConfig"),
                    "{'maxOutputTokens':1024,'temperature':0.4,'topP':0.9,'stopSequences':['END'],"
                    "'seed':42,'presencePenalty':0.1,'frequencyPenalty':0.2,'candidateCount':1}");
    s_expect_equal (json_object_get (out, "tools"),
                    "[{'functionDeclarations':["
                    "{'name':'get_weather','description':'Current weather for a city',"
                    " 'parameters':{'type':'OBJECT','properties':{"
                    "  'city':{'type':'STRING','description':'City name'},"
                    "  'unit':{'type':'STRING','enum':['celsius','fahrenheit'],'nullable':true},"
                    "  'days':{'type':'ARRAY','minItems':1,'items':{'type':'OBJECT',"
                    "   'properties':{'date':{'type':'STRING','format':'date-time'},"
                    "    'when':{'type':'STRING'},"
                    "    'hourly':{'type':'BOOLEAN','nullable':true}},'required':['date']}}},"
                    " 'required':['city','unit']}},"
                    "{'name':'get_time','parameters':{'type':'OBJECT','properties':{"
                    " 'timezone':{'type':'STRING'}},'required':['timezone']}},"
                    "{'name':'list_cities','description':'All cities'}]}]");
    s_expect_equal (json_object_get (out, "toolConfig"),
                    "{'functionCallingConfig':{'mode':'AUTO'}}");
    json_decref (out);

    //  json_schema with $defs, a nullable anyOf, a const; max_tokens alone; stop as an array.
    out = s_test_request (
        "{'model':'m','messages':[{'role':'user','content':'Plan a rail trip.'}],"
        "'max_tokens':512,'stop':['###','END'],"
        "'response_format':{'type':'json_schema','json_schema':{'name':'trip','strict':true,"
        " 'schema':{'type':'object','additionalProperties':false,"
        "  'properties':{'destination':{'type':'string'},"
        "   'stops':{'type':'array','items':{'$ref':'#/$defs/stop'}},"
        "   "
        "'budget':{'anyOf':[{'type':'number','minimum':0,'description':'amount'},{'type':'null'}],"
        "    'description':'EUR'},"
        "   'mode':{'const':'train'},"
        "   'legs':{'type':'array','items':{'oneOf':[{'$ref':'#/$defs/stop'},"
        "    {'type':'string','maxLength':40}]}}},"
        "  'required':['destination','stops','budget','mode'],"
        "  '$defs':{'stop':{'type':'object','additionalProperties':false,"
        "   'properties':{'city':{'type':'string'},"
        "    'nights':{'type':'integer','format':'int32','minimum':1,'multipleOf':1}},"
        "   'required':['city','nights']}}}}}}",
        &err);
    assert (out);
    s_expect_equal (json_object_get (out, "generationConfig"),
                    "{'maxOutputTokens':512,'stopSequences':['###','END'],"
                    "'responseMimeType':'application/json','responseSchema':{'type':'OBJECT',"
                    " 'properties':{'destination':{'type':'STRING'},"
                    "  'stops':{'type':'ARRAY','items':{'type':'OBJECT','properties':{"
                    "   'city':{'type':'STRING'},'nights':{'type':'INTEGER','format':'int32',"
                    "   'minimum':1}},'required':['city','nights']}},"
                    "  'budget':{'type':'NUMBER','minimum':0,'nullable':true,'description':'EUR'},"
                    "  'mode':{'type':'STRING','enum':['train']},"
                    "  'legs':{'type':'ARRAY','items':{'anyOf':["
                    "   {'type':'OBJECT','properties':{'city':{'type':'STRING'},"
                    "    'nights':{'type':'INTEGER','format':'int32','minimum':1}},"
                    "    'required':['city','nights']},"
                    "   {'type':'STRING','maxLength':40}]}}},"
                    " 'required':['destination','stops','budget','mode']}}");
    assert (!json_object_get (out, "systemInstruction") && !json_object_get (out, "tools"));
    json_decref (out);

    //  json_object; tool_choice forms; consecutive user messages merge; file parts.
    out = s_test_request (
        "{'messages':[{'role':'user','content':'Reply in JSON.'},"
        "{'role':'user','content':[{'type':'input_audio','input_audio':{'data':'UklGRg==',"
        "'format':'wav'}},{'type':'file','file':{'filename':'brief.pdf',"
        "'file_data':'data:application/pdf;base64,JVBERi0xLjQ='}},"
        "{'type':'file','file':{'filename':'notes.txt','file_data':'aGVsbG8='}}]}],"
        "'response_format':{'type':'json_object'},'tools':[{'type':'function','function':{"
        "'name':'lookup','parameters':{'type':'object','properties':{}}}}],"
        "'tool_choice':'required'}",
        &err);
    assert (out);
    s_expect_equal (json_object_get (out, "contents"),
                    "[{'role':'user','parts':[{'text':'Reply in JSON.'},"
                    "{'inlineData':{'mimeType':'audio/wav','data':'UklGRg=='}},"
                    "{'inlineData':{'mimeType':'application/pdf','data':'JVBERi0xLjQ='}},"
                    "{'inlineData':{'mimeType':'text/plain','data':'aGVsbG8='}}]}]");
    s_expect_equal (json_object_get (out, "generationConfig"),
                    "{'responseMimeType':'application/json'}");
    s_expect_equal (json_object_get (out, "toolConfig"),
                    "{'functionCallingConfig':{'mode':'ANY'}}");
    json_decref (out);
    const char *named = "{'messages':[{'role':'user','content':'hi'}],'tools':[{'type':'function',"
                        "'function':{'name':'lookup'}}],'tool_choice':{'type':'function',"
                        "'function':{'name':'lookup'}}}";
    out = s_test_request (named, &err);
    s_expect_equal (json_object_get (out, "toolConfig"),
                    "{'functionCallingConfig':{'mode':'ANY','allowedFunctionNames':['lookup']}}");
    json_decref (out);
    out =
        s_test_request ("{'messages':[{'role':'user','content':'hi'}],'tool_choice':'none'}", &err);
    s_expect_equal (json_object_get (out, "toolConfig"),
                    "{'functionCallingConfig':{'mode':'NONE'}}");
    json_decref (out);

    //  A tool result answers the nearest earlier call with its id; a call without arguments.
    out = s_test_request (
        "{'messages':[{'role':'user','content':'List cities.'},"
        "{'role':'assistant','content':'Checking.','tool_calls':[{'id':'c1','type':'function',"
        " 'function':{'name':'list_cities','arguments':''}}]},"
        "{'role':'tool','tool_call_id':'c1','content':[{'type':'text','text':'[\\'Oslo\\']'}]}]}",
        &err);
    s_expect_equal (json_object_get (out, "contents"),
                    "[{'role':'user','parts':[{'text':'List cities.'}]},"
                    "{'role':'model','parts':[{'text':'Checking.'},{'functionCall':{'name':"
                    "'list_cities','args':{}},'thoughtSignature':"
                    "'skip_thought_signature_validator'}]},"
                    "{'role':'user','parts':[{'functionResponse':{'name':'list_cities',"
                    "'response':{'content':'[\\'Oslo\\']'}}}]}]");
    json_decref (out);

    //  Every refusal names its member.
    const char *user = "{'role':'user','content':'hi'}";
    char request[1024];
    struct {
        const char *extra, *param;
    } options[] = {
        {"'n':2", "n"},
        {"'n':0", "n"},
        {"'logprobs':true", "logprobs"},
        {"'top_logprobs':3", "top_logprobs"},
        {"'audio':{'voice':'alloy','format':'wav'}", "audio"},
        {"'modalities':['text','audio']", "modalities"},
        {"'logit_bias':{'50256':-100}", "logit_bias"},
        {"'functions':[{'name':'f'}]", "functions"},
        {"'temperature':'hot'", "temperature"},
        {"'max_tokens':1.5", "max_tokens"},
        {"'stop':[1]", "stop"},
        {"'response_format':{'type':'xml'}", "response_format.type"},
        {"'response_format':{'type':'json_schema'}", "response_format.json_schema"},
        {"'response_format':{'type':'json_schema','json_schema':{'name':'x','schema':{"
         "'type':'object','properties':{'x':{'not':{'type':'string'}}}}}}",
         "response_format.json_schema.schema.properties.x.not"},
        {"'response_format':{'type':'json_schema','json_schema':{'name':'x','schema':{"
         "'type':'object','properties':{'v':{'type':['string','integer']}}}}}",
         "response_format.json_schema.schema.properties.v.type"},
        {"'response_format':{'type':'json_schema','json_schema':{'name':'loop','schema':{"
         "'$ref':'#/$defs/a','$defs':{'a':{'$ref':'#/$defs/a'}}}}}",
         "response_format.json_schema.schema.$ref"},
        {"'response_format':{'type':'json_schema','json_schema':{'name':'x','schema':{"
         "'type':'object','properties':{'p':{'$ref':'#/components/p'}}}}}",
         "response_format.json_schema.schema.properties.p.$ref"},
        {"'tools':[{'type':'custom','custom':{'name':'f'}}]", "tools[0].type"},
        {"'tools':[{'type':'function','function':{'name':'f','parameters':{'type':'object',"
         "'properties':{'a':{'type':'array','items':[{'type':'string'}]}}}}}]",
         "tools[0].function.parameters.properties.a.items"},
        {"'tools':[{'type':'function','function':{'name':'f','parameters':{'type':'object',"
         "'properties':{'k':{'type':'integer','enum':[1,2]}}}}}]",
         "tools[0].function.parameters.properties.k.enum"},
        {"'tool_choice':'sometimes'", "tool_choice"},
    };
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        snprintf (request, sizeof request, "{'messages':[%s],%s}", user, options[i].extra);
        s_expect_refusal (request, options[i].param);
    }
    const char *call = "{'role':'assistant','tool_calls':[{'id':'c1','type':'function',"
                       "'function':{'name':'f','arguments':'{}'}}]}";
    struct {
        const char *messages, *param;
    } bad[] = {
        {"{'role':'assistant','tool_calls':[{'id':'c1','type':'function','function':{"
         "'name':'f','arguments':'{}'}},{'id':'c2','type':'function','function':{'name':'g',"
         "'arguments':'{\\'city\\':'}}]}",
         "messages[1].tool_calls[1].function.arguments"},
        {"{'role':'assistant','tool_calls':[{'id':'c1','type':'function','function':{"
         "'name':'f','arguments':'[1,2]'}}]}",
         "messages[1].tool_calls[0].function.arguments"},
        {"{'role':'tool','tool_call_id':'c9','content':'72F'}", "messages[1].tool_call_id"},
        {"{'role':'user','content':[{'type':'image_url','image_url':{"
         "'url':'https://example.com/render?id=7'}}]}",
         "messages[1].content[0].image_url.url"},
        {"{'role':'user','content':[{'type':'image_url','image_url':{"
         "'url':'data:image/png,rawbytes'}}]}",
         "messages[1].content[0].image_url.url"},
        {"{'role':'user','content':[{'type':'image_url','image_url':{"
         "'url':'ftp://example.com/a.png'}}]}",
         "messages[1].content[0].image_url.url"},
        {"{'role':'user','content':[{'type':'text','text':'see'},{'type':'file','file':{"
         "'file_id':'file-abc'}}]}",
         "messages[1].content[1].file.file_id"},
        {"{'role':'user','content':[{'type':'input_audio','input_audio':{'data':'AAAA',"
         "'format':'flac'}}]}",
         "messages[1].content[0].input_audio.format"},
        {"{'role':'user','content':[{'type':'video','video':{}}]}", "messages[1].content[0].type"},
        {"{'role':'system','content':[{'type':'image_url','image_url':{'url':'x'}}]}",
         "messages[1].content[0].type"},
        {"{'role':'critic','content':'no'}", "messages[1].role"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        //  The tool message test needs a call earlier on, under a different id.
        snprintf (request, sizeof request, "{'messages':[%s,%s]}",
                  strstr (bad[i].messages, "'tool'") ? call : user, bad[i].messages);
        s_expect_refusal (request, bad[i].param);
    }
    //  A recursive schema (a tree) is refused where the recursion is cut off; that path is
    //  longer than err->param holds, so only its start is kept.
    out = s_test_request ("{'messages':[{'role':'user','content':'Draw a tree.'}],"
                          "'response_format':{'type':'json_schema','json_schema':{'name':'tree',"
                          "'schema':{'$ref':'#/$defs/node','$defs':{'node':{'type':'object',"
                          "'properties':{'label':{'type':'string'},'children':{'type':'array',"
                          "'items':{'$ref':'#/$defs/node'}}}}}}}}}",
                          &err);
    assert (!out && err.status == 400);
    const char *cut = "response_format.json_schema.schema.properties.children.items.properties.";
    assert (strncmp (err.param, cut, strlen (cut)) == 0);
    assert (strlen (err.param) == sizeof err.param - 1);
    s_expect_refusal ("{'messages':[]}", "messages");
    s_expect_refusal ("{'model':'m'}", "messages");
    s_expect_refusal ("{'messages':[{'role':'system','content':'Be brief.'}]}", "messages");
    out = ar_xlate_openai_to_gemini_request (NULL, &err);
    assert (!out && err.status == 400);
}

static void s_test_responses (void)
{
    ar_usage_t usage;
    //  Text in two parts around a thought, with thinking and cache in the usage.
    json_t *response = s_json (
        "{'candidates':[{'content':{'role':'model','parts':["
        " {'text':'**Weighing the options** The user wants...','thought':true},"
        " {'text':'Paris is '},{'text':'18.5 C with light rain.'}]},"
        " 'finishReason':'STOP','avgLogprobs':-0.21,'index':0}],"
        "'usageMetadata':{'promptTokenCount':5120,'candidatesTokenCount':12,"
        " 'totalTokenCount':5440,'cachedContentTokenCount':4096,'thoughtsTokenCount':248,"
        " 'toolUsePromptTokenCount':60,"
        " 'trafficType':'ON_DEMAND','promptTokensDetails':[{'modality':'TEXT','tokenCount':5120}]},"
        "'modelVersion':'gemini-2.5-flash','createTime':'2025-09-30T12:18:25.582641Z',"
        "'responseId':'kcrbaPHHI_zEptQPrqzc4AI'}");
    memset (&usage, 0, sizeof usage);
    json_t *out = ar_xlate_gemini_to_openai_response (response, "gemini-2.5-flash", &usage);
    assert (out);
    assert (s_streq (s_str (out, "id"), "chatcmpl-kcrbaPHHI_zEptQPrqzc4AI"));
    assert (s_streq (s_str (out, "object"), "chat.completion"));
    assert (s_streq (s_str (out, "model"), "gemini-2.5-flash"));
    assert (json_integer_value (json_object_get (out, "created")) > 1700000000);
    json_t *choice = s_first (out, "choices");
    json_t *message = json_object_get (choice, "message");
    assert (json_array_size (json_object_get (out, "choices")) == 1);
    assert (s_streq (s_str (message, "role"), "assistant"));
    assert (s_streq (s_str (message, "content"), "Paris is 18.5 C with light rain."));
    assert (!json_object_get (message, "tool_calls"));
    assert (s_streq (s_str (choice, "finish_reason"), "stop"));
    s_expect_equal (json_object_get (out, "usage"),
                    "{'prompt_tokens':5180,'completion_tokens':260,'total_tokens':5440,"
                    "'prompt_tokens_details':{'cached_tokens':4096},"
                    "'completion_tokens_details':{'reasoning_tokens':248}}");
    assert (usage.has_input && usage.input_tokens == 5180); // grounding tool input too
    assert (usage.has_output && usage.output_tokens == 260);
    assert (usage.has_cached && usage.cached_input_tokens == 4096);
    assert (s_streq (usage.model, "gemini-2.5-flash"));
    json_decref (out);
    json_decref (response);

    //  Two parallel calls after some text, one with Gemini's own id, one without.
    response = s_json (
        "{'candidates':[{'content':{'role':'model','parts':["
        " {'text':'Let me check both.'},"
        " {'functionCall':{'name':'get_weather','args':{'city':'Paris','lat':48.85,"
        "  'days':[1,2]}},'thoughtSignature':'CiQBcsjafE2wfS1bQ=='},"
        " {'functionCall':{'id':'fc_7','name':'get_time','args':{'timezone':'Asia/Tokyo'}}}]},"
        " 'finishReason':'STOP'}],"
        "'usageMetadata':{'promptTokenCount':84,'candidatesTokenCount':31,'totalTokenCount':115},"
        "'modelVersion':'gemini-2.5-pro','responseId':'R2x9aKq3Bs6'}");
    memset (&usage, 0, sizeof usage);
    out = ar_xlate_gemini_to_openai_response (response, "my-gemini", &usage);
    choice = s_first (out, "choices");
    message = json_object_get (choice, "message");
    assert (s_streq (s_str (out, "model"), "my-gemini"));
    assert (s_streq (s_str (message, "content"), "Let me check both."));
    assert (s_streq (s_str (choice, "finish_reason"), "tool_calls"));
    s_expect_equal (json_object_get (message, "tool_calls"),
                    "[{'id':'call_R2x9aKq3Bs6_0','type':'function','function':{"
                    "'name':'get_weather','arguments':'{\\'city\\':\\'Paris\\',\\'lat\\':48.85,"
                    "\\'days\\':[1,2]}'}},"
                    "{'id':'fc_7','type':'function','function':{'name':'get_time',"
                    "'arguments':'{\\'timezone\\':\\'Asia/Tokyo\\'}'}}]");
    s_expect_equal (json_object_get (out, "usage"),
                    "{'prompt_tokens':84,'completion_tokens':31,'total_tokens':115,"
                    "'prompt_tokens_details':{'cached_tokens':0},"
                    "'completion_tokens_details':{'reasoning_tokens':0}}");
    assert (usage.input_tokens == 84 && usage.output_tokens == 31 && !usage.has_cached);
    json_decref (out);
    //  Calls alone: content null.
    json_t *parts =
        json_object_get (json_object_get (s_first (response, "candidates"), "content"), "parts");
    json_array_remove (parts, 0);
    out = ar_xlate_gemini_to_openai_response (response, "m", NULL);
    message = json_object_get (s_first (out, "choices"), "message");
    assert (json_is_null (json_object_get (message, "content")));
    assert (json_array_size (json_object_get (message, "tool_calls")) == 2);
    json_decref (out);
    json_decref (response);

    //  A prompt blocked outright: no candidates, only promptFeedback.
    response = s_json ("{'promptFeedback':{'blockReason':'PROHIBITED_CONTENT',"
                       "'blockReasonMessage':'The prompt was blocked.','safetyRatings':[]},"
                       "'usageMetadata':{'promptTokenCount':17,'totalTokenCount':17},"
                       "'modelVersion':'gemini-2.5-flash','responseId':'b1'}");
    memset (&usage, 0, sizeof usage);
    out = ar_xlate_gemini_to_openai_response (response, "m", &usage);
    choice = s_first (out, "choices");
    assert (s_streq (s_str (choice, "finish_reason"), "content_filter"));
    assert (s_streq (s_str (json_object_get (choice, "message"), "content"), ""));
    assert (usage.has_input && usage.input_tokens == 17 && !usage.has_output);
    json_decref (out);
    json_decref (response);

    //  Finish reasons, the answer stopped without content (safety) and cut short.
    struct {
        const char *gemini, *openai;
    } reasons[] = {{"SAFETY", "content_filter"},         {"RECITATION", "content_filter"},
                   {"BLOCKLIST", "content_filter"},      {"PROHIBITED_CONTENT", "content_filter"},
                   {"SPII", "content_filter"},           {"MAX_TOKENS", "length"},
                   {"MALFORMED_FUNCTION_CALL", "stop"},  {"OTHER", "stop"},
                   {"FINISH_REASON_UNSPECIFIED", "stop"}};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        char text[512];
        snprintf (text, sizeof text,
                  "{'candidates':[{'content':{'role':'model','parts':[{'text':'Partial'}]},"
                  "'finishReason':'%s','safetyRatings':[{'category':'HARM_CATEGORY_HARASSMENT',"
                  "'probability':'NEGLIGIBLE'}]}],'modelVersion':'gemini-2.5-flash'}",
                  reasons[i].gemini);
        response = s_json (text);
        json_object_del (s_first (response, "candidates"),
                         strcmp (reasons[i].openai, "content_filter") == 0 ? "content" : "none");
        out = ar_xlate_gemini_to_openai_response (response, NULL, NULL);
        choice = s_first (out, "choices");
        assert (s_streq (s_str (choice, "finish_reason"), reasons[i].openai));
        assert (s_streq (s_str (json_object_get (choice, "message"), "content"),
                         strcmp (reasons[i].openai, "content_filter") == 0 ? "" : "Partial"));
        assert (s_streq (s_str (out, "model"), "gemini-2.5-flash")); // no model given
        assert (!json_object_get (out, "usage"));
        //  No responseId: a random id, different each time.
        json_t *again = ar_xlate_gemini_to_openai_response (response, NULL, NULL);
        const char *id = s_str (out, "id");
        assert (strncmp (id, "chatcmpl-", 9) == 0 && strlen (id) == 9 + 24);
        assert (!s_streq (id, s_str (again, "id")));
        json_decref (again);
        json_decref (out);
        json_decref (response);
    }

    //  Not a GenerateContentResponse.
    const char *malformed[] = {"[1]", "'text'", "{'candidates':{'content':{}}}",
                               "{'candidates':['x']}"};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        response = s_json (malformed[i]);
        assert (!ar_xlate_gemini_to_openai_response (response, "m", NULL));
        json_decref (response);
    }
}

//  One answer as Vertex streams it (?alt=sse), and the same answer unstreamed.
static const char *s_answer_events[] = {
    "{'candidates':[{'content':{'role':'model','parts':[{'text':'**Planning** I need the "
    "weather first.','thought':true}]}}],'usageMetadata':{'trafficType':'ON_DEMAND'},"
    "'modelVersion':'gemini-2.5-flash','createTime':'2025-09-30T12:18:25.582641Z',"
    "'responseId':'kcrbaPHHI_zEptQPrqzc4AI'}",
    "{'candidates':[{'content':{'role':'model','parts':[{'text':'Paris is mild today'}]}}],"
    "'usageMetadata':{'trafficType':'ON_DEMAND'},'modelVersion':'gemini-2.5-flash',"
    "'createTime':'2025-09-30T12:18:25.582641Z','responseId':'kcrbaPHHI_zEptQPrqzc4AI'}",
    "{'usageMetadata':{'trafficType':'ON_DEMAND'},'modelVersion':'gemini-2.5-flash',"
    "'createTime':'2025-09-30T12:18:25.582641Z','responseId':'kcrbaPHHI_zEptQPrqzc4AI'}",
    "{'candidates':[{'content':{'role':'model','parts':[{'text':'; checking Tokyo.'},"
    "{'functionCall':{'name':'get_weather','args':{'city':'Tokyo','lat':35.68}},"
    "'thoughtSignature':'CiQBcsjafE2wfS1bQ=='},"
    "{'functionCall':{'name':'get_time','args':{'timezone':'Asia/Tokyo'}}}]}}],"
    "'usageMetadata':{'promptTokenCount':310,'candidatesTokenCount':20,"
    "'totalTokenCount':330,'trafficType':'ON_DEMAND'},'modelVersion':'gemini-2.5-flash',"
    "'createTime':'2025-09-30T12:18:25.582641Z','responseId':'kcrbaPHHI_zEptQPrqzc4AI'}",
    "{'candidates':[{'content':{'role':'model','parts':[{'text':''}]},'finishReason':'STOP'}],"
    "'usageMetadata':{'promptTokenCount':310,'candidatesTokenCount':41,'totalTokenCount':410,"
    "'cachedContentTokenCount':256,'thoughtsTokenCount':59,'trafficType':'ON_DEMAND',"
    "'promptTokensDetails':[{'modality':'TEXT','tokenCount':310}]},"
    "'modelVersion':'gemini-2.5-flash','createTime':'2025-09-30T12:18:25.582641Z',"
    "'responseId':'kcrbaPHHI_zEptQPrqzc4AI'}"};

static const char *s_answer_whole =
    "{'candidates':[{'content':{'role':'model','parts':[{'text':'**Planning** I need the "
    "weather first.','thought':true},{'text':'Paris is mild today'},{'text':'; checking Tokyo.'},"
    "{'functionCall':{'name':'get_weather','args':{'city':'Tokyo','lat':35.68}},"
    "'thoughtSignature':'CiQBcsjafE2wfS1bQ=='},"
    "{'functionCall':{'name':'get_time','args':{'timezone':'Asia/Tokyo'}}}]},"
    "'finishReason':'STOP','index':0}],"
    "'usageMetadata':{'promptTokenCount':310,'candidatesTokenCount':41,'totalTokenCount':410,"
    "'cachedContentTokenCount':256,'thoughtsTokenCount':59,'trafficType':'ON_DEMAND'},"
    "'modelVersion':'gemini-2.5-flash','createTime':'2025-09-30T12:18:25.582641Z',"
    "'responseId':'kcrbaPHHI_zEptQPrqzc4AI'}";

static void s_test_streams (void)
{
    const ar_xlate_stream_ops_t *ops = &ar_xlate_stream_gemini_to_openai;
    ar_usage_t usage;

    //  Text over several events, usage asked for.
    {
        const char *events[] = {
            "{'candidates':[{'content':{'role':'model','parts':[{'text':'Understood! '}]}}],"
            "'usageMetadata':{'trafficType':'ON_DEMAND'},'modelVersion':'gemini-2.5-flash',"
            "'createTime':'2025-09-30T12:18:25.582641Z','responseId':'Zm9_aL7mJ8bAxN8PnfeY2AY'}",
            "{'candidates':[{'content':{'role':'model','parts':[{'text':'The weather in "
            "Tokyo'}]}}],"
            "'usageMetadata':{'trafficType':'ON_DEMAND'},'modelVersion':'gemini-2.5-flash',"
            "'createTime':'2025-09-30T12:18:25.582641Z','responseId':'Zm9_aL7mJ8bAxN8PnfeY2AY'}",
            "{'candidates':[{'content':{'role':'model','parts':[{'text':' is sunny.'}]},"
            "'finishReason':'STOP'}],'usageMetadata':{'promptTokenCount':28,"
            "'candidatesTokenCount':9,'totalTokenCount':37,'trafficType':'ON_DEMAND'},"
            "'modelVersion':'gemini-2.5-flash','createTime':'2025-09-30T12:18:25.582641Z',"
            "'responseId':'Zm9_aL7mJ8bAxN8PnfeY2AY'}"};
        s_capture_t capture = {json_array (), -1, 0};
        void *state = ops->create ("gemini-2.5-flash", true);
        memset (&usage, 0, sizeof usage);
        assert (s_feed (state, events, 1, &capture, &usage) == 0);
        assert (!usage.has_input && !usage.has_output); // counterless usageMetadata
        assert (s_feed (state, events + 1, 2, &capture, &usage) == 0);
        assert (usage.has_input && usage.input_tokens == 28 && usage.output_tokens == 9);
        assert (s_streq (usage.model, "gemini-2.5-flash"));
        ar_xlate_sink_t sink = {s_capture_emit, &capture};
        assert (ops->finish (state, &sink, &usage) == 0);
        ops->destroy (state);
        json_t *e = capture.events;
        assert (json_array_size (e) == 7);
        s_expect_equal (json_object_get (json_array_get (e, 0), "choices"),
                        "[{'index':0,'delta':{'role':'assistant','content':''},"
                        "'finish_reason':null}]");
        const char *texts[] = {"Understood! ", "The weather in Tokyo", " is sunny."};
        for (size_t i = 0; i < 3; i++) {
            json_t *choice = s_first (json_array_get (e, i + 1), "choices");
            assert (s_streq (s_str (json_object_get (choice, "delta"), "content"), texts[i]));
            assert (json_is_null (json_object_get (choice, "finish_reason")));
        }
        s_expect_equal (json_object_get (json_array_get (e, 4), "choices"),
                        "[{'index':0,'delta':{},'finish_reason':'stop'}]");
        json_t *last = json_array_get (e, 5);
        s_expect_equal (json_object_get (last, "choices"), "[]");
        s_expect_equal (json_object_get (last, "usage"),
                        "{'prompt_tokens':28,'completion_tokens':9,'total_tokens':37,"
                        "'prompt_tokens_details':{'cached_tokens':0},"
                        "'completion_tokens_details':{'reasoning_tokens':0}}");
        assert (s_streq (json_string_value (json_array_get (e, 6)), "[DONE]"));
        for (size_t i = 0; i < 6; i++) {
            json_t *chunk = json_array_get (e, i);
            assert (s_streq (s_str (chunk, "id"), "chatcmpl-Zm9_aL7mJ8bAxN8PnfeY2AY"));
            assert (s_streq (s_str (chunk, "object"), "chat.completion.chunk"));
            assert (s_streq (s_str (chunk, "model"), "gemini-2.5-flash"));
            assert (i == 5 || json_is_null (json_object_get (chunk, "usage")));
        }
        json_decref (e);
    }

    //  Thoughts and function calls, no usage asked: streamed equals unstreamed.
    for (int include_usage = 0; include_usage < 2; include_usage++) {
        s_capture_t capture = {json_array (), -1, 0};
        void *state = ops->create ("gemini-2.5-flash", include_usage);
        memset (&usage, 0, sizeof usage);
        size_t count = sizeof s_answer_events / sizeof s_answer_events[0];
        assert (s_feed (state, s_answer_events, count, &capture, &usage) == 0);
        ar_xlate_sink_t sink = {s_capture_emit, &capture};
        assert (ops->finish (state, &sink, &usage) == 0);
        ops->destroy (state);
        //  role, text, text, call, call, finish, (usage), [DONE]: thoughts and empty text
        //  make no chunks.
        assert (json_array_size (capture.events) == (size_t)(include_usage ? 8 : 7));
        json_t *call =
            json_object_get (s_first (json_array_get (capture.events, 3), "choices"), "delta");
        s_expect_equal (call, "{'tool_calls':[{'index':0,'id':'call_kcrbaPHHI_zEptQPrqzc4AI_0',"
                              "'type':'function','function':{'name':'get_weather',"
                              "'arguments':'{\\'city\\':\\'Tokyo\\',\\'lat\\':35.68}'}}]}");
        assert (usage.input_tokens == 310 && usage.output_tokens == 100);
        assert (usage.has_cached && usage.cached_input_tokens == 256);

        json_t *rebuilt = s_rebuild (capture.events, include_usage);
        json_t *whole_json = s_json (s_answer_whole);
        ar_usage_t whole_usage = {0};
        json_t *whole =
            ar_xlate_gemini_to_openai_response (whole_json, "gemini-2.5-flash", &whole_usage);
        json_t *choice = s_first (whole, "choices");
        json_t *message = json_object_get (choice, "message");
        assert (s_streq (s_str (rebuilt, "id"), s_str (whole, "id")));
        assert (s_streq (s_str (rebuilt, "content"), s_str (message, "content")));
        assert (json_equal (json_object_get (rebuilt, "tool_calls"),
                            json_object_get (message, "tool_calls")));
        assert (s_streq (s_str (rebuilt, "finish_reason"), "tool_calls"));
        assert (s_streq (s_str (rebuilt, "finish_reason"), s_str (choice, "finish_reason")));
        if (include_usage)
            assert (
                json_equal (json_object_get (rebuilt, "usage"), json_object_get (whole, "usage")));
        else
            assert (!json_object_get (rebuilt, "usage"));
        assert (whole_usage.input_tokens == usage.input_tokens &&
                whole_usage.output_tokens == usage.output_tokens &&
                whole_usage.cached_input_tokens == usage.cached_input_tokens);
        json_decref (whole);
        json_decref (whole_json);
        json_decref (rebuilt);
        json_decref (capture.events);
    }

    //  An error mid-stream: an error chunk, nothing after it, not even [DONE].
    {
        const char *events[] = {s_answer_events[1],
                                "{'error':{'code':429,'message':'Resource exhausted. Please "
                                "try again later.','status':'RESOURCE_EXHAUSTED'}}",
                                s_answer_events[4]};
        s_capture_t capture = {json_array (), -1, 0};
        void *state = ops->create ("gemini-2.5-flash", false);
        assert (s_feed (state, events, 3, &capture, NULL) == -1);
        ar_xlate_sink_t sink = {s_capture_emit, &capture};
        assert (ops->event (state, NULL, "{}", 2, &sink, NULL) == -1);
        assert (ops->finish (state, &sink, NULL) == -1);
        ops->destroy (state);
        assert (json_array_size (capture.events) == 3); // role, text, error
        s_expect_equal (json_array_get (capture.events, 2),
                        "{'error':{'message':'Resource exhausted. Please try again later.',"
                        "'type':'rate_limit_error','param':null,'code':'RESOURCE_EXHAUSTED'}}");
        json_decref (capture.events);
    }

    //  Early end (no finishReason), a malformed event, a blocked prompt, a refusing sink.
    {
        s_capture_t capture = {json_array (), -1, 0};
        ar_xlate_sink_t sink = {s_capture_emit, &capture};
        void *state = ops->create ("gemini-2.5-flash", true);
        assert (s_feed (state, s_answer_events, 2, &capture, NULL) == 0);
        assert (ops->finish (state, &sink, NULL) == -1);
        ops->destroy (state);
        json_t *last = json_array_get (capture.events, json_array_size (capture.events) - 1);
        assert (s_streq (s_str (json_object_get (last, "error"), "type"), "server_error"));
        assert (json_array_size (capture.events) == 3); // role, text, error: no [DONE]
        json_array_clear (capture.events);

        state = ops->create ("gemini-2.5-flash", false);
        assert (ops->finish (state, &sink, NULL) == -1); // nothing at all came
        ops->destroy (state);
        assert (json_object_get (json_array_get (capture.events, 0), "error"));
        json_array_clear (capture.events);

        state = ops->create ("gemini-2.5-flash", false);
        const char *cut = "{\"candidates\":[{\"content\"";
        assert (ops->event (state, NULL, cut, strlen (cut), &sink, NULL) == -1);
        ops->destroy (state);
        assert (json_array_size (capture.events) == 1);
        assert (json_object_get (json_array_get (capture.events, 0), "error"));
        json_array_clear (capture.events);

        const char *blocked[] = {"{'promptFeedback':{'blockReason':'SAFETY'},'usageMetadata':{"
                                 "'promptTokenCount':9,'totalTokenCount':9},"
                                 "'modelVersion':'gemini-2.5-flash','responseId':'pb1'}"};
        state = ops->create ("gemini-2.5-flash", false);
        memset (&usage, 0, sizeof usage);
        assert (s_feed (state, blocked, 1, &capture, &usage) == 0);
        assert (ops->finish (state, &sink, NULL) == 0);
        ops->destroy (state);
        assert (json_array_size (capture.events) == 3);
        assert (s_streq (
            s_str (s_first (json_array_get (capture.events, 1), "choices"), "finish_reason"),
            "content_filter"));
        assert (usage.input_tokens == 9);
        json_array_clear (capture.events);

        capture.refuse_at = 1; // the sink gives up on the first text chunk
        capture.emitted = 0;
        state = ops->create ("gemini-2.5-flash", false);
        assert (s_feed (state, s_answer_events, 2, &capture, NULL) == -1);
        assert (ops->finish (state, &sink, NULL) == -1);
        ops->destroy (state);
        assert (json_array_size (capture.events) == 1);
        json_decref (capture.events);
    }
    ops->destroy (NULL);
}

void ar_xlate_gemini_test (bool verbose)
{
    if (verbose)
        printf (" * ar_xlate_gemini: ");
    s_test_requests ();
    s_test_responses ();
    s_test_streams ();
    if (verbose)
        printf ("OK\n");
}
