"""Optimisers and parameter averaging shared by the world model and the actor-critics.

Every optimiser is Adam after global-norm clipping (spec §3.2, §3.4). Ensembles (the twin cost critic) keep
their members' parameters stacked on a leading axis and are updated with ``jax.vmap`` over that axis, so each
member is clipped and stepped independently, exactly as two separate optimisers would.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .config import OptimizerConfig

__all__ = ["clip_by_global_norm", "ema", "global_norm", "make_optimizer", "optimizer_step"]


def global_norm(tree) -> jax.Array:
    """Euclidean norm of all leaves together (float32), each leaf's square sum as a dot product.

    Written with dot products rather than ``optax.clip_by_global_norm``'s square-and-reduce, which XLA:GPU
    (jax 0.11.2) failed to compile for the large preset ("Expected instruction to have shape f32[]").
    """
    leaves = [x.astype(jnp.float32).reshape(-1) for x in jax.tree.leaves(tree)]
    total = sum(jnp.dot(x, x, precision=jax.lax.Precision.HIGHEST) for x in leaves)
    return jnp.sqrt(total)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """Scale the updates by ``min(1, max_norm / global_norm)``."""

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        del params
        norm = global_norm(updates)
        scale = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-30))
        return jax.tree.map(lambda u: u * scale.astype(u.dtype), updates), state

    return optax.GradientTransformation(init, update)


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """Global-norm clipping at ``clip`` then Adam(lr, eps), betas (0.9, 0.999), no weight decay."""
    return optax.chain(
        clip_by_global_norm(config.clip),
        optax.scale_by_adam(b1=0.9, b2=0.999, eps=config.eps),
        optax.scale(-config.lr),
    )


def optimizer_step(
    tx: optax.GradientTransformation, params, opt_state, grads, ensemble: bool = False
) -> tuple[object, object, jax.Array]:
    """Apply one update. Returns ``(params, opt_state, grad_norm)``; ``grad_norm`` is per member if ``ensemble``."""

    def one(p, s, g):
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, global_norm(g)

    if ensemble:
        return jax.vmap(one)(params, opt_state, grads)
    return one(params, opt_state, grads)


def ema(slow, fast, mix: jax.Array | float):
    """``slow * (1 - mix) + fast * mix`` leafwise (``mix`` may be a traced scalar)."""
    mix = jnp.asarray(mix, jnp.float32)
    return jax.tree.map(lambda s, f: s * (1.0 - mix) + f * mix, slow, fast)
