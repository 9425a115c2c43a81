"""AMBS learns a safe policy on the built-in grid: after a seeded run at a small fixed budget, the safe policy
alone (what the shield hands control to) violates less per episode than the uniform random policy.

The yardstick is exact: ``GridWorld.exact_episode_means`` of the uniform policy of the quickstart's grid (8.18
violating steps per episode). The safe policy is evaluated alone on 32 fresh episodes.
"""

import pytest
from grid_training import train_quickstart

from ambs_verify.rollout.acting import evaluate

STEPS = 2000
SEED = 3  # not a seed the grid settings were tuned on (0 and 1 were)
FACTOR = 0.5


@pytest.mark.learning
def test_ambs_safe_policy_violates_less_than_random(tmp_path):
    safe, make_grid, layout = train_quickstart("ambs", SEED, STEPS, tmp_path / "run", mode="safe")
    ev = evaluate(safe, make_grid, 32, seed=10_000)
    _, random_violations = layout.exact_episode_means(layout.uniform_policy())
    print(f"ambs seed {SEED}, {STEPS} steps: safe policy {ev.violations.mean():.2f} vs random {random_violations:.2f}")
    assert ev.violations.mean() <= FACTOR * random_violations
