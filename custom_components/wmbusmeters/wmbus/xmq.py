"""Read xmq, the format of wmbusmeters' driver definitions (drivers/src/*.xmq, and what
`--printdriver=NAME` prints, the same on one line): `key = value` and `key { ... }`, a quote is
any run of ' or " ('' is empty), // and /* */ comments."""

from __future__ import annotations

from collections.abc import Iterator
import re
from typing import Any

type Xmq = list[tuple[str, Any]]
"""A block: (key, a value or the items of its own block), in order."""

_TOKEN = re.compile(r"""\s+|//[^\n]*|/\*.*?\*/|([{}=(])|('+|"+)|[^\s{}=()]+""", re.DOTALL)
#: Inside a compound value `( 'text' &#10; 'more' )`: its parts, an entity, or its end.
_PART = re.compile(r"""\s+|('+|"+)|&(#?\w+);|(\))""")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "apos": "'", "quot": '"'}


class XmqError(ValueError):
    """Not xmq: a quote or a block that does not end, a key without a value."""


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    """("{", ""), ("}", ""), ("=", "") and ("text", a key or a value)."""
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # (every character matches one of the alternatives)
            raise XmqError(text[pos : pos + 80])
        pos = match.end()
        if match.group(1) == "(":
            value, pos = _compound(text, pos)
            yield "text", value
        elif bracket := match.group(1):
            yield bracket, ""
        elif quote := match.group(2):
            value, pos = _quoted(text, pos, quote)
            yield "text", value
        elif not match.group().isspace() and not match.group().startswith(("//", "/*")):
            yield "text", match.group()


def _quoted(text: str, pos: int, quote: str) -> tuple[str, int]:
    """The quoted text that starts at pos (after its opening `quote`), and where it ends."""
    if len(quote) == 2:  # '' or "": empty
        return "", pos
    end = text.find(quote, pos)
    if end < 0:
        raise XmqError(f"unterminated quote at {pos}")
    return text[pos:end], end + len(quote)


def _compound(text: str, pos: int) -> tuple[str, int]:
    """A compound value (after its `(`): its quoted parts and entities joined, and its end."""
    parts: list[str] = []
    while (match := _PART.match(text, pos)) is not None:
        pos = match.end()
        if quote := match.group(1):
            part, pos = _quoted(text, pos, quote)
            parts.append(part)
        elif entity := match.group(2):
            if entity.startswith("#"):
                code = entity[1:]
                try:
                    parts.append(chr(int(code[1:], 16) if code[:1] in "xX" else int(code)))
                except (ValueError, OverflowError) as err:
                    raise XmqError(f"no character &{entity};") from err
            else:
                parts.append(_ENTITIES.get(entity, f"&{entity};"))
        elif match.group(3):
            return "".join(parts), pos
    raise XmqError(f"compound value does not end at {pos}")


def parse_xmq(text: str) -> Xmq:
    """The items of a document; raises XmqError if it is not xmq."""
    tokens = list(_tokens(text))
    pos = 0

    def block() -> Xmq:
        nonlocal pos
        items: Xmq = []
        while pos < len(tokens) and tokens[pos][0] != "}":
            if tokens[pos][0] != "text" or pos + 1 >= len(tokens):
                raise XmqError(f"a key expected at token {pos}")
            key, op = tokens[pos][1], tokens[pos + 1][0]
            if op == "=" and pos + 2 < len(tokens) and tokens[pos + 2][0] == "text":
                items.append((key, tokens[pos + 2][1]))
                pos += 3
            elif op == "{":
                pos += 2
                items.append((key, block()))
                if pos >= len(tokens):
                    raise XmqError(f"block {key} does not end")
                pos += 1
            else:
                raise XmqError(f"{key}: neither a value nor a block")
        return items

    items = block()
    if pos != len(tokens):
        raise XmqError("a } too many")
    return items


def values(node: Xmq, key: str) -> list[Any]:
    """The values (or blocks) under `key`, in order."""
    return [value for name, value in node if name == key]
