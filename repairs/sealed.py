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
    return dump({k: v for k, v in doc.items() if k != "checksum"}).encode()


def checksum(doc: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical document."""
    return "sha256:" + hashlib.sha256(canonical(doc)).hexdigest()


def write_sealed(path: str | os.PathLike[str], doc: dict[str, Any]) -> str:
    """Add the checksum and write ``doc`` atomically (mode 0600); returns the checksum.

    The file is the canonical form itself with the ``checksum`` member appended, so writing
    and verifying cost one serialisation each (compact JSON, the C encoder); ``plan show`` is
    the way to read a plan.
    """
    doc["checksum"] = write_sealed_parts(path, {key: dump(value) for key, value in doc.items() if key != "checksum"})
    return doc["checksum"]


def dump(value: Any) -> str:
    """``value`` in canonical JSON (a part for :func:`write_sealed_parts`)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_sealed_parts(path: str | os.PathLike[str], parts: dict[str, str]) -> str:
    """Write a sealed document whose top-level members are already canonical JSON text.

    Lets a caller serialise its large members early (e.g. while the database works).
    """
    body = ("{" + ",".join(json.dumps(key, ensure_ascii=False) + ":" + parts[key] for key in sorted(parts))
            + "}").encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    atomic_write(path, body[:-1] + _suffix(digest), mode=0o600)
    return digest


def _suffix(digest: str) -> bytes:
    return (',"checksum":' + json.dumps(digest) + "}\n").encode()


def _verified(raw: bytes, doc: dict[str, Any]) -> bool:
    """Whether ``doc`` (parsed from ``raw``) matches its checksum."""
    claimed = doc.get("checksum")
    if not isinstance(claimed, str):
        return False
    suffix = _suffix(claimed)
    if raw.endswith(suffix) and "sha256:" + hashlib.sha256(raw[: -len(suffix)] + b"}").hexdigest() == claimed:
        return True  # the file as written: its bytes are the canonical form
    return checksum(doc) == claimed  # reformatted but equal content is still the same document


def read_sealed(path: str | os.PathLike[str], format_name: str, newest_version: int) -> dict[str, Any]:
    """Read and verify a sealed document of ``format_name``.

    Not JSON / not this format: :class:`BadInput` (exit 3).  Edited (checksum mismatch) or
    written by a newer format version: :class:`PlanRefused` (exit 4).
    """
    what = format_name.removeprefix("controller-audit-")
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInput(f"no such {what} file: {path}") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not a {what} file (not UTF-8 text)") from None
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
    if not _verified(raw, doc):
        raise PlanRefused(f"{path} was edited after it was written (checksum mismatch); make a new {what}",
                          kind=f"edited {what}")
    return doc
