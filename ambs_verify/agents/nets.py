"""Network building blocks (Flax Linen): dense/conv layers with LayerNorm + SiLU, MLPs, CNN encoder/decoder.

Conventions (spec §3.1, §13):

* Hidden layers: no bias, LayerNorm (eps 1e-3) then SiLU; kernels initialised truncated-normal "fan avg".
* Output layers: with bias, uniform "fan avg" initialisation scaled by ``outscale``; ``outscale 0`` is an
  all-zero output layer (reward, cost and critic heads).
* ``dtype`` is the compute dtype (float32 by default; bfloat16/float16 on GPUs); parameters are float32.
  Output layers return float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = [
    "MLP",
    "ConvDecoder",
    "ConvEncoder",
    "NormDense",
    "OutDense",
    "conv4s2",
    "deconv4s2",
    "hidden_init",
    "out_init",
]

Dtype = jnp.dtype | type


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """Fan-in and fan-out as Flax's ``variance_scaling`` computes them (kernel ``(..., in, out)``)."""
    if len(shape) < 2:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


# The initialisers draw a flat vector and reshape it: XLA on CPU compiles random draws of rank >= 3 shapes very
# slowly (seconds per parameter with threefry), which would dominate start-up and test time.


def hidden_init() -> Callable:
    """Truncated-normal (at +-2 std) fan-avg initialiser with scale 1, for hidden layers."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        fan_in, fan_out = _fans(shape)
        std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
        x = jax.random.truncated_normal(key, -2.0, 2.0, (math.prod(shape),), jnp.float32)
        return (x * std).reshape(shape).astype(dtype)

    return init


def out_init(outscale: float) -> Callable:
    """Uniform fan-avg initialiser scaled by ``outscale``; zeros when ``outscale == 0``."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        if outscale == 0.0:
            return jnp.zeros(shape, dtype)
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(3.0 * outscale * 2.0 / (fan_in + fan_out))
        x = jax.random.uniform(key, (math.prod(shape),), jnp.float32, -limit, limit)
        return x.reshape(shape).astype(dtype)

    return init


class NormDense(nn.Module):
    """``SiLU(LayerNorm(x @ W))``: ``(..., in) -> (..., units)``."""

    units: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Dense(self.units, use_bias=False, kernel_init=hidden_init(), dtype=self.dtype)(x)
        x = nn.LayerNorm(epsilon=1e-3, dtype=self.dtype)(x)
        return nn.silu(x)


class OutDense(nn.Module):
    """Output projection ``x @ W + b`` in float32 out: ``(..., in) -> (..., units)``."""

    units: int
    outscale: float = 1.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Dense(self.units, kernel_init=out_init(self.outscale), dtype=self.dtype)(x)
        return x.astype(jnp.float32)


class MLP(nn.Module):
    """``layers`` x :class:`NormDense` of ``units``, optionally followed by an :class:`OutDense` of ``out``.

    ``(..., in) -> (..., units)`` or ``(..., out)`` when ``out`` is set.
    """

    layers: int
    units: int
    out: int | None = None
    outscale: float = 1.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        for i in range(self.layers):
            x = NormDense(self.units, dtype=self.dtype, name=f"hidden{i}")(x)
        if self.out is not None:
            x = OutDense(self.out, self.outscale, dtype=self.dtype, name="out")(x)
        return x


# Stride-2, kernel-4 convolutions written as matrix products. XLA's CPU convolutions (and especially the
# gradients of transposed convolutions) run at a few GFLOP/s at these shapes; the formulations below compute the
# same functions with large matmuls instead (measured 5-50x faster on a 2-core CPU, equal on GPUs).

# Transposed conv, 1-D view: output 2m + a takes input m + offset - 1 with kernel tap `tap`, for these
# (offset into the 1-padded input, tap) pairs. It is the adjoint of the forward conv below.
_TAPS = {0: ((0, 3), (1, 1)), 1: ((1, 2), (2, 0))}


