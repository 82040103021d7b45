/*  ar_envelope: encode and decode frame 2 (schemas/envelope.md).

    Decoding untrusted bytes runs in two steps. ar_msgpack_prevalidate walks the bytes first and
    refuses any container whose declared count cannot fit in the bytes left (msgpack-c reserves
    memory for a declared array length before reading a single element: `dd ff ff ff ff` would
    ask for ~96 GB) and any nesting deeper than the caller allows. Only then does msgpack-c
    build objects, and every object's type is checked before its value is read.
*/
#include "ar_envelope.h"
#include "ar_buf.h"
#include "ar_clock.h"
#include <assert.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void ar_envelope_init (ar_envelope_t *self)
{
    //  Clearing 5 KB of fixed storage is cheaper than it looks (~100 ns) and keeps the value
    //  type free of uninitialised bytes.
    memset (self, 0, sizeof *self);
    self->minor = AR_PROTO_MINOR;
}

void ar_envelope_new_id (ar_envelope_t *self)
{
    //  6 bytes of epoch ms first, so ids sort by time (UUIDv7-like), then 10 random bytes.
    ar_wall_ms now = ar_wall_now ();
    for (int i = 0; i < 6; i++)
        self->id[i] = (uint8_t)(now >> (8 * (5 - i)));
    if (getrandom (self->id + 6, AR_ID_LEN - 6, 0) != AR_ID_LEN - 6) {
        //  getrandom on Linux only fails before the pool is seeded; fall back to a counter mix.
        static uint64_t counter;
        uint64_t mix = (uint64_t)ar_mono_us () ^ (++counter * 0x9E3779B97F4A7C15ULL);
        memcpy (self->id + 6, &mix, 8);
    }
}

void ar_envelope_id_hex (const ar_envelope_t *self, char *out)
{
    ar_hex_encode (self->id, AR_ID_LEN, out);
}

void ar_envelope_meta_at (const ar_envelope_t *self, size_t i, const char **key, const char **value)
{
    *key = self->meta_data + self->meta_off[i];
    *value = *key + strlen (*key) + 1;
}

const char *ar_envelope_meta_get (const ar_envelope_t *self, const char *key)
{
    for (size_t i = 0; i < self->meta_count; i++) {
        const char *k, *v;
        ar_envelope_meta_at (self, i, &k, &v);
        if (strcmp (k, key) == 0)
            return v;
    }
    return NULL;
}

//  Remove entry i, closing the gap in meta_data.
static void s_meta_remove (ar_envelope_t *self, size_t i)
{
    const char *k, *v;
    ar_envelope_meta_at (self, i, &k, &v);
    uint16_t start = self->meta_off[i];
    uint16_t len = (uint16_t)(strlen (k) + strlen (v) + 2);
    memmove (self->meta_data + start, self->meta_data + start + len, self->meta_used - start - len);
    self->meta_used -= len;
    for (size_t j = i; j + 1 < self->meta_count; j++)
        self->meta_off[j] = self->meta_off[j + 1];
    self->meta_count--;
    for (size_t j = 0; j < self->meta_count; j++)
        if (self->meta_off[j] > start)
            self->meta_off[j] -= len;
}

//  Append without checking for an existing key (decode knows the map is fresh).
static int s_meta_append (ar_envelope_t *self, const char *key, size_t key_len, const char *value,
                          size_t value_len)
{
    if (key_len == 0 || self->meta_count == AR_META_MAX || memchr (key, 0, key_len) ||
        memchr (value, 0, value_len))
        return -1;
    //  The 1 KiB limit counts key and value bytes; the NULs are our own.
    size_t content = self->meta_used - 2 * self->meta_count;
    if (content + key_len + value_len > AR_META_BYTES_MAX)
        return -1;
    char *at = self->meta_data + self->meta_used;
    memcpy (at, key, key_len);
    at[key_len] = 0;
    memcpy (at + key_len + 1, value, value_len);
    at[key_len + 1 + value_len] = 0;
    self->meta_off[self->meta_count++] = self->meta_used;
    self->meta_used = (uint16_t)(self->meta_used + key_len + value_len + 2);
    return 0;
}

