"""The built-in ground-truth grid: dynamics, exact violation probabilities (vs brute force and stormpy),
snapshot/restore, seeding, configuration errors."""

import itertools

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ambs_verify.envs.errors import EnvConfigError
from ambs_verify.envs.grid import GridConfig, GridWorld


def random_policy(num_states: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(4), size=num_states)


def brute_force(env: GridWorld, policy: np.ndarray, start: int, horizon: int) -> float:
    """Sum the probability of every (action, next state) path of length <= H whose first violation is within H."""
    P, hazard = env.transitions, env.hazard_mask

    def walk(state: int, steps_left: int) -> float:
        if steps_left == 0:
            return 0.0
        total = 0.0
        for a, s_next in itertools.product(range(4), range(env.num_states)):
            p = policy[state, a] * P[state, a, s_next]
            if p > 0:
                total += p * (1.0 if hazard[s_next] else walk(s_next, steps_left - 1))
        return total

    return walk(start, horizon)


def test_transition_tensor_is_stochastic_and_goal_absorbing():
    env = GridWorld()
    P = env.transitions
    assert P.shape == (36, 4, 36)
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    assert np.all(P[env.goal_state, :, env.goal_state] == 1.0)
    deterministic = GridWorld(slip=0.0).transitions
    assert deterministic[0, 0, 0] == 1.0  # up from the corner: bumps the wall
    assert deterministic[0, 1, 1] == 1.0  # right
    assert deterministic[0, 2, 6] == 1.0  # down one row (6 columns)
    slippy = GridWorld(slip=0.4).transitions
    assert slippy[7, 1, 8] == pytest.approx(0.6 + 0.1)  # intended right plus the slip's 1/4 share


def test_exact_probability_matches_brute_force_on_a_tiny_grid():
    env = GridWorld(rows=2, cols=3, hazards=((0, 2),), goal=(1, 2), start=(0, 0), slip=0.2)
    policy = random_policy(env.num_states, seed=3)
    for horizon in (1, 2, 4):
        exact = env.exact_violation_probability(policy, horizon)
        for s in range(env.num_states):
            assert exact[s] == pytest.approx(brute_force(env, policy, s, horizon), abs=1e-12)
    assert np.all(env.exact_violation_probability(policy, 0) == 0)


def stormpy_bounded_reachability(env: GridWorld, policy: np.ndarray, horizon: int, tmp_path) -> np.ndarray:
    """Storm's answer to P=? [F<=H "hazard"] on the induced chain, with a fresh unlabelled copy of each state
    as the start so that the starting cell itself never counts (our semantics: steps 1..H)."""
    stormpy = pytest.importorskip("stormpy")
    chain = np.einsum("sa,sat->st", policy, env.transitions)
    S = env.num_states
    lines = [
        "@type: DTMC",
        "@parameters",
        "",
        "@reward_models",
        "",
        "@nr_states",
        str(2 * S),
        "@nr_choices",
        str(2 * S),
        "@model",
    ]
    for copy_offset in (0, S):  # 0..S-1 fresh starts, S..2S-1 the chain proper
        for s in range(S):
            label = " hazard" if copy_offset and env.hazard_mask[s] else ""
            lines += [f"state {copy_offset + s}{label}", "\taction 0"]
            lines += [f"\t\t{S + t} : {float(chain[s, t])!r}" for t in np.flatnonzero(chain[s])]
    path = tmp_path / "grid.drn"
    path.write_text("\n".join(lines) + "\n")
    model = stormpy.build_model_from_drn(str(path))
    prop = stormpy.parse_properties(f'P=? [ F<={horizon} "hazard" ]')[0]
    result = stormpy.model_checking(model, prop, only_initial_states=False)
    return np.array(result.get_value_vector()[:S])


