-- Telemetry stored one row per device message instead of one row per metric: a device's message carries a
-- few metrics measured at one instant, and the database's cost of a row (the key's B-tree, the statement's
-- work) is paid once per message instead of once per metric. The per-reading view `readings` keeps every
-- query (and anyone's ad-hoc SQL) reading one row per metric.
--
-- The key (device, ts, seq) makes every write idempotent; a second message with the same key but other
-- metrics (a device without sequence numbers reporting metrics separately) is merged into the row by the
-- gateway, first value of a metric winning, exactly as the per-metric key (device, ts, metric, seq) did.
-- No REFERENCES devices: the only writer (the gateway) writes ids it read from `devices`, and devices are
-- disabled, never deleted (the PostgreSQL table drops it for its cost; both backends keep one design).
CREATE TABLE telemetry (
    device_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    site_id BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    late BOOLEAN NOT NULL,
    -- The readings as a JSON object, metric name (with its unit suffix) → finite number.
    metrics TEXT NOT NULL,
    PRIMARY KEY (device_id, ts, seq)
) WITHOUT ROWID;

INSERT INTO telemetry (device_id, ts, seq, site_id, received_at, late, metrics)
SELECT device_id, ts, seq, min(site_id), min(received_at), max(late), json_group_object(metric, value)
FROM (SELECT * FROM readings ORDER BY device_id, ts, seq, metric)
GROUP BY device_id, ts, seq;
DROP TABLE readings;

-- One row per reading, as before.
CREATE VIEW readings AS
SELECT t.device_id AS device_id, m.key AS metric, t.ts AS ts, t.seq AS seq, t.site_id AS site_id,
       CAST(m.value AS REAL) AS value, t.received_at AS received_at, t.late AS late
FROM telemetry t, json_each(t.metrics) AS m;
