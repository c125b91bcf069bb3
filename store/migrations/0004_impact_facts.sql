-- flaglens store, schema version 4: the recorded facts of change impact.
-- Written by `flaglens serve` (analytics/impact_facts.py, run with each alert evaluation) for
-- every change whose after window ended at least an hour ago; change impact reads them instead
-- of counting the same decisions, engagement and spans again. Derived data: deleting the rows
-- only makes change impact compute them live until the next refresh.

-- One row per change whose facts are recorded, and the windows they are for (the facts are
-- used only while the change still gets exactly these windows and this flag).
CREATE TABLE impact_windows (
    change_id         VARCHAR NOT NULL,           -- policy_changes.change_id
    flag_key          VARCHAR NOT NULL,
    environment       VARCHAR NOT NULL,
    before_start      TIMESTAMPTZ NOT NULL,       -- [before_start, before_end): before window
    before_end        TIMESTAMPTZ NOT NULL,
    after_start       TIMESTAMPTZ NOT NULL,       -- [after_start, after_end): after window
    after_end         TIMESTAMPTZ NOT NULL,
    recorded_at       TIMESTAMPTZ NOT NULL
);

-- The facts of a recorded change, one row each.
CREATE TABLE impact_facts (
    change_id         VARCHAR NOT NULL,
    kind              VARCHAR NOT NULL,           -- 'service' | 'spans' | 'exposure' | 'latency'
    service           VARCHAR NOT NULL,           -- 'service': it evaluated the flag (affected)
    side              UTINYINT NOT NULL,          -- 0 = before window, 1 = after window (0 for
                                                  -- 'service' and 'latency')
    cohort            VARCHAR,                    -- 'exposure': cohort.id
    total             BIGINT,                     -- 'spans': server spans; 'exposure': exposed subjects
    hits              BIGINT,                     -- 'spans': failed spans; 'exposure': engaged subjects
    -- 'latency': Mann-Whitney U and Hodges-Lehmann shift of the sampled span durations (ms),
    -- after against before (the fields of analytics.stats.ShiftTest)
    latency           STRUCT(n_before BIGINT, n_after BIGINT, u DOUBLE, p_value DOUBLE,
                             shift DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
                             median_before DOUBLE, median_after DOUBLE)
);
