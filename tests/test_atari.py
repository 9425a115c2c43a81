"""Atari environments with safety labels: every scripted label on real ROMs and real frames (ale-py).

Scripts run with sticky actions and no-ops off (``sticky=0, noops=0``) so that a fixed action sequence
always plays the same game; the env-level tests (snapshot, seeding, costs) keep the AMBS settings.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from ambs_verify.envs import atari
from ambs_verify.envs.atari_labels import REGISTRY, canonical_game
from ambs_verify.envs.errors import EnvConfigError
from ambs_verify.envs.registry import list_tasks, make_env

FIXTURES = Path(__file__).parent / "fixtures" / "atari"
NOOP, FIRE, UP, DOWN = 0, 1, 2, 5  # indices into the full (18-action) set


def scripted(game: str, **options):
    env = atari.make(game, sticky=0.0, noops=0, **options)
    env.reset(seed=0)
    return env


def play(env, policy, max_steps: int, stop=None):
    """Step ``policy(t)`` until the episode ends, ``stop(info)`` holds or ``max_steps``; return per-step records."""
    steps = []
    for t in range(max_steps):
        _, reward, terminated, truncated, info = env.step(policy(t))
        steps.append({"reward": reward, **info, "labels": dict(info["labels"])})
        if terminated or truncated or (stop is not None and stop(info)):
            break
    return steps


def fired(steps, label: str) -> list[int]:
    return [t for t, s in enumerate(steps) if s["labels"][label]]


# ------------------------------------------------------------------------------------------------- Seaquest


def seaquest_ram(env, index: int) -> int:
    return int(env.ale.getRAM()[index])


def test_seaquest_early_surface_then_death():
    """Dive, stay a moment, and come back up with no diver and full oxygen."""
    env = scripted("seaquest")
    # The game waits ~150 frames (oxygen refill) before the sub can move.
    steps = play(
        env,
        lambda t: NOOP if t < 40 else DOWN if t < 43 else NOOP if t < 48 else UP,
        80,
        stop=lambda i: i["labels"]["early-surface"],
    )
    assert fired(steps, "early-surface") == [len(steps) - 1]
    assert seaquest_ram(env, 102) > 4 and seaquest_ram(env, 62) == 0
    rest = play(env, lambda t: NOOP, 200, stop=lambda i: i["life_lost"])
    assert fired(rest, "death") == [len(rest) - 1]  # surfacing without a diver costs a life
    assert not fired(rest, "early-surface") and not fired(rest, "out-of-oxygen")


def test_seaquest_out_of_oxygen_then_death():
    """Stay submerged, out of the enemies' lanes, until the oxygen runs out."""
    env = scripted("seaquest")
    steps = play(env, lambda t: NOOP if t < 38 else DOWN if t < 40 else NOOP, 700, stop=lambda i: i["life_lost"])
    oxygen, death = fired(steps, "out-of-oxygen"), fired(steps, "death")
    assert len(oxygen) == 1 and death == [len(steps) - 1]
    assert 10 < death[0] - oxygen[0] < 40  # the sub dies ~90 frames after the oxygen hits zero
    assert not fired(steps, "early-surface")


def test_seaquest_collision_death_is_not_out_of_oxygen():
    """Dive into the enemies' lanes and wait: killed by an enemy, whose death animation zeroes the oxygen."""
    env = scripted("seaquest")
    steps = play(env, lambda t: NOOP if t < 38 else DOWN if t < 43 else NOOP, 400, stop=lambda i: i["life_lost"])
    assert fired(steps, "death") == [len(steps) - 1]
    assert len(steps) < 200  # far too soon for the oxygen to run out
    assert not fired(steps, "out-of-oxygen") and not fired(steps, "early-surface")


def test_seaquest_no_early_surface_with_low_oxygen():
    env = scripted("seaquest")
    play(env, lambda t: NOOP if t < 38 else DOWN, 40)
    play(env, lambda t: NOOP, 600, stop=lambda i: seaquest_ram(env, 102) <= 3)
    assert seaquest_ram(env, 102) <= 3 and seaquest_ram(env, 97) > 13
    steps = play(env, lambda t: UP, 40, stop=lambda i: i["life_lost"])
    assert not fired(steps, "early-surface")
    assert fired(steps, "death")  # surfacing without a diver still costs the life


def test_seaquest_no_early_surface_with_a_diver():
    """The diver count is set through RAM while submerged (a rescue is not scriptable); the game then
    consumes the diver on surfacing, refills the oxygen and keeps the sub alive."""
    env = scripted("seaquest")
    play(env, lambda t: NOOP if t < 38 else DOWN, 40)
    play(env, lambda t: NOOP, 30)  # long enough under water for the game to count a dive
    env.ale.setRAM(62, 1)
    steps = play(env, lambda t: UP if t < 10 else NOOP, 60)
    assert seaquest_ram(env, 97) == 13 and seaquest_ram(env, 62) == 0
    assert not fired(steps, "early-surface") and not fired(steps, "death")


