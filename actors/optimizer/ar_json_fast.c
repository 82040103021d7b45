/*  ar_json_fast: a faster loader and compact dumper for the jansson DOM (see the header). */
#include "ar_json_fast.h"
#include "ar_rng.h"
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define S_LOAD_DEPTH 2048 // jansson's JSON_PARSER_MAX_DEPTH: a value deeper than this fails
#define S_DUMP_DEPTH 4096 // deeper than anything a loader builds; also ends a self-containing DOM

_Static_assert(sizeof (json_int_t) == sizeof (int64_t), "json_int_t is 64 bits");

typedef struct {
    char *data;
    size_t len, cap;
} s_buf_t;

static int s_reserve (s_buf_t *buf, size_t more)
{
    if (buf->cap - buf->len > more)
        return 0;
    size_t cap = buf->cap ? buf->cap * 2 : 256;
    while (cap - buf->len <= more) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *data = realloc (buf->data, cap);
    if (!data)
        return -1;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static int s_add (s_buf_t *buf, const char *data, size_t len)
{
    if (s_reserve (buf, len) != 0)
        return -1;
    memcpy (buf->data + buf->len, data, len);
    buf->len += len;
    return 0;
}

//  Bytes a string scan must stop at: '"', '\\', control characters, and non-ASCII (to check it
//  is UTF-8, as jansson does on both sides).
static const unsigned char s_stop[256] = {
    ['"'] = 1,
    ['\\'] = 1,
    [0x00 ... 0x1f] = 1,
    [0x80 ... 0xff] = 1,
};

//  The first stop byte in [p, end), or end. Sixteen bytes at a time where SSE2 is (x86-64
//  always has it): one signed compare finds both < 0x20 and >= 0x80.
static inline const char *s_scan (const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8 ('"'), backslash = _mm_set1_epi8 ('\\'),
                  space = _mm_set1_epi8 (0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128 ((const __m128i *)p);
        __m128i hit =
            _mm_or_si128 (_mm_or_si128 (_mm_cmpeq_epi8 (x, quote), _mm_cmpeq_epi8 (x, backslash)),
                          _mm_cmplt_epi8 (x, space));
        int mask = _mm_movemask_epi8 (hit);
        if (mask)
            return p + __builtin_ctz ((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && !s_stop[(unsigned char)*p])
        p++;
    return p;
}

//  Length of the UTF-8 sequence at p (a byte >= 0x80), 0 if invalid: no overlongs, no
//  surrogates, nothing above U+10FFFF (jansson's utf8_check_full).
static size_t s_utf8 (const char *text, const char *end)
{
    const unsigned char *p = (const unsigned char *)text;
    uint32_t cp;
    size_t n;
    if (p[0] < 0xc2)
        return 0;
    else if (p[0] < 0xe0)
        n = 2, cp = p[0] & 0x1f;
    else if (p[0] < 0xf0)
        n = 3, cp = p[0] & 0x0f;
    else if (p[0] < 0xf5)
        n = 4, cp = p[0] & 0x07;
    else
        return 0;
    if ((size_t)(end - text) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0;
    if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return n;
}

//  --------------------------------------------------------------------------
//  Loading

typedef struct {
    const char *p, *end;
    s_buf_t value; // unescaped string values, long numbers
    s_buf_t key;   // the pending member name, while its value is read
} s_loader_t;

static inline void s_ws (s_loader_t *self)
{
    while (self->p < self->end &&
           (*self->p == ' ' || *self->p == '\n' || *self->p == '\r' || *self->p == '\t'))
        self->p++;
}

static int s_hex4 (const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    int value = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit < 0)
            return -1;
        value = value << 4 | digit;
    }
    return value;
}

//  One \u escape (p just after the 'u') appended as UTF-8; the end of what it used, or NULL.
//  As jansson: \u0000 and lone or mismatched surrogates fail.
static const char *s_unicode (const char *p, const char *end, s_buf_t *buf)
{
    int32_t cp = s_hex4 (p, end);
    if (cp <= 0)
        return NULL;
    p += 4;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (end - p < 2 || p[0] != '\\' || p[1] != 'u')
            return NULL;
        int32_t low = s_hex4 (p + 2, end);
        if (low < 0xdc00 || low > 0xdfff)
            return NULL;
        cp = ((cp - 0xd800) << 10) + (low - 0xdc00) + 0x10000;
        p += 6;
    } else if (cp >= 0xdc00 && cp <= 0xdfff)
        return NULL;
    char out[4];
    size_t n;
    if (cp < 0x80)
        out[0] = (char)cp, n = 1;
    else if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        out[0] = (char)(0xf0 | cp >> 18);
        out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return s_add (buf, out, n) == 0 ? p : NULL;
}

//  The string whose opening quote is just before self->p. Without escapes, *out points into
//  the text itself (nothing copied); with them, into buf, unescaped.
static int s_string (s_loader_t *self, s_buf_t *buf, const char **out, size_t *out_len)
{
    const char *p = self->p, *end = self->end, *run = p;
    bool copied = false;
    buf->len = 0;
    while (true) {
        p = s_scan (p, end);
        if (p == end)
            return -1;
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            if (copied) {
                if (s_add (buf, run, (size_t)(p - run)) != 0)
                    return -1;
                *out = buf->data;
                *out_len = buf->len;
            } else {
                *out = run;
                *out_len = (size_t)(p - run);
            }
            self->p = p + 1;
            return 0;
        }
        if (c >= 0x80) {
            size_t n = s_utf8 (p, end);
            if (!n)
                return -1;
            p += n;
            continue;
        }
        if (c != '\\' || end - p < 2)
            return -1; // a raw control character, or a cut escape
        if (s_add (buf, run, (size_t)(p - run)) != 0)
            return -1;
        copied = true;
        char unescaped;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            unescaped = p[1];
            break;
        case 'b':
            unescaped = '\b';
            break;
        case 'f':
            unescaped = '\f';
            break;
        case 'n':
            unescaped = '\n';
            break;
        case 'r':
            unescaped = '\r';
            break;
        case 't':
            unescaped = '\t';
            break;
        case 'u':
            p = s_unicode (p + 2, end, buf);
            if (!p)
                return -1;
            run = p;
            continue;
        default:
            return -1;
        }
        if (s_add (buf, &unescaped, 1) != 0)
            return -1;
        p += 2;
        run = p;
    }
}

