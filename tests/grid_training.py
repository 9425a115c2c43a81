"""Shared by the learning tests: train the quickstart configuration for one agent, seed and budget."""

from ambs_verify.config import resolve
from ambs_verify.trainers.factory import build_agent
from ambs_verify.trainers.loop import train


def train_quickstart(agent: str, seed: int, steps: int, logdir):
    """The trained agent object (``--configs quickstart --agent AGENT --seed SEED --run.steps STEPS``)."""
    overrides = {"agent": agent, "seed": seed, "run.steps": steps, "logdir": str(logdir), "run.progress": False}
    config = resolve(["quickstart"], overrides)
    trained = build_agent(config)
    train(config, trained)
    return trained
