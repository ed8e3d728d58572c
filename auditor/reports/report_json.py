"""The machine report: one JSON document (schema: ``auditor/report_schema.json``).

The summary comes before the findings, yet findings are never all held in memory: they
are spooled to one temporary file per severity as they stream (the server renders each
finding's text, see :mod:`auditor.audit.streamed`), then copied after the summary, most severe
first: by the kernel (``os.sendfile``) where the report is a file or a pipe, else in chunks.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
from collections.abc import Iterable
from contextlib import ExitStack
from importlib import resources
from typing import Any, BinaryIO, TextIO

from auditor.audit.spools import SeveritySpools
from auditor.audit.streamed import StreamedFinding
from auditor.core.findings import SEVERITIES, Finding
from auditor.reports.report import REPORT_VERSION, Report


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the report document."""
    schema: dict[str, Any] = json.loads(resources.files("auditor").joinpath("report_schema.json").read_text(encoding="utf-8"))
    return schema


#: Bytes copied from a spool to the report at a time (through Python, or by the kernel).
_COPY_CHUNK = 1 << 20
_KERNEL_CHUNK = 1 << 30


def write_json(out: TextIO, report: Report, findings: Iterable[Finding | StreamedFinding]) -> None:
    """Write the report document: header, summary, then the spooled findings by severity (those
    :attr:`Report.spooled` holds once the findings end after the others of their severity)."""
    with ExitStack() as stack:
        spools = stack.enter_context(SeveritySpools())
        for finding in findings:
            spools.add(finding.severity, finding.json_text())
        spools.flush()
        others = [stack.enter_context(spooled.spools) for spooled in report.spooled]
        head = {
            "version": REPORT_VERSION,
            "database": report.database,
            "generation": report.generation,
            "summary": report.summary(),
        }
        out.write(json.dumps(head, indent=1)[:-2])
        out.write(',\n "findings": [')
        first = True
        for severity in SEVERITIES:
            for spool in [spools.files[severity], *(other.files[severity] for other in others)]:
                spool.seek(0)
                if first and spool.read(1):  # the comma before the document's first finding
                    first = False
                _copy(spool, out)
        out.write("\n ]\n}\n")


def _copy(spool: BinaryIO, out: TextIO) -> None:
    """The rest of ``spool`` onto ``out``: as bytes when ``out`` writes UTF-8 to a byte buffer
    (a file, standard output), by the kernel where it can, else decoded."""
    buffer = getattr(out, "buffer", None)
    if buffer is not None and codecs.lookup(out.encoding).name == "utf-8" and os.linesep == "\n":
        out.flush()
        if not _sent(spool, buffer):
            shutil.copyfileobj(spool, buffer, _COPY_CHUNK)
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    while chunk := spool.read(_COPY_CHUNK):
        out.write(decoder.decode(chunk))
    out.write(decoder.decode(b"", final=True))


def _sent(spool: BinaryIO, buffer: BinaryIO) -> bool:
    """The rest of ``spool`` written to ``buffer``'s descriptor by ``os.sendfile`` (at 648 MB of
    findings, a copy through Python costs ~0.5-1 s of CPU after the last row, the kernel's ~0.2 s);
    False when the descriptor takes no ``sendfile`` (a terminal, a file opened to append, no
    descriptor at all) or a copy fails part way: what is left is the caller's to write through
    ``buffer``, whose write meets the same error and handles it as every write does (a reader gone
    away: :mod:`auditor.cli.reader_gone`; a full disk: raised)."""
    sendfile = getattr(os, "sendfile", None)  # not on Windows
    try:
        target = buffer.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    if sendfile is None:
        return False
    source = spool.fileno()
    offset = spool.tell()  # the spool's own buffer may have read ahead of its descriptor
    end = os.fstat(source).st_size
    while offset < end:
        try:
            sent = sendfile(target, source, offset, min(end - offset, _KERNEL_CHUNK))
        except OSError:
            break
        if not sent:
            break
        offset += sent
    spool.seek(offset)
    return offset >= end