int ar_envelope_meta_set (ar_envelope_t *self, const char *key, const char *value)
{
    size_t key_len = strlen (key), value_len = strlen (value);
    if (key_len > 64 || value_len > 512)
        return -1;
    for (size_t i = 0; i < self->meta_count; i++) {
        const char *k, *v;
        ar_envelope_meta_at (self, i, &k, &v);
        if (strcmp (k, key) == 0) {
            //  Check the new size first so a refused set leaves the old value in place.
            size_t content = self->meta_used - 2 * self->meta_count;
            if (content - strlen (v) + value_len > AR_META_BYTES_MAX)
                return -1;
            s_meta_remove (self, i);
            break;
        }
    }
    return s_meta_append (self, key, key_len, value, value_len);
}

void ar_envelope_set_status (ar_envelope_t *self, uint16_t code, const char *reason)
{
    self->has_status = true;
    self->status_code = code;
    snprintf (self->status_reason, sizeof self->status_reason, "%s", reason ? reason : "");
}

//  --------------------------------------------------------------------------
//  Encoding into a caller's fixed buffer: the packer writes through s_write, which refuses to
//  overflow instead of growing.

typedef struct {
    uint8_t *data;
    size_t size, used;
    bool overflow;
} s_fixed_buffer_t;

static int s_write (void *data, const char *buf, size_t len)
{
    s_fixed_buffer_t *out = data;
    if (out->used + len > out->size) {
        out->overflow = true;
        return -1;
    }
    memcpy (out->data + out->used, buf, len);
    out->used += len;
    return 0;
}