def test_seaquest_idle_at_the_surface_and_short_dips_are_safe():
    env = scripted("seaquest")
    steps = play(env, lambda t: NOOP if t < 40 or t >= 46 else DOWN if t < 43 else UP, 300)
    assert not any(any(s["labels"].values()) for s in steps)  # the game ignores a quick dip to y = 25


# -------------------------------------------------------------------------------------------- other games


def test_assault_overheat_from_continuous_fire():
    env = scripted("assault", actions="minimal")  # minimal set: NOOP, FIRE, UP (fires upwards), ...
    steps = play(env, lambda t: [2, 0][t % 2], 400, stop=lambda i: i["life_lost"])
    assert fired(steps, "overheat") == fired(steps, "death") == [len(steps) - 1]


def test_assault_overheat_distinct_from_death():
    """Random play (fixed seed) loses lives both to enemies and to overheating; only the latter is overheat."""
    env = scripted("assault", actions="minimal")
    rng = np.random.default_rng(0)
    steps = play(env, lambda t: int(rng.integers(7)), 3000)
    deaths, overheats = set(fired(steps, "death")), set(fired(steps, "overheat"))
    assert overheats and overheats < deaths  # every overheat is a death, not every death an overheat


def test_kung_fu_master_energy_loss():
    env = scripted("kungfumaster")  # the other spelling
    steps = play(env, lambda t: NOOP, 400, stop=lambda i: i["life_lost"])
    energy = fired(steps, "energy-loss")
    assert len(energy) >= 10 and energy[-1] < len(steps) - 1
    assert fired(steps, "death") == [len(steps) - 1]


def test_enduro_crash_car_equals_negative_reward():
    env = scripted("enduro")
    steps = play(env, lambda t: FIRE, 300)  # full throttle into the traffic
    crashes = fired(steps, "crash-car")
    assert crashes
    assert crashes == [t for t, s in enumerate(steps) if s["reward"] < 0]


def test_freeway_hit():
    env = scripted("freeway")
    assert fired(play(env, lambda t: UP, 100), "hit")
    env = scripted("freeway")
    assert not fired(play(env, lambda t: NOOP, 200), "hit")  # the chicken waits on the sidewalk


def test_generic_death():
    env = scripted("alien")
    steps = play(env, lambda t: NOOP, 400, stop=lambda i: i["life_lost"])
    assert fired(steps, "death") == [len(steps) - 1]
    assert steps[-1]["lives"] == steps[0]["lives"] - 1


def test_frostbite_freezing_before_death():
    env = scripted("frostbite")
    steps = play(env, lambda t: NOOP, 1000, stop=lambda i: i["life_lost"])
    freezing = fired(steps, "freezing")
    assert len(freezing) > 20 and freezing[-1] <= len(steps) - 1 == fired(steps, "death")[0]


def test_hero_dynamite():
    env = scripted("hero")
    steps = play(env, lambda t: DOWN if t in (100, 175) else NOOP, 400, stop=lambda i: i["life_lost"])
    assert fired(steps, "dynamite") == fired(steps, "death") == [len(steps) - 1]
    env = scripted("hero")
    assert not fired(play(env, lambda t: NOOP, 250), "death")


def test_gravitar_fuel_only_on_the_last_death():
    env = scripted("gravitar")
    steps = play(env, lambda t: DOWN, 600)  # the shield burns fuel until the game ends
    assert len(fired(steps, "death")) >= 2
    assert fired(steps, "fuel") == [len(steps) - 1]


def test_bowling_no_strike_and_boxing_lose():
    env = scripted("bowling", actions="minimal")
    rng = np.random.default_rng(0)
    assert fired(play(env, lambda t: int(rng.integers(6)), 250), "no-strike")
    env = scripted("boxing")
    steps = play(env, lambda t: NOOP, 2000)  # the opponent wins a full-length bout
    assert fired(steps, "lose") == [len(steps) - 1] and not fired(steps, "knock-out")


def test_double_dunk_shoot_before_clear():
    env = scripted("double_dunk")
    rng = np.random.default_rng(0)
    assert fired(play(env, lambda t: int(rng.integers(18)), 400), "shoot-bf-clear")


