"""What the training benchmarks share (``grid_shielding``, ``paper``): train one run from named config blocks,
evaluate the deployed agent with the shared evaluator, read the run's figures from its ``metrics.jsonl``, and
compare agents over seeds.

Per run (:func:`summarise`, :func:`train_and_evaluate`):

* ``cumulative_violations``: violating steps of every episode that finished during the run (all envs, the random
  prefill included; the episodes still running at the last step are left out);
* ``violations_after_prefill``: the same over the episodes that ended after the random prefill (DreamerV3 agents:
  ``max(run.train_fill, B·T)`` steps; baselines: ``baselines.min_replay_history``), i.e. mostly what the agent's
  own policy did; agents trained with one seed share their prefill, so this is where they differ;
* ``violations_per_episode_last20`` and ``return_last20``: means over the episodes that ended in the last 20 % of
  the steps;
* ``override_rate_last20`` and ``p_hat_std_last20``: the shield's override rate over those episodes' steps and
  the spread of p̂ across states in the log records of that stretch (AMBS agents only);
* ``eval_return``, ``eval_goal_rate`` (episodes with a positive return) and ``eval_violations`` over fresh
  evaluation episodes (:func:`ambs_verify.rollout.acting.evaluate`, seeds from 10,000);
* ``train_s`` and ``wall_s`` (training plus evaluation).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import SelectionError

LAST = 0.2
EVAL_SEED = 10_000  # evaluation environments never share a seed with training ones


def summarise(metrics: list[dict], steps: int, prefill: int = 0) -> dict:
    """The training figures of one run from its metric records (module docstring); ``prefill``: the random
    prefill's length in agent steps."""
    episodes = [r for r in metrics if "episode/return" in r]
    late = [r for r in episodes if r["step"] > (1 - LAST) * steps]
    overrides = [r["episode/override_rate"] for r in late if r.get("episode/override_rate") is not None]
    spread = [r["policy/p_hat_std"] for r in metrics if r["step"] > (1 - LAST) * steps and "policy/p_hat_std" in r]
    return {
        "episodes": len(episodes),
        "cumulative_violations": int(sum(r["episode/violations"] for r in episodes)),
        "violations_after_prefill": int(sum(r["episode/violations"] for r in episodes if r["step"] > prefill)),
        "violations_per_episode_last20": statistics.fmean(r["episode/violations"] for r in late) if late else None,
        "return_last20": statistics.fmean(r["episode/return"] for r in late) if late else None,
        "override_rate_last20": statistics.fmean(overrides) if overrides else None,
        "p_hat_std_last20": statistics.fmean(spread) if spread else None,
    }


def train_and_evaluate(blocks: list[str], overrides: dict, episodes: int) -> dict:
    """Train ``--configs BLOCKS`` with ``overrides`` (a ``logdir`` among them) from scratch, then evaluate the
    deployed agent on ``episodes`` fresh episodes of the environment it trained on; the run's figures."""
    from ambs_verify.agents.interface import bind
    from ambs_verify.config import env_options, resolve
    from ambs_verify.envs.registry import make_env
    from ambs_verify.rollout.acting import evaluate
    from ambs_verify.rollout.agents import BASELINE_AGENTS, build_agent
    from ambs_verify.runs import RunDir
    from ambs_verify.trainers.loop import train

    config = resolve(blocks, {"run.progress": False, **overrides})
    start = time.perf_counter()
    agent = build_agent(config)
    result = train(config, agent)
    train_s = time.perf_counter() - start
    options = env_options(config)  # the environment the agent trained on, not the task's default
    ev = evaluate(bind(agent, result.state), lambda: make_env(config.task, **options), episodes, seed=EVAL_SEED)
    if config.agent in BASELINE_AGENTS:  # uniform random actions until the replay holds this many transitions
        prefill = config.baselines.min_replay_history
    else:
        prefill = max(config.run.train_fill, config.replay.batch_size * config.replay.batch_length)
    out = summarise(RunDir(config.logdir).read_metrics(), config.run.steps, prefill)
    out.update(
        agent=config.agent,
        task=config.task,
        seed=config.seed,
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


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation, min and max over seeds."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


FIGURES = (
    "cumulative_violations",
    "violations_after_prefill",
    "violations_per_episode_last20",
    "eval_return",
    "eval_goal_rate",
    "override_rate_last20",
    "p_hat_std_last20",
    "wall_s",
)


def per_label(runs: list[dict], labels) -> dict:
    """``{label: {figure: spread over seeds}}`` for the labels that have runs."""
    table = {}
    for label in labels:
        mine = [r for r in runs if r["label"] == label]
        if mine:
            table[label] = {
                key: spread([r[key] for r in mine if r.get(key) is not None])
                for key in FIGURES
                if any(r.get(key) is not None for r in mine)
            }
    return table


def selected(name: str, default: tuple) -> tuple:
    """The comma-separated environment variable ``name`` (ints where ``default`` holds ints), else ``default``."""
    text = os.environ.get(name, "")
    if not text:
        return default
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    return tuple(int(t) for t in items) if default and isinstance(default[0], int) else items


def earlier_runs(name: str) -> list[dict]:
    """The runs of the results file ``$<NAME>_RESUME`` (a benchmark's JSON or its ``-partial.json``), to be
    reused instead of trained again; none when it is not set. Each reused run is marked with ``reused_from``."""
    path = os.environ.get(f"{name.upper()}_RESUME")
    if not path:
        return []
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        runs = doc["result"]["runs"] if "result" in doc else doc["runs"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SelectionError(
            f"{name.upper()}_RESUME={path}: not a {name} results file with runs ({error.__class__.__name__})"
        ) from None
    return [{**r, "reused_from": r.get("reused_from", str(path))} for r in runs]


def sweep(name: str, seeds, labels, one, partial: bool = True) -> list[dict]:
    """``one(label, seed, root)`` for every seed and label, seeds outermost, in the run directory root
    ``$<NAME>_RUNS`` (default a temporary one). A (label, seed) already in ``$<NAME>_RESUME``
    (:func:`earlier_runs`) is taken from there instead. With ``partial`` the runs so far are rewritten to
    ``benchmarks/results/<name>-partial.json`` after each, so an interrupted benchmark keeps what it measured and
    can be resumed from that file."""
    from benchmarks.common import RESULTS_DIR

    path = RESULTS_DIR / f"{name}-partial.json"
    earlier = {(r["label"], r["seed"]): r for r in earlier_runs(name)}
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(os.environ.get(f"{name.upper()}_RUNS") or tmp)
        for seed in seeds:
            for label in labels:
                found = earlier.get((label, seed))
                runs.append(found if found else {"label": label, **one(label, seed, root)})
                if partial:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    return runs