static void s_pack_str (msgpack_packer *pk, const char *s)
{
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

static void s_pack_bin (msgpack_packer *pk, const uint8_t *data, size_t len)
{
    msgpack_pack_bin (pk, len);
    msgpack_pack_bin_body (pk, data, len);
}

int ar_envelope_encode (const ar_envelope_t *self, uint8_t *buf, size_t size)
{
    s_fixed_buffer_t out = {buf, size, 0, false};
    msgpack_packer pk;
    msgpack_packer_init (&pk, &out, s_write);

    size_t fields = 2 + (self->has_trace ? 1 : 0) + (self->deadline_ms ? 1 : 0) +
                    (self->budget_ms ? 1 : 0) + (*self->service ? 1 : 0) + (*self->kind ? 1 : 0) +
                    (self->seq ? 1 : 0) + (self->attempt ? 1 : 0) + (self->meta_count ? 1 : 0) +
                    (*self->body_type ? 1 : 0) + (self->has_status ? 1 : 0) +
                    (self->credit ? 1 : 0) + (self->heartbeat_ms ? 1 : 0) +
                    (*self->instance ? 1 : 0) + self->unknown_count;
    msgpack_pack_map (&pk, fields);
    msgpack_pack_uint8 (&pk, AR_KEY_MINOR);
    msgpack_pack_uint32 (&pk, self->minor);
    msgpack_pack_uint8 (&pk, AR_KEY_ID);
    s_pack_bin (&pk, self->id, AR_ID_LEN);
    if (self->has_trace) {
        msgpack_pack_uint8 (&pk, AR_KEY_TRACE);
        s_pack_bin (&pk, self->trace, AR_ID_LEN);
    }
    if (self->deadline_ms) {
        msgpack_pack_uint8 (&pk, AR_KEY_DEADLINE);
        msgpack_pack_uint64 (&pk, self->deadline_ms);
    }
    if (self->budget_ms) {
        msgpack_pack_uint8 (&pk, AR_KEY_BUDGET);
        msgpack_pack_uint32 (&pk, self->budget_ms);
    }
    if (*self->service) {
        msgpack_pack_uint8 (&pk, AR_KEY_SERVICE);
        s_pack_str (&pk, self->service);
    }
    if (*self->kind) {
        msgpack_pack_uint8 (&pk, AR_KEY_KIND);
        s_pack_str (&pk, self->kind);
    }
    if (self->seq) {
        msgpack_pack_uint8 (&pk, AR_KEY_SEQ);
        msgpack_pack_uint32 (&pk, self->seq);
    }
    if (self->attempt) {
        msgpack_pack_uint8 (&pk, AR_KEY_ATTEMPT);
        msgpack_pack_uint8 (&pk, self->attempt);
    }
    if (self->meta_count) {
        msgpack_pack_uint8 (&pk, AR_KEY_META);
        msgpack_pack_map (&pk, self->meta_count);
        for (size_t i = 0; i < self->meta_count; i++) {
            const char *key, *value;
            ar_envelope_meta_at (self, i, &key, &value);
            s_pack_str (&pk, key);
            s_pack_str (&pk, value);
        }
    }
    if (*self->body_type) {
        msgpack_pack_uint8 (&pk, AR_KEY_BODY_TYPE);
        s_pack_str (&pk, self->body_type);
    }
    if (self->has_status) {
        msgpack_pack_uint8 (&pk, AR_KEY_STATUS);
        msgpack_pack_array (&pk, 2);
        msgpack_pack_uint16 (&pk, self->status_code);
        s_pack_str (&pk, self->status_reason);
    }
    if (self->credit) {
        msgpack_pack_uint8 (&pk, AR_KEY_CREDIT);
        msgpack_pack_uint16 (&pk, self->credit);
    }
    if (self->heartbeat_ms) {
        msgpack_pack_uint8 (&pk, AR_KEY_HEARTBEAT);
        msgpack_pack_uint32 (&pk, self->heartbeat_ms);
    }
    if (*self->instance) {
        msgpack_pack_uint8 (&pk, AR_KEY_INSTANCE);
        s_pack_str (&pk, self->instance);
    }
    //  Unknown pairs were re-packed on decode; they go out as they came in.
    s_write (&out, (const char *)self->unknown, self->unknown_len);
    return out.overflow ? -1 : (int)out.used;
}

//  --------------------------------------------------------------------------
//  Bounded pre-validation of untrusted msgpack.

static int s_be (const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t value = 0;
    for (size_t i = 0; i < n; i++)
        value = (value << 8) | p[i];
    *out = value;
    return 0;
}

int ar_msgpack_prevalidate (const uint8_t *data, size_t size, int max_depth)
{
    //  pending[d] = how many objects are still owed at depth d.
    uint64_t pending[64];
    if (max_depth < 1 || max_depth > 63)
        return -1;
    int depth = 0;
    pending[0] = 1;
    size_t pos = 0;
    while (depth >= 0) {
        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        pending[depth]--;
        if (pos >= size)
            return -1;
        uint8_t tag = data[pos++];
        uint64_t skip = 0, children = 0, n = 0;
        size_t header = 0; // bytes of length field after the tag
        if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3)
            ;
        else if (tag >= 0x80 && tag <= 0x8f)
            children = 2 * (uint64_t)(tag & 0x0f);
        else if (tag >= 0x90 && tag <= 0x9f)
            children = tag & 0x0f;
        else if (tag >= 0xa0 && tag <= 0xbf)
            skip = tag & 0x1f;
        else
            switch (tag) {
            case 0xc4:
            case 0xd9:
                header = 1;
                break; // bin8, str8
            case 0xc5:
            case 0xda:
                header = 2;
                break;
            case 0xc6:
            case 0xdb:
                header = 4;
                break;
            case 0xc7:
                header = 1;
                skip = 1;
                break; // ext8: len + type
            case 0xc8:
                header = 2;
                skip = 1;
                break;
            case 0xc9:
                header = 4;
                skip = 1;
                break;
            case 0xca:
                skip = 4;
                break;
            case 0xcb:
                skip = 8;
                break;
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4:
                skip = 2;
                break;
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
                header = 2;
                break; // array16
            case 0xdd:
                header = 4;
                break;
            case 0xde:
                header = 2;
                break; // map16
            case 0xdf:
                header = 4;
                break;
            default:
                return -1; // 0xc1 is never used
            }
        if (header) {
            if (size - pos < header)
                return -1;
            s_be (data + pos, header, &n);
            pos += header;
            if (tag == 0xdc || tag == 0xdd)
                children = n;
            else if (tag == 0xde || tag == 0xdf)
                children = 2 * n;
            else
                skip += n;
        }
        if (skip > size - pos)
            return -1;
        pos += skip;
        if (children) {
            //  Every child needs at least one byte: a count the bytes cannot hold is a lie.
            if (children > size - pos)
                return -1;
            if (depth + 1 >= max_depth)
                return -1;
            pending[++depth] = children;
        }
    }
    return pos == size ? 0 : -1;
}

