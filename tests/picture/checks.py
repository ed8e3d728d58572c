"""What every generated file must be: valid, self-contained, and drawn (not blank)."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import html5lib
from PIL import Image

SVG_NS = "{http://www.w3.org/2000/svg}"
#: Anything that would make a page load something: none may appear.
_EXTERNAL = re.compile(r"<script|<link|<iframe|<img|<object|<embed|@import|url\(\s*['\"]?(?!#)|"
                       r"(?:src|href)\s*=\s*['\"]?\s*(?!#)[a-z]+:", re.IGNORECASE)


def assert_valid_html(text: str) -> None:
    """html5lib's strict parser (the WHATWG algorithm) accepts it, with no external reference."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    parser.parse(text)
    assert not parser.errors
    assert text.startswith("<!DOCTYPE html>")
    assert not _EXTERNAL.search(text), _EXTERNAL.search(text)


def parse_svg(text: str) -> ET.Element:
    """The SVG document as XML (it must be well-formed), with no external reference."""
    assert not _EXTERNAL.search(text), _EXTERNAL.search(text)
    root = ET.fromstring(text.encode())
    assert root.tag == f"{SVG_NS}svg"
    return root


def assert_not_blank(png: bytes, min_share: float = 0.01) -> None:
    """The screenshot has drawing on it: enough non-white pixels, and several colours."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    total = image.width * image.height
    inked = sum(image.convert("L").histogram()[:240])
    assert inked / total >= min_share, f"only {inked} of {total} pixels are not white"
    colours = image.getcolors(maxcolors=total) or []
    assert len(colours) >= 8, "the screenshot has almost no colours"


def assert_clean_visit(visit) -> None:
    """No console errors or warnings, no page errors, no request but the file itself."""
    assert visit.console_errors == []
    assert visit.errors == []
    assert visit.network == []
    assert visit.failed == []
