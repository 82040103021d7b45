/*  ar_eventstream: the application/vnd.amazon.eventstream binary framing.

    The decoder is a prelude check, a message check and a small buffer for the one message
    that may straddle two pieces of input. Every read of the wire is bounds-checked against the
    bytes of a message whose total length has already been checked against the cap and is
    fully present.
*/
#include <assert.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <zlib.h>
#include "ar_eventstream.h"

#define s_PRELUDE   12          // total length, headers length, prelude CRC
#define s_OVERHEAD  16          // the prelude and the message CRC
#define s_KEEP_HELD (64 * 1024) // a held buffer up to this size is kept for the next message

struct ar_eventstream_decoder_t {
    ar_buf_t held;       // the start of a message that straddles pieces of input
    uint32_t held_total; // its total length once its prelude is in and checked, else 0
    size_t max_message;
    bool failed; // a bad frame or a stop: no more input is taken
};

static uint32_t s_be16 (const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t s_be32 (const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t s_be64 (const uint8_t *p)
{
    return (uint64_t)s_be32 (p) << 32 | s_be32 (p + 4);
}

static void s_put_be32 (uint8_t *p, uint32_t value)
{
    p[0] = (uint8_t)(value >> 24);
    p[1] = (uint8_t)(value >> 16);
    p[2] = (uint8_t)(value >> 8);
    p[3] = (uint8_t)value;
}

//  Lengths here never pass 4 GB: the framing's lengths are 32-bit.
static uint32_t s_crc (const uint8_t *data, size_t len)
{
    return (uint32_t)crc32 (0L, data, (uInt)len);
}

//  ---------------------------------------------------------------------------
//  Create and destroy a decoder.

ar_eventstream_decoder_t *ar_eventstream_decoder_new (size_t max_message)
{
    ar_eventstream_decoder_t *self = calloc (1, sizeof *self);
    if (self)
        self->max_message = max_message;
    return self;
}

void ar_eventstream_decoder_destroy (ar_eventstream_decoder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ar_eventstream_decoder_t *self = *self_p;
    ar_buf_free (&self->held);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  Decoding

//  The total length of the message whose 12-byte prelude this is, or 0 if the prelude is bad:
//  CRC mismatch, shorter than an empty message, headers longer than the message, over the cap.
static uint32_t s_prelude_check (const uint8_t *prelude, size_t max_message)
{
    uint32_t total = s_be32 (prelude);
    uint32_t headers = s_be32 (prelude + 4);
    if (s_crc (prelude, 8) != s_be32 (prelude + 8))
        return 0;
    if (total < s_OVERHEAD || total > max_message || headers > total - s_OVERHEAD)
        return 0;
    return total;
}

//  Decode the whole message at bytes (total bytes, prelude checked). 0, or -1 if bad.
static int s_message_decode (const uint8_t *bytes, uint32_t total, ar_eventstream_message_t *msg)
{
    msg->total_length = total;
    msg->headers_length = s_be32 (bytes + 4);
    msg->prelude_crc = s_be32 (bytes + 8);
    msg->message_crc = s_be32 (bytes + total - 4);
    if (s_crc (bytes, total - 4) != msg->message_crc)
        return -1;
    const uint8_t *at = bytes + s_PRELUDE;
    const uint8_t *end = at + msg->headers_length;
    msg->header_count = 0;
    while (at < end) {
        if (msg->header_count == AR_EVENTSTREAM_MAX_HEADERS)
            return -1;
        ar_eventstream_header_t *header = &msg->headers[msg->header_count++];
        size_t name_len = *at++;
        //  A name of at least one byte, then the type byte.
        if (name_len == 0 || (size_t)(end - at) < name_len + 1)
            return -1;
        header->name = (const char *)at;
        header->name_len = name_len;
        at += name_len;
        header->type = *at++;
        size_t value_len;
        switch (header->type) {
        case AR_EVENTSTREAM_TRUE:
        case AR_EVENTSTREAM_FALSE:
            value_len = 0;
            break;
        case AR_EVENTSTREAM_BYTE:
            value_len = 1;
            break;
        case AR_EVENTSTREAM_SHORT:
            value_len = 2;
            break;
        case AR_EVENTSTREAM_INT:
            value_len = 4;
            break;
        case AR_EVENTSTREAM_LONG:
        case AR_EVENTSTREAM_TIMESTAMP:
            value_len = 8;
            break;
        case AR_EVENTSTREAM_UUID:
            value_len = 16;
            break;
        case AR_EVENTSTREAM_BYTES:
        case AR_EVENTSTREAM_STRING:
            if (end - at < 2)
                return -1;
            value_len = s_be16 (at);
            at += 2;
            break;
        default:
            return -1; // a type this framing does not have
        }
        if ((size_t)(end - at) < value_len)
            return -1;
        bool valueless =
            header->type == AR_EVENTSTREAM_TRUE || header->type == AR_EVENTSTREAM_FALSE;
        header->value = valueless ? NULL : at;
        header->value_len = value_len;
        at += value_len;
    }
    msg->payload = end;
    msg->payload_len = total - s_OVERHEAD - msg->headers_length;
    return 0;
}

static int s_fail (ar_eventstream_decoder_t *self)
{
    self->failed = true;
    return -1;
}

//  Decode one whole message and hand it to fn.
static int s_deliver (ar_eventstream_decoder_t *self, const uint8_t *bytes, uint32_t total,
                      ar_eventstream_fn *fn, void *arg)
{
    ar_eventstream_message_t msg;
    if (s_message_decode (bytes, total, &msg) != 0 || (fn && fn (&msg, arg) != 0))
        return s_fail (self);
    return 0;
}

//  Move up to want - held bytes from the input into the held buffer.
static int s_hold (ar_eventstream_decoder_t *self, size_t want, const uint8_t **data, size_t *len)
{
    size_t take = want > self->held.len ? want - self->held.len : 0;
    if (take > *len)
        take = *len;
    if (ar_buf_add (&self->held, *data, take) != 0)
        return -1;
    *data += take;
    *len -= take;
    return 0;
}

int ar_eventstream_decoder_feed (ar_eventstream_decoder_t *self, const void *data, size_t len,
                                 ar_eventstream_fn *fn, void *arg)
{
    if (!self)
        return -1;
    if (self->failed || (!data && len))
        return s_fail (self);
    const uint8_t *at = data;
    //  First complete the message begun in an earlier piece.
    if (self->held.len > 0) {
        if (self->held_total == 0) {
            if (s_hold (self, s_PRELUDE, &at, &len) != 0)
                return s_fail (self);
            if (self->held.len < s_PRELUDE)
                return 0;
            self->held_total =
                s_prelude_check ((const uint8_t *)self->held.data, self->max_message);
            if (self->held_total == 0)
                return s_fail (self);
        }
        if (s_hold (self, self->held_total, &at, &len) != 0)
            return s_fail (self);
        if (self->held.len < self->held_total)
            return 0;
        int rc = s_deliver (self, (const uint8_t *)self->held.data, self->held_total, fn, arg);
        if (self->held.size > s_KEEP_HELD)
            ar_buf_free (&self->held); // one large message should not pin its memory
        else
            ar_buf_consume (&self->held, self->held.len);
        self->held_total = 0;
        if (rc != 0)
            return rc;
    }
    //  Then every whole message where it lies.
    uint32_t next_total = 0;
    while (len >= s_PRELUDE) {
        next_total = s_prelude_check (at, self->max_message);
        if (next_total == 0)
            return s_fail (self);
        if (len < next_total)
            break;
        if (s_deliver (self, at, next_total, fn, arg) != 0)
            return -1;
        at += next_total;
        len -= next_total;
        next_total = 0;
    }
    //  Keep the start of the next one.
    if (len > 0) {
        if (ar_buf_add (&self->held, at, len) != 0)
            return s_fail (self);
        self->held_total = next_total;
    }
    return 0;
}

int ar_eventstream_decoder_finish (ar_eventstream_decoder_t *self)
{
    return self && !self->failed && self->held.len == 0 ? 0 : -1;
}

//  ---------------------------------------------------------------------------
//  Reading headers

const char *ar_eventstream_header_string (const ar_eventstream_message_t *msg, const char *name,
                                          size_t *len)
{
    size_t name_len = strlen (name);
    for (size_t i = 0; i < msg->header_count; i++) {
        const ar_eventstream_header_t *header = &msg->headers[i];
        if (header->type == AR_EVENTSTREAM_STRING && header->name_len == name_len &&
            memcmp (header->name, name, name_len) == 0) {
            if (len)
                *len = header->value_len;
            return (const char *)header->value;
        }
    }
    return NULL;
}

int64_t ar_eventstream_header_int (const ar_eventstream_header_t *header)
{
    switch (header->type) {
    case AR_EVENTSTREAM_BYTE:
        return (int8_t)header->value[0];
    case AR_EVENTSTREAM_SHORT:
        return (int16_t)s_be16 (header->value);
    case AR_EVENTSTREAM_INT:
        return (int32_t)s_be32 (header->value);
    case AR_EVENTSTREAM_LONG:
    case AR_EVENTSTREAM_TIMESTAMP:
        return (int64_t)s_be64 (header->value);
    default:
        return 0;
    }
}

//  ---------------------------------------------------------------------------
//  Encoding

int ar_eventstream_encode (const char *const *header_names, const char *const *header_values,
                           size_t header_count, const void *payload, size_t payload_len,
                           ar_buf_t *out)
{
    if (!out || (header_count && (!header_names || !header_values)) || (payload_len && !payload))
        return -1;
    size_t headers_len = 0;
    for (size_t i = 0; i < header_count; i++) {
        if (!header_names[i] || !header_values[i])
            return -1;
        size_t name_len = strlen (header_names[i]);
        size_t value_len = strlen (header_values[i]);
        if (name_len == 0 || name_len > 255 || value_len > 65535)
            return -1;
        headers_len += 1 + name_len + 1 + 2 + value_len;
        if (headers_len > UINT32_MAX - s_OVERHEAD)
            return -1;
    }
    if (payload_len > UINT32_MAX - s_OVERHEAD - headers_len)
        return -1;
    size_t total = s_OVERHEAD + headers_len + payload_len;
    uint8_t *frame = malloc (total);
    if (!frame)
        return -1;
    s_put_be32 (frame, (uint32_t)total);
    s_put_be32 (frame + 4, (uint32_t)headers_len);
    s_put_be32 (frame + 8, s_crc (frame, 8));
    uint8_t *at = frame + s_PRELUDE;
    for (size_t i = 0; i < header_count; i++) {
        size_t name_len = strlen (header_names[i]);
        size_t value_len = strlen (header_values[i]);
        *at++ = (uint8_t)name_len;
        memcpy (at, header_names[i], name_len);
        at += name_len;
        *at++ = AR_EVENTSTREAM_STRING;
        *at++ = (uint8_t)(value_len >> 8);
        *at++ = (uint8_t)value_len;
        memcpy (at, header_values[i], value_len);
        at += value_len;
    }
    if (payload_len)
        memcpy (at, payload, payload_len);
    s_put_be32 (frame + total - 4, s_crc (frame, total - 4));
    int rc = ar_buf_add (out, frame, total);
    free (frame);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Self-test

#define s_VECTORS AR_SOURCE_DIR "/schemas/vectors/eventstream"
#define s_CAP     (16 * 1024 * 1024)

static uint64_t s_rand_state = 0x9e3779b97f4a7c15ull;

//  xorshift64*: a fixed, reproducible sequence.
static uint32_t s_rand (void)
{
    s_rand_state ^= s_rand_state >> 12;
    s_rand_state ^= s_rand_state << 25;
    s_rand_state ^= s_rand_state >> 27;
    return (uint32_t)((s_rand_state * 0x2545f4914f6cdd1dull) >> 32);
}

static uint8_t *s_read (const char *path, size_t *len)
{
    uint8_t *bytes = (uint8_t *)ar_buf_read_file (path, len);
    if (!bytes)
        fprintf (stderr, "ar_eventstream: cannot read %s\n", path);
    assert (bytes);
    return bytes;
}

//  Base64 (with padding) into out, which holds at least 3/4 of the text. Returns the length.
static size_t s_base64 (const char *text, uint8_t *out)
{
    size_t text_len = strlen (text);
    assert (text_len % 4 == 0);
    if (text_len == 0)
        return 0;
    int len = EVP_DecodeBlock (out, (const unsigned char *)text, (int)text_len);
    assert (len >= 0);
    //  EVP_DecodeBlock counts the padding as zero bytes.
    while (text_len > 0 && text[--text_len] == '=')
        len--;
    return (size_t)len;
}

//  What a decode of a vector is compared with: a list of messages as JSON. The official
//  vectors give bytes in base64 and the prelude fields; the Bedrock ones give plain text.
typedef struct {
    json_t *messages;
    bool base64;
    size_t seen;
} s_expect_t;

static bool s_bytes_equal (const json_t *value, bool base64, const uint8_t *bytes, size_t len)
{
    const char *text = json_string_value (value);
    assert (text);
    if (!base64)
        return strlen (text) == len && memcmp (text, bytes, len) == 0;
    uint8_t decoded[1024];
    assert (strlen (text) / 4 * 3 <= sizeof decoded);
    size_t decoded_len = s_base64 (text, decoded);
    return decoded_len == len && memcmp (decoded, bytes, len) == 0;
}

static void s_check_header (const json_t *want, const ar_eventstream_header_t *header, bool base64)
{
    const char *name = json_string_value (json_object_get (want, "name"));
    assert (name && strlen (name) == header->name_len);
    assert (memcmp (name, header->name, header->name_len) == 0);
    json_int_t type = json_integer_value (json_object_get (want, "type"));
    assert (type == header->type);
    const json_t *value = json_object_get (want, "value");
    switch (header->type) {
    case AR_EVENTSTREAM_TRUE:
        assert (json_is_true (value) && !header->value && header->value_len == 0);
        break;
    case AR_EVENTSTREAM_FALSE:
        assert (json_is_false (value) && !header->value && header->value_len == 0);
        break;
    case AR_EVENTSTREAM_BYTE:
    case AR_EVENTSTREAM_SHORT:
    case AR_EVENTSTREAM_INT:
    case AR_EVENTSTREAM_LONG:
    case AR_EVENTSTREAM_TIMESTAMP:
        assert (json_is_integer (value));
        assert (json_integer_value (value) == ar_eventstream_header_int (header));
        break;
    case AR_EVENTSTREAM_UUID:
        assert (header->value_len == 16);
        assert (s_bytes_equal (value, base64, header->value, header->value_len));
        break;
    default:
        assert (s_bytes_equal (value, base64, header->value, header->value_len));
    }
}

static int s_compare_cb (const ar_eventstream_message_t *msg, void *arg)
{
    s_expect_t *expect = arg;
    const json_t *want = json_array_get (expect->messages, expect->seen++);
    assert (want);
    if (expect->base64) {
        //  The prelude fields and CRCs as the suite recorded them (CRCs as signed 32-bit).
        assert (json_integer_value (json_object_get (want, "total_length")) == msg->total_length);
        assert (json_integer_value (json_object_get (want, "headers_length")) ==
                msg->headers_length);
        assert ((uint32_t)json_integer_value (json_object_get (want, "prelude_crc")) ==
                msg->prelude_crc);
        assert ((uint32_t)json_integer_value (json_object_get (want, "message_crc")) ==
                msg->message_crc);
    }
    const json_t *headers = json_object_get (want, "headers");
    assert (json_array_size (headers) == msg->header_count);
    for (size_t i = 0; i < msg->header_count; i++)
        s_check_header (json_array_get (headers, i), &msg->headers[i], expect->base64);
    assert (s_bytes_equal (json_object_get (want, "payload"), expect->base64, msg->payload,
                           msg->payload_len));
    //  The string header lookup finds what the list says.
    for (size_t i = 0; i < msg->header_count; i++) {
        const json_t *header = json_array_get (headers, i);
        if (json_integer_value (json_object_get (header, "type")) != AR_EVENTSTREAM_STRING)
            continue;
        size_t len = 0;
        const char *name = json_string_value (json_object_get (header, "name"));
        const char *value = ar_eventstream_header_string (msg, name, &len);
        assert (value && len == msg->headers[i].value_len &&
                value == (const char *)msg->headers[i].value);
    }
    assert (!ar_eventstream_header_string (msg, ":no-such-header", NULL));
    return 0;
}

//  Feed bytes to a new decoder in pieces of piece bytes (0: random sizes), then finish. Returns
//  -1 if a feed failed, else finish's result; *failed_at gets the offset of the piece that
//  failed (its last byte).
static int s_decode (const uint8_t *bytes, size_t len, size_t piece, size_t cap,
                     ar_eventstream_fn *fn, void *arg, size_t *failed_at)
{
    ar_eventstream_decoder_t *decoder = ar_eventstream_decoder_new (cap);
    assert (decoder);
    int rc = 0;
    size_t at = 0;
    while (at < len) {
        size_t size = piece ? piece : 1 + s_rand () % (s_rand () % 4 == 0 ? 512 : 24);
        if (size > len - at)
            size = len - at;
        if (ar_eventstream_decoder_feed (decoder, bytes + at, size, fn, arg) != 0) {
            rc = -1;
            if (failed_at)
                *failed_at = at + size - 1;
            //  Refused from now on, even nothing at all.
            assert (ar_eventstream_decoder_feed (decoder, bytes, 0, fn, arg) == -1);
            assert (ar_eventstream_decoder_finish (decoder) == -1);
            break;
        }
        at += size;
    }
    if (rc == 0)
        rc = ar_eventstream_decoder_finish (decoder);
    ar_eventstream_decoder_destroy (&decoder);
    assert (!decoder);
    return rc;
}

//  Every message a decode delivered, by where it ends and its CRC.
typedef struct {
    size_t ends[64];
    uint32_t crcs[64];
    size_t count;
    size_t offset;     // running end of the messages seen
    size_t stop_after; // the callback stops after this many (0: never)
} s_trace_t;

static int s_trace_cb (const ar_eventstream_message_t *msg, void *arg)
{
    s_trace_t *trace = arg;
    assert (trace->count < 64);
    trace->offset += msg->total_length;
    trace->ends[trace->count] = trace->offset;
    trace->crcs[trace->count++] = msg->message_crc;
    //  Everything the message points at lies inside it.
    assert (msg->payload_len == msg->total_length - 16 - msg->headers_length);
    return trace->stop_after && trace->count == trace->stop_after;
}

static void s_check_positive (const char *name)
{
    char path[512];
    size_t len;
    snprintf (path, sizeof path, "%s/encoded/positive/%s", s_VECTORS, name);
    uint8_t *bytes = s_read (path, &len);
    snprintf (path, sizeof path, "%s/decoded/positive/%s", s_VECTORS, name);
    json_error_t error;
    json_t *decoded = json_load_file (path, 0, &error);
    assert (decoded);
    s_expect_t expect = {json_array (), true, 0};
    json_array_append_new (expect.messages, decoded);
    //  Whole, a byte at a time, in small fixed pieces and in random ones.
    const size_t pieces[] = {len, 1, 2, 3, 5, 13, 0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        expect.seen = 0;
        assert (s_decode (bytes, len, pieces[i], s_CAP, s_compare_cb, &expect, NULL) == 0);
        assert (expect.seen == 1);
    }
    json_decref (expect.messages);
    free (bytes);
}

static void s_check_negative (const char *name)
{
    char path[512];
    size_t len, reason_len;
    snprintf (path, sizeof path, "%s/encoded/negative/%s", s_VECTORS, name);
    uint8_t *bytes = s_read (path, &len);
    snprintf (path, sizeof path, "%s/decoded/negative/%s", s_VECTORS, name);
    char *reason = (char *)s_read (path, &reason_len);
    s_trace_t trace = {0};
    size_t failed_at = 0;
    assert (s_decode (bytes, len, len, s_CAP, s_trace_cb, &trace, &failed_at) == -1);
    assert (trace.count == 0);
    //  A byte at a time, the failure comes as soon as the broken CRC can be checked: the
    //  prelude's at its 12th byte, the message's at its last.
    assert (s_decode (bytes, len, 1, s_CAP, s_trace_cb, &trace, &failed_at) == -1);
    assert (trace.count == 0);
    if (strstr (reason, "Prelude checksum mismatch"))
        assert (failed_at == 11);
    else {
        assert (strstr (reason, "Message checksum mismatch"));
        assert (failed_at == len - 1);
    }
    free (reason);
    free (bytes);
}

//  Decode name.bin against name.json, and encode name.json to exactly name.bin's bytes.
static void s_check_bedrock (const char *name, ar_buf_t *stream)
{
    char path[512];
    size_t len;
    snprintf (path, sizeof path, "%s/%s.bin", s_VECTORS, name);
    uint8_t *bytes = s_read (path, &len);
    snprintf (path, sizeof path, "%s/%s.json", s_VECTORS, name);
    json_error_t error;
    s_expect_t expect = {json_load_file (path, 0, &error), false, 0};
    assert (json_is_array (expect.messages) && json_array_size (expect.messages) >= 2);
    const size_t pieces[] = {len, 1, 7, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        expect.seen = 0;
        assert (s_decode (bytes, len, pieces[i], s_CAP, s_compare_cb, &expect, NULL) == 0);
        assert (expect.seen == json_array_size (expect.messages));
    }
    ar_buf_t encoded = {0};
    size_t index;
    json_t *message;
    json_array_foreach (expect.messages, index, message)
    {
        const char *names[8], *values[8];
        json_t *headers = json_object_get (message, "headers");
        size_t count = json_array_size (headers);
        assert (count <= 8);
        for (size_t i = 0; i < count; i++) {
            names[i] = json_string_value (json_object_get (json_array_get (headers, i), "name"));
            values[i] = json_string_value (json_object_get (json_array_get (headers, i), "value"));
        }
        const char *payload = json_string_value (json_object_get (message, "payload"));
        assert (ar_eventstream_encode (names, values, count, payload, strlen (payload), &encoded) ==
                0);
    }
    assert (encoded.len == len && memcmp (encoded.data, bytes, len) == 0);
    assert (ar_buf_add (stream, bytes, len) == 0);
    ar_buf_free (&encoded);
    json_decref (expect.messages);
    free (bytes);
}

//  What went into the encoder, to compare with what comes out of the decoder.
typedef struct {
    const char *const *names;
    const char *const *values;
    size_t count;
    const uint8_t *payload;
    size_t payload_len;
    size_t seen;
} s_roundtrip_t;

static int s_roundtrip_cb (const ar_eventstream_message_t *msg, void *arg)
{
    s_roundtrip_t *expect = arg;
    expect->seen++;
    assert (msg->header_count == expect->count);
    for (size_t i = 0; i < expect->count; i++) {
        const ar_eventstream_header_t *header = &msg->headers[i];
        assert (header->type == AR_EVENTSTREAM_STRING);
        assert (header->name_len == strlen (expect->names[i]));
        assert (memcmp (header->name, expect->names[i], header->name_len) == 0);
        assert (header->value_len == strlen (expect->values[i]));
        assert (memcmp (header->value, expect->values[i], header->value_len) == 0);
    }
    assert (msg->payload_len == expect->payload_len);
    assert (memcmp (msg->payload, expect->payload, msg->payload_len) == 0);
    return 0;
}

//  Recompute both CRCs of a hand-made message of total bytes.
static void s_reseal (uint8_t *bytes, size_t total)
{
    s_put_be32 (bytes + 8, s_crc (bytes, 8));
    s_put_be32 (bytes + total - 4, s_crc (bytes, total - 4));
}

static int s_count_cb (const ar_eventstream_message_t *msg, void *arg)
{
    (*(size_t *)arg)++;
    return 0;
}

//  A message built from raw header bytes (and a 3-byte payload), with good CRCs.
static int s_decode_crafted (const uint8_t *headers, size_t headers_len)
{
    uint8_t bytes[256];
    size_t total = 16 + headers_len + 3;
    assert (total <= sizeof bytes);
    s_put_be32 (bytes, (uint32_t)total);
    s_put_be32 (bytes + 4, (uint32_t)headers_len);
    memcpy (bytes + 12, headers, headers_len);
    memcpy (bytes + 12 + headers_len, "abc", 3);
    s_reseal (bytes, total);
    size_t count = 0;
    int rc = s_decode (bytes, total, total, s_CAP, s_count_cb, &count, NULL);
    assert (rc == 0 ? count == 1 : count == 0);
    return rc;
}

void ar_eventstream_test (bool verbose)
{
    if (verbose)
        printf (" * ar_eventstream: ");
    //  @selftest
    //  The official vectors (from aws-sdk-go, see the README): each positive one decodes to
    //  its JSON, each negative one is refused where its CRC says.
    const char *kinds[] = {"positive", "negative"};
    ar_buf_t stream = {0}; // every good message, back to back, for the stream tests below
    size_t counts[2] = {0, 0};
    for (size_t k = 0; k < 2; k++) {
        char dir_path[512];
        snprintf (dir_path, sizeof dir_path, "%s/encoded/%s", s_VECTORS, kinds[k]);
        DIR *dir = opendir (dir_path);
        assert (dir);
        for (struct dirent *entry = readdir (dir); entry; entry = readdir (dir)) {
            if (entry->d_name[0] == '.')
                continue;
            if (k == 0) {
                s_check_positive (entry->d_name);
                char path[1024];
                size_t len;
                snprintf (path, sizeof path, "%s/%s", dir_path, entry->d_name);
                uint8_t *bytes = s_read (path, &len);
                assert (ar_buf_add (&stream, bytes, len) == 0);
                free (bytes);
            } else
                s_check_negative (entry->d_name);
            counts[k]++;
        }
        closedir (dir);
    }
    assert (counts[0] == 5 && counts[1] == 4);

    //  Bedrock's framing as AWS's own codec writes it: decoded right, and our encoder writes
    //  the very same bytes.
    s_check_bedrock ("bedrock-converse-stream", &stream);
    s_check_bedrock ("bedrock-exception", &stream);

    //  All of it as one stream: the same messages however it is cut into pieces.
    const uint8_t *all = (const uint8_t *)stream.data;
    s_trace_t whole = {0};
    assert (s_decode (all, stream.len, stream.len, s_CAP, s_trace_cb, &whole, NULL) == 0);
    assert (whole.count == 5 + 6 + 2 && whole.ends[whole.count - 1] == stream.len);
    for (int round = 0; round < 300; round++) {
        s_trace_t trace = {0};
        assert (s_decode (all, stream.len, 0, s_CAP, s_trace_cb, &trace, NULL) == 0);
        assert (trace.count == whole.count);
        assert (memcmp (trace.crcs, whole.crcs, whole.count * sizeof whole.crcs[0]) == 0);
    }
    //  Cut anywhere: the messages before the cut come out, the stream does not end cleanly
    //  unless the cut falls between messages.
    for (size_t cut = 0; cut <= stream.len; cut++) {
        s_trace_t trace = {0};
        int rc = s_decode (all, cut, 0, s_CAP, s_trace_cb, &trace, NULL);
        size_t complete = 0;
        while (complete < whole.count && whole.ends[complete] <= cut)
            complete++;
        assert (trace.count == complete);
        bool boundary = cut == 0 || (complete > 0 && whole.ends[complete - 1] == cut);
        assert (rc == (boundary ? 0 : -1));
    }
    //  One byte changed anywhere: CRC-32 catches every error burst up to 32 bits, so exactly
    //  the messages before the damaged one come out, then -1.
    uint8_t *damaged = malloc (stream.len);
    assert (damaged);
    for (int round = 0; round < 2000; round++) {
        memcpy (damaged, all, stream.len);
        size_t at = s_rand () % stream.len;
        damaged[at] ^= (uint8_t)(1 + s_rand () % 255);
        s_trace_t trace = {0};
        assert (s_decode (damaged, stream.len, 0, s_CAP, s_trace_cb, &trace, NULL) == -1);
        size_t before = 0;
        while (whole.ends[before] <= at)
            before++;
        assert (trace.count == before);
    }
    free (damaged);

    //  Random bytes, and random messages whose CRCs are right but whose insides are not:
    //  refused or decoded, never read out of bounds (the ASan build checks that).
    uint8_t noise[512];
    size_t decoded = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = s_rand () % sizeof noise;
        for (size_t i = 0; i < len; i++)
            noise[i] = (uint8_t)s_rand ();
        if (len >= 16 && round % 2) {
            uint32_t headers_len = s_rand () % (uint32_t)(len - 15);
            s_put_be32 (noise, (uint32_t)len);
            s_put_be32 (noise + 4, headers_len);
            //  Mostly short, plausible headers: a type from the list, small lengths.
            for (size_t i = 12; i < 12 + headers_len; i++)
                if (s_rand () % 2)
                    noise[i] = (uint8_t)(s_rand () % 12);
            s_reseal (noise, len);
        }
        s_trace_t trace = {0};
        if (s_decode (noise, len, round % 3 ? len : 0, 1024, s_trace_cb, &trace, NULL) == 0)
            decoded += trace.count;
    }
    assert (decoded > 0); // some crafted messages were well formed, and they decoded

    //  Hand-made messages with good CRCs but impossible insides.
    const uint8_t good[] = {1, 'a', 7, 0, 2, 'h', 'i', 1, 'b', 0, 1, 'c', 2, 0xff};
    assert (s_decode_crafted (good, sizeof good) == 0);
    const uint8_t long_string[] = {1, 'a', 7, 0, 9, 'h', 'i'};
    assert (s_decode_crafted (long_string, sizeof long_string) == -1);
    const uint8_t short_length[] = {1, 'a', 7, 0};
    assert (s_decode_crafted (short_length, sizeof short_length) == -1);
    const uint8_t empty_name[] = {0, 0};
    assert (s_decode_crafted (empty_name, sizeof empty_name) == -1);
    const uint8_t long_name[] = {9, 'a', 'b'};
    assert (s_decode_crafted (long_name, sizeof long_name) == -1);
    const uint8_t no_type[] = {1, 'a'};
    assert (s_decode_crafted (no_type, sizeof no_type) == -1);
    const uint8_t unknown_type[] = {1, 'a', 10};
    assert (s_decode_crafted (unknown_type, sizeof unknown_type) == -1);
    const uint8_t short_uuid[] = {1, 'u', 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    assert (s_decode_crafted (short_uuid, sizeof short_uuid) == -1);
    const uint8_t short_long[] = {1, 'l', 5, 0, 0, 0, 0, 0, 0, 1};
    assert (s_decode_crafted (short_long, sizeof short_long) == -1);
    //  Prelude lengths that cannot be: shorter than an empty message, headers past the end.
    uint8_t bad[32] = {0};
    s_put_be32 (bad, 12);
    s_put_be32 (bad + 8, s_crc (bad, 8));
    assert (s_decode (bad, 16, 16, s_CAP, s_count_cb, &decoded, NULL) == -1);
    s_put_be32 (bad, 32);
    s_put_be32 (bad + 4, 17);
    s_reseal (bad, 32);
    assert (s_decode (bad, 32, 32, s_CAP, s_count_cb, &decoded, NULL) == -1);
    s_put_be32 (bad + 4, 16);
    s_reseal (bad, 32);
    size_t count = 0;
    assert (s_decode (bad, 32, 32, s_CAP, s_count_cb, &count, NULL) == -1); // 16 zero bytes
    //  Over the cap: refused once the prelude is in, before the rest is waited for.
    size_t failed_at = 0;
    assert (s_decode (all, stream.len, 1, 15, s_count_cb, &count, &failed_at) == -1);
    assert (failed_at == 11 && count == 0);

    //  Header counts: 32 decode, 33 are refused.
    const char *names[33], *values[33];
    char name_store[33][4];
    for (size_t i = 0; i < 33; i++) {
        snprintf (name_store[i], sizeof name_store[i], "h%zu", i);
        names[i] = name_store[i];
        values[i] = "v";
    }
    ar_buf_t frame = {0};
    assert (ar_eventstream_encode (names, values, 32, "x", 1, &frame) == 0);
    count = 0;
    assert (s_decode ((uint8_t *)frame.data, frame.len, frame.len, s_CAP, s_count_cb, &count,
                      NULL) == 0);
    assert (count == 1);
    ar_buf_free (&frame);
    assert (ar_eventstream_encode (names, values, 33, "x", 1, &frame) == 0);
    assert (s_decode ((uint8_t *)frame.data, frame.len, frame.len, s_CAP, s_count_cb, &count,
                      NULL) == -1);
    ar_buf_free (&frame);

    //  Round trip: random string headers and a binary payload come back as they went in.
    for (int round = 0; round < 500; round++) {
        char name_text[5][32], value_text[5][300];
        const char *round_names[5], *round_values[5];
        size_t header_count = s_rand () % 6;
        for (size_t i = 0; i < header_count; i++) {
            size_t name_len = 1 + s_rand () % 31, value_len = s_rand () % 300;
            for (size_t j = 0; j < name_len; j++)
                name_text[i][j] = (char)(1 + s_rand () % 255);
            name_text[i][name_len] = 0;
            for (size_t j = 0; j < value_len; j++)
                value_text[i][j] = (char)(1 + s_rand () % 255);
            value_text[i][value_len] = 0;
            round_names[i] = name_text[i];
            round_values[i] = value_text[i];
        }
        uint8_t payload[400];
        size_t payload_len = s_rand () % sizeof payload;
        for (size_t i = 0; i < payload_len; i++)
            payload[i] = (uint8_t)s_rand ();
        assert (ar_eventstream_encode (round_names, round_values, header_count, payload,
                                       payload_len, &frame) == 0);
        s_roundtrip_t expect = {round_names, round_values, header_count, payload, payload_len, 0};
        assert (s_decode ((uint8_t *)frame.data, frame.len, 0, s_CAP, s_roundtrip_cb, &expect,
                          NULL) == 0);
        assert (expect.seen == 1);
        ar_buf_free (&frame);
    }

    //  The encoder refuses what the framing cannot carry, and leaves out alone.
    static char long_text[65537]; // 65536 bytes: one too many for a value
    char name_text[257];          // 256 bytes: one too many for a name
    memset (long_text, 'x', sizeof long_text - 1);
    memset (name_text, 'n', sizeof name_text - 1);
    long_text[sizeof long_text - 1] = 0;
    name_text[sizeof name_text - 1] = 0;
    const char *empty[] = {""}, *long_value[] = {long_text}, *max_name[] = {name_text},
               *one[] = {"a"};
    assert (ar_eventstream_encode (empty, one, 1, NULL, 0, &frame) == -1);
    assert (ar_eventstream_encode (one, long_value, 1, NULL, 0, &frame) == -1);
    assert (ar_eventstream_encode (max_name, one, 1, NULL, 0, &frame) == -1);
    assert (ar_eventstream_encode (NULL, NULL, 1, NULL, 0, &frame) == -1);
    assert (ar_eventstream_encode (one, one, 1, NULL, 5, &frame) == -1);
    assert (frame.len == 0);
    //  One byte less of each is the most the framing carries.
    name_text[255] = 0;
    long_text[65535] = 0;
    assert (ar_eventstream_encode (max_name, long_value, 1, NULL, 0, &frame) == 0);
    assert (frame.len == 16 + 1 + 255 + 1 + 2 + 65535);
    count = 0;
    assert (s_decode ((uint8_t *)frame.data, frame.len, 4096, s_CAP, s_count_cb, &count, NULL) ==
            0);
    assert (count == 1);
    ar_buf_free (&frame);

    //  A callback that stops: the messages after it are not delivered, the decoder is done.
    s_trace_t stopper = {.stop_after = 2};
    assert (s_decode (all, stream.len, stream.len, s_CAP, s_trace_cb, &stopper, NULL) == -1);
    assert (stopper.count == 2);
    stopper = (s_trace_t){.stop_after = 2};
    assert (s_decode (all, stream.len, 1, s_CAP, s_trace_cb, &stopper, NULL) == -1);
    assert (stopper.count == 2);
    ar_buf_free (&stream);
    //  @end
    if (verbose)
        printf ("OK\n");
}
