"""Controller database schemas, as the controller's own migrations leave them.

``schema_0019.sql`` is the catalogue after api migration 0019 (old Deis); each later
migration is replayed as the DDL it applies, so the column order, types, constraints and
indexes match what Django builds.  ``tests/test_schema_fixtures.py`` compares the result
with the reference dumps in ``../shared/schema/``.  All DDL here runs on PostgreSQL 9.4.
"""

from __future__ import annotations

from importlib import resources

from psycopg import sql

from auditor.core.migrations import API_MIGRATIONS

#: Migration rows of the other Django apps a controller database holds (Django 2.2).
OTHER_MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("contenttypes", "0001_initial"),
    ("auth", "0001_initial"),
    ("contenttypes", "0002_remove_content_type_name"),
    ("auth", "0002_alter_permission_name_max_length"),
    ("auth", "0003_alter_user_email_max_length"),
    ("auth", "0004_alter_user_username_opts"),
    ("auth", "0005_alter_user_last_login_null"),
    ("auth", "0006_require_contenttypes_0002"),
    ("auth", "0007_alter_validators_add_error_messages"),
    ("auth", "0008_alter_user_username_max_length"),
    ("auth", "0009_alter_user_last_name_max_length"),
    ("auth", "0010_alter_group_name_max_length"),
    ("auth", "0011_update_proxy_permissions"),
    ("authtoken", "0001_initial"),
    ("authtoken", "0002_auto_20160226_1747"),
    ("authtoken", "0003_tokenproxy"),
    ("guardian", "0001_initial"),
    ("guardian", "0002_generic_permissions_index"),
    ("sessions", "0001_initial"),
)

#: The DDL each migration after 0019 applies, keyed by migration number.
MIGRATION_DDL: dict[int, str] = {
    20: "ALTER TABLE api_release ADD COLUMN failed boolean DEFAULT false NOT NULL;\n"
    "ALTER TABLE api_release ALTER COLUMN failed DROP DEFAULT;",
    21: "ALTER TABLE api_appsettings ADD COLUMN label text DEFAULT '{}' NOT NULL;\n"
    "ALTER TABLE api_appsettings ALTER COLUMN label DROP DEFAULT;",
    22: "",
    23: "ALTER TABLE api_app ALTER COLUMN id TYPE character varying(63);",
    24: "ALTER TABLE api_config ADD COLUMN lifecycle_post_start text DEFAULT '{}' NOT NULL;\n"
    "ALTER TABLE api_config ALTER COLUMN lifecycle_post_start DROP DEFAULT;\n"
    "ALTER TABLE api_config ADD COLUMN lifecycle_pre_stop text DEFAULT '{}' NOT NULL;\n"
    "ALTER TABLE api_config ALTER COLUMN lifecycle_pre_stop DROP DEFAULT;",
    25: "ALTER TABLE api_app ADD COLUMN procfile_structure text DEFAULT '{}' NOT NULL;\n"
    "ALTER TABLE api_app ALTER COLUMN procfile_structure DROP DEFAULT;",
    26: "ALTER TABLE api_release ADD COLUMN exception text;",
    27: """CREATE TABLE api_service (
    id serial NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    procfile_type text NOT NULL,
    path_pattern text NOT NULL,
    app_id uuid NOT NULL,
    owner_id integer NOT NULL
);
ALTER TABLE api_service ADD CONSTRAINT api_service_pkey PRIMARY KEY (id);
ALTER TABLE api_service
    ADD CONSTRAINT api_service_app_id_procfile_type_75ffa225_uniq UNIQUE (app_id, procfile_type);
CREATE INDEX api_service_app_id_04940f79 ON api_service USING btree (app_id);
CREATE INDEX api_service_owner_id_ac19479b ON api_service USING btree (owner_id);
ALTER TABLE api_service
    ADD CONSTRAINT api_service_app_id_04940f79_fk_api_app_uuid FOREIGN KEY (app_id)
    REFERENCES api_app(uuid) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE api_service
    ADD CONSTRAINT api_service_owner_id_ac19479b_fk_auth_user_id FOREIGN KEY (owner_id)
    REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;""",
    28: "ALTER TABLE api_config ADD COLUMN termination_grace_period text DEFAULT '{}' NOT NULL;\n"
    "ALTER TABLE api_config ALTER COLUMN termination_grace_period DROP DEFAULT;",
}

#: The oldest and newest migration this module can build.
OLDEST_BUILDABLE = 19
NEWEST = len(API_MIGRATIONS)

#: The generations the test bed builds by default: old Deis, last Deis, current Hephy.
STANDARD_MIGRATIONS: tuple[int, ...] = (19, 23, 28)


def schema_sql(migration: int = NEWEST) -> str:
    """The DDL and ``django_migrations`` rows of a controller database at ``migration``."""
    if not OLDEST_BUILDABLE <= migration <= NEWEST:
        raise ValueError(f"can build api migrations {OLDEST_BUILDABLE}..{NEWEST}, not {migration}")
    parts = [resources.files(__package__).joinpath("sql/schema_0019.sql").read_text()]
    parts += [MIGRATION_DDL[n] for n in range(20, migration + 1) if MIGRATION_DDL[n]]
    rows = list(OTHER_MIGRATIONS[:2])
    rows += [("api", name) for name in API_MIGRATIONS[:migration]]
    rows += list(OTHER_MIGRATIONS[2:])
    values = sql.SQL(",\n").join(sql.SQL("({}, {}, '2019-01-01 00:00:00+00')").format(sql.Literal(app), sql.Literal(name))
                                  for app, name in rows)
    parts.append(sql.SQL("INSERT INTO django_migrations (app, name, applied) VALUES\n{};").format(values).as_string(None))
    return "\n\n".join(parts) + "\n"
