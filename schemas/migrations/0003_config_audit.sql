-- 0003_config_audit: runtime-mutable gateway config and the admin audit log.
-- config_versions keeps every accepted version of each config kind (optimizer, routing,
-- pricing, provider_keys); the admin API appends one, replicas poll MAX(version) per kind as
-- the backstop to the announcement. Bodies are opaque text to the store (provider_keys will
-- hold encrypted values); they are never copied into audit_log.
-- audit_log is content-free: who (actor), what (action, target, a small JSON detail), when.
-- Portable SQL: runs unchanged on SQLite 3.24+ and PostgreSQL 9.5+ (see README.md).
-- Times are Unix epoch milliseconds.

CREATE TABLE IF NOT EXISTS config_versions (
    kind       TEXT NOT NULL,      -- e.g. 'optimizer', 'routing', 'pricing', 'provider_keys'
    version    BIGINT NOT NULL,    -- 1, 2, 3, ... per kind, no gaps (latest + 1 under a lock)
    body       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    actor      TEXT NOT NULL,      -- token id or 'console'; never a token
    PRIMARY KEY (kind, version)    -- two writers can never both commit one version
);

CREATE TABLE IF NOT EXISTS audit_log (
    id     TEXT PRIMARY KEY,       -- 32 lower-case hex digits (16 random bytes)
    ts_ms  BIGINT NOT NULL,        -- strictly increasing in commit order (see ar_config_store.h)
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,          -- e.g. 'config.put', 'content_mode.set', 'admin.unauthorized'
    target TEXT,                   -- e.g. the config kind or a provider slug; never a value
    detail TEXT                    -- compact JSON object, content-free, or NULL
);

CREATE INDEX IF NOT EXISTS audit_log_ts_ms ON audit_log (ts_ms);
