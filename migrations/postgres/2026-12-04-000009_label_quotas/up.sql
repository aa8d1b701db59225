-- Label quotas (issue 16): how many labels each organisation may have minted, set by operators. `used` counts
-- the labels of its runs that did not fail; a run reserves its count here with one
-- UPDATE ... SET used = used + n WHERE quota IS NULL OR used + n <= quota, in the transaction that reserves
-- its serials, so concurrent requests on any replica cannot pass the quota. A NULL quota is no limit.
CREATE TABLE label_quotas (
    org_id BIGINT PRIMARY KEY REFERENCES organisations (id),
    quota BIGINT CHECK (quota >= 0),
    used BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0),
    updated_by BIGINT REFERENCES users (id),
    updated_at BIGINT
);

-- What was minted before quotas existed counts as used.
INSERT INTO label_quotas (org_id, quota, used)
SELECT org_id, NULL, SUM(label_count) FROM label_runs WHERE status <> 'failed' GROUP BY org_id;
