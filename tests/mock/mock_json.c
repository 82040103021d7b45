/*  =========================================================================
    mock_json - a strict, allocation-light JSON reader for request bodies
    =========================================================================
*/
#include "mock_json.h"

#include <stdlib.h>
#include <string.h>

//  Deeper nesting than this is refused, so recursion stays shallow
#define MAX_DEPTH 512

typedef struct {
    mock_json_t *doc;
    const unsigned char *s;
    size_t pos;
    size_t len;
    int depth;
} s_parser_t;

static bool s_value (s_parser_t *p);

static void s_skip_blank (s_parser_t *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

//  Add a token; UINT32_MAX if out of memory
static uint32_t s_push (s_parser_t *p, mock_json_type_t type, size_t start)
{
    mock_json_t *doc = p->doc;
    if (doc->size == doc->cap) {
        uint32_t cap = doc->cap ? doc->cap * 2 : 64;
        if (cap < doc->cap)
            return UINT32_MAX;
        mock_json_token_t *tokens = realloc (doc->tokens, cap * sizeof *tokens);
        if (!tokens)
            return UINT32_MAX;
        doc->tokens = tokens;
        doc->cap = cap;
    }
    uint32_t index = doc->size++;
    mock_json_token_t *token = &doc->tokens[index];
    memset (token, 0, sizeof *token);
    token->type = (uint8_t)type;
    token->start = (uint32_t)start;
    return index;
}

static int s_hex (unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

//  Read the 4 hex digits of a \u escape at s; -1 if malformed
static long s_hex4 (const unsigned char *s, size_t left)
{
    if (left < 4)
        return -1;
    long value = 0;
    for (int i = 0; i < 4; i++) {
        int digit = s_hex (s[i]);
        if (digit < 0)
            return -1;
        value = value * 16 + digit;
    }
    return value;
}

//  Scan a \u escape (pos at the 'u'); return the code point and move pos
//  past it, or -1. Surrogates must come as a proper pair.
static long s_unicode_escape (const unsigned char *s, size_t *pos, size_t len)
{
    long high = s_hex4 (s + *pos + 1, len - *pos - 1);
    if (high < 0 || (high >= 0xDC00 && high <= 0xDFFF))
        return -1;
    *pos += 5;
    if (high < 0xD800 || high > 0xDBFF)
        return high;
    if (len - *pos < 6 || s[*pos] != '\\' || s[*pos + 1] != 'u')
        return -1;
    long low = s_hex4 (s + *pos + 2, len - *pos - 2);
    if (low < 0xDC00 || low > 0xDFFF)
        return -1;
    *pos += 6;
    return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
}

//  True if any of the 8 bytes in word needs a closer look: a quote, a
//  backslash, a control character or a non-ASCII byte. Long prompts are
//  mostly plain ASCII, so skipping 8 bytes at a time matters.
static bool s_special8 (uint64_t word)
{
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t highs = 0x8080808080808080ull;
    uint64_t quote = word ^ (ones * '"');
    uint64_t slash = word ^ (ones * '\\');
    uint64_t zero_quote = (quote - ones) & ~quote;
    uint64_t zero_slash = (slash - ones) & ~slash;
    uint64_t control = word - ones * 0x20;
    return ((zero_quote | zero_slash | control | word) & highs) != 0;
}

//  pos is just past the opening quote
static bool s_string (s_parser_t *p)
{
    uint32_t index = s_push (p, MOCK_JSON_STRING, p->pos);
    if (index == UINT32_MAX)
        return false;
    bool escaped = false;
    const unsigned char *s = p->s;
    size_t pos = p->pos;
    while (pos < p->len) {
        uint64_t word;
        if (p->len - pos >= 8) {
            memcpy (&word, s + pos, 8);
            if (!s_special8 (word)) {
                pos += 8;
                continue;
            }
        }
        unsigned char c = s[pos];
        if (c == '"') {
            mock_json_token_t *token = &p->doc->tokens[index];
            token->end = (uint32_t)pos;
            token->escaped = escaped;
            token->next = index + 1;
            p->pos = pos + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c < 0x80 && c != '\\') {
            pos++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = mock_utf8_len (s + pos, p->len - pos);
            if (n == 0)
                return false;
            pos += n;
            continue;
        }
        escaped = true;
        if (++pos == p->len)
            return false;
        c = s[pos];
        if (c == 'u') {
            if (s_unicode_escape (s, &pos, p->len) < 0)
                return false;
        } else if (c && strchr ("\"\\/bfnrt", c))
            pos++;
        else
            return false;
    }
    return false;
}

static bool s_digits (s_parser_t *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++;
    return p->pos > start;
}

static bool s_number (s_parser_t *p)
{
    size_t start = p->pos;
    mock_json_type_t type = MOCK_JSON_INTEGER;
    if (p->s[p->pos] == '-')
        p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '0')
        p->pos++;
    else if (!s_digits (p))
        return false;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        type = MOCK_JSON_REAL;
        if (!s_digits (p))
            return false;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        type = MOCK_JSON_REAL;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (!s_digits (p))
            return false;
    }
    uint32_t index = s_push (p, type, start);
    if (index == UINT32_MAX)
        return false;
    p->doc->tokens[index].end = (uint32_t)p->pos;
    p->doc->tokens[index].next = index + 1;
    return true;
}

