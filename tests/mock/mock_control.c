/*  =========================================================================
    mock_control - per-request behaviour switches
    =========================================================================
*/
#include "mock_control.h"

#include <string.h>

//  Upper bounds keep a typo from parking a request for a year
#define MAX_DELAY_MS 600000
#define MAX_CHUNKS   100000

void mock_control_init (mock_control_t *self)
{
    self->latency_ms = 0;
    self->status = 0;
    self->retry_after = -1;
    self->chunks = -1;
    self->chunk_delay_ms = 0;
    self->hang = false;
    self->drop_after = -1;
    self->tool[0] = 0;
}

//  Parse a decimal in [0, max]; false on anything else
static bool s_number (const char *s, size_t len, int max, int *value)
{
    if (len == 0 || len > 9)
        return false;
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        n = n * 10 + (s[i] - '0');
    }
    if (n > max)
        return false;
    *value = n;
    return true;
}

static bool s_is (const char *key, size_t key_len, const char *name)
{
    return strlen (name) == key_len && memcmp (key, name, key_len) == 0;
}

//  A function name as the real API accepts it: [A-Za-z0-9_-]{1,64}
static bool s_tool_name (const char *s, size_t len)
{
    if (len == 0 || len > MOCK_CONTROL_TOOL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void s_apply (mock_control_t *self, const char *key, size_t key_len, const char *val,
                     size_t val_len)
{
    int n;
    if (s_is (key, key_len, "tool")) {
        if (s_tool_name (val, val_len)) {
            memcpy (self->tool, val, val_len);
            self->tool[val_len] = 0;
        }
        return;
    }
    if (!s_number (val, val_len, MAX_DELAY_MS, &n))
        return;
    if (s_is (key, key_len, "latency"))
        self->latency_ms = n;
    else if (s_is (key, key_len, "status")) {
        if (n == 0 || (n >= 200 && n <= 599))
            self->status = n == 200 ? 0 : n;
    } else if (s_is (key, key_len, "retry_after"))
        self->retry_after = n;
    else if (s_is (key, key_len, "chunks"))
        self->chunks = n > MAX_CHUNKS ? MAX_CHUNKS : n;
    else if (s_is (key, key_len, "chunk_delay"))
        self->chunk_delay_ms = n;
    else if (s_is (key, key_len, "hang"))
        self->hang = n != 0;
    else if (s_is (key, key_len, "drop"))
        self->drop_after = n ? -2 : -1;
    else if (s_is (key, key_len, "drop_after"))
        self->drop_after = n;
}

static bool s_blank (char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

//  --------------------------------------------------------------------------
//  Apply a leading "[mock ...]" prefix, return its length or 0

size_t mock_control_parse (mock_control_t *self, const char *text, size_t len)
{
    if (len < 6 || memcmp (text, "[mock", 5) != 0 || !(text[5] == ']' || s_blank (text[5])))
        return 0;
    const char *end = memchr (text, ']', len);
    if (!end)
        return 0;
    const char *p = text + 5;
    while (p < end) {
        while (p < end && s_blank (*p))
            p++;
        const char *word = p;
        while (p < end && !s_blank (*p))
            p++;
        const char *eq = memchr (word, '=', (size_t)(p - word));
        if (eq)
            s_apply (self, word, (size_t)(eq - word), eq + 1, (size_t)(p - eq - 1));
    }
    size_t used = (size_t)(end - text) + 1;
    while (used < len && s_blank (text[used]))
        used++;
    return used;
}
