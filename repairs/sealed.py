"""JSON documents sealed with a sha256 checksum: plan files and undo files.

The checksum covers the canonical form (sorted keys, no whitespace) of everything but the
``checksum`` member, so any edit - even one that keeps the JSON valid - is detected.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from auditor.errors import BadInput, PlanRefused
from auditor.fileio import atomic_write


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes the checksum is computed over."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checksum(doc: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical document."""
    return "sha256:" + hashlib.sha256(canonical(doc)).hexdigest()


def write_sealed(path: str | os.PathLike[str], doc: dict[str, Any]) -> str:
    """Add the checksum and write ``doc`` atomically (mode 0600); returns the checksum."""
    doc["checksum"] = checksum(doc)
    atomic_write(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n", mode=0o600)
    return doc["checksum"]


def read_sealed(path: str | os.PathLike[str], format_name: str, newest_version: int) -> dict[str, Any]:
    """Read and verify a sealed document of ``format_name``.

    Not JSON / not this format: :class:`BadInput` (exit 3).  Edited (checksum mismatch) or
    written by a newer format version: :class:`PlanRefused` (exit 4).
    """
    what = format_name.removeprefix("controller-audit-")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"no such {what} file: {path}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not a {what} file (not UTF-8 text)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path} is not a {what} file (not JSON, or truncated: {exc.msg} at line {exc.lineno})",
                       kind=f"bad {what} file") from None
    if not isinstance(doc, dict) or doc.get("format") != format_name:
        raise BadInput(f"{path} is not a {what} file (format is not {format_name!r})", kind=f"bad {what} file")
    version = doc.get("format_version")
    if not isinstance(version, int):
        raise BadInput(f"{path} has no format_version", kind=f"bad {what} file")
    if version > newest_version:
        raise PlanRefused(f"{path} is {what} format version {version}; this controller-audit reads up to "
                          f"{newest_version}: upgrade controller-audit", kind=f"newer {what} format")
    if doc.get("checksum") != checksum(doc):
        raise PlanRefused(f"{path} was edited after it was written (checksum mismatch); make a new {what}",
                          kind=f"edited {what}")
    return doc
