-- Back to client ids unique over the whole county. This fails, changing nothing, once two organisations have
-- used the same client id: which of their rows would have to go is not the migration's to decide.
ALTER TABLE transformations DROP CONSTRAINT transformations_org_client_id_key;
ALTER TABLE transformations ADD CONSTRAINT transformations_client_id_key UNIQUE (client_id);
ALTER TABLE records DROP CONSTRAINT records_org_client_id_key;
ALTER TABLE records ADD CONSTRAINT records_client_id_key UNIQUE (client_id);
