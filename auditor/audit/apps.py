"""App names: their uuids, and one line offering the closest names for a name the database lacks."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from auditor.core.errors import BadInput
from auditor.core.suggest import unknown_apps

#: Apps by their name (``api_app.id``, unique).
BY_NAME = "SELECT id, uuid::text FROM api_app WHERE id = ANY(%s)"

#: The candidates for "did you mean": every app name, in the order of api_app's unique index on ``id``.
APP_NAMES = "SELECT id FROM api_app ORDER BY id"

#: Every app with its uuid, for matching names as shown on a ``SQL_ASCII`` database.
ALL_APPS = "SELECT id, uuid::text FROM api_app ORDER BY id"


def unknown_app(conn: psycopg.Connection, missing: list[str], allowed: Iterable[str] = ()) -> BadInput:
    """:class:`BadInput` for app names the database lacks, offering the closest names it has (read
    in the caller's snapshot, one query; inside the ``allowed`` allow-list when there is one)."""
    names = [row[0] for row in conn.execute(APP_NAMES) if row[0] is not None]  # api_app.id is nullable
    inside = set(allowed)
    return BadInput(unknown_apps(missing, [n for n in names if n in inside] if inside else names),
                    kind="unknown app")


def app_uuids(conn: psycopg.Connection, names: Iterable[str]) -> dict[str, str]:
    """The uuid of each app of ``names`` the database has (absent names are left out).

    By ``id``; on a ``SQL_ASCII`` database also by the name as this tool shows it: bytes a Latin-1
    client wrote (``cr\\xe8me``) are shown decoded (``crème``, see
    :func:`auditor.core.text.decode_lenient`), and that is what a user types back.
    """
    wanted = list(dict.fromkeys(names))
    found: dict[str, str] = dict(conn.execute(BY_NAME, (wanted,)).fetchall()) if wanted else {}
    missing = [n for n in wanted if n not in found]
    if missing and conn.info.parameter_status("server_encoding") == "SQL_ASCII":
        shown: dict[str, str] = {}
        for name, uid in conn.execute(ALL_APPS):
            shown.setdefault(name, uid)
        found.update({n: shown[n] for n in missing if n in shown})
    return found
