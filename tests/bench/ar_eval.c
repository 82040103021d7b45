/*  ar_eval: the optimizer evaluator. Runs every request of a corpus through the exact code path
    the gateway runs (ar_optimizer_answer with an Optimizer Protocol /v1/optimize message: the
    running config's pipeline, the real o200k tokenizer, a real encrypted stash in a fresh
    temporary data directory) and measures what the issue asks of the optimizer: tokens saved,
    time, facts the next step needs still present, tool definitions the next step calls still
    there, chat left alone. Why: the pipeline benchmark (ar_bench_pipeline) times generated
    requests; this checks the *effect* on real ones, per strategy, against the targets.

    ar_eval [--corpus DIR]... [--requests FILE --meta FILE] [--no-default-corpus]
            [--config FILE] [--retrieve-tool on|off] [--slice N] [--only-subkind S]...
            [--skip-subkind S]... [--json] [--assert]
      --corpus DIR     add a corpus (DIR/requests.jsonl + DIR/meta.jsonl, one line each, same
                       order and ids; repeatable). The development corpus
                       (<repo>/../shared/corpus) is read unless --no-default-corpus or
                       --requests is given.
      --requests/--meta  one corpus given by its two files.
      --config FILE    an optimizer.config.json (ANYRAY_OPTIMIZER_CONFIG for the run); default:
                       the baked-in default pipeline.
      --retrieve-tool  on: a needed string is retained when it is verbatim in the optimized
                       request or in a stashed original that a marker in the output names (read
                       back with /v1/retrieve, following markers inside originals); off: only
                       when verbatim in the optimized request. Default: what the config says
                       (its retrieveTool.enabled; the baked-in default has it off), so the
                       retention figure is the one the running gateway gets: a model that is
                       not offered the retrieve tool cannot read a stashed original back.
      --slice N        the first N requests of each kind of each corpus file (after the
                       subkind filters).
      --only-subkind S / --skip-subkind S  keep only requests whose meta "subkind" starts with
                       S / leave those out (repeatable).
      --json           one JSON document on stdout instead of the tables.
      --dump FILE      write each optimized request to FILE, one JSON line per request
                       ({"id", "kind", "request"}), for looking at what the pipeline left.
      --assert         exit 1 when a target line says MISS.
      --not-asserted T,T...  targets --assert leaves out (still printed, marked "not asserted"):
                       the timing target belongs to benchmarks, not to a test on a shared
                       machine; a target the strategies do not reach yet is named here, in
                       the open, until they do.

    Facts are compared against JSON-decoded text: every string value of the request (and of a
    string that is itself JSON, such as tool-call arguments), never the escaped JSON. A needed
    string that is not in the original request either is not counted (reported as "absent").
    A retention failure is blamed on a strategy by re-running that request with the pipeline
    cut after each strategy that changed it (same config with later kinds disabled), in order:
    the first prefix whose output loses the string names the strategy. Tool-definition tokens
    are o200k counts of each tool's name + description + compact JSON of its parameters
    (input_schema for Anthropic), summed. Time: the wall time of ar_optimizer_answer per request
    (first run, single-threaded, pinned to one core), and each strategy's own "ms".
*/
#include "ar_buf.h"
#include "ar_clock.h"
#include "ar_optimizer.h"
#include "ar_syntax.h"
#include "ar_optimizer_config.h"
#include "ar_tokenizer.h"
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AR_EVAL_REPO
#define AR_EVAL_REPO "."
#endif

#if defined(__SANITIZE_ADDRESS__)
#define S_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_SANITIZED 1
#endif
#endif
#ifndef S_SANITIZED
#define S_SANITIZED 0
#endif

#define S_DEADLINE_MS 5000
#define S_MAX_KINDS   16

//  Groups a request counts in; TOOLS10 is any request with 10+ tools (the tool target's set).
enum { G_CODING, G_TOOLS, G_CHAT, G_ALL, G_TOOLS10, G_COUNT };
static const char *s_group_names[G_COUNT] = {"coding_agent", "many_tools", "chat", "all",
                                             "tools>=10"};

//  ---------------------------------------------------------------------------------------------
//  Small buffers and sample lists.

static void s_add (ar_buf_t *buf, const char *text, size_t len)
{
    if (ar_buf_add (buf, text, len) != 0)
        abort (); // a benchmark out of memory has nothing to report
}

typedef struct {
    double *v;
    size_t n, cap;
} s_samples_t;

static void s_sample (s_samples_t *s, double value)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = realloc (s->v, s->cap * sizeof *s->v);
        if (!s->v)
            abort ();
    }
    s->v[s->n++] = value;
}

static int s_compare (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

//  Nearest-rank percentile; NAN when there are no samples.
static double s_pct (s_samples_t *s, double p)
{
    if (!s->n)
        return NAN;
    qsort (s->v, s->n, sizeof *s->v, s_compare);
    size_t rank = (size_t)ceil (p / 100.0 * (double)s->n);
    return s->v[rank ? rank - 1 : 0];
}

static int s_remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove (path);
}

//  ---------------------------------------------------------------------------------------------
//  The corpus.

typedef struct {
    char id[64], corpus[256];
    int group;      // G_CODING, G_TOOLS, G_CHAT or -1
    bool anthropic; // /v1/messages
    char *body;     // the request, as the line had it
    size_t body_len;
    json_t *meta;
    json_t *needed;     // array of strings (borrowed from meta)
    bool heuristic;     // needed_strings_heuristic
    json_t *required;   // array of tool names (borrowed)
    size_t tools_count; // tools in the original
} s_req_t;

typedef struct {
    s_req_t *v;
    size_t n, cap;
} s_reqs_t;

static json_t *s_check (json_t *meta, const char *name)
{
    json_t *checks = json_object_get (meta, "checks");
    json_t *value = json_object_get (checks, name);
    return value ? value : json_object_get (meta, name);
}

static int s_group_of (const char *kind)
{
    if (!kind)
        return -1;
    if (strcmp (kind, "coding_agent") == 0)
        return G_CODING;
    if (strcmp (kind, "many_tools") == 0)
        return G_TOOLS;
    if (strcmp (kind, "chat") == 0)
        return G_CHAT;
    return -1;
}

//  Which requests of a corpus file to take: a slice (the first N of each kind), and subkind
//  filters (a request is kept when its subkind starts with one of only[], and none of skip[]).
typedef struct {
    size_t slice;
    const char *only[8], *skip[8];
    size_t only_n, skip_n;
} s_select_t;

static bool s_subkind_wanted (const s_select_t *select, const json_t *meta)
{
    const char *subkind = json_string_value (json_object_get (meta, "subkind"));
    if (!subkind)
        subkind = "";
    for (size_t i = 0; i < select->skip_n; i++)
        if (strncmp (subkind, select->skip[i], strlen (select->skip[i])) == 0)
            return false;
    for (size_t i = 0; i < select->only_n; i++)
        if (strncmp (subkind, select->only[i], strlen (select->only[i])) == 0)
            return true;
    return select->only_n == 0;
}

