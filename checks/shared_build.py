"""shared-build: a build referenced by more than one release, with its blast radius."""

from auditor.catalogue import Check
from checks._shared import shared_passes, shared_sql

CHECK = Check(
    id="shared-build",
    severity="critical",
    levels=("critical", "warning", "info"),
    title="Build shared by several releases (ORM delete blast radius)",
    rationale="""\
Django cascades Build -> Release: an ORM delete of a build row (an image cleanup, the
admin) deletes every release that references it, the live one included, and the controller
loses the versions it could roll back to.  A `config:set` reuses the current build and a
rollback the old release's, so sharing is normal; a NULL build is no build and is never
shared.  The evidence gives the blast radius (releases a delete removes, whether the live
release is among them, their versions).  Severity, as for `shared-config`: `info` for one
contiguous run of the app's releases in position order (failed releases that do not use
the row do not break it); `warning` for a non-contiguous run (a rollback reused the build);
`critical` when that reuse puts the live release in the blast radius of an old build.  A
shared build that is the app's `build_set.latest()` but not the live release's is a
`warning`, not critical as for configs: current controllers no longer call
`build_set.latest()`.""",
    repair="unshare",
    passes=shared_passes("build"),
    sql=shared_sql("build"),
)