static bool s_literal (s_parser_t *p, const char *word, mock_json_type_t type)
{
    size_t len = strlen (word);
    if (p->len - p->pos < len || memcmp (p->s + p->pos, word, len) != 0)
        return false;
    uint32_t index = s_push (p, type, p->pos);
    if (index == UINT32_MAX)
        return false;
    p->pos += len;
    p->doc->tokens[index].end = (uint32_t)p->pos;
    p->doc->tokens[index].next = index + 1;
    return true;
}

//  Array or object; pos is at the bracket
static bool s_container (s_parser_t *p, bool object)
{
    if (++p->depth > MAX_DEPTH)
        return false;
    uint32_t index = s_push (p, object ? MOCK_JSON_OBJECT : MOCK_JSON_ARRAY, p->pos);
    if (index == UINT32_MAX)
        return false;
    char close = object ? '}' : ']';
    uint32_t count = 0;
    p->pos++;
    s_skip_blank (p);
    if (p->pos < p->len && p->s[p->pos] == close)
        p->pos++;
    else
        for (;;) {
            if (object) {
                s_skip_blank (p);
                if (p->pos == p->len || p->s[p->pos] != '"')
                    return false;
                p->pos++;
                if (!s_string (p))
                    return false;
                s_skip_blank (p);
                if (p->pos == p->len || p->s[p->pos] != ':')
                    return false;
                p->pos++;
            }
            if (!s_value (p))
                return false;
            count++;
            s_skip_blank (p);
            if (p->pos == p->len)
                return false;
            if (p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            if (p->s[p->pos] != ',')
                return false;
            p->pos++;
        }
    mock_json_token_t *token = &p->doc->tokens[index];
    token->end = (uint32_t)p->pos;
    token->count = count;
    token->next = p->doc->size;
    p->depth--;
    return true;
}

static bool s_value (s_parser_t *p)
{
    s_skip_blank (p);
    if (p->pos == p->len)
        return false;
    switch (p->s[p->pos]) {
    case '{':
        return s_container (p, true);
    case '[':
        return s_container (p, false);
    case '"':
        p->pos++;
        return s_string (p);
    case 't':
        return s_literal (p, "true", MOCK_JSON_TRUE);
    case 'f':
        return s_literal (p, "false", MOCK_JSON_FALSE);
    case 'n':
        return s_literal (p, "null", MOCK_JSON_NULL);
    default:
        return s_number (p);
    }
}

//  --------------------------------------------------------------------------
//  Parse text

bool mock_json_parse (mock_json_t *self, const char *text, size_t len)
{
    memset (self, 0, sizeof *self);
    self->text = text;
    if (len >= UINT32_MAX)
        return false;
    s_parser_t p = {.doc = self, .s = (const unsigned char *)text, .len = len};
    if (!s_value (&p))
        return false;
    s_skip_blank (&p);
    return p.pos == p.len;
}

void mock_json_free (mock_json_t *self)
{
    free (self->tokens);
    self->tokens = NULL;
    self->size = self->cap = 0;
}

//  --------------------------------------------------------------------------
//  Navigation

mock_json_type_t mock_json_type (mock_json_t *self, uint32_t index)
{
    return index < self->size ? (mock_json_type_t)self->tokens[index].type : MOCK_JSON_NULL;
}

uint32_t mock_json_get (mock_json_t *self, uint32_t obj, const char *key)
{
    if (obj >= self->size || self->tokens[obj].type != MOCK_JSON_OBJECT)
        return 0;
    uint32_t found = 0;
    uint32_t name = obj + 1;
    for (uint32_t i = 0; i < self->tokens[obj].count; i++) {
        if (mock_json_string_is (self, name, key))
            found = name + 1; //  later duplicates win, as in jansson
        name = self->tokens[name + 1].next;
    }
    return found;
}

uint32_t mock_json_first (mock_json_t *self, uint32_t container)
{
    if (container >= self->size || self->tokens[container].count == 0)
        return 0;
    if (self->tokens[container].type == MOCK_JSON_ARRAY)
        return container + 1;
    if (self->tokens[container].type == MOCK_JSON_OBJECT)
        return container + 2;
    return 0;
}

uint32_t mock_json_next (mock_json_t *self, uint32_t container, uint32_t value)
{
    uint32_t next = self->tokens[value].next;
    if (next >= self->tokens[container].next)
        return 0;
    return self->tokens[container].type == MOCK_JSON_OBJECT ? next + 1 : next;
}

//  --------------------------------------------------------------------------
//  Strings

//  Encode a code point as UTF-8 into out (4 bytes room); return length
static size_t s_utf8_put (long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

//  Decode a validated string token; out may be NULL to only count
static size_t s_decode (mock_json_t *self, uint32_t index, mock_buf_t *out)
{
    const mock_json_token_t *token = &self->tokens[index];
    const unsigned char *s = (const unsigned char *)self->text;
    if (!token->escaped) {
        if (out)
            mock_buf_append (out, s + token->start, token->end - token->start);
        return token->end - token->start;
    }
    size_t total = 0;
    size_t pos = token->start;
    while (pos < token->end) {
        size_t run = pos;
        while (run < token->end && s[run] != '\\')
            run++;
        if (out)
            mock_buf_append (out, s + pos, run - pos);
        total += run - pos;
        pos = run;
        if (pos == token->end)
            break;
        char bytes[4];
        size_t n = 1;
        unsigned char c = s[pos + 1];
        if (c == 'u') {
            pos++;
            long cp = s_unicode_escape (s, &pos, token->end);
            n = s_utf8_put (cp < 0 ? 0xFFFD : cp, bytes);
        } else {
            const char *from = "\"\\/bfnrt";
            const char *to = "\"\\/\b\f\n\r\t";
            const char *at = strchr (from, c);
            bytes[0] = at ? to[at - from] : (char)c;
            pos += 2;
        }
        if (out)
            mock_buf_append (out, bytes, n);
        total += n;
    }
    return total;
}

size_t mock_json_string_length (mock_json_t *self, uint32_t index)
{
    if (index >= self->size || self->tokens[index].type != MOCK_JSON_STRING)
        return 0;
    return s_decode (self, index, NULL);
}

void mock_json_string (mock_json_t *self, uint32_t index, mock_buf_t *out)
{
    if (index < self->size && self->tokens[index].type == MOCK_JSON_STRING)
        s_decode (self, index, out);
}

bool mock_json_string_is (mock_json_t *self, uint32_t index, const char *str)
{
    if (index >= self->size || self->tokens[index].type != MOCK_JSON_STRING)
        return false;
    const mock_json_token_t *token = &self->tokens[index];
    size_t len = strlen (str);
    if (!token->escaped)
        return token->end - token->start == len &&
               memcmp (self->text + token->start, str, len) == 0;
    //  Escaped keys are rare; decode to compare
    mock_buf_t decoded = {0};
    s_decode (self, index, &decoded);
    bool same = !decoded.broken && decoded.len == len && memcmp (decoded.data, str, len) == 0;
    mock_buf_free (&decoded);
    return same;
}

int64_t mock_json_integer (mock_json_t *self, uint32_t index)
{
    if (index >= self->size || self->tokens[index].type != MOCK_JSON_INTEGER)
        return 0;
    const mock_json_token_t *token = &self->tokens[index];
    const char *s = self->text + token->start;
    const char *end = self->text + token->end;
    bool negative = *s == '-';
    if (negative)
        s++;
    uint64_t value = 0;
    for (; s < end; s++) {
        uint64_t digit = (uint64_t)(*s - '0');
        if (value > (UINT64_MAX - digit) / 10) {
            value = UINT64_MAX;
            break;
        }
        value = value * 10 + digit;
    }
    if (negative)
        return value > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)value;
    return value > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)value;
}
