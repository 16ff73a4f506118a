"""Text normalisation shared by the detectors: fold obfuscation away before matching.

:func:`fold` produces a lower-case, NFKC-normalised view of a text with homoglyphs of mixed-script
words mapped to Latin and invisible characters removed, together with a map from each folded
character back to its position in the original (so spans found in the folded view point at the
original text). :func:`deleet` undoes leetspeak character for character, and
:func:`rot13` undoes ROT13. Pure functions, no state: safe from any thread.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from bastion.domain.findings import Span

#: Characters that render as nothing: zero-width, joiners, word joiner, BOM, soft hyphen, bidi controls.
INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069"
    "\u206a\u206b\u206c\u206d\u206e\u206f\u3164\ufeff\uffa0"
)
#: Bidirectional overrides and isolates (Trojan Source).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
TAG_BLOCK = range(0xE0000, 0xE0080)

# Cyrillic / Greek / other letters that look like Latin ones (lower case, after casefold).
_HOMOGLYPHS = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɡ": "g", "α": "a", "β": "b", "ε": "e", "η": "n",
    "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    "ı": "i", "ȷ": "j", "ℓ": "l", "ꮃ": "w", "ꭵ": "v",
}  # fmt: skip
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZabcdefghijklm",
)


@dataclass(frozen=True, slots=True)
class Folded:
    """A folded view of a text; ``origin[i]`` is the original index of folded character ``i``.

    ``origin`` is ``None`` when the folding kept every position (pure ASCII input).
    """

    text: str
    origin: tuple[int, ...] | None
    source_length: int

    def span(self, start: int, end: int) -> Span:
        """The original span behind the folded range ``[start, end)``."""
        if self.origin is None:
            return Span(start, end)
        if start >= len(self.origin):
            return Span(self.source_length, self.source_length)
        first = self.origin[start]
        last = self.origin[end - 1] + 1 if end > start else first
        return Span(first, max(first, last))


def _fold_char(ch: str) -> str:
    if ch in INVISIBLE or 0xE0000 <= ord(ch) <= 0xE007F:
        return ""
    folded = unicodedata.normalize("NFKC", ch).casefold()
    return folded


def _is_latin_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("\u00c0" <= ch <= "\u024f")


def fold(text: str) -> Folded:
    """Lower-case NFKC view of ``text``; homoglyphs inside mixed-script words become Latin."""
    if text.isascii():
        return Folded(text.lower(), None, len(text))
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for out in _fold_char(ch):
            chars.append(out)
            origin.append(i)
    _fold_homoglyphs(chars)
    return Folded("".join(chars), tuple(origin), len(text))


def _fold_homoglyphs(chars: list[str]) -> None:
    """Map look-alike letters to Latin inside words that also contain Latin letters (in place)."""
    n = len(chars)
    i = 0
    while i < n:
        if not chars[i].isalpha():
            i += 1
            continue
        j = i
        has_latin = has_glyph = False
        while j < n and (chars[j].isalpha() or chars[j] in "0123456789"):
            c = chars[j]
            has_latin = has_latin or _is_latin_letter(c)
            has_glyph = has_glyph or c in _HOMOGLYPHS
            j += 1
        if has_latin and has_glyph:
            for k in range(i, j):
                chars[k] = _HOMOGLYPHS.get(chars[k], chars[k])
        i = j


def deleet(text: str) -> str:
    """Undo common leetspeak substitutions (``1gn0r3`` → ``ignore``); keeps length."""
    return text.translate(_LEET)


def rot13(text: str) -> str:
    """ROT13 of ``text`` (its own inverse); keeps length."""
    return text.translate(_ROT13)


def decode_tag_characters(text: str) -> str:
    """The ASCII text smuggled in Unicode tag characters (U+E0020–U+E007E), in order."""
    return "".join(chr(ord(c) - 0xE0000) for c in text if 0xE0020 <= ord(c) <= 0xE007E)


def collapse_spaced_letters(text: str) -> str:
    """Join letters written one by one (``i g n o r e`` → ``ignore``); other text unchanged."""
    words = text.split(" ")
    out: list[str] = []
    run: list[str] = []
    for w in words:
        if len(w) == 1 and w.isalpha():
            run.append(w)
            continue
        if run:
            out.append("".join(run) if len(run) >= 3 else " ".join(run))
            run = []
        out.append(w)
    if run:
        out.append("".join(run) if len(run) >= 3 else " ".join(run))
    return " ".join(out)
