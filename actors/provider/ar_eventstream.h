/*  ar_eventstream: the application/vnd.amazon.eventstream binary framing.

    Bedrock's ConverseStream and InvokeModelWithResponseStream answer in this framing instead
    of SSE. Each message is:

        total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (over the 8 bytes before)
        headers | payload | message CRC32 (over everything before it)

    and each header is: name length (u8), name, value type (u8), value. Value types: 0 true,
    1 false (no value bytes), 2 byte, 3 short, 4 int, 5 long (big-endian, 1/2/4/8 bytes),
    6 bytes and 7 string (u16 BE length, then that many bytes), 8 timestamp (i64 BE
    milliseconds), 9 uuid (16 bytes). The CRC is the IEEE CRC-32 (zlib's crc32).

    The decoder takes the body in whatever pieces the transport hands over and calls back once
    per whole message whose lengths and CRCs check out. A message that arrives in one piece is
    decoded where it lies; only a message split across pieces is copied, once, to be completed.
    No length read from the wire is trusted before it is checked against the bytes at hand and
    the cap; the prelude is checked as soon as its 12 bytes are in, so a corrupt length fails
    at once instead of stalling the stream.
*/
#ifndef AR_EVENTSTREAM_H
#define AR_EVENTSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ar_buf.h"

//  Header value types, as on the wire.
enum {
    AR_EVENTSTREAM_TRUE = 0,
    AR_EVENTSTREAM_FALSE = 1,
    AR_EVENTSTREAM_BYTE = 2,
    AR_EVENTSTREAM_SHORT = 3,
    AR_EVENTSTREAM_INT = 4,
    AR_EVENTSTREAM_LONG = 5,
    AR_EVENTSTREAM_BYTES = 6,
    AR_EVENTSTREAM_STRING = 7,
    AR_EVENTSTREAM_TIMESTAMP = 8,
    AR_EVENTSTREAM_UUID = 9
};

//  More headers than this in one message is taken as a bad frame (Bedrock sends three).
#define AR_EVENTSTREAM_MAX_HEADERS 32

//  One header; name and value point into the message's bytes (not NUL-terminated).
typedef struct {
    const char *name;
    size_t name_len;
    uint8_t type;
    const uint8_t *value; // bytes/string: the raw bytes; numbers: big-endian; bools: NULL
    size_t value_len;
} ar_eventstream_header_t;

//  One decoded message, valid only during the callback that receives it.
typedef struct {
    ar_eventstream_header_t headers[AR_EVENTSTREAM_MAX_HEADERS];
    size_t header_count;
    const uint8_t *payload;
    size_t payload_len;
    uint32_t total_length; // the prelude's fields and the two CRCs, as read (and checked)
    uint32_t headers_length;
    uint32_t prelude_crc;
    uint32_t message_crc;
} ar_eventstream_message_t;

//  The value of the first string header with this name, or NULL (not NUL-terminated: *len
//  gets its length when len is not NULL).
const char *ar_eventstream_header_string (const ar_eventstream_message_t *msg, const char *name,
                                          size_t *len);

//  A byte, short, int, long or timestamp header's value, sign-extended; 0 for other types.
int64_t ar_eventstream_header_int (const ar_eventstream_header_t *header);

//  Called for each whole message. Return 0 to go on; anything else stops the decoder.
typedef int (ar_eventstream_fn) (const ar_eventstream_message_t *msg, void *arg);

typedef struct ar_eventstream_decoder_t ar_eventstream_decoder_t;

//  max_message caps one message's total length (say 16 MB), and so what the decoder holds.
ar_eventstream_decoder_t *ar_eventstream_decoder_new (size_t max_message);
void ar_eventstream_decoder_destroy (ar_eventstream_decoder_t **self_p);

//  Take the next len bytes of the stream (a message may be split anywhere, or many may come
//  at once) and call fn for each message they complete. Returns 0, or -1 on a bad frame (CRC
//  mismatch, impossible lengths, over the cap, malformed headers) or when fn stopped; after a
//  -1 the decoder refuses all further input.
int ar_eventstream_decoder_feed (ar_eventstream_decoder_t *self, const void *data, size_t len,
                                 ar_eventstream_fn *fn, void *arg);

//  The stream ended: 0 if no partial message is pending (and no -1 was returned), else -1.
int ar_eventstream_decoder_finish (ar_eventstream_decoder_t *self);

//  Append one message with string headers (names 1..255 bytes, values up to 65535) and the
//  payload to out. Returns 0, or -1 (out unchanged) on a bad argument or no memory.
int ar_eventstream_encode (const char *const *header_names, const char *const *header_values,
                           size_t header_count, const void *payload, size_t payload_len,
                           ar_buf_t *out);

void ar_eventstream_test (bool verbose);

#endif