static inline bool s_digit (const char *p, const char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

//  A number by the JSON grammar. Integers as jansson: json_int_t, and overflow fails (its
//  "too big integer"); "-0" is the integer 0. Anything with a fraction or an exponent is a
//  real by strtod, and overflow to infinity fails (its "real number overflow").
static json_t *s_number (s_loader_t *self)
{
    const char *p = self->p, *end = self->end, *start = p;
    bool negative = p < end && *p == '-';
    p += negative;
    if (!s_digit (p, end))
        return NULL;
    if (*p == '0')
        p++;
    else
        while (s_digit (p, end))
            p++;
    const char *digits_end = p;
    bool real = false;
    if (p < end && *p == '.') {
        p++;
        if (!s_digit (p, end))
            return NULL;
        while (s_digit (p, end))
            p++;
        real = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!s_digit (p, end))
            return NULL;
        while (s_digit (p, end))
            p++;
        real = true;
    }
    self->p = p;
    if (!real) {
        uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, value = 0;
        for (const char *d = start + negative; d < digits_end; d++) {
            unsigned digit = (unsigned)(*d - '0');
            if (value > (limit - digit) / 10)
                return NULL;
            value = value * 10 + digit;
        }
        json_int_t integer = negative ? (json_int_t)(0 - value) : (json_int_t)value;
        return json_integer (integer);
    }
    //  strtod needs a terminated copy (the text need not be terminated after len).
    size_t len = (size_t)(p - start);
    char local[64], *text = local;
    if (len >= sizeof local) {
        self->value.len = 0;
        if (s_reserve (&self->value, len + 1) != 0)
            return NULL;
        text = self->value.data;
    }
    memcpy (text, start, len);
    text[len] = 0;
    char *stop;
    errno = 0;
    double value = strtod (text, &stop);
    if (stop != text + len || ((value == HUGE_VAL || value == -HUGE_VAL) && errno == ERANGE))
        return NULL;
    return json_real (value);
}

static bool s_word (s_loader_t *self, const char *word, size_t len)
{
    if ((size_t)(self->end - self->p) < len || memcmp (self->p, word, len) != 0)
        return false;
    self->p += len;
    return true;
}

