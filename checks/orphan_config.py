"""orphan-config: a config that no release references."""

from auditor.core.catalogue import Check
from checks._orphans import orphan_count_sql, orphan_levels, orphan_passes, orphan_sql

CHECK = Check(
    id="orphan-config",
    severity="warning",
    levels=("critical", "warning", "info"),
    title="Config used by no release",
    rationale="""\
A config row that no release points at was left behind by a deploy that failed after the
config was inserted (Deis before v2.7 deleted only the failed release; a 409 "changed
nothing" or an error before the release insert leaves one today).  It matters only when it
is the app's newest config, `config_set.latest()` (a *poisoned latest*): boot re-saves it on
every restart and `App.create` builds v1 on it once the app has lost every release, a
warning; on Deis v2.0 (api migrations before 0010) the next `config:set` merges over it and
brings back values nobody released, critical (`controller-schema.md` §8; the
`latest-config-not-live` finding says the same from the live release's side).  Any other
orphan is clutter nothing reads: `info`.  Rows in flight (created within the grace period
before now or the clock skew after it) are not reported.""",
    repair="prune-orphans",
    levels_on=orphan_levels("config"),
    passes=orphan_passes("config"),
    sql=lambda generation: orphan_sql("config", generation),
    count_sql=lambda generation: orphan_count_sql("config", generation),
)
