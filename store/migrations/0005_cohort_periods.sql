-- flaglens store, schema version 5: recorded cohort engagement of closed periods.
-- Written by `flaglens serve` (analytics/cohort_periods.py, in the same periodic round as the
-- change facts) for every closed period of the recorded widths; the Cohorts page reads them
-- instead of counting the same subjects again. Derived data: deleting the rows of both tables
-- only makes cohort engagement compute them live until the next refresh.

-- Exposed and engaged subjects per period, environment and cohort. Periods are aligned to the
-- epoch: period_start is a multiple of the width since 1970-01-01T00:00Z.
CREATE TABLE cohort_periods (
    width_s           INTEGER NOT NULL,           -- period width in seconds
    period_start      TIMESTAMPTZ NOT NULL,       -- [period_start, period_start + width)
    environment       VARCHAR,                    -- NULL: every environment together (subjects
                                                  -- are distinct over all of them)
    cohort            VARCHAR NOT NULL,           -- cohort.id
    exposed           BIGINT NOT NULL,            -- distinct subjects with a decision
    engaged           BIGINT NOT NULL             -- of those, subjects with an engagement event
);

-- Per width, the span of periods recorded (every period in it, including those with no rows).
CREATE TABLE cohort_periods_span (
    width_s           INTEGER NOT NULL,
    recorded_from     TIMESTAMPTZ NOT NULL,       -- start of the first recorded period
    recorded_until    TIMESTAMPTZ NOT NULL,       -- end of the last recorded period
    recorded_at       TIMESTAMPTZ NOT NULL
);