json_t *ar_json_fast_load (const char *text, size_t len, int flags_reserved)
{
    if (!text || flags_reserved != 0)
        return NULL;
    s_loader_t self = {.p = text, .end = text + len};
    //  The open containers, innermost last: no recursion, so no stack to run out of.
    json_t *stack[S_LOAD_DEPTH];
    bool is_object[S_LOAD_DEPTH];
    int depth = 0;
    json_t *root = NULL;
    const char *key = NULL;
    size_t key_len = 0;

    s_ws (&self);
    if (self.p == self.end || (*self.p != '{' && *self.p != '['))
        goto fail; // jansson wants an array or an object at the top (no JSON_DECODE_ANY)

value:
    s_ws (&self);
    if (self.p == self.end || depth >= S_LOAD_DEPTH)
        goto fail;
    {
        json_t *item = NULL;
        char c = *self.p;
        bool container = c == '{' || c == '[';
        if (container) {
            item = c == '{' ? json_object () : json_array ();
            self.p++;
        } else if (c == '"') {
            const char *string;
            size_t string_len;
            self.p++;
            if (s_string (&self, &self.value, &string, &string_len) == 0)
                item = json_stringn_nocheck (string, string_len);
        } else if (c == 't')
            item = s_word (&self, "true", 4) ? json_true () : NULL;
        else if (c == 'f')
            item = s_word (&self, "false", 5) ? json_false () : NULL;
        else if (c == 'n')
            item = s_word (&self, "null", 4) ? json_null () : NULL;
        else
            item = s_number (&self);
        if (!item)
            goto fail;
        //  Containers join their parent before their contents are read, so the member name
        //  buffer is free again; the member order is the same (the parent gets nothing else
        //  in between), and a repeated name still keeps its first place and its last value.
        if (depth == 0)
            root = item;
        else if (is_object[depth - 1]) {
            if (json_object_setn_new_nocheck (stack[depth - 1], key, key_len, item) != 0)
                goto fail;
        } else if (json_array_append_new (stack[depth - 1], item) != 0)
            goto fail;
        if (container) {
            stack[depth] = item;
            is_object[depth] = c == '{';
            depth++;
            s_ws (&self);
            if (self.p < self.end && *self.p == (c == '{' ? '}' : ']')) {
                self.p++;
                depth--;
                goto next;
            }
            if (c == '{')
                goto member;
            goto value;
        }
    }

next: // a value is complete: a comma, the end of its container, or the end of the text
    s_ws (&self);
    if (depth == 0) {
        if (self.p != self.end)
            goto fail; // jansson: "end of file expected"
        free (self.value.data);
        free (self.key.data);
        return root;
    }
    if (self.p == self.end)
        goto fail;
    if (*self.p == ',') {
        self.p++;
        if (is_object[depth - 1])
            goto member;
        goto value;
    }
    if (*self.p != (is_object[depth - 1] ? '}' : ']'))
        goto fail;
    self.p++;
    depth--;
    goto next;

member:
    s_ws (&self);
    if (self.p == self.end || *self.p != '"')
        goto fail;
    self.p++;
    if (s_string (&self, &self.key, &key, &key_len) != 0)
        goto fail;
    s_ws (&self);
    if (self.p == self.end || *self.p != ':')
        goto fail;
    self.p++;
    goto value;

fail:
    json_decref (root);
    free (self.value.data);
    free (self.key.data);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Dumping

//  s as a JSON string, escaped as jansson escapes without flags: '"', '\\', and the control
//  characters (\b \f \n \r \t, else \u00XX in upper case); '/', DEL and non-ASCII as they are.
static int s_dump_string (s_buf_t *buf, const char *s, size_t len)
{
    if (s_reserve (buf, len + 2) != 0)
        return -1;
    buf->data[buf->len++] = '"';
    const char *p = s, *end = s + len, *run = s;
    while (true) {
        p = s_scan (p, end);
        if (p == end)
            break;
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80) {
            size_t n = s_utf8 (p, end);
            if (!n)
                return -1; // jansson refuses to dump invalid UTF-8
            p += n;
            continue;
        }
        char escape[8] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            escape[1] = (char)c;
            break;
        case '\b':
            escape[1] = 'b';
            break;
        case '\f':
            escape[1] = 'f';
            break;
        case '\n':
            escape[1] = 'n';
            break;
        case '\r':
            escape[1] = 'r';
            break;
        case '\t':
            escape[1] = 't';
            break;
        default:
            memcpy (escape + 1, "u00", 3);
            escape[4] = "0123456789ABCDEF"[c >> 4];
            escape[5] = "0123456789ABCDEF"[c & 15];
            n = 6;
        }
        if (s_add (buf, run, (size_t)(p - run)) != 0 || s_add (buf, escape, n) != 0)
            return -1;
        p++;
        run = p;
    }
    if (s_add (buf, run, (size_t)(end - run)) != 0 || s_reserve (buf, 1) != 0)
        return -1;
    buf->data[buf->len++] = '"';
    return 0;
}

static int s_dump_integer (s_buf_t *buf, json_int_t value)
{
    char text[24], *p = text + sizeof text;
    uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    do {
        *--p = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0)
        *--p = '-';
    return s_add (buf, p, (size_t)(text + sizeof text - p));
}

//  The shortest of %.15g, %.16g, %.17g that reads back to the same double (17 always does),
//  then jansson's touches: ".0" when it would read as an integer, and the exponent without
//  '+' or leading zeros (1e+20 -> 1e20, 1e-07 -> 1e-7).
static int s_dump_real (s_buf_t *buf, double value)
{
    char text[48];
    int len = 0;
    for (int precision = 15; precision <= 17; precision++) {
        len = snprintf (text, sizeof text - 3, "%.*g", precision, value);
        if (len < 0 || (size_t)len >= sizeof text - 3)
            return -1;
        if (precision == 17 || strtod (text, NULL) == value)
            break;
    }
    if (!isfinite (value))
        return -1; // jansson reals are finite; never write inf or nan
    char *exponent = strchr (text, 'e');
    if (!exponent && !strchr (text, '.')) {
        memcpy (text + len, ".0", 3);
        len += 2;
    }
    if (exponent) {
        char *start = exponent + 1, *digits = start;
        if (*digits == '+' || *digits == '-')
            digits++;
        if (*start == '-')
            start++;
        while (*digits == '0' && digits[1])
            digits++;
        memmove (start, digits, strlen (digits) + 1);
        len = (int)strlen (text);
    }
    return s_add (buf, text, (size_t)len);
}

