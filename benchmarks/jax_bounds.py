"""Jitted JAX upper bounds (float32, CPU) against the numpy references on 10^5 (k, m) pairs.

What the shield pays per batch: the steady-state call of ``jax.jit(kl_upper)`` (and of Clopper-Pearson and
Hoeffding for comparison) with compile time reported separately, against ``intervals.kl_chernoff_upper``
(and scipy's Clopper-Pearson). ``python -m benchmarks.jax_bounds [--quick]``.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from ambs_verify.estimators import intervals
from ambs_verify.estimators.jax_bounds import clopper_pearson_upper, hoeffding_upper, kl_upper

from .common import main, row, smoke, time_call, timing_row

N_PAIRS = 100_000
M_MAX = 1024
DELTA = 0.01
SEED = 0


def _pairs(n: int = N_PAIRS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    m = rng.integers(1, M_MAX + 1, n)
    # Violation rates skewed towards 0, as in a shield that mostly sees safe states.
    k = np.minimum(m, np.floor(m * rng.beta(0.5, 8.0, n))).astype(np.int64)
    return k, m, np.full(n, DELTA)


def _time_jax(fn, args: tuple, repeats: int) -> tuple[dict, dict, np.ndarray]:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    stats = time_call(lambda: compiled(*args).block_until_ready(), repeats=repeats)
    return {"compile_s": compile_s}, stats, np.asarray(compiled(*args), dtype=float)


def run(quick: bool) -> dict:
    repeats = 3 if quick else 15
    n_pairs = 10_000 if smoke() else N_PAIRS  # BENCH_SMOKE: the suite's smoke test
    k, m, delta = _pairs(n_pairs)
    args = tuple(jnp.asarray(a, jnp.float32) for a in (k, m, delta))

    result: dict = {
        "n_pairs": n_pairs,
        "m_max": M_MAX,
        "delta": DELTA,
        "dtype": "float32",
        "jax_backend": jax.default_backend(),
        "repeats": repeats,
    }
    outputs = {}
    for name, fn in (("kl", kl_upper), ("clopper_pearson", clopper_pearson_upper), ("hoeffding", hoeffding_upper)):
        compile_info, stats, outputs[name] = _time_jax(fn, args, repeats)
        result[f"jax_{name}"] = {**compile_info, **stats}

    references = (
        ("kl", intervals.kl_chernoff_upper),
        ("clopper_pearson", intervals.clopper_pearson_upper),
        ("hoeffding", intervals.hoeffding_upper),
    )
    for name, fn in references:
        result[f"numpy_{name}"] = time_call(lambda fn=fn: fn(k, m, delta), repeats=repeats)
        result[f"max_abs_diff_{name}"] = float(np.max(np.abs(outputs[name] - fn(k, m, delta))))
        result[f"speedup_{name}_numpy_over_jax"] = (
            result[f"numpy_{name}"]["median_s"] / result[f"jax_{name}"]["median_s"]
        )
    return result


def headline(result: dict) -> list[dict]:
    """Suite table rows: the jitted bound per batch, and its speed-up over numpy/scipy."""
    out = []
    for name in ("kl", "clopper_pearson", "hoeffding"):
        jax_t, np_t = result[f"jax_{name}"], result[f"numpy_{name}"]
        out.append(
            timing_row(
                f"{name}, {result['n_pairs']:,} pairs",
                f"jitted f32 upper bound per batch (numpy {np_t['median_s'] * 1e3:.3g} ms; "
                f"max |diff| {result[f'max_abs_diff_{name}']:.1e})",
                jax_t,
                f"numpy/jax ×{result[f'speedup_{name}_numpy_over_jax']:.2f}",
            )
        )
    return out or [row("—", "no bounds timed")]


if __name__ == "__main__":
    main("jax_bounds", run)
