-- 0001_spend: one content-free row per finished gateway call (no prompt, no response).
-- Portable SQL: runs unchanged on SQLite 3.24+ and PostgreSQL 9.5+ (see README.md).
-- Booleans are INTEGER 0/1; times are Unix epoch milliseconds.

CREATE TABLE IF NOT EXISTS spend (
    request_id    TEXT PRIMARY KEY,
    ts_ms         BIGINT NOT NULL,
    user_id       TEXT,
    team          TEXT,
    session_id    TEXT,
    endpoint      TEXT NOT NULL,
    provider      TEXT,
    model         TEXT,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    latency_ms    INTEGER NOT NULL,
    ttfb_ms       INTEGER NOT NULL,
    status        INTEGER NOT NULL,
    stream        INTEGER NOT NULL CHECK (stream IN (0, 1)),
    optimized     INTEGER NOT NULL CHECK (optimized IN (0, 1)),
    cost_usd      DOUBLE PRECISION
);

CREATE INDEX IF NOT EXISTS spend_ts_ms ON spend (ts_ms);
CREATE INDEX IF NOT EXISTS spend_team_ts_ms ON spend (team, ts_ms);
