"""Options shared by the commands that connect to a database."""

from __future__ import annotations

from collections.abc import Callable

import click

from auditor.connection import DEFAULT_LOCK_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT


def target_options(func: Callable) -> Callable:
    """``--dsn``, ``--statement-timeout`` and ``--lock-timeout`` for a command."""
    func = click.option("--lock-timeout", default=DEFAULT_LOCK_TIMEOUT, show_default=True,
                        help="lock_timeout for the session (PostgreSQL interval).")(func)
    func = click.option("--statement-timeout", default=DEFAULT_STATEMENT_TIMEOUT, show_default=True,
                        help="statement_timeout for each query (PostgreSQL interval).")(func)
    func = click.option("--dsn", metavar="DSN", default=None,
                        help="libpq connection string or postgresql:// URL (default: DATABASE_URL, "
                             "DEIS_DATABASE_*, then PG* variables).")(func)
    return func