//  --------------------------------------------------------------------------
//  Decoding.

static int s_copy_str (const msgpack_object *o, char *out, size_t size)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size)
        return -1;
    memcpy (out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = 0;
    //  Embedded NULs would make the C string lie about its content.
    return memchr (out, 0, o->via.str.size) ? -1 : 0;
}

static int s_uint (const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return -1;
    *out = o->via.u64;
    return 0;
}

static int s_keep_unknown (ar_envelope_t *self, const msgpack_object *key,
                           const msgpack_object *val)
{
    s_fixed_buffer_t out = {self->unknown + self->unknown_len, AR_UNKNOWN_MAX - self->unknown_len,
                            0, false};
    msgpack_packer pk;
    msgpack_packer_init (&pk, &out, s_write);
    msgpack_pack_object (&pk, *key);
    msgpack_pack_object (&pk, *val);
    if (out.overflow)
        return -1;
    self->unknown_len += out.used;
    self->unknown_count++;
    return 0;
}

static int s_decode_field (ar_envelope_t *self, uint64_t key, const msgpack_object *v, bool *has_id,
                           const char **error)
{
    uint64_t n;
    switch (key) {
    case AR_KEY_MINOR:
        if (s_uint (v, UINT32_MAX, &n))
            return *error = "minor version not an integer", -1;
        self->minor = (uint32_t)n;
        return 0;
    case AR_KEY_ID:
        if (v->type != MSGPACK_OBJECT_BIN || v->via.bin.size != AR_ID_LEN)
            return *error = "id must be 16 bytes", -1;
        memcpy (self->id, v->via.bin.ptr, AR_ID_LEN);
        *has_id = true;
        return 0;
    case AR_KEY_TRACE:
        if (v->type != MSGPACK_OBJECT_BIN || v->via.bin.size != AR_ID_LEN)
            return *error = "trace must be 16 bytes", -1;
        memcpy (self->trace, v->via.bin.ptr, AR_ID_LEN);
        self->has_trace = true;
        return 0;
    case AR_KEY_DEADLINE:
        if (s_uint (v, UINT64_MAX, &n))
            return *error = "deadline not an integer", -1;
        self->deadline_ms = n;
        return 0;
    case AR_KEY_BUDGET:
        if (s_uint (v, UINT32_MAX, &n))
            return *error = "budget not an integer", -1;
        self->budget_ms = (uint32_t)n;
        return 0;
    case AR_KEY_SERVICE:
        return s_copy_str (v, self->service, sizeof self->service) ? (*error = "bad service", -1)
                                                                   : 0;
    case AR_KEY_KIND:
        return s_copy_str (v, self->kind, sizeof self->kind) ? (*error = "bad kind", -1) : 0;
    case AR_KEY_SEQ:
        if (s_uint (v, UINT32_MAX, &n))
            return *error = "seq not an integer", -1;
        self->seq = (uint32_t)n;
        return 0;
    case AR_KEY_ATTEMPT:
        if (s_uint (v, UINT8_MAX, &n))
            return *error = "attempt not a small integer", -1;
        self->attempt = (uint8_t)n;
        return 0;
    case AR_KEY_META:
        if (v->type != MSGPACK_OBJECT_MAP || v->via.map.size > AR_META_MAX)
            return *error = "meta must be a map of at most 32 entries", -1;
        for (uint32_t i = 0; i < v->via.map.size; i++) {
            const msgpack_object *mk = &v->via.map.ptr[i].key, *mv = &v->via.map.ptr[i].val;
            if (mk->type != MSGPACK_OBJECT_STR || mv->type != MSGPACK_OBJECT_STR ||
                s_meta_append (self, mk->via.str.ptr, mk->via.str.size, mv->via.str.ptr,
                               mv->via.str.size) != 0)
                return *error = "meta must map non-empty strings to strings, 1 KiB at most", -1;
        }
        return 0;
    case AR_KEY_BODY_TYPE:
        return s_copy_str (v, self->body_type, sizeof self->body_type)
                   ? (*error = "bad body_type", -1)
                   : 0;
    case AR_KEY_STATUS:
        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size != 2 ||
            s_uint (&v->via.array.ptr[0], UINT16_MAX, &n) ||
            s_copy_str (&v->via.array.ptr[1], self->status_reason, sizeof self->status_reason))
            return *error = "status must be [code, reason]", -1;
        self->status_code = (uint16_t)n;
        self->has_status = true;
        return 0;
    case AR_KEY_CREDIT:
        if (s_uint (v, UINT16_MAX, &n))
            return *error = "credit not an integer", -1;
        self->credit = (uint16_t)n;
        return 0;
    case AR_KEY_HEARTBEAT:
        if (s_uint (v, UINT32_MAX, &n))
            return *error = "heartbeat not an integer", -1;
        self->heartbeat_ms = (uint32_t)n;
        return 0;
    case AR_KEY_INSTANCE:
        return s_copy_str (v, self->instance, sizeof self->instance) ? (*error = "bad instance", -1)
                                                                     : 0;
    }
    return 1; // not ours
}

