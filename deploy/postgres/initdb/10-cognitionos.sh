#!/bin/sh
# First start of the pgvector/pgvector container (docker-entrypoint-initdb.d): the
# application's role and database, the extensions its migrations need, and the role SQL
# steps run as, set up as README "Security model" asks (the same as the embedded mode):
# no superuser, nothing in public readable, read-only, limits it cannot change, and the
# sql_sandbox schema whose tables are what SQL steps may read.
# Passwords come from deploy/.env through compose (COGNITIONOS_DB_PASSWORD,
# SQL_READER_PASSWORD); they go through psql variables, never into the SQL text.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v app_password="$COGNITIONOS_DB_PASSWORD" \
    -v reader_password="$SQL_READER_PASSWORD" <<'SQL'
CREATE ROLE cognitionos LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
CREATE DATABASE cognitionos OWNER cognitionos;
CREATE ROLE cognitionos_sql_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    NOBYPASSRLS CONNECTION LIMIT 50 PASSWORD :'reader_password';
ALTER ROLE cognitionos_sql_reader SET statement_timeout = 5000;
ALTER ROLE cognitionos_sql_reader SET default_transaction_read_only = on;
ALTER ROLE cognitionos_sql_reader SET search_path = sql_sandbox, public;
ALTER ROLE cognitionos_sql_reader SET temp_file_limit = '256MB';
ALTER ROLE cognitionos_sql_reader SET idle_in_transaction_session_timeout = 5000;
\connect cognitionos
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
-- Advisory locks are the application's, and signals would let one user's step cancel
-- another's: neither is for PUBLIC here (the application's role owns the database and
-- is granted them back).
DO $$ DECLARE f regprocedure; BEGIN
  FOR f IN SELECT oid::regprocedure FROM pg_proc
           WHERE proname ~ '^pg_(try_)?advisory' OR proname IN ('pg_cancel_backend',
                 'pg_terminate_backend', 'pg_advisory_unlock_all')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO cognitionos', f);
  END LOOP;
END $$;
ALTER DEFAULT PRIVILEGES FOR ROLE cognitionos IN SCHEMA public
    REVOKE ALL ON TABLES FROM PUBLIC, cognitionos_sql_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE cognitionos IN SCHEMA public
    REVOKE ALL ON SEQUENCES FROM PUBLIC, cognitionos_sql_reader;
CREATE SCHEMA sql_sandbox AUTHORIZATION cognitionos;
GRANT USAGE ON SCHEMA sql_sandbox TO cognitionos_sql_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE cognitionos IN SCHEMA sql_sandbox
    GRANT SELECT ON TABLES TO cognitionos_sql_reader;
SQL
