-- Telemetry stored one row per device message instead of one row per metric: a device's message carries a
-- few metrics measured at one instant, and the database's cost of a row (tuple routing, the key's B-tree,
-- WAL) is paid once per message instead of once per metric. The per-reading view `readings` keeps every
-- query (and anyone's ad-hoc SQL) reading one row per metric.
--
-- The key (device, ts, seq) makes every write idempotent; a second message with the same key but other
-- metrics (a device without sequence numbers reporting metrics separately) is merged into the row by the
-- gateway, first value of a metric winning, exactly as the per-metric key (device, ts, metric, seq) did.
-- No REFERENCES devices: the foreign-key check was half the cost of a row, the only writer (the gateway)
-- writes ids it read from `devices`, and devices are disabled, never deleted.
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
) PARTITION BY RANGE (ts);
DO $$
DECLARE
    m DATE := DATE '2025-01-01';
BEGIN
    WHILE m < DATE '2031-01-01' LOOP
        EXECUTE format(
            'CREATE TABLE telemetry_%s PARTITION OF telemetry FOR VALUES FROM (%s) TO (%s)',
            to_char(m, 'YYYY_MM'),
            (extract(epoch FROM m::timestamp) * 1000)::bigint,
            (extract(epoch FROM (m + INTERVAL '1 month')::timestamp) * 1000)::bigint
        );
        m := m + INTERVAL '1 month';
    END LOOP;
END $$;
CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT;

INSERT INTO telemetry (device_id, ts, seq, site_id, received_at, late, metrics)
SELECT device_id, ts, seq, min(site_id), min(received_at), bool_or(late),
       json_object_agg(metric, value ORDER BY metric)::text
FROM readings
GROUP BY device_id, ts, seq;
DROP TABLE readings;

-- One row per reading, as before.
CREATE VIEW readings AS
SELECT t.device_id, m.key AS metric, t.ts, t.seq, t.site_id, m.value::double precision AS value,
       t.received_at, t.late
FROM telemetry t
CROSS JOIN LATERAL json_each_text(t.metrics::json) AS m;