@pytest.mark.parametrize("horizon", [1, 10, 30])
def test_exact_probability_agrees_with_stormpy(horizon, tmp_path):
    env = GridWorld()
    for seed in (0, 1):
        policy = random_policy(env.num_states, seed)
        ours = env.exact_violation_probability(policy, horizon)
        storm = stormpy_bounded_reachability(env, policy, horizon, tmp_path)
        assert np.max(np.abs(ours - storm)) <= 1e-9


def test_sampled_episodes_match_the_exact_probability():
    # The env's step() must follow the tensor the DP uses: 4,000 seeded rollouts of 10 steps from (0, 0).
    env = GridWorld(max_steps=1000)
    policy = random_policy(env.num_states, seed=7)
    exact = env.exact_violation_probability(policy, 10)[0]
    # Not the env's seed: two generators from the same seed would draw identical streams and correlate
    # the policy's choices with the slips.
    rng = np.random.default_rng(12345)
    env.reset(seed=0)
    hits = 0
    n = 4000
    for _ in range(n):
        env.reset()
        for _ in range(10):
            _, _, terminated, _, info = env.step(rng.choice(4, p=policy[env.state_index]))
            if info["labels"]["hazard"]:
                hits += 1
                break
            if terminated:
                break
    stderr = np.sqrt(exact * (1 - exact) / n)
    assert abs(hits / n - exact) < 4 * stderr


def test_costs_labels_and_goal():
    env = GridWorld(slip=0.0, hazards=((0, 1),), goal=(1, 0), start=(0, 0), cost_val=10.0)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(1)  # right, onto the hazard
    assert info["cost"] == 10.0 and info["labels"] == {"hazard": True} and reward == 0 and not terminated
    env.step(3)  # back left
    _, reward, terminated, truncated, info = env.step(2)  # down onto the goal
    assert reward == 1.0 and terminated and not truncated and info["cost"] == 0.0
    assert env.label_counts == {"hazard": 1}
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_truncation_at_step_cap():
    env = GridWorld(max_steps=3, slip=0.0)
    env.reset(seed=0)
    flags = [env.step(0)[3] for _ in range(3)]  # bump the top wall three times
    assert flags == [False, False, True]


def test_snapshot_restore_reproduces_the_future():
    env = GridWorld(slip=0.5, observation="both")
    env.reset(seed=11)
    actions = np.random.default_rng(1).integers(0, 4, size=200)
    for a in actions[:50]:
        env.step(a)
    snap = env.snapshot()

    def play():
        out = []
        for a in actions[50:]:
            obs, r, te, tr, info = env.step(a)
            out.append((obs["vector"].copy(), obs["image"].copy(), r, info["cost"], te, tr))
            if te or tr:
                break
        return out

    first = play()
    env.restore(snap)
    second = play()
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[2:] == b[2:]


def test_seeding_repeats_and_random_starts_are_free_cells():
    env = GridWorld(start=None, slip=0.3)
    starts = []
    for seed in range(20):
        env.reset(seed=seed)
        starts.append(env.state_index)
    assert set(starts) <= set(env.free_states.tolist()) and len(set(starts)) > 3
    runs = []
    for _ in range(2):
        env.reset(seed=5)
        runs.append([env.step(i % 4)[0].argmax() for i in range(30)])
    assert runs[0] == runs[1]