static int s_load_corpus (s_reqs_t *reqs, const char *requests_path, const char *meta_path,
                          const s_select_t *select)
{
    FILE *rf = fopen (requests_path, "rb");
    FILE *mf = fopen (meta_path, "rb");
    if (!rf || !mf) {
        fprintf (stderr, "ar_eval: cannot open %s\n", !rf ? requests_path : meta_path);
        if (rf)
            fclose (rf);
        if (mf)
            fclose (mf);
        return -1;
    }
    size_t per_group[3] = {0, 0, 0};
    char *rline = NULL, *mline = NULL;
    size_t rcap = 0, mcap = 0;
    ssize_t rlen, mlen;
    int rc = 0;
    size_t lineno = 0;
    while ((rlen = getline (&rline, &rcap, rf)) > 0) {
        lineno++;
        mlen = getline (&mline, &mcap, mf);
        if (mlen <= 0) {
            fprintf (stderr, "ar_eval: %s has fewer lines than %s\n", meta_path, requests_path);
            rc = -1;
            break;
        }
        while (rlen > 0 && (rline[rlen - 1] == '\n' || rline[rlen - 1] == '\r'))
            rline[--rlen] = 0;
        json_error_t jerr;
        json_t *meta = json_loadb (mline, (size_t)mlen, 0, &jerr);
        json_t *request = json_loadb (rline, (size_t)rlen, 0, &jerr);
        if (!meta || !request || !json_is_object (request)) {
            fprintf (stderr, "ar_eval: %s line %zu does not parse\n", requests_path, lineno);
            json_decref (meta);
            json_decref (request);
            rc = -1;
            break;
        }
        int group = s_group_of (json_string_value (json_object_get (meta, "kind")));
        bool wanted = s_subkind_wanted (select, meta);
        if (wanted && group >= 0 && select->slice)
            wanted = per_group[group]++ < select->slice;
        if (!wanted) {
            json_decref (meta);
            json_decref (request);
            continue;
        }
        if (reqs->n == reqs->cap) {
            reqs->cap = reqs->cap ? reqs->cap * 2 : 64;
            reqs->v = realloc (reqs->v, reqs->cap * sizeof *reqs->v);
            if (!reqs->v)
                abort ();
        }
        s_req_t *req = &reqs->v[reqs->n++];
        memset (req, 0, sizeof *req);
        const char *id = json_string_value (json_object_get (meta, "id"));
        snprintf (req->id, sizeof req->id, "%s", id ? id : "?");
        snprintf (req->corpus, sizeof req->corpus, "%s", requests_path);
        req->group = group;
        const char *api = json_string_value (json_object_get (meta, "api"));
        req->anthropic =
            api ? strcmp (api, "anthropic") == 0 : json_object_get (request, "system") != NULL;
        req->body = strndup (rline, (size_t)rlen);
        req->body_len = (size_t)rlen;
        req->meta = meta;
        req->needed = s_check (meta, "needed_strings");
        req->heuristic = json_is_true (s_check (meta, "needed_strings_heuristic"));
        req->required = s_check (meta, "required_tools");
        req->tools_count = json_array_size (json_object_get (request, "tools"));
        json_decref (request);
    }
    free (rline);
    free (mline);
    fclose (rf);
    fclose (mf);
    return rc;
}

//  ---------------------------------------------------------------------------------------------
//  Optimizers: one per config variant, each in its own directory of the run's temp dir.

typedef struct {
    char key[512]; // allowed kinds, comma-joined ("" = the config as given)
    ar_optimizer_t *optimizer;
} s_variant_t;

typedef struct {
    char dir[64];
    const char *config_path; // --config, or NULL for the baked-in default
    json_t *config_doc;      // the config as JSON (variants are edited copies)
    bool retrieve;
    FILE *dump; // --dump, or NULL
    ar_tokenizer_t *tokenizer;
    s_variant_t variants[64];
    size_t variant_count;
} s_eval_t;

//  Disable every {"kind", "enabled"} entry whose kind is not in allowed (comma-joined).
static void s_restrict (json_t *node, const char *allowed)
{
    if (json_is_object (node)) {
        const char *kind = json_string_value (json_object_get (node, "kind"));
        if (kind && json_is_boolean (json_object_get (node, "enabled"))) {
            char needle[80];
            snprintf (needle, sizeof needle, ",%s,", kind);
            char list[600];
            snprintf (list, sizeof list, ",%s,", allowed);
            if (!strstr (list, needle))
                json_object_set_new (node, "enabled", json_false ());
        }
        const char *key;
        json_t *value;
        json_object_foreach (node, key, value) s_restrict (value, allowed);
    } else if (json_is_array (node)) {
        size_t i;
        json_t *value;
        json_array_foreach (node, i, value) s_restrict (value, allowed);
    }
}

static ar_optimizer_t *s_optimizer (s_eval_t *eval, const char *allowed)
{
    const char *key = allowed ? allowed : "";
    for (size_t i = 0; i < eval->variant_count; i++)
        if (strcmp (eval->variants[i].key, key) == 0)
            return eval->variants[i].optimizer;
    if (eval->variant_count == sizeof eval->variants / sizeof eval->variants[0])
        return NULL;
    size_t index = eval->variant_count;
    char dir[128], file[160];
    snprintf (dir, sizeof dir, "%s/v%zu", eval->dir, index);
    if (mkdir (dir, 0700) != 0)
        return NULL;
    if (allowed) {
        json_t *doc = json_deep_copy (eval->config_doc);
        s_restrict (doc, allowed);
        snprintf (file, sizeof file, "%s/optimizer.config.json", dir);
        if (json_dump_file (doc, file, JSON_INDENT (2)) != 0) {
            json_decref (doc);
            return NULL;
        }
        json_decref (doc);
        setenv ("ANYRAY_OPTIMIZER_CONFIG", file, 1);
    } else if (eval->config_path)
        setenv ("ANYRAY_OPTIMIZER_CONFIG", eval->config_path, 1);
    else
        unsetenv ("ANYRAY_OPTIMIZER_CONFIG");
    char error[512] = "";
    ar_optimizer_t *optimizer = ar_optimizer_new (dir, error, sizeof error);
    if (!optimizer) {
        fprintf (stderr, "ar_eval: optimizer for %s: %s\n", *key ? key : "config", error);
        return NULL;
    }
    s_variant_t *variant = &eval->variants[eval->variant_count++];
    snprintf (variant->key, sizeof variant->key, "%s", key);
    variant->optimizer = optimizer;
    return optimizer;
}

//  ---------------------------------------------------------------------------------------------
//  One run and what its output holds.

typedef struct {
    int status;
    double wall_ms;
    json_t *reply;    // the whole reply (NULL unless 200)
    json_t *request;  // borrowed from reply: the optimized request
    ar_buf_t text;    // JSON-decoded strings of the optimized request, \x01-separated
    ar_buf_t stashed; // decoded strings of every stashed original the output names (retrieve on)
    size_t retrieved;
} s_outcome_t;

static void s_outcome_free (s_outcome_t *out)
{
    json_decref (out->reply);
    free (out->text.data);
    free (out->stashed.data);
    memset (out, 0, sizeof *out);
}

