"""Toxiproxy-compatible server (`python3 -m swarmnode.toxiproxy -host H -port P -seed N`).

Owns: the HTTP API of Toxiproxy 2.12.0 (api.py), the proxy registry and its update rules (core.py),
toxic models and validation (model.py), the TCP data path with toxics (datapath.py) and Go-compatible
JSON (gojson.py). Behavioural spec: shared toxiproxy-api.md; differences: docs/toxiproxy-compat.md.
Runs in the node image on Debian's python3 with aiohttp 3.8: stdlib + aiohttp only (uvloop if it
happens to be importable). Must not import `chaos`.
"""

VERSION = "2.12.0"
