"""The papers' experiment blocks (``configs.yaml``: ``paper_*``) train on real data on a CPU.

Each block is the configuration a GPU run of ``python -m benchmarks.paper`` uses: real Seaquest frames from the
ROM, real MuJoCo PointGoal1 camera images. Here the ``debug`` block shrinks the model and the run is a few hundred
agent steps, so what is checked is that the block's pipeline learns from that data at all: the world model's
total loss over the last third of the logged updates is below its value over the first third, by a margin. The
Rainbow block has no world model, and its C51 cross-entropy is bounded below by the entropy of a target that moves
with the data, so it need not fall in a few hundred steps; there the run must make finite updates on real frames.
Marked ``learning`` (``make test-learning``): the seven runs took 17 minutes
with the test suite running beside them.
"""

from __future__ import annotations

import json
import math
import statistics

import pytest

from ambs_verify.config import block_names, resolve
from ambs_verify.rollout.agents import build_agent
from ambs_verify.trainers.loop import train

PAPER_BLOCKS = sorted(name for name in block_names() if name.startswith("paper_"))
SHRINK = {  # on top of `debug`: a few hundred steps, logged often, training from the first full batch
    "run.steps": 240,
    "run.train_ratio": 192,
    "run.train_fill": 0,
    "run.log_every": 12,
    "run.save_every": 100_000,
    "run.progress": False,
    "replay.size": 10_000,
    "envs.amount": 2,
    "env.atari.max_steps": 2_000,
    "env.safetygym.image_size": 32,
    "shield_samples": 16,
    "baselines.min_replay_history": 64,
    "baselines.update_period": 1,
    "baselines.target_update_period": 32,
    "baselines.replay_capacity": 2_000,
    "baselines.batch_size": 16,
}
MARGIN = 0.9  # late mean <= 0.9 x early mean


def test_every_paper_experiment_has_a_block():
    assert PAPER_BLOCKS == [
        "paper_pointgoal1_copt",
        "paper_pointgoal1_lagrangian",
        "paper_pointgoal1_penl",
        "paper_pointgoal1_plpg",
        "paper_seaquest_ambs",
        "paper_seaquest_dreamer",
        "paper_seaquest_rainbow",
    ]


@pytest.mark.learning
@pytest.mark.parametrize("block", PAPER_BLOCKS)
def test_paper_block_learns_from_real_data(block, tmp_path):
    config = resolve([block, "debug"], {**SHRINK, "logdir": str(tmp_path / block)})
    agent = build_agent(config)
    train(config, agent)
    records = [json.loads(line) for line in (tmp_path / block / "metrics.jsonl").read_text().splitlines()]
    if config.agent == "rainbow":
        losses = [r["train/loss"] for r in records if "train/loss" in r]
        assert records[-1]["train/updates"] > 100 and losses and all(math.isfinite(x) for x in losses)
        return
    key = "train/wm/model_loss"
    losses = [r[key] for r in records if key in r]
    assert len(losses) >= 6, f"{block}: only {len(losses)} logged losses"
    third = len(losses) // 3
    early, late = statistics.fmean(losses[:third]), statistics.fmean(losses[-third:])
    print(f"{block}: {key} {early:.4g} -> {late:.4g} over {len(losses)} records")
    assert late <= MARGIN * early