def conv4s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """'SAME' convolution, kernel 4, stride 2: ``(N, H, W, C)``, ``(4, 4, C, O)`` -> ``(N, H/2, W/2, O)``.

    Equal to ``lax.conv_general_dilated(x, kernel, (2, 2), "SAME")`` for even H, W: pad by one, space-to-depth,
    gather the four 2 x 2 neighbours (16 C features per output pixel) and multiply by the reshaped kernel.
    """
    n, h, w, c = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h2, w2 = (h + 2) // 2, (w + 2) // 2
    s2d = xp.reshape(n, h2, 2, w2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h2, w2, 4 * c)
    patches = jnp.concatenate([s2d[:, i : i + h // 2, j : j + w // 2] for i in range(2) for j in range(2)], -1)
    k = kernel.reshape(2, 2, 2, 2, c, -1).transpose(0, 2, 1, 3, 4, 5).reshape(16 * c, -1)
    return patches @ k.astype(patches.dtype)


def _nine_kernel(kernel: jax.Array) -> jax.Array:
    """``(4, 4, C, O)`` -> ``(3, 3, C, 4 O)``: the transposed conv as a stride-1 3 x 3 conv onto 4 sub-pixels."""
    c, o = kernel.shape[2], kernel.shape[3]
    tapmap = {a: dict(_TAPS[a]) for a in (0, 1)}
    zero = jnp.zeros((c, o), kernel.dtype)
    rows = []
    for r in range(3):
        cols = []
        for q in range(3):
            blocks = [
                kernel[tapmap[a][r], tapmap[b][q]] if (r in tapmap[a] and q in tapmap[b]) else zero
                for a in (0, 1)
                for b in (0, 1)
            ]
            cols.append(jnp.concatenate(blocks, -1))
        rows.append(jnp.stack(cols, 0))
    return jnp.stack(rows, 0)


def deconv4s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Transposed convolution, kernel 4, stride 2: ``(N, H, W, C)``, ``(4, 4, C, O)`` -> ``(N, 2H, 2W, O)``.

    The adjoint of :func:`conv4s2` (with the kernel's C and O swapped). Each of the four output sub-pixel
    phases is one matmul over a 2 x 2 input neighbourhood (4 C features); for thin outputs (O < 16, e.g. the
    image layer) a stride-1 3 x 3 convolution producing all four phases at once is used instead.
    """
    n, h, w, _ = x.shape
    o = kernel.shape[-1]
    kernel = kernel.astype(x.dtype)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    if o < 16:
        y = jax.lax.conv_general_dilated(
            xp, _nine_kernel(kernel), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        y = y.reshape(n, h, w, 2, 2, o)
    else:
        phases = []
        for a in (0, 1):
            for b in (0, 1):
                feats, taps = [], []
                for ro, kr in _TAPS[a]:
                    for co, kc in _TAPS[b]:
                        feats.append(xp[:, ro : ro + h, co : co + w])
                        taps.append(kernel[kr, kc])
                phases.append(jnp.concatenate(feats, -1) @ jnp.concatenate(taps, 0))
        y = jnp.stack(phases, 3).reshape(n, h, w, 2, 2, o)
    return y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, o)


class ConvEncoder(nn.Module):
    """Strided CNN: ``stages`` convs (kernel 4, stride 2, depth ``depth * 2**i``), each LayerNorm + SiLU.

    ``(N, S, S, C)`` float images in [-0.5, 0.5] -> ``(N, (S / 2**stages)**2 * depth * 2**(stages-1))``.
    """

    depth: int
    stages: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        for i in range(self.stages):
            out = self.depth * 2**i
            kernel = self.param(f"conv{i}", hidden_init(), (4, 4, x.shape[-1], out))
            x = conv4s2(x, kernel)
            x = nn.LayerNorm(epsilon=1e-3, dtype=self.dtype, name=f"norm{i}")(x)
            x = nn.silu(x)
        return x.reshape(x.shape[0], -1)


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: linear to ``(minres, minres, depth * 2**(stages-1))``, then transposed
    convs (kernel 4, stride 2) halving the depth with LayerNorm + SiLU, the last to ``channels`` (no norm).

    ``(N, F) -> (N, minres * 2**stages, minres * 2**stages, channels)`` float32, offset by +0.5.
    """

    depth: int
    stages: int
    minres: int
    channels: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        top = self.depth * 2 ** (self.stages - 1)
        x = nn.Dense(self.minres * self.minres * top, kernel_init=hidden_init(), dtype=self.dtype, name="in")(
            feat.astype(self.dtype)
        )
        x = x.reshape(x.shape[0], self.minres, self.minres, top)
        for i in range(self.stages):
            last = i == self.stages - 1
            depth = self.channels if last else top // 2 ** (i + 1)
            init = out_init(1.0) if last else hidden_init()
            kernel = self.param(f"deconv{i}", init, (4, 4, x.shape[-1], depth))
            x = deconv4s2(x, kernel)
            if last:
                x = x + self.param("bias", nn.initializers.zeros_init(), (depth,)).astype(x.dtype)
            else:
                x = nn.LayerNorm(epsilon=1e-3, dtype=self.dtype, name=f"norm{i}")(x)
                x = nn.silu(x)
        return x.astype(jnp.float32) + 0.5
