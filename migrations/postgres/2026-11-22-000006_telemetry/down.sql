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
) PARTITION BY RANGE (ts);
DO $$
DECLARE
    m DATE := DATE '2025-01-01';
BEGIN
    WHILE m < DATE '2031-01-01' LOOP
        EXECUTE format(
            'CREATE TABLE readings_%s PARTITION OF readings FOR VALUES FROM (%s) TO (%s)',
            to_char(m, 'YYYY_MM'),
            (extract(epoch FROM m::timestamp) * 1000)::bigint,
            (extract(epoch FROM (m + INTERVAL '1 month')::timestamp) * 1000)::bigint
        );
        m := m + INTERVAL '1 month';
    END LOOP;
END $$;
CREATE TABLE readings_default PARTITION OF readings DEFAULT;
INSERT INTO readings (device_id, metric, ts, seq, site_id, value, unit, received_at, late)
SELECT t.device_id, m.key, t.ts, t.seq, t.site_id, m.value::double precision,
       substring(m.key FROM '_([a-z0-9]+)$'), t.received_at, t.late
FROM telemetry t
CROSS JOIN LATERAL json_each_text(t.metrics::json) AS m;
DROP TABLE telemetry;
