"""The inter-node wire format (docs/contracts.md section 2): pure encoder and incremental decoder.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of UTF-8 JSON holding one
object, written without leading whitespace (the body's first byte is ``{``); at most
``MAX_FRAME_BYTES``. The decoder accepts the byte stream split at any point (the
Toxiproxy slicer toxic does this on purpose) and raises ``BadFrame`` on an oversized length or an
undecodable body; the caller counts it and drops the connection (the peer's error, never ours).

Transport-level frame types (field ``t``; append-only, never renumber or reuse a name):
  ``hello``      first frame on a dialled connection: ``{"t": "hello", "from": id, "inst": str,
                 "c": dial number, "seen": [inst, c] of the receiver's hello that last reached us}``
                 (``inst``, optional: the sender's process instance; a new value means it restarted)
  ``probe``      ``{"t": "probe", "nonce": n}``; the receiver echoes ``probe_ack`` on the SAME
                 connection (the only frame ever sent back on an accepted connection)
  ``probe_ack``  ``{"t": "probe_ack", "nonce": n}``
  ``m``          an application message ``{"t": "m", "ch": channel, ...}``; channels: ``raft``,
                 ``swim``, ``disp`` (dispatcher), ``fwd`` / ``fwd_reply`` (client forwarding).

Must not import asyncio, socket or ``chaos``: the simulator uses this module too.
"""

from __future__ import annotations

import json
import struct

MAX_FRAME_BYTES = 4 * 1024 * 1024
_LEN = struct.Struct(">I")


class BadFrame(ValueError):
    """Bytes from a peer that are not a valid frame."""


def encode(obj: dict) -> bytes:
    """One frame for ``obj``. Raises ValueError for our own oversized or non-object messages."""
    if not isinstance(obj, dict):
        raise TypeError("a frame holds a JSON object")
    body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return _LEN.pack(len(body)) + body


class FrameDecoder:
    """Incremental decoder. ``feed(data)`` returns the complete frames now available, in order.

    After ``BadFrame`` the decoder is poisoned (the stream is desynchronised); drop the connection.
    ``pending_bytes`` says whether a partial frame is buffered (used for stall detection).
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame_bytes
        self._poisoned = False

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)

    @property
    def expected_bytes(self) -> int:
        """Size of the frame being assembled (header included), or 4 before its header is known."""
        if len(self._buf) < 4:
            return 4
        return 4 + _LEN.unpack_from(self._buf, 0)[0]

    def feed(self, data: bytes) -> list[dict]:
        if self._poisoned:
            raise BadFrame("decoder already failed")
        self._buf += data
        out: list[dict] = []
        while True:
            if len(self._buf) < 4:
                return out
            (n,) = _LEN.unpack_from(self._buf, 0)
            if n > self._max:
                self._poisoned = True
                raise BadFrame(f"frame length {n} exceeds {self._max}")
            if len(self._buf) > 4 and self._buf[4] != 0x7B:
                # Every body is a JSON object as our encoder writes it: it starts with "{". This
                # catches a desynchronised stream (bytes lost mid-frame) at once: a length read
                # from JSON text is over 0x20000000 and fails the size check, and a length read
                # from a real header shifted by a few bytes is followed by something else.
                self._poisoned = True
                raise BadFrame("frame body does not start with '{'")
            if len(self._buf) < 4 + n:
                return out
            body = bytes(self._buf[4:4 + n])
            del self._buf[:4 + n]
            try:
                obj = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                self._poisoned = True
                raise BadFrame("frame body is not UTF-8 JSON") from None
            if not isinstance(obj, dict):
                self._poisoned = True
                raise BadFrame("frame body is not a JSON object")
            out.append(obj)


def hello(node_id: str, instance: str | None = None, conn: int | None = None,
          seen: tuple | None = None) -> dict:
    """The first frame on a dialled connection. `conn`: this link's dial number (1, 2, ...);
    `seen`: (instance, conn) of the receiver's own hello that reached us last, i.e. proof that the
    receiver's link to us, that dial of that instance, delivers (transport._Link)."""
    out = {"t": "hello", "from": node_id}
    if instance is not None:
        out["inst"] = instance
    if conn is not None:
        out["c"] = conn
    if seen is not None:
        out["seen"] = [seen[0], seen[1]]
    return out
