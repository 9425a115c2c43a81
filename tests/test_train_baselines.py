"""`ambs-verify train --agent rainbow|iqn|dqn`: the model-free baselines through the real CLI and trainer on the
built-in grid (tiny replay, short warm-up and target period through config keys), exact resume, dopamine's Atari
preprocessing, and one-line errors for bad baseline options."""

from __future__ import annotations

import json
import pickle

import jax
import numpy as np
import pytest
from test_cli import run  # the same in-process CLI runner

from ambs_verify.checkpoints import Checkpointer
from ambs_verify.config import resolve
from ambs_verify.rollout import agents
from ambs_verify.rollout.agents import build_agent
from ambs_verify.runs import RunDir
from ambs_verify.trainers.loop import train

TINY = {
    "task": "grid_tiny",
    "envs.amount": 2,
    "run.progress": False,
    "run.log_every": 50,
    "run.save_every": 100,
    "baselines.min_replay_history": 40,
    "baselines.update_period": 2,
    "baselines.target_update_period": 20,
    "baselines.epsilon_decay_period": 100,
    "baselines.replay_capacity": 600,
    "baselines.batch_size": 8,
    "baselines.hidden": 32,
    "baselines.mlp_units": [32],
    "baselines.iqn.num_tau_samples": 8,
    "baselines.iqn.num_tau_prime_samples": 8,
    "baselines.iqn.num_quantile_samples": 4,
}


def _args(overrides: dict) -> list[str]:
    out = []
    for key, value in overrides.items():
        out += [f"--{key}", *(map(str, value) if isinstance(value, list) else [str(value)])]
    return out


def _records(logdir):
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("agent", "extra"),
    [
        ("rainbow", {}),
        ("iqn", {}),
        ("dqn", {"env.grid.observation": "image", "env.grid.image_size": 12}),  # Nature CNN on images
    ],
)
def test_cli_trains_logs_and_checkpoints(agent, extra, tmp_path, monkeypatch, capsys):
    logdir = tmp_path / agent
    args = [
        "train",
        "--configs",
        "grid",
        "--agent",
        agent,
        *_args({**TINY, **extra}),
        "--run.steps",
        "200",
        "--logdir",
        str(logdir),
    ]
    code, out, err = run(args, monkeypatch, capsys)
    assert code == 0, err
    assert f"{agent} on grid_tiny: finished at step 200" in out
    records = _records(logdir)
    episodes = [r for r in records if "episode/return" in r]
    assert episodes, "episodes finish within the budget (20-step cap)"
    assert {"episode/violations", "episode/violations/hazard", "episode/total_violations", "episode/cost"} <= set(
        episodes[-1]
    )
    totals = [r["episode/total_violations"] for r in episodes]
    # cumulative over all envs (episodes still running included), so at least the finished episodes' sum
    assert totals == sorted(totals) and totals[-1] >= sum(r["episode/violations"] for r in episodes) > 0
    logs = [r for r in records if "train/updates" in r]
    assert [r["step"] for r in logs] == [50, 100, 150, 200]
    assert {"policy/epsilon", "steps_per_second", "fps", "replay/size", "replay/transitions"} <= set(logs[-1])
    assert logs[-1]["train/updates"] > 0 and np.isfinite(logs[-1]["train/loss"])
    epsilons = [r["policy/epsilon"] for r in logs]
    if agent == "rainbow":
        assert epsilons == [0.0] * 4  # NoisyNet exploration (dopamine)
    else:
        # 1 for 40 transitions, then linear to 0.01 over 100 (counted in executed actions, ~48 by step 50)
        assert epsilons == sorted(epsilons, reverse=True) and 0.9 < epsilons[0] < 1.0
        assert epsilons[-1] == pytest.approx(0.01)
    run_dir = RunDir(logdir)
    assert run_dir.checkpoint_steps() == [100, 200] and run_dir.read_config()["agent"] == agent
    manifest = Checkpointer(run_dir.checkpoints_dir).verify(200)
    assert any(name.startswith("state/") for name in manifest["files"]) and "files/driver.pkl" in manifest["files"]
    if agent == "dqn":  # certify: the real episodes and the deployed agent's audit work; the model parts do not apply
        cert_args = ["certify", str(logdir), "--episodes", "3", "--spec", "H=5,p<=0.5", "--no-progress"]
        code, out, err = run(cert_args, monkeypatch, capsys)
        assert code == 0, err
        doc = json.loads((logdir / "certificates" / "200.json").read_text())
        assert doc["real"]["episodes"] == 3 and doc["real"]["upper"] is not None
        assert not doc["model"]["available"] and "no world model" in doc["model"]["reason"]
        assert not doc["audit"]["available"] and "no model-level estimate" in doc["audit"]["reason"]
        deployed = doc["deployed"]
        assert deployed["available"] and "evaluation policy" in deployed["policy"] and deployed["states"] > 0
        expected = (
            "fail"
            if deployed["summary"]["lower_max"] > 0.5
            else "pass"
            if deployed["summary"]["upper_max"] <= 0.5
            else "inconclusive"
        )
        assert doc["verdict"]["status"] == expected


