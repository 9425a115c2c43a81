"""Data-parallel learner (``jax.devices``): on two CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=2``,
in a child process, since the device count is fixed once JAX starts) one update gives the single-device parameters
within float tolerance, the batch and the shield's traces are split over the devices, and the shield decides as on
one device; a real training run splits over two devices (the config key alone), checkpoints and resumes on one; bad
values are one line."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

TWO_HOST_DEVICES = "--xla_force_host_platform_device_count=2"
ENVS, SAMPLES, DETER, COST = (
    2,
    64,
    32,
    1e-3,
)  # the shield's rows: ENVS * SAMPLES traces of a DETER-wide deterministic state


def _child() -> dict:
    """Runs in the child with two host devices: one update and one shield decision on one device and on two."""
    import jax

    from ambs_verify.agents import Agent
    from ambs_verify.agents.sharding import DataParallel
    from ambs_verify.agents.shield import shield_decision
    from ambs_verify.config import resolve
    from ambs_verify.rollout.agents import agent_config, shield_config

    config = resolve(["quickstart", "debug"], {"shield.samples": SAMPLES, "shield.event": "within"})
    agent = Agent(agent_config(config), {"vec": (6,)}, 3, True)
    assert agent.config.world_model.rssm.deter == DETER
    parallel = DataParallel.over(jax.devices())
    host = jax.device_get(agent.init(jax.random.PRNGKey(0)))
    batch = jax.device_get(agent.dummy_batch(4, 8))
    key = jax.random.PRNGKey(1)

    one, _ = agent.jit_train_step(donate=False)(jax.device_put(host, jax.devices()[0]), batch, key)
    with parallel.active():
        compiled = agent.jit_train_step(donate=False, parallel=parallel).lower(host, batch, key).compile()
        two, _ = compiled(parallel.replicate(host), batch, key)
    batch_shardings = jax.tree.leaves(compiled.input_shardings[0][1])
    diffs = [
        float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) / (1e-3 + np.abs(np.asarray(a)))))
        for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two), strict=True)
        if np.issubdtype(np.asarray(a).dtype, np.floating)
    ]

    # The cost head starts at exactly 0: noise on its weights makes some traces cross C / 2 (about 25 of 64 at C 1)
    shield = dataclasses.replace(shield_config(config), cost_val=COST)
    state = agent.init(jax.random.PRNGKey(2))
    leaves, tree = jax.tree.flatten(state["wm"]["params"]["cost"])
    noise = [
        0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, jax.random.split(key, len(leaves)), strict=True)
    ]
    state["wm"]["params"]["cost"] = jax.tree.unflatten(tree, [x + e for x, e in zip(leaves, noise, strict=True)])
    posterior = agent.wm.initial_state(state["wm"]["params"], ENVS)

    def decide(state, posterior, key):
        return shield_decision(shield, agent.wm, agent.task, state["wm"]["params"], state["task"], posterior, key)

    single_fn = jax.jit(decide).lower(state, posterior, key).compile()
    single = single_fn(state, posterior, key)
    state2 = parallel.replicate(jax.device_get(state))
    with parallel.active():
        split_fn = jax.jit(decide).lower(state2, posterior, key).compile()
        split = split_fn(state2, posterior, key)
    split_hlo, single_hlo = split_fn.as_text(), single_fn.as_text()
    return {
        "devices": len(jax.devices()),
        "max_relative_diff": max(diffs),
        "leaves": len(diffs),
        "state_devices": sorted({len(x.sharding.device_set) for x in jax.tree.leaves(two)}),
        "state_replicated": all(x.sharding.is_fully_replicated for x in jax.tree.leaves(two)),
        "batch_split": [s.spec[0] for s in batch_shardings],
        "moved": float(
            max(
                np.max(np.abs(a - b))
                for a, b in zip(
                    jax.tree.leaves(host["wm"]["params"]), jax.tree.leaves(one["wm"]["params"]), strict=True
                )
            )
        ),
        "violations": [np.asarray(single["violations"]).tolist(), np.asarray(split["violations"]).tolist()],
        "override": [np.asarray(single["override"]).tolist(), np.asarray(split["override"]).tolist()],
        "rows": ENVS * SAMPLES,
        "half_rows_split": f"[{ENVS * SAMPLES // 2},{DETER}]" in split_hlo,
        "half_rows_single": f"[{ENVS * SAMPLES // 2},{DETER}]" in single_hlo,
        "full_rows_single": f"[{ENVS * SAMPLES},{DETER}]" in single_hlo,
    }


@pytest.fixture(scope="module")
def two_devices():
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {TWO_HOST_DEVICES}".strip()}
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_update_on_two_devices_gives_the_single_device_parameters(two_devices):
    assert two_devices["devices"] == 2
    assert two_devices["moved"] > 1e-4  # the update did change the parameters
    assert two_devices["leaves"] > 100  # every float leaf: params, optimiser moments, slow critics, retnorm
    # f32 summation order differs (each device sums its half of the batch): agreement to a few ulps of 1e-3
    assert two_devices["max_relative_diff"] < 1e-4, two_devices["max_relative_diff"]
    assert two_devices["state_devices"] == [2] and two_devices["state_replicated"]
    assert two_devices["batch_split"] and set(two_devices["batch_split"]) == {"data"}


def test_the_shields_traces_are_split_and_decide_as_on_one_device(two_devices):
    single, split = two_devices["violations"]
    assert all(0 < k < SAMPLES for k in single), single  # neither all safe nor all violating: a real comparison
    assert split == single  # the same random stream, per trace: the counts agree exactly
    assert two_devices["override"][0] == two_devices["override"][1]
    # the compiled program holds each device's half of the ENVS * SAMPLES trace rows, the single-device one all
    assert two_devices["half_rows_split"] and two_devices["full_rows_single"]
    assert not two_devices["half_rows_single"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--jax.devices", "2", "--agent", "rainbow"], "the model-free baseline 'rainbow' trains on one device"),
        (["--jax.devices", "3"], "replay.batch_size 8 does not split evenly over 3 devices"),
        # this process started JAX with one CPU device: two cannot be had any more
        (["--jax.devices", "2"], "JAX has 1 cpu device(s) in this process"),
    ],
)
def test_devices_that_cannot_be_had_are_one_line(extra, fragment, tmp_path, monkeypatch, capsys):
    import jax
    from test_cli import run

    assert len(jax.devices()) == 1  # JAX runs here with one device from now on (the third case needs it)
    logdir = tmp_path / "x"
    args = ["train", "--configs", "quickstart", "debug", "--logdir", str(logdir), "--run.steps", "1", *extra]
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err
    assert not logdir.exists()


def _train(args: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the config key alone splits the host
    return subprocess.run(
        [sys.executable, "-m", "ambs_verify", "train", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.end_to_end
def test_a_run_trains_on_two_devices_and_resumes_on_one(tmp_path):
    from test_train_cli import FAST

    from ambs_verify import checkpoints

    logdir = tmp_path / "run"
    args = ["--configs", "quickstart", "debug", *FAST, "--logdir", str(logdir), "--run.progress", "False"]
    done = _train([*args, "--jax.devices", "2", "--run.steps", "160"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "split over 2 cpu devices" in done.stdout and "finished at step 160" in done.stdout
    records = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert any(k.startswith("train/wm/") for r in records for k in r), "updates ran on the two devices"
    assert any("policy/p_hat_mean" in r for r in records), "the shield acted on the two devices"
    tree = checkpoints.load(logdir / "checkpoints" / "160").tree
    assert checkpoints.first_non_finite(tree) is None

    done = _train([*args, "--jax.devices", "1", "--run.steps", "240"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from step 160" in done.stdout and "finished at step 240" in done.stdout


if __name__ == "__main__":
    print(json.dumps(_child()))
