/*  ar_routing_schema: the routing config's JSON Schema against its parser (see the header). */
#include "ar_routing_schema.h"
#include "ar_routing_config.h"
#include <assert.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Sample documents are written with ' for " (read better in C); this swaps them back.
static char *s_doc (const char *text)
{
    static char out[8192];
    size_t len = strlen (text);
    assert (len < sizeof out);
    for (size_t i = 0; i <= len; i++)
        out[i] = text[i] == '\'' ? '"' : text[i];
    return out;
}

#define S_ONE(target) "{'strategy':{'mode':'single'},'targets':[" target "]}"

//  A JSON Schema (2020-12) checker for exactly the keywords routing.config.schema.json uses
//  (an unknown keyword fails the test rather than being ignored), so sample documents can be
//  held to the same verdict by the parser and the schema.
static const char *const s_keywords[] = {"$schema",
                                         "$id",
                                         "$defs",
                                         "$ref",
                                         "title",
                                         "description",
                                         "type",
                                         "enum",
                                         "minimum",
                                         "maximum",
                                         "exclusiveMinimum",
                                         "minLength",
                                         "maxLength",
                                         "pattern",
                                         "properties",
                                         "patternProperties",
                                         "additionalProperties",
                                         "required",
                                         "minProperties",
                                         "items",
                                         "minItems",
                                         "maxItems",
                                         "uniqueItems",
                                         "oneOf",
                                         "anyOf",
                                         NULL};

//  An ECMA-262 pattern as POSIX ERE: the schema's patterns use only the common subset.
static bool s_regex (const char *pattern, const char *text)
{
    regex_t re;
    int rc = regcomp (&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0)
        fprintf (stderr, "schema pattern does not compile: %s\n", pattern);
    assert (rc == 0);
    bool match = regexec (&re, text, 0, NULL, 0) == 0;
    regfree (&re);
    return match;
}

