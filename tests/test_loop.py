"""End-to-end tests of the training loop with a tiny stand-in agent (a test fixture, not product code)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ambs_verify.checkpoints import Checkpointer
from ambs_verify.config import resolve
from ambs_verify.runs import RunDir, RunMismatchError
from ambs_verify.trainers import loop


class TabularAgent:
    """Q-learning on one-hot grid observations, trained on replay sequences; epsilon-greedy with a p̂-like extra.

    It implements the agent interface (``ambs_verify.agents.interface``); its state is one pytree (table, an
    Adam-like moment, an update counter) so checkpoints cover it all.
    """

    modes = ("explore", "deployed")

    def __init__(self, lr: float = 0.5, eps: float = 0.3):
        self.lr, self.eps = lr, eps
        self.policy_calls = 0

    def init(self, rng, obs_space, act_space):
        size = obs_space["vector"].shape[0]
        q = 0.01 * jax.random.normal(rng, (size, act_space.n))
        self._update = jax.jit(self._update_fn)
        return {"q": q, "moment": jnp.zeros_like(q), "count": jnp.zeros((), jnp.int32)}

    def policy(self, state, carry, obs, rng, mode="deployed"):
        assert mode == "explore"  # the loop acts in the learning mode
        self.policy_calls += 1
        k1, k2 = jax.random.split(rng)
        values = obs["vector"] @ np.asarray(state["q"])
        greedy = values.argmax(-1)
        n = values.shape[0]
        explore = np.asarray(jax.random.uniform(k1, (n,))) < self.eps
        random = np.asarray(jax.random.randint(k2, (n,), 0, values.shape[1]))
        actions = np.where(explore, random, greedy)
        prob = np.abs(np.tanh(values.max(-1)))  # stands in for the shield's p̂ of this very step
        carry = (0 if carry is None else carry) + 1
        return actions, carry, {"prob": prob, "override": explore}

    @staticmethod
    def _update_fn(state, batch, rng):
        obs, act = batch["vector"], batch["action"]
        q = state["q"]
        value = jnp.einsum("bts,sa,bta->bt", obs, q, act)
        nxt = jnp.einsum("bts,sa->bta", obs[:, 1:], q).max(-1)
        cont = 1.0 - batch["is_terminal"][:, 1:].astype(jnp.float32)
        target = batch["reward"][:, 1:] - batch["cost"][:, 1:] + 0.9 * cont * nxt
        valid = 1.0 - batch["is_last"][:, :-1].astype(jnp.float32)
        td = (target - value[:, :-1]) * valid
        grad = -jnp.einsum("bt,bts,bta->sa", td, obs[:, :-1], act[:, :-1]) / td.size
        noise = 1e-3 * jax.random.normal(rng, q.shape)
        moment = 0.9 * state["moment"] + 0.1 * grad
        new = {"q": q - 0.5 * moment + noise, "moment": moment, "count": state["count"] + 1}
        return new, {"td_abs": jnp.abs(td).mean(), "q_mean": q.mean()}

    def train(self, state, batch, rng):
        return self._update(state, batch, rng)


def _config(tmp_path, name="run", **overrides):
    base = {
        "logdir": str(tmp_path / name),
        "task": "grid_tiny",
        "envs.amount": 3,
        "run.steps": 600,
        "run.train_ratio": 8,
        "run.train_fill": 60,
        "run.log_every": 60,
        "run.save_every": 150,
        "run.keep_checkpoints": 3,
        "run.progress": False,
        "replay.size": 3000,
        "replay.batch_size": 4,
        "replay.batch_length": 8,
        "replay.chunk": 32,
    }
    base.update(overrides)
    return resolve(["debug"], base)


def _metrics_without_time(run: RunDir):
    out = []
    for record in run.read_metrics():
        timing = ("time", "fps", "steps_per_second", "updates_per_second")
        out.append({k: v for k, v in record.items() if k not in timing})
    return out


def _final_state(run: RunDir, state_template):
    ck = Checkpointer(run.checkpoints_dir).restore(target={"agent": state_template, "key": jax.random.PRNGKey(0)})
    return ck


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loop")
    agent = TabularAgent()
    result = loop.train(_config(tmp, "straight"), agent)
    return tmp, agent, result


def test_fresh_run_writes_run_directory(uninterrupted):
    tmp, _, result = uninterrupted
    run = RunDir(tmp / "straight")
    assert result.step == 600 and result.resumed_from is None and not result.interrupted
    # updates = floor((600 - train_start) * 8 / 32); the prefill ends at step 60 (3 envs x 20 rows)
    assert result.updates == (600 - 60) * 8 // 32
    assert run.checkpoint_steps() == [300, 450, 600]  # every 150 steps, the newest 3 kept
    assert (run.replay_dir).is_dir() and any(run.replay_dir.glob("*.npz"))
    records = run.read_metrics()
    episodes = [r for r in records if "episode/return" in r]
    assert len(episodes) == result.episodes > 0
    assert {
        "episode/violations/hazard",
        "episode/total_violations",
        "episode/prob_mean",
        "episode/override_rate",
    } <= set(episodes[-1])
    totals = [r["episode/total_violations"] for r in episodes]
    assert totals == sorted(totals)
    logs = [r for r in records if "train/td_abs" in r]
    assert logs and "policy/prob_mean" in logs[-1] and "replay/size" in logs[-1]
    steps = [r["step"] for r in records if "train/updates" in r]
    assert steps == sorted(set(steps))
    assert list(tmp.joinpath("straight").glob("events.out.tfevents.*"))
    assert int(np.asarray(result.state["count"])) == result.updates


def test_resume_equals_uninterrupted_run(uninterrupted, tmp_path):
    tmp, _, straight = uninterrupted
    first = loop.train(_config(tmp_path, "split", **{"run.steps": 300}), TabularAgent())
    assert first.step == 300
    second = loop.train(_config(tmp_path, "split"), TabularAgent())
    assert second.resumed_from == 300 and second.step == 600
    assert second.updates == straight.updates and second.episodes == straight.episodes
    for name in ("q", "moment", "count"):
        np.testing.assert_array_equal(np.asarray(second.state[name]), np.asarray(straight.state[name]))
    a, b = RunDir(tmp / "straight"), RunDir(tmp_path / "split")
    assert _metrics_without_time(a) == _metrics_without_time(b)
    ck_a, ck_b = _final_state(a, straight.state), _final_state(b, second.state)
    assert ck_a.metadata["sampler"] == ck_b.metadata["sampler"]
    np.testing.assert_array_equal(np.asarray(ck_a.tree["key"]), np.asarray(ck_b.tree["key"]))


def test_corrupted_latest_checkpoint_falls_back_to_the_previous_one(uninterrupted, tmp_path):
    tmp, _, straight = uninterrupted
    loop.train(_config(tmp_path, "corrupt", **{"run.steps": 300}), TabularAgent())
    run = RunDir(tmp_path / "corrupt")
    assert run.checkpoint_steps() == [150, 300]
    victim = max(
        (p for p in (run.checkpoints_dir / "300" / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    agent = TabularAgent()
    with pytest.warns(RuntimeWarning, match=r"checkpoint 300 is unusable .*falling back to step 150"):
        result = loop.train(_config(tmp_path, "corrupt"), agent)
    assert result.resumed_from == 150 and result.step == 600
    # Resuming from the older checkpoint (its replay head, sampler and key) reproduces the uninterrupted run.
    assert result.updates == straight.updates and result.episodes == straight.episodes
    np.testing.assert_array_equal(np.asarray(result.state["q"]), np.asarray(straight.state["q"]))
    assert _metrics_without_time(run) == _metrics_without_time(RunDir(tmp / "straight"))
    Checkpointer(run.checkpoints_dir).verify(300)  # re-written when training passed step 300 again


def test_resume_after_crash_drops_metrics_after_checkpoint(tmp_path):
    config = _config(tmp_path, "crash", **{"run.steps": 300})
    loop.train(config, TabularAgent())
    run = RunDir(config.logdir)
    with open(run.metrics_path, "a", encoding="utf-8") as f:  # written after the checkpoint, then a crash
        f.write(json.dumps({"step": 333, "time": 0.0, "episode/return": 1.0}) + "\n")
    result = loop.train(_config(tmp_path, "crash", **{"run.steps": 330}), TabularAgent())
    assert result.resumed_from == 300
    steps = [r["step"] for r in run.read_metrics()]
    assert 333 not in steps and max(steps) == 330


def test_resume_refuses_changed_config(tmp_path):
    loop.train(_config(tmp_path, "guard", **{"run.steps": 60}), TabularAgent())
    with pytest.raises(RunMismatchError, match="seed"):
        loop.train(_config(tmp_path, "guard", seed=1, **{"run.steps": 120}), TabularAgent())
    result = loop.train(_config(tmp_path, "guard", seed=1, **{"run.steps": 120}), TabularAgent(), force=True)
    assert result.resumed_from == 60
    assert (tmp_path / "guard" / "config.previous.yaml").is_file()


def test_ctrl_c_saves_and_returns(tmp_path, monkeypatch):
    agent = TabularAgent()
    original = agent.policy

    def interrupting(state, carry, obs, rng, mode):
        if agent.policy_calls == 5:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGINT)
        return original(state, carry, obs, rng, mode)

    agent.policy = interrupting
    config = _config(tmp_path, "ctrlc", **{"run.train_fill": 30})
    result = loop.train(config, agent)
    assert result.interrupted and result.step < 600
    assert RunDir(config.logdir).latest_checkpoint() == result.step


def test_compilation_cache_defaults_to_the_user_cache_unless_jax_is_told(monkeypatch, tmp_path):
    from ambs_verify.rollout.runtime import compilation_cache_dir

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache_dir() == tmp_path / "ambs-verify" / "jax"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "")  # the user's choice, here "off", is left to JAX
    assert compilation_cache_dir() is None