//  Every string value under node into buf, and the strings of a string that is itself JSON
//  (tool-call arguments, a tool result holding a JSON document).
static void s_strings (const json_t *node, ar_buf_t *buf, int depth)
{
    if (json_is_string (node)) {
        const char *s = json_string_value (node);
        size_t len = json_string_length (node);
        s_add (buf, s, len);
        s_add (buf, "\x01", 1);
        if (depth < 4 && len > 1 && (s[0] == '{' || s[0] == '[')) {
            json_t *inner = json_loadb (s, len, 0, NULL);
            if (inner)
                s_strings (inner, buf, depth + 1);
            json_decref (inner);
        }
    } else if (json_is_object (node)) {
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *)node, key, value) s_strings (value, buf, depth);
    } else if (json_is_array (node)) {
        size_t i;
        json_t *value;
        json_array_foreach ((json_t *)node, i, value) s_strings (value, buf, depth);
    }
}

static bool s_has (const ar_buf_t *buf, const char *needle, size_t len)
{
    return buf->data && len && memmem (buf->data, buf->len, needle, len) != NULL;
}

static bool s_hex32 (const char *p, const char *end)
{
    if (end - p < 32)
        return false;
    for (int i = 0; i < 32; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return end - p == 32 || !((p[32] >= '0' && p[32] <= '9') || (p[32] >= 'a' && p[32] <= 'f'));
}

//  Stash ids the markers in text name: a 32-hex run within an "[anyray: ...]" marker.
static size_t s_marker_ids (const char *text, size_t len, char (*ids)[33], size_t max)
{
    size_t n = 0;
    const char *end = text + len;
    for (const char *p = text; p && p < end && n < max;) {
        p = memmem (p, (size_t)(end - p), "[anyray:", 8);
        if (!p)
            break;
        const char *close = memchr (p, ']', (size_t)(end - p));
        const char *stop = close ? close : (end - p > 400 ? p + 400 : end);
        for (const char *q = p + 8; q < stop && n < max; q++)
            if ((q == p + 8 || q[-1] == ' ' || q[-1] == '=' || q[-1] == ':') && s_hex32 (q, stop)) {
                memcpy (ids[n], q, 32);
                ids[n][32] = 0;
                n++;
                q += 31;
            }
        p += 8;
    }
    return n;
}

static int s_retrieve (ar_optimizer_t *optimizer, const char *id, ar_buf_t *into)
{
    char body[80];
    snprintf (body, sizeof body, "{\"id\":\"%s\"}", id);
    char *reply = NULL;
    size_t reply_len = 0;
    int status = ar_optimizer_answer (optimizer, AR_OP_RETRIEVE, body, strlen (body),
                                      ar_mono_now () + S_DEADLINE_MS, &reply, &reply_len);
    json_t *doc = status == 200 ? json_loadb (reply, reply_len, 0, NULL) : NULL;
    free (reply);
    json_t *content = json_object_get (doc, "content");
    if (!json_is_string (content)) {
        json_decref (doc);
        return -1;
    }
    json_t *original = json_loadb (json_string_value (content), json_string_length (content),
                                   JSON_DECODE_ANY, NULL);
    if (original)
        s_strings (original, into, 0);
    else {
        s_add (into, json_string_value (content), json_string_length (content));
        s_add (into, "\x01", 1);
    }
    json_decref (original);
    json_decref (doc);
    return 0;
}

//  Read back every original the output's markers name, and those their own markers name.
static void s_follow (ar_optimizer_t *optimizer, s_outcome_t *out)
{
    char seen[256][33];
    size_t seen_n = 0, done = 0;
    seen_n = s_marker_ids (out->text.data, out->text.len, seen, 256);
    json_t *listed = json_object_get (out->reply, "stashIds");
    size_t i;
    json_t *value;
    json_array_foreach (listed, i, value)
    {
        //  stashIds the output names: they are in the marker scan already unless the marker
        //  text differs from "[anyray: ...]"; take them when they appear anywhere in the text.
        const char *id = json_string_value (value);
        if (!id || strlen (id) != 32 || !s_has (&out->text, id, 32) || seen_n == 256)
            continue;
        bool have = false;
        for (size_t k = 0; k < seen_n; k++)
            have |= strcmp (seen[k], id) == 0;
        if (!have)
            snprintf (seen[seen_n++], 33, "%s", id);
    }
    while (done < seen_n) {
        size_t before = out->stashed.len;
        if (s_retrieve (optimizer, seen[done++], &out->stashed) == 0)
            out->retrieved++;
        char more[64][33];
        size_t found =
            s_marker_ids (out->stashed.data + before, out->stashed.len - before, more, 64);
        for (size_t m = 0; m < found && seen_n < 256; m++) {
            bool have = false;
            for (size_t k = 0; k < seen_n; k++)
                have |= strcmp (seen[k], more[m]) == 0;
            if (!have)
                memcpy (seen[seen_n++], more[m], 33);
        }
    }
}

static char *s_message (const s_req_t *req, size_t *len)
{
    ar_buf_t buf = {0};
    const char *head = req->anthropic
                           ? "{\"endpoint\":\"/v1/messages\",\"shape\":\"anthropic.messages\","
                             "\"request\":"
                           : "{\"endpoint\":\"/v1/chat/completions\",\"shape\":\"openai.chat\","
                             "\"request\":";
    s_add (&buf, head, strlen (head));
    s_add (&buf, req->body, req->body_len);
    s_add (&buf, "}", 1);
    *len = buf.len;
    return buf.data;
}

static int s_run (s_eval_t *eval, ar_optimizer_t *optimizer, const s_req_t *req, s_outcome_t *out)
{
    memset (out, 0, sizeof *out);
    size_t len;
    char *message = s_message (req, &len);
    char *reply = NULL;
    size_t reply_len = 0;
    int64_t start = ar_mono_us ();
    out->status = ar_optimizer_answer (optimizer, AR_OP_OPTIMIZE, message, len,
                                       ar_mono_now () + S_DEADLINE_MS, &reply, &reply_len);
    out->wall_ms = (double)(ar_mono_us () - start) / 1000.0;
    free (message);
    if (out->status == 200)
        out->reply = json_loadb (reply, reply_len, 0, NULL);
    free (reply);
    out->request = json_object_get (out->reply, "request");
    if (!json_is_object (out->request))
        return -1;
    s_strings (out->request, &out->text, 0);
    if (eval->retrieve)
        s_follow (optimizer, out);
    return 0;
}

static bool s_retained (const s_eval_t *eval, const s_outcome_t *out, const char *s, size_t len)
{
    return s_has (&out->text, s, len) || (eval->retrieve && s_has (&out->stashed, s, len));
}

//  ---------------------------------------------------------------------------------------------
//  Tools.

static const json_t *s_tool_fn (const json_t *tool)
{
    const json_t *fn = json_object_get (tool, "function");
    return json_is_object (fn) ? fn : tool;
}

static size_t s_tool_tokens (ar_tokenizer_t *tokenizer, const json_t *tools)
{
    size_t total = 0, i;
    json_t *tool;
    json_array_foreach ((json_t *)tools, i, tool)
    {
        const json_t *fn = s_tool_fn (tool);
        const json_t *name = json_object_get (fn, "name");
        const json_t *description = json_object_get (fn, "description");
        const json_t *params = json_object_get (fn, "parameters");
        if (!params)
            params = json_object_get (fn, "input_schema");
        if (json_is_string (name))
            total +=
                ar_tokenizer_count (tokenizer, json_string_value (name), json_string_length (name));
        if (json_is_string (description))
            total += ar_tokenizer_count (tokenizer, json_string_value (description),
                                         json_string_length (description));
        if (params) {
            char *text = json_dumps (params, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (text)
                total += ar_tokenizer_count (tokenizer, text, strlen (text));
            free (text);
        }
    }
    return total;
}

static bool s_has_tool (const json_t *request, const char *name)
{
    size_t i;
    json_t *tool;
    json_array_foreach (json_object_get (request, "tools"), i, tool)
    {
        const char *have = json_string_value (json_object_get (s_tool_fn (tool), "name"));
        if (have && strcmp (have, name) == 0)
            return true;
    }
    return false;
}

//  ---------------------------------------------------------------------------------------------
//  Chat: the same document, strings equal once whitespace runs are one space and trimmed.

static bool s_same_text (const char *a, const char *b)
{
#define S_WS(c)                                                                                    \
    ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' || (c) == '\f' || (c) == '\v')
    while (S_WS (*a))
        a++;
    while (S_WS (*b))
        b++;
    while (*a && *b) {
        if (S_WS (*a) && S_WS (*b)) {
            while (S_WS (*a))
                a++;
            while (S_WS (*b))
                b++;
            if (!*a || !*b)
                break;
            continue;
        }
        if (*a != *b)
            return false;
        a++;
        b++;
    }
    while (S_WS (*a))
        a++;
    while (S_WS (*b))
        b++;
    return !*a && !*b;
#undef S_WS
}

static bool s_same_but_ws (const json_t *a, const json_t *b)
{
    if (json_typeof (a) != json_typeof (b))
        return json_is_number (a) && json_is_number (b) &&
               json_number_value (a) == json_number_value (b);
    if (json_is_string (a))
        return s_same_text (json_string_value (a), json_string_value (b));
    if (json_is_object (a)) {
        if (json_object_size (a) != json_object_size (b))
            return false;
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *)a, key, value)
        {
            json_t *other = json_object_get (b, key);
            if (!other || !s_same_but_ws (value, other))
                return false;
        }
        return true;
    }
    if (json_is_array (a)) {
        if (json_array_size (a) != json_array_size (b))
            return false;
        for (size_t i = 0; i < json_array_size (a); i++)
            if (!s_same_but_ws (json_array_get (a, i), json_array_get (b, i)))
                return false;
        return true;
    }
    return json_equal ((json_t *)a, (json_t *)b);
}

