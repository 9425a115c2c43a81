"""Step N environments in lockstep with a policy and turn what happens into replay rows and episode statistics.

One :meth:`Driver.step` is one agent step of every env:

1. the policy sees the current observations ``policy(obs_batch, carry, rng) -> (actions, carry, extras)``;
   ``obs_batch`` holds the observation keys plus ``reward``, ``cost``, ``is_first``, ``is_last``, ``is_terminal``
   (each ``(N, ...)``), so a recurrent policy can reset its ``carry`` where ``is_first``;
2. the row of this step is complete and returned: ``{obs keys…, reward, cost, is_first, is_last, is_terminal,
   label/<name>…, action}`` (the world model's layout: the reward/cost that arrived with the observation, and
   the action taken at it; discrete actions stored one-hot). The policy's ``extras`` (e.g. the shield's p̂ and
   override flag) are returned with **this** row, the step they were computed for (the reference attached them
   to the next observation, one step late: spec §14.9);
3. every env advances: an env whose observation was the last of its episode is reset (its action is unused),
   the others are stepped with their action.

Episode ends keep termination and time-limit truncation apart: ``is_last`` is True for both, ``is_terminal``
only for a true termination (the world model's ``cont = 1 - is_terminal``; the reference merged them, §14.17).

When an episode's last row is emitted, an :class:`EpisodeStats` gives its return, cost, length (env steps),
violations (steps on which any safety label fired, or cost > 0 for an env without labels) in total and per label,
the cumulative violations over all envs since training began, and each numeric policy extra averaged over the
episode's executed steps (booleans become rates, e.g. the override rate).

The step counter of the trainer counts rows (``N`` per driver step), i.e. agent steps summed over envs.

Environments are a list of gymnasium envs (stepped in this process) or a gymnasium ``VectorEnv`` with the default
``NEXT_STEP`` autoreset. For a list of envs that implement ``snapshot()``/``restore()``, :meth:`Driver.state_dict`
captures everything needed to continue bit-for-bit after a restart (env states, current observations, episode
accumulators, the policy carry).
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import jax
import numpy as np

__all__ = ["Driver", "EpisodeStats", "Policy", "StepResult", "env_actions", "key_observation", "random_policy"]

Policy = Callable[[dict[str, np.ndarray], Any, Any], tuple[Any, Any, Mapping[str, Any]]]
FLAG_KEYS = ("is_first", "is_last", "is_terminal")


def key_observation(space: gym.Space) -> gym.spaces.Dict:
    """The keyed observation space: a Dict as it is, a rank-3 Box as ``image``, anything else as ``vector``."""
    if isinstance(space, gym.spaces.Dict):
        return space
    return gym.spaces.Dict({"image" if len(space.shape or ()) == 3 else "vector": space})


def _keyed(obs: Any, keys: Sequence[str]) -> dict[str, np.ndarray]:
    if isinstance(obs, Mapping):
        return {k: np.asarray(obs[k]) for k in keys}
    return {keys[0]: np.asarray(obs)}


def _numpy_rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    data = jax.random.key_data(rng) if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng
    return np.random.default_rng(np.asarray(data).astype(np.uint64).tolist())


def env_actions(act_space: gym.Space, actions: Any) -> np.ndarray:
    """A policy's batch of actions as the environment takes them: one-hot rows (the DreamerV3 agents) become indices
    of a ``Discrete`` space; indices and ``Box`` actions pass through."""
    actions = np.asarray(actions)
    if isinstance(act_space, gym.spaces.Discrete) and actions.ndim == 2:
        actions = actions.argmax(-1) + act_space.start
    return actions


def random_policy(act_space: gym.Space, num_envs: int) -> Policy:
    """A uniform random policy (for the replay prefill); ``rng`` is a JAX key or a numpy Generator."""

    def policy(obs, carry, rng):
        gen = _numpy_rng(rng)
        if isinstance(act_space, gym.spaces.Discrete):
            actions = act_space.start + gen.integers(0, act_space.n, size=num_envs)
        elif isinstance(act_space, gym.spaces.Box):
            low = np.where(np.isfinite(act_space.low), act_space.low, -1.0)
            high = np.where(np.isfinite(act_space.high), act_space.high, 1.0)
            actions = gen.uniform(low, high, size=(num_envs, *act_space.shape)).astype(act_space.dtype)
        else:
            raise TypeError(f"random_policy supports Discrete and Box action spaces, not {type(act_space).__name__}")
        return actions, carry, {}

    return policy


@dataclass
class EpisodeStats:
    """Statistics of one finished episode (see the module docstring)."""

    env: int
    length: int
    ret: float
    cost: float
    violations: int
    label_violations: dict[str, int]
    total_violations: int
    extras: dict[str, float] = field(default_factory=dict)

    def metrics(self, prefix: str = "episode/") -> dict[str, float]:
        """Flat metrics: ``return cost length violations violations/<label> total_violations violation_rate …``."""
        out = {
            "return": self.ret,
            "cost": self.cost,
            "length": self.length,
            "violations": self.violations,
            "violation_rate": self.violations / max(1, self.length),
            "total_violations": self.total_violations,
        }
        out.update({f"violations/{k}": v for k, v in self.label_violations.items()})
        out.update(self.extras)
        return {prefix + k: v for k, v in out.items()}


@dataclass
class StepResult:
    """One driver step: the replay ``row`` (``(N, ...)`` per key), the policy ``extras`` computed for it, and the
    episodes that ended with this row."""

    row: dict[str, np.ndarray]
    extras: dict[str, np.ndarray]
    episodes: list[EpisodeStats]


class _Accumulator:
    """Running sums of one env's current episode."""

    def __init__(self, labels: Sequence[str]):
        self.rows = 0
        self.ret = 0.0
        self.cost = 0.0
        self.violations = 0
        self.labels = dict.fromkeys(labels, 0)
        self.extra_sums: dict[str, float] = {}
        self.extra_counts: dict[str, int] = {}
        self.extra_bool: dict[str, bool] = {}