static int s_dump_value (s_buf_t *buf, const json_t *value, int depth)
{
    if (depth > S_DUMP_DEPTH)
        return -1;
    switch (json_typeof (value)) {
    case JSON_OBJECT: {
        if (s_add (buf, "{", 1) != 0)
            return -1;
        json_t *object = (json_t *)value;
        bool first = true;
        for (void *iter = json_object_iter (object); iter;
             iter = json_object_iter_next (object, iter)) {
            if ((!first && s_add (buf, ",", 1) != 0) ||
                s_dump_string (buf, json_object_iter_key (iter), json_object_iter_key_len (iter)) !=
                    0 ||
                s_add (buf, ":", 1) != 0 ||
                s_dump_value (buf, json_object_iter_value (iter), depth + 1) != 0)
                return -1;
            first = false;
        }
        return s_add (buf, "}", 1);
    }
    case JSON_ARRAY: {
        if (s_add (buf, "[", 1) != 0)
            return -1;
        size_t size = json_array_size (value);
        for (size_t i = 0; i < size; i++)
            if ((i && s_add (buf, ",", 1) != 0) ||
                s_dump_value (buf, json_array_get (value, i), depth + 1) != 0)
                return -1;
        return s_add (buf, "]", 1);
    }
    case JSON_STRING:
        return s_dump_string (buf, json_string_value (value), json_string_length (value));
    case JSON_INTEGER:
        return s_dump_integer (buf, json_integer_value (value));
    case JSON_REAL:
        return s_dump_real (buf, json_real_value (value));
    case JSON_TRUE:
        return s_add (buf, "true", 4);
    case JSON_FALSE:
        return s_add (buf, "false", 5);
    case JSON_NULL:
        return s_add (buf, "null", 4);
    }
    return -1;
}

char *ar_json_fast_dump (const json_t *value, size_t *len_out)
{
    if (!json_is_object (value) && !json_is_array (value))
        return NULL; // as json_dumps without JSON_ENCODE_ANY
    s_buf_t buf = {0};
    if (s_reserve (&buf, 4096) != 0 || s_dump_value (&buf, value, 1) != 0 ||
        s_reserve (&buf, 1) != 0) {
        free (buf.data);
        return NULL;
    }
    buf.data[buf.len] = 0;
    if (len_out)
        *len_out = buf.len;
    return buf.data;
}

//  --------------------------------------------------------------------------
//  Self test: golden cases, then generated documents (and mutations of them) compared with
//  jansson itself, then the development corpus and bench-like chat bodies.

//  Same values (json_equal) AND the same member order everywhere.
static bool s_same (const json_t *a, const json_t *b)
{
    if (!json_equal (a, b))
        return false;
    if (json_is_object (a)) {
        void *x = json_object_iter ((json_t *)a), *y = json_object_iter ((json_t *)b);
        for (; x && y;
             x = json_object_iter_next ((json_t *)a, x), y = json_object_iter_next ((json_t *)b, y))
            if (json_object_iter_key_len (x) != json_object_iter_key_len (y) ||
                memcmp (json_object_iter_key (x), json_object_iter_key (y),
                        json_object_iter_key_len (x)) != 0 ||
                !s_same (json_object_iter_value (x), json_object_iter_value (y)))
                return false;
        return !x && !y;
    }
    if (json_is_array (a))
        for (size_t i = 0; i < json_array_size (a); i++)
            if (!s_same (json_array_get (a, i), json_array_get (b, i)))
                return false;
    return true;
}

static bool s_has_real (const json_t *value)
{
    const char *key;
    json_t *item;
    size_t i;
    if (json_is_real (value))
        return true;
    if (json_is_object (value)) {
        json_object_foreach ((json_t *)value, key, item) if (s_has_real (item)) return true;
    } else if (json_is_array (value))
        json_array_foreach (value, i, item) if (s_has_real (item)) return true;
    return false;
}

typedef struct {
    size_t documents, loaded, refused, dumps_exact, round_trips, mutations;
} s_tally_t;

//  text through both loaders; then, when it loads, through both dumpers. Returns false on any
//  difference (and says which when verbose).
static bool s_check (const char *text, size_t len, s_tally_t *tally, bool verbose)
{
    json_t *slow = json_loadb (text, len, 0, NULL);
    json_t *fast = ar_json_fast_load (text, len, 0);
    bool ok = (slow == NULL) == (fast == NULL) && (!slow || s_same (slow, fast));
    tally->documents++;
    if (ok && slow) {
        tally->loaded++;
        size_t fast_len = 0;
        char *mine = ar_json_fast_dump (fast, &fast_len);
        ok = mine && strlen (mine) == fast_len;
        if (ok && !s_has_real (slow)) {
            char *theirs = json_dumps (slow, JSON_COMPACT);
            ok = theirs && strcmp (theirs, mine) == 0;
            tally->dumps_exact += ok;
            free (theirs);
        }
        json_t *again = ok ? ar_json_fast_load (mine, fast_len, 0) : NULL;
        json_t *again_slow = ok ? json_loadb (mine, fast_len, 0, NULL) : NULL;
        ok = ok && again && s_same (again, slow) && again_slow && s_same (again_slow, slow);
        tally->round_trips += ok;
        json_decref (again);
        json_decref (again_slow);
        free (mine);
    } else if (ok)
        tally->refused++;
    if (!ok)
        fprintf (stderr, "ar_json_fast: differs from jansson on (%zu bytes): %.*s\n", len,
                 (int)(len < 400 ? len : 400), text);
    json_decref (slow);
    json_decref (fast);
    return ok;
}

static void s_gen_ws (ar_rng_t *rng, s_buf_t *out)
{
    if (ar_rng_below (rng, 4) == 0)
        for (size_t n = 1 + ar_rng_below (rng, 3); n; n--)
            assert (s_add (out, &" \t\n\r"[ar_rng_below (rng, 4)], 1) == 0);
}

