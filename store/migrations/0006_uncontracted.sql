-- flaglens store, schema version 6: records no contract claims (`flaglens serve --uncontracted`).
-- A log record with no event name, or one no contract governs (an application's plain logs sent
-- through the same logger provider), is not a policy event. By default it is accepted, counted
-- per service here and not stored; with --uncontracted keep it is stored in `uncontracted`.

-- Per request: how many uncontracted records each service sent (NULL: none).
ALTER TABLE ingest_log ADD COLUMN uncontracted STRUCT(service_name VARCHAR, records BIGINT)[];

-- Uncontracted records kept with --uncontracted keep: a few typed columns and the record.
CREATE TABLE uncontracted (
    time              TIMESTAMPTZ,                -- the record's time (NULL: none sent)
    ingested_at       TIMESTAMPTZ NOT NULL,
    service_name      VARCHAR,
    environment       VARCHAR,
    event_name        VARCHAR,                    -- NULL for a plain log record
    severity_number   INTEGER,
    record            JSON NOT NULL,              -- the whole canonical record
    request_id        BIGINT NOT NULL
);
