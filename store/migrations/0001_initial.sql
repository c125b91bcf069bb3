-- flaglens store, schema version 1.
-- Every timestamp is TIMESTAMPTZ in UTC (the connection pins TimeZone = 'UTC').
-- Typed columns hold what analytics read; `attributes` keeps the whole canonical record as JSON.

-- One row per accepted feature_flag.evaluation event (log record or span event).
CREATE TABLE decisions (
    time                  TIMESTAMPTZ NOT NULL,   -- event time (log time / span event time)
    observed_time         TIMESTAMPTZ,
    ingested_at           TIMESTAMPTZ NOT NULL,   -- commit time of the writer's group
    decision_id           VARCHAR NOT NULL,       -- decision.id, unique per decision
    service_name          VARCHAR NOT NULL,       -- resource service.name
    environment           VARCHAR NOT NULL,       -- resource deployment.environment.name
    flag_key              VARCHAR NOT NULL,       -- feature_flag.key
    flag_version          VARCHAR NOT NULL,       -- feature_flag.version
    variant               VARCHAR,                -- feature_flag.result.variant
    value                 JSON,                   -- feature_flag.result.value
    reason                VARCHAR,                -- feature_flag.result.reason
    provider_name         VARCHAR,                -- feature_flag.provider.name
    subject_id            VARCHAR,                -- feature_flag.context.id
    set_id                VARCHAR,                -- feature_flag.set.id
    policy_module         VARCHAR NOT NULL,       -- policy.module
    rule_id               VARCHAR,                -- policy.rule.id
    cohort_id             VARCHAR,                -- cohort.id
    error_type            VARCHAR,                -- error.type
    privacy_purpose       VARCHAR,                -- privacy.purpose
    privacy_consent_state VARCHAR,                -- privacy.consent.state
    source                VARCHAR NOT NULL,       -- 'log' | 'span_event'
    trace_id              VARCHAR,                -- hex
    span_id               VARCHAR,                -- hex
    contract_id           VARCHAR NOT NULL,
    contract_version      VARCHAR NOT NULL,
    renamed_attributes    VARCHAR[],              -- legacy names mapped forward, as 'old->new'
    attributes            JSON NOT NULL,          -- the whole canonical record
    request_id            BIGINT NOT NULL         -- ingest_log.request_id
);

-- One row per accepted policy.change event: the change ledger.
CREATE TABLE policy_changes (
    time              TIMESTAMPTZ NOT NULL,
    ingested_at       TIMESTAMPTZ NOT NULL,
    change_id         VARCHAR NOT NULL,           -- policy.change.id
    service_name      VARCHAR NOT NULL,           -- the emitting control plane
    environment       VARCHAR NOT NULL,           -- deployment.environment.name
    flag_key          VARCHAR NOT NULL,           -- feature_flag.key
    policy_module     VARCHAR NOT NULL,           -- policy.module
    actor             VARCHAR NOT NULL,           -- policy.change.actor
    action            VARCHAR NOT NULL,           -- policy.change.action
    previous_version  VARCHAR,                    -- policy.change.previous_version
    version           VARCHAR NOT NULL,           -- feature_flag.version (the new one)
    approvers         VARCHAR[],                  -- policy.change.approvers
    ticket            VARCHAR,                    -- policy.change.ticket
    key_id            VARCHAR,                    -- policy.change.key_id
    signature         VARCHAR,                    -- policy.change.signature (base64)
    contract_id       VARCHAR NOT NULL,
    contract_version  VARCHAR NOT NULL,
    attributes        JSON NOT NULL,              -- the whole canonical record (signature input)
    request_id        BIGINT NOT NULL
);

-- One row per accepted user.engagement event.
CREATE TABLE engagement (
    time              TIMESTAMPTZ NOT NULL,
    ingested_at       TIMESTAMPTZ NOT NULL,
    service_name      VARCHAR NOT NULL,
    environment       VARCHAR NOT NULL,
    subject_id        VARCHAR NOT NULL,           -- user.id (joins decisions.subject_id)
    cohort_id         VARCHAR,                    -- cohort.id
    action            VARCHAR NOT NULL,           -- engagement.action
    contract_id       VARCHAR NOT NULL,
    contract_version  VARCHAR NOT NULL,
    attributes        JSON NOT NULL,
    request_id        BIGINT NOT NULL
);

-- One row per accepted span (the SLI source for availability and latency).
CREATE TABLE spans (
    start_time        TIMESTAMPTZ NOT NULL,
    end_time          TIMESTAMPTZ NOT NULL,
    ingested_at       TIMESTAMPTZ NOT NULL,
    duration_ms       DOUBLE NOT NULL,
    service_name      VARCHAR NOT NULL,
    environment       VARCHAR,
    name              VARCHAR NOT NULL,
    kind              VARCHAR NOT NULL,           -- 'unspecified'|'internal'|'server'|'client'|'producer'|'consumer'
    status_code       VARCHAR NOT NULL,           -- 'unset'|'ok'|'error'
    http_route        VARCHAR,                    -- http.route
    http_method       VARCHAR,                    -- http.request.method
    http_status_code  INTEGER,                    -- http.response.status_code
    trace_id          VARCHAR NOT NULL,           -- hex
    span_id           VARCHAR NOT NULL,           -- hex
    parent_span_id    VARCHAR,                    -- hex
    attributes        JSON NOT NULL,              -- resource + span attributes
    request_id        BIGINT NOT NULL
);

-- Records that broke their contract (or had none), kept whole with every reason.
CREATE TABLE quarantine (
    quarantined_at    TIMESTAMPTZ NOT NULL,
    request_id        BIGINT NOT NULL,
    signal            VARCHAR NOT NULL,           -- 'logs' | 'traces' | 'metrics'
    event_name        VARCHAR,                    -- event name, or 'span' for a span
    service_name      VARCHAR,
    environment       VARCHAR,
    time              TIMESTAMPTZ,
    contract_id       VARCHAR,                    -- NULL when no contract matched
    contract_version  VARCHAR,
    errors            JSON NOT NULL,              -- [{contract, version, pointer, message}]
    record            JSON NOT NULL,              -- the whole canonical record
    status            VARCHAR NOT NULL DEFAULT 'quarantined'  -- 'quarantined' | 'promoted'
);

-- One row per export request, so that received = accepted + rejected always reconciles.
CREATE TABLE ingest_log (
    request_id        BIGINT NOT NULL,
    received_at       TIMESTAMPTZ NOT NULL,
    committed_at      TIMESTAMPTZ,
    transport         VARCHAR NOT NULL,           -- 'http' | 'grpc'
    signal            VARCHAR NOT NULL,           -- 'logs' | 'traces' | 'metrics'
    encoding          VARCHAR,                    -- 'protobuf' | 'json'
    compression       VARCHAR,                    -- 'gzip' | NULL
    body_bytes        BIGINT NOT NULL,
    received          BIGINT NOT NULL,            -- records in the request (OTLP units)
    accepted          BIGINT NOT NULL,
    rejected          BIGINT NOT NULL,
    duplicates        BIGINT NOT NULL,            -- accepted records already stored earlier
    status_code       INTEGER NOT NULL,           -- HTTP status answered
    error             VARCHAR,                    -- why a whole request failed
    services          VARCHAR[]                   -- service.name values seen in the request
);
