-- Client ids belong to the organisation that sends them. They were unique over the whole county, so one
-- organisation could take another's ids (its phones' records then answered 409), and a conflict answered with
-- the other organisation's record. Now a client id is unique per organisation, for records and
-- transformations alike; every row is kept as it is (the hash chains cover client ids, so none is rewritten).
ALTER TABLE records DROP CONSTRAINT records_client_id_key;
ALTER TABLE records ADD CONSTRAINT records_org_client_id_key UNIQUE (org_id, client_id);
ALTER TABLE transformations DROP CONSTRAINT transformations_client_id_key;
ALTER TABLE transformations ADD CONSTRAINT transformations_org_client_id_key UNIQUE (org_id, client_id);
