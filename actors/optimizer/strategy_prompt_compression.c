/*  strategy_prompt_compression: conservative shortening of the text people and operators wrote:
    whitespace and invisible noise only, never a paraphrase, never inside code.

    What it touches: user text messages (OpenAI user content as a string or text parts;
    Anthropic user content as a string or text blocks, never tool_result blocks, which
    context_compression owns) of at least minTokens tokens. Never the last message, the last
    user turn or the last user text a person wrote: those stay byte-identical. The system
    prompt is left alone in this version: the pipeline's property test (ar_strategy_property)
    pins it byte-identical for every strategy, and providers' prompt caching keys on its
    prefix; S_TOUCH_SYSTEM turns the same rules on for it once that is agreed.

    The rules, all meaning-preserving, so no stash is needed and the same input always gives
    the same output:
    - trailing spaces and tabs of a line go;
    - a run of spaces inside a prose line becomes one (leading indentation is kept);
    - more than two blank lines in a row become two;
    - zero-width spaces (U+200B), word joiners (U+2060) and stray byte-order marks (U+FEFF)
      go; U+200C/U+200D stay (they change how Persian script and emoji sequences render).
    Fenced code blocks (``` or ~~~, up to the closing fence) and indented code lines (four
    spaces or a tab) are copied byte for byte. A message is rewritten only when it counts
    fewer tokens afterwards. The level param (light/balanced/aggressive) is accepted; all
    levels apply these rules (repeated-block elision is not built yet).
*/
#include "ar_chat_view.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TOUCH_SYSTEM 0

