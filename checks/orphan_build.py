"""orphan-build: a build that no release references."""

from auditor.core.catalogue import Check
from checks._orphans import orphan_count_sql, orphan_levels, orphan_passes, orphan_sql

CHECK = Check(
    id="orphan-build",
    severity="critical",
    levels=("critical", "info"),
    title="Build used by no release",
    rationale="""\
A build row that no release points at was left behind by a push whose deploy failed
after the build was inserted (Deis v2.1-v2.2 created the release outside the error
handling), or by an error between the build and its release.  It holds an image nobody
released.  It matters only when it is the app's newest build, `build_set.latest()`: Deis up
to api migration 0019 diffs every push's procfile against that row and the push fails
(`404 Container type ... does not exist`, `controller-schema.md` §8), critical there (as
`latest-build-not-live` reports from the live release's side); Deis 2.7+ and Hephy never
read it, and any other orphan is clutter nothing reads: `info`.  Rows in flight (created
within the grace period before now or the clock skew after it) are not reported.""",
    repair="prune-orphans",
    levels_on=orphan_levels("build"),
    passes=orphan_passes("build"),
    sql=lambda generation: orphan_sql("build", generation),
    count_sql=lambda generation: orphan_count_sql("build", generation),
)
