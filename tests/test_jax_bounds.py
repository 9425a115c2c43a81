"""The jit-able JAX bounds against the numpy references in ``intervals``.

The documented guarantee is 1e-6 absolute agreement for 1 <= m <= 10**4, integer 0 <= k <= m and
1e-6 <= delta <= 0.5, in float32 and float64; the grid and the property test cover exactly that range.
float64 runs only inside ``jax.enable_x64`` so that other test files keep the float32 default.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambs_verify.estimators import intervals
from ambs_verify.estimators.jax_bounds import clopper_pearson_upper, hoeffding_upper, kl_upper

TOL = 1e-6
M_MAX = 10_000
DELTA_MIN, DELTA_MAX = 1e-6, 0.5

# One jitted function per bound for the whole module: shapes repeat, so each compiles once per shape/dtype.
JAX_BOUNDS = {
    "hoeffding": jax.jit(hoeffding_upper),
    "kl": jax.jit(kl_upper),
    "cp": jax.jit(clopper_pearson_upper),
}
NUMPY_BOUNDS = {
    "hoeffding": intervals.hoeffding_upper,
    "kl": intervals.kl_chernoff_upper,
    "cp": intervals.clopper_pearson_upper,
}
NAMES = tuple(JAX_BOUNDS)
UNJITTED = {"hoeffding": hoeffding_upper, "kl": kl_upper, "cp": clopper_pearson_upper}


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every m <= 40 and 26 log-spaced m up to 10**4; every k for m <= 200, else both ends and 120 between."""
    ms = sorted({*range(1, 41), *np.round(np.logspace(np.log10(41), 4, 26)).astype(int).tolist()})
    ks, mm = [], []
    for m in ms:
        if m <= 200:
            k = np.arange(m + 1)
        else:
            ends = np.concatenate([np.arange(20), m - np.arange(20)])
            k = np.unique(np.concatenate([ends, np.round(np.linspace(0, m, 120)).astype(int)]))
        ks.append(k)
        mm.append(np.full(k.shape, m))
    k, m = np.concatenate(ks), np.concatenate(mm)
    deltas = np.array([1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.25, 0.5])
    return (
        np.repeat(k, len(deltas)).astype(float),
        np.repeat(m, len(deltas)).astype(float),
        np.tile(deltas, len(k)),
    )


@pytest.fixture(scope="module")
def grid():
    k, m, delta = _grid()
    refs = {name: fn(k, m, delta) for name, fn in NUMPY_BOUNDS.items()}
    return k, m, delta, refs


@pytest.fixture(scope="module")
def grid_float32(grid):
    k, m, delta, _ = grid
    args = [jnp.asarray(a, jnp.float32) for a in (k, m, delta)]
    return {name: np.asarray(fn(*args), dtype=float) for name, fn in JAX_BOUNDS.items()}


# --------------------------------------------------------------------------------------------------------
# Agreement with numpy


@pytest.mark.parametrize("name", NAMES)
def test_float32_agrees_with_numpy_on_grid(grid, grid_float32, name):
    k, m, delta, refs = grid
    err = grid_float32[name] - refs[name]
    worst = np.argmax(np.abs(err))
    assert np.abs(err).max() <= TOL, (name, k[worst], m[worst], delta[worst], err[worst])


@pytest.mark.parametrize("name", NAMES)
def test_float32_is_conservative_on_grid(grid, grid_float32, name):
    # Outward rounding: never below the float64 reference (measured margin; see the Notes).
    k, m, delta, refs = grid
    err = grid_float32[name] - refs[name]
    worst = np.argmin(err)
    assert err.min() >= 0.0, (name, k[worst], m[worst], delta[worst], err[worst])


@pytest.mark.parametrize("name", NAMES)
def test_float64_agrees_with_numpy_on_grid(grid, name):
    # Every other grid point: float64 Clopper-Pearson takes 64 bisection steps and is the slowest test.
    k, m, delta, refs = (a[::2] for a in (*grid[:3], grid[3][name]))
    with jax.enable_x64(True):
        out = JAX_BOUNDS[name](*(jnp.asarray(a, jnp.float64) for a in (k, m, delta)))
        assert out.dtype == jnp.float64
        out = np.asarray(out)
    # float64 is far inside the tolerance: the residue is the references' own rounding and outward widening,
    # which for Clopper-Pearson is 8 (1 + m) eps relative (scipy's Beta quantile error grows with m).
    assert np.all(np.abs(out - refs) <= 1e-11 + 8 * (1 + m) * np.finfo(float).eps * refs)


@st.composite
def _counts(draw):
    m = draw(st.integers(1, M_MAX))
    k = draw(st.integers(0, m))
    delta = draw(st.floats(DELTA_MIN, DELTA_MAX))
    return k, m, delta


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(_counts())
def test_float32_agrees_with_numpy_property(counts):
    k, m, delta = counts
    args = [np.asarray(a, np.float32) for a in (k, m, delta)]
    for name in NAMES:
        got = float(JAX_BOUNDS[name](*args))
        want = float(NUMPY_BOUNDS[name](k, m, delta))
        assert want - 1e-9 <= got <= want + TOL, (name, k, m, delta, got, want)


# --------------------------------------------------------------------------------------------------------
# Known values and identities