int ar_envelope_decode (ar_envelope_t *self, const uint8_t *data, size_t size, const char **error)
{
    const char *dummy;
    if (!error)
        error = &dummy;
    ar_envelope_init (self);
    if (size == 0 || size > AR_ENVELOPE_MAX)
        return *error = "envelope size out of bounds", -1;
    if (ar_msgpack_prevalidate (data, size, 4) != 0)
        return *error = "envelope is not well-formed bounded msgpack", -1;

    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t offset = 0;
    int rc = -1;
    bool has_id = false;
    if (msgpack_unpack_next (&result, (const char *)data, size, &offset) !=
        MSGPACK_UNPACK_SUCCESS) {
        *error = "envelope does not decode";
        goto done;
    }
    const msgpack_object *root = &result.data;
    if (root->type != MSGPACK_OBJECT_MAP) {
        *error = "envelope is not a map";
        goto done;
    }
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *key = &root->via.map.ptr[i].key;
        const msgpack_object *val = &root->via.map.ptr[i].val;
        int field = 1;
        if (key->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            field = s_decode_field (self, key->via.u64, val, &has_id, error);
        if (field < 0)
            goto done;
        if (field == 1 && s_keep_unknown (self, key, val) != 0) {
            *error = "too many unknown envelope keys";
            goto done;
        }
    }
    if (!has_id) {
        *error = "envelope has no id";
        goto done;
    }
    rc = 0;
done:
    msgpack_unpacked_destroy (&result);
    return rc;
}

int ar_envelope_check_tag (const uint8_t *data, size_t size)
{
    if (size != AR_PROTO_TAG_LEN || memcmp (data, "ARB", 3) != 0)
        return -1;
    return data[3] == AR_PROTO_TAG[3] ? 0 : -2;
}

//  --------------------------------------------------------------------------
//  Self-test, with the golden vectors of schemas/vectors/.

static void s_hex (const uint8_t *data, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        sprintf (out + 2 * i, "%02x", data[i]);
}

//  The golden REQUEST envelope: every known field set. Its bytes are pinned in
//  schemas/vectors/envelope_request.hex; a change here is a wire break.
static void s_golden_request (ar_envelope_t *env)
{
    ar_envelope_init (env);
    for (int i = 0; i < AR_ID_LEN; i++)
        env->id[i] = (uint8_t)i;
    env->has_trace = true;
    memset (env->trace, 0xab, AR_ID_LEN);
    env->deadline_ms = 1767225600000ULL; // 2026-01-01T00:00:00Z
    env->budget_ms = 800;
    strcpy (env->service, "optimizer");
    strcpy (env->kind, "optimize");
    env->attempt = 1;
    ar_envelope_meta_set (env, "user", "alice");
    ar_envelope_meta_set (env, "team", "platform");
    strcpy (env->body_type, "chat.request/1");
}

