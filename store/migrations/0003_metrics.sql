-- flaglens store, schema version 3: metric points for the SLIs, and what was dropped.

-- One row per stored data point, as sent (cumulative points stay cumulative: analytics turn
-- them into per-interval increases per series, which survives restarts of sender and server).
-- Kept: histograms named http.server.request.duration, and every monotonic sum (counter).
CREATE TABLE metric_points (
    time              TIMESTAMPTZ NOT NULL,       -- time_unix_nano: end of the point's interval
    start_time        TIMESTAMPTZ,                -- start_time_unix_nano
    ingested_at       TIMESTAMPTZ NOT NULL,
    point_id          VARCHAR NOT NULL,           -- series + start + time: duplicate detection
    series            VARCHAR NOT NULL,           -- hash of service, environment, metric, attributes
    service_name      VARCHAR NOT NULL,
    environment       VARCHAR,
    metric            VARCHAR NOT NULL,           -- metric name
    unit              VARCHAR,
    kind              VARCHAR NOT NULL,           -- 'histogram' | 'sum'
    temporality       VARCHAR NOT NULL,           -- 'delta' | 'cumulative'
    http_route        VARCHAR,                    -- http.route
    http_method       VARCHAR,                    -- http.request.method
    http_status_code  INTEGER,                    -- http.response.status_code
    count             BIGINT,                     -- histogram: observations
    sum               DOUBLE,                     -- histogram: sum of observations
    bounds            DOUBLE[],                   -- histogram: explicit bucket bounds
    bucket_counts     BIGINT[],                   -- histogram: counts, len(bounds) + 1
    value             DOUBLE,                     -- sum: the counter's value
    attributes        JSON NOT NULL,              -- resource + point attributes
    request_id        BIGINT NOT NULL
);

-- Data points accepted but not kept (other metrics), counted per request and metric.
CREATE TABLE metric_drops (
    ingested_at       TIMESTAMPTZ NOT NULL,
    request_id        BIGINT NOT NULL,
    service_name      VARCHAR,
    metric            VARCHAR NOT NULL,
    kind              VARCHAR NOT NULL,           -- gauge, sum (non-monotonic), histogram, ...
    points            BIGINT NOT NULL
);
