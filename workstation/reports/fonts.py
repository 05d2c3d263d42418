"""The fonts the PDF reports print in (reportlab), Qt-free: one registration for the report's text and its chart.

Every font is embedded from ``resources/fonts``: DejaVu Sans Condensed (regular and bold), and Droid Sans Fallback
for the characters DejaVu lacks (CJK among them), loaded only when a text needs it. A character that neither has
(Hangul, Thai, Devanagari, most emoji...) would print as an empty box that reads as if nothing were missing; it is
printed as U+FFFD instead (DejaVu's question mark in a diamond), one for each character as a reader sees it, so
``Maria 🦄`` reads ``Maria �`` and a person can tell that something in the name could not be printed. A
whitespace character neither has prints as a space, and an invisible format character neither has (a joiner, a
variation selector) is left out, as a viewer would show nothing for it anyway.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from itertools import groupby
from xml.sax.saxutils import escape

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from workstation.paths import resources_dir

FONT, FONT_BOLD, FONT_FALLBACK = "WS-DejaVuSansCondensed", "WS-DejaVuSansCondensed-Bold", "WS-DroidSansFallback"
FONT_FILES = {FONT: "DejaVuSansCondensed.ttf", FONT_BOLD: "DejaVuSansCondensed-Bold.ttf",
              FONT_FALLBACK: "DroidSansFallbackFull.ttf"}
REPLACEMENT = "\ufffd"  # in DejaVu (the tests check it), so a replaced character never needs the fallback
_ZWJ = "\u200d"

_fonts_ready = False


def register_fonts(*names: str) -> None:
    """Register the embedded fonts with reportlab (once; before any Paragraph or chart is made, as they look their
    fonts up then); the bold face serves ``<b>`` in paragraphs. With ``names``, just those fonts (the fallback, on
    demand)."""
    global _fonts_ready
    if not names and _fonts_ready:
        return
    for name in names or (FONT, FONT_BOLD):
        if name not in pdfmetrics.getRegisteredFontNames():
            path = resources_dir() / "fonts" / FONT_FILES[name]
            pdfmetrics.registerFont(TTFont(name, str(path)))
    if not names:
        for family in (FONT, FONT_BOLD):  # text set in either face finds the other for <b> and plain runs
            for bold, italic, face in ((0, 0, FONT), (1, 0, FONT_BOLD), (0, 1, FONT), (1, 1, FONT_BOLD)):
                addMapping(family, bold, italic, face)
        _fonts_ready = True


@lru_cache(maxsize=None)
def covered(name: str) -> frozenset[int]:
    """The code points a registered font has glyphs for."""
    register_fonts(name)
    return frozenset(pdfmetrics.getFont(name).face.charToGlyph)


def _extends(char: str) -> bool:
    """Whether ``char`` belongs to the character before it, as a reader sees it: a combining mark (variation
    selectors among them), a skin-tone modifier, an emoji tag."""
    code = ord(char)
    return unicodedata.category(char) in ("Mn", "Mc", "Me") or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F


def _regional(char: str) -> bool:
    """A regional indicator: two of them make one flag."""
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def printable(text: str) -> str:
    """``text`` as the embedded fonts print it: each character neither font has, with the marks, modifiers and
    joined characters that make one character with it (``👩‍👩‍👧``, ``👍🏽``, a flag), becomes one ``REPLACEMENT``; a
    control character too; whitespace neither has becomes a space; an invisible format character neither has is
    left out. All else is kept as it is."""
    regular = covered(FONT)
    if all(ord(c) in regular and unicodedata.category(c) != "Cc" for c in text):
        return text  # the usual case: DejaVu has it all (the fallback is not loaded for it)
    out, i = [], 0
    while i < len(text):
        char, category = text[i], unicodedata.category(text[i])
        i += 1
        if category != "Cc" and (ord(char) in regular or (not char.isspace() and ord(char) in covered(FONT_FALLBACK))):
            out.append(char)
        elif char.isspace():
            out.append(" ")
        elif category == "Cf":
            continue
        else:
            out.append(REPLACEMENT)
            if _regional(char) and i < len(text) and _regional(text[i]):
                i += 1
            while i < len(text):
                if _extends(text[i]):
                    i += 1
                elif text[i] == _ZWJ and i + 1 < len(text):
                    i += 2
                else:
                    break
    return "".join(out)


def runs(text: str) -> list[tuple[bool, str]]:
    """``printable(text)`` as runs of (set in the fallback font, characters): all in DejaVu but for what it
    lacks."""
    regular = covered(FONT)
    out = [(fallback, "".join(chars))
           for fallback, chars in groupby(printable(text), key=lambda c: ord(c) not in regular)]
    if any(fallback for fallback, _ in out):
        register_fonts(FONT_FALLBACK)  # loaded on demand (printable has, when it looked a character up in it)
    return out


def markup(text) -> str:
    """Paragraph markup of plain ``text``: escaped, in printable characters (``printable``), those DejaVu lacks set
    in the fallback font."""
    register_fonts()
    return "".join(f'<font name="{FONT_FALLBACK}">{escape(run)}</font>' if fallback else escape(run)
                   for fallback, run in runs(str(text)))


def text_width(text: str, size: float) -> float:
    """The width in points of ``text`` as ``draw_text`` prints it."""
    return sum(pdfmetrics.stringWidth(run, FONT_FALLBACK if fallback else FONT, size) for fallback, run in runs(text))


def draw_text(canvas, x: float, y: float, text: str, size: float) -> None:
    """``canvas.drawString`` in the embedded fonts (``printable`` characters), a font change where DejaVu lacks a
    glyph."""
    for fallback, run in runs(text):
        canvas.setFont(FONT_FALLBACK if fallback else FONT, size)
        canvas.drawString(x, y, run)
        x += pdfmetrics.stringWidth(run, FONT_FALLBACK if fallback else FONT, size)
