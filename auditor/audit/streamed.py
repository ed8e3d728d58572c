"""Findings the server renders: the JSON report's lines, or only what the counts need.

At a million releases an audit yields ~500k findings; parsing each one's ``related`` and
``evidence`` into Python objects and serialising them again costs more than the audit's
SQL.  Here the server writes each finding's JSON object (report format version 1, the
shape of :meth:`auditor.core.findings.Finding.to_json`) as text and its baseline key, and the
client copies the text through.  The ``counts`` shape (Prometheus) asks for the check,
severity, app and key only, so the server computes no payload at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

import psycopg
from psycopg import pq, sql

from auditor.core.findings import Counted, Finding
from auditor.core.server_support import SHA256_SINCE

#: ``json``: every finding as its JSON text; ``counts``: check, severity, app and key only.
Shape = Literal["json", "counts"]


_FETCH_SIZE = 5000

# ``f`` is the runner's statement in the checks' order (check_id plus the check result columns).  The
# config file's severity overrides are applied here, since the severity is inside the text:
# ``{check: {level: severity}}`` (:data:`auditor.core.overrides.Resolved`), looked up by level.
# A row that counts findings not listed (``counted`` not NULL) gets neither key nor line.  When
# the server computes the key and renders the line, the key is inside the line (its last 16
# characters but two, see :func:`stream`) and not sent apart.
_OUTER = """
SELECT f.check_id, f.severity, f.app_name, CASE WHEN f.counted IS NULL THEN {key} END AS key,
       CASE WHEN f.counted IS NULL THEN {line} END AS line, f.counted
