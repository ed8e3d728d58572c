"""latest-config-not-live: the app's newest config is not the live release's config."""

from auditor.core.catalogue import Check
from checks._latest import latest_count_sql, latest_levels, latest_passes, latest_sql

CHECK = Check(
    id="latest-config-not-live",
    severity="warning",
    levels=("critical", "warning"),
    title="Newest config (config_set.latest()) is not the live release's",
    rationale="""\
The app's newest config by `created` (`config_set.latest()`, ORDER BY created DESC LIMIT 1)
is not the config of the live release (the controller's: its newest release by `created`
that did not fail).  What that breaks depends on the controller (`controller-schema.md` §8).
From Deis v2.1 on (api migration 0010 and later, every Hephy) `config:set` merges the new
keys over the live release's config, so the row does *not* leak into the next release; it
matters to boot, which runs `config_set.latest().save()` and so re-saves that row on every
restart, merging the live config's keys under it (the row's content changes each time: a
rolled-back-from release's config gets keys back that were unset there), and to
`App.create`, which builds v1 on it once an app has lost every release: a warning.  Deis
v2.0 (migrations before 0010) merged every `config:set` over `config_set.latest()`: there
the next `config:set` silently brings back values nobody released, and the finding is
critical.  Evidence `cause` says how it happened: `orphan` (no release uses it: a failed
deploy left it), `failed-release` (only failed releases use it: a failed deploy on Deis
2.7+/Hephy), `rollback` (an older non-failed release uses it: the live release reused an
older config); `consequence` names what reads the row (`boot` or `config:set`).  Apps
without a live release or whose live release is ambiguous (releases tied on `created`:
`release-order`), newest configs in flight (created within the grace period before now or
the clock skew after it), and a live config tied for the newest `created`
(`latest-ambiguous`) are skipped.  A newest config dated in the future is reported here and
by `future-dated`.""",
    repair="restore-latest",
    levels_on=latest_levels("config"),
    passes=latest_passes("config"),
    sql=lambda generation: latest_sql("config", generation),
    count_sql=lambda generation: latest_count_sql("config", generation),
)
