-- The SELECT-only role the CronJob logs in as (the README's "least-privilege role").
-- Run it as a superuser or the database owner, in the controller's database:
--   psql -v ON_ERROR_STOP=1 -d deis -f docs/deploy/audit-role.sql
-- then put the password into the Secret (secret.example.yaml).  Audits need nothing more:
-- they run in one READ ONLY transaction and work on a hot standby too.
CREATE ROLE controller_audit LOGIN PASSWORD 'CHANGE-ME';
GRANT CONNECT ON DATABASE deis TO controller_audit;
GRANT USAGE ON SCHEMA public TO controller_audit;
GRANT SELECT ON api_app, api_config, api_build, api_release, api_appsettings, api_tls,
  api_domain, api_certificate, api_key, django_migrations TO controller_audit;
-- Hephy (migration 0027+) only; leave it out on older Deis databases:
GRANT SELECT ON api_service TO controller_audit;