FROM (SELECT u.check_id,
             coalesce(%(severity_overrides)s::json -> u.check_id ->> u.severity, u.severity) AS severity,
             u.app_uuid, u.app_name, u.object_table, u.object_id, u.message, u.related, u.evidence, u.counted
      FROM ({inner}) AS u) AS f"""

# The key exactly as :attr:`auditor.core.findings.Finding.key` computes it.
_KEY = ("left(encode(sha256(convert_to(concat_ws(chr(31), f.check_id, coalesce(f.app_name, ''), "
        "f.object_table, f.object_id), 'UTF8')), 'hex'), 16)")

# :meth:`auditor.core.findings.Finding.to_json` without ``key`` (appended by :func:`_with_key`),
# spaced like ``json.dumps`` so that each finding line starts ``{"check": ``.
_LINE = """'{"check": ' || to_json(f.check_id)::text || ', "severity": ' || to_json(f.severity)::text
    || ', "app": ' || CASE WHEN f.app_uuid IS NOT NULL OR coalesce(f.app_name, '') <> ''
                           THEN '{"id": ' || coalesce(to_json(f.app_uuid)::text, 'null')
                                || ', "name": ' || coalesce(to_json(f.app_name)::text, 'null') || '}'
                           ELSE 'null' END
    || ', "object": {"table": ' || to_json(f.object_table)::text
    || CASE WHEN length(f.object_id) = 36 AND length(f.object_id) - length(replace(f.object_id, '-', '')) = 4
            THEN ', "uuid": ' ELSE ', "name": ' END || to_json(f.object_id)::text
    || '}, "related": ' || coalesce(f.related::text, '[]')
    || ', "message": ' || coalesce(to_json(f.message)::text, 'null')
    || ', "evidence": ' || coalesce(f.evidence::text, '{}') || '}'"""


class StreamedFinding(NamedTuple):
    """What the reports need of a server-rendered finding (no parsed payload).  A named tuple: made
    once per finding (~500k at a million releases), where a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` a field) cost ~1 s more of client CPU."""

    check: str
    severity: str
    app_name: str | None
    key: str
    line: str | None  # the finding's JSON object as text (``json`` shape), else None
    #: ``{"accepted_severity", "first_seen"}`` when a baseline accepted it at a lower severity.
    baseline: dict[str, str] | None = None

    @classmethod
    def of(cls, finding: Finding, shape: Shape) -> StreamedFinding:
        """A finding read on the client, in the shape the server would have rendered it."""
        return cls(finding.check, finding.severity, finding.app_name, finding.key,
                   finding.json_text() if shape == "json" else None)

    def with_baseline(self, accepted_severity: str, first_seen: str) -> StreamedFinding:
        """This finding, marked as accepted at ``accepted_severity`` (it is worse now)."""
        return self._replace(baseline={"accepted_severity": accepted_severity, "first_seen": first_seen})

    def json_text(self) -> str:
        """The finding's JSON object (report format version 1) as one line."""
        if self.line is None:
            raise ValueError("this finding was streamed without its JSON text (counts shape)")
        if self.baseline is not None:
            return f'{self.line[:-1]}, "baseline": {json.dumps(self.baseline)}}}'
        return self.line


def python_key(check: str, app_name: str | None, table: str, object_id: str) -> str:
    """:attr:`auditor.core.findings.Finding.key` from its parts (for servers without ``sha256()``)."""
    raw = "\x1f".join((check, app_name or "", table, object_id))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def wrap(inner: sql.Composable, shape: Shape, server_version: int, server_key: bool = True) -> sql.Composed:
    """The statement around the runner's one in the checks' order, rendering ``shape`` rows; the key is
    computed by the server unless it lacks ``sha256()`` or ``server_key`` is false."""
    has_sha = server_key and server_version >= SHA256_SINCE
    if shape == "json" and has_sha:
        # The key ends the line (as :func:`_with_key` would append it): computed once, sent once.
        line = sql.SQL(_LINE_WITH_KEY)
        return sql.SQL(_OUTER).format(key=sql.SQL("NULL::text"), line=line, inner=inner)
    # Without sha256() the key column carries its table and object for :func:`python_key`.
    key = sql.SQL(_KEY if has_sha else "concat_ws(chr(31), f.object_table, f.object_id)")
    line = sql.SQL(_LINE if shape == "json" else "NULL::text")
    return sql.SQL(_OUTER).format(key=key, line=line, inner=inner)


def _with_key(line: str, key: str) -> str:
    return f'{line[:-1]}, "key": "{key}"}}'


# :data:`_LINE` ended with the key, as :func:`_with_key` appends it.
_LINE_WITH_KEY = _LINE.removesuffix(" || '}'") + """ || ', "key": "' || """ + _KEY + """ || '"}'"""

#: Where the key is in a line the server ended with it: ``..., "key": "0123456789abcdef"}``.
_KEY_IN_LINE = slice(-18, -2)


def stream(conn: psycopg.Connection[Any], statement: sql.Composed, params: dict[str, object],
           overrides: dict[str, dict[str, str]], has_sha: bool,
           hidden: list[Counted] | None = None, *, chunked: bool | None = None) -> Iterator[StreamedFinding]:
    """Run ``statement`` (from :func:`wrap`) on ``conn`` and yield its findings; the rows that count
    findings not listed are appended to ``hidden``.

    With ``chunked`` (the default when libpq is 17 or later) the rows come as one stream, in chunks
    of :data:`_FETCH_SIZE`: the server goes on rendering while the report writes what it received
    (a server cursor waits for each FETCH, so the two take turns).  Else through a server cursor,
    a batch at a time.  The connection is busy until the findings end: the caller reads nothing
    else on it meanwhile."""
    yield from streamed_findings(stream_rows(conn, statement, params, overrides, chunked=chunked), has_sha, hidden)


def stream_rows(conn: psycopg.Connection[Any], statement: sql.Composed, params: dict[str, object],
                overrides: dict[str, dict[str, str]], *, chunked: bool | None = None) -> Iterator[tuple[Any, ...]]:
    """The rows of ``statement`` as :func:`stream` reads them (the statement is sent at the first row)."""
    args = {**params, "severity_overrides": json.dumps(overrides)}
    if CHUNKED_ROWS if chunked is None else chunked:
        with conn.cursor() as cur:
            yield from cur.stream(statement, args, size=_FETCH_SIZE)
    else:
        with conn.cursor(name="controller_audit_findings") as named:
            named.execute(statement, args)
            yield from _batched(named)


#: Whether libpq can stream rows in chunks (17 and later); else one row per result would cost more
#: than a server cursor's FETCHes.
CHUNKED_ROWS = pq.version() >= 170000


def _batched(cur: psycopg.ServerCursor[Any]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``cur``, fetched a batch at a time (per-row cursor calls cost seconds at ~500k)."""
    while batch := cur.fetchmany(_FETCH_SIZE):
        yield from batch


def streamed_findings(rows: Iterator[tuple[Any, ...]], has_sha: bool,
                      hidden: list[Counted] | None) -> Iterator[StreamedFinding]:
    """The findings of :func:`stream_rows`' ``rows``; those that count findings not listed go to ``hidden``."""
    for check, severity, app_name, key, line, counted in rows:
        if counted is not None:
            assert hidden is not None, "counted findings need a list to go to"
            hidden.append(Counted(check, severity, app_name, counted))
        elif key is None:  # the server's key ends its line
            yield StreamedFinding(check, severity, app_name, line[_KEY_IN_LINE], line)
        else:
            if not has_sha:
                table, _, object_id = key.partition("\x1f")
                key = python_key(check, app_name, table, object_id)
            yield StreamedFinding(check, severity, app_name, key, None if line is None else _with_key(line, key))