def test_k_zero_identity():
    # 16 x 4 = 64 points, the batch shape of the jit/vmap test, so the float32 compilation is shared.
    m = np.array([1, 2, 3, 5, 7, 12, 30, 64, 100, 255, 512, 1000, 2048, 4096, 7777, 10_000.0])[:, None]
    delta = np.array([1e-6, 1e-3, 0.01, 0.5])[None, :]
    exact = (-np.expm1(np.log(delta) / m)).ravel()  # 1 - delta**(1/m)
    m, delta = np.broadcast_arrays(m, delta)
    args = [jnp.asarray(a.ravel(), jnp.float32) for a in (np.zeros(m.shape), m, delta)]
    np.testing.assert_allclose(np.asarray(JAX_BOUNDS["kl"](*args)), exact, rtol=0, atol=TOL)
    np.testing.assert_allclose(np.asarray(JAX_BOUNDS["cp"](*args)), exact, rtol=0, atol=TOL)
    with jax.enable_x64(True):
        args64 = [jnp.asarray(a.ravel(), jnp.float64) for a in (np.zeros(m.shape), m, delta)]
        np.testing.assert_allclose(np.asarray(JAX_BOUNDS["kl"](*args64)), exact, rtol=0, atol=1e-13)
        np.testing.assert_allclose(np.asarray(JAX_BOUNDS["cp"](*args64)), exact, rtol=0, atol=1e-13)


def test_known_values_m512():
    args = [np.asarray(a, np.float32) for a in (0, 512, 0.01)]
    assert float(JAX_BOUNDS["cp"](*args)) == pytest.approx(0.00895, abs=5e-6)
    assert float(JAX_BOUNDS["kl"](*args)) == pytest.approx(0.00895, abs=5e-6)
    assert float(JAX_BOUNDS["hoeffding"](*args)) == pytest.approx(0.0671, abs=5e-5)


@pytest.mark.parametrize("name", NAMES)
def test_all_violations_gives_one(name):
    m = jnp.asarray(np.resize([1.0, 2.0, 17.0, 512.0, 10_000.0], 64))  # shape shared with the batch tests
    out = JAX_BOUNDS[name](m, m, jnp.full(m.shape, 1e-3))
    assert np.all(np.asarray(out) == 1.0)


def test_ordering_cp_kl_hoeffding(grid, grid_float32):
    # Clopper-Pearson <= KL (Chernoff) <= Hoeffding (Pinsker); equality at k = 0 (cp = kl) and k = m.
    cp, kl, hoeffding = grid_float32["cp"], grid_float32["kl"], grid_float32["hoeffding"]
    assert np.all(cp <= kl + TOL)
    assert np.all(kl <= hoeffding + TOL)


# --------------------------------------------------------------------------------------------------------
# jit, vmap, broadcasting, dtypes


def _batch(shape, seed):
    rng = np.random.default_rng(seed)
    m = rng.integers(1, 2000, shape)
    k = np.minimum(m, rng.integers(0, 40, shape))
    delta = np.exp(rng.uniform(np.log(DELTA_MIN), np.log(DELTA_MAX), shape))
    return [jnp.asarray(a, jnp.float32) for a in (k, m, delta)]


@pytest.mark.parametrize("shape", [(64,), (8, 512)])
@pytest.mark.parametrize("name", NAMES)
def test_jit_and_vmap_on_batches(name, shape):
    k, m, delta = _batch(shape, seed=len(shape))
    jitted = JAX_BOUNDS[name](k, m, delta)
    mapped = jax.jit(jax.vmap(UNJITTED[name]))(k, m, delta)
    assert jitted.shape == mapped.shape == shape
    assert jitted.dtype == mapped.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(jitted), rtol=0, atol=1e-7)
    out = np.asarray(jitted)
    assert np.all(out >= np.asarray(k / m)) and np.all(out <= 1.0)


@pytest.mark.parametrize("name", NAMES)
def test_broadcasting(name):
    k = jnp.arange(4.0)[:, None]
    m = jnp.asarray([4.0, 10.0, 100.0])
    out = JAX_BOUNDS[name](k, m, 0.05)
    assert out.shape == (4, 3)
    want = NUMPY_BOUNDS[name](np.arange(4.0)[:, None], np.array([4.0, 10.0, 100.0]), 0.05)
    np.testing.assert_allclose(np.asarray(out), want, rtol=0, atol=TOL)


@pytest.mark.parametrize("name", NAMES)
def test_result_dtype_follows_input(name):
    def dtype(*args):
        return jax.eval_shape(UNJITTED[name], *args).dtype  # traces only: no compilation

    assert dtype(3, 10, 0.05) == jnp.float32  # integers promote to the default float
    assert dtype(jnp.float32(3), 10, 0.05) == jnp.float32
    assert dtype(jnp.bfloat16(3), 10, 0.05) == jnp.float32  # half precision computes in float32
    with jax.enable_x64(True):
        assert dtype(3, 10, 0.05) == jnp.float64
        assert dtype(jnp.float64(3), jnp.float64(10), jnp.float64(0.05)) == jnp.float64
        assert dtype(jnp.float32(3), jnp.float32(10), jnp.float32(0.05)) == jnp.float32


@pytest.mark.parametrize("name", ["kl", "cp"])
def test_bisection_is_a_loop_not_unrolled(name):
    # fori_loop with a static count lowers to one scan of length 32 (float32 step count), not unrolled.
    text = str(jax.make_jaxpr(UNJITTED[name])(jnp.ones(3), jnp.full(3, 10.0), jnp.full(3, 0.05)))
    assert "length=32" in text and "unroll=1" in text
    assert len(text.splitlines()) < 400  # 32 inlined KL steps alone would take ~800 lines
