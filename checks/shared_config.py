"""shared-config: a config referenced by more than one release, with its blast radius."""

from auditor.core.catalogue import Check
from checks._shared import cross_shared_passes, cross_shared_sql, shared_count_sql, shared_passes, shared_sql

CHECK = Check(
    id="shared-config",
    severity="critical",
    levels=("critical", "warning", "info"),
    title="Config shared by several releases (ORM delete blast radius)",
    rationale="""\
Django cascades Config -> Release: an ORM delete of a config row (a cleanup script, the
admin, a "delete the failed release's config") deletes every release that references it,
whatever app that release belongs to, the live one included.  Sharing is counted by row.
Inside one app it is the controller's own way of working (a push reuses the current config,
a rollback the old release's): a *hazard*, not damage, since nothing breaks until someone
deletes the row, so it is `info` whatever its blast radius, and the message says so.  The
evidence still gives the blast radius (how many releases a delete removes, whether the live
release is among them, their versions) and a `reason`: `adjacent` (one contiguous run of the
app's releases in position order; failed releases that do not use the row do not break the
run), `rollback-reuse` (a rollback reused it), `rollback-reuse-live` (the reuse puts the
live release in the blast radius of an old row: deleting "v2's config" deletes the live
release), `shared-latest-not-live` (the row is `config_set.latest()` but not the live
release's; `latest-config-not-live` reports what that breaks).  A row used by releases of
*another* app (`reason` `cross-app`, a cross-app reference, see `cross-app-reference`) is
damage: deleting the row, or its own app (`apps:destroy`), cascades into the other app and
removes its releases.  Critical when another app's live release would go, warning
otherwise; one finding per row, owned by the row's app, whose evidence lists each app's
releases (`apps`) and the apps the cascade crosses into (`crosses_into`).  A release that
points at a config that does not exist (`dangling-reference`) shares nothing.""",
    repair="unshare",
    passes=shared_passes("config"),
    sql=lambda generation: shared_sql("config", generation),
    count_sql=lambda generation: shared_count_sql("config", generation),
    info_count_sql=lambda generation: shared_count_sql("config", generation, info_only=True),
    above_info_sql=lambda generation: cross_shared_sql("config", generation),
    above_info_passes=cross_shared_passes("config"),
)
