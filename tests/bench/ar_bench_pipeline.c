/*  ar_bench_pipeline: the optimizer pipeline's own cost, in process, on one core.

    Generates realistic requests deterministically (seeded xorshift; same seed, same bytes):
      1k-openai        a short chat (system, three turns, no tools), ~1 KB
      100k-openai      an agent turn: system prompt, a dozen tools, a few tool steps, then one
                       long tool result (a source file), ~100 KB
      100k-anthropic   the same conversation in Anthropic messages shape (/v1/messages)
      1m-openai        a long agent conversation: ~200 assistant tool calls with their results
                       and a user turn every few steps, ~1 MB
    and for each runs what the optimizer does with a request body: parse it (ar_json_fast_load,
    as the optimizer does), resolve the baked-in default config for the endpoint
    (ar_optimizer_config_default -> ar_optimizer_config_resolve) and run it (ar_optimize_run)
    with the real o200k tokenizer and a stash sink, then serialize the result
    (ar_json_fast_dump). Single-threaded, pinned to the CPU it starts on. A "json" line per case
    and mode times jansson (json_loadb, json_dumps JSON_COMPACT) against ar_json_fast on the
    same whole bodies in the same iterations (each dumps what it parsed; the order of the two
    alternates between iterations, so neither always runs on a warm cache), in us.

    Two modes per case, because token counts are memoized per thread by text hash
    (ar_chat_view): "cold" gives every iteration a request generated from a different seed
    (text the memo has never seen, as for a new conversation), "resent" runs the same body
    again and again (an agent loop resending its history). A "tokenizer" line per case times
    ar_tokenizer_count over the whole body, so the share of counting is visible.

    ar_bench_pipeline [--quick] [--stash memory|sqlite] [--cap-s S] [--write-bodies DIR]
      --quick    a tenth of the iterations (at least 5), for a smoke run
      --stash    memory (default): originals are copied into memory, ids from a counter;
                 sqlite: a real ar_stash (AES-256-GCM rows) on a database in a temp directory
      --cap-s    seconds one case/mode may take before it stops early (default 10)
      --write-bodies  write the first cold bodies of every case (up to 20 each) as
                 DIR/<case>-<i>.json and exit, e.g. to compare token counts across builds
*/
#include "ar_buf.h"
#include "ar_chat_view.h"
#include "ar_clock.h"
#include "ar_json_fast.h"
#include "ar_optimize.h"
#include "ar_optimizer_config.h"
#include "ar_rng.h"
#include "ar_stash.h"
#include "ar_tokenizer.h"
#include <jansson.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  ---------------------------------------------------------------------------------------------
//  Deterministic text.

static ar_rng_t s_rng (uint64_t seed)
{
    ar_rng_t rng = {seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull};
    for (int i = 0; i < 4; i++)
        ar_rng_next (&rng);
    return rng;
}

static void s_add (ar_buf_t *buf, const char *text, size_t len)
{
    if (ar_buf_add (buf, text, len) != 0)
        abort (); // a benchmark out of memory has nothing to report
}

