"""Checkers: judge a run directory, each check giving VALID, INVALID or UNKNOWN with evidence.

Owns: the public API of the package. `run_checks(run_dir, specs=None) -> Results` writes
`results.json`; `registry()` lists checkers by name with typed parameters; `parse_spec` turns
`NAME[:k=v,...]` strings or plan.json objects into `CheckSpec`s.

Check specs in plan.json: `"checks": [SPEC, ...]` where SPEC is a string `NAME[:k=v,...]` or an object
`{"checker": NAME, "name"?: LABEL, "params"?: {k: v}}` (docs/contracts.md section 5). List-valued
parameters are '+'-joined in strings (`expectations:expect=leader-changed+fault-applied:partition`).
Without specs, plan.json `checks` is used, else the default set: linearizable, raft-safety,
durability, convergence, availability, recovery.

Must not import: click, rich (reporting is separate), docker.
"""

from chaos.checkers.core import (CheckResult, CheckSpec, Outcome, Param, Results, Verdict, default_checks,
                                 parse_spec, registry, run_check, run_checks)
from chaos.checkers.rundir import RunDir

__all__ = ["CheckResult", "CheckSpec", "Outcome", "Param", "Results", "RunDir", "Verdict", "default_checks",
           "parse_spec", "registry", "run_check", "run_checks"]
