"""latest-build-not-live: the app's newest build is not the live release's build."""

from auditor.catalogue import Check
from checks._latest import latest_passes, latest_sql

CHECK = Check(
    id="latest-build-not-live",
    severity="warning",
    levels=("warning", "info"),
    title="Newest build (build_set.latest()) is not the live release's",
    rationale="""\
`build_set.latest()` (the app's build with the greatest `created`) is not the build of the
live release, or the live release has no build (v1, config-only releases before the first
build, a rollback to v1 on old Deis) while the app has one.  Deis v2.0 diffed every push's
procfile against `build_set.latest()`, so an orphaned or failed build there scaled the next
release from a procfile that never ran; current controllers no longer call it, but any script,
migration or older controller that does deploys an image nobody released.  Evidence `cause`:
`orphan` (no release uses it) and `failed-release` (only failed releases use it) are
warnings, `rollback` (an older non-failed release uses it) is info.  Apps without a live
release or without any build, newest builds younger than the grace period, and a live build
tied for the newest `created` (`latest-ambiguous` reports that) are skipped.""",
    repair="restore-latest",
    passes=latest_passes("build"),
    sql=latest_sql("build"),
)
