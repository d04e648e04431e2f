"""Deterministic in-process simulators for the protocol cores (virtual time, seeded network).

Owns: the package. Modules: net (virtual clock, event scheduler, seeded lossy network, partitions as
data), raft_sim (Raft cluster simulator and safety checker), swim_sim and transport (SWIM side), swim_checks
(SWIM consequence checks), orch_checks (the orchestrator's task rules on a seeded world model).
Must not import asyncio, socket, time or `chaos`.
"""
