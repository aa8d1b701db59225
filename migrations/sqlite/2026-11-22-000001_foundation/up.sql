-- The foundation: organisations, people, places, products, batches, their lineage and their records.
-- Times are milliseconds since the Unix epoch (UTC) in BIGINT columns so that one diesel schema serves
-- SQLite and PostgreSQL alike.

CREATE TABLE organisations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    credit_code TEXT UNIQUE,
    division_code TEXT NOT NULL,
    address TEXT,
    public_contact TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    phone TEXT,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX users_org ON users (org_id);

-- Session cookies and API tokens; only the SHA-256 of a token is stored.
CREATE TABLE auth_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL,
    label TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);

CREATE TABLE sites (
    id INTEGER PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    division_code TEXT NOT NULL,
    address TEXT,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    area_mu DOUBLE PRECISION,
    created_at BIGINT NOT NULL
);
CREATE INDEX sites_org ON sites (org_id);

CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    brand TEXT,
    certifications TEXT NOT NULL,
    gtin TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX products_org ON products (org_id);

CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    lot_code TEXT NOT NULL,
    quantity DOUBLE PRECISION NOT NULL,
    unit TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    origin_site_id BIGINT REFERENCES sites (id),
    custodian_org_id BIGINT NOT NULL REFERENCES organisations (id),
    in_transit_to_org_id BIGINT REFERENCES organisations (id),
    record_count BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, lot_code)
);
CREATE INDEX batches_custodian ON batches (custodian_org_id);
CREATE INDEX batches_product ON batches (product_id);

CREATE TABLE transformations (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    kind TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    actor_user_id BIGINT NOT NULL REFERENCES users (id),
    request TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE lineage_edges (
    id INTEGER PRIMARY KEY,
    transformation_id BIGINT NOT NULL REFERENCES transformations (id),
    parent_batch_id BIGINT NOT NULL REFERENCES batches (id),
    child_batch_id BIGINT NOT NULL REFERENCES batches (id),
    kind TEXT NOT NULL,
    quantity DOUBLE PRECISION NOT NULL,
    unit TEXT NOT NULL,
    UNIQUE (parent_batch_id, child_batch_id)
);
CREATE INDEX lineage_edges_child ON lineage_edges (child_batch_id);

-- Records are append-only: the triggers below refuse every UPDATE and DELETE. Each batch's records form a
-- hash chain (prev_hash, hash) so that a change made around the triggers is still detected.
CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    batch_id BIGINT NOT NULL REFERENCES batches (id),
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    site_id BIGINT REFERENCES sites (id),
    actor_user_id BIGINT NOT NULL REFERENCES users (id),
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    details TEXT NOT NULL,
    attachments TEXT NOT NULL,
    flags TEXT NOT NULL,
    supersedes_id BIGINT REFERENCES records (id),
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (batch_id, seq)
);
CREATE INDEX records_supersedes ON records (supersedes_id);
CREATE INDEX records_kind_time ON records (kind, event_time);

CREATE TRIGGER records_append_only_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER records_append_only_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;

CREATE TABLE inspection_requests (
    id INTEGER PRIMARY KEY,
    batch_id BIGINT NOT NULL REFERENCES batches (id),
    lab_org_id BIGINT NOT NULL REFERENCES organisations (id),
    requested_by BIGINT NOT NULL REFERENCES users (id),
    requested_at BIGINT NOT NULL,
    UNIQUE (batch_id, lab_org_id)
);
CREATE INDEX inspection_requests_lab ON inspection_requests (lab_org_id);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    org_id BIGINT REFERENCES organisations (id),
    batch_id BIGINT REFERENCES batches (id),
    record_id BIGINT REFERENCES records (id),
    message TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX alerts_open ON alerts (closed_at, opened_at);
CREATE INDEX alerts_batch ON alerts (batch_id);