static void s_gen_utf8 (s_buf_t *out, uint32_t cp)
{
    s_buf_t tmp = {0};
    char escape[12];
    snprintf (escape, sizeof escape, "%04X", cp < 0x10000 ? cp : 0x41);
    //  Reuse the loader's encoder on a \u escape, or write 4-byte forms by hand.
    if (cp < 0x10000) {
        assert (s_unicode (escape, escape + 4, &tmp));
        assert (s_add (out, tmp.data, tmp.len) == 0);
    } else {
        char bytes[4] = {(char)(0xf0 | cp >> 18), (char)(0x80 | (cp >> 12 & 0x3f)),
                         (char)(0x80 | (cp >> 6 & 0x3f)), (char)(0x80 | (cp & 0x3f))};
        assert (s_add (out, bytes, 4) == 0);
    }
    free (tmp.data);
}

static uint32_t s_gen_codepoint (ar_rng_t *rng)
{
    switch (ar_rng_below (rng, 5)) {
    case 0:
        return 0x80 + (uint32_t)ar_rng_below (rng, 0x780); // 2 bytes
    case 1:
        return 0x800 + (uint32_t)ar_rng_below (rng, 0xd800 - 0x800);
    case 2:
        return 0xe000 + (uint32_t)ar_rng_below (rng, 0x2000);
    case 3:
        return 0x10000 + (uint32_t)ar_rng_below (rng, 0x100000); // 4 bytes
    default:
        return 0x4e00 + (uint32_t)ar_rng_below (rng, 0x5000); // CJK
    }
}

static void s_gen_string (ar_rng_t *rng, s_buf_t *out, bool key)
{
    static const char *keys[] = {"a", "b", "role", "content", "", "x y", "\\u00e9", "a\\nb"};
    assert (s_add (out, "\"", 1) == 0);
    if (key && ar_rng_below (rng, 2)) {
        const char *name = keys[ar_rng_below (rng, sizeof keys / sizeof keys[0])];
        assert (s_add (out, name, strlen (name)) == 0);
        assert (s_add (out, "\"", 1) == 0);
        return;
    }
    size_t pieces =
        ar_rng_below (rng, 8) == 0 ? 50 + ar_rng_below (rng, 400) : ar_rng_below (rng, 12);
    for (size_t i = 0; i < pieces; i++) {
        char text[16];
        size_t kind = ar_rng_below (rng, 12);
        if (kind < 5) { // a run of plain ASCII (long ones exercise the 16-byte scan)
            size_t n = ar_rng_below (rng, 5) == 0 ? 17 + ar_rng_below (rng, 60)
                                                  : 1 + ar_rng_below (rng, 6);
            for (size_t j = 0; j < n; j++) {
                char c = (char)(0x20 + ar_rng_below (rng, 0x60)); // 0x20..0x7f, DEL included
                if (c == '"' || c == '\\')
                    c = '/';
                assert (s_add (out, &c, 1) == 0);
            }
        } else if (kind == 5) {
            const char *simple = &"\"\\/bfnrt"[ar_rng_below (rng, 8)];
            snprintf (text, sizeof text, "\\%c", *simple);
            assert (s_add (out, text, 2) == 0);
        } else if (kind == 6) { // \u escapes of controls and others, either case
            unsigned cp = ar_rng_below (rng, 2) ? 1 + (unsigned)ar_rng_below (rng, 0x7f)
                                                : (unsigned)s_gen_codepoint (rng) & 0xffff;
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp = 0x20ac;
            snprintf (text, sizeof text, ar_rng_below (rng, 2) ? "\\u%04x" : "\\u%04X", cp);
            assert (s_add (out, text, 6) == 0);
        } else if (kind == 7) { // a surrogate pair
            uint32_t cp = 0x10000 + (uint32_t)ar_rng_below (rng, 0x100000) - 0x10000;
            snprintf (text, sizeof text, "\\u%04X\\u%04x", 0xd800 + (cp >> 10),
                      0xdc00 + (cp & 0x3ff));
            assert (s_add (out, text, 12) == 0);
        } else
            s_gen_utf8 (out, s_gen_codepoint (rng));
    }
    assert (s_add (out, "\"", 1) == 0);
}

