-- functions/60_web.sql: amtacs-web: who is acting, the audit log, web users,
-- sessions, logins, API tokens and idempotent requests.
--
-- The current definition of each function and view here; `amtacsctl migrate`
-- applies this file after the versioned migrations (docs/schema.md).

CREATE OR REPLACE FUNCTION acs.actor()
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE WHEN pg_has_role(session_user, 'acs_web', 'MEMBER')
                THEN coalesce(nullif(current_setting('acs.actor', true), ''), session_user::text)
                ELSE session_user::text END;
END
$$;
COMMENT ON FUNCTION acs.actor() IS
    'Who acts: the setting acs.actor when the session logged in as a member of acs_web, else session_user';
REVOKE ALL ON FUNCTION acs.actor() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.actor() TO acs_admin, acs_operator, acs_scheduler, acs_viewer, acs_web;

CREATE OR REPLACE FUNCTION acs.actor_address()
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE WHEN pg_has_role(session_user, 'acs_web', 'MEMBER')
                THEN nullif(current_setting('acs.actor_address', true), '') END;
END
$$;
COMMENT ON FUNCTION acs.actor_address() IS
    'The web client''s address (setting acs.actor_address) for a session of acs_web; NULL otherwise';
REVOKE ALL ON FUNCTION acs.actor_address() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.actor_address() TO acs_admin, acs_operator, acs_scheduler, acs_viewer, acs_web;

CREATE OR REPLACE FUNCTION acs.actor_role()
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    RETURN coalesce(nullif(current_setting('role'), 'none'), session_user::text);
END
$$;
COMMENT ON FUNCTION acs.actor_role() IS
    'The role the caller acts in (SET ROLE in force, else its login), also inside SECURITY DEFINER functions';
REVOKE ALL ON FUNCTION acs.actor_role() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.actor_role() TO acs_admin, acs_operator, acs_scheduler, acs_viewer, acs_web;

CREATE OR REPLACE FUNCTION acs.audit_record(action text, target text, detail jsonb DEFAULT NULL::jsonb)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO acs.audit (actor, address, role, action, target, detail)
    VALUES (acs.actor(), acs.actor_address(), acs.actor_role(),
            audit_record.action, audit_record.target, audit_record.detail);
END
$$;
COMMENT ON FUNCTION acs.audit_record(text,text,jsonb) IS
    'Writes one audit row for the current actor, address and role (called by the API functions only)';
REVOKE ALL ON FUNCTION acs.audit_record(text,text,jsonb) FROM PUBLIC;

-- The audit log, newest first, keyset-paged by id like the jobs; filters by
-- actor and action (exact) and by time (since inclusive, until exclusive).
-- SECURITY INVOKER: the caller must be allowed to read acs.audit as well.
CREATE OR REPLACE FUNCTION acs.audit_page(p_before bigint, p_limit integer, p_actor text, p_action text, p_since timestamp with time zone, p_until timestamp with time zone)
    RETURNS json
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
WITH page AS (
    SELECT a.id, a.at, a.actor, a.address, a.role, a.action, a.target, a.detail
      FROM acs.audit AS a
     WHERE (p_before IS NULL OR a.id < p_before)
       AND (p_actor IS NULL OR a.actor = p_actor)
       AND (p_action IS NULL OR a.action = p_action)
       AND (p_since IS NULL OR a.at >= p_since)
       AND (p_until IS NULL OR a.at < p_until)
     ORDER BY a.id DESC
     LIMIT greatest(least(p_limit, 500), 1) + 1),
shown AS (SELECT * FROM page ORDER BY id DESC LIMIT greatest(least(p_limit, 500), 1))
SELECT json_build_object(
    'audit', coalesce((SELECT json_agg(s ORDER BY s.id DESC) FROM shown AS s), '[]'::json),
    'next', CASE WHEN (SELECT count(*) FROM page) > greatest(least(p_limit, 500), 1)
                 THEN (SELECT min(id) FROM shown) END)
$$;
COMMENT ON FUNCTION acs.audit_page(bigint,integer,text,text,timestamp with time zone,timestamp with time zone) IS
    'Admin: a page of the audit log, newest first (before, limit 1..500, actor, action, since, until); next is the before of the next page';
