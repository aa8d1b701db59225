-- Chain anchors (issue 16): a signed digest over every batch's (id, record count, head hash) at one moment.
-- A batch's chain proves its records were not changed, but not that its tail was not cut off together with
-- its head; an anchor kept outside the database (the published JSON, the file under the data folder) does.
-- `document` is the signed JSON exactly as published; `heads` the anchored heads, one "id count hash" a line.
CREATE TABLE chain_anchors (
    id BIGSERIAL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    key_id BIGINT NOT NULL,
    batches BIGINT NOT NULL,
    records BIGINT NOT NULL,
    digest TEXT NOT NULL,
    signature TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX chain_anchors_created ON chain_anchors (created_at);
