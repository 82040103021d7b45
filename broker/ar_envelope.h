/*  ar_envelope: the message envelope every hop carries (schemas/envelope.md).

    A message on the wire is ZeroMQ multipart:
        frame 0  "ARB1"      protocol tag + major version
        frame 1  command     one byte (ar_cmd_t)
        frame 2  envelope    msgpack map with small integer keys
        frame 3  body        opaque bytes, absent for control commands
    The broker reads frames 0-2 and never frame 3. Unknown envelope keys are kept as raw
    msgpack and re-emitted unchanged, so a newer minor version passes through older hops.
    Frames are size-checked and pre-validated before msgpack-c allocates anything.
*/
#ifndef AR_ENVELOPE_H
#define AR_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>

#define AR_PROTO_TAG      "ARB1"
#define AR_PROTO_TAG_LEN  4
#define AR_PROTO_MINOR    0
#define AR_ENVELOPE_MAX   4096 // bytes of frame 2
#define AR_ID_LEN         16
#define AR_META_MAX       32 // entries
#define AR_META_BYTES_MAX 1024
#define AR_SERVICE_MAX    64
#define AR_KIND_MAX       32
#define AR_REASON_MAX     128
#define AR_UNKNOWN_MAX    256 // bytes of unknown keys carried through

typedef enum {
    AR_CMD_READY = 0x01,
    AR_CMD_REQUEST = 0x02,
    AR_CMD_CHUNK = 0x03,
    AR_CMD_END = 0x04,
    AR_CMD_ERROR = 0x05,
    AR_CMD_CANCEL = 0x06,
    AR_CMD_HEARTBEAT = 0x07,
    AR_CMD_DISCONNECT = 0x08,
    AR_CMD_CREDIT = 0x09,
} ar_cmd_t;

//  Envelope keys (schemas/envelope.md is the source of truth).
typedef enum {
    AR_KEY_MINOR = 0,
    AR_KEY_ID = 1,
    AR_KEY_TRACE = 2,
    AR_KEY_DEADLINE = 3,
    AR_KEY_BUDGET = 4,
    AR_KEY_SERVICE = 5,
    AR_KEY_KIND = 6,
    AR_KEY_SEQ = 7,
    AR_KEY_ATTEMPT = 8,
    AR_KEY_META = 9,
    AR_KEY_BODY_TYPE = 10,
    AR_KEY_STATUS = 11,
    AR_KEY_CREDIT = 12,
    AR_KEY_HEARTBEAT = 13,
    AR_KEY_INSTANCE = 14,
} ar_key_t;

//  Status reasons the broker and runtime use in ERROR (status.reason).
#define AR_REASON_EXPIRED     "EXPIRED"
#define AR_REASON_NO_WORKER   "NO_WORKER"
#define AR_REASON_OVERLOADED  "OVERLOADED"
#define AR_REASON_WORKER_LOST "WORKER_LOST"
#define AR_REASON_MALFORMED   "MALFORMED"
#define AR_REASON_VERSION     "UNSUPPORTED_VERSION"
#define AR_REASON_CANCELLED   "CANCELLED"

//  Plain value type: fixed-size, no heap, cheap to copy. Fields with a has_ flag are optional.
typedef struct {
    uint32_t minor;
    uint8_t id[AR_ID_LEN];
    bool has_trace;
    uint8_t trace[AR_ID_LEN];
    uint64_t deadline_ms; // absolute, Unix epoch ms (wall clock); 0 = none
    uint32_t budget_ms;   // ms left at send time; 0 = not given
    char service[AR_SERVICE_MAX + 1];
    char kind[AR_KIND_MAX + 1];
    uint32_t seq;
    uint8_t attempt;
    char body_type[AR_KIND_MAX + 1];
    bool has_status;
    uint16_t status_code;
    char status_reason[AR_REASON_MAX + 1];
    uint16_t credit;
    uint32_t heartbeat_ms;
    char instance[AR_SERVICE_MAX + 1];
    //  Metadata, packed: entry i is the NUL-terminated key at meta_data + meta_off[i], its
    //  NUL-terminated value right after. Use the meta_* functions, not these fields.
    size_t meta_count;
    uint16_t meta_used;
    uint16_t meta_off[AR_META_MAX];
    char meta_data[AR_META_BYTES_MAX + 2 * AR_META_MAX];
    size_t unknown_len; // raw msgpack key/value pairs we did not understand, in order
    size_t unknown_count;
    uint8_t unknown[AR_UNKNOWN_MAX];
} ar_envelope_t;

//  Reset to an empty envelope (minor = AR_PROTO_MINOR).
void ar_envelope_init (ar_envelope_t *self);

//  Fill id with 16 random bytes (time-ordered prefix: 6 bytes of epoch ms, then random).
void ar_envelope_new_id (ar_envelope_t *self);

//  Lower-case hex of the id into out (33 bytes).
void ar_envelope_id_hex (const ar_envelope_t *self, char *out);

//  Set a metadata entry (replaces an existing key). Returns -1 if the map is full or the key or
//  value is too long (the entry is then not set).
int ar_envelope_meta_set (ar_envelope_t *self, const char *key, const char *value);

//  Metadata value or NULL.
const char *ar_envelope_meta_get (const ar_envelope_t *self, const char *key);

//  Entry i (0 <= i < meta_count) as key and value.
void ar_envelope_meta_at (const ar_envelope_t *self, size_t i, const char **key,
                          const char **value);

void ar_envelope_set_status (ar_envelope_t *self, uint16_t code, const char *reason);

//  Encode into buf. Returns bytes written, or -1 if it does not fit.
int ar_envelope_encode (const ar_envelope_t *self, uint8_t *buf, size_t size);

//  Bounded walk of untrusted msgpack: every container count must fit in the bytes left, depth
//  is capped. Returns 0 if data is one well-formed object of exactly size bytes, else -1.
int ar_msgpack_prevalidate (const uint8_t *data, size_t size, int max_depth);

//  Decode frame 2. Returns 0, or -1 with a short reason in *error (static string).
int ar_envelope_decode (ar_envelope_t *self, const uint8_t *data, size_t size, const char **error);

//  Frame 0 check: 0 = our tag, -1 = not ours at all (drop), -2 = ours but another major.
int ar_envelope_check_tag (const uint8_t *data, size_t size);

void ar_envelope_test (bool verbose);

#endif
