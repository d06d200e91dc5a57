"""Mask the variable parts of a log message before template mining.

The message is split at whitespace; a ``key=value`` token is split after its
``=`` (``rhost=10.0.0.1`` -> ``rhost=`` ``10.0.0.1``: the key is kept, the
value judged alone) when the key is a plain name, and each piece that the
masks call variable becomes ``<*>``. Piece by piece rather than
regex by regex over the whole line: the same tokens recur in a log, so each
is judged once and remembered, which keeps masking cheaper than mining.

Masks (``masks``, any of :data:`MASKS`; default all):

- ``digits``: a piece holding a digit: numbers, sizes, times, IPs, ports,
  hex, block and instance ids, UUIDs, host names with numbers;
- ``paths``: a piece holding ``/`` (file paths, URLs);
- ``hex``: hex strings of 8+ characters without a digit (rare, ``deadbeef``).

``patterns``: regular expressions masked in the whole message first (for
variable parts with spaces inside, or a system's own ids).

A run of variable pieces is one ``<*>`` (``delete blk_1 blk_2 blk_3`` ->
``delete <*>``): lists of ids of any length are one template. Its original
text is the run's pieces joined by spaces.
"""

from __future__ import annotations

import re

from ..errors import InputError
from .timelimit import run

PARAM = "<*>"
MASKS = ("digits", "paths", "hex")
DEFAULT_MASKS = MASKS
_KEY = re.compile(r"([A-Za-z_][\w.-]*=)(.+)")
_DIGIT = re.compile(r"\d")
_HEX = re.compile(r"(0x)?[0-9a-fA-F]{8,}")
_CACHE_SIZE = 200_000


class Masker:
    """``masker(content) -> (masked pieces, original pieces)``, two lists of the same length."""

    def __init__(self, masks=DEFAULT_MASKS, patterns=(), split_keys: bool = True):
        unknown = [m for m in masks if m not in MASKS]
        if unknown:
            raise InputError(f"unknown mask {unknown[0]!r}; choose among {', '.join(MASKS)}", params="masks")
        self.masks = tuple(masks)
        self.patterns = tuple(patterns)
        self.split_keys = split_keys
        try:
            self._patterns = re.compile("|".join(f"(?:{p})" for p in self.patterns)) if self.patterns else None
        except re.error as exc:
            raise InputError(f"mask pattern is not a regular expression: {exc}", params="mask_patterns") from None
        empty = [p for p in self.patterns if re.fullmatch(f"(?:{p})", "")]
        if empty:  # its empty matches would put a <*> between every two characters of every message
            raise InputError(f"mask pattern {empty[0]!r} matches empty text: write it to match at least one "
                             "character (+ rather than *)", params="mask_patterns")
        if self._patterns is not None:
            self._sub = lambda text: self._patterns.sub(PARAM, text)
        self._cache: dict[str, tuple] = {}
        self._plain: dict[str, str] = {}  # token -> its mask, for tokens that stay one piece

    def is_variable(self, piece: str) -> bool:
        if piece == PARAM:
            return True
        if "digits" in self.masks and _DIGIT.search(piece):
            return True
        if "paths" in self.masks and "/" in piece:
            return True
        return "hex" in self.masks and _HEX.fullmatch(piece) is not None

    def _token(self, token: str) -> tuple:
        m = _KEY.fullmatch(token) if self.split_keys else None
        pieces = m.groups() if m else (token,)
        masked = tuple(PARAM if self.is_variable(p) else p for p in pieces)
        return masked, tuple(pieces)

    def __call__(self, content: str) -> tuple[list[str], list[str]]:
        if self._patterns is not None:
            content = run(self._sub, content, "mask_patterns")
        tokens = content.split()
        try:  # the common case: every token seen before, none split
            plain = self._plain
            masked = [plain[t] for t in tokens]
        except KeyError:
            masked, tokens = self._slow(tokens)
        return _collapse(masked, tokens)

    def _slow(self, tokens: list[str]) -> tuple[list[str], list[str]]:
        cache = self._cache
        masked: list[str] = []
        original: list[str] = []
        for token in tokens:
            hit = cache.get(token)
            if hit is None:
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                    self._plain.clear()
                hit = cache[token] = self._token(token)
                if len(hit[0]) == 1:
                    self._plain[token] = hit[0][0]
            masked.extend(hit[0])
            original.extend(hit[1])
        return masked, original

    def settings(self) -> dict:
        return {"masks": list(self.masks), "mask_patterns": list(self.patterns), "split_keys": self.split_keys}


def _collapse(masked: list[str], original: list[str]) -> tuple[list[str], list[str]]:
    """Runs of ``<*>`` as one, their original pieces joined by a space."""
    out_m: list[str] = []
    out_o: list[str] = []
    run = False
    for m, o in zip(masked, original):
        if m == PARAM:
            if run:
                out_o[-1] += " " + o
                continue
            run = True
        else:
            run = False
        out_m.append(m)
        out_o.append(o)
    return out_m, out_o
