"""An app name the database lacks: one line offering the closest names it has."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from auditor.core.errors import BadInput
from auditor.core.suggest import unknown_apps

#: The candidates for "did you mean": every app name, in the order of api_app's unique index on ``id``.
APP_NAMES = "SELECT id FROM api_app ORDER BY id"


def unknown_app(conn: psycopg.Connection, missing: list[str], allowed: Iterable[str] = ()) -> BadInput:
    """:class:`BadInput` for app names the database lacks, offering the closest names it has (read
    in the caller's snapshot, one query; inside the ``allowed`` allow-list when there is one)."""
    names = [row[0] for row in conn.execute(APP_NAMES)]
    inside = set(allowed)
    return BadInput(unknown_apps(missing, [n for n in names if n in inside] if inside else names),
                    kind="unknown app")