class Driver:
    """Lockstep driver over N environments (see the module docstring).

    Parameters
    ----------
    envs : list of gymnasium.Env or gymnasium.vector.VectorEnv
        Environments reporting ``info["cost"]`` and ``info["labels"]``.
    seed : int
        Env ``i`` is reset with ``seed + i`` the first time (later resets continue its own generator).
    onehot : bool
        Store discrete actions one-hot (float32) in the rows, as the world model expects.
    """

    def __init__(self, envs: Sequence[gym.Env] | gym.vector.VectorEnv, seed: int = 0, onehot: bool = True):
        self._vector = envs if isinstance(envs, gym.vector.VectorEnv) else None
        if self._vector is not None:
            mode = self._vector.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
            if mode != gym.vector.AutoresetMode.NEXT_STEP:
                raise ValueError(f"the driver needs a VectorEnv with NEXT_STEP autoreset (got {mode})")
            self.envs: list[gym.Env] = []
            self.num_envs = self._vector.num_envs
            single_obs, self.act_space = self._vector.single_observation_space, self._vector.single_action_space
        else:
            self.envs = list(envs)
            if not self.envs:
                raise ValueError("the driver needs at least one environment")
            self.num_envs = len(self.envs)
            single_obs, self.act_space = self.envs[0].observation_space, self.envs[0].action_space
        self.obs_space = key_observation(single_obs)
        self.obs_keys = tuple(self.obs_space.spaces)
        self.seed = int(seed)
        self.onehot = onehot and isinstance(self.act_space, gym.spaces.Discrete)
        self.label_names: tuple[str, ...] = ()
        self.total_violations = 0
        self._obs: dict[str, np.ndarray] | None = None
        self._last: dict[str, np.ndarray] = {}  # reward, cost, flags and labels that arrived with _obs
        self._carry: Any = None
        self._acc: list[_Accumulator] = []

    @property
    def carry(self) -> Any:
        """The policy's carry after the last :meth:`step` (None before the first)."""
        return self._carry

    def start(self) -> None:
        """Reset every env now (otherwise the first :meth:`step` does), so :attr:`observations` is available."""
        if self._obs is None:
            self._start()

    @property
    def observations(self) -> dict[str, np.ndarray] | None:
        """The current observations with their arrival fields (what the next :meth:`step` shows the policy)."""
        if self._obs is None:
            return None
        return {**self._obs, **{k: self._last[k] for k in ("reward", "cost", *FLAG_KEYS)}}

    @property
    def arrival(self) -> dict[str, np.ndarray]:
        """What arrived with the current observations: reward, cost, the episode flags and ``label/<name>``."""
        return dict(self._last)

    # ---------------------------------------------------------------------------------------- envs

    def _reset_one(self, i: int, seed: int | None) -> tuple[dict[str, np.ndarray], dict]:
        obs, info = self.envs[i].reset(seed=seed)
        return _keyed(obs, self.obs_keys), info

    def _labels_of(self, info: Mapping[str, Any]) -> dict[str, bool]:
        labels = info.get("labels", {}) or {}
        return {name: bool(labels.get(name, False)) for name in self.label_names}

    def _start(self) -> None:
        if self._vector is not None:
            obs, info = self._vector.reset(seed=[self.seed + i for i in range(self.num_envs)])
            obs = _keyed(obs, self.obs_keys)
            infos = _split_vector_info(info, self.num_envs)
        else:
            pairs = [self._reset_one(i, self.seed + i) for i in range(self.num_envs)]
            obs = {k: np.stack([p[0][k] for p in pairs]) for k in self.obs_keys}
            infos = [p[1] for p in pairs]
        names: list[str] = []
        for info in infos:
            names += [n for n in (info.get("labels") or {}) if n not in names]
        self.label_names = tuple(names)
        self._acc = [_Accumulator(self.label_names) for _ in range(self.num_envs)]
        self._obs = obs
        self._last = self._arrival(
            reward=np.zeros(self.num_envs),
            cost=np.zeros(self.num_envs),
            is_first=np.ones(self.num_envs, bool),
            is_last=np.zeros(self.num_envs, bool),
            is_terminal=np.zeros(self.num_envs, bool),
            labels=[dict.fromkeys(self.label_names, False)] * self.num_envs,
        )

    def _arrival(self, reward, cost, is_first, is_last, is_terminal, labels) -> dict[str, np.ndarray]:
        out = {
            "reward": np.asarray(reward, np.float32),
            "cost": np.asarray(cost, np.float32),
            "is_first": np.asarray(is_first, bool),
            "is_last": np.asarray(is_last, bool),
            "is_terminal": np.asarray(is_terminal, bool),
        }
        for name in self.label_names:
            out[f"label/{name}"] = np.array([lab[name] for lab in labels], bool)
        return out

    def _env_actions(self, actions: Any) -> np.ndarray:
        actions = env_actions(self.act_space, actions)
        if actions.shape[0] != self.num_envs:
            raise ValueError(f"the policy returned {actions.shape[0]} actions for {self.num_envs} envs")
        return actions

    def _stored_action(self, actions: np.ndarray) -> np.ndarray:
        if self.onehot:
            n = int(self.act_space.n)
            return np.eye(n, dtype=np.float32)[actions.astype(np.int64) - int(self.act_space.start)]
        return actions.astype(np.float32) if actions.dtype.kind == "f" else actions

    # ---------------------------------------------------------------------------------------- step

    def step(self, policy: Policy, rng: Any) -> StepResult:
        """Run the policy on the current observations, emit the row, advance every env (module docstring)."""
        if self._obs is None:
            self._start()
        assert self._obs is not None
        obs_batch = {**self._obs, **{k: self._last[k] for k in ("reward", "cost", *FLAG_KEYS)}}
        actions, self._carry, extras = policy(obs_batch, self._carry, rng)
        actions = self._env_actions(actions)
        extras = {k: np.broadcast_to(np.asarray(v), (self.num_envs,)) for k, v in (extras or {}).items()}
        row = {**self._obs, **self._last, "action": self._stored_action(actions)}
        episodes = self._account(row, extras)
        self._advance(actions, row["is_last"])
        return StepResult(row=row, extras=extras, episodes=episodes)

    def _account(self, row: dict[str, np.ndarray], extras: dict[str, np.ndarray]) -> list[EpisodeStats]:
        finished = []
        labels = {name: row[f"label/{name}"] for name in self.label_names}
        for i, acc in enumerate(self._acc):
            acc.rows += 1
            acc.ret += float(row["reward"][i])
            acc.cost += float(row["cost"][i])
            fired = [name for name in self.label_names if labels[name][i]]
            violated = bool(fired) if self.label_names else row["cost"][i] > 0
            acc.violations += int(violated)
            self.total_violations += int(violated)
            for name in fired:
                acc.labels[name] += 1
            if not row["is_last"][i]:  # extras of executed steps only (the last row's action is never used)
                for key, value in extras.items():
                    v = value[i]
                    acc.extra_bool[key] = acc.extra_bool.get(key, True) and np.asarray(v).dtype == bool
                    acc.extra_sums[key] = acc.extra_sums.get(key, 0.0) + float(v)
                    acc.extra_counts[key] = acc.extra_counts.get(key, 0) + 1
            if row["is_last"][i]:
                means = {
                    f"{k}_rate" if acc.extra_bool[k] else f"{k}_mean": acc.extra_sums[k] / acc.extra_counts[k]
                    for k in acc.extra_sums
                }
                finished.append(
                    EpisodeStats(
                        env=i,
                        length=acc.rows - 1,
                        ret=acc.ret,
                        cost=acc.cost,
                        violations=acc.violations,
                        label_violations=dict(acc.labels),
                        total_violations=self.total_violations,
                        extras=means,
                    )
                )
                self._acc[i] = _Accumulator(self.label_names)
        return finished

    def _advance(self, actions: np.ndarray, was_last: np.ndarray) -> None:
        n = self.num_envs
        if self._vector is not None:
            obs, reward, terminated, truncated, info = self._vector.step(actions)
            obs = _keyed(obs, self.obs_keys)
            infos = _split_vector_info(info, n)
            costs = [float(inf.get("cost", 0.0)) for inf in infos]
        else:
            results = []
            for i, env in enumerate(self.envs):
                if was_last[i]:
                    o, inf = self._reset_one(i, None)
                    results.append((o, 0.0, False, False, inf))
                else:
                    o, r, term, trunc, inf = env.step(actions[i])
                    results.append((_keyed(o, self.obs_keys), r, term, trunc, inf))
            obs = {k: np.stack([r[0][k] for r in results]) for k in self.obs_keys}
            reward = [r[1] for r in results]
            terminated = [r[2] for r in results]
            truncated = [r[3] for r in results]
            infos = [r[4] for r in results]
            costs = [float(inf.get("cost", 0.0)) for inf in infos]
        reward = np.where(was_last, 0.0, np.asarray(reward, np.float64))
        costs = np.where(was_last, 0.0, np.asarray(costs))
        terminated = np.asarray(terminated, bool) & ~was_last
        truncated = np.asarray(truncated, bool) & ~was_last
        labels = [
            dict.fromkeys(self.label_names, False) if was_last[i] else self._labels_of(infos[i]) for i in range(n)
        ]
        self._obs = obs
        self._last = self._arrival(reward, costs, was_last.copy(), terminated | truncated, terminated, labels)

    # ------------------------------------------------------------------------------ resume support

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: env snapshots, current observations, accumulators, carry.

        ``snapshots`` is None when the envs cannot be snapshotted (a VectorEnv, or envs without ``snapshot``);
        :meth:`load_state_dict` then starts fresh episodes instead.
        """
        snapshots = None
        if self._obs is not None and self._vector is None and all(hasattr(e, "snapshot") for e in self.envs):
            snapshots = [e.snapshot() for e in self.envs]
        return {
            "started": self._obs is not None,
            "snapshots": snapshots,
            "obs": self._obs,
            "last": self._last,
            "carry": jax.device_get(self._carry),
            "acc": [vars(a).copy() for a in self._acc],
            "label_names": self.label_names,
            "total_violations": self.total_violations,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> bool:
        """Restore :meth:`state_dict`; returns True when the envs continue exactly, False when they restart."""
        self.total_violations = int(state["total_violations"])
        if not state["started"]:
            return True
        if state["snapshots"] is None or self._vector is not None:
            warnings.warn("the environments cannot be restored exactly; resuming with fresh episodes", stacklevel=2)
            self._obs, self._carry = None, None
            return False
        try:
            for i, (env, snap) in enumerate(zip(self.envs, state["snapshots"], strict=True)):
                env.reset(seed=self.seed + i)  # some simulators can only restore into a world built by a reset
                env.restore(snap)
        except Exception as exc:  # a snapshot from another build of the env: continue with fresh episodes
            warnings.warn(f"the environments cannot be restored ({exc}); resuming with fresh episodes", stacklevel=2)
            self._obs, self._carry = None, None
            return False
        self.label_names = tuple(state["label_names"])
        self._obs, self._last, self._carry = state["obs"], state["last"], state["carry"]
        self._acc = []
        for saved in state["acc"]:
            acc = _Accumulator(self.label_names)
            vars(acc).update(saved)
            self._acc.append(acc)
        return True

    def dumps(self) -> bytes:
        """:meth:`state_dict` pickled (falls back to a state without env snapshots if those do not pickle)."""
        state = self.state_dict()
        try:
            return pickle.dumps(state)
        except Exception as exc:  # an env snapshot holding an unpicklable handle
            warnings.warn(f"env snapshots cannot be saved ({exc}); a resume will start fresh episodes", stacklevel=2)
            return pickle.dumps({**state, "snapshots": None})

    def loads(self, data: bytes) -> bool:
        """Restore from :meth:`dumps` (only load checkpoints you trust: this unpickles)."""
        return self.load_state_dict(pickle.loads(data))

    def close(self) -> None:
        if self._vector is not None:
            self._vector.close()
        for env in self.envs:
            env.close()


def _split_vector_info(info: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """Per-env info dicts from a VectorEnv's merged info (arrays with ``_key`` masks, nested for dicts)."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in info.items():
        if key.startswith("_"):
            continue
        mask = info.get(f"_{key}", np.ones(n, bool))
        if isinstance(value, Mapping):
            for i, sub in enumerate(_split_vector_info(value, n)):
                if mask[i]:
                    out[i][key] = sub
        else:
            for i in range(n):
                if mask[i]:
                    out[i][key] = value[i]
    return out
