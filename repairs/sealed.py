"""JSON documents sealed with a sha256 checksum, and optionally signed: plan and undo files.

The checksum covers the canonical form (sorted keys, no whitespace) of everything but the
``checksum`` member, so any edit - even one that keeps the JSON valid - is detected.  It is
**corruption detection, not a signature**: anyone who can write the file can recompute it.
What protects a plan from a forged action is ``apply`` itself, which re-derives every action
against the database (:mod:`repairs.statements`).

When :data:`KEY_ENV` is set, files are also **signed**: a ``signature`` member holds
``hmac-sha256:<hex>`` of the canonical form of everything but ``checksum`` and ``signature``,
keyed with the variable's value; reading then refuses a file that is unsigned or whose
signature does not match.  Without the variable, signatures are neither required nor checked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from auditor.core.errors import BadInput, PlanRefused
from auditor.core.fileio import atomic_open

#: The environment variable holding the signing key of plan and undo files.
KEY_ENV = "CONTROLLER_AUDIT_PLAN_KEY"
SIGNATURE = "signature"
#: A piece of a document's bytes (hashed and written without joining them).
Chunk = bytes | memoryview


def signing_key() -> bytes | None:
    """The key from :data:`KEY_ENV`, or None when plans are not signed (the variable unset).

    Set but empty or blank (a secret that failed to load) is :class:`BadInput`: signing is never
    turned off by accident."""
    value = os.environ.get(KEY_ENV)
    if value is None:
        return None
    if not value.strip():
        raise BadInput(f"{KEY_ENV} is set but empty: give it the key, or unset it to read and write unsigned "
                       "plan and undo files", kind="bad usage")
    return value.encode()


def canonical(doc: dict[str, Any], without: tuple[str, ...] = ("checksum",)) -> bytes:
    """The bytes the checksum (or, without the signature too, the signature) is computed over."""
    return dump({k: v for k, v in doc.items() if k not in without}).encode()


def checksum(doc: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical document."""
    return "sha256:" + hashlib.sha256(canonical(doc)).hexdigest()


def sign(body: bytes | Sequence[Chunk], key: bytes) -> str:
    """``hmac-sha256:<hex>`` of ``body`` (or of its chunks joined)."""
    return "hmac-sha256:" + _digest([body] if isinstance(body, bytes) else body,
                                    lambda: hmac.new(key, digestmod=hashlib.sha256))


def write_sealed(path: str | os.PathLike[str], doc: dict[str, Any]) -> str:
    """Add the checksum (and signature) and write ``doc`` atomically (mode 0600); returns the checksum.

    The file is the canonical form itself with the ``checksum`` member appended, so writing
    and verifying cost one serialisation each (compact JSON, the C encoder); ``plan show`` is
    the way to read a plan.
    """
    parts = {key: dump(value) for key, value in doc.items() if key not in ("checksum", SIGNATURE)}
    sealed = write_sealed_parts(path, parts)
    doc["checksum"] = sealed
    return sealed


