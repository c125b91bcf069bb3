-- flaglens store, schema version 7: recorded change facts know the other changes around them.
-- Change impact now shortens a change's windows to leave out other changes on the same services
-- (or marks it confounded with them), tests the latency tail, and ends each service's budget
-- burn at the next change on it; what it records for a closed change says so. The facts
-- recorded by version 4 are for windows that no longer apply: both tables are made anew, empty
-- (derived data: `flaglens serve` records every closed change again in its next round).
DROP TABLE impact_facts;
DROP TABLE impact_windows;

-- One row per change whose facts are recorded, and what they are for: they are used only while
-- the change has the same flag, environment and reach, and the same other changes inside it.
CREATE TABLE impact_windows (
    change_id         VARCHAR NOT NULL,           -- policy_changes.change_id
    flag_key          VARCHAR NOT NULL,
    environment       VARCHAR NOT NULL,
    reach_start       TIMESTAMPTZ NOT NULL,       -- [reach_start, reach_end): the change's time
    reach_end         TIMESTAMPTZ NOT NULL,       -- +- the half-width, within the data
    candidates        VARCHAR[] NOT NULL,         -- ids of the other changes of the environment
                                                  -- inside the reach, sorted
    recorded_at       TIMESTAMPTZ NOT NULL
);

-- The facts of a recorded change, one row each.
CREATE TABLE impact_facts (
    change_id         VARCHAR NOT NULL,
    kind              VARCHAR NOT NULL,           -- 'service' | 'spans' | 'exposure' | 'latency'
                                                  -- | 'quantile'
    service           VARCHAR NOT NULL,           -- 'service': it evaluated the flag (affected)
    side              UTINYINT NOT NULL,          -- 0 = before window, 1 = after window, 2 =
                                                  -- burn window ('spans' only; 0 for 'service',
                                                  -- 'latency' and 'quantile')
    cohort            VARCHAR,                    -- 'exposure': cohort.id
    total             BIGINT,                     -- 'spans': server spans; 'exposure': exposed subjects
    hits              BIGINT,                     -- 'spans': failed spans; 'exposure': engaged subjects
    -- 'service': its windows once the other changes on it are left out ([start, end); NULL
    -- when no room was left), those changes, the ones too close to leave out, and the end of
    -- its budget-burn window (which starts with the after window)
    before_start      TIMESTAMPTZ,
    before_end        TIMESTAMPTZ,
    after_start       TIMESTAMPTZ,
    after_end         TIMESTAMPTZ,
    adjusted_for      VARCHAR[],
    confounded_with   VARCHAR[],
    burn_until        TIMESTAMPTZ,
    -- 'latency': Mann-Whitney U and Hodges-Lehmann shift of the sampled span durations (ms),
    -- after against before (the fields of analytics.stats.ShiftTest)
    latency           STRUCT(n_before BIGINT, n_after BIGINT, u DOUBLE, p_value DOUBLE,
                             shift DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
                             median_before DOUBLE, median_after DOUBLE),
    -- 'quantile': one percentile of the same samples before and after, with intervals and
    -- Mood's test (the fields of analytics.quantiles.QuantileTest)
    quantile          STRUCT(quantile DOUBLE, n_before BIGINT, n_after BIGINT, before DOUBLE,
                             before_low DOUBLE, before_high DOUBLE, after DOUBLE,
                             after_low DOUBLE, after_high DOUBLE, threshold DOUBLE,
                             above_before BIGINT, above_after BIGINT, z DOUBLE, p_value DOUBLE)
);
