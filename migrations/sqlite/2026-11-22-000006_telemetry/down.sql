DROP VIEW readings;
CREATE TABLE readings (
    device_id BIGINT NOT NULL REFERENCES devices (id),
    metric TEXT NOT NULL,
    ts BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    site_id BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    unit TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    late BOOLEAN NOT NULL,
    PRIMARY KEY (device_id, ts, metric, seq)
) WITHOUT ROWID;
-- The unit is the metric name's suffix after its last `_`.
INSERT INTO readings (device_id, metric, ts, seq, site_id, value, unit, received_at, late)
SELECT t.device_id, m.key, t.ts, t.seq, t.site_id, CAST(m.value AS REAL),
       substr(m.key, length(rtrim(m.key, replace(m.key, '_', ''))) + 1), t.received_at, t.late
FROM telemetry t, json_each(t.metrics) AS m;
DROP TABLE telemetry;
