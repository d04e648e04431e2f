"""Toxic and proxy value models of the Toxiproxy-compatible server: fields, defaults, validation, JSON.

Owns: the attribute tables of every toxic type, request-body validation for toxics and proxies (with
Go-like messages), and the exact response JSON (key order, float32 toxicity text). No I/O here.
Must not import asyncio, aiohttp or `chaos`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .gojson import GoFloat, encode, float32_text, go_type_name, to_float32

# type -> (Go struct name, ordered attribute names). Order is the Go struct field order = JSON order.
TOXIC_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "noop": ("NoopToxic", ()),
    "latency": ("LatencyToxic", ("latency", "jitter")),
    "bandwidth": ("BandwidthToxic", ("rate",)),
    "slow_close": ("SlowCloseToxic", ("delay",)),
    "timeout": ("TimeoutToxic", ("timeout",)),
    "reset_peer": ("ResetToxic", ("timeout",)),
    "slicer": ("SlicerToxic", ("average_size", "size_variation", "delay")),
    "limit_data": ("LimitDataToxic", ("bytes",)),
}

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1


class ApiError(Exception):
    """An API-level failure: HTTP status and the message that goes into {"error": ...}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def bad_body(detail: str) -> ApiError:
    return ApiError(400, f"bad request body: {detail}")


def _unmarshal_err(value, where: str, gotype: str) -> ApiError:
    return bad_body(f"json: cannot unmarshal {go_type_name(value)} into Go struct field {where} of type {gotype}")


def check_str(body: dict, key: str, where: str):
    """Return body[key] as a string, None when absent or null; 400 on another JSON type."""
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _unmarshal_err(v, f"{where}.{key}", "string")
    return v


def check_bool(body: dict, key: str, where: str):
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise _unmarshal_err(v, f"{where}.{key}", "bool")
    return v


def check_object(body, gotype: str) -> dict:
    """The body must be a JSON object (null decodes into an empty one, as in Go)."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_body(f"json: cannot unmarshal {go_type_name(body).split(' ')[0]} into Go value of type {gotype}")
    return body


def parse_toxicity(body: dict):
    v = body.get("toxicity")
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _unmarshal_err(v, "Toxic.toxicity", "float32")
    return to_float32(float(v))


def parse_attributes(ttype: str, raw) -> dict:
    """Validate an attributes object for a toxic type; return only the known keys (all or nothing)."""
    if raw is None:
        return {}
    struct, names = TOXIC_TYPES[ttype]
    if not isinstance(raw, dict):
        raise bad_body(f"json: cannot unmarshal {go_type_name(raw).split(' ')[0]} into Go value of type toxics.{struct}")
    out = {}
    for name in names:
        if name not in raw or raw[name] is None:
            continue
        v = raw[name]
        where = f"{struct}.{name}"
        if isinstance(v, bool) or not isinstance(v, int) or isinstance(v, GoFloat):
            raise _unmarshal_err(v, where, "int64")
        if not INT64_MIN <= v <= INT64_MAX:
            raise _unmarshal_err(v, where, "int64")
        out[name] = v
    return out


@dataclass(eq=False)
class Toxic:
    """A toxic as configured through the API. `direction` is the lower-cased stream.

    Its JSON is built once and kept in `_json` (`GET /proxies` lists every toxic of every proxy, and
    a flaky fault on 870 links is 1,740 toxics per listing): whoever changes a field after creation
    (only core.Proxy.update_toxic does) sets `_json` to None."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict = field(default_factory=dict)
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def direction(self) -> str:
        return self.stream.lower()

    def attr(self, key: str) -> int:
        return self.attributes.get(key, 0)

    def to_json(self) -> bytes:
        out = self._json
        if out is None:
            names = TOXIC_TYPES[self.type][1]
            attrs = b"{" + b",".join(b'"%s":%d' % (n.encode(), self.attributes.get(n, 0)) for n in names) + b"}"
            out = (b'{"attributes":' + attrs + b',"name":' + q(self.name) + b',"type":' + q(self.type)
                   + b',"stream":' + q(self.stream) + b',"toxicity":'
                   + float32_text(self.toxicity).encode() + b"}")
            self._json = out
        return out


def new_toxic(body, existing_names) -> Toxic:
    """Validate a POST /proxies/{p}/toxics body, in the real server's order of checks."""
    body = check_object(body, "toxics.ToxicWrapper")
    name = check_str(body, "name", "ToxicWrapper")
    ttype = check_str(body, "type", "ToxicWrapper")
    stream = check_str(body, "stream", "ToxicWrapper")
    toxicity = parse_toxicity(body)
    if stream is None:
        stream = "downstream"
    if stream.lower() not in ("upstream", "downstream"):
        raise ApiError(400, "stream was invalid, can be either upstream or downstream")
    if not name:
        name = f"{ttype or ''}_{stream}"
    if ttype not in TOXIC_TYPES:
        raise ApiError(400, "invalid toxic type")
    if name in existing_names:
        raise ApiError(409, "toxic already exists")
    attrs = parse_attributes(ttype, body.get("attributes"))
    return Toxic(name=name, type=ttype, stream=stream, toxicity=1.0 if toxicity is None else toxicity,
                 attributes=attrs)


def toxic_update(toxic: Toxic, body) -> tuple[dict, float]:
    """Validate a toxic update body; return (new attributes, new toxicity) without changing the toxic."""
    body = check_object(body, "toxics.ToxicWrapper")
    toxicity = parse_toxicity(body)
    check_str(body, "name", "ToxicWrapper")
    attrs = dict(toxic.attributes)
    attrs.update(parse_attributes(toxic.type, body.get("attributes")))
    return attrs, toxic.toxicity if toxicity is None else toxicity


_PLAIN = frozenset(" !#$%'()*+,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~")


def q(s: str) -> bytes:
    """JSON string literal, Go-escaped; a fast path for plain printable ASCII."""
    if _PLAIN.issuperset(s):
        return b'"' + s.encode("ascii") + b'"'
    return encode(s)


def proxy_json(name: str, listen: str, upstream: str, enabled: bool, toxics_json: list[bytes]) -> bytes:
    return (b'{"name":' + q(name) + b',"listen":' + q(listen) + b',"upstream":' + q(upstream)
            + b',"enabled":' + (b"true" if enabled else b"false") + b',"Logger":{},"toxics":['
            + b",".join(toxics_json) + b"]}")
