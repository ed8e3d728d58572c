"""The JSON report's findings, spooled in batches and copied in chunks (issue 16), are the document
the one-line-at-a-time writer gave: severity order, one finding a line, nothing lost at a batch or
chunk boundary, multi-byte characters whole, whichever stream the report goes to."""

from __future__ import annotations

import io
import json
import os

import pytest

from auditor.audit import spools
from auditor.audit.spools import SeveritySpools, Spooled
from auditor.audit.streamed import StreamedFinding
from auditor.reports import report_json
from auditor.reports.report import Report
from auditor.reports.report_json import write_json


def _findings() -> list[StreamedFinding]:
    found = []
    for n in range(23):
        severity = ("info", "warning", "critical")[n % 3] if n < 20 else "info"
        line = json.dumps({"check": "shared-config", "severity": severity, "message": f"r\u00e9sum\u00e9 {n} \u540d\u524d \U0001f600",
                           "key": f"{n:016x}"}, ensure_ascii=False)
        findings_app = None if n % 5 == 0 else f"app-{n}"
        found.append(StreamedFinding("shared-config", severity, findings_app, f"{n:016x}", line))
    return found


def _expected(report: Report, findings: list[StreamedFinding]) -> str:
    """The document as the writer before issue 16 wrote it, line by line."""
    head = {"version": 1, "database": report.database, "generation": report.generation, "summary": report.summary()}
    ordered = [f.json_text() for s in ("critical", "warning", "info") for f in findings if f.severity == s]
    body = "\n  " + ",\n  ".join(ordered) if ordered else ""
    return json.dumps(head, indent=1)[:-2] + ',\n "findings": [' + body + "\n ]\n}\n"


def _report() -> Report:
    report = Report(checks=["shared-config"], database={"name": "d\u00e9mo"}, generation="hephy")
    report.finished = report.started  # a fixed duration: the summary is written twice below
    return report


@pytest.mark.parametrize("batch, chunk", [(2000, 1 << 20), (2, 7), (1, 1)])
@pytest.mark.parametrize("target", ["text", "file"])
def test_the_document_is_the_line_by_line_one(tmp_path, monkeypatch, batch, chunk, target):
    monkeypatch.setattr(spools, "BATCH", batch)
    monkeypatch.setattr(report_json, "_COPY_CHUNK", chunk)
    findings = _findings()
    report = _report()
    if target == "text":  # no byte buffer under it: the spools are decoded
        out = io.StringIO()
        write_json(out, report, iter(findings))
        text = out.getvalue()
    else:  # a UTF-8 file, as atomic_open gives: the spools are copied as bytes
        path = tmp_path / "r.json"
        with open(path, "w", encoding="utf-8") as handle:
            write_json(handle, report, iter(findings))
        text = path.read_text(encoding="utf-8")
    assert text == _expected(report, findings)
    assert [f["key"] for f in json.loads(text)["findings"]][:7] == [f"{n:016x}" for n in (2, 5, 8, 11, 14, 17, 1)]


def test_no_findings(tmp_path):
    report = _report()
    path = tmp_path / "r.json"
    with open(path, "w", encoding="utf-8") as handle:
        write_json(handle, report, iter([]))
    assert path.read_text(encoding="utf-8") == _expected(report, [])
    assert json.loads(path.read_text(encoding="utf-8"))["findings"] == []


def test_the_spools_reach_a_file_by_the_kernel(tmp_path, monkeypatch):
    """Copied onto a report file by ``os.sendfile``, not read back into Python (issue 16y): every
    byte of the findings goes through it, from past the document's first comma."""
    monkeypatch.setattr(spools, "BATCH", 2)
    sent = []
    sendfile = os.sendfile

    def counted(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        sent.append(sendfile(out_fd, in_fd, offset, count))
        return sent[-1]

    def refused(*args: object) -> None:
        raise AssertionError("a spool was copied through Python")

    monkeypatch.setattr(os, "sendfile", counted)
    monkeypatch.setattr(report_json.shutil, "copyfileobj", refused)
    findings = _findings()
    report = _report()
    path = tmp_path / "r.json"
    with open(path, "w", encoding="utf-8") as handle:
        write_json(handle, report, iter(findings))
    expected = _expected(report, findings)
    assert path.read_text(encoding="utf-8") == expected
    body = ",\n  ".join(f.json_text() for s in ("critical", "warning", "info") for f in findings if f.severity == s)
    assert sum(sent) == len(("\n  " + body).encode())


def test_a_report_opened_to_append_is_copied_through_python(tmp_path):
    """A descriptor ``sendfile`` refuses (``O_APPEND``) gets the spools the other way, whole."""
    findings = _findings()
    report = _report()
    path = tmp_path / "r.json"
    path.write_text("before\n", encoding="utf-8")
    with open(path, "a", encoding="utf-8") as handle:
        write_json(handle, report, iter(findings))
    assert path.read_text(encoding="utf-8") == "before\n" + _expected(report, findings)


def test_a_platform_without_sendfile_copies_through_python(tmp_path, monkeypatch):
    """Where ``os`` has no ``sendfile`` (Windows) the spools are copied the other way, whole."""
    monkeypatch.setattr(spools, "BATCH", 2)
    monkeypatch.delattr(os, "sendfile")
    findings = _findings()
    report = _report()
    path = tmp_path / "r.json"
    with open(path, "w", encoding="utf-8") as handle:
        write_json(handle, report, iter(findings))
    assert path.read_text(encoding="utf-8") == _expected(report, findings)


@pytest.mark.parametrize("cut", [0, 11, 23], ids=["all-spooled", "both", "none-spooled"])
@pytest.mark.parametrize("target", ["text", "file"])
def test_lines_spooled_elsewhere_follow_their_severity_s_others(tmp_path, monkeypatch, cut, target):
    """Findings whose lines another thread spooled (:class:`Spooled`, the second backend's) come after
    the findings of their severity streamed through :meth:`Report.screen`, counted in the summary as
    listed: the document of all of them streamed."""
    monkeypatch.setattr(spools, "BATCH", 2)
    findings = _findings()
    report = _report()
    elsewhere = Spooled(SeveritySpools())
    for f in findings[cut:]:
        elsewhere.spools.add(f.severity, f.json_text())
        elsewhere.counts[(f.check, f.severity, f.app_name)] += 1
    elsewhere.spools.flush()
    streamed = iter(findings[:cut])

    def screened():
        yield from streamed
        report.spooled.append(elsewhere)  # as the second backend hands them over: at the end

    if target == "text":
        out = io.StringIO()
        write_json(out, report, report.screen(screened()))
        text = out.getvalue()
    else:
        path = tmp_path / "r.json"
        with open(path, "w", encoding="utf-8") as handle:
            write_json(handle, report, report.screen(screened()))
        text = path.read_text(encoding="utf-8")
    everything = _report()
    list(everything.screen(iter(findings)))
    everything.started, everything.finished = report.started, report.finished
    assert text == _expected(everything, findings)
    assert all(spool.closed for spool in elsewhere.spools.files.values())
