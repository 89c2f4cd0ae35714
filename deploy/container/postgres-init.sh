#!/bin/sh
# postgres-init.sh - run once by the postgres image when it creates the
# database (/docker-entrypoint-initdb.d/), as its superuser: one login per
# program, none of them a superuser (SPEC 5, 7). paystream_owner owns the
# database and runs the migrations (it creates the NOLOGIN group roles, so it
# may create roles); the workers, the operators' paystreamctl and the app each
# log in under their own group. Passwords come from the compose secrets.
set -eu
pw() { sed "s/'/''/g" "/run/secrets/$1"; }
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE paystream_owner LOGIN CREATEROLE PASSWORD '$(pw pg_owner_password)';
ALTER DATABASE "$POSTGRES_DB" OWNER TO paystream_owner;
CREATE ROLE paystream_worker NOLOGIN;
CREATE ROLE paystream_app NOLOGIN;
CREATE ROLE paystream_operator NOLOGIN;
CREATE ROLE paystream_user NOLOGIN;
CREATE ROLE paystream_worker_login LOGIN PASSWORD '$(pw pg_worker_password)' IN ROLE paystream_worker;
CREATE ROLE paystream_operator_login LOGIN PASSWORD '$(pw pg_operator_password)' IN ROLE paystream_operator;
CREATE ROLE paystream_app_login LOGIN PASSWORD '$(pw pg_app_password)' IN ROLE paystream_app;
SQL
