/*  ar_json_scan: strict validating JSON scan (see the header for why it exists). */
#include "ar_json_scan.h"
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define AR_JSON_MAX_DEPTH 128

typedef struct {
    const char *start, *p, *end;
    int report_depth;
    ar_json_visit_fn visit;
    void *arg;
    const char *error;
    bool stopped;
} s_scan_t;

//  1 marks bytes that end the fast path inside a string: quote, backslash, control, non-ASCII.
static const uint8_t s_string_special[256] = {
    [0 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xff] = 1,
};

//  True when none of the 8 bytes in word ends the fast path (SWAR: a byte below 0x20, a
//  quote, a backslash or a high bit). The borrow trick can flag a byte above a real match,
//  never a word without one, so a false "no" only sends us to the byte loop.
static inline bool s_plain8 (uint64_t word)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = word ^ (ones * '"'), slash = word ^ (ones * '\\');
    uint64_t control = (word - ones * 0x20) & ~word;
    uint64_t quotes = (quote - ones) & ~quote, slashes = (slash - ones) & ~slash;
    return ((control | quotes | slashes | word) & highs) == 0;
}

static void s_skip_ws (s_scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int s_fail (s_scan_t *s, const char *why)
{
    if (!s->error)
        s->error = why;
    return -1;
}

static int s_hex4 (const char *p, unsigned *out)
{
    unsigned value = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        value <<= 4;
        if (c >= '0' && c <= '9')
            value |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            value |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            value |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = value;
    return 0;
}

//  One UTF-8 sequence starting at p (first byte >= 0x80). Returns its length or -1.
static int s_utf8 (const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    int len;
    uint32_t min, cp;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000, cp = c & 0x07;
    else
        return -1;
    if (end - p < len)
        return -1;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    return len;
}

//  At the opening quote; leaves p after the closing quote.
static int s_string (s_scan_t *s)
{
    const uint8_t *p = (const uint8_t *)s->p + 1, *end = (const uint8_t *)s->end;
    for (;;) {
        //  Eight bytes at a time through plain text, then byte by byte to the special one.
        while (end - p >= 8) {
            uint64_t word;
            memcpy (&word, p, 8);
            if (!s_plain8 (word))
                break;
            p += 8;
        }
        while (p < end && !s_string_special[*p])
            p++;
        if (p >= end)
            return s_fail (s, "unterminated string");
        if (*p == '"') {
            s->p = (const char *)p + 1;
            return 0;
        }
        if (*p == '\\') {
            if (end - p < 2)
                return s_fail (s, "unterminated escape");
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p += 2;
                break;
            case 'u': {
                unsigned cp;
                if (end - p < 6 || s_hex4 ((const char *)p + 2, &cp) != 0)
                    return s_fail (s, "bad \\u escape");
                p += 6;
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return s_fail (s, "lone low surrogate escape");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned low;
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                        s_hex4 ((const char *)p + 2, &low) != 0 || low < 0xdc00 || low > 0xdfff)
                        return s_fail (s, "lone high surrogate escape");
                    p += 6;
                }
                break;
            }
            default:
                return s_fail (s, "bad escape");
            }
            continue;
        }
        if (*p < 0x20)
            return s_fail (s, "control character in string");
        int len = s_utf8 (p, end);
        if (len < 0)
            return s_fail (s, "invalid UTF-8");
        p += len;
    }
}

static int s_number (s_scan_t *s)
{
    const char *p = s->p, *end = s->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return s_fail (s, "bad number");
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    else
        return s_fail (s, "bad number");
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return s_fail (s, "bad fraction");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return s_fail (s, "bad exponent");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    s->p = p;
    return 0;
}

static int s_literal (s_scan_t *s, const char *word, size_t len)
{
    if ((size_t)(s->end - s->p) < len || memcmp (s->p, word, len) != 0)
        return s_fail (s, "unexpected character");
    s->p += len;
    return 0;
}

static int s_value (s_scan_t *s, int depth, const char *key, size_t key_len);

static int s_report (s_scan_t *s, int depth, ar_json_type_t type, const char *key, size_t key_len,
                     const char *start)
{
    if (depth > s->report_depth || !s->visit)
        return 0;
    ar_json_item_t item = {depth, type, key, key_len, start, (size_t)(s->p - start)};
    if (s->visit (&item, s->arg) != 0) {
        s->stopped = true;
        return -1;
    }
    return 0;
}