//  ---------------------------------------------------------------------------------------------
//  Attribution: which strategy lost something. A check says whether an outcome still has it.

typedef struct {
    int what; // 0 needed string, 1 required tool, 2 chat unchanged
    const char *text;
    size_t len;
    const json_t *original;
} s_probe_t;

static bool s_probe_ok (const s_eval_t *eval, const s_probe_t *probe, const s_outcome_t *out)
{
    if (!out->request)
        return true; // fail-open: the original went on
    if (probe->what == 0)
        return s_retained (eval, out, probe->text, probe->len);
    if (probe->what == 1)
        return s_has_tool (out->request, probe->text);
    json_int_t before = json_integer_value (json_object_get (out->reply, "tokensBefore"));
    json_int_t after = json_integer_value (json_object_get (out->reply, "tokensAfter"));
    return after <= before && s_same_but_ws (probe->original, out->request);
}

//  The kind of the first pipeline prefix (cut after each step that changed the request) whose
//  output fails the probe; "none" when every prefix passes (an interaction) or no step changed.
static void s_blame (s_eval_t *eval, const s_req_t *req, const json_t *applied,
                     const s_probe_t *probe, char *kind_out, size_t size)
{
    snprintf (kind_out, size, "unattributed");
    char allowed[512] = "";
    size_t i;
    json_t *step;
    json_array_foreach ((json_t *)applied, i, step)
    {
        const char *kind = json_string_value (json_object_get (step, "kind"));
        if (!kind)
            continue;
        size_t used = strlen (allowed);
        snprintf (allowed + used, sizeof allowed - used, "%s%s", used ? "," : "", kind);
        if (!json_is_true (json_object_get (step, "changed")))
            continue;
        ar_optimizer_t *optimizer = s_optimizer (eval, allowed);
        if (!optimizer)
            return;
        s_outcome_t out;
        s_run (eval, optimizer, req, &out);
        bool ok = s_probe_ok (eval, probe, &out);
        s_outcome_free (&out);
        if (!ok) {
            snprintf (kind_out, size, "%s", kind);
            return;
        }
    }
}

//  ---------------------------------------------------------------------------------------------
//  Tallies.

typedef struct {
    size_t requests, changed, errors;
    int64_t before, after;
    s_samples_t wall, steps_ms;
    size_t facts, kept, absent;         // strict needed strings
    size_t h_facts, h_kept, h_absent;   // heuristic ones
    size_t via_stash;                   // kept only through a stashed original
    int64_t tool_before, tool_after;    // tool-definition tokens
    size_t required, required_kept;     // required_tools entries
    size_t chat_more_tokens, chat_diff; // chat requests that grew / differ beyond whitespace
    s_samples_t wall_100k;              // requests of 50..150 KB (timing target)
} s_tally_t;

typedef struct {
    char kind[48];
    size_t runs[G_COUNT], changed[G_COUNT], unavailable[G_COUNT], failed[G_COUNT], overran[G_COUNT];
    int64_t saved[G_COUNT];
    s_samples_t ms[G_COUNT];
} s_kind_tally_t;

typedef struct {
    s_tally_t group[G_COUNT];
    s_kind_tally_t kinds[S_MAX_KINDS];
    size_t kind_count;
    json_t *failures; // [{id, kind, what, text, strategy}]
    json_t *rows;     // per request
} s_totals_t;

static s_kind_tally_t *s_kind (s_totals_t *t, const char *kind)
{
    for (size_t i = 0; i < t->kind_count; i++)
        if (strcmp (t->kinds[i].kind, kind) == 0)
            return &t->kinds[i];
    if (t->kind_count == S_MAX_KINDS)
        return NULL;
    s_kind_tally_t *k = &t->kinds[t->kind_count++];
    memset (k, 0, sizeof *k);
    snprintf (k->kind, sizeof k->kind, "%s", kind);
    return k;
}

static void s_prefix (const char *text, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < size && i < 48; i++) {
        char c = text[i];
        out[n++] = (c == '\n' || c == '\t' || c == '\r') ? ' ' : c;
    }
    if (len > 48 && n + 4 < size) {
        memcpy (out + n, "...", 3);
        n += 3;
    }
    out[n] = 0;
}

static void s_fail (s_totals_t *t, const s_req_t *req, const char *what, const char *text,
                    size_t len, const char *strategy)
{
    char prefix[64];
    s_prefix (text, len, prefix, sizeof prefix);
    json_array_append_new (t->failures,
                           json_pack ("{s:s, s:s, s:s, s:s, s:s}", "id", req->id, "kind",
                                      req->group >= 0 ? s_group_names[req->group] : "other", "what",
                                      what, "text", prefix, "strategy", strategy));
}