def _metrics_without_time(logdir):
    drop = ("time", "fps", "steps_per_second", "updates_per_second")
    return [{k: v for k, v in r.items() if k not in drop} for r in RunDir(logdir).read_metrics()]


def test_resume_equals_uninterrupted_run(tmp_path):
    """Rainbow (prioritized replay): stop at 150, resume to 300 == 300 straight; checkpoints hold params, target,
    optimiser, replay with priorities, keys and counters."""
    config = resolve(overrides={**TINY, "agent": "rainbow", "run.steps": 300, "logdir": str(tmp_path / "straight")})
    agent = build_agent(config)  # one agent object: its compiled functions are shared by the three runs
    straight = train(config, agent)
    split = config.replace({"logdir": str(tmp_path / "split"), "run.steps": 150})
    first = train(split, agent)
    assert (first.step, first.resumed_from) == (150, None)
    second = train(split.replace({"run.steps": 300}), agent)
    assert (second.resumed_from, second.step) == (150, 300)
    assert (second.updates, second.episodes) == (straight.updates, straight.episodes) and straight.updates > 50
    assert _metrics_without_time(tmp_path / "straight") == _metrics_without_time(tmp_path / "split")
    a = Checkpointer(tmp_path / "straight" / "checkpoints").restore()
    b = Checkpointer(tmp_path / "split" / "checkpoints").restore()
    assert a.metadata == b.metadata and a.metadata["learner"]["replay"]["add_count"] > 0
    assert a.files.keys() == b.files.keys() == {"driver.pkl", "pending.pkl"}
    for name in a.files:  # env snapshots, episode accumulators, the transition awaiting its next observation
        np.testing.assert_equal(pickle.loads(a.files[name]), pickle.loads(b.files[name]))
    leaves_a, leaves_b = jax.tree.leaves(a.tree), jax.tree.leaves(b.tree)
    assert len(leaves_a) == len(leaves_b) > 10
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    priorities = np.asarray(a.tree["replay"]["tree"])
    assert len(np.unique(priorities[priorities > 0])) > 2  # priorities were learned, and restored exactly


def test_dopamine_atari_preprocessing(tmp_path):
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    overrides = {"agent": "iqn", "task": "atari_seaquest", "envs.amount": 1, "logdir": str(tmp_path / "a")}
    overrides["env.atari.labels"] = ["death", "early-surface", "out-of-oxygen"]
    config = agents.prepare_config(resolve(overrides=overrides))
    atari = config.env.atari
    assert (atari.size, atari.gray, atari.repeat, atari.sticky) == ((84, 84), True, 4, 0.25)
    assert (atari.noops, atari.actions, atari.lives, atari.max_steps) == (0, "minimal", "unused", 27_000)
    assert atari.labels == ("death", "early-surface", "out-of-oxygen") and atari.cost_val == 10.0
    (env,) = agents.make_envs(config)
    assert env.observation_space.shape == (84, 84, 4) and env.action_space.n == 18
    env.close()
    agent = build_agent(config)
    assert (agent.config.learning_rate, agent.config.adam_eps, agent.config.update_horizon) == (5e-5, 3.125e-4, 3)
    assert (agent.config.replay_capacity, agent.config.min_replay_history, agent.config.torso) == (
        1_000_000,
        20_000,
        "auto",
    )
    kept = resolve(overrides={**overrides, "baselines.atari_preprocessing": "config"})
    assert agents.prepare_config(kept) == kept and kept.env.atari.size == (64, 64)
    for agent in ("ambs", "dreamer", "lagrangian"):  # the loop and restore call it for every agent family
        dreamer = resolve(overrides={**overrides, "agent": agent})
        assert agents.prepare_config(dreamer) == dreamer and dreamer.env.atari.size == (64, 64)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--baselines.torso", "resnet"], "--baselines.torso must be one of auto, nature, mlp"),
        (["--baselines.update_period", "3"], "must be a multiple of --baselines.update_period (3)"),
        (["--baselines.gamma", "1.5"], "--baselines.gamma must be a finite number in [0, 1] (got 1.5)"),
        (["--baselines.rainbow.num_atoms", "1"], "num_atoms must be a finite number in [2, inf) (got 1)"),
        (["--baselines.replay_capacity", "4"], "--baselines.replay_capacity (4) must hold"),
        (["--baselines.batch_size", "many"], "--baselines.batch_size expects an integer"),
        (["--env.grid.observation", "both"], "one observation (vector or image)"),
    ],
)
def test_bad_baseline_option_is_one_line(extra, fragment, tmp_path, monkeypatch, capsys):
    logdir = tmp_path / "bad"
    code, _, err = run(
        ["train", "--configs", "grid", "--agent", "rainbow", "--logdir", str(logdir), *extra], monkeypatch, capsys
    )
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err
    assert not (logdir / "config.yaml").exists()  # nothing written for a bad config
