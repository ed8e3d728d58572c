"""missing-constraint: an expected foreign key or unique constraint is absent or not enforced."""

from auditor.core.catalogue import Check
from auditor.core.query import Query

# The constraints Django creates on the tables this tool reasons about, matched by table
# and columns (names vary by Django version).  Only pg_catalog is read, so a role with
# nothing but SELECT on the api_* tables can run it.  A unique constraint is also
# satisfied by a valid, non-partial unique index on the same columns.
_SQL = """
SELECT CASE WHEN s.absent OR s.not_valid OR s.disabled THEN s.severity ELSE 'info' END AS severity,
       NULL::uuid AS app_uuid, NULL::text AS app_name, s.tbl AS object_table, s.label AS object_id,
       format('%%s %%s %%s: %%s', s.kind_text, s.label,
              array_to_string(array_remove(ARRAY[
                  CASE WHEN s.absent THEN 'is missing' END,
                  CASE WHEN s.not_valid THEN 'is NOT VALID (rows older than it were never checked)' END,
                  CASE WHEN s.disabled THEN 'has its triggers disabled (not enforced)' END,
                  CASE WHEN s.not_deferred THEN 'is not DEFERRABLE INITIALLY DEFERRED' END], NULL), ', '),
              CASE WHEN s.absent OR s.not_valid OR s.disabled THEN s.consequence
                   ELSE 'Django expects the check at COMMIT: its ORM deletes and migrations run several '
                        'statements in one transaction and can fail mid-way' END) AS message,
       '[]'::json AS related,
       json_build_object('problems', array_remove(ARRAY[
                             CASE WHEN s.absent THEN 'absent' END,
                             CASE WHEN s.not_valid THEN 'NOT VALID' END,
                             CASE WHEN s.disabled THEN 'triggers disabled' END,
                             CASE WHEN s.not_deferred THEN 'not DEFERRABLE INITIALLY DEFERRED' END], NULL),
                         'constraint', s.conname, 'unique_index', s.index_name,
                         'table_exists', s.rel IS NOT NULL) AS evidence
FROM (
    SELECT e.*, t.rel, k.conname, ui.index_name,
           k.conname IS NULL AND ui.index_name IS NULL AS absent,
           coalesce(NOT k.convalidated, false) AS not_valid,
           coalesce(k.disabled, false) AS disabled,
           coalesce(e.kind = 'f' AND NOT (k.condeferrable AND k.condeferred), false) AS not_deferred,
           CASE e.kind WHEN 'f' THEN 'foreign key' WHEN 'p' THEN 'primary key' ELSE 'unique constraint' END
               AS kind_text
    FROM (VALUES
        (1, 'api_release', 'f', ARRAY['config_id'], 'api_config', ARRAY['uuid'], 'critical',
         'a release can point at a config that does not exist, and deploying it fails'),
        (2, 'api_release', 'f', ARRAY['build_id'], 'api_build', ARRAY['uuid'], 'critical',
         'a release can point at a build that does not exist, and deploying it fails'),
        (3, 'api_release', 'f', ARRAY['app_id'], 'api_app', ARRAY['uuid'], 'critical',
         'releases can outlive their app, breaking boot and any listing of releases'),
        (4, 'api_release', 'f', ARRAY['owner_id'], 'auth_user', ARRAY['id'], 'warning',
         'a release can name an owner that does not exist; its summary and API output fail'),
        (5, 'api_config', 'f', ARRAY['app_id'], 'api_app', ARRAY['uuid'], 'warning',
         'configs can outlive their app'),
        (6, 'api_config', 'f', ARRAY['owner_id'], 'auth_user', ARRAY['id'], 'warning',
         'a config can name an owner that does not exist'),
        (7, 'api_build', 'f', ARRAY['app_id'], 'api_app', ARRAY['uuid'], 'warning',
         'builds can outlive their app'),
        (8, 'api_build', 'f', ARRAY['owner_id'], 'auth_user', ARRAY['id'], 'warning',
         'a build can name an owner that does not exist'),
        (9, 'api_app', 'f', ARRAY['owner_id'], 'auth_user', ARRAY['id'], 'warning',
         'an app can name an owner that does not exist; permission checks on it fail'),
        (10, 'api_release', 'u', ARRAY['app_id', 'version'], NULL, NULL, 'critical',
         'two releases of an app can get the same version; Release.new and rollback to it break'),
        (11, 'api_config', 'u', ARRAY['app_id', 'uuid'], NULL, NULL, 'warning',
         'the (app, uuid) key Django declares is not enforced'),
        (12, 'api_build', 'u', ARRAY['app_id', 'uuid'], NULL, NULL, 'warning',
         'the (app, uuid) key Django declares is not enforced'),
        (13, 'api_app', 'u', ARRAY['id'], NULL, NULL, 'warning',
         'two apps can get the same name; the controller finds apps by name'),
        (14, 'api_app', 'p', ARRAY['uuid'], NULL, NULL, 'warning',
         'app uuids are not guaranteed unique, and foreign keys to them cannot exist'),
        (15, 'api_config', 'p', ARRAY['uuid'], NULL, NULL, 'warning',
         'config uuids are not guaranteed unique, and foreign keys to them cannot exist'),
        (16, 'api_build', 'p', ARRAY['uuid'], NULL, NULL, 'warning',
         'build uuids are not guaranteed unique, and foreign keys to them cannot exist'),
        (17, 'api_release', 'p', ARRAY['uuid'], NULL, NULL, 'warning',
         'release uuids are not guaranteed unique')
    ) AS v(ord, tbl, kind, cols, ref_tbl, ref_cols, severity, consequence)
    CROSS JOIN LATERAL (
        SELECT v.*,
               CASE v.kind
                   WHEN 'f' THEN format('%%s(%%s) -> %%s(%%s)', v.tbl, array_to_string(v.cols, ', '),
                                        v.ref_tbl, array_to_string(v.ref_cols, ', '))
                   WHEN 'p' THEN format('%%s PRIMARY KEY (%%s)', v.tbl, array_to_string(v.cols, ', '))
                   ELSE format('%%s UNIQUE (%%s)', v.tbl, array_to_string(v.cols, ', ')) END AS label
    ) AS e
    LEFT JOIN LATERAL (
        SELECT (SELECT c.oid FROM pg_catalog.pg_class c
                WHERE c.relname = e.tbl AND c.relkind = 'r' AND pg_catalog.pg_table_is_visible(c.oid)) AS rel,
               (SELECT c.oid FROM pg_catalog.pg_class c
                WHERE c.relname = e.ref_tbl AND c.relkind = 'r' AND pg_catalog.pg_table_is_visible(c.oid)) AS ref_rel
    ) AS t ON true
    LEFT JOIN LATERAL (
        SELECT kc.conname, kc.convalidated, kc.condeferrable, kc.condeferred,
               EXISTS (SELECT 1 FROM pg_catalog.pg_trigger tg
                       WHERE tg.tgconstraint = kc.oid AND tg.tgenabled = 'D') AS disabled
        FROM pg_catalog.pg_constraint kc
        WHERE kc.conrelid = t.rel
          AND kc.contype = ANY (CASE e.kind WHEN 'u' THEN ARRAY['u', 'p']::"char"[] ELSE ARRAY[e.kind]::"char"[] END)
          AND ARRAY(SELECT a.attname::text FROM unnest(kc.conkey) AS u(attnum)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = kc.conrelid AND a.attnum = u.attnum)
              <@ e.cols
          AND array_length(kc.conkey, 1) = array_length(e.cols, 1)
          AND (e.kind <> 'f' OR (
                kc.confrelid = t.ref_rel
                AND ARRAY(SELECT a.attname::text FROM unnest(kc.confkey) AS u(attnum)
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = kc.confrelid AND a.attnum = u.attnum)
                    = e.ref_cols))
        ORDER BY kc.convalidated DESC, disabled, (kc.condeferrable AND kc.condeferred) DESC, kc.conname
        LIMIT 1
    ) AS k ON true
    LEFT JOIN LATERAL (
        SELECT ix.indexrelid::regclass::text AS index_name
        FROM pg_catalog.pg_index ix
        WHERE e.kind = 'u' AND ix.indrelid = t.rel AND ix.indisunique AND ix.indisvalid
          AND ix.indpred IS NULL AND ix.indexprs IS NULL
          AND ARRAY(SELECT a.attname::text FROM unnest(ix.indkey::int2[]) AS u(attnum)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = u.attnum)
              <@ e.cols
          AND ix.indnatts = array_length(e.cols, 1)
        ORDER BY 1
        LIMIT 1
    ) AS ui ON true
) s
WHERE s.absent OR s.not_valid OR s.disabled OR s.not_deferred
"""

