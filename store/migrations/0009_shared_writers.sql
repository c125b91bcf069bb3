-- flaglens store, schema version 9: what several writers sharing one store need (a DuckLake;
-- on a DuckDB file the writer is always the same and late_duplicates stays empty).

-- The writer that answered the request (host:pid:random, see store.lease.holder_id). Request
-- ids are unique across writers: each writer's start at its own multiple of 2**32.
ALTER TABLE ingest_log ADD COLUMN writer VARCHAR;

-- Rows removed after their commit because another writer had committed the same record (by
-- its key: decision_id, change_id, trace_id/span_id, point_id) at the same moment; counted per
-- request, so that the ledger's duplicates plus these are every duplicate delivery.
CREATE TABLE late_duplicates (
    removed_at        TIMESTAMPTZ NOT NULL,
    table_name        VARCHAR NOT NULL,           -- 'decisions' | 'policy_changes' | 'spans' | 'metric_points'
    request_id        BIGINT NOT NULL,            -- ingest_log.request_id of the removed rows
    rows              BIGINT NOT NULL
);
