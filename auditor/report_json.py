"""The machine report: one JSON document (schema: ``auditor/report_schema.json``).

The summary comes before the findings, yet findings are never all held in memory: they
are spooled to a temporary file as they stream, then copied after the summary.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from importlib import resources
from typing import Any, TextIO

from auditor.findings import Finding
from auditor.report import REPORT_VERSION, Report


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the report document."""
    return json.loads(resources.files("auditor").joinpath("report_schema.json").read_text(encoding="utf-8"))


def write_json(out: TextIO, report: Report, findings: Iterable[Finding]) -> None:
    """Write the report document: header, summary, then the spooled findings."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        for finding in findings:
            spool.write(json.dumps(finding.to_json(), default=str))
            spool.write("\n")
        head = {
            "version": REPORT_VERSION,
            "database": report.database,
            "generation": report.generation,
            "summary": report.summary(),
        }
        out.write(json.dumps(head, indent=1)[:-2])
        out.write(',\n "findings": [')
        spool.seek(0)
        for n, line in enumerate(spool):
            out.write(("\n  " if n == 0 else ",\n  ") + line.rstrip("\n"))
        out.write("\n ]\n}\n")
