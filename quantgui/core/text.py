"""Strings that came from a file, made safe to print or to show as rich text.

A state_dict key, a layer or class name, a file name inside a folder or an exception quoting any
of them can hold terminal escape sequences (clear the screen, move the cursor, fake a prompt),
bidirectional overrides that reorder what is shown, or HTML that a Qt label would render. The
CLI passes everything it prints through `printable`; the GUI shows such strings as plain text
or through `html_text`.
"""

from __future__ import annotations

import html
import re

# C0 controls but tab and newline, DEL, C1 controls (a lone 0x9b is a CSI on many terminals),
# zero-width and bidirectional formatting characters, the BOM and the line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: "re.Match[str]") -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, newlines: bool = True) -> str:
    """`text` with every control or formatting character written as a visible escape (`\\x1b`);
    with `newlines=False` line breaks and tabs are escaped too (a one-line message)."""
    text = str(text)
    out = _UNSAFE.sub(_escape, text)
    if not newlines:
        out = out.replace("\n", "\\n").replace("\t", "\\t")
    return out


def html_text(text: object) -> str:
    """`text` safe inside Qt rich text: escaped HTML, visible control characters, line breaks."""
    return html.escape(printable(text), quote=False).replace("\n", "<br>")


class SafeStream:
    """A text stream wrapper that writes everything through `printable` (see the CLI)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)