def test_observations_and_gymnasium_checker():
    for mode in ("vector", "image", "both"):
        env = GridWorld(observation=mode, image_size=32)
        check_env(env, skip_render_check=True)
    env = GridWorld(observation="image", image_size=60)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (60, 60, 3) and obs.dtype == np.uint8
    assert tuple(obs[0, 0]) == (60, 120, 255)  # the agent at (0, 0) is drawn blue
    assert tuple(obs[-1, -1]) == (40, 200, 60)  # the goal at (5, 5) is green


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"size": 5}, "unknown grid option(s) size; valid: rows, cols"),
        ({"hazards": ((9, 9),)}, "lies outside the 6×6 grid"),
        ({"goal": (1, 2)}, "must not be a hazard"),
        ({"start": (5, 5)}, "must be a free cell"),
        ({"slip": 1.5}, "slip must lie in [0, 1]"),
        ({"observation": "rgb"}, "accepted: vector, image, both"),
    ],
)
def test_bad_configuration_is_one_line(kwargs, fragment):
    with pytest.raises(EnvConfigError) as info:
        GridWorld(**kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_bad_policy_rejected():
    env = GridWorld()
    with pytest.raises(EnvConfigError, match="shape"):
        env.exact_violation_probability(np.ones((3, 4)) / 4, 5)
    with pytest.raises(EnvConfigError, match="probability vectors"):
        env.exact_violation_probability(np.ones((36, 4)), 5)


def test_config_from_yaml_style_dict():
    cfg = GridConfig.from_dict({"rows": 4, "cols": 4, "hazards": [[1, 1]], "goal": [3, 3], "start": [0, 0]})
    assert cfg.hazards == ((1, 1),) and cfg.goal == (3, 3)
    assert GridWorld(cfg).num_states == 16
    # A config's null means "the env's default", so random starts are spelled "random".
    random_start = GridWorld(GridConfig.from_dict({"start": "random"}))
    assert random_start.config.start is None
    starts = {random_start.reset(seed=s)[1]["state"] for s in range(200)}
    assert starts == set(random_start.free_states.tolist())
    for bad in ("rand", [1, 2, 3], 5):
        with pytest.raises(EnvConfigError, match=r"grid option start takes \[row, col\] or random"):
            GridConfig.from_dict({"start": bad})


def test_episode_means_exact_on_deterministic_paths():
    # 3x3, hazard (1, 1), goal (2, 2), no slip. "Right, then down" never touches the hazard and needs 4 steps;
    # "down, then right" walks (1, 0) -> (2, 0) -> (2, 1) -> goal; "always down" sits on (2, 0) until the cap.
    env = GridWorld(rows=3, cols=3, hazards=((1, 1),), goal=(2, 2), start=(0, 0), slip=0.0, max_steps=20)
    right, down = np.eye(4)[1], np.eye(4)[2]
    pol = np.array([right if r == 0 else down for r in range(3) for _ in range(3)])
    pol[2::3] = down  # column 2 goes down
    assert env.exact_episode_means(pol) == (1.0, 0.0)
    through = np.tile(right, (9, 1))
    through[[0, 5]] = down  # (0,0) -> (1,0) -> (1,1) hazard -> (1,2) -> goal
    assert env.exact_episode_means(through) == (1.0, 1.0)
    assert env.exact_episode_means(np.tile(down, (9, 1))) == (0.0, 0.0)
    short = GridWorld(rows=3, cols=3, hazards=((1, 1),), goal=(2, 2), start=(0, 0), slip=0.0, max_steps=3)
    assert short.exact_episode_means(pol) == (0.0, 0.0)  # 4 steps needed, 3 allowed


def test_episode_means_match_sampled_episodes():
    # The uniform policy on the default grid: 4,000 seeded episodes against the exact means, 4 standard errors.
    env = GridWorld()
    ret, viol = env.exact_episode_means(env.uniform_policy())
    rng = np.random.default_rng(2024)
    returns, violations = [], []
    for episode in range(4000):
        env.reset(seed=episode)
        total = hits = 0.0
        done = False
        while not done:
            _, reward, terminated, truncated, info = env.step(int(rng.integers(4)))
            total, hits, done = total + reward, hits + info["labels"]["hazard"], terminated or truncated
        returns.append(total)
        violations.append(hits)
    for exact, samples in ((ret, returns), (viol, violations)):
        assert abs(np.mean(samples) - exact) < 4 * np.std(samples) / np.sqrt(len(samples))
    assert 0.3 < ret < 0.5 and 8 < viol < 11  # the random policy's yardstick (0.407 and 9.25)
