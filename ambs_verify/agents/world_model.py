"""DreamerV3 world model with the AMBS cost and safe-continue heads (spec §3.1-§3.3).

Batch layout (batch-major, as sampled from replay), ``B`` sequences of ``T`` steps:

======================  ====================  =========================================================
key                     shape                 meaning
======================  ====================  =========================================================
``<image key>``         ``(B, T, S, S, C)``   uint8 (or float in [0, 255]); any rank-3 observation key
``<vector key>``        ``(B, T, F)``         float; any rank-1 observation key
``action``              ``(B, T, A)``         action taken *at* step t (one-hot for discrete actions)
``reward``              ``(B, T)``            reward that arrived with observation t
``cost``                ``(B, T)``            cost that arrived with observation t (raw, >= 0)
``is_first``            ``(B, T)``            bool, episode start (replay forces ``is_first[:, 0]``)
``is_terminal``         ``(B, T)``            bool, true termination
======================  ====================  =========================================================

The posterior at step t uses the action of step t - 1 (zeros at t = 0, where the state is reset anyway).
Targets: ``cont = 1 - is_terminal``, ``cost`` clipped to ``[0, C]`` (unless clipping is off), and
``safe_cont = 1 - 1[cost > 0]``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from . import distributions as D
from . import rssm as R
from .config import DecoderConfig, EncoderConfig, WorldModelConfig
from .nets import MLP, ConvDecoder, ConvEncoder, OutDense
from .optim import make_optimizer, optimizer_step

__all__ = ["Decoder", "Encoder", "WorldModel"]

NON_OBS_KEYS = frozenset({"action", "reward", "cost", "is_first", "is_last", "is_terminal"})


def _split_keys(obs_space: Mapping[str, tuple[int, ...]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    image_keys = tuple(k for k, s in obs_space.items() if len(s) == 3 and k not in NON_OBS_KEYS)
    vector_keys = tuple(k for k, s in obs_space.items() if len(s) == 1 and k not in NON_OBS_KEYS)
    if not image_keys and not vector_keys:
        raise ValueError(f"no image (rank 3) or vector (rank 1) observation keys in {dict(obs_space)}")
    return image_keys, vector_keys


class Encoder(nn.Module):
    """Multi-key encoder: image keys concatenated on channels through a CNN, vector keys concatenated through
    a symlog MLP, outputs concatenated. ``obs`` values have one leading axis ``(N, ...)`` -> ``(N, E)``.
    """

    config: EncoderConfig
    image_keys: tuple[str, ...]
    vector_keys: tuple[str, ...]
    stages: int
    dtype: jnp.dtype | type = jnp.float32

    @nn.compact
    def __call__(self, obs: Mapping[str, jax.Array]) -> jax.Array:
        outs = []
        if self.image_keys:
            img = jnp.concatenate([obs[k].astype(jnp.float32) for k in self.image_keys], -1) / 255.0 - 0.5
            outs.append(ConvEncoder(self.config.cnn_depth, self.stages, self.dtype, name="cnn")(img))
        if self.vector_keys:
            vec = jnp.concatenate([obs[k].astype(jnp.float32) for k in self.vector_keys], -1)
            if self.config.symlog_inputs:
                vec = D.symlog(vec)
            c = self.config
            outs.append(MLP(c.mlp_layers, c.mlp_units, dtype=self.dtype, name="mlp")(vec))
        return jnp.concatenate([o.astype(jnp.float32) for o in outs], -1)


class Decoder(nn.Module):
    """Reconstructs every observation key from the latent feature ``(N, F)``.

    Image keys -> ``(N, S, S, C_k)`` in pixel/255 units (mean of a unit-variance Gaussian, i.e. MSE);
    vector keys -> ``(N, F_k)`` in symlog space.
    """

    config: DecoderConfig
    image_shapes: tuple[tuple[str, tuple[int, ...]], ...]
    vector_shapes: tuple[tuple[str, tuple[int, ...]], ...]
    stages: int
    dtype: jnp.dtype | type = jnp.float32

    @nn.compact
    def __call__(self, feat: jax.Array) -> dict[str, jax.Array]:
        c = self.config
        out = {}
        if self.image_shapes:
            channels = [s[-1] for _, s in self.image_shapes]
            img = ConvDecoder(c.cnn_depth, self.stages, c.minres, sum(channels), self.dtype, name="cnn")(feat)
            splits = list(itertools.accumulate(channels))[:-1]
            for (k, _), part in zip(self.image_shapes, jnp.split(img, splits, axis=-1), strict=True):
                out[k] = part
        if self.vector_shapes:
            sizes = [s[0] for _, s in self.vector_shapes]
            x = MLP(c.mlp_layers, c.mlp_units, out=sum(sizes), outscale=1.0, dtype=self.dtype, name="mlp")(feat)
            splits = list(itertools.accumulate(sizes))[:-1]
            for (k, _), part in zip(self.vector_shapes, jnp.split(x, splits, axis=-1), strict=True):
                out[k] = part
        return out


class _Head(nn.Module):
    """MLP head on the latent feature; ``(..., F) -> (..., out)`` float32."""

    layers: int
    units: int
    out: int
    outscale: float
    dtype: jnp.dtype | type = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = MLP(self.layers, self.units, dtype=self.dtype, name="mlp")(x)
        return OutDense(self.out, self.outscale, dtype=self.dtype, name="out")(x)


class WorldModel:
    """The world model: module definitions plus pure functions of its parameter pytree.

    Parameters
    ----------
    config : WorldModelConfig
    obs_space : mapping key -> shape (without batch axes); rank-3 keys are images (square, power-of-two side
        >= ``minres``), rank-1 keys vectors.
    act_dim : action size A (number of discrete actions, or continuous dimensions).
    cost_clip : C for clipping the cost targets to ``[0, C]``; ``None`` for no clipping.
    dtype : compute dtype.
    """

    HEADS = ("reward", "cont", "cost", "safe_cont")

    def __init__(
        self,
        config: WorldModelConfig,
        obs_space: Mapping[str, tuple[int, ...]],
        act_dim: int,
        cost_clip: float | None = 10.0,
        dtype: jnp.dtype | type = jnp.float32,
    ) -> None:
        self.config = config
        self.obs_space = {k: tuple(int(d) for d in v) for k, v in obs_space.items()}
        self.act_dim = int(act_dim)
        self.cost_clip = cost_clip
        self.dtype = dtype
        self.image_keys, self.vector_keys = _split_keys(self.obs_space)
        enc = config.encoder
        stages = 0
        if self.image_keys:
            sides = {self.obs_space[k][:2] for k in self.image_keys}
            if len(sides) != 1:
                raise ValueError(f"image keys must share one spatial size, got {sides}")
            ((side, side2),) = sides
            stages = round(math.log2(side / enc.minres))
            if side != side2 or enc.minres * 2**stages != side:
                raise ValueError(f"image side must be square and minres * 2**k, got {(side, side2)}")
        self.stages = stages
        embed_dim = 0
        if self.image_keys:
            embed_dim += enc.minres**2 * enc.cnn_depth * 2 ** (stages - 1)
        if self.vector_keys:
            embed_dim += enc.mlp_units
        self.embed_dim = embed_dim
        self.feat_dim = config.rssm.deter + config.rssm.stoch * config.rssm.classes
        self.bins = D.twohot_bins(config.heads.bins)
        self.encoder = Encoder(enc, self.image_keys, self.vector_keys, stages, dtype)
        self.rssm = R.RSSM(config.rssm, embed_dim, dtype)
        self.decoder = Decoder(
            config.decoder,
            tuple((k, self.obs_space[k]) for k in self.image_keys),
            tuple((k, self.obs_space[k]) for k in self.vector_keys),
            stages,
            dtype,
        )
        L, U, bins = config.heads.layers, config.heads.units, config.heads.bins
        self.heads = {
            "reward": _Head(L, U, bins, 0.0, dtype),
            "cont": _Head(L, U, 1, 1.0, dtype),
            "cost": _Head(L, U, bins, 0.0, dtype),
            "safe_cont": _Head(L, U, 1, 1.0, dtype),
        }
        self.tx = make_optimizer(config.model_opt)
        self._jit_init = jax.jit(self._init)
        self._jit_init_opt = jax.jit(self.tx.init)

    # ------------------------------------------------------------------------------------------- init

    def init(self, key: jax.Array) -> dict:
        """Parameters ``{'encoder', 'rssm', 'decoder', 'reward', 'cont', 'cost', 'safe_cont'}`` (jitted)."""
        return self._jit_init(key)

    def _init(self, key: jax.Array) -> dict:
        keys = jax.random.split(key, 8)
        obs = {k: jnp.zeros((1, *s), jnp.float32) for k, s in self.obs_space.items()}
        feat = jnp.zeros((1, self.feat_dim), jnp.float32)
        r = self.config.rssm
        state = {
            "deter": jnp.zeros((1, r.deter)),
            "stoch": jnp.zeros((1, r.stoch, r.classes)),
            "logit": jnp.zeros((1, r.stoch, r.classes)),
        }
        params = {
            "encoder": self.encoder.init(keys[0], obs)["params"],
            "rssm": self.rssm.init(
                keys[1],
                state,
                jnp.zeros((1, self.act_dim)),
                jnp.zeros((1, self.embed_dim)),
                keys[7],
                method=R.RSSM.init_all,
            )["params"],
            "decoder": self.decoder.init(keys[2], feat)["params"],
        }
        for i, (name, head) in enumerate(self.heads.items()):
            params[name] = head.init(keys[3 + i], feat)["params"]
        return params

    def init_opt(self, params: dict):
        return self._jit_init_opt(params)

    # -------------------------------------------------------------------------------------- functions

    def initial_state(self, params: dict, batch: int) -> R.State:
        """Learned initial latent state ``(batch, ...)``."""
        return self.rssm.apply({"params": params["rssm"]}, (batch,), method=R.RSSM.initial)

    def encode(self, params: dict, obs: Mapping[str, jax.Array]) -> jax.Array:
        """``obs`` values ``(*lead, ...)`` -> embed ``(*lead, E)`` for any leading axes."""
        first = obs[(self.image_keys + self.vector_keys)[0]]
        lead = first.shape[: first.ndim - len(self.obs_space[(self.image_keys + self.vector_keys)[0]])]
        flat = {k: obs[k].reshape(-1, *self.obs_space[k]) for k in self.image_keys + self.vector_keys}
        embed = self.encoder.apply({"params": params["encoder"]}, flat)
        return embed.reshape(*lead, embed.shape[-1])

    def decode(self, params: dict, feat: jax.Array) -> dict[str, jax.Array]:
        """``feat (*lead, F)`` -> reconstructions ``(*lead, ...)``: images in [0, 1] units, vectors in symlog space
        (``decoder.vector_dist`` "symlog_mse") or as logits over their entries ("onehot")."""
        lead = feat.shape[:-1]
        out = self.decoder.apply({"params": params["decoder"]}, feat.reshape(-1, feat.shape[-1]))
        return {k: v.reshape(*lead, *v.shape[1:]) for k, v in out.items()}

    def head(self, params: dict, name: str, feat: jax.Array) -> jax.Array:
        """Raw head output: ``(..., 255)`` logits for reward/cost, ``(...)`` logits for cont/safe_cont."""
        out = self.heads[name].apply({"params": params[name]}, feat)
        return out[..., 0] if name in ("cont", "safe_cont") else out

    def reward(self, params: dict, feat: jax.Array) -> jax.Array:
        """Predicted reward (two-hot mean), ``(..., F) -> (...)``."""
        return D.twohot_mean(self.head(params, "reward", feat), self.bins)

    def cost(self, params: dict, feat: jax.Array) -> jax.Array:
        """Predicted cost (two-hot mean, unclipped), ``(..., F) -> (...)``."""
        return D.twohot_mean(self.head(params, "cost", feat), self.bins)

    def cont(self, params: dict, feat: jax.Array) -> jax.Array:
        """Mode of the continue head (1.0 / 0.0), ``(..., F) -> (...)``."""
        return D.bernoulli_mode(self.head(params, "cont", feat))

    def safe_cont(self, params: dict, feat: jax.Array) -> jax.Array:
        """Mode of the safe-continue head (0.0 = predicted violation), ``(..., F) -> (...)``."""
        return D.bernoulli_mode(self.head(params, "safe_cont", feat))

    def img_step(self, params: dict, state: R.State, action: jax.Array, key: jax.Array) -> R.State:
        """One prior step: ``state (N, ...)``, ``action (N, A)`` -> ``state (N, ...)``."""
        return self.rssm.apply({"params": params["rssm"]}, state, action, key, method=R.RSSM.img_step)

    def obs_step(
        self,
        params: dict,
        state: R.State,
        prev_action: jax.Array,
        embed: jax.Array,
        is_first: jax.Array,
        key: jax.Array,
    ) -> R.State:
        """One posterior step for acting: ``state (N, ...)``, ``prev_action (N, A)``, ``embed (N, E)``,
        ``is_first (N,)`` -> posterior ``(N, ...)``."""
        variables = {"params": params["rssm"]}
        part = self.rssm.apply(variables, embed, method=R.RSSM.embed_part)
        return self.rssm.apply(variables, state, prev_action, part, is_first, key, method=R.RSSM.obs_step)

    def observe(
        self, params: dict, batch: Mapping[str, jax.Array], key: jax.Array, start: R.State | None = None
    ) -> tuple[R.State, jax.Array]:
        """Posterior states ``(B, T, ...)`` and prior logits ``(B, T, S, K)`` for a batch (see module doc)."""
        embed = self.encode(params, {k: batch[k] for k in self.image_keys + self.vector_keys})
        action = batch["action"].astype(jnp.float32)
        prev_actions = jnp.concatenate([jnp.zeros_like(action[:, :1]), action[:, :-1]], 1)
        return R.observe(self.rssm, params["rssm"], embed, prev_actions, batch["is_first"], key, start)

    def imagine(
        self, params: dict, policy: R.Policy, start: R.State, horizon: int, key: jax.Array
    ) -> tuple[R.State, jax.Array]:
        """See :func:`ambs_verify.agents.rssm.imagine`: states ``(H+1, N, ...)``, actions ``(H, N, A)``."""
        return R.imagine(self.rssm, params["rssm"], policy, start, horizon, key)

    # ------------------------------------------------------------------------------------------- loss

    def cost_target(self, cost: jax.Array) -> jax.Array:
        cost = cost.astype(jnp.float32)
        return jnp.clip(cost, 0.0, self.cost_clip) if self.cost_clip is not None else cost

    def kl_losses(self, post_logit: jax.Array, prior_logit: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Dynamics and representation losses with free bits, ``(..., S, K) -> (...)`` each, plus the raw KL.

        ``dyn = max(free, KL[sg(post) || prior])`` trains the prior; ``rep = max(free, KL[post || sg(prior)])``
        trains the posterior. KLs are summed over the S latents; below ``free`` the loss is constant (no
        gradient).
        """
        sg = jax.lax.stop_gradient
        free = self.config.free_bits
        dyn_kl = D.categorical_kl(sg(post_logit), prior_logit).sum(-1)
        rep_kl = D.categorical_kl(post_logit, sg(prior_logit)).sum(-1)
        return jnp.maximum(dyn_kl, free), jnp.maximum(rep_kl, free), dyn_kl

    def loss(
        self, params: dict, batch: Mapping[str, jax.Array], key: jax.Array
    ) -> tuple[jax.Array, tuple[dict, R.State]]:
        """World-model loss, averaged over ``(B, T)``.

        Returns ``(loss, (metrics, post))`` with the posterior states ``(B, T, ...)`` (for imagination starts).
        """
        c = self.config
        post, prior_logit = self.observe(params, batch, key)
        feat = R.feat(post)
        losses = {}
        recon = self.decode(params, feat)
        image_loss = 0.0
        for k in self.image_keys:
            target = batch[k].astype(jnp.float32) / 255.0
            image_loss = image_loss + jnp.sum(jnp.square(recon[k] - target), axis=(-3, -2, -1))
        vector_loss, vector_mean_loss = 0.0, 0.0
        for k in self.vector_keys:
            if c.decoder.vector_dist == "onehot":  # recon holds logits over the vector's entries
                target = batch[k].astype(jnp.float32)
                vector_loss = vector_loss - jnp.sum(jax.nn.log_softmax(recon[k], axis=-1) * target, axis=-1)
                mean = jnp.clip(target.mean(axis=(0, 1)), 1e-8, None)
                vector_mean_loss = vector_mean_loss - jnp.sum(target.mean(axis=(0, 1)) * jnp.log(mean))
            else:
                target = D.symlog(batch[k].astype(jnp.float32))
                vector_loss = vector_loss + jnp.sum(jnp.square(recon[k] - target), axis=-1)
                vector_mean_loss = vector_mean_loss + jnp.sum(target.var(axis=(0, 1)))
        if self.image_keys:
            losses["image"] = image_loss
        if self.vector_keys:
            losses["vector"] = vector_loss
        losses["reward"] = -D.twohot_log_prob(self.head(params, "reward", feat), batch["reward"], self.bins)
        cont_target = 1.0 - batch["is_terminal"].astype(jnp.float32)
        losses["cont"] = -D.bernoulli_log_prob(self.head(params, "cont", feat), cont_target)
        raw_cost = batch["cost"].astype(jnp.float32)
        losses["cost"] = -D.twohot_log_prob(self.head(params, "cost", feat), self.cost_target(raw_cost), self.bins)
        safe_target = 1.0 - (raw_cost > 0).astype(jnp.float32)
        losses["safe_cont"] = -D.bernoulli_log_prob(self.head(params, "safe_cont", feat), safe_target)
        dyn, rep, kl = self.kl_losses(post["logit"], prior_logit)
        losses["dyn"] = dyn
        losses["rep"] = rep
        means = {k: v.mean() for k, v in losses.items()}
        total = sum(getattr(c.loss_scales, k) * v for k, v in means.items())  # loss_scales.<term>
        metrics = {f"{k}_loss": v for k, v in means.items()}
        metrics["model_loss"] = total
        metrics["model_kl"] = kl.mean()
        if self.vector_keys:
            # The loss of always predicting the batch's mean vector: a decoder near it has learned nothing
            # about the state (the world-model health check of the trainer).
            metrics["vector_mean_loss"] = vector_mean_loss
            metrics["vector_vs_mean"] = means["vector"] / jnp.maximum(vector_mean_loss, 1e-8)
        metrics["prior_ent"] = D.categorical_entropy(prior_logit).sum(-1).mean()
        metrics["post_ent"] = D.categorical_entropy(post["logit"]).sum(-1).mean()
        return total, (metrics, post)

    def update(
        self, params: dict, opt_state, batch: Mapping[str, jax.Array], key: jax.Array
    ) -> tuple[dict, object, dict, R.State]:
        """One optimiser step on :meth:`loss`. Returns ``(params, opt_state, metrics, post)``."""
        (_, (metrics, post)), grads = jax.value_and_grad(self.loss, has_aux=True)(params, batch, key)
        params, opt_state, gnorm = optimizer_step(self.tx, params, opt_state, grads)
        metrics["model_grad_norm"] = gnorm
        return params, opt_state, metrics, jax.lax.stop_gradient(post)