static void s_addf (ar_buf_t *buf, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
static void s_addf (ar_buf_t *buf, const char *format, ...)
{
    char line[512];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (line, sizeof line, format, args);
    va_end (args);
    if (n > 0)
        s_add (buf, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static const char *s_words[] = {
    "the",      "a",         "to",        "of",        "and",       "in",       "is",
    "that",     "for",       "it",        "with",      "as",        "on",       "be",
    "this",     "we",        "not",       "but",       "when",      "which",    "request",
    "response", "function",  "file",      "test",      "error",     "value",    "config",
    "server",   "client",    "message",   "buffer",    "handler",   "timeout",  "retry",
    "token",    "cache",     "queue",     "worker",    "thread",    "lock",     "parse",
    "returns",  "called",    "should",    "could",     "would",     "after",    "before",
    "because",  "instead",   "every",     "only",      "first",     "last",     "then",
    "update",   "check",     "build",     "deploy",    "failing",   "passes",   "output",
    "input",    "schema",    "field",     "missing",   "null",      "string",   "number",
    "array",    "object",    "memory",    "latency",   "budget",    "window",   "context",
    "user",     "assistant", "model",     "provider",  "gateway",   "stream",   "chunk",
    "header",   "body",      "status",    "database",  "migration", "index",    "query",
    "row",      "column",    "table",     "commit",    "branch",    "merge",    "diff",
    "line",     "path",      "directory", "module",    "package",   "version",  "release",
    "issue",    "fix",       "change",    "refactor",  "rename",    "move",     "split",
    "simple",   "small",     "large",     "slow",      "fast",      "safe",     "correct",
    "expected", "actual",    "result",    "again",     "still",     "now",      "also",
    "here",     "there",     "where",     "why",       "how",       "what",     "please",
    "look",     "read",      "write",     "open",      "close",     "start",    "stop",
    "run",      "make",      "need",      "want",      "think",     "seems",    "probably",
    "exactly",  "carefully", "anyray",    "optimizer", "strategy",  "pipeline", "percentile",
};
#define S_WORDS (sizeof s_words / sizeof s_words[0])

static const char *s_word (ar_rng_t *rng)
{
    return s_words[ar_rng_below (rng, S_WORDS)];
}

//  Prose of about bytes bytes: sentences of 6..20 words, now and then a number or a path.
static void s_prose (ar_rng_t *rng, ar_buf_t *buf, size_t bytes)
{
    size_t end = buf->len + bytes;
    while (buf->len < end) {
        size_t words = 6 + ar_rng_below (rng, 15);
        for (size_t i = 0; i < words; i++) {
            const char *word = s_word (rng);
            if (i == 0) {
                char first[32];
                snprintf (first, sizeof first, "%s", word);
                first[0] = (char)(first[0] - ('a' <= first[0] && first[0] <= 'z' ? 32 : 0));
                s_add (buf, first, strlen (first));
            } else {
                size_t pick = ar_rng_below (rng, 40);
                if (pick == 0)
                    s_addf (buf, " %zu", ar_rng_below (rng, 5000));
                else if (pick == 1)
                    s_addf (buf, " src/%s_%s.c", s_word (rng), s_word (rng));
                else
                    s_addf (buf, " %s", word);
            }
        }
        s_add (buf, ar_rng_below (rng, 6) ? ". " : "?\n\n", 2);
    }
}

static void s_ident (ar_rng_t *rng, char *out, size_t size)
{
    snprintf (out, size, "%s_%s", s_word (rng), s_word (rng));
}

//  A C-like source file of about bytes bytes (what read_file returns).
static void s_code (ar_rng_t *rng, ar_buf_t *buf, size_t bytes)
{
    size_t end = buf->len + bytes;
    s_addf (buf, "/*  %s_%s.c: ", s_word (rng), s_word (rng));
    s_prose (rng, buf, 160);
    s_add (buf, "*/\n#include <stdio.h>\n#include <string.h>\n\n", 42);
    while (buf->len < end) {
        char fn[64], a[64], b[64], c[64];
        s_ident (rng, fn, sizeof fn);
        s_ident (rng, a, sizeof a);
        s_ident (rng, b, sizeof b);
        s_ident (rng, c, sizeof c);
        s_addf (buf, "//  %s ", fn);
        s_prose (rng, buf, 40 + ar_rng_below (rng, 80));
        s_addf (buf, "\nstatic int s_%s (ar_%s_t *self, const char *%s, size_t %s)\n{\n", fn, a, b,
                c);
        size_t lines = 4 + ar_rng_below (rng, 14);
        for (size_t i = 0; i < lines; i++) {
            switch (ar_rng_below (rng, 6)) {
            case 0:
                s_addf (buf, "    if (!self->%s || %s > %zu)\n        return -1;\n", a, c,
                        ar_rng_below (rng, 65536));
                break;
            case 1:
                s_addf (buf, "    size_t %s = strlen (%s) + %zu;\n", c, b, ar_rng_below (rng, 64));
                break;
            case 2:
                s_addf (buf,
                        "    for (size_t i = 0; i < self->%s_count; i++)\n        %s (self, i);\n",
                        a, fn);
                break;
            case 3:
                s_addf (buf, "    memcpy (self->%s + self->%s_len, %s, %s);\n", a, a, b, c);
                break;
            case 4:
                s_addf (buf, "    self->%s = ar_%s_new (\"%s\", %zu);\n", c, b, s_word (rng),
                        ar_rng_below (rng, 1000));
                break;
            default:
                s_addf (buf, "    //  %s %s %s.\n", s_word (rng), s_word (rng), s_word (rng));
            }
        }
        s_add (buf, "    return 0;\n}\n\n", 17);
    }
}

//  Test or shell output of about bytes bytes.
static void s_log (ar_rng_t *rng, ar_buf_t *buf, size_t bytes)
{
    size_t end = buf->len + bytes;
    while (buf->len < end) {
        switch (ar_rng_below (rng, 4)) {
        case 0:
            s_addf (buf, "2026-11-21T13:%02zu:%02zu.%03zuZ INFO  %s-%zu: %s %08zx %s in %zu ms\n",
                    ar_rng_below (rng, 60), ar_rng_below (rng, 60), ar_rng_below (rng, 1000),
                    s_word (rng), ar_rng_below (rng, 8), s_word (rng),
                    (size_t)(ar_rng_next (rng) & 0xffffffff), s_word (rng),
                    ar_rng_below (rng, 900));
            break;
        case 1:
            s_addf (buf, "test %s_%s ... %s (%zu.%02zus)\n", s_word (rng), s_word (rng),
                    ar_rng_below (rng, 9) ? "ok" : "FAILED", ar_rng_below (rng, 3),
                    ar_rng_below (rng, 100));
            break;
        case 2:
            s_addf (buf, "src/%s_%s.c:%zu:%zu: warning: %s %s '%s' [-W%s]\n", s_word (rng),
                    s_word (rng), ar_rng_below (rng, 2000), ar_rng_below (rng, 80), s_word (rng),
                    s_word (rng), s_word (rng), s_word (rng));
            break;
        default:
            s_addf (buf, "src/%s/%s_%s.c:%zu:    %s (%s, %s);\n", s_word (rng), s_word (rng),
                    s_word (rng), ar_rng_below (rng, 2000), s_word (rng), s_word (rng),
                    s_word (rng));
        }
    }
}

//  ---------------------------------------------------------------------------------------------
//  Requests in either shape.

static const char *s_tool_names[] = {
    "read_file", "write_file", "edit_file", "list_dir",  "search_code", "run_shell",
    "run_tests", "git_diff",   "git_log",   "web_fetch", "open_issue",  "ask_user",
};
#define S_TOOLS 12

typedef struct {
    ar_shape_t shape;
    ar_rng_t rng;
    json_t *request, *messages;
    size_t bytes; // rough size so far (text added + per-message overhead)
    int calls;    // tool call ids handed out
} s_gen_t;

static json_t *s_text_json (ar_buf_t *buf)
{
    json_t *text = json_stringn (buf->data ? buf->data : "", buf->len);
    buf->len = 0;
    return text;
}

static void s_gen_init (s_gen_t *gen, ar_shape_t shape, uint64_t seed, size_t system_bytes,
                        size_t tools)
{
    *gen = (s_gen_t){shape, s_rng (seed), json_object (), json_array (), 0, 0};
    ar_buf_t buf = {0};
    s_add (&buf, "You are a careful coding agent working in a C repository. ", 58);
    s_prose (&gen->rng, &buf, system_bytes);
    gen->bytes += buf.len + 64;
    json_object_set_new (
        gen->request, "model",
        json_string (shape == AR_SHAPE_OPENAI_CHAT ? "gpt-4o" : "claude-sonnet-4-5"));
    if (shape == AR_SHAPE_OPENAI_CHAT)
        json_array_append_new (gen->messages, json_pack ("{s:s, s:o}", "role", "system", "content",
                                                         s_text_json (&buf)));
    else
        json_object_set_new (gen->request, "system", s_text_json (&buf));
    json_object_set_new (gen->request, "messages", gen->messages);
    json_object_set_new (gen->request, "max_tokens", json_integer (8192));
    json_object_set_new (gen->request, "temperature", json_real (0.7));
    if (!tools) {
        free (buf.data);
        return;
    }
    json_t *list = json_array ();
    for (size_t i = 0; i < tools && i < S_TOOLS; i++) {
        s_prose (&gen->rng, &buf, 120 + ar_rng_below (&gen->rng, 240));
        json_t *description = s_text_json (&buf);
        json_t *properties = json_object ();
        json_t *required = json_array ();
        size_t params = 1 + ar_rng_below (&gen->rng, 4);
        for (size_t p = 0; p < params; p++) {
            char name[64];
            s_ident (&gen->rng, name, sizeof name);
            s_prose (&gen->rng, &buf, 40 + ar_rng_below (&gen->rng, 60));
            json_object_set_new (properties, name,
                                 json_pack ("{s:s, s:o}", "type", p % 3 ? "string" : "integer",
                                            "description", s_text_json (&buf)));
            if (p == 0)
                json_array_append_new (required, json_string (name));
        }
        json_t *schema = json_pack ("{s:s, s:o, s:o}", "type", "object", "properties", properties,
                                    "required", required);
        gen->bytes += 600;
        if (shape == AR_SHAPE_OPENAI_CHAT)
            json_array_append_new (list,
                                   json_pack ("{s:s, s:{s:s, s:o, s:o}}", "type", "function",
                                              "function", "name", s_tool_names[i], "description",
                                              description, "parameters", schema));
        else
            json_array_append_new (list,
                                   json_pack ("{s:s, s:o, s:o}", "name", s_tool_names[i],
                                              "description", description, "input_schema", schema));
    }
    json_object_set_new (gen->request, "tools", list);
    json_object_set_new (gen->request, "tool_choice",
                         shape == AR_SHAPE_OPENAI_CHAT ? json_string ("auto")
                                                       : json_pack ("{s:s}", "type", "auto"));
    free (buf.data);
}

static json_t *s_last (s_gen_t *gen)
{
    size_t n = json_array_size (gen->messages);
    return n ? json_array_get (gen->messages, n - 1) : NULL;
}

static const char *s_role (json_t *message)
{
    return json_string_value (json_object_get (message, "role"));
}

//  A user turn a person wrote. Anthropic: joins the tool results before it as a text block,
//  so user and assistant keep alternating.
static void s_gen_user (s_gen_t *gen, size_t bytes)
{
    ar_buf_t buf = {0};
    s_prose (&gen->rng, &buf, bytes);
    gen->bytes += buf.len + 40;
    json_t *last = s_last (gen);
    if (gen->shape == AR_SHAPE_ANTHROPIC_MESSAGES && last && strcmp (s_role (last), "user") == 0)
        json_array_append_new (
            json_object_get (last, "content"),
            json_pack ("{s:s, s:o}", "type", "text", "text", s_text_json (&buf)));
    else if (gen->shape == AR_SHAPE_ANTHROPIC_MESSAGES)
        json_array_append_new (gen->messages,
                               json_pack ("{s:s, s:[{s:s, s:o}]}", "role", "user", "content",
                                          "type", "text", "text", s_text_json (&buf)));
    else
        json_array_append_new (
            gen->messages, json_pack ("{s:s, s:o}", "role", "user", "content", s_text_json (&buf)));
    free (buf.data);
}

static void s_gen_assistant (s_gen_t *gen, size_t bytes)
{
    ar_buf_t buf = {0};
    s_prose (&gen->rng, &buf, bytes);
    gen->bytes += buf.len + 40;
    if (gen->shape == AR_SHAPE_ANTHROPIC_MESSAGES)
        json_array_append_new (gen->messages,
                               json_pack ("{s:s, s:[{s:s, s:o}]}", "role", "assistant", "content",
                                          "type", "text", "text", s_text_json (&buf)));
    else
        json_array_append_new (gen->messages, json_pack ("{s:s, s:o}", "role", "assistant",
                                                         "content", s_text_json (&buf)));
    free (buf.data);
}

//  One agent step: an assistant message with a short thought and calls tool calls, then their
//  results (the last one result_bytes long, the others short). last_tool: the tool of the last
//  call (index in s_tool_names), or -1 for a random one.
static void s_gen_step (s_gen_t *gen, size_t calls, size_t result_bytes, int last_tool)
{
    ar_buf_t buf = {0};
    s_prose (&gen->rng, &buf, 60 + ar_rng_below (&gen->rng, 200));
    json_t *thought = s_text_json (&buf);
    json_t *assistant, *tool_calls;
    if (gen->shape == AR_SHAPE_ANTHROPIC_MESSAGES) {
        tool_calls = json_array ();
        json_array_append_new (tool_calls,
                               json_pack ("{s:s, s:o}", "type", "text", "text", thought));
        assistant = json_pack ("{s:s, s:o}", "role", "assistant", "content", tool_calls);
    } else {
        tool_calls = json_array ();
        assistant = json_pack ("{s:s, s:o, s:o}", "role", "assistant", "content", thought,
                               "tool_calls", tool_calls);
    }
    json_array_append_new (gen->messages, assistant);
    char ids[4][40];
    size_t kinds[4];
    calls = calls > 4 ? 4 : calls;
    for (size_t i = 0; i < calls; i++) {
        snprintf (ids[i], sizeof ids[i],
                  gen->shape == AR_SHAPE_OPENAI_CHAT ? "call_%016llx%04d" : "toolu_%016llx%04d",
                  (unsigned long long)ar_rng_next (&gen->rng), ++gen->calls);
        kinds[i] = ar_rng_below (&gen->rng, 7); // read_file .. run_tests
        if (i + 1 == calls && last_tool >= 0)
            kinds[i] = (size_t)last_tool;
        char path[96];
        snprintf (path, sizeof path, "src/%s/%s_%s.c", s_word (&gen->rng), s_word (&gen->rng),
                  s_word (&gen->rng));
        json_t *input = json_pack ("{s:s, s:i}", "path", path, "limit", 2000);
        if (gen->shape == AR_SHAPE_ANTHROPIC_MESSAGES)
            json_array_append_new (tool_calls, json_pack ("{s:s, s:s, s:s, s:o}", "type",
                                                          "tool_use", "id", ids[i], "name",
                                                          s_tool_names[kinds[i]], "input", input));
        else {
            char *arguments = json_dumps (input, JSON_COMPACT);
            json_decref (input);
            json_array_append_new (tool_calls,
                                   json_pack ("{s:s, s:s, s:{s:s, s:s}}", "id", ids[i], "type",
                                              "function", "function", "name",
                                              s_tool_names[kinds[i]], "arguments", arguments));
            free (arguments);
        }
        gen->bytes += 160;
    }
    json_t *results = NULL; // Anthropic: one user message with every tool_result block
    if (gen->shape == AR_SHAPE_ANTHROPIC_MESSAGES) {
        results = json_array ();
        json_array_append_new (gen->messages,
                               json_pack ("{s:s, s:o}", "role", "user", "content", results));
    }
    for (size_t i = 0; i < calls; i++) {
        size_t bytes = i + 1 == calls ? result_bytes : 300 + ar_rng_below (&gen->rng, 1500);
        if (kinds[i] <= 2)
            s_code (&gen->rng, &buf, bytes);
        else
            s_log (&gen->rng, &buf, bytes);
        gen->bytes += buf.len + 60;
        if (results)
            json_array_append_new (results, json_pack ("{s:s, s:s, s:o}", "type", "tool_result",
                                                       "tool_use_id", ids[i], "content",
                                                       s_text_json (&buf)));
        else
            json_array_append_new (gen->messages,
                                   json_pack ("{s:s, s:s, s:o}", "role", "tool", "tool_call_id",
                                              ids[i], "content", s_text_json (&buf)));
    }
    free (buf.data);
}

//  The exact size so far (serialized), replacing the estimate.
static void s_gen_measure (s_gen_t *gen)
{
    char *body = json_dumps (gen->request, JSON_COMPACT);
    gen->bytes = body ? strlen (body) : gen->bytes;
    free (body);
}

typedef enum { S_1K, S_100K, S_1M } s_size_t;

//  The request body of one case for one seed (caller frees).
static char *s_generate (s_size_t size, ar_shape_t shape, uint64_t seed, size_t *len)
{
    s_gen_t gen;
    if (size == S_1K) {
        s_gen_init (&gen, shape, seed, 100, 0);
        s_gen_user (&gen, 150);
        s_gen_assistant (&gen, 220);
        s_gen_user (&gen, 80);
    } else if (size == S_100K) {
        s_gen_init (&gen, shape, seed, 2400, S_TOOLS);
        s_gen_user (&gen, 500);
        for (int i = 0; i < 4; i++)
            s_gen_step (&gen, 1 + ar_rng_below (&gen.rng, 2), 1500 + ar_rng_below (&gen.rng, 2500),
                        -1);
        s_gen_assistant (&gen, 400);
        s_gen_user (&gen, 300);
        s_gen_measure (&gen);
        //  JSON escaping (newlines, quotes) adds a few percent to the source text.
        size_t want = 100 * 1024 - 400;
        size_t rest = gen.bytes + 4096 < want ? (want - gen.bytes) * 100 / 107 : 2048;
        s_gen_step (&gen, 1, rest, 0); // a long read_file result: the turn being answered
    } else {
        s_gen_init (&gen, shape, seed, 2400, S_TOOLS);
        s_gen_user (&gen, 600);
        for (int step = 0; gen.bytes < 1024 * 1024 - 4096; step++) {
            s_gen_step (&gen, 1 + ar_rng_below (&gen.rng, 3), 800 + ar_rng_below (&gen.rng, 7000),
                        -1);
            if (step % 16 == 15)
                s_gen_measure (&gen);
            if (step % 8 == 7) {
                s_gen_assistant (&gen, 200 + ar_rng_below (&gen.rng, 600));
                s_gen_user (&gen, 80 + ar_rng_below (&gen.rng, 400));
            }
        }
    }
    char *body = json_dumps (gen.request, JSON_COMPACT);
    json_decref (gen.request);
    if (!body)
        abort ();
    *len = strlen (body);
    return body;
}

//  ---------------------------------------------------------------------------------------------
//  Stash sinks.

typedef struct {
    char **content;
    size_t count, max, puts;
} s_memory_stash_t;

static int s_memory_put (void *self, const char *content, size_t len, char id_out[33])
{
    s_memory_stash_t *stash = (s_memory_stash_t *)self;
    if (stash->count == stash->max) {
        stash->max = stash->max ? stash->max * 2 : 64;
        stash->content = realloc (stash->content, stash->max * sizeof *stash->content);
        if (!stash->content)
            abort ();
    }
    char *copy = malloc (len + 1);
    if (!copy)
        return -1;
    memcpy (copy, content, len);
    copy[len] = 0;
    stash->content[stash->count++] = copy;
    stash->puts++;
    snprintf (id_out, 33, "%032zx", stash->puts);
    return 0;
}

static void s_memory_clear (s_memory_stash_t *stash)
{
    for (size_t i = 0; i < stash->count; i++)
        free (stash->content[i]);
    stash->count = 0;
}

typedef struct {
    ar_stash_t *stash; // NULL: memory
    ar_stash_sink_t real;
    size_t puts;
} s_sqlite_stash_t;

static int s_sqlite_put (void *self, const char *content, size_t len, char id_out[33])
{
    s_sqlite_stash_t *wrap = (s_sqlite_stash_t *)self;
    wrap->puts++;
    return wrap->real.put (wrap->real.self, content, len, id_out);
}

//  ---------------------------------------------------------------------------------------------
//  Measuring.

static int s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

//  Percentile p of n sorted samples (us), as ms: nearest rank, ceil(p/100 * n).
static double s_pct (int64_t *us, size_t n, int p)
{
    size_t rank = (n * (size_t)p + 99) / 100;
    return (double)us[rank ? (rank <= n ? rank - 1 : n - 1) : 0] / 1000.0;
}

typedef struct {
    const char *name;
    s_size_t size;
    ar_shape_t shape;
    const char *endpoint;
    size_t iterations;
    uint64_t seed; // of the first cold request; iteration i uses seed + i
} s_case_t;

typedef struct {
    ar_optimizer_config_t *config;
    ar_tokenizer_t *tokenizer;
    ar_stash_sink_t sink;
    s_memory_stash_t *memory; // cleared after every iteration (untimed)
    size_t *puts;
    double cap_s;
    const char *stash_name;
} s_bench_t;

typedef struct {
    int64_t *parse, *pipeline, *dump, *count;
    int64_t *json_ns[4]; // jansson parse, fast parse, jansson dump, fast dump (ns)
    size_t n;
    size_t bytes;
    int64_t tokens_before, tokens_after, raw_tokens;
    uint64_t failed, overran, unavailable, applied, puts;
    int64_t step_us[AR_OPTIMIZE_STEPS_MAX];
    const char *step_kind[AR_OPTIMIZE_STEPS_MAX];
    size_t steps;
} s_run_t;

static int64_t s_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

//  jansson against ar_json_fast on the whole body: each parses it, then dumps what it parsed
//  (the same DOM), into ns[0..3]; the order alternates with flip. The results are thrown away.
static int s_json_compare (const char *body, size_t len, bool flip, int64_t ns[4])
{
    int rc = 0;
    for (int pass = 0; pass < 2; pass++) {
        bool fast = (pass == 0) == flip;
        int64_t t0 = s_ns ();
        json_t *value = fast ? ar_json_fast_load (body, len, 0) : json_loadb (body, len, 0, NULL);
        int64_t t1 = s_ns ();
        char *text = !value ? NULL
                     : fast ? ar_json_fast_dump (value, NULL)
                            : json_dumps (value, JSON_COMPACT);
        int64_t t2 = s_ns ();
        rc |= value && text ? 0 : -1;
        json_decref (value);
        free (text);
        ns[fast ? 1 : 0] = t1 - t0;
        ns[fast ? 3 : 2] = t2 - t1;
    }
    return rc;
}

//  One iteration over body: parse, resolve + run, dump; the same body's token count alone.
static int s_iterate (s_bench_t *bench, const s_case_t *c, const char *body, size_t len,
                      s_run_t *run, bool record)
{
    int64_t t0 = ar_mono_us ();
    json_t *request = ar_json_fast_load (body, len, 0);
    int64_t t1 = ar_mono_us ();
    if (!request) {
        json_error_t error;
        json_t *slow = json_loadb (body, len, 0, &error);
        fprintf (stderr, "ar_bench_pipeline: %s: generated body does not parse: %s\n", c->name,
                 slow ? "(only ar_json_fast_load refuses it)" : error.text);
        json_decref (slow);
        return -1;
    }
    const char *model = json_string_value (json_object_get (request, "model"));
    ar_request_facts_t facts = {.endpoint = c->endpoint, .model = model};
    ar_pipeline_t *pipeline = ar_optimizer_config_resolve (bench->config, &facts);
    ar_strategy_ctx_t ctx = {.shape = c->shape,
                             .request = request,
                             .endpoint = c->endpoint,
                             .model = model,
                             .tokenizer = bench->tokenizer,
                             .stash = &bench->sink,
                             .deadline = ar_mono_now () + 10000};
    ar_optimize_report_t report;
    int rc = pipeline ? ar_optimize_run (pipeline, &ctx, &report) : -1;
    int64_t t2 = ar_mono_us ();
    char *out = rc == 0 ? ar_json_fast_dump (request, NULL) : NULL;
    int64_t t3 = ar_mono_us ();
    bool dumped = out != NULL;
    int64_t json_ns[4] = {0};
    if (dumped && record && s_json_compare (body, len, run->n % 2, json_ns) != 0)
        dumped = false;
    ar_pipeline_destroy (&pipeline);
    json_decref (request);
    free (out);
    if (bench->memory)
        s_memory_clear (bench->memory);
    if (rc != 0 || !dumped) {
        fprintf (stderr, "ar_bench_pipeline: %s: the pipeline failed\n", c->name);
        return -1;
    }
    int64_t t4 = ar_mono_us ();
    size_t raw = ar_tokenizer_count (bench->tokenizer, body, len);
    int64_t t5 = ar_mono_us ();
    if (!record)
        return 0;
    if (run->n == 0) {
        run->bytes = len;
        run->tokens_before = report.tokens_before;
        run->tokens_after = report.tokens_after;
        run->raw_tokens = (int64_t)raw;
        run->steps = report.step_count;
        for (size_t i = 0; i < report.step_count; i++)
            run->step_kind[i] = report.steps[i].kind;
    }
    for (size_t i = 0; i < report.step_count; i++) {
        ar_optimize_status_t status = report.steps[i].status;
        run->failed += status == AR_OPTIMIZE_FAILED;
        run->overran += status == AR_OPTIMIZE_OVERRAN;
        run->unavailable += status == AR_OPTIMIZE_UNAVAILABLE;
        run->applied += status == AR_OPTIMIZE_RAN && report.steps[i].result.applied;
        if (i < run->steps)
            run->step_us[i] += report.steps[i].result.micros;
    }
    run->parse[run->n] = t1 - t0;
    run->pipeline[run->n] = t2 - t1;
    run->dump[run->n] = t3 - t2;
    run->count[run->n] = t5 - t4;
    for (int i = 0; i < 4; i++)
        run->json_ns[i][run->n] = json_ns[i];
    run->n++;
    return 0;
}

static void s_print (s_bench_t *bench, const s_case_t *c, const char *mode, s_run_t *run,
                     double *p99_out)
{
    size_t n = run->n;
    qsort (run->parse, n, sizeof (int64_t), s_compare);
    qsort (run->pipeline, n, sizeof (int64_t), s_compare);
    qsort (run->dump, n, sizeof (int64_t), s_compare);
    double p50 = s_pct (run->pipeline, n, 50);
    printf ("pipeline case=%s mode=%s stash=%s n=%zu bytes=%zu tokens_before=%lld "
            "tokens_after=%lld p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f tokens_per_s=%.0f "
            "parse_p50_ms=%.3f parse_p99_ms=%.3f dump_p50_ms=%.3f applied_per_run=%.1f "
            "stash_puts=%zu failed=%llu overran=%llu\n",
            c->name, mode, bench->stash_name, n, run->bytes, (long long)run->tokens_before,
            (long long)run->tokens_after, p50, s_pct (run->pipeline, n, 90),
            s_pct (run->pipeline, n, 99), (double)run->pipeline[n - 1] / 1000.0,
            p50 > 0 ? (double)run->tokens_before / (p50 / 1000.0) : 0.0, s_pct (run->parse, n, 50),
            s_pct (run->parse, n, 99), s_pct (run->dump, n, 50), (double)run->applied / (double)n,
            run->puts, (unsigned long long)run->failed, (unsigned long long)run->overran);
    //  What the strategies took, and the rest of the run: the runner's token counts (before
    //  the first step, after each that changed the request) and its copies for undo.
    int64_t total = 0, in_steps = 0;
    for (size_t i = 0; i < n; i++)
        total += run->pipeline[i];
    printf ("steps case=%s mode=%s unit=mean_ms", c->name, mode);
    for (size_t i = 0; i < run->steps; i++) {
        in_steps += run->step_us[i];
        printf (" %s=%.3f", run->step_kind[i], (double)run->step_us[i] / (double)n / 1000.0);
    }
    printf (" runner_counting_and_copies=%.3f\n", (double)(total - in_steps) / (double)n / 1000.0);
    if (p99_out)
        *p99_out = s_pct (run->pipeline, n, 99);
    //  jansson against ar_json_fast, same bodies, same iterations (s_pct's ms are us here).
    double pct[4][2];
    for (int i = 0; i < 4; i++) {
        qsort (run->json_ns[i], n, sizeof (int64_t), s_compare);
        pct[i][0] = s_pct (run->json_ns[i], n, 50);
        pct[i][1] = s_pct (run->json_ns[i], n, 99);
    }
    printf ("json case=%s mode=%s n=%zu bytes=%zu jansson_parse_p50_us=%.1f "
            "jansson_parse_p99_us=%.1f fast_parse_p50_us=%.1f fast_parse_p99_us=%.1f "
            "parse_speedup_p50=%.2f parse_speedup_p99=%.2f jansson_dump_p50_us=%.1f "
            "jansson_dump_p99_us=%.1f fast_dump_p50_us=%.1f fast_dump_p99_us=%.1f "
            "dump_speedup_p50=%.2f dump_speedup_p99=%.2f\n",
            c->name, mode, n, run->bytes, pct[0][0], pct[0][1], pct[1][0], pct[1][1],
            pct[1][0] > 0 ? pct[0][0] / pct[1][0] : 0.0,
            pct[1][1] > 0 ? pct[0][1] / pct[1][1] : 0.0, pct[2][0], pct[2][1], pct[3][0], pct[3][1],
            pct[3][0] > 0 ? pct[2][0] / pct[3][0] : 0.0,
            pct[3][1] > 0 ? pct[2][1] / pct[3][1] : 0.0);
}

static void s_run_init (s_run_t *run, size_t iterations)
{
    *run = (s_run_t){0};
    run->parse = calloc (iterations, sizeof (int64_t));
    run->pipeline = calloc (iterations, sizeof (int64_t));
    run->dump = calloc (iterations, sizeof (int64_t));
    run->count = calloc (iterations, sizeof (int64_t));
    if (!run->parse || !run->pipeline || !run->dump || !run->count)
        abort ();
    for (int i = 0; i < 4; i++)
        if (!(run->json_ns[i] = calloc (iterations, sizeof (int64_t))))
            abort ();
}

static void s_run_free (s_run_t *run)
{
    free (run->parse);
    free (run->pipeline);
    free (run->dump);
    free (run->count);
    for (int i = 0; i < 4; i++)
        free (run->json_ns[i]);
}

//  Both modes of one case; the cold p99 in *cold_p99. -1 on failure.
static int s_case (s_bench_t *bench, const s_case_t *c, double *cold_p99)
{
    s_run_t cold, resent;
    s_run_init (&cold, c->iterations);
    s_run_init (&resent, c->iterations);
    int rc = 0;
    //  Cold: a body from a fresh seed each time (generated untimed).
    size_t puts0 = *bench->puts;
    int64_t start = ar_mono_us ();
    for (size_t i = 0; rc == 0 && i < c->iterations; i++) {
        size_t len;
        char *body = s_generate (c->size, c->shape, c->seed + i, &len);
        rc = s_iterate (bench, c, body, len, &cold, true);
        free (body);
        if (i >= 4 && (double)(ar_mono_us () - start) / 1e6 > bench->cap_s)
            break;
    }
    cold.puts = *bench->puts - puts0;
    //  Resent: the first cold seed again, whose counts the cold pass memoized on its first
    //  iteration; one untimed run first so it is the second sending whatever the memo held.
    size_t len;
    char *body = s_generate (c->size, c->shape, c->seed, &len);
    if (rc == 0)
        rc = s_iterate (bench, c, body, len, &resent, false);
    puts0 = *bench->puts;
    start = ar_mono_us ();
    for (size_t i = 0; rc == 0 && i < c->iterations; i++) {
        rc = s_iterate (bench, c, body, len, &resent, true);
        if (i >= 4 && (double)(ar_mono_us () - start) / 1e6 > bench->cap_s)
            break;
    }
    resent.puts = *bench->puts - puts0;
    free (body);
    if (rc == 0) {
        s_print (bench, c, "cold", &cold, cold_p99);
        s_print (bench, c, "resent", &resent, NULL);
        //  The tokenizer alone over the whole body (JSON syntax included), per cold body.
        size_t n = cold.n;
        qsort (cold.count, n, sizeof (int64_t), s_compare);
        double p50 = s_pct (cold.count, n, 50);
        double pipe50 = s_pct (cold.pipeline, n, 50);
        printf ("tokenizer case=%s n=%zu bytes=%zu tokens=%lld p50_ms=%.3f p99_ms=%.3f "
                "tokens_per_s=%.0f mb_per_s=%.1f vs_pipeline_cold_p50=%.2f\n",
                c->name, n, cold.bytes, (long long)cold.raw_tokens, p50, s_pct (cold.count, n, 99),
                p50 > 0 ? (double)cold.raw_tokens / (p50 / 1000.0) : 0.0,
                p50 > 0 ? (double)cold.bytes / (p50 / 1000.0) / 1e6 : 0.0,
                pipe50 > 0 ? p50 / pipe50 : 0.0);
        fflush (stdout);
    }
    s_run_free (&cold);
    s_run_free (&resent);
    return rc;
}

//  The bodies the cold passes would see first, one file each: the same bytes on every build.
static int s_write_bodies (const char *dir, const s_case_t *cases, size_t count)
{
    for (size_t c = 0; c < count; c++)
        for (size_t i = 0; i < cases[c].iterations && i < 20; i++) {
            size_t len;
            char *body = s_generate (cases[c].size, cases[c].shape, cases[c].seed + i, &len);
            char path[4096];
            snprintf (path, sizeof path, "%s/%s-%02zu.json", dir, cases[c].name, i);
            FILE *file = fopen (path, "wb");
            bool ok = file && fwrite (body, 1, len, file) == len;
            if (file && fclose (file) != 0)
                ok = false;
            free (body);
            if (!ok) {
                perror (path);
                return 1;
            }
        }
    return 0;
}

int main (int argc, char *argv[])
{
    bool quick = false, sqlite = false;
    double cap_s = 10;
    const char *write_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp (argv[i], "--stash") == 0 && i + 1 < argc) {
            const char *kind = argv[++i];
            if (strcmp (kind, "sqlite") != 0 && strcmp (kind, "memory") != 0)
                goto usage;
            sqlite = strcmp (kind, "sqlite") == 0;
        } else if (strcmp (argv[i], "--cap-s") == 0 && i + 1 < argc) {
            cap_s = atof (argv[++i]);
            if (cap_s <= 0 || cap_s > 600)
                goto usage;
        } else if (strcmp (argv[i], "--write-bodies") == 0 && i + 1 < argc)
            write_dir = argv[++i];
        else
            goto usage;
    }

    //  One core: the CPU this process starts on.
    int cpu = sched_getcpu ();
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO (&set);
        CPU_SET (cpu, &set);
        if (sched_setaffinity (0, sizeof set, &set) != 0)
            cpu = -1;
    }

    s_case_t cases[] = {
        {"1k-openai", S_1K, AR_SHAPE_OPENAI_CHAT, "/v1/chat/completions", 200, 1000},
        {"100k-openai", S_100K, AR_SHAPE_OPENAI_CHAT, "/v1/chat/completions", 100, 2000},
        {"100k-anthropic", S_100K, AR_SHAPE_ANTHROPIC_MESSAGES, "/v1/messages", 100, 3000},
        {"1m-openai", S_1M, AR_SHAPE_OPENAI_CHAT, "/v1/chat/completions", 20, 4000},
    };
    size_t count = sizeof cases / sizeof cases[0];
    if (write_dir)
        return s_write_bodies (write_dir, cases, count);

    s_bench_t bench = {.cap_s = cap_s, .stash_name = sqlite ? "sqlite" : "memory"};
    bench.config = ar_optimizer_config_default ();
    bench.tokenizer = ar_tokenizer_new ();
    if (!bench.config || !bench.tokenizer) {
        fprintf (stderr, "ar_bench_pipeline: no default config or tokenizer\n");
        return 1;
    }
    s_memory_stash_t memory = {0};
    s_sqlite_stash_t real = {0};
    char dir[] = "/tmp/ar-bench-pipeline.XXXXXX", db[128] = "";
    if (sqlite) {
        if (!mkdtemp (dir)) {
            perror ("ar_bench_pipeline: mkdtemp");
            return 1;
        }
        snprintf (db, sizeof db, "%s/anyray.db", dir);
        uint8_t key[32];
        for (int i = 0; i < 32; i++)
            key[i] = (uint8_t)(i * 37 + 11);
        const char *why = NULL;
        real.stash = ar_stash_open (db, key, 3600, &why);
        if (!real.stash) {
            fprintf (stderr, "ar_bench_pipeline: stash: %s\n", why ? why : "?");
            rmdir (dir);
            return 1;
        }
        real.real = ar_stash_sink (real.stash);
        bench.sink = (ar_stash_sink_t){&real, s_sqlite_put};
        bench.puts = &real.puts;
    } else {
        bench.sink = (ar_stash_sink_t){&memory, s_memory_put};
        bench.memory = &memory;
        bench.puts = &memory.puts;
    }

    char kinds[512] = "";
    ar_request_facts_t facts = {.endpoint = "/v1/chat/completions"};
    ar_pipeline_t *pipeline = ar_optimizer_config_resolve (bench.config, &facts);
    for (size_t i = 0; pipeline && i < ar_pipeline_size (pipeline); i++) {
        const ar_strategy_info_t *info = ar_pipeline_strategy (pipeline, i);
        size_t used = strlen (kinds);
        snprintf (kinds + used, sizeof kinds - used, "%s%s%s", used ? "," : "",
                  ar_pipeline_kind (pipeline, i), info && info->available ? "" : "(unavailable)");
    }
    ar_pipeline_destroy (&pipeline);
    //  The 1-minute load average: other work on the core shows in the p99s.
    char load[32] = "na";
    FILE *file = fopen ("/proc/loadavg", "r");
    if (file) {
        if (fscanf (file, "%31s", load) != 1)
            strcpy (load, "na");
        fclose (file);
    }
    printf ("pipeline-bench cpus=%ld pinned_cpu=%d loadavg_1m=%s stash=%s config=default quick=%d "
            "cap_s=%g pipeline=%s\n",
            sysconf (_SC_NPROCESSORS_ONLN), cpu, load, bench.stash_name, quick, cap_s, kinds);
    fflush (stdout);

    double worst_100k = -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (quick)
            cases[i].iterations = cases[i].iterations / 10 < 5 ? 5 : cases[i].iterations / 10;
        double p99 = 0;
        rc = s_case (&bench, &cases[i], &p99);
        if (rc == 0 && cases[i].size == S_100K && p99 > worst_100k)
            worst_100k = p99;
    }
    //  The target: the default pipeline on a 100 KB request under 10 ms p99 on one core (issue
    //  4's, for the six-strategy default; issue 3's 5 ms held for its three), taken as the worse
    //  of the two 100 KB cases, cold (text the memo has not seen).
    if (worst_100k >= 0)
        printf ("target %-34s measured=%-10.3f want %s %-8s %s\n", "pipeline_100k_p99_ms",
                worst_100k, "<", "10", worst_100k < 10 ? "ok" : "MISS");

    if (real.stash) {
        ar_stash_destroy (&real.stash);
        const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
        for (size_t i = 0; i < 4; i++) {
            char path[160];
            snprintf (path, sizeof path, "%s%s", db, suffixes[i]);
            unlink (path);
        }
        rmdir (dir);
    }
    free (memory.content);
    ar_tokenizer_destroy (&bench.tokenizer);
    ar_optimizer_config_destroy (&bench.config);
    return rc == 0 ? 0 : 1;

usage:
    fprintf (stderr, "usage: ar_bench_pipeline [--quick] [--stash memory|sqlite] [--cap-s S] "
                     "[--write-bodies DIR]\n");
    return 2;
}
