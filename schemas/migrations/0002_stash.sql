-- 0002_stash: the reversible stash. Originals a strategy removed from a request, encrypted with
-- AES-256-GCM under ANYRAY_CONTENT_KEY; only ciphertext is ever stored. Read back by id
-- (POST /v1/retrieve) until expires_ms, then deleted by a sweep.
-- Portable SQL: runs unchanged on SQLite 3.24+ and PostgreSQL 9.5+ (see README.md).
-- Binary columns are BYTEA: PostgreSQL's binary type (it has no BLOB). SQLite accepts any type
-- name; BYTEA gets NUMERIC affinity there, which never converts a bound BLOB value, so the
-- bytes are stored as a BLOB unchanged. Times are Unix epoch milliseconds.

CREATE TABLE IF NOT EXISTS stash (
    id         TEXT PRIMARY KEY,   -- 32 lower-case hex digits (16 random bytes); also the AAD
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,    -- bound into the AAD too: editing it voids the row
    nonce      BYTEA NOT NULL,     -- 12 random bytes, fresh per row
    tag        BYTEA NOT NULL,     -- 16-byte GCM authentication tag
    ciphertext BYTEA NOT NULL      -- same length as the original
);

CREATE INDEX IF NOT EXISTS stash_expires_ms ON stash (expires_ms);
