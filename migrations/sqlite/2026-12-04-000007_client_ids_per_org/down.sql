-- Back to client ids unique over the whole county. This fails, changing nothing, once two organisations have
-- used the same client id: which of their rows would have to go is not the migration's to decide.
-- SQLite cannot drop a column's UNIQUE constraint: each table is rebuilt (the documented twelve steps) with
-- every row, id and hash kept, then its indexes and append-only triggers are made again. Foreign keys are
-- switched off meanwhile (other tables refer to these by id, and the ids do not change), which SQLite only
-- allows outside a transaction: hence `run_in_transaction = false` and the explicit transaction here.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE records_rebuilt (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
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
    UNIQUE (client_id),
    UNIQUE (batch_id, seq)
);
INSERT INTO records_rebuilt (id, client_id, batch_id, seq, kind, event_time, received_at, site_id, actor_user_id, org_id, details, attachments, flags, supersedes_id, prev_hash, hash)
SELECT id, client_id, batch_id, seq, kind, event_time, received_at, site_id, actor_user_id, org_id, details, attachments, flags, supersedes_id, prev_hash, hash FROM records ORDER BY id;
DROP TABLE records;
ALTER TABLE records_rebuilt RENAME TO records;
CREATE INDEX records_supersedes ON records (supersedes_id);
CREATE INDEX records_kind_time ON records (kind, event_time);
CREATE TRIGGER records_append_only_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER records_append_only_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;

CREATE TABLE transformations_rebuilt (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    kind TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    actor_user_id BIGINT NOT NULL REFERENCES users (id),
    request TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (client_id)
);
INSERT INTO transformations_rebuilt (id, client_id, org_id, kind, event_time, actor_user_id, request, created_at)
SELECT id, client_id, org_id, kind, event_time, actor_user_id, request, created_at FROM transformations ORDER BY id;
DROP TABLE transformations;
ALTER TABLE transformations_rebuilt RENAME TO transformations;

COMMIT;
PRAGMA foreign_keys = ON;
