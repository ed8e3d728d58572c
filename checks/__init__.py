"""The check catalogue: one module per check, each defining ``CHECK``, registered here in the
order the catalogue lists them (``controller-audit checks``, docs/catalogue.md, the README)."""

from auditor.core.catalogue import Catalogue
from checks import (
    app_without_release,
    cross_app_reference,
    dangling_reference,
    future_dated,
    invalid_json,
    latest_ambiguous,
    latest_build_not_live,
    latest_config_not_live,
    missing_constraint,
    orphan_build,
    orphan_config,
    release_order,
    release_version_gap,
    shared_build,
    shared_config,
)

CATALOGUE = Catalogue(
    orphan_config.CHECK,
    orphan_build.CHECK,
    latest_config_not_live.CHECK,
    latest_build_not_live.CHECK,
    release_order.CHECK,
    future_dated.CHECK,
    shared_config.CHECK,
    shared_build.CHECK,
    cross_app_reference.CHECK,
    dangling_reference.CHECK,
    missing_constraint.CHECK,
    release_version_gap.CHECK,
    latest_ambiguous.CHECK,
    invalid_json.CHECK,
    app_without_release.CHECK,
)