//  Read a vector file: hex digits, whitespace and '#' comment lines ignored.
static void s_read_vector (const char *name, char *out, size_t size)
{
    char path[512];
    snprintf (path, sizeof path, "%s/schemas/vectors/%s", AR_SOURCE_DIR, name);
    FILE *file = fopen (path, "r");
    assert (file);
    size_t used = 0;
    char line[512];
    while (fgets (line, sizeof line, file))
        for (char *c = line; *c && *line != '#'; c++)
            if ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))
                if (used + 1 < size)
                    out[used++] = *c;
    out[used] = 0;
    fclose (file);
}

void ar_envelope_test (bool verbose)
{
    uint8_t buf[AR_ENVELOPE_MAX];
    char hex[2 * AR_ENVELOPE_MAX + 1], want[2 * AR_ENVELOPE_MAX + 1];
    const char *error = NULL;

    //  Golden REQUEST vector: encode is byte-exact, decode round-trips every field.
    ar_envelope_t env, back;
    s_golden_request (&env);
    int len = ar_envelope_encode (&env, buf, sizeof buf);
    assert (len > 0);
    s_hex (buf, (size_t)len, hex);
    s_read_vector ("envelope_request.hex", want, sizeof want);
    if (verbose || strcmp (hex, want) != 0)
        printf ("\n request vector: %s\n", hex), fflush (stdout);
    assert (strcmp (hex, want) == 0);
    assert (ar_envelope_decode (&back, buf, (size_t)len, &error) == 0);
    assert (memcmp (back.id, env.id, AR_ID_LEN) == 0);
    assert (back.has_trace && back.trace[15] == 0xab);
    assert (back.deadline_ms == env.deadline_ms && back.budget_ms == 800);
    assert (strcmp (back.service, "optimizer") == 0 && strcmp (back.kind, "optimize") == 0);
    assert (back.attempt == 1 && back.meta_count == 2);
    assert (strcmp (ar_envelope_meta_get (&back, "team"), "platform") == 0);
    assert (ar_envelope_meta_get (&back, "model") == NULL);
    assert (strcmp (back.body_type, "chat.request/1") == 0);

    //  Golden ERROR vector (what the broker sends for NO_WORKER).
    ar_envelope_init (&env);
    for (int i = 0; i < AR_ID_LEN; i++)
        env.id[i] = (uint8_t)(15 - i);
    ar_envelope_set_status (&env, 503, AR_REASON_NO_WORKER);
    len = ar_envelope_encode (&env, buf, sizeof buf);
    s_hex (buf, (size_t)len, hex);
    s_read_vector ("envelope_error.hex", want, sizeof want);
    if (verbose || strcmp (hex, want) != 0)
        printf ("\n error vector: %s\n", hex), fflush (stdout);
    assert (strcmp (hex, want) == 0);

    //  Unknown keys (a newer minor) pass through unchanged, in order.
    uint8_t newer[64];
    size_t n = 0;
    newer[n++] = 0x83; // map of 3
    newer[n++] = 0x01, newer[n++] = 0xc4, newer[n++] = 16;
    for (int i = 0; i < 16; i++)
        newer[n++] = (uint8_t)i;
    newer[n++] = 0x3f, newer[n++] = 0xa2, newer[n++] = 'h', newer[n++] = 'i'; // key 63: "hi"
    newer[n++] = 0x00, newer[n++] = 0x05;                                     // minor 5
    assert (ar_envelope_decode (&back, newer, n, &error) == 0);
    assert (back.minor == 5 && back.unknown_count == 1);
    len = ar_envelope_encode (&back, buf, sizeof buf);
    assert (ar_envelope_decode (&env, buf, (size_t)len, &error) == 0);
    assert (env.unknown_count == 1 && env.unknown_len == back.unknown_len);
    assert (memcmp (env.unknown, "\x3f\xa2hi", 4) == 0);

    //  Malformed input is refused with a reason, never a crash.
    const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\xdd\xff\xff\xff\xff", 5},         // array claiming 4G entries
        {"\xdf\xff\xff\xff\xff", 5},         // map claiming 4G pairs
        {"\x81\x01", 2},                     // truncated map
        {"\xc1", 1},                         // never-used tag
        {"\x91\x91\x91\x91\x91\x91\x90", 7}, // too deep
        {"\x80", 1},                         // no id
        {"\x81\x01\xc4\x02\x00\x00", 6},     // short id
        {"\x82\x01\xc4\x10"
         "0123456789abcdef"
         "\x05\x01",
         22}, // service not a string
        {"\xa3"
         "abc",
         4},             // not a map
        {"\x80\x80", 2}, // trailing bytes
        {"", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        error = NULL;
        assert (ar_envelope_decode (&back, (const uint8_t *)bad[i].bytes, bad[i].len, &error) ==
                -1);
        assert (error && *error);
    }
    //  Pre-validator accepts what msgpack-c writes, at exactly its length.
    s_golden_request (&env);
    len = ar_envelope_encode (&env, buf, sizeof buf);
    assert (ar_msgpack_prevalidate (buf, (size_t)len, 4) == 0);
    assert (ar_msgpack_prevalidate (buf, (size_t)len - 1, 4) == -1);

    //  Meta limits: 32 entries, 1 KiB total, long values refused.
    ar_envelope_init (&env);
    char key[16];
    for (int i = 0; i < AR_META_MAX; i++) {
        snprintf (key, sizeof key, "k%d", i);
        assert (ar_envelope_meta_set (&env, key, "v") == 0);
    }
    assert (ar_envelope_meta_set (&env, "one-more", "v") == -1);
    assert (ar_envelope_meta_set (&env, "k3", "replaced") == 0);
    assert (strcmp (ar_envelope_meta_get (&env, "k3"), "replaced") == 0);
    char longv[1100];
    memset (longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    assert (ar_envelope_meta_set (&env, "k4", longv) == -1);
    assert (strcmp (ar_envelope_meta_get (&env, "k4"), "v") == 0); // refused set keeps the old
    //  Removing from the middle keeps the others intact.
    ar_envelope_init (&env);
    ar_envelope_meta_set (&env, "a", "1");
    ar_envelope_meta_set (&env, "b", "22");
    ar_envelope_meta_set (&env, "c", "333");
    ar_envelope_meta_set (&env, "a", "4444");
    assert (strcmp (ar_envelope_meta_get (&env, "b"), "22") == 0);
    assert (strcmp (ar_envelope_meta_get (&env, "c"), "333") == 0);
    assert (strcmp (ar_envelope_meta_get (&env, "a"), "4444") == 0);
    assert (env.meta_count == 3);
    //  1 KiB in total.
    ar_envelope_init (&env);
    memset (longv, 'y', 500);
    longv[500] = 0;
    assert (ar_envelope_meta_set (&env, "x1", longv) == 0);
    assert (ar_envelope_meta_set (&env, "x2", longv) == 0);
    assert (ar_envelope_meta_set (&env, "x3", longv) == -1);

    //  Encoding into a buffer too small fails instead of overflowing.
    s_golden_request (&env);
    assert (ar_envelope_encode (&env, buf, 10) == -1);

    //  Ids: time-ordered, unique.
    ar_envelope_t a, b;
    ar_envelope_new_id (&a);
    ar_envelope_new_id (&b);
    assert (memcmp (a.id, b.id, AR_ID_LEN) != 0);
    char id_hex[33];
    ar_envelope_id_hex (&a, id_hex);
    assert (strlen (id_hex) == 32);

    //  Frame 0.
    assert (ar_envelope_check_tag ((const uint8_t *)"ARB1", 4) == 0);
    assert (ar_envelope_check_tag ((const uint8_t *)"ARB2", 4) == -2);
    assert (ar_envelope_check_tag ((const uint8_t *)"MDPW", 4) == -1);
    assert (ar_envelope_check_tag ((const uint8_t *)"ARB12", 5) == -1);
}
