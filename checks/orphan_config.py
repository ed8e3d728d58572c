"""orphan-config: a config that no release references."""

from auditor.catalogue import Check
from checks._orphans import orphan_passes, orphan_sql

CHECK = Check(
    id="orphan-config",
    severity="warning",
    levels=("critical", "warning"),
    title="Config used by no release",
    rationale="""\
A config row that no release points at was left behind by a deploy that failed after the
config was inserted (Deis before v2.7 deleted only the failed release; a 409 "changed
nothing" or an error before the release insert leaves one today).  The controller picks
"the app's latest config" by `created`, so when the orphan is the newest config it is a
*poisoned latest*: boot re-saves it and older controllers merge the next `config:set` over
it, silently resurrecting values the user never released.  Reported as critical when the
orphan is the app's latest config, warning otherwise.  Rows younger than the grace period
are a deploy in flight and are not reported.""",
    repair="prune-orphans",
    passes=orphan_passes("config"),
    sql=orphan_sql("config"),
)