static void s_gen_number (ar_rng_t *rng, s_buf_t *out, bool reals)
{
    static const char *edges[] = {"0",
                                  "-0",
                                  "9223372036854775807",
                                  "-9223372036854775808",
                                  "922337203685477580",
                                  "-1",
                                  "0.0",
                                  "-0.0",
                                  "1e20",
                                  "1E+2",
                                  "0.7",
                                  "1e-400",
                                  "2.2250738585072014e-308",
                                  "1.7976931348623157e308",
                                  "5e-324",
                                  "0.1",
                                  "123456789012345678901234567890.5"};
    char text[64];
    size_t kind = ar_rng_below (rng, reals ? 4 : 2);
    if (ar_rng_below (rng, 400) == 0) { // overflow: both loaders refuse the whole document
        const char *over[] = {"9223372036854775808", "-9223372036854775809", "1e400", "-1e309"};
        const char *pick = over[ar_rng_below (rng, reals ? 4 : 2)];
        assert (s_add (out, pick, strlen (pick)) == 0);
        return;
    }
    //  One draw per statement: argument evaluation order would make the sequence differ
    //  between compilers.
    if (kind == 0) {
        uint64_t magnitude = ar_rng_next (rng) >> 1;
        magnitude >>= ar_rng_below (rng, 63);
        const char *sign = ar_rng_below (rng, 2) ? "-" : "";
        snprintf (text, sizeof text, "%s%llu", sign, (unsigned long long)magnitude);
    } else if (kind == 1) {
        const char *pick = edges[ar_rng_below (rng, reals ? 17 : 6)];
        snprintf (text, sizeof text, "%s", pick);
    } else if (kind == 2) { // a random double, exactly written
        double value = (double)(ar_rng_next (rng) >> 11);
        value /= (double)(1ull << ar_rng_below (rng, 60));
        value *= pow (10, (double)ar_rng_below (rng, 40) - 20);
        int digits = 1 + (int)ar_rng_below (rng, 17);
        snprintf (text, sizeof text, "%.*g", digits, ar_rng_below (rng, 2) ? value : -value);
        if (!strpbrk (text, ".e"))
            strcat (text, ".5");
    } else { // a decimal with fraction and exponent in the forms the grammar allows
        const char *sign = ar_rng_below (rng, 2) ? "-" : "";
        unsigned whole = (unsigned)ar_rng_below (rng, 1000);
        unsigned fraction = (unsigned)ar_rng_below (rng, 100000);
        const char *e = ar_rng_below (rng, 2) ? "e" : "E";
        const char *exponent_sign = (const char *[]){"", "+", "-"}[ar_rng_below (rng, 3)];
        unsigned exponent = (unsigned)ar_rng_below (rng, 300);
        snprintf (text, sizeof text, "%s%u.%u%s%s%u", sign, whole, fraction, e, exponent_sign,
                  exponent);
    }
    assert (s_add (out, text, strlen (text)) == 0);
}

static void s_gen_value (ar_rng_t *rng, s_buf_t *out, int depth, bool reals)
{
    size_t kind = depth == 0 ? ar_rng_below (rng, 2) : ar_rng_below (rng, depth > 6 ? 7 : 10);
    s_gen_ws (rng, out);
    if (kind < 2 || kind >= 7) {
        bool object = kind % 2 == 0;
        assert (s_add (out, object ? "{" : "[", 1) == 0);
        size_t count = ar_rng_below (rng, 4) == 0 ? 0 : ar_rng_below (rng, 7);
        for (size_t i = 0; i < count; i++) {
            if (i)
                assert (s_add (out, ",", 1) == 0);
            if (object) {
                s_gen_ws (rng, out);
                s_gen_string (rng, out, true);
                s_gen_ws (rng, out);
                assert (s_add (out, ":", 1) == 0);
            }
            s_gen_value (rng, out, depth + 1, reals);
        }
        s_gen_ws (rng, out);
        assert (s_add (out, object ? "}" : "]", 1) == 0);
    } else if (kind == 2 || kind == 3)
        s_gen_string (rng, out, false);
    else if (kind == 4)
        s_gen_number (rng, out, reals);
    else {
        const char *word = (const char *[]){"true", "false", "null"}[ar_rng_below (rng, 3)];
        assert (s_add (out, word, strlen (word)) == 0);
    }
    s_gen_ws (rng, out);
}

//  A chat request like the bench's: long tool results of code and logs, in a few shapes.
static char *s_gen_chat (ar_rng_t *rng, size_t bytes, size_t *len)
{
    static const char *lines[] = {
        "    if (rc != 0) {\n        fprintf (stderr, \"failed: %s\\n\", why);\n",
        "\treturn {\"key\": value, 'path': \"C:\\\\temp\\\\x\"};\n",
        "2024-05-01T12:00:00Z INFO request id=7f3a status=200 bytes=1834 \xc3\xa9t\xc3\xa9\n",
        "// caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x9a\x80 done </script> \x7f\x01\n",
        "def main():\n    print(\"hello, world\")  # \u00a7 \\u escape\n"};
    json_t *messages = json_array ();
    json_t *request = json_pack ("{s:s, s:f, s:i, s:o}", "model", "gpt-4o", "temperature", 0.7,
                                 "max_tokens", 4096, "messages", messages);
    size_t total = 0;
    for (int turn = 0; total < bytes; turn++) {
        s_buf_t text = {0};
        size_t want = 200 + ar_rng_below (rng, bytes / 4 + 1);
        while (text.len < want) {
            const char *line = lines[ar_rng_below (rng, 5)];
            assert (s_add (&text, line, strlen (line)) == 0);
        }
        total += text.len;
        json_array_append_new (messages,
                               json_pack ("{s:s, s:s%}", "role", turn % 3 == 0 ? "user" : "tool",
                                          "content", text.data, text.len));
        free (text.data);
    }
    char *body = json_dumps (request, JSON_COMPACT);
    json_decref (request);
    assert (body);
    *len = strlen (body);
    return body;
}

