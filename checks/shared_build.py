"""shared-build: a build referenced by more than one release, with its blast radius."""

from auditor.core.catalogue import Check
from checks._shared import cross_shared_passes, cross_shared_sql, shared_count_sql, shared_passes, shared_sql

CHECK = Check(
    id="shared-build",
    severity="critical",
    levels=("critical", "warning", "info"),
    title="Build shared by several releases (ORM delete blast radius)",
    rationale="""\
Django cascades Build -> Release: an ORM delete of a build row (an image cleanup, the
admin) deletes every release that references it, whatever app it belongs to, the live one
included, and the controller loses the versions it could roll back to.  A `config:set`
reuses the current build and a rollback the old release's, so sharing inside one app is
normal: a *hazard*, not damage (`info` whatever its blast radius, with the same `reason`s as
`shared-config`); a NULL build is no build and is never shared.  A build used by releases of
another app (`reason` `cross-app`) is damage: deleting it, or its app, cascades into the
other app; critical when another app's live release would go, warning otherwise, one
finding per build with each app's releases in the evidence.  A release pointing at a build
that does not exist shares nothing (`dangling-reference`).""",
    repair="unshare",
    passes=shared_passes("build"),
    sql=lambda generation: shared_sql("build", generation),
    count_sql=lambda generation: shared_count_sql("build", generation),
    info_count_sql=lambda generation: shared_count_sql("build", generation, info_only=True),
    above_info_sql=lambda generation: cross_shared_sql("build", generation),
    above_info_passes=cross_shared_passes("build"),
)
