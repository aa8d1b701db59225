-- IoT (issue 4): devices, readings, camera images, threshold and no-data rules with their evaluation state,
-- and refusal counts. Times are BIGINT milliseconds since the Unix epoch, as everywhere.

-- A sensor or camera of an organisation, bound to one site. Its MQTT client id is the device segment of its
-- topics; the broker credentials are its client id and a password whose argon2 hash is kept here.
CREATE TABLE devices (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    site_id BIGINT NOT NULL REFERENCES sites (id),
    client_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    status_at BIGINT,
    last_seen_at BIGINT,
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX devices_site ON devices (site_id);
CREATE INDEX devices_org ON devices (org_id);

-- A camera image: the files live in the media folder by content hash (one copy per hash); one row per
-- (device, capture time, hash) makes redelivery harmless.
CREATE TABLE device_images (
    id BIGSERIAL PRIMARY KEY,
    device_id BIGINT NOT NULL REFERENCES devices (id),
    site_id BIGINT NOT NULL REFERENCES sites (id),
    taken_at BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    path TEXT NOT NULL,
    thumb_path TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (device_id, taken_at, sha256)
);
CREATE INDEX device_images_site_time ON device_images (site_id, taken_at);

-- A rule of an organisation on one site (optionally one device): threshold (metric outside [min, max] for
-- at least duration_ms) or no_data (device silent for duration_ms).
CREATE TABLE iot_rules (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    site_id BIGINT NOT NULL REFERENCES sites (id),
    device_id BIGINT REFERENCES devices (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    metric TEXT,
    min_value DOUBLE PRECISION,
    max_value DOUBLE PRECISION,
    duration_ms BIGINT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX iot_rules_site ON iot_rules (site_id);

-- The rule evaluator's state for one device (every rule's phase for it), updated in the transaction that
-- stores the device's readings, so that no evaluation is lost between a commit and a crash.
CREATE TABLE device_rule_states (
    device_id BIGINT PRIMARY KEY REFERENCES devices (id),
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Messages the gateway refused, counted per stable reason code (summed over every replica), with the last one.
CREATE TABLE gateway_refusals (
    reason TEXT PRIMARY KEY,
    refused BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    last_topic TEXT NOT NULL,
    last_detail TEXT NOT NULL
);

-- IoT alerts live with every other alert; these columns say which rule, device and site raised them.
ALTER TABLE alerts ADD COLUMN site_id BIGINT REFERENCES sites (id);
ALTER TABLE alerts ADD COLUMN device_id BIGINT REFERENCES devices (id);
ALTER TABLE alerts ADD COLUMN rule_id BIGINT REFERENCES iot_rules (id);
ALTER TABLE alerts ADD COLUMN metric TEXT;
ALTER TABLE alerts ADD COLUMN value DOUBLE PRECISION;
ALTER TABLE alerts ADD COLUMN late BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX alerts_iot_once ON alerts (rule_id, device_id, opened_at);
CREATE INDEX alerts_site ON alerts (site_id, opened_at);

-- One row per reading, partitioned by month of the reading's time so that a site's range query touches only
-- the months it spans and old months can be detached or dropped whole. The key (device, ts, metric, seq)
-- makes every write idempotent (it includes the partition key, as PostgreSQL requires); a reading without a
-- sequence number has seq = -1. Partitions exist from 2025 to 2030; a default partition catches the rest
-- (the gateway refuses times more than a few minutes ahead, and before 2020).
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
    -- The key is also the only index: a site's range is read as its devices' ranges (device_id, ts), so
    -- ingestion maintains one B-tree per row, not two.
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
