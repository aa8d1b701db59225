-- Scans (issue 5): every opening of a label's page, typed short code, kiosk lookup or SMS is logged, with a
-- coarse region and a salted hash of the client in place of its address. Times are BIGINT milliseconds.

-- One row per scan. key_id/sequence is the label the code claims (also for invalid signatures, so forgery
-- attempts can be counted); batch_id/org_id are the batch it is bound to and the label's owner. The region
-- is a 6-digit division code, from the IP-to-region database ('ip') or the phone's location rounded to
-- about 10 km ('location'). No foreign keys: the scan log is written in large batches and never joined
-- for integrity, only counted.
CREATE TABLE scans (
    id BIGSERIAL PRIMARY KEY,
    scanned_at BIGINT NOT NULL,
    method TEXT NOT NULL,
    verdict TEXT NOT NULL,
    key_id BIGINT,
    sequence BIGINT,
    batch_id BIGINT,
    org_id BIGINT,
    division_code TEXT,
    region_source TEXT,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    first_scan BOOLEAN NOT NULL,
    client_hash TEXT NOT NULL
);
CREATE INDEX scans_label ON scans (key_id, sequence, scanned_at);
CREATE INDEX scans_time ON scans (scanned_at);

-- Per label: what the scan page and the counterfeit rules need without counting the scan log (a copied
-- label can be scanned a million times). devices counts distinct client hashes (label_scan_devices);
-- suspicion is the stable code of the first rule that found the label suspicious; alerted lists the
-- alert kinds already opened for it (each once per label).
CREATE TABLE label_scan_stats (
    key_id BIGINT NOT NULL,
    sequence BIGINT NOT NULL,
    scans BIGINT NOT NULL,
    devices BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    first_division TEXT,
    last_at BIGINT NOT NULL,
    last_division TEXT,
    last_latitude DOUBLE PRECISION,
    last_longitude DOUBLE PRECISION,
    suspicion TEXT,
    alerted TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (key_id, sequence)
);

CREATE TABLE label_scan_devices (
    key_id BIGINT NOT NULL,
    sequence BIGINT NOT NULL,
    client_hash TEXT NOT NULL,
    PRIMARY KEY (key_id, sequence, client_hash)
);

-- Scans per day (China time, YYYY-MM-DD), region ('' when unknown) and verdict: the regional comparison of
-- the dashboard and the count of forgery attempts by region.
CREATE TABLE scan_region_days (
    day TEXT NOT NULL,
    division_code TEXT NOT NULL,
    verdict TEXT NOT NULL,
    scans BIGINT NOT NULL,
    PRIMARY KEY (day, division_code, verdict)
);

-- Deployment-wide settings shared by every replica (e.g. the salt of the client hash).
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Where a product is meant to be sold: a JSON list of division codes or prefixes (e.g. ["53", "5101"]);
-- empty means anywhere. Scans elsewhere open an alert.
ALTER TABLE products ADD COLUMN distribution_area TEXT NOT NULL DEFAULT '[]';