static void s_golden (bool verbose, s_tally_t *tally)
{
    //  Texts both loaders must treat alike (loaded and equal, or both refused).
    static const char *texts[] = {
        "[]",
        "{}",
        " [ ] ",
        "[[]]",
        "{\"a\":{}}",
        "[1]x",
        "[1] ",
        "",
        " ",
        "\"x\"",
        "1",
        "null",
        "[-0]",
        "[-0.0]",
        "[0e0]",
        "[-0.0e-0]",
        "[1E+2]",
        "[1e400]",
        "[-1e400]",
        "[1e-400]",
        "[9223372036854775807]",
        "[9223372036854775808]",
        "[-9223372036854775808]",
        "[-9223372036854775809]",
        "[00]",
        "[01]",
        "[1.]",
        "[.5]",
        "[+1]",
        "[-]",
        "[1e]",
        "[1e+]",
        "[--1]",
        "[0x10]",
        "[tru]",
        "[nul]",
        "[truex]",
        "[true false]",
        "[\"\\x\"]",
        "[\"\\u12\"]",
        "[\"\\u12g4\"]",
        "[\"\\ud800\"]",
        "[\"\\udc00\"]",
        "[\"\\ud800\\u0041\"]",
        "[\"\\ud800\\\"]",
        "[\"\\ud83d\\ude00\"]",
        "[\"\\uD83D\\uDE00\"]",
        "[\"a\\u0000b\"]",
        "{\"a\\u0000\":1}",
        "[\"\\u0001\\u001f\\u007f\\u0080\\uffff\"]",
        "[\"/\\/\\b\\f\\n\\r\\t\\\"\\\\\"]",
        "[\"a\tb\"]",
        "[\"a\nb\"]",
        "[\"\x7f\"]",
        "[\"\xc3\xa9\"]",
        "[\"\xc0\xaf\"]",
        "[\"\xc3\"]",
        "[\"\xed\xa0\x80\"]",
        "[\"\xef\xbf\xbf\"]",
        "[\"\xf4\x8f\xbf\xbf\"]",
        "[\"\xf4\x90\x80\x80\"]",
        "[\"\xff\"]",
        "{\"a\":1,\"b\":2,\"a\":3}",
        "{\"b\":1,\"a\":2}",
        "{\"a\":1,}",
        "[1,]",
        "[,1]",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":1 \"b\":2}",
        "[\"abc",
        "[\"abc\\",
        "[1,[2,[3,{\"x\":[]}]]]",
        "\xef\xbb\xbf[]",
        "[1]\n\r\t ",
        "[\"\\u00e9\\u20AC\\ud834\\udd1e\"]",
        "[1.7976931348623157e308, 2.2250738585072014e-308, 5e-324, 0.1, 0.7]"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert (s_check (texts[i], strlen (texts[i]), tally, verbose));
    //  A NUL byte in the text itself, and a text cut just before its end (never read past len).
    assert (s_check ("[1]\0", 4, tally, verbose));
    assert (s_check ("[\"a\0\"]", 6, tally, verbose));
    assert (!ar_json_fast_load ("[1]", 2, 0) && !ar_json_fast_load ("[]", 2, 1));
    assert (!ar_json_fast_load (NULL, 0, 0));

    //  Depth: jansson counts every value; 2048 is the deepest it loads.
    for (int levels = 2046; levels <= 2050; levels++)
        for (int inner = 0; inner < 2; inner++) {
            size_t len = (size_t)levels * 2 + (size_t)inner;
            char *text = malloc (len);
            assert (text);
            memset (text, '[', (size_t)levels);
            if (inner)
                text[levels] = '7';
            memset (text + levels + inner, ']', (size_t)levels);
            assert (s_check (text, len, tally, verbose));
            free (text);
        }

    //  Typing: "-0" is the integer 0, reals stay reals, duplicate names keep the first place.
    const char *typed = "{\"a\":-0,\"b\":1.0,\"a\":[1e2]}";
    json_t *doc = ar_json_fast_load (typed, strlen (typed), 0);
    assert (json_is_integer (json_array_get (json_object_get (doc, "a"), 0)) == false);
    assert (json_is_real (json_object_get (doc, "b")));
    char *text = ar_json_fast_dump (doc, NULL);
    assert (text && strcmp (text, "{\"a\":[100.0],\"b\":1.0}") == 0);
    free (text);
    json_decref (doc);
    doc = ar_json_fast_load ("[-0]", 4, 0);
    assert (json_is_integer (json_array_get (doc, 0)) &&
            json_integer_value (json_array_get (doc, 0)) == 0);
    json_decref (doc);

    //  Reals print as the shortest decimal that reads back, in jansson's shape.
    struct {
        double value;
        const char *text;
    } reals[] = {{0.7, "[0.7]"},
                 {0.1 + 0.2, "[0.30000000000000004]"},
                 {100.0, "[100.0]"},
                 {-0.0, "[-0.0]"},
                 {1e20, "[1e20]"},
                 {1e-7, "[1e-7]"},
                 {-1.5e-300, "[-1.5e-300]"},
                 {1.7976931348623157e308, "[1.7976931348623157e308]"},
                 {123456789012345680.0, "[1.2345678901234568e17]"},
                 {1e15, "[1e15]"},
                 {1e14, "[100000000000000.0]"},
                 {2.5, "[2.5]"}};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        json_t *array = json_pack ("[f]", reals[i].value);
        size_t len = 0;
        text = ar_json_fast_dump (array, &len);
        if (verbose && strcmp (text, reals[i].text) != 0)
            fprintf (stderr, "real %.17g: %s, want %s\n", reals[i].value, text, reals[i].text);
        assert (text && strcmp (text, reals[i].text) == 0 && len == strlen (text));
        json_t *back = ar_json_fast_load (text, len, 0);
        assert (json_real_value (json_array_get (back, 0)) == reals[i].value);
        json_decref (back);
        free (text);
        json_decref (array);
    }

    //  Strings built in the DOM (NUL, every control, DEL, '/', non-ASCII) as jansson writes
    //  them; invalid UTF-8 and scalars at the top are refused as json_dumps refuses them.
    char all[0x80 + 8];
    for (int c = 0; c < 0x80; c++)
        all[c] = (char)c;
    memcpy (all + 0x80, "\xc3\xa9\xf0\x9f\x98\x80", 6);
    json_t *strings = json_pack ("{s:s%, s:s%}", "all", all, (size_t)0x86, "nul", "a\0b", 3);
    assert (strings && json_object_set_new (strings, "k\x01\"", json_integer (-42)) == 0);
    assert (json_object_setn_new (strings, "n\0ul", 4, json_null ()) == 0);
    char *theirs = json_dumps (strings, JSON_COMPACT);
    size_t len = 0;
    text = ar_json_fast_dump (strings, &len);
    assert (theirs && text && strcmp (theirs, text) == 0 && len == strlen (theirs));
    assert (strstr (text, "\\u0000\\u0001") && strstr (text, "\\u001F !") && strstr (text, "/0"));
    free (theirs);
    free (text);
    json_decref (strings);
    json_t *bad = json_pack ("[o]", json_stringn_nocheck ("\xc3(", 2));
    assert (!json_dumps (bad, JSON_COMPACT) && !ar_json_fast_dump (bad, NULL));
    json_decref (bad);
    json_t *scalar = json_integer (1);
    assert (!ar_json_fast_dump (scalar, NULL));
    json_decref (scalar);
    json_t *empty = json_array ();
    text = ar_json_fast_dump (empty, &len);
    assert (text && strcmp (text, "[]") == 0 && len == 2);
    free (text);
    json_decref (empty);
}

