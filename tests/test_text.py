"""auditor.core.text: control characters shown, bytes of SQL_ASCII databases decoded."""

from __future__ import annotations

from auditor.core.text import decode_lenient, escape, escape_block


def test_the_helper():
    assert escape("a\x1b[31mb\nc\td\x9b\u202e") == "a\\x1b[31mb\\nc\\td\\x9b\\u202e"
    assert escape_block("line 1\nline\x1b 2") == "line 1\nline\\x1b 2"
    assert escape("café 名前 ✓") == "café 名前 ✓"


def test_lenient_decoding():
    assert decode_lenient("café".encode()) == "café"
    assert decode_lenient(b"caf\xe9 \xc3\xa9") == "café é"  # Latin-1 where not UTF-8, UTF-8 where it is
    assert decode_lenient(b"\xff\xfe") == "\xff\xfe"
