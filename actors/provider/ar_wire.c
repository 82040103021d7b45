/*  ar_wire: the registry of provider wires, and helpers they share. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ar_wire.h"

//  Add a wire here and in ar_wire.h; nothing else changes.
static const ar_wire_t *const s_wires[] = {
    &ar_wire_openai,  &ar_wire_anthropic,        &ar_wire_azure_openai,
    &ar_wire_bedrock, &ar_wire_google_vertex_ai, NULL,
};

//  ---------------------------------------------------------------------------
//  The wire for a slug, or NULL.

const ar_wire_t *ar_wire_lookup (const char *slug)
{
    if (!slug)
        return NULL;
    for (size_t i = 0; s_wires[i]; i++)
        if (strcmp (s_wires[i]->slug, slug) == 0)
            return s_wires[i];
    return NULL;
}

//  ---------------------------------------------------------------------------
//  Every registered wire.

const ar_wire_t *const *ar_wire_all (void)
{
    return s_wires;
}

//  ---------------------------------------------------------------------------
//  One header line, prefix + key, appended; the copy we built is wiped (curl keeps its own).

struct curl_slist *ar_wire_key_header (struct curl_slist *headers, const char *prefix,
                                       const char *key)
{
    size_t prefix_len = strlen (prefix), key_len = strlen (key);
    char *line = malloc (prefix_len + key_len + 1);
    if (!line)
        return NULL;
    memcpy (line, prefix, prefix_len);
    memcpy (line + prefix_len, key, key_len + 1);
    struct curl_slist *list = curl_slist_append (headers, line);
    explicit_bzero (line, prefix_len + key_len);
    free (line);
    return list;
}

//  ---------------------------------------------------------------------------
//  Is there `"name"`, optional blanks, `:`, optional blanks, `{` anywhere in s?

bool ar_wire_has_object (const char *s, size_t len, const char *name)
{
    char quoted[64];
    int qlen = snprintf (quoted, sizeof quoted, "\"%s\"", name);
    if (qlen < 0 || (size_t)qlen >= sizeof quoted)
        return false;
    const char *end = s + len;
    const char *at = s;
    while (at < end) {
        const char *hit = memmem (at, (size_t)(end - at), quoted, (size_t)qlen);
        if (!hit)
            return false;
        const char *p = hit + qlen;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p < end && *p == ':') {
            p++;
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
                p++;
            if (p < end && *p == '{')
                return true;
        }
        at = hit + 1;
    }
    return false;
}

//  ---------------------------------------------------------------------------
//  Self-test

void ar_wire_test (bool verbose)
{
    //  @selftest
    assert (ar_wire_lookup ("openai") == &ar_wire_openai);
    assert (ar_wire_lookup ("nope") == NULL);
    assert (ar_wire_lookup (NULL) == NULL);
    size_t count = 0;
    for (const ar_wire_t *const *w = ar_wire_all (); *w; w++) {
        assert ((*w)->slug && (*w)->stream_event && (*w)->body_usage);
        assert (ar_wire_lookup ((*w)->slug) == *w);
        count++;
    }
    assert (count >= 1);

    const char *a = "{\"usage\":null,\"x\":{\"usage\" :\n {\"p\":1}}}";
    assert (ar_wire_has_object (a, strlen (a), "usage"));
    const char *b = "{\"usage\":null,\"choices\":[{\"delta\":{\"content\":\"usage\"}}]}";
    assert (!ar_wire_has_object (b, strlen (b), "usage"));
    assert (!ar_wire_has_object ("\"usage\"", 7, "usage"));
    assert (!ar_wire_has_object ("\"usage\":", 8, "usage"));
    assert (ar_wire_has_object ("\"usage\":{", 9, "usage"));
    //  @end
    if (verbose)
        printf ("ar_wire: ok\n");
}
