-- 0018_alert_order.sql: alerts are read in the order their transactions
-- ended, as job state changes are (0014).
--
-- Alert ids come from a sequence when the row is made, not when its
-- transaction commits: alert 5 can commit after alert 6. A reader that
-- moved its cursor past 6 never saw 5, and neither did a stream resumed
-- from 6. So each alert records the transaction that raised it, and a
-- reader takes the alerts between its cursor and the oldest transaction
-- still running (the snapshot's xmin): below that horizon every
-- transaction has ended, the set is final, and nothing that commits late
-- is skipped.

ALTER TABLE acs.alerts ADD COLUMN raised_xid xid8;
-- the alerts raised before this migration: all ended, below any horizon
UPDATE acs.alerts SET raised_xid = '0'::xid8;
ALTER TABLE acs.alerts ALTER COLUMN raised_xid SET DEFAULT pg_current_xact_id();
ALTER TABLE acs.alerts ALTER COLUMN raised_xid SET NOT NULL;
COMMENT ON COLUMN acs.alerts.raised_xid IS
    'The transaction that raised the alert (0 for alerts raised before migration 18)';
CREATE INDEX alerts_raised_xid_idx ON acs.alerts (raised_xid, id);
