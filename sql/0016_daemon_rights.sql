-- 0016_daemon_rights.sql: the daemon's login loses the rights to read job
-- documents and logs.
--
-- The daemon served JORS over HTTP (/v1/jobs/ID and /v1/jobs/ID/log) until
-- amtacs-web became its one home; its HTTP endpoint now serves /healthz,
-- /readyz and /metrics only, so acs.job_document and acs.job_log_text are
-- nothing it calls. A daemon's login that is stolen reads no job log through
-- them. acs.active_job_counts stays: /metrics reads it.
REVOKE EXECUTE ON FUNCTION acs.job_document(bigint), acs.job_log_text(bigint) FROM acs_daemon;
