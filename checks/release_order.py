"""release-order: the app's newest release by ``created`` is not its highest version, the
newest releases tie on ``created``, the newest is dated in the future, or versions repeat.

The controller numbers the next release ``release_set.latest().version + 1``, where
``latest()`` is the newest release by ``created`` over all releases, failed ones too
(``controller-schema.md`` §8).  Read from the window pass: only the few rows at an app's
newest ``created``, its highest version, its live ``created`` or a repeated version are
grouped.
"""

from auditor.core.catalogue import Check
from auditor.core.passes import future_dated
from auditor.core.query import Query

_SQL = """
WITH o AS (
    SELECT p.app_id, max(p.app_max_version) AS max_version, max(p.app_releases) AS releases,
           max(p.app_newest_created) AS newest_created, max(p.app_live_created) AS live_created,
           count(*) FILTER (WHERE p.created = p.app_newest_created) AS newest_count,
           max(p.version) FILTER (WHERE p.created = p.app_newest_created) AS newest_top_version,
           min(p.version) FILTER (WHERE p.created = p.app_newest_created) AS newest_low_version,
           (array_agg(p.version ORDER BY p.version) FILTER (WHERE p.created = p.app_newest_created))[1:20]
               AS newest_versions,
           bool_or(p.next_version = p.version + 1)
               FILTER (WHERE p.created = p.app_newest_created AND p.version < p.app_max_version) AS next_exists,
           bool_or({future}) FILTER (WHERE p.created = p.app_newest_created) AS newest_future,
           max(p.created) FILTER (WHERE p.version = p.app_max_version) AS max_created,
           (array_agg(p.uuid ORDER BY p.created DESC, p.uuid DESC)
                FILTER (WHERE p.version = p.app_max_version))[1] AS max_uuid,
           count(*) FILTER (WHERE NOT p.failed AND p.created = p.app_live_created) AS live_count,
           (array_agg(p.version ORDER BY p.version)
                FILTER (WHERE NOT p.failed AND p.created = p.app_live_created))[1:20] AS live_versions,
           (array_agg(DISTINCT p.version) FILTER (WHERE p.version = p.prev_version))[1:20] AS duplicates,
           array_to_json((array_agg(json_build_object('uuid', p.uuid, 'version', p.version, 'failed', p.failed,
                                                      'created', p.created,
                                                      'newest', p.created = p.app_newest_created,
                                                      'highest', p.version = p.app_max_version)
                                    ORDER BY p.created DESC, p.version DESC, p.uuid DESC)
                          FILTER (WHERE p.created = p.app_newest_created OR p.version = p.app_max_version))[1:100])
               AS related
    FROM rel_notable p
    WHERE p.created = p.app_newest_created OR p.version = p.app_max_version OR p.version = p.prev_version
       OR (NOT p.failed AND p.created = p.app_live_created)
    GROUP BY p.app_id
), b AS (
    SELECT o.*,
           o.newest_count > 1 AS tie,
           o.newest_top_version < o.max_version AS out_of_order,
           o.live_count > 1 AND o.live_created <> o.newest_created AS live_tie,
           o.duplicates IS NOT NULL AS repeated,
           -- the newest release is the highest version but dated in the future: every release
           -- written until then is dated before it (covered by out_of_order when not the highest)
           o.newest_future AND o.newest_count = 1 AND o.newest_top_version = o.max_version AS future_top
    FROM o
)
SELECT CASE WHEN b.tie OR b.out_of_order OR b.live_tie OR b.future_top THEN 'critical' ELSE 'warning' END
           AS severity,
       b.app_id AS app_uuid, a.name AS app_name, 'api_app' AS object_table, b.app_id::text AS object_id,
       concat_ws('; ',
           CASE WHEN b.out_of_order AND NOT b.tie THEN format(
               'release_set.latest() (the newest release by created) is v%%s (created %%s), not the highest '
               'version v%%s (created %%s): the controller numbers the next release v%%s, %%s',
               b.newest_top_version, b.newest_created, b.max_version, b.max_created, b.newest_top_version + 1,
               CASE WHEN b.next_exists
                    THEN 'which exists, so every config:set, push, pull and rollback of the app fails on '
                         'UNIQUE(app_id, version) (a 400, or a 500 that leaves an orphan config behind)'
                    ELSE 'a free number, and the deploy after it fails on UNIQUE(app_id, version) once the '
                         'numbering reaches an existing version' END) END,
           CASE WHEN b.tie THEN format(
               'releases v%%s share the newest created (%%s): release_set.latest() returns any of them and the '
               'controller numbers the next release from whichever it returns, so %%s',
               array_to_string(b.newest_versions, ', v'), b.newest_created,
               CASE WHEN b.out_of_order OR b.newest_low_version < b.max_version
                    THEN 'config:set, push, pull and rollback fail on UNIQUE(app_id, version) whenever it returns '
                         'an older one than v' || b.max_version
                    ELSE 'the next version is a coin toss between them' END) END,
           CASE WHEN b.live_tie THEN format(
               'releases v%%s did not fail and share the newest created among those (%%s): the controller''s '
               'live release (deploy, scale, config:set, boot) may be any of them',
               array_to_string(b.live_versions, ', v'), b.live_created) END,
           CASE WHEN b.future_top THEN format(
               'v%%s, the highest version and release_set.latest(), is dated %%s, %%s ahead of the database''s '
               'clock: every release the controller writes until then is dated before it, so every next '
               'release is numbered v%%s: the next deploy is, and the one after it fails on UNIQUE(app_id, '
               'version)%%s', b.max_version, b.newest_created, date_trunc('second', b.newest_created - now()),
               b.max_version + 1,
               CASE WHEN b.live_created = b.newest_created
                    THEN format(', and v%%s stays the live release whatever is deployed after it', b.max_version)
                    ELSE '' END) END,
           CASE WHEN b.repeated THEN format(
               'versions repeat (v%%s): UNIQUE(app_id, version) is not enforced (missing-constraint), a '
               'rollback to such a version fails, and no repair guesses which row keeps the number',
               array_to_string(b.duplicates, ', v')) END) AS message,
       coalesce(b.related, '[]'::json) AS related,
       json_build_object('problems', array_to_json(array_remove(ARRAY[
                             CASE WHEN b.out_of_order THEN 'out-of-order' END, CASE WHEN b.tie THEN 'tie' END,
                             CASE WHEN b.live_tie THEN 'live-tie' END,
                             CASE WHEN b.future_top THEN 'future-newest' END,
                             CASE WHEN b.repeated THEN 'duplicate-versions' END], NULL)),
                         'newest_created', b.newest_created, 'newest_versions', b.newest_versions,
                         'highest_version', b.max_version, 'highest_release', b.max_uuid,
                         'highest_created', b.max_created,
                         'next_version', b.newest_top_version + 1, 'next_version_exists', coalesce(b.next_exists, false),
                         'live_created', b.live_created, 'live_versions', b.live_versions,
                         'duplicate_versions', b.duplicates, 'releases', b.releases) AS evidence,
       CASE WHEN b.repeated THEN format(
           'versions repeat (v%%s): which release keeps the number cannot be known from the database; not '
           'repaired by guesswork (restore UNIQUE(app_id, version) by hand)',
           array_to_string(b.duplicates[1:10], ', v')) END AS manual
FROM b
LEFT JOIN apps a ON a.uuid = b.app_id
WHERE b.tie OR b.out_of_order OR b.live_tie OR b.future_top OR b.repeated
"""

