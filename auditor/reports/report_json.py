"""The machine report: one JSON document (schema: ``auditor/report_schema.json``).

The summary comes before the findings, yet findings are never all held in memory: they
are spooled to one temporary file per severity as they stream (the server renders each
finding's text, see :mod:`auditor.audit.streamed`), then copied after the summary, most severe
first.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack
from importlib import resources
from typing import Any, TextIO

from auditor.audit.streamed import StreamedFinding
from auditor.core.findings import SEVERITIES, Finding
from auditor.reports.report import REPORT_VERSION, Report


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the report document."""
    schema: dict[str, Any] = json.loads(resources.files("auditor").joinpath("report_schema.json").read_text(encoding="utf-8"))
    return schema


def write_json(out: TextIO, report: Report, findings: Iterable[Finding | StreamedFinding]) -> None:
    """Write the report document: header, summary, then the spooled findings by severity."""
    with ExitStack() as stack:
        spools = {s: stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8")) for s in SEVERITIES}
        for finding in findings:
            spool = spools[finding.severity]
            spool.write(finding.json_text())
            spool.write("\n")
        head = {
            "version": REPORT_VERSION,
            "database": report.database,
            "generation": report.generation,
            "summary": report.summary(),
        }
        out.write(json.dumps(head, indent=1)[:-2])
        out.write(',\n "findings": [')
        separator = "\n  "
        for spool in spools.values():
            spool.seek(0)
            for line in spool:
                out.write(separator + line.rstrip("\n"))
                separator = ",\n  "
        out.write("\n ]\n}\n")