static size_t s_code_points (const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static bool s_schema_type (const char *type, const json_t *v)
{
    if (strcmp (type, "object") == 0)
        return json_is_object (v);
    if (strcmp (type, "array") == 0)
        return json_is_array (v);
    if (strcmp (type, "string") == 0)
        return json_is_string (v);
    if (strcmp (type, "boolean") == 0)
        return json_is_boolean (v);
    if (strcmp (type, "null") == 0)
        return json_is_null (v);
    if (strcmp (type, "number") == 0)
        return json_is_number (v);
    if (strcmp (type, "integer") == 0)
        return json_is_integer (v) ||
               (json_is_real (v) && floor (json_real_value (v)) == json_real_value (v));
    assert (!"unknown schema type");
    return false;
}

static bool s_conforms (const json_t *root, const json_t *schema, const json_t *v)
{
    const char *kw;
    json_t *arg;
    json_object_foreach ((json_t *)schema, kw, arg)
    {
        bool known = false;
        for (size_t i = 0; s_keywords[i] && !known; i++)
            known = strcmp (s_keywords[i], kw) == 0;
        if (!known)
            fprintf (stderr, "schema keyword %s is not checked by the test\n", kw);
        assert (known);
    }
    json_t *x;
    if ((x = json_object_get (schema, "$ref"))) {
        const char *ref = json_string_value (x);
        assert (ref && strncmp (ref, "#/$defs/", 8) == 0);
        json_t *def = json_object_get (json_object_get (root, "$defs"), ref + 8);
        assert (def);
        if (!s_conforms (root, def, v))
            return false;
    }
    if ((x = json_object_get (schema, "type"))) {
        bool any = false;
        if (json_is_string (x))
            any = s_schema_type (json_string_value (x), v);
        size_t i;
        json_t *t;
        json_array_foreach (x, i, t)
        {
            any = any || s_schema_type (json_string_value (t), v);
        }
        if (!any)
            return false;
    }
    if ((x = json_object_get (schema, "enum"))) {
        bool any = false;
        size_t i;
        json_t *e;
        json_array_foreach (x, i, e)
        {
            any = any || json_equal (e, (json_t *)v);
        }
        if (!any)
            return false;
    }
    if (json_is_number (v)) {
        double d = json_number_value (v);
        if ((x = json_object_get (schema, "minimum")) && d < json_number_value (x))
            return false;
        if ((x = json_object_get (schema, "maximum")) && d > json_number_value (x))
            return false;
        if ((x = json_object_get (schema, "exclusiveMinimum")) && d <= json_number_value (x))
            return false;
    }
    if (json_is_string (v)) {
        size_t n = s_code_points (json_string_value (v));
        if ((x = json_object_get (schema, "minLength")) && n < (size_t)json_integer_value (x))
            return false;
        if ((x = json_object_get (schema, "maxLength")) && n > (size_t)json_integer_value (x))
            return false;
        if ((x = json_object_get (schema, "pattern")) &&
            !s_regex (json_string_value (x), json_string_value (v)))
            return false;
    }
    if (json_is_object (v)) {
        size_t i;
        json_t *name;
        json_array_foreach (json_object_get (schema, "required"), i, name)
        {
            if (!json_object_get (v, json_string_value (name)))
                return false;
        }
        if ((x = json_object_get (schema, "minProperties")) &&
            json_object_size (v) < (size_t)json_integer_value (x))
            return false;
        json_t *properties = json_object_get (schema, "properties");
        json_t *patterns = json_object_get (schema, "patternProperties");
        json_t *additional = json_object_get (schema, "additionalProperties");
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *)v, key, member)
        {
            bool matched = false;
            json_t *sub = json_object_get (properties, key);
            if (sub) {
                matched = true;
                if (!s_conforms (root, sub, member))
                    return false;
            }
            const char *pattern;
            json_object_foreach (patterns, pattern, sub)
            {
                if (!s_regex (pattern, key))
                    continue;
                matched = true;
                if (!s_conforms (root, sub, member))
                    return false;
            }
            if (!matched && json_is_false (additional))
                return false;
            if (!matched && json_is_object (additional) && !s_conforms (root, additional, member))
                return false;
        }
    }
    if (json_is_array (v)) {
        size_t n = json_array_size (v);
        if ((x = json_object_get (schema, "minItems")) && n < (size_t)json_integer_value (x))
            return false;
        if ((x = json_object_get (schema, "maxItems")) && n > (size_t)json_integer_value (x))
            return false;
        if (json_is_true (json_object_get (schema, "uniqueItems")))
            for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                    if (json_equal (json_array_get (v, i), json_array_get (v, j)))
                        return false;
        if ((x = json_object_get (schema, "items")))
            for (size_t i = 0; i < n; i++)
                if (!s_conforms (root, x, json_array_get (v, i)))
                    return false;
    }
    if ((x = json_object_get (schema, "oneOf"))) {
        size_t count = 0, i;
        json_t *sub;
        json_array_foreach (x, i, sub)
        {
            count += s_conforms (root, sub, v);
        }
        if (count != 1)
            return false;
    }
    if ((x = json_object_get (schema, "anyOf"))) {
        bool any = false;
        size_t i;
        json_t *sub;
        json_array_foreach (x, i, sub)
        {
            any = any || s_conforms (root, sub, v);
        }
        if (!any)
            return false;
    }
    return true;
}

