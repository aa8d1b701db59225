-- Labels (issue 3): signing keys, label runs (minted ranges), activations (ranges bound to a batch) and voids.
-- A minted label has no row of its own (runs of 300,000 labels): its state is derived from the range tables.
-- Times are BIGINT milliseconds since the Unix epoch, as everywhere.

-- One row per Ed25519 signing key ever used. Only the public half is stored; the private key lives in an
-- owner-only file or the environment of the minting process. next_sequence is the serial allocator of
-- the key: a run reserves [next_sequence, next_sequence + count) with one UPDATE ... RETURNING, which on
-- PostgreSQL holds the row lock until the transaction ends, so concurrent runs never overlap.
CREATE TABLE signing_keys (
    key_id BIGINT PRIMARY KEY CHECK (key_id BETWEEN 0 AND 99),
    algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL UNIQUE,
    next_sequence BIGINT NOT NULL CHECK (next_sequence BETWEEN 1 AND 10000000000),
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- A contiguous range [first_sequence, first_sequence + label_count) of one key, minted for one product.
-- requested_by is NULL when the run was started from the command line (by whoever runs the server).
CREATE TABLE label_runs (
    id INTEGER PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    key_id BIGINT NOT NULL REFERENCES signing_keys (key_id),
    first_sequence BIGINT NOT NULL,
    label_count BIGINT NOT NULL CHECK (label_count > 0),
    layout TEXT NOT NULL,
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_by BIGINT REFERENCES users (id),
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    output TEXT,
    error TEXT,
    UNIQUE (key_id, first_sequence)
);
CREATE INDEX label_runs_product ON label_runs (product_id);
CREATE INDEX label_runs_org ON label_runs (org_id);

-- A contiguous range [first_sequence, last_sequence] of one run bound to a batch (minted -> active).
CREATE TABLE label_activations (
    id INTEGER PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES label_runs (id),
    key_id BIGINT NOT NULL REFERENCES signing_keys (key_id),
    first_sequence BIGINT NOT NULL,
    last_sequence BIGINT NOT NULL CHECK (last_sequence >= first_sequence),
    batch_id BIGINT NOT NULL REFERENCES batches (id),
    activated_by BIGINT NOT NULL REFERENCES users (id),
    activated_at BIGINT NOT NULL
);
CREATE INDEX label_activations_range ON label_activations (key_id, first_sequence);
CREATE INDEX label_activations_run ON label_activations (run_id);
CREATE INDEX label_activations_batch ON label_activations (batch_id);

-- One voided label (-> void), with who, when and why.
CREATE TABLE label_voids (
    id INTEGER PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES label_runs (id),
    key_id BIGINT NOT NULL REFERENCES signing_keys (key_id),
    sequence BIGINT NOT NULL,
    reason TEXT NOT NULL,
    voided_by BIGINT NOT NULL REFERENCES users (id),
    voided_at BIGINT NOT NULL,
    UNIQUE (key_id, sequence)
);
CREATE INDEX label_voids_run ON label_voids (run_id);
