"""The contract's error body (docs/contracts.md section 3), shared by the API and the roles.

Kept apart from ``api`` so that the roles, and the node's start, do not import aiohttp: a restarted
manager takes part in Raft before its HTTP API is loaded (see Node.start).
"""

from __future__ import annotations


def error_body(code: str, message: str, definite: bool) -> dict:
    return {"ok": False, "error": code, "message": message, "definite": definite}