//  Sample documents: valid ones and ones with one mistake each. The parser and the schema must
//  agree on every one.
static const char *const s_samples_valid[] = {
    S_ONE ("{'provider':'openai'}"),
    S_ONE ("{'provider':'anthropic','name':'a.b_c-9','weight':2.5}"),
    "{'$schema':'x','strategy':{'mode':'loadbalance'},'targets':[{'provider':'openai','weight':1},"
    "{'provider':'anthropic','weight':0.001}]}",
    "{'strategy':{'mode':'fallback','on_status_codes':[]},'retry':{'attempts':0},"
    "'request_timeout':100,'targets':[{'provider':'openai','request_timeout':600000}]}",
    "{'strategy':{'mode':'fallback','on_status_codes':[400,599]},'targets':[{'provider':'openai',"
    "'retry':{'attempts':10,'on_status_codes':[429],'backoff_ms':0,'max_backoff_ms':0,"
    "'use_retry_after_header':false,'max_retry_after_ms':0}}]}",
    S_ONE ("{'provider':'openai','retry':{'attempts':2.0,'backoff_ms':60000,'max_backoff_ms':"
           "300000,'max_retry_after_ms':600000}}"),
    S_ONE ("{'provider':'openai','override_params':{'model':'gpt-4o'},'base_url':"
           "'http://127.0.0.1:8080/v1/'}"),
    S_ONE ("{'provider':'openai','override_params':{}}"),
    S_ONE ("{'provider':'azure-openai','resource':'my-res-1','deployment':'gpt-4o.prod_1',"
           "'api_version':'2024-10-21'}"),
    S_ONE ("{'provider':'bedrock','region':'eu-central-1','override_params':{'model':"
           "'anthropic.claude-3-5-sonnet-20240620-v1:0'}}"),
    S_ONE ("{'provider':'google-vertex-ai','project':'my-proj:x.y_z','location':'global'}"),
    "{'strategy':{'mode':'conditional','conditions':[{'query':{'metadata.team':'a',"
    "'metadata.x y':{'$eq':1,'$ne':true,'$in':['a',2,false],'$nin':['b'],'$glob':'*'},"
    "'model':{'$glob':'gpt-*'},'provider':'openai','endpoint':'/v1/x','$and':[{'model':'m'}],"
    "'$or':[{'model':'n'},{'$and':[{'endpoint':'e'}]}]},'then':'t'}],'default':'t'},"
    "'targets':[{'name':'t','provider':'openai'}]}",
    "{'strategy':{'mode':'fallback'},'targets':[{'name':'g','weight':3,'retry':{'attempts':1},"
    "'request_timeout':5000,'strategy':{'mode':'single'},'targets':[{'provider':'openai'}]}]}",
    S_ONE ("{'provider':'openai','override_params':{'model':'a \\\"quoted\\\" model'}}"),
};

static const char *const s_samples_invalid[] = {
    "{}",
    "{'strategy':{'mode':'single'},'targets':[]}",
    "{'strategy':{'mode':'single'},'targets':[{'provider':'openai'}],'name':'x'}",
    "{'strategy':{'mode':'single'},'targets':[{'provider':'openai'}],'extra':true}",
    "{'strategy':{'mode':'fallback','default':'x'},'targets':[{'provider':'openai'}]}",
    "{'strategy':{'mode':'single','on_status_codes':[500]},'targets':[{'provider':'openai'}]}",
    "{'strategy':{'mode':'conditional'},'targets':[{'provider':'openai'}]}",
    "{'strategy':{'mode':'conditional','conditions':[{'query':{},'then':'a'}]},'targets':["
    "{'name':'a','provider':'openai'}]}",
    "{'strategy':{'mode':'conditional','conditions':[{'query':{'model':{'$regex':'x'}},"
    "'then':'a'}]},'targets':[{'name':'a','provider':'openai'}]}",
    "{'strategy':{'mode':'conditional','conditions':[{'query':{'team':'x'},"
    "'then':'a'}]},'targets':[{'name':'a','provider':'openai'}]}",
    "{'strategy':{'mode':'conditional','conditions':[{'query':{'metadata.':'x'},"
    "'then':'a'}]},'targets':[{'name':'a','provider':'openai'}]}",
    "{'strategy':{'mode':'conditional','conditions':[{'query':{'model':{'$in':[]}},"
    "'then':'a'}]},'targets':[{'name':'a','provider':'openai'}]}",
    "{'strategy':{'mode':'conditional','conditions':[{'query':{'model':null},"
    "'then':'a'}]},'targets':[{'name':'a','provider':'openai'}]}",
    "{'strategy':{'mode':'conditional','conditions':[{'query':{'model':'m'},"
    "'then':'bad name'}]},'targets':[{'name':'a','provider':'openai'}]}",
    "{'strategy':{'mode':'random'},'targets':[{'provider':'openai'}]}",
    S_ONE ("{'provider':'mistral'}"),
    S_ONE ("{'name':'x'}"),
    S_ONE ("{'provider':'openai','strategy':{'mode':'single'},'targets':[{'provider':'openai'}]}"),
    S_ONE ("{'provider':'openai','weight':0}"),
    S_ONE ("{'provider':'openai','weight':-2}"),
    S_ONE ("{'provider':'openai','name':'x/y'}"),
    S_ONE ("{'provider':'openai','override_params':{'model':''}}"),
    S_ONE ("{'provider':'openai','override_params':{'max_tokens':5}}"),
    S_ONE ("{'provider':'openai','base_url':'https://'}"),
    S_ONE ("{'provider':'openai','base_url':'https://a b'}"),
    S_ONE ("{'provider':'openai','base_url':'https://a\\\"b'}"),
    S_ONE ("{'provider':'openai','base_url':'mailto:x'}"),
    S_ONE ("{'provider':'openai','region':'us-east-1'}"),
    S_ONE ("{'provider':'bedrock','location':'us-east1'}"),
    S_ONE ("{'provider':'azure-openai','resource':'a_b'}"),
    S_ONE ("{'provider':'google-vertex-ai','location':'EU'}"),
    S_ONE ("{'provider':'openai','retry':{'attempts':11}}"),
    S_ONE ("{'provider':'openai','retry':{'attempts':1.5}}"),
    S_ONE ("{'provider':'openai','retry':{'on_status_codes':[302]}}"),
    S_ONE ("{'provider':'openai','retry':{'on_status_codes':[500,500]}}"),
    S_ONE ("{'provider':'openai','retry':{'backoff_ms':-1}}"),
    S_ONE ("{'provider':'openai','retry':{'use_retry_after_header':1}}"),
    S_ONE ("{'provider':'openai','retry':{'tries':1}}"),
    S_ONE ("{'provider':'openai','request_timeout':600001}"),
    S_ONE ("{'strategy':{'mode':'single'},'targets':[{'provider':'openai'}],'bogus':1}"),
};

