"""Coverage of real-level upper bounds on the grids' exact violation probabilities (a fixed stochastic policy).

``python -m benchmarks.certificate_soundness [--quick]``: per grid, states drawn uniformly, R rollouts of H steps
each, one-sided Clopper-Pearson at delta per state; measured covered fraction and exact per-state coverage
(:mod:`ambs_verify.reports.soundness`). Goal: both >= 1 - delta.
"""

from __future__ import annotations

import time

from benchmarks.common import fmt_seconds, main, row, smoke


def run(quick: bool) -> dict:
    from ambs_verify.envs.registry import make_env
    from ambs_verify.reports.soundness import fixed_policy_coverage

    states = 200 if smoke() else 1000 if quick else 5000  # BENCH_SMOKE: the suite's smoke test
    out = {}
    for task in ("grid", "grid_large"):
        start = time.perf_counter()
        result = fixed_policy_coverage(make_env(task), states=states, rollouts=64, horizon=30, delta=0.01, seed=0)
        result["wall_s"] = time.perf_counter() - start
        out[task] = result
    return out


def headline(result: dict) -> list[dict]:
    """Suite table rows: covered fraction and the smallest exact coverage per grid (goal: both >= 1 - delta)."""
    return [
        row(
            f"{task}, {r['states']} states × {r['rollouts']} rollouts, H {r['horizon']}",
            f"covered fraction {r['covered_fraction']:.4f}, min exact coverage {r['exact_coverage_min']:.4f} "
            f"(goal ≥ {1 - r['delta']:.2f}); wall time",
            fmt_seconds(r["wall_s"]),
        )
        for task, r in result.items()
    ]


if __name__ == "__main__":
    main("certificate_soundness", run)