//  Evaluate one request: run it, tally it, blame what it lost.
static void s_evaluate (s_eval_t *eval, s_totals_t *t, const s_req_t *req)
{
    int groups[3], gn = 0;
    if (req->group >= 0)
        groups[gn++] = req->group;
    groups[gn++] = G_ALL;
    if (req->tools_count >= 10)
        groups[gn++] = G_TOOLS10;

    json_t *original = json_loadb (req->body, req->body_len, 0, NULL);
    ar_buf_t original_text = {0};
    s_strings (original, &original_text, 0);

    ar_optimizer_t *optimizer = s_optimizer (eval, NULL);
    s_outcome_t out;
    bool ok = optimizer && s_run (eval, optimizer, req, &out) == 0;
    if (!optimizer)
        memset (&out, 0, sizeof out);
    json_t *reply = out.reply;
    json_int_t before = json_integer_value (json_object_get (reply, "tokensBefore"));
    json_int_t after = ok ? json_integer_value (json_object_get (reply, "tokensAfter")) : before;
    bool changed = json_is_true (json_object_get (reply, "changed"));
    json_t *applied = json_object_get (reply, "applied");
    double steps_ms = 0;
    size_t i;
    json_t *step;
    json_array_foreach (applied, i, step) steps_ms +=
        json_number_value (json_object_get (step, "ms"));

    if (eval->dump && ok) {
        json_t *line = json_pack ("{s:s, s:s, s:O, s:O?}", "id", req->id, "kind",
                                  req->group >= 0 ? s_group_names[req->group] : "other", "request",
                                  out.request, "applied", applied);
        if (line)
            json_dumpf (line, eval->dump, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc ('\n', eval->dump);
        json_decref (line);
    }
    size_t tb = s_tool_tokens (eval->tokenizer, json_object_get (original, "tools"));
    size_t ta = ok ? s_tool_tokens (eval->tokenizer, json_object_get (out.request, "tools")) : tb;

    //  Needed strings and required tools.
    size_t facts = 0, kept = 0, absent = 0, via_stash = 0, required = 0, required_kept = 0;
    json_t *str;
    json_array_foreach (req->needed, i, str)
    {
        const char *s = json_string_value (str);
        size_t len = json_string_length (str);
        if (!s || !len)
            continue;
        if (!s_has (&original_text, s, len)) {
            absent++;
            continue;
        }
        facts++;
        bool in_text = !ok || s_has (&out.text, s, len);
        bool in_stash = ok && eval->retrieve && s_has (&out.stashed, s, len);
        if (in_text || in_stash) {
            kept++;
            via_stash += !in_text;
            continue;
        }
        char blamed[64];
        s_probe_t probe = {0, s, len, original};
        s_blame (eval, req, applied, &probe, blamed, sizeof blamed);
        s_fail (t, req, req->heuristic ? "needed_string(heuristic)" : "needed_string", s, len,
                blamed);
    }
    json_array_foreach (req->required, i, str)
    {
        const char *name = json_string_value (str);
        if (!name)
            continue;
        required++;
        if (!ok || s_has_tool (out.request, name)) {
            required_kept++;
            continue;
        }
        char blamed[64];
        s_probe_t probe = {1, name, strlen (name), original};
        s_blame (eval, req, applied, &probe, blamed, sizeof blamed);
        s_fail (t, req, "required_tool", name, strlen (name), blamed);
    }
    bool chat_more = false, chat_diff = false;
    if (req->group == G_CHAT && ok) {
        chat_more = after > before;
        chat_diff = !s_same_but_ws (original, out.request);
        if (chat_more || chat_diff) {
            char blamed[64];
            s_probe_t probe = {2, NULL, 0, original};
            s_blame (eval, req, applied, &probe, blamed, sizeof blamed);
            s_fail (t, req, chat_more ? "chat_more_tokens" : "chat_changed", "", 0, blamed);
        }
    }
    if (!ok) {
        char status[32];
        snprintf (status, sizeof status, "status %d", out.status);
        s_fail (t, req, "optimizer_error", status, strlen (status), "-");
    }

    for (int g = 0; g < gn; g++) {
        s_tally_t *tally = &t->group[groups[g]];
        tally->requests++;
        tally->changed += changed;
        tally->errors += !ok;
        tally->before += before;
        tally->after += after;
        s_sample (&tally->wall, out.wall_ms);
        s_sample (&tally->steps_ms, steps_ms);
        if (req->heuristic) {
            tally->h_facts += facts;
            tally->h_kept += kept;
            tally->h_absent += absent;
        } else {
            tally->facts += facts;
            tally->kept += kept;
            tally->absent += absent;
        }
        tally->via_stash += via_stash;
        tally->tool_before += (int64_t)tb;
        tally->tool_after += (int64_t)ta;
        tally->required += required;
        tally->required_kept += required_kept;
        tally->chat_more_tokens += chat_more;
        tally->chat_diff += chat_diff;
        if (req->body_len >= 50 * 1024 && req->body_len <= 150 * 1024)
            s_sample (&tally->wall_100k, out.wall_ms);
    }
    //  Per strategy.
    json_array_foreach (applied, i, step)
    {
        s_kind_tally_t *k = s_kind (t, json_string_value (json_object_get (step, "kind")));
        if (!k)
            continue;
        json_int_t sb = json_integer_value (json_object_get (step, "tokensBefore"));
        json_int_t sa = json_integer_value (json_object_get (step, "tokensAfter"));
        bool step_changed = json_is_true (json_object_get (step, "changed"));
        for (int g = 0; g < gn; g++) {
            k->runs[groups[g]]++;
            k->changed[groups[g]] += step_changed;
            k->saved[groups[g]] += step_changed ? sb - sa : 0;
            s_sample (&k->ms[groups[g]], json_number_value (json_object_get (step, "ms")));
        }
    }
    json_array_foreach (json_object_get (reply, "skipped"), i, step)
    {
        s_kind_tally_t *k = s_kind (t, json_string_value (json_object_get (step, "kind")));
        const char *reason = json_string_value (json_object_get (step, "reason"));
        if (!k || !reason)
            continue;
        for (int g = 0; g < gn; g++) {
            if (strcmp (reason, "unavailable") == 0)
                k->unavailable[groups[g]]++;
            else if (strcmp (reason, "overran") == 0)
                k->overran[groups[g]]++;
            else
                k->failed[groups[g]]++;
        }
    }
    json_array_append_new (
        t->rows,
        json_pack ("{s:s, s:s, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:b}", "id",
                   req->id, "kind", req->group >= 0 ? s_group_names[req->group] : "other", "bytes",
                   (json_int_t)req->body_len, "tokensBefore", before, "tokensAfter", after,
                   "wallMs", out.wall_ms, "stepsMs", steps_ms, "facts", (json_int_t)facts, "kept",
                   (json_int_t)kept, "toolTokensBefore", (json_int_t)tb, "toolTokensAfter",
                   (json_int_t)ta, "stashReads", (json_int_t)out.retrieved, "heuristic",
                   req->heuristic));
    s_outcome_free (&out);
    free (original_text.data);
    json_decref (original);
}

//  ---------------------------------------------------------------------------------------------
//  Output.

static double s_ratio (double num, double den)
{
    return den > 0 ? num / den : NAN;
}

static const char *s_fmt (char *out, size_t size, double value, const char *format)
{
    if (isnan (value))
        snprintf (out, size, "-");
    else
        snprintf (out, size, format, value);
    return out;
}

typedef struct {
    char name[48], measured[32], want[48];
    const char *verdict; // ok, MISS, skip
    char note[160];
    bool unasserted; // named by --not-asserted
} s_target_t;

static void s_targets (s_totals_t *t, s_target_t *targets, size_t *count)
{
    size_t n = 0;
    s_tally_t *c = &t->group[G_CODING];
    s_tally_t *x = &t->group[G_TOOLS10];
    s_tally_t *h = &t->group[G_CHAT];
    s_tally_t *a = &t->group[G_ALL];
    double saved = 100.0 * (1.0 - s_ratio ((double)c->after, (double)c->before));
    double kept = 100.0 * s_ratio ((double)c->kept, (double)c->facts);
    double tool_saved = 100.0 * (1.0 - s_ratio ((double)x->tool_after, (double)x->tool_before));
    double tool_kept = 100.0 * s_ratio ((double)x->required_kept, (double)x->required);
    double p99 = s_pct (&a->wall_100k, 99);

    targets[n] = (s_target_t){"coding_agent_tokens_saved_pct", "", ">= 50", "", "", false};
    snprintf (targets[n].measured, 32, "%.1f", saved);
    targets[n].verdict = c->requests ? (saved >= 50 ? "ok" : "MISS") : "skip";
    n++;
    targets[n] = (s_target_t){"coding_agent_fact_retention_pct", "", ">= 98", "", "", false};
    snprintf (targets[n].measured, 32, "%.1f", kept);
    targets[n].verdict = c->facts ? (kept >= 98 ? "ok" : "MISS") : "skip";
    n++;
    targets[n] = (s_target_t){"tools10_definition_tokens_saved_pct", "", ">= 60", "", "", false};
    snprintf (targets[n].measured, 32, "%.1f", tool_saved);
    targets[n].verdict = x->requests ? (tool_saved >= 60 ? "ok" : "MISS") : "skip";
    n++;
    targets[n] = (s_target_t){"tools10_next_tool_kept_pct", "", ">= 99", "", "", false};
    snprintf (targets[n].measured, 32, "%.1f", tool_kept);
    targets[n].verdict = x->required ? (tool_kept >= 99 ? "ok" : "MISS") : "skip";
    n++;
    targets[n] = (s_target_t){"chat_requests_with_more_tokens", "", "== 0", "", "", false};
    snprintf (targets[n].measured, 32, "%zu", h->chat_more_tokens);
    targets[n].verdict = h->requests ? (h->chat_more_tokens == 0 ? "ok" : "MISS") : "skip";
    n++;
    targets[n] = (s_target_t){"chat_requests_changed_beyond_whitespace", "", "== 0", "", "", false};
    snprintf (targets[n].measured, 32, "%zu", h->chat_diff);
    targets[n].verdict = h->requests ? (h->chat_diff == 0 ? "ok" : "MISS") : "skip";
    n++;
    targets[n] = (s_target_t){"pipeline_50_150kb_p99_ms", "", "< 10", "", "", false};
    s_fmt (targets[n].measured, 32, p99, "%.2f");
    if (!a->wall_100k.n) {
        targets[n].verdict = "skip";
        snprintf (targets[n].note, 160, "no request of 50..150 KB in this run");
    } else if (S_SANITIZED) {
        targets[n].verdict = "skip";
        snprintf (targets[n].note, 160, "sanitizer build: times are not the product's");
    } else {
        targets[n].verdict = p99 < 10 ? "ok" : "MISS";
        snprintf (targets[n].note, 160, "ar_optimizer_answer wall, first run, n=%zu",
                  a->wall_100k.n);
    }
    n++;
    *count = n;
}

static void s_print_tables (s_eval_t *eval, s_totals_t *t, const char *pipeline)
{
    char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32], b8[32];
    //  The 1-minute load average: other work on the core shows in the wall times.
    char load[32] = "na";
    FILE *file = fopen ("/proc/loadavg", "r");
    if (file) {
        if (fscanf (file, "%31s", load) != 1)
            strcpy (load, "na");
        fclose (file);
    }
    printf ("ar_eval pipeline=%s retrieve_tool=%s sanitized=%d loadavg_1m=%s\n\n", pipeline,
            eval->retrieve ? "on" : "off", S_SANITIZED, load);
    printf ("%-13s %4s %9s %9s %6s %7s %7s %7s %7s %8s %7s %7s %9s %9s %6s %7s %s\n", "kind",
            "reqs", "tok_bef", "tok_aft", "saved%", "changed", "wall50", "wall99", "pipe99",
            "facts", "kept%", "heur%", "tooltok_b", "tooltok_a", "tool%", "reqtool%", "errors");
    for (int g = 0; g < G_COUNT; g++) {
        s_tally_t *x = &t->group[g];
        if (!x->requests && g != G_ALL)
            continue;
        char facts[32];
        snprintf (facts, sizeof facts, "%zu/%zu", x->kept, x->facts);
        printf (
            "%-13s %4zu %9lld %9lld %6s %7zu %7s %7s %7s %8s %7s %7s %9lld %9lld %6s %7s %zu\n",
            s_group_names[g], x->requests, (long long)x->before, (long long)x->after,
            s_fmt (b1, 32, 100.0 * (1.0 - s_ratio ((double)x->after, (double)x->before)), "%.1f"),
            x->changed, s_fmt (b2, 32, s_pct (&x->wall, 50), "%.2f"),
            s_fmt (b3, 32, s_pct (&x->wall, 99), "%.2f"),
            s_fmt (b4, 32, s_pct (&x->steps_ms, 99), "%.2f"), facts,
            s_fmt (b5, 32, 100.0 * s_ratio ((double)x->kept, (double)x->facts), "%.1f"),
            s_fmt (b6, 32, 100.0 * s_ratio ((double)x->h_kept, (double)x->h_facts), "%.1f"),
            (long long)x->tool_before, (long long)x->tool_after,
            s_fmt (b7, 32, 100.0 * (1.0 - s_ratio ((double)x->tool_after, (double)x->tool_before)),
                   "%.1f"),
            s_fmt (b8, 32, 100.0 * s_ratio ((double)x->required_kept, (double)x->required), "%.1f"),
            x->errors);
    }
    s_tally_t *all = &t->group[G_ALL];
    printf ("\nfacts: strict kept %zu/%zu (%zu kept only via a stashed original), heuristic "
            "kept %zu/%zu; not in the original request (not counted): %zu strict, %zu "
            "heuristic\n",
            all->kept, all->facts, all->via_stash, all->h_kept, all->h_facts, all->absent,
            all->h_absent);
    printf ("chat: %zu with more tokens, %zu changed beyond whitespace (of %zu)\n\n",
            t->group[G_CHAT].chat_more_tokens, t->group[G_CHAT].chat_diff,
            t->group[G_CHAT].requests);

    printf ("%-20s %-13s %4s %7s %9s %7s %7s %7s %s\n", "strategy", "kind", "runs", "changed",
            "saved_tok", "saved%", "ms_p50", "ms_p99", "skipped(unavail/failed/overran)");
    for (size_t k = 0; k < t->kind_count; k++) {
        s_kind_tally_t *x = &t->kinds[k];
        for (int g = 0; g < G_COUNT; g++) {
            if (!t->group[g].requests || g == G_TOOLS10)
                continue;
            printf ("%-20s %-13s %4zu %7zu %9lld %7s %7s %7s %zu/%zu/%zu\n", x->kind,
                    s_group_names[g], x->runs[g], x->changed[g], (long long)x->saved[g],
                    s_fmt (b1, 32,
                           100.0 * s_ratio ((double)x->saved[g], (double)t->group[g].before),
                           "%.1f"),
                    s_fmt (b2, 32, s_pct (&x->ms[g], 50), "%.3f"),
                    s_fmt (b3, 32, s_pct (&x->ms[g], 99), "%.3f"), x->unavailable[g], x->failed[g],
                    x->overran[g]);
        }
    }
    size_t count = json_array_size (t->failures);
    printf ("\nfailures: %zu (strategy = the first pipeline prefix that loses it)\n", count);
    size_t i;
    json_t *f;
    json_array_foreach (t->failures, i, f)
        printf ("  %-8s %-13s %-25s %-20s \"%s\"\n", json_string_value (json_object_get (f, "id")),
                json_string_value (json_object_get (f, "kind")),
                json_string_value (json_object_get (f, "what")),
                json_string_value (json_object_get (f, "strategy")),
                json_string_value (json_object_get (f, "text")));
    printf ("\n");
}

