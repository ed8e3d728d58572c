"""latest-build-not-live: the app's newest build is not the live release's build."""

from auditor.core.catalogue import Check
from checks._latest import latest_count_sql, latest_levels, latest_passes, latest_sql

CHECK = Check(
    id="latest-build-not-live",
    severity="critical",
    levels=("critical", "info"),
    title="Newest build (build_set.latest()) is not the live release's",
    rationale="""\
`build_set.latest()` (the app's build with the greatest `created`) is not the build of the
live release (the controller's: its newest release by `created` that did not fail), or the
live release has no build (v1, config-only releases before the first build) while the app
has one.  Deis up to api migration 0019 diffs every push's procfile against
`build_set.latest()` in `Build.save` and scales down each process type missing from the new
build: when that row is an orphan, a failed push's build or a rolled-back-from build, the
scale-down names a process type the live release does not run and the push fails with `404
Container type worker does not exist in application` (`controller-schema.md` §8): critical
there.  Deis 2.7+ (0020 and later) and Hephy never call `build_set.latest()`: only scripts
and older controllers read it, so there the finding is `info`.  Evidence `cause`: `orphan`
(no release uses it), `failed-release` (only failed releases use it), `rollback` (an older
non-failed release uses it); `consequence`: `push` or `none`.  Apps without a live release
or without any build, whose live release is ambiguous (`release-order`), newest builds in
flight (within the grace period before now or the clock skew after it), and a live build
tied for the newest `created` (`latest-ambiguous`) are skipped.""",
    repair="restore-latest",
    levels_on=latest_levels("build"),
    passes=latest_passes("build"),
    sql=lambda generation: latest_sql("build", generation),
    count_sql=lambda generation: latest_count_sql("build", generation),
)
