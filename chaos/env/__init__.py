"""The Docker environment of a chaos cluster (DESIGN.md sections 3 and 6).

Modules: engine (client + error mapping), labels (labels, names, filters), spec (cluster as data,
agent env), up (creation + teardown on interrupt), cluster (find a running cluster, status, probe,
ready wait), ready (pure readiness judgement), nodeops (kill/stop/pause and back), cleanup (removal
by label), doctor (environment checks), progress (progress display).
Docker SDK only: never the docker CLI, never a shell string. Must not import: click, chaos.cli.
"""