//  Zero-width characters dropped from prose (UTF-8): U+200B, U+2060, U+FEFF.
static size_t s_zero_width (const char *p, const char *end)
{
    if (end - p >= 3 && (unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x80 &&
        (unsigned char)p[2] == 0x8b)
        return 3;
    if (end - p >= 3 && (unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x81 &&
        (unsigned char)p[2] == 0xa0)
        return 3;
    if (end - p >= 3 && (unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb &&
        (unsigned char)p[2] == 0xbf)
        return 3;
    return 0;
}

//  A fence line: up to three spaces, then ``` or ~~~.
static bool s_fence (const char *line, const char *end)
{
    int spaces = 0;
    while (line < end && *line == ' ' && spaces < 4) {
        line++;
        spaces++;
    }
    return spaces < 4 && end - line >= 3 &&
           (memcmp (line, "```", 3) == 0 || memcmp (line, "~~~", 3) == 0);
}

//  The normalised text into out (at least len bytes); returns its length.
static size_t s_normalize (const char *text, size_t len, char *out)
{
    const char *p = text, *end = text + len;
    char *o = out;
    bool fenced = false;
    int blanks = 0;
    while (p < end) {
        const char *nl = memchr (p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        bool fence = s_fence (p, line_end);
        if (fenced || fence || *p == '\t' || (line_end - p >= 4 && memcmp (p, "    ", 4) == 0)) {
            //  Code: byte for byte.
            if (fence)
                fenced = !fenced;
            memcpy (o, p, (size_t)(next - p));
            o += next - p;
            blanks = 0;
            p = next;
            continue;
        }
        const char *body_end = line_end;
        bool cr = body_end > p && body_end[-1] == '\r';
        if (cr)
            body_end--;
        char *start = o;
        const char *c = p;
        while (c < body_end && *c == ' ') // leading indentation stays
            *o++ = *c++;
        char *prose = o;
        while (c < body_end) {
            size_t zw = s_zero_width (c, body_end);
            if (zw) {
                c += zw;
                continue;
            }
            if (*c == ' ' && o > prose && o[-1] == ' ') {
                c++;
                continue;
            }
            *o++ = *c++;
        }
        while (o > start && (o[-1] == ' ' || o[-1] == '\t'))
            o--;
        bool blank = o == start;
        if (blank && ++blanks > 2) {
            o = start; // a third blank line in a row
            p = next;
            continue;
        }
        if (!blank)
            blanks = 0;
        if (cr)
            *o++ = '\r';
        if (nl)
            *o++ = '\n';
        p = next;
    }
    return (size_t)(o - out);
}

//  A normalised copy of a string, or NULL when it would not change.
static json_t *s_string (const json_t *string)
{
    size_t len = json_string_length (string);
    char *out = malloc (len + 1);
    if (!out)
        return NULL;
    size_t n = s_normalize (json_string_value (string), len, out);
    json_t *result = n < len ? json_stringn (out, n) : NULL;
    free (out);
    return result;
}

//  The content with its text normalised (new reference), or NULL when nothing changes.
static json_t *s_content (const json_t *content)
{
    if (json_is_string (content))
        return s_string (content);
    if (!json_is_array (content))
        return NULL;
    json_t *out = NULL;
    for (size_t i = 0; i < json_array_size (content); i++) {
        json_t *block = json_array_get (content, i);
        const char *type = json_string_value (json_object_get (block, "type"));
        json_t *text = json_object_get (block, "text");
        if (!type || strcmp (type, "text") != 0 || !json_is_string (text))
            continue;
        json_t *normal = s_string (text);
        if (!normal)
            continue;
        json_t *copy = json_copy (block);
        if (!out)
            out = json_copy ((json_t *)content);
        if (!copy || !out || json_object_set_new (copy, "text", normal) != 0 ||
            json_array_set_new (out, i, copy) != 0) {
            if (!copy)
                json_decref (normal);
            json_decref (copy);
            json_decref (out);
            return NULL;
        }
    }
    return out;
}

static int s_apply (ar_strategy_ctx_t *ctx, const json_t *params, ar_strategy_result_t *result)
{
    ar_shape_t shape = ctx->shape;
    json_t *min_param = json_object_get (params, "minTokens");
    json_t *level = json_object_get (params, "level");
    if (!json_is_object (ctx->request) || !ctx->tokenizer ||
        (min_param && (!json_is_integer (min_param) || json_integer_value (min_param) < 0)) ||
        (level && !json_is_string (level)))
        return -1;
    int64_t min_tokens = min_param ? json_integer_value (min_param) : 512;
    json_t *messages = ar_chat_view_messages (ctx->request);
    size_t n = json_array_size (messages);
    if (n == 0 || ar_chat_view_validate (shape, ctx->request, NULL, 0) != 0)
        return 0;
    size_t last_user = n, last_text = n;
    for (size_t i = n; i-- > 0;) {
        json_t *message = json_array_get (messages, i);
        if (last_user == n && ar_chat_view_role (shape, message) == AR_CHAT_ROLE_USER)
            last_user = i;
        if (last_text == n && ar_chat_view_is_user_text (shape, message))
            last_text = i;
    }
    json_t *out = NULL;
    int64_t before = 0, after = 0;
    size_t changed = 0;
    int rc = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (i == last_user || i == last_text)
            continue;
        if ((i & 15) == 0 && ar_mono_now () > ctx->deadline) {
            rc = -1;
            break;
        }
        json_t *message = json_array_get (messages, i);
        ar_chat_role_t role = ar_chat_view_role (shape, message);
        if (!(role == AR_CHAT_ROLE_USER || (S_TOUCH_SYSTEM && role == AR_CHAT_ROLE_SYSTEM)) ||
            ar_chat_view_has_results (shape, message))
            continue;
        json_t *content = json_object_get (message, "content");
        int64_t tokens = ar_chat_view_message_tokens (shape, message, ctx->tokenizer);
        if (tokens < min_tokens)
            continue;
        json_t *normal = s_content (content);
        if (!normal)
            continue;
        json_t *copy = json_copy (message);
        if (!copy || json_object_set_new (copy, "content", normal) != 0) {
            if (!copy)
                json_decref (normal);
            json_decref (copy);
            rc = -1;
            break;
        }
        int64_t fewer = ar_chat_view_message_tokens (shape, copy, ctx->tokenizer);
        if (fewer >= tokens) {
            json_decref (copy);
            continue;
        }
        if (!out)
            out = json_copy (messages);
        if (!out || json_array_set_new (out, i, copy) != 0) {
            rc = -1;
            break;
        }
        before += tokens;
        after += fewer;
        changed++;
    }
    if (rc == 0 && out && changed) {
        if (json_object_set (ctx->request, "messages", out) != 0)
            rc = -1;
        else {
            result->applied = true;
            snprintf (result->note, sizeof result->note,
                      "normalised whitespace in %zu message%s: %lld->%lld tokens", changed,
                      changed == 1 ? "" : "s", (long long)before, (long long)after);
        }
    }
    json_decref (out);
    return rc;
}

const ar_strategy_t ar_strategy_prompt_compression = {"prompt_compression", s_apply};

//  --------------------------------------------------------------------------------------------
//  Self-test

#include "ar_rng.h"

static void s_check (const char *in, const char *want)
{
    char out[4096];
    size_t n = s_normalize (in, strlen (in), out);
    out[n] = 0;
    if (strcmp (out, want) != 0) {
        fprintf (stderr, "normalize:\n[%s]\nwant:\n[%s]\n", out, want);
        assert (false);
    }
}

//  Whitespace-only difference: the two texts are equal with all spaces, tabs, \r, \n and the
//  dropped zero-width characters removed.
static bool s_same_but_space (const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (i < alen && (strchr (" \t\r\n", a[i]) || s_zero_width (a + i, a + alen)))
            i += s_zero_width (a + i, a + alen) ? s_zero_width (a + i, a + alen) : 1;
        while (j < blen && (strchr (" \t\r\n", b[j]) || s_zero_width (b + j, b + blen)))
            j += s_zero_width (b + j, b + blen) ? s_zero_width (b + j, b + blen) : 1;
        if (i == alen || j == blen)
            return i == alen && j == blen;
        if (a[i++] != b[j++])
            return false;
    }
}

void strategy_prompt_compression_test (bool verbose)
{
    //  The rules, on pasted text typical of chat prompts.
    s_check ("Hello   world.  \nSecond\tline\t \n", "Hello world.\nSecond\tline\n");
    s_check ("a\n\n\n\n\nb\n", "a\n\n\nb\n");
    s_check ("  indented  twice\n", "  indented twice\n");
    s_check ("x\xe2\x80\x8by\xef\xbb\xbfz \r\n", "xyz\r\n");
    s_check ("emoji \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9 kept\n",
             "emoji \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9 kept\n");
    //  Code is byte for byte: fenced and indented.
    s_check ("Fix  this:\n```python\ndef f():   \n    return  1   \n\n\n\n```\nthen  go  \n",
             "Fix this:\n```python\ndef f():   \n    return  1   \n\n\n\n```\nthen go\n");
    s_check ("text\n    code   here  \n\tmore  code \nend  \n",
             "text\n    code   here  \n\tmore  code \nend\n");

    ar_tokenizer_t *tok = ar_tokenizer_new ();
    assert (tok);
    //  Requests: an older pasted user message is normalised, the last one is not.
    const char *pasted = "Here is the log I pasted from the terminal:    \n\n\n\n\n"
                         "ERROR   could  not    connect    to   the   database      \n"
                         "WARNING   retrying   in   5   seconds     \n\n\n\n\n"
                         "```\nSELECT  *   FROM  t;   \n```\n";
    for (int s = 0; s < 2; s++) {
        ar_shape_t shape = s ? AR_SHAPE_ANTHROPIC_MESSAGES : AR_SHAPE_OPENAI_CHAT;
        json_t *request =
            json_pack ("{s:s, s:i, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}", "model", "m",
                       "max_tokens", 100, "messages", "role", "user", "content", pasted, "role",
                       "assistant", "content", "ok", "role", "user", "content", pasted);
        json_t *original = json_deep_copy (request);
        ar_strategy_ctx_t ctx = {.shape = shape,
                                 .request = request,
                                 .tokenizer = tok,
                                 .stash = NULL,
                                 .deadline = INT64_MAX};
        json_t *params = json_pack ("{s:s, s:i}", "level", "light", "minTokens", 0);
        ar_strategy_result_t result = {.applied = false};
        int64_t before = ar_chat_view_count_tokens (shape, request, tok);
        assert (s_apply (&ctx, params, &result) == 0 && result.applied);
        int64_t after = ar_chat_view_count_tokens (shape, request, tok);
        assert (after < before);
        if (verbose)
            printf ("prompt_compression %s: %s\n", s ? "anthropic" : "openai", result.note);
        json_t *m = ar_chat_view_messages (request), *om = ar_chat_view_messages (original);
        assert (json_equal (json_array_get (m, 2), json_array_get (om, 2)));
        const char *first = json_string_value (json_object_get (json_array_get (m, 0), "content"));
        assert (strstr (first, "ERROR could not connect to the database\n"));
        assert (strstr (first, "```\nSELECT  *   FROM  t;   \n```\n"));
        //  minTokens above the message: untouched.
        json_t *copy = json_deep_copy (original);
        ctx.request = copy;
        json_decref (params);
        params = json_pack ("{s:i}", "minTokens", 100000);
        result = (ar_strategy_result_t){.applied = false};
        assert (s_apply (&ctx, params, &result) == 0 && !result.applied &&
                json_equal (copy, original));
        json_decref (params);
        params = json_pack ("{s:i}", "minTokens", -1);
        assert (s_apply (&ctx, params, &result) == -1 && json_equal (copy, original));
        json_decref (params);
        json_decref (copy);
        json_decref (original);
        json_decref (request);
    }

    //  Property loop: generated noisy text; the output is never longer and differs only in
    //  whitespace and dropped zero-width characters.
    static const char *const pieces[] = {"word",     " ",
                                         "  ",       "   ",
                                         "\t",       "\n",
                                         "\n\n\n\n", "\xe2\x80\x8b",
                                         "```\n",    "    code  x  \n",
                                         "\r\n",     "caf\xc3\xa9",
                                         ".",        "  \n"};
    ar_rng_t rng = {0x9e3779b97f4a7c15ull};
    char in[4096], out[4096];
    for (int c = 0; c < 5000; c++) {
        size_t len = 0, count = ar_rng_below (&rng, 80);
        for (size_t k = 0; k < count; k++) {
            const char *p = pieces[ar_rng_below (&rng, sizeof pieces / sizeof pieces[0])];
            memcpy (in + len, p, strlen (p));
            len += strlen (p);
        }
        in[len] = 0;
        size_t n = s_normalize (in, len, out);
        assert (n <= len);
        assert (s_same_but_space (in, len, out, n));
        (void)tok;
    }
    ar_tokenizer_destroy (&tok);
}