static json_t *s_json_num (double value)
{
    return isnan (value) ? json_null () : json_real (value);
}

static json_t *s_totals_json (s_totals_t *t)
{
    json_t *groups = json_object ();
    for (int g = 0; g < G_COUNT; g++) {
        s_tally_t *x = &t->group[g];
        json_object_set_new (
            groups, s_group_names[g],
            json_pack ("{s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, "
                       "s:I, s:I, s:I, s:I, s:I, s:I}",
                       "requests", (json_int_t)x->requests, "changed", (json_int_t)x->changed,
                       "tokensBefore", (json_int_t)x->before, "tokensAfter", (json_int_t)x->after,
                       "wallP50Ms", s_json_num (s_pct (&x->wall, 50)), "wallP99Ms",
                       s_json_num (s_pct (&x->wall, 99)), "stepsP99Ms",
                       s_json_num (s_pct (&x->steps_ms, 99)), "wall50to150KbP99Ms",
                       s_json_num (s_pct (&x->wall_100k, 99)), "facts", (json_int_t)x->facts,
                       "kept", (json_int_t)x->kept, "keptViaStash", (json_int_t)x->via_stash,
                       "heuristicFacts", (json_int_t)x->h_facts, "heuristicKept",
                       (json_int_t)x->h_kept, "toolTokensBefore", (json_int_t)x->tool_before,
                       "toolTokensAfter", (json_int_t)x->tool_after, "requiredTools",
                       (json_int_t)x->required, "requiredToolsKept", (json_int_t)x->required_kept,
                       "chatMoreTokens", (json_int_t)x->chat_more_tokens, "chatChanged",
                       (json_int_t)x->chat_diff, "errors", (json_int_t)x->errors));
    }
    json_t *kinds = json_object ();
    for (size_t k = 0; k < t->kind_count; k++) {
        s_kind_tally_t *x = &t->kinds[k];
        json_t *per = json_object ();
        for (int g = 0; g < G_COUNT; g++)
            json_object_set_new (
                per, s_group_names[g],
                json_pack ("{s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:I}", "runs",
                           (json_int_t)x->runs[g], "changed", (json_int_t)x->changed[g],
                           "tokensSaved", (json_int_t)x->saved[g], "msP50",
                           s_json_num (s_pct (&x->ms[g], 50)), "msP99",
                           s_json_num (s_pct (&x->ms[g], 99)), "unavailable",
                           (json_int_t)x->unavailable[g], "failed", (json_int_t)x->failed[g],
                           "overran", (json_int_t)x->overran[g]));
        json_object_set_new (kinds, x->kind, per);
    }
    return json_pack ("{s:o, s:o}", "groups", groups, "strategies", kinds);
}