def dump(value: Any) -> str:
    """``value`` in canonical JSON (a part for :func:`write_sealed_parts`)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _chunks(parts: dict[str, bytes]) -> list[bytes]:
    """The canonical document of ``parts`` as a list of chunks: a member of tens of MB is hashed and
    written as it is, never copied into one body (each copy of a 250k-action undo file's 44 MB cost
    0.1-0.2 s here)."""
    chunks = [b"{"]
    for n, key in enumerate(sorted(parts)):
        chunks += [(b"," if n else b"") + json.dumps(key, ensure_ascii=False).encode() + b":", parts[key]]
    return [*chunks, b"}"]


def _digest(chunks: Sequence[Chunk], new: Callable[[], Any]) -> str:
    """The hex digest of the chunks joined, by the hash object ``new`` makes."""
    hashed = new()
    for chunk in chunks:
        hashed.update(chunk)
    return str(hashed.hexdigest())


def write_sealed_parts(path: str | os.PathLike[str], parts: dict[str, str] | dict[str, str | bytes]) -> str:
    """Write a sealed document whose top-level members are already canonical JSON text (or its
    UTF-8 bytes).

    Lets a caller serialise its large members early (e.g. while the database works).  Signed
    when :data:`KEY_ENV` is set.
    """
    encoded = {key: value if isinstance(value, bytes) else value.encode() for key, value in parts.items()}
    key = signing_key()
    if key is not None:
        encoded[SIGNATURE] = dump(sign(_chunks(encoded), key)).encode()
    chunks = _chunks(encoded)
    digest = "sha256:" + _digest(chunks, hashlib.sha256)
    own = json.loads(encoded["format"]) if "format" in encoded else None  # a plan may replace a plan
    with atomic_open(path, 0o600, binary=True, replaces=own) as handle:
        handle.writelines([*chunks[:-1], _suffix(digest)])
    return digest


def _suffix(digest: str) -> bytes:
    return (',"checksum":' + json.dumps(digest) + "}\n").encode()


def _verified(raw: bytes, doc: dict[str, Any]) -> bool:
    """Whether ``doc`` (parsed from ``raw``) matches its checksum."""
    claimed = doc.get("checksum")
    if not isinstance(claimed, str):
        return False
    suffix = _suffix(claimed)
    if raw.endswith(suffix) and "sha256:" + _digest([memoryview(raw)[: -len(suffix)], b"}"], hashlib.sha256) == claimed:
        return True  # the file as written: its bytes are the canonical form
    return checksum(doc) == claimed  # reformatted but equal content is still the same document


def _check_signature(path: str | os.PathLike[str], raw: bytes, doc: dict[str, Any], what: str) -> None:
    """Refuse an unsigned or wrongly signed document when a key is configured."""
    key = signing_key()
    if key is None:
        return
    claimed = doc.get(SIGNATURE)
    if not isinstance(claimed, str):
        raise PlanRefused(f"{path} is not signed, and {KEY_ENV} is set: only signed {what} files are accepted; "
                          f"make a new {what} with the key set", kind=f"unsigned {what}")
    member = (json.dumps(SIGNATURE) + ":" + json.dumps(claimed) + ",").encode()
    end = raw.rfind(b',"checksum":')
    if end > 0 and raw.count(member) == 1:  # the file as written: drop the member from its bytes
        unsigned = (raw[:end] + b"}").replace(member, b"", 1)
    else:
        unsigned = canonical(doc, ("checksum", SIGNATURE))
    if not hmac.compare_digest(sign(unsigned, key), claimed) and not hmac.compare_digest(
            sign(canonical(doc, ("checksum", SIGNATURE)), key), claimed):
        raise PlanRefused(f"{path}: its signature does not match the key in {KEY_ENV} (signed with another key, "
                          f"or changed and re-sealed); refusing", kind=f"bad {what} signature")


def _a(word: str) -> str:
    """``a plan``, ``an undo``: the article for ``word``."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def read_sealed(path: str | os.PathLike[str], format_name: str, newest_version: int) -> dict[str, Any]:
    """Read and verify a sealed document of ``format_name``.

    Not JSON / not this format: :class:`BadInput` (exit 3).  Edited (checksum mismatch),
    written by a newer format version, or (with :data:`KEY_ENV` set) unsigned or wrongly
    signed: :class:`PlanRefused` (exit 4).
    """
    what = format_name.removeprefix("controller-audit-")
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInput(f"no such {what} file: {path}") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not {_a(what)} file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path} is not {_a(what)} file (not JSON, or truncated: {exc.msg.removesuffix(' at')} at line {exc.lineno})",
                       kind=f"bad {what} file") from None
    if not isinstance(doc, dict) or doc.get("format") != format_name:
        raise BadInput(f"{path} is not {_a(what)} file (format is not {format_name!r})", kind=f"bad {what} file")
    version = doc.get("format_version")
    if not isinstance(version, int):
        raise BadInput(f"{path} has no format_version", kind=f"bad {what} file")
    if version > newest_version:
        raise PlanRefused(f"{path} is {what} format version {version}; this controller-audit reads up to "
                          f"{newest_version}: upgrade controller-audit", kind=f"newer {what} format")
    if not _verified(raw, doc):
        advice = "make a new plan" if what == "plan" else f"use an unedited copy of the {what} file"
        raise PlanRefused(f"{path} was edited after it was written (checksum mismatch); {advice}",
                          kind=f"edited {what}")
    _check_signature(path, raw, doc, what)
    return doc
