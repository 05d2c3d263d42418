"""Text read from a scan file (names, IDs, descriptions), made safe to print and to put in a PDF: one rule.

A file's text reaches a terminal (``workstation patients``), the window and the PDF. Control characters in it (an
ESC that recolours a terminal, a newline that splits a line, a NUL) are never a real name's: each is replaced where the
text is read, a line break or tab by a space and any other by a visible ``?``, so that the damage shows rather than
acts. So are the bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make a name read as
another. Real letters of any script (Ü, Hangul, Arabic; the joiners some scripts need) are kept as they are.
"""
from __future__ import annotations

import unicodedata

PLACEHOLDER = "?"
_SPACES = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(text: str | None) -> str | None:
    """``text`` with its control characters replaced (see the module docstring) and its ends stripped (nothing else
    changes: an ID keeps its spaces); None for None or for text that is empty once cleaned."""
    if text is None:
        return None
    out = []
    for char in str(text):
        if char in _SPACES:
            out.append(" ")
        elif char in _BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cs"):
            out.append(PLACEHOLDER)
        else:
            out.append(char)
    return "".join(out).strip() or None