CHECK = Check(
    id="release-order",
    severity="critical",
    levels=("critical", "warning"),
    title="Newest release by created is not the highest version (the next deploy fails)",
    rationale="""\
The controller numbers a new release `release_set.latest().version + 1`, where `latest()` is
the app's newest release by `created` over *all* its releases, failed ones too, and it takes
as the live release the newest by `created` that did not fail (every release before
migration 0020).  Neither looks at the version number.  When the newest release by
`created` is not the highest version (a controller host's clock went backwards, a row was
re-dated by hand, a restore), the next number already exists and every `config:set`, push,
pull and rollback of the app fails on `UNIQUE(app_id, version)` (HTTP 400, or a 500 that
leaves an orphan config behind on Deis) until the order is fixed (`controller-schema.md`
§8); when several releases tie on the newest `created` (SQL `now()` inside one transaction)
`latest()` returns any of them and deploys fail at random; when releases that did not fail
tie for the live release, deploy, scale, `config:set` and boot may each use another one;
when the newest release is the highest version but dated in the future (after `now()` plus
`--skew`: a controller host's clock ran ahead, see `future-dated`), every release written
until then is dated before it, so the next deploy is numbered from it and the one after
that fails the same way.  All four are critical.  Repeated versions (only possible without the unique constraint,
see `missing-constraint`) are reported as a warning when they do not break the next deploy:
a rollback to such a version fails.  The repair `release-order` is opt-in (`plan --repair
release-order`): it moves the highest version's `created` one microsecond past the others
(or moves a future-dated release back before it; a future-dated highest version moves back
to one microsecond after the newest other release), which can change which release the
controller considers live; it never touches apps with repeated versions.  One finding per
app; evidence: `problems`, the newest releases, the highest version, the next version and
whether it exists.""",
    repair="release-order",
    passes=("rel_notable", "apps"),
    sql=Query(_SQL, {"future": future_dated("p.created")}),
)
