"""The AMBS papers' experiments over seeds, one named config block each (``configs.yaml``: ``paper_*``). GPU work.

Experiments (``EXPERIMENTS``):

* ``seaquest`` (the Atari paper, spec §11.4): AMBS, unshielded DreamerV3 and dopamine's Rainbow on Seaquest with
  the labels death, early-surface and out-of-oxygen, 10M agent steps (40M frames) each;
* ``pointgoal1`` (the Safety Gym paper, spec §6.4): AMBS with PENL, PLPG or COPT and Lagrangian DreamerV3 on
  vision PointGoal1, 500k agent steps (1M env steps) each.

Every (block, seed) trains from scratch under ``$PAPER_RUNS/<block>-<seed>`` (default a temporary directory) and
is evaluated on 10 fresh episodes, as the papers evaluate; the per-run figures are those of
:mod:`benchmarks.training`. Per block: means and spreads over seeds; per experiment: each agent's cumulative
training violations relative to its DreamerV3 reference (unshielded DreamerV3 on Seaquest, Lagrangian DreamerV3
on PointGoal1) with a percentile-bootstrap 95 % CI over seeds. Results are written after every run (``partial``);
``PAPER_RESUME=FILE`` reuses the runs of an earlier result or partial file (days of GPU time are not redone).

``python -m benchmarks.paper`` runs both experiments on 5 seeds at the papers' budgets (days on one GPU);
``PAPER_EXPERIMENTS``, ``PAPER_BLOCKS``, ``PAPER_SEEDS`` (comma-separated) and ``PAPER_STEPS`` (agent steps per
run) select a subset or a shorter budget, and ``PAPER_CONFIGS`` adds blocks after each one (``debug`` for a CPU
try). ``--quick`` is one seed of each Seaquest block at the ``debug`` size for 500 steps: a smoke run, not a result.
"""

from __future__ import annotations

import os

from benchmarks.common import SelectionError, main, row
from benchmarks.training import per_label, ratio_ci, selected, sweep, train_and_evaluate

EXPERIMENTS: dict[str, dict] = {
    "seaquest": {
        "blocks": ("paper_seaquest_ambs", "paper_seaquest_dreamer", "paper_seaquest_rainbow"),
        "reference": "paper_seaquest_dreamer",
    },
    "pointgoal1": {
        "blocks": (
            "paper_pointgoal1_penl",
            "paper_pointgoal1_plpg",
            "paper_pointgoal1_copt",
            "paper_pointgoal1_lagrangian",
        ),
        "reference": "paper_pointgoal1_lagrangian",
    },
}
SEEDS = (0, 1, 2, 3, 4)
EVAL_EPISODES = 10  # the papers' eval_eps


def summary(runs: list[dict], experiments: list[str]) -> dict:
    """Per block means and spreads; per experiment each block's violations relative to the reference's."""
    blocks = [b for name in experiments for b in EXPERIMENTS[name]["blocks"]]
    out: dict = {"blocks": per_label(runs, blocks), "violation_ratios": {}}
    for name in experiments:
        reference = EXPERIMENTS[name]["reference"]
        ref = [r["cumulative_violations"] for r in runs if r["label"] == reference]
        for block in EXPERIMENTS[name]["blocks"]:
            mine = [r["cumulative_violations"] for r in runs if r["label"] == block]
            if block != reference and mine and ref:
                out["violation_ratios"][f"{block} / {reference}"] = ratio_ci(mine, ref)
    return out


def run(quick: bool) -> dict:
    experiments = ["seaquest"] if quick else list(selected("PAPER_EXPERIMENTS", tuple(EXPERIMENTS)))
    unknown = [e for e in experiments if e not in EXPERIMENTS]
    if unknown:
        raise SelectionError(f"unknown experiments {unknown}; accepted: {', '.join(EXPERIMENTS)}")
    known = [b for name in experiments for b in EXPERIMENTS[name]["blocks"]]
    blocks = list(selected("PAPER_BLOCKS", tuple(known)))
    unknown = [b for b in blocks if b not in known]
    if unknown:
        raise SelectionError(f"unknown PAPER_BLOCKS {unknown}; accepted: {', '.join(known)}")
    seeds = (0,) if quick else selected("PAPER_SEEDS", SEEDS)
    extra = ["debug"] if quick else list(selected("PAPER_CONFIGS", ()))
    steps = 500 if quick else int(float(os.environ["PAPER_STEPS"])) if os.environ.get("PAPER_STEPS") else None

    def one(block: str, seed: int, root) -> dict:
        overrides = {"seed": seed, "logdir": str(root / f"{block}-{seed}")}
        if steps:
            overrides["run.steps"] = steps
        return train_and_evaluate([block, *extra], overrides, 2 if quick else EVAL_EPISODES)

    runs = sweep("paper", seeds, blocks, one, not quick)
    found = summary(runs, experiments)
    return {"experiments": experiments, "seeds": list(seeds), "configs": extra, "runs": runs, **found}


def headline(result: dict) -> list[dict]:
    """Suite table rows: per block cumulative violations and final return over the seeds."""
    out = []
    for block, t in result["blocks"].items():
        viol = t["cumulative_violations"]
        ratios = result["violation_ratios"]
        ratio = next((f"×{v['ratio']:.2f}" for k, v in ratios.items() if k.startswith(f"{block} / ")), "—")
        out.append(
            row(
                f"{block}, {len(result['seeds'])} seed(s)",
                f"cumulative violations (final return {t['eval_return']['mean']:.3g})",
                f"{viol['mean']:.0f} ± {viol['std']:.0f}",
                f"{viol['min']:.0f} – {viol['max']:.0f}",
                ratio,
            )
        )
    return out


if __name__ == "__main__":
    main("paper", run)
