"""Proportional prioritized replay (Schaul et al. 2016) over per-env step streams, with n-step returns.

Storage
-------
Each of ``num_envs`` environments owns a circular stream of ``capacity // num_envs`` slots. A slot holds the
observation an action was taken on, that action, its (clipped) reward, and whether the episode terminated or
ended (terminated or truncated) after it. When an episode ends, one more *closing* slot stores its final
observation (the bootstrap state after a truncation); closing slots are never sampled as transition starts.
With ``frame_stack = k > 1`` observations arrive stacked ``(..., k)`` on the last axis (as the agents act on
them) but only the newest frame is stored; stacks are rebuilt at sampling time from the ``k − 1`` previous
slots, with frames from before the episode's first step set to zero (dopamine's empty initial stack).

n-step transitions
------------------
A slot ``t`` becomes sampleable ("ready") once its n-step window is known: when slot ``t + n`` of the same
episode is written, or when the episode ends sooner. At sampling time, with ``k = min(n, steps to the episode's
end)``: ``reward = Σ_{j<k} γ^j r_{t+j}``, ``discount = γ^k · (1 − terminated)``, ``next_obs`` = the stack at
slot ``t + k``. Steps after an episode's end never enter a window.

Priorities
----------
A sum tree holds one priority per slot (0: not sampleable). Sampling is stratified (one draw in each of
``batch_size`` equal slices of the total), vectorised over the batch, so ``P(i) = p_i / Σ_j p_j``. Ready slots
enter with the largest priority recorded so far; :meth:`PrioritizedReplay.update_priorities` sets
``p_i = (loss_i + 1e-10)^α``. Importance weights are ``w_i = (N · P(i))^−β / max_batch w`` with ``N`` the
number of sampleable slots. With ``prioritized=False`` every ready slot has priority 1: uniform replay,
weights 1 — the same class serves DQN and IQN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PrioritizedReplay", "SumTree"]


class SumTree:
    """Binary sum tree over ``capacity`` non-negative leaves; all operations vectorised over index arrays.

    Parameters
    ----------
    capacity : int
        Number of leaves.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.depth = max(1, int(np.ceil(np.log2(max(self.capacity, 2)))))
        self.base = 1 << self.depth  # leaf i lives at node base + i; node 1 is the root
        self.nodes = np.zeros(2 * self.base, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Leaf values at ``indices`` (any shape)."""
        return self.nodes[self.base + np.asarray(indices)]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``indices (M,)`` to ``values (M,)`` (the last write wins on duplicates), then fix the sums."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size == 0:
            return
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), indices.shape)
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError("priorities must be finite and non-negative")
        self.nodes[self.base + indices] = values
        node = np.unique((self.base + indices) >> 1)
        while node[0] >= 1:  # one pass per level, all touched parents at once
            self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1]
            if node[0] == 1:
                break
            node = np.unique(node >> 1)

    def find(self, values: np.ndarray) -> np.ndarray:
        """Prefix-sum search: for each ``v`` in ``values (M,)``, the leaf ``i`` with ``c_{i−1} ≤ v < c_i``, where
        ``c_i`` is the inclusive prefix sum of the leaves. Zero leaves are never returned while the total is
        positive (values at or beyond the total land on the last positive leaf)."""
        values = np.asarray(values, dtype=np.float64).copy()
        node = np.ones(values.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = self.nodes[2 * node]
            right = self.nodes[2 * node + 1]
            # Go right when v is past the left sum, unless the right subtree is empty (rounding at the edges).
            go_right = ((values >= left) & (right > 0)) | (left <= 0)
            values = np.where(go_right, values - left, values)
            node = 2 * node + go_right
        return node - self.base


class PrioritizedReplay:
    """Prioritized (or uniform) n-step replay over ``num_envs`` step streams; see the module docstring.

    Parameters
    ----------
    capacity : int
        Total slots (split evenly between the envs).
    obs_shape : tuple of int
        Shape of one observation as the agent sees it (stacked: ``(..., frame_stack)``).
    obs_dtype : numpy dtype
    num_envs : int
    frame_stack : int
        ``k``: store only the newest of ``k`` stacked frames.
    update_horizon : int
        ``n`` of the n-step return.
    gamma : float
    prioritized : bool
        False: uniform replay (all ready slots priority 1, weights 1).
    priority_exponent : float
        α.
    importance_exponent : float
        β.
    reward_clip : float, optional
        Rewards are clipped to ``[−c, c]`` when added (dopamine: 1).
    seed : int
        Seed of the sampling generator.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: Any = np.uint8,
        num_envs: int = 1,
        frame_stack: int = 1,
        update_horizon: int = 1,
        gamma: float = 0.99,
        prioritized: bool = True,
        priority_exponent: float = 0.5,
        importance_exponent: float = 0.5,
        reward_clip: float | None = None,
        seed: int = 0,
    ) -> None:
        self.num_envs = int(num_envs)
        self.slots = int(capacity) // self.num_envs
        self.frame_stack = int(frame_stack)
        self.n = int(update_horizon)
        if self.slots < self.n + self.frame_stack + 2:
            raise ValueError(f"capacity {capacity} is too small for {num_envs} env(s), n={update_horizon}")
        self.obs_shape = tuple(obs_shape)
        self.frame_shape = self.obs_shape[:-1] if self.frame_stack > 1 else self.obs_shape
        if self.frame_stack > 1 and self.obs_shape[-1] != self.frame_stack:
            raise ValueError(f"stacked observations need {self.frame_stack} frames on the last axis: {obs_shape}")
        self.gamma = float(gamma)
        self.prioritized = bool(prioritized)
        self.alpha = float(priority_exponent)
        self.beta = float(importance_exponent)
        self.reward_clip = reward_clip
        self.rng = np.random.default_rng(seed)
        shape = (self.slots, self.num_envs)
        self.frames = np.zeros((*shape, *self.frame_shape), dtype=obs_dtype)
        self.action = np.zeros(shape, np.int32)
        self.reward = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, bool)
        self.last = np.zeros(shape, bool)  # the episode ended after this slot's step (or: closing slot)
        self.closing = np.zeros(shape, bool)
        self.ep_step = np.zeros(shape, np.int64)  # steps since the episode's first observation
        self.tree = SumTree(self.slots * self.num_envs)
        self.cursor = np.zeros(self.num_envs, np.int64)  # next slot to write, per env
        self.episode_step = np.zeros(self.num_envs, np.int64)
        self.max_priority = 1.0
        self.add_count = 0  # transitions added (closing slots excluded), all envs
        self.num_ready = 0
        self._envs = np.arange(self.num_envs)
        self._discounts = self.gamma ** np.arange(self.n + 1)

    # ---------------------------------------------------------------------------------------------- adding

    def _flat(self, slot: np.ndarray, env: np.ndarray) -> np.ndarray:
        return slot * self.num_envs + env

    def _write(self, env: np.ndarray, obs: np.ndarray, action, reward, terminated, last, closing) -> np.ndarray:
        slot = self.cursor[env]
        # The overwritten slot and the k−1 after it lose data they depend on: no longer sampleable.
        stale = (slot[:, None] + np.arange(self.frame_stack)) % self.slots
        self._set_ready(self._flat(stale, env[:, None]).ravel(), False)
        self.frames[slot, env] = obs[..., -1] if self.frame_stack > 1 else obs
        self.action[slot, env] = action
        self.reward[slot, env] = reward
        self.terminated[slot, env] = terminated
        self.last[slot, env] = last
        self.closing[slot, env] = closing
        self.ep_step[slot, env] = self.episode_step[env]
        self.cursor[env] = (slot + 1) % self.slots
        return slot

    def _set_ready(self, flat: np.ndarray, ready: bool) -> None:
        if flat.size == 0:
            return
        before = self.tree.get(flat) > 0
        if ready:
            self.tree.set(flat, self.max_priority if self.prioritized else 1.0)
            self.num_ready += int(np.count_nonzero(~before))
        else:
            changed = flat[before]
            self.tree.set(changed, 0.0)
            self.num_ready -= int(np.unique(changed).size)

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_obs: np.ndarray | None = None,
        active: np.ndarray | None = None,
    ) -> None:
        """Add one step of every env (or of the ``active`` ones).

        Parameters
        ----------
        obs : (E, *obs_shape)
            Observations the actions were taken on.
        action, reward, terminated, truncated : (E,)
        next_obs : (E, *obs_shape), optional
            The observations after the step; only the rows of envs whose episode ended are used (their final
            observation), so it is required when any episode ended.
        active : (E,) bool, optional
            Envs that took a step; the rows of the others are ignored (a lockstep driver has no transition for an
            env whose episode ended on the previous step and is being reset). Default: all.
        """
        obs = np.asarray(obs)
        reward = np.asarray(reward, np.float32)
        if self.reward_clip is not None:
            reward = np.clip(reward, -self.reward_clip, self.reward_clip)
        terminated = np.asarray(terminated, bool)
        ended = terminated | np.asarray(truncated, bool)
        action = np.asarray(action, np.int32)
        if active is None:
            envs = self._envs
        else:
            active = np.asarray(active, bool)
            envs = self._envs[active]
            if envs.size == 0:
                return
            if envs.size < self.num_envs:
                obs, action, reward, terminated, ended = (
                    obs[active],
                    action[active],
                    reward[active],
                    terminated[active],
                    ended[active],
                )
                next_obs = None if next_obs is None else np.asarray(next_obs)[active]
        slot = self._write(envs, obs, action, reward, terminated, ended, False)
        self.add_count += envs.size
        self.episode_step[envs] += 1
        # Slot t − n now has its full window (its n-th next observation is this slot).
        full = self.episode_step[envs] > self.n
        self._set_ready(self._flat((slot[full] - self.n) % self.slots, envs[full]), True)
        if not ended.any():
            return
        if next_obs is None:
            raise ValueError("next_obs is required when an episode ends (its final observation is stored)")
        done = envs[ended]
        closing = self._write(done, np.asarray(next_obs)[ended], 0, 0.0, terminated[ended], True, True)
        # The episode's last n transitions (fewer if it was shorter) now have complete, shortened windows.
        length = self.episode_step[done]
        for back in range(1, self.n):
            has = length >= back + 1
            self._set_ready(self._flat((closing[has] - 1 - back) % self.slots, done[has]), True)
        self._set_ready(self._flat((closing - 1) % self.slots, done), True)
        self.episode_step[done] = 0

    # --------------------------------------------------------------------------------------------- sampling

    def _stack(self, slot: np.ndarray, env: np.ndarray) -> np.ndarray:
        """Observations ``(B, *obs_shape)`` at ``slot (B,)``: the frame stack rebuilt from previous slots."""
        if self.frame_stack == 1:
            return self.frames[slot, env]
        back = np.arange(self.frame_stack - 1, -1, -1)  # oldest first
        slots = (slot[:, None] - back) % self.slots  # (B, k)
        frames = self.frames[slots, env[:, None]]  # (B, k, *frame)
        keep = back[None, :] <= self.ep_step[slot, env][:, None]  # frames from before the episode are zero
        frames = frames * keep.reshape(*keep.shape, *([1] * len(self.frame_shape))).astype(frames.dtype)
        return np.moveaxis(frames, 1, -1)

    def __len__(self) -> int:
        return self.num_ready

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """A batch of n-step transitions.

        Returns
        -------
        dict
            ``obs (B, *obs_shape)``, ``action (B,)`` int32, ``reward (B,)`` n-step return, ``discount (B,)``
            ``γ^k (1 − terminated)``, ``next_obs (B, *obs_shape)``, ``weight (B,)`` importance weights,
            ``probability (B,)`` sampling probabilities, ``index (B,)`` int64 slots for
            :meth:`update_priorities`.
        """
        total = self.tree.total
        if self.num_ready == 0 or total <= 0:
            raise ValueError("the replay holds no sampleable transition yet")
        targets = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
        index = self.tree.find(np.minimum(targets, np.nextafter(total, 0)))
        slot, env = np.divmod(index, self.num_envs)
        window = (slot[:, None] + np.arange(self.n)) % self.slots  # (B, n)
        last = self.last[window, env[:, None]]
        # Step j of the window counts while no earlier step of it ended the episode.
        inside = np.concatenate([np.ones((batch_size, 1), bool), ~np.cumsum(last[:, :-1], axis=1, dtype=bool)], 1)
        k = inside.sum(axis=1)
        reward = np.sum(self.reward[window, env[:, None]] * self._discounts[: self.n] * inside, axis=1)
        terminal = np.any(self.terminated[window, env[:, None]] & inside, axis=1)
        discount = self._discounts[k] * ~terminal
        probability = self.tree.get(index) / total
        if self.prioritized:
            weight = (self.num_ready * probability) ** -self.beta
            weight = weight / weight.max()
        else:
            weight = np.ones(batch_size)
        return {
            "obs": self._stack(slot, env),
            "action": self.action[slot, env],
            "reward": reward.astype(np.float32),
            "discount": discount.astype(np.float32),
            "next_obs": self._stack((slot + k) % self.slots, env),
            "weight": weight.astype(np.float32),
            "probability": probability,
            "index": index,
        }

    def update_priorities(self, index: np.ndarray, loss: np.ndarray) -> None:
        """``p_i = (loss_i + 1e-10)^α`` for sampled slots still sampleable (no-op with ``prioritized=False``)."""
        if not self.prioritized:
            return
        index = np.asarray(index, np.int64)
        live = self.tree.get(index) > 0  # skip slots overwritten since they were sampled
        priority = (np.asarray(loss, np.float64)[live] + 1e-10) ** self.alpha
        self.tree.set(index[live], priority)
        if priority.size:
            self.max_priority = max(self.max_priority, float(priority.max()))

    # ------------------------------------------------------------------------------------------ persistence

    _ARRAYS = ("frames", "action", "reward", "terminated", "last", "closing", "ep_step", "cursor", "episode_step")

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The buffers (by reference, not copied): the stored steps, cursors and the sum tree's nodes."""
        return {**{name: getattr(self, name) for name in self._ARRAYS}, "tree": self.tree.nodes}

    def state_scalars(self) -> dict[str, Any]:
        """The scalars (JSON-serialisable): largest priority, counters and the sampling generator's state."""
        return {
            "max_priority": self.max_priority,
            "add_count": self.add_count,
            "num_ready": self.num_ready,
            "rng": self.rng.bit_generator.state,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: :meth:`state_arrays` and :meth:`state_scalars` in one dict."""
        return {**self.state_arrays(), **self.state_scalars()}

    def load_state_dict(self, state: dict[str, Any], copy: bool = True) -> None:
        """Restore :meth:`state_dict`.

        Parameters
        ----------
        state : dict
            Arrays of the shapes this replay was built with, and the scalars.
        copy : bool
            Copy the arrays into this replay's buffers (default), or adopt them (no second copy of a large buffer
            in memory; the caller must not use them afterwards).
        """
        for name in (*self._ARRAYS, "tree"):
            target = self.tree.nodes if name == "tree" else getattr(self, name)
            value = np.asarray(state[name])
            if target.shape != value.shape:
                raise ValueError(f"replay field {name}: shape {value.shape}, expected {target.shape}")
            if copy:
                target[...] = value
            else:
                value = value if value.dtype == target.dtype and value.flags.writeable else value.astype(target.dtype)
                if name == "tree":
                    self.tree.nodes = value
                else:
                    setattr(self, name, value)
        self.max_priority = float(state["max_priority"])
        self.add_count = int(state["add_count"])
        self.num_ready = int(state["num_ready"])
        self.rng.bit_generator.state = state["rng"]