static int s_container (s_scan_t *s, int depth, bool object)
{
    if (depth >= AR_JSON_MAX_DEPTH)
        return s_fail (s, "nesting too deep");
    char close = object ? '}' : ']';
    s->p++;
    s_skip_ws (s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        if (object) {
            if (s->p >= s->end || *s->p != '"')
                return s_fail (s, "expected a member name");
            const char *key_start = s->p;
            if (s_string (s) != 0)
                return -1;
            key = key_start + 1;
            key_len = (size_t)(s->p - key_start) - 2;
            s_skip_ws (s);
            if (s->p >= s->end || *s->p != ':')
                return s_fail (s, "expected ':'");
            s->p++;
            s_skip_ws (s);
        }
        if (s_value (s, depth + 1, key, key_len) != 0)
            return -1;
        s_skip_ws (s);
        if (s->p >= s->end)
            return s_fail (s, object ? "unterminated object" : "unterminated array");
        if (*s->p == ',') {
            s->p++;
            s_skip_ws (s);
            continue;
        }
        if (*s->p == close) {
            s->p++;
            return 0;
        }
        return s_fail (s, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int s_value (s_scan_t *s, int depth, const char *key, size_t key_len)
{
    if (s->p >= s->end)
        return s_fail (s, "unexpected end of input");
    const char *start = s->p;
    ar_json_type_t type;
    int rc;
    switch (*s->p) {
    case '{':
        type = AR_JSON_OBJECT, rc = s_container (s, depth, true);
        break;
    case '[':
        type = AR_JSON_ARRAY, rc = s_container (s, depth, false);
        break;
    case '"':
        type = AR_JSON_STRING, rc = s_string (s);
        break;
    case 't':
        type = AR_JSON_TRUE, rc = s_literal (s, "true", 4);
        break;
    case 'f':
        type = AR_JSON_FALSE, rc = s_literal (s, "false", 5);
        break;
    case 'n':
        type = AR_JSON_NULL, rc = s_literal (s, "null", 4);
        break;
    default:
        type = AR_JSON_NUMBER, rc = s_number (s);
        break;
    }
    if (rc != 0)
        return -1;
    return s_report (s, depth, type, key, key_len, start);
}

int ar_json_scan (const char *data, size_t len, int report_depth, ar_json_visit_fn visit, void *arg,
                  size_t *error_at, const char **error)
{
    s_scan_t s = {data, data, data + len, report_depth, visit, arg, NULL, false};
    s_skip_ws (&s);
    int rc = s_value (&s, 0, NULL, 0);
    if (rc == 0) {
        s_skip_ws (&s);
        if (s.p != s.end)
            rc = s_fail (&s, "trailing characters after the JSON value");
    }
    if (s.stopped)
        return 1;
    if (rc != 0) {
        if (error_at)
            *error_at = (size_t)(s.p - s.start);
        if (error)
            *error = s.error ? s.error : "invalid JSON";
        return -1;
    }
    return 0;
}

static int s_put_utf8 (unsigned cp, char *out, size_t size, size_t *used)
{
    char buf[4];
    int n;
    if (cp < 0x80)
        buf[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        buf[0] = (char)(0xc0 | (cp >> 6)), buf[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        buf[0] = (char)(0xe0 | (cp >> 12)), buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
        buf[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    else
        buf[0] = (char)(0xf0 | (cp >> 18)), buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), buf[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    if (*used + (size_t)n >= size)
        return -1;
    memcpy (out + *used, buf, (size_t)n);
    *used += (size_t)n;
    return 0;
}

int ar_json_string (const char *token, size_t len, char *out, size_t size)
{
    if (len < 2 || token[0] != '"' || token[len - 1] != '"' || size == 0)
        return -1;
    size_t used = 0;
    for (size_t i = 1; i < len - 1; i++) {
        unsigned cp = (unsigned char)token[i];
        if (cp == '\\' && i + 1 < len - 1) {
            char e = token[++i];
            switch (e) {
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u':
                if (i + 4 >= len - 1 || s_hex4 (token + i + 1, &cp) != 0)
                    return -1;
                i += 4;
                if (cp >= 0xd800 && cp <= 0xdbff && i + 6 < len - 1 && token[i + 1] == '\\' &&
                    token[i + 2] == 'u') {
                    unsigned low;
                    if (s_hex4 (token + i + 3, &low) == 0 && low >= 0xdc00 && low <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                        i += 6;
                    }
                }
                if (s_put_utf8 (cp, out, size, &used) != 0)
                    return -1;
                continue;
            default:
                cp = (unsigned char)e;
                break;
            }
        }
        if (used + 1 >= size)
            return -1;
        out[used++] = (char)cp;
    }
    out[used] = 0;
    return (int)used;
}

//  --------------------------------------------------------------------------

typedef struct {
    int seen;
    char model[64];
    bool stream;
} s_probe_t;

static int s_probe (const ar_json_item_t *item, void *arg)
{
    s_probe_t *probe = arg;
    probe->seen++;
    if (item->depth == 1 && item->key_len == 5 && memcmp (item->key, "model", 5) == 0)
        ar_json_string (item->value, item->value_len, probe->model, sizeof probe->model);
    if (item->depth == 1 && item->key_len == 6 && memcmp (item->key, "stream", 6) == 0)
        probe->stream = item->type == AR_JSON_TRUE;
    return 0;
}

static int s_stop (const ar_json_item_t *item, void *arg)
{
    (void)arg;
    return item->depth == 1;
}

void ar_json_scan_test (bool verbose)
{
    const char *good[] = {
        "{}",
        "[]",
        "0",
        "-0.5e+10",
        "\"\"",
        "true",
        " null ",
        "[1,[2,[3]],{\"a\":{}}]",
        "\"\\u00e9\\ud83d\\ude00\\n\\\"\"",
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
        "{\"a\" : [ 1 , 2 ] }",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert (ar_json_scan (good[i], strlen (good[i]), 0, NULL, NULL, NULL, NULL) == 0);
    const char *bad[] = {
        "",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "1.",
        "-",
        "1e",
        "tru",
        "nul",
        "{'a':1}",
        "\"abc",
        "\"\\x\"",
        "\"\\u12g4\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\t\"",
        "{} {}",
        "\"\xc3\x28\"",         // bad continuation
        "\"\xc0\xaf\"",         // overlong
        "\"\xed\xa0\x80\"",     // UTF-16 surrogate in UTF-8
        "\"\xf4\x90\x80\x80\"", // above U+10FFFF
        "\"\xff\"",
        "[1 2]",
        "{\"a\" 1}",
        "{1:2}",
        "NaN",
        "+1",
        ".5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *error = NULL;
        size_t at = 0;
        if (ar_json_scan (bad[i], strlen (bad[i]), 0, NULL, NULL, &at, &error) != -1) {
            if (verbose)
                printf ("accepted bad[%zu]\n", i);
            assert (false);
        }
        assert (error && *error);
    }
    //  Every special byte is caught at every position of the 8-byte fast path.
    const char specials[] = {'"', '\\', '\x01', '\x1f', '\x80', '\xff'};
    for (size_t k = 0; k < sizeof specials; k++)
        for (int at = 0; at < 24; at++) {
            char text[40];
            memset (text, 'a', sizeof text);
            text[0] = '"';
            text[1 + at] = specials[k];
            text[31] = '"';
            //  A lone special byte in the middle is always invalid except a quote, which ends
            //  the string early and leaves trailing junk: invalid either way.
            assert (ar_json_scan (text, 32, 0, NULL, NULL, NULL, NULL) == -1);
            text[1 + at] = ' ';
            assert (ar_json_scan (text, 32, 0, NULL, NULL, NULL, NULL) == 0);
        }
    //  Nesting is capped, without recursion running away.
    char deep[600];
    memset (deep, '[', 300);
    memset (deep + 300, ']', 300);
    assert (ar_json_scan (deep, 600, 0, NULL, NULL, NULL, NULL) == -1);
    //  Shallow values are reported with their keys; deeper ones are not.
    const char *doc =
        "{\"model\":\"gpt-\\u0034o\",\"messages\":[{\"role\":\"user\"}],\"stream\":true}";
    s_probe_t probe = {0};
    assert (ar_json_scan (doc, strlen (doc), 1, s_probe, &probe, NULL, NULL) == 0);
    assert (probe.seen == 4); // root + 3 members
    assert (strcmp (probe.model, "gpt-4o") == 0 && probe.stream);
    assert (ar_json_scan (doc, strlen (doc), 1, s_stop, NULL, NULL, NULL) == 1);
    //  String decoding.
    char out[32];
    assert (ar_json_string ("\"a\\u00e9\\ud83d\\ude00\"", 21, out, sizeof out) == 7);
    assert (strcmp (out, "a\xc3\xa9\xf0\x9f\x98\x80") == 0);
    assert (ar_json_string ("\"toolong\"", 9, out, 4) == -1);
    assert (ar_json_string ("nope", 4, out, sizeof out) == -1);
}
