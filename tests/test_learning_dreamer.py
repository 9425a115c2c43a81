"""DreamerV3 learns the built-in grid: a seeded run at a small fixed budget whose final policy beats the uniform
random policy's exact expected return by a margin (the model-free baselines' tests do the same).

The yardstick is exact: ``GridWorld.exact_episode_means`` of the uniform policy of the quickstart's grid (random
starts, no slip: return 0.512, the goal is reached within the 100-step cap in 51 % of episodes). The trained
agent is evaluated on 32 fresh episodes.
"""

import pytest
from grid_training import train_quickstart

from ambs_verify.rollout.acting import evaluate

STEPS = 3000
SEED = 3  # not a seed the grid settings were tuned on (0 and 1 were)
MARGIN = 0.3


@pytest.mark.learning
def test_dreamer_beats_the_random_policy(tmp_path):
    policy, make_grid, layout = train_quickstart("dreamer", SEED, STEPS, tmp_path / "run")
    ev = evaluate(policy, make_grid, 32, seed=10_000)
    random_return, _ = layout.exact_episode_means(layout.uniform_policy())
    print(f"dreamer seed {SEED}, {STEPS} steps: return {ev.returns.mean():.3f} vs random {random_return:.3f}")
    assert ev.returns.mean() >= random_return + MARGIN
