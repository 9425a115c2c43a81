"""Wall time of a 4-cell sweep on 2 local workers against the same cells one after another (``--workers 1``).

``python -m benchmarks.sweep_parallel [--quick]``: four debug cells on ``grid`` (the test suite's plumbing
settings, 400 steps each; 200 in quick mode), each a fresh JAX process in both settings, so compilation counts
the same. Both sweeps run in one invocation, one after the other, into fresh directories; the ratio is
sequential / parallel (> 1: the pool is faster). On a 2-core machine each JAX process also uses both cores, so the
ratio measures what running cells side by side adds over XLA's own threads, not a clean 2×.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import fmt_seconds, main, row, smoke

PLUMBING = {
    "shield.samples": 16,
    "imag_horizon": 5,
    "envs.amount": 2,
    "run.train_fill": 60,
    "run.log_every": 50,
    "run.save_every": 100,
    "replay.batch_size": 4,
    "replay.batch_length": 8,
    "run.train_ratio": 32,
    "shield.threshold_horizon": 5,
}


def run(quick: bool) -> dict:
    from ambs_verify.sweep import run_sweep

    steps = 100 if smoke() else 200 if quick else 400
    out = {"cells": 4, "steps": steps}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "four.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "configs": ["quickstart", "debug"],
                    "overrides": {**PLUMBING, "run.steps": steps},
                    "seeds": [0, 1, 2, 3],
                }
            )
        )
        for name, workers in (("sequential", 1), ("parallel", 2)):
            start = time.perf_counter()
            result = run_sweep(spec, Path(tmp) / name, "local", workers)
            out[f"{name}_s"] = time.perf_counter() - start
            assert not result.failed, result.cells
    out["speedup"] = out["sequential_s"] / out["parallel_s"]
    return out


def headline(result: dict) -> list[dict]:
    return [
        row(
            f"sweep of {result['cells']} debug cells × {result['steps']} steps, local executor",
            "wall time, 2 workers (one after another with 1 worker)",
            fmt_seconds(result["parallel_s"]),
            f"1 worker {fmt_seconds(result['sequential_s'])}",
            f"sequential / parallel ×{result['speedup']:.2f}",
        )
    ]


if __name__ == "__main__":
    main("sweep_parallel", run)