REVOKE ALL ON FUNCTION acs.audit_page(bigint,integer,text,text,timestamp with time zone,timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.audit_page(bigint,integer,text,text,timestamp with time zone,timestamp with time zone) TO acs_admin;

-- Raises no_data_found unless the user exists (locks its row).
CREATE OR REPLACE FUNCTION acs.web_user_lock(name text)
    RETURNS acs.web_users
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    u acs.web_users;
BEGIN
    SELECT * INTO u FROM acs.web_users AS w WHERE w.name = web_user_lock.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no user %', coalesce(quote_literal(name), 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    RETURN u;
END
$$;
COMMENT ON FUNCTION acs.web_user_lock(text) IS
    'Locks a console user''s row; raises no_data_found if there is none';
REVOKE ALL ON FUNCTION acs.web_user_lock(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION acs.web_user_add(name text, role text, password_hash text)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM acs.check_web_user(web_user_add.name, web_user_add.role);
    IF web_user_add.role IS NULL THEN
        RAISE EXCEPTION 'role is required: viewer, scheduler, operator or admin'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM acs.check_password_hash(web_user_add.password_hash);
    INSERT INTO acs.web_users (name, password_hash, role, created_by)
    VALUES (web_user_add.name, web_user_add.password_hash, web_user_add.role, acs.actor())
    ON CONFLICT ON CONSTRAINT web_users_pkey DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % exists already', web_user_add.name USING ERRCODE = 'unique_violation';
    END IF;
    PERFORM acs.audit_record('user_add', web_user_add.name,
                             jsonb_build_object('role', web_user_add.role));
END
$$;
COMMENT ON FUNCTION acs.web_user_add(text,text,text) IS
    'Admin: adds a console user with a role and an argon2id password hash';
REVOKE ALL ON FUNCTION acs.web_user_add(text,text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_user_add(text,text,text) TO acs_admin;

CREATE OR REPLACE FUNCTION acs.web_user_set_password(name text, password_hash text)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    ended integer;
BEGIN
    PERFORM acs.check_password_hash(web_user_set_password.password_hash);
    PERFORM acs.web_user_lock(web_user_set_password.name);
    UPDATE acs.web_users AS w
       SET password_hash = web_user_set_password.password_hash, password_changed_at = now()
     WHERE w.name = web_user_set_password.name;
    ended := acs.web_sessions_end_for(web_user_set_password.name);
    PERFORM acs.audit_record('user_passwd', web_user_set_password.name,
                             jsonb_build_object('sessions_ended', ended));
    RETURN ended;
END
$$;
COMMENT ON FUNCTION acs.web_user_set_password(text,text) IS
    'Admin: sets a console user''s password hash and ends its sessions; returns how many were ended';
REVOKE ALL ON FUNCTION acs.web_user_set_password(text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_user_set_password(text,text) TO acs_admin;

CREATE OR REPLACE FUNCTION acs.web_user_set_role(name text, role text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    u acs.web_users;
BEGIN
    PERFORM acs.check_web_user(web_user_set_role.name, web_user_set_role.role);
    IF web_user_set_role.role IS NULL THEN
        RAISE EXCEPTION 'role is required: viewer, scheduler, operator or admin'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    u := acs.web_user_lock(web_user_set_role.name);
    UPDATE acs.web_users AS w SET role = web_user_set_role.role WHERE w.name = web_user_set_role.name;
    PERFORM acs.audit_record('user_role', web_user_set_role.name,
                             jsonb_build_object('from', u.role, 'to', web_user_set_role.role));
    RETURN u.role;
END
$$;
COMMENT ON FUNCTION acs.web_user_set_role(text,text) IS
    'Admin: changes a console user''s role (its sessions take it at their next request); returns the old one';
REVOKE ALL ON FUNCTION acs.web_user_set_role(text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_user_set_role(text,text) TO acs_admin;

CREATE OR REPLACE FUNCTION acs.web_user_disable(name text)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    ended integer;
BEGIN
    PERFORM acs.web_user_lock(web_user_disable.name);
    UPDATE acs.web_users AS w SET disabled_at = coalesce(w.disabled_at, now())
     WHERE w.name = web_user_disable.name;
    ended := acs.web_sessions_end_for(web_user_disable.name);
    PERFORM acs.audit_record('user_disable', web_user_disable.name,
                             jsonb_build_object('sessions_ended', ended));
    RETURN ended;
END
$$;
COMMENT ON FUNCTION acs.web_user_disable(text) IS
    'Admin: disables a console user (no login) and ends its sessions; returns how many were ended';
REVOKE ALL ON FUNCTION acs.web_user_disable(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_user_disable(text) TO acs_admin;

CREATE OR REPLACE FUNCTION acs.web_user_enable(name text)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM acs.web_user_lock(web_user_enable.name);
    UPDATE acs.web_users AS w SET disabled_at = NULL WHERE w.name = web_user_enable.name;
    PERFORM acs.audit_record('user_enable', web_user_enable.name, NULL);
END
$$;
COMMENT ON FUNCTION acs.web_user_enable(text) IS
    'Admin: lets a disabled console user log in again';
REVOKE ALL ON FUNCTION acs.web_user_enable(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_user_enable(text) TO acs_admin;

CREATE OR REPLACE FUNCTION acs.web_user_for_login(name text)
    RETURNS TABLE(password_hash text, role text, disabled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT w.password_hash, w.role, w.disabled_at IS NOT NULL
      FROM acs.web_users AS w WHERE w.name = web_user_for_login.name
$$;
COMMENT ON FUNCTION acs.web_user_for_login(text) IS
    'Web server: the hash to verify a login against, the role and whether the user is disabled; no row if unknown';
REVOKE ALL ON FUNCTION acs.web_user_for_login(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_user_for_login(text) TO acs_web;

-- Ends the open sessions of a user; returns how many.
CREATE OR REPLACE FUNCTION acs.web_sessions_end_for(user_name text)
    RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE acs.web_sessions AS s SET ended_at = now()
     WHERE s.user_name = web_sessions_end_for.user_name AND s.ended_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION acs.web_sessions_end_for(text) IS
    'Ends every open session of a user (password changed, user disabled); returns how many';
REVOKE ALL ON FUNCTION acs.web_sessions_end_for(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION acs.web_session_start(user_name text, token_hash bytea, csrf_token text, address text, idle_seconds integer, lifetime_seconds integer)
    RETURNS timestamp with time zone
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    u acs.web_users;
    expires timestamptz;
BEGIN
    IF idle_seconds IS NULL OR idle_seconds <= 0 OR lifetime_seconds IS NULL OR lifetime_seconds <= 0 THEN
        RAISE EXCEPTION 'idle_seconds and lifetime_seconds must be positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF token_hash IS NULL OR octet_length(token_hash) <> 32 THEN
        RAISE EXCEPTION 'token_hash must be a SHA-256 (32 bytes)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO u FROM acs.web_users AS w WHERE w.name = web_session_start.user_name FOR KEY SHARE;
    IF NOT FOUND OR u.disabled_at IS NOT NULL THEN
        RAISE EXCEPTION 'user % does not exist or is disabled', coalesce(quote_literal(user_name), 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM acs.web_sessions_purge();
    expires := now() + make_interval(secs => lifetime_seconds);
    INSERT INTO acs.web_sessions (token_hash, user_name, csrf_token, address, expires_at, idle_seconds)
    VALUES (web_session_start.token_hash, web_session_start.user_name, web_session_start.csrf_token,
            web_session_start.address, expires, web_session_start.idle_seconds);
    PERFORM acs.audit_record('login', web_session_start.user_name,
                             jsonb_build_object('address', web_session_start.address));
    RETURN expires;
END
$$;
COMMENT ON FUNCTION acs.web_session_start(text,bytea,text,text,integer,integer) IS
    'Web server: opens a session for a user whose password it verified; returns when it expires at the latest';
REVOKE ALL ON FUNCTION acs.web_session_start(text,bytea,text,text,integer,integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_session_start(text,bytea,text,text,integer,integer) TO acs_web;

CREATE OR REPLACE FUNCTION acs.web_session_get(token_hash bytea)
    RETURNS TABLE(user_name text, role text, csrf_token text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    seen timestamptz;
BEGIN
    SELECT s.user_name, u.role, s.csrf_token, s.last_seen_at
      INTO web_session_get.user_name, web_session_get.role, web_session_get.csrf_token, seen
      FROM acs.web_sessions AS s JOIN acs.web_users AS u ON u.name = s.user_name
     WHERE s.token_hash = web_session_get.token_hash AND s.ended_at IS NULL
       AND s.expires_at > now() AND s.last_seen_at + make_interval(secs => s.idle_seconds) > now()
       AND u.disabled_at IS NULL;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- at most one write per session every 5 seconds, however busy it is
    IF seen < now() - interval '5 seconds' THEN
        UPDATE acs.web_sessions AS s SET last_seen_at = now()
         WHERE s.token_hash = web_session_get.token_hash AND s.last_seen_at < now() - interval '5 seconds';
    END IF;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION acs.web_session_get(bytea) IS
    'Web server: the user, role and CSRF token of a valid session (not ended, expired, idle or disabled); no row otherwise';
REVOKE ALL ON FUNCTION acs.web_session_get(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_session_get(bytea) TO acs_web;

CREATE OR REPLACE FUNCTION acs.web_session_end(token_hash bytea)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE acs.web_sessions AS s SET ended_at = now()
     WHERE s.token_hash = web_session_end.token_hash AND s.ended_at IS NULL;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION acs.web_session_end(bytea) IS
    'Web server: ends a session (logout); true if it was open';
REVOKE ALL ON FUNCTION acs.web_session_end(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_session_end(bytea) TO acs_web;

CREATE OR REPLACE FUNCTION acs.web_sessions_purge()
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM acs.web_sessions AS s
     WHERE s.token_hash IN (
        SELECT x.token_hash FROM acs.web_sessions AS x
         WHERE x.ended_at IS NOT NULL OR x.expires_at <= now()
            OR x.last_seen_at + make_interval(secs => x.idle_seconds) <= now()
         LIMIT 1000
           FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION acs.web_sessions_purge() IS
    'Deletes up to 1000 ended, expired or idle sessions; returns how many';
REVOKE ALL ON FUNCTION acs.web_sessions_purge() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_sessions_purge() TO acs_admin, acs_web;

-- Web server: which of these sessions and tokens (SHA-256 of the cookie or
-- token) still let their holder in, and in which role. Unlike
-- acs.web_session_get it writes nothing: an open event stream checks its
-- session every few seconds, and that must neither keep an idle session
-- alive nor cost a write per stream.
CREATE OR REPLACE FUNCTION acs.web_credentials_alive(hashes bytea[])
    RETURNS TABLE(token_hash bytea, role text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT s.token_hash, u.role
      FROM acs.web_sessions AS s JOIN acs.web_users AS u ON u.name = s.user_name
     WHERE s.token_hash = ANY (web_credentials_alive.hashes) AND s.ended_at IS NULL
       AND s.expires_at > now() AND s.last_seen_at + make_interval(secs => s.idle_seconds) > now()
       AND u.disabled_at IS NULL
    UNION ALL
    SELECT t.token_hash, t.role
      FROM acs.api_tokens AS t
     WHERE t.token_hash = ANY (web_credentials_alive.hashes) AND t.revoked_at IS NULL
$$;
COMMENT ON FUNCTION acs.web_credentials_alive(bytea[]) IS
    'Web server: the sessions and tokens among these hashes that are still valid, with their role; writes nothing';
REVOKE ALL ON FUNCTION acs.web_credentials_alive(bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_credentials_alive(bytea[]) TO acs_web;

-- The wait a key's failures impose now, in whole seconds.
CREATE OR REPLACE FUNCTION acs.web_login_delay(failures integer, last_at timestamp with time zone, threshold integer)
    RETURNS integer
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
    SELECT CASE
        WHEN failures IS NULL OR failures < threshold OR last_at < now() - interval '15 minutes' THEN 0
        ELSE greatest(0, ceil(extract(epoch FROM
                 last_at + make_interval(secs => least(900, power(2, least(failures - threshold, 10))))
                 - now())))::integer
    END
$$;
COMMENT ON FUNCTION acs.web_login_delay(integer,timestamp with time zone,integer) IS
    'Seconds left to wait: 0 below threshold failures, else 1 s doubling per failure up to 900 s after last_at';
REVOKE ALL ON FUNCTION acs.web_login_delay(integer,timestamp with time zone,integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION acs.web_login_record(user_name text, address text, ok boolean)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    IF ok THEN
        DELETE FROM acs.web_login_failures AS f
         WHERE f.kind = 'user' AND f.key = left(web_login_record.user_name, 256);
        RETURN;
    END IF;
    -- what nobody has failed for a while is forgotten (the table stays small)
    DELETE FROM acs.web_login_failures AS f
     WHERE f.key IN (SELECT x.key FROM acs.web_login_failures AS x
                      WHERE x.last_at < now() - interval '15 minutes' LIMIT 100)
       AND f.last_at < now() - interval '15 minutes';
    INSERT INTO acs.web_login_failures AS f (kind, key, failures, first_at, last_at)
    SELECT k.kind, k.key, 1, now(), now()
      FROM (VALUES ('user', left(web_login_record.user_name, 256)),
                   ('address', left(web_login_record.address, 256))) AS k (kind, key)
     WHERE k.key IS NOT NULL
     ORDER BY k.kind DESC
    ON CONFLICT ON CONSTRAINT web_login_failures_pkey DO UPDATE
       SET failures = CASE WHEN f.last_at < now() - interval '15 minutes' THEN 1 ELSE f.failures + 1 END,
           first_at = CASE WHEN f.last_at < now() - interval '15 minutes' THEN now() ELSE f.first_at END,
           last_at = now();
END
$$;
COMMENT ON FUNCTION acs.web_login_record(text,text,boolean) IS
    'Web server: records a login try; a failure counts for the name and the address, a success clears the name';
REVOKE ALL ON FUNCTION acs.web_login_record(text,text,boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_login_record(text,text,boolean) TO acs_web;

CREATE OR REPLACE FUNCTION acs.web_login_wait(user_name text, address text)
    RETURNS integer
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT greatest(
        coalesce((SELECT acs.web_login_delay(f.failures, f.last_at, 5) FROM acs.web_login_failures AS f
                   WHERE f.kind = 'user' AND f.key = left(web_login_wait.user_name, 256)), 0),
        coalesce((SELECT acs.web_login_delay(f.failures, f.last_at, 20) FROM acs.web_login_failures AS f
                   WHERE f.kind = 'address' AND f.key = left(web_login_wait.address, 256)), 0))
$$;
COMMENT ON FUNCTION acs.web_login_wait(text,text) IS
    'Web server: seconds to wait before the next login try for this name and address (0: may try)';
REVOKE ALL ON FUNCTION acs.web_login_wait(text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_login_wait(text,text) TO acs_web;

CREATE OR REPLACE FUNCTION acs.api_token_create(name text, role text, token_hash bytea)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM acs.check_web_user(api_token_create.name, api_token_create.role);
    IF api_token_create.role IS NULL THEN
        RAISE EXCEPTION 'role is required: viewer, scheduler, operator or admin'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF api_token_create.token_hash IS NULL OR octet_length(api_token_create.token_hash) <> 32 THEN
        RAISE EXCEPTION 'token_hash must be a SHA-256 (32 bytes)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO acs.api_tokens (name, token_hash, role, created_by)
    VALUES (api_token_create.name, api_token_create.token_hash, api_token_create.role, acs.actor())
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'token % exists already (revoked tokens keep their name)', api_token_create.name
            USING ERRCODE = 'unique_violation';
    END IF;
    PERFORM acs.audit_record('token_create', api_token_create.name,
                             jsonb_build_object('role', api_token_create.role));
END
$$;
COMMENT ON FUNCTION acs.api_token_create(text,text,bytea) IS
    'Admin: records an API token by the SHA-256 of its value, with a role';
REVOKE ALL ON FUNCTION acs.api_token_create(text,text,bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.api_token_create(text,text,bytea) TO acs_admin;

CREATE OR REPLACE FUNCTION acs.api_token_get(token_hash bytea)
    RETURNS TABLE(name text, role text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    used timestamptz;
BEGIN
    SELECT t.name, t.role, t.last_used_at INTO api_token_get.name, api_token_get.role, used
      FROM acs.api_tokens AS t
     WHERE t.token_hash = api_token_get.token_hash AND t.revoked_at IS NULL;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF used IS NULL OR used < now() - interval '1 minute' THEN
        UPDATE acs.api_tokens AS t SET last_used_at = now()
         WHERE t.token_hash = api_token_get.token_hash
           AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute');
    END IF;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION acs.api_token_get(bytea) IS
    'Web server: the name and role of the token with this SHA-256; no row if unknown or revoked';
REVOKE ALL ON FUNCTION acs.api_token_get(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.api_token_get(bytea) TO acs_web;

CREATE OR REPLACE FUNCTION acs.api_token_revoke(name text)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE acs.api_tokens AS t SET revoked_at = now()
     WHERE t.name = api_token_revoke.name AND t.revoked_at IS NULL;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM acs.api_tokens AS t WHERE t.name = api_token_revoke.name) THEN
            RAISE EXCEPTION 'no token %', coalesce(quote_literal(name), 'NULL') USING ERRCODE = 'no_data_found';
        END IF;
        RETURN false;
    END IF;
    PERFORM acs.audit_record('token_revoke', api_token_revoke.name, NULL);
    RETURN true;
END
$$;
COMMENT ON FUNCTION acs.api_token_revoke(text) IS
    'Admin: revokes an API token for good; false if it was revoked already';
REVOKE ALL ON FUNCTION acs.api_token_revoke(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.api_token_revoke(text) TO acs_admin;

CREATE OR REPLACE FUNCTION acs.web_idempotency_claim(key text, body_hash bytea)
    RETURNS TABLE(job_id bigint, same_body boolean)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    IF key IS NULL OR key !~ '^[\x21-\x7e]{1,255}$' THEN
        RAISE EXCEPTION 'Idempotency-Key must be 1 to 255 visible ASCII characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF body_hash IS NULL OR octet_length(body_hash) <> 32 THEN
        RAISE EXCEPTION 'body_hash must be a SHA-256 (32 bytes)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Held to the end of the transaction: a second request with this key
    -- waits here until the first has recorded its job (or given up).
    PERFORM pg_advisory_xact_lock(hashtextextended('acs.web_idempotency' || chr(1) || acs.actor()
                                                   || chr(1) || key, 0));
    -- (a new statement, so a new snapshot: what the first request committed is seen)
    RETURN QUERY
        SELECT i.job_id, i.body_hash = web_idempotency_claim.body_hash
          FROM acs.web_idempotency AS i
         WHERE i.actor = acs.actor() AND i.key = web_idempotency_claim.key;
END
$$;
COMMENT ON FUNCTION acs.web_idempotency_claim(text,bytea) IS
    'Web server: locks (actor, key) to the end of the transaction; the job already made with this key and whether the body was the same, or no row';
REVOKE ALL ON FUNCTION acs.web_idempotency_claim(text,bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_idempotency_claim(text,bytea) TO acs_admin, acs_operator, acs_scheduler;

CREATE OR REPLACE FUNCTION acs.web_idempotency_record(key text, body_hash bytea, job_id bigint)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    -- only a job this actor submitted can be recorded under its key
    IF NOT EXISTS (SELECT 1 FROM acs.audit AS a
                    WHERE a.action = 'submit' AND a.target = web_idempotency_record.job_id::text
                      AND a.actor = acs.actor()) THEN
        RAISE EXCEPTION 'job % was not submitted by %', job_id, acs.actor()
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- keys are kept for a day
    DELETE FROM acs.web_idempotency AS i
     WHERE (i.actor, i.key) IN (SELECT x.actor, x.key FROM acs.web_idempotency AS x
                                 WHERE x.created_at < now() - interval '1 day' LIMIT 100);
    INSERT INTO acs.web_idempotency (actor, key, body_hash, job_id)
    VALUES (acs.actor(), web_idempotency_record.key, web_idempotency_record.body_hash,
            web_idempotency_record.job_id);
END
$$;
COMMENT ON FUNCTION acs.web_idempotency_record(text,bytea,bigint) IS
    'Web server: records the job the actor just submitted under its Idempotency-Key (kept a day)';
REVOKE ALL ON FUNCTION acs.web_idempotency_record(text,bytea,bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_idempotency_record(text,bytea,bigint) TO acs_admin, acs_operator, acs_scheduler;

-- (a view runs as its owner: admins read the users through it, never the hashes)
CREATE OR REPLACE VIEW acs.web_user_list AS
SELECT w.name, w.role, w.created_at, w.created_by, w.password_changed_at, w.disabled_at
  FROM acs.web_users AS w;
REVOKE ALL ON acs.web_user_list FROM PUBLIC;
GRANT SELECT ON acs.web_user_list TO acs_admin;

CREATE OR REPLACE VIEW acs.api_token_list AS
SELECT t.name, t.role, t.created_at, t.created_by, t.revoked_at, t.last_used_at
  FROM acs.api_tokens AS t;
REVOKE ALL ON acs.api_token_list FROM PUBLIC;
GRANT SELECT ON acs.api_token_list TO acs_admin;
