-- 0004_spend_savings: what the optimizer saved on each call, one row per strategy that ran, in
-- pipeline order (seq 0, 1, ...). Content-free: a strategy's kind and two token counts.
-- Portable SQL: runs unchanged on SQLite 3.24+ and PostgreSQL 9.5+ (see README.md).
-- ts_ms is the spend row's, copied so savings sum over a time range without a join. Written in
-- the spend row's transaction, idempotently by (request_id, seq). No CHECK on the counts: the
-- spend store validates them, and a CHECK could not be relaxed later without a table rebuild.

CREATE TABLE IF NOT EXISTS spend_savings (
    request_id    TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    ts_ms         BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    tokens_before BIGINT NOT NULL,
    tokens_after  BIGINT NOT NULL,
    PRIMARY KEY (request_id, seq)
);

CREATE INDEX IF NOT EXISTS spend_savings_ts_ms ON spend_savings (ts_ms);
CREATE INDEX IF NOT EXISTS spend_savings_kind_ts_ms ON spend_savings (kind, ts_ms);
