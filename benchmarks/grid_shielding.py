"""The AMBS paper's comparison on the built-in ``grid``, at the quickstart budget, over several seeds.

Agents (``AGENTS``: config blocks on top of ``quickstart``): AMBS, unshielded DreamerV3, Lagrangian DreamerV3 and
AMBS with PENL, PLPG or COPT. Every run trains from scratch in its own directory under ``--runs`` (default a
temporary one) and is then evaluated with the shared evaluator (:func:`ambs_verify.trainers.evaluate.evaluate`,
the deployed agent, 32 episodes on fresh seeds). Per run, from its ``metrics.jsonl``:

* ``cumulative_violations``: violating steps of every episode that finished during the run (all envs, the random
  prefill included; the episodes still running at the last step are left out);
* ``violations_per_episode_last20``: mean violations of the episodes that ended in the last 20 % of the steps;
* ``override_rate_last20`` and ``p_hat_std_last20``: the shield's override rate over those episodes' steps and
  the spread of p̂ across states in the log records of that stretch (AMBS agents only);
* ``eval_return``, ``eval_goal_rate`` (episodes that reached the goal) and ``eval_violations``;
* ``wall_s``: training plus evaluation.

Summary: per agent the mean and spread over seeds; the ratio of AMBS's to DreamerV3's mean cumulative violations
with a percentile-bootstrap 95 % CI over seeds (``scipy.stats.bootstrap``, the two agents resampled
independently, 10,000 resamples, fixed seed); and the issue's three goals with the measured value and whether
it is met. Results are also written after every run (``partial``), so an interrupted benchmark keeps what it
measured.

``python -m benchmarks.grid_shielding [--quick]`` (quick: AMBS and DreamerV3, one seed, 1,500 steps: a smoke
run, not a result). ``GRID_SHIELDING_SEEDS`` / ``GRID_SHIELDING_AGENTS`` (comma-separated) select a subset.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS_DIR, main, row

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
EVAL_SEED = 10_000  # evaluation environments never share a seed with training ones
LAST = 0.2


def summarise(metrics: list[dict], steps: int) -> dict:
    """The training figures of one run from its metric records (module docstring)."""
    episodes = [r for r in metrics if "episode/return" in r]
    late = [r for r in episodes if r["step"] > (1 - LAST) * steps]
    overrides = [r["episode/override_rate"] for r in late if r.get("episode/override_rate") is not None]
    spread = [r["policy/p_hat_std"] for r in metrics if r["step"] > (1 - LAST) * steps and "policy/p_hat_std" in r]
    return {
        "episodes": len(episodes),
        "cumulative_violations": int(sum(r["episode/violations"] for r in episodes)),
        "violations_per_episode_last20": statistics.fmean(r["episode/violations"] for r in late) if late else None,
        "return_last20": statistics.fmean(r["episode/return"] for r in late) if late else None,
        "override_rate_last20": statistics.fmean(overrides) if overrides else None,
        "p_hat_std_last20": statistics.fmean(spread) if spread else None,
    }


def train_one(label: str, seed: int, steps: int | None, root: Path) -> dict:
    """Train and evaluate one agent on one seed; the run directory is ``root/<label>-<seed>``."""
    from ambs_verify.config import env_options, resolve
    from ambs_verify.envs.registry import make_env
    from ambs_verify.runs import RunDir
    from ambs_verify.trainers.evaluate import evaluate
    from ambs_verify.trainers.factory import build_agent
    from ambs_verify.trainers.loop import train

    agent_name, blocks = AGENTS[label]
    overrides = {"agent": agent_name, "seed": seed, "logdir": str(root / f"{label}-{seed}"), "run.progress": False}
    if steps:
        overrides["run.steps"] = steps
    config = resolve(["quickstart", *blocks], overrides)
    start = time.perf_counter()
    agent = build_agent(config)
    train(config, agent)
    train_s = time.perf_counter() - start
    options = env_options(config)  # the layout the agent trained on, not the task's default
    ev = evaluate(agent, lambda: make_env(config.task, **options), EVAL_EPISODES, seed=EVAL_SEED)
    out = summarise(RunDir(config.logdir).read_metrics(), config.run.steps)
    out.update(
        label=label,
        seed=seed,
        steps=config.run.steps,
        eval_return=float(ev.returns.mean()),
        eval_goal_rate=float((ev.returns > 0).mean()),
        eval_violations=float(ev.violations.mean()),
        eval_override_rate=None if ev.override_rate is None else float(ev.override_rate.mean()),
        train_s=train_s,
        wall_s=time.perf_counter() - start,
    )
    return out


def ratio_ci(a: list[float], b: list[float], seed: int = 0) -> dict:
    """mean(a) / mean(b) with a percentile-bootstrap 95 % CI (a and b resampled independently)."""
    from scipy import stats

    def ratio(x, y, axis=-1):
        return np.mean(x, axis=axis) / np.maximum(np.mean(y, axis=axis), 1e-12)

    value = float(ratio(np.asarray(a), np.asarray(b)))
    if len(a) < 2 or len(b) < 2:
        return {"ratio": value, "ci95": None, "method": "too few seeds for a bootstrap"}
    res = stats.bootstrap(
        (np.asarray(a, float), np.asarray(b, float)),
        ratio,
        n_resamples=10_000,
        method="percentile",
        vectorized=True,
        random_state=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return {"ratio": value, "ci95": [float(ci.low), float(ci.high)], "method": "percentile bootstrap, 10,000"}


def _spread(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def summary(runs: list[dict]) -> dict:
    """Per-agent means and spreads, the AMBS/DreamerV3 violation ratio and the goals."""
    table = {}
    for label in AGENTS:
        mine = [r for r in runs if r["label"] == label]
        if not mine:
            continue
        table[label] = {
            key: _spread([r[key] for r in mine if r[key] is not None])
            for key in (
                "cumulative_violations",
                "violations_per_episode_last20",
                "eval_return",
                "eval_goal_rate",
                "override_rate_last20",
                "p_hat_std_last20",
                "wall_s",
            )
            if any(r[key] is not None for r in mine)
        }
    out: dict = {"agents": table}
    ambs = [r for r in runs if r["label"] == "ambs"]
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


def _selected(name: str, default: tuple) -> tuple:
    text = os.environ.get(name, "")
    if not text:
        return default
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    return tuple(int(t) for t in items) if default and isinstance(default[0], int) else items


def run(quick: bool) -> dict:
    labels = ("ambs", "dreamer") if quick else _selected("GRID_SHIELDING_AGENTS", tuple(AGENTS))
    unknown = [label for label in labels if label not in AGENTS]
    if unknown:
        raise ValueError(f"unknown agents {unknown}; accepted: {', '.join(AGENTS)}")
    seeds = (0,) if quick else _selected("GRID_SHIELDING_SEEDS", SEEDS)
    steps = 1500 if quick else None  # None: the quickstart's own budget
    root_env = os.environ.get("GRID_SHIELDING_RUNS")
    partial = RESULTS_DIR / "grid_shielding-partial.json"
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(root_env) if root_env else Path(tmp)
        for seed in seeds:
            for label in labels:
                runs.append(train_one(label, seed, steps, root))
                if not quick:
                    partial.parent.mkdir(parents=True, exist_ok=True)
                    partial.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    return {"seeds": list(seeds), "agents": list(labels), "runs": runs, **summary(runs)}


def headline(result: dict) -> list[dict]:
    """Suite table rows: per agent cumulative violations and final return over the seeds; the ratio on AMBS."""
    out = []
    steps = result["runs"][0]["steps"] if result["runs"] else 0
    ci = result.get("violations_ratio_ambs_over_dreamer")
    for label, t in result["agents"].items():
        viol = t["cumulative_violations"]
        ratio = "—"
        if label == "ambs" and ci:
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
