-- Failed logins counted per window under a salted key: one row per (user name, client), per client and
-- per user name, so that unknown names are counted exactly like real ones and nothing here names a
-- person or an address in clear. Replaces the lock kept on the account itself.
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY NOT NULL,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
CREATE INDEX login_throttle_window ON login_throttle (window_start);
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN locked_until;
