"""The AMBS paper's comparison on the built-in ``grid``, at the quickstart budget, over several seeds.

Agents (``AGENTS``: config blocks on top of ``quickstart``): AMBS, unshielded DreamerV3, Lagrangian DreamerV3 and
AMBS with PENL, PLPG or COPT. Every run trains from scratch in its own directory under ``$GRID_SHIELDING_RUNS``
(default a temporary one) and is then evaluated on 32 fresh episodes; the per-run figures are those of
:mod:`benchmarks.training` (cumulative training violations, the last 20 %'s violations per episode and override
rate, the spread of p̂, the final return and goal rate, the wall time).

Summary: per agent the mean and spread over seeds; the ratio of AMBS's to DreamerV3's mean cumulative violations
with a percentile-bootstrap 95 % CI over seeds (``scipy.stats.bootstrap``, the two agents resampled
independently, 10,000 resamples, fixed seed), also over the violations after the shared random prefill; and the
issue's three goals with the measured value and whether it is met (the goal counts every training violation).
Results are also written after every run (``partial``), so an interrupted benchmark keeps what it measured.

``python -m benchmarks.grid_shielding [--quick]`` (quick: AMBS and DreamerV3, one seed, 1,500 steps: a smoke
run, not a result). ``GRID_SHIELDING_SEEDS`` / ``GRID_SHIELDING_AGENTS`` (comma-separated) select a subset;
``GRID_SHIELDING_RESUME=FILE`` (an earlier result or ``-partial.json``) reuses the runs it holds (each marked
``reused_from``) and trains only the missing agent-seed pairs.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.common import SelectionError, main, row
from benchmarks.training import per_label, ratio_ci, selected, sweep, train_and_evaluate

# agent label -> (agent, extra config blocks); all on top of "quickstart"
AGENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ambs": ("ambs", ()),
    "dreamer": ("dreamer", ()),
    "lagrangian": ("lagrangian", ()),
    "ambs+penl": ("ambs", ("penl",)),
    "ambs+plpg": ("ambs", ("plpg",)),
    "ambs+copt": ("ambs", ("copt",)),
    "ambs+grid_ambs": ("ambs", ("grid_ambs",)),  # PENL 0.1, actor-critic lr 1e-4 (README: the known gap)
}
SEEDS = (0, 1, 2, 3, 4)
EVAL_EPISODES = 32
AMBS_OF_RECORD = "ambs+grid_ambs"  # the AMBS that make quickstart trains; the goals judge it


def train_one(label: str, seed: int, steps: int | None, root: Path) -> dict:
    """Train and evaluate one agent on one seed; the run directory is ``root/<label>-<seed>``."""
    agent_name, blocks = AGENTS[label]
    overrides = {"agent": agent_name, "seed": seed, "logdir": str(root / f"{label}-{seed}")}
    if steps:
        overrides["run.steps"] = steps
    return train_and_evaluate(["quickstart", *blocks], overrides, EVAL_EPISODES)


def summary(runs: list[dict]) -> dict:
    """Per-agent means and spreads, the AMBS/DreamerV3 violation ratio and the goals.

    The goals judge the quickstart's AMBS (``ambs+grid_ambs``, :data:`AMBS_OF_RECORD`) where it was run, else the
    paper's settings (``ambs``); ``ambs_label`` in the result says which.
    """
    table = per_label(runs, AGENTS)
    ambs_label = next((label for label in (AMBS_OF_RECORD, "ambs") if label in table), "ambs")
    out: dict = {"agents": table, "ambs_label": ambs_label}
    ambs = [r for r in runs if r["label"] == ambs_label]
    dreamer = [r for r in runs if r["label"] == "dreamer"]
    goals = {}
    if dreamer:
        good = sum(r["eval_goal_rate"] >= 0.9 for r in dreamer)
        goals["dreamer_reaches_goal"] = {
            "goal": "DreamerV3 reaches the goal in >= 90 % of final evaluation episodes on >= 4 of 5 seeds",
            "measured": f"{good} of {len(dreamer)} seeds",
            "met": good >= 4 and len(dreamer) >= 5,
        }
    if ambs and dreamer:
        ci = ratio_ci([r["cumulative_violations"] for r in ambs], [r["cumulative_violations"] for r in dreamer])
        out["violations_ratio_ambs_over_dreamer"] = ci
        if all(r.get("violations_after_prefill") is not None for r in ambs + dreamer):
            out["violations_after_prefill_ratio_ambs_over_dreamer"] = ratio_ci(
                [r["violations_after_prefill"] for r in ambs], [r["violations_after_prefill"] for r in dreamer]
            )
        ret_ratio = statistics.fmean(r["eval_return"] for r in ambs) / max(
            statistics.fmean(r["eval_return"] for r in dreamer), 1e-12
        )
        out["return_ratio_ambs_over_dreamer"] = ret_ratio
        goals["ambs_fewer_violations"] = {
            "goal": "AMBS cumulative training violations <= 0.5x DreamerV3's at a mean final return >= 0.9x",
            "measured": f"violations x{ci['ratio']:.2f}, return x{ret_ratio:.2f}",
            "met": ci["ratio"] <= 0.5 and ret_ratio >= 0.9,
        }
    if ambs:
        rates = [r["override_rate_last20"] for r in ambs if r["override_rate_last20"] is not None]
        spreads = [r["p_hat_std_last20"] for r in ambs if r["p_hat_std_last20"] is not None]
        mean_rate = statistics.fmean(rates) if rates else None
        goals["ambs_override_rate"] = {
            "goal": "AMBS override rate over the last 20 % of training in [1 %, 50 %], varying with the state",
            "measured": f"{mean_rate:.1%} (p̂ std across states {statistics.fmean(spreads):.3f})"
            if rates and spreads
            else "no shielded episodes in the last 20 %",
            "met": bool(rates and spreads and 0.01 <= mean_rate <= 0.5 and statistics.fmean(spreads) > 0.01),
        }
    out["goals"] = goals
    return out


def run(quick: bool) -> dict:
    labels = (AMBS_OF_RECORD, "dreamer") if quick else selected("GRID_SHIELDING_AGENTS", tuple(AGENTS))
    unknown = [label for label in labels if label not in AGENTS]
    if unknown:
        raise SelectionError(f"unknown agents {unknown}; accepted: {', '.join(AGENTS)}")
    seeds = (0,) if quick else selected("GRID_SHIELDING_SEEDS", SEEDS)
    steps = 1500 if quick else None  # None: the quickstart's own budget
    runs = sweep("grid_shielding", seeds, labels, lambda lab, seed, root: train_one(lab, seed, steps, root), not quick)
    return {"seeds": list(seeds), "agents": list(labels), "runs": runs, **summary(runs)}


def headline(result: dict) -> list[dict]:
    """Suite table rows: per agent cumulative violations and final return over the seeds; the ratio on AMBS."""
    out = []
    steps = result["runs"][0]["steps"] if result["runs"] else 0
    ci = result.get("violations_ratio_ambs_over_dreamer")
    for label, t in result["agents"].items():
        viol = t["cumulative_violations"]
        ratio = "—"
        if label == result.get("ambs_label", "ambs") and ci:
            interval = f" [{ci['ci95'][0]:.2f}, {ci['ci95'][1]:.2f}]" if ci["ci95"] else ""
            ratio = f"AMBS/DreamerV3 ×{ci['ratio']:.2f}{interval}"
        out.append(
            row(
                f"{label}, {len(result['seeds'])} seed(s) × {steps} steps",
                f"cumulative violations (final return {t['eval_return']['mean']:.2f})",
                f"{viol['mean']:.0f} ± {viol['std']:.0f}",
                f"{viol['min']:.0f} – {viol['max']:.0f}",
                ratio,
            )
        )
    return out


if __name__ == "__main__":
    main("grid_shielding", run)
