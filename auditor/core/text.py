"""Text from the database, made safe for a terminal or a comment: control characters shown.

Database values (app names, release summaries, image names, config keys) reach tables,
``explain``, ``plan show``, progress lines, error messages and ``plan sql`` comments.  An ESC
or OSC sequence there could recolour, hide or rewrite what a person reviews, and a newline
could forge a line.  Every human-facing output passes its data through :func:`escape` (one
field: even a newline is shown as ``\\n``) or :func:`escape_block` (text we laid out
ourselves, whose own newlines stay).  Escapes are shown the way Python writes them:
``\\x1b``, ``\\r``, ``\\u202e``.
"""

from __future__ import annotations

import codecs
import re

# C0 controls, DEL, C1 controls, the bidirectional overrides and isolates, the line and
# paragraph separators, and lone surrogates (undecodable bytes read with surrogateescape).
_OTHERS = "\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_FIELD = re.compile(f"[\x00-\x1f{_OTHERS}]")
_BLOCK = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHERS}]")  # all but the newline
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _shown(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(value: object) -> str:
    """``value`` as one line with every control character shown as an escape (``\\x1b``)."""
    text = value if isinstance(value, str) else str(value)
    return _FIELD.sub(_shown, text)


def escape_block(value: object) -> str:
    """Like :func:`escape`, but newlines stay: for whole outputs laid out by this tool."""
    text = value if isinstance(value, str) else str(value)
    return _BLOCK.sub(_shown, text)


def has_controls(value: str) -> bool:
    """Whether :func:`escape` would change ``value``."""
    return _FIELD.search(value) is not None


def _latin1_bytes(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each byte that is not UTF-8 is read as its Latin-1 character."""
    assert isinstance(error, UnicodeDecodeError)
    return error.object[error.start:error.end].decode("latin-1"), error.end


codecs.register_error("controller-audit-latin1", _latin1_bytes)


def decode_lenient(data: bytes) -> str:
    """Bytes of a ``SQL_ASCII`` database as text: UTF-8 where they are valid, every other byte
    as its Latin-1 character (so ``caf\\xe9`` reads ``café``); never fails."""
    return data.decode("utf-8", errors="controller-audit-latin1")