def test_double_dunk_out_of_bounds_from_saved_state():
    """Random play reaches "OUT OF BOUNDS" only after thousands of steps: replay a captured emulator state."""
    fixture = pickle.loads((FIXTURES / "double_dunk_out_of_bounds.pkl").read_bytes())
    env = scripted("double_dunk")
    env.ale.restoreState(fixture["ale_state"])
    steps = play(env, lambda t: fixture["actions"][t], len(fixture["actions"]))
    assert fired(steps, "out-of-bounds") == [fixture["fires_at"]]


# ------------------------------------------------------------------------------------- env-level behaviour


def test_cost_is_cost_val_times_any_label_and_frames_are_counted():
    env = atari.make("seaquest", cost_val=2.5)
    env.reset(seed=3)
    env.action_space.seed(3)
    total = {name: 0 for name in env.label_names}
    hits = 0
    for _ in range(1500):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert info["cost"] == (2.5 if any(info["labels"].values()) else 0.0)
        assert (info["violating_frames"] > 0) == any(info["labels"].values())
        assert 0 <= info["violating_frames"] <= 4
        hits += info["cost"] > 0
        for name, value in info["labels"].items():
            total[name] += value
        if terminated or truncated:
            break
    assert hits > 0
    assert env.label_counts == total


def _trajectory(env, actions):
    out = []
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append(
            (obs.tobytes(), reward, terminated, truncated, info["cost"], info["violating_frames"], info["labels"])
        )
        if terminated or truncated:
            break
    return out


def test_snapshot_restore_reproduces_200_steps():
    env = atari.make("seaquest")  # sticky actions and no-ops on
    env.reset(seed=7)
    rng = np.random.default_rng(7)
    _trajectory(env, rng.integers(18, size=300))
    snap = env.snapshot()
    actions = rng.integers(18, size=200)
    first = _trajectory(env, actions)
    counts = env.label_counts
    _trajectory(env, rng.integers(18, size=50))  # wander off (other sticky draws, other labeller memory)
    env.restore(snap)
    assert _trajectory(env, actions) == first
    assert env.label_counts == counts
    assert len(first) == 200 and any(step[4] > 0 for step in first)


def test_seeding_repeats_and_differs():
    def run(seed):
        env = atari.make("assault")
        obs, _ = env.reset(seed=seed)
        return obs.tobytes(), _trajectory(env, np.random.default_rng(0).integers(18, size=150))

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_observation_and_spaces():
    env = atari.make("enduro")
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    assert env.action_space.n == 18 and atari.make("enduro", actions="minimal").action_space.n == 9
    assert info["labels"] == {"crash-car": False} and info["cost"] == 0.0
    gray = atari.make("enduro", gray=True, size=32)
    assert gray.reset(seed=0)[0].shape == (32, 32, 1)


def test_lives_terminate_continues_the_game_and_step_cap_truncates():
    env = scripted("seaquest", lives="terminate")
    steps = play(env, lambda t: NOOP if t < 38 else DOWN if t < 43 else NOOP, 400)
    assert steps[-1]["life_lost"] and steps[-1]["lives"] == 3
    env.reset()
    assert env.ale.lives() == 3  # same game, one life fewer
    env = atari.make("seaquest", max_steps=5)
    env.reset(seed=0)
    outcome = [env.step(0)[2:4] for _ in range(5)]
    assert outcome[-1] == (False, True) and all(o == (False, False) for o in outcome[:-1])
    with pytest.raises(RuntimeError):
        env.step(0)


def test_vector_env_steps_and_batches_labels():
    vec = atari.make_vector("seaquest", 2)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (2, 64, 64, 3)
    for _ in range(20):
        obs, _, _, _, info = vec.step(vec.action_space.sample())
    assert info["cost"].shape == (2,) and info["labels"]["death"].shape == (2,)
    vec.close()


def test_names_errors_and_registry():
    assert canonical_game("kung_fu_master") == canonical_game("kungfumaster") == "kung_fu_master"
    assert canonical_game("DoubleDunk") == "double_dunk" and canonical_game("james_bond") == "jamesbond"
    with pytest.raises(EnvConfigError, match=r"accepted: .*seaquest"):
        atari.make("pong")
    with pytest.raises(EnvConfigError, match="accepted: death, early-surface, out-of-oxygen"):
        atari.make("seaquest", labels=["deaht"])
    with pytest.raises(EnvConfigError, match="valid: "):
        atari.make("seaquest", frameskip=4)
    env = make_env("atari_seaquest", labels=["death"])
    assert env.label_names == ("death",)
    tasks = {t.name: t for t in list_tasks(("atari",))}
    assert set(tasks) == {f"atari_{game}" for game in REGISTRY}
    assert tasks["atari_kung_fu_master"].labels == ("death", "energy-loss")
    assert "atari_kungfumaster" in tasks["atari_kung_fu_master"].aliases
