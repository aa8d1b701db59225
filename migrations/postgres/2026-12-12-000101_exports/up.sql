-- Exports (issue 12): a spreadsheet (CSV, XLSX) or an EPCIS 2.0 document of a batch's trace or of a period,
-- written in the background. The row is the job: who asked (the export runs with that user's access, looked up
-- again when it starts), what (scope as JSON, format), how far it got (rows_done of rows_total, updated as it
-- goes so that any replica can answer for it) and the file's name under the data folder once finished.
CREATE TABLE exports (
    id BIGSERIAL PRIMARY KEY,
    requested_by BIGINT NOT NULL REFERENCES users (id),
    org_id BIGINT NOT NULL REFERENCES organisations (id),
    scope TEXT NOT NULL,
    format TEXT NOT NULL,
    status TEXT NOT NULL,
    rows_done BIGINT NOT NULL DEFAULT 0,
    rows_total BIGINT,
    file_name TEXT,
    bytes BIGINT,
    error TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX exports_org ON exports (org_id, status);
CREATE INDEX exports_status ON exports (status, id);

-- A period export reads records by event time.
CREATE INDEX records_event_time ON records (event_time, id);
