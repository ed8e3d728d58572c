"""shared-config: a config referenced by more than one release, with its blast radius."""

from auditor.catalogue import Check
from checks._shared import shared_passes, shared_sql

CHECK = Check(
    id="shared-config",
    severity="critical",
    levels=("critical", "warning", "info"),
    title="Config shared by several releases (ORM delete blast radius)",
    rationale="""\
Django cascades Config -> Release: an ORM delete of a config row (a cleanup script, the
admin, a "delete the failed release's config") deletes every release that references it,
the live one included, and the controller then deploys from a history with holes and can
no longer roll back to those versions.  The controller shares rows by design (a push reuses
the current config, a rollback reuses the old release's), so sharing alone is not damage;
the evidence gives the blast radius (how many releases a delete removes, whether the live
release is among them, their versions).  Severity: `info` when the releases using the row
are one contiguous run of the app's releases in position order (row_number over the app's
releases, since old Deis reuses versions; failed releases that do not use the row do not
break the run), the sharing the controller normally creates, so cron stays quiet on a
healthy database; `warning` when the run is not contiguous (a rollback reused the row);
`critical` when such a rollback reuse puts the live release in the blast radius of an old
row (deleting "v2's config" deletes the live release), or when the shared row is the app's
`config_set.latest()` but not the live release's (a shared poisoned latest: boot re-saves
it into several releases' history).  Sharing across apps is reported by
`cross-app-reference`; here each app's releases are counted.""",
    repair="unshare",
    passes=shared_passes("config"),
    sql=shared_sql("config"),
)
