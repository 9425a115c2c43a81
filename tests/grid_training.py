"""Shared by the learning tests: train the quickstart configuration for one agent, seed and budget."""

from ambs_verify.agents.interface import bind
from ambs_verify.config import env_options, resolve
from ambs_verify.envs.grid import GridWorld
from ambs_verify.envs.registry import make_env
from ambs_verify.rollout.agents import build_agent
from ambs_verify.trainers.loop import train


def train_quickstart(agent: str, seed: int, steps: int, logdir, mode: str = "deployed"):
    """``(trained policy, make_env, layout)`` for ``--configs quickstart --agent AGENT --seed SEED --run.steps
    STEPS``: the policy acts in ``mode``, ``make_env()`` builds the grid the agent trained on and ``layout`` is that
    grid, for exact yardsticks."""
    overrides = {"agent": agent, "seed": seed, "run.steps": steps, "logdir": str(logdir), "run.progress": False}
    config = resolve(["quickstart"], overrides)
    trained = build_agent(config)
    result = train(config, trained)
    options = env_options(config)
    return bind(trained, result.state, mode), (lambda: make_env(config.task, **options)), GridWorld(**options)