void ar_json_fast_test (bool verbose)
{
    s_tally_t golden = {0}, random = {0}, corpus = {0}, chats = {0};
    s_golden (verbose, &golden);

    //  Generated documents, and each cut short and with one byte changed: the fast loader must
    //  agree with jansson on all of them, not only on the valid ones.
    ar_rng_t rng = {0x9e3779b97f4a7c15ull};
    size_t originals_loaded = 0;
    static const char mutants[] = "\"\\{}[],:0-e.+ u\x01\x1f\x80\xc3\xedtn9";
    for (int i = 0; i < 6000; i++) {
        s_buf_t doc = {0};
        s_gen_value (&rng, &doc, 0, i % 2 == 0);
        size_t loaded = random.loaded;
        assert (s_check (doc.data, doc.len, &random, verbose));
        originals_loaded += random.loaded > loaded;
        for (int m = 0; m < 3; m++) {
            size_t at = ar_rng_below (&rng, doc.len);
            char saved = doc.data[at];
            if (m == 0)
                assert (s_check (doc.data, at, &random, verbose)); // cut
            else {
                doc.data[at] = mutants[ar_rng_below (&rng, sizeof mutants - 1)];
                assert (s_check (doc.data, doc.len, &random, verbose));
                doc.data[at] = saved;
            }
            random.mutations++;
        }
        free (doc.data);
    }

    //  Real requests (the development corpus), when this checkout has it.
    FILE *file = fopen (AR_JSON_FAST_CORPUS, "r");
    if (file) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline (&line, &cap, file)) > 0) {
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                len--;
            assert (s_check (line, (size_t)len, &corpus, verbose));
        }
        free (line);
        fclose (file);
    }

    //  Bench-like chat bodies: 1 KB, 100 KB, 1 MB.
    size_t sizes[] = {1024, 100 * 1024, 1024 * 1024};
    for (size_t i = 0; i < 3; i++)
        for (int seed = 0; seed < 4; seed++) {
            size_t len;
            char *body = s_gen_chat (&rng, sizes[i], &len);
            assert (s_check (body, len, &chats, verbose));
            json_t *request = ar_json_fast_load (body, len, 0);
            char *text = ar_json_fast_dump (request, NULL);
            assert (text && strstr (text, "\"temperature\":0.7,"));
            free (text);
            json_decref (request);
            free (body);
        }
    assert (chats.loaded == chats.documents && corpus.loaded == corpus.documents);
    if (verbose)
        printf ("ar_json_fast: golden %zu (%zu refused as jansson refuses), random %zu (6000 "
                "generated, %zu of "
                "them loaded; %zu loaded in all, %zu dumps byte-exact, %zu round trips, %zu "
                "mutated), corpus %zu, chat bodies "
                "%zu\n",
                golden.documents, golden.refused, random.documents, originals_loaded, random.loaded,
                random.dumps_exact, random.round_trips, random.mutations, corpus.documents,
                chats.documents);
}
