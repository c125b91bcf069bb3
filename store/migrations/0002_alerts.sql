-- flaglens store, schema version 2: alert state, history and the notification outbox.

-- The current state of every alert instance the evaluator knows, by fingerprint.
CREATE TABLE alert_state (
    fingerprint       VARCHAR PRIMARY KEY,        -- sha256 of the sorted label set (16 hex)
    rule              VARCHAR NOT NULL,
    labels            JSON NOT NULL,
    annotations       JSON NOT NULL,
    state             VARCHAR NOT NULL,           -- 'pending' | 'firing' | 'resolved'
    active_since      TIMESTAMPTZ NOT NULL,       -- first evaluation the condition held
    fired_at          TIMESTAMPTZ,
    resolved_at       TIMESTAMPTZ,
    last_notified_at  TIMESTAMPTZ,
    value             DOUBLE                      -- the measured value at the last evaluation
);

-- Every state transition, for audits and the dashboards.
CREATE TABLE alert_history (
    changed_at        TIMESTAMPTZ NOT NULL,
    fingerprint       VARCHAR NOT NULL,
    rule              VARCHAR NOT NULL,
    labels            JSON NOT NULL,
    from_state        VARCHAR,
    to_state          VARCHAR NOT NULL,
    value             DOUBLE
);

-- Notifications waiting for (or done with) delivery: retried with backoff until delivered.
CREATE TABLE alert_outbox (
    id                BIGINT PRIMARY KEY,
    created_at        TIMESTAMPTZ NOT NULL,
    group_key         VARCHAR NOT NULL,
    status            VARCHAR NOT NULL,           -- payload status: 'firing' | 'resolved'
    payload           JSON NOT NULL,              -- Alertmanager webhook payload, version 4
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ NOT NULL,
    delivered_at      TIMESTAMPTZ,
    last_error        VARCHAR
);
