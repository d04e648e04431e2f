"""chaos: the host-side harness (CLI, environment, Toxiproxy wiring, checkers, reports)."""
