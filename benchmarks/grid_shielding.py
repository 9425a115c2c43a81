"""AMBS vs unshielded DreamerV3 on the built-in ``grid`` at the quickstart budget, over several seeds.

For each seed and agent the quickstart config is trained from scratch in a temporary run directory; the figures
come from its ``metrics.jsonl``: cumulative violations (all envs, whole run, prefill included), mean episode return
over all episodes and over the last 20, and AMBS's override rate. Both agents share everything but the shield and
the safe policy (``--agent ambs`` vs ``--agent dreamer``), so the ratio of violations is measured side by side.

``python -m benchmarks.grid_shielding [--quick]`` (quick: one seed, 1,500 steps: a smoke run, not a result).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import main, row

AGENTS = ("ambs", "dreamer")


def _summary(metrics: list[dict]) -> dict:
    episodes = [r for r in metrics if "episode/return" in r]
    returns = [r["episode/return"] for r in episodes]
    overrides = [r["episode/override_rate"] for r in episodes if "episode/override_rate" in r]
    return {
        "episodes": len(episodes),
        "violations": int(sum(r["episode/violations"] for r in episodes)),
        "cumulative_violations": int(max((r["episode/total_violations"] for r in episodes), default=0)),
        "return_mean": statistics.fmean(returns) if returns else None,
        "return_last20": statistics.fmean(returns[-20:]) if returns else None,
        "override_rate": statistics.fmean(overrides) if overrides else None,
    }


def train_one(agent: str, seed: int, steps: int, root: Path) -> dict:
    from ambs_verify.config import resolve
    from ambs_verify.runs import RunDir
    from ambs_verify.trainers.factory import build_agent
    from ambs_verify.trainers.loop import train

    config = resolve(
        ["quickstart"],
        {"agent": agent, "seed": seed, "logdir": str(root / f"{agent}-{seed}"), "run.progress": False}
        | ({"run.steps": steps} if steps else {}),
    )
    start = time.perf_counter()
    train(config, build_agent(config))
    out = _summary(RunDir(config.logdir).read_metrics())
    out.update(seed=seed, agent=agent, steps=config.run.steps, wall_s=time.perf_counter() - start)
    return out


def run(quick: bool) -> dict:
    seeds = [0] if quick else [0, 1, 2]
    steps = 1500 if quick else 0  # 0: the quickstart's own budget
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for agent in AGENTS:
                runs.append(train_one(agent, seed, steps, Path(tmp)))
    table = {}
    for agent in AGENTS:
        mine = [r for r in runs if r["agent"] == agent]
        viol = [r["cumulative_violations"] for r in mine]
        ret = [r["return_mean"] for r in mine]
        table[agent] = {
            "cumulative_violations_mean": statistics.fmean(viol),
            "cumulative_violations_std": statistics.stdev(viol) if len(viol) > 1 else 0.0,
            "return_mean": statistics.fmean(ret),
            "return_last20_mean": statistics.fmean(r["return_last20"] for r in mine),
        }
    ratio = table["ambs"]["cumulative_violations_mean"] / max(table["dreamer"]["cumulative_violations_mean"], 1)
    return {"seeds": seeds, "runs": runs, "summary": table, "violations_ratio_ambs_over_dreamer": ratio}


def headline(result: dict) -> list[dict]:
    """Suite table rows: cumulative violations per agent over the seeds, and AMBS's ratio to DreamerV3."""
    out = []
    steps = result["runs"][0]["steps"] if result["runs"] else 0
    for agent, t in result["summary"].items():
        viol = [r["cumulative_violations"] for r in result["runs"] if r["agent"] == agent]
        ratio = f"AMBS/DreamerV3 ×{result['violations_ratio_ambs_over_dreamer']:.2f}" if agent == "ambs" else "—"
        out.append(
            row(
                f"{agent}, {len(result['seeds'])} seed(s) × {steps} steps",
                f"cumulative violations, mean ± std over seeds (mean return {t['return_mean']:.2f})",
                f"{t['cumulative_violations_mean']:.0f} ± {t['cumulative_violations_std']:.0f}",
                f"{min(viol)} – {max(viol)}",
                ratio,
            )
        )
    return out


if __name__ == "__main__":
    main("grid_shielding", run)