//  What a schema cannot say: the schema accepts these, the parser must not.
static const char *const s_samples_parser_only[] = {
    "{'strategy':{'mode':'fallback'},'targets':[{'name':'a','provider':'openai'},"
    "{'name':'a','provider':'anthropic'}]}",
    "{'strategy':{'mode':'conditional','conditions':[{'query':{'model':'m'},'then':'zz'}]},"
    "'targets':[{'name':'a','provider':'openai'}]}",
    S_ONE ("{'provider':'openai','retry':{'backoff_ms':500,'max_backoff_ms':100}}"),
};

void ar_routing_schema_test (bool verbose)
{
    (void)verbose;
    json_error_t jerr;
    json_t *schema = json_load_file (AR_ROUTING_SCHEMA_DIR "/routing.config.schema.json", 0, &jerr);
    if (!schema)
        fprintf (stderr, "routing.config.schema.json: line %d: %s\n", jerr.line, jerr.text);
    assert (schema);
    struct {
        const char *const *docs;
        size_t count;
        bool parser, schema;
    } sets[] = {
        {s_samples_valid, sizeof s_samples_valid / sizeof *s_samples_valid, true, true},
        {s_samples_invalid, sizeof s_samples_invalid / sizeof *s_samples_invalid, false, false},
        {s_samples_parser_only, sizeof s_samples_parser_only / sizeof *s_samples_parser_only, false,
         true},
    };
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++)
        for (size_t i = 0; i < sets[s].count; i++) {
            const char *doc = s_doc (sets[s].docs[i]);
            char error[512];
            ar_routing_config_t *config =
                ar_routing_config_parse (doc, strlen (doc), error, sizeof error);
            json_t *value = json_loads (doc, JSON_DECODE_ANY, NULL);
            assert (value);
            bool by_schema = s_conforms (schema, schema, value);
            if (!!config != sets[s].parser || by_schema != sets[s].schema)
                fprintf (stderr, "sample %zu.%zu: parser %s (%s), schema %s\n  %s\n", s, i,
                         config ? "accepts" : "refuses", config ? "" : error,
                         by_schema ? "accepts" : "refuses", doc);
            assert (!!config == sets[s].parser && by_schema == sets[s].schema);
            //  Canonical text is valid for the schema too.
            if (config) {
                char *text = ar_routing_config_to_json (config);
                json_t *canon = json_loads (text, 0, NULL);
                assert (canon && s_conforms (schema, schema, canon));
                json_decref (canon);
                free (text);
            }
            json_decref (value);
            ar_routing_config_destroy (&config);
        }
    //  The shipped example conforms.
    json_t *example =
        json_load_file (AR_ROUTING_SCHEMA_DIR "/routing.config.example.json", 0, &jerr);
    assert (example && s_conforms (schema, schema, example));
    json_decref (example);
    json_decref (schema);
}
