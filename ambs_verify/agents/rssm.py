"""Recurrent state-space model (spec §3.1): GRU deterministic state + categorical stochastic state.

A latent *state* is a dict of float32 arrays with leading batch axes ``(...)``::

    deter (..., D)      GRU state
    stoch (..., S, K)   one-hot sample of S categoricals with K classes (straight-through gradients)
    logit (..., S, K)   log-probabilities (after 1 % unimix) of the distribution stoch was drawn from

Single steps are methods of the Linen module :class:`RSSM`; sequences are the pure functions :func:`observe`
and :func:`imagine`, which run those steps under ``jax.lax.scan`` (time-major inside, batch-major outside for
``observe``). ``imagine`` is what the shield calls: any number of start rows, any policy function.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from .config import RSSMConfig
from .distributions import onehot_mode, onehot_sample, unimix_logits
from .nets import NormDense, OutDense, hidden_init

__all__ = ["RSSM", "State", "feat", "imagine", "observe"]

State = dict[str, jax.Array]
Policy = Callable[[State, jax.Array], jax.Array]


def feat(state: State) -> jax.Array:
    """Head input ``concat(deter, flatten(stoch))``: ``(..., D + S*K)``."""
    stoch = state["stoch"]
    return jnp.concatenate([state["deter"], stoch.reshape(*stoch.shape[:-2], -1)], axis=-1)


class RSSM(nn.Module):
    """One-step RSSM computations. Parameters: ``img_in``, ``gru``, ``img_out``, ``img_stats``,
    ``obs_out`` (split into a deter and an embed part so the embed part is computed once per sequence,
    outside the scan), ``obs_stats``, and the learned ``initial`` deter vector.
    """

    config: RSSMConfig
    embed_dim: int
    dtype: jnp.dtype | type = jnp.float32

    def setup(self) -> None:
        c = self.config
        self.img_in = NormDense(c.units, dtype=self.dtype)
        self.gru = nn.Dense(3 * c.deter, use_bias=False, kernel_init=hidden_init(), dtype=self.dtype)
        self.gru_norm = nn.LayerNorm(epsilon=1e-3, dtype=self.dtype)
        self.img_out = NormDense(c.units, dtype=self.dtype)
        self.img_stats = OutDense(c.stoch * c.classes, 1.0, dtype=self.dtype)
        # One linear layer on concat(deter, embed), stored as one kernel and applied in two parts.
        self.obs_out_kernel = self.param("obs_out_kernel", hidden_init(), (c.deter + self.embed_dim, c.units))
        self.obs_norm = nn.LayerNorm(epsilon=1e-3, dtype=self.dtype)
        self.obs_stats = OutDense(c.stoch * c.classes, 1.0, dtype=self.dtype)
        self.initial_deter = self.param("initial", nn.initializers.zeros_init(), (c.deter,))

    # ------------------------------------------------------------------------------------------ pieces

    def _stats(self, layer: nn.Module, x: jax.Array) -> jax.Array:
        c = self.config
        logits = layer(x).reshape(*x.shape[:-1], c.stoch, c.classes)
        return unimix_logits(logits, c.unimix)

    def prior_logits(self, deter: jax.Array) -> jax.Array:
        """Prior log-probabilities from the deter state: ``(..., D) -> (..., S, K)``."""
        return self._stats(self.img_stats, self.img_out(deter.astype(self.dtype)))

    def initial(self, batch_shape: tuple[int, ...]) -> State:
        """Learned initial state: ``deter = tanh(w)``, ``stoch`` = mode of its prior; leading ``batch_shape``."""
        deter = jnp.tanh(self.initial_deter).astype(jnp.float32)
        logit = self.prior_logits(deter)
        state = {"deter": deter, "stoch": onehot_mode(logit), "logit": logit}
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (*batch_shape, *x.shape)), state)

    def gru_step(self, prev: State, action: jax.Array) -> jax.Array:
        """Deterministic transition: ``(state (B, ...), action (B, A)) -> deter (B, D)`` float32."""
        c = self.config
        if c.action_clip > 0.0:
            scale = c.action_clip / jnp.maximum(c.action_clip, jnp.abs(action))
            action = action * jax.lax.stop_gradient(scale)
        stoch = prev["stoch"].reshape(*prev["stoch"].shape[:-2], -1)
        x = self.img_in(jnp.concatenate([stoch, action], -1).astype(self.dtype))
        deter = prev["deter"]
        parts = self.gru_norm(self.gru(jnp.concatenate([x, deter.astype(self.dtype)], -1)))
        reset, cand, update = jnp.split(parts.astype(jnp.float32), 3, axis=-1)
        reset = jax.nn.sigmoid(reset)
        cand = jnp.tanh(reset * cand)
        update = jax.nn.sigmoid(update - 1.0)
        return update * cand + (1.0 - update) * deter

    def img_step(self, prev: State, action: jax.Array, key: jax.Array) -> State:
        """Prior step: GRU, prior logits (unimix), straight-through one-hot sample."""
        deter = self.gru_step(prev, action)
        logit = self.prior_logits(deter)
        return {"deter": deter, "stoch": onehot_sample(key, logit), "logit": logit}

    def embed_part(self, embed: jax.Array) -> jax.Array:
        """The embed half of ``obs_out``: ``(..., E) -> (..., units)`` (computed outside the scan)."""
        kernel = self.obs_out_kernel[self.config.deter :].astype(self.dtype)
        return embed.astype(self.dtype) @ kernel

    def obs_step(
        self, prev: State, prev_action: jax.Array, embed_part: jax.Array, is_first: jax.Array, key: jax.Array
    ) -> State:
        """Posterior step (prior logits are not computed here; see :func:`observe`).

        ``prev (B, ...)``, ``prev_action (B, A)``, ``embed_part (B, units)`` from :meth:`embed_part`,
        ``is_first (B,)``. Where ``is_first``, the previous state and action are replaced by the learned
        initial state and zeros.
        """
        first = is_first.astype(jnp.float32)
        init = self.initial(first.shape)
        prev = jax.tree.map(
            lambda x, y: (
                x * (1.0 - first.reshape(first.shape + (1,) * (x.ndim - 1)))
                + y * first.reshape(first.shape + (1,) * (x.ndim - 1))
            ),
            prev,
            init,
        )
        prev_action = prev_action * (1.0 - first[:, None])
        deter = self.gru_step(prev, prev_action)
        kernel = self.obs_out_kernel[: self.config.deter].astype(self.dtype)
        x = nn.silu(self.obs_norm(deter.astype(self.dtype) @ kernel + embed_part))
        logit = self._stats(self.obs_stats, x)
        return {"deter": deter, "stoch": onehot_sample(key, logit), "logit": logit}

    def init_all(self, state: State, action: jax.Array, embed: jax.Array, key: jax.Array) -> State:
        """Touch every parameter (used by ``init`` only)."""
        k1, k2 = jax.random.split(key)
        prior = self.img_step(state, action, k1)
        post = self.obs_step(prior, action, self.embed_part(embed), jnp.zeros(action.shape[:1], bool), k2)
        return post


def _zero_state(config: RSSMConfig, batch: int) -> State:
    return {
        "deter": jnp.zeros((batch, config.deter), jnp.float32),
        "stoch": jnp.zeros((batch, config.stoch, config.classes), jnp.float32),
        "logit": jnp.zeros((batch, config.stoch, config.classes), jnp.float32),
    }


def observe(
    rssm: RSSM,
    params: dict,
    embed: jax.Array,
    prev_actions: jax.Array,
    is_first: jax.Array,
    key: jax.Array,
    start: State | None = None,
) -> tuple[State, jax.Array]:
    """Posterior states over a batch of sequences.

    Parameters
    ----------
    rssm, params : the module and its parameters.
    embed : ``(B, T, E)`` encoder outputs.
    prev_actions : ``(B, T, A)`` the action taken *before* each observation (row t holds a_{t-1}).
    is_first : ``(B, T)`` bool; resets the state to the learned initial state.
    key : PRNG key.
    start : optional state ``(B, ...)`` carried from a previous batch (zeros by default; ignored where
        ``is_first[:, 0]``).

    Returns
    -------
    post : state ``(B, T, ...)``
    prior_logit : ``(B, T, S, K)`` prior log-probabilities at the same deter states.
    """
    batch, length = embed.shape[:2]
    variables = {"params": params}
    embed_part = rssm.apply(variables, embed, method=RSSM.embed_part)
    if start is None:
        start = _zero_state(rssm.config, batch)
    keys = jax.random.split(key, length)
    xs = (
        jnp.swapaxes(embed_part, 0, 1),
        jnp.swapaxes(prev_actions.astype(jnp.float32), 0, 1),
        jnp.swapaxes(is_first, 0, 1),
        keys,
    )

    def step(state: State, inp: tuple) -> tuple[State, State]:
        e, a, first, k = inp
        post = rssm.apply(variables, state, a, e, first, k, method=RSSM.obs_step)
        return post, post

    _, posts = jax.lax.scan(step, start, xs, unroll=bool(rssm.config.unroll))
    posts = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), posts)
    prior_logit = rssm.apply(variables, posts["deter"], method=RSSM.prior_logits)
    return posts, prior_logit


def imagine(
    rssm: RSSM, params: dict, policy: Policy, start: State, horizon: int, key: jax.Array
) -> tuple[State, jax.Array]:
    """Roll ``policy`` through ``horizon`` prior steps from every start row.

    Parameters
    ----------
    policy : ``policy(state (N, ...), key) -> action (N, A)``; a pure function (close over its parameters).
        It receives the state as it is; stop gradients inside it where wanted.
    start : state ``(N, ...)``.
    horizon : H, a Python int.

    Returns
    -------
    states : state ``(H + 1, N, ...)``, time-major, ``states[0] == start``.
    actions : ``(H, N, A)``; ``actions[t]`` was taken at ``states[t]``.
    """
    variables = {"params": params}
    keys = jax.random.split(key, horizon)

    def step(state: State, k: jax.Array) -> tuple[State, tuple[State, jax.Array]]:
        k_act, k_img = jax.random.split(k)
        action = policy(state, k_act)
        nxt = rssm.apply(variables, state, action, k_img, method=RSSM.img_step)
        return nxt, (nxt, action)

    _, (states, actions) = jax.lax.scan(step, start, keys, unroll=bool(rssm.config.unroll))
    states = jax.tree.map(lambda s, x: jnp.concatenate([s[None], x], 0), start, states)
    return states, actions