CHECK = Check(
    id="missing-constraint",
    severity="critical",
    levels=("critical", "warning", "info"),
    title="Expected foreign key or unique constraint missing or not enforced",
    rationale="""\
The controller relies on the constraints Django created: the foreign keys from releases
to their config, build and app, from configs and builds to their app, from every row to
its owner, the UNIQUE(app_id, version) of releases, the UNIQUE(app_id, uuid) of configs
and builds, the unique app name and the uuid primary keys.  A constraint that is absent
(dropped by hand or lost in a restore), `NOT VALID` (added without checking the rows
already there) or whose triggers are disabled (`ALTER TABLE ... DISABLE TRIGGER ALL`) no
longer protects the data: the controller never checks references itself, so releases
can point at configs or builds that do not exist (deploy, rollback and boot then fail
with `DoesNotExist`), and without UNIQUE(app_id, version) two concurrent deploys can
both write the same version, after which `Release.new` and a rollback to that version
pick either row.  Critical for the release's config, build and app keys and its
(app_id, version) unique; warning for the others.  A foreign key that is not
`DEFERRABLE INITIALLY DEFERRED` is reported as info: Django creates every key deferred
and its ORM deletes (the cascades) and migrations run several statements in one
transaction expecting the check at COMMIT, so a non-deferred key can make them fail
mid-way.  Matched by table and columns in
`pg_constraint` (names vary by Django version); needs no privilege beyond reading the
catalogue.  This check is about the whole database and is skipped under `--app` unless
selected with `--check`.""",
    passes=(),
    sql=Query(_SQL),
    database_level=True,
)
