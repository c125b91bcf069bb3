-- flaglens store, schema version 8: quarantined records released by `flaglens quarantine replay`.
-- A quarantined record that passes the contracts loaded now is written to its table through the
-- writer (under the replay's own request id, transport 'replay' in ingest_log); the quarantine
-- row stays as it was and this table says when it was released and under which contract.

CREATE TABLE quarantine_releases (
    released_at           TIMESTAMPTZ NOT NULL,   -- commit time of the replay
    request_id            BIGINT NOT NULL,        -- ingest_log.request_id of the replay
    quarantine_request_id BIGINT NOT NULL,        -- quarantine.request_id of the released row
    record_md5            VARCHAR NOT NULL,       -- md5(quarantine.record::VARCHAR): with the above, the row
    signal                VARCHAR NOT NULL,       -- quarantine.signal ('logs' | 'opa')
    event_name            VARCHAR,
    service_name          VARCHAR,
    target_table          VARCHAR NOT NULL,       -- 'decisions' | 'policy_changes' | 'engagement'
    record_key            VARCHAR,                -- decision.id / policy.change.id (NULL: none)
    contract_id           VARCHAR NOT NULL,       -- the contract it passes now
    contract_version      VARCHAR NOT NULL,
    released_by           VARCHAR NOT NULL        -- the admin token's name, or 'local'
);
