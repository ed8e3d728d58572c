"""latest-config-not-live: the app's newest config is not the live release's config."""

from auditor.catalogue import Check
from checks._latest import latest_passes, latest_sql

CHECK = Check(
    id="latest-config-not-live",
    severity="critical",
    levels=("critical", "warning"),
    title="Newest config (config_set.latest()) is not the live release's",
    rationale="""\
The controller still reads "the app's latest config" by `created`
(`config_set.latest()`, ORDER BY created DESC LIMIT 1): boot runs
`config_set.latest().save()` and re-publishes it, `App.create` and the `Config.save`
fallback build on it, and Deis v2.0 merged every `config:set` over it.  When that row is not
the live release's config, the controller resurrects values nobody released: boot merges
the live config's keys under the wrong row and strips keys there, and an old controller's
next `config:set` silently inherits the unreleased values.  Evidence `cause` says how it
happened: `orphan` (no release uses it: a failed deploy left it, the "poisoned latest"),
`failed-release` (only failed releases use it: a failed deploy on Deis 2.7+/Hephy), both
critical; `rollback` (a non-failed release older than the live one uses it, because the live
release reused an older config), a warning, since the next boot writes to the rolled-back-from
release's row.  Apps without a live release, newest configs younger than the grace period
(a deploy in flight), and a live config tied for the newest `created` (`latest-ambiguous`
reports that) are skipped.""",
    repair="restore-latest",
    passes=latest_passes("config"),
    sql=latest_sql("config"),
)
