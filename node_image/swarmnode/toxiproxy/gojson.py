"""Go-compatible JSON helpers for the Toxiproxy-compatible server.

Owns: encoding values the way Go's encoding/json does (compact, `<>&` escaped, float32 text), and
decoding only the first JSON value of a request body with Go-like error texts ("EOF",
"unexpected EOF", "invalid character ..."). Must not import asyncio, aiohttp or `chaos`.
"""

from __future__ import annotations

import functools
import json
import math
import struct

_DECODER = json.JSONDecoder(parse_float=lambda s: GoFloat(s))
_WS = b" \t\r\n"


class GoFloat(float):
    """A JSON number written with a fraction or exponent (Go refuses it for integer fields)."""

    def __new__(cls, text: str):
        obj = super().__new__(cls, text)
        obj.text = text
        return obj


class DecodeError(Exception):
    """Body could not be decoded; str() is Go's decoder message."""


def encode(value) -> bytes:
    """Compact JSON like Go's json.Marshal (HTML characters escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default)
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        text = (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return text.encode("utf-8")


def _default(obj):
    raise TypeError(f"not JSON serializable: {obj!r}")


def to_float32(x: float) -> float:
    """Round a Python float to the nearest float32 (inf when out of range)."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def float32_text(x: float) -> str:
    """Shortest text that reads back as the same float32, formatted as Go's 'g'-like float32 JSON."""
    if x == 0:   # before the cache: 0.0 and -0.0 are equal keys there
        return "-0" if math.copysign(1, x) < 0 else "0"
    return _float32_text(x)


@functools.lru_cache(maxsize=4096)   # a toxic's JSON is kept, but a listing may still hold many
def _float32_text(x: float) -> str:
    digits = None
    for prec in range(1, 10):
        cand = f"{x:.{prec - 1}e}"
        if to_float32(float(cand)) == x:
            digits = cand
            break
    if digits is None:
        digits = f"{x:.8e}"
    val = float(digits)
    ax = abs(val)
    if 1e-6 <= ax < 1e21:
        mant, exp = digits.split("e")
        exp = int(exp)
        sign = "-" if mant.startswith("-") else ""
        mant = mant.lstrip("-").replace(".", "")
        mant = mant.rstrip("0") or "0"
        point = exp + 1
        if point <= 0:
            out = "0." + "0" * (-point) + mant
        elif point >= len(mant):
            out = mant + "0" * (point - len(mant))
        else:
            out = mant[:point] + "." + mant[point:]
        return sign + out
    mant, exp = digits.split("e")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    e = int(exp)
    return f"{mant}e{'-' if e < 0 else '+'}{abs(e)}"


def decode_first(body: bytes):
    """Decode the first JSON value in body, ignoring what follows it (Go's json.Decoder.Decode)."""
    i = 0
    n = len(body)
    while i < n and body[i] in _WS:
        i += 1
    if i >= n:
        raise DecodeError("EOF")
    text = body.decode("utf-8", errors="replace")
    j = 0
    while j < len(text) and text[j] in " \t\r\n":
        j += 1
    try:
        value, _end = _DECODER.raw_decode(text, j)
    except json.JSONDecodeError as exc:
        raise DecodeError(_go_syntax_message(text, exc)) from None
    except RecursionError:
        raise DecodeError("exceeded max depth") from None
    return value


def _go_syntax_message(text: str, exc: json.JSONDecodeError) -> str:
    pos = exc.pos
    if pos >= len(text) or text[pos:].strip() == "":
        return "unexpected EOF"
    ch = text[pos]
    if exc.msg.startswith("Expecting value"):
        return f"invalid character {_quote_char(ch)} looking for beginning of value"
    if exc.msg.startswith("Expecting property name"):
        return f"invalid character {_quote_char(ch)} looking for beginning of object key string"
    if exc.msg.startswith("Expecting ':'"):
        return f"invalid character {_quote_char(ch)} after object key"
    if exc.msg.startswith("Expecting ',' delimiter"):
        # inside an object or an array
        return f"invalid character {_quote_char(ch)} after object key:value pair"
    return f"invalid character {_quote_char(ch)} in string literal"


def _quote_char(ch: str) -> str:
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    if ord(ch) < 0x20:
        return f"'\\x{ord(ch):02x}'"
    return f"'{ch}'"


def go_type_name(value) -> str:
    """Go decoder's name for a JSON value kind, as used in 'cannot unmarshal X into ...'."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoFloat):
        return f"number {value.text}"
    if isinstance(value, int):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"
