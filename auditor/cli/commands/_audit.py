"""What the audit commands (check, baseline create) share: selection options and their
resolution against the config file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import click

from auditor.audit.runner import DEFAULT_GRACE_SECONDS, DEFAULT_SKEW_SECONDS, Selection
from auditor.cli.params import GRACE, target_options
from auditor.core.configfile import Settings, load_settings, target_for
from auditor.core.connection import Target
from auditor.core.errors import BadInput


def selection_options(func: Callable) -> Callable:
    """``--app``, ``--check``, ``--exclude``, ``--grace``, ``--skew``, ``--config`` and the target options."""
    func = target_options(func)
    func = skew_option(func)
    func = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                        help="Config file (default: ./controller-audit.toml, else [tool.controller-audit] "
                             "in ./pyproject.toml).")(func)
    func = click.option("--grace", type=GRACE, default=None, metavar="SECONDS",
                        help=f"Configs/builds younger than this are a deploy in flight, not damage "
                             f"[default: {DEFAULT_GRACE_SECONDS}].")(func)
    func = click.option("--exclude", "excludes", multiple=True, metavar="ID", help="Skip this check (repeatable).")(func)
    func = click.option("--check", "checks", multiple=True, metavar="ID",
                        help="Run only this check (repeatable; see: controller-audit checks).")(func)
    func = click.option("--app", "apps", multiple=True, metavar="NAME", help="Audit only this app (repeatable).")(func)
    return func


def skew_option(func: Callable) -> Callable:
    """``--skew``: how far ahead of the database's clock a controller host's clock may run."""
    return click.option("--skew", type=GRACE, default=DEFAULT_SKEW_SECONDS, show_default=True,
                        metavar="SECONDS",
                        help="Rows created up to this long after the database's now() are in flight; later "
                             "ones are future-dated (a controller clock ahead of the database's).")(func)


@dataclass(frozen=True)
class AuditRequest:
    """An audit's target, apps, checks and grace, from the options and the config file."""

    target: Target
    apps: tuple[str, ...]
    selection: Selection
    grace_seconds: float
    settings: Settings
    skew_seconds: float = DEFAULT_SKEW_SECONDS


def _apps(cli_apps: tuple[str, ...], settings: Settings) -> tuple[str, ...]:
    if not settings.apps:
        return cli_apps
    outside = [a for a in cli_apps if a not in settings.apps]
    if outside:
        raise BadInput(f"app {outside[0]!r} is not in the apps allow-list of {settings.source}", kind="unknown app")
    return cli_apps or settings.apps


def audit_request(
    *, dsn: str | None, apps: tuple[str, ...], checks: tuple[str, ...], excludes: tuple[str, ...],
    grace: float | None, settings: Settings, skew: float = DEFAULT_SKEW_SECONDS,
) -> AuditRequest:
    """Combine the command line with the config file (the command line wins)."""
    exclude = tuple(dict.fromkeys((*excludes, *(c for c in settings.exclude if c not in checks))))
    selection = Selection(include=tuple(dict.fromkeys(checks)), exclude=exclude,
                          severity_overrides=dict(settings.severity))
    grace_seconds = grace if grace is not None else (
        settings.grace if settings.grace is not None else DEFAULT_GRACE_SECONDS)
    return AuditRequest(target_for(dsn, settings), _apps(apps, settings), selection, grace_seconds, settings, skew)


def settings_from(config_path: str | None) -> Settings:
    """The config file's settings (``--config``, else the working directory's files)."""
    return load_settings(config_path)
