"""The world model learns the built-in grid's state (the diagnosis of why DreamerV3 did not learn there), and the
trainer's health check names a collapsed world model.

Random-policy grid data, world-model updates only, then probes on held-out sequences: the cell decoded from the
posterior latent, and the reconstruction loss against the loss of always predicting the mean one-hot.
"""

import jax
import numpy as np

from ambs_verify.agents import rssm as R
from ambs_verify.agents.world_model import WorldModel
from ambs_verify.config import resolve
from ambs_verify.envs.registry import make_env
from ambs_verify.rollout.agents import agent_config
from ambs_verify.trainers.health import HEALTH_UPDATES, world_model_collapse

UPDATES = 400


def random_grid_data(steps: int, seed: int) -> dict[str, np.ndarray]:
    """One stream of random-policy grid rows in the replay's layout (reward/cost arrive with the next row)."""
    env = make_env("grid")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = {k: [] for k in ("vector", "action", "reward", "cost", "is_first", "is_terminal")}
    reward = cost = 0.0
    first, terminal = True, False
    for _ in range(steps):
        action = int(rng.integers(4))
        for k, v in zip(rows, (obs, np.eye(4)[action], reward, cost, first, terminal), strict=True):
            rows[k].append(v)
        obs, reward, terminal, truncated, info = env.step(action)
        cost, first = info["cost"], False
        if terminal or truncated:
            obs, _ = env.reset()
            reward, cost, first, terminal = 0.0, 0.0, True, False
    return {k: np.asarray(v, np.float32 if k not in ("is_first", "is_terminal") else bool) for k, v in rows.items()}


def windows(data, batch: int, length: int, rng) -> dict[str, np.ndarray]:
    starts = rng.integers(0, len(data["vector"]) - length, size=batch)
    out = {k: np.stack([v[s : s + length] for s in starts]) for k, v in data.items()}
    out["is_first"][:, 0] = True
    return out


def train_and_probe(world_model_config, seed: int = 0) -> dict[str, float]:
    wm = WorldModel(world_model_config, {"vector": (36,)}, 4, cost_clip=1.0)
    params = wm.init(jax.random.PRNGKey(seed))
    opt = wm.init_opt(params)
    update = jax.jit(wm.update)
    train, test = random_grid_data(20_000, seed), random_grid_data(2_000, seed + 100)
    rng, key = np.random.default_rng(seed), jax.random.PRNGKey(seed + 1)
    for _ in range(UPDATES):
        key, sub = jax.random.split(key)
        params, opt, metrics, _ = update(params, opt, windows(train, 16, 32, rng), sub)

    @jax.jit
    def probe(params, batch, key):
        post, _ = wm.observe(params, batch, key)
        recon = wm.decode(params, R.feat(post))["vector"]
        return (recon.argmax(-1) == batch["vector"].argmax(-1)).mean()

    accuracy = probe(params, windows(test, 64, 32, np.random.default_rng(7)), key)
    return {"accuracy": float(accuracy), **{k: float(v) for k, v in metrics.items()}}


def test_world_model_learns_the_grid_cell():
    """With the grid's settings (gridnet size, categorical decoder, lr 3e-4) the cell is decodable from the
    posterior latent after 400 updates; the debug size with the paper's symlog-MSE decoder, which the quickstart
    used before, does not (next test). Measured: 92 % cell accuracy, loss 0.18x the mean's, KL 4.5 nats."""
    config = agent_config(resolve(["quickstart"])).world_model
    learned = train_and_probe(config)
    assert learned["accuracy"] > 0.8, learned
    assert learned["vector_vs_mean"] < 0.5 and learned["model_kl"] > 1.0, learned


def test_the_old_quickstart_model_collapses_and_the_health_check_says_so():
    """Measured: 4 % cell accuracy, loss 1.7x the mean's, KL 0.59 (below free bits), as the diagnosis found."""
    old = agent_config(resolve(["debug"])).world_model  # debug sizes, symlog MSE, lr 1e-4
    collapsed = train_and_probe(old)
    assert collapsed["accuracy"] < 0.2 and collapsed["vector_vs_mean"] > 0.9, collapsed
    record = {
        "train/updates": UPDATES + HEALTH_UPDATES,
        "train/wm/vector_vs_mean": collapsed["vector_vs_mean"],
        "train/wm/model_kl": 0.6,
    }
    message = world_model_collapse(record, free_bits=1.0)
    assert message.startswith("the world model is not learning the observations after 900 updates")
    assert "KL is 0.60, below free bits (1)" in message and "\n" not in message
    assert "below free bits" not in world_model_collapse({**record, "train/wm/model_kl": 1.2}, 1.0)
    assert world_model_collapse({**record, "train/updates": HEALTH_UPDATES - 1}, 1.0) is None
    assert world_model_collapse({**record, "train/wm/vector_vs_mean": 0.3}, 1.0) is None