//  ---------------------------------------------------------------------------------------------

int main (int argc, char *argv[])
{
    const char *corpora[32];
    size_t corpus_count = 0;
    const char *requests_path = NULL, *meta_path = NULL, *config_path = NULL;
    bool use_default = true, as_json = false, do_assert = false;
    const char *not_asserted = "";
    const char *dump_path = NULL;
    int retrieve = -1; // -1: as the config says
    s_select_t select = {0};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (arg, "--corpus") == 0 && next && corpus_count < 32)
            corpora[corpus_count++] = argv[++i];
        else if (strcmp (arg, "--requests") == 0 && next)
            requests_path = argv[++i];
        else if (strcmp (arg, "--meta") == 0 && next)
            meta_path = argv[++i];
        else if (strcmp (arg, "--no-default-corpus") == 0)
            use_default = false;
        else if (strcmp (arg, "--config") == 0 && next)
            config_path = argv[++i];
        else if (strcmp (arg, "--retrieve-tool") == 0 && next) {
            retrieve = strcmp (next, "on") == 0;
            if (!retrieve && strcmp (next, "off") != 0)
                goto usage;
            i++;
        } else if (strcmp (arg, "--slice") == 0 && next) {
            select.slice = (size_t)strtoul (argv[++i], NULL, 10);
        } else if (strcmp (arg, "--only-subkind") == 0 && next && select.only_n < 8)
            select.only[select.only_n++] = argv[++i];
        else if (strcmp (arg, "--skip-subkind") == 0 && next && select.skip_n < 8)
            select.skip[select.skip_n++] = argv[++i];
        else if (strcmp (arg, "--json") == 0)
            as_json = true;
        else if (strcmp (arg, "--assert") == 0)
            do_assert = true;
        else if (strcmp (arg, "--not-asserted") == 0 && next)
            not_asserted = argv[++i];
        else if (strcmp (arg, "--dump") == 0 && next)
            dump_path = argv[++i];
        else
            goto usage;
    }
    if ((requests_path != NULL) != (meta_path != NULL))
        goto usage;
    if (requests_path)
        use_default = false;

    //  One core: the CPU this process starts on, as ar_bench_pipeline.
    int cpu = sched_getcpu ();
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO (&set);
        CPU_SET (cpu, &set);
        sched_setaffinity (0, sizeof set, &set);
    }
    //  As the optimizer process does at start (actors/optimizer/main.c): the timings are of
    //  requests, not of the process's one-time grammar set-up.
    ar_syntax_warm ();

    s_reqs_t reqs = {0};
    char path_r[1024], path_m[1024];
    if (use_default) {
        snprintf (path_r, sizeof path_r, "%s/../shared/corpus/requests.jsonl", AR_EVAL_REPO);
        snprintf (path_m, sizeof path_m, "%s/../shared/corpus/meta.jsonl", AR_EVAL_REPO);
        if (s_load_corpus (&reqs, path_r, path_m, &select) != 0)
            return 2;
    }
    if (requests_path && s_load_corpus (&reqs, requests_path, meta_path, &select) != 0)
        return 2;
    for (size_t c = 0; c < corpus_count; c++) {
        snprintf (path_r, sizeof path_r, "%s/requests.jsonl", corpora[c]);
        snprintf (path_m, sizeof path_m, "%s/meta.jsonl", corpora[c]);
        if (s_load_corpus (&reqs, path_r, path_m, &select) != 0)
            return 2;
    }
    if (!reqs.n) {
        fprintf (stderr, "ar_eval: no requests\n");
        return 2;
    }

    //  The config: the file, or the baked-in default, as a JSON document to derive variants.
    char error[512] = "";
    ar_optimizer_config_t *config =
        config_path ? ar_optimizer_config_load_file (config_path, error, sizeof error)
                    : ar_optimizer_config_default ();
    if (!config) {
        fprintf (stderr, "ar_eval: config %s: %s\n", config_path ? config_path : "default", error);
        return 2;
    }
    char *config_text = ar_optimizer_config_to_json (config);
    if (retrieve < 0) {
        int max_calls = 0;
        retrieve = ar_optimizer_config_retrieve_tool (config, &max_calls);
    }
    s_eval_t eval = {.config_path = config_path, .retrieve = retrieve == 1};
    eval.config_doc = config_text ? json_loads (config_text, 0, NULL) : NULL;
    free (config_text);
    eval.tokenizer = ar_tokenizer_new ();
    snprintf (eval.dir, sizeof eval.dir, "/tmp/ar-eval.XXXXXX");
    if (!eval.config_doc || !eval.tokenizer || !mkdtemp (eval.dir)) {
        fprintf (stderr, "ar_eval: cannot set up (config, tokenizer or temp dir)\n");
        return 2;
    }
    if (dump_path && !(eval.dump = fopen (dump_path, "w"))) {
        fprintf (stderr, "ar_eval: cannot write %s\n", dump_path);
        return 2;
    }
    //  The stash key: a generated one in the run's own directory, whatever the shell has.
    unsetenv ("ANYRAY_CONTENT_KEY");
    unsetenv ("ANYRAY_FAULT_STRATEGY");

    //  The pipeline as resolved for the chat endpoint, for the header.
    char pipeline_text[600] = "";
    ar_request_facts_t facts = {.endpoint = "/v1/chat/completions"};
    ar_pipeline_t *pipeline = ar_optimizer_config_resolve (config, &facts);
    for (size_t i = 0; pipeline && i < ar_pipeline_size (pipeline); i++) {
        const ar_strategy_info_t *info = ar_pipeline_strategy (pipeline, i);
        size_t used = strlen (pipeline_text);
        snprintf (pipeline_text + used, sizeof pipeline_text - used, "%s%s%s", used ? "," : "",
                  ar_pipeline_kind (pipeline, i), info && info->available ? "" : "(unavailable)");
    }
    ar_pipeline_destroy (&pipeline);
    ar_optimizer_config_destroy (&config);

    s_totals_t totals = {.failures = json_array (), .rows = json_array ()};
    int rc = 0;
    ar_optimizer_t *optimizer = s_optimizer (&eval, NULL);
    if (!optimizer)
        rc = 2;
    //  One untimed request per shape first: a running optimizer has its statements prepared.
    for (int shape = 0; rc == 0 && shape < 2; shape++) {
        s_req_t warm = {.anthropic = shape == 1};
        warm.body = "{\"model\":\"m\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\","
                    "\"content\":\"hello there\"}]}";
        warm.body_len = strlen (warm.body);
        s_outcome_t out;
        s_run (&eval, optimizer, &warm, &out);
        s_outcome_free (&out);
    }
    for (size_t r = 0; rc == 0 && r < reqs.n; r++)
        s_evaluate (&eval, &totals, &reqs.v[r]);

    s_target_t targets[16];
    size_t target_count = 0;
    s_targets (&totals, targets, &target_count);
    bool miss = false;
    for (size_t i = 0; i < target_count; i++) {
        //  Whole names only: ",name," inside ",list,".
        size_t len = strlen (targets[i].name);
        const char *at = not_asserted;
        bool named = false;
        while (!named && (at = strstr (at, targets[i].name)) != NULL) {
            named = (at == not_asserted || at[-1] == ',') && (at[len] == ',' || at[len] == 0);
            at += len;
        }
        if (named)
            targets[i].unasserted = true;
        else
            miss |= strcmp (targets[i].verdict, "MISS") == 0;
    }

    if (rc == 0 && as_json) {
        json_t *doc = s_totals_json (&totals);
        json_t *list = json_array ();
        for (size_t i = 0; i < target_count; i++)
            json_array_append_new (
                list, json_pack ("{s:s, s:s, s:s, s:s, s:s}", "name", targets[i].name, "measured",
                                 targets[i].measured, "want", targets[i].want, "verdict",
                                 targets[i].verdict, "note", targets[i].note));
        json_object_set_new (doc, "pipeline", json_string (pipeline_text));
        json_object_set_new (doc, "retrieveTool", json_boolean (retrieve == 1));
        json_object_set_new (doc, "sanitized", json_boolean (S_SANITIZED));
        json_object_set_new (doc, "targets", list);
        json_object_set (doc, "failures", totals.failures);
        json_object_set (doc, "requests", totals.rows);
        json_dumpf (doc, stdout, JSON_INDENT (1) | JSON_REAL_PRECISION (6));
        printf ("\n");
        json_decref (doc);
    } else if (rc == 0) {
        s_print_tables (&eval, &totals, pipeline_text);
        for (size_t i = 0; i < target_count; i++)
            printf ("target %s measured=%s want %s %s%s%s%s\n", targets[i].name,
                    targets[i].measured, targets[i].want, targets[i].verdict,
                    do_assert && targets[i].unasserted ? " (not asserted)" : "",
                    *targets[i].note ? "  # " : "", targets[i].note);
    }

    for (size_t i = 0; i < eval.variant_count; i++)
        ar_optimizer_destroy (&eval.variants[i].optimizer);
    nftw (eval.dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (eval.dump)
        fclose (eval.dump);
    ar_tokenizer_destroy (&eval.tokenizer);
    json_decref (eval.config_doc);
    json_decref (totals.failures);
    json_decref (totals.rows);
    for (int g = 0; g < G_COUNT; g++) {
        free (totals.group[g].wall.v);
        free (totals.group[g].steps_ms.v);
        free (totals.group[g].wall_100k.v);
    }
    for (size_t k = 0; k < totals.kind_count; k++)
        for (int g = 0; g < G_COUNT; g++)
            free (totals.kinds[k].ms[g].v);
    for (size_t r = 0; r < reqs.n; r++) {
        free (reqs.v[r].body);
        json_decref (reqs.v[r].meta);
    }
    free (reqs.v);
    if (rc != 0)
        return rc;
    return do_assert && miss ? 1 : 0;

usage:
    fprintf (stderr, "usage: ar_eval [--corpus DIR]... [--requests FILE --meta FILE] "
                     "[--no-default-corpus] [--config FILE] [--retrieve-tool on|off] [--slice N] "
                     "[--only-subkind S] [--skip-subkind S] "
                     "[--json] [--assert] [--not-asserted T,T...] [--dump FILE]\n");
    return 2;
}
