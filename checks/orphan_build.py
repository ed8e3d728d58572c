"""orphan-build: a build that no release references."""

from auditor.catalogue import Check
from checks._orphans import orphan_passes, orphan_sql

CHECK = Check(
    id="orphan-build",
    severity="warning",
    title="Build used by no release",
    rationale="""\
A build row that no release points at was left behind by a push whose deploy failed
after the build was inserted (Deis v2.1-v2.2 created the release outside the error
handling), or by an error between the build and its release.  It holds an image nobody
released.  Deis v2.0 diffed the next push's procfile against `build_set.latest()`, so an
orphan that is the app's newest build skewed scaling of the next release; today it is
clutter that any `build_set.latest()` in a script or migration would pick up, and its
image may no longer exist in the registry (warning; `latest-build-not-live` reports the
newest-build case).  Rows younger than the grace period are
a deploy in flight and are not reported.""",
    repair="prune-orphans",
    passes=orphan_passes("build"),
    sql=orphan_sql("build"),
)
