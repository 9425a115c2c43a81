"""Coverage of real-level upper bounds on the grids' exact violation probabilities (a fixed stochastic policy).

``python -m benchmarks.certificate_soundness [--quick]``: per grid, states drawn uniformly, R rollouts of H steps
each, one-sided Clopper-Pearson at delta per state; measured covered fraction and exact per-state coverage
(:mod:`ambs_verify.reports.soundness`). Goal: both >= 1 - delta.
"""

from __future__ import annotations

import time

from benchmarks.common import main


def run(quick: bool) -> dict:
    from ambs_verify.envs.registry import make_env
    from ambs_verify.reports.soundness import fixed_policy_coverage

    out = {}
    for task in ("grid", "grid_large"):
        start = time.perf_counter()
        result = fixed_policy_coverage(
            make_env(task), states=1000 if quick else 5000, rollouts=64, horizon=30, delta=0.01, seed=0
        )
        result["wall_s"] = time.perf_counter() - start
        out[task] = result
    return out


if __name__ == "__main__":
    main("certificate_soundness", run)
