"""One raw line in, one event out: the log format, the masks and the miner together.

>>> p = Parser(ParserSettings(log_format="<Date> <Time> <Level>: <Content>"))
>>> e = p.parse("081109 203615 INFO: Receiving block blk_1 src: /10.0.0.1:5 dest: /10.0.0.2:50010")
>>> e.event, p.template(e.event), e.parameters            # doctest: +SKIP
(1, 'Receiving block <*> src: <*> dest: <*>', ['blk_1', '/10.0.0.1:5', '/10.0.0.2:50010'])
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..errors import InputError
from .logformat import LogFormat
from .masking import DEFAULT_MASKS, PARAM, Masker
from .miner import STATE_FORMAT, STATE_VERSION, Miner, MinerSettings


@dataclass
class ParserSettings:
    """How lines become events. The masks, delimiters and miner settings are part of a parser's
    state: a resumed parser keeps them (new values would renumber nothing but mine differently)."""

    log_format: str | None = None  # None: the whole line is the message
    masks: tuple = DEFAULT_MASKS
    mask_patterns: tuple = ()
    split_keys: bool = True  # rhost=10.0.0.1 -> rhost= <*>
    miner: MinerSettings = field(default_factory=MinerSettings)


@dataclass
class ParsedLine:
    event: int  # the template's id
    parameters: list[str]  # the message's variable parts, in order
    fields: dict  # the format's fields (Content included)


class Parser:
    """Raw lines -> :class:`ParsedLine` (or None for a line that does not fit the log format)."""

    def __init__(self, settings: ParserSettings | None = None, miner: Miner | None = None):
        self.settings = settings or ParserSettings()
        self.format = LogFormat(self.settings.log_format)
        self.masker = Masker(self.settings.masks, self.settings.mask_patterns, self.settings.split_keys)
        self.miner = miner or Miner(self.settings.miner)
        self.settings.miner = self.miner.settings

    def parse(self, line: str, learn: bool = True) -> ParsedLine | None:
        fields = self.format.match(line)
        if fields is None:
            return None
        masked, original = self.masker(fields["Content"])
        found = self.miner.add(masked) if learn else self.miner.match(masked)
        if found is None:
            return ParsedLine(0, [], fields)
        event, template = found
        params = [o for t, o in zip(template, original) if t == PARAM] if len(template) == len(original) else original
        return ParsedLine(event, params, fields)

    def template(self, event: int) -> str:
        c = self.miner.drain.id_to_cluster.get(self.miner.event(event))
        return "" if c is None else " ".join(c.log_template_tokens)

    def templates(self) -> list[tuple[int, str, int]]:
        """``(id, template, count)`` of every template, by id."""
        return [(e, " ".join(t), n) for e, t, n in self.miner.events()]

    # --- state ------------------------------------------------------------------------------------
    def state(self) -> dict:
        s = self.settings
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "log_format": s.log_format,
                "masks": list(s.masks), "mask_patterns": list(s.mask_patterns), "split_keys": s.split_keys,
                "miner": self.miner.state()}

    def save(self, path: str) -> None:
        from ..artifacts import atomic_write_text

        atomic_write_text(path, json.dumps(self.state()))

    @classmethod
    def from_state(cls, state, where: str = "parser state", log_format: str | None = None) -> "Parser":
        """A parser rebuilt from :meth:`state` (``log_format`` overrides the saved one)."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise InputError("not a parser state written by seqrnn parse", where)
        if state.get("version") != STATE_VERSION:
            raise InputError(f"parser state version {state.get('version')!r} is not {STATE_VERSION}", where)
        strs = lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)  # noqa: E731
        if not (strs(state.get("masks")) and strs(state.get("mask_patterns"))
                and isinstance(state.get("split_keys"), bool)
                and (state.get("log_format") is None or isinstance(state.get("log_format"), str))):
            raise InputError("bad parser settings (not a parser state written by seqrnn parse)", where)
        miner = Miner.from_state(state.get("miner"), where)
        settings = ParserSettings(log_format or state["log_format"], tuple(state["masks"]),
                                  tuple(state["mask_patterns"]), state["split_keys"], miner.settings)
        return cls(settings, miner)

    @classmethod
    def load(cls, path: str, log_format: str | None = None) -> "Parser":
        try:
            with open(path, encoding="utf-8") as fh:
                state = json.load(fh)
        except OSError as exc:
            raise InputError(f"cannot read parser state: {exc.strerror}", path) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"parser state is not JSON: {exc}", path) from None
        except RecursionError:  # crafted: nested deeper than any state parse writes
            raise InputError("parser state nested too deep (not a parser state written by seqrnn parse)",
                             path) from None
        return cls.from_state(state, path, log_format)


def settings_dict(settings: ParserSettings) -> dict:
    return asdict(settings)
